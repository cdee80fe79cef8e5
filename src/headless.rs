//! `tykwatch run`: the same engine without a terminal. Each sweep's samples go through the
//! monitor; crossings and their outbox rows are recorded durably; one JSON line per event goes
//! to stdout. The dispatcher delivers the outbox's webhooks meanwhile. SIGTERM / SIGINT stop
//! polling, return in-flight sends to the outbox, and exit 0.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::cli::{Setup, Target};
use crate::clock::Clock;
use crate::engine::{Command, EngineEvent, PollSettings, RawKey, spawn_poller};
use crate::intake::IntakeEvent;
use crate::notifier::{EventRouting, Notifier, next_intake, start_intake};
use crate::notify::dispatcher::{DispatchError, Dispatcher, DispatcherOptions};
use crate::notify::email::EmailSetup;
use crate::outbox::Crossing;
use crate::quota::poller::SweepOutcome;

/// Runs until SIGTERM or SIGINT.
pub async fn run(setup: &Setup, target: &Target, clock: Arc<dyn Clock>) -> Result<(), String> {
    let (config, data_dir, fresh) = setup.notification_setup(target);
    let mut notifier =
        Notifier::open_with(&data_dir, &config, clock.clone(), fresh).map_err(|e| e.to_string())?;
    let store = notifier.store();
    // Delivery runs beside the monitor, from the same outbox; rows left by a previous run
    // (pending, or in flight when it died) are sent first.
    let dispatcher = Dispatcher::new(
        store.clone(),
        clock.clone(),
        &config.monitor.configuration,
        &config.webhooks,
        EmailSetup::from_config(&config, &setup.paths.config_dir, &data_dir),
        DispatcherOptions::default(),
    )
    .map_err(|e| e.to_string())?;
    let waker = dispatcher.clone();
    let (stop_delivery, stop_rx) = watch::channel(false);
    let delivery = tokio::spawn(async move {
        let on_error =
            |e: DispatchError| emit(json!({"event": "delivery_error", "message": e.to_string()}));
        if let Err(e) = dispatcher.run(stop_rx, on_error).await {
            emit(json!({"event": "delivery_error", "message": e.to_string()}));
        }
    });
    let mut engine = spawn_poller(
        setup.source(target),
        PollSettings {
            interval: setup.config.gateway.poll_interval,
            max_backoff: Duration::from_secs(60),
        },
        clock.clone(),
    );
    let mut intake = start_intake(&config, &data_dir).await?;
    let (orgs, orgs_error) = setup.org_source(target);
    if let Some(e) = orgs_error {
        emit(json!({"event": "error", "message": format!("organisations: {e}")}));
    }
    let routing = EventRouting::new(&config, orgs, notifier.store(), waker.clone());
    {
        let r = routing.clone();
        tokio::spawn(async move {
            if let Err(e) = r.catch_up().await {
                emit(json!({"event": "error", "message": format!("routing events: {e}")}));
            }
        });
    }
    emit(json!({
        "event": "started",
        "gateway": target.label,
        "data_dir": data_dir,
        "intake": intake.as_ref().map(|i| i.addr.to_string()),
    }));
    // Every 30 s: route events the intake recorded but could not hand over (its queue was
    // full), and report requests it refused since the last report.
    let mut housekeeping = tokio::time::interval(Duration::from_secs(30));
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut rejected = 0;
    let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        tokio::select! {
            ev = engine.events.recv() => match ev {
                Some(EngineEvent::Sweep(outcome)) => {
                    emit(sweep_line(&outcome));
                    match notifier.observe(&outcome.samples).await {
                        Ok(crossings) => {
                            if !crossings.is_empty() {
                                waker.wake();
                            }
                            crossings.iter().for_each(|c| emit(crossing_line(c)));
                        }
                        Err(message) => emit(json!({"event": "error", "message": message})),
                    }
                }
                Some(EngineEvent::Backoff { retry_in, attempt }) => emit(json!({
                    "event": "gateway_retry", "retry_in_s": retry_in.as_secs_f64(), "attempt": attempt
                })),
                Some(_) => {}
                None => break,
            },
            Some(ev) = next_intake(&mut intake) => {
                // A gateway's own monitor saw this key cross a trigger limit: read it now.
                if let Some(key) = ev.raw_key() {
                    let _ = engine
                        .commands
                        .try_send(Command::PollKey(RawKey(key.expose().to_owned())));
                }
                emit(received_line(&ev));
                routing.route(ev, |e| {
                    emit(json!({"event": "error", "message": format!("routing event: {e}")}));
                });
            }
            _ = housekeeping.tick() => {
                let r = routing.clone();
                tokio::spawn(async move {
                    if let Err(e) = r.catch_up().await {
                        emit(json!({"event": "error", "message": format!("routing events: {e}")}));
                    }
                });
                if let Some(i) = &intake {
                    let now = i.stats.rejected();
                    if now > rejected {
                        emit(json!({"event": "intake_rejected", "count": now - rejected,
                                    "total": now}));
                        rejected = now;
                    }
                }
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    // Delivery first: in-flight sends are recorded or returned to the outbox (the next run
    // delivers them). The poller is told without waiting on its (possibly full) queue.
    let _ = stop_delivery.send(true);
    let _ = engine.commands.try_send(Command::Shutdown);
    drop(engine.events);
    let _ = tokio::time::timeout(Duration::from_secs(10), delivery).await;
    if let Some(i) = intake {
        let _ = i.shutdown.shutdown().await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), engine.task).await;
    emit(json!({"event": "stopped"}));
    Ok(())
}

fn signal(kind: tokio::signal::unix::SignalKind) -> Result<tokio::signal::unix::Signal, String> {
    tokio::signal::unix::signal(kind).map_err(|e| format!("cannot install a signal handler: {e}"))
}

fn sweep_line(o: &SweepOutcome) -> Value {
    json!({
        "event": "sweep",
        "at_ms": o.started_ms,
        "duration_ms": o.duration.as_millis() as u64,
        "quotas": o.samples.len(),
        "keys": o.keys,
        "orgs": o.orgs,
        "requests": o.requests,
        "complete": o.complete,
        "item_errors": o.item_errors.len(),
        "error": o.error.as_ref().map(|e| e.to_string()),
    })
}

/// The quota is named by its masked id: the log never carries a raw key.
pub fn crossing_line(c: &Crossing) -> Value {
    json!({
        "event": "threshold_crossed",
        "quota_id": c.meta.display_id(&c.quota_id),
        "quota_key": c.quota_key.as_ref(),
        "alias": c.meta.alias,
        "org_id": c.meta.org_id,
        "api_id": c.meta.api_id(),
        "threshold": c.threshold,
        "covered": c.covered,
        "usage_pct": c.usage_pct,
        "quota_max": c.quota_max,
        "quota_remaining": c.quota_remaining,
        "period": c.period,
        "sequence": c.sequence,
    })
}

/// A received event; its key is masked.
fn received_line(ev: &IntakeEvent) -> Value {
    json!({
        "event": "received",
        "id": ev.id,
        "kind": ev.kind().as_str(),
        "name": ev.event,
        "org_id": ev.org_id,
        "key": ev.masked_key,
        "summary": ev.summary,
    })
}

fn emit(v: Value) {
    let mut out = std::io::stdout().lock();
    // A closed stdout (piped to a finished reader) must not stop the engine.
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}
