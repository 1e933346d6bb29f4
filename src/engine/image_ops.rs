//! Decoding untrusted image bytes and turning them into the backbone's input tensor.
//!
//! The image crate decodes in the browser too (not createImageBitmap), so a photo
//! scores the same on every device and in the CLI.

use std::io::Cursor;

use image::{imageops::FilterType, ImageFormat, ImageReader, Limits, RgbImage};

use super::EngineError;

/// Larger files are refused before decoding: no phone photo comes close.
pub const MAX_FILE_BYTES: usize = 64 * 1024 * 1024;
/// Each side at most this many pixels; checked from the header, before any pixel is allocated.
pub const MAX_SIDE: u32 = 12_000;
/// Decoder allocation ceiling.
const MAX_ALLOC: u64 = 512 * 1024 * 1024;

const FIX_FORMAT: &str = "Use a PNG or JPEG photo";

fn image_error(file: &str, reason: impl Into<String>, fix: &'static str) -> EngineError {
    EngineError::Image { file: file.to_string(), reason: reason.into(), fix }
}

/// Decodes a PNG or JPEG into RGB8, refusing empty, oversized, unknown or corrupt files.
pub fn decode_rgb(file: &str, bytes: &[u8]) -> Result<RgbImage, EngineError> {
    if bytes.is_empty() {
        return Err(image_error(file, "the file is empty", FIX_FORMAT));
    }
    if bytes.len() > MAX_FILE_BYTES {
        return Err(image_error(
            file,
            format!("the file is {} MB, more than the {} MB limit", bytes.len() >> 20, MAX_FILE_BYTES >> 20),
            "Use a smaller photo (a few megapixels is plenty)",
        ));
    }
    let format = image::guess_format(bytes)
        .map_err(|_| image_error(file, "this is not a PNG or JPEG image", FIX_FORMAT))?;
    if !matches!(format, ImageFormat::Png | ImageFormat::Jpeg) {
        return Err(image_error(file, format!("{format:?} images are not supported"), FIX_FORMAT));
    }
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_ALLOC);
    reader.limits(limits);
    let image = reader.decode().map_err(|e| {
        let reason = match e {
            image::ImageError::Limits(_) => format!("the image is larger than {MAX_SIDE} pixels on a side"),
            other => format!("the image is damaged or incomplete ({other})"),
        };
        image_error(file, reason, "Export the photo again as PNG or JPEG")
    })?;
    Ok(image.to_rgb8())
}

/// How pixels become the backbone input: the whole photo is resized to `size` x `size`
/// (no crop, so damage at the edges is still seen), scaled to [0,1], then `(x - mean) / std`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Preprocess {
    pub size: u32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Preprocess {
    /// Returns the 1x3xSxS tensor in CHW order.
    pub fn tensor(&self, image: &RgbImage) -> Vec<f32> {
        let s = self.size;
        let resized = if image.dimensions() == (s, s) {
            image.clone()
        } else {
            image::imageops::resize(image, s, s, FilterType::Triangle)
        };
        let plane = (s * s) as usize;
        let mut out = vec![0f32; 3 * plane];
        for (i, px) in resized.pixels().enumerate() {
            for c in 0..3 {
                out[c * plane + i] = (px[c] as f32 / 255.0 - self.mean[c]) / self.std[c];
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 7]));
        let mut buf = Vec::new();
        img.write_to(&mut Cursor::new(&mut buf), ImageFormat::Png).unwrap();
        buf
    }

    #[test]
    fn decodes_a_png() {
        let img = decode_rgb("a.png", &png_bytes(5, 3)).unwrap();
        assert_eq!(img.dimensions(), (5, 3));
        assert_eq!(img.get_pixel(4, 2).0, [4, 2, 7]);
    }

    #[test]
    fn refuses_bad_files_with_the_file_name() {
        let empty = decode_rgb("empty.png", &[]).unwrap_err().to_string();
        assert!(empty.contains("empty.png") && empty.contains("empty"), "{empty}");
        let text = decode_rgb("notes.jpg", b"hello, this is text").unwrap_err().to_string();
        assert!(text.contains("notes.jpg") && text.contains("not a PNG or JPEG"), "{text}");
        let mut truncated = png_bytes(64, 64);
        truncated.truncate(truncated.len() / 2);
        let cut = decode_rgb("cut.png", &truncated).unwrap_err().to_string();
        assert!(cut.contains("cut.png") && cut.contains("damaged or incomplete"), "{cut}");
    }

    #[test]
    fn refuses_huge_dimensions_from_the_header() {
        // A valid PNG header claiming 30000x30000, followed by nothing: must be refused by the limits.
        let mut bytes = png_bytes(1, 1);
        bytes[16..20].copy_from_slice(&30000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&30000u32.to_be_bytes());
        let err = decode_rgb("huge.png", &bytes).unwrap_err().to_string();
        assert!(err.contains("huge.png"), "{err}");
    }

    #[test]
    fn tensor_is_chw_and_normalised() {
        let img = RgbImage::from_fn(2, 2, |x, _| image::Rgb([if x == 0 { 0 } else { 255 }, 255, 0]));
        let p = Preprocess { size: 2, mean: [0.5; 3], std: [0.5; 3] };
        let t = p.tensor(&img);
        assert_eq!(t.len(), 12);
        assert_eq!(&t[0..4], &[-1.0, 1.0, -1.0, 1.0]); // red plane
        assert_eq!(&t[4..8], &[1.0; 4]); // green plane
        assert_eq!(&t[8..12], &[-1.0; 4]); // blue plane
    }
}
