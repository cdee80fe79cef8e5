//! Resident memory with 100k quotas and 10 minutes of history at the default 2 s poll
//! interval (300 sweeps). Target: ≤ 256 MB. Not a criterion bench: it measures bytes, once.
//! Run: `cargo bench --bench memory`.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

#[path = "common/rss.rs"]
mod rss;
use rss::rss_mb;

// jemalloc, as the binary; `heap::live_mb` reads its count.
#[path = "common/heap.rs"]
mod heap;

// The binary's allocator, counted.
use std::sync::Arc;
use std::time::Instant;

use tykwatch::quota::board::{Board, BoardSettings};
use tykwatch::quota::{QuotaId, QuotaMeta, Sample, SessionMeta, mask_key};

const QUOTAS: usize = 100_000;
const SWEEPS: i64 = 300;
const LIMIT_MB: f64 = 256.0;

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing: run either way.
    let base = rss_mb();
    let started = Instant::now();
    let mut board = Board::new(BoardSettings::default(), 0);
    let keys: Vec<Arc<str>> = (0..QUOTAS)
        .map(|i| Arc::from(format!("5e9d9544a1dcd60001d0ed20{i:032x}")))
        .collect();
    for sweep in 0..SWEEPS {
        board.begin_sweep();
        for (i, key) in keys.iter().enumerate() {
            // Every quota moves every sweep: the worst case for history.
            let meta = QuotaMeta::from(SessionMeta {
                key: key.clone(),
                masked: mask_key(key).into(),
                alias: format!("customer-{i}").into(),
                org_id: "5e9d9544a1dcd60001d0ed20".into(),
                trigger_limits: Arc::new(vec![90.0, 75.0, 50.0]),
                ..SessionMeta::default()
            });
            board.ingest(Sample {
                id: QuotaId::Key(key.clone()),
                meta,
                at_ms: sweep * 2000,
                quota_max: 1_000_000,
                quota_remaining: 1_000_000 - sweep * (1 + i as i64 % 7),
                quota_renews: 1_900_000_000,
                quota_renewal_rate: 86_400,
            });
        }
        board.end_sweep(true);
    }
    let points: usize = board.entries().iter().map(|e| e.history.len()).sum();
    let rss = rss_mb();
    println!(
        "memory: {QUOTAS} quotas, {SWEEPS} sweeps (10 min at 2 s), {points} history points: RSS {rss:.1} MB (baseline {base:.1} MB, live heap {:.1} MB), built in {:.1} s; target <= {LIMIT_MB} MB",
        heap::live_mb(),
        started.elapsed().as_secs_f64()
    );
    if rss > LIMIT_MB {
        eprintln!("memory: over the {LIMIT_MB} MB target");
        std::process::exit(1);
    }
}
