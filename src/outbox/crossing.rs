//! What the monitor produces and the ledger keeps: a threshold crossing, and a ledger row.

use std::fmt;
use std::sync::Arc;

use crate::clock::UnixMs;
use crate::quota::{QuotaId, QuotaMeta};

/// A threshold crossed by a quota in a period: one notification per channel.
#[derive(Clone, PartialEq)]
pub struct Crossing {
    /// Ledger identity ([`quota_key`]); never the raw key.
    pub quota_key: Arc<str>,
    pub quota_id: QuotaId,
    pub meta: QuotaMeta,
    /// The quota's `quota_renews` (Unix seconds): identifies the period.
    pub period: i64,
    pub threshold: f64,
    /// Lower thresholds passed by the same sample, recorded as covered (no notification).
    pub covered: Vec<f64>,
    pub usage_pct: f64,
    pub quota_max: i64,
    pub quota_remaining: i64,
    pub quota_renews: i64,
    /// When the monitor saw it.
    pub at_ms: UnixMs,
    /// Monotonic across restarts (seeded from the store); receivers order by it.
    pub sequence: i64,
}

/// Masks the key: `QuotaId` and `QuotaMeta` derive `Debug` with the raw key inside.
impl fmt::Debug for Crossing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Crossing")
            .field("quota_key", &self.quota_key)
            .field("quota_id", &format_args!("{}", self.quota_id))
            .field("period", &self.period)
            .field("threshold", &self.threshold)
            .field("covered", &self.covered)
            .field("usage_pct", &self.usage_pct)
            .field("quota_max", &self.quota_max)
            .field("quota_remaining", &self.quota_remaining)
            .field("at_ms", &self.at_ms)
            .field("sequence", &self.sequence)
            .finish()
    }
}

/// A ledger row's meaning: the threshold was notified, or passed together with a higher one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LedgerState {
    Fired,
    Covered,
}

impl LedgerState {
    pub fn as_str(self) -> &'static str {
        match self {
            LedgerState::Fired => "fired",
            LedgerState::Covered => "covered",
        }
    }
}

/// One ledger row.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    pub quota_key: String,
    pub period: i64,
    pub threshold: f64,
    pub state: LedgerState,
    pub usage_pct: f64,
    pub fired_at: UnixMs,
}
