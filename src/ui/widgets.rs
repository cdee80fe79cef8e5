//! Pieces every list view draws alike: the selectable table and the "a-b/n" position of a
//! scrolled pane.

use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Row, Table, TableState};

use super::sanitize::fit;
use super::table::Filter;
use super::theme::Theme;

/// A table with the theme's header and selection styles; `selected` is the row on screen.
pub fn render_list<'a>(
    frame: &mut Frame,
    area: Rect,
    theme: &Theme,
    header: Row<'a>,
    rows: Vec<Row<'a>>,
    widths: impl IntoIterator<Item = Constraint>,
    selected: usize,
) {
    let header = header.style(
        Style::new()
            .fg(theme.table_header)
            .add_modifier(Modifier::BOLD),
    );
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(
            Style::new()
                .fg(theme.selection_fg)
                .bg(theme.selection_bg)
                .add_modifier(Modifier::BOLD),
        );
    let mut ts = TableState::default().with_selected(Some(selected));
    frame.render_stateful_widget(table, area, &mut ts);
}

/// `block` with ` first-last/total ` at its bottom right when `total` lines do not fit in
/// `rows`; the scroll offset clamped so the last page stays full.
pub fn scrolled<'a>(
    block: Block<'a>,
    theme: &Theme,
    scroll: usize,
    rows: usize,
    total: usize,
) -> (Block<'a>, usize) {
    let scroll = scroll.min(total.saturating_sub(rows.max(1)));
    if total <= rows || rows == 0 {
        return (block, scroll);
    }
    let position = format!(" {}-{}/{} ", scroll + 1, (scroll + rows).min(total), total);
    let block = block.title_bottom(
        Line::styled(position, Style::new().fg(theme.muted)).alignment(Alignment::Right),
    );
    (block, scroll)
}

/// A list's title: ` name[count] ` and, when filtering, `</text> `.
pub fn list_title(theme: &Theme, name: &str, count: usize, filter: &Filter) -> Vec<Span<'static>> {
    let mut title = vec![Span::styled(
        format!(" {name}[{count}] "),
        Style::new().fg(theme.title).add_modifier(Modifier::BOLD),
    )];
    if !filter.is_empty() {
        title.push(Span::styled(
            format!("</{}> ", fit(filter.text(), 40)),
            Style::new().fg(theme.filter).add_modifier(Modifier::BOLD),
        ));
    }
    title
}
