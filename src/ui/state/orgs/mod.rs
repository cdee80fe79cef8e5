//! The Orgs view's part of the state: the organisations as loaded (the base of every edit), the
//! pending edits per organisation, the `/` filter over the list, the cursor in the event form,
//! the inline field editor and the save confirmation / conflict dialogs.
//!
//! Pending edits are kept as field edits and re-applied to the loaded document: `apply` skips a
//! value the field already has, so a field set back to what was loaded leaves no change behind
//! and the diff shown before a save is exactly what will be sent. A reload discards them all —
//! an edit made on an old base must not be replayed over a document that changed since.

use std::collections::HashMap;

use crate::notify::org_test::TestTarget;
use crate::orgs::{
    Change, Conflict, EventConfig, EventField, EventSetting, EventView, FieldEdit, OrgDocument,
    pending_changes,
};
use crate::ui::list::ListCursor;
use crate::ui::table::{Filter, clamp_offset};

/// What the console asks of the task that owns the organisation source.
mod keys;

#[derive(Debug, Clone, PartialEq)]
pub enum OrgRequest {
    /// (Re)load every organisation.
    List,
    /// Save `edited` unless the stored document is no longer `original`.
    Save {
        original: OrgDocument,
        edited: OrgDocument,
    },
    /// Send a sample event to an event's webhook and a sample e-mail to its addresses.
    Test(TestTarget),
}

/// The organisations a source listed; documents it could not use are described in `warnings`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Listing {
    pub orgs: Vec<OrgDocument>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SaveError {
    /// The document changed at the source since it was loaded; nothing was written.
    Conflict(Box<Conflict>),
    Failed(String),
}

/// What the task reports back.
#[derive(Debug, Clone, PartialEq)]
pub enum OrgReply {
    Listed(Result<Listing, String>),
    Saved {
        id: String,
        result: Result<OrgDocument, SaveError>,
    },
    /// A test send finished: one line per channel, `ok` when every channel accepted it.
    Tested {
        event: String,
        summary: String,
        ok: bool,
    },
}

/// A yes/no question over the view.
#[derive(Debug, Clone, PartialEq)]
pub enum Confirm {
    /// The pending changes of one organisation, shown before they are saved.
    Save {
        id: String,
        name: String,
        changes: Vec<Change>,
    },
    /// Reloading drops this many pending changes.
    Reload { pending: usize },
}

/// A save refused because the document changed at the source: both sides, for the dialog.
#[derive(Debug, Clone, PartialEq)]
pub struct ConflictView {
    pub id: String,
    pub name: String,
    /// "on the Dashboard" or the file's path.
    pub place: String,
    /// The document was deleted at the source.
    pub deleted: bool,
    /// What changed at the source since the document was loaded.
    pub theirs: Vec<Change>,
    /// The pending changes that were not saved.
    pub ours: Vec<Change>,
}

/// The inline editor of one text field, validated as it is typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Editor {
    pub event: String,
    pub field: EventField,
    pub text: String,
    /// Why the text cannot be committed (`None`: it can).
    pub error: Option<String>,
}

impl Editor {
    fn setting(&self) -> EventSetting {
        match self.field {
            EventField::Email => EventSetting::Email(self.text.clone()),
            _ => EventSetting::Webhook(self.text.clone()),
        }
    }

    fn revalidate(&mut self) {
        self.error = self.setting().validate().err();
    }
}

/// The edits of one organisation and the document they make.
#[derive(Debug, Clone)]
struct Pending {
    /// At most one per (event, field), in the order first edited.
    edits: Vec<FieldEdit>,
    doc: OrgDocument,
}

/// The form's columns, left to right.
pub const FIELDS: [EventField; 3] = [EventField::Webhook, EventField::Email, EventField::Redis];

/// Longest value the editor takes (URLs with tokens can be long; nothing sane is longer).
const MAX_VALUE: usize = 2048;

pub struct OrgsPane {
    /// The source's label, or why there is none (what to configure).
    source: Result<String, String>,
    intake_url: Option<String>,
    intake_secret: bool,
    loaded: bool,
    loading: bool,
    /// The last listing failed: the reason (the documents of the previous one stay).
    error: Option<String>,
    warnings: Vec<String>,
    docs: Vec<OrgDocument>,
    pending: HashMap<String, Pending>,
    filter: Filter,
    /// Lower-cased name and id, parallel to `docs`.
    haystacks: Vec<String>,
    order: Vec<usize>,
    /// The selection in the list, by org id.
    list: ListCursor<String>,
    /// The form: event row, column, first visible row.
    row: usize,
    field: EventField,
    form_offset: usize,
    editor: Option<Editor>,
    confirm: Option<Confirm>,
    conflict: Option<ConflictView>,
    /// The id of the organisation being saved.
    saving: Option<String>,
}

/// An event "does something" when any of its settings is set.
pub fn configured(c: &EventConfig) -> bool {
    !c.webhook.is_empty() || !c.email.is_empty() || c.redis
}

impl OrgsPane {
    pub(super) fn new(
        source: Result<String, String>,
        intake_url: Option<String>,
        intake_secret: bool,
    ) -> OrgsPane {
        OrgsPane {
            source,
            intake_url,
            intake_secret,
            loaded: false,
            loading: false,
            error: None,
            warnings: Vec::new(),
            docs: Vec::new(),
            pending: HashMap::new(),
            filter: Filter::default(),
            haystacks: Vec::new(),
            order: Vec::new(),
            list: ListCursor::default(),
            row: 0,
            field: EventField::Webhook,
            form_offset: 0,
            editor: None,
            confirm: None,
            conflict: None,
            saving: None,
        }
    }

    // ---- read side ----

    /// The source's label, or why there is none.
    pub fn source(&self) -> Result<&str, &str> {
        self.source
            .as_ref()
            .map(String::as_str)
            .map_err(String::as_str)
    }
    pub fn intake_url(&self) -> Option<&str> {
        self.intake_url.as_deref()
    }
    pub fn intake_secret(&self) -> bool {
        self.intake_secret
    }
    pub fn loaded(&self) -> bool {
        self.loaded
    }
    pub fn loading(&self) -> bool {
        self.loading
    }
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// The documents as loaded.
    pub fn docs(&self) -> &[OrgDocument] {
        &self.docs
    }
    pub fn filter(&self) -> &Filter {
        &self.filter
    }
    /// Indices into `docs` shown in the list.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
    pub fn cursor(&self) -> usize {
        self.list.cursor()
    }
    pub fn offset(&self) -> usize {
        self.list.offset()
    }
    pub fn row(&self) -> usize {
        self.row
    }
    pub fn field(&self) -> EventField {
        self.field
    }
    pub fn form_offset(&self) -> usize {
        self.form_offset
    }
    pub fn editor(&self) -> Option<&Editor> {
        self.editor.as_ref()
    }
    pub fn confirm(&self) -> Option<&Confirm> {
        self.confirm.as_ref()
    }
    pub fn conflict(&self) -> Option<&ConflictView> {
        self.conflict.as_ref()
    }
    pub fn saving(&self) -> Option<&str> {
        self.saving.as_deref()
    }
    /// The loaded document of the selected organisation.
    pub fn selected(&self) -> Option<&OrgDocument> {
        let id = self.list.selected()?;
        self.doc(id)
    }
    pub fn doc(&self, id: &str) -> Option<&OrgDocument> {
        self.docs.iter().find(|d| d.id() == id)
    }
    /// The document with its pending edits (the loaded one when there are none).
    pub fn edited(&self, id: &str) -> Option<&OrgDocument> {
        self.pending
            .get(id)
            .map(|p| &p.doc)
            .or_else(|| self.doc(id))
    }
    /// What saving `id` would change.
    pub fn changes(&self, id: &str) -> Vec<Change> {
        match (self.doc(id), self.pending.get(id)) {
            (Some(base), Some(p)) => pending_changes(base, &p.doc),
            _ => Vec::new(),
        }
    }
    /// Pending changes over every organisation.
    pub fn pending_total(&self) -> usize {
        self.pending.keys().map(|id| self.changes(id).len()).sum()
    }
    /// The events of the selected organisation as the form shows them (edits applied).
    pub fn events(&self) -> Vec<EventView> {
        self.list
            .selected()
            .and_then(|id| self.edited(id))
            .map(OrgDocument::events)
            .unwrap_or_default()
    }
    /// The event under the form's cursor.
    pub fn current_event(&self) -> Option<EventView> {
        self.events().into_iter().nth(self.row)
    }
    /// The loaded value of `event` (absent: Go's zero values), to mark edited cells.
    pub fn loaded_config(&self, event: &str) -> EventConfig {
        self.selected()
            .and_then(|d| d.event(event))
            .unwrap_or_default()
    }

    // ---- write side ----

    /// Starts a listing unless one is running; `None` when there is no source.
    pub(super) fn request_list(&mut self) -> Option<OrgRequest> {
        if self.source.is_err() || self.loading {
            return None;
        }
        self.loading = true;
        Some(OrgRequest::List)
    }

    /// Loads the list the first time the view is opened.
    pub(super) fn needs_list(&self) -> bool {
        self.source.is_ok() && !self.loaded && !self.loading && self.error.is_none()
    }

    pub(super) fn listed(&mut self, r: Result<Listing, String>, rows: usize) {
        self.loading = false;
        match r {
            Ok(l) => {
                self.loaded = true;
                self.error = None;
                self.warnings = l.warnings;
                self.haystacks = l
                    .orgs
                    .iter()
                    .map(|d| format!("{}\u{1f}{}", d.name(), d.id()).to_lowercase())
                    .collect();
                self.docs = l.orgs;
                self.pending.clear();
                self.editor = None;
                self.recompute(false, rows);
            }
            Err(e) => self.error = Some(e),
        }
    }

    pub(super) fn set_filter(&mut self, f: Filter, rows: usize) {
        if f != self.filter {
            self.filter = f;
            self.recompute(true, rows);
        }
    }

    fn recompute(&mut self, reset: bool, rows: usize) {
        self.order = (0..self.docs.len())
            .filter(|&i| {
                self.filter
                    .matches_text(self.haystacks.get(i).map_or("", String::as_str))
            })
            .collect();
        let row = self.list.after_change(reset, |id| {
            self.order
                .iter()
                .position(|&i| self.docs.get(i).is_some_and(|d| d.id() == id))
        });
        self.select(row, rows);
    }

    fn select(&mut self, row: usize, rows: usize) {
        let (order, docs) = (&self.order, &self.docs);
        let changed = self.list.select(row, order.len(), rows, |c| {
            Some(docs.get(*order.get(c)?)?.id().to_string())
        });
        if changed {
            // Another organisation's form starts at its first event.
            self.row = 0;
            self.field = EventField::Webhook;
            self.form_offset = 0;
        }
    }

    pub(super) fn move_to(&mut self, row: usize, rows: usize) {
        if !self.order.is_empty() {
            self.select(row, rows);
        }
    }

    pub(super) fn clamp(&mut self, list_rows: usize, form_rows: usize) {
        self.list.clamp(self.order.len(), list_rows);
        let n = self.events().len();
        self.row = self.row.min(n.saturating_sub(1));
        self.form_offset = clamp_offset(self.form_offset, self.row, form_rows, n);
    }

    /// Moves the form's cursor to event row `row`.
    pub(super) fn move_form(&mut self, row: usize, form_rows: usize) {
        let n = self.events().len();
        if n == 0 {
            return;
        }
        self.row = row.min(n - 1);
        self.form_offset = clamp_offset(self.form_offset, self.row, form_rows, n);
    }

    pub(super) fn step_field(&mut self, delta: isize) {
        let i = FIELDS.iter().position(|f| *f == self.field).unwrap_or(0);
        let next = i.saturating_add_signed(delta).min(FIELDS.len() - 1);
        self.field = FIELDS[next];
    }

    /// Sets one field of the selected organisation's pending document. `Ok(false)`: the value
    /// is the one it already had.
    pub(super) fn apply(&mut self, edit: FieldEdit) -> Result<bool, String> {
        let Some(base) = self.selected().cloned() else {
            return Err("no organisation selected".into());
        };
        let id = base.id().to_string();
        let mut edits = self
            .pending
            .get(&id)
            .map(|p| p.edits.clone())
            .unwrap_or_default();
        let field = edit.setting.field();
        match edits
            .iter_mut()
            .find(|e| e.event == edit.event && e.setting.field() == field)
        {
            Some(slot) => *slot = edit,
            None => edits.push(edit),
        }
        let before = self.edited(&id).cloned();
        self.rebuild(&id, base, edits)?;
        Ok(self.edited(&id).cloned() != before)
    }

    /// Drops the pending edit of one field; `false` when it had none.
    pub(super) fn revert(&mut self, event: &str, field: EventField) -> bool {
        let Some(base) = self.selected().cloned() else {
            return false;
        };
        let id = base.id().to_string();
        let Some(p) = self.pending.get(&id) else {
            return false;
        };
        let mut edits = p.edits.clone();
        let before = edits.len();
        edits.retain(|e| !(e.event == event && e.setting.field() == field));
        if edits.len() == before {
            return false;
        }
        // Dropping an edit from a set that applied cannot fail.
        let _ = self.rebuild(&id, base, edits);
        true
    }

    fn rebuild(
        &mut self,
        id: &str,
        base: OrgDocument,
        edits: Vec<FieldEdit>,
    ) -> Result<(), String> {
        let mut doc = base.clone();
        doc.apply_all(&edits).map_err(|e| e.to_string())?;
        if doc == base {
            self.pending.remove(id);
        } else {
            self.pending.insert(id.to_string(), Pending { edits, doc });
        }
        Ok(())
    }

    pub(super) fn open_editor(&mut self, event: String, field: EventField, text: String) {
        let mut e = Editor {
            event,
            field,
            text,
            error: None,
        };
        e.revalidate();
        self.editor = Some(e);
    }

    pub(super) fn editor_push(&mut self, c: char) {
        if let Some(e) = &mut self.editor
            && e.text.chars().count() < MAX_VALUE
        {
            e.text.push(c);
            e.revalidate();
        }
    }

    pub(super) fn editor_pop(&mut self) {
        if let Some(e) = &mut self.editor {
            e.text.pop();
            e.revalidate();
        }
    }

    pub(super) fn editor_clear(&mut self) {
        if let Some(e) = &mut self.editor {
            e.text.clear();
            e.revalidate();
        }
    }

    pub(super) fn close_editor(&mut self) -> Option<Editor> {
        self.editor.take()
    }

    /// The editor's value as an edit, when it is valid.
    pub(super) fn editor_edit(&self) -> Option<Result<FieldEdit, String>> {
        let e = self.editor.as_ref()?;
        Some(match &e.error {
            Some(err) => Err(err.clone()),
            None => Ok(FieldEdit::new(e.event.clone(), e.setting())),
        })
    }

    pub(super) fn set_confirm(&mut self, c: Option<Confirm>) {
        self.confirm = c;
    }

    pub(super) fn take_confirm(&mut self) -> Option<Confirm> {
        self.confirm.take()
    }

    pub(super) fn close_conflict(&mut self) -> Option<ConflictView> {
        self.conflict.take()
    }

    /// The request that saves `id`, marking it in flight.
    pub(super) fn save_request(&mut self, id: &str) -> Option<OrgRequest> {
        let original = self.doc(id)?.clone();
        let edited = self.pending.get(id)?.doc.clone();
        self.saving = Some(id.to_string());
        Some(OrgRequest::Save { original, edited })
    }

    /// Drops every pending edit (before a reload).
    pub(super) fn discard_all(&mut self) {
        self.pending.clear();
        self.editor = None;
    }

    /// A save answered. Returns the number of changes saved, or the failure to show.
    pub(super) fn saved(
        &mut self,
        id: &str,
        result: Result<OrgDocument, SaveError>,
    ) -> Result<usize, String> {
        self.saving = None;
        match result {
            Ok(stored) => {
                let n = self.changes(id).len();
                self.pending.remove(id);
                if let Some(slot) = self.docs.iter_mut().find(|d| d.id() == id) {
                    *slot = stored;
                }
                Ok(n)
            }
            Err(SaveError::Conflict(c)) => {
                let ours = self.changes(id);
                let name = self
                    .doc(id)
                    .map(|d| d.name().to_string())
                    .unwrap_or_default();
                self.conflict = Some(ConflictView {
                    id: id.to_string(),
                    name,
                    place: c.place.clone(),
                    deleted: c.current.is_none(),
                    theirs: c.changes(),
                    ours,
                });
                Err(format!(
                    "not saved: the organisation changed {} since it was loaded",
                    c.place
                ))
            }
            Err(SaveError::Failed(e)) => Err(e),
        }
    }
}
