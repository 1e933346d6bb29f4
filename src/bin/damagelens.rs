//! `damagelens`: the engine on the command line, for batch work and CI.
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    std::process::exit(damagelens::cli::main());
}
#[cfg(target_arch = "wasm32")]
fn main() {}
