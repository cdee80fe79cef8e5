//! `/metrics` at fleet scale: rendering the exposition for 100k quotas (target ≤ 100 ms) and
//! its size — every series, and under the default `max_series` — the memory the metrics hold
//! for 100k quotas (target ≤ 64 MB), and a 1M-quota scrape capped by `max_series`.
//! Run: `cargo bench --bench metrics`.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

#[path = "common/heap.rs"]
mod heap;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group};
use tykwatch::clock::{Clock, FixedClock};
use tykwatch::engine::EngineEvent;
use tykwatch::metrics::{Metrics, MetricsSettings};
use tykwatch::quota::poller::SweepOutcome;
use tykwatch::quota::{QuotaId, QuotaMeta, Sample, SessionMeta, mask_key};

const MEMORY_LIMIT_MB: f64 = 64.0;

fn samples(n: usize, at_ms: i64, step: i64) -> Vec<Sample> {
    (0..n)
        .map(|i| {
            let key: Arc<str> = Arc::from(format!("5e9d9544a1dcd60001d0ed20{i:032x}"));
            let meta = QuotaMeta::from(SessionMeta {
                masked: mask_key(&key).into(),
                key: key.clone(),
                alias: format!("customer-{i}").into(),
                org_id: "5e9d9544a1dcd60001d0ed20".into(),
                trigger_limits: Arc::new(vec![90.0, 75.0, 50.0]),
                ..SessionMeta::default()
            });
            Sample {
                id: QuotaId::Key(key),
                meta,
                at_ms,
                quota_max: 1_000_000,
                quota_remaining: 1_000_000 - step * (1 + i as i64 % 7),
                quota_renews: 1_900_000_000,
                quota_renewal_rate: 86_400,
            }
        })
        .collect()
}

fn sweep(samples: Vec<Sample>, at_ms: i64) -> EngineEvent {
    EngineEvent::Sweep(Box::new(SweepOutcome {
        started_ms: at_ms,
        duration: Duration::from_millis(900),
        keys: samples.len(),
        samples,
        complete: true,
        ..SweepOutcome::default()
    }))
}

/// Metrics that saw two sweeps of `n` quotas (so every quota has a rate and an ETA).
fn metrics(n: usize, max_series: usize) -> Arc<Metrics> {
    let clock = Arc::new(FixedClock::new(1_800_000_000_000));
    let m = Metrics::new(
        MetricsSettings {
            max_series,
            stale_after: Duration::from_secs(30),
            rate_window: Duration::from_secs(60),
        },
        clock.clone() as Arc<dyn Clock>,
    );
    let t0 = clock.now_ms();
    m.observe(&sweep(samples(n, t0, 10), t0));
    m.observe(&sweep(samples(n, t0 + 2000, 20), t0 + 2000));
    m
}

fn memory() {
    // The samples are the sweep's (the poller's) allocation, freed once observed: what is
    // left is what the metrics keep.
    let before = heap::live_mb();
    let m = metrics(100_000, 1_000_000);
    let kept = heap::live_mb() - before;
    let bytes = m.render().len();
    println!(
        "metrics memory: 100000 quotas held for /metrics: {kept:.1} MB live heap; one scrape \
         {:.1} MB ({bytes} bytes); target <= {MEMORY_LIMIT_MB} MB",
        bytes as f64 / (1024.0 * 1024.0)
    );
    assert!(
        kept <= MEMORY_LIMIT_MB,
        "{kept:.1} MB > {MEMORY_LIMIT_MB} MB"
    );
}

/// `render_chunks` is what `/metrics` serves: the chunks are streamed as written.
fn render(c: &mut Criterion) {
    let mut g = c.benchmark_group("metrics");
    g.sample_size(20);
    let m = metrics(100_000, 1_000_000);
    println!("metrics/render_100k: {} bytes per scrape", m.render().len());
    g.bench_function("render_100k", |b| b.iter(|| black_box(m.render_chunks())));
    drop(m);
    // The same 100k quotas under the default max_series (100 000 series).
    let m = metrics(100_000, 100_000);
    println!(
        "metrics/render_100k_default_cap: {} bytes per scrape (max_series 100000)",
        m.render().len()
    );
    g.bench_function("render_100k_default_cap", |b| {
        b.iter(|| black_box(m.render_chunks()))
    });
    drop(m);
    // A million quotas, capped at the default max_series: the scrape stays the size of 100k
    // series and the cap picks the quotas nearest exhaustion.
    let m = metrics(1_000_000, 100_000);
    println!(
        "metrics/render_1m_capped: {} bytes per scrape (max_series 100000)",
        m.render().len()
    );
    g.bench_function("render_1m_capped", |b| {
        b.iter(|| black_box(m.render_chunks()))
    });
    g.finish();
}

criterion_group!(benches, render);

fn main() {
    memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
