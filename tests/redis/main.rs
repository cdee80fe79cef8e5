//! Tyk's Redis against real redis-server processes: the harness, the source, the demo mirror.
//! One test binary for these files, so `cargo test` links fewer.
#![allow(clippy::unwrap_used)] // tests may unwrap; the product may not

#[path = "../common/mod.rs"]
mod common;

mod demo_redis;
mod redis_harness;
mod redis_source;
