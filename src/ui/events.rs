//! The Events view: what Tyk sent to the `[intake]` listener (quota triggers, Dashboard
//! `event_options` webhooks, Portal webhooks), newest first, and the detail of one event with
//! its payload. Every string here came from the network: all of it goes through `sanitize`
//! (payloads are pretty-printed and wrapped by the state, which cleans them).

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row};

use super::sanitize::fit;
use super::state::{AppState, MAX_EVENTS};
use super::table::clamp_offset;
use super::theme::Theme;
use super::widgets;
use crate::store::EventRow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Time,
    Kind,
    Event,
    Org,
    Summary,
}

/// Inner width from which the ORG column and the date are shown.
const WIDE: u16 = 110;

fn columns(inner: u16) -> Vec<(Col, &'static str, u16)> {
    let wide = inner >= WIDE;
    let time = if wide { 14 } else { 8 };
    let event = if wide { 30 } else { 24 };
    let mut cols = vec![
        (Col::Time, "TIME", time),
        (Col::Kind, "KIND", 9),
        (Col::Event, "EVENT", event),
    ];
    if wide {
        cols.push((Col::Org, "ORG", 24));
    }
    let used: u16 = cols.iter().map(|c| c.2 + 1).sum();
    cols.push((Col::Summary, "SUMMARY", inner.saturating_sub(used).max(1)));
    cols
}

/// The kind as the list shows it, and its colour.
fn kind(theme: &Theme, k: &str) -> (&'static str, Color) {
    match k {
        "quota_trigger" => ("trigger", theme.band_critical),
        "dashboard" => ("dashboard", theme.link),
        "portal" => ("portal", theme.band_ok),
        _ => ("other", theme.muted),
    }
}

/// "10:00:03", or "03-01 10:00:03" when there is room.
fn time(ms: i64, wide: bool) -> String {
    let t = crate::timefmt::format_utc(ms.div_euclid(1000), ' ');
    let range = if wide { 5..19 } else { 11..19 };
    t.get(range).unwrap_or(&t).to_string()
}

pub(crate) fn render_list(state: &AppState, theme: &Theme, frame: &mut Frame, area: Rect) {
    let e = state.events();
    let count = e.order().len();
    let title = widgets::list_title(theme, "events", count, e.filter());
    let mut block = Block::bordered()
        .border_style(Style::new().fg(theme.border_focused))
        .title(Line::from(title).alignment(Alignment::Center))
        .title_bottom(Line::styled(
            format!(
                " {} received since start · newest {MAX_EVENTS} kept ",
                e.live()
            ),
            Style::new().fg(theme.muted),
        ));
    if count > 0 {
        block = block.title_bottom(
            Line::styled(
                format!(" {}/{count} ", e.cursor() + 1),
                Style::new().fg(theme.muted),
            )
            .alignment(Alignment::Right),
        );
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if count == 0 {
        let text = if !e.filter().is_empty() {
            format!(
                "no event matches /{} — Esc clears the filter",
                fit(e.filter().text(), 40)
            )
        } else {
            match state.orgs().intake_url() {
                Some(url) => format!(
                    "no events received yet: Tyk sends them to {url} (Orgs view: w points an event's webhook here)"
                ),
                None => "no [intake] listen configured: set [intake] listen (e.g. \"127.0.0.1:8089\") to receive Tyk's events here".to_string(),
            }
        };
        centred(frame, inner, theme, &text);
        return;
    }
    let cols = columns(inner.width);
    let wide = inner.width >= WIDE;
    let visible = usize::from(inner.height.saturating_sub(1));
    let offset = clamp_offset(e.offset(), e.cursor(), visible, count);
    let end = (offset + visible).min(count);
    let rows: Vec<Row> = e.order()[offset..end]
        .iter()
        .filter_map(|&i| e.rows().get(i))
        .map(|r| {
            Row::new(
                cols.iter()
                    .map(|(c, _, w)| Cell::from(cell(theme, r, *c, usize::from(*w), wide)))
                    .collect::<Vec<_>>(),
            )
            .style(Style::new().fg(theme.foreground))
        })
        .collect();
    let header = Row::new(
        cols.iter()
            .map(|(_, t, w)| Cell::from(fit(t, usize::from(*w)))),
    );
    let widths = cols.iter().map(|(_, _, w)| Constraint::Length(*w));
    let selected = e.cursor().saturating_sub(offset);
    widgets::render_list(frame, inner, theme, header, rows, widths, selected);
}

fn cell(theme: &Theme, r: &EventRow, c: Col, w: usize, wide: bool) -> Line<'static> {
    match c {
        Col::Time => Line::styled(time(r.received_at, wide), Style::new().fg(theme.muted)),
        Col::Kind => {
            let (label, colour) = kind(theme, &r.kind);
            Line::styled(fit(label, w), Style::new().fg(colour))
        }
        Col::Event => Line::raw(fit(&r.event, w)),
        Col::Org if r.org_id.is_empty() => Line::styled("-", Style::new().fg(theme.muted)),
        Col::Org => Line::raw(fit(&r.org_id, w)),
        Col::Summary => Line::raw(fit(&r.summary, w)),
    }
}

fn centred(frame: &mut Frame, inner: Rect, theme: &Theme, text: &str) {
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    let lines: Vec<Line> = super::sanitize::wrap(text, usize::from(inner.width.saturating_sub(4)))
        .into_iter()
        .map(|l| Line::styled(l, Style::new().fg(theme.muted)))
        .collect();
    let h = (lines.len() as u16).min(inner.height);
    let y = inner.y + inner.height.saturating_sub(h) / 2;
    frame.render_widget(
        Paragraph::new(lines).alignment(Alignment::Center),
        Rect::new(inner.x, y, inner.width, h),
    );
}

// ---- detail ----

const LABEL_W: usize = 9;
const FIELD_LINES: u16 = 7;

fn split_detail(body: Rect) -> (Rect, Rect) {
    let fields_h = (FIELD_LINES + 2)
        .min(body.height / 2)
        .max(3.min(body.height));
    let [fields, payload] =
        Layout::vertical([Constraint::Length(fields_h), Constraint::Min(0)]).areas(body);
    (fields, payload)
}

/// Inside of the payload pane (the state wraps and pages by it).
pub(crate) fn payload_inner(body: Rect) -> Rect {
    Block::bordered().inner(split_detail(body).1)
}

pub(crate) fn render_detail(
    state: &AppState,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    id: i64,
) {
    let e = state.events();
    let row = e.row(id);
    let (fields_area, payload_area) = split_detail(area);
    let title = row.map_or_else(|| "event".to_string(), |r| r.event.clone());
    let fields = Block::bordered()
        .border_style(Style::new().fg(theme.border))
        .title(
            Line::styled(
                format!(
                    " {} ",
                    fit(&title, usize::from(area.width.saturating_sub(6)))
                ),
                Style::new().fg(theme.title).add_modifier(Modifier::BOLD),
            )
            .alignment(Alignment::Center),
        );
    let inner = fields.inner(fields_area);
    frame.render_widget(fields, fields_area);
    let w = usize::from(inner.width);
    let vw = w.saturating_sub(LABEL_W + 2);
    let label = Style::new().fg(theme.header_label);
    let field = |name: &str, value: Span<'static>| {
        Line::from(vec![
            Span::styled(format!(" {name:<LABEL_W$} "), label),
            value,
        ])
    };
    let dash = |s: &str| {
        if s.is_empty() {
            Span::styled("-", Style::new().fg(theme.muted))
        } else {
            Span::raw(fit(s, vw))
        }
    };
    let lines = match row {
        Some(r) => {
            let (k, colour) = kind(theme, &r.kind);
            vec![
                field(
                    "received",
                    Span::raw(fit(
                        &crate::ui::format::utc(r.received_at.div_euclid(1000)),
                        vw,
                    )),
                ),
                field(
                    "kind",
                    Span::styled(
                        fit(
                            &if k == r.kind {
                                r.kind.clone()
                            } else {
                                format!("{k} ({})", r.kind)
                            },
                            vw,
                        ),
                        Style::new().fg(colour),
                    ),
                ),
                field("event", dash(&r.event)),
                field("org", dash(&r.org_id)),
                field("key", dash(&r.masked_key)),
                field("summary", dash(&r.summary)),
                field("id", Span::raw(r.id.to_string())),
            ]
        }
        None => vec![Line::styled(
            fit(
                "no longer in the list (older than the newest 1000) — Esc goes back",
                w,
            ),
            Style::new().fg(theme.warning_fg),
        )],
    };
    frame.render_widget(Paragraph::new(lines), inner);

    let block = Block::bordered()
        .border_style(Style::new().fg(theme.border_focused))
        .title(Line::styled(
            " payload ",
            Style::new().fg(theme.title).add_modifier(Modifier::BOLD),
        ));
    let inner = block.inner(payload_area);
    let all = e.payload_lines(id).unwrap_or_default();
    let rows = usize::from(inner.height);
    let (block, scroll) = widgets::scrolled(block, theme, e.scroll(), rows, all.len());
    frame.render_widget(block, payload_area);
    let lines: Vec<Line> = all
        .iter()
        .skip(scroll)
        .take(rows)
        .map(|l| json_line(theme, l))
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// Keys in the label colour, the rest plain (the lines are already clean).
fn json_line(theme: &Theme, l: &str) -> Line<'static> {
    let indent = l.len() - l.trim_start().len();
    let rest = &l[indent..];
    if rest.starts_with('"')
        && let Some(end) = rest[1..].find("\": ").map(|i| i + 1)
    {
        return Line::from(vec![
            Span::raw(l[..indent].to_string()),
            Span::styled(
                rest[..=end].to_string(),
                Style::new().fg(theme.header_label),
            ),
            Span::raw(rest[end + 1..].to_string()),
        ]);
    }
    Line::raw(l.to_string())
}
