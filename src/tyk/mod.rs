//! The only place that knows Tyk's wire formats.

pub mod dashboard;
pub mod demo;
pub mod gateway;
pub mod http;
pub mod session;
