//! Thresholds and crossings (README "Monitors and notifications").
//!
//! [`evaluate_sample`] and [`detect`] are pure functions of (ledger view, sample, thresholds,
//! now). [`Monitor`] adds the in-memory view of the ledger (what already fired per quota and
//! period, warmed from the store at start-up) and a monotonic sequence. The store is the
//! arbiter: its `INSERT OR IGNORE` makes a crossing that the cache missed a no-op.
//!
//! Differences from the gateway's own monitor (TykTechnologies/tyk `gateway/monitor.go`), on purpose: one notification
//! per quota, period and threshold instead of one per request deduped by a cooldown; several
//! thresholds passed at once notify the highest (Tyk: the first in array order) and record the
//! rest as covered; the order of `trigger_limits` does not matter; a reached global threshold
//! does not hide the session's own thresholds; the usage percentage travels with the event.

use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::UnixMs;
use crate::config::MonitorConfig;
use crate::outbox::{Crossing, LedgerEntry};
use crate::quota::model::same_period;
use crate::quota::{QuotaId, QuotaMeta, Sample, Scope};

use crate::outbox::quota_key;

/// Which quotas are monitored and the thresholds every quota shares.
#[derive(Debug, Clone, PartialEq)]
pub struct MonitorSettings {
    pub enabled: bool,
    /// Keys' top-level quotas and per-API limits.
    pub user_keys: bool,
    pub org_keys: bool,
    /// `global_trigger_limit` (when > 0) ∪ `global_trigger_limits`: valid, ascending, unique.
    global: Vec<f64>,
}

impl MonitorSettings {
    pub fn new(enabled: bool, user_keys: bool, org_keys: bool, global: &[f64]) -> Self {
        let mut g: Vec<f64> = global.iter().copied().filter(|t| valid(*t)).collect();
        g.sort_by(f64::total_cmp);
        g.dedup();
        MonitorSettings {
            enabled,
            user_keys,
            org_keys,
            global: g,
        }
    }

    pub fn from_config(c: &MonitorConfig) -> Self {
        let mut global = c.global_trigger_limits.clone();
        global.push(c.global_trigger_limit); // 0 = off, dropped by `valid`
        Self::new(
            c.enable_trigger_monitors,
            c.monitor_user_keys,
            c.monitor_org_keys,
            &global,
        )
    }

    pub fn global(&self) -> &[f64] {
        &self.global
    }

    /// Whether quotas of this scope are monitored at all.
    pub fn monitors(&self, scope: Scope) -> bool {
        self.enabled
            && match scope {
                Scope::Key | Scope::Api => self.user_keys,
                Scope::Org => self.org_keys,
            }
    }

    /// Thresholds of a quota: the session's `trigger_limits` ∪ the global ones, ascending.
    pub fn thresholds_for(&self, meta: &QuotaMeta) -> Vec<f64> {
        let mut t: Vec<f64> = self.iter_thresholds(meta).collect();
        t.sort_by(f64::total_cmp);
        t.dedup();
        t
    }

    fn iter_thresholds<'a>(
        &'a self,
        meta: &'a QuotaMeta,
    ) -> impl Iterator<Item = f64> + Clone + 'a {
        self.global
            .iter()
            .copied()
            .chain(meta.trigger_limits.iter().copied().filter(|t| valid(*t)))
    }
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self::from_config(&MonitorConfig::default())
    }
}

/// A threshold can fire when it is a percentage in (0, 100]; usage never exceeds 100, so
/// anything above (or NaN, or ≤ 0 from a hand-edited session) would never fire anyway.
fn valid(t: f64) -> bool {
    t > 0.0 && t <= 100.0
}

/// What one sample crosses: the threshold to notify and the lower ones it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct Detection {
    pub threshold: f64,
    /// Unfired thresholds below `threshold` that the same sample passed, ascending.
    pub covered: Vec<f64>,
    pub usage_pct: f64,
}

/// The highest unfired threshold at or below `usage_pct`, and the unfired ones below it.
/// `fired` is the ledger view of the quota's current period (fired and covered thresholds).
pub fn detect<I>(fired: &[f64], usage_pct: f64, thresholds: I) -> Option<Detection>
where
    I: IntoIterator<Item = f64>,
    I::IntoIter: Clone,
{
    let it = thresholds.into_iter();
    let unfired = |t: &f64| valid(*t) && usage_pct >= *t && !fired.contains(t);
    let top = it.clone().filter(unfired).max_by(f64::total_cmp)?;
    let mut covered: Vec<f64> = it.filter(|t| unfired(t) && *t < top).collect();
    covered.sort_by(f64::total_cmp);
    covered.dedup();
    Some(Detection {
        threshold: top,
        covered,
        usage_pct,
    })
}

/// The usage of a sample if it is monitored and could fire at all, else `None`: monitors off
/// for its scope, unlimited (`quota_max <= 0`), or a period whose `quota_renews` is in the past
/// (Tyk renews lazily on the next request; the counters are stale).
fn gate(settings: &MonitorSettings, s: &Sample, now_ms: UnixMs) -> Option<f64> {
    if !settings.monitors(s.id.scope()) {
        return None;
    }
    let usage = s.usage_pct()?;
    if s.quota_renews < now_ms.div_euclid(1000) {
        return None;
    }
    Some(usage)
}

/// The pure form: what `sample` crosses given what already `fired` in its period.
pub fn evaluate_sample(
    settings: &MonitorSettings,
    fired: &[f64],
    sample: &Sample,
    now_ms: UnixMs,
) -> Option<Detection> {
    let usage = gate(settings, sample, now_ms)?;
    detect(fired, usage, settings.iter_thresholds(&sample.meta))
}

/// What the monitor remembers of a quota that has reached a threshold at least once.
#[derive(Debug)]
struct QuotaState {
    /// Hashing the raw key once per quota, not once per sample.
    quota_key: Arc<str>,
    period: i64,
    /// Fired and covered thresholds of `period`.
    fired: Fired,
}

/// A few thresholds inline (quotas rarely have more than 6): the already-fired check on the hot
/// path then touches no memory beyond the map entry.
#[derive(Debug, Clone, Default)]
struct Fired {
    len: usize,
    inline: [f64; 6],
    heap: Vec<f64>,
}

impl Fired {
    fn from_slice(t: &[f64]) -> Fired {
        let mut f = Fired::default();
        for x in t {
            f.push_unique(*x);
        }
        f
    }

    fn as_slice(&self) -> &[f64] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }

    fn push_unique(&mut self, t: f64) {
        if self.as_slice().contains(&t) {
            return;
        }
        if self.heap.is_empty() && self.len < self.inline.len() {
            self.inline[self.len] = t;
            self.len += 1;
        } else {
            if self.heap.is_empty() {
                self.heap.extend_from_slice(&self.inline[..self.len]);
            }
            self.heap.push(t);
        }
    }

    fn retain(&mut self, keep: impl Fn(f64) -> bool) {
        let kept: Vec<f64> = self
            .as_slice()
            .iter()
            .copied()
            .filter(|t| keep(*t))
            .collect();
        *self = Fired::from_slice(&kept);
    }
}

/// The stateful monitor: settings, the in-memory ledger view and the sequence counter.
///
/// Not thread-safe by design: one engine task owns it. After a failed store write, call
/// [`Monitor::rollback`] so the next sample detects the crossing again.
#[derive(Debug)]
pub struct Monitor {
    settings: MonitorSettings,
    quotas: HashMap<QuotaId, QuotaState>,
    /// Ledger rows loaded at start-up, by quota key, consumed as quotas show up.
    warm: HashMap<Arc<str>, Vec<(i64, Vec<f64>)>>,
    next_sequence: i64,
}

impl Monitor {
    pub fn new(settings: MonitorSettings) -> Self {
        Monitor {
            settings,
            quotas: HashMap::new(),
            warm: HashMap::new(),
            next_sequence: 1,
        }
    }

    pub fn from_config(c: &MonitorConfig) -> Self {
        Self::new(MonitorSettings::from_config(c))
    }

    pub fn settings(&self) -> &MonitorSettings {
        &self.settings
    }

    /// Replaces the settings (config reload); what fired stays fired.
    pub fn set_settings(&mut self, settings: MonitorSettings) {
        self.settings = settings;
    }

    /// Loads what the ledger says already fired (`Store::load_ledger_since(now_secs)`: periods
    /// that ended cannot fire again) and continues the sequence after `last_sequence`.
    pub fn warm(&mut self, ledger: &[LedgerEntry], last_sequence: i64) {
        self.next_sequence = self.next_sequence.max(last_sequence.saturating_add(1));
        let mut interned: Option<Arc<str>> = None;
        for e in ledger {
            let key = match &interned {
                Some(k) if **k == *e.quota_key => k.clone(),
                _ => Arc::from(e.quota_key.as_str()),
            };
            interned = Some(key.clone());
            let periods = self.warm.entry(key).or_default();
            match periods.iter_mut().find(|(p, _)| *p == e.period) {
                Some((_, t)) => push_unique(t, e.threshold),
                None => periods.push((e.period, vec![e.threshold])),
            }
        }
        // Quotas already seen since start-up pick up rows for their current period.
        for st in self.quotas.values_mut() {
            if let Some((_, t)) = lookup(&self.warm, &st.quota_key, st.period) {
                for x in t {
                    st.fired.push_unique(*x);
                }
            }
        }
    }

    /// The next sequence number [`Monitor::evaluate`] will hand out.
    pub fn next_sequence(&self) -> i64 {
        self.next_sequence
    }

    /// The hot path: at most one crossing per sample. Allocation-free and hash-free when the
    /// usage is below every threshold; one map lookup when the reached thresholds already fired.
    pub fn evaluate(&mut self, s: &Sample, now_ms: UnixMs) -> Vec<Crossing> {
        match self.check(s, now_ms) {
            Some(c) => vec![c],
            None => Vec::new(),
        }
    }

    /// [`Monitor::evaluate`] for a whole sweep.
    pub fn evaluate_all<'a>(
        &mut self,
        samples: impl IntoIterator<Item = &'a Sample>,
        now_ms: UnixMs,
    ) -> Vec<Crossing> {
        samples
            .into_iter()
            .filter_map(|s| self.check(s, now_ms))
            .collect()
    }

    fn check(&mut self, s: &Sample, now_ms: UnixMs) -> Option<Crossing> {
        let usage = gate(&self.settings, s, now_ms)?;
        let lowest = self
            .settings
            .iter_thresholds(&s.meta)
            .min_by(f64::total_cmp)?;
        if usage < lowest {
            return None;
        }
        let Monitor {
            settings,
            quotas,
            warm,
            next_sequence,
        } = self;
        // One lookup on the hot path; the key is hashed (SHA-256) once per quota, on insert.
        let st = match quotas.get_mut(&s.id) {
            Some(st) => st,
            None => {
                let qk: Arc<str> = Arc::from(quota_key(&s.id));
                let (period, fired) = match lookup(warm, &qk, s.quota_renews) {
                    Some((p, t)) => (p, Fired::from_slice(t)),
                    None => (s.quota_renews, Fired::from_slice(&[])),
                };
                let st = QuotaState {
                    quota_key: qk,
                    period,
                    fired,
                };
                quotas.entry(s.id.clone()).insert_entry(st).into_mut()
            }
        };
        if !same_period(st.period, s.quota_renews) {
            // A renewal: every threshold re-arms (unless the ledger already has the new period).
            (st.period, st.fired) = match lookup(warm, &st.quota_key, s.quota_renews) {
                Some((p, t)) => (p, Fired::from_slice(t)),
                None => (s.quota_renews, Fired::from_slice(&[])),
            };
        }
        let d = detect(
            st.fired.as_slice(),
            usage,
            settings.iter_thresholds(&s.meta),
        )?;
        st.fired.push_unique(d.threshold);
        for t in &d.covered {
            st.fired.push_unique(*t);
        }
        let sequence = *next_sequence;
        *next_sequence += 1;
        Some(Crossing {
            quota_key: st.quota_key.clone(),
            quota_id: s.id.clone(),
            meta: s.meta.clone(),
            period: st.period,
            threshold: d.threshold,
            covered: d.covered,
            usage_pct: d.usage_pct,
            quota_max: s.quota_max,
            quota_remaining: s.quota_remaining,
            quota_renews: s.quota_renews,
            at_ms: now_ms,
            sequence,
        })
    }

    /// Forgets crossings whose store write failed, so the next sample detects them again
    /// (otherwise a failed commit would lose the notification until restart).
    pub fn rollback(&mut self, crossings: &[Crossing]) {
        for c in crossings {
            if let Some(st) = self.quotas.get_mut(&c.quota_id)
                && st.period == c.period
            {
                st.fired
                    .retain(|t| t != c.threshold && !c.covered.contains(&t));
            }
        }
    }

    /// Thresholds recorded for a quota's current period (fired or covered), ascending.
    pub fn fired(&self, id: &QuotaId) -> Vec<f64> {
        let mut t = self
            .quotas
            .get(id)
            .map(|st| st.fired.as_slice().to_vec())
            .unwrap_or_default();
        t.sort_by(f64::total_cmp);
        t
    }

    /// The highest threshold recorded for each quota's current period, for quotas that have one.
    pub fn highest_fired(&self) -> impl Iterator<Item = (&QuotaId, f64)> + '_ {
        self.quotas.iter().filter_map(|(id, st)| {
            st.fired
                .as_slice()
                .iter()
                .copied()
                .max_by(f64::total_cmp)
                .map(|t| (id, t))
        })
    }

    /// Drops state of periods that ended before `now_ms`: they can never fire again. Call it
    /// now and then (e.g. once per sweep) to bound memory by the quotas near a threshold.
    pub fn prune(&mut self, now_ms: UnixMs) {
        let now = now_ms.div_euclid(1000);
        self.quotas.retain(|_, st| st.period >= now);
        self.warm.retain(|_, periods| {
            periods.retain(|(p, _)| *p >= now);
            !periods.is_empty()
        });
    }

    /// Quotas held in memory (for tests and the memory budget).
    pub fn tracked(&self) -> usize {
        self.quotas.len()
    }
}

/// The ledger's period matching `period` (within the slack) and what fired in it.
fn lookup<'a>(
    warm: &'a HashMap<Arc<str>, Vec<(i64, Vec<f64>)>>,
    quota_key: &str,
    period: i64,
) -> Option<(i64, &'a [f64])> {
    warm.get(quota_key)?
        .iter()
        .find(|(p, _)| same_period(*p, period))
        .map(|(p, t)| (*p, t.as_slice()))
}

fn push_unique(v: &mut Vec<f64>, t: f64) {
    if !v.contains(&t) {
        v.push(t);
    }
}
