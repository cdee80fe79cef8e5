//! `[gateway.storage]`: Tyk's Redis, read directly. The keys are those of tyk.conf's `storage`
//! section (TykTechnologies/tyk `config/config.go StorageOptionsConf`), so an admin can copy the
//! section over; only what tykwatch adds (`subscribe`, `batch`, `session_refresh`) is new.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::{
    IntOrText, Interp, Located, PathItem, Problem, Secret, de_opt_path, de_positive_duration,
    de_string, duration_value,
};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// tyk.conf `"type": "redis"`; nothing else is supported.
    #[serde(rename = "type", deserialize_with = "de_type")]
    pub kind: String,
    #[serde(deserialize_with = "de_string")]
    pub host: String,
    #[serde(deserialize_with = "de_port")]
    pub port: u16,
    /// `["h1:p1", …]`: Sentinels when `master_name` is set, seed nodes with `enable_cluster`.
    /// Tyk lets it win over `host`/`port`; here setting both is an error.
    #[serde(deserialize_with = "de_addrs")]
    pub addrs: Vec<String>,
    #[serde(deserialize_with = "de_string")]
    pub master_name: String,
    pub sentinel_password: Secret,
    pub enable_cluster: bool,
    #[serde(deserialize_with = "de_string")]
    pub username: String,
    /// `TYK_GW_STORAGE_PASSWORD` wins, as it does for the gateway.
    pub password: Secret,
    #[serde(deserialize_with = "de_database")]
    pub database: i64,
    pub use_ssl: bool,
    pub ssl_insecure_skip_verify: bool,
    #[serde(deserialize_with = "de_opt_path")]
    pub ca_file: Option<PathBuf>,
    #[serde(deserialize_with = "de_opt_path")]
    pub cert_file: Option<PathBuf>,
    #[serde(deserialize_with = "de_opt_path")]
    pub key_file: Option<PathBuf>,
    /// Seconds (tyk.conf writes an integer), or a duration such as `"2s"`.
    #[serde(deserialize_with = "de_positive_duration")]
    pub timeout: Duration,
    /// Tyk's pool sizes: accepted so a copied section loads; tykwatch uses one multiplexed
    /// connection (per node).
    pub optimisation_max_active: i64,
    pub optimisation_max_idle: i64,
    /// Follow `tyk.cluster.notifications` so a changed key shows before the next sweep.
    pub subscribe: bool,
    /// Names per `SCAN` step and keys per `MGET` / pipeline.
    #[serde(deserialize_with = "de_batch")]
    pub batch: usize,
    /// Every session is re-read within this time (sessions changed by the Dashboard or the
    /// API); quota counters are read every sweep.
    #[serde(deserialize_with = "de_refresh")]
    pub session_refresh: Duration,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            kind: "redis".into(),
            host: String::new(),
            port: 0,
            addrs: Vec::new(),
            master_name: String::new(),
            sentinel_password: Secret::default(),
            enable_cluster: false,
            username: String::new(),
            password: Secret::default(),
            database: 0,
            use_ssl: false,
            ssl_insecure_skip_verify: false,
            ca_file: None,
            cert_file: None,
            key_file: None,
            timeout: Duration::from_secs(5),
            optimisation_max_active: 0,
            optimisation_max_idle: 0,
            subscribe: true,
            batch: 1000,
            session_refresh: Duration::from_secs(60),
        }
    }
}

impl StorageConfig {
    /// `host:port` pairs to connect to: `addrs`, else `host`/`port` (Tyk's default
    /// `localhost:6379`).
    pub fn addresses(&self) -> Vec<String> {
        if !self.addrs.is_empty() {
            return self.addrs.clone();
        }
        let host = if self.host.is_empty() {
            "localhost"
        } else {
            &self.host
        };
        let port = if self.port == 0 { 6379 } else { self.port };
        vec![format!("{host}:{port}")]
    }
}

fn de_type<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = Interp::deserialize(d)?.0;
    if s != "redis" {
        return Err(de::Error::custom(format!(
            "only \"redis\" is supported (Tyk keeps sessions and quotas in Redis), got {s:?}"
        )));
    }
    Ok(s)
}

fn de_port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    let n = i64::deserialize(d)?;
    u16::try_from(n)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| de::Error::custom(format!("must be a TCP port from 1 to 65535, got {n}")))
}

fn de_database<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = i64::deserialize(d)?;
    if !(0..=10_000).contains(&n) {
        return Err(de::Error::custom(format!(
            "must be a Redis database index (0, 1, …), got {n}"
        )));
    }
    Ok(n)
}

fn de_batch<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = i64::deserialize(d)?;
    if !(10..=100_000).contains(&n) {
        return Err(de::Error::custom(format!(
            "must be between 10 and 100000, got {n}"
        )));
    }
    usize::try_from(n).map_err(de::Error::custom)
}

fn de_refresh<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let v = duration_value(IntOrText::deserialize(d)?).map_err(de::Error::custom)?;
    if v < Duration::from_secs(1) {
        return Err(de::Error::custom("must be at least 1s"));
    }
    Ok(v)
}

/// One `host:port` of `addrs`; a newtype so an error points at the element.
struct Addr(String);

impl<'de> Deserialize<'de> for Addr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        super::checked_str(d, |s| check_addr(&s).map(|()| Addr(s)))
    }
}

/// `host:port` or `[v6]:port`, as go-redis takes them.
pub fn check_addr(s: &str) -> Result<(), String> {
    let bad = || format!("{s:?} is not host:port (e.g. \"redis-1:6379\")");
    let (host, port) = s.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host.contains(char::is_whitespace) || host.contains('/') {
        return Err(bad());
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => Err(format!("{s:?} has no valid port (1–65535)")),
    }
}

fn de_addrs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<Addr>::deserialize(d)?
        .into_iter()
        .map(|a| a.0)
        .collect())
}

/// Rules across the keys of `[gateway.storage]`.
pub(super) fn validate(s: &StorageConfig, at: &Located<'_, '_>, problems: &mut Vec<Problem>) {
    use PathItem::K;
    let path = |key: &'static str| [K("gateway"), K("storage"), K(key)];
    if !s.addrs.is_empty() && (!s.host.is_empty() || s.port != 0) {
        let key = if s.host.is_empty() { "port" } else { "host" };
        problems.push(at.problem_at(
            &path(key),
            &path("addrs"),
            "set either addrs or host/port, not both (Tyk would silently use addrs)".into(),
        ));
    }
    if s.enable_cluster && !s.master_name.is_empty() {
        problems.push(at.problem_at(
            &path("master_name"),
            &path("enable_cluster"),
            "Sentinel (master_name) and Redis Cluster (enable_cluster) exclude each other".into(),
        ));
    }
    if s.enable_cluster && s.database != 0 {
        problems.push(at.problem_at(
            &path("database"),
            &path("enable_cluster"),
            "Redis Cluster has only database 0".into(),
        ));
    }
    if !s.master_name.is_empty() && s.addrs.is_empty() {
        problems.push(at.problem_at(
            &path("addrs"),
            &path("master_name"),
            "required with master_name: the Sentinel addresses, e.g. [\"sentinel-1:26379\"]".into(),
        ));
    }
    if s.cert_file.is_some() != s.key_file.is_some() {
        let key = if s.cert_file.is_some() {
            "key_file"
        } else {
            "cert_file"
        };
        problems.push(at.problem_at(
            &path(key),
            &[K("gateway"), K("storage")],
            "cert_file and key_file go together (a client certificate and its key)".into(),
        ));
    }
    if (s.ca_file.is_some() || s.cert_file.is_some()) && !s.use_ssl {
        let cause = if s.ca_file.is_some() {
            "ca_file"
        } else {
            "cert_file"
        };
        problems.push(at.problem_at(
            &path("use_ssl"),
            &path(cause),
            "must be true when TLS files are set".into(),
        ));
    }
}
