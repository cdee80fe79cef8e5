//! The `tykwatch` binary: console (default), snapshot, demo-gateway.

// The allocator the benchmarks measure (see Cargo.toml): far less fragmentation than glibc's
// malloc with a million quotas.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use tykwatch::cli::orgs::{self as orgs_cli, OrgCommand};
use tykwatch::cli::outbox::{self as outbox_cli, OutboxCommand};
use tykwatch::cli::{self, Target};
use tykwatch::clock::{Clock, SystemClock};
use tykwatch::outbox::{ChannelId, OutboxState};
use tykwatch::templates::cli::{self as tcli, MailOptions, PreviewFormat};
use tykwatch::templates::{self, TemplateError, Templates};
use tykwatch::tyk::demo::{DemoGateway, DemoOptions};

/// Live quota console and threshold notifications for the Tyk API Gateway.
///
/// With no gateway configured, the console runs on an embedded demo gateway; `snapshot`, `run`
/// and `org` need `--demo` for that.
#[derive(Debug, Parser)]
#[command(name = "tykwatch", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Args)]
struct Global {
    /// Tyk Gateway URL (overrides [gateway] url), e.g. http://localhost:8080
    #[arg(long, global = true, value_name = "URL")]
    gateway: Option<String>,
    /// Configuration file [default: the platform config dir's tykwatch/config.toml]
    #[arg(long, global = true, env = "TYKWATCH_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    /// Data directory (SQLite outbox, demo e-mail) [default: the platform data dir]
    #[arg(long, global = true, env = "TYKWATCH_DATA_DIR", value_name = "PATH")]
    data_dir: Option<PathBuf>,
    /// Colour theme: default, light, high-contrast, or a file in <config dir>/themes/
    #[arg(long, global = true, value_name = "NAME")]
    theme: Option<String>,
    /// Use the embedded demo gateway (the console's default when none is configured; snapshot, run and org need it said)
    #[arg(long, global = true)]
    demo: bool,
    /// Disable every command that modifies anything
    #[arg(long, global = true)]
    readonly: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Open the console (the default)
    Console,
    /// Run the engine headless: one JSON line per event on stdout, logs on stderr;
    /// SIGTERM/SIGINT stop it, SIGHUP reloads the config
    Run {
        /// tykwatch's log level: error, warn, info, debug, trace [default: RUST_LOG, else info]
        #[arg(long, value_name = "LEVEL")]
        log_level: Option<String>,
        /// Logs as text or one JSON object per line
        #[arg(long, value_name = "FORMAT", default_value = "human")]
        log_format: tykwatch::logging::LogFormat,
    },
    /// Sweep the gateway once, print every quota and exit (for scripts and cron jobs)
    Snapshot {
        /// One JSON object per line per quota instead of a table
        #[arg(long)]
        json: bool,
        /// Read twice, this long apart (e.g. 30s), so rates and times to exhaustion are known
        #[arg(long, value_name = "DURATION", value_parser = parse_age)]
        over: Option<Duration>,
    },
    /// Render an e-mail template with sample (or given) data
    Preview {
        /// Template name, e.g. quota_threshold (see `tykwatch templates list`)
        name: String,
        /// JSON file with the template data [default: the template's shipped sample]
        #[arg(long, value_name = "FILE")]
        data: Option<PathBuf>,
        /// Output: text, html, or eml (the full message as it would be sent)
        #[arg(long, value_enum, default_value_t = PreviewFormat::Text)]
        format: PreviewFormat,
    },
    /// List, check or import e-mail templates
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
    /// List, show or edit organisations' event_options (Dashboard, [orgs] dir, or the demo)
    Org {
        #[command(subcommand)]
        command: OrgSubcommand,
    },
    /// Edit a key's monitor at the gateway (PUT with suppress_reset=1: the quota is kept)
    Key {
        #[command(subcommand)]
        command: KeySubcommand,
    },
    /// Validate the config, then try every configured counterpart; exit 1 when one fails
    Check {
        /// One JSON array of results instead of a table
        #[arg(long)]
        json: bool,
        /// Send a test notification to every channel instead of probing it (HEAD, SMTP AUTH)
        #[arg(long)]
        send_test: bool,
    },
    /// List, show, resend or purge notifications in the outbox (works while `run` is running)
    Outbox {
        #[command(subcommand)]
        command: OutboxSubcommand,
    },
    /// Move the ledger and outbox between stores
    Store {
        #[command(subcommand)]
        command: StoreSubcommand,
    },
    /// Run the embedded demo gateway on its own, for curl or another tykwatch
    DemoGateway {
        /// Port on 127.0.0.1 (0 picks a free one)
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Secret expected in x-tyk-authorization
        #[arg(
            long,
            env = "TYK_GW_SECRET",
            hide_env_values = true,
            default_value = "tykwatch-demo"
        )]
        secret: String,
        /// Synthetic keys to add to the built-in population
        #[arg(long, default_value_t = 0)]
        extra_keys: usize,
        /// Simulated-traffic speed multiplier
        #[arg(long, default_value_t = 1.0)]
        speed: f64,
        /// Also write the demo's state into the Redis on this port, in Tyk's layout (as a
        /// gateway with hash_keys: true), to try [gateway.storage] on the demo
        #[arg(long)]
        redis_port: Option<u16>,
        /// Host of that Redis
        #[arg(long, default_value = "127.0.0.1")]
        redis_host: String,
    },
}

#[derive(Debug, Subcommand)]
enum StoreSubcommand {
    /// Copy a data dir's SQLite ledger, outbox and events into an empty PostgreSQL database
    /// (stop the instance first); the password comes from [store] password or PGPASSWORD
    Migrate {
        /// The data dir of the instance to copy
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
        /// postgres://user@host:port/database?sslmode=…
        #[arg(long, value_name = "URL")]
        to: String,
    },
}

#[derive(Debug, Subcommand)]
enum OrgSubcommand {
    /// Every organisation and the events it has set up
    List {
        /// One JSON object per line (id, owner_name, event_options)
        #[arg(long)]
        json: bool,
    },
    /// Print an organisation's whole document as JSON
    Get {
        /// Organisation id
        id: String,
    },
    /// Set event_options fields (e.g. key_event.webhook=URL key_event.redis=true), print the
    /// changes and save, unless the document changed since it was read
    Set {
        /// Organisation id
        id: String,
        /// EVENT.FIELD=VALUE with FIELD one of webhook, email (comma-separated list), redis
        #[arg(required = true, value_name = "EVENT.FIELD=VALUE")]
        assignments: Vec<String>,
        /// Print the changes without saving
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Debug, Subcommand)]
enum KeySubcommand {
    /// Set a key's monitor.trigger_limits (percentages, e.g. 95,80,50; "none" clears them),
    /// print the change and save the whole session back without resetting its quota, unless
    /// it changed since it was read
    SetTriggers {
        /// The key (its token; with --hashed its hash; with --org an organisation id)
        key: String,
        /// Percentages above 0 and at most 100, comma-separated; stored descending
        #[arg(value_name = "LIMITS", allow_hyphen_values = true)]
        limits: String,
        /// KEY is the hash a gateway with hash_keys stores it under (sent as ?hashed=true)
        #[arg(long, conflicts_with = "org")]
        hashed: bool,
        /// KEY is an organisation id: its org quota's monitor (PUT /tyk/org/keys/{org})
        #[arg(long)]
        org: bool,
        /// Print the change without saving
        #[arg(long)]
        dry_run: bool,
    },
}

impl From<&OrgSubcommand> for OrgCommand {
    fn from(c: &OrgSubcommand) -> Self {
        match c {
            OrgSubcommand::List { json } => OrgCommand::List { json: *json },
            OrgSubcommand::Get { id } => OrgCommand::Get { id: id.clone() },
            OrgSubcommand::Set {
                id,
                assignments,
                dry_run,
            } => OrgCommand::Set {
                id: id.clone(),
                assignments: assignments.clone(),
                dry_run: *dry_run,
            },
        }
    }
}

/// Which rows: shared by `outbox list` and `outbox retry-failed`.
#[derive(Debug, Args)]
struct OutboxSelect {
    /// Only rows of this channel: tyk, webhook:NAME, email:ops, email:org, email:developer, …
    #[arg(long, value_parser = parse_channel)]
    channel: Option<ChannelId>,
    /// Only rows of this organisation (org_id)
    #[arg(long)]
    org: Option<String>,
    /// Only rows created at least this long ago (e.g. 1h, 7d)
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    older_than: Option<Duration>,
    /// Only rows created at most this long ago (e.g. 15m, 1d)
    #[arg(long, value_name = "AGE", value_parser = parse_age)]
    newer_than: Option<Duration>,
}

impl OutboxSelect {
    fn selection(&self, state: Option<OutboxState>) -> outbox_cli::Selection {
        outbox_cli::Selection {
            state,
            channel: self.channel.clone(),
            org: self.org.clone(),
            older_than: self.older_than,
            newer_than: self.newer_than,
        }
    }
}

#[derive(Debug, Subcommand)]
enum OutboxSubcommand {
    /// Rows, newest first: state, channel, attempts, age, what, last status or error, id
    List {
        /// Only rows in this state: pending, inflight, delivered, failed, dead
        #[arg(long, value_parser = parse_state)]
        state: Option<OutboxState>,
        #[command(flatten)]
        select: OutboxSelect,
        /// Most rows to print
        #[arg(long, default_value_t = outbox_cli::DEFAULT_LIMIT)]
        limit: usize,
        /// One JSON object per line per row
        #[arg(long)]
        json: bool,
    },
    /// One row in full, its payload included (keys masked)
    Show {
        /// The row's id (`outbox list` prints it; it is the webhook-id / Message-ID)
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Send failed or dead rows again (pending now, attempts reset)
    Resend {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Send every failed row of the selection again
    RetryFailed {
        #[command(flatten)]
        select: OutboxSelect,
        /// Dead rows too (given up on after every retry)
        #[arg(long)]
        dead: bool,
        /// Print what would be queued, change nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Delete old rows (the ledger keeps their crossings: nothing fires again)
    Purge {
        /// Rows created more than this long ago (e.g. 30d)
        #[arg(long, value_name = "AGE", value_parser = parse_age)]
        older_than: Duration,
        /// delivered, failed or dead
        #[arg(long, value_parser = parse_state, default_value = "delivered")]
        state: OutboxState,
        /// Print how many would be deleted, change nothing
        #[arg(long)]
        dry_run: bool,
    },
}

impl From<&OutboxSubcommand> for OutboxCommand {
    fn from(c: &OutboxSubcommand) -> Self {
        match c {
            OutboxSubcommand::List {
                state,
                select,
                limit,
                json,
            } => OutboxCommand::List {
                select: select.selection(*state),
                limit: *limit,
                json: *json,
            },
            OutboxSubcommand::Show { id, json } => OutboxCommand::Show {
                id: id.clone(),
                json: *json,
            },
            OutboxSubcommand::Resend { ids } => OutboxCommand::Resend { ids: ids.clone() },
            OutboxSubcommand::RetryFailed {
                select,
                dead,
                dry_run,
            } => OutboxCommand::RetryFailed {
                select: select.selection(None),
                dead: *dead,
                dry_run: *dry_run,
            },
            OutboxSubcommand::Purge {
                older_than,
                state,
                dry_run,
            } => OutboxCommand::Purge {
                older_than: *older_than,
                state: *state,
                dry_run: *dry_run,
            },
        }
    }
}

fn parse_channel(s: &str) -> Result<ChannelId, String> {
    s.parse::<ChannelId>().map_err(|e| e.to_string())
}

fn parse_state(s: &str) -> Result<OutboxState, String> {
    OutboxState::parse(s)
        .ok_or_else(|| format!("{s:?}: one of pending, inflight, delivered, failed, dead"))
}

fn parse_age(s: &str) -> Result<Duration, String> {
    tykwatch::config::parse_duration(s)
}

#[derive(Debug, Subcommand)]
enum TemplatesCommand {
    /// List the templates (shipped and user overrides) and their samples
    List,
    /// Render every template with every sample; fail on any error
    Check,
    /// Write a shipped template's files (subject, text, HTML, samples) to edit them
    Export {
        /// Template name (see `tykwatch templates list`), or `layout` for the HTML layout
        name: String,
        /// Directory to write to [default: the user template directory, <config dir>/email_templates]
        #[arg(long, value_name = "DIR")]
        to: Option<PathBuf>,
        /// Replace files that exist (without it nothing is written when any exists)
        #[arg(long)]
        force: bool,
    },
    /// Convert a Go (Tyk portal) template to tykwatch's syntax, listing what could not be converted
    ImportGo {
        /// The Go template file; a Tyk Portal mailer name (welcome_dev.html.tmpl,
        /// reset_password.text.tmpl, approve, reject, submitted) or NAME.text.tmpl / .html.tmpl /
        /// .subject names the template it becomes and the part
        file: PathBuf,
        /// The template it becomes (its variables are mapped to that template's data and the
        /// result is checked with its samples) [default: from the file name]
        #[arg(long = "as", value_name = "NAME")]
        target: Option<String>,
        /// Check with this sample only (NAME or NAME.VARIANT) [default: every sample of the template]
        #[arg(long, value_name = "ID")]
        sample: Option<String>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tykwatch: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("tykwatch: {message}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    let g = cli.global;
    if let Some(Command::DemoGateway {
        port,
        secret,
        extra_keys,
        speed,
        redis_port,
        redis_host,
    }) = cli.command
    {
        let redis = redis_port.map(|p| format!("redis://{redis_host}:{p}/"));
        let opts = DemoOptions {
            port,
            secret,
            extra_keys,
            speed,
            redis: redis.clone(),
            ..DemoOptions::default()
        };
        // Bound before anything is printed: the line names the port really bound (`--port 0`),
        // and "address in use" comes before any claim to listen.
        let gw = DemoGateway::start(opts)
            .await
            .map_err(|e| format!("demo gateway: cannot listen on 127.0.0.1:{port}: {e}"))?;
        println!(
            "demo gateway on {} (x-tyk-authorization: the --secret / TYK_GW_SECRET value); Ctrl-C stops it",
            gw.url()
        );
        if let Some(url) = &redis {
            println!(
                "writing its state to {url} as Tyk does with hash_keys: true (read it with [gateway.storage] and hash_keys = true)"
            );
        }
        let _ = std::io::stdout().flush();
        wait_for_stop().await;
        gw.shutdown().await;
        return Ok(ExitCode::SUCCESS);
    }
    let args = cli::SetupArgs {
        gateway: g.gateway,
        config: g.config,
        data_dir: g.data_dir,
        theme: g.theme,
        demo: g.demo,
        readonly: g.readonly,
    };
    if let Some(Command::Check { json, send_test }) = cli.command {
        // The config's problems are part of the report, not an error before it.
        let opts = cli::check::CheckOptions { json, send_test };
        let mut out = std::io::stdout().lock();
        return Ok(cli::check::run(args, opts, &mut out).await);
    }
    let setup = cli::Setup::load(args).map_err(|e| e.to_string())?;
    match &cli.command {
        Some(Command::Org { command }) => {
            let mut out = std::io::stdout().lock();
            let mut err = std::io::stderr();
            return Ok(orgs_cli::run(&setup, &command.into(), &mut out, &mut err).await);
        }
        Some(Command::Key {
            command:
                KeySubcommand::SetTriggers {
                    key,
                    limits,
                    hashed,
                    org,
                    dry_run,
                },
        }) => {
            let cmd = tykwatch::cli::key::SetTriggers {
                id: key.clone(),
                limits: limits.clone(),
                hashed: *hashed,
                org: *org,
                dry_run: *dry_run,
            };
            let mut out = std::io::stdout().lock();
            let mut err = std::io::stderr();
            return Ok(tykwatch::cli::key::set_triggers(&setup, &cmd, &mut out, &mut err).await);
        }
        Some(Command::Store {
            command: StoreSubcommand::Migrate { from, to },
        }) => {
            let mut out = std::io::stdout().lock();
            let mut err = std::io::stderr();
            return Ok(tykwatch::cli::store::migrate(
                &setup, from, to, &mut out, &mut err,
            ));
        }
        Some(Command::Outbox { command }) => {
            let mut out = std::io::stdout().lock();
            let mut err = std::io::stderr();
            return Ok(outbox_cli::run(
                &setup,
                &command.into(),
                &SystemClock,
                &mut out,
                &mut err,
            ));
        }
        Some(Command::Preview { name, data, format }) => {
            return templates_command(&setup, |t, mail, out| {
                tcli::preview(t, name, data.as_deref(), *format, mail, out)
            });
        }
        Some(Command::Templates {
            command: TemplatesCommand::Export { name, to, force },
        }) => {
            let dir = to
                .clone()
                .unwrap_or_else(|| templates::user_dir(&setup.paths.config_dir));
            let mut out = std::io::stdout().lock();
            return match templates::export::export(name, &dir, *force, &mut out) {
                Ok(_) => Ok(ExitCode::SUCCESS),
                Err(e) => {
                    eprintln!("tykwatch: {e}");
                    Ok(ExitCode::from(1))
                }
            };
        }
        Some(Command::Templates { command }) => {
            return templates_command(&setup, |t, mail, out| match command {
                TemplatesCommand::List => tcli::list(t, out),
                TemplatesCommand::Check => tcli::check(t, mail, out),
                TemplatesCommand::ImportGo {
                    file,
                    target,
                    sample,
                } => tcli::import_go(
                    t,
                    file,
                    tcli::ImportOptions {
                        target: target.as_deref(),
                        sample: sample.as_deref(),
                    },
                    out,
                    &mut std::io::stderr(),
                ),
                // Handled above: it needs no loaded set.
                TemplatesCommand::Export { .. } => Ok(()),
            });
        }
        _ => {}
    }
    match &cli.command {
        Some(Command::Run { .. }) => setup.require_gateway("run")?,
        Some(Command::Snapshot { .. }) => setup.require_gateway("snapshot")?,
        _ => {
            // Checked before the terminal is touched: no raw-mode escape sequence lands in a
            // pipe or a log, and the message says what to run instead of "os error 6".
            use std::io::IsTerminal;
            if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
                return Err(
                    "the console needs a terminal; use `tykwatch run` (headless) or \
                     `tykwatch snapshot` (one reading), or see `tykwatch --help`"
                        .into(),
                );
            }
        }
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let target = setup.connect().await.map_err(|e| e.to_string())?;
    match cli.command {
        Some(Command::Run {
            log_level,
            log_format,
        }) => {
            tykwatch::logging::init(log_level.as_deref(), log_format)?;
            let result = tykwatch::headless::run(&setup, &target, clock).await;
            shutdown(target).await;
            result.map(|_| ExitCode::SUCCESS)
        }
        Some(Command::Snapshot { json, over }) => {
            let code = cli::snapshot(&setup, &target, json, over, clock.as_ref()).await;
            shutdown(target).await;
            Ok(code)
        }
        _ => {
            let result = cli::console(&setup, &target, clock).await;
            shutdown(target).await;
            result.map(|_| ExitCode::SUCCESS).map_err(|e| e.to_string())
        }
    }
}

/// Loads the templates (shipped + the user's overrides) and runs one templates command.
fn templates_command(
    setup: &cli::Setup,
    f: impl FnOnce(&Templates, &MailOptions, &mut dyn Write) -> Result<(), TemplateError>,
) -> Result<ExitCode, String> {
    let run = || {
        let t = Templates::load(Some(&templates::user_dir(&setup.paths.config_dir)))?;
        let mail = MailOptions::from_config(&setup.config)?;
        let mut out = std::io::stdout().lock();
        f(&t, &mail, &mut out)?;
        let _ = out.flush();
        Ok::<(), TemplateError>(())
    };
    match run() {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(e) => {
            eprintln!("tykwatch: {e}");
            Ok(ExitCode::from(1))
        }
    }
}

/// Ctrl-C or SIGTERM (a service manager stops the demo gateway like any daemon).
async fn wait_for_stop() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

async fn shutdown(target: Target) {
    if let Some(demo) = target.demo {
        demo.shutdown().await;
    }
}
