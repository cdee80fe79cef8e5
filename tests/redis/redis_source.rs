//! The Redis quota source against real `redis-server`s (a single server and a 3-master
//! cluster), loaded with the state Tyk writes: every session shape, hashing function, per-API
//! scope, org quotas, and the noise Tyk keeps beside them.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use crate::common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::binary::Env;
use common::redis::{RedisCluster, RedisSentinel, RedisServer, tls_fixture};
use tykwatch::clock::{Clock, SystemClock};
use tykwatch::config::StorageConfig;
use tykwatch::quota::poller::SweepOutcome;
use tykwatch::quota::redis::RedisSource;
use tykwatch::quota::{QuotaId, Sample};
use tykwatch::tyk::redis::RedisSettings;

const ORG: &str = "5e9d9544a1dcd60001d0ed20";
const API: &str = "a1b2c3d4e5f60718293a4b5c6d7e8f90";
const PLAIN: &str = "5e9d9544a1dcd60001d0ed208c0b3a2e6f1d4c7a9b5e2d1f0a3c4b5d";
const M32_TOKEN: &str = "5e9d9544a1dcd60001d0ed20c1a2b3c4d5e64f708192a3b4c5d6e7f8";
const M32: &str = "45a0a4f9";
const M64: &str = "c78cdedcb3a706c0";
const PERAPI: &str = "f160ead4";
const V58: &str = "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d";

fn now() -> i64 {
    SystemClock.now_ms() / 1000
}

/// Runs a write through whatever cli the test has (a server or a cluster).
type Cli<'a> = &'a dyn Fn(&[&str]) -> String;

fn counter(cli: Cli, name: &str, used: i64, left_secs: Option<i64>) {
    match left_secs {
        Some(s) => assert_eq!(cli(&["SET", name, "0", "EX", &s.to_string()]), "OK"),
        None => assert_eq!(cli(&["SET", name, "0"]), "OK"),
    }
    cli(&["INCRBY", name, &used.to_string()]);
}

/// The "Test data" of Tyk's Redis layout (sessions as Tyk ≥ 5.12 writes them, one ≤ 5.11
/// session with every field), plus unlimited, never-renewing and broken entries and noise.
fn load_fixture(cli: Cli) {
    let t = now();
    let set = |k: &str, v: &str| assert_eq!(cli(&["SET", k, v]), "OK", "SET {k}");
    set(
        &format!("apikey-{PLAIN}"),
        &format!(
            r#"{{"rate":100,"per":60,"quota_max":1000,"quota_renews":{},"quota_remaining":583,"quota_renewal_rate":3600,"access_rights":{{"{API}":{{"api_name":"orders","api_id":"{API}","versions":["Default"]}}}},"org_id":"{ORG}","alias":"plain-1"}}"#,
            t + 2400
        ),
    );
    counter(cli, &format!("quota-{PLAIN}"), 420, Some(2400));
    set(
        &format!("apikey-{M32}"),
        &format!(
            r#"{{"quota_max":5000,"quota_renewal_rate":86400,"org_id":"{ORG}","alias":"m32-1","monitor":{{"trigger_limits":[80,50]}}}}"#
        ),
    );
    counter(cli, &format!("quota-{M32}"), 1234, Some(50_000));
    set(
        &format!("apikey-{M64}"),
        &format!(
            r#"{{"quota_max":100,"quota_renewal_rate":3600,"quota_remaining":0,"org_id":"{ORG}","alias":"m64-1"}}"#
        ),
    );
    counter(cli, &format!("quota-{M64}"), 130, Some(600));
    set(
        &format!("apikey-{PERAPI}"),
        &format!(
            r#"{{"quota_max":1000,"quota_renewal_rate":86400,"access_rights":{{"{API}":{{"api_id":"{API}","versions":["Default"],"limit":{{"rate":10,"per":1,"quota_max":500,"quota_renews":{},"quota_remaining":380,"quota_renewal_rate":3600}},"allowance_scope":"{API}"}}}},"org_id":"{ORG}","alias":"perapi-1"}}"#,
            t + 1800
        ),
    );
    counter(cli, &format!("quota-{API}-{PERAPI}"), 120, Some(1800));
    // A ≤ 5.11 session (every field present), stored unhashed; its per-API limit has no scope
    // but the key has a policy, so both share `quota-<key>`.
    let v58 = std::fs::read_to_string("tests/fixtures/session_v5_8.json").expect("fixture");
    set(&format!("apikey-{V58}"), v58.trim());
    counter(cli, &format!("quota-{V58}"), 900, Some(1000));
    // Unlimited: no counter at all.
    let unlimited =
        std::fs::read_to_string("tests/fixtures/session_unlimited.json").expect("fixture");
    set("apikey-0badc0de", unlimited.trim());
    // A quota that never renews (renewal rate 0: Tyk's INCR without TTL).
    set(
        "apikey-1234abcd",
        r#"{"quota_max":50,"quota_renewal_rate":0,"alias":"forever"}"#,
    );
    counter(cli, "quota-1234abcd", 10, None);
    // Org quota (hashed counter: murmur32 of the org id).
    set(
        &format!("orgkey.{ORG}"),
        &format!(
            r#"{{"quota_max":100000,"quota_renewal_rate":86400,"quota_renews":{},"quota_remaining":98977,"org_id":"{ORG}"}}"#,
            t + 28383
        ),
    );
    counter(cli, "quota-ab5c6ee9", 1030, Some(28383));
    // Not a session: an item error, the rest is read.
    set("apikey-deadbeef", "this is not json");
    // Noise Tyk keeps next to sessions and counters.
    cli(&["ZADD", "rate-limit-f160ead4", "1", "1"]);
    cli(&["EXPIRE", "rate-limit-f160ead4", "60"]);
    assert_eq!(
        cli(&["SET", "rate-limit-f160ead4.BLOCKED", "1", "EX", "60"]),
        "OK"
    );
    assert_eq!(
        cli(&["SET", "quota-45a0a4f9-lock", "r4nd", "PX", "8000"]),
        "OK"
    );
    set("apikey-quota-x", "{}");
    set("webhook.cache.d647313307e86109c7c093565db0bcf0", "1");
}

fn settings(addrs: Vec<String>, cluster: bool) -> RedisSettings {
    let cfg = StorageConfig {
        addrs,
        enable_cluster: cluster,
        timeout: Duration::from_secs(2),
        ..StorageConfig::default()
    };
    RedisSettings::from_config(&cfg, None)
}

fn sample<'a>(out: &'a SweepOutcome, id: &QuotaId) -> &'a Sample {
    out.samples
        .iter()
        .find(|s| &s.id == id)
        .unwrap_or_else(|| panic!("no sample for {id:?} in {:#?}", ids(out)))
}

fn ids(out: &SweepOutcome) -> Vec<String> {
    out.samples.iter().map(|s| format!("{:?}", s.id)).collect()
}

fn key(k: &str) -> QuotaId {
    QuotaId::Key(k.into())
}

fn near(a: i64, b: i64) -> bool {
    (a - b).abs() <= 2
}

/// What every topology must show for the fixture.
fn check_fixture(out: &SweepOutcome) {
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(out.complete);
    let t = now();
    let plain = sample(out, &key(PLAIN));
    assert_eq!(plain.quota_remaining, 580, "live, not the stored 583");
    assert!(near(plain.quota_renews, t + 2400), "{}", plain.quota_renews);
    assert!(!plain.meta.hashed);
    assert_eq!(plain.meta.masked(), "5e9d…4b5d");

    let m32 = sample(out, &key(M32));
    assert_eq!(m32.quota_remaining, 3766);
    assert!(near(m32.quota_renews, t + 50_000));
    assert!(
        m32.meta.hashed && m32.meta.masked() == M32,
        "{:?}",
        m32.meta.masked()
    );
    assert_eq!(*m32.meta.trigger_limits, [80.0, 50.0]);

    let m64 = sample(out, &key(M64));
    assert_eq!(m64.quota_remaining, 0, "130 used of 100: floored at 0");
    assert!(near(m64.quota_renews, t + 600));

    let api = sample(out, &QuotaId::KeyApi(PERAPI.into(), API.into()));
    assert_eq!((api.quota_max, api.quota_remaining), (500, 380));
    assert!(near(api.quota_renews, t + 1800));
    let session_level = sample(out, &key(PERAPI));
    assert_eq!(
        session_level.quota_remaining, 1000,
        "no quota-f160ead4: a fresh window"
    );

    let v58 = sample(out, &key(V58));
    assert_eq!(v58.quota_remaining, 100);
    assert!(near(v58.quota_renews, t + 1000));

    let unlimited = sample(out, &key("0badc0de"));
    assert_eq!(unlimited.quota_max, -1);
    let forever = sample(out, &key("1234abcd"));
    assert_eq!(forever.quota_remaining, 40);

    let org = sample(out, &QuotaId::Org(ORG.into()));
    assert_eq!(org.quota_remaining, 100_000 - 1030);
    assert!(near(org.quota_renews, t + 28383));

    // Noise never becomes a quota; the broken session is one item error.
    let keys: BTreeSet<String> = out
        .samples
        .iter()
        .filter_map(|s| s.id.key().map(str::to_string))
        .collect();
    let expected: BTreeSet<String> = [PLAIN, M32, M64, PERAPI, V58, "0badc0de", "1234abcd"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(keys, expected);
    assert_eq!(out.item_errors.len(), 1, "{:?}", out.item_errors);
    let e = out.item_errors[0].to_string();
    assert!(
        e.contains("deadbeef") && e.contains("not a Tyk session"),
        "{e}"
    );
}

/// Commands the server executed, from `INFO commandstats`.
fn commands(srv: &RedisServer) -> BTreeSet<String> {
    srv.cli(&["INFO", "commandstats"])
        .lines()
        .filter_map(|l| l.strip_prefix("cmdstat_"))
        .filter_map(|l| l.split(':').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_shape_from_a_single_server_and_nothing_written() {
    let srv = RedisServer::start();
    let cli = |a: &[&str]| srv.cli(a);
    load_fixture(&cli);
    let digest_before = srv.cli(&["DBSIZE"]);
    srv.cli(&["CONFIG", "RESETSTAT"]);

    let mut source = RedisSource::new(settings(vec![srv.addr()], false), None, None);
    let out = source.sweep(&SystemClock).await;
    check_fixture(&out);
    assert!(out.requests <= 6, "round trips: {}", out.requests);
    check_read_only(&srv);

    // Counters are live: the next sweep sees a request made in between, without a re-read of
    // the sessions.
    srv.cli(&["INCRBY", &format!("quota-{M32}"), "6"]);
    srv.cli(&["CONFIG", "RESETSTAT"]);
    let out = source.sweep(&SystemClock).await;
    assert_eq!(sample(&out, &key(M32)).quota_remaining, 3760);

    // The window renews (Tyk: the counter expires, the next request sets it anew): the new
    // window end is read, though the steady sweeps no longer ask for PTTLs.
    let before = sample(&out, &key(M64)).quota_renews;
    srv.cli(&["SET", &format!("quota-{M64}"), "0", "EX", "3600"]);
    srv.cli(&["INCRBY", &format!("quota-{M64}"), "1"]);
    srv.cli(&["CONFIG", "RESETSTAT"]);
    let out = source.sweep(&SystemClock).await;
    let m64 = sample(&out, &key(M64));
    assert_eq!(m64.quota_remaining, 99);
    assert!(near(m64.quota_renews, now() + 3600) && m64.quota_renews != before);

    // The push path with the raw token finds the hashed session.
    let one = source.poll_key(M32_TOKEN, &SystemClock).await;
    assert!(!one.complete);
    assert_eq!(one.samples.len(), 1, "{:?}", one.item_errors);
    assert_eq!(one.samples[0].id, key(M32));

    // Read-only: only reading commands ran, and the key space is as it was.
    check_read_only(&srv);
    assert_eq!(srv.cli(&["DBSIZE"]), digest_before);
}

fn check_read_only(srv: &RedisServer) {
    let ran = commands(srv);
    let allowed: BTreeSet<&str> = [
        "scan",
        "mget",
        "get",
        "pttl",
        "info",
        "ping",
        "client|setinfo",
        "config|resetstat",
        "subscribe",
        "hello",
    ]
    .into_iter()
    .collect();
    for c in &ran {
        assert!(
            allowed.contains(c.as_str()),
            "tykwatch sent {c} (all: {ran:?})"
        );
    }
    assert!(ran.contains("mget"), "{ran:?}");
}

#[tokio::test]
async fn the_same_from_a_three_master_cluster() {
    let cluster = RedisCluster::start(3);
    let cli = |a: &[&str]| cluster.cli(a);
    load_fixture(&cli);
    let mut source = RedisSource::new(settings(cluster.addrs()[..1].to_vec(), true), None, None);
    let out = source.sweep(&SystemClock).await;
    check_fixture(&out);
    // Keys are spread over the masters: every one was scanned.
    for node in cluster.nodes() {
        let n: usize = node.cli(&["DBSIZE"]).trim().parse().expect("dbsize");
        assert!(n > 0, "every master holds some keys");
    }
    let one = source.poll_key(M32_TOKEN, &SystemClock).await;
    assert_eq!(one.samples.len(), 1, "{:?}", one.item_errors);
}

#[tokio::test]
async fn new_changed_and_removed_sessions_are_picked_up() {
    let srv = RedisServer::start();
    let cli = |a: &[&str]| srv.cli(a);
    load_fixture(&cli);
    let cfg = StorageConfig {
        addrs: vec![srv.addr()],
        session_refresh: Duration::from_secs(1),
        ..StorageConfig::default()
    };
    let mut source = RedisSource::new(RedisSettings::from_config(&cfg, None), None, Some(true));
    let first = source.sweep(&SystemClock).await;
    assert!(first.error.is_none());
    let n = source.cached_sessions();

    srv.cli(&[
        "SET",
        "apikey-aaaabbbb",
        r#"{"quota_max":10,"quota_renewal_rate":60}"#,
    ]);
    srv.cli(&["DEL", &format!("apikey-{M64}")]);
    // Within one refresh period (the pass runs over the following sweeps).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let mut out = source.sweep(&SystemClock).await;
    for _ in 0..5 {
        if source.cached_sessions() == n {
            break;
        }
        out = source.sweep(&SystemClock).await;
    }
    assert!(out.samples.iter().any(|s| s.id == key("aaaabbbb")));
    assert!(!out.samples.iter().any(|s| s.id == key(M64)));
    assert_eq!(source.cached_sessions(), n, "one in, one out");
}

#[tokio::test]
async fn a_notification_shows_a_changed_key_before_the_next_sweep() {
    let srv = RedisServer::start();
    let cli = |a: &[&str]| srv.cli(a);
    load_fixture(&cli);
    let mut source = RedisSource::new(settings(vec![srv.addr()], false), None, Some(true));
    let out = source.sweep(&SystemClock).await;
    assert_eq!(sample(&out, &key(M32)).quota_max, 5000);
    // Wait for the subscription, then change the session as the Dashboard would.
    let mut subscribed = false;
    for _ in 0..50 {
        if srv
            .cli(&["PUBSUB", "NUMSUB", "tyk.cluster.notifications"])
            .ends_with('1')
        {
            subscribed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        subscribed,
        "tykwatch subscribes to tyk.cluster.notifications"
    );
    srv.cli(&[
        "SET",
        &format!("apikey-{M32}"),
        r#"{"quota_max":2000,"quota_renewal_rate":86400,"alias":"m32-1"}"#,
    ]);
    srv.cli(&[
        "PUBLISH",
        "tyk.cluster.notifications",
        &format!(r#"{{"command":"KeySpaceUpdateNotification","payload":"{M32}","signature":"","algorithm":5}}"#),
    ]);
    let changed = tokio::time::timeout(Duration::from_secs(3), source.changed())
        .await
        .expect("the change arrives within the batching delay");
    assert_eq!(changed, vec![M32.to_string()]);
    let out = source.poll_suffixes(changed, &SystemClock).await;
    let s = sample(&out, &key(M32));
    assert_eq!((s.quota_max, s.quota_remaining), (2000, 2000 - 1234));
}

#[tokio::test]
async fn redis_down_then_back_keeps_going() {
    let mut srv = RedisServer::start();
    srv.cli(&[
        "SET",
        "apikey-aaaabbbb",
        r#"{"quota_max":10,"quota_renewal_rate":60}"#,
    ]);
    let mut source = RedisSource::new(settings(vec![srv.addr()], false), None, Some(true));
    assert!(source.sweep(&SystemClock).await.error.is_none());
    srv.kill();
    let out = source.sweep(&SystemClock).await;
    let e = out.error.expect("an outage").to_string();
    assert!(e.contains(&srv.addr()) && e.contains("Redis"), "{e}");
    assert!(!out.complete && out.samples.is_empty());
    srv.restart();
    srv.cli(&[
        "SET",
        "apikey-aaaabbbb",
        r#"{"quota_max":10,"quota_renewal_rate":60}"#,
    ]);
    srv.cli(&["SET", "quota-aaaabbbb", "4", "EX", "60"]);
    let out = source.sweep(&SystemClock).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(sample(&out, &key("aaaabbbb")).quota_remaining, 6);
}

#[tokio::test]
async fn wrong_password_and_a_changed_password_say_so() {
    let mut srv = RedisServer::start_with(&["--requirepass", "right"]);
    let mut cfg = StorageConfig {
        addrs: vec![srv.addr()],
        password: "wrong".into(),
        ..StorageConfig::default()
    };
    let mut source = RedisSource::new(RedisSettings::from_config(&cfg, None), None, None);
    let e = source
        .sweep(&SystemClock)
        .await
        .error
        .expect("refused")
        .to_string();
    assert!(e.contains("password") && !e.contains("wrong"), "{e}");

    cfg.password = "right".into();
    let mut source = RedisSource::new(RedisSettings::from_config(&cfg, None), None, None);
    assert!(source.sweep(&SystemClock).await.error.is_none());
    // The password is rotated and the server restarted: the next sweeps say why they fail.
    srv.set_password("rotated");
    srv.restart();

    let mut failed = None;
    for _ in 0..3 {
        let o = source.sweep(&SystemClock).await;
        if let Some(e) = o.error.filter(|e| !e.to_string().contains("cannot reach")) {
            failed = Some(e.to_string());
            break;
        }
    }
    let e = failed.expect("the rotated password is refused");
    assert!(e.contains("password") || e.contains("credentials"), "{e}");
}

#[tokio::test]
async fn wrong_topology_and_wrong_database_say_what_to_set() {
    let srv = RedisServer::start();
    srv.cli(&[
        "SET",
        "apikey-aaaabbbb",
        r#"{"quota_max":10,"quota_renewal_rate":60}"#,
    ]);
    let mut source = RedisSource::new(settings(vec![srv.addr()], true), None, None);
    let e = source
        .sweep(&SystemClock)
        .await
        .error
        .expect("not a cluster")
        .to_string();
    assert!(
        e.contains("not a Redis Cluster") && e.contains("enable_cluster"),
        "{e}"
    );

    let cfg = StorageConfig {
        addrs: vec![srv.addr()],
        database: 3,
        ..StorageConfig::default()
    };
    let mut source = RedisSource::new(RedisSettings::from_config(&cfg, None), None, None);
    let out = source.sweep(&SystemClock).await;
    let msg: Vec<String> = out.item_errors.iter().map(ToString::to_string).collect();
    assert!(
        msg.iter()
            .any(|m| m.contains("database 3") && m.contains("db0")),
        "{msg:?}"
    );

    let cluster = RedisCluster::start(3);
    let mut source = RedisSource::new(settings(cluster.addrs()[..1].to_vec(), false), None, None);
    let e = source
        .sweep(&SystemClock)
        .await
        .error
        .expect("a cluster")
        .to_string();
    assert!(e.contains("enable_cluster = true"), "{e}");
}

#[tokio::test]
async fn a_ten_megabyte_value_is_read_without_trouble() {
    let srv = RedisServer::start();
    srv.cli(&[
        "SET",
        "apikey-aaaabbbb",
        r#"{"quota_max":10,"quota_renewal_rate":60}"#,
    ]);
    let big = format!(
        r#"{{"quota_max":10,"quota_renewal_rate":60,"meta_data":{{"blob":"{}"}}}}"#,
        "x".repeat(10 * 1024 * 1024)
    );
    // A single argument is limited to 128 KiB on Linux: the value goes through stdin (-x).
    let set_from_file = |name: &str, value: &str| {
        let path = srv.dir().join("value");
        std::fs::write(&path, value).expect("write");
        let out = std::process::Command::new("redis-cli")
            .args(["-p", &srv.port().to_string(), "-x", "SET", name])
            .stdin(std::fs::File::open(&path).expect("open"))
            .output()
            .expect("redis-cli");
        assert!(out.status.success(), "{out:?}");
    };
    set_from_file("apikey-bbbbcccc", &big);
    set_from_file("apikey-ccccdddd", &"y".repeat(10 * 1024 * 1024));
    let mut source = RedisSource::new(settings(vec![srv.addr()], false), None, Some(true));
    let out = source.sweep(&SystemClock).await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert!(out.samples.iter().any(|s| s.id == key("bbbbcccc")));
    assert!(out.samples.iter().any(|s| s.id == key("aaaabbbb")));
    assert_eq!(out.item_errors.len(), 1, "the 10 MB non-JSON value");
}

/// The real binary: `tykwatch snapshot` with `[gateway.storage]` and no REST URL.
/// One sweep over TLS at `addr` with `[gateway.storage] use_ssl` and what `f` sets.
async fn tls_sweep(addr: String, f: impl FnOnce(&mut StorageConfig)) -> SweepOutcome {
    let mut cfg = StorageConfig {
        addrs: vec![addr],
        use_ssl: true,
        timeout: Duration::from_secs(2),
        ..StorageConfig::default()
    };
    f(&mut cfg);
    let mut source = RedisSource::new(RedisSettings::from_config(&cfg, None), None, None);
    source.sweep(&SystemClock).await
}

/// The error of a sweep that must fail, as text.
fn error_text(out: SweepOutcome, why: &str) -> String {
    out.error.expect(why).to_string()
}

#[tokio::test]
async fn tls_verifies_the_server_and_presents_a_client_certificate() {
    let srv = RedisServer::start_tls(false);
    let cli = |a: &[&str]| srv.cli(a);
    load_fixture(&cli);

    // Verified against the CA of ca_file: every shape, as over plain TCP.
    let ca = Some(tls_fixture("ca.pem"));
    check_fixture(&tls_sweep(srv.tls_addr(), |c| c.ca_file = ca.clone()).await);

    // Verification stays on: the system roots do not know the test CA.
    let e = error_text(tls_sweep(srv.tls_addr(), |_| {}).await, "an untrusted CA");
    assert!(e.contains(&srv.tls_addr()), "{e}");
    assert!(e.contains("certificate") && e.contains("ca_file"), "{e}");
    // …unless ssl_insecure_skip_verify says otherwise (tyk.conf's name).
    check_fixture(&tls_sweep(srv.tls_addr(), |c| c.ssl_insecure_skip_verify = true).await);
    // TLS spoken to a plain port is an error too, not a hang.
    let out = tls_sweep(srv.addr(), |c| c.ca_file = ca.clone()).await;
    let e = error_text(out, "TLS to a plain port");
    assert!(e.contains("use_ssl"), "{e}");

    // Mutual TLS: without cert_file / key_file the server refuses; with them it reads.
    let mtls = RedisServer::start_tls(true);
    let cli = |a: &[&str]| mtls.cli(a);
    load_fixture(&cli);
    mtls.cli(&["CONFIG", "RESETSTAT"]);
    let out = tls_sweep(mtls.tls_addr(), |c| c.ca_file = ca.clone()).await;
    let e = error_text(out, "no client certificate");
    assert!(e.contains("cert_file") && e.contains("key_file"), "{e}");
    let out = tls_sweep(mtls.tls_addr(), |c| {
        c.ca_file = ca.clone();
        c.cert_file = Some(tls_fixture("client.pem"));
        c.key_file = Some(tls_fixture("client.key"));
    })
    .await;
    check_fixture(&out);
    check_read_only(&mtls);
}

#[tokio::test]
async fn sentinel_names_the_master_to_read() {
    let master = RedisServer::start();
    let cli = |a: &[&str]| master.cli(a);
    load_fixture(&cli);
    let keys_before = master.cli(&["DBSIZE"]);
    let sentinel = RedisSentinel::start(&master, "tyk-master");

    let sentinel_settings = |name: &str| {
        let cfg = StorageConfig {
            addrs: vec![sentinel.addr()],
            master_name: name.into(),
            timeout: Duration::from_secs(2),
            ..StorageConfig::default()
        };
        RedisSettings::from_config(&cfg, None)
    };
    let mut source = RedisSource::new(sentinel_settings("tyk-master"), None, None);
    let out = source.sweep(&SystemClock).await;
    check_fixture(&out);
    // Read-only (the Sentinel itself sends the master CLIENT SETNAME, ROLE, PUBLISH…, so the
    // proof here is the key space).
    assert_eq!(master.cli(&["DBSIZE"]), keys_before);

    // A master the Sentinel does not know: the message names it.
    let mut source = RedisSource::new(sentinel_settings("other"), None, None);
    let e = source
        .sweep(&SystemClock)
        .await
        .error
        .expect("an unknown master")
        .to_string();
    assert!(e.contains("\"other\"") && e.contains("master_name"), "{e}");
}

#[test]
fn snapshot_reads_tyks_redis() {
    let srv = RedisServer::start_with(&["--requirepass", "redis-pass-9f1"]);
    let cli = |a: &[&str]| srv.cli(a);
    load_fixture(&cli);
    let home = Env::new();
    let config = home.dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nhash_keys = true\n\n[gateway.storage]\nhost = \"127.0.0.1\"\nport = {}\npassword = \"${{REDIS_PW}}\"\n",
            srv.port()
        ),
    )
    .expect("config");
    let cfg = config.to_str().expect("path");
    let out = home
        .command(&["--config", cfg, "snapshot", "--json"])
        .env("REDIS_PW", "redis-pass-9f1")
        .output()
        .expect("tykwatch runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(r#""key":"45a0a4f9""#), "{stdout}");
    assert!(stdout.contains(r#""quota_remaining":3766"#), "{stdout}");
    assert!(
        stdout.contains(&format!(r#""quota_id":"org:{ORG}""#)),
        "{stdout}"
    );
    assert!(
        stderr.contains("deadbeef"),
        "the broken session is a warning: {stderr}"
    );
    assert!(!stdout.contains("redis-pass") && !stderr.contains("redis-pass"));

    // The password in the environment, as tyk.conf's TYK_GW_STORAGE_PASSWORD; a wrong one says
    // what to set, without echoing it.
    let out = home
        .command(&["--config", cfg, "snapshot"])
        .env("REDIS_PW", "x")
        .env("TYK_GW_STORAGE_PASSWORD", "not-it-4c2")
        .output()
        .expect("tykwatch runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("password") && !stderr.contains("not-it-4c2"),
        "{stderr}"
    );
}
