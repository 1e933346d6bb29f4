//! The page's handle on the engine worker.

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker};

use super::AppState;
use crate::protocol::{Reply, Request};

/// Trunk names the worker bundle after its binary; the loader shim starts it.
const WORKER_URL: &str = "./worker_loader.js";

pub struct EngineClient {
    worker: Worker,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

impl EngineClient {
    pub fn spawn(state: AppState) -> Result<Self, String> {
        let worker = Worker::new(WORKER_URL)
            .map_err(|e| format!("The inspection engine could not start ({e:?}). Use a current browser."))?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            match serde_wasm_bindgen::from_value::<Reply>(event.data()) {
                Ok(reply) => apply(state, reply),
                Err(e) => state.report(format!("The engine sent a message the page cannot read: {e}")),
            }
        });
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |event: ErrorEvent| {
            state.training.set(false);
            state.inspecting.set(false);
            state.report(format!("The inspection engine stopped: {}. Reload the page.", event.message()));
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(EngineClient { worker, _on_message: on_message, _on_error: on_error })
    }

    pub fn send(&self, request: &Request) -> Result<(), String> {
        let value = serde_wasm_bindgen::to_value(request).map_err(|e| format!("cannot send to the engine: {e}"))?;
        self.worker.post_message(&value).map_err(|e| format!("cannot send to the engine: {e:?}"))
    }
}

fn apply(state: AppState, reply: Reply) {
    match reply {
        Reply::Ready { backend, model } => state.backend.set(Some(format!("{backend} · {model}"))),
        Reply::Progress { done, total } => state.progress.set(Some((done, total))),
        Reply::Skipped { message } => state.report(format!("Skipped: {message}")),
        Reply::Trained { profile } => {
            state.training.set(false);
            state.inspection.set(None);
            state.profile.set(Some(profile));
        }
        Reply::Inspected { result } => {
            state.inspecting.set(false);
            state.inspection.set(Some(result));
        }
        Reply::Failed { message } => {
            state.training.set(false);
            state.inspecting.set(false);
            state.report(message);
        }
    }
}

/// Sends a request, reporting on screen when that fails.
pub fn send(state: AppState, request: Request) -> bool {
    let result = state.engine.with_value(|engine| match engine {
        Some(engine) => engine.send(&request),
        None => Err("The inspection engine is not running. Reload the page.".into()),
    });
    match result {
        Ok(()) => true,
        Err(message) => {
            state.report(message);
            false
        }
    }
}
