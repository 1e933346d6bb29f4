//! Statistics of good photos' scores, the threshold training sets before any damaged
//! photo has been seen. It lives in the engine because training needs it; the
//! evaluation's threshold estimators (`eval::threshold`) build on the same numbers.

/// Normal-score statistics: needs no damaged image at all. The threshold is
/// `mean + k * std` of good images' scores, and never below the highest of them, so
/// none of the good images it was chosen on would be flagged.
pub fn normal_statistics(good_scores: &[f32], k: f32) -> Result<f32, String> {
    let (mean, sd, max) = mean_sd_max(good_scores)?;
    Ok(((mean + k as f64 * sd) as f32).max(max))
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
    fn says_when_it_cannot_apply() {
        assert!(normal_statistics(&[1.0], 3.0).unwrap_err().contains("at least 2"));
        assert!(normal_statistics(&[1.0, f32::NAN], 3.0).is_err());
    }
}
