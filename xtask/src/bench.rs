//! `cargo xtask bench | bench-quality | bench-study`: speed against onnxruntime, quality
//! against published figures, and the settings study; with the ELPV split they share.

use std::path::{Path, PathBuf};

use crate::setup::{elpv, elpv_mono, python_env};
use crate::util::{capture, run, run_in, step, wasm_env};
use crate::Result;

/// Speed and size, measured in one run: the native engine against onnxruntime (Python),
/// then, in headless Chromium, the app's engine against onnxruntime-web. `quick` takes a
/// few runs (CI's smoke test) and writes to target/bench instead of bench/.
pub fn bench(quick: bool) -> Result {
    step("WebAssembly build (trunk build --release)");
    run_in("trunk", &["build"], None, &wasm_env())?;
    run("cargo", &["build", "--bin", "damagelens"])?;
    bench_run(quick)
}

pub fn bench_run(quick: bool) -> Result {
    step(if quick { "Benchmark, quick (a few runs)" } else { "Benchmark" });
    let work = Path::new("target/bench");
    std::fs::create_dir_all(work).map_err(|e| format!("{}: {e}", work.display()))?;
    let runs = if quick { "3" } else { "30" };
    let tensor = work.join("input.f32");
    let images = std::fs::read_dir("tests/data/elpv/images")
        .map_err(|e| format!("tests/data/elpv/images: {e}. Run `cargo xtask setup`."))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "png"));
    let mut images: Vec<PathBuf> = images.collect();
    images.sort();
    images.truncate(12);
    let mut args = vec!["bench".to_string(), "--runs".into(), runs.into(), "--tensor-out".into(), tensor.display().to_string()];
    args.extend(images.iter().map(|p| p.display().to_string()));
    let native = capture("target/debug/damagelens", &args)?;
    std::fs::write(work.join("native.json"), native).map_err(|e| format!("target/bench/native.json: {e}"))?;
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("models/efficientnet_lite0.manifest.json").map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let size = manifest["input"]["size"].as_u64().unwrap_or(224).to_string();
    let mut ort_args =
        vec!["bench/ort_native.py".to_string(), "models/efficientnet_lite0.onnx".into(), tensor.display().to_string(), size, runs.into()];
    ort_args.extend(manifest["features"].as_array().into_iter().flatten().filter_map(|f| f["name"].as_str().map(String::from)));
    let python = python_env()?;
    let ort = capture(&python.display().to_string(), &ort_args)?;
    std::fs::write(work.join("ort-native.json"), ort).map_err(|e| format!("target/bench/ort-native.json: {e}"))?;
    let (md, png) = if quick {
        ("../../target/bench/RESULTS.md", "../../target/bench/latency.png")
    } else {
        ("../../bench/RESULTS.md", "../../bench/latency.png")
    };
    let mut node = vec!["bench.mjs"];
    if quick {
        node.push("--quick");
    }
    node.extend(["../../target/bench/native.json", "../../target/bench/ort-native.json", md, png]);
    run_in("node", &node, Some(Path::new("tests/e2e")), &[])?;
    eprintln!("{}", std::fs::read_to_string(md.trim_start_matches("../../")).unwrap_or_default());
    Ok(())
}

/// The ELPV split of the quality benchmark: 200 good mono cells drawn with a seeded
/// xorshift64* shuffle (seed 0) for training; the other good mono cells and every
/// defective mono cell (probability 1/3, 2/3 or 1) for testing. A random split, because
/// the file order follows imaging sessions whose brightness differs.
const ELPV_TRAIN: usize = 200;
const TIRE: &str = "../shared/data/mvtec3d-tire";

fn elpv_split(dir: &Path) -> Result {
    if dir.join("test/good").exists() {
        return Ok(());
    }
    let (mut good, defective) = elpv_mono()?;
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15; // seed 0, mixed
    let mut next = || {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_F491_4F6C_DD1D)
    };
    for i in (1..good.len()).rev() {
        let j = (next() % (i as u64 + 1)) as usize;
        good.swap(i, j);
    }
    let copy = |file: &str, to: &str| -> Result {
        let target = dir.join(to);
        std::fs::create_dir_all(&target).map_err(|e| e.to_string())?;
        std::fs::copy(Path::new("tests/data/elpv/images").join(file), target.join(file)).map(|_| ()).map_err(|e| format!("{file}: {e}"))
    };
    for (i, f) in good.iter().enumerate() {
        copy(f, if i < ELPV_TRAIN { "train/good" } else { "test/good" })?;
    }
    for f in &defective {
        copy(f, "test/defective")?;
    }
    Ok(())
}

/// Settings tried on ELPV mono, each against the defaults: the per-choice study.
const STUDY: &[(&str, &[&str])] = &[
    ("PaDiM, defaults (strides 8+16, 100 dims, 224 px)", &["--method", "padim"]),
    ("PaDiM, stride 8 only (40 channels, no projection)", &["--method", "padim", "--layers", "feat_s8"]),
    ("PaDiM, strides 4+8 (64 channels, no projection)", &["--method", "padim", "--layers", "feat_s4,feat_s8"]),
    ("PaDiM, strides 4+8+16 on the stride-4 grid, 100 dims", &["--method", "padim", "--layers", "feat_s4,feat_s8,feat_s16"]),
    ("PaDiM, strides 4+8+16, all 176 channels", &["--method", "padim", "--layers", "feat_s4,feat_s8,feat_s16", "--dims", "0"]),
    ("PaDiM, 320 px input", &["--method", "padim", "--input-size", "320"]),
    ("PatchCore, defaults (3x3 neighbourhood, 1% coreset)", &["--method", "patchcore"]),
    ("PatchCore, no neighbourhood (1x1)", &["--method", "patchcore", "--neighbourhood", "1"]),
    ("PatchCore, 5x5 neighbourhood", &["--method", "patchcore", "--neighbourhood", "5"]),
    ("PatchCore, 3% coreset", &["--method", "patchcore", "--coreset", "0.03"]),
    ("PatchCore, 320 px input", &["--method", "patchcore", "--input-size", "320"]),
    ("PaDiM, strides 4+8+16, brightness evened", &["--method", "padim", "--layers", "feat_s4,feat_s8,feat_s16", "--even-brightness"]),
    ("PatchCore, 5x5 neighbourhood, brightness evened", &["--method", "patchcore", "--neighbourhood", "5", "--even-brightness"]),
    (
        "PaDiM, strides 4+8+16, 3x3 neighbourhood, brightness evened",
        &["--method", "padim", "--layers", "feat_s4,feat_s8,feat_s16", "--neighbourhood", "3", "--even-brightness"],
    ),
    ("Ensemble: PaDiM strides 4+8+16 3x3 + PatchCore 5x5, brightness evened", &["--method", "ensemble", "--even-brightness"]),
];

pub fn bench_study() -> Result {
    step("Building the CLI (release)");
    run("cargo", &["build", "--release", "--bin", "damagelens"])?;
    let out = Path::new("target/bench");
    let data = out.join("elpv-mono");
    elpv_split(&data)?;
    let mut rows = Vec::new();
    for (i, (label, args)) in STUDY.iter().enumerate() {
        step(label);
        let json = out.join(format!("study-{i}.json"));
        let mut all = vec!["eval", "--dataset", data.to_str().unwrap(), "--json", json.to_str().unwrap()];
        all.extend_from_slice(args);
        run("target/release/damagelens", &all)?;
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).map_err(|e| e.to_string())?)
            .map_err(|e| format!("{}: {e}", json.display()))?;
        let t = &report["timing"];
        rows.push(format!(
            "| {label} | `{}` | {:.3} | {:.0} |",
            args.join(" "),
            report["image_AUROC"].as_f64().unwrap_or(f64::NAN),
            t["inspect_ms_per_image"].as_f64().unwrap_or(f64::NAN)
        ));
    }
    let table = format!(
        "# Settings study on ELPV mono\n\nRegenerated by `cargo xtask bench-study`: image AUROC on the split of bench/QUALITY.md (200 random good cells to train; 388 good and 486 defective to test), release build, one thread, on {}.\n\n\
| setting | `damagelens eval` flags | image AUROC | ms per image |\n|---|---|---|---|\n{}\n",
        machine(),
        rows.join("\n")
    );
    std::fs::write("bench/STUDY.md", &table).map_err(|e| format!("bench/STUDY.md: {e}"))?;
    println!("\n{table}");
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| c.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    format!("{cpu} ({cores} {}, no GPU)", if cores == 1 { "core" } else { "cores" })
}

/// The hand-held variants' seed: one fixed draw, so runs compare.
const HAND_HELD_SEED: &str = "17";

/// What the quality benchmark trains: label, `damagelens eval` flags, file stem.
const QUALITY_METHODS: &[(&str, &[&str], &str)] = &[
    ("PaDiM", &["--method", "padim"], "padim"),
    ("PaDiM, 3 hand-held copies per photo", &["--method", "padim", "--augment", "3"], "padim-a3"),
    ("PatchCore", &["--method", "patchcore"], "patchcore"),
    ("PatchCore, 3 hand-held copies per photo", &["--method", "patchcore", "--augment", "3"], "patchcore-a3"),
    ("Ensemble (PaDiM strides 4+8+16 3x3 + PatchCore 5x5)", &["--method", "ensemble"], "ensemble"),
    ("Automatic (the chooser's pick of the five above)", &["--method", "auto"], "auto"),
];
/// The file stem of the chooser's run, and of the candidates it chooses among.
const CHOOSER: &str = "auto";
const CANDIDATES: &[&str] = &["padim", "padim-a3", "patchcore", "patchcore-a3", "ensemble"];

/// A report's figure `key`, when it has one.
fn figure(report: &serde_json::Value, key: &str) -> Option<f64> {
    report[key].as_f64()
}

/// A figure to three decimals, or n/a.
fn show(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.3}")).unwrap_or_else(|| "n/a".into())
}

fn read_report(json: &Path) -> Result<serde_json::Value> {
    serde_json::from_str(&std::fs::read_to_string(json).map_err(|e| format!("{}: {e}", json.display()))?)
        .map_err(|e| format!("{}: {e}", json.display()))
}

pub fn bench_quality() -> Result {
    step("Building the CLI (release)");
    run("cargo", &["build", "--release", "--bin", "damagelens"])?;
    let out = Path::new("target/bench");
    let (methods, chooser) = methods(out)?;
    let mut table = format!("{methods}\n{chooser}\n{}\n{}\n{}\n{}", thresholds(out)?, fusion(out)?, few_shot(out)?, identification(out)?);
    // Sections measured once by hand (with files the setup no longer makes) stay.
    let old = std::fs::read_to_string("bench/QUALITY.md").unwrap_or_default();
    if let Some(kept) = section_of(&old, FLOAT16_HEADING) {
        table = format!("{}\n\n{kept}\n", table.trim_end());
    }
    std::fs::create_dir_all("bench").map_err(|e| e.to_string())?;
    std::fs::write("bench/QUALITY.md", &table).map_err(|e| format!("bench/QUALITY.md: {e}"))?;
    println!("\n{table}");
    Ok(())
}

/// The sets of the quality benchmark, each aligned set followed by its hand-held variant
/// (made here: each photo, training ones too, shifted up to 8%, turned up to 10 degrees,
/// zoomed up to 8%, lit up to 15%; masks alike): (label, folder).
fn quality_sets(out: &Path) -> Result<Vec<(String, PathBuf)>> {
    elpv_split(&out.join("elpv-mono"))?;
    let mut aligned = vec![("ELPV mono (200 random good cells train; 388 good + 486 defective test)", out.join("elpv-mono"))];
    if Path::new(TIRE).join("train").exists() {
        aligned.push(("MVTec 3D-AD tire, RGB (210 train, 112 test)", PathBuf::from(TIRE)));
    } else {
        eprintln!("skipped: {TIRE} is not here (it is research data kept outside the repository)");
    }
    let mut datasets = Vec::new();
    for (label, dir) in aligned {
        let held = out.join(format!("{}-handheld", dir.file_name().unwrap().to_string_lossy()));
        step(&format!("{label}: hand-held variant"));
        let (from, to) = (dir.to_str().unwrap().to_string(), held.to_str().unwrap().to_string());
        run("target/release/damagelens", &["handheld", "--dataset", &from, "--out", &to, "--seed", HAND_HELD_SEED])?;
        datasets.push((label.to_string(), dir));
        datasets.push((format!("{label}, hand-held (seed {HAND_HELD_SEED})"), held));
    }
    Ok(datasets)
}

/// Every method on every set, aligned and hand-held: the top of bench/QUALITY.md, and the
/// chooser's section.
fn methods(out: &Path) -> Result<(String, String)> {
    let datasets = quality_sets(out)?;
    let mut rows = Vec::new();
    for (label, dir) in &datasets {
        for (method, flags, stem) in QUALITY_METHODS {
            step(&format!("{label}: {method}"));
            let json = out.join(format!("{}-{stem}.json", dir.file_name().unwrap().to_string_lossy()));
            let mut args = vec!["eval", "--dataset", dir.to_str().unwrap(), "--json", json.to_str().unwrap()];
            args.extend_from_slice(flags);
            run("target/release/damagelens", &args)?;
            let report = read_report(&json)?;
            let f = |k: &str| show(figure(&report, k));
            let t = &report["timing"];
            let per_s = t["training_images"].as_f64().unwrap_or(0.0) / t["training_seconds"].as_f64().unwrap_or(f64::NAN);
            rows.push(format!(
                "| {label} | {method} | {} | {} | {} | {} | {per_s:.1} | {:.0} |",
                f("image_AUROC"),
                f("pixel_AUROC"),
                f("pixel_AUPRO"),
                f("pixel_best_IoU"),
                t["inspect_ms_per_image"].as_f64().unwrap_or(f64::NAN)
            ));
        }
    }
    let table = format!(
        "# Quality benchmark\n\nRegenerated by `cargo xtask bench-quality`: DamageLens's defaults (EfficientNet-Lite0, 224 px; PaDiM on strides 8+16 projected to 100 dims; PatchCore with 3x3 neighbourhood and a 1% coreset), release build, one thread, on {}.\n\n\
Each set is measured as it is (aligned) and as a hand-held tablet would take it: `damagelens handheld --seed {HAND_HELD_SEED}` moves every photo, training photos included, by a seeded shift (up to 8% of each side), turn (up to 10 degrees), zoom (up to 8%) and light (up to 15%), with masks moved alike and the photo mirrored where the move leaves no pixels. \
\"3 hand-held copies per photo\" trains with `--augment 3`: three more such shots of each training photo are learnt beside it.\n\n\
| data | method | image AUROC | pixel AUROC | AUPRO (30% FPR) | best pixel IoU | training images/s | ms per image |\n|---|---|---|---|---|---|---|---|\n{}\n\
| published: MVTec 3D-AD tire, RGB PatchCore (WideResNet50, 224 px) | PatchCore | 0.72 | 0.975 | 0.90 | | | |\n\
| target: ELPV mono, same-backbone PaDiM | PaDiM | 0.88 | | | | | |\n\n\
Training time includes decoding and the backbone (and the copies); ms per image is the evaluation pass (decode, backbone, scoring, map). \
ELPV has no masks, so it has image-level figures only. The ELPV cells are aligned (bus bars always in the same place), which favours position-aware PaDiM; the tire moves between images, which favours PatchCore's search over all positions.\n",
        machine(),
        rows.join("\n")
    );
    Ok((table, chooser_section(out, &datasets)?))
}

const CHOOSER_HEADING: &str = "## The method chooser";

/// The chooser's pick on each set against the best of its candidates in hindsight, and
/// what hand-held photos cost the pick, from the JSON reports [`methods`] wrote.
fn chooser_section(out: &Path, datasets: &[(String, PathBuf)]) -> Result<String> {
    let json = |dir: &Path, stem: &str| out.join(format!("{}-{stem}.json", dir.file_name().unwrap().to_string_lossy()));
    let mut picks = Vec::new();
    let mut rows = Vec::new();
    for (label, dir) in datasets {
        let auto = read_report(&json(dir, CHOOSER))?;
        let pick = auto["method"].as_str().unwrap_or("?").to_string();
        let mut best = ("?".to_string(), f64::NEG_INFINITY);
        for stem in CANDIDATES {
            let r = read_report(&json(dir, stem))?;
            let name = r["method"].as_str().unwrap_or(stem).to_string();
            let name = if stem.ends_with("-a3") { format!("{name} with hand-held copies") } else { name };
            let auroc = figure(&r, "image_AUROC").unwrap_or(f64::NAN);
            if auroc > best.1 {
                best = (name, auroc);
            }
        }
        let got = figure(&auto, "image_AUROC").unwrap_or(f64::NAN);
        let gap = best.1 - got;
        rows.push(format!(
            "| {label} | {pick} | {got:.3} | {} | {:.3} | {gap:.3} | {} |",
            best.0,
            best.1,
            if gap <= 0.01 { "yes" } else { "no" }
        ));
        picks.push((label.clone(), pick, got, figure(&auto, "pixel_IoU")));
    }
    // Each aligned set is followed by its hand-held variant.
    let handheld: Vec<String> = picks
        .chunks(2)
        .filter_map(|pair| match pair {
            [(label, pick, aligned, iou), (_, hh_pick, held, hh_iou)] => Some(format!(
                "| {label} | {pick} / {hh_pick} | {aligned:.3} | {held:.3} | {:.3} | {} | {} | {} |",
                aligned - held,
                if aligned - held <= 0.03 { "yes" } else { "no" },
                show(*iou),
                show(*hh_iou),
            )),
            _ => None,
        })
        .collect();
    Ok(format!(
        "{CHOOSER_HEADING}\n\nRegenerated by `cargo xtask bench-quality` with the table above (alone: `cargo xtask bench-quality --methods`): \
`damagelens eval --method auto` (the app's *Automatic*) trains the five candidates on the same photos (PaDiM and PatchCore, each also with 3 hand-held copies per photo, and the ensemble), \
draws made-up damage on each held-out good photo (a scratch, a stain, a patch of the photo pasted where it does not belong: `engine::chooser`), \
and keeps the candidate whose image scores tell those from the held-out photos best, or the cheapest within 0.01 of it. \
Its pick against the best of the five in hindsight, on the real damaged photos, from the same run (target: within 0.01):\n\n\
| data | chooser's pick | its image AUROC | best in hindsight | its image AUROC | gap | within 0.01 |\n|---|---|---|---|---|---|---|\n{}\n\n\
What hand-held photos cost the chooser's pick (target: image AUROC within 0.03 of aligned; pixel IoU at the profile's threshold at least half of aligned):\n\n\
| data | pick aligned / hand-held | image AUROC aligned | hand-held | drop | within 0.03 | pixel IoU aligned | hand-held |\n|---|---|---|---|---|---|---|---|\n{}\n",
        rows.join("\n"),
        handheld.join("\n")
    ))
}

const THRESHOLDS_HEADING: &str = "## Threshold estimators";
/// The estimators of the study: `--threshold-method` names; "profile" is the profile's
/// own threshold from good photos alone.
const ESTIMATORS: &[&str] = &["profile", "max-iou", "max-f1", "youden", "sigma", "percentile", "fp-budget"];

/// One estimator's figures over the study's sets: pixel IoUs and image accuracies over the
/// sets with masks, image accuracies over the sets without, so that each mean compares
/// estimators on the same sets.
#[derive(Default)]
struct EstimatorFigures {
    ious: Vec<f64>,
    masked_accuracies: Vec<f64>,
    unmasked_accuracies: Vec<f64>,
}

/// The research's threshold study (visual-inspection-benchmark): each estimator chooses the
/// threshold on the calibration photos (held-out good photos, and 2 damaged photos with
/// masks of each defect type taken out of the test set), and the rest of the test set is
/// judged at it: pixel IoU by defect category, and how many photos are judged right.
fn thresholds(out: &Path) -> Result<String> {
    let mut sections = Vec::new();
    let mut totals: Vec<(&'static str, EstimatorFigures)> = ESTIMATORS.iter().map(|e| (*e, EstimatorFigures::default())).collect();
    for (label, dir) in quality_sets(out)? {
        let masks = dir.join("ground_truth").exists();
        // The method whose maps follow the damage where there are masks (pixel AUROC
        // 0.965 against PaDiM's 0.747 on the tire); the best ranking where there are none.
        let method = if masks { "patchcore" } else { "padim" };
        let mut categories: Vec<String> = Vec::new();
        let mut rows = Vec::new();
        for (estimator, figures) in &mut totals {
            step(&format!("{label}: threshold by {estimator}"));
            let json = out.join(format!("{}-threshold-{estimator}.json", dir.file_name().unwrap().to_string_lossy()));
            let args = [
                "eval",
                "--dataset",
                dir.to_str().unwrap(),
                "--method",
                method,
                "--threshold-method",
                estimator,
                "--json",
                json.to_str().unwrap(),
            ];
            if let Err(e) = run("target/release/damagelens", &args) {
                eprintln!("{label}, {estimator}: {e}");
                // Where there are masks every estimator applies, so a failure is news.
                let why =
                    if masks { format!("failed: {e}") } else { "cannot be used here (no damaged photos with masks to choose on)".into() };
                rows.push(format!("| {estimator} | {why} | | | |"));
                continue;
            }
            let r = read_report(&json)?;
            let by_category: serde_json::Map<String, serde_json::Value> = r["categories"].as_object().cloned().unwrap_or_default();
            if categories.is_empty() {
                categories = by_category.keys().cloned().collect();
            }
            let iou = figure(&r, "pixel_IoU");
            figures.ious.extend(iou);
            if masks { &mut figures.masked_accuracies } else { &mut figures.unmasked_accuracies }.extend(figure(&r, "image_accuracy"));
            let per_category: Vec<String> = categories.iter().map(|c| show(figure(&by_category[c], "pixel_IoU"))).collect();
            rows.push(format!(
                "| {estimator} | {:.3} | {} | {} | {} | {} |",
                figure(&r, "threshold").unwrap_or(f64::NAN),
                if masks { format!("{} ({})", show(iou), per_category.join(" / ")) } else { "no masks".into() },
                show(figure(&r, "image_accuracy")),
                show(figure(&r, "damaged_passed_as_ok")),
                show(figure(&r, "check_share")),
            ));
        }
        sections.push(format!(
            "{label}, {}:\n\n| estimator | threshold | {} | image accuracy | damaged passed as OK | CHECK share |\n|---|---|---|---|---|---|\n{}\n",
            if masks { "PatchCore" } else { "PaDiM" },
            if masks { format!("pixel IoU overall ({})", categories.join(" / ")) } else { "pixel IoU".to_string() },
            rows.join("\n")
        ));
    }
    let mean = |v: &[f64]| if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 };
    let best = |figures: Vec<(&'static str, &Vec<f64>)>| {
        figures.into_iter().filter(|(_, v)| !v.is_empty()).map(|(e, v)| (e, mean(v))).fold(("none", f64::NEG_INFINITY), |b, x| {
            if x.1 > b.1 {
                x
            } else {
                b
            }
        })
    };
    let (iou_best, iou) = best(totals.iter().map(|(e, f)| (*e, &f.ious)).collect());
    let (accuracy_best, accuracy) = best(totals.iter().map(|(e, f)| (*e, &f.masked_accuracies)).collect());
    let (unmasked_best, unmasked) = best(totals.iter().map(|(e, f)| (*e, &f.unmasked_accuracies)).collect());
    Ok(format!(
        "{THRESHOLDS_HEADING}\n\nRegenerated by `cargo xtask bench-quality` (alone: `cargo xtask bench-quality --thresholds`): the research's threshold study. \
Each estimator chooses the threshold on the calibration photos (the good photos training held out, and 2 damaged photos with masks of each defect type, taken out of the test set); \
the rest of the test set is judged at it. `profile` is the threshold training sets from good photos alone (mean + 2σ of the held-out good photos' scores); \
`max-iou` and `max-f1` take the best pixel IoU / F1 on the calibration masks; `youden` the best true minus false positive rate over calibration photos; \
`sigma`, `percentile` and `fp-budget` use good photos only (mean + 3σ, 99th percentile, at most 1% flagged). \
ELPV has no masks, so only the estimators that need no damaged photos with masks apply there.\n\n{}\n\
Over the sets with masks, where every estimator applies: best mean pixel IoU **{iou_best}** ({iou:.3}), best mean image accuracy **{accuracy_best}** ({accuracy:.3}). \
Over the sets without masks, among the estimators that apply there: best mean image accuracy **{unmasked_best}** ({unmasked:.3}).\n",
        sections.join("\n")
    ))
}

const FUSION_HEADING: &str = "## A damage head learnt from confirmed damage";
/// Damaged photos per defect type the head learns from (0: the anomaly model alone).
const FUSION_DAMAGED: [usize; 3] = [2, 5, 10];
/// The fusion weight measured: `engine::damage_head::DAMAGE_WEIGHT`, the CLI's default.
const DAMAGE_WEIGHT: &str = "0.5";

/// Runs `jobs` (arguments to the CLI) two at a time, one per core; the first failure is returned.
fn run_pairs(jobs: &[Vec<String>]) -> Result {
    for pair in jobs.chunks(2) {
        let results: Vec<Result> = std::thread::scope(|scope| {
            let handles: Vec<_> = pair
                .iter()
                .map(|args| scope.spawn(move || run("target/release/damagelens", &args.iter().map(String::as_str).collect::<Vec<_>>())))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err("a benchmark run panicked".into()))).collect()
        });
        results.into_iter().collect::<Result<Vec<()>>>()?;
    }
    Ok(())
}

/// The anomaly model alone against the same model fused with a damage head learnt from
/// 2, 5 and 10 damaged photos per defect type (taken out of the test set; the same test
/// photos judged both ways), on every quality set.
fn fusion(out: &Path) -> Result<String> {
    let mut sections = Vec::new();
    for (label, dir) in quality_sets(out)? {
        let masks = dir.join("ground_truth").exists();
        let method = if masks { "patchcore" } else { "padim" };
        let stem = dir.file_name().unwrap().to_string_lossy().to_string();
        let json = |damaged: usize, head: bool| out.join(format!("{stem}-fusion-{damaged}{}.json", if head { "-head" } else { "" }));
        let eval = |damaged: usize, head: bool| -> Vec<String> {
            let mut args: Vec<String> = ["eval", "--dataset", dir.to_str().unwrap(), "--method", method].map(String::from).to_vec();
            if damaged > 0 {
                args.extend(["--threshold-method".into(), "youden".into(), "--calibrate".into(), damaged.to_string()]);
            }
            // Alone: the head is learnt but weighs nothing, so both runs take the same
            // damaged photos out of the test set (ELPV's have no masks) and judge the same rest.
            if damaged > 0 {
                args.extend(["--damage-head".into(), if head { DAMAGE_WEIGHT } else { "0" }.into()]);
            }
            args.extend(["--json".into(), json(damaged, head).display().to_string()]);
            args
        };
        step(&format!("{label}: anomaly model alone and with a damage head"));
        let mut jobs = vec![eval(0, false)];
        for n in FUSION_DAMAGED {
            jobs.extend([eval(n, false), eval(n, true)]);
        }
        run_pairs(&jobs)?;
        let cells = |r: &serde_json::Value| {
            ["image_AUROC", "shown_map_AUROC", "pixel_AUROC", "pixel_AUPRO", "false_alarms_at_95"].map(|k| show(figure(r, k))).join(" | ")
        };
        let mut rows = vec![format!("| 0 | {} | |", cells(&read_report(&json(0, false))?))];
        for n in FUSION_DAMAGED {
            let (alone, fused) = (read_report(&json(n, false))?, read_report(&json(n, true))?);
            rows.push(format!("| {n} | {} | anomaly model alone |", cells(&alone)));
            rows.push(format!("| {n} | {} | fused with the damage head |", cells(&fused)));
        }
        sections.push(format!(
            "{label}, {}{}:\n\n| damaged photos per defect | image AUROC | image AUROC of the map's maximum | pixel AUROC | AUPRO | false alarms at 95% of damage caught | |\n|---|---|---|---|---|---|---|\n{}\n",
            if masks { "PatchCore" } else { "PaDiM" },
            if masks { ", the head learnt from masks" } else { ", no masks: the head learns from the top 1% of each damaged photo's patches" },
            rows.join("\n")
        ));
    }
    Ok(format!(
        "{FUSION_HEADING}\n\nRegenerated by `cargo xtask bench-quality` (alone: `cargo xtask bench-quality --fusion`). \
With N damaged photos per defect type taken out of the test set, the anomaly model is judged alone and fused with a damage head learnt from those N photos \
(`damagelens eval --damage-head`: a logistic regression on the first detector's patch features; its damage probability lifts the map by \
{DAMAGE_WEIGHT} of a threshold where it is sure, `src/engine/damage_head.rs`); both judge the same remaining test photos. Row 0 is the anomaly model on the whole test set. \
The fused map shows where the damage is; each photo's score, and so image AUROC and the false-alarm share, stays the anomaly model's. \
*Image AUROC of the map's maximum* is how photos would rank if the fused map's maximum were the score instead (the rule not taken); \
tried by hand on the tire (PatchCore, 10 damaged photos per defect), heavier fusion ranked worse still (weight 1: 0.698; multiplying the map by 1 + 0.5 p: 0.725). \
The false-alarm share is that of the good test photos at the highest threshold that still flags 95% of the damaged ones.\n\n{}\n",
        sections.join("\n")
    ))
}

const IDENTIFICATION_HEADING: &str = "## Product identification";
const FEW_SHOT_HEADING: &str = "## Few good photos";
/// Measured once, when the model file went to float16 weights: the float32 file it
/// replaced is no longer made, so the section is kept as written.
const FLOAT16_HEADING: &str = "## Model weights in float16";

/// Where the section of `doc` under `heading` lies: from the heading up to the next
/// `## ` heading (or the end).
fn section_span(doc: &str, heading: &str) -> Option<std::ops::Range<usize>> {
    let start = doc.find(heading)?;
    let rest = &doc[start + heading.len()..];
    Some(start..rest.find("\n## ").map_or(doc.len(), |i| start + heading.len() + i + 1))
}

/// The section of `doc` under `heading`, heading included.
fn section_of<'a>(doc: &'a str, heading: &str) -> Option<&'a str> {
    section_span(doc, heading).map(|span| doc[span].trim_end())
}

/// `bench-quality --methods`, `--identification` or `--few-shot`: only that part of
/// bench/QUALITY.md, the rest kept as the last run wrote it.
pub fn bench_section(which: &str) -> Result {
    step("Building the CLI (release)");
    run("cargo", &["build", "--release", "--bin", "damagelens"])?;
    let out = Path::new("target/bench");
    let old = std::fs::read_to_string("bench/QUALITY.md").unwrap_or_default();
    let (new, section) = match which {
        "--identification" => {
            let section = identification(out)?;
            (replace_section(&old, IDENTIFICATION_HEADING, &section), section)
        }
        "--thresholds" => {
            let section = thresholds(out)?;
            (replace_section(&old, THRESHOLDS_HEADING, &section), section)
        }
        "--few-shot" => {
            let section = few_shot(out)?;
            (replace_section(&old, FEW_SHOT_HEADING, &section), section)
        }
        "--fusion" => {
            let section = fusion(out)?;
            (replace_section(&old, FUSION_HEADING, &section), section)
        }
        "--methods" => {
            let (methods, chooser) = methods(out)?;
            // The methods' table is everything above the first section; the chooser's section follows it.
            let rest = old.find("\n## ").map_or("", |i| &old[i + 1..]);
            let rest = replace_section(rest, CHOOSER_HEADING, "");
            let section = format!("{}\n\n{}\n", methods.trim_end(), chooser.trim_end());
            (format!("{section}\n{}", rest.trim_start()), section)
        }
        other => {
            return Err(format!(
                "bench-quality: unknown part {other}; give --methods, --thresholds, --fusion, --identification or --few-shot"
            ))
        }
    };
    std::fs::write("bench/QUALITY.md", new).map_err(|e| format!("bench/QUALITY.md: {e}"))?;
    println!("\n{section}");
    Ok(())
}

/// `doc` with the section under `heading` (up to the next `## ` heading) replaced by
/// `section`, or `section` added at the end.
fn replace_section(doc: &str, heading: &str, section: &str) -> String {
    let section = section.trim_end();
    match section_span(doc, heading) {
        Some(span) => format!("{}{section}\n\n{}", &doc[..span.start], &doc[span.end..]).trim_end().to_string() + "\n",
        None => format!("{}\n\n{section}\n", doc.trim_end()),
    }
}

/// Photos of one product to identify: (file, damaged).
type Held = Vec<(PathBuf, bool)>;

fn files_of(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).into_iter().flatten().flatten().map(|e| e.path()).collect();
    files.retain(|p| p.extension().is_some_and(|x| x == "png"));
    files.sort();
    files
}

/// Test photos of an MVTec-layout set: every `test/<kind>/` folder, `good` ones undamaged.
fn mvtec_test(dir: &Path) -> Held {
    let mut kinds: Vec<PathBuf> = std::fs::read_dir(dir.join("test")).into_iter().flatten().flatten().map(|e| e.path()).collect();
    kinds.sort();
    kinds.iter().flat_map(|k| files_of(k).into_iter().map(move |f| (f, !k.ends_with("good")))).collect()
}

/// Top-1 identification among three products trained from 20 good photos each (ELPV mono
/// and poly cells, the tire), on held-out good and damaged photos, aligned and hand-held,
/// and on unrelated photos that must be unknown products: the bench/QUALITY.md section.
fn identification(out: &Path) -> Result<String> {
    step("Product identification: three products");
    let dir = out.join("identify");
    let _ = std::fs::remove_dir_all(&dir);
    let cell = |f: &String| Path::new("tests/data/elpv/images").join(f);
    let mono = out.join("elpv-mono");
    elpv_split(&mono)?;
    let (poly_good, poly_bad) = elpv("poly")?;
    // Training photos spread over each product's good photos (every n-th), as a person
    // photographs the range of a product; the good photos not trained on are held out.
    let every = poly_good.len() / 20;
    let poly_train: Vec<PathBuf> = poly_good.iter().step_by(every).take(20).map(cell).collect();
    let poly_held: Held = poly_good
        .iter()
        .map(cell)
        .filter(|f| !poly_train.contains(f))
        .map(|f| (f, false))
        .chain(poly_bad.iter().map(|f| (cell(f), true)))
        .collect();
    let mut products: Vec<(&str, Vec<PathBuf>, Held, Option<Held>)> = vec![
        ("ELPV mono", files_of(&mono.join("train/good")).into_iter().step_by(10).collect(), mvtec_test(&mono), None),
        ("ELPV poly", poly_train, poly_held, None),
    ];
    if Path::new(TIRE).join("train").exists() {
        let tire = Path::new(TIRE);
        products.push(("MVTec 3D tire", files_of(&tire.join("train/good")).into_iter().step_by(10).collect(), mvtec_test(tire), None));
    }
    // The hand-held variants bench-quality makes (made here when missing); poly has none.
    for (name, _, _, hand_held) in products.iter_mut() {
        let source = match *name {
            "ELPV mono" => mono.clone(),
            "MVTec 3D tire" => PathBuf::from(TIRE),
            _ => continue,
        };
        let held = out.join(format!("{}-handheld", source.file_name().unwrap().to_string_lossy()));
        if !held.join("test").exists() {
            let (from, to) = (source.to_str().unwrap().to_string(), held.to_str().unwrap().to_string());
            run("target/release/damagelens", &["handheld", "--dataset", &from, "--out", &to, "--seed", HAND_HELD_SEED])?;
        }
        *hand_held = Some(mvtec_test(&held));
    }
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).map_err(|e| e.to_string())?;
    for (i, (name, train, _, _)) in products.iter().enumerate() {
        let out_file = profiles.join(format!("{i}.dlprofile"));
        let mut args = vec!["train".to_string(), "--name".into(), name.to_string(), "--out".into(), out_file.display().to_string()];
        args.extend(train.iter().map(|p| p.display().to_string()));
        crate::util::capture("target/release/damagelens", &args)?;
    }
    // Every photo identified in one run; the answer of each, by path.
    let unrelated: Vec<PathBuf> = files_of(Path::new("tests/data/skimage"));
    let mut all: Vec<PathBuf> = unrelated.clone();
    for (_, _, held, hand_held) in &products {
        all.extend(held.iter().chain(hand_held.iter().flatten()).map(|(f, _)| f.clone()));
    }
    let mut args = vec!["identify".to_string(), "--profiles".into(), profiles.display().to_string()];
    args.extend(all.iter().map(|p| p.display().to_string()));
    let answers: std::collections::HashMap<String, Option<String>> = crate::util::capture("target/release/damagelens", &args)?
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| (v["path"].as_str().unwrap_or_default().to_string(), v["product"].as_str().map(String::from)))
        .collect();
    let said = |f: &Path| answers.get(&f.display().to_string()).cloned().flatten();
    let count = |held: &Held, name: &str, damaged: bool| {
        let of: Vec<&PathBuf> = held.iter().filter(|(_, d)| *d == damaged).map(|(f, _)| f).collect();
        (of.iter().filter(|f| said(f).as_deref() == Some(name)).count(), of.len())
    };
    let mut rows = Vec::new();
    let (mut right, mut total) = ([0usize; 2], [0usize; 2]);
    for (name, train, held, hand_held) in &products {
        for (way, photos) in [("aligned", Some(held)), ("hand-held (seed 17)", hand_held.as_ref())] {
            let Some(photos) = photos else { continue };
            let (g, gn) = count(photos, name, false);
            let (d, dn) = count(photos, name, true);
            let at = usize::from(way != "aligned");
            right[at] += g + d;
            total[at] += gn + dn;
            rows.push(format!("| {name} | {way} | {} | {g}/{gn} | {d}/{dn} |", train.len()));
        }
    }
    let unknown = unrelated.iter().filter(|f| said(f).is_none()).count();
    let share = |i: usize| right[i] as f64 / total[i].max(1) as f64;
    Ok(format!(
        "{IDENTIFICATION_HEADING}\n\nRegenerated by `cargo xtask bench-quality` (alone: `cargo xtask bench-quality --identification`): \
three products trained with `damagelens train` from about 20 good photos each, spread over their good photos (every n-th; defaults), then `damagelens identify --profiles` on every held-out photo, \
good and damaged, aligned and as the hand-held variants above take them (products trained on aligned photos; ELPV poly has no hand-held variant). \
A photo counts as right when the product named is its own; an unknown-product answer counts as wrong.\n\n\
| product | photos | trained on | good photos recognised | damaged photos recognised |\n|---|---|---|---|---|\n{}\n\n\
Top-1 accuracy: **{:.3}** aligned ({}/{}), **{:.3}** hand-held ({}/{}). Unrelated photos (scikit-image samples: {}) called an unknown product: {unknown}/{}.\n",
        rows.join("\n"),
        share(0),
        right[0],
        total[0],
        share(1),
        right[1],
        total[1],
        unrelated.iter().map(|f| f.file_name().unwrap().to_string_lossy().into_owned()).collect::<Vec<_>>().join(", "),
        unrelated.len()
    ))
}

/// Good photos per product in the few-shot study, and seeded draws of each.
const FEW_SHOT_SIZES: [usize; 5] = [1, 2, 5, 10, 50];
const FEW_SHOT_DRAWS: u64 = 5;

/// A file placed at `to`: a hard link where the file system allows, else a copy.
fn place(from: &Path, to: &Path) -> Result {
    std::fs::create_dir_all(to.parent().unwrap()).map_err(|e| e.to_string())?;
    if to.exists() {
        return Ok(());
    }
    std::fs::hard_link(from, to).or_else(|_| std::fs::copy(from, to).map(|_| ())).map_err(|e| format!("{}: {e}", from.display()))
}

/// Every file under `dir`, relative to it.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(tree(&path).into_iter().map(|p| Path::new(&entry.file_name()).join(p)));
        } else {
            out.push(PathBuf::from(entry.file_name()));
        }
    }
    out
}

/// `k` of `files`, drawn by a seeded shuffle.
fn draw(files: &[PathBuf], k: usize, seed: u64) -> Vec<PathBuf> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut all = files.to_vec();
    for i in (1..all.len()).rev() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let j = (state.wrapping_mul(0x2545_F491_4F6C_DD1D) % (i as u64 + 1)) as usize;
        all.swap(i, j);
    }
    all.truncate(k);
    all
}

/// Image (and, with masks, pixel) AUROC with 1, 2, 5, 10 and 50 good training photos,
/// each the mean of five seeded draws, against all of them, for PaDiM and PatchCore, on
/// ELPV mono (a fixed fifth of its test cells, so 100 evaluations take minutes) and the
/// tire: the bench/QUALITY.md section.
fn few_shot(out: &Path) -> Result<String> {
    step("Few good photos: 1, 2, 5, 10 and 50, five draws each");
    let dir = out.join("fewshot");
    let mono = out.join("elpv-mono");
    elpv_split(&mono)?;
    let elpv = dir.join("elpv-source");
    for kind in ["good", "defective"] {
        for f in files_of(&mono.join("test").join(kind)).into_iter().step_by(5) {
            place(&f, &elpv.join("test").join(kind).join(f.file_name().unwrap()))?;
        }
    }
    let mut sets = vec![("ELPV mono", files_of(&mono.join("train/good")), elpv)];
    if Path::new(TIRE).join("train").exists() {
        sets.push(("MVTec 3D tire", files_of(&Path::new(TIRE).join("train/good")), PathBuf::from(TIRE)));
    }
    let mut image_rows = Vec::new();
    let mut pixel_rows = Vec::new();
    for (set, train, source) in &sets {
        let rest: Vec<PathBuf> = tree(source).into_iter().filter(|p| !p.starts_with("train") && !p.starts_with("validation")).collect();
        for (method, flag) in [("PaDiM", "padim"), ("PatchCore", "patchcore")] {
            let (mut image, mut pixel) = (Vec::new(), Vec::new());
            let sizes: Vec<(usize, u64)> = FEW_SHOT_SIZES.iter().map(|n| (*n, FEW_SHOT_DRAWS)).chain([(train.len(), 1)]).collect();
            for (n, draws) in sizes {
                let (mut i_sum, mut p_sum, mut i_all) = (0.0, 0.0, Vec::new());
                for d in 0..draws {
                    let name = format!("{}-{n}-{d}", set.split_whitespace().last().unwrap_or(set).to_lowercase());
                    let data = dir.join(&name);
                    for f in draw(train, n, 1 + d * 100 + n as u64) {
                        place(&f, &data.join("train/good").join(f.file_name().unwrap()))?;
                    }
                    for f in &rest {
                        place(&source.join(f), &data.join(f))?;
                    }
                    let json = dir.join(format!("{name}-{flag}.json"));
                    step(&format!("{set}, {method}, {n} photo(s), draw {}", d + 1));
                    run(
                        "target/release/damagelens",
                        &["eval", "--dataset", data.to_str().unwrap(), "--method", flag, "--json", json.to_str().unwrap()],
                    )?;
                    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).map_err(|e| e.to_string())?)
                        .map_err(|e| format!("{}: {e}", json.display()))?;
                    let auroc = report["image_AUROC"].as_f64().unwrap_or(f64::NAN);
                    i_all.push(auroc);
                    i_sum += auroc;
                    p_sum += report["pixel_AUROC"].as_f64().unwrap_or(f64::NAN);
                }
                let mean = i_sum / draws as f64;
                let sd = (i_all.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (draws as f64 - 1.0).max(1.0)).sqrt();
                image.push(if draws > 1 { format!("{mean:.3} ± {sd:.3}") } else { format!("{mean:.3}") });
                pixel.push(p_sum / draws as f64);
            }
            let all = image.last().and_then(|s| s.parse::<f64>().ok()).unwrap_or(f64::NAN);
            let five = image[2].split_whitespace().next().and_then(|s| s.parse::<f64>().ok()).unwrap_or(f64::NAN);
            image_rows.push(format!("| {set} | {method} | {} | {:.2} |", image.join(" | "), five / all));
            if pixel.iter().all(|p| p.is_finite()) {
                pixel_rows
                    .push(format!("| {set} | {method} | {} |", pixel.iter().map(|p| format!("{p:.3}")).collect::<Vec<_>>().join(" | ")));
            }
        }
    }
    let header = |what: &str| {
        format!(
            "| data | method | {} | all ({}) |{what}\n|---|---|{}---|{}",
            FEW_SHOT_SIZES.iter().map(|n| n.to_string()).collect::<Vec<_>>().join(" | "),
            sets.iter().map(|s| s.1.len().to_string()).collect::<Vec<_>>().join(" / "),
            "---|".repeat(FEW_SHOT_SIZES.len()),
            if what.is_empty() { "" } else { "---|" }
        )
    };
    Ok(format!(
        "{FEW_SHOT_HEADING}\n\nRegenerated by `cargo xtask bench-quality` (alone: `cargo xtask bench-quality --few-shot`): \
image AUROC with 1, 2, 5, 10 and 50 good training photos, each the mean ± standard deviation of {FEW_SHOT_DRAWS} seeded draws from the training photos, \
against all of them (one run), DamageLens defaults. ELPV mono is judged on a fixed fifth of its test cells (78 good, 98 defective), the tire on all its test photos. \
With fewer than 10 photos none can be held out: every photo is learnt, and the threshold is chosen on two hand-held copies of each that the model never learns; \
PatchCore keeps at least 1,000 patches in its bank (all of them when a few photos give fewer).\n\n\
{}\n{}\n\nPixel AUROC (the tire has masks):\n\n{}\n{}\n",
        header(" 5 photos / all |"),
        image_rows.join("\n"),
        header(""),
        pixel_rows.join("\n")
    ))
}
