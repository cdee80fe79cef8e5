//! Throughput of the hot paths: parsing sessions, ingesting samples, ordering and rendering the
//! Quotas view, and a sweep of the demo gateway over loopback. Figures: BENCHMARKS.md.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tykwatch::clock::SystemClock;
use tykwatch::engine::EngineEvent;
use tykwatch::quota::Source;
use tykwatch::quota::board::{Board, BoardSettings};
use tykwatch::quota::poller::{SweepOptions, SweepOutcome};
use tykwatch::quota::{ApiMeta, QuotaId, QuotaMeta, Sample, SessionMeta, mask_key};
use tykwatch::tyk::demo::{DemoGateway, DemoOptions};
use tykwatch::tyk::gateway::{DEFAULT_MAX_BODY, Gateway, GatewaySettings};
use tykwatch::tyk::session::SessionState;
use tykwatch::ui::table::{Filter, Orderer, Sort, SortKey, order};
use tykwatch::ui::theme::Theme;
use tykwatch::ui::{AppState, ConsoleOptions};

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
                meta: QuotaMeta::from(SessionMeta {
                    key,
                    alias: format!("key-{i}").into(),
                    ..SessionMeta::default()
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

/// 2025-03-01T10:00:00Z.
const NOW: i64 = 1_740_823_200_000;
const APIS: [(&str, &str); 8] = [
    ("Orders API", "b84fe1a04e5648927971c0557971565c"),
    ("Payments API", "3f2a8d1c9e7b4b05a6c4d2e1f0a9b8c7"),
    ("Catalog API", "0c1d2e3f405162738495a6b7c8d9eafb"),
    ("Search API", "1d2e3f405162738495a6b7c8d9eafb0c"),
    ("Users API", "2e3f405162738495a6b7c8d9eafb0c1d"),
    ("Shipping API", "3f405162738495a6b7c8d9eafb0c1d2e"),
    ("Invoices API", "405162738495a6b7c8d9eafb0c1d2e3f"),
    ("Reports API", "5162738495a6b7c8d9eafb0c1d2e3f40"),
];

/// A fleet of `n` quotas shaped like a real gateway's: 20 orgs, a key quota for every key and
/// a per-API limit for every other key, aliases on most keys, and the names `/` filters on
/// (as `Sample::from_key_session` fills them). Sweep `sweep` consumes a little
/// of every quota, so after two sweeps every quota has a rate and an ETA.
fn fleet(n: usize, sweep: i64) -> Vec<Sample> {
    let at_ms = NOW + sweep * 2000;
    // As the sources hand them over: a key's quotas share one session, and each API is one
    // interned `ApiMeta` (`quota::model::Interner`).
    let apis: Vec<Arc<ApiMeta>> = APIS
        .iter()
        .map(|(name, api)| {
            Arc::new(ApiMeta {
                api_id: Arc::from(*api),
                api_name: Arc::from(*name),
                rate: 50.0,
                per: 1.0,
            })
        })
        .collect();
    let mut session = None;
    (0..n)
        .map(|i| {
            let k = i / 2;
            let org = format!("5e9d9544a1dcd60001d0{:04x}", k % 20);
            let key: Arc<str> = Arc::from(format!("{org}{k:032x}"));
            let alias = if k % 10 == 0 {
                String::new()
            } else {
                format!("svc-{}-client-{k}", ["eu", "us", "ap"][k % 3])
            };
            let (id, api) = if i % 2 == 0 {
                (QuotaId::Key(key.clone()), None)
            } else {
                let api = apis[k % apis.len()].clone();
                (QuotaId::KeyApi(key.clone(), api.api_id.clone()), Some(api))
            };
            if i % 2 == 0 {
                session = Some(Arc::new(SessionMeta {
                    masked: mask_key(&key).into(),
                    key,
                    alias: alias.into(),
                    org_id: Arc::from(org),
                    rate: 50.0,
                    per: 1.0,
                    ..SessionMeta::default()
                }));
            }
            let session = session.clone().expect("set on every even i");
            let quota_max = [1_000, 10_000, 100_000, 1_000_000][i % 4];
            let used = ((i as i64 * 7919) % quota_max) / 2 + sweep * (1 + i as i64 % 5);
            Sample {
                id,
                meta: QuotaMeta { session, api },
                at_ms,
                quota_max,
                quota_remaining: (quota_max - used).max(0),
                quota_renews: NOW / 1000 + 3600,
                quota_renewal_rate: 3600,
            }
        })
        .collect()
}

fn console_options() -> ConsoleOptions {
    ConsoleOptions {
        gateway_label: "http://tyk-gateway.internal:8080".into(),
        demo: false,
        poll_interval: Duration::from_secs(2),
        board: BoardSettings::default(),
        global_thresholds: vec![80.0, 95.0, 100.0],
        readonly: false,
        config_dir: None,
        email_from: "Tyk <tyk@example.com>".into(),
        email_to: vec!["api-ops@example.com".into()],
        orgs: None,
        orgs_error: None,
        intake_url: None,
        intake_secret: false,
        org_email: None,
        session_edits: Err("benchmark".into()),
    }
}

/// The console state after two sweeps of `n` quotas, 1 s after the second.
fn app_state(n: usize) -> AppState {
    let mut state = AppState::new(&console_options(), NOW - 2000);
    for sweep in 0..2 {
        let at = NOW + sweep * 2000;
        state.tick(at);
        state.apply_engine(EngineEvent::Sweep(Box::new(SweepOutcome {
            started_ms: at - 150,
            duration: Duration::from_millis(150),
            samples: fleet(n, sweep),
            complete: true,
            keys: n / 2,
            ..SweepOutcome::default()
        })));
    }
    state.tick(NOW + 3000);
    state
}

fn ui(c: &mut Criterion) {
    const N: usize = 100_000;
    let state = app_state(N);
    let board = state.board();
    assert_eq!(board.entries().len(), N);

    let mut g = c.benchmark_group("ui");
    g.throughput(Throughput::Elements(N as u64));
    g.sample_size(20);
    let cases = [
        (
            "order_100k_default_sort",
            Filter::default(),
            Sort::default(),
        ),
        (
            "order_100k_filter_orders",
            Filter::parse("orders"),
            Sort::default(),
        ),
        (
            "order_100k_filter_not_orders",
            Filter::parse("!orders"),
            Sort::default(),
        ),
        (
            "order_100k_used_ascending",
            Filter::default(),
            Sort::default().toggle(SortKey::Used),
        ),
        (
            "order_100k_name",
            Filter::default(),
            Sort::default().toggle(SortKey::Name),
        ),
    ];
    // What the console pays each sweep: the board takes a new sweep (every quota consumes a
    // little, as in `fleet`, so some change rank) and the order the state already had is
    // brought up to date. The sweep's samples are cloned from the second sweep's (the same
    // sessions, as the Redis source hands over) and ingested outside the timing.
    let mut live = Board::new(BoardSettings::default(), NOW - 2000);
    for sweep in 0..2 {
        live.ingest_sweep(fleet(N, sweep), true);
    }
    let template = fleet(N, 1);
    let mut sweep = 1i64;
    for (name, filter, sort) in &cases {
        let rows = order(board, filter, *sort).len();
        println!("ui/{name}: {rows} rows shown");
        let mut orderer = Orderer::default();
        orderer.order(&live, filter, *sort);
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let mut took = Duration::ZERO;
                for _ in 0..iters {
                    sweep += 1;
                    let at_ms = NOW + sweep * 2000;
                    let samples = template.iter().enumerate().map(|(i, s)| {
                        let mut s = s.clone();
                        s.at_ms = at_ms;
                        s.quota_remaining = (s.quota_remaining - sweep * (1 + i as i64 % 5)).max(0);
                        s
                    });
                    live.ingest_sweep(samples.collect(), true);
                    let started = Instant::now();
                    black_box(orderer.order(black_box(&live), filter, *sort).len());
                    took += started.elapsed();
                }
                took
            })
        });
    }
    // A key pressed: a new sort or filter on the same board (the per-quota name ranks kept).
    for (name, filter, sort) in &cases {
        let mut orderer = Orderer::default();
        let other = Sort {
            key: SortKey::Remaining,
            descending: true,
        };
        g.bench_function(format!("{name}_new_sort"), |b| {
            b.iter_custom(|iters| {
                let mut took = Duration::ZERO;
                for _ in 0..iters {
                    orderer.order(board, &Filter::default(), other);
                    let started = Instant::now();
                    black_box(orderer.order(black_box(board), filter, *sort).len());
                    took += started.elapsed();
                }
                took
            })
        });
    }
    // From scratch: nothing cached (the first sweep, or quotas that arrived, left or were
    // renamed).
    for (name, filter, sort) in &cases {
        g.bench_function(format!("{name}_from_scratch"), |b| {
            b.iter(|| order(black_box(board), black_box(filter), black_box(*sort)))
        });
    }

    // Rendering touches only the visible rows; the order is cached in the state.
    let (w, h) = (200, 50);
    let mut state = state;
    state.resize(w, h);
    let theme = Theme::builtin("default").expect("default theme");
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    g.throughput(Throughput::Elements(1));
    g.bench_function("render_quotas_100k_200x50", |b| {
        b.iter(|| {
            term.draw(|f| tykwatch::ui::render(&state, &theme, f))
                .expect("draw");
        })
    });
    g.finish();
}

fn sweep_demo(c: &mut Criterion) {
    const EXTRA: usize = 10_000;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let demo = rt
        .block_on(DemoGateway::start(DemoOptions {
            extra_keys: EXTRA,
            simulate: false,
            ..DemoOptions::default()
        }))
        .expect("demo gateway");
    let gw = Gateway::new(&GatewaySettings {
        url: demo.url(),
        secret: demo.secret().to_string(),
        timeout: Duration::from_secs(30),
        concurrency: 16,
        max_body: DEFAULT_MAX_BODY,
    })
    .expect("gateway client");
    let opts = SweepOptions {
        concurrency: 16,
        ..SweepOptions::default()
    };
    let clock = SystemClock;
    let mut source = Source::rest(gw, opts, Some(false));

    let started = Instant::now();
    let first = rt.block_on(source.sweep(&clock));
    let took = started.elapsed();
    assert!(first.error.is_none(), "{:?}", first.error);
    assert!(first.complete && first.item_errors.is_empty());
    let keys = first.keys;
    println!(
        "sweep/demo: {keys} keys, {} orgs, {} samples, {} requests per sweep, {:.2?} \
         ({:.0} keys/s, {:.0} requests/s)",
        first.orgs,
        first.samples.len(),
        first.requests,
        took,
        keys as f64 / took.as_secs_f64(),
        first.requests as f64 / took.as_secs_f64(),
    );

    let mut g = c.benchmark_group("sweep");
    g.throughput(Throughput::Elements(keys as u64));
    g.sample_size(10);
    g.bench_function("demo_10k_extra_keys_loopback_c16", |b| {
        b.iter(|| rt.block_on(source.sweep(&clock)))
    });
    g.finish();
    drop(source);
    rt.block_on(demo.shutdown());
}

criterion_group!(benches, parse_session, board_ingest, ui, sweep_demo);
criterion_main!(benches);
