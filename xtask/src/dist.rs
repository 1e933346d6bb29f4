//! `cargo xtask finish-dist`: Trunk's post-build hook (Trunk.toml). It finishes the
//! staging directory that Trunk is about to publish as `dist/`:
//!
//! - the start script Trunk writes inline into `index.html` moves into a file of its own,
//!   so the page's content security policy can refuse every inline script;
//! - the PNG icons browsers need to install the app are drawn, the same bytes every time;
//! - the service worker (`www/sw.js`) is written with the list of every file of the build
//!   and a cache name made from their contents: a new build gets a new cache, an
//!   unchanged build keeps its cache.
//! - the page's bundle is checked to hold no engine: it is built without the `scoring`
//!   feature, and a dependency that slipped back would bring all of tract with it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::Result;

const SERVICE_WORKER_SOURCE: &str = "www/sw.js";
const SERVICE_WORKER: &str = "sw.js";

/// The icons `www/manifest.webmanifest` names: file, side in pixels, maskable.
/// A maskable icon fills its square, with the glyph inside the central 80% circle that
/// every launcher shape keeps.
pub const ICONS: &[(&str, u32, bool)] = &[("icon-192.png", 192, false), ("icon-512.png", 512, false), ("icon-maskable-512.png", 512, true)];

pub fn finish_dist() -> Result {
    let staging = std::env::var_os("TRUNK_STAGING_DIR")
        .map(PathBuf::from)
        .ok_or("finish-dist is Trunk's post-build hook: run `trunk build`, which calls it")?;
    let public_url = std::env::var("TRUNK_PUBLIC_URL").unwrap_or_else(|_| "/".into());

    let index = staging.join("index.html");
    let html = std::fs::read_to_string(&index).map_err(|e| format!("{}: {e}", index.display()))?;
    let (html, scripts) = externalise_inline_scripts(&html, &public_url)?;
    std::fs::write(&index, html).map_err(|e| format!("{}: {e}", index.display()))?;
    for (name, body) in scripts {
        write(&staging.join(name), body.as_bytes())?;
    }

    for &(name, side, maskable) in ICONS {
        write(&staging.join(name), &encode_png(side, &draw_icon(side, maskable))?)?;
    }

    check_page_bundle(&staging)?;
    write_service_worker(&staging)
}

/// Crates of the engine whose source paths (in panic messages) give them away.
const ENGINE_CRATES: &[&str] = &["tract-core-", "tract-onnx-", "tract-linalg-", "wgpu-core-"];

/// The page's wasm (`app-*_bg.wasm`) must not carry engine code.
fn check_page_bundle(staging: &Path) -> Result {
    let mut pages = 0;
    for name in files_under(staging)? {
        if !(name.starts_with("app-") && name.ends_with("_bg.wasm")) {
            continue;
        }
        pages += 1;
        let path = staging.join(&name);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if let Some(found) = engine_crate_in(&bytes) {
            return Err(format!(
                "{name}: the page's bundle links the engine ({found}...). Something the page uses needs the `scoring` \
                 feature; move what the page needs into a module that compiles without it"
            ));
        }
    }
    if pages == 0 {
        return Err("finish-dist: no page bundle (app-*_bg.wasm) in the build".to_string());
    }
    Ok(())
}

fn engine_crate_in(bytes: &[u8]) -> Option<&'static str> {
    ENGINE_CRATES.iter().copied().find(|name| bytes.windows(name.len()).any(|w| w == name.as_bytes()))
}

fn write(path: &Path, bytes: &[u8]) -> Result {
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Moves the body of every `<script>` without a `src` into `start-<hash>.js` and points
/// the tag at it. Returns the new page and the files to write.
fn externalise_inline_scripts(html: &str, public_url: &str) -> Result<(String, Vec<(String, String)>)> {
    let mut out = String::with_capacity(html.len());
    let mut files = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<script") {
        out.push_str(&rest[..start]);
        let tag = &rest[start..];
        let open_end = tag.find('>').ok_or("index.html: a <script> tag is not closed")? + 1;
        let close = tag.find("</script>").ok_or("index.html: a <script> has no </script>")?;
        let attributes = &tag["<script".len()..open_end - 1];
        let body = &tag[open_end..close];
        if attributes.contains("src=") || body.trim().is_empty() {
            out.push_str(&tag[..close + "</script>".len()]);
        } else {
            let name = format!("start-{}.js", &sha256_hex(body.as_bytes())[..16]);
            let _ = write!(out, "<script{attributes} src=\"{public_url}{name}\"></script>");
            files.push((name, body.trim().to_string() + "\n"));
        }
        rest = &tag[close + "</script>".len()..];
    }
    out.push_str(rest);
    Ok((out, files))
}

/// Every file under `dir`, as paths relative to it with `/` separators, sorted.
fn files_under(dir: &Path) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        let entries = std::fs::read_dir(&current).map_err(|e| format!("{}: {e}", current.display()))?;
        for entry in entries {
            let path = entry.map_err(|e| format!("{}: {e}", current.display()))?.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(relative) = path.strip_prefix(dir) {
                let parts: Vec<String> = relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
                found.push(parts.join("/"));
            }
        }
    }
    found.sort();
    Ok(found)
}

/// A relative path as a URL path: unreserved characters kept, the rest percent-encoded.
fn url_path(path: &str) -> String {
    path.bytes().fold(String::new(), |mut s, b| {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            s.push(b as char);
        } else {
            let _ = write!(s, "%{b:02X}");
        }
        s
    })
}

fn write_service_worker(staging: &Path) -> Result {
    let files: Vec<String> = files_under(staging)?.into_iter().filter(|f| f != SERVICE_WORKER).collect();
    let mut listing = String::new();
    for file in &files {
        let bytes = std::fs::read(staging.join(file)).map_err(|e| format!("{file}: {e}"))?;
        let _ = writeln!(listing, "{} {file}", sha256_hex(&bytes));
    }
    let version = &sha256_hex(listing.as_bytes())[..16];
    let urls: Vec<String> = files.iter().map(|f| format!("./{}", url_path(f))).collect();
    let template = std::fs::read_to_string(SERVICE_WORKER_SOURCE).map_err(|e| format!("{SERVICE_WORKER_SOURCE}: {e}"))?;
    let precache = serde_json::to_string_pretty(&urls).map_err(|e| e.to_string())?;
    let script = format!(
        "// Written by `cargo xtask finish-dist` from {SERVICE_WORKER_SOURCE}: this build's {} files, named by their contents.\n\
         const CACHE = 'damagelens-{version}';\nconst PRECACHE = {precache};\n\n{template}",
        files.len()
    );
    write(&staging.join(SERVICE_WORKER), script.as_bytes())?;
    eprintln!("finish-dist: service worker cache damagelens-{version} lists {} files", files.len());
    Ok(())
}

/// The app icon (`www/icon.svg`: a magnifier over a crack on a blue tile), drawn with
/// signed distances so edges are smooth at any size. RGBA, row-major.
fn draw_icon(side: u32, maskable: bool) -> Vec<u8> {
    const BLUE: [f32; 3] = [0x1f as f32, 0x6f as f32, 0xeb as f32];
    const WHITE: [f32; 3] = [255.0, 255.0, 255.0];
    const ORANGE: [f32; 3] = [0xff as f32, 0x8a as f32, 0x3d as f32];
    // The SVG's 64-unit design; the maskable icon shrinks it into the safe circle and
    // fills the whole square with the tile colour.
    let unit = side as f32 / 64.0;
    let (glyph_scale, corner) = if maskable { (0.72, 0.0) } else { (1.0, 14.0) };
    let segment = |p: (f32, f32), a: (f32, f32), b: (f32, f32)| {
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let t = (((p.0 - a.0) * dx + (p.1 - a.1) * dy) / (dx * dx + dy * dy)).clamp(0.0, 1.0);
        ((p.0 - a.0 - t * dx).powi(2) + (p.1 - a.1 - t * dy).powi(2)).sqrt()
    };
    let mut rgba = Vec::with_capacity((side * side * 4) as usize);
    for y in 0..side {
        for x in 0..side {
            // Pixel centre in design units.
            let p = ((x as f32 + 0.5) / unit, (y as f32 + 0.5) / unit);
            // Coverage from a distance in design units: one pixel of anti-aliasing.
            let cover = |distance: f32| (0.5 - distance * unit).clamp(0.0, 1.0);
            let tile = {
                let q = ((p.0 - 32.0).abs() - (32.0 - corner), (p.1 - 32.0).abs() - (32.0 - corner));
                let outside = (q.0.max(0.0).powi(2) + q.1.max(0.0).powi(2)).sqrt();
                outside + q.0.max(q.1).min(0.0) - corner
            };
            let g = ((p.0 - 32.0) / glyph_scale + 32.0, (p.1 - 32.0) / glyph_scale + 32.0);
            let ring = ((((g.0 - 28.0).powi(2) + (g.1 - 28.0).powi(2)).sqrt() - 15.0).abs() - 3.0) * glyph_scale;
            let handle = (segment(g, (39.0, 39.0), (52.0, 52.0)) - 3.5) * glyph_scale;
            let crack = (segment(g, (20.0, 24.0), (26.0, 29.0)).min(segment(g, (26.0, 29.0), (23.0, 35.0))) - 1.75) * glyph_scale;
            let mut colour = BLUE;
            for (shape, paint) in [(ring.min(handle), WHITE), (crack, ORANGE)] {
                let a = cover(shape);
                for c in 0..3 {
                    colour[c] = colour[c] * (1.0 - a) + paint[c] * a;
                }
            }
            let alpha = cover(tile);
            rgba.extend(colour.iter().map(|c| c.round() as u8));
            rgba.push((alpha * 255.0).round() as u8);
        }
    }
    rgba
}

fn encode_png(side: u32, rgba: &[u8]) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut bytes, side, side);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().map_err(|e| format!("icon {side}px: {e}"))?;
    writer.write_image_data(rgba).map_err(|e| format!("icon {side}px: {e}"))?;
    writer.finish().map_err(|e| format!("icon {side}px: {e}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_scripts_move_to_files_and_others_stay() {
        let html = "<head><script type=\"module\">\nimport init from '/app-1.js';\nawait init();\n</script>\
                    <script src=\"/x.js\"></script></head>";
        let (page, files) = externalise_inline_scripts(html, "/").unwrap();
        assert_eq!(files.len(), 1);
        let (name, body) = &files[0];
        assert!(name.starts_with("start-") && name.ends_with(".js"));
        assert_eq!(body, "import init from '/app-1.js';\nawait init();\n");
        assert_eq!(page, format!("<head><script type=\"module\" src=\"/{name}\"></script><script src=\"/x.js\"></script></head>"));
    }

    #[test]
    fn engine_code_is_found_by_its_crate_paths() {
        assert_eq!(engine_crate_in(b"\0.cargo/registry/src/tract-core-0.23.9/src/ops.rs\0"), Some("tract-core-"));
        assert_eq!(engine_crate_in(b"leptos-0.8.23/src/lib.rs"), None);
    }

    #[test]
    fn icons_are_opaque_inside_and_clear_at_the_rounded_corner() {
        let side = 192;
        let rgba = draw_icon(side, false);
        let pixel = |x: u32, y: u32| &rgba[((y * side + x) * 4) as usize..][..4];
        assert_eq!(pixel(0, 0)[3], 0, "the rounded corner is transparent");
        assert_eq!(pixel(side / 2, 4), &[0x1f, 0x6f, 0xeb, 255], "the tile is the accent blue");
        let maskable = draw_icon(side, true);
        assert_eq!(maskable[3], 255, "a maskable icon fills its square");
    }

    #[test]
    fn urls_escape_what_a_path_cannot_hold() {
        assert_eq!(url_path("demo/train/cell 1#.png"), "demo/train/cell%201%23.png");
    }
}
