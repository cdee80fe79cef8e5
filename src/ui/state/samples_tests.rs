//! Real samples in the Templates view: received events and quota notifications offered after
//! the shipped samples, rendered as the dispatcher renders their e-mail.

use std::path::PathBuf;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::config::EmailBackendConfig;
use crate::notify::email::{EmailSetup, render_event, render_notification};
use crate::notify::feed::{NotificationItem, OutboxSnapshot};
use crate::notify::route::{event_from_row, event_row};
use crate::outbox::{
    Audience, ChannelId, EventPayload, NotificationPayload, OutboxCounts, OutboxRow, OutboxState,
    Source,
};
use crate::store::EventRow;
use crate::templates::Templates;

const T0: i64 = 1_740_823_200_000;
const DASHBOARD: &str = "admin.example.com";
const OPS: &str = "api-ops@example.com";

fn backend() -> EmailBackendConfig {
    EmailBackendConfig {
        dashboard_hostname: DASHBOARD.into(),
        default_from_email: "tyk@example.com".into(),
        ..EmailBackendConfig::default()
    }
}

fn opts() -> ConsoleOptions {
    ConsoleOptions {
        gateway_label: "http://gw:8080".into(),
        global_thresholds: vec![80.0],
        email_from: "Tyk <tyk@example.com>".into(),
        email_to: vec![OPS.into()],
        org_email: Some(EmailSetup {
            backend: backend(),
            email_to: vec![OPS.into()],
            org_email_to: Default::default(),
            template_dir: None,
            mail_dir: PathBuf::from("mail"),
        }),
        ..ConsoleOptions::default()
    }
}

fn press(s: &mut AppState, code: KeyCode) -> Option<UiAction> {
    s.handle_key(KeyEvent::new(code, KeyModifiers::NONE))
}

fn ch(s: &mut AppState, c: char) -> Option<UiAction> {
    press(s, KeyCode::Char(c))
}

/// A body as the intake records it (classified and masked by the real code), received
/// `age_s` seconds before T0.
fn received(id: i64, age_s: i64, body: &str) -> EventRow {
    let ev = crate::intake::classify(body.as_bytes()).unwrap_or_else(|e| panic!("{e:?}"));
    EventRow {
        id,
        received_at: T0 - age_s * 1000,
        kind: ev.kind().as_str().to_string(),
        event: ev.event.clone(),
        org_id: ev.org_id.clone(),
        summary: ev.summary.clone(),
        masked_key: ev.masked_key.clone(),
        payload_json: ev.payload.to_string(),
    }
}

fn key_request(n: u32) -> String {
    format!(
        r#"{{"event":"key_request_event.submitted","data":{{"id":"req{n}","org_id":"acme",
        "apply_policies":["p1"],"approved":false,"date_created":"2025-03-01T09:00:00Z",
        "portal_developer":{{"id":"dev{n}","email":"dev{n}@example.com"}},
        "catalogue_entry":{{"name":"Orders <b>API</b> {n}","version":"v2"}}}}}}"#
    )
}

const API_EVENT: &str =
    r#"{"event":"api_event.created","data":{"api_id":"a1","name":"Orders API","org_id":"acme"}}"#;
const TRIGGER: &str = r#"{"event":"TriggerExceeded","message":"Quota trigger reached","org":"acme","key":"acme0123456789abcdef0123456789","trigger_limit":"80"}"#;

/// Opens the Templates view on `name`.
fn open(s: &mut AppState, name: &str) {
    s.resize(100, 30);
    ch(s, '5');
    let pos = s
        .templates()
        .names()
        .iter()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("no template {name}"));
    press(s, KeyCode::Home);
    for _ in 0..pos {
        ch(s, 'j');
    }
    assert_eq!(s.templates().selected(), Some(name));
}

fn ids(s: &AppState) -> Vec<String> {
    s.templates().samples().into_iter().map(|c| c.id).collect()
}

/// What the dispatcher renders for a recorded event's `email:event-to` row.
fn sent_event(row: &EventRow) -> crate::templates::RenderedEmail {
    let ev = event_from_row(row).expect("routable");
    let planned = event_row(
        &ev,
        ChannelId::Email(Audience::EventTo),
        vec![OPS.into()],
        None,
        None,
    );
    let payload = EventPayload::from_json(&planned.payload_json).expect("payload");
    render_event(
        &Templates::shipped(),
        &backend(),
        &payload,
        &[OPS.into()],
        &planned.idem_key,
    )
    .expect("renders")
    .rendered
}

#[test]
fn a_received_event_is_offered_and_rendered_as_it_would_be_sent() {
    let mut s = AppState::new(&opts(), T0);
    let rows = vec![
        received(1, 600, &key_request(1)),
        received(2, 300, API_EVENT),
        received(3, 180, &key_request(3)),
        received(4, 60, TRIGGER),
    ];
    s.apply_engine(EngineEvent::Received(rows.clone()));
    open(&mut s, "key_request_submitted");
    // the shipped sample first, then the events newest first; not the api event, not the trigger
    assert_eq!(
        ids(&s),
        ["key_request_submitted", "event:3", "event:1"].map(String::from)
    );
    let p = s.templates().preview().expect("preview");
    assert_eq!(p.sample_pos, (1, 3));
    assert!(!p.sample.as_ref().is_some_and(SampleChoice::is_real));

    // the picker lists them with their age, and choosing one renders it
    ch(&mut s, 's');
    let picker = s.picker().expect("picker");
    assert_eq!(picker.items.len(), 3);
    assert_eq!(
        picker.items[1].label.as_deref(),
        Some("event #3 key_request_event.submitted (3m ago)")
    );
    assert_eq!(picker.items[1].id, "event:3");
    press(&mut s, KeyCode::Down);
    press(&mut s, KeyCode::Enter);
    let p = s.templates().preview().expect("preview");
    assert_eq!(p.sample_pos, (2, 3));
    assert_eq!(p.sample.as_ref().map(|c| c.id.as_str()), Some("event:3"));
    let sent = sent_event(&rows[2]);
    assert_eq!(p.subject.as_deref(), Ok(sent.subject.as_str()));
    assert_eq!(p.html_source.as_deref(), Some(sent.html.as_str()));
    assert!(
        sent.subject.contains("dev3@example.com") && sent.html.contains("Orders &lt;b&gt;API"),
        "{sent:?}"
    );
    let text = p.text.as_ref().expect("text").join("\n");
    assert!(
        text.contains("req3") && text.contains("dev3@example.com"),
        "{text}"
    );

    // ] steps on to the older one, and wraps back to the shipped sample
    ch(&mut s, ']');
    assert_eq!(s.templates().sample_id().as_deref(), Some("event:1"));
    ch(&mut s, ']');
    assert_eq!(
        s.templates().sample_id().as_deref(),
        Some("key_request_submitted")
    );

    // the api event is a sample of api_event
    open(&mut s, "api_event");
    assert!(ids(&s).contains(&"event:2".to_string()), "{:?}", ids(&s));
    ch(&mut s, '[');
    let p = s.templates().preview().expect("preview");
    assert_eq!(p.sample.as_ref().map(|c| c.id.as_str()), Some("event:2"));
    assert_eq!(
        p.html_source.as_deref(),
        Some(sent_event(&rows[1]).html.as_str())
    );
}

#[test]
fn real_event_samples_are_capped_and_a_chosen_one_stays() {
    let mut s = AppState::new(&opts(), T0);
    s.apply_engine(EngineEvent::Received(vec![received(
        1,
        900,
        &key_request(1),
    )]));
    open(&mut s, "key_request_submitted");
    ch(&mut s, ']');
    assert_eq!(s.templates().sample_id().as_deref(), Some("event:1"));
    let before = s.templates().preview().expect("preview").subject.clone();
    // newer events, more than are offered; a duplicate of one already held changes nothing
    let newer: Vec<EventRow> = (10..10 + REAL_SAMPLES as i64 + 2)
        .map(|id| received(id, 500 - id, &key_request(id as u32)))
        .collect();
    s.apply_engine(EngineEvent::Received(newer.clone()));
    s.apply_engine(EngineEvent::Received(newer[..2].to_vec()));
    let ids = ids(&s);
    // shipped + the newest REAL_SAMPLES + the chosen one, which newer events pushed out
    assert_eq!(ids.len(), 1 + REAL_SAMPLES + 1, "{ids:?}");
    assert_eq!(ids[1], format!("event:{}", 10 + REAL_SAMPLES as i64 + 1));
    assert_eq!(ids.last().map(String::as_str), Some("event:1"));
    let p = s.templates().preview().expect("preview");
    assert_eq!(p.sample.as_ref().map(|c| c.id.as_str()), Some("event:1"));
    assert_eq!(p.sample_pos, (REAL_SAMPLES + 2, REAL_SAMPLES + 2));
    assert_eq!(p.subject, before);
}

#[test]
fn no_real_samples_leaves_the_shipped_ones() {
    let mut s = AppState::new(&opts(), T0);
    s.apply_engine(EngineEvent::Received(vec![received(4, 60, TRIGGER)]));
    open(&mut s, "quota_threshold");
    assert_eq!(
        ids(&s),
        [
            "quota_threshold",
            "quota_threshold.key",
            "quota_threshold.org"
        ]
        .map(String::from)
    );
    open(&mut s, "key_request_submitted");
    assert_eq!(ids(&s), ["key_request_submitted"].map(String::from));
    assert_eq!(ch(&mut s, ']'), None, "one sample: nothing to step through");
    assert!(
        s.flash()
            .is_some_and(|f| f.text.contains("only one sample"))
    );
}

// ---- quota notifications ----

fn payload(channel: &str, remaining: i64, sequence: i64) -> NotificationPayload {
    NotificationPayload {
        event: "quota.threshold_crossed".into(),
        id: format!("q:key:abc:1740826800:80:{sequence}:{channel}"),
        channel_id: channel.parse().unwrap(),
        scope: "api".into(),
        quota_key: "key:abc".into(),
        org_id: "acme".into(),
        alias: "portal-key".into(),
        key_masked: "5e9d…ef6d".into(),
        key: None,
        api_id: "api1".into(),
        api_name: "Orders".into(),
        threshold: if remaining == 0 { 100.0 } else { 80.0 },
        usage_percentage: 100.0 * (1000 - remaining) as f64 / 1000.0,
        quota_max: 1000,
        quota_remaining: remaining,
        quota_renews: T0 / 1000 + 2100,
        period: 1_740_826_800,
        sequence,
        covered: vec![],
        detected_at_ms: T0 - 60_000,
        tags: vec![],
        recipients: match channel {
            "email:ops" => vec![OPS.into()],
            "email:developer" => vec!["dev@acme.example".into()],
            _ => vec![],
        },
    }
}

fn note(p: NotificationPayload, created_at: i64) -> NotificationItem {
    NotificationItem {
        row: OutboxRow {
            idem_key: p.id.clone(),
            channel_id: p.channel_id.clone(),
            payload_json: String::new(),
            state: OutboxState::Delivered,
            attempts: 1,
            next_attempt_at: created_at,
            last_status: Some(200),
            last_error: None,
            created_at,
            delivered_at: Some(created_at + 500),
            source: Source::Crossing {
                quota_key: p.quota_key.clone(),
                period: p.period,
                threshold: p.threshold,
            },
            sequence: p.sequence,
        },
        scope: p.scope.clone(),
        org_id: p.org_id.clone(),
        alias: p.alias.clone(),
        key_masked: p.key_masked.clone(),
        api_id: p.api_id.clone(),
        usage_percentage: p.usage_percentage,
        event: p.event.clone(),
        payload: Some(p),
    }
}

fn snapshot(items: Vec<NotificationItem>) -> EngineEvent {
    EngineEvent::Outbox(Box::new(OutboxSnapshot {
        items,
        counts: OutboxCounts::default(),
        disabled: vec![],
        channels: vec![
            "tyk".parse().unwrap(),
            "email:ops".parse().unwrap(),
            "email:developer".parse().unwrap(),
        ],
        peers: None,
        at_ms: T0,
    }))
}

#[test]
fn an_outbox_item_becomes_a_quota_sample() {
    let mut s = AppState::new(&opts(), T0);
    let ops = payload("email:ops", 150, 1);
    let mut test = payload("email:ops", 150, 9);
    test.event = "tykwatch.test".into();
    s.apply_engine(snapshot(vec![
        // newest first: an exhausted crossing, then the three rows of an 80 % one
        note(payload("tyk", 0, 2), T0 - 10_000),
        note(test, T0 - 20_000),
        note(payload("tyk", 150, 1), T0 - 120_000),
        note(payload("email:developer", 150, 1), T0 - 120_000),
        note(ops.clone(), T0 - 120_000),
    ]));
    open(&mut s, "quota_threshold");
    // one sample per crossing, the operators' e-mail row; not the test notification
    let real: Vec<SampleChoice> = s
        .templates()
        .samples()
        .into_iter()
        .filter(SampleChoice::is_real)
        .collect();
    assert_eq!(real.len(), 1, "{real:?}");
    assert_eq!(real[0].id, format!("notification:{}", ops.id));
    assert_eq!(real[0].title(T0), "notification portal-key 80% (2m ago)");
    assert_eq!(real[0].detail, "email:ops · 85% used");
    ch(&mut s, '[');
    let p = s.templates().preview().expect("preview");
    assert_eq!(p.sample_pos, (4, 4));
    assert_eq!(p.to, Some(vec![OPS.to_string()]));
    let sent = render_notification(&Templates::shipped(), &backend(), &ops, &ops.id, T0 / 1000)
        .expect("renders")
        .rendered;
    assert_eq!(p.subject.as_deref(), Ok(sent.subject.as_str()));
    assert_eq!(p.html_source.as_deref(), Some(sent.html.as_str()));
    assert!(
        sent.html.contains(DASHBOARD),
        "the dashboard link is the configured one"
    );

    // the developer template renders the developer's row, to the developer
    open(&mut s, "quota_threshold_developer");
    ch(&mut s, '[');
    let p = s.templates().preview().expect("preview");
    assert_eq!(
        p.sample.as_ref().map(|c| c.id.as_str()),
        Some("notification:q:key:abc:1740826800:80:1:email:developer")
    );
    assert_eq!(p.to, Some(vec!["dev@acme.example".to_string()]));

    // the exhausted crossing is a sample of quota_exhausted only (its tyk row: no recipients)
    open(&mut s, "quota_exhausted");
    ch(&mut s, '[');
    let p = s.templates().preview().expect("preview");
    assert_eq!(
        p.sample.as_ref().map(|c| c.id.as_str()),
        Some("notification:q:key:abc:1740826800:80:2:tyk")
    );
    assert_eq!(p.to, None);
    assert!(p.subject.is_ok() && p.html.is_ok(), "{:?}", p.subject);

    // a later snapshot without them: the sample in use stays, nothing else is offered
    s.apply_engine(snapshot(vec![note(payload("tyk", 150, 3), T0 - 5_000)]));
    open(&mut s, "quota_threshold");
    let real: Vec<String> = s
        .templates()
        .samples()
        .into_iter()
        .filter(SampleChoice::is_real)
        .map(|c| c.id)
        .collect();
    assert_eq!(
        real,
        [
            "notification:q:key:abc:1740826800:80:3:tyk".to_string(),
            format!("notification:{}", ops.id)
        ]
    );
    assert_eq!(
        s.templates().sample_id(),
        Some(format!("notification:{}", ops.id))
    );
    s.apply_engine(snapshot(vec![]));
    open(&mut s, "key_request_submitted");
    assert!(s.templates().samples().iter().all(|c| !c.is_real()));
}
