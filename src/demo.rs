//! What the embedded demo adds around the demo gateway so the whole notification loop runs with
//! no set-up: a Standard Webhooks receiver on loopback (it checks every signature and, to show
//! retries, refuses the first attempt of every fifth notification with a 503), `file` e-mail
//! to an ops address, a data directory of its own so demo crossings never mix with real ones,
//! and the demo Dashboard's and Portal's events sent to its intake (`events.rs`) with a route
//! that delivers them.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

mod events;

pub use events::DemoEvents;

use crate::config::{Config, EmailBackendCode, RouteConfig, Secret, WebhookConfig};
use crate::notify::webhook::sign;

/// The demo receiver's channel name (`webhook:demo-receiver`).
pub const RECEIVER_NAME: &str = "demo-receiver";
/// A fixed, public secret: the demo receiver is on loopback and its data is simulated.
const RECEIVER_SECRET: &str = "whsec_ZGVtby1yZWNlaXZlci1zZWNyZXQtbm90LWZvci1wcm9k";
/// Where the demo's ops e-mail goes (a `.eml` file, never a real mailbox).
pub const OPS_ADDRESS: &str = "ops@demo.tykwatch.invalid";

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    bad_signature: AtomicU64,
    /// `webhook-id`s refused once (so their retry is accepted).
    refused_ids: Mutex<HashSet<String>>,
}

/// The running receiver.
pub struct DemoReceiver {
    addr: SocketAddr,
    counters: Arc<Counters>,
    task: JoinHandle<()>,
}

/// What the receiver has seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    pub accepted: u64,
    pub refused: u64,
    pub bad_signature: u64,
}

impl DemoReceiver {
    pub async fn start() -> std::io::Result<DemoReceiver> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(counters.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(DemoReceiver {
            addr,
            counters,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn stats(&self) -> ReceiverStats {
        ReceiverStats {
            accepted: self.counters.accepted.load(Ordering::Relaxed),
            refused: self.counters.refused.load(Ordering::Relaxed),
            bad_signature: self.counters.bad_signature.load(Ordering::Relaxed),
        }
    }

    /// The demo configuration: `config` plus this receiver as a `[[webhooks]]` channel and
    /// `file` e-mail to [`OPS_ADDRESS`] (unless the user configured e-mail recipients).
    pub fn configure(&self, config: &Config) -> Config {
        let mut c = config.clone();
        c.webhooks.retain(|w| w.name != RECEIVER_NAME);
        c.webhooks.push(WebhookConfig {
            name: RECEIVER_NAME.to_owned(),
            url: self.url(),
            secret: Secret::new(RECEIVER_SECRET),
            enabled: true,
        });
        c.monitor.enable_trigger_monitors = true;
        if c.notify.email_to.is_empty() {
            c.notify.email_to = vec![OPS_ADDRESS.to_owned()];
        }
        c.email_backend.enable_email_notifications = true;
        c.email_backend.code = EmailBackendCode::File;
        // The demo Dashboard's and Portal's events ([`DemoEvents`]) go to the receiver, to the
        // org's own address and to the developer they are about, unless routes are set.
        if c.routes.is_empty() {
            c.routes.push(RouteConfig {
                events: vec!["*".to_owned()],
                orgs: Vec::new(),
                email_org: true,
                email_to: Vec::new(),
                email_developer: true,
                webhooks: vec![RECEIVER_NAME.to_owned()],
            });
        }
        if c.email_backend.default_from_email.is_empty() {
            c.email_backend.default_from_email = "tykwatch@demo.tykwatch.invalid".to_owned();
            c.email_backend.default_from_name = "tykwatch demo".to_owned();
        }
        c
    }
}

impl Drop for DemoReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(
    State(c): State<Arc<Counters>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let (id, ts, sigs) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    );
    let body = String::from_utf8_lossy(&body);
    let expected = ts
        .parse::<i64>()
        .ok()
        .and_then(|ts| sign(&Secret::new(RECEIVER_SECRET), &id, ts, &body).ok());
    let valid = expected.is_some_and(|e| sigs.split(' ').any(|s| s == e));
    if !valid {
        c.bad_signature.fetch_add(1, Ordering::Relaxed);
        return (StatusCode::UNAUTHORIZED, "bad signature");
    }
    let n = c.accepted.load(Ordering::Relaxed) + c.refused.load(Ordering::Relaxed);
    let mut refused = c.refused_ids.lock().unwrap_or_else(|p| p.into_inner());
    if n % 5 == 4 && !refused.contains(&id) {
        refused.insert(id);
        c.refused.fetch_add(1, Ordering::Relaxed);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "demo: refusing once to show a retry",
        );
    }
    c.accepted.fetch_add(1, Ordering::Relaxed);
    (StatusCode::OK, "ok")
}
