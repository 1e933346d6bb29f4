//! Browser helpers shared by the page and the worker.

use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Response, Window, WorkerGlobalScope};

/// GETs a same-origin file, from the page or from a worker.
pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    let global = js_sys::global();
    let promise = if let Some(window) = global.dyn_ref::<Window>() {
        window.fetch_with_str(url)
    } else {
        global.unchecked_ref::<WorkerGlobalScope>().fetch_with_str(url)
    };
    let response: Response =
        JsFuture::from(promise).await.map_err(|_| format!("{url}: cannot be loaded (offline, or the file is missing)"))?.unchecked_into();
    if !response.ok() {
        return Err(format!("{url}: the server answered {}", response.status()));
    }
    let buffer = JsFuture::from(response.array_buffer().map_err(|e| format!("{url}: {e:?}"))?)
        .await
        .map_err(|_| format!("{url}: the download was interrupted"))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}
