//! Rows both engines read and write that are not the outbox's (those are in `crate::outbox`).

use crate::clock::UnixMs;

/// An event received by the intake listener, as recorded. Nothing here may hold a raw API key:
/// `masked_key` is [`crate::quota::mask_key`] output and `payload_json` is already masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub received_at: UnixMs,
    /// `quota_trigger`, `dashboard`, `portal` (`crate::intake::EventKind::as_str`).
    pub kind: String,
    /// The sender's event name (`TriggerExceeded`, `key_request_event.submitted`, …).
    pub event: String,
    pub org_id: String,
    pub summary: String,
    pub masked_key: String,
    pub payload_json: String,
}

/// A row of the `events` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    pub id: i64,
    pub received_at: UnixMs,
    pub kind: String,
    pub event: String,
    pub org_id: String,
    pub summary: String,
    pub masked_key: String,
    pub payload_json: String,
}
