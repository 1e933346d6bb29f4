//! The native command-line tool: train, calibrate, inspect, identify, eval.

mod bench;
mod eval;
mod handheld;
mod identify;

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::damage_head::{DamageHead, Example, DAMAGE_WEIGHT};
use crate::engine::embed::EmbedConfig;
use crate::engine::image_ops::MAX_FILE_BYTES;
use crate::engine::inspector::{Inspector, Trainer};
use crate::engine::learning::{Learning, MAX_LEARNING_BYTES};
use crate::engine::manifest::BackboneManifest;
use crate::engine::postprocess::Band;
use crate::engine::profile::{LearntHead, Profile, MAX_PROFILE_BYTES};
use crate::engine::settings::{Method, TrainSettings};
use crate::eval::session::evaluate_damaged;

#[derive(Parser)]
#[command(name = "damagelens", version, about = "Visual damage inspection trained on good items only (PaDiM / PatchCore).")]
struct Cli {
    /// Backbone manifest; the ONNX file sits beside it.
    #[arg(long, global = true, default_value = "models/efficientnet_lite0.manifest.json")]
    backbone: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Learn a product from photos of good items; writes a profile file.
    Train {
        /// Image files or folders of good items.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        #[arg(long)]
        name: String,
        #[arg(long, short)]
        out: PathBuf,
        #[command(flatten)]
        settings: SettingsArgs,
        /// Also write the learning state beside the profile (OUT with the extension
        /// `dllearning`, tens of MB), from which `learn` adds photos later.
        #[arg(long)]
        keep_learning: bool,
        /// Photos (files or folders) of damaged items: the profile also learns a damage
        /// head from them, fused into the heatmaps it shows (its verdicts stay the
        /// anomaly model's).
        #[arg(long, num_args = 1..)]
        damaged: Vec<PathBuf>,
        /// Masks of the damaged photos (white where damaged, named like their photos);
        /// without, each photo's strangest patches stand for its damage.
        #[arg(long)]
        masks: Option<PathBuf>,
    },
    /// Learn more good photos into a trained profile without relearning the others: goes
    /// on from the learning state `train --keep-learning` wrote beside it, and gives the
    /// profile training on all the photos would (photos added after the ones learnt).
    Learn {
        #[arg(long)]
        profile: PathBuf,
        /// Image files or folders of good items to add.
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// The new profile; its learning state goes beside it.
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Score photos with a profile; prints one JSON line each and can write heatmaps.
    Inspect {
        #[arg(long)]
        profile: PathBuf,
        #[arg(required = true)]
        images: Vec<PathBuf>,
        /// Folder for heatmap PNGs (the photo with the heatmap over it).
        #[arg(long)]
        heatmaps: Option<PathBuf>,
    },
    /// Choose a profile's threshold from good and damaged photos (with masks, if any).
    Calibrate {
        #[arg(long)]
        profile: PathBuf,
        /// Photos (files or folders) of good items not used in training.
        #[arg(long, num_args = 1..)]
        good: Vec<PathBuf>,
        /// Photos (files or folders) of damaged items.
        #[arg(long, num_args = 1..)]
        damaged: Vec<PathBuf>,
        /// Folder of masks named like the damaged photos (`<name>_mask.png` or `<name>.png`, any image extension or case).
        #[arg(long)]
        masks: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "max-iou")]
        method: eval::ThresholdArg,
        #[arg(long, short)]
        out: PathBuf,
    },
    /// Which product each photo shows, among the profiles in a folder; one JSON line each.
    Identify(identify::IdentifyArgs),
    /// Evaluate on a dataset folder (MVTec AD, BTAD or plain layout): the twofold report.
    Eval(eval::EvalArgs),
    /// Time the backbone and whole inspections on this machine; prints JSON.
    Bench(bench::BenchArgs),
    /// Copy a dataset as if every photo were taken hand-held: each shifted, turned, zoomed
    /// and lit at random (seeded), masks moved with their photos.
    Handheld(handheld::HandHeldArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum MethodArg {
    Padim,
    Patchcore,
    /// PaDiM and PatchCore together, each with its best settings (bench/STUDY.md).
    Ensemble,
    /// Each of the above, PaDiM and PatchCore also with hand-held copies, trained on the same photos;
    /// the one that best tells made-up damage from held-out good photos is kept.
    Auto,
}

#[derive(clap::Args, Clone)]
pub struct SettingsArgs {
    #[arg(long, value_enum, default_value = "padim")]
    pub method: MethodArg,
    /// PatchCore: share of training patches kept in the memory bank.
    #[arg(long)]
    pub coreset: Option<f32>,
    /// Backbone outputs feeding the patches, finest first (default feat_s8,feat_s16).
    #[arg(long, value_delimiter = ',')]
    pub layers: Option<Vec<String>>,
    /// Random projection dimension; 0 keeps every channel.
    #[arg(long)]
    pub dims: Option<usize>,
    /// Neighbourhood averaged around each patch (1, 3, 5 or 7).
    #[arg(long)]
    pub neighbourhood: Option<usize>,
    /// Photos are resized to this many pixels a side before the backbone (default: the
    /// backbone manifest's, 224); a multiple of 32.
    #[arg(long)]
    pub input_size: Option<u32>,
    /// Even out each photo's brightness first: for light that changes between photos.
    /// An item that is darker all over is then no longer told apart.
    #[arg(long)]
    pub even_brightness: bool,
    /// Learn this many hand-held copies of each training photo beside it (shifted up to
    /// 8%, turned up to 10 degrees, zoomed and lit up to 8% and 15%; seeded), for items
    /// photographed by hand. Training takes 1 + N times as long.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=MAX_AUGMENT))]
    pub augment: u32,
}

/// More copies than this add training time, not knowledge of the item.
const MAX_AUGMENT: i64 = 16;

impl SettingsArgs {
    pub fn settings(&self) -> CliResult<TrainSettings> {
        let mut s = match self.method {
            MethodArg::Padim => TrainSettings::padim(),
            MethodArg::Patchcore => TrainSettings::patchcore(),
            MethodArg::Ensemble => TrainSettings::ensemble(),
            MethodArg::Auto => TrainSettings::automatic(),
        };
        let tuned = self.layers.is_some() || self.dims.is_some() || self.neighbourhood.is_some() || self.coreset.is_some();
        if s.choose && (tuned || self.augment > 0) {
            return Err("--method auto weighs the methods with their default settings, hand-held copies included. Leave out --layers, --dims, --neighbourhood, --coreset and --augment, or name a method".into());
        }
        if s.detectors.len() > 1 && (self.layers.is_some() || self.dims.is_some() || self.neighbourhood.is_some()) {
            return Err("--layers, --dims and --neighbourhood set up one method; the ensemble uses PaDiM's and PatchCore's best settings. Leave them out, or train --method padim or patchcore".into());
        }
        s.even_brightness = self.even_brightness;
        s.augment = self.augment;
        for d in &mut s.detectors {
            if let (Method::PatchCore { coreset_ratio }, Some(c)) = (&mut d.method, self.coreset) {
                *coreset_ratio = c;
            }
            let e: &mut EmbedConfig = &mut d.embed;
            if let Some(layers) = &self.layers {
                e.layers = layers.clone();
            }
            if let Some(dims) = self.dims {
                e.dims = (dims > 0).then_some(dims);
            }
            if let Some(n) = self.neighbourhood {
                e.neighbourhood = n;
            }
        }
        Ok(s)
    }
}

pub type CliResult<T = ()> = Result<T, String>;

pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Train { images, name, out, settings, keep_learning, damaged, masks } => {
            let learnt = Learnt { keep: keep_learning, damaged: &damaged, masks: masks.as_deref() };
            train(&cli.backbone, &images, &name, &out, &settings, learnt)
        }
        Command::Learn { profile, images, out } => learn(&cli.backbone, &profile, &images, &out),
        Command::Inspect { profile, images, heatmaps } => inspect(&cli.backbone, &profile, &images, heatmaps.as_deref()),
        Command::Calibrate { profile, good, damaged, masks, method, out } => {
            calibrate(&cli.backbone, &profile, &good, &damaged, masks.as_deref(), method, &out)
        }
        Command::Identify(args) => identify::run(&cli.backbone, &args),
        Command::Eval(args) => eval::run(&cli.backbone, &args),
        Command::Bench(args) => bench::run(&cli.backbone, &args),
        Command::Handheld(args) => handheld::run(&args),
    };
    match result {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("damagelens: {message}");
            1
        }
    }
}

/// The engine at the backbone's own input size, or at `input_size`.
pub fn load_inspector(manifest_path: &Path, input_size: Option<u32>) -> CliResult<Inspector> {
    let json = std::fs::read_to_string(manifest_path)
        .map_err(|e| format!("{}: {e}. Run `cargo xtask setup` to export the backbone.", manifest_path.display()))?;
    let manifest = BackboneManifest::from_json(&manifest_path.display().to_string(), &json).map_err(|e| e.to_string())?;
    let onnx_path = manifest_path.parent().unwrap_or(Path::new(".")).join(&manifest.file);
    let onnx =
        std::fs::read(&onnx_path).map_err(|e| format!("{}: {e}. Run `cargo xtask setup` to export the backbone.", onnx_path.display()))?;
    let size = input_size.unwrap_or(manifest.input.size);
    Inspector::with_input_size(manifest, &onnx, size).map_err(|e| e.to_string())
}

/// A profile and the engine at the input size it was trained at.
pub fn load_with_profile(manifest_path: &Path, profile_path: &Path) -> CliResult<(Inspector, Profile)> {
    let json = std::fs::read_to_string(manifest_path).map_err(|e| format!("{}: {e}", manifest_path.display()))?;
    let manifest = BackboneManifest::from_json(&manifest_path.display().to_string(), &json).map_err(|e| e.to_string())?;
    let bytes = read_profile_file(profile_path)?;
    let profile =
        Profile::from_bytes(&profile_path.display().to_string(), &bytes, Some(&manifest.onnx_sha256)).map_err(|e| e.to_string())?;
    Ok((load_inspector(manifest_path, Some(profile.backbone.input_size))?, profile))
}

/// Reads an image (or mask) file. A file over the engine's image limit is refused from
/// its size on disk, before any of it is read, with the engine's message.
pub fn read_bounded(path: &Path) -> CliResult<Vec<u8>> {
    let name = path.display().to_string();
    read_at_most(path, MAX_FILE_BYTES as u64).map_err(|error| match error {
        ReadError::TooLarge(len) => crate::engine::image_ops::file_too_large(&name, len).to_string(),
        ReadError::Io(e) => io_message(path, &e),
    })
}

/// Reads a profile, refusing one over `MAX_PROFILE_BYTES` before reading it.
fn read_profile_file(path: &Path) -> CliResult<Vec<u8>> {
    read_at_most(path, MAX_PROFILE_BYTES as u64).map_err(|error| match error {
        ReadError::TooLarge(len) => format!(
            "profile {}: the file is {} MB, more than a profile can be ({} MB). Choose the .dlprofile file written by `damagelens train`",
            path.display(),
            len >> 20,
            MAX_PROFILE_BYTES >> 20
        ),
        ReadError::Io(e) => io_message(path, &e),
    })
}

enum ReadError {
    TooLarge(u64),
    Io(std::io::Error),
}

/// The size comes from the open file's metadata, so a huge file costs nothing; the read
/// is capped as well, for files whose size the metadata does not tell (pipes, /dev/zero).
fn read_at_most(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(ReadError::Io)?;
    let len = file.metadata().map_err(ReadError::Io)?.len();
    if len > limit {
        return Err(ReadError::TooLarge(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    file.take(limit + 1).read_to_end(&mut bytes).map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// "{path}: what went wrong. What to do" for the usual reasons a file cannot be read.
fn io_message(path: &Path, e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    let fix = match e.kind() {
        ErrorKind::NotFound => "there is no such file. Check the path",
        ErrorKind::PermissionDenied => "permission denied. Check that you may read the file",
        ErrorKind::IsADirectory => "this is a folder, not a file",
        _ => return format!("{}: {e}", path.display()),
    };
    format!("{}: {fix}", path.display())
}

/// Image files given directly or found (sorted) in the given folders.
pub fn image_files(inputs: &[PathBuf]) -> CliResult<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(input)
                .map_err(|e| format!("{}: {e}", input.display()))?
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.')))
                .collect();
            found.sort();
            out.extend(found);
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

pub fn progress(total: usize, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({eta} left)") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// Trains a profile from image files; bad files are reported and skipped.
/// Adds every file it can use to `trainer`, naming the ones it skips.
fn add_files(trainer: &mut Trainer, files: &[PathBuf]) {
    let bar = progress(files.len(), "training");
    let mut skipped = 0;
    for path in files {
        let added = read_bounded(path).and_then(|bytes| trainer.add(&path.display().to_string(), &bytes).map_err(|e| e.to_string()));
        if let Err(message) = added {
            skipped += 1;
            bar.suspend(|| eprintln!("skipped: {message}"));
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if skipped > 0 {
        eprintln!("{skipped} of {} files skipped (named above); training on the others", files.len());
    }
}

/// Where a profile's learning state is kept: beside it.
fn learning_path(profile: &Path) -> PathBuf {
    profile.with_extension("dllearning")
}

/// Writes a profile file whole ([`write_whole`]).
fn save_profile(profile: &Profile, out: &Path) -> CliResult {
    write_whole(out, &profile.to_bytes().map_err(|e| e.to_string())?)
}

/// Writes beside the target and renames, so a failure never leaves half a file.
fn write_whole(out: &Path, bytes: &[u8]) -> CliResult {
    let tmp = out.with_extension("partial");
    std::fs::write(&tmp, bytes).and_then(|_| std::fs::rename(&tmp, out)).map_err(|e| format!("{}: {e}", out.display()))
}

/// Writes `profile` to `out`, and `learning` beside it.
fn save_learnt(profile: &Profile, learning: Option<&Learning>, out: &Path) -> CliResult {
    if let Some(learning) = learning {
        write_whole(&learning_path(out), &learning.to_bytes().map_err(|e| e.to_string())?)?;
    }
    save_profile(profile, out)
}

/// What `train` keeps besides the profile: the learning state, and a damage head learnt
/// from damaged photos (with their masks).
struct Learnt<'a> {
    keep: bool,
    damaged: &'a [PathBuf],
    masks: Option<&'a Path>,
}

/// The damaged photos (files or folders) as samples, each with the mask named after it
/// in `masks` (`crate::eval::masks`).
fn damaged_samples(damaged: &[PathBuf], masks: Option<&Path>) -> CliResult<Vec<crate::eval::dataset::Sample>> {
    // Listed once, sorted, so that of two equally good names the same one wins on every machine.
    let mut mask_names: Vec<String> = match masks {
        Some(dir) => std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .flatten()
            .filter(|e| e.path().is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect(),
        None => Vec::new(),
    };
    mask_names.sort();
    Ok(image_files(damaged)?
        .iter()
        .map(|path| {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let mask =
                masks.and_then(|dir| crate::eval::masks::find_mask(&name, mask_names.iter().map(String::as_str)).map(|m| dir.join(m)));
            crate::eval::dataset::Sample {
                path: path.display().to_string(),
                anomalous: true,
                defect: "damaged".into(),
                mask: mask.map(|m| m.display().to_string()),
                category: None,
                background: None,
            }
        })
        .collect())
}

/// A damage head learnt from the damaged photos against the good photos training held out.
fn learn_head(
    inspector: &Inspector,
    profile: &Profile,
    learning: &Learning,
    damaged: &[PathBuf],
    masks: Option<&Path>,
) -> CliResult<LearntHead> {
    let good = learning.members.first().map_or(&[][..], |m| &m.holdout);
    if good.is_empty() {
        return Err("--damaged: a damage head needs good photos held out by training; give at least 5 good photos".into());
    }
    let mut examples: Vec<Example> = good.iter().cloned().map(Example::good).collect();
    let mut problems = Vec::new();
    for sample in damaged_samples(damaged, masks)? {
        let learnt = read_bounded(Path::new(&sample.path)).and_then(|bytes| {
            let mask = sample.mask.as_ref().map(|m| read_bounded(Path::new(m)));
            evaluate_damaged(inspector, profile, &sample, &bytes, mask, &mut problems).map_err(|e| e.to_string())
        });
        match learnt {
            Ok((_, example)) => examples.push(example),
            Err(message) => problems.push(format!("{message}; left out of the damage head")),
        }
    }
    problems.iter().for_each(|p| eprintln!("note: {p}"));
    let photos = examples.len() - good.len();
    let head = DamageHead::fit(&examples).map_err(|e| format!("--damaged: {e}"))?;
    Ok(LearntHead { head, weight: DAMAGE_WEIGHT, photos })
}

fn learn(backbone: &Path, profile_path: &Path, images: &[PathBuf], out: &Path) -> CliResult {
    let (inspector, profile) = load_with_profile(backbone, profile_path)?;
    let state = learning_path(profile_path);
    let bytes = read_at_most(&state, MAX_LEARNING_BYTES as u64).map_err(|error| match error {
        ReadError::TooLarge(len) => format!("{}: {} MB is more than any learning state", state.display(), len >> 20),
        ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound => format!(
            "{}: no learning state beside the profile. Train it with --keep-learning to add photos later, or train it again on all its photos",
            state.display()
        ),
        ReadError::Io(e) => io_message(&state, &e),
    })?;
    let learning = Learning::from_bytes(&state.display().to_string(), &bytes).map_err(|e| e.to_string())?;
    let before = profile.training_images;
    let mut trainer = Trainer::resume(&inspector, &profile, learning).map_err(|e| e.to_string())?;
    add_files(&mut trainer, &image_files(images)?);
    let (learnt, learning) = trainer.finish_learning(&profile.name).map_err(|e| e.to_string())?;
    save_learnt(&learnt, Some(&learning), out)?;
    eprintln!(
        "{}: learnt {} more good images without relearning the {before} others, threshold {:.3} -> {:.3}",
        out.display(),
        learnt.training_images - before,
        profile.calibration.threshold,
        learnt.calibration.threshold
    );
    Ok(())
}

fn train(backbone: &Path, images: &[PathBuf], name: &str, out: &Path, settings: &SettingsArgs, learnt: Learnt) -> CliResult {
    let inspector = load_inspector(backbone, settings.input_size)?;
    let mut trainer = Trainer::new(&inspector, &settings.settings()?).map_err(|e| e.to_string())?;
    add_files(&mut trainer, &image_files(images)?);
    let (mut profile, learning) = trainer.finish_learning(name).map_err(|e| e.to_string())?;
    if !learnt.damaged.is_empty() {
        profile.damage_head = Some(learn_head(&inspector, &profile, &learning, learnt.damaged, learnt.masks)?);
    }
    save_learnt(&profile, learnt.keep.then_some(&learning), out)?;
    let cost = profile.cost();
    eprintln!(
        "{}: {} on {} good images, threshold {:.3} ({})\n  model {:.1} MB{}, {:.1} M multiply-adds to score one image",
        out.display(),
        profile.method_name(),
        profile.training_images,
        profile.calibration.threshold,
        profile.calibration.method,
        cost.model_bytes as f64 / 1e6,
        cost.bank_size.map(|n| format!(", memory bank of {n} patches")).unwrap_or_default(),
        cost.multiply_adds_per_image as f64 / 1e6,
    );
    if let Some(m) = &profile.method {
        eprintln!("  {}", m.why);
    }
    Ok(())
}

fn calibrate(
    backbone: &Path,
    profile_path: &Path,
    good: &[PathBuf],
    damaged: &[PathBuf],
    masks: Option<&Path>,
    method: eval::ThresholdArg,
    out: &Path,
) -> CliResult {
    let (inspector, mut profile) = load_with_profile(backbone, profile_path)?;
    let Some(estimator) = eval::method(method) else {
        return Err("choose a threshold method to calibrate with (e.g. --method max-iou)".into());
    };
    let good = image_files(good)?.into_iter().map(|p| crate::eval::dataset::Sample {
        path: p.display().to_string(),
        anomalous: false,
        defect: "good".into(),
        mask: None,
        category: None,
        background: None,
    });
    let samples: Vec<_> = good.chain(damaged_samples(damaged, masks)?).collect();
    let mut problems = Vec::new();
    let items = eval::evaluate_all(&inspector, &profile, Path::new(""), &samples, "calibrating", &mut problems);
    for p in &problems {
        eprintln!("note: {p}");
    }
    let chosen =
        crate::eval::threshold::choose(&estimator, &crate::eval::report::calibration_set(&items, profile.backbone.input_size as usize))?;
    let (lo, hi) = items.iter().flat_map(|i| i.map.iter()).fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let scores = |anomalous: bool| items.iter().filter(|i| i.anomalous == anomalous).map(|i| i.score).collect::<Vec<_>>();
    profile.calibration =
        crate::engine::calibration_stats::calibrated(chosen.value, (lo, hi), chosen.explanation.clone(), &scores(false), &scores(true));
    save_profile(&profile, out)?;
    let flagged = chosen
        .expected_false_positive_rate
        .map(|r| format!(" ({:.1}% of these good photos would be flagged)", r * 100.0))
        .unwrap_or_default();
    eprintln!("{}: threshold {:.3}: {}{flagged}", out.display(), chosen.value, chosen.explanation.trim_end_matches('.'));
    Ok(())
}

fn inspect(backbone: &Path, profile_path: &Path, images: &[PathBuf], heatmaps: Option<&Path>) -> CliResult {
    let (inspector, profile) = load_with_profile(backbone, profile_path)?;
    if let Some(dir) = heatmaps {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    // A bad file is named on stderr and the batch goes on; the run fails only when no
    // image at all could be inspected, so one odd file does not hide the others' results.
    let files = image_files(images)?;
    let mut failures = 0;
    let mut bands = [0usize; 3];
    for path in &files {
        let name = path.display().to_string();
        let result = read_bounded(path).and_then(|bytes| {
            if let Some(problem) = inspector.capture_problem(&profile, &name, &bytes).map_err(|e| e.to_string())? {
                return Ok(Err(problem));
            }
            let r = inspector.inspect(&profile, &name, &bytes).map_err(|e| e.to_string())?;
            if let Some(dir) = heatmaps {
                let out = dir.join(format!("{}.heatmap.png", path.file_stem().unwrap_or_default().to_string_lossy()));
                write_overlay(&bytes, &name, &r.heatmap, r.map.size as u32, &out)?;
            }
            Ok(Ok(r))
        });
        match result {
            Ok(Err(problem)) => {
                bands[Band::Check as usize] += 1;
                println!("{}", serde_json::json!({ "file": name, "verdict": Band::Check.as_str(), "reason": problem }));
            }
            Ok(Ok(r)) => {
                bands[r.band as usize] += 1;
                println!(
                    "{}",
                    serde_json::json!({
                        "file": name, "score": r.score, "normalised_score": r.normalised_score,
                        "verdict": r.band.as_str(), "threshold": profile.calibration.threshold,
                        "check_from": profile.calibration.check.as_ref().map(|c| c.from),
                        "damage": r.damage,
                    })
                )
            }
            Err(message) => {
                failures += 1;
                eprintln!("damagelens: {message}");
            }
        }
    }
    let judged: usize = bands.iter().sum();
    if judged > 1 {
        let share = |n: usize| format!("{n} ({:.0}%)", 100.0 * n as f64 / judged as f64);
        eprintln!("damagelens: {judged} judged: OK {}, CHECK {}, DAMAGED {}", share(bands[0]), share(bands[1]), share(bands[2]));
    }
    batch_outcome(files.len(), failures, "inspect", "inspected")
}

/// How a batch ended: an error when nothing could be done with any file, else a note of
/// how many files failed (they were named as they came).
pub fn batch_outcome(files: usize, failures: usize, verb: &str, done: &str) -> CliResult {
    match (files, failures) {
        (0, _) => Err(format!("no image files to {verb}: the folders given are empty")),
        (n, f) if f == n => Err(format!("no image could be {done} ({n} file(s), see above)")),
        (n, f) if f > 0 => {
            eprintln!("damagelens: {f} of {n} files could not be {done} (named above); the other {} were", n - f);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// The photo with the RGBA heatmap blended over it, at the photo's size.
fn write_overlay(photo: &[u8], name: &str, heatmap: &[u8], size: u32, out: &Path) -> CliResult {
    let rgb = crate::engine::image_ops::decode_rgb(name, photo).map_err(|e| e.to_string())?;
    let layer = image::RgbaImage::from_raw(size, size, heatmap.to_vec()).ok_or("heatmap has the wrong size")?;
    let layer = image::imageops::resize(&layer, rgb.width(), rgb.height(), image::imageops::FilterType::Triangle);
    let mut canvas = image::DynamicImage::ImageRgb8(rgb).to_rgba8();
    image::imageops::overlay(&mut canvas, &layer, 0, 0);
    canvas.save(out).map_err(|e| format!("{}: {e}", out.display()))
}
