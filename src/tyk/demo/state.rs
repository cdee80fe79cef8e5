//! The demo gateway's state: sessions (what Tyk keeps at `apikey-…` / `orgkey.…`) and quota
//! counters (what Tyk keeps at `quota-[scope-]…`), with Tyk's quota semantics:
//!
//! - `quota_remaining` is recomputed from the counter on every key GET (`handleGetDetail`);
//! - a quota renews lazily: the first request after `quota_renews` resets its counter and sets
//!   `quota_renews = now + quota_renewal_rate`; a quota nobody uses keeps a past `quota_renews`;
//! - a request to an API whose ACL entry has a non-empty `limit` counts against that limit's
//!   counter (scope = `allowance_scope`), otherwise against the key's top-level quota; every
//!   request also counts against the org quota; a request over any quota is blocked.

use std::collections::{BTreeMap, HashMap};

use super::model::{AccessDefinition, Session, now_unix};
use crate::rng::Rng;
use crate::timefmt::rfc3339_nanos as rfc3339;

/// How the simulator drives a key.
#[derive(Debug, Clone, PartialEq)]
pub enum Pattern {
    /// No traffic.
    Idle,
    /// About `rate` requests per simulated second (±30 % jitter).
    Steady { rate: f64 },
    /// `base` req/s, plus bursts of `burst` req/s starting with probability `per_s` per second.
    Bursty { base: f64, burst: f64, per_s: f64 },
    /// Silent, then one request after `first_after` simulated seconds and every `period` after.
    Waking { first_after: f64, period: f64 },
}

/// Per-key simulator bookkeeping.
#[derive(Debug, Clone)]
pub struct Traffic {
    pub pattern: Pattern,
    /// Fractional requests carried to the next tick.
    pub acc: f64,
    /// Simulated seconds left in the current burst.
    pub burst_left: f64,
    /// Simulated seconds until the next `Waking` request.
    pub next_wake: f64,
}

impl Traffic {
    pub fn new(pattern: Pattern) -> Traffic {
        let next_wake = match pattern {
            Pattern::Waking { first_after, .. } => first_after,
            _ => 0.0,
        };
        Traffic {
            pattern,
            acc: 0.0,
            burst_left: 0.0,
            next_wake,
        }
    }
}

#[derive(Debug, Clone)]
pub struct KeyEntry {
    pub session: Session,
    /// The org a `?filter=` matches besides a prefix: decoded from base64 keys.
    pub b64_org: Option<String>,
    /// Used requests per quota scope (`""` = the key's top-level quota counter).
    pub counters: HashMap<String, i64>,
    pub traffic: Traffic,
}

#[derive(Debug, Clone)]
pub struct OrgEntry {
    pub session: Session,
    pub used: i64,
}

#[derive(Debug)]
pub struct State {
    pub keys: HashMap<String, KeyEntry>,
    /// Listing order of `keys` (stable, creation order).
    pub order: Vec<String>,
    pub orgs: BTreeMap<String, OrgEntry>,
    pub rng: Rng,
    /// Every session write (`PUT /tyk/keys/…`, `PUT`/`POST /tyk/org/keys/…`): the request's
    /// path and query and its raw body, oldest first, at most [`MAX_WRITES`] (a test hook).
    pub writes: Vec<(String, Vec<u8>)>,
}

/// Writes kept for [`State::writes`].
pub const MAX_WRITES: usize = 256;

/// Outcome of a create/update call, mapped to HTTP by the server.
#[derive(Debug, PartialEq, Eq)]
pub enum WriteResult {
    Ok { key: String, action: &'static str },
    NotFound,
    BadRequest(&'static str),
    ServerError(&'static str),
}

impl State {
    pub fn new(rng: Rng) -> State {
        State {
            keys: HashMap::new(),
            order: Vec::new(),
            orgs: BTreeMap::new(),
            rng,
            writes: Vec::new(),
        }
    }

    /// Adds (or replaces) a key with its counters and traffic pattern.
    pub fn insert_key(
        &mut self,
        id: String,
        session: Session,
        counters: HashMap<String, i64>,
        pattern: Pattern,
    ) {
        let entry = KeyEntry {
            b64_org: token_org_b64(&id),
            session,
            counters,
            traffic: Traffic::new(pattern),
        };
        if self.keys.insert(id.clone(), entry).is_none() {
            self.order.push(id);
        }
    }

    pub fn insert_org(&mut self, session: Session, used: i64) {
        self.orgs
            .insert(session.org_id.clone(), OrgEntry { session, used });
    }

    /// `GET /tyk/keys[?filter=…][&api_id=…]`.
    pub fn list_keys(&self, filter: &str, api_id: &str) -> Vec<&str> {
        self.order
            .iter()
            .filter_map(|id| {
                let entry = self.keys.get(id)?;
                let org_ok = filter.is_empty()
                    || id.starts_with(filter)
                    || entry.b64_org.as_deref() == Some(filter);
                let api_ok = api_id.is_empty()
                    || entry
                        .session
                        .access_rights
                        .as_ref()
                        .is_some_and(|acl| acl.contains_key(api_id));
                (org_ok && api_ok).then_some(id.as_str())
            })
            .collect()
    }

    /// Keeps a session write for [`State::writes`].
    pub fn record_write(&mut self, request: String, body: &[u8]) {
        if self.writes.len() == MAX_WRITES {
            self.writes.remove(0);
        }
        self.writes.push((request, body.to_vec()));
    }

    /// The key `?hashed=true` names: the key whose `HashStr` (`murmur128` by default, the
    /// gateway's `hash_keys: true` form the Redis mirror writes) is `hash`; an id that is a key
    /// itself is taken as it is, as this demo always did.
    pub fn key_by_hash(&self, hash: &str) -> Option<String> {
        if self.keys.contains_key(hash) {
            return Some(hash.to_string());
        }
        self.keys
            .keys()
            .find(|id| crate::tyk::keyhash::hash_str(id) == hash)
            .cloned()
    }

    /// `GET /tyk/keys/{id}`: the stored session with policies "applied" (nil `meta_data`/`tags`
    /// → `{}`/`[]`, `allowance_scope` of policy-less per-API limits = API id) and
    /// `quota_remaining` recomputed from the counters.
    pub fn key_detail(&self, id: &str) -> Option<Session> {
        let entry = self.keys.get(id)?;
        let mut s = entry.session.clone();
        let has_policies = has_policies(&s);
        if s.quota_max != -1 && s.quota_max != 0 {
            let used = entry.counters.get("").copied().unwrap_or(0);
            s.quota_remaining = (s.quota_max - used).max(0);
        }
        if let Some(acl) = s.access_rights.as_mut() {
            for (api_id, access) in acl.iter_mut() {
                if !access.limit.is_empty() {
                    access.allowance_scope =
                        effective_scope(has_policies, api_id, access).to_string();
                }
                let l = &mut access.limit;
                if l.is_empty() || l.quota_max == -1 || l.quota_max == 0 {
                    continue;
                }
                let used = entry
                    .counters
                    .get(&access.allowance_scope)
                    .copied()
                    .unwrap_or(0);
                l.quota_remaining = (l.quota_max - used).max(0);
            }
        }
        if s.meta_data.is_null() {
            s.meta_data = serde_json::Value::Object(serde_json::Map::new());
        }
        if s.tags.is_none() {
            s.tags = Some(Vec::new());
        }
        Some(s)
    }

    /// `GET /tyk/org/keys/{org}` with `quota_remaining` reflecting the org counter.
    pub fn org_detail(&self, org: &str) -> Option<Session> {
        let entry = self.orgs.get(org)?;
        let mut s = entry.session.clone();
        if s.quota_max > 0 {
            s.quota_remaining = (s.quota_max - entry.used).max(0);
        }
        Some(s)
    }

    /// `PUT /tyk/keys/{id}` (`handleAddOrUpdate`).
    pub fn put_key(
        &mut self,
        id: &str,
        mut new: Session,
        suppress_reset: bool,
        now: i64,
    ) -> WriteResult {
        let Some(entry) = self.keys.get_mut(id) else {
            return WriteResult::NotFound;
        };
        let old = &entry.session;
        new.date_created = old.date_created.clone();
        if suppress_reset {
            new.quota_renews = old.quota_renews;
            new.last_updated = old.last_updated;
            if let (Some(old_acl), Some(new_acl)) =
                (old.access_rights.as_ref(), new.access_rights.as_mut())
            {
                for (api_id, old_access) in old_acl {
                    if old_access.limit.is_empty() {
                        continue;
                    }
                    if let Some(n) = new_acl.get_mut(api_id)
                        && !n.limit.is_empty()
                    {
                        n.limit.quota_renews = old_access.limit.quota_renews;
                    }
                }
            }
        } else {
            new.last_updated = now;
            entry.counters.clear();
            new.quota_renews = now + new.quota_renewal_rate;
        }
        if new.expires > 1 && new.expires < now {
            new.expires = old.expires;
        }
        entry.session = new;
        WriteResult::Ok {
            key: id.to_string(),
            action: "modified",
        }
    }

    /// `POST /tyk/keys[/{custom}]` and `POST /tyk/keys/create`: a new key `org_id + (custom id |
    /// 32 hex)`, quota reset, `date_created` = now.
    pub fn create_key(
        &mut self,
        custom: Option<&str>,
        mut new: Session,
        create_endpoint: bool,
        now: i64,
        now_nanos: u32,
    ) -> WriteResult {
        if new.access_rights.as_ref().is_none_or(BTreeMap::is_empty) {
            return if create_endpoint {
                WriteResult::BadRequest(
                    "Failed to create key, keys must have at least one Access Rights record set.",
                )
            } else {
                WriteResult::ServerError(
                    "Failed to create key, ensure security settings are correct.",
                )
            };
        }
        let id = match custom {
            Some(c) => format!("{}{}", new.org_id, c),
            None => loop {
                let candidate = format!("{}{}", new.org_id, self.rng.hex32());
                if !self.keys.contains_key(&candidate) {
                    break candidate;
                }
            },
        };
        new.date_created = rfc3339(now, now_nanos);
        new.last_updated = now;
        new.quota_renews = now + new.quota_renewal_rate;
        if new.expires > 1 && new.expires < now {
            new.expires = 0;
        }
        self.insert_key(id.clone(), new, HashMap::new(), Pattern::Idle);
        WriteResult::Ok {
            key: id,
            action: "added",
        }
    }

    pub fn delete_key(&mut self, id: &str) -> bool {
        if self.keys.remove(id).is_some() {
            self.order.retain(|k| k != id);
            true
        } else {
            false
        }
    }

    /// `POST`/`PUT /tyk/org/keys/{org}` (`handleOrgAddOrUpdate`).
    pub fn put_org(&mut self, org: &str, mut new: Session, reset_quota: bool, now: i64) {
        let mut used = self.orgs.get(org).map_or(0, |e| e.used);
        if reset_quota {
            used = 0;
            new.quota_renews = now + new.quota_renewal_rate;
        }
        new.last_updated = now;
        self.orgs
            .insert(org.to_string(), OrgEntry { session: new, used });
    }

    pub fn delete_org(&mut self, org: &str) -> bool {
        self.orgs.remove(org).is_some()
    }

    /// Simulates `n` requests on key `id` (to `api_id`, or to an API without its own limit when
    /// `None`) at Unix time `now`; returns how many got through.
    pub fn consume(&mut self, id: &str, api_id: Option<&str>, n: i64, now: i64) -> i64 {
        let Some(entry) = self.keys.get_mut(id) else {
            return 0;
        };
        consume_entry(entry, &mut self.orgs, api_id, n, now)
    }
}

/// Whether the session carries policies (Tyk then leaves `allowance_scope` as the policy set it).
fn has_policies(s: &Session) -> bool {
    !s.apply_policy_id.is_empty() || s.apply_policies.as_ref().is_some_and(|p| !p.is_empty())
}

/// The quota counter scope a request to `api_id` uses: a non-empty per-API limit's
/// `allowance_scope` (the API id for policy-less keys), else `""` (the top-level quota).
fn scope_for(s: &Session, api_id: Option<&str>) -> Option<String> {
    let api_id = api_id?;
    let access = s.access_rights.as_ref()?.get(api_id)?;
    if access.limit.is_empty() {
        return None;
    }
    Some(effective_scope(has_policies(s), api_id, access).to_string())
}

/// The counter scope of a non-empty per-API limit: its `allowance_scope`, which Tyk (v5.0+) sets
/// to the API id for keys without policies.
fn effective_scope<'a>(policies: bool, api_id: &'a str, access: &'a AccessDefinition) -> &'a str {
    if access.allowance_scope.is_empty() && !policies {
        api_id
    } else {
        &access.allowance_scope
    }
}

/// The core of [`State::consume`], usable while iterating keys.
pub fn consume_entry(
    entry: &mut KeyEntry,
    orgs: &mut BTreeMap<String, OrgEntry>,
    api_id: Option<&str>,
    n: i64,
    now: i64,
) -> i64 {
    let s = &mut entry.session;
    if n <= 0 || s.is_inactive || (s.expires >= 1 && s.expires < now) {
        return 0;
    }
    let mut allowed = n;

    // Org quota (OrganizationMonitor): checked first, counts every request it lets through.
    let mut org = orgs.get_mut(&s.org_id);
    if let Some(o) = org.as_deref_mut() {
        if o.session.is_inactive {
            return 0;
        }
        let q = &mut o.session;
        if q.quota_max > 0 {
            if q.quota_renews <= now && q.quota_renewal_rate > 0 {
                o.used = 0;
                q.quota_renews = now + q.quota_renewal_rate;
            }
            allowed = allowed.min((q.quota_max - o.used).max(0));
        }
    }
    if allowed == 0 {
        return 0;
    }

    // Key quota: the per-API limit's counter, or the top-level one.
    let scope = scope_for(s, api_id).unwrap_or_default();
    let (quota_max, quota_renews, renewal_rate) = match (scope.is_empty(), api_id) {
        (false, Some(api)) => match s.access_rights.as_ref().and_then(|a| a.get(api)) {
            Some(a) => (
                a.limit.quota_max,
                a.limit.quota_renews,
                a.limit.quota_renewal_rate,
            ),
            None => (s.quota_max, s.quota_renews, s.quota_renewal_rate),
        },
        _ => (s.quota_max, s.quota_renews, s.quota_renewal_rate),
    };
    if quota_max > 0 {
        let used = entry.counters.entry(scope.clone()).or_insert(0);
        if quota_renews <= now && renewal_rate > 0 {
            *used = 0;
            let renews = now + renewal_rate;
            renew_scope(s, &scope, renews);
        }
        allowed = allowed.min((quota_max - *used).max(0));
        *used += allowed;
    }
    if let Some(o) = org
        && o.session.quota_max > 0
    {
        o.used += allowed;
    }
    allowed
}

/// Sets `quota_renews` on every quota sharing the counter `scope`.
fn renew_scope(s: &mut Session, scope: &str, renews: i64) {
    if scope.is_empty() {
        s.quota_renews = renews;
    }
    let policies = has_policies(s);
    if let Some(acl) = s.access_rights.as_mut() {
        for (api_id, access) in acl.iter_mut() {
            if access.limit.is_empty() {
                continue;
            }
            if effective_scope(policies, api_id, access) == scope {
                access.limit.quota_renews = renews;
            }
        }
    }
}

/// Picks the API of a simulated request: uniformly among the key's ACL entries.
pub fn pick_api(s: &Session, rng: &mut Rng) -> Option<String> {
    let acl = s.access_rights.as_ref()?;
    let i = rng.below(acl.len());
    acl.keys().nth(i).cloned()
}

/// `storage.TokenOrg` for base64 keys: the `org` of `{"org":…,"id":…,"h":…}`.
pub fn token_org_b64(key: &str) -> Option<String> {
    if !key.starts_with("eyJ") {
        return None;
    }
    let bytes = b64_decode(key)?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v.get("org")?.as_str().map(str::to_string)
}

/// Standard base64 (padding optional).
fn b64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let s = s.trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for &c in s.as_bytes() {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Current wall-clock time as (Unix seconds, nanoseconds).
pub fn now_with_nanos() -> (i64, u32) {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(_) => (now_unix(), 0),
    }
}

#[cfg(test)]
mod tests {
    use super::super::model::{ApiLimit, Monitor};
    use super::*;

    const ORG: &str = "5e9d9544a1dcd60001d0ed20";
    const ORDERS: &str = "b84fe1a04e5648927971c0557971565c";
    const PAYMENTS: &str = "3f2a8d1c9e7b4b05a6c4d2e1f0a9b8c7";

    #[test]
    fn decodes_base64_token_org() {
        let k = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6InBhcnRuZXJ+djI/MDEiLCJoIjoibXVybXVyNjQifQ==";
        assert_eq!(token_org_b64(k).as_deref(), Some(ORG));
        assert_eq!(token_org_b64("5e9d9544a1dcd60001d0ed20abc"), None);
    }

    fn state_with_key(now: i64) -> State {
        let mut st = State::new(Rng::new(1));
        let mut orders = AccessDefinition::new(ORDERS, "Orders API");
        orders.limit = ApiLimit {
            quota_max: 10,
            quota_renewal_rate: 60,
            quota_renews: now + 60,
            ..ApiLimit::default()
        };
        let payments = AccessDefinition::new(PAYMENTS, "Payments API");
        let s = Session {
            org_id: ORG.to_string(),
            quota_max: 100,
            quota_renewal_rate: 3600,
            quota_renews: now - 5,
            access_rights: Some(BTreeMap::from([
                (ORDERS.to_string(), orders),
                (PAYMENTS.to_string(), payments),
            ])),
            monitor: Monitor::default(),
            ..Session::zero()
        };
        st.insert_key(
            "k".into(),
            s,
            HashMap::from([(String::new(), 40)]),
            Pattern::Idle,
        );
        st.insert_org(
            Session {
                org_id: ORG.to_string(),
                quota_max: 1000,
                quota_renewal_rate: 86400,
                quota_renews: now + 100,
                ..Session::zero()
            },
            500,
        );
        st
    }

    #[test]
    fn per_api_limit_counts_on_its_own_scope_and_org() {
        let now = 1_000_000;
        let mut st = state_with_key(now);
        assert_eq!(st.consume("k", Some(ORDERS), 15, now), 10);
        let d = st.key_detail("k").unwrap();
        let acl = d.access_rights.as_ref().unwrap();
        assert_eq!(acl[ORDERS].allowance_scope, ORDERS);
        assert_eq!(acl[ORDERS].limit.quota_remaining, 0);
        assert_eq!(
            d.quota_remaining, 60,
            "top level untouched, still past renews"
        );
        assert_eq!(d.quota_renews, now - 5);
        assert_eq!(st.org_detail(ORG).unwrap().quota_remaining, 490);
    }

    #[test]
    fn lazy_renewal_on_traffic() {
        let now = 1_000_000;
        let mut st = state_with_key(now);
        assert_eq!(st.consume("k", Some(PAYMENTS), 3, now), 3);
        let d = st.key_detail("k").unwrap();
        assert_eq!(d.quota_renews, now + 3600);
        assert_eq!(d.quota_remaining, 97);
    }

    #[test]
    fn put_resets_unless_suppressed() {
        let now = 1_000_000;
        let mut st = state_with_key(now);
        let body = st.key_detail("k").unwrap();
        let r = st.put_key("k", body.clone(), true, now);
        assert!(matches!(r, WriteResult::Ok { .. }));
        assert_eq!(st.key_detail("k").unwrap().quota_remaining, 60);
        st.put_key("k", body, false, now);
        let d = st.key_detail("k").unwrap();
        assert_eq!(d.quota_remaining, 100);
        assert_eq!(d.quota_renews, now + 3600);
        assert_eq!(d.last_updated, now);
        assert_eq!(
            st.put_key("nope", Session::zero(), true, now),
            WriteResult::NotFound
        );
    }

    #[test]
    fn inactive_expired_and_org_exhausted_block() {
        let now = 1_000_000;
        let mut st = state_with_key(now);
        if let Some(e) = st.orgs.get_mut(ORG) {
            e.used = 1000;
        }
        assert_eq!(st.consume("k", None, 1, now), 0);
        if let Some(e) = st.orgs.get_mut(ORG) {
            e.used = 0;
        }
        if let Some(e) = st.keys.get_mut("k") {
            e.session.expires = now - 1;
        }
        assert_eq!(st.consume("k", None, 1, now), 0);
        if let Some(e) = st.keys.get_mut("k") {
            e.session.expires = 0;
            e.session.is_inactive = true;
        }
        assert_eq!(st.consume("k", None, 1, now), 0);
    }
}
