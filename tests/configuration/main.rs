//! Configuration files and themes: valid and invalid files, located errors.
//! One test binary for these files, so `cargo test` links fewer.
#![allow(clippy::unwrap_used)] // tests may unwrap; the product may not

mod config;
mod config_storage;
mod theme;
