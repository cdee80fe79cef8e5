//! Every external string (aliases, org ids, API names, meta_data, error messages) passes through
//! here before it reaches a cell: control characters would move the terminal cursor or inject
//! escape sequences, and unmeasured widths would break the table layout.

use std::borrow::Cow;

use unicode_width::{UnicodeWidthChar, UnicodeWidthStr};

/// Shown in place of a character that must not reach the terminal.
pub const REPLACEMENT: char = '\u{FFFD}';

/// Control characters (C0 incl. ESC, \r, \n, \t; DEL; C1) and bidi overrides, which reorder
/// the rest of the line in some terminals.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

fn safe(c: char) -> char {
    if is_unsafe(c) { REPLACEMENT } else { c }
}

/// The string with unsafe characters replaced; borrowed when nothing had to change.
pub fn clean(s: &str) -> Cow<'_, str> {
    if s.chars().any(is_unsafe) {
        Cow::Owned(s.chars().map(safe).collect())
    } else {
        Cow::Borrowed(s)
    }
}

/// Display width in terminal cells, as ratatui measures it.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// `clean(s)` cut to at most `max` cells, ending in `…` when cut. Wide characters are never
/// split; very long inputs are only read as far as needed.
pub fn fit(s: &str, max: usize) -> String {
    if max == 0 {
        return String::new();
    }
    let mut out = String::new();
    let mut w = 0usize;
    for c in s.chars().map(safe) {
        let cw = c.width().unwrap_or(0);
        if w + cw > max {
            while w + 1 > max {
                match out.pop() {
                    Some(p) => w -= p.width().unwrap_or(0),
                    None => break,
                }
            }
            out.push('…');
            return out;
        }
        out.push(c);
        w += cw;
    }
    // Per-character widths can undercount sequences (emoji presentation selectors); re-check.
    while width(&out) > max {
        out.pop();
        if width(&out) < max {
            out.push('…');
            break;
        }
    }
    out
}

/// `fit`, padded with spaces on the left to exactly `max` cells (right-aligned numbers).
pub fn fit_right(s: &str, max: usize) -> String {
    let f = fit(s, max);
    let pad = max.saturating_sub(width(&f));
    format!("{}{f}", " ".repeat(pad))
}

/// `clean(s)` broken into lines of at most `max` cells, at spaces where possible.
pub fn wrap(s: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut w = 0usize;
    for word in clean(s).split(' ').filter(|w| !w.is_empty()) {
        let ww = width(word);
        if w > 0 && w + 1 + ww <= max {
            line.push(' ');
            line.push_str(word);
            w += 1 + ww;
            continue;
        }
        if w > 0 {
            lines.push(std::mem::take(&mut line));
            w = 0;
        }
        // A word longer than a line is split by characters.
        for c in word.chars() {
            let cw = c.width().unwrap_or(0);
            if w + cw > max && w > 0 {
                lines.push(std::mem::take(&mut line));
                w = 0;
            }
            line.push(c);
            w += cw;
        }
    }
    if w > 0 || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// Multi-line text for a scrolled pane: split at `\n` (a `\r` before it dropped), tabs as four
/// spaces, cleaned, each line broken into rows of at most `max` cells — at the last space where
/// possible. Unlike `wrap`, indentation and runs of spaces survive (aligned text e-mails,
/// headers, HTML source).
pub fn wrap_keep(s: &str, max: usize) -> Vec<String> {
    let max = max.max(1);
    let mut out = Vec::new();
    for raw in s.split('\n') {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let line = if raw.contains('\t') {
            clean(&raw.replace('\t', "    ")).into_owned()
        } else {
            clean(raw).into_owned()
        };
        if width(&line) <= max {
            out.push(line);
            continue;
        }
        let mut cur = String::new();
        let mut w = 0;
        // Spaces at a soft break are dropped, not carried to the next row.
        let mut at_break = false;
        for c in line.chars() {
            let cw = c.width().unwrap_or(0);
            if c == ' ' && (at_break || w + cw > max) {
                if !at_break {
                    out.push(std::mem::take(&mut cur).trim_end().to_string());
                    w = 0;
                    at_break = true;
                }
                continue;
            }
            at_break = false;
            while w + cw > max && w > 0 {
                // The last space that has text before it (indentation is not a break).
                match cur.rfind(' ').filter(|&i| !cur[..i].trim().is_empty()) {
                    Some(i) => {
                        let rest = cur.split_off(i + 1);
                        out.push(cur.trim_end().to_string());
                        cur = rest;
                        w = width(&cur);
                    }
                    None => {
                        out.push(std::mem::take(&mut cur));
                        w = 0;
                    }
                }
            }
            cur.push(c);
            w += cw;
        }
        if !(at_break && cur.is_empty()) {
            out.push(cur);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_never_pass() {
        let s = "a\x1b[31mb\r\n\tc\u{7f}\u{9b}d\u{202e}e";
        let c = clean(s);
        assert!(
            !c.chars().any(|c| c.is_control() || c == '\u{202e}'),
            "{c:?}"
        );
        assert_eq!(
            c,
            "a\u{FFFD}[31mb\u{FFFD}\u{FFFD}\u{FFFD}c\u{FFFD}\u{FFFD}d\u{FFFD}e"
        );
        assert!(matches!(clean("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn fits_by_display_width() {
        assert_eq!(fit("portal-key", 20), "portal-key");
        assert_eq!(fit("portal-key", 6), "porta…");
        assert_eq!(fit("portal-key", 1), "…");
        assert_eq!(fit("portal-key", 0), "");
        // CJK is two cells wide and never split in half
        assert_eq!(fit("日本語キー", 6), "日本…");
        assert_eq!(width(&fit("日本語キー", 6)), 5);
        assert_eq!(fit("zürich-ß", 8), "zürich-ß");
        assert_eq!(fit("a\x1b[2Jb", 10), "a\u{FFFD}[2Jb");
        assert_eq!(fit_right("12", 5), "   12");
        assert_eq!(
            wrap("cannot reach the gateway", 10),
            ["cannot", "reach the", "gateway"]
        );
        assert_eq!(wrap("abcdefghij", 4), ["abcd", "efgh", "ij"]);
        assert_eq!(wrap("", 4), [""]);
        assert_eq!(
            wrap_keep("Quota    key\tx\r\n  indented words here", 12),
            ["Quota    key", "x", "  indented", "words here"]
        );
        assert_eq!(wrap_keep("abcdefgh", 3), ["abc", "def", "gh"]);
        assert_eq!(wrap_keep("a\x1bb", 0), ["a", "\u{FFFD}", "b"]);
        let long = "x".repeat(1_000_000);
        assert_eq!(width(&fit(&long, 10)), 10);
    }
}
