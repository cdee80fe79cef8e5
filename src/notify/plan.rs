//! Which channels a crossing notifies and what each will need: a [`Crossing`] + the configured
//! channels → [`OutboxRow`]s. Nothing is rendered here; channels render `payload_json` at
//! delivery time, so a template fix applies to notifications still queued.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::outbox::{
    Audience, ChannelId, Crossing, EVENT_QUOTA_THRESHOLD, NotificationPayload, OutboxRow,
    OutboxState, Source, idem_key,
};
use crate::quota::Scope;

/// The channels configured, reduced to what planning needs (no URLs, no secrets).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Channels {
    pub tyk: bool,
    /// Names of enabled `[[webhooks]]`.
    pub webhooks: Vec<String>,
    /// `[email_backend] enable_email_notifications`: gates every e-mail channel.
    pub email: bool,
    pub email_to: Vec<String>,
    pub org_email_to: BTreeMap<String, Vec<String>>,
    pub notify_key_owner: bool,
}

impl Channels {
    pub fn from_config(c: &Config) -> Self {
        Channels {
            tyk: !c.monitor.configuration.target_path.is_empty(),
            webhooks: c
                .webhooks
                .iter()
                .filter(|w| w.enabled)
                .map(|w| w.name.clone())
                .collect(),
            email: c.email_backend.enable_email_notifications,
            email_to: c.notify.email_to.clone(),
            org_email_to: c.notify.org_email_to.clone(),
            notify_key_owner: c.notify.notify_key_owner,
        }
    }

    /// Why e-mail, although on, can never be sent: no address anywhere (a legitimate set-up
    /// while addresses are being decided, so a warning, not an error).
    pub fn email_warning(c: &Config) -> Option<String> {
        let n = &c.notify;
        let routed = c
            .routes
            .iter()
            .any(|r| r.email_org || r.email_developer || !r.email_to.is_empty());
        let none = n.email_to.is_empty() && n.org_email_to.is_empty() && !n.notify_key_owner;
        (c.email_backend.enable_email_notifications && none && !routed).then(|| {
            "e-mail is on ([email_backend] enable_email_notifications) but nothing has a \
             recipient: set [notify] email_to, org_email_to or notify_key_owner, or e-mail in a \
             [[routes]] entry; no e-mail will be sent"
                .to_owned()
        })
    }

    /// Every channel id a notification can go to (the targets of a test), in planning order.
    /// A short hash of what decides which notifications exist: the `[monitor]` settings and
    /// these channels. Instances sharing a store show theirs, so a disagreement is visible.
    pub fn config_hash(&self, monitor: &crate::config::MonitorConfig) -> String {
        use sha2::Digest;
        let text = format!("{monitor:?}|{:?}", self.ids());
        let digest = sha2::Sha256::digest(text.as_bytes());
        digest[..6].iter().map(|b| format!("{b:02x}")).collect()
    }

    pub fn ids(&self) -> Vec<ChannelId> {
        let mut out = Vec::new();
        if self.tyk {
            out.push(ChannelId::Tyk);
        }
        out.extend(self.webhooks.iter().map(ChannelId::webhook));
        if self.email {
            if !self.email_to.is_empty() {
                out.push(ChannelId::Email(Audience::Ops));
            }
            if !self.org_email_to.is_empty() {
                out.push(ChannelId::Email(Audience::Org));
            }
        }
        out
    }

    /// The channels and recipients a crossing goes to, in a stable order.
    pub fn targets(&self, c: &Crossing) -> Vec<(ChannelId, Vec<String>)> {
        let mut out = Vec::new();
        if self.tyk {
            out.push((ChannelId::Tyk, Vec::new()));
        }
        for name in &self.webhooks {
            out.push((ChannelId::webhook(name), Vec::new()));
        }
        if !self.email {
            return out;
        }
        if !self.email_to.is_empty() {
            out.push((ChannelId::Email(Audience::Ops), self.email_to.clone()));
        }
        if let Some(to) = self.org_email_to.get(&*c.meta.org_id)
            && !to.is_empty()
        {
            out.push((ChannelId::Email(Audience::Org), to.clone()));
        }
        if self.notify_key_owner && c.quota_id.scope() != Scope::Org {
            let to = developer_emails(c);
            if !to.is_empty() {
                out.push((ChannelId::Email(Audience::Developer), to));
            }
        }
        out
    }
}

/// The key owner's addresses from `meta_data` (`email`, `developer_email`). The values come
/// from the gateway, so anything that could smuggle headers or several addresses is dropped.
fn developer_emails(c: &Crossing) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for field in ["email", "developer_email"] {
        if let Some(v) = c.meta.meta_data.get_str(field) {
            let v = v.trim();
            if plausible_email(v) && !out.iter().any(|o| o.eq_ignore_ascii_case(v)) {
                out.push(v.to_owned());
            }
        }
    }
    out
}

/// A plain address ([`crate::config::check_email`]) whose domain has a dot: a gateway's
/// `meta_data` is not trusted to name a local mailbox.
fn plausible_email(s: &str) -> bool {
    s.len() <= 254
        && crate::config::check_email(s).is_ok()
        && s.rsplit_once('@')
            .is_some_and(|(_, domain)| domain.contains('.'))
}

/// The outbox rows of one crossing: one per channel, due at once.
pub fn plan(c: &Crossing, channels: &Channels) -> serde_json::Result<Vec<OutboxRow>> {
    channels
        .targets(c)
        .into_iter()
        .map(|(channel_id, recipients)| {
            let id = idem_key(&c.quota_key, c.period, c.threshold, &channel_id);
            // The key as the gateway knows it: the raw token, or on a gateway that hashes keys
            // the hash it listed (the token itself is never known then).
            let raw_key = (channel_id == ChannelId::Tyk)
                .then(|| c.quota_id.key().map(str::to_owned))
                .flatten();
            let payload = NotificationPayload {
                event: EVENT_QUOTA_THRESHOLD.to_owned(),
                id: id.clone(),
                channel_id: channel_id.clone(),
                scope: c.quota_id.scope().as_str().to_owned(),
                quota_key: c.quota_key.to_string(),
                org_id: c.meta.org_id.to_string(),
                alias: c.meta.alias.to_string(),
                key_masked: c.meta.masked().to_string(),
                key: raw_key,
                api_id: c.meta.api_id().to_string(),
                api_name: c.meta.api_name().to_string(),
                threshold: c.threshold,
                usage_percentage: c.usage_pct,
                quota_max: c.quota_max,
                quota_remaining: c.quota_remaining,
                quota_renews: c.quota_renews,
                period: c.period,
                sequence: c.sequence,
                covered: c.covered.clone(),
                detected_at_ms: c.at_ms,
                tags: c.meta.tags.to_vec(),
                recipients,
            };
            Ok(OutboxRow {
                idem_key: id,
                channel_id,
                payload_json: serde_json::to_string(&payload)?,
                state: OutboxState::Pending,
                attempts: 0,
                next_attempt_at: c.at_ms,
                last_status: None,
                last_error: None,
                created_at: c.at_ms,
                delivered_at: None,
                source: Source::Crossing {
                    quota_key: c.quota_key.to_string(),
                    period: c.period,
                    threshold: c.threshold,
                },
                sequence: c.sequence,
            })
        })
        .collect()
}

/// [`plan`] for a batch of crossings (one sweep), ready for `Store::record_crossings`.
pub fn plan_all(crossings: &[Crossing], channels: &Channels) -> serde_json::Result<Vec<OutboxRow>> {
    let mut rows = Vec::with_capacity(crossings.len() * 2);
    for c in crossings {
        rows.extend(plan(c, channels)?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, WebhookConfig};
    use crate::outbox::OutboxKind;
    use crate::quota::{QuotaId, QuotaMeta, SessionMeta, mask_key};
    use crate::tyk::session::MetaData;
    use serde_json::json;
    use std::sync::Arc;

    const RAW: &str = "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d";

    fn crossing(id: QuotaId, meta: QuotaMeta) -> Crossing {
        Crossing {
            quota_key: Arc::from(crate::outbox::quota_key(&id)),
            quota_id: id,
            meta,
            period: 1_900_000_000,
            threshold: 95.0,
            covered: vec![80.0],
            usage_pct: 96.0,
            quota_max: 100,
            quota_remaining: 4,
            quota_renews: 1_900_000_000,
            at_ms: 1_800_000_000_000,
            sequence: 7,
        }
    }

    fn key_meta() -> QuotaMeta {
        let mut meta_data = serde_json::Map::new();
        meta_data.insert("email".into(), json!("dev@acme.example"));
        meta_data.insert(
            "developer_email".into(),
            json!("evil@x.example\r\nBcc: a@b.c"),
        );
        QuotaMeta::from(key_session(meta_data))
    }

    fn key_session(meta_data: serde_json::Map<String, serde_json::Value>) -> SessionMeta {
        SessionMeta {
            key: Arc::from(RAW),
            masked: mask_key(RAW).into(),
            alias: "acme-prod".into(),
            org_id: "org1".into(),
            meta_data: MetaData::from_map(&meta_data),
            ..SessionMeta::default()
        }
    }

    fn all_channels() -> Config {
        let mut c = Config::default();
        c.monitor.configuration.target_path = "https://hooks.example.com/q".into();
        for (name, enabled) in [("ops", true), ("off", false)] {
            c.webhooks.push(WebhookConfig {
                name: name.into(),
                url: "https://hooks.example.com/w".into(),
                secret: Default::default(),
                enabled,
            });
        }
        c.email_backend.enable_email_notifications = true;
        c.notify.email_to = vec!["ops@example.com".into()];
        c.notify
            .org_email_to
            .insert("org1".into(), vec!["owner@acme.example".into()]);
        c
    }

    #[test]
    fn every_channel_gets_one_row_and_only_tyk_sees_the_raw_key() {
        let c = crossing(QuotaId::Key(Arc::from(RAW)), key_meta());
        let rows = plan(&c, &Channels::from_config(&all_channels())).unwrap();
        let ids: Vec<String> = rows.iter().map(|r| r.channel_id.to_string()).collect();
        assert_eq!(
            ids,
            [
                "tyk",
                "webhook:ops",
                "email:ops",
                "email:org",
                "email:developer"
            ]
        );
        for r in &rows {
            assert_eq!(r.state, OutboxState::Pending);
            assert!(r.idem_key.ends_with(&format!(":95:{}", r.channel_id)));
            let p = NotificationPayload::from_json(&r.payload_json).unwrap();
            assert_eq!(p.event, EVENT_QUOTA_THRESHOLD);
            assert_eq!((p.threshold, p.covered.as_slice()), (95.0, &[80.0][..]));
            assert_eq!(p.key.is_some(), r.channel_id == "tyk");
            assert_eq!(r.payload_json.contains(RAW), r.channel_id == "tyk");
            assert!(!format!("{p:?}").contains(RAW));
        }
        assert_eq!(rows[0].kind(), OutboxKind::TykWebhook);
        assert_eq!(rows[1].kind(), OutboxKind::StandardWebhook);
        let dev = NotificationPayload::from_json(&rows[4].payload_json).unwrap();
        assert_eq!(dev.recipients, ["dev@acme.example"]); // the CRLF address is dropped
    }

    #[test]
    fn email_needs_the_backend_and_org_quotas_have_no_developer() {
        let mut cfg = all_channels();
        cfg.email_backend.enable_email_notifications = false;
        let c = crossing(QuotaId::Key(Arc::from(RAW)), key_meta());
        let rows = plan(&c, &Channels::from_config(&cfg)).unwrap();
        assert!(rows.iter().all(|r| r.kind() != OutboxKind::Email));

        let org = key_meta();
        let c = crossing(QuotaId::Org(Arc::from("org1")), org);
        let rows = plan(&c, &Channels::from_config(&all_channels())).unwrap();
        let ids: Vec<String> = rows.iter().map(|r| r.channel_id.to_string()).collect();
        assert_eq!(ids, ["tyk", "webhook:ops", "email:ops", "email:org"]);
        let p = NotificationPayload::from_json(&rows[0].payload_json).unwrap();
        assert_eq!((p.key, p.scope.as_str()), (None, "org"));
    }

    #[test]
    fn a_hashed_key_reaches_the_tyk_body_as_the_hash_the_gateway_listed() {
        const HASH: &str = "45a0a4f9";
        let meta = QuotaMeta::from(SessionMeta {
            key: Arc::from(HASH),
            masked: crate::quota::mask_hash(HASH).into(),
            hashed: true,
            ..(*key_meta().session).clone()
        });
        let c = crossing(QuotaId::Key(Arc::from(HASH)), meta);
        let rows = plan(&c, &Channels::from_config(&all_channels())).unwrap();
        let tyk = NotificationPayload::from_json(&rows[0].payload_json).unwrap();
        assert_eq!(
            (&tyk.channel_id, tyk.key.as_deref()),
            (&ChannelId::Tyk, Some(HASH))
        );
        let body = crate::notify::webhook::tyk_event_message(&tyk);
        assert_eq!(body.meta["Key"], HASH);
        // Other channels see the (hash-)masked key only.
        let std = NotificationPayload::from_json(&rows[1].payload_json).unwrap();
        assert_eq!((std.key, std.key_masked.as_str()), (None, HASH));
    }

    #[test]
    fn nothing_configured_plans_nothing() {
        let c = crossing(QuotaId::Key(Arc::from(RAW)), key_meta());
        assert!(plan(&c, &Channels::default()).unwrap().is_empty());
    }
}
