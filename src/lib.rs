//! tykwatch: live quota console and threshold notifications for the Tyk API Gateway.
//!
//! Data flows one way: `tyk` (wire formats, clients, demo) → `quota` (samples, board, poller)
//! → `engine` (events) → `ui` (console) or the headless JSON log.

pub mod atomic_file;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod engine;
pub mod errors;
pub mod headless;
pub mod intake;
pub mod listener;
pub mod logging;
pub mod metrics;
pub mod monitor;
pub mod notifier;
pub mod notify;
pub mod orgs;
pub mod outbound;
pub mod outbox;
pub mod quota;
pub mod rng;
pub mod runtime;
pub mod stats;
pub mod store;
pub mod templates;
pub mod timefmt;
pub mod triggers;
pub mod tyk;
pub mod ui;

#[cfg(test)]
mod module_graph_tests;
