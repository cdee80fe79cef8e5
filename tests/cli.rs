//! The real binary's non-interactive commands: snapshot on the demo and against a dead
//! gateway, templates, help, and configuration errors.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

mod common;

use common::binary::{Env, text};

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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
