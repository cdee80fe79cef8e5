//! Where to connect: `[store] url` (libpq's URL form) with the `PG*` environment variables for
//! what it leaves out, the TLS mode, and errors that say what to fix.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use postgres::Client;
#[cfg(test)]
use postgres::config::Host;
use postgres::config::SslMode;

use super::STATEMENT_TIMEOUT;
use crate::config::StoreConfig;
use crate::store::{Result, StoreError};

/// libpq's `sslmode`, as far as it decides what tykwatch does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tls {
    Off,
    /// `allow`, `prefer` (libpq's default): TLS when the server offers it.
    Prefer,
    /// `require`, `verify-ca`, `verify-full`.
    Require,
}

pub(super) struct Target {
    config: postgres::Config,
    tls: Tls,
    root_cert: Option<PathBuf>,
    /// The URL as messages show it: the password masked.
    pub(super) shown: String,
}

/// `raw` with its password masked (an unparsable URL is not shown at all).
pub(super) fn mask(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("****"));
            }
            u.to_string()
        }
        Err(_) => "[store] url".to_owned(),
    }
}

/// The environment as libpq reads it (only what is not in the URL).
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Target {
    pub(super) fn from_config(c: &StoreConfig) -> Result<Target> {
        Target::parse(c.url.expose(), c.password.expose(), env)
    }

    fn parse(raw: &str, password: &str, env: impl Fn(&str) -> Option<String>) -> Result<Target> {
        let bad = |detail: String| StoreError::Server {
            target: "[store] url".into(),
            detail,
            hint: "write it as postgres://user@host:port/database?sslmode=verify-full".into(),
        };
        let mut url = url::Url::parse(raw).map_err(|e| bad(format!("not a URL: {e}")))?;
        let shown = mask(raw);
        // The driver knows neither sslrootcert nor the verify-* modes: both are taken out
        // here and applied to the TLS configuration.
        let mut sslmode = None;
        let mut root_cert = None;
        let kept: Vec<(String, String)> = url
            .query_pairs()
            .filter_map(|(k, v)| match &*k {
                "sslmode" => {
                    sslmode = Some(v.into_owned());
                    None
                }
                "sslrootcert" => {
                    root_cert = Some(PathBuf::from(v.into_owned()));
                    None
                }
                _ => Some((k.into_owned(), v.into_owned())),
            })
            .collect();
        if kept.is_empty() {
            url.set_query(None);
        } else {
            url.query_pairs_mut().clear().extend_pairs(kept);
        }
        let mut config: postgres::Config = url.as_str().parse().map_err(|e| {
            let msg = format!("{e}");
            bad(msg.replace(raw, &shown))
        })?;
        if config.get_hosts().is_empty() {
            config.host(env("PGHOST").as_deref().unwrap_or("localhost"));
        }
        if let Some(p) = env("PGPORT").filter(|_| config.get_ports().is_empty()) {
            let port = p
                .parse()
                .map_err(|_| bad(format!("PGPORT {p:?} is not a port number")))?;
            config.port(port);
        }
        if config.get_user().is_none() {
            let user = env("PGUSER")
                .or_else(|| env("USER"))
                .unwrap_or_else(|| "postgres".into());
            config.user(&user);
        }
        if let Some(db) = env("PGDATABASE").filter(|_| config.get_dbname().is_none()) {
            config.dbname(&db);
        }
        if !password.is_empty() {
            config.password(password);
        } else if let Some(p) = env("PGPASSWORD").filter(|_| config.get_password().is_none()) {
            config.password(p);
        }
        let sslmode = sslmode.or_else(|| env("PGSSLMODE"));
        let root_cert = root_cert.or_else(|| env("PGSSLROOTCERT").map(PathBuf::from));
        let tls = match sslmode.as_deref() {
            None | Some("prefer") | Some("allow") => Tls::Prefer,
            Some("disable") => Tls::Off,
            Some("require") | Some("verify-ca") | Some("verify-full") => Tls::Require,
            Some(other) => {
                return Err(bad(format!(
                    "sslmode {other:?} is not one of disable, allow, prefer, require, verify-ca, verify-full"
                )));
            }
        };
        config.ssl_mode(match tls {
            Tls::Off => SslMode::Disable,
            Tls::Prefer => SslMode::Prefer,
            Tls::Require => SslMode::Require,
        });
        config
            .application_name(concat!("tykwatch ", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(5))
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .tcp_user_timeout(Duration::from_secs(30))
            .options(&format!(
                "-c statement_timeout={}",
                STATEMENT_TIMEOUT.as_millis()
            ));
        Ok(Target {
            config,
            tls,
            root_cert,
            shown,
        })
    }

    pub(super) fn connect(&self) -> Result<Client> {
        let result = match self.tls {
            Tls::Off => self.config.connect(postgres::NoTls),
            Tls::Prefer | Tls::Require => {
                let tls = tokio_postgres_rustls::MakeRustlsConnect::new(self.rustls()?);
                self.config.connect(tls)
            }
        };
        result.map_err(|e| describe(&self.shown, &e))
    }

    /// Verification always on: the platform's roots, or `sslrootcert`'s.
    fn rustls(&self) -> Result<rustls::ClientConfig> {
        let fail = |detail: String, hint: &str| StoreError::Server {
            target: self.shown.clone(),
            detail,
            hint: hint.into(),
        };
        match &self.root_cert {
            None => {
                use rustls_platform_verifier::ConfigVerifierExt;
                rustls::ClientConfig::with_platform_verifier().map_err(|e| {
                    fail(
                        format!("cannot load the platform's certificate roots: {e}"),
                        "set sslrootcert=/path/to/ca.pem in the URL",
                    )
                })
            }
            Some(path) => {
                use rustls::pki_types::CertificateDer;
                use rustls::pki_types::pem::PemObject;
                let hint = "sslrootcert must name a readable PEM file of the server's CA";
                let mut roots = rustls::RootCertStore::empty();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| fail(format!("sslrootcert {}: {e}", path.display()), hint))?;
                for cert in certs {
                    let cert = cert
                        .map_err(|e| fail(format!("sslrootcert {}: {e}", path.display()), hint))?;
                    roots
                        .add(cert)
                        .map_err(|e| fail(format!("sslrootcert {}: {e}", path.display()), hint))?;
                }
                if roots.is_empty() {
                    return Err(fail(
                        format!("sslrootcert {}: no certificate in it", path.display()),
                        hint,
                    ));
                }
                Ok(rustls::ClientConfig::builder()
                    .with_root_certificates(Arc::new(roots))
                    .with_no_client_auth())
            }
        }
    }

    #[cfg(test)]
    fn address(&self) -> String {
        let host = match self.config.get_hosts().first() {
            Some(Host::Tcp(h)) => h.clone(),
            Some(Host::Unix(p)) => p.display().to_string(),
            None => "localhost".into(),
        };
        let port = self.config.get_ports().first().copied().unwrap_or(5432);
        format!("{host}:{port}")
    }
}

/// What went wrong and what to do, from the server's SQLSTATE or the socket's error.
pub(super) fn describe(target: &str, e: &postgres::Error) -> StoreError {
    let server = |detail: String, hint: &str| StoreError::Server {
        target: target.to_owned(),
        detail,
        hint: hint.to_owned(),
    };
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        let detail = format!("{} (SQLSTATE {code})", db.message());
        let hint = match code {
            "28P01" | "28000" => {
                "check the user and password ([store] password, PGPASSWORD, or the URL) and the server's pg_hba.conf"
            }
            "3D000" => {
                "create the database (createdb NAME, or CREATE DATABASE) or fix the URL's path"
            }
            "42501" => {
                "the user needs CREATE on the database's schema to migrate it, and read/write on its tables"
            }
            "53300" => {
                "the server has no connection slots left: raise max_connections or free some"
            }
            "57P01" | "57P02" | "57P03" => {
                "the server is shutting down or starting; it is tried again"
            }
            "40001" | "40P01" => "a conflict with another instance; it is tried again",
            "57014" => "a statement ran past the 30 s statement timeout (a lock held elsewhere?)",
            _ => "",
        };
        return server(detail, hint);
    }
    // Not the server's answer: the socket, TLS or the driver. Its causes name the problem.
    let mut detail = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let text = s.to_string();
        if !detail.contains(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        source = s.source();
    }
    let hint = if detail.contains("refused") {
        "is PostgreSQL running and listening on that host and port (listen_addresses)?"
    } else if detail.contains("certificate") || detail.contains("tls") || detail.contains("TLS") {
        "the server's certificate must verify against the platform's roots or sslrootcert, for the URL's host name"
    } else if e.is_closed() {
        "the server closed the connection; it is opened again on the next call"
    } else {
        "check [store] url"
    };
    server(detail, hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str, env: &[(&str, &str)]) -> Result<Target> {
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Target::parse(url, "", move |k| {
            env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    #[test]
    fn the_password_is_masked_and_verify_modes_require_tls() {
        let t = parse(
            "postgres://tw:s3cret@db.example.com:6543/ledger?sslmode=verify-full&sslrootcert=/ca.pem",
            &[],
        )
        .unwrap();
        assert!(!t.shown.contains("s3cret"), "{}", t.shown);
        assert!(t.shown.contains("****"), "{}", t.shown);
        assert_eq!(t.tls, Tls::Require);
        assert_eq!(t.root_cert, Some(PathBuf::from("/ca.pem")));
        assert_eq!(t.config.get_dbname(), Some("ledger"));
        assert_eq!(t.config.get_password(), Some(&b"s3cret"[..]));
        assert_eq!(t.address(), "db.example.com:6543");
    }

    #[test]
    fn pg_variables_fill_what_the_url_leaves_out() {
        let t = parse(
            "postgres:///",
            &[
                ("PGHOST", "pg.internal"),
                ("PGPORT", "5433"),
                ("PGUSER", "watch"),
                ("PGPASSWORD", "pw"),
                ("PGDATABASE", "tw"),
                ("PGSSLMODE", "disable"),
            ],
        )
        .unwrap();
        assert_eq!(t.address(), "pg.internal:5433");
        assert_eq!(t.config.get_user(), Some("watch"));
        assert_eq!(t.config.get_password(), Some(&b"pw"[..]));
        assert_eq!(t.config.get_dbname(), Some("tw"));
        assert_eq!(t.tls, Tls::Off);
    }

    #[test]
    fn an_unknown_sslmode_is_refused_by_name() {
        let Err(e) = parse("postgres://h/db?sslmode=sometimes", &[]) else {
            panic!("sslmode=sometimes was accepted");
        };
        assert!(e.to_string().contains("sometimes"), "{e}");
        assert!(parse("postgres://h/db", &[]).unwrap().tls == Tls::Prefer);
    }
}
