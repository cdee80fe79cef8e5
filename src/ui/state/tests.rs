use std::sync::Arc;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::quota::model::{QuotaMeta, Sample, SessionMeta};
use crate::tyk::gateway::GatewayError;
use crate::ui::table::{Sort, SortKey};

const T0: i64 = 1_740_823_200_000;

fn opts() -> ConsoleOptions {
    ConsoleOptions {
        gateway_label: "http://gw:8080".into(),
        global_thresholds: vec![80.0],
        email_from: "Tyk <tyk@example.com>".into(),
        email_to: vec!["api-ops@example.com".into()],
        ..ConsoleOptions::default()
    }
}

fn id(k: &str) -> QuotaId {
    QuotaId::Key(Arc::from(k))
}

fn sample(k: &str, alias: &str, at: i64, max: i64, remaining: i64) -> Sample {
    Sample {
        id: id(k),
        meta: QuotaMeta::from(SessionMeta {
            key: Arc::from(k),
            alias: alias.into(),
            org_id: "acme".into(),
            ..SessionMeta::default()
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
    s.quotas()
        .order()
        .iter()
        .map(|&i| s.board().entries()[i].meta.alias.to_string())
        .collect()
}

#[test]
fn default_sort_is_usage_descending_and_selects_the_top() {
    let s = state();
    assert_eq!(aliases(&s), ["charlie", "bravo", "alpha", "delta"]);
    assert_eq!(s.quotas().selected(), Some(&id("c")));
    assert_eq!(s.quotas().counts().watched, 4);
    assert_eq!(s.quotas().counts().over, 1);
}

#[test]
fn sorting_keeps_the_selected_quota() {
    let mut s = state();
    ch(&mut s, 'j');
    assert_eq!(s.quotas().selected(), Some(&id("b")));
    ch(&mut s, 'N');
    assert_eq!(aliases(&s), ["alpha", "bravo", "charlie", "delta"]);
    assert_eq!(s.quotas().selected(), Some(&id("b")));
    assert_eq!(s.quotas().cursor(), 1);
    ch(&mut s, 'N');
    assert_eq!(aliases(&s), ["delta", "charlie", "bravo", "alpha"]);
    assert_eq!(s.quotas().cursor(), 2);
    ch(&mut s, 'U');
    assert_eq!(s.quotas().sort(), Sort::default());
}

#[test]
fn sweeps_keep_the_selection_on_its_quota() {
    let mut s = state();
    ch(&mut s, 'G');
    ch(&mut s, 'k');
    assert_eq!(s.quotas().selected(), Some(&id("a")));
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
    assert_eq!(s.quotas().selected(), Some(&id("a")));
    assert_eq!(s.quotas().cursor(), 0);
    assert_eq!(s.quotas().counts().over, 2);
    // alpha leaves the gateway: the selection stays on row 0
    s.apply_engine(sweep(
        T0 + 4000,
        vec![
            sample("b", "bravo", T0 + 4000, 100, 50),
            sample("c", "charlie", T0 + 4000, 100, 10),
        ],
    ));
    assert_eq!(s.board().len(), 2);
    assert_eq!(s.quotas().selected(), Some(&id("c")));
}

#[test]
fn filter_line_filters_as_typed_enter_keeps_esc_restores() {
    let mut s = state();
    ch(&mut s, '/');
    assert_eq!(s.mode(), &Mode::Filter(String::new()));
    typed(&mut s, "BR");
    // every keystroke filters; q is text here, not quit
    assert_eq!(aliases(&s), ["bravo"]);
    assert_eq!(ch(&mut s, 'q'), None);
    assert_eq!(s.quotas().order().len(), 0);
    press(&mut s, KeyCode::Backspace);
    assert_eq!(aliases(&s), ["bravo"]);
    ch(&mut s, 'A');
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.mode(), &Mode::Normal);
    assert_eq!(aliases(&s), ["bravo"]);
    assert_eq!(s.quotas().selected(), Some(&id("b")));
    // Esc puts back the filter from before `/`, not an empty one
    ch(&mut s, '/');
    assert_eq!(s.mode(), &Mode::Filter("BRA".into()));
    press(&mut s, KeyCode::Backspace);
    press(&mut s, KeyCode::Backspace);
    press(&mut s, KeyCode::Backspace);
    assert_eq!(s.quotas().order().len(), 4);
    typed(&mut s, "ch");
    assert_eq!(aliases(&s), ["charlie"]);
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.quotas().filter().text(), "BRA");
    assert_eq!(aliases(&s), ["bravo"]);
    // Esc in the table clears an applied filter
    press(&mut s, KeyCode::Esc);
    assert!(s.quotas().filter().is_empty());
    assert_eq!(s.quotas().order().len(), 4);
    // inverted, also while typing
    ch(&mut s, '/');
    typed(&mut s, "!a");
    assert_eq!(aliases(&s), Vec::<String>::new());
    press(&mut s, KeyCode::Enter);
    assert_eq!(aliases(&s), Vec::<String>::new());
    ch(&mut s, '/');
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.quotas().filter().text(), "!a");
    ch(&mut s, '/');
    press(&mut s, KeyCode::Char('u'));
    s.handle_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    typed(&mut s, "!alpha");
    press(&mut s, KeyCode::Enter);
    assert_eq!(aliases(&s), ["charlie", "bravo", "delta"]);
    press(&mut s, KeyCode::Esc);
    assert!(s.quotas().filter().is_empty());
}

fn command(s: &mut AppState, line: &str) {
    ch(s, ':');
    typed(s, line);
    press(s, KeyCode::Enter);
}

#[test]
fn sort_and_filter_commands() {
    let mut s = state();
    command(&mut s, "sort name");
    assert_eq!(aliases(&s), ["alpha", "bravo", "charlie", "delta"]);
    command(&mut s, "sort NAME desc");
    assert_eq!(aliases(&s), ["delta", "charlie", "bravo", "alpha"]);
    command(&mut s, "sort usage asc");
    assert_eq!(aliases(&s), ["alpha", "bravo", "charlie", "delta"]);
    command(&mut s, "sort req/min");
    assert_eq!(s.quotas().sort().key, SortKey::Rate);
    // errors name what is accepted; the sort stays
    command(&mut s, "sort colour");
    let f = s.flash().expect("flash");
    assert_eq!(f.level, Level::Error);
    assert!(f.text.contains("unknown column colour"), "{}", f.text);
    assert!(f.text.contains("usage, name, org, remain"), "{}", f.text);
    assert_eq!(s.quotas().sort().key, SortKey::Rate);
    command(&mut s, "sort eta sideways");
    assert!(
        s.flash()
            .expect("flash")
            .text
            .contains("unknown direction sideways")
    );
    command(&mut s, "sort");
    assert!(
        s.flash()
            .expect("flash")
            .text
            .contains(":sort needs a column")
    );
    // :filter sets the view's filter (as typed after the word); no text clears it
    command(&mut s, "filter !alpha");
    assert_eq!(s.quotas().filter().text(), "!alpha");
    assert_eq!(s.quotas().order().len(), 3);
    command(&mut s, "filter");
    assert!(s.quotas().filter().is_empty());
    // from another view, :sort shows the Quotas table
    ch(&mut s, '2');
    command(&mut s, "sort org desc");
    assert_eq!(s.view(), &View::Quotas);
    assert_eq!(
        s.quotas().sort(),
        Sort {
            key: SortKey::Org,
            descending: true
        }
    );
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
    assert_eq!(s.quotas().selected(), Some(&id("b")));
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
    assert_eq!(s.quotas().siblings().len(), 1);
    let sib = &s.board().entries()[s.quotas().siblings()[0]];
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
    assert_eq!(s.view(), &View::Events);
    ch(&mut s, ':');
    typed(&mut s, "bogus");
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.flash().map(|f| f.level), Some(Level::Error));
    ch(&mut s, '1');
    ch(&mut s, '4');
    assert_eq!(s.view(), &View::Orgs);
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
    let rows = super::super::layout::table_rows(&s);
    assert!(rows > 5 && rows < 24, "{rows}");
    press(&mut s, KeyCode::PageDown);
    assert_eq!(s.quotas().cursor(), rows);
    assert_eq!(s.quotas().offset(), 1);
    press(&mut s, KeyCode::End);
    assert_eq!(s.quotas().cursor(), 99);
    assert_eq!(s.quotas().offset(), 100 - rows);
    press(&mut s, KeyCode::PageUp);
    assert_eq!(s.quotas().cursor(), 99 - rows);
    assert_eq!(s.quotas().offset(), 99 - rows);
    press(&mut s, KeyCode::Home);
    assert_eq!((s.quotas().cursor(), s.quotas().offset()), (0, 0));
    press(&mut s, KeyCode::Up);
    assert_eq!(s.quotas().cursor(), 0);
}

#[test]
fn outage_and_backoff() {
    let mut s = state();
    s.tick(T0 + 3000);
    s.apply_engine(EngineEvent::SweepStarted { at_ms: T0 + 3000 });
    assert!(s.sweeping_since().is_some());
    s.apply_engine(EngineEvent::Sweep(Box::new(SweepOutcome {
        started_ms: T0 + 3000,
        error: Some(
            GatewayError::Unreachable {
                url: "http://gw:8080".into(),
                reason: "connection refused".into(),
            }
            .into(),
        ),
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

// ---- Notifications ----

use crate::notify::feed::{FiredMark, Inspection, NotificationItem, OutboxSnapshot};
use crate::outbox::{DisabledChannel, OutboxCounts, OutboxRow, OutboxState, Source};

fn item(
    n: u32,
    alias: &str,
    channel: &str,
    state: OutboxState,
    error: Option<&str>,
) -> NotificationItem {
    NotificationItem {
        row: OutboxRow {
            idem_key: format!("q:key:{n}:1:80:{channel}"),
            channel_id: channel.parse().unwrap(),
            payload_json: String::new(),
            state,
            attempts: u32::from(state != OutboxState::Pending),
            next_attempt_at: T0,
            last_status: None,
            last_error: error.map(str::to_string),
            created_at: T0 - i64::from(n) * 1000,
            delivered_at: None,
            source: Source::Crossing {
                quota_key: format!("key:{n}"),
                period: 1,
                threshold: 80.0,
            },
            sequence: i64::from(n),
        },
        scope: "key".into(),
        org_id: "acme".into(),
        alias: alias.into(),
        key_masked: "abcd…wxyz".into(),
        api_id: String::new(),
        usage_percentage: 85.0,
        event: "quota.threshold_crossed".into(),
        payload: None,
    }
}

fn outbox() -> EngineEvent {
    EngineEvent::Outbox(Box::new(OutboxSnapshot {
        items: vec![
            item(
                1,
                "alpha",
                "webhook:ops",
                OutboxState::Failed,
                Some("HTTP 500"),
            ),
            item(2, "bravo", "email:ops", OutboxState::Delivered, None),
            item(
                3,
                "charlie",
                "webhook:gone",
                OutboxState::Dead,
                Some("410 Gone"),
            ),
            item(4, "delta", "webhook:ops", OutboxState::Pending, None),
        ],
        counts: OutboxCounts {
            pending: 1,
            failed: 1,
            dead: 1,
            delivered: 1,
            ..OutboxCounts::default()
        },
        disabled: vec![DisabledChannel {
            channel_id: "webhook:gone".parse().unwrap(),
            disabled_at: T0,
            reason: "410 Gone".into(),
        }],
        channels: vec![
            "tyk".parse().unwrap(),
            "webhook:ops".parse().unwrap(),
            "webhook:gone".parse().unwrap(),
        ],
        peers: None,
        at_ms: T0,
    }))
}

fn notif_aliases(s: &AppState) -> Vec<String> {
    let n = s.notifications();
    n.order()
        .iter()
        .map(|&i| n.items()[i].alias.clone())
        .collect()
}

#[test]
fn notifications_view_lists_filters_and_keeps_the_selection() {
    let mut s = state();
    ch(&mut s, '2');
    assert_eq!(s.view(), &View::Notifications);
    s.apply_engine(outbox());
    assert_eq!(notif_aliases(&s), ["alpha", "bravo", "charlie", "delta"]);
    ch(&mut s, 'j');
    assert_eq!(
        s.notifications().selected().map(|i| i.alias.as_str()),
        Some("bravo")
    );
    // a new snapshot with a newer row on top: the selection stays on bravo
    let EngineEvent::Outbox(mut snap) = outbox() else {
        unreachable!()
    };
    snap.items
        .insert(0, item(0, "echo", "tyk", OutboxState::Pending, None));
    s.apply_engine(EngineEvent::Outbox(snap));
    assert_eq!(
        s.notifications().selected().map(|i| i.alias.as_str()),
        Some("bravo")
    );
    assert_eq!(s.notifications().cursor(), 2);
    // the filter matches channel, state and error, and does not touch the quotas filter
    ch(&mut s, '/');
    typed(&mut s, "webhook:ops");
    press(&mut s, KeyCode::Enter);
    assert_eq!(notif_aliases(&s), ["alpha", "delta"]);
    assert!(s.quotas().filter().is_empty());
    ch(&mut s, '/');
    assert_eq!(s.mode(), &Mode::Filter("webhook:ops".into()));
    // Esc restores the filter from before `/`; Ctrl-U empties the line
    press(&mut s, KeyCode::Esc);
    assert_eq!(notif_aliases(&s), ["alpha", "delta"]);
    ch(&mut s, '/');
    s.handle_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    typed(&mut s, "410");
    press(&mut s, KeyCode::Enter);
    assert_eq!(notif_aliases(&s), ["charlie"]);
    ch(&mut s, '/');
    s.handle_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    typed(&mut s, "!");
    press(&mut s, KeyCode::Enter);
    ch(&mut s, '/');
    press(&mut s, KeyCode::Esc);
    ch(&mut s, '/');
    s.handle_key(KeyEvent::new(KeyCode::Char('u'), KeyModifiers::CONTROL));
    typed(&mut s, "!FAILED");
    press(&mut s, KeyCode::Enter);
    assert_eq!(notif_aliases(&s), ["echo", "bravo", "charlie", "delta"]);
    // Esc in the list clears it
    press(&mut s, KeyCode::Esc);
    assert_eq!(notif_aliases(&s).len(), 5);
}

/// The snapshot holds the newest rows; moving to the end of them asks for the next page, once,
/// and the page is appended after them (a newer snapshot keeps it).
#[test]
fn notifications_page_in_older_rows_at_the_end() {
    let mut s = state();
    ch(&mut s, '2');
    let EngineEvent::Outbox(mut snap) = outbox() else {
        unreachable!()
    };
    snap.counts.delivered += 3; // three rows beyond the window
    s.apply_engine(EngineEvent::Outbox(snap.clone()));
    let last = s.notifications().items()[3].row.clone();
    assert_eq!(
        ch(&mut s, 'G'),
        Some(UiAction::Notify(NotifyRequest::Page {
            sequence: last.sequence,
            idem_key: last.idem_key.clone(),
        }))
    );
    assert_eq!(ch(&mut s, 'j'), None, "one request at a time");
    let older: Vec<NotificationItem> = (5..8)
        .map(|n| {
            item(
                n,
                &format!("old-{n}"),
                "webhook:ops",
                OutboxState::Delivered,
                None,
            )
        })
        .collect();
    s.apply_engine(EngineEvent::OutboxPage(older));
    assert_eq!(
        notif_aliases(&s),
        [
            "alpha", "bravo", "charlie", "delta", "old-5", "old-6", "old-7"
        ]
    );
    // Everything is loaded: no more requests; a new snapshot keeps the paged rows.
    assert_eq!(ch(&mut s, 'G'), None);
    s.apply_engine(EngineEvent::Outbox(snap));
    assert_eq!(notif_aliases(&s).len(), 7);
    assert_eq!(
        s.notifications().selected().map(|i| i.alias.as_str()),
        Some("old-7")
    );
}

#[test]
fn notification_detail_asks_for_the_inspection() {
    let mut s = state();
    ch(&mut s, '2');
    s.apply_engine(outbox());
    let key = s.notifications().items()[0].row.idem_key.clone();
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        Some(UiAction::Notify(NotifyRequest::Inspect(key.clone())))
    );
    assert_eq!(s.view(), &View::Notification(key.clone()));
    assert_eq!(
        s.notifications().inspection(&key),
        Some(&InspectState::Loading)
    );
    // an answer for another row is ignored
    s.apply_engine(EngineEvent::Inspected(Box::new(Inspection {
        idem_key: "other".into(),
        summary: "POST https://x".into(),
        text: Ok(String::new()),
    })));
    assert_eq!(
        s.notifications().inspection(&key),
        Some(&InspectState::Loading)
    );
    let ins = Inspection {
        idem_key: key.clone(),
        summary: "POST https://hooks.example/ops".into(),
        text: Ok("content-type: application/json\n\n{}".into()),
    };
    s.apply_engine(EngineEvent::Inspected(Box::new(ins.clone())));
    assert_eq!(
        s.notifications().inspection(&key),
        Some(&InspectState::Ready(ins))
    );
    // a queue that was full: the detail says so instead of loading forever
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.view(), &View::Notifications);
    press(&mut s, KeyCode::Enter);
    s.apply_ui(UiEvent::NotSent {
        request: NotifyRequest::Inspect(key.clone()),
        reason: "busy: the notifier's queue is full, try again".into(),
    });
    assert!(matches!(
        s.notifications().inspection(&key),
        Some(InspectState::Failed(r)) if r.starts_with("busy")
    ));
    assert!(s.flash().is_some_and(|f| f.text.starts_with("busy")));
}

#[test]
fn resend_only_failed_or_dead_and_not_readonly() {
    let mut s = state();
    ch(&mut s, '2');
    s.apply_engine(outbox());
    let failed = s.notifications().items()[0].row.idem_key.clone();
    assert_eq!(
        ch(&mut s, 'r'),
        Some(UiAction::Notify(NotifyRequest::Resend(failed.clone())))
    );
    ch(&mut s, 'j');
    assert_eq!(ch(&mut s, 'r'), None, "delivered rows are not resent");
    assert!(s.flash().is_some_and(|f| f.text.contains("is delivered")));
    // Ctrl-R still polls here
    let ctrl_r = KeyEvent::new(KeyCode::Char('r'), KeyModifiers::CONTROL);
    assert_eq!(s.handle_key(ctrl_r), Some(UiAction::PollNow));
    // from the detail of a dead row
    ch(&mut s, 'j');
    let dead = s.notifications().items()[2].row.idem_key.clone();
    press(&mut s, KeyCode::Enter);
    assert_eq!(
        ch(&mut s, 'r'),
        Some(UiAction::Notify(NotifyRequest::Resend(dead)))
    );

    let mut ro = AppState::new(
        &ConsoleOptions {
            readonly: true,
            ..opts()
        },
        T0,
    );
    ch(&mut ro, '2');
    ro.apply_engine(outbox());
    assert_eq!(ch(&mut ro, 'r'), None);
    assert!(ro.flash().is_some_and(|f| f.text.contains("read-only")));
    assert_eq!(ch(&mut ro, 't'), None);
    assert!(ro.picker().is_none());
}

#[test]
fn test_picker_marks_disabled_channels_and_sends() {
    let mut s = state();
    ch(&mut s, '2');
    assert_eq!(ch(&mut s, 't'), None);
    assert!(s.picker().is_none(), "no snapshot yet: nothing to pick");
    s.apply_engine(outbox());
    ch(&mut s, 't');
    let p = s.picker().expect("picker open");
    assert_eq!(p.kind, PickerKind::TestChannel);
    let ids: Vec<&str> = p.items.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["tyk", "webhook:ops", "webhook:gone"]);
    assert!(
        p.items[2].warn
            && p.items[2]
                .note
                .as_deref()
                .is_some_and(|n| n.contains("410"))
    );
    assert_eq!(s.key_view(), ViewKind::Picker);
    // the picker's keys: q does not quit, j moves, Esc closes
    assert_eq!(ch(&mut s, 'q'), None);
    ch(&mut s, 'j');
    ch(&mut s, 'j');
    ch(&mut s, 'j');
    assert_eq!(s.picker().map(|p| p.cursor), Some(2));
    press(&mut s, KeyCode::Esc);
    assert!(s.picker().is_none());
    assert_eq!(s.view(), &View::Notifications);
    ch(&mut s, 't');
    ch(&mut s, 'j');
    assert_eq!(
        press(&mut s, KeyCode::Enter),
        Some(UiAction::Notify(NotifyRequest::Test(
            "webhook:ops".parse().unwrap()
        )))
    );
    assert!(s.picker().is_none());
}

#[test]
fn outbox_counts_fired_marks_and_notices() {
    let mut s = state();
    assert!(s.notifications().counts().is_none());
    s.apply_engine(outbox());
    let c = s.notifications().counts().expect("counts");
    assert_eq!((c.pending + c.inflight, c.failed + c.dead), (1, 2));
    s.apply_engine(EngineEvent::Fired(vec![
        FiredMark {
            quota: id("c"),
            threshold: 80.0,
            at_ms: Some(T0),
        },
        FiredMark {
            quota: id("not-on-the-board"),
            threshold: 95.0,
            at_ms: None,
        },
    ]));
    assert_eq!(s.quotas().fired(&id("c")).map(|m| m.threshold), Some(80.0));
    assert!(s.quotas().fired(&id("not-on-the-board")).is_some());
    // the complete set replaces the previous one
    s.apply_engine(EngineEvent::Fired(vec![FiredMark {
        quota: id("b"),
        threshold: 50.0,
        at_ms: None,
    }]));
    assert!(s.quotas().fired(&id("c")).is_none());
    s.apply_engine(EngineEvent::Notice {
        text: "store error".into(),
        error: true,
    });
    assert_eq!(s.flash().map(|f| f.level), Some(Level::Error));
}

// ---- Templates ----

#[test]
fn templates_view_selects_samples_parts_and_focus() {
    let mut s = state();
    s.resize(80, 24);
    ch(&mut s, '5');
    assert_eq!(s.view(), &View::Templates);
    let t = s.templates();
    assert!(
        t.names().iter().any(|n| n == "quota_threshold"),
        "{:?}",
        t.names()
    );
    assert_eq!(t.selected(), t.names().first().map(String::as_str));
    assert!(t.preview().is_some(), "rendered on entering the view");
    // select quota_threshold
    let pos = t
        .names()
        .iter()
        .position(|n| n == "quota_threshold")
        .unwrap_or_default();
    ch(&mut s, 'g');
    for _ in 0..pos {
        ch(&mut s, 'j');
    }
    let p = s.templates().preview().expect("preview");
    assert_eq!(p.name, "quota_threshold");
    assert_eq!(p.sample_pos, (1, 3));
    assert!(p.subject.as_ref().is_ok_and(|s| s.contains("passed")));
    assert!(p.html.as_ref().is_ok_and(|l| !l.is_empty()));
    // samples: ] [ and the picker
    ch(&mut s, ']');
    assert_eq!(s.templates().preview().map(|p| p.sample_pos), Some((2, 3)));
    ch(&mut s, '[');
    ch(&mut s, '[');
    assert_eq!(s.templates().preview().map(|p| p.sample_pos), Some((3, 3)));
    ch(&mut s, 's');
    assert_eq!(
        s.picker().map(|p| (p.kind, p.cursor)),
        Some((PickerKind::Sample, 2))
    );
    press(&mut s, KeyCode::Up);
    press(&mut s, KeyCode::Enter);
    assert_eq!(s.templates().preview().map(|p| p.sample_pos), Some((2, 3)));
    // parts
    assert_eq!(s.templates().body(), Body::Html);
    ch(&mut s, 'p');
    assert_eq!(s.templates().body(), Body::Text);
    ch(&mut s, 'v');
    assert_eq!(s.templates().body(), Body::Raw);
    ch(&mut s, 'v');
    assert_eq!(s.templates().body(), Body::Html);
    // Tab: j scrolls the preview instead of moving the selection
    press(&mut s, KeyCode::Tab);
    assert_eq!(s.templates().focus(), Focus::Preview);
    ch(&mut s, 'j');
    ch(&mut s, 'j');
    assert_eq!(s.templates().selected(), Some("quota_threshold"));
    assert_eq!(s.templates().scroll(), 2);
    press(&mut s, KeyCode::End);
    let len = s
        .templates()
        .preview()
        .map_or(0, |p| p.body_len(Body::Html));
    let rows = super::super::layout::templates_geometry(&s).body_rows;
    assert_eq!(s.templates().scroll(), len - rows);
    assert!(len > rows + 2, "{len} lines in {rows} rows");
    press(&mut s, KeyCode::PageUp);
    assert_eq!(s.templates().scroll(), (len - rows).saturating_sub(rows));
    press(&mut s, KeyCode::Esc);
    assert_eq!(s.templates().focus(), Focus::List);
    // o hands the HTML to the loop
    match ch(&mut s, 'o') {
        Some(UiAction::OpenHtml { name, html }) => {
            assert_eq!(name, "quota_threshold");
            assert!(html.contains("<html"));
        }
        other => panic!("expected OpenHtml, got {other:?}"),
    }
    s.apply_ui(UiEvent::Opened(
        Err("cannot run xdg-open: not found".into()),
    ));
    assert_eq!(s.flash().map(|f| f.level), Some(Level::Error));
}

#[test]
fn templates_reload_when_files_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let user = crate::templates::user_dir(dir.path());
    std::fs::create_dir_all(&user).expect("mkdir");
    let mut s = AppState::new(
        &ConsoleOptions {
            config_dir: Some(dir.path().to_path_buf()),
            ..opts()
        },
        T0,
    );
    s.resize(100, 30);
    // not loaded until the view opens: a change before that is nothing to do
    let changed = Changed {
        names: ["test".to_string()].into(),
        all: false,
    };
    s.apply_ui(UiEvent::TemplatesChanged(changed.clone()));
    assert!(s.templates().names().is_empty());
    ch(&mut s, '5');
    let pos = s
        .templates()
        .names()
        .iter()
        .position(|n| n == "test")
        .expect("the test template");
    ch(&mut s, 'g');
    for _ in 0..pos {
        ch(&mut s, 'j');
    }
    let before = s.templates().preview().expect("preview").subject.clone();
    std::fs::write(user.join("test.subject"), "Edited {{ nope }}").expect("write");
    // nothing changes until the watcher reports
    assert_eq!(
        s.templates().preview().map(|p| p.subject.clone()),
        Some(before)
    );
    s.apply_ui(UiEvent::TemplatesChanged(changed));
    let p = s.templates().preview().expect("preview");
    let err = p.subject.as_ref().expect_err("undefined value");
    assert!(err.contains("test.subject:1"), "{err}");
    assert!(p.text.is_ok(), "the other parts still render");
    assert!(s.flash().is_some_and(|f| f.text.contains("reloaded test")));
    assert!(s.templates().overridden(pos));
}

#[test]
fn new_keys_are_in_the_help_of_their_views() {
    for (view, key) in [
        (ViewKind::Notifications, "t"),
        (ViewKind::Notification, "r"),
        (ViewKind::Templates, "o"),
        (ViewKind::Templates, "Tab"),
        (ViewKind::Picker, "Enter"),
    ] {
        assert!(
            keymap::KEYMAP
                .iter()
                .any(|b| b.applies_to(view) && b.keys.iter().any(|k| k.label() == key)),
            "{key} in {view:?}"
        );
    }
}
