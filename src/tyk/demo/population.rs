//! The demo population: three organisations, three APIs, a few dozen keys that each show one
//! thing a quota console must handle, plus optional synthetic keys. Deterministic from the seed
//! (times are relative to the start time).

use std::collections::{BTreeMap, HashMap};

use serde_json::{Map, Value};

use super::model::{AccessDefinition, ApiLimit, Monitor, Session};
use super::state::{Pattern, State};
use crate::rng::Rng;
use crate::timefmt::rfc3339_nanos as rfc3339;

/// Acme Payments (the org of the shared fixtures).
pub const ORG_ACME: &str = "5e9d9544a1dcd60001d0ed20";
/// Globex Logistics.
pub const ORG_GLOBEX: &str = "64b7c2e19f3a4d0001a7e5c3";
/// Initech Labs.
pub const ORG_INITECH: &str = "65c0ffee4b1d2a0001f00d42";
/// `(org id, name)`; the Gateway API knows no org names, a UI may show these in demo mode.
pub const ORGS: [(&str, &str); 3] = [
    (ORG_ACME, "Acme Payments"),
    (ORG_GLOBEX, "Globex Logistics"),
    (ORG_INITECH, "Initech Labs"),
];

pub const API_ORDERS: &str = "b84fe1a04e5648927971c0557971565c";
pub const API_PAYMENTS: &str = "3f2a8d1c9e7b4b05a6c4d2e1f0a9b8c7";
pub const API_INVENTORY: &str = "7c1e5a9d3b2f4e6a8d0c1b3e5f7a9c2d";
/// `(api id, name)`.
pub const APIS: [(&str, &str); 3] = [
    (API_ORDERS, "Orders API"),
    (API_PAYMENTS, "Payments API"),
    (API_INVENTORY, "Inventory API"),
];

/// Well-known demo keys (fixed ids, independent of the seed).
pub mod keys {
    /// `portal-key`: the key of `session_v5_8.json` (policy applied, per-API limit mirroring the
    /// top-level quota, trigger limits [90,75,50]); starts at 85 %.
    pub const PORTAL: &str = "5e9d9544a1dcd60001d0ed20a2290376f89846b798b7e5197584ef6d";
    /// `internal-batch`: `quota_max: -1` (unlimited) with trigger limits [80] and two empty
    /// per-API limits (`session_unlimited.json`).
    pub const UNLIMITED: &str = "5e9d9544a1dcd60001d0ed20e7f75f9e03534825b7aef9df749582e5";
    /// Base64 key (`{"org":…,"id":"partner~v2?01","h":"murmur64"}`, contains `+`, `/`, `==`).
    pub const BASE64: &str = "eyJvcmciOiI1ZTlkOTU0NGExZGNkNjAwMDFkMGVkMjAiLCJpZCI6InBhcnRuZXJ+djI/MDEiLCJoIjoibXVybXVyNjQifQ==";
    /// Alias `café-ünïcode`: two per-API limits with their own quotas (scope = API id) and a
    /// top-level quota for the third API.
    pub const PER_API: &str = "5e9d9544a1dcd60001d0ed2060ff87c0deab4a508dd2ac18ccb8b664";
    /// Alias `<b>Bold & Co</b>` (HTML specials), bursty traffic.
    pub const HTML_ALIAS: &str = "5e9d9544a1dcd60001d0ed20b0d1c0a5e2f94c7a9e3b6d8f1a2c4e60";
    /// `checkout-exhaust`: 70 % used, ~5 req/s, exhausts within about 3 minutes at speed 1.
    pub const EXHAUSTING: &str = "5e9d9544a1dcd60001d0ed20c4e5f6a7b8c94d0e8f1a2b3c4d5e6f70";
    /// `ci-smoke-5m`: 200 requests per 300 s window, 1 req/s: exhausts, then renews.
    pub const SHORT_WINDOW: &str = "5e9d9544a1dcd60001d0ed20d15c0ffee0b14a7e9c3d2b1a0f9e8d70";
    /// `legacy-idle`: no traffic, `quota_renews` in the past ("renews on the next request").
    pub const IDLE_PAST_RENEWS: &str = "5e9d9544a1dcd60001d0ed20e1d1e000a1b24c3d8e4f5a6b7c8d9e00";
    /// `nightly-sync`: 96 % used with a past `quota_renews`; its first request (after ~45
    /// simulated seconds) renews the quota lazily.
    pub const WAKING: &str = "5e9d9544a1dcd60001d0ed20f00dbabe12344c5d9e6f7a8b9c0d1e20";
    /// `rate-limit-only`: `quota_max: 0` (no quota enforced) with trigger limits.
    pub const NO_QUOTA: &str = "5e9d9544a1dcd60001d0ed200a0b0c0d0e0f4a1b8c2d3e4f5a6b7c80";
    /// `revoked-partner`: `is_inactive: true`.
    pub const INACTIVE: &str = "5e9d9544a1dcd60001d0ed201bad1dea2c3d4e5f8a9b0c1d2e3f4a50";
    /// `expired-trial`: `expires` three days ago.
    pub const EXPIRED: &str = "5e9d9544a1dcd60001d0ed202e4a1f3b5c7d4e9f8a0b1c2d3e4f5a60";
    /// `globex-mobile`: per-API limit on Orders, empty limit on Inventory.
    pub const GLOBEX_MOBILE: &str = "64b7c2e19f3a4d0001a7e5c35b0b11e5c2d34e7f9a1b3c5d7e9f0a12";
    /// `scanner-fleet`: Globex, 120 requests per 300 s, bursty: short-window renewals.
    pub const GLOBEX_SCANNER: &str = "64b7c2e19f3a4d0001a7e5c37a11ce0fd00d4b2c8e6f4a2b0c9d8e76";
    /// `tps-reports`: Initech, 94 % of a daily quota used, steady traffic.
    pub const INITECH_TPS: &str = "65c0ffee4b1d2a0001f00d4270b5c0de4e2a4f6b8d0c2e4f6a8b0c21";
}

const POLICY_GOLD: &str = "5ead7120575961000181867e";

fn api_name(api_id: &str) -> &'static str {
    APIS.iter()
        .find(|(id, _)| *id == api_id)
        .map_or("", |(_, name)| name)
}

fn meta(pairs: &[(&str, &str)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert((*k).to_string(), Value::String((*v).to_string()));
    }
    Value::Object(m)
}

/// One key being assembled.
struct KeyBuild {
    id: String,
    session: Session,
    counters: HashMap<String, i64>,
    pattern: Pattern,
}

impl KeyBuild {
    /// A key as Tyk stores one created through the API: rate 100/60, ACL entries with empty
    /// limits, no quota yet.
    fn new(id: &str, org: &str, alias: &str, apis: &[&str], now: i64, rng: &mut Rng) -> KeyBuild {
        let created = now - (rng.range(3.0, 400.0) * 86_400.0) as i64;
        let nanos = (rng.next_u64() % 1_000_000_000) as u32;
        let acl: BTreeMap<String, AccessDefinition> = apis
            .iter()
            .map(|a| (a.to_string(), AccessDefinition::new(a, api_name(a))))
            .collect();
        let session = Session {
            allowance: 100.0,
            rate: 100.0,
            per: 60.0,
            date_created: rfc3339(created, nanos),
            access_rights: Some(acl),
            org_id: org.to_string(),
            alias: alias.to_string(),
            last_updated: now - (rng.range(0.5, 72.0) * 3600.0) as i64,
            ..Session::zero()
        };
        KeyBuild {
            id: id.to_string(),
            session,
            counters: HashMap::new(),
            pattern: Pattern::Idle,
        }
    }

    /// Top-level quota: `max` per `window` s, fraction `used` consumed, the window ending after
    /// `left` × window seconds (negative: ended that long ago).
    fn quota(mut self, max: i64, window: i64, used: f64, left: f64, now: i64) -> KeyBuild {
        let s = &mut self.session;
        s.quota_max = max;
        s.quota_renewal_rate = window;
        s.quota_renews = now + (window as f64 * left) as i64;
        if max > 0 {
            let u = ((max as f64) * used).round() as i64;
            s.quota_remaining = (max - u).max(0);
            self.counters.insert(String::new(), u);
        } else {
            s.quota_remaining = 0;
        }
        self
    }

    /// A per-API limit with its own counter (scope = API id, as Tyk sets for policy-less keys).
    fn api_limit(
        mut self,
        api: &str,
        max: i64,
        window: i64,
        used: f64,
        left: f64,
        now: i64,
    ) -> KeyBuild {
        let u = ((max as f64) * used).round() as i64;
        if let Some(access) = self
            .session
            .access_rights
            .as_mut()
            .and_then(|acl| acl.get_mut(api))
        {
            access.limit = ApiLimit {
                rate: self.session.rate,
                per: self.session.per,
                quota_max: max,
                quota_renews: now + (window as f64 * left) as i64,
                quota_remaining: (max - u).max(0),
                quota_renewal_rate: window,
                ..ApiLimit::default()
            };
            access.allowance_scope = api.to_string();
            self.counters.insert(api.to_string(), u);
        }
        self
    }

    /// A policy applied: every ACL limit mirrors the top-level rate and quota (shared counter).
    fn policy(mut self, policy: &str) -> KeyBuild {
        let s = &mut self.session;
        s.apply_policies = Some(vec![policy.to_string()]);
        let limit = ApiLimit {
            rate: s.rate,
            per: s.per,
            quota_max: s.quota_max,
            quota_renews: s.quota_renews,
            quota_remaining: s.quota_remaining,
            quota_renewal_rate: s.quota_renewal_rate,
            ..ApiLimit::default()
        };
        if let Some(acl) = s.access_rights.as_mut() {
            for access in acl.values_mut() {
                access.limit = limit.clone();
                access.allowance_scope.clear();
            }
        }
        self
    }

    fn triggers(mut self, t: &[f64]) -> KeyBuild {
        self.session.monitor = Monitor {
            trigger_limits: Some(t.to_vec()),
        };
        self
    }

    fn meta(mut self, m: Value) -> KeyBuild {
        self.session.meta_data = m;
        self
    }

    fn tags(mut self, t: &[&str]) -> KeyBuild {
        self.session.tags = Some(t.iter().map(|s| s.to_string()).collect());
        self
    }

    fn rate(mut self, rate: f64, per: f64) -> KeyBuild {
        self.session.rate = rate;
        self.session.allowance = rate;
        self.session.per = per;
        self
    }

    fn pattern(mut self, p: Pattern) -> KeyBuild {
        self.pattern = p;
        self
    }

    fn with(mut self, f: impl FnOnce(&mut Session)) -> KeyBuild {
        f(&mut self.session);
        self
    }
}

/// Mean requests per second a pattern produces.
fn mean_rate(p: &Pattern) -> f64 {
    match *p {
        Pattern::Idle => 0.0,
        Pattern::Steady { rate } => rate,
        Pattern::Bursty { base, burst, per_s } => base + burst * (per_s * 17.5).min(1.0),
        Pattern::Waking { period, .. } => 1.0 / period.max(1.0),
    }
}

/// Rounds up to two significant digits (a "nice" quota).
fn nice(x: f64) -> i64 {
    if x <= 100.0 {
        return 100;
    }
    let mag = 10f64.powi(x.log10().floor() as i32 - 1);
    ((x / mag).ceil() * mag) as i64
}

const TRIGGER_SETS: [&[f64]; 5] = [
    &[90.0, 75.0, 50.0],
    &[80.0],
    &[95.0, 80.0],
    &[],
    &[95.0, 80.0, 60.0],
];
const WINDOWS: [i64; 6] = [3600, 86_400, 86_400, 3600, 300, 604_800];
const QUOTAS: [i64; 7] = [100, 500, 1000, 2500, 5000, 10_000, 50_000];
const ALIASES: [&str; 12] = [
    "mobile-app",
    "web-frontend",
    "partner-sync",
    "batch-export",
    "reporting",
    "checkout-svc",
    "search-indexer",
    "ios-client",
    "android-client",
    "data-lake",
    "webhook-relay",
    "kiosk",
];

/// A used fraction drawn so the demo opens with a mix of fresh, ok, 80 %, 95 % and exhausted.
fn used_fraction(rng: &mut Rng) -> f64 {
    let r = rng.unit();
    if r < 0.10 {
        0.0
    } else if r < 0.55 {
        rng.range(0.05, 0.6)
    } else if r < 0.75 {
        rng.range(0.7, 0.86)
    } else if r < 0.92 {
        rng.range(0.88, 0.97)
    } else {
        1.0
    }
}

/// A seeded generic key of `org`.
fn generic_key(
    org: &str,
    apis: &[&str],
    alias: String,
    now: i64,
    rng: &mut Rng,
    active_share: f64,
) -> KeyBuild {
    let id = format!("{org}{}", rng.hex32());
    let n_apis = 1 + rng.below(apis.len().min(2));
    let start = rng.below(apis.len());
    let chosen: Vec<&str> = (0..n_apis)
        .map(|i| apis[(start + i) % apis.len()])
        .collect();
    let window = WINDOWS[rng.below(WINDOWS.len())];
    let max = QUOTAS[rng.below(QUOTAS.len())];
    let used = used_fraction(rng);
    let left = rng.range(0.05, 1.0);
    let mut k =
        KeyBuild::new(&id, org, &alias, &chosen, now, rng).quota(max, window, used, left, now);
    let t = TRIGGER_SETS[rng.below(TRIGGER_SETS.len())];
    if !t.is_empty() {
        k = k.triggers(t);
    }
    if rng.chance(0.5) {
        let dev = rng.hex24();
        k = if rng.chance(0.4) {
            let email = format!("{}@{}.example", alias.replace(' ', "-"), &org[..6]);
            k.meta(meta(&[("tyk_developer_id", &dev), ("email", &email)]))
        } else {
            k.meta(meta(&[("tyk_developer_id", &dev)]))
        };
    }
    if rng.chance(0.3) {
        k = k.tags(&["generated"]);
    }
    // Pace relative to the quota: some keys will run out before their window ends.
    let pace = max as f64 / window as f64 * rng.range(0.3, 2.0);
    let r = rng.unit();
    let pattern = if r >= active_share {
        Pattern::Idle
    } else if r < active_share * 0.7 {
        Pattern::Steady { rate: pace }
    } else {
        Pattern::Bursty {
            base: pace * 0.3,
            burst: pace * 5.0,
            per_s: 0.01,
        }
    };
    k.pattern(pattern)
}

/// Fills `state` with the demo population at wall-clock `now`.
pub fn populate(state: &mut State, seed: u64, extra_keys: usize, now: i64) {
    let mut rng = Rng::new(seed ^ 0x7479_6b77_6174_6368);
    let r = &mut rng;
    let mut built: Vec<KeyBuild> = Vec::with_capacity(40 + extra_keys);

    // --- Acme Payments: the keys that each demonstrate one case -------------------------
    built.push(
        KeyBuild::new(keys::PORTAL, ORG_ACME, "portal-key", &[API_ORDERS], now, r)
            .quota(1000, 3600, 0.85, 0.6, now)
            .policy(POLICY_GOLD)
            .triggers(&[90.0, 75.0, 50.0])
            .meta(meta(&[("tyk_developer_id", "62b3fb9a1d5e4f00017226f5")]))
            .tags(&["edge"])
            .pattern(Pattern::Steady { rate: 0.05 }),
    );
    built.push(
        KeyBuild::new(
            keys::UNLIMITED,
            ORG_ACME,
            "internal-batch",
            &[API_PAYMENTS, API_ORDERS],
            now,
            r,
        )
        .rate(1000.0, 60.0)
        .quota(-1, 3600, 0.0, -0.5, now)
        .triggers(&[80.0])
        .pattern(Pattern::Steady { rate: 1.0 }),
    );
    built.push(
        KeyBuild::new(
            keys::BASE64,
            ORG_ACME,
            "partner-v2",
            &[API_ORDERS, API_PAYMENTS],
            now,
            r,
        )
        .quota(5000, 86_400, 0.78, 0.3, now)
        .triggers(&[95.0, 80.0])
        .meta(meta(&[
            ("tyk_developer_id", "63a1c5e97b2d4f0001a3b4c5"),
            ("email", "integrations@partner.example"),
        ]))
        .tags(&["partner", "b64"])
        .pattern(Pattern::Bursty {
            base: 0.01,
            burst: 2.0,
            per_s: 0.02,
        }),
    );
    built.push(
        KeyBuild::new(
            keys::PER_API,
            ORG_ACME,
            "café-ünïcode",
            &[API_ORDERS, API_PAYMENTS, API_INVENTORY],
            now,
            r,
        )
        .quota(20_000, 86_400, 0.35, 0.5, now)
        .api_limit(API_ORDERS, 2000, 3600, 0.6, 0.7, now)
        .api_limit(API_PAYMENTS, 500, 3600, 0.92, 0.4, now)
        .triggers(&[80.0])
        .meta(meta(&[
            ("tyk_developer_id", "64c2d6f08c3e5a0001b4c5d6"),
            ("developer_email", "zoe.muller@acme.example"),
        ]))
        .pattern(Pattern::Steady { rate: 0.6 }),
    );
    built.push(
        KeyBuild::new(
            keys::HTML_ALIAS,
            ORG_ACME,
            "<b>Bold & Co</b>",
            &[API_ORDERS],
            now,
            r,
        )
        .quota(10_000, 86_400, 0.45, 0.55, now)
        .triggers(&[90.0, 75.0, 50.0])
        .meta(meta(&[("email", "ops@bold-and-co.example")]))
        .tags(&["html<&>"])
        .pattern(Pattern::Bursty {
            base: 0.05,
            burst: 3.0,
            per_s: 0.03,
        }),
    );
    built.push(
        KeyBuild::new(
            keys::EXHAUSTING,
            ORG_ACME,
            "checkout-exhaust",
            &[API_PAYMENTS],
            now,
            r,
        )
        .quota(3000, 86_400, 0.70, 0.8, now)
        .triggers(&[90.0, 75.0, 50.0])
        .tags(&["checkout"])
        .pattern(Pattern::Steady { rate: 5.0 }),
    );
    built.push(
        KeyBuild::new(
            keys::SHORT_WINDOW,
            ORG_ACME,
            "ci-smoke-5m",
            &[API_ORDERS],
            now,
            r,
        )
        .quota(200, 300, 0.2, 0.8, now)
        .triggers(&[80.0])
        .tags(&["ci"])
        .pattern(Pattern::Steady { rate: 1.0 }),
    );
    built.push(
        KeyBuild::new(
            keys::IDLE_PAST_RENEWS,
            ORG_ACME,
            "legacy-idle",
            &[API_ORDERS],
            now,
            r,
        )
        .quota(1000, 3600, 0.4, -0.5, now)
        .triggers(&[90.0, 75.0, 50.0]),
    );
    built.push(
        KeyBuild::new(
            keys::WAKING,
            ORG_ACME,
            "nightly-sync",
            &[API_INVENTORY],
            now,
            r,
        )
        .quota(500, 3600, 0.96, -0.1, now)
        .triggers(&[95.0, 80.0])
        .meta(meta(&[("developer_email", "sync-bot@acme.example")]))
        .pattern(Pattern::Waking {
            first_after: 45.0,
            period: 600.0,
        }),
    );
    built.push(
        KeyBuild::new(
            keys::NO_QUOTA,
            ORG_ACME,
            "rate-limit-only",
            &[API_ORDERS],
            now,
            r,
        )
        .rate(10.0, 1.0)
        .quota(0, 0, 0.0, 0.0, now)
        .triggers(&[80.0])
        .pattern(Pattern::Steady { rate: 0.5 }),
    );
    built.push(
        KeyBuild::new(
            keys::INACTIVE,
            ORG_ACME,
            "revoked-partner",
            &[API_PAYMENTS],
            now,
            r,
        )
        .quota(1000, 86_400, 0.3, 0.5, now)
        .triggers(&[90.0])
        .with(|s| s.is_inactive = true)
        .pattern(Pattern::Steady { rate: 0.5 }),
    );
    built.push(
        KeyBuild::new(
            keys::EXPIRED,
            ORG_ACME,
            "expired-trial",
            &[API_ORDERS],
            now,
            r,
        )
        .quota(100, 86_400, 1.0, -2.0, now)
        .triggers(&[80.0])
        .meta(meta(&[("email", "trial-user@example.com")]))
        .with(|s| s.expires = now - 3 * 86_400)
        .pattern(Pattern::Steady { rate: 0.2 }),
    );

    // --- Globex Logistics ---------------------------------------------------------------
    built.push(
        KeyBuild::new(
            keys::GLOBEX_MOBILE,
            ORG_GLOBEX,
            "globex-mobile",
            &[API_ORDERS, API_INVENTORY],
            now,
            r,
        )
        .quota(5000, 86_400, 0.5, 0.6, now)
        .api_limit(API_ORDERS, 1000, 3600, 0.82, 0.5, now)
        .triggers(&[90.0, 75.0])
        .meta(meta(&[("tyk_developer_id", "65d3e7019d4f6b0001c5d6e7")]))
        .tags(&["mobile", "eu"])
        .pattern(Pattern::Steady { rate: 0.3 }),
    );
    built.push(
        KeyBuild::new(
            keys::GLOBEX_SCANNER,
            ORG_GLOBEX,
            "scanner-fleet",
            &[API_INVENTORY],
            now,
            r,
        )
        .quota(120, 300, 0.5, 0.5, now)
        .triggers(&[95.0, 80.0])
        .pattern(Pattern::Bursty {
            base: 0.2,
            burst: 2.0,
            per_s: 0.03,
        }),
    );
    // --- Initech Labs -------------------------------------------------------------------
    built.push(
        KeyBuild::new(
            keys::INITECH_TPS,
            ORG_INITECH,
            "tps-reports",
            &[API_PAYMENTS],
            now,
            r,
        )
        .quota(100_000, 86_400, 0.94, 0.4, now)
        .triggers(&[95.0, 80.0])
        .meta(meta(&[("email", "bill.lumbergh@initech.example")]))
        .pattern(Pattern::Steady { rate: 1.5 }),
    );

    // --- Seeded generic keys ------------------------------------------------------------
    let org_apis: [(&str, &[&str]); 3] = [
        (ORG_ACME, &[API_ORDERS, API_PAYMENTS, API_INVENTORY]),
        (ORG_GLOBEX, &[API_ORDERS, API_INVENTORY]),
        (ORG_INITECH, &[API_PAYMENTS, API_INVENTORY]),
    ];
    for (o, (org, apis)) in org_apis.iter().enumerate() {
        let count = [6, 8, 7][o];
        for i in 0..count {
            let alias = format!("{}-{}", ALIASES[(i * 5 + o * 3) % ALIASES.len()], i + 1);
            built.push(generic_key(org, apis, alias, now, r, 0.8));
        }
    }
    // An empty-limits key with a policy-free ACL over all Initech APIs, and a key without
    // meta_data / tags (GET returns `{}` / `[]`).
    built.push(
        KeyBuild::new(
            &format!("{ORG_INITECH}{}", r.hex32()),
            ORG_INITECH,
            "swingline",
            &[API_PAYMENTS, API_INVENTORY],
            now,
            r,
        )
        .quota(2500, 3600, 0.81, 0.3, now)
        .triggers(&[80.0])
        .pattern(Pattern::Steady { rate: 0.4 }),
    );

    // --- Synthetic keys (benchmarks) ----------------------------------------------------
    for i in 0..extra_keys {
        let (org, apis) = org_apis[i % org_apis.len()];
        built.push(generic_key(
            org,
            apis,
            format!("synthetic-{}", i + 1),
            now,
            r,
            0.2,
        ));
    }

    // --- Orgs: quotas sized from the traffic of their keys --------------------------------
    let org_specs: [(&str, i64, f64, f64, &[f64]); 3] = [
        (ORG_ACME, 86_400, 0.79, 0.45, &[95.0, 80.0, 60.0]),
        (ORG_GLOBEX, 86_400, 0.40, 0.6, &[90.0, 75.0]),
        (ORG_INITECH, 3600, 0.55, 0.9, &[80.0]),
    ];
    for (org, window, used, left, triggers) in org_specs {
        let traffic: f64 = built
            .iter()
            .filter(|k| k.session.org_id == org && !k.session.is_inactive)
            .map(|k| mean_rate(&k.pattern))
            .sum();
        let max = nice(traffic * window as f64 * 1.5);
        let used_n = ((max as f64) * used).round() as i64;
        let session = Session {
            quota_max: max,
            quota_renews: now + (window as f64 * left) as i64,
            quota_remaining: max - used_n,
            quota_renewal_rate: window,
            org_id: org.to_string(),
            monitor: Monitor {
                trigger_limits: Some(triggers.to_vec()),
            },
            last_updated: now - 86_400,
            ..Session::zero()
        };
        state.insert_org(session, used_n);
    }

    for k in built {
        state.insert_key(k.id, k.session, k.counters, k.pattern);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(seed: u64, extra: usize) -> State {
        let mut st = State::new(Rng::new(seed));
        populate(&mut st, seed, extra, 1_750_000_000);
        st
    }

    #[test]
    fn deterministic_for_a_seed() {
        let a = build(3, 50);
        let b = build(3, 50);
        assert_eq!(a.order, b.order);
        for id in &a.order {
            assert_eq!(a.keys[id].session, b.keys[id].session);
        }
        let c = build(4, 0);
        assert_ne!(a.order[20], c.order[20]);
    }

    #[test]
    fn population_shape() {
        let st = build(1, 0);
        assert!(st.order.len() >= 30, "{}", st.order.len());
        assert_eq!(st.orgs.len(), 3);
        for id in [
            keys::PORTAL,
            keys::BASE64,
            keys::PER_API,
            keys::EXPIRED,
            keys::WAKING,
        ] {
            assert!(st.keys.contains_key(id), "{id}");
        }
        for id in &st.order {
            assert!(id.starts_with("eyJ") || id.len() == 56, "{id}");
        }
        let st = build(1, 1000);
        assert_eq!(st.order.len(), st.keys.len());
        assert!(st.order.len() >= 1030);
    }

    #[test]
    fn nice_numbers() {
        assert_eq!(nice(12.0), 100);
        assert_eq!(nice(1234.0), 1300);
        assert_eq!(nice(98_001.0), 99_000);
    }
}
