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

use super::model::{Interner, QuotaId, QuotaMeta, Sample, same_period};
use super::poller::SweepOutcome;
use super::sessions::SessionMap;
use super::source::SourceError;
use crate::clock::Clock;
use crate::tyk::gateway::Gateway;
use crate::tyk::keyhash;
use crate::tyk::redis::conn::{Conn, RESUBSCRIBE_DELAY, RedisSettings, ScanCursor, StorageError};
use crate::tyk::redis::layout::{self, HashMode};
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

/// One quota of a cached session: what the session stores, plus what the counter reads left.
/// A million keys keep one or two of these each, so it holds no name of its own (its id and
/// counter names are built per sweep from the session's suffix) and shares its meta with the
/// board.
struct Quota {
    meta: QuotaMeta,
    quota_max: i64,
    /// The session's stored `quota_remaining` / `quota_renews`: shown as they are for quotas
    /// without a counter (unlimited, `rate_limit_pattern`); a hint otherwise.
    stored_remaining: i64,
    stored_renews: i64,
    renewal_rate: i64,
    counter: Counter,
    /// The window end (Unix s) last reported, kept while new readings stay within the period
    /// slack; `WINDOW_UNKNOWN` or `WINDOW_NEVER`.
    window: i64,
    /// The counter at the last sweep (`NOT_READ` before): a drop means a new window.
    last_used: i64,
}

/// Which counter a quota reads.
enum Counter {
    /// Unlimited, not enforced, or counted under a `rate_limit_pattern`: nothing to read.
    None,
    /// `quota-<suffix>`: the session's counter (also a per-API limit's with an empty scope).
    Session,
    /// `quota-<scope>-<suffix>`.
    Scoped(Arc<str>),
    /// An org's candidate names (two while the hash mode is unknown); the first that exists.
    Named(Box<[Box<str>]>),
}

impl Counter {
    fn count(&self) -> usize {
        match self {
            Counter::None => 0,
            Counter::Session | Counter::Scoped(_) => 1,
            Counter::Named(n) => n.len(),
        }
    }

    fn push_names(&self, suffix: &str, out: &mut Names) {
        use std::fmt::Write;
        let q = layout::QUOTA_PREFIX;
        match self {
            Counter::None => return,
            Counter::Session => {
                let _ = write!(out.text, "{q}{suffix}");
            }
            Counter::Scoped(scope) => {
                let _ = write!(out.text, "{q}{scope}-{suffix}");
            }
            Counter::Named(names) => {
                for n in names {
                    out.push(n);
                }
                return;
            }
        }
        out.ends.push(out.text.len());
    }
}

/// Counter names of one sweep, in one buffer: 1.5M names as separate strings would be 1.5M
/// allocations a sweep.
#[derive(Default)]
struct Names {
    text: String,
    ends: Vec<usize>,
}

impl Names {
    fn push(&mut self, name: &str) {
        self.text.push_str(name);
        self.ends.push(self.text.len());
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }

    fn slice(&self, from: usize, to: usize) -> Vec<&str> {
        (from..to).map(|i| self.get(i)).collect()
    }
}

/// `Quota::last_used` before the counter was read.
const NOT_READ: i64 = i64::MIN;

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

fn key_quotas(
    suffix: &Arc<str>,
    hashed: bool,
    s: &SessionState,
    interner: &mut Interner,
) -> Vec<Quota> {
    let counters = if layout::has_rate_limit_pattern(s) {
        Vec::new()
    } else {
        layout::key_counters(suffix, s)
    };
    Sample::from_stored_session(suffix.clone(), hashed, s, 0, interner)
        .into_iter()
        .map(|sample| {
            let api = sample.id.api();
            let counter = match counters.iter().find(|c| c.api_id.as_deref() == api) {
                None => Counter::None,
                Some(c) => match &c.scope {
                    None => Counter::Session,
                    Some(scope) => Counter::Scoped(interner.str(scope)),
                },
            };
            Quota::new(sample, counter)
        })
        .collect()
}

fn org_quotas(org: &Arc<str>, s: &SessionState, mode: HashMode) -> Vec<Quota> {
    let sample = Sample::from_org_session(org, s, 0);
    let counter = if s.quota_max > 0 {
        Counter::Named(
            layout::org_counters(org, mode)
                .into_iter()
                .map(String::into_boxed_str)
                .collect(),
        )
    } else {
        Counter::None
    };
    vec![Quota::new(sample, counter)]
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

/// `Quota::window`: not known yet; the counter has no expiry (the quota never renews).
const WINDOW_UNKNOWN: i64 = 0;
const WINDOW_NEVER: i64 = -1;

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

impl Quota {
    fn new(sample: Sample, counter: Counter) -> Quota {
        Quota {
            meta: sample.meta,
            quota_max: sample.quota_max,
            stored_remaining: sample.quota_remaining,
            stored_renews: sample.quota_renews,
            renewal_rate: sample.quota_renewal_rate,
            counter,
            window: WINDOW_UNKNOWN,
            last_used: NOT_READ,
        }
    }

    /// Of this quota's counters (advancing `i` over them in `values`), the one that exists:
    /// its index and value.
    fn chosen(&self, values: &[Option<i64>], i: &mut usize) -> Option<(usize, i64)> {
        let mut found = None;
        for _ in 0..self.counter.count() {
            let at = *i;
            *i += 1;
            if found.is_none()
                && let Some(v) = values.get(at).copied().flatten()
            {
                found = Some((at, v));
            }
        }
        found
    }

    /// The id of this quota of the session stored under `suffix` (what `Sample::from_*` gave).
    fn id(&self, suffix: &Arc<str>, org: bool) -> QuotaId {
        match (&self.meta.api, org) {
            (_, true) => QuotaId::Org(suffix.clone()),
            (Some(api), false) => QuotaId::KeyApi(suffix.clone(), api.api_id.clone()),
            (None, false) => QuotaId::Key(suffix.clone()),
        }
    }

    /// The sample with the counter's live values: `used` (`None`: no counter, a window not
    /// started) and, when it was read, the PTTL.
    fn live(
        &mut self,
        id: QuotaId,
        used: Option<i64>,
        pttl_ms: Option<i64>,
        now_ms: i64,
    ) -> Sample {
        let mut s = Sample {
            id,
            meta: self.meta.clone(),
            at_ms: now_ms,
            quota_max: self.quota_max,
            quota_remaining: self.stored_remaining,
            quota_renews: self.stored_renews,
            quota_renewal_rate: self.renewal_rate,
        };
        if matches!(self.counter, Counter::None) {
            return s;
        }
        let Some(used) = used else {
            // No counter: nothing used; the next request opens a window (the stored renews is
            // only a hint, the stored remaining a stale snapshot).
            s.quota_remaining = s.quota_max;
            self.window = WINDOW_UNKNOWN;
            self.last_used = NOT_READ;
            return s;
        };
        s.quota_remaining = (s.quota_max - used.max(0)).max(0);
        self.last_used = used;
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
        let mut q =
            key_quotas(&Arc::from("4b26bbf6"), true, &s, &mut Interner::default()).remove(0);
        assert!(matches!(q.counter, Counter::Session));
        let id = q.id(&Arc::from("4b26bbf6"), false);
        assert_eq!(id, QuotaId::Key(Arc::from("4b26bbf6")));
        let a = q.live(id.clone(), Some(30), Some(600_400), 1_000_000_000);
        assert_eq!((a.quota_remaining, a.quota_renews), (70, 1_000_601));
        // 1.7 s later, read again: ceil lands a second earlier, the same period.
        let b = q.live(id.clone(), Some(130), Some(598_750), 1_000_001_700);
        assert_eq!((b.quota_remaining, b.quota_renews), (0, 1_000_601));
        // Not read again: the known end stays.
        let b2 = q.live(id.clone(), Some(131), None, 1_000_003_000);
        assert_eq!(b2.quota_renews, 1_000_601);
        // The counter expired and a new window started: a new period.
        let c = q.live(id.clone(), Some(1), Some(3_600_000), 1_000_700_000);
        assert_eq!((c.quota_remaining, c.quota_renews), (99, 1_004_300));
        // No counter: a fresh window, the stored hint.
        let d = q.live(id.clone(), None, None, 1_000_800_000);
        assert_eq!(d.quota_remaining, 100);
        assert!(a.meta.hashed && a.meta.masked() == "4b26bbf6");
    }
}
