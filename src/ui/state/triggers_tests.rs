//! The detail's trigger-limit editor, driven through `handle_key` / `apply_ui` as the
//! terminal loop drives it.

use std::sync::Arc;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::orgs::Json;
use crate::quota::model::{QuotaMeta, Sample, SessionMeta};
use crate::triggers::{EditError, Prepared, Target};

const T0: i64 = 1_740_823_200_000;

fn opts(readonly: bool, edits: Result<(), &str>) -> ConsoleOptions {
    let session_edits = match edits {
        Ok(()) => crate::tyk::gateway::Gateway::new(&crate::tyk::gateway::GatewaySettings {
            url: "http://127.0.0.1:9".into(),
            secret: "s".into(),
            timeout: std::time::Duration::from_secs(1),
            concurrency: 1,
            max_body: 1 << 20,
        })
        .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    ConsoleOptions {
        readonly,
        session_edits,
        ..ConsoleOptions::default()
    }
}

fn state(opts: &ConsoleOptions) -> AppState {
    let mut s = AppState::new(opts, T0);
    let sample = Sample {
        id: QuotaId::Key(Arc::from("k1")),
        meta: QuotaMeta::from(SessionMeta {
            key: Arc::from("k1"),
            alias: "alpha".into(),
            org_id: "acme".into(),
            trigger_limits: Arc::new(vec![50.0, 80.0]),
            ..SessionMeta::default()
        }),
        at_ms: T0,
        quota_max: 100,
        quota_remaining: 40,
        quota_renews: T0 / 1000 + 3600,
        quota_renewal_rate: 3600,
    };
    s.apply_engine(EngineEvent::Sweep(Box::new(SweepOutcome {
        started_ms: T0,
        samples: vec![sample],
        complete: true,
        ..SweepOutcome::default()
    })));
    s.handle_key(KeyEvent::new(KeyCode::Enter, KeyModifiers::NONE));
    assert!(matches!(s.view(), View::Detail(_)));
    s
}

fn key(s: &mut AppState, code: KeyCode) -> Option<UiAction> {
    s.handle_key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ch(s: &mut AppState, c: char) -> Option<UiAction> {
    key(s, KeyCode::Char(c))
}

fn phase(s: &AppState) -> TriggerPhase {
    s.trigger_edit().expect("editor open").phase.clone()
}

fn target() -> Target {
    Target::Key {
        id: "k1".into(),
        hashed: false,
    }
}

fn prepared(limits: &[f64]) -> Box<Prepared> {
    let session =
        Json::parse(br#"{"quota_max":100,"monitor":{"trigger_limits":[80,50]}}"#).unwrap();
    Box::new(Prepared::new(target(), session, limits).unwrap())
}

#[test]
fn m_edits_confirms_and_saves() {
    let mut s = state(&opts(false, Ok(())));
    assert_eq!(ch(&mut s, 'm'), None);
    let e = s.trigger_edit().expect("editor open");
    assert_eq!(e.text, "80,50", "prefilled descending");
    assert_eq!(e.target, target());
    // Digits and `q` are text here, not view keys.
    key(&mut s, KeyCode::Backspace);
    key(&mut s, KeyCode::Backspace);
    for c in "50,95q".chars() {
        ch(&mut s, c);
    }
    assert!(
        matches!(phase(&s), TriggerPhase::Typing { problem: Some(p) } if p.contains("not a number"))
    );
    assert_eq!(key(&mut s, KeyCode::Enter), None, "a bad list goes nowhere");
    key(&mut s, KeyCode::Backspace);
    assert_eq!(phase(&s), TriggerPhase::Typing { problem: None });
    let Some(UiAction::Key(KeyRequest::Prepare { target: t, limits })) =
        key(&mut s, KeyCode::Enter)
    else {
        panic!("Enter asks for the session");
    };
    assert_eq!((t, limits.as_slice()), (target(), &[95.0, 80.0, 50.0][..]));
    assert_eq!(phase(&s), TriggerPhase::Reading);

    s.apply_ui(UiEvent::Key(KeyReply::Prepared(Ok(prepared(&[
        95.0, 80.0, 50.0,
    ])))));
    let TriggerPhase::Confirm(p) = phase(&s) else {
        panic!("the change to confirm");
    };
    assert_eq!(p.before, [80.0, 50.0]);
    assert_eq!(p.changes.len(), 1);
    // n goes back to the text; Enter again; y saves.
    ch(&mut s, 'n');
    assert!(matches!(phase(&s), TriggerPhase::Typing { .. }));
    key(&mut s, KeyCode::Enter);
    s.apply_ui(UiEvent::Key(KeyReply::Prepared(Ok(prepared(&[
        95.0, 80.0, 50.0,
    ])))));
    let Some(UiAction::Key(KeyRequest::Save(p))) = ch(&mut s, 'y') else {
        panic!("y saves");
    };
    assert_eq!(p.after, [95.0, 80.0, 50.0]);
    assert_eq!(phase(&s), TriggerPhase::Saving);
    s.apply_ui(UiEvent::Key(KeyReply::Saved {
        target: target(),
        result: Ok(vec![95.0, 80.0, 50.0]),
    }));
    assert!(s.trigger_edit().is_none());
    let f = s.flash().expect("flash").text.clone();
    assert!(f.contains("95, 80, 50") && f.contains("not reset"), "{f}");
}

#[test]
fn a_conflict_brings_the_text_back_with_the_reason() {
    let mut s = state(&opts(false, Ok(())));
    ch(&mut s, 'm');
    key(&mut s, KeyCode::Enter);
    s.apply_ui(UiEvent::Key(KeyReply::Prepared(Ok(prepared(&[90.0])))));
    ch(&mut s, 'y');
    let changes = crate::orgs::diff(
        &Json::parse(br#"{"rate":1}"#).unwrap(),
        &Json::parse(br#"{"rate":2}"#).unwrap(),
    );
    s.apply_ui(UiEvent::Key(KeyReply::Saved {
        target: target(),
        result: Err(EditError::Conflict {
            what: target().label(),
            changes,
        }),
    }));
    let e = s.trigger_edit().expect("still open");
    assert_eq!(e.text, "80,50");
    let TriggerPhase::Typing { problem: Some(p) } = &e.phase else {
        panic!("typing again");
    };
    assert!(
        p.contains("changed at the gateway") && p.contains("rate"),
        "{p}"
    );
    // Unchanged limits close with a note instead of a confirm.
    key(&mut s, KeyCode::Enter);
    s.apply_ui(UiEvent::Key(KeyReply::Prepared(Ok(prepared(&[
        80.0, 50.0,
    ])))));
    assert!(s.trigger_edit().is_none());
    assert!(s.flash().unwrap().text.contains("already 80, 50"));
}

#[test]
fn readonly_and_no_gateway_refuse_and_esc_closes() {
    let mut s = state(&opts(true, Ok(())));
    ch(&mut s, 'm');
    assert!(s.trigger_edit().is_none());
    assert!(s.flash().unwrap().text.contains("--readonly"));

    let mut s = state(&opts(false, Err("editing a key needs [gateway] url")));
    ch(&mut s, 'm');
    assert!(s.trigger_edit().is_none());
    assert!(s.flash().unwrap().text.contains("[gateway] url"));

    let mut s = state(&opts(false, Ok(())));
    ch(&mut s, 'm');
    key(&mut s, KeyCode::Esc);
    assert!(s.trigger_edit().is_none());
    assert!(
        matches!(s.view(), View::Detail(_)),
        "Esc closes the editor only"
    );
}

/// `e` in the Templates view asks the loop to edit the selected template's shown part in the
/// user directory; `--readonly` refuses.
#[test]
fn e_asks_to_edit_the_selected_template() {
    let dir = std::path::PathBuf::from("/nonexistent/tykwatch-config");
    let mut s = AppState::new(
        &ConsoleOptions {
            config_dir: Some(dir.clone()),
            ..ConsoleOptions::default()
        },
        T0,
    );
    ch(&mut s, '5');
    let first = s.templates().selected().expect("a template").to_string();
    let Some(UiAction::EditTemplate { name, html, dir: d }) = ch(&mut s, 'e') else {
        panic!("e asks to edit");
    };
    assert_eq!(name, first);
    assert!(html, "the HTML part is shown first");
    assert_eq!(d, crate::templates::user_dir(&dir));
    ch(&mut s, 'p');
    assert!(matches!(
        ch(&mut s, 'e'),
        Some(UiAction::EditTemplate { html: false, .. })
    ));

    let mut s = AppState::new(
        &ConsoleOptions {
            config_dir: Some(dir),
            readonly: true,
            ..ConsoleOptions::default()
        },
        T0,
    );
    ch(&mut s, '5');
    assert_eq!(ch(&mut s, 'e'), None);
    assert!(s.flash().unwrap().text.contains("--readonly"));
}
