//! `${VAR}` expansion on the parsed document's string values.

#[allow(unused_imports)]
use super::*;

/// Expands `${VAR}` in every string value of `table` (not in keys), in place; what cannot be
/// expanded is reported with the value's span and left as written.
pub(super) fn expand_env(
    table: &mut DeTable<'_>,
    env: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<(Range<usize>, String)>,
) {
    pub(super) fn walk(
        value: &mut toml::Spanned<DeValue<'_>>,
        env: &dyn Fn(&str) -> Option<String>,
        errors: &mut Vec<(Range<usize>, String)>,
    ) {
        let span = value.span();
        match value.get_mut() {
            DeValue::String(s) if s.contains('$') => match interpolate(s, &mut |n| env(n)) {
                Ok(expanded) => *s = expanded.into(),
                Err(message) => errors.push((span, message)),
            },
            DeValue::Array(items) => items.iter_mut().for_each(|v| walk(v, env, errors)),
            DeValue::Table(t) => expand_env(t, env, errors),
            _ => {}
        }
    }
    for (_, v) in table.iter_mut() {
        walk(v, env, errors);
    }
}

/// Replaces `${NAME}` with `lookup(NAME)`; `$${` is a literal `${`; a `$` elsewhere is kept.
/// Messages never quote the surrounding text: it may be a secret.
pub(super) fn interpolate(
    raw: &str,
    lookup: &mut dyn FnMut(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(body) = tail.strip_prefix("${") {
            let Some(end) = body.find('}') else {
                return Err("unterminated \"${\" (write \"$${\" for a literal \"${\")".to_owned());
            };
            let name = &body[..end];
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(
                    "invalid variable name in \"${…}\" (letters, digits and _; write \"$${\" for a literal \"${\")"
                        .to_owned(),
                );
            }
            match lookup(name) {
                Some(value) => out.push_str(&value),
                None => return Err(format!("environment variable {name} is not set")),
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}
