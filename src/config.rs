//! Configuration: TOML with `${VAR}` interpolation, validation that names the key and the line,
//! and the config/data paths (`directories`).
//!
//! Section and key names mirror Tyk's own files (`tyk.conf`, `tyk_analytics.conf`) wherever Tyk
//! has a name; `config.example.toml` documents every key. Every section is optional and every
//! struct denies unknown keys, so a typo is an error instead of a silently ignored setting.
//!
//! Errors are located: `path:LINE:COL: dotted.key: message`, one line per problem. Field types
//! validate themselves inside `Deserialize` so that toml attaches the span of the offending value;
//! cross-field rules run afterwards and look the span up in the parsed document.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::SocketAddr;
use std::ops::{Deref, Range};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Unexpected, Visitor};
use toml::de::{DeTable, DeValue};

mod storage;
pub use storage::{StorageConfig, check_addr};

// ---------------------------------------------------------------------------------------------
// Public configuration structs
// ---------------------------------------------------------------------------------------------

/// The whole configuration file. Every section is optional.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub gateway: GatewayConfig,
    pub dashboard: DashboardConfig,
    pub monitor: MonitorConfig,
    pub webhooks: Vec<WebhookConfig>,
    pub email_backend: EmailBackendConfig,
    pub notify: NotifyConfig,
    /// `[[routes]]`: where events received by the intake go.
    pub routes: Vec<RouteConfig>,
    pub intake: IntakeConfig,
    pub orgs: OrgsConfig,
    pub ui: UiConfig,
}

/// `[gateway]`: the Tyk Gateway REST API that is polled.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GatewayConfig {
    /// Base URL without trailing `/`; `None` runs the embedded demo gateway.
    #[serde(deserialize_with = "de_opt_base_url")]
    pub url: Option<String>,
    /// tyk.conf `secret`, sent as `x-tyk-authorization`.
    pub secret: Secret,
    #[serde(deserialize_with = "de_poll_interval")]
    pub poll_interval: Duration,
    #[serde(deserialize_with = "de_concurrency")]
    pub concurrency: usize,
    #[serde(deserialize_with = "de_positive_duration")]
    pub timeout: Duration,
    /// How long quota history is kept (rates, ETA, sparklines).
    #[serde(deserialize_with = "de_positive_duration")]
    pub history: Duration,
    /// tyk.conf `hash_keys`: whether the gateway stores keys by hash. Unset, tykwatch finds
    /// out (the REST listing, or Redis key names).
    pub hash_keys: Option<bool>,
    /// `[gateway.storage]`: read quotas from Tyk's Redis instead of one REST call per key.
    pub storage: Option<StorageConfig>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            url: None,
            secret: Secret::default(),
            poll_interval: Duration::from_secs(2),
            concurrency: 16,
            timeout: Duration::from_secs(10),
            history: Duration::from_secs(600),
            hash_keys: None,
            storage: None,
        }
    }
}

/// `[dashboard]`: the Tyk Dashboard (Admin API), optional.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashboardConfig {
    /// Base URL without trailing `/`.
    #[serde(deserialize_with = "de_opt_base_url")]
    pub url: Option<String>,
    /// tyk_analytics.conf `admin_secret`, sent as `admin-auth`; `TYK_DB_ADMIN_SECRET` wins.
    pub admin_secret: Secret,
    /// Per request to the Admin API.
    #[serde(deserialize_with = "de_positive_duration")]
    pub timeout: Duration,
}

impl Default for DashboardConfig {
    fn default() -> Self {
        DashboardConfig {
            url: None,
            admin_secret: Secret::default(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// `[monitor]`: the names of tyk.conf `monitor` (defaults differ: Tyk defaults to off).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorConfig {
    pub enable_trigger_monitors: bool,
    /// Percentage; 0 = off.
    #[serde(deserialize_with = "de_global_trigger_limit")]
    pub global_trigger_limit: f64,
    /// Extension: several global thresholds, each in (0, 100].
    #[serde(deserialize_with = "de_thresholds")]
    pub global_trigger_limits: Vec<f64>,
    pub monitor_user_keys: bool,
    pub monitor_org_keys: bool,
    pub configuration: MonitorHookConfig,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            enable_trigger_monitors: true,
            global_trigger_limit: 0.0,
            global_trigger_limits: Vec::new(),
            monitor_user_keys: true,
            monitor_org_keys: true,
            configuration: MonitorHookConfig::default(),
        }
    }
}

/// `[monitor.configuration]`: tyk.conf `monitor.configuration`, the "tyk"-format webhook.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MonitorHookConfig {
    /// Upper-cased; one of GET, POST, PUT, PATCH, DELETE.
    #[serde(deserialize_with = "de_method")]
    pub method: String,
    /// Receiver URL; empty = no "tyk" webhook.
    #[serde(deserialize_with = "de_opt_url_or_empty")]
    pub target_path: String,
    /// Go-template body; empty = Tyk's `monitor_template.json`.
    #[serde(deserialize_with = "de_string")]
    pub template_path: String,
    /// Extra request headers; values are secrets (they usually carry a shared secret).
    #[serde(deserialize_with = "de_header_map")]
    pub header_map: BTreeMap<String, Secret>,
    /// Seconds (Tyk: dedupe window for identical bodies, 0 = for ever).
    pub event_timeout: u64,
}

impl Default for MonitorHookConfig {
    fn default() -> Self {
        MonitorHookConfig {
            method: "POST".to_owned(),
            target_path: String::new(),
            template_path: String::new(),
            header_map: BTreeMap::new(),
            event_timeout: 0,
        }
    }
}

/// `[[webhooks]]`: extra receivers in Standard Webhooks format.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Unique; letters, digits, `-`, `_`, `.` (it names the channel).
    #[serde(deserialize_with = "de_webhook_name")]
    pub name: String,
    #[serde(deserialize_with = "de_url")]
    pub url: String,
    /// `whsec_…`; empty = unsigned.
    #[serde(default, deserialize_with = "de_whsec")]
    pub secret: Secret,
    #[serde(default = "yes")]
    pub enabled: bool,
}

/// Tyk's email backends (`tyk_analytics.conf` `email_backend.code`), plus `file` (writes `.eml`
/// files to the data dir; the default, so a fresh install never sends mail by accident).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum EmailBackendCode {
    Smtp,
    Sendgrid,
    Mailgun,
    Mandrill,
    Amazonses,
    #[default]
    File,
}

impl EmailBackendCode {
    pub const ALL: [EmailBackendCode; 6] = [
        EmailBackendCode::Smtp,
        EmailBackendCode::Sendgrid,
        EmailBackendCode::Mailgun,
        EmailBackendCode::Mandrill,
        EmailBackendCode::Amazonses,
        EmailBackendCode::File,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EmailBackendCode::Smtp => "smtp",
            EmailBackendCode::Sendgrid => "sendgrid",
            EmailBackendCode::Mailgun => "mailgun",
            EmailBackendCode::Mandrill => "mandrill",
            EmailBackendCode::Amazonses => "amazonses",
            EmailBackendCode::File => "file",
        }
    }
}

impl fmt::Display for EmailBackendCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EmailBackendCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = Interp::deserialize(d)?.0;
        EmailBackendCode::ALL
            .into_iter()
            .find(|c| c.as_str() == text)
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "unknown email backend {text:?} (use one of smtp, sendgrid, mailgun, mandrill, amazonses, file)"
                ))
            })
    }
}

/// `[email_backend]`: the names of tyk_analytics.conf `email_backend`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EmailBackendConfig {
    pub enable_email_notifications: bool,
    pub code: EmailBackendCode,
    pub settings: EmailSettings,
    #[serde(deserialize_with = "de_opt_email_or_empty")]
    pub default_from_email: String,
    #[serde(deserialize_with = "de_string")]
    pub default_from_name: String,
    #[serde(deserialize_with = "de_string")]
    pub dashboard_hostname: String,
    /// Extension: base URL of the provider's HTTP API (`sendgrid`, `mailgun`, `mandrill`)
    /// instead of its public one, e.g. Mailgun's EU region `https://api.eu.mailgun.net`, a
    /// proxy, or a test receiver. `None` (empty) = the public API. Tyk's `Endpoint` setting is
    /// SES-only, hence a key of its own.
    #[serde(deserialize_with = "de_opt_api_base")]
    pub api_base: Option<String>,
}

/// Tyk's `email_backend.settings` (`map[string]string`, booleans as strings). Derefs to the
/// map; `Debug` masks the values of credential keys.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EmailSettings(pub BTreeMap<String, String>);

impl EmailSettings {
    /// Every key any of Tyk's backends reads.
    pub const KNOWN_KEYS: [&'static str; 11] = [
        "SMTPAddress",
        "SMTPUsername",
        "SMTPPassword",
        "TLSInsecureSkipVerify",
        "ClientKey",
        "Domain",
        "PrivateKey",
        "PublicKey",
        "Endpoint",
        "AccessKeyId",
        "SecretAccessKey",
    ];

    /// Keys whose values are shown in clear; everything else is a credential.
    const PUBLIC_KEYS: [&'static str; 6] = [
        "SMTPAddress",
        "SMTPUsername",
        "TLSInsecureSkipVerify",
        "Domain",
        "Endpoint",
        "AccessKeyId",
    ];

    pub fn is_secret_key(key: &str) -> bool {
        !Self::PUBLIC_KEYS.contains(&key)
    }
}

impl Deref for EmailSettings {
    type Target = BTreeMap<String, String>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl From<BTreeMap<String, String>> for EmailSettings {
    fn from(map: BTreeMap<String, String>) -> Self {
        EmailSettings(map)
    }
}

impl fmt::Debug for EmailSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (k, v) in &self.0 {
            if Self::is_secret_key(k) {
                map.entry(k, &Secret::new(v.clone()));
            } else {
                map.entry(k, v);
            }
        }
        map.finish()
    }
}

impl<'de> Deserialize<'de> for EmailSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = BTreeMap::<SettingKey, Interp>::deserialize(d)?;
        Ok(EmailSettings(
            raw.into_iter().map(|(k, v)| (k.0, v.0)).collect(),
        ))
    }
}

/// `[notify]`: who is e-mailed when a threshold is crossed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotifyConfig {
    #[serde(deserialize_with = "de_emails")]
    pub email_to: Vec<String>,
    /// Org id → addresses, in addition to `email_to`.
    #[serde(deserialize_with = "de_org_emails")]
    pub org_email_to: BTreeMap<String, Vec<String>>,
    pub notify_key_owner: bool,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            email_to: Vec::new(),
            org_email_to: BTreeMap::new(),
            notify_key_owner: true,
        }
    }
}

/// `[[routes]]`: one routing rule for events received by the intake (Dashboard
/// `event_options` webhooks, Developer Portal webhooks). Every matching route contributes its
/// channels; an event goes to each channel once (`crate::notify::route`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Patterns on the event name: `*` any run of characters, `?` one; `"*"` = every event.
    #[serde(deserialize_with = "de_event_patterns")]
    pub events: Vec<String>,
    /// Org ids the route applies to; empty = every org (and events without one).
    #[serde(default, deserialize_with = "de_org_ids")]
    pub orgs: Vec<String>,
    /// E-mail the address(es) the org set in `event_options.<option>.email`.
    #[serde(default)]
    pub email_org: bool,
    /// Extra addresses.
    #[serde(default, deserialize_with = "de_emails")]
    pub email_to: Vec<String>,
    /// E-mail the portal developer the event is about (`data.portal_developer.email`, a
    /// Portal event's `Message.Email`).
    #[serde(default)]
    pub email_developer: bool,
    /// Names of `[[webhooks]]` (Standard Webhooks, signed).
    #[serde(default, deserialize_with = "de_webhook_refs")]
    pub webhooks: Vec<String>,
}

/// `[intake]`: HTTP listener for webhooks Tyk sends to tykwatch.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IntakeConfig {
    /// `None` = no listener.
    #[serde(deserialize_with = "de_listen")]
    pub listen: Option<SocketAddr>,
    /// Expected in `X-Tykwatch-Secret`.
    pub secret: Secret,
    /// Bytes.
    #[serde(deserialize_with = "de_size")]
    pub max_body: usize,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            listen: None,
            secret: Secret::default(),
            max_body: 1024 * 1024,
        }
    }
}

/// `[orgs]`: offline organisation documents.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrgsConfig {
    /// Relative paths are resolved against the config file's directory by [`Config::load`].
    #[serde(deserialize_with = "de_opt_path")]
    pub dir: Option<PathBuf>,
}

/// `[ui]`: console settings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    /// A builtin theme or `<config_dir>/themes/NAME.toml`.
    #[serde(deserialize_with = "de_theme_name")]
    pub theme: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            theme: "default".to_owned(),
        }
    }
}

fn yes() -> bool {
    true
}

// ---------------------------------------------------------------------------------------------
// Secret
// ---------------------------------------------------------------------------------------------

/// A credential. `Debug` and `Display` print a mask, never the value; use [`Secret::expose`]
/// at the single place that sends it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `••••` plus the last 4 characters when the secret is long enough (≥ 12) that they do not
    /// give it away; empty stays empty so "not set" is visible.
    pub fn masked(&self) -> String {
        let len = self.0.chars().count();
        if len == 0 {
            String::new()
        } else if len >= 12 {
            let tail: String = self.0.chars().skip(len - 4).collect();
            format!("••••{tail}")
        } else {
            "••••".to_owned()
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.masked())
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Secret(s.to_owned())
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Secret(s)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Secret(Interp::deserialize(d)?.0))
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// One located problem in a configuration source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File path (or a description of the source).
    pub origin: String,
    /// 1-based line and column (in characters), when known.
    pub line_col: Option<(usize, usize)>,
    /// Dotted key, e.g. `gateway.poll_interval` or `webhooks[1].secret`.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some((line, col)) = self.line_col {
            write!(f, ":{line}:{col}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Configuration could not be read or is invalid. `Display` prints one line per problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    problems: Vec<Problem>,
}

impl ConfigError {
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    fn unlocated(origin: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            problems: vec![Problem {
                origin: origin.into(),
                line_col: None,
                key: None,
                message: message.into(),
            }],
        }
    }
}

/// One located problem per line; shared by config and theme errors.
pub fn write_problems(problems: &[Problem], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            f.write_str("\n")?;
        }
        write!(f, "{p}")?;
    }
    Ok(())
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_problems(&self.problems, f)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based (line, column) of a byte offset; the column counts characters.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    (line, col)
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

impl Config {
    /// Parses and validates `text`. `origin` names the source in messages; `env` resolves
    /// `${VAR}` (tests pass a closure instead of mutating the process environment).
    pub fn load_from_str(
        text: &str,
        origin: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let doc = match DeTable::parse(text) {
            Ok(doc) => doc,
            Err(err) => {
                let (recovered, _) = DeTable::parse_recoverable(text);
                let located = Located {
                    text,
                    origin,
                    root: &recovered,
                };
                let message = format!("invalid TOML: {}", err.message());
                return Err(ConfigError {
                    problems: vec![located.problem(err.span(), message)],
                });
            }
        };
        let located = Located {
            text,
            origin,
            root: &doc,
        };

        // Deserialize impls cannot take parameters, so the variables the document mentions are
        // resolved up front and handed to them through a thread-local for this call only.
        let mut names = BTreeSet::new();
        collect_env_names(doc.get_ref(), &mut names);
        let vars = names.into_iter().map(|n| (n.clone(), env(&n))).collect();
        let parsed = {
            let _scope = EnvScope::enter(vars);
            Config::deserialize(toml::de::Deserializer::from(doc.clone()))
        };
        let config = parsed.map_err(|err| {
            let message = tidy_serde_message(err.message());
            ConfigError {
                problems: vec![located.problem(err.span(), message)],
            }
        })?;

        let problems = validate(&config, &located);
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError { problems })
        }
    }

    /// Reads `path` (errors name it) with the process environment for `${VAR}`. Relative
    /// `orgs.dir` and `monitor.configuration.template_path` are resolved against the file's
    /// directory, so the config works from any working directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::unlocated(origin.clone(), format!("cannot read config file: {e}"))
        })?;
        let mut config = Config::load_from_str(&text, &origin, &|name| std::env::var(name).ok())?;
        if let Some(base) = path.parent() {
            config.resolve_relative_paths(base);
        }
        Ok(config)
    }

    /// No gateway configured (neither its REST API nor its Redis): run against the embedded
    /// demo gateway.
    pub fn is_demo(&self) -> bool {
        self.gateway.url.is_none() && self.gateway.storage.is_none()
    }

    fn resolve_relative_paths(&mut self, base: &Path) {
        if let Some(dir) = &mut self.orgs.dir
            && dir.is_relative()
        {
            *dir = base.join(&*dir);
        }
        let template = &mut self.monitor.configuration.template_path;
        if !template.is_empty() && Path::new(template.as_str()).is_relative() {
            *template = base.join(template.as_str()).display().to_string();
        }
    }
}

/// Where the config file, themes and data live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paths {
    pub config_file: PathBuf,
    /// Directory of the config file; user themes are in `<config_dir>/themes`.
    pub config_dir: PathBuf,
    /// SQLite database, demo e-mail files.
    pub data_dir: PathBuf,
    /// The config file was named by the user (`--config` / `TYKWATCH_CONFIG`): missing is an
    /// error rather than "use defaults".
    pub config_file_explicit: bool,
}

impl Paths {
    /// `config` and `data_dir` are the CLI/env overrides; the rest comes from
    /// `directories::ProjectDirs` (`~/.config/tykwatch`, `~/.local/share/tykwatch` on Linux).
    pub fn resolve(
        config: Option<PathBuf>,
        data_dir: Option<PathBuf>,
    ) -> Result<Paths, ConfigError> {
        let project = || {
            directories::ProjectDirs::from("", "", "tykwatch").ok_or_else(|| {
                ConfigError::unlocated(
                    "tykwatch",
                    "cannot determine the home directory; pass --config and --data-dir \
                     (or TYKWATCH_CONFIG and TYKWATCH_DATA_DIR)",
                )
            })
        };
        let (config_file, config_dir, explicit) = match config {
            Some(file) => {
                let dir = match file.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                    _ => PathBuf::from("."),
                };
                (file, dir, true)
            }
            None => {
                let dir = project()?.config_dir().to_path_buf();
                (dir.join("config.toml"), dir, false)
            }
        };
        let data_dir = match data_dir {
            Some(dir) => dir,
            None => project()?.data_dir().to_path_buf(),
        };
        Ok(Paths {
            config_file,
            config_dir,
            data_dir,
            config_file_explicit: explicit,
        })
    }

    /// `<config_dir>/themes`, searched before the builtin themes.
    pub fn themes_dir(&self) -> PathBuf {
        self.config_dir.join("themes")
    }
}

/// Loads `paths.config_file`; a missing default file means "all defaults" (demo mode), a
/// missing file the user named is an error.
pub fn load_or_default(paths: &Paths) -> Result<Config, ConfigError> {
    if !paths.config_file_explicit && !paths.config_file.exists() {
        return Ok(Config::default());
    }
    Config::load(&paths.config_file)
}

// ---------------------------------------------------------------------------------------------
// Locating spans: byte range → dotted key, dotted key → byte range
// ---------------------------------------------------------------------------------------------

enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

fn fmt_path(segs: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if bare {
                    out.push_str(k);
                } else {
                    out.push_str(&format!("{k:?}"));
                }
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

type Root<'i> = toml::Spanned<DeTable<'i>>;

struct Located<'a, 'i> {
    text: &'a str,
    origin: &'a str,
    root: &'a Root<'i>,
}

impl Located<'_, '_> {
    fn problem(&self, span: Option<Range<usize>>, message: String) -> Problem {
        let key = span.as_ref().and_then(|s| {
            let mut segs = Vec::new();
            path_in_table(self.root.get_ref(), s.start, &mut segs).then(|| fmt_path(&segs))
        });
        Problem {
            origin: self.origin.to_owned(),
            line_col: span.map(|s| line_col(self.text, s.start)),
            key: key.filter(|k| !k.is_empty()),
            message,
        }
    }

    /// A problem at `path` (keys and array indices). The key is always named; the line is the
    /// key's, or when it is absent from the file that of `cause` (the key that requires it),
    /// else that of the nearest enclosing table.
    fn problem_at(
        &self,
        path: &[PathItem<'_>],
        cause: &[PathItem<'_>],
        message: String,
    ) -> Problem {
        let segs: Vec<Seg<'_>> = path
            .iter()
            .map(|p| match p {
                PathItem::K(k) => Seg::Key(k),
                PathItem::I(i) => Seg::Index(*i),
            })
            .collect();
        let root = self.root.get_ref();
        let span = match span_of(root, path) {
            Some((span, true)) => Some(span),
            nearest => match span_of(root, cause) {
                Some((span, true)) => Some(span),
                _ => nearest.map(|(span, _)| span),
            },
        };
        Problem {
            origin: self.origin.to_owned(),
            line_col: span.map(|s| line_col(self.text, s.start)),
            key: Some(fmt_path(&segs)),
            message,
        }
    }
}

#[derive(Clone, Copy)]
enum PathItem<'a> {
    K(&'a str),
    I(usize),
}

/// Innermost key whose key or value span contains `pos`. Children are searched before a
/// value's own span because a header table's span is only its `[header]` line.
fn path_in_table<'t>(table: &'t DeTable<'_>, pos: usize, out: &mut Vec<Seg<'t>>) -> bool {
    for (k, v) in table.iter() {
        out.push(Seg::Key(k.get_ref()));
        if k.span().contains(&pos) || path_in_value(v, pos, out) {
            return true;
        }
        if v.span().contains(&pos) || (v.span().is_empty() && v.span().start == pos) {
            return true;
        }
        out.pop();
    }
    false
}

fn path_in_value<'t>(
    value: &'t toml::Spanned<DeValue<'_>>,
    pos: usize,
    out: &mut Vec<Seg<'t>>,
) -> bool {
    match value.get_ref() {
        DeValue::Table(t) => path_in_table(t, pos, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                out.push(Seg::Index(i));
                if path_in_value(item, pos, out) || item.span().contains(&pos) {
                    return true;
                }
                out.pop();
            }
            false
        }
        _ => false,
    }
}

/// Span of the key (or array element) at `path` and `true`, or of the deepest ancestor that
/// exists and `false`.
fn span_of(table: &DeTable<'_>, path: &[PathItem<'_>]) -> Option<(Range<usize>, bool)> {
    let mut best = None;
    let mut found = 0;
    let mut current: Option<&toml::Spanned<DeValue<'_>>> = None;
    for item in path {
        let next = match (item, current.map(|v| v.get_ref())) {
            (PathItem::K(k), None) => table.get_key_value(*k),
            (PathItem::K(k), Some(DeValue::Table(t))) => t.get_key_value(*k),
            (PathItem::I(i), Some(DeValue::Array(a))) => {
                let Some(v) = a.get(*i) else { break };
                best = Some(v.span());
                current = Some(v);
                found += 1;
                continue;
            }
            _ => None,
        };
        let Some((key, value)) = next else { break };
        best = Some(key.span());
        current = Some(value);
        found += 1;
    }
    best.map(|span| (span, found == path.len()))
}

/// serde's wording talks about Rust; TOML users have keys.
fn tidy_serde_message(message: &str) -> String {
    message
        .replacen("unknown field", "unknown key", 1)
        .replacen("missing field", "missing key", 1)
}

// ---------------------------------------------------------------------------------------------
// ${VAR} interpolation
// ---------------------------------------------------------------------------------------------

thread_local! {
    /// Variables resolved for the `load_from_str` running on this thread; `None` outside it.
    static ENV: RefCell<Option<HashMap<String, Option<String>>>> = const { RefCell::new(None) };
}

struct EnvScope {
    previous: Option<HashMap<String, Option<String>>>,
}

impl EnvScope {
    fn enter(vars: HashMap<String, Option<String>>) -> Self {
        let previous = ENV.with(|e| e.replace(Some(vars)));
        EnvScope { previous }
    }
}

impl Drop for EnvScope {
    fn drop(&mut self) {
        let previous = self.previous.take();
        ENV.with(|e| *e.borrow_mut() = previous);
    }
}

/// Interpolates with the variables of the running `load_from_str`. Outside it the text is kept
/// as is: these types may also be deserialized from untrusted input (an API body), which must
/// never be able to pull `${TYK_GW_SECRET}` out of the environment.
fn interpolate_in_scope(raw: &str) -> Result<String, String> {
    ENV.with(|e| match &*e.borrow() {
        Some(vars) => interpolate(raw, &mut |name| vars.get(name).cloned().flatten()),
        None => Ok(raw.to_owned()),
    })
}

fn collect_env_names(table: &DeTable<'_>, names: &mut BTreeSet<String>) {
    fn walk(value: &DeValue<'_>, names: &mut BTreeSet<String>) {
        match value {
            DeValue::String(s) => {
                // Only the names are wanted; errors surface again during deserialization.
                let _ = interpolate(s, &mut |name| {
                    names.insert(name.to_owned());
                    Some(String::new())
                });
            }
            DeValue::Array(items) => items.iter().for_each(|v| walk(v.get_ref(), names)),
            DeValue::Table(t) => collect_env_names(t, names),
            _ => {}
        }
    }
    for (_, v) in table.iter() {
        walk(v.get_ref(), names);
    }
}

/// Replaces `${NAME}` with `lookup(NAME)`; `$${` is a literal `${`; a `$` elsewhere is kept.
/// Messages never quote the surrounding text: it may be a secret.
fn interpolate(
    raw: &str,
    lookup: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(body) = tail.strip_prefix("${") {
            let Some(end) = body.find('}') else {
                return Err("unterminated \"${\" (write \"$${\" for a literal \"${\")".to_owned());
            };
            let name = &body[..end];
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(
                    "invalid variable name in \"${…}\" (letters, digits and _; write \"$${\" for a literal \"${\")"
                        .to_owned(),
                );
            }
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => return Err(format!("environment variable {name} is not set")),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Field parsers. Each runs inside Deserialize so toml attaches the value's span to its error.
// ---------------------------------------------------------------------------------------------

/// A TOML string after `${VAR}` interpolation.
struct Interp(String);

impl<'de> Deserialize<'de> for Interp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, |s| Ok(Interp(s)))
    }
}

/// Interpolates a string and validates it inside the visitor: only errors raised there get the
/// value's own span (an array element's error would otherwise point at the whole array).
fn checked_str<'de, D, T>(
    d: D,
    check: impl FnOnce(String) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<F>(F);
    impl<T, F: FnOnce(String) -> Result<T, String>> Visitor<'_> for V<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            let s = interpolate_in_scope(v).map_err(E::custom)?;
            (self.0)(s).map_err(E::custom)
        }
    }
    d.deserialize_str(V(check))
}

/// A number (TOML integer or float), validated inside the visitor for the same reason.
fn checked_f64<'de, D, T>(d: D, check: impl FnOnce(f64) -> Result<T, String>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<F>(F);
    impl<T, F: FnOnce(f64) -> Result<T, String>> Visitor<'_> for V<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
            (self.0)(v).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            // Thresholds are small; the cast is exact for every sensible value.
            self.visit_f64(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            self.visit_f64(v as f64)
        }
    }
    d.deserialize_any(V(check))
}

/// An integer or an (interpolated) string, for durations and sizes.
enum IntOrText {
    Int(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for IntOrText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string such as \"2s\" or an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrText, E> {
                Ok(IntOrText::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrText, E> {
                i64::try_from(v)
                    .map(IntOrText::Int)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrText, E> {
                interpolate_in_scope(v)
                    .map(IntOrText::Text)
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

const DURATION_HINT: &str = "(use e.g. 500ms, 2s, 5m, 1h)";

/// `500ms`, `2s`, `5m`, `1h`, `1d`, combinations like `1h30m`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} {DURATION_HINT}");
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().map(Duration::from_secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let part = match &rest[..unit_len] {
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3600).map(Duration::from_secs),
            "d" => n.checked_mul(86_400).map(Duration::from_secs),
            _ => return Err(bad()),
        };
        total = part.and_then(|p| total.checked_add(p)).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

fn duration_value(v: IntOrText) -> Result<Duration, String> {
    match v {
        IntOrText::Int(n) => u64::try_from(n)
            .map(Duration::from_secs)
            .map_err(|_| format!("invalid duration {n} {DURATION_HINT}")),
        IntOrText::Text(s) => parse_duration(&s),
    }
}

fn de_positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let value = duration_value(IntOrText::deserialize(d)?).map_err(de::Error::custom)?;
    if value.is_zero() {
        return Err(de::Error::custom(format!(
            "must be greater than 0 {DURATION_HINT}"
        )));
    }
    Ok(value)
}

fn de_poll_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    // Below this a large fleet would be hammered with no benefit to the display.
    const MIN: Duration = Duration::from_millis(100);
    let value = duration_value(IntOrText::deserialize(d)?).map_err(de::Error::custom)?;
    if value < MIN {
        return Err(de::Error::custom("must be at least 100ms"));
    }
    Ok(value)
}

/// Bytes: an integer, or `512KiB`, `1MiB`, `1MB`….
pub fn parse_size(text: &str) -> Result<usize, String> {
    let bad = || format!("invalid size {text:?} (use e.g. 1048576, 512KiB, 1MiB)");
    let s = text.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad());
    }
    let n: usize = s[..digits].parse().map_err(|_| bad())?;
    let factor: usize = match s[digits..].trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).ok_or_else(bad)
}

fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let value = match IntOrText::deserialize(d)? {
        IntOrText::Int(n) => {
            usize::try_from(n).map_err(|_| de::Error::custom(format!("invalid size {n}")))?
        }
        IntOrText::Text(s) => parse_size(&s).map_err(de::Error::custom)?,
    };
    if value == 0 {
        return Err(de::Error::custom("must be greater than 0"));
    }
    Ok(value)
}

fn de_concurrency<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = i64::deserialize(d)?;
    if !(1..=256).contains(&n) {
        return Err(de::Error::custom(format!(
            "must be between 1 and 256, got {n}"
        )));
    }
    usize::try_from(n).map_err(de::Error::custom)
}

fn de_global_trigger_limit<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if !(0.0..=100.0).contains(&v) {
        return Err(de::Error::custom(format!(
            "must be a percentage from 0 (off) to 100, got {v}"
        )));
    }
    Ok(v)
}

/// One element of `global_trigger_limits`; a newtype so its error points at the element.
struct Threshold(f64);

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_f64(d, |v| {
            if v > 0.0 && v <= 100.0 {
                Ok(Threshold(v))
            } else {
                Err(format!(
                    "each threshold must be a percentage above 0 and at most 100, got {v}"
                ))
            }
        })
    }
}

fn de_thresholds<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Threshold>::deserialize(d)?
        .into_iter()
        .map(|t| t.0)
        .collect())
}

fn de_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Interp::deserialize(d)?.0)
}

fn de_opt_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let s = Interp::deserialize(d)?.0;
    if s.is_empty() {
        return Err(de::Error::custom("empty path (remove the key instead)"));
    }
    Ok(Some(PathBuf::from(s)))
}

/// Checks an absolute http(s) URL: `scheme://host[:port][/path][?query][#fragment]`. The value
/// is not quoted in messages: webhook URLs often embed tokens.
pub fn check_url(url: &str) -> Result<(), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or("invalid URL: expected an absolute URL such as https://host:port/path")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("invalid URL: the scheme must be http or https".to_owned());
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("invalid URL: contains whitespace".to_owned());
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.contains('@') {
        return Err(
            "invalid URL: credentials in the URL are not supported; use the secret key".to_owned(),
        );
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("invalid URL: unclosed \"[\" in host")?;
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or("invalid URL: junk after \"]\"")?),
        };
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err("invalid URL: bad IPv6 address".to_owned());
        }
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return Err("invalid URL: missing host".to_owned());
    }
    let host_ok = authority.starts_with('[')
        || host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~' | '%'));
    if !host_ok {
        return Err("invalid URL: bad character in host".to_owned());
    }
    if let Some(p) = port
        && !matches!(p.parse::<u16>(), Ok(n) if n > 0)
    {
        return Err("invalid URL: port must be a number from 1 to 65535".to_owned());
    }
    Ok(())
}

fn de_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = Interp::deserialize(d)?.0;
    check_url(&s).map_err(de::Error::custom)?;
    Ok(s)
}

fn de_opt_url_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = Interp::deserialize(d)?.0;
    if !s.is_empty() {
        check_url(&s).map_err(de::Error::custom)?;
    }
    Ok(s)
}

/// A base URL: validated, trailing `/` removed so clients can append `/tyk/keys`. Empty is an
/// error rather than "demo": an unset `${VAR}` must not silently show fake data.
fn de_opt_base_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = Interp::deserialize(d)?.0;
    if s.is_empty() {
        return Err(de::Error::custom(
            "empty URL (remove the key to use the demo gateway)",
        ));
    }
    check_url(&s).map_err(de::Error::custom)?;
    Ok(Some(s.trim_end_matches('/').to_owned()))
}

/// `email_backend.api_base`: empty = the provider's public API.
fn de_opt_api_base<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = Interp::deserialize(d)?.0;
    if s.trim().is_empty() {
        return Ok(None);
    }
    check_url(&s).map_err(de::Error::custom)?;
    Ok(Some(s.trim_end_matches('/').to_owned()))
}

fn de_whsec<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    let s = Interp::deserialize(d)?.0;
    if !s.is_empty() {
        let body = s.strip_prefix("whsec_").ok_or_else(|| {
            de::Error::custom(
                "webhook secret must start with \"whsec_\" (Standard Webhooks: whsec_ + base64)",
            )
        })?;
        let base64 = !body.is_empty()
            && body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='));
        if !base64 {
            return Err(de::Error::custom(
                "webhook secret must be \"whsec_\" followed by base64",
            ));
        }
    }
    Ok(Secret(s))
}

fn de_method<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = Interp::deserialize(d)?.0.to_ascii_uppercase();
    // The methods Tyk's webhook handler honours (it silently sends GET for anything else).
    if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(de::Error::custom(format!(
            "unsupported method {s:?} (use GET, POST, PUT, PATCH or DELETE)"
        )))
    }
}

fn check_webhook_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid webhook name {s:?} (letters, digits, -, _ and . only)"
        ))
    }
}

fn de_webhook_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = Interp::deserialize(d)?.0;
    check_webhook_name(&s).map_err(de::Error::custom)?;
    Ok(s)
}

fn de_theme_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = Interp::deserialize(d)?.0;
    if is_file_stem(&s) {
        Ok(s)
    } else {
        Err(de::Error::custom(format!(
            "invalid theme name {s:?} (letters, digits, - and _ only; the file is themes/NAME.toml)"
        )))
    }
}

/// Names that are safe as a file stem (no separators, no `..`).
pub(crate) fn is_file_stem(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn de_listen<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = Interp::deserialize(d)?.0;
    s.trim().parse::<SocketAddr>().map(Some).map_err(|_| {
        de::Error::custom(format!(
            "invalid listen address {s:?} (use IP:PORT, e.g. 127.0.0.1:8089 or [::1]:8089)"
        ))
    })
}

/// A plain `local@domain` address: the notify module adds display names itself.
/// One address: one `@`, non-empty parts, no spaces, angle brackets or separators (also the
/// rule of the Orgs form).
pub(crate) fn check_email(s: &str) -> Result<(), String> {
    let ok = match s.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !s.chars().any(|c| {
                    c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';')
                })
        }
        None => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid e-mail address {s:?} (use e.g. ops@example.com)"
        ))
    }
}

struct Email(String);

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, |s| check_email(&s).map(|()| Email(s)))
    }
}

fn de_opt_email_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = Interp::deserialize(d)?.0;
    if !s.is_empty() {
        check_email(&s).map_err(de::Error::custom)?;
    }
    Ok(s)
}

fn de_emails<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<Email>::deserialize(d)?
        .into_iter()
        .map(|e| e.0)
        .collect())
}

fn de_org_emails<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    let raw = BTreeMap::<String, Vec<Email>>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(org, list)| (org, list.into_iter().map(|e| e.0).collect()))
        .collect())
}

/// Checks an event-name pattern of `routes.events`: event-name characters and the `*` / `?`
/// wildcards (Dashboard events are `<option>_event.<action>`, Portal events `UserRegistered`).
pub fn check_event_pattern(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '*' | '?'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid event pattern {s:?} (event-name characters with * and ? wildcards, e.g. \"key_request_event.*\" or \"*\")"
        ))
    }
}

struct EventPattern(String);

impl<'de> Deserialize<'de> for EventPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, |s| check_event_pattern(&s).map(|()| EventPattern(s)))
    }
}

fn de_event_patterns<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<EventPattern>::deserialize(d)?
        .into_iter()
        .map(|p| p.0)
        .collect())
}

struct OrgId(String);

impl<'de> Deserialize<'de> for OrgId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, |s| {
            if s.trim().is_empty() || s.chars().any(char::is_control) {
                Err(format!(
                    "invalid org id {s:?} (an organisation id such as \"5e9d9544a1dcd60001d0ed20\")"
                ))
            } else {
                Ok(OrgId(s))
            }
        })
    }
}

fn de_org_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<OrgId>::deserialize(d)?
        .into_iter()
        .map(|o| o.0)
        .collect())
}

/// A `[[webhooks]]` name referenced by a route; whether it exists is a cross-field rule.
struct WebhookRef(String);

impl<'de> Deserialize<'de> for WebhookRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, |s| check_webhook_name(&s).map(|()| WebhookRef(s)))
    }
}

fn de_webhook_refs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<WebhookRef>::deserialize(d)?
        .into_iter()
        .map(|w| w.0)
        .collect())
}

/// An HTTP header name (RFC 9110 token); validated as a map key so the error points at it.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct HeaderName(String);

impl<'de> Deserialize<'de> for HeaderName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ok = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
        if ok {
            Ok(HeaderName(s))
        } else {
            Err(de::Error::custom(format!("invalid header name {s:?}")))
        }
    }
}

fn de_header_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, Secret>, D::Error> {
    let raw = BTreeMap::<HeaderName, Secret>::deserialize(d)?;
    Ok(raw.into_iter().map(|(k, v)| (k.0, v)).collect())
}

/// A key of `email_backend.settings`; Tyk ignores unknown ones, which hides typos such as
/// `SMTPPasword`, so they are rejected here.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct SettingKey(String);

impl<'de> Deserialize<'de> for SettingKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if EmailSettings::KNOWN_KEYS.contains(&s.as_str()) {
            Ok(SettingKey(s))
        } else {
            Err(de::Error::custom(format!(
                "unknown setting {s:?} (Tyk's email_backend settings: {})",
                EmailSettings::KNOWN_KEYS.join(", ")
            )))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Cross-field rules
// ---------------------------------------------------------------------------------------------

fn validate(config: &Config, at: &Located<'_, '_>) -> Vec<Problem> {
    use PathItem::{I, K};
    let mut problems = Vec::new();

    let gw = &config.gateway;
    if gw.url.is_some() && gw.secret.is_empty() {
        problems.push(at.problem_at(
            &[K("gateway"), K("secret")],
            &[K("gateway"), K("url")],
            "required when gateway.url is set (tyk.conf \"secret\"; e.g. secret = \"${TYK_GW_SECRET}\")"
                .to_owned(),
        ));
    }
    if let Some(storage) = &gw.storage {
        storage::validate(storage, at, &mut problems);
    }
    if gw.history < gw.poll_interval {
        problems.push(at.problem_at(
            &[K("gateway"), K("history")],
            &[K("gateway"), K("poll_interval")],
            format!(
                "must be at least gateway.poll_interval ({:?}), got {:?}",
                gw.poll_interval, gw.history
            ),
        ));
    }

    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, hook) in config.webhooks.iter().enumerate() {
        let first = *seen.entry(&hook.name).or_insert(i);
        if first != i {
            problems.push(at.problem_at(
                &[K("webhooks"), I(i), K("name")],
                &[],
                format!(
                    "duplicate webhook name {:?} (also webhooks[{first}])",
                    hook.name
                ),
            ));
        }
    }

    for (i, route) in config.routes.iter().enumerate() {
        for (j, name) in route.webhooks.iter().enumerate() {
            if !config.webhooks.iter().any(|w| &w.name == name) {
                let defined: Vec<&str> = config.webhooks.iter().map(|w| w.name.as_str()).collect();
                let defined = if defined.is_empty() {
                    "no [[webhooks]] are defined".to_owned()
                } else {
                    format!("defined: {}", defined.join(", "))
                };
                problems.push(at.problem_at(
                    &[K("routes"), I(i), K("webhooks"), I(j)],
                    &[],
                    format!("unknown webhook {name:?} ({defined})"),
                ));
            }
        }
        if route.events.is_empty() {
            problems.push(at.problem_at(
                &[K("routes"), I(i), K("events")],
                &[K("routes"), I(i)],
                "must name at least one event pattern (\"*\" = every event)".to_owned(),
            ));
        }
        if !route.email_org
            && !route.email_developer
            && route.email_to.is_empty()
            && route.webhooks.is_empty()
        {
            problems.push(
                at.problem_at(
                    &[K("routes"), I(i)],
                    &[],
                    "the route sends nowhere: set email_org, email_to, email_developer or webhooks"
                        .to_owned(),
                ),
            );
        }
    }

    let email = &config.email_backend;
    if email.enable_email_notifications && email.default_from_email.is_empty() {
        problems.push(at.problem_at(
            &[K("email_backend"), K("default_from_email")],
            &[K("email_backend"), K("enable_email_notifications")],
            "required when email_backend.enable_email_notifications is true".to_owned(),
        ));
    }

    let intake = &config.intake;
    if let Some(addr) = intake.listen
        && !addr.ip().is_loopback()
        && intake.secret.is_empty()
    {
        problems.push(at.problem_at(
            &[K("intake"), K("secret")],
            &[K("intake"), K("listen")],
            format!("required when intake.listen ({addr}) is not a loopback address"),
        ));
    }

    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        for bad in ["", "2x", "s", "1.5s", "-1s", "2 s", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn interpolation_rules() {
        let mut env = |n: &str| (n == "A").then(|| "1".to_owned());
        assert_eq!(interpolate("x${A}y", &mut env), Ok("x1y".to_owned()));
        assert_eq!(interpolate("$${A}", &mut env), Ok("${A}".to_owned()));
        assert_eq!(interpolate("a$b$", &mut env), Ok("a$b$".to_owned()));
        assert!(interpolate("${B}", &mut env).is_err());
        assert!(interpolate("${A", &mut env).is_err());
        assert!(interpolate("${1A}", &mut env).is_err());
    }

    #[test]
    fn urls() {
        for ok in [
            "http://localhost:8080",
            "https://h.example.com/a?b=c",
            "http://[::1]:80/",
            "HTTPS://X",
        ] {
            assert_eq!(check_url(ok), Ok(()), "{ok}");
        }
        for bad in [
            "localhost:8080",
            "ftp://h",
            "http://",
            "http://:80",
            "http://h:0",
            "http://h:x",
            "http://u:p@h",
            "http://h h",
            "http://[zz]",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn line_col_counts_chars() {
        let text = "a\nbé=c\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 2), (2, 1));
        assert_eq!(line_col(text, 5), (2, 3));
        assert_eq!(line_col(text, 999), (3, 1));
    }

    #[test]
    fn env_scope_is_restored() {
        let err = Config::load_from_str("[gateway]\nsecret = \"${X}\"\n", "t", &no_env);
        assert!(err.is_err());
        assert!(ENV.with(|e| e.borrow().is_none()));
    }
}
