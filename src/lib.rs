//! DamageLens: visual damage inspection, trained on photos of good items only.
//!
//! Layers point one way: `engine` <- `eval` <- `service` <- `worker` / `cli`. The page
//! (`app`) talks to the engine only through `protocol` messages, with `client` keeping
//! the calls and the person's work as plain types.
//!
//! - `engine`: one frame's data flow, in module order: `image_ops` (decode, preprocess)
//!   -> `backbone` (CNN feature maps, tract) -> `embed` (patch grid) -> `padim` /
//!   `patchcore` (patch scores) -> `postprocess` (anomaly map, verdict, heatmap);
//!   `inspector` chains them and trains; `profile` is the file; `gpu` is the same frame
//!   in WGSL compute shaders.
//! - `eval`: metrics, threshold estimators, dataset layouts, reports, and the one
//!   evaluation sequence (`session`) that the CLI and the app both run.
//! - `service`: the engine behind request ids (native-tested); `worker` is its Web
//!   Worker loop, `cli` the command line.
//! - `protocol`: the messages; `client`: the page's calls and state; `app`: the page.

#[cfg(not(target_arch = "wasm32"))]
pub mod cli;
pub mod client;
pub mod engine;
pub mod eval;
pub mod protocol;
pub mod service;

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(target_arch = "wasm32")]
pub mod worker;
