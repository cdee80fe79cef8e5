//! Compact formatting for narrow cells: durations, counts, rates, UTC times.

use std::time::Duration;

/// "45s", "12m", "3h05m", "2d04h"; negative durations show as "0s".
pub fn duration(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d{:02}h", s / 86400, s % 86400 / 3600),
    }
}

/// How long a sweep took: "120ms", "1.2s", then as `duration`.
pub fn elapsed(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 10_000 {
        format!("{}.{}s", ms / 1000, ms % 1000 / 100)
    } else {
        duration(d.as_secs() as i64)
    }
}

/// A count in at most five characters: "850", "1.2k", "123k", "3.4M", "12G". Truncates rather
/// than rounds, so a value never reads as more than it is (99.9 % of 10k is not "10.0k").
pub fn count(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "" };
    let a = n.unsigned_abs();
    let body = match a {
        0..1_000 => a.to_string(),
        1_000..10_000 => format!("{}.{}k", a / 1_000, a % 1_000 / 100),
        10_000..1_000_000 => format!("{}k", a / 1_000),
        1_000_000..10_000_000 => format!("{}.{}M", a / 1_000_000, a % 1_000_000 / 100_000),
        10_000_000..1_000_000_000 => format!("{}M", a / 1_000_000),
        1_000_000_000..10_000_000_000 => {
            format!("{}.{}G", a / 1_000_000_000, a % 1_000_000_000 / 100_000_000)
        }
        _ => format!("{}G", a / 1_000_000_000),
    };
    format!("{sign}{body}")
}

/// The full number when it fits `width`, else the compact form.
pub fn count_fit(n: i64, width: usize) -> String {
    let full = n.to_string();
    if full.len() <= width { full } else { count(n) }
}

/// Requests per minute: "0.5", "12", "1.2k".
pub fn rate(per_min: f64) -> String {
    let r = if per_min.is_finite() {
        per_min.max(0.0)
    } else {
        0.0
    };
    if r == 0.0 {
        "0".to_string()
    } else if r < 10.0 {
        format!("{r:.1}")
    } else if r < 1000.0 {
        format!("{r:.0}")
    } else {
        count(r as i64)
    }
}

/// Usage percentage, floored so that 99.6 % does not read as 100 %.
pub fn pct(p: f64) -> String {
    format!("{}%", p.clamp(0.0, 999.0).floor() as i64)
}

/// A threshold as written in config: "80%", "92.5%".
pub fn threshold(t: f64) -> String {
    if t.fract() == 0.0 {
        format!("{t:.0}%")
    } else {
        format!("{t}%")
    }
}

/// Unix seconds as "2025-03-01 11:00:00Z".
pub fn utc(unix_secs: i64) -> String {
    crate::timefmt::format_utc(unix_secs, ' ')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(-5), "0s");
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(12 * 60 + 59), "12m");
        assert_eq!(duration(3 * 3600 + 5 * 60), "3h05m");
        assert_eq!(duration(2 * 86400 + 4 * 3600 + 7), "2d04h");
        assert_eq!(elapsed(Duration::from_millis(120)), "120ms");
        assert_eq!(elapsed(Duration::from_millis(1234)), "1.2s");
    }

    #[test]
    fn counts_and_rates() {
        assert_eq!(count(850), "850");
        assert_eq!(count(1_250), "1.2k");
        assert_eq!(count(9_999), "9.9k");
        assert_eq!(count(123_456), "123k");
        assert_eq!(count(3_456_789), "3.4M");
        assert_eq!(count(-1_500), "-1.5k");
        assert_eq!(count_fit(100_000, 6), "100000");
        assert_eq!(count_fit(100_000, 5), "100k");
        assert_eq!(rate(0.0), "0");
        assert_eq!(rate(2.54), "2.5");
        assert_eq!(rate(120.4), "120");
        assert_eq!(rate(1234.0), "1.2k");
        assert_eq!(rate(f64::NAN), "0");
        assert_eq!(pct(99.9), "99%");
        assert_eq!(threshold(80.0), "80%");
        assert_eq!(threshold(92.5), "92.5%");
    }

    #[test]
    fn utc_times() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(1_740_826_800), "2025-03-01 11:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00Z");
    }
}
