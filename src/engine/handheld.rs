//! Hand-held shots: every photo shifted, turned, zoomed and lit a little differently, as
//! store staff holding a tablet take them, with each mask moved the same way. Seeded: the
//! same seed and file give the same shot on every machine. `damagelens handheld` makes
//! hand-held variants of a dataset with it, and training can add hand-held copies of each
//! good photo (`TrainSettings::augment`).
//!
//! Where a moved photo has no pixels (the item's surroundings out of the original frame),
//! the photo is mirrored at its edge (see [`crate::engine::warp`]): a real camera would
//! still see the surroundings, not a coloured frame that looks like damage. A mask is
//! mirrored the same way, so it still marks exactly what its photo shows.

use image::{GrayImage, RgbImage};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::warp::{centre_of, scale_brightness, warp_mask, warp_rgb, Affine, Similarity};

/// How far a hand-held shot strays from the aligned one, each drawn uniformly in ±range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HandHeld {
    /// Shift as a share of the photo's width (x) and height (y).
    pub shift: f64,
    /// Turn in degrees.
    pub turn_deg: f64,
    /// Zoom: the scale is 1 ± this.
    pub scale: f64,
    /// Light: brightness gain 1 ± this.
    pub light: f64,
}

impl Default for HandHeld {
    /// The tablet: up to 8% shift, 10 degrees, 8% zoom, 15% light.
    fn default() -> Self {
        HandHeld { shift: 0.08, turn_deg: 10.0, scale: 0.08, light: 0.15 }
    }
}

/// One drawn shot: the move and the brightness gain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Shot {
    pub pose: Similarity,
    pub gain: f64,
}

/// FNV-1a: a stable hash of a file's relative path (std's hasher may change between releases).
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

impl HandHeld {
    /// The shot for the photo at `key` (its path relative to the dataset root) in a
    /// `w` x `h` photo: depends only on the seed and the key, not on the order files are visited.
    pub fn shot(&self, seed: u64, key: &str, (w, h): (u32, u32)) -> Shot {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a(key));
        let mut symmetric = |range: f64| range * ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0);
        let pose = Similarity {
            dx: symmetric(self.shift) * f64::from(w),
            dy: symmetric(self.shift) * f64::from(h),
            angle_deg: symmetric(self.turn_deg),
            scale: 1.0 + symmetric(self.scale),
        };
        Shot { pose, gain: 1.0 + symmetric(self.light) }
    }
}

impl Shot {
    /// From each pixel of the hand-held photo to where it was in the aligned one.
    fn dst_to_src(&self, (w, h): (u32, u32)) -> Affine {
        self.pose.forward(centre_of(w, h)).inverse().unwrap_or(Affine::IDENTITY)
    }

    pub fn photo(&self, aligned: &RgbImage) -> RgbImage {
        let mut out = warp_rgb(aligned, aligned.dimensions(), &self.dst_to_src(aligned.dimensions()));
        scale_brightness(&mut out, self.gain as f32);
        out
    }

    /// The mask of the photo, moved the same way (its own size must be the photo's).
    pub fn mask(&self, aligned: &GrayImage) -> GrayImage {
        warp_mask(aligned, aligned.dimensions(), &self.dst_to_src(aligned.dimensions()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shots_are_seeded_per_file_and_within_range() {
        let h = HandHeld::default();
        assert_eq!(h.shot(7, "test/cut/000.png", (300, 400)), h.shot(7, "test/cut/000.png", (300, 400)));
        assert_ne!(h.shot(7, "test/cut/000.png", (300, 400)), h.shot(8, "test/cut/000.png", (300, 400)));
        assert_ne!(h.shot(7, "test/cut/000.png", (300, 400)), h.shot(7, "test/cut/001.png", (300, 400)));
        for i in 0..200 {
            let s = h.shot(1, &format!("{i}.png"), (300, 400));
            assert!(s.pose.dx.abs() <= 24.0 && s.pose.dy.abs() <= 32.0 && s.pose.angle_deg.abs() <= 10.0, "{s:?}");
            assert!((s.pose.scale - 1.0).abs() <= 0.08 && (s.gain - 1.0).abs() <= 0.15, "{s:?}");
        }
    }

    #[test]
    fn the_mask_follows_the_photo() {
        let aligned =
            RgbImage::from_fn(40, 50, |x, y| image::Rgb(if (15..22).contains(&x) && (20..30).contains(&y) { [200; 3] } else { [20; 3] }));
        let mask = GrayImage::from_fn(40, 50, |x, y| image::Luma([if aligned.get_pixel(x, y)[0] > 100 { 255 } else { 0 }]));
        let shot = HandHeld::default().shot(3, "a.png", (40, 50));
        let (photo, moved) = (shot.photo(&aligned), shot.mask(&mask));
        let bright = |x: u32, y: u32| photo.get_pixel(x, y)[0] > 110;
        let agree =
            (0..50).flat_map(|y| (0..40).map(move |x| (x, y))).filter(|&(x, y)| bright(x, y) == (moved.get_pixel(x, y)[0] > 0)).count();
        assert!(agree >= 2000 - 12, "{agree} of 2000");
    }
}
