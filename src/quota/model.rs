//! What a quota is: a key's top-level quota, a key's non-empty per-API limit, or an
//! organisation's quota — each read and monitored on its own (DESIGN.md "Monitor semantics").

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::clock::UnixMs;
use crate::tyk::session::SessionState;

/// Which quota a sample belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QuotaId {
    Key(Arc<str>),
    KeyApi(Arc<str>, Arc<str>),
    Org(Arc<str>),
}

impl QuotaId {
    pub fn scope(&self) -> Scope {
        match self {
            QuotaId::Key(_) => Scope::Key,
            QuotaId::KeyApi(..) => Scope::Api,
            QuotaId::Org(_) => Scope::Org,
        }
    }
    /// The API of a per-API limit.
    pub fn api(&self) -> Option<&str> {
        match self {
            QuotaId::KeyApi(_, api) => Some(api),
            _ => None,
        }
    }
    /// The raw API key, for keys and per-API limits.
    pub fn key(&self) -> Option<&str> {
        match self {
            QuotaId::Key(k) | QuotaId::KeyApi(k, _) => Some(k),
            QuotaId::Org(_) => None,
        }
    }
}

/// Displays with the key masked by [`mask_key`]: safe for logs, JSON output and the screen.
/// For a quota whose key may be a hash, prefer [`QuotaMeta::display_id`] (an 8-char murmur32
/// hash would show as `****` here).
impl fmt::Display for QuotaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuotaId::Key(k) => write!(f, "key:{}", mask_key(k)),
            QuotaId::KeyApi(k, api) => write!(f, "key:{}:api:{api}", mask_key(k)),
            QuotaId::Org(o) => write!(f, "org:{o}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Key,
    Api,
    Org,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Key => "key",
            Scope::Api => "api",
            Scope::Org => "org",
        }
    }
}

/// Masks an API key for display: the first and last four characters of long keys, nothing of
/// short ones. The start of a Tyk key is its org id (or `eyJ` for base64 keys), not the secret.
pub fn mask_key(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 16 {
        return "****".to_string();
    }
    let head: String = chars[..4].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// Abbreviates a key hash (`hash_keys: true`) for display. A hash is not a credential (the
/// gateway only accepts raw tokens on its proxied APIs; Tyk's own Dashboard lists hashes), so
/// enough of it is shown to tell keys apart: up to 16 hex chars whole, longer ones as the
/// first 8 … last 4.
pub fn mask_hash(hash: &str) -> String {
    let chars: Vec<char> = hash.chars().collect();
    if chars.len() <= 16 {
        return hash.to_string();
    }
    let head: String = chars[..8].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

/// What is known about a quota besides its counters; shared by all samples of one sweep.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuotaMeta {
    /// Raw key (empty for org quotas). Never displayed: use `masked`.
    pub key: Arc<str>,
    pub masked: String,
    /// `key` is the hash the gateway stores the key under (`hash_keys: true`), not the token.
    pub hashed: bool,
    pub alias: String,
    pub org_id: String,
    pub api_id: String,
    pub api_name: String,
    pub trigger_limits: Vec<f64>,
    pub tags: Vec<String>,
    pub meta_data: Map<String, Value>,
    pub policies: Vec<String>,
    pub inactive: bool,
    /// Unix seconds; `< 1` never.
    pub expires: i64,
    pub rate: f64,
    pub per: f64,
    /// Lower-cased alias, key, org, API name and id: what `/` filters on.
    pub haystack: String,
}

impl QuotaMeta {
    pub fn is_expired(&self, now_secs: i64) -> bool {
        self.expires >= 1 && self.expires < now_secs
    }

    /// `id` as `key:<masked>`, `key:<masked>:api:<api>` or `org:<org>`, with the key masked as
    /// this quota's own `masked` (a hash abbreviated by [`mask_hash`], a token by [`mask_key`]).
    pub fn display_id(&self, id: &QuotaId) -> String {
        let masked = |k: &str| {
            if self.masked.is_empty() {
                mask_key(k)
            } else {
                self.masked.clone()
            }
        };
        match id {
            QuotaId::Key(k) => format!("key:{}", masked(k)),
            QuotaId::KeyApi(k, api) => format!("key:{}:api:{api}", masked(k)),
            QuotaId::Org(o) => format!("org:{o}"),
        }
    }

    /// The name shown for the quota: alias, else masked key, else org id.
    pub fn label(&self) -> &str {
        if !self.alias.is_empty() {
            &self.alias
        } else if !self.masked.is_empty() {
            &self.masked
        } else {
            &self.org_id
        }
    }

    fn finish(mut self) -> Self {
        self.haystack = [
            self.alias.as_str(),
            &self.key,
            &self.org_id,
            &self.api_name,
            &self.api_id,
        ]
        .join("\u{1f}")
        .to_lowercase();
        self
    }
}

/// One reading of one quota.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub id: QuotaId,
    pub meta: Arc<QuotaMeta>,
    pub at_ms: UnixMs,
    pub quota_max: i64,
    pub quota_remaining: i64,
    /// Unix seconds at which the current window ends; identifies the quota period.
    pub quota_renews: i64,
    pub quota_renewal_rate: i64,
}

impl Sample {
    /// Requests used in the current window; 0 for unlimited quotas.
    pub fn used(&self) -> i64 {
        used(self.quota_max, self.quota_remaining)
    }

    /// Tyk's usage percentage; `None` when `quota_max <= 0` (unlimited or not enforced).
    pub fn usage_pct(&self) -> Option<f64> {
        usage_pct(self.quota_max, self.quota_remaining)
    }

    /// The quotas of a key session: its top-level quota and each non-empty per-API limit.
    pub fn from_key_session(key: &str, s: &SessionState, at_ms: UnixMs) -> Vec<Sample> {
        Sample::from_stored_session(key, false, s, at_ms)
    }

    /// Like `from_key_session`, for a key known by what the gateway stores: its hash when
    /// `hashed`, else the raw token.
    pub fn from_stored_session(
        key: &str,
        hashed: bool,
        s: &SessionState,
        at_ms: UnixMs,
    ) -> Vec<Sample> {
        let key: Arc<str> = Arc::from(key);
        let base = QuotaMeta {
            key: key.clone(),
            masked: if hashed {
                mask_hash(&key)
            } else {
                mask_key(&key)
            },
            hashed,
            alias: s.alias.clone(),
            org_id: s.org_id.clone(),
            trigger_limits: s.monitor.trigger_limits.clone(),
            tags: s.tags.clone(),
            meta_data: s.meta_data.clone(),
            policies: s.apply_policies.clone(),
            inactive: s.is_inactive,
            expires: s.expires,
            rate: s.rate,
            per: s.per,
            ..QuotaMeta::default()
        };
        let mut out = Vec::with_capacity(1 + s.access_rights.len());
        for (api_id, acl, limit) in s.api_limits() {
            let meta = QuotaMeta {
                api_id: api_id.to_string(),
                api_name: acl.api_name.clone(),
                rate: limit.rate,
                per: limit.per,
                ..base.clone()
            };
            out.push(Sample {
                id: QuotaId::KeyApi(key.clone(), Arc::from(api_id)),
                meta: Arc::new(meta.finish()),
                at_ms,
                quota_max: limit.quota_max,
                quota_remaining: limit.quota_remaining,
                quota_renews: limit.quota_renews,
                quota_renewal_rate: limit.quota_renewal_rate,
            });
        }
        out.insert(
            0,
            Sample {
                id: QuotaId::Key(key.clone()),
                meta: Arc::new(base.finish()),
                at_ms,
                quota_max: s.quota_max,
                quota_remaining: s.quota_remaining,
                quota_renews: s.quota_renews,
                quota_renewal_rate: s.quota_renewal_rate,
            },
        );
        out
    }

    /// The quota of an organisation session.
    pub fn from_org_session(org: &str, s: &SessionState, at_ms: UnixMs) -> Sample {
        let meta = QuotaMeta {
            org_id: if s.org_id.is_empty() {
                org.to_string()
            } else {
                s.org_id.clone()
            },
            alias: s.alias.clone(),
            trigger_limits: s.monitor.trigger_limits.clone(),
            tags: s.tags.clone(),
            meta_data: s.meta_data.clone(),
            inactive: s.is_inactive,
            expires: s.expires,
            rate: s.rate,
            per: s.per,
            ..QuotaMeta::default()
        };
        Sample {
            id: QuotaId::Org(Arc::from(org)),
            meta: Arc::new(meta.finish()),
            at_ms,
            quota_max: s.quota_max,
            quota_remaining: s.quota_remaining,
            quota_renews: s.quota_renews,
            quota_renewal_rate: s.quota_renewal_rate,
        }
    }
}

pub fn used(quota_max: i64, quota_remaining: i64) -> i64 {
    if quota_max <= 0 {
        0
    } else {
        (quota_max - quota_remaining.max(0)).max(0)
    }
}

/// `(quota_max − quota_remaining) / quota_max × 100`, as Tyk computes it; never divides by ≤ 0.
pub fn usage_pct(quota_max: i64, quota_remaining: i64) -> Option<f64> {
    (quota_max > 0).then(|| used(quota_max, quota_remaining) as f64 / quota_max as f64 * 100.0)
}

/// Seconds by which two readings of one period's `quota_renews` may differ. The REST API
/// returns the stored value (exact); the Redis source derives it from the counter's PTTL
/// (`now + PTTL`), which a clock tick or a round trip can move by a second — that must neither
/// look like a renewal nor, after a restart, miss the ledger's row for the period.
pub const PERIOD_SLACK: i64 = 2;

/// True when two `quota_renews` values name the same period.
pub fn same_period(a: i64, b: i64) -> bool {
    a.abs_diff(b) <= PERIOD_SLACK.unsigned_abs()
}

/// Colour band of a quota, from its usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Band {
    Ok,
    Warn,
    Critical,
    Exhausted,
    /// `quota_max <= 0`: unlimited (-1) or not enforced (0).
    Unlimited,
}

/// Usage at or above which a quota is shown as warning / critical.
pub const WARN_PCT: f64 = 80.0;
pub const CRITICAL_PCT: f64 = 95.0;

impl Band {
    pub fn of(quota_max: i64, quota_remaining: i64) -> Band {
        match usage_pct(quota_max, quota_remaining) {
            None => Band::Unlimited,
            Some(_) if quota_remaining <= 0 => Band::Exhausted,
            Some(p) if p >= CRITICAL_PCT => Band::Critical,
            Some(p) if p >= WARN_PCT => Band::Warn,
            Some(_) => Band::Ok,
        }
    }

    pub fn glyph(self) -> &'static str {
        match self {
            Band::Ok => "●",
            Band::Warn => "▲",
            Band::Critical => "◆",
            Band::Exhausted => "✖",
            Band::Unlimited => "∞",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masking_keeps_no_secret_middle() {
        let k = "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d";
        assert_eq!(mask_key(k), "5e9d…ef6d");
        assert_eq!(mask_key("short"), "****");
        assert_eq!(
            QuotaId::KeyApi(Arc::from(k), Arc::from("api")).to_string(),
            "key:5e9d…ef6d:api:api"
        );
    }

    #[test]
    fn display_id_uses_the_samples_own_masking() {
        let s = crate::tyk::session::SessionState::default();
        let hashed = Sample::from_stored_session("45a0a4f9", true, &s, 0);
        assert_eq!(hashed[0].id.to_string(), "key:****");
        assert_eq!(hashed[0].meta.display_id(&hashed[0].id), "key:45a0a4f9");
        let k = "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d";
        let plain = Sample::from_key_session(k, &s, 0);
        assert_eq!(plain[0].meta.display_id(&plain[0].id), "key:5e9d…ef6d");
        let api = QuotaId::KeyApi(Arc::from("45a0a4f9"), Arc::from("orders"));
        assert_eq!(hashed[0].meta.display_id(&api), "key:45a0a4f9:api:orders");
        let long = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let sha = Sample::from_stored_session(long, true, &s, 0);
        assert_eq!(sha[0].meta.display_id(&sha[0].id), "key:ba7816bf…15ad");
        let org = QuotaMeta::default();
        assert_eq!(org.display_id(&QuotaId::Org(Arc::from("o1"))), "org:o1");
    }

    #[test]
    fn bands_and_unlimited() {
        assert_eq!(Band::of(-1, 0), Band::Unlimited);
        assert_eq!(Band::of(0, 0), Band::Unlimited);
        assert_eq!(Band::of(100, 0), Band::Exhausted);
        assert_eq!(Band::of(100, 4), Band::Critical);
        assert_eq!(Band::of(100, 20), Band::Warn);
        assert_eq!(Band::of(100, 21), Band::Ok);
        assert_eq!(usage_pct(0, 0), None);
        assert_eq!(usage_pct(1000, 150), Some(85.0));
        // remaining above max (quota_max lowered mid-period) is 0 % used, not negative
        assert_eq!(usage_pct(100, 150), Some(0.0));
    }
}
