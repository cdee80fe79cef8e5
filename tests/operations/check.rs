//! `tykwatch check` against real counterparts on loopback: the demo gateway process, a
//! `redis-server`, a scripted SMTP server (accepting or refusing AUTH), a webhook receiver,
//! and servers that are down or hang.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::common::process::{BIN, demo_gateway, free_port, write};
use crate::common::redis::RedisServer;

/// An SMTP server that advertises AUTH and answers it with `auth_reply`; it never accepts
/// a message (`check` sends none).
fn smtp(auth_reply: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let _ = s.write_all(b"220 check.test ESMTP\r\n");
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut line = String::new();
                while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                    let cmd = line.trim().to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") {
                        b"250-check.test\r\n250 AUTH PLAIN LOGIN\r\n"
                    } else if cmd.starts_with("AUTH") {
                        auth_reply.as_bytes()
                    } else if cmd.starts_with("NOOP") {
                        b"250 2.0.0 OK\r\n"
                    } else if cmd.starts_with("QUIT") {
                        let _ = s.write_all(b"221 2.0.0 bye\r\n");
                        return;
                    } else if cmd.starts_with("MAIL") {
                        panic!("check sent a message: {cmd}");
                    } else {
                        b"502 5.5.2 what\r\n"
                    };
                    let _ = s.write_all(reply);
                    line.clear();
                }
            });
        }
    });
    port
}

/// A webhook receiver answering any request with 405 (as many do for HEAD).
fn hook() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let _ = s.write_all(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    port
}

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new(config: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "config.toml", config);
        Case { dir }
    }

    fn check(&self, args: &[&str]) -> (Output, Duration) {
        let started = Instant::now();
        let out = Command::new(BIN)
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .arg("check")
            .args(args)
            .env_remove("TYK_GW_SECRET")
            .env_remove("TYK_GW_STORAGE_PASSWORD")
            .env_remove("TYKWATCH_CONFIG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        (out, started.elapsed())
    }

    fn results(&self) -> (Option<i32>, Vec<serde_json::Value>) {
        let (out, _) = self.check(&["--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
        (out.status.code(), v.as_array().unwrap().clone())
    }
}

fn config(gw: u16, secret: &str, smtp_port: u16, hook_port: u16, redis: &str) -> String {
    format!(
        "[gateway]\nurl = \"http://127.0.0.1:{gw}\"\nsecret = \"{secret}\"\ntimeout = \"2s\"\n\n\
         [gateway.storage]\naddrs = [\"{redis}\"]\n\n\
         [[webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:{hook_port}/hook\"\n\n\
         [email_backend]\nenable_email_notifications = true\ncode = \"smtp\"\n\
         default_from_email = \"tyk@example.com\"\n\n\
         [email_backend.settings]\nSMTPAddress = \"127.0.0.1:{smtp_port}\"\n\
         SMTPUsername = \"tyk@example.com\"\nSMTPPassword = \"smtp-pass-0123\"\n\n\
         [notify]\nemail_to = [\"ops@example.com\"]\n"
    )
}

fn line<'a>(results: &'a [serde_json::Value], check: &str) -> &'a serde_json::Value {
    results
        .iter()
        .find(|r| r["check"] == check)
        .unwrap_or_else(|| panic!("no {check} in {results:#?}"))
}

#[test]
fn check_passes_when_everything_is_up_and_names_what_to_fix_when_not() {
    let gw = free_port();
    let _gw = demo_gateway(gw, "0");
    let redis = RedisServer::start();
    let (ok_smtp, refusing_smtp, hook) = (
        smtp("235 2.7.0 Authentication successful\r\n"),
        smtp("535 5.7.8 Authentication credentials invalid\r\n"),
        hook(),
    );

    // Everything up.
    let up = Case::new(&config(gw, "tykwatch-demo", ok_smtp, hook, &redis.addr()));
    let (code, results) = up.results();
    assert_eq!(code, Some(0), "{results:#?}");
    for r in &results {
        assert!(r["status"] == "ok" || r["status"] == "skip", "{r}");
    }
    assert!(
        line(&results, "gateway keys")["detail"]
            .as_str()
            .unwrap()
            .contains("read one")
    );
    assert!(
        line(&results, "email")["detail"]
            .as_str()
            .unwrap()
            .contains("AUTH as tyk@example.com accepted")
    );
    assert!(
        line(&results, "webhook ops")["detail"]
            .as_str()
            .unwrap()
            .contains("405")
    );
    // The table says the same, and never the SMTP password.
    let (table, _) = up.check(&[]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(
        text.starts_with("CHECK") && text.contains("everything configured works"),
        "{text}"
    );
    assert!(!text.contains("smtp-pass-0123"));

    // A wrong gateway secret.
    let (code, results) =
        Case::new(&config(gw, "not-the-secret", ok_smtp, hook, &redis.addr())).results();
    assert_eq!(code, Some(1));
    let hello = line(&results, "gateway /hello");
    // /hello needs no secret: the key listing is what fails, and says which setting to fix.
    let keys = line(&results, "gateway keys");
    assert_eq!(keys["status"], "fail", "{hello} {keys}");
    assert!(
        keys["detail"].as_str().unwrap().contains("secret"),
        "{keys}"
    );

    // SMTP refusing AUTH.
    let (code, results) = Case::new(&config(
        gw,
        "tykwatch-demo",
        refusing_smtp,
        hook,
        &redis.addr(),
    ))
    .results();
    assert_eq!(code, Some(1));
    let email = line(&results, "email");
    assert_eq!(email["status"], "fail");
    let d = email["detail"].as_str().unwrap();
    assert!(
        d.contains("authentication refused") && d.contains("SMTPPassword"),
        "{d}"
    );
    assert!(!d.contains("smtp-pass-0123"), "{d}");

    // Redis down.
    let down = format!("127.0.0.1:{}", free_port());
    let (code, results) = Case::new(&config(gw, "tykwatch-demo", ok_smtp, hook, &down)).results();
    assert_eq!(code, Some(1));
    let r = line(&results, "redis");
    assert_eq!(r["status"], "fail");
    assert!(
        r["detail"]
            .as_str()
            .unwrap()
            .contains("cannot reach Tyk's Redis"),
        "{r}"
    );
}

#[test]
fn check_against_a_gateway_that_hangs_ends_in_bounded_time() {
    // Accepts connections and never answers.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming() {
            held.push(s);
        }
    });
    let case = Case::new(&format!(
        "[gateway]\nurl = \"http://127.0.0.1:{port}\"\nsecret = \"s\"\ntimeout = \"1s\"\n"
    ));
    let (out, took) = case.check(&[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(took < Duration::from_secs(10), "{took:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("gateway /hello") && text.contains("FAIL"),
        "{text}"
    );

    // A broken config is the report's first line, with file:line.
    let bad = Case::new("[gateway]\nurl = \"http://127.0.0.1:1\"\nbogus = 1\n");
    let (out, _) = bad.check(&[]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("config.toml:3:1") && text.contains("bogus"),
        "{text}"
    );
}
