//! Writes the demo's state into a Redis in Tyk's own layout, as a gateway with `hash_keys:
//! true` would (`apikey-<HashStr(token)>`, `quota-[<scope>-]<hash>` with TTL = time left in
//! the window, `orgkey.<org>` + `quota-<HashStr(org)>`), and publishes a
//! `KeySpaceUpdateNotification` for changed sessions — so the Redis source can be tried on the
//! demo (`tykwatch demo-gateway --redis-port P`). This is the only code that writes to a Redis,
//! and only to the one it was pointed at.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::gojson::encode;
use super::model::now_unix;
use super::state::State;
use crate::tyk::keyhash::hash_str;
use crate::tyk::redis::layout::{NOTIFICATIONS_CHANNEL, ORG_PREFIX, QUOTA_PREFIX, SESSION_PREFIX};

/// How often counters are written (the simulator's pace).
const EVERY: Duration = Duration::from_secs(1);
/// Keys named in one round's notification at most (Tyk itself sends comma-separated lists).
const MAX_NOTIFY: usize = 200;

/// One round's writes: `(name, value, ttl in ms)` and the sessions whose JSON changed.
struct Round {
    sets: Vec<(String, Vec<u8>, Option<i64>)>,
    names: HashSet<String>,
    changed: Vec<String>,
}

fn snapshot(st: &State, last: &mut HashMap<String, Vec<u8>>) -> Round {
    let now = now_unix();
    let mut r = Round {
        sets: Vec::new(),
        names: HashSet::new(),
        changed: Vec::new(),
    };
    let counter = |r: &mut Round, name: String, used: i64, renews: i64| {
        // A window that ended has no counter: the next request opens a new one.
        if renews > now {
            r.names.insert(name.clone());
            r.sets.push((
                name,
                used.to_string().into_bytes(),
                Some((renews - now) * 1000),
            ));
        }
    };
    for id in &st.order {
        let (Some(session), Some(entry)) = (st.key_detail(id), st.keys.get(id)) else {
            continue;
        };
        let Ok(json) = encode(&session) else { continue };
        let hash = hash_str(id);
        let name = format!("{SESSION_PREFIX}{hash}");
        if last.get(&name) != Some(&json) {
            r.changed.push(hash.clone());
            r.sets.push((name.clone(), json.clone(), None));
            last.insert(name.clone(), json);
        }
        r.names.insert(name);
        if session.quota_max > 0 {
            let used = entry.counters.get("").copied().unwrap_or(0);
            counter(
                &mut r,
                format!("{QUOTA_PREFIX}{hash}"),
                used,
                session.quota_renews,
            );
        }
        for acl in session.access_rights.iter().flat_map(|a| a.values()) {
            let l = &acl.limit;
            if l.is_empty() || l.quota_max <= 0 {
                continue;
            }
            // An empty scope (a key with policies) shares the session's counter.
            let scope = acl.allowance_scope.as_str();
            let used = entry.counters.get(scope).copied().unwrap_or(0);
            let name = if scope.is_empty() {
                format!("{QUOTA_PREFIX}{hash}")
            } else {
                format!("{QUOTA_PREFIX}{scope}-{hash}")
            };
            counter(&mut r, name, used, l.quota_renews);
        }
    }
    for org in st.orgs.keys() {
        let (Some(session), Some(entry)) = (st.org_detail(org), st.orgs.get(org)) else {
            continue;
        };
        let Ok(json) = encode(&session) else { continue };
        let name = format!("{ORG_PREFIX}{org}");
        if last.get(&name) != Some(&json) {
            r.sets.push((name.clone(), json.clone(), None));
            last.insert(name.clone(), json);
        }
        r.names.insert(name);
        if session.quota_max > 0 {
            let name = format!("{QUOTA_PREFIX}{}", hash_str(org));
            counter(&mut r, name, entry.used, session.quota_renews);
        }
    }
    r
}

/// Checks that `url` answers, so a wrong port is an error at start rather than a log line.
pub async fn check(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| format!("{url}: {e}"))?;
    let mut conn = tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .map_err(|_| format!("{url}: no answer within 5 s"))?
    .map_err(|e| format!("{url}: {e}"))?;
    redis::cmd("PING")
        .query_async::<String>(&mut conn)
        .await
        .map(|_| ())
        .map_err(|e| format!("{url}: {e}"))
}

/// Mirrors `state` into the Redis at `url` every second until `stop`. A lost connection is
/// reported once and retried every few seconds; nothing panics.
pub async fn run(state: Arc<Mutex<State>>, url: String, mut stop: watch::Receiver<bool>) {
    let mut last: HashMap<String, Vec<u8>> = HashMap::new();
    let mut written: HashSet<String> = HashSet::new();
    let mut conn: Option<redis::aio::MultiplexedConnection> = None;
    let mut reported = false;
    loop {
        if conn.is_none() {
            match redis::Client::open(url.as_str()) {
                Ok(c) => conn = c.get_multiplexed_async_connection().await.ok(),
                Err(_) => return,
            }
            if conn.is_none() {
                if !reported {
                    eprintln!("demo gateway: cannot reach Redis at {url}; retrying");
                    reported = true;
                }
                last.clear();
            }
        }
        if let Some(c) = conn.as_mut() {
            let round = match state.lock() {
                Ok(st) => snapshot(&st, &mut last),
                Err(_) => return,
            };
            let mut pipe = redis::pipe();
            for (name, value, ttl) in &round.sets {
                match ttl {
                    Some(ms) => pipe
                        .cmd("SET")
                        .arg(name)
                        .arg(value)
                        .arg("PX")
                        .arg(*ms)
                        .ignore(),
                    None => pipe.cmd("SET").arg(name).arg(value).ignore(),
                };
            }
            for gone in written.difference(&round.names) {
                pipe.cmd("DEL").arg(gone).ignore();
            }
            for hash in round.changed.iter().take(MAX_NOTIFY) {
                let msg = format!(
                    r#"{{"command":"KeySpaceUpdateNotification","payload":"{hash}","signature":"","algorithm":5}}"#
                );
                pipe.cmd("PUBLISH")
                    .arg(NOTIFICATIONS_CHANNEL)
                    .arg(msg)
                    .ignore();
            }
            if pipe.query_async::<()>(c).await.is_ok() {
                written = round.names;
                reported = false;
            } else {
                if !reported {
                    eprintln!("demo gateway: lost Redis at {url}; retrying");
                    reported = true;
                }
                conn = None;
                last.clear();
            }
        }
        let wait = if conn.is_some() { EVERY } else { EVERY * 3 };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}
