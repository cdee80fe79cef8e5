//! The durable core: exactly-once generation across restarts, the outbox state machine,
//! recovery, channel disabling, atomicity — each against a real SQLite file and a real
//! PostgreSQL server (`both_engines!`) — and clear errors for SQLite files that are not
//! databases, read-only or locked.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::Connection;
use tempfile::TempDir;
use tykwatch::config::{Config, WebhookConfig};
use tykwatch::monitor::{Monitor, MonitorSettings};
use tykwatch::notify::plan::{Channels, plan, plan_all};
use tykwatch::outbox::{
    Crossing, LedgerState, NotificationPayload, OutboxFilter, OutboxKind, OutboxState, quota_key,
};
use tykwatch::quota::{QuotaId, QuotaMeta, Sample, SessionMeta, mask_key};
use tykwatch::store::{DB_FILE, NewEvent, Store, StoreError, StoreOptions};

use crate::engines::Db;

/// A channel id from its stored text.
pub(crate) fn ch(s: &str) -> tykwatch::outbox::ChannelId {
    s.parse().unwrap()
}

pub(crate) const NOW: i64 = 1_800_000_000;
pub(crate) const NOW_MS: i64 = NOW * 1000;
pub(crate) const P1: i64 = NOW + 3600;

fn raw_key(i: usize) -> String {
    format!("5e9d9544a1dcd60001d0ed20{i:032x}")
}

fn sample(i: usize, used: i64, renews: i64) -> Sample {
    let key: Arc<str> = Arc::from(raw_key(i));
    Sample {
        id: QuotaId::Key(key.clone()),
        meta: QuotaMeta::from(SessionMeta {
            masked: mask_key(&key).into(),
            key,
            org_id: "org1".into(),
            alias: format!("key-{i}").into(),
            ..SessionMeta::default()
        }),
        at_ms: NOW_MS,
        quota_max: 100,
        quota_remaining: 100 - used,
        quota_renews: renews,
        quota_renewal_rate: 3600,
    }
}

/// `tyk` + two standard webhooks.
fn channels() -> Channels {
    let mut c = Config::default();
    c.monitor.configuration.target_path = "https://hooks.example.com/q".into();
    for name in ["ops", "audit"] {
        c.webhooks.push(WebhookConfig {
            name: name.into(),
            url: "https://hooks.example.com/w".into(),
            secret: Default::default(),
            enabled: true,
        });
    }
    Channels::from_config(&c)
}

pub(crate) fn monitor() -> Monitor {
    Monitor::new(MonitorSettings::new(true, true, true, &[80.0, 95.0]))
}

/// Crossings of `n` keys at 96 % in `period`, and their rows.
pub(crate) fn batch(
    m: &mut Monitor,
    n: usize,
    period: i64,
) -> (Vec<Crossing>, Vec<tykwatch::outbox::OutboxRow>) {
    let samples: Vec<Sample> = (0..n).map(|i| sample(i, 96, period)).collect();
    let crossings = m.evaluate_all(&samples, NOW_MS);
    let rows = plan_all(&crossings, &channels()).unwrap();
    (crossings, rows)
}

fn db(dir: &TempDir) -> PathBuf {
    dir.path().join(DB_FILE)
}

fn count(path: &Path, table: &str) -> i64 {
    let c = Connection::open(path).unwrap();
    c.query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn creates_a_private_wal_database_with_full_sync() {
    let dir = TempDir::new().unwrap();
    let data = dir.path().join("nested/data");
    let mut s = Store::open_in(&data).unwrap();
    let path = data.join(DB_FILE);
    assert_eq!(s.path(), Some(path.as_path()));
    let st = s.settings().unwrap();
    assert_eq!(st.journal_mode, "wal");
    assert_eq!(st.synchronous, 2, "FULL");
    assert!(st.foreign_keys);
    assert_eq!(st.busy_timeout_ms, 5000);
    let mut m = monitor();
    let (c, r) = batch(&mut m, 1, P1);
    s.record_crossings(&c, &r).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&data), 0o700);
        let wal = data.join(format!("{DB_FILE}-wal"));
        assert_eq!(mode(&wal), 0o600, "the WAL holds payloads too");
    }
    let raw = Connection::open(&path).unwrap();
    let v: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        v, 5,
        "ledger/outbox (1) + intake events (2) + outbox sources (3) + claims and instances (4) \
         + requests as sent (5)"
    );
}

#[cfg(unix)]
#[test]
fn an_existing_file_is_tightened_to_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let path = db(&dir);
    fs::write(&path, b"").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    Store::open(&path).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

fn exactly_once_generation_across_restarts(db: &Db) {
    let mut m = monitor();
    let (crossings, rows) = batch(&mut m, 50, P1);
    assert_eq!(crossings.len(), 50);
    assert_eq!(rows.len(), 150);
    let last_seq = crossings.iter().map(|c| c.sequence).max().unwrap();
    {
        let mut s = db.open();
        assert_eq!(s.record_crossings(&crossings, &rows).unwrap().count(), 50);
        // The same crossings again: nothing new, not even their outbox rows.
        assert_eq!(s.record_crossings(&crossings, &rows).unwrap().count(), 0);
        assert_eq!(s.counts().unwrap().pending, 150);
        assert_eq!(s.last_sequence().unwrap(), last_seq);
    } // "crash": the store goes away, only the file remains

    let mut s = db.open();
    assert_eq!(db.count("ledger"), 100, "50 fired + 50 covered");
    assert_eq!(db.count("outbox"), 150);

    // Restart: warm a new monitor from the ledger; the same samples generate nothing.
    let mut warm = monitor();
    warm.warm(
        &s.load_ledger_since(NOW).unwrap(),
        s.last_sequence().unwrap(),
    );
    let (again, again_rows) = batch(&mut warm, 50, P1);
    assert!(again.is_empty() && again_rows.is_empty());
    assert_eq!(warm.next_sequence(), last_seq + 1);

    // Even a cold monitor (cache lost) cannot create a second notification: the store is
    // the arbiter.
    let mut cold = monitor();
    let (dup, dup_rows) = batch(&mut cold, 50, P1);
    assert_eq!(dup.len(), 50);
    assert_eq!(s.record_crossings(&dup, &dup_rows).unwrap().count(), 0);
    assert_eq!(db.count("outbox"), 150);

    // A renewal re-arms: new period, new rows.
    let (renewed, renewed_rows) = batch(&mut warm, 50, P1 + 3600);
    assert_eq!(
        s.record_crossings(&renewed, &renewed_rows).unwrap().count(),
        50
    );
    assert_eq!(db.count("outbox"), 300);
    assert!(renewed.iter().all(|c| c.sequence > last_seq));
    s.integrity_check().unwrap();
}

fn ledger_records_fired_and_covered(db: &Db) {
    let mut s = db.open();
    let mut m = monitor();
    let (c, r) = batch(&mut m, 1, P1);
    s.record_crossings(&c, &r).unwrap();
    let qk = quota_key(&sample(0, 0, P1).id);
    assert_eq!(s.fired_thresholds(&qk, P1).unwrap(), vec![80.0, 95.0]);
    assert!(s.fired_thresholds(&qk, P1 + 1).unwrap().is_empty());
    let ledger = s.load_ledger_since(NOW).unwrap();
    let states: Vec<(f64, LedgerState)> = ledger.iter().map(|e| (e.threshold, e.state)).collect();
    assert_eq!(
        states,
        [(80.0, LedgerState::Covered), (95.0, LedgerState::Fired)]
    );
    assert_eq!(ledger[0].usage_pct, 96.0);
    assert_eq!(ledger[0].fired_at, NOW_MS);
    assert!(s.load_ledger_since(P1 + 1).unwrap().is_empty());
    // the raw key is nowhere in the ledger
    assert!(!ledger[0].quota_key.contains(&raw_key(0)));
}

fn outbox_state_machine(db: &Db) {
    let mut s = db.open();
    let mut m = monitor();
    let (c, r) = batch(&mut m, 2, P1);
    s.record_crossings(&c, &r).unwrap();
    assert_eq!(
        s.due(NOW_MS - 1, 100).unwrap().len(),
        0,
        "not due before created"
    );
    let due = s.due(NOW_MS, 100).unwrap();
    assert_eq!(due.len(), 6);
    assert!(due.windows(2).all(|w| w[0].sequence <= w[1].sequence));
    assert_eq!(s.due(NOW_MS, 2).unwrap().len(), 2);
    let a = &due[0].idem_key;
    let b = &due[1].idem_key;
    let d = &due[2].idem_key;

    // a: inflight → retry later → delivered
    assert!(s.mark_inflight(a).unwrap());
    assert!(
        !s.mark_inflight(a).unwrap(),
        "a claimed row cannot be claimed twice"
    );
    assert!(
        s.mark_retry(a, 1, NOW_MS + 5000, Some(503), "HTTP 503")
            .unwrap()
    );
    assert!(!s.due(NOW_MS, 100).unwrap().iter().any(|x| &x.idem_key == a));
    let later = s.due(NOW_MS + 5000, 100).unwrap();
    let row = later.iter().find(|x| &x.idem_key == a).unwrap();
    assert_eq!((row.attempts, row.last_status), (1, Some(503)));
    assert_eq!(row.last_error.as_deref(), Some("HTTP 503"));
    assert!(s.mark_inflight(a).unwrap());
    assert!(s.mark_delivered(a, Some(204), NOW_MS + 6000).unwrap());
    let row = s.get(a).unwrap().unwrap();
    assert_eq!(row.state, OutboxState::Delivered);
    assert_eq!((row.attempts, row.last_status), (2, Some(204)));
    assert_eq!(row.delivered_at, Some(NOW_MS + 6000));
    assert_eq!(row.last_error, None);
    assert!(
        !s.mark_delivered(a, Some(204), NOW_MS).unwrap(),
        "delivered is final"
    );
    assert!(!s.mark_retry(a, 9, NOW_MS, None, "x").unwrap());
    assert!(
        !s.resend(a, NOW_MS).unwrap(),
        "only failed/dead rows are resent"
    );

    // b: permanent failure → manual resend → pending with attempts reset
    assert!(s.mark_inflight(b).unwrap());
    assert!(
        s.mark_failed(b, 3, Some(400), "HTTP 400 Bad Request")
            .unwrap()
    );
    assert!(!s.mark_inflight(b).unwrap());
    assert!(
        !s.mark_delivered(b, Some(200), NOW_MS).unwrap(),
        "failed is not retried"
    );
    assert!(s.resend(b, NOW_MS + 10).unwrap());
    let row = s.get(b).unwrap().unwrap();
    assert_eq!(
        (row.state, row.attempts, row.next_attempt_at),
        (OutboxState::Pending, 0, NOW_MS + 10)
    );

    // d: schedule exhausted → dead → resend
    assert!(s.mark_dead(d, 8, None, "connection refused").unwrap());
    assert_eq!(s.get(d).unwrap().unwrap().state, OutboxState::Dead);
    let counts = s.counts().unwrap();
    assert_eq!(
        (
            counts.pending,
            counts.inflight,
            counts.delivered,
            counts.failed,
            counts.dead
        ),
        (4, 0, 1, 0, 1)
    );
    assert!(s.resend(d, NOW_MS).unwrap());
    assert_eq!(s.counts().unwrap().dead, 0);

    // claim_due hands each row out once
    let claimed = s.claim_due(NOW_MS + 100, 100).unwrap();
    assert_eq!(claimed.len(), 5);
    assert!(claimed.iter().all(|r| r.state == OutboxState::Inflight));
    assert!(s.claim_due(NOW_MS + 100, 100).unwrap().is_empty());
    assert!(s.get("no-such-key").unwrap().is_none());
    assert!(!s.mark_inflight("no-such-key").unwrap());
    s.integrity_check().unwrap();
}

fn recover_inflight_after_a_crash(db: &Db) {
    let mut m = monitor();
    let (c, r) = batch(&mut m, 3, P1);
    let ids: Vec<String> = {
        let mut s = db.open();
        s.record_crossings(&c, &r).unwrap();
        let claimed = s.claim_due(NOW_MS, 4).unwrap();
        s.mark_delivered(&claimed[0].idem_key, Some(200), NOW_MS)
            .unwrap();
        claimed.iter().map(|r| r.idem_key.clone()).collect()
    }; // process dies with three sends in flight
    let s = db.open();
    assert_eq!(s.counts().unwrap().inflight, 3);
    assert_eq!(s.recover_inflight().unwrap(), 3);
    assert_eq!(s.recover_inflight().unwrap(), 0);
    let due: Vec<String> = s
        .due(NOW_MS, 100)
        .unwrap()
        .into_iter()
        .map(|r| r.idem_key)
        .collect();
    assert_eq!(due.len(), 8);
    // The recovered rows keep their idempotency key: a receiver can drop the duplicate.
    assert!(ids[1..].iter().all(|id| due.contains(id)));
    assert!(!due.contains(&ids[0]));
}

fn disable_channel_fails_its_pending_rows_only(db: &Db) {
    let mut s = db.open();
    let mut m = monitor();
    let (c, r) = batch(&mut m, 4, P1);
    s.record_crossings(&c, &r).unwrap();
    // one ops row is in flight when the 410 arrives
    let ops = OutboxFilter {
        channel_id: Some(ch("webhook:ops")),
        ..OutboxFilter::default()
    };
    let first = s.list_outbox(&ops, 1).unwrap().remove(0);
    assert!(s.mark_inflight(&first.idem_key).unwrap());

    assert_eq!(
        s.disable_channel(&ch("webhook:ops"), "HTTP 410 Gone", NOW_MS)
            .unwrap(),
        3
    );
    let rows = s.list_outbox(&ops, 100).unwrap();
    assert_eq!(
        rows.iter()
            .filter(|r| r.state == OutboxState::Failed)
            .count(),
        3
    );
    assert!(
        rows.iter()
            .filter(|r| r.state == OutboxState::Failed)
            .all(|r| { r.last_error.as_deref() == Some("channel disabled: HTTP 410 Gone") })
    );
    assert_eq!(
        s.get(&first.idem_key).unwrap().unwrap().state,
        OutboxState::Inflight
    );
    let others = s.due(NOW_MS, 100).unwrap();
    assert_eq!(others.len(), 8);
    assert!(others.iter().all(|r| r.channel_id != "webhook:ops"));
    let disabled = s.disabled_channels().unwrap();
    assert_eq!(disabled.len(), 1);
    assert_eq!(
        (
            disabled[0].channel_id.to_string().as_str(),
            disabled[0].reason.as_str(),
            disabled[0].disabled_at
        ),
        ("webhook:ops", "HTTP 410 Gone", NOW_MS)
    );

    // New crossings for a disabled channel are recorded as failed (visible, resendable).
    let (c2, r2) = batch(&mut m, 4, P1 + 60);
    s.record_crossings(&c2, &r2).unwrap();
    let failed = OutboxFilter {
        state: Some(OutboxState::Failed),
        ..ops.clone()
    };
    assert_eq!(s.list_outbox(&failed, 100).unwrap().len(), 7);

    assert!(s.enable_channel(&ch("webhook:ops")).unwrap());
    assert!(!s.enable_channel(&ch("webhook:ops")).unwrap());
    assert!(s.disabled_channels().unwrap().is_empty());
    let (c3, r3) = batch(&mut m, 1, P1 + 120);
    s.record_crossings(&c3, &r3).unwrap();
    let pending_ops = OutboxFilter {
        state: Some(OutboxState::Pending),
        ..ops
    };
    assert_eq!(s.list_outbox(&pending_ops, 100).unwrap().len(), 1);
}

fn list_outbox_filters_newest_first_and_payload_round_trips(db: &Db) {
    let mut s = db.open();
    let mut m = monitor();
    let (c, r) = batch(&mut m, 3, P1);
    s.record_crossings(&c, &r).unwrap();
    let all = s.list_outbox(&OutboxFilter::default(), 100).unwrap();
    assert_eq!(all.len(), 9);
    assert!(all.windows(2).all(|w| w[0].sequence >= w[1].sequence));
    // Paging after the last row of each page gives every row once, in the same order (rows of
    // one crossing share a sequence: the cursor is the sequence and the key).
    let mut paged: Vec<String> = Vec::new();
    loop {
        let after = paged.last().map(|k| {
            let row = all.iter().find(|r| &r.idem_key == k).unwrap();
            (row.sequence, row.idem_key.clone())
        });
        let page = s
            .list_outbox(
                &OutboxFilter {
                    after,
                    ..OutboxFilter::default()
                },
                2,
            )
            .unwrap();
        if page.is_empty() {
            break;
        }
        paged.extend(page.into_iter().map(|r| r.idem_key));
    }
    let keys: Vec<String> = all.iter().map(|r| r.idem_key.clone()).collect();
    assert_eq!(paged, keys);
    let qk = c[1].quota_key.to_string();
    let one = s
        .list_outbox(
            &OutboxFilter {
                quota_key: Some(qk.clone()),
                ..OutboxFilter::default()
            },
            100,
        )
        .unwrap();
    assert_eq!(one.len(), 3);
    let tyk = one.iter().find(|r| r.channel_id == "tyk").unwrap();
    assert_eq!(tyk.kind(), OutboxKind::TykWebhook);
    let p = NotificationPayload::from_json(&tyk.payload_json).unwrap();
    assert_eq!(p.key.as_deref(), Some(raw_key(1).as_str()));
    assert_eq!(
        (p.threshold, p.covered.clone(), p.sequence),
        (95.0, vec![80.0], c[1].sequence)
    );
    assert_eq!(p.quota_key, qk);
    assert!(
        !format!("{tyk:?}").contains(&raw_key(1)),
        "Debug leaves the payload out"
    );
    assert_eq!(s.list_outbox(&OutboxFilter::default(), 2).unwrap().len(), 2);
}

fn integrity_holds_after_many_writes(db: &Db) {
    let mut s = db.open();
    let mut m = monitor();
    for round in 0..20 {
        let (c, r) = batch(&mut m, 250, P1 + round * 3600);
        assert_eq!(s.record_crossings(&c, &r).unwrap().count(), 250);
        for (i, row) in s.claim_due(NOW_MS, 400).unwrap().iter().enumerate() {
            match i % 4 {
                0 => s.mark_delivered(&row.idem_key, Some(200), NOW_MS).unwrap(),
                1 => s
                    .mark_retry(&row.idem_key, 1, NOW_MS + 5000, Some(500), "HTTP 500")
                    .unwrap(),
                2 => s.mark_dead(&row.idem_key, 8, None, "timeout").unwrap(),
                _ => s
                    .mark_failed(&row.idem_key, 3, Some(404), "HTTP 404")
                    .unwrap(),
            };
        }
    }
    assert!(s.purge_delivered(NOW_MS + 1).unwrap() > 0);
    s.integrity_check().unwrap();
    drop(s);
    let s = db.open();
    s.integrity_check().unwrap();
    assert_eq!(db.count("ledger"), 20 * 250 * 2);
    assert_eq!(s.counts().unwrap().delivered, 0);
}

fn a_transaction_failing_half_way_leaves_nothing(db: &Db) {
    let mut s = db.open();
    let mut m = monitor();
    let (c, r) = batch(&mut m, 10, P1);
    // Inject a failure at the 8th crossing's outbox insert, after 7 crossings were written.
    let victim = c[7].quota_key.to_string();
    db.fail_outbox_inserts_of(&victim);
    let err = s.record_crossings(&c, &r).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(db.count("ledger"), 0);
    assert_eq!(db.count("outbox"), 0);
    assert_eq!(s.last_sequence().unwrap(), 0);

    // The caller rolls the monitor back; once the fault is gone the crossings are re-detected.
    m.rollback(&c);
    db.clear_fault();
    let (c2, r2) = batch(&mut m, 10, P1);
    assert_eq!(s.record_crossings(&c2, &r2).unwrap().count(), 10);
    assert_eq!(db.count("outbox"), 30);
}

fn invalid_batches_are_rejected_before_writing(db: &Db) {
    let mut s = db.open();
    let mut m = monitor();
    let (c, r) = batch(&mut m, 3, P1);
    // a row without its crossing
    let err = s.record_crossings(&c[..2], &r).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    let mut bad = c.clone();
    bad[1].threshold = f64::NAN;
    assert!(matches!(
        s.record_crossings(&bad, &[]).unwrap_err(),
        StoreError::Invalid(_)
    ));
    assert_eq!(db.count("ledger"), 0);
    assert_eq!(db.count("outbox"), 0);
}

/// Asserts the error names the file and tells what to do.
fn assert_clear(err: &StoreError, path: &Path, hint: &str) {
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "names the file: {msg}"
    );
    assert!(msg.contains(hint), "says what to do ({hint}): {msg}");
}

#[test]
fn a_file_that_is_not_a_database_gives_a_clear_error() {
    let dir = TempDir::new().unwrap();
    let path = db(&dir);
    let noise: Vec<u8> = (0..8192u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for garbage in [b"hello, not a database\n".to_vec(), noise] {
        fs::write(&path, &garbage).unwrap();
        let err = Store::open(&path).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert_clear(&err, &path, "Move the file aside");
        assert_eq!(
            fs::read(&path).unwrap(),
            garbage,
            "the file is left untouched"
        );
    }
}

#[test]
fn another_programs_sqlite_file_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = db(&dir);
    Connection::open(&path)
        .unwrap()
        .execute_batch("CREATE TABLE notes (body TEXT); INSERT INTO notes VALUES ('mine');")
        .unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert_clear(&err, &path, "another program");
    assert_eq!(count(&path, "notes"), 1);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = db(&dir);
    drop(Store::open(&path).unwrap());
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99")
        .unwrap();
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    assert_clear(&err, &path, "upgrade tykwatch");
}

#[test]
fn corrupted_pages_are_reported_not_panicked_on() {
    let dir = TempDir::new().unwrap();
    let path = db(&dir);
    {
        let mut s = Store::open(&path).unwrap();
        let mut m = monitor();
        let (c, r) = batch(&mut m, 300, P1);
        s.record_crossings(&c, &r).unwrap();
    }
    let mut bytes = fs::read(&path).unwrap();
    assert!(bytes.len() > 16 * 4096, "several pages");
    for b in &mut bytes[8 * 4096..12 * 4096] {
        *b = 0xA5;
    }
    fs::write(&path, &bytes).unwrap();
    let err = match Store::open(&path) {
        Err(e) => e,
        Ok(s) => s.integrity_check().unwrap_err(),
    };
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert_clear(&err, &path, "restore a backup");
}

/// `chattr +i` for the test's lifetime: root ignores permission bits, not the immutable flag.
struct Immutable(PathBuf);

impl Immutable {
    fn set(path: &Path) -> Option<Immutable> {
        let ok = Command::new("chattr")
            .arg("+i")
            .arg(path)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Immutable(path.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).output();
    }
}

#[cfg(unix)]
fn make_read_only(path: &Path, mode: u32) -> Option<Option<Immutable>> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    let probe = if path.is_dir() {
        let p = path.join(".probe");
        let ok = fs::write(&p, b"").is_ok();
        let _ = fs::remove_file(p);
        ok
    } else {
        fs::OpenOptions::new().write(true).open(path).is_ok()
    };
    if !probe {
        return Some(None); // permission bits are enforced (not root)
    }
    match Immutable::set(path) {
        Some(g) => Some(Some(g)),
        None => {
            eprintln!("skipped: running as root without chattr, cannot make {path:?} read-only");
            None
        }
    }
}

#[cfg(unix)]
#[test]
fn a_read_only_file_gives_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let path = db(&dir);
    drop(Store::open(&path).unwrap());
    let Some(guard) = make_read_only(&path, 0o400) else {
        return;
    };
    let err = Store::open(&path).unwrap_err();
    drop(guard);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(err, StoreError::Access { .. }), "{err}");
    assert_clear(&err, &path, "check the permissions");
}

#[cfg(unix)]
#[test]
fn a_read_only_directory_gives_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let ro = dir.path().join("ro");
    fs::create_dir(&ro).unwrap();
    let existing = dir.path().join("existing");
    fs::create_dir(&existing).unwrap();
    drop(Store::open(existing.join(DB_FILE)).unwrap());

    for d in [&ro, &existing] {
        let path = d.join(DB_FILE);
        let Some(guard) = make_read_only(d, 0o500) else {
            return;
        };
        let res = Store::open(&path);
        drop(guard);
        fs::set_permissions(d, fs::Permissions::from_mode(0o700)).unwrap();
        let err = res.unwrap_err();
        assert!(matches!(err, StoreError::Access { .. }), "{err}");
        assert_clear(&err, &path, "check the permissions");
    }
}

#[test]
fn a_data_dir_that_is_a_file_gives_a_clear_error() {
    let dir = TempDir::new().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"x").unwrap();
    let err = Store::open_in(&file).unwrap_err();
    assert!(matches!(err, StoreError::Access { .. }), "{err}");
    assert_clear(&err, &file, "--data-dir");
    let err = Store::open(file.join(DB_FILE)).unwrap_err();
    assert_clear(&err, &file.join(DB_FILE), "--data-dir");
}

#[test]
fn a_locked_database_gives_a_clear_error() {
    let dir = TempDir::new().unwrap();
    let path = db(&dir);
    drop(Store::open(&path).unwrap());
    let short = StoreOptions {
        busy_timeout: Duration::from_millis(100),
    };

    // Another writer holds the write lock: reads work, writes fail after the busy timeout.
    let other = Connection::open(&path).unwrap();
    other.busy_timeout(Duration::from_millis(100)).unwrap();
    other
        .execute_batch("BEGIN IMMEDIATE; INSERT INTO channels (channel_id) VALUES ('x');")
        .unwrap();
    let mut s = Store::open_with(&path, short).unwrap();
    let mut m = monitor();
    let (c, r) = batch(&mut m, 2, P1);
    let err = s.record_crossings(&c, &r).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert_clear(&err, &path, "another tykwatch");
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(s.record_crossings(&c, &r).unwrap().count(), 2);
    drop(s);

    // A process holding the file exclusively: even opening fails, clearly.
    other
        .execute_batch("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; COMMIT;")
        .unwrap();
    let err = Store::open_with(&path, short).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    assert_clear(&err, &path, "another tykwatch");
}

fn payload_planned_for_one_crossing_lands_in_one_transaction(db: &Db) {
    let mut s = db.open();
    let mut m = monitor();
    let smp = sample(7, 85, P1);
    let c = m.evaluate(&smp, NOW_MS);
    let rows = plan(&c[0], &channels()).unwrap();
    assert_eq!(s.record_crossings(&c, &rows).unwrap().count(), 1);
    let ids: Vec<String> = s
        .due(NOW_MS, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.idem_key)
        .collect();
    let qk = quota_key(&smp.id);
    for ch in ["tyk", "webhook:ops", "webhook:audit"] {
        assert!(ids.contains(&format!("q:{qk}:{P1}:80:{ch}")), "{ids:?}");
    }
}

#[test]
fn store_and_monitor_can_move_to_a_db_thread_or_task() {
    fn send<T: Send + 'static>() {}
    send::<Store>();
    send::<Monitor>();
    send::<Crossing>();
    send::<StoreError>();
}

pub(crate) fn new_event(i: i64) -> NewEvent {
    NewEvent {
        received_at: NOW_MS + i,
        kind: "quota_trigger".into(),
        event: "TriggerExceeded".into(),
        org_id: "org1".into(),
        summary: format!(
            "quota trigger 80% reached: key {}",
            mask_key(&raw_key(i as usize))
        ),
        masked_key: mask_key(&raw_key(i as usize)),
        payload_json: format!("{{\"event\":\"TriggerExceeded\",\"n\":{i}}}"),
    }
}

fn events_insert_list_count_and_purge(db: &Db) {
    let mut s = db.open();
    assert_eq!(s.count_events().unwrap(), 0);
    assert!(s.list_events(10).unwrap().is_empty());
    assert!(s.insert_events(&[]).unwrap().is_empty());

    let first = s.insert_event(&new_event(0)).unwrap();
    let batch: Vec<NewEvent> = (1..=99).map(new_event).collect();
    let ids = s.insert_events(&batch).unwrap();
    assert_eq!(ids.len(), 99);
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "input order");
    assert_eq!(ids[0], first + 1);
    assert_eq!(s.count_events().unwrap(), 100);
    assert_eq!(
        db.count("events"),
        100,
        "committed: visible to another connection"
    );

    let newest = s.list_events(3).unwrap();
    assert_eq!(newest.len(), 3);
    assert_eq!(newest[0].id, ids[98], "newest first");
    assert_eq!(newest[0].received_at, NOW_MS + 99);
    assert_eq!(newest[0].payload_json, new_event(99).payload_json);
    assert_eq!(newest[0].masked_key, mask_key(&raw_key(99)));
    assert_eq!(s.list_events(1000).unwrap().len(), 100);

    // Retention: ids are never reused (AUTOINCREMENT), even when the newest rows go.
    assert_eq!(s.purge_events(NOW_MS + 1000).unwrap(), 100);
    assert_eq!(s.count_events().unwrap(), 0);
    let next = s.insert_event(&new_event(5)).unwrap();
    assert!(next > ids[98], "{next} reuses an id");
    drop(s);
    let s = db.open();
    assert_eq!(s.list_events(10).unwrap()[0].id, next);
    s.integrity_check().unwrap();
}

#[test]
fn a_locked_event_batch_writes_nothing() {
    let dir = TempDir::new().unwrap();
    let path = db(&dir);
    let mut s = Store::open(&path).unwrap();
    s.insert_event(&new_event(0)).unwrap();
    // Another connection holds the write lock: the whole batch fails, clearly, and no row lands.
    let other = Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    drop(s);
    let mut s = Store::open_with(
        &path,
        StoreOptions {
            busy_timeout: Duration::from_millis(50),
        },
    )
    .unwrap();
    let batch: Vec<NewEvent> = (1..10).map(new_event).collect();
    let err = s.insert_events(&batch).unwrap_err();
    assert!(matches!(err, StoreError::Locked { .. }), "{err}");
    other.execute_batch("ROLLBACK").unwrap();
    assert_eq!(s.count_events().unwrap(), 1);
}

#[test]
fn a_version_1_database_gains_the_events_table_and_keeps_its_data() {
    let dir = TempDir::new().unwrap();
    let path = db(&dir);
    let mut s = Store::open(&path).unwrap();
    let mut m = monitor();
    let (c, r) = batch(&mut m, 3, P1);
    s.record_crossings(&c, &r).unwrap();
    drop(s);
    let ledger = count(&path, "ledger");
    assert!(ledger >= 3);
    // What a database written before the intake existed looks like.
    let raw = Connection::open(&path).unwrap();
    raw.execute_batch("DROP TABLE events; DROP TABLE instances; PRAGMA user_version = 1;")
        .unwrap();
    drop(raw);

    let mut s = Store::open(&path).unwrap();
    assert_eq!(count(&path, "ledger"), ledger);
    assert_eq!(s.count_events().unwrap(), 0);
    s.insert_event(&new_event(1)).unwrap();
    assert_eq!(s.count_events().unwrap(), 1);
    let v: i64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, 5);
}

/// `[store] retention`: delivered and dead rows and events of more than the retention go, with
/// the ledger rows of ended periods no row refers to; pending and failed rows stay (a failed
/// `tyk` row without its raw key), and so does their ledger. A delivered `tyk` row loses its
/// raw key at once.
fn retention_purges_finished_rows_and_ended_periods(db: &Db) {
    let mut s = db.open();
    let mut m = monitor();
    let (c, r) = batch(&mut m, 2, P1);
    s.record_crossings(&c, &r).unwrap();
    s.insert_event(&new_event(1)).unwrap();
    let ledger = db.count("ledger");
    assert!(ledger >= 4, "fired and covered rows of two keys: {ledger}");
    let rows = s.due(NOW_MS, 100).unwrap();
    let of = |i: usize, channel: &str| {
        let key = quota_key(&QuotaId::Key(Arc::from(raw_key(i))));
        rows.iter()
            .find(|r| r.channel_id == ch(channel) && r.source.quota_key() == Some(key.as_str()))
            .unwrap()
            .idem_key
            .clone()
    };
    let has_key = |s: &Store, id: &str| {
        let row = s.get(id).unwrap().unwrap();
        let p = NotificationPayload::from_json(&row.payload_json).unwrap();
        assert!(!p.key_masked.is_empty(), "the masked key stays");
        p.key.is_some()
    };
    // Key 0: everything finished. Key 1: one row still pending, one failed.
    assert!(has_key(&s, &of(0, "tyk")));
    assert!(
        s.mark_delivered(&of(0, "tyk"), Some(200), NOW_MS + 1000)
            .unwrap()
    );
    assert!(
        !has_key(&s, &of(0, "tyk")),
        "a delivered tyk row keeps no raw key"
    );
    assert!(
        s.mark_delivered(&of(0, "webhook:ops"), Some(200), NOW_MS + 1000)
            .unwrap()
    );
    assert!(
        s.mark_dead(&of(0, "webhook:audit"), 9, Some(503), "exhausted")
            .unwrap()
    );
    assert!(
        s.mark_failed(&of(1, "tyk"), 1, Some(400), "bad request")
            .unwrap()
    );
    assert!(
        s.mark_delivered(&of(1, "webhook:ops"), Some(200), NOW_MS + 1000)
            .unwrap()
    );

    // Nothing is old enough yet.
    let keep = Duration::from_secs(30 * 86_400);
    assert!(
        s.apply_retention(NOW_MS + 3_600_000, keep)
            .unwrap()
            .is_empty()
    );
    assert!(has_key(&s, &of(1, "tyk")));

    // A month after the period ended.
    let later = (P1 + 31 * 86_400) * 1000;
    let purged = s.apply_retention(later, keep).unwrap();
    assert_eq!(
        (
            purged.delivered,
            purged.dead,
            purged.events,
            purged.scrubbed
        ),
        (3, 1, 1, 1),
        "{purged:?}"
    );
    for gone in [
        of(0, "tyk"),
        of(0, "webhook:ops"),
        of(0, "webhook:audit"),
        of(1, "webhook:ops"),
    ] {
        assert!(s.get(&gone).unwrap().is_none(), "{gone} kept");
    }
    assert_eq!(
        s.get(&of(1, "tyk")).unwrap().unwrap().state,
        OutboxState::Failed
    );
    assert!(
        !has_key(&s, &of(1, "tyk")),
        "an old failed tyk row loses its raw key"
    );
    assert_eq!(
        s.get(&of(1, "webhook:audit")).unwrap().unwrap().state,
        OutboxState::Pending
    );
    assert_eq!(s.count_events().unwrap(), 0);
    // Key 1's fired row stays (its rows refer to it); the rest of the ended period goes.
    assert_eq!(db.count("ledger"), 1);
    assert_eq!(purged.ledger as i64, ledger - 1);
    assert_eq!(
        s.fired_thresholds(&quota_key(&QuotaId::Key(Arc::from(raw_key(1)))), P1)
            .unwrap(),
        vec![95.0]
    );
    s.integrity_check().unwrap();
    // Again: nothing more to do.
    assert!(s.apply_retention(later, keep).unwrap().is_empty());
}

crate::both_engines!(
    retention_purges_finished_rows_and_ended_periods,
    exactly_once_generation_across_restarts,
    ledger_records_fired_and_covered,
    outbox_state_machine,
    recover_inflight_after_a_crash,
    disable_channel_fails_its_pending_rows_only,
    list_outbox_filters_newest_first_and_payload_round_trips,
    integrity_holds_after_many_writes,
    a_transaction_failing_half_way_leaves_nothing,
    invalid_batches_are_rejected_before_writing,
    events_insert_list_count_and_purge,
    payload_planned_for_one_crossing_lands_in_one_transaction,
);
