//! The outbox relay (delivery.md §4.1): claims due rows, sends them outside any transaction
//! with bounded concurrency per channel, and records the outcome ([`super::retry::classify`]).
//!
//! - The [`Store`] is synchronous: every call runs under a `std::sync::Mutex` inside
//!   `tokio::task::spawn_blocking`; no transaction is ever open across an `.await`.
//! - Claiming: due rows are read with [`Store::due`] and taken one by one with
//!   [`Store::mark_inflight`] (conditional on `pending`, so a row is only ever this caller's).
//!   `Store::claim_due` is not used because it would also claim e-mail rows.
//! - **E-mail channels (`email:*`) are not delivered here**: their rows are skipped and left
//!   untouched (`pending`) for the e-mail sender.
//! - Start-up and cancellation call [`Store::recover_inflight`]: interrupted sends go out again
//!   with the same `webhook-id`. This assumes one dispatcher per database.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::plan::{CHANNEL_TYK, NotificationPayload};
use super::retry::{AttemptResult, Decision, Jitter, SeededJitter, classify};
use super::webhook::{
    DEFAULT_TIMEOUT, StandardHook, TykHook, WebhookSender, build_standard, build_tyk,
};
use crate::clock::Clock;
use crate::config::{MonitorHookConfig, WebhookConfig};
use crate::store::{OutboxKind, OutboxRow, Store, StoreError};

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
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        DispatcherOptions {
            batch: 64,
            per_channel: 4,
            poll_interval: Duration::from_secs(1),
            timeout: DEFAULT_TIMEOUT,
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
    pub disabled: Vec<String>,
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

struct Inner {
    store: Arc<Mutex<Store>>,
    clock: Arc<dyn Clock>,
    sender: WebhookSender,
    tyk: Option<TykHook>,
    webhooks: HashMap<String, StandardHook>,
    jitter: Mutex<Box<dyn Jitter>>,
    limits: Mutex<HashMap<String, Arc<Semaphore>>>,
    opts: DispatcherOptions,
}

/// The webhook delivery worker.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Dispatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dispatcher")
            .field("tyk", &self.inner.tyk.is_some())
            .field("webhooks", &self.inner.webhooks.keys().collect::<Vec<_>>())
            .field("opts", &self.inner.opts)
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Dispatcher {
    /// `monitor` is the `tyk` channel (ignored when its `target_path` is empty); `webhooks`
    /// are the `webhook:<name>` channels. The Tyk template is loaded here; if it cannot be,
    /// every `tyk` row fails with the reason (visible, resendable).
    pub fn new(
        store: Arc<Mutex<Store>>,
        clock: Arc<dyn Clock>,
        monitor: &MonitorHookConfig,
        webhooks: &[WebhookConfig],
        opts: DispatcherOptions,
    ) -> Result<Dispatcher, DispatchError> {
        Self::with_jitter(
            store,
            clock,
            monitor,
            webhooks,
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
        opts: DispatcherOptions,
        jitter: Box<dyn Jitter>,
    ) -> Result<Dispatcher, DispatchError> {
        let tyk = (!monitor.target_path.is_empty()).then(|| TykHook::from_config(monitor));
        let webhooks = webhooks
            .iter()
            .filter(|w| w.enabled)
            .map(|w| {
                (
                    super::plan::webhook_channel(&w.name),
                    StandardHook::from_config(w),
                )
            })
            .collect();
        Ok(Dispatcher {
            inner: Arc::new(Inner {
                store,
                clock,
                sender: WebhookSender::new(opts.timeout)?,
                tyk,
                webhooks,
                jitter: Mutex::new(jitter),
                limits: Mutex::new(HashMap::new()),
                opts,
            }),
        })
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

    /// Claims the due webhook rows (never e-mail rows) and marks them `inflight`.
    async fn claim(&self) -> Result<Vec<OutboxRow>, DispatchError> {
        let now = self.inner.clock.now_ms();
        let batch = self.inner.opts.batch.max(1);
        self.with_store(move |s| {
            // E-mail rows are left alone; look further when they fill the head of the queue.
            let mut scan = batch;
            let candidates = loop {
                let due = s.due(now, scan)?;
                let full = due.len() == scan;
                let rows: Vec<OutboxRow> = due
                    .into_iter()
                    .filter(|r| r.kind != OutboxKind::Email)
                    .take(batch)
                    .collect();
                if rows.len() == batch || !full || scan >= 16_384 {
                    break rows;
                }
                scan *= 4;
            };
            let mut claimed = Vec::with_capacity(candidates.len());
            for mut r in candidates {
                if s.mark_inflight(&r.idem_key)? {
                    r.state = crate::store::OutboxState::Inflight;
                    claimed.push(r);
                }
            }
            Ok(claimed)
        })
        .await
    }

    fn channel_limit(&self, channel: &str) -> Arc<Semaphore> {
        lock(&self.inner.limits)
            .entry(channel.to_owned())
            .or_insert_with(|| Arc::new(Semaphore::new(self.inner.opts.per_channel.max(1))))
            .clone()
    }

    /// Builds and sends one row; `Permanent` when it cannot be built.
    async fn attempt(&self, row: &OutboxRow) -> AttemptResult {
        let payload = match NotificationPayload::from_json(&row.payload_json) {
            Ok(p) => p,
            Err(e) => return AttemptResult::Permanent(format!("unreadable payload: {e}")),
        };
        let now_ms = self.inner.clock.now_ms();
        let built = match row.kind {
            OutboxKind::TykWebhook => match &self.inner.tyk {
                Some(hook) if row.channel_id == CHANNEL_TYK => build_tyk(hook, &payload),
                _ => Err(
                    "the tyk channel is not configured ([monitor.configuration] target_path)"
                        .into(),
                ),
            },
            OutboxKind::StandardWebhook => match self.inner.webhooks.get(&row.channel_id) {
                Some(hook) => {
                    build_standard(hook, &payload, &row.idem_key, now_ms.div_euclid(1000))
                }
                None => Err(format!(
                    "channel {} is not configured (or disabled) in [[webhooks]]",
                    row.channel_id
                )),
            },
            OutboxKind::Email => Err("e-mail is not delivered by the webhook dispatcher".into()),
        };
        match built {
            Ok(req) => self.inner.sender.send(req, now_ms).await,
            Err(reason) => AttemptResult::Permanent(reason),
        }
    }

    /// Sends one row and records the outcome.
    async fn deliver(&self, row: OutboxRow) -> Result<Decision, DispatchError> {
        let limit = self.channel_limit(&row.channel_id);
        let _permit = limit
            .acquire_owned()
            .await
            .map_err(|e| DispatchError::Join(e.to_string()))?;
        let result = self.attempt(&row).await;
        let now = self.inner.clock.now_ms();
        let decision = {
            let mut j = lock(&self.inner.jitter);
            classify(&result, row.attempts, now, &mut **j)
        };
        let d = decision.clone();
        let key = row.idem_key;
        let channel = row.channel_id;
        self.with_store(move |s| {
            match d {
                Decision::Delivered { status } => {
                    s.mark_delivered(&key, Some(status), now)?;
                }
                Decision::Retry {
                    attempts,
                    next_at,
                    status,
                    reason,
                } => {
                    s.mark_retry(&key, attempts, next_at, status, &reason)?;
                }
                Decision::Failed {
                    attempts,
                    status,
                    reason,
                } => {
                    s.mark_failed(&key, attempts, status, &reason)?;
                }
                Decision::Dead {
                    attempts,
                    status,
                    reason,
                } => {
                    s.mark_dead(&key, attempts, status, &reason)?;
                }
                Decision::DisableChannel {
                    attempts,
                    status,
                    reason,
                } => {
                    s.mark_failed(&key, attempts, Some(status), &reason)?;
                    s.disable_channel(&channel, &reason, now)?;
                }
            }
            Ok(())
        })
        .await?;
        Ok(decision)
    }

    /// One sweep: claim what is due, send it all, record every outcome.
    pub async fn run_once(&self) -> Result<SweepReport, DispatchError> {
        let rows = self.claim().await?;
        let mut report = SweepReport {
            claimed: rows.len(),
            ..SweepReport::default()
        };
        let mut tasks = JoinSet::new();
        for row in rows {
            let me = self.clone();
            let channel = row.channel_id.clone();
            tasks.spawn(async move { (channel, me.deliver(row).await) });
        }
        let mut first_err = None;
        while let Some(joined) = tasks.join_next().await {
            let (channel, res) = match joined {
                Ok(v) => v,
                Err(e) => {
                    first_err.get_or_insert(DispatchError::Join(e.to_string()));
                    continue;
                }
            };
            match res {
                Ok(Decision::Delivered { .. }) => report.delivered += 1,
                Ok(Decision::Retry { .. }) => report.retried += 1,
                Ok(Decision::Failed { .. }) => report.failed += 1,
                Ok(Decision::Dead { .. }) => report.dead += 1,
                Ok(Decision::DisableChannel { .. }) => {
                    report.failed += 1;
                    if !report.disabled.contains(&channel) {
                        report.disabled.push(channel);
                    }
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok(report),
        }
    }

    /// Recovers interrupted sends, then sweeps every `poll_interval` until `cancel` is
    /// signalled (any new value; send `true`) or its sender is dropped. Sends still in flight are abandoned and their rows go
    /// back to `pending`. A failed sweep (e.g. the database is locked) is reported to
    /// `on_error` and retried at the next interval.
    pub async fn run(
        &self,
        mut cancel: watch::Receiver<bool>,
        mut on_error: impl FnMut(DispatchError) + Send,
    ) -> Result<(), DispatchError> {
        self.recover().await?;
        loop {
            if *cancel.borrow_and_update() {
                break;
            }
            tokio::select! {
                res = self.run_once() => {
                    if let Err(e) = res {
                        on_error(e);
                    }
                }
                _ = cancel.changed() => break,
            }
            tokio::select! {
                _ = tokio::time::sleep(self.inner.opts.poll_interval) => {}
                _ = cancel.changed() => break,
            }
        }
        self.recover().await?;
        Ok(())
    }
}
