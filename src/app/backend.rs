//! Which backend inspects, shown in the header with a switch: WebGPU when the browser
//! offers it (chosen by default), the CPU otherwise or on request.

use leptos::prelude::*;

use super::client;
use super::state::AppState;
use crate::protocol::{Backend, Reply, Request};

#[component]
pub fn BackendChoice() -> impl IntoView {
    let state = expect_context::<AppState>();
    let mb = |bytes: u64| bytes as f64 / 1e6;
    let label = move || match (state.model.get(), state.engine_backend.get()) {
        (None, _) => match state.download.get() {
            Some((received, Some(total))) => format!("Downloading the model: {:.1} of {:.1} MB", mb(received), mb(total)),
            Some((received, None)) => format!("Downloading the model: {:.1} MB", mb(received)),
            None => "Loading model…".to_string(),
        },
        (Some(model), None) => format!("CPU (trying WebGPU…) · {model}"),
        (Some(model), Some(status)) => match (status.active, status.adapter) {
            // Browsers often keep the adapter's name to themselves.
            (Backend::WebGpu, Some(adapter)) if !adapter.is_empty() => format!("WebGPU ({adapter}) · {model}"),
            (active, _) => format!("{} · {model}", active.label()),
        },
    };
    // Why WebGPU is not offered, as the disabled option's tooltip.
    let why_not = move || state.engine_backend.with(|s| s.as_ref().and_then(|s| s.unavailable.clone()).unwrap_or_default());
    let gpu_usable = move || state.engine_backend.with(|s| s.as_ref().is_some_and(|s| s.adapter.is_some()));
    let active = move || state.engine_backend.with(|s| s.as_ref().map_or(Backend::Cpu, |s| s.active));
    // Fault injection for the browser tests: lose the GPU as a driver reset would.
    let fault = window_event_listener_untyped("damagelens-lose-gpu", move |_| {
        leptos::task::spawn_local(async move {
            if let Err(failure) = client::call(state, Request::LoseGpuDevice, None).await {
                state.report(failure.message);
            }
        });
    });
    on_cleanup(move || fault.remove());
    let on_change = move |ev| {
        let backend = if event_target_value(&ev) == "webgpu" { Backend::WebGpu } else { Backend::Cpu };
        leptos::task::spawn_local(async move {
            match client::call(state, Request::SetBackend { backend }, None).await {
                Ok(Reply::Backend(status)) => {
                    if let Some(notice) = &status.notice {
                        state.report(notice.clone());
                    }
                    state.engine_backend.set(Some(status));
                }
                Ok(_) => {}
                Err(failure) => state.report(failure.message),
            }
        });
    };
    view! {
        <span class="backend" data-testid="backend" data-active=move || active().label()>{label}</span>
        {move || state.download.get().map(|(received, total)| match total {
            Some(total) => view! { <progress class="download" data-testid="model-download" aria-label="Model download" max=total as f64 value=received as f64></progress> }.into_any(),
            None => view! { <progress class="download" data-testid="model-download" aria-label="Model download"></progress> }.into_any(),
        })}
        <label class="backend-choice">
            <span class="visually-hidden">"Inspect on"</span>
            <select data-testid="backend-select" aria-label="Inspect on" disabled=move || state.engine_backend.with(Option::is_none)
                prop:value=move || if active() == Backend::WebGpu { "webgpu" } else { "cpu" } on:change=on_change>
                <option value="webgpu" disabled=move || !gpu_usable() title=why_not>
                    {move || if gpu_usable() { "WebGPU".to_string() } else { "WebGPU (not available)".to_string() }}
                </option>
                <option value="cpu">"CPU"</option>
            </select>
        </label>
    }
}
