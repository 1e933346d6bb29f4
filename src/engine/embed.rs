//! Feature maps -> one grid of patch vectors.
//!
//! The selected layers are brought onto the grid of the finest one (coarser maps are
//! bilinearly upsampled, finer ones average-pooled) and concatenated. An optional fixed
//! Gaussian projection reduces them to `dims`, so PaDiM's per-position covariance stays
//! small enough for a browser. An optional neighbourhood average (PatchCore's local
//! aggregation) gives each patch the context of its neighbours. The projection is
//! stored in the profile, so a profile scores the same on every device.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

use super::manifest::BackboneManifest;
use super::EngineError;

/// One feature map of the single image in a batch: C x H x W, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureMap {
    /// The ONNX output it came from.
    pub name: String,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub data: Vec<f32>,
}

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

fn one() -> usize {
    1
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedConfig {
    /// Backbone outputs that feed the patches, finest first.
    pub layers: Vec<String>,
    /// Projected dimension; `None` keeps all concatenated channels.
    pub dims: Option<usize>,
    pub seed: u64,
    /// Side of the square neighbourhood averaged around each patch (1 = none, 3 = 3x3).
    #[serde(default = "one")]
    pub neighbourhood: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Embedder {
    config: EmbedConfig,
    in_dims: usize,
    /// in_dims x out_dims, row-major; empty when there is no projection.
    projection: Vec<f32>,
}

impl Embedder {
    /// A new embedder for `manifest`'s outputs, drawing the projection from the seed.
    /// Asking for as many dimensions as there are channels, or more, keeps every channel:
    /// a projection cannot add information.
    pub fn new(mut config: EmbedConfig, manifest: &BackboneManifest) -> Result<Self, EngineError> {
        let mut in_dims = 0;
        for layer in &config.layers {
            let spec =
                manifest.feature(layer).ok_or_else(|| EngineError::model(&manifest.file, format!("the manifest has no output {layer}")))?;
            in_dims += spec.channels;
        }
        config.dims = config.dims.filter(|d| *d < in_dims);
        let projection = match config.dims {
            Some(d) => gaussian_projection(in_dims, d, config.seed),
            None => Vec::new(),
        };
        Self::from_parts(config, in_dims, projection)
    }

    /// Rebuilds a stored embedder, checking that the parts fit together.
    pub fn from_parts(config: EmbedConfig, in_dims: usize, projection: Vec<f32>) -> Result<Self, EngineError> {
        let bad = |why: String| Err(EngineError::Training(format!("embedding settings are inconsistent: {why}")));
        if config.layers.is_empty() || in_dims == 0 {
            return bad("no feature layers".into());
        }
        if config.neighbourhood == 0 || config.neighbourhood.is_multiple_of(2) || config.neighbourhood > 7 {
            return bad(format!("neighbourhood {} must be 1, 3, 5 or 7", config.neighbourhood));
        }
        match config.dims {
            Some(d) if d == 0 || d > in_dims => return bad(format!("cannot project {in_dims} channels to {d} dims")),
            Some(d) if projection.len() != in_dims * d => {
                return bad(format!("projection to {d} dims from {in_dims} needs {} values, has {}", in_dims * d, projection.len()))
            }
            None if !projection.is_empty() => return bad("a projection without a target dimension".into()),
            _ => {}
        }
        Ok(Embedder { config, in_dims, projection })
    }

    pub fn config(&self) -> &EmbedConfig {
        &self.config
    }

    pub fn in_dims(&self) -> usize {
        self.in_dims
    }

    pub fn projection(&self) -> &[f32] {
        &self.projection
    }

    pub fn out_dims(&self) -> usize {
        self.config.dims.unwrap_or(self.in_dims)
    }

    /// Embeds the configured layers of `maps` (found by name, in the configured order).
    pub fn embed(&self, maps: &[FeatureMap]) -> Result<PatchGrid, EngineError> {
        let selected: Vec<&FeatureMap> = self
            .config
            .layers
            .iter()
            .map(|name| {
                maps.iter()
                    .find(|m| &m.name == name)
                    .ok_or_else(|| EngineError::Training(format!("the backbone gave no feature map {name}")))
            })
            .collect::<Result<_, _>>()?;
        let (h, w) = (selected[0].height, selected[0].width);
        let in_dims: usize = selected.iter().map(|m| m.channels).sum();
        if in_dims != self.in_dims {
            return Err(EngineError::Training(format!("feature maps have {in_dims} channels, the embedding expects {}", self.in_dims)));
        }
        let mut concat = vec![0f32; h * w * in_dims];
        let mut offset = 0;
        for map in selected {
            let resampled = resample(map, h, w);
            for p in 0..h * w {
                for c in 0..map.channels {
                    concat[p * in_dims + offset + c] = resampled[c * h * w + p];
                }
            }
            offset += map.channels;
        }
        let grid = PatchGrid { height: h, width: w, dims: in_dims, data: concat };
        let grid = if self.projection.is_empty() { grid } else { project(&grid, &self.projection, self.out_dims()) };
        Ok(neighbourhood_average(grid, self.config.neighbourhood))
    }
}

fn project(grid: &PatchGrid, projection: &[f32], d: usize) -> PatchGrid {
    let in_dims = grid.dims;
    let mut out = vec![0f32; grid.positions() * d];
    for p in 0..grid.positions() {
        let y = &mut out[p * d..(p + 1) * d];
        for (i, xi) in grid.patch(p).iter().enumerate() {
            if *xi == 0.0 {
                continue; // ReLU6 features are often exactly zero
            }
            for (yk, rk) in y.iter_mut().zip(&projection[i * d..(i + 1) * d]) {
                *yk += xi * rk;
            }
        }
    }
    debug_assert_eq!(projection.len(), in_dims * d);
    PatchGrid { height: grid.height, width: grid.width, dims: d, data: out }
}

/// Mean over the `size` x `size` neighbourhood of each patch, clipped at the borders.
fn neighbourhood_average(grid: PatchGrid, size: usize) -> PatchGrid {
    if size <= 1 {
        return grid;
    }
    let r = (size / 2) as isize;
    let (h, w, d) = (grid.height as isize, grid.width as isize, grid.dims);
    let mut out = vec![0f32; grid.data.len()];
    for y in 0..h {
        for x in 0..w {
            let target = &mut out[((y * w + x) as usize) * d..((y * w + x) as usize + 1) * d];
            let mut n = 0.0;
            for ny in (y - r).max(0)..=(y + r).min(h - 1) {
                for nx in (x - r).max(0)..=(x + r).min(w - 1) {
                    for (t, v) in target.iter_mut().zip(grid.patch((ny * w + nx) as usize)) {
                        *t += v;
                    }
                    n += 1.0;
                }
            }
            target.iter_mut().for_each(|t| *t /= n);
        }
    }
    PatchGrid { data: out, ..grid }
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

/// Entries drawn from N(0, 1/cols) with a seeded ChaCha8 stream (Box-Muller).
pub fn gaussian_projection(rows: usize, cols: usize, seed: u64) -> Vec<f32> {
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

    fn map(name: &str, c: usize, h: usize, w: usize, f: impl Fn(usize, usize, usize) -> f32) -> FeatureMap {
        let mut data = Vec::new();
        for ci in 0..c {
            for y in 0..h {
                for x in 0..w {
                    data.push(f(ci, y, x));
                }
            }
        }
        FeatureMap { name: name.into(), channels: c, height: h, width: w, data }
    }

    fn config(layers: &[&str], dims: Option<usize>, neighbourhood: usize) -> EmbedConfig {
        EmbedConfig { layers: layers.iter().map(|s| s.to_string()).collect(), dims, seed: 7, neighbourhood }
    }

    fn embedder(cfg: EmbedConfig, in_dims: usize) -> Embedder {
        let projection = cfg.dims.map(|d| gaussian_projection(in_dims, d, cfg.seed)).unwrap_or_default();
        Embedder::from_parts(cfg, in_dims, projection).unwrap()
    }

    #[test]
    fn concatenates_and_upsamples_onto_the_finest_grid() {
        let fine = map("a", 2, 4, 4, |c, y, x| (c * 100 + y * 4 + x) as f32);
        let coarse = map("b", 1, 2, 2, |_, _, _| 3.0);
        let e = embedder(config(&["a", "b"], None, 1), 3);
        let g = e.embed(&[coarse.clone(), fine]).unwrap();
        assert_eq!((g.height, g.width, g.dims), (4, 4, 3));
        assert_eq!(g.patch(5), &[5.0, 105.0, 3.0]);
        assert!(e.embed(&[coarse]).unwrap_err().to_string().contains("no feature map a"));
    }

    #[test]
    fn average_pools_finer_maps() {
        let base = map("a", 1, 2, 2, |_, _, _| 0.0);
        let fine = map("b", 1, 4, 4, |_, y, x| (y * 4 + x) as f32);
        let g = embedder(config(&["a", "b"], None, 1), 2).embed(&[base, fine]).unwrap();
        assert_eq!(g.patch(0)[1], (0.0 + 1.0 + 4.0 + 5.0) / 4.0);
    }

    #[test]
    fn projection_is_seeded_and_linear() {
        let a = gaussian_projection(10, 4, 7);
        assert_eq!(a, gaussian_projection(10, 4, 7));
        assert_ne!(a, gaussian_projection(10, 4, 8));
        let m = map("a", 10, 1, 1, |c, _, _| if c == 3 { 2.0 } else { 0.0 });
        let g = embedder(config(&["a"], Some(4), 1), 10).embed(&[m]).unwrap();
        for k in 0..4 {
            assert!((g.data[k] - 2.0 * a[3 * 4 + k]).abs() < 1e-6);
        }
    }

    #[test]
    fn neighbourhood_average_clips_at_borders() {
        let m = map("a", 1, 3, 3, |_, y, x| (y * 3 + x) as f32);
        let g = embedder(config(&["a"], None, 3), 1).embed(&[m]).unwrap();
        assert_eq!(g.patch(4)[0], 4.0); // centre: mean of 0..9
        assert_eq!(g.patch(0)[0], (0.0 + 1.0 + 3.0 + 4.0) / 4.0); // corner: 2x2 block
    }

    #[test]
    fn asking_for_more_dims_than_channels_keeps_them_all() {
        let manifest = BackboneManifest::from_json(
            "m.json",
            r#"{"name":"n","file":"n.onnx","onnx_sha256":"x","logits":null,
                "input":{"name":"input","size":64,"mean":[0.5,0.5,0.5],"std":[0.5,0.5,0.5]},
                "features":[{"name":"a","stride":8,"channels":40}]}"#,
        )
        .unwrap();
        let e = Embedder::new(config(&["a"], Some(100), 1), &manifest).unwrap();
        assert_eq!((e.out_dims(), e.config().dims, e.projection().len()), (40, None, 0));
        assert_eq!(Embedder::new(config(&["a"], Some(20), 1), &manifest).unwrap().out_dims(), 20);
    }

    #[test]
    fn inconsistent_stored_parts_are_refused() {
        assert!(Embedder::from_parts(config(&["a"], Some(4), 1), 10, vec![0.0; 39]).is_err());
        assert!(Embedder::from_parts(config(&["a"], None, 2), 10, vec![]).is_err());
        assert!(Embedder::from_parts(config(&[], None, 1), 10, vec![]).is_err());
        assert!(Embedder::from_parts(config(&["a"], Some(11), 1), 10, vec![0.0; 110]).is_err());
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
