//! An evaluation fed one image at a time: the browser streams a dataset folder into
//! the worker this way, so no more than one photo's bytes cross at once and the page can
//! show progress and stop between any two photos. The steps are those of
//! `damagelens eval` (train or take a profile, choose the threshold on a calibration
//! split, judge the rest), on the same functions, so both give the same numbers.

use super::dataset::Sample;
use super::outcome::{EvalError, EvalOutcome, GalleryCase};
use super::report::{calibration_set, mask_on_map, report, report_curves, scores_csv, worst_cases, EvalItem, Report, Timing};
use super::threshold::{choose, ThresholdMethod};
use crate::engine::calibration_stats::check_band;
use crate::engine::damage_head::{fuse, DamageHead, Example};
use crate::engine::embed::PatchGrid;
use crate::engine::error::EngineError;
use crate::engine::inspector::{Inspector, Trainer};
use crate::engine::postprocess::{heatmap_rgba, AnomalyMap, Calibration};
use crate::engine::profile::Profile;
use crate::engine::settings::TrainSettings;

/// One evaluation, in the order of its steps: train (or take a profile), calibration
/// samples, [`EvalSession::choose_threshold`], judged samples, the report. The CLI and
/// the engine service both run it, so `damagelens eval` and the app's Evaluate page are
/// one sequence.
pub struct EvalSession {
    inspector: Inspector,
    /// Present while good photos are still being learnt.
    trainer: Option<(Trainer, String)>,
    profile: Option<Profile>,
    /// None keeps the profile's own threshold.
    method: Option<ThresholdMethod>,
    threshold: Option<(f32, String)>,
    /// Where CHECK begins below the threshold, chosen with it.
    check_from: Option<f32>,
    calibration: Vec<EvalItem>,
    items: Vec<EvalItem>,
    /// Learning a damage head from the damaged calibration photos, when asked.
    head: Option<HeadPlan>,
}

/// A damage head being learnt, then fused into every judged photo's map.
struct HeadPlan {
    /// How many thresholds a sure damaged patch lifts the map ([`fuse`]).
    weight: f32,
    /// The good held-out photos' and the damaged calibration photos' patches.
    examples: Vec<Example>,
    head: Option<DamageHead>,
}

impl EvalSession {
    /// Evaluates a profile that already exists (the current product's).
    pub fn with_profile(inspector: &Inspector, profile: Profile, method: Option<ThresholdMethod>) -> Self {
        EvalSession {
            inspector: inspector.clone(),
            trainer: None,
            profile: Some(profile),
            method,
            threshold: None,
            check_from: None,
            calibration: Vec::new(),
            items: Vec::new(),
            head: None,
        }
    }

    /// Evaluates a profile learnt first from the dataset's good training photos.
    pub fn training(
        inspector: &Inspector,
        name: &str,
        settings: &TrainSettings,
        method: Option<ThresholdMethod>,
    ) -> Result<Self, EvalError> {
        let trainer = Trainer::new(inspector, settings)?;
        let trainer = Some((trainer, name.to_string()));
        Ok(EvalSession {
            inspector: inspector.clone(),
            trainer,
            profile: None,
            method,
            threshold: None,
            check_from: None,
            calibration: Vec::new(),
            items: Vec::new(),
            head: None,
        })
    }

    /// Learns a damage head ([`crate::engine::damage_head`]) from the damaged calibration
    /// photos (with their masks, when they have them) and the good photos training held
    /// out, and fuses it into the map of every photo judged, `weight` thresholds for a
    /// sure damaged patch. Only for a session that trains (the held-out photos' patches
    /// come from its training) and chooses a threshold on calibration photos.
    pub fn with_damage_head(mut self, weight: f32) -> Result<Self, EvalError> {
        if self.trainer.is_none() || self.method.is_none() {
            return Err(EvalError::OutOfOrder("a damage head is learnt by an evaluation that trains and calibrates"));
        }
        self.head = Some(HeadPlan { weight, examples: Vec::new(), head: None });
        Ok(self)
    }

    /// One good training photo; an error concerns this file only.
    pub fn add_training_image(&mut self, file: &str, bytes: &[u8]) -> Result<(), EvalError> {
        let (trainer, _) = self.trainer.as_mut().ok_or(EvalError::OutOfOrder("a training photo came after training ended"))?;
        Ok(trainer.add(file, bytes)?)
    }

    /// Fits the profile on the training photos received. The good photos training held
    /// out (scored by a model fitted without them) join the calibration samples, as in
    /// the app's Calibrate panel: the estimators that read good photos' scores (mean +
    /// k sigma, percentile, false-alarm budget, Youden) then work on datasets without a
    /// validation split, such as MVTec AD.
    pub fn fit(&mut self) -> Result<&Profile, EvalError> {
        let (trainer, name) = self.trainer.take().ok_or(EvalError::OutOfOrder("there is nothing to train"))?;
        if self.method.is_some() {
            let (_, held_out) = trainer.held_out()?;
            self.calibration.extend(held_out.into_iter().enumerate().map(|(i, map)| EvalItem::held_out_good(i, map)));
        }
        if let Some(plan) = &mut self.head {
            plan.examples.extend(trainer.held_out_grids().iter().cloned().map(Example::good));
        }
        Ok(self.profile.insert(trainer.finish(&name)?))
    }

    fn profile(&self) -> Result<&Profile, EvalError> {
        self.profile.as_ref().ok_or(EvalError::OutOfOrder("photos to judge came before the model was trained"))
    }

    /// Scores one sample (with its mask's bytes, or why they could not be read). A
    /// `calibration` sample chooses the threshold; the others are judged. Returns what
    /// was wrong with the mask, if anything; an error means the photo is left out.
    pub fn add_sample(
        &mut self,
        sample: &Sample,
        image: &[u8],
        mask: Option<Result<Vec<u8>, String>>,
        calibration: bool,
    ) -> Result<Vec<String>, EvalError> {
        let mut problems = Vec::new();
        let profile = self.profile.as_ref().ok_or(EvalError::OutOfOrder("photos to judge came before the model was trained"))?;
        let item = match &mut self.head {
            Some(plan) => {
                let (map, grid, size) = self.inspector.anomaly_map_and_grid(profile, &sample.path, image)?;
                let mut item = judged_item(sample, map, size, mask, &mut problems);
                match (&plan.head, calibration) {
                    (None, true) if sample.anomalous => plan.examples.push(damaged_example(profile, grid, &item)?),
                    (Some(head), false) => {
                        let threshold = self.threshold.as_ref().map_or(profile.calibration.threshold, |t| t.0);
                        let damage = self.inspector.map_of_patches(&head.probabilities(&grid)?, &grid);
                        // The map shows where; the score stays the anomaly model's (crate::engine::damage_head).
                        item.map = fuse(&AnomalyMap { size: damage.size, values: item.map }, &damage, threshold, plan.weight).values;
                    }
                    _ => {}
                }
                item
            }
            None => evaluate_sample(&self.inspector, profile, sample, image, mask, &mut problems)?,
        };
        let list = if calibration { &mut self.calibration } else { &mut self.items };
        list.push(item);
        Ok(problems)
    }

    fn map_size(&self) -> Result<usize, EvalError> {
        Ok(self.profile()?.backbone.input_size as usize)
    }

    /// Chooses the threshold on the calibration samples, or keeps the profile's when no
    /// estimator was asked for. Returns the value and why, in a sentence.
    pub fn choose_threshold(&mut self) -> Result<(f32, String), EvalError> {
        let profile = self.profile()?;
        let (chosen, check_from) = match &self.method {
            None => {
                ((profile.calibration.threshold, profile.calibration.method.clone()), profile.calibration.check.as_ref().map(|c| c.from))
            }
            Some(method) => {
                let set = calibration_set(&self.calibration, self.map_size()?);
                let chosen = choose(method, &set).map_err(EvalError::Threshold)?;
                let check_from = check_band(&set.good_scores, &set.anomalous_scores, chosen.value).map(|c| c.from);
                ((chosen.value, chosen.explanation), check_from)
            }
        };
        self.check_from = check_from;
        self.threshold = Some(chosen.clone());
        if let Some(plan) = &mut self.head {
            plan.head = Some(DamageHead::fit(&plan.examples)?);
            plan.examples = Vec::new();
        }
        Ok(chosen)
    }

    /// The report over the judged samples, its curves, the scores and the worst
    /// `per_side` good and damaged cases with their heatmaps.
    /// The twofold report over the judged samples, by defect category.
    pub fn report(&self, timing: Option<Timing>) -> Result<Report, EvalError> {
        let (threshold, method) =
            self.threshold.clone().ok_or(EvalError::OutOfOrder("the report was asked for before the threshold was chosen"))?;
        if self.items.is_empty() {
            return Err(EvalError::NothingJudged);
        }
        let mut report = report(&self.items, self.map_size()?, threshold, self.check_from, &method);
        report.timing = timing;
        if let Ok(profile) = self.profile() {
            report.method = Some(profile.method.as_ref().map_or_else(|| profile.method_name(), |m| m.chosen.clone()));
            report.method_why = profile.method.as_ref().map(|m| m.why.clone());
        }
        Ok(report)
    }

    /// The judged samples' scores as CSV (`path,label,category,score`).
    pub fn scores_csv(&self) -> String {
        scores_csv(&self.items)
    }

    pub fn outcome(&self, timing: Option<Timing>, per_side: usize) -> Result<EvalOutcome, EvalError> {
        let profile = self.profile()?;
        let report = self.report(timing)?;
        let threshold = report.threshold;
        let map_size = self.map_size()?;
        let report_json = serde_json::to_string_pretty(&report).map_err(|e| EvalError::Report(e.to_string()))?;
        // The heatmaps are painted on the evaluation's scale: its threshold lands at 0.5.
        let scale = Calibration { threshold, ..profile.calibration.clone() };
        let mut gallery = Vec::new();
        for item in worst_cases(&self.items, per_side) {
            let normalised: Vec<f32> = item.map.iter().map(|v| scale.normalise(*v)).collect();
            gallery.push(GalleryCase {
                path: item.path.clone(),
                anomalous: item.anomalous,
                score: item.score,
                normalised_score: scale.normalise(item.score),
                heatmap_png: png_of(&heatmap_rgba(&normalised), map_size as u32)?,
            });
        }
        Ok(EvalOutcome { report_json, scores_csv: self.scores_csv(), curves: report_curves(&self.items, map_size), gallery })
    }

    /// The profile evaluated, once there is one.
    pub fn evaluated_profile(&self) -> Option<&Profile> {
        self.profile.as_ref()
    }
}

/// Scores one sample. `mask` is the ground truth file's bytes (or why it could not be
/// read); a mask that cannot be used is reported in `problems` and the image still
/// counts at image level. The CLI reads files from a folder, the browser from a drop.
pub fn evaluate_sample(
    inspector: &Inspector,
    profile: &Profile,
    sample: &Sample,
    image: &[u8],
    mask: Option<Result<Vec<u8>, String>>,
    problems: &mut Vec<String>,
) -> Result<EvalItem, EngineError> {
    let (map, image_size) = inspector.anomaly_map(profile, &sample.path, image)?;
    Ok(judged_item(sample, map, image_size, mask, problems))
}

/// What a damage head learns from a damaged photo: its first detector's `grid`, labelled
/// by the mask of its `item` (the same photo judged), or without one by the patches the
/// anomaly model scores highest.
pub fn damaged_example(profile: &Profile, grid: PatchGrid, item: &EvalItem) -> Result<Example, EngineError> {
    Ok(match &item.mask {
        Some(mask) => Example::masked(grid, mask, profile.backbone.input_size as usize),
        None => {
            let scores = profile.detectors[0].model.score(&grid)?;
            Example::unmasked(grid, &scores)
        }
    })
}

/// Scores a damaged sample as [`evaluate_sample`] does, and gives what a damage head
/// learns from it.
pub fn evaluate_damaged(
    inspector: &Inspector,
    profile: &Profile,
    sample: &Sample,
    image: &[u8],
    mask: Option<Result<Vec<u8>, String>>,
    problems: &mut Vec<String>,
) -> Result<(EvalItem, Example), EngineError> {
    let (map, grid, size) = inspector.anomaly_map_and_grid(profile, &sample.path, image)?;
    let item = judged_item(sample, map, size, mask, problems);
    let example = damaged_example(profile, grid, &item)?;
    Ok((item, example))
}

/// A sample's map (of a photo of `image_size`) with its mask read at the map's size.
fn judged_item(
    sample: &Sample,
    map: AnomalyMap,
    image_size: (u32, u32),
    mask: Option<Result<Vec<u8>, String>>,
    problems: &mut Vec<String>,
) -> EvalItem {
    let mask = match (mask, sample.anomalous) {
        (_, false) => Some(vec![false; map.values.len()]),
        (None, true) => None,
        (Some(bytes), true) => {
            match bytes.and_then(|b| mask_on_map(sample.mask.as_deref().unwrap_or("mask"), &b, image_size, map.size as u32)) {
                Ok(m) => Some(m),
                Err(why) => {
                    problems.push(format!("{why}; {} evaluated at image level only", sample.path));
                    None
                }
            }
        }
    };
    EvalItem { path: sample.path.clone(), anomalous: sample.anomalous, category: sample.category, score: map.max(), map: map.values, mask }
}

fn png_of(rgba: &[u8], size: u32) -> Result<Vec<u8>, EvalError> {
    let image = image::RgbaImage::from_raw(size, size, rgba.to_vec()).ok_or(EvalError::Report("a heatmap has the wrong size".into()))?;
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).map_err(|e| EvalError::Report(format!("a heatmap cannot be encoded: {e}")))?;
    Ok(out.into_inner())
}
