//! Storage identities: the quota key written to the ledger and the idempotency key of each
//! notification. Both are stable across restarts and versions (changing them would re-arm every
//! threshold of every quota), never contain a raw API key, and are header-safe.

use sha2::{Digest, Sha256};

use super::channel::ChannelId;
use crate::quota::QuotaId;

/// Longest idempotency key: Stripe's limit, and well inside header and Message-ID limits.
pub const MAX_IDEM_KEY: usize = 255;

/// Longest id component (API id, org id, channel) kept verbatim; longer ones are hashed.
const MAX_VERBATIM: usize = 64;

/// Hex of the first `n / 2` bytes of SHA-256(`data`).
fn sha256_hex(data: &[u8], n: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(data);
    let mut out = String::with_capacity(n);
    for b in digest.iter() {
        if out.len() >= n {
            break;
        }
        out.push(HEX[usize::from(b >> 4)] as char);
        out.push(HEX[usize::from(b & 0x0f)] as char);
    }
    out.truncate(n);
    out
}

/// An id component as it appears in keys: verbatim when short and made of `[A-Za-z0-9._-]`,
/// else `~` + 32 hex chars of its SHA-256 (`~` never occurs in a verbatim component, so the two
/// forms cannot collide). Keeps keys header-safe whatever a gateway or config puts in an id.
pub fn safe_component(s: &str) -> String {
    let verbatim = !s.is_empty()
        && s.len() <= MAX_VERBATIM
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if verbatim {
        s.to_owned()
    } else {
        format!("~{}", sha256_hex(s.as_bytes(), 32))
    }
}

/// The ledger identity of a quota: `key:<h>`, `key:<h>:api:<api_id>` or `org:<org_id>`, where
/// `<h>` is the first 32 hex chars of SHA-256(raw key). The raw key is a credential and the
/// database outlives it in backups, so it is never stored as the identity.
///
/// This is the one quota id of every output: `snapshot`'s and `run`'s `quota_id`, the outbox's
/// `quota_key` and, as [`key_digest`], the `key_id` label of the metrics.
pub fn quota_key(id: &QuotaId) -> String {
    match id {
        QuotaId::Key(k) => format!("key:{}", key_digest(k)),
        QuotaId::KeyApi(k, api) => format!("key:{}:api:{}", key_digest(k), safe_component(api)),
        QuotaId::Org(o) => format!("org:{}", safe_component(o)),
    }
}

/// The `<h>` of [`quota_key`]: 32 hex chars of SHA-256(key), unique per key (128 bits) and the
/// same on every run and instance.
pub fn key_digest(key: &str) -> String {
    sha256_hex(key.as_bytes(), 32)
}

/// Canonical text of a threshold: shortest round-trip decimal, no exponent (`80`, `87.5`).
pub fn threshold_str(t: f64) -> String {
    format!("{t}")
}

/// The idempotency key of one notification: `q:<quota_key>:<period>:<threshold>:<channel>`.
/// It is the `webhook-id` header and the e-mail Message-ID, identical across retries and
/// restarts. Only `[A-Za-z0-9._:~-]` occur; a key that would exceed [`MAX_IDEM_KEY`] (very long
/// API ids are already hashed, so only absurd inputs) becomes `q~` + the SHA-256 of the full key.
pub fn idem_key(quota_key: &str, period: i64, threshold: f64, channel: &ChannelId) -> String {
    let channel_id = channel.to_string();
    let channel = if channel_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
        && !channel_id.is_empty()
    {
        channel_id
    } else {
        safe_component(&channel_id)
    };
    let key = format!(
        "q:{quota_key}:{period}:{}:{channel}",
        threshold_str(threshold)
    );
    let safe = key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':' | b'~'));
    if key.len() <= MAX_IDEM_KEY && safe {
        key
    } else {
        format!("q~{}", sha256_hex(key.as_bytes(), 64))
    }
}

/// `e:<event id>:<channel>`: the `webhook-id` and e-mail `Message-ID` of a received event's
/// notification. Event ids are never reused, so replaying an event plans the same keys.
pub fn event_idem_key(event_id: i64, channel: &ChannelId) -> String {
    format!("e:{event_id}:{channel}")
}

/// Header carrying the raw notification id (the outbox idempotency key), for receivers and
/// scripts that want it without decoding the Message-ID.
pub const ID_HEADER: &str = "X-Tykwatch-Id";

/// Longest notification id accepted (the outbox's `MAX_IDEM_KEY`).
const MAX_ID: usize = MAX_IDEM_KEY;

/// Encodes a notification id (an outbox idempotency key, alphabet `[A-Za-z0-9._:~-]`) as
/// RFC 5322 `dot-atom-text` for the left part of a Message-ID and for file names:
///
/// - `:` (not `atext`) becomes `=`, which never occurs in an id, so the mapping is reversible
///   ([`decode_id`]): `q:key:0f3a:1900000000:80:email:ops` → `q=key=0f3a=1900000000=80=email=ops`;
/// - when that is not a valid dot-atom (a leading or trailing `.`, or `..`, possible only with odd
///   API or org ids), the id is hex-encoded behind a `+` (also never in an id).
///
/// `None` when `id` is empty, too long, or has characters outside the alphabet.
pub fn encode_id(id: &str) -> Option<String> {
    let valid = !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'~' | b'-'));
    if !valid {
        return None;
    }
    let mapped = id.replace(':', "=");
    if mapped.starts_with('.') || mapped.ends_with('.') || mapped.contains("..") {
        let mut hex = String::with_capacity(1 + 2 * id.len());
        hex.push('+');
        for b in id.bytes() {
            hex.push_str(&format!("{b:02x}"));
        }
        Some(hex)
    } else {
        Some(mapped)
    }
}

/// The inverse of [`encode_id`].
pub fn decode_id(encoded: &str) -> Option<String> {
    if let Some(hex) = encoded.strip_prefix('+') {
        if hex.len() % 2 != 0 {
            return None;
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        String::from_utf8(bytes).ok()
    } else {
        Some(encoded.replace('=', ":"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const RAW: &str = "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d";

    #[test]
    fn quota_keys_hide_the_raw_key() {
        let k = quota_key(&QuotaId::Key(Arc::from(RAW)));
        assert!(k.starts_with("key:") && k.len() == 4 + 32, "{k}");
        assert!(!k.contains(RAW) && !k.contains("a2290376"));
        let a = quota_key(&QuotaId::KeyApi(Arc::from(RAW), Arc::from("api-1")));
        assert_eq!(a, format!("{k}:api:api-1"));
        assert_eq!(quota_key(&QuotaId::Org(Arc::from("5e9d"))), "org:5e9d");
        // stable across versions: a changed hash would re-arm every threshold
        assert_eq!(
            quota_key(&QuotaId::Key(Arc::from("abc"))),
            "key:ba7816bf8f01cfea414140de5dae2223"
        );
    }

    #[test]
    fn odd_ids_are_hashed_and_keys_stay_header_safe() {
        let api = "api with spaces\r\nX-Injected: 1";
        let q = quota_key(&QuotaId::KeyApi(Arc::from(RAW), Arc::from(api)));
        assert!(q.contains(":api:~"), "{q}");
        let long = "x".repeat(300);
        let id = idem_key(&q, 1_900_000_000, 87.5, &ChannelId::webhook(long));
        assert!(id.len() <= MAX_IDEM_KEY);
        assert!(id.bytes().all(|b| b.is_ascii_graphic()));
        assert_eq!(
            idem_key("key:ab", 1_900_000_000, 80.0, &ChannelId::webhook("ops")),
            "q:key:ab:1900000000:80:webhook:ops"
        );
        assert_eq!(threshold_str(0.1 + 0.2), "0.30000000000000004");
        assert_eq!(
            event_idem_key(42, &ChannelId::webhook("ops")),
            "e:42:webhook:ops"
        );
    }
}
