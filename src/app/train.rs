//! Teach DamageLens what a good item looks like: photos (files, a folder, or dropped),
//! saved as they are added, then training with progress, time left and cancel.

use leptos::prelude::*;

use super::files::{blob_of, picked_files, read_files};
use super::state::{now_ms, AppState, Progress};
use super::store::Photo;
use super::{actions, client};
use crate::engine::settings::RECOMMENDED_PHOTOS;
use crate::protocol::{MethodChoice, TrainChoice, HAND_HELD_COPIES};

fn time_left(p: &Progress) -> String {
    if p.done == 0 || p.done >= p.total {
        return String::new();
    }
    let per_photo = (now_ms() - p.started_ms) / p.done as f64;
    let seconds = (per_photo * (p.total - p.done) as f64 / 1000.0).ceil();
    format!(", about {seconds:.0} s left")
}

#[component]
pub fn TrainPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let name = RwSignal::new(String::new());
    let method = RwSignal::new(MethodChoice::Automatic);
    let even_brightness = RwSignal::new(false);
    let hand_held = RwSignal::new(false);
    let dragging = RwSignal::new(false);

    let add = move |files: Vec<web_sys::File>| {
        leptos::task::spawn_local(async move {
            let uploaded = read_files(state, files).await;
            if let Err(message) = actions::add_good_photos(state, &name.get_untracked(), uploaded).await {
                state.report(message);
            }
        });
    };
    let on_drop = move |ev: web_sys::DragEvent| {
        ev.prevent_default();
        dragging.set(false);
        let Some(list) = ev.data_transfer().and_then(|d| d.files()) else { return };
        add((0..list.length()).filter_map(|i| list.get(i)).collect());
    };
    let remove = move |key: Option<f64>| {
        let (Some(key), Some(library)) = (key, state.library()) else { return };
        leptos::task::spawn_local(async move {
            match library.delete_photo(key).await {
                Ok(()) => state.photos.update(|ps| ps.retain(|p| p.key != Some(key))),
                Err(message) => state.report(message),
            }
        });
    };
    let count = move || state.photos.with(Vec::len);
    let can_train = move || state.model.with(Option::is_some) && count() > 0 && !state.training();
    let progress = move || state.current.with(|c| c.as_ref().and_then(|p| state.train_progress.with(|all| all.get(&p.id).copied())));
    let title = move || match state.current.get() {
        Some(p) => format!("Teach {}: photos of good items", p.name),
        None => "Teach a new product: photos of good items".into(),
    };

    view! {
        <section class="panel" aria-labelledby="train-title">
            <h2 id="train-title">{title}</h2>
            <Show when=move || state.current.with(Option::is_none)>
                <label for="profile-name">"Product name"</label>
                <input id="profile-name" type="text" data-testid="profile-name" placeholder="e.g. Solar cell, mono"
                    prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev))/>
            </Show>
            <div class="dropzone" class:dragging=move || dragging.get()
                on:dragover=move |ev: web_sys::DragEvent| { ev.prevent_default(); dragging.set(true); }
                on:dragleave=move |_| dragging.set(false)
                on:drop=on_drop>
                <label for="train-files">{format!("Add photos of good items ({RECOMMENDED_PHOTOS} or more work best), or drop them here")}</label>
                <input id="train-files" type="file" multiple accept="image/png,image/jpeg" data-testid="train-files"
                    disabled=move || state.training() on:change=move |ev| add(picked_files(&ev))/>
                <label for="train-folder">"…or a whole folder"</label>
                <input id="train-folder" type="file" multiple prop:webkitdirectory=true data-testid="train-folder"
                    disabled=move || state.training() on:change=move |ev| add(picked_files(&ev))/>
                <super::camera::CaptureGood name/>
            </div>
            <p class="hint" data-testid="photo-count">{move || format!("{} good photo(s) saved", count())}</p>
            <Show when=move || (1..RECOMMENDED_PHOTOS).contains(&count())>
                <p class="hint warn" data-testid="few-photos">{move || format!(
                    "With {} photo(s) a product can be trained, but it judges less reliably: on solar cells, 5 photos \
                     rank damage about 80% as well as 200 do, 10 photos about 86% (bench/QUALITY.md). Add more when you can.",
                    count()
                )}</p>
            </Show>
            <Show when=move || { count() > 0 }>
                <ul class="thumbs" aria-label="Good photos">
                    <For each=move || state.photos.get() key=|p| p.key.map(|k| k as u64) let:photo>
                        <Thumb photo=photo.clone() on_remove=move || remove(photo.key) disabled=Signal::derive(move || state.training())/>
                    </For>
                </ul>
            </Show>
            <fieldset class="method">
                <legend>"Method"</legend>
                <label><input type="radio" name="method" data-testid="method-auto" checked=move || method.get() == MethodChoice::Automatic
                    on:change=move |_| method.set(MethodChoice::Automatic)/>" Automatic (recommended): tries each method below on your photos, with and without hand-held copies, and keeps the best; training takes several times as long"</label>
                <label><input type="radio" name="method" data-testid="method-padim" checked=move || method.get() == MethodChoice::Padim
                    on:change=move |_| method.set(MethodChoice::Padim)/>" PaDiM: fast; best when items sit in the same place in every photo"</label>
                <label><input type="radio" name="method" data-testid="method-patchcore" checked=move || method.get() == MethodChoice::PatchCore
                    on:change=move |_| method.set(MethodChoice::PatchCore)/>" PatchCore: finds damage wherever the item sits; slower"</label>
                <label><input type="radio" name="method" data-testid="method-ensemble" checked=move || method.get() == MethodChoice::Ensemble
                    on:change=move |_| method.set(MethodChoice::Ensemble)/>" Both: the most accurate; several times slower"</label>
                <label><input type="checkbox" data-testid="even-brightness" prop:checked=move || even_brightness.get()
                    on:change=move |ev| even_brightness.set(event_target_checked(&ev))/>" Even out lighting between photos (not for damage that darkens the whole item)"</label>
                <label><input type="checkbox" data-testid="hand-held" prop:checked=move || hand_held.get()
                    disabled=move || method.get() == MethodChoice::Automatic
                    on:change=move |ev| hand_held.set(event_target_checked(&ev))/>
                    {format!(" Photos taken by hand: also learn {HAND_HELD_COPIES} shifted, turned and zoomed copies of each (the heatmap stays on the damage better; training takes {} times as long)", HAND_HELD_COPIES + 1)}</label>
            </fieldset>
            <div class="actions">
                <button data-testid="train-start" on:click=move |_| actions::train(state, TrainChoice {
                    method: method.get_untracked(),
                    even_brightness: even_brightness.get_untracked(),
                    augment: if hand_held.get_untracked() { HAND_HELD_COPIES } else { 0 },
                }) disabled=move || !can_train()>"Train"</button>
                <Show when=move || state.training()>
                    <button class="secondary" data-testid="train-cancel" on:click=move |_| client::cancel(state)>"Cancel"</button>
                </Show>
            </div>
            <Show when=move || state.training()>
                {move || {
                    let p = progress().unwrap_or(Progress { done: 0, total: 1, started_ms: now_ms() });
                    view! {
                        <label class="progress-label" for="train-progress">
                            {format!("Learning: {} of {} photos{}", p.done, p.total, time_left(&p))}
                        </label>
                        <progress id="train-progress" data-testid="train-progress" max=p.total value=p.done></progress>
                    }
                }}
            </Show>
            {move || state.current.get().and_then(|p| p.summary.map(|s| (p.name, s))).map(|(name, s)| view! {
                <div class="profile" data-testid="profile-ready">
                    <p><strong>{name}</strong>" is ready: "{s.method.clone()}" on "{s.training_images}" good photos."</p>
                    {s.method_why.map(|why| view! { <p class="hint" data-testid="method-why">{why}</p> })}
                    {s.damage_head.map(|photos| view! { <p class="hint" data-testid="profile-damage-head">{format!(
                        "It also learnt what damage looks like from {photos} damaged photo{} (at calibration): the heatmap shows where \
                         they would see damage too. Its verdicts stay the anomaly model's.", if photos == 1 { "" } else { "s" }
                    )}</p> })}
                    <p data-testid="profile-threshold">{format!("Threshold: score {:.1} (0.50 on the heatmap scale)", s.threshold)}</p>
                    <p class="hint" data-testid="profile-threshold-method">{s.threshold_method.clone()}</p>
                    {s.check.map(|c| view! { <p class="hint" data-testid="profile-check-band">{c.why}</p> })}
                </div>
            })}
        </section>
    }
}

#[component]
fn Thumb(photo: Photo, on_remove: impl Fn() + 'static, disabled: Signal<bool>) -> impl IntoView {
    let url = blob_of(&photo.bytes).ok().and_then(|b| web_sys::Url::create_object_url_with_blob(&b).ok()).unwrap_or_default();
    let revoke = url.clone();
    on_cleanup(move || {
        let _ = web_sys::Url::revoke_object_url(&revoke);
    });
    let label = format!("Remove {}", photo.name);
    view! {
        <li class="thumb">
            <img src=url alt=photo.name.clone() width="64" height="64"/>
            <button class="remove" aria-label=label.clone() title=label disabled=move || disabled.get() on:click=move |_| on_remove()>"×"</button>
        </li>
    }
}
