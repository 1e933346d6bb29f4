//! The whole chain for one image, and training a profile from good images.

use serde::{Deserialize, Serialize};

use super::backbone::{Backbone, FeatureMap};
use super::embed::{EmbedConfig, Embedder, PatchGrid};
use super::image_ops::{decode_rgb, Preprocess};
use super::manifest::BackboneManifest;
use super::padim::PadimAccumulator;
use super::patchcore::PatchCoreModel;
use super::postprocess::{blur_sigma, heatmap_rgba, region_outline, AnomalyMap, Calibration};
use super::profile::{short, AnomalyModel, BackboneId, Profile};
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
/// Share of training patches PatchCore keeps in its memory bank.
pub const PATCHCORE_CORESET_RATIO: f32 = 0.01;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Method {
    Padim,
    PatchCore { coreset_ratio: f32 },
}

/// How a profile is trained: the method and how patches are embedded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub method: Method,
    pub embed: EmbedConfig,
}

impl TrainSettings {
    /// PaDiM, the recommended start: strides 8 and 16 projected to 100 dimensions.
    pub fn padim() -> Self {
        TrainSettings {
            method: Method::Padim,
            embed: EmbedConfig { layers: vec!["feat_s8".into(), "feat_s16".into()], dims: Some(100), seed: 42, neighbourhood: 1 },
        }
    }

    /// PatchCore: the same layers with 3x3 neighbourhood aggregation, a 1% coreset.
    pub fn patchcore() -> Self {
        TrainSettings {
            method: Method::PatchCore { coreset_ratio: PATCHCORE_CORESET_RATIO },
            embed: EmbedConfig { layers: vec!["feat_s8".into(), "feat_s16".into()], dims: Some(100), seed: 42, neighbourhood: 3 },
        }
    }
}

/// The result of inspecting one image.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// Raw image score (max of the anomaly map).
    pub score: f32,
    /// The same on the 0..1 scale where the threshold is 0.5.
    pub normalised_score: f32,
    pub damaged: bool,
    /// The raw anomaly map at the backbone's input resolution.
    pub map: AnomalyMap,
    /// map.size^2 RGBA pixels, to be stretched over the photo.
    pub heatmap: Vec<u8>,
    /// map.size^2 bytes, 1 on the border of the damaged region.
    pub outline: Vec<u8>,
    pub image_width: u32,
    pub image_height: u32,
}

/// Decode -> preprocess -> backbone: shared by training, inspection and evaluation.
pub struct Inspector {
    manifest: BackboneManifest,
    preprocess: Preprocess,
    backbone: Backbone,
}

impl Inspector {
    /// Loads the backbone with every feature output its manifest lists.
    pub fn new(manifest: BackboneManifest, onnx: &[u8]) -> Result<Self, EngineError> {
        let size = manifest.input.size;
        Self::with_input_size(manifest, onnx, size)
    }

    /// The same backbone fed `size` x `size` photos: finer detail for small defects, at
    /// a cost that grows with the square of the size.
    pub fn with_input_size(manifest: BackboneManifest, onnx: &[u8], size: u32) -> Result<Self, EngineError> {
        if size % 32 != 0 || !(64..=1024).contains(&size) {
            return Err(EngineError::model(&manifest.file, format!("input size {size} must be a multiple of 32 from 64 to 1024")));
        }
        let names: Vec<&str> = manifest.features.iter().map(|f| f.name.as_str()).collect();
        let preprocess = Preprocess { size, ..manifest.preprocess() };
        let backbone = Backbone::load(&manifest, onnx, size, &names)?;
        Ok(Inspector { preprocess, backbone, manifest })
    }

    pub fn input_size(&self) -> u32 {
        self.preprocess.size
    }

    pub fn manifest(&self) -> &BackboneManifest {
        &self.manifest
    }

    pub fn backbone_id(&self) -> BackboneId {
        BackboneId {
            name: self.manifest.name.clone(),
            sha256: self.manifest.onnx_sha256.clone(),
            input_size: self.preprocess.size,
        }
    }

    /// Feature maps of one image file, plus the photo's size.
    pub fn feature_maps(&self, file: &str, bytes: &[u8]) -> Result<(Vec<FeatureMap>, (u32, u32)), EngineError> {
        let rgb = decode_rgb(file, bytes)?;
        let dims = rgb.dimensions();
        Ok((self.backbone.run(self.preprocess.tensor(&rgb))?, dims))
    }

    fn map_of(&self, model: &AnomalyModel, grid: &PatchGrid) -> Result<AnomalyMap, EngineError> {
        let scores = model.score(grid)?;
        let size = self.preprocess.size;
        Ok(AnomalyMap::from_patch_scores(&scores, grid.height, grid.width, size as usize, blur_sigma(size)))
    }

    /// The raw anomaly map of one image under `profile`, plus the photo's size.
    pub fn anomaly_map(&self, profile: &Profile, file: &str, bytes: &[u8]) -> Result<(AnomalyMap, (u32, u32)), EngineError> {
        if profile.backbone.sha256 != self.manifest.onnx_sha256 {
            return Err(EngineError::Training(format!(
                "profile {} was trained with backbone {} {}, this app runs {}; train it again",
                profile.name,
                profile.backbone.name,
                short(&profile.backbone.sha256),
                short(&self.manifest.onnx_sha256)
            )));
        }
        if profile.backbone.input_size != self.preprocess.size {
            return Err(EngineError::Training(format!(
                "profile {} works on {} px photos, the engine was started for {} px",
                profile.name, profile.backbone.input_size, self.preprocess.size
            )));
        }
        let (maps, dims) = self.feature_maps(file, bytes)?;
        let grid = profile.embedder.embed(&maps)?;
        Ok((self.map_of(&profile.model, &grid)?, dims))
    }

    pub fn inspect(&self, profile: &Profile, file: &str, bytes: &[u8]) -> Result<Inspection, EngineError> {
        let (map, (w, h)) = self.anomaly_map(profile, file, bytes)?;
        let score = map.max();
        let cal = &profile.calibration;
        let normalised: Vec<f32> = map.values.iter().map(|v| cal.normalise(*v)).collect();
        Ok(Inspection {
            score,
            normalised_score: cal.normalise(score),
            damaged: cal.is_damaged(score),
            heatmap: heatmap_rgba(&normalised),
            outline: region_outline(&normalised, map.size),
            map,
            image_width: w,
            image_height: h,
        })
    }
}

/// What the model is being fitted from, per method.
enum Fit {
    Padim(Option<PadimAccumulator>),
    /// All training patches, n x dims; the coreset is chosen at the end.
    PatchCore { ratio: f32, patches: Vec<f32> },
}

impl Fit {
    fn add(&mut self, grid: &PatchGrid) -> Result<(), EngineError> {
        match self {
            Fit::Padim(acc) => acc.get_or_insert_with(|| PadimAccumulator::new(grid.height, grid.width, grid.dims)).add(grid),
            Fit::PatchCore { patches, .. } => {
                patches.extend_from_slice(&grid.data);
                Ok(())
            }
        }
    }

    fn model(&self, dims: usize, seed: u64) -> Result<AnomalyModel, EngineError> {
        match self {
            Fit::Padim(acc) => Ok(AnomalyModel::Padim(acc.as_ref().ok_or(EngineError::NotTrained)?.finish(PADIM_REGULARISATION)?)),
            Fit::PatchCore { ratio, patches } => Ok(AnomalyModel::PatchCore(PatchCoreModel::fit(patches, dims, *ratio, seed)?)),
        }
    }
}

/// Trains a profile one image at a time, so a caller can report progress and skip a bad
/// file without losing the others.
pub struct Trainer<'a> {
    inspector: &'a Inspector,
    embedder: Embedder,
    fit: Fit,
    holdout: Vec<PatchGrid>,
    grid: Option<(usize, usize)>,
    seen: usize,
}

impl<'a> Trainer<'a> {
    pub fn new(inspector: &'a Inspector, settings: &TrainSettings) -> Result<Self, EngineError> {
        let embedder = Embedder::new(settings.embed.clone(), inspector.manifest())?;
        let fit = match settings.method {
            Method::Padim => Fit::Padim(None),
            Method::PatchCore { coreset_ratio } => Fit::PatchCore { ratio: coreset_ratio, patches: Vec::new() },
        };
        Ok(Trainer { inspector, embedder, fit, holdout: Vec::new(), grid: None, seen: 0 })
    }

    /// A trainer that embeds and fits as `profile` was trained, so that the same good
    /// photos give the same model and the same held-out photos. PatchCore profiles do not
    /// record their coreset ratio; the app trains them all with [`PATCHCORE_CORESET_RATIO`].
    pub fn like(inspector: &'a Inspector, profile: &Profile) -> Result<Self, EngineError> {
        let fit = match &profile.model {
            AnomalyModel::Padim(_) => Fit::Padim(None),
            AnomalyModel::PatchCore(_) => Fit::PatchCore { ratio: PATCHCORE_CORESET_RATIO, patches: Vec::new() },
        };
        Ok(Trainer { inspector, embedder: profile.embedder.clone(), fit, holdout: Vec::new(), grid: None, seen: 0 })
    }

    /// Adds one good image; an error concerns this file only.
    pub fn add(&mut self, file: &str, bytes: &[u8]) -> Result<(), EngineError> {
        let (maps, _) = self.inspector.feature_maps(file, bytes)?;
        let grid = self.embedder.embed(&maps)?;
        if *self.grid.get_or_insert((grid.height, grid.width)) != (grid.height, grid.width) {
            return Err(EngineError::Training(format!("{file}: its feature grid differs from the other photos")));
        }
        self.seen += 1;
        if self.seen % HOLDOUT_EVERY == 0 {
            self.holdout.push(grid);
            return Ok(());
        }
        self.fit.add(&grid)
    }

    /// The model fitted without the held-out photos, and their anomaly maps under it:
    /// scores of good photos that model has never seen, which is what a threshold must
    /// be chosen on (a photo the model was fitted on scores lower than a new one).
    pub fn held_out(&self) -> Result<(AnomalyModel, Vec<AnomalyMap>), EngineError> {
        if self.holdout.is_empty() {
            return Err(EngineError::Training(format!(
                "{} usable photo(s) of good items; one in {HOLDOUT_EVERY} is held out to check the threshold, so at least {MIN_TRAINING_IMAGES} are needed",
                self.seen
            )));
        }
        let model = self.fit.model(self.embedder.out_dims(), self.embedder.config().seed)?;
        let maps = self.holdout.iter().map(|grid| self.inspector.map_of(&model, grid)).collect::<Result<Vec<_>, _>>()?;
        Ok((model, maps))
    }

    /// Fits on the training part, chooses the threshold on the held-out part, then
    /// refits on everything so no photo is wasted.
    pub fn finish(mut self, name: &str) -> Result<Profile, EngineError> {
        if self.seen < MIN_TRAINING_IMAGES {
            return Err(EngineError::Training(format!(
                "{} usable photo(s) of good items; at least {MIN_TRAINING_IMAGES} are needed. Add more and train again",
                self.seen
            )));
        }
        let (dims, seed) = (self.embedder.out_dims(), self.embedder.config().seed);
        let (_, maps) = self.held_out()?;
        let scores: Vec<f32> = maps.iter().map(AnomalyMap::max).collect();
        let lo = maps.iter().map(AnomalyMap::min).fold(f32::INFINITY, f32::min);
        let hi = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let threshold = normal_statistics(&scores, NORMAL_K).map_err(EngineError::Training)?;
        for grid in &self.holdout {
            self.fit.add(grid)?;
        }
        Ok(Profile {
            name: name.to_string(),
            backbone: self.inspector.backbone_id(),
            grid: self.grid.ok_or(EngineError::NotTrained)?,
            model: self.fit.model(dims, seed)?,
            embedder: self.embedder,
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
