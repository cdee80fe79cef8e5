//! `tykwatch::triggers` against the demo gateway over loopback: a save re-reads the session
//! and refuses when it changed meanwhile (nothing written), but not when only traffic moved
//! the quota; the quota counter survives a save.

use tykwatch::triggers::{self, EditError, Target};
use tykwatch::tyk::demo::{DemoGateway, DemoOptions, keys};
use tykwatch::tyk::gateway::{DEFAULT_MAX_BODY, Gateway, GatewaySettings};

async fn demo() -> (DemoGateway, Gateway) {
    let gw = DemoGateway::start(DemoOptions {
        simulate: false,
        ..DemoOptions::default()
    })
    .await
    .unwrap();
    let client = Gateway::new(&GatewaySettings {
        url: gw.url(),
        secret: gw.secret().to_string(),
        timeout: std::time::Duration::from_secs(5),
        concurrency: 1,
        max_body: DEFAULT_MAX_BODY,
    })
    .unwrap();
    (gw, client)
}

fn target() -> Target {
    Target::Key {
        id: keys::SHORT_WINDOW.into(),
        hashed: false,
    }
}

#[tokio::test]
async fn traffic_meanwhile_is_saved_over_and_the_quota_is_kept() {
    let (gw, client) = demo().await;
    let p = triggers::prepare(&client, target(), &[90.0, 50.0])
        .await
        .unwrap();
    assert_eq!(p.before, [80.0]);
    let used_before = client.get_key(keys::SHORT_WINDOW).await.unwrap();
    gw.consume(keys::SHORT_WINDOW, None, 7);
    let saved = triggers::save(&client, &p).await.unwrap();
    assert_eq!(saved, [90.0, 50.0]);
    let after = client.get_key(keys::SHORT_WINDOW).await.unwrap();
    assert_eq!(
        after.quota_remaining,
        used_before.quota_remaining - 7,
        "the counter was neither reset nor rolled back"
    );
    assert_eq!(after.quota_renews, used_before.quota_renews);
    assert_eq!(gw.session_writes().len(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_session_changed_meanwhile_is_a_conflict_and_nothing_is_written() {
    let (gw, client) = demo().await;
    let p = triggers::prepare(&client, target(), &[90.0]).await.unwrap();
    // Someone else changes the key's rate limit (suppress_reset, as a careful admin would).
    let mut doc: serde_json::Value =
        serde_json::from_slice(&gw.key_document(keys::SHORT_WINDOW).unwrap()).unwrap();
    doc["rate"] = serde_json::json!(7);
    let resp = reqwest::Client::new()
        .put(format!(
            "{}/tyk/keys/{}?suppress_reset=1",
            gw.url(),
            keys::SHORT_WINDOW
        ))
        .header("x-tyk-authorization", gw.secret())
        .body(serde_json::to_vec(&doc).unwrap())
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success());
    let err = triggers::save(&client, &p).await.unwrap_err();
    let EditError::Conflict { changes, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].path_string(), "rate");
    assert!(err.to_string().contains("changed at the gateway"), "{err}");
    assert_eq!(gw.session_writes().len(), 1, "only the other admin's write");
    // A key deleted meanwhile says so.
    assert!(gw.delete_key(keys::SHORT_WINDOW));
    let err = triggers::save(&client, &p).await.unwrap_err();
    assert!(matches!(err, EditError::NotFound(_)), "{err}");
    gw.shutdown().await;
}
