//! Editing a key's (or an organisation's) `monitor.trigger_limits` at the gateway: the
//! console's `m` in the quota detail and `tykwatch key set-triggers`.
//!
//! Tyk has no call that changes one field: `PUT /tyk/keys/{id}` replaces the whole session,
//! and without `?suppress_reset=1` it also deletes the quota counters and restarts the period
//! (`gateway/api.go handleAddOrUpdate`). So a save reads the session as the gateway serves it,
//! changes only `monitor.trigger_limits`, and sends the rest back exactly as read (field order,
//! numbers, Go's escaping), with `suppress_reset=1`. An organisation is `PUT
//! /tyk/org/keys/{org}` without `reset_quota=1`, which leaves its counter alone.
//!
//! The conflict check: a save reads the session again first and refuses when anything but the
//! fields traffic changes (`quota_remaining`, `quota_renews`, …) differs from what the edit
//! was prepared on — someone else changed the key meanwhile. Redis is never written: with the
//! Redis source, edits go through the Gateway API (`[gateway] url`).

use crate::orgs::{Change, Json, diff};
use crate::tyk::demo::GoFormatter;
use crate::tyk::gateway::{Gateway, GatewayError};
use crate::tyk::mask::{mask_hash, mask_key};

/// At most this many limits (Tyk keeps no limit; a longer list is a typo).
pub const MAX_LIMITS: usize = 20;

/// Whose monitor is edited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A key: the token, or with `hashed` the hash a `hash_keys: true` gateway stores it under
    /// (sent with `?hashed=true`).
    Key {
        id: String,
        hashed: bool,
    },
    Org(String),
}

impl Target {
    /// The key masked (or the org id): what messages show.
    pub fn label(&self) -> String {
        match self {
            Target::Key { id, hashed: true } => format!("key {}", mask_hash(id)),
            Target::Key { id, .. } => format!("key {}", mask_key(id)),
            Target::Org(o) => format!("org {o}"),
        }
    }

    /// The write a save sends, key masked: shown before the confirm.
    pub fn put_call(&self) -> String {
        match self {
            Target::Key { id, hashed } => {
                let masked = if *hashed { mask_hash(id) } else { mask_key(id) };
                let hashed = if *hashed { "&hashed=true" } else { "" };
                format!("PUT /tyk/keys/{masked}?suppress_reset=1{hashed}")
            }
            Target::Org(o) => format!("PUT /tyk/org/keys/{o}"),
        }
    }
}

/// Why an edit was not saved.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    #[error("{0}")]
    Gateway(#[from] GatewayError),
    #[error("the gateway has no session for {0}")]
    NotFound(String),
    #[error("the gateway's session for {what} is not a JSON object with a monitor: {detail}")]
    Malformed { what: String, detail: String },
    /// The editor cannot reach the gateway at all (its task stopped).
    #[error("{0}")]
    Unavailable(String),
    /// The session changed at the gateway since the edit was prepared; nothing was written.
    #[error("not saved: {what} changed at the gateway since it was read ({}) — read it again and redo the edit", summary(.changes))]
    Conflict { what: String, changes: Vec<Change> },
}

fn summary(changes: &[Change]) -> String {
    let mut parts: Vec<String> = changes.iter().take(3).map(Change::path_string).collect();
    if changes.len() > 3 {
        parts.push(format!("{} more", changes.len() - 3));
    }
    parts.join(", ")
}

/// Parses `95,80,50` (commas or spaces; `-`, `none` or nothing for an empty list): each a
/// percentage above 0 and at most 100, none twice. Returned sorted descending, as Tyk keeps
/// them (its monitor checks them in order and fires the first one reached).
pub fn parse_limits(text: &str) -> Result<Vec<f64>, String> {
    let text = text.trim();
    if text.is_empty() || text == "-" || text.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    let mut out: Vec<f64> = Vec::new();
    for part in text.split([',', ' ']).filter(|p| !p.is_empty()) {
        let v: f64 = part
            .trim_end_matches('%')
            .parse()
            .map_err(|_| format!("{part:?} is not a number (percentages, e.g. 95,80,50)"))?;
        if !v.is_finite() || v <= 0.0 || v > 100.0 {
            return Err(format!(
                "{part} is not a percentage above 0 and at most 100"
            ));
        }
        if out.contains(&v) {
            return Err(format!("{part} is given twice"));
        }
        out.push(v);
    }
    if out.len() > MAX_LIMITS {
        return Err(format!("{} limits: at most {MAX_LIMITS}", out.len()));
    }
    out.sort_by(|a, b| b.total_cmp(a));
    Ok(out)
}

/// `95, 80, 50`, or `none`.
pub fn format_limits(limits: &[f64]) -> String {
    if limits.is_empty() {
        return "none".to_string();
    }
    limits
        .iter()
        .map(|v| number_text(*v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A limit as Go's `encoding/json` writes a float64 of this size: `95`, `92.5`.
fn number_text(v: f64) -> String {
    format!("{v}")
}

/// An edit ready to confirm: the session as read and the one a save would send.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    pub target: Target,
    pub before: Vec<f64>,
    pub after: Vec<f64>,
    /// What the save changes (only `monitor.trigger_limits`; empty when nothing changes).
    pub changes: Vec<Change>,
    /// The session as read: what the conflict check compares the re-read with.
    original: Json,
}

impl Prepared {
    pub fn unchanged(&self) -> bool {
        self.changes.is_empty()
    }
}

/// Reads the session and prepares setting its trigger limits to `limits` (sorted descending).
pub async fn prepare(gw: &Gateway, target: Target, limits: &[f64]) -> Result<Prepared, EditError> {
    let original = read(gw, &target).await?;
    Prepared::new(target, original, limits)
}

impl Prepared {
    /// The edit of `original` (a session as the gateway served it) to `limits`.
    pub fn new(target: Target, original: Json, limits: &[f64]) -> Result<Prepared, EditError> {
        let before = trigger_limits(&original);
        // Sorted before the diff, so the change shown is the one `save` writes.
        let mut after = limits.to_vec();
        after.sort_by(|a, b| b.total_cmp(a));
        let edited = with_limits(&original, &after, &target)?;
        let changes = changes(&original, &edited);
        Ok(Prepared {
            target,
            before,
            after,
            changes,
            original,
        })
    }
}

/// Saves a prepared edit: reads the session again, refuses with [`EditError::Conflict`] when
/// it changed beyond what traffic changes, and sends the fresh session with only the trigger
/// limits changed. Returns the limits now stored.
pub async fn save(gw: &Gateway, p: &Prepared) -> Result<Vec<f64>, EditError> {
    let current = read(gw, &p.target).await?;
    let theirs = diff(&stable(&p.original), &stable(&current));
    if !theirs.is_empty() {
        return Err(EditError::Conflict {
            what: p.target.label(),
            changes: theirs,
        });
    }
    let edited = with_limits(&current, &p.after, &p.target)?;
    if changes(&current, &edited).is_empty() {
        return Ok(p.after.clone());
    }
    let body = go_json(&edited);
    match &p.target {
        Target::Key { id, hashed } => gw.put_key_document(id, *hashed, body).await?,
        Target::Org(org) => gw.put_org_document(org, body).await?,
    }
    Ok(p.after.clone())
}

async fn read(gw: &Gateway, target: &Target) -> Result<Json, EditError> {
    let body = match target {
        Target::Key { id, hashed } => {
            gw.get_key_document(id, *hashed)
                .await
                .map_err(|e| match e {
                    GatewayError::KeyVanished { .. } => EditError::NotFound(target.label()),
                    e => EditError::Gateway(e),
                })?
        }
        Target::Org(org) => gw
            .get_org_document(org)
            .await?
            .ok_or_else(|| EditError::NotFound(target.label()))?,
    };
    let doc = Json::parse(&body).map_err(|e| EditError::Malformed {
        what: target.label(),
        detail: e.to_string(),
    })?;
    if doc.as_object().is_none() {
        return Err(EditError::Malformed {
            what: target.label(),
            detail: format!("it is {}", doc.kind()),
        });
    }
    Ok(doc)
}

/// `monitor.trigger_limits` of a session (`null` or absent: none).
pub fn trigger_limits(session: &Json) -> Vec<f64> {
    let Some(Json::Array(items)) = session
        .as_object()
        .and_then(|o| o.get("monitor"))
        .and_then(Json::as_object)
        .and_then(|m| m.get("trigger_limits"))
    else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|v| match v {
            Json::Number(n) => n.get().parse::<f64>().ok(),
            _ => None,
        })
        .collect()
}

/// `session` with `monitor.trigger_limits` set (a missing `monitor` is added); every other
/// field as read. Limits already equal by value keep their text (`80.0` stays `80.0`).
fn with_limits(session: &Json, limits: &[f64], target: &Target) -> Result<Json, EditError> {
    let mut out = session.clone();
    if trigger_limits(session) == limits {
        return Ok(out);
    }
    let malformed = |detail: &str| EditError::Malformed {
        what: target.label(),
        detail: detail.to_string(),
    };
    let obj = out
        .as_object_mut()
        .ok_or_else(|| malformed("not an object"))?;
    let monitor = obj.entry_or_insert_with("monitor", || Json::Object(Default::default()));
    if monitor.is_null() {
        *monitor = Json::Object(Default::default());
    }
    let monitor = monitor
        .as_object_mut()
        .ok_or_else(|| malformed("`monitor` is not an object"))?;
    let items = limits
        .iter()
        .map(|v| Json::number(&number_text(*v)))
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| malformed("a limit cannot be written as JSON"))?;
    monitor.insert("trigger_limits", Json::Array(items));
    Ok(out)
}

/// The changes from `a` to `b`, with an empty list and `null` alike (Go's nil slice).
fn changes(a: &Json, b: &Json) -> Vec<Change> {
    diff(a, b)
        .into_iter()
        .filter(|c| !(is_empty_list(c.old.as_ref()) && is_empty_list(c.new.as_ref())))
        .collect()
}

fn is_empty_list(v: Option<&Json>) -> bool {
    match v {
        None | Some(Json::Null) => true,
        Some(Json::Array(a)) => a.is_empty(),
        _ => false,
    }
}

/// Fields the gateway changes as traffic flows (recomputed remaining quota, renewal after a
/// period, the rate limiter's state): not a conflict when they differ between two reads.
const VOLATILE: &[&str] = &["quota_remaining", "quota_renews", "allowance", "last_check"];

/// The session without its [`VOLATILE`] fields, at the top and in each per-API limit.
fn stable(session: &Json) -> Json {
    let mut out = session.clone();
    let Some(obj) = out.as_object_mut() else {
        return out;
    };
    obj.retain(|k, _| !VOLATILE.contains(&k));
    if let Some(acl) = obj.get_mut("access_rights").and_then(Json::as_object_mut) {
        for (_, access) in acl.iter_mut() {
            if let Some(limit) = access
                .as_object_mut()
                .and_then(|a| a.get_mut("limit"))
                .and_then(Json::as_object_mut)
            {
                limit.retain(|k, _| !VOLATILE.contains(&k));
            }
        }
    }
    out
}

/// The session as Tyk's `encoding/json` writes it (`<`, `>`, `&` escaped, trailing newline),
/// so an unchanged field goes back byte for byte as the gateway served it.
fn go_json(doc: &Json) -> Vec<u8> {
    let mut buf = Vec::with_capacity(1024);
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, GoFormatter);
    // A `Json` holds only valid JSON: serializing it into memory cannot fail.
    if serde::Serialize::serialize(doc, &mut ser).is_err() {
        buf = doc.to_json().into_bytes();
    }
    buf.push(b'\n');
    buf
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sorts_and_refuses() {
        assert_eq!(parse_limits("50,95, 80").unwrap(), [95.0, 80.0, 50.0]);
        assert_eq!(parse_limits("92.5 100 1%").unwrap(), [100.0, 92.5, 1.0]);
        for empty in ["", " ", "-", "none", "NONE"] {
            assert_eq!(parse_limits(empty).unwrap(), Vec::<f64>::new());
        }
        assert!(parse_limits("80,80").unwrap_err().contains("twice"));
        assert!(parse_limits("0").unwrap_err().contains("above 0"));
        assert!(parse_limits("101").unwrap_err().contains("at most 100"));
        assert!(parse_limits("NaN").unwrap_err().contains("percentage"));
        assert!(parse_limits("8o").unwrap_err().contains("not a number"));
        let many: Vec<String> = (1..=21).map(|i| i.to_string()).collect();
        assert!(
            parse_limits(&many.join(","))
                .unwrap_err()
                .contains("at most 20")
        );
        assert_eq!(format_limits(&[95.0, 92.5]), "95, 92.5");
        assert_eq!(format_limits(&[]), "none");
    }

    fn target() -> Target {
        Target::Key {
            id: "abc".into(),
            hashed: false,
        }
    }

    #[test]
    fn sets_only_the_limits_and_keeps_the_rest_as_read() {
        let read = br#"{"quota_max":100,"monitor":{"trigger_limits":[80.0,50]},"meta_data":{"a":"<b>"},"x":1e3}"#;
        let doc = Json::parse(read).unwrap();
        assert_eq!(trigger_limits(&doc), [80.0, 50.0]);
        let edited = with_limits(&doc, &[95.0, 80.0, 50.0], &target()).unwrap();
        let body = String::from_utf8(go_json(&edited)).unwrap();
        assert_eq!(
            body,
            "{\"quota_max\":100,\"monitor\":{\"trigger_limits\":[95,80,50]},\"meta_data\":{\"a\":\"\\u003cb\\u003e\"},\"x\":1e3}\n"
        );
        let c = changes(&doc, &edited);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].path_string(), "monitor.trigger_limits");
        // Equal by value: nothing to send.
        assert!(changes(&doc, &with_limits(&doc, &[80.0, 50.0], &target()).unwrap()).is_empty());
    }

    #[test]
    fn adds_a_missing_monitor_and_treats_null_as_empty() {
        let doc = Json::parse(br#"{"quota_max":5}"#).unwrap();
        let edited = with_limits(&doc, &[90.0], &target()).unwrap();
        assert_eq!(
            edited.to_json(),
            r#"{"quota_max":5,"monitor":{"trigger_limits":[90]}}"#
        );
        let null = Json::parse(br#"{"monitor":{"trigger_limits":null}}"#).unwrap();
        assert!(changes(&null, &with_limits(&null, &[], &target()).unwrap()).is_empty());
        let bad = Json::parse(br#"{"monitor":[]}"#).unwrap();
        assert!(matches!(
            with_limits(&bad, &[90.0], &target()),
            Err(EditError::Malformed { .. })
        ));
    }

    #[test]
    fn traffic_is_not_a_conflict_but_an_edit_is() {
        let a = Json::parse(
            br#"{"quota_remaining":10,"quota_renews":1,"rate":5,"access_rights":{"api":{"limit":{"quota_remaining":3,"quota_max":9}}}}"#,
        )
        .unwrap();
        let traffic = Json::parse(
            br#"{"quota_remaining":7,"quota_renews":2,"rate":5,"access_rights":{"api":{"limit":{"quota_remaining":1,"quota_max":9}}}}"#,
        )
        .unwrap();
        assert!(diff(&stable(&a), &stable(&traffic)).is_empty());
        let edit = Json::parse(
            br#"{"quota_remaining":7,"quota_renews":2,"rate":6,"access_rights":{"api":{"limit":{"quota_remaining":1,"quota_max":10}}}}"#,
        )
        .unwrap();
        let paths: Vec<String> = diff(&stable(&a), &stable(&edit))
            .iter()
            .map(Change::path_string)
            .collect();
        assert_eq!(paths, ["rate", "access_rights.api.limit.quota_max"]);
    }

    #[test]
    fn the_change_shown_is_sorted_as_saved() {
        let doc = Json::parse(br#"{"monitor":{"trigger_limits":[80]}}"#).unwrap();
        let p = Prepared::new(target(), doc, &[50.0, 95.0]).unwrap();
        assert_eq!(p.after, [95.0, 50.0]);
        assert_eq!(
            p.changes[0].to_string(),
            "monitor.trigger_limits: [80] → [95,50]"
        );
    }

    #[test]
    fn put_calls_never_reset() {
        assert_eq!(
            Target::Key {
                id: "0123456789abcdef".into(),
                hashed: true
            }
            .put_call(),
            format!(
                "PUT /tyk/keys/{}?suppress_reset=1&hashed=true",
                mask_hash("0123456789abcdef")
            )
        );
        assert_eq!(Target::Org("o1".into()).put_call(), "PUT /tyk/org/keys/o1");
    }
}
