//! How a profile is trained (methods, layers, the fewest photos): plain settings that the
//! page, the protocol and the engine share, without the backbone that runs them.

use serde::{Deserialize, Serialize};

use super::embed::EmbedConfig;

/// The fewest good photos a product is trained from: one works (bench/QUALITY.md, few
/// good photos), more photos work better.
pub const MIN_TRAINING_IMAGES: usize = 1;
/// The app asks for at least this many: on ELPV cells 10 photos rank damage about 86%
/// as well as 200 do, 5 photos 80%, 1 photo 70% (bench/QUALITY.md, few good photos).
pub const RECOMMENDED_PHOTOS: usize = 10;
/// From this many good photos on, one in five is held out to choose the threshold;
/// with fewer, every photo is learnt and the threshold comes from hand-held copies of
/// them that the model never learns (`engine::inspector::Trainer`).
pub const HELD_OUT_FROM: usize = 10;
/// Every HOLDOUT_EVERY-th good photo is held out to choose the threshold.
pub const HOLDOUT_EVERY: usize = 5;
/// Share of training patches PatchCore keeps in its memory bank.
pub const PATCHCORE_CORESET_RATIO: f32 = 0.01;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Method {
    Padim,
    PatchCore { coreset_ratio: f32 },
}

/// How one detector is trained: the method and how patches are embedded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectorSettings {
    pub method: Method,
    pub embed: EmbedConfig,
}

/// How a profile is trained: one detector, or several whose maps are averaged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    pub detectors: Vec<DetectorSettings>,
    /// Even out each photo's brightness before the backbone (for light that varies
    /// between photos; see `Preprocess::tensor`).
    pub even_brightness: bool,
    /// Hand-held copies of each training photo (seeded shift, turn, zoom and light within
    /// the range of [`crate::engine::handheld::HandHeld`]) learnt beside it: the model then
    /// knows the item as a tablet held by hand sees it. 0 learns the photos as they are.
    #[serde(default)]
    pub augment: u32,
    /// Train every [`crate::engine::chooser::Candidate`] and keep the one that best tells
    /// made-up damage from held-out good photos; `detectors` and `augment` are then unused.
    #[serde(default)]
    pub choose: bool,
}

impl DetectorSettings {
    fn padim(layers: &[&str], neighbourhood: usize) -> Self {
        let embed = EmbedConfig { layers: layers.iter().map(|l| l.to_string()).collect(), dims: Some(100), seed: 42, neighbourhood };
        DetectorSettings { method: Method::Padim, embed }
    }

    fn patchcore(neighbourhood: usize) -> Self {
        let embed = EmbedConfig { layers: vec!["feat_s8".into(), "feat_s16".into()], dims: Some(100), seed: 42, neighbourhood };
        DetectorSettings { method: Method::PatchCore { coreset_ratio: PATCHCORE_CORESET_RATIO }, embed }
    }
}

impl TrainSettings {
    /// PaDiM, the recommended start: strides 8 and 16 projected to 100 dimensions.
    pub fn padim() -> Self {
        TrainSettings {
            detectors: vec![DetectorSettings::padim(&["feat_s8", "feat_s16"], 1)],
            even_brightness: false,
            augment: 0,
            choose: false,
        }
    }

    /// PatchCore: the same layers with 3x3 neighbourhood aggregation, a 1% coreset.
    pub fn patchcore() -> Self {
        TrainSettings { detectors: vec![DetectorSettings::patchcore(3)], even_brightness: false, augment: 0, choose: false }
    }

    /// The most accurate setting measured (bench/STUDY.md): PaDiM on strides 4, 8 and 16
    /// with 3x3 neighbourhoods, together with PatchCore on 5x5 neighbourhoods. PaDiM knows where things belong;
    /// PatchCore knows what patches look like wherever they are. About ten times the
    /// work of PaDiM alone per photo.
    pub fn ensemble() -> Self {
        TrainSettings {
            detectors: vec![DetectorSettings::padim(&["feat_s4", "feat_s8", "feat_s16"], 3), DetectorSettings::patchcore(5)],
            even_brightness: false,
            augment: 0,
            choose: false,
        }
    }

    /// The method chosen for the product from its own photos ([`crate::engine::chooser`]).
    pub fn automatic() -> Self {
        TrainSettings { detectors: Vec::new(), even_brightness: false, augment: 0, choose: true }
    }
}
