//! Helpers every command shares: running programs, and the wasm build's environment.

use std::path::Path;
use std::process::Command;

use crate::Result;

/// Written when the wasm target had to come from Debian's rustc-web (NOTES.md fallback).
pub const FALLBACK_ENV: &str = "target/xtask/wasm-toolchain.env";

pub fn step(what: &str) {
    eprintln!("\n==> {what}");
}

pub fn run(program: &str, args: &[&str]) -> Result {
    run_in(program, args, None, &[])
}

pub fn run_in(program: &str, args: &[&str], dir: Option<&Path>, envs: &[(String, String)]) -> Result {
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
pub fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Environment for wasm builds: empty with rustup's target, the fallback toolchain otherwise.
pub fn wasm_env() -> Vec<(String, String)> {
    std::fs::read_to_string(FALLBACK_ENV)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

/// A command's stdout; its failure, with its stderr, is an error.
pub fn capture(program: &str, args: &[String]) -> Result<String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("cannot run {program}: {e}"))?;
    if !out.status.success() {
        return Err(format!("`{program} {}` failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr)));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
