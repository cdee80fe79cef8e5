//! Operating `tykwatch run`: `/metrics` scraped by a real Prometheus, `/healthz` and
//! `/readyz` while the gateway comes and goes, the shipped alert rules and dashboard.
//! One test binary for these files, so `cargo test` links fewer.
#![allow(clippy::unwrap_used)] // tests may unwrap; the product may not

#[path = "../common/mod.rs"]
mod common;

mod check;
mod logs;
mod metrics;
mod outbox;
mod reload;
mod service;
