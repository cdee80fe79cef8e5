//! `/metrics`, `/healthz` and `/readyz` for `tykwatch run` and the console (`[metrics]`).
//!
//! The runtime passes every [`EngineEvent`] through [`Metrics::observe`] on its way to the
//! consumer (sweeps, crossings, problems); what other parts count — delivery attempts
//! (`crate::stats::DeliveryStats`), the intake's refusals, the outbox's depth — is read at
//! scrape time. Nothing here holds a raw key: quotas are labelled as [`quotas`] says.

mod quotas;
mod server;
pub mod text;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

pub use quotas::{QuotaTable, SERIES_PER_QUOTA};
pub use server::{MetricsServer, serve};
use text::{Exposition, Kind, Value};

use crate::clock::{Clock, UnixMs};
use crate::engine::{EngineEvent, Problem};
use crate::intake::IntakeStats;
use crate::notify::dispatcher::Dispatcher;
use crate::outbox::OutboxState;
use crate::stats::Histogram;
use crate::store::Store;

/// Upper bounds of the sweep duration histogram (s): a REST sweep of a few keys takes
/// milliseconds, a Redis sweep of a million about two seconds.
const SWEEP_SECONDS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// What `[metrics]` configures, plus what readiness needs from elsewhere.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSettings {
    /// Most per-quota samples a scrape holds; past it the quotas nearest exhaustion are kept
    /// and the rest counted in `tykwatch_metrics_dropped_series_total`.
    pub max_series: usize,
    /// `/readyz` fails when the last successful sweep is older than this.
    pub stale_after: Duration,
    /// The consumption rate is measured over this window.
    pub rate_window: Duration,
}

/// Where the scrape reads what the engine's parts counted; set once the runtime is built.
struct Sources {
    dispatcher: Dispatcher,
    intake: Option<Arc<IntakeStats>>,
    /// A connection of its own (WAL: reads never wait on the notifier's writes).
    store: Mutex<Store>,
    /// `[store] lease` on a shared store (the instances running on it are shown), else `None`.
    lease: Option<Duration>,
}

#[derive(Debug)]
struct State {
    quotas: QuotaTable,
    sweep_seconds: Histogram,
    /// Sweep errors by kind (whole-source failures and per-item errors).
    sweep_errors: BTreeMap<&'static str, u64>,
    last_success_ms: Option<UnixMs>,
    /// Why the last sweep failed, while it is the last one.
    last_error: Option<String>,
    /// `(org_id, threshold)` → crossings.
    crossings: BTreeMap<(Arc<str>, String), u64>,
    problems: BTreeMap<&'static str, u64>,
    dropped_series: u64,
}

pub struct Metrics {
    settings: MetricsSettings,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    sources: OnceLock<Sources>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The answer of `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    /// What is wrong, one reason per line.
    NotReady(Vec<String>),
}

impl Metrics {
    pub fn new(settings: MetricsSettings, clock: Arc<dyn Clock>) -> Arc<Metrics> {
        let window = i64::try_from(settings.rate_window.as_millis()).unwrap_or(i64::MAX);
        Arc::new(Metrics {
            state: Mutex::new(State {
                quotas: QuotaTable::new(window),
                sweep_seconds: Histogram::new(SWEEP_SECONDS),
                sweep_errors: BTreeMap::new(),
                last_success_ms: None,
                last_error: None,
                crossings: BTreeMap::new(),
                problems: BTreeMap::new(),
                dropped_series: 0,
            }),
            settings,
            clock,
            sources: OnceLock::new(),
        })
    }

    /// The parts a scrape reads; call once, when the runtime is built. The store connection
    /// is opened here, so a data dir that cannot be read fails now rather than per scrape.
    pub fn attach(
        &self,
        dispatcher: Dispatcher,
        intake: Option<Arc<IntakeStats>>,
        config: &crate::config::StoreConfig,
        data_dir: &Path,
    ) -> Result<(), String> {
        let store =
            Store::open_configured(config, data_dir).map_err(|e| format!("[metrics]: {e}"))?;
        let lease = store.is_shared().then_some(config.lease);
        let _ = self.sources.set(Sources {
            dispatcher,
            intake,
            store: Mutex::new(store),
            lease,
        });
        Ok(())
    }

    /// One event of the runtime's stream, on its way to the consumer.
    pub fn observe(&self, ev: &EngineEvent) {
        let mut s = lock(&self.state);
        match ev {
            EngineEvent::Sweep(o) => {
                s.quotas.ingest(&o.samples, o.complete);
                s.sweep_seconds.observe(o.duration.as_secs_f64());
                for e in o.error.iter().chain(&o.item_errors) {
                    *s.sweep_errors.entry(e.kind()).or_insert(0) += 1;
                }
                match &o.error {
                    Some(e) => s.last_error = Some(e.to_string()),
                    None => {
                        let ms = i64::try_from(o.duration.as_millis()).unwrap_or(0);
                        s.last_success_ms = Some(o.started_ms.saturating_add(ms));
                        s.last_error = None;
                    }
                }
            }
            EngineEvent::Crossed(cs) => {
                for c in cs {
                    let key = (c.meta.org_id.clone(), fmt_threshold(c.threshold));
                    *s.crossings.entry(key).or_insert(0) += 1;
                }
            }
            EngineEvent::Problem { kind, .. } => {
                let part = match kind {
                    Problem::Delivery => "delivery",
                    Problem::Routing => "routing",
                    Problem::Store => "store",
                };
                *s.problems.entry(part).or_insert(0) += 1;
            }
            _ => {}
        }
    }

    /// Quotas held for the next scrape.
    pub fn quotas(&self) -> usize {
        lock(&self.state).quotas.len()
    }

    /// The whole exposition in one buffer (see [`Metrics::render_chunks`]).
    pub fn render(&self) -> Vec<u8> {
        self.render_chunks().into_bytes()
    }

    /// The whole exposition, in the chunks it was written in. Blocking (reads the store, and
    /// a large scrape is written on several threads): call off the async threads.
    pub fn render_chunks(&self) -> Exposition {
        let now = self.clock.now_ms();
        let mut s = lock(&self.state);
        let mut head = Exposition::with_capacity(256);
        head.family(
            "tykwatch_build_info",
            Kind::Gauge,
            "The running tykwatch's version (always 1).",
        );
        head.sample(
            "tykwatch_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))],
            Value::Int(1),
        );
        let (quotas, dropped) = s.quotas.snapshot(now, self.settings.max_series);
        s.dropped_series += dropped as u64;
        let mut out = Exposition::with_capacity(16 * 1024);
        counter(
            &mut out,
            "tykwatch_metrics_dropped_series_total",
            "Per-quota series left out of scrapes by [metrics] max_series.",
            s.dropped_series,
        );
        gauge(
            &mut out,
            "tykwatch_quotas_watched",
            "Limited quotas read in the last sweeps.",
            Value::Uint(s.quotas.len() as u64),
        );
        sweeps(&mut out, &s);
        out.family(
            "tykwatch_thresholds_crossed_total",
            Kind::Counter,
            "Quota thresholds crossed (one per quota, period and threshold).",
        );
        for ((org, threshold), n) in &s.crossings {
            out.sample(
                "tykwatch_thresholds_crossed_total",
                &[("org_id", org), ("threshold", threshold)],
                Value::Uint(*n),
            );
        }
        out.family(
            "tykwatch_problems_total",
            Kind::Counter,
            "Failures outside the sweep (delivery, routing, the store); the engine went on.",
        );
        for (part, n) in &s.problems {
            out.sample(
                "tykwatch_problems_total",
                &[("part", part)],
                Value::Uint(*n),
            );
        }
        drop(s);
        // Written once the lock is released: sweeps go on while a large scrape is written.
        head.append(quotas.write());
        if let Some(src) = self.sources.get() {
            instances(&mut head, src, now);
            delivery(&mut out, src);
            outbox(&mut out, src);
            if let Some(i) = &src.intake {
                intake(&mut out, i);
            }
        }
        head.append(out);
        head
    }

    /// `/readyz`: the last sweep succeeded and is recent, the store takes a write, the
    /// dispatcher runs. Blocking (the store check): call off the async threads.
    pub fn readiness(&self) -> Readiness {
        let now = self.clock.now_ms();
        let mut why = Vec::new();
        {
            let s = lock(&self.state);
            let stale = i64::try_from(self.settings.stale_after.as_millis()).unwrap_or(i64::MAX);
            match (&s.last_error, s.last_success_ms) {
                (Some(e), _) => why.push(format!("the last sweep failed: {e}")),
                (None, None) => why.push("no sweep has finished yet".to_owned()),
                (None, Some(at)) if now.saturating_sub(at) > stale => why.push(format!(
                    "no successful sweep for {} s (more than {} s)",
                    now.saturating_sub(at) / 1000,
                    stale / 1000
                )),
                _ => {}
            }
        }
        match self.sources.get() {
            None => why.push("the engine is still starting".to_owned()),
            Some(src) => {
                if !src.dispatcher.is_running() {
                    why.push("the dispatcher is not running".to_owned());
                }
                if let Err(e) = lock(&src.store).check_writable() {
                    why.push(format!("the store is not writable: {e}"));
                }
            }
        }
        if why.is_empty() {
            Readiness::Ready
        } else {
            Readiness::NotReady(why)
        }
    }
}

/// `80`, `95`, `99.5`: thresholds as operators write them.
fn fmt_threshold(t: f64) -> String {
    if t.fract() == 0.0 && t.abs() < 1e15 {
        format!("{}", t as i64)
    } else {
        format!("{t}")
    }
}

fn counter(out: &mut Exposition, name: &str, help: &str, v: u64) {
    out.family(name, Kind::Counter, help);
    out.sample(name, &[], Value::Uint(v));
}

fn gauge(out: &mut Exposition, name: &str, help: &str, v: Value) {
    out.family(name, Kind::Gauge, help);
    out.sample(name, &[], v);
}

fn histogram(out: &mut Exposition, name: &str, help: &str, labels: &[(&str, &str)], h: &Histogram) {
    out.family(name, Kind::Histogram, help);
    histogram_samples(out, name, labels, h);
}

fn histogram_samples(out: &mut Exposition, name: &str, labels: &[(&str, &str)], h: &Histogram) {
    let bucket = format!("{name}_bucket");
    let ls: Vec<(&str, &str)> = labels.to_vec();
    for (le, n) in h.cumulative() {
        let le = if le.is_infinite() {
            "+Inf".to_owned()
        } else {
            format!("{le}")
        };
        let mut with_le = ls.clone();
        with_le.push(("le", &le));
        out.sample(&bucket, &with_le, Value::Uint(n));
    }
    out.sample(&format!("{name}_sum"), labels, Value::Float(h.sum()));
    out.sample(&format!("{name}_count"), labels, Value::Uint(h.count()));
}

fn sweeps(out: &mut Exposition, s: &State) {
    histogram(
        out,
        "tykwatch_sweep_duration_seconds",
        "How long reading every quota took.",
        &[],
        &s.sweep_seconds,
    );
    out.family(
        "tykwatch_sweep_errors_total",
        Kind::Counter,
        "Sweep errors by kind (the whole source, or one key or org).",
    );
    for (kind, n) in &s.sweep_errors {
        out.sample(
            "tykwatch_sweep_errors_total",
            &[("kind", kind)],
            Value::Uint(*n),
        );
    }
    out.family(
        "tykwatch_last_successful_sweep_timestamp_seconds",
        Kind::Gauge,
        "When the last successful sweep finished (Unix time; absent before the first).",
    );
    if let Some(ms) = s.last_success_ms {
        out.sample(
            "tykwatch_last_successful_sweep_timestamp_seconds",
            &[],
            Value::Float(ms as f64 / 1000.0),
        );
    }
}

/// This instance (its id and settings hash; Prometheus's own `instance` label is the scrape
/// target, so the id is a label of this one series rather than of every series) and how many
/// instances run on its store, with how many different settings.
fn instances(out: &mut Exposition, src: &Sources, now: UnixMs) {
    let me = src.dispatcher.instance();
    let engine = if src.lease.is_some() {
        "postgres"
    } else {
        "sqlite"
    };
    out.family(
        "tykwatch_instance_info",
        Kind::Gauge,
        "This tykwatch instance: its id in the store's heartbeat and its settings hash (always 1).",
    );
    out.sample(
        "tykwatch_instance_info",
        &[
            ("instance_id", &me.id),
            ("config_hash", &me.config_hash),
            ("store", engine),
        ],
        Value::Int(1),
    );
    // SQLite: this instance alone (the data dir's lock). The scrape still answers when a
    // shared store does not; readiness says what is wrong.
    let peers = match src.lease {
        None => crate::store::Peers {
            live: vec![me.clone()],
        },
        Some(lease) => match crate::store::Peers::read(&lock(&src.store), now, lease) {
            Ok(p) => p,
            Err(_) => return,
        },
    };
    gauge(
        out,
        "tykwatch_store_instances",
        "Instances running on this store (a shared one: heard from within two leases), this one among them.",
        Value::Uint(peers.live.len() as u64),
    );
    gauge(
        out,
        "tykwatch_store_settings_variants",
        "Different settings hashes among those instances: above 1 they notify different thresholds or channels.",
        Value::Uint(peers.settings_variants() as u64),
    );
}

fn delivery(out: &mut Exposition, src: &Sources) {
    let d = src.dispatcher.stats().snapshot();
    out.family(
        "tykwatch_deliveries_total",
        Kind::Counter,
        "Delivery attempts by channel and outcome (delivered, retry, failed, dead, disabled).",
    );
    for ((channel, outcome), n) in &d.outcomes {
        out.sample(
            "tykwatch_deliveries_total",
            &[("channel", channel), ("outcome", outcome)],
            Value::Uint(*n),
        );
    }
    let name = "tykwatch_delivery_attempt_duration_seconds";
    out.family(
        name,
        Kind::Histogram,
        "How long one delivery attempt took, by channel kind.",
    );
    for (kind, h) in &d.latency {
        histogram_samples(out, name, &[("kind", kind)], h);
    }
}

fn outbox(out: &mut Exposition, src: &Sources) {
    let name = "tykwatch_outbox_rows";
    out.family(
        name,
        Kind::Gauge,
        "Outbox rows by channel and state (pending, inflight, delivered, failed, dead); on a shared store, every instance reports the whole store.",
    );
    let counts = lock(&src.store).counts_by_channel();
    let rows = match counts {
        Ok(rows) => rows,
        // The scrape still answers; readiness says what is wrong with the store.
        Err(_) => return,
    };
    let mut dead = 0;
    for (channel, state, n) in &rows {
        if *state == OutboxState::Dead {
            dead += n;
        }
        out.sample(
            name,
            &[("channel", channel), ("state", state.as_str())],
            Value::Uint(*n),
        );
    }
    gauge(
        out,
        "tykwatch_outbox_dead_rows",
        "Notifications given up on after every retry (resend them with `tykwatch outbox` or the console).",
        Value::Uint(dead),
    );
}

fn intake(out: &mut Exposition, i: &IntakeStats) {
    counter(
        out,
        "tykwatch_intake_events_received_total",
        "Events [intake] recorded.",
        i.accepted(),
    );
    out.family(
        "tykwatch_intake_refused_total",
        Kind::Counter,
        "Requests [intake] refused, by reason.",
    );
    for (reason, n) in i.refused() {
        out.sample(
            "tykwatch_intake_refused_total",
            &[("reason", reason)],
            Value::Uint(n),
        );
    }
    use std::sync::atomic::Ordering::Relaxed;
    gauge(
        out,
        "tykwatch_intake_connections",
        "Connections [intake] has open.",
        Value::Uint(i.connections.open.load(Relaxed)),
    );
    counter(
        out,
        "tykwatch_intake_connections_refused_total",
        "Connections [intake] closed at once because max_connections were open.",
        i.connections.refused.load(Relaxed),
    );
}
