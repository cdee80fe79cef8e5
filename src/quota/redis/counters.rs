//! One cached session's quotas and the counters they read: which counter names a session has
//! (TykTechnologies/tyk `gateway/session_manager.go RedisQuotaExceeded`), and the live sample a
//! reading of them gives (remaining = `quota_max − counter`, renews = now + PTTL).

use std::sync::Arc;

use crate::quota::model::{Interner, QuotaId, QuotaMeta, Sample, same_period};
use crate::tyk::redis::layout::{self, HashMode};
use crate::tyk::session::SessionState;

/// One quota of a cached session: what the session stores, plus what the counter reads left.
/// A million keys keep one or two of these each, so it holds no name of its own (its id and
/// counter names are built per sweep from the session's suffix) and shares its meta with the
/// board.
pub(super) struct Quota {
    pub(super) meta: QuotaMeta,
    pub(super) quota_max: i64,
    /// The session's stored `quota_remaining` / `quota_renews`: shown as they are for quotas
    /// without a counter (unlimited, `rate_limit_pattern`); a hint otherwise.
    pub(super) stored_remaining: i64,
    pub(super) stored_renews: i64,
    pub(super) renewal_rate: i64,
    pub(super) counter: Counter,
    /// The window end (Unix s) last reported, kept while new readings stay within the period
    /// slack; `WINDOW_UNKNOWN` or `WINDOW_NEVER`.
    pub(super) window: i64,
    /// The counter at the last sweep (`NOT_READ` before): a drop means a new window.
    pub(super) last_used: i64,
}

/// Which counter a quota reads.
pub(super) enum Counter {
    /// Unlimited, not enforced, or counted under a `rate_limit_pattern`: nothing to read.
    None,
    /// `quota-<suffix>`: the session's counter (also a per-API limit's with an empty scope).
    Session,
    /// `quota-<scope>-<suffix>`.
    Scoped(Arc<str>),
    /// An org's candidate names (two while the hash mode is unknown); the first that exists.
    Named(Box<[Box<str>]>),
}

impl Counter {
    pub(super) fn count(&self) -> usize {
        match self {
            Counter::None => 0,
            Counter::Session | Counter::Scoped(_) => 1,
            Counter::Named(n) => n.len(),
        }
    }

    pub(super) fn push_names(&self, suffix: &str, out: &mut Names) {
        use std::fmt::Write;
        let q = layout::QUOTA_PREFIX;
        match self {
            Counter::None => return,
            Counter::Session => {
                let _ = write!(out.text, "{q}{suffix}");
            }
            Counter::Scoped(scope) => {
                let _ = write!(out.text, "{q}{scope}-{suffix}");
            }
            Counter::Named(names) => {
                for n in names {
                    out.push(n);
                }
                return;
            }
        }
        out.ends.push(out.text.len());
    }
}

/// Counter names of one sweep, in one buffer: 1.5M names as separate strings would be 1.5M
/// allocations a sweep.
#[derive(Default)]
pub(super) struct Names {
    pub(super) text: String,
    pub(super) ends: Vec<usize>,
}

impl Names {
    pub(super) fn push(&mut self, name: &str) {
        self.text.push_str(name);
        self.ends.push(self.text.len());
    }

    pub(super) fn len(&self) -> usize {
        self.ends.len()
    }

    pub(super) fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    pub(super) fn slice(&self, from: usize, to: usize) -> Vec<&str> {
        (from..to).map(|i| self.get(i)).collect()
    }
}

/// `Quota::last_used` before the counter was read.
pub(super) const NOT_READ: i64 = i64::MIN;

/// `Quota::window`: not known yet; the counter has no expiry (the quota never renews).
pub(super) const WINDOW_UNKNOWN: i64 = 0;
pub(super) const WINDOW_NEVER: i64 = -1;

pub(super) fn key_quotas(
    suffix: &Arc<str>,
    hashed: bool,
    s: &SessionState,
    interner: &mut Interner,
) -> Vec<Quota> {
    let counters = if layout::has_rate_limit_pattern(s) {
        Vec::new()
    } else {
        layout::key_counters(suffix, s)
    };
    Sample::from_stored_session(suffix.clone(), hashed, s, 0, interner)
        .into_iter()
        .map(|sample| {
            let api = sample.id.api();
            let counter = match counters.iter().find(|c| c.api_id.as_deref() == api) {
                None => Counter::None,
                Some(c) => match &c.scope {
                    None => Counter::Session,
                    Some(scope) => Counter::Scoped(interner.str(scope)),
                },
            };
            Quota::new(sample, counter)
        })
        .collect()
}

pub(super) fn org_quotas(org: &Arc<str>, s: &SessionState, mode: HashMode) -> Vec<Quota> {
    let sample = Sample::from_org_session(org, s, 0);
    let counter = if s.quota_max > 0 {
        Counter::Named(
            layout::org_counters(org, mode)
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
        )
    } else {
        Counter::None
    };
    vec![Quota::new(sample, counter)]
}

impl Quota {
    pub(super) fn new(sample: Sample, counter: Counter) -> Quota {
        Quota {
            meta: sample.meta,
            quota_max: sample.quota_max,
            stored_remaining: sample.quota_remaining,
            stored_renews: sample.quota_renews,
            renewal_rate: sample.quota_renewal_rate,
            counter,
            window: WINDOW_UNKNOWN,
            last_used: NOT_READ,
        }
    }

    /// Of this quota's counters (advancing `i` over them in `values`), the one that exists:
    /// its index and value.
    pub(super) fn chosen(&self, values: &[Option<i64>], i: &mut usize) -> Option<(usize, i64)> {
        let mut found = None;
        for _ in 0..self.counter.count() {
            let at = *i;
            *i += 1;
            if found.is_none()
                && let Some(v) = values.get(at).copied().flatten()
            {
                found = Some((at, v));
            }
        }
        found
    }

    /// The id of this quota of the session stored under `suffix` (what `Sample::from_*` gave).
    pub(super) fn id(&self, suffix: &Arc<str>, org: bool) -> QuotaId {
        match (&self.meta.api, org) {
            (_, true) => QuotaId::Org(suffix.clone()),
            (Some(api), false) => QuotaId::KeyApi(suffix.clone(), api.api_id.clone()),
            (None, false) => QuotaId::Key(suffix.clone()),
        }
    }

    /// The sample with the counter's live values: `used` (`None`: no counter, a window not
    /// started) and, when it was read, the PTTL.
    pub(super) fn live(
        &mut self,
        id: QuotaId,
        used: Option<i64>,
        pttl_ms: Option<i64>,
        now_ms: i64,
    ) -> Sample {
        let mut s = Sample {
            id,
            meta: self.meta.clone(),
            at_ms: now_ms,
            quota_max: self.quota_max,
            quota_remaining: self.stored_remaining,
            quota_renews: self.stored_renews,
            quota_renewal_rate: self.renewal_rate,
        };
        if matches!(self.counter, Counter::None) {
            return s;
        }
        let Some(used) = used else {
            // No counter: nothing used; the next request opens a window (the stored renews is
            // only a hint, the stored remaining a stale snapshot).
            s.quota_remaining = s.quota_max;
            self.window = WINDOW_UNKNOWN;
            self.last_used = NOT_READ;
            return s;
        };
        s.quota_remaining = (s.quota_max - used.max(0)).max(0);
        self.last_used = used;
        match pttl_ms {
            Some(p) if p > 0 => {
                let end = (now_ms + p + 999).div_euclid(1000);
                if self.window <= 0 || !same_period(self.window, end) {
                    self.window = end;
                }
            }
            Some(-1) => self.window = WINDOW_NEVER,
            Some(_) => self.window = WINDOW_UNKNOWN,
            None => {}
        }
        if self.window > 0 {
            s.quota_renews = self.window;
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tyk::session::SessionState;

    #[test]
    fn window_ends_stay_put_within_the_slack() {
        let s = SessionState::from_slice(br#"{"quota_max":100,"quota_renewal_rate":3600}"#)
            .expect("session");
        let mut q =
            key_quotas(&Arc::from("4b26bbf6"), true, &s, &mut Interner::default()).remove(0);
        assert!(matches!(q.counter, Counter::Session));
        let id = q.id(&Arc::from("4b26bbf6"), false);
        assert_eq!(id, QuotaId::Key(Arc::from("4b26bbf6")));
        let a = q.live(id.clone(), Some(30), Some(600_400), 1_000_000_000);
        assert_eq!((a.quota_remaining, a.quota_renews), (70, 1_000_601));
        // 1.7 s later, read again: ceil lands a second earlier, the same period.
        let b = q.live(id.clone(), Some(130), Some(598_750), 1_000_001_700);
        assert_eq!((b.quota_remaining, b.quota_renews), (0, 1_000_601));
        // Not read again: the known end stays.
        let b2 = q.live(id.clone(), Some(131), None, 1_000_003_000);
        assert_eq!(b2.quota_renews, 1_000_601);
        // The counter expired and a new window started: a new period.
        let c = q.live(id.clone(), Some(1), Some(3_600_000), 1_000_700_000);
        assert_eq!((c.quota_remaining, c.quota_renews), (99, 1_004_300));
        // No counter: a fresh window, the stored hint.
        let d = q.live(id.clone(), None, None, 1_000_800_000);
        assert_eq!(d.quota_remaining, 100);
        assert!(a.meta.hashed && a.meta.masked() == "4b26bbf6");
    }
}
