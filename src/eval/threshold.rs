//! Threshold estimators.
//!
//! Every estimator answers "from which score on is a photo (or pixel) damaged?",
//! with the convention of [`super::metrics`]: `score >= threshold` is flagged.

use serde::{Deserialize, Serialize};

use super::metrics::{roc_curve, Curve, PixelSet};
use crate::engine::calibration_stats::mean_sd_max;
/// Training sets its first threshold with the same statistics, so they live in the engine.
pub use crate::engine::calibration_stats::normal_statistics;

/// Metric values closer than this are equal: rounding would otherwise break ties
/// arbitrarily (2/3 - 0 and 1 - 1/3 differ in the last bit), while two genuinely
/// different values of a ratio of counts differ by far more.
const TIE: f64 = 1e-12;

/// Thresholds tried on the pixel curves of [`ThresholdMethod::MaxIou`] and
/// [`ThresholdMethod::MaxF1`]; quantile-spaced, so 1000 resolve the optimum far
/// finer than the noise of a calibration set.
const PIXEL_CURVE_STEPS: usize = 1000;

/// How to choose the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ThresholdMethod {
    /// Best pixel IoU between flagged and marked damage (needs masks).
    MaxIou,
    /// Best pixel F1 / Dice between flagged and marked damage (needs masks).
    MaxF1,
    /// Best TPR - FPR over good and damaged photos' scores.
    Youden,
    /// Mean + k standard deviations of good photos' scores, never below the highest.
    NormalSigma { k: f32 },
    /// A percentile (0 to 100) of good photos' scores.
    NormalPercentile { percentile: f32 },
    /// The lowest threshold flagging at most this share (0 to 1) of good photos.
    FalsePositiveBudget { max_rate: f32 },
    /// A value chosen by hand.
    Manual { value: f32 },
}

/// The estimators offered by name, for the CLI's `--threshold-method` and the browser's
/// evaluation page, so both mean the same settings: (name, what it does, in a phrase).
pub const NAMED_METHODS: [(&str, &str); 6] = [
    ("max-iou", "best IoU with the marked damage (needs masks)"),
    ("max-f1", "best F1 with the marked damage (needs masks)"),
    ("youden", "best true minus false positive rate over photos"),
    ("sigma", "mean + 3\u{3c3} of good photos' scores"),
    ("percentile", "99th percentile of good photos' scores"),
    ("fp-budget", "flag at most 1% of good photos"),
];

impl ThresholdMethod {
    /// The estimator of [`NAMED_METHODS`] called `name`, with its settings.
    pub fn by_name(name: &str) -> Option<ThresholdMethod> {
        Some(match name {
            "max-iou" => ThresholdMethod::MaxIou,
            "max-f1" => ThresholdMethod::MaxF1,
            "youden" => ThresholdMethod::Youden,
            "sigma" => ThresholdMethod::NormalSigma { k: 3.0 },
            "percentile" => ThresholdMethod::NormalPercentile { percentile: 99.0 },
            "fp-budget" => ThresholdMethod::FalsePositiveBudget { max_rate: 0.01 },
            _ => return None,
        })
    }
}

/// What the estimators may draw on.
#[derive(Debug, Clone)]
pub struct CalibrationSet<'a> {
    /// Image scores of good photos.
    pub good_scores: Vec<f32>,
    /// Image scores of damaged photos.
    pub anomalous_scores: Vec<f32>,
    /// Anomaly maps and masks of calibration photos, good (all-false mask) and damaged.
    pub pixels: Option<PixelSet<'a>>,
}

/// A chosen threshold and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chosen {
    pub value: f32,
    pub method: ThresholdMethod,
    /// One sentence for a store clerk, with the numbers used.
    pub explanation: String,
    /// Share of the good calibration photos that this threshold flags; None without
    /// good photos' scores.
    pub expected_false_positive_rate: Option<f64>,
}

/// Chooses a threshold by `method` on `set`. The result is always a finite number;
/// when the method cannot apply to the data, the error says why in a sentence.
pub fn choose(method: &ThresholdMethod, set: &CalibrationSet) -> Result<Chosen, String> {
    if set.good_scores.iter().chain(&set.anomalous_scores).any(|s| s.is_nan()) {
        return Err("a calibration photo's score is not a number".into());
    }
    let (value, explanation) = match *method {
        ThresholdMethod::MaxIou => best_pixel_threshold(set, "IoU", PixelSet::iou_curve)?,
        ThresholdMethod::MaxF1 => best_pixel_threshold(set, "F1", PixelSet::f1_curve)?,
        ThresholdMethod::Youden => youden(&set.good_scores, &set.anomalous_scores)?,
        ThresholdMethod::NormalSigma { k } => normal_sigma(&set.good_scores, k)?,
        ThresholdMethod::NormalPercentile { percentile } => normal_percentile(&set.good_scores, percentile)?,
        ThresholdMethod::FalsePositiveBudget { max_rate } => false_positive_budget(&set.good_scores, max_rate)?,
        ThresholdMethod::Manual { value } => {
            if !value.is_finite() {
                return Err(format!("a threshold set by hand must be a finite number, got {value}"));
            }
            (value, format!("Set by hand to {}.", fmt_score(value)))
        }
    };
    if !value.is_finite() {
        return Err(format!("this method gave the threshold {value}, which cannot be used; the scores are probably out of range"));
    }
    Ok(Chosen { value, method: method.clone(), explanation, expected_false_positive_rate: flagged_share(&set.good_scores, value) })
}

/// Share of `scores` at or above `t`; None without scores.
fn flagged_share(scores: &[f32], t: f32) -> Option<f64> {
    if scores.is_empty() {
        return None;
    }
    Some(scores.iter().filter(|&&s| s >= t).count() as f64 / scores.len() as f64)
}

/// The pixel threshold maximising `name` on the curve `curve_of` draws.
fn best_pixel_threshold<'a>(
    set: &CalibrationSet<'a>,
    name: &str,
    curve_of: fn(&PixelSet<'a>, usize) -> Option<Curve>,
) -> Result<(f32, String), String> {
    let missing = || format!("maximum {name} needs damaged photos with masks; none were given — use normal-score statistics instead");
    let pixels = set.pixels.as_ref().ok_or_else(missing)?;
    pixels.validate().map_err(|e| format!("the calibration masks cannot be used: {e}"))?;
    let damaged = pixels.damaged_images();
    if damaged == 0 {
        return Err(missing());
    }
    let curve = curve_of(pixels, PIXEL_CURVE_STEPS).ok_or_else(missing)?;
    // Thresholds ascend; a tie replaces the best so far, keeping the highest of
    // equally good thresholds, the one with the fewest false alarms.
    let mut best: Option<(f32, f64)> = None;
    for (&t, &y) in curve.thresholds.iter().zip(&curve.y) {
        if best.is_none_or(|(_, b)| y >= b - TIE) {
            best = Some((t, y));
        }
    }
    let (t, y) = best.ok_or_else(missing)?;
    Ok((
        t,
        format!(
            "Maximum {name} ({y:.2}) between flagged and marked damage, over {} on {} with masks.",
            plural(curve.thresholds.len(), "threshold"),
            plural(damaged, "damaged photo"),
        ),
    ))
}

/// Youden's J on the image ROC curve: the threshold maximising TPR - FPR.
fn youden(good: &[f32], damaged: &[f32]) -> Result<(f32, String), String> {
    if good.is_empty() || damaged.is_empty() {
        return Err(format!(
            "Youden's index needs scores of both good and damaged photos; got {} and {}",
            plural(good.len(), "good photo"),
            plural(damaged.len(), "damaged photo")
        ));
    }
    let scores: Vec<f32> = good.iter().chain(damaged).copied().collect();
    let labels: Vec<bool> = good.iter().map(|_| false).chain(damaged.iter().map(|_| true)).collect();
    let roc = roc_curve(&scores, &labels).ok_or("the photos' scores could not be ranked")?;
    // Point 0 flags nothing and is not a score; the rest descend, so `>` keeps the
    // highest of equally good thresholds, the one with the fewest false alarms.
    let mut best: Option<(usize, f64)> = None;
    for i in 1..roc.thresholds.len() {
        let j = roc.y[i] - roc.x[i];
        if best.is_none_or(|(_, b)| j > b + TIE) {
            best = Some((i, j));
        }
    }
    let (i, j) = best.ok_or("the photos' scores could not be ranked")?;
    Ok((
        roc.thresholds[i],
        format!(
            "Best separation of {} and {} (Youden's J {j:.2}): {} of the damaged and {} of the good ones score at or above it.",
            plural(good.len(), "good photo"),
            plural(damaged.len(), "damaged photo"),
            percent(roc.y[i]),
            percent(roc.x[i]),
        ),
    ))
}

fn normal_sigma(good: &[f32], k: f32) -> Result<(f32, String), String> {
    if !k.is_finite() {
        return Err(format!("the number of standard deviations must be a finite number, got {k}"));
    }
    let t = normal_statistics(good, k)?;
    let (mean, sd, max) = mean_sd_max(good)?;
    let raised = if t == max && ((mean + k as f64 * sd) as f32) < max {
        format!(", raised to the highest good score {}", fmt_score(max))
    } else {
        String::new()
    };
    Ok((
        t,
        format!(
            "Mean ({}) plus {k} standard deviations ({}) of {}' scores{raised}.",
            fmt_score(mean as f32),
            fmt_score(sd as f32),
            plural(good.len(), "good photo"),
        ),
    ))
}

/// Percentile with linear interpolation between order statistics (NumPy's default).
fn normal_percentile(good: &[f32], percentile: f32) -> Result<(f32, String), String> {
    if !(0.0..=100.0).contains(&percentile) {
        return Err(format!("a percentile must be between 0 and 100, got {percentile}"));
    }
    if good.len() < 2 {
        return Err(format!("a percentile of good scores needs at least 2 good photos, got {}", good.len()));
    }
    let mut sorted = good.to_vec();
    sorted.sort_unstable_by(f32::total_cmp);
    let pos = f64::from(percentile) / 100.0 * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = pos - lo as f64;
    let (a, b) = (f64::from(sorted[lo]), f64::from(sorted[hi]));
    let t = if frac == 0.0 { sorted[lo] } else { (a + frac * (b - a)) as f32 };
    Ok((t, format!("The {} percentile of {}' scores.", ordinal_f32(percentile), plural(good.len(), "good photo"))))
}

/// The lowest threshold flagging at most `max_rate` of the good photos.
fn false_positive_budget(good: &[f32], max_rate: f32) -> Result<(f32, String), String> {
    if !(0.0..1.0).contains(&max_rate) {
        return Err(format!("the share of good photos allowed to be flagged must be at least 0 and below 1, got {max_rate}"));
    }
    if good.is_empty() {
        return Err("a false-alarm budget needs good photos' scores; none were given".into());
    }
    let n = good.len();
    // The allowed count m is the largest with m / n <= max_rate, compared in f32:
    // 0.7 as f32 is a hair below 7/10, and a user asking for 70% of 10 means 7.
    let share = |m: usize| (m as f64 / n as f64) as f32;
    let mut allowed = ((f64::from(max_rate) * n as f64).floor() as usize).min(n - 1);
    while allowed + 1 < n && share(allowed + 1) <= max_rate {
        allowed += 1;
    }
    while allowed > 0 && share(allowed) > max_rate {
        allowed -= 1;
    }
    let mut sorted = good.to_vec();
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    // Any t <= sorted[allowed] flags allowed + 1 photos or more; the next f32 above it
    // is the lowest that does not (ties with it only lower the count).
    let pivot = sorted[allowed];
    let t = pivot.next_up();
    let flagged = good.iter().filter(|&&s| s >= t).count();
    Ok((
        t,
        format!(
            "Lowest threshold that flags at most {} of the {} ({flagged} of them here): just above the {} highest good score, {}.",
            percent(f64::from(max_rate)),
            plural(n, "good photo"),
            ordinal(allowed + 1),
            fmt_score(pivot),
        ),
    ))
}

/// A score with about 4 significant digits, for sentences.
fn fmt_score(v: f32) -> String {
    let magnitude = if v == 0.0 { 0 } else { v.abs().log10().floor() as i32 };
    let decimals = (3 - magnitude).clamp(0, 6) as usize;
    format!("{v:.decimals$}")
}

fn percent(share: f64) -> String {
    let p = share * 100.0;
    if (p - p.round()).abs() < 1e-6 {
        format!("{}%", p.round())
    } else {
        format!("{p:.1}%")
    }
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// "99th" for whole percentiles, "99.5th" otherwise.
fn ordinal_f32(p: f32) -> String {
    if p.fract() == 0.0 {
        ordinal(p as usize)
    } else {
        format!("{p}th")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scores_only(good: &[f32], damaged: &[f32]) -> CalibrationSet<'static> {
        CalibrationSet { good_scores: good.to_vec(), anomalous_scores: damaged.to_vec(), pixels: None }
    }

    #[test]
    fn normal_sigma_delegates_and_explains() {
        let set = scores_only(&[1.0, 2.0, 3.0], &[]);
        let c = choose(&ThresholdMethod::NormalSigma { k: 3.0 }, &set).unwrap();
        assert!((c.value - 5.0).abs() < 1e-6);
        assert_eq!(c.expected_false_positive_rate, Some(0.0));
        assert_eq!(c.explanation, "Mean (2.000) plus 3 standard deviations (1.000) of 3 good photos' scores.");
        let raised = choose(&ThresholdMethod::NormalSigma { k: 0.0 }, &scores_only(&[1.0, 1.0, 1.0, 9.0], &[])).unwrap();
        assert_eq!(raised.value, 9.0);
        assert!(raised.explanation.contains("raised to the highest good score 9.000"));
        assert_eq!(raised.expected_false_positive_rate, Some(0.25));
        assert!(choose(&ThresholdMethod::NormalSigma { k: f32::NAN }, &set).is_err());
        assert!(choose(&ThresholdMethod::NormalSigma { k: 3.0 }, &scores_only(&[1.0], &[])).is_err());
    }

    #[test]
    fn percentile_interpolates_linearly() {
        let set = scores_only(&[5.0, 1.0, 4.0, 2.0, 3.0], &[]);
        let at = |p| choose(&ThresholdMethod::NormalPercentile { percentile: p }, &set).unwrap();
        // Position 0.9 * 4 = 3.6 between 4 and 5.
        assert!((at(90.0).value - 4.6).abs() < 1e-6);
        assert_eq!(at(50.0).value, 3.0);
        assert_eq!(at(0.0).value, 1.0);
        assert_eq!(at(100.0).value, 5.0);
        assert_eq!(at(90.0).expected_false_positive_rate, Some(0.2));
        assert_eq!(at(50.0).expected_false_positive_rate, Some(0.6));
        assert_eq!(at(99.0).explanation, "The 99th percentile of 5 good photos' scores.");
        assert!(choose(&ThresholdMethod::NormalPercentile { percentile: 101.0 }, &set).is_err());
        assert!(choose(&ThresholdMethod::NormalPercentile { percentile: f32::NAN }, &set).is_err());
        let one = scores_only(&[1.0], &[]);
        assert!(choose(&ThresholdMethod::NormalPercentile { percentile: 99.0 }, &one).unwrap_err().contains("at least 2"));
    }

    #[test]
    fn false_positive_budget_sits_just_above_an_order_statistic() {
        let good: Vec<f32> = (1..=10).map(|v| v as f32).collect();
        let set = scores_only(&good, &[]);
        let at = |r| choose(&ThresholdMethod::FalsePositiveBudget { max_rate: r }, &set).unwrap();
        // 20% of 10: scores 9 and 10 may be flagged, 8 must not.
        let c = at(0.2);
        assert_eq!(c.value, 8.0f32.next_up());
        assert_eq!(c.expected_false_positive_rate, Some(0.2));
        assert!(c.explanation.contains("just above the 3rd highest good score, 8.000"), "{}", c.explanation);
        assert_eq!(at(0.0).value, 10.0f32.next_up());
        assert_eq!(at(0.0).expected_false_positive_rate, Some(0.0));
        // 0.7 as f32 is just below 0.7: still 7 of 10.
        assert_eq!(at(0.7).value, 3.0f32.next_up());
        assert_eq!(at(0.7).expected_false_positive_rate, Some(0.7));
        // 25% of 10 allows 2, not 3.
        assert_eq!(at(0.25).value, 8.0f32.next_up());
        assert_eq!(at(0.999).value, 1.0f32.next_up());

        // Ties never push the count over the budget: 50% of 5 allows 2, but the next
        // score down is a triple, so only the 3 is flagged.
        let tied = scores_only(&[1.0, 2.0, 2.0, 2.0, 3.0], &[]);
        let c = choose(&ThresholdMethod::FalsePositiveBudget { max_rate: 0.5 }, &tied).unwrap();
        assert_eq!((c.value, c.expected_false_positive_rate), (2.0f32.next_up(), Some(0.2)));
        // Negative and zero scores: the next f32 up, whatever the sign.
        let neg = scores_only(&[-3.0, -2.0, -1.0], &[]);
        let c = choose(&ThresholdMethod::FalsePositiveBudget { max_rate: 0.0 }, &neg).unwrap();
        assert!(c.value > -1.0 && c.value < -0.999_999);
        let zero = scores_only(&[-0.0, -1.0], &[]);
        let c = choose(&ThresholdMethod::FalsePositiveBudget { max_rate: 0.0 }, &zero).unwrap();
        assert!(c.value > 0.0 && c.expected_false_positive_rate == Some(0.0));

        assert!(choose(&ThresholdMethod::FalsePositiveBudget { max_rate: 1.0 }, &set).is_err());
        assert!(choose(&ThresholdMethod::FalsePositiveBudget { max_rate: -0.1 }, &set).is_err());
        assert!(choose(&ThresholdMethod::FalsePositiveBudget { max_rate: 0.1 }, &scores_only(&[], &[1.0])).is_err());
        // The highest good score is f32::MAX: no finite threshold is above it.
        let huge = scores_only(&[f32::MAX, 1.0], &[]);
        assert!(choose(&ThresholdMethod::FalsePositiveBudget { max_rate: 0.0 }, &huge).is_err());
    }

    #[test]
    fn youden_maximises_tpr_minus_fpr() {
        // At 4: TPR 3/4, FPR 0 -> J 0.75; at 2.5: TPR 1, FPR 1/3 -> 0.67; at 5: 0.5.
        let set = scores_only(&[1.0, 2.0, 3.0], &[2.5, 4.0, 5.0, 6.0]);
        let c = choose(&ThresholdMethod::Youden, &set).unwrap();
        assert_eq!(c.value, 4.0);
        assert_eq!(c.expected_false_positive_rate, Some(0.0));
        assert_eq!(
            c.explanation,
            "Best separation of 3 good photos and 4 damaged photos (Youden's J 0.75): 75% of the damaged and 0% of the good ones score at or above it."
        );
        // Equal J at 4 (2/3 - 0) and 2.5 (1 - 1/3): the higher threshold.
        let tie = scores_only(&[1.0, 2.0, 3.0], &[2.5, 4.0, 5.0]);
        assert_eq!(choose(&ThresholdMethod::Youden, &tie).unwrap().value, 4.0);
        assert!(choose(&ThresholdMethod::Youden, &scores_only(&[1.0], &[])).unwrap_err().contains("both"));
        assert!(choose(&ThresholdMethod::Youden, &scores_only(&[1.0, f32::NAN], &[2.0])).is_err());
    }

    #[test]
    fn max_iou_and_f1_from_pixel_curves() {
        // Damaged photo: at 0.5 TP 2, FP 1 (0.6), FN 0 -> IoU 2/3, F1 0.8, the best.
        // Good photo all at 0.2, below every useful threshold.
        let (map, mask) = ([0.9f32, 0.5, 0.1, 0.6], [true, true, false, false]);
        let (good_map, good_mask) = ([0.2f32; 4], [false; 4]);
        let set = CalibrationSet {
            good_scores: vec![0.2, 0.55],
            anomalous_scores: vec![0.9],
            pixels: Some(PixelSet { maps: vec![&map, &good_map], masks: vec![&mask, &good_mask], width: 2, height: 2 }),
        };
        let iou = choose(&ThresholdMethod::MaxIou, &set).unwrap();
        assert_eq!(iou.value, 0.5);
        assert_eq!(iou.expected_false_positive_rate, Some(0.5));
        assert_eq!(
            iou.explanation,
            "Maximum IoU (0.67) between flagged and marked damage, over 5 thresholds on 1 damaged photo with masks."
        );
        let f1 = choose(&ThresholdMethod::MaxF1, &set).unwrap();
        assert_eq!(f1.value, 0.5);
        assert!(f1.explanation.starts_with("Maximum F1 (0.80)"));

        let no_pixels = scores_only(&[1.0, 2.0], &[3.0]);
        let err = choose(&ThresholdMethod::MaxIou, &no_pixels).unwrap_err();
        assert_eq!(err, "maximum IoU needs damaged photos with masks; none were given — use normal-score statistics instead");
        let only_good = CalibrationSet {
            pixels: Some(PixelSet { maps: vec![&good_map], masks: vec![&good_mask], width: 2, height: 2 }),
            ..no_pixels.clone()
        };
        assert!(choose(&ThresholdMethod::MaxF1, &only_good).unwrap_err().contains("needs damaged photos"));
        let broken =
            CalibrationSet { pixels: Some(PixelSet { maps: vec![&map[..3]], masks: vec![&mask], width: 2, height: 2 }), ..no_pixels };
        assert!(choose(&ThresholdMethod::MaxIou, &broken).unwrap_err().contains("cannot be used"));
    }

    #[test]
    fn manual_must_be_finite() {
        let set = scores_only(&[1.0, 2.0, 3.0, 4.0], &[]);
        let c = choose(&ThresholdMethod::Manual { value: 2.5 }, &set).unwrap();
        assert_eq!((c.value, c.expected_false_positive_rate), (2.5, Some(0.5)));
        assert_eq!(c.explanation, "Set by hand to 2.500.");
        assert_eq!(choose(&ThresholdMethod::Manual { value: 1.0 }, &scores_only(&[], &[])).unwrap().expected_false_positive_rate, None);
        for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            assert!(choose(&ThresholdMethod::Manual { value: bad }, &set).is_err());
        }
    }

    #[test]
    fn methods_round_trip_through_json() {
        for m in [ThresholdMethod::MaxIou, ThresholdMethod::NormalSigma { k: 3.0 }, ThresholdMethod::FalsePositiveBudget { max_rate: 0.05 }]
        {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(serde_json::from_str::<ThresholdMethod>(&json).unwrap(), m);
        }
    }

    #[test]
    fn explanation_numbers_read_well() {
        assert_eq!(fmt_score(0.012345), "0.01235");
        assert_eq!(fmt_score(123.456), "123.5");
        assert_eq!(fmt_score(0.0), "0.000");
        assert_eq!(percent(0.05), "5%");
        assert_eq!(percent(1.0 / 3.0), "33.3%");
        assert_eq!((ordinal(1), ordinal(2), ordinal(11), ordinal(23)), ("1st".into(), "2nd".into(), "11th".into(), "23rd".into()));
    }
}
