//! The durable core: the SQLite store and the monitor's exactly-once semantics.
//! One test binary for these files, so `cargo test` links fewer.
#![allow(clippy::unwrap_used)] // tests may unwrap; the product may not

mod monitor;
mod store;
