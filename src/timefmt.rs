//! Every timestamp format tykwatch writes, in one place: RFC 3339 (`2025-03-01T11:00:00Z`, the
//! API and template format), Go's `RFC3339Nano` and `time.Time.String()` (what Tyk's own bodies
//! carry), and the console's `2025-03-01 11:00:00Z`; plus the one calendar conversion they all
//! use. HTTP dates are parsed by the `httpdate` crate (`crate::notify::retry`).

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Unix seconds as `YYYY-MM-DD<sep>HH:MM:SSZ` in UTC (`T` gives RFC 3339).
pub fn format_utc(unix_secs: i64, sep: char) -> String {
    let (y, m, d) = civil_from_days(unix_secs.div_euclid(86_400));
    let rem = unix_secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}{sep}{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// (year, month, day) → days since 1970-01-01; the inverse of [`civil_from_days`].
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds as RFC 3339 UTC (`2025-03-01T11:00:00Z`).
pub fn rfc3339(unix: i64) -> String {
    format_utc(unix, 'T')
}

/// RFC 3339 in UTC with Go's `RFC3339Nano` fraction (trailing zeros trimmed, none when 0).
pub fn rfc3339_nanos(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut s = format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        sod / 3600,
        (sod % 3600) / 60,
        sod % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    s.push('Z');
    s
}

/// Go's `time.Time.String()` for a UTC instant: `2006-01-02 15:04:05.999999999 +0000 UTC`.
pub fn go_time_string(ms: i64) -> String {
    let rfc = rfc3339(ms.div_euclid(1000)); // 2006-01-02T15:04:05Z
    let base = rfc.trim_end_matches('Z').replacen('T', " ", 1);
    let frac = ms.rem_euclid(1000);
    let frac = if frac == 0 {
        String::new()
    } else {
        format!(".{frac:03}").trim_end_matches('0').to_owned()
    };
    format!("{base}{frac} +0000 UTC")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_round_trips() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_148), (2025, 3, 1)); // 1740787200 / 86400
        for d in [-719_468, -1, 0, 59, 10_957, 20_148, 2_932_896] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m as i64, dd as i64), d);
        }
    }
}
