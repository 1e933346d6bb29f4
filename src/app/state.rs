//! What the page knows, shared by every panel: the engine's news, the library, the
//! current product and its photos, inspections and messages. Signals display it; the
//! rules for which product is current, training or held by the engine live in
//! [`Workbench`], a plain type with native tests.

use std::collections::HashMap;
use std::rc::Rc;

use leptos::prelude::*;
use serde::Deserialize;

use super::client::EngineClient;
use super::store::{Library, Photo, Product};
use crate::client::items::ItemSession;
use crate::client::log::LogEntry;
use crate::client::workbench::{Next, Workbench};
use crate::eval::calibration::CalibrationScores;
use crate::protocol::{BackendStatus, InspectionReply};

/// One photo of an inspection batch, with its answer once it comes.
#[derive(Clone)]
pub struct InspectionItem {
    pub tag: u32,
    pub file: String,
    /// The item it is a view of ([`ItemSession::key_for`]).
    pub item: String,
    pub photo: web_sys::Blob,
    pub bytes: Rc<Vec<u8>>,
    pub reply: Option<InspectionReply>,
    pub error: Option<String>,
    /// Its entry in the inspection log, once written.
    pub logged: Option<f64>,
}

/// Training under way: how far, and since when (for the time left).
#[derive(Clone, Copy, PartialEq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
    pub started_ms: f64,
}

/// Everything the panels share. Signals are Copy, so this is passed around by value.
#[derive(Clone, Copy)]
pub struct AppState {
    /// The backbone the engine runs, once it is loaded (None while loading).
    pub model: RwSignal<Option<String>>,
    /// While the model downloads: bytes received, and in all when known.
    pub download: RwSignal<Option<(u64, Option<u64>)>>,
    /// Where inspections run, and whether WebGPU can be had (None until the engine knows).
    pub engine_backend: RwSignal<Option<BackendStatus>>,
    /// The product being taught and inspected; None while a new one is being named.
    /// Set it through [`AppState::set_current`], which keeps `bench` in step.
    pub current: RwSignal<Option<Product>>,
    /// Which product is current, training, or held by the engine, with its rules.
    pub bench: RwSignal<Workbench>,
    pub products: RwSignal<Vec<Product>>,
    /// Good photos of the current product, as saved.
    pub photos: RwSignal<Vec<Photo>>,
    /// Damaged photos of the current product, with their masks and categories, as saved.
    pub damaged: RwSignal<Vec<Photo>>,
    /// The calibration photos' scores, once scored.
    pub calibration: RwSignal<Option<CalibrationScores>>,
    /// Scoring the calibration photos: how far.
    pub progress: RwSignal<Option<Progress>>,
    /// Each training under way, by product id: how far.
    pub train_progress: RwSignal<HashMap<String, Progress>>,
    pub inspections: RwSignal<Vec<InspectionItem>, LocalStorage>,
    /// The item opened with *New item*, which new photos join.
    pub item_session: RwSignal<ItemSession>,
    /// The inspection shown large.
    pub selected: RwSignal<Option<u32>>,
    /// Messages a person can act on; shown until dismissed.
    pub errors: RwSignal<Vec<String>>,
    pub engine: StoredValue<Option<EngineClient>, LocalStorage>,
    pub library: StoredValue<Option<Rc<Library>>, LocalStorage>,
    /// The demo product shipped with this installation, if any.
    pub demo: RwSignal<Option<DemoManifest>>,
    /// The inspection log as stored (oldest first), and why logging stopped, if it did.
    pub log: RwSignal<Vec<LogEntry>>,
    pub log_stopped: RwSignal<Option<String>>,
    /// The session new verdicts belong to.
    pub session: RwSignal<String>,
    /// Auto: each photo's product is recognised, and becomes the current one.
    pub auto: RwSignal<bool>,
    /// The trained products the engine recognises, as (id, trained at): sent again
    /// when the library changes (None: not sent, or the engine restarted).
    pub recognised: StoredValue<Option<Vec<(String, u64)>>>,
    next_tag: StoredValue<u32>,
}

impl AppState {
    pub fn new() -> Self {
        AppState {
            model: RwSignal::new(None),
            download: RwSignal::new(None),
            engine_backend: RwSignal::new(None),
            current: RwSignal::new(None),
            bench: RwSignal::new(Workbench::default()),
            products: RwSignal::new(Vec::new()),
            photos: RwSignal::new(Vec::new()),
            damaged: RwSignal::new(Vec::new()),
            calibration: RwSignal::new(None),
            progress: RwSignal::new(None),
            train_progress: RwSignal::new(HashMap::new()),
            inspections: RwSignal::new_local(Vec::new()),
            item_session: RwSignal::new(ItemSession::default()),
            selected: RwSignal::new(None),
            errors: RwSignal::new(Vec::new()),
            engine: StoredValue::new_local(None),
            library: StoredValue::new_local(None),
            demo: RwSignal::new(None),
            log: RwSignal::new(Vec::new()),
            log_stopped: RwSignal::new(None),
            session: RwSignal::new(String::new()),
            auto: RwSignal::new(false),
            recognised: StoredValue::new(None),
            next_tag: StoredValue::new(1),
        }
    }

    pub fn report(&self, message: impl Into<String>) {
        let message = message.into();
        self.errors.update(|e| e.push(message));
    }

    pub fn library(&self) -> Option<Rc<Library>> {
        self.library.get_value()
    }

    pub fn tag(&self) -> u32 {
        let tag = self.next_tag.get_value();
        self.next_tag.set_value(tag.wrapping_add(1));
        tag
    }

    /// The current product, trained and held by the engine: ready to inspect with.
    pub fn ready(&self) -> bool {
        self.model.with(Option::is_some) && self.bench.with(Workbench::ready)
    }

    /// Photos can be sent to the engine: with Auto, when some product is trained and
    /// nothing is changing the engine's profile; else when the current product is ready.
    pub fn can_inspect(&self) -> bool {
        if !self.auto.get() {
            return self.ready();
        }
        self.model.with(Option::is_some)
            && self.bench.with(Workbench::idle)
            && self.products.with(|ps| ps.iter().any(|p| p.summary.is_some()))
    }

    /// The current product is being trained.
    pub fn training(&self) -> bool {
        self.bench.with(Workbench::current_training)
    }

    pub fn calibrating(&self) -> bool {
        self.bench.with(|b| b.calibrating)
    }

    /// Makes `product` the current one (None: a new one, being named); says whether its
    /// profile must now go to the engine.
    pub fn set_current(&self, product: Option<Product>) -> Next {
        let next = self.bench.try_update(|b| b.select(product.as_ref().map(|p| (p.id.clone(), p.summary.is_some()))));
        self.current.set(product);
        next.unwrap_or(Next::Nothing)
    }

    /// Reads the library again after a change.
    pub async fn refresh_products(&self) {
        let Some(library) = self.library() else { return };
        match library.products().await {
            Ok(products) => self.products.set(products),
            Err(message) => self.report(message),
        }
    }
}

/// The browser's localStorage, for the small settings a reload keeps (the current
/// product, Auto, the session's name); None where it is blocked.
pub fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// The demo product shipped with this installation (`demo/demo.json`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DemoManifest {
    pub product: String,
    pub credit: String,
    pub train: Vec<String>,
    pub samples: Vec<DemoSample>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DemoSample {
    pub file: String,
    pub label: String,
}
