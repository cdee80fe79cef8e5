//! What an outbox row carries: everything its channel needs to render it at delivery time.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::channel::ChannelId;
use super::row::{OutboxRow, Source};

/// `event` of every crossing payload.
pub const EVENT_QUOTA_THRESHOLD: &str = "quota.threshold_crossed";

/// Everything a channel needs to render a notification later.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationPayload {
    /// [`EVENT_QUOTA_THRESHOLD`].
    pub event: String,
    /// The idempotency key (`webhook-id`, Message-ID).
    pub id: String,
    pub channel_id: ChannelId,
    /// `key`, `api` or `org`.
    pub scope: String,
    pub quota_key: String,
    pub org_id: String,
    pub alias: String,
    pub key_masked: String,
    /// The raw API key, only for the `tyk` channel: Tyk's monitor body carries it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub api_id: String,
    pub api_name: String,
    pub threshold: f64,
    pub usage_percentage: f64,
    pub quota_max: i64,
    pub quota_remaining: i64,
    /// Unix seconds.
    pub quota_renews: i64,
    pub period: i64,
    pub sequence: i64,
    /// Lower thresholds passed at the same time (no notification of their own).
    pub covered: Vec<f64>,
    pub detected_at_ms: i64,
    pub tags: Vec<String>,
    /// E-mail channels only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
}

impl NotificationPayload {
    pub fn from_json(json: &str) -> serde_json::Result<Self> {
        serde_json::from_str(json)
    }
}

/// Masks the raw key.
impl fmt::Debug for NotificationPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NotificationPayload")
            .field("event", &self.event)
            .field("id", &self.id)
            .field("channel_id", &self.channel_id)
            .field("quota_key", &self.quota_key)
            .field("key_masked", &self.key_masked)
            .field("key", &self.key.as_ref().map(|_| "<redacted>"))
            .field("threshold", &self.threshold)
            .field("usage_percentage", &self.usage_percentage)
            .field("sequence", &self.sequence)
            .field("recipients", &self.recipients)
            .finish_non_exhaustive()
    }
}

/// What an `email:event-org` row needs to read the org's address again (on a resend after
/// the first read failed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgLookup {
    pub org_id: String,
    /// The `event_options` entry, e.g. `key_request_event`.
    pub option: String,
}

/// The payload of an event's outbox row: everything a channel needs to render it later.
/// Nothing here holds a raw key (`payload` is the intake's masked JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventPayload {
    /// The sender's event name (`key_request_event.submitted`, `UserRegistered`, …).
    pub event: String,
    /// The idempotency key (`webhook-id`, Message-ID).
    pub id: String,
    pub channel_id: ChannelId,
    /// Row id in the `events` table.
    pub event_id: i64,
    /// `dashboard` or `portal`.
    pub source: String,
    pub org_id: String,
    pub summary: String,
    pub masked_key: String,
    pub received_at_ms: i64,
    /// The body as received, every key and secret masked.
    pub payload: Value,
    /// E-mail template (`crate::notify::route::template_for`); e-mail channels only.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub template: String,
    /// E-mail channels only; empty on an `email:event-org` row whose org could not be read.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// `email:event-org` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org_lookup: Option<OrgLookup>,
}

impl EventPayload {
    pub fn from_json(json: &str) -> serde_json::Result<Self> {
        serde_json::from_str(json)
    }
}

/// A test notification (`tykwatch.test`): sent at once, outside the outbox, never stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TestPayload {
    /// E-mail channels only.
    pub recipients: Vec<String>,
}

/// What a channel renders: a stored row's payload (by its source), or a test.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Crossing(NotificationPayload),
    Event(EventPayload),
    Test(TestPayload),
}

impl Payload {
    /// Reads `row.payload_json` as its source says; the error says which payload was unreadable.
    pub fn of(row: &OutboxRow) -> Result<Payload, String> {
        match row.source {
            Source::Crossing { .. } => NotificationPayload::from_json(&row.payload_json)
                .map(Payload::Crossing)
                .map_err(|e| format!("unreadable payload: {e}")),
            Source::Event { .. } => EventPayload::from_json(&row.payload_json)
                .map(Payload::Event)
                .map_err(|e| format!("unreadable event payload: {e}")),
        }
    }
}
