//! The Web Worker bundle (Trunk `data-type="worker"`).
#[cfg(target_arch = "wasm32")]
fn main() {
    damagelens::worker::run();
}
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the worker bundle only runs in a browser; build it with trunk");
}
