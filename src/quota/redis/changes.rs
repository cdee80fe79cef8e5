//! Sessions changed between sweeps, as Tyk announces them on `tyk.cluster.notifications`
//! (TykTechnologies/tyk `gateway/redis_signals.go`): coalesced and handed to the sweep.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use crate::tyk::redis::conn::RESUBSCRIBE_DELAY;
use crate::tyk::redis::layout;

/// Most distinct keys held from notifications between two deliveries; past that the sweep
/// catches up.
const MAX_PENDING_CHANGES: usize = 10_000;

/// How often notified changes are handed to the engine (they are coalesced in between: Tyk
/// publishes one after every proxied request that touched a session).
const CHANGE_BATCH_EVERY: Duration = Duration::from_millis(200);

pub(super) async fn subscribe(client: redis::Client, tx: mpsc::Sender<Vec<String>>) {
    loop {
        if let Ok(mut pubsub) = client.get_async_pubsub().await
            && pubsub
                .subscribe(layout::NOTIFICATIONS_CHANNEL)
                .await
                .is_ok()
        {
            let mut stream = pubsub.on_message();
            let mut pending: Vec<String> = Vec::new();
            let mut tick = tokio::time::interval(CHANGE_BATCH_EVERY);
            loop {
                tokio::select! {
                    msg = stream.next() => {
                        let Some(msg) = msg else { break };
                        let payload: Vec<u8> = msg.get_payload_bytes().to_vec();
                        for key in notified_keys(&payload) {
                            if pending.len() < MAX_PENDING_CHANGES && !pending.contains(&key) {
                                pending.push(key);
                            }
                        }
                    }
                    _ = tick.tick() => {
                        if !pending.is_empty() {
                            match tx.try_send(std::mem::take(&mut pending)) {
                                Ok(()) => {}
                                Err(mpsc::error::TrySendError::Full(v)) => pending = v,
                                Err(mpsc::error::TrySendError::Closed(_)) => return,
                            }
                        }
                    }
                }
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(RESUBSCRIBE_DELAY).await;
    }
}

/// The keys of a `KeySpaceUpdateNotification` (TykTechnologies/tyk `gateway/redis_signals.go`):
/// the payload is a hash or a raw token, or a comma-separated list whose items may carry a
/// `:suffix`. Other commands name no key.
pub fn notified_keys(message: &[u8]) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Notification {
        #[serde(default)]
        command: String,
        #[serde(default)]
        payload: String,
    }
    let Ok(n) = serde_json::from_slice::<Notification>(message) else {
        return Vec::new();
    };
    if n.command != "KeySpaceUpdateNotification" {
        return Vec::new();
    }
    n.payload
        .split(',')
        .map(|item| item.split(':').next().unwrap_or_default().trim())
        .filter(|k| !k.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_name_keys() {
        assert_eq!(
            notified_keys(br#"{"command":"KeySpaceUpdateNotification","payload":"45a0a4f9","signature":"","algorithm":5}"#),
            vec!["45a0a4f9"]
        );
        assert_eq!(
            notified_keys(br#"{"command":"KeySpaceUpdateNotification","payload":"a:oauth,b"}"#),
            vec!["a", "b"]
        );
        assert!(notified_keys(br#"{"command":"ApiUpdated","payload":"x"}"#).is_empty());
        assert!(notified_keys(b"not json").is_empty());
    }
}
