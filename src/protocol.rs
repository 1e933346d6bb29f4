//! Messages between the page and the engine's Web Worker.
//!
//! Plain serde types, so they are checked natively too; in the browser they cross the
//! worker boundary through serde-wasm-bindgen (bytes travel as Uint8Array).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UploadedFile {
    pub name: String,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Fit a new profile on photos of good items; replaces the current one when it succeeds.
    Train { name: String, files: Vec<UploadedFile> },
    Inspect { file: UploadedFile },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileSummary {
    pub name: String,
    pub backbone: String,
    pub method: String,
    pub training_images: usize,
    pub threshold: f32,
    pub threshold_method: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InspectionReply {
    pub file: String,
    pub score: f32,
    pub normalised_score: f32,
    pub damaged: bool,
    pub threshold: f32,
    pub latency_ms: f64,
    pub map_size: u32,
    /// map_size^2 RGBA pixels
    #[serde(with = "serde_bytes")]
    pub heatmap: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// The backbone is loaded; `backend` names where it runs.
    Ready { backend: String, model: String },
    Progress { done: usize, total: usize },
    /// A file was skipped; the batch goes on.
    Skipped { message: String },
    Trained { profile: ProfileSummary },
    Inspected { result: InspectionReply },
    /// The request failed as a whole; whatever was there before is unchanged.
    Failed { message: String },
}
