//! The Templates view's keys.

use crate::ui::keymap::Action;
use crate::ui::state::{AppState, Level, PickItem, Picker, PickerKind, UiAction};

use super::{Body, Focus};

impl AppState {
    /// Keys of the Templates view: `Some(result)` when handled here.
    pub(in crate::ui::state) fn templates_action(
        &mut self,
        action: Action,
    ) -> Option<Option<UiAction>> {
        let g = crate::ui::layout::templates_geometry(self);
        let (rows, page) = (g.list_rows.max(1), g.body_rows.max(1));
        let t = &mut self.templates;
        let on_list = t.focus() == Focus::List;
        match action {
            Action::Up | Action::Down | Action::PageUp | Action::PageDown => {
                let step = if on_list { rows } else { page } as isize;
                let delta = match action {
                    Action::Up => -1,
                    Action::Down => 1,
                    Action::PageUp => -step,
                    _ => step,
                };
                if on_list {
                    t.move_list(t.cursor().saturating_add_signed(delta), rows);
                } else {
                    t.scroll_to(t.scroll().saturating_add_signed(delta), page);
                }
            }
            Action::Top if on_list => t.move_list(0, rows),
            Action::Top => t.scroll_to(0, page),
            Action::Bottom if on_list => t.move_list(usize::MAX, rows),
            Action::Bottom => t.scroll_to(usize::MAX, page),
            Action::FocusNext => t.toggle_focus(),
            Action::Back => t.set_focus(Focus::List),
            Action::TogglePart => t.set_body(if t.body() == Body::Text {
                Body::Html
            } else {
                Body::Text
            }),
            Action::ToggleRaw => t.set_body(if t.body() == Body::Raw {
                Body::Html
            } else {
                Body::Raw
            }),
            Action::NextSample | Action::PrevSample => {
                let delta = if action == Action::NextSample { 1 } else { -1 };
                if !t.step_sample(delta) {
                    self.flash_msg(Level::Info, "this template has only one sample");
                }
            }
            Action::PickSample => {
                let samples = t.samples();
                let current = t.sample_id();
                if samples.is_empty() {
                    self.flash_msg(Level::Warn, "this template has no sample data");
                    return Some(None);
                }
                let cursor = samples
                    .iter()
                    .position(|s| Some(&s.id) == current.as_ref())
                    .unwrap_or(0);
                // The files, then the real events or notifications, newest first.
                let now = self.now_ms;
                let items = samples
                    .into_iter()
                    .map(|s| PickItem {
                        label: s.is_real().then(|| s.title(now)),
                        note: Some(s.detail),
                        id: s.id,
                        warn: false,
                    })
                    .collect();
                self.picker = Some(Picker {
                    kind: PickerKind::Sample,
                    title: "sample data".into(),
                    items,
                    cursor,
                });
            }
            Action::OpenExternal => {
                let open = t.preview().and_then(|p| {
                    Some(UiAction::OpenHtml {
                        name: p.name.clone(),
                        html: p.html_source.clone()?,
                    })
                });
                if open.is_some() {
                    self.flash_msg(Level::Info, "opening the HTML in the browser…");
                } else {
                    self.flash_msg(
                        Level::Warn,
                        "nothing to open: the HTML part does not render",
                    );
                }
                return Some(open);
            }
            Action::EditTemplate => {
                let Some(name) = t.selected().map(str::to_owned) else {
                    return Some(None);
                };
                if self.settings.readonly {
                    self.flash_msg(
                        Level::Warn,
                        "read-only (--readonly): templates are not edited",
                    );
                    return Some(None);
                }
                let Some(dir) = t.user_dir().map(std::path::Path::to_path_buf) else {
                    self.flash_msg(
                        Level::Warn,
                        "no config directory: there is no user template directory to edit in",
                    );
                    return Some(None);
                };
                let html = matches!(t.body(), Body::Html | Body::Raw);
                return Some(Some(UiAction::EditTemplate { name, html, dir }));
            }
            _ => return None,
        }
        Some(None)
    }
}
