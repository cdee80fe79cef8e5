//! Retry schedule and outcome classification (the table below). Pure functions: the caller
//! supplies "now", the number of attempts already made and a [`Jitter`] source.
//!
//! Schedule, per message and measured from the previous failure, ±20 % jitter: immediately,
//! 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, then `dead`. A `Retry-After` (delay-seconds or
//! HTTP-date, clamped to 1 h) lengthens the wait: `max(backoff, Retry-After)`.
//!
//! E-mail follows the same table: SMTP 4yz, connection errors and timeouts retry on the
//! schedule; SMTP 5yz (and provider refusals a sender marks permanent) get the short capped
//! retry of "other 4xx", then `failed`; provider HTTP statuses are classified like webhooks.

use crate::clock::UnixMs;

const SEC: i64 = 1000;
const MIN: i64 = 60 * SEC;
const HOUR: i64 = 60 * MIN;

/// Delay before attempt `n + 1` (index `n` = attempts already made). Attempt 1 is immediate.
pub const SCHEDULE_MS: [i64; 8] = [
    0,
    5 * SEC,
    5 * MIN,
    30 * MIN,
    2 * HOUR,
    5 * HOUR,
    10 * HOUR,
    10 * HOUR,
];

/// Attempts before a retryable failure becomes `dead`.
pub const MAX_ATTEMPTS: u32 = SCHEDULE_MS.len() as u32;

/// Attempts for "other 4xx": the first one plus 3 retries, then `failed`.
pub const CLIENT_ERROR_ATTEMPTS: u32 = 4;

/// Upper bound honoured for a receiver's `Retry-After`.
pub const RETRY_AFTER_MAX_MS: i64 = HOUR;

/// Jitter fraction (±20 %).
pub const JITTER: f64 = 0.2;

/// A source of uniform numbers in `[0, 1)` for the jitter; injected so tests are exact.
pub trait Jitter: Send {
    fn unit(&mut self) -> f64;
}

/// No jitter: every wait is exactly the schedule (returns 0.5, the middle of the range).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoJitter;

impl Jitter for NoJitter {
    fn unit(&mut self) -> f64 {
        0.5
    }
}

/// Jitter from the seeded [`crate::rng::Rng`]: deterministic for a given seed.
#[derive(Debug, Clone)]
pub struct SeededJitter(crate::rng::Rng);

impl SeededJitter {
    pub fn new(seed: u64) -> Self {
        SeededJitter(crate::rng::Rng::new(seed))
    }

    /// Seeded from the wall clock and the process id (production use).
    pub fn from_entropy() -> Self {
        let t = crate::clock::system_now_ms() as u64;
        SeededJitter::new(t ^ (u64::from(std::process::id()) << 32))
    }
}

impl Jitter for SeededJitter {
    fn unit(&mut self) -> f64 {
        self.0.unit()
    }
}

/// The jittered wait after `attempts_made` attempts, or `None` once the schedule is exhausted.
pub fn backoff_ms(attempts_made: u32, jitter: &mut dyn Jitter) -> Option<i64> {
    let base = *SCHEDULE_MS.get(attempts_made as usize)?;
    let u = jitter.unit().clamp(0.0, 1.0);
    let factor = 1.0 - JITTER + 2.0 * JITTER * u;
    Some((base as f64 * factor).round() as i64)
}

/// Parses a `Retry-After` value (RFC 9110 §10.2.3): delay-seconds or an HTTP-date (IMF-fixdate,
/// RFC 850 or asctime). Returns the delay in ms from `now_ms`, clamped to `[0, 1 h]`.
pub fn parse_retry_after(value: &str, now_ms: UnixMs) -> Option<i64> {
    let v = value.trim();
    if v.is_empty() {
        return None;
    }
    let delay = if v.bytes().all(|b| b.is_ascii_digit()) {
        v.parse::<i64>()
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000)
    } else {
        parse_http_date(v)?.saturating_mul(1000) - now_ms
    };
    Some(delay.clamp(0, RETRY_AFTER_MAX_MS))
}

/// An HTTP-date (IMF-fixdate, RFC 850, asctime; `httpdate`) as Unix seconds.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let t = httpdate::parse_http_date(s.trim()).ok()?;
    Some(match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    })
}

/// What one attempt produced, as far as classification cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptResult {
    /// The receiver answered (any status; redirects are never followed).
    Status {
        status: u16,
        /// `Retry-After`, already parsed and clamped (ms).
        retry_after_ms: Option<i64>,
        /// `Location` of a 3xx, for the "update the URL" reason.
        location: Option<String>,
    },
    /// No answer in time.
    Timeout(String),
    /// Connect refused, reset, DNS, TLS.
    Network(String),
    /// Nothing can be sent (a template that fails to render, a bad header, a missing
    /// channel): `failed` at once, with the reason.
    Permanent(String),
    /// An SMTP reply (RFC 5321 §4.2.1): 2yz accepted, 4yz transient, 5yz permanent.
    /// `message` is the server's text, e.g. `5.1.1 user unknown`.
    Smtp { code: u16, message: String },
    /// Accepted by something without a status code (the `file` e-mail backend).
    Accepted,
    /// A failure the sender classified itself (a 200 that rejected every recipient, a
    /// provider error named in the body, a file that could not be written): `transient`
    /// retries on the schedule, else the short capped retry, then `failed`.
    Refused {
        status: Option<u16>,
        transient: bool,
        reason: String,
        retry_after_ms: Option<i64>,
    },
    /// `inner` classified as usual, `detail` (a provider's error text) added to the reason.
    Detailed {
        inner: Box<AttemptResult>,
        detail: String,
    },
}

/// What to do with the row after an attempt. `attempts` is the new total.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// `status`: HTTP status or SMTP reply code; `None` for the `file` backend.
    Delivered { status: Option<u16> },
    Retry {
        attempts: u32,
        next_at: UnixMs,
        status: Option<u16>,
        reason: String,
    },
    Failed {
        attempts: u32,
        status: Option<u16>,
        reason: String,
    },
    Dead {
        attempts: u32,
        status: Option<u16>,
        reason: String,
    },
    /// 410 Gone: disable the channel, fail its pending rows and this one.
    DisableChannel {
        attempts: u32,
        status: u16,
        reason: String,
    },
}

/// The retry table. `prior_attempts` = attempts before this one.
pub fn classify(
    result: &AttemptResult,
    prior_attempts: u32,
    now: UnixMs,
    jitter: &mut dyn Jitter,
) -> Decision {
    classify_with(result, prior_attempts, now, jitter, None)
}

fn classify_with(
    result: &AttemptResult,
    prior_attempts: u32,
    now: UnixMs,
    jitter: &mut dyn Jitter,
    detail: Option<&str>,
) -> Decision {
    let attempts = prior_attempts.saturating_add(1);
    let with_detail = |reason: String| match detail {
        Some(d) if !d.is_empty() => format!("{reason}: {d}"),
        _ => reason,
    };
    let on_schedule =
        |status: Option<u16>, reason: String, retry_after: Option<i64>, jitter: &mut dyn Jitter| {
            let reason = with_detail(reason);
            match backoff_ms(attempts, jitter) {
                Some(wait) => Decision::Retry {
                    attempts,
                    next_at: now + wait.max(retry_after.unwrap_or(0)),
                    status,
                    reason,
                },
                None => Decision::Dead {
                    attempts,
                    status,
                    reason: format!("retry schedule exhausted after {attempts} attempts: {reason}"),
                },
            }
        };
    // "Other 4xx" and SMTP 5yz: a few retries (receivers misconfigure briefly), then failed.
    let capped =
        |status: Option<u16>, reason: String, retry_after: Option<i64>, jitter: &mut dyn Jitter| {
            if attempts < CLIENT_ERROR_ATTEMPTS {
                on_schedule(status, reason, retry_after, jitter)
            } else {
                Decision::Failed {
                    attempts,
                    status,
                    reason: format!("{} ({attempts} attempts)", with_detail(reason)),
                }
            }
        };
    match result {
        AttemptResult::Status {
            status,
            retry_after_ms,
            location,
        } => {
            let s = *status;
            match s {
                200..=299 => Decision::Delivered { status: Some(s) },
                300..=399 => {
                    let to = location
                        .as_deref()
                        .map(|l| format!(" to {l:?}"))
                        .unwrap_or_default();
                    let reason = format!(
                        "HTTP {s}: redirect{to} not followed; update the URL of the channel"
                    );
                    on_schedule(Some(s), reason, *retry_after_ms, jitter)
                }
                410 => Decision::DisableChannel {
                    attempts,
                    status: s,
                    reason: with_detail(
                        "HTTP 410 Gone: the receiver asked to stop; channel disabled".into(),
                    ),
                },
                408 | 429 | 500..=599 => {
                    on_schedule(Some(s), format!("HTTP {s}"), *retry_after_ms, jitter)
                }
                _ => capped(
                    Some(s),
                    format!("HTTP {s}: the receiver rejected the request"),
                    *retry_after_ms,
                    jitter,
                ),
            }
        }
        AttemptResult::Smtp { code, message } => {
            let reason = format!("smtp {code} {}", message.trim())
                .trim_end()
                .to_owned();
            match code {
                200..=299 => Decision::Delivered {
                    status: Some(*code),
                },
                400..=499 => on_schedule(Some(*code), reason, None, jitter),
                // 5yz, and anything outside RFC 5321's ranges.
                _ => capped(Some(*code), reason, None, jitter),
            }
        }
        AttemptResult::Accepted => Decision::Delivered { status: None },
        AttemptResult::Refused {
            status,
            transient: true,
            reason,
            retry_after_ms,
        } => on_schedule(*status, reason.clone(), *retry_after_ms, jitter),
        AttemptResult::Refused {
            status,
            transient: false,
            reason,
            retry_after_ms,
        } => capped(*status, reason.clone(), *retry_after_ms, jitter),
        AttemptResult::Detailed { inner, detail } => {
            classify_with(inner, prior_attempts, now, jitter, Some(detail))
        }
        AttemptResult::Timeout(e) => on_schedule(None, format!("timeout: {e}"), None, jitter),
        AttemptResult::Network(e) => on_schedule(None, format!("network error: {e}"), None, jitter),
        AttemptResult::Permanent(e) => Decision::Failed {
            attempts,
            status: None,
            reason: with_detail(e.clone()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn status(s: u16, ra: Option<i64>) -> AttemptResult {
        AttemptResult::Status {
            status: s,
            retry_after_ms: ra,
            location: None,
        }
    }

    fn smtp(code: u16) -> AttemptResult {
        AttemptResult::Smtp {
            code,
            message: "5.1.1 user unknown".into(),
        }
    }

    fn refused(transient: bool) -> AttemptResult {
        AttemptResult::Refused {
            status: Some(200),
            transient,
            reason: "mandrill rejected u@x.example: hard-bounce".into(),
            retry_after_ms: None,
        }
    }

    fn detailed(inner: AttemptResult) -> AttemptResult {
        AttemptResult::Detailed {
            inner: Box::new(inner),
            detail: "sendgrid: bad from".into(),
        }
    }

    type Want = (&'static str, u32, Option<i64>);

    fn kind(d: &Decision) -> Want {
        match d {
            Decision::Delivered { .. } => ("delivered", 0, None),
            Decision::Retry {
                attempts, next_at, ..
            } => ("retry", *attempts, Some(next_at - NOW)),
            Decision::Failed { attempts, .. } => ("failed", *attempts, None),
            Decision::Dead { attempts, .. } => ("dead", *attempts, None),
            Decision::DisableChannel { attempts, .. } => ("disable", *attempts, None),
        }
    }

    #[test]
    fn classification_table() {
        let net = AttemptResult::Network("connection refused".into());
        let timeout = AttemptResult::Timeout("15s".into());
        let perm = AttemptResult::Permanent("template: unknown field".into());
        #[rustfmt::skip]
        let table: Vec<(AttemptResult, u32, Want)> = vec![
            (status(200, None), 0, ("delivered", 0, None)),
            (status(204, None), 5, ("delivered", 0, None)),
            (status(302, None), 0, ("retry", 1, Some(5 * SEC))),
            (status(301, None), 7, ("dead", 8, None)),
            (timeout.clone(), 0, ("retry", 1, Some(5 * SEC))),
            (timeout, 1, ("retry", 2, Some(5 * MIN))),
            (net.clone(), 2, ("retry", 3, Some(30 * MIN))),
            (net, 7, ("dead", 8, None)),
            (status(408, None), 3, ("retry", 4, Some(2 * HOUR))),
            (status(429, None), 0, ("retry", 1, Some(5 * SEC))),
            (status(429, Some(2 * SEC)), 0, ("retry", 1, Some(5 * SEC))),
            (status(429, Some(20 * SEC)), 0, ("retry", 1, Some(20 * SEC))),
            (status(503, Some(HOUR)), 1, ("retry", 2, Some(HOUR))),
            (status(500, None), 6, ("retry", 7, Some(10 * HOUR))),
            (status(502, None), 7, ("dead", 8, None)),
            (status(410, None), 0, ("disable", 1, None)),
            (status(400, None), 0, ("retry", 1, Some(5 * SEC))),
            (status(404, None), 2, ("retry", 3, Some(30 * MIN))),
            (status(401, None), 3, ("failed", 4, None)),
            (status(100, None), 3, ("failed", 4, None)),
            (perm, 0, ("failed", 1, None)),
            (smtp(250), 0, ("delivered", 0, None)),
            (smtp(451), 0, ("retry", 1, Some(5 * SEC))),
            (smtp(421), 6, ("retry", 7, Some(10 * HOUR))),
            (smtp(454), 7, ("dead", 8, None)),
            (smtp(550), 0, ("retry", 1, Some(5 * SEC))),
            (smtp(553), 3, ("failed", 4, None)),
            (AttemptResult::Accepted, 0, ("delivered", 0, None)),
            (refused(true), 1, ("retry", 2, Some(5 * MIN))),
            (refused(false), 2, ("retry", 3, Some(30 * MIN))),
            (refused(false), 3, ("failed", 4, None)),
            (detailed(status(400, None)), 3, ("failed", 4, None)),
            (detailed(status(503, None)), 0, ("retry", 1, Some(5 * SEC))),
            (detailed(status(410, None)), 0, ("disable", 1, None)),
        ];
        for (result, prior, want) in table {
            let d = classify(&result, prior, NOW, &mut NoJitter);
            assert_eq!(kind(&d), want, "{result:?} after {prior}");
        }
    }

    #[test]
    fn email_reasons_say_what_the_server_said() {
        let reason = |d: Decision| match d {
            Decision::Retry { reason, .. }
            | Decision::Failed { reason, .. }
            | Decision::Dead { reason, .. } => reason,
            other => panic!("{other:?}"),
        };
        let r = reason(classify(&smtp(550), 3, NOW, &mut NoJitter));
        assert_eq!(r, "smtp 550 5.1.1 user unknown (4 attempts)");
        let r = reason(classify(
            &detailed(status(400, None)),
            0,
            NOW,
            &mut NoJitter,
        ));
        assert_eq!(
            r,
            "HTTP 400: the receiver rejected the request: sendgrid: bad from"
        );
        let r = reason(classify(
            &AttemptResult::Network("connection refused to 127.0.0.1:2525".into()),
            0,
            NOW,
            &mut NoJitter,
        ));
        assert_eq!(r, "network error: connection refused to 127.0.0.1:2525");
    }

    #[test]
    fn redirect_reason_says_update_the_url() {
        let r = AttemptResult::Status {
            status: 302,
            retry_after_ms: None,
            location: Some("https://new.example/hook".into()),
        };
        let Decision::Retry { reason, status, .. } = classify(&r, 0, NOW, &mut NoJitter) else {
            panic!("3xx retries");
        };
        assert_eq!(status, Some(302));
        assert!(reason.contains("update the URL"), "{reason}");
        assert!(reason.contains("https://new.example/hook"), "{reason}");
    }

    #[test]
    fn jitter_stays_within_20_percent() {
        let mut j = SeededJitter::new(42);
        let mut seen = std::collections::HashSet::new();
        for n in 1..MAX_ATTEMPTS {
            for _ in 0..200 {
                let base = SCHEDULE_MS[n as usize] as f64;
                let w = backoff_ms(n, &mut j).unwrap() as f64;
                assert!(w >= base * 0.8 - 1.0 && w <= base * 1.2 + 1.0, "{n}: {w}");
                seen.insert(w as i64);
            }
        }
        assert!(seen.len() > 100, "jitter varies");
        assert_eq!(backoff_ms(0, &mut j), Some(0));
        assert_eq!(backoff_ms(MAX_ATTEMPTS, &mut j), None);
        // Same seed, same sequence.
        let (mut a, mut b) = (SeededJitter::new(7), SeededJitter::new(7));
        assert_eq!(backoff_ms(3, &mut a), backoff_ms(3, &mut b));
    }

    #[test]
    fn retry_after_forms() {
        // 1994-11-06T08:49:37Z
        let t = 784_111_777_i64;
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT"), Some(t));
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994"), Some(t));
        assert_eq!(parse_http_date("Sun, 06 Nov 1994 08:49:37 PST"), None);
        assert_eq!(parse_http_date("yesterday"), None);
        let now = t * 1000;
        assert_eq!(parse_retry_after("120", now), Some(120_000));
        assert_eq!(parse_retry_after(" 0 ", now), Some(0));
        assert_eq!(parse_retry_after("999999999999999999999", now), Some(HOUR));
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now),
            Some(30_000)
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(0)
        );
        assert_eq!(
            parse_retry_after("Mon, 07 Nov 1994 08:49:37 GMT", now),
            Some(HOUR)
        );
        assert_eq!(parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2000 00:00:00 GMT"),
            Some(951_782_400)
        );
    }
}
