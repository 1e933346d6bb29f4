//! Calibrate the current product: damaged photos with their masks (uploaded, matched by
//! file name, or painted with a brush beside a good photo of the product) and a kind of
//! damage each; then the threshold method, with the charts that show why, and a
//! sensitivity slider on the 0..1 scale. The engine scores the photos once; trying
//! methods and moving the slider only recompute from those scores.

use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::{Clamped, JsCast};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageBitmap, ImageData, PointerEvent};

use super::files::{blob_of, photos_only, picked_files, read_files};
use super::state::{now_ms, AppState, Progress};
use super::store::{Photo, PhotoRole};
use super::{actions, client};
use crate::eval::calibration::{self, CalibrationScores, Stroke, DEFAULT_SIGMAS};
use crate::eval::charts;
use crate::eval::dataset::Category;
use crate::eval::threshold::{Chosen, ThresholdMethod};
use crate::protocol::{DamagedPhoto, Reply, Request, UploadedFile};

/// Widest the brush canvas is drawn; the photo keeps its aspect ratio.
const MAX_BRUSH_SIDE: f64 = 480.0;
/// The brush's radius in canvas pixels, at first.
const DEFAULT_BRUSH: f64 = 10.0;

/// Above this share of good items flagged the panel warns: damage is rare, so most
/// flags would be false alarms.
const FLAGGED_WARNING: f64 = 0.05;

/// The methods a person can pick, by the key of their `<option>`.
const METHODS: [(&str, &str); 6] = [
    ("max-iou", "Best overlap with the masks (IoU)"),
    ("max-f1", "Best F1 with the masks"),
    ("youden", "Best separation of good and damaged photos (Youden)"),
    ("normal", "Statistics of good photos (mean + k σ)"),
    ("fp-budget", "At most a share of good items flagged"),
    ("manual", "Set by hand"),
];

/// The method an `<option>` key and its parameters stand for.
fn method_of(key: &str, sigmas: f32, budget_percent: f32, manual: f32) -> ThresholdMethod {
    match key {
        "max-iou" => ThresholdMethod::MaxIou,
        "max-f1" => ThresholdMethod::MaxF1,
        "youden" => ThresholdMethod::Youden,
        "fp-budget" => ThresholdMethod::FalsePositiveBudget { max_rate: budget_percent / 100.0 },
        "manual" => ThresholdMethod::Manual { value: manual },
        _ => ThresholdMethod::NormalSigma { k: sigmas },
    }
}

fn key_of(method: &ThresholdMethod) -> &'static str {
    match method {
        ThresholdMethod::MaxIou => "max-iou",
        ThresholdMethod::MaxF1 => "max-f1",
        ThresholdMethod::Youden => "youden",
        ThresholdMethod::FalsePositiveBudget { .. } => "fp-budget",
        ThresholdMethod::Manual { .. } => "manual",
        ThresholdMethod::NormalSigma { .. } | ThresholdMethod::NormalPercentile { .. } => "normal",
    }
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Saves a changed damaged photo and shows the change.
async fn save_photo(state: AppState, photo: Photo) {
    let Some(library) = state.library() else { return };
    match library.put_photo(&photo).await {
        Ok(()) => state.damaged.update(|ps| {
            if let Some(p) = ps.iter_mut().find(|p| p.key == photo.key) {
                *p = photo;
            }
        }),
        Err(message) => state.report(message),
    }
}

async fn add_damaged(state: AppState, files: Vec<UploadedFile>) {
    let files = photos_only(state, files);
    let (Some(library), Some(product)) = (state.library(), state.current.get_untracked()) else { return };
    if files.is_empty() {
        return;
    }
    match library.add_photos(&product.id, PhotoRole::Damaged, &files).await {
        Ok(saved) => state.damaged.update(|ps| ps.extend(saved)),
        Err(message) => state.report(message),
    }
}

/// Gives each mask file to the damaged photo named like it, once it is known to fit.
async fn add_masks(state: AppState, masks: Vec<UploadedFile>) {
    for mask in masks {
        let photos = state.damaged.get_untracked();
        let Some(target) = calibration::mask_target(&mask.name, photos.iter().map(|p| p.name.as_str())).map(str::to_string) else {
            state.report(format!(
                "{}: no damaged photo is named like this mask. Add the photo first, and name its mask like it (cell7.png or cell7_mask.png for cell7.png).",
                mask.name
            ));
            continue;
        };
        let Some(mut photo) = photos.into_iter().find(|p| p.name == target) else { continue };
        match calibration::check_mask(&mask.name, &mask.bytes, &photo.name, &photo.bytes) {
            Ok(()) => {
                photo.mask = Some(mask.bytes);
                save_photo(state, photo).await;
            }
            Err(message) => state.report(message),
        }
    }
}

/// Sends the product's good photos and the damaged ones to be scored.
fn score(state: AppState) {
    let good: Vec<UploadedFile> = state.photos.get_untracked().into_iter().map(|p| UploadedFile { name: p.name, bytes: p.bytes }).collect();
    let damaged: Vec<DamagedPhoto> = state
        .damaged
        .get_untracked()
        .into_iter()
        .map(|p| DamagedPhoto {
            mask: p.mask.map(|bytes| UploadedFile { name: format!("{} (mask)", p.name), bytes }),
            photo: UploadedFile { name: p.name, bytes: p.bytes },
            category: p.category,
        })
        .collect();
    state.bench.update(|b| b.calibrating = true);
    let started_ms = now_ms();
    state.progress.set(Some(Progress { done: 0, total: good.len() + damaged.len(), started_ms }));
    let news = client::progress_into(state, move |done, total| state.progress.set(Some(Progress { done, total, started_ms })));
    leptos::task::spawn_local(async move {
        let answer = client::call(state, Request::Calibrate { good, damaged }, Some(news)).await;
        state.bench.update(|b| b.calibrating = false);
        state.progress.set(None);
        match answer {
            Ok(Reply::CalibrationScored { scores, problems }) => {
                for problem in problems {
                    state.report(problem);
                }
                state.calibration.set(Some(scores));
            }
            Ok(_) => state.report("The engine answered out of order. Score the calibration photos again."),
            Err(failure) => state.report(failure.message),
        }
    });
}

/// A chart as an image from a Blob URL (allowed by the page's CSP, unlike data:); the
/// SVG is never inserted as markup. The URL lives as long as the image.
#[component]
fn Chart(id: &'static str, label: &'static str, svg: String) -> impl IntoView {
    let url = super::eval_charts::svg_url(&svg).unwrap_or_default();
    let revoke = url.clone();
    on_cleanup(move || {
        let _ = web_sys::Url::revoke_object_url(&revoke);
    });
    view! { <img class="chart" data-testid=id src=url alt=label width=charts::WIDTH.to_string() height=charts::HEIGHT.to_string()/> }
}

#[component]
pub fn CalibratePanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let trained = move || state.current.with(|c| c.as_ref().is_some_and(|p| p.summary.is_some()));
    let editing = RwSignal::new(None::<f64>);
    // Photos or masks changed since the last scoring.
    let stale = RwSignal::new(false);

    let on_files = move |ev: web_sys::Event| {
        let picked = picked_files(&ev);
        leptos::task::spawn_local(async move {
            add_damaged(state, read_files(state, picked).await).await;
            stale.set(true);
        });
    };
    let on_masks = move |ev: web_sys::Event| {
        let picked = picked_files(&ev);
        leptos::task::spawn_local(async move {
            add_masks(state, read_files(state, picked).await).await;
            stale.set(true);
        });
    };
    let can_score =
        move || state.ready() && !state.calibrating() && state.photos.with(|p| p.len() >= crate::engine::settings::MIN_TRAINING_IMAGES);
    let held_out = move || state.photos.with(|p| p.len() / 5);

    view! {
        <section class="panel calibrate" aria-labelledby="calibrate-title">
            <h2 id="calibrate-title">"Calibrate: where damage starts"</h2>
            <Show when=trained fallback=|| view! { <p class="hint">"Train the product first; then add damaged photos here to set its threshold."</p> }>
                <p class="hint">"Add photos of damaged items. A mask (white where damaged, the photo's size) lets the threshold follow the damage itself: upload masks named like their photos, or paint them with the brush."</p>
                <label for="calib-files">"Photos of damaged items"</label>
                <input id="calib-files" type="file" multiple accept="image/png,image/jpeg" data-testid="calib-files"
                    disabled=move || state.calibrating() on:change=on_files/>
                <label for="calib-masks">"Their masks (cell7.png or cell7_mask.png for the photo cell7.png)"</label>
                <input id="calib-masks" type="file" multiple accept="image/png,image/jpeg" data-testid="calib-masks"
                    disabled=move || state.calibrating() || state.damaged.with(Vec::is_empty) on:change=on_masks/>
                <Show when=move || !state.damaged.with(Vec::is_empty)>
                    <ul class="damaged-list" data-testid="calib-list" aria-label="Damaged photos">
                        <For each=move || state.damaged.get() key=|p| (p.key.map(|k| k as u64), p.mask.as_ref().map(Vec::len), p.category) let:photo>
                            <DamagedRow photo=photo editing=editing stale=stale/>
                        </For>
                    </ul>
                </Show>
                {move || editing.get().map(|key| view! { <BrushEditor key=key editing=editing stale=stale/> })}
                <p class="hint">{move || format!(
                    "Good items' scores come from the {} good photos training holds out (one in five), scored by a model fitted without them; the damaged photos are scored by that same model.",
                    held_out()
                )}</p>
                <div class="actions">
                    <button data-testid="calib-run" disabled=move || !can_score() on:click=move |_| { stale.set(false); score(state); }>
                        {move || if state.calibration.with(Option::is_some) { "Score again" } else { "Score the calibration photos" }}
                    </button>
                </div>
                <Show when=move || state.calibrating()>
                    {move || {
                        let p = state.progress.get().unwrap_or(Progress { done: 0, total: 1, started_ms: 0.0 });
                        view! {
                            <label class="progress-label" for="calib-progress">{format!("Scoring: {} of {} photos", p.done, p.total)}</label>
                            <progress id="calib-progress" data-testid="calib-progress" max=p.total value=p.done></progress>
                        }
                    }}
                </Show>
                <Show when=move || stale.get() && state.calibration.with(Option::is_some)>
                    <p class="hint" role="status">"The photos changed since they were scored: score them again to include the changes."</p>
                </Show>
                {move || state.calibration.get().map(|scores| view! { <ThresholdChoice scores=scores/> })}
            </Show>
        </section>
    }
}

#[component]
fn DamagedRow(photo: Photo, editing: RwSignal<Option<f64>>, stale: RwSignal<bool>) -> impl IntoView {
    let state = expect_context::<AppState>();
    let url = blob_of(&photo.bytes).ok().and_then(|b| web_sys::Url::create_object_url_with_blob(&b).ok()).unwrap_or_default();
    let revoke = url.clone();
    on_cleanup(move || {
        let _ = web_sys::Url::revoke_object_url(&revoke);
    });
    let key = photo.key;
    let name = photo.name.clone();
    let select_id = format!("category-{}", key.unwrap_or_default());
    let current = photo.category.map(Category::as_str).unwrap_or("");
    let on_category = {
        let photo = photo.clone();
        move |ev: web_sys::Event| {
            let mut photo = photo.clone();
            photo.category = event_target_value(&ev).parse().ok();
            stale.set(true);
            leptos::task::spawn_local(save_photo(state, photo));
        }
    };
    let remove = move |_| {
        let (Some(key), Some(library)) = (key, state.library()) else { return };
        leptos::task::spawn_local(async move {
            match library.delete_photo(key).await {
                Ok(()) => {
                    state.damaged.update(|ps| ps.retain(|p| p.key != Some(key)));
                    if editing.get_untracked() == Some(key) {
                        editing.set(None);
                    }
                    stale.set(true);
                }
                Err(message) => state.report(message),
            }
        });
    };
    let mask_state = if photo.mask.is_some() { "has a mask" } else { "no mask" };
    view! {
        <li class="damaged-row" data-testid="calib-item" data-name=name.clone() data-mask=photo.mask.is_some().to_string()>
            <img src=url alt=name.clone() width="56" height="56"/>
            <div class="damaged-info">
                <span class="name">{name.clone()}</span>
                <span class="hint">{mask_state}</span>
            </div>
            <label class="visually-hidden" for=select_id.clone()>{format!("Kind of damage of {name}")}</label>
            <select id=select_id data-testid="calib-category" on:change=on_category>
                <option value="" selected=current.is_empty()>"Kind of damage…"</option>
                {Category::ALL.into_iter().map(|c| view! { <option value=c.as_str() selected=current == c.as_str()>{c.as_str()}</option> }).collect_view()}
            </select>
            <button class="secondary" data-testid="calib-paint" aria-label=format!("Paint the mask of {name}")
                on:click=move |_| editing.set(key)>{if photo.mask.is_some() { "Edit mask" } else { "Paint mask" }}</button>
            <button class="secondary danger" aria-label=format!("Remove {name}") on:click=remove>"Remove"</button>
        </li>
    }
}

/// What the brush editor draws on: the photo, its size and the mask it started with.
struct BrushPhoto {
    bitmap: ImageBitmap,
    width: u32,
    height: u32,
    base: Option<Vec<bool>>,
}

#[component]
fn BrushEditor(key: f64, editing: RwSignal<Option<f64>>, stale: RwSignal<bool>) -> impl IntoView {
    let state = expect_context::<AppState>();
    let canvas = NodeRef::<Canvas>::new();
    let strokes = RwSignal::new(Vec::<Stroke>::new());
    let cleared = RwSignal::new(false);
    let radius = RwSignal::new(DEFAULT_BRUSH);
    let drawing = StoredValue::new(false);
    let loaded = StoredValue::new_local(None::<BrushPhoto>);
    let ready = RwSignal::new(false);
    let photo = move || state.damaged.with_untracked(|ps| ps.iter().find(|p| p.key == Some(key)).cloned());
    let name = photo().map(|p| p.name).unwrap_or_default();
    let reference = state.photos.with_untracked(|ps| ps.first().cloned());
    let reference_url = reference
        .as_ref()
        .and_then(|p| blob_of(&p.bytes).ok())
        .and_then(|b| web_sys::Url::create_object_url_with_blob(&b).ok())
        .unwrap_or_default();
    let revoke = reference_url.clone();
    on_cleanup(move || {
        let _ = web_sys::Url::revoke_object_url(&revoke);
    });

    // Loads the photo and any mask it has, once.
    leptos::task::spawn_local(async move {
        let Some(photo) = photo() else { return };
        match load_for_brush(&photo).await {
            Ok(c) => {
                loaded.set_value(Some(c));
                ready.set(true);
            }
            Err(message) => {
                state.report(format!("{}: {message}", photo.name));
                editing.set(None);
            }
        }
    });
    // Redraws whenever the strokes change or the photo arrives.
    let shown_name = name.clone();
    Effect::new(move |_| {
        let (list, wipe) = (strokes.get(), cleared.get());
        if !ready.get() {
            return;
        }
        let Some(element) = canvas.get() else { return };
        let drawn = loaded.with_value(|c| c.as_ref().map(|c| draw_brush(&element, c, if wipe { None } else { c.base.as_deref() }, &list)));
        if let Some(Err(message)) = drawn {
            state.report(format!("{shown_name}: {message}"));
        }
    });

    // Pointer position in the photo's pixels.
    let to_photo = move |ev: &PointerEvent| -> Option<(f32, f32, f32)> {
        let element = canvas.get_untracked()?;
        let width = loaded.with_value(|c| c.as_ref().map(|c| c.width))?;
        let shown = f64::from(element.client_width().max(1));
        let per_css = f64::from(width) / shown;
        let r = radius.get_untracked() * f64::from(width) / f64::from(element.width().max(1));
        Some(((f64::from(ev.offset_x()) * per_css) as f32, (f64::from(ev.offset_y()) * per_css) as f32, r as f32))
    };
    let on_down = move |ev: PointerEvent| {
        let Some((x, y, r)) = to_photo(&ev) else { return };
        ev.prevent_default();
        if let Some(element) = canvas.get_untracked() {
            let _ = element.set_pointer_capture(ev.pointer_id());
        }
        drawing.set_value(true);
        strokes.update(|s| s.push(Stroke { radius: r, points: vec![(x, y)] }));
    };
    let on_move = move |ev: PointerEvent| {
        if !drawing.get_value() {
            return;
        }
        let Some((x, y, _)) = to_photo(&ev) else { return };
        strokes.update(|s| {
            if let Some(last) = s.last_mut() {
                last.points.push((x, y));
            }
        });
    };
    let on_up = move |_: PointerEvent| drawing.set_value(false);

    let save = move |_| {
        let Some(mut photo) = photo() else { return };
        let painted = loaded.with_value(|c| {
            c.as_ref().map(|c| {
                let base = if cleared.get_untracked() { None } else { c.base.as_deref() };
                (strokes.with_untracked(|s| calibration::paint(base, s, c.width, c.height)), c.width, c.height)
            })
        });
        let Some((mask, width, height)) = painted else { return };
        photo.mask = if mask.iter().any(|&d| d) {
            match calibration::mask_png(&mask, width, height) {
                Ok(png) => Some(png),
                Err(message) => return state.report(format!("{}: {message}", photo.name)),
            }
        } else {
            None
        };
        stale.set(true);
        editing.set(None);
        leptos::task::spawn_local(save_photo(state, photo));
    };

    view! {
        <div class="brush" role="group" aria-label=format!("Paint the damage on {name}")>
            <p class="hint">{format!("Paint over the damage on {name} with a finger or the mouse. The good photo beside it is for comparison.")}</p>
            <div class="brush-pair">
                <figure>
                    <canvas node_ref=canvas class="brush-canvas" data-testid="brush-canvas" width="0" height="0"
                        data-ready=move || ready.get().to_string() data-strokes=move || strokes.with(Vec::len).to_string()
                        aria-label=format!("{name}: painted damage shown in red")
                        on:pointerdown=on_down on:pointermove=on_move on:pointerup=on_up on:pointercancel=on_up></canvas>
                    <figcaption>{format!("Damaged: {name}")}</figcaption>
                </figure>
                {reference.map(|p| view! {
                    <figure>
                        <img class="brush-reference" data-testid="reference-photo" src=reference_url.clone() alt=format!("A good item: {}", p.name)/>
                        <figcaption>{format!("Good: {}", p.name)}</figcaption>
                    </figure>
                })}
            </div>
            <div class="controls">
                <label for="brush-size">"Brush size"</label>
                <input id="brush-size" type="range" min="2" max="40" step="1" prop:value=move || radius.get().to_string()
                    on:input=move |ev| radius.set(event_target_value(&ev).parse().unwrap_or(DEFAULT_BRUSH))/>
            </div>
            <div class="actions">
                <button class="secondary" data-testid="brush-undo" disabled=move || strokes.with(Vec::is_empty)
                    on:click=move |_| strokes.update(|s| { s.pop(); })>"Undo"</button>
                <button class="secondary" data-testid="brush-clear" on:click=move |_| { strokes.set(Vec::new()); cleared.set(true); }>"Clear"</button>
                <button data-testid="brush-save" disabled=move || !ready.get() on:click=save>"Save mask"</button>
                <button class="secondary" on:click=move |_| editing.set(None)>"Close without saving"</button>
            </div>
        </div>
    }
}

async fn load_for_brush(photo: &Photo) -> Result<BrushPhoto, String> {
    let (width, height) = calibration::image_size(&photo.name, &photo.bytes)?;
    let base = match &photo.mask {
        Some(bytes) => {
            let (mask, w, h) = calibration::read_mask(&photo.name, bytes)?;
            ((w, h) == (width, height)).then_some(mask)
        }
        None => None,
    };
    let window = web_sys::window().ok_or("no window")?;
    let promise = window.create_image_bitmap_with_blob(&blob_of(&photo.bytes)?).map_err(|e| format!("{e:?}"))?;
    let bitmap: ImageBitmap =
        JsFuture::from(promise).await.map_err(|_| "this browser cannot display the photo".to_string())?.unchecked_into();
    Ok(BrushPhoto { bitmap, width, height, base })
}

/// The photo, with the mask so far in translucent red over it.
fn draw_brush(canvas: &HtmlCanvasElement, c: &BrushPhoto, base: Option<&[bool]>, strokes: &[Stroke]) -> Result<(), String> {
    let scale = (MAX_BRUSH_SIDE / f64::from(c.width.max(c.height))).min(4.0);
    let (cw, ch) = ((f64::from(c.width) * scale).round().max(1.0) as u32, (f64::from(c.height) * scale).round().max(1.0) as u32);
    if canvas.width() != cw || canvas.height() != ch {
        canvas.set_width(cw);
        canvas.set_height(ch);
    }
    let ctx = context(canvas)?;
    ctx.draw_image_with_image_bitmap_and_dw_and_dh(&c.bitmap, 0.0, 0.0, f64::from(cw), f64::from(ch)).map_err(|e| format!("{e:?}"))?;
    // The mask is drawn opaque on a layer and the layer at half opacity, so overlapping
    // strokes show as one region.
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let layer: HtmlCanvasElement = document.create_element("canvas").map_err(|e| format!("{e:?}"))?.unchecked_into();
    layer.set_width(cw);
    layer.set_height(ch);
    let lctx = context(&layer)?;
    if let Some(base) = base {
        let rgba: Vec<u8> = (0..ch)
            .flat_map(|y| (0..cw).map(move |x| (x, y)))
            .flat_map(|(x, y)| {
                let (px, py) = ((f64::from(x) / scale) as usize, (f64::from(y) / scale) as usize);
                let marked =
                    base.get(py.min(c.height as usize - 1) * c.width as usize + px.min(c.width as usize - 1)).copied().unwrap_or(false);
                if marked {
                    [230, 30, 30, 255]
                } else {
                    [0, 0, 0, 0]
                }
            })
            .collect();
        let pixels = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&rgba), cw, ch).map_err(|e| format!("{e:?}"))?;
        lctx.put_image_data(&pixels, 0.0, 0.0).map_err(|e| format!("{e:?}"))?;
    }
    lctx.set_fill_style_str("rgb(230,30,30)");
    lctx.set_stroke_style_str("rgb(230,30,30)");
    lctx.set_line_cap("round");
    lctx.set_line_join("round");
    for stroke in strokes {
        let r = f64::from(stroke.radius) * scale;
        let at = |(x, y): (f32, f32)| (f64::from(x) * scale, f64::from(y) * scale);
        let Some(&first) = stroke.points.first() else { continue };
        let (x0, y0) = at(first);
        lctx.begin_path();
        let _ = lctx.arc(x0, y0, r, 0.0, std::f64::consts::TAU);
        lctx.fill();
        lctx.set_line_width(2.0 * r);
        lctx.begin_path();
        lctx.move_to(x0, y0);
        for &p in &stroke.points[1..] {
            let (x, y) = at(p);
            lctx.line_to(x, y);
        }
        lctx.stroke();
    }
    ctx.set_global_alpha(0.5);
    ctx.draw_image_with_html_canvas_element(&layer, 0.0, 0.0).map_err(|e| format!("{e:?}"))?;
    ctx.set_global_alpha(1.0);
    Ok(())
}

fn context(canvas: &HtmlCanvasElement) -> Result<CanvasRenderingContext2d, String> {
    canvas.get_context("2d").map_err(|e| format!("{e:?}"))?.ok_or("no 2D canvas")?.dyn_into().map_err(|_| "no 2D canvas".to_string())
}

/// The threshold method, the threshold it gives and why, the slider, and the charts.
#[component]
fn ThresholdChoice(scores: CalibrationScores) -> impl IntoView {
    let state = expect_context::<AppState>();
    let scores = StoredValue::new(scores);
    let default = scores.with_value(|s| s.default_method());
    let key = RwSignal::new(key_of(&default).to_string());
    let sigmas = RwSignal::new(DEFAULT_SIGMAS);
    let budget = RwSignal::new(1.0f32);
    let manual =
        RwSignal::new(state.current.with_untracked(|c| c.as_ref().and_then(|p| p.summary.as_ref()).map(|s| s.threshold)).unwrap_or(0.0));
    let cut = RwSignal::new(0.5f32);

    let chosen: Memo<Result<Chosen, String>> =
        Memo::new(move |_| scores.with_value(|s| s.choose(&method_of(&key.get(), sigmas.get(), budget.get(), manual.get()))));
    // A new method starts the slider at its own threshold.
    Effect::new(move |_| {
        key.track();
        cut.set(0.5);
    });
    let threshold = Memo::new(move |_| chosen.get().ok().map(|c| scores.with_value(|s| s.at_sensitivity(c.value, cut.get()))));
    let explanation = move || {
        chosen.get().map(|c| {
            let moved = cut.get();
            if (moved - 0.5).abs() < 1e-6 {
                c.explanation
            } else {
                format!("{} Moved with the sensitivity slider to {moved:.2} on the 0–1 scale.", c.explanation)
            }
        })
    };
    let flagged = move || {
        let t = threshold.get()?;
        scores.with_value(|s| {
            let good = s.good_flagged(t)?;
            let caught = s
                .damaged_flagged(t)
                .map(|d| {
                    format!("; damaged photos caught: {} ({} of {})", percent(d), (d * s.damaged.len() as f64).round(), s.damaged.len())
                })
                .unwrap_or_default();
            Some(format!(
                "Expected share of good items flagged: {} ({} of {} held-out good photos){caught}",
                percent(good),
                (good * s.good.len() as f64).round(),
                s.good.len()
            ))
        })
    };
    // The CHECK band below the threshold, from the same photos.
    let check = move || {
        let t = threshold.get()?;
        Some(scores.with_value(|s| s.calibration(t, String::new()).check))
    };
    let too_many_flagged = move || {
        let t = threshold.get()?;
        scores.with_value(|s| s.good_flagged(t)).filter(|&share| share > FLAGGED_WARNING)
    };
    let charts = Memo::new(move |_| {
        let Some(t) = threshold.get() else { return Vec::new() };
        scores.with_value(|s| {
            let good_share = s.good_flagged(t).unwrap_or(0.0);
            let caught = s.damaged_flagged(t).unwrap_or(0.0);
            let damaged = s.damaged_scores();
            let precision = {
                let (tp, fp) = (caught * damaged.len() as f64, good_share * s.good.len() as f64);
                if tp + fp > 0.0 {
                    tp / (tp + fp)
                } else {
                    1.0
                }
            };
            let mut out = Vec::new();
            if let Some(iou) = &s.iou {
                out.push((
                    "chart-iou",
                    "Pixel IoU and F1 against the threshold, the threshold marked",
                    charts::threshold_curves(iou, s.f1.as_ref(), t),
                ));
            }
            if let Some(roc) = s.roc() {
                out.push((
                    "chart-roc",
                    "ROC curve of good against damaged photos, the threshold's point marked",
                    charts::roc(&roc, (good_share, caught)),
                ));
            }
            if let Some(pr) = s.pr() {
                out.push(("chart-pr", "Precision against recall, the threshold's point marked", charts::pr(&pr, (caught, precision))));
            }
            out.push((
                "chart-hist",
                "Histogram of good and damaged photos' scores, the threshold marked",
                charts::score_histogram(&s.good, &damaged, t),
            ));
            out
        })
    });
    let apply = move |_| {
        let (Some(t), Some(why)) = (threshold.get_untracked(), explanation().ok()) else { return };
        let calibration = scores.with_value(|s| s.calibration(t, why));
        leptos::task::spawn_local(async move {
            match client::call(state, Request::SetCalibration { calibration }, None).await {
                Ok(Reply::Calibrated { profile, bytes }) => actions::recalibrated(state, profile, bytes),
                Ok(_) => state.report("The engine answered out of order. Use the threshold again."),
                Err(failure) => state.report(failure.message),
            }
        });
    };
    let saved = move || state.current.with(|c| c.as_ref().and_then(|p| p.summary.as_ref()).map(|s| s.threshold));
    let method_hint = move || {
        scores.with_value(|s| match s.masks() {
            0 => "No damaged photo has a mask: statistics of good photos is the default.".to_string(),
            n => format!("{n} damaged photo(s) with masks: best overlap (IoU) is the default."),
        })
    };

    view! {
        <div class="threshold" data-testid="calib-results">
            <label for="threshold-method">"How to choose the threshold"</label>
            <select id="threshold-method" data-testid="threshold-method" on:change=move |ev| key.set(event_target_value(&ev))>
                {METHODS.into_iter().map(|(k, label)| view! { <option value=k selected=move || key.get() == k>{label}</option> }).collect_view()}
            </select>
            <p class="hint">{method_hint}</p>
            <Show when=move || key.get() == "normal">
                <label for="sigmas">"Standard deviations above the good photos' mean"</label>
                <input id="sigmas" type="number" min="0" max="10" step="0.5" prop:value=move || sigmas.get().to_string()
                    on:change=move |ev| sigmas.set(event_target_value(&ev).parse().unwrap_or(DEFAULT_SIGMAS))/>
            </Show>
            <Show when=move || key.get() == "fp-budget">
                <label for="fp-budget">"Largest share of good items flagged (%)"</label>
                <input id="fp-budget" type="number" min="0" max="99" step="0.5" prop:value=move || budget.get().to_string()
                    on:change=move |ev| budget.set(event_target_value(&ev).parse().unwrap_or(1.0))/>
            </Show>
            <Show when=move || key.get() == "manual">
                <label for="manual-threshold">"Threshold (raw score)"</label>
                <input id="manual-threshold" type="number" step="any" prop:value=move || manual.get().to_string()
                    on:change=move |ev| manual.set(event_target_value(&ev).parse().unwrap_or(f32::NAN))/>
            </Show>
            {move || match chosen.get() {
                Ok(_) => view! {
                    <p class="threshold-value" data-testid="threshold-value" data-threshold=move || threshold.get().map(|t| t.to_string()).unwrap_or_default()>
                        {move || threshold.get().map(|t| format!("Threshold: {t:.3} (raw score; 0.50 on the 0–1 scale once saved)")).unwrap_or_default()}
                    </p>
                    <p class="hint" data-testid="threshold-why">{move || explanation().ok().unwrap_or_default()}</p>
                }.into_any(),
                Err(why) => view! {
                    <p class="threshold-value" data-testid="threshold-value" data-threshold="">"No threshold"</p>
                    <p class="warn" role="status" data-testid="threshold-why">{format!("This method cannot be used here: {why}.")}</p>
                }.into_any(),
            }}
            <p data-testid="flagged-share" aria-live="polite">{flagged}</p>
            {move || check().map(|band| match band {
                Some(band) => view! {
                    <p class="hint" data-testid="check-band" data-check-from=band.from.to_string()>
                        <strong>"Three verdicts. "</strong>{format!(
                            "DAMAGED from the threshold up; CHECK (a person looks) from {:.3} up to it; OK below. {}",
                            band.from, band.why
                        )}
                    </p>
                }.into_any(),
                None => view! {
                    <p class="hint" data-testid="check-band" data-check-from="">
                        "Two verdicts here: no calibration photo scores between OK and DAMAGED, so there is no CHECK band."
                    </p>
                }.into_any(),
            })}
            {move || too_many_flagged().map(|share| view! {
                <p class="warn" role="status" data-testid="flagged-warning">{format!(
                    "This threshold would flag {} of good items. Damage is rare, so on a line most of its flags would be \
                     false alarms: choose \"At most a share of good items flagged\", or move the slider up.", percent(share)
                )}</p>
            })}
            <div class="controls">
                <label for="sensitivity">{move || format!("Sensitivity: flag from {:.2} on the 0–1 scale (0.50 = the chosen threshold; lower flags more)", cut.get())}</label>
                <input id="sensitivity" type="range" min="0.05" max="0.95" step="0.01" data-testid="sensitivity"
                    disabled=move || chosen.with(Result::is_err)
                    prop:value=move || cut.get().to_string()
                    on:input=move |ev| cut.set(event_target_value(&ev).parse().unwrap_or(0.5))/>
            </div>
            <div class="charts">
                {move || charts.get().into_iter().map(|(id, label, svg)| match svg {
                    Ok(svg) => view! { <Chart id label svg/> }.into_any(),
                    Err(why) => view! { <p class="hint">{why}</p> }.into_any(),
                }).collect_view()}
            </div>
            <div class="actions">
                <button data-testid="calib-apply" disabled=move || threshold.get().is_none() || !state.ready() on:click=apply>"Use this threshold"</button>
                <span class="hint" data-testid="calib-saved">{move || saved().map(|t| format!("In use now: {t:.3}")).unwrap_or_default()}</span>
            </div>
        </div>
    }
}
