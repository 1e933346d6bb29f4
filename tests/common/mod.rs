//! Shared by the native integration tests: where the setup put the model and data.
#![allow(dead_code)]

pub mod onnx;

use std::path::PathBuf;

use damagelens::engine::gpu::GpuContext;
use damagelens::engine::manifest::BackboneManifest;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the CLI from the repository root, as a person would.
pub fn damagelens(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_damagelens")).current_dir(root()).args(args).output().expect("the CLI runs")
}

/// Reads a file the setup provides; a missing one is a failure that says how to fix it.
pub fn read(rel: &str) -> Vec<u8> {
    let path = root().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}. Run `cargo xtask setup` first (README.md).", path.display()))
}

pub fn backbone() -> (BackboneManifest, Vec<u8>) {
    let json = String::from_utf8(read("models/efficientnet_lite0.manifest.json")).unwrap();
    let manifest = BackboneManifest::from_json("efficientnet_lite0.manifest.json", &json).unwrap();
    let onnx = read(&format!("models/{}", manifest.file));
    (manifest, onnx)
}

/// ELPV mono cells by defect probability, in file order (setup extracts the PyPI wheel).
pub fn elpv_mono(probability: &str) -> Vec<String> {
    elpv(probability, "mono")
}

/// ELPV cells of one kind (`mono` or `poly`) by defect probability, in file order.
pub fn elpv(probability: &str, kind: &str) -> Vec<String> {
    let labels = String::from_utf8(read("tests/data/elpv/labels.csv")).unwrap();
    labels
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            (f.len() == 3 && f[1] == probability && f[2] == kind).then(|| format!("tests/data/elpv/{}", f[0]))
        })
        .collect()
}

/// A small dataset as a folder upload lists it: (path inside the folder, file the setup
/// provides) for 12 good training cells, 4 good and 4 cracked test cells.
pub fn elpv_upload() -> Vec<(String, String)> {
    let (good, cracked) = (elpv_mono("0.0"), elpv_mono("1.0"));
    let mut files: Vec<(String, String)> = Vec::new();
    files.extend(good[..12].iter().enumerate().map(|(i, f)| (format!("train/good/{i:03}.png"), f.clone())));
    files.extend(good[12..16].iter().enumerate().map(|(i, f)| (format!("test/good/{i:03}.png"), f.clone())));
    files.extend(cracked[..4].iter().enumerate().map(|(i, f)| (format!("test/crack/{i:03}.png"), f.clone())));
    files
}

/// The rows of an exported scores CSV (`path,label,category,score`): (anomalous, score).
pub fn scores_csv_rows(csv: &str) -> Vec<(bool, f32)> {
    csv.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1] == "1", f[3].parse().unwrap())
        })
        .collect()
}

/// The default GPU adapter; without one, a failure that says how to get lavapipe.
pub fn gpu_context() -> GpuContext {
    let ctx = pollster::block_on(GpuContext::request()).unwrap_or_else(|e| {
        panic!(
            "{e}\nThese tests need a Vulkan adapter; without a GPU install lavapipe with \
             `apt-get install mesa-vulkan-drivers libvulkan1`."
        )
    });
    eprintln!("GPU tests run on: {}", ctx.adapter_name());
    ctx
}
