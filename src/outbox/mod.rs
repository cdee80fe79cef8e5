//! The typed boundary of the notification path: what the monitor produces ([`Crossing`]), what
//! the ledger keeps ([`LedgerEntry`]), what the outbox holds ([`OutboxRow`] for a
//! [`ChannelId`], from a [`Source`], carrying a [`Payload`]) and the stable identities that tie
//! them together ([`quota_key`], [`idem_key`], [`event_idem_key`]). `store` persists these
//! types, `monitor` and `notify::plan`/`notify::route` produce them, the dispatcher, the
//! templates and the console read them. Nothing here does I/O.

pub mod channel;
pub mod crossing;
pub mod keys;
pub mod payload;
pub mod row;

pub use channel::{Audience, ChannelId, OutboxKind, UnknownChannel};
pub use crossing::{Crossing, LedgerEntry, LedgerState};
pub use keys::{
    ID_HEADER, decode_id, encode_id, event_idem_key, idem_key, quota_key, safe_component,
    threshold_str,
};
pub use payload::{
    EVENT_QUOTA_THRESHOLD, EventPayload, NotificationPayload, OrgLookup, Payload, TestPayload,
};
pub use row::{DisabledChannel, OutboxCounts, OutboxFilter, OutboxRow, OutboxState, Source};
