//! The per-quota series: the last reading of every limited quota, with its consumption rate,
//! kept compactly (no history: a million quotas must fit) and written at scrape time.
//!
//! Labels: `org_id`, `alias`, `api_id`, `scope`, `key` (the key as the console masks it) and
//! `key_id`, which tells keys apart without revealing them — masked keys collide (`5e9d…ef6d`
//! is an org prefix and four characters), and two series with one label set would make
//! Prometheus refuse the whole scrape. `key_id` is the digest of the ledger's quota id
//! (`outbox::keys::key_digest`), so `key:<key_id>[:api:<api_id>]` is the `quota_id` that
//! `snapshot`, `run` and the outbox print for the same quota.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

use super::text::{CHUNK, Exposition, Kind, Value};
use crate::quota::{QuotaId, QuotaMeta, Sample, mask_key};

/// Series each quota has at most (the `FAMILIES` below).
pub const SERIES_PER_QUOTA: usize = 7;

/// One quota's last reading, with its labels as they are written (no session metadata is
/// kept: in `tykwatch run` nothing else holds it, and a million of them would not fit).
#[derive(Debug, Clone)]
struct Row {
    /// `{org_id="…",alias="…",…}`, escaped once, written as is by every family.
    labels: Box<[u8]>,
    /// Of the org id and alias the labels were written from: they are rebuilt when it moves.
    label_hash: u64,
    at_ms: i64,
    max: i64,
    remaining: i64,
    /// Unix s; `<= 0` unknown or never.
    renews: i64,
    /// The reading the rate is measured from: `(at_ms, used)`.
    anchor: (i64, i64),
    /// Requests per second over the last `rate_window`; `None` until two readings.
    rate: Option<f64>,
    /// The sweep that last saw this quota.
    seen: u64,
}

impl Row {
    fn used(&self) -> i64 {
        (self.max - self.remaining).max(0)
    }

    fn ratio(&self) -> f64 {
        self.used() as f64 / self.max as f64
    }

    /// Seconds until the quota is used up at the current rate (none when idle or renewing
    /// first does not matter here: alerting compares it with the renewal itself).
    fn exhaustion_secs(&self) -> Option<f64> {
        let r = self.rate.filter(|r| *r > 0.0)?;
        Some(self.remaining.max(0) as f64 / r)
    }

    fn renewal_secs(&self, now_ms: i64) -> Option<i64> {
        (self.renews > 0).then(|| (self.renews - now_ms.div_euclid(1000)).max(0))
    }

    fn series(&self) -> usize {
        5 + usize::from(self.rate.is_some()) + usize::from(self.exhaustion_secs().is_some())
            - usize::from(self.renews <= 0)
    }
}

/// The latest reading of every limited quota.
#[derive(Debug)]
pub struct QuotaTable {
    /// By [`row_id`]: a 64-bit hash of the quota id instead of the id (a raw key of 30–60
    /// bytes, per quota); two of a million quotas collide with a probability of ~3e-8.
    rows: HashMap<u64, Row>,
    sweep: u64,
    rate_window_ms: i64,
}

/// How a family reads its value off a row; `None`: no sample for that quota.
type Read = fn(&Row, i64) -> Option<Value>;

const FAMILIES: [(&str, &str, Read); SERIES_PER_QUOTA] = [
    (
        "tykwatch_quota_used",
        "Requests used in the quota's current period.",
        |r, _| Some(Value::Int(r.used())),
    ),
    (
        "tykwatch_quota_max",
        "Requests the quota allows per period (quota_max).",
        |r, _| Some(Value::Int(r.max)),
    ),
    (
        "tykwatch_quota_remaining",
        "Requests left in the quota's current period.",
        |r, _| Some(Value::Int(r.remaining.max(0))),
    ),
    (
        "tykwatch_quota_usage_ratio",
        "Used over max (1 = exhausted).",
        |r, _| Some(Value::Float(r.ratio())),
    ),
    (
        "tykwatch_quota_renewal_seconds",
        "Seconds until the quota renews.",
        |r, now| r.renewal_secs(now).map(Value::Int),
    ),
    (
        "tykwatch_quota_consumption_rate",
        "Requests per second over the rate window.",
        |r, _| r.rate.map(Value::Float),
    ),
    (
        "tykwatch_quota_exhaustion_seconds",
        "Seconds until the quota is used up at the current rate (absent when idle).",
        |r, _| r.exhaustion_secs().map(Value::Float),
    ),
];

/// The key as a label: the console's mask for tokens; for a hash, at most its first 8
/// characters (never a whole hash, however short).
fn key_label(id: &QuotaId, meta: &QuotaMeta) -> Box<str> {
    let Some(k) = id.key() else {
        return Box::from("");
    };
    if meta.hashed {
        let head: String = k.chars().take(8.min(k.chars().count() / 2)).collect();
        format!("{head}…").into()
    } else {
        mask_key(k).into()
    }
}

impl QuotaTable {
    pub fn new(rate_window_ms: i64) -> QuotaTable {
        QuotaTable {
            rows: HashMap::new(),
            sweep: 0,
            rate_window_ms: rate_window_ms.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// A sweep's readings; a complete sweep also drops the quotas it did not see (deleted
    /// keys). Unlimited quotas have nothing to export.
    pub fn ingest(&mut self, samples: &[Sample], complete: bool) {
        self.sweep += 1;
        let sweep = self.sweep;
        for s in samples {
            let id = row_id(&s.id);
            if s.quota_max <= 0 {
                self.rows.remove(&id);
                continue;
            }
            let used = (s.quota_max - s.quota_remaining).max(0);
            match self.rows.get_mut(&id) {
                Some(r) => {
                    // A new period: the counter went down, or the window end moved by more than the
                    // second a PTTL reading may shift it.
                    let renewed =
                        used < r.used() || (r.renews > 0 && (s.quota_renews - r.renews).abs() > 2);
                    if renewed || s.at_ms <= r.anchor.0 {
                        r.anchor = (s.at_ms, used);
                        r.rate = if renewed { None } else { r.rate };
                    } else {
                        let dt = (s.at_ms - r.anchor.0) as f64 / 1000.0;
                        r.rate = Some((used - r.anchor.1).max(0) as f64 / dt);
                        // Slide: the next rate is measured from this reading once the window
                        // has passed.
                        if s.at_ms - r.anchor.0 >= self.rate_window_ms {
                            r.anchor = (r.at_ms, r.used());
                        }
                    }
                    let h = label_hash(&s.meta);
                    if h != r.label_hash {
                        r.labels = labels(&s.id, &s.meta);
                        r.label_hash = h;
                    }
                    r.at_ms = s.at_ms;
                    r.max = s.quota_max;
                    r.remaining = s.quota_remaining;
                    r.renews = s.quota_renews;
                    r.seen = sweep;
                }
                None => {
                    self.rows.insert(
                        id,
                        Row {
                            labels: labels(&s.id, &s.meta),
                            label_hash: label_hash(&s.meta),
                            at_ms: s.at_ms,
                            max: s.quota_max,
                            remaining: s.quota_remaining,
                            renews: s.quota_renews,
                            anchor: (s.at_ms, used),
                            rate: None,
                            seen: sweep,
                        },
                    );
                }
            }
        }
        if complete {
            self.rows.retain(|_, r| r.seen == sweep);
        }
    }

    /// What the next scrape writes of the quotas, at most `max_series` samples: when there are
    /// more, the quotas nearest exhaustion are kept. Returns the series left out too.
    ///
    /// One pass over the rows (scattered in memory) copies what the seven families need into
    /// two arrays, read in order seven times by [`QuotaLines::write`] once the caller's lock
    /// is released: the scrape is bound by memory, not by formatting.
    pub fn snapshot(&self, now_ms: i64, max_series: usize) -> (QuotaLines, usize) {
        let mut rows: Vec<(&u64, &Row)> = self.rows.iter().collect();
        let total: usize = rows.iter().map(|(_, r)| r.series()).sum();
        let mut dropped = 0;
        if total > max_series {
            let keep = max_series / SERIES_PER_QUOTA;
            if keep < rows.len() {
                rows.select_nth_unstable_by(keep, |a, b| b.1.ratio().total_cmp(&a.1.ratio()));
                dropped = rows[keep..].iter().map(|(_, r)| r.series()).sum();
                rows.truncate(keep);
            }
        }
        // A stable order (by row id): consecutive scrapes list quotas alike.
        rows.sort_unstable_by_key(|(id, _)| **id);
        let mut arena: Vec<u8> = Vec::with_capacity(rows.iter().map(|(_, r)| r.labels.len()).sum());
        let mut lines = Vec::with_capacity(rows.len());
        for (_, r) in &rows {
            let start = arena.len();
            arena.extend_from_slice(&r.labels);
            let mut values = [None; SERIES_PER_QUOTA];
            for (v, (_, _, read)) in values.iter_mut().zip(FAMILIES) {
                *v = read(r, now_ms);
            }
            lines.push(Line {
                labels: start..arena.len(),
                values,
            });
        }
        (QuotaLines { arena, lines }, dropped)
    }
}

/// One quota's samples as the scrape writes them.
struct Line {
    /// Its label block, in [`QuotaLines::arena`].
    labels: std::ops::Range<usize>,
    values: [Option<Value>; SERIES_PER_QUOTA],
}

/// The quotas of one scrape, copied out of the table.
pub struct QuotaLines {
    arena: Vec<u8>,
    lines: Vec<Line>,
}

/// Below this many quotas one thread writes the scrape: a thread costs more than it saves.
const PARALLEL_FROM: usize = 20_000;

impl QuotaLines {
    /// The quota families. A large scrape (100k quotas with every series is ~100 MB) is
    /// written by up to four threads, each its share of every family's lines into buffers of
    /// its own, never reallocated; the chunks are sent in order, never copied together.
    pub fn write(&self) -> Exposition {
        let threads = if self.lines.len() < PARALLEL_FROM {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
        };
        self.write_with(threads)
    }

    fn write_with(&self, threads: usize) -> Exposition {
        let share = self.lines.len().div_ceil(threads).max(1);
        let mut parts: Vec<(&[Line], Vec<Exposition>)> = self
            .lines
            .chunks(share)
            .map(|p| (p, Vec::with_capacity(SERIES_PER_QUOTA)))
            .collect();
        match parts.split_first_mut() {
            Some((first, rest)) if !rest.is_empty() => std::thread::scope(|s| {
                for (lines, bufs) in rest.iter_mut() {
                    s.spawn(|| *bufs = self.part(lines));
                }
                first.1 = self.part(first.0);
            }),
            Some((first, _)) => first.1 = self.part(first.0),
            None => {}
        }
        let mut per_part: Vec<std::vec::IntoIter<Exposition>> =
            parts.into_iter().map(|(_, b)| b.into_iter()).collect();
        let mut out = Exposition::default();
        for (name, help, _) in FAMILIES {
            out.family(name, Kind::Gauge, help);
            for p in &mut per_part {
                if let Some(e) = p.next() {
                    out.append(e);
                }
            }
        }
        out
    }

    /// Each family's lines for `lines`, in [`CHUNK`]-sized buffers.
    fn part(&self, lines: &[Line]) -> Vec<Exposition> {
        FAMILIES
            .iter()
            .enumerate()
            .map(|(i, (name, _, _))| {
                let mut e = Exposition::chunked(CHUNK);
                for l in lines {
                    if let Some(v) = l.values[i] {
                        e.sample_with(name, &self.arena[l.labels.clone()], v);
                    }
                }
                e
            })
            .collect()
    }
}

/// The table's key for a quota id (process-local: the hasher's keys are fixed per process).
fn row_id(id: &QuotaId) -> u64 {
    static STATE: std::sync::OnceLock<std::collections::hash_map::RandomState> =
        std::sync::OnceLock::new();
    STATE.get_or_init(Default::default).hash_one(id)
}

/// The escaped label block of a quota. Empty labels are left out: to Prometheus an empty
/// label is no label.
fn labels(id: &QuotaId, meta: &QuotaMeta) -> Box<[u8]> {
    let key = key_label(id, meta);
    let key_id = id.key().map(crate::outbox::keys::key_digest);
    let all = [
        ("org_id", &*meta.org_id),
        ("alias", &*meta.alias),
        ("api_id", id.api().unwrap_or_default()),
        ("scope", id.scope().as_str()),
        ("key", &*key),
        ("key_id", key_id.as_deref().unwrap_or_default()),
    ];
    let present: Vec<(&str, &str)> = all.into_iter().filter(|(_, v)| !v.is_empty()).collect();
    let mut e = Exposition::with_capacity(160);
    e.labels(&present);
    e.into_bytes().into_boxed_slice()
}

/// What the labels depend on besides the id: the org and the alias (they may be edited).
fn label_hash(meta: &QuotaMeta) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    meta.org_id.hash(&mut h);
    meta.alias.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::quota::SessionMeta;

    fn sample(key: &str, alias: &str, at_ms: i64, max: i64, remaining: i64) -> Sample {
        Sample {
            id: QuotaId::Key(Arc::from(key)),
            meta: QuotaMeta::from(SessionMeta {
                key: Arc::from(key),
                org_id: "acme".into(),
                alias: alias.into(),
                ..SessionMeta::default()
            }),
            at_ms,
            quota_max: max,
            quota_remaining: remaining,
            quota_renews: 1_800_003_600,
            quota_renewal_rate: 3600,
        }
    }

    fn text(t: &QuotaTable, max_series: usize) -> (String, usize) {
        let (lines, dropped) = t.snapshot(1_800_000_000_000, max_series);
        let e = lines.write();
        (String::from_utf8(e.into_bytes()).expect("utf-8"), dropped)
    }

    const KEY: &str = "5e9d9544a1dcd60001d0ed20a1b2c3d4e5f60718";

    #[test]
    fn a_quota_has_its_gauges_rate_and_eta_with_masked_labels() {
        let mut t = QuotaTable::new(60_000);
        t.ingest(
            &[sample(KEY, "a\"b\nc", 1_800_000_000_000, 1000, 900)],
            true,
        );
        t.ingest(
            &[sample(KEY, "a\"b\nc", 1_800_000_010_000, 1000, 800)],
            true,
        );
        let (out, dropped) = text(&t, 1000);
        assert_eq!(dropped, 0);
        let labels = format!(
            "{{org_id=\"acme\",alias=\"a\\\"b\\nc\",scope=\"key\",key=\"5e9d…0718\",key_id=\"{}\"}}",
            crate::outbox::keys::key_digest(KEY)
        );
        for line in [
            format!("tykwatch_quota_used{labels} 200"),
            format!("tykwatch_quota_max{labels} 1000"),
            format!("tykwatch_quota_remaining{labels} 800"),
            format!("tykwatch_quota_usage_ratio{labels} 0.2"),
            format!("tykwatch_quota_renewal_seconds{labels} 3600"),
            format!("tykwatch_quota_consumption_rate{labels} 10.0"),
            format!("tykwatch_quota_exhaustion_seconds{labels} 80.0"),
        ] {
            assert!(out.contains(&format!("{line}\n")), "{line} not in\n{out}");
        }
        assert!(!out.contains(KEY));
    }

    #[test]
    fn the_series_cap_keeps_the_quotas_nearest_exhaustion() {
        let mut t = QuotaTable::new(60_000);
        let samples: Vec<Sample> = (0..10)
            .map(|i| sample(&format!("{KEY}{i}"), &format!("k{i}"), 1, 100, 100 - i * 10))
            .collect();
        t.ingest(&samples, true);
        // No rate yet: 5 series a quota (renewal known).
        let (out, dropped) = text(&t, 2 * SERIES_PER_QUOTA);
        assert_eq!(dropped, 8 * 5);
        assert!(out.contains("alias=\"k9\"") && out.contains("alias=\"k8\""));
        assert!(!out.contains("alias=\"k7\""));
    }

    #[test]
    fn threads_write_the_same_text_as_one() {
        let mut t = QuotaTable::new(60_000);
        let samples = |at, used: i64| -> Vec<Sample> {
            (0..1001)
                .map(|i| {
                    sample(
                        &format!("{KEY}{i}"),
                        &format!("k{i}"),
                        at,
                        1000,
                        1000 - used - i % 7,
                    )
                })
                .collect()
        };
        t.ingest(&samples(0, 10), true);
        t.ingest(&samples(1000, 20), true);
        let (lines, _) = t.snapshot(1_800_000_000_000, usize::MAX);
        let one = lines.write_with(1).into_bytes();
        assert_eq!(
            one.iter().filter(|b| **b == b'\n').count(),
            7 * 2 + 7 * 1001
        );
        for n in [2, 3, 4, 2000] {
            assert_eq!(lines.write_with(n).into_bytes(), one, "{n} threads");
        }
    }

    #[test]
    fn a_renewal_restarts_the_rate_and_a_complete_sweep_drops_gone_quotas() {
        let mut t = QuotaTable::new(60_000);
        t.ingest(&[sample(KEY, "", 0, 100, 50)], true);
        t.ingest(&[sample(KEY, "", 1000, 100, 40)], true);
        assert_eq!(t.rows.values().next().and_then(|r| r.rate), Some(10.0));
        t.ingest(&[sample(KEY, "", 2000, 100, 100)], true);
        assert_eq!(t.rows.values().next().and_then(|r| r.rate), None);
        t.ingest(&[], false);
        assert_eq!(t.len(), 1);
        t.ingest(&[], true);
        assert!(t.is_empty());
    }
}
