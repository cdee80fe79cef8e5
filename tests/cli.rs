//! The real binary's non-interactive commands: snapshot on the demo and against a dead
//! gateway, templates, help, and configuration errors.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

mod common;

use std::time::Duration;

use common::binary::{Env, text};

/// A loopback port nothing listens on (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn snapshot_json_on_the_demo_masks_keys() {
    let env = Env::new();
    let out = env.cmd(&["--demo", "snapshot", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(lines.len() > 30, "{} quotas", lines.len());
    for l in &lines {
        for field in [
            "quota_id",
            "key",
            "alias",
            "org_id",
            "api_id",
            "quota_max",
            "quota_remaining",
            "used",
            "usage_pct",
            "quota_renews",
            "trigger_limits",
        ] {
            assert!(l.get(field).is_some(), "{field} missing in {l}");
        }
    }
    // No raw demo key (org id + 32 hex) is ever printed.
    assert!(!stdout.contains("5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d"));
    let portal = lines.iter().find(|l| l["alias"] == "portal-key").unwrap();
    assert_eq!(portal["key"], "5e9d…ef6d");
    let unlimited = lines
        .iter()
        .find(|l| l["alias"] == "internal-batch")
        .unwrap();
    assert_eq!(unlimited["usage_pct"], serde_json::Value::Null);
}

/// A cron job under another HOME (no config) must not get made-up data: `snapshot` and `run`
/// need a gateway or `--demo`, and say which.
#[test]
fn non_interactive_commands_need_a_gateway_or_demo() {
    let env = Env::new();
    for args in [&["snapshot", "--json"][..], &["run"][..]] {
        let out = env.cmd(args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            text(&out.stderr)
        );
        let err = text(&out.stderr);
        assert!(
            err.contains("no gateway configured")
                && err.contains("[gateway] url")
                && err.contains("--gateway URL")
                && err.contains("--demo"),
            "{err}"
        );
        assert_eq!(text(&out.stdout), "", "{args:?}");
    }
}

/// A config dir that is a file is an error naming the path, not "no config".
#[test]
fn a_config_dir_that_is_a_file_is_an_error() {
    let env = Env::new();
    std::fs::create_dir_all(env.dir.path().join("config")).unwrap();
    std::fs::write(env.dir.path().join("config/tykwatch"), "not a directory").unwrap();
    let out = env.cmd(&["--demo", "snapshot"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("config/tykwatch/config.toml") && err.contains("cannot read config file"),
        "{err}"
    );
}

#[test]
fn snapshot_table_on_the_demo() {
    let env = Env::new();
    let out = env.cmd(&["--demo", "snapshot"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let t = text(&out.stdout);
    assert!(t.starts_with("   ALIAS"), "{t}");
    assert!(t.contains("portal-key") && t.contains("Orders API") && t.contains("unlimited"));
}

#[test]
fn snapshot_of_a_dead_gateway_fails_with_what_to_fix() {
    let env = Env::new();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let out = env.cmd(&["--gateway", &url, "snapshot"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot reach the gateway") && err.contains("--gateway"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn a_bad_config_names_the_key_and_line() {
    let env = Env::new();
    let path = env.dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "[gateway]\nurl = \"http://x:8080\"\nsecret = \"s\"\npoll_interval = \"2x\"\n",
    )
    .unwrap();
    let out = env.cmd(&["--config", path.to_str().unwrap(), "snapshot"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(":4:") && err.contains("gateway.poll_interval"),
        "{err}"
    );
}

#[test]
fn templates_check_list_and_preview() {
    let env = Env::new();
    let out = env.cmd(&["templates", "check"]);
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains(" 0 failed"));
    let out = env.cmd(&["preview", "quota_threshold", "--format", "eml"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let eml = text(&out.stdout);
    assert!(
        eml.contains("multipart/alternative") && eml.contains("Subject:"),
        "{eml}"
    );
    let out = env.cmd(&["preview", "no_such_template"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("no template named"));
}

#[test]
fn every_command_has_help() {
    let env = Env::new();
    for args in [
        &["--help"][..],
        &["console", "--help"],
        &["snapshot", "--help"],
        &["demo-gateway", "--help"],
        &["preview", "--help"],
        &["templates", "--help"],
        &["templates", "import-go", "--help"],
    ] {
        let out = env.cmd(args);
        assert!(out.status.success(), "{args:?}");
        assert!(text(&out.stdout).contains("Usage: tykwatch"), "{args:?}");
    }
}

/// With 100 000 extra demo keys, every quota has its own `quota_id` (masked names collide:
/// `5e9d…ef6d` is an org prefix and four characters), and it is the same on a second run.
#[test]
fn snapshot_ids_are_unique_and_stable_across_100k_keys() {
    use std::collections::HashSet;
    let env = Env::new();
    let port = free_port();
    // A demo gateway with 100 000 extra keys on `port`, once it listens.
    let gateway = || {
        let gw = std::process::Command::new(env!("CARGO_BIN_EXE_tykwatch"))
            .args(["demo-gateway", "--port", &port.to_string(), "--speed", "0"])
            .args(["--extra-keys", "100000"])
            .env("TYK_GW_SECRET", "tykwatch-demo")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "demo gateway did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        gw
    };
    let url = format!("http://127.0.0.1:{port}");
    let mut gw = gateway();
    let ids = || -> (Vec<String>, usize) {
        let out = env
            .command(&["--gateway", &url, "snapshot", "--json"])
            .env("TYK_GW_SECRET", "tykwatch-demo")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        let lines: Vec<serde_json::Value> = text(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let names: HashSet<&str> = lines.iter().map(|l| l["quota"].as_str().unwrap()).collect();
        let names = names.len();
        let mut ids: Vec<String> = lines
            .iter()
            .map(|l| l["quota_id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        (ids, names)
    };
    let (first, names) = ids();
    let _ = gw.kill();
    let _ = gw.wait();
    assert!(first.len() > 100_000, "{} quotas", first.len());
    let distinct: HashSet<&String> = first.iter().collect();
    assert_eq!(distinct.len(), first.len(), "quota ids collide");
    assert!(names < first.len(), "masked names were expected to collide");
    // Never the raw key (the org id + 32 hex): a key's id is `key:` + a 32-hex digest.
    for id in first.iter().filter(|id| id.starts_with("key:")) {
        let digest = id[4..].split(':').next().unwrap();
        assert!(
            digest.len() == 32 && digest.bytes().all(|b| b.is_ascii_hexdigit()),
            "{id}"
        );
    }
    // The same ids from a new gateway process with the same keys.
    let mut gw = gateway();
    let (second, _) = ids();
    let _ = gw.kill();
    let _ = gw.wait();
    assert_eq!(first, second);
}

/// `snapshot` says what the console shows: inactive and expired keys, rates and times to
/// exhaustion (with `--over`), API names; percentages rounded.
#[test]
fn snapshot_marks_inactive_and_expired_keys_and_measures_rates_over_a_window() {
    let env = Env::new();
    let out = env.cmd(&["--demo", "snapshot", "--json", "--over", "2s"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let expired = lines
        .iter()
        .find(|l| l["alias"] == "expired-trial")
        .unwrap();
    assert_eq!(expired["expired"], true, "{expired}");
    assert!(
        lines.iter().any(|l| l["inactive"] == true),
        "an inactive demo key"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["rate_per_min"].as_f64().is_some_and(|r| r > 0.0)),
        "the demo's traffic shows as a rate"
    );
    assert!(
        lines
            .iter()
            .any(|l| l["exhausts_in_s"].as_i64().is_some_and(|s| s > 0))
    );
    let api = lines.iter().find(|l| l["scope"] == "api").unwrap();
    assert!(!api["api_name"].as_str().unwrap().is_empty(), "{api}");
    for l in &lines {
        if let Some(p) = l["usage_pct"].as_f64() {
            assert_eq!((p * 100.0).round() / 100.0, p, "two decimals: {l}");
        }
    }
    let table = text(&env.cmd(&["--demo", "snapshot"]).stdout);
    let row = table.lines().find(|l| l.contains("expired-trial")).unwrap();
    assert!(row.ends_with("expired"), "{row}");
}

/// A sweep that could not read some keys still prints what it read, and exits 3 (not 0, and
/// not 2, which is "unreadable").
#[tokio::test(flavor = "multi_thread")]
async fn a_partial_sweep_exits_3() {
    use common::{RawServer, Reply};
    let session = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/session_v5_8.json"
    ))
    .unwrap();
    let hello = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/hello.json"
    ))
    .unwrap();
    let srv = RawServer::start(move |r| match r.path.as_str() {
        "/hello" => Reply::json(200, hello.clone()),
        "/tyk/keys" => Reply::json(200, "{\"keys\":[\"k1\",\"broken\"]}\n"),
        "/tyk/keys/broken" => Reply::json(500, "{\"status\":\"error\",\"message\":\"boom\"}\n"),
        "/tyk/org/keys" => Reply::json(
            404,
            "{\"status\":\"error\",\"message\":\"ORG not found\"}\n",
        ),
        _ => Reply::json(200, session.clone()),
    })
    .await;
    let url = format!("http://{}", srv.addr);
    let env = Env::new();
    let out = tokio::task::spawn_blocking(move || {
        let out = env.cmd(&["--gateway", &url, "snapshot", "--json"]);
        drop(env);
        out
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(!text(&out.stdout).is_empty(), "what was read is printed");
    let err = text(&out.stderr);
    assert!(err.contains("broken") || err.contains("500"), "{err}");
    assert!(err.contains("could not read every key"), "{err}");
}

/// `key set-triggers` against a gateway (the demo, in this process, so the test sees every
/// write): the console's validation, one `PUT …?suppress_reset=1` of the whole session with
/// only the limits changed, by hash with `--hashed`, an org's monitor with `--org`, and nothing
/// written on a bad list, a dry run, `--readonly` or an unchanged list.
#[tokio::test(flavor = "multi_thread")]
async fn key_set_triggers_saves_the_session_without_resetting_its_quota() {
    use tykwatch::tyk::demo::{DemoGateway, DemoOptions, ORG_ACME, keys};
    use tykwatch::tyk::keyhash::hash_str;
    let gw = DemoGateway::start(DemoOptions {
        simulate: false,
        ..DemoOptions::default()
    })
    .await
    .unwrap();
    let (url, secret) = (gw.url(), gw.secret().to_string());
    let run = move |args: &[&str]| {
        let env = Env::new();
        let mut all = vec!["--gateway", url.as_str()];
        all.extend_from_slice(args);
        let out = env
            .command(&all)
            .env("TYK_GW_SECRET", &secret)
            .output()
            .unwrap();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let run = std::sync::Arc::new(run);
    let call = |args: Vec<&'static str>| {
        let run = run.clone();
        tokio::task::spawn_blocking(move || run(&args))
    };
    let key = keys::SHORT_WINDOW;
    let before = String::from_utf8(gw.key_document(key).unwrap()).unwrap();

    let (code, out, err) = call(vec!["key", "set-triggers", key, "50,95,80"])
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("trigger_limits 80 → 95, 80, 50"), "{out}");
    assert!(
        out.contains("saved: PUT /tyk/keys/") && out.contains("suppress_reset=1"),
        "{out}"
    );
    assert!(
        !out.contains(key) && !err.contains(key),
        "the key is masked: {out}{err}"
    );
    let writes = gw.session_writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].0, format!("PUT /tyk/keys/{key}?suppress_reset=1"));
    let expected = before.replacen(
        r#""trigger_limits":[80]"#,
        r#""trigger_limits":[95,80,50]"#,
        1,
    );
    assert_eq!(text(&writes[0].1), expected);

    // The same list again: nothing to write.
    let (code, out, _) = call(vec!["key", "set-triggers", key, "95,80,50"])
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    assert!(out.contains("nothing to change"), "{out}");
    // Refused before the gateway is asked: a bad list, --readonly; a dry run only reads.
    let (code, _, err) = call(vec!["key", "set-triggers", key, "80,80"])
        .await
        .unwrap();
    assert_eq!(code, Some(1));
    assert!(err.contains("80 is given twice"), "{err}");
    let (code, _, err) = call(vec!["--readonly", "key", "set-triggers", key, "90"])
        .await
        .unwrap();
    assert_eq!(code, Some(1));
    assert!(err.contains("--readonly"), "{err}");
    let (code, out, _) = call(vec!["key", "set-triggers", key, "90", "--dry-run"])
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    assert!(out.contains("not saved (--dry-run)"), "{out}");
    assert_eq!(gw.session_writes().len(), 1, "none of these wrote");

    // By hash, as on a gateway with hash_keys: true.
    let hash: &'static str = Box::leak(hash_str(key).into_boxed_str());
    let (code, out, err) = call(vec!["key", "set-triggers", "--hashed", hash, "none"])
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("95, 80, 50 → none"), "{out}");
    let writes = gw.session_writes();
    assert_eq!(
        writes[1].0,
        format!("PUT /tyk/keys/{hash}?suppress_reset=1&hashed=true")
    );
    assert!(text(&writes[1].1).contains(r#""trigger_limits":[]"#));

    // An organisation's monitor: PUT /tyk/org/keys/{org}, never with reset_quota.
    let (code, out, err) = call(vec!["key", "set-triggers", "--org", ORG_ACME, "90,60"])
        .await
        .unwrap();
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("→ 90, 60"), "{out}");
    assert_eq!(
        gw.session_writes()[2].0,
        format!("PUT /tyk/org/keys/{ORG_ACME}")
    );

    // Errors say what is wrong: an unknown key; a refused secret.
    let (code, _, err) = call(vec!["key", "set-triggers", "no-such-key", "90"])
        .await
        .unwrap();
    assert_eq!(code, Some(1));
    assert!(err.contains("has no session"), "{err}");
    let url = gw.url();
    let out = tokio::task::spawn_blocking(move || {
        let env = Env::new();
        env.command(&["--gateway", &url, "key", "set-triggers", "k", "90"])
            .env("TYK_GW_SECRET", "wrong")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("refused the secret"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(gw.session_writes().len(), 3);
    gw.shutdown().await;
}

/// The demo's Dashboard and Portal events reach the intake also when `[intake] secret` is set
/// (they carry it, as a Dashboard pointed at a secured intake would have to be told to).
#[test]
fn run_on_the_demo_receives_its_events_through_a_secured_intake() {
    use std::process::Stdio;
    let env = Env::new();
    let dir = env.dir.path().join("config").join("tykwatch");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "[intake]\nlisten = \"127.0.0.1:0\"\nsecret = \"demo-intake-secret-0123456789\"\n",
    )
    .unwrap();
    let child = env
        .command(&["--demo", "run"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = common::process::Killed(child);
    let mut lines = common::process::JsonLines::of(child.0.stdout.take().unwrap());
    let got = lines.until(Duration::from_secs(30), "a received demo event", |v| {
        v["event"] == "received" && v["name"] == "key_request_event.submitted"
    });
    assert_eq!(got["kind"], "dashboard", "{got}");
    assert!(
        !lines.seen.iter().any(|v| v["event"] == "intake_rejected"),
        "{:#?}",
        lines.seen
    );
}

/// `preview --format text` is for a terminal: control characters in the data (an alias with an
/// escape sequence) are shown as `?`, never written raw.
#[test]
fn preview_text_strips_control_characters() {
    let env = Env::new();
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/email_templates/samples/quota_threshold.json"
    ))
    .unwrap();
    let evil = sample.replace("portal-key", "evil\\u001b]0;pwned\\u0007\\u001b[2J");
    assert_ne!(evil, sample);
    let data = env.dir.path().join("evil.json");
    std::fs::write(&data, evil).unwrap();
    let out = env.cmd(&[
        "preview",
        "quota_threshold",
        "--data",
        data.to_str().unwrap(),
        "--format",
        "text",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(shown.contains("evil?]0;pwned??[2J"), "{shown}");
    assert!(
        !shown
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'),
        "{shown:?}"
    );
}

/// The console without a terminal says what to use instead, and writes no escape sequence.
#[test]
fn the_console_without_a_terminal_says_what_to_run() {
    let env = Env::new();
    let out = env
        .command(&["--demo"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(out.stdout, b"", "nothing on stdout");
    let err = text(&out.stderr);
    assert!(
        err.contains("the console needs a terminal") && err.contains("tykwatch run"),
        "{err}"
    );
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

/// `demo-gateway --port 0` prints the port it bound; a port in use is an error before any
/// claim to listen.
#[test]
fn demo_gateway_prints_the_port_it_bound_and_refuses_one_in_use() {
    use std::io::BufRead;
    let env = Env::new();
    let mut child = env
        .command(&["demo-gateway", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    assert_ne!(port, 0, "{line}");
    std::net::TcpStream::connect(("127.0.0.1", port)).expect("it listens there");

    let out = env.cmd(&["demo-gateway", "--port", &port.to_string()]);
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(text(&out.stdout), "", "no claim to listen");
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")) && err.contains("in use"),
        "{err}"
    );
}
