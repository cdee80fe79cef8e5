//! E-mail delivery of outbox rows (ARCHITECTURE.md "Data flow"), configured like Tyk Dashboard's
//! `email_backend` (tyk.io/docs, Tyk Dashboard configuration: `email_backend`).
//!
//! - Rendering: an `email:*` row's payload becomes a [`QuotaNotice`] and is rendered with the
//!   user's [`Templates`] at delivery time, so a template fix applies to queued rows.
//!   `quota_threshold` (ops, org), `quota_threshold_developer` (developer), `quota_exhausted`
//!   (usage ≥ 100 %). A template that does not render fails the row with its `FILE:LINE`.
//!   Rows of received events ([`render_event`]) use an `EventNotice` and the event's template.
//! - Ids: the outbox idempotency key is the notification id. It becomes the `Message-ID`
//!   through [`encode_id`] and is sent raw in `X-Tykwatch-Id`; retries carry the same id.
//! - Backends ([`EmailSender`]): `smtp` and `amazonses` (SES's SMTP interface) through one
//!   pooled lettre transport ([`smtp`]); `sendgrid`, `mailgun`, `mandrill` over HTTPS
//!   ([`providers`]); `file` writes one `.eml` per notification ([`file`]).
//!
//! Secrets (passwords, API keys) never reach a reason, a log line or [`EmailSender::describe`].

pub mod file;
pub mod providers;
pub mod smtp;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::Message;
use lettre::message::Mailbox;
use serde::Serialize;

pub(crate) use super::error_chain;
use super::retry::AttemptResult;
use crate::clock::UnixMs;
use crate::config::{Config, EmailBackendCode, EmailBackendConfig};
use crate::outbox::{Audience, ChannelId, EventPayload, NotificationPayload};
use crate::templates::context::EventNotice;
use crate::templates::{QuotaNotice, RenderedEmail, Templates, build_message, from_mailbox};

/// `event` of test notifications (the console's `t` key); the e-mail template is `test`.
pub const TEST_EVENT: &str = "tykwatch.test";

pub use crate::outbox::keys::{ID_HEADER, decode_id, encode_id};

/// The e-mail template of test notifications.
pub const TEST_TEMPLATE: &str = "test";

/// What the dispatcher needs to send e-mail.
#[derive(Debug, Clone)]
pub struct EmailSetup {
    /// `[email_backend]`.
    pub backend: EmailBackendConfig,
    /// `[notify] email_to`: recipients of `email:ops` test sends.
    pub email_to: Vec<String>,
    /// `[notify] org_email_to`: recipients of `email:org` test sends (all of them).
    pub org_email_to: BTreeMap<String, Vec<String>>,
    /// `<config dir>/email_templates`, shadowing the shipped templates; `None` = shipped only.
    pub template_dir: Option<PathBuf>,
    /// Directory of the `file` backend: `<data dir>/mail`.
    pub mail_dir: PathBuf,
}

impl EmailSetup {
    /// From the configuration: templates in `<config_dir>/email_templates`, `.eml` files of
    /// the `file` backend in `<data_dir>/mail`.
    pub fn from_config(config: &Config, config_dir: &Path, data_dir: &Path) -> EmailSetup {
        EmailSetup {
            backend: config.email_backend.clone(),
            email_to: config.notify.email_to.clone(),
            org_email_to: config.notify.org_email_to.clone(),
            template_dir: Some(crate::templates::user_dir(config_dir)),
            mail_dir: mail_dir(data_dir),
        }
    }

    /// E-mail off (`enable_email_notifications = false`): e-mail rows fail with that reason.
    pub fn disabled() -> EmailSetup {
        EmailSetup {
            backend: EmailBackendConfig::default(),
            email_to: Vec::new(),
            org_email_to: BTreeMap::new(),
            template_dir: None,
            mail_dir: PathBuf::from("mail"),
        }
    }

    pub fn enabled(&self) -> bool {
        self.backend.enable_email_notifications
    }
}

/// The `file` backend's directory under a data dir.
pub fn mail_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("mail")
}

/// Why an e-mail row fails when e-mail is off.
pub const DISABLED_REASON: &str =
    "e-mail is disabled ([email_backend] enable_email_notifications = false)";

// ---------------------------------------------------------------------------------------------
// Ids
// ---------------------------------------------------------------------------------------------

/// The `.eml` file name of a notification: `<encode_id(id)>.eml`, or `sha256-<hex>.eml` when
/// that would pass 255 bytes (the usual file-name limit). Deterministic, so a retry overwrites.
pub fn file_name(id: &str) -> Option<String> {
    let encoded = encode_id(id)?;
    if encoded.len() + 4 <= 255 {
        return Some(format!("{encoded}.eml"));
    }
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(id.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!("sha256-{hex}.eml"))
}

// ---------------------------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------------------------

/// A rendered message ready for any backend.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    /// The notification id (outbox idempotency key, or a test id).
    pub id: String,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    pub rendered: RenderedEmail,
    /// The RFC 5322 message (SMTP, SES and the file backend send exactly this).
    pub message: Message,
}

impl OutgoingEmail {
    /// Builds the message; `Err` is a permanent failure (bad address, bad id).
    pub fn build(
        id: &str,
        rendered: RenderedEmail,
        from: Mailbox,
        to: &[String],
    ) -> Result<OutgoingEmail, String> {
        let message = build_message(&rendered, &from, to, id).map_err(|e| e.to_string())?;
        let to = to
            .iter()
            .map(|a| a.trim().parse::<Mailbox>().map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OutgoingEmail {
            id: id.to_owned(),
            from,
            to,
            rendered,
            message,
        })
    }

    /// `<…@tykwatch>`, as in the message.
    pub fn message_id(&self) -> String {
        self.message
            .headers()
            .get_raw("Message-ID")
            .unwrap_or_default()
            .to_owned()
    }

    /// The message as sent (CRLF line ends).
    pub fn eml(&self) -> Vec<u8> {
        self.message.formatted()
    }

    /// The recipients' addresses, comma-separated (summaries).
    pub fn to_list(&self) -> String {
        self.to
            .iter()
            .map(|m| m.email.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Renders an `email:*` outbox row. `Err` (permanent): unreadable templates, a template that
/// fails (`FILE:LINE: …`), no or bad recipients, a bad sender.
pub fn render_notification(
    templates: &Templates,
    backend: &EmailBackendConfig,
    payload: &NotificationPayload,
    id: &str,
    now_secs: i64,
) -> Result<OutgoingEmail, String> {
    if payload.recipients.is_empty() {
        return Err(format!("{}: no recipients", payload.channel_id));
    }
    let mut notice = QuotaNotice::from_payload(payload, now_secs)
        .with_dashboard_hostname(&backend.dashboard_hostname);
    notice.notification_id = id.to_owned();
    let name = notice.template_name(payload.channel_id == ChannelId::Email(Audience::Developer));
    let rendered = templates
        .render(name, &notice)
        .map_err(|e| format!("e-mail template {name}: {e}"))?;
    let from = from_mailbox(backend).map_err(|e| e.to_string())?;
    OutgoingEmail::build(id, rendered, from, &payload.recipients)
}

/// The template of every event that has no template of its own: shipped
/// (`email_templates/event.*`), and overridable like any other.
pub const EVENT_FALLBACK_TEMPLATE: &str = "event";

/// Renders an event row's e-mail to `to` (the payload's recipients, or the org's addresses
/// read again on a resend). Template: the payload's (`key_request_submitted`, `api_event`,
/// …, see [`crate::notify::route::template_for`]); when the set has no such template, the
/// user's `event` template, else a built-in plain message (summary + masked body), so an
/// event never waits for a template to exist. `Err` (permanent): a template that fails
/// (`FILE:LINE: …`), no or bad recipients, a bad sender.
pub fn render_event(
    templates: &Templates,
    backend: &EmailBackendConfig,
    payload: &EventPayload,
    to: &[String],
    id: &str,
) -> Result<OutgoingEmail, String> {
    if to.is_empty() {
        return Err(format!("{}: no recipients", payload.channel_id));
    }
    let mut notice =
        EventNotice::from_payload(payload).with_dashboard_hostname(&backend.dashboard_hostname);
    notice.notification_id = id.to_owned();
    notice.recipients = to.to_vec();
    let ctx = notice.to_context();
    let name = [payload.template.as_str(), EVENT_FALLBACK_TEMPLATE]
        .into_iter()
        .find(|n| !n.is_empty() && templates.contains(n));
    let rendered = match name {
        Some(name) => templates
            .render(name, &ctx)
            .map_err(|e| format!("e-mail template {name}: {e}"))?,
        None => plain_event_email(&notice),
    };
    let from = from_mailbox(backend).map_err(|e| e.to_string())?;
    OutgoingEmail::build(id, rendered, from, to)
}

/// The built-in message of an event when even the `event` template is missing (a template
/// set built without the shipped files): the summary and the masked body.
fn plain_event_email(n: &EventNotice) -> RenderedEmail {
    let body = serde_json::to_string_pretty(&n.data).unwrap_or_else(|_| "null".to_owned());
    let org = if n.org.id.is_empty() {
        String::new()
    } else {
        format!("Organisation   {}\n", n.org.id)
    };
    let key = if n.masked_key.is_empty() {
        String::new()
    } else {
        format!("Key            {}\n", n.masked_key)
    };
    let text = format!(
        "{summary}\n\nEvent          {event}\nReceived at    {at}\n{org}{key}\n{body}\n\n-- \ntykwatch ({event}, event {id})\n",
        summary = n.summary,
        event = n.event,
        at = n.received_at_rfc3339,
        id = n.event_id,
    );
    let esc = html_escape;
    let html = format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n<p>{}</p>\n<p>Event <code>{}</code>, received at {}</p>\n<pre>{}</pre>\n<p style=\"color:#6b7280;font-size:12px\">tykwatch (event {})</p>\n</body></html>\n",
        esc(&n.summary),
        esc(&n.event),
        esc(&n.received_at_rfc3339),
        esc(&body),
        n.event_id,
    );
    RenderedEmail {
        subject: crate::templates::sanitize_header(&format!("[Tyk] {}", n.summary)),
        text,
        html,
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The context of the `test` template (`email_templates/samples/test.json`).
#[derive(Debug, Serialize)]
struct TestContext {
    sent_at: String,
    hostname: String,
    backend: String,
    from: String,
    to: Vec<String>,
    version: String,
}

/// Renders the `test` e-mail to `to`.
pub fn render_test(
    templates: &Templates,
    backend: &EmailBackendConfig,
    to: &[String],
    id: &str,
    now_secs: i64,
) -> Result<OutgoingEmail, String> {
    if to.is_empty() {
        return Err("no recipients".into());
    }
    let from = from_mailbox(backend).map_err(|e| e.to_string())?;
    let ctx = TestContext {
        sent_at: crate::timefmt::rfc3339(now_secs),
        hostname: lettre::transport::smtp::extension::ClientId::default().to_string(),
        backend: backend.code.as_str().to_owned(),
        from: from.to_string(),
        to: to.to_vec(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let rendered = templates
        .render(TEST_TEMPLATE, &ctx)
        .map_err(|e| format!("e-mail template {TEST_TEMPLATE}: {e}"))?;
    OutgoingEmail::build(id, rendered, from, to)
}

// ---------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------

/// The configured backend, built once per dispatcher (one SMTP pool, one HTTP client).
#[derive(Debug)]
pub enum EmailSender {
    Smtp(smtp::SmtpSender),
    Api(providers::ApiSender),
    File(file::FileSender),
    /// The settings cannot work (no `SMTPAddress`, a bad `Endpoint`, …): every send fails
    /// with this reason until the configuration is fixed.
    Misconfigured {
        code: EmailBackendCode,
        reason: String,
    },
}

impl EmailSender {
    /// `timeout` bounds each SMTP command / HTTP request.
    pub fn new(setup: &EmailSetup, timeout: Duration) -> EmailSender {
        let b = &setup.backend;
        let misconfigured = |reason: String| EmailSender::Misconfigured {
            code: b.code,
            reason: format!("email_backend ({}): {reason}", b.code),
        };
        match b.code {
            EmailBackendCode::Smtp => match smtp::SmtpTarget::from_settings(&b.settings) {
                Ok(t) => EmailSender::Smtp(smtp::SmtpSender::new(t, timeout)),
                Err(e) => misconfigured(e),
            },
            EmailBackendCode::Amazonses => match smtp::SmtpTarget::ses(&b.settings) {
                Ok(t) => EmailSender::Smtp(smtp::SmtpSender::new(t, timeout)),
                Err(e) => misconfigured(e),
            },
            EmailBackendCode::Sendgrid | EmailBackendCode::Mailgun | EmailBackendCode::Mandrill => {
                match providers::ApiSender::new(b.code, &b.settings, b.api_base.as_deref(), timeout)
                {
                    Ok(s) => EmailSender::Api(s),
                    Err(e) => misconfigured(e),
                }
            }
            EmailBackendCode::File => EmailSender::File(file::FileSender::new(&setup.mail_dir)),
        }
    }

    /// Sends once; the outcome for [`super::retry::classify`].
    pub async fn send(&self, m: &OutgoingEmail, now_ms: UnixMs) -> AttemptResult {
        match self {
            EmailSender::Smtp(s) => s.send(m).await,
            EmailSender::Api(s) => s.send(m, now_ms).await,
            EmailSender::File(s) => s.send(m).await,
            EmailSender::Misconfigured { reason, .. } => AttemptResult::Permanent(reason.clone()),
        }
    }

    /// Where a message would go (one line) and exactly what would be sent, without sending:
    /// the `.eml` for SMTP, SES and files, the HTTP request for the APIs. Credentials masked.
    pub fn describe(&self, m: &OutgoingEmail) -> Result<(String, String), String> {
        let eml = || String::from_utf8_lossy(&m.eml()).into_owned();
        match self {
            EmailSender::Smtp(s) => Ok((s.target().summary(), eml())),
            EmailSender::Api(s) => {
                let req = s.build(m, true)?;
                Ok((
                    format!("{} {} {}", s.provider(), req.method, req.url),
                    request_text(&req),
                ))
            }
            EmailSender::File(s) => {
                let path = s.path_for(&m.id)?;
                Ok((format!("file {}", path.display()), eml()))
            }
            EmailSender::Misconfigured { reason, .. } => Err(reason.clone()),
        }
    }
}

/// A request as text: `METHOD URL`, headers, a blank line, the body. Sensitive header values
/// are masked (callers build bodies with masked keys).
pub fn request_text(req: &super::webhook::PreparedRequest) -> String {
    let mut out = format!("{} {}\n", req.method, req.url);
    for (name, value) in &req.headers {
        let v = if value.is_sensitive() {
            crate::config::Secret::new(value.to_str().unwrap_or_default()).masked()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        out.push_str(&format!("{name}: {v}\n"));
    }
    out.push('\n');
    out.push_str(&req.body);
    out
}

/// A remote party's text made safe for a stored reason: one line, no control characters,
/// at most 300 characters.
pub(crate) fn one_line(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if out.chars().count() > 300 {
        out = out.chars().take(299).collect::<String>() + "…";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for id in [
            "q:key:0f3a9c:1900000000:87.5:email:ops",
            "q:org:acme:1900000000:80:email:org",
            "q~0123456789abcdef",
            "q:key:ab:api:.hidden:1:80:email:developer",
            "q:key:ab:api:a..b:1:80:email:ops",
            "tykwatch-test-1800000000000",
        ] {
            let enc = encode_id(id).unwrap();
            assert!(
                enc.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~.".contains(&b)),
                "{enc}"
            );
            assert!(!enc.starts_with('.') && !enc.ends_with('.') && !enc.contains(".."));
            assert_eq!(decode_id(&enc).as_deref(), Some(id), "{enc}");
        }
        assert_eq!(
            encode_id("q:key:0f3a:1900000000:80:email:ops").unwrap(),
            "q=key=0f3a=1900000000=80=email=ops"
        );
        assert!(
            encode_id("q:key:ab:api:a..b:1:80:email:ops")
                .unwrap()
                .starts_with('+')
        );
        assert!(
            !encode_id("q:key:ab:api:.hidden:1:80:email:ops")
                .unwrap()
                .starts_with('+')
        );
        assert_eq!(encode_id(""), None);
        assert_eq!(encode_id("a b"), None);
        assert_eq!(encode_id("a\r\nBcc: x"), None);
        assert_eq!(encode_id("a/b"), None);
        assert_eq!(encode_id(&"q".repeat(300)), None);
    }

    #[test]
    fn file_names_stay_short_and_stable() {
        let id = "q:org:acme:1900000000:80:email:org";
        assert_eq!(
            file_name(id).unwrap(),
            "q=org=acme=1900000000=80=email=org.eml"
        );
        let long = format!("q:key:{}", "a.".repeat(120));
        let name = file_name(&long).unwrap();
        assert!(name.starts_with("sha256-") && name.len() < 100, "{name}");
        assert_eq!(file_name(&long), Some(name));
    }

    #[test]
    fn remote_text_is_one_short_line() {
        assert_eq!(one_line("bad\r\nBcc: x\t y"), "bad Bcc: x y");
        assert_eq!(one_line(&"x".repeat(1000)).chars().count(), 300);
    }
}
