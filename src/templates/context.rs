//! The data quota e-mails are rendered with. The notification engine fills a [`QuotaNotice`];
//! every field is documented in `email_templates/README.md` (keep the two in step).
//!
//! Optional facts are `null` rather than absent, so templates can test them (`{% if api %}`)
//! under strict undefined handling, and a typo is still an error.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::outbox::{Audience, ChannelId, EventPayload, NotificationPayload};
use crate::quota::{QuotaId, Sample, Scope, model};
use crate::tyk::session::MetaData;

/// An id with a display name (an organisation, an API).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedRef {
    pub id: String,
    /// Display name; the id when the name is unknown.
    pub name: String,
}

/// The key a quota belongs to. The raw key is deliberately absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRef {
    /// `5e9d…ef6d`, as the console shows it.
    pub masked: String,
    /// The key's `alias`; empty when it has none.
    pub alias: String,
}

/// The key's portal developer, from its `meta_data`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Developer {
    /// `meta_data.tyk_developer_id`.
    pub id: Option<String>,
    /// `meta_data.email` or `meta_data.developer_email`.
    pub email: Option<String>,
}

/// A quota crossed a threshold (or ran out): the context of `quota_threshold`,
/// `quota_threshold_developer` and `quota_exhausted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaNotice {
    /// `key` (a key's own quota), `api` (a key's per-API limit) or `org` (an organisation).
    pub scope: String,
    /// What to call the quota: key alias, else masked key, else org name.
    pub label: String,
    pub org: NamedRef,
    /// `null` for organisation quotas.
    pub key: Option<KeyRef>,
    /// The API of a per-API limit; `null` otherwise.
    pub api: Option<NamedRef>,
    /// The threshold that fired, in percent.
    pub threshold: f64,
    /// Lower thresholds passed by the same reading (recorded, not notified separately).
    pub covered_thresholds: Vec<f64>,
    /// All thresholds that apply to this quota (session ∪ global), ascending.
    pub trigger_limits: Vec<f64>,
    /// `(quota_max − quota_remaining) / quota_max × 100`, as Tyk computes it.
    pub usage_percentage: f64,
    pub quota_max: i64,
    pub quota_remaining: i64,
    /// `quota_max − quota_remaining`, never negative.
    pub used: i64,
    /// True when `quota_remaining <= 0`.
    pub exhausted: bool,
    /// Window length in seconds (`quota_renewal_rate`).
    pub quota_renewal_rate: i64,
    /// The window as words: `1 hour`, `30 days`.
    pub window_human: String,
    /// Unix seconds at which the window ends.
    pub quota_renews: i64,
    /// `quota_renews` as RFC 3339 UTC, e.g. `2025-03-01T11:00:00Z`.
    pub quota_renews_rfc3339: String,
    /// `in 35 minutes`, or `with the next request` when the window has already ended (Tyk
    /// renews lazily).
    pub renews_in_human: String,
    /// Consumption rate (requests per minute) over the recent history; `null` when unknown.
    pub rate_per_min: Option<f64>,
    /// Time to exhaustion at that rate, as words; `null` when not consuming or unknown.
    pub eta_human: Option<String>,
    /// When the reading was taken: Unix seconds and RFC 3339.
    pub observed_at: i64,
    pub observed_at_rfc3339: String,
    /// Link to the Tyk Dashboard (`email_backend.dashboard_hostname`); `null` when not set.
    pub dashboard_url: Option<String>,
    /// The key's developer; `null` for org quotas and keys without one.
    pub developer: Option<Developer>,
    /// Idempotency key of the notification (also the `Message-ID`); empty in previews.
    pub notification_id: String,
}

impl QuotaNotice {
    /// The notice for `sample` crossing `threshold` at `now_secs`. Org name, rate, ETA,
    /// Dashboard link, covered thresholds and notification id are left for the caller
    /// ([`Self::with_org_name`], [`Self::with_rate`], [`Self::with_dashboard_hostname`], or the
    /// public fields).
    pub fn from_sample(sample: &Sample, threshold: f64, now_secs: i64) -> QuotaNotice {
        let meta = &sample.meta;
        let key = sample.id.key().map(|k| KeyRef {
            masked: if meta.masked().is_empty() {
                model::mask_key(k)
            } else {
                meta.masked().to_string()
            },
            alias: meta.alias.to_string(),
        });
        let org_id = match &sample.id {
            QuotaId::Org(o) if meta.org_id.is_empty() => o.to_string(),
            _ => meta.org_id.to_string(),
        };
        let api = (sample.id.scope() == Scope::Api).then(|| NamedRef {
            id: meta.api_id().to_string(),
            name: if meta.api_name().is_empty() {
                meta.api_id().to_string()
            } else {
                meta.api_name().to_string()
            },
        });
        let developer = key.as_ref().and_then(|_| developer_of(&meta.meta_data));
        let label = match &key {
            Some(k) if !k.alias.is_empty() => k.alias.clone(),
            Some(k) => k.masked.clone(),
            None => org_id.clone(),
        };
        let mut limits: Vec<f64> = meta.trigger_limits.to_vec();
        limits.push(threshold);
        limits.sort_by(f64::total_cmp);
        limits.dedup();
        QuotaNotice {
            scope: sample.id.scope().as_str().to_string(),
            label,
            org: NamedRef {
                id: org_id.clone(),
                name: org_id,
            },
            key,
            api,
            threshold,
            covered_thresholds: Vec::new(),
            trigger_limits: limits,
            usage_percentage: sample.usage_pct().unwrap_or(0.0),
            quota_max: sample.quota_max,
            quota_remaining: sample.quota_remaining,
            used: sample.used(),
            exhausted: sample.quota_max > 0 && sample.quota_remaining <= 0,
            quota_renewal_rate: sample.quota_renewal_rate,
            window_human: human_duration(sample.quota_renewal_rate),
            quota_renews: sample.quota_renews,
            quota_renews_rfc3339: rfc3339(sample.quota_renews),
            renews_in_human: renews_in(sample.quota_renews, now_secs),
            rate_per_min: None,
            eta_human: None,
            observed_at: now_secs,
            observed_at_rfc3339: rfc3339(now_secs),
            dashboard_url: None,
            developer,
            notification_id: String::new(),
        }
    }

    /// The notice for a queued notification (an outbox row's payload), rendered at delivery
    /// time `now_secs`. The payload carries no window length, rate or org name: the window
    /// reads as "quota" (`window_human`, `quota_renewal_rate` 0), rate and ETA are `null`, the
    /// org name is its id. Usage at or above 100 % counts as exhausted, so it renders
    /// `quota_exhausted`.
    pub fn from_payload(p: &NotificationPayload, now_secs: i64) -> QuotaNotice {
        let scope = match p.scope.as_str() {
            "key" | "api" | "org" => p.scope.clone(),
            _ => "key".to_string(),
        };
        let key = (scope != "org").then(|| KeyRef {
            masked: p.key_masked.clone(),
            alias: p.alias.clone(),
        });
        let api = (scope == "api").then(|| NamedRef {
            id: p.api_id.clone(),
            name: if p.api_name.is_empty() {
                p.api_id.clone()
            } else {
                p.api_name.clone()
            },
        });
        // The developer channel's recipients are the key owner's addresses.
        let developer = (p.channel_id == ChannelId::Email(Audience::Developer))
            .then(|| p.recipients.first().cloned())
            .flatten()
            .map(|email| Developer {
                id: None,
                email: Some(email),
            });
        let label = match &key {
            Some(k) if !k.alias.is_empty() => k.alias.clone(),
            Some(k) => k.masked.clone(),
            None => p.org_id.clone(),
        };
        let mut limits: Vec<f64> = p.covered.clone();
        limits.push(p.threshold);
        limits.retain(|t| t.is_finite());
        limits.sort_by(f64::total_cmp);
        limits.dedup();
        let mut covered = p.covered.clone();
        covered.sort_by(f64::total_cmp);
        let observed = p.detected_at_ms.div_euclid(1000);
        QuotaNotice {
            scope,
            label,
            org: NamedRef {
                id: p.org_id.clone(),
                name: p.org_id.clone(),
            },
            key,
            api,
            threshold: p.threshold,
            covered_thresholds: covered,
            trigger_limits: limits,
            usage_percentage: p.usage_percentage,
            quota_max: p.quota_max,
            quota_remaining: p.quota_remaining,
            used: (p.quota_max - p.quota_remaining).max(0),
            exhausted: (p.quota_max > 0 && p.quota_remaining <= 0) || p.usage_percentage >= 100.0,
            quota_renewal_rate: 0,
            window_human: "quota".to_string(),
            quota_renews: p.quota_renews,
            quota_renews_rfc3339: rfc3339(p.quota_renews),
            renews_in_human: renews_in(p.quota_renews, now_secs),
            rate_per_min: None,
            eta_human: None,
            observed_at: observed,
            observed_at_rfc3339: rfc3339(observed),
            dashboard_url: None,
            developer,
            notification_id: p.id.clone(),
        }
    }

    /// Sets the consumption rate and the time to exhaustion (`eta_secs`, as the board
    /// computes it).
    pub fn with_rate(mut self, rate_per_min: Option<f64>, eta_secs: Option<i64>) -> Self {
        self.rate_per_min = rate_per_min.filter(|r| r.is_finite() && *r >= 0.0);
        self.eta_human = eta_secs.map(|s| {
            if s <= 0 {
                "now".to_string()
            } else {
                human_duration(s)
            }
        });
        self
    }

    /// Sets the organisation's display name (from the Dashboard or config); an org quota's
    /// `label` follows it.
    pub fn with_org_name(mut self, name: &str) -> Self {
        let name = name.trim();
        if !name.is_empty() {
            if self.key.is_none() && self.label == self.org.id {
                self.label = name.to_string();
            }
            self.org.name = name.to_string();
        }
        self
    }

    /// Sets `dashboard_url` from tyk_analytics.conf's `dashboard_hostname` (a host, or a URL).
    pub fn with_dashboard_hostname(mut self, hostname: &str) -> Self {
        self.dashboard_url = dashboard_url(hostname);
        self
    }

    /// The template for this notice: `quota_exhausted` once nothing is left, else
    /// `quota_threshold` (operators) or `quota_threshold_developer`.
    pub fn template_name(&self, to_developer: bool) -> &'static str {
        match (self.exhausted, to_developer) {
            (true, _) => "quota_exhausted",
            (false, true) => "quota_threshold_developer",
            (false, false) => "quota_threshold",
        }
    }
}

/// `https://` + a host, a URL as given, `None` for nothing.
fn dashboard_url(hostname: &str) -> Option<String> {
    let host = hostname.trim().trim_end_matches('/');
    if host.is_empty() {
        None
    } else if host.starts_with("http://") || host.starts_with("https://") {
        Some(host.to_string())
    } else {
        Some(format!("https://{host}"))
    }
}

/// A received event (a Dashboard `event_options` webhook, a Portal webhook): the context of
/// `key_request_submitted|approved|rejected`, `api_event`, `key_event` and any template a user
/// adds for an event. [`EventNotice::to_context`] is the masked body as received (`event` +
/// `data` for the Dashboard, `Event` + `Message` + `Timestamp` for the Portal) with these
/// fields added, so templates written against Tyk's payloads work unchanged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventNotice {
    /// The event name (`key_request_event.submitted`, `UserRegistered`).
    pub event: String,
    /// The Dashboard body's `data`, a Portal body's `Message`, else the whole body. For
    /// `key_request_event.*` the documented fields the templates show are present (empty
    /// when the sender left them out).
    pub data: Value,
    /// The event's id in the Events view.
    pub event_id: i64,
    /// `dashboard` or `portal`.
    pub source: String,
    /// The organisation (name = id: the payload carries no name).
    pub org: NamedRef,
    /// The one-line summary of the Events view.
    pub summary: String,
    /// The key the event is about, masked; empty when none.
    pub masked_key: String,
    /// Unix seconds and RFC 3339.
    pub received_at: i64,
    pub received_at_rfc3339: String,
    /// `https://` + `[email_backend] dashboard_hostname`; `null` when not set.
    pub dashboard_url: Option<String>,
    pub recipients: Vec<String>,
    /// Idempotency key of the notification (also the `Message-ID`).
    pub notification_id: String,
    #[serde(skip)]
    body: Value,
}

impl EventNotice {
    pub fn from_payload(p: &EventPayload) -> EventNotice {
        let mut data = match p.source.as_str() {
            "dashboard" => p.payload.get("data").cloned(),
            "portal" => p.payload.get("Message").cloned(),
            _ => None,
        }
        .unwrap_or_else(|| p.payload.clone());
        if p.event.starts_with("key_request_event.") {
            fill_key_request(&mut data);
        }
        let received = p.received_at_ms.div_euclid(1000);
        EventNotice {
            event: p.event.clone(),
            data,
            event_id: p.event_id,
            source: p.source.clone(),
            org: NamedRef {
                id: p.org_id.clone(),
                name: p.org_id.clone(),
            },
            summary: p.summary.clone(),
            masked_key: p.masked_key.clone(),
            received_at: received,
            received_at_rfc3339: rfc3339(received),
            dashboard_url: None,
            recipients: p.recipients.clone(),
            notification_id: p.id.clone(),
            body: p.payload.clone(),
        }
    }

    /// Sets `dashboard_url` from tyk_analytics.conf's `dashboard_hostname`.
    pub fn with_dashboard_hostname(mut self, hostname: &str) -> Self {
        self.dashboard_url = dashboard_url(hostname);
        self
    }

    /// The body's top-level members, then this notice's fields (which win on a clash).
    pub fn to_context(&self) -> Value {
        let mut ctx = match &self.body {
            Value::Object(m) => m.clone(),
            _ => Map::new(),
        };
        if let Ok(Value::Object(own)) = serde_json::to_value(self) {
            ctx.extend(own);
        }
        Value::Object(ctx)
    }
}

/// `key_request_event` data as the templates read it (README: `id`, `date_created`,
/// `apply_policies`, `approved`, `portal_developer`, `catalogue_entry`): only `submitted` is
/// documented by Tyk, so absent members get empty values instead of failing the e-mail.
fn fill_key_request(data: &mut Value) {
    let Value::Object(d) = data else { return };
    for field in ["id", "org_id", "for_plan", "by_user", "date_created"] {
        d.entry(field).or_insert_with(|| Value::from(""));
    }
    d.entry("apply_policies")
        .or_insert_with(|| Value::Array(Vec::new()));
    d.entry("approved").or_insert(Value::Bool(false));
    for (object, fields) in [
        ("portal_developer", &["id", "email"][..]),
        (
            "catalogue_entry",
            &["name", "short_description", "version"][..],
        ),
    ] {
        let entry = d.entry(object).or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(o) = entry {
            for f in fields {
                o.entry(*f).or_insert_with(|| Value::from(""));
            }
        }
    }
}

fn developer_of(meta_data: &MetaData) -> Option<Developer> {
    let text = |field: &str| {
        meta_data
            .get_str(field)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
    };
    let id = text("tyk_developer_id");
    let email = text("email").or_else(|| text("developer_email"));
    (id.is_some() || email.is_some()).then_some(Developer { id, email })
}

fn renews_in(quota_renews: i64, now_secs: i64) -> String {
    if quota_renews <= now_secs {
        "with the next request".to_string()
    } else {
        format!("in {}", human_duration(quota_renews - now_secs))
    }
}

/// Seconds as words, two units at most: `45 seconds`, `35 minutes`, `1 hour 5 minutes`,
/// `30 days`.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    let unit = |n: i64, one: &str| {
        if n == 1 {
            format!("1 {one}")
        } else {
            format!("{n} {one}s")
        }
    };
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => unit(s, "second"),
        (0, 0, m) => unit(m, "minute"),
        (0, h, 0) => unit(h, "hour"),
        (0, h, m) => format!("{} {}", unit(h, "hour"), unit(m, "minute")),
        (d, 0, _) => unit(d, "day"),
        (d, h, _) => format!("{} {}", unit(d, "day"), unit(h, "hour")),
    }
}

pub use crate::timefmt::rfc3339;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_durations() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_740_826_800), "2025-03-01T11:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(human_duration(45), "45 seconds");
        assert_eq!(human_duration(60), "1 minute");
        assert_eq!(human_duration(3600), "1 hour");
        assert_eq!(human_duration(3900), "1 hour 5 minutes");
        assert_eq!(human_duration(86_400 * 30), "30 days");
        assert_eq!(human_duration(86_400 + 7200), "1 day 2 hours");
    }

    fn payload(channel: &str, scope: &str, remaining: i64) -> NotificationPayload {
        NotificationPayload {
            event: "quota.threshold_crossed".into(),
            id: format!("q:key:abc:1740826800:80:{channel}"),
            channel_id: channel.parse().unwrap(),
            scope: scope.into(),
            quota_key: "key:abc".into(),
            org_id: "org1".into(),
            alias: "acme-prod".into(),
            key_masked: "5e9d…ef6d".into(),
            key: None,
            api_id: "api1".into(),
            api_name: "Orders".into(),
            threshold: 80.0,
            usage_percentage: 100.0 * (1000 - remaining) as f64 / 1000.0,
            quota_max: 1000,
            quota_remaining: remaining,
            quota_renews: 1_740_826_800,
            period: 1_740_826_800,
            sequence: 3,
            covered: vec![75.0, 50.0],
            detected_at_ms: 1_740_824_700_000,
            tags: vec![],
            recipients: vec!["dev@acme.example".into()],
        }
    }

    #[test]
    fn notice_from_a_queued_payload() {
        let n = QuotaNotice::from_payload(&payload("email:ops", "api", 150), 1_740_824_700);
        assert_eq!(n.label, "acme-prod");
        assert_eq!(n.api.as_ref().map(|a| a.name.as_str()), Some("Orders"));
        assert_eq!(n.key.as_ref().map(|k| k.masked.as_str()), Some("5e9d…ef6d"));
        assert_eq!(n.trigger_limits, [50.0, 75.0, 80.0]);
        assert_eq!(n.covered_thresholds, [50.0, 75.0]);
        assert_eq!((n.used, n.exhausted), (850, false));
        assert_eq!(n.renews_in_human, "in 35 minutes");
        assert_eq!(n.observed_at_rfc3339, "2025-03-01T10:25:00Z");
        assert_eq!(n.notification_id, "q:key:abc:1740826800:80:email:ops");
        assert_eq!(n.developer, None);
        assert_eq!(n.template_name(false), "quota_threshold");

        let dev = QuotaNotice::from_payload(&payload("email:developer", "key", 0), 1_740_824_700);
        assert!(dev.exhausted);
        assert_eq!(dev.api, None);
        assert_eq!(dev.template_name(true), "quota_exhausted");
        assert_eq!(
            dev.developer.and_then(|d| d.email).as_deref(),
            Some("dev@acme.example")
        );

        let org = QuotaNotice::from_payload(&payload("email:org", "org", 100), 1_740_830_000);
        assert_eq!((org.key, org.label.as_str()), (None, "org1"));
        assert_eq!(org.renews_in_human, "with the next request");
    }

    fn event_payload(source: &str, body: Value) -> EventPayload {
        EventPayload {
            event: body
                .get("event")
                .or_else(|| body.get("Event"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            id: "e:7:email:event-to".into(),
            channel_id: "email:event-to".parse().unwrap(),
            event_id: 7,
            source: source.into(),
            org_id: "org1".into(),
            summary: "s".into(),
            masked_key: String::new(),
            received_at_ms: 1_740_824_700_000,
            payload: body,
            template: String::new(),
            recipients: vec!["ops@example.com".into()],
            org_lookup: None,
        }
    }

    #[test]
    fn event_context_is_the_body_plus_facts() {
        let body = serde_json::json!({"event": "key_request_event.approved",
            "data": {"id": "r1", "catalogue_entry": {"name": "APIs"}}});
        let ctx = EventNotice::from_payload(&event_payload("dashboard", body))
            .with_dashboard_hostname("admin.example.com")
            .to_context();
        assert_eq!(ctx["event"], "key_request_event.approved");
        assert_eq!(ctx["data"]["id"], "r1");
        assert_eq!(ctx["data"]["catalogue_entry"]["name"], "APIs");
        // Absent documented members read as empty rather than failing the template.
        assert_eq!(ctx["data"]["date_created"], "");
        assert_eq!(ctx["data"]["portal_developer"]["email"], "");
        assert_eq!(ctx["data"]["apply_policies"], serde_json::json!([]));
        assert_eq!(ctx["notification_id"], "e:7:email:event-to");
        assert_eq!(ctx["received_at_rfc3339"], "2025-03-01T10:25:00Z");
        assert_eq!(ctx["dashboard_url"], "https://admin.example.com");

        let body = serde_json::json!({"Event": "UserRegistered", "Message": {"Email": "d@x.io"},
            "Timestamp": "2024-04-22T16:38:54Z"});
        let ctx = EventNotice::from_payload(&event_payload("portal", body)).to_context();
        assert_eq!(ctx["Message"]["Email"], "d@x.io");
        assert_eq!(ctx["data"]["Email"], "d@x.io");
        assert_eq!(ctx["Timestamp"], "2024-04-22T16:38:54Z");
        assert_eq!(ctx["event"], "UserRegistered");
    }
}
