//! The twofold report: threshold-free and threshold-dependent metrics, overall and by
//! product-agnostic defect category. Pure, so the CLI and the browser share it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::dataset::{Category, Sample};
use super::metrics::{auroc, average_precision, false_alarms_at_sensitivity, image_accuracy, pr_curve, roc_curve, Curve, PixelSet};
use super::threshold::CalibrationSet;
use crate::engine::image_ops::decode_rgb;
use crate::engine::postprocess::AnomalyMap;

/// AUPRO integrates the PRO curve up to this false-positive rate (MVTec convention).
pub const AUPRO_MAX_FPR: f64 = 0.3;
const CURVE_STEPS: usize = 1000;
/// Damaged images per defect type taken out of the test set to choose the threshold on,
/// when a threshold estimator is asked for (the CLI's `--calibrate` default, the page's).
pub const CALIBRATION_PER_DEFECT: usize = 2;

/// One evaluated image. `map` and `mask` are square, `map_size` on a side.
#[derive(Debug, Clone)]
pub struct EvalItem {
    pub path: String,
    pub anomalous: bool,
    pub category: Option<Category>,
    pub score: f32,
    pub map: Vec<f32>,
    /// Ground truth; for good images all false. None when it could not be read.
    pub mask: Option<Vec<bool>>,
}

/// Metric names are the keys of the JSON report (and of the browser's export).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(non_snake_case)]
pub struct Metrics {
    pub images: usize,
    pub anomalous: usize,
    pub image_AUROC: Option<f64>,
    pub image_AP: Option<f64>,
    pub pixel_AUROC: Option<f64>,
    pub pixel_AUPRO: Option<f64>,
    /// At the chosen threshold:
    pub pixel_IoU: Option<f64>,
    pub pixel_F1: Option<f64>,
    pub pixel_precision: Option<f64>,
    pub pixel_recall: Option<f64>,
    pub pixel_FPR: Option<f64>,
    pub image_accuracy: Option<f64>,
    /// The best IoU over all thresholds: what a perfectly calibrated threshold would give.
    pub pixel_best_IoU: Option<f64>,
    /// Share of the photos in the CHECK band (from `check_from` up to the threshold):
    /// those a person looks at. None without a band.
    #[serde(default)]
    pub check_share: Option<f64>,
    /// Share of the damaged photos judged OK (below the CHECK band, or the threshold
    /// without one): the misses nobody looks at again.
    #[serde(default)]
    pub damaged_passed_as_ok: Option<f64>,
    /// Share of the good photos flagged at the threshold that catches 95% of the damaged
    /// ones, whatever threshold was chosen: what catching nearly all damage costs.
    #[serde(default)]
    pub false_alarms_at_95: Option<f64>,
    /// Image AUROC if each photo's score were the maximum of the map shown: the same as
    /// `image_AUROC` unless a damage head was fused into the maps (whose scores stay the
    /// anomaly model's); then it says how the fused maps would rank photos.
    #[serde(default)]
    pub shown_map_AUROC: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub threshold: f32,
    pub threshold_method: String,
    /// Where the CHECK band begins, when there is one.
    #[serde(default)]
    pub check_from: Option<f32>,
    /// Wall-clock figures of the run that produced the report, when measured.
    #[serde(default)]
    pub timing: Option<Timing>,
    /// The method that scored the photos, and why it was chosen when it was chosen
    /// automatically; absent in reports made before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method_why: Option<String>,
    #[serde(flatten)]
    pub overall: Metrics,
    pub categories: BTreeMap<String, Metrics>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub training_images: usize,
    pub training_seconds: f64,
    pub inspect_ms_per_image: f64,
}

/// The pixel-level data of the items that have a ground-truth mask.
pub fn pixel_set<'a>(items: impl IntoIterator<Item = &'a EvalItem>, map_size: usize) -> PixelSet<'a> {
    let (maps, masks) = items
        .into_iter()
        .filter(|i| i.map.len() == map_size * map_size)
        .filter_map(|i| i.mask.as_deref().map(|m| (i.map.as_slice(), m)))
        .unzip();
    PixelSet { maps, masks, width: map_size, height: map_size }
}

impl EvalItem {
    /// A good photo that training held out, scored by a model fitted without it, as a
    /// calibration sample (no damaged pixel): what a threshold must be chosen on, since a
    /// photo the model was fitted on scores lower than a new one would.
    pub fn held_out_good(i: usize, map: AnomalyMap) -> EvalItem {
        EvalItem {
            path: format!("held-out good photo {}", i + 1),
            anomalous: false,
            category: None,
            score: map.max(),
            mask: Some(vec![false; map.values.len()]),
            map: map.values,
        }
    }
}

/// Image scores and pixel maps of calibration images, for the threshold estimators.
pub fn calibration_set(items: &[EvalItem], map_size: usize) -> CalibrationSet<'_> {
    CalibrationSet {
        good_scores: items.iter().filter(|i| !i.anomalous).map(|i| i.score).collect(),
        anomalous_scores: items.iter().filter(|i| i.anomalous).map(|i| i.score).collect(),
        pixels: Some(pixel_set(items, map_size)),
    }
}

/// A ground-truth mask (any image; bright = damaged) at the anomaly map's resolution.
/// It must have the photo's size, or it would mark the wrong pixels.
pub fn mask_on_map(file: &str, bytes: &[u8], image_size: (u32, u32), size: u32) -> Result<Vec<bool>, String> {
    let mask = image::DynamicImage::ImageRgb8(decode_rgb(file, bytes).map_err(|e| e.to_string())?).to_luma8();
    if mask.dimensions() != image_size {
        return Err(format!(
            "{file}: the mask is {}x{} but its photo {}x{}; give a mask of the photo's size",
            mask.width(),
            mask.height(),
            image_size.0,
            image_size.1
        ));
    }
    let resized = image::imageops::resize(&mask, size, size, image::imageops::FilterType::Nearest);
    Ok(resized.pixels().map(|p| p.0[0] > 127).collect())
}

fn metrics(items: &[&EvalItem], map_size: usize, threshold: f32, check_from: Option<f32>) -> Metrics {
    let scores: Vec<f32> = items.iter().map(|i| i.score).collect();
    let labels: Vec<bool> = items.iter().map(|i| i.anomalous).collect();
    let pixels = pixel_set(items.iter().copied(), map_size);
    let usable = !pixels.maps.is_empty() && pixels.validate().is_ok() && pixels.damaged_images() > 0;
    let at = usable.then(|| pixels.at_threshold(threshold));
    Metrics {
        images: items.len(),
        anomalous: labels.iter().filter(|l| **l).count(),
        image_AUROC: auroc(&scores, &labels),
        image_AP: average_precision(&scores, &labels),
        pixel_AUROC: usable.then(|| pixels.pixel_auroc()).flatten(),
        pixel_AUPRO: usable.then(|| pixels.aupro(AUPRO_MAX_FPR)).flatten(),
        pixel_IoU: at.map(|a| a.iou),
        pixel_F1: at.map(|a| a.f1),
        pixel_precision: at.map(|a| a.precision),
        pixel_recall: at.map(|a| a.recall),
        pixel_FPR: at.map(|a| a.fpr),
        image_accuracy: image_accuracy(&scores, &labels, threshold),
        pixel_best_IoU: usable.then(|| pixels.iou_curve(CURVE_STEPS)).flatten().and_then(|c| c.y.into_iter().reduce(f64::max)),
        check_share: check_from.and_then(|from| share(items.iter().map(|i| i.score >= from && i.score < threshold))),
        damaged_passed_as_ok: share(items.iter().filter(|i| i.anomalous).map(|i| i.score < check_from.unwrap_or(threshold).min(threshold))),
        false_alarms_at_95: false_alarms_at_sensitivity(&scores, &labels, 0.95),
        shown_map_AUROC: auroc(&items.iter().map(|i| i.map.iter().copied().fold(f32::NEG_INFINITY, f32::max)).collect::<Vec<_>>(), &labels),
    }
}

/// The share of `true`s; None for none at all.
fn share(flags: impl Iterator<Item = bool>) -> Option<f64> {
    let (yes, n) = flags.fold((0usize, 0usize), |(yes, n), f| (yes + usize::from(f), n + 1));
    (n > 0).then(|| yes as f64 / n as f64)
}

/// The report over all items and, per category, over the good items plus that
/// category's damaged ones.
pub fn report(items: &[EvalItem], map_size: usize, threshold: f32, check_from: Option<f32>, threshold_method: &str) -> Report {
    let all: Vec<&EvalItem> = items.iter().collect();
    let mut categories = BTreeMap::new();
    for category in Category::ALL {
        let subset: Vec<&EvalItem> = items.iter().filter(|i| !i.anomalous || i.category == Some(category)).collect();
        if subset.iter().any(|i| i.anomalous) {
            categories.insert(category.to_string(), metrics(&subset, map_size, threshold, check_from));
        }
    }
    Report {
        threshold,
        threshold_method: threshold_method.to_string(),
        check_from,
        timing: None,
        method: None,
        method_why: None,
        overall: metrics(&all, map_size, threshold, check_from),
        categories,
    }
}

/// The per-image scores as CSV: `path,label,category,score` (label 1 = anomalous).
pub fn scores_csv(items: &[EvalItem]) -> String {
    let mut out = String::from("path,label,category,score\n");
    for i in items {
        let path = if i.path.contains([',', '"', '\n']) { format!("\"{}\"", i.path.replace('"', "\"\"")) } else { i.path.clone() };
        let category = i.category.map(|c| c.to_string()).unwrap_or_else(|| if i.anomalous { "unknown".into() } else { "good".into() });
        out.push_str(&format!("{path},{},{category},{}\n", u8::from(i.anomalous), i.score));
    }
    out
}

/// Splits the test set for a threshold estimator: the validation split plus the first
/// `per_defect` damaged samples with a mask of each defect type choose the threshold
/// (returned first); the rest is judged, so the threshold is never chosen on what it is
/// judged on. The CLI and the browser split the same way, so they report the same numbers.
/// `unmasked`: damaged samples without a mask are taken too (a damage head learns from
/// them; most threshold estimators need masks).
pub fn split_calibration(test: &[Sample], validation: &[Sample], per_defect: usize, unmasked: bool) -> (Vec<Sample>, Vec<Sample>) {
    let mut calibration = validation.to_vec();
    let mut judged = Vec::with_capacity(test.len());
    let mut taken = BTreeMap::<&str, usize>::new();
    for s in test {
        let n = taken.entry(s.defect.as_str()).or_default();
        if s.anomalous && (unmasked || s.mask.is_some()) && *n < per_defect {
            *n += 1;
            calibration.push(s.clone());
        } else {
            judged.push(s.clone());
        }
    }
    (calibration, judged)
}

/// A curve to draw: what it shows and its points (x, y).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlotLine {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

impl PlotLine {
    /// Keeps a point only where the curve has moved at least `step` (in x plus y) since
    /// the last kept one, and always the last: a pixel curve has a point per distinct
    /// score (millions), a chart needs a few hundred, and thinning by distance rather
    /// than by index keeps the detail where the curve turns.
    fn thinned(label: impl Into<String>, curve: &Curve, step: f64) -> PlotLine {
        let mut points: Vec<(f64, f64)> = Vec::new();
        let last = curve.x.len().saturating_sub(1);
        for (i, (&x, &y)) in curve.x.iter().zip(&curve.y).enumerate() {
            let far = points.last().is_none_or(|&(px, py)| (x - px).abs() + (y - py).abs() >= step);
            if far || i == last {
                points.push((x, y));
            }
        }
        PlotLine { label: label.into(), points }
    }
}

/// The curves behind the report: image-level ROC and precision-recall, overall and per
/// category (same subsets as [`report`]), and the pixel-level PRO curve when masks allow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportCurves {
    pub image_roc: Vec<PlotLine>,
    pub image_pr: Vec<PlotLine>,
    pub pixel_pro: Option<PlotLine>,
}

/// Thinning step of [`report_curves`]: at most about 2 / step points per curve.
const PLOT_STEP: f64 = 0.005;

pub fn report_curves(items: &[EvalItem], map_size: usize) -> ReportCurves {
    let mut subsets: Vec<(String, Vec<&EvalItem>)> = vec![("overall".into(), items.iter().collect())];
    for category in Category::ALL {
        let subset: Vec<&EvalItem> = items.iter().filter(|i| !i.anomalous || i.category == Some(category)).collect();
        if subset.iter().any(|i| i.anomalous) && subset.iter().any(|i| !i.anomalous) {
            subsets.push((category.to_string(), subset));
        }
    }
    let (mut image_roc, mut image_pr) = (Vec::new(), Vec::new());
    for (label, subset) in &subsets {
        let scores: Vec<f32> = subset.iter().map(|i| i.score).collect();
        let labels: Vec<bool> = subset.iter().map(|i| i.anomalous).collect();
        if let Some(c) = roc_curve(&scores, &labels) {
            image_roc.push(PlotLine::thinned(label.as_str(), &c, PLOT_STEP));
        }
        if let Some(c) = pr_curve(&scores, &labels) {
            image_pr.push(PlotLine::thinned(label.as_str(), &c, PLOT_STEP));
        }
    }
    let pixels = pixel_set(items, map_size);
    let pixel_pro =
        (pixels.damaged_images() > 0).then(|| pixels.pro_curve()).flatten().map(|c| PlotLine::thinned("overall", &c, PLOT_STEP));
    ReportCurves { image_roc, image_pr, pixel_pro }
}

/// The cases to look at first: the good items scoring highest (false alarms, or nearly)
/// and the damaged items scoring lowest (misses, or nearly), up to `per_side` of each,
/// worst first.
pub fn worst_cases(items: &[EvalItem], per_side: usize) -> Vec<&EvalItem> {
    let mut good: Vec<&EvalItem> = items.iter().filter(|i| !i.anomalous).collect();
    let mut damaged: Vec<&EvalItem> = items.iter().filter(|i| i.anomalous).collect();
    good.sort_by(|a, b| b.score.total_cmp(&a.score));
    damaged.sort_by(|a, b| a.score.total_cmp(&b.score));
    good.into_iter().take(per_side).chain(damaged.into_iter().take(per_side)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(anomalous: bool, category: Option<Category>, score: f32, hot: Option<usize>) -> EvalItem {
        // 2x2 maps: the damaged pixel (if any) is `hot`, and the map marks it with `score`.
        let mut map = vec![0.1; 4];
        let mut mask = vec![false; 4];
        if let Some(p) = hot {
            map[p] = score;
            mask[p] = true;
        }
        EvalItem {
            path: format!("img{score}.png"),
            anomalous,
            category,
            score: map.iter().copied().fold(0.0, f32::max),
            map,
            mask: Some(mask),
        }
    }

    #[test]
    fn perfect_separation_gives_perfect_metrics_overall_and_per_category() {
        let items = vec![
            item(false, None, 0.1, None),
            item(false, None, 0.1, None),
            item(true, Some(Category::Structural), 0.9, Some(0)),
            item(true, Some(Category::Surface), 0.8, Some(3)),
        ];
        let r = report(&items, 2, 0.5, None, "manual");
        assert_eq!(r.overall.image_AUROC, Some(1.0));
        assert_eq!(r.overall.pixel_AUROC, Some(1.0));
        assert_eq!(r.overall.pixel_IoU, Some(1.0));
        assert_eq!(r.overall.image_accuracy, Some(1.0));
        assert_eq!(r.categories.keys().collect::<Vec<_>>(), vec!["structural", "surface"]);
        assert_eq!(r.categories["surface"].images, 3);
        let json = serde_json::to_value(&r).unwrap();
        for key in [
            "image_AUROC",
            "pixel_AUROC",
            "pixel_AUPRO",
            "image_AP",
            "pixel_IoU",
            "pixel_F1",
            "pixel_precision",
            "pixel_recall",
            "image_accuracy",
        ] {
            assert!(json.get(key).is_some(), "{key} missing at the top level");
            assert!(json["categories"]["structural"].get(key).is_some(), "{key} missing per category");
        }
    }

    #[test]
    fn a_threshold_too_high_misses_everything() {
        let items = vec![item(false, None, 0.1, None), item(true, Some(Category::Combined), 0.9, Some(1))];
        let r = report(&items, 2, 5.0, None, "manual");
        assert_eq!(r.overall.pixel_recall, Some(0.0));
        assert_eq!(r.overall.image_accuracy, Some(0.5));
        assert_eq!(r.overall.pixel_best_IoU, Some(1.0));
        assert_eq!((r.overall.check_share, r.overall.damaged_passed_as_ok), (None, Some(1.0)));
    }

    #[test]
    fn the_check_band_counts_the_photos_a_person_looks_at() {
        // Scores 0.1 (good), 0.4 (good), 0.6 (damaged), 0.9 (damaged); CHECK from 0.3 to 0.8.
        let items = vec![scored(false, 0.1), scored(false, 0.4), scored(true, 0.6), scored(true, 0.9)];
        let r = report(&items, 2, 0.8, Some(0.3), "manual");
        assert_eq!(r.overall.check_share, Some(0.5));
        assert_eq!(r.overall.damaged_passed_as_ok, Some(0.0));
        assert_eq!(r.check_from, Some(0.3));
        // Narrower band: the damaged 0.6 now passes as OK.
        assert_eq!(report(&items, 2, 0.8, Some(0.7), "manual").overall.damaged_passed_as_ok, Some(0.5));
    }

    #[test]
    fn scores_csv_quotes_awkward_paths() {
        let mut a = item(true, Some(Category::Surface), 0.9, Some(0));
        a.path = "test/scratch/a,b.png".into();
        let csv = scores_csv(&[a, item(false, None, 0.1, None)]);
        assert_eq!(csv.lines().nth(1).unwrap(), "\"test/scratch/a,b.png\",1,surface,0.9");
        assert_eq!(csv.lines().nth(2).unwrap(), "img0.1.png,0,good,0.1");
    }
    /// An item with only an image score (its map is flat at that score).
    fn scored(anomalous: bool, score: f32) -> EvalItem {
        let category = anomalous.then_some(Category::Surface);
        EvalItem { path: format!("img{score}.png"), anomalous, category, score, map: vec![score; 4], mask: Some(vec![anomalous; 4]) }
    }

    fn sample(path: &str, defect: &str, mask: bool) -> Sample {
        Sample {
            path: path.into(),
            anomalous: defect != "good",
            defect: defect.into(),
            mask: mask.then(|| format!("{path}.mask")),
            category: (defect != "good").then_some(Category::Structural),
            background: None,
        }
    }

    #[test]
    fn calibration_takes_a_few_masked_damaged_samples_per_defect() {
        let test = vec![
            sample("g1", "good", false),
            sample("c1", "crack", true),
            sample("c2", "crack", false),
            sample("c3", "crack", true),
            sample("c4", "crack", true),
            sample("h1", "hole", true),
        ];
        let (calibration, judged) = split_calibration(&test, &[sample("v1", "good", false)], 2, false);
        let names = |v: &[Sample]| v.iter().map(|s| s.path.clone()).collect::<Vec<_>>();
        assert_eq!(names(&calibration), ["v1", "c1", "c3", "h1"]);
        assert_eq!(names(&judged), ["g1", "c2", "c4"]);
        // For a damage head, damaged samples without masks count too.
        let (calibration, judged) = split_calibration(&test, &[], 2, true);
        assert_eq!(
            (names(&calibration), names(&judged)),
            (vec!["c1".to_string(), "c2".into(), "h1".into()], vec!["g1".to_string(), "c3".into(), "c4".into()])
        );
    }

    #[test]
    fn curves_are_thinned_but_keep_their_ends() {
        let n = 5000;
        let items: Vec<EvalItem> =
            (0..n).map(|i| scored(i % 2 == 0, (i as f32 * 0.37).sin() + if i % 2 == 0 { 0.3 } else { 0.0 })).collect();
        let curves = report_curves(&items, 2);
        let roc = &curves.image_roc[0];
        assert_eq!(roc.label, "overall");
        assert!(roc.points.len() <= 2 + (2.0 / PLOT_STEP) as usize, "{} points", roc.points.len());
        assert!(roc.points.len() > 50, "{} points", roc.points.len());
        assert_eq!(roc.points.first(), Some(&(0.0, 0.0)));
        assert_eq!(roc.points.last(), Some(&(1.0, 1.0)));
        assert_eq!(curves.image_roc.iter().map(|l| l.label.as_str()).collect::<Vec<_>>(), ["overall", "surface"]);
        assert!(curves.pixel_pro.as_ref().is_some_and(|l| l.points.len() > 2));
    }

    #[test]
    fn worst_cases_are_the_highest_good_and_the_lowest_damaged() {
        let items = vec![scored(false, 0.2), scored(false, 0.7), scored(false, 0.4), scored(true, 0.9), scored(true, 0.3)];
        let worst: Vec<f32> = worst_cases(&items, 2).iter().map(|i| i.score).collect();
        assert_eq!(worst, [0.7, 0.4, 0.3, 0.9]);
    }
}
