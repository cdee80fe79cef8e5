//! Gateways that hash keys (tyk.conf `hash_keys: true`), over the REST API, against a fake Tyk
//! on loopback that behaves as the real one does: the listing holds hashes, a hash is read only
//! with `?hashed=true` (without it the gateway hashes the id again and answers 404), and a
//! gateway that does not hash answers 400 to `?hashed=true`.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::binary::{Env, text};
use serde_json::{Value, json};
use tykwatch::clock::SystemClock;
use tykwatch::quota::poller::{SweepOptions, SweepOutcome};
use tykwatch::quota::{QuotaId, Source, SourceError};
use tykwatch::tyk::gateway::{DEFAULT_MAX_BODY, Gateway, GatewayError, GatewaySettings};
use tykwatch::tyk::keyhash;

const SECRET: &str = "hashed-gw-secret-1f2e";
/// A legacy `org + id` token: murmur32.
const M32_TOKEN: &str = "5e9d9544a1dcd60001d0ed20c1a2b3c4d5e64f708192a3b4c5d6e7f8";
const M32: &str = "45a0a4f9";
/// A base64-JSON token with `"h":"murmur64"`.
const M64_TOKEN: &str = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6IjdmM2MyYTFiOWU4ZDRmNmE4YjdjNmQ1ZTRmM2EyYjFjIiwiaCI6Im11cm11cjY0In0=";
const M64: &str = "c78cdedcb3a706c0";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// `hash_keys: true`; `listing` = `enable_hashed_keys_listing`.
    Hashed { listing: bool },
    /// `hash_keys: false`.
    Plain,
}

struct Tyk {
    mode: Mode,
    /// What Redis holds: `apikey-<id>` → session (ids are hashes in hashed mode).
    stored: BTreeMap<String, Value>,
    /// Every request, path and query as received.
    log: Mutex<Vec<String>>,
}

struct FakeTyk {
    addr: SocketAddr,
    tyk: Arc<Tyk>,
}

impl FakeTyk {
    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    fn log(&self) -> Vec<String> {
        self.tyk.log.lock().unwrap().clone()
    }
    fn clear(&self) {
        self.tyk.log.lock().unwrap().clear();
    }
    /// Requests for one key's session (not the listing).
    fn key_reads(&self) -> Vec<String> {
        self.log()
            .into_iter()
            .filter(|p| p.starts_with("/tyk/keys/"))
            .collect()
    }
}

fn session(alias: &str, max: i64, remaining: i64) -> Value {
    json!({
        "org_id": "5e9d9544a1dcd60001d0ed20",
        "alias": alias,
        "quota_max": max,
        "quota_remaining": remaining,
        "quota_renews": 4_102_444_800_i64,
        "quota_renewal_rate": 3600,
        "access_rights": {},
    })
}

fn tyk_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [("content-type", "application/json")],
        format!("{}\n", json!({"status": "error", "message": message})),
    )
        .into_response()
}

fn ok_json(v: &Value) -> Response {
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        v.to_string(),
    )
        .into_response()
}

/// Logs the request; the 403 Tyk sends when the secret is wrong.
fn refused(tyk: &Tyk, headers: &HeaderMap, uri: &Uri) -> Option<Response> {
    tyk.log.lock().unwrap().push(uri.to_string());
    let secret = headers
        .get("x-tyk-authorization")
        .and_then(|v| v.to_str().ok());
    (secret != Some(SECRET)).then(|| {
        tyk_error(
            StatusCode::FORBIDDEN,
            "Attempted administrative access with invalid or missing key!",
        )
    })
}

async fn hello(State(tyk): State<Arc<Tyk>>, uri: Uri) -> Response {
    tyk.log.lock().unwrap().push(uri.to_string());
    ok_json(&json!({"status": "pass", "version": "v5.8.0", "description": "Tyk GW"}))
}

async fn list_keys(State(tyk): State<Arc<Tyk>>, headers: HeaderMap, uri: Uri) -> Response {
    if let Some(r) = refused(&tyk, &headers, &uri) {
        return r;
    }
    if tyk.mode == (Mode::Hashed { listing: false }) {
        return tyk_error(
            StatusCode::NOT_FOUND,
            "Hashed key listing is disabled in config (enable_hashed_keys_listing)",
        );
    }
    let keys: Vec<&String> = tyk.stored.keys().collect();
    ok_json(&json!({ "keys": keys }))
}

/// `handleGetDetail`: `?hashed=<non-empty>` reads `apikey-<id>` as given; otherwise a hashing
/// gateway hashes the id first.
async fn get_key(
    State(tyk): State<Arc<Tyk>>,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    if let Some(r) = refused(&tyk, &headers, &uri) {
        return r;
    }
    let by_hash = q.get("hashed").is_some_and(|v| !v.is_empty());
    let stored_as = match (tyk.mode, by_hash) {
        (Mode::Plain, true) => {
            return tyk_error(
                StatusCode::BAD_REQUEST,
                "Key requested by hash but key hashing is not enabled",
            );
        }
        (Mode::Plain, false) | (Mode::Hashed { .. }, true) => id,
        (Mode::Hashed { .. }, false) => keyhash::hash_str(&id),
    };
    match tyk.stored.get(&stored_as) {
        Some(s) => ok_json(s),
        None => tyk_error(StatusCode::NOT_FOUND, "Key not found"),
    }
}

async fn list_orgs(State(tyk): State<Arc<Tyk>>, headers: HeaderMap, uri: Uri) -> Response {
    if let Some(r) = refused(&tyk, &headers, &uri) {
        return r;
    }
    tyk_error(StatusCode::NOT_FOUND, "ORG not found")
}

async fn start(mode: Mode, stored: &[(&str, Value)]) -> FakeTyk {
    let tyk = Arc::new(Tyk {
        mode,
        stored: stored
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect(),
        log: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/hello", get(hello))
        .route("/tyk/keys", get(list_keys))
        .route("/tyk/keys/{id}", get(get_key))
        .route("/tyk/org/keys", get(list_orgs))
        .with_state(tyk.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    FakeTyk { addr, tyk }
}

/// A gateway with `hash_keys: true` and listing on, holding the two vector tokens.
async fn hashing_gateway() -> FakeTyk {
    start(
        Mode::Hashed { listing: true },
        &[
            (M32, session("partner-legacy", 1000, 250)),
            (M64, session("partner-b64", 100, 40)),
        ],
    )
    .await
}

fn source(url: &str, hash_keys: Option<bool>) -> Source {
    let gw = Gateway::new(&GatewaySettings {
        url: url.to_string(),
        secret: SECRET.to_string(),
        timeout: Duration::from_secs(5),
        concurrency: 4,
        max_body: DEFAULT_MAX_BODY,
    })
    .unwrap();
    Source::rest(gw, SweepOptions::default(), hash_keys)
}

fn hash_keys_of(src: &Source) -> Option<bool> {
    match src {
        Source::Rest(r) => r.hash_keys,
        Source::Redis(_) => panic!("a REST source was built"),
    }
}

fn sample<'a>(out: &'a SweepOutcome, key: &str) -> &'a tykwatch::quota::Sample {
    out.samples
        .iter()
        .find(|s| s.id == QuotaId::Key(Arc::from(key)))
        .unwrap_or_else(|| panic!("no sample for {key}: {:?}", out.samples))
}

#[tokio::test]
async fn a_hashing_gateway_is_detected_and_each_hash_read_with_hashed_true() {
    assert_eq!(keyhash::hash_str(M32_TOKEN), M32);
    assert_eq!(keyhash::hash_str(M64_TOKEN), M64);
    let gw = hashing_gateway().await;
    let mut src = source(&gw.url(), None);
    let out = src.sweep(&SystemClock).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(out.item_errors.is_empty(), "{:?}", out.item_errors);
    assert!(out.complete);
    assert_eq!(hash_keys_of(&src), Some(true));
    assert_eq!(out.samples.len(), 2);
    let m32 = sample(&out, M32);
    assert_eq!((m32.quota_max, m32.quota_remaining), (1000, 250));
    assert!(m32.meta.hashed);
    assert_eq!(m32.meta.masked(), M32, "a murmur32 hash is shown whole");
    assert_eq!(m32.meta.display_id(&m32.id), format!("key:{M32}"));
    let m64 = sample(&out, M64);
    assert_eq!((m64.quota_max, m64.quota_remaining), (100, 40));
    assert_eq!(m64.meta.masked(), M64);
    // The probe is the read of the first hash: one request per key, all by hash.
    assert_eq!(out.requests, 5);
    let mut reads = gw.key_reads();
    reads.sort();
    assert_eq!(
        reads,
        [
            format!("/tyk/keys/{M32}?hashed=true"),
            format!("/tyk/keys/{M64}?hashed=true")
        ]
    );

    // The answer is kept: the second sweep reads by hash straight away.
    gw.clear();
    let again = src.sweep(&SystemClock).await;
    assert!(again.error.is_none() && again.complete);
    assert_eq!(again.samples.len(), 2);
    assert_eq!(again.requests, 5);
    assert!(gw.key_reads().iter().all(|p| p.ends_with("?hashed=true")));
}

#[tokio::test]
async fn a_plain_gateway_with_hash_like_keys_is_probed_once() {
    // Custom keys of 32 hex chars look like murmur128 hashes.
    const CUSTOM: &str = "0123456789abcdef0123456789abcdef";
    let gw = start(
        Mode::Plain,
        &[
            (CUSTOM, session("custom", 10, 9)),
            (M32_TOKEN, session("legacy", 10, 1)),
        ],
    )
    .await;
    let mut src = source(&gw.url(), None);
    let out = src.sweep(&SystemClock).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(out.item_errors.is_empty(), "{:?}", out.item_errors);
    assert_eq!(hash_keys_of(&src), Some(false));
    assert_eq!(out.samples.len(), 2);
    let custom = sample(&out, CUSTOM);
    assert!(!custom.meta.hashed);
    assert_eq!(
        custom.meta.masked(),
        "0123…cdef",
        "a token is masked as a token"
    );
    assert_eq!(out.requests, 6, "hello, 2 lists, the probe, 2 reads");
    let probes: Vec<String> = gw
        .key_reads()
        .into_iter()
        .filter(|p| p.contains("hashed="))
        .collect();
    assert_eq!(probes, [format!("/tyk/keys/{CUSTOM}?hashed=true")]);

    gw.clear();
    let again = src.sweep(&SystemClock).await;
    assert!(again.error.is_none() && again.complete);
    assert_eq!(again.requests, 5);
    assert!(
        gw.key_reads().iter().all(|p| !p.contains("hashed=")),
        "probed twice: {:?}",
        gw.log()
    );
}

#[tokio::test]
async fn configured_hash_keys_true_skips_the_probe() {
    let gw = hashing_gateway().await;
    let mut src = source(&gw.url(), Some(true));
    let out = src.sweep(&SystemClock).await;
    assert!(out.error.is_none() && out.complete, "{:?}", out.error);
    assert_eq!(out.samples.len(), 2);
    assert_eq!(out.requests, 5);
    assert_eq!(gw.key_reads().len(), 2);

    // On a gateway that does not hash, nothing is probed or re-read by token: the 400 is the
    // sweep's error, said once, with the setting to change.
    let plain = start(
        Mode::Plain,
        &[(M32_TOKEN, session("a", 10, 1)), (M32, session("b", 10, 1))],
    )
    .await;
    let mut src = source(&plain.url(), Some(true));
    let out = src.sweep(&SystemClock).await;
    assert!(!out.complete);
    assert!(out.samples.is_empty());
    assert!(out.item_errors.is_empty(), "{:?}", out.item_errors);
    let Some(SourceError::Gateway(e @ GatewayError::HashingNotEnabled { .. })) = &out.error else {
        panic!("{:?}", out.error);
    };
    let text = e.to_string();
    assert!(
        text.contains("does not hash keys") && text.contains("hash_keys = false"),
        "{text}"
    );
    assert!(
        plain
            .key_reads()
            .iter()
            .all(|p| p.ends_with("?hashed=true"))
    );
    assert_eq!(
        hash_keys_of(&src),
        Some(true),
        "configuration is not overridden"
    );
}

#[tokio::test]
async fn every_listed_key_vanishing_is_an_error_that_names_hash_keys() {
    let gw = hashing_gateway().await;
    // Told the gateway does not hash: every hash is read as a token, hashed again: 404.
    let mut src = source(&gw.url(), Some(false));
    let out = src.sweep(&SystemClock).await;
    assert!(!out.complete);
    assert!(out.samples.is_empty());
    let Some(SourceError::Gateway(e @ GatewayError::NoKeyReadable { listed: 2, .. })) = &out.error
    else {
        panic!("{:?}", out.error);
    };
    let text = e.to_string();
    assert!(
        text.contains("listed 2 keys but none could be read")
            && text.contains("set [gateway] hash_keys = true"),
        "{text}"
    );
    assert_eq!(
        out.item_errors.len(),
        2,
        "each vanished key is still listed"
    );
    assert!(gw.key_reads().iter().all(|p| !p.contains("hashed=")));

    // Unconfigured, the same gateway is detected and read (the probe finds a session).
    let mut src = source(&gw.url(), None);
    let out = src.sweep(&SystemClock).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.samples.len(), 2);
}

#[tokio::test]
async fn listing_disabled_names_both_ways_out() {
    let gw = start(
        Mode::Hashed { listing: false },
        &[(M32, session("a", 10, 1))],
    )
    .await;
    let mut src = source(&gw.url(), None);
    let out = src.sweep(&SystemClock).await;
    let Some(SourceError::Gateway(e @ GatewayError::HashedListingDisabled { .. })) = &out.error
    else {
        panic!("{:?}", out.error);
    };
    let text = e.to_string();
    assert!(
        text.contains("\"enable_hashed_keys_listing\": true") && text.contains("[gateway.storage]"),
        "{text}"
    );
    assert!(!text.contains(SECRET));
}

#[tokio::test]
async fn poll_key_of_a_raw_token_yields_the_quota_id_of_the_sweep() {
    let gw = hashing_gateway().await;
    let mut src = source(&gw.url(), None);
    let swept = src.sweep(&SystemClock).await;
    let ids: Vec<&QuotaId> = swept.samples.iter().map(|s| &s.id).collect();

    for (token, hash, remaining) in [(M32_TOKEN, M32, 250), (M64_TOKEN, M64, 40)] {
        gw.clear();
        let one = src.poll_key(token, &SystemClock).await;
        assert!(one.item_errors.is_empty(), "{:?}", one.item_errors);
        assert!(!one.complete);
        assert_eq!(one.samples.len(), 1);
        let s = &one.samples[0];
        assert_eq!(s.id, QuotaId::Key(Arc::from(hash)));
        assert!(ids.contains(&&s.id), "{:?} not among {ids:?}", s.id);
        assert!(s.meta.hashed && s.meta.masked() == hash);
        assert_eq!(s.quota_remaining, remaining);
        assert_eq!(gw.key_reads(), [format!("/tyk/keys/{hash}?hashed=true")]);
        assert!(
            gw.log().iter().all(|p| !p.contains(token)),
            "the token went over the wire"
        );
    }

    // A webhook that carried the hash itself is read by that hash.
    let one = src.poll_key(M32, &SystemClock).await;
    assert!(one.item_errors.is_empty(), "{:?}", one.item_errors);
    assert_eq!(one.samples[0].id, QuotaId::Key(Arc::from(M32)));

    // Configured, without a sweep first, the push path hashes too.
    let mut src = source(&gw.url(), Some(true));
    let one = src.poll_key(M64_TOKEN, &SystemClock).await;
    assert_eq!(one.samples[0].id, QuotaId::Key(Arc::from(M64)));
}

// --- the real binary ---------------------------------------------------------------------------

impl Env {
    fn config(&self, text: &str) -> String {
        let path = self.dir.path().join("config.toml");
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    }

    /// The binary with the fake gateway's secret, run off the runtime so the fake gateway
    /// keeps answering.
    async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        cmd.env("TYK_GW_SECRET", SECRET);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_of_a_hashing_gateway_prints_the_hashes() {
    let gw = hashing_gateway().await;
    let env = Env::new();
    let url = gw.url();
    let out = env.run(&["--gateway", &url, "snapshot", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    let legacy = lines
        .iter()
        .find(|l| l["alias"] == "partner-legacy")
        .unwrap();
    assert_eq!(legacy["quota"], format!("key:{M32}"));
    assert_eq!(legacy["key"], M32);
    assert_eq!(legacy["quota_remaining"], 250);
    let b64 = lines.iter().find(|l| l["alias"] == "partner-b64").unwrap();
    assert_eq!(b64["quota"], format!("key:{M64}"));
    assert!(!stdout.contains("****"), "{stdout}");
    assert!(!stdout.contains(SECRET));

    let out = env.run(&["--gateway", &url, "snapshot"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.contains(M32) && table.contains(M64), "{table}");
    // The KEY column fits the 16-char murmur64 hash: the ORG column stays aligned.
    let org_at: Vec<Option<usize>> = table
        .lines()
        .map(|l| {
            l.find("ORG")
                .or_else(|| l.find("5e9d9544a1dcd60001d0ed20"))
                .map(|b| l[..b].chars().count())
        })
        .collect();
    assert_eq!(org_at.len(), 3, "{table}");
    assert!(
        org_at.iter().all(|c| c.is_some() && *c == org_at[0]),
        "{table}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_exits_2_when_every_listed_key_vanishes() {
    let gw = hashing_gateway().await;
    let env = Env::new();
    let config = env.config("[gateway]\nhash_keys = false\n");
    let url = gw.url();
    let out = env
        .run(&["--config", &config, "--gateway", &url, "snapshot"])
        .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("listed 2 keys but none could be read") && err.contains("hash_keys = true"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // The listing-disabled refusal names both fixes on the command line too.
    let off = start(Mode::Hashed { listing: false }, &[]).await;
    let url = off.url();
    let out = env.run(&["--gateway", &url, "snapshot"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("enable_hashed_keys_listing") && err.contains("[gateway.storage]"),
        "{err}"
    );
}
