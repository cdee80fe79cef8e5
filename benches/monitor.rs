//! The monitor's hot path and the durable enqueue: `cargo bench --bench monitor`.
//! Targets: ≥ 2M samples/s evaluated when nothing crosses; ≥ 5k crossings/s enqueued into a
//! real file with `synchronous=FULL` (batched per sweep: one fsync per batch).
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tykwatch::config::{Config, WebhookConfig};
use tykwatch::monitor::{Monitor, MonitorSettings};
use tykwatch::notify::plan::{Channels, plan_all};
use tykwatch::outbox::{Crossing, OutboxRow};
use tykwatch::quota::{QuotaId, QuotaMeta, Sample, SessionMeta, mask_key};
use tykwatch::store::Store;

const NOW_MS: i64 = 1_800_000_000_000;
const RENEWS: i64 = 1_800_003_600;

/// `n` key quotas of 1M requests, `used_pct` % used (± a little), realistic key lengths.
fn samples(n: usize, used_pct: i64, renews: i64) -> Vec<Sample> {
    (0..n)
        .map(|i| {
            let key: Arc<str> = Arc::from(format!("5e9d9544a1dcd60001d0ed20{i:032x}"));
            Sample {
                id: QuotaId::Key(key.clone()),
                meta: QuotaMeta::from(SessionMeta {
                    masked: mask_key(&key).into(),
                    key,
                    org_id: "5e9d9544a1dcd60001d0ed20".into(),
                    alias: format!("key-{i}").into(),
                    // a third of the keys carry their own thresholds, as Tyk sessions do
                    trigger_limits: if i % 3 == 0 {
                        Arc::new(vec![90.0, 75.0])
                    } else {
                        Arc::default()
                    },
                    ..SessionMeta::default()
                }),
                at_ms: NOW_MS,
                quota_max: 1_000_000,
                quota_remaining: 1_000_000 - used_pct * 10_000 - (i as i64 % 1000),
                quota_renews: renews,
                quota_renewal_rate: 3600,
            }
        })
        .collect()
}

fn settings() -> MonitorSettings {
    MonitorSettings::new(true, true, true, &[80.0, 95.0, 100.0])
}

fn evaluate(c: &mut Criterion) {
    const N: usize = 100_000;
    let mut g = c.benchmark_group("monitor");
    g.throughput(Throughput::Elements(N as u64));

    let below = samples(N, 40, RENEWS);
    let mut m = Monitor::new(settings());
    g.bench_function("evaluate_100k_below_thresholds", |b| {
        b.iter(|| {
            let mut n = 0;
            for s in &below {
                n += m.evaluate(black_box(s), NOW_MS).len();
            }
            assert_eq!(n, 0);
        })
    });

    // Above thresholds that already fired this period: one map lookup per sample.
    let fired = samples(N, 96, RENEWS);
    let mut m = Monitor::new(settings());
    assert_eq!(m.evaluate_all(&fired, NOW_MS).len(), N);
    g.bench_function("evaluate_100k_already_fired", |b| {
        b.iter(|| {
            let mut n = 0;
            for s in &fired {
                n += m.evaluate(black_box(s), NOW_MS).len();
            }
            assert_eq!(n, 0);
        })
    });
    g.finish();
}

/// tyk + one Standard Webhook + ops e-mail: three outbox rows per crossing.
fn channels() -> Channels {
    let mut c = Config::default();
    c.monitor.configuration.target_path = "https://hooks.example.com/q".into();
    c.webhooks.push(WebhookConfig {
        name: "ops".into(),
        url: "https://hooks.example.com/w".into(),
        secret: Default::default(),
        enabled: true,
    });
    c.email_backend.enable_email_notifications = true;
    c.notify.email_to = vec!["api-ops@example.com".into()];
    Channels::from_config(&c)
}

/// 10k fresh crossings (a new period per call, so nothing is ignored) and their rows.
fn fresh(m: &mut Monitor, period: i64) -> (Vec<Crossing>, Vec<OutboxRow>) {
    let crossings = m.evaluate_all(&samples(10_000, 96, period), NOW_MS);
    let rows = plan_all(&crossings, &channels()).expect("plan");
    (crossings, rows)
}

/// Enqueues `crossings` in transactions of `batch` crossings (three rows each).
fn record(store: &mut Store, crossings: &[Crossing], rows: &[OutboxRow], batch: usize) {
    let mut n = 0;
    // plan_all keeps crossing order: three rows per crossing
    for (chunk, mine) in crossings.chunks(batch).zip(rows.chunks(3 * batch)) {
        n += store.record_crossings(chunk, mine).expect("record").count();
    }
    assert_eq!(n, crossings.len());
}

fn enqueue(c: &mut Criterion) {
    // Real files on the target's disk (not tmpfs, where fsync is free).
    let tmp = env!("CARGO_TARGET_TMPDIR");
    let mut m = Monitor::new(settings());
    let mut period = RENEWS;

    let mut g = c.benchmark_group("store");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(15));
    g.throughput(Throughput::Elements(10_000));
    let ch = channels();
    let crossings = m.evaluate_all(&samples(10_000, 96, period), NOW_MS);
    g.bench_function("plan_10k_crossings_3_channels", |b| {
        b.iter(|| plan_all(black_box(&crossings), &ch).expect("plan"))
    });

    // Into a new database file each time: the cost of one burst of 10k crossings.
    for batch in [10_000usize, 1_000, 100] {
        g.bench_function(format!("enqueue_10k_new_db_fsync_per_{batch}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    period += 1;
                    let (crossings, rows) = fresh(&mut m, period);
                    let dir = tempfile::tempdir_in(tmp).expect("tempdir");
                    let mut store = Store::open_in(dir.path()).expect("open store");
                    let start = Instant::now();
                    record(&mut store, &crossings, &rows, batch);
                    total += start.elapsed();
                }
                total
            })
        });
    }

    // Into one database that keeps growing (delivered rows are kept for the audit view).
    let dir = tempfile::tempdir_in(tmp).expect("tempdir");
    let mut store = Store::open_in(dir.path()).expect("open store");
    g.bench_function("enqueue_10k_growing_db_fsync_per_1000", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                period += 1;
                let (crossings, rows) = fresh(&mut m, period);
                let start = Instant::now();
                record(&mut store, &crossings, &rows, 1_000);
                total += start.elapsed();
            }
            total
        })
    });
    let size = store
        .path()
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |m| m.len());
    let counts = store.counts().expect("counts");
    eprintln!(
        "growing db: {} MB, {} outbox rows",
        size / 1_000_000,
        counts.pending
    );
    store.integrity_check().expect("integrity");

    // The fsync floor: one crossing per transaction (500 per iteration, new database).
    g.throughput(Throughput::Elements(500));
    g.bench_function("enqueue_500_fsync_each", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                period += 1;
                let crossings = m.evaluate_all(&samples(500, 96, period), NOW_MS);
                let rows = plan_all(&crossings, &ch).expect("plan");
                let dir = tempfile::tempdir_in(tmp).expect("tempdir");
                let mut store = Store::open_in(dir.path()).expect("open store");
                let start = Instant::now();
                record(&mut store, &crossings, &rows, 1);
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, evaluate, enqueue);
criterion_main!(benches);
