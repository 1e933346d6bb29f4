use thiserror::Error;

/// Every error names the file (or thing) it is about and what the user can do.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum EngineError {
    #[error("{file}: {reason}. {fix}")]
    Image { file: String, reason: String, fix: &'static str },
    #[error("backbone model {file}: {reason}. Re-run the setup command to export the model again.")]
    Model { file: String, reason: String },
    #[error("{0}")]
    Training(String),
    #[error("profile {file}: {reason}. {fix}")]
    Profile { file: String, reason: String, fix: &'static str },
    #[error("no trained profile yet: add photos of good items and press Train first")]
    NotTrained,
}

impl EngineError {
    pub fn profile(file: &str, reason: impl std::fmt::Display, fix: &'static str) -> Self {
        EngineError::Profile { file: file.to_string(), reason: reason.to_string(), fix }
    }

    pub fn model(file: &str, reason: impl std::fmt::Display) -> Self {
        EngineError::Model { file: file.to_string(), reason: reason.to_string() }
    }
}
