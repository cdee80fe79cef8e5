//! Configuration: TOML with `${VAR}` interpolation, validation that names the key and the line,
//! and the config/data paths (`directories`).
//!
//! Section and key names mirror Tyk's own files (`tyk.conf`, `tyk_analytics.conf`) wherever Tyk
//! has a name; `config.example.toml` documents every key. Every section is optional and every
//! struct denies unknown keys, so a typo is an error instead of a silently ignored setting.
//!
//! Errors are located: `path:LINE:COL: dotted.key: message`, one line per problem. Field types
//! validate themselves inside `Deserialize` so that toml attaches the span of the offending value;
//! cross-field rules run afterwards and look the span up in the parsed document.
//!
//! One file per concern: `sections` (the structs), `secret`, `error`, `load` (and `Paths`),
//! `span` (span ↔ dotted key), `env` (`${VAR}`), `parse` (field parsers), `validate`
//! (cross-field rules), `storage` (`[gateway.storage]`).

// What the files of this module share; each starts with `use super::*`.
#[allow(unused_imports)]
use std::collections::{BTreeMap, HashMap};
#[allow(unused_imports)]
use std::fmt;
#[allow(unused_imports)]
use std::net::SocketAddr;
#[allow(unused_imports)]
use std::ops::{Deref, Range};
#[allow(unused_imports)]
use std::path::{Path, PathBuf};
#[allow(unused_imports)]
use std::time::Duration;

#[allow(unused_imports)]
use serde::Deserialize;
#[allow(unused_imports)]
use serde::de::{self, Deserializer, Unexpected, Visitor};
#[allow(unused_imports)]
use toml::de::{DeTable, DeValue};

mod email;
mod env;
mod error;
mod load;
mod parse;
mod secret;
mod sections;
mod span;
mod storage;
mod store;
#[cfg(test)]
mod tests;
mod validate;

pub use email::parse_smtp_address;
#[allow(unused_imports)]
use env::*;
pub use error::*;
pub use load::*;
pub use parse::*;
pub use secret::*;
pub use sections::*;
#[allow(unused_imports)]
use span::*;
#[allow(unused_imports)]
use validate::*;

pub use storage::{StorageConfig, check_addr};
pub use store::StoreConfig;
