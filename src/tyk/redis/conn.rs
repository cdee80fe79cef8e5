//! Connecting to Tyk's Redis and the read-only commands tykwatch sends: `SCAN`, `MGET`, `GET`,
//! `PTTL` (and `SUBSCRIBE`, `CLUSTER SHARDS`, `PING`). Nothing here writes — see the README.
//!
//! Topologies as Tyk picks them (TykTechnologies/storage `NewRedisV9WithOpts`): Sentinel when
//! `master_name` is set, Redis Cluster with `enable_cluster`, else one server. On a cluster the
//! client library routes each key to its slot's node (`MGET` split by slot, pipelines per node);
//! `SCAN` is sent to every master.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Client, RedisError, Value};

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
    /// PEM files: a CA instead of the system roots, a client certificate and key (mTLS).
    pub ca_file: Option<std::path::PathBuf>,
    pub cert_file: Option<std::path::PathBuf>,
    pub key_file: Option<std::path::PathBuf>,
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
    #[error("TLS with Tyk's Redis at {addr} failed: {reason} — {hint}")]
    Tls {
        addr: String,
        reason: String,
        hint: &'static str,
    },
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
    /// A short, stable name of the variant: the `kind` label of the sweep error metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            StorageError::Unreachable { .. } => "unreachable",
            StorageError::Tls { .. } => "tls",
            StorageError::Auth { .. } => "auth",
            StorageError::Timeout { .. } => "timeout",
            StorageError::Command { .. } => "command",
            StorageError::Config { .. } => "config",
            StorageError::BadSession { .. } => "bad_session",
            StorageError::Unsupported { .. } => "unsupported",
        }
    }
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
            ca_file: c.ca_file.clone(),
            cert_file: c.cert_file.clone(),
            key_file: c.key_file.clone(),
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

/// An open connection to Tyk's Redis.
#[derive(Clone)]
pub enum Conn {
    /// One server, or the master a Sentinel named.
    Single {
        conn: MultiplexedConnection,
        /// More connections to the same server: replies of parallel batches are parsed on as
        /// many tasks (one connection's replies are parsed by one task).
        lanes: Arc<Vec<MultiplexedConnection>>,
        /// For `SUBSCRIBE` (a connection of its own).
        client: Client,
        addr: String,
    },
    Cluster {
        conn: ClusterConnection,
        /// Masters (`host`, `port`) to `SCAN`, from `CLUSTER SLOTS`.
        masters: Vec<(String, u16)>,
        /// `(first slot, last slot, index into masters)`, to send each master one pipeline.
        slots: Arc<Vec<(u16, u16, usize)>>,
        /// For `SUBSCRIBE`: `PUBLISH` reaches every node of a cluster.
        client: Client,
    },
}

/// Where an incremental `SCAN` over every master stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanCursor {
    node: usize,
    cursor: u64,
}

impl ScanCursor {
    pub fn is_start(&self) -> bool {
        self.node == 0 && self.cursor == 0
    }
}

/// Connections per server for parallel batches (the machine-wide parse work is what they
/// spread; more than the cores helps nothing).
pub(super) const LANES: usize = 2;

impl Conn {
    /// A handle for the `i`-th of several parallel batches: on one server, one of its lanes.
    pub fn lane(&self, i: usize) -> Conn {
        let mut c = self.clone();
        if let Conn::Single { conn, lanes, .. } = &mut c
            && !lanes.is_empty()
        {
            *conn = lanes[i % lanes.len()].clone();
        }
        c
    }

    /// The address errors name.
    pub fn addr(&self) -> String {
        match self {
            Conn::Single { addr, .. } => addr.clone(),
            Conn::Cluster { masters, .. } => masters
                .first()
                .map(|(h, p)| format!("{h}:{p} (cluster)"))
                .unwrap_or_default(),
        }
    }

    /// A client for `SUBSCRIBE`.
    pub fn pubsub_client(&self) -> Client {
        match self {
            Conn::Single { client, .. } | Conn::Cluster { client, .. } => client.clone(),
        }
    }

    /// Up to `steps` `SCAN cursor MATCH pattern COUNT count` calls, moving from master to master;
    /// returns whether the pass over every master completed (cursor back at the start) and the
    /// calls made.
    pub async fn scan_steps(
        &mut self,
        cursor: &mut ScanCursor,
        pattern: &str,
        count: usize,
        steps: usize,
        names: &mut Vec<String>,
    ) -> Result<(bool, usize), RedisError> {
        for call in 1..=steps.max(1) {
            let mut cmd = redis::cmd("SCAN");
            cmd.arg(cursor.cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(count);
            let (next, mut batch): (u64, Vec<String>) = match self {
                Conn::Single { conn, .. } => cmd.query_async(conn).await?,
                Conn::Cluster { conn, masters, .. } => {
                    let Some((host, port)) = masters.get(cursor.node).cloned() else {
                        *cursor = ScanCursor::default();
                        return Ok((true, call - 1));
                    };
                    let routing =
                        RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port });
                    let v = conn.route_command(cmd, routing).await?;
                    redis::from_redis_value(v)?
                }
            };
            names.append(&mut batch);
            cursor.cursor = next;
            if next == 0 {
                let nodes = match self {
                    Conn::Single { .. } => 1,
                    Conn::Cluster { masters, .. } => masters.len(),
                };
                cursor.node += 1;
                if cursor.node >= nodes {
                    *cursor = ScanCursor::default();
                    return Ok((true, call));
                }
            }
        }
        Ok((false, steps.max(1)))
    }

    /// `MGET` of `keys` (split by slot on a cluster); `None` for absent keys.
    pub async fn mget(&mut self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, RedisError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut cmd = redis::cmd("MGET");
        for k in keys {
            cmd.arg(k);
        }
        let v: Value = match self {
            Conn::Single { conn, .. } => cmd.query_async(conn).await?,
            Conn::Cluster { conn, .. } => cmd.query_async(conn).await?,
        };
        Ok(bulk_values(v, keys.len()))
    }

    /// The integer values of `keys` (`MGET`; one pipeline of `GET`s per master on a cluster).
    /// Absent keys and values that are not integers (not a counter Tyk wrote) read as `None`.
    pub async fn values(&mut self, keys: &[&str]) -> Result<Vec<Option<i64>>, RedisError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let vals = match self {
            Conn::Single { conn, .. } => {
                let mut cmd = redis::cmd("MGET");
                for k in keys {
                    cmd.arg(*k);
                }
                match cmd.query_async::<Value>(conn).await? {
                    Value::Array(v) => v,
                    _ => Vec::new(),
                }
            }
            Conn::Cluster { .. } => self.per_master("GET", keys).await?,
        };
        let mut out: Vec<Option<i64>> = vals
            .into_iter()
            .map(|v| match v {
                Value::BulkString(b) => std::str::from_utf8(&b)
                    .ok()
                    .and_then(|s| s.trim().parse().ok()),
                Value::Int(i) => Some(i),
                _ => None,
            })
            .collect();
        out.resize(keys.len(), None);
        Ok(out)
    }

    /// `PTTL` of `keys` in ms (`-2` absent, `-1` no expiry), pipelined (per master on a cluster).
    pub async fn pttls(&mut self, keys: &[&str]) -> Result<Vec<i64>, RedisError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let vals = match self {
            Conn::Single { conn, .. } => {
                let mut pipe = redis::pipe();
                for k in keys {
                    pipe.cmd("PTTL").arg(*k);
                }
                pipe.query_async::<Vec<Value>>(conn).await?
            }
            Conn::Cluster { .. } => self.per_master("PTTL", keys).await?,
        };
        let mut out: Vec<i64> = vals
            .into_iter()
            .map(|v| if let Value::Int(i) = v { i } else { -2 })
            .collect();
        out.resize(keys.len(), -2);
        Ok(out)
    }

    /// `CMD key` for every key, as one pipeline per master (a cluster pipeline must not cross
    /// nodes); the replies in the order of `keys`.
    async fn per_master(&mut self, cmd: &str, keys: &[&str]) -> Result<Vec<Value>, RedisError> {
        let Conn::Cluster {
            conn,
            masters,
            slots,
            ..
        } = self
        else {
            return Ok(Vec::new());
        };
        let mut groups: Vec<Vec<usize>> = vec![Vec::new(); masters.len()];
        for (i, k) in keys.iter().enumerate() {
            let slot = key_slot(k.as_bytes());
            let m = slots
                .iter()
                .find(|(a, b, _)| (*a..=*b).contains(&slot))
                .map_or(0, |r| r.2);
            groups[m].push(i);
        }
        let mut vals = vec![Value::Nil; keys.len()];
        let mut calls = Vec::new();
        for (m, idx) in groups
            .into_iter()
            .enumerate()
            .filter(|(_, g)| !g.is_empty())
        {
            let mut pipe = redis::pipe();
            for &i in &idx {
                pipe.cmd(cmd).arg(keys[i]);
            }
            let (host, port) = masters[m].clone();
            let route = SingleNodeRoutingInfo::ByAddress { host, port };
            let mut conn = conn.clone();
            calls.push(async move {
                conn.route_pipeline(pipe, 0, idx.len(), route)
                    .await
                    .map(|v| (idx, v))
            });
        }
        for r in futures_util::future::join_all(calls).await {
            let (idx, v) = r?;
            for (j, value) in idx.into_iter().zip(v) {
                vals[j] = value;
            }
        }
        Ok(vals)
    }

    /// `INFO <section>` (of one node on a cluster).
    pub async fn info(&mut self, section: &str) -> Result<String, RedisError> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg(section);
        match self {
            Conn::Single { conn, .. } => cmd.query_async(conn).await,
            Conn::Cluster { conn, .. } => {
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::Random);
                Ok(redis::from_redis_value(
                    conn.route_command(cmd, routing).await?,
                )?)
            }
        }
    }

    pub async fn ping(&mut self) -> Result<(), RedisError> {
        let cmd = redis::cmd("PING");
        match self {
            Conn::Single { conn, .. } => cmd.query_async::<String>(conn).await.map(|_| ()),
            Conn::Cluster { conn, .. } => cmd.query_async::<String>(conn).await.map(|_| ()),
        }
    }
}

/// The cluster slot of a key: CRC16 (XMODEM) of the key, or of its `{hash tag}`, mod 16384.
fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    crc16::State::<crc16::XMODEM>::calculate(tagged) % 16384
}

fn bulk_values(v: Value, n: usize) -> Vec<Option<Vec<u8>>> {
    let mut out = Vec::with_capacity(n);
    if let Value::Array(items) = v {
        for item in items {
            out.push(match item {
                Value::BulkString(b) => Some(b),
                Value::SimpleString(s) => Some(s.into_bytes()),
                _ => None,
            });
        }
    }
    out.resize(n, None);
    out
}

/// How long to wait between reconnect attempts is the engine's backoff; this is the pause
/// before re-subscribing after the pub/sub connection dropped.
pub const RESUBSCRIBE_DELAY: Duration = Duration::from_secs(2);
