//! Calibrating a product by hand, as the browser does it: the engine scores the
//! calibration photos once ([`CalibrationScores::from_items`]); everything a person then
//! tries (another method, the sensitivity slider) is recomputed from those numbers
//! without touching a photo again. Also the masks a person paints with a brush.

use serde::{Deserialize, Serialize};

use super::dataset::Category;
/// Which photo a mask dropped next to the calibration photos belongs to: the one naming
/// rule of [`super::masks`], shared with the dataset layouts and the CLI.
pub use super::masks::mask_target;
use super::metrics::{pr_curve, roc_curve, Curve};
use super::report::{calibration_set, EvalItem};
use super::threshold::{choose, Chosen, ThresholdMethod};
use crate::engine::calibration_stats::calibrated;
use crate::engine::image_ops::{check_format, decode_rgb};
use crate::engine::postprocess::Calibration;

/// Thresholds tried on the pixel curves drawn for a person; the estimators use their own.
const PLOTTED_STEPS: usize = 200;
/// Sigmas over the good photos' mean, the default without masks (as training uses).
pub const DEFAULT_SIGMAS: f32 = 2.0;

/// One damaged calibration photo's image score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DamagedScore {
    pub name: String,
    pub score: f32,
    pub category: Option<Category>,
    /// Whether its mask was usable (pixel-level methods count only those).
    pub with_mask: bool,
}

/// What the engine measures on the calibration photos, once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationScores {
    /// Image scores of good photos the scoring model had not seen.
    pub good: Vec<f32>,
    pub damaged: Vec<DamagedScore>,
    /// Pixel IoU and F1 against the threshold, over the photos with masks.
    pub iou: Option<Curve>,
    pub f1: Option<Curve>,
    /// The pixel-level choices, which need the maps: made here, once.
    pub max_iou: Result<Chosen, String>,
    pub max_f1: Result<Chosen, String>,
    /// The lowest and highest anomaly-map values seen: the span of the 0..1 scale.
    pub map_min: f32,
    pub map_max: f32,
}

impl CalibrationScores {
    /// `items` are good and damaged photos scored by one model, maps `map_size` square.
    pub fn from_items(items: &[EvalItem], map_size: usize) -> Self {
        let set = calibration_set(items, map_size);
        let pixels = set.pixels.as_ref().filter(|p| p.validate().is_ok() && p.damaged_images() > 0);
        let (map_min, map_max) =
            items.iter().flat_map(|i| i.map.iter()).fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        CalibrationScores {
            good: set.good_scores.clone(),
            damaged: items
                .iter()
                .filter(|i| i.anomalous)
                .map(|i| DamagedScore {
                    name: i.path.clone(),
                    score: i.score,
                    category: i.category,
                    with_mask: i.mask.as_ref().is_some_and(|m| m.iter().any(|&d| d)),
                })
                .collect(),
            iou: pixels.and_then(|p| p.iou_curve(PLOTTED_STEPS)),
            f1: pixels.and_then(|p| p.f1_curve(PLOTTED_STEPS)),
            max_iou: choose(&ThresholdMethod::MaxIou, &set),
            max_f1: choose(&ThresholdMethod::MaxF1, &set),
            map_min,
            map_max,
        }
    }

    pub fn damaged_scores(&self) -> Vec<f32> {
        self.damaged.iter().map(|d| d.score).collect()
    }

    pub fn masks(&self) -> usize {
        self.damaged.iter().filter(|d| d.with_mask).count()
    }

    /// IoU when masks exist (the recommended estimator), else normal-score statistics.
    pub fn default_method(&self) -> ThresholdMethod {
        if self.max_iou.is_ok() {
            ThresholdMethod::MaxIou
        } else {
            ThresholdMethod::NormalSigma { k: DEFAULT_SIGMAS }
        }
    }

    /// The threshold `method` gives on these scores, and why.
    pub fn choose(&self, method: &ThresholdMethod) -> Result<Chosen, String> {
        match method {
            ThresholdMethod::MaxIou => self.max_iou.clone(),
            ThresholdMethod::MaxF1 => self.max_f1.clone(),
            other => choose(
                other,
                &super::threshold::CalibrationSet { good_scores: self.good.clone(), anomalous_scores: self.damaged_scores(), pixels: None },
            ),
        }
    }

    /// How the profile maps scores with `threshold`: the 0..1 scale spans every map value
    /// seen, and the threshold; the CHECK band below it comes from the same photos.
    pub fn calibration(&self, threshold: f32, method: String) -> Calibration {
        calibrated(threshold, (self.map_min, self.map_max), method, &self.good, &self.damaged_scores())
    }

    /// The raw threshold that flags from `cut` on the 0..1 scale of `chosen`'s calibration
    /// (0.5 is `chosen` itself; lower flags more).
    pub fn at_sensitivity(&self, chosen: f32, cut: f32) -> f32 {
        let c = self.calibration(chosen, String::new());
        chosen + (cut - 0.5) * (c.max - c.min).max(f32::EPSILON)
    }

    /// Share of the good photos scoring at or above `threshold`; None without any.
    pub fn good_flagged(&self, threshold: f32) -> Option<f64> {
        share_at_or_above(&self.good, threshold)
    }

    /// Share of the damaged photos scoring at or above `threshold`; None without any.
    pub fn damaged_flagged(&self, threshold: f32) -> Option<f64> {
        share_at_or_above(&self.damaged_scores(), threshold)
    }

    fn image_scores(&self) -> (Vec<f32>, Vec<bool>) {
        let scores = self.good.iter().copied().chain(self.damaged.iter().map(|d| d.score)).collect();
        let labels = self.good.iter().map(|_| false).chain(self.damaged.iter().map(|_| true)).collect();
        (scores, labels)
    }

    /// Image-level ROC curve (good against damaged photos).
    pub fn roc(&self) -> Option<Curve> {
        let (scores, labels) = self.image_scores();
        roc_curve(&scores, &labels)
    }

    /// Image-level precision-recall curve.
    pub fn pr(&self) -> Option<Curve> {
        let (scores, labels) = self.image_scores();
        pr_curve(&scores, &labels)
    }
}

fn share_at_or_above(scores: &[f32], t: f32) -> Option<f64> {
    (!scores.is_empty()).then(|| scores.iter().filter(|&&s| s >= t).count() as f64 / scores.len() as f64)
}

/// One brush stroke on a photo, in the photo's pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stroke {
    pub radius: f32,
    pub points: Vec<(f32, f32)>,
}

impl Stroke {
    /// Whether pixel centre (x + 0.5, y + 0.5) is under the stroke: within `radius` of a
    /// point or of a segment between two consecutive points (a round brush dragged).
    fn covers(&self, x: f32, y: f32) -> bool {
        let r2 = self.radius * self.radius;
        let near = |(ax, ay): (f32, f32), (bx, by): (f32, f32)| {
            let (dx, dy) = (bx - ax, by - ay);
            let len2 = dx * dx + dy * dy;
            let t = if len2 > 0.0 { (((x - ax) * dx + (y - ay) * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
            let (px, py) = (ax + t * dx - x, ay + t * dy - y);
            px * px + py * py <= r2
        };
        match self.points.as_slice() {
            [] => false,
            [only] => near(*only, *only),
            points => points.windows(2).any(|w| near(w[0], w[1])),
        }
    }
}

/// A painted mask, `width` x `height`, row-major, `true` = damaged: `base` (a mask
/// already there, same size) plus every stroke.
pub fn paint(base: Option<&[bool]>, strokes: &[Stroke], width: u32, height: u32) -> Vec<bool> {
    let (w, h) = (width as usize, height as usize);
    let mut mask = match base {
        Some(b) if b.len() == w * h => b.to_vec(),
        _ => vec![false; w * h],
    };
    for stroke in strokes {
        // Only the stroke's bounding box can be covered.
        let r = stroke.radius.max(0.0);
        let (mut x0, mut y0, mut x1, mut y1) = (f32::INFINITY, f32::INFINITY, f32::NEG_INFINITY, f32::NEG_INFINITY);
        for &(x, y) in &stroke.points {
            (x0, y0, x1, y1) = (x0.min(x - r), y0.min(y - r), x1.max(x + r), y1.max(y + r));
        }
        if !(x0.is_finite() && y0.is_finite() && x1.is_finite() && y1.is_finite()) {
            continue;
        }
        let clamp = |v: f32, n: usize| (v.floor().max(0.0) as usize).min(n);
        for y in clamp(y0, h)..clamp(y1 + 1.0, h) {
            for x in clamp(x0, w)..clamp(x1 + 1.0, w) {
                if !mask[y * w + x] && stroke.covers(x as f32 + 0.5, y as f32 + 0.5) {
                    mask[y * w + x] = true;
                }
            }
        }
    }
    mask
}

/// A mask as a greyscale PNG: white where damaged, the format the engine reads.
pub fn mask_png(mask: &[bool], width: u32, height: u32) -> Result<Vec<u8>, String> {
    let pixels: Vec<u8> = mask.iter().map(|&d| if d { 255 } else { 0 }).collect();
    let image = image::GrayImage::from_raw(width, height, pixels).ok_or("the mask does not have the photo's size")?;
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).map_err(|e| format!("the mask could not be encoded: {e}"))?;
    Ok(out.into_inner())
}

/// A mask file read back: `true` where it is bright (over half grey).
pub fn read_mask(file: &str, bytes: &[u8]) -> Result<(Vec<bool>, u32, u32), String> {
    let rgb = decode_rgb(file, bytes).map_err(|e| e.to_string())?;
    let luma = image::DynamicImage::ImageRgb8(rgb).to_luma8();
    let (w, h) = luma.dimensions();
    Ok((luma.pixels().map(|p| p.0[0] > 127).collect(), w, h))
}

/// A photo's width and height from its header, without decoding it.
pub fn image_size(file: &str, bytes: &[u8]) -> Result<(u32, u32), String> {
    let format = check_format(file, bytes).map_err(|e| e.to_string())?;
    image::ImageReader::with_format(std::io::Cursor::new(bytes), format)
        .into_dimensions()
        .map_err(|e| format!("{file}: the image header cannot be read ({e}); export it again as PNG or JPEG"))
}

/// Checks that `mask` can mark damage on `photo`: an image of exactly its size.
pub fn check_mask(mask: &str, mask_bytes: &[u8], photo: &str, photo_bytes: &[u8]) -> Result<(), String> {
    let wanted = image_size(photo, photo_bytes)?;
    let got = image_size(mask, mask_bytes).map_err(|e| format!("{e} (a mask is a black and white PNG, white where {photo} is damaged)"))?;
    if got != wanted {
        return Err(format!(
            "{mask}: the mask is {}x{} but its photo {photo} is {}x{}; give a mask of the photo's size, white where it is damaged",
            got.0, got.1, wanted.0, wanted.1
        ));
    }
    read_mask(mask, mask_bytes).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(anomalous: bool, score: f32, hot: Option<usize>) -> EvalItem {
        let mut map = vec![0.1; 4];
        let mut mask = vec![false; 4];
        if let Some(p) = hot {
            map[p] = score;
            mask[p] = true;
        }
        EvalItem { path: format!("p{score}.png"), anomalous, category: None, score: score.max(0.1), map, mask: Some(mask) }
    }

    #[test]
    fn pixel_methods_come_from_the_maps_and_default_to_iou() {
        let items = vec![item(false, 0.2, None), item(false, 0.3, None), item(true, 0.9, Some(0)), item(true, 0.8, Some(3))];
        let scores = CalibrationScores::from_items(&items, 2);
        assert_eq!(scores.masks(), 2);
        assert_eq!(scores.default_method(), ThresholdMethod::MaxIou);
        let iou = scores.choose(&ThresholdMethod::MaxIou).unwrap();
        assert_eq!(iou.value, 0.8);
        assert_eq!(iou.expected_false_positive_rate, Some(0.0));
        assert!(scores.iou.as_ref().is_some_and(|c| c.y.contains(&1.0)));
        // Score-only methods are recomputed from the image scores alone.
        let youden = scores.choose(&ThresholdMethod::Youden).unwrap();
        assert_eq!(youden.value, 0.8);
        assert_eq!((scores.map_min, scores.map_max), (0.1, 0.9));
        assert_eq!(scores.roc().unwrap().x.len(), 5);
        assert_eq!(scores.pr().unwrap().y[0], 1.0);
    }

    #[test]
    fn without_masks_normal_statistics_is_the_default() {
        let mut damaged = item(true, 0.9, Some(0));
        damaged.mask = None;
        let scores = CalibrationScores::from_items(&[item(false, 0.2, None), item(false, 0.4, None), damaged], 2);
        assert_eq!(scores.masks(), 0);
        assert!(scores.iou.is_none());
        assert_eq!(scores.default_method(), ThresholdMethod::NormalSigma { k: DEFAULT_SIGMAS });
        assert!(scores.choose(&ThresholdMethod::MaxIou).unwrap_err().contains("masks"));
        let normal = scores.choose(&scores.default_method()).unwrap();
        assert!(normal.value >= 0.4);
        assert_eq!(scores.damaged_flagged(normal.value), Some(if normal.value <= 0.9 { 1.0 } else { 0.0 }));
    }

    #[test]
    fn the_slider_moves_along_the_normalised_scale() {
        let scores = CalibrationScores::from_items(&[item(false, 0.2, None), item(false, 0.5, None), item(true, 0.9, Some(0))], 2);
        let chosen = 0.6;
        let cal = scores.calibration(chosen, String::new());
        assert_eq!(scores.at_sensitivity(chosen, 0.5), chosen);
        for cut in [0.1f32, 0.3, 0.7, 0.95] {
            let raw = scores.at_sensitivity(chosen, cut);
            assert!((cal.normalise(raw) - cut).abs() < 1e-5, "{cut} -> {raw}");
        }
        // Lower on the scale flags more good photos.
        assert_eq!(scores.good_flagged(scores.at_sensitivity(chosen, 0.5)), Some(0.0));
        assert_eq!(scores.good_flagged(scores.at_sensitivity(chosen, 0.3)), Some(0.5));
    }

    #[test]
    fn strokes_paint_round_brushes_along_their_path() {
        let line = Stroke { radius: 1.0, points: vec![(0.5, 2.5), (4.5, 2.5)] };
        let mask = paint(None, std::slice::from_ref(&line), 5, 5);
        let rows: Vec<String> = mask.chunks(5).map(|r| r.iter().map(|&d| if d { '#' } else { '.' }).collect()).collect();
        assert_eq!(rows, vec![".....", "#####", "#####", "#####", "....."]);
        let dot = Stroke { radius: 0.5, points: vec![(0.5, 0.5)] };
        let both = paint(Some(&mask), &[dot], 5, 5);
        assert!(both[0] && both[5 * 2]);
        // Off the photo, or empty: nothing, and no panic.
        let outside = Stroke { radius: 3.0, points: vec![(-50.0, -50.0), (f32::NAN, 1.0)] };
        assert!(paint(None, &[outside, Stroke { radius: 2.0, points: vec![] }], 5, 5).iter().all(|d| !d));
    }

    #[test]
    fn painted_masks_round_trip_through_png() {
        let mask = paint(None, &[Stroke { radius: 2.0, points: vec![(3.0, 3.0)] }], 8, 6);
        let png = mask_png(&mask, 8, 6).unwrap();
        assert_eq!(read_mask("m.png", &png).unwrap(), (mask, 8, 6));
        assert_eq!(image_size("m.png", &png).unwrap(), (8, 6));
    }

    #[test]
    fn masks_are_checked_against_their_photo() {
        let photo = mask_png(&[false; 12], 4, 3).unwrap();
        assert!(check_mask("a_mask.png", &mask_png(&[true; 12], 4, 3).unwrap(), "a.png", &photo).is_ok());
        let wrong = check_mask("a_mask.png", &mask_png(&[true; 4], 2, 2).unwrap(), "a.png", &photo).unwrap_err();
        assert!(wrong.starts_with("a_mask.png: the mask is 2x2 but its photo a.png is 4x3"), "{wrong}");
        let not_image = check_mask("a_mask.png", b"hello", "a.png", &photo).unwrap_err();
        assert!(not_image.contains("a_mask.png") && not_image.contains("PNG"), "{not_image}");
    }

    #[test]
    fn masks_find_their_photo_by_name() {
        let photos = ["cell7.jpg", "cell17.png"];
        assert_eq!(mask_target("cell7.png", photos), Some("cell7.jpg"));
        assert_eq!(mask_target("cell7_mask.png", photos), Some("cell7.jpg"));
        assert_eq!(mask_target("Cell7_Mask.PNG", photos), Some("cell7.jpg"));
        assert_eq!(mask_target("cell1.png", photos), None);
    }
}
