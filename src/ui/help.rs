//! `?`: the keys of the view help was opened from and the `:` commands, generated from the
//! keymap, flowed into as many columns as the height needs.

use ratatui::Frame;
use ratatui::layout::{Alignment, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::keymap::{self, COMMANDS, Group, ViewKind};
use super::sanitize::{fit, width, wrap};
use super::theme::Theme;

enum Item {
    Heading(&'static str),
    Key(String, &'static str),
    Text(String),
}

/// Width the command list is wrapped to.
const COMMANDS_WIDTH: usize = 34;

fn sections(view: ViewKind) -> Vec<Vec<Item>> {
    let mut out = Vec::new();
    for g in Group::ALL {
        let keys: Vec<Item> = keymap::active()
            .bindings()
            .filter(|(b, _)| b.group == g && b.applies_to(view))
            .map(|(b, keys)| Item::Key(keymap::keys_label(keys), b.description))
            .collect();
        if !keys.is_empty() {
            out.push(
                std::iter::once(Item::Heading(g.title()))
                    .chain(keys)
                    .collect(),
            );
        }
    }
    let names: Vec<String> = COMMANDS
        .iter()
        .map(|(name, ..)| format!(":{name}"))
        .collect();
    let mut cmds = vec![Item::Heading("Commands (Tab completes)")];
    cmds.extend(
        wrap(&names.join(" "), COMMANDS_WIDTH)
            .into_iter()
            .map(Item::Text),
    );
    out.push(cmds);
    out
}

/// Sections into columns of `rows`: a section moves to the next column rather than leave its
/// heading alone at the bottom; with `whole`, one that fits a column is never split. One
/// taller than a column continues in the next.
fn flow(sections: Vec<Vec<Item>>, rows: usize, whole: bool) -> Vec<Vec<Item>> {
    let rows = rows.max(2);
    let mut cols: Vec<Vec<Item>> = vec![Vec::new()];
    for section in sections {
        let used = cols.last().map_or(0, Vec::len);
        let split = whole && used + section.len() > rows && section.len() <= rows;
        if used > 0 && (used + 2 > rows || split) {
            cols.push(Vec::new());
        }
        for item in section {
            if cols.last().is_some_and(|c| c.len() >= rows) {
                cols.push(Vec::new());
            }
            if let Some(c) = cols.last_mut() {
                c.push(item);
            }
        }
    }
    cols
}

pub(crate) fn render(view: ViewKind, theme: &Theme, frame: &mut Frame, area: Rect) {
    let block = Block::bordered()
        .border_style(Style::new().fg(theme.border_focused))
        .title(
            Line::styled(
                " help ",
                Style::new().fg(theme.title).add_modifier(Modifier::BOLD),
            )
            .alignment(Alignment::Center),
        )
        .title_bottom(Line::styled(" Esc closes ", Style::new().fg(theme.muted)));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if inner.height == 0 || inner.width == 0 {
        return;
    }
    // Whole sections read better, unless keeping them whole costs a column (narrower text).
    let rows = usize::from(inner.height);
    let whole = flow(sections(view), rows, true);
    let split = flow(sections(view), rows, false);
    let cols = if whole.len() <= split.len() {
        whole
    } else {
        split
    };
    let col_w = inner.width / cols.len().max(1) as u16;
    let key_w = cols
        .iter()
        .flatten()
        .map(|i| match i {
            Item::Key(k, _) => width(k),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
        .min(usize::from(col_w) / 2);
    let heading = Style::new()
        .fg(theme.header_label)
        .add_modifier(Modifier::BOLD);
    let key = Style::new().fg(theme.key_hint).add_modifier(Modifier::BOLD);
    for (c, items) in cols.iter().enumerate() {
        let area = Rect::new(
            inner.x + c as u16 * col_w,
            inner.y,
            col_w.saturating_sub(1),
            inner.height,
        );
        let w = usize::from(area.width);
        let lines: Vec<Line> = items
            .iter()
            .map(|i| match i {
                Item::Heading(h) => Line::styled(fit(h, w), heading),
                Item::Key(k, d) => {
                    let k = fit(k, key_w);
                    let pad = " ".repeat(key_w.saturating_sub(width(&k)));
                    Line::from(vec![
                        Span::styled(format!(" {k}{pad} "), key),
                        Span::raw(fit(d, w.saturating_sub(key_w + 2))),
                    ])
                }
                Item::Text(t) => Line::styled(fit(&format!(" {t}"), w), key),
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), area);
    }
}
