//! Claims with leases, outcomes and the instances' heartbeat: what lets several dispatchers
//! share one outbox. A claim marks rows `inflight` with who holds them (`claimed_by`), until
//! when (`claimed_until`) and a token of that claim (`claim_token`). A holder that dies stops
//! renewing; once its lease has passed, any dispatcher claims the rows again and sends them
//! with the same idempotency key. An outcome is written only while its claim still holds the
//! row (same token), so a paused holder that wakes up late cannot overwrite a newer outcome.

use crate::clock::UnixMs;

/// What [`crate::store::Store::claim`] may take.
#[derive(Debug, Clone)]
pub struct ClaimRequest<'a> {
    /// This dispatcher's instance id ([`Instance::id`]).
    pub instance: &'a str,
    /// Rows at most.
    pub room: usize,
    /// Rows one channel may hold claimed at once, counting every instance's live claims.
    pub per_channel: usize,
    /// The lease: rows are held until `now + lease_ms` unless renewed.
    pub lease_ms: i64,
}

/// The rows of one claim and its token (pass it to [`crate::store::Store::settle`]).
#[derive(Debug, Clone, Default)]
pub struct Claimed {
    pub token: i64,
    pub rows: Vec<crate::outbox::OutboxRow>,
}

/// How a send ended, as written to its row.
#[derive(Debug, Clone, PartialEq)]
pub enum Settle<'a> {
    /// The receiver accepted it (2xx / SMTP 250). Counts the attempt.
    Delivered { status: Option<u16>, at: UnixMs },
    /// A retryable failure: back to `pending` at `next_at`; `attempts` is the new total.
    Retry {
        attempts: u32,
        next_at: UnixMs,
        status: Option<u16>,
        error: &'a str,
    },
    /// A permanent failure: visible, resendable by hand.
    Failed {
        attempts: u32,
        status: Option<u16>,
        reason: &'a str,
    },
    /// The retry schedule is exhausted: visible, resendable by hand.
    Dead {
        attempts: u32,
        status: Option<u16>,
        reason: &'a str,
    },
}

/// One outcome for [`crate::store::Store::settle_all`]: which row, under which claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Settlement<'a> {
    pub idem_key: &'a str,
    /// The claim's token: written only while it still holds the row; `None`: unconditionally
    /// (a row in flight or pending).
    pub token: Option<i64>,
    pub outcome: Settle<'a>,
    /// The request or e-mail as this attempt sent it (credentials masked), with when; `None`
    /// when nothing was sent (it could not be built): the last one stored stays.
    pub sent: Option<(UnixMs, &'a str)>,
}

/// One running tykwatch, as its heartbeat records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// `host:pid:random`: unique per run, so a restarted process is a new instance.
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub version: String,
    /// A hash of the settings that decide what is notified (thresholds, channels): instances
    /// that disagree are shown.
    pub config_hash: String,
    pub started_at: UnixMs,
    pub seen_at: UnixMs,
}

impl Instance {
    /// This process, started now.
    pub fn this_process(config_hash: String, now: UnixMs) -> Instance {
        let host = hostname();
        let pid = std::process::id();
        let id = format!("{host}:{pid}:{:08x}", random_u64() as u32);
        Instance {
            id,
            host,
            pid,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            config_hash,
            started_at: now,
            seen_at: now,
        }
    }
}

/// The instances a store has heard from recently, as the console's header, `/metrics` and
/// `tykwatch check` show them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Peers {
    /// Heartbeats within two leases (a live instance renews every third of one), oldest
    /// start first.
    pub live: Vec<Instance>,
}

impl Peers {
    /// Reads the instances `store` heard from within two `lease`s of `now`.
    pub fn read(
        store: &crate::store::Store,
        now: UnixMs,
        lease: std::time::Duration,
    ) -> crate::store::Result<Peers> {
        let lease_ms = i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2);
        let live = store.instances(now.saturating_sub(lease_ms.saturating_mul(2)))?;
        Ok(Peers { live })
    }

    /// How many different settings hashes the live instances run with: more than one means
    /// they notify different thresholds or channels (the first to record a crossing decides
    /// its rows).
    pub fn settings_variants(&self) -> usize {
        let mut hashes: Vec<&str> = self.live.iter().map(|i| i.config_hash.as_str()).collect();
        hashes.sort_unstable();
        hashes.dedup();
        hashes.len()
    }

    pub fn disagree(&self) -> bool {
        self.settings_variants() > 1
    }
}

/// The host name (Linux: the kernel's), or `localhost` when it cannot be read.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "localhost".to_owned())
}

/// 64 random bits (std's per-process SipHash keys, stirred with the time): claim tokens and
/// instance ids only need to differ, not to be secret.
pub(crate) fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one(std::time::SystemTime::now())
}
