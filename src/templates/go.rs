//! A minijinja environment that renders like Go's `html/template` does for Tyk webhook bodies
//! (TykTechnologies/tyk `gateway/event_handler_webhooks.go`): every value is escaped with Go's
//! text-context HTML escaper (even in a JSON body), the final newline is kept, numbers and booleans print as Go
//! prints them, and an unknown field is an error (as it is for Go structs).

use minijinja::value::{Serde, Value, ValueKind};
use minijinja::{AutoEscape, Environment, Error, Output, State};
use serde::Serialize;

use super::go_import;
use super::{ErrorKind, TemplateError};

/// Tyk's `templates/monitor_template.json`, byte for byte (the default quota webhook body).
pub const TYK_MONITOR_TEMPLATE: &str = include_str!("monitor_template.json");

/// The auto-escape mode of this environment.
const GO_HTML: &str = "go-html";

/// Tyk's `EventMessage`, the data of a webhook template: `{{.Type}}`, `{{.Meta.…}}`,
/// `{{.TimeStamp}}`. `Meta` uses Tyk's Go field names (`Message`, `OrgID`, `Key`,
/// `TriggerLimit`, `UsagePercentage`, …).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventMessage {
    #[serde(rename = "Type")]
    pub event_type: String,
    #[serde(rename = "Meta")]
    pub meta: serde_json::Value,
    #[serde(rename = "TimeStamp")]
    pub timestamp: String,
}

/// One compiled webhook template.
pub struct GoTemplate {
    env: Environment<'static>,
    name: String,
}

impl std::fmt::Debug for GoTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoTemplate")
            .field("name", &self.name)
            .finish()
    }
}

impl GoTemplate {
    /// Compiles a template already in minijinja syntax. `name` is how errors name it (a path).
    pub fn new(name: &str, source: &str) -> Result<GoTemplate, TemplateError> {
        let mut env = Environment::new();
        super::configure_common(&mut env);
        // Tyk always uses html/template, whatever the file is called.
        env.set_auto_escape_callback(|_| AutoEscape::Custom(GO_HTML.into()));
        env.set_formatter(go_formatter);
        env.add_template_owned(name.to_string(), source.to_string())
            .map_err(|e| TemplateError::from_minijinja(&e, &Default::default()))?;
        Ok(GoTemplate {
            env,
            name: name.to_string(),
        })
    }

    /// Converts a Go template (Tyk's `template_path` file) and compiles it. Any construct the
    /// converter cannot map is an error listing them all, with lines.
    pub fn from_go(name: &str, go_source: &str) -> Result<GoTemplate, TemplateError> {
        let conv = go_import::convert(go_source);
        if let Some(first) = conv.issues.first() {
            let more = conv.issues.len() - 1;
            let mut msg = first.to_string();
            if more > 0 {
                msg.push_str(&format!(" (and {more} more)"));
            }
            return Err(TemplateError::new(ErrorKind::Convert, msg).at(name, Some(first.line)));
        }
        Self::new(name, &conv.output)
    }

    /// Tyk's default monitor webhook body (`monitor_template.json`).
    pub fn tyk_monitor() -> Result<GoTemplate, TemplateError> {
        Self::from_go("monitor_template.json", TYK_MONITOR_TEMPLATE)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renders with `data` (usually an [`EventMessage`]).
    pub fn render<T: Serialize + ?Sized>(&self, data: &T) -> Result<String, TemplateError> {
        let tmpl = self
            .env
            .get_template(&self.name)
            .map_err(|e| TemplateError::from_minijinja(&e, &Default::default()))?;
        super::budget::render(&tmpl, Value::from(Serde(data)), &Default::default())
    }
}

/// Go `html/template`'s text-context escaper (`htmlEscaper`): only these seven characters are
/// touched; `\`, `/`, tabs, newlines and non-ASCII pass through.
pub fn go_html_escape(s: &str, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    let mut last = 0;
    for (i, ch) in s.char_indices() {
        let rep = match ch {
            '\0' => "\u{FFFD}",
            '"' => "&#34;",
            '\'' => "&#39;",
            '&' => "&amp;",
            '+' => "&#43;",
            '<' => "&lt;",
            '>' => "&gt;",
            _ => continue,
        };
        out.write_str(&s[last..i])?;
        out.write_str(rep)?;
        last = i + ch.len_utf8();
    }
    out.write_str(&s[last..])
}

fn go_formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    match state.auto_escape() {
        AutoEscape::Custom(name) if name == GO_HTML => {
            if value.is_safe() {
                return out
                    .write_str(value.as_str().unwrap_or_default())
                    .map_err(Error::from);
            }
            go_html_escape(&go_print(value), out).map_err(Error::from)
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

/// What Go's `fmt.Sprint` prints for a decoded JSON value.
fn go_print(value: &Value) -> String {
    match value.kind() {
        ValueKind::Bool => if value.is_true() { "true" } else { "false" }.to_string(),
        // html/template skips untyped nil arguments (Go issue 25875): prints nothing.
        ValueKind::None | ValueKind::Undefined => String::new(),
        ValueKind::Number => {
            let text = value.to_string();
            if text.bytes().all(|b| b.is_ascii_digit() || b == b'-') {
                text
            } else {
                f64::try_from(value.clone()).map(go_float).unwrap_or(text)
            }
        }
        _ => value.to_string(),
    }
}

/// Go's `%v` for a float64: shortest digits, `%e` form when the decimal
/// exponent is < -4 or >= 6 (strconv's `'g'` with shortest precision), so `1e6` prints `1e+06`.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        format!("{f}")
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go() {
        assert_eq!(go_float(80.0), "80");
        assert_eq!(go_float(85.5), "85.5");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(123456789.0), "1.23456789e+08");
    }

    #[test]
    fn escaper() {
        let mut s = String::new();
        go_html_escape("a+b<c>&'\"\0\\/é", &mut s).unwrap();
        assert_eq!(s, "a&#43;b&lt;c&gt;&amp;&#39;&#34;\u{FFFD}\\/é");
    }
}
