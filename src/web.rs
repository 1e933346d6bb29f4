//! Browser helpers shared by the page and the worker.

use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStreamDefaultReader, Response, Window, WorkerGlobalScope};

/// GETs a same-origin file, from the page or from a worker.
pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    fetch_bytes_with_progress(url, |_, _| {}).await
}

/// [`fetch_bytes`], telling `progress` the bytes received so far and, when the server
/// says, the bytes in all, as the body arrives.
pub async fn fetch_bytes_with_progress(url: &str, mut progress: impl FnMut(u64, Option<u64>)) -> Result<Vec<u8>, String> {
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
    let interrupted = || format!("{url}: the download was interrupted");
    let Some(body) = response.body() else {
        let buffer = JsFuture::from(response.array_buffer().map_err(|e| format!("{url}: {e:?}"))?).await.map_err(|_| interrupted())?;
        return Ok(Uint8Array::new(&buffer).to_vec());
    };
    // A compressed response's length counts compressed bytes: then the total is unknown.
    let encoded = response.headers().get("content-encoding").ok().flatten().is_some_and(|e| e != "identity");
    let total = response.headers().get("content-length").ok().flatten().and_then(|v| v.parse::<u64>().ok()).filter(|_| !encoded);
    let reader: ReadableStreamDefaultReader = body.get_reader().unchecked_into();
    let mut bytes = Vec::with_capacity(total.unwrap_or(0).min(1 << 30) as usize);
    loop {
        let chunk = JsFuture::from(reader.read()).await.map_err(|_| interrupted())?;
        if js_sys::Reflect::get(&chunk, &"done".into()).ok().and_then(|d| d.as_bool()).unwrap_or(true) {
            break;
        }
        let value: Uint8Array = js_sys::Reflect::get(&chunk, &"value".into()).map_err(|_| interrupted())?.unchecked_into();
        let at = bytes.len();
        bytes.resize(at + value.length() as usize, 0);
        value.copy_to(&mut bytes[at..]);
        progress(bytes.len() as u64, total.filter(|t| *t >= bytes.len() as u64));
    }
    Ok(bytes)
}
