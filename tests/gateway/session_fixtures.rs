//! Every session shape Tyk has written (TykTechnologies/tyk `user/session.go` across releases), parsed from the exact bytes.
#![allow(clippy::unwrap_used)] // tests and benches may unwrap; the product may not

use tykwatch::quota::{QuotaId, Sample, Scope};
use tykwatch::tyk::session::{Hello, KeyList, SessionState};

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

const KEY: &str = "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d";
const ORDERS: &str = "b84fe1a04e5648927971c0557971565c";

#[test]
fn v5_8_every_field_emitted() {
    let s = SessionState::from_slice(&fixture("session_v5_8.json")).unwrap();
    assert_eq!((s.quota_max, s.quota_remaining), (1000, 150));
    assert_eq!(s.quota_renews, 1740826800);
    assert_eq!(s.quota_renewal_rate, 3600);
    assert_eq!(s.monitor.trigger_limits, vec![90.0, 75.0, 50.0]);
    assert_eq!(s.alias, "portal-key");
    assert_eq!(s.last_updated, 1740823200);
    assert_eq!(
        s.meta_data.map()["tyk_developer_id"],
        "62b3fb9a1d5e4f00017226f5"
    );
    assert_eq!(s.tags, vec!["edge"]);
    assert_eq!(s.apply_policies, vec!["5ead7120575961000181867e"]);
    let samples = Sample::from_key_session(KEY, &s, 0);
    assert_eq!(
        samples.len(),
        2,
        "top-level quota and the Orders per-API limit"
    );
    assert_eq!(samples[0].id, QuotaId::Key(KEY.into()));
    assert_eq!(samples[0].usage_pct(), Some(85.0));
    assert_eq!(samples[1].id, QuotaId::KeyApi(KEY.into(), ORDERS.into()));
    assert_eq!(samples[1].meta.api_name(), "Orders API");
    assert_eq!(samples[1].id.scope(), Scope::Api);
}

#[test]
fn v5_12_omitzero_reads_the_same_quotas() {
    let old = SessionState::from_slice(&fixture("session_v5_8.json")).unwrap();
    let new = SessionState::from_slice(&fixture("session_v5_12.json")).unwrap();
    assert_eq!(old, new, "the two shapes carry the same data");
    assert_eq!(
        Sample::from_key_session(KEY, &old, 7),
        Sample::from_key_session(KEY, &new, 7)
    );
}

#[test]
fn v3_2_0_limit_null() {
    let s = SessionState::from_slice(&fixture("session_v3_2_0_limit_null.json")).unwrap();
    assert!(s.access_rights[ORDERS].limit.is_none());
    assert_eq!((s.quota_max, s.quota_remaining), (5000, 4200));
    assert_eq!(s.monitor.trigger_limits, vec![80.0, 50.0]);
    let samples = Sample::from_key_session("k", &s, 0);
    assert_eq!(samples.len(), 1, "a null limit is not a quota");
    assert_eq!(samples[0].usage_pct(), Some(16.0));
}

#[test]
fn unlimited_key_with_empty_limits_is_never_divided() {
    let s = SessionState::from_slice(&fixture("session_unlimited.json")).unwrap();
    assert_eq!(s.quota_max, -1);
    assert_eq!(s.access_rights.len(), 2);
    let samples = Sample::from_key_session("k", &s, 0);
    assert_eq!(samples.len(), 1, "all-zero limits are empty and ignored");
    assert_eq!(samples[0].usage_pct(), None);
    assert_eq!(samples[0].used(), 0);
}

#[test]
fn org_session_with_null_maps() {
    let s = SessionState::from_slice(&fixture("org_session.json")).unwrap();
    assert!(s.access_rights.is_empty() && s.meta_data.is_empty() && s.tags.is_empty());
    let sample = Sample::from_org_session("5e9d9544a1dcd60001d0ed20", &s, 0);
    assert_eq!(sample.id.scope(), Scope::Org);
    assert_eq!(sample.usage_pct(), Some(88.0));
    assert_eq!(*sample.meta.trigger_limits, [95.0, 80.0, 60.0]);
}

#[test]
fn key_list_hello_and_errors() {
    let l: KeyList = serde_json::from_slice(&fixture("keys_list.json")).unwrap();
    assert_eq!(l.keys.len(), 4);
    assert!(l.keys[2].contains('+') && l.keys[2].contains('/') && l.keys[2].ends_with("=="));
    let h: Hello = serde_json::from_slice(&fixture("hello.json")).unwrap();
    assert_eq!((h.status.as_str(), h.version.as_str()), ("pass", "v5.8.0"));
    assert_eq!(h.details["redis"].status, "pass");
}

#[test]
fn numbers_as_floats_unknown_fields_and_garbage() {
    let s = SessionState::from_slice(
        br#"{"quota_max":100.0,"quota_remaining":25.0,"quota_renews":1.7e9,"future":{"x":[1]},"mcp_access_rights":[]}"#,
    )
    .unwrap();
    assert_eq!(
        (s.quota_max, s.quota_remaining, s.quota_renews),
        (100, 25, 1_700_000_000)
    );
    for bad in [
        &b"{"[..],
        b"[]",
        b"{\"quota_max\":{}}",
        b"null garbage",
        b"\xff\xfe",
    ] {
        assert!(SessionState::from_slice(bad).is_err(), "{bad:?}");
    }
}
