//! HTML e-mail → styled terminal lines, for the preview pane. Plain owned data (no ratatui
//! types) so the UI maps it to its own styles.

use html2text::render::RichAnnotation;

use super::{ErrorKind, TemplateError};

/// Text attributes of a span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SpanStyle {
    pub bold: bool,
    pub italic: bool,
    pub underline: bool,
    pub strikeout: bool,
    /// `<code>` / `<pre>`.
    pub code: bool,
    /// Secondary text: link footnote markers and the footnote list.
    pub dim: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StyledSpan {
    pub text: String,
    pub style: SpanStyle,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StyledLine {
    pub spans: Vec<StyledSpan>,
}

impl StyledLine {
    /// The line without styles.
    pub fn text(&self) -> String {
        self.spans.iter().map(|s| s.text.as_str()).collect()
    }

    fn push(&mut self, text: String, style: SpanStyle) {
        match self.spans.last_mut() {
            Some(last) if last.style == style => last.text.push_str(&text),
            _ => self.spans.push(StyledSpan { text, style }),
        }
    }
}

/// Narrowest width laid out; html2text fails on very narrow columns.
const MIN_WIDTH: usize = 20;

/// Lays out an HTML e-mail in `width` columns: `<strong>` bold, `<em>` italic, links
/// underlined with numbered footnotes (`[1]`, listed at the end), lists and tables as text.
/// The hidden preheader (between `<!-- preheader -->` markers) is left out, as mail clients
/// do.
pub fn html_to_terminal_text(html: &str, width: usize) -> Result<Vec<StyledLine>, TemplateError> {
    let html = strip_preheader(html);
    let lines = html2text::config::rich()
        .no_table_borders()
        .lines_from_read(html.as_bytes(), width.max(MIN_WIDTH))
        .map_err(|e| {
            TemplateError::new(
                ErrorKind::Render,
                format!("cannot lay out the HTML in {width} columns: {e}"),
            )
        })?;

    // Flatten to (line, text, style, link) so a link wrapped over two lines counts once.
    struct Piece {
        line: usize,
        text: String,
        style: SpanStyle,
        link: Option<String>,
    }
    let mut pieces = Vec::new();
    for (line, tagged) in lines.iter().enumerate() {
        for ts in tagged.tagged_strings() {
            let mut style = SpanStyle::default();
            let mut link = None;
            for ann in &ts.tag {
                match ann {
                    RichAnnotation::Strong => style.bold = true,
                    RichAnnotation::Emphasis => style.italic = true,
                    RichAnnotation::Strikeout => style.strikeout = true,
                    RichAnnotation::Code | RichAnnotation::Preformat(_) => style.code = true,
                    RichAnnotation::Link(url) => {
                        style.underline = true;
                        link = Some(url.clone());
                    }
                    RichAnnotation::Image(_) => style.dim = true,
                    _ => {}
                }
            }
            pieces.push(Piece {
                line,
                text: ts.s.clone(),
                style,
                link,
            });
        }
    }

    let mut out: Vec<StyledLine> = vec![StyledLine::default(); lines.len()];
    let mut footnotes: Vec<String> = Vec::new();
    let mut run_text = String::new();
    for (i, p) in pieces.iter().enumerate() {
        if let Some(line) = out.get_mut(p.line) {
            line.push(p.text.clone(), p.style);
        }
        let Some(url) = &p.link else { continue };
        run_text.push_str(p.text.trim());
        let continues = pieces
            .get(i + 1)
            .is_some_and(|next| next.link.as_deref() == Some(url.as_str()));
        if continues {
            continue;
        }
        // A link whose text is its address needs no footnote.
        let shows_url = run_text.trim_start_matches("mailto:") == url.trim_start_matches("mailto:");
        run_text.clear();
        if shows_url || url.starts_with('#') {
            continue;
        }
        let n = match footnotes.iter().position(|u| u == url) {
            Some(pos) => pos + 1,
            None => {
                footnotes.push(url.clone());
                footnotes.len()
            }
        };
        if let Some(line) = out.get_mut(p.line) {
            let dim = SpanStyle {
                dim: true,
                ..SpanStyle::default()
            };
            line.push(format!("[{n}]"), dim);
        }
    }

    // html2text pads with blank lines; keep at most one in a row.
    let mut lines: Vec<StyledLine> = Vec::with_capacity(out.len() + footnotes.len() + 1);
    for mut line in out {
        trim_end(&mut line);
        let blank = line.spans.is_empty();
        let prev_blank = lines.last().is_none_or(|l: &StyledLine| l.spans.is_empty());
        if blank && prev_blank {
            continue;
        }
        lines.push(line);
    }
    if lines.last().is_some_and(|l| l.spans.is_empty()) {
        lines.pop();
    }
    if !footnotes.is_empty() {
        lines.push(StyledLine::default());
        for (i, url) in footnotes.iter().enumerate() {
            let mut line = StyledLine::default();
            line.push(
                format!("[{}]: {url}", i + 1),
                SpanStyle {
                    dim: true,
                    ..SpanStyle::default()
                },
            );
            lines.push(line);
        }
    }
    Ok(lines)
}

/// Drops the padding html2text puts after table cells.
fn trim_end(line: &mut StyledLine) {
    while let Some(last) = line.spans.last_mut() {
        let kept = last.text.trim_end().len();
        if kept == 0 {
            line.spans.pop();
        } else {
            last.text.truncate(kept);
            break;
        }
    }
}

fn strip_preheader(html: &str) -> std::borrow::Cow<'_, str> {
    const START: &str = "<!-- preheader -->";
    const END: &str = "<!-- /preheader -->";
    match (html.find(START), html.find(END)) {
        (Some(s), Some(e)) if s < e => {
            let mut out = String::with_capacity(html.len());
            out.push_str(&html[..s]);
            out.push_str(&html[e + END.len()..]);
            out.into()
        }
        _ => html.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_links_and_footnotes() {
        let html = "<!-- preheader --><div>hidden</div><!-- /preheader -->\
            <p>Hello <strong>bold</strong> <em>it</em> <a href=\"https://x.example/a\">here</a> \
            and <a href=\"https://x.example/a\">again</a> \
            <a href=\"https://y.example\">https://y.example</a></p><ul><li>one</li></ul>";
        let lines = html_to_terminal_text(html, 80).unwrap();
        let text: Vec<String> = lines.iter().map(StyledLine::text).collect();
        assert!(!text.join("\n").contains("hidden"), "{text:?}");
        assert!(text[0].contains("here[1]"), "{text:?}");
        assert!(text[0].contains("again[1]"), "{text:?}");
        assert!(!text[0].contains("y.example[2]"), "{text:?}");
        assert!(text.iter().any(|l| l.contains("one")));
        assert_eq!(text.last().unwrap(), "[1]: https://x.example/a");
        let bold = lines[0].spans.iter().find(|s| s.text == "bold").unwrap();
        assert!(bold.style.bold);
        let link = lines[0].spans.iter().find(|s| s.text == "here").unwrap();
        assert!(link.style.underline);
    }
}
