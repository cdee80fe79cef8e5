//! Channel identity: which channel an outbox row goes to, as a type. The stored text
//! (`tyk`, `webhook:<name>`, `email:<audience>`) is its [`fmt::Display`] / [`FromStr`] form and
//! is part of every idempotency key, so it never changes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Who an e-mail channel writes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Audience {
    /// `[notify] email_to`.
    Ops,
    /// `[notify] org_email_to[<org>]`.
    Org,
    /// The key's developer (`meta_data.email` / `developer_email`, with `notify_key_owner`).
    Developer,
    /// A received event: the org's `event_options.<option>.email` addresses.
    EventOrg,
    /// A received event: the matching routes' `email_to`.
    EventTo,
    /// A received event: the portal developer it is about.
    EventDeveloper,
}

impl Audience {
    pub const ALL: [Audience; 6] = [
        Audience::Ops,
        Audience::Org,
        Audience::Developer,
        Audience::EventOrg,
        Audience::EventTo,
        Audience::EventDeveloper,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Audience::Ops => "ops",
            Audience::Org => "org",
            Audience::Developer => "developer",
            Audience::EventOrg => "event-org",
            Audience::EventTo => "event-to",
            Audience::EventDeveloper => "event-developer",
        }
    }
}

/// How a channel sends; stored in the outbox's `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutboxKind {
    /// Tyk's monitor webhook (`[monitor.configuration]`, Go-template body).
    TykWebhook,
    /// `[[webhooks]]`: Standard Webhooks.
    StandardWebhook,
    Email,
}

impl OutboxKind {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxKind::TykWebhook => "tyk_webhook",
            OutboxKind::StandardWebhook => "standard_webhook",
            OutboxKind::Email => "email",
        }
    }
}

/// One notification channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChannelId {
    /// Tyk's own monitor webhook (`[monitor.configuration] target_path`).
    Tyk,
    /// A `[[webhooks]]` entry, by name.
    Webhook(String),
    Email(Audience),
}

impl ChannelId {
    pub fn webhook(name: impl Into<String>) -> ChannelId {
        ChannelId::Webhook(name.into())
    }

    pub fn kind(&self) -> OutboxKind {
        match self {
            ChannelId::Tyk => OutboxKind::TykWebhook,
            ChannelId::Webhook(_) => OutboxKind::StandardWebhook,
            ChannelId::Email(_) => OutboxKind::Email,
        }
    }

    pub fn is_email(&self) -> bool {
        matches!(self, ChannelId::Email(_))
    }
}

impl fmt::Display for ChannelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChannelId::Tyk => f.write_str("tyk"),
            ChannelId::Webhook(name) => write!(f, "webhook:{name}"),
            ChannelId::Email(a) => write!(f, "email:{}", a.as_str()),
        }
    }
}

/// Why a text is not a channel id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown channel {0:?} (channels are `tyk`, `webhook:<name>` and `email:ops|org|developer|event-org|event-to|event-developer`)"
)]
pub struct UnknownChannel(pub String);

impl FromStr for ChannelId {
    type Err = UnknownChannel;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "tyk" {
            return Ok(ChannelId::Tyk);
        }
        if let Some(name) = s.strip_prefix("webhook:")
            && !name.is_empty()
        {
            return Ok(ChannelId::Webhook(name.to_owned()));
        }
        if let Some(who) = s.strip_prefix("email:")
            && let Some(a) = Audience::ALL.into_iter().find(|a| a.as_str() == who)
        {
            return Ok(ChannelId::Email(a));
        }
        Err(UnknownChannel(s.to_owned()))
    }
}

/// Compares with the stored text (`row.channel_id == "tyk"`).
impl PartialEq<str> for ChannelId {
    fn eq(&self, other: &str) -> bool {
        match self {
            ChannelId::Tyk => other == "tyk",
            ChannelId::Webhook(name) => other.strip_prefix("webhook:") == Some(name.as_str()),
            ChannelId::Email(a) => other.strip_prefix("email:") == Some(a.as_str()),
        }
    }
}

impl PartialEq<&str> for ChannelId {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

impl Serialize for ChannelId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ChannelId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_text_round_trips() {
        let mut all = vec![ChannelId::Tyk, ChannelId::webhook("ops.eu-1")];
        all.extend(Audience::ALL.map(ChannelId::Email));
        for c in all {
            let text = c.to_string();
            assert_eq!(text.parse::<ChannelId>().unwrap(), c);
            assert!(c == text.as_str());
            assert_eq!(serde_json::to_string(&c).unwrap(), format!("\"{text}\""));
        }
        assert_eq!(
            ChannelId::Email(Audience::EventOrg).to_string(),
            "email:event-org"
        );
        for bad in ["", "Tyk", "webhook:", "email:", "email:nobody", "slack:ops"] {
            assert!(bad.parse::<ChannelId>().is_err(), "{bad}");
        }
        assert_eq!(ChannelId::webhook("a").kind(), OutboxKind::StandardWebhook);
        assert!(ChannelId::webhook("a") != "webhook:b");
    }
}
