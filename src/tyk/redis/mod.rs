//! Tyk's Redis: the sessions (`apikey-*`, `orgkey.*`) and the live quota counters (`quota-*`)
//! the gateways themselves increment, read without ever writing.
//!
//! `layout` names the keys, `connect` connects (single server, Sentinel, Redis Cluster), `conn`
//! runs the read commands. `crate::quota::redis` keeps the session cache and turns counters into
//! samples.

pub mod conn;
mod connect;
pub mod layout;

pub use conn::{RedisSettings, StorageError, Topology};
