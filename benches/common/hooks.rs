//! A webhook receiver on loopback and a config that sends to it, for the delivery benches.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::routing::post;
use tokio::sync::Notify;
use tykwatch::config::{Config, Secret, WebhookConfig};

pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A receiver on loopback answering 200; counts requests and rings `arrived` on each.
pub async fn receiver() -> (String, Arc<AtomicU64>, Arc<Notify>) {
    let count = Arc::new(AtomicU64::new(0));
    let arrived = Arc::new(Notify::new());
    let (c, a) = (count.clone(), arrived.clone());
    let app = Router::new().route(
        "/hook",
        post(move || {
            let (c, a) = (c.clone(), a.clone());
            async move {
                c.fetch_add(1, Ordering::SeqCst);
                a.notify_one();
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/hook", l.local_addr().expect("addr"));
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (url, count, arrived)
}

/// One signed webhook channel `bench` to `url`, e-mail off.
pub fn webhook_config(url: &str) -> Config {
    let mut c = Config::default();
    c.webhooks.push(WebhookConfig {
        name: "bench".into(),
        url: url.into(),
        secret: Secret::new(SECRET),
        enabled: true,
    });
    c.email_backend.enable_email_notifications = false;
    c
}
