//! Statistics of good photos' scores, the threshold training sets before any damaged
//! photo has been seen. It lives in the engine because training needs it; the
//! evaluation's threshold estimators (`eval::threshold`) build on the same numbers.

use super::postprocess::{Calibration, CheckBand};

/// Normal-score statistics: needs no damaged image at all. The threshold is
/// `mean + k * std` of good images' scores, and never below the highest of them, so
/// none of the good images it was chosen on would be flagged.
pub fn normal_statistics(good_scores: &[f32], k: f32) -> Result<f32, String> {
    let (mean, sd, max) = mean_sd_max(good_scores)?;
    Ok(((mean + k as f64 * sd) as f32).max(max))
}

/// A calibration from scores: `threshold` (DAMAGED from there), the 0..1 scale spanning
/// `min`..`max` and the threshold, the CHECK band and the expected flagged share, both
/// from the `good` and `damaged` calibration photos' scores.
pub fn calibrated(threshold: f32, (min, max): (f32, f32), method: String, good: &[f32], damaged: &[f32]) -> Calibration {
    let check = check_band(good, damaged, threshold);
    let flagged_from = check.as_ref().map_or(threshold, |c| c.from);
    Calibration {
        threshold,
        min: min.min(threshold),
        max: max.max(threshold),
        method,
        expected_flagged: expected_flagged(good, flagged_from),
        check,
    }
}

/// The share of good items that score `from` or more, with good scores taken as normal
/// (their mean and standard deviation): `P(X >= from) = erfc(z / sqrt 2) / 2`. A model
/// rather than a count, since a handful of held-out photos cannot tell 0% from 5%; None
/// with fewer than two scores.
pub fn expected_flagged(good: &[f32], from: f32) -> Option<f32> {
    let (mean, sd, _) = mean_sd_max(good).ok()?;
    if sd <= 0.0 {
        return Some(if f64::from(from) <= mean { 1.0 } else { 0.0 });
    }
    let z = (f64::from(from) - mean) / sd;
    Some((0.5 * libm::erfc(z / std::f64::consts::SQRT_2)) as f32)
}

/// Share of the damaged calibration photos the CHECK band may let through as OK.
pub const MISS_BUDGET: f64 = 0.05;
/// With good photos alone, CHECK starts this many standard deviations above their mean:
/// below training's usual threshold (2), and high enough that only about one good item
/// in fifteen goes to a person when scores spread normally (one sigma would send one in six).
pub const CHECK_K: f64 = 1.5;

/// Where CHECK begins below `threshold` (DAMAGED). With damaged calibration photos, at
/// the score that keeps at most [`MISS_BUDGET`] of them below it (with fewer than 20,
/// the lowest of them: none is called OK). With good photos alone, [`CHECK_K`] standard
/// deviations above their mean. None when no score would fall between OK and DAMAGED,
/// or there is nothing to go on.
pub fn check_band(good: &[f32], damaged: &[f32], threshold: f32) -> Option<CheckBand> {
    let good_in = |from: f32| {
        let n = good.iter().filter(|s| **s >= from && **s < threshold).count();
        if good.is_empty() {
            String::new()
        } else {
            format!(" {n} of the {} good calibration photos fall in it.", good.len())
        }
    };
    let mut caught: Vec<f32> = damaged.iter().copied().filter(|s| s.is_finite()).collect();
    if !caught.is_empty() {
        caught.sort_by(f32::total_cmp);
        let k = (MISS_BUDGET * caught.len() as f64).floor() as usize;
        let from = caught[k];
        if from >= threshold {
            return None;
        }
        let why = format!(
            "CHECK from {from:.3}: at most {:.0}% of the {} damaged calibration photos score below it ({k} do).{}",
            MISS_BUDGET * 100.0,
            caught.len(),
            good_in(from)
        );
        return Some(CheckBand { from, why });
    }
    let (mean, sd, _) = mean_sd_max(good).ok()?;
    let from = (mean + CHECK_K * sd) as f32;
    (from < threshold).then(|| CheckBand {
        from,
        why: format!(
            "CHECK from {from:.3}, {CHECK_K} standard deviations above the good photos' mean: no damaged example was given, so the band comes from good photos alone.{}",
            good_in(from)
        ),
    })
}

/// Mean, sample standard deviation and maximum of at least 2 finite scores.
pub fn mean_sd_max(good_scores: &[f32]) -> Result<(f64, f64, f32), String> {
    if good_scores.len() < 2 {
        return Err(format!("normal-score statistics need at least 2 good images' scores, got {}", good_scores.len()));
    }
    if good_scores.iter().any(|s| !s.is_finite()) {
        return Err("a good image's score is not a finite number".into());
    }
    let n = good_scores.len() as f64;
    let mean = good_scores.iter().map(|s| *s as f64).sum::<f64>() / n;
    let var = good_scores.iter().map(|s| (*s as f64 - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let max = good_scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    Ok((mean, var.sqrt(), max))
}

#[cfg(test)]
mod tests {
    #[test]
    fn expected_flagged_share_is_the_normal_tail() {
        // Scores -1, 0, 1: mean 0, sd 1. The tail above 1.5 sd is 6.68%, above the mean half.
        let good = [-1.0, 0.0, 1.0];
        assert!((super::expected_flagged(&good, 1.5).unwrap() - 0.0668).abs() < 1e-4);
        assert!((super::expected_flagged(&good, 0.0).unwrap() - 0.5).abs() < 1e-6);
        assert!((super::expected_flagged(&good, -2.0).unwrap() - 0.9772).abs() < 1e-4);
        assert_eq!(super::expected_flagged(&[1.0], 0.0), None);
        assert_eq!(super::expected_flagged(&[2.0, 2.0], 3.0), Some(0.0));
        // A calibration flags from its CHECK band when it has one: with good photos only, 1.5 sd.
        let c = super::calibrated(2.0, (-1.0, 1.0), String::new(), &good, &[]);
        assert_eq!((c.min, c.max), (-1.0, 2.0));
        assert!((c.expected_flagged.unwrap() - 0.0668).abs() < 1e-4, "{c:?}");
    }

    use super::*;

    #[test]
    fn mean_plus_k_sigma() {
        // mean 2, sample std 1
        let t = normal_statistics(&[1.0, 2.0, 3.0], 3.0).unwrap();
        assert!((t - 5.0).abs() < 1e-6);
        assert_eq!(mean_sd_max(&[1.0, 2.0, 3.0]).unwrap(), (2.0, 1.0, 3.0));
    }

    #[test]
    fn never_below_the_highest_good_score() {
        assert_eq!(normal_statistics(&[1.0, 1.0, 1.0, 9.0], 0.0).unwrap(), 9.0);
    }

    #[test]
    fn the_check_band_lets_at_most_the_miss_budget_of_damaged_photos_through() {
        // 40 damaged scores 1..=40: 5% is 2 photos, so CHECK starts at the third lowest.
        let damaged: Vec<f32> = (1..=40).map(|v| v as f32).collect();
        let band = check_band(&[0.5, 2.5, 3.5, 50.0], &damaged, 30.0).unwrap();
        assert_eq!(band.from, 3.0);
        assert!(band.why.contains("2 do") && band.why.contains("1 of the 4 good"), "{}", band.why);
        // Fewer than 20: the lowest damaged photo, so none of them would be OK.
        assert_eq!(check_band(&[], &[7.0, 5.0, 9.0], 8.0).unwrap().from, 5.0);
        // Every damaged photo is already DAMAGED: nothing sits between.
        assert_eq!(check_band(&[], &[9.0, 12.0], 8.0), None);
    }

    #[test]
    fn without_damaged_photos_the_band_starts_one_and_a_half_sigma_above_the_good_mean() {
        // mean 2, sample std 1
        let band = check_band(&[1.0, 2.0, 3.0], &[], 5.0).unwrap();
        assert_eq!(band.from, 3.5);
        assert!(band.why.contains("good photos alone") && band.why.contains("0 of the 3 good"), "{}", band.why);
        assert_eq!(check_band(&[1.0, 2.0, 3.0], &[], 3.5), None);
        assert_eq!(check_band(&[1.0], &[], 5.0), None);
    }

    #[test]
    fn says_when_it_cannot_apply() {
        assert!(normal_statistics(&[1.0], 3.0).unwrap_err().contains("at least 2"));
        assert!(normal_statistics(&[1.0, f32::NAN], 3.0).is_err());
    }
}
