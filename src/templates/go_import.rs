//! Go `text/template` / `html/template` → minijinja syntax, for the common constructs:
//! `{{.A.B}}`, `{{.}}` in `range`/`with`, `$` and `$x`, `if`/`else if`/`else`/`end`, `range`
//! (also `$i, $v :=`), `with`, `break`/`continue`, variable declarations, pipelines,
//! `printf`, `eq ne lt le gt ge and or not len index print`, `html` (→ `escape`),
//! `urlquery` (→ `urlencode`: a space becomes `%20`, not Go's `+`), comments and `{{- -}}`
//! trimming. [`convert_for`] also maps the Tyk Developer Portal's mail variables (`.user`,
//! `current_user`, `.name`, …) to a target template's context (`go_vars`). Everything else is reported with its line and left in the output as a
//! `{# go: … #}` comment, so the result still parses.
//!
//! Mapping notes: the dot inside `range X` becomes `it` (`it2`, … when nested) and inside
//! `with X` becomes `w`; `range $i, $v := X` uses the `entries` filter (Go order: sorted map
//! keys, slice indices); a single-variable `range` over a *map* yields keys in minijinja but
//! values in Go.
//!
//! Size (over the ~800 lines the code otherwise keeps to): the lexer, the parser of actions and
//! pipelines and the emitter share one token type and one scope stack (the dot's name in each
//! `range`/`with`); split apart they would pass both around. Issue 13 reworks the converter
//! (variable mapping, `html`/`urlquery`); it is split then if it grows.

use std::collections::HashSet;
use std::fmt;

use super::go_vars::{self, UserMap};

/// The converted template and what could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversion {
    pub output: String,
    pub issues: Vec<Issue>,
    /// `line_map[n - 1]`: the Go source line where output line `n` starts.
    pub line_map: Vec<usize>,
}

impl Conversion {
    /// The Go source line of output line `line` (1-based), for errors found by rendering.
    pub fn source_line(&self, line: usize) -> usize {
        self.line_map
            .get(line.saturating_sub(1))
            .copied()
            .unwrap_or(line)
    }

    /// The converted text followed, when there are issues, by one `LINE: issue` line each —
    /// the format of the corpus' `.expected` files.
    pub fn report(&self) -> String {
        let mut out = self.output.clone();
        if !self.issues.is_empty() {
            out.push_str("\n=== not converted ===\n");
            for issue in &self.issues {
                out.push_str(&format!("{}: {issue}\n", issue.line));
            }
        }
        out
    }
}

/// A construct left unconverted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// 1-based line of the action in the Go source.
    pub line: usize,
    /// The action as written, e.g. `{{template "footer" .}}`.
    pub construct: String,
    pub reason: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot convert `{}`: {}", self.construct, self.reason)
    }
}

/// Converts a Go template.
pub fn convert(src: &str) -> Conversion {
    convert_for(src, None)
}

/// Converts a Go template to be the template `target` (`welcome`, `key_request_approved`, …):
/// the Portal's user variables are mapped to that template's context, and those it cannot
/// have are reported. `None`: no mapping (webhook bodies, other data).
pub fn convert_for(src: &str, target: Option<&str>) -> Conversion {
    let mut c = Converter {
        users: target.and_then(go_vars::user_map),
        ..Converter::default()
    };
    c.run(src);
    Conversion {
        output: c.out,
        issues: c.issues,
        line_map: c.line_map,
    }
}

// ---------------------------------------------------------------------------------------------
// Lexing actions out of the text
// ---------------------------------------------------------------------------------------------

struct Action<'a> {
    body: &'a str,
    raw: &'a str,
    trim_left: bool,
    trim_right: bool,
    line: usize,
}

enum Piece<'a> {
    Text(&'a str),
    Action(Action<'a>),
    /// `{{` without a matching `}}`.
    Unclosed {
        raw: &'a str,
        line: usize,
    },
}

fn split(src: &str) -> Vec<Piece<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    let mut line = 1;
    while let Some(rel) = src[pos..].find("{{") {
        let start = pos + rel;
        if start > pos {
            out.push(Piece::Text(&src[pos..start]));
        }
        line += src[pos..start].matches('\n').count();
        let mut content = start + 2;
        let bytes = src.as_bytes();
        let trim_left = bytes.get(content) == Some(&b'-')
            && bytes
                .get(content + 1)
                .is_some_and(|b| b" \t\r\n".contains(b));
        if trim_left {
            content += 2;
        }
        match find_close(src, content) {
            Some(close) => {
                let trim_right = close >= content + 2
                    && bytes[close - 1] == b'-'
                    && b" \t\r\n".contains(&bytes[close - 2]);
                let body_end = if trim_right { close - 1 } else { close };
                out.push(Piece::Action(Action {
                    body: &src[content..body_end],
                    raw: &src[start..close + 2],
                    trim_left,
                    trim_right,
                    line,
                }));
                line += src[start..close + 2].matches('\n').count();
                pos = close + 2;
            }
            None => {
                out.push(Piece::Unclosed {
                    raw: &src[start..],
                    line,
                });
                return out;
            }
        }
    }
    if pos < src.len() {
        out.push(Piece::Text(&src[pos..]));
    }
    out
}

/// Index of the `}}` closing an action whose content starts at `from`, skipping strings,
/// raw strings, char literals and comments.
fn find_close(src: &str, from: usize) -> Option<usize> {
    let b = src.as_bytes();
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'"' | b'\'' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' {
                        i += 1;
                    }
                    if b[i.min(b.len() - 1)] == b'\n' {
                        return None;
                    }
                    i += 1;
                }
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let end = src[i + 2..].find("*/")?;
                i += 2 + end + 1;
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Tokens and expressions of one action
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// `.A.B` (empty: `.`); `adjacent` when glued to the previous token (`(x).A`).
    Field(Vec<String>, bool),
    /// `$`, `$x`, with a field chain.
    Var(String, Vec<String>),
    Ident(String),
    /// A literal already in minijinja syntax.
    Lit(String),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

fn tokenize(body: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = body.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut spaced = true;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            spaced = true;
            i += 1;
            continue;
        }
        let adjacent = !spaced;
        spaced = false;
        match c {
            '.' if chars.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                let (lit, n) = number(&chars[i..])?;
                out.push(Tok::Lit(lit));
                i += n;
            }
            '.' => {
                let mut fields = Vec::new();
                while i < chars.len() && chars[i] == '.' {
                    i += 1;
                    let s = i;
                    while i < chars.len() && ident(chars[i]) {
                        i += 1;
                    }
                    if s == i {
                        if fields.is_empty() {
                            break; // a lone `.`
                        }
                        return Err("a `.` must be followed by a field name".into());
                    }
                    fields.push(chars[s..i].iter().collect());
                }
                out.push(Tok::Field(fields, adjacent));
            }
            '$' => {
                let s = i;
                i += 1;
                while i < chars.len() && ident(chars[i]) {
                    i += 1;
                }
                let name: String = chars[s..i].iter().collect();
                if name != "$" && !plain_ident(&name[1..]) {
                    return Err(format!(
                        "variable `{name}` is not a valid minijinja name (ASCII letters, digits, `_`; not a keyword)"
                    ));
                }
                let mut fields = Vec::new();
                while i + 1 < chars.len() && chars[i] == '.' && ident(chars[i + 1]) {
                    i += 1;
                    let fs = i;
                    while i < chars.len() && ident(chars[i]) {
                        i += 1;
                    }
                    fields.push(chars[fs..i].iter().collect());
                }
                out.push(Tok::Var(name, fields));
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string".into()),
                        Some('"') => break,
                        Some('\\') => {
                            let (ch, n) = go_escape(&chars[i + 1..])?;
                            s.push(ch);
                            i += 1 + n;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                i += 1;
                out.push(Tok::Lit(json_string(&s)));
            }
            '`' => {
                let s = i + 1;
                i = s;
                while i < chars.len() && chars[i] != '`' {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unterminated raw string".into());
                }
                let text: String = chars[s..i].iter().collect();
                out.push(Tok::Lit(json_string(&text)));
                i += 1;
            }
            '\'' => return Err("character constants have no minijinja equivalent".into()),
            '(' => {
                out.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1;
            }
            '|' => {
                out.push(Tok::Pipe);
                i += 1;
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1;
            }
            ':' if chars.get(i + 1) == Some(&'=') => {
                out.push(Tok::Declare);
                i += 2;
            }
            '=' => {
                out.push(Tok::Assign);
                i += 1;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && chars
                        .get(i + 1)
                        .is_some_and(|c| c.is_ascii_digit() || *c == '.')) =>
            {
                let (lit, n) = number(&chars[i..])?;
                out.push(Tok::Lit(lit));
                i += n;
            }
            c if ident(c) => {
                let s = i;
                while i < chars.len() && ident(chars[i]) {
                    i += 1;
                }
                let word: String = chars[s..i].iter().collect();
                out.push(match word.as_str() {
                    "true" | "false" => Tok::Lit(word),
                    "nil" => Tok::Lit("none".into()),
                    _ => Tok::Ident(word),
                });
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(out)
}

/// A Go number literal at the start of `chars` → (minijinja literal, chars consumed).
fn number(chars: &[char]) -> Result<(String, usize), String> {
    let n = chars
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+')))
        .unwrap_or(chars.len());
    // A sign may only lead or follow an exponent marker.
    let mut n = n;
    for (idx, c) in chars[..n].iter().enumerate().skip(1) {
        if matches!(c, '-' | '+') && !matches!(chars[idx - 1], 'e' | 'E' | 'p' | 'P') {
            n = idx;
            break;
        }
    }
    let text: String = chars[..n].iter().filter(|c| **c != '_').collect();
    let (sign, digits) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text.strip_prefix('+').unwrap_or(&text)),
    };
    let radix = match digits.get(..2) {
        Some("0x" | "0X") => Some(16),
        Some("0o" | "0O") => Some(8),
        Some("0b" | "0B") => Some(2),
        _ => None,
    };
    let lit = if let Some(radix) = radix {
        i64::from_str_radix(&digits[2..], radix)
            .map(|v| format!("{sign}{v}"))
            .map_err(|_| format!("number {text:?} not understood"))?
    } else if let Ok(f) = digits.parse::<f64>() {
        if !f.is_finite() {
            return Err(format!("number {text:?} is out of range"));
        }
        let integer = digits.bytes().all(|b| b.is_ascii_digit());
        if integer && digits.parse::<i64>().is_err() {
            // Too big for an int: Go makes it a float constant, and so does this.
            format!("{sign}{f:e}")
        } else {
            // Go's leading-zero octal (`017`) is rare in templates; decimal is assumed.
            let d = digits.trim_start_matches('0');
            let d = if d.is_empty() || d.starts_with('.') || d.starts_with(['e', 'E']) {
                format!("0{d}")
            } else {
                d.to_string()
            };
            format!("{sign}{d}")
        }
    } else {
        return Err(format!("number {text:?} not understood"));
    };
    Ok((lit, n))
}

/// A Go string escape after the `\` → (char, chars consumed).
fn go_escape(chars: &[char]) -> Result<(char, usize), String> {
    let hex = |n: usize| -> Result<(char, usize), String> {
        let s: String = chars.get(1..=n).ok_or("short escape")?.iter().collect();
        u32::from_str_radix(&s, 16)
            .ok()
            .and_then(char::from_u32)
            .map(|c| (c, n + 1))
            .ok_or_else(|| format!("bad escape \\{}{s}", chars[0]))
    };
    Ok(match chars.first() {
        Some('n') => ('\n', 1),
        Some('t') => ('\t', 1),
        Some('r') => ('\r', 1),
        Some('a') => ('\u{7}', 1),
        Some('b') => ('\u{8}', 1),
        Some('f') => ('\u{c}', 1),
        Some('v') => ('\u{b}', 1),
        Some('\\') => ('\\', 1),
        Some('"') => ('"', 1),
        Some('\'') => ('\'', 1),
        Some('x') => hex(2)?,
        Some('u') => hex(4)?,
        Some('U') => hex(8)?,
        Some(c) if c.is_digit(8) => {
            let s: String = chars.get(..3).ok_or("short escape")?.iter().collect();
            let v = u32::from_str_radix(&s, 8).map_err(|_| format!("bad escape \\{s}"))?;
            (char::from_u32(v).ok_or("bad escape")?, 3)
        }
        _ => return Err("bad escape in string".into()),
    })
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_string())
}

#[derive(Debug, Clone)]
enum Expr {
    /// Field chain on the dot.
    Dot(Vec<String>),
    /// `$` (root) or `$name`, with a field chain.
    Var(String, Vec<String>),
    Lit(String),
    Ident(String),
    /// `( pipeline )` with a field chain after it.
    Paren(Box<Pipeline>, Vec<String>),
}

#[derive(Debug, Clone)]
struct Pipeline(Vec<Vec<Expr>>);

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn pipeline(&mut self) -> Result<Pipeline, String> {
        let mut cmds = vec![self.command()?];
        while self.peek() == Some(&Tok::Pipe) {
            self.pos += 1;
            cmds.push(self.command()?);
        }
        Ok(Pipeline(cmds))
    }

    fn command(&mut self) -> Result<Vec<Expr>, String> {
        let mut ops = Vec::new();
        while let Some(tok) = self.peek() {
            if matches!(tok, Tok::Pipe | Tok::RParen) {
                break;
            }
            ops.push(self.operand()?);
        }
        if ops.is_empty() {
            return Err("missing value".into());
        }
        Ok(ops)
    }

    fn operand(&mut self) -> Result<Expr, String> {
        let tok = self.toks.get(self.pos).cloned().ok_or("missing value")?;
        self.pos += 1;
        let mut e = match tok {
            Tok::Field(f, _) => Expr::Dot(f),
            Tok::Var(v, f) => Expr::Var(v, f),
            Tok::Lit(l) => Expr::Lit(l),
            Tok::Ident(i) => Expr::Ident(i),
            Tok::LParen => {
                let p = self.pipeline()?;
                if self.peek() != Some(&Tok::RParen) {
                    return Err("missing `)`".into());
                }
                self.pos += 1;
                Expr::Paren(Box::new(p), Vec::new())
            }
            other => return Err(format!("unexpected {}", tok_name(&other))),
        };
        // `(x).Field`: a field chain glued to a parenthesised value.
        while let Some(Tok::Field(f, true)) = self.peek() {
            let f = f.clone();
            self.pos += 1;
            match &mut e {
                Expr::Paren(_, chain) => chain.extend(f),
                _ => return Err("field access on this value is not supported".into()),
            }
        }
        Ok(e)
    }
}

fn tok_name(t: &Tok) -> &'static str {
    match t {
        Tok::Pipe => "`|`",
        Tok::RParen => "`)`",
        Tok::Declare => "`:=`",
        Tok::Assign => "`=`",
        Tok::Comma => "`,`",
        _ => "token",
    }
}

/// A converted expression; `atomic` when it can take a filter or be an operand unparenthesised.
struct J {
    text: String,
    atomic: bool,
}

impl J {
    fn atom(text: String) -> J {
        J { text, atomic: true }
    }
    fn compound(text: String) -> J {
        J {
            text,
            atomic: false,
        }
    }
    fn wrapped(&self) -> String {
        if self.atomic {
            self.text.clone()
        } else {
            format!("({})", self.text)
        }
    }
}

/// A name minijinja accepts as a bare identifier: ASCII, not a keyword. Other field names are
/// subscripted (`x["é"]`); other variable names cannot be converted.
fn plain_ident(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !reserved(name)
}

/// Words minijinja treats specially.
fn reserved(name: &str) -> bool {
    matches!(
        name,
        "and"
            | "or"
            | "not"
            | "in"
            | "is"
            | "if"
            | "else"
            | "true"
            | "false"
            | "none"
            | "True"
            | "False"
            | "None"
            | "loop"
            | "self"
            | "super"
            | "recursive"
    )
}

fn chain(mut base: String, fields: &[String]) -> String {
    for f in fields {
        if !plain_ident(f) {
            base.push_str(&format!("[{}]", json_string(f)));
        } else {
            base.push('.');
            base.push_str(f);
        }
    }
    base
}

// ---------------------------------------------------------------------------------------------
// The converter
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    If,
    Range,
    With,
    /// `define` / `block`: reported, body converted in place.
    Named,
}

struct Frame {
    kind: Kind,
    line: usize,
    /// The opening action as written, for "never closed".
    raw: String,
    /// The frame pushed a dot that its `else` pops.
    dot_pushed: bool,
    /// `{% endif %}`s owed by `else if` inside range/with.
    extra_endifs: usize,
}

#[derive(Default)]
struct Converter {
    out: String,
    issues: Vec<Issue>,
    /// The dot: `None` is the root context, `Some(var)` a loop/with variable.
    dots: Vec<Option<String>>,
    frames: Vec<Frame>,
    counter_it: usize,
    counter_w: usize,
    /// The Portal's user object in the target's context (`convert_for`).
    users: Option<&'static UserMap>,
    /// Variables holding the user (`$u := current_user`), without the `$`.
    user_vars: HashSet<String>,
    line_map: Vec<usize>,
}

struct Ctx<'a> {
    action: &'a Action<'a>,
}

impl Converter {
    fn run(&mut self, src: &str) {
        self.dots.push(None);
        let pieces = split(src);
        let n = pieces.len();
        self.line_map.push(1);
        let mut src_line = 1;
        for (idx, piece) in pieces.iter().enumerate() {
            let (start, raw) = match piece {
                Piece::Text(t) => (self.out.len(), *t),
                Piece::Action(a) => (self.out.len(), a.raw),
                Piece::Unclosed { raw, .. } => (self.out.len(), *raw),
            };
            match piece {
                Piece::Text(t) => self.text(t, idx + 1 < n),
                Piece::Action(a) => self.action(a),
                Piece::Unclosed { raw, line } => {
                    self.issue(*line, raw, "`{{` is never closed by `}}`");
                    self.out.push_str(&raw_comment(raw));
                }
            }
            // Each new output line starts where the source is at that point (text keeps its
            // newlines; an action spanning lines ends up on fewer).
            let src_newlines = raw.matches('\n').count();
            let added = self.out[start..].matches('\n').count();
            for i in 1..=added {
                self.line_map.push(src_line + i.min(src_newlines));
            }
            src_line += src_newlines;
        }
        while let Some(frame) = self.frames.pop() {
            self.issues.push(Issue {
                line: frame.line,
                construct: frame.raw.clone(),
                reason: "never closed by `{{end}}` (closed at the end of the file)".into(),
            });
            self.out.push_str(&closing(&frame, false, false));
        }
    }

    /// Copies text, neutralising sequences minijinja would read as tags.
    fn text(&mut self, t: &str, action_follows: bool) {
        let mut s = t
            .replace("{%", "{{ \"{%\" }}")
            .replace("{#", "{{ \"{#\" }}");
        // `{` right before `{{` would read as `{{{`.
        if action_follows && s.ends_with('{') {
            s.pop();
            s.push_str("{{ \"{\" }}");
        }
        self.out.push_str(&s);
    }

    fn issue(&mut self, line: usize, construct: &str, reason: &str) {
        self.issues.push(Issue {
            line,
            construct: construct.to_string(),
            reason: reason.to_string(),
        });
    }

    fn action(&mut self, a: &Action<'_>) {
        let body = a.body.trim();
        let (l, r) = (dash(a.trim_left), dash(a.trim_right));
        if let Some(comment) = body.strip_prefix("/*") {
            let text = comment.strip_suffix("*/").unwrap_or(comment).trim();
            self.out
                .push_str(&format!("{{#{l} {} {r}#}}", text.replace("#}", "# }")));
            return;
        }
        let ctx = Ctx { action: a };
        let toks = match tokenize(body) {
            Ok(t) => t,
            Err(e) => return self.unconverted(&ctx, &e),
        };
        let keyword = match toks.first() {
            Some(Tok::Ident(w)) => w.as_str(),
            _ => "",
        };
        let rest = Parser {
            toks: toks.get(1..).unwrap_or_default().to_vec(),
            pos: 0,
        };
        match keyword {
            "if" => {
                let cond = self.expr_of(rest);
                self.open(&ctx, Kind::If, false);
                match cond {
                    Ok(c) => self.out.push_str(&format!("{{%{l} if {c} {r}%}}")),
                    Err(e) => {
                        self.unconverted(&ctx, &e);
                        self.out.push_str(&format!("{{%{l} if false {r}%}}"));
                    }
                }
            }
            "else" => self.else_(&ctx, rest),
            "end" => self.end(&ctx),
            "range" => self.range(&ctx, rest),
            "with" => self.with(&ctx, rest),
            "break" | "continue" if rest.toks.is_empty() => {
                if self.frames.iter().any(|f| f.kind == Kind::Range) {
                    self.out.push_str(&format!("{{%{l} {keyword} {r}%}}"));
                } else {
                    self.unconverted(&ctx, "only allowed inside `range`");
                }
            }
            "define" | "block" => {
                self.unconverted(
                    &ctx,
                    "named templates have no direct equivalent; rewrite as {% macro %} (or {% block %} in a layout)",
                );
                self.open(&ctx, Kind::Named, false);
            }
            "template" => self.unconverted(
                &ctx,
                "template calls have no direct equivalent; use {% include %} or call a macro",
            ),
            _ => self.statement(&ctx, toks),
        }
    }

    fn unconverted(&mut self, ctx: &Ctx<'_>, reason: &str) {
        let a = ctx.action;
        self.issue(a.line, a.raw, reason);
        self.out.push_str(&raw_comment(a.raw));
    }

    fn open(&mut self, ctx: &Ctx<'_>, kind: Kind, dot_pushed: bool) {
        self.frames.push(Frame {
            kind,
            line: ctx.action.line,
            raw: ctx.action.raw.to_string(),
            dot_pushed,
            extra_endifs: 0,
        });
    }

    /// `{{pipeline}}`, `{{$x := pipeline}}`, `{{$x = pipeline}}`.
    fn statement(&mut self, ctx: &Ctx<'_>, toks: Vec<Tok>) {
        let (l, r) = (dash(ctx.action.trim_left), dash(ctx.action.trim_right));
        if let (Some(Tok::Var(name, f)), Some(op @ (Tok::Declare | Tok::Assign))) =
            (toks.first(), toks.get(1))
            && f.is_empty()
            && name != "$"
        {
            if *op == Tok::Assign
                && self
                    .frames
                    .iter()
                    .any(|f| matches!(f.kind, Kind::Range | Kind::With))
            {
                return self.unconverted(
                    ctx,
                    "assigning inside range/with does not change the outer variable in minijinja; use namespace()",
                );
            }
            let holds_user = match &toks[2..] {
                [Tok::Ident(f)] => go_vars::is_user_function(f),
                [Tok::Field(f, _)] => f.len() == 1 && f[0] == "user",
                _ => false,
            };
            if self.users.is_some() && holds_user {
                self.user_vars.insert(name[1..].to_string());
            }
            let p = Parser {
                toks: toks[2..].to_vec(),
                pos: 0,
            };
            match self.expr_of(p) {
                Ok(e) => self
                    .out
                    .push_str(&format!("{{%{l} set {} = {e} {r}%}}", &name[1..])),
                Err(e) => self.unconverted(ctx, &e),
            }
            return;
        }
        match self.expr_of(Parser { toks, pos: 0 }) {
            Ok(e) => self.out.push_str(&format!("{{{{{l} {e} {r}}}}}")),
            Err(e) => self.unconverted(ctx, &e),
        }
    }

    fn else_(&mut self, ctx: &Ctx<'_>, rest: Parser) {
        let (l, r) = (dash(ctx.action.trim_left), dash(ctx.action.trim_right));
        let Some(frame) = self.frames.last() else {
            return self.unconverted(ctx, "`else` outside if/range/with");
        };
        let (kind, dot_pushed) = (frame.kind, frame.dot_pushed);
        if kind == Kind::Named {
            return self.unconverted(ctx, "`else` outside if/range/with");
        }
        // The else branch sees the outer dot.
        if dot_pushed {
            self.dots.pop();
            if let Some(f) = self.frames.last_mut() {
                f.dot_pushed = false;
            }
        }
        match rest.toks.first() {
            None => self.out.push_str(&format!("{{%{l} else {r}%}}")),
            Some(Tok::Ident(w)) if w == "if" => {
                let p = Parser {
                    toks: rest.toks[1..].to_vec(),
                    pos: 0,
                };
                let cond = self.expr_of(p).unwrap_or_else(|e| {
                    self.issue(ctx.action.line, ctx.action.raw, &e);
                    "false".into()
                });
                if kind == Kind::If {
                    self.out.push_str(&format!("{{%{l} elif {cond} {r}%}}"));
                } else {
                    self.out
                        .push_str(&format!("{{%{l} else %}}{{% if {cond} {r}%}}"));
                    if let Some(f) = self.frames.last_mut() {
                        f.extra_endifs += 1;
                    }
                }
            }
            Some(_) => {
                self.unconverted(ctx, "only `else` and `else if` are supported");
                self.out.push_str(&format!("{{%{l} else {r}%}}"));
            }
        }
    }

    fn end(&mut self, ctx: &Ctx<'_>) {
        let Some(frame) = self.frames.pop() else {
            return self.unconverted(ctx, "`end` without an open block");
        };
        if frame.dot_pushed {
            self.dots.pop();
        }
        if frame.kind == Kind::Named {
            self.out.push_str(&raw_comment(ctx.action.raw));
            return;
        }
        self.out.push_str(&closing(
            &frame,
            ctx.action.trim_left,
            ctx.action.trim_right,
        ));
    }

    /// `range X`, `range $v := X`, `range $i, $v := X`.
    fn range(&mut self, ctx: &Ctx<'_>, rest: Parser) {
        let (l, r) = (dash(ctx.action.trim_left), dash(ctx.action.trim_right));
        let toks = &rest.toks;
        let (vars, expr_toks): (Vec<String>, &[Tok]) = match toks.as_slice() {
            [
                Tok::Var(i, fi),
                Tok::Comma,
                Tok::Var(v, fv),
                Tok::Declare,
                tail @ ..,
            ] if fi.is_empty() && fv.is_empty() => {
                (vec![i[1..].to_string(), v[1..].to_string()], tail)
            }
            [Tok::Var(v, fv), Tok::Declare, tail @ ..] if fv.is_empty() => {
                (vec![v[1..].to_string()], tail)
            }
            _ => (Vec::new(), toks.as_slice()),
        };
        let seq = self.expr_of(Parser {
            toks: expr_toks.to_vec(),
            pos: 0,
        });
        let (head, dot) = match vars.as_slice() {
            [i, v] => (format!("{i}, {v}"), v.clone()),
            [v] => (v.clone(), v.clone()),
            _ => {
                self.counter_it += 1;
                let name = numbered("it", self.counter_it);
                (name.clone(), name)
            }
        };
        let seq = match seq {
            Ok(s) if vars.len() == 2 => format!("{}|entries", paren_str(&s)),
            Ok(s) => s,
            Err(e) => {
                self.unconverted(ctx, &e);
                "[]".into()
            }
        };
        self.out
            .push_str(&format!("{{%{l} for {head} in {seq} {r}%}}"));
        self.dots.push(Some(dot));
        self.open(ctx, Kind::Range, true);
    }

    /// `with X` → `{% with w = X %}{% if w %}`; `with $x := X` names the variable.
    fn with(&mut self, ctx: &Ctx<'_>, rest: Parser) {
        let (l, r) = (dash(ctx.action.trim_left), dash(ctx.action.trim_right));
        let (name, expr_toks) = match rest.toks.as_slice() {
            [Tok::Var(v, f), Tok::Declare, tail @ ..] if f.is_empty() => {
                (v[1..].to_string(), tail.to_vec())
            }
            toks => {
                self.counter_w += 1;
                (numbered("w", self.counter_w), toks.to_vec())
            }
        };
        let value = match self.expr_of(Parser {
            toks: expr_toks,
            pos: 0,
        }) {
            Ok(v) => v,
            Err(e) => {
                self.unconverted(ctx, &e);
                "none".into()
            }
        };
        self.out.push_str(&format!(
            "{{%{l} with {name} = {value} %}}{{% if {name} {r}%}}"
        ));
        self.dots.push(Some(name));
        self.open(ctx, Kind::With, true);
    }

    fn expr_of(&mut self, mut p: Parser) -> Result<String, String> {
        if p.toks.is_empty() {
            return Err("missing value".into());
        }
        let pipeline = p.pipeline()?;
        if let Some(t) = p.peek() {
            return Err(format!("unexpected {}", tok_name(t)));
        }
        Ok(self.pipeline(&pipeline)?.text)
    }

    fn pipeline(&self, p: &Pipeline) -> Result<J, String> {
        let mut acc: Option<J> = None;
        for cmd in &p.0 {
            acc = Some(self.command(cmd, acc)?);
        }
        acc.ok_or_else(|| "empty pipeline".into())
    }

    /// One command; `piped` is the previous command's value, Go's implicit last argument.
    fn command(&self, ops: &[Expr], piped: Option<J>) -> Result<J, String> {
        match ops.first() {
            Some(Expr::Ident(_)) if ops.len() == 1 && piped.is_none() => self.operand(&ops[0]),
            Some(Expr::Ident(f)) => {
                if let Some(why) = go_vars::untranslatable(f) {
                    return Err(format!("`{f}`: {why}"));
                }
                let mut args = ops[1..]
                    .iter()
                    .map(|e| self.operand(e))
                    .collect::<Result<Vec<_>, _>>()?;
                args.extend(piped);
                call(f, args)
            }
            Some(e) if ops.len() == 1 && piped.is_none() => self.operand(e),
            Some(_) if piped.is_some() => Err("a pipeline can only feed a function".into()),
            _ => Err("method calls with arguments are not supported".into()),
        }
    }

    /// A root field (`.x…` outside range/with, `$.x…`) or a user variable, mapped through
    /// the target's Portal variables; `None` when no mapping applies.
    fn mapped(&self, shown: &str, fields: &[String]) -> Option<Result<J, String>> {
        let users = self.users?;
        match fields {
            [first, rest @ ..] if first == "user" => Some(users.resolve(shown, rest).map(J::atom)),
            // `{{ .name }}` of the Portal's activate / deactivate mails: the full name.
            [name] if name == "name" => Some(
                users
                    .resolve(shown, &["DisplayName".to_string()])
                    .map(J::atom),
            ),
            _ => None,
        }
    }

    fn operand(&self, e: &Expr) -> Result<J, String> {
        if let Expr::Dot(fields) = e
            && matches!(self.dots.last(), Some(None) | None)
            && let Some(m) = self.mapped(".user", fields)
        {
            return m;
        }
        if let Expr::Var(name, fields) = e
            && name == "$"
            && let Some(m) = self.mapped("$.user", fields)
        {
            return m;
        }
        match e {
            Expr::Lit(l) => Ok(J::atom(l.clone())),
            Expr::Ident(f) => {
                if let Some(why) = go_vars::untranslatable(f) {
                    return Err(format!("`{f}`: {why}"));
                }
                match self.users {
                    Some(users) if go_vars::is_user_function(f) => {
                        users.resolve(f, &[]).map(J::atom)
                    }
                    _ => call(f, Vec::new()),
                }
            }
            Expr::Var(name, fields) if self.user_vars.contains(&name[1..]) => match self.users {
                Some(users) => users.resolve(name, fields).map(J::atom),
                None => Ok(J::atom(chain(name[1..].to_string(), fields))),
            },
            Expr::Dot(fields) => match (self.dots.last(), fields.as_slice()) {
                (Some(Some(var)), _) => Ok(J::atom(chain(var.clone(), fields))),
                (_, []) => Err(
                    "`.` (the whole data) has no minijinja name outside range/with; name the fields"
                        .into(),
                ),
                (_, [first, ..]) if !plain_ident(first) => Err(format!(
                    "top-level field {first:?} is not a valid minijinja name"
                )),
                (_, [first, tail @ ..]) => Ok(J::atom(chain(first.clone(), tail))),
            },
            Expr::Var(name, fields) if name == "$" => match fields.as_slice() {
                [] => Err("`$` (the whole data) has no minijinja name; name the fields".into()),
                [first, ..] if !plain_ident(first) => Err(format!(
                    "top-level field {first:?} is not a valid minijinja name"
                )),
                [first, tail @ ..] => Ok(J::atom(chain(first.clone(), tail))),
            },
            Expr::Var(name, fields) => Ok(J::atom(chain(name[1..].to_string(), fields))),
            Expr::Paren(p, fields) => {
                let inner = self.pipeline(p)?;
                if fields.is_empty() {
                    Ok(inner)
                } else {
                    Ok(J::atom(chain(inner.wrapped(), fields)))
                }
            }
        }
    }
}

fn paren_str(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '[' | ']' | '"'))
    {
        s.to_string()
    } else {
        format!("({s})")
    }
}

/// Go builtin functions → minijinja.
fn call(f: &str, args: Vec<J>) -> Result<J, String> {
    let n = args.len();
    let arity = |want: usize| {
        if n == want {
            Ok(())
        } else {
            Err(format!("`{f}` takes {want} argument(s), got {n}"))
        }
    };
    let binary = |op: &str| -> Result<J, String> {
        arity(2)?;
        Ok(J::compound(format!(
            "{} {op} {}",
            args[0].wrapped(),
            args[1].wrapped()
        )))
    };
    match f {
        "eq" => {
            if n < 2 {
                return Err("`eq` takes at least 2 arguments".into());
            }
            let alts: Vec<String> = args[1..]
                .iter()
                .map(|b| format!("{} == {}", args[0].wrapped(), b.wrapped()))
                .collect();
            Ok(J::compound(alts.join(" or ")))
        }
        "ne" => binary("!="),
        "lt" => binary("<"),
        "le" => binary("<="),
        "gt" => binary(">"),
        "ge" => binary(">="),
        "and" | "or" => {
            if n < 2 {
                return Err(format!("`{f}` takes at least 2 arguments"));
            }
            let parts: Vec<String> = args.iter().map(J::wrapped).collect();
            Ok(J::compound(parts.join(&format!(" {f} "))))
        }
        "not" => {
            arity(1)?;
            Ok(J::compound(format!("not {}", args[0].wrapped())))
        }
        "len" => {
            arity(1)?;
            Ok(J::atom(format!("{}|length", args[0].wrapped())))
        }
        "index" => {
            if n < 2 {
                return Err("`index` takes at least 2 arguments".into());
            }
            let mut s = args[0].wrapped();
            for k in &args[1..] {
                s.push_str(&format!("[{}]", k.text));
            }
            Ok(J::atom(s))
        }
        "print" => {
            arity(1)?;
            Ok(args
                .into_iter()
                .next()
                .unwrap_or_else(|| J::atom("\"\"".into())))
        }
        "printf" => {
            let Some(first) = args.first() else {
                return Err("`printf` needs a format".into());
            };
            let fmt: String = serde_json::from_str(&first.text)
                .map_err(|_| "`printf` with a computed format is not supported".to_string())?;
            let fmt = printf_format(&fmt)?;
            let rest: Vec<String> = args[1..].iter().map(|a| a.text.clone()).collect();
            Ok(J::atom(format!(
                "{}|format({})",
                json_string(&fmt),
                rest.join(", ")
            )))
        }
        // Go's `html` escapes like the e-mail environment does (`&<>"'`, NUL); the result is
        // marked safe, so an `.html.tmpl` does not escape it twice.
        "html" => {
            arity(1)?;
            Ok(J::atom(format!("{}|escape", args[0].wrapped())))
        }
        // Both percent-encode for a query value; Go writes a space as `+`, minijinja as `%20`
        // (the same to every URL parser).
        "urlquery" => {
            arity(1)?;
            Ok(J::atom(format!("{}|urlencode", args[0].wrapped())))
        }
        "js" | "call" | "slice" | "println" => {
            Err(format!("Go function `{f}` has no minijinja equivalent"))
        }
        _ => Err(format!("unknown function `{f}`")),
    }
}

/// Go printf verbs → Python-style: `%v`/`%t` → `%s`; `%q`, `%T`, `%p`, `%U` are refused.
fn printf_format(f: &str) -> Result<String, String> {
    let mut out = String::with_capacity(f.len());
    let mut chars = f.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c != '%' {
            continue;
        }
        // flags, width, precision
        while let Some(&n) = chars.peek() {
            if n.is_ascii_digit() || matches!(n, '-' | '+' | ' ' | '#' | '0' | '.') {
                out.push(n);
                chars.next();
            } else {
                break;
            }
        }
        match chars.next() {
            Some('v' | 't') => out.push('s'),
            Some(v @ ('d' | 's' | 'f' | 'e' | 'E' | 'g' | 'G' | 'x' | 'X' | 'o' | 'c' | '%')) => {
                out.push(v)
            }
            Some(v) => return Err(format!("printf verb %{v} has no minijinja equivalent")),
            None => return Err("printf format ends with `%`".into()),
        }
    }
    Ok(out)
}

fn dash(trim: bool) -> &'static str {
    if trim { "-" } else { "" }
}

fn numbered(base: &str, n: usize) -> String {
    if n == 1 {
        base.to_string()
    } else {
        format!("{base}{n}")
    }
}

/// The closing tags of a frame: the endifs owed by `else if` first, then its own.
fn closing(frame: &Frame, trim_left: bool, trim_right: bool) -> String {
    let mut tags: Vec<&str> = vec!["endif"; frame.extra_endifs];
    match frame.kind {
        Kind::If => tags.push("endif"),
        Kind::Range => tags.push("endfor"),
        Kind::With => tags.extend(["endif", "endwith"]),
        Kind::Named => return String::new(),
    }
    let last = tags.len() - 1;
    tags.iter()
        .enumerate()
        .map(|(i, tag)| {
            let l = dash(trim_left && i == 0);
            let r = dash(trim_right && i == last);
            format!("{{%{l} {tag} {r}%}}")
        })
        .collect()
}

/// An action kept as a comment: `{# go: {{…}} #}`.
fn raw_comment(raw: &str) -> String {
    format!("{{# go: {} #}}", raw.replace("#}", "# }"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(s: &str) -> String {
        let c = convert(s);
        assert!(c.issues.is_empty(), "{:?}", c.issues);
        c.output
    }

    #[test]
    fn basics() {
        assert_eq!(conv("a {{.A.B}} b\n"), "a {{ A.B }} b\n");
        assert_eq!(
            conv("{{if eq .T \"x\"}}1{{else if gt .N 2}}2{{else}}3{{end}}"),
            "{% if T == \"x\" %}1{% elif N > 2 %}2{% else %}3{% endif %}"
        );
        assert_eq!(
            conv("{{range .Items}}{{.Name}}{{end}}"),
            "{% for it in Items %}{{ it.Name }}{% endfor %}"
        );
        assert_eq!(
            conv("{{- range $i, $v := .M -}} {{$i}}={{$v}} {{- end}}"),
            "{%- for i, v in M|entries -%} {{ i }}={{ v }} {%- endfor %}"
        );
        assert_eq!(
            conv("{{with .Org}}{{.Name}}{{else}}none{{end}}"),
            "{% with w = Org %}{% if w %}{{ w.Name }}{% else %}none{% endif %}{% endwith %}"
        );
        assert_eq!(
            conv("{{printf \"%d/%v\" .A (len .B)}}"),
            "{{ \"%d/%s\"|format(A, B|length) }}"
        );
        assert_eq!(conv("{{/* note */}}"), "{# note #}");
        assert_eq!(conv("{{ .A | printf \"%s!\" }}"), "{{ \"%s!\"|format(A) }}");
        assert_eq!(conv("{{index .M \"k\" 1}}"), "{{ M[\"k\"][1] }}");
        assert_eq!(conv("{{(index .M \"k\").Name}}"), "{{ M[\"k\"].Name }}");
        assert_eq!(
            conv("{{if and .A (not .B)}}x{{end}}"),
            "{% if A and (not B) %}x{% endif %}"
        );
        assert_eq!(conv("{%x{{.A}}"), "{{ \"{%\" }}x{{ A }}");
        assert_eq!(conv("{ {{.A}} }"), "{ {{ A }} }");
    }

    #[test]
    fn reports_what_it_cannot_convert() {
        let c = convert("a\n{{template \"x\" .}}\n{{call .F}}\n{{if .A}}");
        let lines: Vec<usize> = c.issues.iter().map(|i| i.line).collect();
        assert_eq!(lines, [2, 3, 4]);
        assert!(c.output.contains("{# go: {{template \"x\" .}} #}"));
        assert!(c.output.ends_with("{% endif %}"));
    }
}
