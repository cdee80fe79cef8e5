//! Tyk Dashboard Admin API client for organisations (tyk.io/docs, Dashboard Admin API "Organisations"):
//! `GET /admin/organisations`, `GET` / `PUT /admin/organisations/{id}` with `admin-auth`.
//!
//! Documents travel as raw JSON text (`RawValue`), exactly as the Dashboard sent them, so that a
//! PUT — which replaces the whole document — can send back every field as it was read. The Admin API has no ETag, so
//! [`Dashboard::update_organisation`] re-reads the document just before the PUT and refuses to
//! overwrite a change made since it was loaded. Errors say what to fix and never carry the secret.

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, LOCATION};
use reqwest::{Client, Method, StatusCode, Url};
use serde_json::Value;
use serde_json::value::RawValue;

use super::http::{BodyError, read_capped, request_error};

/// Largest response body read; thousands of organisations fit in a few MB.
pub const DEFAULT_MAX_BODY: usize = 32 * 1024 * 1024;

#[derive(Clone)]
pub struct DashboardSettings {
    pub url: String,
    /// tyk_analytics.conf `admin_secret`.
    pub admin_secret: String,
    pub timeout: Duration,
    pub max_body: usize,
}

impl std::fmt::Debug for DashboardSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DashboardSettings")
            .field("url", &self.url)
            .field("admin_secret", &"••••")
            .field("timeout", &self.timeout)
            .field("max_body", &self.max_body)
            .finish()
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum DashboardError {
    #[error(
        "Dashboard URL {url:?} is not valid: {reason} (set [dashboard] url to e.g. http://localhost:3000)"
    )]
    BadUrl { url: String, reason: String },
    #[error(
        "cannot reach the Dashboard at {url}: {reason} — is the Dashboard running there, and is [dashboard] url right?"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "the Dashboard did not answer {what} within {secs:.1}s — check its load, or raise [dashboard] timeout"
    )]
    Timeout { what: String, secs: f64 },
    #[error(
        "the Dashboard refused the admin secret ({status}: {message}) — set TYK_DB_ADMIN_SECRET or [dashboard] admin_secret to the \"admin_secret\" of tyk_analytics.conf"
    )]
    Unauthorised { status: u16, message: String },
    #[error(
        "organisation {id:?} is not on the Dashboard (404: {message}) — `tykwatch org list` shows the ids"
    )]
    NotFound { id: String, message: String },
    #[error("the Dashboard rejected {what} (400: {message}) — nothing was changed")]
    Rejected { what: String, message: String },
    #[error("{what} answered {status}: {message}")]
    Status {
        what: String,
        status: u16,
        message: String,
    },
    #[error(
        "{what} answered a redirect ({status}) to {location:?} — point [dashboard] url at the Dashboard itself"
    )]
    Redirect {
        what: String,
        status: u16,
        location: String,
    },
    #[error(
        "{what} answered with something that is not the Tyk Dashboard's JSON ({detail}) — is [dashboard] url the Dashboard (default port 3000), not the gateway?"
    )]
    Malformed { what: String, detail: String },
    #[error("{what} sent more than {limit} bytes — refusing to read further")]
    TooLarge { what: String, limit: usize },
    #[error("{what} broke off mid-body: {reason}")]
    Truncated { what: String, reason: String },
    /// The document changed (or was deleted, `current: None`) since it was loaded.
    #[error("{}", conflict_message(id, current.is_some()))]
    Conflict {
        id: String,
        loaded: Box<RawValue>,
        current: Option<Box<RawValue>>,
    },
}

fn conflict_message(id: &str, exists: bool) -> String {
    let what = if exists {
        "changed on the Dashboard"
    } else {
        "was deleted from the Dashboard"
    };
    format!(
        "organisation {id:?} {what} since it was loaded — nothing was saved; reload it and make the edit again"
    )
}

impl DashboardError {
    /// The Dashboard could not be used at all (as opposed to a refused or conflicting request).
    pub fn is_unreachable(&self) -> bool {
        !matches!(
            self,
            DashboardError::NotFound { .. }
                | DashboardError::Rejected { .. }
                | DashboardError::Conflict { .. }
        )
    }
}

#[derive(Debug, Clone)]
pub struct Dashboard {
    http: Client,
    base: Url,
    max_body: usize,
    timeout: Duration,
}

impl Dashboard {
    pub fn new(settings: &DashboardSettings) -> Result<Dashboard, DashboardError> {
        let bad = |reason: String| DashboardError::BadUrl {
            url: settings.url.clone(),
            reason,
        };
        let mut base = Url::parse(settings.url.trim()).map_err(|e| bad(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https".into()));
        }
        if base.cannot_be_a_base() || base.host().is_none() {
            return Err(bad("no host".into()));
        }
        // Paths are appended segment by segment; a trailing slash would add an empty one.
        if let Ok(mut segs) = base.path_segments_mut() {
            segs.pop_if_empty();
        }
        let mut secret = HeaderValue::from_str(&settings.admin_secret).map_err(|_| {
            bad("the admin secret contains characters that cannot be sent in a header".into())
        })?;
        secret.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert("admin-auth", secret);
        let http = crate::outbound::client(settings.timeout)
            .default_headers(headers)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Dashboard {
            http,
            base,
            max_body: settings.max_body,
            timeout: settings.timeout,
        })
    }

    pub fn url(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    fn url_for(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            // `extend` percent-encodes `/`, `?`, `#`: an id stays one segment.
            segs.extend(segments);
        }
        url
    }

    /// `GET /admin/organisations` → the documents of the `organisations` array (`null` = none).
    pub async fn list_organisations(&self) -> Result<Vec<Box<RawValue>>, DashboardError> {
        let what = "GET /admin/organisations";
        let url = self.url_for(&["admin", "organisations"]);
        let (status, body) = self.send(Method::GET, url, None, what).await?;
        if !status.is_success() {
            return Err(self.status_error(what, None, status, &body));
        }
        let fields: std::collections::HashMap<String, Box<RawValue>> = parse(what, &body)?;
        let Some(list) = fields.get("organisations") else {
            return Err(malformed(what, "no \"organisations\" array"));
        };
        if list.get() == "null" {
            return Ok(Vec::new());
        }
        let docs: Vec<Box<RawValue>> = serde_json::from_str(list.get())
            .map_err(|_| malformed(what, "\"organisations\" is not an array"))?;
        Ok(docs)
    }

    /// `GET /admin/organisations/{id}`: the whole document, as sent.
    pub async fn get_organisation(&self, id: &str) -> Result<Box<RawValue>, DashboardError> {
        let what = format!("GET /admin/organisations/{id}");
        let url = self.url_for(&["admin", "organisations", id]);
        let (status, body) = self.send(Method::GET, url, None, &what).await?;
        if !status.is_success() {
            return Err(self.status_error(&what, Some(id), status, &body));
        }
        let doc: Box<RawValue> = parse(&what, &body)?;
        if !doc.get().starts_with('{') {
            return Err(malformed(&what, "not a JSON object"));
        }
        Ok(doc)
    }

    /// `PUT /admin/organisations/{id}` with `document` byte for byte: no conflict check.
    /// Prefer [`Dashboard::update_organisation`].
    pub async fn put_organisation(
        &self,
        id: &str,
        document: &RawValue,
    ) -> Result<(), DashboardError> {
        let what = format!("PUT /admin/organisations/{id}");
        let url = self.url_for(&["admin", "organisations", id]);
        let body = document.get().as_bytes().to_vec();
        let (status, reply) = self.send(Method::PUT, url, Some(body), &what).await?;
        let refused = api_status(&reply).is_some_and(|s| s.eq_ignore_ascii_case("error"));
        if !status.is_success() || refused {
            return Err(self.status_error(&what, Some(id), status, &reply));
        }
        Ok(())
    }

    /// Saves `edited` unless the stored document differs from `loaded` (compared as parsed
    /// JSON): then `Conflict` with both, and nothing is written. Returns the document as the
    /// Dashboard stores it after the PUT (or `edited` when that re-read fails: the save itself
    /// succeeded, and a retry would now conflict with it).
    pub async fn update_organisation(
        &self,
        id: &str,
        loaded: &RawValue,
        edited: &RawValue,
    ) -> Result<Box<RawValue>, DashboardError> {
        let current = match self.get_organisation(id).await {
            Ok(v) => Some(v),
            Err(DashboardError::NotFound { .. }) => None,
            Err(e) => return Err(e),
        };
        let same = current
            .as_ref()
            .is_some_and(|c| same_json(c.get(), loaded.get()));
        if !same {
            return Err(DashboardError::Conflict {
                id: id.to_owned(),
                loaded: loaded.to_owned(),
                current,
            });
        }
        self.put_organisation(id, edited).await?;
        Ok(self
            .get_organisation(id)
            .await
            .unwrap_or_else(|_| edited.to_owned()))
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Vec<u8>>,
        what: &str,
    ) -> Result<(StatusCode, Vec<u8>), DashboardError> {
        let mut req = self.http.request(method, url);
        if let Some(body) = body {
            req = req
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| self.transport_error(what, &e))?;
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            return Err(DashboardError::Redirect {
                what: what.to_owned(),
                status: status.as_u16(),
                location,
            });
        }
        let body = self.read_body(resp, what).await?;
        Ok((status, body))
    }

    async fn read_body(
        &self,
        resp: reqwest::Response,
        what: &str,
    ) -> Result<Vec<u8>, DashboardError> {
        read_capped(resp, self.max_body).await.map_err(|e| match e {
            BodyError::TooLarge => DashboardError::TooLarge {
                what: what.to_owned(),
                limit: self.max_body,
            },
            BodyError::Timeout => DashboardError::Timeout {
                what: what.to_owned(),
                secs: self.timeout.as_secs_f64(),
            },
            BodyError::Truncated(reason) => DashboardError::Truncated {
                what: what.to_owned(),
                reason,
            },
        })
    }

    fn transport_error(&self, what: &str, e: &reqwest::Error) -> DashboardError {
        if e.is_timeout() {
            DashboardError::Timeout {
                what: what.to_owned(),
                secs: self.timeout.as_secs_f64(),
            }
        } else {
            DashboardError::Unreachable {
                url: self.url().to_owned(),
                reason: request_error(e),
            }
        }
    }

    /// `id` is the organisation the request was about (so a 404 means "no such org").
    fn status_error(
        &self,
        what: &str,
        id: Option<&str>,
        status: StatusCode,
        body: &[u8],
    ) -> DashboardError {
        let message = error_message(body);
        let is_api_error = api_status(body).is_some();
        let auth_text = message.to_ascii_lowercase().contains("authori");
        match status.as_u16() {
            401 => DashboardError::Unauthorised {
                status: 401,
                message,
            },
            // The Dashboard also answers 403 for database failures; only its "Not authorised"
            // (or a bare 403) is about the secret.
            403 if auth_text || !is_api_error => DashboardError::Unauthorised {
                status: 403,
                message,
            },
            404 if is_api_error && id.is_some() => DashboardError::NotFound {
                id: id.unwrap_or_default().to_owned(),
                message,
            },
            // A 404 that is not the Dashboard's JSON: the path does not exist on that server.
            404 if !is_api_error => DashboardError::Malformed {
                what: what.to_owned(),
                detail: format!("404: {message}"),
            },
            400 => DashboardError::Rejected {
                what: what.to_owned(),
                message,
            },
            s => DashboardError::Status {
                what: what.to_owned(),
                status: s,
                message,
            },
        }
    }
}

/// `Status` of the Dashboard's `{"Status":…,"Message":…,"Meta":…}`, when the body is one.
fn api_status(body: &[u8]) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get("Status")?.as_str().map(str::to_owned)
}

/// The Dashboard's `Message` (or a gateway's `message`), or the start of whatever else was sent.
fn error_message(body: &[u8]) -> String {
    if let Ok(value) = serde_json::from_slice::<Value>(body) {
        for key in ["Message", "message"] {
            if let Some(m) = value.get(key).and_then(Value::as_str)
                && !m.is_empty()
            {
                return clean(m);
            }
        }
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    let text = clean(&text);
    if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        text
    }
}

/// Control characters never reach a terminal or a log line.
fn clean(s: &str) -> String {
    let t: String = s.chars().filter(|c| !c.is_control()).collect();
    t.trim().to_owned()
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, DashboardError> {
    serde_json::from_slice(body).map_err(|e| malformed(what, &e.to_string()))
}

fn malformed(what: &str, detail: &str) -> DashboardError {
    DashboardError::Malformed {
        what: what.to_owned(),
        detail: detail.to_owned(),
    }
}

/// JSON equality: key order and number spelling (`1e3` / `1000.0`) do not count as changes.
fn same_json(a: &str, b: &str) -> bool {
    a == b
        || matches!(
            (serde_json::from_str::<Value>(a), serde_json::from_str::<Value>(b)),
            (Ok(x), Ok(y)) if x == y
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dash() -> Dashboard {
        Dashboard::new(&DashboardSettings {
            url: "http://127.0.0.1:3000/".into(),
            admin_secret: "s".into(),
            timeout: Duration::from_secs(1),
            max_body: 1024,
        })
        .unwrap()
    }

    #[test]
    fn urls_keep_ids_in_one_segment() {
        let d = dash();
        assert_eq!(d.url(), "http://127.0.0.1:3000");
        assert_eq!(
            d.url_for(&["admin", "organisations", "a/b?c"]).as_str(),
            "http://127.0.0.1:3000/admin/organisations/a%2Fb%3Fc"
        );
    }

    #[test]
    fn statuses_become_advice() {
        let d = dash();
        let body = br#"{"Status":"Error","Message":"Not authorised","Meta":null}"#;
        for status in [401, 403] {
            let e = d.status_error(
                "GET x",
                Some("o"),
                StatusCode::from_u16(status).unwrap(),
                body,
            );
            assert!(matches!(e, DashboardError::Unauthorised { .. }), "{e}");
            assert!(e.to_string().contains("TYK_DB_ADMIN_SECRET"));
        }
        let db = br#"{"Status":"Error","Message":"Failed to update Org object to DB","Meta":null}"#;
        let e = d.status_error("PUT x", Some("o"), StatusCode::FORBIDDEN, db);
        assert!(
            matches!(e, DashboardError::Status { status: 403, .. }),
            "{e}"
        );
        let e = d.status_error(
            "GET x",
            Some("o"),
            StatusCode::NOT_FOUND,
            br#"{"Status":"Error","Message":"Could not retrieve org detail","Meta":null}"#,
        );
        assert!(matches!(e, DashboardError::NotFound { .. }), "{e}");
        let e = d.status_error(
            "GET x",
            Some("o"),
            StatusCode::NOT_FOUND,
            b"404 page not found\n",
        );
        assert!(matches!(e, DashboardError::Malformed { .. }), "{e}");
        let e = d.status_error(
            "PUT x",
            Some("o"),
            StatusCode::BAD_REQUEST,
            br#"{"Status":"Error","Message":"Request body malformed","Meta":null}"#,
        );
        assert_eq!(
            e.to_string(),
            "the Dashboard rejected PUT x (400: Request body malformed) — nothing was changed"
        );
    }

    #[test]
    fn settings_debug_hides_the_secret() {
        let s = DashboardSettings {
            url: "http://h".into(),
            admin_secret: "very-secret-admin".into(),
            timeout: Duration::from_secs(1),
            max_body: 1,
        };
        assert!(!format!("{s:?}").contains("very-secret"));
    }
}
