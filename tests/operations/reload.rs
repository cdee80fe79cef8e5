//! SIGHUP on `tykwatch run`: a changed threshold and a changed webhook URL apply without a
//! restart and without losing queued rows; a broken file is refused with its problems and the
//! running configuration kept.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::process::{
    BIN, JsonLines, Killed, demo_gateway, free_port, signal, sink, write,
};

fn config(gw: u16, hook_url: &str, thresholds: &str) -> String {
    format!(
        "[gateway]\nurl = \"http://127.0.0.1:{gw}\"\nsecret = \"tykwatch-demo\"\n\
         poll_interval = \"1s\"\n\n[monitor]\nglobal_trigger_limits = {thresholds}\n\n\
         [[webhooks]]\nname = \"ops\"\nurl = \"{hook_url}\"\n"
    )
}

/// The `webhook-id` of a crossing's row on the `ops` webhook (its idempotency key).
fn webhook_id(v: &serde_json::Value) -> String {
    format!(
        "q:{}:{}:{}:webhook:ops",
        v["quota_key"].as_str().unwrap(),
        v["period"],
        v["threshold"].as_f64().unwrap()
    )
}

fn crossing_at(v: &serde_json::Value, threshold: f64) -> bool {
    v["event"] == "threshold_crossed" && v["threshold"].as_f64() == Some(threshold)
}

#[test]
fn sighup_applies_a_new_threshold_and_webhook_url_and_refuses_a_broken_file() {
    let gw = free_port();
    let _gw = demo_gateway(gw, "0");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("config.toml");
    // First the webhook points at a closed port: its rows wait for a retry.
    let dead = format!("http://127.0.0.1:{}/hook", free_port());
    write(dir.path(), "config.toml", &config(gw, &dead, "[]"));
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&cfg)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("run")
        .env_remove("TYK_GW_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = JsonLines::of(child.stdout.take().unwrap());
    let mut run = Killed(child);
    lines.until(Duration::from_secs(30), "a sweep", |v| {
        v["event"] == "sweep"
    });
    lines.until(Duration::from_secs(10), "a second sweep", |v| {
        v["event"] == "sweep"
    });
    let before: Vec<String> = lines
        .drain()
        .iter()
        .filter(|v| v["event"] == "threshold_crossed")
        .map(webhook_id)
        .collect();
    assert!(!before.is_empty());
    assert!(!lines.seen.iter().any(|v| crossing_at(v, 33.0)));

    // A broken file: refused with file:line, the engine goes on.
    write(
        dir.path(),
        "config.toml",
        "[gateway]\nurl = \"http://127.0.0.1:1\"\npoll_interval = \"1ms\"\n",
    );
    signal(&run.0, "HUP");
    let refused = lines.until(Duration::from_secs(10), "reload_failed", |v| {
        v["event"] == "reload_failed"
    });
    let m = refused["message"].as_str().unwrap();
    assert!(
        m.contains("config.toml:3:") && m.contains("the running configuration is kept"),
        "{m}"
    );
    lines.until(Duration::from_secs(10), "a sweep after the refusal", |v| {
        v["event"] == "sweep" && v["error"].is_null()
    });

    // A new global threshold and the webhook's new URL.
    let (port, got) = sink();
    write(
        dir.path(),
        "config.toml",
        &config(gw, &format!("http://127.0.0.1:{port}/hook"), "[33.0]"),
    );
    signal(&run.0, "HUP");
    let reload = lines.until(Duration::from_secs(10), "reload", |v| {
        v["event"] == "reload"
    });
    assert_eq!(reload["restart_needed"], serde_json::json!([]), "{reload}");
    let notice = lines.until(Duration::from_secs(10), "the engine's notice", |v| {
        v["event"] == "notice"
    });
    assert!(
        notice["message"]
            .as_str()
            .unwrap()
            .contains("global thresholds [33.0]"),
        "{notice}"
    );
    let new = lines.until(Duration::from_secs(15), "a crossing at 33 %", |v| {
        crossing_at(v, 33.0)
    });
    // The queued rows of before the reload go to the new URL (their retry is 5 s after the
    // first attempt), and so does the new crossing.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let new_id = webhook_id(&new);
    loop {
        let all = got.lock().unwrap().join("\n").to_ascii_lowercase();
        let has = |id: &str| all.contains(&format!("webhook-id: {}", id.to_ascii_lowercase()));
        if before.iter().all(|id| has(id)) && has(&new_id) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "delivered after the reload: {} requests; before: {before:?}",
            got.lock().unwrap().len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(run.terminate(Duration::from_secs(15)).success());
}
