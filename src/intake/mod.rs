//! `[intake]`: an HTTP listener for the webhooks Tyk sends to tykwatch (`POST /events`).
//!
//! - [`payload`] classifies a body (Tyk monitor `TriggerExceeded`, Dashboard
//!   `event_options` webhooks, Developer Portal webhooks) into an [`IntakeEvent`].
//! - [`server`] is the axum router: shared-secret check, body limit, error bodies.
//! - `writer` records accepted events in SQLite with group commit; a 2xx is only sent after
//!   the event's transaction committed.
//!
//! The engine receives recorded events on [`IntakeHandle::events`]; for a `TriggerExceeded`
//! the raw key ([`IntakeEvent::raw_key`]) lets it re-poll that key at once. The raw key exists
//! only in memory: the table, the summary and [`IntakeEvent::payload`] hold it masked.

pub mod payload;
pub mod server;
mod writer;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use payload::{
    EventDetail, EventKind, IntakeEvent, RawKey, Rejection, TriggerSource, classify,
};
pub use server::{IntakeStats, SECRET_HEADER};
pub use writer::IntakeStore;

use crate::clock::{Clock, SystemClock};
use crate::config::IntakeConfig;

/// Tuning; [`start`] uses the defaults.
#[derive(Clone)]
pub struct IntakeOptions {
    pub clock: Arc<dyn Clock>,
    /// Recorded events buffered for the engine; beyond it they are counted in
    /// [`IntakeStats::dropped`] (and still in the table).
    pub events_capacity: usize,
    /// Events waiting for the writer; beyond it requests wait (backpressure).
    pub queue_capacity: usize,
    /// A body that takes longer to arrive gets a 408 (slow senders cannot hold a slot forever).
    pub body_timeout: Duration,
    /// [`IntakeShutdown::shutdown`] waits this long for requests in flight.
    pub shutdown_grace: Duration,
}

impl Default for IntakeOptions {
    fn default() -> Self {
        IntakeOptions {
            clock: Arc::new(SystemClock),
            events_capacity: 1024,
            queue_capacity: 4096,
            body_timeout: Duration::from_secs(30),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for IntakeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntakeOptions")
            .field("events_capacity", &self.events_capacity)
            .field("queue_capacity", &self.queue_capacity)
            .field("body_timeout", &self.body_timeout)
            .field("shutdown_grace", &self.shutdown_grace)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error(
        "[intake] listen is not set; set it (e.g. listen = \"127.0.0.1:8089\") to receive Tyk webhooks"
    )]
    NotConfigured,
    #[error(
        "cannot listen on {addr}: address in use (another tykwatch or another service listens there); stop it, or set [intake] listen to a free address"
    )]
    AddrInUse { addr: SocketAddr },
    #[error(
        "cannot listen on {addr}: permission denied (ports below 1024 need privileges); set [intake] listen to a port of 1024 or above"
    )]
    PermissionDenied { addr: SocketAddr },
    #[error(
        "cannot listen on {addr}: no such address on this machine; set [intake] listen to a local address (e.g. 127.0.0.1:{port} or 0.0.0.0:{port})",
        port = .addr.port()
    )]
    AddrNotAvailable { addr: SocketAddr },
    #[error("cannot listen on {addr}: {source}; check [intake] listen")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("cannot start the intake's database thread: {0}")]
    Writer(#[source] io::Error),
    #[error("the intake did not stop within {0:?} (requests still in flight); it was aborted")]
    ShutdownTimeout(Duration),
}

/// A running listener. Destructure freely: the listener stops when [`IntakeHandle::shutdown`]
/// is dropped or [`IntakeShutdown::shutdown`] is awaited.
#[derive(Debug)]
pub struct IntakeHandle {
    /// The bound address (the real port when `listen` used port 0).
    pub addr: SocketAddr,
    /// Recorded events, in commit order.
    pub events: mpsc::Receiver<IntakeEvent>,
    pub stats: Arc<IntakeStats>,
    pub shutdown: IntakeShutdown,
}

/// Stops the listener: no new connections, requests in flight finish, queued events are
/// committed. Dropping it starts the same shutdown without waiting for it.
#[derive(Debug)]
pub struct IntakeShutdown {
    signal: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<io::Result<()>>>,
    writer_done: Option<oneshot::Receiver<()>>,
    grace: Duration,
}

impl IntakeShutdown {
    pub async fn shutdown(mut self) -> Result<(), IntakeError> {
        if let Some(signal) = self.signal.take() {
            let _ = signal.send(());
        }
        let deadline = tokio::time::Instant::now() + self.grace;
        if let Some(mut server) = self.server.take()
            && tokio::time::timeout_at(deadline, &mut server)
                .await
                .is_err()
        {
            server.abort();
            return Err(IntakeError::ShutdownTimeout(self.grace));
        }
        // The writer ends once the last connection (holding a sender) is gone.
        if let Some(done) = self.writer_done.take()
            && tokio::time::timeout_at(deadline, done).await.is_err()
        {
            return Err(IntakeError::ShutdownTimeout(self.grace));
        }
        Ok(())
    }
}

impl Drop for IntakeShutdown {
    fn drop(&mut self) {
        if let Some(signal) = self.signal.take() {
            let _ = signal.send(());
        }
    }
}

/// Binds `[intake] listen` and serves until shut down. `store`: a [`crate::store::Store`]
/// of its own (recommended) or the shared `Arc<Mutex<Store>>`.
pub async fn start(
    cfg: &IntakeConfig,
    store: impl Into<IntakeStore>,
) -> Result<IntakeHandle, IntakeError> {
    start_with(cfg, store, IntakeOptions::default()).await
}

pub async fn start_with(
    cfg: &IntakeConfig,
    store: impl Into<IntakeStore>,
    opts: IntakeOptions,
) -> Result<IntakeHandle, IntakeError> {
    let addr = cfg.listen.ok_or(IntakeError::NotConfigured)?;
    let listener = TcpListener::bind(addr).await.map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => IntakeError::AddrInUse { addr },
        io::ErrorKind::PermissionDenied => IntakeError::PermissionDenied { addr },
        io::ErrorKind::AddrNotAvailable => IntakeError::AddrNotAvailable { addr },
        _ => IntakeError::Bind { addr, source: e },
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| IntakeError::Bind { addr, source: e })?;

    let (writer_tx, writer_rx) = mpsc::channel(opts.queue_capacity.max(1));
    let (writer_done_tx, writer_done) = oneshot::channel();
    writer::spawn(store.into(), writer_rx, writer_done_tx).map_err(IntakeError::Writer)?;

    let (events_tx, events) = mpsc::channel(opts.events_capacity.max(1));
    let stats = Arc::new(IntakeStats::default());
    let state = Arc::new(server::AppState {
        secret: server::secret_digest(cfg.secret.expose()),
        max_body: cfg.max_body,
        body_timeout: opts.body_timeout,
        writer: writer_tx,
        events: events_tx,
        clock: opts.clock.clone(),
        stats: stats.clone(),
    });
    let app = server::router(state);
    let (signal, stop) = oneshot::channel::<()>();
    let limits = crate::listener::Limits {
        header_timeout: cfg.header_timeout,
        max_connections: cfg.max_connections,
    };
    let connections = stats.connections.clone();
    let server = tokio::spawn(async move {
        crate::listener::serve(listener, app, limits, connections, "[intake]", async move {
            let _ = stop.await;
        })
        .await;
        Ok(())
    });
    Ok(IntakeHandle {
        addr: bound,
        events,
        stats,
        shutdown: IntakeShutdown {
            signal: Some(signal),
            server: Some(server),
            writer_done: Some(writer_done),
            grace: opts.shutdown_grace,
        },
    })
}
