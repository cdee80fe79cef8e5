//! Classifies a `POST /events` body into an [`IntakeEvent`] (pure: no I/O, no clock).
//!
//! Forms (TykTechnologies/tyk `gateway/event_handler_webhooks.go`, `templates/default_webhook.json`; Tyk Dashboard event_options on tyk.io/docs):
//! - Tyk Gateway monitor webhook: `{"event":"TriggerExceeded","message","org","key","trigger_limit"}`
//!   rendered by Go `html/template`, so every value is HTML-escaped (`+` → `&#43;`, …) and
//!   `\`, tabs and control characters pass through raw — the body is not always valid JSON.
//!   It is therefore read literally first (values up to the next `"`, which the escaper never
//!   leaves raw), then as JSON (a custom template or sender).
//! - Gateway → Dashboard quota notification (`json.NewEncoder` of the monitor meta, no `event`).
//! - Dashboard `event_options` webhooks: `{"event":"<option>_event.<action>","data":…}`.
//! - Enterprise Developer Portal webhooks: `{"Event":…,"Message":…,"Timestamp":…}`.
//!
//! The raw API key of a trigger is kept only in [`RawKey`] (Debug masks it); every stored or
//! displayed form ([`IntakeEvent::payload`], `masked_key`, `summary`) is masked.

use std::fmt;

use serde_json::{Map, Value};

use crate::clock::UnixMs;
use crate::quota::mask_key;

/// Longest event name / summary piece kept (payloads may carry megabytes of text).
const MAX_NAME: usize = 128;
const MAX_PIECE: usize = 80;

/// Which sender's format an event came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// A quota trigger limit was reached (Tyk Gateway monitor).
    QuotaTrigger,
    /// A Tyk Dashboard `event_options` webhook (`api_event`, `key_event`, `key_request_event`, …).
    Dashboard,
    /// A Tyk Enterprise Developer Portal webhook.
    Portal,
}

impl EventKind {
    pub const ALL: [EventKind; 3] = [
        EventKind::QuotaTrigger,
        EventKind::Dashboard,
        EventKind::Portal,
    ];

    /// The `events.kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::QuotaTrigger => "quota_trigger",
            EventKind::Dashboard => "dashboard",
            EventKind::Portal => "portal",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A raw API key from a monitor webhook: for re-polling that key, never for display or storage.
#[derive(Clone, PartialEq, Eq)]
pub struct RawKey(String);

impl RawKey {
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn masked(&self) -> String {
        mask_key(&self.0)
    }
}

impl fmt::Debug for RawKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RawKey({:?})", self.masked())
    }
}

/// Where a quota trigger came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerSource {
    /// The Gateway's `monitor` webhook (`templates/monitor_template.json` or a custom template).
    MonitorWebhook,
    /// The Gateway → Dashboard `/system/key/quota_trigger` body (has `usage_percentage`).
    DashboardNotification,
}

/// The kind-specific part of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventDetail {
    QuotaTrigger {
        /// `None` for an org quota (Tyk sends `"key": ""`).
        key: Option<RawKey>,
        /// Percent; Tyk truncates it to an integer and sends it as a string.
        trigger_limit: Option<f64>,
        usage_percentage: Option<f64>,
        source: TriggerSource,
    },
    Dashboard {
        /// `key_request_event`, `api_event`, …
        option: String,
        /// `submitted`, `created`, …
        action: String,
    },
    Portal {
        timestamp: Option<String>,
    },
}

/// One accepted event. `Debug` is safe to print: the only raw key is inside [`RawKey`].
#[derive(Debug, Clone, PartialEq)]
pub struct IntakeEvent {
    /// Row id in the `events` table (0 until recorded).
    pub id: i64,
    pub received_at: UnixMs,
    /// `TriggerExceeded`, `key_request_event.submitted`, `UserRegistered`, …
    pub event: String,
    pub org_id: String,
    /// One line for lists; masked.
    pub summary: String,
    /// Masked key the event is about, or empty.
    pub masked_key: String,
    pub detail: EventDetail,
    /// The received JSON with every raw key masked (what is stored).
    pub payload: Value,
}

impl IntakeEvent {
    pub fn kind(&self) -> EventKind {
        match self.detail {
            EventDetail::QuotaTrigger { .. } => EventKind::QuotaTrigger,
            EventDetail::Dashboard { .. } => EventKind::Dashboard,
            EventDetail::Portal { .. } => EventKind::Portal,
        }
    }

    /// The key whose quota crossed a trigger limit: re-poll it now.
    pub fn raw_key(&self) -> Option<&RawKey> {
        match &self.detail {
            EventDetail::QuotaTrigger { key, .. } => key.as_ref(),
            _ => None,
        }
    }
}

/// Why a body was refused; the text is safe to return and never contains a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// Not JSON, not an object, or a known form with wrongly typed fields (400).
    Malformed(String),
    /// A JSON object in none of the accepted forms (422).
    Unrecognised(String),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Malformed(m) | Rejection::Unrecognised(m) => f.write_str(m),
        }
    }
}

const MONITOR_EVENT: &str = "TriggerExceeded";

const ACCEPTED: &str = "accepted: a Tyk monitor webhook (\"event\": \"TriggerExceeded\"), a Dashboard event \
     (\"event\": \"<option>_event.<action>\" with \"data\") or a Developer Portal event \
     (\"Event\", \"Message\", \"Timestamp\")";

/// Classifies a body. `id` and `received_at` are left 0 for the caller to fill in.
pub fn classify(body: &[u8]) -> Result<IntakeEvent, Rejection> {
    let text = std::str::from_utf8(body)
        .map_err(|e| Rejection::Malformed(format!("the body is not UTF-8 ({e})")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text).trim();
    if text.is_empty() {
        return Err(Rejection::Malformed(
            "the body is empty; expected a JSON object".to_owned(),
        ));
    }
    // Tyk's own template output first: literal values are the truth there (see module docs).
    if let Some(obj) = go_template_object(text)
        && obj.get("event").and_then(Value::as_str) == Some(MONITOR_EVENT)
    {
        return monitor(obj, TriggerSource::MonitorWebhook);
    }
    let value: Value = serde_json::from_str(text)
        .map_err(|e| Rejection::Malformed(format!("the body is not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(Rejection::Malformed(format!(
            "expected a JSON object, got {}",
            json_type(&value)
        )));
    };
    if let Some(ev) = obj.get("event") {
        let Some(name) = ev.as_str() else {
            return Err(Rejection::Malformed(format!(
                "\"event\" must be a string, got {}",
                json_type(ev)
            )));
        };
        if name == MONITOR_EVENT {
            return monitor(obj, TriggerSource::MonitorWebhook);
        }
        let name = name.to_owned();
        return dashboard(obj, name);
    }
    if let Some(ev) = obj.get("Event") {
        return portal(&obj, ev);
    }
    // `json.NewEncoder(meta)`: no event name, `trigger_limit` as a number.
    if obj.contains_key("key")
        && obj.contains_key("trigger_limit")
        && (obj.contains_key("org_id") || obj.contains_key("Message"))
    {
        return monitor(obj, TriggerSource::DashboardNotification);
    }
    Err(Rejection::Unrecognised(format!(
        "unrecognised payload ({}); {ACCEPTED}",
        describe_fields(&obj)
    )))
}

fn monitor(mut obj: Map<String, Value>, source: TriggerSource) -> Result<IntakeEvent, Rejection> {
    if source == TriggerSource::MonitorWebhook {
        // html/template escaped every value; JSON escapes (if any) were already applied.
        for v in obj.values_mut() {
            if let Value::String(s) = v
                && s.contains('&')
            {
                *s = html_unescape(s);
            }
        }
    }
    let key = opt_string(&obj, "key")?;
    let org_id = match opt_string(&obj, "org")? {
        Some(o) => o,
        None => opt_string(&obj, "org_id")?.unwrap_or_default(),
    };
    let trigger_limit = opt_number(&obj, "trigger_limit")?;
    let usage_percentage = opt_number(&obj, "usage_percentage")?;
    let key = key.filter(|k| !k.is_empty()).map(RawKey);
    let masked_key = key.as_ref().map(RawKey::masked).unwrap_or_default();
    // A custom monitor template may carry the key under another name (`api_key`, `token`…).
    let mut rest = Value::Object(std::mem::take(&mut obj));
    mask_secrets(&mut rest);
    if let Value::Object(o) = rest {
        obj = o;
    }
    if key.is_some() {
        obj.insert("key".to_owned(), Value::String(masked_key.clone()));
    }
    let limit = trigger_limit
        .map(|t| format!(" {}%", fmt_number(t)))
        .unwrap_or_default();
    let org = if org_id.is_empty() {
        "org unknown".to_owned()
    } else {
        format!("org {}", piece(&org_id))
    };
    let summary = match &key {
        Some(_) => format!("quota trigger{limit} reached: key {masked_key} ({org})"),
        None => format!("org quota trigger{limit} reached ({org})"),
    };
    Ok(IntakeEvent {
        id: 0,
        received_at: 0,
        event: MONITOR_EVENT.to_owned(),
        org_id,
        summary,
        masked_key,
        detail: EventDetail::QuotaTrigger {
            key,
            trigger_limit,
            usage_percentage,
            source,
        },
        payload: Value::Object(obj),
    })
}

fn dashboard(obj: Map<String, Value>, name: String) -> Result<IntakeEvent, Rejection> {
    let shown = piece(&name);
    let Some((option, action)) = name.split_once('.') else {
        return Err(Rejection::Unrecognised(format!(
            "unrecognised event \"{shown}\"; {ACCEPTED}"
        )));
    };
    let ident = |s: &str| {
        !s.is_empty()
            && s.len() <= MAX_NAME
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !option.ends_with("_event") || !ident(option) || !ident(action) {
        return Err(Rejection::Unrecognised(format!(
            "unrecognised event \"{shown}\" (Dashboard events are named <option>_event.<action>, e.g. key_request_event.submitted); {ACCEPTED}"
        )));
    }
    let Some(data) = obj.get("data") else {
        return Err(Rejection::Unrecognised(format!(
            "Dashboard event \"{shown}\" has no \"data\"; {ACCEPTED}"
        )));
    };
    let org_id = data
        .get("org_id")
        .and_then(Value::as_str)
        .map(|s| clip(s, MAX_NAME))
        .unwrap_or_default();
    let masked_key = ["key", "key_id"]
        .iter()
        .find_map(|f| data.get(*f).and_then(Value::as_str))
        .filter(|k| !k.is_empty())
        .map(mask_key)
        .unwrap_or_default();
    let mut summary = format!("Dashboard {name}");
    let developer = data
        .get("portal_developer")
        .and_then(|d| d.get("email"))
        .and_then(Value::as_str);
    let catalogue = data
        .get("catalogue_entry")
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| data.get("for_plan").and_then(Value::as_str));
    if let Some(dev) = developer {
        summary.push_str(&format!(": {}", piece(dev)));
        if let Some(c) = catalogue {
            summary.push_str(&format!(" → {}", piece(c)));
        }
    } else if let Some(label) = ["api_name", "name", "alias", "email", "api_id", "id"]
        .iter()
        .find_map(|f| data.get(*f).and_then(Value::as_str))
        .filter(|s| !s.is_empty())
    {
        summary.push_str(&format!(": {}", piece(label)));
    }
    if !masked_key.is_empty() {
        summary.push_str(&format!(" (key {masked_key})"));
    }
    let detail = EventDetail::Dashboard {
        option: option.to_owned(),
        action: action.to_owned(),
    };
    let mut payload = Value::Object(obj);
    mask_secrets(&mut payload);
    Ok(IntakeEvent {
        id: 0,
        received_at: 0,
        event: clip(&name, MAX_NAME),
        org_id,
        summary,
        masked_key,
        detail,
        payload,
    })
}

fn portal(obj: &Map<String, Value>, ev: &Value) -> Result<IntakeEvent, Rejection> {
    let Some(name) = ev.as_str().filter(|s| !s.is_empty()) else {
        return Err(Rejection::Malformed(format!(
            "\"Event\" must be a non-empty string, got {}",
            json_type(ev)
        )));
    };
    let Some(message) = obj.get("Message") else {
        return Err(Rejection::Unrecognised(format!(
            "Portal event \"{}\" has no \"Message\"; {ACCEPTED}",
            piece(name)
        )));
    };
    let timestamp = match obj.get("Timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(clip(s, MAX_NAME)),
        Some(other) => {
            return Err(Rejection::Malformed(format!(
                "\"Timestamp\" must be a string, got {}",
                json_type(other)
            )));
        }
    };
    let mut summary = format!("Portal {}", piece(name));
    let who = ["Email", "Name", "DisplayName"]
        .iter()
        .find_map(|f| message.get(*f).and_then(Value::as_str))
        .filter(|s| !s.is_empty());
    if let Some(who) = who {
        summary.push_str(&format!(": {}", piece(who)));
    }
    let mut payload = Value::Object(obj.clone());
    mask_secrets(&mut payload);
    Ok(IntakeEvent {
        id: 0,
        received_at: 0,
        event: clip(name, MAX_NAME),
        org_id: String::new(),
        summary,
        masked_key: String::new(),
        detail: EventDetail::Portal { timestamp },
        payload,
    })
}

fn opt_string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, Rejection> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(Rejection::Malformed(format!(
            "\"{field}\" must be a string, got {}",
            json_type(other)
        ))),
    }
}

/// A percentage as Tyk sends it: a JSON string (`"80"`, the template) or a number.
fn opt_number(obj: &Map<String, Value>, field: &str) -> Result<Option<f64>, Rejection> {
    let bad = || Rejection::Malformed(format!("\"{field}\" must be a number or a numeric string"));
    let n = match obj.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<f64>().map_err(|_| bad())?,
        Some(Value::Number(n)) => n.as_f64().ok_or_else(bad)?,
        Some(_) => return Err(bad()),
    };
    if n.is_finite() {
        Ok(Some(n))
    } else {
        Err(bad())
    }
}

/// Field names that hold API keys (lower case, no `_`/`-`): masked as keys are everywhere
/// (`5e9d…ef6d`), so a reader can still tell which key an event is about.
const KEY_FIELDS: &[&str] = &["key", "keyid", "apikey", "sessionkey", "keyhash"];

/// The documented rule for every other secret: a field whose name (lower case, `_`/`-`
/// removed) contains one of these is a secret wherever it appears, and its string value is
/// replaced by `****` whole (a short secret would show half of itself through a key mask).
/// It catches Tyk's `session.hmac_string`, `basic_auth_data.password`, `jwt_data.secret`,
/// the Portal's `ResetToken`, `ClientSecret`, OAuth `access_token` / `refresh_token`, …
pub const SECRET_NAME_PARTS: &[&str] = &[
    "secret",
    "token",
    "password",
    "passwd",
    "hmac",
    "credential",
    "privatekey",
    "signature",
    "authorization",
    "cookie",
];

/// Whether a (normalised) field name names a secret by [`SECRET_NAME_PARTS`].
fn is_secret_name(norm: &str) -> bool {
    SECRET_NAME_PARTS.iter().any(|part| norm.contains(part))
}

/// Masks raw keys and other secrets in Dashboard / Portal payloads. The Classic Portal lists a
/// developer's keys as the members of `keys` ({key → [policy]}) and the values of
/// `subscriptions` ({policy → key}); keys are raw unless the gateway hashes them.
fn mask_secrets(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(mask_secrets),
        Value::Object(map) => {
            for (name, val) in map.iter_mut() {
                let norm: String = name
                    .chars()
                    .filter(|c| *c != '_' && *c != '-')
                    .flat_map(char::to_lowercase)
                    .collect();
                match (norm.as_str(), &mut *val) {
                    ("keys", Value::Object(keys)) => {
                        let old = std::mem::take(keys);
                        for (k, policies) in old {
                            let mut masked = mask_key(&k);
                            let mut n = 2;
                            while keys.contains_key(&masked) {
                                masked = format!("{} #{n}", mask_key(&k));
                                n += 1;
                            }
                            keys.insert(masked, policies);
                        }
                    }
                    ("keys", Value::Array(list)) => mask_strings(list.iter_mut()),
                    ("subscriptions", Value::Object(subs)) => mask_strings(subs.values_mut()),
                    (n, Value::String(s)) if KEY_FIELDS.contains(&n) && !s.is_empty() => {
                        *s = mask_key(s);
                    }
                    (n, Value::String(s)) if is_secret_name(n) && !s.is_empty() => {
                        *s = "****".to_owned();
                    }
                    _ => {}
                }
                mask_secrets(val);
            }
        }
        _ => {}
    }
}

fn mask_strings<'a>(values: impl Iterator<Item = &'a mut Value>) {
    for v in values {
        if let Value::String(s) = v
            && !s.is_empty()
        {
            *s = mask_key(s);
        }
    }
}

/// Reverses Go `html/template`'s text escaper (`&#34; &#39; &amp; &lt; &gt; &#43;`) in one
/// pass, so `&amp;#43;` stays `&#43;`. Anything else is kept as sent.
pub fn html_unescape(s: &str) -> String {
    const ENTITIES: [(&str, char); 6] = [
        ("&#34;", '"'),
        ("&#39;", '\''),
        ("&amp;", '&'),
        ("&lt;", '<'),
        ("&gt;", '>'),
        ("&#43;", '+'),
    ];
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        match ENTITIES.iter().find(|(e, _)| rest.starts_with(e)) {
            Some((e, c)) => {
                out.push(*c);
                rest = &rest[e.len()..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Reads the flat object Tyk's templates produce, taking each quoted value literally (no JSON
/// escapes: Go's html/template leaves `\` and control characters raw and never a bare `"`).
/// Bare tokens (`{{.Meta.TriggerLimit}}` without quotes) are read as JSON scalars. A trailing
/// comma is allowed (the Tyk docs' sample has one). `None` when the text is not of that shape.
fn go_template_object(text: &str) -> Option<Map<String, Value>> {
    let mut p = Lit { s: text, i: 0 };
    p.ws();
    p.eat('{')?;
    let mut obj = Map::new();
    p.ws();
    if p.eat('}').is_some() {
        p.ws();
        return p.at_end().then_some(obj);
    }
    loop {
        p.ws();
        p.eat('"')?;
        let name = p.until_quote()?;
        p.ws();
        p.eat(':')?;
        p.ws();
        let value = if p.eat('"').is_some() {
            Value::String(p.until_quote()?.to_owned())
        } else {
            let token = p.bare();
            match serde_json::from_str::<Value>(token).ok()? {
                v @ (Value::Number(_) | Value::Bool(_) | Value::Null) => v,
                _ => return None,
            }
        };
        obj.insert(name.to_owned(), value);
        p.ws();
        if p.eat(',').is_some() {
            p.ws();
            if p.eat('}').is_some() {
                break;
            }
            continue;
        }
        p.eat('}')?;
        break;
    }
    p.ws();
    p.at_end().then_some(obj)
}

struct Lit<'a> {
    s: &'a str,
    i: usize,
}

impl<'a> Lit<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.i..]
    }
    fn ws(&mut self) {
        let r = self.rest();
        self.i += r.len() - r.trim_start_matches([' ', '\t', '\n', '\r']).len();
    }
    fn eat(&mut self, c: char) -> Option<()> {
        self.rest().starts_with(c).then(|| self.i += c.len_utf8())
    }
    /// Text up to the next `"`, which is consumed.
    fn until_quote(&mut self) -> Option<&'a str> {
        let r = self.rest();
        let end = r.find('"')?;
        self.i += end + 1;
        Some(&r[..end])
    }
    fn bare(&mut self) -> &'a str {
        let r = self.rest();
        let end = r.find([',', '}', ' ', '\t', '\n', '\r']).unwrap_or(r.len());
        self.i += end;
        &r[..end]
    }
    fn at_end(&self) -> bool {
        self.i == self.s.len()
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Names the top-level fields for a 422, hiding any name that could be a key.
fn describe_fields(obj: &Map<String, Value>) -> String {
    if obj.is_empty() {
        return "an empty object".to_owned();
    }
    let names: Vec<String> = obj
        .keys()
        .take(8)
        .map(|k| {
            let plain = k.len() <= 32
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if plain {
                format!("\"{k}\"")
            } else {
                "\"…\"".to_owned()
            }
        })
        .collect();
    let more = if obj.len() > names.len() { ", …" } else { "" };
    format!("fields {}{more}", names.join(", "))
}

/// `80` rather than `80.0`; fractions as sent.
fn fmt_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A display piece: control characters dropped, at most [`MAX_PIECE`] characters.
fn piece(s: &str) -> String {
    clip(s, MAX_PIECE)
}

fn clip(s: &str, max: usize) -> String {
    let mut out: String = s.chars().filter(|c| !c.is_control()).take(max).collect();
    if s.chars().filter(|c| !c.is_control()).nth(max).is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_is_single_pass() {
        assert_eq!(
            html_unescape("a&#43;b&amp;#43;c&lt;&gt;&#34;&#39;"),
            "a+b&#43;c<>\"'"
        );
        assert_eq!(html_unescape("&&x;&"), "&&x;&");
        assert_eq!(html_unescape("ключ&#43;"), "ключ+");
    }

    #[test]
    fn literal_reader_takes_backslashes_and_tabs_as_sent() {
        let o = go_template_object("{\n \"key\": \"a\\x\ty\",\n \"n\": 80,\n}\n").unwrap();
        assert_eq!(o["key"], "a\\x\ty");
        assert_eq!(o["n"], 80);
        assert!(go_template_object("{\"a\": \"x\\\"y\"}").is_none());
        assert!(go_template_object("{\"a\": [1]}").is_none());
        assert!(go_template_object("{\"a\": \"b\"} x").is_none());
        assert_eq!(go_template_object(" { } ").unwrap().len(), 0);
    }

    #[test]
    fn clip_counts_characters_and_drops_controls() {
        assert_eq!(clip("a\u{1b}[2Jb", 10), "a[2Jb");
        assert_eq!(clip("ééé", 2), "éé…");
    }
}
