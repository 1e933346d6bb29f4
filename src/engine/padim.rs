//! PaDiM: one Gaussian per grid position, scored by Mahalanobis distance.
//!
//! Statistics are accumulated in f64, one image at a time (Welford), and two
//! accumulators merge exactly (Chan et al.), so training never holds all images and
//! can be split across batches.

use super::embed::PatchGrid;
use super::EngineError;

/// Index of (i, j), j <= i, in a packed lower triangle.
#[inline]
fn tri(i: usize, j: usize) -> usize {
    i * (i + 1) / 2 + j
}

#[derive(Debug, Clone, PartialEq)]
pub struct PadimAccumulator {
    pub height: usize,
    pub width: usize,
    pub dims: usize,
    pub count: u64,
    /// positions x dims
    mean: Vec<f64>,
    /// positions x packed lower triangle of the sum of centred outer products
    comoment: Vec<f64>,
}

impl PadimAccumulator {
    pub fn new(height: usize, width: usize, dims: usize) -> Self {
        let p = height * width;
        PadimAccumulator { height, width, dims, count: 0, mean: vec![0.0; p * dims], comoment: vec![0.0; p * dims * (dims + 1) / 2] }
    }

    /// Running sums read back (`mean`: positions x dims; `comoment`: positions x packed
    /// lower triangle), checked for size; `Err` says what does not fit.
    pub fn from_parts(height: usize, width: usize, dims: usize, count: u64, mean: Vec<f64>, comoment: Vec<f64>) -> Result<Self, String> {
        let p = height * width;
        if mean.len() != p * dims || comoment.len() != p * dims * (dims + 1) / 2 || count == 0 {
            return Err(format!(
                "PaDiM sums of {} and {} values do not fit a {height}x{width} grid of {dims} dims",
                mean.len(),
                comoment.len()
            ));
        }
        Ok(PadimAccumulator { height, width, dims, count, mean, comoment })
    }

    /// The running sums: mean (positions x dims) and comoment (positions x packed lower triangle).
    pub fn parts(&self) -> (&[f64], &[f64]) {
        (&self.mean, &self.comoment)
    }

    fn check_shape(&self, grid: &PatchGrid) -> Result<(), EngineError> {
        if (grid.height, grid.width, grid.dims) != (self.height, self.width, self.dims) {
            return Err(EngineError::Training(format!(
                "patch grid {}x{}x{} does not match the model's {}x{}x{}",
                grid.height, grid.width, grid.dims, self.height, self.width, self.dims
            )));
        }
        Ok(())
    }

    pub fn add(&mut self, grid: &PatchGrid) -> Result<(), EngineError> {
        self.check_shape(grid)?;
        self.count += 1;
        let n = self.count as f64;
        let d = self.dims;
        let t = d * (d + 1) / 2;
        let mut delta = vec![0f64; d];
        for p in 0..grid.positions() {
            let x = grid.patch(p);
            let mean = &mut self.mean[p * d..(p + 1) * d];
            for k in 0..d {
                delta[k] = x[k] as f64 - mean[k];
                mean[k] += delta[k] / n;
            }
            // C += delta * (x - mean_new)^T, with (x - mean_new) = delta * (n-1)/n
            let f = (n - 1.0) / n;
            let c = &mut self.comoment[p * t..(p + 1) * t];
            for i in 0..d {
                let di = delta[i] * f;
                let row = &mut c[tri(i, 0)..=tri(i, i)];
                for (j, cij) in row.iter_mut().enumerate() {
                    *cij += di * delta[j];
                }
            }
        }
        Ok(())
    }

    /// Adds everything `other` has seen, as if its images had been added one by one.
    pub fn merge(&mut self, other: &PadimAccumulator) -> Result<(), EngineError> {
        if (other.height, other.width, other.dims) != (self.height, self.width, self.dims) {
            return Err(EngineError::Training("cannot merge PaDiM statistics of different shapes".into()));
        }
        if other.count == 0 {
            return Ok(());
        }
        let (na, nb) = (self.count as f64, other.count as f64);
        let n = na + nb;
        let d = self.dims;
        let t = d * (d + 1) / 2;
        let mut delta = vec![0f64; d];
        for p in 0..self.height * self.width {
            let (mine, theirs) = (&mut self.mean[p * d..(p + 1) * d], &other.mean[p * d..(p + 1) * d]);
            for ((dk, m), o) in delta.iter_mut().zip(mine).zip(theirs) {
                *dk = o - *m;
                *m += *dk * nb / n;
            }
            let f = na * nb / n;
            for i in 0..d {
                for j in 0..=i {
                    let ix = p * t + tri(i, j);
                    self.comoment[ix] += other.comoment[ix] + delta[i] * delta[j] * f;
                }
            }
        }
        self.count += other.count;
        Ok(())
    }

    /// Covariance (unbiased) + `regularisation` * I, inverted through Cholesky.
    pub fn finish(&self, regularisation: f64) -> Result<PadimModel, EngineError> {
        self.finish_with_prior(regularisation, 0.0)
    }

    /// [`Self::finish`] with each position's covariance drawn towards the covariance
    /// pooled over every position and image, as if `prior` more images had shown it:
    /// `(C_p + prior * S) / (n - 1 + prior)`, with `C_p` the position's sum of centred
    /// outer products and `S` the pooled covariance (all patches about their common
    /// mean). A product of a few photos then gets usable Gaussians, one photo included
    /// (its positions then share `S`); with `prior` 0 this is the plain estimate, which
    /// needs two images.
    pub fn finish_with_prior(&self, regularisation: f64, prior: f64) -> Result<PadimModel, EngineError> {
        if self.count < 2 && !(prior > 0.0 && self.count == 1) {
            return Err(EngineError::Training(format!("PaDiM needs at least 2 good images, it has {}", self.count)));
        }
        let d = self.dims;
        let t = d * (d + 1) / 2;
        let positions = self.height * self.width;
        let pooled = if prior > 0.0 { self.pooled_covariance() } else { vec![0.0; t] };
        let mut inv_chol = Vec::with_capacity(positions * t);
        let mut cov = vec![0f64; t];
        for p in 0..positions {
            for (ix, c) in cov.iter_mut().enumerate() {
                *c = (self.comoment[p * t + ix] + prior * pooled[ix]) / (self.count as f64 - 1.0 + prior);
            }
            for i in 0..d {
                cov[tri(i, i)] += regularisation;
            }
            let l = cholesky(&cov, d)
                .ok_or_else(|| EngineError::Training(format!("covariance at grid position {p} is not positive definite")))?;
            inv_chol.extend(invert_lower(&l, d).into_iter().map(|v| v as f32));
        }
        Ok(PadimModel { height: self.height, width: self.width, dims: d, mean: self.mean.iter().map(|v| *v as f32).collect(), inv_chol })
    }
}

impl PadimAccumulator {
    /// The mean variance of a feature over every patch seen (a trace of the pooled
    /// covariance over the dimensions): the features' own scale, for a regularisation
    /// that does not depend on it.
    pub fn mean_variance(&self) -> f64 {
        let pooled = self.pooled_covariance();
        (0..self.dims).map(|i| pooled[tri(i, i)]).sum::<f64>() / self.dims as f64
    }

    /// The covariance of every patch seen, at every position, about their common mean
    /// (packed): the positions' own scatter plus that of their means.
    fn pooled_covariance(&self) -> Vec<f64> {
        let d = self.dims;
        let t = d * (d + 1) / 2;
        let positions = self.height * self.width;
        let n = self.count as f64;
        let mut common = vec![0f64; d];
        for p in 0..positions {
            common.iter_mut().zip(&self.mean[p * d..(p + 1) * d]).for_each(|(c, m)| *c += m / positions as f64);
        }
        let mut scatter = vec![0f64; t];
        for p in 0..positions {
            let offset: Vec<f64> = self.mean[p * d..(p + 1) * d].iter().zip(&common).map(|(m, c)| m - c).collect();
            for i in 0..d {
                for j in 0..=i {
                    scatter[tri(i, j)] += self.comoment[p * t + tri(i, j)] + n * offset[i] * offset[j];
                }
            }
        }
        let samples = (n * positions as f64 - 1.0).max(1.0);
        scatter.into_iter().map(|s| s / samples).collect()
    }
}

/// Packed lower-triangular Cholesky factor of a packed symmetric matrix.
pub(crate) fn cholesky(a: &[f64], d: usize) -> Option<Vec<f64>> {
    let mut l = vec![0f64; a.len()];
    for i in 0..d {
        for j in 0..=i {
            let mut s = a[tri(i, j)];
            for k in 0..j {
                s -= l[tri(i, k)] * l[tri(j, k)];
            }
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[tri(i, i)] = s.sqrt();
            } else {
                l[tri(i, j)] = s / l[tri(j, j)];
            }
        }
    }
    Some(l)
}

/// Solves `L L^T x = b` for `x`, `l` a packed Cholesky factor from [`cholesky`].
pub(crate) fn cholesky_solve(l: &[f64], d: usize, b: &[f64]) -> Vec<f64> {
    let mut y = vec![0f64; d];
    for i in 0..d {
        let s: f64 = (0..i).map(|k| l[tri(i, k)] * y[k]).sum();
        y[i] = (b[i] - s) / l[tri(i, i)];
    }
    let mut x = vec![0f64; d];
    for i in (0..d).rev() {
        let s: f64 = (i + 1..d).map(|k| l[tri(k, i)] * x[k]).sum();
        x[i] = (y[i] - s) / l[tri(i, i)];
    }
    x
}

/// Inverse of a packed lower-triangular matrix (also lower-triangular).
fn invert_lower(l: &[f64], d: usize) -> Vec<f64> {
    let mut inv = vec![0f64; l.len()];
    for i in 0..d {
        inv[tri(i, i)] = 1.0 / l[tri(i, i)];
        for j in 0..i {
            let mut s = 0.0;
            for k in j..i {
                s += l[tri(i, k)] * inv[tri(k, j)];
            }
            inv[tri(i, j)] = -s / l[tri(i, i)];
        }
    }
    inv
}

/// The fitted model: per position, the mean and L^-1 where L L^T = covariance.
#[derive(Debug, Clone, PartialEq)]
pub struct PadimModel {
    pub height: usize,
    pub width: usize,
    pub dims: usize,
    pub mean: Vec<f32>,
    pub inv_chol: Vec<f32>,
}

impl PadimModel {
    /// Mahalanobis distance of every patch to its position's Gaussian (grid order).
    pub fn score(&self, grid: &PatchGrid) -> Result<Vec<f32>, EngineError> {
        if (grid.height, grid.width, grid.dims) != (self.height, self.width, self.dims) {
            return Err(EngineError::Training("image features do not match the trained profile".into()));
        }
        let d = self.dims;
        let t = d * (d + 1) / 2;
        let mut centred = vec![0f32; d];
        Ok((0..grid.positions())
            .map(|p| {
                for (k, c) in centred.iter_mut().enumerate() {
                    *c = grid.data[p * d + k] - self.mean[p * d + k];
                }
                let l = &self.inv_chol[p * t..(p + 1) * t];
                let mut sum = 0f32;
                for i in 0..d {
                    let row = &l[tri(i, 0)..=tri(i, i)];
                    let y: f32 = row.iter().zip(&centred).map(|(a, b)| a * b).sum();
                    sum += y * y;
                }
                sum.sqrt()
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn grid(values: &[f32], dims: usize) -> PatchGrid {
        PatchGrid { height: 1, width: values.len() / dims, dims, data: values.to_vec() }
    }

    #[test]
    fn mahalanobis_matches_hand_computation() {
        // One position, 2-D samples with known mean (1, 2) and covariance diag(2, 8) after regularisation 0.
        let samples = [[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [2.0, 4.0]];
        let mut acc = PadimAccumulator::new(1, 1, 2);
        for s in samples {
            acc.add(&grid(&s, 2)).unwrap();
        }
        let model = acc.finish(0.0).unwrap();
        assert_eq!(model.mean, vec![1.0, 2.0]);
        // var x = 4/3, var y = 16/3, cov = 0
        let score = model.score(&grid(&[1.0 + 2.0, 2.0], 2)).unwrap()[0];
        let expected = (4.0f32 / (4.0 / 3.0)).sqrt();
        assert!((score - expected).abs() < 1e-5, "{score} vs {expected}");
    }

    #[test]
    fn correlated_covariance_is_inverted() {
        // Samples along the diagonal: a step across it is far more anomalous than along it.
        let mut acc = PadimAccumulator::new(1, 1, 2);
        for i in 0..20 {
            let v = i as f32 / 10.0;
            let jitter = if i % 2 == 0 { 0.01 } else { -0.01 };
            acc.add(&grid(&[v, v + jitter], 2)).unwrap();
        }
        let model = acc.finish(1e-6).unwrap();
        let along = model.score(&grid(&[1.5, 1.5], 2)).unwrap()[0];
        let across = model.score(&grid(&[1.2, 0.8], 2)).unwrap()[0];
        assert!(across > 10.0 * along, "along {along}, across {across}");
    }

    #[test]
    fn cholesky_solves_a_known_system() {
        // [[4, 2], [2, 3]] x = [2, 1] has x = [0.5, 0].
        let l = cholesky(&[4.0, 2.0, 3.0], 2).unwrap();
        let x = cholesky_solve(&l, 2, &[2.0, 1.0]);
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12, "{x:?}");
    }

    #[test]
    fn needs_two_images() {
        let mut acc = PadimAccumulator::new(1, 1, 1);
        acc.add(&grid(&[1.0], 1)).unwrap();
        assert!(acc.finish(0.01).is_err());
    }

    #[test]
    fn one_image_borrows_the_pooled_covariance() {
        // One image, two positions of 1-D features 0 and 2: common mean 1, scatter
        // 1 + 1 = 2 over 2 - 1 samples, so S = 2 and both positions get variance 2.
        let mut acc = PadimAccumulator::new(1, 2, 1);
        acc.add(&grid(&[0.0, 2.0], 1)).unwrap();
        assert_eq!(acc.mean_variance(), 2.0);
        let model = acc.finish_with_prior(0.0, 4.0).unwrap();
        let scores = model.score(&grid(&[2.0, 2.0], 1)).unwrap();
        assert!((scores[0] - 2f32.sqrt()).abs() < 1e-6 && scores[1].abs() < 1e-6, "{scores:?}");
        // Two images: position 0 saw 0 and 2 (C = 2), position 1 saw 2 twice (C = 0);
        // means 1 and 2, common 1.5, scatter 2 + 0 + 2 (0.25 + 0.25) = 3 over 3 samples.
        acc.add(&grid(&[2.0, 2.0], 1)).unwrap();
        assert_eq!(acc.mean_variance(), 1.0);
        let model = acc.finish_with_prior(0.0, 1.0).unwrap();
        // Position 0: (2 + 1) / (1 + 1) = 1.5; position 1: (0 + 1) / 2 = 0.5.
        let scores = model.score(&grid(&[1.0 + 1.5f32.sqrt(), 2.0 + 0.5f32.sqrt()], 1)).unwrap();
        assert!(scores.iter().all(|s| (s - 1.0).abs() < 1e-5), "{scores:?}");
        // No prior: the plain estimate.
        assert_eq!(acc.finish_with_prior(1e-3, 0.0).unwrap(), acc.finish(1e-3).unwrap());
    }

    proptest! {
        #[test]
        fn merging_equals_refitting_on_the_union(
            a in prop::collection::vec(prop::collection::vec(-5.0f32..5.0, 6), 1..8),
            b in prop::collection::vec(prop::collection::vec(-5.0f32..5.0, 6), 1..8),
        ) {
            // 2 positions x 3 dims per sample.
            let mut union = PadimAccumulator::new(1, 2, 3);
            let mut left = PadimAccumulator::new(1, 2, 3);
            let mut right = PadimAccumulator::new(1, 2, 3);
            for s in &a { left.add(&grid(s, 3)).unwrap(); union.add(&grid(s, 3)).unwrap(); }
            for s in &b { right.add(&grid(s, 3)).unwrap(); union.add(&grid(s, 3)).unwrap(); }
            left.merge(&right).unwrap();
            prop_assert_eq!(left.count, union.count);
            for (x, y) in left.mean.iter().zip(&union.mean) { prop_assert!((x - y).abs() < 1e-9); }
            for (x, y) in left.comoment.iter().zip(&union.comoment) { prop_assert!((x - y).abs() < 1e-7 * (1.0 + y.abs())); }
        }
    }
}
