//! The only place that knows Tyk's wire formats: the REST APIs, the session JSON, key hashing and
//! the Redis layout.

pub mod dashboard;
pub mod demo;
pub mod gateway;
pub mod http;
pub mod keyhash;
pub mod redis;
pub mod session;
