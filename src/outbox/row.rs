//! An outbox row: one notification to one channel, and where it came from.

use std::fmt;

use super::channel::{ChannelId, OutboxKind};
use crate::clock::UnixMs;

/// Delivery state of an outbox row: `pending → inflight → delivered`, or back to `pending`
/// with a later `next_attempt_at`, or `failed` (permanent error, channel disabled) / `dead`
/// (retry schedule exhausted); `failed` and `dead` return to `pending` only by a resend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxState {
    Pending,
    Inflight,
    Delivered,
    Failed,
    Dead,
}

impl OutboxState {
    pub const ALL: [OutboxState; 5] = [
        OutboxState::Pending,
        OutboxState::Inflight,
        OutboxState::Delivered,
        OutboxState::Failed,
        OutboxState::Dead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Inflight => "inflight",
            OutboxState::Delivered => "delivered",
            OutboxState::Failed => "failed",
            OutboxState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for OutboxState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a row notifies: a threshold crossing (its ledger row) or a received event.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The ledger key of the crossing: [`crate::outbox::quota_key`], the period
    /// (`quota_renews`, Unix seconds) and the threshold.
    Crossing {
        quota_key: String,
        period: i64,
        threshold: f64,
    },
    /// The id of the event in the store's `events` table (the event may since have been
    /// purged by retention; the row stays).
    Event { event_id: i64 },
}

impl Source {
    /// `crossing` or `event`: the stored `source` column.
    pub fn as_str(&self) -> &'static str {
        match self {
            Source::Crossing { .. } => "crossing",
            Source::Event { .. } => "event",
        }
    }

    pub fn is_event(&self) -> bool {
        matches!(self, Source::Event { .. })
    }

    /// The quota's ledger key, for crossings.
    pub fn quota_key(&self) -> Option<&str> {
        match self {
            Source::Crossing { quota_key, .. } => Some(quota_key),
            Source::Event { .. } => None,
        }
    }
}

/// One notification to one channel. `payload_json` is a [`super::Payload`] of the row's source,
/// rendered by the channel at delivery time (a template fix applies to queued rows).
#[derive(Clone, PartialEq)]
pub struct OutboxRow {
    /// The `webhook-id` header / e-mail Message-ID ([`crate::outbox::idem_key`],
    /// [`crate::outbox::event_idem_key`]).
    pub idem_key: String,
    pub channel_id: ChannelId,
    pub payload_json: String,
    pub state: OutboxState,
    /// Sends tried so far (including a successful one).
    pub attempts: u32,
    pub next_attempt_at: UnixMs,
    /// HTTP status or SMTP reply code of the last attempt.
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub created_at: UnixMs,
    pub delivered_at: Option<UnixMs>,
    pub source: Source,
    pub sequence: i64,
}

impl OutboxRow {
    /// How the row's channel sends.
    pub fn kind(&self) -> OutboxKind {
        self.channel_id.kind()
    }

    /// The crossed threshold (percent); `None` for a received event's row.
    pub fn threshold(&self) -> Option<f64> {
        match self.source {
            Source::Crossing { threshold, .. } => Some(threshold),
            Source::Event { .. } => None,
        }
    }
}

/// Leaves the payload out: the `tyk` channel's payload carries the raw API key.
impl fmt::Debug for OutboxRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboxRow")
            .field("idem_key", &self.idem_key)
            .field("channel_id", &format_args!("{}", self.channel_id))
            .field(
                "payload_json",
                &format_args!("<{} bytes>", self.payload_json.len()),
            )
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("last_status", &self.last_status)
            .field("last_error", &self.last_error)
            .field("created_at", &self.created_at)
            .field("delivered_at", &self.delivered_at)
            .field("source", &self.source)
            .field("sequence", &self.sequence)
            .finish()
    }
}

/// Which rows a listing returns; `None` = any.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxFilter {
    pub state: Option<OutboxState>,
    pub channel_id: Option<ChannelId>,
    pub quota_key: Option<String>,
    /// The payload's `org_id` (crossings and events alike).
    pub org_id: Option<String>,
    /// Rows created at or after this instant.
    pub created_after: Option<UnixMs>,
    /// Rows created before this instant.
    pub created_before: Option<UnixMs>,
    /// Rows after this one (its sequence and idempotency key) in the listing's order, newest
    /// first: the next page.
    pub after: Option<(i64, String)>,
}

/// Outbox rows per state (the header's "needs attention" counts).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub inflight: u64,
    pub delivered: u64,
    pub failed: u64,
    pub dead: u64,
}

/// A channel switched off by a `410 Gone`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisabledChannel {
    pub channel_id: ChannelId,
    pub disabled_at: UnixMs,
    pub reason: String,
}
