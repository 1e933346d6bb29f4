//! `cargo xtask setup | dev | test`: everything a fresh machine needs, installed from the
//! package registries only and skipped when already present, then the app or the tests.
//!
//! This file only dispatches; each command lives in its own module: `setup.rs`,
//! `test.rs`, `bench.rs`, `dist.rs`, with the helpers they share in `util.rs`.

use std::env;
use std::path::Path;
use std::process::exit;

mod bench;
mod dist;
mod setup;
mod test;
mod util;

use setup::setup;
use util::{run_in, step, wasm_env};

type Result<T = ()> = std::result::Result<T, String>;

fn main() {
    let args: Vec<String> = env::args().skip(1).collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the repo").to_path_buf();
    env::set_current_dir(&root).expect("repo root");
    let result = match args.first().map(String::as_str) {
        Some("setup") => setup(),
        Some("dev") => setup().and_then(|_| dev()),
        Some("test") => setup().and_then(|_| test::test()),
        Some("bench") => setup().and_then(|_| bench::bench(args.get(1).map(String::as_str) == Some("--quick"))),
        Some("bench-quality") if args.len() > 1 => setup().and_then(|_| bench::bench_section(&args[1])),
        Some("bench-quality") => setup().and_then(|_| bench::bench_quality()),
        Some("bench-study") => setup().and_then(|_| bench::bench_study()),
        Some("fuzz-profile") => test::fuzz_profile(args.get(1).and_then(|m| m.parse().ok()).unwrap_or(5)),
        Some("finish-dist") => dist::finish_dist(),
        _ => {
            eprintln!("usage: cargo xtask <setup | dev | test>\n  setup  install what is missing (toolchain target, Trunk, wasm-bindgen, Chromium, Playwright, model, data)\n  dev    setup, then build and serve the app at http://127.0.0.1:8080\n  test   setup, then native tests, the wasm build and the browser tests\n  bench [--quick]  speed and size against onnxruntime-web and onnxruntime on the same model and photos (bench/RESULTS.md; --quick: a few runs, into target/bench)\n  bench-quality [--methods | --thresholds | --fusion | --few-shot | --identification]  PaDiM, PatchCore, the ensemble and the method chooser on ELPV mono cells and the MVTec 3D-AD tire, aligned and hand-held, next to published figures, the threshold estimators, a damage head fused with the anomaly map, few good photos, and product identification (bench/QUALITY.md; a flag: that section alone)\n  bench-study  what each setting (layers, resolution, neighbourhood, coreset) gives on ELPV mono (bench/STUDY.md)\n  fuzz-profile [MINUTES]  fuzz the profile reader for MINUTES (default 5): no panic, no allocation beyond the file's size\n  finish-dist  Trunk's post-build hook: start script out of index.html, icons, service worker");
            exit(2);
        }
    };
    if let Err(message) = result {
        eprintln!("\nxtask: {message}");
        exit(1);
    }
}

fn dev() -> Result {
    step("Serving DamageLens at http://127.0.0.1:8080 (Ctrl-C stops)");
    run_in("trunk", &["serve", "--open"], None, &wasm_env())
}
