//! The model manifest: what a backbone ONNX file is, how to feed it, which outputs to use.

use serde::{Deserialize, Serialize};

use super::image_ops::Preprocess;
use super::EngineError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackboneManifest {
    pub name: String,
    pub file: String,
    pub onnx_sha256: String,
    pub input: InputSpec,
    pub features: Vec<FeatureSpec>,
    pub logits: Option<String>,
    /// How the file stores its weights: "float16" (half the download; Cast nodes widen
    /// them to float32 when the model loads, so every op computes in float32) or
    /// "float32". Absent in manifests written before: float32.
    #[serde(default)]
    pub weights: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    pub name: String,
    pub size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureSpec {
    pub name: String,
    pub stride: u32,
    pub channels: usize,
}

impl BackboneManifest {
    pub fn from_json(file: &str, json: &str) -> Result<Self, EngineError> {
        let manifest: Self = serde_json::from_str(json).map_err(|e| EngineError::model(file, e))?;
        if manifest.features.is_empty() {
            return Err(EngineError::model(file, "the manifest lists no feature outputs"));
        }
        if !(32..=1024).contains(&manifest.input.size) {
            return Err(EngineError::model(file, "input size must be between 32 and 1024"));
        }
        if manifest.input.std.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(EngineError::model(file, "normalisation std must be positive"));
        }
        if manifest.weights.as_deref().is_some_and(|w| !matches!(w, "float16" | "float32")) {
            return Err(EngineError::model(file, "weights must be stored as float16 or float32"));
        }
        Ok(manifest)
    }

    pub fn preprocess(&self) -> Preprocess {
        Preprocess { size: self.input.size, mean: self.input.mean, std: self.input.std }
    }

    pub fn feature(&self, name: &str) -> Option<&FeatureSpec> {
        self.features.iter().find(|f| f.name == name)
    }
}
