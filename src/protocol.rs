//! Messages between the page and the engine service (in the browser, its Web Worker).
//!
//! Every request the page makes is a [`Call`] with an id; the engine answers with
//! [`Event`]s carrying that id: progress, skipped files, then exactly one `Done` (the
//! reply) or `Failed` (a typed error). Events without an id ([`Status`]) are the engine's
//! own news. Plain serde types, so they are checked natively too; in the browser they
//! cross the worker boundary through serde-wasm-bindgen (bytes travel as Uint8Array).

use serde::{Deserialize, Serialize};

use crate::engine::clock::StageTimes;
use crate::engine::postprocess::{Band, Calibration, CheckBand};
use crate::engine::profile::{short, AnomalyModel, ModelCost, Profile};
use crate::engine::settings::TrainSettings;
use crate::eval::calibration::CalibrationScores;
use crate::eval::dataset::{Category, Sample};
use crate::eval::outcome::EvalOutcome;
use crate::eval::threshold::ThresholdMethod;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadedFile {
    pub name: String,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

/// A damaged photo to calibrate with, and its mask when there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DamagedPhoto {
    pub photo: UploadedFile,
    pub mask: Option<UploadedFile>,
    pub category: Option<Category>,
}

/// The methods a person can train with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum MethodChoice {
    #[default]
    Padim,
    PatchCore,
    /// Both, each with its best settings: the most accurate, and the slowest.
    Ensemble,
    /// Each of the above, PaDiM and PatchCore also with hand-held copies, tried on the product's own
    /// photos; the best is kept, and the profile says why (`engine::chooser`).
    Automatic,
}

/// How a person asked for a product to be learnt; "mark as good" retrains the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TrainChoice {
    pub method: MethodChoice,
    /// Even out each photo's brightness (for light that changes between photos).
    pub even_brightness: bool,
    /// Hand-held copies learnt beside each photo (`TrainSettings::augment`); choices
    /// saved before this field existed read as none.
    #[serde(default)]
    pub augment: u32,
}

/// Copies the app learns of each photo when "photos taken by hand" is ticked: helps the
/// map stay on the damage of hand-held shots (bench/QUALITY.md), at 4 times the training time.
pub const HAND_HELD_COPIES: u32 = 3;

impl TrainChoice {
    pub fn settings(&self) -> TrainSettings {
        let mut settings = match self.method {
            MethodChoice::Padim => TrainSettings::padim(),
            MethodChoice::PatchCore => TrainSettings::patchcore(),
            MethodChoice::Ensemble => TrainSettings::ensemble(),
            // The chooser decides on hand-held copies itself.
            MethodChoice::Automatic => return TrainSettings { even_brightness: self.even_brightness, ..TrainSettings::automatic() },
        };
        settings.even_brightness = self.even_brightness;
        settings.augment = self.augment;
        settings
    }

    /// The choice a profile was trained with.
    pub fn of(profile: &Profile) -> Self {
        let method = match profile.detectors.as_slice() {
            _ if profile.method.is_some() => MethodChoice::Automatic,
            [one] if matches!(one.model, AnomalyModel::PatchCore(_)) => MethodChoice::PatchCore,
            [_] => MethodChoice::Padim,
            _ => MethodChoice::Ensemble,
        };
        TrainChoice { method, even_brightness: profile.even_brightness, augment: profile.augment }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Fit a new profile on photos of good items; it becomes the active one when it
    /// succeeds. `product` is its id in the page's library (for identification).
    Train { name: String, product: Option<String>, choice: TrainChoice, files: Vec<UploadedFile> },
    /// Learn more good photos into a trained product without relearning the others: the
    /// product's `profile` file and the `learning` state its training kept (`Reply::Trained`)
    /// go on from where that training finished, and the result is exactly the profile of
    /// training on all the photos. Answered like `Train`; a state that cannot serve fails
    /// with `FailureKind::LearningState` (train from all the photos then).
    Learn { name: String, product: Option<String>, profile: UploadedFile, learning: UploadedFile, files: Vec<UploadedFile> },
    /// Make a saved or imported profile file the active one; a bad file leaves the active one as it was.
    Load {
        file: String,
        product: Option<String>,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// Score a photo with the active profile; with `identify`, first find which product
    /// it shows (among those given by `Recognise`).
    Inspect {
        file: UploadedFile,
        #[serde(default)]
        identify: bool,
    },
    /// The products photos are identified among (each one's profile file, by library id);
    /// replaces the ones given before. Answered with `Reply::Recognising`.
    Recognise { products: Vec<KnownProfile> },
    /// Score calibration photos: `good` are the product's good photos, in the order it was
    /// trained on; the ones training held out are scored by a model fitted without them,
    /// and so are the damaged ones.
    Calibrate { good: Vec<UploadedFile>, damaged: Vec<DamagedPhoto> },
    /// Give the active profile a new calibration; the profile file comes back.
    SetCalibration { calibration: Calibration },
    /// A step of a dataset evaluation, answered with `Reply::Eval`.
    Eval(EvalRequest),
    /// Inspect on this backend from now on; answered with `Reply::Backend`.
    SetBackend { backend: Backend },
    /// How much memory the engine holds; answered with `Reply::Stats` (benchmarks).
    Stats,
    /// Fault injection for tests: destroys the GPU device as a driver reset would, so
    /// the next GPU inspection fails and the engine must fall back to the CPU.
    LoseGpuDevice,
}

/// A product of the library for identification: its id and its profile file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnownProfile {
    pub product: String,
    pub profile: UploadedFile,
}

/// Which product a photo shows ([`crate::engine::identify::identify`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductMatch {
    /// The library id of the product; None: none of the products on this device.
    pub product: Option<String>,
    /// In [0, 1]: 1 on the product's own photos with no rival near, 0 at its bound or
    /// when the runner-up is as near.
    pub confidence: f32,
    /// The next-nearest product (for an unknown product, the nearest, which was too far),
    /// and its distance over its bound (1 or more: not that product).
    pub runner_up: Option<String>,
    pub runner_up_relative: Option<f32>,
}

/// Identifies a call; the page numbers its calls from 1.
pub type CallId = u64;

/// A request and the id its events will carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    pub id: CallId,
    pub request: Request,
}

/// What the engine sends the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// The engine's own news, about no call in particular.
    Status(Status),
    /// How far a call has come (photos done of the total).
    Progress { id: CallId, done: usize, total: usize },
    /// A file of a call was skipped; the call goes on.
    Skipped { id: CallId, message: String },
    /// The call's answer: its last event (boxed: a reply can be large, the others are small).
    Done { id: CallId, reply: Box<Reply> },
    /// The call failed: its last event. Whatever the engine held before is unchanged.
    Failed { id: CallId, error: Failure },
}

impl Event {
    /// The call this event is about, if any.
    pub fn call(&self) -> Option<CallId> {
        match self {
            Event::Status(_) => None,
            Event::Progress { id, .. } | Event::Skipped { id, .. } | Event::Done { id, .. } | Event::Failed { id, .. } => Some(*id),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Status {
    /// The engine's code is running and hears calls (before, a call would be lost: the
    /// page holds its calls until this first event).
    Listening,
    /// The backbone's file is downloading: bytes received, and in all when known.
    Downloading { received: u64, total: Option<u64> },
    /// The backbone is loaded (on the CPU; `Backend` follows once WebGPU was tried).
    Ready { model: String },
    /// The active backend changed, or WebGPU turned out (un)available; `notice` says why.
    Backend(BackendStatus),
    /// The backbone could not be loaded: nothing can be trained or inspected.
    Unavailable { message: String },
}

/// Why a call failed, by kind, so the page can act on it, with the message to show (it
/// names the file and what to do).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub kind: FailureKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailureKind {
    /// The backbone is not loaded yet (or could not be).
    BackboneNotLoaded,
    /// The call needs a product's profile and none is active.
    NoProfile,
    /// A profile made with another backbone.
    OtherBackbone,
    /// A file (photo, mask, profile) or a value the engine refused.
    Refused,
    /// A kept learning state that cannot serve (damaged, or of another version of the product).
    LearningState,
    /// The dataset evaluation cannot go on.
    Evaluation,
    /// The engine stopped or was restarted before it answered.
    EngineStopped,
    /// The page and the engine do not understand each other (a stale bundle).
    Protocol,
}

impl Failure {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Failure { kind, message: message.into() }
    }
}

/// Where inspections run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Backend {
    /// tract on the CPU (WebAssembly): always there; the reference.
    Cpu,
    /// WGSL compute shaders through the browser's WebGPU.
    WebGpu,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Cpu => "CPU",
            Backend::WebGpu => "WebGPU",
        }
    }
}

/// Which backend is active and whether WebGPU can be had here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendStatus {
    pub active: Backend,
    /// The GPU adapter, when WebGPU works here.
    pub adapter: Option<String>,
    /// Why WebGPU cannot be used, when it cannot (None while it is still being tried).
    pub unavailable: Option<String>,
    /// What just changed and why (a fallback), shown to the person once.
    pub notice: Option<String>,
}

/// Where the profile under evaluation comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EvalModel {
    /// The active profile (the current product's).
    Active,
    /// A new one, learnt from the dataset's good training photos; the active one stays.
    Train { name: String, method: MethodChoice },
}

/// A sample's ground truth as the page could read it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MaskFile {
    None,
    File(UploadedFile),
    /// Why it could not be read, naming the file.
    Unreadable(String),
}

/// The steps of an evaluation, in order: `Begin`, (`TrainImage`* then `Fit` when
/// training), `Sample { calibration: true }`*, `ChooseThreshold`, `Sample`*, `Finish`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EvalRequest {
    /// Starts an evaluation, forgetting an earlier one. `threshold` None keeps the profile's.
    Begin {
        model: EvalModel,
        threshold: Option<ThresholdMethod>,
    },
    TrainImage {
        file: UploadedFile,
    },
    Fit,
    Sample {
        sample: Sample,
        image: UploadedFile,
        mask: MaskFile,
        calibration: bool,
    },
    ChooseThreshold,
    /// The report, with `gallery` worst cases of each kind.
    Finish {
        gallery: usize,
    },
    /// Drops the evaluation under way; a later step fails until the next `Begin`.
    Cancel,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum EvalReply {
    Began,
    /// A photo is done; `problems` name what went wrong with it (left out) or its mask.
    Done {
        problems: Vec<String>,
    },
    Fitted {
        profile: Box<ProfileSummary>,
    },
    ThresholdChosen {
        value: f32,
        explanation: String,
    },
    Finished(Box<EvalOutcome>),
    /// The evaluation under way was dropped (and its maps freed).
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileSummary {
    pub name: String,
    pub backbone: String,
    pub method: String,
    pub training_images: usize,
    pub threshold: f32,
    pub threshold_method: String,
    /// The CHECK band below the threshold; absent in summaries saved before it existed.
    #[serde(default)]
    pub check: Option<CheckBand>,
    /// The share of good items calibration expects flagged (CHECK or DAMAGED).
    #[serde(default)]
    pub expected_flagged: Option<f32>,
    pub input_size: u32,
    pub cost: ModelCost,
    /// Summaries saved before this field existed read as PaDiM, as taken.
    #[serde(default)]
    pub choice: TrainChoice,
    /// Why the method was chosen, when it was chosen automatically.
    #[serde(default)]
    pub method_why: Option<String>,
    /// The damaged photos its damage head learnt from, when it has one.
    #[serde(default)]
    pub damage_head: Option<usize>,
}

impl ProfileSummary {
    pub fn of(profile: &Profile) -> Self {
        ProfileSummary {
            name: profile.name.clone(),
            backbone: format!("{} ({})", profile.backbone.name, short(&profile.backbone.sha256)),
            method: profile.method_name(),
            training_images: profile.training_images,
            threshold: profile.calibration.threshold,
            threshold_method: profile.calibration.method.clone(),
            check: profile.calibration.check.clone(),
            expected_flagged: profile.calibration.expected_flagged,
            input_size: profile.backbone.input_size,
            cost: profile.cost(),
            choice: TrainChoice::of(profile),
            method_why: profile.method.as_ref().map(|m| m.why.clone()),
            damage_head: profile.damage_head.as_ref().map(|h| h.photos),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectionReply {
    pub file: String,
    pub score: f32,
    pub normalised_score: f32,
    pub band: Band,
    /// Why the shot was not judged (blurred, dark, glaring): the band is then CHECK and
    /// the score means nothing.
    #[serde(default)]
    pub capture: Option<String>,
    /// Which product the photo shows, when the page asked (`Inspect::identify`). An unknown
    /// product comes with band CHECK, the reason in `capture` and no score.
    #[serde(default)]
    pub identified: Option<ProductMatch>,
    pub threshold: f32,
    pub latency_ms: f64,
    /// Where the time went, and on which backend.
    pub stages: StageTimes,
    pub backend: Backend,
    pub map_size: u32,
    /// map_size^2 RGBA pixels
    #[serde(with = "serde_bytes")]
    pub heatmap: Vec<u8>,
    /// map_size^2 bytes, 1 on the border of the damaged region
    #[serde(with = "serde_bytes")]
    pub outline: Vec<u8>,
    /// The product's damage head's highest damage probability over the photo, when it
    /// has a head (learnt at calibration from damaged photos); the heatmap then shows
    /// the anomaly map and the head's together, and the verdict is still the anomaly model's.
    #[serde(default)]
    pub damage: Option<f32>,
}

/// The answer to a call, in its `Event::Done`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// A new profile, active now; `bytes` is its file, for the library; `learning` is
    /// the state to go on learning from (`Request::Learn`), and `added` the photos
    /// learnt by this call.
    Trained {
        profile: ProfileSummary,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        #[serde(with = "serde_bytes")]
        learning: Vec<u8>,
        added: usize,
    },
    Loaded {
        profile: ProfileSummary,
    },
    Inspected {
        result: InspectionReply,
    },
    /// The photo shows another product than the active profile's: it was not judged;
    /// load that product's profile and ask again.
    Recognised {
        file: String,
        identified: ProductMatch,
    },
    /// Which products photos are now identified among (library ids), and the ones left
    /// out, with why.
    Recognising {
        products: Vec<String>,
        skipped: Vec<String>,
    },
    /// The calibration photos' scores; `problems` name photos or masks left out and why.
    CalibrationScored {
        scores: CalibrationScores,
        problems: Vec<String>,
    },
    /// The active profile with its new calibration; `bytes` is its file, for the library.
    Calibrated {
        profile: ProfileSummary,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    Eval(EvalReply),
    Backend(BackendStatus),
    /// The engine's WebAssembly memory, in bytes: it only grows, so this is its peak.
    Stats {
        wasm_memory_bytes: u64,
    },
    /// Done, with nothing to say.
    Ack,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_written_before_identification_still_read() {
        // The benchmark page (bench/page) and older pages send no `identify` and no `product`.
        let inspect: Request = serde_json::from_str(r#"{"Inspect":{"file":{"name":"a.png","bytes":[]}}}"#).unwrap();
        assert_eq!(inspect, Request::Inspect { file: UploadedFile { name: "a.png".into(), bytes: vec![] }, identify: false });
        let train: Request =
            serde_json::from_str(r#"{"Train":{"name":"mug","choice":{"method":"Padim","even_brightness":false},"files":[]}}"#).unwrap();
        assert!(matches!(train, Request::Train { product: None, .. }));
    }
}
