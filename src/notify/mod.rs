pub mod dispatcher;
pub mod plan;
pub mod retry;
pub mod webhook;
