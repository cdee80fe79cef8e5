//! The Orgs views' keys and the organisation task's replies: their part of `AppState`.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::*;
use crate::notify::org_test::TestTarget as Target;
use crate::ui::keymap::Action;
use crate::ui::sanitize::fit;
use crate::ui::state::{AppState, Level, UiAction, View};

impl AppState {
    /// Keys of the Orgs views: `Some(result)` when handled here.
    pub(in crate::ui::state) fn orgs_action(&mut self, action: Action) -> Option<Option<UiAction>> {
        let g = crate::ui::layout::orgs_geometry(self);
        let (list, rows) = (g.list_rows.max(1), g.form_rows.max(1));
        let form = self.view == View::OrgForm;
        let o = &mut self.orgs;
        let out = match action {
            Action::Up | Action::Down | Action::PageUp | Action::PageDown => {
                let step = if form { rows } else { list } as isize;
                let delta = match action {
                    Action::Up => -1,
                    Action::Down => 1,
                    Action::PageUp => -step,
                    _ => step,
                };
                if form {
                    o.move_form(o.row().saturating_add_signed(delta), rows);
                } else {
                    o.move_to(o.cursor().saturating_add_signed(delta), list);
                }
                None
            }
            Action::Top if form => {
                o.move_form(0, rows);
                None
            }
            Action::Bottom if form => {
                o.move_form(usize::MAX, rows);
                None
            }
            Action::Top => {
                o.move_to(0, list);
                None
            }
            Action::Bottom => {
                o.move_to(usize::MAX, list);
                None
            }
            Action::Left => {
                o.step_field(-1);
                None
            }
            Action::Right => {
                o.step_field(1);
                None
            }
            Action::Open | Action::FocusNext if !form => {
                if o.selected().is_some() {
                    self.view = View::OrgForm;
                }
                None
            }
            Action::FocusNext | Action::Back if form => {
                self.view = View::Orgs;
                None
            }
            Action::Back => {
                self.set_filter(crate::ui::table::Filter::default());
                None
            }
            Action::Reload => self.reload_orgs(),
            Action::Save => {
                self.ask_save();
                None
            }
            Action::Edit => {
                self.edit_field();
                None
            }
            Action::Revert => {
                self.revert_field();
                None
            }
            Action::TestSend => self.test_event(),
            Action::PointIntake => {
                self.point_at_intake();
                None
            }
            _ => return None,
        };
        Some(out)
    }

    /// The Save / Reload question.
    pub(in crate::ui::state) fn confirm_action(&mut self, action: Action) -> Option<UiAction> {
        match action {
            Action::Yes => match self.orgs.take_confirm()? {
                Confirm::Save { id, name, changes } => {
                    let req = self.orgs.save_request(&id)?;
                    let n = changes.len();
                    self.flash_msg(
                        Level::Info,
                        format!(
                            "saving {n} change{} to {}…",
                            plural(n),
                            fit(if name.is_empty() { &id } else { &name }, 40)
                        ),
                    );
                    Some(UiAction::Org(req))
                }
                Confirm::Reload { .. } => {
                    self.orgs.discard_all();
                    self.list_orgs()
                }
            },
            Action::Back => {
                self.orgs.take_confirm();
                None
            }
            _ => None,
        }
    }

    /// The conflict dialog: reload (dropping the pending changes) or cancel.
    pub(in crate::ui::state) fn conflict_action(&mut self, action: Action) -> Option<UiAction> {
        match action {
            Action::Reload => {
                self.orgs.close_conflict();
                self.orgs.discard_all();
                self.list_orgs()
            }
            Action::Back => {
                self.orgs.close_conflict();
                self.flash_msg(
                    Level::Warn,
                    "not saved: your changes are still pending; r reloads (dropping them) before a new edit can be saved",
                );
                None
            }
            _ => None,
        }
    }

    /// Keys while a field is edited: text, Backspace, Ctrl-U, Enter commits, Esc cancels.
    pub(in crate::ui::state) fn editor_key(&mut self, key: KeyEvent) -> Option<UiAction> {
        match key.code {
            KeyCode::Enter => match self.orgs.editor_edit() {
                Some(Ok(edit)) => {
                    self.orgs.close_editor();
                    self.commit(edit);
                }
                Some(Err(_)) => self.flash_msg(
                    Level::Warn,
                    "the value is not valid (see the field) — fix it, or Esc cancels",
                ),
                None => {}
            },
            KeyCode::Esc => {
                self.orgs.close_editor();
            }
            KeyCode::Backspace => self.orgs.editor_pop(),
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                self.orgs.editor_clear()
            }
            _ => {
                if let Some(c) = Self::typed(&key) {
                    self.orgs.editor_push(c);
                }
            }
        }
        None
    }

    pub(in crate::ui::state) fn org_reply(&mut self, reply: OrgReply) {
        let list = crate::ui::layout::orgs_geometry(self).list_rows.max(1);
        match reply {
            OrgReply::Listed(r) => {
                let failed = r.as_ref().err().cloned();
                self.orgs.listed(r, list);
                let reloading = self
                    .flash
                    .as_ref()
                    .is_some_and(|f| f.text.starts_with("loading the organisations"));
                match failed {
                    Some(e) => {
                        self.flash_msg(Level::Error, format!("cannot load the organisations: {e}"))
                    }
                    None => {
                        if let Some(w) = self.orgs.warnings().first().cloned() {
                            self.flash_msg(Level::Warn, w);
                        } else if reloading {
                            // The reload the user asked for is done: say so.
                            let n = self.orgs.docs().len();
                            let from = self.orgs.source().unwrap_or_default().to_string();
                            self.flash_msg(
                                Level::Info,
                                format!("loaded {n} organisation{} from {from}", plural(n)),
                            );
                        }
                    }
                }
            }
            OrgReply::Saved { id, result } => {
                let name = self
                    .orgs
                    .doc(&id)
                    .map(|d| d.name().to_string())
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| id.clone());
                match self.orgs.saved(&id, result) {
                    Ok(n) => {
                        let place = self.orgs.source().unwrap_or_default().to_string();
                        self.flash_msg(
                            Level::Info,
                            format!(
                                "saved {n} change{} to {} ({place})",
                                plural(n),
                                fit(&name, 40)
                            ),
                        );
                    }
                    Err(e) => self.flash_msg(Level::Error, e),
                }
            }
            OrgReply::Tested { event, summary, ok } => {
                let level = if ok { Level::Info } else { Level::Error };
                self.flash_msg(level, format!("test {event}: {summary}"));
            }
        }
    }

    /// Keeps the list and form cursors on screen; the form needs an organisation.
    pub(in crate::ui::state) fn refresh_orgs(&mut self) {
        let on = match &self.view {
            View::Orgs | View::OrgForm => true,
            View::Help(from) => matches!(from.as_ref(), View::Orgs | View::OrgForm),
            _ => false,
        };
        if !on {
            return;
        }
        let g = crate::ui::layout::orgs_geometry(self);
        self.orgs.clamp(g.list_rows, g.form_rows);
        if self.view == View::OrgForm && self.orgs.selected().is_none() {
            self.view = View::Orgs;
        }
    }

    fn list_orgs(&mut self) -> Option<UiAction> {
        let req = self.orgs.request_list()?;
        let from = self.orgs.source().unwrap_or_default().to_string();
        self.flash_msg(
            Level::Info,
            format!("loading the organisations from {from}…"),
        );
        Some(UiAction::Org(req))
    }

    /// Why the Orgs view cannot do `what` now, flashed; `true` when it can.
    fn orgs_can(&mut self, what: &str, edits: bool) -> bool {
        let why = if let Err(e) = self.orgs.source() {
            Some(fit(e, 200))
        } else if edits && self.settings.readonly {
            Some(format!("read-only: {what} is disabled (--readonly)"))
        } else if let Some(id) = self.orgs.saving() {
            Some(format!(
                "{what}: wait for the save of {} to finish",
                fit(id, 40)
            ))
        } else if self.orgs.loading() {
            Some(format!("{what}: the organisations are loading"))
        } else {
            None
        };
        match why {
            Some(w) => {
                self.flash_msg(Level::Warn, w);
                false
            }
            None => true,
        }
    }

    fn reload_orgs(&mut self) -> Option<UiAction> {
        if !self.orgs_can("reloading", false) {
            return None;
        }
        let pending = self.orgs.pending_total();
        if pending > 0 {
            self.orgs.set_confirm(Some(Confirm::Reload { pending }));
            return None;
        }
        self.list_orgs()
    }

    fn ask_save(&mut self) {
        if !self.orgs_can("saving", true) {
            return;
        }
        let Some(doc) = self.orgs.selected() else {
            self.flash_msg(Level::Warn, "no organisation selected");
            return;
        };
        let (id, name) = (doc.id().to_string(), doc.name().to_string());
        let changes = self.orgs.changes(&id);
        if changes.is_empty() {
            let shown = fit(if name.is_empty() { &id } else { &name }, 40);
            self.flash_msg(
                Level::Info,
                format!("nothing to save: {shown} has no pending changes"),
            );
            return;
        }
        self.orgs
            .set_confirm(Some(Confirm::Save { id, name, changes }));
    }

    fn edit_field(&mut self) {
        if !self.orgs_can("editing", true) {
            return;
        }
        let Some(ev) = self.orgs.current_event() else {
            return;
        };
        // The footer shows the editor's keys; an older message would hide them.
        self.flash = None;
        match self.orgs.field() {
            EventField::Redis => {
                let edit = FieldEdit::new(ev.name, EventSetting::Redis(!ev.config.redis));
                self.commit(edit);
            }
            EventField::Email => self
                .orgs
                .open_editor(ev.name, EventField::Email, ev.config.email),
            EventField::Webhook => {
                self.orgs
                    .open_editor(ev.name, EventField::Webhook, ev.config.webhook)
            }
        }
    }

    /// Applies a valid edit to the pending document and says what happened.
    fn commit(&mut self, edit: FieldEdit) {
        let target = format!("{}.{}", fit(&edit.event, 40), edit.setting.field().as_str());
        match self.orgs.apply(edit) {
            Ok(true) => {
                let n = self
                    .orgs
                    .selected()
                    .map(|d| d.id().to_string())
                    .map_or(0, |id| self.orgs.changes(&id).len());
                self.flash_msg(
                    Level::Info,
                    format!(
                        "{target} changed · {n} pending change{} · s reviews and saves",
                        plural(n)
                    ),
                );
            }
            Ok(false) => self.flash_msg(Level::Info, format!("{target} unchanged")),
            Err(e) => self.flash_msg(Level::Error, e),
        }
    }

    fn revert_field(&mut self) {
        if !self.orgs_can("editing", true) {
            return;
        }
        let Some(ev) = self.orgs.current_event() else {
            return;
        };
        let field = self.orgs.field();
        let target = format!("{}.{}", fit(&ev.name, 40), field.as_str());
        if self.orgs.revert(&ev.name, field) {
            self.flash_msg(Level::Info, format!("{target} back to its loaded value"));
        } else {
            self.flash_msg(Level::Info, format!("{target} has no pending change"));
        }
    }

    fn test_event(&mut self) -> Option<UiAction> {
        if !self.orgs_can("sending tests", true) {
            return None;
        }
        let (doc, ev) = (self.orgs.selected()?.clone(), self.orgs.current_event()?);
        if ev.config.webhook.is_empty() && ev.config.email.is_empty() {
            self.flash_msg(
                Level::Warn,
                format!(
                    "{} has no webhook and no e-mail to test — set one first",
                    fit(&ev.name, 40)
                ),
            );
            return None;
        }
        let what = match (ev.config.webhook.is_empty(), ev.config.email.is_empty()) {
            (false, false) => "its webhook and e-mail",
            (false, true) => "its webhook",
            _ => "its e-mail",
        };
        self.flash_msg(
            Level::Info,
            format!("testing {}: sending a sample to {what}…", fit(&ev.name, 40)),
        );
        Some(UiAction::Org(OrgRequest::Test(Target {
            org_id: doc.id().to_string(),
            org_name: doc.name().to_string(),
            event: ev.name,
            webhook: ev.config.webhook,
            email: ev.config.email,
        })))
    }

    fn point_at_intake(&mut self) {
        if !self.orgs_can("editing", true) {
            return;
        }
        let Some(url) = self.orgs.intake_url().map(str::to_string) else {
            self.flash_msg(
                Level::Warn,
                "no intake: set [intake] listen (e.g. \"127.0.0.1:8089\") so Tyk's events reach tykwatch",
            );
            return;
        };
        let Some(ev) = self.orgs.current_event() else {
            return;
        };
        let name = ev.name.clone();
        self.commit(FieldEdit::new(ev.name, EventSetting::Webhook(url.clone())));
        if self.orgs.intake_secret() {
            // The Dashboard sends no custom headers with event_options webhooks.
            self.flash_msg(
                Level::Warn,
                format!(
                    "{}.webhook → {url}; note: [intake] secret is set and the Dashboard cannot send X-Tykwatch-Secret, so its events will be refused",
                    fit(&name, 40)
                ),
            );
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
