//! The current picture: latest sample per quota, its history, consumption rate and time to
//! exhaustion, and the change since the previous sweep. Pure data, no I/O.

use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;
use std::time::Duration;

use super::history::{Epoch, History, MAX_POINTS};
use super::model::{self, Band, QuotaId, QuotaMeta, Sample};
use crate::clock::UnixMs;

/// True when the names the table sorts and filters on are the same (`QuotaMeta::label`,
/// `QuotaMeta::search_fields`); the key is part of the quota's id. A source that keeps its
/// sessions between sweeps hands over the same `Arc`s, which is checked first.
fn same_names(a: &QuotaMeta, b: &QuotaMeta) -> bool {
    let (sa, sb) = (&a.session, &b.session);
    let session = std::sync::Arc::ptr_eq(sa, sb)
        || (sa.alias == sb.alias
            && sa.masked == sb.masked
            && sa.hashed == sb.hashed
            && sa.key == sb.key
            && sa.org_id == sb.org_id);
    session
        && match (&a.api, &b.api) {
            (None, None) => true,
            (Some(x), Some(y)) => {
                std::sync::Arc::ptr_eq(x, y) || (x.api_name == y.api_name && x.api_id == y.api_id)
            }
            _ => false,
        }
}

/// How much history is kept and how rates are computed.
#[derive(Debug, Clone, Copy)]
pub struct BoardSettings {
    pub retention: Duration,
    /// Expected time between samples of one quota (the poll interval).
    pub poll_interval: Duration,
    /// Window over which the consumption rate is measured.
    pub rate_window: Duration,
}

impl Default for BoardSettings {
    fn default() -> Self {
        BoardSettings {
            retention: Duration::from_secs(600),
            poll_interval: Duration::from_secs(2),
            rate_window: Duration::from_secs(300),
        }
    }
}

/// One quota on the board.
#[derive(Debug, Clone)]
pub struct Entry {
    pub id: QuotaId,
    pub meta: QuotaMeta,
    pub at_ms: UnixMs,
    pub quota_max: i64,
    pub quota_remaining: i64,
    pub quota_renews: i64,
    pub quota_renewal_rate: i64,
    /// `used` at the previous sample (`NONE` before), for the change since the previous sweep.
    prev_used: i64,
    /// `quota_renews` changed at the last sample: the quota renewed.
    renewed: bool,
    /// Requests a minute over the rate window; NaN when not known.
    rate: f32,
    pub history: History,
    /// The sweep that last saw this quota.
    seen_sweep: u32,
}

/// `Entry::prev_used` before a second sample (an `Option` would double it: a board holds a
/// million entries).
const NONE: i64 = i64::MIN;

impl Entry {
    pub fn used(&self) -> i64 {
        model::used(self.quota_max, self.quota_remaining)
    }

    /// Consumption in requests a minute over the rate window; `None` without two points.
    pub fn rate_per_min(&self) -> Option<f64> {
        (!self.rate.is_nan()).then_some(self.rate as f64)
    }

    pub fn usage_pct(&self) -> Option<f64> {
        model::usage_pct(self.quota_max, self.quota_remaining)
    }

    pub fn band(&self) -> Band {
        Band::of(self.quota_max, self.quota_remaining)
    }

    pub fn is_limited(&self) -> bool {
        self.quota_max > 0
    }

    /// Change in `used` since the previous sample (negative after a renewal).
    pub fn delta(&self) -> Option<i64> {
        (self.prev_used != NONE).then(|| self.used() - self.prev_used)
    }

    /// True when the quota renewed between the previous sample and this one.
    pub fn renewed(&self) -> bool {
        self.renewed
    }

    /// Seconds until the window ends; `<= 0` means Tyk renews it on the next request.
    pub fn renews_in(&self, now_ms: UnixMs) -> i64 {
        self.quota_renews - now_ms.div_euclid(1000)
    }

    /// Seconds until the quota is used up at the current rate; `None` when not consuming,
    /// unlimited, or already exhausted (`Some(0)`).
    pub fn eta_secs(&self) -> Option<i64> {
        if !self.is_limited() {
            return None;
        }
        if self.quota_remaining <= 0 {
            return Some(0);
        }
        let per_sec = self.rate_per_min()? / 60.0;
        (per_sec > 0.0).then(|| (self.quota_remaining as f64 / per_sec).ceil() as i64)
    }

    /// True when the quota would run out before its window ends at the current rate.
    pub fn exhausts_before_renewal(&self, now_ms: UnixMs) -> bool {
        self.eta_secs()
            .is_some_and(|eta| eta < self.renews_in(now_ms).max(0) || self.quota_remaining <= 0)
    }

    /// Thresholds that apply: the session's trigger limits ∪ the global ones, ascending.
    pub fn thresholds(&self, global: &[f64]) -> Vec<f64> {
        let mut t: Vec<f64> = self
            .meta
            .trigger_limits
            .iter()
            .chain(global)
            .copied()
            .filter(|x| *x > 0.0)
            .collect();
        t.sort_by(f64::total_cmp);
        t.dedup();
        t
    }

    /// The highest threshold at or below the current usage.
    pub fn highest_threshold_reached(&self, global: &[f64]) -> Option<f64> {
        let pct = self.usage_pct()?;
        self.thresholds(global)
            .into_iter()
            .rev()
            .find(|t| pct >= *t)
    }
}

#[derive(Debug)]
pub struct Board {
    /// Positions in `entries`, found by the hash of their id: the ids are not stored twice.
    index: HashTable<u32>,
    hasher: RandomState,
    entries: Vec<Entry>,
    epoch: Epoch,
    spacing: u32,
    retention: u32,
    rate_window: u32,
    sweep: u32,
    /// Bumped on every change; views recompute their order when it moves.
    version: u64,
    /// Bumped when a quota arrives, leaves (positions move) or changes a name the table sorts
    /// or filters on: while it stands, a view may keep its per-quota name keys and filter.
    names_version: u64,
}

fn tenths(d: Duration) -> u32 {
    (d.as_millis() / 100).min(u32::MAX as u128) as u32
}

impl Board {
    pub fn new(settings: BoardSettings, epoch_ms: UnixMs) -> Board {
        let retention = tenths(settings.retention);
        Board {
            index: HashTable::new(),
            hasher: RandomState::new(),
            entries: Vec::new(),
            epoch: Epoch(epoch_ms),
            spacing: tenths(settings.poll_interval).max(retention / MAX_POINTS as u32),
            retention,
            rate_window: tenths(settings.rate_window).max(1),
            sweep: 0,
            version: 0,
            names_version: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn get(&self, id: &QuotaId) -> Option<&Entry> {
        self.position(id).map(|i| &self.entries[i])
    }

    pub fn position(&self, id: &QuotaId) -> Option<usize> {
        let entries = &self.entries;
        self.index
            .find(self.hasher.hash_one(id), |&i| entries[i as usize].id == *id)
            .map(|&i| i as usize)
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    /// Moves when a quota arrives or leaves (positions move) or one of its names changes; not
    /// when only values do.
    pub fn names_version(&self) -> u64 {
        self.names_version
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    pub fn current_sweep(&self) -> u32 {
        self.sweep
    }

    /// Starts a sweep; samples ingested until `end_sweep` belong to it.
    pub fn begin_sweep(&mut self) -> u32 {
        self.sweep = self.sweep.wrapping_add(1);
        self.sweep
    }

    /// One whole sweep: `begin_sweep`, every sample, `end_sweep(complete)`. Room for the
    /// sweep's quotas is made first, with less slack than `Vec`'s doubling (a million entries
    /// doubled would leave a few hundred MB unused).
    pub fn ingest_sweep(&mut self, samples: Vec<Sample>, complete: bool) -> usize {
        let wanted = samples.len();
        if wanted > self.entries.capacity() {
            let target = wanted.max(self.entries.capacity() + self.entries.capacity() / 8);
            self.entries.reserve_exact(target - self.entries.len());
        }
        self.begin_sweep();
        for s in samples {
            self.ingest(s);
        }
        self.end_sweep(complete)
    }

    /// Ends a sweep. When the sweep listed every key (`complete`), quotas it did not see are
    /// gone from the gateway (deleted keys, removed per-API limits) and leave the board.
    pub fn end_sweep(&mut self, complete: bool) -> usize {
        if !complete {
            return 0;
        }
        let sweep = self.sweep;
        let before = self.entries.len();
        let mut i = 0;
        while i < self.entries.len() {
            if self.entries[i].seen_sweep < sweep {
                let last = self.entries.len() - 1;
                self.unindex(i);
                if i != last {
                    // The last entry moves into the gap.
                    self.unindex(last);
                    self.entries.swap(i, last);
                    self.reindex(i);
                }
                self.entries.pop();
            } else {
                i += 1;
            }
        }
        let removed = before - self.entries.len();
        if removed > 0 {
            self.version += 1;
            self.names_version += 1;
        }
        removed
    }

    /// Records one sample.
    pub fn ingest(&mut self, s: Sample) {
        let t = self.epoch.encode(s.at_ms);
        let used = s.used();
        self.version += 1;
        if let Some(i) = self.position(&s.id) {
            let e = &mut self.entries[i];
            if !same_names(&e.meta, &s.meta) {
                self.names_version += 1;
            }
            e.prev_used = e.used();
            e.renewed = e.quota_renews != s.quota_renews;
            e.meta = s.meta;
            e.at_ms = s.at_ms;
            e.quota_max = s.quota_max;
            e.quota_remaining = s.quota_remaining;
            e.quota_renews = s.quota_renews;
            e.quota_renewal_rate = s.quota_renewal_rate;
            e.seen_sweep = self.sweep;
            e.history.push(t, used, self.spacing, self.retention);
            e.rate = e
                .history
                .rate_per_min(self.rate_window)
                .map_or(f32::NAN, |r| r as f32);
            return;
        }
        let mut history = History::default();
        history.push(t, used, self.spacing, self.retention);
        self.names_version += 1;
        self.entries.push(Entry {
            id: s.id,
            meta: s.meta,
            at_ms: s.at_ms,
            quota_max: s.quota_max,
            quota_remaining: s.quota_remaining,
            quota_renews: s.quota_renews,
            quota_renewal_rate: s.quota_renewal_rate,
            prev_used: NONE,
            renewed: false,
            rate: f32::NAN,
            history,
            seen_sweep: self.sweep,
        });
        self.reindex(self.entries.len() - 1);
    }

    /// Adds position `i` to the index under its entry's id.
    fn reindex(&mut self, i: usize) {
        let (entries, hasher) = (&self.entries, &self.hasher);
        let hash = hasher.hash_one(&entries[i].id);
        self.index.insert_unique(hash, i as u32, |&j| {
            hasher.hash_one(&entries[j as usize].id)
        });
    }

    /// Removes position `i` from the index.
    fn unindex(&mut self, i: usize) {
        let hash = self.hasher.hash_one(&self.entries[i].id);
        if let Ok(found) = self.index.find_entry(hash, |&j| j as usize == i) {
            found.remove();
        }
    }

    /// History of one quota as (unix ms, used) points, oldest first.
    pub fn series(&self, e: &Entry) -> Vec<(UnixMs, i64)> {
        e.history
            .iter()
            .map(|(t, u)| (self.epoch.decode(t), u))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn sample(key: &str, at_ms: i64, max: i64, remaining: i64, renews: i64) -> Sample {
        Sample {
            id: QuotaId::Key(Arc::from(key)),
            meta: QuotaMeta::default(),
            at_ms,
            quota_max: max,
            quota_remaining: remaining,
            quota_renews: renews,
            quota_renewal_rate: 3600,
        }
    }

    #[test]
    fn rate_eta_and_delta() {
        let mut b = Board::new(BoardSettings::default(), 0);
        for i in 0..11i64 {
            b.begin_sweep();
            // 60 requests a minute: 2 per 2 s sweep
            b.ingest(sample("k", i * 2000, 1000, 1000 - 2 * i, 3600));
            b.end_sweep(true);
        }
        let e = b.get(&QuotaId::Key(Arc::from("k"))).unwrap();
        assert_eq!(e.used(), 20);
        assert_eq!(e.delta(), Some(2));
        assert!((e.rate_per_min().unwrap() - 60.0).abs() < 1e-9);
        assert_eq!(e.eta_secs(), Some(980));
        assert!(e.exhausts_before_renewal(20_000));
    }

    #[test]
    fn vanished_quotas_leave_after_a_complete_sweep() {
        let mut b = Board::new(BoardSettings::default(), 0);
        b.begin_sweep();
        for k in ["a", "b", "c"] {
            b.ingest(sample(k, 0, 10, 5, 100));
        }
        b.end_sweep(true);
        b.begin_sweep();
        b.ingest(sample("c", 1000, 10, 5, 100));
        assert_eq!(b.end_sweep(false), 0);
        assert_eq!(b.len(), 3);
        b.begin_sweep();
        b.ingest(sample("c", 2000, 10, 5, 100));
        assert_eq!(b.end_sweep(true), 2);
        assert_eq!(b.len(), 1);
        assert!(b.get(&QuotaId::Key(Arc::from("c"))).is_some());
    }

    #[test]
    fn thresholds_union_sorted() {
        let mut b = Board::new(BoardSettings::default(), 0);
        let mut s = sample("k", 0, 100, 10, 100);
        s.meta = QuotaMeta::from(model::SessionMeta {
            trigger_limits: Arc::new(vec![90.0, 75.0, 50.0]),
            ..model::SessionMeta::default()
        });
        b.ingest(s);
        let e = &b.entries()[0];
        assert_eq!(e.thresholds(&[80.0, 90.0]), vec![50.0, 75.0, 80.0, 90.0]);
        assert_eq!(e.highest_threshold_reached(&[80.0]), Some(90.0));
    }
}
