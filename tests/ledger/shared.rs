//! What lets several instances share one store, on both engines: crossings raced by two
//! connections are recorded once; claims carry a lease that another instance takes over when it
//! passes; a lost claim's outcome is ignored; per-channel caps count every instance's claims;
//! heartbeats. Then PostgreSQL's own bad input: wrong password, missing database, a newer
//! schema, another program's tables, a server that restarts or drops the connection.

use std::sync::Arc;

use tykwatch::config::{Secret, StoreConfig};
use tykwatch::outbox::{OutboxFilter, OutboxState};
use tykwatch::store::{ClaimRequest, Instance, Settle, Store, StoreError};

use crate::common::postgres::PgServer;
use crate::engines::{Db, PG_DB};
use crate::store::{NOW_MS, P1, batch, ch, monitor};

fn req(instance: &str, room: usize, per_channel: usize, lease_ms: i64) -> ClaimRequest<'_> {
    ClaimRequest {
        instance,
        room,
        per_channel,
        lease_ms,
    }
}

fn two_connections_record_a_raced_batch_once(db: &Db) {
    let mut m = monitor();
    let (c, r) = batch(&mut m, 200, P1);
    let (c, r) = (Arc::new(c), Arc::new(r));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let mut s = db.open();
            let (c, r) = (c.clone(), r.clone());
            std::thread::spawn(move || {
                // Each "instance" retries a lock timeout, as the notifier does next sweep.
                loop {
                    match s.record_crossings(&c, &r) {
                        Ok(n) => return n,
                        Err(e) if e.is_transient() => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let recorded: usize = results.iter().map(|r| r.count()).sum();
    assert_eq!(recorded, 200, "each crossing is recorded by one of them");
    for i in 0..200 {
        assert!(
            results[0].is_new(i) != results[1].is_new(i),
            "crossing {i} is reported by exactly the connection that recorded it"
        );
    }
    assert_eq!(db.count("outbox"), 600, "one row per crossing and channel");
    assert_eq!(db.count("ledger"), 400);
}

fn a_lease_that_passes_goes_to_another_instance(db: &Db) {
    let mut a = db.open();
    let mut b = db.open();
    let mut m = monitor();
    let (c, r) = batch(&mut m, 2, P1);
    a.record_crossings(&c, &r).unwrap();

    let held = a.claim(NOW_MS, &req("a", 100, 100, 1_000)).unwrap();
    assert_eq!(held.rows.len(), 6);
    assert!(held.rows.iter().all(|r| r.state == OutboxState::Inflight));
    assert!(
        b.claim(NOW_MS + 500, &req("b", 100, 100, 1_000))
            .unwrap()
            .rows
            .is_empty(),
        "a live lease keeps the rows a's"
    );
    // a renews: its rows stay a's past the first lease.
    assert_eq!(a.renew_claims("a", NOW_MS + 2_000).unwrap(), 6);
    assert!(
        b.claim(NOW_MS + 1_500, &req("b", 100, 100, 1_000))
            .unwrap()
            .rows
            .is_empty()
    );
    // a stops renewing (dead or paused): after the lease b takes them, same idempotency keys.
    let taken = b
        .claim(NOW_MS + 2_001, &req("b", 100, 100, 10_000))
        .unwrap();
    let mut keys: Vec<_> = taken.rows.iter().map(|r| r.idem_key.clone()).collect();
    let mut before: Vec<_> = held.rows.iter().map(|r| r.idem_key.clone()).collect();
    keys.sort();
    before.sort();
    assert_eq!(keys, before);
    assert_ne!(taken.token, held.token);

    // b delivers; a wakes up late and reports a failure with its old claim: ignored.
    let key = &keys[0];
    let delivered = Settle::Delivered {
        status: Some(204),
        at: NOW_MS + 2_100,
    };
    assert!(b.settle(key, Some(taken.token), &delivered).unwrap());
    let late = Settle::Retry {
        attempts: 1,
        next_at: NOW_MS + 9_000,
        status: Some(503),
        error: "HTTP 503",
    };
    assert!(!a.settle(key, Some(held.token), &late).unwrap());
    let row = a.get(key).unwrap().unwrap();
    assert_eq!(
        (row.state, row.attempts, row.last_status),
        (OutboxState::Delivered, 1, Some(204))
    );
    // Also while b still holds a row: a's outcome for it does not land.
    let other = &keys[1];
    assert!(!a.settle(other, Some(held.token), &late).unwrap());
    assert_eq!(a.get(other).unwrap().unwrap().state, OutboxState::Inflight);
    assert!(b.settle(other, Some(taken.token), &late).unwrap());
    let row = b.get(other).unwrap().unwrap();
    assert_eq!((row.state, row.attempts), (OutboxState::Pending, 1));

    // A clean stop puts b's remaining rows back, due now.
    assert_eq!(b.release_claims("b").unwrap(), 4);
    assert_eq!(b.counts().unwrap().inflight, 0);
    assert_eq!(b.due(NOW_MS + 2_200, 100).unwrap().len(), 4);
}

fn per_channel_caps_count_every_instances_claims(db: &Db) {
    let mut a = db.open();
    let mut b = db.open();
    let mut m = monitor();
    let (c, r) = batch(&mut m, 5, P1); // 5 rows on each of 3 channels
    a.record_crossings(&c, &r).unwrap();
    let first = a.claim(NOW_MS, &req("a", 100, 2, 30_000)).unwrap();
    assert_eq!(first.rows.len(), 6, "2 per channel");
    let second = b.claim(NOW_MS, &req("b", 100, 2, 30_000)).unwrap();
    assert!(second.rows.is_empty(), "every channel is at its cap");
    let done = &first.rows[0];
    let ok = Settle::Delivered {
        status: Some(200),
        at: NOW_MS,
    };
    assert!(a.settle(&done.idem_key, Some(first.token), &ok).unwrap());
    let third = b.claim(NOW_MS, &req("b", 100, 2, 30_000)).unwrap();
    assert_eq!(third.rows.len(), 1);
    assert_eq!(third.rows[0].channel_id, done.channel_id);
    // room caps the total whatever the channels allow
    a.release_claims("a").unwrap();
    b.release_claims("b").unwrap();
    assert_eq!(
        a.claim(NOW_MS, &req("a", 4, 100, 30_000))
            .unwrap()
            .rows
            .len(),
        4
    );
}

fn a_disabled_channel_is_disabled_for_every_instance(db: &Db) {
    let mut a = db.open();
    let mut b = db.open();
    a.disable_channel(&ch("webhook:ops"), "HTTP 410 Gone", NOW_MS)
        .unwrap();
    let mut m = monitor();
    let (c, r) = batch(&mut m, 2, P1);
    b.record_crossings(&c, &r).unwrap();
    let ops = OutboxFilter {
        channel_id: Some(ch("webhook:ops")),
        ..OutboxFilter::default()
    };
    let rows = b.list_outbox(&ops, 10).unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.state == OutboxState::Failed));
    assert_eq!(b.disabled_channels().unwrap().len(), 1);
}

fn heartbeats_show_who_is_running(db: &Db) {
    let a = db.open();
    let mut me = Instance::this_process("abc123".into(), NOW_MS);
    a.heartbeat(&me).unwrap();
    let other = Instance {
        id: "other:1:x".into(),
        host: "other".into(),
        pid: 1,
        version: "0.0.0".into(),
        config_hash: "ffffff".into(),
        started_at: NOW_MS - 60_000,
        seen_at: NOW_MS - 60_000,
    };
    db.open().heartbeat(&other).unwrap();
    assert_eq!(a.instances(NOW_MS - 120_000).unwrap().len(), 2);
    let live = a.instances(NOW_MS - 30_000).unwrap();
    assert_eq!(live.len(), 1, "a stale heartbeat is not running");
    assert_eq!(live[0], me);
    me.seen_at = NOW_MS + 10_000;
    a.heartbeat(&me).unwrap();
    assert_eq!(
        a.instances(NOW_MS + 5_000).unwrap()[0].seen_at,
        NOW_MS + 10_000
    );
    a.leave(&me.id).unwrap();
    assert!(a.instances(NOW_MS - 30_000).unwrap().is_empty());
}

fn settle_all_writes_a_batch_as_one_by_one_would(db: &Db) {
    use tykwatch::store::Settlement;
    let mut s = db.open();
    let mut m = monitor();
    let (c, r) = batch(&mut m, 2, P1);
    s.record_crossings(&c, &r).unwrap();
    let held = s.claim(NOW_MS, &req("a", 100, 100, 30_000)).unwrap();
    let k: Vec<&str> = held.rows.iter().map(|r| r.idem_key.as_str()).collect();
    assert_eq!(k.len(), 6);
    let t = Some(held.token);
    let at = NOW_MS + 10;
    // Each attempt's request as sent is stored with its outcome (not for a lost claim).
    let one = |idem_key, token, outcome| Settlement {
        idem_key,
        token,
        outcome,
        sent: Some((at, idem_key)),
    };
    let written = s
        .settle_all(&[
            one(
                k[0],
                t,
                Settle::Delivered {
                    status: Some(204),
                    at,
                },
            ),
            one(
                k[1],
                t,
                Settle::Retry {
                    attempts: 1,
                    next_at: NOW_MS + 5_000,
                    status: Some(503),
                    error: "HTTP 503",
                },
            ),
            one(
                k[2],
                t,
                Settle::Failed {
                    attempts: 1,
                    status: Some(400),
                    reason: "HTTP 400",
                },
            ),
            one(
                k[3],
                t,
                Settle::Dead {
                    attempts: 9,
                    status: None,
                    reason: "gave up",
                },
            ),
            // A stale claim's outcome does not land; one without a token does.
            one(
                k[4],
                Some(held.token ^ 1),
                Settle::Delivered {
                    status: Some(200),
                    at,
                },
            ),
            one(
                k[5],
                None,
                Settle::Delivered {
                    status: Some(200),
                    at,
                },
            ),
        ])
        .unwrap();
    assert_eq!(written, [true, true, true, true, false, true]);
    let row = |i: usize| s.get(k[i]).unwrap().unwrap();
    let r0 = row(0);
    assert_eq!(
        (r0.state, r0.attempts, r0.last_status, r0.delivered_at),
        (OutboxState::Delivered, 1, Some(204), Some(at))
    );
    let r1 = row(1);
    assert_eq!(
        (
            r1.state,
            r1.attempts,
            r1.next_attempt_at,
            r1.last_error.as_deref()
        ),
        (OutboxState::Pending, 1, NOW_MS + 5_000, Some("HTTP 503"))
    );
    assert_eq!((row(2).state, row(2).attempts), (OutboxState::Failed, 1));
    assert_eq!(
        (row(3).state, row(3).attempts, row(3).last_error.as_deref()),
        (OutboxState::Dead, 9, Some("gave up"))
    );
    assert_eq!(row(4).state, OutboxState::Inflight, "still the claim's");
    assert_eq!(row(5).state, OutboxState::Delivered);
    for i in [0, 1, 2, 3, 5] {
        assert_eq!(s.sent_request(k[i]).unwrap(), Some((at, k[i].to_owned())));
    }
    assert_eq!(
        s.sent_request(k[4]).unwrap(),
        None,
        "a lost claim stores nothing"
    );
    // A key given twice is settled twice, in order: the retry, then (no token) its delivery.
    let again = s
        .settle_all(&[
            one(
                k[4],
                None,
                Settle::Retry {
                    attempts: 1,
                    next_at: NOW_MS,
                    status: None,
                    error: "timeout",
                },
            ),
            one(
                k[4],
                None,
                Settle::Delivered {
                    status: Some(200),
                    at,
                },
            ),
        ])
        .unwrap();
    assert_eq!(again, [true, true]);
    assert_eq!((row(4).state, row(4).attempts), (OutboxState::Delivered, 2));
    assert!(s.settle_all(&[]).unwrap().is_empty());
}

crate::both_engines!(
    two_connections_record_a_raced_batch_once,
    a_lease_that_passes_goes_to_another_instance,
    per_channel_caps_count_every_instances_claims,
    a_disabled_channel_is_disabled_for_every_instance,
    heartbeats_show_who_is_running,
    settle_all_writes_a_batch_as_one_by_one_would,
);

fn config(url: String) -> StoreConfig {
    StoreConfig {
        url: Secret::new(url),
        ..StoreConfig::default()
    }
}

fn connect_err(c: &StoreConfig) -> String {
    match Store::connect(c) {
        Ok(_) => panic!("connected to {}", c.url),
        Err(e) => e.to_string(),
    }
}

#[test]
fn postgres_bad_credentials_and_a_missing_database_say_what_to_fix() {
    let pg = PgServer::start();
    pg.create_db(PG_DB);
    let wrong = format!(
        "postgres://postgres:wrong-password@127.0.0.1:{}/{PG_DB}",
        pg.port()
    );
    let e = connect_err(&config(wrong));
    assert!(e.contains("password authentication failed"), "{e}");
    assert!(e.contains("[store] password"), "says what to check: {e}");
    assert!(!e.contains("wrong-password"), "the password is masked: {e}");

    // `[store] password` wins over the URL's.
    let mut c = config(pg.url_without_password(PG_DB));
    c.password = Secret::new(pg.password());
    Store::connect(&c).unwrap();

    let e = connect_err(&config(pg.url("no_such_db")));
    assert!(e.contains("does not exist"), "{e}");
    assert!(e.contains("createdb"), "{e}");

    let port = pg.port();
    drop(pg);
    let e = connect_err(&config(format!(
        "postgres://postgres:x@127.0.0.1:{port}/{PG_DB}?sslmode=disable"
    )));
    assert!(e.contains("refused"), "{e}");
    assert!(e.contains("is PostgreSQL running"), "{e}");
}

#[test]
fn postgres_refuses_a_newer_schema_and_another_programs_tables() {
    let pg = PgServer::start();
    pg.create_db(PG_DB);
    pg.create_db("other");
    let c = config(pg.url(PG_DB));
    Store::connect(&c).unwrap();
    pg.psql(PG_DB, "INSERT INTO tykwatch_schema (version) VALUES (99)");
    let e = match Store::connect(&c) {
        Err(e @ StoreError::ServerTooNew { .. }) => e.to_string(),
        other => panic!("{other:?}"),
    };
    assert!(e.contains("schema version 99"), "{e}");

    pg.psql("other", "CREATE TABLE outbox (id int)");
    let e = connect_err(&config(pg.url("other")));
    assert!(e.contains("tables with tykwatch's names"), "{e}");
    assert_eq!(
        pg.psql(
            "other",
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'ledger'"
        ),
        "0",
        "nothing was created"
    );
}

#[test]
fn postgres_instances_starting_together_migrate_once() {
    let pg = Arc::new(PgServer::start());
    pg.create_db(PG_DB);
    let c = config(pg.url(PG_DB));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = c.clone();
            std::thread::spawn(move || Store::connect(&c).map(drop))
        })
        .collect();
    for t in threads {
        t.join().unwrap().unwrap();
    }
    // Each migration ran once (one row per migration, none twice).
    assert_eq!(
        pg.psql(
            PG_DB,
            "SELECT count(*) || ' ' || count(DISTINCT version) || ' ' || max(version) FROM tykwatch_schema"
        ),
        "2 2 2"
    );
}

#[test]
fn postgres_restarted_or_dropping_connections_costs_one_failed_call() {
    let mut pg = PgServer::start();
    pg.create_db(PG_DB);
    let mut s = Store::connect(&config(pg.url(PG_DB))).unwrap();
    let mut m = monitor();
    let (c, r) = batch(&mut m, 3, P1);
    assert_eq!(s.record_crossings(&c, &r).unwrap().count(), 3);

    // The server drops every session: the next call fails clearly, the one after reconnects.
    assert!(pg.terminate_connections(PG_DB) >= 1);
    let first = s.counts();
    if let Err(e) = &first {
        assert!(e.is_transient(), "{e}");
    }
    assert_eq!(s.counts().unwrap().pending, 9);

    // A restart: calls fail while it is down (nothing half-written), then work again.
    pg.stop();
    let (c2, r2) = batch(&mut m, 2, P1 + 60);
    let e = s.record_crossings(&c2, &r2).unwrap_err();
    assert!(e.is_transient(), "{e}");
    m.rollback(&c2);
    pg.start_again();
    let (c2, r2) = batch(&mut m, 2, P1 + 60);
    let mut recorded = None;
    for _ in 0..3 {
        match s.record_crossings(&c2, &r2) {
            Ok(n) => {
                recorded = Some(n.count());
                break;
            }
            Err(e) => assert!(e.is_transient(), "{e}"),
        }
    }
    assert_eq!(recorded, Some(2));
    assert_eq!(s.counts().unwrap().pending, 15);

    // Lost inside Store::in_transaction: nothing of it is committed.
    let due = s.due(NOW_MS, 2).unwrap();
    let keys: Vec<String> = due.iter().map(|r| r.idem_key.clone()).collect();
    let result = s.in_transaction(|t| {
        t.mark_delivered(&keys[0], Some(200), NOW_MS)?;
        pg.terminate_connections(PG_DB);
        t.mark_delivered(&keys[1], Some(200), NOW_MS)?;
        Ok(())
    });
    assert!(result.is_err(), "the transaction cannot commit");
    let delivered = (0..3).find_map(|_| s.counts().ok()).unwrap().delivered;
    assert_eq!(delivered, 0, "neither outcome landed");
}

#[test]
fn store_migrate_copies_a_data_dir_into_an_empty_database_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let event_ids = {
        let mut s = Store::open_in(&data).unwrap();
        let mut m = monitor();
        let (c, r) = batch(&mut m, 4, P1);
        s.record_crossings(&c, &r).unwrap();
        let due = s.due(NOW_MS, 100).unwrap();
        assert_eq!(due.len(), 12);
        s.mark_delivered(&due[0].idem_key, Some(204), NOW_MS)
            .unwrap();
        s.mark_dead(&due[1].idem_key, 8, Some(500), "HTTP 500")
            .unwrap();
        s.mark_inflight(&due[2].idem_key).unwrap();
        s.disable_channel(&ch("webhook:audit"), "HTTP 410 Gone", NOW_MS)
            .unwrap();
        let ids = s
            .insert_events(&[crate::store::new_event(1), crate::store::new_event(2)])
            .unwrap();
        s.mark_events_routed(&ids[..1], NOW_MS).unwrap();
        ids
    };
    let source = Store::open_in(&data).unwrap().dump().unwrap();
    let pg = PgServer::start();
    pg.create_db(PG_DB);
    let config = dir.path().join("config.toml");
    std::fs::write(&config, "").unwrap();
    let migrate = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tykwatch"))
            .args(["store", "migrate", "--from"])
            .arg(&data)
            .args(["--to", &pg.url(PG_DB)])
            .env("TYKWATCH_CONFIG", &config)
            .env("TYKWATCH_DATA_DIR", dir.path().join("unused"))
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = migrate();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ledger 8, outbox 12"), "{stdout}");
    assert!(
        !stdout.contains(pg.password()),
        "the password is masked: {stdout}"
    );

    let mut target = Store::connect(&config_of(&pg)).unwrap();
    let copied = target.dump().unwrap();
    let rows = |d: &tykwatch::store::Dump| {
        let mut v: Vec<_> = d
            .outbox
            .iter()
            .map(|r| {
                let state = match r.state {
                    OutboxState::Inflight => OutboxState::Pending,
                    s => s,
                };
                (
                    r.idem_key.clone(),
                    state,
                    r.attempts,
                    r.last_status,
                    r.last_error.clone(),
                    r.sequence,
                )
            })
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    assert_eq!(
        rows(&copied),
        rows(&source),
        "states, attempts and errors kept"
    );
    assert_eq!(copied.ledger.len(), source.ledger.len());
    assert_eq!(copied.last_sequence, source.last_sequence);
    assert_eq!(copied.disabled.len(), 1);
    let ids: Vec<i64> = copied.events.iter().map(|e| e.id).rev().collect();
    assert_eq!(ids, event_ids, "event ids kept");
    assert_eq!(copied.unrouted, source.unrouted);
    let next = target.insert_event(&crate::store::new_event(3)).unwrap();
    assert!(
        next > event_ids[1],
        "new ids continue after the copied ones"
    );

    // A second run finds the target not empty: refused, nothing duplicated.
    let again = migrate();
    assert_eq!(again.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("not empty"), "{stderr}");
    assert_eq!(target.dump().unwrap().outbox.len(), 12);
}

fn config_of(pg: &PgServer) -> StoreConfig {
    config(pg.url(PG_DB))
}
