//! SQLite: the ledger of fired thresholds, the notification outbox, channel state and the log
//! of events received by the intake listener. The only module that writes SQL
//! (the transactional outbox; ARCHITECTURE.md "Data flow").
//!
//! Durability: WAL with `synchronous=FULL` (an fsync per commit: an acknowledged write survives
//! power loss). A crossing and its outbox rows are written in one transaction with
//! `INSERT OR IGNORE`, so re-detecting a crossing after a crash never creates a second
//! notification. Callers batch many crossings per call (one sweep) to amortise the fsync.
//!
//! The API is synchronous: run it on a dedicated thread or in `spawn_blocking`; never hold a
//! `Store` borrow across an `.await` or a network send. All times are Unix milliseconds except
//! `period` (the quota's `quota_renews`, Unix seconds).

use std::collections::HashMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Row, TransactionBehavior, params,
};

use crate::clock::UnixMs;
use crate::monitor::Crossing;

/// The database file inside the data dir.
pub const DB_FILE: &str = "tykwatch.db";

/// `quota_key` prefix of outbox rows that route a received event ([`Store::enqueue`]); never
/// the prefix of a quota's key (`key:`, `org:`).
pub const EVENT_QUOTA_PREFIX: &str = "event:";

/// `PRAGMA application_id`: marks the file as ours ("TYKW"), so another program's SQLite file
/// at the same path is refused rather than extended.
const APPLICATION_ID: i64 = 0x5459_4B57;

/// Schema migrations; `user_version` = how many have run. Append only, never edit.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE ledger (
  quota_key TEXT    NOT NULL,
  period    INTEGER NOT NULL,
  threshold REAL    NOT NULL,
  state     TEXT    NOT NULL CHECK (state IN ('fired','covered')),
  usage_pct REAL    NOT NULL,
  fired_at  INTEGER NOT NULL,
  PRIMARY KEY (quota_key, period, threshold)
) WITHOUT ROWID;
CREATE INDEX ledger_period ON ledger(period);

CREATE TABLE outbox (
  idem_key        TEXT PRIMARY KEY,
  channel_id      TEXT    NOT NULL,
  kind            TEXT    NOT NULL CHECK (kind IN ('tyk_webhook','standard_webhook','email')),
  payload_json    TEXT    NOT NULL,
  state           TEXT    NOT NULL CHECK (state IN ('pending','inflight','delivered','failed','dead')),
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  last_status     INTEGER,
  last_error      TEXT,
  created_at      INTEGER NOT NULL,
  delivered_at    INTEGER,
  quota_key       TEXT    NOT NULL,
  period          INTEGER NOT NULL,
  threshold       REAL    NOT NULL,
  sequence        INTEGER NOT NULL,
  FOREIGN KEY (quota_key, period, threshold) REFERENCES ledger (quota_key, period, threshold)
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX outbox_sequence ON outbox(sequence);
CREATE INDEX outbox_channel ON outbox(channel_id, state);

CREATE TABLE channels (
  channel_id      TEXT PRIMARY KEY,
  disabled_at     INTEGER,
  disabled_reason TEXT
);

CREATE TABLE meta (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (name, value) VALUES ('last_sequence', 0);
"#,
    r#"
-- The intake's log of received webhooks. AUTOINCREMENT: an id returned to a sender is never
-- reused, even after old rows are purged.
CREATE TABLE events (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  received_at  INTEGER NOT NULL,
  kind         TEXT    NOT NULL,
  event        TEXT    NOT NULL,
  org_id       TEXT    NOT NULL DEFAULT '',
  summary      TEXT    NOT NULL DEFAULT '',
  masked_key   TEXT    NOT NULL DEFAULT '',
  payload_json TEXT    NOT NULL
);
CREATE INDEX events_received ON events(received_at);
"#,
];

/// What can go wrong; every message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{}: not a usable tykwatch database ({detail}). Move the file aside (e.g. `mv {0} {0}.bad`, together with any -wal/-shm files next to it) to start with an empty one, or restore a backup",
        .path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "{}: the database is locked by another process (is another tykwatch running on this data dir?); stop it, or give this one its own --data-dir",
        .path.display()
    )]
    Locked { path: PathBuf },
    #[error(
        "{}: {detail}; check the permissions of the file, its -wal/-shm files and its directory, or choose another data dir (--data-dir / TYKWATCH_DATA_DIR)",
        .path.display()
    )]
    Access { path: PathBuf, detail: String },
    #[error(
        "{}: written by a newer tykwatch (schema version {found}; this build knows up to {known}); upgrade tykwatch or use another --data-dir",
        .path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{}: the disk is full; free some space (notifications cannot be queued until then)", .path.display())]
    DiskFull { path: PathBuf },
    #[error("{}: {source}", .path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("invalid store input: {0}")]
    Invalid(String),
}

impl StoreError {
    fn from_sqlite(path: &Path, e: rusqlite::Error) -> StoreError {
        let path = path.to_path_buf();
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt {
                    path,
                    detail: e.to_string(),
                }
            }
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
                StoreError::Locked { path }
            }
            Some(ErrorCode::ReadOnly)
            | Some(ErrorCode::CannotOpen)
            | Some(ErrorCode::PermissionDenied) => StoreError::Access {
                path,
                detail: e.to_string(),
            },
            Some(ErrorCode::DiskFull) => StoreError::DiskFull { path },
            _ => StoreError::Sqlite { path, source: e },
        }
    }

    fn io(path: &Path, what: &str, e: io::Error) -> StoreError {
        StoreError::Access {
            path: path.to_path_buf(),
            detail: format!("{what}: {e}"),
        }
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A ledger row's meaning: the threshold was notified, or passed together with a higher one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerState {
    Fired,
    Covered,
}

impl LedgerState {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerState::Fired => "fired",
            LedgerState::Covered => "covered",
        }
    }
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    pub quota_key: String,
    pub period: i64,
    pub threshold: f64,
    pub state: LedgerState,
    pub usage_pct: f64,
    pub fired_at: UnixMs,
}

/// How a channel sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxKind {
    /// Tyk's monitor webhook (`[monitor.configuration]`, Go-template body).
    TykWebhook,
    /// `[[webhooks]]`: Standard Webhooks.
    StandardWebhook,
    Email,
}

impl OutboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::TykWebhook => "tyk_webhook",
            OutboxKind::StandardWebhook => "standard_webhook",
            OutboxKind::Email => "email",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            OutboxKind::TykWebhook,
            OutboxKind::StandardWebhook,
            OutboxKind::Email,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// Delivery state of an outbox row: `pending → inflight → delivered`, or back to `pending`
/// with a later `next_attempt_at`, or `failed` (permanent error, channel disabled) / `dead`
/// (retry schedule exhausted); `failed` and `dead` return to `pending` only by [`Store::resend`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxState {
    Pending,
    Inflight,
    Delivered,
    Failed,
    Dead,
}

impl OutboxState {
    pub const ALL: [OutboxState; 5] = [
        OutboxState::Pending,
        OutboxState::Inflight,
        OutboxState::Delivered,
        OutboxState::Failed,
        OutboxState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Inflight => "inflight",
            OutboxState::Delivered => "delivered",
            OutboxState::Failed => "failed",
            OutboxState::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for OutboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One notification to one channel. `payload_json` is rendered by the channel at delivery time.
#[derive(Clone, PartialEq)]
pub struct OutboxRow {
    /// [`crate::monitor::idem_key`]: the `webhook-id` header / e-mail Message-ID.
    pub idem_key: String,
    pub channel_id: String,
    pub kind: OutboxKind,
    pub payload_json: String,
    pub state: OutboxState,
    /// Sends tried so far (including a successful one).
    pub attempts: u32,
    pub next_attempt_at: UnixMs,
    /// HTTP status or SMTP reply code of the last attempt.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: UnixMs,
    pub delivered_at: Option<UnixMs>,
    pub quota_key: String,
    pub period: i64,
    pub threshold: f64,
    pub sequence: i64,
}

/// Leaves the payload out: the `tyk` channel's payload carries the raw API key.
impl fmt::Debug for OutboxRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxRow")
            .field("idem_key", &self.idem_key)
            .field("channel_id", &self.channel_id)
            .field("kind", &self.kind)
            .field(
                "payload_json",
                &format_args!("<{} bytes>", self.payload_json.len()),
            )
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("last_status", &self.last_status)
            .field("last_error", &self.last_error)
            .field("created_at", &self.created_at)
            .field("delivered_at", &self.delivered_at)
            .field("sequence", &self.sequence)
            .finish()
    }
}

/// What [`Store::list_outbox`] returns; `None` = any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxFilter {
    pub state: Option<OutboxState>,
    pub channel_id: Option<String>,
    pub quota_key: Option<String>,
}

/// Outbox rows per state (the header's "needs attention" counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub inflight: u64,
    pub delivered: u64,
    pub failed: u64,
    pub dead: u64,
}

/// A channel switched off by a `410 Gone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabledChannel {
    pub channel_id: String,
    pub disabled_at: UnixMs,
    pub reason: String,
}

/// An event received by the intake listener, as recorded. Nothing here may hold a raw API key:
/// `masked_key` is [`crate::quota::mask_key`] output and `payload_json` is already masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub received_at: UnixMs,
    /// `quota_trigger`, `dashboard`, `portal` (`crate::intake::EventKind::as_str`).
    pub kind: String,
    /// The sender's event name (`TriggerExceeded`, `key_request_event.submitted`, …).
    pub event: String,
    pub org_id: String,
    pub summary: String,
    pub masked_key: String,
    pub payload_json: String,
}

/// A row of the `events` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub id: i64,
    pub received_at: UnixMs,
    pub kind: String,
    pub event: String,
    pub org_id: String,
    pub summary: String,
    pub masked_key: String,
    pub payload_json: String,
}

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

const ROW_COLUMNS: &str = "idem_key, channel_id, kind, payload_json, state, attempts, \
     next_attempt_at, last_status, last_error, created_at, delivered_at, quota_key, period, \
     threshold, sequence";

pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

/// One outbox row; `last_error` is ?7. Shared by crossings and routed events.
const INSERT_OUTBOX: &str = "INSERT OR IGNORE INTO outbox (idem_key, channel_id, kind, payload_json, \
     state, attempts, next_attempt_at, last_error, created_at, quota_key, period, threshold, \
     sequence) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

/// Channels a 410 disabled, with the reason.
fn disabled_in(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<HashMap<String, String>> {
    let mut st = tx.prepare_cached(
        "SELECT channel_id, coalesce(disabled_reason, '') FROM channels WHERE disabled_at IS NOT NULL",
    )?;
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
}

/// Inserts `r` in the state it is queued in (`queued`), or failed when its channel is disabled.
fn insert_outbox(
    st: &mut rusqlite::CachedStatement<'_>,
    r: &OutboxRow,
    queued: (OutboxState, Option<String>),
    disabled: &HashMap<String, String>,
    sequence: i64,
) -> rusqlite::Result<usize> {
    let (state, error) = match disabled.get(&r.channel_id) {
        Some(reason) => (
            OutboxState::Failed,
            Some(format!("channel disabled: {reason}")),
        ),
        None => queued,
    };
    st.execute(params![
        r.idem_key,
        r.channel_id,
        r.kind.as_str(),
        r.payload_json,
        state.as_str(),
        r.next_attempt_at,
        error,
        r.created_at,
        r.quota_key,
        r.period,
        r.threshold,
        sequence
    ])
}

impl Store {
    /// Opens (creating if needed) `<data_dir>/tykwatch.db`; creates the dir (0700) too.
    pub fn open_in(data_dir: impl AsRef<Path>) -> Result<Store> {
        let dir = data_dir.as_ref();
        create_private_dir(dir).map_err(|e| StoreError::io(dir, "cannot create directory", e))?;
        Store::open(dir.join(DB_FILE))
    }

    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_with(path, StoreOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, opts: StoreOptions) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        create_private_file(&path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(|e| StoreError::from_sqlite(&path, e))?;
        let mut store = Store { conn, path };
        store.init(opts)?;
        Ok(store)
    }

    fn init(&mut self, opts: StoreOptions) -> Result<()> {
        let conn = &self.conn;
        conn.busy_timeout(opts.busy_timeout)
            .map_err(|e| self.err(e))?;
        // SQLite silently falls back to read-only when it cannot write the file.
        if conn.is_readonly("main").map_err(|e| self.err(e))? {
            return Err(StoreError::Access {
                path: self.path.clone(),
                detail: "the file can only be opened read-only".to_owned(),
            });
        }
        // The first read of the header: a file that is not SQLite fails here.
        let app_id: i64 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if app_id != APPLICATION_ID && (app_id != 0 || version != 0 || tables != 0) {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!(
                    "an SQLite file of another program (application_id {app_id}, {tables} schema objects)"
                ),
            });
        }
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Access {
                path: self.path.clone(),
                detail: format!(
                    "write-ahead logging is not available here (journal mode stays {mode:?}; network file systems do not support it)"
                ),
            });
        }
        // A larger page cache and WAL keep a sweep's burst of crossings from spilling pages and
        // checkpointing mid-burst (random hash keys touch many index pages); about 32 MB at most.
        conn.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-16384;",
        )
        .map_err(|e| self.err(e))?;
        let _: i64 = conn
            .query_row("PRAGMA wal_autocheckpoint=4096", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        conn.set_prepared_statement_cache_capacity(64);
        self.migrate(version)
    }

    fn migrate(&mut self, from: i64) -> Result<()> {
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from.max(0) as usize) {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err)?;
            // Re-read inside the write lock: another process may have migrated meanwhile.
            let now: i64 = tx
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(err)?;
            if now > i as i64 {
                continue;
            }
            tx.execute_batch(sql).map_err(err)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(err)?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(())
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(&self.path, e)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This connection's durability settings, for diagnostics and tests.
    pub fn settings(&self) -> Result<StoreSettings> {
        let get = |name: &str| -> Result<String> {
            self.conn
                .pragma_query_value(None, name, |r| {
                    Ok(match r.get_ref(0)? {
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        v => v.as_i64().map(|n| n.to_string()).unwrap_or_default(),
                    })
                })
                .map_err(|e| self.err(e))
        };
        Ok(StoreSettings {
            journal_mode: get("journal_mode")?,
            synchronous: get("synchronous")?.parse().unwrap_or(-1),
            foreign_keys: get("foreign_keys")? == "1",
            busy_timeout_ms: get("busy_timeout")?.parse().unwrap_or(-1),
        })
    }

    /// Records crossings and their outbox rows in ONE transaction (one fsync for the batch).
    ///
    /// Exactly-once generation: a crossing whose `fired` ledger row already exists inserts
    /// nothing — neither its covered rows matter nor its outbox rows are added. Rows for a
    /// channel disabled by a 410 are inserted as `failed` (visible, resendable). Every row must
    /// belong to a crossing of the batch. Returns the number of crossings newly recorded.
    /// On error nothing is written.
    pub fn record_crossings(
        &mut self,
        crossings: &[Crossing],
        rows: &[OutboxRow],
    ) -> Result<usize> {
        if crossings.is_empty() && rows.is_empty() {
            return Ok(0); // a quiet sweep costs no fsync
        }
        let mut by_crossing: HashMap<(&str, i64, u64), Vec<&OutboxRow>> = HashMap::new();
        for c in crossings {
            if !c.threshold.is_finite() || c.covered.iter().any(|t| !t.is_finite()) {
                return Err(StoreError::Invalid(format!(
                    "crossing {} has a non-finite threshold",
                    c.quota_key
                )));
            }
            by_crossing
                .entry((&c.quota_key, c.period, c.threshold.to_bits()))
                .or_default();
        }
        for r in rows {
            match by_crossing.get_mut(&(r.quota_key.as_str(), r.period, r.threshold.to_bits())) {
                Some(v) => v.push(r),
                None => {
                    return Err(StoreError::Invalid(format!(
                        "outbox row {} belongs to no crossing of the batch",
                        r.idem_key
                    )));
                }
            }
        }
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let disabled = disabled_in(&tx).map_err(err)?;
        let mut recorded = 0;
        let mut max_seq = i64::MIN;
        {
            let mut ledger = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO ledger (quota_key, period, threshold, state, usage_pct, fired_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            let mut outbox = tx.prepare_cached(INSERT_OUTBOX).map_err(err)?;
            // Insert in key order: quota keys are hashes, so arrival order would touch B-tree
            // pages at random and write each of them to the WAL again and again.
            let mut order: Vec<&Crossing> = crossings.iter().collect();
            order.sort_by(|a, b| {
                (&*a.quota_key, a.period)
                    .cmp(&(&*b.quota_key, b.period))
                    .then(a.threshold.total_cmp(&b.threshold))
            });
            let mut fresh: Vec<&OutboxRow> = Vec::with_capacity(rows.len());
            for c in order {
                max_seq = max_seq.max(c.sequence);
                let new = ledger
                    .execute(params![
                        &*c.quota_key,
                        c.period,
                        c.threshold,
                        LedgerState::Fired.as_str(),
                        c.usage_pct,
                        c.at_ms
                    ])
                    .map_err(err)?;
                for t in &c.covered {
                    ledger
                        .execute(params![
                            &*c.quota_key,
                            c.period,
                            t,
                            LedgerState::Covered.as_str(),
                            c.usage_pct,
                            c.at_ms
                        ])
                        .map_err(err)?;
                }
                if new == 0 {
                    continue;
                }
                recorded += 1;
                let key = (&*c.quota_key, c.period, c.threshold.to_bits());
                fresh.extend(by_crossing.get(&key).into_iter().flatten());
            }
            fresh.sort_by(|a, b| a.idem_key.cmp(&b.idem_key));
            for r in fresh {
                insert_outbox(
                    &mut outbox,
                    r,
                    (OutboxState::Pending, None),
                    &disabled,
                    r.sequence,
                )
                .map_err(err)?;
            }
        }
        if max_seq > i64::MIN {
            tx.execute(
                "UPDATE meta SET value = max(value, ?1) WHERE name = 'last_sequence'",
                [max_seq],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(recorded)
    }

    /// Queues outbox rows that belong to no threshold crossing — the routing of a received
    /// event (`crate::notify::route`) — in ONE transaction; returns how many rows are new.
    ///
    /// `INSERT OR IGNORE` on the idempotency key: replaying an event (same id, same channels)
    /// adds nothing. The outbox columns of a crossing are filled like this (the planner does
    /// it; see `crate::notify::route::EventRouter::plan`):
    /// - `quota_key` = `event:<event id>` (required prefix: a row of a real quota key would
    ///   write a ledger row that silences that quota's threshold), `period` = 0,
    ///   `threshold` = 0. Each distinct triple also gets a `fired` ledger row (the outbox's
    ///   foreign key), which records "this event was routed"; period 0 keeps it out of
    ///   [`Store::load_ledger_since`].
    /// - `sequence` is ignored: the row takes the highest sequence recorded so far (without
    ///   advancing it: the monitor owns that counter), so the Notifications view lists it
    ///   among the crossings of the same moment.
    /// - `state`/`last_error` are kept as planned (`pending`, or `failed` with the reason
    ///   when planning could not complete, e.g. an org that could not be read); a channel
    ///   disabled by a 410 makes the row `failed` like [`Store::record_crossings`] does.
    ///
    /// On error nothing is written.
    pub fn enqueue(&mut self, rows: &[OutboxRow]) -> Result<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        for r in rows {
            if !r.quota_key.starts_with(EVENT_QUOTA_PREFIX) || !r.threshold.is_finite() {
                return Err(StoreError::Invalid(format!(
                    "outbox row {} is not an event row (quota_key must start with {EVENT_QUOTA_PREFIX:?}); \
                     threshold notifications go through record_crossings",
                    r.idem_key
                )));
            }
            if !matches!(r.state, OutboxState::Pending | OutboxState::Failed) {
                return Err(StoreError::Invalid(format!(
                    "outbox row {} must be queued pending or failed, not {}",
                    r.idem_key, r.state
                )));
            }
        }
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let disabled = disabled_in(&tx).map_err(err)?;
        let sequence: i64 = tx
            .query_row(
                "SELECT value FROM meta WHERE name = 'last_sequence'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?
            .unwrap_or(0);
        let mut inserted = 0;
        {
            let mut ledger = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO ledger (quota_key, period, threshold, state, usage_pct, fired_at) \
                     VALUES (?1, ?2, ?3, 'fired', 0, ?4)",
                )
                .map_err(err)?;
            let mut outbox = tx.prepare_cached(INSERT_OUTBOX).map_err(err)?;
            for r in rows {
                ledger
                    .execute(params![r.quota_key, r.period, r.threshold, r.created_at])
                    .map_err(err)?;
                let queued = (r.state, r.last_error.clone());
                inserted +=
                    insert_outbox(&mut outbox, r, queued, &disabled, sequence).map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(inserted)
    }

    /// Marks received events as routed although they planned no rows (no route matched, the
    /// org has no address): [`Store::unrouted_events`] then stops offering them.
    pub fn mark_events_routed(&self, ids: &[i64], now: UnixMs) -> Result<()> {
        self.in_transaction(|s| {
            let mut st = s
                .conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO ledger (quota_key, period, threshold, state, usage_pct, \
                     fired_at) VALUES (?1 || ?2, 0, 0, 'fired', 0, ?3)",
                )
                .map_err(|e| s.err(e))?;
            for id in ids {
                st.execute(params![EVENT_QUOTA_PREFIX, id, now])
                    .map_err(|e| s.err(e))?;
            }
            Ok(())
        })
    }

    /// Received events not routed yet: no outbox row was ever queued for them (no ledger row
    /// `event:<id>`, see [`Store::enqueue`]), received at or after `since`, oldest first. Quota
    /// triggers are left out (they are not routed). For catching up on events the engine did
    /// not see live: a crash between the intake's commit and the enqueue, or events counted in
    /// the intake's `dropped`. Events that match no route stay in this list (cheap to plan
    /// again: nothing is written for them).
    pub fn unrouted_events(&self, since: UnixMs, limit: usize) -> Result<Vec<EventRow>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, received_at, kind, event, org_id, summary, masked_key, payload_json \
                 FROM events e WHERE received_at >= ?1 AND kind != 'quota_trigger' \
                 AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.quota_key = ?2 || e.id \
                 AND l.period = 0 AND l.threshold = 0) ORDER BY id LIMIT ?3",
            )
            .map_err(|e| self.err(e))?;
        st.query_map(
            params![since, EVENT_QUOTA_PREFIX, clamp_limit(limit)],
            |r| {
                Ok(EventRow {
                    id: r.get(0)?,
                    received_at: r.get(1)?,
                    kind: r.get(2)?,
                    event: r.get(3)?,
                    org_id: r.get(4)?,
                    summary: r.get(5)?,
                    masked_key: r.get(6)?,
                    payload_json: r.get(7)?,
                })
            },
        )
        .map_err(|e| self.err(e))?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| self.err(e))
    }

    /// Thresholds recorded (fired or covered) for one quota and period, ascending.
    pub fn fired_thresholds(&self, quota_key: &str, period: i64) -> Result<Vec<f64>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT threshold FROM ledger WHERE quota_key = ?1 AND period = ?2 ORDER BY threshold",
            )
            .map_err(|e| self.err(e))?;
        st.query_map(params![quota_key, period], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Ledger rows of periods that end at or after `min_period` (Unix seconds): pass the
    /// current time to warm the monitor, since ended periods can never fire again.
    pub fn load_ledger_since(&self, min_period: i64) -> Result<Vec<LedgerEntry>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT quota_key, period, threshold, state, usage_pct, fired_at FROM ledger \
                 WHERE period >= ?1 ORDER BY quota_key, period, threshold",
            )
            .map_err(|e| self.err(e))?;
        st.query_map([min_period], |r| {
            let state: String = r.get(3)?;
            Ok(LedgerEntry {
                quota_key: r.get(0)?,
                period: r.get(1)?,
                threshold: r.get(2)?,
                state: if state == "covered" {
                    LedgerState::Covered
                } else {
                    LedgerState::Fired
                },
                usage_pct: r.get(4)?,
                fired_at: r.get(5)?,
            })
        })
        .map_err(|e| self.err(e))?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| self.err(e))
    }

    /// The highest sequence ever recorded (0 on a new database): seed for the monitor.
    pub fn last_sequence(&self) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE name = 'last_sequence'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map(|v| v.unwrap_or(0))
            .map_err(|e| self.err(e))
    }

    /// Pending rows whose time has come, oldest first.
    pub fn due(&self, now: UnixMs, limit: usize) -> Result<Vec<OutboxRow>> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?1 \
             ORDER BY next_attempt_at, sequence LIMIT ?2"
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_and_then(params![now, clamp_limit(limit)], read_row)
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }

    /// [`Store::due`] without the rows of `except` (channels that already hold as many rows as
    /// they may): the dispatcher reaches other channels' rows behind a busy channel's.
    pub fn due_except(
        &self,
        now: UnixMs,
        limit: usize,
        except: &[String],
    ) -> Result<Vec<OutboxRow>> {
        if except.is_empty() {
            return self.due(now, limit);
        }
        let marks = vec!["?"; except.len()].join(", ");
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? \
             AND channel_id NOT IN ({marks}) ORDER BY next_attempt_at, sequence LIMIT ?"
        );
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut values: Vec<rusqlite::types::Value> = vec![now.into()];
        values.extend(except.iter().map(|c| c.clone().into()));
        values.push(clamp_limit(limit).into());
        let rows = st
            .query_and_then(rusqlite::params_from_iter(values), read_row)
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }

    /// [`Store::due`] and [`Store::mark_inflight`] in one transaction: the rows returned are
    /// this caller's alone, even with several processes on one database.
    pub fn claim_due(&mut self, now: UnixMs, limit: usize) -> Result<Vec<OutboxRow>> {
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut rows = Vec::new();
        {
            let sql = format!(
                "SELECT {ROW_COLUMNS} FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?1 \
                 ORDER BY next_attempt_at, sequence LIMIT ?2"
            );
            let mut st = tx.prepare_cached(&sql).map_err(err)?;
            let found = st
                .query_and_then(params![now, clamp_limit(limit)], read_row)
                .map_err(err)?;
            for r in found {
                rows.push(r.map_err(err)?);
            }
            let mut up = tx
                .prepare_cached("UPDATE outbox SET state = 'inflight' WHERE idem_key = ?1")
                .map_err(err)?;
            for r in &mut rows {
                up.execute([&r.idem_key]).map_err(err)?;
                r.state = OutboxState::Inflight;
            }
        }
        tx.commit().map_err(err)?;
        Ok(rows)
    }

    /// Runs `f` in one transaction (one fsync for many small updates: the dispatcher's claims
    /// and outcomes); rolled back when `f` fails.
    pub fn in_transaction<T>(&self, f: impl FnOnce(&Store) -> Result<T>) -> Result<T> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        let out = f(self)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    fn update(&self, sql: &str, p: impl rusqlite::Params) -> Result<bool> {
        let mut st = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        Ok(st.execute(p).map_err(|e| self.err(e))? > 0)
    }

    /// `pending → inflight` just before a send; false when the row was not pending (someone
    /// else claimed it, or it was failed meanwhile).
    pub fn mark_inflight(&self, idem_key: &str) -> Result<bool> {
        self.update(
            "UPDATE outbox SET state = 'inflight' WHERE idem_key = ?1 AND state = 'pending'",
            [idem_key],
        )
    }

    /// The receiver accepted it (2xx / SMTP 250). Counts the attempt.
    pub fn mark_delivered(&self, idem_key: &str, status: Option<u16>, now: UnixMs) -> Result<bool> {
        self.update(
            "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, last_status = ?2, \
             last_error = NULL, delivered_at = ?3 \
             WHERE idem_key = ?1 AND state IN ('pending', 'inflight')",
            params![idem_key, status, now],
        )
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
        self.update(
            "UPDATE outbox SET state = 'pending', attempts = ?2, next_attempt_at = ?3, \
             last_status = ?4, last_error = ?5 \
             WHERE idem_key = ?1 AND state IN ('pending', 'inflight')",
            params![idem_key, attempts, next_at, status, error],
        )
    }

    /// A permanent failure (after the short capped retry): visible, resendable by hand.
    pub fn mark_failed(
        &self,
        idem_key: &str,
        attempts: u32,
        status: Option<u16>,
        reason: &str,
    ) -> Result<bool> {
        self.finish(idem_key, OutboxState::Failed, attempts, status, reason)
    }

    /// The retry schedule is exhausted: visible, resendable by hand.
    pub fn mark_dead(
        &self,
        idem_key: &str,
        attempts: u32,
        status: Option<u16>,
        reason: &str,
    ) -> Result<bool> {
        self.finish(idem_key, OutboxState::Dead, attempts, status, reason)
    }

    fn finish(
        &self,
        idem_key: &str,
        state: OutboxState,
        attempts: u32,
        status: Option<u16>,
        reason: &str,
    ) -> Result<bool> {
        self.update(
            "UPDATE outbox SET state = ?2, attempts = ?3, last_status = ?4, last_error = ?5 \
             WHERE idem_key = ?1 AND state IN ('pending', 'inflight')",
            params![idem_key, state.as_str(), attempts, status, reason],
        )
    }

    /// Start-up: sends interrupted by a crash go out again (same idempotency key). Returns how
    /// many rows were recovered.
    pub fn recover_inflight(&self) -> Result<usize> {
        let mut st = self
            .conn
            .prepare_cached("UPDATE outbox SET state = 'pending' WHERE state = 'inflight'")
            .map_err(|e| self.err(e))?;
        st.execute([]).map_err(|e| self.err(e))
    }

    /// Manual resend of a `failed` or `dead` row: `pending` now, attempts reset. The last
    /// status and error stay visible until the next attempt.
    pub fn resend(&self, idem_key: &str, now: UnixMs) -> Result<bool> {
        self.update(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?2 \
             WHERE idem_key = ?1 AND state IN ('failed', 'dead')",
            params![idem_key, now],
        )
    }

    /// Rows for the Notifications view, newest first.
    pub fn list_outbox(&self, filter: &OutboxFilter, limit: usize) -> Result<Vec<OutboxRow>> {
        // Fixed SQL per filter shape (NULL = any), so the statement cache works.
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM outbox WHERE (?1 IS NULL OR state = ?1) \
             AND (?2 IS NULL OR channel_id = ?2) AND (?3 IS NULL OR quota_key = ?3) \
             ORDER BY sequence DESC, idem_key LIMIT ?4"
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_and_then(
                params![
                    filter.state.map(OutboxState::as_str),
                    filter.channel_id,
                    filter.quota_key,
                    clamp_limit(limit)
                ],
                read_row,
            )
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }

    /// One row by its idempotency key.
    pub fn get(&self, idem_key: &str) -> Result<Option<OutboxRow>> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM outbox WHERE idem_key = ?1");
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let mut rows = st
            .query_and_then([idem_key], read_row)
            .map_err(|e| self.err(e))?;
        rows.next().transpose().map_err(|e| self.err(e))
    }

    /// A `410 Gone`: the channel is disabled and its pending rows fail (with `reason`), in one
    /// transaction. New rows for it are inserted as failed until [`Store::enable_channel`].
    /// Rows in flight finish normally. Returns how many pending rows were failed.
    pub fn disable_channel(
        &mut self,
        channel_id: &str,
        reason: &str,
        now: UnixMs,
    ) -> Result<usize> {
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        tx.execute(
            "INSERT INTO channels (channel_id, disabled_at, disabled_reason) VALUES (?1, ?2, ?3) \
             ON CONFLICT (channel_id) DO UPDATE SET disabled_at = ?2, disabled_reason = ?3",
            params![channel_id, now, reason],
        )
        .map_err(err)?;
        let n = tx
            .execute(
                "UPDATE outbox SET state = 'failed', last_error = ?2 \
                 WHERE channel_id = ?1 AND state = 'pending'",
                params![channel_id, format!("channel disabled: {reason}")],
            )
            .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(n)
    }

    /// Re-enables a disabled channel (its failed rows stay failed: resend them by hand).
    pub fn enable_channel(&self, channel_id: &str) -> Result<bool> {
        self.update(
            "UPDATE channels SET disabled_at = NULL, disabled_reason = NULL \
             WHERE channel_id = ?1 AND disabled_at IS NOT NULL",
            [channel_id],
        )
    }

    pub fn disabled_channels(&self) -> Result<Vec<DisabledChannel>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT channel_id, disabled_at, coalesce(disabled_reason, '') FROM channels \
                 WHERE disabled_at IS NOT NULL ORDER BY channel_id",
            )
            .map_err(|e| self.err(e))?;
        st.query_map([], |r| {
            Ok(DisabledChannel {
                channel_id: r.get(0)?,
                disabled_at: r.get(1)?,
                reason: r.get(2)?,
            })
        })
        .map_err(|e| self.err(e))?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| self.err(e))
    }

    /// Deletes delivered rows delivered before `before` (retention of the "what was sent"
    /// view). The ledger stays: it is what prevents re-firing.
    pub fn purge_delivered(&self, before: UnixMs) -> Result<usize> {
        let mut st = self
            .conn
            .prepare_cached("DELETE FROM outbox WHERE state = 'delivered' AND delivered_at < ?1")
            .map_err(|e| self.err(e))?;
        st.execute([before]).map_err(|e| self.err(e))
    }

    pub fn counts(&self) -> Result<OutboxCounts> {
        let mut st = self
            .conn
            .prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")
            .map_err(|e| self.err(e))?;
        let mut counts = OutboxCounts::default();
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (state, n) = row.map_err(|e| self.err(e))?;
            let n = u64::try_from(n).unwrap_or(0);
            match OutboxState::parse(&state) {
                Some(OutboxState::Pending) => counts.pending = n,
                Some(OutboxState::Inflight) => counts.inflight = n,
                Some(OutboxState::Delivered) => counts.delivered = n,
                Some(OutboxState::Failed) => counts.failed = n,
                Some(OutboxState::Dead) => counts.dead = n,
                None => {}
            }
        }
        Ok(counts)
    }

    /// Records one received event; returns its id. See [`Store::insert_events`].
    pub fn insert_event(&mut self, event: &NewEvent) -> Result<i64> {
        let ids = self.insert_events(std::slice::from_ref(event))?;
        ids.first()
            .copied()
            .ok_or_else(|| StoreError::Invalid("the event insert returned no id".to_owned()))
    }

    /// Records received events in ONE transaction (group commit: one fsync for the batch) and
    /// returns their ids in input order. On error nothing is written.
    pub fn insert_events(&mut self, events: &[NewEvent]) -> Result<Vec<i64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut ids = Vec::with_capacity(events.len());
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO events (received_at, kind, event, org_id, summary, masked_key, payload_json) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(err)?;
            for e in events {
                st.execute(params![
                    e.received_at,
                    e.kind,
                    e.event,
                    e.org_id,
                    e.summary,
                    e.masked_key,
                    e.payload_json
                ])
                .map_err(err)?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit().map_err(err)?;
        Ok(ids)
    }

    /// The newest `limit` received events, newest first.
    pub fn list_events(&self, limit: usize) -> Result<Vec<EventRow>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, received_at, kind, event, org_id, summary, masked_key, payload_json \
                 FROM events ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        st.query_map([clamp_limit(limit)], |r| {
            Ok(EventRow {
                id: r.get(0)?,
                received_at: r.get(1)?,
                kind: r.get(2)?,
                event: r.get(3)?,
                org_id: r.get(4)?,
                summary: r.get(5)?,
                masked_key: r.get(6)?,
                payload_json: r.get(7)?,
            })
        })
        .map_err(|e| self.err(e))?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| self.err(e))
    }

    pub fn count_events(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Deletes events received before `before` (retention). Returns how many were deleted.
    pub fn purge_events(&self, before: UnixMs) -> Result<usize> {
        let mut st = self
            .conn
            .prepare_cached("DELETE FROM events WHERE received_at < ?1")
            .map_err(|e| self.err(e))?;
        st.execute([before]).map_err(|e| self.err(e))
    }

    /// `PRAGMA integrity_check` and `foreign_key_check`; `Corrupt` with SQLite's findings.
    pub fn integrity_check(&self) -> Result<()> {
        let mut st = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| self.err(e))?;
        let found: Vec<String> = st
            .query_map([], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))?;
        if found != ["ok"] {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("integrity check: {}", found.join("; ")),
            });
        }
        let orphans: i64 = self
            .conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))?;
        if orphans > 0 {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("{orphans} outbox rows without their ledger row"),
            });
        }
        Ok(())
    }
}

fn clamp_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Reads an outbox row; a kind or state this build does not know is a corrupt file.
fn read_row(r: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    let bad = |col: usize, what: &str, v: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            col,
            rusqlite::types::Type::Text,
            format!("unknown outbox {what} {v:?}").into(),
        )
    };
    let kind: String = r.get(2)?;
    let state: String = r.get(4)?;
    Ok(OutboxRow {
        idem_key: r.get(0)?,
        channel_id: r.get(1)?,
        kind: OutboxKind::parse(&kind).ok_or_else(|| bad(2, "kind", &kind))?,
        payload_json: r.get(3)?,
        state: OutboxState::parse(&state).ok_or_else(|| bad(4, "state", &state))?,
        attempts: r.get(5)?,
        next_attempt_at: r.get(6)?,
        last_status: r.get(7)?,
        last_error: r.get(8)?,
        created_at: r.get(9)?,
        delivered_at: r.get(10)?,
        quota_key: r.get(11)?,
        period: r.get(12)?,
        threshold: r.get(13)?,
        sequence: r.get(14)?,
    })
}

/// Creates the file with mode 0600 before SQLite does (SQLite would use 0644 minus umask);
/// the -wal and -shm files inherit the mode. An existing file is tightened to 0600.
fn create_private_file(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)
            .map_err(|e| StoreError::io(path, "cannot create its directory", e))?;
    }
    let mut o = fs::OpenOptions::new();
    o.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let file = o
        .open(path)
        .map_err(|e| StoreError::io(path, "cannot open for writing", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = file
            .metadata()
            .map_err(|e| StoreError::io(path, "cannot read metadata", e))?;
        if !meta.is_file() {
            return Err(StoreError::Access {
                path: path.to_path_buf(),
                detail: "not a regular file".to_owned(),
            });
        }
        if meta.permissions().mode() & 0o077 != 0 {
            // Best effort: a file we do not own keeps its mode, and SQLite still works.
            let _ = file.set_permissions(fs::Permissions::from_mode(0o600));
        }
    }
    drop(file);
    Ok(())
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "it exists but is not a directory",
        ));
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}
