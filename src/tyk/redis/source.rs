//! The Redis quota source: a cache of Tyk's sessions, and the live counters read every sweep.
//!
//! Sessions are large and rarely change, counters are small and always change, so they are read
//! differently (TykTechnologies/tyk `gateway/session_manager.go RedisQuotaExceeded` writes the
//! counters, `gateway/auth_manager.go UpdateSession` the sessions):
//! - **Sessions** (`apikey-*`, `orgkey.*`) are loaded once by `SCAN` + `MGET` in batches, then
//!   refreshed incrementally: a new `SCAN` pass starts every `session_refresh` and advances a few
//!   steps per sweep, re-reading the sessions it meets and finding new ones; at the end of a pass
//!   the sessions it did not meet are gone. Keys named on `tyk.cluster.notifications` are re-read
//!   at once.
//! - **Counters** (`quota-[<scope>-]<suffix>`) are read every sweep with pipelined `GET` + `PTTL`:
//!   remaining = `quota_max − counter` (floored at 0), renews = now + PTTL; no counter means a
//!   fresh window. The stored `quota_remaining` / `quota_renews` are snapshots of the last request
//!   and are never used as live values.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::conn::{Conn, RESUBSCRIBE_DELAY, RedisSettings, ScanCursor, StorageError};
use super::layout::{self, HashMode};
use crate::clock::Clock;
use crate::quota::model::Sample;
use crate::quota::model::same_period;
use crate::quota::poller::SweepOutcome;
use crate::quota::source::SourceError;
use crate::tyk::gateway::Gateway;
use crate::tyk::keyhash;
use crate::tyk::session::SessionState;

/// `SCAN` pattern matching both `apikey-*` and `orgkey.*` in one pass (the few other names it
/// lets through are dropped by `layout`).
const SESSION_PATTERN: &str = "[ao][pr][ig]key[-.]*";

/// Pipelines of counter reads in flight at once.
const PARALLEL_BATCHES: usize = 4;

/// Most distinct keys held from notifications between two deliveries; past that the sweep
/// catches up.
const MAX_PENDING_CHANGES: usize = 10_000;

/// How often notified changes are handed to the engine (they are coalesced in between: Tyk
/// publishes one after every proxied request that touched a session).
const CHANGE_BATCH_EVERY: Duration = Duration::from_millis(200);

/// One quota of a cached session.
struct Quota {
    /// The sample as stored (meta, `quota_max`, renewal rate); counters are filled in per sweep.
    template: Sample,
    /// The counter to read; `None` for unlimited quotas and `rate_limit_pattern` keys.
    counter: Option<Arc<str>>,
    /// Org quotas when the hash mode is unknown: the second candidate counter.
    alt_counter: Option<Arc<str>>,
    /// The window end (Unix s) last reported, kept while new readings stay within the period
    /// slack; `WINDOW_UNKNOWN` or `WINDOW_NEVER`.
    window: i64,
    /// The counter at the last sweep: a drop means a new window.
    last_used: Option<i64>,
}

struct Cached {
    quotas: Vec<Quota>,
    /// The `SCAN` pass that last read this session.
    seen_pass: u64,
}

/// Round trips and sizes, for the header and the benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedisStats {
    pub sessions: usize,
    pub orgs: usize,
    pub counters: usize,
    pub round_trips: usize,
}

pub struct RedisSource {
    settings: RedisSettings,
    gateway: Option<Gateway>,
    mode: HashMode,
    conn: Option<Conn>,
    keys: HashMap<Arc<str>, Cached>,
    orgs: HashMap<Arc<str>, Cached>,
    loaded: bool,
    cursor: ScanCursor,
    pass: u64,
    pass_running: bool,
    last_pass_start: Option<Instant>,
    last_pass_calls: usize,
    pass_calls: usize,
    last_sweep: Option<Instant>,
    sweep_interval: Duration,
    changes: Option<mpsc::Receiver<Vec<String>>>,
    subscriber: Option<JoinHandle<()>>,
    /// The last sweep's figures.
    pub stats: RedisStats,
}

impl Drop for RedisSource {
    fn drop(&mut self) {
        if let Some(t) = self.subscriber.take() {
            t.abort();
        }
    }
}

impl RedisSource {
    /// Nothing is connected until the first sweep, so a Redis that is down at start shows as an
    /// outage with backoff rather than a failed start.
    pub fn new(settings: RedisSettings, gateway: Option<Gateway>, hash_keys: Option<bool>) -> Self {
        let mode = match hash_keys {
            Some(true) => HashMode::Hashed,
            Some(false) => HashMode::Plain,
            None => HashMode::Unknown,
        };
        RedisSource {
            settings,
            gateway,
            mode,
            conn: None,
            keys: HashMap::new(),
            orgs: HashMap::new(),
            loaded: false,
            cursor: ScanCursor::default(),
            pass: 0,
            pass_running: false,
            last_pass_start: None,
            last_pass_calls: 0,
            pass_calls: 0,
            last_sweep: None,
            sweep_interval: Duration::from_secs(2),
            changes: None,
            subscriber: None,
            stats: RedisStats::default(),
        }
    }

    /// Sessions held in the cache.
    pub fn cached_sessions(&self) -> usize {
        self.keys.len()
    }

    /// Reads every quota: the session cache brought up to date (a bounded part of a `SCAN` pass),
    /// then every counter.
    pub async fn sweep(&mut self, clock: &dyn Clock) -> SweepOutcome {
        let started = Instant::now();
        if let Some(prev) = self.last_sweep.replace(started) {
            self.sweep_interval = started.duration_since(prev).max(Duration::from_millis(100));
        }
        let mut out = SweepOutcome {
            started_ms: clock.now_ms(),
            complete: true,
            ..SweepOutcome::default()
        };
        let gateway = self.gateway.clone();
        let (hello, result) = tokio::join!(
            async {
                match &gateway {
                    Some(g) => Some(g.hello().await),
                    None => None,
                }
            },
            self.sweep_redis(&mut out, clock)
        );
        out.hello = hello;
        if let Err(e) = result {
            out.error = Some(SourceError::Storage(e));
            out.complete = false;
            out.samples.clear();
            // Reconnect on the next attempt; the cache (and so the board) is kept.
            self.conn = None;
        }
        out.keys = self.keys.len();
        out.orgs = self.orgs.len();
        out.requests = self.stats.round_trips;
        out.duration = started.elapsed();
        out
    }

    async fn sweep_redis(
        &mut self,
        out: &mut SweepOutcome,
        clock: &dyn Clock,
    ) -> Result<(), StorageError> {
        self.stats.round_trips = 0;
        self.ensure_connected().await?;
        if !self.loaded {
            self.start_pass();
            while !self.scan_some(usize::MAX, out).await? {}
            self.loaded = true;
            if self.keys.is_empty() && self.orgs.is_empty() {
                self.hint_empty(out).await;
            }
        } else {
            let due = self
                .last_pass_start
                .is_none_or(|t| t.elapsed() >= self.settings.session_refresh);
            if !self.pass_running && due {
                self.start_pass();
            }
            if self.pass_running {
                let steps = self.steps_per_sweep();
                self.scan_some(steps, out).await?;
            }
        }
        out.samples = self.read_counters(None, clock).await?;
        if self.stats.round_trips == 0 {
            // Nothing to read: still make sure Redis answers (and still takes the password).
            let r = self.conn()?.ping().await;
            r.map_err(|e| self.redis_error("PING", &e))?;
            self.stats.round_trips = 1;
        }
        self.stats.sessions = self.keys.len();
        self.stats.orgs = self.orgs.len();
        Ok(())
    }

    /// Nothing to read: if other databases hold keys, the configured one is probably wrong.
    async fn hint_empty(&mut self, out: &mut SweepOutcome) {
        let db = self.settings.database;
        let Ok(conn) = self.conn() else { return };
        let Ok(info) = conn.info("keyspace").await else {
            return;
        };
        let others: Vec<&str> = info
            .lines()
            .filter(|l| l.starts_with("db") && !l.starts_with(&format!("db{db}:")))
            .filter_map(|l| l.split(':').next())
            .collect();
        let text = if others.is_empty() {
            format!(
                "Tyk's Redis holds no sessions (apikey-*, orgkey.*) in database {db} — is this the gateway's storage?"
            )
        } else {
            format!(
                "database {db} of Tyk's Redis holds no sessions (apikey-*, orgkey.*), but {} hold keys — set [gateway.storage] database to tyk.conf's storage.database",
                others.join(", ")
            )
        };
        out.item_errors
            .push(SourceError::Storage(StorageError::Unsupported(text)));
    }

    /// SCAN calls per sweep so that a pass takes about `session_refresh`.
    fn steps_per_sweep(&self) -> usize {
        let sweeps = (self.settings.session_refresh.as_secs_f64()
            / self.sweep_interval.as_secs_f64().max(0.1))
        .max(1.0);
        ((self.last_pass_calls.max(1) as f64 / sweeps).ceil() as usize).max(1)
    }

    fn start_pass(&mut self) {
        self.pass += 1;
        self.pass_running = true;
        self.pass_calls = 0;
        self.cursor = ScanCursor::default();
        self.last_pass_start = Some(Instant::now());
    }

    async fn ensure_connected(&mut self) -> Result<(), StorageError> {
        if self.conn.is_none() {
            let conn = self.settings.connect().await?;
            if self.settings.subscribe && self.subscriber.is_none() {
                let (tx, rx) = mpsc::channel(16);
                self.subscriber = Some(tokio::spawn(subscribe(conn.pubsub_client(), tx)));
                self.changes = Some(rx);
            }
            self.conn = Some(conn);
        }
        Ok(())
    }

    fn conn(&mut self) -> Result<&mut Conn, StorageError> {
        self.conn
            .as_mut()
            .ok_or_else(|| StorageError::Unsupported("not connected to Tyk's Redis".into()))
    }

    fn redis_error(&self, what: &str, e: &redis::RedisError) -> StorageError {
        let addr = self.conn.as_ref().map(Conn::addr).unwrap_or_default();
        self.settings.error(what, &addr, e)
    }

    /// Up to `steps` SCAN calls of the running pass, reading the sessions they name. Returns
    /// whether the pass completed (then sessions it did not meet are dropped).
    async fn scan_some(
        &mut self,
        steps: usize,
        out: &mut SweepOutcome,
    ) -> Result<bool, StorageError> {
        let batch = self.settings.batch;
        let mut remaining = steps;
        loop {
            let chunk = remaining.min(8);
            let mut names = Vec::new();
            let mut cursor = std::mem::take(&mut self.cursor);
            let r = self
                .conn()?
                .scan_steps(&mut cursor, SESSION_PATTERN, batch, chunk, &mut names)
                .await;
            self.cursor = cursor;
            let (done, calls) = r.map_err(|e| self.redis_error("SCAN", &e))?;
            self.pass_calls += calls;
            self.stats.round_trips += calls;
            self.read_sessions(&names, out).await?;
            remaining = remaining.saturating_sub(chunk);
            if done {
                self.finish_pass();
                return Ok(true);
            }
            if remaining == 0 {
                return Ok(false);
            }
        }
    }

    fn finish_pass(&mut self) {
        let pass = self.pass;
        self.keys.retain(|_, c| c.seen_pass >= pass);
        self.orgs.retain(|_, c| c.seen_pass >= pass);
        self.pass_running = false;
        self.last_pass_calls = self.pass_calls;
    }

    /// Reads the sessions stored under `names` (in `MGET` batches) into the cache. A name that
    /// no longer exists leaves the cache; a value that is not a session is an item error and
    /// keeps what was cached before.
    async fn read_sessions(
        &mut self,
        names: &[String],
        out: &mut SweepOutcome,
    ) -> Result<Vec<Arc<str>>, StorageError> {
        let wanted: Vec<&String> = names
            .iter()
            .filter(|n| layout::session_suffix(n).is_some() || layout::org_suffix(n).is_some())
            .collect();
        let mut found = Vec::new();
        for chunk in wanted.chunks(self.settings.batch) {
            let keys: Vec<String> = chunk.iter().map(|s| s.to_string()).collect();
            let values = self
                .conn()?
                .mget(&keys)
                .await
                .map_err(|e| self.redis_error("MGET", &e))?;
            self.stats.round_trips += 1;
            for (name, value) in keys.iter().zip(values) {
                if let Some(s) = self.store_session(name, value, out) {
                    found.push(s);
                }
            }
        }
        Ok(found)
    }

    /// Caches one session read under `name`; returns its suffix when it is cached now.
    fn store_session(
        &mut self,
        name: &str,
        value: Option<Vec<u8>>,
        out: &mut SweepOutcome,
    ) -> Option<Arc<str>> {
        let (suffix, is_org) = match (layout::session_suffix(name), layout::org_suffix(name)) {
            (Some(s), _) => (s, false),
            (None, Some(o)) => (o, true),
            (None, None) => return None,
        };
        let map = if is_org {
            &mut self.orgs
        } else {
            &mut self.keys
        };
        let Some(value) = value else {
            map.remove(suffix);
            return None;
        };
        let session = match SessionState::from_slice(&value) {
            Ok(s) => s,
            Err(e) => {
                out.item_errors
                    .push(SourceError::Storage(StorageError::BadSession {
                        name: display_name(name, is_org, self.mode),
                        detail: e.to_string(),
                    }));
                if let Some(c) = map.get_mut(suffix) {
                    c.seen_pass = self.pass;
                    return Some(Arc::from(suffix));
                }
                return None;
            }
        };
        let suffix: Arc<str> = Arc::from(suffix);
        let quotas = if is_org {
            org_quotas(&suffix, &session, self.mode)
        } else {
            let hashed = match self.mode {
                HashMode::Hashed => true,
                HashMode::Plain => false,
                HashMode::Unknown => keyhash::looks_like_hash(&suffix),
            };
            if layout::has_rate_limit_pattern(&session) {
                out.item_errors.push(SourceError::Storage(StorageError::Unsupported(format!(
                    "key {} counts its quota under meta_data.rate_limit_pattern, which only the gateway can expand — shown from the stored session",
                    display_name(name, false, self.mode)
                ))));
            }
            key_quotas(&suffix, hashed, &session)
        };
        let previous = map.insert(
            suffix.clone(),
            Cached {
                quotas,
                seen_pass: self.pass,
            },
        );
        // Keep the reported window ends of quotas that were already cached.
        if let (Some(prev), Some(now)) = (previous, map.get_mut(&suffix)) {
            for q in &mut now.quotas {
                if let Some(p) = prev.quotas.iter().find(|p| p.template.id == q.template.id) {
                    q.window = p.window;
                    q.last_used = p.last_used;
                }
            }
        }
        Some(suffix)
    }

    /// Reads the counters of the given keys and orgs (all of them for `None`) and returns their
    /// samples with live values. Values are read every time (`MGET` in batches, a few at once);
    /// a counter's PTTL only when its window end is not known yet, its value dropped (a new
    /// window), or the known end has passed — the end of a window does not move while it runs.
    async fn read_counters(
        &mut self,
        only: Option<&[Arc<str>]>,
        clock: &dyn Clock,
    ) -> Result<Vec<Sample>, StorageError> {
        let mut names: Vec<Arc<str>> = Vec::new();
        for q in select(&mut self.keys, &mut self.orgs, only) {
            names.extend(q.counter.iter().cloned());
            names.extend(q.alt_counter.iter().cloned());
        }
        let values = self.batched(&names, Read::Values).await?;
        let now_ms = clock.now_ms();
        let now_s = now_ms.div_euclid(1000);
        // Which counters need their PTTL (the index into `names` of the one each quota reads).
        let mut want = Vec::new();
        let mut i = 0;
        for q in select(&mut self.keys, &mut self.orgs, only) {
            let Some((at, used)) = q.chosen(&values, &mut i) else {
                continue;
            };
            let renewed = q.last_used.is_some_and(|last| used < last);
            let passed = q.window > 0 && now_s >= q.window;
            if q.window == WINDOW_UNKNOWN || renewed || passed {
                want.push(at);
            }
        }
        let want_names: Vec<Arc<str>> = want.iter().map(|&i| names[i].clone()).collect();
        let pttls = self.batched(&want_names, Read::Pttls).await?;
        let mut pttl_of = want.iter().zip(pttls.iter().map(|p| p.pttl));
        let mut next_pttl = pttl_of.next();
        let mut samples = Vec::with_capacity(names.len() + names.len() / 8);
        let mut i = 0;
        for q in select(&mut self.keys, &mut self.orgs, only) {
            let chosen = q.chosen(&values, &mut i);
            let pttl = match (chosen, next_pttl) {
                (Some((at, _)), Some((&w, p))) if w == at => {
                    next_pttl = pttl_of.next();
                    Some(p)
                }
                _ => None,
            };
            samples.push(q.live(chosen.map(|(_, used)| used), pttl, now_ms));
        }
        self.stats.counters = names.len();
        Ok(samples)
    }

    /// Values or PTTLs of `names` in batches of `batch`, `PARALLEL_BATCHES` at once, in order.
    async fn batched(
        &mut self,
        names: &[Arc<str>],
        what: Read,
    ) -> Result<Vec<Reading>, StorageError> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let conn = self.conn()?.clone();
        let owned: Vec<Vec<Arc<str>>> = names
            .chunks(self.settings.batch)
            .map(<[Arc<str>]>::to_vec)
            .collect();
        let mut batches =
            futures_util::stream::iter(owned.into_iter().enumerate().map(move |(i, chunk)| {
                let mut conn = conn.lane(i);
                async move {
                    let refs: Vec<&str> = chunk.iter().map(|s| &**s).collect();
                    match what {
                        Read::Values => conn.values(&refs).await.map(|v| {
                            v.into_iter()
                                .map(|value| Reading { value, pttl: 0 })
                                .collect::<Vec<_>>()
                        }),
                        Read::Pttls => conn.pttls(&refs).await.map(|v| {
                            v.into_iter()
                                .map(|pttl| Reading { value: None, pttl })
                                .collect::<Vec<_>>()
                        }),
                    }
                }
            }))
            .buffered(PARALLEL_BATCHES);
        let mut out = Vec::with_capacity(names.len());
        while let Some(r) = batches.next().await {
            let what = match what {
                Read::Values => "MGET of quota counters",
                Read::Pttls => "PTTL of quota counters",
            };
            let mut r = r.map_err(|e| self.redis_error(what, &e))?;
            self.stats.round_trips += 1;
            out.append(&mut r);
        }
        Ok(out)
    }

    /// The push path: re-reads the key a raw token is stored under (the token itself or its
    /// hash), so the samples carry the same id as the sweep's. Never `complete`.
    pub async fn poll_key(&mut self, token: &str, clock: &dyn Clock) -> SweepOutcome {
        let names = layout::token_suffixes(token, self.mode)
            .into_iter()
            .map(|s| format!("{}{s}", layout::SESSION_PREFIX))
            .collect();
        self.poll_names(names, clock).await
    }

    /// Re-reads keys named by `tyk.cluster.notifications` (a hash or a raw token each).
    pub async fn poll_suffixes(&mut self, items: Vec<String>, clock: &dyn Clock) -> SweepOutcome {
        let mut names = Vec::new();
        for item in items {
            if self.keys.contains_key(item.as_str()) {
                names.push(format!("{}{item}", layout::SESSION_PREFIX));
            } else {
                for s in layout::token_suffixes(&item, self.mode) {
                    names.push(format!("{}{s}", layout::SESSION_PREFIX));
                }
            }
        }
        names.sort();
        names.dedup();
        self.poll_names(names, clock).await
    }

    async fn poll_names(&mut self, names: Vec<String>, clock: &dyn Clock) -> SweepOutcome {
        let started = Instant::now();
        let mut out = SweepOutcome {
            started_ms: clock.now_ms(),
            ..SweepOutcome::default()
        };
        self.stats.round_trips = 0;
        let result = async {
            self.ensure_connected().await?;
            let found = self.read_sessions(&names, &mut out).await?;
            self.read_counters(Some(&found), clock).await
        }
        .await;
        match result {
            Ok(samples) => out.samples = samples,
            Err(e) => {
                out.item_errors.push(SourceError::Storage(e));
                self.conn = None;
            }
        }
        out.keys = names.len();
        out.requests = self.stats.round_trips;
        out.duration = started.elapsed();
        out
    }

    /// Keys named on `tyk.cluster.notifications` since the last call, coalesced. Pending
    /// forever without a subscription.
    pub async fn changed(&mut self) -> Vec<String> {
        match self.changes.as_mut() {
            Some(rx) => match rx.recv().await {
                Some(v) => v,
                None => {
                    self.changes = None;
                    std::future::pending().await
                }
            },
            None => std::future::pending().await,
        }
    }
}

/// How a session is named in messages: org ids as they are, keys masked.
fn display_name(name: &str, is_org: bool, mode: HashMode) -> String {
    if is_org {
        return name.to_string();
    }
    let suffix = layout::session_suffix(name).unwrap_or_default();
    let hashed =
        mode == HashMode::Hashed || (mode == HashMode::Unknown && keyhash::looks_like_hash(suffix));
    if hashed {
        format!(
            "{}{}",
            layout::SESSION_PREFIX,
            crate::quota::mask_hash(suffix)
        )
    } else {
        format!(
            "{}{}",
            layout::SESSION_PREFIX,
            crate::quota::mask_key(suffix)
        )
    }
}

fn key_quotas(suffix: &Arc<str>, hashed: bool, s: &SessionState) -> Vec<Quota> {
    let counters = if layout::has_rate_limit_pattern(s) {
        Vec::new()
    } else {
        layout::key_counters(suffix, s)
    };
    Sample::from_stored_session(suffix, hashed, s, 0)
        .into_iter()
        .map(|template| {
            let api = template.id.api();
            let counter = counters
                .iter()
                .find(|c| c.api_id.as_deref() == api)
                .map(|c| Arc::from(c.name.as_str()));
            Quota {
                template,
                counter,
                alt_counter: None,
                window: WINDOW_UNKNOWN,
                last_used: None,
            }
        })
        .collect()
}

fn org_quotas(org: &Arc<str>, s: &SessionState, mode: HashMode) -> Vec<Quota> {
    let template = Sample::from_org_session(org, s, 0);
    let (counter, alt_counter) = if s.quota_max > 0 {
        let mut c = layout::org_counters(org, mode).into_iter();
        (c.next().map(Arc::from), c.next().map(Arc::from))
    } else {
        (None, None)
    };
    vec![Quota {
        template,
        counter,
        alt_counter,
        window: WINDOW_UNKNOWN,
        last_used: None,
    }]
}

#[derive(Clone, Copy)]
enum Read {
    Values,
    Pttls,
}

#[derive(Clone, Copy)]
struct Reading {
    value: Option<i64>,
    pttl: i64,
}

/// `Quota::window`: not known yet; the counter has no expiry (the quota never renews).
const WINDOW_UNKNOWN: i64 = 0;
const WINDOW_NEVER: i64 = -1;

/// The quotas of the selected sessions (every one for `None`), in an order that is the same
/// on every call as long as the maps are not changed in between.
fn select<'a>(
    keys: &'a mut HashMap<Arc<str>, Cached>,
    orgs: &'a mut HashMap<Arc<str>, Cached>,
    only: Option<&[Arc<str>]>,
) -> Vec<&'a mut Quota> {
    match only {
        None => keys
            .values_mut()
            .chain(orgs.values_mut())
            .flat_map(|c| c.quotas.iter_mut())
            .collect(),
        Some(ids) => {
            let mut out = Vec::new();
            let mut chosen: Vec<&Arc<str>> = ids.iter().collect();
            chosen.sort();
            chosen.dedup();
            for (id, c) in keys.iter_mut().chain(orgs.iter_mut()) {
                if chosen.binary_search(&id).is_ok() {
                    out.extend(c.quotas.iter_mut());
                }
            }
            out
        }
    }
}

impl Quota {
    /// Of this quota's counters (advancing `i` over them in `values`), the one that exists:
    /// its index and value.
    fn chosen(&self, values: &[Reading], i: &mut usize) -> Option<(usize, i64)> {
        let mut found = None;
        for present in [self.counter.is_some(), self.alt_counter.is_some()] {
            if present {
                let at = *i;
                *i += 1;
                if found.is_none()
                    && let Some(v) = values.get(at).and_then(|r| r.value)
                {
                    found = Some((at, v));
                }
            }
        }
        found
    }

    /// The sample with the counter's live values: `used` (`None`: no counter, a window not
    /// started) and, when it was read, the PTTL.
    fn live(&mut self, used: Option<i64>, pttl_ms: Option<i64>, now_ms: i64) -> Sample {
        let mut s = self.template.clone();
        s.at_ms = now_ms;
        if self.counter.is_none() {
            return s;
        }
        let Some(used) = used else {
            // No counter: nothing used; the next request opens a window (the stored renews is
            // only a hint, the stored remaining a stale snapshot).
            s.quota_remaining = s.quota_max;
            self.window = WINDOW_UNKNOWN;
            self.last_used = None;
            return s;
        };
        s.quota_remaining = (s.quota_max - used.max(0)).max(0);
        self.last_used = Some(used);
        match pttl_ms {
            Some(p) if p > 0 => {
                let end = (now_ms + p + 999).div_euclid(1000);
                if self.window <= 0 || !same_period(self.window, end) {
                    self.window = end;
                }
            }
            Some(-1) => self.window = WINDOW_NEVER,
            Some(_) => self.window = WINDOW_UNKNOWN,
            None => {}
        }
        if self.window > 0 {
            s.quota_renews = self.window;
        }
        s
    }
}

/// Follows `tyk.cluster.notifications` and hands the keys of `KeySpaceUpdateNotification`s to
/// `tx`, coalesced; re-subscribes after a dropped connection.
async fn subscribe(client: redis::Client, tx: mpsc::Sender<Vec<String>>) {
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

    #[test]
    fn window_ends_stay_put_within_the_slack() {
        let s = SessionState::from_slice(br#"{"quota_max":100,"quota_renewal_rate":3600}"#)
            .expect("session");
        let mut q = key_quotas(&Arc::from("4b26bbf6"), true, &s).remove(0);
        assert!(q.counter.is_some());
        let a = q.live(Some(30), Some(600_400), 1_000_000_000);
        assert_eq!((a.quota_remaining, a.quota_renews), (70, 1_000_601));
        // 1.7 s later, read again: ceil lands a second earlier, the same period.
        let b = q.live(Some(130), Some(598_750), 1_000_001_700);
        assert_eq!((b.quota_remaining, b.quota_renews), (0, 1_000_601));
        // Not read again: the known end stays.
        let b2 = q.live(Some(131), None, 1_000_003_000);
        assert_eq!(b2.quota_renews, 1_000_601);
        // The counter expired and a new window started: a new period.
        let c = q.live(Some(1), Some(3_600_000), 1_000_700_000);
        assert_eq!((c.quota_remaining, c.quota_renews), (99, 1_004_300));
        // No counter: a fresh window, the stored hint.
        let d = q.live(None, None, 1_000_800_000);
        assert_eq!(d.quota_remaining, 100);
        assert!(a.meta.hashed && a.meta.masked == "4b26bbf6");
    }
}
