//! Threshold-free and threshold-dependent metrics of the twofold evaluation.
//!
//! Conventions shared by every function here:
//! - a higher score means more anomalous, and a label `true` means anomalous;
//! - a sample is called anomalous at threshold `t` when `score >= t`;
//! - an anomaly map is `width * height` values in row-major order, its mask the
//!   same number of booleans (`true` = damaged pixel).
//!
//! Ratios that would be 0/0 count as perfect (1.0), with one exception, the false
//! positive rate, which is 0.0: in each case there was nothing that could have been
//! got wrong. See [`AtThreshold`].

use serde::{Deserialize, Serialize};

/// A curve for plotting, one point per threshold. `x`, `y` and `thresholds` have the
/// same length; point `i` is what "score >= `thresholds[i]`" gives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    pub x: Vec<f64>,
    pub y: Vec<f64>,
    pub thresholds: Vec<f32>,
}

impl Curve {
    fn with_capacity(n: usize) -> Self {
        Curve { x: Vec::with_capacity(n), y: Vec::with_capacity(n), thresholds: Vec::with_capacity(n) }
    }

    fn push(&mut self, x: f64, y: f64, threshold: f32) {
        self.x.push(x);
        self.y.push(y);
        self.thresholds.push(threshold);
    }
}

/// Confusion counts at every distinct score, from the highest score down: at
/// `thresholds[i]`, `tp[i]` anomalous and `fp[i]` normal samples are flagged.
/// Built by one sort; every threshold-sweeping metric reads it.
struct Sweep {
    thresholds: Vec<f32>,
    tp: Vec<u64>,
    fp: Vec<u64>,
}

impl Sweep {
    /// `pairs` must hold no NaN score (callers check, since each reports it its own way).
    fn new(mut pairs: Vec<(f32, bool)>) -> Self {
        pairs.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));
        let mut sweep = Sweep { thresholds: Vec::new(), tp: Vec::new(), fp: Vec::new() };
        let (mut tp, mut fp) = (0u64, 0u64);
        let mut i = 0;
        while i < pairs.len() {
            let score = pairs[i].0;
            // `==` rather than total order, so that -0.0 and 0.0 form one threshold.
            while i < pairs.len() && pairs[i].0 == score {
                if pairs[i].1 {
                    tp += 1;
                } else {
                    fp += 1;
                }
                i += 1;
            }
            sweep.thresholds.push(score);
            sweep.tp.push(tp);
            sweep.fp.push(fp);
        }
        sweep
    }

    fn positives(&self) -> u64 {
        self.tp.last().copied().unwrap_or(0)
    }

    fn negatives(&self) -> u64 {
        self.fp.last().copied().unwrap_or(0)
    }

    /// A threshold that flags nothing, for the first point of a curve.
    fn above_all(&self) -> f32 {
        self.thresholds.first().map_or(f32::INFINITY, |t| t.next_up())
    }

    fn confusion(&self, group: usize) -> AtThreshold {
        let (tp, fp) = (self.tp[group], self.fp[group]);
        AtThreshold::from_counts(tp, fp, self.positives() - tp, self.negatives() - fp)
    }
}

/// Pairs of (score, label), or None when the lengths differ or a score is NaN.
fn scored_pairs(scores: &[f32], labels: &[bool]) -> Option<Vec<(f32, bool)>> {
    if scores.len() != labels.len() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    Some(scores.iter().copied().zip(labels.iter().copied()).collect())
}

/// Area under the ROC curve of a sweep; None unless both classes are present.
fn sweep_auroc(sweep: &Sweep) -> Option<f64> {
    let (pos, neg) = (sweep.positives(), sweep.negatives());
    if pos == 0 || neg == 0 {
        return None;
    }
    // Twice the trapezoid area in integer units, so the result is exact up to the
    // final division; a tied group is a diagonal step, i.e. a tie counts 0.5.
    let (mut twice_area, mut prev_tp, mut prev_fp) = (0u128, 0u64, 0u64);
    for (&tp, &fp) in sweep.tp.iter().zip(&sweep.fp) {
        twice_area += u128::from(fp - prev_fp) * u128::from(tp + prev_tp);
        prev_tp = tp;
        prev_fp = fp;
    }
    Some(twice_area as f64 / (2 * u128::from(pos) * u128::from(neg)) as f64)
}

/// Area under the ROC curve: the probability that a random anomalous sample scores
/// higher than a random normal one, ties counting one half (the Mann-Whitney U
/// statistic with midranks). None when a class is empty, the lengths differ or a
/// score is NaN.
pub fn auroc(scores: &[f32], labels: &[bool]) -> Option<f64> {
    sweep_auroc(&Sweep::new(scored_pairs(scores, labels)?))
}

/// Average precision as scikit-learn defines it: `sum_n (R_n - R_{n-1}) P_n` over
/// the distinct scores from the highest down, tied scores forming one threshold.
/// No interpolation, so it is not the trapezoid area under the PR curve. None when
/// there is no anomalous sample, the lengths differ or a score is NaN; without
/// normal samples it is 1.0.
pub fn average_precision(scores: &[f32], labels: &[bool]) -> Option<f64> {
    let sweep = Sweep::new(scored_pairs(scores, labels)?);
    let pos = sweep.positives();
    if pos == 0 {
        return None;
    }
    let mut ap = 0.0;
    let mut prev_tp = 0u64;
    for (&tp, &fp) in sweep.tp.iter().zip(&sweep.fp) {
        // Every group holds at least one sample, so tp + fp > 0.
        ap += (tp - prev_tp) as f64 / pos as f64 * (tp as f64 / (tp + fp) as f64);
        prev_tp = tp;
    }
    Some(ap)
}

/// ROC curve: x = false positive rate, y = true positive rate, from (0, 0) (threshold
/// just above the highest score, nothing flagged) to (1, 1) (the lowest score), one
/// point per distinct score, thresholds descending. No collinear point is dropped.
/// None when a class is empty, the lengths differ or a score is NaN.
pub fn roc_curve(scores: &[f32], labels: &[bool]) -> Option<Curve> {
    let sweep = Sweep::new(scored_pairs(scores, labels)?);
    let (pos, neg) = (sweep.positives(), sweep.negatives());
    if pos == 0 || neg == 0 {
        return None;
    }
    let mut curve = Curve::with_capacity(sweep.thresholds.len() + 1);
    curve.push(0.0, 0.0, sweep.above_all());
    for ((&t, &tp), &fp) in sweep.thresholds.iter().zip(&sweep.tp).zip(&sweep.fp) {
        curve.push(fp as f64 / neg as f64, tp as f64 / pos as f64, t);
    }
    Some(curve)
}

/// Precision-recall curve: x = recall, y = precision, starting at (0, 1) (threshold
/// just above the highest score: nothing flagged, so no false alarm) and then one
/// point per distinct score, thresholds descending, recall rising to 1. None when
/// there is no anomalous sample, the lengths differ or a score is NaN.
pub fn pr_curve(scores: &[f32], labels: &[bool]) -> Option<Curve> {
    let sweep = Sweep::new(scored_pairs(scores, labels)?);
    let pos = sweep.positives();
    if pos == 0 {
        return None;
    }
    let mut curve = Curve::with_capacity(sweep.thresholds.len() + 1);
    curve.push(0.0, 1.0, sweep.above_all());
    for ((&t, &tp), &fp) in sweep.thresholds.iter().zip(&sweep.tp).zip(&sweep.fp) {
        curve.push(tp as f64 / pos as f64, tp as f64 / (tp + fp) as f64, t);
    }
    Some(curve)
}

/// Share of images classified correctly at threshold `t` (score >= t means
/// anomalous). None when there is no image, the lengths differ, or a score or `t`
/// is NaN.
pub fn image_accuracy(scores: &[f32], labels: &[bool], t: f32) -> Option<f64> {
    if scores.is_empty() || t.is_nan() {
        return None;
    }
    let pairs = scored_pairs(scores, labels)?;
    let correct = pairs.iter().filter(|(s, l)| (*s >= t) == *l).count();
    Some(correct as f64 / pairs.len() as f64)
}

/// The share of good images flagged at the highest threshold that still flags at least
/// `sensitivity` of the damaged ones: what catching that much damage costs in false
/// alarms. None without images of both kinds, or with a NaN score.
pub fn false_alarms_at_sensitivity(scores: &[f32], labels: &[bool], sensitivity: f64) -> Option<f64> {
    let pairs = scored_pairs(scores, labels)?;
    let mut damaged: Vec<f32> = pairs.iter().filter(|(_, l)| *l).map(|(s, _)| *s).collect();
    let good: Vec<f32> = pairs.iter().filter(|(_, l)| !*l).map(|(s, _)| *s).collect();
    if damaged.is_empty() || good.is_empty() {
        return None;
    }
    damaged.sort_by(f32::total_cmp);
    // Flagging from the k-th lowest damaged score up flags n - k of n.
    let missed = ((1.0 - sensitivity) * damaged.len() as f64 + 1e-9).floor() as usize;
    let threshold = damaged[missed.min(damaged.len() - 1)];
    Some(good.iter().filter(|s| **s >= threshold).count() as f64 / good.len() as f64)
}

/// Label given to pixels outside every region by [`label_regions`].
const NO_REGION: u32 = u32::MAX;

/// Labels the 8-connected regions of `mask`: per pixel its region number (in raster
/// order of the regions' first pixels) or [`NO_REGION`], and each region's size.
/// Pixels past the end of a short mask count as false.
fn label_regions(mask: &[bool], width: usize, height: usize) -> (Vec<u32>, Vec<usize>) {
    let n = width.saturating_mul(height).min(mask.len());
    let mut labels = vec![NO_REGION; n];
    let mut sizes = Vec::new();
    let mut stack = Vec::new();
    for start in 0..n {
        if !mask[start] || labels[start] != NO_REGION {
            continue;
        }
        // More than u32::MAX - 1 regions cannot fit in any image this app handles.
        let label = sizes.len() as u32;
        labels[start] = label;
        stack.push(start);
        let mut size = 0;
        while let Some(p) = stack.pop() {
            size += 1;
            let (x, y) = (p % width, p / width);
            for ny in y.saturating_sub(1)..=(y + 1).min(height - 1) {
                for nx in x.saturating_sub(1)..=(x + 1).min(width - 1) {
                    let q = ny * width + nx;
                    if q < n && mask[q] && labels[q] == NO_REGION {
                        labels[q] = label;
                        stack.push(q);
                    }
                }
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

/// The 8-connected regions of `true` pixels in a row-major `width` x `height` mask,
/// each as its pixel indices in ascending order, regions ordered by their first
/// pixel. Pixels past the end of a short mask count as false; entries beyond
/// `width * height` are ignored.
pub fn connected_regions(mask: &[bool], width: usize, height: usize) -> Vec<Vec<usize>> {
    let (labels, sizes) = label_regions(mask, width, height);
    let mut regions: Vec<Vec<usize>> = sizes.iter().map(|&s| Vec::with_capacity(s)).collect();
    for (i, &label) in labels.iter().enumerate() {
        if label != NO_REGION {
            regions[label as usize].push(i);
        }
    }
    regions
}

/// Pixel-level quality at one threshold, confusion counts summed over all images.
///
/// 0/0 conventions (there was nothing that could have been got wrong, so the score
/// is the perfect one):
/// - `precision` = TP / (TP + FP) is 1.0 when no pixel is flagged;
/// - `recall` = TP / (TP + FN) is 1.0 when no pixel is damaged;
/// - `iou` = TP / (TP + FP + FN) and `f1` = 2TP / (2TP + FP + FN) (the Dice
///   coefficient) are 1.0 when no pixel is damaged and none is flagged;
/// - `fpr` = FP / (FP + TN) is 0.0 when there is no normal pixel.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AtThreshold {
    pub iou: f64,
    pub f1: f64,
    pub precision: f64,
    pub recall: f64,
    pub fpr: f64,
}

impl AtThreshold {
    /// The metrics of a confusion matrix, with the 0/0 conventions above.
    pub fn from_counts(tp: u64, fp: u64, fn_: u64, tn: u64) -> Self {
        let ratio = |num: u64, den: u64, empty: f64| if den == 0 { empty } else { num as f64 / den as f64 };
        AtThreshold {
            iou: ratio(tp, tp + fp + fn_, 1.0),
            f1: ratio(2 * tp, 2 * tp + fp + fn_, 1.0),
            precision: ratio(tp, tp + fp, 1.0),
            recall: ratio(tp, tp + fn_, 1.0),
            fpr: ratio(fp, fp + tn, 0.0),
        }
    }
}

/// Anomaly maps with their ground-truth masks, all `width` x `height`, borrowed
/// rather than copied. `maps[i]` goes with `masks[i]`. Good images are included with
/// an all-false mask: their pixels are the normal pixels of the false positive rate.
#[derive(Debug, Clone)]
pub struct PixelSet<'a> {
    pub maps: Vec<&'a [f32]>,
    pub masks: Vec<&'a [bool]>,
    pub width: usize,
    pub height: usize,
}

impl<'a> PixelSet<'a> {
    /// Why the set cannot be evaluated, if it cannot: no image, a map or mask of the
    /// wrong size, or a NaN in a map.
    pub fn validate(&self) -> Result<(), String> {
        let size = self
            .width
            .checked_mul(self.height)
            .filter(|&s| s > 0)
            .ok_or_else(|| format!("a {} x {} image has no pixels", self.width, self.height))?;
        if self.maps.is_empty() {
            return Err("no anomaly map was given".into());
        }
        if self.maps.len() != self.masks.len() {
            return Err(format!("{} anomaly maps but {} masks", self.maps.len(), self.masks.len()));
        }
        for (i, (map, mask)) in self.maps.iter().zip(&self.masks).enumerate() {
            if map.len() != size || mask.len() != size {
                return Err(format!(
                    "image {} has a map of {} and a mask of {} pixels instead of {} x {} = {size}",
                    i + 1,
                    map.len(),
                    mask.len(),
                    self.width,
                    self.height
                ));
            }
            if map.iter().any(|v| v.is_nan()) {
                return Err(format!("the anomaly map of image {} holds a value that is not a number", i + 1));
            }
        }
        Ok(())
    }

    /// Every (score, is damaged) pixel of every image.
    fn pixels(&self) -> impl Iterator<Item = (f32, bool)> + '_ {
        self.maps.iter().zip(&self.masks).flat_map(|(map, mask)| map.iter().copied().zip(mask.iter().copied()))
    }

    fn pixel_count(&self) -> usize {
        self.maps.iter().zip(&self.masks).map(|(map, mask)| map.len().min(mask.len())).sum()
    }

    fn sweep(&self) -> Option<Sweep> {
        self.validate().ok()?;
        let mut pairs = Vec::with_capacity(self.pixel_count());
        pairs.extend(self.pixels());
        Some(Sweep::new(pairs))
    }

    /// Number of images whose mask has at least one damaged pixel.
    pub fn damaged_images(&self) -> usize {
        self.masks.iter().filter(|m| m.iter().any(|&d| d)).count()
    }

    /// Exact pixel-level AUROC over all images pooled. None when the set is invalid
    /// (see [`PixelSet::validate`]) or has no damaged or no normal pixel.
    pub fn pixel_auroc(&self) -> Option<f64> {
        sweep_auroc(&self.sweep()?)
    }

    /// The per-region overlap curve: x = false positive rate over all normal pixels,
    /// y = PRO, the mean over every 8-connected damaged region of every image of the
    /// share of its pixels flagged. Every region weighs the same whatever its size,
    /// so a small scratch counts as much as a large dent. One point per distinct
    /// score, from (0, 0) (nothing flagged) to (1, 1), thresholds descending.
    /// None when the set is invalid or has no damaged region or no normal pixel.
    pub fn pro_curve(&self) -> Option<Curve> {
        self.validate().ok()?;
        // Flagging a pixel of region r raises PRO by 1 / (regions * |r|), so the curve
        // is a weighted ROC curve: one sort of (score, region) gives it exactly.
        let mut entries: Vec<(f32, u32)> = Vec::with_capacity(self.pixel_count());
        let mut sizes: Vec<usize> = Vec::new();
        let mut normal = 0u64;
        for (map, mask) in self.maps.iter().zip(&self.masks) {
            let (labels, image_sizes) = label_regions(mask, self.width, self.height);
            // Region numbers must stay below NO_REGION.
            if sizes.len() + image_sizes.len() >= NO_REGION as usize {
                return None;
            }
            let offset = sizes.len() as u32;
            sizes.extend(image_sizes);
            for (&score, &label) in map.iter().zip(&labels) {
                if label == NO_REGION {
                    normal += 1;
                    entries.push((score, NO_REGION));
                } else {
                    entries.push((score, offset + label));
                }
            }
        }
        if sizes.is_empty() || normal == 0 {
            return None;
        }
        let weights: Vec<f64> = sizes.iter().map(|&s| 1.0 / (sizes.len() as f64 * s as f64)).collect();
        entries.sort_unstable_by(|a, b| b.0.total_cmp(&a.0));

        let mut curve = Curve::with_capacity(entries.len() + 1);
        curve.push(0.0, 0.0, entries.first().map_or(f32::INFINITY, |e| e.0.next_up()));
        let (mut fp, mut pro) = (0u64, 0.0f64);
        let mut i = 0;
        while i < entries.len() {
            let score = entries[i].0;
            while i < entries.len() && entries[i].0 == score {
                match entries[i].1 {
                    NO_REGION => fp += 1,
                    region => pro += weights[region as usize],
                }
                i += 1;
            }
            // Summing many small weights drifts by a few ulps; PRO is a share.
            curve.push(fp as f64 / normal as f64, pro.min(1.0), score);
        }
        // The lowest score flags every pixel, so every region is covered in full.
        if let Some(last) = curve.y.last_mut() {
            *last = 1.0;
        }
        Some(curve)
    }

    /// MVTec AUPRO: the area under the PRO curve (see [`PixelSet::pro_curve`]) for
    /// false positive rates from 0 to `max_fpr` (0.3 is the customary value), by the
    /// trapezoid rule on the exact curve interpolated at `max_fpr`, divided by
    /// `max_fpr` so that a perfect map scores 1.0. None when `max_fpr` is not in
    /// (0, 1], or [`PixelSet::pro_curve`] is None.
    pub fn aupro(&self, max_fpr: f64) -> Option<f64> {
        if !(max_fpr > 0.0 && max_fpr <= 1.0) {
            return None;
        }
        let curve = self.pro_curve()?;
        let mut area = 0.0;
        let (mut prev_x, mut prev_y) = (0.0, 0.0);
        for (&x, &y) in curve.x.iter().zip(&curve.y) {
            if x >= max_fpr {
                // prev_x < max_fpr <= x, so the segment is not vertical.
                let y_at = prev_y + (y - prev_y) * (max_fpr - prev_x) / (x - prev_x);
                area += (max_fpr - prev_x) * (prev_y + y_at) / 2.0;
                return Some((area / max_fpr).clamp(0.0, 1.0));
            }
            area += (x - prev_x) * (prev_y + y) / 2.0;
            prev_x = x;
            prev_y = y;
        }
        // The curve ends at FPR exactly 1.0 >= max_fpr, so the loop has returned.
        None
    }

    /// Pixel confusion at threshold `t` summed over all images, with the 0/0
    /// conventions of [`AtThreshold`]. A NaN pixel is never flagged; a map or mask
    /// longer than the other is read only as far as both go.
    pub fn at_threshold(&self, t: f32) -> AtThreshold {
        let (mut tp, mut fp, mut fn_, mut tn) = (0u64, 0u64, 0u64, 0u64);
        for (score, damaged) in self.pixels() {
            match (score >= t, damaged) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                (false, false) => tn += 1,
            }
        }
        AtThreshold::from_counts(tp, fp, fn_, tn)
    }

    /// IoU against the threshold: x = threshold, y = IoU, thresholds ascending.
    /// See [`PixelSet::f1_curve`] for which thresholds are used.
    pub fn iou_curve(&self, steps: usize) -> Option<Curve> {
        self.metric_curve(steps, |m| m.iou)
    }

    /// F1 (Dice) against the threshold: x = threshold, y = F1, thresholds ascending.
    ///
    /// One sort of all pixels gives the exact confusion at every distinct score. With
    /// at most `steps` distinct scores, all are used; otherwise about `steps / 2`
    /// evenly spaced quantiles of the damaged pixels' scores and as many of the
    /// normal pixels' scores (fewer when they coincide). Quantiles rather than even
    /// spacing because damaged pixels are usually few: their scores are where the
    /// metric changes, and a single outlier does not stretch the grid. Each threshold
    /// is an actual pixel score, so its value is exact, not interpolated.
    /// None when `steps` is 0, the set is invalid or no pixel is damaged.
    pub fn f1_curve(&self, steps: usize) -> Option<Curve> {
        self.metric_curve(steps, |m| m.f1)
    }

    fn metric_curve(&self, steps: usize, metric: fn(&AtThreshold) -> f64) -> Option<Curve> {
        if steps == 0 {
            return None;
        }
        let sweep = self.sweep()?;
        let (pos, neg) = (sweep.positives(), sweep.negatives());
        if pos == 0 {
            return None;
        }
        let mut groups: Vec<usize> = if sweep.thresholds.len() <= steps {
            (0..sweep.thresholds.len()).collect()
        } else {
            let damaged_steps = steps.div_ceil(2);
            let mut groups = quantile_groups(&sweep.tp, pos, damaged_steps);
            groups.extend(quantile_groups(&sweep.fp, neg, steps - damaged_steps));
            groups
        };
        // Descending group index = ascending threshold.
        groups.sort_unstable_by(|a, b| b.cmp(a));
        groups.dedup();
        let mut curve = Curve::with_capacity(groups.len());
        for g in groups {
            let t = sweep.thresholds[g];
            curve.push(f64::from(t), metric(&sweep.confusion(g)), t);
        }
        Some(curve)
    }
}

/// Indices of the sweep groups holding `k` evenly spaced order statistics (from the
/// highest to the lowest) of the `total` samples counted cumulatively in `counts`.
fn quantile_groups(counts: &[u64], total: u64, k: usize) -> Vec<usize> {
    if total == 0 || k == 0 {
        return Vec::new();
    }
    let k = k as u64;
    (0..k)
        .map(|j| {
            // 1-based rank of the order statistic, from the highest score down.
            let rank = if k == 1 { 1 + (total - 1) / 2 } else { 1 + (j * (total - 1) + (k - 1) / 2) / (k - 1) };
            counts.partition_point(|&c| c < rank)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn false_alarms_at_a_sensitivity_count_the_good_images_above_the_damage_it_must_catch() {
        use super::false_alarms_at_sensitivity as at;
        // 20 damaged scores 1..=20: 95% of them are caught from 2 up (one missed).
        let mut scores: Vec<f32> = (1..=20).map(|s| s as f32).collect();
        let mut labels = vec![true; 20];
        // Good scores 0.5, 1.5, 2.5, 3.5: two of them are at or above 2.
        scores.extend([0.5, 1.5, 2.5, 3.5]);
        labels.extend([false; 4]);
        assert_eq!(at(&scores, &labels, 0.95), Some(0.5));
        // All damage: from the lowest damaged score, 1, up: three of four good images.
        assert_eq!(at(&scores, &labels, 1.0), Some(0.75));
        assert_eq!(at(&scores[..20], &labels[..20], 0.95), None);
    }

    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Pairwise definition of AUROC, to check the sweep against.
    fn brute_auroc(scores: &[f32], labels: &[bool]) -> f64 {
        let (mut wins, mut pairs) = (0.0, 0.0);
        for (s, _) in scores.iter().zip(labels).filter(|(_, l)| **l) {
            for (n, _) in scores.iter().zip(labels).filter(|(_, l)| !**l) {
                pairs += 1.0;
                if s > n {
                    wins += 1.0;
                } else if s == n {
                    wins += 0.5;
                }
            }
        }
        wins / pairs
    }

    #[test]
    fn auroc_known_values() {
        // scikit-learn's documentation example: 3 of 4 pairs ordered correctly.
        let labels = [false, false, true, true];
        assert!(close(auroc(&[0.1, 0.4, 0.35, 0.8], &labels).unwrap(), 0.75));
        assert!(close(auroc(&[1.0, 2.0, 3.0, 4.0], &labels).unwrap(), 1.0));
        assert!(close(auroc(&[4.0, 3.0, 2.0, 1.0], &labels).unwrap(), 0.0));
        // Ties: anomalous {2, 3} vs normal {1, 2}: pairs (2>1) (2=2 -> 0.5) (3>1) (3>2).
        assert!(close(auroc(&[1.0, 2.0, 2.0, 3.0], &labels).unwrap(), 3.5 / 4.0));
        // -0.0 and 0.0 are the same score.
        assert!(close(auroc(&[-0.0, 0.0], &[false, true]).unwrap(), 0.5));
    }

    #[test]
    fn auroc_refuses_what_it_cannot_measure() {
        assert_eq!(auroc(&[1.0, 2.0], &[true, true]), None);
        assert_eq!(auroc(&[1.0, 2.0], &[false, false]), None);
        assert_eq!(auroc(&[], &[]), None);
        assert_eq!(auroc(&[1.0, 2.0], &[true]), None);
        assert_eq!(auroc(&[1.0, f32::NAN], &[true, false]), None);
    }

    #[test]
    fn average_precision_known_values() {
        // scikit-learn's documentation example: thresholds 0.8 (R 0.5, P 1),
        // 0.4 (R 0.5), 0.35 (R 1, P 2/3): AP = 0.5 * 1 + 0.5 * 2/3.
        let ap = average_precision(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]).unwrap();
        assert!(close(ap, 0.5 + 1.0 / 3.0));
        // A tie forms one threshold: R 1, P 0.5.
        assert!(close(average_precision(&[1.0, 1.0], &[true, false]).unwrap(), 0.5));
        assert!(close(average_precision(&[1.0, 2.0], &[true, true]).unwrap(), 1.0));
        assert_eq!(average_precision(&[1.0, 2.0], &[false, false]), None);
        assert_eq!(average_precision(&[f32::NAN], &[true]), None);
    }

    #[test]
    fn roc_and_pr_curves_known_points() {
        let scores = [0.1, 0.4, 0.35, 0.8];
        let labels = [false, false, true, true];
        let roc = roc_curve(&scores, &labels).unwrap();
        assert_eq!(roc.x, vec![0.0, 0.0, 0.5, 0.5, 1.0]);
        assert_eq!(roc.y, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
        assert_eq!(roc.thresholds[1..], [0.8, 0.4, 0.35, 0.1]);
        assert!(roc.thresholds[0] > 0.8);

        let pr = pr_curve(&scores, &labels).unwrap();
        assert_eq!(pr.x, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
        let expected_precision = [1.0, 1.0, 0.5, 2.0 / 3.0, 0.5];
        assert!(pr.y.iter().zip(expected_precision).all(|(a, b)| close(*a, b)));
        assert_eq!(pr.thresholds.len(), 5);

        assert_eq!(roc_curve(&[1.0], &[true]), None);
        assert!(pr_curve(&[1.0], &[true]).is_some());
    }

    #[test]
    fn image_accuracy_counts_both_classes() {
        // At 2.0: 1 (good, ok), 2 (good, flagged: wrong), 3 (damaged, ok), 0.5 (damaged, missed).
        let acc = image_accuracy(&[1.0, 2.0, 3.0, 0.5], &[false, false, true, true], 2.0).unwrap();
        assert!(close(acc, 0.5));
        assert_eq!(image_accuracy(&[], &[], 1.0), None);
        assert_eq!(image_accuracy(&[1.0], &[true], f32::NAN), None);
        assert_eq!(image_accuracy(&[1.0], &[true, false], 1.0), None);
    }

    #[test]
    fn regions_use_eight_connectivity() {
        #[rustfmt::skip]
        let mask = [
            true,  false, false, true,
            false, true,  false, false,
            false, false, false, true,
            true,  true,  false, true,
        ];
        let regions = connected_regions(&mask, 4, 4);
        assert_eq!(regions, vec![vec![0, 5], vec![3], vec![11, 15], vec![12, 13]]);
        assert!(connected_regions(&[false; 6], 3, 2).is_empty());
        assert_eq!(connected_regions(&[true; 6], 3, 2), vec![(0..6).collect::<Vec<_>>()]);
        // Rows wrap in memory but not in the image: pixel 2 (end of row 0) does not
        // touch pixel 3 (start of row 1).
        assert_eq!(connected_regions(&[false, false, true, true, false, false], 3, 2), vec![vec![2], vec![3]]);
        // A short mask counts as false beyond its end.
        assert_eq!(connected_regions(&[true], 2, 2), vec![vec![0]]);
    }

    /// A 5x4 image with two damaged 2x2 regions at the top left and top right, and
    /// a good 5x4 image.
    fn two_regions() -> (Vec<bool>, Vec<bool>) {
        #[rustfmt::skip]
        let mask = vec![
            true,  true,  false, true,  true,
            true,  true,  false, true,  true,
            false, false, false, false, false,
            false, false, false, false, false,
        ];
        (mask, vec![false; 20])
    }

    const LEFT: [usize; 4] = [0, 1, 5, 6];

    fn with_good<'a>(map: &'a [f32], mask: &'a [bool], good_map: &'a [f32], good: &'a [bool]) -> PixelSet<'a> {
        PixelSet { maps: vec![map, good_map], masks: vec![mask, good], width: 5, height: 4 }
    }

    #[test]
    fn aupro_perfect_half_and_inverted_maps() {
        let (mask, good) = two_regions();
        let good_map = vec![0.0f32; 20];
        let perfect: Vec<f32> = mask.iter().map(|&d| if d { 1.0 } else { 0.0 }).collect();
        let inverted: Vec<f32> = mask.iter().map(|&d| if d { -1.0 } else { 0.0 }).collect();
        assert!(close(with_good(&perfect, &mask, &good_map, &good).aupro(0.3).unwrap(), 1.0));
        assert!(close(with_good(&perfect, &mask, &good_map, &good).aupro(1.0).unwrap(), 1.0));
        assert!(close(with_good(&inverted, &mask, &good_map, &good).aupro(0.3).unwrap(), 0.0));

        // Only the left region is marked, the right one scores below every normal
        // pixel: PRO is 0.5 for every FPR below 1.
        let half: Vec<f32> = (0..20)
            .map(|i| {
                if LEFT.contains(&i) {
                    1.0
                } else if mask[i] {
                    -1.0
                } else {
                    0.0
                }
            })
            .collect();
        let set = with_good(&half, &mask, &good_map, &good);
        let curve = set.pro_curve().unwrap();
        assert_eq!(curve.x, vec![0.0, 0.0, 1.0, 1.0]);
        assert_eq!(curve.y, vec![0.0, 0.5, 0.5, 1.0]);
        assert!(close(set.aupro(0.3).unwrap(), 0.5));

        // Right region tied with the normal pixels: PRO rises linearly from 0.5 at
        // FPR 0 to 1.0 at FPR 1, so the area up to 0.3 is 0.3 * 0.5 + 0.3^2 / 4.
        let tied: Vec<f32> = (0..20).map(|i| if LEFT.contains(&i) { 1.0 } else { 0.0 }).collect();
        let aupro = with_good(&tied, &mask, &good_map, &good).aupro(0.3).unwrap();
        assert!(close(aupro, (0.15 + 0.0225) / 0.3));
    }

    #[test]
    fn pro_weighs_regions_not_pixels() {
        // A 1-pixel and a 3-pixel region; only the small one is found.
        #[rustfmt::skip]
        let mask = [
            true,  false, true,
            false, false, true,
            false, false, true,
        ];
        let map = [1.0f32, 0.0, -1.0, 0.0, 0.0, -1.0, 0.0, 0.0, -1.0];
        let set = PixelSet { maps: vec![&map], masks: vec![&mask], width: 3, height: 3 };
        assert_eq!(connected_regions(&mask, 3, 3).len(), 2);
        assert!(close(set.aupro(0.3).unwrap(), 0.5));
        assert!(close(set.at_threshold(0.5).recall, 0.25));
    }

    #[test]
    fn aupro_refuses_what_it_cannot_measure() {
        let (mask, good) = two_regions();
        let map = [0.0f32; 20];
        let only_good = PixelSet { maps: vec![&map[..]], masks: vec![&good[..]], width: 5, height: 4 };
        assert_eq!(only_good.aupro(0.3), None);
        let all = [true; 20];
        let no_normal = PixelSet { maps: vec![&map[..]], masks: vec![&all[..]], width: 5, height: 4 };
        assert_eq!(no_normal.aupro(0.3), None);
        let fine = PixelSet { maps: vec![&map[..]], masks: vec![&mask[..]], width: 5, height: 4 };
        assert_eq!(fine.aupro(0.0), None);
        assert_eq!(fine.aupro(1.5), None);
        let wrong_size = PixelSet { maps: vec![&map[..19]], masks: vec![&mask[..]], width: 5, height: 4 };
        assert!(wrong_size.validate().unwrap_err().contains("19"));
        assert_eq!(wrong_size.aupro(0.3), None);
    }

    #[test]
    fn pixel_auroc_pools_all_images() {
        // Damaged pixels 0.9 and 0.5 against the 6 normal ones 0.1, 0.6 (image 1) and
        // 0.2, 0.3, 0.2, 0.3 (image 2): 0.9 beats all 6, 0.5 all but 0.6 -> 11/12.
        let (m1, k1) = ([0.9f32, 0.5, 0.1, 0.6], [true, true, false, false]);
        let (m2, k2) = ([0.2f32, 0.3, 0.2, 0.3], [false; 4]);
        let set = PixelSet { maps: vec![&m1, &m2], masks: vec![&k1, &k2], width: 2, height: 2 };
        assert!(close(set.pixel_auroc().unwrap(), 11.0 / 12.0));
    }

    #[test]
    fn at_threshold_counts_and_zero_division() {
        let (map, mask) = ([0.9f32, 0.5, 0.1, 0.6], [true, true, false, false]);
        let set = PixelSet { maps: vec![&map], masks: vec![&mask], width: 2, height: 2 };
        // At 0.55: TP 1 (0.9), FN 1 (0.5), FP 1 (0.6), TN 1 (0.1).
        let m = set.at_threshold(0.55);
        assert!(close(m.iou, 1.0 / 3.0) && close(m.f1, 0.5));
        assert!(close(m.precision, 0.5) && close(m.recall, 0.5) && close(m.fpr, 0.5));

        // Nothing flagged: precision 1 (no false alarm), recall 0, IoU and F1 0.
        let none = set.at_threshold(2.0);
        assert_eq!((none.precision, none.recall, none.iou, none.f1, none.fpr), (1.0, 0.0, 0.0, 0.0, 0.0));

        // Nothing damaged and nothing flagged: everything perfect.
        let good = [false; 4];
        let clean = PixelSet { maps: vec![&map], masks: vec![&good], width: 2, height: 2 };
        let m = clean.at_threshold(2.0);
        assert_eq!((m.iou, m.f1, m.precision, m.recall, m.fpr), (1.0, 1.0, 1.0, 1.0, 0.0));
        // Nothing damaged but something flagged: recall 1 (nothing missed), IoU 0.
        let m = clean.at_threshold(0.55);
        assert_eq!((m.iou, m.f1, m.precision, m.recall, m.fpr), (0.0, 0.0, 0.0, 1.0, 0.5));
        // No normal pixel: FPR 0.
        assert_eq!(AtThreshold::from_counts(3, 0, 1, 0).fpr, 0.0);
    }

    #[test]
    fn iou_and_f1_curves_match_direct_confusion() {
        let map: Vec<f32> = (0..64).map(|i| ((i * 37) % 64) as f32 / 8.0).collect();
        let mask: Vec<bool> = (0..64).map(|i| (i * 37) % 64 >= 40).collect();
        let set = PixelSet { maps: vec![&map], masks: vec![&mask], width: 8, height: 8 };
        for steps in [1, 2, 7, 10, 64, 1000] {
            let iou = set.iou_curve(steps).unwrap();
            let f1 = set.f1_curve(steps).unwrap();
            assert!(!iou.x.is_empty() && iou.x.len() <= steps);
            assert!(iou.x.windows(2).all(|w| w[0] < w[1]), "thresholds ascend");
            for ((&t, &i), &f) in iou.thresholds.iter().zip(&iou.y).zip(&f1.y) {
                let direct = set.at_threshold(t);
                assert!(close(i, direct.iou) && close(f, direct.f1));
            }
        }
        // All 64 distinct scores fit in 64 steps; the best IoU (1.0) is at 5.0.
        let full = set.iou_curve(64).unwrap();
        assert_eq!(full.x.len(), 64);
        let best = full.y.iter().cloned().fold(f64::MIN, f64::max);
        assert_eq!(best, 1.0);
        // With few steps the quantiles still include the lowest damaged score.
        assert!(set.iou_curve(4).unwrap().x.contains(&5.0));
        assert_eq!(set.iou_curve(0), None);
        let good = vec![false; 64];
        let clean = PixelSet { maps: vec![&map], masks: vec![&good], width: 8, height: 8 };
        assert_eq!(clean.iou_curve(10), None);
    }

    fn scored() -> impl Strategy<Value = (Vec<f32>, Vec<bool>)> {
        // Integer-valued scores: exact under the transforms below, and tie-prone.
        (1usize..40).prop_flat_map(|n| {
            (proptest::collection::vec((-50i32..50).prop_map(|v| v as f32), n), proptest::collection::vec(any::<bool>(), n))
        })
    }

    proptest! {
        #[test]
        fn auroc_matches_pairwise_definition((scores, labels) in scored()) {
            let got = auroc(&scores, &labels);
            if labels.iter().all(|&l| l) || labels.iter().all(|&l| !l) {
                prop_assert_eq!(got, None);
            } else {
                prop_assert!(close(got.unwrap(), brute_auroc(&scores, &labels)));
            }
        }

        #[test]
        fn auroc_invariant_under_increasing_transforms((scores, labels) in scored()) {
            let base = auroc(&scores, &labels);
            let affine: Vec<f32> = scores.iter().map(|x| 3.0 * x + 1.0).collect();
            let exp: Vec<f32> = scores.iter().map(|x| (x / 10.0).exp()).collect();
            prop_assert_eq!(auroc(&affine, &labels), base);
            prop_assert_eq!(auroc(&exp, &labels), base);
            prop_assert_eq!(average_precision(&affine, &labels), average_precision(&scores, &labels));
        }

        #[test]
        fn auroc_of_negated_scores_is_complement((scores, labels) in scored()) {
            let negated: Vec<f32> = scores.iter().map(|x| -x).collect();
            match (auroc(&scores, &labels), auroc(&negated, &labels)) {
                (Some(a), Some(b)) => prop_assert!(close(a + b, 1.0)),
                (a, b) => prop_assert_eq!(a, b),
            }
        }

        #[test]
        fn auroc_of_constant_scores_is_half(labels in proptest::collection::vec(any::<bool>(), 2..40), v in -1e6f32..1e6) {
            prop_assume!(labels.iter().any(|&l| l) && labels.iter().any(|&l| !l));
            prop_assert_eq!(auroc(&vec![v; labels.len()], &labels), Some(0.5));
        }

        #[test]
        fn curves_run_from_corner_to_corner((scores, labels) in scored()) {
            if let Some(roc) = roc_curve(&scores, &labels) {
                prop_assert_eq!((roc.x[0], roc.y[0]), (0.0, 0.0));
                prop_assert_eq!((*roc.x.last().unwrap(), *roc.y.last().unwrap()), (1.0, 1.0));
                prop_assert!(roc.x.windows(2).all(|w| w[0] <= w[1]) && roc.y.windows(2).all(|w| w[0] <= w[1]));
                prop_assert!(roc.thresholds.windows(2).all(|w| w[0] > w[1]));
            }
            if let (Some(pr), Some(ap)) = (pr_curve(&scores, &labels), average_precision(&scores, &labels)) {
                prop_assert_eq!(*pr.x.last().unwrap(), 1.0);
                prop_assert!((0.0..=1.0 + 1e-12).contains(&ap));
                // AP is the step integral of the PR curve.
                let step: f64 = pr.x.windows(2).zip(&pr.y[1..]).map(|(w, p)| (w[1] - w[0]) * p).sum();
                prop_assert!(close(ap, step));
            }
        }

        #[test]
        fn regions_partition_the_mask(mask in proptest::collection::vec(any::<bool>(), 30)) {
            let regions = connected_regions(&mask, 6, 5);
            let mut seen = vec![false; 30];
            for region in &regions {
                for &p in region {
                    prop_assert!(mask[p] && !seen[p]);
                    seen[p] = true;
                }
            }
            prop_assert_eq!(seen, mask.clone());
            // No two regions touch (else they would be one).
            for (a, ra) in regions.iter().enumerate() {
                for rb in &regions[a + 1..] {
                    for &p in ra {
                        for &q in rb {
                            let (px, py, qx, qy) = (p % 6, p / 6, q % 6, q / 6);
                            prop_assert!(px.abs_diff(qx) > 1 || py.abs_diff(qy) > 1);
                        }
                    }
                }
            }
        }

        #[test]
        fn aupro_stays_in_unit_interval(map in proptest::collection::vec(0u8..8, 25), mask in proptest::collection::vec(any::<bool>(), 25)) {
            let map: Vec<f32> = map.into_iter().map(f32::from).collect();
            let set = PixelSet { maps: vec![&map], masks: vec![&mask], width: 5, height: 5 };
            if let Some(a) = set.aupro(0.3) {
                prop_assert!((0.0..=1.0).contains(&a));
            }
        }
    }
}
