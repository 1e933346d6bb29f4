//! PatchCore: a memory bank of good patches; a patch's score is the distance to its
//! nearest neighbour in the bank, wherever on the item that neighbour came from. That is
//! why it copes with items whose position varies, where PaDiM's per-position Gaussians
//! do not.
//!
//! The bank is a greedy k-center coreset of all training patches: each pick is the patch
//! farthest from everything picked so far, so rare good appearances survive the cut.

use rand_chacha::ChaCha8Rng;
use rand_core::SeedableRng;

use super::embed::{gaussian_projection, PatchGrid};
use super::EngineError;

/// Distances during coreset selection are taken in this many projected dimensions, as
/// in the PatchCore paper: the ordering is nearly unchanged and the cost drops.
const SELECTION_DIMS: usize = 32;

/// The smallest memory bank kept: at the default 1% coreset it only matters below about
/// 130 training photos (784 patches each), where 1% would keep a few dozen patches of
/// what the product looks like.
pub const MIN_BANK: usize = 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct PatchCoreModel {
    pub dims: usize,
    /// bank_size x dims, row-major
    pub bank: Vec<f32>,
}

impl PatchCoreModel {
    pub fn bank_size(&self) -> usize {
        self.bank.len() / self.dims.max(1)
    }

    /// Fits the bank: `ratio` of the patches, but never fewer than [`MIN_BANK`] (all of
    /// them when there are fewer), so a product of a few photos keeps what it saw.
    pub fn fit(patches: &[f32], dims: usize, ratio: f32, seed: u64) -> Result<Self, EngineError> {
        if dims == 0 || patches.is_empty() || !patches.len().is_multiple_of(dims) {
            return Err(EngineError::Training("PatchCore got no training patches".into()));
        }
        if !(ratio > 0.0 && ratio <= 1.0) {
            return Err(EngineError::Training(format!("coreset ratio {ratio} must be in (0, 1]")));
        }
        let n = patches.len() / dims;
        let target = ((n as f64 * ratio as f64).round() as usize).max(MIN_BANK).clamp(1, n);
        let chosen = greedy_coreset(patches, dims, target, seed);
        let mut bank = Vec::with_capacity(target * dims);
        for i in chosen {
            bank.extend_from_slice(&patches[i * dims..(i + 1) * dims]);
        }
        Ok(PatchCoreModel { dims, bank })
    }

    /// Euclidean distance of every patch to its nearest bank entry (grid order).
    pub fn score(&self, grid: &PatchGrid) -> Result<Vec<f32>, EngineError> {
        if grid.dims != self.dims {
            return Err(EngineError::Training("image features do not match the trained profile".into()));
        }
        let d = self.dims;
        let bank_norms: Vec<f32> = self.bank.chunks_exact(d).map(|b| b.iter().map(|v| v * v).sum()).collect();
        Ok((0..grid.positions())
            .map(|p| {
                let q = grid.patch(p);
                let qn: f32 = q.iter().map(|v| v * v).sum();
                // |q - b|^2 = |q|^2 + |b|^2 - 2 q.b: one dot product per bank entry.
                let best = self
                    .bank
                    .chunks_exact(d)
                    .zip(&bank_norms)
                    .map(|(b, bn)| bn - 2.0 * b.iter().zip(q).map(|(x, y)| x * y).sum::<f32>())
                    .fold(f32::INFINITY, f32::min);
                (qn + best).max(0.0).sqrt()
            })
            .collect())
    }
}

/// Indices of `target` patches chosen by greedy k-center selection, starting from a
/// seeded random patch.
pub fn greedy_coreset(patches: &[f32], dims: usize, target: usize, seed: u64) -> Vec<usize> {
    let n = patches.len() / dims;
    if target >= n {
        return (0..n).collect();
    }
    let k = SELECTION_DIMS.min(dims);
    let projected: Vec<f32> = if k < dims {
        let m = gaussian_projection(dims, k, seed);
        patches
            .chunks_exact(dims)
            .flat_map(|x| (0..k).map(|j| x.iter().enumerate().map(|(i, v)| v * m[i * k + j]).sum::<f32>()).collect::<Vec<_>>())
            .collect()
    } else {
        patches.to_vec()
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let first = (rand_core::RngCore::next_u64(&mut rng) % n as u64) as usize;
    let mut chosen = Vec::with_capacity(target);
    let mut min_dist = vec![f32::INFINITY; n];
    let mut last = first;
    for _ in 0..target {
        chosen.push(last);
        let c = &projected[last * k..(last + 1) * k];
        let mut far = (0usize, f32::NEG_INFINITY);
        for (i, (x, md)) in projected.chunks_exact(k).zip(min_dist.iter_mut()).enumerate() {
            let dist: f32 = x.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum();
            if dist < *md {
                *md = dist;
            }
            if *md > far.1 {
                far = (i, *md);
            }
        }
        last = far.0;
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid(values: &[f32], dims: usize) -> PatchGrid {
        PatchGrid { height: 1, width: values.len() / dims, dims, data: values.to_vec() }
    }

    #[test]
    fn nearest_neighbour_distance_matches_brute_force() {
        let bank = vec![0.0, 0.0, 3.0, 4.0, -1.0, 1.0];
        let model = PatchCoreModel { dims: 2, bank };
        let scores = model.score(&grid(&[3.0, 4.0, 0.0, 2.0, 10.0, 10.0], 2)).unwrap();
        assert!((scores[0] - 0.0).abs() < 1e-5);
        assert!((scores[1] - 2f32.sqrt()).abs() < 1e-5); // nearest is (-1, 1)
        assert!((scores[2] - (49.0f32 + 36.0).sqrt()).abs() < 1e-4); // nearest is (3, 4)
    }

    #[test]
    fn coreset_keeps_the_outlying_cluster() {
        // 99 patches near the origin and one far away: a 2-patch coreset must keep the far one.
        let mut patches: Vec<f32> = (0..99).flat_map(|i| [i as f32 * 1e-3, 0.0]).collect();
        patches.extend_from_slice(&[100.0, 100.0]);
        let chosen = greedy_coreset(&patches, 2, 2, 1);
        assert!(chosen.contains(&99), "{chosen:?}");
    }

    #[test]
    fn the_bank_keeps_at_least_min_bank_patches() {
        // 100 patches at 2%: fewer than MIN_BANK, so every one is kept.
        let few: Vec<f32> = (0..100).flat_map(|i| [i as f32, 0.0]).collect();
        assert_eq!(PatchCoreModel::fit(&few, 2, 0.02, 1).unwrap().bank_size(), 100);
        // 3000 at 1% would keep 30: MIN_BANK are kept instead.
        let many: Vec<f32> = (0..3000).flat_map(|i| [(i % 50) as f32, (i / 50) as f32]).collect();
        assert_eq!(PatchCoreModel::fit(&many, 2, 0.01, 1).unwrap().bank_size(), MIN_BANK);
    }

    #[test]
    fn coreset_covers_the_data() {
        // k-center guarantee in practice: every patch is close to some chosen one.
        let patches: Vec<f32> = (0..400).flat_map(|i| [(i % 20) as f32, (i / 20) as f32]).collect();
        let bank = greedy_coreset(&patches, 2, 100, 3).into_iter().flat_map(|i| [patches[2 * i], patches[2 * i + 1]]).collect();
        let model = PatchCoreModel { dims: 2, bank };
        let scores = model.score(&grid(&patches, 2)).unwrap();
        let worst = scores.iter().copied().fold(0.0, f32::max);
        assert!(worst <= 1.5, "a patch is {worst} from the coreset");
    }

    #[test]
    fn bad_settings_are_refused() {
        assert!(PatchCoreModel::fit(&[], 2, 0.1, 0).is_err());
        assert!(PatchCoreModel::fit(&[1.0, 2.0], 2, 0.0, 0).is_err());
        assert!(PatchCoreModel::fit(&[1.0, 2.0], 2, f32::NAN, 0).is_err());
    }
}
