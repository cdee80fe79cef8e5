//! An organisation document (`GET /admin/organisations/{id}`), held as JSON so that a PUT sends
//! back every field exactly as loaded — unknown ones included, in the same order
//! (`serde_json/preserve_order`) — with a typed view over `event_options`.
//!
//! `event_options` is Go's `map[string]EventConfig{webhook, email, redis}` (Tyk Dashboard Admin API, Organisations: tyk.io/docs).
//! Edits write only the field they touch: the Dashboard replaces the whole document on PUT, so
//! anything rewritten "for tidiness" would be a change nobody asked for.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

use super::json::{Json, Object};
use super::validate::{check_email_list, check_webhook};

/// The event names the Dashboard documents (tyk.io/docs, Tyk Dashboard "Organisation event options"), in the order a form shows them.
pub const KNOWN_EVENTS: [&str; 6] = [
    "api_event",
    "key_event",
    "key_request_event",
    "hashed_key_event",
    "password_reset_event",
    "portal_password_reset_event",
];

const EVENT_OPTIONS: &str = "event_options";

/// Why a JSON value is not a usable organisation document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DocumentError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error(
        "not a JSON object (an organisation document looks like {{\"id\": \"…\", \"owner_name\": …}})"
    )]
    NotAnObject,
    #[error("has no \"id\" (a non-empty string naming the organisation)")]
    MissingId,
    #[error(
        "event_options must be an object of event name → {{webhook, email, redis}}, found {found}"
    )]
    BadEventOptions { found: &'static str },
    #[error("event_options.{event} must be an object {{webhook, email, redis}}, found {found}")]
    BadEvent { event: String, found: &'static str },
    #[error("event_options.{event}.{field} must be {expected}, found {found}")]
    BadField {
        event: String,
        field: EventField,
        expected: &'static str,
        found: &'static str,
    },
}

/// An edit that cannot be applied. Messages never quote the value (URLs carry tokens).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error(
        "expected EVENT.FIELD=VALUE, e.g. key_event.webhook=https://hooks.example.com/tyk (got {0:?})"
    )]
    Syntax(String),
    #[error("unknown event {event:?} (known events: {})", known.join(", "))]
    UnknownEvent { event: String, known: Vec<String> },
    #[error("unknown field {field:?} of {event} (fields: webhook, email, redis)")]
    UnknownField { event: String, field: String },
    #[error("{event}.{field}: {reason}")]
    Invalid {
        event: String,
        field: EventField,
        reason: String,
    },
}

/// One field of an `EventConfig`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventField {
    Webhook,
    Email,
    Redis,
}

impl EventField {
    /// In Go's declaration order.
    pub const ALL: [EventField; 3] = [EventField::Webhook, EventField::Email, EventField::Redis];

    pub fn as_str(self) -> &'static str {
        match self {
            EventField::Webhook => "webhook",
            EventField::Email => "email",
            EventField::Redis => "redis",
        }
    }
}

impl fmt::Display for EventField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventField {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        EventField::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or(())
    }
}

/// The effective settings of one event (absent fields read as Go's zero values).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventConfig {
    pub webhook: String,
    pub email: String,
    pub redis: bool,
}

impl EventConfig {
    pub fn get(&self, field: EventField) -> EventSetting {
        match field {
            EventField::Webhook => EventSetting::Webhook(self.webhook.clone()),
            EventField::Email => EventSetting::Email(self.email.clone()),
            EventField::Redis => EventSetting::Redis(self.redis),
        }
    }
}

/// One event of the typed view.
#[derive(Debug, Clone, PartialEq)]
pub struct EventView {
    pub name: String,
    pub config: EventConfig,
    /// The document has an entry for it (documented events are listed even when absent).
    pub present: bool,
    /// One of [`KNOWN_EVENTS`].
    pub documented: bool,
    /// Fields of the entry tykwatch does not know, in document order; kept as they are, shown
    /// read-only.
    pub extra: Vec<(String, Json)>,
}

/// A new value for one field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventSetting {
    Webhook(String),
    Email(String),
    Redis(bool),
}

impl EventSetting {
    pub fn field(&self) -> EventField {
        match self {
            EventSetting::Webhook(_) => EventField::Webhook,
            EventSetting::Email(_) => EventField::Email,
            EventSetting::Redis(_) => EventField::Redis,
        }
    }

    /// The value rules: webhook = empty or absolute http(s) URL; email = empty or an address list.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            EventSetting::Webhook(url) => check_webhook(url),
            EventSetting::Email(list) => check_email_list(list),
            EventSetting::Redis(_) => Ok(()),
        }
    }

    fn to_json(&self) -> Json {
        match self {
            EventSetting::Webhook(s) | EventSetting::Email(s) => Json::String(s.clone()),
            EventSetting::Redis(b) => Json::Bool(*b),
        }
    }
}

/// `event.field = value`, as typed on the command line or produced by a form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldEdit {
    pub event: String,
    pub setting: EventSetting,
}

impl FieldEdit {
    pub fn new(event: impl Into<String>, setting: EventSetting) -> FieldEdit {
        FieldEdit {
            event: event.into(),
            setting,
        }
    }

    /// Parses `EVENT.FIELD=VALUE` (`redis` takes `true` or `false`) and checks the value. Whether
    /// the event exists is checked by [`OrgDocument::apply`], which knows the document.
    pub fn parse(assignment: &str) -> Result<FieldEdit, EditError> {
        let Some((target, value)) = assignment.split_once('=') else {
            return Err(EditError::Syntax(assignment.chars().take(60).collect()));
        };
        let Some((event, field)) = target.rsplit_once('.') else {
            return Err(EditError::Syntax(target.to_owned()));
        };
        if event.is_empty() {
            return Err(EditError::Syntax(target.to_owned()));
        }
        let field_kind = EventField::from_str(field).map_err(|()| EditError::UnknownField {
            event: event.to_owned(),
            field: field.to_owned(),
        })?;
        let setting = match field_kind {
            EventField::Webhook => EventSetting::Webhook(value.to_owned()),
            EventField::Email => EventSetting::Email(value.to_owned()),
            EventField::Redis => match value.trim() {
                "true" => EventSetting::Redis(true),
                "false" => EventSetting::Redis(false),
                _ => {
                    return Err(EditError::Invalid {
                        event: event.to_owned(),
                        field: EventField::Redis,
                        reason: "must be true or false".to_owned(),
                    });
                }
            },
        };
        let edit = FieldEdit::new(event, setting);
        edit.check_value()?;
        Ok(edit)
    }

    /// The value rules only (no document needed): what a form runs on every keystroke.
    pub fn check_value(&self) -> Result<(), EditError> {
        self.setting
            .validate()
            .map_err(|reason| EditError::Invalid {
                event: self.event.clone(),
                field: self.setting.field(),
                reason,
            })
    }
}

/// An organisation document. Equality is JSON equality (object key order does not matter).
#[derive(Debug, Clone, PartialEq)]
pub struct OrgDocument {
    doc: Object,
}

impl OrgDocument {
    /// Checks the shape tykwatch relies on: an object with a string `id`, and `event_options`
    /// (when present and not `null`) an object of objects with string/bool fields.
    pub fn from_json(json: Json) -> Result<OrgDocument, DocumentError> {
        let Json::Object(doc) = json else {
            return Err(DocumentError::NotAnObject);
        };
        if doc
            .get("id")
            .and_then(Json::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(DocumentError::MissingId);
        }
        match doc.get(EVENT_OPTIONS) {
            None | Some(Json::Null) => {}
            Some(Json::Object(events)) => {
                for (event, entry) in events.iter() {
                    check_entry(event, entry)?;
                }
            }
            Some(other) => {
                return Err(DocumentError::BadEventOptions {
                    found: other.kind(),
                });
            }
        }
        Ok(OrgDocument { doc })
    }

    /// Parses a document, keeping its key order and number text.
    pub fn from_slice(bytes: &[u8]) -> Result<OrgDocument, DocumentError> {
        let json = Json::parse(bytes).map_err(|e| DocumentError::Json(e.to_string()))?;
        OrgDocument::from_json(json)
    }

    /// From a `serde_json::Value` (whose keys come sorted).
    pub fn from_value(value: &Value) -> Result<OrgDocument, DocumentError> {
        OrgDocument::from_json(Json::from(value))
    }

    pub fn id(&self) -> &str {
        self.doc.get("id").and_then(Json::as_str).unwrap_or("")
    }

    /// `owner_name`, or "" when the document has none.
    pub fn name(&self) -> &str {
        self.doc
            .get("owner_name")
            .and_then(Json::as_str)
            .unwrap_or("")
    }

    /// The whole document, every field as loaded, in order.
    pub fn as_object(&self) -> &Object {
        &self.doc
    }

    pub fn to_json_value(&self) -> Json {
        Json::Object(self.doc.clone())
    }

    /// As a `serde_json::Value`, for code that wants one (key order is not kept there).
    pub fn to_value(&self) -> Value {
        self.to_json_value().to_value()
    }

    /// Compact JSON, fields in their loaded order and numbers as loaded: the PUT body.
    pub fn to_json(&self) -> Vec<u8> {
        // Strings, raw numbers and containers of them: serializing cannot fail.
        serde_json::to_vec(&self.doc).unwrap_or_default()
    }

    /// Two-space indented JSON with a final newline: `org get` and the offline files.
    pub fn to_pretty_json(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.doc).unwrap_or_default();
        text.push('\n');
        text
    }

    /// `event_options` has an entry for `event`.
    pub fn has_event(&self, event: &str) -> bool {
        self.events_map().is_some_and(|m| m.contains_key(event))
    }

    /// The names an edit may target: the documented ones, then any other the document has.
    pub fn event_names(&self) -> Vec<String> {
        let mut names: Vec<String> = KNOWN_EVENTS.iter().map(|s| (*s).to_owned()).collect();
        if let Some(map) = self.events_map() {
            for name in map.keys() {
                if !KNOWN_EVENTS.contains(&name.as_str()) {
                    names.push(name.clone());
                }
            }
        }
        names
    }

    /// The effective settings of `event`; `None` when the document has no entry for it.
    pub fn event(&self, event: &str) -> Option<EventConfig> {
        let entry = self.events_map()?.get(event)?;
        let field = |f: EventField| entry.as_object().and_then(|o| o.get(f.as_str()));
        let text = |f: EventField| field(f).and_then(Json::as_str).unwrap_or("").to_owned();
        Some(EventConfig {
            webhook: text(EventField::Webhook),
            email: text(EventField::Email),
            redis: field(EventField::Redis)
                .and_then(Json::as_bool)
                .unwrap_or(false),
        })
    }

    /// Every event of [`OrgDocument::event_names`], for a form.
    pub fn events(&self) -> Vec<EventView> {
        self.event_names()
            .into_iter()
            .map(|name| {
                let extra = self
                    .events_map()
                    .and_then(|m| m.get(&name))
                    .and_then(Json::as_object)
                    .map(|entry| {
                        entry
                            .iter()
                            .filter(|(k, _)| EventField::from_str(k).is_err())
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                let config = self.event(&name);
                EventView {
                    documented: KNOWN_EVENTS.contains(&name.as_str()),
                    present: config.is_some(),
                    config: config.unwrap_or_default(),
                    name,
                    extra,
                }
            })
            .collect()
    }

    /// Sets one field. Only that field changes: a missing `event_options` or event entry is
    /// created holding just it; setting the value the field already has (absent = "" / false)
    /// changes nothing, so a form can apply all its fields and the diff stays exact.
    pub fn apply(&mut self, edit: &FieldEdit) -> Result<(), EditError> {
        let known = self.event_names();
        if !known.contains(&edit.event) {
            return Err(EditError::UnknownEvent {
                event: edit.event.clone(),
                known,
            });
        }
        edit.check_value()?;
        let field = edit.setting.field();
        let current = self.event(&edit.event).unwrap_or_default().get(field);
        if current == edit.setting {
            return Ok(());
        }
        let options = self
            .doc
            .entry_or_insert_with(EVENT_OPTIONS, || Json::Object(Object::new()));
        // Only `null` is not an object here (`from_json` rejects other types): Go's nil map.
        if options.as_object().is_none() {
            *options = Json::Object(Object::new());
        }
        if let Some(events) = options.as_object_mut() {
            let entry = events.entry_or_insert_with(&edit.event, || Json::Object(Object::new()));
            if entry.as_object().is_none() {
                *entry = Json::Object(Object::new());
            }
            if let Some(fields) = entry.as_object_mut() {
                fields.insert(field.as_str(), edit.setting.to_json());
            }
        }
        Ok(())
    }

    /// Applies every edit or none: the first error leaves the document unchanged.
    pub fn apply_all(&mut self, edits: &[FieldEdit]) -> Result<(), EditError> {
        let mut next = self.clone();
        for edit in edits {
            next.apply(edit)?;
        }
        *self = next;
        Ok(())
    }

    fn events_map(&self) -> Option<&Object> {
        self.doc.get(EVENT_OPTIONS).and_then(Json::as_object)
    }
}

fn check_entry(event: &str, entry: &Json) -> Result<(), DocumentError> {
    let fields = match entry {
        Json::Object(fields) => fields,
        Json::Null => return Ok(()),
        other => {
            return Err(DocumentError::BadEvent {
                event: event.to_owned(),
                found: other.kind(),
            });
        }
    };
    for field in EventField::ALL {
        let (ok, expected) = match (field, fields.get(field.as_str())) {
            (_, None | Some(Json::Null)) => (true, ""),
            (EventField::Redis, Some(v)) => (v.as_bool().is_some(), "true or false"),
            (_, Some(v)) => (v.as_str().is_some(), "a string"),
        };
        if !ok {
            return Err(DocumentError::BadField {
                event: event.to_owned(),
                field,
                expected,
                found: fields.get(field.as_str()).map_or("nothing", Json::kind),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(text: &str) -> OrgDocument {
        OrgDocument::from_slice(text.as_bytes()).unwrap()
    }

    #[test]
    fn shape_errors() {
        assert_eq!(
            OrgDocument::from_value(&json!([1])),
            Err(DocumentError::NotAnObject)
        );
        assert_eq!(
            OrgDocument::from_value(&json!({"id": ""})),
            Err(DocumentError::MissingId)
        );
        assert!(matches!(
            OrgDocument::from_value(&json!({"id": "o", "event_options": "x"})),
            Err(DocumentError::BadEventOptions { .. })
        ));
        assert!(matches!(
            OrgDocument::from_value(
                &json!({"id": "o", "event_options": {"key_event": {"redis": "yes"}}})
            ),
            Err(DocumentError::BadField {
                field: EventField::Redis,
                ..
            })
        ));
        assert!(OrgDocument::from_value(&json!({"id": "o", "event_options": null})).is_ok());
    }

    #[test]
    fn parse_assignments() {
        let e = FieldEdit::parse("key_event.webhook=https://h/x?a=b=c").unwrap();
        assert_eq!(e.event, "key_event");
        assert_eq!(e.setting, EventSetting::Webhook("https://h/x?a=b=c".into()));
        assert_eq!(
            FieldEdit::parse("key_event.redis=true").unwrap().setting,
            EventSetting::Redis(true)
        );
        assert!(matches!(
            FieldEdit::parse("key_event.redis=1"),
            Err(EditError::Invalid { .. })
        ));
        assert!(matches!(
            FieldEdit::parse("key_event.hook=x"),
            Err(EditError::UnknownField { .. })
        ));
        assert!(matches!(
            FieldEdit::parse("key_event"),
            Err(EditError::Syntax(_))
        ));
        assert!(matches!(
            FieldEdit::parse("webhook=x"),
            Err(EditError::Syntax(_))
        ));
        assert!(matches!(
            FieldEdit::parse("key_event.email=nope"),
            Err(EditError::Invalid { .. })
        ));
    }

    #[test]
    fn edits_touch_one_field_and_keep_order() {
        let mut d = doc(r#"{"id": "o", "z": 1e3, "event_options": {
                "key_event": {"webhook": "", "email": "", "redis": true, "x": 2}
            }, "a": 0.250}"#);
        d.apply(&FieldEdit::parse("key_event.email=a@b.c").unwrap())
            .unwrap();
        assert_eq!(
            String::from_utf8(d.to_json()).unwrap(),
            r#"{"id":"o","z":1e3,"event_options":{"key_event":{"webhook":"","email":"a@b.c","redis":true,"x":2}},"a":0.250}"#
        );
        let before = d.clone();
        d.apply(&FieldEdit::parse("api_event.webhook=").unwrap())
            .unwrap();
        assert_eq!(d, before, "setting the effective value is no change");
        let extra = &d.events()[1].extra;
        assert_eq!(extra.len(), 1);
        assert_eq!(extra[0].0, "x");
    }

    #[test]
    fn missing_event_options_are_created() {
        let mut d = doc(r#"{"id": "o"}"#);
        assert!(d.events().iter().all(|e| !e.present));
        d.apply(&FieldEdit::parse("hashed_key_event.redis=true").unwrap())
            .unwrap();
        assert_eq!(
            d.to_value(),
            json!({"id": "o", "event_options": {"hashed_key_event": {"redis": true}}})
        );
        let mut n = doc(r#"{"id": "o", "event_options": null}"#);
        n.apply(&FieldEdit::parse("key_event.webhook=http://h").unwrap())
            .unwrap();
        assert_eq!(n.event("key_event").unwrap().webhook, "http://h");
    }

    #[test]
    fn unknown_events_are_rejected_with_the_list() {
        let mut d = doc(r#"{"id": "o", "event_options": {"future_event": {}}}"#);
        let err = d
            .apply(&FieldEdit::parse("nope_event.email=a@b.c").unwrap())
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("nope_event") && text.contains("future_event"),
            "{text}"
        );
        assert!(
            d.apply(&FieldEdit::parse("future_event.email=a@b.c").unwrap())
                .is_ok()
        );
        let before = d.clone();
        let edits = [
            FieldEdit::parse("key_event.email=a@b.c").unwrap(),
            FieldEdit::parse("bad.email=a@b.c").unwrap(),
        ];
        assert!(d.apply_all(&edits).is_err());
        assert_eq!(d, before, "all or nothing");
    }
}
