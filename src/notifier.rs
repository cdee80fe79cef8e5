//! The pieces of the notification engine that `crate::runtime` runs: [`Notifier`] (each
//! sweep's samples go through the monitor; crossings and their outbox rows are written in one
//! transaction), [`EventRouting`] (received events → outbox rows, one writer), the intake's
//! start-up, and what the console is sent of the outbox.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use crate::clock::{Clock, UnixMs};
use crate::config::Config;
use crate::intake::{IntakeEvent, IntakeHandle};
use crate::monitor::Monitor;
use crate::notify::dispatcher::Dispatcher;
use crate::notify::feed::{FiredMark, NotificationItem, OutboxSnapshot, SNAPSHOT_ROWS};
use crate::notify::plan::{Channels, plan_all};
use crate::notify::route::EventRouter;
use crate::orgs::OrgSource;
use crate::outbox::{Crossing, OutboxFilter, OutboxRow, OutboxState, Payload};
use crate::quota::{QuotaId, Sample};
use crate::store::{EventRow, Peers, Store, StoreError};

/// Received events the console starts with.
const RECENT_EVENTS: usize = 1000;

/// Why the notifier could not start.
#[derive(Debug)]
pub enum OpenError {
    /// Another tykwatch holds this data dir.
    InUse(std::path::PathBuf),
    Other(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::InUse(dir) => write!(
                f,
                "another tykwatch (console or `tykwatch run`) is using the data dir {}; stop it, \
                 or give this one its own with --data-dir",
                dir.display()
            ),
            OpenError::Other(m) => f.write_str(m),
        }
    }
}

impl From<String> for OpenError {
    fn from(m: String) -> Self {
        OpenError::Other(m)
    }
}

/// Why a notifier or routing call failed. Callers tell the data dir's problems (the store, or
/// the blocking task that runs it) from the routing writer having stopped (shutting down).
#[derive(Debug, Clone, thiserror::Error)]
pub enum EngineError {
    #[error("{0}")]
    Store(Arc<StoreError>),
    #[error("the store task failed: {0}")]
    Task(String),
    #[error("the routing writer stopped")]
    Stopped,
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::Store(Arc::new(e))
    }
}

impl From<tokio::task::JoinError> for EngineError {
    fn from(e: tokio::task::JoinError) -> Self {
        EngineError::Task(e.to_string())
    }
}

/// What a manual resend did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resend {
    /// Back to `pending`, due now.
    Queued,
    /// Only a `failed` or `dead` row can be resent; this one is in that state.
    NotResendable(OutboxState),
    /// No row has that idempotency key (purged, or a typo).
    NotFound,
}

/// Monitor + durable ledger/outbox.
pub struct Notifier {
    store: Arc<Mutex<Store>>,
    monitor: Monitor,
    channels: Channels,
    clock: Arc<dyn Clock>,
    /// When this process saw each quota's latest crossing (the ledger does not keep ids).
    fired_at: HashMap<QuotaId, UnixMs>,
    /// `[store] lease` on a shared store (the snapshot lists its live instances), else `None`.
    lease: Option<std::time::Duration>,
    /// `[store] retention`; zero keeps everything.
    retention: std::time::Duration,
    /// Held for the notifier's life: one process per data dir, or start-up recovery would put
    /// another process's in-flight sends back to `pending` and both would send them.
    _lock: std::fs::File,
}

fn lock(m: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Notifier {
    /// Opens the store in `data_dir`, returns sends a crash interrupted to `pending`, and warms
    /// the monitor from the ledger, so a restart never generates a crossing twice.
    pub fn open(
        data_dir: &Path,
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, OpenError> {
        Self::open_with(data_dir, config, clock, false)
    }

    /// [`Notifier::open`]; with `fresh`, the database is removed first (under the lock, so
    /// never under another process's feet): the demo starts from an empty ledger.
    pub fn open_with(
        data_dir: &Path,
        config: &Config,
        clock: Arc<dyn Clock>,
        fresh: bool,
    ) -> Result<Self, OpenError> {
        // Private, as the store makes it: the outbox holds recipients and payloads.
        std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
            .create(data_dir)
            .map_err(|e| format!("cannot create {}: {e}", data_dir.display()))?;
        let lock_path = data_dir.join("tykwatch.lock");
        let lock_file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
        match lock_file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OpenError::InUse(data_dir.to_path_buf()));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", lock_path.display()).into());
            }
        }
        if fresh {
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(
                    data_dir.join(format!("{}{suffix}", crate::store::DB_FILE)),
                );
            }
        }
        let store = Store::open_configured(&config.store, data_dir).map_err(|e| e.to_string())?;
        store.recover_inflight().map_err(|e| e.to_string())?;
        let mut monitor = Monitor::from_config(&config.monitor);
        let ledger = store
            .load_ledger_since(clock.now_secs())
            .map_err(|e| e.to_string())?;
        let last = store.last_sequence().map_err(|e| e.to_string())?;
        monitor.warm(&ledger, last);
        Ok(Notifier {
            store: Arc::new(Mutex::new(store)),
            monitor,
            channels: Channels::from_config(config),
            clock,
            fired_at: HashMap::new(),
            lease: config.store.is_shared().then_some(config.store.lease),
            retention: config.store.retention,
            _lock: lock_file,
        })
    }

    pub fn store(&self) -> Arc<Mutex<Store>> {
        self.store.clone()
    }

    /// `[monitor]` global thresholds in force.
    pub fn global_thresholds(&self) -> Vec<f64> {
        self.monitor.settings().global().to_vec()
    }

    /// Thresholds and channels from a reloaded configuration (SIGHUP). The ledger is kept:
    /// what fired stays fired; a new threshold fires when a quota next passes it.
    pub fn reconfigure(&mut self, config: &Config) {
        self.monitor
            .set_settings(crate::monitor::MonitorSettings::from_config(
                &config.monitor,
            ));
        self.channels = Channels::from_config(config);
        self.retention = config.store.retention;
    }

    /// `[store] retention` (zero: keep everything).
    pub fn retention(&self) -> std::time::Duration {
        self.retention
    }

    /// Applies `[store] retention` now (see [`crate::store::Store::apply_retention`]);
    /// `None` when retention is off.
    pub async fn apply_retention(&self) -> Result<Option<crate::store::Purged>, EngineError> {
        if self.retention.is_zero() {
            return Ok(None);
        }
        let (store, now, keep) = (self.store.clone(), self.clock.now_ms(), self.retention);
        let purged =
            tokio::task::spawn_blocking(move || lock(&store).apply_retention(now, keep)).await??;
        Ok(Some(purged))
    }

    pub fn channels(&self) -> &Channels {
        &self.channels
    }

    /// Evaluates one sweep's samples and records the crossings with their outbox rows in one
    /// transaction, off the async threads. On failure the monitor forgets them, so the next
    /// sample detects them again: nothing is lost. Returns what this call recorded (not what
    /// the ledger already had: on a shared store, another instance's first).
    pub async fn observe(&mut self, samples: &[Sample]) -> Result<Vec<Crossing>, String> {
        let now = self.clock.now_ms();
        let crossings = self.monitor.evaluate_all(samples, now);
        self.monitor.prune(now);
        if crossings.is_empty() {
            return Ok(crossings);
        }
        let rows = match plan_all(&crossings, &self.channels) {
            Ok(rows) => rows,
            Err(e) => {
                self.monitor.rollback(&crossings);
                return Err(format!("cannot plan notifications: {e}"));
            }
        };
        let store = self.store.clone();
        let batch = crossings.clone();
        let result =
            tokio::task::spawn_blocking(move || lock(&store).record_crossings(&batch, &rows))
                .await
                .map_err(|e| format!("the store task failed: {e}"))
                .and_then(|r| r.map_err(|e| e.to_string()));
        match result {
            Ok(recorded) => {
                for c in &crossings {
                    self.fired_at.insert(c.quota_id.clone(), c.at_ms);
                }
                // What another instance recorded first (a shared store), or this one before a
                // crash, was notified then: only this call's crossings are reported.
                Ok(crossings
                    .into_iter()
                    .enumerate()
                    .filter(|(i, _)| recorded.is_new(*i))
                    .map(|(_, c)| c)
                    .collect())
            }
            Err(message) => {
                self.monitor.rollback(&crossings);
                Err(message)
            }
        }
    }

    /// The highest threshold fired in each quota's current period (see `EngineEvent::Fired`).
    pub fn fired_marks(&mut self) -> Vec<FiredMark> {
        let mut marks: Vec<FiredMark> = self
            .monitor
            .highest_fired()
            .map(|(id, threshold)| FiredMark {
                quota: id.clone(),
                threshold,
                at_ms: self.fired_at.get(id).copied(),
            })
            .collect();
        marks.sort_by(|a, b| a.quota.cmp(&b.quota));
        let live: std::collections::HashSet<&QuotaId> = marks.iter().map(|m| &m.quota).collect();
        self.fired_at.retain(|id, _| live.contains(id));
        marks
    }

    /// The outbox as the Notifications view shows it; raw keys never leave this function.
    pub async fn snapshot(&self) -> Result<OutboxSnapshot, EngineError> {
        let store = self.store.clone();
        let channels = self.channels.ids();
        let at_ms = self.clock.now_ms();
        let lease = self.lease;
        tokio::task::spawn_blocking(move || read_snapshot(&lock(&store), channels, at_ms, lease))
            .await?
    }

    /// The most recent received events, oldest first (what the Events view starts with).
    pub async fn recent_events(&self) -> Result<Vec<EventRow>, EngineError> {
        let store = self.store.clone();
        let mut rows =
            tokio::task::spawn_blocking(move || lock(&store).list_events(RECENT_EVENTS)).await??;
        rows.reverse();
        Ok(rows)
    }

    /// A failed or dead row back to `pending`, due now.
    pub async fn resend(&self, idem_key: String) -> Result<Resend, EngineError> {
        let store = self.store.clone();
        let now = self.clock.now_ms();
        tokio::task::spawn_blocking(move || {
            let s = lock(&store);
            if s.resend(&idem_key, now)? {
                return Ok(Resend::Queued);
            }
            Ok(match s.get(&idem_key)? {
                Some(row) => Resend::NotResendable(row.state),
                None => Resend::NotFound,
            })
        })
        .await?
    }
}

/// Routes received events through the outbox (`[[routes]]`): planning runs on a task of its
/// own (it may read an org from a slow Dashboard, which must not stall the relay), the rows are
/// enqueued in one transaction, and the dispatcher is woken.
#[derive(Clone)]
pub struct EventRouting {
    /// Replaced whole by [`EventRouting::reconfigure`] (SIGHUP).
    router: Arc<std::sync::RwLock<Arc<EventRouter>>>,
    store: Arc<Mutex<Store>>,
    clock: Arc<dyn Clock>,
    /// The one writer of routed rows (see [`route_writer`]).
    writer: mpsc::Sender<RouteJob>,
}

/// An event's planned rows (empty: mark it routed) and where to say how it went.
type RouteJob = (
    i64,
    Vec<OutboxRow>,
    tokio::sync::oneshot::Sender<Result<usize, EngineError>>,
);

/// How far back start-up looks for events that were recorded but never routed.
const CATCH_UP_MS: i64 = 7 * 24 * 3600 * 1000;
/// Events written in one transaction at most.
const ROUTE_BATCH: usize = 1024;

impl EventRouting {
    /// Starts the writer task: call inside the runtime.
    pub fn new(
        config: &Config,
        orgs: Option<OrgSource>,
        store: Arc<Mutex<Store>>,
        dispatcher: Dispatcher,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let router = EventRouter::new(config, orgs);
        // A resent org e-mail reads the org's address again through the same cache.
        dispatcher.set_event_orgs(router.address_book());
        let (writer, jobs) = mpsc::channel(4 * ROUTE_BATCH);
        tokio::spawn(route_writer(store.clone(), dispatcher, jobs, clock.clone()));
        EventRouting {
            router: Arc::new(std::sync::RwLock::new(Arc::new(router))),
            store,
            clock,
            writer,
        }
    }

    fn router(&self) -> Arc<EventRouter> {
        self.router
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// `[[routes]]` and the channels they name from a reloaded configuration (SIGHUP);
    /// the org address book (and its cache) stays.
    pub fn reconfigure(&self, config: &Config) {
        let book = self.router().address_book();
        let router = Arc::new(EventRouter::with_address_book(config, book));
        *self.router.write().unwrap_or_else(|p| p.into_inner()) = router;
    }

    /// Plans and enqueues `ev` in the background; `report` hears why it could not be.
    pub fn route(&self, ev: IntakeEvent, report: impl FnOnce(EngineError) + Send + 'static) {
        let me = self.clone();
        tokio::spawn(async move {
            let rows = me.router().plan(&ev).await;
            if let Err(e) = me.settle(ev.id, rows).await {
                report(e);
            }
        });
    }

    /// Routes the events of the last week that have no outbox rows yet (replaying is safe:
    /// the idempotency keys make a second enqueue a no-op). Returns the rows planned.
    pub async fn catch_up(&self) -> Result<usize, EngineError> {
        let store = self.store.clone();
        let since = self.clock.now_ms() - CATCH_UP_MS;
        let pending =
            tokio::task::spawn_blocking(move || lock(&store).unrouted_events(since, 1000))
                .await??;
        let mut n = 0;
        for row in &pending {
            n += self
                .settle(row.id, self.router().plan_row(row).await)
                .await?;
        }
        Ok(n)
    }

    /// Hands an event's rows to the writer and waits until they are committed.
    async fn settle(&self, id: i64, rows: Vec<OutboxRow>) -> Result<usize, EngineError> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.writer
            .send((id, rows, done))
            .await
            .map_err(|_| EngineError::Stopped)?;
        result.await.map_err(|_| EngineError::Stopped)?
    }
}

/// Writes routed rows: whatever queued while the previous transaction was being fsynced goes
/// into the next one, so a flood of events costs one commit per batch, not one per event.
async fn route_writer(
    store: Arc<Mutex<Store>>,
    dispatcher: Dispatcher,
    mut jobs: mpsc::Receiver<RouteJob>,
    clock: Arc<dyn Clock>,
) {
    while let Some(first) = jobs.recv().await {
        let mut batch = vec![first];
        while batch.len() < ROUTE_BATCH {
            match jobs.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let unplanned: Vec<i64> = batch
            .iter()
            .filter(|(_, rows, _)| rows.is_empty())
            .map(|(id, _, _)| *id)
            .collect();
        let planned: Vec<usize> = batch.iter().map(|(_, rows, _)| rows.len()).collect();
        let rows: Vec<OutboxRow> = batch
            .iter_mut()
            .flat_map(|(_, rows, _)| std::mem::take(rows))
            .collect();
        let store = store.clone();
        let now = clock.now_ms();
        let result = tokio::task::spawn_blocking(move || {
            let mut s = lock(&store);
            let n = if rows.is_empty() {
                0
            } else {
                s.enqueue(&rows)?
            };
            if !unplanned.is_empty() {
                s.mark_events_routed(&unplanned, now)?;
            }
            Ok::<_, StoreError>(n)
        })
        .await
        .map_err(EngineError::from)
        .and_then(|r| r.map_err(EngineError::from));
        if matches!(result, Ok(n) if n > 0) {
            dispatcher.wake();
        }
        for ((_, _, done), n) in batch.into_iter().zip(planned) {
            let _ = done.send(result.clone().map(|_| n));
        }
    }
}

/// Starts the `[intake]` listener when `listen` is set, with a store connection of its own (so
/// a flood never waits on the notifier's lock).
pub async fn start_intake(
    config: &Config,
    data_dir: &Path,
) -> Result<Option<IntakeHandle>, String> {
    if config.intake.listen.is_none() {
        return Ok(None);
    }
    let store = Store::open_configured(&config.store, data_dir).map_err(|e| e.to_string())?;
    crate::intake::start(&config.intake, store)
        .await
        .map(Some)
        .map_err(|e| format!("[intake]: {e}"))
}

/// The next received event; never ready without a listener.
pub async fn next_intake(intake: &mut Option<IntakeHandle>) -> Option<IntakeEvent> {
    match intake {
        Some(i) => i.events.recv().await,
        None => std::future::pending().await,
    }
}

/// An event as the store keeps it (keys masked).
pub fn event_row(ev: &IntakeEvent) -> EventRow {
    EventRow {
        id: ev.id,
        received_at: ev.received_at,
        kind: ev.kind().as_str().to_owned(),
        event: ev.event.clone(),
        org_id: ev.org_id.clone(),
        summary: ev.summary.clone(),
        masked_key: ev.masked_key.clone(),
        payload_json: ev.payload.to_string(),
    }
}

/// The list fields of a row; the payload JSON (which may carry a raw key) is dropped, a quota
/// notification's parsed payload is kept without its raw key. A received event's row shows as
/// scope `event`, its summary as the label and its event name as the event.
/// The outbox of `store` as the Notifications view shows it (raw keys removed): what a
/// notifier sends, and what a console beside another process's notifier reads.
pub fn read_snapshot(
    s: &Store,
    channels: Vec<crate::outbox::ChannelId>,
    at_ms: crate::clock::UnixMs,
    lease: Option<std::time::Duration>,
) -> Result<OutboxSnapshot, EngineError> {
    let rows = s.list_outbox(&OutboxFilter::default(), SNAPSHOT_ROWS)?;
    Ok(OutboxSnapshot {
        items: rows.into_iter().map(item).collect(),
        counts: s.counts()?,
        disabled: s.disabled_channels()?,
        channels,
        peers: lease.map(|l| Peers::read(s, at_ms, l)).transpose()?,
        at_ms,
    })
}

/// The page of the list after `(sequence, idem_key)`: older rows, newest first, raw keys
/// removed.
pub fn read_page(
    s: &Store,
    sequence: i64,
    idem_key: String,
) -> Result<Vec<NotificationItem>, EngineError> {
    let filter = OutboxFilter {
        after: Some((sequence, idem_key)),
        ..OutboxFilter::default()
    };
    Ok(s.list_outbox(&filter, SNAPSHOT_ROWS)?
        .into_iter()
        .map(item)
        .collect())
}

pub fn item(mut row: OutboxRow) -> NotificationItem {
    let payload = Payload::of(&row).ok();
    row.payload_json.clear();
    match payload {
        Some(Payload::Event(p)) => NotificationItem {
            scope: "event".to_owned(),
            org_id: p.org_id,
            alias: p.summary,
            key_masked: p.masked_key,
            api_id: String::new(),
            event: p.event,
            usage_percentage: 0.0,
            payload: None,
            row,
        },
        // The raw key (the `tyk` channel's) never reaches the console; the rest is kept for
        // the Templates view's samples.
        Some(Payload::Crossing(mut p)) => {
            p.key = None;
            NotificationItem {
                scope: p.scope.clone(),
                org_id: p.org_id.clone(),
                alias: p.alias.clone(),
                key_masked: p.key_masked.clone(),
                api_id: p.api_id.clone(),
                event: p.event.clone(),
                usage_percentage: p.usage_percentage,
                payload: Some(p),
                row,
            }
        }
        Some(Payload::Test(_)) | None => NotificationItem {
            scope: if row.source.is_event() { "event" } else { "" }.to_owned(),
            org_id: String::new(),
            alias: String::new(),
            key_masked: String::new(),
            api_id: String::new(),
            event: String::new(),
            usage_percentage: 0.0,
            payload: None,
            row,
        },
    }
}
