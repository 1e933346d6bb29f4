//! Inspect a photo: heatmap over the photo, score, verdict.

use leptos::html::Canvas;
use leptos::prelude::*;
use wasm_bindgen::{Clamped, JsCast};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageBitmap, ImageData};

use super::{engine, picked_files, read_files, AppState};
use crate::protocol::{InspectionReply, Request, UploadedFile};

/// Widest the overlay is drawn; the photo keeps its aspect ratio.
const MAX_CANVAS_SIDE: f64 = 640.0;

#[component]
pub fn InspectPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let canvas = NodeRef::<Canvas>::new();

    let on_pick = move |ev: web_sys::Event| {
        let Some(file) = picked_files(&ev).into_iter().next() else { return };
        leptos::task::spawn_local(async move {
            if let Some(uploaded) = read_files(state, vec![file.clone()]).await.pop() {
                start(state, uploaded, file.into());
            }
        });
    };

    Effect::new(move |_| {
        let Some(reply) = state.inspection.get() else { return };
        let (Some(element), Some(file)) = (canvas.get(), state.photo.get_value()) else { return };
        leptos::task::spawn_local(async move {
            if let Err(message) = draw_overlay(&element, &file, &reply).await {
                state.report(format!("{}: {message}", reply.file));
            }
        });
    });

    let ready = move || state.profile.with(Option::is_some) && !state.training.get();
    view! {
        <section class="panel" aria-labelledby="inspect-title">
            <h2 id="inspect-title">"2. Inspect"</h2>
            <label for="inspect-files">"Photo of an item to check"</label>
            <input id="inspect-files" type="file" accept="image/png,image/jpeg" data-testid="inspect-files"
                disabled=move || !ready() on:change=on_pick/>
            <Show when=move || !ready()>
                <p class="hint">"Train a product first."</p>
            </Show>
            <super::demo::DemoSamples/>
            <Show when=move || state.inspecting.get()>
                <p class="hint" aria-live="polite">"Inspecting…"</p>
            </Show>
            {move || state.inspection.get().map(|r| view! {
                <div class="verdict" data-testid="verdict"
                    data-verdict=if r.damaged { "damaged" } else { "ok" }
                    data-score=format!("{:.4}", r.normalised_score) data-raw-score=format!("{}", r.score)
                    class:damaged=r.damaged aria-live="polite">
                    <strong>{if r.damaged { "DAMAGED" } else { "OK" }}</strong>
                    <span>{format!("score {:.2} (threshold 0.50) · raw {:.1} / {:.1}", r.normalised_score, r.score, r.threshold)}</span>
                </div>
                <p class="hint">{r.file.clone()}" · "<span data-testid="latency-ms">{format!("{:.0}", r.latency_ms)}</span>" ms"</p>
            })}
            <canvas node_ref=canvas data-testid="heatmap" class="overlay" width="0" height="0"
                aria-label="The photo with the anomaly heatmap over it"></canvas>
        </section>
    }
}

/// Sends a photo to the engine; `photo` is drawn under the heatmap when the answer comes.
pub fn start(state: AppState, file: UploadedFile, photo: web_sys::Blob) {
    state.photo.set_value(Some(photo));
    state.inspecting.set(true);
    if !engine::send(state, Request::Inspect { file }) {
        state.inspecting.set(false);
    }
}

/// Draws the photo, then the heatmap stretched over it.
async fn draw_overlay(canvas: &HtmlCanvasElement, file: &web_sys::Blob, reply: &InspectionReply) -> Result<(), String> {
    let window = web_sys::window().ok_or("no window")?;
    let promise = window.create_image_bitmap_with_blob(file).map_err(|e| format!("{e:?}"))?;
    let bitmap: ImageBitmap = JsFuture::from(promise)
        .await
        .map_err(|_| "this browser cannot display the photo".to_string())?
        .unchecked_into();
    let (w, h) = (bitmap.width() as f64, bitmap.height() as f64);
    let scale = (MAX_CANVAS_SIDE / w.max(h)).min(1.0);
    let (cw, ch) = ((w * scale).round().max(1.0), (h * scale).round().max(1.0));
    canvas.set_width(cw as u32);
    canvas.set_height(ch as u32);
    let ctx = context(canvas)?;
    ctx.draw_image_with_image_bitmap_and_dw_and_dh(&bitmap, 0.0, 0.0, cw, ch).map_err(|e| format!("{e:?}"))?;

    let document = window.document().ok_or("no document")?;
    let layer: HtmlCanvasElement = document.create_element("canvas").map_err(|e| format!("{e:?}"))?.unchecked_into();
    layer.set_width(reply.map_size);
    layer.set_height(reply.map_size);
    let pixels = ImageData::new_with_u8_clamped_array_and_sh(Clamped(&reply.heatmap), reply.map_size, reply.map_size)
        .map_err(|e| format!("{e:?}"))?;
    context(&layer)?.put_image_data(&pixels, 0.0, 0.0).map_err(|e| format!("{e:?}"))?;
    ctx.draw_image_with_html_canvas_element_and_dw_and_dh(&layer, 0.0, 0.0, cw, ch).map_err(|e| format!("{e:?}"))
}

fn context(canvas: &HtmlCanvasElement) -> Result<CanvasRenderingContext2d, String> {
    canvas
        .get_context("2d")
        .map_err(|e| format!("{e:?}"))?
        .ok_or("no 2D canvas")?
        .dyn_into()
        .map_err(|_| "no 2D canvas".to_string())
}
