//! Field parsers. Each runs inside `Deserialize` so toml attaches the value's span to its error.

#[allow(unused_imports)]
use super::*;

/// A TOML string (`${VAR}` already expanded by `expand_env`).
pub(super) struct Interp(pub(super) String);

impl<'de> Deserialize<'de> for Interp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, |s| Ok(Interp(s)))
    }
}

/// Validates a string inside the visitor: only errors raised there get the
/// value's own span (an array element's error would otherwise point at the whole array).
pub(super) fn checked_str<'de, D, T>(
    d: D,
    check: impl FnOnce(String) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<F>(F);
    impl<T, F: FnOnce(String) -> Result<T, String>> Visitor<'_> for V<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.0)(v.to_owned()).map_err(E::custom)
        }
    }
    d.deserialize_str(V(check))
}

/// A number (TOML integer or float), validated inside the visitor for the same reason.
pub(super) fn checked_f64<'de, D, T>(
    d: D,
    check: impl FnOnce(f64) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<F>(F);
    impl<T, F: FnOnce(f64) -> Result<T, String>> Visitor<'_> for V<F> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
            (self.0)(v).map_err(E::custom)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            // Thresholds are small; the cast is exact for every sensible value.
            self.visit_f64(v as f64)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            self.visit_f64(v as f64)
        }
    }
    d.deserialize_any(V(check))
}

/// An integer or an (interpolated) string, for durations and sizes.
pub(super) enum IntOrText {
    Int(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for IntOrText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IntOrText;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string such as \"2s\" or an integer")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrText, E> {
                Ok(IntOrText::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrText, E> {
                i64::try_from(v)
                    .map(IntOrText::Int)
                    .map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrText, E> {
                Ok(IntOrText::Text(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

pub(super) const DURATION_HINT: &str = "(use e.g. 500ms, 2s, 5m, 1h)";

/// `500ms`, `2s`, `5m`, `1h`, `1d`, combinations like `1h30m`, or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("invalid duration {text:?} {DURATION_HINT}");
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().map(Duration::from_secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let part = match &rest[..unit_len] {
            "ms" => Some(Duration::from_millis(n)),
            "s" => Some(Duration::from_secs(n)),
            "m" => n.checked_mul(60).map(Duration::from_secs),
            "h" => n.checked_mul(3600).map(Duration::from_secs),
            "d" => n.checked_mul(86_400).map(Duration::from_secs),
            _ => return Err(bad()),
        };
        total = part.and_then(|p| total.checked_add(p)).ok_or_else(bad)?;
        rest = &rest[unit_len..];
    }
    Ok(total)
}

pub(super) fn duration_value(v: IntOrText) -> Result<Duration, String> {
    match v {
        IntOrText::Int(n) => u64::try_from(n)
            .map(Duration::from_secs)
            .map_err(|_| format!("invalid duration {n} {DURATION_HINT}")),
        IntOrText::Text(s) => parse_duration(&s),
    }
}

/// Any duration, `0` included.
pub(super) fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    duration_value(IntOrText::deserialize(d)?).map_err(de::Error::custom)
}

pub(super) fn de_positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let value = duration_value(IntOrText::deserialize(d)?).map_err(de::Error::custom)?;
    if value.is_zero() {
        return Err(de::Error::custom(format!(
            "must be greater than 0 {DURATION_HINT}"
        )));
    }
    Ok(value)
}

pub(super) fn de_opt_positive_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    de_positive_duration(d).map(Some)
}

pub(super) fn de_poll_interval<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    // Below this a large fleet would be hammered with no benefit to the display.
    const MIN: Duration = Duration::from_millis(100);
    let value = duration_value(IntOrText::deserialize(d)?).map_err(de::Error::custom)?;
    if value < MIN {
        return Err(de::Error::custom("must be at least 100ms"));
    }
    Ok(value)
}

/// Bytes: an integer, or `512KiB`, `1MiB`, `1MB`….
pub fn parse_size(text: &str) -> Result<usize, String> {
    let bad = || format!("invalid size {text:?} (use e.g. 1048576, 512KiB, 1MiB)");
    let s = text.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad());
    }
    let n: usize = s[..digits].parse().map_err(|_| bad())?;
    let factor: usize = match s[digits..].trim_start().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1000,
        "kib" => 1 << 10,
        "mb" => 1_000_000,
        "mib" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).ok_or_else(bad)
}

pub(super) fn de_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let value = match IntOrText::deserialize(d)? {
        IntOrText::Int(n) => {
            usize::try_from(n).map_err(|_| de::Error::custom(format!("invalid size {n}")))?
        }
        IntOrText::Text(s) => parse_size(&s).map_err(de::Error::custom)?,
    };
    if value == 0 {
        return Err(de::Error::custom("must be greater than 0"));
    }
    Ok(value)
}

pub(super) fn de_concurrency<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let n = i64::deserialize(d)?;
    if !(1..=256).contains(&n) {
        return Err(de::Error::custom(format!(
            "must be between 1 and 256, got {n}"
        )));
    }
    usize::try_from(n).map_err(de::Error::custom)
}

pub(super) fn de_global_trigger_limit<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    let v = f64::deserialize(d)?;
    if !(0.0..=100.0).contains(&v) {
        return Err(de::Error::custom(format!(
            "must be a percentage from 0 (off) to 100, got {v}"
        )));
    }
    Ok(v)
}

/// One element of `global_trigger_limits`; a newtype so its error points at the element.
pub(super) struct Threshold(f64);

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_f64(d, |v| {
            if v > 0.0 && v <= 100.0 {
                Ok(Threshold(v))
            } else {
                Err(format!(
                    "each threshold must be a percentage above 0 and at most 100, got {v}"
                ))
            }
        })
    }
}

pub(super) fn de_thresholds<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Ok(Vec::<Threshold>::deserialize(d)?
        .into_iter()
        .map(|t| t.0)
        .collect())
}

pub(super) fn de_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Interp::deserialize(d)?.0)
}

pub(super) fn de_opt_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    let s = Interp::deserialize(d)?.0;
    if s.is_empty() {
        return Err(de::Error::custom("empty path (remove the key instead)"));
    }
    Ok(Some(PathBuf::from(s)))
}

/// Checks an absolute http(s) URL: `scheme://host[:port][/path][?query][#fragment]`. The value
/// is not quoted in messages: webhook URLs often embed tokens.
pub fn check_url(url: &str) -> Result<(), String> {
    if !url.contains("://") {
        return Err(
            "invalid URL: expected an absolute URL such as https://host:port/path".to_owned(),
        );
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("invalid URL: contains whitespace".to_owned());
    }
    let parsed = url::Url::parse(url).map_err(|e| match e {
        url::ParseError::EmptyHost => "invalid URL: missing host".to_owned(),
        url::ParseError::InvalidPort => {
            "invalid URL: port must be a number from 1 to 65535".to_owned()
        }
        url::ParseError::InvalidIpv6Address => "invalid URL: bad IPv6 address".to_owned(),
        url::ParseError::InvalidDomainCharacter => "invalid URL: bad character in host".to_owned(),
        other => format!("invalid URL: {other}"),
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("invalid URL: the scheme must be http or https".to_owned());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "invalid URL: credentials in the URL are not supported; use the secret key".to_owned(),
        );
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("invalid URL: missing host".to_owned());
    }
    if parsed.port() == Some(0) {
        return Err("invalid URL: port must be a number from 1 to 65535".to_owned());
    }
    Ok(())
}

pub(super) fn de_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = Interp::deserialize(d)?.0;
    check_url(&s).map_err(de::Error::custom)?;
    Ok(s)
}

pub(super) fn de_opt_url_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = Interp::deserialize(d)?.0;
    if !s.is_empty() {
        check_url(&s).map_err(de::Error::custom)?;
    }
    Ok(s)
}

/// A base URL: validated, trailing `/` removed so clients can append `/tyk/keys`. Empty is an
/// error rather than "demo": an unset `${VAR}` must not silently show fake data.
pub(super) fn de_opt_base_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = Interp::deserialize(d)?.0;
    if s.is_empty() {
        return Err(de::Error::custom(
            "empty URL (remove the key to use the demo gateway)",
        ));
    }
    check_url(&s).map_err(de::Error::custom)?;
    Ok(Some(s.trim_end_matches('/').to_owned()))
}

/// `email_backend.api_base`: empty = the provider's public API.
pub(super) fn de_opt_api_base<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = Interp::deserialize(d)?.0;
    if s.trim().is_empty() {
        return Ok(None);
    }
    check_url(&s).map_err(de::Error::custom)?;
    Ok(Some(s.trim_end_matches('/').to_owned()))
}

pub(super) fn de_whsec<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    let s = Interp::deserialize(d)?.0;
    if !s.is_empty() {
        let body = s.strip_prefix("whsec_").ok_or_else(|| {
            de::Error::custom(
                "webhook secret must start with \"whsec_\" (Standard Webhooks: whsec_ + base64)",
            )
        })?;
        let base64 = !body.is_empty()
            && body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='));
        if !base64 {
            return Err(de::Error::custom(
                "webhook secret must be \"whsec_\" followed by base64",
            ));
        }
    }
    Ok(Secret(s))
}

pub(super) fn de_method<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = Interp::deserialize(d)?.0.to_ascii_uppercase();
    // The methods Tyk's webhook handler honours (it silently sends GET for anything else).
    if ["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(de::Error::custom(format!(
            "unsupported method {s:?} (use GET, POST, PUT, PATCH or DELETE)"
        )))
    }
}

pub(super) fn check_webhook_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid webhook name {s:?} (letters, digits, -, _ and . only)"
        ))
    }
}

pub(super) fn de_webhook_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = Interp::deserialize(d)?.0;
    check_webhook_name(&s).map_err(de::Error::custom)?;
    Ok(s)
}

pub(super) fn de_theme_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = Interp::deserialize(d)?.0;
    if is_file_stem(&s) {
        Ok(s)
    } else {
        Err(de::Error::custom(format!(
            "invalid theme name {s:?} (letters, digits, - and _ only; the file is themes/NAME.toml)"
        )))
    }
}

/// Names that are safe as a file stem (no separators, no `..`).
pub(crate) fn is_file_stem(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

pub(super) fn de_listen<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = Interp::deserialize(d)?.0;
    s.trim().parse::<SocketAddr>().map(Some).map_err(|_| {
        de::Error::custom(format!(
            "invalid listen address {s:?} (use IP:PORT, e.g. 127.0.0.1:8089 or [::1]:8089)"
        ))
    })
}

/// A plain `local@domain` address: the notify module adds display names itself.
/// One address: one `@`, non-empty parts, no spaces, angle brackets or separators (also the
/// rule of the Orgs form).
/// A plain address (`ops@example.com`): valid for lettre's `Address` (RFC 5321 local part and
/// domain), and with nothing that could smuggle a display name, a second address or a header
/// (`<>,;"`, whitespace, control characters).
pub(crate) fn check_email(s: &str) -> Result<(), String> {
    let plain = !s
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | ',' | ';' | '"'));
    if plain && s.parse::<lettre::Address>().is_ok() {
        Ok(())
    } else {
        Err(format!(
            "invalid e-mail address {s:?} (use e.g. ops@example.com)"
        ))
    }
}

pub(super) struct Email(pub(super) String);

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, |s| check_email(&s).map(|()| Email(s)))
    }
}

pub(super) fn de_opt_email_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let s = Interp::deserialize(d)?.0;
    if !s.is_empty() {
        check_email(&s).map_err(de::Error::custom)?;
    }
    Ok(s)
}

pub(super) fn de_emails<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<Email>::deserialize(d)?
        .into_iter()
        .map(|e| e.0)
        .collect())
}

pub(super) fn de_org_emails<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Vec<String>>, D::Error> {
    let raw = BTreeMap::<String, Vec<Email>>::deserialize(d)?;
    Ok(raw
        .into_iter()
        .map(|(org, list)| (org, list.into_iter().map(|e| e.0).collect()))
        .collect())
}

/// Checks an event-name pattern of `routes.events`: event-name characters and the `*` / `?`
/// wildcards (Dashboard events are `<option>_event.<action>`, Portal events `UserRegistered`).
pub fn check_event_pattern(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '*' | '?'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid event pattern {s:?} (event-name characters with * and ? wildcards, e.g. \"key_request_event.*\" or \"*\")"
        ))
    }
}

pub(super) struct EventPattern(pub(super) String);

impl<'de> Deserialize<'de> for EventPattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, |s| check_event_pattern(&s).map(|()| EventPattern(s)))
    }
}

pub(super) fn de_event_patterns<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<EventPattern>::deserialize(d)?
        .into_iter()
        .map(|p| p.0)
        .collect())
}

pub(super) struct OrgId(pub(super) String);

impl<'de> Deserialize<'de> for OrgId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, |s| {
            if s.trim().is_empty() || s.chars().any(char::is_control) {
                Err(format!(
                    "invalid org id {s:?} (an organisation id such as \"5e9d9544a1dcd60001d0ed20\")"
                ))
            } else {
                Ok(OrgId(s))
            }
        })
    }
}

pub(super) fn de_org_ids<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<OrgId>::deserialize(d)?
        .into_iter()
        .map(|o| o.0)
        .collect())
}

/// A `[[webhooks]]` name referenced by a route; whether it exists is a cross-field rule.
pub(super) struct WebhookRef(pub(super) String);

impl<'de> Deserialize<'de> for WebhookRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        checked_str(d, |s| check_webhook_name(&s).map(|()| WebhookRef(s)))
    }
}

pub(super) fn de_webhook_refs<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(Vec::<WebhookRef>::deserialize(d)?
        .into_iter()
        .map(|w| w.0)
        .collect())
}

/// An HTTP header name (RFC 9110 token); validated as a map key so the error points at it.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct HeaderName(pub(super) String);

impl<'de> Deserialize<'de> for HeaderName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let ok = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c));
        if ok {
            Ok(HeaderName(s))
        } else {
            Err(de::Error::custom(format!("invalid header name {s:?}")))
        }
    }
}

pub(super) fn de_header_map<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, Secret>, D::Error> {
    let raw = BTreeMap::<HeaderName, Secret>::deserialize(d)?;
    Ok(raw.into_iter().map(|(k, v)| (k.0, v)).collect())
}

/// A key of `email_backend.settings`; Tyk ignores unknown ones, which hides typos such as
/// `SMTPPasword`, so they are rejected here.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct SettingKey(pub(super) String);

impl<'de> Deserialize<'de> for SettingKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if EmailSettings::KNOWN_KEYS.contains(&s.as_str()) {
            Ok(SettingKey(s))
        } else {
            Err(de::Error::custom(format!(
                "unknown setting {s:?} (Tyk's email_backend settings: {})",
                EmailSettings::KNOWN_KEYS.join(", ")
            )))
        }
    }
}
