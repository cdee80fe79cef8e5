//! The HTTP/1 accept loop of tykwatch's listeners (`[intake]`, `[metrics]`), with the limits
//! `axum::serve` does not have: a peer that never sends its headers, sends them a line a
//! second, or keeps an idle keep-alive connection open would otherwise hold a file descriptor
//! for ever, and 20 000 of them stop `/healthz` and `/events` answering anyone.
//!
//! - **Header timeout**: hyper's `header_read_timeout` runs from the moment a connection waits
//!   for a request head — its first one, or the next one on a kept-alive connection — so the
//!   same deadline bounds slow headers and idle keep-alive.
//! - **Connection cap**: at most `max_connections` at once; one more is accepted and closed at
//!   once (so the kernel's backlog does not fill), counted, and logged at most once a minute.
//! - **Graceful stop**: no new connections; those open finish their request.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub use crate::config::{DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS};

/// The limits of one listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub header_timeout: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

/// What a listener counts about its connections (for `/metrics`).
#[derive(Debug, Default)]
pub struct ConnectionStats {
    /// Connections closed at once because `max_connections` were open.
    pub refused: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
}

/// Serves `app` on `listener` until `stop` resolves, then lets open connections finish their
/// request. `name` is the listener in log lines (`[intake]`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    stats: Arc<ConnectionStats>,
    name: &'static str,
    stop: impl Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut last_warned: Option<Instant> = None;
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // Out of file descriptors and the like: wait instead of spinning.
                Err(e) => {
                    tracing::warn!(listener = name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            drop(tcp);
            stats.refused.fetch_add(1, Ordering::Relaxed);
            if last_warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                last_warned = Some(Instant::now());
                tracing::warn!(
                    listener = name,
                    max_connections = limits.max_connections,
                    peer = %peer.ip(),
                    "connection refused: too many open connections"
                );
            }
            continue;
        };
        // Small request/response pairs: Nagle would only add latency.
        let _ = tcp.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(tcp), service);
        let conn = graceful.watch(conn);
        let stats = stats.clone();
        stats.open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            // A peer that times out or hangs up is its own problem, not a log line.
            let _ = conn.await;
            stats.open.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
