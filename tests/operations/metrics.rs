//! `[metrics]` on `tykwatch run` against the demo gateway as its own process.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::process::{
    BIN, JsonLines, Killed, Prometheus, demo_gateway, free_port, get, promtool, request, write,
};

const SECRET: &str = "tykwatch-demo";

fn config(dir: &std::path::Path, gateway_port: u16, listen: &str) -> std::path::PathBuf {
    write(
        dir,
        "config.toml",
        &format!(
            "[gateway]\nurl = \"http://127.0.0.1:{gateway_port}\"\nsecret = \"{SECRET}\"\n\
             poll_interval = \"1s\"\n\n[metrics]\nlisten = \"{listen}\"\n\n\
             [intake]\nlisten = \"127.0.0.1:0\"\nsecret = \"intake-secret-0123\"\n"
        ),
    )
}

/// The families of an exposition (`# TYPE` lines).
fn families(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect()
}

/// The `tykwatch_…` names a shipped file uses, as families (histogram suffixes removed).
fn names_used(path: &str) -> std::collections::BTreeSet<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = std::collections::BTreeSet::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("tykwatch_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        out.insert(family.to_owned());
        rest = &tail[end..];
    }
    out
}

fn tykwatch(config: &std::path::Path, data: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--config")
        .arg(config)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env_remove("TYK_GW_SECRET")
        .env_remove("TYKWATCH_CONFIG");
    c
}

/// `tykwatch run`, its lines, and the metrics address from its `started` line.
fn run(config: &std::path::Path, data: &std::path::Path) -> (Killed, JsonLines, String) {
    let mut child = tykwatch(config, data, &["run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = JsonLines::of(child.stdout.take().unwrap());
    let started = lines.until(Duration::from_secs(20), "started line", |v| {
        v["event"] == "started"
    });
    let addr = started["metrics"]
        .as_str()
        .unwrap_or_else(|| panic!("no metrics address: {started}"))
        .to_owned();
    (Killed(child), lines, addr)
}

fn sweep_ok(v: &serde_json::Value) -> bool {
    v["event"] == "sweep" && v["complete"] == true && v["error"].is_null()
}

/// A key whose alias holds every character the text format must escape.
const HOSTILE_ALIAS: &str = "evil \"quoted\"\nsecond line \\ back\\slash";
const HOSTILE_KEY: &str = "hostilekey0123456789abcdef0123456789";

fn add_hostile_key(gateway_port: u16) {
    let renews = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    let session = serde_json::json!({
        "alias": HOSTILE_ALIAS,
        "org_id": "hostile-org",
        "quota_max": 1000,
        "quota_remaining": 1000,
        "quota_renewal_rate": 3600,
        "quota_renews": renews,
        "access_rights": {"orders": {"api_id": "orders", "api_name": "Orders", "versions": ["Default"]}},
        "rate": 100, "per": 60, "allowance": 100,
    });
    let r = request(
        &format!("127.0.0.1:{gateway_port}"),
        "POST",
        &format!("/tyk/keys/{HOSTILE_KEY}"),
        &[
            ("x-tyk-authorization", SECRET),
            ("Content-Type", "application/json"),
        ],
        session.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "creating the key: {}", r.text());
}

/// What `tykwatch snapshot` reads for `alias`: the independent reading the gauges must match.
fn snapshot_of(config: &std::path::Path, data: &std::path::Path, alias: &str) -> serde_json::Value {
    let out = tykwatch(config, data, &["snapshot", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["alias"] == alias)
        .unwrap_or_else(|| panic!("no {alias} in the snapshot"))
}

fn value(result: &[serde_json::Value]) -> String {
    assert_eq!(result.len(), 1, "{result:?}");
    result[0]["value"][1].as_str().unwrap().to_owned()
}

#[test]
fn prometheus_scrapes_the_quota_gauges_of_a_known_key_and_promtool_accepts_the_exposition() {
    let port = free_port();
    // Speed 0: no simulated traffic, so the values Prometheus stores are the snapshot's.
    let _gw = demo_gateway(port, "0");
    add_hostile_key(port);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = config(dir.path(), port, "127.0.0.1:0");
    let known = snapshot_of(&cfg, &data, "nightly-sync");

    let (mut run, mut lines, addr) = run(&cfg, &data);
    lines.until(Duration::from_secs(30), "a successful sweep", sweep_ok);

    let health = get(&addr, "/healthz");
    assert_eq!((health.status, health.text().as_str()), (200, "ok\n"));
    let ready = get(&addr, "/readyz");
    assert_eq!(ready.status, 200, "{}", ready.text());

    let m = get(&addr, "/metrics");
    assert_eq!(m.status, 200);
    assert!(
        m.headers
            .to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{}",
        m.headers
    );
    let check = promtool(&["check", "metrics"], &m.body);
    assert!(
        check.status.success(),
        "promtool check metrics: {}{}\n{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr),
        m.text()
    );
    let text = m.text();
    // The alias is escaped as the format says; the raw key is nowhere.
    assert!(
        text.contains(r#"alias="evil \"quoted\"\nsecond line \\ back\\slash""#),
        "{text}"
    );
    assert!(!text.contains(HOSTILE_KEY), "raw key in /metrics");
    for family in [
        "tykwatch_build_info{version=",
        "tykwatch_quotas_watched ",
        "tykwatch_sweep_duration_seconds_bucket{le=\"+Inf\"}",
        "tykwatch_last_successful_sweep_timestamp_seconds ",
        "tykwatch_thresholds_crossed_total{org_id=",
        "tykwatch_outbox_dead_rows ",
        "tykwatch_store_instances 1\n",
        "tykwatch_store_settings_variants 1\n",
        "tykwatch_instance_info{instance_id=",
        "tykwatch_metrics_dropped_series_total 0",
    ] {
        assert!(text.contains(family), "no {family} in\n{text}");
    }

    // The shipped dashboard and alert rules use only what tykwatch exposes.
    let exposed = families(&text);
    for file in [
        "deploy/grafana/tykwatch.json",
        "deploy/prometheus/tykwatch-alerts.yml",
    ] {
        let used = names_used(file);
        assert!(used.len() >= 5, "{file}: {used:?}");
        let unknown: Vec<_> = used.difference(&exposed).collect();
        assert!(
            unknown.is_empty(),
            "{file} uses {unknown:?}, not in {exposed:?}"
        );
    }

    let prom = Prometheus::start(&addr);
    let q = r#"tykwatch_quota_used{alias="nightly-sync",scope="key"}"#;
    let used = prom.wait_for(q, Duration::from_secs(30));
    assert_eq!(value(&used), known["used"].to_string(), "{used:?}");
    let max = prom.query(r#"tykwatch_quota_max{alias="nightly-sync",scope="key"}"#);
    assert_eq!(value(&max), known["quota_max"].to_string());
    assert_eq!(used[0]["metric"]["org_id"], known["org_id"]);
    assert_eq!(used[0]["metric"]["key"], known["key"], "the console's mask");
    // One id scheme: the series' key_id is the snapshot's quota_id digest.
    assert_eq!(
        format!("key:{}", used[0]["metric"]["key_id"].as_str().unwrap()),
        known["quota_id"].as_str().unwrap()
    );
    // The hostile alias survives Prometheus's parser unchanged.
    let hostile = prom.query(r#"tykwatch_quota_remaining{org_id="hostile-org"}"#);
    assert_eq!(value(&hostile), "1000");
    assert_eq!(hostile[0]["metric"]["alias"], HOSTILE_ALIAS);
    let ratio = prom.query(r#"tykwatch_quota_usage_ratio{org_id="hostile-org"}"#);
    assert_eq!(value(&ratio), "0");
    // Every family of the exposition was ingested: nothing in it made Prometheus drop it.
    let up = prom.query(r#"up{job="tykwatch"}"#);
    assert_eq!(value(&up), "1");

    assert!(run.terminate(Duration::from_secs(15)).success());
}

#[test]
fn readyz_turns_503_with_the_reason_while_the_gateway_is_away_and_200_when_it_returns() {
    let port = free_port();
    let gw = demo_gateway(port, "0");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = config(dir.path(), port, "127.0.0.1:0");
    let (mut run, mut lines, addr) = run(&cfg, &data);
    lines.until(Duration::from_secs(30), "a successful sweep", sweep_ok);
    assert_eq!(get(&addr, "/readyz").status, 200);

    drop(gw);
    let failed = lines.until(Duration::from_secs(30), "a failed sweep", |v| {
        v["event"] == "sweep" && !v["error"].is_null()
    });
    let r = get(&addr, "/readyz");
    assert_eq!(r.status, 503, "{failed}");
    assert!(r.text().contains("the last sweep failed"), "{}", r.text());
    assert!(
        r.text().contains(&port.to_string()),
        "names the gateway: {}",
        r.text()
    );
    // The process still answers.
    assert_eq!(get(&addr, "/healthz").status, 200);

    let _gw = demo_gateway(port, "0");
    lines.until(
        Duration::from_secs(90),
        "a sweep after the return",
        sweep_ok,
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = get(&addr, "/readyz");
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "{}", r.text());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(run.terminate(Duration::from_secs(15)).success());
}

#[test]
fn a_metrics_port_in_use_is_a_clear_error_at_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let port = free_port();
    let _gw = demo_gateway(port, "0");
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), port, &listen);
    let mut c = tykwatch(&cfg, &dir.path().join("data"), &["run"]);
    let out = c.stdin(Stdio::null()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("[metrics] listen") && err.contains(&listen) && err.contains("in use"),
        "{err}"
    );
}

#[test]
fn the_shipped_alert_rules_pass_promtool_and_their_unit_tests() {
    for args in [
        ["check", "rules", "deploy/prometheus/tykwatch-alerts.yml"],
        [
            "test",
            "rules",
            "deploy/prometheus/tykwatch-alerts.test.yml",
        ],
    ] {
        let out = promtool(&args, b"");
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string("deploy/grafana/tykwatch.json").unwrap())
            .unwrap();
    assert!(dashboard["panels"].as_array().unwrap().len() > 10);
}
