//! The demo product the app opens with, so a demo needs no preparation.
//!
//! `cargo xtask setup` puts good ELPV solar cells and a few sample cells under demo/;
//! on open the app learns the demo product from them (a few seconds, in the worker) and
//! offers the samples to inspect with one click.

use leptos::prelude::*;
use serde::Deserialize;

use super::{engine, inspect, AppState};
use crate::protocol::{Request, UploadedFile};
use crate::web::fetch_bytes;

const DEMO_URL: &str = "./demo/demo.json";

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DemoManifest {
    pub product: String,
    pub credit: String,
    pub train: Vec<String>,
    pub samples: Vec<DemoSample>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DemoSample {
    pub file: String,
    pub label: String,
}

fn file_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// Loads the demo description, then trains the demo product once the engine is ready
/// and nothing else has been trained.
pub fn prepare(state: AppState) {
    leptos::task::spawn_local(async move {
        // An installation without a demo simply opens empty.
        let Ok(bytes) = fetch_bytes(DEMO_URL).await else { return };
        match serde_json::from_slice::<DemoManifest>(&bytes) {
            Ok(demo) => state.demo.set(Some(demo)),
            Err(e) => state.report(format!("{DEMO_URL}: the demo description is unreadable ({e}); run `cargo xtask setup` again")),
        }
    });
    let started = StoredValue::new(false);
    Effect::new(move |_| {
        let ready = state.backend.with(Option::is_some);
        let Some(demo) = state.demo.get() else { return };
        if !ready || started.get_value() || state.training.get_untracked() || state.profile.with_untracked(Option::is_some) {
            return;
        }
        started.set_value(true);
        state.training.set(true);
        state.progress.set(Some((0, demo.train.len())));
        leptos::task::spawn_local(async move {
            let mut files = Vec::with_capacity(demo.train.len());
            for path in &demo.train {
                match fetch_bytes(&format!("./demo/{path}")).await {
                    Ok(bytes) => files.push(UploadedFile { name: file_name(path), bytes }),
                    Err(e) => state.report(e),
                }
            }
            if !engine::send(state, Request::Train { name: demo.product.clone(), files }) {
                state.training.set(false);
            }
        });
    });
}

async fn inspect_sample(state: AppState, path: String) {
    match fetch_bytes(&format!("./demo/{path}")).await {
        Ok(bytes) => {
            let array = js_sys::Uint8Array::from(bytes.as_slice());
            let parts = js_sys::Array::of1(&array);
            match web_sys::Blob::new_with_u8_array_sequence(&parts) {
                Ok(blob) => inspect::start(state, UploadedFile { name: file_name(&path), bytes }, blob),
                Err(e) => state.report(format!("{path}: {e:?}")),
            }
        }
        Err(e) => state.report(e),
    }
}

/// One-click sample photos while the demo product is the active one.
#[component]
pub fn DemoSamples() -> impl IntoView {
    let state = expect_context::<AppState>();
    let visible = move || {
        let demo = state.demo.get();
        let profile = state.profile.get();
        matches!((demo, profile), (Some(d), Some(p)) if d.product == p.name) && !state.training.get()
    };
    view! {
        <Show when=visible>
            <p class="hint">"Or try a demo photo:"</p>
            <div class="samples" data-testid="demo-samples">
                {move || state.demo.get().map(|demo| demo.samples.into_iter().map(|sample| {
                    let path = sample.file.clone();
                    let label = format!("Inspect {} ({})", file_name(&sample.file), sample.label);
                    view! {
                        <button class="sample" title=label.clone() aria-label=label
                            on:click=move |_| leptos::task::spawn_local(inspect_sample(state, path.clone()))>
                            <img src=format!("demo/{}", sample.file) alt="" width="72" height="72"/>
                            <span>{sample.label.clone()}</span>
                        </button>
                    }
                }).collect_view())}
            </div>
        </Show>
    }
}

/// Credit for the demo data, as its licence asks.
#[component]
pub fn DemoCredit() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <footer class="credit">
            {move || state.demo.get().map(|d| d.credit)}
            " Backbone: EfficientNet-Lite0, ImageNet weights (Apache-2.0). Everything runs on this device; no image leaves it."
        </footer>
    }
}
