//! The domain: what a quota is, the samples read from a source, the board that holds the
//! current picture, and the poller that sweeps a gateway.

pub mod board;
pub mod history;
pub mod model;
pub mod poller;
pub mod redis;
mod sessions;
pub mod source;

pub use board::{Board, Entry};
pub use model::{
    ApiMeta, Band, Interner, QuotaId, QuotaMeta, Sample, Scope, SessionMeta, mask_hash, mask_key,
};
pub use source::{Source, SourceError};
