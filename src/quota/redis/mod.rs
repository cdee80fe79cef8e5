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

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::model::{Interner, Sample};
use super::poller::SweepOutcome;
use super::sessions::SessionMap;
use super::source::SourceError;
use crate::clock::Clock;
use crate::tyk::gateway::Gateway;
use crate::tyk::keyhash;
use crate::tyk::redis::conn::{Conn, RedisSettings, ScanCursor, StorageError};
use crate::tyk::redis::layout::{self, HashMode};
use crate::tyk::session::SessionState;

mod changes;
mod counters;

pub use changes::notified_keys;
use changes::subscribe;
use counters::{NOT_READ, Names, Quota, WINDOW_UNKNOWN, key_quotas, org_quotas};

/// `SCAN` pattern matching both `apikey-*` and `orgkey.*` in one pass (the few other names it
/// lets through are dropped by `layout`).
const SESSION_PATTERN: &str = "[ao][pr][ig]key[-.]*";

/// Pipelines of counter reads in flight at once.
const PARALLEL_BATCHES: usize = 4;

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
    keys: SessionMap<Cached>,
    orgs: SessionMap<Cached>,
    /// Shares org ids, API names and lists across the cached sessions.
    interner: Interner,
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
            keys: SessionMap::default(),
            orgs: SessionMap::default(),
            interner: Interner::default(),
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
            key_quotas(&suffix, hashed, &session, &mut self.interner)
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
                if let Some(p) = prev
                    .quotas
                    .iter()
                    .find(|p| p.meta.api_id() == q.meta.api_id())
                {
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
        let mut names = Names::default();
        let mut quotas = 0;
        for_each(&mut self.keys, &mut self.orgs, only, |suffix, _, q| {
            q.counter.push_names(suffix, &mut names);
            quotas += 1;
        });
        let values = self.batched(&names, Read::Values).await?.values();
        let now_ms = clock.now_ms();
        let now_s = now_ms.div_euclid(1000);
        // The counters whose PTTL is read (the index into `names` of the one each quota reads).
        let mut want = Vec::new();
        let mut i = 0;
        for_each(&mut self.keys, &mut self.orgs, only, |_, _, q| {
            let Some((at, used)) = q.chosen(&values, &mut i) else {
                return;
            };
            let renewed = q.last_used != NOT_READ && used < q.last_used;
            let passed = q.window > 0 && now_s >= q.window;
            if q.window == WINDOW_UNKNOWN || renewed || passed {
                want.push(at);
            }
        });
        let mut want_names = Names::default();
        for &w in &want {
            want_names.push(names.get(w));
        }
        drop(names);
        let pttls = self.batched(&want_names, Read::Pttls).await?.pttls();
        let mut pttl_of = want.iter().zip(pttls);
        let mut next_pttl = pttl_of.next();
        let mut samples = Vec::with_capacity(quotas);
        let mut i = 0;
        for_each(&mut self.keys, &mut self.orgs, only, |suffix, org, q| {
            let chosen = q.chosen(&values, &mut i);
            let pttl = match (chosen, next_pttl) {
                (Some((at, _)), Some((&w, p))) if w == at => {
                    next_pttl = pttl_of.next();
                    Some(p)
                }
                _ => None,
            };
            let id = q.id(suffix, org);
            samples.push(q.live(id, chosen.map(|(_, used)| used), pttl, now_ms));
        });
        self.stats.counters = values.len();
        Ok(samples)
    }

    /// Values or PTTLs of `names` in batches of `batch`, `PARALLEL_BATCHES` at once, in order.
    async fn batched(&mut self, names: &Names, what: Read) -> Result<Readings, StorageError> {
        let mut out = match what {
            Read::Values => Readings::Values(Vec::with_capacity(names.len())),
            Read::Pttls => Readings::Pttls(Vec::with_capacity(names.len())),
        };
        if names.len() == 0 {
            return Ok(out);
        }
        let conn = self.conn()?.clone();
        let batch = self.settings.batch.max(1);
        let starts = (0..names.len()).step_by(batch);
        let mut batches = futures_util::stream::iter(starts.enumerate().map(|(i, from)| {
            let mut conn = conn.lane(i);
            let chunk = names.slice(from, (from + batch).min(names.len()));
            async move {
                match what {
                    Read::Values => conn.values(&chunk).await.map(Readings::Values),
                    Read::Pttls => conn.pttls(&chunk).await.map(Readings::Pttls),
                }
            }
        }))
        .buffered(PARALLEL_BATCHES);
        let mut failed = None;
        while let Some(r) = batches.next().await {
            match (r, &mut out) {
                (Ok(Readings::Values(mut v)), Readings::Values(all)) => all.append(&mut v),
                (Ok(Readings::Pttls(mut v)), Readings::Pttls(all)) => all.append(&mut v),
                (Ok(_), _) => {}
                (Err(e), _) => {
                    failed = Some(e);
                    break;
                }
            }
            self.stats.round_trips += 1;
        }
        drop(batches);
        if let Some(e) = failed {
            let what = match what {
                Read::Values => "MGET of quota counters",
                Read::Pttls => "PTTL of quota counters",
            };
            return Err(self.redis_error(what, &e));
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

#[derive(Clone, Copy)]
enum Read {
    Values,
    Pttls,
}

enum Readings {
    Values(Vec<Option<i64>>),
    Pttls(Vec<i64>),
}

impl Readings {
    fn values(self) -> Vec<Option<i64>> {
        match self {
            Readings::Values(v) => v,
            Readings::Pttls(_) => Vec::new(),
        }
    }

    fn pttls(self) -> Vec<i64> {
        match self {
            Readings::Pttls(v) => v,
            Readings::Values(_) => Vec::new(),
        }
    }
}

/// Calls `f` with each quota of the selected sessions (every one for `None`), its session's
/// suffix and whether that is an org, in an order that is the same on every call as long as
/// the maps are not changed in between.
fn for_each(
    keys: &mut SessionMap<Cached>,
    orgs: &mut SessionMap<Cached>,
    only: Option<&[Arc<str>]>,
    mut f: impl FnMut(&Arc<str>, bool, &mut Quota),
) {
    let mut chosen: Vec<&Arc<str>> = only.map(|ids| ids.iter().collect()).unwrap_or_default();
    chosen.sort();
    chosen.dedup();
    let keys = keys.iter_mut().map(|e| (e, false));
    for ((id, c), org) in keys.chain(orgs.iter_mut().map(|e| (e, true))) {
        if only.is_none() || chosen.binary_search(&id).is_ok() {
            for q in &mut c.quotas {
                f(id, org, q);
            }
        }
    }
}
