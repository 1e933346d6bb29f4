//! The page bundle: only mounts the app.
#[cfg(target_arch = "wasm32")]
fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(damagelens::app::App);
}
#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("the app only runs in a browser: `cargo xtask dev` builds and serves it");
}
