//! Colour themes: flat TOML `key = "colour"` tables (television style).
//!
//! Builtin themes are embedded from `themes/*.toml`. A user theme `<config_dir>/themes/NAME.toml`
//! takes precedence over a builtin of the same name and may start from another theme with
//! `inherits = "default"`, overriding only some keys. Without `inherits` a theme must set every
//! key, so a theme file cannot silently fall back to unreadable colours.
//!
//! A colour is a name (`black`, `red`, …, `dark_gray`, `light_red`, …, `white`, `reset` = the
//! terminal's own colour), `"#rrggbb"`, or an ANSI index `0`–`255` (integer or string).

use std::borrow::Cow;
use std::fmt;
use std::path::Path;

use ratatui::style::Color;
use toml::de::{DeTable, DeValue};

use crate::config::{Problem, is_file_stem, line_col};

macro_rules! theme {
    ($( $(#[doc = $doc:literal])+ $key:ident, )+) => {
        /// A resolved theme: one colour per key of `themes/default.toml`.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct Theme {
            /// The name the theme was loaded by.
            pub name: String,
            $( $(#[doc = $doc])+ pub $key: Color, )+
        }

        impl Theme {
            /// Every colour key, in struct (and `themes/default.toml`) order.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($key)),+];

            /// The colour of `key`, for code that is driven by key names (help, previews).
            pub fn color(&self, key: &str) -> Option<Color> {
                match key {
                    $( stringify!($key) => Some(self.$key), )+
                    _ => None,
                }
            }

            fn color_mut(&mut self, key: &str) -> Option<&mut Color> {
                match key {
                    $( stringify!($key) => Some(&mut self.$key), )+
                    _ => None,
                }
            }

            fn uniform(name: String, color: Color) -> Theme {
                Theme { name, $( $key: color, )+ }
            }
        }
    };
}

theme! {
    /// Screen background.
    background,
    /// Ordinary text.
    foreground,
    /// Secondary text: units, timestamps, placeholders.
    muted,
    /// Pane borders.
    border,
    /// Border of the focused pane.
    border_focused,
    /// Pane titles (view, count, filter).
    title,
    /// Header bar values.
    header_fg,
    /// Header bar background.
    header_bg,
    /// Header bar labels.
    header_label,
    /// "DEMO" badge text.
    demo_badge_fg,
    /// "DEMO" badge background.
    demo_badge_bg,
    /// Table column headings.
    table_header,
    /// Selected row text.
    selection_fg,
    /// Selected row background.
    selection_bg,
    /// Quota below the warn threshold.
    band_ok,
    /// Quota at or above warn.
    band_warn,
    /// Quota at or above critical.
    band_critical,
    /// Quota at 100 %.
    band_exhausted,
    /// Unlimited quota (never monitored).
    band_unlimited,
    /// Inactive keys, stale rows.
    inactive,
    /// Filled part of a gauge.
    bar_filled,
    /// Empty part of a gauge.
    bar_empty,
    /// Usage rose since the previous sweep.
    delta_up,
    /// Usage fell since the previous sweep.
    delta_down,
    /// Error flash text.
    error_fg,
    /// Error flash background.
    error_bg,
    /// Warnings.
    warning_fg,
    /// Informational messages.
    info,
    /// Key names in hints and help.
    key_hint,
    /// Filter and command prompt.
    filter,
    /// Usage history line.
    chart_line,
    /// Threshold lines on charts.
    chart_threshold,
    /// URLs.
    link,
}

const BUILTIN: [(&str, &str); 3] = [
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

const BUILTIN_NAMES: [&str; 3] = [BUILTIN[0].0, BUILTIN[1].0, BUILTIN[2].0];

impl Theme {
    /// Every colour key, in `themes/default.toml` order.
    pub fn keys() -> &'static [&'static str] {
        Self::KEYS
    }

    /// Names of the embedded themes.
    pub fn builtin_names() -> &'static [&'static str] {
        &BUILTIN_NAMES
    }

    /// An embedded theme; `None` for an unknown name.
    pub fn builtin(name: &str) -> Option<Theme> {
        Self::resolve(name, None, &mut Vec::new()).ok()
    }

    /// `user_dir/NAME.toml` if it exists (normally `<config_dir>/themes`), else the builtin
    /// theme. Errors name the file, the key and the line.
    pub fn load(name: &str, user_dir: Option<&Path>) -> Result<Theme, ThemeError> {
        Self::resolve(name, user_dir, &mut Vec::new())
    }

    /// `chain` holds the files already being resolved, to report inheritance cycles.
    fn resolve(
        name: &str,
        user_dir: Option<&Path>,
        chain: &mut Vec<String>,
    ) -> Result<Theme, ThemeError> {
        if !is_file_stem(name) {
            return Err(ThemeError::single(
                "theme",
                format!("invalid theme name {name:?} (letters, digits, - and _ only)"),
            ));
        }
        let (origin, text) = Self::source(name, user_dir)?;
        if chain.contains(&origin) {
            // The last file in the chain is the one whose `inherits` closes the cycle.
            let culprit = chain.last().cloned().unwrap_or_default();
            chain.push(origin);
            let mut err = ThemeError::single(culprit, format!("cycle: {}", chain.join(" → ")));
            if let Some(p) = err.problems.first_mut() {
                p.key = Some("inherits".to_owned());
            }
            err.cycle = true;
            return Err(err);
        }
        let file = parse_file(&text, &origin)?;
        chain.push(origin.clone());

        let mut theme = match &file.inherits {
            Some((parent, at)) => {
                // A user theme that inherits its own name extends the builtin one.
                let parent_dir = if parent.as_str() == name {
                    None
                } else {
                    user_dir
                };
                Self::resolve(parent, parent_dir, chain).map_err(|e| {
                    e.context(
                        &origin,
                        *at,
                        format!("while loading the parent theme {parent:?}"),
                    )
                })?
            }
            None => {
                let missing: Vec<&str> = Self::KEYS
                    .iter()
                    .copied()
                    .filter(|k| !file.colours.iter().any(|(set, _)| set == k))
                    .collect();
                if !missing.is_empty() {
                    return Err(ThemeError::single(
                        origin,
                        format!(
                            "missing keys: {} (set them, or add inherits = \"default\" to start from the default theme)",
                            missing.join(", ")
                        ),
                    ));
                }
                Theme::uniform(String::new(), Color::Reset)
            }
        };
        for (key, color) in file.colours {
            if let Some(slot) = theme.color_mut(key) {
                *slot = color;
            }
        }
        theme.name = name.to_owned();
        Ok(theme)
    }

    fn source(
        name: &str,
        user_dir: Option<&Path>,
    ) -> Result<(String, Cow<'static, str>), ThemeError> {
        if let Some(dir) = user_dir {
            let path = dir.join(format!("{name}.toml"));
            if path.is_file() {
                let origin = path.display().to_string();
                return match std::fs::read_to_string(&path) {
                    Ok(text) => Ok((origin, Cow::Owned(text))),
                    Err(e) => Err(ThemeError::single(
                        origin,
                        format!("cannot read theme: {e}"),
                    )),
                };
            }
        }
        if let Some((_, text)) = BUILTIN.iter().find(|(n, _)| *n == name) {
            return Ok((
                format!("themes/{name}.toml (builtin)"),
                Cow::Borrowed(*text),
            ));
        }
        let origin = match user_dir {
            Some(dir) => dir.join(format!("{name}.toml")).display().to_string(),
            None => "theme".to_owned(),
        };
        Err(ThemeError::single(
            origin,
            format!(
                "unknown theme {name:?} (builtin: {}; or create this file)",
                BUILTIN_NAMES.join(", ")
            ),
        ))
    }
}

impl Default for Theme {
    fn default() -> Self {
        // The builtin is covered by tests; the fallback only avoids a panic path.
        Theme::builtin("default")
            .unwrap_or_else(|| Theme::uniform("default".to_owned(), Color::Reset))
    }
}

/// Parses a colour: a name, `#rrggbb`, or an ANSI index `0`–`255`.
pub fn parse_color(text: &str) -> Option<Color> {
    let s = text.trim();
    if let Some(hex) = s.strip_prefix('#') {
        if hex.len() != 6 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let channel = |i: usize| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok();
        return Some(Color::Rgb(channel(0)?, channel(2)?, channel(4)?));
    }
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u8>().ok().map(Color::Indexed);
    }
    let name = s
        .to_ascii_lowercase()
        .replace(['-', ' '], "_")
        .replace("grey", "gray");
    Some(match name.as_str() {
        "reset" | "default" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" => Color::Gray,
        "dark_gray" => Color::DarkGray,
        "light_red" => Color::LightRed,
        "light_green" => Color::LightGreen,
        "light_yellow" => Color::LightYellow,
        "light_blue" => Color::LightBlue,
        "light_magenta" => Color::LightMagenta,
        "light_cyan" => Color::LightCyan,
        "white" => Color::White,
        _ => return None,
    })
}

const COLOUR_HINT: &str = "(use a name such as dark_gray or light_red, \"#rrggbb\", or 0-255)";

struct ThemeFile {
    /// Parent name and where `inherits` is written.
    inherits: Option<(String, (usize, usize))>,
    colours: Vec<(&'static str, Color)>,
}

fn parse_file(text: &str, origin: &str) -> Result<ThemeFile, ThemeError> {
    let at = |span: std::ops::Range<usize>, key: Option<&str>, message: String| Problem {
        origin: origin.to_owned(),
        line_col: Some(line_col(text, span.start)),
        key: key.map(str::to_owned),
        message,
    };
    let doc = DeTable::parse(text).map_err(|e| ThemeError {
        problems: vec![Problem {
            origin: origin.to_owned(),
            line_col: e.span().map(|s| line_col(text, s.start)),
            key: None,
            message: format!("invalid TOML: {}", e.message()),
        }],
        has_context: false,
        cycle: false,
    })?;

    let mut entries: Vec<_> = doc.get_ref().iter().collect();
    entries.sort_by_key(|(k, _)| k.span().start);
    let mut file = ThemeFile {
        inherits: None,
        colours: Vec::new(),
    };
    let mut problems = Vec::new();
    for (k, v) in entries {
        let key: &str = k.get_ref();
        if key == "inherits" {
            match v.get_ref() {
                DeValue::String(s) if is_file_stem(s) => {
                    file.inherits = Some((s.to_string(), line_col(text, k.span().start)));
                }
                _ => problems.push(at(
                    v.span(),
                    Some(key),
                    "must be a theme name such as \"default\"".to_owned(),
                )),
            }
            continue;
        }
        let Some(slot) = Theme::KEYS.iter().copied().find(|known| *known == key) else {
            let hint = suggest(key)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            problems.push(at(k.span(), Some(key), format!("unknown theme key{hint}")));
            continue;
        };
        let color = match v.get_ref() {
            DeValue::String(s) => {
                parse_color(s).ok_or_else(|| format!("invalid colour {s:?} {COLOUR_HINT}"))
            }
            DeValue::Integer(i) => u8::from_str_radix(i.as_str(), i.radix())
                .map(Color::Indexed)
                .map_err(|_| format!("invalid colour index {i} {COLOUR_HINT}")),
            other => Err(format!(
                "expected a colour, found {} {COLOUR_HINT}",
                other.type_str()
            )),
        };
        match color {
            Ok(c) => file.colours.push((slot, c)),
            Err(message) => problems.push(at(v.span(), Some(key), message)),
        }
    }
    if problems.is_empty() {
        Ok(file)
    } else {
        Err(ThemeError {
            problems,
            has_context: false,
            cycle: false,
        })
    }
}

/// The closest key within an edit distance of 3, for typos.
fn suggest(key: &str) -> Option<&'static str> {
    fn distance(a: &str, b: &str) -> usize {
        let b: Vec<char> = b.chars().collect();
        let mut row: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.chars().enumerate() {
            let mut diag = row[0];
            row[0] = i + 1;
            for (j, cb) in b.iter().enumerate() {
                let next = (diag + usize::from(ca != *cb))
                    .min(row[j] + 1)
                    .min(row[j + 1] + 1);
                diag = row[j + 1];
                row[j + 1] = next;
            }
        }
        row[b.len()]
    }
    Theme::KEYS
        .iter()
        .map(|k| (distance(key, k), *k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

/// A theme could not be loaded. `Display` prints one `file:LINE:COL: key: message` per problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThemeError {
    problems: Vec<Problem>,
    /// Where the failing parent was requested from is already reported.
    has_context: bool,
    /// An inheritance cycle; its only problem still lacks the line of `inherits`.
    cycle: bool,
}

impl ThemeError {
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    fn single(origin: impl Into<String>, message: String) -> Self {
        ThemeError {
            problems: vec![Problem {
                origin: origin.into(),
                line_col: None,
                key: None,
                message,
            }],
            has_context: false,
            cycle: false,
        }
    }

    /// Adds where a failing parent theme was requested from (once: the innermost request).
    fn context(mut self, origin: &str, line_col: (usize, usize), message: String) -> Self {
        if self.cycle {
            // The cycle message already names the files; it only needs this line.
            self.cycle = false;
            self.has_context = true;
            if let Some(p) = self.problems.first_mut() {
                p.line_col = Some(line_col);
            }
            return self;
        }
        if self.has_context {
            return self;
        }
        self.has_context = true;
        self.problems.push(Problem {
            origin: origin.to_owned(),
            line_col: Some(line_col),
            key: Some("inherits".to_owned()),
            message,
        });
        self
    }
}

impl fmt::Display for ThemeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::config::write_problems(&self.problems, f)
    }
}

impl std::error::Error for ThemeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours() {
        assert_eq!(parse_color("#1e90ff"), Some(Color::Rgb(0x1e, 0x90, 0xff)));
        assert_eq!(parse_color("dark-grey"), Some(Color::DarkGray));
        assert_eq!(parse_color("Light Red"), Some(Color::LightRed));
        assert_eq!(parse_color("231"), Some(Color::Indexed(231)));
        assert_eq!(parse_color("reset"), Some(Color::Reset));
        for bad in ["", "#12345", "#12345g", "256", "blurple", "#ééé"] {
            assert_eq!(parse_color(bad), None, "{bad}");
        }
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("boder"), Some("border"));
        assert_eq!(suggest("completely_different"), None);
    }
}
