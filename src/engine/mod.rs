//! The pure engine: compiles natively and to wasm32, knows nothing of the browser.
//! `backbone`, `gpu` and `inspector` run the network and need the `scoring` feature;
//! the rest is plain data and arithmetic that the page may use too.

#[cfg(feature = "scoring")]
pub mod backbone;
pub mod calibration_stats;
pub mod capture;
pub mod chooser;
pub mod clock;
pub mod damage_head;
pub mod embed;
pub mod error;
#[cfg(feature = "scoring")]
pub mod gpu;
pub mod handheld;
pub mod identify;
pub mod image_ops;
#[cfg(feature = "scoring")]
pub mod inspector;
pub mod learning;
pub mod manifest;
pub mod padim;
pub mod patchcore;
pub mod postprocess;
pub mod profile;
pub mod settings;
pub mod warp;

pub use error::EngineError;
