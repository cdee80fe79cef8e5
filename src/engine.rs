//! The poller (source → sweeps on an interval, with backoff) and the vocabulary of the one
//! event stream: [`EngineEvent`] out, [`Command`] in. `crate::runtime` wraps the poller with the
//! notification engine; the console and the headless runner consume the same stream. Nothing
//! here touches the terminal.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::notify::feed::{DeliveryReport, FiredMark, Inspection, NotifyRequest, OutboxSnapshot};
use crate::outbox::Crossing;
use crate::quota::poller::SweepOutcome;
use crate::quota::source::Source;
use crate::store::EventRow;

/// What the engine tells its consumers.
#[derive(Debug)]
pub enum EngineEvent {
    /// A sweep started (the header shows it in progress).
    SweepStarted { at_ms: i64 },
    /// A sweep finished, with its samples or the reason it failed.
    Sweep(Box<SweepOutcome>),
    /// The next sweep is delayed after a failure.
    Backoff { retry_in: Duration, attempt: u32 },
    /// The outbox changed (sent by the notifier, not the poller).
    Outbox(Box<OutboxSnapshot>),
    /// The highest threshold fired in the current period of every quota that has one: the
    /// complete set, replacing the previous one (a renewal removes a quota's mark).
    Fired(Vec<FiredMark>),
    /// The answer to `NotifyRequest::Inspect`.
    Inspected(Box<Inspection>),
    /// Events received on `[intake]` (Dashboard, Portal, Gateway monitor), oldest first. The
    /// first batch after start holds the most recent ones from the store; keys are masked.
    Received(Vec<EventRow>),
    /// Something the user should see (a test sent, a resend queued).
    Notice { text: String, error: bool },
    /// Thresholds the last sweep crossed that this instance recorded, with their outbox rows
    /// (on a shared store each crossing is reported by the one instance that recorded it).
    Crossed(Vec<Crossing>),
    /// Something failed outside the poller (delivery, routing, the store); the engine goes on.
    Problem { kind: Problem, message: String },
    /// The intake refused `count` requests since the last report (`total` since start).
    IntakeRejected { count: u64, total: u64 },
    /// Sends whose outcome is now in the store: delivered, retried, failed, dead.
    Delivered(Vec<DeliveryReport>),
    /// The answer to `NotifyRequest::Page`: older rows, newest first (empty at the end).
    OutboxPage(Vec<crate::notify::feed::NotificationItem>),
    /// `[store] retention` removed something.
    Purged(crate::store::Purged),
}

/// Which part of the runtime an [`EngineEvent::Problem`] comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// The dispatcher could not claim or record (e.g. the database is locked).
    Delivery,
    /// A received event could not be routed.
    Routing,
    /// The ledger or outbox could not be read or written.
    Store,
}

/// What consumers ask of the engine.
#[derive(Debug, Clone)]
pub enum Command {
    /// Sweep now instead of waiting for the interval.
    PollNow,
    /// Read this key now (the push path); the outcome is a `Sweep` that is not complete.
    PollKey(RawKey),
    /// For the notifier; the poller ignores it.
    Notify(NotifyRequest),
    /// A reloaded configuration (SIGHUP): thresholds, channels and routes change in place;
    /// the poller ignores it.
    Reload(Box<Reload>),
    Shutdown,
}

/// What a reload applies.
#[derive(Debug, Clone)]
pub struct Reload {
    pub config: crate::config::Config,
    /// E-mail as the dispatcher sends it under `config` (templates dir, mail dir).
    pub email: crate::notify::email::EmailSetup,
}

/// A raw API key on its way to the gateway; `Debug` masks it.
#[derive(Clone, PartialEq, Eq)]
pub struct RawKey(pub String);

impl std::fmt::Debug for RawKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RawKey({})", crate::quota::mask_key(&self.0))
    }
}

#[derive(Debug, Clone)]
pub struct PollSettings {
    pub interval: Duration,
    /// Longest wait between attempts while the gateway is failing.
    pub max_backoff: Duration,
}

impl Default for PollSettings {
    fn default() -> Self {
        PollSettings {
            interval: Duration::from_secs(2),
            max_backoff: Duration::from_secs(60),
        }
    }
}

pub struct EngineHandle {
    pub events: mpsc::Receiver<EngineEvent>,
    pub commands: mpsc::Sender<Command>,
    pub task: JoinHandle<()>,
}

/// Delay after `attempt` consecutive failures: the interval doubled each time, capped.
pub fn backoff(interval: Duration, attempt: u32, max: Duration) -> Duration {
    let factor = 1u32 << attempt.min(10);
    interval.saturating_mul(factor).min(max).max(interval)
}

/// Starts polling `source` every `settings.interval` until `Command::Shutdown` or the receiver
/// drops. Keys the source reports changed (Redis pub/sub) are re-read at once.
pub fn spawn_poller(
    mut source: Source,
    settings: PollSettings,
    clock: Arc<dyn Clock>,
) -> EngineHandle {
    let (ev_tx, ev_rx) = mpsc::channel(64);
    let (cmd_tx, mut cmd_rx) = mpsc::channel(16);
    let task = tokio::spawn(async move {
        let mut failures = 0u32;
        loop {
            if ev_tx
                .send(EngineEvent::SweepStarted {
                    at_ms: clock.now_ms(),
                })
                .await
                .is_err()
            {
                return;
            }
            let outcome = source.sweep(clock.as_ref()).await;
            let failed = outcome.error.is_some();
            if ev_tx
                .send(EngineEvent::Sweep(Box::new(outcome)))
                .await
                .is_err()
            {
                return;
            }
            let wait = if failed {
                failures += 1;
                let d = backoff(settings.interval, failures, settings.max_backoff);
                let _ = ev_tx
                    .send(EngineEvent::Backoff {
                        retry_in: d,
                        attempt: failures,
                    })
                    .await;
                d
            } else {
                failures = 0;
                settings.interval
            };
            let deadline = tokio::time::Instant::now() + wait;
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => break,
                    changed = source.changed() => {
                        let outcome = source.poll_suffixes(changed, clock.as_ref()).await;
                        if ev_tx.send(EngineEvent::Sweep(Box::new(outcome))).await.is_err() {
                            return;
                        }
                    }
                    cmd = cmd_rx.recv() => match cmd {
                        Some(Command::PollNow) => break,
                        Some(Command::PollKey(key)) => {
                            let outcome = source.poll_key(&key.0, clock.as_ref()).await;
                            if ev_tx.send(EngineEvent::Sweep(Box::new(outcome))).await.is_err() {
                                return;
                            }
                        }
                        Some(Command::Notify(_) | Command::Reload(_)) => {}
                        Some(Command::Shutdown) | None => return,
                    },
                }
            }
        }
    });
    EngineHandle {
        events: ev_rx,
        commands: cmd_tx,
        task,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let s = Duration::from_secs(2);
        let max = Duration::from_secs(60);
        assert_eq!(backoff(s, 1, max), Duration::from_secs(4));
        assert_eq!(backoff(s, 3, max), Duration::from_secs(16));
        assert_eq!(backoff(s, 30, max), max);
    }
}
