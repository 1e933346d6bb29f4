//! The pure engine: compiles natively and to wasm32, knows nothing of the browser.

pub mod backbone;
pub mod calibration_stats;
pub mod clock;
pub mod embed;
pub mod error;
pub mod gpu;
pub mod identify;
pub mod image_ops;
pub mod inspector;
pub mod manifest;
pub mod padim;
pub mod patchcore;
pub mod postprocess;
pub mod profile;

pub use error::EngineError;
