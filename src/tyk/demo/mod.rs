//! The embedded demo Tyk Gateway: a Tyk-compatible control API on loopback that tykwatch's HTTP
//! client reads exactly as it reads a real gateway (v5.8 wire format, byte for byte), plus a
//! traffic simulator so that quotas move, cross thresholds, run out and renew.
//!
//! The same listener also serves a demo Tyk Dashboard Admin API for organisations under
//! `/admin/organisations` (`admin-auth`: [`DemoGateway::admin_secret`]), with one document per
//! demo org, so the org editor works with no set-up: [`DemoGateway::dashboard_url`].
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use tykwatch::tyk::demo::{DemoGateway, DemoOptions};
//! let gw = DemoGateway::start(DemoOptions::default()).await?;
//! println!("demo gateway at {} (secret {})", gw.url(), gw.secret());
//! gw.shutdown().await;
//! # Ok(()) }
//! ```

mod dashboard;
mod gojson;
mod model;
mod population;
mod redis_mirror;
mod server;
mod simulator;
mod state;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use gojson::{GoFormatter, GoValue, encode as encode_go_json, go_float};
pub use population::{
    API_INVENTORY, API_ORDERS, API_PAYMENTS, APIS, ORG_ACME, ORG_GLOBEX, ORG_INITECH, ORGS, keys,
};
pub use server::GATEWAY_VERSION;

use crate::rng::Rng;
use model::now_unix;
use server::Shared;
use state::State;

/// Options of the demo gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// TCP port on 127.0.0.1; 0 = ephemeral.
    pub port: u16,
    /// The `x-tyk-authorization` secret (tyk.conf `secret`).
    pub secret: String,
    /// The demo Dashboard's `admin-auth` secret; `None` = the same as `secret`.
    pub admin_secret: Option<String>,
    /// Extra synthetic keys spread over the orgs (e.g. 10 000 for a benchmark).
    pub extra_keys: usize,
    /// Simulated-traffic time multiplier (1.0 = real time).
    pub speed: f64,
    /// Seed of the population and of the traffic.
    pub seed: u64,
    /// Run the traffic simulator task.
    pub simulate: bool,
    /// Also write the state into this Redis (`redis://host:port/`) in Tyk's layout.
    pub redis: Option<String>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            port: 0,
            secret: "tykwatch-demo".to_string(),
            admin_secret: None,
            extra_keys: 0,
            speed: 1.0,
            seed: 1,
            simulate: true,
            redis: None,
        }
    }
}

/// A running demo gateway. Dropping it stops its tasks; [`DemoGateway::shutdown`] also waits.
pub struct DemoGateway {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<watch::Sender<bool>>,
    server: Option<JoinHandle<()>>,
    simulator: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for DemoGateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoGateway")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl DemoGateway {
    /// Builds the population, binds 127.0.0.1:`port` and spawns the server (and simulator) tasks.
    /// Must be called inside a Tokio runtime.
    pub async fn start(opts: DemoOptions) -> std::io::Result<DemoGateway> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, opts.port)).await?;
        let addr = listener.local_addr()?;

        let mut st = State::new(Rng::new(opts.seed.wrapping_add(0x5eed)));
        population::populate(&mut st, opts.seed, opts.extra_keys, now_unix());
        let state = Arc::new(Mutex::new(st));
        let shared = Arc::new(Shared {
            state: Arc::clone(&state),
            secret: opts.secret.clone(),
            admin_secret: opts
                .admin_secret
                .clone()
                .unwrap_or_else(|| opts.secret.clone()),
            dashboard: Mutex::new(dashboard::Documents::demo()),
        });

        let (stop_tx, stop_rx) = watch::channel(false);
        let app = server::router(Arc::clone(&shared));
        let mut server_stop = stop_rx.clone();
        let server = tokio::spawn(async move {
            let shutdown = async move {
                // Resolves on `send(true)` and when the sender is dropped.
                let _ = server_stop.changed().await;
            };
            // Errors here mean the listener died; nothing to report to (the task is detached).
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await;
        });
        let speed = if opts.speed.is_finite() && opts.speed > 0.0 {
            opts.speed
        } else {
            1.0
        };
        if let Some(url) = &opts.redis {
            redis_mirror::check(url)
                .await
                .map_err(|e| std::io::Error::other(format!("Redis for the demo: {e}")))?;
            tokio::spawn(redis_mirror::run(
                Arc::clone(&state),
                url.clone(),
                stop_rx.clone(),
            ));
        }
        let simulator = opts
            .simulate
            .then(|| tokio::spawn(simulator::run(state, speed, stop_rx)));

        Ok(DemoGateway {
            addr,
            shared,
            stop: Some(stop_tx),
            server: Some(server),
            simulator,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn secret(&self) -> &str {
        &self.shared.secret
    }

    /// The demo Dashboard Admin API's base URL (the gateway's listener serves `/admin/…` too).
    pub fn dashboard_url(&self) -> String {
        self.url()
    }

    /// The `admin-auth` secret of the demo Dashboard.
    pub fn admin_secret(&self) -> &str {
        &self.shared.admin_secret
    }

    /// Test hook: the raw bodies of every `PUT /admin/organisations/{id}` so far, oldest first.
    pub fn admin_puts(&self) -> Vec<Vec<u8>> {
        self.dashboard().puts.clone()
    }

    /// Test hook: every session write so far (`PUT /tyk/keys/…?…`, `PUT /tyk/org/keys/…`) as
    /// (method, path and query; raw body), oldest first.
    pub fn session_writes(&self) -> Vec<(String, Vec<u8>)> {
        self.lock().writes.clone()
    }

    /// Test hook: `GET /tyk/keys/{key}` as the gateway serves it (Go's JSON encoding).
    pub fn key_document(&self, key: &str) -> Option<Vec<u8>> {
        let s = self.lock().key_detail(key)?;
        encode_go_json(&s).ok()
    }

    /// Test hook: the demo Dashboard's stored document of `org`, as JSON text (key order kept).
    pub fn org_document(&self, org: &str) -> Option<String> {
        self.dashboard().get(org).map(str::to_owned)
    }

    fn dashboard(&self) -> MutexGuard<'_, dashboard::Documents> {
        self.shared
            .dashboard
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Number of keys currently stored.
    pub fn key_count(&self) -> usize {
        self.lock().keys.len()
    }

    /// Stops the simulator and the server (open connections are closed gracefully) and waits.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
        if let Some(sim) = self.simulator.take() {
            let _ = sim.await;
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// Test hook: deletes a key (as `DELETE /tyk/keys/{id}`); false when it did not exist.
    pub fn delete_key(&self, key: &str) -> bool {
        self.lock().delete_key(key)
    }

    /// Test hook: simulates `n` requests on `key` now, to `api_id` (its per-API limit when it has
    /// a non-empty one) or, with `None`, against the key's top-level quota. Blocked requests
    /// (inactive/expired key, exhausted quota) are not counted; renewal is lazy as in Tyk.
    pub fn consume(&self, key: &str, api_id: Option<&str>, n: i64) {
        self.lock().consume(key, api_id, n, now_unix());
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for DemoGateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(true);
        }
    }
}
