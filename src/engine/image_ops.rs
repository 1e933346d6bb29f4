//! Decoding untrusted image bytes and turning them into the backbone's input tensor.
//!
//! The image crate decodes in the browser too (not createImageBitmap), so a photo
//! scores the same on every device and in the CLI.
//!
//! Only PNG and JPEG are decoded. Every other file is refused with a message that says
//! what it is and what to do; the common ones (GIF, SVG, HEIC/AVIF from phones) are
//! recognised from their first bytes, so no extra codec is compiled into the web app.

use std::io::Cursor;

use image::{imageops::FilterType, DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use super::EngineError;

/// Larger files are refused before decoding: no phone photo comes close.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
/// Each side at most this many pixels; checked from the header, before any pixel is allocated.
pub const MAX_SIDE: u32 = 12_000;
/// At most this many pixels (100 megapixels, 300 MB as RGB), also checked from the header:
/// two sides under `MAX_SIDE` can still ask for a buffer the browser cannot give.
pub const MAX_PIXELS: u64 = 100_000_000;
/// Decoder allocation ceiling (a 16-bit image within `MAX_PIXELS` can still exceed it).
const MAX_ALLOC: u64 = 512 * 1024 * 1024;

const FIX_FORMAT: &str = "Use a PNG or JPEG photo";
const FIX_EXPORT: &str = "Export the photo again as PNG or JPEG";
const FIX_SMALLER: &str = "Use a smaller photo (a few megapixels is plenty)";

fn image_error(file: &str, reason: impl Into<String>, fix: &'static str) -> EngineError {
    EngineError::Image { file: file.to_string(), reason: reason.into(), fix }
}

/// The refusal of a file over `MAX_FILE_BYTES`. Public so the CLI gives the same message
/// when it refuses a file from its size on disk, without reading it.
pub fn file_too_large(file: &str, len: u64) -> EngineError {
    image_error(file, format!("the file is {} MB, more than the {} MB limit", len >> 20, MAX_FILE_BYTES >> 20), FIX_SMALLER)
}

/// Decodes a PNG or JPEG into RGB8, refusing empty, oversized, unknown or corrupt files.
///
/// 16-bit images are scaled to 8 bits; CMYK JPEGs are converted to RGB; the EXIF
/// orientation is applied, so a phone photo taken upright is upright here; transparent
/// pixels are composited on white (see `flatten_on_white`).
pub fn decode_rgb(file: &str, bytes: &[u8]) -> Result<RgbImage, EngineError> {
    let format = check_format(file, bytes)?;
    let damaged = |detail: String| image_error(file, format!("the image is damaged or incomplete ({detail})"), FIX_EXPORT);
    if format == ImageFormat::Jpeg && jpeg_is_cut_off(bytes) {
        return Err(damaged("the JPEG data ends before its end marker".into()));
    }
    let too_large = |dims: Option<(u32, u32)>| {
        let size = dims.map(|(w, h)| format!(" {w}x{h} pixels,")).unwrap_or_default();
        image_error(
            file,
            format!("the image is{size} too large (at most {MAX_SIDE} pixels on a side and {} megapixels)", MAX_PIXELS / 1_000_000),
            FIX_SMALLER,
        )
    };
    let decode_error = |e: image::ImageError, dims: Option<(u32, u32)>| match e {
        image::ImageError::Limits(_) => too_large(dims),
        image::ImageError::Unsupported(e) => {
            image_error(file, format!("this image uses a feature DamageLens cannot read ({e})"), FIX_EXPORT)
        }
        other => damaged(other.to_string()),
    };

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits.clone());
    // Only the header is read here; the size is checked before any pixel buffer exists,
    // so a 30000x30000 header in a tiny file costs nothing.
    let mut decoder = reader.into_decoder().map_err(|e| decode_error(e, None))?;
    let (w, h) = decoder.dimensions();
    if w > MAX_SIDE || h > MAX_SIDE || u64::from(w) * u64::from(h) > MAX_PIXELS {
        return Err(too_large(Some((w, h))));
    }
    // The same reservation `ImageReader::decode` makes (16-bit and alpha images need more).
    limits.reserve(decoder.total_bytes()).map_err(|e| decode_error(e, Some((w, h))))?;
    // Unreadable EXIF is not a reason to refuse a photo whose pixels decode: keep it as stored.
    let orientation = decoder.orientation().unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| decode_error(e, Some((w, h))))?;
    image.apply_orientation(orientation);
    Ok(flatten_on_white(image))
}

/// The cheap part of the checks, from the size and the first bytes only: the app runs it
/// before it saves a photo, so what it keeps is at least a PNG or JPEG.
pub fn check_format(file: &str, bytes: &[u8]) -> Result<ImageFormat, EngineError> {
    if bytes.is_empty() {
        return Err(image_error(file, "the file is empty", FIX_FORMAT));
    }
    if bytes.len() > MAX_FILE_BYTES {
        return Err(file_too_large(file, bytes.len() as u64));
    }
    sniff(bytes).map_err(|(reason, fix)| image_error(file, reason, fix))
}

/// RGB8 of any decoded image. Transparent pixels are composited on white, as a viewer
/// shows them on a page: the colour stored under a fully transparent pixel is arbitrary
/// (editors leave black, white or leftovers), and ignoring alpha would let it look like damage.
fn flatten_on_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let a = u32::from(a);
        let over = |c: u8| ((u32::from(c) * a + 255 * (255 - a) + 127) / 255) as u8;
        image::Rgb([over(r), over(g), over(b)])
    })
}

/// The format from the first bytes (never the file name): PNG or JPEG, or why not and what to do.
fn sniff(bytes: &[u8]) -> Result<ImageFormat, (String, &'static str)> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(ImageFormat::Png);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(ImageFormat::Jpeg);
    }
    if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        return Err(("GIF images are not supported".into(), "Export one frame of it as PNG or JPEG"));
    }
    if let Some(brand) = iso_media_brand(bytes) {
        return Err(brand);
    }
    if looks_like_svg(bytes) {
        return Err(("vector images (SVG) are not supported".into(), "Export it as PNG"));
    }
    match image::guess_format(bytes) {
        // Formats the image crate knows but DamageLens does not decode (WebP, BMP, TIFF, ...).
        Ok(format) => {
            let name = format.extensions_str().first().map_or_else(|| format!("{format:?}"), |e| e.to_uppercase());
            Err((format!("{name} images are not supported"), FIX_FORMAT))
        }
        Err(_) => Err(("this is not a PNG or JPEG image".into(), FIX_FORMAT)),
    }
}

/// HEIC/HEIF and AVIF photos are ISO-BMFF files starting with an `ftyp` box: size,
/// "ftyp", a major brand, a minor version, then compatible brands. iPhones save HEIC by
/// default, so this gets its own message.
fn iso_media_brand(bytes: &[u8]) -> Option<(String, &'static str)> {
    if bytes.get(4..8) != Some(b"ftyp") {
        return None;
    }
    let size = u32::from_be_bytes(bytes[0..4].try_into().ok()?) as usize;
    let end = size.clamp(12, 256).min(bytes.len());
    // The major brand and the compatible brands; the minor version (bytes 12..16) is skipped.
    let brands: Vec<&[u8]> = bytes[8..end].chunks_exact(4).enumerate().filter(|(i, _)| *i != 1).map(|(_, b)| b).collect();
    let any = |names: &[&[u8; 4]]| brands.iter().any(|b| names.iter().any(|n| b == n));
    if any(&[b"avif", b"avis"]) {
        Some(("AVIF images are not supported".into(), "Export the image as PNG or JPEG"))
    } else if any(&[b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"]) {
        Some((
            "HEIC photos are not supported".into(),
            "Set the camera to 'Most compatible' (iPhone: Settings > Camera > Formats) or export the photo as JPEG",
        ))
    } else {
        Some(("this is a video or other media file, not a PNG or JPEG image".into(), FIX_FORMAT))
    }
}

/// SVG is text: after an optional UTF-8 byte order mark and white space, markup
/// (`<svg`, or `<?xml` / `<!DOCTYPE` / comments first) with an `<svg` element near the start.
fn looks_like_svg(bytes: &[u8]) -> bool {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = text.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(text.len());
    let head = &text[start..text.len().min(start + 4096)];
    head.starts_with(b"<") && head.windows(4).any(|w| w.eq_ignore_ascii_case(b"<svg"))
}

/// Whether a JPEG stops before its end-of-image marker (FF D9). The JPEG decoder is
/// lenient and fills a cut-off photo with grey, which would then be scored as if it were
/// the photo. The header segments are skipped by their lengths (an EXIF thumbnail there
/// has its own end marker); after the first start-of-scan, FF D9 can only be the end,
/// because entropy-coded data escapes every FF. Trailing bytes after the end are fine.
/// When the headers cannot be followed, the decoder judges instead.
fn jpeg_is_cut_off(bytes: &[u8]) -> bool {
    let mut i = 2; // after the start-of-image marker
    loop {
        let Some(&[0xFF, marker]) = bytes.get(i..i + 2) else {
            return i + 2 > bytes.len(); // ran out of bytes inside the headers
        };
        if marker == 0xFF {
            i += 1; // fill byte before a marker
            continue;
        }
        let Some(&[hi, lo]) = bytes.get(i + 2..i + 4) else { return true };
        let next = i + 2 + usize::from(u16::from_be_bytes([hi, lo]));
        if marker == 0xDA {
            return !bytes.get(next..).is_some_and(|scan| scan.windows(2).any(|w| w == [0xFF, 0xD9]));
        }
        i = next;
    }
}

/// What an evened photo's pixels average and spread to, on the 0..1 scale: about those
/// of ImageNet photos (mean 0.449, std 0.226 over the channels), so the backbone sees
/// the contrast it was trained on.
const EVEN_MEAN: f32 = 0.449;
const EVEN_STD: f32 = 0.226;

/// How pixels become the backbone input: the whole photo is resized to `size` x `size`
/// (no crop, so damage at the edges is still seen), scaled to [0,1], then `(x - mean) / std`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Preprocess {
    pub size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Preprocess {
    /// A photo file as the backbone's input: decoded (refused by name if it is not a
    /// usable photo), then [`Self::tensor`]; also the photo's size.
    pub fn photo(&self, file: &str, bytes: &[u8], even_brightness: bool) -> Result<(Vec<f32>, (u32, u32)), EngineError> {
        let rgb = decode_rgb(file, bytes)?;
        Ok((self.tensor(&rgb, even_brightness), rgb.dimensions()))
    }

    /// A photo file decoded and resized to the backbone's input, as [`Self::tensor`]
    /// resizes it (so `tensor(&resized(..))` is the same as [`Self::photo`]'s tensor).
    pub fn resized(&self, file: &str, bytes: &[u8]) -> Result<RgbImage, EngineError> {
        let rgb = decode_rgb(file, bytes)?;
        Ok(self.resize(&rgb))
    }

    fn resize(&self, image: &RgbImage) -> RgbImage {
        let s = self.size;
        if image.dimensions() == (s, s) {
            image.clone()
        } else {
            image::imageops::resize(image, s, s, FilterType::Triangle)
        }
    }

    /// Returns the 1x3xSxS tensor in CHW order. With `even_brightness`, the photo's
    /// pixels are first shifted and stretched to a fixed mean and spread, so a photo
    /// taken under brighter or dimmer light looks like the others: differences in
    /// exposure then stop counting as damage (but so does an item that is darker all
    /// over).
    pub fn tensor(&self, image: &RgbImage, even_brightness: bool) -> Vec<f32> {
        let s = self.size;
        let resized = self.resize(image);
        let plane = (s * s) as usize;
        let (shift, stretch) = if even_brightness {
            let n = resized.as_raw().len().max(1) as f64;
            let mean = resized.as_raw().iter().map(|v| f64::from(*v) / 255.0).sum::<f64>() / n;
            let var = resized.as_raw().iter().map(|v| (f64::from(*v) / 255.0 - mean).powi(2)).sum::<f64>() / n;
            // A flat photo has no spread to stretch; it is only shifted.
            let stretch = if var > 1e-8 { f64::from(EVEN_STD) / var.sqrt() } else { 1.0 };
            (mean as f32, stretch as f32)
        } else {
            (0.0, 1.0)
        };
        let target = if even_brightness { EVEN_MEAN } else { 0.0 };
        let mut out = vec![0f32; 3 * plane];
        for (i, px) in resized.pixels().enumerate() {
            for c in 0..3 {
                let v = (px[c] as f32 / 255.0 - shift) * stretch + target;
                out[c * plane + i] = (v - self.mean[c]) / self.std[c];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageBuffer, Luma, LumaA, Rgb};

    fn encode<P: image::PixelWithColorType>(img: &ImageBuffer<P, Vec<P::Subpixel>>, format: ImageFormat) -> Vec<u8>
    where
        [P::Subpixel]: image::EncodableLayout,
    {
        let mut buf = Vec::new();
        img.write_to(&mut Cursor::new(&mut buf), format).unwrap();
        buf
    }

    fn png_bytes(w: u32, h: u32) -> Vec<u8> {
        encode(&RgbImage::from_fn(w, h, |x, y| Rgb([x as u8, y as u8, 7])), ImageFormat::Png)
    }

    /// A photo-like JPEG (smooth gradients, so the entropy-coded data is long).
    fn jpeg_bytes(w: u32, h: u32) -> Vec<u8> {
        encode(&RgbImage::from_fn(w, h, |x, y| Rgb([(x * 3) as u8, (y * 5) as u8, ((x ^ y) * 7) as u8])), ImageFormat::Jpeg)
    }

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/images/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    fn refusal(file: &str, bytes: &[u8]) -> String {
        let message = match decode_rgb(file, bytes) {
            Ok(img) => panic!("{file} ({} bytes) decoded to a {:?} image", bytes.len(), img.dimensions()),
            Err(e) => e.to_string(),
        };
        assert!(message.starts_with(&format!("{file}: ")), "the message names the file: {message}");
        message
    }

    fn close(a: [u8; 3], b: [u8; 3], tolerance: i32) -> bool {
        a.iter().zip(b).all(|(x, y)| (*x as i32 - y as i32).abs() <= tolerance)
    }

    /// A 1x1 PNG whose IHDR claims `w` x `h`, with a correct CRC.
    fn png_claiming(w: u32, h: u32) -> Vec<u8> {
        let mut bytes = png_bytes(1, 1);
        assert_eq!(&bytes[12..16], b"IHDR");
        bytes[16..20].copy_from_slice(&w.to_be_bytes());
        bytes[20..24].copy_from_slice(&h.to_be_bytes());
        let crc = crc32fast::hash(&bytes[12..29]); // the chunk's checksum, so the crafted header is valid
        bytes[29..33].copy_from_slice(&crc.to_be_bytes());
        bytes
    }

    #[test]
    fn decodes_a_png() {
        let img = decode_rgb("a.png", &png_bytes(5, 3)).unwrap();
        assert_eq!(img.dimensions(), (5, 3));
        assert_eq!(img.get_pixel(4, 2).0, [4, 2, 7]);
    }

    #[test]
    fn decodes_a_jpeg_and_ignores_bytes_after_its_end() {
        let mut bytes = jpeg_bytes(40, 30);
        assert_eq!(decode_rgb("a.jpg", &bytes).unwrap().dimensions(), (40, 30));
        bytes.extend_from_slice(b"trailing data some cameras append");
        assert_eq!(decode_rgb("a.jpg", &bytes).unwrap().dimensions(), (40, 30));
    }

    #[test]
    fn an_empty_file_is_empty() {
        let message = refusal("empty.png", &[]);
        assert!(message.contains("the file is empty"), "{message}");
    }

    #[test]
    fn a_file_over_the_size_limit_is_refused_with_the_limit() {
        let message = refusal("big.jpg", &vec![0u8; MAX_FILE_BYTES + 1]);
        assert!(message.contains("64 MB limit"), "{message}");
    }

    #[test]
    fn truncated_png_and_jpeg_are_damaged_or_incomplete() {
        let png = png_bytes(64, 64);
        let jpeg = jpeg_bytes(64, 64);
        for (file, bytes) in [("cut.png", &png), ("cut.jpg", &jpeg)] {
            // Cut inside the pixel data, near its end, and inside the header.
            for keep in [bytes.len() / 2, bytes.len() * 9 / 10, 30] {
                let message = refusal(file, &bytes[..keep]);
                assert!(message.contains("damaged or incomplete"), "{keep} bytes: {message}");
            }
        }
    }

    #[test]
    fn a_jpeg_without_its_end_marker_is_incomplete() {
        // The lenient JPEG decoder would fill what is missing with grey; we cannot tell
        // from the data whether anything is, so the missing end marker decides.
        let jpeg = jpeg_bytes(64, 64);
        let message = refusal("cut.jpg", &jpeg[..jpeg.len() - 2]);
        assert!(message.contains("damaged or incomplete"), "{message}");
    }

    #[test]
    fn a_text_file_named_jpg_is_not_an_image() {
        let message = refusal("notes.jpg", b"hello, this is text\n");
        assert!(message.contains("not a PNG or JPEG image"), "{message}");
    }

    #[test]
    fn sixteen_bit_pngs_are_scaled_to_eight_bits() {
        let rgb16 = ImageBuffer::from_fn(3, 1, |x, _| Rgb([[0u16, 25_700, 65_535][x as usize], 65_535, 0]));
        let img = decode_rgb("rgb16.png", &encode(&rgb16, ImageFormat::Png)).unwrap();
        assert_eq!(img.pixels().map(|p| p.0).collect::<Vec<_>>(), [[0, 255, 0], [100, 255, 0], [255, 255, 0]]);
        let grey16 = ImageBuffer::from_fn(2, 1, |x, _| Luma([[257u16 * 200, 65_535][x as usize]]));
        let img = decode_rgb("grey16.png", &encode(&grey16, ImageFormat::Png)).unwrap();
        assert_eq!(img.pixels().map(|p| p.0).collect::<Vec<_>>(), [[200; 3], [255; 3]]);
    }

    #[test]
    fn cmyk_jpeg_decodes_to_its_rgb_colours() {
        // Quadrants red, green / blue, 50% black (see tests/fixtures/images/README.md).
        let img = decode_rgb("cmyk.jpg", &fixture("cmyk.jpg")).unwrap();
        assert_eq!(img.dimensions(), (32, 32));
        for ((x, y), want) in [((8, 8), [255, 0, 0]), ((24, 8), [0, 255, 0]), ((8, 24), [0, 0, 255]), ((24, 24), [127, 127, 127])] {
            let got = img.get_pixel(x, y).0;
            assert!(close(got, want, 12), "({x}, {y}): {got:?}, expected {want:?}");
        }
    }

    #[test]
    fn grey_with_alpha_is_composited_on_white() {
        let la = ImageBuffer::from_fn(3, 1, |x, _| [LumaA([100u8, 255]), LumaA([100, 0]), LumaA([0, 128])][x as usize]);
        let img = decode_rgb("la.png", &encode(&la, ImageFormat::Png)).unwrap();
        assert_eq!(img.pixels().map(|p| p.0).collect::<Vec<_>>(), [[100; 3], [255; 3], [127; 3]]);
    }

    #[test]
    fn a_one_pixel_image_decodes_and_is_preprocessed() {
        let img = decode_rgb("dot.png", &encode(&RgbImage::from_pixel(1, 1, Rgb([255, 0, 51])), ImageFormat::Png)).unwrap();
        let p = Preprocess { size: 224, mean: [0.0; 3], std: [1.0; 3] };
        let t = p.tensor(&img, false);
        assert_eq!(t.len(), 3 * 224 * 224);
        let plane = 224 * 224;
        assert!(t[..plane].iter().all(|v| (v - 1.0).abs() < 1e-6));
        assert!(t[plane..2 * plane].iter().all(|v| v.abs() < 1e-6));
        assert!(t[2 * plane..].iter().all(|v| (v - 0.2).abs() < 1e-6));
    }

    #[test]
    fn huge_dimensions_are_refused_from_the_header() {
        // The crafted header is valid (the image crate reads its size), so the refusal is ours.
        let bytes = png_claiming(30_000, 30_000);
        let dims = ImageReader::with_format(Cursor::new(&bytes), ImageFormat::Png).into_dimensions().unwrap();
        assert_eq!(dims, (30_000, 30_000));
        let message = refusal("huge.png", &bytes);
        assert!(message.contains("30000x30000") && message.contains("too large"), "{message}");
        // Both sides allowed, but 144 megapixels is over the pixel budget.
        let message = refusal("wide.png", &png_claiming(MAX_SIDE, MAX_SIDE));
        assert!(message.contains("too large"), "{message}");
    }

    #[test]
    fn gif_is_refused_with_what_to_do() {
        let message = refusal("anim.gif", &fixture("animated.gif"));
        assert!(message.contains("GIF images are not supported") && message.contains("as PNG or JPEG"), "{message}");
    }

    #[test]
    fn svg_is_refused_as_a_vector_image() {
        let svgs: [&[u8]; 4] = [
            b"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"/>",
            b"\xEF\xBB\xBF\n  <?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- made by hand -->\n<svg viewBox=\"0 0 1 1\"></svg>",
            b"<?xml version=\"1.0\"?><!DOCTYPE svg PUBLIC \"-//W3C//DTD SVG 1.1//EN\" \"x\"><SVG></SVG>",
            b"\r\n\t<svg>",
        ];
        for svg in svgs {
            let message = refusal("logo.jpg", svg);
            assert!(message.contains("vector images (SVG) are not supported") && message.contains("Export it as PNG"), "{message}");
        }
        // Other XML is not called SVG.
        let message = refusal("data.png", b"<?xml version=\"1.0\"?><root/>");
        assert!(message.contains("not a PNG or JPEG image"), "{message}");
    }

    #[test]
    fn heic_and_avif_are_named_with_what_to_do() {
        let ftyp = |major: &[u8; 4], compatible: &[&[u8; 4]]| {
            let mut b = ((16 + 4 * compatible.len()) as u32).to_be_bytes().to_vec();
            b.extend_from_slice(b"ftyp");
            b.extend_from_slice(major);
            b.extend_from_slice(&[0; 4]);
            compatible.iter().for_each(|c| b.extend_from_slice(*c));
            b.extend_from_slice(&[0, 0, 0, 8, b'm', b'e', b't', b'a']);
            b
        };
        for heic in [ftyp(b"heic", &[b"mif1", b"heic"]), ftyp(b"mif1", &[b"mif1", b"heix"]), ftyp(b"msf1", &[b"hevc"])] {
            let message = refusal("IMG_0001.HEIC", &heic);
            assert!(
                message.contains("HEIC photos are not supported") && message.contains("'Most compatible'") && message.contains("JPEG"),
                "{message}"
            );
        }
        for avif in [fixture("tiny.avif"), ftyp(b"mif1", &[b"mif1", b"avif"])] {
            let message = refusal("photo.avif", &avif);
            assert!(message.contains("AVIF images are not supported"), "{message}");
        }
        let message = refusal("clip.jpg", &ftyp(b"isom", &[b"isom", b"mp42"]));
        assert!(message.contains("not a PNG or JPEG image"), "{message}");
    }

    #[test]
    fn other_known_formats_are_named() {
        let message = refusal("photo.png", b"RIFF\x24\0\0\0WEBPVP8 ");
        assert!(message.contains("WEBP images are not supported"), "{message}");
    }

    #[test]
    fn exif_orientation_is_applied() {
        // Stored 64x32: green over red on the left, blue on the right; EXIF says rotate
        // 90 degrees clockwise, so it shows 32x64 with green top right, red top left, blue below.
        let img = decode_rgb("orient6.jpg", &fixture("orient6.jpg")).unwrap();
        assert_eq!(img.dimensions(), (32, 64));
        for ((x, y), want) in [((24, 16), [0, 255, 0]), ((8, 16), [255, 0, 0]), ((16, 48), [0, 0, 255])] {
            let got = img.get_pixel(x, y).0;
            assert!(close(got, want, 24), "({x}, {y}): {got:?}, expected {want:?}");
        }
    }

    #[test]
    fn tensor_is_chw_and_normalised() {
        let img = RgbImage::from_fn(2, 2, |x, _| image::Rgb([if x == 0 { 0 } else { 255 }, 255, 0]));
        let p = Preprocess { size: 2, mean: [0.5; 3], std: [0.5; 3] };
        let t = p.tensor(&img, false);
        assert_eq!(t.len(), 12);
        assert_eq!(&t[0..4], &[-1.0, 1.0, -1.0, 1.0]); // red plane
        assert_eq!(&t[4..8], &[1.0; 4]); // green plane
        assert_eq!(&t[8..12], &[-1.0; 4]); // blue plane
    }

    #[test]
    fn evened_brightness_makes_a_dim_and_a_bright_shot_of_the_same_item_alike() {
        let scene = |gain: f32, offset: f32| {
            RgbImage::from_fn(8, 8, |x, y| {
                let v = ((x * 9 + y * 5) % 32) as f32 * 2.0;
                let shot = |base: f32| (base * gain + offset).round() as u8;
                Rgb([shot(v), shot(v + 10.0), shot(v)])
            })
        };
        let p = Preprocess { size: 8, mean: [0.0; 3], std: [1.0; 3] };
        let (dim, bright) = (scene(1.0, 20.0), scene(2.0, 100.0));
        let gap = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(gap(&p.tensor(&dim, false), &p.tensor(&bright, false)) > 0.3, "as taken, the shots differ");
        let (even_dim, even_bright) = (p.tensor(&dim, true), p.tensor(&bright, true));
        // Only 8-bit rounding of the original pixels is left.
        assert!(gap(&even_dim, &even_bright) < 0.02, "evened, they match: {}", gap(&even_dim, &even_bright));
        let mean = even_dim.iter().sum::<f32>() / even_dim.len() as f32;
        let std = (even_dim.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / even_dim.len() as f32).sqrt();
        assert!((mean - EVEN_MEAN).abs() < 1e-4 && (std - EVEN_STD).abs() < 1e-4, "{mean} {std}");
        // A flat grey photo is only shifted, not blown up.
        let flat = p.tensor(&RgbImage::from_pixel(4, 4, Rgb([10, 10, 10])), true);
        assert!(flat.iter().all(|v| (v - EVEN_MEAN).abs() < 1e-5));
    }
}
