//! tykwatch: live quota console and threshold notifications for the Tyk API Gateway.
//!
//! Data flows one way: `tyk` (wire formats, clients, demo) → `quota` (samples, board, poller)
//! → `engine` (events) → `ui` (console) or the headless JSON log.

pub mod clock;
pub mod config;
pub mod engine;
pub mod quota;
pub mod tyk;
pub mod ui;
