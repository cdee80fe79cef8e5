//! `tykwatch run` as a real process against the standalone demo gateway: crossings are
//! recorded durably, SIGTERM exits 0, and after `kill -9` a restart generates nothing twice.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::common::process::{BIN, Killed, Log, free_port, serve, serve_until, sink, wait_port};

/// JSON lines of a child's stdout, read on a thread so the test can wait with a deadline.
fn lines(out: ChildStdout) -> mpsc::Receiver<serde_json::Value> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            let v: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            if tx.send(v).is_err() {
                return;
            }
        }
    });
    rx
}

/// Events until `n` sweeps were seen.
fn until_sweeps(rx: &mpsc::Receiver<serde_json::Value>, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    let mut sweeps = 0;
    while sweeps < n {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = rx.recv_timeout(left).expect("no event before the deadline");
        if v["event"] == "sweep" {
            assert_eq!(v["complete"], true, "{v}");
            sweeps += 1;
        }
        seen.push(v);
    }
    seen
}

fn run(dir: &std::path::Path, port: u16) -> Child {
    Command::new(BIN)
        .args(["--gateway", &format!("http://127.0.0.1:{port}"), "run"])
        .env("TYKWATCH_CONFIG", dir.join("config.toml"))
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("TYKWATCH_DATA_DIR", dir.join("data"))
        .env("TYK_GW_SECRET", "tykwatch-demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn crossings(events: &[serde_json::Value]) -> Vec<String> {
    events
        .iter()
        .filter(|v| v["event"] == "threshold_crossed")
        .map(|v| format!("{}@{}:{}", v["quota_key"], v["period"], v["threshold"]))
        .collect()
}

#[test]
fn crossings_are_recorded_once_across_kill_9_and_sigterm_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // Speed 0: no simulated traffic, so quota periods and usage stay put between the runs.
    let _gw = Killed(
        Command::new(BIN)
            .args(["demo-gateway", "--port", &port.to_string(), "--speed", "0"])
            .env("TYK_GW_SECRET", "tykwatch-demo")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port);
    let (hook_port, hooks) = sink();
    std::fs::write(
        dir.path().join("config.toml"),
        format!(
            "[gateway]\nurl = \"http://127.0.0.1:{port}\"\nsecret = \"${{TYK_GW_SECRET}}\"\n\n\
             [[webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n\
             secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n"
        ),
    )
    .unwrap();

    // First run: the demo has quotas over their trigger limits.
    let mut first = run(dir.path(), port);
    let rx = lines(first.stdout.take().unwrap());
    let events = until_sweeps(&rx, 2);
    let fired = crossings(&events);
    assert!(fired.len() >= 5, "expected crossings, got {events:?}");
    let mut unique = fired.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), fired.len(), "a crossing fired twice");
    for v in events.iter().filter(|v| v["event"] == "threshold_crossed") {
        let id = v["quota"].as_str().unwrap();
        assert!(
            id.contains('…') || id.starts_with("org:"),
            "raw key in the log: {id}"
        );
    }
    // The dispatcher delivers one signed webhook per crossing.
    let deadline = Instant::now() + Duration::from_secs(20);
    while hooks.lock().unwrap().len() < fired.len() {
        assert!(
            Instant::now() < deadline,
            "{} of {} webhooks",
            hooks.lock().unwrap().len(),
            fired.len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let delivered = hooks.lock().unwrap().clone();
    assert!(
        delivered
            .iter()
            .all(|r| r.contains("webhook-signature: v1,") && r.contains("quota.threshold_crossed"))
    );
    // Crossings are printed after their transaction committed: kill -9 loses nothing.
    first.kill().unwrap();
    first.wait().unwrap();

    // Second run on the same data dir: nothing is generated again.
    let mut second = run(dir.path(), port);
    let rx = lines(second.stdout.take().unwrap());
    let events = until_sweeps(&rx, 2);
    assert_eq!(crossings(&events), Vec::<String>::new(), "{events:?}");
    let pid = second.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = second.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "run did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let rest: Vec<_> = rx.try_iter().collect();
    assert_eq!(
        rest.last().map(|v| v["event"].clone()),
        Some("stopped".into())
    );
    assert!(dir.path().join("data/tykwatch.db").exists());
    // Nothing was generated, so nothing was sent again (a send interrupted by the kill would be
    // repeated with the same webhook-id: the documented accepted-then-crashed window).
    let ids = |reqs: &[String]| -> Vec<String> {
        let mut v: Vec<String> = reqs
            .iter()
            .filter_map(|r| {
                r.lines()
                    .find(|l| l.to_ascii_lowercase().starts_with("webhook-id:"))
                    .map(str::to_string)
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    assert_eq!(ids(&hooks.lock().unwrap()), ids(&delivered));
}

fn start_demo_gateway() -> (Killed, u16) {
    let port = free_port();
    let gw = Killed(
        Command::new(BIN)
            .args(["demo-gateway", "--port", &port.to_string(), "--speed", "0"])
            .env("TYK_GW_SECRET", "tykwatch-demo")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port);
    (gw, port)
}

fn write_config(dir: &std::path::Path, port: u16, hook_port: u16) {
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[gateway]\nurl = \"http://127.0.0.1:{port}\"\nsecret = \"${{TYK_GW_SECRET}}\"\n\n\
             [[webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n\
             secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\"\n"
        ),
    )
    .unwrap();
}

/// The `webhook-id` header of each request (as the receiver logged them).
pub(crate) fn webhook_ids(reqs: &[String]) -> Vec<String> {
    reqs.iter()
        .filter_map(|r| {
            r.lines()
                .find(|l| l.to_ascii_lowercase().starts_with("webhook-id:"))
                .map(|l| l[11..].trim().to_string())
        })
        .collect()
}

fn wait_for(log: &Log, n: usize, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while log.lock().unwrap().len() < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} requests arrived",
            log.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The receiver is down when the crossings happen and tykwatch is killed with every
/// notification pending; after a restart each arrives exactly once.
#[test]
fn pending_deliveries_survive_kill_9_while_the_receiver_is_down() {
    let dir = tempfile::tempdir().unwrap();
    let (_gw, port) = start_demo_gateway();
    let hook_port = free_port(); // nothing listens: connection refused
    write_config(dir.path(), port, hook_port);

    let mut first = Killed(run(dir.path(), port));
    let rx = lines(first.0.stdout.take().unwrap());
    let fired = crossings(&until_sweeps(&rx, 2));
    assert!(fired.len() >= 5, "expected crossings");
    // Let the first attempts fail (connection refused → retry in ~5 s), then crash.
    std::thread::sleep(Duration::from_millis(500));
    drop(first); // kill -9

    let hooks = serve(
        std::net::TcpListener::bind(("127.0.0.1", hook_port)).unwrap(),
        true,
    );
    let mut second = Killed(run(dir.path(), port));
    let rx = lines(second.0.stdout.take().unwrap());
    assert_eq!(crossings(&until_sweeps(&rx, 1)), Vec::<String>::new());
    wait_for(&hooks, fired.len(), 30);
    // A little longer: nothing arrives twice.
    std::thread::sleep(Duration::from_millis(1500));
    let mut ids = webhook_ids(&hooks.lock().unwrap());
    assert_eq!(ids.len(), fired.len(), "{ids:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), fired.len(), "a notification arrived twice");
}

/// The documented duplicate window: the receiver accepted a request but tykwatch died before
/// recording the answer. The restart sends it again with the same `webhook-id`.
#[test]
fn a_send_interrupted_by_kill_9_is_repeated_with_the_same_webhook_id() {
    let dir = tempfile::tempdir().unwrap();
    let (_gw, port) = start_demo_gateway();
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_port = hang.local_addr().unwrap().port();
    write_config(dir.path(), port, hook_port);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hung = serve_until(hang, false, stop.clone());

    let mut first = Killed(run(dir.path(), port));
    let rx = lines(first.0.stdout.take().unwrap());
    let fired = crossings(&until_sweeps(&rx, 2));
    assert!(fired.len() >= 5, "expected crossings");
    wait_for(&hung, 1, 20);
    drop(first); // kill -9
    let interrupted = webhook_ids(&hung.lock().unwrap());

    // The hanging receiver stops; a good one takes its port.
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let good = loop {
        match std::net::TcpListener::bind(("127.0.0.1", hook_port)) {
            Ok(l) => break serve(l, true),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let mut second = Killed(run(dir.path(), port));
    let _rx = lines(second.0.stdout.take().unwrap());
    wait_for(&good, fired.len(), 30);
    std::thread::sleep(Duration::from_millis(1000));
    let mut ids = webhook_ids(&good.lock().unwrap());
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        fired.len(),
        "every notification arrives, once here"
    );
    for id in &interrupted {
        assert!(
            ids.contains(id),
            "{id} was not repeated with the same webhook-id"
        );
    }
}

/// One process per data dir: a second `run` on the same dir refuses to start (it would put
/// the first one's in-flight sends back to pending and send them twice).
#[test]
fn a_second_run_on_the_same_data_dir_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let (_gw, port) = start_demo_gateway();
    write_config(dir.path(), port, free_port());
    let mut first = Killed(run(dir.path(), port));
    let rx = lines(first.0.stdout.take().unwrap());
    until_sweeps(&rx, 1);
    let out = Command::new(BIN)
        .args(["--gateway", &format!("http://127.0.0.1:{port}"), "run"])
        .env("TYKWATCH_CONFIG", dir.path().join("config.toml"))
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("TYKWATCH_DATA_DIR", dir.path().join("data"))
        .env("TYK_GW_SECRET", "tykwatch-demo")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another tykwatch"), "{err}");
    assert!(err.contains("--data-dir"), "{err}");
}

/// A user e-mail template that would loop for ever (99 999 × 99 999) fails its rows with a
/// located "ran out of fuel"; the webhook channel is delivered meanwhile and SIGTERM still
/// ends the process within 10 s.
#[test]
fn a_runaway_template_fails_its_rows_and_stops_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (_gw, port) = start_demo_gateway();
    let (hook_port, hooks) = sink();
    write_config(dir.path(), port, hook_port);
    let mut config = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    config.push_str(
        "\n[email_backend]\nenable_email_notifications = true\ncode = \"file\"\n\
         default_from_email = \"tykwatch@localhost.localdomain\"\n\n\
         [notify]\nemail_to = [\"ops@example.com\"]\n",
    );
    std::fs::write(dir.path().join("config.toml"), config).unwrap();
    let templates = dir.path().join("email_templates");
    std::fs::create_dir_all(&templates).unwrap();
    let runaway = templates.join("quota_threshold.text.tmpl");
    std::fs::write(
        &runaway,
        "Quota\n{% for a in range(99999) %}{% for b in range(99999) %}{{ a }}{% endfor %}\
         {% endfor %}\n",
    )
    .unwrap();
    let mut child = Killed(run(dir.path(), port));
    let rx = lines(child.0.stdout.take().unwrap());
    until_sweeps(&rx, 1);
    wait_for(&hooks, 1, 30);

    // The template's rows fail with its file and line; none stays in flight.
    let deadline = Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let out = Command::new(BIN)
            .args(["outbox", "list", "--channel", "email:ops", "--json"])
            .env("TYKWATCH_CONFIG", dir.path().join("config.toml"))
            .env("TYK_GW_SECRET", "tykwatch-demo")
            .env("TYKWATCH_DATA_DIR", dir.path().join("data"))
            .output()
            .unwrap();
        let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // Rows of other templates (quota_exhausted) are delivered; new crossings keep coming.
        let failed: Vec<_> = rows
            .iter()
            .filter(|r| r["state"] == "failed")
            .cloned()
            .collect();
        let stuck = rows
            .iter()
            .filter(|r| r["state"] == "inflight" && r["age_s"].as_u64() > Some(10))
            .count();
        assert_eq!(stuck, 0, "rows stay in flight: {rows:?}");
        if failed.len() >= 3 {
            break failed;
        }
        assert!(
            Instant::now() < deadline,
            "e-mail rows not failed: {rows:?} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let err = failed[0]["last_error"].as_str().unwrap().to_string();
    assert!(
        err.contains(&format!("{}:2: ran out of fuel", runaway.display())),
        "{err}"
    );

    let started = Instant::now();
    assert!(
        Command::new("kill")
            .args(["-TERM", &child.0.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "run did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
}

/// Every outcome is a JSON line once it is in the store: deliveries carry the `webhook-id` the
/// receiver saw, retries their attempt, next attempt and reason, and both the `quota_id` of the
/// crossing that queued them.
#[test]
fn run_writes_a_line_for_every_delivery_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let (_gw, port) = start_demo_gateway();
    let (ok_port, hooks) = sink();
    let down_port = free_port(); // nothing listens: connection refused
    write_config(dir.path(), port, ok_port);
    let mut config = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    config.push_str(&format!(
        "\n[[webhooks]]\nname = \"down\"\nurl = \"http://127.0.0.1:{down_port}/hook\"\n"
    ));
    std::fs::write(dir.path().join("config.toml"), config).unwrap();

    let mut child = Killed(run(dir.path(), port));
    let rx = lines(child.0.stdout.take().unwrap());
    let mut seen = until_sweeps(&rx, 1);
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivery = |seen: &[serde_json::Value], outcome: &str| -> Vec<serde_json::Value> {
        seen.iter()
            .filter(|v| v["event"] == "delivery" && v["outcome"] == outcome)
            .cloned()
            .collect()
    };
    while delivery(&seen, "delivered").len() < 3 || delivery(&seen, "retry").len() < 3 {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) => seen.push(v),
            Err(_) => panic!("no delivery lines: {seen:#?}"),
        }
    }
    let crossed: Vec<&serde_json::Value> = seen
        .iter()
        .filter(|v| v["event"] == "threshold_crossed")
        .map(|v| &v["quota_id"])
        .collect();
    let received = webhook_ids(&hooks.lock().unwrap());
    for d in delivery(&seen, "delivered") {
        assert_eq!(d["channel"], "webhook:ops", "{d}");
        assert_eq!(d["attempt"], 1, "{d}");
        assert_eq!(d["recorded"], true, "{d}");
        assert!(
            d["status"]
                .as_u64()
                .is_some_and(|s| (200..300).contains(&s)),
            "{d}"
        );
        let id = d["idempotency_key"].as_str().unwrap();
        assert!(
            received.iter().any(|r| r == id),
            "{id} not received: {received:?}"
        );
        assert!(crossed.contains(&&d["quota_id"]), "{d}");
    }
    // The request as it was sent is stored with the row: the same id, signature and body the
    // receiver got, not a rebuild.
    let d = &delivery(&seen, "delivered")[0];
    let id = d["idempotency_key"].as_str().unwrap();
    let got = hooks
        .lock()
        .unwrap()
        .iter()
        .find(|r| r.contains(id))
        .cloned()
        .unwrap();
    let out = Command::new(BIN)
        .args(["outbox", "show", id, "--json"])
        .env("TYKWATCH_CONFIG", dir.path().join("config.toml"))
        .env("TYK_GW_SECRET", "tykwatch-demo")
        .env("TYKWATCH_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sent = shown["sent_request"]
        .as_str()
        .unwrap_or_else(|| panic!("{shown}"));
    let header = |text: &str, name: &str| {
        text.lines()
            .find(|l| l.to_ascii_lowercase().starts_with(name))
            .map(|l| l.split_once(':').unwrap().1.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        assert_eq!(header(sent, name), header(&got, name), "{name}");
    }
    let body = |text: &str| {
        text.split_once("\n\n")
            .or_else(|| text.split_once("\r\n\r\n"))
            .unwrap()
            .1
            .trim()
            .to_owned()
    };
    assert_eq!(body(sent), body(&got));

    for r in delivery(&seen, "retry") {
        assert_eq!(r["channel"], "webhook:down", "{r}");
        assert_eq!(r["attempt"], 1, "{r}");
        assert!(
            r["next_attempt_in_s"].as_f64().is_some_and(|s| s > 0.0),
            "{r}"
        );
        assert!(r["next_attempt_at_ms"].as_i64().is_some(), "{r}");
        let reason = r["reason"].as_str().unwrap();
        assert!(reason.contains("network error"), "{reason}");
        assert!(crossed.contains(&&r["quota_id"]), "{r}");
    }
    assert!(child.terminate(Duration::from_secs(10)).success());
}

/// `[store] retention` run by the engine: delivered rows older than it go (a `retention` line
/// says so), while the ledger keeps the current periods, so later sweeps fire nothing twice.
#[test]
fn retention_purges_delivered_rows_and_keeps_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (_gw, port) = start_demo_gateway();
    let (hook_port, hooks) = sink();
    write_config(dir.path(), port, hook_port);
    let mut config = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();
    config.push_str("\n[store]\nretention = \"2s\"\n");
    std::fs::write(dir.path().join("config.toml"), config).unwrap();

    let mut child = Killed(run(dir.path(), port));
    let rx = lines(child.0.stdout.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut seen = Vec::new();
    let purged = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let v = rx
            .recv_timeout(left)
            .unwrap_or_else(|_| panic!("no retention line: {seen:#?}"));
        if v["event"] == "retention" && v["delivered"].as_u64() > Some(0) {
            break v;
        }
        seen.push(v);
    };
    let fired = crossings(&seen);
    assert!(!fired.is_empty(), "crossings before retention");
    assert!(!hooks.lock().unwrap().is_empty());
    assert_eq!(purged["ledger"], 0, "current periods stay: {purged}");
    // What the operator sees: the purged rows are gone from the outbox.
    let out = Command::new(BIN)
        .args(["outbox", "list", "--state", "delivered", "--json"])
        .env("TYKWATCH_CONFIG", dir.path().join("config.toml"))
        .env("TYK_GW_SECRET", "tykwatch-demo")
        .env("TYKWATCH_DATA_DIR", dir.path().join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8_lossy(&out.stdout).lines().count();
    let delivered = seen
        .iter()
        .filter(|v| v["event"] == "delivery" && v["outcome"] == "delivered")
        .count();
    assert!(
        listed as u64 <= delivered as u64 - purged["delivered"].as_u64().unwrap(),
        "{listed} rows listed after {purged}"
    );
    // Two more sweeps: no quota fires again in its period.
    let later = crossings(&until_sweeps(&rx, 2));
    for c in &later {
        assert!(!fired.contains(c), "{c} fired twice after retention");
    }
    assert!(child.terminate(Duration::from_secs(10)).success());
}

/// Start-up checks of the channels: settings that cannot work refuse to start with the key and
/// line; e-mail on with no recipient anywhere is legitimate but said at once.
#[test]
fn run_checks_the_channels_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let (_gw, port) = start_demo_gateway();
    let (hook_port, _hooks) = sink();
    write_config(dir.path(), port, hook_port);
    let base = std::fs::read_to_string(dir.path().join("config.toml")).unwrap();

    let smtp = format!(
        "{base}\n[email_backend]\nenable_email_notifications = true\ncode = \"smtp\"\n\
         default_from_email = \"tykwatch@example.com\"\n\
         settings = {{ SMTPAddress = \"smtp.example.com\" }}\n"
    );
    std::fs::write(dir.path().join("config.toml"), &smtp).unwrap();
    let out = run(dir.path(), port).wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let line = smtp
        .lines()
        .position(|l| l.starts_with("settings"))
        .unwrap()
        + 1;
    // The message is on stderr, which the helper leaves to the test's own.
    let out = Command::new(BIN)
        .args(["--gateway", &format!("http://127.0.0.1:{port}"), "run"])
        .env("TYKWATCH_CONFIG", dir.path().join("config.toml"))
        .env("TYKWATCH_DATA_DIR", dir.path().join("data"))
        .env("TYK_GW_SECRET", "tykwatch-demo")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(":{line}:"))
            && err.contains("email_backend.settings.SMTPAddress")
            && err.contains("needs a port"),
        "{err}"
    );

    let no_recipients = format!(
        "{base}\n[email_backend]\nenable_email_notifications = true\ncode = \"file\"\n\
         default_from_email = \"tykwatch@example.com\"\n\n[notify]\nnotify_key_owner = false\n"
    );
    std::fs::write(dir.path().join("config.toml"), no_recipients).unwrap();
    let mut child = Killed(run(dir.path(), port));
    let rx = lines(child.0.stdout.take().unwrap());
    let seen = until_sweeps(&rx, 1);
    let warning = seen
        .iter()
        .find(|v| v["event"] == "warning")
        .unwrap_or_else(|| panic!("no warning: {seen:#?}"));
    assert!(
        warning["message"]
            .as_str()
            .unwrap()
            .contains("nothing has a recipient"),
        "{warning}"
    );
    assert!(child.terminate(Duration::from_secs(10)).success());
}
