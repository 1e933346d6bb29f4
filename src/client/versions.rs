//! A product's versions: every change to its model (training, calibration, an import, a
//! roll back) is kept as a numbered version with its date, what changed and the number
//! of photos, so any earlier one can be restored exactly. Plain types and rules with
//! native tests; the page stores each version's profile file beside it in IndexedDB.

use serde::{Deserialize, Serialize};

use crate::protocol::ProfileSummary;

/// How many versions of a product are kept; adding one more drops the oldest (never
/// the newest, which is the product's profile).
pub const KEEP_VERSIONS: usize = 10;

/// What made a new version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    /// Trained from all its good photos (*Train*; *Mark as good* when there is no state to go on from).
    Trained,
    /// Learnt `added` more good photos on top of the model before (*Mark as good*),
    /// without relearning the others: the same model as training on all of them.
    Learnt { added: usize },
    /// A new threshold from calibration (or one set by hand).
    Calibrated,
    /// A profile file, with the version of the product it was exported as (if it says).
    Imported {
        #[serde(default)]
        version: Option<u32>,
    },
    /// Made a copy of another product's version.
    Copied { from: String },
    /// Restored an earlier version, exactly.
    RolledBack { to: u32 },
}

impl Change {
    /// Whether the learning state kept for the version before still serves the new one:
    /// only a calibration leaves the model as it was. A training or a learning brings its
    /// own state; an import, a copy or a roll back has none (the next *Mark as good* then
    /// relearns every photo once, and goes on from there).
    pub fn keeps_learning(&self) -> bool {
        matches!(self, Change::Calibrated)
    }
}

/// One version of a product. Its profile file is stored apart, under the same id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// `<product id>/<number, 6 digits>`: the versions of a product sort by number.
    pub id: String,
    pub product: String,
    /// 1, 2, 3... per product.
    pub number: u32,
    /// Milliseconds since 1970, when the version was made.
    pub time_ms: f64,
    pub change: Change,
    /// The model it holds, as the library lists it.
    pub summary: ProfileSummary,
    /// When that model was trained: what the inspection log records as the version that
    /// judged (a roll back or a calibration keeps the trained model's time).
    pub trained_ms: f64,
}

impl Version {
    pub fn id_of(product: &str, number: u32) -> String {
        format!("{product}/{number:06}")
    }

    /// The version that follows `history` (the product's versions, any order).
    pub fn next(history: &[Version], product: &str, change: Change, summary: ProfileSummary, trained_ms: f64, time_ms: f64) -> Version {
        let number = history.iter().map(|v| v.number).max().unwrap_or(0) + 1;
        Version { id: Version::id_of(product, number), product: product.to_string(), number, time_ms, change, summary, trained_ms }
    }

    /// What changed, in words: against `before`, the version it followed (if kept).
    pub fn describe(&self, before: Option<&Version>) -> String {
        let s = &self.summary;
        let what = match &self.change {
            Change::Trained => format!("trained on {} good photos ({})", s.training_images, s.method),
            Change::Learnt { added } => format!(
                "learnt {added} more good photo{} without relearning the others ({} in all, {})",
                if *added == 1 { "" } else { "s" },
                s.training_images,
                s.method
            ),
            Change::Calibrated => "calibrated".to_string(),
            Change::Imported { version } => format!(
                "imported from a file{} ({}, {} good photos)",
                version.map(|v| format!(", its version {v}")).unwrap_or_default(),
                s.method,
                s.training_images
            ),
            Change::Copied { from } => format!("copied from {from}"),
            Change::RolledBack { to } => format!("rolled back to version {to}"),
        };
        match before.map(|b| b.summary.threshold).filter(|t| *t != s.threshold) {
            Some(old) => format!("{what}; threshold {old:.2} -> {:.2}", s.threshold),
            None => what,
        }
    }
}

/// The ids of versions to drop so that `history` plus one new version keeps at most
/// [`KEEP_VERSIONS`]: the oldest ones.
pub fn to_drop(history: &[Version]) -> Vec<String> {
    let mut numbers: Vec<&Version> = history.iter().collect();
    numbers.sort_by_key(|v| v.number);
    let excess = (numbers.len() + 1).saturating_sub(KEEP_VERSIONS);
    numbers.into_iter().take(excess).map(|v| v.id.clone()).collect()
}

/// The product's versions, newest first, each with the words for what it changed.
pub fn history(versions: &[Version]) -> Vec<(Version, String)> {
    let mut sorted: Vec<&Version> = versions.iter().collect();
    sorted.sort_by_key(|v| v.number);
    let mut described: Vec<(Version, String)> =
        sorted.iter().enumerate().map(|(i, v)| ((*v).clone(), v.describe(i.checked_sub(1).map(|b| sorted[b])))).collect();
    described.reverse();
    described
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::profile::ModelCost;

    fn summary(threshold: f32, photos: usize) -> ProfileSummary {
        ProfileSummary {
            name: "Cells".into(),
            backbone: "lite0".into(),
            method: "PaDiM".into(),
            training_images: photos,
            threshold,
            threshold_method: "F1 on 5 damaged".into(),
            check: None,
            expected_flagged: None,
            input_size: 224,
            cost: ModelCost { bank_size: None, model_bytes: 0, multiply_adds_per_image: 0 },
            choice: Default::default(),
            method_why: None,
            damage_head: None,
        }
    }

    #[test]
    fn learning_one_more_photo_says_so_and_only_a_calibration_keeps_the_learning_state() {
        let first = Version::next(&[], "p1", Change::Trained, summary(1.0, 12), 5.0, 6.0);
        let learnt = Version::next(std::slice::from_ref(&first), "p1", Change::Learnt { added: 1 }, summary(1.1, 13), 7.0, 7.0);
        assert_eq!(
            learnt.describe(Some(&first)),
            "learnt 1 more good photo without relearning the others (13 in all, PaDiM); threshold 1.00 -> 1.10"
        );
        assert!(Change::Calibrated.keeps_learning());
        for change in [Change::Trained, Change::Learnt { added: 2 }, Change::RolledBack { to: 1 }, Change::Imported { version: None }] {
            assert!(!change.keeps_learning(), "{change:?}");
        }
    }

    #[test]
    fn versions_number_on_from_the_highest_kept() {
        let first = Version::next(&[], "p1", Change::Trained, summary(1.0, 10), 5.0, 6.0);
        assert_eq!((first.number, first.id.as_str()), (1, "p1/000001"));
        let second = Version::next(std::slice::from_ref(&first), "p1", Change::Calibrated, summary(2.0, 10), 5.0, 7.0);
        assert_eq!(second.number, 2);
        // The oldest was dropped: numbers still go on, never reused.
        let third = Version::next(std::slice::from_ref(&second), "p1", Change::Trained, summary(2.0, 11), 8.0, 9.0);
        assert_eq!(third.number, 3);
        assert!(Version::id_of("p1", 10) > Version::id_of("p1", 9), "ids sort by number");
    }

    #[test]
    fn the_history_says_what_changed_newest_first() {
        let a = Version::next(&[], "p", Change::Trained, summary(1.0, 10), 1.0, 1.0);
        let b = Version::next(std::slice::from_ref(&a), "p", Change::Calibrated, summary(1.5, 10), 1.0, 2.0);
        let c = Version::next(&[a.clone(), b.clone()], "p", Change::RolledBack { to: 1 }, summary(1.0, 10), 1.0, 3.0);
        let lines: Vec<String> = history(&[b, c, a]).into_iter().map(|(v, words)| format!("{}: {words}", v.number)).collect();
        assert_eq!(
            lines,
            [
                "3: rolled back to version 1; threshold 1.50 -> 1.00",
                "2: calibrated; threshold 1.00 -> 1.50",
                "1: trained on 10 good photos (PaDiM)",
            ]
        );
    }

    #[test]
    fn only_the_newest_versions_are_kept() {
        let mut history = Vec::new();
        for i in 0..KEEP_VERSIONS {
            history.push(Version::next(&history, "p", Change::Trained, summary(1.0, 10 + i), 1.0, i as f64));
        }
        // Full: one more drops version 1 only.
        assert_eq!(to_drop(&history), vec!["p/000001".to_string()]);
        assert!(to_drop(&history[..KEEP_VERSIONS - 1]).is_empty());
    }
}
