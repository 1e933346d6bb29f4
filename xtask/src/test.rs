//! `cargo xtask test` and `cargo xtask fuzz-profile`.

use std::path::Path;

use crate::bench::bench_run;
use crate::setup::WASM_TARGET;
use crate::util::{run, run_in, step, wasm_env};
use crate::Result;

/// Cheapest checks first: formatting and lints fail in seconds, before minutes of tests.
pub fn test() -> Result {
    step("Formatting (cargo fmt --check)");
    run("cargo", &["fmt", "--all", "--check"])?;
    step("Lints, native (cargo clippy, warnings are errors)");
    run("cargo", &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])?;
    // The app and the worker exist only on wasm32; lint them with the wasm build's toolchain.
    step("Lints, wasm32 (cargo clippy --target wasm32-unknown-unknown, warnings are errors)");
    run_in("cargo", &["clippy", "--target", WASM_TARGET, "--lib", "--bins", "--", "-D", "warnings"], None, &wasm_env())?;
    // The page is built without the engine (index.html): lint it as it ships.
    step("Lints, the page without the engine (cargo clippy --no-default-features --bin app)");
    run_in(
        "cargo",
        &["clippy", "--target", WASM_TARGET, "--no-default-features", "--bin", "app", "--", "-D", "warnings"],
        None,
        &wasm_env(),
    )?;
    step("Native tests: engine, backbone export, a real inspection");
    run("cargo", &["test", "--workspace"])?;
    step("WebAssembly build (trunk build --release)");
    run_in("trunk", &["build"], None, &wasm_env())?;
    step("Browser tests: headless Chromium drives the built app");
    run_in("npm", &["test"], Some(Path::new("tests/e2e")), &[])?;
    bench_run(true)
}

/// Runs the profile reader's fuzz test (tests/profile_fuzz.rs) again and again, each
/// time with fresh random cases, until `minutes` have passed. CI runs one short pass.
pub fn fuzz_profile(minutes: u64) -> Result {
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
