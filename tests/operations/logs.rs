//! `tykwatch run --log-format json --log-level trace`: logs on stderr as JSON objects, and no
//! output of any command (stdout, stderr, `check`, `outbox`, `snapshot`) ever holds a
//! configured secret or a raw API key.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::process::{
    BIN, JsonLines, Killed, demo_gateway_with_secret, free_port, request, signal, write,
};

const GW_SECRET: &str = "gw-secret-7f3a91c2";
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const INTAKE_SECRET: &str = "intake-secret-55e0b1";
const SMTP_PASSWORD: &str = "smtp-password-c0ffee";
const RAW_KEY_TAIL: &str = "rawkey9b8c7d6e5f4a3b2c1d0e";

#[test]
fn logs_are_json_on_stderr_and_no_output_holds_a_secret_or_a_raw_key() {
    let gw = free_port();
    let _gw = demo_gateway_with_secret(gw, "0", GW_SECRET);
    // A key whose raw value the test knows.
    let session = serde_json::json!({
        "alias": "known-raw", "org_id": "logorg", "quota_max": 100, "quota_remaining": 5,
        "quota_renewal_rate": 3600,
        "access_rights": {"a": {"api_id": "a", "api_name": "A", "versions": ["Default"]}},
    });
    let created = request(
        &format!("127.0.0.1:{gw}"),
        "POST",
        &format!("/tyk/keys/{RAW_KEY_TAIL}"),
        &[("x-tyk-authorization", GW_SECRET)],
        session.to_string().as_bytes(),
    );
    assert_eq!(created.status, 200, "{}", created.text());
    let raw_key = format!("logorg{RAW_KEY_TAIL}");

    let dir = tempfile::tempdir().unwrap();
    let intake_port = free_port();
    write(
        dir.path(),
        "config.toml",
        &format!(
            "[gateway]\nurl = \"http://127.0.0.1:{gw}\"\nsecret = \"${{TYK_GW_SECRET}}\"\n\
             poll_interval = \"1s\"\n\n\
             [[webhooks]]\nname = \"ops\"\nurl = \"http://127.0.0.1:{}/hook\"\nsecret = \"{WHSEC}\"\n\n\
             [intake]\nlisten = \"127.0.0.1:{intake_port}\"\nsecret = \"{INTAKE_SECRET}\"\n\n\
             [email_backend]\nenable_email_notifications = true\ncode = \"smtp\"\n\
             default_from_email = \"tyk@example.com\"\n\n\
             [email_backend.settings]\nSMTPAddress = \"127.0.0.1:{}\"\n\
             SMTPUsername = \"tyk@example.com\"\nSMTPPassword = \"{SMTP_PASSWORD}\"\n\n\
             [notify]\nemail_to = [\"ops@example.com\"]\n",
            free_port(),
            free_port()
        ),
    );
    let cmd = |args: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("--config")
            .arg(dir.path().join("config.toml"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(args)
            .env("TYK_GW_SECRET", GW_SECRET)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null());
        c
    };
    let mut child = cmd(&["run", "--log-level", "trace", "--log-format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = JsonLines::of(child.stdout.take().unwrap());
    let mut stderr = child.stderr.take().unwrap();
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let mut run = Killed(child);
    lines.until(Duration::from_secs(30), "a crossing", |v| {
        v["event"] == "threshold_crossed"
    });
    lines.until(Duration::from_secs(10), "a sweep", |v| {
        v["event"] == "sweep"
    });
    // The intake refuses a wrong secret and records a right one.
    let intake = format!("127.0.0.1:{intake_port}");
    let body =
        br#"{"event":"key_event.created","data":{"key":"logorgrawkey9b8c7d6e5f4a3b2c1d0e"}}"#;
    let wrong = request(
        &intake,
        "POST",
        "/events",
        &[("X-Tykwatch-Secret", "nope")],
        body,
    );
    assert_eq!(wrong.status, 401);
    let right = request(
        &intake,
        "POST",
        "/events",
        &[("X-Tykwatch-Secret", INTAKE_SECRET)],
        body,
    );
    assert_eq!(right.status, 202, "{}", right.text());
    lines.until(Duration::from_secs(10), "the received event", |v| {
        v["event"] == "received"
    });
    signal(&run.0, "HUP");
    lines.until(Duration::from_secs(10), "reload", |v| {
        v["event"] == "reload"
    });
    std::thread::sleep(Duration::from_millis(1500));
    assert!(run.terminate(Duration::from_secs(20)).success());
    let stdout: Vec<String> = lines.drain().iter().map(|v| v.to_string()).collect();
    let stderr = err_reader.join().unwrap();

    // The logs: JSON objects with a level, naming what happened.
    let logs: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(logs.iter().all(|l| l["level"].is_string()), "{stderr}");
    for message in [
        "started",
        "threshold crossed",
        "delivery failed, will retry",
        "event received",
        "configuration reloaded on SIGHUP",
        "stopped",
    ] {
        assert!(
            logs.iter().any(|l| l["message"] == message),
            "no {message:?} in\n{stderr}"
        );
    }

    // Every other output a user sees.
    let other: Vec<String> = [
        vec!["check", "--json"],
        vec!["outbox", "list", "--json"],
        vec!["snapshot", "--json"],
    ]
    .iter()
    .map(|args| {
        let o = cmd(args).output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
    .collect();
    let ids = other[1]
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect::<Vec<_>>();
    assert!(!ids.is_empty());
    let show = cmd(&["outbox", "show", &ids[0]]).output().unwrap();
    let everything = format!(
        "{}\n{stderr}\n{}\n{}",
        stdout.join("\n"),
        other.join("\n"),
        String::from_utf8_lossy(&show.stdout)
    );
    for secret in [
        GW_SECRET,
        WHSEC,
        &WHSEC[6..],
        INTAKE_SECRET,
        SMTP_PASSWORD,
        raw_key.as_str(),
        RAW_KEY_TAIL,
    ] {
        assert!(
            !everything.contains(secret),
            "{secret:?} appears in the output"
        );
    }
}
