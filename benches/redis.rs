//! The Redis source against a real `redis-server` on loopback (started here, on an ephemeral
//! port), loaded with Tyk-shaped state: sessions as a `hash_keys: true` gateway stores them,
//! half the keys with a per-API limit of their own scope, every quota with a live counter.
//!
//! - `cargo bench --bench redis`: 100k keys (150k quotas): the first sweep (sessions loaded),
//!   the steady sweep (counters only, sessions cached), round trips per sweep; then 10k keys
//!   swept over the REST API (the demo gateway) and from Redis, side by side.
//! - `TYKWATCH_BENCH_KEYS=1000000 cargo bench --bench redis -- --history`: 1M keys, initial load
//!   and steady sweep, then 10 minutes of history (at the sweep pace, 120 points at most) with
//!   10 % of the counters moving between sweeps, and the RSS of this process (source cache +
//!   board). Target ≤ 1 GB.
//!
//! Not a criterion bench: each figure is one wall-clock measurement of real round trips, repeated
//! `REPEAT` times for the steady sweep (median and max printed).
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

#[path = "common/rss.rs"]
mod rss;
use rss::{peak_rss_mb, rss_mb};

// jemalloc, as the binary; `heap::live_mb` reads its count.
#[path = "common/heap.rs"]
mod heap;

#[path = "../tests/common/redis.rs"]
mod harness;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tykwatch::clock::SystemClock;
use tykwatch::config::StorageConfig;
use tykwatch::quota::board::{Board, BoardSettings};
use tykwatch::quota::poller::SweepOptions;
use tykwatch::quota::redis::RedisSource;
use tykwatch::quota::{QuotaId, Source};
use tykwatch::tyk::demo::{DemoGateway, DemoOptions};
use tykwatch::tyk::gateway::{DEFAULT_MAX_BODY, Gateway, GatewaySettings};
use tykwatch::tyk::keyhash;
use tykwatch::tyk::redis::RedisSettings;

const ORG: &str = "5e9d9544a1dcd60001d0ed20";
const REPEAT: usize = 7;

fn token(i: usize) -> String {
    format!("{ORG}{i:032x}")
}

/// Writes `n` hashed sessions and their counters with pipelines of 1000.
async fn load(conn: &mut redis::aio::MultiplexedConnection, n: usize) {
    let started = Instant::now();
    let api = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            let h = keyhash::hash_str(&token(i));
            let per_api = if i % 2 == 0 {
                format!(
                    r#","access_rights":{{"{api}":{{"api_name":"orders","api_id":"{api}","versions":["Default"],"limit":{{"rate":10,"per":1,"quota_max":500,"quota_renewal_rate":3600}},"allowance_scope":"{api}"}}}}"#
                )
            } else {
                String::new()
            };
            let session = format!(
                r#"{{"rate":100,"per":60,"quota_max":100000,"quota_renewal_rate":86400,"quota_remaining":99000,"org_id":"{ORG}","alias":"customer-{i}","monitor":{{"trigger_limits":[90,75,50]}},"meta_data":{{"tyk_developer_id":"62b3fb9a1d5e4f00017226f5"}},"tags":["edge"]{per_api}}}"#
            );
            pipe.cmd("SET")
                .arg(format!("apikey-{h}"))
                .arg(session)
                .ignore();
            pipe.cmd("SET")
                .arg(format!("quota-{h}"))
                .arg(i % 90_000)
                .arg("EX")
                .arg(50_000)
                .ignore();
            if i % 2 == 0 {
                pipe.cmd("SET")
                    .arg(format!("quota-{api}-{h}"))
                    .arg(i % 400)
                    .arg("EX")
                    .arg(1800)
                    .ignore();
            }
        }
        let _: () = pipe.query_async(conn).await.expect("load");
    }
    println!(
        "loaded {n} keys into redis-server in {:.1?}",
        started.elapsed()
    );
}

/// Moves the counters of `share` of the keys.
async fn traffic(
    conn: &mut redis::aio::MultiplexedConnection,
    n: usize,
    round: usize,
    share: usize,
) {
    for chunk in (0..n).step_by(share).collect::<Vec<_>>().chunks(2000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            let i = (i + round) % n;
            let h = keyhash::hash_str(&token(i));
            pipe.cmd("INCRBY").arg(format!("quota-{h}")).arg(3).ignore();
        }
        let _: () = pipe.query_async(conn).await.expect("traffic");
    }
}

fn source(addr: String) -> Source {
    let cfg = StorageConfig {
        addrs: vec![addr],
        subscribe: false,
        timeout: Duration::from_secs(30),
        ..StorageConfig::default()
    };
    Source::Redis(Box::new(RedisSource::new(
        RedisSettings::from_config(&cfg, None),
        None,
        Some(true),
    )))
}

/// A throw-away `redis-server` and a connection to load it.
async fn server() -> (harness::RedisServer, redis::aio::MultiplexedConnection) {
    let srv = harness::RedisServer::start();
    let client = redis::Client::open(srv.url()).expect("client");
    let conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    (srv, conn)
}

fn stats(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() - 1])
}

async fn redis_sweeps(n: usize, history: bool) {
    let (srv, mut conn) = server().await;
    load(&mut conn, n).await;
    let base = rss_mb();
    let base_heap = heap::live_mb();
    let mut src = source(srv.addr());
    let started = Instant::now();
    let first = src.sweep(&SystemClock).await;
    let initial = started.elapsed();
    assert!(first.error.is_none(), "{:?}", first.error);
    let quotas = first.samples.len();
    println!(
        "redis {n} keys / {quotas} quotas: initial load + sweep {initial:.2?}, {} round trips",
        first.requests
    );
    let with_samples = heap::live_mb();
    let mut board = Board::new(BoardSettings::default(), first.started_ms);
    board.ingest_sweep(first.samples, true);
    println!(
        "redis {n} keys: live heap {before:.0} MB before the source, {with_samples:.0} MB with the session cache and the first sweep's samples, {:.0} MB with the board (samples moved in); RSS {:.0} MB",
        heap::live_mb(),
        rss_mb(),
        before = base_heap,
    );
    let mut times = Vec::new();
    let mut trips = 0;
    for _ in 0..REPEAT {
        let t = Instant::now();
        let out = src.sweep(&SystemClock).await;
        times.push(t.elapsed());
        trips = out.requests;
        assert!(out.error.is_none(), "{:?}", out.error);
        assert_eq!(out.samples.len(), quotas);
    }
    let (median, max) = stats(times);
    println!(
        "redis {n} keys / {quotas} quotas: steady sweep (counters only, sessions cached) median {median:.2?}, max {max:.2?}, {trips} round trips"
    );
    if history {
        // 10 minutes at the sweep pace: the board keeps ≤ 120 points a quota, one per 5 s.
        let rounds = 120;
        let mut at_ms = board.epoch().0;
        let t = Instant::now();
        for round in 0..rounds {
            traffic(&mut conn, n, round, 10).await;
            let mut out = src.sweep(&SystemClock).await;
            at_ms += 5_000;
            for s in &mut out.samples {
                s.at_ms = at_ms;
            }
            board.ingest_sweep(out.samples, true);
        }
        let points: usize = board.entries().iter().map(|e| e.history.len()).sum();
        let history_mb = board
            .entries()
            .iter()
            .map(|e| e.history.heap_bytes())
            .sum::<usize>() as f64
            / (1024.0 * 1024.0);
        println!(
            "redis {n} keys: live heap {:.0} MB after the history ({history_mb:.0} MB of it history buffers)",
            heap::live_mb()
        );
        let rss = rss_mb();
        println!(
            "redis {n} keys / {quotas} quotas: {rounds} sweeps of history (10 min at 5 s, 10 % of counters moving) in {:.1?}: {points} history points, RSS {rss:.0} MB, peak {:.0} MB (before the source: {base:.0} MB); target <= 1024 MB",
            t.elapsed(),
            peak_rss_mb()
        );
        let _ = board.get(&QuotaId::Key(Arc::from("x")));
    }
}

/// The same 10k keys over REST (the demo gateway, one request per key) and from Redis.
async fn rest_vs_redis() {
    let n = 10_000;
    let demo = DemoGateway::start(DemoOptions {
        port: 0,
        extra_keys: n,
        ..DemoOptions::default()
    })
    .await
    .expect("demo gateway");
    let gw = Gateway::new(&GatewaySettings {
        url: demo.url(),
        secret: demo.secret().to_string(),
        timeout: Duration::from_secs(30),
        concurrency: 16,
        max_body: DEFAULT_MAX_BODY,
    })
    .expect("gateway");
    let mut rest = Source::rest(gw, SweepOptions::default(), Some(false));
    let first = rest.sweep(&SystemClock).await;
    assert!(first.error.is_none(), "{:?}", first.error);
    let mut rest_times = Vec::new();
    for _ in 0..REPEAT {
        let t = Instant::now();
        rest.sweep(&SystemClock).await;
        rest_times.push(t.elapsed());
    }
    let (srv, mut conn) = server().await;
    load(&mut conn, first.keys).await;
    let mut red = source(srv.addr());
    red.sweep(&SystemClock).await;
    let mut redis_times = Vec::new();
    for _ in 0..REPEAT {
        let t = Instant::now();
        red.sweep(&SystemClock).await;
        redis_times.push(t.elapsed());
    }
    let (rm, _) = stats(rest_times);
    let (dm, _) = stats(redis_times);
    println!(
        "{} keys: REST sweep median {rm:.2?} ({} requests) vs Redis sweep median {dm:.2?}: Redis {:.0}× faster",
        first.keys,
        first.requests,
        rm.as_secs_f64() / dm.as_secs_f64()
    );
    demo.shutdown().await;
}

fn main() {
    let n: usize = std::env::var("TYKWATCH_BENCH_KEYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let history = std::env::args().any(|a| a == "--history");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        redis_sweeps(n, history).await;
        if n <= 100_000 {
            rest_vs_redis().await;
        }
    });
}
