//! One prepare/send per channel. [`Dispatcher::prepare`] builds what a channel sends for a
//! [`Payload`] — the exact HTTP request, or the e-mail — without sending anything, or says why
//! it cannot be built; [`Dispatcher::send`] sends what was prepared. Delivery (`attempt`),
//! inspection (prepare without send, credentials masked) and test sends all go through these
//! two, so what the console shows is what the dispatcher sends.

use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, USER_AGENT};

use super::{ChannelSet, Dispatcher, LoadedTemplates};
use crate::clock::UnixMs;
use crate::notify::email::{
    DISABLED_REASON, OutgoingEmail, TEST_EVENT, render_event, render_notification, render_test,
    request_text,
};
use crate::notify::retry::{AttemptResult, Decision, NoJitter, classify};
use crate::notify::webhook::{
    PreparedRequest, StandardHook, TykHook, build_event_standard, build_standard, build_tyk, sign,
    tyk_event_message,
};
use crate::outbox::{
    Audience, ChannelId, EventPayload, NotificationPayload, OutboxRow, Payload, TestPayload,
};
use crate::templates::budget::off_runtime;

/// Message of test notifications.
const TEST_MESSAGE: &str = "tykwatch test notification";

/// What a channel will send.
#[derive(Debug)]
pub enum Prepared {
    Http(PreparedRequest),
    Email(OutgoingEmail),
}

/// The reason of a result that ended a preparation.
fn reason_of(r: AttemptResult) -> String {
    match r {
        AttemptResult::Permanent(reason) | AttemptResult::Network(reason) => reason,
        other => format!("{other:?}"),
    }
}

impl Dispatcher {
    /// Builds what `channel` sends for `payload` under the idempotency key `id`. `Err` is the
    /// attempt's result: permanent when it can never be built (channel not configured, a
    /// template that fails, no recipients), a network error when an org's addresses could not
    /// be read (retried on the schedule). `templates` is needed by e-mail channels only.
    pub async fn prepare(
        &self,
        channel: &ChannelId,
        payload: &Payload,
        id: &str,
        templates: Option<&LoadedTemplates>,
        now_ms: UnixMs,
    ) -> Result<Prepared, AttemptResult> {
        let now_secs = now_ms.div_euclid(1000);
        let ch = self.channels();
        let http = |r: Result<PreparedRequest, String>| {
            r.map(Prepared::Http).map_err(AttemptResult::Permanent)
        };
        match (channel, payload) {
            (ChannelId::Tyk, Payload::Crossing(_) | Payload::Test(_)) => {
                // A user's webhook template is code: it renders on the blocking pool.
                let payload = payload.clone();
                http(
                    off_runtime(move || {
                        let hook = ch.tyk_hook()?;
                        match &payload {
                            Payload::Crossing(p) => build_tyk(hook, p),
                            _ => tyk_test_request(hook, now_ms),
                        }
                    })
                    .await,
                )
            }
            (ChannelId::Tyk, Payload::Event(_)) => Err(AttemptResult::Permanent(
                "received events are not sent in Tyk's monitor format".into(),
            )),
            (ChannelId::Webhook(_), p) => {
                let built = ch.standard_hook(channel).and_then(|hook| match p {
                    Payload::Crossing(p) => build_standard(hook, p, id, now_secs),
                    Payload::Event(p) => build_event_standard(hook, p, id, now_secs),
                    Payload::Test(_) => standard_test_request(hook, channel, id, now_ms),
                });
                http(built)
            }
            (ChannelId::Email(_), p) => {
                let templates = match templates {
                    Some(t) if t.is_ok() => t.clone(),
                    Some(t) => {
                        let reason = t.as_ref().as_ref().err().cloned().unwrap_or_default();
                        return Err(AttemptResult::Permanent(reason));
                    }
                    None => {
                        return Err(AttemptResult::Permanent(
                            "e-mail templates not loaded".into(),
                        ));
                    }
                };
                // Org addresses are read before rendering; the render itself (user templates)
                // runs on the blocking pool.
                let to = match p {
                    Payload::Event(p) => self.event_recipients(p).await?,
                    _ => Vec::new(),
                };
                let (p, id) = (p.clone(), id.to_string());
                let rendered = off_runtime(move || {
                    let templates = templates.as_ref().as_ref().map_err(Clone::clone)?;
                    let backend = &ch.email.backend;
                    match &p {
                        Payload::Crossing(p) => {
                            render_notification(templates, backend, p, &id, now_secs)
                        }
                        Payload::Event(p) => render_event(templates, backend, p, &to, &id),
                        Payload::Test(t) => {
                            render_test(templates, backend, &t.recipients, &id, now_secs)
                        }
                    }
                })
                .await;
                rendered
                    .map(Prepared::Email)
                    .map_err(AttemptResult::Permanent)
            }
        }
    }

    /// Sends what [`Dispatcher::prepare`] built.
    pub async fn send(&self, prepared: Prepared, now_ms: UnixMs) -> AttemptResult {
        match prepared {
            Prepared::Http(req) => self.inner.sender.send(req, now_ms).await,
            Prepared::Email(m) => self.channels().mailer.send(&m, now_ms).await,
        }
    }

    /// Builds and sends one row; `Permanent` when it cannot be built. With the result, the
    /// request or e-mail as sent (credentials and the raw key masked), when it was built.
    pub(super) async fn attempt(
        &self,
        row: &OutboxRow,
        templates: Option<&LoadedTemplates>,
    ) -> (AttemptResult, Option<String>) {
        let payload = match Payload::of(row) {
            Ok(p) => p,
            Err(reason) => return (AttemptResult::Permanent(reason), None),
        };
        if row.channel_id.is_email() && !self.channels().email.enabled() {
            return (AttemptResult::Permanent(DISABLED_REASON.into()), None);
        }
        let now_ms = self.inner.clock.now_ms();
        match self
            .prepare(&row.channel_id, &payload, &row.idem_key, templates, now_ms)
            .await
        {
            Ok(prepared) => {
                let raw_key = match &payload {
                    Payload::Crossing(p) => p.key.as_deref(),
                    _ => None,
                };
                let sent = self
                    .describe(&row.channel_id, &payload, &prepared)
                    .ok()
                    // The summary line first: the detail pane shows both.
                    .map(|(summary, text)| without_raw_key(format!("{summary}\n{text}"), raw_key));
                (self.send(prepared, now_ms).await, sent)
            }
            Err(result) => (result, None),
        }
    }

    /// What `row` would send, without sending it: a summary line and the exact request
    /// (`METHOD URL`, headers, a blank line, the body) or, for SMTP, SES and file e-mail, the
    /// full `.eml`. The raw API key of `tyk` rows is replaced by its masked form and every
    /// credential (header secrets, API keys) is masked: the console never shows them.
    pub async fn inspect(&self, row: &OutboxRow) -> Result<(String, String), String> {
        let mut payload = Payload::of(row)?;
        let mut raw_key = None;
        if let Payload::Crossing(p) = &mut payload {
            raw_key = p.key.take();
            if raw_key.is_some() {
                p.key = Some(p.key_masked.clone());
            }
        }
        let now_ms = self.inner.clock.now_ms();
        let templates = match row.channel_id.is_email() {
            true => Some(self.load_templates().await),
            false => None,
        };
        let prepared = self
            .prepare(
                &row.channel_id,
                &payload,
                &row.idem_key,
                templates.as_ref(),
                now_ms,
            )
            .await
            .map_err(reason_of)?;
        let (summary, text) = self.describe(&row.channel_id, &payload, &prepared)?;
        // Belt and braces: whatever a template or header did, the raw key never leaves.
        let raw_key = raw_key.as_deref();
        Ok((
            without_raw_key(summary, raw_key),
            without_raw_key(text, raw_key),
        ))
    }

    /// A summary line and the full text of a prepared send (credentials masked).
    fn describe(
        &self,
        channel: &ChannelId,
        payload: &Payload,
        prepared: &Prepared,
    ) -> Result<(String, String), String> {
        match prepared {
            Prepared::Http(req) => {
                let format = match channel {
                    ChannelId::Tyk => "Tyk monitor format".to_owned(),
                    _ => {
                        let signed = match self.channels().webhooks.get(channel) {
                            Some(h) if !h.secret.is_empty() => "signed",
                            _ => "unsigned",
                        };
                        match payload {
                            Payload::Event(p) => {
                                format!("Standard Webhooks, {signed}, type {}", p.event)
                            }
                            _ => format!("Standard Webhooks, {signed}"),
                        }
                    }
                };
                let summary = format!("{channel} → {} {} ({format})", req.method, req.url);
                Ok((summary, request_text(req)))
            }
            Prepared::Email(m) => {
                let (target, text) = self.channels().mailer.describe(m)?;
                let mut summary = format!(
                    "{channel} → {} via {target}: {}",
                    m.to_list(),
                    m.rendered.subject
                );
                if !self.channels().email.enabled() {
                    summary.push_str(" [e-mail disabled: not sent]");
                }
                Ok((summary, text))
            }
        }
    }

    /// Sends one test notification (event `tykwatch.test`; e-mail template `test`) to
    /// `channel` now, outside the outbox: nothing is recorded, nothing retried, a 410 does
    /// not disable the channel. `Ok` says what accepted it; `Err` why it failed.
    pub async fn send_test(&self, channel: &ChannelId) -> Result<String, String> {
        let now_ms = self.inner.clock.now_ms();
        let id = format!("tykwatch-test-{now_ms}");
        let mut test = TestPayload::default();
        let mut templates = None;
        if channel.is_email() {
            if !self.channels().email.enabled() {
                return Err(DISABLED_REASON.into());
            }
            test.recipients = self.test_recipients(channel)?;
            templates = Some(self.load_templates().await);
        }
        let prepared = self
            .prepare(
                channel,
                &Payload::Test(test),
                &id,
                templates.as_ref(),
                now_ms,
            )
            .await
            .map_err(reason_of)?;
        let target = match &prepared {
            Prepared::Http(req) => format!("{} {}", req.method, req.url),
            Prepared::Email(m) => {
                let (via, _) = self.channels().mailer.describe(m)?;
                format!("{} via {via}", m.to_list())
            }
        };
        let result = self.send(prepared, now_ms).await;
        test_outcome(&result, &target, now_ms)
    }

    /// The recipients of an event e-mail row: the planned ones, or for an `email:event-org`
    /// row planned without them, the org's addresses read now. `Err` = the attempt's result.
    pub(super) async fn event_recipients(
        &self,
        payload: &EventPayload,
    ) -> Result<Vec<String>, AttemptResult> {
        if !payload.recipients.is_empty() {
            return Ok(payload.recipients.clone());
        }
        let Some(lookup) = &payload.org_lookup else {
            return Err(AttemptResult::Permanent(format!(
                "{}: no recipients",
                payload.channel_id
            )));
        };
        if lookup.org_id.is_empty() {
            return Err(AttemptResult::Permanent(format!(
                "the {} event names no organisation (data.org_id)",
                payload.event
            )));
        }
        let Some(book) = self.inner.event_orgs.get() else {
            return Err(AttemptResult::Permanent(format!(
                "could not read org {}: this process has no organisation source for e-mail",
                lookup.org_id
            )));
        };
        match book.addresses(&lookup.org_id, &lookup.option).await {
            Ok(to) if to.is_empty() => Err(AttemptResult::Permanent(format!(
                "org {} has no e-mail address for {} (event_options.{}.email)",
                lookup.org_id, lookup.option, lookup.option
            ))),
            Ok(to) => Ok(to),
            // The Dashboard may be back later: retried on the schedule.
            Err(reason) => Err(AttemptResult::Network(reason)),
        }
    }

    /// `[notify] email_to` for `email:ops`, every `org_email_to` address for `email:org`.
    fn test_recipients(&self, channel: &ChannelId) -> Result<Vec<String>, String> {
        let ch = self.channels();
        let e = &ch.email;
        let to: Vec<String> = match channel {
            ChannelId::Email(Audience::Ops) => e.email_to.clone(),
            ChannelId::Email(Audience::Org) => {
                let mut all: Vec<String> = Vec::new();
                for addr in e.org_email_to.values().flatten() {
                    if !all.iter().any(|a| a.eq_ignore_ascii_case(addr)) {
                        all.push(addr.clone());
                    }
                }
                all
            }
            ChannelId::Email(Audience::Developer) => {
                return Err(
                    "email:developer has no fixed recipients (each key's meta_data names them); \
                     test email:ops instead"
                        .into(),
                );
            }
            other => return Err(format!("unknown e-mail channel {other}")),
        };
        if to.is_empty() {
            return Err(format!("{channel} has no recipients in [notify]"));
        }
        Ok(to)
    }
}

/// `text` with every occurrence of the raw key replaced by its masked form.
fn without_raw_key(text: String, raw: Option<&str>) -> String {
    match raw {
        Some(raw) if !raw.is_empty() => text.replace(raw, &crate::quota::mask_key(raw)),
        _ => text,
    }
}

/// A test through the `tyk` channel: Tyk's monitor body for a `tykwatch.test` event (no key,
/// no org), with the channel's method, headers and template.
fn tyk_test_request(hook: &TykHook, now_ms: UnixMs) -> Result<PreparedRequest, String> {
    let payload = NotificationPayload {
        event: TEST_EVENT.into(),
        id: String::new(),
        channel_id: ChannelId::Tyk,
        scope: "key".into(),
        quota_key: String::new(),
        org_id: String::new(),
        alias: String::new(),
        key_masked: String::new(),
        key: None,
        api_id: String::new(),
        api_name: String::new(),
        threshold: 0.0,
        usage_percentage: 0.0,
        quota_max: 0,
        quota_remaining: 0,
        quota_renews: 0,
        period: 0,
        sequence: 0,
        covered: Vec::new(),
        detected_at_ms: now_ms,
        tags: Vec::new(),
        recipients: Vec::new(),
    };
    let mut req = build_tyk(hook, &payload)?;
    let mut event = tyk_event_message(&payload);
    event.event_type = TEST_EVENT.into();
    event.meta["Message"] = serde_json::Value::from(TEST_MESSAGE);
    let template = hook
        .template
        .as_ref()
        .map_err(|e| format!("webhook template: {e}"))?;
    req.body = template
        .render(&event)
        .map_err(|e| format!("webhook template rendering error: {e}"))?;
    Ok(req)
}

/// A signed Standard Webhooks request of type `tykwatch.test`.
fn standard_test_request(
    hook: &StandardHook,
    channel_id: &ChannelId,
    id: &str,
    now_ms: UnixMs,
) -> Result<PreparedRequest, String> {
    let now_secs = now_ms.div_euclid(1000);
    let body = serde_json::json!({
        "type": TEST_EVENT,
        "timestamp": crate::timefmt::rfc3339(now_secs),
        "data": {"message": TEST_MESSAGE, "channel": channel_id.to_string()},
    })
    .to_string();
    let mut headers = HeaderMap::new();
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(concat!("tykwatch/", env!("CARGO_PKG_VERSION"))),
    );
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    let id_value = HeaderValue::from_str(id).map_err(|_| "bad test id".to_owned())?;
    headers.insert("webhook-id", id_value);
    headers.insert("webhook-timestamp", HeaderValue::from(now_secs));
    if !hook.secret.is_empty() {
        let sig = sign(&hook.secret, id, now_secs, &body)?;
        let v = HeaderValue::from_str(&sig).map_err(|_| "bad signature".to_owned())?;
        headers.insert("webhook-signature", v);
    }
    Ok(PreparedRequest {
        method: Method::POST,
        url: hook.url.clone(),
        headers,
        body,
    })
}

/// A test's outcome as text, with the same reasons the outbox would record.
fn test_outcome(result: &AttemptResult, target: &str, now_ms: UnixMs) -> Result<String, String> {
    match classify(result, 0, now_ms, &mut NoJitter) {
        Decision::Delivered { .. } => Ok(match result {
            AttemptResult::Status { status, .. } => format!("HTTP {status} from {target}"),
            AttemptResult::Smtp { code, message } => {
                format!("sent to {target}: smtp {code} {message}")
                    .trim_end()
                    .to_owned()
            }
            _ => format!("written for {target}"),
        }),
        Decision::Retry { reason, .. }
        | Decision::Failed { reason, .. }
        | Decision::Dead { reason, .. }
        | Decision::DisableChannel { reason, .. } => Err(format!("{target}: {reason}")),
    }
}

impl ChannelSet {
    fn tyk_hook(&self) -> Result<&TykHook, String> {
        self.tyk.as_ref().ok_or_else(|| {
            "the tyk channel is not configured ([monitor.configuration] target_path)".into()
        })
    }

    fn standard_hook(&self, channel: &ChannelId) -> Result<&StandardHook, String> {
        self.webhooks.get(channel).ok_or_else(|| {
            format!("channel {channel} is not configured (or disabled) in [[webhooks]]")
        })
    }
}
