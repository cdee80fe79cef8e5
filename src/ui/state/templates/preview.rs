//! One rendered preview: the three parts of a template rendered with a sample, wrapped to the
//! pane width (the HTML laid out for the terminal, and its source).

use super::*;

/// What rendering a sample needs besides the template set.
pub(super) struct RenderEnv<'a> {
    pub(super) now_ms: UnixMs,
    pub(super) to: &'a [String],
    pub(super) dashboard_hostname: &'a str,
}

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
pub(super) struct CacheKey {
    pub(super) name: String,
    pub(super) sample: Option<String>,
    pub(super) width: usize,
    pub(super) generation: u64,
}

/// One rendered template. Errors are `FILE:LINE: message (context)`.
#[derive(Debug, Clone)]
pub struct Preview {
    pub name: String,
    /// The sample rendered with.
    pub sample: Option<SampleChoice>,
    /// 1-based position of the sample and how many the template has (kept current as real
    /// samples arrive).
    pub sample_pos: (usize, usize),
    /// The recipients of a real notification's e-mail; `None`: the configured ones.
    pub to: Option<Vec<String>>,
    pub files: Vec<(Part, Origin, String)>,
    pub subject: Result<String, String>,
    /// Wrapped to the pane width.
    pub text: Result<Vec<String>, String>,
    pub html: Result<Vec<StyledLine>, String>,
    pub raw: Result<Vec<RawLine>, String>,
    /// The HTML as it would be sent, for `o`.
    pub html_source: Option<String>,
    pub(super) key: CacheKey,
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

/// Renders the three parts separately, so a broken HTML file still shows the text version.
pub(super) fn render(
    t: &Templates,
    key: CacheKey,
    sample: Option<SampleChoice>,
    sample_pos: (usize, usize),
    env: &RenderEnv,
) -> Preview {
    let name = key.name.clone();
    let files = t.info(&name).map(|i| i.parts).unwrap_or_default();
    let data: Result<Value, String> = match &sample {
        Some(s) => s.context(t, &name, env),
        None => Err(format!(
            "{name} has no sample data: add samples/{name}.json to the template directory"
        )),
    };
    let context = format!(
        "rendering {name} with {}",
        sample.as_ref().map_or("no sample", |s| s.describe())
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
        sample_pos,
        to: sample.as_ref().and_then(|s| s.to.clone()),
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
pub(super) fn wrap_styled(line: StyledLine, width: usize) -> Vec<StyledLine> {
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
pub(super) fn raw_lines(html: &str, width: usize) -> Vec<RawLine> {
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
