//! A small list drawn over the body (test channel, sample data), centred.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::sanitize::{fit, width};
use super::state::Picker;
use super::table::clamp_offset;
use super::theme::Theme;

const MAX_WIDTH: u16 = 72;

pub(crate) fn render(p: &Picker, theme: &Theme, frame: &mut Frame, body: Rect) {
    if body.width < 8 || body.height < 3 {
        return;
    }
    let w = MAX_WIDTH.min(body.width.saturating_sub(4)).max(8);
    let rows = (p.items.len() as u16).clamp(1, body.height.saturating_sub(2).max(1));
    let h = rows + 2;
    let area = Rect::new(
        body.x + (body.width - w) / 2,
        body.y + body.height.saturating_sub(h) / 2,
        w,
        h.min(body.height),
    );
    frame.render_widget(Clear, area);
    let block = Block::bordered()
        .border_style(Style::new().fg(theme.border_focused))
        .style(Style::new().fg(theme.foreground).bg(theme.background))
        .title(
            Line::styled(
                format!(" {} ", fit(&p.title, usize::from(w.saturating_sub(4)))),
                Style::new().fg(theme.title).add_modifier(Modifier::BOLD),
            )
            .alignment(Alignment::Center),
        )
        .title_bottom(Line::styled(
            " Enter chooses · Esc closes ",
            Style::new().fg(theme.muted),
        ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let visible = usize::from(inner.height).max(1);
    let offset = clamp_offset(0, p.cursor, visible, p.items.len());
    let iw = usize::from(inner.width);
    let lines: Vec<Line> = p
        .items
        .iter()
        .enumerate()
        .skip(offset)
        .take(visible)
        .map(|(i, it)| {
            let id = fit(it.label.as_deref().unwrap_or(&it.id), iw.saturating_sub(2));
            let mut spans = vec![Span::raw(format!(" {id}"))];
            if let Some(note) = &it.note {
                let room = iw.saturating_sub(width(&id) + 3);
                if room > 2 {
                    let colour = if it.warn {
                        theme.warning_fg
                    } else {
                        theme.muted
                    };
                    spans.push(Span::styled(
                        format!("  {}", fit(note, room.saturating_sub(1))),
                        Style::new().fg(colour),
                    ));
                }
            }
            let line = Line::from(spans);
            if i == p.cursor {
                line.style(
                    Style::new()
                        .fg(theme.selection_fg)
                        .bg(theme.selection_bg)
                        .add_modifier(Modifier::BOLD),
                )
            } else {
                line
            }
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
