//! The durable state: the ledger of fired thresholds, the notification outbox, channel state,
//! the log of events received by the intake listener and the instances' heartbeat. The only
//! module that writes SQL (the transactional outbox; ARCHITECTURE.md "Data flow").
//!
//! Two engines behind one API, chosen once at start-up ([`Store::open_configured`]):
//! - [`sqlite`]: a file in the data dir, the embedded default for one instance and the console;
//! - [`postgres`]: `[store] url = "postgres://…"`, one ledger and outbox shared by several
//!   `tykwatch run` instances (claims with leases, [`claims`]).
//!
//! The API is synchronous: run it on a dedicated thread or in `spawn_blocking`; never hold a
//! `Store` borrow across an `.await` or a network send. All times are Unix milliseconds except
//! `period` (the quota's `quota_renews`, Unix seconds).

pub mod claims;
mod dump;
mod error;
pub mod postgres;
mod rows;
pub mod sqlite;

use std::path::Path;
use std::time::Duration;

pub use claims::{ClaimRequest, Claimed, Instance, Peers, Settle, Settlement};
pub use dump::Dump;
pub use error::{Result, StoreError};
pub use rows::{EventRow, NewEvent};

use crate::clock::UnixMs;
use crate::config::StoreConfig;
use crate::outbox::{
    ChannelId, Crossing, DisabledChannel, LedgerEntry, OutboxCounts, OutboxFilter, OutboxRow,
    OutboxState,
};
use postgres::Postgres;
use sqlite::Sqlite;

/// The SQLite database file inside the data dir.
pub const DB_FILE: &str = "tykwatch.db";

/// See [`Store::settings`]. `synchronous`: 2 = FULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSettings {
    pub journal_mode: String,
    pub synchronous: i64,
    pub foreign_keys: bool,
    pub busy_timeout_ms: i64,
}

#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// How long a write waits for another connection's lock before failing with `Locked`.
    pub busy_timeout: Duration,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            busy_timeout: Duration::from_millis(5000),
        }
    }
}

#[derive(Debug)]
enum Engine {
    Sqlite(Sqlite),
    Postgres(Postgres),
}

/// What one [`Store::apply_retention`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    pub delivered: usize,
    pub dead: usize,
    pub events: usize,
    /// Failed `tyk` rows whose raw key was removed.
    pub scrubbed: usize,
    pub ledger: usize,
}

impl Purged {
    pub fn is_empty(&self) -> bool {
        *self == Purged::default()
    }
}

/// An open store (one connection).
#[derive(Debug)]
pub struct Store {
    engine: Engine,
}

/// Methods both engines have, with the same signature and meaning: the facade passes them on.
macro_rules! delegate {
    ($( $(#[$m:meta])* fn $name:ident(& $($recv:ident)+ $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        impl Store {
            $(
                $(#[$m])*
                pub fn $name(& $($recv)+ $(, $arg: $ty)*) -> $ret {
                    match & $($recv)+ .engine {
                        Engine::Sqlite(s) => s.$name($($arg),*),
                        Engine::Postgres(p) => p.$name($($arg),*),
                    }
                }
            )*
        }
    };
}

delegate! {
    /// Thresholds recorded (fired or covered) for one quota and period, ascending.
    fn fired_thresholds(&self, quota_key: &str, period: i64) -> Result<Vec<f64>>;
    /// Ledger rows of periods that end at or after `min_period` (Unix seconds): pass the
    /// current time to warm the monitor, since ended periods can never fire again.
    fn load_ledger_since(&self, min_period: i64) -> Result<Vec<LedgerEntry>>;
    /// The highest sequence ever recorded (0 on a new database): seed for the monitor.
    fn last_sequence(&self) -> Result<i64>;

    /// Queues the outbox rows of received events (`crate::notify::route`) in ONE transaction
    /// and marks those events routed; returns how many rows are new. Idempotent on the
    /// idempotency key: replaying an event (same id, same channels) adds nothing, whichever
    /// instance routes it. Every row's source must be an event; `sequence` is ignored (the
    /// row takes the highest recorded so far). On error nothing is written.
    fn enqueue(&mut self, rows: &[OutboxRow]) -> Result<usize>;
    /// Pending rows whose time has come, oldest first.
    fn due(&self, now: UnixMs, limit: usize) -> Result<Vec<OutboxRow>>;
    /// [`Store::due`] without the rows of `except`.
    fn due_except(&self, now: UnixMs, limit: usize, except: &[ChannelId]) -> Result<Vec<OutboxRow>>;
    /// [`Store::due`] and [`Store::mark_inflight`] in one transaction.
    fn claim_due(&mut self, now: UnixMs, limit: usize) -> Result<Vec<OutboxRow>>;
    /// `pending → inflight` without a lease; false when the row was not pending.
    fn mark_inflight(&self, idem_key: &str) -> Result<bool>;
    /// Claims up to `req.room` rows for `req.instance` in one transaction: due `pending` rows
    /// and `inflight` rows whose lease has passed (their holder died or stalled), at most
    /// `req.per_channel` per channel counting every live claim. Rows are `inflight` until
    /// `now + lease` with a new token. See [`claims`].
    fn claim(&mut self, now: UnixMs, req: &ClaimRequest<'_>) -> Result<Claimed>;
    /// Writes how a send ended. With `token`, only while that claim still holds the row (a
    /// row reclaimed after its lease passed keeps the newer claim's outcome); returns whether
    /// the row was updated.
    fn settle(&self, idem_key: &str, token: Option<i64>, outcome: &Settle<'_>) -> Result<bool>;
    /// [`Store::settle`] for a batch, in one transaction (PostgreSQL: one statement, one round
    /// trip); for each, whether its row was updated. The same as settling them one by one, in
    /// order (a key given twice is settled twice).
    fn settle_all(&self, batch: &[Settlement<'_>]) -> Result<Vec<bool>>;
    /// Extends the lease of every row `instance` holds to `until`; returns how many.
    fn renew_claims(&self, instance: &str, until: UnixMs) -> Result<usize>;
    /// `inflight → pending` for the rows `instance` holds (a clean shutdown), due now.
    fn release_claims(&self, instance: &str) -> Result<usize>;
    /// Start-up: sends interrupted by a crash go out again (same idempotency key). SQLite (one
    /// instance per file): every `inflight` row; PostgreSQL: rows claimed without a lease
    /// (leased rows return when their lease passes). Returns how many rows were recovered.
    fn recover_inflight(&self) -> Result<usize>;
    /// Manual resend of a `failed` or `dead` row: `pending` now, attempts reset.
    fn resend(&self, idem_key: &str, now: UnixMs) -> Result<bool>;
    /// Every `failed`/`dead` row (of `states`) that `filter`'s channel and org select goes back
    /// to `pending` now, attempts reset. Returns how many.
    fn resend_matching(&self, states: &[OutboxState], filter: &OutboxFilter, now: UnixMs) -> Result<usize>;
    /// Deletes rows in `state` (`delivered`, `failed` or `dead`) created before `before`.
    fn purge_state(&self, state: OutboxState, before: UnixMs) -> Result<usize>;
    /// Rows for the Notifications view, newest first.
    fn list_outbox(&self, filter: &OutboxFilter, limit: usize) -> Result<Vec<OutboxRow>>;
    /// One row by its idempotency key.
    fn get(&self, idem_key: &str) -> Result<Option<OutboxRow>>;
    /// Deletes delivered rows delivered before `before`. The ledger stays.
    fn purge_delivered(&self, before: UnixMs) -> Result<usize>;
    /// Stores the request (or e-mail) of a row as it was just sent, credentials masked.
    fn record_sent(&self, idem_key: &str, at: UnixMs, text: &str) -> Result<bool>;
    /// What [`Store::record_sent`] stored last for a row, with when; `None` if never sent.
    fn sent_request(&self, idem_key: &str) -> Result<Option<(UnixMs, String)>>;
    /// Removes the raw API key from the payload of `tyk` rows in `state` created before
    /// `before` (their listing and masked key stay). Returns how many.
    fn scrub_keys(&self, state: OutboxState, before: UnixMs) -> Result<usize>;
    /// Deletes ledger rows of periods that renewed before `before_period` (Unix seconds) and
    /// that no outbox row refers to: an ended period can never fire again, so exactly-once
    /// does not need them.
    fn purge_ledger(&self, before_period: i64) -> Result<usize>;
    fn counts(&self) -> Result<OutboxCounts>;
    /// Rows by channel and state (the outbox depth on `/metrics`).
    fn counts_by_channel(&self) -> Result<Vec<(String, OutboxState, u64)>>;
    /// Whether a write can be made now: what `/readyz` means by the store being writable.
    /// Nothing is written.
    fn check_writable(&self) -> Result<()>;

    /// A `410 Gone`: the channel is disabled (for every instance) and its pending rows fail,
    /// in one transaction. Returns how many pending rows were failed.
    fn disable_channel(&mut self, channel_id: &ChannelId, reason: &str, now: UnixMs) -> Result<usize>;
    /// Re-enables a disabled channel (its failed rows stay failed: resend them by hand).
    fn enable_channel(&self, channel_id: &ChannelId) -> Result<bool>;
    fn disabled_channels(&self) -> Result<Vec<DisabledChannel>>;

    /// Marks received events as routed although they planned no rows.
    fn mark_events_routed(&self, ids: &[i64], now: UnixMs) -> Result<()>;
    /// Received events not routed yet, received at or after `since`, oldest first (quota
    /// triggers are left out).
    fn unrouted_events(&self, since: UnixMs, limit: usize) -> Result<Vec<EventRow>>;
    /// Records one received event; returns its id.
    fn insert_event(&mut self, event: &NewEvent) -> Result<i64>;
    /// Records received events in ONE transaction and returns their ids in input order.
    fn insert_events(&mut self, events: &[NewEvent]) -> Result<Vec<i64>>;
    /// The newest `limit` received events, newest first.
    fn list_events(&self, limit: usize) -> Result<Vec<EventRow>>;
    fn count_events(&self) -> Result<u64>;
    /// Deletes events received before `before` (retention).
    fn purge_events(&self, before: UnixMs) -> Result<usize>;

    /// Records (or refreshes) this instance's heartbeat.
    fn heartbeat(&self, me: &Instance) -> Result<()>;
    /// Instances seen at or after `since`, oldest first.
    fn instances(&self, since: UnixMs) -> Result<Vec<Instance>>;
    /// Removes an instance's heartbeat (a clean shutdown).
    fn leave(&self, id: &str) -> Result<()>;
    /// Structural checks: SQLite's `integrity_check` and `foreign_key_check`; on PostgreSQL
    /// (which enforces its constraints) that the schema answers.
    fn integrity_check(&self) -> Result<()>;
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/tykwatch.db`; creates the dir (0700) too.
    pub fn open_in(data_dir: impl AsRef<Path>) -> Result<Store> {
        Sqlite::open_in(data_dir).map(Store::from_sqlite)
    }

    /// Opens (creating if needed) the SQLite database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Sqlite::open(path).map(Store::from_sqlite)
    }

    pub fn open_with(path: impl AsRef<Path>, opts: StoreOptions) -> Result<Store> {
        Sqlite::open_with(path, opts).map(Store::from_sqlite)
    }

    /// Connects to PostgreSQL (`[store] url`), migrating its schema when needed.
    pub fn connect(config: &StoreConfig) -> Result<Store> {
        Postgres::connect(config).map(|p| Store {
            engine: Engine::Postgres(p),
        })
    }

    /// The configured engine: PostgreSQL when `[store] url` is set, else SQLite in `data_dir`.
    pub fn open_configured(config: &StoreConfig, data_dir: &Path) -> Result<Store> {
        if config.is_shared() {
            Store::connect(config)
        } else {
            Store::open_in(data_dir)
        }
    }

    fn from_sqlite(s: Sqlite) -> Store {
        Store {
            engine: Engine::Sqlite(s),
        }
    }

    /// The SQLite file, or `None` on PostgreSQL.
    pub fn path(&self) -> Option<&Path> {
        match &self.engine {
            Engine::Sqlite(s) => Some(s.path()),
            Engine::Postgres(_) => None,
        }
    }

    /// Where the data is, for messages: the file, or the URL with its password masked.
    pub fn describe(&self) -> String {
        match &self.engine {
            Engine::Sqlite(s) => s.path().display().to_string(),
            Engine::Postgres(p) => p.target().to_owned(),
        }
    }

    /// Copies `dump` into this (PostgreSQL) store in one transaction: states, attempts and
    /// errors kept (rows in flight become pending), event ids kept. Refused unless the store
    /// is empty; on error nothing is written.
    pub fn load(&mut self, dump: Dump) -> Result<()> {
        match &mut self.engine {
            Engine::Postgres(p) => p.load(dump),
            Engine::Sqlite(s) => Err(StoreError::Invalid(format!(
                "{}: migrations go into PostgreSQL",
                s.path().display()
            ))),
        }
    }

    /// Records crossings and their outbox rows in ONE transaction (one fsync for the batch).
    ///
    /// Exactly-once generation: a crossing whose `fired` ledger row already exists (recorded by
    /// this instance before a crash, or by another instance on a shared database) inserts
    /// nothing — neither its covered rows matter nor its outbox rows are added. Rows for a
    /// channel disabled by a 410 are inserted as `failed` (visible, resendable). Every row must
    /// belong to a crossing of the batch. Returns which crossings this call recorded.
    /// On error nothing is written.
    pub fn record_crossings(
        &mut self,
        crossings: &[Crossing],
        rows: &[OutboxRow],
    ) -> Result<Recorded> {
        if crossings.is_empty() && rows.is_empty() {
            return Ok(Recorded::default()); // a quiet sweep costs no fsync
        }
        let groups = rows_by_crossing(crossings, rows)?;
        let new = match &mut self.engine {
            Engine::Sqlite(s) => s.record_crossings(crossings, &groups)?,
            Engine::Postgres(p) => p.record_crossings(crossings, &groups)?,
        };
        Ok(Recorded { new })
    }

    /// Whether other instances may share this store (PostgreSQL).
    pub fn is_shared(&self) -> bool {
        matches!(self.engine, Engine::Postgres(_))
    }

    /// The SQLite connection's durability settings, for diagnostics and tests.
    pub fn settings(&self) -> Result<StoreSettings> {
        match &self.engine {
            Engine::Sqlite(s) => s.settings(),
            Engine::Postgres(p) => Err(StoreError::Invalid(format!(
                "{}: PRAGMA settings are SQLite's",
                p.target()
            ))),
        }
    }

    /// Runs `f` in one transaction (one commit for many small updates: the dispatcher's
    /// outcomes); rolled back when `f` fails.
    pub fn in_transaction<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        match &self.engine {
            Engine::Sqlite(s) => s.transaction(|| f(self)),
            Engine::Postgres(p) => p.transaction(|| f(self)),
        }
    }

    /// `[store] retention`: in one transaction, deletes delivered and dead rows and received
    /// events older than `keep`, removes the raw key from failed `tyk` rows that old (they
    /// stay listed and resendable, in Tyk's format without the key), and deletes the ledger
    /// rows of periods that ended that long ago and that no row refers to. Pending, in-flight
    /// and failed rows stay, and with them their ledger rows.
    pub fn apply_retention(&self, now: UnixMs, keep: std::time::Duration) -> Result<Purged> {
        let keep_ms = i64::try_from(keep.as_millis()).unwrap_or(i64::MAX);
        let before = now.saturating_sub(keep_ms);
        self.in_transaction(|s| {
            Ok(Purged {
                delivered: s.purge_delivered(before)?,
                dead: s.purge_state(OutboxState::Dead, before)?,
                events: s.purge_events(before)?,
                scrubbed: s.scrub_keys(OutboxState::Failed, before)?,
                ledger: s.purge_ledger(before.div_euclid(1000))?,
            })
        })
    }

    /// The receiver accepted it (2xx / SMTP 250). Counts the attempt.
    pub fn mark_delivered(&self, idem_key: &str, status: Option<u16>, now: UnixMs) -> Result<bool> {
        self.settle(idem_key, None, &Settle::Delivered { status, at: now })
    }

    /// A retryable failure: back to `pending` at `next_at`; `attempts` is the new total.
    pub fn mark_retry(
        &self,
        idem_key: &str,
        attempts: u32,
        next_at: UnixMs,
        status: Option<u16>,
        error: &str,
    ) -> Result<bool> {
        let outcome = Settle::Retry {
            attempts,
            next_at,
            status,
            error,
        };
        self.settle(idem_key, None, &outcome)
    }

    /// A permanent failure (after the short capped retry): visible, resendable by hand.
    pub fn mark_failed(
        &self,
        idem_key: &str,
        attempts: u32,
        status: Option<u16>,
        reason: &str,
    ) -> Result<bool> {
        let outcome = Settle::Failed {
            attempts,
            status,
            reason,
        };
        self.settle(idem_key, None, &outcome)
    }

    /// The retry schedule is exhausted: visible, resendable by hand.
    pub fn mark_dead(
        &self,
        idem_key: &str,
        attempts: u32,
        status: Option<u16>,
        reason: &str,
    ) -> Result<bool> {
        let outcome = Settle::Dead {
            attempts,
            status,
            reason,
        };
        self.settle(idem_key, None, &outcome)
    }
}

/// Which crossings of a batch [`Store::record_crossings`] recorded; the others were in the
/// ledger already (this process before a crash, or another instance first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Parallel to the batch.
    new: Vec<bool>,
}

impl Recorded {
    /// How many crossings were newly recorded.
    pub fn count(&self) -> usize {
        self.new.iter().filter(|n| **n).count()
    }

    /// Whether the batch's `i`th crossing was recorded by this call.
    pub fn is_new(&self, i: usize) -> bool {
        self.new.get(i).copied().unwrap_or(false)
    }
}

/// The batch's outbox rows grouped by crossing (index into `crossings`), after checking the
/// batch: finite thresholds, and every row of a crossing in it.
fn rows_by_crossing<'a>(
    crossings: &[Crossing],
    rows: &'a [OutboxRow],
) -> Result<Vec<Vec<&'a OutboxRow>>> {
    let mut index: std::collections::HashMap<(&str, i64, u64), usize> =
        std::collections::HashMap::with_capacity(crossings.len());
    for (i, c) in crossings.iter().enumerate() {
        if !c.threshold.is_finite() || c.covered.iter().any(|t| !t.is_finite()) {
            return Err(StoreError::Invalid(format!(
                "crossing {} has a non-finite threshold",
                c.quota_key
            )));
        }
        index
            .entry((&c.quota_key, c.period, c.threshold.to_bits()))
            .or_insert(i);
    }
    let mut groups = vec![Vec::new(); crossings.len()];
    for r in rows {
        let at = match &r.source {
            crate::outbox::Source::Crossing {
                quota_key,
                period,
                threshold,
            } => index.get(&(quota_key.as_str(), *period, threshold.to_bits())),
            crate::outbox::Source::Event { .. } => None,
        };
        match at {
            Some(&i) => groups[i].push(r),
            None => {
                return Err(StoreError::Invalid(format!(
                    "outbox row {} belongs to no crossing of the batch",
                    r.idem_key
                )));
            }
        }
    }
    Ok(groups)
}

/// `limit` as an SQL `LIMIT` value.
pub(crate) fn clamp_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}
