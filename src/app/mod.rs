//! The page. Data flows one way: panels -> `actions` -> `client` (calls to the engine
//! worker, each awaiting its own answer) -> `state` (signals that display the plain
//! types of `crate::client`). Saved work lives in IndexedDB (`store`). Panels import
//! `actions`, `state` and their own child components, never a sibling panel.

mod actions;
mod backend;
mod calibrate;
mod camera;
mod canvas;
mod client;
mod demo;
mod eval_charts;
mod evaluate;
mod files;
mod history;
mod inspect;
mod library;
mod log;
mod offline;
mod record;
mod state;
mod store;
mod train;

use leptos::prelude::*;
use wasm_bindgen::prelude::*;

use crate::client::route::{Page, Panel};
use state::AppState;

/// The page the address names, and a signal that follows it (links, back, forward).
fn follow_address() -> RwSignal<Page> {
    let hash = || web_sys::window().and_then(|w| w.location().hash().ok()).unwrap_or_default();
    let page = RwSignal::new(Page::from_hash(&hash()));
    let on_change = Closure::<dyn FnMut()>::new(move || page.set(Page::from_hash(&hash())));
    if let Some(window) = web_sys::window() {
        let _ = window.add_event_listener_with_callback("hashchange", on_change.as_ref().unchecked_ref());
    }
    // The page lives as long as the tab: the listener too.
    on_change.forget();
    page
}

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    provide_context(state);
    client::start(state);
    leptos::task::spawn_local(async move {
        actions::open(state).await;
        demo::prepare(state).await;
    });
    // The model came (first, or after a restart): it takes the current product's profile.
    Effect::new(move |_| {
        if state.model.with(Option::is_some) {
            actions::load_current(state);
        }
    });
    let offline = RwSignal::new(offline::Offline::Preparing);
    offline::start(state, offline);
    let page = follow_address();
    // Every panel stays mounted (work under way on one goes on while another is shown);
    // a page shows its own.
    let hidden = move |panel: Panel| move || !page.get().shows(panel);

    view! {
        <header class="top">
            <h1>"DamageLens"</h1>
            <p class="tagline">"Visual damage inspection that never leaves this device."</p>
            <backend::BackendChoice/>
            <offline::OfflineBadge status=offline/>
        </header>
        <nav class="pages" aria-label="Pages" data-testid="pages">
            {Page::ALL.into_iter().map(|p| view! {
                <a href=p.hash() data-testid=format!("page-{}", p.slug())
                    aria-current=move || (page.get() == p).then_some("page")>{p.title()}</a>
            }).collect_view()}
        </nav>
        <ErrorBanner/>
        <main class=move || format!("panels page-{}", page.get().slug())>
            <div class="slot" hidden=hidden(Panel::Library)><library::LibraryPanel/></div>
            <div class="slot" hidden=hidden(Panel::History)><history::HistoryPanel/></div>
            <div class="slot" hidden=hidden(Panel::Teach)><train::TrainPanel/></div>
            <div class="slot" hidden=hidden(Panel::Inspect)><inspect::InspectPanel/></div>
            <div class="slot" hidden=hidden(Panel::Calibrate)><calibrate::CalibratePanel/></div>
            <div class="slot" hidden=hidden(Panel::Evaluate)><evaluate::EvaluatePanel/></div>
            <div class="slot" hidden=hidden(Panel::Log)><log::LogPanel/></div>
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
