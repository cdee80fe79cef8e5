//! A bounded, time-pruned usage history for one quota.
//!
//! Memory is the constraint (100k quotas × 10 minutes in ≤ 256 MB, a million in ≤ 1 GB), so
//! points are stored in one ring buffer of `u32`s: tenths of a second since the board's epoch and
//! `used` — 8 bytes a point while every `used` fits a `u32` (all real quotas), 12 once one does
//! not (`used` as two halves; no padding either way) — at most `MAX_POINTS` of them:
//! samples closer together than `spacing` replace the last point instead of adding one, so the
//! resolution is `max(poll interval, retention / MAX_POINTS)`.

use crate::clock::UnixMs;

/// Points kept per quota at most.
pub const MAX_POINTS: usize = 120;

#[derive(Debug, Clone, Default)]
pub struct History {
    /// Points of `stride()` words: time, then `used` (one word, or low and high halves).
    words: Vec<u32>,
    /// Index of the oldest point once the ring is full.
    head: u32,
    /// Points are 3 words: some `used` did not fit a `u32`.
    wide: bool,
}

/// Converts between Unix ms and the compact time of a history point.
#[derive(Debug, Clone, Copy)]
pub struct Epoch(pub UnixMs);

impl Epoch {
    pub fn encode(self, at_ms: UnixMs) -> u32 {
        ((at_ms - self.0).max(0) / 100).min(u32::MAX as i64) as u32
    }
    pub fn decode(self, t: u32) -> UnixMs {
        self.0 + t as i64 * 100
    }
}

impl History {
    fn stride(&self) -> usize {
        if self.wide { 3 } else { 2 }
    }

    pub fn len(&self) -> usize {
        self.words.len() / self.stride()
    }

    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    fn physical(&self, i: usize) -> usize {
        (self.head as usize + i) % self.len()
    }

    /// The point in slot `p`.
    fn read(&self, p: usize) -> (u32, i64) {
        let k = p * self.stride();
        let w = &self.words[k..k + self.stride()];
        let used = if self.wide {
            (w[1] as u64 | (w[2] as u64) << 32) as i64
        } else {
            w[1] as i64
        };
        (w[0], used)
    }

    fn write(&mut self, p: usize, t: u32, used: i64) {
        let k = p * self.stride();
        self.words[k] = t;
        self.words[k + 1] = used as u32;
        if self.wide {
            self.words[k + 2] = (used as u64 >> 32) as u32;
        }
    }

    /// Switches to 3-word points when `used` does not fit one word.
    fn make_room_for(&mut self, used: i64) {
        if self.wide || u32::try_from(used).is_ok() {
            return;
        }
        let points: Vec<(u32, i64)> = (0..self.len()).map(|p| self.read(p)).collect();
        self.wide = true;
        self.words = Vec::with_capacity(self.words.capacity() / 2 * 3);
        for (t, u) in points {
            let u = u as u64;
            self.words.extend([t, u as u32, (u >> 32) as u32]);
        }
    }

    /// The i-th oldest point: (time, used).
    pub fn get(&self, i: usize) -> Option<(u32, i64)> {
        (i < self.len()).then(|| self.read(self.physical(i)))
    }

    pub fn last(&self) -> Option<(u32, i64)> {
        self.len().checked_sub(1).and_then(|i| self.get(i))
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        (0..self.len()).filter_map(|i| self.get(i))
    }

    /// Adds a point. `spacing` and `retention` are in tenths of a second.
    pub fn push(&mut self, t: u32, used: i64, spacing: u32, retention: u32) {
        self.make_room_for(used);
        let n = self.len();
        // Keep the newest sample always; replace the last point while it is within `spacing`
        // of the one before it, so a run of fast samples leaves one point per `spacing`. A flat
        // run (an idle key: most of a large fleet) keeps only its first and newest points —
        // the line between them is the same, and an idle quota costs two points, not 120.
        if n >= 2 {
            let (prev_t, prev_used) = self.get(n - 2).unwrap_or((0, 0));
            let (_, last_used) = self.last().unwrap_or((0, 0));
            let flat = used == last_used && used == prev_used;
            if flat || t.saturating_sub(prev_t) < spacing {
                let p = self.physical(n - 1);
                self.write(p, t, used);
                self.prune(t, retention);
                return;
            }
        }
        if n < MAX_POINTS {
            if self.head != 0 {
                self.linearize();
            }
            if self.words.len() == self.words.capacity() {
                // Grow by half towards MAX_POINTS, never past it: Vec's doubling would leave up
                // to half of every buffer unused, which is most of the memory budget.
                let extra = (n / 2).clamp(2, MAX_POINTS - n);
                self.words.reserve_exact(extra * self.stride());
            }
            self.words.extend([t, 0, 0][..self.stride()].iter());
            self.write(n, t, used);
        } else {
            let p = self.head as usize;
            self.write(p, t, used);
            self.head = ((p + 1) % n) as u32;
        }
        self.prune(t, retention);
    }

    /// Drops points older than `retention` before `now`, keeping at least the newest one.
    fn prune(&mut self, now: u32, retention: u32) {
        let cutoff = now.saturating_sub(retention);
        let stale = (0..self.len().saturating_sub(1))
            .take_while(|&i| self.get(i).is_some_and(|(t, _)| t < cutoff))
            .count();
        if stale == 0 {
            return;
        }
        self.linearize();
        self.words.drain(..stale * self.stride());
    }

    fn linearize(&mut self) {
        if self.head != 0 {
            let k = self.head as usize * self.stride();
            self.words.rotate_left(k);
            self.head = 0;
        }
    }

    /// Consumption in requests per minute over the last `window` (tenths of a second), counted
    /// only since the last renewal (a drop in `used`). `None` without two points to compare.
    pub fn rate_per_min(&self, window: u32) -> Option<f64> {
        let n = self.len();
        let (t_last, u_last) = self.last()?;
        let cutoff = t_last.saturating_sub(window);
        let mut first = None;
        // Walk back from the newest point until the window or a renewal ends the run.
        for i in (0..n - 1).rev() {
            let (t, u) = self.get(i)?;
            let (_, u_next) = self.get(i + 1)?;
            if u > u_next || t < cutoff {
                break;
            }
            first = Some((t, u));
        }
        let (t0, u0) = first?;
        let dt = t_last.saturating_sub(t0);
        (dt > 0).then(|| (u_last - u0) as f64 / (dt as f64 / 600.0))
    }

    /// Bytes held on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.words.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u32 = 10;

    #[test]
    fn ring_keeps_newest_points_in_order() {
        let mut h = History::default();
        for i in 0..(MAX_POINTS as u32 + 30) {
            h.push(i * 20 * SEC, i as i64, 5 * SEC, u32::MAX);
        }
        assert_eq!(h.len(), MAX_POINTS);
        let pts: Vec<_> = h.iter().collect();
        assert_eq!(pts[0].1, 30);
        assert_eq!(pts.last().unwrap().1, MAX_POINTS as i64 + 29);
        assert!(pts.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(h.words.capacity() <= MAX_POINTS * 2);
    }

    #[test]
    fn a_used_past_u32_widens_the_points_and_keeps_them() {
        let mut h = History::default();
        for i in 0..5u32 {
            h.push(i * 10 * SEC, i as i64, SEC, u32::MAX);
        }
        assert!(!h.wide);
        for (i, u) in [1 << 40, -1, i64::MAX, i64::MIN].into_iter().enumerate() {
            h.push((60 + i as u32 * 10) * SEC, u, SEC, u32::MAX);
        }
        assert!(h.wide);
        let pts: Vec<i64> = h.iter().map(|(_, u)| u).collect();
        assert_eq!(pts, [0, 1, 2, 3, 4, 1 << 40, -1, i64::MAX, i64::MIN]);
        for i in 0..(MAX_POINTS as u32 + 10) {
            h.push((200 + i * 10) * SEC, i as i64, SEC, u32::MAX);
        }
        assert_eq!(h.len(), MAX_POINTS);
        assert_eq!(
            h.last(),
            Some((
                (200 + (MAX_POINTS as u32 + 9) * 10) * SEC,
                MAX_POINTS as i64 + 9
            ))
        );
    }

    #[test]
    fn close_samples_replace_the_last_point() {
        let mut h = History::default();
        for i in 0..100u32 {
            h.push(i * SEC, i as i64, 5 * SEC, u32::MAX);
        }
        // committed points lie at least `spacing - 1 sample` apart, plus the newest
        assert!(h.len() <= 26, "{}", h.len());
        assert!(
            h.iter()
                .collect::<Vec<_>>()
                .windows(2)
                .rev()
                .skip(1)
                .all(|w| w[1].0 - w[0].0 >= 4 * SEC)
        );
        assert_eq!(h.last(), Some((99 * SEC, 99)));
    }

    #[test]
    fn a_flat_run_keeps_its_first_and_newest_points() {
        let mut h = History::default();
        h.push(0, 5, 2 * SEC, 600 * SEC);
        for i in 1..100u32 {
            h.push(i * 2 * SEC, 5, 2 * SEC, 600 * SEC);
        }
        assert_eq!(h.iter().collect::<Vec<_>>(), vec![(0, 5), (198 * SEC, 5)]);
        assert_eq!(h.rate_per_min(300 * SEC), Some(0.0));
        // Movement starts a new point; the flat run stays as it was.
        h.push(200 * SEC, 9, 2 * SEC, 600 * SEC);
        assert_eq!(h.len(), 3);
        assert!(h.heap_bytes() <= 4 * 8, "an idle quota costs a few points");
    }

    #[test]
    fn prunes_by_retention() {
        let mut h = History::default();
        for i in 0..60u32 {
            h.push(i * 10 * SEC, i as i64, SEC, 100 * SEC);
        }
        assert!(h.iter().all(|(t, _)| t >= 590 * SEC - 100 * SEC));
    }

    #[test]
    fn rate_ignores_points_before_a_renewal() {
        let mut h = History::default();
        // 60 requests a minute, then a renewal, then 120 a minute
        for i in 0..10u32 {
            h.push(i * 10 * SEC, 10 * i as i64, SEC, u32::MAX);
        }
        for i in 0..5u32 {
            h.push((100 + i * 10) * SEC, 20 * i as i64, SEC, u32::MAX);
        }
        let r = h.rate_per_min(600 * SEC).unwrap();
        assert!((r - 120.0).abs() < 1e-9, "{r}");
        let mut one = History::default();
        one.push(0, 5, SEC, u32::MAX);
        assert_eq!(one.rate_per_min(600 * SEC), None);
    }
}
