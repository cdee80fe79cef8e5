//! What a quota is: a key's top-level quota, a key's non-empty per-API limit, or an
//! organisation's quota — each read and monitored on its own (README "What is watched").

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use crate::clock::UnixMs;
use crate::tyk::session::{MetaData, SessionState};

pub use crate::tyk::mask::{mask_hash, mask_key};

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

/// What a session says of all of its quotas: one per key or org, shared (`Arc`) by the key's
/// top-level and per-API quotas. A fleet of a million keys keeps one of these a key, so the
/// lists are interned ([`Interner`]) and `meta_data` stays text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionMeta {
    /// Raw key (empty for org quotas). Never displayed: use `masked()`.
    pub key: Arc<str>,
    /// The key as shown; left empty for a hash short enough to be shown whole (a murmur32
    /// fleet then keeps no second copy of every key): read it with `masked()`.
    pub masked: Box<str>,
    /// `key` is the hash the gateway stores the key under (`hash_keys: true`), not the token.
    pub hashed: bool,
    pub alias: Box<str>,
    pub org_id: Arc<str>,
    // Lists behind thin pointers (8 bytes, not a slice's 16): with the boxed strings this
    // keeps a SessionMeta in jemalloc's 160-byte class instead of the 192-byte one.
    pub trigger_limits: Arc<Vec<f64>>,
    pub tags: Arc<Vec<String>>,
    pub meta_data: MetaData,
    pub policies: Arc<Vec<String>>,
    pub inactive: bool,
    /// Unix seconds; `< 1` never.
    pub expires: i64,
    pub rate: f64,
    pub per: f64,
}

impl SessionMeta {
    /// The key as shown: masked token, or (abbreviated) hash; empty for org quotas.
    pub fn masked(&self) -> &str {
        if self.masked.is_empty() && self.hashed {
            &self.key
        } else {
            &self.masked
        }
    }

    pub fn is_expired(&self, now_secs: i64) -> bool {
        self.expires >= 1 && self.expires < now_secs
    }

    /// The name shown for the quota: alias, else masked key, else org id.
    pub fn label(&self) -> &str {
        if !self.alias.is_empty() {
            &self.alias
        } else if !self.masked().is_empty() {
            self.masked()
        } else {
            &self.org_id
        }
    }
}

/// What a per-API limit adds to its key's session. Many keys carry the same limits (they come
/// from a few policies), so these are interned ([`Interner`]) and shared.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiMeta {
    pub api_id: Arc<str>,
    pub api_name: Arc<str>,
    pub rate: f64,
    pub per: f64,
}

/// What is known about a quota besides its counters: its session's [`SessionMeta`] (reached
/// through `Deref`: `meta.alias`) and, for a per-API limit, its [`ApiMeta`]. Two pointers, so a
/// sample or board entry holds it by value: a million quotas need no allocation of their own.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuotaMeta {
    pub session: Arc<SessionMeta>,
    pub api: Option<Arc<ApiMeta>>,
}

impl std::ops::Deref for QuotaMeta {
    type Target = SessionMeta;
    fn deref(&self) -> &SessionMeta {
        &self.session
    }
}

impl From<SessionMeta> for QuotaMeta {
    fn from(session: SessionMeta) -> QuotaMeta {
        QuotaMeta {
            session: Arc::new(session),
            api: None,
        }
    }
}

impl QuotaMeta {
    /// Empty for a key's top-level quota and org quotas.
    pub fn api_id(&self) -> &str {
        self.api.as_ref().map_or("", |a| &a.api_id)
    }

    pub fn api_name(&self) -> &str {
        self.api.as_ref().map_or("", |a| &a.api_name)
    }

    /// The per-API limit's rate, else the session's.
    pub fn rate(&self) -> f64 {
        self.api.as_ref().map_or(self.session.rate, |a| a.rate)
    }

    pub fn per(&self) -> f64 {
        self.api.as_ref().map_or(self.session.per, |a| a.per)
    }

    /// `id` as `key:<masked>`, `key:<masked>:api:<api>` or `org:<org>`, with the key masked as
    /// this quota's own `masked` (a hash abbreviated by [`mask_hash`], a token by [`mask_key`]).
    pub fn display_id(&self, id: &QuotaId) -> String {
        let masked = |k: &str| {
            if self.masked().is_empty() {
                mask_key(k)
            } else {
                self.masked().to_string()
            }
        };
        match id {
            QuotaId::Key(k) => format!("key:{}", masked(k)),
            QuotaId::KeyApi(k, api) => format!("key:{}:api:{api}", masked(k)),
            QuotaId::Org(o) => format!("org:{o}"),
        }
    }

    /// The fields `/` filters on: alias, key, org, API name and id.
    pub fn search_fields(&self) -> [&str; 5] {
        [
            &self.session.alias,
            &self.session.key,
            &self.session.org_id,
            self.api_name(),
            self.api_id(),
        ]
    }
}

/// One shared copy of each org id, API name, tag list… that many sessions repeat: a fleet's
/// keys mostly come from a few policies, so their lists and names are the same.
#[derive(Debug, Default)]
pub struct Interner {
    strs: HashSet<Arc<str>>,
    lists: HashSet<Arc<Vec<String>>>,
    limits: HashMap<Vec<u64>, Arc<Vec<f64>>>,
    apis: HashMap<ApiKey, Arc<ApiMeta>>,
}

/// An interned `ApiMeta`: API id, name, rate and per (as bits: `f64` is not `Eq`).
type ApiKey = (Arc<str>, Arc<str>, u64, u64);

impl Interner {
    pub fn str(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.strs.get(s) {
            return a.clone();
        }
        let a: Arc<str> = Arc::from(s);
        self.strs.insert(a.clone());
        a
    }

    pub fn list(&mut self, l: &Vec<String>) -> Arc<Vec<String>> {
        if let Some(a) = self.lists.get(l) {
            return a.clone();
        }
        let a = Arc::new(l.clone());
        self.lists.insert(a.clone());
        a
    }

    pub fn limits(&mut self, l: &[f64]) -> Arc<Vec<f64>> {
        let bits: Vec<u64> = l.iter().map(|f| f.to_bits()).collect();
        self.limits
            .entry(bits)
            .or_insert_with(|| Arc::new(l.to_vec()))
            .clone()
    }

    pub fn api(&mut self, api_id: &str, api_name: &str, rate: f64, per: f64) -> Arc<ApiMeta> {
        let (api_id, api_name) = (self.str(api_id), self.str(api_name));
        self.apis
            .entry((
                api_id.clone(),
                api_name.clone(),
                rate.to_bits(),
                per.to_bits(),
            ))
            .or_insert_with(|| {
                Arc::new(ApiMeta {
                    api_id,
                    api_name,
                    rate,
                    per,
                })
            })
            .clone()
    }
}

/// One reading of one quota.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub id: QuotaId,
    pub meta: QuotaMeta,
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
        Sample::from_stored_session(Arc::from(key), false, s, at_ms, &mut Interner::default())
    }

    /// Like `from_key_session`, for a key known by what the gateway stores: its hash when
    /// `hashed`, else the raw token; repeated names and lists are shared through `interner`.
    pub fn from_stored_session(
        key: Arc<str>,
        hashed: bool,
        s: &SessionState,
        at_ms: UnixMs,
        interner: &mut Interner,
    ) -> Vec<Sample> {
        let session = Arc::new(SessionMeta {
            key: key.clone(),
            masked: match hashed {
                true if mask_hash(&key) == *key => Box::default(),
                true => mask_hash(&key).into(),
                false => mask_key(&key).into(),
            },
            hashed,
            ..session_meta(s, interner)
        });
        let mut out = Vec::with_capacity(1 + s.access_rights.len());
        out.push(Sample {
            id: QuotaId::Key(key.clone()),
            meta: QuotaMeta {
                session: session.clone(),
                api: None,
            },
            at_ms,
            quota_max: s.quota_max,
            quota_remaining: s.quota_remaining,
            quota_renews: s.quota_renews,
            quota_renewal_rate: s.quota_renewal_rate,
        });
        for (api_id, acl, limit) in s.api_limits() {
            let api = interner.api(api_id, &acl.api_name, limit.rate, limit.per);
            out.push(Sample {
                id: QuotaId::KeyApi(key.clone(), api.api_id.clone()),
                meta: QuotaMeta {
                    session: session.clone(),
                    api: Some(api),
                },
                at_ms,
                quota_max: limit.quota_max,
                quota_remaining: limit.quota_remaining,
                quota_renews: limit.quota_renews,
                quota_renewal_rate: limit.quota_renewal_rate,
            });
        }
        out
    }

    /// The quota of an organisation session.
    pub fn from_org_session(org: &str, s: &SessionState, at_ms: UnixMs) -> Sample {
        let interner = &mut Interner::default();
        let session = SessionMeta {
            org_id: if s.org_id.is_empty() {
                interner.str(org)
            } else {
                interner.str(&s.org_id)
            },
            ..session_meta(s, interner)
        };
        Sample {
            id: QuotaId::Org(Arc::from(org)),
            meta: QuotaMeta::from(session),
            at_ms,
            quota_max: s.quota_max,
            quota_remaining: s.quota_remaining,
            quota_renews: s.quota_renews,
            quota_renewal_rate: s.quota_renewal_rate,
        }
    }
}

/// The session-level fields every quota of `s` shares (no key).
fn session_meta(s: &SessionState, interner: &mut Interner) -> SessionMeta {
    SessionMeta {
        alias: s.alias.as_str().into(),
        org_id: interner.str(&s.org_id),
        trigger_limits: interner.limits(&s.monitor.trigger_limits),
        tags: interner.list(&s.tags),
        meta_data: s.meta_data.clone(),
        policies: interner.list(&s.apply_policies),
        inactive: s.is_inactive,
        expires: s.expires,
        rate: s.rate,
        per: s.per,
        ..SessionMeta::default()
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

/// A percentage as outputs print it: two decimals (`70.17`, not `70.16666666666667`). Only for
/// display; the monitor compares the exact value, as Tyk does.
pub fn shown_pct(p: f64) -> f64 {
    (p * 100.0).round() / 100.0
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
        let i = &mut Interner::default();
        let hashed = Sample::from_stored_session(Arc::from("45a0a4f9"), true, &s, 0, i);
        assert_eq!(hashed[0].id.to_string(), "key:****");
        assert_eq!(hashed[0].meta.display_id(&hashed[0].id), "key:45a0a4f9");
        let k = "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d";
        let plain = Sample::from_key_session(k, &s, 0);
        assert_eq!(plain[0].meta.display_id(&plain[0].id), "key:5e9d…ef6d");
        let api = QuotaId::KeyApi(Arc::from("45a0a4f9"), Arc::from("orders"));
        assert_eq!(hashed[0].meta.display_id(&api), "key:45a0a4f9:api:orders");
        let long = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
        let sha = Sample::from_stored_session(Arc::from(long), true, &s, 0, i);
        assert_eq!(sha[0].meta.display_id(&sha[0].id), "key:ba7816bf…15ad");
        let org = QuotaMeta::default();
        assert_eq!(org.display_id(&QuotaId::Org(Arc::from("o1"))), "org:o1");
    }

    #[test]
    fn per_key_and_per_quota_sizes_stay_small() {
        // A million keys: a SessionMeta (plus the Arc's two counters) must stay within
        // jemalloc's 160-byte class, a QuotaMeta two pointers.
        assert!(std::mem::size_of::<SessionMeta>() + 16 <= 160);
        assert_eq!(std::mem::size_of::<QuotaMeta>(), 16);
        assert!(std::mem::size_of::<Sample>() <= 96);
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
