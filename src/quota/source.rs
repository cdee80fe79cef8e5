//! Where quotas are read from: the Gateway's REST API (one request per key) or Tyk's Redis
//! (a few pipelined round trips per sweep). The engine, `snapshot` and `tykwatch run` hold a
//! `Source` and never know which.

use super::model::Interner;
use super::poller::{self, SweepOptions, SweepOutcome};
use super::redis::RedisSource;
use crate::clock::Clock;
use crate::tyk::gateway::{Gateway, GatewayError};
use crate::tyk::redis::StorageError;

/// Why a sweep, or one item of it, could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    #[error(transparent)]
    Gateway(#[from] GatewayError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl SourceError {
    /// The `kind` label of the sweep error metrics: the source, then the variant.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceError::Gateway(e) => e.kind(),
            SourceError::Storage(e) => e.kind(),
        }
    }

    /// Errors about one key do not make the whole source unhealthy.
    pub fn is_per_key(&self) -> bool {
        match self {
            SourceError::Gateway(e) => e.is_per_key(),
            SourceError::Storage(e) => e.is_per_key(),
        }
    }
}

/// The REST source: the gateway and what was learnt about it (whether it hashes keys).
pub struct RestSource {
    pub gateway: Gateway,
    pub opts: SweepOptions,
    /// tyk.conf `hash_keys`; `None` until configured or detected.
    pub hash_keys: Option<bool>,
    /// `hash_keys` was learnt from the gateway (the sweep's probe), not configured.
    pub detected: bool,
    /// Shares the org ids, API names and lists that many sessions repeat.
    pub interner: Box<Interner>,
}

pub enum Source {
    Rest(RestSource),
    Redis(Box<RedisSource>),
}

impl Source {
    pub fn rest(gateway: Gateway, opts: SweepOptions, hash_keys: Option<bool>) -> Source {
        Source::Rest(RestSource {
            gateway,
            opts,
            hash_keys,
            detected: false,
            interner: Box::default(),
        })
    }

    /// Reads every quota once.
    pub async fn sweep(&mut self, clock: &dyn Clock) -> SweepOutcome {
        match self {
            Source::Rest(r) => poller::sweep(r, clock).await,
            Source::Redis(r) => r.sweep(clock).await,
        }
    }

    /// Reads the quotas of one raw key at once (the push path); never `complete`.
    pub async fn poll_key(&mut self, key: &str, clock: &dyn Clock) -> SweepOutcome {
        match self {
            Source::Rest(r) => poller::poll_key(r, key, clock).await,
            Source::Redis(r) => r.poll_key(key, clock).await,
        }
    }

    /// Keys changed since the last call, pushed by the source itself (Redis pub/sub); the
    /// engine re-reads them at once. Never resolves for sources without such signals.
    pub async fn changed(&mut self) -> Vec<String> {
        match self {
            Source::Rest(_) => std::future::pending().await,
            Source::Redis(r) => r.changed().await,
        }
    }

    /// Re-reads sessions by their stored suffix (what `changed` returned).
    pub async fn poll_suffixes(
        &mut self,
        suffixes: Vec<String>,
        clock: &dyn Clock,
    ) -> SweepOutcome {
        match self {
            Source::Rest(_) => SweepOutcome::default(),
            Source::Redis(r) => r.poll_suffixes(suffixes, clock).await,
        }
    }
}
