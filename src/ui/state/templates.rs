//! The Templates view's part of the state: the loaded template set, the selection, the sample
//! chosen per template, and the rendered preview, cached until the template, the sample, the
//! files on disk or the pane width change (rendering the screen never renders a template).

use std::collections::BTreeMap;
use std::path::PathBuf;

use minijinja::value::{Serde, Value};

use crate::templates::watch::Changed;
use crate::templates::{
    Origin, Part, SampleInfo, StyledLine, Templates, html_to_terminal_text, user_dir,
};
use crate::ui::sanitize::wrap_keep;
use crate::ui::table::clamp_offset;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    List,
    Preview,
}

/// What the preview body shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// The HTML version laid out for the terminal.
    Html,
    Text,
    /// The HTML source.
    Raw,
}

/// A line of HTML source; `in_tag` says whether it starts inside `<…>` (for colouring lines
/// that a long tag was wrapped onto).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    pub text: String,
    pub in_tag: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CacheKey {
    name: String,
    sample: Option<String>,
    width: usize,
    generation: u64,
}

/// One rendered template. Errors are `FILE:LINE: message (context)`.
#[derive(Debug, Clone)]
pub struct Preview {
    pub name: String,
    pub sample: Option<SampleInfo>,
    /// 1-based position of the sample and how many the template has.
    pub sample_pos: (usize, usize),
    pub files: Vec<(Part, Origin, String)>,
    pub subject: Result<String, String>,
    /// Wrapped to the pane width.
    pub text: Result<Vec<String>, String>,
    pub html: Result<Vec<StyledLine>, String>,
    pub raw: Result<Vec<RawLine>, String>,
    /// The HTML as it would be sent, for `o`.
    pub html_source: Option<String>,
    key: CacheKey,
}

impl Preview {
    /// Lines of the body `b` (an error counts as its wrapped lines, roughly one).
    pub fn body_len(&self, b: Body) -> usize {
        match b {
            Body::Html => self.html.as_ref().map_or(1, Vec::len),
            Body::Text => self.text.as_ref().map_or(1, Vec::len),
            Body::Raw => self.raw.as_ref().map_or(1, Vec::len),
        }
    }
}

pub struct TemplatesPane {
    user_dir: Option<PathBuf>,
    templates: Option<Templates>,
    /// The user directory could not be read (the shipped set is shown).
    load_error: Option<String>,
    /// Files changed on disk: reload before the next use.
    stale: bool,
    generation: u64,
    names: Vec<String>,
    /// Parallel to `names`: a user file shadows a shipped one.
    overridden: Vec<bool>,
    cursor: usize,
    offset: usize,
    /// The sample chosen per template (default: its first).
    samples: BTreeMap<String, String>,
    focus: Focus,
    body: Body,
    scroll: usize,
    preview: Option<Preview>,
    /// The directory watched for edits, or why it is not.
    watch: Option<Result<PathBuf, String>>,
    pub(super) from: String,
    pub(super) to: Vec<String>,
}

impl TemplatesPane {
    pub(super) fn new(config_dir: Option<PathBuf>, from: String, to: Vec<String>) -> Self {
        TemplatesPane {
            user_dir: config_dir.as_deref().map(user_dir),
            templates: None,
            load_error: None,
            stale: false,
            generation: 0,
            names: Vec::new(),
            overridden: Vec::new(),
            cursor: 0,
            offset: 0,
            samples: BTreeMap::new(),
            focus: Focus::List,
            body: Body::Html,
            scroll: 0,
            preview: None,
            watch: None,
            from,
            to,
        }
    }

    // ---- read side ----

    pub fn names(&self) -> &[String] {
        &self.names
    }
    pub fn overridden(&self, i: usize) -> bool {
        self.overridden.get(i).copied().unwrap_or(false)
    }
    pub fn cursor(&self) -> usize {
        self.cursor
    }
    pub fn offset(&self) -> usize {
        self.offset
    }
    pub fn selected(&self) -> Option<&str> {
        self.names.get(self.cursor).map(String::as_str)
    }
    pub fn focus(&self) -> Focus {
        self.focus
    }
    pub fn body(&self) -> Body {
        self.body
    }
    pub fn scroll(&self) -> usize {
        self.scroll
    }
    pub fn preview(&self) -> Option<&Preview> {
        self.preview.as_ref()
    }
    pub fn load_error(&self) -> Option<&str> {
        self.load_error.as_deref()
    }
    pub fn watch(&self) -> Option<&Result<PathBuf, String>> {
        self.watch.as_ref()
    }
    pub fn user_dir(&self) -> Option<&std::path::Path> {
        self.user_dir.as_deref()
    }
    pub fn from(&self) -> &str {
        &self.from
    }
    pub fn to(&self) -> &[String] {
        &self.to
    }
    /// The samples of the selected template.
    pub fn samples(&self) -> Vec<SampleInfo> {
        match (&self.templates, self.selected()) {
            (Some(t), Some(name)) => t.samples_of(name),
            _ => Vec::new(),
        }
    }
    pub fn sample_id(&self) -> Option<String> {
        let name = self.selected()?;
        let samples = self.samples();
        self.samples
            .get(name)
            .filter(|id| samples.iter().any(|s| &s.id == *id))
            .cloned()
            .or_else(|| samples.first().map(|s| s.id.clone()))
    }

    // ---- write side ----

    pub(super) fn set_watch(&mut self, w: Result<PathBuf, String>) {
        self.watch = Some(w);
    }

    /// Files changed on disk. Returns what to flash, if the set was loaded (otherwise it is
    /// read fresh when the view is first opened).
    pub(super) fn changed(&mut self, c: &Changed) -> Option<String> {
        self.templates.as_ref()?;
        self.stale = true;
        let names: Vec<&str> = c.names.iter().map(String::as_str).collect();
        Some(if c.all || names.is_empty() {
            "templates changed on disk: reloaded".to_string()
        } else {
            format!("reloaded {} (changed on disk)", names.join(", "))
        })
    }

    /// Loads the set when first needed or after a change on disk. Called by the state, never
    /// while drawing.
    pub(super) fn ensure_loaded(&mut self) {
        if self.templates.is_none() || self.stale {
            self.reload();
        }
    }

    /// Re-renders when the template, sample, files or width changed (after `ensure_loaded`,
    /// whose names decide the layout and so the width).
    pub(super) fn refresh(&mut self, width: usize, list_rows: usize) {
        self.offset = clamp_offset(self.offset, self.cursor, list_rows, self.names.len());
        let Some(name) = self.selected().map(str::to_string) else {
            self.preview = None;
            return;
        };
        let key = CacheKey {
            sample: self.sample_id(),
            name,
            width,
            generation: self.generation,
        };
        if self.preview.as_ref().is_some_and(|p| p.key == key) {
            return;
        }
        // Another template or sample starts at the top; an edit on disk keeps the place.
        let same = self
            .preview
            .as_ref()
            .is_some_and(|p| p.key.name == key.name && p.key.sample == key.sample);
        if !same {
            self.scroll = 0;
        }
        if let Some(t) = &self.templates {
            self.preview = Some(render(t, key));
        }
    }

    fn reload(&mut self) {
        let keep = self.selected().map(str::to_string);
        match Templates::load(self.user_dir.as_deref()) {
            Ok(t) => {
                self.templates = Some(t);
                self.load_error = None;
            }
            Err(e) => {
                if self.templates.is_none() {
                    self.templates = Some(Templates::shipped());
                }
                self.load_error = Some(e.to_string());
            }
        }
        self.stale = false;
        self.generation += 1;
        let t = self.templates.as_ref();
        self.names = t.map(Templates::names).unwrap_or_default();
        self.overridden = self
            .names
            .iter()
            .map(|n| {
                t.and_then(|t| t.info(n)).is_some_and(|i| {
                    i.parts.iter().any(|(_, o, _)| matches!(o, Origin::User(_)))
                        || i.samples
                            .iter()
                            .any(|s| matches!(s.origin, Origin::User(_)))
                })
            })
            .collect();
        if let Some(pos) = keep.and_then(|k| self.names.iter().position(|n| *n == k)) {
            self.cursor = pos;
        }
        self.cursor = self.cursor.min(self.names.len().saturating_sub(1));
    }

    pub(super) fn move_list(&mut self, row: usize, rows: usize) {
        if self.names.is_empty() {
            return;
        }
        self.cursor = row.min(self.names.len() - 1);
        self.offset = clamp_offset(self.offset, self.cursor, rows, self.names.len());
    }

    pub(super) fn scroll_to(&mut self, line: usize, rows: usize) {
        let len = self.preview.as_ref().map_or(0, |p| p.body_len(self.body));
        self.scroll = line.min(len.saturating_sub(rows.max(1)));
    }

    pub(super) fn toggle_focus(&mut self) {
        self.focus = match self.focus {
            Focus::List => Focus::Preview,
            Focus::Preview => Focus::List,
        };
    }

    pub(super) fn set_focus(&mut self, f: Focus) {
        self.focus = f;
    }

    pub(super) fn set_body(&mut self, b: Body) {
        if self.body != b {
            self.body = b;
            self.scroll = 0;
        }
    }

    /// Steps through the selected template's samples; false when it has at most one.
    pub(super) fn step_sample(&mut self, delta: isize) -> bool {
        let samples = self.samples();
        if samples.len() < 2 {
            return false;
        }
        let cur = self
            .sample_id()
            .and_then(|id| samples.iter().position(|s| s.id == id))
            .unwrap_or(0);
        let n = samples.len() as isize;
        let next = (cur as isize + delta).rem_euclid(n) as usize;
        self.choose_sample(samples[next].id.clone());
        true
    }

    pub(super) fn choose_sample(&mut self, id: String) {
        if let Some(name) = self.selected().map(str::to_string) {
            self.samples.insert(name, id);
        }
    }
}

/// Renders the three parts separately, so a broken HTML file still shows the text version.
fn render(t: &Templates, key: CacheKey) -> Preview {
    let name = key.name.clone();
    let samples = t.samples_of(&name);
    let pos = key
        .sample
        .as_ref()
        .and_then(|id| samples.iter().position(|s| &s.id == id));
    let sample = pos.and_then(|p| samples.get(p)).cloned();
    let files = t.info(&name).map(|i| i.parts).unwrap_or_default();
    let data: Result<Value, String> = match &sample {
        Some(s) => t
            .sample(&s.id)
            .map(|v| Value::from(Serde(&v)))
            .map_err(|e| {
                e.context(format!("loading the sample for {name}"))
                    .to_string()
            }),
        None => Err(format!(
            "{name} has no sample data: add samples/{name}.json to the template directory"
        )),
    };
    let context = format!(
        "rendering {name} with {}",
        sample.as_ref().map_or("no sample", |s| s.display.as_str())
    );
    let part = |p: Part| -> Result<String, String> {
        let ctx = data.as_ref().map_err(Clone::clone)?;
        t.render_part(&name, p, ctx)
            .map_err(|e| e.context(context.clone()).to_string())
    };
    let subject = part(Part::Subject);
    let text = part(Part::Text).map(|s| wrap_keep(&s, key.width));
    let html_source = part(Part::Html);
    let html = html_source.as_ref().map_err(Clone::clone).and_then(|h| {
        html_to_terminal_text(h, key.width)
            .map(|lines| {
                lines
                    .into_iter()
                    .flat_map(|l| wrap_styled(l, key.width))
                    .collect()
            })
            .map_err(|e| e.to_string())
    });
    let raw = html_source
        .as_ref()
        .map(|h| raw_lines(h, key.width))
        .map_err(Clone::clone);
    Preview {
        name,
        sample_pos: (pos.map_or(0, |p| p + 1), samples.len()),
        sample,
        files,
        subject,
        text,
        html,
        raw,
        html_source: html_source.ok(),
        key,
    }
}

/// Splits a styled line wider than `width` (long footnote URLs) at character boundaries.
fn wrap_styled(line: StyledLine, width: usize) -> Vec<StyledLine> {
    use unicode_width::UnicodeWidthChar;
    let width = width.max(1);
    if crate::ui::sanitize::width(&line.text()) <= width {
        return vec![line];
    }
    let mut out = vec![StyledLine::default()];
    let mut w = 0;
    for span in line.spans {
        let mut piece = String::new();
        for c in span.text.chars() {
            let cw = c.width().unwrap_or(0);
            if w + cw > width && w > 0 {
                if let Some(last) = out.last_mut() {
                    last.spans.push(crate::templates::StyledSpan {
                        text: std::mem::take(&mut piece),
                        style: span.style,
                    });
                }
                out.push(StyledLine::default());
                w = 0;
            }
            piece.push(c);
            w += cw;
        }
        if let Some(last) = out.last_mut()
            && !piece.is_empty()
        {
            last.spans.push(crate::templates::StyledSpan {
                text: piece,
                style: span.style,
            });
        }
    }
    out
}

/// The HTML source wrapped to `width`, each line knowing whether it starts inside a tag.
fn raw_lines(html: &str, width: usize) -> Vec<RawLine> {
    let mut out = Vec::new();
    let mut in_tag = false;
    for line in wrap_keep(html, width) {
        let start = in_tag;
        for c in line.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                _ => {}
            }
        }
        out.push(RawLine {
            text: line,
            in_tag: start,
        });
    }
    out
}
