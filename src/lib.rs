//! DamageLens: visual damage inspection, trained on photos of good items only.
//!
//! Layers point one way: `engine` <- `eval` <- `service` <- `worker` / `cli`. The page
//! (`app`) talks to the engine only through `protocol` messages, with `client` keeping
//! the calls and the person's work as plain types.
//!
//! - `engine`: one frame's data flow, in module order: `image_ops` (decode, preprocess)
//!   -> `backbone` (CNN feature maps, tract) -> `embed` (patch grid) -> `padim` /
//!   `patchcore` (patch scores) -> `postprocess` (anomaly map, verdict, heatmap);
//!   `inspector` chains them and trains, `learning` keeps what training learnt so a
//!   product goes on learning exactly; `damage_head` learns a product's damage from its
//!   damaged photos and fuses it into the map; `profile` is the file; `gpu` is the same
//!   frame in WGSL compute shaders. Beside the frame: `capture` (is a shot fit to judge),
//!   `calibration_stats` (threshold and CHECK band from scores), `identify` (which
//!   product), `handheld` and `warp` (hand-held shots, for training copies and tests).
//! - `eval`: metrics, threshold estimators, dataset layouts, reports, and the one
//!   evaluation sequence (`session`) that the CLI and the app both run.
//! - `service`: the engine behind request ids (native-tested); `worker` is its Web
//!   Worker loop, `cli` the command line.
//! - `protocol`: the messages; `client`: the page's calls and state (`items`: views
//!   grouped into items; `log`: the inspection log's rules; `route`: the pages);
//!   `app`: the page.
//!
//! The feature `scoring` (on by default) brings the backbone, the GPU kernels, the
//! service, the worker and the CLI. The page is built without it, so the page's bundle
//! holds no engine: only the plain types (settings, profile file, calibration, reports)
//! and the protocol.

#[cfg(all(feature = "scoring", not(target_arch = "wasm32")))]
pub mod cli;
pub mod client;
pub mod engine;
pub mod eval;
pub mod protocol;
#[cfg(feature = "scoring")]
pub mod service;

#[cfg(target_arch = "wasm32")]
pub mod app;
#[cfg(target_arch = "wasm32")]
pub mod web;
#[cfg(all(feature = "scoring", target_arch = "wasm32"))]
pub mod worker;
