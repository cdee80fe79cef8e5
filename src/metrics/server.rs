//! The `[metrics] listen` endpoint: `/metrics` (Prometheus text format), `/healthz` (the
//! process answers) and `/readyz` (200, or 503 with the reasons).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::task::JoinHandle;

use super::{Metrics, Readiness, text};

/// The running listener.
#[derive(Debug)]
pub struct MetricsServer {
    /// The bound address (the real port when `listen` used port 0).
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
}

/// Binds `listen` and serves until the process ends.
pub async fn serve(listen: SocketAddr, metrics: Arc<Metrics>) -> Result<MetricsServer, String> {
    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "[metrics] listen {listen}: the address is in use (another tykwatch, or another \
                 exporter?) — pick a free port"
            )
        } else {
            format!("[metrics] listen {listen}: {e}")
        }
    })?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("[metrics] listen {listen}: {e}"))?;
    let app = Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(metrics);
    // The same limits as the intake: a scraper is one connection, a flood of idle ones must
    // not stop /healthz answering.
    let task = tokio::spawn(async move {
        let stats = Arc::new(crate::listener::ConnectionStats::default());
        let limits = crate::listener::Limits::default();
        crate::listener::serve(
            listener,
            app,
            limits,
            stats,
            "[metrics]",
            std::future::pending(),
        )
        .await;
    });
    Ok(MetricsServer { addr, task })
}

async fn scrape(axum::extract::State(m): axum::extract::State<Arc<Metrics>>) -> Response {
    match tokio::task::spawn_blocking(move || m.render_chunks()).await {
        Ok(scrape) => {
            // The chunks as written (a large scrape's parts come from several threads).
            let chunks = scrape
                .into_chunks()
                .into_iter()
                .map(|c| Ok::<_, Infallible>(Bytes::from(c)));
            let body = Body::from_stream(futures_util::stream::iter(chunks));
            ([(header::CONTENT_TYPE, text::CONTENT_TYPE)], body).into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rendering the metrics failed: {e}\n"),
        )
            .into_response(),
    }
}

async fn ready(axum::extract::State(m): axum::extract::State<Arc<Metrics>>) -> Response {
    match tokio::task::spawn_blocking(move || m.readiness()).await {
        Ok(Readiness::Ready) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Readiness::NotReady(why)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready:\n- {}\n", why.join("\n- ")),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the check failed: {e}\n"),
        )
            .into_response(),
    }
}
