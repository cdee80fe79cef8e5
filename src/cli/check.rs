//! `tykwatch check`: the configuration (every problem at once, with file:line), then each
//! configured counterpart as `tykwatch run` would use it — the gateway's `/hello` and one key,
//! Tyk's Redis, the Dashboard, the e-mail backend (SMTP: connect, EHLO, STARTTLS, AUTH, no
//! message), each webhook (a HEAD request, or a real test notification with `--send-test`),
//! the listen addresses and the data dir. Every check is bounded in time, so a server that
//! hangs costs one timeout, not the command.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use super::{Setup, SetupArgs};
use crate::clock::{Clock, SystemClock};
use crate::config::EmailBackendCode;
use crate::notify::dispatcher::{Dispatcher, DispatcherOptions};
use crate::notify::email::EmailSetup;
use crate::notify::email::smtp::SmtpTarget;
use crate::orgs::OrgSource;
use crate::outbox::ChannelId;
use crate::store::{DB_FILE, Peers, Store};
use crate::tyk::gateway::Gateway;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but something deserves a look (a listen port already taken, …).
    Warn,
    /// Not configured, or not checkable without sending.
    Skip,
    Fail,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Skip => "skip",
            Status::Fail => "FAIL",
        }
    }
}

/// One line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub check: String,
    pub target: String,
    pub status: Status,
    /// What was found, or what to fix.
    pub detail: String,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct CheckOptions {
    pub json: bool,
    /// Send a `tykwatch.test` notification to every channel instead of probing it.
    pub send_test: bool,
}

struct Report(Vec<Outcome>);

impl Report {
    fn add(
        &mut self,
        check: &str,
        target: impl Into<String>,
        status: Status,
        detail: impl Into<String>,
    ) {
        self.0.push(Outcome {
            check: check.to_owned(),
            target: target.into(),
            status,
            detail: detail.into(),
        });
    }
}

/// How long one check may take: the gateway timeout, between 1 and 30 s.
fn bound(setup: &Setup) -> Duration {
    setup
        .config
        .gateway
        .timeout
        .clamp(Duration::from_secs(1), Duration::from_secs(30))
}

async fn within<T>(
    limit: Duration,
    f: impl Future<Output = Result<T, String>>,
) -> Result<T, String> {
    match tokio::time::timeout(limit, f).await {
        Ok(r) => r,
        Err(_) => Err(format!("no answer within {} s", limit.as_secs())),
    }
}

/// Runs every check; exit 0 when nothing failed, 1 when something did.
pub async fn run(args: SetupArgs, opts: CheckOptions, out: &mut dyn Write) -> ExitCode {
    let outcomes = match Setup::load(args) {
        Ok(setup) => check_all(&setup, opts).await,
        Err(e) => vec![Outcome {
            check: "config".into(),
            target: String::new(),
            status: Status::Fail,
            detail: e.to_string(),
        }],
    };
    print(&outcomes, opts.json, out);
    if outcomes.iter().any(|o| o.status == Status::Fail) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print(outcomes: &[Outcome], json: bool, out: &mut dyn Write) {
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string(outcomes).unwrap_or_default()
        );
        return;
    }
    let cw = outcomes
        .iter()
        .map(|o| o.check.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    let tw = outcomes
        .iter()
        .map(|o| o.target.chars().count())
        .max()
        .unwrap_or(6)
        .clamp(6, 48);
    let _ = writeln!(
        out,
        "{:<cw$}  {:<tw$}  {:<6} DETAIL",
        "CHECK", "TARGET", "RESULT"
    );
    for o in outcomes {
        let mut lines = o.detail.lines();
        let first = lines.next().unwrap_or_default();
        let _ = writeln!(
            out,
            "{:<cw$}  {:<tw$}  {:<6} {first}",
            o.check,
            o.target,
            o.status.label()
        );
        for l in lines {
            let _ = writeln!(out, "{:<cw$}  {:<tw$}  {:<6} {l}", "", "", "");
        }
    }
    let failed = outcomes.iter().filter(|o| o.status == Status::Fail).count();
    let _ = writeln!(
        out,
        "{}",
        if failed == 0 {
            "everything configured works".to_owned()
        } else {
            format!("{failed} failed: fix them and run `tykwatch check` again")
        }
    );
}

async fn check_all(setup: &Setup, opts: CheckOptions) -> Vec<Outcome> {
    let mut r = Report(Vec::new());
    let file = setup.paths.config_file.display().to_string();
    if setup.paths.config_file.exists() {
        r.add("config", &file, Status::Ok, "valid");
    } else {
        r.add("config", &file, Status::Skip, "no file: the defaults");
    }
    let limit = bound(setup);
    let url = setup.gateway_url();
    let storage = setup.storage_settings();
    if url.is_none() && storage.is_none() {
        r.add(
            "gateway",
            "",
            Status::Fail,
            "none configured: set [gateway] url (and secret), or [gateway.storage] for Tyk's Redis",
        );
    }
    if let Some(url) = url {
        gateway(&mut r, setup, &url, limit).await;
    }
    if let Some(storage) = storage {
        let target = storage.label();
        match within(limit, async {
            let mut c = storage.connect().await.map_err(|e| e.to_string())?;
            c.ping().await.map_err(|e| format!("PING: {e}"))?;
            Ok(())
        })
        .await
        {
            Ok(()) => r.add(
                "redis",
                target,
                Status::Ok,
                "connected, PING answered (read-only use)",
            ),
            Err(e) => r.add("redis", target, Status::Fail, e),
        }
    }
    dashboard(&mut r, setup, limit).await;
    channels(&mut r, setup, opts, limit).await;
    listeners(&mut r, setup).await;
    data_dir(&mut r, &setup.paths.data_dir);
    if setup.config.store.is_shared() {
        shared_store(&mut r, &setup.config.store, limit).await;
    }
    r.0
}

/// `[store] url`: the database answers, takes a write, and which instances it has heard from
/// within two leases (a different settings hash among them is a warning: they would notify
/// different thresholds or channels).
async fn shared_store(r: &mut Report, config: &crate::config::StoreConfig, limit: Duration) {
    let c = config.clone();
    let now = crate::clock::system_now_ms();
    let found = within(limit, async move {
        tokio::task::spawn_blocking(move || {
            let s = Store::connect(&c)?;
            s.check_writable()?;
            Ok::<_, crate::store::StoreError>((s.describe(), Peers::read(&s, now, c.lease)?))
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    })
    .await;
    let target = crate::store::postgres::mask_url(config.url.expose());
    match found {
        Ok((target, peers)) => {
            let who: Vec<String> = peers
                .live
                .iter()
                .map(|i| format!("{} (settings {})", i.id, i.config_hash))
                .collect();
            let detail = format!(
                "takes a write; {} instance(s) running{}{}",
                peers.live.len(),
                if who.is_empty() { "" } else { ": " },
                who.join(", ")
            );
            if peers.disagree() {
                r.add(
                    "store",
                    target,
                    Status::Warn,
                    format!("{detail}; their [monitor] settings or channels differ"),
                );
            } else {
                r.add("store", target, Status::Ok, detail);
            }
        }
        Err(e) => r.add("store", target, Status::Fail, e),
    }
}

async fn gateway(r: &mut Report, setup: &Setup, url: &str, limit: Duration) {
    let gw = match Gateway::new(&setup.gateway_settings(url.to_owned(), setup.secret())) {
        Ok(g) => g,
        Err(e) => return r.add("gateway", url, Status::Fail, e.to_string()),
    };
    match within(limit, async { gw.hello().await.map_err(|e| e.to_string()) }).await {
        Ok(h) => {
            let status = if h.status == "pass" {
                Status::Ok
            } else {
                Status::Warn
            };
            r.add(
                "gateway /hello",
                url,
                status,
                format!("Tyk {} ({})", h.version, h.status),
            );
        }
        Err(e) => return r.add("gateway /hello", url, Status::Fail, e),
    }
    let one_key = within(limit, async {
        let keys = gw.list_keys(None).await.map_err(|e| e.to_string())?;
        let Some(first) = keys.first() else {
            return Ok("the gateway has no keys".to_owned());
        };
        let read = match setup.config.gateway.hash_keys {
            Some(true) => gw.get_key_by_hash(first).await,
            Some(false) => gw.get_key(first).await,
            // Not configured: the listing may hold hashes (hash_keys on the gateway), as the
            // sweep's own probe allows for.
            None => match gw.get_key(first).await {
                Ok(s) => Ok(s),
                Err(_) => gw.get_key_by_hash(first).await,
            },
        };
        read.map_err(|e| format!("listed {} keys; reading one: {e}", keys.len()))?;
        Ok(format!("listed {} keys, read one", keys.len()))
    })
    .await;
    match one_key {
        Ok(d) => r.add("gateway keys", url, Status::Ok, d),
        Err(e) => r.add("gateway keys", url, Status::Fail, e),
    }
}

async fn dashboard(r: &mut Report, setup: &Setup, limit: Duration) {
    let source = match OrgSource::configured(&setup.config) {
        Ok(Some(s)) => s,
        Ok(None) => return,
        Err(e) => return r.add("dashboard", "", Status::Fail, e.to_string()),
    };
    let label = source.label();
    match within(limit, async {
        source.list().await.map_err(|e| e.to_string())
    })
    .await
    {
        Ok(list) => r.add(
            "dashboard",
            label,
            Status::Ok,
            format!("{} organisations", list.orgs.len()),
        ),
        Err(e) => r.add("dashboard", label, Status::Fail, e),
    }
}

/// Webhooks by a HEAD request (any HTTP answer means reachable); e-mail by the backend's own
/// handshake. With `--send-test`, a test notification to every channel through the
/// dispatcher's own test send.
async fn channels(r: &mut Report, setup: &Setup, opts: CheckOptions, limit: Duration) {
    let c = &setup.config;
    let email = EmailSetup::from_config(c, &setup.paths.config_dir, &setup.paths.data_dir);
    if opts.send_test {
        return send_tests(r, setup, email, limit).await;
    }
    let client = match crate::outbound::client(limit).build() {
        Ok(c) => c,
        Err(e) => return r.add("webhooks", "", Status::Fail, e.to_string()),
    };
    let mut hooks: Vec<(String, String)> = c
        .webhooks
        .iter()
        .filter(|w| w.enabled)
        .map(|w| (format!("webhook {}", w.name), w.url.clone()))
        .collect();
    if !c.monitor.configuration.target_path.is_empty() {
        hooks.insert(
            0,
            (
                "tyk webhook".into(),
                c.monitor.configuration.target_path.clone(),
            ),
        );
    }
    for (name, url) in hooks {
        let probe = within(limit, async {
            client
                .head(&url)
                .send()
                .await
                .map_err(|e| crate::errors::chain(&e))
        })
        .await;
        match probe {
            Ok(resp) => r.add(
                &name,
                &url,
                Status::Ok,
                format!(
                    "reachable (HEAD → {}); --send-test sends a real one",
                    resp.status().as_u16()
                ),
            ),
            Err(e) => r.add(&name, &url, Status::Fail, e),
        }
    }
    if !email.enabled() {
        return;
    }
    let b = &email.backend;
    let smtp = match b.code {
        EmailBackendCode::Smtp => Some(SmtpTarget::from_settings(&b.settings)),
        EmailBackendCode::Amazonses => Some(SmtpTarget::ses(&b.settings)),
        EmailBackendCode::File => {
            return r.add(
                "email",
                format!("file {}", email.mail_dir.display()),
                Status::Ok,
                "messages are written as .eml files",
            );
        }
        _ => None,
    };
    match smtp {
        Some(Ok(t)) => {
            let summary = t.summary();
            match within(limit.saturating_mul(2), t.check(limit)).await {
                Ok(d) => r.add("email", summary, Status::Ok, d),
                Err(e) => r.add("email", summary, Status::Fail, e),
            }
        }
        Some(Err(e)) => r.add("email", b.code.to_string(), Status::Fail, e),
        None => r.add(
            "email",
            b.code.to_string(),
            Status::Skip,
            "an HTTP API: not checkable without sending (--send-test sends a test message)",
        ),
    }
}

async fn send_tests(r: &mut Report, setup: &Setup, email: EmailSetup, limit: Duration) {
    // The dispatcher's own test send, on a throw-away store: nothing is queued in the data dir.
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => return r.add("send test", "", Status::Fail, e.to_string()),
    };
    let store = match Store::open(dir.path().join(DB_FILE)) {
        Ok(s) => s,
        Err(e) => return r.add("send test", "", Status::Fail, e.to_string()),
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let c = &setup.config;
    let d = match Dispatcher::new(
        Arc::new(Mutex::new(store)),
        clock,
        &c.monitor.configuration,
        &c.webhooks,
        email,
        DispatcherOptions {
            timeout: limit,
            ..DispatcherOptions::default()
        },
    ) {
        Ok(d) => d,
        Err(e) => return r.add("send test", "", Status::Fail, e.to_string()),
    };
    let channels: Vec<ChannelId> = crate::notify::plan::Channels::from_config(c).ids();
    if channels.is_empty() {
        r.add("send test", "", Status::Skip, "no channel is configured");
    }
    for ch in channels {
        let name = format!("send test {ch}");
        match within(limit.saturating_mul(2), d.send_test(&ch)).await {
            Ok(detail) => r.add(&name, "", Status::Ok, detail),
            Err(e) => r.add(&name, "", Status::Fail, e),
        }
    }
}

/// The intake's and the metrics' listen addresses can be bound (a running tykwatch holds them:
/// a warning, not a failure).
async fn listeners(r: &mut Report, setup: &Setup) {
    let c = &setup.config;
    for (name, addr) in [
        ("[intake] listen", c.intake.listen),
        ("[metrics] listen", c.metrics.listen),
    ] {
        let Some(addr) = addr else { continue };
        match tokio::net::TcpListener::bind(addr).await {
            Ok(_) => r.add(name, addr.to_string(), Status::Ok, "free"),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => r.add(
                name,
                addr.to_string(),
                Status::Warn,
                "in use (by a running tykwatch? otherwise pick another port)",
            ),
            Err(e) => r.add(name, addr.to_string(), Status::Fail, e.to_string()),
        }
    }
}

/// The data dir's database opens and takes a write; a dir where tykwatch never ran is only
/// checked for being creatable, and nothing is created.
fn data_dir(r: &mut Report, dir: &Path) {
    let db = dir.join(DB_FILE);
    let target = dir.display().to_string();
    if !db.exists() {
        let mut probe = dir.to_path_buf();
        while !probe.exists() {
            match probe.parent() {
                Some(p) if !p.as_os_str().is_empty() => probe = p.to_path_buf(),
                _ => break,
            }
        }
        let writable = std::fs::metadata(&probe)
            .map(|m| m.is_dir() && !m.permissions().readonly())
            .unwrap_or(false);
        return if writable {
            r.add(
                "data dir",
                target,
                Status::Ok,
                "not created yet; will be on the first run",
            )
        } else {
            r.add(
                "data dir",
                target,
                Status::Fail,
                format!("cannot be created under {}", probe.display()),
            )
        };
    }
    match Store::open(&db).and_then(|s| s.check_writable()) {
        Ok(()) => r.add(
            "data dir",
            target,
            Status::Ok,
            "database opens and takes a write",
        ),
        Err(e) => r.add("data dir", target, Status::Fail, e.to_string()),
    }
}
