//! Tyk's `user.SessionState` (key and org sessions), read tolerantly.
//!
//! Every Gateway version writes a different shape (TykTechnologies/tyk `user/session.go` across releases): ≤ v3.2.0 has `"limit": null`,
//! v3.2.2–v5.11 emits every field with `null` for nil maps, ≥ v5.12 omits zero fields. So every
//! field is optional, `null` means the zero value, integers may be written as floats (`100.0`)
//! and `last_updated` is a decimal string. Unknown fields are ignored (master keeps adding some).
//! Only the fields tykwatch uses are kept.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A key or organisation session as returned by `GET /tyk/keys/{id}` and `GET /tyk/org/keys/{org}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct SessionState {
    #[serde(deserialize_with = "lenient_f64")]
    pub rate: f64,
    #[serde(deserialize_with = "lenient_f64")]
    pub per: f64,
    /// Unix seconds; anything `< 1` means the key never expires.
    #[serde(deserialize_with = "lenient_i64")]
    pub expires: i64,
    /// `-1` unlimited, `0` no quota enforced.
    #[serde(deserialize_with = "lenient_i64")]
    pub quota_max: i64,
    #[serde(deserialize_with = "lenient_i64")]
    pub quota_renews: i64,
    #[serde(deserialize_with = "lenient_i64")]
    pub quota_remaining: i64,
    #[serde(deserialize_with = "lenient_i64")]
    pub quota_renewal_rate: i64,
    #[serde(deserialize_with = "null_as_default")]
    pub access_rights: BTreeMap<String, AccessDefinition>,
    #[serde(deserialize_with = "null_as_default")]
    pub org_id: String,
    #[serde(deserialize_with = "null_as_default")]
    pub is_inactive: bool,
    #[serde(deserialize_with = "null_as_default")]
    pub apply_policies: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub monitor: Monitor,
    pub meta_data: MetaData,
    #[serde(deserialize_with = "null_as_default")]
    pub tags: Vec<String>,
    #[serde(deserialize_with = "null_as_default")]
    pub alias: String,
    /// Unix seconds; Tyk writes it as a decimal string.
    #[serde(deserialize_with = "lenient_i64")]
    pub last_updated: i64,
}

/// A session's `meta_data` object, kept as its JSON text and parsed when it is read: a parsed
/// map costs a `BTreeMap` node (~600 bytes) a key, which a fleet of a million keys cannot
/// afford, and only notifications and the Detail view look inside it.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MetaData(Option<Box<str>>);

impl MetaData {
    pub fn from_map(map: &Map<String, Value>) -> MetaData {
        if map.is_empty() {
            return MetaData(None);
        }
        MetaData(serde_json::to_string(map).ok().map(String::into_boxed_str))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The parsed object (empty when there is none).
    pub fn map(&self) -> Map<String, Value> {
        self.0
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_default()
    }

    /// One field when it is a string.
    pub fn get_str(&self, field: &str) -> Option<String> {
        #[derive(Deserialize)]
        struct Fields<'a>(#[serde(borrow)] BTreeMap<&'a str, &'a serde_json::value::RawValue>);
        let text = self.0.as_deref()?;
        let Fields(fields) = serde_json::from_str(text).ok()?;
        serde_json::from_str::<String>(fields.get(field)?.get()).ok()
    }
}

impl std::fmt::Debug for MetaData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_deref().unwrap_or("{}"))
    }
}

impl<'de> Deserialize<'de> for MetaData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<MetaData, D::Error> {
        let Some(raw) = Option::<Box<serde_json::value::RawValue>>::deserialize(d)? else {
            return Ok(MetaData(None));
        };
        let text = raw.get().trim();
        if !text.starts_with('{') {
            return Err(de::Error::custom("meta_data: expected an object"));
        }
        // `{}` (or `{ }`) holds nothing.
        if text[1..].trim_start().starts_with('}') {
            return Ok(MetaData(None));
        }
        Ok(MetaData(Some(text.into())))
    }
}

/// `access_rights[api_id]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct AccessDefinition {
    #[serde(deserialize_with = "null_as_default")]
    pub api_name: String,
    #[serde(deserialize_with = "null_as_default")]
    pub api_id: String,
    /// `null` (≤ v3.2.0), absent (≥ v5.12 when empty), all-zero or populated.
    pub limit: Option<ApiLimit>,
    #[serde(deserialize_with = "null_as_default")]
    pub allowance_scope: String,
}

/// The per-API limit (`APILimit`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiLimit {
    #[serde(deserialize_with = "lenient_f64")]
    pub rate: f64,
    #[serde(deserialize_with = "lenient_f64")]
    pub per: f64,
    #[serde(deserialize_with = "lenient_f64")]
    pub throttle_interval: f64,
    #[serde(deserialize_with = "lenient_i64")]
    pub throttle_retry_limit: i64,
    #[serde(deserialize_with = "lenient_i64")]
    pub max_query_depth: i64,
    #[serde(deserialize_with = "lenient_i64")]
    pub quota_max: i64,
    #[serde(deserialize_with = "lenient_i64")]
    pub quota_renews: i64,
    #[serde(deserialize_with = "lenient_i64")]
    pub quota_remaining: i64,
    #[serde(deserialize_with = "lenient_i64")]
    pub quota_renewal_rate: i64,
}

impl ApiLimit {
    /// Tyk's `APILimit.IsEmpty`: every numeric field zero. Empty limits are ignored by the
    /// gateway's monitor and quota recomputation, so tykwatch ignores them too.
    pub fn is_empty(&self) -> bool {
        self.rate == 0.0
            && self.per == 0.0
            && self.throttle_interval == 0.0
            && self.throttle_retry_limit == 0
            && self.max_query_depth == 0
            && self.quota_max == 0
            && self.quota_renews == 0
            && self.quota_remaining == 0
            && self.quota_renewal_rate == 0
    }
}

/// `monitor`: per-session quota thresholds in percent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Monitor {
    #[serde(deserialize_with = "null_as_default")]
    pub trigger_limits: Vec<f64>,
}

impl SessionState {
    /// Parses a session body; the error says where the JSON went wrong.
    /// Only a JSON object is a session: serde would also accept an array for a struct.
    pub fn from_slice(body: &[u8]) -> Result<SessionState, serde_json::Error> {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|&b| b != b'{') {
            return Err(serde::de::Error::custom("expected a JSON object"));
        }
        serde_json::from_slice(body)
    }

    /// Non-empty per-API limits, in api_id order.
    pub fn api_limits(&self) -> impl Iterator<Item = (&str, &AccessDefinition, &ApiLimit)> {
        self.access_rights.iter().filter_map(|(api_id, acl)| {
            let limit = acl.limit.as_ref().filter(|l| !l.is_empty())?;
            Some((api_id.as_str(), acl, limit))
        })
    }

    /// `expires < 1` means never (gateway/auth_manager.go).
    pub fn is_expired(&self, now_unix: i64) -> bool {
        self.expires >= 1 && self.expires < now_unix
    }
}

/// `null` is the zero value, as Go's `encoding/json` writes nil maps and slices.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// An int64 that may be written `100`, `100.0`, `"1740823200"` or `null`.
fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    d.deserialize_any(NumberVisitor).map(|n| n.as_i64())
}

/// A float64 that may be `null`.
fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    d.deserialize_any(NumberVisitor).map(|n| n.as_f64())
}

#[derive(Clone, Copy)]
enum Number {
    Int(i64),
    Float(f64),
}

impl Number {
    fn as_i64(self) -> i64 {
        match self {
            Number::Int(i) => i,
            // Saturating cast: Go would refuse to decode, we keep the session readable.
            Number::Float(f) => f as i64,
        }
    }
    fn as_f64(self) -> f64 {
        match self {
            Number::Int(i) => i as f64,
            Number::Float(f) => f,
        }
    }
}

struct NumberVisitor;

impl<'de> Visitor<'de> for NumberVisitor {
    type Value = Number;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a number, a numeric string or null")
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Number, E> {
        Ok(Number::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Number, E> {
        Ok(Number::Int(i64::try_from(v).unwrap_or(i64::MAX)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Number, E> {
        Ok(Number::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Number, E> {
        let t = v.trim();
        if t.is_empty() {
            return Ok(Number::Int(0));
        }
        if let Ok(i) = t.parse::<i64>() {
            return Ok(Number::Int(i));
        }
        t.parse::<f64>()
            .map(Number::Float)
            .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Number, E> {
        Ok(Number::Int(0))
    }
    fn visit_none<E: de::Error>(self) -> Result<Number, E> {
        Ok(Number::Int(0))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Number, E> {
        Err(E::invalid_type(de::Unexpected::Bool(v), &self))
    }
}

/// `GET /hello` health body.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Hello {
    pub status: String,
    pub version: String,
    pub description: String,
    #[serde(deserialize_with = "null_as_default")]
    pub details: BTreeMap<String, HealthItem>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct HealthItem {
    pub status: String,
    pub output: String,
    #[serde(rename = "componentType")]
    pub component_type: String,
}

/// `GET /tyk/keys` and `GET /tyk/org/keys`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct KeyList {
    #[serde(deserialize_with = "null_as_default")]
    pub keys: Vec<String>,
}

/// Tyk's error body `{"status":"error","message":"…"}`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct ApiStatus {
    pub status: String,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_written_as_floats_and_strings() {
        let s = SessionState::from_slice(
            br#"{"quota_max":100.0,"quota_remaining":"7","last_updated":"1740823200","expires":null}"#,
        )
        .unwrap();
        assert_eq!(s.quota_max, 100);
        assert_eq!(s.quota_remaining, 7);
        assert_eq!(s.last_updated, 1740823200);
        assert_eq!(s.expires, 0);
    }

    #[test]
    fn null_maps_and_limits() {
        let s = SessionState::from_slice(
            br#"{"access_rights":{"a":{"api_id":"a","limit":null}},"meta_data":null,"tags":null,"monitor":{"trigger_limits":null}}"#,
        )
        .unwrap();
        assert!(s.access_rights["a"].limit.is_none());
        assert!(s.meta_data.is_empty() && s.tags.is_empty() && s.monitor.trigger_limits.is_empty());
        assert_eq!(s.api_limits().count(), 0);
    }

    #[test]
    fn meta_data_is_kept_as_text_and_read_on_demand() {
        let s = SessionState::from_slice(
            br#"{"meta_data":{"email":"dev@acme.example","n":3,"nested":{"a":[1]}}}"#,
        )
        .unwrap();
        assert_eq!(
            s.meta_data.get_str("email").as_deref(),
            Some("dev@acme.example")
        );
        assert_eq!(s.meta_data.get_str("n"), None);
        assert_eq!(s.meta_data.get_str("missing"), None);
        assert_eq!(s.meta_data.map()["nested"]["a"][0], 1);
        assert!(
            SessionState::from_slice(br#"{"meta_data":{ }}"#)
                .unwrap()
                .meta_data
                .is_empty()
        );
        assert!(SessionState::from_slice(br#"{"meta_data":[1]}"#).is_err());
        assert!(SessionState::from_slice(br#"{"meta_data":"x"}"#).is_err());
        let m = s.meta_data.map();
        assert_eq!(
            MetaData::from_map(&m),
            MetaData::from_map(&s.meta_data.map())
        );
        assert!(MetaData::from_map(&Map::new()).is_empty());
    }

    #[test]
    fn a_boolean_quota_is_an_error_not_a_panic() {
        assert!(SessionState::from_slice(br#"{"quota_max":true}"#).is_err());
        assert!(SessionState::from_slice(br#"{"quota_max":"x"}"#).is_err());
    }
}
