//! `tykwatch run`: the one runtime (`crate::runtime`) without a terminal, its event stream
//! written as JSON lines on stdout: sweeps, thresholds crossed (recorded durably with their
//! outbox rows before the line is written), received events, gateway retries, problems. The
//! dispatcher delivers the outbox meanwhile. SIGTERM / SIGINT stop the runtime (in-flight sends
//! return to the outbox) and exit 0.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::{Setup, Target};
use crate::clock::Clock;
use crate::engine::{Command, EngineEvent, Problem};
use crate::notify::feed::DeliveryReport;
use crate::outbox::Crossing;
use crate::quota::poller::SweepOutcome;
use crate::runtime::{self, DELIVERY_GRACE};
use crate::store::EventRow;

/// Runs until SIGTERM or SIGINT.
pub async fn run(setup: &Setup, target: &Target, clock: Arc<dyn Clock>) -> Result<(), String> {
    let a = setup
        .runtime_parts(target, clock)
        .await
        .map_err(|e| e.to_string())?;
    if let Some(e) = &a.orgs_error {
        emit(json!({"event": "error", "message": format!("organisations: {e}")}));
    }
    let mut term = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut hup = signal(tokio::signal::unix::SignalKind::hangup())?;
    // What the engine runs with; a reload replaces it only when it was valid.
    let mut running = a.config.clone();
    emit(json!({
        "event": "started",
        "gateway": target.label,
        "data_dir": a.data_dir,
        "intake": a.intake_addr.map(|i| i.to_string()),
        "metrics": a.metrics_addr.map(|m| m.to_string()),
    }));
    tracing::info!(
        gateway = %target.label,
        data_dir = %a.data_dir.display(),
        intake = ?a.intake_addr,
        metrics = ?a.metrics_addr,
        config = %setup.paths.config_file.display(),
        "started"
    );
    if let Some(w) = crate::notify::plan::Channels::email_warning(&a.config) {
        tracing::warn!("{w}");
        emit(json!({"event": "warning", "message": w}));
    }
    let mut engine = runtime::spawn(a.parts, runtime::Options::headless());
    loop {
        tokio::select! {
            ev = engine.events.recv() => match ev {
                Some(ev) => {
                    log(&ev);
                    line(&ev).into_iter().for_each(emit);
                }
                None => break,
            },
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => match setup.reload(target, &a.data_dir, &running) {
                Ok((reload, restart)) => {
                    tracing::info!(restart_needed = ?restart, "configuration reloaded on SIGHUP");
                    running = reload.config.clone();
                    let _ = engine.commands.send(Command::Reload(Box::new(reload))).await;
                    emit(json!({
                        "event": "reload",
                        "config": setup.paths.config_file,
                        "restart_needed": restart,
                    }));
                }
                Err(message) => emit({
                    tracing::warn!(problems = ?message, "SIGHUP: configuration refused, the running one is kept");
                    json!({
                    "event": "reload_failed",
                    "message": format!("{message}\nthe running configuration is kept"),
                })}),
            },
        }
    }
    // The runtime stops delivery first, then the intake and the poller; its last events are
    // still written while it does.
    let _ = engine.commands.try_send(Command::Shutdown);
    let drain = async {
        while let Some(ev) = engine.events.recv().await {
            log(&ev);
            line(&ev).into_iter().for_each(emit);
        }
    };
    let _ = tokio::time::timeout(DELIVERY_GRACE + Duration::from_secs(5), drain).await;
    let _ = tokio::time::timeout(Duration::from_secs(1), engine.task).await;
    tracing::info!("stopped");
    emit(json!({"event": "stopped"}));
    Ok(())
}

/// The log of one event of the stream: what an operator reads on stderr or in the journal.
/// It names quotas by their masked ids, as the JSON lines do.
fn log(ev: &EngineEvent) {
    match ev {
        EngineEvent::Sweep(o) => match &o.error {
            Some(e) => tracing::warn!(error = ?e.to_string(), "sweep failed"),
            None => tracing::debug!(
                quotas = o.samples.len(),
                duration_ms = o.duration.as_millis() as u64,
                item_errors = o.item_errors.len(),
                complete = o.complete,
                "sweep"
            ),
        },
        EngineEvent::Crossed(cs) => {
            for c in cs {
                tracing::info!(
                    quota = %c.meta.display_id(&c.quota_id),
                    quota_id = %c.quota_key,
                    // Debug-quoted: names come from the gateway, and a newline in one must
                    // not start a forged log line.
                    alias = ?c.meta.alias,
                    org_id = ?c.meta.org_id,
                    threshold = c.threshold,
                    usage_pct = c.usage_pct,
                    "threshold crossed"
                );
            }
        }
        EngineEvent::Backoff { retry_in, attempt } => tracing::warn!(
            retry_in_s = retry_in.as_secs_f64(),
            attempt,
            "gateway unreachable, retrying"
        ),
        EngineEvent::Received(rows) => {
            for r in rows {
                tracing::info!(id = r.id, kind = %r.kind, name = ?r.event, org_id = ?r.org_id, key = ?r.masked_key, "event received");
            }
        }
        EngineEvent::Problem { kind, message } => match kind {
            Problem::Delivery => tracing::warn!(?message, "delivery"),
            Problem::Routing => tracing::error!(?message, "routing"),
            Problem::Store => tracing::error!(?message, "store"),
        },
        EngineEvent::IntakeRejected { count, total } => {
            tracing::warn!(count, total, "intake requests refused")
        }
        EngineEvent::Notice { text, error: true } => tracing::warn!("{text}"),
        EngineEvent::Notice { text, error: false } => tracing::info!("{text}"),
        EngineEvent::Purged(p) => tracing::info!(
            delivered = p.delivered,
            dead = p.dead,
            events = p.events,
            keys_scrubbed = p.scrubbed,
            ledger = p.ledger,
            "retention: old rows deleted"
        ),
        // The dispatcher logs each outcome as it classifies it.
        EngineEvent::Delivered(_)
        | EngineEvent::OutboxPage(_)
        | EngineEvent::SweepStarted { .. }
        | EngineEvent::Outbox(_)
        | EngineEvent::Fired(_)
        | EngineEvent::Inspected(_) => {}
    }
}

/// The JSON lines of one event of the stream (none for what only the console draws).
fn line(ev: &EngineEvent) -> Vec<Value> {
    match ev {
        EngineEvent::Sweep(outcome) => vec![sweep_line(outcome)],
        EngineEvent::Crossed(crossings) => crossings.iter().map(crossing_line).collect(),
        EngineEvent::Backoff { retry_in, attempt } => vec![json!({
            "event": "gateway_retry", "retry_in_s": retry_in.as_secs_f64(), "attempt": attempt
        })],
        EngineEvent::Received(rows) => rows.iter().map(received_line).collect(),
        EngineEvent::Problem { kind, message } => vec![json!({
            "event": match kind {
                Problem::Delivery => "delivery_error",
                Problem::Routing | Problem::Store => "error",
            },
            "message": message,
        })],
        EngineEvent::IntakeRejected { count, total } => {
            vec![json!({"event": "intake_rejected", "count": count, "total": total})]
        }
        EngineEvent::Notice { text, error } => vec![json!({
            "event": if *error { "error" } else { "notice" }, "message": text
        })],
        EngineEvent::Delivered(reports) => reports.iter().map(delivery_line).collect(),
        EngineEvent::Purged(p) => vec![json!({
            "event": "retention",
            "delivered": p.delivered,
            "dead": p.dead,
            "events": p.events,
            "keys_scrubbed": p.scrubbed,
            "ledger": p.ledger,
        })],
        EngineEvent::SweepStarted { .. }
        | EngineEvent::Outbox(_)
        | EngineEvent::OutboxPage(_)
        | EngineEvent::Fired(_)
        | EngineEvent::Inspected(_) => Vec::new(),
    }
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

/// The quota's `quota_id` is the ledger's id (unique, stable, never the raw key; the same in
/// `snapshot`, the outbox and the metrics' `key_id`); `quota` is its masked name for people.
pub fn crossing_line(c: &Crossing) -> Value {
    json!({
        "event": "threshold_crossed",
        "quota_id": c.quota_key.as_ref(),
        "quota": c.meta.display_id(&c.quota_id),
        "quota_key": c.quota_key.as_ref(),
        "alias": c.meta.alias,
        "org_id": c.meta.org_id,
        "api_id": c.meta.api_id(),
        "threshold": c.threshold,
        "covered": c.covered,
        "usage_pct": crate::quota::model::shown_pct(c.usage_pct),
        "quota_max": c.quota_max,
        "quota_remaining": c.quota_remaining,
        "period": c.period,
        "sequence": c.sequence,
    })
}

/// How one send ended, written once its outcome is in the store. `idempotency_key` is the
/// `webhook-id` / Message-ID the receiver saw; `quota_id` matches the `threshold_crossed` line
/// that queued it (`event_id` the `received` one).
pub fn delivery_line(r: &DeliveryReport) -> Value {
    json!({
        "event": "delivery",
        "outcome": r.outcome,
        "channel": r.channel.to_string(),
        "idempotency_key": r.idem_key,
        "attempt": r.attempt,
        "status": r.status,
        "next_attempt_at_ms": r.next_attempt_at,
        "next_attempt_in_s": r.next_attempt_at.map(|at| (at - r.at_ms).max(0) as f64 / 1000.0),
        "reason": r.reason,
        "quota_id": r.quota_id,
        "event_id": r.event_id,
        "recorded": r.recorded,
        "at_ms": r.at_ms,
    })
}

/// A received event; its key is masked.
fn received_line(ev: &EventRow) -> Value {
    json!({
        "event": "received",
        "id": ev.id,
        "kind": ev.kind,
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
