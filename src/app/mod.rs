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
mod inspect;
mod library;
mod log;
mod offline;
mod record;
mod state;
mod store;
mod train;

use leptos::prelude::*;

use state::AppState;

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
            <log::LogPanel/>
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
