//! Canvas helpers shared by the panels that draw photos with their heatmaps.

use wasm_bindgen::{Clamped, JsCast};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CanvasRenderingContext2d, HtmlCanvasElement, ImageBitmap, ImageData};

use crate::protocol::InspectionReply;

/// A canvas of `size` x `size` holding `rgba`, to be drawn stretched over a photo.
pub fn offscreen(size: u32, rgba: &[u8]) -> Result<HtmlCanvasElement, String> {
    let document = web_sys::window().and_then(|w| w.document()).ok_or("no document")?;
    let layer: HtmlCanvasElement = document.create_element("canvas").map_err(|e| format!("{e:?}"))?.unchecked_into();
    layer.set_width(size);
    layer.set_height(size);
    let pixels = ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), size, size).map_err(|e| format!("{e:?}"))?;
    context(&layer)?.put_image_data(&pixels, 0.0, 0.0).map_err(|e| format!("{e:?}"))?;
    Ok(layer)
}

pub fn context(canvas: &HtmlCanvasElement) -> Result<CanvasRenderingContext2d, String> {
    canvas.get_context("2d").map_err(|e| format!("{e:?}"))?.ok_or("no 2D canvas")?.dyn_into().map_err(|_| "no 2D canvas".to_string())
}

/// Draws the photo, at most `max_side` pixels on its longer side, the heatmap stretched
/// over it, and the region's outline.
pub async fn draw_with_heatmap(
    canvas: &HtmlCanvasElement,
    file: &web_sys::Blob,
    reply: &InspectionReply,
    max_side: f64,
    opacity: f64,
    outline: bool,
) -> Result<(), String> {
    let window = web_sys::window().ok_or("no window")?;
    let promise = window.create_image_bitmap_with_blob(file).map_err(|e| format!("{e:?}"))?;
    let bitmap: ImageBitmap =
        JsFuture::from(promise).await.map_err(|_| "this browser cannot display the photo".to_string())?.unchecked_into();
    let (w, h) = (bitmap.width() as f64, bitmap.height() as f64);
    let scale = (max_side / w.max(h)).min(1.0);
    let (cw, ch) = ((w * scale).round().max(1.0), (h * scale).round().max(1.0));
    canvas.set_width(cw as u32);
    canvas.set_height(ch as u32);
    let ctx = context(canvas)?;
    ctx.draw_image_with_image_bitmap_and_dw_and_dh(&bitmap, 0.0, 0.0, cw, ch).map_err(|e| format!("{e:?}"))?;

    let size = reply.map_size;
    let layer = offscreen(size, &reply.heatmap)?;
    ctx.set_global_alpha(opacity);
    ctx.draw_image_with_html_canvas_element_and_dw_and_dh(&layer, 0.0, 0.0, cw, ch).map_err(|e| format!("{e:?}"))?;
    ctx.set_global_alpha(1.0);
    if outline && reply.outline.len() == (size * size) as usize {
        let rgba: Vec<u8> = reply.outline.iter().flat_map(|&v| if v == 1 { [255, 255, 255, 255] } else { [0, 0, 0, 0] }).collect();
        let line = offscreen(size, &rgba)?;
        // Nearest-neighbour, so the line stays crisp when stretched.
        ctx.set_image_smoothing_enabled(false);
        ctx.draw_image_with_html_canvas_element_and_dw_and_dh(&line, 0.0, 0.0, cw, ch).map_err(|e| format!("{e:?}"))?;
        ctx.set_image_smoothing_enabled(true);
    }
    Ok(())
}
