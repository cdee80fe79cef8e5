//! The demo gateway's full `user.SessionState`, written in the v3.2.2–v5.11 shape (every field
//! emitted, Go struct order; TykTechnologies/tyk `user/session.go`), and read leniently from PUT/POST bodies of
//! any version's shape.
//!
//! The crate's reading model (`tyk::session`) keeps only what tykwatch uses; the demo must keep
//! everything a client may send back, so it has its own.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};

use super::gojson::{go_value, i64_as_string};

/// `user.SessionState` as v5.8 writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Session {
    pub last_check: i64,
    pub allowance: f64,
    pub rate: f64,
    pub per: f64,
    pub throttle_interval: f64,
    pub throttle_retry_limit: i64,
    pub max_query_depth: i64,
    /// RFC 3339 with nanoseconds, as Go's `time.Time` marshals (`0001-01-01T00:00:00Z` when zero).
    pub date_created: String,
    pub expires: i64,
    pub quota_max: i64,
    pub quota_renews: i64,
    pub quota_remaining: i64,
    pub quota_renewal_rate: i64,
    /// `None` = Go nil map (`null`).
    pub access_rights: Option<BTreeMap<String, AccessDefinition>>,
    pub org_id: String,
    pub oauth_client_id: String,
    #[serde(serialize_with = "go_value")]
    pub oauth_keys: Value,
    pub certificate: String,
    pub basic_auth_data: BasicAuthData,
    pub jwt_data: JwtData,
    pub hmac_enabled: bool,
    pub enable_http_signature_validation: bool,
    pub hmac_string: String,
    pub rsa_certificate_id: String,
    pub is_inactive: bool,
    pub apply_policy_id: String,
    pub apply_policies: Option<Vec<String>>,
    pub data_expires: i64,
    pub monitor: Monitor,
    pub enable_detail_recording: bool,
    pub enable_detailed_recording: bool,
    #[serde(serialize_with = "go_value")]
    pub meta_data: Value,
    pub tags: Option<Vec<String>>,
    pub alias: String,
    #[serde(serialize_with = "i64_as_string")]
    pub last_updated: i64,
    pub id_extractor_deadline: i64,
    pub session_lifetime: i64,
    #[serde(serialize_with = "go_value")]
    pub smoothing: Value,
}

/// `user.AccessDefinition` (`access_rights[api_id]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AccessDefinition {
    pub api_name: String,
    pub api_id: String,
    pub versions: Option<Vec<String>>,
    #[serde(serialize_with = "go_value")]
    pub allowed_urls: Value,
    #[serde(serialize_with = "go_value")]
    pub restricted_types: Value,
    #[serde(serialize_with = "go_value")]
    pub allowed_types: Value,
    pub limit: ApiLimit,
    #[serde(serialize_with = "go_value")]
    pub field_access_rights: Value,
    pub disable_introspection: bool,
    pub allowance_scope: String,
    /// `omitempty`.
    #[serde(serialize_with = "go_value", skip_serializing_if = "is_empty_value")]
    pub endpoints: Value,
}

/// `user.APILimit`, the per-API limit.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct ApiLimit {
    pub rate: f64,
    pub per: f64,
    /// `omitempty` pointer: omitted when null.
    #[serde(serialize_with = "go_value", skip_serializing_if = "Value::is_null")]
    pub smoothing: Value,
    pub throttle_interval: f64,
    pub throttle_retry_limit: i64,
    pub max_query_depth: i64,
    pub quota_max: i64,
    pub quota_renews: i64,
    pub quota_remaining: i64,
    pub quota_renewal_rate: i64,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct BasicAuthData {
    pub password: String,
    pub hash_type: String,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct JwtData {
    pub secret: String,
}

/// `{"trigger_limits": [...]}`; `None` = `null`.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Monitor {
    pub trigger_limits: Option<Vec<f64>>,
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

impl ApiLimit {
    /// `APILimit.IsEmpty`: every numeric field is zero.
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

    fn from_json(v: &Value) -> ApiLimit {
        let o = v.as_object();
        ApiLimit {
            rate: f64_of(o, "rate"),
            per: f64_of(o, "per"),
            smoothing: value_of(o, "smoothing"),
            throttle_interval: f64_of(o, "throttle_interval"),
            throttle_retry_limit: i64_of(o, "throttle_retry_limit"),
            max_query_depth: i64_of(o, "max_query_depth"),
            quota_max: i64_of(o, "quota_max"),
            quota_renews: i64_of(o, "quota_renews"),
            quota_remaining: i64_of(o, "quota_remaining"),
            quota_renewal_rate: i64_of(o, "quota_renewal_rate"),
        }
    }
}

impl AccessDefinition {
    /// An ACL entry as Tyk writes it for a key created through the API: versions `["Default"]`,
    /// `allowed_urls: []`, nil slices elsewhere, empty limit.
    pub fn new(api_id: &str, api_name: &str) -> AccessDefinition {
        AccessDefinition {
            api_name: api_name.to_string(),
            api_id: api_id.to_string(),
            versions: Some(vec!["Default".to_string()]),
            allowed_urls: Value::Array(Vec::new()),
            restricted_types: Value::Null,
            allowed_types: Value::Null,
            limit: ApiLimit::default(),
            field_access_rights: Value::Null,
            disable_introspection: false,
            allowance_scope: String::new(),
            endpoints: Value::Null,
        }
    }

    fn from_json(v: &Value) -> AccessDefinition {
        let o = v.as_object();
        AccessDefinition {
            api_name: string_of(o, "api_name"),
            api_id: string_of(o, "api_id"),
            versions: strings_of(o, "versions"),
            allowed_urls: value_of(o, "allowed_urls"),
            restricted_types: value_of(o, "restricted_types"),
            allowed_types: value_of(o, "allowed_types"),
            limit: o
                .and_then(|o| o.get("limit"))
                .map(ApiLimit::from_json)
                .unwrap_or_default(),
            field_access_rights: value_of(o, "field_access_rights"),
            disable_introspection: bool_of(o, "disable_introspection"),
            allowance_scope: string_of(o, "allowance_scope"),
            endpoints: value_of(o, "endpoints"),
        }
    }
}

impl Session {
    /// A zero session (what Go marshals for `user.SessionState{}`).
    pub fn zero() -> Session {
        Session {
            last_check: 0,
            allowance: 0.0,
            rate: 0.0,
            per: 0.0,
            throttle_interval: 0.0,
            throttle_retry_limit: 0,
            max_query_depth: 0,
            date_created: ZERO_TIME.to_string(),
            expires: 0,
            quota_max: 0,
            quota_renews: 0,
            quota_remaining: 0,
            quota_renewal_rate: 0,
            access_rights: None,
            org_id: String::new(),
            oauth_client_id: String::new(),
            oauth_keys: Value::Null,
            certificate: String::new(),
            basic_auth_data: BasicAuthData::default(),
            jwt_data: JwtData::default(),
            hmac_enabled: false,
            enable_http_signature_validation: false,
            hmac_string: String::new(),
            rsa_certificate_id: String::new(),
            is_inactive: false,
            apply_policy_id: String::new(),
            apply_policies: None,
            data_expires: 0,
            monitor: Monitor::default(),
            enable_detail_recording: false,
            enable_detailed_recording: false,
            meta_data: Value::Null,
            tags: None,
            alias: String::new(),
            last_updated: 0,
            id_extractor_deadline: 0,
            session_lifetime: 0,
            smoothing: Value::Null,
        }
    }

    /// Reads a session from a request body of any Gateway version's shape: every field optional,
    /// `null` = zero value, integers also accepted as floats or decimal strings. Errors only when
    /// the body is not a JSON object.
    pub fn from_json(bytes: &[u8]) -> Result<Session, String> {
        let v: Value = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        let Some(o) = v.as_object() else {
            return Err("session must be a JSON object".to_string());
        };
        let o = Some(o);
        let access_rights = match o.and_then(|o| o.get("access_rights")) {
            Some(Value::Object(m)) => Some(
                m.iter()
                    .map(|(k, v)| (k.clone(), AccessDefinition::from_json(v)))
                    .collect(),
            ),
            _ => None,
        };
        let sub = |name: &str| o.and_then(|o| o.get(name)).and_then(Value::as_object);
        Ok(Session {
            last_check: i64_of(o, "last_check"),
            allowance: f64_of(o, "allowance"),
            rate: f64_of(o, "rate"),
            per: f64_of(o, "per"),
            throttle_interval: f64_of(o, "throttle_interval"),
            throttle_retry_limit: i64_of(o, "throttle_retry_limit"),
            max_query_depth: i64_of(o, "max_query_depth"),
            date_created: match o.and_then(|o| o.get("date_created")) {
                Some(Value::String(s)) if !s.is_empty() => s.clone(),
                _ => ZERO_TIME.to_string(),
            },
            expires: i64_of(o, "expires"),
            quota_max: i64_of(o, "quota_max"),
            quota_renews: i64_of(o, "quota_renews"),
            quota_remaining: i64_of(o, "quota_remaining"),
            quota_renewal_rate: i64_of(o, "quota_renewal_rate"),
            access_rights,
            org_id: string_of(o, "org_id"),
            oauth_client_id: string_of(o, "oauth_client_id"),
            oauth_keys: value_of(o, "oauth_keys"),
            certificate: string_of(o, "certificate"),
            basic_auth_data: BasicAuthData {
                password: string_of(sub("basic_auth_data"), "password"),
                hash_type: string_of(sub("basic_auth_data"), "hash_type"),
            },
            jwt_data: JwtData {
                secret: string_of(sub("jwt_data"), "secret"),
            },
            hmac_enabled: bool_of(o, "hmac_enabled"),
            enable_http_signature_validation: bool_of(o, "enable_http_signature_validation"),
            hmac_string: string_of(o, "hmac_string"),
            rsa_certificate_id: string_of(o, "rsa_certificate_id"),
            is_inactive: bool_of(o, "is_inactive"),
            apply_policy_id: string_of(o, "apply_policy_id"),
            apply_policies: strings_of(o, "apply_policies"),
            data_expires: i64_of(o, "data_expires"),
            monitor: Monitor {
                trigger_limits: match sub("monitor").and_then(|m| m.get("trigger_limits")) {
                    Some(Value::Array(a)) => Some(a.iter().filter_map(lenient_f64).collect()),
                    _ => None,
                },
            },
            enable_detail_recording: bool_of(o, "enable_detail_recording"),
            enable_detailed_recording: bool_of(o, "enable_detailed_recording"),
            meta_data: value_of(o, "meta_data"),
            tags: strings_of(o, "tags"),
            alias: string_of(o, "alias"),
            last_updated: i64_of(o, "last_updated"),
            id_extractor_deadline: i64_of(o, "id_extractor_deadline"),
            session_lifetime: i64_of(o, "session_lifetime"),
            smoothing: value_of(o, "smoothing"),
        })
    }
}

type Obj<'a> = Option<&'a Map<String, Value>>;

fn value_of(o: Obj<'_>, name: &str) -> Value {
    o.and_then(|o| o.get(name)).cloned().unwrap_or(Value::Null)
}

fn string_of(o: Obj<'_>, name: &str) -> String {
    match o.and_then(|o| o.get(name)) {
        Some(Value::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn bool_of(o: Obj<'_>, name: &str) -> bool {
    matches!(o.and_then(|o| o.get(name)), Some(Value::Bool(true)))
}

fn strings_of(o: Obj<'_>, name: &str) -> Option<Vec<String>> {
    match o.and_then(|o| o.get(name)) {
        Some(Value::Array(a)) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
        ),
        _ => None,
    }
}

fn lenient_f64(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn f64_of(o: Obj<'_>, name: &str) -> f64 {
    o.and_then(|o| o.get(name))
        .and_then(lenient_f64)
        .unwrap_or(0.0)
}

fn i64_of(o: Obj<'_>, name: &str) -> i64 {
    match o.and_then(|o| o.get(name)) {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        Some(Value::String(s)) => {
            let s = s.trim();
            s.parse::<i64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().map(|f| f as i64))
                .unwrap_or(0)
        }
        _ => 0,
    }
}

/// Go's zero `time.Time` marshalled.
pub const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Wall-clock Unix seconds.
pub fn now_unix() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::super::gojson::encode;
    use super::*;

    const V5_8: &str = include_str!("../../../tests/fixtures/session_v5_8.json");
    const ORG: &str = include_str!("../../../tests/fixtures/org_session.json");
    const UNLIMITED: &str = include_str!("../../../tests/fixtures/session_unlimited.json");

    const ORDERS: &str = "b84fe1a04e5648927971c0557971565c";

    /// `session_v5_8.json` built field by field.
    fn portal_key() -> Session {
        let limit = ApiLimit {
            rate: 100.0,
            per: 60.0,
            quota_max: 1000,
            quota_renews: 1_740_826_800,
            quota_remaining: 150,
            quota_renewal_rate: 3600,
            ..ApiLimit::default()
        };
        let mut acl = AccessDefinition::new(ORDERS, "Orders API");
        acl.limit = limit;
        let mut meta = Map::new();
        meta.insert(
            "tyk_developer_id".to_string(),
            Value::String("62b3fb9a1d5e4f00017226f5".to_string()),
        );
        Session {
            allowance: 100.0,
            rate: 100.0,
            per: 60.0,
            date_created: crate::timefmt::rfc3339_nanos(1_740_823_200, 123_456_789),
            quota_max: 1000,
            quota_renews: 1_740_826_800,
            quota_remaining: 150,
            quota_renewal_rate: 3600,
            access_rights: Some(BTreeMap::from([(ORDERS.to_string(), acl)])),
            org_id: "5e9d9544a1dcd60001d0ed20".to_string(),
            apply_policies: Some(vec!["5ead7120575961000181867e".to_string()]),
            monitor: Monitor {
                trigger_limits: Some(vec![90.0, 75.0, 50.0]),
            },
            meta_data: Value::Object(meta),
            tags: Some(vec!["edge".to_string()]),
            alias: "portal-key".to_string(),
            last_updated: 1_740_823_200,
            ..Session::zero()
        }
    }

    fn org_session() -> Session {
        Session {
            quota_max: 100_000,
            quota_renews: 1_740_873_600,
            quota_remaining: 12_000,
            quota_renewal_rate: 86_400,
            org_id: "5e9d9544a1dcd60001d0ed20".to_string(),
            monitor: Monitor {
                trigger_limits: Some(vec![95.0, 80.0, 60.0]),
            },
            last_updated: 1_740_787_200,
            ..Session::zero()
        }
    }

    #[test]
    fn serializer_reproduces_session_v5_8_fixture() {
        let out = encode(&portal_key()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), V5_8);
    }

    #[test]
    fn serializer_reproduces_org_session_fixture() {
        let out = encode(&org_session()).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), ORG);
    }

    #[test]
    fn fixtures_round_trip_through_lenient_reader() {
        for fixture in [V5_8, ORG, UNLIMITED] {
            let s = Session::from_json(fixture.as_bytes()).unwrap();
            let out = encode(&s).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), fixture);
        }
        assert_eq!(Session::from_json(V5_8.as_bytes()).unwrap(), portal_key());
    }

    #[test]
    fn reads_other_shapes() {
        let v512 = include_str!("../../../tests/fixtures/session_v5_12.json");
        let s = Session::from_json(v512.as_bytes()).unwrap();
        assert_eq!(s.quota_max, 1000);
        assert_eq!(s.last_updated, 1_740_823_200);
        assert_eq!(s.monitor.trigger_limits, Some(vec![90.0, 75.0, 50.0]));
        let v320 = include_str!("../../../tests/fixtures/session_v3_2_0_limit_null.json");
        let s = Session::from_json(v320.as_bytes()).unwrap();
        for acl in s.access_rights.unwrap_or_default().values() {
            assert!(acl.limit.is_empty());
        }
        assert!(Session::from_json(b"[1]").is_err());
        assert!(Session::from_json(b"{").is_err());
    }

    #[test]
    fn time_format() {
        assert_eq!(crate::timefmt::rfc3339_nanos(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            crate::timefmt::rfc3339_nanos(1_740_823_200, 0),
            "2025-03-01T10:00:00Z"
        );
        assert_eq!(
            crate::timefmt::rfc3339_nanos(1_740_066_409, 551_200_000),
            "2025-02-20T15:46:49.5512Z"
        );
        assert_eq!(
            crate::timefmt::rfc3339_nanos(951_782_400, 0),
            "2000-02-29T00:00:00Z"
        );
    }
}
