//! One sweep of a gateway: list keys and orgs, read each session with bounded concurrency, and
//! turn them into samples. A key deleted between list and get is skipped, not an error — unless
//! every listed key is, which is what reading a hashing gateway by token looks like.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream;

use super::model::Sample;
use super::source::{RestSource, SourceError};
use crate::clock::Clock;
use crate::tyk::gateway::GatewayError;
use crate::tyk::keyhash;
use crate::tyk::session::Hello;

#[derive(Debug, Clone)]
pub struct SweepOptions {
    pub concurrency: usize,
    /// Read key quotas (`monitor_user_keys` does not gate this: the console shows everything).
    pub keys: bool,
    pub orgs: bool,
    /// `GET /tyk/keys?filter=<org>`.
    pub org_filter: Option<String>,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            concurrency: 16,
            keys: true,
            orgs: true,
            org_filter: None,
        }
    }
}

/// What one sweep found.
#[derive(Debug, Default)]
pub struct SweepOutcome {
    pub started_ms: i64,
    pub duration: Duration,
    pub hello: Option<Result<Hello, GatewayError>>,
    pub samples: Vec<Sample>,
    /// The sweep could not read the source at all (listing failed, Redis down).
    pub error: Option<SourceError>,
    /// Problems with single keys or orgs (deleted mid-sweep, one bad body).
    pub item_errors: Vec<SourceError>,
    /// Every listed key and org was read: quotas not seen are gone.
    pub complete: bool,
    pub keys: usize,
    pub orgs: usize,
    pub requests: usize,
}

/// Reads every key and org quota once.
///
/// On a gateway that hashes keys (`hash_keys`, configured or detected) the listing holds
/// hashes and every key is read with `?hashed=true`. Unknown, a listing with a key that looks
/// like a hash is probed once: the first such key is read by hash; a session means hashed, the
/// 400 "key hashing is not enabled" means plain, and the answer is kept in `src.hash_keys`.
pub async fn sweep(src: &mut RestSource, clock: &dyn Clock) -> SweepOutcome {
    let started = Instant::now();
    let mut out = SweepOutcome {
        started_ms: clock.now_ms(),
        complete: true,
        ..SweepOutcome::default()
    };
    let (hello, keys, orgs) = {
        let (gw, opts) = (&src.gateway, &src.opts);
        tokio::join!(
            gw.hello(),
            async {
                if opts.keys {
                    gw.list_keys(opts.org_filter.as_deref()).await.map(Some)
                } else {
                    Ok(None)
                }
            },
            async {
                if opts.orgs {
                    gw.list_orgs().await.map(Some)
                } else {
                    Ok(None)
                }
            }
        )
    };
    out.requests = 1 + usize::from(src.opts.keys) + usize::from(src.opts.orgs);
    out.hello = Some(hello);
    let mut keys = match keys {
        Ok(k) => k.unwrap_or_default(),
        Err(e) => {
            out.error = Some(e.into());
            out.complete = false;
            Vec::new()
        }
    };
    let orgs = match orgs {
        Ok(o) => o.unwrap_or_default(),
        Err(e) => {
            out.item_errors.push(e.into());
            out.complete = false;
            Vec::new()
        }
    };
    out.keys = keys.len();
    out.orgs = orgs.len();
    out.requests += keys.len() + orgs.len();
    let mut vanished = 0;
    let mut note = |out: &mut SweepOutcome, e: GatewayError| {
        // A vanished key is simply gone; anything else leaves the picture incomplete.
        if e.is_per_key() {
            vanished += 1;
        } else {
            out.complete = false;
        }
        if matches!(e, GatewayError::HashingNotEnabled { .. }) {
            // `hash_keys = true` on a gateway that does not hash: every read fails alike, and
            // the fix is the configuration, so it is said once, as the sweep's error.
            out.error.get_or_insert(e.into());
        } else {
            out.item_errors.push(e.into());
        }
    };

    if src.hash_keys.is_none()
        && let Some(i) = keys.iter().position(|k| keyhash::looks_like_hash(k))
    {
        // The probe is the read of that key (no extra request when the gateway hashes).
        let key = keys.swap_remove(i);
        match src.gateway.get_key_by_hash(&key).await {
            Ok(s) => {
                src.hash_keys = Some(true);
                src.detected = true;
                out.samples.extend(Sample::from_stored_session(
                    Arc::from(key.as_str()),
                    true,
                    &s,
                    clock.now_ms(),
                    &mut src.interner,
                ));
            }
            Err(GatewayError::HashingNotEnabled { .. }) => {
                src.hash_keys = Some(false);
                src.detected = true;
                out.requests += 1;
                keys.push(key);
            }
            Err(e) => note(&mut out, e),
        }
    }
    let by_hash = src.hash_keys == Some(true);
    let gw = &src.gateway;
    let n = src.opts.concurrency.max(1);

    let mut key_reads = stream::iter(keys)
        .map(|k| async move {
            let res = if by_hash {
                gw.get_key_by_hash(&k).await
            } else {
                gw.get_key(&k).await
            };
            (k, res, clock.now_ms())
        })
        .buffer_unordered(n);
    while let Some((key, res, at)) = key_reads.next().await {
        match res {
            // A token stored before hashing was turned on is listed as itself.
            Ok(s) => out.samples.extend(Sample::from_stored_session(
                Arc::from(key.as_str()),
                by_hash && keyhash::looks_like_hash(&key),
                &s,
                at,
                &mut src.interner,
            )),
            Err(e) => note(&mut out, e),
        }
    }
    drop(key_reads);
    if out.keys > 0 && vanished == out.keys {
        let hint = match (src.hash_keys, src.detected) {
            (Some(true), _) => "they were read by hash (?hashed=true); were they all deleted \
                                while tykwatch read them?"
                .to_string(),
            (Some(false), true) => "the gateway answered that it does not hash keys; were they \
                                    all deleted while tykwatch read them?"
                .to_string(),
            _ => "it probably hashes keys — set [gateway] hash_keys = true (tyk.conf \
                  \"hash_keys\": true)"
                .to_string(),
        };
        out.error = Some(
            GatewayError::NoKeyReadable {
                listed: out.keys,
                hint,
            }
            .into(),
        );
        out.complete = false;
    }
    let mut org_reads = stream::iter(orgs)
        .map(|o| async move {
            let res = gw.get_org(&o).await;
            (o, res, clock.now_ms())
        })
        .buffer_unordered(n);
    while let Some((org, res, at)) = org_reads.next().await {
        match res {
            Ok(Some(s)) => out.samples.push(Sample::from_org_session(&org, &s, at)),
            Ok(None) => {}
            Err(e) => {
                out.complete = false;
                out.item_errors.push(e.into());
            }
        }
    }
    out.duration = started.elapsed();
    out
}

/// Reads one key at once (the push path: a gateway's own monitor reported it, with the raw
/// token). On a hashing gateway the token is hashed as the gateway does (`HashStr`) and read by
/// hash, so the samples carry the same [`QuotaId`](super::QuotaId) as the sweep's. The outcome
/// is never `complete`, so the board keeps every other quota.
pub async fn poll_key(src: &mut RestSource, key: &str, clock: &dyn Clock) -> SweepOutcome {
    let gw = &src.gateway;
    let started = Instant::now();
    let mut out = SweepOutcome {
        started_ms: clock.now_ms(),
        keys: 1,
        requests: 1,
        ..SweepOutcome::default()
    };
    if src.hash_keys == Some(true) {
        let hash = keyhash::hash_str(key);
        match gw.get_key_by_hash(&hash).await {
            Ok(s) => out.samples.extend(Sample::from_stored_session(
                Arc::from(hash.as_str()),
                true,
                &s,
                clock.now_ms(),
                &mut src.interner,
            )),
            // Not stored under its hash: the key is a hash already (a webhook that carried
            // what the listing shows), or a token stored before hashing was turned on.
            Err(GatewayError::KeyVanished { .. }) if hash != key => {
                out.requests += 1;
                match gw.get_key_by_hash(key).await {
                    Ok(s) => out.samples.extend(Sample::from_stored_session(
                        Arc::from(key),
                        keyhash::looks_like_hash(key),
                        &s,
                        clock.now_ms(),
                        &mut src.interner,
                    )),
                    Err(e) => out.item_errors.push(e.into()),
                }
            }
            Err(e) => out.item_errors.push(e.into()),
        }
    } else {
        match gw.get_key(key).await {
            Ok(s) => out
                .samples
                .extend(Sample::from_key_session(key, &s, clock.now_ms())),
            Err(e) => out.item_errors.push(e.into()),
        }
    }
    out.duration = started.elapsed();
    out
}
