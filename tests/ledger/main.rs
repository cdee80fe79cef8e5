//! The durable core: the SQLite store and the monitor's exactly-once semantics, and the
//! PostgreSQL test harness the shared store's tests run on.
//! One test binary for these files, so `cargo test` links fewer.
#![allow(clippy::unwrap_used)] // tests may unwrap; the product may not

#[path = "../common/mod.rs"]
mod common;

mod engines;
mod monitor;
mod pg_harness;
mod shared;
mod store;
