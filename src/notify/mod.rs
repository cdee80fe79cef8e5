pub mod dispatcher;
pub mod email;
pub mod feed;
pub mod org_test;
pub mod plan;
pub mod retry;
pub mod route;
pub mod webhook;

pub(crate) use crate::errors::chain as error_chain;
