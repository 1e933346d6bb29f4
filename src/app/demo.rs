//! The demo product the app opens with, so a demo needs no preparation.
//!
//! `cargo xtask setup` puts good ELPV solar cells and a few sample cells under demo/;
//! on the first open the app saves them as a product and learns it (a few seconds, in
//! the worker); later opens find it in the library. The samples inspect with one click.

use leptos::prelude::*;
use serde::Deserialize;

use super::{inspect, train, AppState};
use crate::protocol::{TrainChoice, UploadedFile};
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

/// Loads the demo description; on a first run (empty library) saves the demo photos as
/// a new product and trains it as soon as the engine is ready.
pub fn prepare(state: AppState) {
    leptos::task::spawn_local(async move {
        // An installation without a demo simply opens empty.
        let Ok(bytes) = fetch_bytes(DEMO_URL).await else { return };
        let demo = match serde_json::from_slice::<DemoManifest>(&bytes) {
            Ok(demo) => demo,
            Err(e) => return state.report(format!("{DEMO_URL}: the demo description is unreadable ({e}); run `cargo xtask setup` again")),
        };
        state.demo.set(Some(demo.clone()));
        // Only a first run (an empty library) gets the demo product: a renamed or
        // deleted demo is the person's choice.
        if state.products.with_untracked(|ps| !ps.is_empty()) {
            return;
        }
        let mut files = Vec::with_capacity(demo.train.len());
        for path in &demo.train {
            match fetch_bytes(&format!("./demo/{path}")).await {
                Ok(bytes) => files.push(UploadedFile { name: file_name(path), bytes }),
                Err(e) => state.report(e),
            }
        }
        state.current.set(None);
        if let Err(message) = train::add_good_photos(state, &demo.product, files).await {
            return state.report(message);
        }
        let demo_id = state.current.with_untracked(|c| c.as_ref().map(|p| p.id.clone()));
        TRAIN_WHEN_READY.set(demo_id);
        train_if_ready(state);
    });
}

thread_local! {
    /// The id of the demo product waiting for the model to be trained.
    static TRAIN_WHEN_READY: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Trains the new demo product once the model is loaded (now, or when the engine says so).
/// Training takes the current product: if the person has chosen or imported another one
/// meanwhile, the demo is left for them to train, rather than its photos training theirs.
pub fn train_if_ready(state: AppState) {
    if !state.model.with_untracked(Option::is_some) || state.training.get_untracked() {
        return;
    }
    let Some(demo_id) = TRAIN_WHEN_READY.take() else { return };
    if state.current.with_untracked(|c| c.as_ref().is_some_and(|p| p.id == demo_id)) {
        train::train(state, TrainChoice::default());
    }
}

async fn inspect_sample(state: AppState, path: String) {
    match fetch_bytes(&format!("./demo/{path}")).await {
        Ok(bytes) => match super::blob_of(&bytes) {
            Ok(blob) => inspect::start(state, vec![(UploadedFile { name: file_name(&path), bytes }, blob)]),
            Err(e) => state.report(format!("{path}: {e}")),
        },
        Err(e) => state.report(e),
    }
}

/// One-click sample photos while the demo product is the active one.
#[component]
pub fn DemoSamples() -> impl IntoView {
    let state = expect_context::<AppState>();
    let visible = move || {
        let demo = state.demo.get();
        let current = state.current.get();
        matches!((demo, current), (Some(d), Some(p)) if d.product == p.name) && state.ready()
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
