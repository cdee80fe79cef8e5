//! The only place that knows Tyk's wire formats: the REST APIs, the session JSON, key hashing,
//! key masking and the Redis layout (its keys and commands; turning them into quota samples is
//! `crate::quota::redis`).

pub mod dashboard;
pub mod demo;
pub mod gateway;
pub mod http;
pub mod keyhash;
pub mod mask;
pub mod redis;
pub mod session;
