//! Tyk's Redis: the sessions (`apikey-*`, `orgkey.*`) and the live quota counters (`quota-*`)
//! the gateways themselves increment, read without ever writing.
//!
//! `layout` names the keys, `conn` connects (single server, Sentinel, Redis Cluster) and runs
//! the read commands. `crate::quota::redis` keeps the session cache and turns counters into
//! samples.

pub mod conn;
pub mod layout;

pub use conn::{RedisSettings, StorageError, Topology};
