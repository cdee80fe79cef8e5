//! Located configuration errors: `path:LINE:COL: dotted.key: message`.

#[allow(unused_imports)]
use super::*;

/// One located problem in a configuration source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File path (or a description of the source).
    pub origin: String,
    /// 1-based line and column (in characters), when known.
    pub line_col: Option<(usize, usize)>,
    /// Dotted key, e.g. `gateway.poll_interval` or `webhooks[1].secret`.
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin)?;
        if let Some((line, col)) = self.line_col {
            write!(f, ":{line}:{col}")?;
        }
        f.write_str(": ")?;
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Configuration could not be read or is invalid. `Display` prints one line per problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub(super) problems: Vec<Problem>,
}

impl ConfigError {
    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    pub(super) fn unlocated(origin: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            problems: vec![Problem {
                origin: origin.into(),
                line_col: None,
                key: None,
                message: message.into(),
            }],
        }
    }
}

/// One located problem per line; shared by config and theme errors.
pub fn write_problems(problems: &[Problem], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    for (i, p) in problems.iter().enumerate() {
        if i > 0 {
            f.write_str("\n")?;
        }
        write!(f, "{p}")?;
    }
    Ok(())
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_problems(&self.problems, f)
    }
}

impl std::error::Error for ConfigError {}

/// 1-based (line, column) of a byte offset; the column counts characters.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    (line, col)
}
