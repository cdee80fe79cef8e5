//! The Gateway client against a real socket on loopback: every error a gateway (or something
//! that is not one) can produce becomes a message that says what to fix.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use crate::common;

use std::time::Duration;

use common::{RawServer, Reply};
use tykwatch::clock::SystemClock;
use tykwatch::quota::poller::SweepOptions;
use tykwatch::quota::{Source, SourceError};
use tykwatch::tyk::gateway::{DEFAULT_MAX_BODY, Gateway, GatewayError, GatewaySettings};

const SECRET: &str = "s3cr3t-value-never-shown";

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn client(url: &str, timeout_ms: u64, max_body: usize) -> Gateway {
    Gateway::new(&GatewaySettings {
        url: url.to_string(),
        secret: SECRET.to_string(),
        timeout: Duration::from_millis(timeout_ms),
        concurrency: 4,
        max_body,
    })
    .unwrap()
}

fn no_secret(e: &GatewayError) -> String {
    let text = e.to_string();
    assert!(!text.contains(SECRET), "secret leaked: {text}");
    text
}

#[tokio::test]
async fn forbidden_says_which_secret_to_set() {
    let srv = RawServer::start(|_| Reply::json(403, fixture("error_forbidden.json"))).await;
    let e = client(&srv.url(), 2000, DEFAULT_MAX_BODY)
        .list_keys(None)
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::Forbidden { .. }), "{e:?}");
    let text = no_secret(&e);
    assert!(
        text.contains("TYK_GW_SECRET") && text.contains("invalid or missing key"),
        "{text}"
    );
    let req = srv.requests.lock().unwrap()[0].clone();
    assert_eq!(req.header("x-tyk-authorization"), Some(SECRET));
}

#[tokio::test]
async fn hashed_listing_disabled_names_the_tyk_conf_setting() {
    let srv =
        RawServer::start(|_| Reply::json(404, fixture("error_hashed_listing_disabled.json"))).await;
    let e = client(&srv.url(), 2000, DEFAULT_MAX_BODY)
        .list_keys(None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, GatewayError::HashedListingDisabled { .. }),
        "{e:?}"
    );
    assert!(no_secret(&e).contains("\"enable_hashed_keys_listing\": true"));
}

#[tokio::test]
async fn server_error_carries_tyks_message() {
    let srv = RawServer::start(|_| {
        Reply::json(
            500,
            "{\"status\":\"error\",\"message\":\"Redis is down\"}\n",
        )
    })
    .await;
    let e = client(&srv.url(), 2000, DEFAULT_MAX_BODY)
        .list_keys(None)
        .await
        .unwrap_err();
    assert_eq!(
        e,
        GatewayError::Status {
            what: "GET /tyk/keys".into(),
            status: 500,
            message: "Redis is down".into()
        }
    );
}

#[tokio::test]
async fn a_hang_past_the_timeout_is_a_timeout() {
    let srv = RawServer::start(|_| Reply::Hang).await;
    let started = std::time::Instant::now();
    let e = client(&srv.url(), 300, DEFAULT_MAX_BODY)
        .hello()
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::Timeout { .. }), "{e:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(no_secret(&e).contains("raise [gateway] timeout"));
}

#[tokio::test]
async fn malformed_and_non_object_bodies() {
    let srv = RawServer::start(|r| {
        if r.path.starts_with("/tyk/keys/") {
            Reply::json(200, "[1,2,3]")
        } else {
            Reply::json(200, "<html>login</html>")
        }
    })
    .await;
    let gw = client(&srv.url(), 2000, DEFAULT_MAX_BODY);
    let e = gw.list_keys(None).await.unwrap_err();
    assert!(matches!(e, GatewayError::Malformed { .. }), "{e:?}");
    assert!(no_secret(&e).contains("is [gateway] url a Tyk Gateway?"));
    let e = gw.get_key("abc").await.unwrap_err();
    assert!(matches!(e, GatewayError::Malformed { .. }), "{e:?}");
}

#[tokio::test]
async fn truncated_body_is_reported_as_such() {
    let srv = RawServer::start(|_| Reply::Truncated {
        declared: 5000,
        body: b"{\"keys\":[\"abc".to_vec(),
    })
    .await;
    let e = client(&srv.url(), 2000, DEFAULT_MAX_BODY)
        .list_keys(None)
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::Truncated { .. }), "{e:?}");
}

#[tokio::test]
async fn ten_megabyte_bodies_are_read_or_refused_by_the_limit() {
    let big_alias = "a".repeat(10 * 1024 * 1024);
    let body = format!("{{\"quota_max\":10,\"quota_remaining\":5,\"alias\":\"{big_alias}\"}}\n");
    let srv = RawServer::start(move |_| Reply::json(200, body.clone())).await;
    let s = client(&srv.url(), 10_000, DEFAULT_MAX_BODY)
        .get_key("k")
        .await
        .unwrap();
    assert_eq!(s.alias.len(), 10 * 1024 * 1024);
    let e = client(&srv.url(), 10_000, 1024 * 1024)
        .get_key("k")
        .await
        .unwrap_err();
    assert!(
        matches!(e, GatewayError::TooLarge { limit: 1048576, .. }),
        "{e:?}"
    );
}

#[tokio::test]
async fn keys_with_plus_slash_equals_stay_one_path_segment() {
    let list = fixture("keys_list.json");
    let session = fixture("session_v5_8.json");
    let srv = RawServer::start(move |r| {
        if r.path == "/tyk/keys" {
            Reply::json(200, list.clone())
        } else {
            Reply::json(200, session.clone())
        }
    })
    .await;
    let gw = client(&srv.url(), 2000, DEFAULT_MAX_BODY);
    let keys = gw.list_keys(None).await.unwrap();
    gw.get_key(&keys[2]).await.unwrap();
    let path = srv.paths().pop().unwrap();
    assert_eq!(
        path,
        "/tyk/keys/eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6InBhcnRuZXJ+djI%2FMDEiLCJoIjoibXVybXVyNjQifQ=="
    );
}

#[tokio::test]
async fn unreachable_gateway_says_to_check_the_url() {
    // Bind then drop: the port is closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = client(&format!("http://127.0.0.1:{port}"), 2000, DEFAULT_MAX_BODY)
        .hello()
        .await
        .unwrap_err();
    assert!(matches!(e, GatewayError::Unreachable { .. }), "{e:?}");
    assert!(no_secret(&e).contains("is it running"));
}

#[tokio::test]
async fn redirects_are_not_followed_with_the_secret() {
    let srv = RawServer::start(|_| Reply::Full {
        status: 302,
        headers: vec![("Location", "http://example.invalid/login".into())],
        body: Vec::new(),
    })
    .await;
    let e = client(&srv.url(), 2000, DEFAULT_MAX_BODY)
        .list_keys(None)
        .await
        .unwrap_err();
    assert!(
        matches!(e, GatewayError::Redirect { status: 302, .. }),
        "{e:?}"
    );
    assert_eq!(srv.requests.lock().unwrap().len(), 1);
}

#[test]
fn bad_urls_are_refused_up_front() {
    for url in ["", "localhost:8080", "ftp://x", "http://"] {
        let e = Gateway::new(&GatewaySettings {
            url: url.into(),
            secret: String::new(),
            timeout: Duration::from_secs(1),
            concurrency: 1,
            max_body: 1,
        })
        .unwrap_err();
        assert!(matches!(e, GatewayError::BadUrl { .. }), "{url}: {e:?}");
    }
}

#[tokio::test]
async fn a_key_deleted_between_list_and_get_is_skipped() {
    let session = fixture("session_v5_8.json");
    let srv = RawServer::start(move |r| match r.path.as_str() {
        "/hello" => Reply::json(200, fixture("hello.json")),
        "/tyk/keys" => Reply::json(200, "{\"keys\":[\"k1\",\"gone\"]}\n"),
        "/tyk/keys/gone" => Reply::json(
            404,
            "{\"status\":\"error\",\"message\":\"Key not found\"}\n",
        ),
        "/tyk/org/keys" => Reply::json(
            404,
            "{\"status\":\"error\",\"message\":\"ORG not found\"}\n",
        ),
        _ => Reply::json(200, session.clone()),
    })
    .await;
    let gw = client(&srv.url(), 2000, DEFAULT_MAX_BODY);
    let mut source = Source::rest(gw, SweepOptions::default(), None);
    let out = source.sweep(&SystemClock).await;
    assert!(out.error.is_none());
    assert!(
        out.complete,
        "a vanished key does not make the sweep incomplete"
    );
    assert_eq!(out.samples.len(), 2, "k1: key quota + one per-API limit");
    assert_eq!(out.item_errors.len(), 1);
    assert!(matches!(
        out.item_errors[0],
        SourceError::Gateway(GatewayError::KeyVanished { .. })
    ));
    assert_eq!(out.requests, 5);
}
