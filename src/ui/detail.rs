//! The detail of one quota: a chart of `used` over the retained history with the limit and
//! every threshold as flat lines, and panels for the quota, the key's identity, the other
//! limits of the same key, trigger limits, tags and meta_data.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Chart, Dataset, GraphType, Paragraph};

use super::format;
use super::quotas::{band_color, status_tag};
use super::sanitize::{clean, fit};
use super::state::AppState;
use super::table::scope_label;
use super::theme::Theme;
use crate::quota::QuotaId;
use crate::quota::board::Entry;
use crate::quota::model::{Band, Scope};

/// Width from which the panels sit in three columns rather than two.
const THREE_COLUMNS_FROM: u16 = 140;
const LABEL_W: usize = 11;

pub(crate) fn render(state: &AppState, theme: &Theme, frame: &mut Frame, area: Rect, id: &QuotaId) {
    let Some(e) = state.board().get(id) else {
        let block = Block::bordered()
            .border_style(Style::new().fg(theme.border))
            .title(Line::styled(
                format!(" {} ", fit(&id.to_string(), 60)),
                Style::new().fg(theme.title),
            ));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        frame.render_widget(
            Paragraph::new(Line::styled(
                "this quota is no longer on the gateway (key deleted or limit removed) — Esc goes back",
                Style::new().fg(theme.warning_fg),
            )),
            inner,
        );
        return;
    };
    let chart_h = (area.height * 2 / 5).clamp(6.min(area.height), 18);
    let [chart_area, panels] =
        Layout::vertical([Constraint::Length(chart_h), Constraint::Min(0)]).areas(area);
    render_chart(state, theme, frame, chart_area, e);

    let quota = Panel::new("quota", quota_lines(state, theme, e));
    let identity = Panel::new("identity", identity_lines(state, theme, e));
    let limits = Panel::new(
        match e.id.scope() {
            Scope::Org => "limits",
            _ => "other limits of this key",
        },
        limit_lines(state, theme, e),
    );
    let triggers = Panel::new("thresholds · tags", trigger_lines(state, theme, e));
    let meta = Panel::new("meta_data", meta_lines(theme, e));
    if panels.width >= THREE_COLUMNS_FROM {
        let [a, b, c] = Layout::horizontal([Constraint::Ratio(1, 3); 3]).areas(panels);
        stack(frame, theme, a, vec![quota]);
        stack(frame, theme, b, vec![identity, triggers]);
        stack(frame, theme, c, vec![limits, meta]);
    } else {
        let [a, b] = Layout::horizontal([Constraint::Ratio(1, 2); 2]).areas(panels);
        stack(frame, theme, a, vec![quota, limits, meta]);
        stack(frame, theme, b, vec![identity, triggers]);
    }
}

struct Panel {
    title: &'static str,
    lines: Vec<Line<'static>>,
}

impl Panel {
    fn new(title: &'static str, lines: Vec<Line<'static>>) -> Panel {
        Panel { title, lines }
    }
}

/// Bordered panels one below the other, each as tall as its text; the last takes the rest.
fn stack(frame: &mut Frame, theme: &Theme, area: Rect, panels: Vec<Panel>) {
    let n = panels.len();
    let constraints: Vec<Constraint> = panels
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i + 1 == n {
                Constraint::Min(0)
            } else {
                Constraint::Length(p.lines.len() as u16 + 2)
            }
        })
        .collect();
    let areas = Layout::vertical(constraints).split(area);
    for (p, a) in panels.into_iter().zip(areas.iter()) {
        if a.height < 3 {
            continue;
        }
        let block = Block::bordered()
            .border_style(Style::new().fg(theme.border))
            .title(Line::styled(
                format!(" {} ", p.title),
                Style::new().fg(theme.title),
            ));
        let inner = block.inner(*a);
        frame.render_widget(block, *a);
        let w = usize::from(inner.width);
        let lines: Vec<Line> = p.lines.into_iter().map(|l| clip(l, w)).collect();
        frame.render_widget(Paragraph::new(lines), inner);
    }
}

/// Cuts a line of already-clean spans to `w` cells, ending in `…`.
fn clip(line: Line<'static>, w: usize) -> Line<'static> {
    if line.width() <= w {
        return line;
    }
    let mut left = w;
    let mut spans = Vec::new();
    for s in line.spans {
        let sw = s.width();
        if sw < left {
            left -= sw;
            spans.push(s);
        } else {
            // The appended `…` forces `fit` to cut even a span that exactly fills the rest.
            spans.push(Span::styled(fit(&format!("{}…", s.content), left), s.style));
            break;
        }
    }
    Line::from(spans).style(line.style)
}

fn kv(theme: &Theme, label: &str, value: impl Into<Vec<Span<'static>>>) -> Line<'static> {
    let mut spans = vec![Span::styled(
        format!("{label:<LABEL_W$}"),
        Style::new().fg(theme.header_label),
    )];
    spans.extend(value.into());
    Line::from(spans)
}

fn text(s: impl Into<String>) -> Vec<Span<'static>> {
    vec![Span::raw(s.into())]
}

fn styled(s: impl Into<String>, style: Style) -> Vec<Span<'static>> {
    vec![Span::styled(s.into(), style)]
}

fn render_chart(state: &AppState, theme: &Theme, frame: &mut Frame, area: Rect, e: &Entry) {
    let now = state.now_ms();
    let window = state.settings().retention.as_secs().max(60) as f64;
    let points: Vec<(f64, f64)> = state
        .board()
        .series(e)
        .into_iter()
        .map(|(t, used)| (((t - now) as f64 / 1000.0).max(-window), used as f64))
        .collect();
    let max_used = points.iter().map(|p| p.1).fold(0.0, f64::max);
    let min_used = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let (bottom, top) = y_range(min_used, max_used, e.quota_max);

    let mut limits: Vec<(String, Vec<(f64, f64)>)> = if e.is_limited() {
        let max = e.quota_max as f64;
        let mut l = vec![("max".to_string(), vec![(-window, max), (0.0, max)])];
        for t in e.thresholds(&state.settings().global_thresholds) {
            if t == 100.0 {
                continue; // the max line
            }
            let y = max * t / 100.0;
            l.push((format::threshold(t), vec![(-window, y), (0.0, y)]));
        }
        l
    } else {
        Vec::new()
    };
    limits.retain(|(_, data)| data.first().is_some_and(|p| p.1 >= bottom));
    // The usage line is drawn last so that the flat limit lines never hide it.
    let mut datasets: Vec<Dataset> = limits
        .iter()
        .map(|(name, data)| {
            Dataset::default()
                .name(name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(Style::new().fg(theme.chart_threshold))
                .data(data)
        })
        .collect();
    datasets.push(
        Dataset::default()
            .name("used")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(theme.chart_line))
            .data(&points),
    );
    // A legend inside the plot would cover the data; the bottom border names the lines.
    let mut legend = vec![
        Span::raw(" "),
        Span::styled("━ used", Style::new().fg(theme.chart_line)),
    ];
    if !limits.is_empty() {
        let names: Vec<&str> = limits.iter().map(|(n, _)| n.as_str()).collect();
        legend.push(Span::styled(
            format!("  ━ {}", names.join(" ")),
            Style::new().fg(theme.chart_threshold),
        ));
    }
    legend.push(Span::raw(" "));
    let window_label = format::duration(window as i64);
    let title = format!(
        " {} · {} · used over the last {window_label} ",
        fit(e.meta.label(), 40),
        scope_text(e)
    );
    let axis_style = Style::new().fg(theme.muted);
    let chart = Chart::new(datasets)
        .block(
            Block::bordered()
                .border_style(Style::new().fg(theme.border_focused))
                .title(
                    Line::styled(
                        title,
                        Style::new().fg(theme.title).add_modifier(Modifier::BOLD),
                    )
                    .alignment(Alignment::Center),
                )
                .title_bottom(Line::from(legend)),
        )
        .x_axis(
            Axis::default()
                .style(axis_style)
                .bounds([-window, 0.0])
                .labels([
                    format!("-{window_label}"),
                    format!("-{}", format::duration(window as i64 / 2)),
                    "now".to_string(),
                ]),
        )
        .y_axis(
            Axis::default()
                .style(axis_style)
                .bounds([bottom, top])
                .labels(y_labels(bottom, top)),
        )
        .legend_position(None);
    frame.render_widget(chart, area);
}

/// The y-axis range: up to the quota's max (or the highest usage), zoomed in on the part of
/// the range the usage moved in, so a slope towards the limit is visible even late in a
/// window. The range is widened downwards until its three tick labels differ: a flat line (a
/// quota that stood at its max for the whole window) would otherwise span nothing and read
/// "2.5k" at every tick; it is shown from 0.
fn y_range(min_used: f64, max_used: f64, quota_max: i64) -> (f64, f64) {
    let top = (quota_max.max(0) as f64).max(max_used).max(2.0);
    let mut bottom = if min_used.is_finite() && min_used < top {
        (min_used - (top - min_used) * 0.25).max(0.0).floor()
    } else {
        0.0
    };
    loop {
        let [lo, mid, hi] = y_labels(bottom, top);
        if bottom <= 0.0 || (lo != mid && mid != hi) {
            return (bottom, top);
        }
        bottom = (top - 2.0 * (top - bottom).max(1.0)).max(0.0).floor();
    }
}

fn y_labels(bottom: f64, top: f64) -> [String; 3] {
    [
        format::count(bottom as i64),
        format::count(((bottom + top) / 2.0) as i64),
        format::count(top as i64),
    ]
}

/// "key 5e9d…ef6d", "api Orders API of 5e9d…ef6d", "org 5e9d9544…".
fn scope_text(e: &Entry) -> String {
    match e.id.scope() {
        Scope::Key => format!("key {}", e.meta.masked()),
        Scope::Api => format!("{} limit of {}", fit(scope_label(e), 30), e.meta.masked()),
        Scope::Org => format!("org {}", fit(&e.meta.org_id, 30)),
    }
}

fn quota_lines(state: &AppState, theme: &Theme, e: &Entry) -> Vec<Line<'static>> {
    let now = state.now_ms();
    let muted = Style::new().fg(theme.muted);
    let band = e.band();
    let mut out = Vec::new();
    let Some(p) = e.usage_pct() else {
        let what = if e.quota_max < 0 {
            "unlimited (quota_max -1)"
        } else {
            "no quota enforced (quota_max 0)"
        };
        out.push(kv(
            theme,
            "Quota",
            styled(what, Style::new().fg(theme.band_unlimited)),
        ));
        out.push(kv(
            theme,
            "Monitored",
            styled("no — nothing to count against", muted),
        ));
        return out;
    };
    out.push(kv(
        theme,
        "Used",
        text(format!("{} / {} ({p:.1}%)", e.used(), e.quota_max)),
    ));
    let window = if e.quota_renewal_rate > 0 {
        format!(" · window {}", format::duration(e.quota_renewal_rate))
    } else {
        " · never renews".to_string()
    };
    out.push(kv(
        theme,
        "Remaining",
        text(format!("{}{window}", e.quota_remaining)),
    ));
    out.push(kv(
        theme,
        "Band",
        styled(
            format!("{} {}", band.glyph(), band_name(band)),
            Style::new().fg(band_color(theme, band)),
        ),
    ));
    let renews = e.renews_in(now);
    out.push(kv(
        theme,
        "Renews",
        if renews <= 0 {
            styled("on the next request (Tyk renews lazily)", muted)
        } else {
            let at = format::utc(e.quota_renews);
            // Within a day the time says enough; further out the date matters.
            let at = if renews < 86_400 {
                at.get(11..).unwrap_or(&at).to_string()
            } else {
                at
            };
            text(format!("in {} ({at})", format::duration(renews)))
        },
    ));
    let mut rate = match e.rate_per_min() {
        Some(r) => text(format!("{} req/min", format::rate(r))),
        None => styled("not measured yet", muted),
    };
    match e.delta() {
        Some(d) if d > 0 => rate.push(Span::styled(
            format!(" (↑ +{d})"),
            Style::new().fg(theme.delta_up),
        )),
        Some(d) if d < 0 => rate.push(Span::styled(
            format!(" (↓ {d})"),
            Style::new().fg(theme.delta_down),
        )),
        _ => {}
    }
    out.push(kv(theme, "Rate", rate));
    out.push(kv(
        theme,
        "Exhausted",
        match e.eta_secs() {
            Some(0) => styled("now", Style::new().fg(theme.band_exhausted)),
            Some(s) if e.exhausts_before_renewal(now) => styled(
                format!("in {} — before renewal", format::duration(s)),
                Style::new().fg(theme.band_critical),
            ),
            Some(s) => styled(format!("in {} — renews first", format::duration(s)), muted),
            None => styled("not consuming", muted),
        },
    ));
    out
}

fn band_name(b: Band) -> &'static str {
    match b {
        Band::Ok => "ok",
        Band::Warn => "warning",
        Band::Critical => "critical",
        Band::Exhausted => "exhausted",
        Band::Unlimited => "unlimited",
    }
}

fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        clean(s).into_owned()
    }
}

fn identity_lines(state: &AppState, theme: &Theme, e: &Entry) -> Vec<Line<'static>> {
    let m = &e.meta;
    let now_s = state.now_ms().div_euclid(1000);
    let mut out = vec![kv(theme, "Alias", text(or_dash(&m.alias)))];
    if e.id.key().is_some() {
        out.push(kv(theme, "Key", text(m.masked())));
    }
    out.push(kv(theme, "Org", text(or_dash(&m.org_id))));
    out.push(kv(
        theme,
        "Scope",
        text(match e.id.scope() {
            Scope::Key => "key (all APIs)".to_string(),
            Scope::Org => "organisation".to_string(),
            Scope::Api => format!("API {} ({})", or_dash(m.api_name()), or_dash(m.api_id())),
        }),
    ));
    if e.id.key().is_some() {
        out.push(kv(
            theme,
            "Policies",
            text(if m.policies.is_empty() {
                "-".to_string()
            } else {
                clean(&m.policies.join(", ")).into_owned()
            }),
        ));
    }
    let status = match status_tag(e, state.now_ms()) {
        Some("expired") => styled(
            format!("expired {}", format::utc(m.expires)),
            Style::new().fg(theme.band_exhausted),
        ),
        Some(_) => styled("inactive", Style::new().fg(theme.inactive)),
        None if m.expires >= 1 => text(format!(
            "active · expires in {} ({})",
            format::duration(m.expires - now_s),
            format::utc(m.expires)
        )),
        None => text("active · never expires"),
    };
    out.push(kv(theme, "Status", status));
    if m.rate() > 0.0 {
        out.push(kv(
            theme,
            "Rate limit",
            text(format!("{} per {}s", m.rate(), m.per())),
        ));
    }
    out
}

fn limit_lines(state: &AppState, theme: &Theme, e: &Entry) -> Vec<Line<'static>> {
    let muted = Style::new().fg(theme.muted);
    if e.id.scope() == Scope::Org {
        return vec![Line::styled(
            "an organisation quota has no per-API limits",
            muted,
        )];
    }
    let entries = state.board().entries();
    let sib: Vec<&Entry> = state
        .quotas()
        .siblings()
        .iter()
        .filter_map(|&i| entries.get(i))
        .collect();
    if sib.is_empty() {
        return vec![Line::styled("none", muted)];
    }
    sib.into_iter()
        .map(|s| {
            let usage = match s.usage_pct() {
                Some(p) => format!(
                    "{}/{} {}",
                    format::count(s.used()),
                    format::count(s.quota_max),
                    format::pct(p)
                ),
                None => "unlimited".to_string(),
            };
            let colour = band_color(theme, s.band());
            Line::from(vec![
                Span::styled(format!("{} ", s.band().glyph()), Style::new().fg(colour)),
                Span::raw(format!("{:<16} ", fit(scope_label(s), 16))),
                Span::styled(usage, Style::new().fg(colour)),
            ])
        })
        .collect()
}

fn trigger_lines(state: &AppState, theme: &Theme, e: &Entry) -> Vec<Line<'static>> {
    let muted = Style::new().fg(theme.muted);
    let list = |v: &[f64]| -> String {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.iter()
                .map(|t| format::threshold(*t))
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let global = &state.settings().global_thresholds;
    let mut out = vec![
        kv(theme, "Triggers", text(list(&e.meta.trigger_limits))),
        kv(theme, "Global", text(list(global))),
    ];
    out.push(kv(
        theme,
        "Reached",
        if !e.is_limited() {
            styled("never monitored (unlimited)", muted)
        } else {
            match e.highest_threshold_reached(global) {
                Some(t) => styled(format::threshold(t), Style::new().fg(theme.band_warn)),
                None => styled("none", muted),
            }
        },
    ));
    out.push(kv(
        theme,
        "Tags",
        text(if e.meta.tags.is_empty() {
            "-".to_string()
        } else {
            clean(&e.meta.tags.join(", ")).into_owned()
        }),
    ));
    out
}

fn meta_lines(theme: &Theme, e: &Entry) -> Vec<Line<'static>> {
    if e.meta.meta_data.is_empty() {
        return vec![Line::styled("empty", Style::new().fg(theme.muted))];
    }
    e.meta
        .meta_data
        .map()
        .iter()
        .map(|(k, v)| {
            // Compact JSON of the value; `clean` replaces what JSON leaves unescaped (DEL, C1).
            let json = serde_json::to_string(v).unwrap_or_default();
            Line::from(vec![
                Span::styled(
                    format!("{}: ", clean(k)),
                    Style::new().fg(theme.header_label),
                ),
                Span::raw(clean(&json).into_owned()),
            ])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_y_axis_has_distinct_ticks() {
        // A quota at its max the whole window: was 2500..2500, "2.5k" three times.
        assert_eq!(y_range(2500.0, 2500.0, 2500), (0.0, 2500.0));
        assert_eq!(y_labels(0.0, 2500.0), ["0", "1.2k", "2.5k"]);
        // Unlimited, idle.
        let (b, t) = y_range(0.0, 0.0, -1);
        assert_eq!(y_labels(b, t), ["0", "1", "2"]);
        // A slope keeps its zoom.
        assert_eq!(y_range(600.0, 900.0, 1000), (500.0, 1000.0));
        // A narrow one is widened until the ticks differ.
        for (lo, hi, max) in [
            (2490.0, 2500.0, 2500),
            (99_990.0, 100_000.0, 100_000),
            (7.0, 7.0, 0),
        ] {
            let (b, t) = y_range(lo, hi, max);
            let [l, m, h] = y_labels(b, t);
            assert!(l != m && m != h, "{lo}..{hi} of {max}: {l} {m} {h}");
            assert!(b <= lo && t >= hi);
        }
    }
}
