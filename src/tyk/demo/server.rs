//! The HTTP side: Tyk's control API routes (`gateway/server.go loadControlAPIEndpoints`,
//! `gateway/api.go`) and `/hello`, dispatched by hand so that percent-encoded key ids (`%2F`),
//! trailing slashes, auth-before-method and Tyk's exact error bodies behave as on a real gateway.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use serde::Serialize;

use super::dashboard::{self, Documents};
use super::gojson::encode;
use super::model::Session;
use super::state::{State, WriteResult, now_with_nanos};
use crate::timefmt::rfc3339_nanos as rfc3339;

/// Version reported by `/hello`.
pub const GATEWAY_VERSION: &str = "v5.8.0";

/// What the handlers share.
pub struct Shared {
    pub state: Arc<Mutex<State>>,
    pub secret: String,
    /// `admin-auth` of the demo Dashboard Admin API.
    pub admin_secret: String,
    /// The demo Dashboard's organisations (its own lock: the simulator never touches them).
    pub dashboard: Mutex<Documents>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

#[derive(Serialize)]
struct StatusMessage<'a> {
    status: &'a str,
    message: &'a str,
}

#[derive(Serialize)]
struct ModifyKeySuccess<'a> {
    key: &'a str,
    status: &'a str,
    action: &'a str,
}

#[derive(Serialize)]
struct KeyList<'a> {
    keys: Vec<&'a str>,
}

#[derive(Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    description: &'static str,
    details: BTreeMap<&'static str, HealthItem>,
}

#[derive(Serialize)]
struct HealthItem {
    status: &'static str,
    #[serde(rename = "componentType")]
    component_type: &'static str,
    time: String,
}

fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match encode(value) {
        Ok(body) => json_bytes(status, body),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal error"),
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    // Cannot fail: two strings.
    let body = encode(&StatusMessage {
        status: "error",
        message,
    })
    .unwrap_or_default();
    json_bytes(status, body)
}

fn not_supported() -> Response {
    error(StatusCode::METHOD_NOT_ALLOWED, "Method not supported")
}

/// Go's `http.NotFound` (what gorilla/mux answers for an unknown path).
pub(super) fn go_not_found() -> Response {
    let mut resp = Response::new(Body::from("404 page not found\n"));
    *resp.status_mut() = StatusCode::NOT_FOUND;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    resp
}

fn write_result(r: WriteResult) -> Response {
    match r {
        WriteResult::Ok { key, action } => json(
            StatusCode::OK,
            &ModifyKeySuccess {
                key: &key,
                status: "ok",
                action,
            },
        ),
        WriteResult::NotFound => error(StatusCode::NOT_FOUND, "Key is not found"),
        WriteResult::BadRequest(m) => error(StatusCode::BAD_REQUEST, m),
        WriteResult::ServerError(m) => error(StatusCode::INTERNAL_SERVER_ERROR, m),
    }
}

enum Route {
    Hello,
    Keys,
    KeyCreate,
    Key(String),
    OrgKeys,
    Org(String),
    Reload,
}

fn route(path: &str) -> Option<Route> {
    let path = if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    if path == "/hello" {
        return Some(Route::Hello);
    }
    let rest = path.strip_prefix("/tyk/")?;
    match rest {
        "keys" => Some(Route::Keys),
        "keys/create" => Some(Route::KeyCreate),
        "org/keys" => Some(Route::OrgKeys),
        "reload" | "reload/group" => Some(Route::Reload),
        // The id is everything after `keys/` so that a base64 key works whether the client
        // sent its `/` raw or as `%2F`.
        _ => rest
            .strip_prefix("keys/")
            .map(|id| Route::Key(percent_decode(id)))
            .or_else(|| {
                rest.strip_prefix("org/keys/")
                    .map(|org| Route::Org(percent_decode(org)))
            }),
    }
}

/// `%XX` decoding of a path (`+` stays `+`); malformed escapes are kept literally.
pub(super) fn percent_decode(s: &str) -> String {
    decode(s, false)
}

fn decode(s: &str, plus_is_space: bool) -> String {
    let s = if plus_is_space {
        std::borrow::Cow::Owned(s.replace('+', " "))
    } else {
        std::borrow::Cow::Borrowed(s)
    };
    percent_encoding::percent_decode_str(&s)
        .decode_utf8_lossy()
        .into_owned()
}

/// `r.URL.Query().Get(name)`: the first value, `+` as space, `""` when absent.
fn query_get(uri: &Uri, name: &str) -> String {
    uri.query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k, true) == name).then(|| decode(v, true))
        })
        .unwrap_or_default()
}

async fn handle(
    AxState(shared): AxState<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // The demo Dashboard shares the listener: one URL serves both APIs.
    if dashboard::is_admin_path(uri.path()) {
        return dashboard::handle(
            &shared.dashboard,
            &shared.admin_secret,
            &method,
            uri.path(),
            &headers,
            &body,
        );
    }
    let Some(route) = route(uri.path()) else {
        return go_not_found();
    };
    if let Route::Hello = route {
        return hello(&method);
    }
    // `checkIsAPIOwner`: exact compare of `x-tyk-authorization` with the secret.
    let authorised = headers
        .get("x-tyk-authorization")
        .is_some_and(|v| v.as_bytes() == shared.secret.as_bytes());
    if !authorised {
        return error(
            StatusCode::FORBIDDEN,
            "Attempted administrative access with invalid or missing key!",
        );
    }
    match route {
        Route::Hello => hello(&method),
        Route::Reload => match method {
            Method::GET => json(
                StatusCode::OK,
                &StatusMessage {
                    status: "ok",
                    message: "",
                },
            ),
            _ => not_supported(),
        },
        Route::Keys => match method {
            Method::GET => {
                let filter = query_get(&uri, "filter");
                let api_id = query_get(&uri, "api_id");
                let st = shared.lock();
                json(
                    StatusCode::OK,
                    &KeyList {
                        keys: st.list_keys(&filter, &api_id),
                    },
                )
            }
            Method::POST => create_key(&shared, None, false, &body),
            _ => not_supported(),
        },
        Route::KeyCreate if method == Method::POST => create_key(&shared, None, true, &body),
        Route::KeyCreate => key(&shared, &method, &uri, "create", &body),
        Route::Key(id) => key(&shared, &method, &uri, &id, &body),
        Route::OrgKeys => match method {
            Method::GET => {
                let filter = query_get(&uri, "filter");
                let st = shared.lock();
                let keys = st
                    .orgs
                    .keys()
                    .map(String::as_str)
                    .filter(|o| o.starts_with(filter.as_str()))
                    .collect();
                json(StatusCode::OK, &KeyList { keys })
            }
            _ => not_supported(),
        },
        Route::Org(org) => org_route(&shared, &method, &uri, &org, &body),
    }
}

fn hello(method: &Method) -> Response {
    if method != Method::GET {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    let (now, _) = now_with_nanos();
    let health = Health {
        status: "pass",
        version: GATEWAY_VERSION,
        description: "Tyk GW",
        details: BTreeMap::from([(
            "redis",
            HealthItem {
                status: "pass",
                component_type: "datastore",
                time: rfc3339(now, 0),
            },
        )]),
    };
    json(StatusCode::OK, &health)
}

fn malformed() -> Response {
    error(StatusCode::BAD_REQUEST, "Request malformed")
}

fn create_key(shared: &Shared, custom: Option<&str>, endpoint: bool, body: &Bytes) -> Response {
    let session = match Session::from_json(body) {
        Ok(s) => s,
        Err(_) if endpoint => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, "Unmarshalling failed");
        }
        Err(_) => return malformed(),
    };
    let (now, nanos) = now_with_nanos();
    let r = shared
        .lock()
        .create_key(custom, session, endpoint, now, nanos);
    write_result(r)
}

fn key(shared: &Shared, method: &Method, uri: &Uri, id: &str, body: &Bytes) -> Response {
    // `?hashed=true` (any value): `{id}` is the key's hash (`gateway/api.go keyHandler`).
    let by_hash;
    let id = if query_get(uri, "hashed").is_empty() {
        id
    } else {
        match shared.lock().key_by_hash(id) {
            Some(k) => {
                by_hash = k;
                by_hash.as_str()
            }
            None => return error(StatusCode::NOT_FOUND, "Key not found"),
        }
    };
    match *method {
        Method::GET => {
            let detail = shared.lock().key_detail(id);
            match detail {
                Some(s) => json(StatusCode::OK, &s),
                None => error(StatusCode::NOT_FOUND, "Key not found"),
            }
        }
        Method::PUT => {
            let Ok(session) = Session::from_json(body) else {
                return malformed();
            };
            let suppress = query_get(uri, "suppress_reset") == "1";
            let (now, _) = now_with_nanos();
            let mut st = shared.lock();
            st.record_write(request_line(method, uri), body);
            let r = st.put_key(id, session, suppress, now);
            write_result(r)
        }
        Method::POST => create_key(shared, Some(id), false, body),
        Method::DELETE => {
            let deleted = shared.lock().delete_key(id);
            if !deleted {
                return error(StatusCode::NOT_FOUND, "There is no such key found");
            }
            if query_get(uri, "api_id") == "-1" {
                return json_bytes(StatusCode::OK, b"null\n".to_vec());
            }
            json(
                StatusCode::OK,
                &ModifyKeySuccess {
                    key: id,
                    status: "ok",
                    action: "deleted",
                },
            )
        }
        _ => not_supported(),
    }
}

/// `PUT /tyk/keys/abc?suppress_reset=1`: what [`State::writes`] keeps of a request.
fn request_line(method: &Method, uri: &Uri) -> String {
    match uri.query() {
        Some(q) => format!("{method} {}?{q}", uri.path()),
        None => format!("{method} {}", uri.path()),
    }
}

fn org_route(shared: &Shared, method: &Method, uri: &Uri, org: &str, body: &Bytes) -> Response {
    match *method {
        Method::GET => {
            let detail = shared.lock().org_detail(org);
            match detail {
                Some(s) => json(StatusCode::OK, &s),
                None => error(StatusCode::NOT_FOUND, "Org not found"),
            }
        }
        Method::PUT | Method::POST => {
            let Ok(session) = Session::from_json(body) else {
                return malformed();
            };
            let reset = query_get(uri, "reset_quota") == "1";
            let (now, _) = now_with_nanos();
            let mut st = shared.lock();
            st.record_write(request_line(method, uri), body);
            st.put_org(org, session, reset, now);
            drop(st);
            let action = if *method == Method::POST {
                "added"
            } else {
                "modified"
            };
            json(
                StatusCode::OK,
                &ModifyKeySuccess {
                    key: org,
                    status: "ok",
                    action,
                },
            )
        }
        Method::DELETE => {
            if shared.lock().delete_org(org) {
                json(
                    StatusCode::OK,
                    &ModifyKeySuccess {
                        key: org,
                        status: "ok",
                        action: "deleted",
                    },
                )
            } else {
                error(StatusCode::NOT_FOUND, "Org not found")
            }
        }
        _ => not_supported(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_paths_and_queries() {
        assert_eq!(percent_decode("a%2Fb%2bc+d%3D%3d"), "a/b+c+d==");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        let uri: Uri = "/tyk/keys/x?suppress_reset=1&filter=a+b%2B"
            .parse()
            .unwrap();
        assert_eq!(query_get(&uri, "suppress_reset"), "1");
        assert_eq!(query_get(&uri, "filter"), "a b+");
        assert_eq!(query_get(&uri, "missing"), "");
    }

    #[test]
    fn routes() {
        assert!(matches!(route("/hello/"), Some(Route::Hello)));
        assert!(matches!(route("/tyk/keys/"), Some(Route::Keys)));
        assert!(matches!(route("/tyk/keys/abc/"), Some(Route::Key(k)) if k == "abc"));
        assert!(matches!(route("/tyk/keys/a%2Fb"), Some(Route::Key(k)) if k == "a/b"));
        assert!(matches!(route("/tyk/keys/a/b"), Some(Route::Key(k)) if k == "a/b"));
        assert!(matches!(route("/tyk/org/keys"), Some(Route::OrgKeys)));
        assert!(matches!(route("/tyk/org/keys/o1"), Some(Route::Org(o)) if o == "o1"));
        assert!(route("/tyk/nope").is_none());
        assert!(route("/other").is_none());
    }
}
