//! The Gateway clients and the demo gateway over loopback, and Tyk's session shapes.
//! One test binary for these files, so `cargo test` links fewer.
#![allow(clippy::unwrap_used)] // tests may unwrap; the product may not

#[path = "../common/mod.rs"]
mod common;

mod demo_gateway;
mod gateway_client;
mod gateway_hashed;
mod session_fixtures;
mod trigger_edits;
