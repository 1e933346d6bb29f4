//! Geometric warps of photos, masks and score planes: what a hand-held shot does to a
//! photo (shift, turn, zoom), and undoing it.
//!
//! Coordinates are pixel centres: pixel (x, y) sits at (x, y), the image spans
//! [-0.5, w - 0.5]. A warp is given as the map from each output pixel to the point of the
//! source it takes its value from (`dst_to_src`), so every output pixel gets exactly one value.
//!
//! Points that fall outside the source are filled with the source mirrored at its edge: a
//! camera held a little off sees more of the item's surroundings, which look like what
//! is at the edge of the frame. A black or grey frame would be a sharp edge the backbone
//! sees as damage, and repeating the edge pixels draws streaks no camera makes (they
//! were the highest-scoring "damage" on good hand-held tyres, in the corners).

use image::{GrayImage, Luma, Rgb, RgbImage};

/// `x' = m[0] x + m[1] y + m[2]`, `y' = m[3] x + m[4] y + m[5]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Affine {
    pub m: [f64; 6],
}

impl Affine {
    pub const IDENTITY: Affine = Affine { m: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0] };

    pub fn apply(&self, x: f64, y: f64) -> (f64, f64) {
        let m = &self.m;
        (m[0] * x + m[1] * y + m[2], m[3] * x + m[4] * y + m[5])
    }

    /// `self` after `first`: `self.after(first).apply(p) == self.apply(first.apply(p))`.
    pub fn after(&self, first: &Affine) -> Affine {
        let (a, b) = (&self.m, &first.m);
        Affine {
            m: [
                a[0] * b[0] + a[1] * b[3],
                a[0] * b[1] + a[1] * b[4],
                a[0] * b[2] + a[1] * b[5] + a[2],
                a[3] * b[0] + a[4] * b[3],
                a[3] * b[1] + a[4] * b[4],
                a[3] * b[2] + a[4] * b[5] + a[5],
            ],
        }
    }

    /// None when the map squashes the plane flat (no inverse).
    pub fn inverse(&self) -> Option<Affine> {
        let m = &self.m;
        let det = m[0] * m[4] - m[1] * m[3];
        if !det.is_finite() || det.abs() < 1e-12 {
            return None;
        }
        let (a, b, c, d) = (m[4] / det, -m[1] / det, -m[3] / det, m[0] / det);
        Some(Affine { m: [a, b, -(a * m[2] + b * m[5]), c, d, -(c * m[2] + d * m[5])] })
    }

    /// Scales each axis: `(x, y) -> (sx x + ox, sy y + oy)`.
    pub fn scaling(sx: f64, sy: f64, ox: f64, oy: f64) -> Affine {
        Affine { m: [sx, 0.0, ox, 0.0, sy, oy] }
    }

    /// Pixel centres of a `from` image to those of the same picture stretched to `to`
    /// (as a resize does): pixel edges land on pixel edges.
    pub fn resize(from: (u32, u32), to: (u32, u32)) -> Affine {
        let sx = f64::from(to.0) / f64::from(from.0.max(1));
        let sy = f64::from(to.1) / f64::from(from.1.max(1));
        Affine::scaling(sx, sy, 0.5 * sx - 0.5, 0.5 * sy - 0.5)
    }
}

/// A turn, zoom and shift about a centre: where a point of the item moves to when the
/// camera is held differently. `angle_deg` turns counter-clockwise as seen on screen
/// (y down), `scale` above 1 makes the item larger, `dx`/`dy` in pixels.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Similarity {
    pub dx: f64,
    pub dy: f64,
    pub angle_deg: f64,
    pub scale: f64,
}

impl Similarity {
    pub const IDENTITY: Similarity = Similarity { dx: 0.0, dy: 0.0, angle_deg: 0.0, scale: 1.0 };

    /// The map from a point before the move to where it is after, turning about `centre`.
    pub fn forward(&self, centre: (f64, f64)) -> Affine {
        let (s, c) = self.angle_deg.to_radians().sin_cos();
        let (a, b) = (self.scale * c, self.scale * s);
        // y grows downwards, so a counter-clockwise turn on screen is (x, y) -> (a x + b y, -b x + a y).
        let (cx, cy) = centre;
        Affine { m: [a, b, cx - a * cx - b * cy + self.dx, -b, a, cy + b * cx - a * cy + self.dy] }
    }

    /// Reads a similarity back from an affine map (its closest similarity when the map
    /// also shears), with the turn about `centre`.
    pub fn of(affine: &Affine, centre: (f64, f64)) -> Similarity {
        let m = &affine.m;
        let a = 0.5 * (m[0] + m[4]);
        let b = 0.5 * (m[1] - m[3]);
        let scale = a.hypot(b);
        let (cx, cy) = centre;
        let (px, py) = affine.apply(cx, cy);
        Similarity { dx: px - cx, dy: py - cy, angle_deg: b.atan2(a).to_degrees(), scale }
    }
}

/// The centre of a `w` x `h` image in pixel-centre coordinates.
pub fn centre_of(w: u32, h: u32) -> (f64, f64) {
    ((f64::from(w) - 1.0) / 2.0, (f64::from(h) - 1.0) / 2.0)
}

/// A coordinate outside `[-0.5, n - 0.5]` folded back in, mirrored at the image's edge
/// (the edge pixel is the mirror's first): -1 reads 0, -2 reads 1, n reads n - 1.
#[inline]
fn mirror(v: f64, n: usize) -> f64 {
    let n = n as f64;
    let t = (v + 0.5).rem_euclid(2.0 * n);
    let t = if t < n { t } else { 2.0 * n - t };
    (t - 0.5).clamp(0.0, n - 1.0)
}

/// Bilinear sample of one channel at (x, y), mirrored outside the image.
#[inline]
fn bilinear(get: impl Fn(usize, usize) -> f32, w: usize, h: usize, x: f64, y: f64) -> f32 {
    let x = mirror(x, w);
    let y = mirror(y, h);
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
    let top = get(x0, y0) * (1.0 - fx) + get(x1, y0) * fx;
    let bottom = get(x0, y1) * (1.0 - fx) + get(x1, y1) * fx;
    top * (1.0 - fy) + bottom * fy
}

/// A photo warped to `size`, bilinear, mirrored outside the photo.
pub fn warp_rgb(src: &RgbImage, size: (u32, u32), dst_to_src: &Affine) -> RgbImage {
    let (w, h) = (src.width() as usize, src.height() as usize);
    if w == 0 || h == 0 {
        return RgbImage::new(size.0, size.1);
    }
    let raw = src.as_raw();
    RgbImage::from_fn(size.0, size.1, |x, y| {
        let (sx, sy) = dst_to_src.apply(f64::from(x), f64::from(y));
        let px = |c: usize| bilinear(|i, j| f32::from(raw[(j * w + i) * 3 + c]), w, h, sx, sy).round().clamp(0.0, 255.0) as u8;
        Rgb([px(0), px(1), px(2)])
    })
}

/// A mask warped to `size`, nearest neighbour so it stays two-valued, mirrored as its photo is.
pub fn warp_mask(src: &GrayImage, size: (u32, u32), dst_to_src: &Affine) -> GrayImage {
    let (w, h) = (src.width(), src.height());
    if w == 0 || h == 0 {
        return GrayImage::new(size.0, size.1);
    }
    GrayImage::from_fn(size.0, size.1, |x, y| {
        let (sx, sy) = dst_to_src.apply(f64::from(x), f64::from(y));
        let i = mirror(sx, w as usize).round() as u32;
        let j = mirror(sy, h as usize).round() as u32;
        Luma([src.get_pixel(i, j)[0]])
    })
}

/// Every pixel times `gain` (light brighter or dimmer), clipped like a sensor.
pub fn scale_brightness(img: &mut RgbImage, gain: f32) {
    for v in img.iter_mut() {
        *v = (f32::from(*v) * gain).round().clamp(0.0, 255.0) as u8;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: (f64, f64), b: (f64, f64)) -> bool {
        (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9
    }

    #[test]
    fn composition_and_inverse_agree() {
        let f = Similarity { dx: 3.0, dy: -2.0, angle_deg: 17.0, scale: 1.2 }.forward((10.0, 5.0));
        let g = Affine::resize((40, 30), (7, 9));
        let inv = f.inverse().unwrap();
        for p in [(0.0, 0.0), (12.5, -3.0), (39.0, 29.0)] {
            assert!(close(inv.apply(f.apply(p.0, p.1).0, f.apply(p.0, p.1).1), p));
            let (x, y) = f.apply(p.0, p.1);
            assert!(close(g.after(&f).apply(p.0, p.1), g.apply(x, y)));
        }
        assert!(Affine { m: [1.0, 2.0, 0.0, 2.0, 4.0, 0.0] }.inverse().is_none());
    }

    #[test]
    fn a_similarity_is_read_back_from_its_affine_map() {
        let s = Similarity { dx: -4.5, dy: 7.25, angle_deg: -8.0, scale: 0.93 };
        let back = Similarity::of(&s.forward((20.0, 30.0)), (20.0, 30.0));
        assert!((back.dx - s.dx).abs() < 1e-9 && (back.dy - s.dy).abs() < 1e-9);
        assert!((back.angle_deg - s.angle_deg).abs() < 1e-9 && (back.scale - s.scale).abs() < 1e-9);
        // The centre stays put under a pure turn and zoom.
        let turn = Similarity { dx: 0.0, dy: 0.0, angle_deg: 33.0, scale: 1.5 }.forward((20.0, 30.0));
        assert!(close(turn.apply(20.0, 30.0), (20.0, 30.0)));
        // Counter-clockwise on screen: a point right of the centre moves up (smaller y).
        let quarter = Similarity { dx: 0.0, dy: 0.0, angle_deg: 90.0, scale: 1.0 }.forward((0.0, 0.0));
        assert!(close(quarter.apply(1.0, 0.0), (0.0, -1.0)));
    }

    #[test]
    fn resize_maps_pixel_edges_to_pixel_edges() {
        let r = Affine::resize((4, 2), (8, 6));
        assert!(close(r.apply(-0.5, -0.5), (-0.5, -0.5)));
        assert!(close(r.apply(3.5, 1.5), (7.5, 5.5)));
    }

    #[test]
    fn a_shift_moves_pixels_and_mirrors_the_edge() {
        let src = RgbImage::from_fn(6, 4, |x, y| Rgb([(x * 40) as u8, (y * 60) as u8, 9]));
        // The content moves 2 px right: output (x, y) reads source (x - 2, y).
        let moved = Similarity { dx: 2.0, dy: 0.0, angle_deg: 0.0, scale: 1.0 }.forward(centre_of(6, 4));
        let out = warp_rgb(&src, (6, 4), &moved.inverse().unwrap());
        assert_eq!(out.get_pixel(5, 3).0, src.get_pixel(3, 3).0);
        assert_eq!(out.get_pixel(2, 1).0, src.get_pixel(0, 1).0);
        // Left of the photo, the camera "sees" the photo mirrored at its left edge.
        assert_eq!(out.get_pixel(1, 1).0, src.get_pixel(0, 1).0);
        assert_eq!(out.get_pixel(0, 1).0, src.get_pixel(1, 1).0);
    }

    #[test]
    fn mirroring_folds_every_coordinate_back_in() {
        let cases = [(0.0, 0.0), (-1.0, 0.0), (-2.0, 1.0), (5.0, 4.0), (6.0, 3.0), (7.0, 2.0), (-0.25, 0.0), (2.5, 2.5)];
        for (v, folded) in cases {
            assert!((mirror(v, 5) - folded).abs() < 1e-12, "{v} -> {} (expected {folded})", mirror(v, 5));
        }
        // Far outside still lands inside (periodic), and a 1-pixel image is that pixel.
        assert!((0.0..=4.0).contains(&mirror(-123.4, 5)) && (0.0..=4.0).contains(&mirror(77.7, 5)));
        assert_eq!(mirror(-3.0, 1), 0.0);
    }

    #[test]
    fn masks_stay_two_valued_and_follow_their_photo() {
        let photo =
            RgbImage::from_fn(30, 20, |x, y| if (10..15).contains(&x) && (5..9).contains(&y) { Rgb([255; 3]) } else { Rgb([0; 3]) });
        let mask = GrayImage::from_fn(30, 20, |x, y| Luma([photo.get_pixel(x, y)[0]]));
        let f = Similarity { dx: 3.3, dy: -1.7, angle_deg: 9.0, scale: 1.07 }.forward(centre_of(30, 20)).inverse().unwrap();
        let (p, m) = (warp_rgb(&photo, (30, 20), &f), warp_mask(&mask, (30, 20), &f));
        assert!(m.iter().all(|v| *v == 0 || *v == 255));
        // Where the warped mask says damage, the warped photo is bright, and the reverse,
        // apart from the blurred rim of the bilinear photo.
        let agree = p.pixels().zip(m.pixels()).filter(|(a, b)| (a[0] > 127) == (b[0] > 127)).count();
        assert!(agree >= 600 - 4, "{agree} of 600 pixels agree");
        assert!(m.iter().filter(|v| **v > 0).count() > 12);
    }

    #[test]
    fn brightness_scales_and_clips() {
        let mut img = RgbImage::from_pixel(1, 1, Rgb([100, 200, 10]));
        scale_brightness(&mut img, 1.5);
        assert_eq!(img.get_pixel(0, 0).0, [150, 255, 15]);
    }
}
