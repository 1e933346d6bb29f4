//! `damagelens eval --dataset DIR`: train (or load) a profile, choose the threshold, and
//! print the twofold report by defect category, with JSON and CSV exports.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::ValueEnum;

use super::{load_inspector, load_with_profile, progress, read_bounded, train_profile, CliResult, SettingsArgs};
use crate::engine::inspector::Inspector;
use crate::engine::profile::Profile;
use crate::eval::dataset::{load_dir, Sample};
use crate::eval::report::{
    calibration_set, evaluate_sample, report, scores_csv, split_calibration, EvalItem, Metrics, Report, Timing, CALIBRATION_PER_DEFECT,
};
use crate::eval::threshold::{choose, ThresholdMethod};

#[derive(Clone, Copy, PartialEq, ValueEnum)]
pub enum ThresholdArg {
    /// Keep the profile's own threshold (normal-score statistics from held-out good images).
    Profile,
    MaxIou,
    MaxF1,
    Youden,
    /// Mean + 3 sigma of good calibration images.
    Sigma,
    /// 99th percentile of good calibration images.
    Percentile,
    /// Flag at most 1% of good calibration images.
    FpBudget,
}

#[derive(clap::Args)]
pub struct EvalArgs {
    /// Dataset folder: MVTec AD, BTAD or plain layout.
    #[arg(long)]
    pub dataset: PathBuf,
    /// Evaluate this profile instead of training one on the dataset's train split.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// CSV assigning categories and background flags: path,category,background.
    #[arg(long)]
    pub categories: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "profile")]
    pub threshold_method: ThresholdArg,
    /// Damaged images per defect type taken out of the test set to calibrate the threshold.
    #[arg(long, default_value_t = CALIBRATION_PER_DEFECT)]
    pub calibrate: usize,
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[arg(long)]
    pub scores: Option<PathBuf>,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// The estimator a `--threshold-method` names; None keeps the profile's own threshold.
pub fn method(arg: ThresholdArg) -> Option<ThresholdMethod> {
    arg.to_possible_value().and_then(|v| ThresholdMethod::by_name(v.get_name()))
}

/// Scores one sample with its mask read from the dataset folder.
fn evaluate(inspector: &Inspector, profile: &Profile, root: &Path, sample: &Sample, problems: &mut Vec<String>) -> CliResult<EvalItem> {
    let bytes = read_bounded(&root.join(&sample.path))?;
    let mask = sample.mask.as_ref().filter(|_| sample.anomalous).map(|rel| read_bounded(&root.join(rel)));
    evaluate_sample(inspector, profile, sample, &bytes, mask, problems).map_err(|e| e.to_string())
}

pub fn evaluate_all(
    inspector: &Inspector,
    profile: &Profile,
    root: &Path,
    samples: &[Sample],
    what: &str,
    problems: &mut Vec<String>,
) -> Vec<EvalItem> {
    let bar = progress(samples.len(), what);
    let mut items = Vec::with_capacity(samples.len());
    for sample in samples {
        match evaluate(inspector, profile, root, sample, problems) {
            Ok(item) => items.push(item),
            Err(message) => problems.push(format!("{message}; left out")),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    items
}

pub fn run(backbone: &Path, args: &EvalArgs) -> CliResult {
    let root = &args.dataset;
    let dataset = load_dir(root, args.categories.as_deref()).map_err(|e| e.to_string())?;
    let mut problems = dataset.problems.clone();
    eprintln!("{}: {} layout, {} training and {} test images", root.display(), dataset.layout, dataset.train.len(), dataset.test.len());
    let started = Instant::now();
    let (inspector, profile) = match &args.profile {
        Some(path) => load_with_profile(backbone, path)?,
        None => {
            let inspector = load_inspector(backbone, args.settings.input_size)?;
            let files: Vec<PathBuf> = dataset.train.iter().map(|p| root.join(p)).collect();
            let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "dataset".into());
            let profile = train_profile(&inspector, &files, &name, &args.settings.settings()?)?;
            (inspector, profile)
        }
    };

    // Maps come at the backbone's input resolution.
    let map_size = profile.backbone.input_size as usize;
    // Calibration images come out of the test set (and the validation split), so the
    // threshold is never chosen on what it is judged on.
    let mut test = dataset.test.clone();
    let (threshold, threshold_method) = match method(args.threshold_method) {
        None => (profile.calibration.threshold, profile.calibration.method.clone()),
        Some(m) => {
            let (calibration, judged) = split_calibration(&dataset.test, &dataset.validation, args.calibrate);
            test = judged;
            let cal = evaluate_all(&inspector, &profile, root, &calibration, "calibrating", &mut problems);
            let set = calibration_set(&cal, map_size);
            let chosen = choose(&m, &set)?;
            (chosen.value, chosen.explanation)
        }
    };

    let training_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let items = evaluate_all(&inspector, &profile, root, &test, "evaluating", &mut problems);
    let inspect_ms_per_image = started.elapsed().as_secs_f64() * 1000.0 / test.len().max(1) as f64;
    if items.is_empty() {
        return Err(format!("{}: no test image could be evaluated", root.display()));
    }
    let mut report = report(&items, map_size, threshold, &threshold_method);
    if args.profile.is_none() {
        report.timing = Some(Timing { training_images: profile.training_images, training_seconds, inspect_ms_per_image });
    }
    for p in &problems {
        eprintln!("note: {p}");
    }
    print_report(&profile, &report);
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.scores {
        std::fs::write(path, scores_csv(&items)).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

fn print_report(profile: &Profile, r: &Report) {
    let f = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "  -  ".into());
    println!("{} ({}, {} training images)", profile.name, profile.method_name(), profile.training_images);
    println!("threshold {:.3}: {}", r.threshold, r.threshold_method);
    println!(
        "{:<14} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "images", "img AUROC", "img AP", "px AUROC", "AUPRO", "IoU", "F1", "precision", "recall", "accuracy"
    );
    let row = |name: &str, m: &Metrics| {
        println!(
            "{:<14} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            name,
            m.images,
            f(m.image_AUROC),
            f(m.image_AP),
            f(m.pixel_AUROC),
            f(m.pixel_AUPRO),
            f(m.pixel_IoU),
            f(m.pixel_F1),
            f(m.pixel_precision),
            f(m.pixel_recall),
            f(m.image_accuracy)
        )
    };
    for (name, m) in &r.categories {
        row(name, m);
    }
    row("overall", &r.overall);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_threshold_choice_but_the_profiles_names_an_estimator() {
        for arg in ThresholdArg::value_variants() {
            assert_eq!(method(*arg).is_none(), *arg == ThresholdArg::Profile);
        }
        assert_eq!(method(ThresholdArg::Sigma), Some(ThresholdMethod::NormalSigma { k: 3.0 }));
    }
}
