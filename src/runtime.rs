//! The one runtime the console and `tykwatch run` both consume. It owns the poller, the
//! notifier (monitor + ledger), the dispatcher, the intake, event routing and its catch-up,
//! the timers and the shutdown order; it emits one stream of [`EngineEvent`]s and takes one
//! stream of [`Command`]s. The console draws the stream; `tykwatch run` writes it as JSON lines
//! (`crate::headless`). One clock, injected, drives everything.
//!
//! Order of work per event:
//! - a sweep is evaluated and its crossings recorded (one transaction) before anyone sees the
//!   sweep, then the dispatcher is woken; the crossings follow as [`EngineEvent::Crossed`];
//! - a received event: a quota trigger re-polls its key at once (the push path), the event is
//!   routed in the background and forwarded as [`EngineEvent::Received`];
//! - every [`CATCH_UP_EVERY`], events recorded but never routed (a crash before the enqueue,
//!   or the intake's queue was full) are routed from the store, and refused intake requests
//!   are reported.
//!
//! Shutdown ([`Command::Shutdown`], or the consumer dropping the stream): delivery first — sends
//! in flight are recorded or go back to the outbox, within [`DELIVERY_GRACE`] — then the intake
//! and the poller.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::engine::{Command, EngineEvent, EngineHandle, Problem, RawKey};
use crate::intake::IntakeHandle;
use crate::metrics::Metrics;
use crate::notifier::{EngineError, EventRouting, Notifier, Resend, event_row, next_intake};
use crate::notify::dispatcher::{DispatchError, Dispatcher};
use crate::notify::feed::{DeliveryReport, FiredMark, Inspection, NotifyRequest, OutboxSnapshot};
use crate::store::Store;

/// How often the outbox snapshot is refreshed (it is only sent when it changed).
const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);
/// How often unrouted events are caught up and refused intake requests reported.
pub const CATCH_UP_EVERY: Duration = Duration::from_secs(30);
/// How long shutdown waits for delivery to record or return its sends.
pub const DELIVERY_GRACE: Duration = Duration::from_secs(10);
/// When retention first runs after start (not at once: start-up has enough to do).
const RETENTION_FIRST: Duration = Duration::from_secs(5);

/// How often `[store] retention` runs: a quarter of it, between a second and an hour.
fn retention_every(retention: Duration) -> Duration {
    (retention / 4).clamp(Duration::from_secs(1), Duration::from_secs(3600))
}

/// How long shutdown waits for the poller.
const POLLER_GRACE: Duration = Duration::from_secs(5);

/// What the runtime is made of; see `crate::cli::Setup::runtime_parts`.
pub struct Parts {
    pub poller: EngineHandle,
    pub notifier: Notifier,
    pub dispatcher: Dispatcher,
    pub intake: Option<IntakeHandle>,
    pub routing: EventRouting,
    /// `[metrics]`: sees every event on its way to the consumer.
    pub metrics: Option<Arc<Metrics>>,
}

/// What the consumer wants in the stream beyond sweeps, crossings, received events and
/// problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// First send the most recent received events from the store (the console's Events view
    /// starts with them).
    pub replay_recent_events: bool,
    /// Send outbox snapshots (≤ 1/s, when changed) and the fired marks after each sweep: what
    /// the console draws.
    pub outbox_views: bool,
}

impl Options {
    pub fn console() -> Options {
        Options {
            replay_recent_events: true,
            outbox_views: true,
        }
    }

    pub fn headless() -> Options {
        Options {
            replay_recent_events: false,
            outbox_views: false,
        }
    }
}

/// Starts the runtime; the handle's `events` is the one stream, `commands` the one input.
pub fn spawn(parts: Parts, options: Options) -> EngineHandle {
    let (ev_tx, ev_rx) = mpsc::channel(64);
    let ev_rx = match parts.metrics.clone() {
        Some(m) => tap(ev_rx, m),
        None => ev_rx,
    };
    let (cmd_tx, cmd_rx) = mpsc::channel(16);
    let task = tokio::spawn(run(parts, options, ev_tx, cmd_rx));
    EngineHandle {
        events: ev_rx,
        commands: cmd_tx,
        task,
    }
}

/// Passes the stream through `metrics` on its way to the consumer; ends when either side does.
fn tap(mut rx: mpsc::Receiver<EngineEvent>, metrics: Arc<Metrics>) -> mpsc::Receiver<EngineEvent> {
    let (tx, out) = mpsc::channel(64);
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            metrics.observe(&ev);
            if tx.send(ev).await.is_err() {
                break;
            }
        }
    });
    out
}

fn problem(kind: Problem, message: String) -> EngineEvent {
    EngineEvent::Problem { kind, message }
}

/// A notifier or routing failure as the stream reports it: the data dir's, or routing's (its
/// writer stopped), with `what` was being done.
fn engine_problem(what: &str, e: &EngineError) -> EngineEvent {
    let kind = match e {
        EngineError::Store(_) | EngineError::Task(_) => Problem::Store,
        EngineError::Stopped => Problem::Routing,
    };
    problem(kind, format!("{what}: {e}"))
}

/// Routes the store's unrouted events in the background; failures go to the stream.
fn catch_up(routing: &EventRouting, tx: &mpsc::Sender<EngineEvent>) {
    let (r, tx) = (routing.clone(), tx.clone());
    tokio::spawn(async move {
        if let Err(e) = r.catch_up().await {
            let _ = tx.send(engine_problem("routing events", &e)).await;
        }
    });
}

async fn run(
    parts: Parts,
    options: Options,
    ev_tx: mpsc::Sender<EngineEvent>,
    mut cmd_rx: mpsc::Receiver<Command>,
) {
    let Parts {
        mut poller,
        mut notifier,
        dispatcher,
        mut intake,
        routing,
        metrics: _,
    } = parts;
    let (stop_delivery, stop_rx) = watch::channel(false);
    let mut reports = dispatcher.subscribe();
    let delivery = {
        let d = dispatcher.clone();
        let tx = ev_tx.clone();
        tokio::spawn(async move {
            let report = |e: DispatchError| {
                let _ = tx.try_send(problem(Problem::Delivery, e.to_string()));
            };
            if let Err(e) = d.run(stop_rx, report).await {
                let _ = tx.try_send(problem(Problem::Delivery, format!("stopped: {e}")));
            }
        })
    };
    catch_up(&routing, &ev_tx);
    if options.replay_recent_events {
        match notifier.recent_events().await {
            Ok(rows) if !rows.is_empty() => {
                let _ = ev_tx.send(EngineEvent::Received(rows)).await;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = ev_tx
                    .send(engine_problem("reading received events", &e))
                    .await;
            }
        }
    }
    let mut refresh = tokio::time::interval(SNAPSHOT_EVERY);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut housekeeping = tokio::time::interval(CATCH_UP_EVERY);
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    housekeeping.reset(); // the first catch-up ran above
    // Retention runs soon after start, then every quarter of the retention (at most hourly).
    let mut retention = tokio::time::interval_at(
        tokio::time::Instant::now() + RETENTION_FIRST,
        retention_every(notifier.retention()),
    );
    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut last: Option<OutboxSnapshot> = None;
    let mut last_marks: Option<Vec<FiredMark>> = None;
    let mut rejected = 0;
    loop {
        tokio::select! {
            Some(ev) = next_intake(&mut intake) => {
                // A gateway's own monitor saw this key cross a trigger limit: read it now.
                if let Some(key) = ev.raw_key() {
                    let _ = poller.commands.try_send(Command::PollKey(RawKey(key.expose().to_owned())));
                }
                let row = event_row(&ev);
                let tx = ev_tx.clone();
                routing.route(ev, move |e| {
                    let _ = tx.try_send(engine_problem("routing event", &e));
                });
                if ev_tx.send(EngineEvent::Received(vec![row])).await.is_err() {
                    break;
                }
            }
            ev = poller.events.recv() => {
                let Some(ev) = ev else { break };
                let mut crossed = Vec::new();
                if let EngineEvent::Sweep(outcome) = &ev {
                    match notifier.observe(&outcome.samples).await {
                        Ok(c) => crossed = c,
                        Err(message) => {
                            let _ = ev_tx.send(problem(Problem::Store, message)).await;
                        }
                    }
                    if !crossed.is_empty() {
                        dispatcher.wake();
                    }
                }
                let sweep = matches!(ev, EngineEvent::Sweep(_));
                if ev_tx.send(ev).await.is_err() {
                    break;
                }
                if !crossed.is_empty() && ev_tx.send(EngineEvent::Crossed(crossed)).await.is_err() {
                    break;
                }
                if sweep && options.outbox_views {
                    let marks = notifier.fired_marks();
                    if last_marks.as_ref() != Some(&marks) {
                        last_marks = Some(marks.clone());
                        if ev_tx.send(EngineEvent::Fired(marks)).await.is_err() {
                            break;
                        }
                    }
                    send_snapshot(&notifier, &ev_tx, &mut last).await;
                }
            }
            cmd = cmd_rx.recv() => match cmd {
                Some(Command::Notify(req)) => {
                    handle(req, &notifier, &dispatcher, &ev_tx).await;
                    if options.outbox_views {
                        send_snapshot(&notifier, &ev_tx, &mut last).await;
                    }
                }
                Some(Command::Reload(r)) => {
                    notifier.reconfigure(&r.config);
                    retention = tokio::time::interval(retention_every(notifier.retention()));
                    retention.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    let c = &r.config;
                    dispatcher.reconfigure(&c.monitor.configuration, &c.webhooks, r.email);
                    routing.reconfigure(c);
                    let text = format!(
                        "configuration reloaded: {} channels, global thresholds {:?}, {} routes",
                        crate::notify::plan::Channels::from_config(c).ids().len(),
                        notifier.global_thresholds(),
                        c.routes.len()
                    );
                    let _ = ev_tx.send(EngineEvent::Notice { text, error: false }).await;
                }
                Some(c @ (Command::PollNow | Command::PollKey(_))) => {
                    let _ = poller.commands.try_send(c);
                }
                Some(Command::Shutdown) | None => break,
            },
            Some(batch) = next_reports(&mut reports) => {
                if ev_tx.send(EngineEvent::Delivered(batch)).await.is_err() {
                    break;
                }
            }
            _ = retention.tick() => match notifier.apply_retention().await {
                Ok(Some(purged)) if !purged.is_empty() => {
                    let _ = ev_tx.send(EngineEvent::Purged(purged)).await;
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = ev_tx.send(engine_problem("applying [store] retention", &e)).await;
                }
            },
            _ = refresh.tick(), if options.outbox_views => {
                send_snapshot(&notifier, &ev_tx, &mut last).await;
            }
            _ = housekeeping.tick() => {
                catch_up(&routing, &ev_tx);
                if let Some(i) = &intake {
                    let total = i.stats.rejected();
                    if total > rejected {
                        let _ = ev_tx
                            .send(EngineEvent::IntakeRejected { count: total - rejected, total })
                            .await;
                        rejected = total;
                    }
                }
            }
        }
    }
    // Delivery first: in-flight sends must be recorded or go back to the outbox before the
    // process ends. The poller is told without waiting on its (possibly full) queue.
    let _ = stop_delivery.send(true);
    let _ = poller.commands.try_send(Command::Shutdown);
    drop(poller.events);
    let _ = tokio::time::timeout(DELIVERY_GRACE, delivery).await;
    // What the last sends recorded on the way out.
    if let Some(rx) = reports.as_mut() {
        while let Ok(batch) = rx.try_recv() {
            let _ = ev_tx.send(EngineEvent::Delivered(batch)).await;
        }
    }
    if let Some(i) = intake {
        let _ = i.shutdown.shutdown().await;
    }
    let _ = tokio::time::timeout(POLLER_GRACE, poller.task).await;
}

/// The next batch of delivery outcomes; pending for ever without a subscription.
async fn next_reports(
    rx: &mut Option<mpsc::Receiver<Vec<DeliveryReport>>>,
) -> Option<Vec<DeliveryReport>> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn send_snapshot(
    notifier: &Notifier,
    tx: &mpsc::Sender<EngineEvent>,
    last: &mut Option<OutboxSnapshot>,
) {
    match notifier.snapshot().await {
        Ok(mut snap) => {
            // `at_ms` alone changing is not news.
            if let Some(prev) = last.as_ref() {
                snap.at_ms = prev.at_ms.max(snap.at_ms);
                let mut same = snap.clone();
                same.at_ms = prev.at_ms;
                if &same == prev {
                    return;
                }
            }
            *last = Some(snap.clone());
            let _ = tx.send(EngineEvent::Outbox(Box::new(snap))).await;
        }
        Err(e) => {
            let _ = tx.send(engine_problem("reading the outbox", &e)).await;
        }
    }
}

async fn handle(
    req: NotifyRequest,
    notifier: &Notifier,
    dispatcher: &Dispatcher,
    tx: &mpsc::Sender<EngineEvent>,
) {
    let event = match req {
        NotifyRequest::Resend(key) => match notifier.resend(key).await {
            Ok(Resend::Queued) => {
                dispatcher.wake();
                notice("resend queued", false)
            }
            Ok(Resend::NotResendable(state)) => notice(
                &format!("only a failed or dead notification can be resent (this one is {state})"),
                true,
            ),
            Ok(Resend::NotFound) => notice("no such notification (purged?)", true),
            Err(e) => notice(&format!("resend: {e}"), true),
        },
        NotifyRequest::Test(channel) => {
            // A test waits on the network: answer from a task so the relay keeps going.
            let d = dispatcher.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let ev = match d.send_test(&channel).await {
                    Ok(text) => notice(&format!("test to {channel}: {text}"), false),
                    Err(e) => notice(&format!("test to {channel} failed: {e}"), true),
                };
                let _ = tx.send(ev).await;
            });
            return;
        }
        NotifyRequest::Page { sequence, idem_key } => {
            page(notifier.store(), sequence, idem_key, tx).await;
            return;
        }
        NotifyRequest::Inspect(key) => {
            // Building an event e-mail may read an org from a slow Dashboard: off the relay.
            let (store, d, tx) = (notifier.store(), dispatcher.clone(), tx.clone());
            tokio::spawn(async move {
                let _ = tx.send(inspect(key, store, &d).await).await;
            });
            return;
        }
    };
    let _ = tx.send(event).await;
}

/// Answers a `NotifyRequest::Page` from `store`.
async fn page(
    store: Arc<Mutex<Store>>,
    sequence: i64,
    idem_key: String,
    tx: &mpsc::Sender<EngineEvent>,
) {
    let read = tokio::task::spawn_blocking(move || {
        crate::notifier::read_page(&lock(&store), sequence, idem_key)
    })
    .await;
    let ev = match read {
        Ok(Ok(items)) => EngineEvent::OutboxPage(items),
        Ok(Err(e)) => engine_problem("reading the outbox", &e),
        Err(e) => problem(Problem::Store, format!("reading the outbox: {e}")),
    };
    let _ = tx.send(ev).await;
}

/// The request or e-mail of one notification, for the detail pane: as it was last sent (stored
/// at send time), or for a row never sent, as it would be sent now.
async fn inspect(key: String, store: Arc<Mutex<Store>>, dispatcher: &Dispatcher) -> EngineEvent {
    let k = key.clone();
    let read = tokio::task::spawn_blocking(move || {
        let s = lock(&store);
        Ok::<_, crate::store::StoreError>((s.get(&k)?, s.sent_request(&k)?))
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.to_string()));
    let (summary, text) = match read {
        Ok((Some(row), Some((at, stored)))) => {
            let (summary, text) = stored.split_once('\n').unwrap_or(("", stored.as_str()));
            (
                format!(
                    "{summary} · as sent {} (attempt {}, now {})",
                    crate::timefmt::rfc3339(at.div_euclid(1000)),
                    row.attempts,
                    row.state
                ),
                Ok(text.to_owned()),
            )
        }
        Ok((Some(row), None)) => match dispatcher.inspect(&row).await {
            Ok((summary, text)) => (
                format!("{summary} · not sent yet: as it would be sent now"),
                Ok(text),
            ),
            Err(e) => (row.channel_id.to_string(), Err(e)),
        },
        Ok((None, _)) => (String::new(), Err("no such notification".to_owned())),
        Err(e) => (String::new(), Err(e)),
    };
    EngineEvent::Inspected(Box::new(Inspection {
        idem_key: key,
        summary,
        text,
    }))
}

fn notice(text: &str, error: bool) -> EngineEvent {
    EngineEvent::Notice {
        text: text.to_owned(),
        error,
    }
}

/// What a watching console reads of the store another process notifies from.
pub struct StoreView {
    pub store: Store,
    /// The configured channels (the snapshot lists them).
    pub channels: Vec<crate::outbox::ChannelId>,
    /// `[store] lease` on a shared store (the snapshot shows the instances).
    pub lease: Option<Duration>,
    pub clock: Arc<dyn crate::clock::Clock>,
}

/// The console's engine when another tykwatch owns the data dir: the poller's events, a
/// notice saying why nothing is notified, and the poller's commands (notification requests are
/// answered with the same notice). With `view`, the Notifications and Events views are read
/// from that process's store, read-only, every [`SNAPSHOT_EVERY`].
pub fn spawn_watch_only(
    mut poller: EngineHandle,
    why: String,
    view: Option<StoreView>,
) -> EngineHandle {
    let (ev_tx, ev_rx) = mpsc::channel(64);
    let (cmd_tx, mut cmd_rx) = mpsc::channel::<Command>(16);
    let task = tokio::spawn(async move {
        if ev_tx.send(notice(&why, false)).await.is_err() {
            return;
        }
        let mut reader = view.map(StoreReader::new);
        let mut refresh = tokio::time::interval(SNAPSHOT_EVERY);
        refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                ev = poller.events.recv() => match ev {
                    Some(ev) => if ev_tx.send(ev).await.is_err() { break },
                    None => break,
                },
                cmd = cmd_rx.recv() => match cmd {
                    Some(Command::Notify(NotifyRequest::Page { sequence, idem_key }))
                        if reader.is_some() =>
                    {
                        if let Some(r) = &reader {
                            page(r.store.clone(), sequence, idem_key, &ev_tx).await;
                        }
                    }
                    Some(Command::Notify(_)) => {
                        let _ = ev_tx.send(notice(&why, true)).await;
                    }
                    // Only `tykwatch run` reloads; this engine notifies nothing anyway.
                    Some(Command::Reload(_)) => {}
                    Some(c @ (Command::PollNow | Command::PollKey(_))) => {
                        let _ = poller.commands.try_send(c);
                    }
                    Some(Command::Shutdown) | None => break,
                },
                _ = refresh.tick(), if reader.is_some() => {
                    if let Some(r) = reader.as_mut() {
                        for ev in r.read().await {
                            if ev_tx.send(ev).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            }
        }
        let _ = poller.commands.try_send(Command::Shutdown);
        let _ = tokio::time::timeout(Duration::from_secs(1), poller.task).await;
    });
    EngineHandle {
        events: ev_rx,
        commands: cmd_tx,
        task,
    }
}

/// Reads another process's outbox and events for a watching console: a snapshot when it
/// changed, and events newer than those already sent.
struct StoreReader {
    store: Arc<Mutex<Store>>,
    channels: Vec<crate::outbox::ChannelId>,
    lease: Option<Duration>,
    clock: Arc<dyn crate::clock::Clock>,
    last: Option<OutboxSnapshot>,
    last_event: i64,
}

impl StoreReader {
    fn new(v: StoreView) -> StoreReader {
        StoreReader {
            store: Arc::new(Mutex::new(v.store)),
            channels: v.channels,
            lease: v.lease,
            clock: v.clock,
            last: None,
            last_event: 0,
        }
    }

    async fn read(&mut self) -> Vec<EngineEvent> {
        let (store, channels) = (self.store.clone(), self.channels.clone());
        let (at_ms, lease, after) = (self.clock.now_ms(), self.lease, self.last_event);
        let read = tokio::task::spawn_blocking(move || {
            let s = lock(&store);
            let snap = crate::notifier::read_snapshot(&s, channels, at_ms, lease)?;
            let mut events = s.list_events(crate::notify::feed::SNAPSHOT_ROWS)?;
            events.retain(|e| e.id > after);
            events.reverse();
            Ok::<_, crate::notifier::EngineError>((snap, events))
        })
        .await;
        let mut out = Vec::new();
        match read {
            Ok(Ok((snap, events))) => {
                if let Some(e) = events.last() {
                    self.last_event = e.id;
                }
                // The first read sends the most recent, as the notifier's replay does.
                if !events.is_empty() {
                    // Stored masked by the intake, as the notifier's own replay sends them.
                    out.push(EngineEvent::Received(events));
                }
                let mut same = snap.clone();
                if let Some(prev) = &self.last {
                    same.at_ms = prev.at_ms;
                }
                if self.last.as_ref() != Some(&same) {
                    self.last = Some(snap.clone());
                    out.push(EngineEvent::Outbox(Box::new(snap)));
                }
            }
            Ok(Err(e)) => out.push(engine_problem("reading the store", &e)),
            Err(e) => out.push(problem(Problem::Store, format!("reading the store: {e}"))),
        }
        out
    }
}

fn lock(m: &Mutex<Store>) -> std::sync::MutexGuard<'_, Store> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
