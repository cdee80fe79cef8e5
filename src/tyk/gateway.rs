//! Tyk Gateway REST (control) API client: `/hello`, `/tyk/keys`, `/tyk/keys/{id}`,
//! `/tyk/org/keys`, `/tyk/org/keys/{org}` with `x-tyk-authorization`.
//!
//! Errors say what to fix, never echo the secret, and mask keys.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Client, StatusCode, Url};
use serde::de::DeserializeOwned;

use super::http::{BodyError, read_capped, request_error};
use super::mask::{mask_hash, mask_key};
use super::session::{ApiStatus, Hello, KeyList, SessionState};

/// Largest response body read; a list of 100k keys is about 6 MB.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct GatewaySettings {
    pub url: String,
    pub secret: String,
    pub timeout: Duration,
    pub concurrency: usize,
    pub max_body: usize,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GatewayError {
    #[error(
        "gateway URL {url:?} is not valid: {reason} (set [gateway] url or --gateway to e.g. http://localhost:8080)"
    )]
    BadUrl { url: String, reason: String },
    #[error(
        "cannot reach the gateway at {url}: {reason} — is it running, and is [gateway] url / --gateway right?"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "the gateway did not answer {what} within {secs:.1}s — check its load, or raise [gateway] timeout"
    )]
    Timeout { what: String, secs: f64 },
    #[error(
        "the gateway refused the secret (403: {message}) — set TYK_GW_SECRET or [gateway] secret to the \"secret\" of tyk.conf"
    )]
    Forbidden { message: String },
    #[error(
        "the gateway hashes keys and does not list them (404: {message}) — either set \"enable_hashed_keys_listing\": true in tyk.conf (and restart the gateway), or read Tyk's Redis instead with [gateway.storage] (no gateway change needed)"
    )]
    HashedListingDisabled { message: String },
    #[error(
        "{what} answered 400 ({message}): the gateway does not hash keys — set [gateway] hash_keys = false, or remove it so tykwatch detects the mode"
    )]
    HashingNotEnabled { what: String, message: String },
    #[error("key {key} was deleted between listing and reading it")]
    KeyVanished { key: String },
    #[error("the gateway listed {listed} keys but none could be read (each answered 404): {hint}")]
    NoKeyReadable { listed: usize, hint: String },
    #[error("{what} answered {status}: {message}")]
    Status {
        what: String,
        status: u16,
        message: String,
    },
    #[error(
        "{what} answered a redirect ({status}) to {location:?} — point [gateway] url at the gateway itself"
    )]
    Redirect {
        what: String,
        status: u16,
        location: String,
    },
    #[error(
        "{what} sent a body that is not the JSON Tyk sends ({detail}) — is [gateway] url a Tyk Gateway?"
    )]
    Malformed { what: String, detail: String },
    #[error("{what} sent more than {limit} bytes — refusing to read further")]
    TooLarge { what: String, limit: usize },
    #[error("{what} broke off mid-body: {reason}")]
    Truncated { what: String, reason: String },
}

impl GatewayError {
    /// A short, stable name of the variant: the `kind` label of the sweep error metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            GatewayError::BadUrl { .. } => "bad_url",
            GatewayError::Unreachable { .. } => "unreachable",
            GatewayError::Timeout { .. } => "timeout",
            GatewayError::Forbidden { .. } => "forbidden",
            GatewayError::HashedListingDisabled { .. } => "hashed_listing_disabled",
            GatewayError::HashingNotEnabled { .. } => "hashing_not_enabled",
            GatewayError::KeyVanished { .. } => "key_vanished",
            GatewayError::NoKeyReadable { .. } => "no_key_readable",
            GatewayError::Status { .. } => "status",
            GatewayError::Redirect { .. } => "redirect",
            GatewayError::Malformed { .. } => "malformed",
            GatewayError::TooLarge { .. } => "too_large",
            GatewayError::Truncated { .. } => "truncated",
        }
    }
}

impl GatewayError {
    /// Errors about one key do not make the whole gateway unhealthy.
    pub fn is_per_key(&self) -> bool {
        matches!(self, GatewayError::KeyVanished { .. })
    }
}

#[derive(Debug, Clone)]
pub struct Gateway {
    http: Client,
    base: Url,
    max_body: usize,
    timeout: Duration,
}

impl Gateway {
    pub fn new(settings: &GatewaySettings) -> Result<Gateway, GatewayError> {
        let bad = |reason: String| GatewayError::BadUrl {
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
        let mut headers = HeaderMap::new();
        let mut secret =
            HeaderValue::from_str(&settings.secret).map_err(|_| GatewayError::BadUrl {
                url: settings.url.clone(),
                reason: "the secret contains characters that cannot be sent in a header".into(),
            })?;
        secret.set_sensitive(true);
        headers.insert("x-tyk-authorization", secret);
        let http = crate::outbound::client(settings.timeout)
            .default_headers(headers)
            .pool_max_idle_per_host(settings.concurrency.max(1))
            .build()
            .map_err(|e| bad(e.to_string()))?;
        Ok(Gateway {
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
            // `push` percent-encodes `/`, `%`, `?`, `#`: base64 keys with `/` stay one segment.
            segs.extend(segments);
        }
        url
    }

    /// `GET /hello`: health and version.
    pub async fn hello(&self) -> Result<Hello, GatewayError> {
        let url = self.url_for(&["hello"]);
        let (status, body) = self.get(url, "GET /hello").await?;
        if !status.is_success() {
            return Err(self.status_error("GET /hello", status, &body));
        }
        parse("GET /hello", &body)
    }

    /// `GET /tyk/keys[?filter=org]`: every key id (hashes on hashed gateways).
    pub async fn list_keys(&self, org_filter: Option<&str>) -> Result<Vec<String>, GatewayError> {
        let mut url = self.url_for(&["tyk", "keys"]);
        if let Some(org) = org_filter {
            url.query_pairs_mut().append_pair("filter", org);
        }
        let what = "GET /tyk/keys";
        let (status, body) = self.get(url, what).await?;
        if status == StatusCode::NOT_FOUND {
            let message = error_message(&body);
            if message.contains("enable_hashed_keys_listing") {
                return Err(GatewayError::HashedListingDisabled { message });
            }
        }
        if !status.is_success() {
            return Err(self.status_error(what, status, &body));
        }
        parse::<KeyList>(what, &body).map(|l| l.keys)
    }

    /// `GET /tyk/keys/{id}`: the session with `quota_remaining` recomputed live by the gateway.
    pub async fn get_key(&self, key: &str) -> Result<SessionState, GatewayError> {
        let url = self.url_for(&["tyk", "keys", key]);
        self.read_key(url, &mask_key(key)).await
    }

    /// `GET /tyk/keys/{hash}?hashed=true`: the session a gateway with `hash_keys: true` stores
    /// under `hash` (what its listing returns). A gateway that does not hash keys answers 400:
    /// [`GatewayError::HashingNotEnabled`].
    pub async fn get_key_by_hash(&self, hash: &str) -> Result<SessionState, GatewayError> {
        let mut url = self.url_for(&["tyk", "keys", hash]);
        url.query_pairs_mut().append_pair("hashed", "true");
        self.read_key(url, &mask_hash(hash)).await
    }

    async fn read_key(&self, url: Url, masked: &str) -> Result<SessionState, GatewayError> {
        let hashed = url.query().is_some();
        let what = key_call("GET", masked, hashed, false);
        let body = self.read_key_body(url, &what, masked, hashed).await?;
        SessionState::from_slice(&body).map_err(|e| malformed(&what, e))
    }

    /// `GET /tyk/keys/{id}[?hashed=true]` as sent: the body a save edits and sends back whole
    /// (a typed round trip would drop the fields this version does not know).
    pub async fn get_key_document(&self, key: &str, hashed: bool) -> Result<Vec<u8>, GatewayError> {
        let (url, masked) = self.key_url(key, hashed, false);
        let what = key_call("GET", &masked, hashed, false);
        self.read_key_body(url, &what, &masked, hashed).await
    }

    /// `PUT /tyk/keys/{id}?suppress_reset=1[&hashed=true]`: replaces the whole session without
    /// resetting its quota (without `suppress_reset` Tyk deletes the counters and restarts the
    /// period: `gateway/api.go handleAddOrUpdate`).
    pub async fn put_key_document(
        &self,
        key: &str,
        hashed: bool,
        body: Vec<u8>,
    ) -> Result<(), GatewayError> {
        let (url, masked) = self.key_url(key, hashed, true);
        let what = key_call("PUT", &masked, hashed, true);
        self.put(url, &what, body).await
    }

    /// `GET /tyk/org/keys/{org}` as sent; `None` when the org has no session.
    pub async fn get_org_document(&self, org: &str) -> Result<Option<Vec<u8>>, GatewayError> {
        let url = self.url_for(&["tyk", "org", "keys", org]);
        let what = format!("GET /tyk/org/keys/{org}");
        let (status, body) = self.get(url, &what).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(self.status_error(&what, status, &body));
        }
        Ok(Some(body))
    }

    /// `PUT /tyk/org/keys/{org}` without `reset_quota=1`: the org counter and `quota_renews`
    /// stay as they are (`gateway/api.go handleOrgAddOrUpdate`).
    pub async fn put_org_document(&self, org: &str, body: Vec<u8>) -> Result<(), GatewayError> {
        let url = self.url_for(&["tyk", "org", "keys", org]);
        let what = format!("PUT /tyk/org/keys/{org}");
        self.put(url, &what, body).await
    }

    fn key_url(&self, key: &str, hashed: bool, suppress_reset: bool) -> (Url, String) {
        let mut url = self.url_for(&["tyk", "keys", key]);
        if suppress_reset {
            url.query_pairs_mut().append_pair("suppress_reset", "1");
        }
        if hashed {
            url.query_pairs_mut().append_pair("hashed", "true");
        }
        let masked = if hashed {
            mask_hash(key)
        } else {
            mask_key(key)
        };
        (url, masked)
    }

    async fn put(&self, url: Url, what: &str, body: Vec<u8>) -> Result<(), GatewayError> {
        let resp = self
            .http
            .put(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(what, &e))?;
        let status = resp.status();
        let body = self.read_body(resp, what).await?;
        if status == StatusCode::NOT_FOUND {
            return Err(GatewayError::Status {
                what: what.to_string(),
                status: 404,
                message: format!("{} — was it deleted meanwhile?", error_message(&body)),
            });
        }
        if !status.is_success() {
            return Err(self.status_error(what, status, &body));
        }
        Ok(())
    }

    async fn read_key_body(
        &self,
        url: Url,
        what: &str,
        masked: &str,
        hashed: bool,
    ) -> Result<Vec<u8>, GatewayError> {
        let what = what.to_string();
        let (status, body) = self.get(url, &what).await?;
        if status == StatusCode::NOT_FOUND {
            return Err(GatewayError::KeyVanished {
                key: masked.to_string(),
            });
        }
        if hashed && status == StatusCode::BAD_REQUEST {
            let message = error_message(&body);
            if message.contains("hashing is not enabled") {
                return Err(GatewayError::HashingNotEnabled { what, message });
            }
            return Err(GatewayError::Status {
                what,
                status: status.as_u16(),
                message,
            });
        }
        if !status.is_success() {
            return Err(self.status_error(&what, status, &body));
        }
        Ok(body)
    }

    /// `GET /tyk/org/keys`: org ids with an org session. 404 means none (no API loaded).
    pub async fn list_orgs(&self) -> Result<Vec<String>, GatewayError> {
        let url = self.url_for(&["tyk", "org", "keys"]);
        let what = "GET /tyk/org/keys";
        let (status, body) = self.get(url, what).await?;
        if status == StatusCode::NOT_FOUND {
            return Ok(Vec::new());
        }
        if !status.is_success() {
            return Err(self.status_error(what, status, &body));
        }
        parse::<KeyList>(what, &body).map(|l| l.keys)
    }

    /// `GET /tyk/org/keys/{org}`; `None` when the org has no session.
    pub async fn get_org(&self, org: &str) -> Result<Option<SessionState>, GatewayError> {
        let Some(body) = self.get_org_document(org).await? else {
            return Ok(None);
        };
        SessionState::from_slice(&body)
            .map(Some)
            .map_err(|e| malformed(&format!("GET /tyk/org/keys/{org}"), e))
    }

    async fn get(&self, url: Url, what: &str) -> Result<(StatusCode, Vec<u8>), GatewayError> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.transport_error(what, &e))?;
        let status = resp.status();
        if status.is_redirection() {
            let location = resp
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            return Err(GatewayError::Redirect {
                what: what.to_string(),
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
    ) -> Result<Vec<u8>, GatewayError> {
        read_capped(resp, self.max_body).await.map_err(|e| match e {
            BodyError::TooLarge => GatewayError::TooLarge {
                what: what.to_string(),
                limit: self.max_body,
            },
            BodyError::Timeout => GatewayError::Timeout {
                what: what.to_string(),
                secs: self.timeout.as_secs_f64(),
            },
            BodyError::Truncated(reason) => GatewayError::Truncated {
                what: what.to_string(),
                reason,
            },
        })
    }

    fn transport_error(&self, what: &str, e: &reqwest::Error) -> GatewayError {
        if e.is_timeout() {
            GatewayError::Timeout {
                what: what.to_string(),
                secs: self.timeout.as_secs_f64(),
            }
        } else {
            GatewayError::Unreachable {
                url: self.url().to_string(),
                reason: request_error(e),
            }
        }
    }

    fn status_error(&self, what: &str, status: StatusCode, body: &[u8]) -> GatewayError {
        let message = error_message(body);
        if status == StatusCode::FORBIDDEN {
            return GatewayError::Forbidden { message };
        }
        GatewayError::Status {
            what: what.to_string(),
            status: status.as_u16(),
            message,
        }
    }
}

/// `GET /tyk/keys/ab12****?hashed=true`: what a key call is called in errors (key masked).
fn key_call(method: &str, masked: &str, hashed: bool, suppress_reset: bool) -> String {
    let mut q = Vec::new();
    if suppress_reset {
        q.push("suppress_reset=1");
    }
    if hashed {
        q.push("hashed=true");
    }
    if q.is_empty() {
        format!("{method} /tyk/keys/{masked}")
    } else {
        format!("{method} /tyk/keys/{masked}?{}", q.join("&"))
    }
}

/// Tyk's `{"status":"error","message":…}`, or the start of whatever else was sent.
fn error_message(body: &[u8]) -> String {
    match serde_json::from_slice::<ApiStatus>(body) {
        Ok(s) if !s.message.is_empty() => s.message,
        _ => {
            let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
            let text: String = text.chars().filter(|c| !c.is_control()).collect();
            if text.trim().is_empty() {
                "(empty body)".to_string()
            } else {
                text.trim().to_string()
            }
        }
    }
}

fn parse<T: DeserializeOwned>(what: &str, body: &[u8]) -> Result<T, GatewayError> {
    serde_json::from_slice(body).map_err(|e| malformed(what, e))
}

fn malformed(what: &str, e: serde_json::Error) -> GatewayError {
    GatewayError::Malformed {
        what: what.to_string(),
        detail: e.to_string(),
    }
}
