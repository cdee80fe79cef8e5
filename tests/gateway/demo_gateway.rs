//! The embedded demo gateway over real HTTP (reqwest on loopback), checked against Tyk's wire
//! format (TykTechnologies/tyk `user/session.go`, `gateway/api.go`) and the exact fixture bytes.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::Value;
use tykwatch::tyk::demo::{
    API_ORDERS, DemoGateway, DemoOptions, ORG_ACME, ORG_GLOBEX, ORG_INITECH, keys,
};

const FORBIDDEN: &[u8] = include_bytes!("../fixtures/error_forbidden.json");

fn opts(simulate: bool) -> DemoOptions {
    DemoOptions {
        simulate,
        ..DemoOptions::default()
    }
}

/// Percent-encodes a key id for a path segment the way a careful client does.
fn enc(id: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct Client {
    http: reqwest::Client,
    base: String,
    secret: String,
}

impl Client {
    fn new(gw: &DemoGateway) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: gw.url(),
            secret: gw.secret().to_string(),
        }
    }

    async fn req(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<String>,
    ) -> (u16, String, Vec<u8>) {
        let mut rb = self
            .http
            .request(method, format!("{}{}", self.base, path))
            .header("x-tyk-authorization", &self.secret);
        if let Some(b) = body {
            rb = rb.body(b);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, ct, resp.bytes().await.unwrap().to_vec())
    }

    async fn get(&self, path: &str) -> (u16, Vec<u8>) {
        let (s, ct, b) = self.req(reqwest::Method::GET, path, None).await;
        assert_eq!(ct, "application/json", "{path}");
        (s, b)
    }

    async fn get_json(&self, path: &str) -> Value {
        let (status, body) = self.get(path).await;
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        assert_eq!(
            body.last(),
            Some(&b'\n'),
            "Go's Encoder ends with a newline"
        );
        serde_json::from_slice(&body).unwrap()
    }

    async fn key(&self, id: &str) -> Value {
        self.get_json(&format!("/tyk/keys/{}", enc(id))).await
    }
}

#[tokio::test]
async fn hello_needs_no_auth() {
    let gw = DemoGateway::start(opts(false)).await.unwrap();
    let resp = reqwest::get(format!("{}/hello", gw.url())).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body = resp.text().await.unwrap();
    assert!(
        body.starts_with(
            r#"{"status":"pass","version":"v5.8.0","description":"Tyk GW","details":{"redis":{"status":"pass","componentType":"datastore","time":""#
        ),
        "{body}"
    );
    assert!(body.ends_with("Z\"}}}\n"), "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["details"]["redis"]["status"], "pass");
    gw.shutdown().await;
}

#[tokio::test]
async fn wrong_or_missing_secret_is_403_with_tyk_bytes() {
    let gw = DemoGateway::start(opts(false)).await.unwrap();
    let http = reqwest::Client::new();
    for secret in [Some("wrong"), Some("Tykwatch-demo"), None] {
        let mut rb = http.get(format!("{}/tyk/keys", gw.url()));
        if let Some(s) = secret {
            rb = rb.header("x-tyk-authorization", s);
        }
        let resp = rb.send().await.unwrap();
        assert_eq!(resp.status(), 403);
        assert_eq!(resp.headers()["content-type"], "application/json");
        assert_eq!(resp.bytes().await.unwrap().as_ref(), FORBIDDEN);
    }
    // Auth is checked before the method.
    let resp = http
        .patch(format!("{}/tyk/keys/{}", gw.url(), keys::PORTAL))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    gw.shutdown().await;
}

#[tokio::test]
async fn lists_keys_with_org_filter() {
    let gw = DemoGateway::start(opts(false)).await.unwrap();
    let c = Client::new(&gw);
    let v = c.get_json("/tyk/keys").await;
    let all: Vec<&str> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(all.len() >= 30, "{}", all.len());
    assert_eq!(all.len(), gw.key_count());
    for k in [keys::PORTAL, keys::BASE64, keys::UNLIMITED, keys::PER_API] {
        assert!(all.contains(&k), "{k}");
    }
    // Trailing slash ignored.
    assert_eq!(c.get_json("/tyk/keys/").await, v);

    let acme = c.get_json(&format!("/tyk/keys?filter={ORG_ACME}")).await;
    let acme: Vec<&str> = acme["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(
        acme.contains(&keys::BASE64),
        "base64 keys of the org match the filter"
    );
    assert!(
        acme.iter()
            .all(|k| k.starts_with(ORG_ACME) || k.starts_with("eyJ"))
    );
    let globex = c.get_json(&format!("/tyk/keys?filter={ORG_GLOBEX}")).await;
    let globex = globex["keys"].as_array().unwrap();
    assert!(!globex.is_empty());
    assert!(
        globex
            .iter()
            .all(|k| k.as_str().unwrap().starts_with(ORG_GLOBEX))
    );
    let none = c
        .get_json("/tyk/keys?filter=ffffffffffffffffffffffff")
        .await;
    assert_eq!(none, serde_json::json!({"keys": []}));
    gw.shutdown().await;
}

#[tokio::test]
async fn key_detail_is_the_v5_8_shape() {
    let gw = DemoGateway::start(opts(false)).await.unwrap();
    let c = Client::new(&gw);
    let (status, body) = c.get(&format!("/tyk/keys/{}", keys::PORTAL)).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.starts_with(r#"{"last_check":0,"allowance":100,"rate":100,"per":60,"throttle_interval":0,"throttle_retry_limit":0,"max_query_depth":0,"date_created":""#),
        "{text}"
    );
    assert!(
        text.contains(r#","quota_max":1000,"quota_renews":"#),
        "{text}"
    );
    assert!(text.contains(r#","quota_remaining":150,"quota_renewal_rate":3600,"access_rights":{"b84fe1a04e5648927971c0557971565c":{"api_name":"Orders API","api_id":"b84fe1a04e5648927971c0557971565c","versions":["Default"],"allowed_urls":[],"restricted_types":null,"allowed_types":null,"limit":{"rate":100,"per":60,"throttle_interval":0,"throttle_retry_limit":0,"max_query_depth":0,"quota_max":1000,"quota_renews":"#), "{text}");
    assert!(text.contains(r#""org_id":"5e9d9544a1dcd60001d0ed20","oauth_client_id":"","oauth_keys":null,"certificate":"","basic_auth_data":{"password":"","hash_type":""},"jwt_data":{"secret":""},"hmac_enabled":false,"enable_http_signature_validation":false,"hmac_string":"","rsa_certificate_id":"","is_inactive":false,"apply_policy_id":"","apply_policies":["5ead7120575961000181867e"],"data_expires":0,"monitor":{"trigger_limits":[90,75,50]},"enable_detail_recording":false,"enable_detailed_recording":false,"meta_data":{"tyk_developer_id":"62b3fb9a1d5e4f00017226f5"},"tags":["edge"],"alias":"portal-key","last_updated":""#), "{text}");
    assert!(
        text.ends_with(
            "\",\"id_extractor_deadline\":0,\"session_lifetime\":0,\"smoothing\":null}\n"
        ),
        "{text}"
    );

    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["last_updated"].is_string());
    assert_eq!(v["quota_remaining"], 150);
    assert_eq!(
        v["access_rights"][API_ORDERS]["limit"]["quota_remaining"],
        150
    );
    assert_eq!(
        v["quota_renews"],
        v["access_rights"][API_ORDERS]["limit"]["quota_renews"]
    );
    assert!(v["quota_renews"].as_i64().unwrap() > now());

    // Per-API limits with their own counters; scope = API id.
    let k = c.key(keys::PER_API).await;
    assert_eq!(k["alias"], "café-ünïcode");
    let orders = &k["access_rights"][API_ORDERS];
    assert_eq!(orders["allowance_scope"], API_ORDERS);
    assert_eq!(orders["limit"]["quota_max"], 2000);
    assert_eq!(orders["limit"]["quota_remaining"], 800);
    assert_eq!(k["meta_data"]["developer_email"], "zoe.muller@acme.example");

    // Go's HTML escaping in strings.
    let (_, body) = c.get(&format!("/tyk/keys/{}", keys::HTML_ALIAS)).await;
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains(r#""alias":"\u003cb\u003eBold \u0026 Co\u003c/b\u003e""#),
        "{text}"
    );
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["alias"], "<b>Bold & Co</b>");

    // Unlimited key: quota_remaining not recomputed; empty per-API limits; `{}`/`[]` after GET.
    let u = c.key(keys::UNLIMITED).await;
    assert_eq!(u["quota_max"], -1);
    assert_eq!(u["monitor"]["trigger_limits"], serde_json::json!([80]));
    assert_eq!(u["meta_data"], serde_json::json!({}));
    assert_eq!(u["tags"], serde_json::json!([]));
    assert_eq!(u["access_rights"][API_ORDERS]["limit"]["quota_max"], 0);

    let e = c.key(keys::EXPIRED).await;
    assert!(e["expires"].as_i64().unwrap() < now());
    assert_eq!(c.key(keys::INACTIVE).await["is_inactive"], true);
    assert_eq!(c.key(keys::NO_QUOTA).await["quota_max"], 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn base64_key_reachable_through_percent_encoded_path() {
    let gw = DemoGateway::start(opts(false)).await.unwrap();
    let c = Client::new(&gw);
    assert!(
        keys::BASE64.contains('+') && keys::BASE64.contains('/') && keys::BASE64.ends_with("==")
    );
    let encoded = enc(keys::BASE64);
    assert!(encoded.contains("%2F") && encoded.contains("%2B") && encoded.contains("%3D"));
    let v = c.get_json(&format!("/tyk/keys/{encoded}")).await;
    assert_eq!(v["alias"], "partner-v2");
    assert_eq!(v["org_id"], ORG_ACME);
    // Only `/` encoded (what a minimal client does) and with a trailing slash.
    let slash_only = keys::BASE64.replace('/', "%2F");
    assert_eq!(c.get_json(&format!("/tyk/keys/{slash_only}/")).await, v);
    gw.shutdown().await;
}

#[tokio::test]
async fn org_list_and_org_session() {
    let gw = DemoGateway::start(opts(false)).await.unwrap();
    let c = Client::new(&gw);
    let v = c.get_json("/tyk/org/keys").await;
    let mut orgs: Vec<&str> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    orgs.sort_unstable();
    let mut want = vec![ORG_ACME, ORG_GLOBEX, ORG_INITECH];
    want.sort_unstable();
    assert_eq!(orgs, want);

    let (status, body) = c.get(&format!("/tyk/org/keys/{ORG_ACME}/")).await;
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with(r#"{"last_check":0,"allowance":0,"rate":0,"per":0,"throttle_interval":0,"throttle_retry_limit":0,"max_query_depth":0,"date_created":"0001-01-01T00:00:00Z","expires":0,"quota_max":"#), "{text}");
    assert!(text.contains(r#""access_rights":null,"org_id":"5e9d9544a1dcd60001d0ed20""#));
    assert!(text.contains(r#""monitor":{"trigger_limits":[95,80,60]}"#));
    assert!(text.contains(r#""meta_data":null,"tags":null,"alias":"","last_updated":""#));
    assert!(
        text.ends_with(
            "\",\"id_extractor_deadline\":0,\"session_lifetime\":0,\"smoothing\":null}\n"
        )
    );
    let o: Value = serde_json::from_str(&text).unwrap();
    let max = o["quota_max"].as_i64().unwrap();
    let rem = o["quota_remaining"].as_i64().unwrap();
    assert!(max > 0 && rem > 0 && rem < max);
    gw.shutdown().await;
}

#[tokio::test]
async fn not_found_and_method_not_supported_bodies() {
    let gw = DemoGateway::start(opts(false)).await.unwrap();
    let c = Client::new(&gw);
    let (s, b) = c.get("/tyk/keys/does-not-exist").await;
    assert_eq!(s, 404);
    assert_eq!(b, b"{\"status\":\"error\",\"message\":\"Key not found\"}\n");
    let (s, b) = c.get("/tyk/org/keys/000000000000000000000000").await;
    assert_eq!(s, 404);
    assert_eq!(b, b"{\"status\":\"error\",\"message\":\"Org not found\"}\n");

    let not_supported = b"{\"status\":\"error\",\"message\":\"Method not supported\"}\n";
    for (method, path) in [
        (
            reqwest::Method::PATCH,
            format!("/tyk/keys/{}", keys::PORTAL),
        ),
        (reqwest::Method::DELETE, "/tyk/keys".to_string()),
        (reqwest::Method::PUT, "/tyk/org/keys".to_string()),
    ] {
        let (s, ct, b) = c.req(method, &path, None).await;
        assert_eq!(s, 405, "{path}");
        assert_eq!(ct, "application/json");
        assert_eq!(b, not_supported);
    }
    // PUT of an unknown key.
    let (s, _, b) = c
        .req(reqwest::Method::PUT, "/tyk/keys/nope", Some("{}".into()))
        .await;
    assert_eq!(s, 404);
    assert_eq!(
        b,
        b"{\"status\":\"error\",\"message\":\"Key is not found\"}\n"
    );
    // Malformed body.
    let (s, _, b) = c
        .req(
            reqwest::Method::PUT,
            &format!("/tyk/keys/{}", keys::PORTAL),
            Some("{not json".into()),
        )
        .await;
    assert_eq!(s, 400);
    assert_eq!(
        b,
        b"{\"status\":\"error\",\"message\":\"Request malformed\"}\n"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn put_with_suppress_reset_keeps_the_counter() {
    let gw = DemoGateway::start(opts(false)).await.unwrap();
    let c = Client::new(&gw);
    let path = format!("/tyk/keys/{}", keys::PORTAL);
    let mut before = c.get_json(&path).await;
    assert_eq!(before["quota_remaining"], 150);
    let renews = before["quota_renews"].clone();
    before["monitor"]["trigger_limits"] = serde_json::json!([95, 80]);

    let (s, ct, b) = c
        .req(
            reqwest::Method::PUT,
            &format!("{path}?suppress_reset=1"),
            Some(before.to_string()),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(ct, "application/json");
    assert_eq!(
        String::from_utf8(b).unwrap(),
        format!(
            "{{\"key\":\"{}\",\"status\":\"ok\",\"action\":\"modified\"}}\n",
            keys::PORTAL
        )
    );
    let after = c.get_json(&path).await;
    assert_eq!(after["quota_remaining"], 150);
    assert_eq!(after["quota_renews"], renews);
    assert_eq!(
        after["monitor"]["trigger_limits"],
        serde_json::json!([95, 80])
    );
    assert_eq!(after["last_updated"], before["last_updated"]);
    assert_eq!(after["date_created"], before["date_created"]);

    // Without suppress_reset: counters reset, new window from now.
    let t0 = now();
    let (s, _, _) = c
        .req(reqwest::Method::PUT, &path, Some(after.to_string()))
        .await;
    assert_eq!(s, 200);
    let reset = c.get_json(&path).await;
    assert_eq!(reset["quota_remaining"], 1000);
    let renews = reset["quota_renews"].as_i64().unwrap();
    assert!((t0 + 3600..=now() + 3600).contains(&renews), "{renews}");
    let lu: i64 = reset["last_updated"].as_str().unwrap().parse().unwrap();
    assert!(lu >= t0);
    gw.shutdown().await;
}

#[tokio::test]
async fn simulated_traffic_moves_quotas() {
    let gw = DemoGateway::start(DemoOptions {
        speed: 40.0,
        ..DemoOptions::default()
    })
    .await
    .unwrap();
    let c = Client::new(&gw);
    let key0 = c.key(keys::EXHAUSTING).await["quota_remaining"]
        .as_i64()
        .unwrap();
    let org_path = format!("/tyk/org/keys/{ORG_ACME}");
    let org0 = c.get_json(&org_path).await["quota_remaining"]
        .as_i64()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let key1 = c.key(keys::EXHAUSTING).await["quota_remaining"]
        .as_i64()
        .unwrap();
    let org1 = c.get_json(&org_path).await["quota_remaining"]
        .as_i64()
        .unwrap();
    assert!(key1 < key0, "{key0} -> {key1}");
    assert!(org1 < org0, "{org0} -> {org1}");
    // The inactive and the expired key never consume.
    assert_eq!(c.key(keys::INACTIVE).await["quota_remaining"], 700);
    assert_eq!(c.key(keys::EXPIRED).await["quota_remaining"], 0);
    gw.shutdown().await;
}

#[tokio::test]
async fn quota_renews_lazily_on_the_next_request() {
    let gw = DemoGateway::start(opts(false)).await.unwrap();
    let c = Client::new(&gw);
    let idle = c.key(keys::IDLE_PAST_RENEWS).await;
    assert!(
        idle["quota_renews"].as_i64().unwrap() < now(),
        "past window, idle key"
    );
    assert_eq!(idle["quota_remaining"], 600);
    // Nothing happens on its own (no renewal on GET).
    assert_eq!(c.key(keys::IDLE_PAST_RENEWS).await, idle);

    let t0 = now();
    gw.consume(keys::IDLE_PAST_RENEWS, None, 1);
    let renewed = c.key(keys::IDLE_PAST_RENEWS).await;
    assert_eq!(renewed["quota_remaining"], 999);
    let renews = renewed["quota_renews"].as_i64().unwrap();
    assert!((t0 + 3600..=now() + 3600).contains(&renews), "{renews}");

    // A live window does not renew; an exhausted quota blocks.
    gw.consume(keys::PORTAL, Some(API_ORDERS), 10_000);
    let p = c.key(keys::PORTAL).await;
    assert_eq!(p["quota_remaining"], 0);
    assert_eq!(
        p["access_rights"][API_ORDERS]["limit"]["quota_remaining"],
        0
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn delete_hook_and_route() {
    let gw = DemoGateway::start(opts(false)).await.unwrap();
    let c = Client::new(&gw);
    let n = gw.key_count();
    assert!(gw.delete_key(keys::WAKING));
    assert!(!gw.delete_key(keys::WAKING));
    assert_eq!(gw.key_count(), n - 1);
    let (s, _) = c.get(&format!("/tyk/keys/{}", keys::WAKING)).await;
    assert_eq!(s, 404);
    let (s, _, b) = c
        .req(
            reqwest::Method::DELETE,
            &format!("/tyk/keys/{}", enc(keys::BASE64)),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        String::from_utf8(b).unwrap(),
        format!(
            "{{\"key\":\"{}\",\"status\":\"ok\",\"action\":\"deleted\"}}\n",
            keys::BASE64
        )
    );
    assert_eq!(gw.key_count(), n - 2);
    gw.shutdown().await;
}

#[tokio::test]
async fn ten_thousand_extra_keys_list_and_sweep() {
    let gw = DemoGateway::start(DemoOptions {
        extra_keys: 10_000,
        ..DemoOptions::default()
    })
    .await
    .unwrap();
    let c = Client::new(&gw);
    let v = c.get_json("/tyk/keys").await;
    let ids: Vec<String> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    assert!(ids.len() > 10_000, "{}", ids.len());
    assert_eq!(ids.len(), gw.key_count());

    // Sweep every key with 16 requests in flight, like the poller/benchmark.
    let started = Instant::now();
    let c = &c;
    let ok = futures_util::stream::iter(ids.iter())
        .map(|id| async move {
            let path = format!("{}/tyk/keys/{}", c.base, enc(id));
            let resp = c
                .http
                .get(path)
                .header("x-tyk-authorization", &c.secret)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            let body = resp.bytes().await.unwrap();
            status == 200 && body.ends_with(b"}\n")
        })
        .buffer_unordered(16)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    assert_eq!(ok, ids.len());
    eprintln!("swept {} keys in {:?}", ids.len(), started.elapsed());
    gw.shutdown().await;
}
