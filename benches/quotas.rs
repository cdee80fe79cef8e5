//! Throughput of the hot paths: parsing sessions, ingesting samples, ordering and rendering the
//! Quotas view, and a sweep of the demo gateway over loopback. Figures: BENCHMARKS.md.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tykwatch::quota::board::{Board, BoardSettings};
use tykwatch::quota::{QuotaId, QuotaMeta, Sample};
use tykwatch::tyk::session::SessionState;

const FULL_SESSION: &[u8] = include_bytes!("../tests/fixtures/session_v5_8.json");

fn parse_session(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Elements(1));
    g.bench_function("session_v5_8_full_shape", |b| {
        b.iter(|| SessionState::from_slice(black_box(FULL_SESSION)).unwrap())
    });
    g.finish();
}

/// `n` quotas with distinct ids and realistic key lengths.
pub fn samples(n: usize, at_ms: i64, used: i64) -> Vec<Sample> {
    (0..n)
        .map(|i| {
            let key: Arc<str> = Arc::from(format!("5e9d9544a1dcd60001d0ed20{i:032x}"));
            Sample {
                id: QuotaId::Key(key.clone()),
                meta: Arc::new(QuotaMeta {
                    key,
                    alias: format!("key-{i}"),
                    ..QuotaMeta::default()
                }),
                at_ms,
                quota_max: 1_000_000,
                quota_remaining: 1_000_000 - used - i as i64 % 1000,
                quota_renews: 1_900_000_000,
                quota_renewal_rate: 3600,
            }
        })
        .collect()
}

fn board_ingest(c: &mut Criterion) {
    const N: usize = 100_000;
    let mut g = c.benchmark_group("board");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    let mut board = Board::new(BoardSettings::default(), 0);
    let template = samples(N, 0, 0);
    for s in template.iter().cloned() {
        board.ingest(s);
    }
    let mut t = 0i64;
    g.bench_function("ingest_100k_existing_quotas", |b| {
        b.iter_batched(
            || {
                t += 2000;
                template
                    .iter()
                    .cloned()
                    .map(|mut s| {
                        s.at_ms = t;
                        s.quota_remaining -= t / 2000;
                        s
                    })
                    .collect::<Vec<_>>()
            },
            |batch| {
                board.begin_sweep();
                for s in batch {
                    board.ingest(s);
                }
                board.end_sweep(true);
            },
            criterion::BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, parse_session, board_ingest);
criterion_main!(benches);
