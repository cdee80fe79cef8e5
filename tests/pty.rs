//! The real binary in a pseudo-terminal, read through a vt100 emulator the way a person sees
//! it: starts on the demo gateway, filters, opens a detail, goes back and quits cleanly.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::io::ErrorKind;
use std::num::NonZeroU16;
use std::process::Command;
use std::time::{Duration, Instant};

use expectrl::Session;
use expectrl::process::unix::WaitStatus;

const COLS: u16 = 120;
const ROWS: u16 = 40;

struct Pty {
    session: expectrl::session::OsSession,
    vt: vt100::Parser,
    raw: Vec<u8>,
    eof: bool,
}

impl Pty {
    fn spawn(dir: &std::path::Path) -> Pty {
        let config = dir.join("config.toml");
        std::fs::write(&config, "").expect("write empty config");
        let data = dir.join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tykwatch"));
        cmd.env("TYKWATCH_CONFIG", &config)
            .env("TYKWATCH_DATA_DIR", &data)
            .env("TERM", "xterm-256color")
            .env_remove("TYK_GW_SECRET");
        Pty::spawn_cmd(cmd)
    }

    /// The console on the demo with `home` as HOME and `xdg` as XDG_CONFIG_HOME (user
    /// templates in `xdg/tykwatch/email_templates`), once the demo's quotas show.
    fn demo_in_home(home: &std::path::Path, xdg: &std::path::Path) -> Pty {
        Pty::demo_with(demo_command(home, xdg))
    }

    /// `cmd` (a [`demo_command`], maybe with more set) once the demo's quotas show.
    fn demo_with(cmd: Command) -> Pty {
        let mut pty = Pty::spawn_cmd(cmd);
        pty.wait_for("the demo quotas", Duration::from_secs(30), |s| {
            quota_count(s).is_some_and(|n| n > 0)
        });
        pty
    }

    fn spawn_cmd(cmd: Command) -> Pty {
        let mut session = Session::spawn(cmd).expect("spawn tykwatch in a pty");
        session
            .get_process_mut()
            .set_window_size(COLS, ROWS)
            .expect("window size");
        let rows = NonZeroU16::new(ROWS).expect("rows");
        let cols = NonZeroU16::new(COLS).expect("cols");
        Pty {
            session,
            vt: vt100::Parser::new(rows, cols, 0),
            raw: Vec::new(),
            eof: false,
        }
    }

    /// Reads what is there without blocking.
    fn pump(&mut self) {
        let mut buf = [0u8; 8192];
        while !self.eof {
            match self.session.try_read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.vt.process(&buf[..n]);
                    self.raw.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // Linux reports EIO on the master once the child has gone.
                Err(_) => self.eof = true,
            }
        }
    }

    fn screen(&self) -> String {
        self.vt.screen().contents()
    }

    /// Polls until the screen satisfies `ok`, failing with the screen after `timeout`.
    fn wait_for(&mut self, what: &str, timeout: Duration, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            self.pump();
            let screen = self.screen();
            if ok(&screen) {
                return screen;
            }
            assert!(
                !self.eof,
                "tykwatch exited while waiting for {what}; screen:\n{screen}"
            );
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Resizes the pty (the child gets SIGWINCH) and the emulator with it.
    fn resize(&mut self, cols: u16, rows: u16) {
        self.pump();
        self.session
            .get_process_mut()
            .set_window_size(cols, rows)
            .expect("window size");
        let r = NonZeroU16::new(rows).expect("rows");
        let c = NonZeroU16::new(cols).expect("cols");
        self.vt.set_size(r, c);
    }

    fn send(&mut self, bytes: &str) {
        use expectrl::Expect;
        self.session.send(bytes).expect("send to the pty");
    }

    fn wait_exit(&mut self, timeout: Duration) -> WaitStatus {
        let deadline = Instant::now() + timeout;
        while !self.eof {
            self.pump();
            assert!(
                Instant::now() < deadline,
                "tykwatch did not exit; screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        self.session
            .get_process()
            .wait()
            .expect("wait for tykwatch")
    }
}

/// The console on the demo with `home` as HOME and `xdg` as XDG_CONFIG_HOME, data in
/// `home/data`.
fn demo_command(home: &std::path::Path, xdg: &std::path::Path) -> Command {
    let data = home.join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tykwatch"));
    cmd.arg("--demo")
        .env("XDG_CONFIG_HOME", xdg)
        .env("HOME", home)
        .env("TYKWATCH_DATA_DIR", &data)
        .env("TERM", "xterm-256color")
        .env_remove("TYKWATCH_CONFIG")
        .env_remove("TYK_GW_SECRET");
    cmd
}

/// The count in the table title `quotas(all)[N]`.
fn quota_count(screen: &str) -> Option<usize> {
    let start = screen.find("quotas(all)[")? + "quotas(all)[".len();
    let rest = &screen[start..];
    rest[..rest.find(']')?].parse().ok()
}

/// `m` in a key's detail edits its trigger limits on a gateway (the demo, in this process, so
/// the test sees the PUT it received): one `PUT …?suppress_reset=1` whose body is the session
/// the gateway served, byte for byte, with only `monitor.trigger_limits` changed.
#[test]
fn m_edits_trigger_limits_with_one_put_that_keeps_the_quota() {
    use tykwatch::tyk::demo::{DemoGateway, DemoOptions, keys};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let gw = rt
        .block_on(DemoGateway::start(DemoOptions {
            simulate: false,
            ..DemoOptions::default()
        }))
        .unwrap();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[gateway]\nurl = \"{}\"\nsecret = \"${{TYK_GW_SECRET}}\"\n",
            gw.url()
        ),
    )
    .unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tykwatch"));
    cmd.env("TYKWATCH_CONFIG", &config)
        .env("TYKWATCH_DATA_DIR", &data)
        .env("TYK_GW_SECRET", gw.secret())
        .env("TERM", "xterm-256color");
    let mut pty = Pty::spawn_cmd(cmd);
    pty.wait_for("the quotas", Duration::from_secs(30), |s| {
        quota_count(s).is_some_and(|n| n > 0)
    });
    let before = String::from_utf8(gw.key_document(keys::SHORT_WINDOW).unwrap()).unwrap();
    assert!(before.contains(r#""trigger_limits":[80]"#), "{before}");

    pty.send("/ci-smoke\r");
    pty.wait_for("the one key", Duration::from_secs(10), |s| {
        quota_count(s) == Some(1) && s.contains("ci-smoke-5m")
    });
    pty.send("\r");
    pty.wait_for("the detail", Duration::from_secs(10), |s| {
        s.contains("identity") && s.contains("Triggers   80%")
    });
    pty.send("m");
    pty.wait_for("the editor", Duration::from_secs(10), |s| {
        s.contains("trigger limits of ci-smoke-5m") && s.contains("limits 80")
    });
    // Ctrl-U clears; a bad value says why; then the list, unsorted.
    pty.send("\x15101");
    pty.wait_for("the problem", Duration::from_secs(10), |s| {
        s.contains("at most 100")
    });
    pty.send("\x15");
    pty.send("50,95,80\r");
    let confirm = pty.wait_for("the confirm", Duration::from_secs(10), |s| {
        s.contains("80 → 95, 80, 50") && s.contains("suppress_reset=1")
    });
    assert!(confirm.contains("monitor.trigger_limits"), "{confirm}");
    assert!(gw.session_writes().is_empty(), "nothing is sent before y");
    pty.send("y");
    pty.wait_for("the saved note", Duration::from_secs(10), |s| {
        s.contains("saved:") && s.contains("95, 80, 50")
    });
    // The console reads the key again: the detail shows the stored limits.
    pty.wait_for("the new thresholds", Duration::from_secs(10), |s| {
        s.contains("95%") && !s.contains("trigger limits of")
    });

    let writes = gw.session_writes();
    assert_eq!(writes.len(), 1, "one write");
    let (request, body) = &writes[0];
    assert_eq!(
        request,
        &format!("PUT /tyk/keys/{}?suppress_reset=1", keys::SHORT_WINDOW)
    );
    let expected = before.replacen(
        r#""trigger_limits":[80]"#,
        r#""trigger_limits":[95,80,50]"#,
        1,
    );
    assert_eq!(String::from_utf8(body.clone()).unwrap(), expected);
    let after = String::from_utf8(gw.key_document(keys::SHORT_WINDOW).unwrap()).unwrap();
    assert_eq!(after, expected, "stored as sent; quota and renewal kept");

    pty.send("q");
    let status = pty.wait_exit(Duration::from_secs(10));
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    rt.block_on(gw.shutdown());
}

/// The demo's Dashboard and Portal send events to its intake: the Events view fills within
/// 30 s, and the demo's route puts their notifications in the Notifications view.
#[test]
fn the_demo_events_view_fills_and_routes_to_notifications() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pty = Pty::spawn(dir.path());
    pty.wait_for("the demo quotas", Duration::from_secs(30), |s| {
        s.contains("DEMO") && quota_count(s).is_some_and(|n| n > 0)
    });
    pty.send("3");
    pty.wait_for("two events", Duration::from_secs(30), |s| {
        s.contains("key_request_event.submitted") && s.contains("key_request_event.approved")
    });
    pty.send("2");
    pty.wait_for("their notifications", Duration::from_secs(20), |s| {
        s.contains("Dashboard key_re") && s.contains("email:event-org")
    });
    pty.send("q");
    let status = pty.wait_exit(Duration::from_secs(10));
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

/// `e` in the Templates view copies the shipped template into the (not yet existing) user
/// directory, suspends the console for `$VISUAL` — here a script that appends a line — and the
/// preview shows the edit once the console is back; an editor that fails says so.
#[test]
fn e_edits_a_template_in_the_editor_and_the_view_re_renders() {
    let home = tempfile::tempdir().expect("home");
    let xdg = home.path().join("xdg");
    let script = home.path().join("fake-editor");
    std::fs::write(
        &script,
        "#!/bin/sh\nprintf 'Edited by the fake editor.\\n' >> \"$1\"\necho \"$1\" > \"$1.opened\"\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = demo_command(home.path(), &xdg);
    cmd.env("VISUAL", &script);
    let mut pty = Pty::demo_with(cmd);
    let dir = xdg.join("tykwatch").join("email_templates");
    assert!(!dir.exists());
    pty.send("5");
    let shown = pty.wait_for("the templates", Duration::from_secs(10), |s| {
        s.contains("api_event") && s.contains("<e> edit")
    });
    assert!(!shown.contains("Edited by the fake editor"), "{shown}");
    // The text part: `e` opens the part shown.
    pty.send("p");
    pty.wait_for("the text part", Duration::from_secs(10), |s| {
        s.contains("tykwatch (api_event.updated)")
    });
    pty.send("e");
    pty.wait_for("the edit in the preview", Duration::from_secs(15), |s| {
        s.contains("Edited by the fake editor.")
    });
    let file = dir.join("api_event.text.tmpl");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.ends_with("Edited by the fake editor.\n"), "{text}");
    assert!(
        dir.join("api_event.subject").is_file(),
        "the whole template is copied"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("api_event.text.tmpl.opened"))
            .unwrap()
            .trim(),
        file.display().to_string()
    );
    // The console is back: keys work, and it watches the directory now.
    pty.wait_for("the watch", Duration::from_secs(10), |s| {
        s.contains("● watching")
    });
    pty.send("q");
    let status = pty.wait_exit(Duration::from_secs(10));
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
    // Nothing is overwritten the second time, and a failing editor is reported.
    let mut cmd = demo_command(home.path(), &xdg);
    cmd.env("VISUAL", "false");
    let mut pty = Pty::demo_with(cmd);
    pty.send("5p");
    pty.wait_for("the edited template", Duration::from_secs(10), |s| {
        s.contains("Edited by the fake editor.")
    });
    pty.send("e");
    pty.wait_for("the editor's failure", Duration::from_secs(15), |s| {
        s.contains("the editor (false) exited")
    });
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        text,
        "kept as it was"
    );
    pty.send("q");
    let status = pty.wait_exit(Duration::from_secs(10));
    assert!(matches!(status, WaitStatus::Exited(_, 0)), "{status:?}");
}

#[test]
fn demo_filter_detail_back_quit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pty = Pty::spawn(dir.path());

    pty.wait_for("the demo quotas", Duration::from_secs(30), |s| {
        s.contains("DEMO") && quota_count(s).is_some_and(|n| n > 0)
    });

    pty.send("/portal");
    pty.wait_for("the filter prompt", Duration::from_secs(10), |s| {
        s.contains("/portal")
    });
    pty.send("\r");
    // The title changes before the rows finish redrawing: wait for a whole frame, in which
    // no other key is left (else this times out with the screen).
    let filtered = pty.wait_for(
        "the filtered table without other keys",
        Duration::from_secs(10),
        |s| s.contains("</portal>") && s.contains("portal-key") && !s.contains("checkout"),
    );
    assert_eq!(quota_count(&filtered), Some(2), "{filtered}");

    pty.send("\r");
    pty.wait_for("the detail view", Duration::from_secs(10), |s| {
        s.contains("identity") && s.contains("used over the last")
    });

    pty.send("\x1b");
    pty.wait_for("the table again", Duration::from_secs(10), |s| {
        s.contains("</portal>") && !s.contains("identity")
    });

    pty.send("q");
    let status = pty.wait_exit(Duration::from_secs(10));
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status {status:?}"
    );
    // The terminal is restored: the alternate screen is the last thing left.
    let tail = &pty.raw[pty.raw.len().saturating_sub(64)..];
    assert!(
        pty.raw.ends_with(b"\x1b[?1049l"),
        "output does not end by leaving the alternate screen: {:?}",
        String::from_utf8_lossy(tail)
    );
}

#[test]
fn tiny_terminal_and_ctrl_c() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pty = Pty::spawn(dir.path());
    pty.wait_for("the demo quotas", Duration::from_secs(30), |s| {
        quota_count(s).is_some_and(|n| n > 0)
    });

    pty.resize(20, 5);
    pty.wait_for("the too-small message", Duration::from_secs(10), |s| {
        s.contains("too small")
    });
    pty.resize(COLS, ROWS);
    pty.wait_for("the table after growing", Duration::from_secs(10), |s| {
        quota_count(s).is_some_and(|n| n > 0)
    });

    pty.send("\x03");
    let status = pty.wait_exit(Duration::from_secs(10));
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status {status:?}"
    );
    assert!(pty.raw.ends_with(b"\x1b[?1049l"));
}

/// The Templates view re-renders a template edited on disk (in the user template directory
/// under `XDG_CONFIG_HOME`) while it is on screen, through the watcher.
#[test]
fn template_edited_on_disk_rerenders() {
    let dir = tempfile::tempdir().expect("tempdir");
    let xdg = dir.path().join("xdg");
    let user = xdg.join("tykwatch").join("email_templates");
    std::fs::create_dir_all(&user).expect("user template dir");
    let subject = user.join("test.subject");
    std::fs::write(&subject, "PTY subject one {{ hostname }}").expect("write subject");
    let mut pty = Pty::demo_in_home(dir.path(), &xdg);

    pty.send("5");
    pty.wait_for("the templates view", Duration::from_secs(10), |s| {
        s.contains("templates[") && s.contains("watching")
    });
    // `test` is the last but one template.
    pty.send("G");
    pty.send("k");
    pty.wait_for("the user subject", Duration::from_secs(10), |s| {
        s.contains("PTY subject one") && s.contains("(user: subject)")
    });

    std::fs::write(&subject, "PTY subject two, edited {{ hostname }}").expect("edit subject");
    let edited = pty.wait_for("the edited subject", Duration::from_secs(5), |s| {
        s.contains("PTY subject two, edited")
    });
    assert!(!edited.contains("PTY subject one"), "{edited}");

    // A mistake shows where it is, in place.
    std::fs::write(&subject, "PTY {{ nope }}").expect("break subject");
    pty.wait_for("the located error", Duration::from_secs(5), |s| {
        s.contains("test.subject:1")
    });

    pty.send("q");
    let status = pty.wait_exit(Duration::from_secs(10));
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status {status:?}"
    );
}

/// The Orgs view against the demo Dashboard: edit the first organisation's api_event webhook
/// (an invalid value first, refused in place), review the diff, save, reload, and find the new
/// value loaded back from the Dashboard.
#[test]
fn orgs_edit_webhook_save_and_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let xdg = dir.path().join("xdg");
    std::fs::create_dir_all(&xdg).expect("xdg dir");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).expect("data dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tykwatch"));
    cmd.arg("--demo")
        .env("XDG_CONFIG_HOME", &xdg)
        .env("HOME", dir.path())
        .env("TYKWATCH_DATA_DIR", &data)
        .env("TERM", "xterm-256color")
        .env_remove("TYKWATCH_CONFIG")
        .env_remove("TYK_GW_SECRET")
        .env_remove("TYK_DB_ADMIN_SECRET");
    let mut pty = Pty::spawn_cmd(cmd);
    pty.wait_for("the demo quotas", Duration::from_secs(30), |s| {
        quota_count(s).is_some_and(|n| n > 0)
    });

    pty.send("4");
    pty.wait_for("the demo organisations", Duration::from_secs(15), |s| {
        s.contains("orgs[3]") && s.contains("Acme Payments Ltd. · event_options")
    });
    // Into the form: the cursor is on api_event's webhook.
    pty.send("\r");
    pty.wait_for("the form focused", Duration::from_secs(10), |s| {
        s.contains(" 1/7 ")
            && s.contains("api_event.webhook  https://hooks.example.com/tyk/api-events")
    });
    pty.send("\r");
    pty.send("\x15"); // Ctrl-U clears the field
    pty.send("pty.example.com/hook");
    pty.wait_for("the validation error", Duration::from_secs(10), |s| {
        s.contains("✎api_event.webhook") && s.contains("✖ not an absolute URL")
    });
    pty.send("\r");
    pty.wait_for("the refusal", Duration::from_secs(10), |s| {
        s.contains("the value is not valid")
    });
    pty.send("\x15");
    pty.send("https://pty.example.com/tyk/hook?v=2");
    pty.wait_for("a valid value", Duration::from_secs(10), |s| {
        s.contains("✓ valid")
    });
    pty.send("\r");
    pty.wait_for("the pending change", Duration::from_secs(10), |s| {
        s.contains("· 1 pending") && s.contains("● api_event")
    });

    pty.send("s");
    let diff = pty.wait_for("the diff", Duration::from_secs(10), |s| {
        s.contains("save Acme Payments Ltd.?") && s.contains("y saves")
    });
    assert!(
        diff.contains("event_options.api_event.webhook:")
            && diff.contains("pty.example.com/tyk/hook?v=2"),
        "{diff}"
    );
    pty.send("y");
    pty.wait_for("the save", Duration::from_secs(15), |s| {
        s.contains("saved 1 change to Acme Payments Ltd.")
    });

    // Reload from the Dashboard: the saved value comes back, nothing pending.
    pty.send("r");
    let reloaded = pty.wait_for("the reloaded form", Duration::from_secs(15), |s| {
        s.contains("loaded 3 organisations from demo Dashboard")
            && s.contains("api_event.webhook  https://pty.example.com/tyk/hook?v=2")
    });
    assert!(!reloaded.contains("pending"), "{reloaded}");

    pty.send("q");
    let status = pty.wait_exit(Duration::from_secs(10));
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status {status:?}"
    );
}

/// A receiver that answers every request `410 Gone` (the dispatcher fails the row and disables
/// the channel at once); returns its port.
fn gone_receiver() -> u16 {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = [0u8; 65536];
            let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
            let _ = s.read(&mut buf);
            let _ =
                s.write_all(b"HTTP/1.1 410 Gone\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    port
}

/// Next to `tykwatch run` on the same data dir the console does not refuse to start: it
/// watches, says that the other process notifies, and shows that process's outbox read-only
/// from the store — here a row its receiver refused.
#[test]
fn console_beside_run_on_the_same_data_dir_watches_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[[webhooks]]\nname = \"gone\"\nurl = \"http://127.0.0.1:{}/hook\"\n",
            gone_receiver()
        ),
    )
    .expect("write config");
    let data = dir.path().join("data");
    let mut run = Command::new(env!("CARGO_BIN_EXE_tykwatch"));
    run.args(["--demo", "run"])
        .env("TYKWATCH_CONFIG", &config)
        .env("TYKWATCH_DATA_DIR", &data)
        .env_remove("TYK_GW_SECRET")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    let mut daemon = run.spawn().expect("spawn tykwatch run");
    let mut out = std::io::BufReader::new(daemon.stdout.take().expect("stdout"));
    // Its first line comes after the data dir is locked; then wait for a failed delivery.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut line = String::new();
    loop {
        line.clear();
        std::io::BufRead::read_line(&mut out, &mut line).expect("read");
        if line.contains("\"outcome\":\"disabled\"") {
            break;
        }
        assert!(Instant::now() < deadline, "no failed delivery: {line}");
    }

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tykwatch"));
    cmd.arg("--demo")
        .env("TYKWATCH_CONFIG", &config)
        .env("TYKWATCH_DATA_DIR", &data)
        .env("TERM", "xterm-256color")
        .env_remove("TYK_GW_SECRET");
    let mut pty = Pty::spawn_cmd(cmd);
    pty.wait_for("the watch-only notice", Duration::from_secs(20), |s| {
        s.contains("watching only")
    });
    pty.wait_for("the quotas", Duration::from_secs(20), |s| {
        s.contains("quotas")
    });
    pty.send("2");
    // A whole frame: the emulator may hold a frame half drawn over the previous one.
    pty.wait_for("the daemon's failed row", Duration::from_secs(10), |s| {
        s.contains("webhook:gone") && s.contains("failed") && !s.contains("no outbox yet")
    });
    pty.send("q");
    let _ = daemon.kill();
    let _ = daemon.wait();
}

/// `GET http://127.0.0.1:<port><path>`: the status and body.
fn http_get(port: u16, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let status = raw
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn the_console_serves_metrics_when_configured() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .expect("config");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tykwatch"));
    cmd.env("TYKWATCH_CONFIG", &config)
        .env("TYKWATCH_DATA_DIR", dir.path().join("data"))
        .env("TERM", "xterm-256color")
        .env_remove("TYK_GW_SECRET");
    let mut pty = Pty::spawn_cmd(cmd);
    let screen = pty.wait_for("the demo quotas", Duration::from_secs(30), |s| {
        quota_count(s).is_some_and(|n| n > 0)
    });
    let shown = quota_count(&screen).expect("count");
    let (status, body) = http_get(port, "/metrics");
    assert_eq!(status, 200, "{body}");
    let watched: usize = body
        .lines()
        .find_map(|l| l.strip_prefix("tykwatch_quotas_watched "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no tykwatch_quotas_watched in\n{body}"));
    // The console lists unlimited quotas too; the gauges are for limited ones.
    assert!(watched > 0 && watched <= shown, "{watched} of {shown}");
    assert!(
        body.contains("tykwatch_quota_usage_ratio{org_id="),
        "{body}"
    );
    assert_eq!(http_get(port, "/readyz").0, 200);
    pty.send("q");
    let status = pty.wait_exit(Duration::from_secs(10));
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status {status:?}"
    );
}

/// A user template that would loop for ever shows its located "ran out of fuel" in the
/// Templates view; the console stays responsive and quits on `q`.
#[test]
fn a_runaway_template_leaves_the_console_responsive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let xdg = dir.path().join("xdg");
    let user = xdg.join("tykwatch").join("email_templates");
    std::fs::create_dir_all(&user).expect("user template dir");
    // `api_event` is the first template the view selects.
    std::fs::write(
        user.join("api_event.text.tmpl"),
        "Runaway\n{% for a in range(99999) %}{% for b in range(99999) %}{{ a }}{% endfor %}\
         {% endfor %}\n",
    )
    .expect("write template");
    let mut pty = Pty::demo_in_home(dir.path(), &xdg);
    pty.send("5");
    pty.send("p"); // the text version
    pty.wait_for("the located limit error", Duration::from_secs(10), |s| {
        s.contains("api_event.text.tmpl:2") && s.contains("ran out of fuel")
    });
    let asked = Instant::now();
    pty.send("q");
    let status = pty.wait_exit(Duration::from_secs(5));
    assert!(asked.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status {status:?}"
    );
}

/// A user `keymap.toml` beside the config file: a rebinding works, a conflicting entry is
/// reported with its file and line and keeps the builtin keys, and the console starts.
#[test]
fn user_keymap_rebinds_and_reports_a_conflict() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("keymap.toml"),
        "# sort by name with n\nsort_name = \"n\"\nsort_org = \"q\"\n",
    )
    .expect("write keymap.toml");
    let mut pty = Pty::spawn(dir.path());
    let screen = pty.wait_for("the keymap warning", Duration::from_secs(30), |s| {
        quota_count(s).is_some_and(|n| n > 0) && s.contains("keymap.toml:3:1: sort_org: q")
    });
    assert!(screen.contains("would do both"), "{screen}");

    pty.send("n");
    pty.wait_for("the name sort", Duration::from_secs(10), |s| {
        s.contains("sort: name ↑")
    });
    pty.send("?");
    pty.wait_for("the help with the new key", Duration::from_secs(10), |s| {
        s.lines().any(|l| l.contains(" n ") && l.contains("name"))
    });
    pty.send("\x1b");
    // (Esc and q in one read would arrive as Alt-q.)
    pty.wait_for("the table again", Duration::from_secs(10), |s| {
        quota_count(s).is_some_and(|n| n > 0)
    });
    // `q` still quits: the conflicting entry was not applied.
    pty.send("q");
    let status = pty.wait_exit(Duration::from_secs(10));
    assert!(
        matches!(status, WaitStatus::Exited(_, 0)),
        "exit status {status:?}"
    );
}
