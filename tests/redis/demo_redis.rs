//! `demo-gateway --redis-port`: the demo writes Tyk's Redis layout, and the Redis source reads
//! the same quotas the REST API shows.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use crate::common;

use std::time::Duration;

use common::redis::RedisServer;
use tykwatch::clock::SystemClock;
use tykwatch::config::StorageConfig;
use tykwatch::quota::poller::SweepOptions;
use tykwatch::quota::redis::RedisSource;
use tykwatch::quota::{Scope, Source};
use tykwatch::tyk::demo::{DemoGateway, DemoOptions};
use tykwatch::tyk::gateway::{DEFAULT_MAX_BODY, Gateway, GatewaySettings};
use tykwatch::tyk::redis::RedisSettings;

#[tokio::test]
async fn the_demo_mirrored_into_redis_reads_like_its_rest_api() {
    let srv = RedisServer::start();
    let demo = DemoGateway::start(DemoOptions {
        redis: Some(srv.url()),
        ..DemoOptions::default()
    })
    .await
    .expect("demo with redis");
    tokio::time::sleep(Duration::from_millis(2500)).await;

    let sessions: usize = srv
        .cli(&["EVAL", "return #redis.call('KEYS', 'apikey-*')", "0"])
        .trim()
        .parse()
        .expect("count");
    assert_eq!(sessions, demo.key_count(), "one apikey- per demo key");

    let gw = Gateway::new(&GatewaySettings {
        url: demo.url(),
        secret: demo.secret().to_string(),
        timeout: Duration::from_secs(10),
        concurrency: 8,
        max_body: DEFAULT_MAX_BODY,
    })
    .expect("gateway");
    let rest = Source::rest(gw, SweepOptions::default(), Some(false))
        .sweep(&SystemClock)
        .await;
    let cfg = StorageConfig {
        addrs: vec![srv.addr()],
        ..StorageConfig::default()
    };
    let mut source = RedisSource::new(RedisSettings::from_config(&cfg, None), None, Some(true));
    let red = source.sweep(&SystemClock).await;
    assert!(red.error.is_none(), "{:?}", red.error);
    let count = |o: &tykwatch::quota::poller::SweepOutcome, scope: Scope| {
        o.samples.iter().filter(|s| s.id.scope() == scope).count()
    };
    for scope in [Scope::Key, Scope::Api, Scope::Org] {
        assert_eq!(count(&rest, scope), count(&red, scope), "{scope:?}");
    }
    // Every sample's key is a hash and its alias matches a REST sample with the same usage
    // band (traffic moves between the two reads, so values are compared loosely).
    for s in red.samples.iter().filter(|s| s.id.scope() == Scope::Key) {
        assert!(s.meta.hashed, "{:?}", s.meta.masked());
        if s.meta.alias.is_empty() {
            continue;
        }
        let r = rest
            .samples
            .iter()
            .find(|r| r.id.scope() == Scope::Key && r.meta.alias == s.meta.alias)
            .unwrap_or_else(|| panic!("no REST sample for {}", s.meta.alias));
        assert_eq!(r.quota_max, s.quota_max, "{}", s.meta.alias);
        if r.quota_max <= 0 {
            continue;
        }
        // A window that ended: the REST API shows the stale count until the next request, Redis
        // has no counter any more (a fresh window) — the Redis source's reading is the live one.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        if r.quota_renews <= now {
            assert_eq!(s.quota_remaining, s.quota_max, "{}", s.meta.alias);
            continue;
        }
        let drift = (r.quota_remaining - s.quota_remaining).abs();
        assert!(
            drift <= (r.quota_max / 10).max(50),
            "{}: REST {} vs Redis {}",
            s.meta.alias,
            r.quota_remaining,
            s.quota_remaining
        );
    }
    // Changed sessions are announced on tyk.cluster.notifications.
    let changed = tokio::time::timeout(Duration::from_secs(5), source.changed())
        .await
        .expect("a KeySpaceUpdateNotification within a few rounds");
    assert!(!changed.is_empty());
    demo.shutdown().await;
}

#[tokio::test]
async fn a_demo_pointed_at_no_redis_says_so() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let e = DemoGateway::start(DemoOptions {
        redis: Some(format!("redis://127.0.0.1:{port}/")),
        ..DemoOptions::default()
    })
    .await
    .expect_err("no Redis there");
    assert!(e.to_string().contains("Redis for the demo"), "{e}");
}
