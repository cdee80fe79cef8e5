//! Where Tyk keeps sessions and quota counters in Redis (TykTechnologies/tyk
//! `gateway/api_loader.go prepareStorage`, `gateway/session_manager.go` consts,
//! `gateway/mw_rate_limiting.go`): pure functions over key names, no I/O.

use super::super::keyhash;
use super::super::session::SessionState;

/// Key sessions: `apikey-<token>` (`hash_keys: false`) or `apikey-<HashStr(token)>`.
pub const SESSION_PREFIX: &str = "apikey-";
/// Org sessions: `orgkey.<org_id>`, never hashed.
pub const ORG_PREFIX: &str = "orgkey.";
/// Quota counters: `quota-[<allowance_scope>-]<suffix>` (`QuotaKeyPrefix`).
pub const QUOTA_PREFIX: &str = "quota-";
/// Rate limiter state (`RateLimitKeyPrefix`); never quota data.
pub const RATE_LIMIT_PREFIX: &str = "rate-limit-";
/// Pub/sub channel of gateway signals (`gateway/redis_signals.go RedisPubSubChannel`).
pub const NOTIFICATIONS_CHANNEL: &str = "tyk.cluster.notifications";

/// The suffix of a session key name, or `None` for names that are not key sessions: other
/// families, and the `quota-` / `rate-limit-` names `handleGetAllKeys` drops too.
pub fn session_suffix(name: &str) -> Option<&str> {
    let suffix = name.strip_prefix(SESSION_PREFIX)?;
    if suffix.is_empty()
        || suffix.starts_with(QUOTA_PREFIX)
        || suffix.starts_with(RATE_LIMIT_PREFIX)
    {
        return None;
    }
    Some(suffix)
}

/// The org id of an org session key name.
pub fn org_suffix(name: &str) -> Option<&str> {
    name.strip_prefix(ORG_PREFIX).filter(|s| !s.is_empty())
}

/// One counter of a session: which quota it counts and its Redis name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterName {
    /// `None` for the session-level quota, else the API id of a per-API limit.
    pub api_id: Option<String>,
    /// The `allowance_scope` in the name; `None` for the session counter.
    pub scope: Option<String>,
    pub name: String,
}

/// The counters of a key session stored under `suffix` (`RedisQuotaExceeded`'s `rawKey`): the
/// session quota when `quota_max > 0`, and every non-empty per-API limit with `quota_max > 0`,
/// counted under its `allowance_scope` — or, for a key without policies, under the API id (what
/// `Apply` sets at request time); an empty scope shares the session counter.
///
/// A quota with `quota_max <= 0` has no counter (unlimited or not enforced).
pub fn key_counters(suffix: &str, s: &SessionState) -> Vec<CounterName> {
    let mut out = Vec::with_capacity(1 + s.access_rights.len());
    if s.quota_max > 0 {
        out.push(CounterName {
            api_id: None,
            scope: None,
            name: format!("{QUOTA_PREFIX}{suffix}"),
        });
    }
    let no_policies = s.apply_policies.is_empty();
    for (api_id, acl, limit) in s.api_limits() {
        if limit.quota_max <= 0 {
            continue;
        }
        let scope = if !acl.allowance_scope.is_empty() {
            acl.allowance_scope.as_str()
        } else if no_policies {
            api_id
        } else {
            ""
        };
        let (name, scope) = if scope.is_empty() {
            (format!("{QUOTA_PREFIX}{suffix}"), None)
        } else {
            (
                format!("{QUOTA_PREFIX}{scope}-{suffix}"),
                Some(scope.to_string()),
            )
        };
        out.push(CounterName {
            api_id: Some(api_id.to_string()),
            scope,
            name,
        });
    }
    out
}

/// How the gateway stores keys: `hash_keys` of tyk.conf, or not known (yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashMode {
    Hashed,
    Plain,
    Unknown,
}

/// Candidate counter names of an org quota: `quota-<HashStr(org)>` with `hash_keys`,
/// `quota-<org>` without; both when the mode is not known (whichever exists is read).
pub fn org_counters(org: &str, mode: HashMode) -> Vec<String> {
    let hashed = format!("{QUOTA_PREFIX}{}", keyhash::hash_str(org));
    let plain = format!("{QUOTA_PREFIX}{org}");
    match mode {
        HashMode::Hashed => vec![hashed],
        HashMode::Plain => vec![plain],
        HashMode::Unknown => vec![hashed, plain],
    }
}

/// Session suffixes a raw token may be stored under (`SessionDetail`): the token itself, or
/// its hash. With the mode unknown both are tried.
pub fn token_suffixes(token: &str, mode: HashMode) -> Vec<String> {
    match mode {
        HashMode::Hashed => vec![keyhash::hash_str(token)],
        HashMode::Plain => vec![token.to_string()],
        HashMode::Unknown => vec![token.to_string(), keyhash::hash_str(token)],
    }
}

/// `meta_data.rate_limit_pattern` replaces the counter name with its expansion, which only the
/// gateway can compute from the request: such quotas cannot be read from Redis.
pub fn has_rate_limit_pattern(s: &SessionState) -> bool {
    s.meta_data
        .get_str("rate_limit_pattern")
        .is_some_and(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(json: &str) -> SessionState {
        SessionState::from_slice(json.as_bytes()).expect("session")
    }

    #[test]
    fn names_that_are_not_sessions_are_skipped() {
        assert_eq!(session_suffix("apikey-45a0a4f9"), Some("45a0a4f9"));
        assert_eq!(session_suffix("apikey-quota-x"), None);
        assert_eq!(session_suffix("apikey-rate-limit-x"), None);
        assert_eq!(session_suffix("apikey-"), None);
        assert_eq!(session_suffix("quota-45a0a4f9"), None);
        assert_eq!(org_suffix("orgkey.5e9d"), Some("5e9d"));
    }

    #[test]
    fn counters_per_scope() {
        let s = session(
            r#"{"quota_max":1000,"access_rights":{"A":{"api_id":"A","limit":{"quota_max":500,"quota_renewal_rate":3600},"allowance_scope":"A"},"B":{"api_id":"B","limit":{"quota_max":50}},"C":{"api_id":"C","limit":{"quota_max":-1,"rate":1}},"D":{"api_id":"D"}}}"#,
        );
        let names: Vec<_> = key_counters("f160ead4", &s)
            .into_iter()
            .map(|c| (c.api_id, c.name))
            .collect();
        assert_eq!(
            names,
            vec![
                (None, "quota-f160ead4".to_string()),
                (Some("A".into()), "quota-A-f160ead4".into()),
                // no policies: the API id is the scope, as Apply sets it
                (Some("B".into()), "quota-B-f160ead4".into()),
            ]
        );
        let with_policy = session(
            r#"{"quota_max":0,"apply_policies":["p"],"access_rights":{"B":{"api_id":"B","limit":{"quota_max":50}}}}"#,
        );
        assert_eq!(key_counters("k", &with_policy)[0].name, "quota-k");
    }

    #[test]
    fn org_and_token_candidates() {
        assert_eq!(
            org_counters("5e9d9544a1dcd60001d0ed20", HashMode::Unknown),
            vec!["quota-ab5c6ee9", "quota-5e9d9544a1dcd60001d0ed20"]
        );
        assert_eq!(
            token_suffixes(
                "5e9d9544a1dcd60001d0ed20c1a2b3c4d5e64f708192a3b4c5d6e7f8",
                HashMode::Hashed
            ),
            vec!["45a0a4f9"]
        );
    }
}
