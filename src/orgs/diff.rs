//! Field-level differences between two documents: the pending changes shown before a save, and
//! what changed on the Dashboard (or in the file) when a save meets a conflict.

use std::fmt;

use super::document::{EventField, OrgDocument};
use super::json::{Json, Object};

/// One leaf that differs. `None` = the field is absent on that side.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    /// Object keys from the document root, e.g. `["event_options", "key_event", "webhook"]`.
    pub path: Vec<String>,
    pub old: Option<Json>,
    pub new: Option<Json>,
}

impl Change {
    /// `event_options.key_event.webhook`; control characters shown as `?`.
    pub fn path_string(&self) -> String {
        let joined = self.path.join(".");
        joined
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect()
    }

    /// `(event, field)` when the change is to one of an event's known fields.
    pub fn event_field(&self) -> Option<(&str, EventField)> {
        match self.path.as_slice() {
            [root, event, field] if root == "event_options" => {
                field.parse().ok().map(|f| (event.as_str(), f))
            }
            _ => None,
        }
    }
}

/// `path: old → new`, values as compact JSON (strings quoted, so control characters are
/// escaped), an absent side as `(none)`.
impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} → {}",
            self.path_string(),
            show(self.old.as_ref()),
            show(self.new.as_ref())
        )
    }
}

fn show(v: Option<&Json>) -> String {
    match v {
        None => "(none)".to_owned(),
        Some(v) => v.to_string(),
    }
}

/// What saving `edited` over `original` would change.
pub fn pending_changes(original: &OrgDocument, edited: &OrgDocument) -> Vec<Change> {
    diff(&original.to_json_value(), &edited.to_json_value())
}

/// Leaf-level differences in `a`'s field order, then fields only `b` has. Objects are walked
/// (also when one side is absent or `null`, which Go treats alike for maps); arrays and scalars
/// are compared whole.
pub fn diff(a: &Json, b: &Json) -> Vec<Change> {
    let mut out = Vec::new();
    walk(&mut Vec::new(), Some(a), Some(b), &mut out);
    out
}

/// `Some(Some(map))` for an object, `Some(None)` for absent or `null` (an empty map to Go),
/// `None` for anything else.
fn as_obj(v: Option<&Json>) -> Option<Option<&Object>> {
    match v {
        Some(Json::Object(m)) => Some(Some(m)),
        None | Some(Json::Null) => Some(None),
        Some(_) => None,
    }
}

fn walk(path: &mut Vec<String>, a: Option<&Json>, b: Option<&Json>, out: &mut Vec<Change>) {
    let any_object = matches!(a, Some(Json::Object(_))) || matches!(b, Some(Json::Object(_)));
    if any_object && let (Some(ma), Some(mb)) = (as_obj(a), as_obj(b)) {
        let keys = ma
            .iter()
            .flat_map(|m| m.keys())
            .chain(mb.iter().flat_map(|m| m.keys()))
            .fold(Vec::<&String>::new(), |mut keys, k| {
                if !keys.contains(&k) {
                    keys.push(k);
                }
                keys
            });
        for key in keys {
            path.push(key.clone());
            walk(
                path,
                ma.and_then(|m| m.get(key)),
                mb.and_then(|m| m.get(key)),
                out,
            );
            path.pop();
        }
        return;
    }
    if a != b {
        out.push(Change {
            path: path.clone(),
            old: a.cloned(),
            new: b.cloned(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn j(text: &str) -> Json {
        Json::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn leaf_changes_in_order() {
        let a = j(
            r#"{"id": "o", "event_options": {"key_event": {"webhook": "", "redis": true}}, "n": [1]}"#,
        );
        let b = j(
            r#"{"id": "o", "event_options": {"key_event": {"webhook": "https://h", "redis": true},
            "api_event": {"email": "a@b.c"}}, "n": [1, 2]}"#,
        );
        let changes: Vec<String> = diff(&a, &b).iter().map(ToString::to_string).collect();
        assert_eq!(
            changes,
            [
                r#"event_options.key_event.webhook: "" → "https://h""#,
                r#"event_options.api_event.email: (none) → "a@b.c""#,
                "n: [1] → [1,2]",
            ]
        );
        assert_eq!(
            diff(&a, &b)[0].event_field(),
            Some(("key_event", EventField::Webhook))
        );
        assert!(diff(&a, &a).is_empty());
    }

    #[test]
    fn null_and_scalars_against_objects() {
        let a = j(r#"{"event_options": null, "x": 1}"#);
        let b = j(r#"{"event_options": {"k": {"redis": true}}, "x": {"y": 1}}"#);
        let changes: Vec<String> = diff(&a, &b).iter().map(ToString::to_string).collect();
        assert_eq!(
            changes,
            ["event_options.k.redis: (none) → true", r#"x: 1 → {"y":1}"#]
        );
    }
}
