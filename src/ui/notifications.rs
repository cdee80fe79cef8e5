//! The Notifications view: the outbox the notifier reports (newest first), and the detail of
//! one notification with the exact request or e-mail it sends. Every string here came from the
//! network or the store, so all of it goes through `sanitize`.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row};

use super::format;
use super::sanitize::{fit, wrap_keep};
use super::state::{AppState, InspectState};
use super::table::clamp_offset;
use super::theme::Theme;
use super::widgets;
use crate::notify::feed::NotificationItem;
use crate::outbox::{OutboxKind, OutboxState};

/// The event of a test notification.
const TEST_EVENT: &str = "tykwatch.test";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Age,
    Quota,
    Org,
    Threshold,
    Usage,
    Channel,
    State,
    Attempts,
    Next,
    Error,
}

struct Spec {
    col: Col,
    title: &'static str,
    /// 0: shares the rest with the other flexible column.
    width: u16,
    /// Highest goes first when narrow; 0 never.
    drop: u8,
}

const SPECS: [Spec; 10] = [
    Spec {
        col: Col::Age,
        title: "AGE",
        width: 6,
        drop: 0,
    },
    Spec {
        col: Col::Quota,
        title: "QUOTA",
        width: 0,
        drop: 0,
    },
    Spec {
        col: Col::Org,
        title: "ORG",
        width: 24,
        drop: 5,
    },
    Spec {
        col: Col::Threshold,
        title: "THR",
        width: 5,
        drop: 0,
    },
    Spec {
        col: Col::Usage,
        title: "USED",
        width: 5,
        drop: 3,
    },
    Spec {
        col: Col::Channel,
        title: "CHANNEL",
        width: 16,
        drop: 0,
    },
    Spec {
        col: Col::State,
        title: "STATE",
        width: 9,
        drop: 0,
    },
    Spec {
        col: Col::Attempts,
        title: "ATT",
        width: 3,
        drop: 1,
    },
    Spec {
        col: Col::Next,
        title: "NEXT",
        width: 6,
        drop: 4,
    },
    Spec {
        col: Col::Error,
        title: "LAST ERROR",
        width: 0,
        drop: 0,
    },
];

/// Narrowest the two flexible columns get together.
const FLEX_MIN: u16 = 30;

fn columns(inner: u16) -> Vec<(&'static Spec, u16)> {
    let mut cols: Vec<&Spec> = SPECS.iter().collect();
    let fixed = |cols: &[&Spec]| -> u16 {
        cols.iter().map(|s| s.width).sum::<u16>() + cols.len().saturating_sub(1) as u16
    };
    while fixed(&cols) + FLEX_MIN > inner {
        let Some(pos) = cols
            .iter()
            .enumerate()
            .filter(|(_, s)| s.drop > 0)
            .max_by_key(|(_, s)| s.drop)
            .map(|(i, _)| i)
        else {
            break;
        };
        cols.remove(pos);
    }
    let rest = inner.saturating_sub(fixed(&cols)).max(2);
    let quota = (rest / 2).max(1);
    let error = rest.saturating_sub(quota).max(1);
    cols.into_iter()
        .map(|s| {
            let w = match s.col {
                Col::Quota => quota,
                Col::Error => error,
                _ => s.width,
            };
            (s, w)
        })
        .collect()
}

/// What a notification is about: the alias, else the masked key, else the org; a per-API
/// limit adds its API.
pub(crate) fn label(it: &NotificationItem) -> String {
    if it.event == TEST_EVENT {
        return "test notification".into();
    }
    let base = [&it.alias, &it.key_masked, &it.org_id]
        .into_iter()
        .find(|s| !s.is_empty())
        .map_or("?", |s| s.as_str());
    if it.scope == "api" && !it.api_id.is_empty() {
        format!("{base} · api {}", it.api_id)
    } else {
        base.to_string()
    }
}

fn state_colour(theme: &Theme, it: &NotificationItem) -> Color {
    match it.row.state {
        OutboxState::Delivered => theme.band_ok,
        OutboxState::Failed | OutboxState::Dead => theme.band_exhausted,
        // Retrying after a failed attempt.
        OutboxState::Pending if it.row.attempts > 0 => theme.warning_fg,
        OutboxState::Pending | OutboxState::Inflight => theme.info,
    }
}

fn threshold(it: &NotificationItem) -> String {
    if it.event == TEST_EVENT {
        "test".into()
    } else {
        // A received event's notification has no threshold.
        it.row
            .threshold()
            .map_or_else(|| "-".into(), format::threshold)
    }
}

/// The last error with its status code, as short as the cell needs.
fn error_text(it: &NotificationItem) -> String {
    match (&it.row.last_error, it.row.last_status) {
        (Some(e), Some(s)) if !e.contains(&s.to_string()) => format!("{s}: {e}"),
        (Some(e), _) => e.clone(),
        (None, Some(s)) if it.row.state != OutboxState::Delivered => format!("status {s}"),
        _ => String::new(),
    }
}

pub(crate) fn render_list(state: &AppState, theme: &Theme, frame: &mut Frame, area: Rect) {
    let n = state.notifications();
    let count = n.order().len();
    let title = widgets::list_title(theme, "notifications", count, n.filter());
    let mut block = Block::bordered()
        .border_style(Style::new().fg(theme.border_focused))
        .title(Line::from(title).alignment(Alignment::Center));
    if let Some(c) = n.counts() {
        block = block.title_bottom(Line::styled(
            format!(
                " outbox: {} pending · {} inflight · {} delivered · {} failed · {} dead ",
                c.pending, c.inflight, c.delivered, c.failed, c.dead
            ),
            Style::new().fg(theme.muted),
        ));
    }
    if count > 0 {
        block = block.title_bottom(
            Line::styled(
                // Older rows load as the cursor reaches the end of what is here.
                match (n.items().len() as u64, n.total()) {
                    (loaded, total) if loaded < total => {
                        format!(" {}/{count} of {total} ", n.cursor() + 1)
                    }
                    _ => format!(" {}/{count} ", n.cursor() + 1),
                },
                Style::new().fg(theme.muted),
            )
            .alignment(Alignment::Right),
        );
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if count == 0 {
        let text = if n.snapshot().is_none() {
            "no outbox yet: notifications appear here once the notifier reports".to_string()
        } else if !n.filter().is_empty() {
            format!(
                "no notification matches /{} — Esc clears the filter",
                fit(n.filter().text(), 40)
            )
        } else {
            "no notifications sent yet".to_string()
        };
        centred(
            frame,
            inner,
            Line::styled(text, Style::new().fg(theme.muted)),
        );
        return;
    }

    let cols = columns(inner.width);
    let visible = usize::from(inner.height.saturating_sub(1));
    let offset = clamp_offset(n.offset(), n.cursor(), visible, count);
    let end = (offset + visible).min(count);
    let items = n.items();
    let now = state.now_ms();
    let rows: Vec<Row> = n.order()[offset..end]
        .iter()
        .filter_map(|&i| items.get(i))
        .map(|it| {
            let cells = cols.iter().map(|(s, w)| {
                let line = cell(state, theme, it, s.col, usize::from(*w), now);
                Cell::from(if right_aligned(s.col) {
                    line.alignment(Alignment::Right)
                } else {
                    line
                })
            });
            let style = match it.row.state {
                OutboxState::Failed | OutboxState::Dead => Style::new().fg(theme.band_exhausted),
                _ => Style::new().fg(theme.foreground),
            };
            Row::new(cells.collect::<Vec<_>>()).style(style)
        })
        .collect();
    let header = Row::new(cols.iter().map(|(s, w)| {
        let line = Line::raw(fit(s.title, usize::from(*w)));
        Cell::from(if right_aligned(s.col) {
            line.alignment(Alignment::Right)
        } else {
            line
        })
    }));
    let widths = cols.iter().map(|(_, w)| Constraint::Length(*w));
    let selected = n.cursor().saturating_sub(offset);
    widgets::render_list(frame, inner, theme, header, rows, widths, selected);
}

fn right_aligned(c: Col) -> bool {
    matches!(
        c,
        Col::Age | Col::Threshold | Col::Usage | Col::Attempts | Col::Next
    )
}

fn cell(
    state: &AppState,
    theme: &Theme,
    it: &NotificationItem,
    col: Col,
    w: usize,
    now: i64,
) -> Line<'static> {
    let r = &it.row;
    match col {
        Col::Age => Line::raw(format::duration((now - r.created_at).max(0) / 1000)),
        Col::Quota if it.event == TEST_EVENT => Line::styled(
            fit(&label(it), w),
            Style::new().fg(theme.muted).add_modifier(Modifier::ITALIC),
        ),
        Col::Quota => Line::raw(fit(&label(it), w)),
        Col::Org => Line::raw(fit(&it.org_id, w)),
        Col::Threshold => Line::raw(threshold(it)),
        Col::Usage if it.event == TEST_EVENT || it.row.threshold().is_none() => Line::raw("-"),
        Col::Usage => Line::raw(format::pct(it.usage_percentage)),
        Col::Channel => match state.notifications().disabled(&r.channel_id) {
            // Switched off by a 410 from the receiver: marked, since nothing more is sent.
            Some(_) => Line::from(vec![
                Span::styled(
                    fit(&r.channel_id.to_string(), w.saturating_sub(2)),
                    Style::new().fg(theme.warning_fg),
                ),
                Span::styled(" ⊘", Style::new().fg(theme.warning_fg)),
            ]),
            None => Line::raw(fit(&r.channel_id.to_string(), w)),
        },
        Col::State => Line::styled(
            r.state.as_str(),
            Style::new()
                .fg(state_colour(theme, it))
                .add_modifier(Modifier::BOLD),
        ),
        Col::Attempts => Line::raw(r.attempts.to_string()),
        Col::Next => match r.state {
            OutboxState::Pending => Line::raw(fit(
                &format::duration((r.next_attempt_at - now).max(0) / 1000),
                w,
            )),
            _ => Line::raw("-"),
        },
        Col::Error => Line::raw(fit(&error_text(it), w)),
    }
}

fn centred(frame: &mut Frame, inner: Rect, line: Line) {
    if inner.height == 0 {
        return;
    }
    let y = inner.y + inner.height / 2;
    let area = Rect::new(inner.x, y.min(inner.bottom() - 1), inner.width, 1);
    frame.render_widget(Paragraph::new(line).alignment(Alignment::Center), area);
}

// ---- detail ----

const LABEL_W: usize = 11;
/// A long last error gets up to this many rows.
const ERROR_ROWS: usize = 2;

/// The last error's rows in the fields panel.
fn error_rows(item: Option<&NotificationItem>, body_w: u16) -> Vec<String> {
    let vw = usize::from(body_w.saturating_sub(2)).saturating_sub(LABEL_W + 1);
    let err = item
        .and_then(|it| it.row.last_error.as_deref())
        .unwrap_or("-");
    let mut rows = super::sanitize::wrap(err, vw.max(1));
    if rows.len() > ERROR_ROWS {
        rows.truncate(ERROR_ROWS);
        if let Some(last) = rows.last_mut() {
            *last = fit(&format!("{last} …"), vw);
        }
    }
    rows
}

/// The fields panel over the request pane: as tall as its lines, at most half the body.
fn split_detail(body: Rect, item: Option<&NotificationItem>) -> (Rect, Rect) {
    let lines = 6 + error_rows(item, body.width).len() as u16;
    let fields_h = (lines + 2).min(body.height / 2).max(3.min(body.height));
    let [fields, request] =
        Layout::vertical([Constraint::Length(fields_h), Constraint::Min(0)]).areas(body);
    (fields, request)
}

/// Inside of the request pane (the state pages by it).
pub(crate) fn request_inner(body: Rect, item: Option<&NotificationItem>) -> Rect {
    Block::bordered().inner(split_detail(body, item).1)
}

/// The kind of a request pane line, for its style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReqKind {
    Summary,
    Header,
    Body,
    Note,
    Error,
}

/// The request pane's lines at `width`: the summary, then headers, a blank line and the body.
pub(crate) fn request_lines(st: &InspectState, width: usize) -> Vec<(String, ReqKind)> {
    let mut out = Vec::new();
    match st {
        InspectState::Loading => out.push(("loading…".to_string(), ReqKind::Note)),
        InspectState::Failed(reason) => {
            for l in wrap_keep(&format!("cannot show the request: {reason}"), width) {
                out.push((l, ReqKind::Error));
            }
        }
        InspectState::Ready(ins) => {
            for l in wrap_keep(&ins.summary, width) {
                out.push((l, ReqKind::Summary));
            }
            out.push((String::new(), ReqKind::Body));
            match &ins.text {
                Ok(text) => {
                    let mut in_headers = true;
                    for raw in text.split('\n') {
                        let raw = raw.strip_suffix('\r').unwrap_or(raw);
                        if raw.is_empty() {
                            in_headers = false;
                        }
                        let kind = if in_headers {
                            ReqKind::Header
                        } else {
                            ReqKind::Body
                        };
                        for l in wrap_keep(raw, width) {
                            out.push((l, kind));
                        }
                    }
                }
                Err(reason) => {
                    for l in wrap_keep(&format!("cannot build the request: {reason}"), width) {
                        out.push((l, ReqKind::Error));
                    }
                }
            }
        }
    }
    out
}

pub(crate) fn render_detail(
    state: &AppState,
    theme: &Theme,
    frame: &mut Frame,
    area: Rect,
    idem_key: &str,
) {
    let n = state.notifications();
    let item = n.item(idem_key);
    let (fields_area, request_area) = split_detail(area, item);
    let title = item.map_or_else(|| "notification".to_string(), label);
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
    let lines = match item {
        Some(it) => field_lines(state, theme, it, w),
        None => vec![Line::styled(
            "no longer in the outbox snapshot (older than the newest 500) — Esc goes back",
            Style::new().fg(theme.warning_fg),
        )],
    };
    frame.render_widget(Paragraph::new(lines), inner);

    let email = item.is_some_and(|it| it.row.kind() == OutboxKind::Email);
    let block = Block::bordered()
        .border_style(Style::new().fg(theme.border_focused))
        .title(Line::styled(
            if email { " e-mail " } else { " request " },
            Style::new().fg(theme.title).add_modifier(Modifier::BOLD),
        ));
    let inner = block.inner(request_area);
    let loading = InspectState::Loading;
    let st = n.inspection(idem_key).unwrap_or(&loading);
    let all = request_lines(st, usize::from(inner.width));
    let rows = usize::from(inner.height);
    let (block, scroll) = widgets::scrolled(block, theme, n.scroll(), rows, all.len());
    frame.render_widget(block, request_area);
    let lines: Vec<Line> = all
        .into_iter()
        .skip(scroll)
        .take(rows)
        .map(|(text, kind)| request_line(theme, text, kind))
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

fn request_line(theme: &Theme, text: String, kind: ReqKind) -> Line<'static> {
    match kind {
        ReqKind::Summary => Line::styled(
            text,
            Style::new().fg(theme.link).add_modifier(Modifier::BOLD),
        ),
        ReqKind::Header => match text.split_once(':') {
            Some((name, value)) if !name.contains(' ') => Line::from(vec![
                Span::styled(format!("{name}:"), Style::new().fg(theme.header_label)),
                Span::raw(value.to_string()),
            ]),
            _ => Line::raw(text),
        },
        ReqKind::Body => Line::raw(text),
        ReqKind::Note => Line::styled(text, Style::new().fg(theme.muted)),
        ReqKind::Error => Line::styled(text, Style::new().fg(theme.error_fg).bg(theme.error_bg)),
    }
}

fn field_lines(
    state: &AppState,
    theme: &Theme,
    it: &NotificationItem,
    w: usize,
) -> Vec<Line<'static>> {
    let r = &it.row;
    let label_style = Style::new().fg(theme.header_label);
    let vw = w.saturating_sub(LABEL_W + 1);
    let field = |name: &str, spans: Vec<Span<'static>>| {
        let mut v = vec![Span::styled(format!(" {name:<LABEL_W$}"), label_style)];
        v.extend(spans);
        Line::from(v)
    };
    let text = |s: &str| Span::raw(fit(s, vw));
    let mut quota = vec![label(it)];
    if !it.key_masked.is_empty() {
        quota.push(format!("key {}", it.key_masked));
    }
    if !it.org_id.is_empty() {
        quota.push(format!("org {}", it.org_id));
    }
    let quota = quota.join(" · ");
    let event = if it.event == TEST_EVENT {
        it.event.clone()
    } else {
        format!(
            "{} · {} used · threshold {}",
            it.event,
            format::pct(it.usage_percentage),
            format::threshold(r.threshold().unwrap_or(0.0))
        )
    };
    let mut channel = vec![Span::raw(fit(
        &format!("{} ({})", r.channel_id, r.kind().as_str()),
        vw,
    ))];
    if let Some(d) = state.notifications().disabled(&r.channel_id) {
        let used = super::sanitize::width(&format!("{} ({})", r.channel_id, r.kind().as_str()));
        channel.push(Span::styled(
            fit(
                &format!(
                    "  ⊘ disabled (410) at {}: {}",
                    format::utc(d.disabled_at.div_euclid(1000)),
                    d.reason
                ),
                vw.saturating_sub(used),
            ),
            Style::new().fg(theme.warning_fg),
        ));
    }
    let mut st = vec![
        Span::styled(
            r.state.as_str(),
            Style::new()
                .fg(state_colour(theme, it))
                .add_modifier(Modifier::BOLD),
        ),
        Span::raw(format!(
            " · {} attempt{}",
            r.attempts,
            if r.attempts == 1 { "" } else { "s" }
        )),
    ];
    if let Some(s) = r.last_status {
        st.push(Span::raw(format!(" · last status {s}")));
    }
    if r.state == OutboxState::Pending {
        let secs = (r.next_attempt_at - state.now_ms()).max(0) / 1000;
        st.push(Span::raw(format!(
            " · next attempt in {}",
            format::duration(secs)
        )));
    }
    if super::state::resendable(r.state) {
        st.push(Span::styled(" · r resends", Style::new().fg(theme.muted)));
    }
    let err_rows = error_rows(Some(it), w as u16 + 2);
    let err_style = if r.last_error.is_some() {
        Style::new().fg(theme.band_exhausted)
    } else {
        Style::new().fg(theme.muted)
    };
    let created = format!(
        "{} · delivered {}",
        format::utc(r.created_at.div_euclid(1000)),
        r.delivered_at
            .map_or("-".to_string(), |d| format::utc(d.div_euclid(1000)))
    );
    let mut lines = vec![
        field("quota", vec![text(&quota)]),
        field("event", vec![text(&event)]),
        field("channel", channel),
        field("state", st),
    ];
    for (i, row) in err_rows.into_iter().enumerate() {
        lines.push(field(
            if i == 0 { "last error" } else { "" },
            vec![Span::styled(row, err_style)],
        ));
    }
    lines.push(field("created", vec![text(&created)]));
    lines.push(field("id", vec![text(&r.idem_key)]));
    lines
}
