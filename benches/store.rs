//! The two store engines side by side (issue 14): `cargo bench --bench store`.
//!
//! - `store_engines/enqueue_10k/{sqlite,postgres}`: 10 000 crossings with their outbox rows
//!   (one webhook channel) recorded in one transaction into a new store — SQLite in a data dir
//!   (`synchronous=FULL`), PostgreSQL on loopback with its default durability (fsync on);
//! - `store_engines/deliver_10k/{sqlite,postgres_1_instance,postgres_3_instances}`: those
//!   10 000 rows delivered as signed webhooks to a loopback receiver by `Dispatcher::run` with
//!   its default options; with three instances, three dispatchers with connections of their
//!   own share the rows by claims. On a shared store one channel's concurrency is
//!   `per_channel` across every instance, so three instances do not send one channel faster:
//!   the case measures what the claims cost.
//!
//! PostgreSQL is a real server started by the test harness (`tests/common/postgres.rs`); the
//! bench fails with how to install it when its binaries are missing. `TYKWATCH_BENCH_ROWS`
//! shrinks the run for a quick look.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

#[path = "common/hooks.rs"]
mod hooks;

#[path = "../tests/common/postgres.rs"]
mod postgres;
#[path = "../tests/common/process.rs"]
#[allow(unused)]
mod process;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use tokio::sync::watch;
use tykwatch::clock::{Clock, SystemClock};
use tykwatch::config::{Config, Secret, StoreConfig};
use tykwatch::monitor::{Monitor, MonitorSettings};
use tykwatch::notify::dispatcher::{Dispatcher, DispatcherOptions};
use tykwatch::notify::email::EmailSetup;
use tykwatch::notify::plan::{Channels, plan_all};
use tykwatch::outbox::{Crossing, OutboxRow};
use tykwatch::quota::{QuotaId, QuotaMeta, Sample, SessionMeta, mask_key};
use tykwatch::store::Store;

use hooks::{receiver, webhook_config};
use postgres::PgServer;

fn rows_wanted() -> usize {
    std::env::var("TYKWATCH_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// `n` key quotas at 96 % of a fresh `period`: each crosses 80 % once.
fn crossings(n: usize, period: i64, config: &Config) -> (Vec<Crossing>, Vec<OutboxRow>) {
    let samples: Vec<Sample> = (0..n)
        .map(|i| {
            let key: Arc<str> = Arc::from(format!("5e9d9544a1dcd60001d0ed20{i:032x}"));
            Sample {
                id: QuotaId::Key(key.clone()),
                meta: QuotaMeta::from(SessionMeta {
                    masked: mask_key(&key).into(),
                    key,
                    org_id: "5e9d9544a1dcd60001d0ed20".into(),
                    alias: format!("key-{i}").into(),
                    ..SessionMeta::default()
                }),
                at_ms: 0,
                quota_max: 1000,
                quota_remaining: 40,
                quota_renews: period,
                quota_renewal_rate: 3600,
            }
        })
        .collect();
    let mut m = Monitor::new(MonitorSettings::new(true, true, true, &[80.0]));
    let c = m.evaluate_all(&samples, SystemClock.now_ms());
    let rows = plan_all(&c, &Channels::from_config(config)).expect("plan");
    (c, rows)
}

/// A fresh store of either engine: a new SQLite data dir, or a new PostgreSQL database
/// (connected and migrated here, outside any timing).
enum Engine<'a> {
    Sqlite(&'a str),
    Postgres(&'a PgServer),
}

static DATABASES: AtomicUsize = AtomicUsize::new(0);

/// A new, empty store and how to open more connections to it.
struct Fresh {
    _dir: Option<tempfile::TempDir>,
    config: Option<StoreConfig>,
    first: Store,
}

impl Fresh {
    fn new(engine: &Engine) -> Fresh {
        match engine {
            Engine::Sqlite(tmp) => {
                let dir = tempfile::tempdir_in(tmp).expect("tempdir");
                let first = Store::open_in(dir.path()).expect("sqlite store");
                Fresh {
                    _dir: Some(dir),
                    config: None,
                    first,
                }
            }
            Engine::Postgres(pg) => {
                let db = format!("bench{}", DATABASES.fetch_add(1, Ordering::SeqCst));
                pg.create_db(&db);
                let config = StoreConfig {
                    url: Secret::new(pg.url(&db)),
                    ..StoreConfig::default()
                };
                let first = Store::connect(&config).expect("postgres store");
                Fresh {
                    _dir: None,
                    config: Some(config),
                    first,
                }
            }
        }
    }

    /// Another connection (PostgreSQL only: another instance).
    fn another(&self) -> Store {
        Store::connect(self.config.as_ref().expect("a shared store")).expect("connect")
    }
}

fn enqueue(c: &mut Criterion, pg: &PgServer) {
    let n = rows_wanted();
    let config = webhook_config("http://127.0.0.1:9/hook");
    let tmp = env!("CARGO_TARGET_TMPDIR");
    let mut g = c.benchmark_group("store_engines");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(15));
    g.throughput(Throughput::Elements(n as u64));
    let mut period = 4_000_000_000i64;
    for (name, engine) in [
        ("sqlite", Engine::Sqlite(tmp)),
        ("postgres", Engine::Postgres(pg)),
    ] {
        g.bench_function(format!("enqueue_10k/{name}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    period += 1;
                    let (cs, rows) = crossings(n, period, &config);
                    let mut fresh = Fresh::new(&engine);
                    let start = Instant::now();
                    let recorded = fresh.first.record_crossings(&cs, &rows).expect("record");
                    total += start.elapsed();
                    assert_eq!(recorded.count(), n);
                }
                total
            })
        });
    }
    g.finish();
}

fn deliver(c: &mut Criterion, pg: &PgServer) {
    let n = rows_wanted();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (url, count, arrived) = rt.block_on(receiver());
    let config = webhook_config(&url);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let tmp = env!("CARGO_TARGET_TMPDIR");
    let mut g = c.benchmark_group("store_engines");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(30));
    g.throughput(Throughput::Elements(n as u64));
    let mut period = 5_000_000_000i64;
    for (name, engine, instances) in [
        ("sqlite", Engine::Sqlite(tmp), 1),
        ("postgres_1_instance", Engine::Postgres(pg), 1),
        ("postgres_3_instances", Engine::Postgres(pg), 3),
    ] {
        g.bench_function(format!("deliver_10k/{name}"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    period += 1;
                    let (cs, rows) = crossings(n, period, &config);
                    let mut fresh = Fresh::new(&engine);
                    fresh.first.record_crossings(&cs, &rows).expect("record");
                    let others: Vec<Store> = (1..instances).map(|_| fresh.another()).collect();
                    let Fresh {
                        _dir: _kept, first, ..
                    } = fresh;
                    let stores = std::iter::once(first).chain(others);
                    let dispatchers: Vec<Dispatcher> = stores
                        .map(|s| {
                            Dispatcher::new(
                                Arc::new(Mutex::new(s)),
                                clock.clone(),
                                &config.monitor.configuration,
                                &config.webhooks,
                                EmailSetup::disabled(),
                                DispatcherOptions::default(),
                            )
                            .expect("dispatcher")
                        })
                        .collect();
                    let before = count.load(Ordering::SeqCst);
                    let (stop, stop_rx) = watch::channel(false);
                    let start = Instant::now();
                    rt.block_on(async {
                        let runs: Vec<_> = dispatchers
                            .into_iter()
                            .map(|d| {
                                let rx = stop_rx.clone();
                                tokio::spawn(async move { d.run(rx, |e| panic!("{e}")).await })
                            })
                            .collect();
                        while count.load(Ordering::SeqCst) - before < n as u64 {
                            arrived.notified().await;
                        }
                        total += start.elapsed();
                        let _ = stop.send(true);
                        for r in runs {
                            let _ = r.await;
                        }
                    });
                    // Every row delivered once: nothing more arrives.
                    assert_eq!(count.load(Ordering::SeqCst) - before, n as u64);
                }
                total
            })
        });
    }
    g.finish();
}

fn engines(c: &mut Criterion) {
    let pg = PgServer::start_durable();
    enqueue(c, &pg);
    deliver(c, &pg);
}

criterion_group!(benches, engines);
criterion_main!(benches);
