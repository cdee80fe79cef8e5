//! E-mail delivery end to end: outbox rows in a real SQLite store, the dispatcher, and real
//! counterparts on loopback: an SMTP server (mailin-embedded) whose replies each test scripts,
//! a raw TCP server that drops the connection, HTTP receivers (axum) standing in for SendGrid,
//! Mailgun and Mandrill, and the `file` backend's directory. Time is a `FixedClock`.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::receiver::{answer, receiver};
use mailin_embedded::{Handler, Server, SslConfig};
use tempfile::TempDir;
use tykwatch::clock::{Clock, FixedClock};
use tykwatch::config::{
    EmailBackendCode, EmailBackendConfig, EmailSettings, MonitorHookConfig, Secret, WebhookConfig,
};
use tykwatch::notify::dispatcher::{Dispatcher, DispatcherOptions};
use tykwatch::notify::email::{DISABLED_REASON, EmailSetup, decode_id, encode_id, file_name};
use tykwatch::notify::plan::{Channels, plan};
use tykwatch::notify::retry::NoJitter;
use tykwatch::outbox::{Crossing, OutboxFilter, OutboxRow, OutboxState, quota_key};
use tykwatch::quota::{ApiMeta, QuotaId, QuotaMeta, SessionMeta, mask_key};
use tykwatch::store::Store;
use tykwatch::tyk::session::MetaData;

/// A channel id from its stored text.
fn ch(s: &str) -> tykwatch::outbox::ChannelId {
    s.parse().unwrap()
}

const RAW: &str = "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d";
const ORG: &str = "5e9d9544a1dcd60001d0ed20";
const NOW: i64 = 1_800_000_000_000;
const HOSTILE_ALIAS: &str = "acme\r\nBcc: evil@example.com\r\nX-Injected: 1";

// ---------------------------------------------------------------------------------------------
// SMTP server (mailin-embedded, blocking, on its own thread)
// ---------------------------------------------------------------------------------------------

#[derive(Clone)]
struct Smtp {
    /// Replies to RCPT TO, in order; the last one repeats. (250, _) accepts.
    script: Arc<Mutex<VecDeque<(u16, &'static str)>>>,
    got: Arc<Mutex<Vec<String>>>,
    /// Per connection.
    buf: Vec<u8>,
}

impl Handler for Smtp {
    fn rcpt(&mut self, _to: &str) -> mailin_embedded::Response {
        let (code, text) = {
            let mut s = self.script.lock().unwrap();
            if s.len() > 1 {
                s.pop_front().unwrap()
            } else {
                s.front().copied().unwrap_or((250, "OK"))
            }
        };
        if code == 250 {
            mailin_embedded::response::OK
        } else {
            mailin_embedded::Response::custom(code, text.to_owned())
        }
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.buf.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        let msg = String::from_utf8_lossy(&std::mem::take(&mut self.buf)).into_owned();
        self.got.lock().unwrap().push(msg);
        mailin_embedded::response::OK
    }
}

/// Starts an SMTP server on loopback; returns its address and the messages it accepted.
fn smtp_server(script: Vec<(u16, &'static str)>) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let handler = Smtp {
        script: Arc::new(Mutex::new(script.into())),
        got: Arc::default(),
        buf: Vec::new(),
    };
    let got = handler.got.clone();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut server = Server::new(handler);
    server
        .with_name("localhost")
        .with_ssl(SslConfig::None)
        .unwrap()
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    (addr, got)
}

/// Greets, reads one command, hangs up.
async fn dropping_server() -> SocketAddr {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let (r, mut w) = sock.into_split();
            let _ = w.write_all(b"220 localhost ESMTP\r\n").await;
            let mut line = String::new();
            let _ = BufReader::new(r).read_line(&mut line).await;
            // Dropping both halves closes the connection mid-conversation.
        }
    });
    addr
}

// ---------------------------------------------------------------------------------------------
// HTTP receiver (the provider APIs)
// ---------------------------------------------------------------------------------------------

// ---------------------------------------------------------------------------------------------
// Store, rows, dispatcher
// ---------------------------------------------------------------------------------------------

struct Setup {
    dir: TempDir,
    store: Arc<Mutex<Store>>,
    clock: FixedClock,
    dispatcher: Dispatcher,
}

impl Setup {
    fn rows(&self) -> Vec<OutboxRow> {
        self.store
            .lock()
            .unwrap()
            .list_outbox(&OutboxFilter::default(), 100)
            .unwrap()
    }

    fn row(&self, channel: &str) -> OutboxRow {
        self.rows()
            .into_iter()
            .find(|r| r.channel_id == channel)
            .unwrap_or_else(|| panic!("no row for {channel}"))
    }

    fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// Runs sweeps at each row's next attempt until `channel`'s row leaves `pending`.
    async fn until_settled(&self, channel: &str, max: usize) -> OutboxRow {
        for _ in 0..max {
            let row = self.row(channel);
            if row.state != OutboxState::Pending {
                return row;
            }
            self.clock.set(row.next_attempt_at);
            self.dispatcher.run_once().await.unwrap();
        }
        self.row(channel)
    }
}

fn crossing(alias: &str, usage: f64, remaining: i64) -> Crossing {
    let id = QuotaId::Key(Arc::from(RAW));
    let mut meta_data = serde_json::Map::new();
    meta_data.insert("email".into(), serde_json::json!("dev@acme.example"));
    Crossing {
        quota_key: Arc::from(quota_key(&id)),
        quota_id: id,
        meta: QuotaMeta {
            session: Arc::new(SessionMeta {
                key: Arc::from(RAW),
                masked: mask_key(RAW).into(),
                alias: alias.into(),
                org_id: ORG.into(),
                meta_data: MetaData::from_map(&meta_data),
                ..SessionMeta::default()
            }),
            api: Some(Arc::new(ApiMeta {
                api_id: "api1".into(),
                api_name: "Orders".into(),
                ..ApiMeta::default()
            })),
        },
        period: 1_800_003_600,
        threshold: 80.0,
        covered: vec![],
        usage_pct: usage,
        quota_max: 1000,
        quota_remaining: remaining,
        quota_renews: 1_800_003_600,
        at_ms: NOW,
        sequence: 1,
    }
}

fn ops_channels() -> Channels {
    Channels {
        email: true,
        email_to: vec!["ops@example.com".into()],
        ..Channels::default()
    }
}

fn backend(code: EmailBackendCode, settings: &[(&str, &str)]) -> EmailBackendConfig {
    EmailBackendConfig {
        enable_email_notifications: true,
        code,
        settings: EmailSettings(
            settings
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        ),
        default_from_email: "tyk@example.com".into(),
        default_from_name: "Tyk".into(),
        dashboard_hostname: "admin.example.com".into(),
        api_base: None,
    }
}

fn smtp_backend(addr: SocketAddr) -> EmailBackendConfig {
    backend(
        EmailBackendCode::Smtp,
        &[("SMTPAddress", addr.to_string().as_str())],
    )
}

struct Options {
    channels: Channels,
    crossing: Crossing,
    template_dir: Option<PathBuf>,
    monitor: MonitorHookConfig,
    webhooks: Vec<WebhookConfig>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            channels: ops_channels(),
            crossing: crossing("acme-prod", 85.5, 145),
            template_dir: None,
            monitor: MonitorHookConfig::default(),
            webhooks: Vec::new(),
        }
    }
}

fn setup(backend: EmailBackendConfig, o: Options) -> Setup {
    let dir = TempDir::new().unwrap();
    let mut store = Store::open_in(dir.path()).unwrap();
    let rows = plan(&o.crossing, &o.channels).unwrap();
    store
        .record_crossings(std::slice::from_ref(&o.crossing), &rows)
        .unwrap();
    let store = Arc::new(Mutex::new(store));
    let clock = FixedClock::new(NOW);
    let email = EmailSetup {
        backend,
        email_to: o.channels.email_to.clone(),
        org_email_to: o.channels.org_email_to.clone(),
        template_dir: o.template_dir,
        mail_dir: dir.path().join("mail"),
    };
    let dispatcher = Dispatcher::with_jitter(
        store.clone(),
        Arc::new(clock.clone()),
        &o.monitor,
        &o.webhooks,
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

/// Header block of a message (unfolded lines).
fn headers_of(msg: &str) -> Vec<String> {
    let head = msg.split("\r\n\r\n").next().unwrap();
    let mut out: Vec<String> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.push_str(line);
            }
        } else {
            out.push(line.to_owned());
        }
    }
    out
}

fn header_value(msg: &str, name: &str) -> Option<String> {
    headers_of(msg).into_iter().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

fn expected_message_id(idem_key: &str) -> String {
    format!("<{}@tykwatch>", encode_id(idem_key).unwrap())
}

/// The checks every delivered message must pass.
fn assert_well_formed(msg: &str, idem_key: &str) {
    assert_eq!(
        header_value(msg, "Message-ID").as_deref(),
        Some(expected_message_id(idem_key).as_str())
    );
    assert_eq!(
        header_value(msg, "X-Tykwatch-Id").as_deref(),
        Some(idem_key)
    );
    let ct = header_value(msg, "Content-Type").unwrap();
    assert!(ct.starts_with("multipart/alternative"), "{ct}");
    assert!(
        msg.contains("Content-Type: text/plain; charset=utf-8"),
        "{msg}"
    );
    assert!(
        msg.contains("Content-Type: text/html; charset=utf-8"),
        "{msg}"
    );
    for line in headers_of(msg) {
        assert!(!line.starts_with("Bcc"), "{line}");
        assert!(!line.starts_with("X-Injected"), "{line}");
    }
    assert!(!msg.contains(RAW), "the raw key never goes into an e-mail");
}

// ---------------------------------------------------------------------------------------------
// SMTP
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn smtp_250_is_delivered_with_the_message_id_and_both_parts() {
    let (addr, got) = smtp_server(vec![(250, "OK")]);
    let s = setup(
        smtp_backend(addr),
        Options {
            crossing: crossing(HOSTILE_ALIAS, 85.5, 145),
            ..Options::default()
        },
    );
    let rep = s.dispatcher.run_once().await.unwrap();
    assert_eq!((rep.claimed, rep.delivered), (1, 1), "{:?}", s.rows());
    let row = s.row("email:ops");
    assert_eq!(row.state, OutboxState::Delivered);
    assert_eq!((row.attempts, row.last_status), (1, Some(250)));
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let msg = &got[0];
    assert_well_formed(msg, &row.idem_key);
    assert_eq!(
        decode_id(&encode_id(&row.idem_key).unwrap()),
        Some(row.idem_key.clone())
    );
    assert_eq!(header_value(msg, "To").as_deref(), Some("ops@example.com"));
    assert_eq!(
        header_value(msg, "From").as_deref(),
        Some("Tyk <tyk@example.com>")
    );
    let subject = header_value(msg, "Subject").unwrap();
    assert!(subject.contains("Bcc: evil@example.com"), "{subject}");
    assert!(subject.contains("passed 80% of its quota"), "{subject}");
    // Nothing left to send.
    s.clock.advance(86_400_000);
    assert_eq!(s.dispatcher.run_once().await.unwrap().claimed, 0);
}

#[tokio::test]
async fn smtp_451_is_retried_on_the_schedule() {
    let (addr, got) = smtp_server(vec![(451, "4.3.0 try later"), (250, "OK")]);
    let s = setup(smtp_backend(addr), Options::default());
    assert_eq!(s.dispatcher.run_once().await.unwrap().retried, 1);
    let row = s.row("email:ops");
    assert_eq!(row.state, OutboxState::Pending);
    assert_eq!((row.attempts, row.last_status), (1, Some(451)));
    assert_eq!(row.next_attempt_at, NOW + 5_000);
    assert_eq!(row.last_error.as_deref(), Some("smtp 451 4.3.0 try later"));
    assert!(got.lock().unwrap().is_empty());
    s.clock.advance(5_000);
    assert_eq!(s.dispatcher.run_once().await.unwrap().delivered, 1);
    let row = s.row("email:ops");
    assert_eq!((row.state, row.attempts), (OutboxState::Delivered, 2));
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert_well_formed(&got[0], &row.idem_key);
}

#[tokio::test]
async fn smtp_550_gets_the_short_retry_then_fails() {
    let (addr, got) = smtp_server(vec![(550, "5.1.1 user unknown")]);
    let s = setup(smtp_backend(addr), Options::default());
    assert_eq!(s.dispatcher.run_once().await.unwrap().retried, 1);
    assert_eq!(s.row("email:ops").state, OutboxState::Pending);
    let row = s.until_settled("email:ops", 10).await;
    assert_eq!(
        (row.state, row.attempts, row.last_status),
        (OutboxState::Failed, 4, Some(550))
    );
    assert_eq!(
        row.last_error.as_deref(),
        Some("smtp 550 5.1.1 user unknown (4 attempts)")
    );
    assert!(got.lock().unwrap().is_empty());
}

#[tokio::test]
async fn smtp_server_dropping_the_connection_is_retried() {
    let addr = dropping_server().await;
    let s = setup(smtp_backend(addr), Options::default());
    assert_eq!(s.dispatcher.run_once().await.unwrap().retried, 1);
    let row = s.row("email:ops");
    assert_eq!((row.state, row.last_status), (OutboxState::Pending, None));
    assert_eq!(
        row.last_error.as_deref(),
        Some(format!("network error: connection to {addr} closed by the server").as_str())
    );
}

#[tokio::test]
async fn smtp_connection_refused_is_retried_and_says_where() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let s = setup(smtp_backend(addr), Options::default());
    assert_eq!(s.dispatcher.run_once().await.unwrap().retried, 1);
    let row = s.row("email:ops");
    assert_eq!(
        row.last_error.as_deref(),
        Some(format!("network error: connection refused to {addr}").as_str())
    );
}

#[tokio::test]
async fn each_audience_gets_its_template() {
    let (addr, got) = smtp_server(vec![(250, "OK")]);
    let s = setup(
        smtp_backend(addr),
        Options {
            channels: Channels {
                notify_key_owner: true,
                ..ops_channels()
            },
            crossing: crossing("acme-prod", 100.0, 0),
            ..Options::default()
        },
    );
    assert_eq!(s.dispatcher.run_once().await.unwrap().delivered, 2);
    let got = got.lock().unwrap().clone();
    let subjects: Vec<String> = got
        .iter()
        .map(|m| header_value(m, "Subject").unwrap())
        .collect();
    // Exhausted: every audience gets quota_exhausted.
    assert!(
        subjects
            .iter()
            .all(|s| s.contains("has used its whole quota")),
        "{subjects:?}"
    );
    let dev = got
        .iter()
        .find(|m| header_value(m, "To").as_deref() == Some("dev@acme.example"))
        .expect("the developer got one");
    assert_well_formed(dev, &s.row("email:developer").idem_key);
}

// ---------------------------------------------------------------------------------------------
// Providers
// ---------------------------------------------------------------------------------------------

fn api_backend(code: EmailBackendCode, url: &str) -> EmailBackendConfig {
    let mut b = backend(
        code,
        &[
            ("ClientKey", "client-key-0123456789"),
            ("Domain", "mg.example.com"),
            ("PrivateKey", "key-private-0123456789"),
        ],
    );
    b.api_base = Some(url.to_owned());
    b
}

#[tokio::test]
async fn sendgrid_202_is_delivered() {
    let (r, url) = receiver(vec![answer(202, vec![], "")]).await;
    let s = setup(
        api_backend(EmailBackendCode::Sendgrid, &url),
        Options::default(),
    );
    assert_eq!(s.dispatcher.run_once().await.unwrap().delivered, 1);
    let row = s.row("email:ops");
    assert_eq!(
        (row.state, row.last_status),
        (OutboxState::Delivered, Some(202))
    );
    let got = r.got();
    assert_eq!(got.len(), 1);
    let req = &got[0];
    assert_eq!(req.path, "/v3/mail/send");
    assert_eq!(req.header("authorization"), "Bearer client-key-0123456789");
    assert_eq!(req.header("content-type"), "application/json");
    let body = req.json();
    assert_eq!(
        body["personalizations"][0]["to"][0]["email"],
        "ops@example.com"
    );
    assert_eq!(body["from"]["email"], "tyk@example.com");
    assert_eq!(body["from"]["name"], "Tyk");
    assert_eq!(body["content"][0]["type"], "text/plain");
    assert_eq!(body["content"][1]["type"], "text/html");
    assert_eq!(
        body["headers"]["Message-ID"],
        expected_message_id(&row.idem_key)
    );
    assert_eq!(body["headers"]["X-Tykwatch-Id"], row.idem_key);
    assert!(!req.text().contains(RAW));
}

#[tokio::test]
async fn sendgrid_400_keeps_the_error_text_and_429_waits_for_retry_after() {
    let errors = r#"{"errors":[{"message":"The from address does not match a verified Sender Identity.","field":"from","help":null}]}"#;
    let (_r, url) = receiver(vec![
        answer(400, vec![("content-type", "application/json")], errors),
        answer(429, vec![("retry-after", "30")], ""),
        answer(202, vec![], ""),
    ])
    .await;
    let s = setup(
        api_backend(EmailBackendCode::Sendgrid, &url),
        Options::default(),
    );
    assert_eq!(s.dispatcher.run_once().await.unwrap().retried, 1);
    let row = s.row("email:ops");
    assert_eq!(
        (row.last_status, row.next_attempt_at),
        (Some(400), NOW + 5_000)
    );
    let err = row.last_error.unwrap();
    assert!(
        err.contains("HTTP 400") && err.contains("sendgrid: The from address does not match"),
        "{err}"
    );
    s.clock.set(row.next_attempt_at);
    assert_eq!(s.dispatcher.run_once().await.unwrap().retried, 1);
    let row = s.row("email:ops");
    assert_eq!(row.last_status, Some(429));
    // max(5 min backoff, 30 s Retry-After)
    assert_eq!(row.next_attempt_at, NOW + 5_000 + 5 * 60_000);
    let row = s.until_settled("email:ops", 3).await;
    assert_eq!((row.state, row.attempts), (OutboxState::Delivered, 3));
}

#[tokio::test]
async fn mailgun_posts_a_multipart_form_with_basic_auth() {
    let (r, url) = receiver(vec![answer(
        200,
        vec![("content-type", "application/json")],
        r#"{"id":"<x@mg.example.com>","message":"Queued. Thank you."}"#,
    )])
    .await;
    let s = setup(
        api_backend(EmailBackendCode::Mailgun, &url),
        Options::default(),
    );
    assert_eq!(s.dispatcher.run_once().await.unwrap().delivered, 1);
    let row = s.row("email:ops");
    let req = &r.got()[0];
    assert_eq!(req.path, "/v3/mg.example.com/messages");
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode("api:key-private-0123456789");
    assert_eq!(req.header("authorization"), format!("Basic {basic}"));
    let ct = req.header("content-type");
    let boundary = ct
        .strip_prefix("multipart/form-data; boundary=")
        .unwrap_or_else(|| panic!("{ct}"));
    let body = req.text();
    let field = |name: &str| {
        let marker = format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n");
        let start = body.find(&marker).unwrap_or_else(|| panic!("no {name}")) + marker.len();
        let end = body[start..].find(&format!("\r\n--{boundary}")).unwrap() + start;
        body[start..end].to_owned()
    };
    assert_eq!(field("from"), "Tyk <tyk@example.com>");
    assert_eq!(field("to"), "ops@example.com");
    assert_eq!(field("h:Message-Id"), expected_message_id(&row.idem_key));
    assert_eq!(field("h:X-Tykwatch-Id"), row.idem_key);
    assert!(field("subject").contains("passed 80%"));
    assert!(field("html").starts_with("<!DOCTYPE html>"));
    assert!(!field("text").is_empty());
    assert!(body.ends_with(&format!("--{boundary}--\r\n")));
}

#[tokio::test]
async fn mailgun_401_is_a_client_error_with_its_text() {
    let (_r, url) = receiver(vec![answer(401, vec![], "Forbidden")]).await;
    let s = setup(
        api_backend(EmailBackendCode::Mailgun, &url),
        Options::default(),
    );
    let row = s.until_settled("email:ops", 10).await;
    assert_eq!(
        (row.state, row.attempts, row.last_status),
        (OutboxState::Failed, 4, Some(401))
    );
    let err = row.last_error.unwrap();
    assert!(
        err.contains("HTTP 401") && err.contains("mailgun: Forbidden"),
        "{err}"
    );
}

#[tokio::test]
async fn mandrill_200_sent_is_delivered() {
    let (r, url) = receiver(vec![answer(
        200,
        vec![("content-type", "application/json")],
        r#"[{"email":"ops@example.com","status":"sent","_id":"abc","reject_reason":null}]"#,
    )])
    .await;
    let s = setup(
        api_backend(EmailBackendCode::Mandrill, &url),
        Options::default(),
    );
    assert_eq!(s.dispatcher.run_once().await.unwrap().delivered, 1);
    let row = s.row("email:ops");
    let req = &r.got()[0];
    assert_eq!(req.path, "/api/1.0/messages/send.json");
    let body = req.json();
    assert_eq!(body["key"], "client-key-0123456789");
    assert_eq!(body["message"]["to"][0]["email"], "ops@example.com");
    assert_eq!(body["message"]["to"][0]["type"], "to");
    assert_eq!(body["message"]["from_email"], "tyk@example.com");
    assert_eq!(
        body["message"]["headers"]["Message-Id"],
        expected_message_id(&row.idem_key)
    );
}

#[tokio::test]
async fn mandrill_200_rejected_is_a_failure() {
    let (_r, url) = receiver(vec![answer(
        200,
        vec![("content-type", "application/json")],
        r#"[{"email":"ops@example.com","status":"rejected","reject_reason":"hard-bounce"}]"#,
    )])
    .await;
    let s = setup(
        api_backend(EmailBackendCode::Mandrill, &url),
        Options::default(),
    );
    let rep = s.dispatcher.run_once().await.unwrap();
    assert_eq!((rep.delivered, rep.retried), (0, 1));
    let row = s.until_settled("email:ops", 10).await;
    assert_eq!(
        (row.state, row.attempts, row.last_status),
        (OutboxState::Failed, 4, Some(200))
    );
    let err = row.last_error.unwrap();
    assert!(
        err.contains("mandrill refused ops@example.com rejected: hard-bounce"),
        "{err}"
    );
}

#[tokio::test]
async fn mandrill_500_invalid_key_is_classified_by_name() {
    let (r, url) = receiver(vec![answer(
        500,
        vec![("content-type", "application/json")],
        r#"{"status":"error","code":-1,"name":"Invalid_Key","message":"Invalid API key"}"#,
    )])
    .await;
    let s = setup(
        api_backend(EmailBackendCode::Mandrill, &url),
        Options::default(),
    );
    let row = s.until_settled("email:ops", 10).await;
    // Not the 5xx schedule (8 attempts over a day): the short capped retry.
    assert_eq!(
        (row.state, row.attempts, row.last_status),
        (OutboxState::Failed, 4, Some(500))
    );
    assert!(
        row.last_error
            .unwrap()
            .contains("mandrill HTTP 500 Invalid_Key: Invalid API key")
    );
    assert_eq!(r.got().len(), 4);
}

// ---------------------------------------------------------------------------------------------
// File backend, templates, disabled, inspect, test sends
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn file_backend_writes_one_parseable_eml_and_a_retry_overwrites_it() {
    let s = setup(backend(EmailBackendCode::File, &[]), Options::default());
    let idem = s.row("email:ops").idem_key;
    let path = s.mail_dir().join(file_name(&idem).unwrap());
    // A previous attempt wrote the file and died before recording it (the accepted-then-crashed window, ARCHITECTURE.md "Decisions").
    std::fs::create_dir_all(s.mail_dir()).unwrap();
    std::fs::write(&path, "stale partial").unwrap();
    assert_eq!(s.dispatcher.run_once().await.unwrap().delivered, 1);
    let row = s.row("email:ops");
    assert_eq!((row.state, row.last_status), (OutboxState::Delivered, None));
    let names: Vec<String> = std::fs::read_dir(s.mail_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [file_name(&idem).unwrap()],
        "no temp files, no duplicate"
    );
    let eml = std::fs::read_to_string(&path).unwrap();
    assert_well_formed(&eml, &idem);
    assert!(eml.contains("\r\n\r\n"));
}

#[tokio::test]
async fn file_backend_write_errors_are_retried() {
    let s = setup(backend(EmailBackendCode::File, &[]), Options::default());
    // The directory cannot be created: a file is in the way.
    std::fs::write(s.mail_dir(), "not a directory").unwrap();
    assert_eq!(s.dispatcher.run_once().await.unwrap().retried, 1);
    let err = s.row("email:ops").last_error.unwrap();
    assert!(err.contains("cannot write"), "{err}");
    std::fs::remove_file(s.mail_dir()).unwrap();
    s.clock.advance(5_000);
    assert_eq!(s.dispatcher.run_once().await.unwrap().delivered, 1);
}

#[tokio::test]
async fn a_template_error_fails_the_row_with_file_and_line() {
    let templates = TempDir::new().unwrap();
    std::fs::write(
        templates.path().join("quota_threshold.text.tmpl"),
        "Hello\n{{ no_such_field }}\n",
    )
    .unwrap();
    let s = setup(
        backend(EmailBackendCode::File, &[]),
        Options {
            template_dir: Some(templates.path().to_path_buf()),
            ..Options::default()
        },
    );
    assert_eq!(s.dispatcher.run_once().await.unwrap().failed, 1);
    let row = s.row("email:ops");
    assert_eq!((row.state, row.attempts), (OutboxState::Failed, 1));
    let err = row.last_error.unwrap();
    let file = templates.path().join("quota_threshold.text.tmpl");
    assert!(
        err.contains(&format!("{}:2", file.display())),
        "names the file and line: {err}"
    );
    assert!(
        !s.mail_dir()
            .join(file_name(&row.idem_key).unwrap())
            .exists()
    );
    // Fixed template + manual resend → delivered (the row was kept, not dropped).
    std::fs::remove_file(&file).unwrap();
    assert!(
        s.store
            .lock()
            .unwrap()
            .resend(&row.idem_key, s.clock.now_ms())
            .unwrap()
    );
    assert_eq!(s.dispatcher.run_once().await.unwrap().delivered, 1);
}

#[tokio::test]
async fn disabled_email_fails_rows_visibly() {
    let mut b = backend(EmailBackendCode::File, &[]);
    b.enable_email_notifications = false;
    let s = setup(b, Options::default());
    assert_eq!(s.dispatcher.run_once().await.unwrap().failed, 1);
    let row = s.row("email:ops");
    assert_eq!(row.state, OutboxState::Failed);
    assert_eq!(row.last_error.as_deref(), Some(DISABLED_REASON));
    assert!(!s.mail_dir().exists());
}

#[tokio::test]
async fn inspect_shows_what_would_be_sent_without_sending_or_secrets() {
    let (r, url) = receiver(vec![answer(200, vec![], "[]")]).await;
    let mut header_map = BTreeMap::new();
    header_map.insert(
        "X-Hook-Secret".to_owned(),
        Secret::new("hook-secret-value-42"),
    );
    let s = setup(
        api_backend(EmailBackendCode::Mandrill, &url),
        Options {
            channels: Channels {
                tyk: true,
                webhooks: vec!["ops".into()],
                ..ops_channels()
            },
            monitor: MonitorHookConfig {
                method: "POST".into(),
                target_path: format!("{url}/tyk"),
                template_path: String::new(),
                header_map,
                event_timeout: 0,
            },
            webhooks: vec![WebhookConfig {
                name: "ops".into(),
                url: format!("{url}/hook"),
                secret: Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                enabled: true,
            }],
            ..Options::default()
        },
    );
    let (summary, text) = s.dispatcher.inspect(&s.row("tyk")).await.unwrap();
    assert!(summary.contains(&format!("POST {url}/tyk")), "{summary}");
    assert!(text.starts_with(&format!("POST {url}/tyk\n")), "{text}");
    assert!(text.contains(&mask_key(RAW)), "{text}");
    assert!(!text.contains(RAW) && !summary.contains(RAW));
    assert!(!text.contains("hook-secret-value-42"), "{text}");
    assert!(text.contains("x-hook-secret: ••••"), "{text}");

    let (_, text) = s.dispatcher.inspect(&s.row("webhook:ops")).await.unwrap();
    assert!(text.contains("webhook-signature: v1,"), "{text}");
    // Headers, a blank line, then the JSON body (key order is serde_json's).
    let (_, body) = text.split_once("\n\n").expect("headers then body");
    let body: serde_json::Value = serde_json::from_str(body).expect("the body is JSON");
    assert_eq!(body["type"], "quota.threshold_crossed", "{text}");

    let (summary, text) = s.dispatcher.inspect(&s.row("email:ops")).await.unwrap();
    assert!(summary.contains("ops@example.com"), "{summary}");
    assert!(summary.contains("mandrill POST"), "{summary}");
    assert!(text.contains("/api/1.0/messages/send.json"), "{text}");
    assert!(!text.contains("client-key-0123456789"), "{text}");
    assert!(text.contains("\"key\":\"••••6789\""), "{text}");

    assert!(r.got().is_empty(), "inspect sends nothing");
    assert!(s.rows().iter().all(|r| r.state == OutboxState::Pending));
}

#[tokio::test]
async fn inspect_of_smtp_email_is_the_eml() {
    let (addr, got) = smtp_server(vec![(250, "OK")]);
    let s = setup(smtp_backend(addr), Options::default());
    let row = s.row("email:ops");
    let (summary, text) = s.dispatcher.inspect(&row).await.unwrap();
    assert!(
        summary.contains(&format!("smtp {addr} (plain text, loopback)")),
        "{summary}"
    );
    assert_well_formed(&text, &row.idem_key);
    assert!(got.lock().unwrap().is_empty());
}

#[tokio::test]
async fn send_test_goes_straight_to_the_channel() {
    let (addr, got) = smtp_server(vec![(250, "OK")]);
    let (r, url) = receiver(vec![answer(204, vec![], "")]).await;
    let s = setup(
        smtp_backend(addr),
        Options {
            channels: Channels {
                webhooks: vec!["ops".into()],
                ..ops_channels()
            },
            webhooks: vec![WebhookConfig {
                name: "ops".into(),
                url: format!("{url}/hook"),
                secret: Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
                enabled: true,
            }],
            ..Options::default()
        },
    );
    let ok = s.dispatcher.send_test(&ch("email:ops")).await.unwrap();
    assert!(ok.contains("smtp 250"), "{ok}");
    let got = got.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let subject = header_value(&got[0], "Subject").unwrap();
    assert!(
        subject.starts_with("[tykwatch] Test e-mail from"),
        "{subject}"
    );
    assert!(
        header_value(&got[0], "Message-ID")
            .unwrap()
            .starts_with("<tykwatch-test-")
    );

    let ok = s.dispatcher.send_test(&ch("webhook:ops")).await.unwrap();
    assert!(ok.contains("HTTP 204"), "{ok}");
    let hook = &r.got()[0];
    assert_eq!(hook.json()["type"], "tykwatch.test");
    assert!(hook.header("webhook-signature").starts_with("v1,"));

    let e = s
        .dispatcher
        .send_test(&ch("email:developer"))
        .await
        .unwrap_err();
    assert!(e.contains("no fixed recipients"), "{e}");
    let e = s.dispatcher.send_test(&ch("tyk")).await.unwrap_err();
    assert!(e.contains("not configured"), "{e}");
    // Nothing went through the outbox.
    assert_eq!(s.rows().len(), 2);
    assert!(s.rows().iter().all(|r| r.attempts == 0));
}

#[tokio::test]
async fn send_test_reports_failures() {
    let (addr, _got) = smtp_server(vec![(550, "5.7.1 relay denied")]);
    let s = setup(smtp_backend(addr), Options::default());
    let e = s.dispatcher.send_test(&ch("email:ops")).await.unwrap_err();
    assert!(e.contains("smtp 550 5.7.1 relay denied"), "{e}");
    let mut b = backend(EmailBackendCode::File, &[]);
    b.enable_email_notifications = false;
    let s = setup(b, Options::default());
    assert_eq!(
        s.dispatcher.send_test(&ch("email:ops")).await.unwrap_err(),
        DISABLED_REASON
    );
}

#[test]
fn the_mail_dir_is_under_the_data_dir() {
    let setup = EmailSetup::from_config(
        &Default::default(),
        Path::new("/etc/tykwatch"),
        Path::new("/var/lib/tykwatch"),
    );
    assert_eq!(setup.mail_dir, Path::new("/var/lib/tykwatch/mail"));
    assert_eq!(
        setup.template_dir.as_deref(),
        Some(Path::new("/etc/tykwatch/email_templates"))
    );
}

#[tokio::test]
async fn send_test_through_the_tyk_channel_uses_tyks_format() {
    let (r, url) = receiver(vec![answer(200, vec![], "")]).await;
    let s = setup(
        backend(EmailBackendCode::File, &[]),
        Options {
            monitor: MonitorHookConfig {
                method: "POST".into(),
                target_path: format!("{url}/tyk"),
                template_path: String::new(),
                header_map: BTreeMap::new(),
                event_timeout: 0,
            },
            ..Options::default()
        },
    );
    let ok = s.dispatcher.send_test(&ch("tyk")).await.unwrap();
    assert_eq!(ok, format!("HTTP 200 from POST {url}/tyk"));
    let got = &r.got()[0];
    assert_eq!(got.path, "/tyk");
    assert_eq!(got.header("user-agent"), "Tyk-Hookshot");
    let body = got.json();
    assert_eq!(body["event"], "tykwatch.test");
    assert_eq!(body["message"], "tykwatch test notification");
    assert_eq!(body["key"], "");
}

/// An SMTP server that advertises AUTH and echoes the client's AUTH line in its 535 refusal,
/// as some do.
async fn echoing_auth_server() -> SocketAddr {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut r = BufReader::new(r);
                let _ = w.write_all(b"220 localhost ESMTP\r\n").await;
                let mut line = String::new();
                loop {
                    line.clear();
                    if r.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let cmd = line.trim_end().to_string();
                    let reply = if cmd.to_ascii_uppercase().starts_with("EHLO") {
                        "250-localhost\r\n250 AUTH PLAIN LOGIN\r\n".to_string()
                    } else if cmd.to_ascii_uppercase().starts_with("AUTH") {
                        format!("535 5.7.8 authentication failed for: {cmd}\r\n")
                    } else if cmd.to_ascii_uppercase().starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        "250 ok\r\n".to_string()
                    };
                    let _ = w.write_all(reply.as_bytes()).await;
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn an_smtp_error_echoing_the_auth_line_keeps_no_credentials() {
    use base64::Engine as _;
    let addr = echoing_auth_server().await;
    let password = "Pl4in-Passw0rd-9911";
    let b = backend(
        EmailBackendCode::Smtp,
        &[
            ("SMTPAddress", addr.to_string().as_str()),
            ("SMTPUsername", "tyk@example.com"),
            ("SMTPPassword", password),
        ],
    );
    let s = setup(b, Options::default());
    s.dispatcher.run_once().await.unwrap();
    let row = s.row("email:ops");
    let err = row.last_error.unwrap_or_default();
    assert!(err.contains("535"), "the server's answer is kept: {err}");
    let b64 = base64::engine::general_purpose::STANDARD;
    for form in [
        password.to_string(),
        b64.encode(format!("\0tyk@example.com\0{password}")),
        b64.encode(password),
    ] {
        assert!(!err.contains(&form), "{form} in {err}");
    }
    assert!(err.contains("****"), "{err}");
}
