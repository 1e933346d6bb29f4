//! The page's handle on the engine worker, and what the page does with its answers.

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker};

use super::{now_ms, AppState, Progress};
use crate::protocol::{Reply, Request};

/// Trunk names the worker bundle after its binary; the loader shim starts it.
const WORKER_URL: &str = "./worker_loader.js";

pub struct EngineClient {
    worker: Worker,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

impl EngineClient {
    fn spawn(state: AppState) -> Result<Self, String> {
        let worker =
            Worker::new(WORKER_URL).map_err(|e| format!("The inspection engine could not start ({e:?}). Use a current browser."))?;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            match serde_wasm_bindgen::from_value::<Reply>(event.data()) {
                Ok(reply) => apply(state, reply),
                Err(e) => state.report(format!("The engine sent a message the page cannot read: {e}")),
            }
        });
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |event: ErrorEvent| {
            state.training.set(false);
            state.calibrating.set(false);
            super::evaluate::engine_stopped();
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

impl Drop for EngineClient {
    fn drop(&mut self) {
        self.worker.terminate();
    }
}

/// Starts the engine; when it is ready it takes the current product's profile.
pub fn start(state: AppState) {
    state.model.set(None);
    state.engine_backend.set(None);
    state.loaded.set(None);
    match EngineClient::spawn(state) {
        Ok(client) => state.engine.set_value(Some(client)),
        Err(message) => state.report(message),
    }
}

/// Stops whatever the engine is doing (training cannot be interrupted from inside: the
/// worker is busy), and starts a fresh one. Photos and profiles saved so far are kept.
pub fn cancel(state: AppState) {
    state.engine.set_value(None);
    super::evaluate::engine_stopped();
    state.training.set(false);
    state.calibrating.set(false);
    state.progress.set(None);
    start(state);
}

fn apply(state: AppState, reply: Reply) {
    match reply {
        Reply::Backend(status) => {
            if let Some(notice) = &status.notice {
                state.report(notice.clone());
            }
            state.engine_backend.set(Some(status));
        }
        // Only the benchmark asks for these.
        Reply::Stats { .. } => {}
        Reply::Ready { model } => {
            state.model.set(Some(model));
            super::library::load_current(state);
            super::demo::train_if_ready(state);
        }
        Reply::Progress { done, total } => state.progress.update(|p| {
            let started_ms = p.map(|p| p.started_ms).unwrap_or_else(now_ms);
            *p = Some(Progress { done, total, started_ms });
        }),
        Reply::Skipped { message } => state.report(format!("Skipped: {message}")),
        Reply::Trained { profile, bytes } => {
            state.training.set(false);
            super::library::trained(state, profile, bytes);
        }
        Reply::Loaded { profile } => super::library::loaded(state, profile),
        Reply::CalibrationScored { scores, problems } => {
            state.calibrating.set(false);
            state.progress.set(None);
            for problem in problems {
                state.report(problem);
            }
            state.calibration.set(Some(scores));
        }
        Reply::Calibrated { profile, bytes } => super::library::recalibrated(state, profile, bytes),
        Reply::Eval(reply) => super::evaluate::on_reply(reply),
        Reply::Inspected { result } if is_live_frame(state, result.tag) => {
            if let Some(mut item) = state.live_frame.try_update_value(Option::take).flatten() {
                state.selected.set(Some(item.tag));
                item.reply = Some(result);
                state.inspections.set(vec![item]);
            }
        }
        Reply::Inspected { result } => {
            let tag = result.tag;
            state.inspections.update(|items| {
                if let Some(item) = items.iter_mut().find(|i| i.tag == tag) {
                    item.reply = Some(result);
                }
            });
            if state.selected.get_untracked().is_none() {
                state.selected.set(Some(tag));
            }
        }
        Reply::Failed { message, tag: Some(tag) } if is_live_frame(state, tag) => {
            if let Some(mut item) = state.live_frame.try_update_value(Option::take).flatten() {
                item.error = Some(message.clone());
                state.inspections.set(vec![item]);
            }
            state.report(message);
        }
        Reply::Failed { message, tag: Some(tag) } => {
            state.inspections.update(|items| {
                if let Some(item) = items.iter_mut().find(|i| i.tag == tag) {
                    item.error = Some(message.clone());
                }
            });
            state.report(message);
        }
        Reply::Failed { message, tag: None } => {
            state.training.set(false);
            state.calibrating.set(false);
            super::library::load_failed();
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

/// Whether `tag` is the camera frame being judged.
fn is_live_frame(state: AppState, tag: u32) -> bool {
    state.live_frame.with_value(|f| f.as_ref().is_some_and(|i| i.tag == tag))
}
