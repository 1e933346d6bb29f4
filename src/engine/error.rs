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
    /// A kept learning state that cannot serve: damaged, or of another version of the product.
    #[error("{file}: {reason}. Train the product again from all its photos; it goes on learning from there")]
    Learning { file: String, reason: String },
    /// A model was asked for before any photo reached it.
    #[error("no photo of a good item was learnt: add photos of good items and press Train")]
    NothingLearnt,
    /// The backbone (the CNN) has not been loaded, or could not be.
    #[error("the anomaly model is not loaded yet{}. Wait for it, or reload the page if it does not come", .0.as_ref().map(|why| format!(" ({why})")).unwrap_or_default())]
    BackboneNotLoaded(Option<String>),
    /// A profile made with another backbone: its statistics mean nothing here.
    #[error("profile {file}: it was built for another backbone ({found}). Train the product again with this app's backbone")]
    OtherBackbone { file: String, found: String },
}

impl EngineError {
    pub fn profile(file: &str, reason: impl std::fmt::Display, fix: &'static str) -> Self {
        EngineError::Profile { file: file.to_string(), reason: reason.to_string(), fix }
    }

    pub fn model(file: &str, reason: impl std::fmt::Display) -> Self {
        EngineError::Model { file: file.to_string(), reason: reason.to_string() }
    }
}
