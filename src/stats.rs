//! Counters and histograms the engine's parts keep for `/metrics` (`crate::metrics` reads them
//! at scrape time). A leaf module: the dispatcher and the intake count here without depending on
//! the metrics module, which depends on them.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A histogram with fixed upper bounds (seconds), cumulative when exposed.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    bounds: &'static [f64],
    /// Observations `<=` each bound (not cumulative); the last slot is `+Inf`.
    counts: Vec<u64>,
    sum: f64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
        }
    }

    pub fn observe(&mut self, v: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| v <= *b)
            .unwrap_or(self.bounds.len());
        self.counts[i] += 1;
        if v.is_finite() {
            self.sum += v;
        }
    }

    pub fn bounds(&self) -> &'static [f64] {
        self.bounds
    }

    /// `(upper bound, cumulative count)`, ending with `(+Inf, count)`.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut total = 0;
        let mut out = Vec::with_capacity(self.counts.len());
        for (i, c) in self.counts.iter().enumerate() {
            total += c;
            out.push((self.bounds.get(i).copied().unwrap_or(f64::INFINITY), total));
        }
        out
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }
}

/// Upper bounds for network round trips: a webhook or e-mail attempt (s).
pub const ATTEMPT_SECONDS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// What the dispatcher counts: attempts by channel and outcome, and their latency by channel
/// kind. The channels are the configured ones, so the label sets are bounded.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    inner: Mutex<DeliveryInner>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct DeliveryInner {
    /// `(channel, outcome)` → attempts.
    pub outcomes: BTreeMap<(String, &'static str), u64>,
    /// Channel kind (`tyk`, `webhook`, `email`) → attempt latency.
    pub latency: BTreeMap<&'static str, Histogram>,
}

impl DeliveryStats {
    pub fn record(&self, channel: &str, kind: &'static str, outcome: &'static str, secs: f64) {
        let mut s = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *s.outcomes.entry((channel.to_owned(), outcome)).or_insert(0) += 1;
        s.latency
            .entry(kind)
            .or_insert_with(|| Histogram::new(ATTEMPT_SECONDS))
            .observe(secs);
    }

    pub fn snapshot(&self) -> DeliveryInner {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_histogram_counts_cumulatively_up_to_inf() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 3.0] {
            h.observe(v);
        }
        assert_eq!(h.cumulative(), vec![(0.1, 2), (1.0, 3), (f64::INFINITY, 4)]);
        assert_eq!(h.count(), 4);
        assert!((h.sum() - 3.65).abs() < 1e-9);
    }
}
