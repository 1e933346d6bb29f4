//! Files a person picks or drops, read with their size checked first, and bytes made
//! into Blobs for drawing and downloads.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::state::AppState;
use crate::engine::image_ops::MAX_FILE_BYTES;
use crate::protocol::UploadedFile;

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

/// Hands `bytes` to the browser as a download named `name`.
pub fn download(name: &str, bytes: &[u8]) -> Result<(), String> {
    let blob = blob_of(bytes)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| format!("{e:?}"))?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let link: web_sys::HtmlAnchorElement = document.create_element("a").map_err(|e| format!("{e:?}"))?.unchecked_into();
    link.set_href(&url);
    link.set_download(name);
    link.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}
