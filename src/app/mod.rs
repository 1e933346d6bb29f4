//! The page: library, train panel, inspect panel, errors. The engine runs in a worker;
//! saved work lives in IndexedDB (store.rs).

mod backend;
mod calibrate;
mod camera;
mod demo;
mod engine;
mod eval_charts;
mod evaluate;
mod inspect;
mod library;
mod offline;
mod store;
mod train;

use std::rc::Rc;

use leptos::prelude::*;

use crate::engine::image_ops::MAX_FILE_BYTES;
use crate::eval::calibration::CalibrationScores;
use crate::protocol::{BackendStatus, InspectionReply, UploadedFile};

pub use engine::EngineClient;
pub use store::{Library, Photo, PhotoRole, Product};

/// One photo of an inspection batch, with its answer once it comes.
#[derive(Clone)]
pub struct InspectionItem {
    pub tag: u32,
    pub file: String,
    pub photo: web_sys::Blob,
    pub bytes: Rc<Vec<u8>>,
    pub reply: Option<InspectionReply>,
    pub error: Option<String>,
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
    /// Where inspections run, and whether WebGPU can be had (None until the engine knows).
    pub engine_backend: RwSignal<Option<BackendStatus>>,
    /// The product being taught and inspected; None while a new one is being named.
    pub current: RwSignal<Option<Product>>,
    /// The id of the product whose profile the engine holds.
    pub loaded: RwSignal<Option<String>>,
    pub products: RwSignal<Vec<Product>>,
    /// Good photos of the current product, as saved.
    pub photos: RwSignal<Vec<Photo>>,
    /// Damaged photos of the current product, with their masks and categories, as saved.
    pub damaged: RwSignal<Vec<Photo>>,
    /// The engine is scoring calibration photos.
    pub calibrating: RwSignal<bool>,
    /// The calibration photos' scores, once scored.
    pub calibration: RwSignal<Option<CalibrationScores>>,
    pub training: RwSignal<bool>,
    pub progress: RwSignal<Option<Progress>>,
    pub inspections: RwSignal<Vec<InspectionItem>, LocalStorage>,
    /// The camera frame being judged; it replaces the shown inspection only once its
    /// answer is in, so the verdict and heatmap never blink between frames.
    pub live_frame: StoredValue<Option<InspectionItem>, LocalStorage>,
    /// The inspection shown large.
    pub selected: RwSignal<Option<u32>>,
    /// Messages a person can act on; shown until dismissed.
    pub errors: RwSignal<Vec<String>>,
    pub engine: StoredValue<Option<EngineClient>, LocalStorage>,
    pub library: StoredValue<Option<Rc<Library>>, LocalStorage>,
    /// The demo product shipped with this installation, if any.
    pub demo: RwSignal<Option<demo::DemoManifest>>,
    next_tag: StoredValue<u32>,
}

impl AppState {
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
        let current = self.current.with(|c| c.as_ref().filter(|p| p.summary.is_some()).map(|p| p.id.clone()));
        current.is_some() && current == self.loaded.get() && !self.training.get() && !self.calibrating.get()
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

#[component]
pub fn App() -> impl IntoView {
    let state = AppState {
        model: RwSignal::new(None),
        engine_backend: RwSignal::new(None),
        current: RwSignal::new(None),
        loaded: RwSignal::new(None),
        products: RwSignal::new(Vec::new()),
        photos: RwSignal::new(Vec::new()),
        damaged: RwSignal::new(Vec::new()),
        calibrating: RwSignal::new(false),
        calibration: RwSignal::new(None),
        training: RwSignal::new(false),
        progress: RwSignal::new(None),
        inspections: RwSignal::new_local(Vec::new()),
        selected: RwSignal::new(None),
        errors: RwSignal::new(Vec::new()),
        engine: StoredValue::new_local(None),
        library: StoredValue::new_local(None),
        demo: RwSignal::new(None),
        next_tag: StoredValue::new(1),
        live_frame: StoredValue::new_local(None),
    };
    provide_context(state);
    engine::start(state);
    library::open(state);
    let offline = RwSignal::new(offline::Offline::Preparing);
    offline::start(state, offline);

    view! {
        <header class="top">
            <h1>"DamageLens"</h1>
            <p class="tagline">"Visual damage inspection that never leaves this device."</p>
            <backend::BackendChoice/>
            <offline::OfflineBadge status=offline/>
        </header>
        <ErrorBanner/>
        <main class="panels">
            <library::LibraryPanel/>
            <train::TrainPanel/>
            <inspect::InspectPanel/>
            <calibrate::CalibratePanel/>
            <evaluate::EvaluatePanel/>
        </main>
        <demo::DemoCredit/>
    }
}

#[component]
fn ErrorBanner() -> impl IntoView {
    let state = expect_context::<AppState>();
    view! {
        <Show when=move || !state.errors.with(Vec::is_empty)>
            <div class="error" role="alert" data-testid="error">
                <ul>
                    <For each=move || state.errors.get().into_iter().enumerate() key=|(i, m)| (*i, m.clone()) let:item>
                        <li>{item.1}</li>
                    </For>
                </ul>
                <button class="secondary" on:click=move |_| state.errors.set(Vec::new())>"Dismiss"</button>
            </div>
        </Show>
    }
}

/// Reads the files a person picked, in the order given. A file too large for any photo
/// is refused from its size, before it is read; an unreadable one is reported; both are
/// left out and the others go on.
pub async fn read_files(state: AppState, files: Vec<web_sys::File>) -> Vec<UploadedFile> {
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let name = file.name();
        match read_file(&file, &name).await {
            Ok(bytes) => out.push(UploadedFile { name, bytes }),
            Err(message) => state.report(message),
        }
    }
    out
}

/// The files that are PNG or JPEG photos, judged from their first bytes; each other one
/// is reported by name and left out, before anything is saved.
pub fn photos_only(state: AppState, files: Vec<UploadedFile>) -> Vec<UploadedFile> {
    files
        .into_iter()
        .filter(|f| match crate::engine::image_ops::check_format(&f.name, &f.bytes) {
            Ok(_) => true,
            Err(e) => {
                state.report(format!("Not added: {e}"));
                false
            }
        })
        .collect()
}

/// Reads one file, refusing one too large for any photo from its size, before reading it.
/// `name` is how messages call it (a folder upload names files by their path).
pub async fn read_file(file: &web_sys::File, name: &str) -> Result<Vec<u8>, String> {
    if file.size() > MAX_FILE_BYTES as f64 {
        return Err(format!(
            "{name}: the file is {:.0} MB, more than the {} MB limit. Use a smaller photo (a few megapixels is plenty).",
            file.size() / 1048576.0,
            MAX_FILE_BYTES >> 20
        ));
    }
    match wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await {
        Ok(buffer) => Ok(js_sys::Uint8Array::new(&buffer).to_vec()),
        Err(_) => Err(format!("{name}: the file could not be read. Pick it again.")),
    }
}

/// The files of an `<input type="file">` change event.
pub fn picked_files(ev: &web_sys::Event) -> Vec<web_sys::File> {
    let input: web_sys::HtmlInputElement = event_target(ev);
    let Some(list) = input.files() else { return Vec::new() };
    let files = (0..list.length()).filter_map(|i| list.get(i)).collect();
    // Picking the same file again must fire `change` again.
    input.set_value("");
    files
}

/// A Blob of some bytes, for drawing and object URLs.
pub fn blob_of(bytes: &[u8]) -> Result<web_sys::Blob, String> {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    web_sys::Blob::new_with_u8_array_sequence(&parts).map_err(|e| format!("{e:?}"))
}

/// A Blob with a media type, for what the browser must know the type of (an SVG image).
pub fn blob_of_type(bytes: &[u8], media_type: &str) -> Result<web_sys::Blob, String> {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(media_type);
    web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(|e| format!("{e:?}"))
}

pub fn now_ms() -> f64 {
    js_sys::Date::now()
}
