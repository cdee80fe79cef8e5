//! The Templates view: the template list on the left, the preview of the selected one on the
//! right (subject, from, to, sample, then the HTML laid out for the terminal, the text version
//! or the HTML source). It draws the preview the state cached; it never renders a template.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::sanitize::{clean, fit, width, wrap_keep};
use super::state::{AppState, Body, Focus, Preview, RawLine};
use super::table::clamp_offset;
use super::theme::Theme;
use crate::templates::{Origin, Part, SpanStyle, StyledLine};

/// Rows above the body: subject, from, to, sample, the tab line.
const HEAD_ROWS: u16 = 5;
const LABEL_W: usize = 9;

pub(crate) struct Geometry {
    pub list: Rect,
    pub list_inner: Rect,
    pub preview: Rect,
    pub head: Rect,
    pub body: Rect,
}

/// The list is as wide as the longest name (plus the marks), within a third of the body.
pub(crate) fn geometry(area: Rect, names: &[String]) -> Geometry {
    let longest = names.iter().map(|n| width(n)).max().unwrap_or(12) as u16;
    let list_w = (longest + 5).clamp(14, 32).min(area.width / 3);
    let list = Rect::new(area.x, area.y, list_w, area.height);
    let preview = Rect::new(
        area.x + list_w,
        area.y,
        area.width.saturating_sub(list_w),
        area.height,
    );
    let list_inner = Block::bordered().inner(list);
    let inner = Block::bordered().inner(preview);
    let head_h = HEAD_ROWS.min(inner.height);
    let head = Rect::new(inner.x, inner.y, inner.width, head_h);
    let body = Rect::new(
        inner.x,
        inner.y + head_h,
        inner.width,
        inner.height.saturating_sub(head_h),
    );
    Geometry {
        list,
        list_inner,
        preview,
        head,
        body,
    }
}

fn border(theme: &Theme, focused: bool) -> Style {
    Style::new().fg(if focused {
        theme.border_focused
    } else {
        theme.border
    })
}

pub(crate) fn render(state: &AppState, theme: &Theme, frame: &mut Frame, area: Rect) {
    let t = state.templates();
    let g = geometry(area, t.names());
    render_list(state, theme, frame, &g);

    let focused = t.focus() == Focus::Preview;
    let mut block = Block::bordered().border_style(border(theme, focused));
    let preview = t.preview();
    if let Some(p) = preview {
        let (source, user) = source(p);
        let mut title = vec![Span::styled(
            format!(" {} ", fit(&p.name, 40)),
            Style::new().fg(theme.title).add_modifier(Modifier::BOLD),
        )];
        title.push(Span::styled(
            format!("{} ", fit(&source, usize::from(g.preview.width / 2))),
            Style::new().fg(if user { theme.info } else { theme.muted }),
        ));
        block = block.title(Line::from(title).alignment(Alignment::Center));
    }
    let watch = match t.watch() {
        Some(Ok(dir)) => Span::styled(
            format!(" ● watching {} ", dir.display()),
            Style::new().fg(theme.muted),
        ),
        Some(Err(e)) => Span::styled(
            format!(" not watching for edits: {e} — e copies the template there and edits it "),
            Style::new().fg(theme.warning_fg),
        ),
        None if t.user_dir().is_some() => {
            Span::styled(" not watching for edits ", Style::new().fg(theme.muted))
        }
        None => Span::styled(" shipped templates only ", Style::new().fg(theme.muted)),
    };
    // Leaves room on the right for the line position.
    let room = usize::from(g.preview.width).saturating_sub(18);
    block = block.title_bottom(Line::from(Span::styled(
        fit(&watch.content, room),
        watch.style,
    )));
    if let Some(p) = preview {
        let len = p.body_len(t.body());
        let rows = usize::from(g.body.height);
        if len > rows && rows > 0 {
            let top = t.scroll().min(len - rows);
            block = block.title_bottom(
                Line::styled(
                    format!(" {}-{}/{len} ", top + 1, top + rows),
                    Style::new().fg(theme.muted),
                )
                .alignment(Alignment::Right),
            );
        }
    }
    frame.render_widget(block, g.preview);

    let Some(p) = preview else {
        let text = if t.names().is_empty() {
            "no templates"
        } else {
            "…"
        };
        frame.render_widget(
            Paragraph::new(Line::styled(text, Style::new().fg(theme.muted))),
            g.head,
        );
        return;
    };
    frame.render_widget(Paragraph::new(head_lines(state, theme, p, &g)), g.head);
    frame.render_widget(Paragraph::new(body_lines(state, theme, p, &g)), g.body);
}

/// Where the files come from: "shipped", or the user files that shadow shipped ones.
fn source(p: &Preview) -> (String, bool) {
    let user: Vec<&str> = p
        .files
        .iter()
        .filter(|(_, o, _)| matches!(o, Origin::User(_)))
        .map(|(part, _, _)| match part {
            Part::Subject => "subject",
            Part::Text => "text",
            Part::Html => "html",
        })
        .collect();
    if user.is_empty() {
        ("(shipped)".into(), false)
    } else {
        (format!("(user: {})", user.join(", ")), true)
    }
}

fn render_list(state: &AppState, theme: &Theme, frame: &mut Frame, g: &Geometry) {
    let t = state.templates();
    let focused = t.focus() == Focus::List;
    let n = t.names().len();
    let block = Block::bordered()
        .border_style(border(theme, focused))
        .title(
            Line::styled(
                format!(" templates[{n}] "),
                Style::new().fg(theme.title).add_modifier(Modifier::BOLD),
            )
            .alignment(Alignment::Center),
        );
    frame.render_widget(block, g.list);
    let inner = g.list_inner;
    let mut rows = usize::from(inner.height);
    if let Some(e) = t.load_error()
        && inner.height > 1
    {
        // The user directory could not be read: say so on the last row.
        rows -= 1;
        let area = Rect::new(inner.x, inner.bottom() - 1, inner.width, 1);
        frame.render_widget(
            Paragraph::new(Line::styled(
                fit(&format!("⚠ {e}"), usize::from(inner.width)),
                Style::new().fg(theme.warning_fg),
            )),
            area,
        );
    }
    let offset = clamp_offset(t.offset(), t.cursor(), rows.max(1), n);
    let w = usize::from(inner.width);
    let lines: Vec<Line> = t
        .names()
        .iter()
        .enumerate()
        .skip(offset)
        .take(rows)
        .map(|(i, name)| {
            let mark = if t.overridden(i) { "✎" } else { " " };
            let name = fit(name, w.saturating_sub(3));
            let pad = " ".repeat(w.saturating_sub(width(&name) + 3));
            let line = Line::from(vec![
                Span::raw(format!(" {name}{pad}")),
                Span::styled(format!("{mark} "), Style::new().fg(theme.info)),
            ]);
            if i == t.cursor() {
                let mut style = Style::new().fg(theme.selection_fg).bg(theme.selection_bg);
                if focused {
                    style = style.add_modifier(Modifier::BOLD);
                }
                line.style(style)
            } else {
                line
            }
        })
        .collect();
    let area = Rect::new(inner.x, inner.y, inner.width, rows as u16);
    frame.render_widget(Paragraph::new(lines), area);
}

fn head_lines(state: &AppState, theme: &Theme, p: &Preview, g: &Geometry) -> Vec<Line<'static>> {
    let t = state.templates();
    let w = usize::from(g.head.width);
    let vw = w.saturating_sub(LABEL_W);
    let label = |s: &str| {
        Span::styled(
            format!("{s:<LABEL_W$}"),
            Style::new().fg(theme.header_label),
        )
    };
    let error = Style::new().fg(theme.error_fg).bg(theme.error_bg);
    let subject = match &p.subject {
        Ok(s) => Span::styled(fit(s, vw), Style::new().add_modifier(Modifier::BOLD)),
        Err(e) => Span::styled(fit(&format!("✖ {e}"), vw), error),
    };
    let to = if let Some(to) = &p.to {
        // A real notification's own recipients.
        Span::raw(fit(&to.join(", "), vw))
    } else if t.to().is_empty() {
        Span::styled(
            fit("(notify.email_to is empty)", vw),
            Style::new().fg(theme.muted),
        )
    } else {
        Span::raw(fit(&t.to().join(", "), vw))
    };
    let sample = match &p.sample {
        Some(s) => {
            // `quota_threshold (1/3) · path`, `event #42 key_request_event.submitted (4/4) ·
            // 3m ago · summary`.
            let (i, n) = p.sample_pos;
            let head = format!("{} ({i}/{n})", s.label);
            let rest = vw.saturating_sub(width(&head) + 3);
            let mut v = vec![Span::raw(fit(&head, vw))];
            let detail = match s.age(state.now_ms()) {
                Some(age) if s.detail.is_empty() => age,
                Some(age) => format!("{age} · {}", s.detail),
                None => s.detail.clone(),
            };
            if rest > 4 {
                v.push(Span::styled(
                    format!(" · {}", fit(&detail, rest)),
                    Style::new().fg(theme.muted),
                ));
            }
            v
        }
        None => vec![Span::styled("none", Style::new().fg(theme.warning_fg))],
    };
    let mut sample_line = vec![label("Sample")];
    sample_line.extend(sample);
    vec![
        Line::from(vec![label("Subject"), subject]),
        Line::from(vec![label("From"), Span::raw(fit(t.from(), vw))]),
        Line::from(vec![label("To"), to]),
        Line::from(sample_line),
        tabs(theme, t.body(), w),
    ]
}

/// `── html · text · raw ──…` with the shown one highlighted.
fn tabs(theme: &Theme, current: Body, w: usize) -> Line<'static> {
    let rule = Style::new().fg(theme.border);
    let mut spans = vec![Span::styled("── ", rule)];
    let mut used = 3;
    for (i, (b, name)) in [
        (Body::Html, "html"),
        (Body::Text, "text"),
        (Body::Raw, "raw"),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            spans.push(Span::styled(" · ", rule));
            used += 3;
        }
        let style = if b == current {
            Style::new()
                .fg(theme.title)
                .add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
        } else {
            Style::new().fg(theme.muted)
        };
        spans.push(Span::styled(name, style));
        used += name.len();
    }
    spans.push(Span::styled(
        format!(" {}", "─".repeat(w.saturating_sub(used + 1))),
        rule,
    ));
    Line::from(spans)
}

fn body_lines(state: &AppState, theme: &Theme, p: &Preview, g: &Geometry) -> Vec<Line<'static>> {
    let t = state.templates();
    let rows = usize::from(g.body.height);
    let w = usize::from(g.body.width);
    let len = p.body_len(t.body());
    let top = t.scroll().min(len.saturating_sub(rows));
    let err = |e: &str| -> Vec<Line<'static>> {
        let style = Style::new().fg(theme.error_fg).bg(theme.error_bg);
        let mut v = vec![Line::styled(
            "✖ render error",
            style.add_modifier(Modifier::BOLD),
        )];
        v.extend(
            wrap_keep(e, w)
                .into_iter()
                .map(|l| Line::styled(l, Style::new().fg(theme.band_exhausted))),
        );
        v
    };
    match t.body() {
        Body::Html => match &p.html {
            Ok(lines) => lines
                .iter()
                .skip(top)
                .take(rows)
                .map(|l| styled(theme, l, w))
                .collect(),
            Err(e) => err(e),
        },
        Body::Text => match &p.text {
            Ok(lines) => lines
                .iter()
                .skip(top)
                .take(rows)
                .map(|l| Line::raw(l.clone()))
                .collect(),
            Err(e) => err(e),
        },
        Body::Raw => match &p.raw {
            Ok(lines) => lines
                .iter()
                .skip(top)
                .take(rows)
                .map(|l| raw(theme, l))
                .collect(),
            Err(e) => err(e),
        },
    }
}

/// html2text's styles as the theme's: bold, italic, links underlined in the link colour,
/// footnote markers and images muted, code in the info colour.
fn span_style(theme: &Theme, s: SpanStyle) -> Style {
    let mut st = Style::new();
    if s.bold {
        st = st.add_modifier(Modifier::BOLD);
    }
    if s.italic {
        st = st.add_modifier(Modifier::ITALIC);
    }
    if s.strikeout {
        st = st.add_modifier(Modifier::CROSSED_OUT);
    }
    if s.underline {
        st = st.fg(theme.link).add_modifier(Modifier::UNDERLINED);
    }
    if s.code {
        st = st.fg(theme.info);
    }
    if s.dim {
        st = st.fg(theme.muted);
    }
    st
}

fn styled(theme: &Theme, l: &StyledLine, w: usize) -> Line<'static> {
    let mut used = 0;
    let mut spans = Vec::with_capacity(l.spans.len());
    for s in &l.spans {
        let room = w.saturating_sub(used);
        if room == 0 {
            break;
        }
        let text = fit(&s.text, room);
        used += width(&text);
        spans.push(Span::styled(text, span_style(theme, s.style)));
    }
    Line::from(spans)
}

/// HTML source with tags in the info colour.
fn raw(theme: &Theme, l: &RawLine) -> Line<'static> {
    let tag: Color = theme.info;
    let mut spans = Vec::new();
    let mut cur = String::new();
    let mut in_tag = l.in_tag;
    let flush = |cur: &mut String, in_tag: bool, spans: &mut Vec<Span<'static>>| {
        if !cur.is_empty() {
            let style = if in_tag {
                Style::new().fg(tag)
            } else {
                Style::new().fg(theme.foreground)
            };
            spans.push(Span::styled(clean(cur).into_owned(), style));
            cur.clear();
        }
    };
    for c in l.text.chars() {
        match c {
            '<' => {
                flush(&mut cur, in_tag, &mut spans);
                in_tag = true;
                cur.push(c);
            }
            '>' => {
                cur.push(c);
                flush(&mut cur, true, &mut spans);
                in_tag = false;
            }
            _ => cur.push(c),
        }
    }
    flush(&mut cur, in_tag, &mut spans);
    Line::from(spans)
}
