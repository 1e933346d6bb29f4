//! The page: header, train panel, inspect panel, errors. The engine runs in a worker.

mod demo;
mod engine;
mod inspect;
mod train;

use leptos::prelude::*;

use crate::protocol::{InspectionReply, ProfileSummary};

pub use engine::EngineClient;

/// Everything the panels share. Signals are Copy, so this is passed around by value.
#[derive(Clone, Copy)]
pub struct AppState {
    /// Where the engine runs, once its model is loaded.
    pub backend: RwSignal<Option<String>>,
    pub training: RwSignal<bool>,
    pub progress: RwSignal<Option<(usize, usize)>>,
    pub profile: RwSignal<Option<ProfileSummary>>,
    pub inspecting: RwSignal<bool>,
    pub inspection: RwSignal<Option<InspectionReply>>,
    /// Messages a person can act on; shown until dismissed.
    pub errors: RwSignal<Vec<String>>,
    pub engine: StoredValue<Option<EngineClient>, LocalStorage>,
    /// The photo being inspected, to draw under the heatmap.
    pub photo: StoredValue<Option<web_sys::Blob>, LocalStorage>,
    /// The demo product shipped with this installation, if any.
    pub demo: RwSignal<Option<demo::DemoManifest>>,
}

impl AppState {
    pub fn report(&self, message: impl Into<String>) {
        let message = message.into();
        self.errors.update(|e| e.push(message));
    }
}

#[component]
pub fn App() -> impl IntoView {
    let state = AppState {
        backend: RwSignal::new(None),
        training: RwSignal::new(false),
        progress: RwSignal::new(None),
        profile: RwSignal::new(None),
        inspecting: RwSignal::new(false),
        inspection: RwSignal::new(None),
        errors: RwSignal::new(Vec::new()),
        engine: StoredValue::new_local(None),
        photo: StoredValue::new_local(None),
        demo: RwSignal::new(None),
    };
    match EngineClient::spawn(state) {
        Ok(client) => state.engine.set_value(Some(client)),
        Err(message) => state.report(message),
    }
    provide_context(state);
    demo::prepare(state);

    view! {
        <header class="top">
            <h1>"DamageLens"</h1>
            <p class="tagline">"Visual damage inspection that never leaves this device."</p>
            <span class="backend" data-testid="backend">
                {move || state.backend.get().unwrap_or_else(|| "Loading model…".into())}
            </span>
        </header>
        <ErrorBanner/>
        <main class="panels">
            <train::TrainPanel/>
            <inspect::InspectPanel/>
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

/// Reads the files a person picked, in the order given; an unreadable one is reported and left out.
pub async fn read_files(state: AppState, files: Vec<web_sys::File>) -> Vec<crate::protocol::UploadedFile> {
    let mut out = Vec::with_capacity(files.len());
    for file in files {
        let name = file.name();
        match wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await {
            Ok(buffer) => out.push(crate::protocol::UploadedFile { name, bytes: js_sys::Uint8Array::new(&buffer).to_vec() }),
            Err(_) => state.report(format!("{name}: the file could not be read. Pick it again.")),
        }
    }
    out
}

/// The files of an `<input type="file">` change event.
pub fn picked_files(ev: &web_sys::Event) -> Vec<web_sys::File> {
    let input: web_sys::HtmlInputElement = event_target(ev);
    let Some(list) = input.files() else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}
