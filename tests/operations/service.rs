//! The shipped systemd unit: `systemd-analyze verify` accepts it (with the real binary's path)
//! and `systemd-analyze security` rates its hardening "OK" or better (exposure below 2).
#![cfg(target_os = "linux")]

use std::process::Command;

use crate::common::process::BIN;

fn analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze")
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "systemd-analyze: {e}: run scripts/test (it installs the Debian package \
                 `systemd`), or apt-get install systemd"
            )
        })
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string("deploy/systemd/tykwatch.service").unwrap();
    for d in [
        "DynamicUser=yes",
        "StateDirectory=tykwatch",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "Restart=on-failure",
    ] {
        assert!(unit.contains(d), "no {d}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tykwatch.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/tykwatch", BIN)).unwrap();
    let p = path.to_str().unwrap();
    let v = analyze(&["verify", p]);
    assert!(
        v.status.success() && v.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&v.stdout),
        String::from_utf8_lossy(&v.stderr)
    );
    let s = analyze(&["security", "--offline=true", p]);
    let text = String::from_utf8_lossy(&s.stdout);
    let level: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for tykwatch.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in {text}"));
    assert!(level < 2.0, "exposure {level}:\n{text}");
}
