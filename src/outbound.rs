//! The one policy for every outbound HTTP request (Gateway and Dashboard APIs, webhooks, e-mail
//! provider APIs, test sends), so none of them can drift:
//! - redirects are never followed: a redirect would carry a secret header (`x-tyk-authorization`,
//!   `admin-auth`, a provider key, a webhook's header secrets) to wherever it points, and a 3xx
//!   from a receiver is an answer to fix, not to chase;
//! - a whole-request timeout, and a connect timeout of at most [`CONNECT_TIMEOUT`];
//! - TLS through rustls with certificate verification on (reqwest's default; there is no switch
//!   to turn it off);
//! - one `User-Agent`.
//!
//! Callers add what is theirs (default headers, pool size) and build.

use std::time::Duration;

/// `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("tykwatch/", env!("CARGO_PKG_VERSION"));

/// Longest wait for a TCP + TLS connection, whatever the request timeout.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A client builder with the policy applied; `timeout` bounds each whole request.
pub fn client(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(CONNECT_TIMEOUT))
        .user_agent(USER_AGENT)
}
