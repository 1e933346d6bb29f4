//! The current product's versions, newest first: when each was made, what changed, and
//! *Roll back* to make an earlier one the model again, exactly as it was.

use leptos::prelude::*;

use super::actions;
use super::state::AppState;
use crate::client::versions::{history, Version, KEEP_VERSIONS};
use crate::client::workbench::Workbench;

fn when(ms: f64) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
    String::from(date.to_locale_string("default", &wasm_bindgen::JsValue::UNDEFINED))
}

#[component]
pub fn HistoryPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let versions = RwSignal::new(Vec::<(Version, String)>::new());
    let rolling_back = RwSignal::new(false);
    // Read again whenever the library changes (each new version refreshes it) or
    // another product becomes current.
    Effect::new(move |_| {
        state.products.track();
        let id = state.current.with(|c| c.as_ref().map(|p| p.id.clone()));
        leptos::task::spawn_local(async move {
            let kept = match (state.library(), &id) {
                (Some(library), Some(id)) => library.versions(id).await.unwrap_or_else(|message| {
                    state.report(message);
                    Vec::new()
                }),
                _ => Vec::new(),
            };
            // The person may have moved on while the versions were read.
            if state.current.with_untracked(|c| c.as_ref().map(|p| &p.id) == id.as_ref()) {
                versions.set(history(&kept));
            }
        });
    });
    let roll_back = move |version: Version| {
        rolling_back.set(true);
        leptos::task::spawn_local(async move {
            if let Err(message) = actions::roll_back(state, version).await {
                state.report(message);
            }
            rolling_back.set(false);
        });
    };
    // Not while anything trains, loads or calibrates (the current product's training included).
    let busy = move || rolling_back.get() || !state.bench.with(Workbench::idle);

    view! {
        <Show when=move || state.current.with(|c| c.as_ref().is_some_and(|p| p.summary.is_some()))>
            <section class="panel" aria-labelledby="history-title" data-testid="versions">
                <h2 id="history-title">"Versions"</h2>
                <p class="hint">{format!(
                    "Every training, calibration, import and roll back makes a new version; the last {KEEP_VERSIONS} are kept. \
                     Roll back makes an earlier one the model again, exactly as it was (the inspection log says which model judged each photo)."
                )}</p>
                <Show when=move || !versions.with(Vec::is_empty)
                    fallback=|| view! { <p class="hint">"No versions kept yet: this product was trained before versions were kept. The next training starts its history."</p> }>
                    <ol class="versions">
                        <For each=move || versions.get().into_iter().enumerate() key=|(i, (v, _))| (*i, v.id.clone()) let:row>
                            {
                                let (index, (version, words)) = row;
                                let number = version.number;
                                view! {
                                    <li data-testid="version" data-version=number>
                                        <span><strong>{format!("Version {number}")}</strong>" · "{when(version.time_ms)}<br/>
                                            <span class="hint">{words}</span></span>
                                        {if index == 0 {
                                            view! { <span class="badge" data-testid="version-current">"in use"</span> }.into_any()
                                        } else {
                                            view! {
                                                <button class="secondary" data-testid="rollback" disabled=busy
                                                    aria-label=format!("Roll back to version {number}")
                                                    on:click=move |_| roll_back(version.clone())>"Roll back"</button>
                                            }.into_any()
                                        }}
                                    </li>
                                }
                            }
                        </For>
                    </ol>
                </Show>
            </section>
        </Show>
    }
}
