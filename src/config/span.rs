//! Locating spans: byte range → dotted key, dotted key → byte range.

#[allow(unused_imports)]
use super::*;

pub(super) enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

pub(super) fn fmt_path(segs: &[Seg<'_>]) -> String {
    let mut out = String::new();
    for seg in segs {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                let bare = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if bare {
                    out.push_str(k);
                } else {
                    out.push_str(&format!("{k:?}"));
                }
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

pub(super) type Root<'i> = toml::Spanned<DeTable<'i>>;

pub(super) struct Located<'a, 'i> {
    pub(super) text: &'a str,
    pub(super) origin: &'a str,
    pub(super) root: &'a Root<'i>,
}

impl Located<'_, '_> {
    pub(super) fn problem(&self, span: Option<Range<usize>>, message: String) -> Problem {
        let key = span.as_ref().and_then(|s| {
            let mut segs = Vec::new();
            path_in_table(self.root.get_ref(), s.start, &mut segs).then(|| fmt_path(&segs))
        });
        Problem {
            origin: self.origin.to_owned(),
            line_col: span.map(|s| line_col(self.text, s.start)),
            key: key.filter(|k| !k.is_empty()),
            message,
        }
    }

    /// A problem at `path` (keys and array indices). The key is always named; the line is the
    /// key's, or when it is absent from the file that of `cause` (the key that requires it),
    /// else that of the nearest enclosing table.
    pub(super) fn problem_at(
        &self,
        path: &[PathItem<'_>],
        cause: &[PathItem<'_>],
        message: String,
    ) -> Problem {
        let segs: Vec<Seg<'_>> = path
            .iter()
            .map(|p| match p {
                PathItem::K(k) => Seg::Key(k),
                PathItem::I(i) => Seg::Index(*i),
            })
            .collect();
        let root = self.root.get_ref();
        let span = match span_of(root, path) {
            Some((span, true)) => Some(span),
            nearest => match span_of(root, cause) {
                Some((span, true)) => Some(span),
                _ => nearest.map(|(span, _)| span),
            },
        };
        Problem {
            origin: self.origin.to_owned(),
            line_col: span.map(|s| line_col(self.text, s.start)),
            key: Some(fmt_path(&segs)),
            message,
        }
    }
}

#[derive(Clone, Copy)]
pub(super) enum PathItem<'a> {
    K(&'a str),
    I(usize),
}

/// Innermost key whose key or value span contains `pos`. Children are searched before a
/// value's own span because a header table's span is only its `[header]` line.
pub(super) fn path_in_table<'t>(
    table: &'t DeTable<'_>,
    pos: usize,
    out: &mut Vec<Seg<'t>>,
) -> bool {
    for (k, v) in table.iter() {
        out.push(Seg::Key(k.get_ref()));
        if k.span().contains(&pos) || path_in_value(v, pos, out) {
            return true;
        }
        if v.span().contains(&pos) || (v.span().is_empty() && v.span().start == pos) {
            return true;
        }
        out.pop();
    }
    false
}

pub(super) fn path_in_value<'t>(
    value: &'t toml::Spanned<DeValue<'_>>,
    pos: usize,
    out: &mut Vec<Seg<'t>>,
) -> bool {
    match value.get_ref() {
        DeValue::Table(t) => path_in_table(t, pos, out),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                out.push(Seg::Index(i));
                if path_in_value(item, pos, out) || item.span().contains(&pos) {
                    return true;
                }
                out.pop();
            }
            false
        }
        _ => false,
    }
}

/// Span of the key (or array element) at `path` and `true`, or of the deepest ancestor that
/// exists and `false`.
pub(super) fn span_of(table: &DeTable<'_>, path: &[PathItem<'_>]) -> Option<(Range<usize>, bool)> {
    let mut best = None;
    let mut found = 0;
    let mut current: Option<&toml::Spanned<DeValue<'_>>> = None;
    for item in path {
        let next = match (item, current.map(|v| v.get_ref())) {
            (PathItem::K(k), None) => table.get_key_value(*k),
            (PathItem::K(k), Some(DeValue::Table(t))) => t.get_key_value(*k),
            (PathItem::I(i), Some(DeValue::Array(a))) => {
                let Some(v) = a.get(*i) else { break };
                best = Some(v.span());
                current = Some(v);
                found += 1;
                continue;
            }
            _ => None,
        };
        let Some((key, value)) = next else { break };
        best = Some(key.span());
        current = Some(value);
        found += 1;
    }
    best.map(|span| (span, found == path.len()))
}

/// serde's wording talks about Rust; TOML users have keys.
pub(super) fn tidy_serde_message(message: &str) -> String {
    message
        .replacen("unknown field", "unknown key", 1)
        .replacen("missing field", "missing key", 1)
}
