//! The demo's Tyk Dashboard Admin API for organisations (tyk.io/docs, Dashboard Admin API "Organisations"), served on the demo
//! gateway's listener under `/admin/…`: `admin-auth`, the `{"Status","Message","Meta"}` bodies
//! and statuses of `dashboard_responses.json`, and one document per demo org.
//!
//! Documents are kept as JSON text, unknown fields and key order included (a real Dashboard
//! would drop fields its Go struct lacks; keeping them lets tests see that a client sends them
//! back). Every PUT body is recorded so tests can compare it byte for byte with what was loaded.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;

use super::gojson::encode;
use super::population::{ORG_ACME, ORG_GLOBEX, ORG_INITECH};

/// The organisations and what was PUT, behind their own lock.
#[derive(Debug, Default)]
pub struct Documents {
    /// `(id, compact JSON text)` in creation order, as the Dashboard lists them.
    orgs: Vec<(String, String)>,
    /// Raw bodies of every PUT /admin/organisations/{id}, oldest first.
    pub puts: Vec<Vec<u8>>,
}

impl Documents {
    pub fn demo() -> Documents {
        Documents {
            orgs: [ACME, GLOBEX, INITECH]
                .into_iter()
                .zip([ORG_ACME, ORG_GLOBEX, ORG_INITECH])
                .map(|(text, id)| (id.to_owned(), compact(text)))
                .collect(),
            puts: Vec::new(),
        }
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.orgs.iter().position(|(o, _)| o == id)
    }

    /// The stored text of `id`.
    pub fn get(&self, id: &str) -> Option<&str> {
        self.position(id).map(|i| self.orgs[i].1.as_str())
    }
}

/// `ApiError` / `ApiResponse`: capitalised keys in the order Status, Message, Meta.
#[derive(Serialize)]
#[serde(rename_all = "PascalCase")]
struct ApiStatus<'a> {
    status: &'a str,
    message: &'a str,
    meta: Option<&'a str>,
}

fn reply(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn api(status: StatusCode, ok: bool, message: &str, meta: Option<&str>) -> Response {
    let body = encode(&ApiStatus {
        status: if ok { "OK" } else { "Error" },
        message,
        meta,
    })
    .unwrap_or_default();
    reply(status, body)
}

fn error(status: StatusCode, message: &str) -> Response {
    api(status, false, message, None)
}

/// A stored document (already compact JSON) with the final newline of Go's encoder.
fn document(text: &str) -> Response {
    let mut body = Vec::with_capacity(text.len() + 1);
    body.extend_from_slice(text.as_bytes());
    body.push(b'\n');
    reply(StatusCode::OK, body)
}

/// The paths this module answers (everything else stays the gateway's).
pub fn is_admin_path(path: &str) -> bool {
    path == "/admin" || path.starts_with("/admin/")
}

enum Route {
    List,
    Import,
    Org(String),
}

fn route(path: &str) -> Option<Route> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let rest = path.strip_prefix("/admin/organisations")?;
    match rest {
        "" => Some(Route::List),
        "/import" => Some(Route::Import),
        _ => {
            let id = rest.strip_prefix('/')?;
            (!id.is_empty() && !id.contains('/'))
                .then(|| Route::Org(super::server::percent_decode(id)))
        }
    }
}

/// One Admin API request.
pub fn handle(
    documents: &std::sync::Mutex<Documents>,
    admin_secret: &str,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response {
    let authorised = headers
        .get("admin-auth")
        .is_some_and(|v| v.as_bytes() == admin_secret.as_bytes());
    if !authorised {
        return error(StatusCode::UNAUTHORIZED, "Not authorised");
    }
    let Some(route) = route(path) else {
        return super::server::go_not_found();
    };
    let mut docs = documents.lock().unwrap_or_else(|e| e.into_inner());
    match (route, method) {
        (Route::List, &Method::GET) => {
            let mut list = String::from("{\"organisations\":[");
            for (i, (_, text)) in docs.orgs.iter().enumerate() {
                if i > 0 {
                    list.push(',');
                }
                list.push_str(text);
            }
            list.push_str("],\"pages\":0}");
            document(&list)
        }
        (Route::Import, &Method::POST) => match parse_org(body) {
            Err((status, message)) => error(status, message),
            Ok((value, text)) => {
                let Some(id) = value.get("id").and_then(Value::as_str).map(str::to_owned) else {
                    return error(StatusCode::BAD_REQUEST, "Request body malformed");
                };
                match docs.position(&id) {
                    Some(i) => docs.orgs[i].1 = text,
                    None => docs.orgs.push((id.clone(), text)),
                }
                api(StatusCode::OK, true, "Org imported", Some(&id))
            }
        },
        (Route::Org(id), &Method::GET) => match docs.get(&id) {
            Some(text) => document(text),
            None => error(StatusCode::NOT_FOUND, "Could not retrieve org detail"),
        },
        (Route::Org(id), &Method::PUT) => {
            docs.puts.push(body.to_vec());
            let Some(i) = docs.position(&id) else {
                return error(StatusCode::NOT_FOUND, "Could not retrieve org detail");
            };
            match parse_org(body) {
                Err((status, message)) => error(status, message),
                Ok((value, _)) if value.get("id").is_some_and(|b| b.as_str() != Some(&id)) => {
                    error(
                        StatusCode::BAD_REQUEST,
                        "Organisation ID in the body does not match the URL",
                    )
                }
                Ok((_, text)) => {
                    docs.orgs[i].1 = text;
                    api(StatusCode::OK, true, "Org updated", None)
                }
            }
        }
        (Route::Org(id), &Method::DELETE) => match docs.position(&id) {
            Some(i) => {
                docs.orgs.remove(i);
                api(StatusCode::OK, true, "Org deleted", None)
            }
            None => error(StatusCode::NOT_FOUND, "Could not retrieve org detail"),
        },
        _ => error(StatusCode::METHOD_NOT_ALLOWED, "Method not supported"),
    }
}

/// A request body that must be an organisation object: its value (for checks) and its text,
/// compacted as the Dashboard would re-encode it (key order kept).
fn parse_org(body: &Bytes) -> Result<(Value, String), (StatusCode, &'static str)> {
    if body.is_empty() {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            "Failed to read request body, body empty",
        ));
    }
    let text = std::str::from_utf8(body).ok();
    match text.map(|t| (serde_json::from_str::<Value>(t), t)) {
        Some((Ok(v @ Value::Object(_)), t)) => Ok((v, compact(t))),
        _ => Err((StatusCode::BAD_REQUEST, "Request body malformed")),
    }
}

/// Removes the whitespace between JSON tokens (not inside strings); order and numbers untouched.
fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// Acme is the shared `organisation.json` fixture (an unknown event and unknown fields).
const ACME: &str = r#"{
  "id": "5e9d9544a1dcd60001d0ed20",
  "owner_name": "Acme Payments Ltd.",
  "owner_slug": "acme",
  "cname_enabled": true,
  "cname": "developers.acme.example",
  "apis": [
    {"api_human_name": "Orders API", "api_id": "b84fe1a04e5648927971c0557971565c"},
    {"api_human_name": "Payments API", "api_id": "3f2a8d1c9e7b4b05a6c4d2e1f0a9b8c7"}
  ],
  "developer_quota": 500,
  "developer_count": 42,
  "event_options": {
    "api_event": {"webhook": "https://hooks.example.com/tyk/api-events", "email": "api-ops@example.com", "redis": false},
    "key_event": {"webhook": "", "email": "", "redis": true},
    "key_request_event": {"webhook": "https://hooks.example.com/tyk/key-requests", "email": "portal-admins@example.com", "redis": false},
    "future_event": {"webhook": "https://hooks.example.com/tyk/future", "email": "", "redis": false, "future_setting": 42}
  },
  "hybrid_enabled": false,
  "sso_enabled": false,
  "ui": {"languages": {}, "hide_help": false, "default_lang": "", "login_page": {}, "nav": {}, "uptime": {},
    "portal_section": {}, "designer": {}, "dont_show_admin_sockets": false, "dont_allow_license_management": false,
    "dont_allow_license_management_view": false, "cloud": false},
  "org_options_meta": {"billing_contact": "finance@acme.example", "sla_hours": 4.5},
  "additional_permissions": {},
  "open_policy": {"enabled": false, "rules": ""},
  "future_top_level_field": {"nested": [1, "two", true, null], "ratio": 0.25}
}"#;

/// Globex propagates key revocations to MDCB data planes (`redis` on key/hashed-key events).
const GLOBEX: &str = r#"{
  "id": "64b7c2e19f3a4d0001a7e5c3",
  "owner_name": "Globex Logistics",
  "owner_slug": "globex",
  "cname_enabled": false,
  "cname": "",
  "apis": [
    {"api_human_name": "Orders API", "api_id": "b84fe1a04e5648927971c0557971565c"},
    {"api_human_name": "Inventory API", "api_id": "7c1e5a9d3b2f4e6a8d0c1b3e5f7a9c2d"}
  ],
  "developer_quota": 100,
  "developer_count": 17,
  "event_options": {
    "key_event": {"webhook": "https://ops.globex.example/hooks/tyk-keys", "email": "platform@globex.example, security@globex.example", "redis": true},
    "hashed_key_event": {"webhook": "", "email": "", "redis": true},
    "key_request_event": {"webhook": "", "email": "developer-relations@globex.example", "redis": false},
    "password_reset_event": {"webhook": "", "email": "it-helpdesk@globex.example", "redis": false}
  },
  "hybrid_enabled": true,
  "sso_enabled": true,
  "ui": {"languages": {}, "hide_help": true, "default_lang": "de", "login_page": {}, "nav": {}, "uptime": {},
    "portal_section": {}, "designer": {}, "dont_show_admin_sockets": false, "dont_allow_license_management": true,
    "dont_allow_license_management_view": false, "cloud": false},
  "org_options_meta": {"region": "eu-west-1", "tier": "enterprise"},
  "additional_permissions": {"reports": "Reports"},
  "open_policy": {"enabled": false, "rules": ""},
  "mdcb_group": "globex-edge"
}"#;

/// Initech has only a portal password-reset address set up.
const INITECH: &str = r#"{
  "id": "65c0ffee4b1d2a0001f00d42",
  "owner_name": "Initech Labs",
  "owner_slug": "initech",
  "cname_enabled": false,
  "cname": "",
  "apis": [
    {"api_human_name": "Payments API", "api_id": "3f2a8d1c9e7b4b05a6c4d2e1f0a9b8c7"},
    {"api_human_name": "Inventory API", "api_id": "7c1e5a9d3b2f4e6a8d0c1b3e5f7a9c2d"}
  ],
  "developer_quota": 25,
  "developer_count": 3,
  "event_options": {
    "portal_password_reset_event": {"webhook": "", "email": "bill.lumbergh@initech.example", "redis": false}
  },
  "hybrid_enabled": false,
  "sso_enabled": false,
  "ui": {"languages": {}, "hide_help": false, "default_lang": "", "login_page": {}, "nav": {}, "uptime": {},
    "portal_section": {}, "designer": {}, "dont_show_admin_sockets": false, "dont_allow_license_management": false,
    "dont_allow_license_management_view": false, "cloud": false},
  "org_options_meta": {},
  "additional_permissions": {},
  "open_policy": {"enabled": false, "rules": ""}
}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tyk::demo::population::{API_INVENTORY, API_ORDERS, API_PAYMENTS};

    #[test]
    fn routes() {
        assert!(matches!(route("/admin/organisations"), Some(Route::List)));
        assert!(matches!(route("/admin/organisations/"), Some(Route::List)));
        assert!(matches!(
            route("/admin/organisations/import"),
            Some(Route::Import)
        ));
        assert!(matches!(
            route("/admin/organisations/a%2Fb"),
            Some(Route::Org(id)) if id == "a/b"
        ));
        assert!(route("/admin/organisations/a/generate-portals").is_none());
        assert!(route("/admin/users").is_none());
    }

    #[test]
    fn compact_keeps_strings() {
        assert_eq!(
            compact("{ \"a b\" : [1, \"x \\\" y\"],\n \"c\":1e3 }"),
            "{\"a b\":[1,\"x \\\" y\"],\"c\":1e3}"
        );
    }

    #[test]
    fn three_orgs_matching_the_population() {
        let docs = Documents::demo();
        assert_eq!(docs.orgs.len(), 3);
        let known_apis = [API_ORDERS, API_PAYMENTS, API_INVENTORY];
        for (id, text) in &docs.orgs {
            let v: Value = serde_json::from_str(text).unwrap();
            assert_eq!(v["id"], id.as_str());
            assert!(
                v["event_options"]
                    .as_object()
                    .is_some_and(|m| !m.is_empty())
            );
            for api in v["apis"].as_array().unwrap() {
                assert!(known_apis.contains(&api["api_id"].as_str().unwrap()));
            }
        }
        assert!(
            docs.get(ORG_ACME)
                .unwrap()
                .starts_with("{\"id\":\"5e9d9544a1dcd60001d0ed20\",\"owner_name\"")
        );
    }
}
