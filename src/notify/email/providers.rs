//! `sendgrid`, `mailgun` and `mandrill` over their HTTP APIs (SendGrid v3 `mail/send`, Mailgun `messages`, Mandrill `messages/send.json`), one
//! `reqwest::Client` per dispatcher: redirects refused, TLS verified, bounded by the timeout.
//!
//! | provider | request | success | failure detail |
//! |---|---|---|---|
//! | SendGrid v3 | `POST {base}/v3/mail/send`, `Authorization: Bearer <ClientKey>`, JSON | 2xx (202) | `errors[].message` |
//! | Mailgun | `POST {base}/v3/<Domain>/messages`, Basic `api:<PrivateKey>`, multipart form | 2xx | `message` |
//! | Mandrill | `POST {base}/api/1.0/messages/send.json`, key in the JSON body | 200 with every recipient `sent`/`queued`/`scheduled` | per-recipient `rejected`/`invalid`; errors by `name` |
//!
//! `{base}` is `[email_backend] api_base` or the public API. HTTP statuses are classified like
//! webhooks (`notify::retry`) with the provider's error text added to the reason. Mandrill
//! answers errors with HTTP 500 and a `name`: `Invalid_Key`, `PaymentRequired`,
//! `Unknown_Subaccount`, `ValidationError` are permanent (short capped retry, then failed),
//! anything else (`GeneralError`) retries on the schedule; a 200 that rejected or found invalid
//! any recipient is a permanent failure.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};
use serde_json::{Value, json};

use super::{ID_HEADER, OutgoingEmail, error_chain, one_line};
use crate::clock::UnixMs;
use crate::config::{EmailBackendCode, EmailSettings, Secret};
use crate::notify::retry::{AttemptResult, RETRY_AFTER_MAX_MS, parse_retry_after};
use crate::notify::webhook::PreparedRequest;

/// Response bodies read for error details; the rest is ignored.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Mandrill error names that retrying cannot fix.
const MANDRILL_PERMANENT: [&str; 4] = [
    "Invalid_Key",
    "PaymentRequired",
    "Unknown_Subaccount",
    "ValidationError",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Sendgrid,
    Mailgun,
    Mandrill,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Sendgrid => "sendgrid",
            Provider::Mailgun => "mailgun",
            Provider::Mandrill => "mandrill",
        }
    }

    /// The public API.
    pub fn default_base(self) -> &'static str {
        match self {
            Provider::Sendgrid => "https://api.sendgrid.com",
            Provider::Mailgun => "https://api.mailgun.net",
            Provider::Mandrill => "https://mandrillapp.com",
        }
    }
}

/// One provider's API client. `Debug` masks the key ([`Secret`]).
#[derive(Debug)]
pub struct ApiSender {
    provider: Provider,
    base: String,
    key: Secret,
    /// Mailgun's sending domain.
    domain: String,
    http: reqwest::Client,
}

impl ApiSender {
    /// `Err`: a missing setting, or no HTTP client.
    pub fn new(
        code: EmailBackendCode,
        s: &EmailSettings,
        api_base: Option<&str>,
        timeout: Duration,
    ) -> Result<ApiSender, String> {
        let provider = match code {
            EmailBackendCode::Sendgrid => Provider::Sendgrid,
            EmailBackendCode::Mailgun => Provider::Mailgun,
            EmailBackendCode::Mandrill => Provider::Mandrill,
            other => return Err(format!("{other} is not an HTTP API backend")),
        };
        let get = |k: &str| s.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let need = |k: &str| {
            get(k)
                .map(str::to_owned)
                .ok_or_else(|| format!("settings.{k} is required for {}", provider.as_str()))
        };
        let (key, domain) = match provider {
            Provider::Sendgrid | Provider::Mandrill => (need("ClientKey")?, String::new()),
            Provider::Mailgun => {
                let domain = need("Domain")?;
                let ok = domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
                if !ok {
                    return Err(format!("settings.Domain {domain:?} is not a domain name"));
                }
                (need("PrivateKey")?, domain)
            }
        };
        let http = crate::outbound::client(timeout)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)))?;
        Ok(ApiSender {
            provider,
            base: api_base
                .unwrap_or(provider.default_base())
                .trim_end_matches('/')
                .to_owned(),
            key: Secret::new(key),
            domain,
            http,
        })
    }

    pub fn provider(&self) -> &'static str {
        self.provider.as_str()
    }

    /// The request for `m`. `masked`: a key carried in the body (Mandrill) is masked, for
    /// display; header credentials are always marked sensitive (masked by
    /// [`super::request_text`]).
    pub fn build(&self, m: &OutgoingEmail, masked: bool) -> Result<PreparedRequest, String> {
        let mut headers = HeaderMap::new();
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("tykwatch/", env!("CARGO_PKG_VERSION"))),
        );
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let auth = |value: String| {
            HeaderValue::from_str(&value)
                .map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
                .map_err(|_| format!("the {} key cannot be sent in a header", self.provider()))
        };
        let message_id = m.message_id();
        let from_email = m.from.email.to_string();
        let from_name = m.from.name.clone().unwrap_or_default();
        let (url, body) = match self.provider {
            Provider::Sendgrid => {
                headers.insert(
                    AUTHORIZATION,
                    auth(format!("Bearer {}", self.key.expose()))?,
                );
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                let to: Vec<Value> =
                    m.to.iter()
                        .map(|mb| match &mb.name {
                            Some(n) => json!({"email": mb.email.to_string(), "name": n}),
                            None => json!({"email": mb.email.to_string()}),
                        })
                        .collect();
                let mut from = json!({"email": from_email});
                if !from_name.is_empty() {
                    from["name"] = json!(from_name);
                }
                let body = json!({
                    "personalizations": [{"to": to}],
                    "from": from,
                    "subject": m.rendered.subject,
                    "content": [
                        {"type": "text/plain", "value": m.rendered.text},
                        {"type": "text/html", "value": m.rendered.html},
                    ],
                    "headers": {"Message-ID": message_id, ID_HEADER: m.id},
                    "custom_args": {"tykwatch_id": m.id},
                });
                (format!("{}/v3/mail/send", self.base), body.to_string())
            }
            Provider::Mailgun => {
                let basic = B64.encode(format!("api:{}", self.key.expose()));
                headers.insert(AUTHORIZATION, auth(format!("Basic {basic}"))?);
                let mut fields: Vec<(&str, String)> = vec![("from", m.from.to_string())];
                fields.extend(m.to.iter().map(|mb| ("to", mb.to_string())));
                fields.extend([
                    ("subject", m.rendered.subject.clone()),
                    ("text", m.rendered.text.clone()),
                    ("html", m.rendered.html.clone()),
                    ("h:Message-Id", message_id),
                    ("h:X-Tykwatch-Id", m.id.clone()),
                    ("v:tykwatch_id", m.id.clone()),
                ]);
                let (boundary, body) = form_data(&m.id, &fields);
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_str(&format!("multipart/form-data; boundary={boundary}"))
                        .map_err(|e| e.to_string())?,
                );
                (format!("{}/v3/{}/messages", self.base, self.domain), body)
            }
            Provider::Mandrill => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                let key = if masked {
                    self.key.masked()
                } else {
                    self.key.expose().to_owned()
                };
                let to: Vec<Value> = m
                    .to
                    .iter()
                    .map(|mb| match &mb.name {
                        Some(n) => json!({"email": mb.email.to_string(), "name": n, "type": "to"}),
                        None => json!({"email": mb.email.to_string(), "type": "to"}),
                    })
                    .collect();
                let body = json!({
                    "key": key,
                    "message": {
                        "from_email": from_email,
                        "from_name": from_name,
                        "to": to,
                        "subject": m.rendered.subject,
                        "text": m.rendered.text,
                        "html": m.rendered.html,
                        "headers": {"Message-Id": message_id, ID_HEADER: m.id},
                        "metadata": {"tykwatch_id": m.id},
                    },
                });
                (
                    format!("{}/api/1.0/messages/send.json", self.base),
                    body.to_string(),
                )
            }
        };
        Ok(PreparedRequest {
            method: Method::POST,
            url,
            headers,
            body,
        })
    }

    /// Sends once and classifies the answer.
    pub async fn send(&self, m: &OutgoingEmail, now_ms: UnixMs) -> AttemptResult {
        let req = match self.build(m, false) {
            Ok(r) => r,
            Err(e) => return AttemptResult::Permanent(e),
        };
        let url = req.url.clone();
        let res = self
            .http
            .request(req.method, &req.url)
            .headers(req.headers)
            .body(req.body)
            .send()
            .await;
        let mut resp = match res {
            Ok(r) => r,
            Err(e) if e.is_builder() => {
                return AttemptResult::Permanent(format!(
                    "cannot build the request to {url}: {}",
                    error_chain(&e)
                ));
            }
            Err(e) if e.is_timeout() => {
                return AttemptResult::Timeout(format!("{url}: {}", error_chain(&e)));
            }
            Err(e) => return AttemptResult::Network(format!("{url}: {}", error_chain(&e))),
        };
        let status = resp.status().as_u16();
        let header = |name: &str| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let mut retry_after = header("retry-after").and_then(|v| parse_retry_after(&v, now_ms));
        if retry_after.is_none() && status == 429 && self.provider == Provider::Sendgrid {
            // SendGrid announces the end of the rate-limit window as Unix seconds.
            retry_after = header("x-ratelimit-reset")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .map(|reset| (reset.saturating_mul(1000) - now_ms).clamp(0, RETRY_AFTER_MAX_MS));
        }
        let location = (300..400)
            .contains(&status)
            .then(|| header("location"))
            .flatten();
        let mut body = Vec::new();
        while body.len() < MAX_RESPONSE_BYTES {
            match resp.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                // A body cut short: the status still decides.
                Ok(None) | Err(_) => break,
            }
        }
        self.classify(status, retry_after, location, &body)
    }

    /// The outcome of an answer (public for tests of the table).
    pub fn classify(
        &self,
        status: u16,
        retry_after_ms: Option<i64>,
        location: Option<String>,
        body: &[u8],
    ) -> AttemptResult {
        let plain = AttemptResult::Status {
            status,
            retry_after_ms,
            location,
        };
        let ok = (200..300).contains(&status);
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let detailed = |detail: String| {
            if detail.is_empty() {
                plain.clone()
            } else {
                AttemptResult::Detailed {
                    inner: Box::new(plain.clone()),
                    detail: format!("{}: {detail}", self.provider()),
                }
            }
        };
        match self.provider {
            Provider::Mandrill => match json {
                Some(Value::Array(items)) if ok => {
                    let refused: Vec<String> = items
                        .iter()
                        .filter_map(|i| {
                            let st = i.get("status")?.as_str()?;
                            if !matches!(st, "rejected" | "invalid") {
                                return None;
                            }
                            let email = i.get("email").and_then(Value::as_str).unwrap_or("?");
                            let why = i
                                .get("reject_reason")
                                .and_then(Value::as_str)
                                .map(|r| format!(": {r}"))
                                .unwrap_or_default();
                            Some(one_line(&format!("{email} {st}{why}")))
                        })
                        .collect();
                    if refused.is_empty() {
                        plain
                    } else {
                        AttemptResult::Refused {
                            status: Some(status),
                            transient: false,
                            reason: format!("mandrill refused {}", refused.join(", ")),
                            retry_after_ms: None,
                        }
                    }
                }
                Some(Value::Object(o))
                    if o.get("status").and_then(Value::as_str) == Some("error") =>
                {
                    let name = o.get("name").and_then(Value::as_str).unwrap_or("error");
                    let message = o.get("message").and_then(Value::as_str).unwrap_or("");
                    AttemptResult::Refused {
                        status: Some(status),
                        transient: !MANDRILL_PERMANENT.contains(&name),
                        reason: one_line(&format!("mandrill HTTP {status} {name}: {message}")),
                        retry_after_ms,
                    }
                }
                _ if ok => plain,
                _ => detailed(snippet(body)),
            },
            _ if ok => plain,
            Provider::Sendgrid => {
                let errors: Vec<String> = json
                    .as_ref()
                    .and_then(|v| v.get("errors")?.as_array().cloned())
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|e| {
                        let msg = e.get("message")?.as_str()?;
                        Some(match e.get("field").and_then(Value::as_str) {
                            Some(f) if !f.is_empty() => format!("{msg} ({f})"),
                            _ => msg.to_owned(),
                        })
                    })
                    .collect();
                if errors.is_empty() {
                    detailed(snippet(body))
                } else {
                    detailed(one_line(&errors.join("; ")))
                }
            }
            Provider::Mailgun => match json.as_ref().and_then(|v| v.get("message")?.as_str()) {
                Some(msg) => detailed(one_line(msg)),
                None => detailed(snippet(body)),
            },
        }
    }
}

/// The start of a body as one line, for reasons.
fn snippet(body: &[u8]) -> String {
    one_line(&String::from_utf8_lossy(&body[..body.len().min(600)]))
}

/// A `multipart/form-data` body (RFC 7578) and its boundary. The boundary derives from the id
/// (stable requests, stable inspection) and is lengthened until no value contains it.
fn form_data(id: &str, fields: &[(&str, String)]) -> (String, String) {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    let mut boundary = format!(
        "tykwatch-{}",
        digest
            .iter()
            .take(12)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    while fields.iter().any(|(_, v)| v.contains(&boundary)) {
        boundary.push('x');
    }
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
        ));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (boundary, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender(code: EmailBackendCode) -> ApiSender {
        let s = EmailSettings(
            [
                ("ClientKey", "SG.secret-client-key-123"),
                ("Domain", "mg.example.com"),
                ("PrivateKey", "key-private-456"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        );
        ApiSender::new(code, &s, None, Duration::from_secs(5)).unwrap()
    }

    fn kind(r: &AttemptResult) -> String {
        match r {
            AttemptResult::Status { status, .. } => format!("status {status}"),
            AttemptResult::Detailed { inner, detail } => format!("{} + {detail}", kind(inner)),
            AttemptResult::Refused {
                transient, reason, ..
            } => format!("refused transient={transient}: {reason}"),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn missing_settings_are_named() {
        let e = ApiSender::new(
            EmailBackendCode::Mailgun,
            &EmailSettings::default(),
            None,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(e, "settings.Domain is required for mailgun");
        let e = ApiSender::new(
            EmailBackendCode::Sendgrid,
            &EmailSettings::default(),
            None,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert_eq!(e, "settings.ClientKey is required for sendgrid");
    }

    #[test]
    fn mandrill_table() {
        let m = sender(EmailBackendCode::Mandrill);
        let c = |status, body: &str| kind(&m.classify(status, None, None, body.as_bytes()));
        assert_eq!(
            c(
                200,
                r#"[{"email":"a@x.example","status":"sent","_id":"1"}]"#
            ),
            "status 200"
        );
        assert_eq!(
            c(
                200,
                r#"[{"email":"a@x.example","status":"queued"},{"email":"b@x.example","status":"rejected","reject_reason":"hard-bounce"}]"#
            ),
            "refused transient=false: mandrill refused b@x.example rejected: hard-bounce"
        );
        assert_eq!(
            c(
                500,
                r#"{"status":"error","code":-1,"name":"Invalid_Key","message":"Invalid API key"}"#
            ),
            "refused transient=false: mandrill HTTP 500 Invalid_Key: Invalid API key"
        );
        assert_eq!(
            c(
                500,
                r#"{"status":"error","code":-2,"name":"GeneralError","message":"oops"}"#
            ),
            "refused transient=true: mandrill HTTP 500 GeneralError: oops"
        );
        assert_eq!(
            c(502, "<html>bad gateway</html>"),
            "status 502 + mandrill: <html>bad gateway</html>"
        );
        assert_eq!(c(200, "not json"), "status 200");
    }

    #[test]
    fn sendgrid_and_mailgun_details() {
        let s = sender(EmailBackendCode::Sendgrid);
        assert_eq!(kind(&s.classify(202, None, None, b"")), "status 202");
        assert_eq!(
            kind(&s.classify(
                400,
                None,
                None,
                br#"{"errors":[{"message":"The from address does not match a verified Sender Identity.","field":"from","help":null}]}"#
            )),
            "status 400 + sendgrid: The from address does not match a verified Sender Identity. (from)"
        );
        let g = sender(EmailBackendCode::Mailgun);
        assert_eq!(
            kind(&g.classify(401, None, None, b"Forbidden")),
            "status 401 + mailgun: Forbidden"
        );
        assert_eq!(
            kind(&g.classify(
                400,
                None,
                None,
                br#"{"message":"'to' parameter is missing"}"#
            )),
            "status 400 + mailgun: 'to' parameter is missing"
        );
    }

    #[test]
    fn form_boundary_never_occurs_in_a_value() {
        let (b, _) = form_data("id", &[]);
        let (b2, body) = form_data("id", &[("text", format!("x{b}y"))]);
        assert_ne!(b, b2);
        assert_eq!(body.matches(&b2).count(), 2);
    }
}
