//! Drift warnings: is a product's model still right for what the station sees? Two
//! one-sided tests on the inspection log of the model in use (the entries its version
//! judged, leaving out photos a person confirmed damaged, which are no false alarms):
//!
//! - **More flagged than calibration expects.** Of the last [`WINDOW`] judged photos, k
//!   were flagged (CHECK or DAMAGED). Calibration says a good item is flagged with
//!   probability p0 (`Calibration.expected_flagged`); the warning comes when k is so high
//!   that a binomial(n, p0) reaches it with probability below [`ALPHA`].
//! - **Good items score higher than they did.** The scores of the photos judged OK: the
//!   last [`SCORE_WINDOW`] against the first [`SCORE_WINDOW`] of this model, with a
//!   one-sided Mann-Whitney U test (normal approximation, ties at mid-ranks); a warning
//!   below [`ALPHA`]. Light, packaging or camera changes raise every score before they
//!   push items over the threshold.
//!
//! Plain functions with known-answer tests; the page only shows what they say.

use crate::client::log::{Decision, LogEntry};
use crate::engine::postprocess::Band;

/// How many of the model's latest judged photos the flagged share is taken over.
pub const WINDOW: usize = 30;
/// The fewest judged photos the flagged test needs.
pub const MIN_JUDGED: usize = 10;
/// How many OK scores make each side of the score test.
pub const SCORE_WINDOW: usize = 15;
/// The chance of a warning when nothing has changed, per test.
pub const ALPHA: f64 = 0.001;

/// What the log says about a product's model.
#[derive(Debug, Clone, PartialEq)]
pub enum Drift {
    /// `flagged` of the last `judged` photos were flagged where calibration expects a
    /// share `expected`; `p`: the chance of that many or more if nothing had changed.
    Flagged { flagged: usize, judged: usize, expected: f64, p: f64 },
    /// OK scores (0.5 at the threshold) rose from a median `before` to `now`.
    GoodScoresRising { before: f64, now: f64, p: f64 },
}

impl Drift {
    pub fn message(&self) -> String {
        match self {
            Drift::Flagged { flagged, judged, expected, .. } => format!(
                "{flagged} of the last {judged} photos were flagged, where calibration expects about {:.0}% of good items to be: \
                 either much damage came in, or the product or the light changed. Review the flagged photos; if they are good, \
                 mark them as good to update the model.",
                expected * 100.0
            ),
            Drift::GoodScoresRising { before, now, .. } => format!(
                "Good items now score higher than they did with this model (median {before:.2} -> {now:.2}, 0.50 is the threshold): \
                 the product, its packaging or the light may have changed. Review recent photos and mark good ones as good \
                 to update the model, before false alarms begin."
            ),
        }
    }
}

/// The drift warnings for the model of `product` trained at `version` (its entries in
/// `log`, oldest first), with calibration's expected flagged share if it has one.
pub fn check(log: &[LogEntry], product: &str, version: f64, expected_flagged: Option<f64>) -> Vec<Drift> {
    let judged: Vec<&LogEntry> = log
        .iter()
        .filter(|e| e.product == product && e.profile_version == version && e.score.is_some())
        .filter(|e| !matches!(e.decision, Some(Decision::ConfirmedDamaged { .. })))
        .collect();
    let mut warnings = Vec::new();
    let recent = &judged[judged.len().saturating_sub(WINDOW)..];
    if let (Some(p0), true) = (expected_flagged, recent.len() >= MIN_JUDGED) {
        let flagged = recent.iter().filter(|e| e.flagged()).count();
        let p = binomial_tail(recent.len(), flagged, p0);
        if p < ALPHA {
            warnings.push(Drift::Flagged { flagged, judged: recent.len(), expected: p0, p });
        }
    }
    let ok: Vec<f64> = judged.iter().filter(|e| e.band == Band::Ok).filter_map(|e| e.score.map(f64::from)).collect();
    if ok.len() >= 2 * SCORE_WINDOW {
        let (before, now) = (&ok[..SCORE_WINDOW], &ok[ok.len() - SCORE_WINDOW..]);
        let p = mann_whitney_greater(now, before);
        if p < ALPHA {
            warnings.push(Drift::GoodScoresRising { before: median(before), now: median(now), p });
        }
    }
    warnings
}

/// P(X >= k) for X ~ binomial(n, p), summed exactly term by term.
pub fn binomial_tail(n: usize, k: usize, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    // log C(n, i) + i log p + (n - i) log(1 - p), accumulated for stability.
    let ln_term = |i: usize| ln_choose(n, i) + i as f64 * p.ln() + (n - i) as f64 * (1.0 - p).ln();
    (k..=n).map(|i| ln_term(i).exp()).sum::<f64>().min(1.0)
}

fn ln_choose(n: usize, k: usize) -> f64 {
    (0..k).map(|i| ((n - i) as f64).ln() - ((i + 1) as f64).ln()).sum()
}

/// One-sided p-value that `a` tends to be larger than `b`: Mann-Whitney U with mid-ranks
/// for ties and the tie-corrected normal approximation.
pub fn mann_whitney_greater(a: &[f64], b: &[f64]) -> f64 {
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    if a.is_empty() || b.is_empty() {
        return 1.0;
    }
    let mut all: Vec<(f64, bool)> = a.iter().map(|&v| (v, true)).chain(b.iter().map(|&v| (v, false))).collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let (mut rank_sum_a, mut ties) = (0.0, 0.0);
    let mut i = 0;
    while i < all.len() {
        let j = (i..all.len()).find(|&j| all[j].0 != all[i].0).unwrap_or(all.len());
        let mid = (i + j + 1) as f64 / 2.0; // ranks i+1..=j
        rank_sum_a += mid * all[i..j].iter().filter(|x| x.1).count() as f64;
        let t = (j - i) as f64;
        ties += t * t * t - t;
        i = j;
    }
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let n = n1 + n2;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if variance <= 0.0 {
        return 1.0;
    }
    let z = (u - n1 * n2 / 2.0) / variance.sqrt();
    0.5 * libm::erfc(z / std::f64::consts::SQRT_2)
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let m = sorted.len() / 2;
    if sorted.len().is_multiple_of(2) {
        (sorted[m - 1] + sorted[m]) / 2.0
    } else {
        sorted[m]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binomial_tail_known_answers() {
        // 8 or more heads in 10 fair tosses: (45 + 10 + 1) / 1024.
        assert!((binomial_tail(10, 8, 0.5) - 56.0 / 1024.0).abs() < 1e-12);
        assert_eq!(binomial_tail(10, 0, 0.3), 1.0);
        // All 5 of 5 at p = 0.1: 1e-5.
        assert!((binomial_tail(5, 5, 0.1) - 1e-5).abs() < 1e-15);
    }

    #[test]
    fn mann_whitney_known_answers() {
        // Complete separation, 3 against 3: U = 9, mean 4.5, variance 3*3*7/12 = 5.25.
        let p = mann_whitney_greater(&[4.0, 5.0, 6.0], &[1.0, 2.0, 3.0]);
        let z: f64 = 4.5 / 5.25f64.sqrt();
        assert!((p - 0.5 * libm::erfc(z / std::f64::consts::SQRT_2)).abs() < 1e-12);
        assert!((p - 0.0248).abs() < 1e-3, "{p}");
        // The other way round it is no evidence at all; identical samples give 0.5.
        assert!(mann_whitney_greater(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]) > 0.97);
        assert!((mann_whitney_greater(&[1.0, 2.0], &[1.0, 2.0]) - 0.5).abs() < 1e-12);
        assert_eq!(mann_whitney_greater(&[1.0, 1.0], &[1.0, 1.0]), 1.0, "all tied: no variance, no evidence");
    }

    fn entry(score: f32, band: Band, version: f64) -> LogEntry {
        LogEntry {
            key: None,
            time_ms: 0.0,
            day: "2026-12-01".into(),
            session: "s".into(),
            product: "p".into(),
            product_name: "P".into(),
            profile_version: version,
            model_version: None,
            backend: "CPU".into(),
            file: "a.png".into(),
            item: "a".into(),
            score: Some(score),
            band,
            reason: None,
            thumbnail: Vec::new(),
            decision: None,
        }
    }

    #[test]
    fn a_run_of_flagged_photos_warns_and_a_normal_day_does_not() {
        let ok = |n| (0..n).map(|i| entry(0.2 + 0.001 * i as f32, Band::Ok, 1.0));
        let normal: Vec<LogEntry> = ok(28).chain([entry(0.6, Band::Damaged, 1.0), entry(0.45, Band::Check, 1.0)]).collect();
        assert!(check(&normal, "p", 1.0, Some(0.05)).is_empty(), "2 of 30 at 5% is ordinary");
        let mut shifted = normal.clone();
        shifted.extend((0..10).map(|_| entry(0.7, Band::Damaged, 1.0)));
        let warnings = check(&shifted, "p", 1.0, Some(0.05));
        assert!(matches!(warnings.as_slice(), [Drift::Flagged { flagged: 12, judged: 30, .. }]), "{warnings:?}");
        // Damage a person confirmed is no false alarm; another version's entries are not this model's.
        let confirmed: Vec<LogEntry> = shifted
            .iter()
            .cloned()
            .map(|mut e| {
                if e.band == Band::Damaged {
                    e.decision = Some(Decision::ConfirmedDamaged { kind: "crack".into() });
                }
                e
            })
            .collect();
        assert!(check(&confirmed, "p", 1.0, Some(0.05)).is_empty());
        assert!(check(&shifted, "p", 2.0, Some(0.05)).is_empty());
        assert!(check(&shifted, "p", 1.0, None).is_empty(), "without calibration's share there is nothing to test against");
    }

    #[test]
    fn good_scores_creeping_up_warn() {
        let steady: Vec<LogEntry> = (0..40).map(|i| entry(0.2 + 0.01 * (i % 5) as f32, Band::Ok, 1.0)).collect();
        assert!(check(&steady, "p", 1.0, None).is_empty());
        let mut creeping: Vec<LogEntry> = steady[..20].to_vec();
        creeping.extend((0..15).map(|i| entry(0.35 + 0.005 * i as f32, Band::Ok, 1.0)));
        let warnings = check(&creeping, "p", 1.0, None);
        assert!(matches!(warnings.as_slice(), [Drift::GoodScoresRising { now, .. }] if *now > 0.35), "{warnings:?}");
    }
}
