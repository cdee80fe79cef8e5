//! Connecting to Tyk's Redis and the read-only commands tykwatch sends.

use std::time::Duration;

/// How to reach Tyk's Redis (from `[gateway.storage]`).
#[derive(Debug, Clone, PartialEq)]
pub struct RedisSettings {
    pub topology: Topology,
    pub addrs: Vec<String>,
    pub username: String,
    pub password: String,
    pub sentinel_password: String,
    pub database: i64,
    pub tls: bool,
    pub tls_insecure: bool,
    pub timeout: Duration,
    pub batch: usize,
    pub subscribe: bool,
    pub session_refresh: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Topology {
    Single,
    Sentinel { master_name: String },
    Cluster,
}

/// A Redis problem, said so that an operator knows what to change.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StorageError {
    #[error(
        "cannot reach Tyk's Redis at {addr}: {reason} — is it running, and are [gateway.storage] host/port/addrs right?"
    )]
    Unreachable { addr: String, reason: String },
    #[error(
        "Tyk's Redis at {addr} refused the credentials ({reason}) — set [gateway.storage] password (or TYK_GW_STORAGE_PASSWORD) and username to tyk.conf's storage values"
    )]
    Auth { addr: String, reason: String },
    #[error(
        "Tyk's Redis did not answer {what} within {secs:.1}s — check its load, or raise [gateway.storage] timeout"
    )]
    Timeout { what: String, secs: f64 },
    #[error("{what}: {reason}")]
    Command { what: String, reason: String },
    #[error("{0}")]
    Config(String),
    #[error("session {name} is not a Tyk session ({detail}) — skipped")]
    BadSession { name: String, detail: String },
    #[error("{0}")]
    Unsupported(String),
}

impl StorageError {
    /// A bad or vanished single session does not make the source unhealthy.
    pub fn is_per_key(&self) -> bool {
        matches!(
            self,
            StorageError::BadSession { .. } | StorageError::Unsupported(_)
        )
    }
}

impl RedisSettings {
    pub fn from_config(c: &crate::config::StorageConfig, password_env: Option<String>) -> Self {
        let topology = if !c.master_name.is_empty() {
            Topology::Sentinel {
                master_name: c.master_name.clone(),
            }
        } else if c.enable_cluster {
            Topology::Cluster
        } else {
            Topology::Single
        };
        RedisSettings {
            topology,
            addrs: c.addresses(),
            username: c.username.clone(),
            password: password_env.unwrap_or_else(|| c.password.expose().to_string()),
            sentinel_password: c.sentinel_password.expose().to_string(),
            database: c.database,
            tls: c.use_ssl,
            tls_insecure: c.ssl_insecure_skip_verify,
            timeout: c.timeout,
            batch: c.batch,
            subscribe: c.subscribe,
            session_refresh: c.session_refresh,
        }
    }

    /// What the header shows: `redis://host:port/db`, the cluster's seed, or the Sentinel master.
    pub fn label(&self) -> String {
        let scheme = if self.tls { "rediss" } else { "redis" };
        let first = self
            .addrs
            .first()
            .map(String::as_str)
            .unwrap_or("localhost:6379");
        match &self.topology {
            Topology::Single => format!("{scheme}://{first}/{}", self.database),
            Topology::Cluster => format!("{scheme} cluster {first} (+{})", self.addrs.len() - 1),
            Topology::Sentinel { master_name } => {
                format!("{scheme} sentinel {master_name}@{first}/{}", self.database)
            }
        }
    }
}
