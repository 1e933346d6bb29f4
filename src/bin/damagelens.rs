#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("damagelens: the command-line tool arrives with the engine issue");
    std::process::exit(2);
}
#[cfg(target_arch = "wasm32")]
fn main() {}
