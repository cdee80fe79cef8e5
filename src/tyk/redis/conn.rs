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
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, Value,
};

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

impl RedisSettings {
    fn node_info(&self, addr: &str) -> Result<ConnectionInfo, StorageError> {
        let (host, port) = split_addr(addr)?;
        let addr = if self.tls {
            ConnectionAddr::TcpTls {
                host,
                port,
                insecure: self.tls_insecure,
                tls_params: None,
            }
        } else {
            ConnectionAddr::Tcp(host, port)
        };
        let mut redis = RedisConnectionInfo::default().set_db(self.database);
        if !self.username.is_empty() {
            redis = redis.set_username(&self.username);
        }
        if !self.password.is_empty() {
            redis = redis.set_password(&self.password);
        }
        addr.into_connection_info()
            .map(|i| i.set_redis_settings(redis))
            .map_err(|e| StorageError::Config(format!("[gateway.storage] {e}")))
    }

    /// The TLS files of `[gateway.storage]`, read now; `None` without any.
    fn tls_certificates(&self) -> Result<Option<redis::TlsCertificates>, StorageError> {
        let read = |key: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| {
                StorageError::Config(format!("[gateway.storage] {key} {}: {e}", path.display()))
            })
        };
        let root_cert = match &self.ca_file {
            Some(p) => Some(read("ca_file", p)?),
            None => None,
        };
        let client_tls = match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => Some(redis::ClientTlsConfig {
                client_cert: read("cert_file", c)?,
                client_key: read("key_file", k)?,
            }),
            _ => None,
        };
        Ok(
            (root_cert.is_some() || client_tls.is_some()).then_some(redis::TlsCertificates {
                client_tls,
                root_cert,
            }),
        )
    }

    fn client(&self, info: ConnectionInfo) -> Result<Client, StorageError> {
        let certs = if self.tls {
            self.tls_certificates()?
        } else {
            None
        };
        match certs {
            Some(c) => Client::build_with_tls(info, c),
            None => Client::open(info),
        }
        .map_err(|e| StorageError::Config(format!("[gateway.storage] {e}")))
    }

    fn async_config(&self) -> AsyncConnectionConfig {
        AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout))
    }

    fn first_addr(&self) -> String {
        self.addrs
            .first()
            .cloned()
            .unwrap_or_else(|| "localhost:6379".into())
    }

    /// Opens a connection as `[gateway.storage]` says; errors say what to fix.
    pub async fn connect(&self) -> Result<Conn, StorageError> {
        install_crypto_provider();
        match &self.topology {
            Topology::Single => {
                let addr = self.first_addr();
                self.connect_single(addr).await
            }
            Topology::Sentinel { master_name } => self.connect_sentinel(master_name).await,
            Topology::Cluster => self.connect_cluster().await,
        }
    }

    async fn connect_single(&self, addr: String) -> Result<Conn, StorageError> {
        let client = self.client(self.node_info(&addr)?)?;
        let mut conn = self.open(&client, &addr).await?;
        // A cluster node answers GET of most keys with MOVED: say what to set instead.
        let info: String = redis::cmd("INFO")
            .arg("cluster")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("INFO", &addr, &e))?;
        if info.contains("cluster_enabled:1") {
            return Err(StorageError::Config(format!(
                "{addr} is a Redis Cluster node — set [gateway.storage] enable_cluster = true (tyk.conf \"enable_cluster\")"
            )));
        }
        self.single(client, conn, addr).await
    }

    /// One connection to a server, within the timeout.
    async fn open(
        &self,
        client: &Client,
        addr: &str,
    ) -> Result<MultiplexedConnection, StorageError> {
        tokio::time::timeout(
            self.timeout,
            client.get_multiplexed_async_connection_with_config(&self.async_config()),
        )
        .await
        .map_err(|_| self.timeout_error("connecting"))?
        .map_err(|e| self.error("connecting", addr, &e))
    }

    /// A connected single server (or Sentinel master), with its extra lanes.
    async fn single(
        &self,
        client: Client,
        conn: MultiplexedConnection,
        addr: String,
    ) -> Result<Conn, StorageError> {
        let mut lanes = vec![conn.clone()];
        for _ in 1..LANES {
            lanes.push(self.open(&client, &addr).await?);
        }
        Ok(Conn::Single {
            conn,
            lanes: Arc::new(lanes),
            client,
            addr,
        })
    }

    async fn connect_sentinel(&self, master_name: &str) -> Result<Conn, StorageError> {
        use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
        let mut sentinels = Vec::new();
        for a in &self.addrs {
            let (host, port) = split_addr(a)?;
            sentinels.push(ConnectionAddr::Tcp(host, port));
        }
        let mut b = SentinelClientBuilder::new(sentinels, master_name, SentinelServerType::Master)
            .map_err(|e| StorageError::Config(format!("[gateway.storage] {e}")))?
            .set_client_to_redis_db(self.database);
        if !self.username.is_empty() {
            b = b.set_client_to_redis_username(&self.username);
        }
        if !self.password.is_empty() {
            b = b.set_client_to_redis_password(&self.password);
        }
        if !self.sentinel_password.is_empty() {
            b = b.set_client_to_sentinel_password(&self.sentinel_password);
        }
        if self.tls {
            b = b.set_client_to_redis_tls_mode(if self.tls_insecure {
                redis::TlsMode::Insecure
            } else {
                redis::TlsMode::Secure
            });
            if let Some(certs) = self.tls_certificates()? {
                b = b.set_client_to_redis_certificates(certs);
            }
        }
        let mut sentinel = b
            .build()
            .map_err(|e| StorageError::Config(format!("[gateway.storage] {e}")))?;
        let seed = self.first_addr();
        let client = tokio::time::timeout(self.timeout, sentinel.async_get_client())
            .await
            .map_err(|_| self.timeout_error("asking the Sentinels for the master"))?
            .map_err(|e| match e.kind() {
                redis::ErrorKind::MasterNameNotFoundBySentinel => StorageError::Config(format!(
                    "the Sentinels at {seed} know no master named {master_name:?} — check [gateway.storage] master_name"
                )),
                _ => self.error("asking the Sentinels for the master", &seed, &e),
            })?;
        let addr = client.get_connection_info().addr().to_string();
        let conn = self.open(&client, &addr).await?;
        self.single(client, conn, addr).await
    }

    async fn connect_cluster(&self) -> Result<Conn, StorageError> {
        let seeds = self
            .addrs
            .iter()
            .map(|a| self.node_info(a))
            .collect::<Result<Vec<_>, _>>()?;
        let mut b = ClusterClientBuilder::new(seeds.clone())
            .connection_timeout(self.timeout)
            .response_timeout(self.timeout)
            .retries(1);
        if !self.username.is_empty() {
            b = b.username(&self.username);
        }
        if !self.password.is_empty() {
            b = b.password(&self.password);
        }
        if self.tls {
            if let Some(certs) = self.tls_certificates()? {
                b = b.certs(certs);
            }
            b = b.tls(if self.tls_insecure {
                redis::cluster::TlsMode::Insecure
            } else {
                redis::cluster::TlsMode::Secure
            });
        }
        let seed = self.first_addr();
        let client = b
            .build()
            .map_err(|e| StorageError::Config(format!("[gateway.storage] {e}")))?;
        let mut conn = tokio::time::timeout(self.timeout, client.get_async_connection())
            .await
            .map_err(|_| self.timeout_error("connecting to the cluster"))?
            .map_err(|e| {
                let text = e.to_string();
                if text.contains("cluster support disabled") || text.contains("ERR This instance has cluster support disabled") {
                    StorageError::Config(format!(
                        "{seed} is not a Redis Cluster node — remove [gateway.storage] enable_cluster (tyk.conf \"enable_cluster\": false)"
                    ))
                } else {
                    self.error("connecting to the cluster", &seed, &e)
                }
            })?;
        let slots: Value = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query_async(&mut conn)
            .await
            .map_err(|e| self.error("CLUSTER SLOTS", &seed, &e))?;
        let ranges = cluster_slots(&slots);
        let mut masters: Vec<(String, u16)> = ranges.iter().map(|r| r.2.clone()).collect();
        if masters.is_empty() {
            return Err(StorageError::Config(format!(
                "{seed} is a cluster node but the cluster has no slots assigned — is the cluster created (redis-cli --cluster create)?"
            )));
        }
        masters.sort();
        masters.dedup();
        let slots = ranges
            .iter()
            .filter_map(|(a, b, m)| Some((*a, *b, masters.iter().position(|x| x == m)?)))
            .collect();
        let client = self.client(seeds[0].clone())?;
        Ok(Conn::Cluster {
            conn,
            masters,
            slots: Arc::new(slots),
            client,
        })
    }

    fn timeout_error(&self, what: &str) -> StorageError {
        // A TLS client on a plain port waits for a handshake the server never sends.
        let what = if self.tls && what == "connecting" {
            "the TLS handshake (use_ssl is set: does this port speak TLS?)"
        } else {
            what
        };
        StorageError::Timeout {
            what: what.to_string(),
            secs: self.timeout.as_secs_f64(),
        }
    }

    /// A Redis error in words an operator can act on. Never includes the password.
    pub fn error(&self, what: &str, addr: &str, e: &RedisError) -> StorageError {
        let code = e.code().unwrap_or_default();
        let reason = e.to_string();
        if e.kind() == redis::ErrorKind::AuthenticationFailed
            || matches!(code, "NOAUTH" | "WRONGPASS" | "NOPERM")
            || reason.contains("WRONGPASS")
            || reason.contains("NOAUTH")
        {
            return StorageError::Auth {
                addr: addr.to_string(),
                reason: first_line(&reason),
            };
        }
        if e.is_timeout() {
            return self.timeout_error(what);
        }
        if let Some(hint) = self.tls.then(|| tls_hint(&reason)).flatten() {
            return StorageError::Tls {
                addr: addr.to_string(),
                reason: first_line(&reason),
                hint,
            };
        }
        if e.is_io_error() || e.is_connection_refusal() || e.is_unrecoverable_error() {
            return StorageError::Unreachable {
                addr: addr.to_string(),
                reason: first_line(&reason),
            };
        }
        if reason.contains("DB index is out of range") {
            return StorageError::Config(format!(
                "Tyk's Redis at {addr} has no database {} — set [gateway.storage] database to tyk.conf's storage.database",
                self.database
            ));
        }
        StorageError::Command {
            what: format!("Tyk's Redis ({addr}) {what}"),
            reason: first_line(&reason),
        }
    }
}

/// What to change when a TLS connection failed, from rustls' reason; `None` when the failure
/// was not TLS's.
fn tls_hint(reason: &str) -> Option<&'static str> {
    let r = reason.to_ascii_lowercase();
    let hint = if r.contains("unknownissuer") || r.contains("unknown issuer") {
        "the server's certificate is signed by a CA this machine does not trust: set [gateway.storage] ca_file to that CA (tyk.conf storage.ca_file), or ssl_insecure_skip_verify = true"
    } else if r.contains("notvalidforname") || r.contains("not valid for name") {
        "the server's certificate does not name this host: connect by a name it carries, or set ssl_insecure_skip_verify = true"
    } else if r.contains("expired") || r.contains("notvalidyet") {
        "the server's certificate is outside its validity period (check both clocks), or set ssl_insecure_skip_verify = true"
    } else if r.contains("certificaterequired") || r.contains("certificate required") {
        "the server wants a client certificate: set [gateway.storage] cert_file and key_file (tyk.conf storage.cert_file / key_file)"
    } else if r.contains("invalidcontenttype") || r.contains("corrupt message") {
        "the server does not speak TLS on this port: unset [gateway.storage] use_ssl, or use its TLS port"
    } else if r.contains("certificate") || r.contains("handshake") || r.contains("tls") {
        "check [gateway.storage] use_ssl, ca_file, cert_file and key_file against tyk.conf's storage section"
    } else {
        return None;
    };
    Some(hint)
}

fn first_line(s: &str) -> String {
    s.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}

/// rustls needs one process-wide crypto provider; the project's (aws-lc-rs, as lettre and
/// reqwest use) is installed once when a TLS connection may be made.
fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn split_addr(addr: &str) -> Result<(String, u16), StorageError> {
    let bad = || {
        StorageError::Config(format!(
            "[gateway.storage] address {addr:?} is not host:port"
        ))
    };
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((host, port))
}

/// Slot ranges and their masters from `CLUSTER SLOTS`:
/// `[[start, end, [host, port, id, …], replicas…], …]`.
fn cluster_slots(v: &Value) -> Vec<(u16, u16, (String, u16))> {
    let mut out = Vec::new();
    let Value::Array(ranges) = v else {
        return out;
    };
    for r in ranges {
        let Value::Array(parts) = r else { continue };
        let Some(Value::Array(master)) = parts.get(2) else {
            continue;
        };
        let host = match master.first() {
            Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            Some(Value::SimpleString(s)) => s.clone(),
            _ => continue,
        };
        let (Some(Value::Int(start)), Some(Value::Int(end)), Some(Value::Int(port))) =
            (parts.first(), parts.get(1), master.get(1))
        else {
            continue;
        };
        if let (Ok(start), Ok(end), Ok(port)) = (
            u16::try_from(*start),
            u16::try_from(*end),
            u16::try_from(*port),
        ) {
            out.push((start, end, (host, port)));
        }
    }
    out
}

/// Connections per server for parallel batches (the machine-wide parse work is what they
/// spread; more than the cores helps nothing).
const LANES: usize = 2;

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
