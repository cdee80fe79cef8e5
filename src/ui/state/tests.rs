use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::quota::board::BoardSettings;
use crate::quota::model::{QuotaMeta, Sample};
use crate::tyk::gateway::GatewayError;

const T0: i64 = 1_740_823_200_000;

fn opts() -> ConsoleOptions {
    ConsoleOptions {
        gateway_label: "http://gw:8080".into(),
        demo: false,
        poll_interval: Duration::from_secs(2),
        board: BoardSettings::default(),
        global_thresholds: vec![80.0],
        readonly: false,
    }
}

fn id(k: &str) -> QuotaId {
    QuotaId::Key(Arc::from(k))
}

fn sample(k: &str, alias: &str, at: i64, max: i64, remaining: i64) -> Sample {
    Sample {
        id: id(k),
        meta: Arc::new(QuotaMeta {
            alias: alias.into(),
            org_id: "acme".into(),
            haystack: format!("{alias}\u{1f}{k}\u{1f}acme").to_lowercase(),
            ..QuotaMeta::default()
        }),
        at_ms: at,
        quota_max: max,
        quota_remaining: remaining,
        quota_renews: at / 1000 + 3600,
        quota_renewal_rate: 3600,
    }
}

fn sweep(at: i64, samples: Vec<Sample>) -> EngineEvent {
    EngineEvent::Sweep(Box::new(SweepOutcome {
        started_ms: at,
        duration: Duration::from_millis(120),
        samples,
        complete: true,
        ..SweepOutcome::default()
    }))
}

/// a 10 %, b 50 %, c 90 %, d unlimited.
fn state() -> AppState {
    let mut s = AppState::new(&opts(), T0);
    s.apply_engine(sweep(
        T0,
        vec![
            sample("a", "alpha", T0, 100, 90),
            sample("b", "bravo", T0, 100, 50),
            sample("c", "charlie", T0, 100, 10),
            sample("d", "delta", T0, -1, 0),
        ],
    ));
    s
}

fn press(s: &mut AppState, code: KeyCode) -> Option<UiAction> {
    s.handle_key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ch(s: &mut AppState, c: char) -> Option<UiAction> {
    let m = if c.is_ascii_uppercase() {
        KeyModifiers::SHIFT
    } else {
        KeyModifiers::NONE
    };
    s.handle_key(KeyEvent::new(KeyCode::Char(c), m))
}

fn typed(s: &mut AppState, text: &str) {
    for c in text.chars() {
        ch(s, c);
    }
}

fn aliases(s: &AppState) -> Vec<String> {
    s.order()
        .iter()
        .map(|&i| s.board().entries()[i].meta.alias.clone())
        .collect()
}

#[test]
fn default_sort_is_usage_descending_and_selects_the_top() {
    let s = state();
    assert_eq!(aliases(&s), ["charlie", "bravo", "alpha", "delta"]);
    assert_eq!(s.selected(), Some(&id("c")));
    assert_eq!(s.counts().watched, 4);
    assert_eq!(s.counts().over, 1);
}

#[test]
fn sorting_keeps_the_selected_quota() {
    let mut s = state();
    ch(&mut s, 'j');
    assert_eq!(s.selected(), Some(&id("b")));
    ch(&mut s, 'N');
    assert_eq!(aliases(&s), ["alpha", "bravo", "charlie", "delta"]);
    assert_eq!(s.selected(), Some(&id("b")));
    assert_eq!(s.cursor(), 1);
    ch(&mut s, 'N');
    assert_eq!(aliases(&s), ["delta", "charlie", "bravo", "alpha"]);
    assert_eq!(s.cursor(), 2);
    ch(&mut s, 'U');
    assert_eq!(s.sort(), Sort::default());
}

#[test]
fn sweeps_keep_the_selection_on_its_quota() {
    let mut s = state();
    ch(&mut s, 'G');
    ch(&mut s, 'k');
    assert_eq!(s.selected(), Some(&id("a")));
    // alpha jumps to the top by usage
    s.apply_engine(sweep(
        T0 + 2000,
        vec![
            sample("a", "alpha", T0 + 2000, 100, 1),
            sample("b", "bravo", T0 + 2000, 100, 50),
            sample("c", "charlie", T0 + 2000, 100, 10),
            sample("d", "delta", T0 + 2000, -1, 0),
        ],
    ));
    assert_eq!(aliases(&s)[0], "alpha");
    assert_eq!(s.selected(), Some(&id("a")));
    assert_eq!(s.cursor(), 0);
    assert_eq!(s.counts().over, 2);
    // alpha leaves the gateway: the selection stays on row 0
    s.apply_engine(sweep(
        T0 + 4000,
        vec![
            sample("b", "bravo", T0 + 4000, 100, 50),
            sample("c", "charlie", T0 + 4000, 100, 10),
        ],
    ));
    assert_eq!(s.board().len(), 2);
    assert_eq!(s.selected(), Some(&id("c")));
}

#[test]
fn filter_line_applies_on_enter_and_esc_clears() {
    let mut s = state();
    ch(&mut s, '/');
    assert_eq!(s.mode(), &Mode::Filter(String::new()));
    typed(&mut s, "BRA");
    // typing does not filter yet; q is text here, not quit
    assert_eq!(s.order().len(), 4);
    assert_eq!(ch(&mut s, 'q'), None);
    press(&mut s, KeyCode::Backspace);
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.mode(), &Mode::Normal);
    assert_eq!(aliases(&s), ["bravo"]);
    assert_eq!(s.selected(), Some(&id("b")));
    ch(&mut s, '/');
    assert_eq!(s.mode(), &Mode::Filter("BRA".into()));
    press(&mut s, KeyCode::Esc);
    assert!(s.filter().is_empty());
    assert_eq!(s.order().len(), 4);
    // inverted
    ch(&mut s, '/');
    typed(&mut s, "!a");
    press(&mut s, KeyCode::Enter);
    assert_eq!(aliases(&s), Vec::<String>::new());
    ch(&mut s, '/');
    press(&mut s, KeyCode::Esc);
    ch(&mut s, '/');
    typed(&mut s, "!alpha");
    press(&mut s, KeyCode::Enter);
    assert_eq!(aliases(&s), ["charlie", "bravo", "delta"]);
    // Esc in the table clears an applied filter
    press(&mut s, KeyCode::Esc);
    assert!(s.filter().is_empty());
}

#[test]
fn detail_help_and_back() {
    let mut s = state();
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.view(), &View::Detail(id("c")));
    ch(&mut s, 'j');
    assert_eq!(s.view(), &View::Detail(id("b")));
    ch(&mut s, '?');
    assert_eq!(s.view().kind(), ViewKind::Help);
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.view(), &View::Detail(id("b")));
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.view(), &View::Quotas);
    assert_eq!(s.selected(), Some(&id("b")));
}

#[test]
fn detail_lists_the_other_limits_of_the_key() {
    let mut s = AppState::new(&opts(), T0);
    let mut api = sample("k", "kilo", T0, 10, 5);
    api.id = QuotaId::KeyApi(Arc::from("k"), Arc::from("api1"));
    s.apply_engine(sweep(
        T0,
        vec![
            sample("k", "kilo", T0, 100, 50),
            api,
            sample("x", "xray", T0, 1, 1),
        ],
    ));
    ch(&mut s, 'N');
    ch(&mut s, 'g');
    press(&mut s, KeyCode::Enter);
    let View::Detail(shown) = s.view().clone() else {
        panic!("not in detail")
    };
    assert_eq!(shown.key(), Some("k"));
    assert_eq!(s.siblings().len(), 1);
    let sib = &s.board().entries()[s.siblings()[0]];
    assert_eq!(sib.id.key(), Some("k"));
    assert_ne!(sib.id, shown);
}

#[test]
fn command_mode_completes_and_runs() {
    let mut s = state();
    ch(&mut s, ':');
    typed(&mut s, "he");
    press(&mut s, KeyCode::Tab);
    assert_eq!(s.mode(), &Mode::Command("help".into()));
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.view().kind(), ViewKind::Help);
    ch(&mut s, ':');
    typed(&mut s, "quo");
    press(&mut s, KeyCode::Tab);
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.view(), &View::Quotas);
    ch(&mut s, ':');
    typed(&mut s, "events");
    press(&mut s, KeyCode::Enter);
    assert!(
        s.flash()
            .is_some_and(|f| f.text.contains("not available yet"))
    );
    ch(&mut s, ':');
    typed(&mut s, "bogus");
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.flash().map(|f| f.level), Some(Level::Error));
    ch(&mut s, '3');
    assert!(s.flash().is_some_and(|f| f.text.contains(":events")));
    s.tick(T0 + 60_000);
    assert!(s.flash().is_none());
    ch(&mut s, ':');
    typed(&mut s, "q");
    assert_eq!(press(&mut s, KeyCode::Enter), Some(UiAction::Quit));
}

#[test]
fn quit_and_poll() {
    let mut s = state();
    assert_eq!(ch(&mut s, 'r'), Some(UiAction::PollNow));
    let ctrl_r = KeyEvent::new(KeyCode::Char('r'), KeyModifiers::CONTROL);
    assert_eq!(s.handle_key(ctrl_r), Some(UiAction::PollNow));
    assert_eq!(ch(&mut s, 'q'), Some(UiAction::Quit));
    ch(&mut s, '/');
    let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
    assert_eq!(s.handle_key(ctrl_c), Some(UiAction::Quit));
}

#[test]
fn paging_and_scrolling() {
    let mut s = AppState::new(&opts(), T0);
    s.resize(80, 24);
    let samples = (0..100)
        .map(|i| {
            sample(
                &format!("k{i:03}"),
                &format!("key-{i:03}"),
                T0,
                1000,
                1000 - i,
            )
        })
        .collect();
    s.apply_engine(sweep(T0, samples));
    let rows = super::super::render::table_rows(&s);
    assert!(rows > 5 && rows < 24, "{rows}");
    press(&mut s, KeyCode::PageDown);
    assert_eq!(s.cursor(), rows);
    assert_eq!(s.offset(), 1);
    press(&mut s, KeyCode::End);
    assert_eq!(s.cursor(), 99);
    assert_eq!(s.offset(), 100 - rows);
    press(&mut s, KeyCode::PageUp);
    assert_eq!(s.cursor(), 99 - rows);
    assert_eq!(s.offset(), 99 - rows);
    press(&mut s, KeyCode::Home);
    assert_eq!((s.cursor(), s.offset()), (0, 0));
    press(&mut s, KeyCode::Up);
    assert_eq!(s.cursor(), 0);
}

#[test]
fn outage_and_backoff() {
    let mut s = state();
    s.tick(T0 + 3000);
    s.apply_engine(EngineEvent::SweepStarted { at_ms: T0 + 3000 });
    assert!(s.sweeping_since().is_some());
    s.apply_engine(EngineEvent::Sweep(Box::new(SweepOutcome {
        started_ms: T0 + 3000,
        error: Some(GatewayError::Unreachable {
            url: "http://gw:8080".into(),
            reason: "connection refused".into(),
        }),
        ..SweepOutcome::default()
    })));
    s.apply_engine(EngineEvent::Backoff {
        retry_in: Duration::from_secs(8),
        attempt: 2,
    });
    assert!(
        s.outage()
            .is_some_and(|o| o.message.contains("connection refused"))
    );
    assert_eq!(s.retry_in_secs(), Some(8));
    assert_eq!(s.board().len(), 4, "data stays on screen");
    s.tick(T0 + 6000);
    assert_eq!(s.retry_in_secs(), Some(5));
    s.apply_engine(sweep(
        T0 + 11_000,
        vec![sample("a", "alpha", T0 + 11_000, 100, 90)],
    ));
    assert!(s.outage().is_none());
    assert_eq!(s.retry_in_secs(), None);
}
