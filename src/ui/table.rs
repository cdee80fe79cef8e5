//! Which quotas the table shows and in what order: the `/` filter and the shift-letter sorts.
//!
//! `order` is the only O(n log n) step of the console; the state recomputes it only when the
//! board version, the filter or the sort changes, and rendering touches only the visible rows.

use std::cmp::Ordering;

use crate::quota::board::{Board, Entry};
use crate::quota::model::{Band, Scope};

/// A sortable column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    /// % used.
    Used,
    Name,
    Org,
    Remaining,
    /// Time to exhaustion.
    Eta,
    /// Time until the quota renews.
    Renews,
    Scope,
    /// Consumption rate.
    Rate,
}

impl SortKey {
    /// The first press sorts the way that puts what needs attention on top.
    pub fn default_descending(self) -> bool {
        matches!(self, SortKey::Used | SortKey::Rate)
    }

    pub fn label(self) -> &'static str {
        match self {
            SortKey::Used => "% used",
            SortKey::Name => "name",
            SortKey::Org => "org",
            SortKey::Remaining => "remaining",
            SortKey::Eta => "time to exhaustion",
            SortKey::Renews => "renews in",
            SortKey::Scope => "scope",
            SortKey::Rate => "rate",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            key: SortKey::Used,
            descending: true,
        }
    }
}

impl Sort {
    /// k9s: a new column sorts its default way, the same column again reverses.
    pub fn toggle(self, key: SortKey) -> Sort {
        if self.key == key {
            Sort {
                key,
                descending: !self.descending,
            }
        } else {
            Sort {
                key,
                descending: key.default_descending(),
            }
        }
    }
}

/// The `/` filter: a case-insensitive substring of alias, key, org, API name or id; a leading
/// `!` keeps the rows that do not match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    text: String,
    needle: String,
    invert: bool,
}

impl Filter {
    pub fn parse(text: &str) -> Filter {
        let text = text.trim();
        let (invert, rest) = match text.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, text),
        };
        let needle = rest.to_lowercase();
        if needle.is_empty() {
            return Filter::default();
        }
        Filter {
            text: text.to_string(),
            needle,
            invert,
        }
    }

    /// As typed (with the `!`); empty when there is no filter.
    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn is_empty(&self) -> bool {
        self.needle.is_empty()
    }

    pub fn matches(&self, e: &Entry) -> bool {
        if self.needle.is_empty() {
            return true;
        }
        let found = e
            .meta
            .search_fields()
            .iter()
            .any(|f| contains_folded(f, &self.needle));
        found != self.invert
    }

    /// Against any lower-cased haystack (the Notifications view builds its own).
    pub fn matches_text(&self, haystack: &str) -> bool {
        self.needle.is_empty() || haystack.contains(&self.needle) != self.invert
    }
}

/// True when `hay`, case-folded, contains `needle` (already lower-cased). No allocation for
/// ASCII text: the board keeps no lower-cased copy of every quota's names (a million quotas).
fn contains_folded(hay: &str, needle: &str) -> bool {
    if !(hay.is_ascii() && needle.is_ascii()) {
        return hay.to_lowercase().contains(needle);
    }
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    let Some(last) = h.len().checked_sub(n.len()) else {
        return false;
    };
    let Some(&first) = n.first() else {
        return true;
    };
    memchr::memchr2_iter(first, first.to_ascii_uppercase(), &h[..=last])
        .any(|i| h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// Board indices of the rows to show, filtered and sorted. Ties are broken by name then id, so
/// the order is stable across sweeps.
pub fn order(board: &Board, filter: &Filter, sort: Sort) -> Vec<usize> {
    let entries = board.entries();
    let rows = (0..entries.len()).filter(|&i| filter.matches(&entries[i]));
    let desc = sort.descending;
    match sort.key {
        // The name is already the tie-breaker; a constant key leaves the order to it.
        SortKey::Name if desc => {
            let mut o = by_ord(entries, rows, false, |_| ());
            o.reverse();
            o
        }
        SortKey::Name => by_ord(entries, rows, false, |_| ()),
        SortKey::Org => by_ord(entries, rows, desc, |e| Text::new(&e.meta.org_id)),
        SortKey::Scope => by_ord(entries, rows, desc, |e| {
            (e.id.scope(), Text::new(e.meta.api_name()))
        }),
        SortKey::Used => by_num(entries, rows, desc, |e| e.usage_pct()),
        SortKey::Remaining => by_num(entries, rows, desc, |e| {
            e.is_limited().then_some(e.quota_remaining as f64)
        }),
        SortKey::Eta => by_num(entries, rows, desc, |e| e.eta_secs().map(|s| s as f64)),
        SortKey::Renews => by_num(entries, rows, desc, |e| {
            e.is_limited().then_some(e.quota_renews as f64)
        }),
        SortKey::Rate => by_num(entries, rows, desc, |e| {
            e.is_limited().then_some(e.rate_per_min()?)
        }),
    }
}

/// Bytes of a string sort key compared inline.
const INLINE: usize = 32;

/// A string sort key that compares its first 32 bytes inline: at 100k rows the sort is bound
/// by memory, and most comparisons (aliases are usually shorter) are decided without touching
/// the string's heap bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Text<'a> {
    prefix: [u64; INLINE / 8],
    full: &'a str,
}

impl<'a> Text<'a> {
    fn new(full: &'a str) -> Text<'a> {
        let mut buf = [0u8; INLINE];
        let n = full.len().min(INLINE);
        buf[..n].copy_from_slice(&full.as_bytes()[..n]);
        let mut prefix = [0u64; INLINE / 8];
        for (w, chunk) in prefix.iter_mut().zip(buf.chunks_exact(8)) {
            *w = u64::from_be_bytes(chunk.try_into().unwrap_or([0; 8]));
        }
        Text { prefix, full }
    }
}

impl Ord for Text<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.prefix.cmp(&other.prefix).then_with(|| {
            // Up to INLINE bytes the prefix holds the whole string (zero-padded): the length
            // decides, without reading the heap bytes.
            if self.full.len() <= INLINE && other.full.len() <= INLINE {
                self.full.len().cmp(&other.full.len())
            } else {
                self.full.cmp(other.full)
            }
        })
    }
}

impl PartialOrd for Text<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// An f64 as a u64 with the same order (total_cmp's), so the numeric sorts compare integers.
fn ordered_bits(v: f64) -> u64 {
    let b = v.to_bits();
    if b >> 63 == 1 { !b } else { b | 1 << 63 }
}

/// Ties are broken by name, then scope, then board position (stable while no quota leaves),
/// so the order is the same sweep after sweep without dereferencing ids in the hot loop.
fn tie(entries: &[Entry], a: (Text, usize), b: (Text, usize)) -> Ordering {
    a.0.cmp(&b.0)
        .then_with(|| entries[a.1].id.scope().cmp(&entries[b.1].id.scope()))
        .then_with(|| a.1.cmp(&b.1))
}

fn by_ord<'e, K: Ord>(
    entries: &'e [Entry],
    rows: impl Iterator<Item = usize>,
    desc: bool,
    key: impl Fn(&'e Entry) -> K,
) -> Vec<usize> {
    let mut keyed: Vec<(K, Text, usize)> = rows
        .map(|i| {
            let e = &entries[i];
            (key(e), Text::new(e.meta.label()), i)
        })
        .collect();
    keyed.sort_unstable_by(|a, b| {
        let o = a.0.cmp(&b.0);
        let o = if desc { o.reverse() } else { o };
        o.then_with(|| tie(entries, (a.1, a.2), (b.1, b.2)))
    });
    keyed.into_iter().map(|k| k.2).collect()
}

/// Numeric keys; rows without a value (unlimited, not consuming) go last in both directions.
fn by_num(
    entries: &[Entry],
    rows: impl Iterator<Item = usize>,
    desc: bool,
    key: impl Fn(&Entry) -> Option<f64>,
) -> Vec<usize> {
    let mut keyed: Vec<(u64, Text, usize)> = rows
        .map(|i| {
            let e = &entries[i];
            let k = match key(e) {
                Some(v) if desc => (!ordered_bits(v)).min(u64::MAX - 1),
                Some(v) => ordered_bits(v).min(u64::MAX - 1),
                None => u64::MAX,
            };
            (k, Text::new(e.meta.label()), i)
        })
        .collect();
    keyed.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| tie(entries, (a.1, a.2), (b.1, b.2)))
    });
    keyed.into_iter().map(|k| k.2).collect()
}

/// What the header counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub watched: usize,
    /// At or over the lowest of the quota's thresholds (trigger limits ∪ global).
    pub over: usize,
    pub exhausted: usize,
}

/// One pass over the board, without allocating per entry: a quota is over a threshold exactly
/// when its usage reaches the lowest one (`Entry::highest_threshold_reached(global).is_some()`).
pub fn counts(board: &Board, global: &[f64]) -> Counts {
    let global_min = lowest(global.iter().copied());
    let mut c = Counts {
        watched: board.len(),
        ..Counts::default()
    };
    for e in board.entries() {
        let Some(p) = e.usage_pct() else { continue };
        if e.band() == Band::Exhausted {
            c.exhausted += 1;
        }
        let own = lowest(e.meta.trigger_limits.iter().copied());
        let min = match (own, global_min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if min.is_some_and(|m| p >= m) {
            c.over += 1;
        }
    }
    c
}

fn lowest(it: impl Iterator<Item = f64>) -> Option<f64> {
    it.filter(|t| *t > 0.0).min_by(f64::total_cmp)
}

/// First visible row: unchanged while the cursor stays in view, never past the end of the list.
pub fn clamp_offset(offset: usize, cursor: usize, rows: usize, n: usize) -> usize {
    let rows = rows.max(1);
    let o = offset.min(n.saturating_sub(rows));
    if cursor < o {
        cursor
    } else if cursor >= o + rows {
        cursor + 1 - rows
    } else {
        o
    }
}

/// The scope column: `key`, the API name (or id) of a per-API limit, `org`.
pub fn scope_label(e: &Entry) -> &str {
    match e.id.scope() {
        Scope::Key => "key",
        Scope::Org => "org",
        Scope::Api if !e.meta.api_name().is_empty() => e.meta.api_name(),
        Scope::Api => e.meta.api_id(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::quota::board::BoardSettings;
    use crate::quota::model::{QuotaId, QuotaMeta, Sample, SessionMeta};

    fn meta(alias: &str, org: &str, triggers: &[f64]) -> QuotaMeta {
        QuotaMeta::from(SessionMeta {
            alias: alias.into(),
            org_id: org.into(),
            trigger_limits: Arc::new(triggers.to_vec()),
            ..SessionMeta::default()
        })
    }

    fn board() -> Board {
        let mut b = Board::new(BoardSettings::default(), 0);
        b.begin_sweep();
        for (k, alias, org, max, rem) in [
            ("k1", "Alpha", "acme", 100, 10),
            ("k2", "beta", "globex", 100, 50),
            ("k3", "gamma", "acme", -1, 0),
            ("k4", "delta", "initech", 100, 0),
            ("k5", "eps", "acme", 100, 50),
        ] {
            b.ingest(Sample {
                id: QuotaId::Key(Arc::from(k)),
                meta: meta(alias, org, &[]),
                at_ms: 0,
                quota_max: max,
                quota_remaining: rem,
                quota_renews: 100,
                quota_renewal_rate: 100,
            });
        }
        b.end_sweep(true);
        b
    }

    fn names(b: &Board, o: &[usize]) -> Vec<String> {
        o.iter()
            .map(|&i| b.entries()[i].meta.alias.to_string())
            .collect()
    }

    #[test]
    fn sorts_with_unlimited_last_and_stable_ties() {
        let b = board();
        let f = Filter::default();
        let used = order(&b, &f, Sort::default());
        assert_eq!(names(&b, &used), ["delta", "Alpha", "beta", "eps", "gamma"]);
        let asc = order(&b, &f, Sort::default().toggle(SortKey::Used));
        assert_eq!(names(&b, &asc), ["beta", "eps", "Alpha", "delta", "gamma"]);
        let name = order(&b, &f, Sort::default().toggle(SortKey::Name));
        assert_eq!(names(&b, &name), ["Alpha", "beta", "delta", "eps", "gamma"]);
    }

    #[test]
    fn packed_keys_keep_the_order() {
        let vals = [-1e9, -2.5, -0.0, 0.0, 1e-9, 3.0, 85.0, 1e12];
        for w in vals.windows(2) {
            assert!(ordered_bits(w[0]) < ordered_bits(w[1]), "{w:?}");
        }
        let mut t = [
            "mobile-app-12",
            "mobile-app-1",
            "a",
            "",
            "mobile-app-123456789",
            "mobile-app-12345678",
        ];
        let mut by_text = t;
        by_text.sort_by_key(|s| Text::new(s));
        t.sort();
        assert_eq!(by_text, t);
        let b = board();
        let desc = order(
            &b,
            &Filter::default(),
            Sort {
                key: SortKey::Name,
                descending: true,
            },
        );
        assert_eq!(names(&b, &desc), ["gamma", "eps", "delta", "beta", "Alpha"]);
    }

    #[test]
    fn filter_and_inverse() {
        let b = board();
        let f = Filter::parse("ACME");
        assert_eq!(order(&b, &f, Sort::default()).len(), 3);
        let inv = Filter::parse("!acme");
        assert_eq!(
            names(&b, &order(&b, &inv, Sort::default())),
            ["delta", "beta"]
        );
        assert!(Filter::parse("!").is_empty());
        assert!(Filter::parse("  ").is_empty());
    }

    #[test]
    fn counts_use_the_lowest_threshold() {
        let b = board();
        let c = counts(&b, &[80.0]);
        assert_eq!((c.watched, c.over, c.exhausted), (5, 2, 1));
        for e in b.entries() {
            let by_entry = e.highest_threshold_reached(&[80.0]).is_some();
            let p = e.usage_pct().unwrap_or(0.0);
            assert_eq!(by_entry, e.is_limited() && p >= 80.0);
        }
        assert_eq!(counts(&b, &[]).over, 0);
    }
}
