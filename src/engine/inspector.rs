//! The whole chain for one image, and training a profile from good images.

use super::backbone::Backbone;
use super::embed::{EmbedConfig, Embedder, PatchGrid};
use super::image_ops::{decode_rgb, Preprocess};
use super::manifest::BackboneManifest;
use super::padim::{PadimAccumulator, PadimModel};
use super::postprocess::{blur_sigma, heatmap_rgba, AnomalyMap, Calibration};
use super::EngineError;
use crate::eval::threshold::normal_statistics;

/// Fewer good photos give unreliable per-position Gaussians.
pub const MIN_TRAINING_IMAGES: usize = 10;
/// Every HOLDOUT_EVERY-th good image is held out to choose the threshold.
const HOLDOUT_EVERY: usize = 5;
/// Sigmas above the held-out mean for the threshold without damaged examples. Image
/// scores are maxima of a map, so their spread is wide and skewed: 3 sigma over a
/// handful of held-out photos lands far above every good item and misses real damage
/// (ELPV: 12 of 20 cracked cells caught at 3 sigma, 17 at 2, none of 20 good flagged).
const NORMAL_K: f32 = 2.0;
const PADIM_REGULARISATION: f64 = 0.01;

pub fn default_embed_config() -> EmbedConfig {
    EmbedConfig { layers: vec!["feat_s8".into(), "feat_s16".into()], dims: Some(100), seed: 42 }
}

/// A trained product: what good looks like, and where damage starts.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub backbone: String,
    pub embed: EmbedConfig,
    pub padim: PadimModel,
    pub calibration: Calibration,
    pub training_images: usize,
}

/// The result of inspecting one image.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// Raw image score (max of the anomaly map).
    pub score: f32,
    /// The same on the 0..1 scale where the threshold is 0.5.
    pub normalised_score: f32,
    pub damaged: bool,
    /// Side of the square map (the backbone input size).
    pub map_size: usize,
    /// map_size^2 RGBA pixels, to be stretched over the photo.
    pub heatmap: Vec<u8>,
    pub image_width: u32,
    pub image_height: u32,
}

/// Decode -> preprocess -> backbone -> embed, shared by training and inspection.
pub struct Inspector {
    manifest: BackboneManifest,
    preprocess: Preprocess,
    backbone: Backbone,
    embedder: Embedder,
}

impl Inspector {
    pub fn new(manifest: BackboneManifest, onnx: &[u8], embed: EmbedConfig) -> Result<Self, EngineError> {
        let mut in_dims = 0;
        for layer in &embed.layers {
            let spec = manifest
                .feature(layer)
                .ok_or_else(|| EngineError::model(&manifest.file, format!("the manifest has no output {layer}")))?;
            in_dims += spec.channels;
        }
        let names: Vec<&str> = embed.layers.iter().map(String::as_str).collect();
        let preprocess = manifest.preprocess();
        let backbone = Backbone::load(&manifest, onnx, preprocess.size, &names)?;
        Ok(Inspector { embedder: Embedder::new(embed, in_dims), preprocess, backbone, manifest })
    }

    pub fn manifest(&self) -> &BackboneManifest {
        &self.manifest
    }

    /// Patch features of one image file, plus the photo's size.
    pub fn features(&self, file: &str, bytes: &[u8]) -> Result<(PatchGrid, (u32, u32)), EngineError> {
        let rgb = decode_rgb(file, bytes)?;
        let dims = rgb.dimensions();
        let maps = self.backbone.run(self.preprocess.tensor(&rgb))?;
        Ok((self.embedder.embed(&maps)?, dims))
    }

    fn anomaly_map(&self, model: &PadimModel, grid: &PatchGrid) -> Result<AnomalyMap, EngineError> {
        let scores = model.score(grid)?;
        let size = self.preprocess.size;
        Ok(AnomalyMap::from_patch_scores(&scores, grid.height, grid.width, size as usize, blur_sigma(size)))
    }

    pub fn inspect(&self, profile: &Profile, file: &str, bytes: &[u8]) -> Result<Inspection, EngineError> {
        if profile.embed != *self.embedder.config() {
            return Err(EngineError::Training(format!(
                "profile {} was trained with other feature settings; train it again",
                profile.name
            )));
        }
        let (grid, (w, h)) = self.features(file, bytes)?;
        let map = self.anomaly_map(&profile.padim, &grid)?;
        let score = map.max();
        let cal = &profile.calibration;
        let normalised: Vec<f32> = map.values.iter().map(|v| cal.normalise(*v)).collect();
        Ok(Inspection {
            score,
            normalised_score: cal.normalise(score),
            damaged: cal.is_damaged(score),
            map_size: map.size,
            heatmap: heatmap_rgba(&normalised),
            image_width: w,
            image_height: h,
        })
    }
}

/// Trains a PaDiM profile one image at a time, so a caller can report progress and
/// skip a bad file without losing the others.
pub struct Trainer<'a> {
    inspector: &'a Inspector,
    fit: Option<PadimAccumulator>,
    holdout: Vec<PatchGrid>,
    seen: usize,
}

impl<'a> Trainer<'a> {
    pub fn new(inspector: &'a Inspector) -> Self {
        Trainer { inspector, fit: None, holdout: Vec::new(), seen: 0 }
    }

    /// Adds one good image; an error concerns this file only.
    pub fn add(&mut self, file: &str, bytes: &[u8]) -> Result<(), EngineError> {
        let (grid, _) = self.inspector.features(file, bytes)?;
        self.seen += 1;
        if self.seen % HOLDOUT_EVERY == 0 {
            self.holdout.push(grid);
            return Ok(());
        }
        self.fit
            .get_or_insert_with(|| PadimAccumulator::new(grid.height, grid.width, grid.dims))
            .add(&grid)
    }

    pub fn images(&self) -> usize {
        self.seen
    }

    /// Fits on the training part, chooses the threshold on the held-out part, then
    /// refits on everything so no photo is wasted.
    pub fn finish(self, name: &str) -> Result<Profile, EngineError> {
        if self.seen < MIN_TRAINING_IMAGES {
            return Err(EngineError::Training(format!(
                "{} usable photo(s) of good items; at least {MIN_TRAINING_IMAGES} are needed. Add more and train again",
                self.seen
            )));
        }
        let mut acc = self.fit.ok_or(EngineError::NotTrained)?;
        let fitted = acc.finish(PADIM_REGULARISATION)?;
        let mut scores = Vec::with_capacity(self.holdout.len());
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for grid in &self.holdout {
            let map = self.inspector.anomaly_map(&fitted, grid)?;
            scores.push(map.max());
            lo = lo.min(map.min());
            hi = hi.max(map.max());
        }
        let threshold = normal_statistics(&scores, NORMAL_K).map_err(EngineError::Training)?;
        for grid in &self.holdout {
            acc.add(grid)?;
        }
        let manifest = self.inspector.manifest();
        Ok(Profile {
            name: name.to_string(),
            backbone: format!("{} ({})", manifest.name, &manifest.onnx_sha256[..manifest.onnx_sha256.len().min(12)]),
            embed: self.inspector.embedder.config().clone(),
            padim: acc.finish(PADIM_REGULARISATION)?,
            calibration: Calibration {
                threshold,
                min: lo,
                max: hi.max(threshold),
                method: format!(
                    "Normal-score statistics: mean + {NORMAL_K}\u{3c3} of the scores of {} held-out good photos \
                     (at least their highest). No damaged examples were used.",
                    scores.len()
                ),
            },
            training_images: self.seen,
        })
    }
}
