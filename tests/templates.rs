//! E-mail templates: every shipped template × sample as snapshots (text, HTML, eml), hostile
//! data, located errors, user-directory shadowing, the Go-compatible webhook environment
//! (byte-for-byte against Tyk's vectors), the Go → minijinja converter corpus, the CLI
//! functions and the file watcher.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tykwatch::templates::cli::{self, MailOptions, PreviewFormat};
use tykwatch::templates::go::{EventMessage, GoTemplate};
use tykwatch::templates::watch::Watcher;
use tykwatch::templates::{
    ErrorKind, Origin, Part, QuotaNotice, Templates, ensure_user_copy, go_import,
    html_to_terminal_text, to_eml,
};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
const SHIPPED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/email_templates");

fn mail() -> MailOptions {
    MailOptions {
        from: "Tyk <tyk@example.com>".parse().unwrap(),
        to: vec!["api-ops@example.com".into()],
    }
}

/// The Date header and the MIME boundary change on every run.
fn eml_filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (r"(?m)^Date: .*\r?$", "Date: [DATE]"),
        (r#"boundary="[^"]+""#, r#"boundary="[BOUNDARY]""#),
        (
            r"(?m)^--[0-9A-Za-z_=.'()+,/:?-]{20,}(--)?\r?$",
            "--[BOUNDARY]$1",
        ),
    ]
}

fn user_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// ---------------------------------------------------------------------------------------------
// The shipped set
// ---------------------------------------------------------------------------------------------

#[test]
fn embedded_list_matches_the_directory() {
    let t = Templates::shipped();
    let mut on_disk = Vec::new();
    for entry in fs::read_dir(SHIPPED).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".subject") || name.ends_with(".tmpl") {
            on_disk.push(name);
        }
    }
    for entry in fs::read_dir(Path::new(SHIPPED).join("samples")).unwrap() {
        on_disk.push(format!(
            "samples/{}",
            entry.unwrap().file_name().into_string().unwrap()
        ));
    }
    on_disk.sort();

    let mut embedded = vec!["layout.html.tmpl".to_string()];
    for name in t.names() {
        let info = t.info(&name).unwrap();
        for (part, origin, display) in &info.parts {
            assert_eq!(origin, &Origin::Shipped);
            assert_eq!(
                display,
                &format!("email_templates/{}", part.file_name(&name))
            );
            embedded.push(part.file_name(&name));
        }
        for s in &info.samples {
            embedded.push(format!("samples/{}.json", s.id));
        }
    }
    embedded.sort();
    assert_eq!(embedded, on_disk, "update src/templates/shipped.rs");

    assert_eq!(
        t.names(),
        [
            "api_event",
            "event",
            "key_event",
            "key_request_approved",
            "key_request_rejected",
            "key_request_submitted",
            "password_reset",
            "quota_exhausted",
            "quota_threshold",
            "quota_threshold_developer",
            "test",
            "welcome"
        ]
    );
    for name in t.names() {
        let info = t.info(&name).unwrap();
        assert_eq!(
            info.parts.len(),
            3,
            "{name} must have subject, text and html"
        );
        assert!(
            t.samples_of(&name).iter().any(|s| s.id == name),
            "{name} needs samples/{name}.json"
        );
    }
}

#[test]
fn every_template_with_every_sample() {
    let t = Templates::shipped();
    let mut count = 0;
    for name in t.names() {
        for sample in t.samples_of(&name) {
            let email = t
                .render_sample(&name, &sample.id)
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(!email.subject.is_empty());
            assert!(!email.subject.contains(['\r', '\n']));
            assert!(email.html.starts_with("<!DOCTYPE html>"), "{}", sample.id);
            assert!(email.html.contains("<!-- preheader -->"), "{}", sample.id);
            assert!(email.html.contains("width=\"600\""), "{}", sample.id);
            insta::assert_snapshot!(
                format!("render__{}", sample.id),
                format!(
                    "Subject: {}\n\n----- text -----\n{}\n----- html -----\n{}",
                    email.subject, email.text, email.html
                )
            );
            let eml = to_eml(
                &email,
                &mail().from,
                &mail().to,
                &format!("{}@tykwatch", sample.id),
            )
            .unwrap();
            assert!(eml.contains("multipart/alternative"));
            insta::with_settings!({ filters => eml_filters() }, {
                insta::assert_snapshot!(format!("eml__{}", sample.id), eml.replace("\r\n", "\n"));
            });
            count += 1;
        }
    }
    assert_eq!(count, 19);
}

#[test]
fn quota_samples_are_quota_notices() {
    let t = Templates::shipped();
    for name in [
        "quota_threshold",
        "quota_threshold_developer",
        "quota_exhausted",
    ] {
        for s in t.samples_of(name) {
            let v = t.sample(&s.id).unwrap();
            let notice: QuotaNotice =
                serde_json::from_value(v.clone()).unwrap_or_else(|e| panic!("{}: {e}", s.display));
            // Serializing the struct gives back the sample: the README documents one shape.
            assert_eq!(serde_json::to_value(&notice).unwrap(), v, "{}", s.display);
        }
    }
}

#[test]
fn key_request_samples_wrap_the_documented_payload() {
    let fixture: Value = serde_json::from_str(
        &fs::read_to_string(format!("{FIXTURES}/key_request_event.json")).unwrap(),
    )
    .unwrap();
    let t = Templates::shipped();
    assert_eq!(t.sample("key_request_submitted").unwrap(), fixture);
    for (id, event) in [
        ("key_request_approved", "key_request_event.approved"),
        ("key_request_rejected", "key_request_event.rejected"),
    ] {
        let s = t.sample(id).unwrap();
        assert_eq!(s["event"], event);
        assert_eq!(
            s["data"]["portal_developer"],
            fixture["data"]["portal_developer"]
        );
        assert_eq!(
            s["data"]["catalogue_entry"],
            fixture["data"]["catalogue_entry"]
        );
    }
}

#[test]
fn quota_notice_from_a_sample() {
    use tykwatch::quota::Sample;
    use tykwatch::tyk::session::SessionState;
    let session: SessionState =
        serde_json::from_str(&fs::read_to_string(format!("{FIXTURES}/session_v5_8.json")).unwrap())
            .unwrap();
    let key = "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d";
    let samples = Sample::from_key_session(key, &session, 1_740_824_700_000);
    let api = samples
        .iter()
        .find(|s| s.id.scope() == tykwatch::quota::Scope::Api)
        .unwrap();
    let n = QuotaNotice::from_sample(api, 80.0, 1_740_824_700)
        .with_rate(Some(14.2), Some(634))
        .with_dashboard_hostname("admin.example.com");
    assert_eq!(n.scope, "api");
    assert_eq!(n.label, "portal-key");
    assert_eq!(n.key.as_ref().unwrap().masked, "5e9d…ef6d");
    assert_eq!(n.api.as_ref().unwrap().name, "Orders API");
    assert_eq!(n.usage_percentage, 85.0);
    assert_eq!((n.used, n.quota_remaining), (850, 150));
    assert_eq!(n.trigger_limits, [50.0, 75.0, 80.0, 90.0]);
    assert_eq!(n.quota_renews_rfc3339, "2025-03-01T11:00:00Z");
    assert_eq!(n.renews_in_human, "in 35 minutes");
    assert_eq!(n.window_human, "1 hour");
    assert_eq!(n.eta_human.as_deref(), Some("10 minutes"));
    assert_eq!(
        n.dashboard_url.as_deref(),
        Some("https://admin.example.com")
    );
    assert_eq!(
        n.developer.as_ref().unwrap().id.as_deref(),
        Some("62b3fb9a1d5e4f00017226f5")
    );
    assert_eq!(n.template_name(false), "quota_threshold");
    // The raw key never reaches the template data.
    assert!(!serde_json::to_string(&n).unwrap().contains(key));
    Templates::shipped().render("quota_threshold", &n).unwrap();
    let org = samples[0].clone();
    let org = tykwatch::quota::Sample {
        id: tykwatch::quota::QuotaId::Org("5e9d9544a1dcd60001d0ed20".into()),
        ..org
    };
    let n = QuotaNotice::from_sample(&org, 80.0, 1_740_824_700).with_org_name("Acme Payments Ltd.");
    assert_eq!(
        (n.label.as_str(), n.key.is_none(), n.developer.is_none()),
        ("Acme Payments Ltd.", true, true)
    );
    Templates::shipped().render("quota_threshold", &n).unwrap();
    Templates::shipped()
        .render("quota_threshold_developer", &n)
        .unwrap();
}

// ---------------------------------------------------------------------------------------------
// Hostile data
// ---------------------------------------------------------------------------------------------

fn hostile_notice() -> Value {
    let t = Templates::shipped();
    let mut v = t.sample("quota_threshold").unwrap();
    let evil = "<script>alert(\"x\")</script> & 'q'\r\nBcc: evil@example.com";
    v["label"] = json!(evil);
    v["key"]["alias"] = json!(evil);
    v["org"]["name"] = json!("Acme <b>& Co</b>\nX-Injected: 1");
    v["api"]["name"] = json!("\"><img src=x onerror=alert(1)>");
    v["developer"]["email"] = json!("a@b.example\"><script>x</script>");
    v["dashboard_url"] = json!("javascript:alert(1)");
    v
}

#[test]
fn hostile_values_are_escaped_in_html() {
    let t = Templates::shipped();
    let email = t.render("quota_threshold", &hostile_notice()).unwrap();
    for bad in ["<script", "<img", "<b>", "onerror=alert(1)>", "javascript:"] {
        assert!(!email.html.contains(bad), "{bad} leaked into the HTML");
    }
    assert!(email.html.contains("&lt;script&gt;"));
    assert!(email.html.contains("&amp;"));
    assert!(email.html.contains("&quot;"));
    assert!(email.html.contains("href=\"#\""), "unsafe URL replaced");
    // The text part is plain text: shown verbatim, which is harmless there.
    assert!(email.text.contains("<script>"));
}

#[test]
fn subjects_cannot_inject_headers() {
    let t = Templates::shipped();
    let email = t.render("quota_threshold", &hostile_notice()).unwrap();
    assert!(!email.subject.contains(['\r', '\n']));
    assert!(email.subject.contains("'q' Bcc: evil@example.com"));
    let eml = to_eml(&email, &mail().from, &mail().to, "id@tykwatch").unwrap();
    let headers = eml.split("\r\n\r\n").next().unwrap();
    for line in headers.split("\r\n") {
        assert!(!line.starts_with("Bcc:"), "{line}");
        assert!(!line.starts_with("X-Injected"), "{line}");
    }
    // Recipients and Message-IDs are validated, never spliced in.
    let bad_to = vec!["ops@example.com\r\nBcc: evil@example.com".to_string()];
    let e = to_eml(&email, &mail().from, &bad_to, "id").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Message);
    let e = to_eml(
        &email,
        &mail().from,
        &mail().to,
        "id\r\nBcc: evil@example.com",
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Message);
}

#[test]
fn event_payloads_are_escaped_and_keys_masked() {
    let t = Templates::shipped();
    let mut v = t.sample("key_event").unwrap();
    v["data"]["session"]["alias"] = json!("<i>x</i>\nSubject: y");
    let email = t.render("key_event", &v).unwrap();
    assert!(!email.html.contains("<i>x</i>"));
    assert!(!email.subject.contains('\n'));
    let raw = v["data"]["key"].as_str().unwrap();
    for part in [&email.subject, &email.text, &email.html] {
        assert!(!part.contains(raw), "raw key leaked");
    }
}

// ---------------------------------------------------------------------------------------------
// Located errors
// ---------------------------------------------------------------------------------------------

#[test]
fn strict_undefined_is_an_error_with_file_and_line() {
    let dir = user_dir();
    fs::write(
        dir.path().join("quota_threshold.text.tmpl"),
        "line one\n{{ org.nmae }}\n",
    )
    .unwrap();
    let t = Templates::load(Some(dir.path())).unwrap();
    let e = t
        .render_sample("quota_threshold", "quota_threshold")
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Render);
    let path = dir.path().join("quota_threshold.text.tmpl");
    assert_eq!(e.file.as_deref(), Some(path.to_str().unwrap()));
    assert_eq!(e.line, Some(2));
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{}:2: undefined value", path.display())),
        "{shown}"
    );
    assert!(shown.contains("org.nmae"), "{shown}");
    assert!(
        shown.ends_with(
            "(rendering quota_threshold with email_templates/samples/quota_threshold.json)"
        ),
        "{shown}"
    );
}

#[test]
fn an_error_in_a_user_layout_names_the_layout() {
    let dir = user_dir();
    let shipped = fs::read_to_string(Path::new(SHIPPED).join("layout.html.tmpl")).unwrap();
    let line = shipped
        .lines()
        .position(|l| l.starts_with("<body"))
        .unwrap()
        + 2;
    let broken = shipped.replacen("<!-- preheader -->", "{{ nope }}\n<!-- preheader -->", 1);
    fs::write(dir.path().join("layout.html.tmpl"), broken).unwrap();
    let t = Templates::load(Some(dir.path())).unwrap();
    let e = t.render_sample("test", "test").unwrap_err();
    assert_eq!(e.line, Some(line), "{e}");
    assert_eq!(
        e.file.as_deref(),
        Some(dir.path().join("layout.html.tmpl").to_str().unwrap()),
        "{e}"
    );
    assert!(e.to_string().contains("`nope` is undefined"), "{e}");
}

#[test]
fn missing_sample_field_names_the_field_and_the_sample() {
    let t = Templates::shipped();
    let mut v = t.sample("quota_threshold").unwrap();
    v.as_object_mut().unwrap().remove("renews_in_human");
    let e = t.render("quota_threshold", &v).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Render);
    assert_eq!(
        e.file.as_deref(),
        Some("email_templates/quota_threshold.text.tmpl")
    );
    assert!(e.line.is_some());
    assert!(e.to_string().contains("renews_in_human"), "{e}");
}

#[test]
fn syntax_error_is_located() {
    let dir = user_dir();
    fs::write(dir.path().join("test.subject"), "ok\n{% if %}\n").unwrap();
    let t = Templates::load(Some(dir.path())).unwrap();
    let e = t.render_sample("test", "test").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert_eq!(e.line, Some(2));
    assert!(e.to_string().starts_with(&format!(
        "{}:2: syntax error",
        dir.path().join("test.subject").display()
    )));
}

#[test]
fn missing_template_and_missing_part() {
    let t = Templates::shipped();
    let e = t.render("nope", &json!({})).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.to_string().contains("no template named \"nope\""));
    assert!(
        e.to_string().contains("quota_threshold"),
        "lists the known ones"
    );

    let dir = user_dir();
    fs::write(dir.path().join("custom.subject"), "Hi {{ who }}").unwrap();
    fs::write(dir.path().join("custom.text.tmpl"), "Hello {{ who }}").unwrap();
    let t = Templates::load(Some(dir.path())).unwrap();
    assert!(t.names().contains(&"custom".to_string()));
    let e = t.render("custom", &json!({"who": "x"})).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert_eq!(
        e.file.as_deref(),
        Some(dir.path().join("custom.html.tmpl").to_str().unwrap())
    );
    assert!(t.sample("custom").is_err());
}

#[test]
fn binary_and_huge_files_are_located_errors() {
    let dir = user_dir();
    fs::write(
        dir.path().join("test.html.tmpl"),
        [0x3c, 0xff, 0xfe, 0x00, 0x01],
    )
    .unwrap();
    let big = "x".repeat(5 * 1024 * 1024);
    fs::write(dir.path().join("welcome.text.tmpl"), &big).unwrap();
    fs::create_dir(dir.path().join("key_event.subject")).unwrap();
    let t = Templates::load(Some(dir.path())).unwrap();

    let e = t.render_sample("test", "test").unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotText);
    assert!(
        e.to_string()
            .starts_with(&dir.path().join("test.html.tmpl").display().to_string())
    );

    let e = t.render_sample("welcome", "welcome").unwrap_err();
    assert_eq!(e.kind, ErrorKind::TooLarge);
    assert!(e.to_string().contains("welcome.text.tmpl"));

    let e = t.render_sample("key_event", "key_event").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io);

    // The broken files do not take the others down.
    t.render_sample("quota_threshold", "quota_threshold")
        .unwrap();
}

#[test]
fn a_broken_user_layout_is_reported_not_panicked() {
    let dir = user_dir();
    fs::write(dir.path().join("layout.html.tmpl"), [0u8, 159, 146, 150]).unwrap();
    let t = Templates::load(Some(dir.path())).unwrap();
    let e = t.render_sample("test", "test").unwrap_err();
    assert!(e.to_string().contains("layout.html.tmpl"), "{e}");
    assert!(e.to_string().contains("not a text file"), "{e}");
}

#[test]
fn unreadable_user_dir_is_a_located_error() {
    let dir = user_dir();
    let not_a_dir = dir.path().join("email_templates");
    fs::write(&not_a_dir, "I am a file").unwrap();
    let e = Templates::load(Some(&not_a_dir)).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io);
    assert_eq!(e.file.as_deref(), Some(not_a_dir.to_str().unwrap()));
    // A user directory that does not exist is simply not there.
    let t = Templates::load(Some(&dir.path().join("missing"))).unwrap();
    assert_eq!(t.names(), Templates::shipped().names());
}

#[test]
fn bad_sample_json_is_located() {
    let dir = user_dir();
    fs::create_dir(dir.path().join("samples")).unwrap();
    fs::write(
        dir.path().join("samples/test.json"),
        "{\n  \"sent_at\": ,\n}",
    )
    .unwrap();
    let t = Templates::load(Some(dir.path())).unwrap();
    let e = t.render_sample("test", "test").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Data);
    assert_eq!(e.line, Some(2));
    assert!(e.to_string().starts_with(&format!(
        "{}:2: invalid JSON",
        dir.path().join("samples/test.json").display()
    )));
}

// ---------------------------------------------------------------------------------------------
// User directory
// ---------------------------------------------------------------------------------------------

#[test]
fn user_files_shadow_shipped_ones_file_by_file() {
    let dir = user_dir();
    fs::write(
        dir.path().join("quota_threshold.subject"),
        "OVERRIDDEN {{ label }}\n",
    )
    .unwrap();
    fs::create_dir(dir.path().join("samples")).unwrap();
    fs::write(
        dir.path().join("samples/quota_threshold.extra.json"),
        serde_json::to_string(&Templates::shipped().sample("quota_threshold.org").unwrap())
            .unwrap(),
    )
    .unwrap();
    fs::write(dir.path().join("README.md"), "ignored").unwrap();
    // A partial, included by an override.
    fs::write(
        dir.path().join("_sig.text.tmpl"),
        "-- \nops ({{ org.name }})\n",
    )
    .unwrap();
    fs::write(
        dir.path().join("quota_threshold_developer.text.tmpl"),
        "Hi\n{% include \"_sig.text.tmpl\" %}",
    )
    .unwrap();
    fs::write(dir.path().join(".quota_threshold.subject.swp"), [0u8; 4]).unwrap();
    let t = Templates::load(Some(dir.path())).unwrap();

    let email = t
        .render_sample("quota_threshold", "quota_threshold")
        .unwrap();
    assert_eq!(email.subject, "OVERRIDDEN portal-key");
    let shipped = Templates::shipped()
        .render_sample("quota_threshold", "quota_threshold")
        .unwrap();
    assert_eq!(email.text, shipped.text);
    assert_eq!(email.html, shipped.html);

    let info = t.info("quota_threshold").unwrap();
    assert!(matches!(info.parts[0], (Part::Subject, Origin::User(_), _)));
    assert!(matches!(info.parts[1], (Part::Text, Origin::Shipped, _)));
    let ids: Vec<String> = info.samples.iter().map(|s| s.id.clone()).collect();
    assert_eq!(
        ids,
        [
            "quota_threshold",
            "quota_threshold.extra",
            "quota_threshold.key",
            "quota_threshold.org"
        ]
    );
    t.render_sample("quota_threshold", "quota_threshold.extra")
        .unwrap();
    assert!(!t.names().contains(&"_sig".to_string()));
    let dev = t
        .render_sample("quota_threshold_developer", "quota_threshold_developer")
        .unwrap();
    assert_eq!(dev.text, "Hi\n-- \nops (Acme Payments Ltd.)\n");

    let mut out = Vec::new();
    cli::list(&t, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("user: subject"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Terminal preview
// ---------------------------------------------------------------------------------------------

#[test]
fn html_as_terminal_lines() {
    let t = Templates::shipped();
    let email = t
        .render_sample("quota_threshold", "quota_threshold")
        .unwrap();
    let lines = html_to_terminal_text(&email.html, 72).unwrap();
    let text: Vec<String> = lines.iter().map(|l| l.text()).collect();
    let all = text.join("\n");
    assert!(
        !all.contains("used: 850 of 1,000 requests, renews"),
        "preheader hidden:\n{all}"
    );
    assert!(all.contains("Open the Tyk Dashboard[1]"), "{all}");
    assert!(all.ends_with("[1]: https://admin.example.com"), "{all}");
    assert!(
        lines
            .iter()
            .flat_map(|l| &l.spans)
            .any(|s| s.style.bold && s.text.contains("85%")),
        "{all}"
    );
    insta::assert_snapshot!("terminal__quota_threshold", all);
}

// ---------------------------------------------------------------------------------------------
// Go-compatible webhook bodies
// ---------------------------------------------------------------------------------------------

#[test]
fn tyk_monitor_vectors_byte_for_byte() {
    let template = fs::read_to_string(format!("{FIXTURES}/monitor_template.json")).unwrap();
    let conv = go_import::convert(&template);
    assert!(conv.issues.is_empty(), "{:?}", conv.issues);
    let converted = GoTemplate::new("monitor_template.json", &conv.output).unwrap();
    let embedded = GoTemplate::tyk_monitor().unwrap();
    let vectors: Vec<Value> = serde_json::from_str(
        &fs::read_to_string(format!("{FIXTURES}/monitor_webhook_vectors.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(vectors.len(), 5);
    for v in &vectors {
        let want = v["rendered"].as_str().unwrap();
        for tmpl in [&converted, &embedded] {
            let got = tmpl.render(&v["data"]).unwrap();
            assert_eq!(got.as_bytes(), want.as_bytes(), "vector {}", v["name"]);
        }
    }
    // The engine fills an EventMessage with a float TriggerLimit: Go prints 80, not 80.0.
    let msg = EventMessage {
        event_type: "TriggerExceeded".into(),
        meta: json!({
            "Message": "Quota trigger reached",
            "OrgID": "5e9d9544a1dcd60001d0ed20",
            "Key": "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d",
            "TriggerLimit": 80.0,
            "UsagePercentage": 85.0
        }),
        timestamp: "2025-03-01 10:25:00 +0000 UTC".into(),
    };
    assert_eq!(
        embedded.render(&msg).unwrap(),
        vectors[0]["rendered"].as_str().unwrap()
    );
}

#[test]
fn go_template_unknown_field_is_an_error() {
    let t = GoTemplate::from_go("hook.json", "{\n  \"x\": \"{{.Meta.Org}}\"\n}\n").unwrap();
    let e = t
        .render(&json!({"Type": "TriggerExceeded", "Meta": {"OrgID": "o"}}))
        .unwrap_err();
    assert_eq!(e.file.as_deref(), Some("hook.json"));
    assert_eq!(e.line, Some(2));
    let e = GoTemplate::from_go("hook.json", "a\n{{template \"x\" .}}").unwrap_err();
    assert_eq!(e.kind, ErrorKind::Convert);
    assert_eq!(e.line, Some(2));
}

#[test]
fn go_template_prints_like_go() {
    let t = GoTemplate::new("t", "{{ a }}|{{ b }}|{{ c }}|{{ d }}|{{ e }}\n").unwrap();
    let out = t
        .render(&json!({"a": true, "b": null, "c": 1e6, "d": 0.5, "e": "x+y"}))
        .unwrap();
    // Go escapes the `+` of `1e+06` too.
    assert_eq!(out, "true||1e&#43;06|0.5|x&#43;y\n");
}

#[test]
fn go_import_corpus() {
    let dir = Path::new(FIXTURES).join("templates/go");
    let mut seen = 0;
    let mut entries: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "tmpl"))
        .collect();
    entries.sort();
    for path in entries {
        let src = fs::read_to_string(&path).unwrap();
        let conv = go_import::convert(&src);
        let expected_path = path.with_extension("expected");
        let got = conv.report();
        if std::env::var_os("UPDATE_GO_CORPUS").is_some() {
            fs::write(&expected_path, &got).unwrap();
        }
        let want = fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("missing {}", expected_path.display()));
        assert_eq!(got, want, "{}", path.display());
        // Whatever was converted must parse.
        GoTemplate::new("converted", &conv.output)
            .unwrap_or_else(|e| panic!("{}: converted output does not parse: {e}", path.display()));
        seen += 1;
    }
    assert!(seen >= 5);
}

/// Random Go-ish input: the converter never panics, and when it reports nothing its output
/// parses.
#[test]
fn go_import_survives_garbage() {
    let alphabet = [
        "{{",
        "}}",
        "{{- ",
        " -}}",
        ".",
        "A",
        "$",
        "$x",
        " ",
        "\"",
        "'",
        "`",
        "\\",
        "(",
        ")",
        "|",
        ":=",
        "=",
        ",",
        "if",
        "else",
        "end",
        "range",
        "with",
        "define",
        "template",
        "printf",
        "eq",
        "len",
        "index",
        "1",
        "-",
        "\n",
        "/*",
        "*/",
        "é",
        "0x",
        "e",
        "break",
        "not",
        "and",
        ".5",
        "nil",
        "99999999999999999999999",
        "1e400",
        "with $y := ",
    ];
    let mut seed: u64 = 0x1234_5678;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..20_000 {
        let n = (next() % 30) as usize;
        let src: String = (0..n)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        let conv = go_import::convert(&src);
        if conv.issues.is_empty() {
            GoTemplate::new("fuzz", &conv.output)
                .unwrap_or_else(|e| panic!("{src:?} → {:?}: {e}", conv.output));
        }
    }
}

#[test]
fn converted_templates_render_like_go() {
    let src = fs::read_to_string(format!("{FIXTURES}/templates/go/range_with.tmpl")).unwrap();
    let conv = go_import::convert(&src);
    assert!(conv.issues.is_empty(), "{:?}", conv.issues);
    let t = GoTemplate::new("range_with", &conv.output).unwrap();
    let data = json!({
        "Org": {"Name": "Acme", "ID": "o1", "Members": [1, 2, 3]},
        "Owner": "ann",
        "Keys": [
            {"Alias": "k1", "Used": 5, "Max": 10, "APIs": ["a", "b"], "Developer": {"Email": "d@x"}},
            {"Alias": "k2", "Used": 1, "Max": 2, "APIs": [], "Developer": null}
        ],
        "Names": ["x", "skip", "y", "stop", "z"],
        "Fallback": "fb"
    });
    // What Go 1.22 text/template prints for this data (worked out by hand from its semantics).
    let want = "Organisation Acme (o1) — owner ann\n\
                - k1: 5/10 [a] [b]\n\
                - k2: 1/2\n\
                k1, k2\n\
                x y \n\
                Acme has 3 members\n\
                d@x (no developer) \n";
    assert_eq!(t.render(&data).unwrap(), want);
}

#[test]
fn converted_functions_render_like_go_html_template() {
    let src = fs::read_to_string(format!("{FIXTURES}/templates/go/functions.tmpl")).unwrap();
    let conv = go_import::convert(&src);
    assert!(conv.issues.is_empty(), "{:?}", conv.issues);
    let t = GoTemplate::new("functions", &conv.output).unwrap();
    let data = json!({
        "Meta": {"TriggerLimit": 80, "UsagePercentage": 85.3, "Key": "k<1>", "Message": "m & n"},
        "Used": 5, "Max": 10, "Active": true, "Expired": false, "Type": "TriggerExceeded",
        "Items": [{"Name": "a"}, {"Name": "b"}], "Name": "n", "Code": 201, "Path": "a/b"
    });
    // Go html/template's output for the same data (typed ints), worked out from its rules.
    let want = "Usage 85.3% of 5/10 (limit 80)\n\
                active\n\
                edge\n\
                trigger\n\
                2 items, first a\n\
                k&lt;1&gt; b\n\
                m &amp; n\n\
                n!\n\
                literal &#34;quoted&#34;\n raw \\n 42 -1.5 true\n\
                ok\n\
                a/b{%\n";
    assert_eq!(t.render(&data).unwrap(), want);
}

// ---------------------------------------------------------------------------------------------
// CLI functions
// ---------------------------------------------------------------------------------------------

#[test]
fn cli_preview_formats() {
    let t = Templates::shipped();
    let mut out = Vec::new();
    cli::preview(&t, "test", None, PreviewFormat::Text, &mail(), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("Subject: [tykwatch] Test e-mail from ops-box-1\n\nThis is a test"));

    let mut out = Vec::new();
    cli::preview(&t, "test", None, PreviewFormat::Html, &mail(), &mut out).unwrap();
    assert!(
        String::from_utf8(out)
            .unwrap()
            .starts_with("<!DOCTYPE html>")
    );

    let mut out = Vec::new();
    cli::preview(&t, "test", None, PreviewFormat::Eml, &mail(), &mut out).unwrap();
    let eml = String::from_utf8(out).unwrap();
    assert!(eml.contains("Message-ID: <preview.test@tykwatch>"));
    assert!(eml.contains("Content-Type: multipart/alternative"));
    assert!(eml.contains("Content-Type: text/plain; charset=utf-8"));
    assert!(eml.contains("Content-Type: text/html; charset=utf-8"));

    // --data FILE, and its errors name the file.
    let dir = user_dir();
    let data = dir.path().join("data.json");
    let mut v = t.sample("test").unwrap();
    v["hostname"] = json!("elsewhere");
    fs::write(&data, serde_json::to_string(&v).unwrap()).unwrap();
    let mut out = Vec::new();
    cli::preview(
        &t,
        "test",
        Some(&data),
        PreviewFormat::Text,
        &mail(),
        &mut out,
    )
    .unwrap();
    assert!(String::from_utf8(out).unwrap().contains("from elsewhere"));

    v.as_object_mut().unwrap().remove("hostname");
    fs::write(&data, serde_json::to_string(&v).unwrap()).unwrap();
    let e = cli::preview(
        &t,
        "test",
        Some(&data),
        PreviewFormat::Text,
        &mail(),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("email_templates/test.subject:1: undefined value"),
        "{e}"
    );
    assert!(
        e.to_string()
            .ends_with(&format!("(rendering test with {})", data.display())),
        "{e}"
    );

    let e = cli::preview(
        &t,
        "nope",
        None,
        PreviewFormat::Text,
        &mail(),
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
}

#[test]
fn cli_check_passes_on_shipped_and_fails_on_errors() {
    let mut out = Vec::new();
    cli::check(&Templates::shipped(), &mail(), &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.ends_with("19 renders, 0 failed\n"), "{out}");

    let dir = user_dir();
    fs::write(dir.path().join("welcome.text.tmpl"), "{{ nope }}").unwrap();
    fs::write(dir.path().join("orphan.subject"), "x").unwrap();
    let t = Templates::load(Some(dir.path())).unwrap();
    let mut out = Vec::new();
    let e = cli::check(&t, &mail(), &mut out).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Check);
    let out = String::from_utf8(out).unwrap();
    assert!(
        out.contains(&format!(
            "FAIL {}:1: undefined value",
            dir.path().join("welcome.text.tmpl").display()
        )),
        "{out}"
    );
    assert!(out.contains("FAIL orphan: no sample"), "{out}");
    assert!(out.ends_with("19 renders, 2 failed\n"), "{out}");
}

#[test]
fn cli_list() {
    let mut out = Vec::new();
    cli::list(&Templates::shipped(), &mut out).unwrap();
    insta::assert_snapshot!("cli_list", String::from_utf8(out).unwrap());
}

#[test]
fn cli_import_go() {
    let dir = Path::new(FIXTURES).join("templates/go");
    let mut out = Vec::new();
    let mut diag = Vec::new();
    let t = Templates::shipped();
    let opts = cli::ImportOptions::default();
    cli::import_go(
        &t,
        &dir.join("monitor_template.tmpl"),
        opts,
        &mut out,
        &mut diag,
    )
    .unwrap();
    assert!(
        String::from_utf8(diag).unwrap().contains("not checked"),
        "a webhook body is no e-mail template"
    );
    assert!(
        String::from_utf8(out)
            .unwrap()
            .contains("\"event\": \"{{ Type }}\"")
    );

    let file = dir.join("unconvertible.tmpl");
    let mut out = Vec::new();
    let mut diag = Vec::new();
    let e = cli::import_go(&t, &file, opts, &mut out, &mut diag).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Convert);
    let diag = String::from_utf8(diag).unwrap();
    assert!(
        diag.starts_with(&format!(
            "{}:1: cannot convert `{{{{define \"header\"}}}}`",
            file.display()
        )),
        "{diag}"
    );
}

/// Tyk Developer Portal mailers (tests/fixtures/templates/portal) through the real binary:
/// each converts, checks against its target's samples, and once saved in the user directory
/// passes `templates check`.
#[test]
fn import_go_portal_corpus_passes_templates_check() {
    let env = common::binary::Env::new();
    let tdir = env.dir.path().join("config/tykwatch/email_templates");
    fs::create_dir_all(&tdir).unwrap();
    let dir = Path::new(FIXTURES).join("templates/portal");
    let corpus = [
        ("welcome_dev.html.tmpl", "welcome.html.tmpl"),
        ("welcome_dev.text.tmpl", "welcome.text.tmpl"),
        ("reset_password.text.tmpl", "password_reset.text.tmpl"),
        ("approve.html.tmpl", "key_request_approved.html.tmpl"),
        ("reject.text.tmpl", "key_request_rejected.text.tmpl"),
    ];
    for (file, target) in corpus {
        let path = dir.join(file);
        let out = env.cmd(&["templates", "import-go", path.to_str().unwrap()]);
        let err = common::binary::text(&out.stderr);
        assert!(out.status.success(), "{file}: {err}");
        assert!(err.contains(&format!("ok   {target} (")), "{file}: {err}");
        let converted = common::binary::text(&out.stdout);
        assert!(!converted.contains("{# go:"), "{file}: {converted}");
        fs::write(tdir.join(target), &converted).unwrap();
    }
    let welcome = fs::read_to_string(tdir.join("welcome.html.tmpl")).unwrap();
    assert!(welcome.contains("{{ data.Email|escape }}"), "{welcome}");
    assert!(welcome.contains("{{ data.Email|urlencode }}"), "{welcome}");
    assert!(
        welcome.contains("{%- for attr in data.CustomAttributes %}"),
        "{welcome}"
    );
    let text = fs::read_to_string(tdir.join("welcome.text.tmpl")).unwrap();
    assert!(text.starts_with("Hello {{ data.First -}},"), "{text}");

    let check = env.cmd(&["templates", "check"]);
    let report = common::binary::text(&check.stdout);
    assert!(check.status.success(), "{report}");
    assert!(report.contains("ok   welcome"), "{report}");
    // The user's converted parts are what rendered.
    let list = common::binary::text(&env.cmd(&["templates", "list"]).stdout);
    assert!(
        list.contains("welcome                    user: text,html"),
        "{list}"
    );
    let preview = env.cmd(&["preview", "welcome"]);
    let shown = common::binary::text(&preview.stdout);
    assert!(shown.contains("Hello FirstName,"), "{shown}");
    assert!(shown.contains("company-name = ACME"), "{shown}");
}

#[test]
fn import_go_untranslatable_variables_are_located_errors() {
    let env = common::binary::Env::new();
    let dir = Path::new(FIXTURES).join("templates/portal");
    let run = |file: &str, extra: &[&str]| {
        let path = dir.join(file);
        let mut args = vec!["templates", "import-go", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = env.cmd(&args);
        assert_eq!(out.status.code(), Some(1), "{file}");
        (path, common::binary::text(&out.stderr))
    };
    // The reset link: tykwatch never has the token.
    let (path, err) = run("reset_password_link.text.tmpl", &["--as", "password_reset"]);
    assert!(
        err.contains(&format!(
            "{}:3: cannot convert `{{{{ reset_password_url }}}}`",
            path.display()
        )),
        "{err}"
    );
    assert!(err.contains("never has the Portal's token"), "{err}");
    // A user field the event does not carry.
    let (path, err) = run("welcome_admin.text.tmpl", &[]);
    assert!(
        err.contains(&format!(
            "{}:3: cannot convert `{{{{ .user.DisplayRole }}}}`",
            path.display()
        )),
        "{err}"
    );
    // A variable with no mapping: converted as is, then the check fails at the Go line.
    let (path, err) = run("site.text.tmpl", &["--as", "welcome"]);
    assert!(
        err.contains(&format!(
            "{}:3: undefined value: `site` is undefined (checking it as welcome.text.tmpl with email_templates/samples/welcome.json)",
            path.display()
        )),
        "{err}"
    );
    // A sample that does not exist.
    let (_, err) = run("welcome_dev.text.tmpl", &["--sample", "welcome.nope"]);
    assert!(err.contains("no sample named \"welcome.nope\""), "{err}");
}

// ---------------------------------------------------------------------------------------------
// Export and the user copy
// ---------------------------------------------------------------------------------------------

#[test]
fn cli_export_writes_the_shipped_files_and_never_overwrites_without_force() {
    let env = common::binary::Env::new();
    let tdir = env.dir.path().join("config/tykwatch/email_templates");
    let out = env.cmd(&["templates", "export", "quota_threshold"]);
    assert!(
        out.status.success(),
        "{}",
        common::binary::text(&out.stderr)
    );
    let stdout = common::binary::text(&out.stdout);
    let rels = [
        "quota_threshold.html.tmpl",
        "quota_threshold.subject",
        "quota_threshold.text.tmpl",
        "samples/quota_threshold.json",
        "samples/quota_threshold.key.json",
        "samples/quota_threshold.org.json",
    ];
    for rel in rels {
        assert!(
            stdout.contains(&format!("wrote {}", tdir.join(rel).display())),
            "{stdout}"
        );
        assert_eq!(
            fs::read_to_string(tdir.join(rel)).unwrap(),
            fs::read_to_string(Path::new(SHIPPED).join(rel)).unwrap(),
            "{rel}"
        );
    }
    // The exported copy is what the set now loads, and it checks.
    let t = Templates::load(Some(&tdir)).unwrap();
    let info = t.info("quota_threshold").unwrap();
    assert!(
        info.parts
            .iter()
            .all(|(_, o, _)| matches!(o, Origin::User(_)))
    );
    let check = env.cmd(&["templates", "check"]);
    assert!(
        check.status.success(),
        "{}",
        common::binary::text(&check.stdout)
    );

    // One file edited, one removed: a second export refuses, naming each file in the way,
    // and writes nothing (the removed file stays removed).
    fs::write(tdir.join("quota_threshold.subject"), "mine").unwrap();
    fs::remove_file(tdir.join("quota_threshold.text.tmpl")).unwrap();
    let out = env.cmd(&["templates", "export", "quota_threshold"]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::binary::text(&out.stderr);
    assert!(err.contains("--force"), "{err}");
    for rel in rels.iter().filter(|r| !r.ends_with(".text.tmpl")) {
        assert!(
            err.contains(&tdir.join(rel).display().to_string()),
            "{rel}: {err}"
        );
    }
    assert!(!err.contains("quota_threshold.text.tmpl"), "{err}");
    assert!(out.stdout.is_empty());
    assert_eq!(
        fs::read_to_string(tdir.join("quota_threshold.subject")).unwrap(),
        "mine"
    );
    assert!(!tdir.join("quota_threshold.text.tmpl").exists());

    // --force replaces them; no temp file is left behind.
    let out = env.cmd(&["templates", "export", "quota_threshold", "--force"]);
    assert!(
        out.status.success(),
        "{}",
        common::binary::text(&out.stderr)
    );
    assert_eq!(
        fs::read_to_string(tdir.join("quota_threshold.subject")).unwrap(),
        fs::read_to_string(Path::new(SHIPPED).join("quota_threshold.subject")).unwrap()
    );
    let hidden: Vec<_> = fs::read_dir(&tdir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

#[test]
fn cli_export_to_a_directory_the_layout_and_unknown_names() {
    let env = common::binary::Env::new();
    let to = env.dir.path().join("some/new/dir");
    let out = env.cmd(&[
        "templates",
        "export",
        "layout",
        "--to",
        to.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        common::binary::text(&out.stderr)
    );
    assert_eq!(
        common::binary::text(&out.stdout),
        format!("wrote {}\n", to.join("layout.html.tmpl").display())
    );
    assert_eq!(
        fs::read_to_string(to.join("layout.html.tmpl")).unwrap(),
        fs::read_to_string(Path::new(SHIPPED).join("layout.html.tmpl")).unwrap()
    );

    let out = env.cmd(&[
        "templates",
        "export",
        "qouta_threshold",
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = common::binary::text(&out.stderr);
    assert!(
        err.contains("no shipped template named \"qouta_threshold\""),
        "{err}"
    );
    assert!(
        err.contains("quota_threshold, quota_threshold_developer"),
        "{err}"
    );
    assert!(err.contains("layout"), "{err}");
}

#[test]
fn ensure_user_copy_copies_what_is_missing_and_keeps_what_the_user_wrote() {
    let dir = user_dir();
    let tdir = dir.path().join("email_templates");
    // The directory does not exist yet.
    let path = ensure_user_copy("key_event", &tdir).unwrap();
    assert_eq!(path, tdir.join("key_event.text.tmpl"));
    for part in Part::ALL {
        let f = part.file_name("key_event");
        assert_eq!(
            fs::read_to_string(tdir.join(&f)).unwrap(),
            fs::read_to_string(Path::new(SHIPPED).join(&f)).unwrap()
        );
    }
    assert!(!tdir.join("samples").exists(), "samples stay shipped");

    // An edited part is kept, a removed one comes back.
    fs::write(tdir.join("key_event.text.tmpl"), "edited {{ event }}\n").unwrap();
    fs::remove_file(tdir.join("key_event.subject")).unwrap();
    let path = ensure_user_copy("key_event", &tdir).unwrap();
    assert_eq!(path, tdir.join("key_event.text.tmpl"));
    assert_eq!(fs::read_to_string(&path).unwrap(), "edited {{ event }}\n");
    assert!(tdir.join("key_event.subject").is_file());

    assert_eq!(
        ensure_user_copy("layout", &tdir).unwrap(),
        tdir.join("layout.html.tmpl")
    );
    // A template of the user's own: its file is returned, nothing is copied.
    fs::write(tdir.join("mine.html.tmpl"), "x").unwrap();
    assert_eq!(
        ensure_user_copy("mine", &tdir).unwrap(),
        tdir.join("mine.html.tmpl")
    );
    let e = ensure_user_copy("nope", &tdir).unwrap_err();
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("quota_threshold"), "{e}");

    // A directory that cannot be created is an error naming it.
    let blocker = dir.path().join("file");
    fs::write(&blocker, "").unwrap();
    let e = ensure_user_copy("key_event", &blocker.join("email_templates")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Io);
    assert!(e.to_string().contains("email_templates"), "{e}");
}

// ---------------------------------------------------------------------------------------------
// Watching
// ---------------------------------------------------------------------------------------------

#[test]
fn watcher_reports_changed_template_names() {
    let dir = user_dir();
    let tdir = dir.path().join("email_templates");
    fs::create_dir(&tdir).unwrap();
    let (_w, rx) = Watcher::channel(&tdir).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    fs::write(tdir.join("quota_threshold.subject"), "A").unwrap();
    fs::write(tdir.join("quota_threshold.text.tmpl"), "B").unwrap();
    let changed = rx.recv_timeout(Duration::from_secs(3)).expect("a report");
    assert!(changed.affects("quota_threshold"), "{changed:?}");
    assert!(!changed.affects("welcome"), "{changed:?}");

    fs::create_dir(tdir.join("samples")).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    while rx.try_recv().is_ok() {}
    fs::write(tdir.join("samples/welcome.json"), "{}").unwrap();
    let changed = rx.recv_timeout(Duration::from_secs(3)).expect("a report");
    assert!(changed.names.contains("welcome"), "{changed:?}");

    fs::write(tdir.join("layout.html.tmpl"), "x").unwrap();
    let changed = rx.recv_timeout(Duration::from_secs(3)).expect("a report");
    assert!(changed.all, "{changed:?}");
}

#[test]
fn watcher_waits_for_the_directory_to_appear() {
    let dir = user_dir();
    let tdir = dir.path().join("email_templates");
    let (_w, rx) = Watcher::channel(&tdir).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    fs::create_dir(&tdir).unwrap();
    let changed = rx.recv_timeout(Duration::from_secs(3)).expect("a report");
    assert!(changed.all);
    std::thread::sleep(Duration::from_millis(100));
    fs::write(tdir.join("welcome.subject"), "x").unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let changed = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .expect("a report for the new file");
        if changed.names.contains("welcome") {
            break;
        }
    }
}
