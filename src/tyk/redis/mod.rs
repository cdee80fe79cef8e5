//! Tyk's Redis as a quota source: the sessions (`apikey-*`, `orgkey.*`) and the live quota
//! counters (`quota-*`) the gateways themselves increment, read without ever writing.
//!
//! `layout` names the keys, `conn` connects (single server, Sentinel, Redis Cluster) and runs
//! the read commands, `source` keeps the session cache (a `sessions::SessionMap`) and turns counters into samples.

pub mod conn;
pub mod layout;
mod sessions;
pub mod source;

pub use conn::{RedisSettings, StorageError, Topology};
pub use source::RedisSource;
