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
    format!("{cpu} ({cores} cores, no GPU)")
}

/// The hand-held variants' seed: one fixed draw, so runs compare.
const HAND_HELD_SEED: &str = "17";

/// What the quality benchmark trains: label, `damagelens eval` flags, file stem.
const QUALITY_METHODS: &[(&str, &[&str], &str)] = &[
    ("PaDiM", &["--method", "padim"], "padim"),
    ("PatchCore", &["--method", "patchcore"], "patchcore"),
    ("PatchCore, 3 hand-held copies per photo", &["--method", "patchcore", "--augment", "3"], "patchcore-a3"),
];

pub fn bench_quality() -> Result {
    step("Building the CLI (release)");
    run("cargo", &["build", "--release", "--bin", "damagelens"])?;
    let out = Path::new("target/bench");
    elpv_split(&out.join("elpv-mono"))?;
    let mut aligned = vec![("ELPV mono (200 random good cells train; 388 good + 486 defective test)", out.join("elpv-mono"))];
    if Path::new(TIRE).join("train").exists() {
        aligned.push(("MVTec 3D-AD tire, RGB (210 train, 112 test)", PathBuf::from(TIRE)));
    } else {
        eprintln!("skipped: {TIRE} is not here (it is research data kept outside the repository)");
    }
    // Every set again as a hand-held tablet takes it: each photo (training ones too)
    // shifted up to 8%, turned up to 10 degrees, zoomed up to 8%, lit up to 15%; masks alike.
    let mut datasets = Vec::new();
    for (label, dir) in aligned {
        let held = out.join(format!("{}-handheld", dir.file_name().unwrap().to_string_lossy()));
        step(&format!("{label}: hand-held variant"));
        let (from, to) = (dir.to_str().unwrap().to_string(), held.to_str().unwrap().to_string());
        run("target/release/damagelens", &["handheld", "--dataset", &from, "--out", &to, "--seed", HAND_HELD_SEED])?;
        datasets.push((label.to_string(), dir));
        datasets.push((format!("{label}, hand-held (seed {HAND_HELD_SEED})"), held));
    }
    let mut rows = Vec::new();
    for (label, dir) in &datasets {
        for (method, flags, stem) in QUALITY_METHODS {
            step(&format!("{label}: {method}"));
            let json = out.join(format!("{}-{stem}.json", dir.file_name().unwrap().to_string_lossy()));
            let mut args = vec!["eval", "--dataset", dir.to_str().unwrap(), "--json", json.to_str().unwrap()];
            args.extend_from_slice(flags);
            run("target/release/damagelens", &args)?;
            let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).map_err(|e| e.to_string())?)
                .map_err(|e| format!("{}: {e}", json.display()))?;
            let f = |k: &str| report[k].as_f64().map(|v| format!("{v:.3}")).unwrap_or_else(|| "n/a".into());
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
    let table = format!("{table}\n{}", identification(out)?);
    std::fs::create_dir_all("bench").map_err(|e| e.to_string())?;
    std::fs::write("bench/QUALITY.md", &table).map_err(|e| format!("bench/QUALITY.md: {e}"))?;
    println!("\n{table}");
    Ok(())
}

const IDENTIFICATION_HEADING: &str = "## Product identification";

/// `bench-quality --identification`: only the identification section of
/// bench/QUALITY.md, the rest kept as the last full run wrote it.
pub fn bench_identification() -> Result {
    step("Building the CLI (release)");
    run("cargo", &["build", "--release", "--bin", "damagelens"])?;
    let section = identification(Path::new("target/bench"))?;
    let old = std::fs::read_to_string("bench/QUALITY.md").unwrap_or_default();
    let kept = old.split(IDENTIFICATION_HEADING).next().unwrap_or_default().trim_end();
    std::fs::write("bench/QUALITY.md", format!("{kept}\n\n{section}")).map_err(|e| format!("bench/QUALITY.md: {e}"))?;
    println!("\n{section}");
    Ok(())
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
