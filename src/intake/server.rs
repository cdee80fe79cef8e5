//! The axum side: `POST /events` (secret → size → parse → record → 202), `HEAD /events` (the
//! Developer Portal's "Test connection"), `GET /healthz`. Every error is `{"error": "…"}`.
//! Nothing is logged: reasons go back to the sender, and none of them quotes a key or secret.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt;
use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::payload::{IntakeEvent, Rejection, classify};
use super::writer::WriteReq;
use crate::clock::Clock;
use crate::store::NewEvent;

/// The header a sender (Tyk's `header_map`) puts the shared secret in.
pub const SECRET_HEADER: &str = "x-tykwatch-secret";

/// An oversize body is read (and discarded) up to this many bytes before the 413, so that an
/// ordinary client sees the answer instead of a connection reset; beyond it the connection
/// is simply closed.
const DRAIN_LIMIT: u64 = 8 * 1024 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(2);

/// Counters for the console / diagnostics.
#[derive(Debug, Default)]
pub struct IntakeStats {
    /// Events recorded (2xx).
    pub accepted: AtomicU64,
    /// Requests refused (4xx/5xx on `/events`).
    pub rejected: AtomicU64,
    /// Recorded events not forwarded because the events channel was full or closed; they are
    /// in the `events` table all the same.
    pub dropped: AtomicU64,
    /// `rejected` by reason, in [`REFUSAL_REASONS`] order.
    pub refused: [AtomicU64; REFUSAL_REASONS.len()],
    /// Open connections and those refused over `[intake] max_connections`.
    pub connections: std::sync::Arc<crate::listener::ConnectionStats>,
}

/// Why `/events` refused a request, by its status: the `reason` label of
/// `tykwatch_intake_refused_total`.
pub const REFUSAL_REASONS: [&str; 7] = [
    "unauthorized",
    "malformed",
    "timeout",
    "too_large",
    "unrecognised",
    "unavailable",
    "other",
];

fn refusal_reason(status: StatusCode) -> usize {
    match status.as_u16() {
        401 | 403 => 0,
        400 => 1,
        408 => 2,
        413 => 3,
        422 => 4,
        503 => 5,
        _ => 6,
    }
}

impl IntakeStats {
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
    pub fn rejected(&self) -> u64 {
        self.rejected.load(Ordering::Relaxed)
    }
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
    /// `(reason, count)` of the refused requests.
    pub fn refused(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        REFUSAL_REASONS
            .iter()
            .zip(&self.refused)
            .map(|(r, c)| (*r, c.load(Ordering::Relaxed)))
    }
}

pub(super) struct AppState {
    /// SHA-256 of `[intake] secret`; `None` = no secret required.
    pub secret: Option<[u8; 32]>,
    pub max_body: usize,
    pub body_timeout: Duration,
    pub writer: mpsc::Sender<WriteReq>,
    pub events: mpsc::Sender<IntakeEvent>,
    pub clock: Arc<dyn Clock>,
    pub stats: Arc<IntakeStats>,
}

pub(super) fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route(
            "/events",
            post(post_events)
                .head(head_events)
                .fallback(events_wrong_method),
        )
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .with_state(state)
}

pub(super) fn secret_digest(secret: &str) -> Option<[u8; 32]> {
    (!secret.is_empty()).then(|| Sha256::digest(secret.as_bytes()).into())
}

fn error(status: StatusCode, reason: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "error": reason.into() }))).into_response()
}

/// Compares digests (fixed length) with no data-dependent branch or early exit.
fn same_secret(expected: &[u8; 32], presented: &[u8]) -> bool {
    let got: [u8; 32] = Sha256::digest(presented).into();
    let diff = expected
        .iter()
        .zip(got.iter())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    std::hint::black_box(diff) == 0
}

fn check_secret(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let expected = state.secret.as_ref()?;
    let mut values = headers.get_all(SECRET_HEADER).iter();
    let reason = match (values.next(), values.next()) {
        (None, _) => {
            "missing X-Tykwatch-Secret header ([intake] secret is set); add it to the sender's headers (Tyk: monitor.configuration.header_map)"
        }
        (Some(_), Some(_)) => "X-Tykwatch-Secret was sent more than once; send it once",
        (Some(v), None) if same_secret(expected, v.as_bytes()) => return None,
        (Some(_), None) => "X-Tykwatch-Secret does not match [intake] secret",
    };
    Some(error(StatusCode::UNAUTHORIZED, reason))
}

enum BodyError {
    TooLarge,
    Read,
}

/// Reads at most `max` bytes; see [`DRAIN_LIMIT`] for what happens past it.
async fn read_body(body: Body, max: usize, declared: Option<u64>) -> Result<Vec<u8>, BodyError> {
    let mut stream = body.into_data_stream();
    // Trust a declared length only so far: a client that declares 1 MiB and sends nothing
    // must not pin 1 MiB per connection.
    let cap = declared.map_or(0, |d| d.min(max.min(64 * 1024) as u64) as usize);
    let mut buf = Vec::with_capacity(cap);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| BodyError::Read)?;
        if buf.len() + chunk.len() > max {
            let mut seen = (buf.len() + chunk.len()) as u64;
            drop(buf);
            let drain = async {
                while seen <= DRAIN_LIMIT {
                    match stream.next().await {
                        Some(Ok(c)) => seen += c.len() as u64,
                        _ => break,
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN_TIME, drain).await;
            return Err(BodyError::TooLarge);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

fn too_large(max: usize) -> Response {
    let mut resp = error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("the body is larger than [intake] max_body ({max} bytes)"),
    );
    // The rest of the body may still be in flight: do not reuse this connection.
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

async fn post_events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let resp = accept(&state, &headers, body).await;
    let counter = if resp.status().is_success() {
        &state.stats.accepted
    } else {
        state.stats.refused[refusal_reason(resp.status())].fetch_add(1, Ordering::Relaxed);
        &state.stats.rejected
    };
    counter.fetch_add(1, Ordering::Relaxed);
    resp
}

async fn accept(state: &AppState, headers: &HeaderMap, body: Body) -> Response {
    if let Some(refused) = check_secret(state, headers) {
        return refused;
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|d| d > state.max_body as u64 && d > DRAIN_LIMIT) {
        return too_large(state.max_body);
    }
    let bytes = match tokio::time::timeout(
        state.body_timeout,
        read_body(body, state.max_body, declared),
    )
    .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(BodyError::TooLarge)) => return too_large(state.max_body),
        Ok(Err(BodyError::Read)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "the body could not be read (connection closed or malformed chunking)",
            );
        }
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                format!(
                    "the body did not arrive within {} s",
                    state.body_timeout.as_secs_f64()
                ),
            );
        }
    };
    let mut event = match classify(&bytes) {
        Ok(e) => e,
        Err(Rejection::Malformed(m)) => return error(StatusCode::BAD_REQUEST, m),
        Err(Rejection::Unrecognised(m)) => return error(StatusCode::UNPROCESSABLE_ENTITY, m),
    };
    drop(bytes);
    event.received_at = state.clock.now_ms();
    // Its own task: a sender that hangs up mid-commit must not stop the engine from hearing
    // about a recorded event.
    let writer = state.writer.clone();
    let events = state.events.clone();
    let stats = state.stats.clone();
    let recorded = tokio::spawn(async move { record(event, &writer, &events, &stats).await });
    match recorded.await {
        Ok(Ok(id)) => (
            StatusCode::ACCEPTED,
            axum::Json(json!({ "status": "accepted", "id": id })),
        )
            .into_response(),
        Ok(Err(reason)) => unavailable(&reason),
        Err(_) => unavailable("the event could not be recorded (internal task failed)"),
    }
}

/// Waits for the row's commit, then forwards the event to the engine.
async fn record(
    mut event: IntakeEvent,
    writer: &mpsc::Sender<WriteReq>,
    events: &mpsc::Sender<IntakeEvent>,
    stats: &IntakeStats,
) -> Result<i64, String> {
    let row = NewEvent {
        received_at: event.received_at,
        kind: event.kind().as_str().to_owned(),
        event: event.event.clone(),
        org_id: event.org_id.clone(),
        summary: event.summary.clone(),
        masked_key: event.masked_key.clone(),
        payload_json: event.payload.to_string(),
    };
    let (reply, recorded) = oneshot::channel();
    if writer.send(WriteReq { row, reply }).await.is_err() {
        return Err("the event store is closed (tykwatch is shutting down)".to_owned());
    }
    let id = match recorded.await {
        Ok(Ok(id)) => id,
        Ok(Err(msg)) => return Err(format!("cannot record the event: {msg}")),
        Err(_) => return Err("the event store stopped before recording the event".to_owned()),
    };
    event.id = id;
    // The table is the record; the channel only wakes the engine, so a full one never blocks
    // the sender.
    if events.try_send(event).is_err() {
        stats.dropped.fetch_add(1, Ordering::Relaxed);
    }
    Ok(id)
}

fn unavailable(reason: &str) -> Response {
    let mut resp = error(StatusCode::SERVICE_UNAVAILABLE, reason);
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    resp
}

/// The Developer Portal tests a webhook target with `HEAD`.
async fn head_events(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    check_secret(&state, &headers).unwrap_or_else(|| StatusCode::NO_CONTENT.into_response())
}

async fn events_wrong_method() -> Response {
    let mut resp = error(
        StatusCode::METHOD_NOT_ALLOWED,
        "use POST /events with a JSON body",
    );
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST, HEAD"));
    resp
}

async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    if state.writer.is_closed() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "status": "error", "error": "the event store is not running" })),
        )
            .into_response();
    }
    axum::Json(json!({ "status": "ok" })).into_response()
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not found; webhooks go to POST /events, health checks to GET /healthz",
    )
}
