//! The demo product the app opens with, so a demo needs no preparation.
//!
//! `cargo xtask setup` puts good ELPV solar cells and a few sample cells under demo/;
//! on the first open the app saves them as a product and learns it (a few seconds, in
//! the worker); later opens find it in the library. The samples inspect with one click.

use leptos::prelude::*;

use super::actions;
use super::files::blob_of;
use super::state::{AppState, DemoManifest};
use crate::client::workbench::Workbench;
use crate::protocol::{TrainChoice, UploadedFile};
use crate::web::fetch_bytes;

const DEMO_URL: &str = "./demo/demo.json";

fn file_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_string()
}

/// Loads the demo description; on a first run (empty library) saves the demo photos as
/// a new product and trains it (the call waits in the engine's queue until the model is
/// loaded). The person may start their own product meanwhile: the demo's profile goes to
/// the demo product when it is done, and theirs stays current.
pub async fn prepare(state: AppState) {
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
    let result = async {
        let product = actions::create_product(state, &demo.product).await?;
        actions::save_good_photos(state, &product, &files).await?;
        // Shown only if the person has not started a product of their own meanwhile.
        if state.bench.with_untracked(Workbench::free_to_show) {
            actions::select(state, product.clone()).await;
        }
        actions::train_product(state, product, files, TrainChoice::default());
        Ok::<(), String>(())
    };
    if let Err(message) = result.await {
        state.report(message);
    }
}

async fn inspect_sample(state: AppState, path: String) {
    match fetch_bytes(&format!("./demo/{path}")).await {
        Ok(bytes) => match blob_of(&bytes) {
            Ok(blob) => actions::start(state, vec![(UploadedFile { name: file_name(&path), bytes }, blob)]),
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
