//! The Orgs view: the organisations of the source (Dashboard or org files) above, the selected
//! one's `event_options` as a form below — one row per event, webhook / e-mail / redis columns,
//! the field under the cursor in full (or its editor) with its validation — and, over them, the
//! save confirmation with the pending diff or the conflict with both sides.
//!
//! ```text
//! ┌ orgs[3] ───────────────────────────────┐
//! │  NAME              ID            EVENTS│
//! ├ Acme · event_options · 1 pending ──────┤
//! │  EVENT        WEBHOOK    EMAIL   REDIS │
//! │─────────────────────────────────────── │
//! │ api_event.webhook  https://…           │  field line (or the editor)
//! │ ✖ why the value is not valid           │  note line
//! └────────────────────────────────────────┘
//! ```
//!
//! Every document string came from the Dashboard or a file: all of it goes through `sanitize`.

use ratatui::Frame;
use ratatui::layout::{Alignment, Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::sanitize::{fit, fit_right, width, wrap, wrap_keep};
use super::state::{AppState, Confirm, ConflictView, FIELDS, OrgsPane, View, configured};
use super::table::clamp_offset;
use super::theme::Theme;
use super::widgets;
use crate::orgs::{Change, EventField, EventView};

/// Rows under the form's table: a rule, the field line and the note line.
const FIELD_PANEL: u16 = 3;

pub(crate) struct OrgsLayout {
    pub list: Rect,
    pub form: Rect,
}

/// The list takes what its rows need, up to a third of the body; the form the rest.
pub(crate) fn layout(body: Rect, orgs: usize) -> OrgsLayout {
    let cap = (body.height / 3).saturating_sub(3).max(1);
    let list_h = ((orgs.max(1) as u16).min(cap) + 3).min(body.height);
    OrgsLayout {
        list: Rect::new(body.x, body.y, body.width, list_h),
        form: Rect::new(
            body.x,
            body.y + list_h,
            body.width,
            body.height.saturating_sub(list_h),
        ),
    }
}

pub(crate) fn list_rows(l: &OrgsLayout) -> usize {
    usize::from(l.list.height.saturating_sub(3))
}

pub(crate) fn form_rows(l: &OrgsLayout) -> usize {
    usize::from(l.form.height.saturating_sub(3 + FIELD_PANEL))
}

pub(crate) fn render(state: &AppState, theme: &Theme, frame: &mut Frame, area: Rect) {
    let o = state.orgs();
    let source = match o.source() {
        Ok(s) => s,
        Err(why) => {
            message(
                theme,
                frame,
                area,
                " orgs ",
                &[(why.to_string(), Style::new().fg(theme.warning_fg))],
            );
            return;
        }
    };
    if !o.loaded() {
        let text = match (o.loading(), o.error()) {
            (_, Some(e)) => vec![
                (
                    format!("cannot load the organisations from {source}: {e}"),
                    Style::new().fg(theme.error_fg).bg(theme.error_bg),
                ),
                ("r retries".to_string(), Style::new().fg(theme.muted)),
            ],
            (true, None) => vec![(
                format!("loading the organisations from {source}…"),
                Style::new().fg(theme.muted),
            )],
            (false, None) => vec![(
                "not loaded yet — r loads the organisations".to_string(),
                Style::new().fg(theme.muted),
            )],
        };
        message(theme, frame, area, " orgs ", &text);
        return;
    }
    let l = layout(area, o.order().len());
    let form_focus = *state.view() == View::OrgForm;
    render_list(state, theme, frame, l.list, !form_focus);
    render_form(state, theme, frame, l.form, form_focus);
    if let Some(c) = o.conflict() {
        render_conflict(o, c, theme, frame, area);
    } else if let Some(c) = o.confirm() {
        render_confirm(o, c, theme, frame, area);
    }
}

/// A bordered pane with centred, wrapped lines.
fn message(theme: &Theme, frame: &mut Frame, area: Rect, title: &str, text: &[(String, Style)]) {
    let block = Block::bordered()
        .border_style(Style::new().fg(theme.border_focused))
        .title(
            Line::styled(
                title.to_string(),
                Style::new().fg(theme.title).add_modifier(Modifier::BOLD),
            )
            .alignment(Alignment::Center),
        );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let w = usize::from(inner.width.saturating_sub(4)).max(1);
    let lines: Vec<Line> = text
        .iter()
        .flat_map(|(t, style)| wrap(t, w).into_iter().map(move |l| Line::styled(l, *style)))
        .collect();
    let h = (lines.len() as u16).min(inner.height);
    let top = inner.y + inner.height.saturating_sub(h) / 2;
    frame.render_widget(
        Paragraph::new(lines).alignment(Alignment::Center),
        Rect::new(inner.x, top, inner.width, h),
    );
}

fn selection(theme: &Theme) -> Style {
    Style::new()
        .fg(theme.selection_fg)
        .bg(theme.selection_bg)
        .add_modifier(Modifier::BOLD)
}

fn render_list(state: &AppState, theme: &Theme, frame: &mut Frame, area: Rect, focused: bool) {
    let o = state.orgs();
    let n = o.order().len();
    let mut title = widgets::list_title(theme, "orgs", n, o.filter());
    if o.loading() {
        title.push(Span::styled("⟳ ", Style::new().fg(theme.muted)));
    }
    let border = if focused {
        theme.border_focused
    } else {
        theme.border
    };
    let mut block = Block::bordered()
        .border_style(Style::new().fg(border))
        .title(Line::from(title).alignment(Alignment::Center));
    if let Some(w) = o.warnings().first() {
        let more = o.warnings().len() - 1;
        let text = if more > 0 {
            format!(" {w} (+{more} more) ")
        } else {
            format!(" {w} ")
        };
        block = block.title_bottom(Line::styled(
            fit(&text, usize::from(area.width.saturating_sub(12))),
            Style::new().fg(theme.warning_fg),
        ));
    }
    if n > 0 {
        block = block.title_bottom(
            Line::styled(
                format!(" {}/{n} ", o.cursor() + 1),
                Style::new().fg(theme.muted),
            )
            .alignment(Alignment::Right),
        );
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let w = usize::from(inner.width);
    let id_w = if w >= 70 { 24 } else { 0 };
    let events_w = 6;
    let name_w = w.saturating_sub(2 + id_w + usize::from(id_w > 0) + events_w + 1);
    let id_head = if id_w > 0 {
        format!(" {}", pad("ID", id_w))
    } else {
        String::new()
    };
    let header = format!(
        "  {}{id_head} {}",
        pad("NAME", name_w),
        fit_right("EVENTS", events_w)
    );
    let mut lines = vec![Line::styled(
        fit(&header, w),
        Style::new()
            .fg(theme.table_header)
            .add_modifier(Modifier::BOLD),
    )];
    if n == 0 {
        let text = if o.filter().is_empty() {
            "no organisations at this source".to_string()
        } else {
            format!(
                "no organisation matches /{} — Esc clears the filter",
                fit(o.filter().text(), 40)
            )
        };
        lines.push(Line::styled(fit(&text, w), Style::new().fg(theme.muted)));
        frame.render_widget(Paragraph::new(lines), inner);
        return;
    }
    let visible = usize::from(inner.height.saturating_sub(1));
    let offset = clamp_offset(o.offset(), o.cursor(), visible, n);
    for (row, &i) in o.order().iter().enumerate().skip(offset).take(visible) {
        let Some(doc) = o.docs().get(i) else { continue };
        let id = doc.id();
        let pending = !o.changes(id).is_empty();
        let events = o.edited(id).map_or(0, |d| {
            d.events().iter().filter(|e| configured(&e.config)).count()
        });
        let name = if doc.name().is_empty() {
            "(no owner_name)"
        } else {
            doc.name()
        };
        let mut spans = vec![
            Span::styled(
                if pending { "● " } else { "  " },
                Style::new().fg(theme.warning_fg),
            ),
            Span::raw(pad(name, name_w)),
        ];
        if id_w > 0 {
            spans.push(Span::styled(
                format!(" {}", pad(id, id_w)),
                Style::new().fg(theme.muted),
            ));
        }
        spans.push(Span::raw(format!(
            " {}",
            fit_right(&events.to_string(), events_w)
        )));
        let mut line = Line::from(spans);
        if row == o.cursor() {
            line = line.style(if focused {
                selection(theme)
            } else {
                Style::new().fg(theme.title).add_modifier(Modifier::BOLD)
            });
        }
        lines.push(line);
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// `fit` padded on the right to exactly `w` cells.
fn pad(s: &str, w: usize) -> String {
    let f = fit(s, w);
    let n = w.saturating_sub(width(&f));
    format!("{f}{}", " ".repeat(n))
}

struct Cols {
    event: usize,
    webhook: usize,
    email: usize,
}

const REDIS_W: usize = 5;

fn columns(w: usize, events: &[EventView]) -> Cols {
    let longest = events.iter().map(|e| width(&e.name)).max().unwrap_or(5);
    let event = longest.clamp(5, 27).min((w / 3).max(5));
    let rest = w.saturating_sub(2 + event + 1 + 1 + 1 + REDIS_W);
    let webhook = rest * 55 / 100;
    Cols {
        event,
        webhook,
        email: rest.saturating_sub(webhook),
    }
}

fn value_of(e: &EventView, f: EventField) -> String {
    match f {
        EventField::Webhook => e.config.webhook.clone(),
        EventField::Email => e.config.email.clone(),
        EventField::Redis => if e.config.redis { "yes" } else { "no" }.to_string(),
    }
}

fn render_form(state: &AppState, theme: &Theme, frame: &mut Frame, area: Rect, focused: bool) {
    let o = state.orgs();
    let Some(doc) = o.selected() else {
        let block = Block::bordered().border_style(Style::new().fg(theme.border));
        frame.render_widget(block, area);
        return;
    };
    let id = doc.id();
    let pending = o.changes(id).len();
    let name = if doc.name().is_empty() {
        id
    } else {
        doc.name()
    };
    let mut title = vec![Span::styled(
        format!(
            " {} · event_options ",
            fit(name, usize::from(area.width.saturating_sub(40)).max(8))
        ),
        Style::new().fg(theme.title).add_modifier(Modifier::BOLD),
    )];
    if pending > 0 {
        title.push(Span::styled(
            format!("· {pending} pending "),
            Style::new()
                .fg(theme.warning_fg)
                .add_modifier(Modifier::BOLD),
        ));
    }
    if o.saving() == Some(id) {
        title.push(Span::styled("· saving… ", Style::new().fg(theme.info)));
    }
    if state.settings().readonly {
        title.push(Span::styled("· read-only ", Style::new().fg(theme.muted)));
    }
    let events = o.events();
    let n = events.len();
    let border = if focused {
        theme.border_focused
    } else {
        theme.border
    };
    let source = o.source().unwrap_or_default();
    let mut block = Block::bordered()
        .border_style(Style::new().fg(border))
        .title(Line::from(title).alignment(Alignment::Center))
        .title_bottom(Line::styled(
            fit(
                &format!(" {source} "),
                usize::from(area.width.saturating_sub(14)),
            ),
            Style::new().fg(theme.muted),
        ));
    if n > 0 && focused {
        block = block.title_bottom(
            Line::styled(
                format!(" {}/{n} ", o.row() + 1),
                Style::new().fg(theme.muted),
            )
            .alignment(Alignment::Right),
        );
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let w = usize::from(inner.width);
    let c = columns(w, &events);
    let head = Style::new()
        .fg(theme.table_header)
        .add_modifier(Modifier::BOLD);
    let mut lines = vec![Line::styled(
        fit(
            &format!(
                "  {} {} {} {}",
                pad("EVENT", c.event),
                pad("WEBHOOK", c.webhook),
                pad("EMAIL", c.email),
                pad("REDIS", REDIS_W)
            ),
            w,
        ),
        head,
    )];
    let table_rows = usize::from(inner.height.saturating_sub(1 + FIELD_PANEL)).max(1);
    let offset = clamp_offset(o.form_offset(), o.row(), table_rows, n);
    let editor = o.editor();
    for (row, e) in events.iter().enumerate().skip(offset).take(table_rows) {
        let loaded = o.loaded_config(&e.name);
        let changed = |f: EventField| loaded.get(f) != e.config.get(f);
        let any = FIELDS.iter().any(|f| changed(*f));
        let name_style = if !e.documented {
            Style::new().fg(theme.info).add_modifier(Modifier::ITALIC)
        } else if !e.present {
            Style::new().fg(theme.muted)
        } else {
            Style::new().fg(theme.foreground)
        };
        let mut spans = vec![
            Span::styled(
                if any { "● " } else { "  " },
                Style::new().fg(theme.warning_fg),
            ),
            Span::styled(pad(&e.name, c.event), name_style),
        ];
        for (f, cw) in [
            (EventField::Webhook, c.webhook),
            (EventField::Email, c.email),
            (EventField::Redis, REDIS_W),
        ] {
            let under_cursor = focused && row == o.row() && o.field() == f;
            let editing = editor.filter(|ed| under_cursor && ed.event == e.name && ed.field == f);
            let (text, mut style) = match editing {
                Some(ed) => (ed.text.clone(), Style::new().fg(theme.foreground)),
                None => {
                    let v = value_of(e, f);
                    if v.is_empty() {
                        ("-".to_string(), Style::new().fg(theme.muted))
                    } else if changed(f) {
                        (
                            v,
                            Style::new()
                                .fg(theme.warning_fg)
                                .add_modifier(Modifier::BOLD),
                        )
                    } else if f == EventField::Redis && !e.config.redis {
                        (v, Style::new().fg(theme.muted))
                    } else {
                        (v, Style::new().fg(theme.foreground))
                    }
                }
            };
            if under_cursor {
                style = selection(theme);
            }
            spans.push(Span::raw(" "));
            spans.push(Span::styled(pad(&text, cw), style));
        }
        lines.push(Line::from(spans));
    }
    let table_h = (1 + table_rows) as u16;
    frame.render_widget(
        Paragraph::new(lines),
        Rect::new(inner.x, inner.y, inner.width, table_h.min(inner.height)),
    );
    if inner.height > table_h {
        let panel = Rect::new(
            inner.x,
            inner.y + table_h,
            inner.width,
            inner.height - table_h,
        );
        render_field_panel(state, theme, frame, panel, events.get(o.row()), focused);
    }
}

/// The rule, the field under the cursor in full (or its editor), and what to know about it.
fn render_field_panel(
    state: &AppState,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    event: Option<&EventView>,
    focused: bool,
) {
    let o = state.orgs();
    let w = usize::from(area.width);
    let mut lines = vec![Line::styled("─".repeat(w), Style::new().fg(theme.border))];
    let Some(e) = event else {
        lines.push(Line::styled(
            "this organisation has no events",
            Style::new().fg(theme.muted),
        ));
        frame.render_widget(Paragraph::new(lines), area);
        return;
    };
    let f = o.field();
    let editor = o
        .editor()
        .filter(|ed| focused && ed.event == e.name && ed.field == f);
    let mark = if editor.is_some() { "✎" } else { " " };
    let label = format!("{mark}{}.{} ", fit(&e.name, 40), f.as_str());
    let label_w = width(&label);
    let value_w = w.saturating_sub(label_w + 1);
    let label_style = Style::new()
        .fg(theme.header_label)
        .add_modifier(Modifier::BOLD);
    let note: (String, Style) = match editor {
        Some(ed) => {
            // The end of a long value stays visible: that is where the cursor is.
            let shown = tail(&ed.text, value_w.saturating_sub(1));
            let x = area.x + (label_w + 1 + width(&shown)) as u16;
            if area.height >= 2 {
                frame.set_cursor_position(Position::new(
                    x.min(area.right().saturating_sub(1)),
                    area.y + 1,
                ));
            }
            lines.push(Line::from(vec![
                Span::styled(label, label_style),
                Span::raw(" "),
                Span::styled(shown, Style::new().fg(theme.foreground)),
            ]));
            match &ed.error {
                Some(err) => (
                    format!("✖ {err}"),
                    Style::new().fg(theme.error_fg).bg(theme.error_bg),
                ),
                None => (
                    "✓ valid · Enter keeps it (pending until saved) · Esc cancels".to_string(),
                    Style::new().fg(theme.band_ok),
                ),
            }
        }
        None => {
            let v = value_of(e, f);
            let shown = if v.is_empty() {
                Span::styled("(empty)", Style::new().fg(theme.muted))
            } else {
                Span::raw(fit(&v, value_w))
            };
            lines.push(Line::from(vec![
                Span::styled(label, label_style),
                Span::raw(" "),
                shown,
            ]));
            field_note(state, e, f)
        }
    };
    lines.push(Line::styled(fit(&format!(" {}", note.0), w), note.1));
    frame.render_widget(Paragraph::new(lines), area);
}

/// What the note line says about a field that is not being edited.
fn field_note(state: &AppState, e: &EventView, f: EventField) -> (String, Style) {
    let theme_muted = |t: String| (t, Style::default());
    let loaded = state.orgs().loaded_config(&e.name).get(f);
    let now = e.config.get(f);
    let mut parts = Vec::new();
    if state.settings().readonly {
        parts.push("read-only".to_string());
    }
    if loaded != now {
        let was = match loaded {
            crate::orgs::EventSetting::Webhook(s) | crate::orgs::EventSetting::Email(s) => {
                if s.is_empty() {
                    "(empty)".to_string()
                } else {
                    s
                }
            }
            crate::orgs::EventSetting::Redis(b) => if b { "yes" } else { "no" }.to_string(),
        };
        parts.push(format!("pending · was {was} · u undoes"));
    } else if !e.documented {
        parts.push("not one of Tyk's documented events (kept, editable)".to_string());
    } else if !e.present {
        parts.push("not set up for this organisation: an edit adds it".to_string());
    }
    if !e.extra.is_empty() {
        let extra: Vec<String> = e.extra.iter().map(|(k, v)| format!("{k}={v}")).collect();
        parts.push(format!(
            "other fields, kept as they are: {}",
            extra.join(" ")
        ));
    }
    if parts.is_empty() || (parts.len() == 1 && state.settings().readonly) {
        parts.push(
            match f {
                EventField::Webhook => "absolute http(s) URL, empty for none",
                EventField::Email => "e-mail addresses separated by commas, empty for none",
                EventField::Redis => {
                    "publish the event to Redis (MDCB data planes) · Enter toggles"
                }
            }
            .to_string(),
        );
    }
    theme_muted(parts.join(" · "))
}

/// The last `max` cells of `text` (clean), so typing past the width keeps the cursor visible.
fn tail(text: &str, max: usize) -> String {
    let clean = super::sanitize::clean(text);
    if width(&clean) <= max {
        return clean.into_owned();
    }
    let mut out: Vec<char> = Vec::new();
    let mut w = 1;
    for c in clean.chars().rev() {
        let cw = width(c.encode_utf8(&mut [0; 4]));
        if w + cw > max {
            break;
        }
        out.push(c);
        w += cw;
    }
    std::iter::once('…').chain(out.into_iter().rev()).collect()
}

// ---- dialogs ----

/// A centred box over the body with `lines`; the bottom title says which keys answer.
pub(super) fn dialog(
    theme: &Theme,
    frame: &mut Frame,
    body: Rect,
    title: &str,
    lines: Vec<Line<'static>>,
    keys: &str,
    alarm: bool,
) {
    if body.width < 8 || body.height < 3 {
        return;
    }
    let w = body.width.saturating_sub(4).clamp(8, 110);
    let h = (lines.len() as u16 + 2).min(body.height);
    let area = Rect::new(
        body.x + (body.width - w) / 2,
        body.y + body.height.saturating_sub(h) / 2,
        w,
        h,
    );
    frame.render_widget(Clear, area);
    let border = if alarm {
        theme.error_fg
    } else {
        theme.border_focused
    };
    let title_style = if alarm {
        Style::new()
            .fg(theme.error_fg)
            .bg(theme.error_bg)
            .add_modifier(Modifier::BOLD)
    } else {
        Style::new().fg(theme.title).add_modifier(Modifier::BOLD)
    };
    let block = Block::bordered()
        .border_style(Style::new().fg(border))
        .style(Style::new().fg(theme.foreground).bg(theme.background))
        .title(
            Line::styled(
                format!(" {} ", fit(title, usize::from(w.saturating_sub(4)))),
                title_style,
            )
            .alignment(Alignment::Center),
        )
        .title_bottom(
            Line::styled(
                fit(&format!(" {keys} "), usize::from(w.saturating_sub(2))),
                Style::new().fg(theme.key_hint).add_modifier(Modifier::BOLD),
            )
            .alignment(Alignment::Center),
        );
    let inner = block.inner(area);
    frame.render_widget(block, area);
    // Too many changes for the box: the last line says how many are not shown.
    let rows = usize::from(inner.height);
    let mut lines = lines;
    if lines.len() > rows && rows > 0 {
        let hidden = lines.len() - rows + 1;
        lines.truncate(rows - 1);
        lines.push(Line::styled(
            format!(" … {hidden} more lines"),
            Style::new().fg(theme.muted),
        ));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

/// One change per line (wrapped, indented), paths and values cleaned.
pub(super) fn change_lines(changes: &[Change], w: usize, style: Style) -> Vec<Line<'static>> {
    changes
        .iter()
        .flat_map(|c| {
            wrap_keep(&c.to_string(), w.saturating_sub(4).max(1))
                .into_iter()
                .enumerate()
                .map(move |(i, l)| {
                    let lead = if i == 0 { "  • " } else { "    " };
                    Line::styled(format!("{lead}{l}"), style)
                })
        })
        .collect()
}

pub(super) fn dialog_width(body: Rect) -> usize {
    usize::from(body.width.saturating_sub(4).min(110).saturating_sub(2))
}

fn render_confirm(o: &OrgsPane, c: &Confirm, theme: &Theme, frame: &mut Frame, body: Rect) {
    let w = dialog_width(body);
    let muted = Style::new().fg(theme.muted);
    let source = o.source().unwrap_or_default().to_string();
    match c {
        Confirm::Save { id, name, changes } => {
            let shown = if name.is_empty() { id } else { name };
            let n = changes.len();
            let mut lines = vec![Line::styled(
                fit(&format!(" {n} change{} to save to {source}:", plural(n)), w),
                Style::new().fg(theme.foreground),
            )];
            lines.extend(change_lines(changes, w, Style::new().fg(theme.warning_fg)));
            lines.push(Line::styled(
                fit(
                    " Only these fields change; everything else is sent back as it was loaded.",
                    w,
                ),
                muted,
            ));
            lines.push(Line::styled(
                fit(
                    " If the document changed since it was loaded, nothing is written.",
                    w,
                ),
                muted,
            ));
            dialog(
                theme,
                frame,
                body,
                &format!("save {}?", fit(shown, 60)),
                lines,
                "y saves · n / Esc goes back to editing",
                false,
            );
        }
        Confirm::Reload { pending } => {
            let lines = vec![Line::raw(fit(
                &format!(
                    " Reloading from {source} drops {pending} pending change{} (not saved).",
                    plural(*pending)
                ),
                w,
            ))];
            dialog(
                theme,
                frame,
                body,
                "reload the organisations?",
                lines,
                "y reloads · n / Esc keeps the changes",
                false,
            );
        }
    }
}

fn render_conflict(o: &OrgsPane, c: &ConflictView, theme: &Theme, frame: &mut Frame, body: Rect) {
    let _ = o;
    let w = dialog_width(body);
    let shown = if c.name.is_empty() { &c.id } else { &c.name };
    let head = Style::new()
        .fg(theme.header_label)
        .add_modifier(Modifier::BOLD);
    let first = format!(
        "Nothing was saved: {} {} since you loaded it.",
        fit(shown, 40),
        if c.deleted {
            format!("was deleted {}", c.place)
        } else {
            format!("changed {}", c.place)
        }
    );
    let mut lines: Vec<Line<'static>> = wrap(&first, w.saturating_sub(1).max(1))
        .into_iter()
        .map(|l| Line::styled(format!(" {l}"), Style::new().fg(theme.foreground)))
        .collect();
    if !c.deleted {
        lines.push(Line::styled(
            fit(&format!(" Changed {}:", c.place), w),
            head,
        ));
        if c.theirs.is_empty() {
            lines.push(Line::styled(
                "    (only formatting or key order)",
                Style::new().fg(theme.muted),
            ));
        }
        lines.extend(change_lines(&c.theirs, w, Style::new().fg(theme.info)));
    }
    lines.push(Line::styled(" Your pending changes (not saved):", head));
    lines.extend(change_lines(&c.ours, w, Style::new().fg(theme.warning_fg)));
    dialog(
        theme,
        frame,
        body,
        &format!("conflict: {}", fit(shown, 60)),
        lines,
        "r reloads (drops your changes) · Esc cancels",
        true,
    );
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
