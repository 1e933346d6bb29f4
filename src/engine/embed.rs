//! Feature maps -> one grid of patch vectors.
//!
//! Every selected layer is brought onto the grid of the finest one (coarser maps are
//! bilinearly upsampled, finer ones average-pooled), the channels are concatenated, and a
//! fixed, seeded Gaussian projection reduces them to `dims` so PaDiM's per-position
//! covariance stays small enough for a browser.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use super::backbone::FeatureMap;
use super::EngineError;

/// Patch vectors on an H x W grid: `data[(y * width + x) * dims + k]`.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchGrid {
    pub height: usize,
    pub width: usize,
    pub dims: usize,
    pub data: Vec<f32>,
}

impl PatchGrid {
    pub fn positions(&self) -> usize {
        self.height * self.width
    }
    pub fn patch(&self, p: usize) -> &[f32] {
        &self.data[p * self.dims..(p + 1) * self.dims]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedConfig {
    /// Backbone outputs that feed the patches, finest first.
    pub layers: Vec<String>,
    /// Projected dimension; `None` keeps all concatenated channels.
    pub dims: Option<usize>,
    pub seed: u64,
}

pub struct Embedder {
    config: EmbedConfig,
    in_dims: usize,
    /// in_dims x out_dims, row-major; empty when there is no projection.
    projection: Vec<f32>,
}

impl Embedder {
    pub fn new(config: EmbedConfig, in_dims: usize) -> Self {
        let projection = match config.dims {
            Some(d) => gaussian_projection(in_dims, d, config.seed),
            None => Vec::new(),
        };
        Embedder { config, in_dims, projection }
    }

    pub fn config(&self) -> &EmbedConfig {
        &self.config
    }

    pub fn out_dims(&self) -> usize {
        self.config.dims.unwrap_or(self.in_dims)
    }

    pub fn embed(&self, maps: &[FeatureMap]) -> Result<PatchGrid, EngineError> {
        let first = maps.first().ok_or_else(|| EngineError::Training("backbone returned no feature map".into()))?;
        let (h, w) = (first.height, first.width);
        let in_dims: usize = maps.iter().map(|m| m.channels).sum();
        if in_dims != self.in_dims {
            return Err(EngineError::Training(format!(
                "feature maps have {in_dims} channels, the embedding expects {}",
                self.in_dims
            )));
        }
        let mut concat = vec![0f32; h * w * in_dims];
        let mut offset = 0;
        for map in maps {
            let resampled = resample(map, h, w);
            for p in 0..h * w {
                for c in 0..map.channels {
                    concat[p * in_dims + offset + c] = resampled[c * h * w + p];
                }
            }
            offset += map.channels;
        }
        if self.projection.is_empty() {
            return Ok(PatchGrid { height: h, width: w, dims: in_dims, data: concat });
        }
        let d = self.out_dims();
        let mut out = vec![0f32; h * w * d];
        for p in 0..h * w {
            let x = &concat[p * in_dims..(p + 1) * in_dims];
            let y = &mut out[p * d..(p + 1) * d];
            for (i, xi) in x.iter().enumerate() {
                if *xi == 0.0 {
                    continue; // ReLU6 features are often exactly zero
                }
                let row = &self.projection[i * d..(i + 1) * d];
                for (yk, rk) in y.iter_mut().zip(row) {
                    *yk += xi * rk;
                }
            }
        }
        Ok(PatchGrid { height: h, width: w, dims: d, data: out })
    }
}

/// Brings a C x h x w map onto an H x W grid (CHW out).
fn resample(map: &FeatureMap, h: usize, w: usize) -> Vec<f32> {
    if (map.height, map.width) == (h, w) {
        return map.data.clone();
    }
    let mut out = vec![0f32; map.channels * h * w];
    if map.height > h {
        // Finer than the grid: average each block.
        let (fy, fx) = (map.height / h, map.width / w);
        let norm = 1.0 / (fy * fx) as f32;
        for c in 0..map.channels {
            let plane = &map.data[c * map.height * map.width..];
            for y in 0..h {
                for x in 0..w {
                    let mut s = 0.0;
                    for dy in 0..fy {
                        for dx in 0..fx {
                            s += plane[(y * fy + dy) * map.width + x * fx + dx];
                        }
                    }
                    out[c * h * w + y * w + x] = s * norm;
                }
            }
        }
    } else {
        for c in 0..map.channels {
            let plane = &map.data[c * map.height * map.width..(c + 1) * map.height * map.width];
            bilinear_into(plane, map.height, map.width, &mut out[c * h * w..(c + 1) * h * w], h, w);
        }
    }
    out
}

/// Bilinear resize of one plane with half-pixel centres (align_corners = false).
pub fn bilinear_into(src: &[f32], sh: usize, sw: usize, dst: &mut [f32], dh: usize, dw: usize) {
    let (sy, sx) = (sh as f32 / dh as f32, sw as f32 / dw as f32);
    for y in 0..dh {
        let fy = ((y as f32 + 0.5) * sy - 0.5).clamp(0.0, (sh - 1) as f32);
        let y0 = fy.floor() as usize;
        let y1 = (y0 + 1).min(sh - 1);
        let wy = fy - y0 as f32;
        for x in 0..dw {
            let fx = ((x as f32 + 0.5) * sx - 0.5).clamp(0.0, (sw - 1) as f32);
            let x0 = fx.floor() as usize;
            let x1 = (x0 + 1).min(sw - 1);
            let wx = fx - x0 as f32;
            let top = src[y0 * sw + x0] * (1.0 - wx) + src[y0 * sw + x1] * wx;
            let bottom = src[y1 * sw + x0] * (1.0 - wx) + src[y1 * sw + x1] * wx;
            dst[y * dw + x] = top * (1.0 - wy) + bottom * wy;
        }
    }
}

/// Entries drawn from N(0, 1/out) with a seeded ChaCha8 stream (Box-Muller), so the same
/// seed gives the same projection on every platform.
fn gaussian_projection(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let scale = 1.0 / (cols as f64).sqrt();
    let mut uniform = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (0..rows * cols)
        .map(|_| {
            let u1 = uniform().max(f64::MIN_POSITIVE);
            let u2 = uniform();
            ((-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos() * scale) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(c: usize, h: usize, w: usize, f: impl Fn(usize, usize, usize) -> f32) -> FeatureMap {
        let mut data = Vec::new();
        for ci in 0..c {
            for y in 0..h {
                for x in 0..w {
                    data.push(f(ci, y, x));
                }
            }
        }
        FeatureMap { channels: c, height: h, width: w, data }
    }

    #[test]
    fn concatenates_and_upsamples_onto_the_finest_grid() {
        let fine = map(2, 4, 4, |c, y, x| (c * 100 + y * 4 + x) as f32);
        let coarse = map(1, 2, 2, |_, _, _| 3.0);
        let e = Embedder::new(EmbedConfig { layers: vec![], dims: None, seed: 0 }, 3);
        let g = e.embed(&[fine, coarse]).unwrap();
        assert_eq!((g.height, g.width, g.dims), (4, 4, 3));
        assert_eq!(g.patch(5), &[5.0, 105.0, 3.0]);
    }

    #[test]
    fn average_pools_finer_maps() {
        let base = map(1, 2, 2, |_, _, _| 0.0);
        let fine = map(1, 4, 4, |_, y, x| (y * 4 + x) as f32);
        let e = Embedder::new(EmbedConfig { layers: vec![], dims: None, seed: 0 }, 2);
        let g = e.embed(&[base, fine]).unwrap();
        assert_eq!(g.patch(0)[1], (0.0 + 1.0 + 4.0 + 5.0) / 4.0);
    }

    #[test]
    fn projection_is_seeded_and_linear() {
        let a = gaussian_projection(10, 4, 7);
        assert_eq!(a, gaussian_projection(10, 4, 7));
        assert_ne!(a, gaussian_projection(10, 4, 8));
        let e = Embedder::new(EmbedConfig { layers: vec![], dims: Some(4), seed: 7 }, 10);
        let m = map(10, 1, 1, |c, _, _| if c == 3 { 2.0 } else { 0.0 });
        let g = e.embed(&[m]).unwrap();
        for k in 0..4 {
            assert!((g.data[k] - 2.0 * a[3 * 4 + k]).abs() < 1e-6);
        }
    }

    #[test]
    fn bilinear_of_a_constant_is_constant_and_of_a_ramp_is_monotone() {
        let mut dst = vec![0.0; 16];
        bilinear_into(&[2.0; 4], 2, 2, &mut dst, 4, 4);
        assert!(dst.iter().all(|v| (*v - 2.0).abs() < 1e-6));
        bilinear_into(&[0.0, 1.0, 0.0, 1.0], 2, 2, &mut dst, 4, 4);
        assert_eq!(&dst[0..4], &[0.0, 0.25, 0.75, 1.0]);
    }
}
