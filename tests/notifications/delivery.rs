//! Webhook delivery end to end: outbox rows in a real SQLite store, the dispatcher, and
//! receivers on loopback (axum) whose answers each test scripts. Time is a `FixedClock`, so
//! retries are due by advancing it, without waiting.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::receiver::{Answer, Received, Receiver, ok, receiver};
use axum::http::Method;
use tempfile::TempDir;
use tykwatch::clock::{Clock, FixedClock};
use tykwatch::config::{MonitorHookConfig, Secret, WebhookConfig};
use tykwatch::notify::dispatcher::{Dispatcher, DispatcherOptions};
use tykwatch::notify::email::EmailSetup;
use tykwatch::notify::plan::{Channels, plan};
use tykwatch::notify::retry::NoJitter;
use tykwatch::outbox::{Crossing, OutboxFilter, OutboxRow, OutboxState, Source, quota_key};
use tykwatch::quota::{ApiMeta, QuotaId, QuotaMeta, SessionMeta, mask_key};
use tykwatch::store::Store;

const RAW: &str = "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d";
const ORG: &str = "5e9d9544a1dcd60001d0ed20";
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

// ---------------------------------------------------------------------------------------------
// Receiver
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Store, rows, dispatcher
// ---------------------------------------------------------------------------------------------

struct Setup {
    _dir: TempDir,
    store: Arc<Mutex<Store>>,
    clock: FixedClock,
    dispatcher: Dispatcher,
}

impl Setup {
    fn rows(&self) -> Vec<OutboxRow> {
        let mut rows = self
            .store
            .lock()
            .unwrap()
            .list_outbox(&OutboxFilter::default(), 100)
            .unwrap();
        rows.sort_by(|a, b| a.idem_key.cmp(&b.idem_key));
        rows
    }

    fn row(&self, channel: &str) -> OutboxRow {
        self.rows()
            .into_iter()
            .find(|r| r.channel_id == channel)
            .unwrap_or_else(|| panic!("no row for {channel}"))
    }
}

fn crossing(threshold: f64, at_ms: i64, sequence: i64) -> Crossing {
    let id = QuotaId::Key(Arc::from(RAW));
    Crossing {
        quota_key: Arc::from(quota_key(&id)),
        quota_id: id,
        meta: QuotaMeta {
            session: Arc::new(SessionMeta {
                key: Arc::from(RAW),
                masked: mask_key(RAW).into(),
                alias: "acme-prod".into(),
                org_id: ORG.into(),
                ..SessionMeta::default()
            }),
            api: Some(Arc::new(ApiMeta {
                api_id: "api1".into(),
                api_name: "Orders".into(),
                ..ApiMeta::default()
            })),
        },
        period: 1_900_000_000,
        threshold,
        covered: vec![],
        usage_pct: 85.5,
        quota_max: 1000,
        quota_remaining: 145,
        quota_renews: 1_900_000_000,
        at_ms,
        sequence,
    }
}

fn webhook(url: &str) -> WebhookConfig {
    WebhookConfig {
        name: "ops".into(),
        url: format!("{url}/hook"),
        secret: Secret::new(SECRET),
        enabled: true,
    }
}

/// A store with the rows of `crossings` for `channels`, and a dispatcher for them.
fn setup(
    now_ms: i64,
    crossings: &[Crossing],
    channels: &Channels,
    monitor: MonitorHookConfig,
    webhooks: Vec<WebhookConfig>,
    opts: DispatcherOptions,
) -> Setup {
    let dir = TempDir::new().unwrap();
    let mut store = Store::open_in(dir.path()).unwrap();
    for c in crossings {
        let rows = plan(c, channels).unwrap();
        store
            .record_crossings(std::slice::from_ref(c), &rows)
            .unwrap();
    }
    let store = Arc::new(Mutex::new(store));
    let clock = FixedClock::new(now_ms);
    let dispatcher = Dispatcher::with_jitter(
        store.clone(),
        Arc::new(clock.clone()),
        &monitor,
        &webhooks,
        EmailSetup::disabled(),
        opts,
        Box::new(NoJitter),
    )
    .unwrap();
    Setup {
        _dir: dir,
        store,
        clock,
        dispatcher,
    }
}

fn webhook_channels() -> Channels {
    Channels {
        webhooks: vec!["ops".into()],
        ..Channels::default()
    }
}

/// One standard webhook row due at `now`, receiver answering `script`.
async fn standard(now: i64, script: Vec<Answer>, opts: DispatcherOptions) -> (Setup, Receiver) {
    let (r, url) = receiver(script).await;
    let s = setup(
        now,
        &[crossing(80.0, now, 1)],
        &webhook_channels(),
        MonitorHookConfig::default(),
        vec![webhook(&url)],
        opts,
    );
    (s, r)
}

const NOW: i64 = 1_800_000_000_000;

fn header<'a>(r: &'a Received, name: &str) -> &'a str {
    r.headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ok_is_delivered_once() {
    let (s, r) = standard(NOW, vec![ok()], DispatcherOptions::default()).await;
    let rep = s.dispatcher.run_once().await.unwrap();
    assert_eq!((rep.claimed, rep.delivered), (1, 1));
    let row = s.row("webhook:ops");
    assert_eq!(row.state, OutboxState::Delivered);
    assert_eq!((row.attempts, row.last_status), (1, Some(200)));
    assert_eq!(row.delivered_at, Some(NOW));
    // Nothing left to send.
    s.clock.advance(86_400_000);
    assert_eq!(s.dispatcher.run_once().await.unwrap().claimed, 0);
    assert_eq!(r.got().len(), 1);
    let got = &r.got()[0];
    assert_eq!(got.method, Method::POST);
    assert_eq!(got.path, "/hook");
    assert_eq!(header(got, "content-type"), "application/json");
    let body: serde_json::Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["type"], "quota.threshold_crossed");
    assert_eq!(body["timestamp"], "2027-01-15T08:00:00Z");
    assert_eq!(body["data"]["key"], mask_key(RAW));
    assert_eq!(body["data"]["org_id"], ORG);
    assert_eq!(body["data"]["threshold"], 80.0);
    assert_eq!(body["data"]["quota_remaining"], 145);
    assert!(!String::from_utf8_lossy(&got.body).contains(RAW));
}

#[tokio::test]
async fn server_error_then_ok_retries_with_the_same_id() {
    let (s, r) = standard(
        NOW,
        vec![Answer::Status(500, vec![], "boom"), ok()],
        DispatcherOptions::default(),
    )
    .await;
    let rep = s.dispatcher.run_once().await.unwrap();
    assert_eq!(rep.retried, 1);
    let row = s.row("webhook:ops");
    assert_eq!(row.state, OutboxState::Pending);
    assert_eq!((row.attempts, row.last_status), (1, Some(500)));
    assert_eq!(row.next_attempt_at, NOW + 5_000);
    // Not due yet.
    s.clock.advance(4_000);
    assert_eq!(s.dispatcher.run_once().await.unwrap().claimed, 0);
    s.clock.advance(1_000);
    assert_eq!(s.dispatcher.run_once().await.unwrap().delivered, 1);
    let row = s.row("webhook:ops");
    assert_eq!((row.state, row.attempts), (OutboxState::Delivered, 2));
    let got = r.got();
    assert_eq!(got.len(), 2);
    assert_eq!(header(&got[0], "webhook-id"), row.idem_key);
    assert_eq!(header(&got[1], "webhook-id"), row.idem_key);
    // The timestamp is the attempt's; the body is the same.
    assert_eq!(
        header(&got[0], "webhook-timestamp"),
        (NOW / 1000).to_string()
    );
    assert_eq!(
        header(&got[1], "webhook-timestamp"),
        (NOW / 1000 + 5).to_string()
    );
    assert_eq!(got[0].body, got[1].body);
}

#[tokio::test]
async fn too_many_requests_honours_retry_after() {
    let (s, _r) = standard(
        NOW,
        vec![
            Answer::Status(429, vec![("retry-after", "2".into())], ""),
            Answer::Status(429, vec![("retry-after", "30".into())], ""),
        ],
        DispatcherOptions::default(),
    )
    .await;
    s.dispatcher.run_once().await.unwrap();
    let row = s.row("webhook:ops");
    assert_eq!(
        (row.state, row.last_status),
        (OutboxState::Pending, Some(429))
    );
    assert!(row.next_attempt_at >= NOW + 2_000);
    // After the second failure a 30 s Retry-After is shorter than the 5 min backoff.
    s.clock.set(row.next_attempt_at);
    s.dispatcher.run_once().await.unwrap();
    let row2 = s.row("webhook:ops");
    assert_eq!(row2.attempts, 2);
    assert_eq!(row2.next_attempt_at, s.clock.now_ms() + 5 * 60_000);
}

#[tokio::test]
async fn retry_after_longer_than_the_backoff_wins() {
    let (s, _r) = standard(
        NOW,
        vec![Answer::Status(503, vec![("retry-after", "30".into())], "")],
        DispatcherOptions::default(),
    )
    .await;
    s.dispatcher.run_once().await.unwrap();
    assert_eq!(s.row("webhook:ops").next_attempt_at, NOW + 30_000);
}

#[tokio::test]
async fn gone_disables_the_channel_and_fails_its_pending_rows() {
    let (r, url) = receiver(vec![Answer::Status(410, vec![], "gone")]).await;
    let s = setup(
        NOW,
        &[crossing(80.0, NOW, 1), crossing(95.0, NOW + 60_000, 2)],
        &webhook_channels(),
        MonitorHookConfig::default(),
        vec![webhook(&url)],
        DispatcherOptions::default(),
    );
    let rep = s.dispatcher.run_once().await.unwrap();
    assert_eq!(rep.disabled, ["webhook:ops"]);
    let rows = s.rows();
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row.state, OutboxState::Failed, "{row:?}");
    }
    let sent: Vec<_> = rows.iter().filter(|r| r.attempts == 1).collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].last_status, Some(410));
    let disabled = s.store.lock().unwrap().disabled_channels().unwrap();
    assert_eq!(disabled.len(), 1);
    assert_eq!(disabled[0].channel_id, "webhook:ops");
    s.clock.advance(3_600_000);
    assert_eq!(s.dispatcher.run_once().await.unwrap().claimed, 0);
    assert_eq!(r.got().len(), 1);
}

#[tokio::test]
async fn a_hang_past_the_timeout_is_retried() {
    let opts = DispatcherOptions {
        timeout: Duration::from_millis(300),
        ..DispatcherOptions::default()
    };
    let (s, r) = standard(NOW, vec![Answer::Hang, ok()], opts).await;
    let rep = s.dispatcher.run_once().await.unwrap();
    assert_eq!(rep.retried, 1);
    let row = s.row("webhook:ops");
    assert_eq!((row.state, row.last_status), (OutboxState::Pending, None));
    assert!(
        row.last_error.as_deref().unwrap_or("").contains("timeout"),
        "{:?}",
        row.last_error
    );
    s.clock.advance(5_000);
    assert_eq!(s.dispatcher.run_once().await.unwrap().delivered, 1);
    assert_eq!(r.got().len(), 2);
}

#[tokio::test]
async fn a_refused_connection_is_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let s = setup(
        NOW,
        &[crossing(80.0, NOW, 1)],
        &webhook_channels(),
        MonitorHookConfig::default(),
        vec![webhook(&url)],
        DispatcherOptions::default(),
    );
    assert_eq!(s.dispatcher.run_once().await.unwrap().retried, 1);
    let row = s.row("webhook:ops");
    assert_eq!(row.state, OutboxState::Pending);
    assert!(row.last_error.unwrap().contains("network error"));
}

#[tokio::test]
async fn a_redirect_is_a_failure_and_not_followed() {
    let (s, r) = standard(
        NOW,
        vec![Answer::Status(
            302,
            vec![("location", "/elsewhere".into())],
            "",
        )],
        DispatcherOptions::default(),
    )
    .await;
    assert_eq!(s.dispatcher.run_once().await.unwrap().retried, 1);
    let row = s.row("webhook:ops");
    assert_eq!(
        (row.state, row.last_status),
        (OutboxState::Pending, Some(302))
    );
    let err = row.last_error.unwrap();
    assert!(err.contains("update the URL"), "{err}");
    assert!(err.contains("/elsewhere"), "{err}");
    let got = r.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/hook");
}

#[tokio::test]
async fn garbage_body_with_ok_is_delivered() {
    let (s, _r) = standard(
        NOW,
        vec![Answer::Status(
            200,
            vec![("content-type", "application/json".into())],
            "\u{1}{{{not json",
        )],
        DispatcherOptions::default(),
    )
    .await;
    assert_eq!(s.dispatcher.run_once().await.unwrap().delivered, 1);
    assert_eq!(s.row("webhook:ops").state, OutboxState::Delivered);
}

#[tokio::test]
async fn other_client_errors_retry_a_few_times_then_fail() {
    let (s, r) = standard(
        NOW,
        vec![Answer::Status(404, vec![], "")],
        DispatcherOptions::default(),
    )
    .await;
    for _ in 0..4 {
        s.clock.set(s.row("webhook:ops").next_attempt_at);
        assert_eq!(s.dispatcher.run_once().await.unwrap().claimed, 1);
    }
    let row = s.row("webhook:ops");
    assert_eq!(
        (row.state, row.attempts, row.last_status),
        (OutboxState::Failed, 4, Some(404))
    );
    assert_eq!(r.got().len(), 4);
}

#[tokio::test]
async fn the_signature_verifies_with_standardwebhooks() {
    // The verifier checks the timestamp against the wall clock.
    let now = tykwatch::clock::system_now_ms();
    let (s, r) = standard(now, vec![ok()], DispatcherOptions::default()).await;
    assert_eq!(s.dispatcher.run_once().await.unwrap().delivered, 1);
    let got = &r.got()[0];
    assert!(header(got, "webhook-signature").starts_with("v1,"));
    let wh = standardwebhooks::Webhook::new(SECRET).unwrap();
    wh.verify(&got.body, &got.headers).unwrap();
    // A tampered body does not verify.
    let mut body = got.body.to_vec();
    body[0] = b' ';
    assert!(wh.verify(&body, &got.headers).is_err());
}

fn vector(name: &str) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/monitor_webhook_vectors.json"
    ))
    .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == name)
        .unwrap()["rendered"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn tyk_config(url: &str) -> MonitorHookConfig {
    let mut header_map = BTreeMap::new();
    header_map.insert("X-Hook-Secret".to_owned(), Secret::new("s3cret"));
    MonitorHookConfig {
        method: "post".into(),
        target_path: format!("{url}/tyk?x=1"),
        template_path: String::new(),
        header_map,
        event_timeout: 0,
    }
}

fn tyk_channels() -> Channels {
    Channels {
        tyk: true,
        ..Channels::default()
    }
}

#[tokio::test]
async fn tyk_format_is_byte_identical_to_tyk() {
    let (r, url) = receiver(vec![ok()]).await;
    let s = setup(
        NOW,
        &[crossing(80.0, NOW, 1)],
        &tyk_channels(),
        tyk_config(&url),
        vec![],
        DispatcherOptions::default(),
    );
    assert_eq!(s.dispatcher.run_once().await.unwrap().delivered, 1);
    let got = &r.got()[0];
    assert_eq!(got.method, Method::POST);
    assert_eq!(got.path, "/tyk");
    assert_eq!(
        String::from_utf8(got.body.to_vec()).unwrap(),
        vector("user_key_plain")
    );
    assert_eq!(header(got, "user-agent"), "Tyk-Hookshot");
    assert_eq!(header(got, "content-type"), "application/json");
    assert_eq!(header(got, "x-hook-secret"), "s3cret");
    assert!(got.headers.get("webhook-id").is_none());
    assert_eq!(s.row("tyk").state, OutboxState::Delivered);
}

#[tokio::test]
async fn tyk_header_map_content_type_wins_and_odd_methods_are_get() {
    let (r, url) = receiver(vec![ok()]).await;
    let mut cfg = tyk_config(&url);
    cfg.method = "head".into();
    cfg.header_map
        .insert("Content-Type".into(), Secret::new("text/plain"));
    let s = setup(
        NOW,
        &[crossing(80.0, NOW, 1)],
        &tyk_channels(),
        cfg,
        vec![],
        DispatcherOptions::default(),
    );
    assert_eq!(s.dispatcher.run_once().await.unwrap().delivered, 1);
    let got = &r.got()[0];
    assert_eq!(got.method, Method::GET);
    assert_eq!(header(got, "content-type"), "text/plain");
}

#[tokio::test]
async fn a_template_that_fails_to_render_fails_the_row_with_the_reason() {
    let (r, url) = receiver(vec![ok()]).await;
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(&path, "{\"x\": \"{{.Meta.NoSuchField}}\"}\n").unwrap();
    let mut cfg = tyk_config(&url);
    cfg.template_path = path.to_string_lossy().into_owned();
    let s = setup(
        NOW,
        &[crossing(80.0, NOW, 1)],
        &tyk_channels(),
        cfg,
        vec![],
        DispatcherOptions::default(),
    );
    assert_eq!(s.dispatcher.run_once().await.unwrap().failed, 1);
    let row = s.row("tyk");
    assert_eq!((row.state, row.attempts), (OutboxState::Failed, 1));
    let err = row.last_error.unwrap();
    assert!(err.contains("template"), "{err}");
    assert!(r.got().is_empty());
}

#[tokio::test]
async fn email_rows_fail_visibly_when_email_is_disabled() {
    let (r, url) = receiver(vec![ok()]).await;
    let channels = Channels {
        webhooks: vec!["ops".into()],
        email: true,
        email_to: vec!["ops@example.com".into()],
        ..Channels::default()
    };
    // The dispatcher's e-mail is off (EmailSetup::disabled): the row fails with the reason
    // instead of staying pending for ever; the webhook row goes as usual.
    let s = setup(
        NOW,
        &[crossing(80.0, NOW, 1)],
        &channels,
        MonitorHookConfig::default(),
        vec![webhook(&url)],
        DispatcherOptions::default(),
    );
    let rep = s.dispatcher.run_once().await.unwrap();
    assert_eq!((rep.claimed, rep.delivered, rep.failed), (2, 1, 1));
    let email = s.row("email:ops");
    assert_eq!((email.state, email.attempts), (OutboxState::Failed, 1));
    assert!(email.last_error.unwrap().contains("e-mail is disabled"));
    assert_eq!(r.got().len(), 1);
}

#[tokio::test]
async fn cancellation_returns_inflight_rows_to_pending() {
    let opts = DispatcherOptions {
        poll_interval: Duration::from_millis(20),
        ..DispatcherOptions::default()
    };
    let (s, r) = standard(NOW, vec![Answer::Hang], opts).await;
    let (tx, rx) = tokio::sync::watch::channel(false);
    let d = s.dispatcher.clone();
    let task = tokio::spawn(async move { d.run(rx, |e| panic!("{e}")).await });
    // Wait until the request is in flight.
    for _ in 0..200 {
        if !r.got().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(r.got().len(), 1);
    assert_eq!(s.row("webhook:ops").state, OutboxState::Inflight);
    tx.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("run stops promptly")
        .unwrap()
        .unwrap();
    let row = s.row("webhook:ops");
    assert_eq!((row.state, row.attempts), (OutboxState::Pending, 0));
}

// ---------------------------------------------------------------------------------------------
// A data dir written by an earlier version
// ---------------------------------------------------------------------------------------------

/// `tests/fixtures/store/v2` (schema 2: event rows posed as crossings of `event:<id>` with fake
/// ledger rows) opens in place: the schema migrates, nothing is lost, and every row that was
/// pending is delivered exactly once, with its old idempotency key, and nothing else is sent.
#[tokio::test]
async fn a_schema_2_data_dir_migrates_in_place_and_every_pending_row_delivers_once() {
    let dir = TempDir::new().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store/v2");
    std::fs::copy(fixture.join("tykwatch.db"), dir.path().join("tykwatch.db")).unwrap();
    let before = {
        let db = rusqlite::Connection::open(dir.path().join("tykwatch.db")).unwrap();
        let v: i64 = db
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 2, "the fixture is a schema-2 file");
        let pending: Vec<String> = db
            .prepare("SELECT idem_key FROM outbox WHERE state = 'pending' ORDER BY idem_key")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        pending
    };
    assert_eq!(before.len(), 7);

    let store = Store::open_in(dir.path()).unwrap();
    store.integrity_check().unwrap();
    // No ledger row poses as a quota any more; the crossings' rows are all still there.
    let ledger = store.load_ledger_since(0).unwrap();
    assert_eq!(ledger.len(), 6);
    assert!(ledger.iter().all(|l| l.quota_key.starts_with("key:")));
    let rows = store.list_outbox(&OutboxFilter::default(), 100).unwrap();
    assert_eq!(rows.len(), 11);
    for r in &rows {
        match &r.source {
            Source::Event { event_id } => {
                assert_eq!(r.idem_key, format!("e:{event_id}:webhook:ops"));
            }
            Source::Crossing { quota_key, .. } => {
                assert!(r.idem_key.starts_with(&format!("q:{quota_key}:")), "{r:?}");
            }
        }
    }
    let events: Vec<_> = rows.iter().filter(|r| r.source.is_event()).collect();
    assert_eq!(events.len(), 2);
    let counts = store.counts().unwrap();
    assert_eq!(
        (counts.pending, counts.delivered, counts.failed, counts.dead),
        (7, 2, 1, 1)
    );
    // Routed events stay routed (with or without rows); the one never routed is offered.
    let unrouted: Vec<i64> = store
        .unrouted_events(0, 10)
        .unwrap()
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(unrouted, [4]);
    drop(store);

    // Deliver with the channels the rows were planned for.
    let (r, url) = receiver(vec![]).await;
    let store = Arc::new(Mutex::new(Store::open_in(dir.path()).unwrap()));
    let webhooks: Vec<WebhookConfig> = ["ops", "audit"]
        .into_iter()
        .map(|name| WebhookConfig {
            name: name.into(),
            url: format!("{url}/{name}"),
            secret: Secret::new(SECRET),
            enabled: true,
        })
        .collect();
    let dispatcher = Dispatcher::with_jitter(
        store.clone(),
        Arc::new(FixedClock::new(1_900_000_000_000)),
        &tyk_config(&url),
        &webhooks,
        EmailSetup::disabled(),
        DispatcherOptions::default(),
        Box::new(NoJitter),
    )
    .unwrap();
    let report = dispatcher.run_once().await.unwrap();
    assert_eq!((report.claimed, report.delivered), (7, 7), "{report:?}");
    assert_eq!(dispatcher.run_once().await.unwrap().claimed, 0);
    let mut sent: Vec<String> = r
        .got()
        .iter()
        .map(|g| {
            g.headers
                .get("webhook-id")
                .map(|v| v.to_str().unwrap().to_owned())
                // Tyk's monitor format has no id header: the row is known by its path.
                .unwrap_or_else(|| format!("tyk{}", g.path))
        })
        .collect();
    sent.sort();
    let tyk_pending = before.iter().filter(|k| k.ends_with(":tyk")).count();
    let mut expected: Vec<String> = before
        .iter()
        .filter(|k| !k.ends_with(":tyk"))
        .cloned()
        .collect();
    expected.extend(std::iter::repeat_n("tyk/tyk".to_owned(), tyk_pending));
    expected.sort();
    assert_eq!(sent, expected);
    let s = store.lock().unwrap();
    assert_eq!(s.counts().unwrap().pending, 0);
    assert_eq!(s.counts().unwrap().delivered, 9);
}
