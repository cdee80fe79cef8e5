//! Organisations' `event_options` (issue 5): the document model with its typed view, value
//! checks, field-level diffs, and the two places documents live — the Dashboard Admin API
//! (`tyk::dashboard`) or a directory of files — behind [`OrgSource`].
//!
//! Invariant: a save sends back the document as loaded with only the edited fields changed, and
//! never overwrites a document that changed since it was loaded.

pub mod diff;
pub mod document;
pub mod files;
pub mod json;
pub mod source;
pub mod validate;

pub use diff::{Change, diff, pending_changes};
pub use document::{
    DocumentError, EditError, EventConfig, EventField, EventSetting, EventView, FieldEdit,
    KNOWN_EVENTS, OrgDocument,
};
pub use files::{FilesError, OrgFiles};
pub use json::{Json, Object};
pub use source::{ADMIN_SECRET_ENV, Conflict, OrgError, OrgList, OrgSource};
pub use validate::{check_email_list, check_webhook};
