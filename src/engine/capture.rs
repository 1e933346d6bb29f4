//! Capture checks: is a photo fit to be judged at all? A blurred, dark or glaring shot
//! gives a score that means nothing, so it gets CHECK with the reason instead
//! ("too blurry: hold still"), never a score that pretends.
//!
//! Each product's own good photos are the reference (a black tyre is darker than a
//! white box): training keeps the low end of its photos' sharpness and brightness and
//! the high end of their glare (good photos differ: ELPV cells vary tenfold in
//! sharpness, so the median would refuse one good cell in ten), and a new photo is
//! measured on the same backbone-sized image against them.

use image::RgbImage;
use serde::{Deserialize, Serialize};

/// Sharpness below this share of the good photos' low end: too blurry.
const BLURRY_BELOW: f32 = 0.5;
/// Brightness below this share of the good photos' low end: too dark.
const DARK_BELOW: f32 = 0.45;
/// Share of clipped (near-white) pixels above the good photos' high end plus this: glare.
const GLARE_ABOVE: f32 = 0.2;
/// The low end is this quantile of the good photos, the high end its complement.
const EDGE_QUANTILE: f32 = 0.05;
/// A pixel this bright (0..255 luminance) is clipped.
const CLIPPED: f32 = 250.0;

/// What one photo looks like as a capture.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CaptureStats {
    /// Variance of the Laplacian of the luminance, per unit of brightness squared (so a
    /// dimmer shot of the same item is not called blurry for being dim).
    pub sharpness: f32,
    /// Mean luminance, 0..255.
    pub brightness: f32,
    /// Share of clipped pixels.
    pub glare: f32,
}

impl CaptureStats {
    /// Measured on the image the backbone sees (resized to its input), so every photo of
    /// a product is measured at the same scale.
    pub fn of(image: &RgbImage) -> CaptureStats {
        let (w, h) = (image.width() as usize, image.height() as usize);
        let luma: Vec<f32> = image.pixels().map(|p| 0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])).collect();
        let n = luma.len().max(1) as f32;
        let brightness = luma.iter().sum::<f32>() / n;
        let glare = luma.iter().filter(|v| **v >= CLIPPED).count() as f32 / n;
        let (mut sum, mut sum_sq, mut count) = (0f64, 0f64, 0f64);
        for y in 1..h.saturating_sub(1) {
            for x in 1..w.saturating_sub(1) {
                let at = |dx: isize, dy: isize| luma[(y as isize + dy) as usize * w + (x as isize + dx) as usize];
                let lap = f64::from(at(-1, 0) + at(1, 0) + at(0, -1) + at(0, 1) - 4.0 * at(0, 0));
                sum += lap;
                sum_sq += lap * lap;
                count += 1.0;
            }
        }
        let variance = if count > 0.0 { (sum_sq / count - (sum / count).powi(2)).max(0.0) } else { 0.0 };
        let sharpness = (variance / f64::from(brightness.max(1.0)).powi(2)) as f32;
        CaptureStats { sharpness, brightness, glare }
    }
}

/// The good photos' range of captures: the low end of sharpness and brightness, the
/// high end of glare.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CaptureReference {
    pub sharpness: f32,
    pub brightness: f32,
    pub glare: f32,
}

impl CaptureReference {
    /// None without any photo.
    pub fn of(photos: &[CaptureStats]) -> Option<CaptureReference> {
        let quantile = |f: fn(&CaptureStats) -> f32, q: f32| {
            let mut v: Vec<f32> = photos.iter().map(f).filter(|x| x.is_finite()).collect();
            v.sort_by(f32::total_cmp);
            v.get(((v.len().max(1) - 1) as f32 * q).round() as usize).copied()
        };
        Some(CaptureReference {
            sharpness: quantile(|s| s.sharpness, EDGE_QUANTILE)?,
            brightness: quantile(|s| s.brightness, EDGE_QUANTILE)?,
            glare: quantile(|s| s.glare, 1.0 - EDGE_QUANTILE)?,
        })
    }

    /// Whether the values could have come from photos (a profile file is not trusted).
    pub fn is_valid(&self) -> bool {
        [self.sharpness, self.brightness, self.glare].iter().all(|v| v.is_finite() && *v >= 0.0)
            && self.brightness <= 255.0
            && self.glare <= 1.0
    }

    /// Why `photo` cannot be judged against this product, in words for the person
    /// holding the camera; None when it can.
    pub fn problem(&self, photo: &CaptureStats) -> Option<&'static str> {
        if photo.brightness < DARK_BELOW * self.brightness {
            Some("too dark: add light or move the item into the light")
        } else if photo.glare > self.glare + GLARE_ABOVE {
            Some("overexposed: tilt the item or the camera away from the glare")
        } else if photo.sharpness < BLURRY_BELOW * self.sharpness {
            Some("too blurry: hold still and let the camera focus")
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkerboard of 4 px squares between `dark` and `light`.
    fn board(dark: u8, light: u8) -> RgbImage {
        RgbImage::from_fn(64, 64, |x, y| image::Rgb([if (x / 4 + y / 4) % 2 == 0 { dark } else { light }; 3]))
    }

    #[test]
    fn measures_have_known_values() {
        let flat = CaptureStats::of(&RgbImage::from_pixel(16, 16, image::Rgb([100; 3])));
        assert_eq!((flat.sharpness, flat.brightness, flat.glare), (0.0, 100.0, 0.0));
        let white = CaptureStats::of(&RgbImage::from_pixel(8, 8, image::Rgb([255; 3])));
        assert_eq!(white.glare, 1.0);
        // Half the pixels of the board are 200: mean 100.
        let b = CaptureStats::of(&board(0, 200));
        assert!((b.brightness - 100.0).abs() < 1e-3 && b.sharpness > 0.1, "{b:?}");
    }

    #[test]
    fn dim_is_not_blurry_but_dark_blurred_and_glaring_shots_are_named() {
        let reference = CaptureReference::of(&[CaptureStats::of(&board(40, 160))]).unwrap();
        assert_eq!(reference.problem(&CaptureStats::of(&board(40, 160))), None);
        // The same board a little dimmer: as sharp per unit of light, not too dark.
        assert_eq!(reference.problem(&CaptureStats::of(&board(30, 120))), None);
        let dark = CaptureStats::of(&board(8, 30));
        assert!(reference.problem(&dark).unwrap().starts_with("too dark"));
        let blurred = CaptureStats::of(&image::imageops::blur(&board(40, 160), 3.0));
        assert!(reference.problem(&blurred).unwrap().starts_with("too blurry"), "{blurred:?} against {reference:?}");
        let glare = CaptureStats::of(&RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb(
                [if x < 40 {
                    255
                } else if (x / 4 + y / 4) % 2 == 0 {
                    40
                } else {
                    160
                }; 3],
            )
        }));
        assert!(reference.problem(&glare).unwrap().starts_with("overexposed"));
    }

    #[test]
    fn the_reference_is_the_low_end_and_refuses_nonsense() {
        let s = |v: f32| CaptureStats { sharpness: v, brightness: v, glare: v / 100.0 };
        // 21 photos 0..=20: the 5% quantile is the 2nd lowest (index 1), the 95% the 2nd highest.
        let photos: Vec<CaptureStats> = (0..=20).rev().map(|v| s(v as f32)).collect();
        let r = CaptureReference::of(&photos).unwrap();
        assert_eq!((r.sharpness, r.brightness, r.glare), (1.0, 1.0, 0.19));
        assert_eq!(CaptureReference::of(&[s(3.0)]).unwrap().sharpness, 3.0);
        assert!(r.is_valid());
        assert_eq!(CaptureReference::of(&[]), None);
        assert!(!CaptureReference { sharpness: f32::NAN, brightness: 1.0, glare: 0.0 }.is_valid());
        assert!(!CaptureReference { sharpness: 1.0, brightness: 300.0, glare: 0.0 }.is_valid());
    }
}
