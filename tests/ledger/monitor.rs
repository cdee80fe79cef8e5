//! Monitor semantics (README "Monitors and notifications") as a table: each case feeds a sequence of
//! samples to one `Monitor` and states what each sample must fire.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use std::sync::Arc;

use tykwatch::config::MonitorConfig;
use tykwatch::monitor::{Monitor, MonitorSettings, detect, evaluate_sample};
use tykwatch::outbox::{Crossing, LedgerEntry, LedgerState, quota_key};
use tykwatch::quota::{QuotaId, QuotaMeta, Sample, SessionMeta, mask_key};

const RAW: &str = "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d";
const NOW: i64 = 1_800_000_000; // seconds
const NOW_MS: i64 = NOW * 1000;
const P1: i64 = NOW + 3600;
const P2: i64 = NOW + 7200;

fn key() -> QuotaId {
    QuotaId::Key(Arc::from(RAW))
}
fn api(a: &str) -> QuotaId {
    QuotaId::KeyApi(Arc::from(RAW), Arc::from(a))
}
fn org() -> QuotaId {
    QuotaId::Org(Arc::from("5e9d9544a1dcd60001d0ed20"))
}

fn sample(id: &QuotaId, limits: &[f64], max: i64, remaining: i64, renews: i64) -> Sample {
    let meta = QuotaMeta::from(SessionMeta {
        key: Arc::from(id.key().unwrap_or("")),
        masked: id.key().map(mask_key).unwrap_or_default().into(),
        org_id: "5e9d9544a1dcd60001d0ed20".into(),
        trigger_limits: Arc::new(limits.to_vec()),
        ..SessionMeta::default()
    });
    Sample {
        id: id.clone(),
        meta,
        at_ms: NOW_MS,
        quota_max: max,
        quota_remaining: remaining,
        quota_renews: renews,
        quota_renewal_rate: 3600,
    }
}

fn settings(global: &[f64]) -> MonitorSettings {
    MonitorSettings::new(true, true, true, global)
}

/// `used` of 100 at period `renews`, with the session's `limits`.
fn at(id: &QuotaId, limits: &[f64], used: i64, renews: i64) -> Sample {
    sample(id, limits, 100, 100 - used, renews)
}

type Expect = Option<(f64, &'static [f64])>;

struct Case {
    name: &'static str,
    settings: MonitorSettings,
    steps: Vec<(Sample, Expect)>,
}

fn cases() -> Vec<Case> {
    let k = key();
    let none: &[f64] = &[];
    vec![
        Case {
            name: "one threshold fires once, at usage >= threshold",
            settings: settings(&[80.0]),
            steps: vec![
                (at(&k, none, 79, P1), None),
                (at(&k, none, 80, P1), Some((80.0, &[]))),
                (at(&k, none, 90, P1), None),
                (at(&k, none, 100, P1), None),
            ],
        },
        Case {
            name: "several passed in one sample: one crossing for the highest, lower covered",
            settings: settings(&[50.0, 80.0, 95.0]),
            steps: vec![
                (at(&k, none, 10, P1), None),
                (at(&k, none, 96, P1), Some((95.0, &[50.0, 80.0]))),
                (at(&k, none, 100, P1), None),
            ],
        },
        Case {
            name: "covered thresholds never fire later in the period",
            settings: settings(&[50.0, 80.0, 95.0]),
            steps: vec![
                (at(&k, none, 60, P1), Some((50.0, &[]))),
                (at(&k, none, 96, P1), Some((95.0, &[80.0]))),
                (at(&k, none, 85, P1), None),
            ],
        },
        Case {
            name: "renewal (new quota_renews) re-arms every threshold",
            settings: settings(&[80.0, 95.0]),
            steps: vec![
                (at(&k, none, 96, P1), Some((95.0, &[80.0]))),
                (at(&k, none, 97, P1), None),
                (at(&k, none, 1, P2), None),
                (at(&k, none, 85, P2), Some((80.0, &[]))),
                (at(&k, none, 99, P2), Some((95.0, &[]))),
            ],
        },
        Case {
            name: "quota_max edited mid-period does not re-fire",
            settings: settings(&[80.0, 95.0]),
            steps: vec![
                (sample(&k, none, 100, 15, P1), Some((80.0, &[]))),
                // max raised: 85 of 200 used = 42.5 %
                (sample(&k, none, 200, 115, P1), None),
                (sample(&k, none, 200, 30, P1), None),
                (sample(&k, none, 200, 8, P1), Some((95.0, &[]))),
                // max lowered below what was used: 100 %, everything already fired
                (sample(&k, none, 50, 0, P1), None),
            ],
        },
        Case {
            name: "a period whose quota_renews is in the past fires nothing",
            settings: settings(&[80.0]),
            steps: vec![
                (at(&k, none, 100, NOW - 1), None),
                (at(&k, none, 100, 0), None),
                // renews == now is not in the past (Tyk: fires unless now > renews)
                (at(&k, none, 100, NOW), Some((80.0, &[]))),
            ],
        },
        Case {
            name: "unlimited (-1) and not enforced (0) are never monitored",
            settings: settings(&[1.0, 80.0]),
            steps: vec![
                (sample(&k, none, -1, -1, P1), None),
                (sample(&k, none, -1, 0, P1), None),
                (sample(&k, none, 0, 0, P1), None),
                (sample(&k, none, 0, -5, P1), None),
            ],
        },
        Case {
            name: "per-API limits and the key's own quota are independent",
            settings: settings(&[80.0]),
            steps: vec![
                (at(&k, none, 85, P1), Some((80.0, &[]))),
                (at(&api("a1"), none, 85, P1), Some((80.0, &[]))),
                (at(&api("a2"), none, 90, P1), Some((80.0, &[]))),
                (at(&api("a1"), none, 95, P1), None),
                (at(&k, none, 99, P1), None),
            ],
        },
        Case {
            name: "org quotas fire with the org session's thresholds",
            settings: settings(&[]),
            steps: vec![
                (at(&org(), &[50.0], 49, P1), None),
                (at(&org(), &[50.0], 50, P1), Some((50.0, &[]))),
            ],
        },
        Case {
            name: "monitor_user_keys off: keys and per-API limits silent, orgs fire",
            settings: MonitorSettings::new(true, false, true, &[80.0]),
            steps: vec![
                (at(&k, none, 90, P1), None),
                (at(&api("a1"), none, 90, P1), None),
                (at(&org(), none, 90, P1), Some((80.0, &[]))),
            ],
        },
        Case {
            name: "monitor_org_keys off: orgs silent, keys fire",
            settings: MonitorSettings::new(true, true, false, &[80.0]),
            steps: vec![
                (at(&org(), none, 90, P1), None),
                (at(&k, none, 90, P1), Some((80.0, &[]))),
            ],
        },
        Case {
            name: "enable_trigger_monitors off: nothing fires",
            settings: MonitorSettings::new(false, true, true, &[80.0]),
            steps: vec![
                (at(&k, &[50.0], 100, P1), None),
                (at(&api("a1"), none, 100, P1), None),
                (at(&org(), none, 100, P1), None),
            ],
        },
        Case {
            name: "thresholds = global ∪ the session's trigger_limits",
            settings: settings(&[80.0]),
            steps: vec![
                (at(&k, &[50.0, 90.0], 55, P1), Some((50.0, &[]))),
                (at(&k, &[50.0, 90.0], 85, P1), Some((80.0, &[]))),
                (at(&k, &[50.0, 90.0], 91, P1), Some((90.0, &[]))),
            ],
        },
        Case {
            name: "thresholds given descending, as Tyk's docs require, are handled",
            settings: settings(&[]),
            steps: vec![
                (at(&k, &[90.0, 75.0, 50.0], 80, P1), Some((75.0, &[50.0]))),
                (at(&k, &[90.0, 75.0, 50.0], 95, P1), Some((90.0, &[]))),
            ],
        },
        Case {
            name: "duplicates and invalid session thresholds are ignored",
            settings: settings(&[80.0]),
            steps: vec![
                (
                    at(&k, &[80.0, 0.0, -5.0, 150.0, f64::NAN], 100, P1),
                    Some((80.0, &[])),
                ),
                (at(&k, &[80.0, 0.0, -5.0, 150.0, f64::NAN], 100, P1), None),
            ],
        },
        Case {
            name: "no thresholds at all: nothing fires",
            settings: settings(&[]),
            steps: vec![(at(&k, none, 100, P1), None)],
        },
        Case {
            name: "fractional thresholds compare exactly",
            settings: settings(&[87.5]),
            steps: vec![
                (sample(&k, none, 1000, 126, P1), None), // 87.4 %
                (sample(&k, none, 1000, 125, P1), Some((87.5, &[]))),
            ],
        },
    ]
}

#[test]
fn monitor_semantics_table() {
    for case in cases() {
        let mut m = Monitor::new(case.settings.clone());
        let mut last_seq = 0;
        for (i, (s, expect)) in case.steps.iter().enumerate() {
            let got = m.evaluate(s, NOW_MS);
            assert!(
                got.len() <= 1,
                "{}: step {i}: one crossing per sample",
                case.name
            );
            let got_pair = got.first().map(|c| (c.threshold, c.covered.clone()));
            let want = expect.map(|(t, cov)| (t, cov.to_vec()));
            assert_eq!(got_pair, want, "{}: step {i}", case.name);
            // The pure form agrees with the monitor on the first sample of each case.
            if i == 0 {
                let pure = evaluate_sample(&case.settings, &[], s, NOW_MS)
                    .map(|d| (d.threshold, d.covered));
                assert_eq!(pure, want, "{}: pure form", case.name);
            }
            if let Some(c) = got.first() {
                assert!(
                    c.sequence > last_seq,
                    "{}: sequence is monotonic",
                    case.name
                );
                last_seq = c.sequence;
                assert_eq!(c.period, s.quota_renews);
                assert_eq!(&*c.quota_key, quota_key(&s.id));
                assert_eq!(c.usage_pct, s.usage_pct().unwrap());
                assert_eq!(c.at_ms, NOW_MS);
            }
        }
    }
}

#[test]
fn settings_from_tyk_config_names() {
    let mut c = MonitorConfig {
        global_trigger_limit: 80.0,
        global_trigger_limits: vec![95.0, 80.0, 100.0],
        ..MonitorConfig::default()
    };
    assert_eq!(
        MonitorSettings::from_config(&c).global(),
        &[80.0, 95.0, 100.0]
    );
    c.global_trigger_limit = 0.0; // off, as in tyk.conf
    c.global_trigger_limits.clear();
    let s = MonitorSettings::from_config(&c);
    assert!(s.global().is_empty());
    let meta = QuotaMeta::from(SessionMeta {
        trigger_limits: Arc::new(vec![90.0, 50.0, 90.0]),
        ..SessionMeta::default()
    });
    assert_eq!(s.thresholds_for(&meta), vec![50.0, 90.0]);
}

#[test]
fn detect_is_pure() {
    assert_eq!(detect(&[], 50.0, [80.0, 95.0]), None);
    let d = detect(&[80.0], 100.0, [95.0, 80.0, 50.0, 100.0]).unwrap();
    assert_eq!((d.threshold, d.covered), (100.0, vec![50.0, 95.0]));
    assert_eq!(
        detect(&[50.0, 80.0, 95.0, 100.0], 100.0, [50.0, 80.0, 95.0, 100.0]),
        None
    );
}

fn entry(qk: &str, period: i64, t: f64, state: LedgerState) -> LedgerEntry {
    LedgerEntry {
        quota_key: qk.into(),
        period,
        threshold: t,
        state,
        usage_pct: 96.0,
        fired_at: NOW_MS,
    }
}

#[test]
fn warmed_ledger_prevents_refiring_and_continues_the_sequence() {
    let k = key();
    let qk = quota_key(&k);
    let mut m = Monitor::new(settings(&[80.0, 95.0]));
    m.warm(
        &[
            entry(&qk, P1, 95.0, LedgerState::Fired),
            entry(&qk, P1, 80.0, LedgerState::Covered),
        ],
        41,
    );
    assert!(m.evaluate(&at(&k, &[], 100, P1), NOW_MS).is_empty());
    let c = m.evaluate(&at(&k, &[], 85, P2), NOW_MS);
    assert_eq!(c[0].threshold, 80.0);
    assert_eq!(c[0].sequence, 42);
}

#[test]
fn warm_after_a_quota_was_seen_still_applies() {
    let k = key();
    let mut m = Monitor::new(settings(&[80.0, 95.0]));
    assert_eq!(m.evaluate(&at(&k, &[], 85, P1), NOW_MS).len(), 1);
    m.warm(&[entry(&quota_key(&k), P1, 95.0, LedgerState::Fired)], 0);
    assert!(m.evaluate(&at(&k, &[], 99, P1), NOW_MS).is_empty());
}

#[test]
fn rollback_rearms_what_was_not_stored() {
    let k = key();
    let mut m = Monitor::new(settings(&[80.0, 95.0]));
    let c = m.evaluate(&at(&k, &[], 96, P1), NOW_MS);
    assert_eq!(m.fired(&k), vec![80.0, 95.0]);
    m.rollback(&c);
    assert!(m.fired(&k).is_empty());
    let again = m.evaluate(&at(&k, &[], 96, P1), NOW_MS);
    assert_eq!(
        (again[0].threshold, again[0].covered.clone()),
        (95.0, vec![80.0])
    );
    assert!(again[0].sequence > c[0].sequence);
}

#[test]
fn prune_drops_ended_periods_only() {
    let mut m = Monitor::new(settings(&[80.0]));
    m.evaluate(&at(&key(), &[], 90, P1), NOW_MS);
    m.evaluate(&at(&api("a"), &[], 90, P2), NOW_MS);
    assert_eq!(m.tracked(), 2);
    m.prune((P1 + 1) * 1000);
    assert_eq!(m.tracked(), 1);
    assert_eq!(m.fired(&api("a")), vec![80.0]);
}

#[test]
fn evaluate_all_and_debug_never_show_the_raw_key() {
    let mut m = Monitor::new(settings(&[80.0]));
    let samples = [
        at(&key(), &[], 90, P1),
        at(&api("a"), &[], 10, P1),
        at(&org(), &[], 85, P1),
    ];
    let all: Vec<Crossing> = m.evaluate_all(&samples, NOW_MS);
    assert_eq!(all.len(), 2);
    let dbg = format!("{all:?}");
    assert!(!dbg.contains(RAW) && dbg.contains("5e9d…ef6d"), "{dbg}");
    assert!(!all[0].quota_key.contains(RAW));
}
