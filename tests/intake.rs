//! The `[intake]` listener over real HTTP on loopback (reqwest, and raw TCP where reqwest
//! cannot misbehave enough): every payload form from the fixtures, the error answers, the
//! shared secret, body limits, "recorded before 2xx" against a real SQLite file, and a flood.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tykwatch::config::{IntakeConfig, Secret};
use tykwatch::intake::{
    EventDetail, EventKind, IntakeError, IntakeEvent, IntakeHandle, IntakeOptions, TriggerSource,
    start, start_with,
};
use tykwatch::quota::mask_key;
use tykwatch::store::{DB_FILE, Store};

const VECTORS: &str = include_str!("fixtures/monitor_webhook_vectors.json");
const KEY_REQUEST: &str = include_str!("fixtures/key_request_event.json");
const DASHBOARD: &str = include_str!("fixtures/dashboard_events.json");
const PORTAL: &str = include_str!("fixtures/portal_events.json");
const RAW_KEY: &str = "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d";
const ORG: &str = "5e9d9544a1dcd60001d0ed20";
const SECRET: &str = "intake-secret-4f1e9a";

struct Intake {
    _dir: TempDir,
    db: PathBuf,
    handle: IntakeHandle,
    http: reqwest::Client,
}

impl Intake {
    async fn start(secret: &str, max_body: usize) -> Intake {
        Self::start_opts(secret, max_body, IntakeOptions::default()).await
    }

    async fn start_opts(secret: &str, max_body: usize, opts: IntakeOptions) -> Intake {
        let dir = TempDir::new().unwrap();
        let db = dir.path().join(DB_FILE);
        let store = Store::open(&db).unwrap();
        let handle = start_with(&config(secret, max_body), store, opts)
            .await
            .unwrap();
        Intake {
            _dir: dir,
            db,
            handle,
            http: client(),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.handle.addr)
    }

    async fn post(&self, body: impl Into<reqwest::Body>, secret: Option<&str>) -> (u16, Value) {
        post_to(&self.http, self.handle.addr, body, secret).await
    }

    /// What another connection sees in the database right now.
    fn count(&self) -> u64 {
        count(&self.db)
    }

    async fn next_event(&mut self) -> IntakeEvent {
        tokio::time::timeout(Duration::from_secs(10), self.handle.events.recv())
            .await
            .expect("an event within 10 s")
            .expect("the events channel is open")
    }
}

fn config(secret: &str, max_body: usize) -> IntakeConfig {
    IntakeConfig {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        secret: Secret::new(secret),
        max_body,
        ..IntakeConfig::default()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn post_to(
    http: &reqwest::Client,
    addr: SocketAddr,
    body: impl Into<reqwest::Body>,
    secret: Option<&str>,
) -> (u16, Value) {
    let mut req = http
        .post(format!("http://{addr}/events"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(s) = secret {
        req = req.header("X-Tykwatch-Secret", s);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text:?}"));
    (status, json)
}

fn count(db: &Path) -> u64 {
    Store::open(db).unwrap().count_events().unwrap()
}

fn accepted_id(status: u16, body: &Value) -> i64 {
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "accepted", "{body}");
    body["id"].as_i64().expect("numeric id")
}

fn error_text(status: u16, expected: u16, body: &Value) -> String {
    assert_eq!(status, expected, "{body}");
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no \"error\" in {body}"))
        .to_owned()
}

#[tokio::test]
async fn every_monitor_vector_is_recorded_before_202_with_the_real_key() {
    let mut t = Intake::start("", 1024 * 1024).await;
    let vectors: Vec<Value> = serde_json::from_str(VECTORS).unwrap();
    assert_eq!(vectors.len(), 5);
    for (n, v) in vectors.iter().enumerate() {
        let name = v["name"].as_str().unwrap();
        let meta = &v["data"]["Meta"];
        // Go's escaper turns NUL into U+FFFD: that character is all the key can be recovered as.
        let key = meta["Key"].as_str().unwrap().replace('\0', "\u{fffd}");
        let rendered = v["rendered"].as_str().unwrap().to_owned();
        let (status, body) = t.post(rendered, None).await;
        let id = accepted_id(status, &body);
        assert_eq!(t.count(), n as u64 + 1, "{name}: on disk before the 202");

        let ev = t.next_event().await;
        assert_eq!(ev.id, id, "{name}");
        assert_eq!(ev.kind(), EventKind::QuotaTrigger, "{name}");
        assert_eq!(ev.event, "TriggerExceeded");
        assert_eq!(ev.org_id, meta["OrgID"].as_str().unwrap(), "{name}");
        let EventDetail::QuotaTrigger {
            trigger_limit,
            source,
            ..
        } = &ev.detail
        else {
            panic!("{name}: {ev:?}")
        };
        assert_eq!(*trigger_limit, meta["TriggerLimit"].as_f64(), "{name}");
        assert_eq!(*source, TriggerSource::MonitorWebhook);
        if key.is_empty() {
            assert!(ev.raw_key().is_none(), "{name}: org events have no key");
            assert_eq!(ev.masked_key, "");
            assert!(
                ev.summary.starts_with("org quota trigger"),
                "{}",
                ev.summary
            );
        } else {
            assert_eq!(ev.raw_key().unwrap().expose(), key, "{name}");
            assert_eq!(ev.masked_key, mask_key(&key));
            let debug = format!("{ev:?}");
            assert!(
                !debug.contains(&key),
                "{name}: Debug leaks the key: {debug}"
            );
            assert!(ev.summary.contains(&mask_key(&key)), "{}", ev.summary);
        }
        let rows = Store::open(&t.db).unwrap().list_events(1).unwrap();
        let row = &rows[0];
        assert_eq!(row.id, id);
        assert_eq!(row.kind, "quota_trigger");
        assert_eq!(row.event, "TriggerExceeded");
        assert_eq!(row.masked_key, ev.masked_key);
        if !key.is_empty() {
            assert!(!row.payload_json.contains(&key), "{name}: raw key stored");
            assert!(!row.summary.contains(&key));
        }
        let stored: Value = serde_json::from_str(&row.payload_json).unwrap();
        assert_eq!(stored["key"], ev.masked_key.as_str());
        assert_eq!(stored["message"], "Quota trigger reached");
    }
}

#[tokio::test]
async fn monitor_variants_default_template_whitespace_trailing_comma_and_dashboard_form() {
    let mut t = Intake::start("", 1024 * 1024).await;
    let base = format!(
        "{{\n    \"event\": \"TriggerExceeded\",\n    \"message\": \"Quota trigger reached\",\n    \"org\": \"{ORG}\",\n    \"key\": \"{RAW_KEY}\",\n    \"trigger_limit\": \"80\"\n}}\n"
    );
    // templates/default_webhook.json: leading "\n", trailing "\n\n\n".
    let default_template = format!("\n{base}\n\n");
    // The Tyk docs' sample has a trailing comma after trigger_limit.
    let trailing_comma = base.replace("\"80\"\n", "\"80\",\n");
    // A custom template with a bare number and a `+` escaped in the key.
    let bare = format!(
        "{{\"event\":\"TriggerExceeded\",\"org\":\"{ORG}\",\"key\":\"ab&#43;cd/ef==0123456789\",\"trigger_limit\":87.5}}"
    );
    for body in [default_template, trailing_comma] {
        let (s, b) = t.post(body, None).await;
        accepted_id(s, &b);
        let ev = t.next_event().await;
        assert_eq!(ev.raw_key().unwrap().expose(), RAW_KEY);
        assert_eq!(ev.org_id, ORG);
    }
    let (s, b) = t.post(bare, None).await;
    accepted_id(s, &b);
    let ev = t.next_event().await;
    assert_eq!(ev.raw_key().unwrap().expose(), "ab+cd/ef==0123456789");
    assert!(ev.summary.contains("87.5%"), "{}", ev.summary);

    // Gateway → Dashboard `/system/key/quota_trigger` body (json.NewEncoder, numbers).
    let dash = format!(
        "{{\"Message\":\"Quota trigger reached\",\"OriginatingRequest\":\"\",\"org_id\":\"{ORG}\",\"key\":\"{RAW_KEY}\",\"trigger_limit\":80,\"usage_percentage\":85}}\n"
    );
    let (s, b) = t.post(dash, None).await;
    accepted_id(s, &b);
    let ev = t.next_event().await;
    assert_eq!(ev.raw_key().unwrap().expose(), RAW_KEY);
    assert_eq!(ev.org_id, ORG);
    assert_eq!(
        ev.detail,
        EventDetail::QuotaTrigger {
            key: ev.raw_key().cloned(),
            trigger_limit: Some(80.0),
            usage_percentage: Some(85.0),
            source: TriggerSource::DashboardNotification,
        }
    );
    assert_eq!(t.count(), 4);
}

#[tokio::test]
async fn dashboard_key_request_event_fixture() {
    let mut t = Intake::start("", 1024 * 1024).await;
    let (s, b) = t.post(KEY_REQUEST, None).await;
    let id = accepted_id(s, &b);
    let ev = t.next_event().await;
    assert_eq!(ev.id, id);
    assert_eq!(ev.kind(), EventKind::Dashboard);
    assert_eq!(ev.event, "key_request_event.submitted");
    assert_eq!(
        ev.detail,
        EventDetail::Dashboard {
            option: "key_request_event".into(),
            action: "submitted".into()
        }
    );
    assert_eq!(ev.org_id, "5e2743567c1f8800018bdf35");
    assert!(ev.summary.contains("dev@dev.ca"), "{}", ev.summary);
    assert!(ev.summary.contains("frontend APIs"), "{}", ev.summary);
    assert!(ev.raw_key().is_none());
    // The developer's keys (map members of `keys`, values of `subscriptions`) are masked.
    let dev = &ev.payload["data"]["portal_developer"];
    assert!(dev["keys"].get("6dc2dfc0").is_none(), "{dev}");
    assert_eq!(dev["keys"]["****"][0], "5e431f938131890001b83d30");
    assert_eq!(dev["subscriptions"]["5e431f938131890001b83d30"], "****");
    let row = &Store::open(&t.db).unwrap().list_events(1).unwrap()[0];
    assert_eq!(row.kind, "dashboard");
    assert!(!row.payload_json.contains("6dc2dfc0"));
    let stored: Value = serde_json::from_str(&row.payload_json).unwrap();
    assert_eq!(stored, ev.payload);
    assert_eq!(stored["data"]["catalogue_entry"]["name"], "frontend APIs");
}

#[tokio::test]
async fn other_dashboard_events_mask_their_keys() {
    let mut t = Intake::start("", 1024 * 1024).await;
    let fixture: Value = serde_json::from_str(DASHBOARD).unwrap();
    for case in fixture["events"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let body = case["body"].to_string();
        let (s, b) = t.post(body, None).await;
        accepted_id(s, &b);
        let ev = t.next_event().await;
        assert_eq!(ev.kind(), EventKind::Dashboard, "{name}");
        assert_eq!(ev.event, case["body"]["event"].as_str().unwrap());
        let stored = Store::open(&t.db).unwrap().list_events(1).unwrap()[0]
            .payload_json
            .clone();
        for secret in [
            RAW_KEY,
            "5e2743567c1f8800018bdf35d00dfeedd00dfeedd00dfeedd00dfeed",
        ] {
            assert!(!stored.contains(secret), "{name}: {stored}");
            assert!(!ev.summary.contains(secret), "{name}: {}", ev.summary);
        }
        match name {
            "key_event_created" => {
                assert_eq!(ev.masked_key, mask_key(RAW_KEY));
                assert_eq!(ev.org_id, ORG);
            }
            "api_event_updated" => assert!(ev.summary.contains("Orders API"), "{}", ev.summary),
            _ => assert!(ev.summary.contains("dev@dev.ca"), "{}", ev.summary),
        }
    }
    assert_eq!(t.count(), 3);
}

#[tokio::test]
async fn portal_events_are_accepted_with_secrets_masked() {
    let mut t = Intake::start("", 1024 * 1024).await;
    let fixture: Value = serde_json::from_str(PORTAL).unwrap();
    for case in fixture["events"].as_array().unwrap() {
        let body = serde_json::to_string_pretty(&case["body"]).unwrap();
        let (s, b) = t.post(body, None).await;
        accepted_id(s, &b);
        let ev = t.next_event().await;
        assert_eq!(ev.kind(), EventKind::Portal);
        assert_eq!(ev.event, case["body"]["Event"].as_str().unwrap());
        assert_eq!(
            ev.detail,
            EventDetail::Portal {
                timestamp: case["body"]["Timestamp"].as_str().map(str::to_owned)
            }
        );
        assert!(ev.summary.contains("developer@user.com"), "{}", ev.summary);
        let stored = Store::open(&t.db).unwrap().list_events(1).unwrap()[0]
            .payload_json
            .clone();
        assert!(!stored.contains("c0ffee00c0ffee00"), "{stored}");
        assert!(!stored.contains("s3cr3t-client-secret-value"), "{stored}");
        assert!(stored.contains("ACME") || ev.event != "UserRegistered");
    }
}

#[tokio::test]
async fn malformed_bodies_get_400_with_a_reason_and_nothing_is_recorded() {
    let t = Intake::start("", 1024 * 1024).await;
    let deep = "[".repeat(100_000);
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"not json".to_vec(), "not valid JSON"),
        (
            b"{\"event\": \"TriggerExceeded\", ".to_vec(),
            "not valid JSON",
        ),
        (b"".to_vec(), "empty"),
        (b"   \n".to_vec(), "empty"),
        (b"[1,2]".to_vec(), "expected a JSON object, got an array"),
        (b"\"TriggerExceeded\"".to_vec(), "got a string"),
        (b"null".to_vec(), "got null"),
        (vec![b'{', 0xff, 0xfe, b'}'], "not UTF-8"),
        (deep.into_bytes(), "not valid JSON"),
        (b"{\"event\": 5}".to_vec(), "\"event\" must be a string"),
        (
            b"{\"event\":\"TriggerExceeded\",\"key\":5}".to_vec(),
            "\"key\" must be a string",
        ),
        (
            b"{\"event\":\"TriggerExceeded\",\"key\":\"k\",\"trigger_limit\":\"lots\"}".to_vec(),
            "\"trigger_limit\" must be a number",
        ),
        (
            b"{\"Event\": [], \"Message\": {}}".to_vec(),
            "\"Event\" must be a non-empty string",
        ),
        (
            b"{\"Event\": \"UserRegistered\", \"Message\": {}, \"Timestamp\": 5}".to_vec(),
            "\"Timestamp\" must be a string",
        ),
    ];
    for (body, reason) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        let (s, b) = t.post(body, None).await;
        let err = error_text(s, 400, &b);
        assert!(err.contains(reason), "{shown:?}: {err:?}");
    }
    assert_eq!(t.count(), 0);
    assert_eq!(t.handle.stats.rejected(), 14);
}

#[tokio::test]
async fn unknown_shapes_get_422_and_do_not_echo_keys() {
    let t = Intake::start("", 1024 * 1024).await;
    let cases = [
        (json!({"hello": "world"}), "unrecognised payload"),
        (json!({}), "an empty object"),
        (
            json!({"event": "QuotaExceeded", "key": RAW_KEY}),
            "unrecognised event",
        ),
        (
            json!({"event": "user.created", "data": {}}),
            "<option>_event.<action>",
        ),
        (json!({"event": "key_event.created"}), "has no \"data\""),
        (json!({"Event": "UserRegistered"}), "has no \"Message\""),
        (json!({RAW_KEY: 1, "x": 2}), "\"…\""),
    ];
    for (body, reason) in cases {
        let (s, b) = t.post(body.to_string(), None).await;
        let err = error_text(s, 422, &b);
        assert!(err.contains(reason), "{body}: {err:?}");
        assert!(
            err.contains("accepted:"),
            "the reason lists the accepted forms: {err}"
        );
        assert!(!err.contains(RAW_KEY), "{err}");
    }
    assert_eq!(t.count(), 0);
}

#[tokio::test]
async fn oversize_bodies_get_413() {
    let t = Intake::start("", 1024).await;
    // Exactly max_body is fine.
    let mut exact = json!({"Event": "UserRegistered", "Message": {}}).to_string();
    exact.push_str(&" ".repeat(1024 - exact.len()));
    let (s, b) = t.post(exact, None).await;
    accepted_id(s, &b);
    // One byte more is not.
    let mut over = json!({"Event": "UserRegistered", "Message": {}}).to_string();
    over.push_str(&" ".repeat(1025 - over.len()));
    let (s, b) = t.post(over, None).await;
    let err = error_text(s, 413, &b);
    assert!(err.contains("max_body (1024 bytes)"), "{err}");
    // Several hundred kilobytes: still an answer, not a reset.
    let (s, b) = t.post(vec![b' '; 600_000], None).await;
    error_text(s, 413, &b);
    assert_eq!(t.count(), 1);

    // Default limit (1 MiB) with a 2 MiB body.
    let t = Intake::start("", 1024 * 1024).await;
    let (s, b) = t.post(vec![b' '; 2 * 1024 * 1024], None).await;
    let err = error_text(s, 413, &b);
    assert!(err.contains("1048576"), "{err}");
    assert_eq!(t.count(), 0);
}

/// Sends `head` and then `body` over a raw socket and returns the response text.
async fn raw_exchange(addr: SocketAddr, head: &str, body: &[u8]) -> String {
    let mut sock = TcpStream::connect(addr).await.unwrap();
    // One write: the server may answer (and close) before reading a body sent separately.
    let mut request = head.as_bytes().to_vec();
    request.extend_from_slice(body);
    let _ = sock.write_all(&request).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn chunked_and_lying_bodies_over_the_limit_get_413() {
    let t = Intake::start("", 1024).await;
    let addr = t.handle.addr;
    // Chunked (no Content-Length): the limit applies to what arrives.
    let mut chunked = Vec::new();
    for _ in 0..8 {
        chunked.extend_from_slice(b"200\r\n");
        chunked.extend_from_slice(&[b' '; 0x200]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let resp = raw_exchange(
        addr,
        "POST /events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        &chunked,
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(resp.contains("max_body"), "{resp}");
    // A huge declared length is refused before reading it.
    let started = Instant::now();
    let resp = raw_exchange(
        addr,
        "POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n",
        b"{",
    )
    .await;
    assert!(resp.starts_with("HTTP/1.1 413"), "{resp}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(t.count(), 0);
}

#[tokio::test]
async fn a_body_that_never_arrives_gets_408() {
    let opts = IntakeOptions {
        body_timeout: Duration::from_millis(300),
        ..IntakeOptions::default()
    };
    let t = Intake::start_opts("", 1024, opts).await;
    let mut sock = TcpStream::connect(t.handle.addr).await.unwrap();
    sock.write_all(b"POST /events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    let mut out = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut out))
        .await
        .unwrap()
        .unwrap();
    let resp = String::from_utf8_lossy(&out[..n]);
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
}

#[tokio::test]
async fn the_shared_secret_is_required_when_set() {
    let mut t = Intake::start(SECRET, 1024 * 1024).await;
    let body = || KEY_REQUEST.to_owned();

    let (s, b) = t.post(body(), None).await;
    let err = error_text(s, 401, &b);
    assert!(err.contains("missing X-Tykwatch-Secret"), "{err}");

    for wrong in [
        "",
        "intake-secret-4f1e9",
        "intake-secret-4f1e9ab",
        "INTAKE-SECRET-4F1E9A",
    ] {
        let (s, b) = t.post(body(), Some(wrong)).await;
        let err = error_text(s, 401, &b);
        assert!(err.contains("does not match [intake] secret"), "{err}");
        assert!(!err.contains(SECRET));
    }
    // Sent twice (even if one copy is right).
    let resp = t
        .http
        .post(t.url("/events"))
        .header("X-Tykwatch-Secret", SECRET)
        .header("X-Tykwatch-Secret", "other")
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(t.count(), 0, "nothing recorded without the secret");

    let (s, b) = t.post(body(), Some(SECRET)).await;
    accepted_id(s, &b);
    assert_eq!(t.next_event().await.kind(), EventKind::Dashboard);
    assert_eq!(t.count(), 1);

    // The Developer Portal's "Test connection" is a HEAD.
    let head = |secret: Option<&str>| {
        let mut r = t.http.head(t.url("/events"));
        if let Some(s) = secret {
            r = r.header("X-Tykwatch-Secret", s);
        }
        r.send()
    };
    assert_eq!(head(Some(SECRET)).await.unwrap().status(), 204);
    assert_eq!(head(None).await.unwrap().status(), 401);
    // Health checks need no secret.
    let resp = t.http.get(t.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn wrong_methods_and_paths() {
    let t = Intake::start("", 1024 * 1024).await;
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let resp = t
            .http
            .request(method.clone(), t.url("/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405, "{method}");
        assert_eq!(resp.headers()["allow"], "POST, HEAD");
        let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
        assert!(body["error"].as_str().unwrap().contains("POST /events"));
    }
    let resp = t.http.get(t.url("/nope")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = t
        .http
        .post(t.url("/events/"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = t.http.get(t.url("/healthz")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = serde_json::from_str(&resp.text().await.unwrap()).unwrap();
    assert_eq!(body, json!({"status": "ok"}));
    assert_eq!(t.count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_10k_events_from_50_clients_is_all_recorded_and_healthz_stays_fast() {
    const CLIENTS: usize = 50;
    const PER_CLIENT: usize = 200;
    const TOTAL: usize = CLIENTS * PER_CLIENT;
    let mut t = Intake::start(SECRET, 1024 * 1024).await;
    let addr = t.handle.addr;

    // The engine side keeps reading; with a slow reader the rest is counted as dropped.
    let mut events = std::mem::replace(&mut t.handle.events, tokio::sync::mpsc::channel(1).1);
    let reader = tokio::spawn(async move {
        let mut n = 0usize;
        while events.recv().await.is_some() {
            n += 1;
        }
        n
    });

    let flooding = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let prober = {
        let flooding = flooding.clone();
        let latencies = latencies.clone();
        tokio::spawn(async move {
            let http = client();
            while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                let took = healthz_time(&http, addr).await;
                latencies.lock().unwrap().push(took);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    // The senders run on a runtime of their own, as other processes would: the probe measures
    // the listener, not the test's own client load.
    let started = Instant::now();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let ids = rt.block_on(async move {
            let mut tasks = Vec::new();
            for c in 0..CLIENTS {
                tasks.push(tokio::spawn(async move {
                    let http = client();
                    let mut ids = Vec::with_capacity(PER_CLIENT);
                    for i in 0..PER_CLIENT {
                        let key = format!("{ORG}{:032x}", c * PER_CLIENT + i);
                        let body = format!(
                            "{{\n    \"event\": \"TriggerExceeded\",\n    \"message\": \"Quota trigger reached\",\n    \"org\": \"{ORG}\",\n    \"key\": \"{key}\",\n    \"trigger_limit\": \"80\"\n}}\n"
                        );
                        let (s, b) = post_to(&http, addr, body, Some(SECRET)).await;
                        ids.push(accepted_id(s, &b));
                    }
                    ids
                }));
            }
            let mut ids = Vec::with_capacity(TOTAL);
            for task in tasks {
                ids.extend(task.await.unwrap());
            }
            ids
        });
        let _ = done_tx.send(ids);
    });
    let mut ids = done_rx
        .await
        .expect("the senders finished without panicking");
    let flood_time = started.elapsed();
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    prober.await.unwrap();

    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), TOTAL, "every 202 carries its own id");
    assert_eq!(t.count(), TOTAL as u64, "all recorded");
    assert_eq!(t.handle.stats.accepted(), TOTAL as u64);

    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_unstable();
    let worst = lat.last().copied().unwrap_or_default();
    let median = lat.get(lat.len() / 2).copied().unwrap_or_default();
    assert!(
        lat.len() >= 3,
        "healthz was probed during the flood ({flood_time:?})"
    );
    assert!(
        median < Duration::from_millis(100),
        "healthz median {median:?}"
    );
    assert!(
        worst < Duration::from_secs(1),
        "healthz took {worst:?} during the flood ({} probes)",
        lat.len()
    );
    eprintln!(
        "flood: {TOTAL} events in {flood_time:?}; healthz median {median:?}, worst {worst:?} over {} probes",
        lat.len()
    );

    let IntakeHandle {
        stats, shutdown, ..
    } = t.handle;
    shutdown.shutdown().await.unwrap();
    let forwarded = reader.await.unwrap();
    assert_eq!(forwarded as u64 + stats.dropped(), TOTAL as u64);
}

#[tokio::test]
async fn a_shared_store_works_too_and_shutdown_stops_the_listener() {
    let dir = TempDir::new().unwrap();
    let db = dir.path().join(DB_FILE);
    let shared = Arc::new(Mutex::new(Store::open(&db).unwrap()));
    let handle = start(&config("", 4096), shared.clone()).await.unwrap();
    let addr = handle.addr;
    let (s, b) = post_to(&client(), addr, KEY_REQUEST, None).await;
    let id = accepted_id(s, &b);
    assert_eq!(shared.lock().unwrap().list_events(10).unwrap()[0].id, id);

    handle.shutdown.shutdown().await.unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "nothing listens after shutdown"
    );
    assert_eq!(count(&db), 1);
}

#[tokio::test]
async fn bind_errors_say_what_to_fix() {
    let dir = TempDir::new().unwrap();
    let first = start(
        &config("", 1024),
        Store::open(dir.path().join("a.db")).unwrap(),
    )
    .await
    .unwrap();
    let cfg = IntakeConfig {
        listen: Some(first.addr),
        ..config("", 1024)
    };
    let err = start(&cfg, Store::open(dir.path().join("b.db")).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, IntakeError::AddrInUse { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("address in use"), "{msg}");
    assert!(msg.contains("[intake] listen"), "{msg}");

    let cfg = IntakeConfig {
        listen: None,
        ..config("", 1024)
    };
    let err = start(&cfg, Store::open(dir.path().join("c.db")).unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, IntakeError::NotConfigured), "{err:?}");
    assert!(err.to_string().contains("[intake] listen"));
}

/// `classify` never panics: every prefix of every fixture body, and every fixture body with one
/// byte replaced by each of a set of troublesome bytes, gets an answer (event or rejection).
#[test]
fn classify_never_panics_on_truncated_or_mutated_bodies() {
    let vectors: Vec<Value> = serde_json::from_str(VECTORS).unwrap();
    let mut bodies: Vec<Vec<u8>> = vectors
        .iter()
        .map(|v| v["rendered"].as_str().unwrap().as_bytes().to_vec())
        .collect();
    bodies.push(KEY_REQUEST.as_bytes().to_vec());
    for fixture in [DASHBOARD, PORTAL] {
        let f: Value = serde_json::from_str(fixture).unwrap();
        for case in f["events"].as_array().unwrap() {
            bodies.push(case["body"].to_string().into_bytes());
        }
    }
    let specials = [
        b'"', b'\\', b'{', b'}', b',', b':', b'&', b'#', b';', 0, 0xff, 0xc3, b'\n', b'1',
    ];
    let mut answered = 0usize;
    for body in &bodies {
        for end in 0..=body.len() {
            let _ = tykwatch::intake::classify(&body[..end]);
            answered += 1;
        }
        for i in 0..body.len() {
            for b in specials {
                let mut m = body.clone();
                m[i] = b;
                let _ = tykwatch::intake::classify(&m);
                answered += 1;
            }
        }
    }
    assert!(answered > 10_000);
}

/// How long `GET /healthz` took (it must answer 200).
async fn healthz_time(http: &reqwest::Client, addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let resp = http
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    started.elapsed()
}

/// Whether the server closed `sock` (EOF or reset) within `within`.
async fn closed_within(sock: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 512];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, sock.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A 408 or similar before the close: keep reading to the EOF.
            Ok(Ok(_)) => continue,
        }
    }
}

async fn start_limited(
    header_timeout: Duration,
    max_connections: usize,
) -> (TempDir, IntakeHandle) {
    let dir = TempDir::new().unwrap();
    let cfg = IntakeConfig {
        header_timeout,
        max_connections,
        ..config(SECRET, 64 * 1024)
    };
    let handle = start(&cfg, Store::open(dir.path().join(DB_FILE)).unwrap())
        .await
        .unwrap();
    (dir, handle)
}

/// 3 000 connections that send nothing, or their headers a line a second, or go idle after a
/// request, are all closed after the header timeout; `/healthz` answers fast meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_slow_connections_are_closed_after_the_header_timeout() {
    let (_dir, t) = start_limited(Duration::from_secs(2), 4000).await;
    let addr = t.addr;
    let mut idle = Vec::new();
    for _ in 0..3000 {
        idle.push(TcpStream::connect(addr).await.unwrap());
    }
    // A slow-loris: one header line a second, never finishing.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST /events HTTP/1.1\r\n").await.unwrap();
    let slow_task = tokio::spawn(async move {
        for i in 0..10 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if slow
                .write_all(format!("X-Slow-{i}: x\r\n").as_bytes())
                .await
                .is_err()
            {
                return true;
            }
        }
        closed_within(&mut slow, Duration::from_millis(10)).await
    });
    // A kept-alive connection that goes idle after one request.
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));

    let http = client();
    for _ in 0..5 {
        let took = healthz_time(&http, addr).await;
        assert!(took < Duration::from_millis(100), "healthz took {took:?}");
    }
    assert!(
        t.stats
            .connections
            .open
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 3000
    );

    // Every idle connection is closed soon after the 2 s timeout.
    for (i, sock) in idle.iter_mut().enumerate() {
        assert!(
            closed_within(sock, Duration::from_secs(6)).await,
            "idle connection {i} still open"
        );
    }
    assert!(
        closed_within(&mut kept, Duration::from_secs(2)).await,
        "kept-alive idle"
    );
    assert!(
        slow_task.await.unwrap(),
        "the slow-loris connection was kept"
    );
    assert_eq!(
        t.stats
            .connections
            .refused
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
}

/// Over `max_connections`, a new connection is closed at once and counted; once one closes,
/// requests are served again.
#[tokio::test]
async fn connections_over_the_cap_are_refused_and_counted() {
    let (_dir, t) = start_limited(Duration::from_secs(30), 8).await;
    let mut held = Vec::new();
    for _ in 0..8 {
        held.push(TcpStream::connect(t.addr).await.unwrap());
    }
    // The accept loop takes them in order; give it a moment to see all eight.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(t.addr).await.unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(2)).await,
        "over the cap"
    );
    assert_eq!(
        t.stats
            .connections
            .refused
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
    held.clear();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let resp = client()
        .get(format!("http://{}/healthz", t.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// Plants, in every object of `v`, the fields a Tyk payload may carry secrets in (not in the
/// Portal's `keys` map, whose members are keys, not field names).
fn plant_secrets(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (name, child) in map.iter_mut() {
                if name != "keys" {
                    plant_secrets(child);
                }
            }
            map.insert("hmac_string".into(), json!("HMAC-PLANTED-9f8e7d6c5b4a"));
            map.insert("ResetToken".into(), json!("RESET-PLANTED-1a2b3c4d5e6f"));
            map.insert(
                "basic_auth_data".into(),
                json!({"password": "PW-PLANTED-77aa"}),
            );
            map.insert("jwt_data".into(), json!({"secret": "JWT-PLANTED-55bb"}));
            map.insert("access_token".into(), json!("AT-PLANTED-33cc"));
        }
        Value::Array(items) => items.iter_mut().for_each(plant_secrets),
        _ => {}
    }
}

/// By the documented name rule (secret, token, password, hmac, credential, …), no secret of any
/// Tyk payload in the fixtures — wherever it sits in the body — is stored, summarised or
/// forwarded (the forwarded body is the stored payload).
#[tokio::test]
async fn secrets_named_by_the_rule_are_masked_in_every_fixture_payload() {
    let mut t = Intake::start("", 1024 * 1024).await;
    let mut bodies: Vec<Value> = Vec::new();
    for fixture in [DASHBOARD, PORTAL] {
        let f: Value = serde_json::from_str(fixture).unwrap();
        bodies.extend(
            f["events"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["body"].clone()),
        );
    }
    bodies.push(serde_json::from_str(KEY_REQUEST).unwrap());
    let planted = [
        "HMAC-PLANTED",
        "RESET-PLANTED",
        "PW-PLANTED",
        "JWT-PLANTED",
        "AT-PLANTED",
    ];
    for mut body in bodies {
        plant_secrets(&mut body);
        let (s, b) = t.post(body.to_string(), None).await;
        accepted_id(s, &b);
        let ev = t.next_event().await;
        let stored = Store::open(&t.db).unwrap().list_events(1).unwrap()[0]
            .payload_json
            .clone();
        for secret in planted {
            assert!(!stored.contains(secret), "{}: {stored}", ev.event);
            assert!(!ev.summary.contains(secret), "{}", ev.summary);
            assert!(!ev.payload.to_string().contains(secret), "{}", ev.event);
        }
        assert!(stored.contains("\"hmac_string\":\"****\""), "{stored}");
    }
}
