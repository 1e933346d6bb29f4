//! Teach DamageLens what a good item looks like.

use leptos::prelude::*;

use super::{engine, picked_files, read_files, AppState};
use crate::engine::inspector::MIN_TRAINING_IMAGES;
use crate::protocol::Request;

#[component]
pub fn TrainPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let name = RwSignal::new(String::new());
    let files = StoredValue::new_local(Vec::<web_sys::File>::new());
    let count = RwSignal::new(0usize);

    let start = move |_| {
        let picked = files.get_value();
        let product = match name.get_untracked().trim() {
            "" => "Untitled product".to_string(),
            n => n.to_string(),
        };
        state.training.set(true);
        state.progress.set(Some((0, picked.len())));
        leptos::task::spawn_local(async move {
            let uploaded = read_files(state, picked).await;
            if !engine::send(state, Request::Train { name: product, files: uploaded }) {
                state.training.set(false);
            }
        });
    };
    let can_train = move || state.backend.with(Option::is_some) && count.get() > 0 && !state.training.get();

    view! {
        <section class="panel" aria-labelledby="train-title">
            <h2 id="train-title">"1. Teach: photos of good items"</h2>
            <label for="profile-name">"Product name"</label>
            <input id="profile-name" type="text" data-testid="profile-name" placeholder="e.g. Solar cell, mono"
                prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/>
            <label for="train-files">{format!("Photos of good items (at least {MIN_TRAINING_IMAGES})")}</label>
            <input id="train-files" type="file" multiple accept="image/png,image/jpeg" data-testid="train-files"
                on:change=move |ev| {
                    let picked = picked_files(&ev);
                    count.set(picked.len());
                    files.set_value(picked);
                }/>
            <p class="hint">{move || format!("{} photo(s) selected", count.get())}</p>
            <button data-testid="train-start" on:click=start disabled=move || !can_train()>"Train"</button>
            <Show when=move || state.training.get() || state.progress.with(Option::is_some)>
                {move || {
                    let (done, total) = state.progress.get().unwrap_or((0, 1));
                    view! {
                        <label class="progress-label" for="train-progress">
                            {if state.training.get() { format!("Learning: {done} of {total} photos") } else { format!("Learned from {done} photos") }}
                        </label>
                        <progress id="train-progress" data-testid="train-progress" max=total value=done></progress>
                    }
                }}
            </Show>
            {move || state.profile.get().map(|p| view! {
                <div class="profile" data-testid="profile-ready">
                    <p><strong>{p.name.clone()}</strong>" is ready: "{p.method.clone()}" on "{p.training_images}" good photos, backbone "{p.backbone.clone()}"."</p>
                    <p data-testid="threshold-value">{format!("Threshold: score {:.1} (0.50 on the heatmap scale)", p.threshold)}</p>
                    <p class="hint" data-testid="threshold-method">{p.threshold_method.clone()}</p>
                </div>
            })}
        </section>
    }
}
