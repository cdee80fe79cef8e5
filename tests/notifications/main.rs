//! Notification delivery end to end: the dispatcher and its channels, e-mail, routing of received events, the push path and `tykwatch run`.
//! One test binary for these files, so `cargo test` links fewer.
#![allow(clippy::unwrap_used)] // tests may unwrap; the product may not

#[path = "../common/mod.rs"]
mod common;

mod delivery;
mod email;
mod headless;
mod instances;
mod push_path;
mod receiver;
mod routing;
