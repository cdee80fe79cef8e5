//! One sweep of a gateway: list keys and orgs, read each session with bounded concurrency, and
//! turn them into samples. A key deleted between list and get is skipped, not an error.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream;

use super::model::Sample;
use super::source::{RestSource, SourceError};
use crate::clock::Clock;
use crate::tyk::gateway::GatewayError;
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
pub async fn sweep(src: &mut RestSource, clock: &dyn Clock) -> SweepOutcome {
    let (gw, opts) = (&src.gateway, &src.opts);
    let started = Instant::now();
    let mut out = SweepOutcome {
        started_ms: clock.now_ms(),
        complete: true,
        ..SweepOutcome::default()
    };
    let (hello, keys, orgs) = tokio::join!(
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
    );
    out.requests = 1 + usize::from(opts.keys) + usize::from(opts.orgs);
    out.hello = Some(hello);
    let keys = match keys {
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
    let n = opts.concurrency.max(1);

    let mut key_reads = stream::iter(keys)
        .map(|k| async move {
            let res = gw.get_key(&k).await;
            (k, res, clock.now_ms())
        })
        .buffer_unordered(n);
    while let Some((key, res, at)) = key_reads.next().await {
        match res {
            Ok(s) => out.samples.extend(Sample::from_key_session(&key, &s, at)),
            Err(e) => {
                // A vanished key is simply gone; anything else leaves the picture incomplete.
                if !e.is_per_key() {
                    out.complete = false;
                }
                out.item_errors.push(e.into());
            }
        }
    }
    drop(key_reads);
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

/// Reads one key at once (the push path: a gateway's own monitor reported it). The outcome is
/// never `complete`, so the board keeps every other quota.
pub async fn poll_key(src: &mut RestSource, key: &str, clock: &dyn Clock) -> SweepOutcome {
    let gw = &src.gateway;
    let started = Instant::now();
    let mut out = SweepOutcome {
        started_ms: clock.now_ms(),
        keys: 1,
        requests: 1,
        ..SweepOutcome::default()
    };
    match gw.get_key(key).await {
        Ok(s) => out
            .samples
            .extend(Sample::from_key_session(key, &s, clock.now_ms())),
        Err(e) => out.item_errors.push(e.into()),
    }
    out.duration = started.elapsed();
    out
}
