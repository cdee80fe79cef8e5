//! The outbox relay (the transactional-outbox relay; ARCHITECTURE.md "Data flow"): claims due rows, sends them outside any transaction
//! with bounded concurrency per channel, and records the outcome ([`super::retry::classify`]).
//!
//! - The [`Store`] is synchronous: every call runs under a `std::sync::Mutex` inside
//!   `tokio::task::spawn_blocking`; no transaction is ever open across an `.await`.
//! - Claiming: [`Store::claim`] takes due rows (and rows whose holder's lease passed) for this
//!   instance with a lease, at most a cap per channel counting every instance's claims; the
//!   lease is renewed every third of it while the sends run, and each outcome is written only
//!   while this claim still holds the row ([`Store::settle`] with the claim's token). Several
//!   dispatchers may share one (PostgreSQL) store; see `crate::store::claims`.
//! - Sending is one prepare/send per channel ([`prepare`]): webhook rows go through
//!   [`super::webhook`]; e-mail rows (`email:*`) are rendered with the e-mail templates (loaded
//!   once per sweep that has e-mail, so edits apply to queued rows) and sent by the configured
//!   [`EmailSender`]. With e-mail disabled they fail with that reason (visible, resendable)
//!   instead of waiting for ever.
//! - Rows of received events ([`crate::outbox::Source::Event`]) carry an
//!   [`crate::outbox::EventPayload`]: webhooks get the event as a signed Standard Webhooks
//!   request (`type` = the event name), e-mails the event's template. An `email:event-org` row
//!   queued without recipients (its org could not be read when it was planned) reads the org
//!   again when it is sent (a resend), through [`Dispatcher::set_event_orgs`].
//! - [`Dispatcher::inspect`] shows what a row would send without sending it (raw API key and
//!   credentials masked); [`Dispatcher::send_test`] sends a `tykwatch.test` notification to a
//!   channel directly, outside the outbox. Both use the same prepare as delivery.
//! - Start-up calls [`Store::recover_inflight`] (interrupted sends go out again with the same
//!   `webhook-id`); a clean stop releases this instance's claims ([`Store::release_claims`])
//!   and its heartbeat, which is written every third of the lease while it runs.

mod prepare;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

use super::email::{EmailSender, EmailSetup};
use super::feed::DeliveryReport;
use super::retry::{Decision, Jitter, SeededJitter, classify};
use super::route::OrgAddressBook;
use super::webhook::{DEFAULT_TIMEOUT, StandardHook, TykHook, WebhookSender};
use crate::clock::{Clock, UnixMs};
use crate::config::{MonitorHookConfig, WebhookConfig};
use crate::outbox::{ChannelId, OutboxKind, OutboxRow, Source};
use crate::stats::DeliveryStats;
use crate::store::{ClaimRequest, Instance, Settle, Settlement, Store, StoreError};
use crate::templates::Templates;

/// The e-mail templates of one sweep, or why they could not be loaded.
type LoadedTemplates = Arc<Result<Templates, String>>;

/// The classified result of one send, waiting to be recorded.
#[derive(Clone)]
struct Outcome {
    key: String,
    /// The claim that sent it: the outcome is written only while that claim holds the row.
    token: Option<i64>,
    channel: ChannelId,
    decision: Decision,
    now: UnixMs,
    /// Where the row came from, for the report.
    source: Source,
    /// The row's attempts when it was claimed.
    attempts_before: u32,
    /// What this attempt sent (masked), when it was built.
    sent: Option<String>,
}

impl Outcome {
    fn report(&self, recorded: bool) -> DeliveryReport {
        let (outcome, attempt, status, next_attempt_at, reason) = match &self.decision {
            Decision::Delivered { status } => ("delivered", None, *status, None, None),
            Decision::Retry {
                attempts,
                next_at,
                status,
                reason,
            } => (
                "retry",
                Some(*attempts),
                *status,
                Some(*next_at),
                Some(reason),
            ),
            Decision::Failed {
                attempts,
                status,
                reason,
            } => ("failed", Some(*attempts), *status, None, Some(reason)),
            Decision::Dead {
                attempts,
                status,
                reason,
            } => ("dead", Some(*attempts), *status, None, Some(reason)),
            Decision::DisableChannel {
                attempts,
                status,
                reason,
            } => (
                "disabled",
                Some(*attempts),
                Some(*status),
                None,
                Some(reason),
            ),
        };
        DeliveryReport {
            idem_key: self.key.clone(),
            channel: self.channel.clone(),
            outcome,
            // A delivery counts one more attempt than the row had when it was claimed.
            attempt: attempt.unwrap_or(self.attempts_before + 1),
            status,
            next_attempt_at,
            reason: reason.cloned(),
            quota_id: self.source.quota_key().map(str::to_owned),
            event_id: match self.source {
                Source::Event { event_id } => Some(event_id),
                Source::Crossing { .. } => None,
            },
            recorded,
            at_ms: self.now,
        }
    }
}

/// How one outcome is written to its row.
fn settlement(o: &Outcome) -> Settlement<'_> {
    let outcome = match &o.decision {
        Decision::Delivered { status } => Settle::Delivered {
            status: *status,
            at: o.now,
        },
        Decision::Retry {
            attempts,
            next_at,
            status,
            reason,
        } => Settle::Retry {
            attempts: *attempts,
            next_at: *next_at,
            status: *status,
            error: reason,
        },
        Decision::Failed {
            attempts,
            status,
            reason,
        } => Settle::Failed {
            attempts: *attempts,
            status: *status,
            reason,
        },
        Decision::Dead {
            attempts,
            status,
            reason,
        } => Settle::Dead {
            attempts: *attempts,
            status: *status,
            reason,
        },
        // The channel itself is disabled after the batch commits (its own transaction).
        Decision::DisableChannel {
            attempts,
            status,
            reason,
        } => Settle::Failed {
            attempts: *attempts,
            status: Some(*status),
            reason,
        },
    };
    Settlement {
        idem_key: &o.key,
        token: o.token,
        outcome,
        sent: o.sent.as_deref().map(|text| (o.now, text)),
    }
}

/// Tuning of the relay.
#[derive(Debug, Clone)]
pub struct DispatcherOptions {
    /// Rows claimed per sweep.
    pub batch: usize,
    /// Concurrent sends per channel.
    pub per_channel: usize,
    /// Sleep between sweeps in [`Dispatcher::run`].
    pub poll_interval: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
    /// How long claimed rows stay this instance's without a renewal (`[store] lease`).
    pub lease: Duration,
    /// What the instance's heartbeat shows of its settings (instances that disagree are
    /// visible).
    pub config_hash: String,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        DispatcherOptions {
            batch: 64,
            per_channel: 4,
            poll_interval: Duration::from_secs(1),
            timeout: DEFAULT_TIMEOUT,
            lease: Duration::from_secs(30),
            config_hash: String::new(),
        }
    }
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub claimed: usize,
    pub delivered: usize,
    pub retried: usize,
    pub failed: usize,
    pub dead: usize,
    /// Channels disabled by a 410.
    pub disabled: Vec<ChannelId>,
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("store task failed: {0}")]
    Join(String),
}

/// The configured channels; replaced whole by [`Dispatcher::reconfigure`] (SIGHUP), so an
/// attempt uses one consistent set from its start to its end.
struct ChannelSet {
    tyk: Option<TykHook>,
    webhooks: HashMap<ChannelId, StandardHook>,
    email: EmailSetup,
    mailer: EmailSender,
}

impl ChannelSet {
    fn new(
        monitor: &MonitorHookConfig,
        webhooks: &[WebhookConfig],
        email: EmailSetup,
        timeout: Duration,
    ) -> ChannelSet {
        ChannelSet {
            mailer: EmailSender::new(&email, timeout),
            tyk: (!monitor.target_path.is_empty()).then(|| TykHook::from_config(monitor)),
            webhooks: webhooks
                .iter()
                .filter(|w| w.enabled)
                .map(|w| (ChannelId::webhook(&w.name), StandardHook::from_config(w)))
                .collect(),
            email,
        }
    }
}

struct Inner {
    store: Arc<Mutex<Store>>,
    clock: Arc<dyn Clock>,
    sender: WebhookSender,
    channels: RwLock<Arc<ChannelSet>>,
    jitter: Mutex<Box<dyn Jitter>>,
    limits: Mutex<HashMap<ChannelId, Arc<Semaphore>>>,
    /// Channels a 410 disabled: rows already claimed for them are not sent.
    disabled: Mutex<HashSet<ChannelId>>,
    opts: DispatcherOptions,
    /// Rings when new rows were recorded, so [`Dispatcher::run`] does not wait for its poll.
    wake: tokio::sync::Notify,
    /// Org addresses for `email:event-org` rows queued without recipients.
    event_orgs: OnceLock<Arc<OrgAddressBook>>,
    /// Attempts by channel and outcome, and their latency (for `/metrics`).
    stats: Arc<DeliveryStats>,
    /// [`Dispatcher::run`] is running (for `/readyz`).
    running: AtomicBool,
    /// Who claims: this process, as its heartbeat shows it.
    instance: Instance,
    /// Where recorded outcomes go ([`Dispatcher::subscribe`]).
    reports: OnceLock<mpsc::Sender<Vec<DeliveryReport>>>,
}

/// Batches of outcomes waiting for their reader.
const REPORT_QUEUE: usize = 256;

/// The webhook delivery worker.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("tyk", &self.channels().tyk.is_some())
            .field(
                "webhooks",
                &self.channels().webhooks.keys().collect::<Vec<_>>(),
            )
            .field("email_enabled", &self.channels().email.enabled())
            .field("mailer", &self.channels().mailer)
            .field("opts", &self.inner.opts)
            .finish()
    }
}

/// Sets the flag while [`Dispatcher::run`] runs, and clears it however it returns.
struct Running<'a>(&'a AtomicBool);

impl<'a> Running<'a> {
    fn start(flag: &'a AtomicBool) -> Running<'a> {
        flag.store(true, Ordering::Relaxed);
        Running(flag)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Relaxed);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Dispatcher {
    /// `monitor` is the `tyk` channel (ignored when its `target_path` is empty); `webhooks`
    /// are the `webhook:<name>` channels; `email` the `email:*` channels
    /// ([`EmailSetup::from_config`], or [`EmailSetup::disabled`]). The Tyk template is loaded
    /// here; if it cannot be, every `tyk` row fails with the reason (visible, resendable). An
    /// e-mail backend whose settings cannot work fails every e-mail row with the reason.
    pub fn new(
        store: Arc<Mutex<Store>>,
        clock: Arc<dyn Clock>,
        monitor: &MonitorHookConfig,
        webhooks: &[WebhookConfig],
        email: EmailSetup,
        opts: DispatcherOptions,
    ) -> Result<Dispatcher, DispatchError> {
        Self::with_jitter(
            store,
            clock,
            monitor,
            webhooks,
            email,
            opts,
            Box::new(SeededJitter::from_entropy()),
        )
    }

    /// [`Dispatcher::new`] with an injected jitter source (tests: `NoJitter`).
    pub fn with_jitter(
        store: Arc<Mutex<Store>>,
        clock: Arc<dyn Clock>,
        monitor: &MonitorHookConfig,
        webhooks: &[WebhookConfig],
        email: EmailSetup,
        opts: DispatcherOptions,
        jitter: Box<dyn Jitter>,
    ) -> Result<Dispatcher, DispatchError> {
        let channels = ChannelSet::new(monitor, webhooks, email, opts.timeout);
        let instance = Instance::this_process(opts.config_hash.clone(), clock.now_ms());
        Ok(Dispatcher {
            inner: Arc::new(Inner {
                store,
                clock,
                sender: WebhookSender::new(opts.timeout)?,
                channels: RwLock::new(Arc::new(channels)),
                jitter: Mutex::new(jitter),
                limits: Mutex::new(HashMap::new()),
                disabled: Mutex::new(Default::default()),
                opts,
                wake: tokio::sync::Notify::new(),
                event_orgs: OnceLock::new(),
                stats: Arc::default(),
                running: AtomicBool::new(false),
                instance,
                reports: OnceLock::new(),
            }),
        })
    }

    /// Where `email:event-org` rows planned while their org could not be read get its
    /// addresses when they are sent (a resend): pass `EventRouter::address_book()`. Without
    /// it such rows fail again with the reason. Set once; returns false if already set.
    pub fn set_event_orgs(&self, book: Arc<OrgAddressBook>) -> bool {
        self.inner.event_orgs.set(book).is_ok()
    }

    fn channels(&self) -> Arc<ChannelSet> {
        self.inner
            .channels
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// New channels from a reloaded configuration (SIGHUP): attempts that started keep the
    /// set they started with; the next claim uses the new one. Pending rows stay queued; a
    /// row of a channel that is gone fails with that reason (and can be resent if it returns).
    pub fn reconfigure(
        &self,
        monitor: &MonitorHookConfig,
        webhooks: &[WebhookConfig],
        email: EmailSetup,
    ) {
        let set = Arc::new(ChannelSet::new(
            monitor,
            webhooks,
            email,
            self.inner.opts.timeout,
        ));
        *self
            .inner
            .channels
            .write()
            .unwrap_or_else(|p| p.into_inner()) = set;
        self.wake();
    }

    /// What delivery counted so far.
    pub fn stats(&self) -> Arc<DeliveryStats> {
        self.inner.stats.clone()
    }

    /// Whether [`Dispatcher::run`] is delivering (false before it starts and after it stops).
    pub fn is_running(&self) -> bool {
        self.inner.running.load(Ordering::Relaxed)
    }

    async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, DispatchError> {
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || f(&mut lock(&store)))
            .await
            .map_err(|e| DispatchError::Join(e.to_string()))?
            .map_err(DispatchError::from)
    }

    /// `inflight → pending` for sends a crash (or a cancellation) interrupted.
    pub async fn recover(&self) -> Result<usize, DispatchError> {
        self.with_store(|s| s.recover_inflight()).await
    }

    /// This process as the store's heartbeat shows it.
    pub fn instance(&self) -> &Instance {
        &self.inner.instance
    }

    /// Claims up to `room` due rows for this instance, at most `per_channel` per channel
    /// counting every instance's live claims; returns the claim's token with them.
    async fn claim(
        &self,
        room: usize,
        per_channel: usize,
    ) -> Result<(i64, Vec<OutboxRow>), DispatchError> {
        let now = self.inner.clock.now_ms();
        let me = self.clone();
        let lease_ms = i64::try_from(self.inner.opts.lease.as_millis()).unwrap_or(i64::MAX);
        self.with_store(move |s| {
            let req = ClaimRequest {
                instance: &me.inner.instance.id,
                room,
                per_channel,
                lease_ms,
            };
            s.claim(now, &req).map(|c| (c.token, c.rows))
        })
        .await
    }

    /// Renews this instance's leases and heartbeat.
    async fn renew(&self) -> Result<(), DispatchError> {
        let now = self.inner.clock.now_ms();
        let lease_ms = i64::try_from(self.inner.opts.lease.as_millis()).unwrap_or(i64::MAX);
        let mut me = self.inner.instance.clone();
        me.seen_at = now;
        self.with_store(move |s| {
            s.renew_claims(&me.id, now.saturating_add(lease_ms))?;
            s.heartbeat(&me)
        })
        .await
    }

    fn channel_limit(&self, channel: &ChannelId) -> Arc<Semaphore> {
        lock(&self.inner.limits)
            .entry(channel.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.inner.opts.per_channel.max(1))))
            .clone()
    }

    /// The e-mail templates (user directory over the shipped set), read from disk now.
    async fn load_templates(&self) -> LoadedTemplates {
        let dir = self.channels().email.template_dir.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            Templates::load(dir.as_deref()).map_err(|e| format!("e-mail templates: {e}"))
        })
        .await
        .unwrap_or_else(|e| Err(format!("loading the e-mail templates failed: {e}")));
        Arc::new(loaded)
    }

    /// Sends one row and records the outcome.
    /// Sends one row (within its channel's concurrency) and classifies the outcome; the
    /// caller records it with [`Dispatcher::record`].
    async fn deliver(
        &self,
        row: OutboxRow,
        token: Option<i64>,
        templates: Option<LoadedTemplates>,
    ) -> Outcome {
        let limit = self.channel_limit(&row.channel_id);
        // The semaphore is never closed; without a permit the send still goes (unbounded).
        let _permit = limit.acquire_owned().await.ok();
        // A 410 may have disabled the channel while this row waited for its turn.
        if lock(&self.inner.disabled).contains(&row.channel_id) {
            return Outcome {
                decision: Decision::Failed {
                    attempts: row.attempts,
                    status: None,
                    reason: format!("channel {} is disabled (410 Gone)", row.channel_id),
                },
                now: self.inner.clock.now_ms(),
                key: row.idem_key,
                token,
                channel: row.channel_id,
                source: row.source,
                attempts_before: row.attempts,
                sent: None,
            };
        }
        let started = std::time::Instant::now();
        let (result, sent) = self.attempt(&row, templates.as_ref()).await;
        let secs = started.elapsed().as_secs_f64();
        let now = self.inner.clock.now_ms();
        let decision = {
            let mut j = lock(&self.inner.jitter);
            classify(&result, row.attempts, now, &mut **j)
        };
        let outcome = match &decision {
            Decision::Delivered { .. } => "delivered",
            Decision::Retry { .. } => "retry",
            Decision::Failed { .. } => "failed",
            Decision::Dead { .. } => "dead",
            Decision::DisableChannel { .. } => "disabled",
        };
        let kind = row.kind().as_str();
        let channel = row.channel_id.to_string();
        self.inner.stats.record(&channel, kind, outcome, secs);
        // The idempotency key holds no raw key; reasons are the receiver's status and text.
        match &decision {
            Decision::Delivered { status } => {
                tracing::debug!(id = %row.idem_key, %channel, ?status, secs, "delivered")
            }
            Decision::Retry {
                reason, next_at, ..
            } => tracing::warn!(
                id = %row.idem_key, %channel, reason = ?reason,
                retry_in_s = (next_at - now) / 1000, "delivery failed, will retry"
            ),
            Decision::Failed { reason, .. }
            | Decision::Dead { reason, .. }
            | Decision::DisableChannel { reason, .. } => tracing::error!(
                id = %row.idem_key, %channel, reason = ?reason, outcome, "delivery given up"
            ),
        }
        Outcome {
            key: row.idem_key,
            token,
            channel: row.channel_id,
            decision,
            now,
            source: row.source,
            attempts_before: row.attempts,
            sent,
        }
    }

    /// Writes outcomes in one transaction: one fsync for a burst of sends. A row is marked
    /// delivered only after its 2xx / 250; a crash before this commit repeats those sends
    /// with the same id (the documented accepted-then-crashed window, a little wider).
    async fn record(&self, outcomes: Vec<Outcome>) -> Result<(), DispatchError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let me = self.clone();
        let reports = self
            .with_store(move |s| {
                let batch: Vec<Settlement<'_>> = outcomes.iter().map(settlement).collect();
                // False when the claim was lost (its lease passed and another claim took the
                // row): the newer claim's outcome stands.
                let written = s.settle_all(&batch)?;
                for (o, written) in outcomes.iter().zip(&written) {
                    if !written {
                        tracing::debug!(id = %o.key, "outcome not recorded: the row is no longer this claim's");
                    }
                }
                for o in &outcomes {
                    if let Decision::DisableChannel { reason, .. } = &o.decision {
                        s.disable_channel(&o.channel, reason, o.now)?;
                        lock(&me.inner.disabled).insert(o.channel.clone());
                    }
                }
                Ok(outcomes
                    .iter()
                    .zip(written)
                    .map(|(o, w)| o.report(w))
                    .collect::<Vec<_>>())
            })
            .await?;
        self.report(reports);
        Ok(())
    }

    /// Hands recorded outcomes to the subscriber, if any. A subscriber that stopped reading
    /// loses lines, never delivery: the store has every outcome.
    fn report(&self, reports: Vec<DeliveryReport>) {
        let Some(tx) = self.inner.reports.get() else {
            return;
        };
        if let Err(mpsc::error::TrySendError::Full(lost)) = tx.try_send(reports) {
            tracing::warn!(
                outcomes = lost.len(),
                "delivery outcomes not reported: the reader is behind (the outbox has them)"
            );
        }
    }

    /// The outcomes of sends, in batches, once each is in the store. Once per dispatcher:
    /// `None` when already taken.
    pub fn subscribe(&self) -> Option<mpsc::Receiver<Vec<DeliveryReport>>> {
        let (tx, rx) = mpsc::channel(REPORT_QUEUE);
        self.inner.reports.set(tx).ok().map(|()| rx)
    }

    /// One sweep: claim what is due, send it all, record every outcome.
    pub async fn run_once(&self) -> Result<SweepReport, DispatchError> {
        let batch = self.inner.opts.batch.max(1);
        let (token, rows) = self.claim(batch, batch).await?;
        let mut report = SweepReport {
            claimed: rows.len(),
            ..SweepReport::default()
        };
        // One template load per sweep with e-mail: edits apply to rows still queued.
        let templates = if self.channels().email.enabled()
            && rows.iter().any(|r| r.kind() == OutboxKind::Email)
        {
            Some(self.load_templates().await)
        } else {
            None
        };
        let mut tasks = JoinSet::new();
        for row in rows {
            let me = self.clone();
            let templates = templates.clone();
            tasks.spawn(async move { me.deliver(row, Some(token), templates).await });
        }
        let mut first_err = None;
        let mut outcomes = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok(o) => outcomes.push(o),
                Err(e) => {
                    first_err.get_or_insert(DispatchError::Join(e.to_string()));
                }
            }
        }
        for o in &outcomes {
            match &o.decision {
                Decision::Delivered { .. } => report.delivered += 1,
                Decision::Retry { .. } => report.retried += 1,
                Decision::Failed { .. } => report.failed += 1,
                Decision::Dead { .. } => report.dead += 1,
                Decision::DisableChannel { .. } => {
                    report.failed += 1;
                    if !report.disabled.contains(&o.channel) {
                        report.disabled.push(o.channel.clone());
                    }
                }
            }
        }
        if let Err(e) = self.record(outcomes).await {
            first_err.get_or_insert(e);
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// New rows are due: [`Dispatcher::run`] claims them now instead of at its next poll. A
    /// wake while nobody waits is kept for the next wait.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Recovers interrupted sends, then delivers continuously until `cancel` is signalled (any
    /// new value; send `true`) or its sender is dropped: due rows are claimed whenever there is
    /// room (at most `4 × batch` rows at once; per channel `batch` on SQLite, `per_channel`
    /// on a shared store, where the cap counts every instance's sends), on
    /// [`Dispatcher::wake`], and every `poll_interval` for retries coming due. Sends still in
    /// flight at cancellation are abandoned and their rows go back to `pending`. A failed claim
    /// or write (e.g. the database is locked) is reported to `on_error` and tried again later.
    pub async fn run(
        &self,
        mut cancel: watch::Receiver<bool>,
        mut on_error: impl FnMut(DispatchError) + Send,
    ) -> Result<(), DispatchError> {
        self.recover().await?;
        let _running = Running::start(&self.inner.running);
        let max_in_flight = self.inner.opts.batch.max(1) * 4;
        // Rows one channel may hold claimed (sending or waiting for its semaphore). Alone on
        // its store: enough to keep its `per_channel` sends busy, a quarter of the slots at
        // most. Sharing it: `per_channel`, so the limit holds across instances.
        let shared = self.with_store(|s| Ok(s.is_shared())).await?;
        let per_channel = self.inner.opts.per_channel.max(1);
        let cap = if shared {
            per_channel
        } else {
            self.inner.opts.batch.max(1).max(per_channel)
        };
        let renew_every = (self.inner.opts.lease / 3).max(Duration::from_millis(200));
        let mut renewed = std::time::Instant::now();
        if let Err(e) = self.renew().await {
            on_error(e);
        }
        let mut tasks: JoinSet<Outcome> = JoinSet::new();
        // What each task is sending, to put the row back if the task panics.
        let mut sending: HashMap<tokio::task::Id, (String, ChannelId, u32, i64, Source)> =
            HashMap::new();
        // Outcomes whose write failed (e.g. the database was locked): written again next round.
        let mut unrecorded: Vec<Outcome> = Vec::new();
        match self.with_store(|s| s.disabled_channels()).await {
            Ok(d) => lock(&self.inner.disabled).extend(d.into_iter().map(|c| c.channel_id)),
            Err(e) => on_error(e),
        }
        // Templates are re-read at most once a second: edits apply to queued rows.
        let mut templates: Option<(std::time::Instant, LoadedTemplates)> = None;
        loop {
            if *cancel.borrow_and_update() {
                break;
            }
            if !unrecorded.is_empty() {
                match self.record(unrecorded.clone()).await {
                    Ok(()) => unrecorded.clear(),
                    Err(e) => on_error(e),
                }
            }
            if renewed.elapsed() >= renew_every {
                renewed = std::time::Instant::now();
                if let Err(e) = self.renew().await {
                    on_error(e);
                }
            }
            if tasks.len() <= max_in_flight / 2 {
                match self.claim(max_in_flight - tasks.len(), cap).await {
                    Ok((token, rows)) => {
                        let email = self.channels().email.enabled()
                            && rows.iter().any(|r| r.kind() == OutboxKind::Email);
                        if email
                            && templates
                                .as_ref()
                                .is_none_or(|(at, _)| at.elapsed() >= Duration::from_secs(1))
                        {
                            templates =
                                Some((std::time::Instant::now(), self.load_templates().await));
                        }
                        for row in rows {
                            let me = self.clone();
                            let t = email
                                .then(|| templates.as_ref().map(|(_, t)| t.clone()))
                                .flatten();
                            let what = (
                                row.idem_key.clone(),
                                row.channel_id.clone(),
                                row.attempts,
                                token,
                                row.source.clone(),
                            );
                            let handle =
                                tasks.spawn(async move { me.deliver(row, Some(token), t).await });
                            sending.insert(handle.id(), what);
                        }
                    }
                    Err(e) => on_error(e),
                }
            }
            tokio::select! {
                Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    let mut done = vec![joined];
                    while let Some(j) = tasks.try_join_next_with_id() {
                        done.push(j);
                    }
                    for j in done {
                        let (id, outcome) = match j {
                            Ok((id, o)) => (id, Some(o)),
                            Err(e) => {
                                on_error(DispatchError::Join(e.to_string()));
                                (e.id(), None)
                            }
                        };
                        let Some((key, channel, attempts, token, source)) = sending.remove(&id)
                        else {
                            continue;
                        };
                        // A send that panicked goes back on the schedule, never lost.
                        let now = self.inner.clock.now_ms();
                        unrecorded.push(outcome.unwrap_or(Outcome {
                            decision: Decision::Retry {
                                attempts: attempts + 1,
                                next_at: now + 5_000,
                                status: None,
                                reason: "internal error while sending (will retry)".into(),
                            },
                            key,
                            token: Some(token),
                            channel,
                            now,
                            source,
                            attempts_before: attempts,
                            sent: None,
                        }));
                    }
                    match self.record(unrecorded.clone()).await {
                        Ok(()) => unrecorded.clear(),
                        Err(e) => on_error(e),
                    }
                }
                _ = tokio::time::sleep(self.inner.opts.poll_interval) => {}
                _ = self.inner.wake.notified() => {}
                _ = cancel.changed() => break,
            }
        }
        // Sends that finished before the cancellation are recorded; the rest go back to
        // `pending` and are sent again (with the same id) by the next run.
        tasks.abort_all();
        while let Some(j) = tasks.join_next().await {
            if let Ok(o) = j {
                unrecorded.push(o);
            }
        }
        if let Err(e) = self.record(unrecorded).await {
            on_error(e);
        }
        let id = self.inner.instance.id.clone();
        self.with_store(move |s| {
            s.release_claims(&id)?;
            s.leave(&id)
        })
        .await?;
        Ok(())
    }
}
