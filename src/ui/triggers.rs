//! The trigger-limit editor over the quota detail (`m`): the input with its problem, the
//! session being read, the change to confirm with the exact write, the save in flight.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};

use super::orgs::{change_lines, dialog, dialog_width};
use super::sanitize::fit;
use super::state::{TriggerEdit, TriggerPhase};
use super::theme::Theme;
use crate::triggers::format_limits;

pub(crate) fn render(edit: &TriggerEdit, theme: &Theme, frame: &mut Frame, body: Rect) {
    let w = dialog_width(body);
    let muted = Style::new().fg(theme.muted);
    let title = format!("trigger limits of {}", fit(&edit.label, 50));
    match &edit.phase {
        TriggerPhase::Typing { problem } => {
            let mut lines = vec![
                Line::styled(
                    fit(
                        " Percentages at which the gateway's monitor fires (monitor.trigger_limits):",
                        w,
                    ),
                    muted,
                ),
                Line::from(vec![
                    Span::styled(" limits ", Style::new().fg(theme.header_label)),
                    Span::styled(
                        format!("{}▏", fit(&edit.text, w.saturating_sub(10))),
                        Style::new()
                            .fg(theme.foreground)
                            .add_modifier(Modifier::BOLD),
                    ),
                ]),
            ];
            match problem {
                Some(p) => lines.push(Line::styled(
                    fit(&format!(" {p}"), w),
                    Style::new().fg(theme.error_fg),
                )),
                None => lines.push(Line::styled(
                    fit(
                        " e.g. 95,80,50 — stored descending; empty or none: no per-key limits",
                        w,
                    ),
                    muted,
                )),
            }
            dialog(
                theme,
                frame,
                body,
                &title,
                lines,
                "Enter reads the session and shows the change · Esc cancels",
                problem.is_some(),
            );
        }
        TriggerPhase::Reading | TriggerPhase::Saving => {
            let what = if matches!(edit.phase, TriggerPhase::Reading) {
                format!(" reading {} from the gateway…", edit.target.label())
            } else {
                format!(" saving: {}…", edit.target.put_call())
            };
            dialog(
                theme,
                frame,
                body,
                &title,
                vec![Line::raw(fit(&what, w))],
                "Esc closes (a save in flight still completes)",
                false,
            );
        }
        TriggerPhase::Confirm(p) => {
            let mut lines = vec![Line::styled(
                fit(
                    &format!(
                        " {} → {}",
                        format_limits(&p.before),
                        format_limits(&p.after)
                    ),
                    w,
                ),
                Style::new()
                    .fg(theme.foreground)
                    .add_modifier(Modifier::BOLD),
            )];
            lines.extend(change_lines(
                &p.changes,
                w,
                Style::new().fg(theme.warning_fg),
            ));
            for note in [
                format!(" Sends {} with the whole session,", p.target.put_call()),
                " every other field exactly as read: the quota is not reset.".to_string(),
                " If the session changed at the gateway meanwhile, nothing is written.".to_string(),
            ] {
                lines.push(Line::styled(fit(&note, w), muted));
            }
            dialog(
                theme,
                frame,
                body,
                &format!("save {title}?"),
                lines,
                "y saves · n / Esc goes back to editing",
                false,
            );
        }
    }
}
