//! The configuration file's sections: one struct per table, with Tyk's names.

#[allow(unused_imports)]
use super::*;

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
    pub metrics: MetricsConfig,
    /// `[store]`: SQLite in the data dir, or PostgreSQL shared by instances.
    pub store: StoreConfig,
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
    /// How long a connection may take to send a request's headers, or stay idle between
    /// requests, before it is closed.
    #[serde(deserialize_with = "de_positive_duration")]
    pub header_timeout: Duration,
    /// Connections served at once; more are closed at once (counted in `/metrics`).
    pub max_connections: usize,
}

impl Default for IntakeConfig {
    fn default() -> Self {
        IntakeConfig {
            listen: None,
            secret: Secret::default(),
            max_body: 1024 * 1024,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// How long a listener's connection may take to send a request head, or wait idle for its
/// next one (`[intake] header_timeout`; `[metrics]` uses it too).
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections a listener serves at once (`[intake] max_connections`).
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// `[metrics]`: the Prometheus endpoint (`/metrics`, `/healthz`, `/readyz`). Off unless
/// `listen` is set.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    #[serde(deserialize_with = "de_listen")]
    pub listen: Option<SocketAddr>,
    /// Most per-quota samples one scrape holds (7 a quota at most); past it the quotas nearest
    /// exhaustion are kept and the rest counted as dropped.
    #[serde(deserialize_with = "de_size")]
    pub max_series: usize,
    /// `/readyz` fails when no sweep has succeeded for this long; `None`: three poll
    /// intervals, at least 30 s.
    #[serde(default, deserialize_with = "de_opt_positive_duration")]
    pub stale_after: Option<Duration>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: None,
            max_series: 100_000,
            stale_after: None,
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

pub(super) fn yes() -> bool {
    true
}
