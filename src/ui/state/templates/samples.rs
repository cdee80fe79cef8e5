//! The samples a template is previewed with: its own files, then real events and notifications.

use super::*;

/// Real samples offered per template: the most recent events or notifications.
pub const REAL_SAMPLES: usize = 10;
/// Event templates remembered (event names come from senders: a flood of odd names must not
/// grow the index without bound). Beyond it the template whose newest event is oldest goes.
pub(super) const MAX_EVENT_TEMPLATES: usize = 128;

pub(super) const QUOTA_THRESHOLD: &str = "quota_threshold";
pub(super) const QUOTA_THRESHOLD_DEVELOPER: &str = "quota_threshold_developer";
pub(super) const QUOTA_EXHAUSTED: &str = "quota_exhausted";

/// Where a sample's data comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleSource {
    /// A file of `samples/` (shipped, or the user's).
    File(Origin),
    /// A received event (masked as recorded), rendered as the dispatcher renders its e-mail.
    Event(Arc<EventRow>),
    /// A quota notification's payload (without the raw key), rendered as the dispatcher does.
    Notification(Arc<NotificationPayload>),
}

/// One sample a template can be previewed with.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleChoice {
    /// What the choice is remembered by: the sample id (`quota_threshold.key`), `event:<id>`
    /// or `notification:<idempotency key>`.
    pub id: String,
    /// How the picker and the header name it: the sample id,
    /// `event #42 key_request_event.submitted`, `notification portal-key 80%`.
    pub label: String,
    /// Shown after it, muted: the sample file, the event's summary, the notification's
    /// channel and usage.
    pub detail: String,
    /// When a real one was received or queued; `None` for files.
    pub at_ms: Option<UnixMs>,
    /// A real notification's recipients, when it is the e-mail this template renders.
    pub to: Option<Vec<String>>,
    pub source: SampleSource,
}

impl SampleChoice {
    pub(super) fn file(s: SampleInfo) -> Self {
        SampleChoice {
            label: s.id.clone(),
            id: s.id,
            detail: s.display,
            at_ms: None,
            to: None,
            source: SampleSource::File(s.origin),
        }
    }

    pub(super) fn event(row: &Arc<EventRow>) -> Self {
        SampleChoice {
            id: format!("event:{}", row.id),
            label: format!("event #{} {}", row.id, row.event),
            detail: row.summary.clone(),
            at_ms: Some(row.received_at),
            to: None,
            source: SampleSource::Event(row.clone()),
        }
    }

    pub(super) fn notification(n: &QuotaRow, to: bool) -> Self {
        let p = &n.payload;
        let who = [&p.alias, &p.key_masked, &p.org_id]
            .into_iter()
            .find(|s| !s.is_empty())
            .map_or("", |s| s.as_str());
        SampleChoice {
            id: format!("notification:{}", p.id),
            label: format!("notification {who} {}", format::threshold(p.threshold)),
            detail: format!(
                "{} · {} used",
                p.channel_id,
                format::pct(p.usage_percentage)
            ),
            at_ms: Some(n.at_ms),
            to: (to && n.email && !p.recipients.is_empty()).then(|| p.recipients.clone()),
            source: SampleSource::Notification(p.clone()),
        }
    }

    /// From the log (an event, a notification) rather than a file.
    pub fn is_real(&self) -> bool {
        !matches!(self.source, SampleSource::File(_))
    }

    /// `3m ago` for a real sample.
    pub fn age(&self, now_ms: UnixMs) -> Option<String> {
        self.at_ms
            .map(|at| format!("{} ago", format::duration((now_ms - at).div_euclid(1000))))
    }

    /// The label with a real sample's age: `event #42 key_request_event.submitted (3m ago)`.
    pub fn title(&self, now_ms: UnixMs) -> String {
        match self.age(now_ms) {
            Some(age) => format!("{} ({age})", self.label),
            None => self.label.clone(),
        }
    }

    /// What a render error says the template was rendered with.
    pub(super) fn describe(&self) -> &str {
        match self.source {
            SampleSource::File(_) => &self.detail,
            _ => &self.label,
        }
    }

    /// The template context: the sample file, or what the dispatcher would render the e-mail
    /// with (`now_ms` stands in for the delivery time).
    pub(super) fn context(
        &self,
        t: &Templates,
        name: &str,
        env: &RenderEnv,
    ) -> Result<Value, String> {
        match &self.source {
            SampleSource::File(_) => {
                t.sample(&self.id)
                    .map(|v| Value::from(Serde(&v)))
                    .map_err(|e| {
                        e.context(format!("loading the sample for {name}"))
                            .to_string()
                    })
            }
            SampleSource::Event(row) => {
                event_context(row, env.to, env.dashboard_hostname).map(|v| Value::from(Serde(&v)))
            }
            SampleSource::Notification(p) => {
                let mut notice = QuotaNotice::from_payload(p, env.now_ms.div_euclid(1000))
                    .with_dashboard_hostname(env.dashboard_hostname);
                notice.notification_id = p.id.clone();
                Ok(Value::from(Serde(&notice)))
            }
        }
    }
}

/// The context `notify::email::render_event` renders a received event's e-mail with: the
/// row as routing plans it for `email:event-to`, as an `EventNotice`.
pub(super) fn event_context(
    row: &EventRow,
    to: &[String],
    dashboard_hostname: &str,
) -> Result<serde_json::Value, String> {
    let ev = route::event_from_row(row).ok_or_else(|| {
        format!(
            "event #{} ({}) cannot be rendered: its recorded payload is not a routable event",
            row.id, row.event
        )
    })?;
    // What routing queues for `email:event-to`, without a round trip through the row's JSON.
    let payload =
        route::event_payload(&ev, &ChannelId::Email(Audience::EventTo), to.to_vec(), None);
    let mut notice =
        EventNotice::from_payload(&payload).with_dashboard_hostname(dashboard_hostname);
    notice.notification_id = payload.id.clone();
    notice.recipients = to.to_vec();
    Ok(notice.to_context())
}

/// One outbox row of a quota crossing, as a sample.
#[derive(Debug, Clone)]
pub(super) struct QuotaRow {
    pub(super) payload: Arc<NotificationPayload>,
    pub(super) at_ms: UnixMs,
    /// An `email:*` row (its recipients are the e-mail's).
    pub(super) email: bool,
    /// The template the dispatcher renders this row's e-mail with.
    pub(super) template: &'static str,
}

/// A quota crossing: the rows of its channels that samples are taken from.
#[derive(Debug, Clone)]
pub(super) struct Crossing {
    pub(super) at_ms: UnixMs,
    pub(super) exhausted: bool,
    /// The operators' row: `email:ops`, else `email:org`, else another channel's.
    pub(super) ops: Option<(u8, QuotaRow)>,
    /// The key developer's row.
    pub(super) developer: Option<QuotaRow>,
}

impl Crossing {
    /// The row previewed with `name`: the developer's for the developer template, the
    /// operators' otherwise (each falling back on the other).
    pub(super) fn row(&self, name: &str) -> Option<&QuotaRow> {
        let ops = self.ops.as_ref().map(|(_, r)| r);
        if name == QUOTA_THRESHOLD_DEVELOPER {
            self.developer.as_ref().or(ops)
        } else {
            ops.or(self.developer.as_ref())
        }
    }
}

/// Preference of a row for the operators' templates (lower is better).
pub(super) fn ops_rank(item: &NotificationItem) -> u8 {
    match item.row.channel_id {
        ChannelId::Email(Audience::Ops) => 0,
        ChannelId::Email(Audience::Org) => 1,
        _ if item.row.kind() == OutboxKind::Email => 2,
        _ => 3,
    }
}
