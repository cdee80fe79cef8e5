//! Delivery benchmarks (issue 3):
//! - `deliver_10k_webhooks`: 10 000 signed webhooks from a real SQLite outbox to a receiver on
//!   loopback, through `Dispatcher::run` with its default options (target ≥ 1 000/s);
//! - `detection_latency_poll`: a key's usage is pushed over a threshold on the demo gateway;
//!   time until the receiver has the webhook, through the console's engine (poller → monitor →
//!   outbox → dispatcher), poll interval 1 s (target p99 ≤ poll interval + 200 ms). The p50 /
//!   p99 of all samples are printed after the criterion figures;
//! - `detection_latency_push`: the same with a 60 s poll and the gateway monitor's
//!   `TriggerExceeded` posted to `[intake]` right after the usage changed (target ≤ 200 ms).
//!
//! `cargo bench --bench delivery`
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

#[path = "common/hooks.rs"]
mod hooks;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use hooks::{receiver, webhook_config};
use tokio::sync::watch;
use tykwatch::clock::{Clock, SystemClock};
use tykwatch::engine::{PollSettings, spawn_poller};
use tykwatch::monitor::{Monitor, MonitorSettings};
use tykwatch::notifier::{EventRouting, Notifier, start_intake};
use tykwatch::notify::dispatcher::{Dispatcher, DispatcherOptions};
use tykwatch::notify::email::EmailSetup;
use tykwatch::notify::plan::{Channels, plan_all};
use tykwatch::quota::Source;
use tykwatch::quota::poller::SweepOptions;
use tykwatch::quota::{QuotaId, QuotaMeta, Sample, SessionMeta, mask_key};
use tykwatch::runtime::{self, Parts};
use tykwatch::store::Store;
use tykwatch::tyk::demo::{DemoGateway, DemoOptions};
use tykwatch::tyk::gateway::{DEFAULT_MAX_BODY, Gateway, GatewaySettings};

fn samples(n: usize, period: i64) -> Vec<Sample> {
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
                    ..SessionMeta::default()
                }),
                at_ms: 0,
                quota_max: 1000,
                quota_remaining: 40,
                quota_renews: period,
                quota_renewal_rate: 3600,
            }
        })
        .collect()
}

fn deliver(c: &mut Criterion) {
    // `TYKWATCH_BENCH_ROWS` shrinks the run for a quick look; the target is about 10 000.
    let n: u64 = std::env::var("TYKWATCH_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (url, count, arrived) = rt.block_on(receiver());
    let config = webhook_config(&url);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let tmp = env!("CARGO_TARGET_TMPDIR");
    let mut g = c.benchmark_group("delivery");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(30));
    g.throughput(Throughput::Elements(n));
    let mut period = 4_000_000_000i64;
    g.bench_function("deliver_10k_webhooks_loopback", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                period += 1;
                let dir = tempfile::tempdir_in(tmp).expect("tempdir");
                let mut store = Store::open_in(dir.path()).expect("store");
                let mut m = Monitor::new(MonitorSettings::new(true, true, true, &[80.0]));
                let crossings = m.evaluate_all(&samples(n as usize, period), clock.now_ms());
                let rows = plan_all(&crossings, &Channels::from_config(&config)).expect("plan");
                store.record_crossings(&crossings, &rows).expect("record");
                let store = Arc::new(Mutex::new(store));
                let d = Dispatcher::new(
                    store,
                    clock.clone(),
                    &config.monitor.configuration,
                    &config.webhooks,
                    EmailSetup::disabled(),
                    DispatcherOptions::default(),
                )
                .expect("dispatcher");
                let before = count.load(Ordering::SeqCst);
                let (stop, stop_rx) = watch::channel(false);
                let start = Instant::now();
                rt.block_on(async {
                    let run = tokio::spawn(async move { d.run(stop_rx, |e| panic!("{e}")).await });
                    while count.load(Ordering::SeqCst) - before < n {
                        arrived.notified().await;
                    }
                    total += start.elapsed();
                    let _ = stop.send(true);
                    let _ = run.await;
                });
            }
            total
        })
    });
    g.finish();
}

/// Keys of the demo with a quota and usage below 50 %, and their quota max.
async fn fresh_keys(gw: &Gateway) -> Vec<(String, String, i64, i64)> {
    let mut out = Vec::new();
    for k in gw.list_keys(None).await.expect("list keys") {
        if let Ok(s) = gw.get_key(&k).await {
            let (max, remaining) = (s.quota_max, s.quota_remaining);
            let per_api = s
                .access_rights
                .values()
                .any(|a| a.limit.as_ref().is_some_and(|l| !l.is_empty()));
            // A window that ends soon (or ended: Tyk renews lazily) would re-arm mid-measurement.
            let now = SystemClock.now_secs();
            let live = s.quota_renews > now + 600 && (s.expires <= 0 || s.expires > now + 600);
            if max > 100 && !s.is_inactive && !per_api && live && remaining * 2 > max {
                out.push((k, s.org_id.clone(), max, remaining));
            }
        }
    }
    out
}

fn latency(c: &mut Criterion) {
    latency_case(c, false);
    latency_case(c, true);
}

/// Poll path (`push` false): the next 1 s poll finds the crossing. Push path: the poll is a
/// minute away and a gateway monitor's `TriggerExceeded` arrives on the intake right after the
/// usage changed (target ≤ 200 ms).
fn latency_case(c: &mut Criterion, push: bool) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let poll = Duration::from_secs(if push { 60 } else { 1 });
    let name = if push {
        "detection_latency_push"
    } else {
        "detection_latency_poll_1s"
    };
    let mut g = c.benchmark_group("delivery");
    g.sample_size(30);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(30));
    let all = Arc::new(Mutex::new(Vec::<Duration>::new()));
    let tmp = env!("CARGO_TARGET_TMPDIR");
    let dir = tempfile::tempdir_in(tmp).expect("tempdir");
    let (demo, gw, keys, count, arrived, _engine, intake_url) = rt.block_on(async {
        let demo = DemoGateway::start(DemoOptions {
            extra_keys: 1_000,
            simulate: false,
            ..DemoOptions::default()
        })
        .await
        .expect("demo");
        let gw = Gateway::new(&GatewaySettings {
            url: demo.url(),
            secret: demo.secret().to_owned(),
            timeout: Duration::from_secs(5),
            concurrency: 16,
            max_body: DEFAULT_MAX_BODY,
        })
        .expect("gateway");
        let keys = fresh_keys(&gw).await;
        let (url, count, arrived) = receiver().await;
        let mut config = webhook_config(&url);
        config.monitor.global_trigger_limits = vec![50.0];
        if push {
            config.intake.listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        }
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let notifier = Notifier::open(dir.path(), &config, clock.clone()).expect("notifier");
        let d = Dispatcher::new(
            notifier.store(),
            clock.clone(),
            &config.monitor.configuration,
            &config.webhooks,
            EmailSetup::disabled(),
            DispatcherOptions::default(),
        )
        .expect("dispatcher");
        let poller = spawn_poller(
            Source::rest(gw.clone(), SweepOptions::default(), Some(false)),
            PollSettings {
                interval: poll,
                max_backoff: Duration::from_secs(5),
            },
            clock.clone(),
        );
        let intake = start_intake(&config, dir.path()).await.expect("intake");
        let intake_url = intake.as_ref().map(|i| format!("http://{}/events", i.addr));
        let routing = EventRouting::new(&config, None, notifier.store(), d.clone(), clock.clone());
        let parts = Parts {
            poller,
            notifier,
            dispatcher: d,
            intake,
            routing,
            metrics: None,
        };
        let mut engine = runtime::spawn(parts, runtime::Options::console());
        // Drain what the console would show; wait until the first crossings (keys already
        // over 50 %) were delivered so they do not count.
        let events = std::mem::replace(&mut engine.events, tokio::sync::mpsc::channel(1).1);
        tokio::spawn(async move {
            let mut events = events;
            while events.recv().await.is_some() {}
        });
        tokio::time::sleep(Duration::from_secs(3)).await;
        (demo, gw, keys, count, arrived, engine, intake_url)
    });
    let http = reqwest::Client::new();
    let mut keys = keys.into_iter();
    let _ = &gw;
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let Some((key, org, max, remaining)) = keys.next() else {
                    panic!("out of fresh demo keys: raise extra_keys");
                };
                // Random phase against the poll: usage crosses 50 % at a uniform point.
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .subsec_nanos();
                let phase = Duration::from_millis(u64::from(nanos % 1000));
                let _ = &org;
                rt.block_on(async {
                    tokio::time::sleep(phase).await;
                    let before = count.load(Ordering::SeqCst);
                    let need = remaining - max / 2 + 1;
                    let start = Instant::now();
                    demo.consume(&key, None, need);
                    if let Some(url) = &intake_url {
                        let body = format!(
                            r#"{{"event":"TriggerExceeded","message":"Quota trigger reached","org":"{org}","key":"{key}","trigger_limit":"50"}}"#
                        );
                        let res = http.post(url).body(body).send().await.expect("post");
                        assert_eq!(res.status(), 202);
                    }
                    while count.load(Ordering::SeqCst) == before {
                        let _ =
                            tokio::time::timeout(Duration::from_secs(5), arrived.notified()).await;
                        assert!(start.elapsed() < Duration::from_secs(10), "no webhook");
                    }
                    let d = start.elapsed();
                    all.lock().expect("lock").push(d);
                    total += d;
                });
            }
            total
        })
    });
    g.finish();
    let mut v = all.lock().expect("lock").clone();
    v.sort();
    if !v.is_empty() {
        let p = |q: f64| v[((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1];
        println!(
            "{name} over {} crossings: p50 {:?}, p99 {:?}, max {:?}",
            v.len(),
            p(0.50),
            p(0.99),
            v[v.len() - 1]
        );
    }
}

criterion_group!(benches, deliver, latency);
criterion_main!(benches);
