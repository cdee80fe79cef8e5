//! What the binary's commands do, as a library so tests drive the same code: resolve the
//! configuration, pick the gateway (or start the demo), and run the console or a snapshot.

pub mod check;
pub mod key;
pub mod orgs;
pub mod outbox;
pub mod store;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::clock::Clock;
use crate::config::{self, Config, Paths};
use crate::demo::DemoReceiver;
use crate::engine::{PollSettings, spawn_poller};
use crate::metrics::{Metrics, MetricsSettings};
use crate::notifier::{EventRouting, Notifier, OpenError};
use crate::notify::dispatcher::{Dispatcher, DispatcherOptions};
use crate::notify::email::EmailSetup;
use crate::orgs::OrgSource;
use crate::quota::board::{Board, BoardSettings};
use crate::quota::poller::SweepOptions;
use crate::quota::redis::RedisSource;
use crate::quota::source::Source;
use crate::runtime;
use crate::tyk::demo::{DemoGateway, DemoOptions};
use crate::tyk::gateway::{DEFAULT_MAX_BODY, Gateway, GatewaySettings};
use crate::tyk::redis::RedisSettings;
use crate::ui::theme::Theme;

/// Flags shared by every command.
#[derive(Debug, Clone, Default)]
pub struct SetupArgs {
    pub gateway: Option<String>,
    pub config: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub theme: Option<String>,
    pub demo: bool,
    pub readonly: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("{0}")]
    Config(String),
    #[error("theme: {0}")]
    Theme(String),
    #[error("{0}")]
    Gateway(String),
    #[error("cannot start the demo gateway: {0}")]
    Demo(std::io::Error),
}

/// The resolved configuration of one run.
pub struct Setup {
    pub paths: Paths,
    pub config: Config,
    pub theme: Theme,
    pub args: SetupArgs,
}

/// What quotas are read from.
#[derive(Clone)]
pub enum Reads {
    /// The REST API, one request per key.
    Rest(Gateway),
    /// `[gateway.storage]`: Tyk's Redis, with the REST API (when configured) for `/hello`.
    Redis(Box<RedisSettings>, Option<Gateway>),
}

/// The gateway a run reads: a configured one (its REST API, its Redis, or both), or the
/// embedded demo.
pub struct Target {
    pub reads: Reads,
    /// Shown in the header: the URL or Redis address, or "DEMO".
    pub label: String,
    pub demo: Option<DemoGateway>,
    /// The demo's webhook receiver (with `demo`).
    pub receiver: Option<DemoReceiver>,
}

impl Target {
    /// The Gateway API that session edits (trigger limits) go through: the REST gateway, or
    /// with the Redis source its `[gateway] url` — Redis itself is never written.
    pub fn edit_gateway(&self) -> Result<Gateway, String> {
        match &self.reads {
            Reads::Rest(g) | Reads::Redis(_, Some(g)) => Ok(g.clone()),
            Reads::Redis(..) => Err(
                "editing a key needs the Gateway API: set [gateway] url (and secret) beside                  [gateway.storage] — tykwatch never writes to Tyk's Redis"
                    .to_string(),
            ),
        }
    }
}

impl Setup {
    pub fn load(args: SetupArgs) -> Result<Setup, SetupError> {
        let paths = Paths::resolve(args.config.clone(), args.data_dir.clone())
            .map_err(|e| SetupError::Config(e.to_string()))?;
        let config =
            config::load_or_default(&paths).map_err(|e| SetupError::Config(e.to_string()))?;
        let theme_name = args
            .theme
            .clone()
            .unwrap_or_else(|| config.ui.theme.clone());
        let theme = Theme::load(&theme_name, Some(&paths.themes_dir()))
            .map_err(|e| SetupError::Theme(e.to_string()))?;
        Ok(Setup {
            paths,
            config,
            theme,
            args,
        })
    }

    /// The gateway URL to read, unless the demo is used.
    pub fn gateway_url(&self) -> Option<String> {
        if self.args.demo {
            return None;
        }
        self.args
            .gateway
            .clone()
            .or_else(|| self.config.gateway.url.clone())
            .filter(|u| !u.trim().is_empty())
    }

    /// Tyk's own variable wins over the file, as it does for the gateway.
    fn secret(&self) -> String {
        std::env::var("TYK_GW_SECRET")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| self.config.gateway.secret.expose().to_string())
    }

    pub fn gateway_settings(&self, url: String, secret: String) -> GatewaySettings {
        GatewaySettings {
            url,
            secret,
            timeout: self.config.gateway.timeout,
            concurrency: self.config.gateway.concurrency,
            max_body: DEFAULT_MAX_BODY,
        }
    }

    /// `[gateway.storage]` with `TYK_GW_STORAGE_PASSWORD` applied, unless the demo is used.
    pub fn storage_settings(&self) -> Option<RedisSettings> {
        if self.args.demo {
            return None;
        }
        let storage = self.config.gateway.storage.as_ref()?;
        let password = std::env::var("TYK_GW_STORAGE_PASSWORD")
            .ok()
            .filter(|s| !s.is_empty());
        Some(RedisSettings::from_config(storage, password))
    }

    /// Non-interactive commands (`run`, `snapshot`) read the demo only when asked to (`--demo`):
    /// a cron job under another HOME must fail, not report made-up quotas. The console keeps
    /// its DEMO default, which its header shows.
    pub fn require_gateway(&self, command: &str) -> Result<(), String> {
        if self.args.demo || self.gateway_url().is_some() || self.storage_settings().is_some() {
            return Ok(());
        }
        Err(format!(
            "{command}: no gateway configured: set [gateway] url (or [gateway.storage]) in {}, \
             pass --gateway URL, or pass --demo to read the embedded demo gateway",
            self.paths.config_file.display()
        ))
    }

    /// Connects to the configured gateway, or starts the embedded demo on 127.0.0.1.
    pub async fn connect(&self) -> Result<Target, SetupError> {
        let gateway = |url: String| {
            Gateway::new(&self.gateway_settings(url, self.secret()))
                .map_err(|e| SetupError::Gateway(e.to_string()))
        };
        let reads = match (self.storage_settings(), self.gateway_url()) {
            (Some(storage), url) => Some(Reads::Redis(
                Box::new(storage),
                url.map(gateway).transpose()?,
            )),
            (None, Some(url)) => Some(Reads::Rest(gateway(url)?)),
            (None, None) => None,
        };
        if let Some(reads) = reads {
            let label = match &reads {
                Reads::Redis(s, _) => s.label(),
                Reads::Rest(g) => g.url().to_string(),
            };
            return Ok(Target {
                reads,
                label,
                demo: None,
                receiver: None,
            });
        }
        let demo = DemoGateway::start(DemoOptions {
            port: 0,
            ..DemoOptions::default()
        })
        .await
        .map_err(SetupError::Demo)?;
        let gateway = Gateway::new(&self.gateway_settings(demo.url(), demo.secret().to_string()))
            .map_err(|e| SetupError::Gateway(e.to_string()))?;
        let receiver = DemoReceiver::start().await.map_err(SetupError::Demo)?;
        Ok(Target {
            reads: Reads::Rest(gateway),
            label: "DEMO".to_string(),
            demo: Some(demo),
            receiver: Some(receiver),
        })
    }

    /// The configuration and data dir notifications use, and whether the store starts empty.
    /// On the demo: the demo receiver, `file` e-mail and a loopback intake are added, and a
    /// `demo/` data dir of its own starts empty each run (the demo's keys are the same every
    /// run, so an old ledger would silence them; it is emptied under the data-dir lock).
    pub fn notification_setup(&self, target: &Target) -> (Config, PathBuf, bool) {
        match &target.receiver {
            Some(r) => {
                let dir = self.paths.data_dir.join("demo");
                let mut config = r.configure(&self.config);
                // The demo's ledger is its own, started afresh: never a shared database.
                config.store = crate::config::StoreConfig::default();
                // The demo receives events too (loopback only, so no secret is needed).
                if config.intake.listen.is_none() {
                    config.intake.listen = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
                }
                (config, dir, true)
            }
            None => (self.config.clone(), self.paths.data_dir.clone(), false),
        }
    }

    /// SIGHUP: the config file read again, as the running engine would use it (the demo's
    /// additions applied on the demo), and the names of the settings that changed but only
    /// apply on a restart. An invalid file is an error naming every problem.
    pub fn reload(
        &self,
        target: &Target,
        data_dir: &std::path::Path,
        running: &Config,
    ) -> Result<(crate::engine::Reload, Vec<&'static str>), String> {
        let fresh = config::load_or_default(&self.paths).map_err(|e| e.to_string())?;
        let config = match &target.receiver {
            Some(r) => {
                let mut c = r.configure(&fresh);
                c.intake.listen = running.intake.listen;
                c.store = running.store.clone();
                c
            }
            None => fresh,
        };
        let mut restart = Vec::new();
        let sections: [(&'static str, bool); 7] = [
            ("[gateway]", config.gateway != running.gateway),
            ("[intake]", config.intake != running.intake),
            ("[metrics]", config.metrics != running.metrics),
            ("[store]", config.store != running.store),
            ("[dashboard]", config.dashboard != running.dashboard),
            ("[orgs]", config.orgs != running.orgs),
            ("[ui]", config.ui != running.ui),
        ];
        for (name, changed) in sections {
            if changed {
                restart.push(name);
            }
        }
        let email = EmailSetup::from_config(&config, &self.paths.config_dir, data_dir);
        Ok((crate::engine::Reload { config, email }, restart))
    }

    /// Where organisation documents come from, as `tykwatch org` picks it: `--demo`, or no
    /// `[dashboard] url` / `[orgs] dir` on the demo, uses the demo Dashboard. The error says
    /// why a configured source cannot be used.
    pub fn org_source(&self, target: &Target) -> (Option<OrgSource>, Option<String>) {
        let configured = if self.args.demo {
            Ok(None)
        } else {
            OrgSource::configured(&self.config)
        };
        match configured {
            Ok(Some(source)) => (Some(source), None),
            Ok(None) => match target.demo.as_ref().map(OrgSource::demo) {
                Some(Ok(source)) => (Some(source), None),
                Some(Err(e)) => (None, Some(e.to_string())),
                None => (None, None),
            },
            Err(e) => (None, Some(e.to_string())),
        }
    }

    /// The quota source of `target`: Redis when `[gateway.storage]` is set (with the REST API
    /// for health), else the REST API.
    pub fn source(&self, target: &Target) -> Source {
        let hash_keys = self.config.gateway.hash_keys;
        match target.reads.clone() {
            Reads::Redis(storage, gateway) => {
                Source::Redis(Box::new(RedisSource::new(*storage, gateway, hash_keys)))
            }
            Reads::Rest(gateway) => Source::rest(gateway, self.sweep_options(), hash_keys),
        }
    }

    pub fn sweep_options(&self) -> SweepOptions {
        SweepOptions {
            concurrency: self.config.gateway.concurrency,
            ..SweepOptions::default()
        }
    }

    /// `[metrics]` with what readiness and rates need from `[gateway]`.
    pub fn metrics_settings(&self) -> MetricsSettings {
        let m = &self.config.metrics;
        let poll = self.config.gateway.poll_interval;
        MetricsSettings {
            max_series: m.max_series,
            stale_after: m
                .stale_after
                .unwrap_or_else(|| (poll * 3).max(Duration::from_secs(30))),
            rate_window: self.board_settings().rate_window,
        }
    }

    pub fn board_settings(&self) -> BoardSettings {
        BoardSettings {
            retention: self.config.gateway.history,
            poll_interval: self.config.gateway.poll_interval,
            ..BoardSettings::default()
        }
    }

    /// `global_trigger_limit` (tyk.conf) ∪ `global_trigger_limits`, when monitors are enabled.
    pub fn global_thresholds(&self) -> Vec<f64> {
        let m = &self.config.monitor;
        if !m.enable_trigger_monitors {
            return Vec::new();
        }
        let mut t: Vec<f64> = m
            .global_trigger_limits
            .iter()
            .copied()
            .chain((m.global_trigger_limit > 0.0).then_some(m.global_trigger_limit))
            .collect();
        t.sort_by(f64::total_cmp);
        t.dedup();
        t
    }
}

/// The runtime's parts for `target`, and what the consumers show about them.
pub struct Assembled {
    pub parts: runtime::Parts,
    /// The notification config (the demo's when the target is the demo).
    pub config: Config,
    pub data_dir: PathBuf,
    /// The bound address (the demo listens on port 0): what an event's webhook points at.
    pub intake_addr: Option<std::net::SocketAddr>,
    /// Where `/metrics` is served (`[metrics] listen`, the real port when it used 0).
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub orgs: Option<OrgSource>,
    /// Why organisations cannot be read, when configured but unusable.
    pub orgs_error: Option<String>,
    /// On the demo: its Dashboard's and Portal's events, sent to the intake (stops when
    /// dropped, so the consumer keeps it).
    pub demo_events: Option<crate::demo::DemoEvents>,
}

/// Why the runtime could not be assembled.
#[derive(Debug)]
pub enum AssembleError {
    /// Another tykwatch holds the data dir.
    InUse(PathBuf),
    Other(String),
}

impl std::fmt::Display for AssembleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AssembleError::InUse(dir) => OpenError::InUse(dir.clone()).fmt(f),
            AssembleError::Other(m) => f.write_str(m),
        }
    }
}

impl Setup {
    /// The poller of `target`'s source.
    pub fn poller(&self, target: &Target, clock: Arc<dyn Clock>) -> crate::engine::EngineHandle {
        spawn_poller(
            self.source(target),
            PollSettings {
                interval: self.config.gateway.poll_interval,
                max_backoff: Duration::from_secs(60),
            },
            clock,
        )
    }

    /// Everything the console and `tykwatch run` run, built the same way for both: the
    /// notifier on the data dir (warmed from its ledger), the dispatcher over the same store,
    /// the intake (its own store connection), routing, and the poller. Call inside the tokio
    /// runtime.
    pub async fn runtime_parts(
        &self,
        target: &Target,
        clock: Arc<dyn Clock>,
    ) -> Result<Assembled, AssembleError> {
        let (config, data_dir, fresh) = self.notification_setup(target);
        let (orgs, orgs_error) = self.org_source(target);
        let notifier =
            Notifier::open_with(&data_dir, &config, clock.clone(), fresh).map_err(|e| match e {
                OpenError::InUse(dir) => AssembleError::InUse(dir),
                other => AssembleError::Other(other.to_string()),
            })?;
        // Rows left by a previous run (pending, or in flight when it died) are sent first.
        let dispatcher = Dispatcher::new(
            notifier.store(),
            clock.clone(),
            &config.monitor.configuration,
            &config.webhooks,
            EmailSetup::from_config(&config, &self.paths.config_dir, &data_dir),
            DispatcherOptions {
                lease: config.store.lease,
                config_hash: crate::notify::plan::Channels::from_config(&config)
                    .config_hash(&config.monitor),
                ..DispatcherOptions::default()
            },
        )
        .map_err(|e| AssembleError::Other(e.to_string()))?;
        let intake = crate::notifier::start_intake(&config, &data_dir)
            .await
            .map_err(AssembleError::Other)?;
        let intake_addr = intake.as_ref().map(|i| i.addr);
        let routing = EventRouting::new(
            &config,
            orgs.clone(),
            notifier.store(),
            dispatcher.clone(),
            clock.clone(),
        );
        // `[metrics]` of the user's config, also on the demo.
        let (metrics, metrics_addr) = match self.config.metrics.listen {
            None => (None, None),
            Some(listen) => {
                let m = Metrics::new(self.metrics_settings(), clock.clone());
                m.attach(
                    dispatcher.clone(),
                    intake.as_ref().map(|i| i.stats.clone()),
                    &config.store,
                    &data_dir,
                )
                .map_err(AssembleError::Other)?;
                let server = crate::metrics::serve(listen, m.clone())
                    .await
                    .map_err(AssembleError::Other)?;
                (Some(m), Some(server.addr))
            }
        };
        let intake_secret =
            (!config.intake.secret.is_empty()).then(|| config.intake.secret.expose().to_string());
        let demo_events = target.demo.as_ref().zip(intake_addr).map(|(_, addr)| {
            crate::demo::DemoEvents::start(format!("http://{addr}/events"), intake_secret, 5)
        });
        Ok(Assembled {
            parts: runtime::Parts {
                poller: self.poller(target, clock),
                notifier,
                dispatcher,
                intake,
                routing,
                metrics,
            },
            config,
            data_dir,
            intake_addr,
            metrics_addr,
            orgs,
            orgs_error,
            demo_events,
        })
    }
}

/// Runs the interactive console until the user quits.
pub async fn console(setup: &Setup, target: &Target, clock: Arc<dyn Clock>) -> std::io::Result<()> {
    let a = match setup.runtime_parts(target, clock.clone()).await {
        Ok(a) => a,
        // `tykwatch run` (or another console) owns this data dir: watch without notifying,
        // rather than refusing to start next to the daemon.
        Err(AssembleError::InUse(dir)) => {
            let (config, data_dir, _) = setup.notification_setup(target);
            let (orgs, orgs_error) = setup.org_source(target);
            // Its outbox and events, read-only: what it delivered, retried, failed.
            let view =
                crate::store::Store::open_configured(&config.store, &data_dir).map(|store| {
                    runtime::StoreView {
                        store,
                        channels: crate::notify::plan::Channels::from_config(&config).ids(),
                        lease: config.store.is_shared().then_some(config.store.lease),
                        clock: clock.clone(),
                    }
                });
            let text = match &view {
                Ok(_) => format!(
                    "watching only: the tykwatch using {} notifies; its outbox and events are \
                     shown read-only (give this console its own --data-dir to notify)",
                    dir.display()
                ),
                Err(e) => format!(
                    "watching only: the tykwatch using {} notifies, and its store cannot be \
                     read: {e}",
                    dir.display()
                ),
            };
            let engine =
                runtime::spawn_watch_only(setup.poller(target, clock.clone()), text, view.ok());
            let opts = console_options(setup, target, &config, &data_dir, None, orgs, orgs_error);
            return crate::ui::run_console(engine, opts, setup.theme.clone(), clock).await;
        }
        Err(e) => return Err(std::io::Error::other(e.to_string())),
    };
    let opts = console_options(
        setup,
        target,
        &a.config,
        &a.data_dir,
        a.intake_addr,
        a.orgs,
        a.orgs_error,
    );
    let engine = runtime::spawn(a.parts, runtime::Options::console());
    crate::ui::run_console(engine, opts, setup.theme.clone(), clock).await
}

fn console_options(
    setup: &Setup,
    target: &Target,
    config: &Config,
    data_dir: &std::path::Path,
    intake_addr: Option<std::net::SocketAddr>,
    orgs: Option<OrgSource>,
    orgs_error: Option<String>,
) -> crate::ui::ConsoleOptions {
    crate::ui::ConsoleOptions {
        gateway_label: target.label.clone(),
        demo: target.demo.is_some(),
        poll_interval: setup.config.gateway.poll_interval,
        board: setup.board_settings(),
        global_thresholds: setup.global_thresholds(),
        readonly: setup.args.readonly,
        config_dir: Some(setup.paths.config_dir.clone()),
        email_from: crate::templates::from_mailbox(&setup.config.email_backend)
            .map_or_else(|e| format!("(invalid: {})", e.message), |m| m.to_string()),
        email_to: setup.config.notify.email_to.clone(),
        orgs,
        orgs_error,
        intake_url: intake_addr.map(|a| format!("http://{a}/events")),
        intake_secret: !config.intake.secret.is_empty(),
        org_email: Some(EmailSetup::from_config(
            config,
            &setup.paths.config_dir,
            data_dir,
        )),
        session_edits: target.edit_gateway(),
    }
}

/// One sweep, printed as a table or JSON lines. Exit 0 when the gateway was read, 2 otherwise.
/// Exit code of a snapshot whose sweep could not read some keys or orgs (printed on stderr):
/// the output is there but incomplete, which a script must be able to tell from success (0)
/// and from an unreadable gateway (2).
pub const EXIT_PARTIAL: u8 = 3;

/// One sweep (or, with `over`, two that far apart, so rates and times to exhaustion are
/// known), printed as a table or one JSON object per quota.
pub async fn snapshot(
    setup: &Setup,
    target: &Target,
    json: bool,
    over: Option<Duration>,
    clock: &dyn Clock,
) -> ExitCode {
    let mut source = setup.source(target);
    let mut board: Option<Board> = None;
    let mut partial = false;
    let sweeps = if over.is_some() { 2 } else { 1 };
    for n in 0..sweeps {
        if n > 0
            && let Some(d) = over
        {
            tokio::time::sleep(d).await;
        }
        let outcome = source.sweep(clock).await;
        if let Some(e) = &outcome.error {
            eprintln!("tykwatch: {e}");
            return ExitCode::from(2);
        }
        for e in &outcome.item_errors {
            eprintln!("tykwatch: warning: {e}");
        }
        // A key deleted between list and read is just gone; anything else that failed leaves
        // the picture incomplete. The last sweep decides.
        partial = !outcome.complete;
        let board =
            board.get_or_insert_with(|| Board::new(setup.board_settings(), outcome.started_ms));
        board.ingest_sweep(outcome.samples, outcome.complete);
    }
    let Some(board) = board else {
        return ExitCode::from(2);
    };
    let now_ms = clock.now_ms();
    let mut out = String::new();
    if json {
        for e in by_usage(&board) {
            let _ = writeln!(out, "{}", snapshot_line(e, now_ms));
        }
    } else {
        out = snapshot_table(&board, now_ms);
    }
    print!("{out}");
    if partial {
        eprintln!(
            "tykwatch: the sweep could not read every key or org (warnings above): exit {EXIT_PARTIAL}"
        );
        return ExitCode::from(EXIT_PARTIAL);
    }
    ExitCode::SUCCESS
}

/// One quota of `snapshot --json`: what the console's table and detail show of it.
/// `quota_id` is the ledger's id (unique and stable, never the raw key); `quota` the masked
/// name people read.
pub fn snapshot_line(e: &crate::quota::Entry, now_ms: i64) -> serde_json::Value {
    use crate::quota::model::shown_pct;
    let now_secs = now_ms.div_euclid(1000);
    json!({
        "quota_id": crate::outbox::keys::quota_key(&e.id),
        "quota": e.meta.display_id(&e.id),
        "scope": e.id.scope().as_str(),
        // The sample's own masking: a hash shows enough to tell keys apart.
        "key": e.meta.masked(),
        "alias": e.meta.alias,
        "org_id": e.meta.org_id,
        "api_id": e.meta.api_id(),
        "api_name": e.meta.api_name(),
        "quota_max": e.quota_max,
        "quota_remaining": e.quota_remaining,
        "used": e.used(),
        "usage_pct": e.usage_pct().map(shown_pct),
        "quota_renews": e.quota_renews,
        "renews_in_s": e.is_limited().then(|| e.renews_in(now_ms).max(0)),
        "rate_per_min": e.rate_per_min().map(|r| (r * 100.0).round() / 100.0),
        "exhausts_in_s": e.eta_secs(),
        "trigger_limits": e.meta.trigger_limits,
        "inactive": e.meta.inactive,
        "expired": e.meta.is_expired(now_secs),
        "expires": (e.meta.expires >= 1).then_some(e.meta.expires),
    })
}

/// Most used first, then by name: the order of the snapshot outputs.
fn by_usage(board: &Board) -> Vec<&crate::quota::Entry> {
    let mut entries: Vec<_> = board.entries().iter().collect();
    entries.sort_by(|a, b| {
        b.usage_pct()
            .unwrap_or(-1.0)
            .total_cmp(&a.usage_pct().unwrap_or(-1.0))
            .then_with(|| a.meta.label().cmp(b.meta.label()))
    });
    entries
}

/// Plain-text table: what a cron job mails or a person greps.
pub fn snapshot_table(board: &Board, now_ms: i64) -> String {
    let entries = by_usage(board);
    // Wide enough for a murmur64 hash (16) or an abbreviated sha256 one, shown as they are.
    let key_w = entries
        .iter()
        .map(|e| e.meta.masked().chars().count())
        .max()
        .unwrap_or(0)
        .max(10);
    let mut out = format!(
        "{:<2} {:<24} {:<key_w$} {:<24} {:<16} {:>7} {:>21} {:>10} {:>12}  STATE\n",
        "", "ALIAS", "KEY", "ORG", "SCOPE", "USED%", "USED/MAX", "REMAINING", "RENEWS IN"
    );
    for e in entries {
        let scope = match e.id.scope() {
            crate::quota::Scope::Api => e.meta.api_name(),
            s => s.as_str(),
        };
        let pct = e
            .usage_pct()
            .map(|p| format!("{p:.1}"))
            .unwrap_or_else(|| "-".into());
        let used_max = if e.is_limited() {
            format!("{}/{}", e.used(), e.quota_max)
        } else if e.quota_max < 0 {
            "unlimited".to_string()
        } else {
            "no quota".to_string()
        };
        let renews = e.renews_in(now_ms);
        let renews = if !e.is_limited() {
            "-".to_string()
        } else if renews <= 0 {
            "on next req".to_string()
        } else {
            crate::ui::format::duration(renews)
        };
        let state = if e.meta.inactive {
            "inactive"
        } else if e.meta.is_expired(now_ms.div_euclid(1000)) {
            "expired"
        } else {
            ""
        };
        let line = format!(
            "{:<2} {:<24} {:<key_w$} {:<24} {:<16} {:>7} {:>21} {:>10} {:>12}  {state}",
            e.band().glyph(),
            clip(&plain(&e.meta.alias), 24),
            e.meta.masked(),
            clip(&e.meta.org_id, 24),
            clip(&plain(scope), 16),
            pct,
            used_max,
            if e.is_limited() {
                e.quota_remaining.to_string()
            } else {
                "-".into()
            },
            renews
        );
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

/// Control characters never reach a terminal.
fn plain(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n - 1).collect();
        t.push('…');
        t
    }
}
