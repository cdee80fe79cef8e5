//! E-mail templates: the shipped set (embedded in the binary), a user directory that shadows it
//! file by file, and a safe minijinja renderer.
//!
//! A template `NAME` is three files, Tyk's pairing: `NAME.subject`, `NAME.text.tmpl` and
//! `NAME.html.tmpl`; HTML ones usually `{% extends "layout.html.tmpl" %}`. Sample data lives in
//! `samples/NAME.json` (and variants `samples/NAME.VARIANT.json`).
//!
//! Safety rules, enforced here rather than left to template authors:
//! - `.html.tmpl` output is HTML-escaped, so no alias, org name or address can inject markup;
//! - subjects lose newlines and other control characters (no header injection);
//! - undefined values are errors (`UndefinedBehavior::Strict`), reported as `FILE:LINE: …`.
//!
//! [`go::GoTemplate`] is the separate, Go-`html/template`-compatible environment for Tyk
//! webhook bodies; [`go_import`] converts Go templates to minijinja syntax.

pub mod budget;
pub mod cli;
pub mod context;
mod eml;
mod error;
pub mod export;
pub mod go;
pub mod go_import;
mod go_vars;
mod shipped;
mod terminal;
pub mod watch;

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::value::{Serde, Value};
use minijinja::{AutoEscape, Environment, Error, Output, State, UndefinedBehavior};
use serde::Serialize;

pub use context::{Developer, KeyRef, NamedRef, QuotaNotice, human_duration, rfc3339};
pub use eml::{build_message, from_mailbox, to_eml};
pub use error::{ErrorKind, TemplateError};
pub use export::ensure_user_copy;
pub use terminal::{SpanStyle, StyledLine, StyledSpan, html_to_terminal_text};

/// Largest template, sample or data file read. Templates are a few KiB; anything this big is
/// a mistake (a log file, a binary) and would only make the preview pane stall.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The shared HTML layout; not a template of its own.
pub const LAYOUT: &str = "layout.html.tmpl";

/// Directory shown for shipped files in errors and listings (as in the source tree).
pub const SHIPPED_DIR: &str = "email_templates";

/// `<config dir>/email_templates`: the user directory that shadows shipped templates.
pub fn user_dir(config_dir: &Path) -> PathBuf {
    config_dir.join("email_templates")
}

/// The three files of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Part {
    Subject,
    Text,
    Html,
}

impl Part {
    pub const ALL: [Part; 3] = [Part::Subject, Part::Text, Part::Html];

    pub fn suffix(self) -> &'static str {
        match self {
            Part::Subject => ".subject",
            Part::Text => ".text.tmpl",
            Part::Html => ".html.tmpl",
        }
    }

    pub fn file_name(self, name: &str) -> String {
        format!("{name}{}", self.suffix())
    }
}

/// Where a file was loaded from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Shipped,
    User(PathBuf),
}

/// A file of the template directory, by its path relative to the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileRole {
    /// `NAME.subject` / `.text.tmpl` / `.html.tmpl`, or the layout (`Part::Html`, name "layout").
    Template { name: String, part: Part },
    /// `samples/NAME.json` or `samples/NAME.VARIANT.json`; `id` is `NAME[.VARIANT]`.
    Sample { name: String, id: String },
}

/// Template names are plain identifiers so they are safe in paths, CLI args and file names.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 100
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn is_template_name(name: &str) -> bool {
    name != "layout" && !name.starts_with('_')
}

/// Classifies a path relative to a template directory; `None` for anything else (README,
/// editor swap files, stray files).
pub(crate) fn classify(rel: &Path) -> Option<FileRole> {
    let parts: Vec<&str> = rel
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [file] => Part::ALL.into_iter().find_map(|part| {
            let name = file.strip_suffix(part.suffix())?;
            valid_name(name).then(|| FileRole::Template {
                name: name.to_string(),
                part,
            })
        }),
        ["samples", file] => {
            let id = file.strip_suffix(".json")?;
            let (name, variant) = match id.split_once('.') {
                Some((n, v)) => (n, Some(v)),
                None => (id, None),
            };
            (valid_name(name) && variant.is_none_or(valid_name)).then(|| FileRole::Sample {
                name: name.to_string(),
                id: id.to_string(),
            })
        }
        _ => None,
    }
}

/// One loaded file: its text, or why it could not be used.
#[derive(Debug, Clone)]
struct Loaded {
    origin: Origin,
    /// How errors and listings name it.
    display: String,
    text: Result<Arc<str>, TemplateError>,
}

/// A rendered e-mail: subject (single line, no control characters), plain text and HTML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedEmail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// A sample data set of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleInfo {
    /// `NAME` or `NAME.VARIANT`; what [`Templates::sample`] takes.
    pub id: String,
    pub origin: Origin,
    pub display: String,
}

/// A template and where each of its files comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateInfo {
    pub name: String,
    /// (part, origin, display path) for each part that exists.
    pub parts: Vec<(Part, Origin, String)>,
    pub samples: Vec<SampleInfo>,
}

/// The loaded template set: shipped files overlaid by the user directory.
pub struct Templates {
    env: Environment<'static>,
    files: Arc<BTreeMap<String, Loaded>>,
    samples: BTreeMap<String, Loaded>,
    /// Template file name → display path, for error messages.
    displays: BTreeMap<String, String>,
    user_dir: Option<PathBuf>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("files", &self.files.keys().collect::<Vec<_>>())
            .field("samples", &self.samples.keys().collect::<Vec<_>>())
            .field("user_dir", &self.user_dir)
            .finish()
    }
}

impl Templates {
    /// The shipped set only.
    pub fn shipped() -> Templates {
        Self::build(collect_shipped(), None)
    }

    /// Shipped templates, shadowed file by file by `user_dir` when it exists. A missing user
    /// directory is fine; one that exists but cannot be listed is an error. Files that cannot be
    /// used (binary, too large, unreadable) are kept as errors and reported when rendered, so
    /// one broken file does not hide the others.
    pub fn load(user_dir: Option<&Path>) -> Result<Templates, TemplateError> {
        let (mut files, mut samples) = collect_shipped();
        if let Some(dir) = user_dir {
            overlay_user_dir(dir, &mut files, &mut samples)?;
        }
        Ok(Self::build(
            (files, samples),
            user_dir.map(Path::to_path_buf),
        ))
    }

    fn build(
        (files, samples): (BTreeMap<String, Loaded>, BTreeMap<String, Loaded>),
        user_dir: Option<PathBuf>,
    ) -> Templates {
        let files = Arc::new(files);
        let displays = files
            .iter()
            .map(|(k, v)| (k.clone(), v.display.clone()))
            .collect();
        let env = email_env(files.clone());
        Templates {
            env,
            files,
            samples,
            displays,
            user_dir,
        }
    }

    /// This set with `file` (`NAME.text.tmpl`, …) replaced by `text`, shown in errors as
    /// `display`: what `import-go` checks a converted template with before it is saved.
    pub fn with_file(&self, file: &str, display: &str, text: String) -> Templates {
        let mut files = (*self.files).clone();
        files.insert(
            file.to_string(),
            Loaded {
                origin: Origin::User(PathBuf::from(display)),
                display: display.to_string(),
                text: Ok(Arc::from(text)),
            },
        );
        Self::build((files, self.samples.clone()), self.user_dir.clone())
    }

    pub fn user_dir(&self) -> Option<&Path> {
        self.user_dir.as_deref()
    }

    /// Names of all templates (any of whose three files exists), sorted. The layout and
    /// partials (`_NAME.*`, for `{% include %}` / `{% import %}`) are not templates.
    pub fn names(&self) -> Vec<String> {
        let mut names = BTreeSet::new();
        for file in self.files.keys() {
            if let Some(FileRole::Template { name, .. }) = classify(Path::new(file))
                && is_template_name(&name)
            {
                names.insert(name);
            }
        }
        names.into_iter().collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        is_template_name(name)
            && Part::ALL
                .iter()
                .any(|p| self.files.contains_key(&p.file_name(name)))
    }

    /// Where each file of `name` comes from, and its samples.
    pub fn info(&self, name: &str) -> Option<TemplateInfo> {
        if !self.contains(name) {
            return None;
        }
        let parts = Part::ALL
            .into_iter()
            .filter_map(|p| {
                let f = self.files.get(&p.file_name(name))?;
                Some((p, f.origin.clone(), f.display.clone()))
            })
            .collect();
        Some(TemplateInfo {
            name: name.to_string(),
            parts,
            samples: self.samples_of(name),
        })
    }

    /// The samples of a template: `NAME` first, then its variants.
    pub fn samples_of(&self, name: &str) -> Vec<SampleInfo> {
        let mut out: Vec<SampleInfo> = self
            .samples
            .iter()
            .filter(|(id, _)| id.split('.').next() == Some(name))
            .map(|(id, s)| SampleInfo {
                id: id.clone(),
                origin: s.origin.clone(),
                display: s.display.clone(),
            })
            .collect();
        out.sort_by_key(|s| (s.id != name, s.id.clone()));
        out
    }

    /// The parsed sample `id` (`NAME` or `NAME.VARIANT`).
    pub fn sample(&self, id: &str) -> Result<serde_json::Value, TemplateError> {
        let loaded = self.samples.get(id).ok_or_else(|| {
            TemplateError::new(ErrorKind::NotFound, format!("no sample named {id:?}"))
        })?;
        let text = loaded.text.clone()?;
        parse_json(&text, &loaded.display)
    }

    /// Renders the three parts of `name` with `data`.
    pub fn render<T: Serialize + ?Sized>(
        &self,
        name: &str,
        data: &T,
    ) -> Result<RenderedEmail, TemplateError> {
        self.render_value(name, Value::from(Serde(data)))
    }

    /// Renders `name` with the sample `sample_id`; errors say which sample was used.
    pub fn render_sample(
        &self,
        name: &str,
        sample_id: &str,
    ) -> Result<RenderedEmail, TemplateError> {
        let display = self
            .samples
            .get(sample_id)
            .map(|s| s.display.clone())
            .unwrap_or_else(|| sample_id.to_string());
        let data = self
            .sample(sample_id)
            .map_err(|e| e.context(format!("loading the sample for {name}")))?;
        self.render(name, &data)
            .map_err(|e| e.context(format!("rendering {name} with {display}")))
    }

    /// Renders one part; what the preview pane calls for the visible tab.
    pub fn render_part(
        &self,
        name: &str,
        part: Part,
        ctx: &Value,
    ) -> Result<String, TemplateError> {
        if !self.contains(name) {
            return Err(self.unknown(name));
        }
        let file = part.file_name(name);
        let loaded = self.files.get(&file).ok_or_else(|| {
            TemplateError::new(
                ErrorKind::NotFound,
                format!("{name} has no {} file", part.suffix()),
            )
            .at(self.expected_path(&file), None)
        })?;
        // A file that could not be read: report its own located error, not the loader's.
        if let Err(e) = &loaded.text {
            return Err(e.clone());
        }
        let tmpl = self
            .env
            .get_template(&file)
            .map_err(|e| TemplateError::from_minijinja(&e, &self.displays))?;
        let out = budget::render(&tmpl, ctx.clone(), &self.displays)?;
        Ok(match part {
            Part::Subject => sanitize_header(&out),
            Part::Text | Part::Html => out,
        })
    }

    fn render_value(&self, name: &str, ctx: Value) -> Result<RenderedEmail, TemplateError> {
        Ok(RenderedEmail {
            subject: self.render_part(name, Part::Subject, &ctx)?,
            text: self.render_part(name, Part::Text, &ctx)?,
            html: self.render_part(name, Part::Html, &ctx)?,
        })
    }

    fn unknown(&self, name: &str) -> TemplateError {
        TemplateError::new(
            ErrorKind::NotFound,
            format!(
                "no template named {name:?} (known: {})",
                self.names().join(", ")
            ),
        )
    }

    /// Where a missing file would be looked for: the user directory if there is one.
    fn expected_path(&self, file: &str) -> String {
        match &self.user_dir {
            Some(dir) => dir.join(file).display().to_string(),
            None => format!("{SHIPPED_DIR}/{file}"),
        }
    }
}

fn collect_shipped() -> (BTreeMap<String, Loaded>, BTreeMap<String, Loaded>) {
    let mut files = BTreeMap::new();
    let mut samples = BTreeMap::new();
    for (rel, text) in shipped::FILES {
        let loaded = Loaded {
            origin: Origin::Shipped,
            display: format!("{SHIPPED_DIR}/{rel}"),
            text: Ok(Arc::from(*text)),
        };
        match classify(Path::new(rel)) {
            Some(FileRole::Template { .. }) => {
                files.insert(rel.to_string(), loaded);
            }
            Some(FileRole::Sample { id, .. }) => {
                samples.insert(id, loaded);
            }
            None => {}
        }
    }
    (files, samples)
}

/// Reads the user directory (and its `samples/`) over the shipped maps.
fn overlay_user_dir(
    dir: &Path,
    files: &mut BTreeMap<String, Loaded>,
    samples: &mut BTreeMap<String, Loaded>,
) -> Result<(), TemplateError> {
    let listed = match list_dir(dir) {
        Ok(listed) => listed,
        // No user directory: shipped templates only.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(TemplateError::new(
                ErrorKind::Io,
                format!("cannot read the template directory: {e}"),
            )
            .at(dir.display().to_string(), None));
        }
    };
    let mut entries: Vec<PathBuf> = listed.into_iter().map(|f| PathBuf::from(&f)).collect();
    let samples_dir = dir.join("samples");
    match list_dir(&samples_dir) {
        Ok(listed) => entries.extend(listed.into_iter().map(|f| Path::new("samples").join(f))),
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound) => {}
        // `samples` being a file, or unreadable: not fatal, but not silent either.
        Err(e) if samples_dir.is_dir() => {
            return Err(TemplateError::new(
                ErrorKind::Io,
                format!("cannot read the samples directory: {e}"),
            )
            .at(samples_dir.display().to_string(), None));
        }
        Err(_) => {}
    }
    for rel in entries {
        let Some(role) = classify(&rel) else { continue };
        let path = dir.join(&rel);
        let display = path.display().to_string();
        let loaded = Loaded {
            origin: Origin::User(path.clone()),
            text: read_text(&path, MAX_FILE_BYTES).map(Arc::from),
            display,
        };
        match role {
            FileRole::Template { .. } => {
                files.insert(rel.to_string_lossy().into_owned(), loaded);
            }
            FileRole::Sample { id, .. } => {
                samples.insert(id, loaded);
            }
        }
    }
    Ok(())
}

/// File names of a directory (not recursive), sorted.
fn list_dir(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(name) = entry.file_name().to_str() {
            out.push(name.to_string());
        }
    }
    out.sort();
    Ok(out)
}

/// Reads a UTF-8 text file of at most `limit` bytes, with a located error otherwise.
pub fn read_text(path: &Path, limit: u64) -> Result<String, TemplateError> {
    let at = |kind, msg: String| TemplateError::new(kind, msg).at(path.display().to_string(), None);
    let file = fs::File::open(path).map_err(|e| at(ErrorKind::Io, format!("cannot read: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| at(ErrorKind::Io, format!("cannot read: {e}")))?;
    if meta.is_dir() {
        return Err(at(ErrorKind::Io, "is a directory, not a file".into()));
    }
    if meta.len() > limit {
        return Err(at(
            ErrorKind::TooLarge,
            format!("file is {} bytes; the limit is {limit}", meta.len()),
        ));
    }
    // `take` guards against files that grow between the stat and the read.
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| at(ErrorKind::Io, format!("cannot read: {e}")))?;
    if bytes.len() as u64 > limit {
        return Err(at(
            ErrorKind::TooLarge,
            format!("file is larger than the limit of {limit} bytes"),
        ));
    }
    text_from_bytes(bytes).map_err(|msg| at(ErrorKind::NotText, msg))
}

fn text_from_bytes(bytes: Vec<u8>) -> Result<String, String> {
    if let Some(pos) = bytes.iter().position(|&b| b == 0) {
        return Err(format!("not a text file (NUL byte at offset {pos})"));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not a text file (invalid UTF-8 at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Parses JSON data with a `FILE:LINE` error.
pub fn parse_json(text: &str, display: &str) -> Result<serde_json::Value, TemplateError> {
    serde_json::from_str(text).map_err(|e| {
        TemplateError::new(
            ErrorKind::Data,
            format!("invalid JSON: {e}").replace(&format!(" at line {}", e.line()), ""),
        )
        .at(display.to_string(), Some(e.line()))
    })
}

/// Makes text safe for a mail header: every run of whitespace (CR, LF, tab, U+2028, …) becomes
/// one space, other control and bidi-override characters are dropped, ends are trimmed.
pub fn sanitize_header(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for ch in s.chars() {
        if ch.is_whitespace() {
            space = !out.is_empty();
        } else if ch.is_control() || is_bidi_control(ch) {
            // dropped
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(ch);
        }
    }
    out
}

/// Characters that reorder displayed text (used to disguise subjects and file names).
fn is_bidi_control(ch: char) -> bool {
    matches!(ch, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

// ---------------------------------------------------------------------------------------------
// The e-mail environment
// ---------------------------------------------------------------------------------------------

fn email_env(files: Arc<BTreeMap<String, Loaded>>) -> Environment<'static> {
    let mut env = Environment::new();
    configure_common(&mut env);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html.tmpl") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env.set_formatter(email_formatter);
    env.add_filter("thousands", filter_thousands);
    env.add_filter("percent", filter_percent);
    env.add_filter("href", filter_href);
    env.add_filter("mask_key", filter_mask_key);
    env.add_filter("rfc3339", filter_rfc3339);
    env.add_filter("duration", filter_duration);
    // The set is rebuilt when files change (see `watch`); no per-lookup freshness checks.
    env.set_auto_reload(false);
    env.set_loader(move |name| match files.get(name) {
        Some(Loaded { text: Ok(text), .. }) => Ok(Some(text.to_string())),
        Some(Loaded {
            text: Err(e),
            display,
            ..
        }) => Err(Error::new(
            minijinja::ErrorKind::TemplateNotFound,
            format!("{display} cannot be used: {}", e.message),
        )),
        None => Ok(None),
    });
    env
}

/// Settings both environments share: Go-like whitespace (keep the final newline, no block
/// trimming, so converted Go templates render alike), strict undefined, `entries`.
pub(crate) fn configure_common(env: &mut Environment<'static>) {
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build();
    // The default delimiters always build; keep the default syntax if that ever changes.
    if let Ok(syntax) = syntax {
        env.set_syntax(syntax);
    }
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(budget::FUEL));
    // Debug mode names the undefined expression (`org.nmae` is undefined); its cost is only
    // paid when an error is built.
    env.set_debug(true);
    env.add_filter("entries", filter_entries);
}

/// Integral floats print as integers (`80`, not `80.0`), so thresholds read naturally. HTML
/// escaping covers `& < > " '`: enough for text and quoted attributes, and unlike minijinja's
/// default it leaves `/` alone, so URLs and paths stay readable in the source.
fn email_formatter(out: &mut Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if value.is_safe() {
        return minijinja::escape_formatter(out, state, value);
    }
    let text = match integral(value) {
        Some(i) => i.to_string(),
        None if value.is_undefined() || matches!(state.auto_escape(), AutoEscape::None) => {
            return minijinja::escape_formatter(out, state, value);
        }
        None => value.to_string(),
    };
    match state.auto_escape() {
        AutoEscape::Html => html_escape(&text, out).map_err(Error::from),
        _ => out.write_str(&text).map_err(Error::from),
    }
}

fn html_escape(s: &str, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    // Byte scan: every escaped character is ASCII, so slicing at its index stays on a char
    // boundary.
    let mut last = 0;
    for (i, b) in s.bytes().enumerate() {
        let rep = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&#39;",
            _ => continue,
        };
        out.write_str(&s[last..i])?;
        out.write_str(rep)?;
        last = i + 1;
    }
    out.write_str(&s[last..])
}

/// The value as an integer if it is a number without a fractional part. (Avoids `as_i64`,
/// whose failure path formats an error message: measurable per printed value.)
fn integral(value: &Value) -> Option<i64> {
    let f = number_arg(value)?;
    (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i64)
}

fn number_arg(value: &Value) -> Option<f64> {
    if !value.is_number() {
        return None;
    }
    f64::try_from(value.clone()).ok()
}

/// `100000|thousands` → `100,000`. Non-numbers pass through unchanged.
fn filter_thousands(value: Value) -> Value {
    let Some(n) = number_arg(&value) else {
        return value;
    };
    let rounded = n.round();
    if !rounded.is_finite() || rounded.abs() >= 1e18 {
        return value;
    }
    let i = rounded as i64;
    let digits = i.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if i < 0 {
        out.push('-');
    }
    for (idx, ch) in digits.chars().enumerate() {
        if idx > 0 && (digits.len() - idx).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    Value::from(out)
}

/// `85|percent` → `85%`, `87.456|percent` → `87.5%`.
fn filter_percent(value: Value) -> Value {
    let Some(n) = number_arg(&value) else {
        return value;
    };
    let tenths = (n * 10.0).round() / 10.0;
    if tenths.fract() == 0.0 && tenths.abs() < 1e15 {
        Value::from(format!("{}%", tenths as i64))
    } else {
        Value::from(format!("{tenths:.1}%"))
    }
}

/// Only `http`, `https` and `mailto` URLs make it into an `href`; anything else (e.g.
/// `javascript:`) becomes `#`. Escaping still applies to the result.
fn filter_href(value: Value) -> Value {
    let Some(s) = value.as_str() else {
        return Value::from("#");
    };
    let s = s.trim();
    let lower = s.to_ascii_lowercase();
    let ok = ["http://", "https://", "mailto:"]
        .iter()
        .any(|p| lower.starts_with(p))
        && !s.chars().any(|c| c.is_control() || c.is_whitespace());
    Value::from(if ok { s } else { "#" })
}

/// Masks an API key as the console does (`5e9d…ef6d`); for Tyk payloads that carry raw keys.
fn filter_mask_key(value: Value) -> Value {
    match value.as_str() {
        Some("") | None => value,
        Some(s) => Value::from(crate::quota::mask_key(s)),
    }
}

/// Unix seconds → RFC 3339 UTC; non-numbers pass through.
fn filter_rfc3339(value: Value) -> Value {
    match integral(&value) {
        Some(secs) => Value::from(rfc3339(secs)),
        None => value,
    }
}

/// Seconds → words (`3600|duration` → `1 hour`); non-numbers pass through.
fn filter_duration(value: Value) -> Value {
    match integral(&value) {
        Some(secs) => Value::from(human_duration(secs)),
        None => value,
    }
}

/// Go `range $k, $v := X`: map → (key, value) pairs sorted by key, sequence → (index, item).
fn filter_entries(value: Value) -> Result<Value, Error> {
    let pairs: Vec<Value> = match value.kind() {
        minijinja::value::ValueKind::Map => {
            let mut keys: Vec<Value> = value.try_iter()?.collect();
            keys.sort();
            keys.into_iter()
                .map(|k| {
                    let v = value.get_item(&k).unwrap_or_default();
                    Value::from(vec![k, v])
                })
                .collect()
        }
        minijinja::value::ValueKind::None | minijinja::value::ValueKind::Undefined => Vec::new(),
        _ => value
            .try_iter()?
            .enumerate()
            .map(|(i, v)| Value::from(vec![Value::from(i), v]))
            .collect(),
    };
    Ok(Value::from(pairs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_paths() {
        assert_eq!(
            classify(Path::new("quota_threshold.html.tmpl")),
            Some(FileRole::Template {
                name: "quota_threshold".into(),
                part: Part::Html
            })
        );
        assert_eq!(
            classify(Path::new("samples/api_event.created.json")),
            Some(FileRole::Sample {
                name: "api_event".into(),
                id: "api_event.created".into()
            })
        );
        assert_eq!(classify(Path::new("README.md")), None);
        assert_eq!(classify(Path::new(".quota_threshold.html.tmpl.swp")), None);
        assert_eq!(classify(Path::new("a b.subject")), None);
        assert_eq!(classify(Path::new("x/y.subject")), None);
    }

    #[test]
    fn header_sanitizing() {
        assert_eq!(
            sanitize_header(" Quota\r\nBcc: evil@x\t 80%\u{202e}\u{7}\n"),
            "Quota Bcc: evil@x 80%"
        );
    }

    #[test]
    fn filters() {
        assert_eq!(filter_thousands(Value::from(100000)).to_string(), "100,000");
        assert_eq!(filter_thousands(Value::from(-1234.4)).to_string(), "-1,234");
        assert_eq!(filter_thousands(Value::from(999)).to_string(), "999");
        assert_eq!(filter_percent(Value::from(85.0)).to_string(), "85%");
        assert_eq!(filter_percent(Value::from(87.456)).to_string(), "87.5%");
        assert_eq!(
            filter_href(Value::from("javascript:alert(1)")).to_string(),
            "#"
        );
        assert_eq!(
            filter_href(Value::from("https://a.example/x")).to_string(),
            "https://a.example/x"
        );
    }
}
