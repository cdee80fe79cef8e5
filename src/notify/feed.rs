//! What the notifier tells the console about notifications, and what the console asks of it.
//! The console never reads the database: it shows the snapshots it is sent.

use crate::clock::UnixMs;
use crate::outbox::{ChannelId, DisabledChannel, NotificationPayload, OutboxCounts, OutboxRow};
use crate::quota::QuotaId;
use crate::store::Peers;

/// Rows kept in a snapshot (newest first).
pub const SNAPSHOT_ROWS: usize = 500;

/// One outbox row with the payload fields the list shows. `row.payload_json` is cleared: the
/// `tyk` channel's payload carries the raw API key, which never reaches the console.
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationItem {
    pub row: OutboxRow,
    /// `key`, `api` or `org`.
    pub scope: String,
    pub org_id: String,
    pub alias: String,
    pub key_masked: String,
    pub api_id: String,
    pub usage_percentage: f64,
    /// `quota.threshold_crossed`, or `tykwatch.test` for a test notification.
    pub event: String,
    /// A quota notification's payload with the raw key removed (`key: None`): what the
    /// Templates view renders a real sample from. `None` for received events' rows and
    /// payloads that could not be read.
    pub payload: Option<NotificationPayload>,
}

/// The outbox as the Notifications view shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxSnapshot {
    /// Newest first, at most [`SNAPSHOT_ROWS`].
    pub items: Vec<NotificationItem>,
    pub counts: OutboxCounts,
    pub disabled: Vec<DisabledChannel>,
    /// Configured channel ids (`tyk`, `webhook:<name>`, `email:ops`, …): the targets of a test.
    pub channels: Vec<ChannelId>,
    /// On a shared store, the instances running on it (this one among them).
    pub peers: Option<Peers>,
    pub at_ms: UnixMs,
}

/// The highest threshold fired for a quota in its current period.
#[derive(Debug, Clone, PartialEq)]
pub struct FiredMark {
    pub quota: QuotaId,
    pub threshold: f64,
    /// When it fired, when known (marks warmed from the ledger after a restart carry it too).
    pub at_ms: Option<UnixMs>,
}

/// The exact request or e-mail of one notification, as it is (or would be) sent, with the raw
/// key masked. Lines are plain text; the view sanitises them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspection {
    pub idem_key: String,
    /// `POST https://…` / `SMTP to a@b, c@d` …
    pub summary: String,
    /// Headers then a blank line then the body; or the reason it cannot be built.
    pub text: Result<String, String>,
}

/// What the console asks of the notifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyRequest {
    /// Back to `pending`, due now (a failed or dead row).
    Resend(String),
    /// Send a test notification to this channel.
    Test(ChannelId),
    /// Build the request of this row for the detail pane (answered with an `Inspection`).
    Inspect(String),
    /// The next [`SNAPSHOT_ROWS`] rows after this one (sequence, idempotency key) in the list's
    /// order: older rows than the snapshot holds (answered with `EngineEvent::OutboxPage`).
    Page { sequence: i64, idem_key: String },
}

/// How one send ended, once its outcome is in the store (what `tykwatch run` writes as a
/// `delivery` line). Names no raw key: the idempotency key and the ledger's quota id are
/// digests.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryReport {
    pub idem_key: String,
    pub channel: ChannelId,
    /// `delivered`, `retry`, `failed`, `dead` or `disabled` (a 410 switched the channel off).
    pub outcome: &'static str,
    /// Attempts so far, this one included.
    pub attempt: u32,
    /// HTTP status or SMTP reply code, when the receiver answered.
    pub status: Option<u16>,
    /// When a `retry` goes out again.
    pub next_attempt_at: Option<UnixMs>,
    /// Why it was not delivered (the receiver's status and text, or what could not be built).
    pub reason: Option<String>,
    /// The crossing's quota (ledger id), or the received event's id.
    pub quota_id: Option<String>,
    pub event_id: Option<i64>,
    /// False when the claim was lost before the outcome was written (another instance's newer
    /// claim took the row; its outcome stands).
    pub recorded: bool,
    pub at_ms: UnixMs,
}
