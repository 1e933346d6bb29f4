//! Offline use: registers the service worker (www/sw.js, finished by `cargo xtask
//! finish-dist`) that keeps every file of the app, its model and the demo on the device,
//! and tells the person in the header whether the app will open without a network.

use leptos::prelude::*;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ServiceWorker, ServiceWorkerContainer, ServiceWorkerRegistration, ServiceWorkerState};

use super::state::AppState;

const SERVICE_WORKER_URL: &str = "./sw.js";

#[derive(Clone, Debug, PartialEq)]
pub enum Offline {
    /// The files are being stored.
    Preparing,
    /// Every file is stored: the app opens and inspects with no network.
    Ready,
    /// The app works online only; why, in words a person can act on.
    Unavailable(String),
}

/// Registers the service worker and follows it until the app's files are stored.
pub fn start(state: AppState, status: RwSignal<Offline>) {
    let Some(window) = web_sys::window() else { return };
    let navigator = window.navigator();
    // Browsers offer service workers on https (and on localhost) only.
    if !js_sys::Reflect::has(&navigator, &JsValue::from_str("serviceWorker")).unwrap_or(false) {
        status.set(Offline::Unavailable("This browser cannot keep DamageLens for offline use here: open it over https.".into()));
        return;
    }
    let container = navigator.service_worker();
    // The service worker stores every file of the build, the model included: on a first
    // visit over a slow network it would download them all again beside the page's own
    // downloads and hold back the first verdict, so it registers once the model is in.
    let registered = StoredValue::new(false);
    Effect::new(move |_| {
        if state.model.with(Option::is_none) || registered.get_value() {
            return;
        }
        registered.set_value(true);
        register(state, container.clone(), status);
    });
}

fn register(state: AppState, container: ServiceWorkerContainer, status: RwSignal<Offline>) {
    leptos::task::spawn_local(async move {
        let registration = match JsFuture::from(container.register(SERVICE_WORKER_URL)).await {
            Ok(r) => r.unchecked_into::<ServiceWorkerRegistration>(),
            Err(e) => {
                return status.set(Offline::Unavailable(format!(
                    "{SERVICE_WORKER_URL} could not be registered ({}): DamageLens works online only.",
                    describe(&e)
                )))
            }
        };
        if registration.active().is_some() {
            return status.set(Offline::Ready);
        }
        if let Some(worker) = registration.installing().or_else(|| registration.waiting()) {
            follow(state, worker, status);
        }
    });
}

/// Watches a new service worker: it turns active once every file is stored, redundant
/// when storing failed (a full storage, say, or the network went away meanwhile).
fn follow(state: AppState, worker: ServiceWorker, status: RwSignal<Offline>) {
    let watched = worker.clone();
    let on_change = Closure::<dyn FnMut()>::new(move || match watched.state() {
        ServiceWorkerState::Activated => status.set(Offline::Ready),
        ServiceWorkerState::Redundant if status.get_untracked() != Offline::Ready => {
            let message = "DamageLens could not store its files for offline use: this device's storage may be full. \
                           It works while online; free some space (or delete products you no longer need) and reload.";
            state.report(message);
            status.set(Offline::Unavailable(message.into()));
        }
        _ => {}
    });
    worker.set_onstatechange(Some(on_change.as_ref().unchecked_ref()));
    // The handler lives as long as the worker it watches, which outlives this page.
    on_change.forget();
}

fn describe(error: &JsValue) -> String {
    error
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| error.as_string())
        .unwrap_or_else(|| format!("{error:?}"))
}

/// The header badge: whether this device can open DamageLens without a network.
#[component]
pub fn OfflineBadge(status: RwSignal<Offline>) -> impl IntoView {
    let state = move || match status.get() {
        Offline::Preparing => "preparing",
        Offline::Ready => "ready",
        Offline::Unavailable(_) => "unavailable",
    };
    let text = move || match status.get() {
        Offline::Preparing => "Saving for offline use…",
        Offline::Ready => "Works offline",
        Offline::Unavailable(_) => "Online only",
    };
    let why = move || match status.get() {
        Offline::Preparing => "The app, its model and the demo are being stored on this device.".to_string(),
        Offline::Ready => "The app, its model and the demo are stored on this device: it opens without a network.".to_string(),
        Offline::Unavailable(reason) => reason,
    };
    view! {
        <span class="backend" data-testid="offline" data-state=state title=why>{text}</span>
    }
}
