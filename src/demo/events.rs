//! The demo Dashboard and Portal sending their events to the demo's `[intake]`, as a real
//! Dashboard sends `event_options` webhooks (`{"event":"<option>.<action>","data":…}`) and the
//! Enterprise Developer Portal its webhooks (`{"Event","Message","Timestamp"}`,
//! `TykTechnologies/tyk-docs portal/customization/webhooks.mdx`): key requests submitted and
//! approved, keys created and updated, an API updated, a Portal sign-up — one every few
//! seconds, so the Events view moves and the demo's routes put event rows in the outbox.
//!
//! The demo Dashboard's organisations point their webhooks at example.com; this stands in
//! for "each org's event webhook points at this tykwatch's intake".

use std::time::Duration;

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::rng::Rng;
use crate::timefmt::rfc3339;
use crate::tyk::demo::{API_ORDERS, API_PAYMENTS, ORG_ACME, ORG_GLOBEX, keys};

/// The first event, soon after start.
const FIRST: Duration = Duration::from_millis(1500);
/// Between events: uniformly in this range of seconds.
const GAP_S: (f64, f64) = (3.0, 8.0);

/// The sender; stops when dropped.
pub struct DemoEvents {
    task: JoinHandle<()>,
}

impl DemoEvents {
    /// Posts the demo's events to `intake_url` (`http://127.0.0.1:PORT/events`), with
    /// `secret` in the intake's header when `[intake] secret` is set, until dropped. Call inside
    /// the tokio runtime.
    pub fn start(intake_url: String, secret: Option<String>, seed: u64) -> DemoEvents {
        let task = tokio::spawn(async move {
            let Ok(http) = crate::outbound::client(Duration::from_secs(5)).build() else {
                return;
            };
            let mut rng = Rng::new(seed);
            tokio::time::sleep(FIRST).await;
            for n in 0u64.. {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs() as i64);
                let body = event(n, now, &mut rng);
                // A refused or failed post is the intake's to report; the demo goes on.
                let mut post = http
                    .post(&intake_url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json");
                if let Some(s) = &secret {
                    post = post.header(crate::intake::SECRET_HEADER, s);
                }
                let _ = post.body(body.to_string()).send().await;
                let gap = rng.range(GAP_S.0, GAP_S.1);
                tokio::time::sleep(Duration::from_secs_f64(gap)).await;
            }
        });
        DemoEvents { task }
    }
}

impl Drop for DemoEvents {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const DEVELOPERS: [(&str, &str); 3] = [
    ("Zoe", "zoe.muller@acme.example"),
    ("Ravi", "ravi.patel@acme.example"),
    ("Ana", "ana.silva@globex.example"),
];

/// The `n`th event of the demo's cycle, at `now` (Unix seconds).
pub fn event(n: u64, now: i64, rng: &mut Rng) -> Value {
    let (first, email) = DEVELOPERS[(n / 6) as usize % DEVELOPERS.len()];
    let at = rfc3339(now);
    let developer = json!({
        "id": rng.hex24(),
        "email": email,
        "date_created": at,
        "inactive": false,
        "org_id": ORG_ACME,
    });
    let request = |approved: bool, developer: Value, rng: &mut Rng| {
        json!({
            "id": rng.hex24(),
            "org_id": ORG_ACME,
            "for_plan": "5ead7120575961000181867e",
            "apply_policies": ["5ead7120575961000181867e"],
            "by_user": developer["id"],
            "approved": approved,
            "date_created": at,
            "portal_developer": developer,
            "catalogue_entry": {
                "name": "Orders API",
                "short_description": "Place and track orders",
                "api_id": API_ORDERS,
                "policy_id": "5ead7120575961000181867e",
                "version": "v2",
                "is_keyless": false,
            },
        })
    };
    match n % 6 {
        0 => json!({
            "event": "key_request_event.submitted",
            "data": request(false, developer, rng),
        }),
        1 => json!({
            "event": "key_request_event.approved",
            "data": request(true, developer, rng),
        }),
        // The raw key is in the payload, as the Dashboard sends it: the intake masks it.
        2 => json!({
            "event": "key_event.created",
            "data": {"key": keys::PORTAL, "org_id": ORG_ACME, "alias": "portal-key"},
        }),
        3 => json!({
            "event": "api_event.updated",
            "data": {"api_id": API_PAYMENTS, "api_name": "Payments API", "org_id": ORG_ACME},
        }),
        4 => json!({
            "Event": "UserRegistered",
            "Message": {
                "ID": 100 + n,
                "Email": email,
                "First": first,
                "Last": "Developer",
                "OrgID": 1,
                "Provider": "password",
                "Status": "active",
                "CreatedAt": at,
                "ByUser": 1,
            },
            "Timestamp": at,
        }),
        _ => json!({
            "event": "key_event.updated",
            "data": {"key": keys::GLOBEX_MOBILE, "org_id": ORG_GLOBEX, "alias": "globex-mobile"},
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::{EventKind, classify};

    /// Every event of the cycle is one the intake accepts, of the sender it claims to be.
    #[test]
    fn every_event_is_accepted_by_the_intake() {
        let mut rng = Rng::new(7);
        let mut names = Vec::new();
        for n in 0..6 {
            let body = serde_json::to_vec(&event(n, 1_740_823_200, &mut rng)).unwrap();
            let ev = classify(&body).unwrap_or_else(|r| panic!("event {n} refused: {r:?}"));
            names.push((ev.kind(), ev.event.clone()));
            let stored = ev.payload.to_string();
            assert!(!stored.contains(keys::PORTAL), "raw key in {stored}");
        }
        assert_eq!(names[4], (EventKind::Portal, "UserRegistered".to_string()));
        assert_eq!(
            names
                .iter()
                .filter(|(k, _)| *k == EventKind::Dashboard)
                .count(),
            5
        );
    }
}
