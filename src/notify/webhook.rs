//! Building and sending webhook requests: Tyk's monitor format (TykTechnologies/tyk `templates/default_webhook.json`, `gateway/event_handler_webhooks.go`) and Standard
//! Webhooks (github.com/standard-webhooks/standard-webhooks `spec/standard-webhooks.md`). Redirects are never followed, TLS is verified, the default
//! timeout is 15 s. [`WebhookSender::send`] returns an [`AttemptResult`] for
//! [`super::retry::classify`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use sha2::Sha256;

use super::error_chain;
use super::retry::{AttemptResult, parse_retry_after};
use crate::clock::UnixMs;
use crate::config::{MonitorHookConfig, Secret, WebhookConfig};
use crate::outbox::{EventPayload, NotificationPayload};
use crate::templates::go::{EventMessage, GoTemplate};
use crate::timefmt::go_time_string;

/// Default per-request timeout (15–30 s, what webhook senders commonly allow).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

/// `User-Agent` of Tyk's webhook handler.
pub const TYK_USER_AGENT: &str = "Tyk-Hookshot";

/// `type` of a Standard Webhooks payload.
pub const STANDARD_EVENT_TYPE: &str = "quota.threshold_crossed";

/// A request ready to send. `Debug` hides header values (they carry secrets) and the body
/// (the Tyk body carries the raw key).
#[derive(Clone)]
pub struct PreparedRequest {
    pub method: Method,
    pub url: String,
    pub headers: HeaderMap,
    pub body: String,
}

impl std::fmt::Debug for PreparedRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Tyk format
// ---------------------------------------------------------------------------------------------

/// The `tyk` channel: `[monitor.configuration]` with its template compiled once.
#[derive(Debug, Clone)]
pub struct TykHook {
    pub url: String,
    pub method: Method,
    pub header_map: BTreeMap<String, Secret>,
    /// The compiled template, or why it could not be loaded (every send then fails with it).
    pub template: Result<Arc<GoTemplate>, String>,
    /// `Content-Type: application/json` (default template or a `.json` path), else an empty
    /// `Content-Type`, as Tyk does.
    pub json_content_type: bool,
}

impl TykHook {
    /// Loads `template_path` (converted with [`GoTemplate::from_go`]) or Tyk's
    /// `monitor_template.json` when it is empty.
    pub fn from_config(c: &MonitorHookConfig) -> TykHook {
        let (template, json) = if c.template_path.is_empty() {
            (GoTemplate::tyk_monitor().map_err(|e| e.to_string()), true)
        } else {
            let t = std::fs::read_to_string(&c.template_path)
                .map_err(|e| format!("{}: {e}", c.template_path))
                .and_then(|src| {
                    GoTemplate::from_go(&c.template_path, &src).map_err(|e| e.to_string())
                });
            (t, c.template_path.ends_with(".json"))
        };
        TykHook {
            url: c.target_path.clone(),
            method: tyk_method(&c.method),
            header_map: c.header_map.clone(),
            template: template.map(Arc::new),
            json_content_type: json,
        }
    }
}

/// Tyk's method rule: upper-cased GET/PUT/POST/DELETE/PATCH, anything else GET.
pub fn tyk_method(m: &str) -> Method {
    match m.to_ascii_uppercase().as_str() {
        "PUT" => Method::PUT,
        "POST" => Method::POST,
        "DELETE" => Method::DELETE,
        "PATCH" => Method::PATCH,
        _ => Method::GET,
    }
}

/// Tyk's `EventMessage` for a `TriggerExceeded` monitor event.
pub fn tyk_event_message(p: &NotificationPayload) -> EventMessage {
    EventMessage {
        event_type: "TriggerExceeded".into(),
        meta: serde_json::json!({
            "Message": "Quota trigger reached",
            "OriginatingRequest": "",
            "OrgID": p.org_id,
            "Key": p.key.as_deref().unwrap_or(""),
            "TriggerLimit": p.threshold.trunc() as i64,
            "UsagePercentage": p.usage_percentage.trunc() as i64,
        }),
        timestamp: go_time_string(p.detected_at_ms),
    }
}

/// The Tyk-format request. `Err` = permanent failure (render error, bad header).
pub fn build_tyk(hook: &TykHook, p: &NotificationPayload) -> Result<PreparedRequest, String> {
    if hook.url.is_empty() {
        return Err("[monitor.configuration] target_path is empty".into());
    }
    let template = hook
        .template
        .as_ref()
        .map_err(|e| format!("webhook template: {e}"))?;
    let body = template
        .render(&tyk_event_message(p))
        .map_err(|e| format!("webhook template rendering error: {e}"))?;
    let mut headers = HeaderMap::new();
    headers.insert(USER_AGENT, HeaderValue::from_static(TYK_USER_AGENT));
    for (name, value) in &hook.header_map {
        let n = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("header_map: {name:?} is not a valid header name"))?;
        let mut v = HeaderValue::from_str(value.expose()).map_err(|_| {
            format!("header_map: the value of {name:?} is not a valid header value")
        })?;
        v.set_sensitive(true);
        headers.insert(n, v);
    }
    if !headers.contains_key(CONTENT_TYPE) {
        let ct = if hook.json_content_type {
            "application/json"
        } else {
            ""
        };
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    Ok(PreparedRequest {
        method: hook.method.clone(),
        url: hook.url.clone(),
        headers,
        body,
    })
}

// ---------------------------------------------------------------------------------------------
// Standard Webhooks
// ---------------------------------------------------------------------------------------------

/// A `[[webhooks]]` entry.
#[derive(Debug, Clone)]
pub struct StandardHook {
    pub name: String,
    pub url: String,
    /// `whsec_…`; empty = unsigned.
    pub secret: Secret,
}

impl StandardHook {
    pub fn from_config(c: &WebhookConfig) -> StandardHook {
        StandardHook {
            name: c.name.clone(),
            url: c.url.clone(),
            secret: c.secret.clone(),
        }
    }
}

/// The JSON body: `{"type","timestamp","data":{…}}` (masked key only).
pub fn standard_body(p: &NotificationPayload) -> String {
    serde_json::json!({
        "type": STANDARD_EVENT_TYPE,
        "timestamp": crate::timefmt::rfc3339(p.detected_at_ms.div_euclid(1000)),
        "data": {
            "org_id": p.org_id,
            "alias": p.alias,
            "key": p.key_masked,
            "api_id": p.api_id,
            "api_name": p.api_name,
            "threshold": p.threshold,
            "usage_percentage": p.usage_percentage,
            "quota_max": p.quota_max,
            "quota_remaining": p.quota_remaining,
            "quota_renews": p.quota_renews,
            "period": p.period,
            "sequence": p.sequence,
            "covered": p.covered,
        }
    })
    .to_string()
}

/// `v1,<base64 HMAC-SHA256(key, "{id}.{ts}.{body}")>` with key = base64-decode of the part
/// after `whsec_`.
pub fn sign(secret: &Secret, id: &str, ts: i64, body: &str) -> Result<String, String> {
    let s = secret.expose();
    let key = B64
        .decode(s.strip_prefix("whsec_").unwrap_or(s))
        .map_err(|e| format!("webhook secret is not whsec_ + base64: {e}"))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).map_err(|e| e.to_string())?;
    mac.update(format!("{id}.{ts}.{body}").as_bytes());
    Ok(format!("v1,{}", B64.encode(mac.finalize().into_bytes())))
}

/// The Standard Webhooks request. `id` = the outbox idempotency key (same on every retry),
/// `now_secs` = the attempt's time.
pub fn build_standard(
    hook: &StandardHook,
    p: &NotificationPayload,
    id: &str,
    now_secs: i64,
) -> Result<PreparedRequest, String> {
    signed_request(hook, standard_body(p), id, now_secs)
}

/// The JSON body of a received event's notification: `type` = the event name, `timestamp`
/// = when it was received, `data` = what the Events view knows of it, with the body as
/// received (keys and secrets masked) in `data.payload`.
pub fn event_body(p: &EventPayload) -> String {
    let received = crate::timefmt::rfc3339(p.received_at_ms.div_euclid(1000));
    serde_json::json!({
        "type": p.event,
        "timestamp": received,
        "data": {
            "event_id": p.event_id,
            "source": p.source,
            "org_id": p.org_id,
            "summary": p.summary,
            "key": p.masked_key,
            "received_at": received,
            "payload": p.payload,
        }
    })
    .to_string()
}

/// The Standard Webhooks request of a received event (see [`build_standard`]).
pub fn build_event_standard(
    hook: &StandardHook,
    p: &EventPayload,
    id: &str,
    now_secs: i64,
) -> Result<PreparedRequest, String> {
    signed_request(hook, event_body(p), id, now_secs)
}

/// `body` with the Standard Webhooks headers (signed when the hook has a secret).
fn signed_request(
    hook: &StandardHook,
    body: String,
    id: &str,
    now_secs: i64,
) -> Result<PreparedRequest, String> {
    let mut headers = HeaderMap::new();
    let bad = |what: &str| format!("{what} cannot be sent in a header");
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("tykwatch/", env!("CARGO_PKG_VERSION"))),
    );
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        "webhook-id",
        HeaderValue::from_str(id).map_err(|_| bad("the webhook id"))?,
    );
    headers.insert("webhook-timestamp", HeaderValue::from(now_secs));
    if !hook.secret.is_empty() {
        let sig = sign(&hook.secret, id, now_secs, &body)?;
        headers.insert(
            "webhook-signature",
            HeaderValue::from_str(&sig).map_err(|_| bad("the signature"))?,
        );
    }
    Ok(PreparedRequest {
        method: Method::POST,
        url: hook.url.clone(),
        headers,
        body,
    })
}

// ---------------------------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------------------------

/// The HTTP client for every webhook channel.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    http: reqwest::Client,
}

impl WebhookSender {
    /// The outbound policy ([`crate::outbound`]), `timeout` per request.
    pub fn new(timeout: Duration) -> Result<WebhookSender, reqwest::Error> {
        let http = crate::outbound::client(timeout).build()?;
        Ok(WebhookSender { http })
    }

    /// Sends once. The response body is not read: any 2xx counts, whatever it contains.
    pub async fn send(&self, req: PreparedRequest, now_ms: UnixMs) -> AttemptResult {
        let res = self
            .http
            .request(req.method, &req.url)
            .headers(req.headers)
            .body(req.body)
            .send()
            .await;
        match res {
            Ok(resp) => {
                let header = |name| {
                    resp.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let retry_after = header(reqwest::header::RETRY_AFTER)
                    .and_then(|v| parse_retry_after(&v, now_ms));
                let status = resp.status();
                let location = status
                    .is_redirection()
                    .then(|| header(reqwest::header::LOCATION))
                    .flatten();
                AttemptResult::Status {
                    status: status.as_u16(),
                    retry_after_ms: retry_after,
                    location,
                }
            }
            // The URL is left out of reasons: webhook URLs often carry a token, and reasons are
            // stored and shown.
            Err(e) if e.is_builder() => AttemptResult::Permanent(format!(
                "cannot build the request: {}",
                error_chain(&e.without_url())
            )),
            Err(e) if e.is_timeout() => AttemptResult::Timeout(error_chain(&e.without_url())),
            Err(e) => AttemptResult::Network(error_chain(&e.without_url())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_time_strings() {
        assert_eq!(go_time_string(0), "1970-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_time_string(1_740_826_800_120),
            "2025-03-01 11:00:00.12 +0000 UTC"
        );
    }

    #[test]
    fn methods_follow_tyk() {
        assert_eq!(tyk_method("post"), Method::POST);
        assert_eq!(tyk_method("Patch"), Method::PATCH);
        assert_eq!(tyk_method("HEAD"), Method::GET);
        assert_eq!(tyk_method(""), Method::GET);
    }

    #[test]
    fn signature_vector() {
        // The Standard Webhooks spec example.
        let secret = Secret::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = r#"{"test": 2432232314}"#;
        let sig = sign(&secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }
}
