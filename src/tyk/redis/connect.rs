//! Connecting: Sentinel, Redis Cluster or one server as Tyk picks them, with TLS and AUTH, and
//! errors that say what to fix.

use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClientBuilder;
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, IntoConnectionInfo,
    RedisConnectionInfo, RedisError, Value,
};

use super::conn::*;

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
