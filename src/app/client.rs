//! The page's handle on the engine worker: `call(request)` sends a call with its own id
//! and returns a future of its own answer (see [`crate::client::calls`]). The engine's
//! own news (model loaded, backend) updates the page's state; nothing else is routed.

use std::cell::RefCell;
use std::rc::Rc;

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{ErrorEvent, MessageEvent, Worker};

use super::state::AppState;
use crate::client::calls::{answer, CallNews, Calls, OnNews, Routed};
use crate::protocol::{Event, Failure, FailureKind, Reply, Request, Status};

/// Trunk names the worker bundle after its binary; the loader shim starts it.
const WORKER_URL: &str = "./worker_loader.js";

pub struct EngineClient {
    worker: Worker,
    calls: Rc<RefCell<Calls>>,
    /// Calls made before the worker listens (its code is still downloading: a message
    /// it gets before then is lost), sent in order when its first event comes.
    waiting: Rc<RefCell<Option<Vec<JsValue>>>>,
    _on_message: Closure<dyn FnMut(MessageEvent)>,
    _on_error: Closure<dyn FnMut(ErrorEvent)>,
}

impl EngineClient {
    fn spawn(state: AppState) -> Result<Self, String> {
        let worker =
            Worker::new(WORKER_URL).map_err(|e| format!("The inspection engine could not start ({e:?}). Use a current browser."))?;
        let calls = Rc::new(RefCell::new(Calls::default()));
        let routing = calls.clone();
        let waiting = Rc::new(RefCell::new(Some(Vec::new())));
        let (listening, to) = (waiting.clone(), worker.clone());
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
            if let Some(held) = listening.borrow_mut().take() {
                for call in held {
                    let _ = to.post_message(&call);
                }
            }
            match serde_wasm_bindgen::from_value::<Event>(event.data()) {
                // Routed inside the borrow, acted on after it: a callback may make a call.
                Ok(event) => match routing.borrow_mut().route(event) {
                    Routed::Status(status) => on_status(state, status),
                    Routed::News(on_news, news) => on_news(news),
                    Routed::Handled => {}
                },
                Err(e) => state.report(format!("The engine sent a message the page cannot read: {e}")),
            }
        });
        let failing = calls.clone();
        let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |event: ErrorEvent| {
            let message = format!("The inspection engine stopped: {}. Reload the page.", event.message());
            failing.borrow_mut().fail_all(&message);
            state.bench.update(|b| b.engine_restarted());
            state.recognised.set_value(None);
            state.report(message);
        });
        worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(EngineClient { worker, calls, waiting, _on_message: on_message, _on_error: on_error })
    }
}

impl Drop for EngineClient {
    /// The worker goes, and with it every answer still to come: their calls fail now.
    fn drop(&mut self) {
        self.worker.terminate();
        self.calls.borrow_mut().fail_all("The inspection engine was restarted before it answered; nothing saved was lost.");
    }
}

fn on_status(state: AppState, status: Status) {
    match status {
        Status::Listening => {}
        Status::Downloading { received, total } => state.download.set(Some((received, total))),
        Status::Ready { model } => {
            // The page loads the current product's profile once it sees the model.
            state.download.set(None);
            state.model.set(Some(model));
        }
        Status::Backend(status) => {
            if let Some(notice) = &status.notice {
                state.report(notice.clone());
            }
            state.engine_backend.set(Some(status));
        }
        Status::Unavailable { message } => state.report(message),
    }
}

/// Starts the engine; when it is ready it takes the current product's profile.
pub fn start(state: AppState) {
    state.model.set(None);
    state.engine_backend.set(None);
    state.bench.update(|b| b.engine_restarted());
    state.recognised.set_value(None);
    match EngineClient::spawn(state) {
        Ok(client) => state.engine.set_value(Some(client)),
        Err(message) => state.report(message),
    }
}

/// Stops whatever the engine is doing (training cannot be interrupted from inside: the
/// worker is busy) and starts a fresh one. Every call in flight fails as stopped; photos
/// and profiles saved so far are kept.
pub fn cancel(state: AppState) {
    state.engine.set_value(None);
    state.train_progress.set(Default::default());
    state.progress.set(None);
    start(state);
}

/// Sends `request` and awaits its own answer; `on_news` hears its progress. A call the
/// engine refused comes back as its typed [`Failure`]; so does one whose engine stopped.
pub async fn call(state: AppState, request: Request, on_news: Option<OnNews>) -> Result<Reply, Failure> {
    let sent = state.engine.with_value(|engine| {
        let engine = engine.as_ref().ok_or("The inspection engine is not running. Reload the page.")?;
        let (call, receiver) = engine.calls.borrow_mut().start(request, on_news);
        let value = serde_wasm_bindgen::to_value(&call).map_err(|e| format!("cannot send to the engine: {e}"));
        let posted = value.and_then(|v| match engine.waiting.borrow_mut().as_mut() {
            Some(held) => {
                held.push(v);
                Ok(())
            }
            None => engine.worker.post_message(&v).map_err(|e| format!("cannot send to the engine: {e:?}")),
        });
        match posted {
            Ok(()) => Ok(receiver),
            Err(why) => {
                engine.calls.borrow_mut().fail(call.id, &why);
                Err(why)
            }
        }
    });
    match sent {
        Ok(receiver) => answer(receiver).await,
        Err(why) => Err(Failure::new(FailureKind::EngineStopped, why)),
    }
}

/// Progress news as a callback that writes `into` (skipped files are reported).
pub fn progress_into(state: AppState, into: impl Fn(usize, usize) + 'static) -> OnNews {
    Rc::new(move |news| match news {
        CallNews::Progress { done, total } => into(done, total),
        CallNews::Skipped(message) => state.report(format!("Skipped: {message}")),
    })
}
