//! Several `tykwatch run` processes on one PostgreSQL store against the standalone demo
//! gateway: every crossing is notified once; the sends of an instance killed with `kill -9`, or
//! paused with SIGSTOP, go out from another after the lease with the same `webhook-id` (and the
//! paused one's late outcomes do not land); a PostgreSQL restart loses nothing.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::postgres::PgServer;
use crate::common::process::{BIN, JsonLines, Killed, Log, free_port, get, serve, signal};
use crate::headless::webhook_ids;

const DB: &str = "tykwatch";

fn demo_gateway() -> (Killed, u16) {
    let port = free_port();
    (crate::common::process::demo_gateway(port, "0"), port)
}

/// One instance: its own config and data dir, the shared store.
struct Instance {
    child: Killed,
    lines: JsonLines,
}

fn start(dir: &std::path::Path, n: usize, gw: u16, hook: u16, pg: &PgServer) -> Instance {
    start_with(dir, n, gw, hook, pg, "")
}

/// [`start`] with `extra` appended to the instance's config.
fn start_with(
    dir: &std::path::Path,
    n: usize,
    gw: u16,
    hook: u16,
    pg: &PgServer,
    extra: &str,
) -> Instance {
    let home = dir.join(format!("i{n}"));
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("config.toml"),
        format!(
            "[gateway]\nurl = \"http://127.0.0.1:{gw}\"\nsecret = \"${{TYK_GW_SECRET}}\"\n\n\
             [store]\nurl = \"{}\"\npassword = \"${{TW_PG_PASSWORD}}\"\nlease = \"3s\"\n\n\
             [[webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:{hook}/hook\"\n\
             secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n\n{extra}",
            pg.url_without_password(DB)
        ),
    )
    .unwrap();
    let mut child = Command::new(BIN)
        .arg("run")
        .env("TYKWATCH_CONFIG", home.join("config.toml"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("TYKWATCH_DATA_DIR", home.join("data"))
        .env("TYK_GW_SECRET", "tykwatch-demo")
        .env("TW_PG_PASSWORD", pg.password())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = JsonLines::of(child.stdout.take().unwrap());
    Instance {
        child: Killed(child),
        lines,
    }
}

/// Another tykwatch command with an instance's config and environment.
fn cli(home: &std::path::Path, pg: &PgServer, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("TYKWATCH_CONFIG", home.join("config.toml"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("TYKWATCH_DATA_DIR", home.join("data"))
        .env("TYK_GW_SECRET", "tykwatch-demo")
        .env("TW_PG_PASSWORD", pg.password())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn rows(pg: &PgServer, sql: &str) -> usize {
    pg.psql(DB, sql).parse().unwrap()
}

/// Waits until `ok` holds, failing with `what` after `secs`.
fn eventually(secs: u64, what: &str, ok: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "not within {secs} s: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every instance has swept (so each has seen, and tried to record, every crossing).
fn all_swept(instances: &mut [Instance]) {
    for i in instances {
        i.lines.until(Duration::from_secs(30), "a sweep", |v| {
            v["event"] == "sweep"
        });
    }
}

#[test]
fn three_instances_on_one_database_notify_each_crossing_once() {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgServer::start();
    pg.create_db(DB);
    let (_gw, gw) = demo_gateway();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let hook = listener.local_addr().unwrap().port();
    let hooks = serve(listener, true);

    let metrics = format!("127.0.0.1:{}", free_port());
    let mut instances: Vec<Instance> = (0..3)
        .map(|n| {
            let extra = match n {
                0 => format!("[metrics]\nlisten = \"{metrics}\"\n"),
                _ => String::new(),
            };
            start_with(dir.path(), n, gw, hook, &pg, &extra)
        })
        .collect();
    all_swept(&mut instances);
    all_swept(&mut instances);
    let expected = rows(
        &pg,
        "SELECT count(*) FROM outbox WHERE channel_id = 'webhook:ops'",
    );
    assert!(expected >= 5, "the demo has crossings ({expected})");
    eventually(30, "every notification delivered", || {
        rows(&pg, "SELECT count(*) FROM outbox WHERE state = 'delivered'") == expected
    });
    std::thread::sleep(Duration::from_millis(1500)); // nothing more arrives
    // Each crossing is reported by the one instance that recorded it.
    let reported: usize = instances
        .iter_mut()
        .map(|i| {
            i.lines
                .drain()
                .iter()
                .filter(|v| v["event"] == "threshold_crossed")
                .count()
        })
        .sum();
    assert_eq!(
        reported,
        rows(&pg, "SELECT count(*) FROM ledger WHERE state = 'fired'")
    );
    let ids = webhook_ids(&hooks.lock().unwrap());
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), expected, "{ids:?}");
    assert_eq!(ids.len(), expected, "a notification arrived twice: {ids:?}");
    assert_eq!(
        rows(&pg, "SELECT count(*) FROM instances"),
        3,
        "each instance's heartbeat"
    );
    // `tykwatch check` with one instance's config sees all three.
    let home = dir.path().join("i0");
    let out = cli(&home, &pg, &["check", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let store = report
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["check"] == "store")
        .unwrap_or_else(|| panic!("no store line: {report}"));
    assert_eq!(store["status"], "ok", "{store}");
    let detail = store["detail"].as_str().unwrap();
    assert!(detail.contains("3 instance(s) running"), "{detail}");
    assert!(!store["target"].as_str().unwrap().contains(pg.password()));
    // `tykwatch outbox list` reads the shared outbox.
    let out = cli(&home, &pg, &["outbox", "list", "--json", "--limit", "1000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"webhook:ops\""))
        .count();
    assert_eq!(listed, expected, "{}", String::from_utf8_lossy(&out.stdout));
    // `/metrics` names this instance and counts the others, all with one settings hash.
    let scrape = get(&metrics, "/metrics").text();
    assert!(
        scrape.contains("\ntykwatch_store_instances 3\n"),
        "{scrape}"
    );
    assert!(
        scrape.contains("\ntykwatch_store_settings_variants 1\n"),
        "{scrape}"
    );
    let info = scrape
        .lines()
        .find(|l| l.starts_with("tykwatch_instance_info{"))
        .unwrap_or_else(|| panic!("{scrape}"));
    assert!(info.contains("store=\"postgres\""), "{info}");
    let id = info
        .split("instance_id=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("{info}"));
    assert_eq!(
        rows(
            &pg,
            &format!("SELECT count(*) FROM instances WHERE id = '{id}'")
        ),
        1,
        "the instance_id label is one of the heartbeats: {info}"
    );
    // A fourth instance with other thresholds: `check` warns, the metric shows two variants.
    let mut odd = start_with(
        dir.path(),
        3,
        gw,
        hook,
        &pg,
        "[monitor]\nglobal_trigger_limits = [50.0]\n",
    );
    odd.lines.until(Duration::from_secs(30), "a sweep", |v| {
        v["event"] == "sweep"
    });
    eventually(15, "the fourth instance's heartbeat", || {
        rows(&pg, "SELECT count(*) FROM instances") == 4
    });
    let scrape = get(&metrics, "/metrics").text();
    assert!(
        scrape.contains("\ntykwatch_store_settings_variants 2\n"),
        "{scrape}"
    );
    let out = cli(&home, &pg, &["check", "--json"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("settings or channels differ") && text.contains("\"warn\""),
        "{text}"
    );
    assert!(odd.child.terminate(Duration::from_secs(10)).success());
    for i in &mut instances {
        assert!(i.child.terminate(Duration::from_secs(10)).success());
    }
    assert_eq!(
        rows(&pg, "SELECT count(*) FROM instances"),
        0,
        "a clean stop leaves"
    );
}

/// A receiver that takes `delay` to answer; the first `fail_first` requests get a 503.
fn slow_receiver(delay: Duration, fail_first: usize) -> (u16, Log) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let log: Log = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(AtomicUsize::new(0));
    let got = log.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let (log, seen) = (got.clone(), seen.clone());
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = s.read(&mut chunk) else { return };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    log.lock().unwrap().push(text);
                    let nth = seen.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(delay);
                    let status = if nth < fail_first {
                        "503 Service Unavailable"
                    } else {
                        "204 No Content"
                    };
                    let _ = s.write_all(
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    );
                    return;
                }
            });
        }
    });
    (port, log)
}

/// The pid in an instance id (`host:pid:random`).
fn pid_of(instance: &str) -> u32 {
    instance.split(':').nth(1).unwrap().parse().unwrap()
}

/// The instance holding the most claimed rows right now, and those rows' keys.
fn holder(pg: &PgServer) -> (u32, Vec<String>) {
    let out = pg.psql(
        DB,
        "SELECT claimed_by, idem_key FROM outbox WHERE state = 'inflight' \
         AND claimed_by IS NOT NULL ORDER BY claimed_by",
    );
    let mut by: HashMap<String, Vec<String>> = HashMap::new();
    for line in out.lines().filter(|l| !l.is_empty()) {
        let (who, key) = line.split_once('|').unwrap();
        by.entry(who.to_string()).or_default().push(key.to_string());
    }
    let (who, keys) = by
        .into_iter()
        .max_by_key(|(_, k)| k.len())
        .expect("someone holds claims");
    (pid_of(&who), keys)
}

fn kill_or_pause_the_holder(pause: bool) {
    let dir = tempfile::tempdir().unwrap();
    let pg = PgServer::start();
    pg.create_db(DB);
    let (_gw, gw) = demo_gateway();
    // Slow enough to catch claims in flight.
    let (hook, hooks) = slow_receiver(Duration::from_millis(1500), 0);
    let mut instances: Vec<Instance> = (0..3)
        .map(|n| start(dir.path(), n, gw, hook, &pg))
        .collect();
    all_swept(&mut instances);
    eventually(20, "claims in flight", || {
        rows(
            &pg,
            "SELECT count(*) FROM outbox WHERE state = 'inflight' AND claimed_by IS NOT NULL",
        ) > 0
    });
    let (pid, held) = holder(&pg);
    let victim = instances
        .iter()
        .position(|i| i.child.0.id() == pid)
        .expect("the holder is one of ours");
    eventually(10, "the holder's requests reached the receiver", || {
        let ids = webhook_ids(&hooks.lock().unwrap());
        held.iter().all(|k| ids.contains(k))
    });
    if pause {
        signal(&instances[victim].child.0, "STOP");
    } else {
        let mut dead = instances.remove(victim);
        dead.child.0.kill().unwrap();
        dead.child.0.wait().unwrap();
    }
    let expected = rows(
        &pg,
        "SELECT count(*) FROM outbox WHERE channel_id = 'webhook:ops'",
    );
    eventually(60, "every row delivered by the others", || {
        rows(&pg, "SELECT count(*) FROM outbox WHERE state = 'delivered'") == expected
    });
    if pause {
        // The paused instance wakes to its answers and lost claims: nothing it reports lands
        // (a landed "delivered" would count a second attempt).
        signal(&instances[victim].child.0, "CONT");
        std::thread::sleep(Duration::from_secs(3));
    }
    assert_eq!(
        rows(
            &pg,
            "SELECT count(*) FROM outbox WHERE state = 'delivered' AND last_status = 204"
        ),
        expected,
        "{}",
        pg.psql(
            DB,
            "SELECT idem_key, state, attempts, last_status FROM outbox"
        )
    );
    assert_eq!(
        rows(&pg, "SELECT count(*) FROM outbox WHERE attempts <> 1"),
        0,
        "a lost claim's outcome was counted: {}",
        pg.psql(
            DB,
            "SELECT idem_key, state, attempts, last_status FROM outbox"
        )
    );
    let ids = webhook_ids(&hooks.lock().unwrap());
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), expected, "every notification arrived");
    // The holder's sends were repeated by another instance with the same webhook-id.
    let repeated = unique
        .iter()
        .filter(|id| ids.iter().filter(|i| i == id).count() >= 2)
        .count();
    assert!(repeated >= 1, "no send was taken over: {ids:?}");
    assert!(
        ids.len() <= expected + held.len(),
        "only the holder's sends were repeated: {} requests for {expected} rows, {} held",
        ids.len(),
        held.len()
    );
}

#[test]
fn the_sends_of_an_instance_killed_with_claims_go_out_from_another_after_the_lease() {
    kill_or_pause_the_holder(false);
}

#[test]
fn a_paused_holders_late_outcomes_do_not_overwrite_the_newer_ones() {
    kill_or_pause_the_holder(true);
}

#[test]
fn a_postgres_restart_mid_run_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut pg = PgServer::start();
    pg.create_db(DB);
    let (_gw, gw) = demo_gateway();
    let hook = free_port(); // nothing listens yet: every send is retried
    let mut instances: Vec<Instance> = (0..2)
        .map(|n| start(dir.path(), n, gw, hook, &pg))
        .collect();
    all_swept(&mut instances);
    let expected = rows(
        &pg,
        "SELECT count(*) FROM outbox WHERE channel_id = 'webhook:ops'",
    );
    assert!(expected >= 5);
    pg.stop();
    std::thread::sleep(Duration::from_secs(3));
    pg.start_again();
    let hooks = serve(TcpListener::bind(("127.0.0.1", hook)).unwrap(), true);
    // Retries are due within the backoff's first steps.
    eventually(90, "every notification delivered after the restart", || {
        rows(&pg, "SELECT count(*) FROM outbox WHERE state = 'delivered'") == expected
    });
    let mut ids = webhook_ids(&hooks.lock().unwrap());
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), expected, "nothing lost");
    for i in &mut instances {
        assert!(
            i.child.terminate(Duration::from_secs(10)).success(),
            "instances outlive the restart"
        );
    }
}
