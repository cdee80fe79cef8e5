//! The screen as a pure function of the state and the theme. One module per region:
//!
//! ```text
//! ┌ header: gateway, health, poll, data age │ counts ┐   header.rs
//! │ outage banner (only while the gateway fails)     │   header.rs
//! ├ body: quotas table | quota detail | help ────────┤   quotas.rs, detail.rs, help.rs,
//! │       notifications | templates preview          │   notifications.rs, preview.rs
//! │       events | orgs (+ save / conflict dialogs)  │   events.rs, orgs.rs
//! │       (a picker may sit over the body)           │   picker.rs
//! │       (the detail's trigger-limit editor)        │   triggers.rs
//! └ footer: filter/command line, flash, key hints ───┘   footer.rs
//! ```

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::Style;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Wrap};

use super::layout::{layout, too_small};
use super::state::{AppState, View};
use super::theme::Theme;
use super::{
    detail, events, footer, header, help, notifications, orgs, picker, preview, quotas, triggers,
};

pub use super::layout::{MIN_HEIGHT, MIN_WIDTH};

/// Draws the whole screen.
pub fn render(state: &AppState, theme: &Theme, frame: &mut Frame) {
    let area = frame.area();
    frame.render_widget(
        Block::new().style(Style::new().fg(theme.foreground).bg(theme.background)),
        area,
    );
    if too_small(area) {
        render_too_small(theme, frame, area);
        return;
    }
    let r = layout(state, area);
    header::render(state, theme, frame, r.header);
    if let Some(b) = r.banner {
        header::render_banner(state, theme, frame, b);
    }
    match state.view() {
        View::Quotas => quotas::render(state, theme, frame, r.body),
        View::Detail(id) => detail::render(state, theme, frame, r.body, id),
        View::Notifications => notifications::render_list(state, theme, frame, r.body),
        View::Notification(k) => notifications::render_detail(state, theme, frame, r.body, k),
        View::Templates => preview::render(state, theme, frame, r.body),
        View::Events => events::render_list(state, theme, frame, r.body),
        View::Event(id) => events::render_detail(state, theme, frame, r.body, *id),
        View::Orgs | View::OrgForm => orgs::render(state, theme, frame, r.body),
        View::Help(from) => help::render(from.kind(), theme, frame, r.body),
    }
    if let Some(p) = state.picker() {
        picker::render(p, theme, frame, r.body);
    }
    if let Some(e) = state.trigger_edit() {
        triggers::render(e, theme, frame, r.body);
    }
    footer::render(state, theme, frame, r.footer);
}

fn render_too_small(theme: &Theme, frame: &mut Frame, area: Rect) {
    let lines = vec![
        Line::styled("terminal too small", Style::new().fg(theme.warning_fg)),
        Line::raw(format!(
            "{}×{} < {MIN_WIDTH}×{MIN_HEIGHT}",
            area.width, area.height
        )),
        Line::styled("q quits", Style::new().fg(theme.muted)),
    ];
    let top = area.height.saturating_sub(lines.len() as u16) / 2;
    let inner = Rect::new(
        area.x,
        area.y + top,
        area.width,
        area.height.saturating_sub(top),
    );
    frame.render_widget(
        Paragraph::new(lines)
            .alignment(Alignment::Center)
            .wrap(Wrap { trim: true }),
        inner,
    );
}
