//! A millisecond clock for stage timings that works natively and in a browser (page or
//! worker), where `std::time::Instant` is not available.

use serde::{Deserialize, Serialize};

/// Milliseconds since an arbitrary start; only differences mean anything.
#[cfg(target_arch = "wasm32")]
pub fn now_ms() -> f64 {
    use wasm_bindgen::JsCast;
    js_sys::Reflect::get(&js_sys::global(), &"performance".into())
        .ok()
        .and_then(|p| p.dyn_into::<web_sys::Performance>().ok())
        .map(|p| p.now())
        .unwrap_or_else(js_sys::Date::now)
}

#[cfg(not(target_arch = "wasm32"))]
pub fn now_ms() -> f64 {
    use std::sync::OnceLock;
    use std::time::Instant;
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0
}

/// Where one inspection's time went, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimes {
    /// Decoding the photo, resizing and normalising it.
    pub preprocess: f64,
    /// The CNN's feature maps.
    pub backbone: f64,
    /// Embedding the patches and scoring them (PaDiM / PatchCore).
    pub scoring: f64,
    /// Anomaly map, blur, calibration, heatmap and outline.
    pub postprocess: f64,
    /// Copying the result from the GPU (0 on the CPU path).
    pub readback: f64,
}

impl StageTimes {
    pub fn total(&self) -> f64 {
        self.preprocess + self.backbone + self.scoring + self.postprocess + self.readback
    }
}

/// Measures consecutive stages: each `lap` returns the time since the previous one.
pub struct Stopwatch(f64);

impl Stopwatch {
    pub fn start() -> Self {
        Stopwatch(now_ms())
    }

    pub fn lap(&mut self) -> f64 {
        let now = now_ms();
        let elapsed = now - self.0;
        self.0 = now;
        elapsed
    }
}
