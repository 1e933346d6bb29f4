//! What an evaluation gives back, and why it can stop: plain data that the page shows
//! and the protocol carries (the sequence that makes it is `session`).

use serde::{Deserialize, Serialize};

use super::report::ReportCurves;
use crate::engine::error::EngineError;

/// Why an evaluation cannot go on. Each says what to do.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvalError {
    #[error("the evaluation went out of order ({0}); start it again")]
    OutOfOrder(&'static str),
    #[error("the threshold cannot be chosen: {0}")]
    Threshold(String),
    #[error("no test photo could be evaluated; check that the folder holds readable PNG or JPEG photos under test/")]
    NothingJudged,
    #[error("the report cannot be written: {0}")]
    Report(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// One of the worst cases, ready to show beside its photo and ground truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GalleryCase {
    pub path: String,
    pub anomalous: bool,
    pub score: f32,
    /// On the 0..1 scale where the evaluation's threshold is 0.5.
    pub normalised_score: f32,
    /// The heatmap (as the inspect view paints it, at the chosen threshold) as a PNG.
    #[serde(with = "serde_bytes")]
    pub heatmap_png: Vec<u8>,
}

/// Everything the report view and its exports need.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalOutcome {
    /// The report exactly as `damagelens eval --json` writes it.
    pub report_json: String,
    /// `path,label,category,score`, as `damagelens eval --scores` writes it.
    pub scores_csv: String,
    pub curves: ReportCurves,
    pub gallery: Vec<GalleryCase>,
}
