//! Which quotas the table shows and in what order: the `/` filter and the shift-letter sorts.
//!
//! `order` is the only O(n log n) step of the console; the state recomputes it only when the
//! board version, the filter or the sort changes, and rendering touches only the visible rows.

use std::cmp::Ordering;
use std::sync::Arc;

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
    pub const ALL: [SortKey; 8] = [
        SortKey::Used,
        SortKey::Name,
        SortKey::Org,
        SortKey::Remaining,
        SortKey::Eta,
        SortKey::Renews,
        SortKey::Scope,
        SortKey::Rate,
    ];

    /// The name `:sort` takes: the column's header, lower-cased (`used` is USAGE).
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Used => "usage",
            SortKey::Name => "name",
            SortKey::Org => "org",
            SortKey::Remaining => "remain",
            SortKey::Eta => "eta",
            SortKey::Renews => "renews",
            SortKey::Scope => "scope",
            SortKey::Rate => "req/min",
        }
    }

    /// A column by its header or a common other name (`used`, `%`, `remaining`, `rate`).
    pub fn parse(word: &str) -> Option<SortKey> {
        let w = word.to_ascii_lowercase();
        let k = match w.as_str() {
            "usage" | "used" | "%" | "used/max" => SortKey::Used,
            "name" | "alias" => SortKey::Name,
            "org" => SortKey::Org,
            "remain" | "remaining" => SortKey::Remaining,
            "eta" => SortKey::Eta,
            "renews" => SortKey::Renews,
            "scope" => SortKey::Scope,
            "req/min" | "rate" => SortKey::Rate,
            _ => return None,
        };
        Some(k)
    }

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

    /// A matcher for a pass over the board in its order (see [`Matcher`]).
    pub fn matcher(&self) -> Matcher<'_> {
        Matcher {
            filter: self,
            session: (0, false),
            api: (0, false),
        }
    }

    /// Every row this filter keeps is kept by `prev` too (`prev`'s text is in this one's, and
    /// neither inverts), so narrowing `prev`'s rows gives this filter's.
    pub fn narrows(&self, prev: &Filter) -> bool {
        !self.invert
            && !prev.invert
            && !prev.needle.is_empty()
            && self.needle.contains(prev.needle.as_str())
    }

    /// Against any lower-cased haystack (the Notifications view builds its own).
    pub fn matches_text(&self, haystack: &str) -> bool {
        self.needle.is_empty() || haystack.contains(&self.needle) != self.invert
    }
}

/// [`Filter::matches`] for a pass over many quotas: a key's quotas (top-level and per-API,
/// adjacent on the board) share one session, and runs of quotas share one interned API, so
/// the names of each are checked once per run rather than once per quota — each check reads
/// scattered memory, which is what a pass over 100k quotas waits on.
pub struct Matcher<'f> {
    filter: &'f Filter,
    /// The last session (by address) and whether its alias, key or org matched.
    session: (usize, bool),
    /// The last API (by address; 0 = none) and whether its name or id matched.
    api: (usize, bool),
}

impl Matcher<'_> {
    pub fn matches(&mut self, e: &Entry) -> bool {
        let f = self.filter;
        if f.needle.is_empty() {
            return true;
        }
        let s = &e.meta.session;
        let at = Arc::as_ptr(s) as usize;
        if self.session.0 != at {
            let hit = [&*s.alias, &*s.key, &*s.org_id]
                .iter()
                .any(|h| contains_folded(h, &f.needle));
            self.session = (at, hit);
        }
        let found = self.session.1 || {
            let at = e.meta.api.as_ref().map_or(0, |a| Arc::as_ptr(a) as usize);
            if at == 0 {
                false
            } else {
                if self.api.0 != at {
                    let hit = e.meta.api.as_ref().is_some_and(|a| {
                        contains_folded(&a.api_name, &f.needle)
                            || contains_folded(&a.api_id, &f.needle)
                    });
                    self.api = (at, hit);
                }
                self.api.1
            }
        };
        found != f.invert
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

/// Board indices of the rows to show, filtered and sorted, from scratch. Ties are broken by
/// name, then scope, then board position, so the order is stable across sweeps. The console
/// keeps an [`Orderer`] instead, which reuses what did not change.
pub fn order(board: &Board, filter: &Filter, sort: Sort) -> Vec<usize> {
    Orderer::default().order(board, filter, sort).to_vec()
}

/// The table's order with what it costs cached between sweeps: per-quota name ranks (the
/// tie-breaker and the NAME sort) and the org and scope ranks, kept while
/// `Board::names_version` stands; the rows the filter keeps, kept while the filter and the
/// names stand; and the previous order's keys, which a new sweep re-sorts where it left off
/// (most quotas keep their rank, and the adaptive merge sort is near linear on sorted runs).
#[derive(Debug, Default)]
pub struct Orderer {
    names_version: Option<u64>,
    /// Each board position's rank in the name order (label, scope, position).
    name_rank: Vec<u32>,
    /// Board positions in name order.
    by_name: Vec<u32>,
    /// Dense ranks of the org id and of (scope, API name), built when first sorted on.
    org_rank: Option<Vec<u32>>,
    scope_rank: Option<Vec<u32>>,
    /// The filter `rows` was computed for (with the names it was computed on).
    filtered_for: Option<Filter>,
    /// Board positions the filter keeps, ascending.
    rows: Vec<u32>,
    /// The filter and sort `keyed` is ordered for.
    keyed_for: Option<(Filter, Sort)>,
    /// Primary key, name rank and board position packed in one integer, in table order.
    keyed: Vec<u128>,
    order: Vec<usize>,
}

impl Orderer {
    /// The last order computed (board indices); empty before the first.
    pub fn current(&self) -> &[usize] {
        &self.order
    }

    /// The order for this board, filter and sort.
    pub fn order(&mut self, board: &Board, filter: &Filter, sort: Sort) -> &[usize] {
        let entries = board.entries();
        if self.names_version != Some(board.names_version())
            || self.name_rank.len() != entries.len()
        {
            // Both from scratch: the filter's pass (memory latency) runs beside the name
            // ranking (a sort) instead of after it.
            let threads = parallelism(entries.len());
            let rows = std::thread::scope(|s| {
                let filtering = (threads > 1 && !filter.is_empty()).then(|| {
                    s.spawn(|| {
                        let mut rows = Vec::new();
                        filter_rows(entries, filter, threads - 1, &mut rows);
                        rows
                    })
                });
                self.rank_names(entries);
                filtering.map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            });
            self.names_version = Some(board.names_version());
            if let Some(rows) = rows {
                self.rows = rows;
                self.filtered_for = Some(filter.clone());
            }
        }
        if self.filtered_for.as_ref() != Some(filter) {
            match &self.filtered_for {
                // Typing on: what the longer text keeps is among what the shorter one kept.
                Some(prev) if filter.narrows(prev) => {
                    let mut m = filter.matcher();
                    self.rows.retain(|&i| m.matches(&entries[i as usize]));
                }
                _ => filter_rows(entries, filter, parallelism(entries.len()), &mut self.rows),
            }
            self.filtered_for = Some(filter.clone());
            self.keyed_for = None;
        }
        self.order.clear();
        if sort.key == SortKey::Name {
            // The name rank is the order; no sort at all.
            if filter.is_empty() {
                self.order.extend(self.by_name.iter().map(|&i| i as usize));
            } else {
                let mut keep = vec![false; entries.len()];
                for &i in &self.rows {
                    keep[i as usize] = true;
                }
                let kept = self.by_name.iter().filter(|&&i| keep[i as usize]);
                self.order.extend(kept.map(|&i| i as usize));
            }
            if sort.descending {
                self.order.reverse();
            }
            return &self.order;
        }
        match sort.key {
            SortKey::Org if self.org_rank.is_none() => {
                self.org_rank = Some(dense_rank(entries, |e| (0, Text::new(&e.meta.org_id))));
            }
            SortKey::Scope if self.scope_rank.is_none() => {
                self.scope_rank = Some(dense_rank(entries, |e| {
                    (e.id.scope() as u8, Text::new(e.meta.api_name()))
                }));
            }
            _ => {}
        }
        let rank_of = match sort.key {
            SortKey::Org => self.org_rank.as_deref(),
            SortKey::Scope => self.scope_rank.as_deref(),
            _ => None,
        };
        let name_rank = &self.name_rank;
        let pack = |i: u32| {
            let e = &entries[i as usize];
            let primary = match rank_of {
                Some(r) => {
                    let r = u64::from(r[i as usize]);
                    if sort.descending { !r } else { r }
                }
                None => numeric(e, sort),
            };
            (u128::from(primary) << 64) | (u128::from(name_rank[i as usize]) << 32) | u128::from(i)
        };
        let same = self.keyed_for.as_ref() == Some(&(filter.clone(), sort));
        if same {
            // A new sweep: the previous order with new values, mostly still sorted.
            for k in self.keyed.iter_mut() {
                *k = pack(*k as u32);
            }
            if !self.keyed.is_sorted() {
                self.keyed.sort();
            }
        } else {
            self.keyed.clear();
            self.keyed.extend(self.rows.iter().map(|&i| pack(i)));
            sort_keys(&mut self.keyed);
            self.keyed_for = Some((filter.clone(), sort));
        }
        self.order
            .extend(self.keyed.iter().map(|&k| (k as u32) as usize));
        &self.order
    }

    /// New positions or names: every cached key goes.
    fn rank_names(&mut self, entries: &[Entry]) {
        let mut keyed: Vec<(Text, u8, u32)> = (0..entries.len())
            .map(|i| {
                let e = &entries[i];
                (Text::new(e.meta.label()), e.id.scope() as u8, i as u32)
            })
            .collect();
        keyed.sort_unstable();
        self.by_name.clear();
        self.by_name.extend(keyed.iter().map(|k| k.2));
        self.name_rank.clear();
        self.name_rank.resize(entries.len(), 0);
        for (rank, &i) in self.by_name.iter().enumerate() {
            self.name_rank[i as usize] = rank as u32;
        }
        self.org_rank = None;
        self.scope_rank = None;
        self.filtered_for = None;
        self.keyed_for = None;
    }
}

/// From this many quotas the filter runs on several threads.
const PARALLEL_FROM: usize = 20_000;

/// Threads for a pass over `n` quotas: up to four cores from [`PARALLEL_FROM`], else one.
fn parallelism(n: usize) -> usize {
    if n < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
    }
}

/// Sorts packed keys (all distinct: each holds its board position); a large list is sorted in
/// two halves on two threads and merged.
fn sort_keys(keys: &mut Vec<u128>) {
    if parallelism(keys.len()) < 2 {
        keys.sort_unstable();
        return;
    }
    let mid = keys.len() / 2;
    {
        let (a, b) = keys.split_at_mut(mid);
        std::thread::scope(|s| {
            s.spawn(|| a.sort_unstable());
            b.sort_unstable();
        });
    }
    let mut merged = Vec::with_capacity(keys.len());
    let (a, b) = keys.split_at(mid);
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            merged.push(a[i]);
            i += 1;
        } else {
            merged.push(b[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&a[i..]);
    merged.extend_from_slice(&b[j..]);
    *keys = merged;
}

/// Board positions `filter` keeps, ascending, into `out`. A pass over 100k quotas is bound by
/// memory latency — each quota's alias and key sit behind two pointers, scattered — so a large
/// board is split across up to four cores (scoped threads), each with misses of its own in
/// flight.
fn filter_rows(entries: &[Entry], filter: &Filter, threads: usize, out: &mut Vec<u32>) {
    out.clear();
    let threads = if filter.is_empty() { 1 } else { threads.max(1) };
    let share = entries.len().div_ceil(threads).max(1);
    let keep = |base: usize, part: &[Entry], into: &mut Vec<u32>| {
        let mut m = filter.matcher();
        into.extend(
            part.iter()
                .enumerate()
                .filter(|(_, e)| m.matches(e))
                .map(|(j, _)| (base + j) as u32),
        );
    };
    let mut parts: Vec<(usize, &[Entry], Vec<u32>)> = entries
        .chunks(share)
        .enumerate()
        .map(|(n, part)| (n * share, part, Vec::new()))
        .collect();
    match parts.split_first_mut() {
        Some((first, rest)) if !rest.is_empty() => std::thread::scope(|s| {
            for (base, part, into) in rest.iter_mut() {
                s.spawn(|| keep(*base, part, into));
            }
            keep(first.0, first.1, out);
        }),
        Some((first, _)) => keep(first.0, first.1, out),
        None => {}
    }
    for (_, _, rows) in parts.iter().skip(1) {
        out.extend_from_slice(rows);
    }
}

/// Each position's rank among the distinct values of `key` (equal values share a rank).
fn dense_rank<'e, K: Ord>(entries: &'e [Entry], key: impl Fn(&'e Entry) -> K) -> Vec<u32> {
    let mut keyed: Vec<(K, u32)> = (0..entries.len())
        .map(|i| (key(&entries[i]), i as u32))
        .collect();
    keyed.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let mut rank = vec![0u32; entries.len()];
    let mut r = 0u32;
    for w in 0..keyed.len() {
        if w > 0 && keyed[w].0 != keyed[w - 1].0 {
            r += 1;
        }
        rank[keyed[w].1 as usize] = r;
    }
    rank
}

/// The numeric sorts' key; rows without a value (unlimited, not consuming) go last in both
/// directions.
fn numeric(e: &Entry, sort: Sort) -> u64 {
    let v = match sort.key {
        SortKey::Used => e.usage_pct(),
        SortKey::Remaining => e.is_limited().then_some(e.quota_remaining as f64),
        SortKey::Eta => e.eta_secs().map(|s| s as f64),
        SortKey::Renews => e.is_limited().then_some(e.quota_renews as f64),
        SortKey::Rate => e.rate_per_min().filter(|_| e.is_limited()),
        SortKey::Name | SortKey::Org | SortKey::Scope => None,
    };
    match v {
        Some(v) if sort.descending => (!ordered_bits(v)).min(u64::MAX - 1),
        Some(v) => ordered_bits(v).min(u64::MAX - 1),
        None => u64::MAX,
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

    // The from-scratch order as it was before the `Orderer` (every sort rebuilt a string key
    // per row): the reference the cached and incremental orders are checked against.
    fn reference(board: &Board, filter: &Filter, sort: Sort) -> Vec<usize> {
        let entries = board.entries();
        let rows = (0..entries.len()).filter(|&i| filter.matches(&entries[i]));
        let desc = sort.descending;
        match sort.key {
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

    /// SplitMix64, local so the UI's tests need no other module.
    struct Mix(u64);
    impl Mix {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n.max(1)
        }
    }

    /// A random sample of key `k` (a key quota or a per-API limit), with a name that may be
    /// shared, empty, long or non-ASCII, and values that may be unlimited or exhausted.
    fn random_sample(r: &mut Mix, k: u64, api: bool, at_ms: i64) -> Sample {
        let key: Arc<str> = Arc::from(format!("org{}{k:08x}", k % 3));
        let alias = match r.below(6) {
            0 => String::new(),
            1 => format!("svc-{}", r.below(4)),
            2 => format!(
                "a-very-long-alias-shared-beyond-thirty-two-bytes-{}",
                r.below(3)
            ),
            3 => format!("Café-{}", r.below(5)),
            _ => format!("key-{k}"),
        };
        let max = [-1, 0, 100, 1000][r.below(4) as usize];
        let rem = if max > 0 {
            r.below(max as u64 + 1) as i64
        } else {
            0
        };
        let mut meta = meta(&alias, &format!("org{}", k % 3), &[]);
        let id = if api {
            let (id, name) =
                [("a1", "Orders API"), ("a2", "Payments API"), ("a3", "")][r.below(3) as usize];
            meta.api = Some(Arc::new(crate::quota::model::ApiMeta {
                api_id: Arc::from(id),
                api_name: Arc::from(name),
                rate: 0.0,
                per: 0.0,
            }));
            QuotaId::KeyApi(key, Arc::from(id))
        } else {
            QuotaId::Key(key)
        };
        Sample {
            id,
            meta,
            at_ms,
            quota_max: max,
            quota_remaining: rem,
            quota_renews: 1000 + r.below(3) as i64,
            quota_renewal_rate: 100,
        }
    }

    #[test]
    fn cached_and_incremental_orders_equal_the_reference() {
        let sorts = SortKey::ALL;
        let filters = ["", "orders", "!orders", "café", "svc", "!org1"];
        for seed in 0..12u64 {
            let mut r = Mix(seed);
            let mut b = Board::new(BoardSettings::default(), 0);
            let mut orderers: Vec<(Orderer, Filter, Sort)> = Vec::new();
            for (n, key) in sorts.iter().enumerate() {
                for desc in [false, true] {
                    let f = Filter::parse(filters[(n + desc as usize) % filters.len()]);
                    orderers.push((
                        Orderer::default(),
                        f,
                        Sort {
                            key: *key,
                            descending: desc,
                        },
                    ));
                }
            }
            let mut live: Vec<(u64, bool)> = (0..40).map(|k| (k, k % 3 == 0)).collect();
            for sweep in 0..30i64 {
                // Most sweeps change values only; some add, drop or rename quotas.
                match r.below(6) {
                    0 => live.push((100 + sweep as u64, r.below(2) == 0)),
                    1 if live.len() > 5 => {
                        live.remove(r.below(live.len() as u64) as usize);
                    }
                    _ => {}
                }
                b.begin_sweep();
                for &(k, api) in &live {
                    let mut rr =
                        Mix(seed * 1000 + k * 7 + if r.below(20) == 0 { sweep as u64 } else { 0 });
                    let mut s = random_sample(&mut rr, k, api, sweep * 2000);
                    s.quota_remaining = (s.quota_remaining - sweep * r.below(4) as i64).max(0);
                    b.ingest(s);
                }
                b.end_sweep(true);
                for (o, f, sort) in orderers.iter_mut() {
                    let got = o.order(&b, f, *sort).to_vec();
                    let want = reference(&b, f, *sort);
                    assert_eq!(got, want, "seed {seed} sweep {sweep} {f:?} {sort:?}");
                    assert_eq!(order(&b, f, *sort), want);
                }
                // One orderer that switches sort and filter between sweeps.
                let (o, _, _) = &mut orderers[0];
                let f = Filter::parse(filters[r.below(filters.len() as u64) as usize]);
                let sort = Sort {
                    key: sorts[r.below(8) as usize],
                    descending: r.below(2) == 0,
                };
                assert_eq!(o.order(&b, &f, sort).to_vec(), reference(&b, &f, sort));
            }
        }
    }

    /// Typing on narrows the rows kept so far; a board large enough to be filtered on several
    /// threads keeps the same rows, in order, as one pass would.
    #[test]
    fn typing_on_narrows_and_large_boards_filter_in_parallel() {
        let mut r = Mix(3);
        let mut b = Board::new(BoardSettings::default(), 0);
        b.begin_sweep();
        let orders = Arc::new(crate::quota::model::ApiMeta {
            api_id: Arc::from("a1"),
            api_name: Arc::from("Orders API"),
            rate: 0.0,
            per: 0.0,
        });
        for k in 0..(PARALLEL_FROM as u64 + 5_000) {
            let api = r.below(3) == 0;
            let s = random_sample(&mut r, k, api, 0);
            // Some keys' quotas share their session (as the poller hands them over) and an
            // interned API, which the matcher checks once per run.
            if !api && r.below(2) == 0 {
                let mut per_api = s.clone();
                per_api.meta.api = Some(orders.clone());
                per_api.id =
                    QuotaId::KeyApi(Arc::from(s.id.key().unwrap_or_default()), Arc::from("a1"));
                b.ingest(s);
                b.ingest(per_api);
            } else {
                b.ingest(s);
            }
        }
        b.end_sweep(true);
        let sort = Sort::default();
        let mut o = Orderer::default();
        for typed in [
            "o", "or", "ord", "orde", "orders", "ord", "!ord", "!orde", "svc", "!orders", "org1",
        ] {
            let f = Filter::parse(typed);
            assert_eq!(
                o.order(&b, &f, sort).to_vec(),
                reference(&b, &f, sort),
                "{typed}"
            );
        }
        let f = Filter::parse("orders");
        let mut rows = Vec::new();
        filter_rows(b.entries(), &f, 2, &mut rows);
        let one_pass: Vec<u32> = (0..b.entries().len() as u32)
            .filter(|&i| f.matches(&b.entries()[i as usize]))
            .collect();
        assert!(!one_pass.is_empty() && one_pass.len() < b.entries().len());
        assert_eq!(rows, one_pass);
        let mut keys: Vec<u128> = (0..PARALLEL_FROM as u128 + 3)
            .map(|i| (i * 7919) % 100_003)
            .collect();
        let mut want = keys.clone();
        want.sort_unstable();
        sort_keys(&mut keys);
        assert_eq!(keys, want);
        assert!(Filter::parse("orders").narrows(&Filter::parse("ord")));
        assert!(!Filter::parse("!orders").narrows(&Filter::parse("!ord")));
        assert!(!Filter::parse("ord").narrows(&Filter::parse("orders")));
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
