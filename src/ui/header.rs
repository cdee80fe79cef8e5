//! The header: what is watched, its health, the age of the data, the notification channels and
//! the counts that need attention; below it, while the gateway fails, a banner with the reason
//! and the retry.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::format;
use super::sanitize::{fit, wrap};
use super::state::AppState;
use super::theme::Theme;

/// Width of the counts column on the right.
const COUNTS_WIDTH: u16 = 38;
const MAX_BANNER_ROWS: u16 = 3;

pub(crate) fn render(state: &AppState, theme: &Theme, frame: &mut Frame, area: Rect) {
    let base = Style::new().fg(theme.header_fg).bg(theme.header_bg);
    let right_w = COUNTS_WIDTH.min(area.width / 2);
    let left = Rect::new(area.x, area.y, area.width - right_w, area.height);
    let right = Rect::new(area.x + left.width, area.y, right_w, area.height);
    let label = |t: &'static str| Span::styled(t, Style::new().fg(theme.header_label));
    let value_w = (left.width as usize).saturating_sub(11);

    let gateway = if state.settings().demo {
        vec![
            label(" Gateway: "),
            Span::styled(
                " DEMO ",
                Style::new()
                    .fg(theme.demo_badge_fg)
                    .bg(theme.demo_badge_bg)
                    .add_modifier(Modifier::BOLD),
            ),
            Span::styled(" embedded demo gateway", Style::new().fg(theme.muted)),
        ]
    } else {
        vec![
            label(" Gateway: "),
            Span::styled(
                fit(&state.settings().gateway_label, value_w),
                Style::new().fg(theme.link),
            ),
        ]
    };
    let lines = vec![
        Line::from(gateway),
        Line::from([vec![label(" Tyk:     ")], health(state, theme)].concat()),
        Line::from([vec![label(" Poll:    ")], poll(state, theme)].concat()),
        Line::from([vec![label(" Notify:  ")], channels(state, theme)].concat()),
    ];
    frame.render_widget(Paragraph::new(lines).style(base), left);
    frame.render_widget(Paragraph::new(counts(state, theme)).style(base), right);
}

fn health(state: &AppState, theme: &Theme) -> Vec<Span<'static>> {
    match state.hello() {
        None => vec![Span::styled("…", Style::new().fg(theme.muted))],
        Some(Err(_)) => vec![Span::styled(
            "unreachable",
            Style::new().fg(theme.band_exhausted),
        )],
        Some(Ok(h)) => {
            let colour = match h.status.as_str() {
                "pass" => theme.band_ok,
                "warn" => theme.warning_fg,
                _ => theme.band_exhausted,
            };
            let status = if h.status.is_empty() { "?" } else { &h.status };
            let mut out = vec![Span::styled(fit(status, 12), Style::new().fg(colour))];
            if !h.version.is_empty() {
                out.push(Span::raw(" · "));
                out.push(Span::raw(fit(&h.version, 16)));
            }
            out
        }
    }
}

fn poll(state: &AppState, theme: &Theme) -> Vec<Span<'static>> {
    let interval = state.settings().poll_interval;
    let mut out = vec![Span::raw(format::duration(interval.as_secs() as i64))];
    let muted = Style::new().fg(theme.muted);
    match state.last_ok() {
        Some(s) => {
            let age_ms = (state.now_ms() - s.finished_ms).max(0);
            let age = format::duration(age_ms / 1000);
            let stale_ms =
                i64::try_from(interval.as_millis().saturating_mul(3)).unwrap_or(i64::MAX);
            out.push(Span::raw(" · "));
            if age_ms > stale_ms {
                out.push(Span::styled(
                    "STALE",
                    Style::new()
                        .fg(theme.band_exhausted)
                        .add_modifier(Modifier::BOLD),
                ));
                out.push(Span::raw(format!(" swept {age} ago")));
            } else {
                out.push(Span::raw(format!(
                    "swept {age} ago in {}",
                    format::elapsed(s.duration)
                )));
            }
            if state.sweeping_since().is_some() {
                out.push(Span::styled(" ⟳", muted));
            }
        }
        None if state.sweeping_since().is_some() => {
            out.push(Span::styled(" · first sweep…", muted));
        }
        None => out.push(Span::styled(" · waiting for the first sweep", muted)),
    }
    out
}

/// The configured channels and those a receiver switched off with a 410.
fn channels(state: &AppState, theme: &Theme) -> Vec<Span<'static>> {
    let muted = Style::new().fg(theme.muted);
    let Some(snap) = state.notifications().snapshot() else {
        return vec![Span::styled("…", muted)];
    };
    let n = snap.channels.len();
    if n == 0 {
        return vec![Span::styled("no channels", muted)];
    }
    let mut out = vec![Span::raw(format!(
        "{n} channel{}",
        if n == 1 { "" } else { "s" }
    ))];
    let warn = Style::new()
        .fg(theme.warning_fg)
        .add_modifier(Modifier::BOLD);
    let off = snap.disabled.len();
    if off > 0 {
        out.push(Span::raw(" · "));
        out.push(Span::styled(format!("{off} disabled (410)"), warn));
    }
    // A shared store: how many instances share the work (this console is one of them), and
    // whether they run different thresholds or channels.
    if let Some(peers) = &snap.peers {
        let n = peers.live.len();
        out.push(Span::raw(" · "));
        out.push(Span::raw(format!(
            "{n} instance{}",
            if n == 1 { "" } else { "s" }
        )));
        if peers.disagree() {
            out.push(Span::raw(" · "));
            out.push(Span::styled("settings differ", warn));
        }
    }
    out
}

fn counts(state: &AppState, theme: &Theme) -> Vec<Line<'static>> {
    let c = state.quotas().counts();
    let label = Style::new().fg(theme.header_label);
    let plain = Style::new().fg(theme.header_fg);
    let hot = |n: usize, colour| {
        if n > 0 {
            Style::new().fg(colour).add_modifier(Modifier::BOLD)
        } else {
            plain
        }
    };
    let errors = state.item_errors();
    let thresholds = &state.settings().global_thresholds;
    let global = if thresholds.is_empty() {
        "none".to_string()
    } else {
        thresholds
            .iter()
            .map(|t| format::threshold(*t))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut third = vec![
        Span::styled("Global thresholds: ", label),
        Span::styled(fit(&global, 18), plain),
    ];
    if state.settings().readonly {
        third.push(Span::styled(" RO", Style::new().fg(theme.muted)));
    }
    vec![
        Line::from(vec![
            Span::styled("Watched:        ", label),
            Span::styled(format!("{:>6}", c.watched), plain),
            Span::styled("  Exhausted:", label),
            Span::styled(
                format!("{:>4}", c.exhausted),
                hot(c.exhausted, theme.band_exhausted),
            ),
        ]),
        Line::from(vec![
            Span::styled("Over threshold: ", label),
            Span::styled(format!("{:>6}", c.over), hot(c.over, theme.band_warn)),
            Span::styled("  Errors:   ", label),
            Span::styled(format!("{:>4}", errors), hot(errors, theme.warning_fg)),
        ]),
        outbox(state, theme),
        Line::from(third),
    ]
}

/// Pending (incl. in flight) and failed (incl. dead) notifications; failures stand out.
fn outbox(state: &AppState, theme: &Theme) -> Line<'static> {
    let label = Style::new().fg(theme.header_label);
    let plain = Style::new().fg(theme.header_fg);
    let Some(c) = state.notifications().counts() else {
        return Line::from(vec![
            Span::styled("Pending:        ", label),
            Span::styled(format!("{:>6}", "-"), plain),
            Span::styled("  Failed:   ", label),
            Span::styled(format!("{:>4}", "-"), plain),
        ]);
    };
    let pending = c.pending + c.inflight;
    let failed = c.failed + c.dead;
    let failed_style = if failed > 0 {
        Style::new()
            .fg(theme.error_fg)
            .bg(theme.error_bg)
            .add_modifier(Modifier::BOLD)
    } else {
        plain
    };
    Line::from(vec![
        Span::styled("Pending:        ", label),
        Span::styled(format!("{pending:>6}"), plain),
        Span::styled(
            "  Failed:   ",
            if failed > 0 { failed_style } else { label },
        ),
        Span::styled(format!("{failed:>4}"), failed_style),
    ])
}

/// The outage banner: the error (which says what to fix), the retry, and how old the data is.
fn banner_text(state: &AppState) -> Option<String> {
    let o = state.outage()?;
    let mut text = format!("✖ {}", o.message);
    match state.retry_in_secs() {
        Some(0) => text.push_str(" · retrying now"),
        Some(s) => text.push_str(&format!(" · retrying in {}", format::duration(s))),
        None => {}
    }
    match state.last_ok() {
        Some(s) => text.push_str(&format!(
            " · data from {} ago",
            format::duration((state.now_ms() - s.finished_ms).max(0) / 1000)
        )),
        None => text.push_str(" · no data yet"),
    }
    Some(text)
}

pub(crate) fn banner_rows(state: &AppState, width: u16) -> u16 {
    banner_text(state).map_or(0, |t| {
        (wrap(&t, usize::from(width.saturating_sub(2))).len() as u16).clamp(1, MAX_BANNER_ROWS)
    })
}

pub(crate) fn render_banner(state: &AppState, theme: &Theme, frame: &mut Frame, area: Rect) {
    let Some(text) = banner_text(state) else {
        return;
    };
    let style = Style::new()
        .fg(theme.error_fg)
        .bg(theme.error_bg)
        .add_modifier(Modifier::BOLD);
    let w = usize::from(area.width.saturating_sub(2));
    let mut rows = wrap(&text, w);
    if rows.len() > usize::from(area.height) {
        rows.truncate(usize::from(area.height));
        if let Some(last) = rows.last_mut() {
            *last = fit(&format!("{last} …"), w);
        }
    }
    let lines: Vec<Line> = rows
        .into_iter()
        .map(|r| Line::raw(format!(" {r}")))
        .collect();
    frame.render_widget(Paragraph::new(lines).style(style), area);
}
