//! `damagelens eval --dataset DIR`: train (or load) a profile, choose the threshold, and
//! print the twofold report by defect category, with JSON and CSV exports.

use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::ValueEnum;

use super::{load_inspector, load_with_profile, progress, read_bounded, CliResult, SettingsArgs};
use crate::engine::inspector::Inspector;
use crate::engine::profile::Profile;
use crate::eval::dataset::{load_dir, Sample};
use crate::eval::report::{split_calibration, EvalItem, Metrics, Report, Timing, CALIBRATION_PER_DEFECT};
use crate::eval::session::{evaluate_sample, EvalSession};
use crate::eval::threshold::ThresholdMethod;

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
    /// Also learn a damage head from the damaged calibration photos (`--calibrate` per
    /// defect type, with their masks when there are) and fuse it into every judged map:
    /// a patch the head is sure of is lifted by this many thresholds (default 0.5). The
    /// photos' scores stay the anomaly model's.
    #[arg(long, num_args = 0..=1, default_missing_value = "0.5")]
    pub damage_head: Option<f32>,
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

/// Runs [`EvalSession`], the one evaluation sequence the app's Evaluate page runs too:
/// train (or load) the profile, score the calibration split, choose the threshold, judge
/// the rest, report.
pub fn run(backbone: &Path, args: &EvalArgs) -> CliResult {
    let root = &args.dataset;
    let dataset = load_dir(root, args.categories.as_deref()).map_err(|e| e.to_string())?;
    let mut problems = dataset.problems.clone();
    eprintln!("{}: {} layout, {} training and {} test images", root.display(), dataset.layout, dataset.train.len(), dataset.test.len());
    let started = Instant::now();
    let threshold_method = method(args.threshold_method);
    let (mut session, profile_given) = match &args.profile {
        Some(_) if args.damage_head.is_some() => {
            return Err("--damage-head learns from the dataset's training photos; leave out --profile".into());
        }
        Some(path) => {
            let (inspector, profile) = load_with_profile(backbone, path)?;
            (EvalSession::with_profile(&inspector, profile, threshold_method.clone()), true)
        }
        None => {
            let inspector = load_inspector(backbone, args.settings.input_size)?;
            let name = root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "dataset".into());
            let mut session = EvalSession::training(&inspector, &name, &args.settings.settings()?, threshold_method.clone())
                .map_err(|e| e.to_string())?;
            if let Some(weight) = args.damage_head {
                session = session.with_damage_head(weight).map_err(|e| format!("--damage-head: {e}; give a --threshold-method"))?;
            }
            let bar = progress(dataset.train.len(), "training");
            for rel in &dataset.train {
                let path = root.join(rel);
                let added = read_bounded(&path)
                    .and_then(|b| session.add_training_image(&path.display().to_string(), &b).map_err(|e| e.to_string()));
                if let Err(message) = added {
                    bar.suspend(|| eprintln!("skipped: {message}"));
                }
                bar.inc(1);
            }
            bar.finish_and_clear();
            session.fit().map_err(|e| e.to_string())?;
            (session, false)
        }
    };

    // Calibration images come out of the test set (and the validation split), so the
    // threshold is never chosen on what it is judged on; the good photos training held
    // out join them.
    let (calibration, test) = match threshold_method {
        None => (Vec::new(), dataset.test.clone()),
        Some(_) => split_calibration(&dataset.test, &dataset.validation, args.calibrate, args.damage_head.is_some()),
    };
    feed(&mut session, root, &calibration, true, "calibrating", &mut problems);
    session.choose_threshold().map_err(|e| e.to_string())?;

    let training_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let judged = feed(&mut session, root, &test, false, "evaluating", &mut problems);
    let inspect_ms_per_image = started.elapsed().as_secs_f64() * 1000.0 / judged.max(1) as f64;
    let timing = (!profile_given).then(|| Timing {
        training_images: session.evaluated_profile().map_or(0, |p| p.training_images),
        training_seconds,
        inspect_ms_per_image,
    });
    let report = session.report(timing).map_err(|e| format!("{}: {e}", root.display()))?;
    for p in &problems {
        eprintln!("note: {p}");
    }
    if let Some(profile) = session.evaluated_profile() {
        print_report(profile, &report);
    }
    if let Some(path) = &args.json {
        let json = serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?;
        std::fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &args.scores {
        std::fs::write(path, session.scores_csv()).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// Feeds samples read from the dataset folder to the session; a sample that cannot be
/// read or scored is named in `problems` and left out. Returns how many were scored.
fn feed(session: &mut EvalSession, root: &Path, samples: &[Sample], calibration: bool, what: &str, problems: &mut Vec<String>) -> usize {
    let bar = progress(samples.len(), what);
    let mut scored = 0;
    for sample in samples {
        let added = read_bounded(&root.join(&sample.path)).and_then(|bytes| {
            let mask = sample.mask.as_ref().filter(|_| sample.anomalous).map(|rel| read_bounded(&root.join(rel)));
            session.add_sample(sample, &bytes, mask, calibration).map_err(|e| e.to_string())
        });
        match added {
            Ok(mask_problems) => {
                problems.extend(mask_problems);
                scored += 1;
            }
            Err(message) => problems.push(format!("{message}; left out")),
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    scored
}

fn print_report(profile: &Profile, r: &Report) {
    let f = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "  -  ".into());
    println!("{} ({}, {} training images)", profile.name, profile.method_name(), profile.training_images);
    if let Some(m) = &profile.method {
        println!("{}", m.why);
    }
    println!("threshold {:.3}: {}", r.threshold, r.threshold_method);
    match r.check_from {
        Some(from) => println!("CHECK from {from:.3} up to the threshold: a person looks at those"),
        None => println!("no CHECK band: every photo is OK or DAMAGED"),
    }
    println!(
        "{:<14} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "", "images", "img AUROC", "img AP", "px AUROC", "AUPRO", "IoU", "F1", "precision", "recall", "accuracy", "CHECK", "missed OK"
    );
    let row = |name: &str, m: &Metrics| {
        println!(
            "{:<14} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
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
            f(m.image_accuracy),
            f(m.check_share),
            f(m.damaged_passed_as_ok)
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
