//! Configuration: valid and invalid files, located messages, interpolation, masking, and the
//! example file kept in sync with the structs.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tykwatch::config::{Config, ConfigError, EmailBackendCode, Paths, Secret, load_or_default};

const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The variables the fixtures and the example reference; nothing reads the process env.
fn test_env() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("TYK_GW_SECRET", "gw-secret-value-7f3a9c"),
        ("TYK_DB_ADMIN_SECRET", "admin-secret-value-51d2"),
        ("HOOK_SECRET", "hook-secret-value-88e1"),
        ("TYKWATCH_WHSEC", WHSEC),
        ("SMTP_PASSWORD", "smtp-password-value-0c4b"),
        ("TYKWATCH_INTAKE_SECRET", "intake-secret-value-93aa"),
        ("USER_LABEL", "staging"),
    ])
}

fn load(text: &str) -> Result<Config, ConfigError> {
    let env = test_env();
    Config::load_from_str(text, "/etc/tykwatch/config.toml", &|name| {
        env.get(name).map(|v| (*v).to_owned())
    })
}

fn load_err(text: &str) -> String {
    match load(text) {
        Ok(config) => panic!("expected an error, got {config:?}"),
        Err(e) => e.to_string(),
    }
}

fn fixtures(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no fixtures in {}", dir.display());
    files
}

#[test]
fn every_valid_fixture_loads() {
    for path in fixtures("valid") {
        let text = fs::read_to_string(&path).unwrap();
        if let Err(e) = load(&text) {
            panic!("{}: {e}", path.display());
        }
    }
}

/// Each invalid fixture states what its message must contain in `# expect: …` lines.
#[test]
fn every_invalid_fixture_fails_with_its_expected_message() {
    for path in fixtures("invalid") {
        let text = fs::read_to_string(&path).unwrap();
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect: "))
            .collect();
        assert!(
            !expected.is_empty(),
            "{}: no `# expect:` line",
            path.display()
        );
        let message = match load(&text) {
            Ok(_) => panic!("{}: loaded, but must fail", path.display()),
            Err(e) => e.to_string(),
        };
        for fragment in expected {
            assert!(
                message.contains(fragment),
                "{}: message {message:?} lacks {fragment:?}",
                path.display()
            );
        }
        // One line per problem, each starting with the origin.
        for line in message.lines() {
            assert!(line.starts_with("/etc/tykwatch/config.toml"), "{line}");
        }
    }
}

#[test]
fn defaults() {
    let c = load("").unwrap();
    assert_eq!(c, Config::default());
    assert!(c.is_demo());
    assert_eq!(c.gateway.url, None);
    assert_eq!(c.gateway.poll_interval, Duration::from_secs(2));
    assert_eq!(c.gateway.concurrency, 16);
    assert_eq!(c.gateway.timeout, Duration::from_secs(10));
    assert_eq!(c.gateway.history, Duration::from_secs(600));
    assert!(c.monitor.enable_trigger_monitors);
    assert_eq!(c.monitor.global_trigger_limit, 0.0);
    assert!(c.monitor.global_trigger_limits.is_empty());
    assert!(c.monitor.monitor_user_keys && c.monitor.monitor_org_keys);
    assert_eq!(c.monitor.configuration.method, "POST");
    assert_eq!(c.monitor.configuration.event_timeout, 0);
    assert!(c.webhooks.is_empty());
    assert!(!c.email_backend.enable_email_notifications);
    assert_eq!(c.email_backend.code, EmailBackendCode::File);
    assert!(c.notify.notify_key_owner);
    assert_eq!(c.intake.listen, None);
    assert_eq!(c.intake.max_body, 1024 * 1024);
    assert_eq!(c.orgs.dir, None);
    assert_eq!(c.ui.theme, "default");
}

#[test]
fn full_file_values() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config/valid/full.toml");
    let c = load(&fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(c.gateway.url.as_deref(), Some("http://localhost:8080"));
    assert_eq!(c.gateway.secret.expose(), "gw-secret-value-7f3a9c");
    assert_eq!(c.gateway.poll_interval, Duration::from_millis(500));
    assert_eq!(c.gateway.history, Duration::from_secs(86_400));
    assert_eq!(c.dashboard.url.as_deref(), Some("http://[::1]:3000"));
    assert_eq!(c.monitor.global_trigger_limits, vec![50.0, 75.5, 100.0]);
    let hook = &c.monitor.configuration;
    assert_eq!(hook.method, "PUT");
    assert_eq!(
        hook.target_path,
        "https://hooks.example.com/quota?token=hook-secret-value-88e1"
    );
    assert_eq!(
        hook.header_map["X-Secret"].expose(),
        "hook-secret-value-88e1"
    );
    assert_eq!(hook.header_map["X-Literal"].expose(), "${NOT_A_VAR}");
    assert_eq!(hook.event_timeout, 60);
    assert_eq!(c.webhooks.len(), 2);
    assert_eq!(c.webhooks[0].secret.expose(), WHSEC);
    assert!(c.webhooks[0].enabled);
    assert!(c.webhooks[1].secret.is_empty());
    assert!(!c.webhooks[1].enabled);
    assert_eq!(c.email_backend.code, EmailBackendCode::Mailgun);
    assert_eq!(
        c.email_backend.settings.get("Domain").map(String::as_str),
        Some("mg.example.com")
    );
    assert_eq!(c.email_backend.default_from_name, "Tyk (staging)");
    assert_eq!(
        c.notify.org_email_to["5e9d9544a1dcd60001d0ed20"],
        vec!["owner@acme.example"]
    );
    assert_eq!(c.intake.listen, Some("0.0.0.0:8089".parse().unwrap()));
    assert_eq!(c.intake.max_body, 65536);
    assert_eq!(c.orgs.dir, Some(PathBuf::from("/var/lib/tykwatch/orgs")));
    assert_eq!(c.ui.theme, "high-contrast");
}

#[test]
fn base_urls_lose_their_trailing_slash() {
    let c = load("[gateway]\nurl = \"https://gw.example/\"\nsecret = \"s\"\n").unwrap();
    assert_eq!(c.gateway.url.as_deref(), Some("https://gw.example"));
}

#[test]
fn duration_and_size_forms() {
    let c = load(
        "[gateway]\npoll_interval = 3\ntimeout = \"1h30m\"\nhistory = \"2d\"\n[intake]\nmax_body = \"2MiB\"\n",
    )
    .unwrap();
    assert_eq!(c.gateway.poll_interval, Duration::from_secs(3));
    assert_eq!(c.gateway.timeout, Duration::from_secs(5400));
    assert_eq!(c.gateway.history, Duration::from_secs(2 * 86_400));
    assert_eq!(c.intake.max_body, 2 * 1024 * 1024);
}

#[test]
fn hash_keys_is_unset_true_or_false() {
    assert_eq!(load("[gateway]\n").unwrap().gateway.hash_keys, None);
    for (text, want) in [("true", Some(true)), ("false", Some(false))] {
        let c = load(&format!("[gateway]\nhash_keys = {text}\n")).unwrap();
        assert_eq!(c.gateway.hash_keys, want);
    }
}

// --- each kind of error: dotted key and :LINE: ----------------------------------------------

#[test]
fn unknown_key_in_each_section_is_named_with_its_line() {
    let sections = [
        ("gateway", "[gateway]"),
        ("dashboard", "[dashboard]"),
        ("monitor", "[monitor]"),
        ("monitor.configuration", "[monitor.configuration]"),
        (
            "webhooks[0]",
            "[[webhooks]]\nname = \"a\"\nurl = \"http://h\"",
        ),
        ("email_backend", "[email_backend]"),
        ("notify", "[notify]"),
        (
            "routes[0]",
            "[[routes]]\nevents = [\"*\"]\nemail_to = [\"a@b.c\"]",
        ),
        ("intake", "[intake]"),
        ("store", "[store]"),
        ("orgs", "[orgs]"),
        ("ui", "[ui]"),
    ];
    for (path, header) in sections {
        let text = format!("# comment\n{header}\nbogus_key = 1\n");
        let line = text.lines().count();
        let msg = load_err(&text);
        assert!(
            msg.contains(&format!(
                ":{line}:1: {path}.bogus_key: unknown key `bogus_key`"
            )),
            "{msg}"
        );
        assert!(
            msg.contains("expected"),
            "serde's list of valid keys is kept: {msg}"
        );
    }
    let msg = load_err("\n\nbogus_key = 1\n");
    assert!(msg.contains(":3:1: bogus_key: unknown key"), "{msg}");
}

#[test]
fn hash_keys_as_a_string_is_refused_with_its_line() {
    let msg = load_err("[gateway]\nurl = \"http://localhost:8080\"\nhash_keys = \"yes\"\n");
    assert!(
        msg.contains("config.toml:3:") && msg.contains("gateway.hash_keys"),
        "{msg}"
    );
    assert!(msg.contains("bool"), "{msg}");
}

#[test]
fn bad_duration_exact_message() {
    // With a secret: the file's only problem is the duration.
    let msg = load_err(
        "[gateway]\nurl = \"http://localhost:8080\"\npoll_interval = \"2x\"\nsecret = \"s\"\n",
    );
    assert_eq!(
        msg,
        "/etc/tykwatch/config.toml:3:17: gateway.poll_interval: invalid duration \"2x\" (use e.g. 500ms, 2s, 5m, 1h)"
    );
}

#[test]
fn bad_url() {
    let msg = load_err("[gateway]\nsecret = \"s\"\nurl = \"ftp://gw\"\n");
    assert!(msg.contains(":3:7: gateway.url: invalid URL"), "{msg}");
    let msg = load_err("[[webhooks]]\nname = \"a\"\nurl = \"https://\"\n");
    assert!(
        msg.contains(":3:7: webhooks[0].url: invalid URL: missing host"),
        "{msg}"
    );
}

#[test]
fn url_errors_do_not_echo_the_url() {
    let msg = load_err("[[webhooks]]\nname = \"a\"\nurl = \"https://u:tok3n@h/x\"\n");
    assert!(!msg.contains("tok3n"), "{msg}");
}

#[test]
fn concurrency_zero() {
    let msg = load_err("[gateway]\n\nconcurrency = 0\n");
    assert!(
        msg.contains(":3:15: gateway.concurrency: must be between 1 and 256, got 0"),
        "{msg}"
    );
}

#[test]
fn threshold_150() {
    let msg = load_err("[monitor]\nglobal_trigger_limit = 150\n");
    assert!(
        msg.contains(":2:24: monitor.global_trigger_limit:"),
        "{msg}"
    );
    let msg = load_err("[monitor]\nglobal_trigger_limits = [80, 150]\n");
    assert!(
        msg.contains(":2:30: monitor.global_trigger_limits[1]:"),
        "{msg}"
    );
    let msg = load_err("[monitor]\nglobal_trigger_limits = [nan]\n");
    assert!(msg.contains("monitor.global_trigger_limits[0]"), "{msg}");
}

#[test]
fn webhook_secret_without_whsec() {
    let msg = load_err(
        "[[webhooks]]\nname = \"a\"\nurl = \"https://h/x\"\nsecret = \"plain-secret-value\"\n",
    );
    assert!(
        msg.contains(":4:10: webhooks[0].secret: webhook secret must start with \"whsec_\""),
        "{msg}"
    );
    assert!(
        !msg.contains("plain-secret-value"),
        "the secret leaked: {msg}"
    );
}

#[test]
fn bad_email_code() {
    let msg = load_err("[email_backend]\ncode = \"SMTP\"\n");
    assert!(
        msg.contains(":2:8: email_backend.code: unknown email backend \"SMTP\""),
        "{msg}"
    );
    assert!(
        msg.contains("smtp, sendgrid, mailgun, mandrill, amazonses, file"),
        "{msg}"
    );
}

#[test]
fn toml_syntax_error() {
    let msg = load_err("[gateway]\nurl = \"http://x\"\nconcurrency = = 3\n");
    assert!(msg.starts_with("/etc/tykwatch/config.toml:3:"), "{msg}");
    assert!(msg.contains("invalid TOML"), "{msg}");
    assert_eq!(msg.lines().count(), 1, "{msg}");
}

#[test]
fn missing_env_var_names_variable_key_and_line() {
    let msg = load_err("[gateway]\nurl = \"http://x\"\nsecret = \"${NOPE_NOT_SET}\"\n");
    assert!(
        msg.contains(":3:10: gateway.secret: environment variable NOPE_NOT_SET is not set"),
        "{msg}"
    );
    let msg = load_err("[email_backend.settings]\nSMTPPassword = \"${NOPE}\"\n");
    assert!(
        msg.contains(":2:16: email_backend.settings.SMTPPassword: environment variable NOPE"),
        "{msg}"
    );
}

#[test]
fn dollar_dollar_brace_is_a_literal() {
    let c = load("[intake]\nsecret = \"a$${B}c$d-0123456789\"\n").unwrap();
    assert_eq!(c.intake.secret.expose(), "a${B}c$d-0123456789");
    // A literal ${ never consults the environment, even for a variable that is set.
    let c = load("[intake]\nsecret = \"$${TYK_GW_SECRET}-abc\"\n").unwrap();
    assert_eq!(c.intake.secret.expose(), "${TYK_GW_SECRET}-abc");
}

#[test]
fn interpolated_secret_with_quotes_does_not_break_toml() {
    let env = |name: &str| (name == "Q").then(|| "a\"b'c\\\n]-0123456789".to_owned());
    let c = Config::load_from_str("[intake]\nsecret = \"${Q}\"\n", "t", &env).unwrap();
    assert_eq!(c.intake.secret.expose(), "a\"b'c\\\n]-0123456789");
}

#[test]
fn several_cross_field_problems_are_all_reported() {
    let msg = load_err(
        "[gateway]\nurl = \"http://x\"\n\n[email_backend]\nenable_email_notifications = true\n",
    );
    assert_eq!(msg.lines().count(), 2, "{msg}");
    assert!(msg.contains(": gateway.secret: required"), "{msg}");
    assert!(
        msg.contains(": email_backend.default_from_email: required"),
        "{msg}"
    );
}

// --- secrets ----------------------------------------------------------------------------------

#[test]
fn secret_masking() {
    assert_eq!(Secret::new("abcdefghijkl").to_string(), "••••ijkl");
    assert_eq!(Secret::new("short-secret").to_string(), "••••cret");
    assert_eq!(Secret::new("elevenchars").to_string(), "••••");
    assert_eq!(format!("{:?}", Secret::new("x")), "\"••••\"");
    assert_eq!(Secret::default().to_string(), "");
    assert!(Secret::default().is_empty());
    assert_eq!(Secret::new("ünïcødé-sëcret").to_string(), "••••cret");
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let text =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml"))
            .unwrap();
    let config = load(&text).unwrap();
    let debug = format!("{config:?} {config:#?}");
    for (name, value) in test_env() {
        // Values that are not credentials may appear; every credential the example uses must not.
        if name == "USER_LABEL" {
            continue;
        }
        assert!(!debug.contains(value), "{name} leaked into Debug output");
    }
    assert!(
        debug.contains("SMTPAddress"),
        "non-secret settings stay readable"
    );
    assert!(debug.contains("smtp.example.com:587"));
}

// --- files and paths --------------------------------------------------------------------------

#[test]
fn load_names_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope.toml");
    let msg = Config::load(&path).unwrap_err().to_string();
    assert!(msg.starts_with(&path.display().to_string()), "{msg}");
    assert!(msg.contains("cannot read config file"), "{msg}");
}

#[test]
fn load_reports_the_file_path_and_resolves_relative_paths() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    fs::write(
        &path,
        "[orgs]\ndir = \"orgs\"\n[monitor.configuration]\ntemplate_path = \"t.json\"\n",
    )
    .unwrap();
    let c = Config::load(&path).unwrap();
    assert_eq!(c.orgs.dir, Some(dir.path().join("orgs")));
    assert_eq!(
        c.monitor.configuration.template_path,
        dir.path().join("t.json").display().to_string()
    );

    fs::write(&path, "[ui]\n\ntheme = 3\n").unwrap();
    let msg = Config::load(&path).unwrap_err().to_string();
    assert!(
        msg.starts_with(&format!("{}:3:9: ui.theme:", path.display())),
        "{msg}"
    );
}

#[test]
fn paths_and_load_or_default() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("conf/tykwatch.toml");
    let data = dir.path().join("data");

    let paths = Paths::resolve(Some(file.clone()), Some(data.clone())).unwrap();
    assert_eq!(paths.config_file, file);
    assert_eq!(paths.config_dir, dir.path().join("conf"));
    assert_eq!(paths.data_dir, data);
    assert!(paths.config_file_explicit);
    assert_eq!(paths.themes_dir(), dir.path().join("conf/themes"));
    // Named explicitly and missing: an error that names it.
    let msg = load_or_default(&paths).unwrap_err().to_string();
    assert!(msg.contains("tykwatch.toml"), "{msg}");

    // The default location missing: defaults.
    let implicit = Paths {
        config_file_explicit: false,
        ..paths.clone()
    };
    assert_eq!(load_or_default(&implicit).unwrap(), Config::default());

    fs::create_dir_all(dir.path().join("conf")).unwrap();
    fs::write(&file, "[ui]\ntheme = \"light\"\n").unwrap();
    assert_eq!(load_or_default(&paths).unwrap().ui.theme, "light");
    assert_eq!(load_or_default(&implicit).unwrap().ui.theme, "light");

    let bare = Paths::resolve(Some(PathBuf::from("tykwatch.toml")), Some(data)).unwrap();
    assert_eq!(bare.config_dir, PathBuf::from("."));
}

#[test]
fn default_paths_use_the_project_dirs() {
    // Only meaningful where a home directory exists (always on CI and dev machines).
    if let Ok(paths) = Paths::resolve(None, None) {
        assert!(paths.config_file.ends_with("config.toml"));
        assert_eq!(paths.config_file.parent(), Some(paths.config_dir.as_path()));
        assert!(!paths.config_file_explicit);
        assert!(paths.data_dir.to_string_lossy().contains("tykwatch"));
    }
}

// --- config.example.toml ----------------------------------------------------------------------

fn example_text() -> String {
    fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml")).unwrap()
}

#[test]
fn example_parses_and_sets_every_section() {
    let c = load(&example_text()).unwrap();
    assert!(!c.is_demo());
    assert_eq!(c.webhooks.len(), 1);
    assert_eq!(c.email_backend.code, EmailBackendCode::Smtp);
    assert!(c.intake.listen.is_some());
    assert!(c.orgs.dir.is_some());
}

/// The keys of a section, as serde reports them for an unknown key ("expected one of `a`, …"):
/// derived from the structs themselves, so a new field cannot be forgotten here.
fn struct_fields(header: &str) -> Vec<String> {
    let text = format!("{header}\nzz_not_a_key = 1\n");
    let msg = load_err(&text);
    let expected = msg
        .split_once("expected")
        .map(|(_, e)| e)
        .unwrap_or_default();
    let fields: Vec<String> = expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    assert!(!fields.is_empty(), "no field list in {msg:?}");
    fields
}

/// Sections of the example in file order: (header path, key lines with their preceding line).
/// A commented-out key (`# key = value`) or header (`# [gateway.storage]`) counts as documented:
/// optional settings whose mere presence changes behaviour are shown that way.
fn example_sections(text: &str) -> HashMap<String, Vec<(String, String)>> {
    fn header(line: &str) -> Option<&str> {
        line.strip_prefix("[[")
            .and_then(|h| h.strip_suffix("]]"))
            .or_else(|| line.strip_prefix('[').and_then(|h| h.strip_suffix(']')))
    }
    fn key(line: &str) -> Option<&str> {
        line.split_once('=').map(|(k, _)| k.trim())
    }
    fn commented_key(line: Option<&str>) -> Option<&str> {
        line.and_then(key).and_then(plain)
    }
    // In a comment only a plain name counts: prose such as "Default: absent = …" is no key.
    fn plain(name: &str) -> Option<&str> {
        (!name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.'))
        .then_some(name)
    }
    let mut sections: HashMap<String, Vec<(String, String)>> = HashMap::new();
    let mut current = String::new();
    let mut previous = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        let commented = trimmed.strip_prefix("# ");
        if let Some(h) = header(trimmed).or_else(|| commented.and_then(header).and_then(plain)) {
            current = h.to_owned();
        } else if let Some(k) = if trimmed.starts_with('#') {
            commented_key(commented)
        } else {
            key(trimmed)
        } {
            // A commented-out key needs a comment of its own above it, not another key.
            let documented = previous.trim_start().starts_with('#')
                && commented_key(previous.trim_start().strip_prefix("# ")).is_none();
            let before = if documented {
                previous.clone()
            } else {
                String::new()
            };
            sections
                .entry(current.clone())
                .or_default()
                .push((k.to_owned(), before));
        }
        previous = line.to_owned();
    }
    sections
}

#[test]
fn example_documents_every_key_with_a_comment() {
    let text = example_text();
    let sections = example_sections(&text);
    let top = struct_fields("");
    let mut checked = 0;
    for (section, header) in [
        ("gateway", "[gateway]"),
        ("gateway.storage", "[gateway.storage]"),
        ("dashboard", "[dashboard]"),
        ("monitor", "[monitor]"),
        ("monitor.configuration", "[monitor.configuration]"),
        ("webhooks", "[[webhooks]]"),
        ("email_backend", "[email_backend]"),
        ("notify", "[notify]"),
        ("routes", "[[routes]]"),
        ("intake", "[intake]"),
        ("orgs", "[orgs]"),
        ("ui", "[ui]"),
    ] {
        let root = section.split('.').next().unwrap();
        assert!(
            top.iter().any(|f| f == root),
            "{root} is not a top-level key"
        );
        for field in struct_fields(header) {
            let sub = format!("{section}.{field}");
            if sections.contains_key(&sub) {
                continue; // a sub-table with its own header, e.g. [monitor.configuration]
            }
            let entries = sections.get(section).map(Vec::as_slice).unwrap_or_default();
            let Some((_, before)) = entries.iter().find(|(k, _)| *k == field) else {
                panic!("config.example.toml does not set {sub}");
            };
            assert!(
                before.trim_start().starts_with('#'),
                "{sub} in config.example.toml has no comment above it"
            );
            checked += 1;
        }
    }
    for section in top {
        assert!(
            sections
                .keys()
                .any(|s| s.split('.').next() == Some(section.as_str())),
            "config.example.toml has no [{section}] section"
        );
    }
    assert!(checked >= 35, "only {checked} keys checked");
}

#[test]
fn no_interpolation_outside_config_loading() {
    // A Secret deserialized from untrusted input must not read the environment.
    let secret: Secret = serde_json::from_str("\"${PATH}\"").unwrap();
    assert_eq!(secret.expose(), "${PATH}");
}

#[test]
fn every_bad_value_is_reported_at_once_with_its_line_and_a_dropped_required_key_is_not_a_second_problem()
 {
    let text = "[gateway]\nurl = \"http://127.0.0.1:1\"\nsecret = \"s\"\nbogus = 1\n\
                poll_interval = \"1ms\"\n\n[metrics]\nlisten = \"nope\"\n\n\
                [[webhooks]]\nname = \"a b\"\nurl = \"https://a.example/h\"\n\n\
                [[webhooks]]\nname = \"ok\"\nurl = \"https://b.example/h\"\nsecret = \"nope\"\n";
    let err = load(text).unwrap_err();
    type Where = (Option<(usize, usize)>, Option<String>);
    let got: Vec<Where> = err
        .problems()
        .iter()
        .map(|p| (p.line_col, p.key.clone()))
        .collect();
    let key = |k: &str| Some(k.to_owned());
    assert_eq!(
        got,
        vec![
            (Some((4, 1)), key("gateway.bogus")),
            (Some((5, 17)), key("gateway.poll_interval")),
            (Some((8, 10)), key("metrics.listen")),
            (Some((11, 8)), key("webhooks[0].name")),
            (Some((17, 10)), key("webhooks[1].secret")),
        ],
        "{err}"
    );
}
