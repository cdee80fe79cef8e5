//! The quotas table. Only the visible rows are built: the board may hold 100k quotas and a
//! frame must stay within a couple of milliseconds.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row};

use super::format;
use super::sanitize::fit;
use super::state::AppState;
use super::table::{SortKey, clamp_offset, scope_label};
use super::theme::Theme;
use super::widgets;
use crate::clock::UnixMs;
use crate::notify::feed::FiredMark;
use crate::quota::board::Entry;
use crate::quota::model::Band;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Status,
    Name,
    Org,
    Scope,
    Usage,
    /// The highest threshold notified in the current period.
    Fired,
    Used,
    Remaining,
    Rate,
    Eta,
    Renews,
}

struct Spec {
    col: Col,
    title: &'static str,
    narrow: u16,
    wide: u16,
    /// Columns with the highest number go first when the terminal is narrow; 0 never.
    drop: u8,
    sort: Option<SortKey>,
}

const fn spec(
    col: Col,
    title: &'static str,
    narrow: u16,
    wide: u16,
    drop: u8,
    sort: Option<SortKey>,
) -> Spec {
    Spec {
        col,
        title,
        narrow,
        wide,
        drop,
        sort,
    }
}

// FIRED goes after ORG: at 80 columns it would leave the name too narrow to read.
const SPECS: [Spec; 11] = [
    spec(Col::Status, "", 2, 2, 0, None),
    spec(Col::Name, "NAME", 0, 0, 0, Some(SortKey::Name)),
    spec(Col::Org, "ORG", 24, 24, 8, Some(SortKey::Org)),
    spec(Col::Scope, "SCOPE", 10, 16, 5, Some(SortKey::Scope)),
    spec(Col::Usage, "USAGE", 11, 16, 0, Some(SortKey::Used)),
    spec(Col::Fired, "FIRED", 5, 6, 7, None),
    spec(Col::Used, "USED/MAX", 9, 15, 3, None),
    spec(Col::Remaining, "REMAIN", 9, 9, 6, Some(SortKey::Remaining)),
    spec(Col::Rate, "REQ/MIN", 7, 8, 4, Some(SortKey::Rate)),
    spec(Col::Eta, "ETA", 6, 7, 2, Some(SortKey::Eta)),
    spec(Col::Renews, "RENEWS", 8, 11, 1, Some(SortKey::Renews)),
];

const NAME_MIN: u16 = 12;
/// Inner width from which the wider column set is used.
const WIDE_FROM: u16 = 130;

/// The columns that fit `inner` cells, with their widths. FIRED only once a threshold has
/// fired somewhere: until then it would be an empty column.
fn columns(inner: u16, fired: bool) -> Vec<(&'static Spec, u16)> {
    let wide = inner >= WIDE_FROM;
    let width = |s: &Spec| if wide { s.wide } else { s.narrow };
    let mut cols: Vec<&Spec> = SPECS
        .iter()
        .filter(|s| fired || s.col != Col::Fired)
        .collect();
    loop {
        let fixed: u16 = cols.iter().map(|s| width(s)).sum();
        let gaps = cols.len() as u16 - 1;
        if fixed + gaps + NAME_MIN <= inner {
            break;
        }
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
    let fixed: u16 = cols.iter().map(|s| width(s)).sum();
    let gaps = cols.len() as u16 - 1;
    let name = inner.saturating_sub(fixed + gaps).max(1);
    cols.into_iter()
        .map(|s| (s, if s.col == Col::Name { name } else { width(s) }))
        .collect()
}

/// Data rows that fit in the body: minus the borders and the column header.
pub(crate) fn data_rows(body: Rect) -> usize {
    usize::from(body.height.saturating_sub(3))
}

pub(crate) fn render(state: &AppState, theme: &Theme, frame: &mut Frame, area: Rect) {
    let n = state.quotas().order().len();
    let title = widgets::list_title(theme, "quotas(all)", n, state.quotas().filter());
    let sort = state.quotas().sort();
    let arrow = if sort.descending { "↓" } else { "↑" };
    let cols = columns(area.width.saturating_sub(2), state.quotas().any_fired());
    // A narrow terminal drops columns; a sort on one of them says so rather than order the
    // rows by something not on screen.
    let hidden = if cols.iter().any(|(s, _)| s.sort == Some(sort.key)) {
        ""
    } else {
        " (column hidden)"
    };
    let mut block = Block::bordered()
        .border_style(Style::new().fg(theme.border_focused))
        .title(Line::from(title).alignment(Alignment::Center))
        .title_bottom(
            Line::styled(
                format!(" sort: {} {arrow}{hidden} ", sort.key.label()),
                Style::new().fg(theme.muted),
            )
            .alignment(Alignment::Left),
        );
    if n > 0 {
        block = block.title_bottom(
            Line::styled(
                format!(" {}/{n} ", state.quotas().cursor() + 1),
                Style::new().fg(theme.muted),
            )
            .alignment(Alignment::Right),
        );
    }
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if n == 0 {
        render_empty(state, theme, frame, inner);
        return;
    }

    let visible = usize::from(inner.height.saturating_sub(1));
    let offset = clamp_offset(state.quotas().offset(), state.quotas().cursor(), visible, n);
    let end = (offset + visible).min(n);
    let entries = state.board().entries();
    let now = state.now_ms();
    let rows: Vec<Row> = state.quotas().order()[offset..end]
        .iter()
        .filter_map(|&i| entries.get(i))
        .map(|e| row(e, state.quotas().fired(&e.id), &cols, theme, now))
        .collect();

    let header = Row::new(cols.iter().map(|(s, w)| {
        let mut t = s.title.to_string();
        if s.sort == Some(sort.key) {
            t.push_str(arrow);
        }
        let line = Line::raw(fit(&t, usize::from(*w)));
        Cell::from(if right_aligned(s.col) {
            line.alignment(Alignment::Right)
        } else {
            line
        })
    }));
    let widths = cols.iter().map(|(_, w)| Constraint::Length(*w));
    let selected = state.quotas().cursor().saturating_sub(offset);
    widgets::render_list(frame, inner, theme, header, rows, widths, selected);
}

fn render_empty(state: &AppState, theme: &Theme, frame: &mut Frame, inner: Rect) {
    let text = if !state.board().is_empty() {
        format!(
            "no quota matches /{} — Esc clears the filter",
            fit(state.quotas().filter().text(), 40)
        )
    } else if state.outage().is_some() {
        "no data: the gateway could not be read".to_string()
    } else {
        "waiting for the first sweep…".to_string()
    };
    let y = inner.y + inner.height / 2;
    let area = Rect::new(
        inner.x,
        y.min(inner.bottom().saturating_sub(1)),
        inner.width,
        1.min(inner.height),
    );
    frame.render_widget(
        Paragraph::new(Line::styled(text, Style::new().fg(theme.muted)))
            .alignment(Alignment::Center),
        area,
    );
}

fn right_aligned(c: Col) -> bool {
    matches!(
        c,
        Col::Used | Col::Remaining | Col::Rate | Col::Eta | Col::Renews
    )
}

pub(crate) fn band_color(theme: &Theme, band: Band) -> ratatui::style::Color {
    match band {
        Band::Ok => theme.band_ok,
        Band::Warn => theme.band_warn,
        Band::Critical => theme.band_critical,
        Band::Exhausted => theme.band_exhausted,
        Band::Unlimited => theme.band_unlimited,
    }
}

/// "expired" / "inactive" when the key cannot be used, else nothing.
pub(crate) fn status_tag(e: &Entry, now_ms: UnixMs) -> Option<&'static str> {
    if e.meta.is_expired(now_ms.div_euclid(1000)) {
        Some("expired")
    } else if e.meta.inactive {
        Some("inactive")
    } else {
        None
    }
}

fn row<'a>(
    e: &'a Entry,
    fired: Option<&FiredMark>,
    cols: &[(&Spec, u16)],
    theme: &Theme,
    now: UnixMs,
) -> Row<'a> {
    let tag = status_tag(e, now);
    let band = e.band();
    let colour = if tag.is_some() {
        theme.inactive
    } else {
        band_color(theme, band)
    };
    let cells = cols.iter().map(|(s, w)| {
        let w = usize::from(*w);
        let line = match (s.col, fired) {
            (Col::Fired, Some(f)) => {
                // "▲92.5%" is one cell too wide for the narrow column: the % goes first.
                let full = format!("▲{}", format::threshold(f.threshold));
                let text = if super::sanitize::width(&full) > w {
                    full.trim_end_matches('%').to_string()
                } else {
                    full
                };
                Line::styled(fit(&text, w), Style::new().fg(theme.chart_threshold))
            }
            (Col::Fired, None) => Line::raw(""),
            _ => cell(e, s.col, w, tag, theme, now),
        };
        Cell::from(if right_aligned(s.col) {
            line.alignment(Alignment::Right)
        } else {
            line
        })
    });
    Row::new(cells.collect::<Vec<_>>()).style(Style::new().fg(colour))
}

fn cell(
    e: &Entry,
    col: Col,
    w: usize,
    tag: Option<&'static str>,
    theme: &Theme,
    now: UnixMs,
) -> Line<'static> {
    let limited = e.is_limited();
    let dash = || Line::raw("-");
    match col {
        Col::Status => {
            let glyph_style = if tag.is_some() {
                Style::new().fg(theme.inactive)
            } else {
                Style::new().fg(band_color(theme, e.band()))
            };
            let delta = match e.delta() {
                Some(d) if d > 0 => Span::styled("↑", Style::new().fg(theme.delta_up)),
                Some(d) if d < 0 => Span::styled("↓", Style::new().fg(theme.delta_down)),
                _ => Span::raw(" "),
            };
            Line::from(vec![Span::styled(e.band().glyph(), glyph_style), delta])
        }
        Col::Name => match tag {
            // The tag needs room next to a readable name; narrower, a one-cell mark stands in.
            Some(t) => {
                let tag_text = if w >= t.len() + 1 + 8 {
                    format!(" {t}")
                } else {
                    " ⊘".to_string()
                };
                let name_w = w.saturating_sub(tag_text.chars().count()).max(1);
                Line::from(vec![
                    Span::raw(fit(e.meta.label(), name_w)),
                    Span::styled(
                        tag_text,
                        Style::new().fg(theme.muted).add_modifier(Modifier::ITALIC),
                    ),
                ])
            }
            None => Line::raw(fit(e.meta.label(), w)),
        },
        Col::Org => Line::raw(fit(&e.meta.org_id, w)),
        Col::Scope => Line::raw(fit(scope_label(e), w)),
        Col::Usage => match e.usage_pct() {
            Some(p) => {
                let bar_w = w.saturating_sub(5);
                let mut filled = ((p / 100.0) * bar_w as f64).round() as usize;
                if p > 0.0 {
                    filled = filled.max(1);
                }
                let filled = filled.min(bar_w);
                Line::from(vec![
                    Span::styled(
                        "█".repeat(filled),
                        Style::new().fg(band_color(theme, e.band())),
                    ),
                    Span::styled("░".repeat(bar_w - filled), Style::new().fg(theme.bar_empty)),
                    Span::raw(format!(" {:>4}", format::pct(p))),
                ])
            }
            None => Line::styled(
                if e.quota_max < 0 {
                    "unlimited"
                } else {
                    "no quota"
                },
                Style::new().fg(theme.band_unlimited),
            ),
        },
        Col::Used if limited => {
            let full = format!("{}/{}", e.used(), e.quota_max);
            let text = if full.len() <= w {
                full
            } else {
                format!("{}/{}", format::count(e.used()), format::count(e.quota_max))
            };
            Line::raw(fit(&text, w))
        }
        Col::Remaining if limited => Line::raw(fit(&format::count_fit(e.quota_remaining, w), w)),
        Col::Rate if limited => match e.rate_per_min() {
            Some(r) => Line::raw(fit(&format::rate(r), w)),
            None => dash(),
        },
        Col::Eta if limited => match e.eta_secs() {
            None => dash(),
            Some(0) => Line::raw("now"),
            Some(s) => {
                let text = fit(&format::duration(s), w);
                // The quota renews before it would run out: not a concern.
                if e.exhausts_before_renewal(now) {
                    Line::raw(text)
                } else {
                    Line::styled(
                        text,
                        Style::new().fg(theme.muted).add_modifier(Modifier::DIM),
                    )
                }
            }
        },
        Col::Renews if limited => {
            let secs = e.renews_in(now);
            if secs <= 0 {
                // Tyk renews lazily: the window resets with the next request.
                let text = if w >= 11 { "on next req" } else { "next req" };
                Line::styled(fit(text, w), Style::new().fg(theme.muted))
            } else {
                Line::raw(fit(&format::duration(secs), w))
            }
        }
        Col::Used | Col::Remaining | Col::Rate | Col::Eta | Col::Renews => dash(),
        // Drawn by `row`, which has the marks.
        Col::Fired => Line::raw(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_and_keep_the_essentials() {
        for w in [38u16, 60, 78, 100, 158, 198] {
            let cols = columns(w, true);
            let total: u16 = cols.iter().map(|(_, w)| *w).sum::<u16>() + cols.len() as u16 - 1;
            assert!(total <= w.max(NAME_MIN + 2 + 11 + 2), "{w}: {total}");
            for c in [Col::Status, Col::Name, Col::Usage] {
                assert!(cols.iter().any(|(s, _)| s.col == c), "{w} lacks {c:?}");
            }
        }
        let at80: Vec<Col> = columns(78, true).iter().map(|(s, _)| s.col).collect();
        assert!(
            at80.contains(&Col::Eta) && at80.contains(&Col::Renews) && at80.contains(&Col::Rate)
        );
        assert_eq!(columns(158, true).len(), SPECS.len());
        assert_eq!(columns(158, false).len(), SPECS.len() - 1);
        assert!(
            !at80.contains(&Col::Fired),
            "the name needs the room at 80 columns"
        );
        assert!(columns(98, true).iter().any(|(s, _)| s.col == Col::Fired));
    }
}
