//! The quota detail's trigger-limit editor (`m`): the input line, then — once the session is
//! read — the change and the write it sends, to confirm, then the save. Reads and writes are
//! the key task's (`UiAction::Key` → `UiEvent::Key`); the state only asks and shows.
//!
//! A conflict (the session changed at the gateway since it was read) brings the input back
//! with the reason and the text kept: Enter reads the session again and prepares anew.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::{AppState, Level, MAX_INPUT, UiAction, View};
use crate::quota::{QuotaId, Scope};
use crate::triggers::{EditError, Prepared, Target, format_limits, parse_limits};
use crate::ui::sanitize::fit;

/// What the console asks of the task that owns the Gateway API client.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyRequest {
    /// Read the session and prepare setting its trigger limits.
    Prepare { target: Target, limits: Vec<f64> },
    /// Read again, check for a conflict, write.
    Save(Box<Prepared>),
}

/// What it answers.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyReply {
    Prepared(Result<Box<Prepared>, EditError>),
    Saved {
        target: Target,
        result: Result<Vec<f64>, EditError>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    /// The limits are being typed; `problem` says why Enter would not go on.
    Typing {
        problem: Option<String>,
    },
    /// The session is being read.
    Reading,
    /// The change, to confirm with `y`.
    Confirm(Box<Prepared>),
    Saving,
}

/// The editor over the detail of `quota`.
#[derive(Debug, Clone, PartialEq)]
pub struct TriggerEdit {
    pub quota: QuotaId,
    pub target: Target,
    /// The quota's name as the detail shows it.
    pub label: String,
    pub text: String,
    pub phase: Phase,
}

impl TriggerEdit {
    /// The input's problem as typed (`None`: Enter goes on).
    fn check(&self) -> Option<String> {
        parse_limits(&self.text).err()
    }
}

impl AppState {
    pub fn trigger_edit(&self) -> Option<&TriggerEdit> {
        self.trigger_edit
            .as_ref()
            .filter(|e| self.view == View::Detail(e.quota.clone()))
    }

    /// `m` in the detail: open the editor on the quota shown, prefilled with its limits.
    pub(super) fn open_trigger_edit(&mut self) {
        let View::Detail(id) = &self.view else {
            return;
        };
        if self.settings.readonly {
            self.flash_msg(
                Level::Warn,
                "read-only (--readonly): trigger limits cannot be edited",
            );
            return;
        }
        if let Some(why) = &self.settings.edits_unavailable {
            let why = why.clone();
            self.flash_msg(Level::Warn, why);
            return;
        }
        let Some(entry) = self.board.get(id) else {
            return;
        };
        let target = match id.scope() {
            Scope::Org => Target::Org(entry.meta.org_id.to_string()),
            Scope::Key | Scope::Api => Target::Key {
                id: entry.meta.key.to_string(),
                hashed: entry.meta.hashed,
            },
        };
        let mut limits: Vec<f64> = entry.meta.trigger_limits.to_vec();
        limits.sort_by(|a, b| b.total_cmp(a));
        let text = if limits.is_empty() {
            String::new()
        } else {
            format_limits(&limits).replace(' ', "")
        };
        self.trigger_edit = Some(TriggerEdit {
            quota: id.clone(),
            target,
            label: entry.meta.label().to_string(),
            text,
            phase: Phase::Typing { problem: None },
        });
    }

    /// Every key while the editor is open (limits may contain digits that are view keys).
    pub(super) fn trigger_key(&mut self, key: KeyEvent) -> Option<UiAction> {
        let edit = self.trigger_edit.as_mut()?;
        match &edit.phase {
            Phase::Typing { .. } => match key.code {
                KeyCode::Enter => match parse_limits(&edit.text) {
                    Ok(limits) => {
                        edit.phase = Phase::Reading;
                        return Some(UiAction::Key(KeyRequest::Prepare {
                            target: edit.target.clone(),
                            limits,
                        }));
                    }
                    Err(e) => edit.phase = Phase::Typing { problem: Some(e) },
                },
                KeyCode::Esc => self.trigger_edit = None,
                KeyCode::Backspace => {
                    edit.text.pop();
                    edit.phase = Phase::Typing {
                        problem: edit.check(),
                    };
                }
                KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => {
                    edit.text.clear();
                    edit.phase = Phase::Typing { problem: None };
                }
                _ => {
                    if let Some(c) = Self::typed(&key)
                        && edit.text.chars().count() < MAX_INPUT
                    {
                        edit.text.push(c);
                        edit.phase = Phase::Typing {
                            problem: edit.check(),
                        };
                    }
                }
            },
            Phase::Confirm(p) => match key.code {
                KeyCode::Char('y') => {
                    let p = p.clone();
                    edit.phase = Phase::Saving;
                    return Some(UiAction::Key(KeyRequest::Save(p)));
                }
                KeyCode::Char('n') | KeyCode::Esc => {
                    edit.phase = Phase::Typing { problem: None };
                }
                _ => {}
            },
            // The answer comes; Esc closes the window (a save in flight still lands).
            Phase::Reading | Phase::Saving => {
                if key.code == KeyCode::Esc {
                    self.trigger_edit = None;
                }
            }
        }
        None
    }

    pub(super) fn key_reply(&mut self, reply: KeyReply) {
        match reply {
            KeyReply::Prepared(result) => {
                let Some(edit) = self.trigger_edit.as_mut() else {
                    return;
                };
                if edit.phase != Phase::Reading {
                    return;
                }
                match result {
                    Ok(p) if p.unchanged() => {
                        let text = format!(
                            "{}: trigger limits already {}",
                            fit(&edit.label, 40),
                            format_limits(&p.after)
                        );
                        self.trigger_edit = None;
                        self.flash_msg(Level::Info, text);
                    }
                    Ok(p) => edit.phase = Phase::Confirm(p),
                    Err(e) => {
                        edit.phase = Phase::Typing {
                            problem: Some(format!("cannot read the session: {e}")),
                        }
                    }
                }
            }
            KeyReply::Saved { target, result } => {
                let open = self
                    .trigger_edit
                    .as_ref()
                    .is_some_and(|e| e.target == target && e.phase == Phase::Saving);
                match result {
                    Ok(limits) => {
                        if open {
                            self.trigger_edit = None;
                        }
                        self.flash_msg(
                            Level::Info,
                            format!(
                                "saved: {} trigger limits {} (quota not reset)",
                                target.label(),
                                format_limits(&limits)
                            ),
                        );
                    }
                    Err(e) => {
                        let text = e.to_string();
                        match self.trigger_edit.as_mut() {
                            Some(edit) if open => {
                                edit.phase = Phase::Typing {
                                    problem: Some(text),
                                }
                            }
                            _ => self.flash_msg(Level::Error, text),
                        }
                    }
                }
            }
        }
    }
}
