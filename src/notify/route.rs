//! Routing of received events (issue 5, "Incoming events"): an [`IntakeEvent`] + the
//! `[[routes]]` → outbox rows, delivered by the same dispatcher as quota notifications.
//!
//! - Matching: a route applies when one of its `events` patterns matches the event name
//!   ([`glob_match`]) and its `orgs` is empty or names the event's org. Every matching route
//!   contributes channels; each channel gets at most one row per event.
//! - Channels: `webhook:<name>` (Standard Webhooks, body = the event, `type` = its name),
//!   `email:event-org` (the org's `event_options.<option>.email`), `email:event-to` (the
//!   routes' `email_to`), `email:event-developer` ([`Audience::EventDeveloper`]
//!   (the portal developer the event is about). E-mail channels need
//!   `[email_backend] enable_email_notifications`, as for quota notifications.
//! - Ids: the idempotency key is `e:<event id>:<channel>` ([`event_idem_key`]); event ids are
//!   never reused, so replaying an event plans the same keys and `Store::enqueue` adds nothing.
//! - The org's address is read through [`OrgAddressBook`] (a TTL cache over
//!   [`OrgSource`], so a flood costs one Dashboard request per org and minute). When it
//!   cannot be read the other channels are planned as usual and the org's row is queued
//!   `failed` with the reason (visible, resendable; a resend reads the org again). An org
//!   that set no address for the option gets no e-mail: that is its own setting.
//! - Not routed: quota triggers (`TriggerExceeded`; tykwatch re-polls the key and its own
//!   monitor notifies) and events without a recorded id.
//! - Catching up: events recorded but never routed (a crash before the enqueue, events the
//!   intake could not hand over live) are listed by `Store::unrouted_events` and planned with
//!   [`EventRouter::plan_row`]; the idempotency keys make a second routing a no-op. The raw key of a trigger is never
//!   read here; payloads are the intake's masked JSON.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::config::{Config, RouteConfig};
use crate::intake::{EventDetail, EventKind, IntakeEvent};
use crate::orgs::{OrgDocument, OrgSource, check_email_list};
use crate::outbox::{
    Audience, ChannelId, EventPayload, OrgLookup, OutboxKind, OutboxRow, OutboxState, Source,
    event_idem_key,
};
use crate::store::EventRow;

/// How long an org document read for its addresses is reused.
pub const ORG_CACHE_TTL: Duration = Duration::from_secs(60);
/// How long a failed read is reused: a Dashboard that is down is not asked once per event.
pub const ORG_FAILURE_TTL: Duration = Duration::from_secs(10);
/// Orgs kept in the cache; beyond it expired entries go (then all, if still too many).
const ORG_CACHE_MAX: usize = 1024;

/// Matches an event name against a `routes.events` pattern: `*` = any run of characters
/// (also none), `?` = exactly one; everything else literally, case-sensitive (Tyk's names
/// are exact).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was and which name position it is currently matched up to.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// The `event_options` entry an event belongs to: the part before the dot of a Dashboard
/// event (`key_request_event.submitted` → `key_request_event`); `None` for other senders.
pub fn event_option(ev: &IntakeEvent) -> Option<&str> {
    match &ev.detail {
        EventDetail::Dashboard { option, .. } => Some(option),
        _ => None,
    }
}

/// The e-mail template of an event:
/// - `key_request_event.<action>` → `key_request_<action>` (`key_request_submitted`, …);
/// - `password_reset_event.*`, `portal_password_reset_event.*` and the Portal's
///   `PasswordReset` → `password_reset`; the Portal's `UserRegistered` → `welcome`
///   (Tyk docs, *Developer Portal webhooks*: both carry the user, `Message.Email`);
/// - other Dashboard events `<option>_event.<action>` → `<option>_event` (`api_event`,
///   `key_event`, `hashed_key_event`, …);
/// - other Portal events → `portal_<snake case>` (`AccessRequestCreated` →
///   `portal_access_request_created`).
///
/// A name the template set does not have is rendered with the user's `event` template if
/// there is one, else with a built-in plain summary (`crate::notify::email::render_event`).
pub fn template_for(name: &str, kind: EventKind) -> String {
    match kind {
        EventKind::Dashboard => match name.split_once('.') {
            Some(("key_request_event", action)) => format!("key_request_{action}"),
            Some(("password_reset_event" | "portal_password_reset_event", _)) => {
                "password_reset".to_owned()
            }
            Some((option, _)) => option.to_owned(),
            None => name.to_owned(),
        },
        EventKind::Portal if name == "UserRegistered" => "welcome".to_owned(),
        EventKind::Portal if name == "PasswordReset" => "password_reset".to_owned(),
        EventKind::Portal => {
            let mut out = String::from("portal");
            let mut prev_lower = false;
            for c in name.chars() {
                if c.is_ascii_alphanumeric() {
                    if (c.is_ascii_uppercase() && prev_lower) || (!prev_lower && out.len() == 6) {
                        out.push('_');
                    }
                    prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
                    out.push(c.to_ascii_lowercase());
                } else {
                    if !out.ends_with('_') {
                        out.push('_');
                    }
                    prev_lower = false;
                }
            }
            out.trim_end_matches('_').to_owned()
        }
        EventKind::QuotaTrigger => "quota_trigger".to_owned(),
    }
}

// ---------------------------------------------------------------------------------------------
// The org's addresses
// ---------------------------------------------------------------------------------------------

type Cached = (Instant, Result<Arc<OrgDocument>, String>);

/// Reads organisations' `event_options` e-mail addresses through an [`OrgSource`], with a
/// TTL cache and one read at a time per org (concurrent events of one org wait for the same
/// read). Shared by the router and the dispatcher (resends of failed `email:event-org` rows).
pub struct OrgAddressBook {
    source: Option<OrgSource>,
    ttl: Duration,
    failure_ttl: Duration,
    cache: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Cached>>>>>,
}

impl std::fmt::Debug for OrgAddressBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgAddressBook")
            .field("source", &self.source.as_ref().map(OrgSource::label))
            .field("ttl", &self.ttl)
            .field("failure_ttl", &self.failure_ttl)
            .finish_non_exhaustive()
    }
}

impl OrgAddressBook {
    /// `None`: no Dashboard and no org dir; every read fails with a reason saying so.
    pub fn new(source: Option<OrgSource>) -> Self {
        Self::with_ttl(source, ORG_CACHE_TTL, ORG_FAILURE_TTL)
    }

    pub fn with_ttl(source: Option<OrgSource>, ttl: Duration, failure_ttl: Duration) -> Self {
        OrgAddressBook {
            source,
            ttl,
            failure_ttl,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, org_id: &str) -> Arc<tokio::sync::Mutex<Option<Cached>>> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= ORG_CACHE_MAX && !cache.contains_key(org_id) {
            let (ttl, failure_ttl) = (self.ttl, self.failure_ttl);
            // A slot being read right now is locked: keep it, its reader holds it anyway.
            cache.retain(|_, slot| match slot.try_lock() {
                Ok(guard) => guard.as_ref().is_some_and(|(at, r)| {
                    at.elapsed() < if r.is_ok() { ttl } else { failure_ttl }
                }),
                Err(_) => true,
            });
            if cache.len() >= ORG_CACHE_MAX {
                cache.clear();
            }
        }
        cache.entry(org_id.to_owned()).or_default().clone()
    }

    /// The org document, from the cache when fresh. `Err` says why it could not be read.
    async fn document(&self, org_id: &str) -> Result<Arc<OrgDocument>, String> {
        let slot = self.slot(org_id);
        let mut guard = slot.lock().await;
        if let Some((at, result)) = guard.as_ref() {
            let ttl = if result.is_ok() {
                self.ttl
            } else {
                self.failure_ttl
            };
            if at.elapsed() < ttl {
                return result.clone();
            }
        }
        let result = match &self.source {
            Some(source) => source
                .get(org_id)
                .await
                .map(Arc::new)
                .map_err(|e| format!("{} ({})", e, source.label())),
            None => Err(
                "no organisation source: set [dashboard] url (or [orgs] dir) to e-mail the org's event_options address"
                    .to_owned(),
            ),
        };
        *guard = Some((Instant::now(), result.clone()));
        result
    }

    /// The addresses `org_id` set in `event_options.<option>.email`: empty when it set none
    /// (or has no entry for the option). `Err`: `could not read org <id>: <why>`, or an
    /// address list the Dashboard holds that cannot be used.
    pub async fn addresses(&self, org_id: &str, option: &str) -> Result<Vec<String>, String> {
        let doc = self
            .document(org_id)
            .await
            .map_err(|e| format!("could not read org {org_id}: {e}"))?;
        let Some(config) = doc.event(option) else {
            return Ok(Vec::new());
        };
        let list = config.email.trim();
        check_email_list(list)
            .map_err(|e| format!("org {org_id}: event_options.{option}.email: {e}"))?;
        let mut out: Vec<String> = Vec::new();
        for a in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(a)) {
                out.push(a.to_owned());
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// The router
// ---------------------------------------------------------------------------------------------

/// Plans the outbox rows of received events from `[[routes]]`.
#[derive(Debug, Clone)]
pub struct EventRouter {
    routes: Vec<RouteConfig>,
    /// Names of enabled `[[webhooks]]`, in config order.
    webhooks: Vec<String>,
    /// `[email_backend] enable_email_notifications`.
    email: bool,
    book: Arc<OrgAddressBook>,
}

impl EventRouter {
    /// `orgs`: where org documents are read for `email_org` (`OrgSource::configured`, or the
    /// demo's); `None` makes those rows fail with a reason saying what to configure.
    pub fn new(config: &Config, orgs: Option<OrgSource>) -> Self {
        Self::with_address_book(config, Arc::new(OrgAddressBook::new(orgs)))
    }

    /// [`EventRouter::new`] with a given address book (its cache settings, or one shared
    /// with the dispatcher's `set_event_orgs`).
    pub fn with_address_book(config: &Config, book: Arc<OrgAddressBook>) -> Self {
        EventRouter {
            routes: config.routes.clone(),
            webhooks: config
                .webhooks
                .iter()
                .filter(|w| w.enabled)
                .map(|w| w.name.clone())
                .collect(),
            email: config.email_backend.enable_email_notifications,
            book,
        }
    }

    /// The address book, for `Dispatcher::set_event_orgs` (resends of failed org rows).
    pub fn address_book(&self) -> Arc<OrgAddressBook> {
        self.book.clone()
    }

    /// No `[[routes]]`: every event plans nothing.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    fn matching(&self, ev: &IntakeEvent) -> impl Iterator<Item = &RouteConfig> {
        self.routes.iter().filter(move |r| {
            r.events.iter().any(|p| glob_match(p, &ev.event))
                && (r.orgs.is_empty() || r.orgs.contains(&ev.org_id))
        })
    }

    /// The outbox rows of `ev` (recorded: `ev.id > 0`), one per channel, due at once; ready
    /// for `Store::enqueue`. Awaits the org's address when a route has `email_org` (cached).
    pub async fn plan(&self, ev: &IntakeEvent) -> Vec<OutboxRow> {
        if ev.id <= 0 || ev.kind() == EventKind::QuotaTrigger {
            return Vec::new();
        }
        let mut email_org = false;
        let mut email_developer = false;
        let mut email_to: Vec<String> = Vec::new();
        let mut hooks: Vec<&str> = Vec::new();
        for r in self.matching(ev) {
            email_org |= r.email_org;
            email_developer |= r.email_developer;
            for a in &r.email_to {
                if !email_to.iter().any(|o| o.eq_ignore_ascii_case(a)) {
                    email_to.push(a.clone());
                }
            }
            for w in &r.webhooks {
                if !hooks.contains(&w.as_str()) {
                    hooks.push(w);
                }
            }
        }
        let mut rows = Vec::new();
        // Config order, enabled only (as quota notifications: a disabled receiver gets nothing).
        for name in self.webhooks.iter().filter(|n| hooks.contains(&n.as_str())) {
            rows.push(event_row(
                ev,
                ChannelId::webhook(name),
                Vec::new(),
                None,
                None,
            ));
        }
        if !self.email {
            return rows;
        }
        if email_org {
            rows.extend(self.org_row(ev).await);
        }
        if !email_to.is_empty() {
            rows.push(event_row(
                ev,
                ChannelId::Email(Audience::EventTo),
                email_to,
                None,
                None,
            ));
        }
        if email_developer {
            let to = developer_email(ev);
            if !to.is_empty() {
                rows.push(event_row(
                    ev,
                    ChannelId::Email(Audience::EventDeveloper),
                    to,
                    None,
                    None,
                ));
            }
        }
        rows
    }

    /// [`EventRouter::plan`] for an event read back from the `events` table (catching up with
    /// `Store::unrouted_events`); nothing for a row that is not a routable event.
    pub async fn plan_row(&self, row: &EventRow) -> Vec<OutboxRow> {
        match event_from_row(row) {
            Some(ev) => self.plan(&ev).await,
            None => Vec::new(),
        }
    }

    /// The `email:event-org` row: the org's addresses, nothing when it set none, or a failed
    /// row with the reason.
    async fn org_row(&self, ev: &IntakeEvent) -> Option<OutboxRow> {
        // Portal events belong to no event_options entry: the org has no address for them.
        let option = event_option(ev)?;
        let lookup = OrgLookup {
            org_id: ev.org_id.clone(),
            option: option.to_owned(),
        };
        if ev.org_id.is_empty() {
            let reason = format!("the {} event names no organisation (data.org_id)", ev.event);
            return Some(event_row(
                ev,
                ChannelId::Email(Audience::EventOrg),
                Vec::new(),
                Some(lookup),
                Some(reason),
            ));
        }
        match self.book.addresses(&ev.org_id, option).await {
            Ok(to) if to.is_empty() => None,
            Ok(to) => Some(event_row(
                ev,
                ChannelId::Email(Audience::EventOrg),
                to,
                Some(lookup),
                None,
            )),
            Err(reason) => Some(event_row(
                ev,
                ChannelId::Email(Audience::EventOrg),
                Vec::new(),
                Some(lookup),
                Some(reason),
            )),
        }
    }
}

/// A recorded event as the intake delivered it (payload already masked; no raw key, which
/// routing never needs). `None` for quota triggers and rows of an unknown kind or form.
pub fn event_from_row(row: &EventRow) -> Option<IntakeEvent> {
    let payload: Value = serde_json::from_str(&row.payload_json).ok()?;
    let detail = match EventKind::parse(&row.kind)? {
        EventKind::Dashboard => {
            let (option, action) = row.event.split_once('.')?;
            EventDetail::Dashboard {
                option: option.to_owned(),
                action: action.to_owned(),
            }
        }
        EventKind::Portal => EventDetail::Portal {
            timestamp: payload
                .get("Timestamp")
                .and_then(Value::as_str)
                .map(str::to_owned),
        },
        EventKind::QuotaTrigger => return None,
    };
    Some(IntakeEvent {
        id: row.id,
        received_at: row.received_at,
        event: row.event.clone(),
        org_id: row.org_id.clone(),
        summary: row.summary.clone(),
        masked_key: row.masked_key.clone(),
        detail,
        payload,
    })
}

/// The developer an event is about: a Dashboard event's `data.portal_developer.email`, a
/// Portal event's `Message.Email`. Values from a sender: anything that could smuggle headers
/// or several addresses is dropped.
fn developer_email(ev: &IntakeEvent) -> Vec<String> {
    let found = match ev.kind() {
        EventKind::Dashboard => ev
            .payload
            .pointer("/data/portal_developer/email")
            .and_then(Value::as_str),
        EventKind::Portal => ev.payload.pointer("/Message/Email").and_then(Value::as_str),
        EventKind::QuotaTrigger => None,
    };
    found
        .map(str::trim)
        .filter(|a| a.len() <= 254 && crate::orgs::validate::check_email(a).is_ok())
        .map(|a| vec![a.to_owned()])
        .unwrap_or_default()
}

/// The payload of `ev`'s row for `channel_id`. Public so the console's template preview
/// renders a received event's e-mail from exactly what routing queues.
pub fn event_payload(
    ev: &IntakeEvent,
    channel_id: &ChannelId,
    recipients: Vec<String>,
    org_lookup: Option<OrgLookup>,
) -> EventPayload {
    let id = event_idem_key(ev.id, channel_id);
    let kind = channel_id.kind();
    EventPayload {
        event: ev.event.clone(),
        id: id.clone(),
        channel_id: channel_id.clone(),
        event_id: ev.id,
        source: ev.kind().as_str().to_owned(),
        org_id: ev.org_id.clone(),
        summary: ev.summary.clone(),
        masked_key: ev.masked_key.clone(),
        received_at_ms: ev.received_at,
        payload: ev.payload.clone(),
        template: if kind == OutboxKind::Email {
            template_for(&ev.event, ev.kind())
        } else {
            String::new()
        },
        recipients,
        org_lookup,
    }
}

/// One outbox row of `ev` for `channel_id` (see `Store::enqueue` for the column choices).
/// `failure` queues it `failed` with that reason.
pub fn event_row(
    ev: &IntakeEvent,
    channel_id: ChannelId,
    recipients: Vec<String>,
    org_lookup: Option<OrgLookup>,
    failure: Option<String>,
) -> OutboxRow {
    let payload = event_payload(ev, &channel_id, recipients, org_lookup);
    let id = payload.id.clone();
    // Strings and a JSON value always encode; should it ever fail, the row says so.
    let (payload_json, failure) = match serde_json::to_string(&payload) {
        Ok(json) => (json, failure),
        Err(e) => (
            "{}".to_owned(),
            Some(format!("cannot encode the event payload: {e}")),
        ),
    };
    OutboxRow {
        idem_key: id,
        channel_id,
        payload_json,
        state: if failure.is_some() {
            OutboxState::Failed
        } else {
            OutboxState::Pending
        },
        attempts: 0,
        next_attempt_at: ev.received_at,
        last_status: None,
        last_error: failure,
        created_at: ev.received_at,
        delivered_at: None,
        source: Source::Event { event_id: ev.id },
        sequence: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        for (p, n) in [
            ("*", "key_request_event.submitted"),
            ("*", ""),
            ("key_request_event.*", "key_request_event.submitted"),
            ("key_request_event.*", "key_request_event."),
            ("*_event.created", "api_event.created"),
            ("api_event.?reated", "api_event.created"),
            ("*.*", "a.b"),
            ("a*b*c", "a-x-b-y-c"),
            ("UserRegistered", "UserRegistered"),
        ] {
            assert!(glob_match(p, n), "{p} ~ {n}");
        }
        for (p, n) in [
            ("key_request_event.*", "key_event.created"),
            ("api_event.created", "api_event.created2"),
            ("api_event.?", "api_event."),
            ("userregistered", "UserRegistered"),
            ("a*b*c", "a-x-b-y"),
            ("", "x"),
        ] {
            assert!(!glob_match(p, n), "{p} !~ {n}");
        }
    }

    #[test]
    fn template_names() {
        let d = EventKind::Dashboard;
        assert_eq!(
            template_for("key_request_event.submitted", d),
            "key_request_submitted"
        );
        assert_eq!(
            template_for("key_request_event.rejected", d),
            "key_request_rejected"
        );
        assert_eq!(template_for("api_event.deleted", d), "api_event");
        assert_eq!(template_for("key_event.updated", d), "key_event");
        assert_eq!(
            template_for("hashed_key_event.created", d),
            "hashed_key_event"
        );
        let p = EventKind::Portal;
        assert_eq!(template_for("UserRegistered", p), "welcome");
        assert_eq!(template_for("PasswordReset", p), "password_reset");
        assert_eq!(
            template_for("portal_password_reset_event.requested", d),
            "password_reset"
        );
        assert_eq!(
            template_for("password_reset_event.requested", d),
            "password_reset"
        );
        assert_eq!(
            template_for("UserAccountActivated", p),
            "portal_user_account_activated"
        );
        assert_eq!(
            template_for("CredentialRegistered", p),
            "portal_credential_registered"
        );
        assert_eq!(template_for("app.created", p), "portal_app_created");
        assert_eq!(
            template_for("OAuthApp2Created", p),
            "portal_oauth_app2_created"
        );
    }
}
