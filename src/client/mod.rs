//! The page's model of the engine and of the person's work, as plain Rust types with
//! their own native tests: calls answered by id ([`calls`]) and which product is
//! current, training or held by the engine ([`workbench`]); photos grouped into items
//! seen from several sides ([`items`]); the inspection log's filters, counts and exports
//! ([`log`]); the app's pages ([`route`]). The Leptos page (`app`) only displays them.

pub mod calls;
pub mod drift;
pub mod items;
pub mod log;
pub mod route;
pub mod versions;
pub mod workbench;
