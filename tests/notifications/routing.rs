//! Routing of received events (`[[routes]]`) through the durable outbox, with real
//! counterparts: the fixtures classified by the intake's own parser, org documents from the
//! demo Dashboard over loopback (or an org dir, or a Dashboard that is down), a real SQLite
//! store, a loopback webhook receiver whose signatures are checked with `standardwebhooks`,
//! and the `file` e-mail backend whose `.eml` files are parsed back.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use crate::receiver::{answer, receiver};
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use serde_json::{Value, json};
use tempfile::TempDir;
use tykwatch::clock::{Clock, FixedClock};
use tykwatch::config::{
    Config, EmailBackendCode, EmailBackendConfig, MonitorHookConfig, RouteConfig, Secret,
    WebhookConfig,
};
use tykwatch::intake::{IntakeEvent, classify};
use tykwatch::notifier::{Notifier, Resend};
use tykwatch::notify::dispatcher::{Dispatcher, DispatcherOptions};
use tykwatch::notify::email::{EmailSetup, file_name};
use tykwatch::notify::retry::NoJitter;
use tykwatch::notify::route::{EventRouter, OrgAddressBook};
use tykwatch::orgs::OrgSource;
use tykwatch::outbox::{EventPayload, OutboxFilter, OutboxKind, OutboxRow, OutboxState, Source};
use tykwatch::store::Store;
use tykwatch::tyk::demo::{DemoGateway, DemoOptions, ORG_ACME, ORG_GLOBEX};

/// A channel id from its stored text.
fn ch(s: &str) -> tykwatch::outbox::ChannelId {
    s.parse().unwrap()
}

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Wall-clock time: the `standardwebhooks` verifier checks `webhook-timestamp` against it.
static NOW_MS: LazyLock<i64> = LazyLock::new(tykwatch::clock::system_now_ms);
/// The raw keys the fixtures carry; none may reach the outbox, a request or an e-mail.
const RAW_KEYS: &[&str] = &[
    "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d",
    "5e2743567c1f8800018bdf35d00dfeedd00dfeedd00dfeedd00dfeed",
    "5e9d9544a1dcd60001d0ed20c0ffee00c0ffee00c0ffee00c0ffee00",
    "s3cr3t-client-secret-value",
];
const KEY_REQUEST_ORG: &str = "5e2743567c1f8800018bdf35";

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Every fixture body by name: `key_request_submitted` plus the named events of
/// `dashboard_events.json` and `portal_events.json`.
fn bodies() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    out.insert(
        "key_request_submitted".to_owned(),
        fixture("key_request_event.json"),
    );
    for file in ["dashboard_events.json", "portal_events.json"] {
        for ev in fixture(file)["events"].as_array().unwrap() {
            out.insert(ev["name"].as_str().unwrap().to_owned(), ev["body"].clone());
        }
    }
    out
}

/// A body as the intake records it: classified, then given its id and time.
fn event(body: &Value, id: i64) -> IntakeEvent {
    let mut ev = classify(body.to_string().as_bytes()).unwrap();
    ev.id = id;
    ev.received_at = *NOW_MS - 1_000;
    ev
}

fn route(events: &[&str]) -> RouteConfig {
    RouteConfig {
        events: events.iter().map(|s| s.to_string()).collect(),
        orgs: Vec::new(),
        email_org: false,
        email_to: Vec::new(),
        email_developer: false,
        webhooks: Vec::new(),
    }
}

fn webhook(name: &str, url: &str) -> WebhookConfig {
    WebhookConfig {
        name: name.into(),
        url: url.into(),
        secret: Secret::new(SECRET),
        enabled: true,
    }
}

fn backend() -> EmailBackendConfig {
    EmailBackendConfig {
        enable_email_notifications: true,
        code: EmailBackendCode::File,
        default_from_email: "tyk@example.com".into(),
        default_from_name: "Tyk".into(),
        dashboard_hostname: "admin.example.com".into(),
        ..EmailBackendConfig::default()
    }
}

/// Key requests to the org, ops and the developer and a webhook; API and key events to ops
/// and two webhooks; one Portal event to the portal team; a route for another org only.
fn config(hook_url: &str) -> Config {
    Config {
        email_backend: backend(),
        webhooks: vec![
            webhook("ops", &format!("{hook_url}/ops")),
            webhook("audit", &format!("{hook_url}/audit")),
            WebhookConfig {
                enabled: false,
                ..webhook("off", &format!("{hook_url}/off"))
            },
        ],
        routes: vec![
            RouteConfig {
                email_org: true,
                email_to: vec!["ops@example.com".into()],
                email_developer: true,
                webhooks: vec!["ops".into()],
                ..route(&["key_request_event.*"])
            },
            RouteConfig {
                email_to: vec!["OPS@example.com".into()],
                webhooks: vec!["audit".into(), "ops".into(), "off".into()],
                ..route(&["api_event.*", "key_event.*"])
            },
            RouteConfig {
                email_to: vec!["portal@example.com".into()],
                ..route(&["UserRegistered", "UserAccountActivated"])
            },
            RouteConfig {
                orgs: vec!["some-other-org".into()],
                webhooks: vec!["audit".into()],
                ..route(&["*"])
            },
        ],
        ..Config::default()
    }
}

/// An org dir with the key request fixture's org (its key_request_event address set).
fn org_dir() -> TempDir {
    let dir = TempDir::new().unwrap();
    let doc = json!({
        "id": KEY_REQUEST_ORG,
        "owner_name": "Frontend Org",
        "event_options": {
            "key_request_event": {"webhook": "", "email": "portal-admins@frontend.example, ops-lead@frontend.example", "redis": false}
        }
    });
    std::fs::write(
        dir.path().join(format!("{KEY_REQUEST_ORG}.json")),
        doc.to_string(),
    )
    .unwrap();
    dir
}

fn channels(rows: &[OutboxRow]) -> Vec<String> {
    rows.iter().map(|r| r.channel_id.to_string()).collect()
}

fn payload(row: &OutboxRow) -> EventPayload {
    EventPayload::from_json(&row.payload_json).unwrap()
}

fn row<'a>(rows: &'a [OutboxRow], channel: &str) -> &'a OutboxRow {
    rows.iter()
        .find(|r| r.channel_id == channel)
        .unwrap_or_else(|| panic!("no {channel} row in {rows:?}"))
}

fn assert_no_raw_key(text: &str) {
    for raw in RAW_KEYS {
        assert!(!text.contains(raw), "a raw key or secret leaked: {text}");
    }
}

async fn demo() -> DemoGateway {
    DemoGateway::start(DemoOptions {
        simulate: false,
        ..DemoOptions::default()
    })
    .await
    .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

fn load(text: &str) -> Result<Config, String> {
    Config::load_from_str(text, "/etc/tykwatch/config.toml", &|_| None).map_err(|e| e.to_string())
}

const HOOKS: &str = "[[webhooks]]\nname = \"ops\"\nurl = \"https://h.example/x\"\n\n";

#[test]
fn routes_load_with_their_defaults() {
    let c = load(&format!(
        "{HOOKS}[[routes]]\nevents = [\"key_request_event.*\", \"api_event.created\"]\nwebhooks = [\"ops\"]\n\n[[routes]]\nevents = [\"*\"]\norgs = [\"org1\"]\nemail_org = true\n"
    ))
    .unwrap();
    assert_eq!(c.routes.len(), 2);
    let r = &c.routes[0];
    assert_eq!(r.events, ["key_request_event.*", "api_event.created"]);
    assert!(r.orgs.is_empty() && !r.email_org && !r.email_developer);
    assert!(r.email_to.is_empty());
    assert_eq!(r.webhooks, ["ops"]);
    assert_eq!(c.routes[1].orgs, ["org1"]);
    assert!(load("").unwrap().routes.is_empty());
}

#[test]
fn an_unknown_webhook_is_named_with_its_line() {
    let msg = load(&format!(
        "{HOOKS}[[routes]]\nevents = [\"*\"]\nwebhooks = [\"ops\", \"nope\"]\n"
    ))
    .unwrap_err();
    assert!(
        msg.contains(
            "/etc/tykwatch/config.toml:7:20: routes[0].webhooks[1]: unknown webhook \"nope\" (defined: ops)"
        ),
        "{msg}"
    );
    let msg = load("[[routes]]\nevents = [\"*\"]\nwebhooks = [\"ops\"]\n").unwrap_err();
    assert!(msg.contains("no [[webhooks]] are defined"), "{msg}");
}

#[test]
fn bad_patterns_addresses_and_empty_routes_are_errors() {
    let msg = load("[[routes]]\nevents = [\"key request\"]\nemail_to = [\"a@b.c\"]\n").unwrap_err();
    assert!(
        msg.contains(":2:11: routes[0].events[0]: invalid event pattern \"key request\""),
        "{msg}"
    );
    let msg = load(
        "[[routes]]\nevents = [\"*\"]\nemail_to = [\"ops@example.com\", \"not an address\"]\n",
    )
    .unwrap_err();
    assert!(
        msg.contains(":3:32: routes[0].email_to[1]: invalid e-mail address \"not an address\""),
        "{msg}"
    );
    let msg = load("[[routes]]\nevents = [\"*\"]\n").unwrap_err();
    assert!(
        msg.contains(":1:1: routes[0]: the route sends nowhere"),
        "{msg}"
    );
    let msg = load("[[routes]]\nevents = []\nemail_org = true\n").unwrap_err();
    assert!(
        msg.contains("routes[0].events: must name at least one event pattern"),
        "{msg}"
    );
    let msg = load("[[routes]]\nemail_org = true\n").unwrap_err();
    assert!(msg.contains("missing key `events`"), "{msg}");
    let msg = load(&format!(
        "{HOOKS}[[routes]]\nevents = [\"*\"]\nwebhooks = [\"a b\"]\n"
    ))
    .unwrap_err();
    assert!(
        msg.contains(":7:13: routes[0].webhooks[0]: invalid webhook name \"a b\""),
        "{msg}"
    );
    let msg = load("[[routes]]\nevents = [\"*\"]\nemail_org = true\nbogus = 1\n").unwrap_err();
    assert!(msg.contains(":4:1: routes[0].bogus: unknown key"), "{msg}");
}

// ---------------------------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn each_fixture_is_planned_to_its_channels() {
    let orgs = org_dir();
    let router = EventRouter::new(
        &config("http://127.0.0.1:9"),
        Some(OrgSource::files(orgs.path())),
    );
    let bodies = bodies();
    let plan = |name: &str, id: i64| {
        let ev = event(&bodies[name], id);
        let router = router.clone();
        async move { router.plan(&ev).await }
    };

    let rows = plan("key_request_submitted", 11).await;
    assert_eq!(
        channels(&rows),
        [
            "webhook:ops",
            "email:event-org",
            "email:event-to",
            "email:event-developer"
        ]
    );
    for r in &rows {
        assert_eq!(r.idem_key, format!("e:11:{}", r.channel_id));
        assert_eq!(r.source, Source::Event { event_id: 11 });
        assert_eq!((r.state, r.attempts), (OutboxState::Pending, 0));
        assert_eq!(r.next_attempt_at, *NOW_MS - 1_000);
        let p = payload(r);
        assert_eq!(p.event, "key_request_event.submitted");
        assert_eq!((p.event_id, p.org_id.as_str()), (11, KEY_REQUEST_ORG));
        assert_eq!(
            p.payload["data"]["catalogue_entry"]["name"],
            "frontend APIs"
        );
        assert_eq!(p.id, r.idem_key);
    }
    assert_eq!(rows[0].kind(), OutboxKind::StandardWebhook);
    assert!(payload(&rows[0]).template.is_empty());
    let org = payload(&rows[1]);
    assert_eq!(org.template, "key_request_submitted");
    assert_eq!(
        org.recipients,
        [
            "portal-admins@frontend.example",
            "ops-lead@frontend.example"
        ]
    );
    assert_eq!(payload(&rows[2]).recipients, ["ops@example.com"]);
    assert_eq!(payload(&rows[3]).recipients, ["dev@dev.ca"]);
    assert!(rows[1..].iter().all(|r| r.kind() == OutboxKind::Email));

    let rows = plan("key_request_event_approved", 12).await;
    assert_eq!(
        channels(&rows),
        [
            "webhook:ops",
            "email:event-org",
            "email:event-to",
            "email:event-developer"
        ]
    );
    assert_eq!(payload(&rows[2]).template, "key_request_approved");
    assert_eq!(payload(&rows[1]).recipients.len(), 2);
    assert_eq!(payload(&rows[3]).recipients, ["dev@dev.ca"]);
    for r in &rows {
        assert_no_raw_key(&r.payload_json);
    }

    // API and key events: both enabled webhooks (config order, the disabled one skipped).
    for (name, template) in [
        ("api_event_updated", "api_event"),
        ("key_event_created", "key_event"),
    ] {
        let rows = plan(name, 13).await;
        assert_eq!(
            channels(&rows),
            ["webhook:ops", "webhook:audit", "email:event-to"],
            "{name}"
        );
        assert_eq!(payload(&rows[2]).template, template);
        assert_eq!(payload(&rows[2]).recipients, ["OPS@example.com"]);
        for r in &rows {
            assert_no_raw_key(&r.payload_json);
        }
    }
    let key = plan("key_event_created", 14).await;
    assert_eq!(payload(&key[0]).masked_key, "5e9d…ef6d");

    let rows = plan("user_registered", 15).await;
    assert_eq!(channels(&rows), ["email:event-to"]);
    let p = payload(&rows[0]);
    assert_eq!(
        (p.template.as_str(), p.source.as_str()),
        ("welcome", "portal")
    );
    assert_eq!(p.recipients, ["portal@example.com"]);

    // No route for it; its secrets never reach a row anyway.
    assert!(plan("credential_registered", 16).await.is_empty());

    // Quota triggers are not routed (the monitor notifies), and neither is an unrecorded event.
    let trigger = event(
        &json!({"event": "TriggerExceeded", "message": "Quota trigger reached", "org": ORG_ACME,
                "key": RAW_KEYS[0], "trigger_limit": "80"}),
        17,
    );
    assert!(trigger.raw_key().is_some());
    let mut all = config("http://127.0.0.1:9");
    all.routes.push(RouteConfig {
        webhooks: vec!["ops".into()],
        ..route(&["*"])
    });
    let everything = EventRouter::new(&all, None);
    assert!(everything.plan(&trigger).await.is_empty());
    assert!(
        everything
            .plan(&event(&bodies["api_event_updated"], 0))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn email_off_plans_only_webhooks_and_no_route_plans_nothing() {
    let mut c = config("http://127.0.0.1:9");
    c.email_backend.enable_email_notifications = false;
    let router = EventRouter::new(&c, None);
    let rows = router
        .plan(&event(&bodies()["key_request_submitted"], 3))
        .await;
    assert_eq!(channels(&rows), ["webhook:ops"]);

    let none = EventRouter::new(&Config::default(), None);
    assert!(none.is_empty());
    assert!(
        none.plan(&event(&bodies()["api_event_updated"], 3))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn routes_filter_by_org() {
    let c = Config {
        webhooks: vec![webhook("acme", "http://127.0.0.1:9/a")],
        routes: vec![RouteConfig {
            orgs: vec![ORG_ACME.into()],
            webhooks: vec!["acme".into()],
            ..route(&["*"])
        }],
        ..Config::default()
    };
    let router = EventRouter::new(&c, None);
    let bodies = bodies();
    // api_event_updated is Acme's; the key request is another org's; Portal events have none.
    assert_eq!(
        channels(&router.plan(&event(&bodies["api_event_updated"], 1)).await),
        ["webhook:acme"]
    );
    assert!(
        router
            .plan(&event(&bodies["key_request_submitted"], 2))
            .await
            .is_empty()
    );
    assert!(
        router
            .plan(&event(&bodies["user_registered"], 3))
            .await
            .is_empty()
    );
}

fn org_route_config() -> Config {
    Config {
        email_backend: backend(),
        webhooks: vec![webhook("ops", "http://127.0.0.1:9/ops")],
        routes: vec![RouteConfig {
            email_org: true,
            webhooks: vec!["ops".into()],
            ..route(&["*"])
        }],
        ..Config::default()
    }
}

fn dashboard_event(name: &str, org: &str) -> Value {
    json!({"event": name, "data": {"api_id": "b84fe1a04e5648927971c0557971565c",
        "name": "Orders API", "org_id": org}})
}

#[tokio::test]
async fn the_org_address_comes_from_the_demo_dashboard() {
    let gw = demo().await;
    let router = EventRouter::new(&org_route_config(), Some(OrgSource::demo(&gw).unwrap()));

    let rows = router
        .plan(&event(&dashboard_event("api_event.created", ORG_ACME), 1))
        .await;
    assert_eq!(channels(&rows), ["webhook:ops", "email:event-org"]);
    let p = payload(&rows[1]);
    assert_eq!(p.recipients, ["api-ops@example.com"]);
    assert_eq!(p.template, "api_event");
    let lookup = p.org_lookup.unwrap();
    assert_eq!(
        (lookup.org_id.as_str(), lookup.option.as_str()),
        (ORG_ACME, "api_event")
    );

    // A comma-separated list becomes several recipients.
    let rows = router
        .plan(&event(&dashboard_event("key_event.deleted", ORG_GLOBEX), 2))
        .await;
    assert_eq!(
        payload(row(&rows, "email:event-org")).recipients,
        ["platform@globex.example", "security@globex.example"]
    );

    // Acme set no address for key_event, and has no entry for hashed_key_event: its choice.
    for name in ["key_event.created", "hashed_key_event.created"] {
        let rows = router
            .plan(&event(&dashboard_event(name, ORG_ACME), 3))
            .await;
        assert_eq!(channels(&rows), ["webhook:ops"], "{name}");
    }

    // An org the Dashboard does not know: visible, not dropped.
    let rows = router
        .plan(&event(
            &dashboard_event("api_event.created", "ffffffffffffffffffffffff"),
            4,
        ))
        .await;
    let org = row(&rows, "email:event-org");
    assert_eq!(org.state, OutboxState::Failed);
    let err = org.last_error.as_deref().unwrap();
    assert!(
        err.starts_with("could not read org ffffffffffffffffffffffff:"),
        "{err}"
    );
    assert_eq!(row(&rows, "webhook:ops").state, OutboxState::Pending);
}

/// A Dashboard that serves Acme's document and counts the reads.
async fn counting_dashboard() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let doc = fixture("organisation.json").to_string();
    let app = Router::new().fallback({
        let hits = hits.clone();
        move |headers: HeaderMap| {
            let hits = hits.clone();
            let doc = doc.clone();
            async move {
                hits.fetch_add(1, Ordering::SeqCst);
                assert_eq!(
                    headers.get("admin-auth").and_then(|v| v.to_str().ok()),
                    Some("admin-secret")
                );
                // Slow enough for concurrent events to queue behind one read.
                tokio::time::sleep(Duration::from_millis(50)).await;
                (StatusCode::OK, doc)
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), hits)
}

#[tokio::test]
async fn a_flood_reads_the_org_once_per_ttl() {
    let (url, hits) = counting_dashboard().await;
    let source = OrgSource::dashboard(&url, "admin-secret", Duration::from_secs(5), false).unwrap();
    let router = EventRouter::new(&org_route_config(), Some(source.clone()));
    let plans = (1..=50).map(|id| {
        let router = router.clone();
        async move {
            router
                .plan(&event(&dashboard_event("api_event.updated", ORG_ACME), id))
                .await
        }
    });
    let all = futures_util::future::join_all(plans).await;
    assert!(all.iter().all(|rows| rows.len() == 2));
    assert_eq!(hits.load(Ordering::SeqCst), 1, "one read for 50 events");

    // An expired entry is read again.
    let book = Arc::new(OrgAddressBook::with_ttl(
        Some(source),
        Duration::from_millis(0),
        Duration::from_millis(0),
    ));
    let router = EventRouter::with_address_book(&org_route_config(), book);
    for id in 1..=2 {
        router
            .plan(&event(&dashboard_event("api_event.updated", ORG_ACME), id))
            .await;
    }
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

// ---------------------------------------------------------------------------------------------
// Store
// ---------------------------------------------------------------------------------------------

/// Two instances on one PostgreSQL store route the same received event (each intake got it,
/// or one's catch-up raced the other's routing): one set of rows.
#[tokio::test]
async fn two_instances_routing_one_event_on_a_shared_store_queue_it_once() {
    let pg = crate::common::postgres::PgServer::start();
    pg.create_db("tykwatch");
    let store = tykwatch::config::StoreConfig {
        url: tykwatch::config::Secret::new(pg.url("tykwatch")),
        ..Default::default()
    };
    let router = EventRouter::new(&config("http://127.0.0.1:9"), None);
    let ev = event(&bodies()["api_event_updated"], 21);
    let rows = router.plan(&ev).await;
    let (c1, c2) = (store.clone(), store.clone());
    let (a, b) = tokio::task::spawn_blocking(move || {
        let mut a = Store::connect(&c1).unwrap();
        let mut b = Store::connect(&c2).unwrap();
        (a.enqueue(&rows).unwrap(), b.enqueue(&rows).unwrap())
    })
    .await
    .unwrap();
    assert_eq!((a, b), (3, 0));
    assert_eq!(pg.psql("tykwatch", "SELECT count(*) FROM outbox"), "3");
}

#[tokio::test]
async fn replaying_an_event_enqueues_nothing_new() {
    let dir = TempDir::new().unwrap();
    let mut store = Store::open_in(dir.path()).unwrap();
    let router = EventRouter::new(&config("http://127.0.0.1:9"), None);
    let ev = event(&bodies()["api_event_updated"], 21);
    let rows = router.plan(&ev).await;
    assert_eq!(store.enqueue(&rows).unwrap(), 3);
    assert_eq!(store.enqueue(&rows).unwrap(), 0);
    // Even after delivery and a restart, and with the plan made again.
    store
        .mark_delivered(&rows[0].idem_key, Some(200), *NOW_MS)
        .unwrap();
    drop(store);
    let mut store = Store::open_in(dir.path()).unwrap();
    assert_eq!(store.enqueue(&router.plan(&ev).await).unwrap(), 0);
    let listed = store.list_outbox(&OutboxFilter::default(), 100).unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(
        store.get(&rows[0].idem_key).unwrap().unwrap().state,
        OutboxState::Delivered
    );
    store.integrity_check().unwrap();
    // Another event's rows are new.
    let other = router
        .plan(&event(&bodies()["api_event_updated"], 22))
        .await;
    assert_eq!(store.enqueue(&other).unwrap(), 3);
    // Event rows never reach the monitor's ledger warm-up.
    assert!(
        store
            .load_ledger_since(0)
            .unwrap()
            .iter()
            .all(|l| l.period == 0)
    );
    assert!(store.load_ledger_since(1).unwrap().is_empty());
}

#[tokio::test]
async fn enqueue_keeps_planned_failures_fails_disabled_channels_and_refuses_quota_rows() {
    let dir = TempDir::new().unwrap();
    let mut store = Store::open_in(dir.path()).unwrap();
    store
        .disable_channel(&ch("webhook:audit"), "410 Gone from the receiver", *NOW_MS)
        .unwrap();
    let router = EventRouter::new(&config("http://127.0.0.1:9"), None);
    let rows = router
        .plan(&event(&bodies()["key_request_submitted"], 5))
        .await;
    // No org source: the org row is planned failed with the reason.
    let org = row(&rows, "email:event-org");
    assert_eq!(org.state, OutboxState::Failed);
    assert!(
        org.last_error
            .as_deref()
            .unwrap()
            .contains("no organisation source"),
        "{org:?}"
    );
    let api = router.plan(&event(&bodies()["api_event_updated"], 6)).await;
    assert_eq!(store.enqueue(&rows).unwrap(), 4);
    assert_eq!(store.enqueue(&api).unwrap(), 3);
    let stored = store.get(&org.idem_key).unwrap().unwrap();
    assert_eq!(stored.state, OutboxState::Failed);
    assert_eq!(stored.last_error, org.last_error);
    let audit = store.get("e:6:webhook:audit").unwrap().unwrap();
    assert_eq!(audit.state, OutboxState::Failed);
    assert!(audit.last_error.unwrap().contains("channel disabled"));
    // Resendable like any failed notification.
    assert!(store.resend(&org.idem_key, *NOW_MS).unwrap());

    let mut quota_row = rows[0].clone();
    quota_row.source = Source::Crossing {
        quota_key: "key:0123".into(),
        period: 1,
        threshold: 80.0,
    };
    let err = store.enqueue(&[quota_row]).unwrap_err().to_string();
    assert!(err.contains("not an event row"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Delivery
// ---------------------------------------------------------------------------------------------

struct Setup {
    dir: TempDir,
    store: Arc<Mutex<Store>>,
    clock: FixedClock,
    dispatcher: Dispatcher,
}

impl Setup {
    fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    fn get(&self, key: &str) -> OutboxRow {
        self.store.lock().unwrap().get(key).unwrap().unwrap()
    }

    fn eml(&self, key: &str) -> String {
        let path = self.mail_dir().join(file_name(key).unwrap());
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

fn setup(config: &Config, rows: &[OutboxRow], template_dir: Option<PathBuf>) -> Setup {
    let dir = TempDir::new().unwrap();
    let mut store = Store::open_in(dir.path()).unwrap();
    store.enqueue(rows).unwrap();
    let store = Arc::new(Mutex::new(store));
    let clock = FixedClock::new(*NOW_MS);
    let email = EmailSetup {
        backend: config.email_backend.clone(),
        email_to: Vec::new(),
        org_email_to: BTreeMap::new(),
        template_dir,
        mail_dir: dir.path().join("mail"),
    };
    let dispatcher = Dispatcher::with_jitter(
        store.clone(),
        Arc::new(clock.clone()),
        &MonitorHookConfig::default(),
        &config.webhooks,
        email,
        DispatcherOptions::default(),
        Box::new(NoJitter),
    )
    .unwrap();
    Setup {
        dir,
        store,
        clock,
        dispatcher,
    }
}

/// The message's headers (unfolded) and its decoded text and HTML parts.
struct Eml {
    headers: Vec<(String, String)>,
    text: String,
    html: String,
}

impl Eml {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn unfold(head: &str) -> Vec<(String, String)> {
    let mut lines: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        match lines.last_mut() {
            Some(last) if line.starts_with([' ', '\t']) => last.push_str(line),
            _ => lines.push(line.to_owned()),
        }
    }
    lines
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

fn decode_part(headers: &[(String, String)], body: &str) -> String {
    let cte = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-Transfer-Encoding"))
        .map(|(_, v)| v.to_ascii_lowercase())
        .unwrap_or_default();
    match cte.as_str() {
        "base64" => {
            let compact: String = body.split_whitespace().collect();
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(compact)
                .unwrap();
            String::from_utf8(bytes).unwrap()
        }
        "quoted-printable" => {
            let mut out = Vec::new();
            let bytes = body.replace("=\r\n", "").into_bytes();
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'=' && i + 2 < bytes.len() {
                    let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                    out.push(u8::from_str_radix(hex, 16).unwrap());
                    i += 3;
                } else {
                    out.push(bytes[i]);
                    i += 1;
                }
            }
            String::from_utf8(out).unwrap()
        }
        _ => body.to_owned(),
    }
}

/// Parses a multipart/alternative message as lettre writes it.
fn parse_eml(eml: &str) -> Eml {
    let (head, body) = eml.split_once("\r\n\r\n").expect("headers and a body");
    let headers = unfold(head);
    let ct = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("Content-Type"))
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(ct.starts_with("multipart/alternative"), "{ct}");
    let boundary = ct
        .split("boundary=")
        .nth(1)
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let (mut text, mut html) = (String::new(), String::new());
    for part in body.split(&format!("--{boundary}")).skip(1) {
        let Some((h, b)) = part.trim_start_matches("\r\n").split_once("\r\n\r\n") else {
            continue;
        };
        let h = unfold(h);
        let b = b.trim_end_matches("\r\n");
        let kind = h
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Type"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        if kind.starts_with("text/plain") {
            text = decode_part(&h, b);
        } else if kind.starts_with("text/html") {
            html = decode_part(&h, b);
        }
    }
    Eml {
        headers,
        text,
        html,
    }
}

#[tokio::test]
async fn events_are_delivered_signed_and_as_rendered_emails() {
    let (hooks, url) = receiver(vec![answer(204, vec![], "")]).await;
    let gw = demo().await;
    let mut c = config(&url);
    c.routes[0].email_org = false;
    c.routes.push(RouteConfig {
        email_org: true,
        ..route(&["api_event.*"])
    });
    let router = EventRouter::new(&c, Some(OrgSource::demo(&gw).unwrap()));
    let bodies = bodies();
    let mut api = bodies["api_event_updated"].clone();
    api["data"]["name"] = json!("Orders API");
    let mut rows = router
        .plan(&event(&bodies["key_request_submitted"], 31))
        .await;
    rows.extend(router.plan(&event(&api, 32)).await);
    rows.extend(router.plan(&event(&bodies["key_event_created"], 33)).await);
    rows.extend(router.plan(&event(&bodies["user_registered"], 34)).await);
    // The same user, activated: a Portal event no template is shipped for.
    let mut activated = bodies["user_registered"].clone();
    activated["Event"] = json!("UserAccountActivated");
    rows.extend(router.plan(&event(&activated, 35)).await);
    let s = setup(&c, &rows, None);
    let rep = s.dispatcher.run_once().await.unwrap();
    assert_eq!(rep.delivered, rows.len(), "{rep:?}");

    // Webhooks: one request per row, signed, webhook-id = the idempotency key, the event as body.
    let got = hooks.got();
    let expected: Vec<&OutboxRow> = rows
        .iter()
        .filter(|r| r.kind() == OutboxKind::StandardWebhook)
        .collect();
    assert_eq!(got.len(), expected.len());
    let wh = standardwebhooks::Webhook::new(SECRET).unwrap();
    for r in expected {
        let req = got
            .iter()
            .find(|g| g.headers["webhook-id"] == r.idem_key.as_str())
            .unwrap_or_else(|| panic!("no request for {}", r.idem_key));
        wh.verify(&req.body, &req.headers).unwrap();
        assert_eq!(
            req.path,
            format!(
                "/{}",
                r.channel_id.to_string().trim_start_matches("webhook:")
            )
        );
        let body: Value = serde_json::from_slice(&req.body).unwrap();
        let p = payload(r);
        assert_eq!(body["type"], p.event.as_str());
        assert_eq!(body["data"]["event_id"], p.event_id);
        assert_eq!(body["data"]["payload"], p.payload);
        assert_no_raw_key(&String::from_utf8_lossy(&req.body));
    }
    let key_event: Value = serde_json::from_slice(
        &got.iter()
            .find(|g| g.headers["webhook-id"] == "e:33:webhook:ops")
            .unwrap()
            .body,
    )
    .unwrap();
    assert_eq!(key_event["type"], "key_event.created");
    assert_eq!(key_event["data"]["key"], "5e9d…ef6d");
    assert_eq!(key_event["data"]["payload"]["data"]["key"], "5e9d…ef6d");

    // E-mails: one .eml per row, each rendered with the event's template.
    let m = parse_eml(&s.eml("e:31:email:event-to"));
    assert_eq!(m.header("To"), Some("ops@example.com"));
    assert_eq!(
        m.header("Message-ID"),
        Some("<e=31=email=event-to@tykwatch>")
    );
    assert_eq!(m.header("X-Tykwatch-Id"), Some("e:31:email:event-to"));
    assert_eq!(
        m.header("Subject"),
        Some("[Tyk portal] Key request for frontend APIs from dev@dev.ca")
    );
    assert!(
        m.text
            .contains("dev@dev.ca requested access to \"frontend APIs\" (v2)"),
        "{}",
        m.text
    );
    assert!(m.text.contains("tykwatch (key_request_event.submitted)"));
    assert!(m.html.contains("frontend APIs"), "{}", m.html);
    let dev = parse_eml(&s.eml("e:31:email:event-developer"));
    assert_eq!(dev.header("To"), Some("dev@dev.ca"));

    let org = parse_eml(&s.eml("e:32:email:event-org"));
    assert_eq!(org.header("To"), Some("api-ops@example.com"));
    assert_eq!(org.header("Subject"), Some("[Tyk] API Orders API updated"));
    assert!(org.text.contains("Listen path") || org.text.contains("API ID"));

    let key = parse_eml(&s.eml("e:33:email:event-to"));
    assert!(
        key.header("Subject").unwrap().starts_with("[Tyk] Key "),
        "{:?}",
        key.header("Subject")
    );
    assert!(key.text.contains("was created"), "{}", key.text);

    // A Portal sign-up: the welcome e-mail.
    let welcome = parse_eml(&s.eml("e:34:email:event-to"));
    assert_eq!(welcome.header("To"), Some("portal@example.com"));
    assert_eq!(
        welcome.header("Subject"),
        Some("Welcome to the developer portal, FirstName")
    );
    assert!(
        welcome
            .text
            .contains("your account developer@user.com is registered"),
        "{}",
        welcome.text
    );

    // No template of its own for this Portal event: the shipped generic `event` template.
    let portal = parse_eml(&s.eml("e:35:email:event-to"));
    assert_eq!(portal.header("To"), Some("portal@example.com"));
    assert_eq!(
        portal.header("Subject"),
        Some("[Tyk] Portal UserAccountActivated: developer@user.com")
    );
    assert!(
        portal.text.contains("\"Email\": \"developer@user.com\""),
        "{}",
        portal.text
    );
    // The body as JSON in the HTML too (`tojson` escapes <, >, & and ').
    assert!(
        portal.html.contains("\"Email\": \"developer@user.com\""),
        "{}",
        portal.html
    );
    assert!(
        portal.html.contains("event · UserAccountActivated"),
        "{}",
        portal.html
    );

    for entry in std::fs::read_dir(s.mail_dir()).unwrap() {
        assert_no_raw_key(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    // A second sweep sends nothing more.
    assert_eq!(s.dispatcher.run_once().await.unwrap().claimed, 0);
}

#[tokio::test]
async fn a_dashboard_that_is_down_fails_the_org_email_and_the_webhook_still_goes() {
    let (hooks, url) = receiver(vec![answer(204, vec![], "")]).await;
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut c = org_route_config();
    c.webhooks = vec![webhook("ops", &format!("{url}/ops"))];
    let down = OrgSource::dashboard(
        &format!("http://{closed}"),
        "admin-secret",
        Duration::from_secs(2),
        false,
    )
    .unwrap();
    let router = EventRouter::new(&c, Some(down));
    let rows = router
        .plan(&event(&dashboard_event("api_event.created", ORG_ACME), 41))
        .await;
    assert_eq!(channels(&rows), ["webhook:ops", "email:event-org"]);
    let org = row(&rows, "email:event-org");
    assert_eq!(org.state, OutboxState::Failed);
    let reason = org.last_error.clone().unwrap();
    assert!(
        reason.starts_with(&format!("could not read org {ORG_ACME}: ")),
        "{reason}"
    );
    assert!(!reason.contains("admin-secret"), "{reason}");

    let s = setup(&c, &rows, None);
    let rep = s.dispatcher.run_once().await.unwrap();
    assert_eq!((rep.claimed, rep.delivered), (1, 1));
    assert_eq!(hooks.got().len(), 1);
    let failed = s.get(&org.idem_key);
    assert_eq!(failed.state, OutboxState::Failed);
    assert_eq!(failed.last_error.as_deref(), Some(reason.as_str()));

    // Inspecting it says why it cannot be built yet.
    let err = s.dispatcher.inspect(&failed).await.unwrap_err();
    assert!(err.contains("could not read org"), "{err}");

    // Resent while the Dashboard is still down: retried on the schedule, with the reason.
    s.dispatcher.set_event_orgs(router.address_book());
    assert!(
        s.store
            .lock()
            .unwrap()
            .resend(&org.idem_key, *NOW_MS)
            .unwrap()
    );
    assert_eq!(s.dispatcher.run_once().await.unwrap().retried, 1);
    let retried = s.get(&org.idem_key);
    assert_eq!(retried.state, OutboxState::Pending);
    assert!(retried.last_error.unwrap().contains("could not read org"));

    // The Dashboard is back (here: the demo's): the next attempt reads it and sends.
    let gw = demo().await;
    let s2 = {
        let store = s.store.lock().unwrap();
        store.mark_failed(&org.idem_key, 1, None, "x").unwrap();
        store.resend(&org.idem_key, s.clock.now_ms()).unwrap();
        drop(store);
        let d = Dispatcher::with_jitter(
            s.store.clone(),
            Arc::new(s.clock.clone()),
            &MonitorHookConfig::default(),
            &c.webhooks,
            EmailSetup {
                backend: c.email_backend.clone(),
                email_to: Vec::new(),
                org_email_to: BTreeMap::new(),
                template_dir: None,
                mail_dir: s.mail_dir(),
            },
            DispatcherOptions::default(),
            Box::new(NoJitter),
        )
        .unwrap();
        d.set_event_orgs(Arc::new(OrgAddressBook::new(Some(
            OrgSource::demo(&gw).unwrap(),
        ))));
        d
    };
    let (summary, _) = s2.inspect(&s.get(&org.idem_key)).await.unwrap();
    assert!(summary.contains("api-ops@example.com"), "{summary}");
    assert_eq!(s2.run_once().await.unwrap().delivered, 1);
    assert_eq!(s.get(&org.idem_key).state, OutboxState::Delivered);
    let m = parse_eml(&s.eml(&org.idem_key));
    assert_eq!(m.header("To"), Some("api-ops@example.com"));
}

#[tokio::test]
async fn a_failing_template_keeps_the_row_failed_with_file_and_line() {
    let templates = TempDir::new().unwrap();
    let file = templates.path().join("key_request_submitted.text.tmpl");
    std::fs::write(&file, "Request {{ data.id }}\n{{ data.no_such_field.x }}\n").unwrap();
    let mut c = config("http://127.0.0.1:9");
    c.routes[0].email_org = false;
    c.routes[0].email_developer = false;
    c.routes[0].webhooks.clear();
    let router = EventRouter::new(&c, None);
    let rows = router
        .plan(&event(&bodies()["key_request_submitted"], 51))
        .await;
    assert_eq!(channels(&rows), ["email:event-to"]);
    let s = setup(&c, &rows, Some(templates.path().to_path_buf()));
    assert_eq!(s.dispatcher.run_once().await.unwrap().failed, 1);
    let r = s.get("e:51:email:event-to");
    assert_eq!(r.state, OutboxState::Failed);
    let err = r.last_error.unwrap();
    assert!(
        err.contains(&format!("{}:2", file.display())),
        "names the file and line: {err}"
    );
    assert!(!s.mail_dir().join(file_name(&r.idem_key).unwrap()).exists());
    // Fixed and resent: delivered.
    std::fs::remove_file(&file).unwrap();
    assert!(
        s.store
            .lock()
            .unwrap()
            .resend(&r.idem_key, *NOW_MS)
            .unwrap()
    );
    assert_eq!(s.dispatcher.run_once().await.unwrap().delivered, 1);
}

#[tokio::test]
async fn inspect_shows_event_rows() {
    let (_hooks, url) = receiver(vec![answer(204, vec![], "")]).await;
    let c = config(&url);
    let router = EventRouter::new(&c, None);
    let rows = router
        .plan(&event(&bodies()["key_event_created"], 61))
        .await;
    let s = setup(&c, &rows, None);
    let hook = s.get("e:61:webhook:ops");
    let (summary, text) = s.dispatcher.inspect(&hook).await.unwrap();
    assert!(
        summary.contains("Standard Webhooks, signed, type key_event.created"),
        "{summary}"
    );
    assert!(text.contains("webhook-id: e:61:webhook:ops"), "{text}");
    assert!(text.contains("\"type\":\"key_event.created\""), "{text}");
    assert_no_raw_key(&text);
    let mail = s.get("e:61:email:event-to");
    let (summary, text) = s.dispatcher.inspect(&mail).await.unwrap();
    assert!(summary.contains("OPS@example.com"), "{summary}");
    assert!(summary.contains("[Tyk] Key"), "{summary}");
    assert!(
        text.contains("Message-ID: <e=61=email=event-to@tykwatch>"),
        "{text}"
    );
    assert_no_raw_key(&text);
    // Nothing was sent.
    assert_eq!(s.get("e:61:email:event-to").state, OutboxState::Pending);
}

#[tokio::test]
async fn the_notifications_view_lists_event_rows() {
    let dir = TempDir::new().unwrap();
    let c = config("http://127.0.0.1:9");
    let notifier = Notifier::open(dir.path(), &c, Arc::new(FixedClock::new(*NOW_MS))).unwrap();
    let router = EventRouter::new(&c, None);
    let rows = router
        .plan(&event(&bodies()["key_event_created"], 71))
        .await;
    notifier.store().lock().unwrap().enqueue(&rows).unwrap();
    let snap = notifier.snapshot().await.unwrap();
    assert_eq!(snap.items.len(), 3);
    for it in &snap.items {
        assert_eq!(it.scope, "event");
        assert_eq!(it.event, "key_event.created");
        assert_eq!(it.org_id, ORG_ACME);
        assert_eq!(it.key_masked, "5e9d…ef6d");
        assert!(
            it.alias.starts_with("Dashboard key_event.created"),
            "{}",
            it.alias
        );
        assert!(it.row.payload_json.is_empty());
    }
    assert_eq!(snap.counts.pending, 3);
}

#[tokio::test]
async fn a_resend_says_whether_it_was_queued_refused_or_had_no_row() {
    let dir = TempDir::new().unwrap();
    let c = config("http://127.0.0.1:9");
    let notifier = Notifier::open(dir.path(), &c, Arc::new(FixedClock::new(*NOW_MS))).unwrap();
    let rows = EventRouter::new(&c, None)
        .plan(&event(&bodies()["key_event_created"], 72))
        .await;
    let (pending, failed) = (rows[0].idem_key.clone(), rows[1].idem_key.clone());
    {
        let s = notifier.store();
        let mut s = s.lock().unwrap();
        s.enqueue(&rows).unwrap();
        s.mark_failed(&failed, 1, Some(400), "refused").unwrap();
    }
    assert_eq!(
        notifier.resend(pending.clone()).await.unwrap(),
        Resend::NotResendable(OutboxState::Pending)
    );
    assert_eq!(
        notifier.resend(failed.clone()).await.unwrap(),
        Resend::Queued
    );
    assert_eq!(
        notifier.resend("no-such-key".into()).await.unwrap(),
        Resend::NotFound
    );
}

#[tokio::test]
async fn events_the_engine_did_not_route_are_caught_up_from_the_table() {
    let dir = TempDir::new().unwrap();
    let intake = tykwatch::intake::start(
        &tykwatch::config::IntakeConfig {
            listen: Some("127.0.0.1:0".parse().unwrap()),
            ..tykwatch::config::IntakeConfig::default()
        },
        Store::open_in(dir.path()).unwrap(),
    )
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let bodies = bodies();
    let mut sent = vec![
        json!({"event": "TriggerExceeded", "message": "Quota trigger reached", "org": ORG_ACME,
               "key": RAW_KEYS[0], "trigger_limit": "80"}),
    ];
    sent.extend(bodies.values().cloned());
    for body in &sent {
        let resp = http
            .post(format!("http://{}/events", intake.addr))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 202);
    }
    // The engine saw (and routed) only the first Dashboard event live: the process died.
    let mut live = intake.events;
    let trigger = live.recv().await.unwrap();
    assert!(trigger.raw_key().is_some());
    let first = live.recv().await.unwrap();
    let router = EventRouter::new(&config("http://127.0.0.1:9"), None);
    let mut store = Store::open_in(dir.path()).unwrap();
    let first_rows = router.plan(&first).await;
    assert!(!first_rows.is_empty());
    store.enqueue(&first_rows).unwrap();

    // After a restart: the rest is listed (no trigger, not the routed one) and planned alike.
    let pending = store.unrouted_events(0, 100).unwrap();
    let ids: Vec<i64> = pending.iter().map(|e| e.id).collect();
    assert_eq!(pending.len(), bodies.len() - 1, "{pending:?}");
    assert!(!ids.contains(&trigger.id) && !ids.contains(&first.id));
    let mut queued = 0;
    for row in &pending {
        let rows = router.plan_row(row).await;
        for r in &rows {
            assert_no_raw_key(&r.payload_json);
            assert_eq!(r.idem_key, format!("e:{}:{}", row.id, r.channel_id));
        }
        queued += store.enqueue(&rows).unwrap();
    }
    assert!(queued > 0);
    // What routes nowhere stays listed (nothing was written for it); the rest is done.
    let left = store.unrouted_events(0, 100).unwrap();
    assert_eq!(
        left.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(),
        ["CredentialRegistered"]
    );
    // The live event planned again from its row: the same keys, nothing new.
    let again = store.list_events(100).unwrap();
    let first_row = again.iter().find(|e| e.id == first.id).unwrap();
    assert_eq!(router.plan_row(first_row).await, first_rows);
    assert_eq!(store.enqueue(&first_rows).unwrap(), 0);
    intake.shutdown.shutdown().await.unwrap();
}

/// The engine's routing path: many events routed at once are committed in batches by one
/// writer; every planned row lands, events that plan nothing are marked routed, and a catch-up
/// afterwards finds nothing left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_events_is_routed_in_batches_and_nothing_is_left_to_catch_up() {
    let dir = TempDir::new().unwrap();
    let c = config("http://127.0.0.1:9");
    let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(*NOW_MS));
    let notifier = Notifier::open(dir.path(), &c, clock.clone()).unwrap();
    let dispatcher = Dispatcher::new(
        notifier.store(),
        clock,
        &c.monitor.configuration,
        &c.webhooks,
        EmailSetup::disabled(),
        DispatcherOptions::default(),
    )
    .unwrap();
    let routing = tykwatch::notifier::EventRouting::new(
        &c,
        None,
        notifier.store(),
        dispatcher,
        Arc::new(tykwatch::clock::SystemClock),
    );
    let bodies = bodies();
    let api = &bodies["api_event_updated"];
    let unrouted = json!({"Event": "SomethingNobodyRoutes", "Message": "m", "Timestamp": "t"});
    // Record the events as the intake would (ids come from the events table).
    let mut events = Vec::new();
    for i in 0..300 {
        let body = if i % 3 == 0 { &unrouted } else { api };
        let mut ev = classify(body.to_string().as_bytes()).unwrap();
        let row = tykwatch::notifier::event_row(&ev);
        let new = tykwatch::store::NewEvent {
            received_at: *NOW_MS,
            kind: row.kind,
            event: row.event,
            org_id: row.org_id,
            summary: row.summary,
            masked_key: row.masked_key,
            payload_json: row.payload_json,
        };
        ev.id = notifier.store().lock().unwrap().insert_event(&new).unwrap();
        events.push(ev);
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for ev in events {
        let tx = tx.clone();
        routing.route(ev, move |e| {
            let _ = tx.send(e);
        });
    }
    drop(tx);
    // Routing is done when the catch-up finds nothing (it waits for the writer too).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let store = notifier.store();
        let left = store
            .lock()
            .unwrap()
            .unrouted_events(0, 1000)
            .unwrap()
            .len();
        if left == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{left} events unrouted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rx.recv().await.is_none(), "a routing error was reported");
    assert_eq!(routing.catch_up().await.unwrap(), 0);
    let rows = notifier
        .store()
        .lock()
        .unwrap()
        .list_outbox(&OutboxFilter::default(), 10_000)
        .unwrap();
    // api_event.updated → audit + ops webhooks (+ e-mail only when e-mail is on).
    let per_event = router_rows(&c, api).await;
    assert_eq!(rows.len(), 200 * per_event);
}

async fn router_rows(c: &Config, body: &Value) -> usize {
    EventRouter::new(c, None).plan(&event(body, 1)).await.len()
}
