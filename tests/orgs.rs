//! Organisations' event_options end to end: the demo Dashboard over loopback (the PUT body is
//! the loaded document plus the edit, byte for byte), conflicts, refused secrets, 400s, garbage
//! and dead servers (raw TCP), the offline directory (atomic saves, a crash before the rename,
//! a read-only directory) and the real binary's `org list|get|set`.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use common::binary::{Env, text};
use common::{RawServer, Reply};
use serde_json::{Value, json};
use tykwatch::orgs::{
    EventField, FieldEdit, Json, OrgDocument, OrgError, OrgSource, pending_changes,
};
use tykwatch::tyk::dashboard::DashboardError;
use tykwatch::tyk::demo::{DemoGateway, DemoOptions, ORG_ACME, ORG_GLOBEX, ORG_INITECH};

const ORGANISATION: &str = include_str!("fixtures/organisation.json");

async fn demo() -> DemoGateway {
    DemoGateway::start(DemoOptions {
        simulate: false,
        ..DemoOptions::default()
    })
    .await
    .unwrap()
}

/// The fixture's top-level keys in file order.
const FIXTURE_KEYS: &[&str] = &[
    "id",
    "owner_name",
    "owner_slug",
    "cname_enabled",
    "cname",
    "apis",
    "developer_quota",
    "developer_count",
    "event_options",
    "hybrid_enabled",
    "sso_enabled",
    "ui",
    "org_options_meta",
    "additional_permissions",
    "open_policy",
    "future_top_level_field",
];

fn assert_in_order(text: &str, keys: &[&str]) {
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| {
            text.find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k} missing"))
        })
        .collect();
    assert!(positions.is_sorted(), "keys out of order in {text}");
}

fn edit(s: &str) -> FieldEdit {
    FieldEdit::parse(s).unwrap()
}

async fn body_json(resp: reqwest::Response) -> Value {
    serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap()
}

fn stored(gw: &DemoGateway, org: &str) -> Value {
    serde_json::from_str(&gw.org_document(org).unwrap()).unwrap()
}

fn fixture() -> Value {
    serde_json::from_str(ORGANISATION).unwrap()
}

/// Sets one leaf of a JSON value by path (creating objects on the way).
fn with(mut v: Value, path: &[&str], leaf: Value) -> Value {
    let mut cur = &mut v;
    for (i, key) in path.iter().enumerate() {
        let obj = cur.as_object_mut().unwrap();
        if i + 1 == path.len() {
            obj.insert((*key).to_owned(), leaf);
            return v;
        }
        cur = obj.entry(*key).or_insert_with(|| json!({}));
    }
    v
}

// --- the demo Dashboard ------------------------------------------------------------------------

#[tokio::test]
async fn demo_dashboard_lists_the_demo_orgs_and_acme_is_the_fixture() {
    let gw = demo().await;
    let source = OrgSource::demo(&gw).unwrap();
    let list = source.list().await.unwrap();
    let ids: Vec<&str> = list.orgs.iter().map(OrgDocument::id).collect();
    assert_eq!(ids, [ORG_ACME, ORG_GLOBEX, ORG_INITECH]);
    assert!(list.warnings.is_empty());
    let acme = source.get(ORG_ACME).await.unwrap();
    // Same document as the shared fixture, fields in the same order.
    assert_eq!(acme.to_value(), fixture());
    let served = gw.org_document(ORG_ACME).unwrap();
    assert_eq!(String::from_utf8(acme.to_json()).unwrap(), served);
    assert_in_order(&served, FIXTURE_KEYS);
    assert_eq!(acme.to_pretty_json(), ORGANISATION);
    let globex = source.get(ORG_GLOBEX).await.unwrap();
    assert!(globex.event("hashed_key_event").unwrap().redis);
    gw.shutdown().await;
}

#[tokio::test]
async fn edit_one_field_put_body_is_the_original_plus_that_field() {
    let gw = demo().await;
    let source = OrgSource::demo(&gw).unwrap();
    let original = source.get(ORG_ACME).await.unwrap();
    let mut edited = original.clone();
    edited
        .apply(&edit(
            "key_event.webhook=https://hooks.example.com/tyk/keys",
        ))
        .unwrap();
    let changes = pending_changes(&original, &edited);
    assert_eq!(changes.len(), 1);
    assert_eq!(
        changes[0].to_string(),
        r#"event_options.key_event.webhook: "" → "https://hooks.example.com/tyk/keys""#
    );
    assert_eq!(
        changes[0].event_field(),
        Some(("key_event", EventField::Webhook))
    );

    let before = gw.org_document(ORG_ACME).unwrap();
    let saved = source.save(&original, &edited).await.unwrap();
    assert_eq!(saved, edited);

    let puts = gw.admin_puts();
    assert_eq!(puts.len(), 1);
    // Byte for byte the document the Dashboard served with only that value different: same
    // field order, numbers as loaded, unknown fields (future_*) kept.
    let expected_text = before.replacen(
        r#""key_event":{"webhook":"""#,
        r#""key_event":{"webhook":"https://hooks.example.com/tyk/keys""#,
        1,
    );
    assert_ne!(expected_text, before);
    assert_eq!(String::from_utf8(puts[0].clone()).unwrap(), expected_text);
    let body: Value = serde_json::from_slice(&puts[0]).unwrap();
    let expected = with(
        fixture(),
        &["event_options", "key_event", "webhook"],
        json!("https://hooks.example.com/tyk/keys"),
    );
    assert_eq!(body, expected);
    for kept in [
        r#""future_top_level_field":{"nested":[1,"two",true,null],"ratio":0.25}"#,
        r#""future_setting":42"#,
        r#""sla_hours":4.5"#,
    ] {
        assert!(expected_text.contains(kept), "{kept} missing");
    }
    assert_eq!(gw.org_document(ORG_ACME).unwrap(), expected_text);
    gw.shutdown().await;
}

#[tokio::test]
async fn a_document_changed_meanwhile_is_a_conflict_and_nothing_is_put() {
    let gw = demo().await;
    let source = OrgSource::demo(&gw).unwrap();
    let original = source.get(ORG_GLOBEX).await.unwrap();

    // Another admin changes the org through the Admin API.
    let theirs = with(
        original.to_value(),
        &["event_options", "key_event", "email"],
        json!("someone-else@globex.example"),
    );
    let http = reqwest::Client::new();
    let url = format!("{}/admin/organisations/{ORG_GLOBEX}", gw.dashboard_url());
    let resp = http
        .put(&url)
        .header("admin-auth", gw.admin_secret())
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&theirs).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        body_json(resp).await,
        json!({"Status": "OK", "Message": "Org updated", "Meta": null})
    );

    let mut mine = original.clone();
    mine.apply(&edit("key_event.redis=false")).unwrap();
    let err = source.save(&original, &mine).await.unwrap_err();
    let conflict = err.conflict().expect("a conflict");
    assert_eq!(conflict.loaded.to_value(), original.to_value());
    assert_eq!(
        conflict.current.as_ref().map(Json::to_value),
        Some(theirs.clone())
    );
    let changes: Vec<String> = conflict.changes().iter().map(|c| c.to_string()).collect();
    assert_eq!(
        changes,
        [
            r#"event_options.key_event.email: "platform@globex.example, security@globex.example" → "someone-else@globex.example""#
        ]
    );
    assert_eq!(err.exit_code(), 1);
    assert!(err.to_string().contains("nothing was saved"), "{err}");
    assert_eq!(gw.admin_puts().len(), 1, "only the other admin's PUT");
    assert_eq!(stored(&gw, ORG_GLOBEX), theirs);

    // Deleted meanwhile: also a conflict, and no PUT recreates it.
    let resp = http
        .delete(&url)
        .header("admin-auth", gw.admin_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let err = source.save(&original, &mine).await.unwrap_err();
    assert!(err.conflict().is_some_and(|c| c.current.is_none()), "{err}");
    assert!(err.to_string().contains("was deleted"), "{err}");
    assert_eq!(gw.admin_puts().len(), 1);
    gw.shutdown().await;
}

#[tokio::test]
async fn wrong_admin_secret_says_which_setting_to_fix() {
    let gw = demo().await;
    let source = OrgSource::dashboard(
        &gw.dashboard_url(),
        "wrong-admin-secret-1234",
        Duration::from_secs(5),
        false,
    )
    .unwrap();
    let err = source.list().await.unwrap_err();
    assert!(
        matches!(
            err,
            OrgError::Dashboard(DashboardError::Unauthorised { status: 401, .. })
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("TYK_DB_ADMIN_SECRET") && text.contains("admin_secret"),
        "{text}"
    );
    assert!(!text.contains("wrong-admin-secret"), "{text}");
    assert_eq!(err.exit_code(), 2);

    // The gateway's secret header is not the Dashboard's.
    let resp = reqwest::Client::new()
        .get(format!("{}/admin/organisations", gw.dashboard_url()))
        .header("x-tyk-authorization", gw.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.text().await.unwrap(),
        "{\"Status\":\"Error\",\"Message\":\"Not authorised\",\"Meta\":null}\n"
    );
    gw.shutdown().await;
}

#[tokio::test]
async fn demo_dashboard_answers_like_the_documented_api() {
    let gw = demo().await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", gw.dashboard_url());
    let call = |m: reqwest::Method, p: &str, body: &'static str| {
        http.request(m, url(p))
            .header("admin-auth", gw.admin_secret())
            .body(body)
            .send()
    };
    let resp = call(
        reqwest::Method::PUT,
        &format!("/admin/organisations/{ORG_ACME}"),
        "[1,2",
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(
        body_json(resp).await,
        json!({"Status": "Error", "Message": "Request body malformed", "Meta": null})
    );
    let resp = call(
        reqwest::Method::PUT,
        &format!("/admin/organisations/{ORG_ACME}"),
        "",
    )
    .await
    .unwrap();
    assert_eq!(resp.status(), 500);
    let resp = call(reqwest::Method::GET, "/admin/organisations/nope", "")
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    assert_eq!(
        body_json(resp).await["Message"],
        "Could not retrieve org detail"
    );
    let resp = call(reqwest::Method::GET, "/admin/organisations", "")
        .await
        .unwrap();
    let list = body_json(resp).await;
    assert_eq!(list["pages"], 0);
    assert_eq!(list["organisations"].as_array().unwrap().len(), 3);
    // The acme document was not changed by the refused PUTs.
    assert_eq!(stored(&gw, ORG_ACME), fixture());

    let source = OrgSource::demo(&gw).unwrap();
    let err = source.get("nope").await.unwrap_err();
    assert!(err.to_string().contains("org list"), "{err}");
    assert_eq!(err.exit_code(), 1);
    gw.shutdown().await;
}

// --- real sockets with scripted answers --------------------------------------------------------

fn api_error(status: u16, message: &str) -> Reply {
    Reply::json(
        status,
        format!("{{\"Status\":\"Error\",\"Message\":\"{message}\",\"Meta\":null}}"),
    )
}

fn raw_source(server: &RawServer) -> OrgSource {
    OrgSource::dashboard(&server.url(), "admin-secret", Duration::from_secs(2), false).unwrap()
}

#[tokio::test]
async fn a_400_on_put_carries_the_dashboards_message() {
    let server = RawServer::start(|req| match req.method.as_str() {
        "GET" => Reply::json(200, ORGANISATION),
        _ => api_error(400, "Invalid event_options"),
    })
    .await;
    let source = raw_source(&server);
    let original = source.get(ORG_ACME).await.unwrap();
    let mut edited = original.clone();
    edited
        .apply(&edit("api_event.email=ops@acme.example"))
        .unwrap();
    let err = source.save(&original, &edited).await.unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "the Dashboard rejected PUT /admin/organisations/{ORG_ACME} (400: Invalid event_options) — nothing was changed"
        )
    );
    assert_eq!(err.exit_code(), 1);
    let reqs = server.requests.lock().unwrap().clone();
    let methods: Vec<&str> = reqs.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["GET", "GET", "PUT"], "re-read before the PUT");
    assert!(
        reqs.iter()
            .all(|r| r.header("admin-auth") == Some("admin-secret"))
    );
}

#[tokio::test]
async fn a_403_not_authorised_and_a_403_db_failure_differ() {
    let server = RawServer::start(|req| match req.method.as_str() {
        "GET" if req.path == "/admin/organisations" => api_error(403, "Not authorised"),
        "GET" => Reply::json(200, ORGANISATION),
        _ => api_error(403, "Failed to update Org object to DB"),
    })
    .await;
    let source = raw_source(&server);
    let err = source.list().await.unwrap_err();
    assert!(err.to_string().contains("TYK_DB_ADMIN_SECRET"), "{err}");
    let original = source.get(ORG_ACME).await.unwrap();
    let mut edited = original.clone();
    edited.apply(&edit("key_event.redis=false")).unwrap();
    let err = source.save(&original, &edited).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("403: Failed to update Org object to DB"),
        "{text}"
    );
    assert!(!text.contains("TYK_DB_ADMIN_SECRET"), "{text}");
}

#[tokio::test]
async fn garbage_truncated_and_wrong_servers_are_named() {
    let server = RawServer::start(|req| match req.path.as_str() {
        "/admin/organisations" => Reply::Full {
            status: 200,
            headers: vec![("Content-Type", "text/html".into())],
            body: b"<html>\x1b[31mhello</html>".to_vec(),
        },
        "/admin/organisations/trunc" => Reply::Truncated {
            declared: 500,
            body: b"{\"id\":\"tr".to_vec(),
        },
        "/admin/organisations/array" => Reply::json(200, "[1,2,3]"),
        "/admin/organisations/noid" => Reply::json(200, "{\"owner_name\":\"x\"}"),
        _ => Reply::Full {
            status: 404,
            headers: vec![("Content-Type", "text/plain".into())],
            body: b"404 page not found\n".to_vec(),
        },
    })
    .await;
    let source = raw_source(&server);
    let err = source.list().await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("not the Tyk Dashboard's JSON"), "{text}");
    assert!(text.contains("[dashboard] url"), "{text}");
    assert!(!text.contains('\x1b'), "{text:?}");
    assert_eq!(err.exit_code(), 2);

    let err = source.get("trunc").await.unwrap_err();
    assert!(err.to_string().contains("broke off"), "{err}");
    let err = source.get("array").await.unwrap_err();
    assert!(err.to_string().contains("not a JSON object"), "{err}");
    let err = source.get("noid").await.unwrap_err();
    assert!(err.to_string().contains("\"id\""), "{err}");
    // A server without the Admin API (e.g. the gateway's port).
    let err = source.get("other").await.unwrap_err();
    assert!(err.to_string().contains("not the gateway"), "{err}");
    assert_eq!(err.exit_code(), 2);
}

#[tokio::test]
async fn a_dashboard_that_is_down_or_hangs() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let source = OrgSource::dashboard(
        &format!("http://127.0.0.1:{port}"),
        "s",
        Duration::from_secs(2),
        false,
    )
    .unwrap();
    let err = source.list().await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "cannot reach the Dashboard at http://127.0.0.1:{port}"
        )) && text.contains("is the Dashboard running"),
        "{text}"
    );
    assert_eq!(err.exit_code(), 2);

    let server = RawServer::start(|_| Reply::Hang).await;
    let source =
        OrgSource::dashboard(&server.url(), "s", Duration::from_millis(300), false).unwrap();
    let err = source.list().await.unwrap_err();
    assert!(
        err.to_string().contains("raise [dashboard] timeout"),
        "{err}"
    );
}

// --- the offline directory ---------------------------------------------------------------------

fn org_dir() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{ORG_ACME}.json"));
    std::fs::write(&path, ORGANISATION).unwrap();
    (dir, path)
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

#[tokio::test]
async fn files_save_and_reload_keep_everything_else() {
    let (dir, path) = org_dir();
    // A document without event_options, and files that are not usable documents.
    std::fs::write(
        dir.path().join("bare.json"),
        r#"{"id":"bare","owner_name":"Bare Org","developer_quota":1e3}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.json"), "{\"id\":").unwrap();
    std::fs::write(dir.path().join("renamed.json"), r#"{"id":"other"}"#).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a document").unwrap();

    let source = OrgSource::files(dir.path());
    let list = source.list().await.unwrap();
    let ids: Vec<&str> = list.orgs.iter().map(OrgDocument::id).collect();
    assert_eq!(ids, [ORG_ACME, "bare"]);
    assert_eq!(list.warnings.len(), 2, "{:?}", list.warnings);
    assert!(list.warnings.iter().any(|w| w.contains("broken.json")));
    assert!(list.warnings.iter().any(|w| w.contains("other.json")));

    let original = source.get(ORG_ACME).await.unwrap();
    let mut edited = original.clone();
    edited
        .apply(&edit(
            "key_request_event.email=a@acme.example, b@acme.example",
        ))
        .unwrap();
    source.save(&original, &edited).await.unwrap();
    // The file is the old file with that one value changed (same order, numbers, unknown
    // fields; the fixture is formatted the way tykwatch writes).
    let expected = ORGANISATION.replacen(
        r#""email": "portal-admins@example.com""#,
        r#""email": "a@acme.example, b@acme.example""#,
        1,
    );
    assert_ne!(expected, ORGANISATION);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);
    assert_eq!(source.get(ORG_ACME).await.unwrap(), edited);
    assert!(temp_files(dir.path()).is_empty());

    // Editing a document without event_options creates just the edited field.
    let bare = source.get("bare").await.unwrap();
    assert!(bare.events().iter().all(|e| !e.present));
    let mut bare_edited = bare.clone();
    bare_edited
        .apply(&edit("api_event.webhook=http://127.0.0.1:8089/events"))
        .unwrap();
    source.save(&bare, &bare_edited).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("bare.json")).unwrap(),
        r#"{
  "id": "bare",
  "owner_name": "Bare Org",
  "developer_quota": 1e3,
  "event_options": {
    "api_event": {
      "webhook": "http://127.0.0.1:8089/events"
    }
  }
}
"#
    );
}

#[tokio::test]
async fn files_changed_since_loading_are_a_conflict() {
    let (dir, path) = org_dir();
    let source = OrgSource::files(dir.path());
    let original = source.get(ORG_ACME).await.unwrap();
    // Someone else edits the file (whitespace only would not count: content is compared).
    let theirs = with(fixture(), &["owner_name"], json!("Acme Payments plc"));
    std::fs::write(&path, serde_json::to_string(&theirs).unwrap()).unwrap();
    let mut mine = original.clone();
    mine.apply(&edit("key_event.redis=false")).unwrap();
    let err = source.save(&original, &mine).await.unwrap_err();
    let conflict = err.conflict().expect("conflict");
    assert_eq!(
        conflict.current.as_ref().map(Json::to_value),
        Some(theirs.clone())
    );
    assert_eq!(
        conflict.changes()[0].to_string(),
        r#"owner_name: "Acme Payments Ltd." → "Acme Payments plc""#
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
    let now: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(now, theirs, "nothing overwritten");

    // Reformatting the file is not a change.
    std::fs::write(&path, ORGANISATION.replace("\n", "\r\n  ")).unwrap();
    source.save(&original, &mine).await.unwrap();
}

#[tokio::test]
async fn a_crash_between_write_and_rename_leaves_the_old_file() {
    let (dir, path) = org_dir();
    let OrgSource::Files(files) = OrgSource::files(dir.path()) else {
        unreachable!()
    };
    let source = OrgSource::Files(files.clone());
    let original = source.get(ORG_ACME).await.unwrap();
    let mut edited = original.clone();
    edited
        .apply(&edit("key_event.webhook=https://hooks.example.com/new"))
        .unwrap();

    files.simulate_crash_before_rename(true);
    let err = source.save(&original, &edited).await.unwrap_err();
    assert!(err.to_string().contains("nothing was changed"), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), ORGANISATION);
    let stray = temp_files(dir.path());
    assert_eq!(stray.len(), 1, "the crash left its temp file: {stray:?}");
    let temp_doc: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join(&stray[0])).unwrap()).unwrap();
    assert_eq!(temp_doc, edited.to_value(), "the temp file was complete");

    // After the "restart": the stray file is ignored, the old document is what is read, and the
    // save goes through.
    files.simulate_crash_before_rename(false);
    let list = source.list().await.unwrap();
    assert_eq!(list.orgs.len(), 1);
    assert!(list.warnings.is_empty(), "{:?}", list.warnings);
    let reloaded = source.get(ORG_ACME).await.unwrap();
    assert_eq!(reloaded, original);
    source.save(&reloaded, &edited).await.unwrap();
    assert_eq!(source.get(ORG_ACME).await.unwrap(), edited);
}

/// Makes `dir` unwritable even for root (chmod is not enough there): `chattr +i`, undone on drop.
struct ReadOnly<'a>(&'a Path, bool);

impl ReadOnly<'_> {
    fn new(dir: &Path) -> Option<ReadOnly<'_>> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        let probe = dir.join("probe");
        if std::fs::write(&probe, "x").is_err() {
            return Some(ReadOnly(dir, false));
        }
        let _ = std::fs::remove_file(&probe);
        let immutable = Command::new("chattr")
            .arg("+i")
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if immutable && std::fs::write(&probe, "x").is_err() {
            return Some(ReadOnly(dir, true));
        }
        let _ = std::fs::remove_file(&probe);
        None
    }
}

impl Drop for ReadOnly<'_> {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.1 {
            let _ = Command::new("chattr").arg("-i").arg(self.0).status();
        }
        let _ = std::fs::set_permissions(self.0, std::fs::Permissions::from_mode(0o755));
    }
}

#[tokio::test]
async fn a_read_only_directory_is_a_clear_error_and_the_file_is_unchanged() {
    let (dir, path) = org_dir();
    let source = OrgSource::files(dir.path());
    let original = source.get(ORG_ACME).await.unwrap();
    let mut edited = original.clone();
    edited
        .apply(&edit("key_event.email=sec@acme.example"))
        .unwrap();
    let Some(_guard) = ReadOnly::new(dir.path()) else {
        eprintln!("skipped: cannot make a directory read-only here");
        return;
    };
    let err = source.save(&original, &edited).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("is not writable") && text.contains("[orgs] dir"),
        "{text}"
    );
    assert!(text.contains("nothing was changed"), "{text}");
    assert_eq!(err.exit_code(), 2);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), ORGANISATION);
    assert!(temp_files(dir.path()).is_empty());
}

// --- the real binary ---------------------------------------------------------------------------

impl Env {
    fn config_dir(&self) -> PathBuf {
        self.dir.path().join("config").join("tykwatch")
    }

    /// `<XDG_CONFIG_HOME>/tykwatch/config.toml`.
    fn write_config(&self, text: &str) {
        std::fs::create_dir_all(self.config_dir()).unwrap();
        std::fs::write(self.config_dir().join("config.toml"), text).unwrap();
    }
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[test]
fn cli_on_the_demo_dashboard() {
    let env = Env::new();
    let out = env.cmd(&["org", "list", "--demo"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    for id in [ORG_ACME, ORG_GLOBEX, ORG_INITECH] {
        assert!(stdout.contains(id), "{stdout}");
    }
    assert!(stdout.contains("key_event(redis)"), "{stdout}");

    // Nothing configured and no --demo: exit 2 saying what to configure, nothing printed.
    for args in [
        &["org", "list", "--json"][..],
        &["org", "set", ORG_ACME, "api_event.email=ops@acme.example"][..],
    ] {
        let out = env.cmd(args);
        assert_eq!(code(&out), 2, "{}", text(&out.stderr));
        let err = text(&out.stderr);
        assert!(
            err.contains("no organisation source")
                && err.contains("[dashboard] url")
                && err.contains("--demo"),
            "{err}"
        );
        assert_eq!(text(&out.stdout), "");
    }

    let out = env.cmd(&["org", "get", ORG_ACME, "--demo"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc, fixture());

    let out = env.cmd(&[
        "org",
        "set",
        ORG_ACME,
        "key_event.webhook=https://hooks.example.com/k",
        "key_event.redis=false",
        "--demo",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(r#"event_options.key_event.webhook: "" → "https://hooks.example.com/k""#),
        "{stdout}"
    );
    assert!(
        stdout.contains("event_options.key_event.redis: true → false"),
        "{stdout}"
    );
    assert!(stdout.contains("saved"), "{stdout}");

    let out = env.cmd(&[
        "org",
        "set",
        ORG_ACME,
        "key_event.webhook=hooks.example.com",
        "--demo",
    ]);
    assert_eq!(code(&out), 1);
    assert!(
        text(&out.stderr).contains("key_event.webhook: not an absolute URL"),
        "{}",
        text(&out.stderr)
    );
    let out = env.cmd(&["org", "set", ORG_ACME, "key_event.email=ops", "--demo"]);
    assert_eq!(code(&out), 1);
    let out = env.cmd(&["org", "set", ORG_ACME, "keyevent.email=a@b.c", "--demo"]);
    assert_eq!(code(&out), 1);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("unknown event \"keyevent\"") && stderr.contains("future_event"),
        "{stderr}"
    );
    let out = env.cmd(&["org", "get", "no-such-org", "--demo"]);
    assert_eq!(code(&out), 1, "{}", text(&out.stderr));
    let out = env.cmd(&[
        "org",
        "set",
        ORG_ACME,
        "key_event.redis=false",
        "--demo",
        "--readonly",
    ]);
    assert_eq!(code(&out), 1);
    assert!(text(&out.stderr).contains("--readonly"));
}

#[test]
fn cli_on_an_org_directory() {
    let env = Env::new();
    env.write_config("[orgs]\ndir = \"orgs\"\n");
    let orgs = env.config_dir().join("orgs");
    std::fs::create_dir_all(&orgs).unwrap();
    let path = orgs.join(format!("{ORG_ACME}.json"));
    std::fs::write(&path, ORGANISATION).unwrap();

    let out = env.cmd(&["org", "list"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("Acme Payments Ltd."));
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));

    let out = env.cmd(&["org", "set", ORG_ACME, "api_event.email=", "--dry-run"]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("dry run"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), ORGANISATION);

    let out = env.cmd(&[
        "org",
        "set",
        ORG_ACME,
        "api_event.email=",
        "hashed_key_event.redis=true",
    ]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("saved organisation"),
        "{}",
        text(&out.stdout)
    );
    let expected = ORGANISATION
        .replacen(r#""email": "api-ops@example.com""#, r#""email": """#, 1)
        .replacen(
            "\"future_setting\": 42\n    }\n  },",
            "\"future_setting\": 42\n    },\n    \"hashed_key_event\": {\n      \"redis\": true\n    }\n  },",
            1,
        );
    let out = env.cmd(&["org", "get", ORG_ACME]);
    assert_eq!(code(&out), 0, "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), expected);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), expected);

    let out = env.cmd(&["org", "set", ORG_ACME, "api_event.email="]);
    assert_eq!(code(&out), 0);
    assert!(text(&out.stdout).contains("no change"));

    let Some(_guard) = ReadOnly::new(&orgs) else {
        return;
    };
    let before = std::fs::read(&path).unwrap();
    let out = env.cmd(&["org", "set", ORG_ACME, "api_event.email=x@acme.example"]);
    assert_eq!(code(&out), 2, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is not writable"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn cli_with_a_dashboard_that_is_down() {
    let env = Env::new();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    env.write_config(&format!(
        "[dashboard]\nurl = \"http://127.0.0.1:{port}\"\nadmin_secret = \"s3cr3t-admin-value\"\ntimeout = \"2s\"\n"
    ));
    let out = env.cmd(&["org", "list"]);
    assert_eq!(code(&out), 2);
    let stderr = text(&out.stderr);
    assert!(stderr.contains("cannot reach the Dashboard"), "{stderr}");
    assert!(!stderr.contains("s3cr3t"), "{stderr}");

    env.write_config(&format!("[dashboard]\nurl = \"http://127.0.0.1:{port}\"\n"));
    let out = env.cmd(&["org", "list"]);
    assert_eq!(code(&out), 2);
    assert!(
        text(&out.stderr).contains("TYK_DB_ADMIN_SECRET"),
        "{}",
        text(&out.stderr)
    );
}
