//! What the station keeps: every verdict goes to the inspection log in IndexedDB, with
//! a small thumbnail of the photo and its heatmap, the session it belongs to and what
//! the person then decided; and the log's exports. The rules (filters, counts, the CSV)
//! are plain types in [`crate::client::log`].

use std::io::Write;

use leptos::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::HtmlCanvasElement;

use super::canvas::draw_with_heatmap;
use super::files::download;
use super::state::{local_storage, now_ms, AppState, InspectionItem};
use crate::client::log::{thumbnail_name, to_csv, to_json, Decision, LogEntry};

const SESSION_KEY: &str = "damagelens.session";
/// Longer side of a log thumbnail, in pixels: enough to see the damage, small enough
/// that thousands of entries fit (about 5 kB each as JPEG).
const THUMBNAIL_SIDE: f64 = 160.0;

/// Today's date on this device, YYYY-MM-DD.
fn local_day(ms: f64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms));
    format!("{:04}-{:02}-{:02}", d.get_full_year(), d.get_month() + 1, d.get_date())
}

/// Reads the log and the session name saved before (a new one is named after today).
pub async fn open(state: AppState) {
    let session = local_storage().and_then(|s| s.get_item(SESSION_KEY).ok().flatten()).unwrap_or_default();
    state.session.set(if session.trim().is_empty() { format!("Session of {}", local_day(now_ms())) } else { session });
    let Some(library) = state.library() else { return };
    match library.log_entries().await {
        Ok(entries) => state.log.set(entries),
        Err(message) => state.report(message),
    }
}

/// Names the session the next verdicts belong to.
pub fn set_session(state: AppState, name: &str) {
    let name = name.trim();
    if name.is_empty() {
        return;
    }
    state.session.set(name.to_string());
    if let Some(s) = local_storage() {
        let _ = s.set_item(SESSION_KEY, name);
    }
}

/// A small JPEG of the photo with its heatmap over it.
async fn thumbnail(item: &InspectionItem) -> Result<Vec<u8>, String> {
    let reply = item.reply.as_ref().ok_or("not judged yet")?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let canvas: HtmlCanvasElement = document.create_element("canvas").map_err(|e| format!("{e:?}"))?.unchecked_into();
    draw_with_heatmap(&canvas, &item.photo, reply, THUMBNAIL_SIDE, 0.6, false).await?;
    let url = canvas.to_data_url_with_type("image/jpeg").map_err(|e| format!("{e:?}"))?;
    let base64 = url.split_once(',').map(|(_, b)| b).ok_or("the browser made no JPEG")?;
    let binary = web_sys::window().ok_or("no window")?.atob(base64).map_err(|e| format!("{e:?}"))?;
    Ok(binary.chars().map(|c| c as u8).collect())
}

/// Appends the verdict shown under `tag` to the log (once), with `decision` when the
/// person already made one. A full quota stops logging with a message; the product
/// library, in its own stores and transactions, is never touched by it.
pub async fn append(state: AppState, tag: u32, decision: Option<Decision>) {
    let Some(item) = state.inspections.with_untracked(|items| items.iter().find(|i| i.tag == tag).cloned()) else { return };
    let (Some(reply), None, None, Some(library)) = (&item.reply, item.logged, state.log_stopped.get_untracked(), state.library()) else {
        return;
    };
    let current = state.current.get_untracked();
    let product_id = match &reply.identified {
        Some(m) => m.product.clone().unwrap_or_default(),
        None => current.as_ref().map(|p| p.id.clone()).unwrap_or_default(),
    };
    let product = state.products.with_untracked(|ps| ps.iter().find(|p| p.id == product_id).cloned());
    let now = now_ms();
    let mut entry = LogEntry {
        key: None,
        time_ms: now,
        day: local_day(now),
        session: state.session.get_untracked(),
        product: product_id,
        product_name: product.as_ref().map_or_else(|| "unknown product".to_string(), |p| p.name.clone()),
        profile_version: product.as_ref().and_then(|p| p.trained_ms).unwrap_or(0.0),
        model_version: product.as_ref().and_then(|p| p.version),
        backend: reply.backend.label().to_string(),
        file: item.file.clone(),
        item: item.item.clone(),
        score: reply.capture.is_none().then_some(reply.normalised_score),
        band: reply.band,
        reason: reply.capture.clone(),
        thumbnail: thumbnail(&item).await.unwrap_or_default(),
        decision,
    };
    // Another call may have logged it while the thumbnail was drawn.
    if state.inspections.with_untracked(|items| items.iter().any(|i| i.tag == tag && i.logged.is_some())) {
        return;
    }
    match library.log(&entry).await {
        Ok(key) => {
            entry.key = Some(key);
            state.inspections.update(|items| {
                if let Some(i) = items.iter_mut().find(|i| i.tag == tag) {
                    i.logged = Some(key);
                }
            });
            state.log.update(|log| log.push(entry));
        }
        Err(message) => {
            let message = format!("Logging stopped: {message} New verdicts are shown but not logged until the page is reloaded.");
            state.log_stopped.set(Some(message.clone()));
            state.report(message);
        }
    }
}

/// Records what the person decided about the verdict shown under `tag`.
pub fn decide(state: AppState, tag: u32, decision: Decision) {
    leptos::task::spawn_local(async move {
        let logged = state.inspections.with_untracked(|items| items.iter().find(|i| i.tag == tag).and_then(|i| i.logged));
        let Some(key) = logged else {
            return append(state, tag, Some(decision)).await;
        };
        let Some(mut entry) = state.log.with_untracked(|log| log.iter().find(|e| e.key == Some(key)).cloned()) else { return };
        entry.decision = Some(decision);
        let Some(library) = state.library() else { return };
        match library.put_log(&entry).await {
            Ok(()) => state.log.update(|log| {
                if let Some(e) = log.iter_mut().find(|e| e.key == Some(key)) {
                    *e = entry;
                }
            }),
            Err(message) => state.report(message),
        }
    });
}

/// The decision recorded for the verdict shown under `tag`, if any.
pub fn decision_of(state: AppState, tag: u32) -> Option<Decision> {
    let key = state.inspections.with(|items| items.iter().find(|i| i.tag == tag).and_then(|i| i.logged))?;
    state.log.with(|log| log.iter().find(|e| e.key == Some(key)).and_then(|e| e.decision.clone()))
}

/// Which export the person asked for.
#[derive(Clone, Copy)]
pub enum Export {
    Csv,
    Json,
    /// The thumbnails, with the CSV beside them.
    Zip,
}

/// Downloads `entries` (the filtered log) as a file.
pub fn export(entries: &[LogEntry], how: Export) -> Result<(), String> {
    let stamp = local_day(now_ms());
    match how {
        Export::Csv => download(&format!("damagelens-log-{stamp}.csv"), to_csv(entries).as_bytes()),
        Export::Json => download(&format!("damagelens-log-{stamp}.json"), to_json(entries).as_bytes()),
        Export::Zip => download(&format!("damagelens-log-{stamp}.zip"), &zip_of(entries).map_err(|e| format!("Making the zip: {e}"))?),
    }
}

fn zip_of(entries: &[LogEntry]) -> zip::result::ZipResult<Vec<u8>> {
    // JPEGs do not shrink further: stored, not deflated (and no compressor in the page).
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("log.csv", options)?;
    zip.write_all(to_csv(entries).as_bytes())?;
    for e in entries.iter().filter(|e| !e.thumbnail.is_empty()) {
        zip.start_file(format!("thumbnails/{}", thumbnail_name(e)), options)?;
        zip.write_all(&e.thumbnail)?;
    }
    Ok(zip.finish()?.into_inner())
}
