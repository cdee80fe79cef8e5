//! Keys of the Events and Orgs views, driven through `handle_key` / `apply_engine` /
//! `apply_ui` as the terminal loop drives them.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::orgs::{Conflict, Json, OrgDocument, OrgSource};
use crate::store::EventRow;

const T0: i64 = 1_740_823_200_000;

fn opts() -> ConsoleOptions {
    ConsoleOptions {
        gateway_label: "http://gw:8080".into(),
        global_thresholds: vec![80.0],
        email_from: "Tyk <tyk@example.com>".into(),
        ..ConsoleOptions::default()
    }
}

fn press(s: &mut AppState, code: KeyCode) -> Option<UiAction> {
    s.handle_key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ch(s: &mut AppState, c: char) -> Option<UiAction> {
    press(s, KeyCode::Char(c))
}

fn ctrl(s: &mut AppState, c: char) -> Option<UiAction> {
    s.handle_key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

fn typed(s: &mut AppState, text: &str) {
    for c in text.chars() {
        ch(s, c);
    }
}

fn flash(s: &AppState) -> String {
    s.flash().map(|f| f.text.clone()).unwrap_or_default()
}

// ---- Events ----

fn row(id: i64, kind: &str, event: &str, summary: &str) -> EventRow {
    EventRow {
        id,
        received_at: T0 + (id - 1) * 1000 - 1,
        kind: kind.into(),
        event: event.into(),
        org_id: "acme".into(),
        summary: summary.into(),
        masked_key: String::new(),
        payload_json: format!(
            r#"{{"event":"{event}","data":{{"n":{id},"note":"bell\u0007 \u001b[2J"}}}}"#
        ),
    }
}

fn events(s: &AppState) -> Vec<i64> {
    let e = s.events();
    e.order().iter().map(|&i| e.rows()[i].id).collect()
}

#[test]
fn events_newest_first_follow_filter_detail_and_cap() {
    let mut s = AppState::new(&opts(), T0);
    assert!(ch(&mut s, '3').is_none());
    assert_eq!(s.view(), &View::Events);
    s.apply_engine(EngineEvent::Received(vec![
        row(1, "quota_trigger", "TriggerExceeded", "portal-key 80%"),
        row(2, "dashboard", "key_request_event.submitted", "dev@dev.ca"),
        row(3, "portal", "UserRegistered", "developer@user.com"),
    ]));
    assert_eq!(events(&s), [3, 2, 1]);
    assert_eq!(
        s.events().live(),
        2,
        "by time: row 1 is from before the start"
    );
    // On the newest row the selection stays on the newest (a tail)…
    s.apply_engine(EngineEvent::Received(vec![row(
        4,
        "dashboard",
        "api_event.updated",
        "x",
    )]));
    assert_eq!(s.events().selected().map(|r| r.id), Some(4));
    assert_eq!(s.events().live(), 3);
    // …moved down, it stays on its event.
    ch(&mut s, 'j');
    assert_eq!(s.events().selected().map(|r| r.id), Some(3));
    s.apply_engine(EngineEvent::Received(vec![
        row(5, "dashboard", "key_event.created", "y"),
        row(3, "portal", "UserRegistered", "duplicate id: ignored"),
    ]));
    assert_eq!(events(&s), [5, 4, 3, 2, 1]);
    assert_eq!(s.events().selected().map(|r| r.id), Some(3));

    ch(&mut s, '/');
    typed(&mut s, "key_");
    press(&mut s, KeyCode::Enter);
    assert_eq!(events(&s), [5, 2]);
    ch(&mut s, 'j');
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.view(), &View::Event(2));
    let lines = s
        .events()
        .payload_lines(2)
        .expect("payload prepared")
        .to_vec();
    assert!(lines.len() > 3, "pretty-printed: {lines:?}");
    assert!(
        lines.iter().all(|l| !l.chars().any(char::is_control)),
        "{lines:?}"
    );
    press(&mut s, KeyCode::End);
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.view(), &View::Events);
    press(&mut s, KeyCode::Esc);
    assert_eq!(events(&s).len(), 5, "Esc clears the filter");

    let flood: Vec<EventRow> = (10..1110)
        .map(|i| row(i, "dashboard", "api_event.updated", "flood"))
        .collect();
    s.apply_engine(EngineEvent::Received(flood));
    assert_eq!(s.events().rows().len(), MAX_EVENTS);
    assert_eq!(s.events().rows()[0].id, 1109);
    assert_eq!(s.events().live(), 1104);
}

#[test]
fn events_command_with_a_filter() {
    let mut s = AppState::new(&opts(), T0);
    s.apply_engine(EngineEvent::Received(vec![
        row(1, "portal", "UserRegistered", "a"),
        row(2, "dashboard", "api_event.updated", "b"),
    ]));
    ch(&mut s, ':');
    typed(&mut s, "events portal");
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.view(), &View::Events);
    assert_eq!(events(&s), [1]);
}

// ---- Orgs ----

const ACME: &str = r#"{"id":"acme1","owner_name":"Acme","x":{"keep":[1,2]},"event_options":{
    "api_event":{"webhook":"https://hooks.example.com/a","email":"ops@acme.example","redis":false},
    "key_event":{"webhook":"","email":"","redis":true},
    "future_event":{"webhook":"https://hooks.example.com/f","future_setting":42}}}"#;
const GLOBEX: &str = r#"{"id":"globex1","owner_name":"Globex"}"#;

fn doc(text: &str) -> OrgDocument {
    OrgDocument::from_slice(text.as_bytes()).expect("document")
}

fn orgs_opts() -> ConsoleOptions {
    ConsoleOptions {
        orgs: Some(OrgSource::files("orgs-dir")),
        intake_url: Some("http://127.0.0.1:8089/events".into()),
        ..opts()
    }
}

/// The Orgs view with Acme and Globex loaded, the form of Acme focused.
fn loaded(o: ConsoleOptions) -> AppState {
    let mut s = AppState::new(&o, T0);
    assert_eq!(ch(&mut s, '4'), Some(UiAction::Org(OrgRequest::List)));
    assert!(s.orgs().loading());
    // A second visit does not load again.
    ch(&mut s, '1');
    assert_eq!(ch(&mut s, '4'), None);
    s.apply_ui(UiEvent::Org(OrgReply::Listed(Ok(Listing {
        orgs: vec![doc(ACME), doc(GLOBEX)],
        warnings: vec![],
    }))));
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.view(), &View::OrgForm);
    s
}

fn webhook(s: &AppState, event: &str) -> String {
    let id = s.orgs().selected().expect("selected").id().to_string();
    s.orgs()
        .edited(&id)
        .and_then(|d| d.event(event))
        .map(|c| c.webhook)
        .unwrap_or_default()
}

#[test]
fn orgs_without_a_source_say_how_to_configure_one() {
    let mut s = AppState::new(&opts(), T0);
    assert_eq!(ch(&mut s, '4'), None);
    assert_eq!(s.view(), &View::Orgs);
    assert!(
        s.orgs()
            .source()
            .is_err_and(|e| e.contains("[dashboard] url"))
    );
    assert_eq!(ch(&mut s, 'r'), None);
    assert!(flash(&s).contains("[orgs] dir"), "{}", flash(&s));
    let mut e = AppState::new(
        &ConsoleOptions {
            orgs_error: Some("[dashboard] url is set but no admin secret".into()),
            ..opts()
        },
        T0,
    );
    ch(&mut e, '4');
    assert_eq!(
        e.orgs().source(),
        Err("[dashboard] url is set but no admin secret")
    );
}

#[test]
fn form_lists_every_event_and_moves_over_fields() {
    let mut s = loaded(orgs_opts());
    let names: Vec<String> = s.orgs().events().into_iter().map(|e| e.name).collect();
    assert_eq!(names.len(), 7, "six documented + future_event: {names:?}");
    assert_eq!(names[6], "future_event");
    assert_eq!(s.orgs().field(), crate::orgs::EventField::Webhook);
    ch(&mut s, 'l');
    ch(&mut s, 'l');
    ch(&mut s, 'l');
    assert_eq!(s.orgs().field(), crate::orgs::EventField::Redis);
    ch(&mut s, 'h');
    assert_eq!(s.orgs().field(), crate::orgs::EventField::Email);
    press(&mut s, KeyCode::End);
    assert_eq!(s.orgs().row(), 6);
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.view(), &View::Orgs);
    ch(&mut s, 'j');
    assert_eq!(s.orgs().selected().map(OrgDocument::id), Some("globex1"));
    press(&mut s, KeyCode::Tab);
    assert_eq!(s.view(), &View::OrgForm);
    assert_eq!(s.orgs().row(), 0, "another org's form starts at the top");
}

#[test]
fn edit_validates_as_typed_and_saves_after_the_diff() {
    let mut s = loaded(orgs_opts());
    press(&mut s, KeyCode::Enter);
    let ed = s.orgs().editor().expect("editor open");
    assert_eq!(ed.text, "https://hooks.example.com/a");
    assert_eq!(ed.error, None);
    ctrl(&mut s, 'u');
    typed(&mut s, "hooks.example.com/q");
    assert!(
        s.orgs()
            .editor()
            .and_then(|e| e.error.clone())
            .is_some_and(|e| e.contains("absolute URL")),
        "{:?}",
        s.orgs().editor()
    );
    // Enter does not take an invalid value; `q` and digits went into the field.
    assert_eq!(press(&mut s, KeyCode::Enter), None);
    assert!(s.orgs().editor().is_some());
    assert_eq!(s.view(), &View::OrgForm);
    ctrl(&mut s, 'u');
    typed(&mut s, "https://new.example/hook");
    assert_eq!(s.orgs().editor().and_then(|e| e.error.clone()), None);
    press(&mut s, KeyCode::Enter);
    assert!(s.orgs().editor().is_none());
    assert_eq!(webhook(&s, "api_event"), "https://new.example/hook");
    let changes: Vec<String> = s
        .orgs()
        .changes("acme1")
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        changes,
        [
            r#"event_options.api_event.webhook: "https://hooks.example.com/a" → "https://new.example/hook""#
        ]
    );

    // Esc cancels an edit without touching the value.
    press(&mut s, KeyCode::Enter);
    typed(&mut s, "zzz");
    press(&mut s, KeyCode::Esc);
    assert_eq!(webhook(&s, "api_event"), "https://new.example/hook");

    assert_eq!(ch(&mut s, 's'), None);
    assert_eq!(s.key_view(), ViewKind::Confirm);
    assert!(
        matches!(s.orgs().confirm(), Some(Confirm::Save { changes, .. }) if changes.len() == 1)
    );
    ch(&mut s, 'n');
    assert!(s.orgs().confirm().is_none());
    ch(&mut s, 's');
    let Some(UiAction::Org(OrgRequest::Save { original, edited })) = ch(&mut s, 'y') else {
        panic!("y saves");
    };
    assert_eq!(original, doc(ACME));
    assert_eq!(
        edited.event("api_event").map(|c| c.webhook),
        Some("https://new.example/hook".into())
    );
    assert_eq!(s.orgs().saving(), Some("acme1"));
    // Nothing else can start while the save is out.
    press(&mut s, KeyCode::Enter);
    assert!(s.orgs().editor().is_none());
    assert!(flash(&s).contains("wait for the save"), "{}", flash(&s));

    s.apply_ui(UiEvent::Org(OrgReply::Saved {
        id: "acme1".into(),
        result: Ok(edited.clone()),
    }));
    assert_eq!(s.orgs().saving(), None);
    assert!(s.orgs().changes("acme1").is_empty());
    assert_eq!(s.orgs().doc("acme1"), Some(&edited));
    assert!(
        flash(&s).contains("saved 1 change to Acme"),
        "{}",
        flash(&s)
    );
}

#[test]
fn a_field_set_back_leaves_no_change_and_redis_toggles() {
    let mut s = loaded(orgs_opts());
    ch(&mut s, 'j'); // key_event
    ch(&mut s, 'l');
    ch(&mut s, 'l');
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.orgs().changes("acme1").len(), 1);
    press(&mut s, KeyCode::Enter);
    assert!(s.orgs().changes("acme1").is_empty(), "toggled back");
    press(&mut s, KeyCode::Enter);
    ch(&mut s, 'u');
    assert!(s.orgs().changes("acme1").is_empty(), "u undoes");
    // hashed_key_event is absent: a value set and cleared again adds nothing.
    ch(&mut s, 'j');
    ch(&mut s, 'j');
    ch(&mut s, 'h');
    ch(&mut s, 'h');
    press(&mut s, KeyCode::Enter);
    typed(&mut s, "https://h.example/x");
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.orgs().changes("acme1").len(), 1);
    press(&mut s, KeyCode::Enter);
    ctrl(&mut s, 'u');
    press(&mut s, KeyCode::Enter);
    assert!(s.orgs().changes("acme1").is_empty());
}

#[test]
fn conflict_shows_both_sides_and_never_overwrites() {
    let mut s = loaded(orgs_opts());
    press(&mut s, KeyCode::Enter);
    ctrl(&mut s, 'u');
    typed(&mut s, "https://mine.example/");
    press(&mut s, KeyCode::Enter);
    ch(&mut s, 's');
    let Some(UiAction::Org(OrgRequest::Save { original, .. })) = ch(&mut s, 'y') else {
        panic!("y saves");
    };
    let theirs = Json::parse(
        ACME.replace("ops@acme.example", "someone-else@acme.example")
            .as_bytes(),
    )
    .expect("json");
    s.apply_ui(UiEvent::Org(OrgReply::Saved {
        id: "acme1".into(),
        result: Err(SaveError::Conflict(Box::new(Conflict {
            id: "acme1".into(),
            loaded: original.to_json_value(),
            current: Some(theirs),
            place: "on the Dashboard".into(),
        }))),
    }));
    assert_eq!(s.key_view(), ViewKind::Conflict);
    let c = s.orgs().conflict().expect("conflict");
    assert_eq!(c.theirs.len(), 1);
    assert!(c.theirs[0].to_string().contains("someone-else"));
    assert_eq!(c.ours.len(), 1);
    assert!(flash(&s).contains("not saved"), "{}", flash(&s));
    // Keys of the view do nothing under the dialog.
    assert_eq!(ch(&mut s, 's'), None);
    assert_eq!(ch(&mut s, '1'), None);
    assert_eq!(s.view(), &View::OrgForm);
    // Cancel keeps the pending change…
    press(&mut s, KeyCode::Esc);
    assert!(s.orgs().conflict().is_none());
    assert_eq!(s.orgs().changes("acme1").len(), 1);
    // …reload drops it.
    ch(&mut s, 's');
    ch(&mut s, 'y');
    s.apply_ui(UiEvent::Org(OrgReply::Saved {
        id: "acme1".into(),
        result: Err(SaveError::Conflict(Box::new(Conflict {
            id: "acme1".into(),
            loaded: doc(ACME).to_json_value(),
            current: None,
            place: "on the Dashboard".into(),
        }))),
    }));
    assert!(s.orgs().conflict().is_some_and(|c| c.deleted));
    assert_eq!(ch(&mut s, 'r'), Some(UiAction::Org(OrgRequest::List)));
    assert!(s.orgs().conflict().is_none());
    assert_eq!(s.orgs().pending_total(), 0);
}

#[test]
fn reload_asks_before_dropping_pending_changes() {
    let mut s = loaded(orgs_opts());
    ch(&mut s, 'w');
    assert_eq!(webhook(&s, "api_event"), "http://127.0.0.1:8089/events");
    assert_eq!(ctrl(&mut s, 'r'), None);
    assert!(matches!(
        s.orgs().confirm(),
        Some(Confirm::Reload { pending: 1 })
    ));
    ch(&mut s, 'n');
    assert_eq!(s.orgs().pending_total(), 1);
    ch(&mut s, 'r');
    assert_eq!(ch(&mut s, 'y'), Some(UiAction::Org(OrgRequest::List)));
    assert_eq!(s.orgs().pending_total(), 0);
    // Without changes a reload goes straight out; a second one waits for the first.
    s.apply_ui(UiEvent::Org(OrgReply::Listed(Err("Dashboard down".into()))));
    assert!(flash(&s).contains("Dashboard down"));
    assert_eq!(ch(&mut s, 'r'), Some(UiAction::Org(OrgRequest::List)));
    assert_eq!(ch(&mut s, 'r'), None);
}

#[test]
fn test_sends_and_intake_need_something_to_work_with() {
    let mut s = loaded(orgs_opts());
    let Some(UiAction::Org(OrgRequest::Test(t))) = ch(&mut s, 't') else {
        panic!("t tests api_event");
    };
    assert_eq!(t.event, "api_event");
    assert_eq!(t.org_id, "acme1");
    assert_eq!(t.webhook, "https://hooks.example.com/a");
    assert_eq!(t.email, "ops@acme.example");
    s.apply_ui(UiEvent::Org(OrgReply::Tested {
        event: "api_event".into(),
        summary: "webhook https://hooks.example.com: HTTP 200".into(),
        ok: true,
    }));
    assert!(flash(&s).contains("HTTP 200"));
    ch(&mut s, 'j'); // key_event: redis only
    assert_eq!(ch(&mut s, 't'), None);
    assert!(
        flash(&s).contains("no webhook and no e-mail"),
        "{}",
        flash(&s)
    );

    let mut n = loaded(ConsoleOptions {
        intake_url: None,
        ..orgs_opts()
    });
    ch(&mut n, 'w');
    assert!(flash(&n).contains("[intake] listen"), "{}", flash(&n));
    assert_eq!(n.orgs().pending_total(), 0);
    let mut secret = loaded(ConsoleOptions {
        intake_secret: true,
        ..orgs_opts()
    });
    ch(&mut secret, 'w');
    assert!(flash(&secret).contains("X-Tykwatch-Secret"));
}

#[test]
fn readonly_disables_every_edit() {
    let mut s = loaded(ConsoleOptions {
        readonly: true,
        ..orgs_opts()
    });
    for key in [
        KeyCode::Enter,
        KeyCode::Char('w'),
        KeyCode::Char('t'),
        KeyCode::Char('u'),
    ] {
        s.tick(T0 + 10_000);
        assert_eq!(press(&mut s, key), None, "{key:?}");
        assert!(s.orgs().editor().is_none());
        assert!(flash(&s).contains("--readonly"), "{key:?}: {}", flash(&s));
    }
    assert_eq!(ch(&mut s, 's'), None);
    assert!(s.orgs().confirm().is_none());
    assert_eq!(s.orgs().pending_total(), 0);
    // Reading is fine.
    assert_eq!(ch(&mut s, 'r'), Some(UiAction::Org(OrgRequest::List)));
}

#[test]
fn new_views_have_their_keys_in_the_help() {
    for (view, key) in [
        (ViewKind::OrgForm, "s"),
        (ViewKind::OrgForm, "t"),
        (ViewKind::OrgForm, "w"),
        (ViewKind::OrgForm, "Enter"),
        (ViewKind::Orgs, "Ctrl-R"),
        (ViewKind::Confirm, "y"),
        (ViewKind::Conflict, "r"),
        (ViewKind::Events, "/"),
        (ViewKind::Event, "PgDn"),
    ] {
        assert!(
            keymap::KEYMAP
                .iter()
                .any(|b| b.applies_to(view) && b.keys.iter().any(|k| k.label() == key)),
            "{key} in {view:?}"
        );
    }
}
