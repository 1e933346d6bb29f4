//! The engine behind a Web Worker, so training and scoring never freeze the page: a thin
//! loop around [`Service`]. Calls come in as messages and are served one after another,
//! in the order they came (a GPU inspection awaits the device, and nothing may overtake
//! it); events go back as messages.

use futures::StreamExt;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{DedicatedWorkerGlobalScope, MessageEvent};

use crate::engine::gpu::{GpuContext, GpuInspector};
use crate::engine::inspector::Inspector;
use crate::engine::manifest::BackboneManifest;
use crate::protocol::{Call, Event, Failure, FailureKind, Status};
use crate::service::Service;
use crate::web::{fetch_bytes, fetch_bytes_with_progress};

const MANIFEST_URL: &str = "./efficientnet_lite0.manifest.json";

fn scope() -> DedicatedWorkerGlobalScope {
    js_sys::global().unchecked_into()
}

fn post(event: Event) {
    match serde_wasm_bindgen::to_value(&event) {
        Ok(value) => {
            let _ = scope().post_message(&value);
        }
        Err(e) => gloo::console::error!(format!("cannot encode an event: {e}")),
    }
}

async fn load_inspector() -> Result<(Inspector, Vec<u8>), String> {
    let manifest_bytes = fetch_bytes(MANIFEST_URL).await?;
    let text = std::str::from_utf8(&manifest_bytes).map_err(|_| format!("{MANIFEST_URL}: not UTF-8 text"))?;
    let manifest = BackboneManifest::from_json(MANIFEST_URL, text).map_err(|e| e.to_string())?;
    // The page shows how much of the model is still to come (each 1% or so).
    let mut shown = 0u64;
    let onnx = fetch_bytes_with_progress(&format!("./{}", manifest.file), |received, total| {
        if received - shown >= total.map_or(256 * 1024, |t| (t / 100).max(1)) {
            shown = received;
            post(Event::Status(Status::Downloading { received, total }));
        }
    })
    .await?;
    let inspector = Inspector::new(manifest, &onnx).map_err(|e| e.to_string())?;
    Ok((inspector, onnx))
}

/// Opens the GPU backend if the browser offers WebGPU: kernels, the backbone's buffers
/// and a warm-up run. Any failure leaves the CPU in charge, with the reason kept.
async fn start_gpu(inspector: &Inspector, onnx: &[u8]) -> Result<GpuInspector, String> {
    let gpu = js_sys::Reflect::get(&scope().navigator(), &"gpu".into()).map_err(|_| "the browser has no navigator.gpu".to_string())?;
    if gpu.is_undefined() || gpu.is_null() {
        return Err("this browser does not offer WebGPU".into());
    }
    let ctx = GpuContext::request().await.map_err(|e| e.to_string())?;
    GpuInspector::new(ctx, inspector, onnx).await.map_err(|e| e.to_string())
}

/// The size of this worker's WebAssembly memory.
fn wasm_memory_bytes() -> u64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| m.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64)
        .unwrap_or(0)
}

/// Entry point of the worker bundle: load the model, try the GPU, then serve calls.
pub fn run() {
    console_error_panic_hook::set_once();
    let (calls, mut queue) = futures::channel::mpsc::unbounded::<Call>();
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let data = event.data();
        match serde_wasm_bindgen::from_value::<Call>(data.clone()) {
            Ok(call) => {
                let _ = calls.unbounded_send(call);
            }
            // A page from another build: answer the call by its id when it has one.
            Err(e) => match serde_wasm_bindgen::from_value::<CallIdOnly>(data) {
                Ok(CallIdOnly { id }) => post(unreadable(id, &e.to_string())),
                Err(_) => gloo::console::error!(format!("the page sent a message the engine cannot read: {e}")),
            },
        }
    });
    scope().set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    on_message.forget();
    post(Event::Status(Status::Listening));
    wasm_bindgen_futures::spawn_local(async move {
        let mut service = Service::<GpuInspector>::new(wasm_memory_bytes);
        let (loaded, onnx) = match load_inspector().await {
            Ok((inspector, onnx)) => (Ok(inspector), Some(onnx)),
            Err(why) => (Err(why), None),
        };
        post(Event::Status(service.backbone_loaded(loaded)));
        if let (Ok(inspector), Some(onnx)) = (service.inspector(), onnx) {
            let gpu = start_gpu(&inspector.clone(), &onnx).await;
            post(Event::Status(service.gpu_started(gpu)));
        }
        while let Some(call) = queue.next().await {
            service.handle(call, &mut post).await;
        }
    });
}

#[derive(serde::Deserialize)]
struct CallIdOnly {
    id: u64,
}

/// What the page gets for a call the engine could not read.
fn unreadable(id: u64, why: &str) -> Event {
    Event::Failed {
        id,
        error: Failure::new(FailureKind::Protocol, format!("the engine cannot read this request ({why}); reload the page")),
    }
}
