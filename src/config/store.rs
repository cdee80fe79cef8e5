//! `[store]`: where the ledger and the outbox live. Unset: SQLite in the data dir (one
//! instance). `url = "postgres://…"`: one PostgreSQL database shared by several instances.

use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer};

use super::{IntOrText, Interp, Secret, duration_value};

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user@host:port/database?sslmode=verify-full` (libpq's URL form). Holds a
    /// password only if written there; prefer `password` or `PGPASSWORD`.
    #[serde(deserialize_with = "de_url")]
    pub url: Secret,
    /// Wins over the URL's password; falls back to `PGPASSWORD`.
    pub password: Secret,
    /// How long a claimed notification stays with its instance without a renewal (renewed
    /// every third of it): after an instance dies, its sends go out from another one this
    /// much later.
    #[serde(deserialize_with = "de_lease")]
    pub lease: Duration,
    /// Delivered and dead notifications and received events older than this are deleted
    /// by the engine (with the ledger rows of periods that ended that long ago); failed
    /// `tyk` rows that old lose their raw key. `0` keeps everything.
    #[serde(deserialize_with = "super::parse::de_duration")]
    pub retention: Duration,
}

/// `[store] retention` unless set: a month of history in the console and `outbox list`.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(30 * 86_400);

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: Secret::default(),
            password: Secret::default(),
            lease: Duration::from_secs(30),
            retention: DEFAULT_RETENTION,
        }
    }
}

impl StoreConfig {
    /// Whether the store is PostgreSQL (shared by instances).
    pub fn is_shared(&self) -> bool {
        !self.url.is_empty()
    }
}

fn de_url<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    let s = Interp::deserialize(d)?.0;
    let lower = s.to_ascii_lowercase();
    if !(lower.starts_with("postgres://") || lower.starts_with("postgresql://")) {
        return Err(de::Error::custom(
            "must be a postgres:// URL (e.g. \"postgres://tykwatch@db.internal/tykwatch?sslmode=verify-full\"); without [store] url the ledger is SQLite in the data dir",
        ));
    }
    if let Err(e) = url::Url::parse(&s) {
        return Err(de::Error::custom(format!(
            "is not a valid URL ({e}); a password with @, : or / must be percent-encoded, or set it in [store] password"
        )));
    }
    Ok(Secret::new(s))
}

fn de_lease<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    // Shorter than a couple of seconds, a busy database could let a live instance's lease
    // pass between two renewals.
    const MIN: Duration = Duration::from_secs(2);
    let value = duration_value(IntOrText::deserialize(d)?).map_err(de::Error::custom)?;
    if value < MIN {
        return Err(de::Error::custom("must be at least 2s (e.g. \"30s\")"));
    }
    Ok(value)
}
