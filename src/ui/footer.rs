//! The bottom line: the `/` or `:` input while typing, else a flash message, else key hints
//! generated from the keymap.

use crossterm::event::KeyCode;
use ratatui::Frame;
use ratatui::layout::{Position, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::keymap::{self, Group};
use super::sanitize::{fit, width};
use super::state::{AppState, Level, Mode, View};
use super::theme::Theme;

pub(crate) fn render(state: &AppState, theme: &Theme, frame: &mut Frame, area: Rect) {
    if area.height == 0 {
        return;
    }
    let w = usize::from(area.width);
    let prompt = Style::new().fg(theme.filter).add_modifier(Modifier::BOLD);
    let line = match state.mode() {
        Mode::Filter(text) | Mode::Command(text) => {
            let (sigil, suggestion) = match state.mode() {
                Mode::Filter(_) => ("/", String::new()),
                _ => (":", suggestion(text)),
            };
            // Keep the end of a long input visible: that is where the cursor is.
            let shown = tail(text, w.saturating_sub(2));
            let cursor_x = area.x + 1 + width(&shown) as u16;
            frame.set_cursor_position(Position::new(
                cursor_x.min(area.right().saturating_sub(1)),
                area.y,
            ));
            Line::from(vec![
                Span::styled(sigil, prompt),
                Span::styled(shown, Style::new().fg(theme.foreground)),
                Span::styled(suggestion, Style::new().fg(theme.muted)),
            ])
        }
        // The field editor's own line is in the form; the footer says how to leave it (a
        // flash, e.g. why Enter was refused, goes first).
        Mode::Normal if editing(state) && state.flash().is_none() => {
            let key = Style::new().fg(theme.key_hint).add_modifier(Modifier::BOLD);
            let desc = Style::new().fg(theme.muted);
            Line::from(vec![
                Span::raw(" "),
                Span::styled("<Enter>", key),
                Span::styled(" keep the value  ", desc),
                Span::styled("<Esc>", key),
                Span::styled(" cancel  ", desc),
                Span::styled("<Ctrl-U>", key),
                Span::styled(" clear  ", desc),
                Span::styled("<Backspace>", key),
                Span::styled(" delete", desc),
            ])
        }
        Mode::Normal => match state.flash() {
            Some(f) => {
                let style = match f.level {
                    Level::Info => Style::new().fg(theme.info),
                    Level::Warn => Style::new().fg(theme.warning_fg),
                    Level::Error => Style::new().fg(theme.error_fg).bg(theme.error_bg),
                };
                Line::styled(fit(&format!(" {}", f.text), w), style)
            }
            None => hints(state, theme),
        },
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn editing(state: &AppState) -> bool {
    matches!(state.view(), View::Orgs | View::OrgForm) && state.orgs().editor().is_some()
}

/// The rest of the first completion, shown greyed after the input (k9s style).
fn suggestion(text: &str) -> String {
    if text.trim().is_empty() {
        return String::new();
    }
    keymap::completions(text)
        .first()
        .and_then(|c| c.strip_prefix(text.trim_start()))
        .unwrap_or_default()
        .to_string()
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

fn hints(state: &AppState, theme: &Theme) -> Line<'static> {
    let view = state.key_view();
    let key = Style::new().fg(theme.key_hint).add_modifier(Modifier::BOLD);
    let desc = Style::new().fg(theme.muted);
    let mut spans = vec![Span::raw(" ")];
    // A view's own verbs first, so a narrow footer cuts the generic keys rather than them.
    let own = |b: &(&keymap::Binding, &[keymap::Key])| {
        matches!(b.0.group, Group::Actions | Group::Navigation)
    };
    let active = keymap::active();
    let bindings = active.bindings().filter(|(b, _)| b.applies_to(view));
    for (b, keys) in bindings
        .clone()
        .filter(own)
        .chain(bindings.filter(|b| !own(b)))
    {
        let Some(hint) = b.hint else { continue };
        let label = if b.group == Group::Sort {
            // One hint for all sort keys: "<U N O R T W S A>".
            active
                .bindings()
                .filter(|(s, _)| s.group == Group::Sort && s.applies_to(view))
                .filter_map(|(_, keys)| match keys.first()?.code {
                    KeyCode::Char(c) => Some(c.to_string()),
                    _ => None,
                })
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            keys.first().map(|k| k.label()).unwrap_or_default()
        };
        spans.push(Span::styled(format!("<{label}>"), key));
        spans.push(Span::styled(format!(" {hint}  "), desc));
    }
    Line::from(spans)
}
