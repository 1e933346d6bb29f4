//! The inspection log: the session verdicts go to, filters (product, session, verdict,
//! days), counts per product and per day with the flagged share against what the
//! product's calibration expects, the kinds of damage confirmed, the entries with their
//! thumbnails, and the exports.

use leptos::prelude::*;

use super::files::blob_of_type;
use super::record::{self, Export};
use super::state::AppState;
use crate::client::log::{iso_time, summarise, Counts, LogEntry, LogFilter};
use crate::engine::postprocess::Band;

/// Entries listed at most (the newest); counts and exports cover every one filtered.
const LISTED: usize = 50;

fn percent(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

fn some(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

#[component]
pub fn LogPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let filter = RwSignal::new(LogFilter::default());
    let filtered = move || state.log.with(|log| log.iter().filter(|e| filter.with(|f| f.matches(e))).cloned().collect::<Vec<_>>());
    let summary = Memo::new(move |_| summarise(&filtered()));
    let sessions = move || {
        let mut names: Vec<String> = state.log.with(|log| log.iter().map(|e| e.session.clone()).collect());
        names.sort();
        names.dedup();
        names
    };
    let products = move || {
        let mut seen: Vec<(String, String)> =
            state.log.with(|log| log.iter().map(|e| (e.product.clone(), e.product_name.clone())).collect());
        seen.sort();
        seen.dedup_by(|a, b| a.0 == b.0);
        seen
    };
    let expected =
        move |name: &str| state.products.with(|ps| ps.iter().find(|p| p.name == name).and_then(|p| p.summary.as_ref()?.expected_flagged));
    let export = move |how: Export| {
        if let Err(message) = record::export(&filtered(), how) {
            state.report(message);
        }
    };
    let set = move |f: fn(&mut LogFilter, Option<String>)| {
        move |ev: web_sys::Event| filter.update(|filter| f(filter, some(event_target_value(&ev))))
    };

    view! {
        <section class="panel wide" aria-labelledby="log-title" data-testid="log-panel">
            <h2 id="log-title">"Inspection log"</h2>
            <p class="hint">"Every verdict is kept on this device with a thumbnail and what you decided, in the session named here."</p>
            <label for="log-session">"Session"</label>
            <input id="log-session" type="text" data-testid="log-session" prop:value=move || state.session.get()
                on:change=move |ev| record::set_session(state, &event_target_value(&ev))/>
            {move || state.log_stopped.get().map(|message| view! { <p class="warn" role="status" data-testid="log-stopped">{message}</p> })}
            <fieldset class="filters">
                <legend>"Show"</legend>
                <label class="inline">"Product "
                    <select data-testid="log-filter-product" on:change=set(|f, v| f.product = v)>
                        <option value="">"all"</option>
                        {move || products().into_iter().map(|(id, name)| view! { <option value=id>{name}</option> }).collect_view()}
                    </select>
                </label>
                <label class="inline">"Session "
                    <select data-testid="log-filter-session" on:change=set(|f, v| f.session = v)>
                        <option value="">"all"</option>
                        {move || sessions().into_iter().map(|s| { let value = s.clone(); view! { <option value=value>{s}</option> } }).collect_view()}
                    </select>
                </label>
                <label class="inline">"Verdict "
                    <select data-testid="log-filter-band" on:change=set(|f, v| f.band = v.and_then(|b| Band::parse(&b)))>
                        <option value="">"all"</option>
                        {[Band::Ok, Band::Check, Band::Damaged].map(|b| view! { <option value=b.as_str()>{b.label()}</option> }).collect_view()}
                    </select>
                </label>
                <label class="inline">"From " <input type="date" data-testid="log-filter-from" on:change=set(|f, v| f.from_day = v)/></label>
                <label class="inline">"to " <input type="date" data-testid="log-filter-to" on:change=set(|f, v| f.to_day = v)/></label>
            </fieldset>
            <p data-testid="log-total" data-entries=move || summary.with(|s| s.entries)>
                {move || format!("{} verdict(s) shown", summary.with(|s| s.entries))}
            </p>
            <table class="log-counts" data-testid="log-counts">
                <thead><tr><th scope="col">"Product"</th><th scope="col">"OK"</th><th scope="col">"CHECK"</th>
                    <th scope="col">"DAMAGED"</th><th scope="col">"Flagged"</th><th scope="col">"Calibration expects"</th></tr></thead>
                <tbody>
                    {move || summary.get().per_product.into_iter().map(|(name, c)| {
                        let expect = expected(&name);
                        view! { <CountsRow label=name.clone() counts=c expected=expect/> }
                    }).collect_view()}
                </tbody>
            </table>
            <p class="hint">"Flagged: CHECK and DAMAGED. Calibration expects the share of good items its bands flag; \
                far more than that means damage came in, or the product or the light changed."</p>
            <table class="log-counts" data-testid="log-days">
                <thead><tr><th scope="col">"Day"</th><th scope="col">"OK"</th><th scope="col">"CHECK"</th>
                    <th scope="col">"DAMAGED"</th><th scope="col">"Flagged"</th><th scope="col"></th></tr></thead>
                <tbody>
                    {move || summary.get().per_day.into_iter().map(|(day, c)| view! { <CountsRow label=day counts=c expected=None/> }).collect_view()}
                </tbody>
            </table>
            <p data-testid="log-kinds">{move || {
                let kinds = summary.get().kinds;
                if kinds.is_empty() {
                    "No damage confirmed among these.".to_string()
                } else {
                    format!("Damage confirmed: {}", kinds.iter().map(|(k, n)| format!("{k} {n}")).collect::<Vec<_>>().join(", "))
                }
            }}</p>
            <div class="actions">
                <button class="secondary" data-testid="log-export" on:click=move |_| export(Export::Csv)>"Export CSV"</button>
                <button class="secondary" data-testid="log-export-json" on:click=move |_| export(Export::Json)>"Export JSON"</button>
                <button class="secondary" data-testid="log-export-zip" on:click=move |_| export(Export::Zip)>"Thumbnails (zip)"</button>
            </div>
            <ul class="log-entries" aria-label="The newest verdicts">
                {move || filtered().into_iter().rev().take(LISTED).map(|e| view! { <EntryRow entry=e/> }).collect_view()}
            </ul>
        </section>
    }
}

#[component]
fn CountsRow(label: String, counts: Counts, expected: Option<f32>) -> impl IntoView {
    let row = label.clone();
    view! {
        <tr data-row=row data-ok=counts.ok data-check=counts.check data-damaged=counts.damaged>
            <th scope="row">{label}</th>
            <td>{counts.ok}</td><td>{counts.check}</td><td>{counts.damaged}</td>
            <td>{percent(counts.flagged_share())}</td>
            <td>{expected.map(|e| percent(f64::from(e))).unwrap_or_default()}</td>
        </tr>
    }
}

#[component]
fn EntryRow(entry: LogEntry) -> impl IntoView {
    let url = blob_of_type(&entry.thumbnail, "image/jpeg").ok().and_then(|b| web_sys::Url::create_object_url_with_blob(&b).ok());
    let revoke = url.clone();
    on_cleanup(move || {
        if let Some(url) = revoke {
            let _ = web_sys::Url::revoke_object_url(&url);
        }
    });
    let judged = match (entry.score, &entry.reason) {
        (Some(score), _) => format!("{} {score:.2}", entry.band.label()),
        (None, Some(reason)) => format!("{}: {reason}", entry.band.label()),
        (None, None) => entry.band.label().to_string(),
    };
    let decision = entry.decision.as_ref().map(|d| format!(" · {}", d.label())).unwrap_or_default();
    view! {
        <li class=format!("log-entry {}", entry.band.as_str()) data-testid="log-entry" data-verdict=entry.band.as_str()>
            {url.map(|src| view! { <img src=src alt="" width="64" height="64"/> })}
            <span>
                <strong>{entry.file.clone()}</strong>" · "{entry.product_name.clone()}" · "{judged}{decision}<br/>
                <span class="hint">{format!(
                    "{} · {} · {}{}",
                    iso_time(entry.time_ms),
                    entry.session,
                    entry.backend,
                    entry.model_version.map(|v| format!(" · model version {v}")).unwrap_or_default()
                )}</span>
            </span>
        </li>
    }
}
