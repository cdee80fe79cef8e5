//! The push path: a Tyk Gateway's own monitor posts `TriggerExceeded` to `[intake]`; the engine
//! re-reads that key at once, so the crossing is notified without waiting for the next poll
//! (here the poll interval is a minute). Real counterparts: the demo gateway and the intake
//! listener over loopback, a SQLite outbox, and a webhook receiver.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::post;
use tokio::sync::Notify;
use tykwatch::clock::{Clock, SystemClock};
use tykwatch::config::{Config, Secret, WebhookConfig};
use tykwatch::engine::{EngineEvent, PollSettings, spawn_poller};
use tykwatch::notifier::{EventRouting, Notifier, start_intake};
use tykwatch::notify::dispatcher::{Dispatcher, DispatcherOptions};
use tykwatch::notify::email::EmailSetup;
use tykwatch::quota::Source;
use tykwatch::quota::poller::SweepOptions;
use tykwatch::runtime::{self, Parts};
use tykwatch::tyk::demo::{DemoGateway, DemoOptions};
use tykwatch::tyk::gateway::{DEFAULT_MAX_BODY, Gateway, GatewaySettings};

async fn receiver() -> (String, Arc<AtomicU64>, Arc<Notify>) {
    let count = Arc::new(AtomicU64::new(0));
    let arrived = Arc::new(Notify::new());
    let (c, a) = (count.clone(), arrived.clone());
    let app = Router::new().route(
        "/hook",
        post(move |body: String| {
            let (c, a) = (c.clone(), a.clone());
            async move {
                assert!(body.contains("quota.threshold_crossed"), "{body}");
                c.fetch_add(1, Ordering::SeqCst);
                a.notify_one();
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", l.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(l, app).await });
    (url, count, arrived)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_exceeded_on_intake_notifies_without_waiting_for_the_poll() {
    let demo = DemoGateway::start(DemoOptions {
        simulate: false,
        extra_keys: 60,
        ..DemoOptions::default()
    })
    .await
    .unwrap();
    let gw = Gateway::new(&GatewaySettings {
        url: demo.url(),
        secret: demo.secret().to_owned(),
        timeout: Duration::from_secs(5),
        concurrency: 8,
        max_body: DEFAULT_MAX_BODY,
    })
    .unwrap();
    // A key with a plain quota, used under 40 %.
    let mut target = None;
    for k in gw.list_keys(None).await.unwrap() {
        let s = gw.get_key(&k).await.unwrap();
        let now = SystemClock.now_secs();
        if s.quota_max >= 100
            && !s.is_inactive
            && s.quota_renews > now + 600
            && (s.expires <= 0 || s.expires > now + 600)
            && s.access_rights
                .values()
                .all(|a| a.limit.as_ref().is_none_or(|l| l.is_empty()))
            && s.quota_remaining * 10 > s.quota_max * 6
        {
            target = Some((k, s.org_id.clone(), s.quota_max, s.quota_remaining));
            break;
        }
    }
    let (key, org, max, remaining) = target.expect("a demo key under 40 %");

    let (url, count, arrived) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.monitor.global_trigger_limits = vec![50.0];
    config.email_backend.enable_email_notifications = false;
    config.webhooks.push(WebhookConfig {
        name: "ops".into(),
        url,
        secret: Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        enabled: true,
    });
    config.intake.listen = Some("127.0.0.1:0".parse().unwrap());
    config.intake.secret = Secret::new("intake-secret");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let notifier = Notifier::open(dir.path(), &config, clock.clone()).unwrap();
    let dispatcher = Dispatcher::new(
        notifier.store(),
        clock.clone(),
        &config.monitor.configuration,
        &config.webhooks,
        EmailSetup::disabled(),
        DispatcherOptions::default(),
    )
    .unwrap();
    let intake = start_intake(&config, dir.path()).await.unwrap().unwrap();
    let intake_url = format!("http://{}/events", intake.addr);
    let poller = spawn_poller(
        Source::rest(gw.clone(), SweepOptions::default(), None),
        PollSettings {
            interval: Duration::from_secs(60),
            max_backoff: Duration::from_secs(60),
        },
        clock,
    );
    let routing = EventRouting::new(
        &config,
        None,
        notifier.store(),
        dispatcher.clone(),
        Arc::new(SystemClock),
    );
    let parts = Parts {
        poller,
        notifier,
        dispatcher,
        intake: Some(intake),
        routing,
        metrics: None,
    };
    let mut engine = runtime::spawn(parts, runtime::Options::console());

    // The first sweep notifies the keys already over 50 %; wait for it to settle.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline.into(), engine.events.recv()).await {
            Ok(Some(EngineEvent::Sweep(_))) => break,
            Ok(Some(_)) => {}
            other => panic!("no first sweep: {other:?}"),
        }
    }
    let settle = async {
        loop {
            let before = count.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(700)).await;
            if count.load(Ordering::SeqCst) == before {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), settle)
        .await
        .expect("first deliveries settle");
    let baseline = count.load(Ordering::SeqCst);
    let drain = tokio::spawn(async move {
        let mut received = Vec::new();
        while let Some(ev) = engine.events.recv().await {
            if let EngineEvent::Received(rows) = ev {
                received.extend(rows);
                if !received.is_empty() {
                    return (received, engine);
                }
            }
        }
        panic!("engine stopped");
    });

    // The key crosses 50 %; the gateway's monitor tells tykwatch.
    demo.consume(&key, None, remaining - max / 2 + 1);
    let body = format!(
        r#"{{"event":"TriggerExceeded","message":"Quota trigger reached","org":"{org}","key":"{key}","trigger_limit":"50"}}"#
    );
    let http = reqwest::Client::new();
    let wrong = http
        .post(&intake_url)
        .header("X-Tykwatch-Secret", "nope")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let start = Instant::now();
    let res = http
        .post(&intake_url)
        .header("X-Tykwatch-Secret", "intake-secret")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "{:?}", res.text().await);
    while count.load(Ordering::SeqCst) == baseline {
        tokio::time::timeout(Duration::from_secs(5), arrived.notified())
            .await
            .expect("no webhook within 5 s of the push (the poll is a minute away)");
    }
    let latency = start.elapsed();
    assert_eq!(count.load(Ordering::SeqCst), baseline + 1);
    assert!(
        latency < Duration::from_secs(2),
        "push path took {latency:?}"
    );
    let (received, _engine) = tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .expect("the console is told")
        .unwrap();
    assert_eq!(received[0].event, "TriggerExceeded");
    assert!(
        !received[0].payload_json.contains(&key),
        "raw key reached the console"
    );
    println!("push path: webhook at the receiver {latency:?} after the POST");
}
