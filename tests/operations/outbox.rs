//! `tykwatch outbox …` on a data dir while `tykwatch run` holds it: a failed row resent from
//! the CLI is delivered once by the running dispatcher; listings never show a raw key.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tykwatch::outbox::{OutboxFilter, OutboxState};
use tykwatch::store::Store;

use crate::common::process::{BIN, JsonLines, Killed, demo_gateway, free_port, write};

/// A webhook receiver on loopback answering `status` (settable), counting requests by
/// `webhook-id`.
struct Receiver {
    port: u16,
    status: Arc<AtomicU16>,
    got: Arc<Mutex<HashMap<String, usize>>>,
}

impl Receiver {
    fn start(status: u16) -> Receiver {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let status = Arc::new(AtomicU16::new(status));
        let got: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let (st, log) = (status.clone(), got.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let (st, log) = (st.clone(), log.clone());
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        let Ok(n) = s.read(&mut chunk) else { return };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let header = |name: &str| {
                        head.lines()
                            .find_map(|l| l.strip_prefix(&format!("{name}: ")).map(str::to_owned))
                    };
                    let len: usize = header("content-length")
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + 4 + len {
                        let Ok(n) = s.read(&mut chunk) else { return };
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let id = header("webhook-id").unwrap_or_default();
                    let code = st.load(Ordering::SeqCst);
                    *log.lock().unwrap().entry(id).or_insert(0) += 1;
                    let _ = write!(
                        s,
                        "HTTP/1.1 {code} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                });
            }
        });
        Receiver { port, status, got }
    }

    fn count(&self, id: &str) -> usize {
        // The header was lower-cased with the rest of the head.
        self.got
            .lock()
            .unwrap()
            .get(&id.to_ascii_lowercase())
            .copied()
            .unwrap_or(0)
    }

    fn total(&self) -> usize {
        self.got.lock().unwrap().values().sum()
    }

    fn wait(&self, what: &str, within: Duration, done: impl Fn(&Receiver) -> bool) {
        let deadline = Instant::now() + within;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: {:?}",
                self.got.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .args(args)
            .env_remove("TYK_GW_SECRET")
            .env_remove("TYKWATCH_CONFIG")
            .stdin(Stdio::null());
        c
    }

    fn outbox(&self, args: &[&str]) -> Output {
        let mut all = vec!["outbox"];
        all.extend_from_slice(args);
        self.cmd(&all).output().unwrap()
    }

    fn run(&self) -> (Killed, JsonLines) {
        let mut child = self
            .cmd(&["run"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = JsonLines::of(child.stdout.take().unwrap());
        (Killed(child), lines)
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    assert!(o.status.success(), "{}", text(&o.stderr));
    text(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_failed_row_resent_from_the_cli_while_run_runs_is_delivered_once() {
    let gw_port = free_port();
    let _gw = demo_gateway(gw_port, "0");
    let receiver = Receiver::start(503);
    let setup = Setup {
        dir: tempfile::tempdir().unwrap(),
    };
    write(
        setup.dir.path(),
        "config.toml",
        &format!(
            "[gateway]\nurl = \"http://127.0.0.1:{gw_port}\"\nsecret = \"tykwatch-demo\"\n\
             poll_interval = \"1s\"\n\n[[webhooks]]\nname = \"ops\"\n\
             url = \"http://127.0.0.1:{}/hook\"\n",
            receiver.port
        ),
    );
    // No outbox yet: a clear error, not an empty one created on the spot.
    let none = setup.outbox(&["list"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(
        text(&none.stderr).contains("no outbox at"),
        "{}",
        text(&none.stderr)
    );
    assert!(!setup.dir.path().join("data/tykwatch.db").exists());

    // First run: every crossing's first attempt gets a 503 (retried in 5 s); stop it then.
    let (mut first, mut lines) = setup.run();
    lines.until(Duration::from_secs(30), "a sweep", |v| {
        v["event"] == "sweep"
    });
    receiver.wait("first attempts", Duration::from_secs(20), |r| {
        r.total() >= 5
    });
    assert!(first.terminate(Duration::from_secs(15)).success());
    let attempted = receiver.total();

    // One row is failed as the dispatcher records it after four 4xx answers (the real schedule
    // takes 35 minutes to get there); the others stay pending.
    let failed_id = {
        let store = Store::open_in(setup.dir.path().join("data")).unwrap();
        let rows = store
            .list_outbox(
                &OutboxFilter {
                    state: Some(OutboxState::Pending),
                    ..OutboxFilter::default()
                },
                1000,
            )
            .unwrap();
        assert!(rows.len() >= 5, "{rows:?}");
        // A key's row (not an org's), so its masked key can be checked.
        let id = rows
            .iter()
            .find(|r| r.source.quota_key().is_some_and(|q| q.starts_with("key:")))
            .unwrap()
            .idem_key
            .clone();
        assert!(
            store
                .mark_failed(
                    &id,
                    4,
                    Some(400),
                    "HTTP 400: the receiver rejected the request (4 attempts)"
                )
                .unwrap()
        );
        id
    };
    let before = receiver.count(&failed_id);

    // Second run with the receiver fixed: the pending rows are delivered, the failed one not.
    receiver.status.store(204, Ordering::SeqCst);
    let (mut second, _lines) = setup.run();
    let pending = attempted - 1;
    receiver.wait("pending rows delivered", Duration::from_secs(30), |r| {
        r.total() >= attempted + pending
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        receiver.count(&failed_id),
        before,
        "a failed row was sent unasked"
    );

    // The CLI beside the running engine.
    let failed = json_lines(&setup.outbox(&["list", "--state", "failed", "--json"]));
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0]["id"], failed_id.as_str());
    assert_eq!(failed[0]["last_status"], 400);
    assert_eq!(failed[0]["channel"], "webhook:ops");
    let org = failed[0]["org_id"].as_str().unwrap().to_owned();
    let by_org = json_lines(&setup.outbox(&["list", "--org", &org, "--json"]));
    assert!(by_org.iter().all(|v| v["org_id"] == org.as_str()) && !by_org.is_empty());
    let table = setup.outbox(&["list"]);
    assert!(table.status.success());
    let table = text(&table.stdout);
    assert!(table.starts_with("STATE"), "{table}");
    assert!(table.contains("HTTP 400"), "{table}");
    let show = setup.outbox(&["show", &failed_id]);
    assert!(show.status.success(), "{}", text(&show.stderr));
    let show = text(&show.stdout);
    assert!(
        show.contains("state:       failed") && show.contains("payload:"),
        "{show}"
    );
    // The webhook's payload never held a raw key, and the masked one is what is shown.
    let key = failed[0]["key"].as_str().unwrap();
    assert!(key.contains('…'), "{key}");

    // Read-only and dry runs change nothing.
    let ro = setup
        .cmd(&["--readonly", "outbox", "resend", &failed_id])
        .output()
        .unwrap();
    assert_eq!(ro.status.code(), Some(2), "{}", text(&ro.stderr));
    let dry = setup.outbox(&["retry-failed", "--dry-run"]);
    assert!(
        text(&dry.stdout).contains("1 rows would be queued"),
        "{}",
        text(&dry.stdout)
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(receiver.count(&failed_id), before);

    let resent = setup.outbox(&["resend", &failed_id]);
    assert!(resent.status.success(), "{}", text(&resent.stderr));
    assert_eq!(text(&resent.stdout).trim(), format!("queued {failed_id}"));
    receiver.wait("the resent row", Duration::from_secs(15), |r| {
        r.count(&failed_id) > before
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(receiver.count(&failed_id), before + 1, "delivered once");
    let after = json_lines(&setup.outbox(&["show", &failed_id, "--json"]));
    assert_eq!(after[0]["state"], "delivered", "{after:?}");
    assert!(after[0]["payload"]["key"].is_null(), "{after:?}");

    // A delivered row is not resent; a missing one is named.
    let again = setup.outbox(&["resend", &failed_id, "q:nope"]);
    assert_eq!(again.status.code(), Some(1));
    let err = text(&again.stderr);
    assert!(
        err.contains("is delivered") && err.contains("no outbox row \"q:nope\""),
        "{err}"
    );
    // Purge refuses rows still to be sent, and deletes old delivered ones.
    let refused = setup.outbox(&["purge", "--older-than", "0s", "--state", "pending"]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused.stderr));
    let purged = setup.outbox(&["purge", "--older-than", "0s"]);
    assert!(purged.status.success(), "{}", text(&purged.stderr));
    assert!(
        text(&purged.stdout).starts_with(&format!("deleted {} delivered rows", attempted)),
        "{}",
        text(&purged.stdout)
    );
    assert!(json_lines(&setup.outbox(&["list", "--json"])).is_empty());

    assert!(second.terminate(Duration::from_secs(15)).success());
}
