//! DamageLens: visual damage inspection, trained on photos of good items only.
//!
//! The data flow of one frame follows the module names:
//! `engine::image_ops` (decode, preprocess) -> `engine::backbone` (CNN feature maps)
//! -> `engine::embed` (patch grid) -> `engine::padim` (patch scores)
//! -> `engine::postprocess` (anomaly map, verdict, heatmap).
//! `eval` holds threshold estimators; `app` and `worker` are the browser around the engine.

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
pub mod engine;
pub mod eval;
pub mod protocol;

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(target_arch = "wasm32")]
pub mod worker;
