//! The console's per-event test: a sample Dashboard event of that type POSTed to the event's
//! webhook, and a sample e-mail rendered with the matching template sent to its addresses
//! through the configured e-mail backend.
//!
//! Bodies are the shipped template samples (`email_templates/samples/`), which are the
//! Dashboard's `{"event": "<option>.<action>", "data": …}` shapes (tyk.io/docs, Tyk Dashboard "Organisation event options"), with the
//! organisation's own id and name put in, so a receiver files the test under the right org.
//! Outcome texts never quote a webhook URL beyond its host: URLs often carry tokens.

use std::time::Duration;

use reqwest::Url;
use serde_json::{Value, json};

use super::email::{
    DISABLED_REASON, EmailSender, EmailSetup, OutgoingEmail, one_line, render_test,
};
use super::retry::AttemptResult;
use super::webhook::{PreparedRequest, WebhookSender};
use crate::clock::UnixMs;
use crate::templates::budget::off_runtime;
use crate::templates::{Templates, from_mailbox};

/// One event of one organisation, with the values to test (pending edits included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestTarget {
    pub org_id: String,
    pub org_name: String,
    /// `api_event`, `key_event`, … or any other name the document has.
    pub event: String,
    /// Empty: no webhook test.
    pub webhook: String,
    /// Comma-separated addresses; empty: no e-mail test.
    pub email: String,
}

/// What each channel answered: `Ok(what happened)` or `Err(why not)`; `None` = not tested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestOutcome {
    pub webhook: Option<Result<String, String>>,
    pub email: Option<Result<String, String>>,
}

impl TestOutcome {
    /// Every tested channel accepted the test.
    pub fn ok(&self) -> bool {
        [&self.webhook, &self.email]
            .into_iter()
            .flatten()
            .all(Result::is_ok)
    }

    /// One line: `webhook hooks.example.com: HTTP 200 · e-mail a@b.c: sent (…)`.
    pub fn summary(&self) -> String {
        let part = |name: &str, r: &Option<Result<String, String>>| {
            r.as_ref().map(|r| match r {
                Ok(t) => format!("{name} {t}"),
                Err(e) => format!("{name} FAILED: {e}"),
            })
        };
        let parts: Vec<String> = [part("webhook", &self.webhook), part("e-mail", &self.email)]
            .into_iter()
            .flatten()
            .collect();
        if parts.is_empty() {
            "nothing to test: no webhook and no e-mail".to_owned()
        } else {
            parts.join(" · ")
        }
    }
}

/// The template and sample an event is tested with: `(template, sample id)`; `None` for an event
/// no template is made for (it gets a generic body and the `test` e-mail).
pub fn template_for(event: &str) -> Option<(&'static str, &'static str)> {
    match event {
        "api_event" => Some(("api_event", "api_event")),
        // A hashed key event carries the key's hash; its mail reads like a key event's.
        "key_event" | "hashed_key_event" => Some(("key_event", "key_event")),
        "key_request_event" => Some(("key_request_submitted", "key_request_submitted")),
        "password_reset_event" | "portal_password_reset_event" => {
            Some(("password_reset", "password_reset.dashboard"))
        }
        _ => None,
    }
}

/// The webhook body of a test of `event` for the organisation: the sample with the event name
/// and the organisation filled in.
pub fn sample_body(templates: &Templates, t: &TestTarget) -> Value {
    let sample = template_for(&t.event).and_then(|(_, id)| templates.sample(id).ok());
    match sample {
        // `{"event": "api_event.updated", "data": {…}}` shapes: keep the action.
        Some(mut body) if body.get("event").is_some() => {
            let action = body
                .get("event")
                .and_then(Value::as_str)
                .and_then(|e| e.rsplit_once('.'))
                .map_or("test", |(_, a)| a)
                .to_owned();
            body["event"] = Value::String(format!("{}.{action}", t.event));
            if let Some(data) = body.get_mut("data").and_then(Value::as_object_mut) {
                data.insert("org_id".into(), Value::String(t.org_id.clone()));
            }
            body
        }
        _ => json!({
            "event": format!("{}.test", t.event),
            "data": {"org_id": t.org_id, "org_name": t.org_name, "test": true},
        }),
    }
}

/// `scheme://host[:port]`: enough to say where a test went, without path or query (tokens).
pub fn url_origin(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => "the webhook".to_owned(),
        },
        Err(_) => "the webhook".to_owned(),
    }
}

/// Sends test events; built once per console.
#[derive(Debug, Clone)]
pub struct TestSender {
    http: WebhookSender,
    /// The e-mail setup of the notifications; `None`: e-mail tests are refused with the reason.
    email: Option<EmailSetup>,
    timeout: Duration,
}

impl TestSender {
    pub fn new(email: Option<EmailSetup>, timeout: Duration) -> Result<TestSender, String> {
        // The webhook sender of the outbox: the same client policy (no redirects) and errors
        // without the URL.
        let http = WebhookSender::new(timeout)
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(TestSender {
            http,
            email,
            timeout,
        })
    }

    /// Sends to whatever `t` has set (webhook and e-mail at the same time).
    pub async fn send(&self, t: &TestTarget, now_ms: UnixMs) -> TestOutcome {
        // The user's template directory is read off the async workers; a directory that
        // cannot be read leaves the shipped templates.
        let dir = self.email.as_ref().and_then(|s| s.template_dir.clone());
        let templates = tokio::task::spawn_blocking(move || Templates::load(dir.as_deref()).ok())
            .await
            .ok()
            .flatten()
            .unwrap_or_else(Templates::shipped);
        let templates = std::sync::Arc::new(templates);
        let webhook = async {
            if t.webhook.trim().is_empty() {
                None
            } else {
                Some(self.post(&t.webhook, &sample_body(&templates, t)).await)
            }
        };
        let email = async {
            if t.email.trim().is_empty() {
                None
            } else {
                Some(self.mail(&templates, t, now_ms).await)
            }
        };
        let (webhook, email) = tokio::join!(webhook, email);
        TestOutcome { webhook, email }
    }

    async fn post(&self, url: &str, body: &Value) -> Result<String, String> {
        let origin = url_origin(url);
        crate::orgs::check_webhook(url).map_err(|e| format!("{origin}: {e}"))?;
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        headers.insert(
            reqwest::header::USER_AGENT,
            reqwest::header::HeaderValue::from_static(concat!(
                "tykwatch/",
                env!("CARGO_PKG_VERSION"),
                " (test)"
            )),
        );
        let req = PreparedRequest {
            method: reqwest::Method::POST,
            url: url.to_owned(),
            headers,
            body: body.to_string(),
        };
        match self.http.send(req, 0).await {
            AttemptResult::Status { status, .. } if (200..300).contains(&status) => {
                Ok(format!("{origin}: HTTP {status}"))
            }
            AttemptResult::Status { status, .. } => {
                Err(match reqwest::StatusCode::from_u16(status) {
                    Ok(code) => format!("{origin}: HTTP {code}"),
                    Err(_) => format!("{origin}: HTTP {status}"),
                })
            }
            AttemptResult::Timeout(_) => Err(format!(
                "{origin}: no answer within {}s",
                self.timeout.as_secs()
            )),
            other => Err(format!(
                "{origin}: {}",
                describe(&other).err().unwrap_or_default()
            )),
        }
    }

    async fn mail(
        &self,
        templates: &std::sync::Arc<Templates>,
        t: &TestTarget,
        now_ms: UnixMs,
    ) -> Result<String, String> {
        let Some(setup) = &self.email else {
            return Err("no e-mail backend is set up for the console".to_owned());
        };
        if !setup.enabled() {
            return Err(DISABLED_REASON.to_owned());
        }
        crate::orgs::check_email_list(&t.email)?;
        let to: Vec<String> = t
            .email
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        let id = test_id(&t.event, now_ms);
        // A user template is code: it renders on the blocking pool.
        let message = {
            let (templates, setup, t, to, id) = (
                templates.clone(),
                setup.clone(),
                t.clone(),
                to.clone(),
                id.clone(),
            );
            off_runtime(move || build_mail(&templates, &setup, &t, &to, &id, now_ms)).await?
        };
        let sender = EmailSender::new(setup, self.timeout);
        let place = sender
            .describe(&message)
            .map(|(summary, _)| summary)
            .unwrap_or_default();
        let result = sender.send(&message, now_ms).await;
        let list = message.to_list();
        describe(&result).map(|done| {
            if place.is_empty() {
                format!("{list}: {done}")
            } else {
                format!("{list}: {done} ({})", one_line(&place))
            }
        })
    }
}

/// The sample e-mail of `t.event`: its template with its sample, or the `test` mail.
fn build_mail(
    templates: &Templates,
    setup: &EmailSetup,
    t: &TestTarget,
    to: &[String],
    id: &str,
    now_ms: UnixMs,
) -> Result<OutgoingEmail, String> {
    let Some((template, _)) = template_for(&t.event) else {
        return render_test(templates, &setup.backend, to, id, now_ms.div_euclid(1000));
    };
    // Event mails render the webhook body, as routing does.
    let body = sample_body(templates, t);
    let rendered = templates
        .render(template, &body)
        .map_err(|e| format!("e-mail template {template}: {e}"))?;
    let from = from_mailbox(&setup.backend).map_err(|e| e.to_string())?;
    OutgoingEmail::build(id, rendered, from, to)
}

/// A Message-ID-safe id: `test.org.<event>.<ms>` (the event name reduced to the id alphabet).
fn test_id(event: &str, now_ms: UnixMs) -> String {
    let event: String = event
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("test.org.{event}.{now_ms}")
}

/// What an e-mail attempt came to, for a person.
fn describe(r: &AttemptResult) -> Result<String, String> {
    match r {
        AttemptResult::Status { status, .. } if (200..300).contains(status) => {
            Ok(format!("accepted (HTTP {status})"))
        }
        AttemptResult::Status { status, .. } => Err(format!("HTTP {status}")),
        AttemptResult::Smtp { code, .. } if (200..300).contains(code) => {
            Ok(format!("accepted (SMTP {code})"))
        }
        AttemptResult::Smtp { code, message } => Err(format!("SMTP {code} {}", one_line(message))),
        AttemptResult::Accepted => Ok("written".to_owned()),
        AttemptResult::Timeout(e) | AttemptResult::Network(e) | AttemptResult::Permanent(e) => {
            Err(one_line(e))
        }
        AttemptResult::Refused { reason, .. } => Err(one_line(reason)),
        AttemptResult::Detailed { inner, detail } => match describe(inner) {
            Ok(t) => Ok(t),
            Err(e) => Err(format!("{e}: {}", one_line(detail))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(event: &str) -> TestTarget {
        TestTarget {
            org_id: "org1".into(),
            org_name: "Org One".into(),
            event: event.into(),
            webhook: String::new(),
            email: String::new(),
        }
    }

    #[test]
    fn bodies_are_dashboard_shapes_for_the_org() {
        let t = Templates::shipped();
        let b = sample_body(&t, &target("api_event"));
        assert_eq!(b["event"], "api_event.updated");
        assert_eq!(b["data"]["org_id"], "org1");
        let b = sample_body(&t, &target("hashed_key_event"));
        assert_eq!(b["event"], "hashed_key_event.created");
        let b = sample_body(&t, &target("key_request_event"));
        assert_eq!(b["event"], "key_request_event.submitted");
        let b = sample_body(&t, &target("portal_password_reset_event"));
        assert_eq!(b["event"], "portal_password_reset_event.requested");
        assert_eq!(b["data"]["org_id"], "org1");
        let b = sample_body(&t, &target("future_event"));
        assert_eq!(b["event"], "future_event.test");
        assert_eq!(b["data"]["org_id"], "org1");
    }

    #[test]
    fn every_event_renders_its_mail() {
        let setup = EmailSetup::disabled();
        let t = Templates::shipped();
        for event in crate::orgs::KNOWN_EVENTS.iter().chain(&["future_event"]) {
            let m = build_mail(
                &t,
                &setup,
                &target(event),
                &["ops@example.com".into()],
                &test_id(event, 1),
                1_740_823_200_000,
            )
            .unwrap_or_else(|e| panic!("{event}: {e}"));
            assert!(!m.rendered.subject.is_empty(), "{event}");
        }
    }

    #[test]
    fn origins_hide_paths_and_queries() {
        assert_eq!(
            url_origin("https://hooks.example.com/x?token=s3cret"),
            "https://hooks.example.com"
        );
        assert_eq!(
            url_origin("http://127.0.0.1:8089/events"),
            "http://127.0.0.1:8089"
        );
        assert_eq!(url_origin("nope"), "the webhook");
        assert_eq!(test_id("a.b c", 5), "test.org.a-b-c.5");
    }

    #[tokio::test]
    async fn posts_the_sample_and_reports_the_status() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.expect("accept");
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            // Headers, then the body up to its closing brace (the sample is one object).
            while !buf.ends_with(b"}") {
                let n = sock.read(&mut chunk).await.expect("read");
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            sock.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                .await
                .expect("write");
            String::from_utf8_lossy(&buf).into_owned()
        });
        let sender = TestSender::new(None, Duration::from_secs(5)).expect("client");
        let mut t = target("key_request_event");
        t.webhook = format!("http://{addr}/hook?token=s3cret");
        t.email = "ops@example.com".into();
        let out = sender.send(&t, 1_740_823_200_000).await;
        let request = server.await.expect("server");
        assert!(request.starts_with("POST /hook?token=s3cret"), "{request}");
        assert!(
            request.contains("\"key_request_event.submitted\""),
            "{request}"
        );
        assert_eq!(out.webhook, Some(Ok(format!("http://{addr}: HTTP 204"))));
        // No e-mail setup: refused with the reason, and the summary never shows the token.
        assert!(matches!(out.email, Some(Err(_))));
        assert!(!out.ok());
        assert!(!out.summary().contains("s3cret"), "{}", out.summary());
    }
}
