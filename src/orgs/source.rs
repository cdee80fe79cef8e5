//! Where organisation documents come from: the Dashboard's Admin API, or a directory of files
//! when no Dashboard is configured. The CLI and the console's Orgs view use only this.

use std::sync::Arc;
use std::time::Duration;

use serde_json::value::RawValue;

use super::diff::{Change, diff};
use super::document::{DocumentError, EditError, OrgDocument};
use super::files::{FilesError, OrgFiles};
use super::json::Json;
use crate::config::Config;
use crate::tyk::dashboard::{DEFAULT_MAX_BODY, Dashboard, DashboardError, DashboardSettings};
use crate::tyk::demo::DemoGateway;

/// The environment variable Tyk itself reads for `admin_secret`; it wins over the file.
pub const ADMIN_SECRET_ENV: &str = "TYK_DB_ADMIN_SECRET";

/// The organisations of a source. Entries that are not usable documents are left out and
/// described in `warnings` (one bad file must not hide the others).
#[derive(Debug, Default)]
pub struct OrgList {
    pub orgs: Vec<OrgDocument>,
    pub warnings: Vec<String>,
}

/// A save refused because the stored document is no longer the one that was edited.
#[derive(Debug, Clone, PartialEq)]
pub struct Conflict {
    pub id: String,
    /// The document as it was loaded (the base of the edit).
    pub loaded: Json,
    /// The document as stored now; `None` when it was deleted.
    pub current: Option<Json>,
    /// Where, for messages: "on the Dashboard" or the file's path.
    pub place: String,
}

impl Conflict {
    /// What changed at the source since the document was loaded (nothing for a deletion).
    pub fn changes(&self) -> Vec<Change> {
        self.current
            .as_ref()
            .map(|current| diff(&self.loaded, current))
            .unwrap_or_default()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OrgError {
    #[error("{0}")]
    Dashboard(DashboardError),
    #[error("{0}")]
    Files(FilesError),
    #[error("organisation {id:?} from the Dashboard: {source}")]
    Document { id: String, source: DocumentError },
    #[error("{0}")]
    Edit(#[from] EditError),
    #[error("{}", conflict_text(.0))]
    Conflict(Box<Conflict>),
    #[error("{0}")]
    Setup(String),
}

fn conflict_text(c: &Conflict) -> String {
    let what = if c.current.is_some() {
        "changed"
    } else {
        "was deleted"
    };
    format!(
        "organisation {:?} {what} since it was loaded ({}) — nothing was saved; reload it and make the edit again",
        c.id, c.place
    )
}

impl OrgError {
    /// CLI exit status: 1 for what the user can fix in the request (bad value, unknown org or
    /// event, conflict), 2 when the source cannot be used (down, garbage, refused, unwritable).
    pub fn exit_code(&self) -> u8 {
        match self {
            OrgError::Edit(_) | OrgError::Conflict(_) => 1,
            OrgError::Dashboard(e) if !e.is_unreachable() => 1,
            OrgError::Files(FilesError::NotFound { .. } | FilesError::BadId { .. }) => 1,
            _ => 2,
        }
    }

    pub fn conflict(&self) -> Option<&Conflict> {
        match self {
            OrgError::Conflict(c) => Some(c),
            _ => None,
        }
    }
}

impl From<DashboardError> for OrgError {
    fn from(e: DashboardError) -> Self {
        match e {
            DashboardError::Conflict {
                id,
                loaded,
                current,
            } => OrgError::Conflict(Box::new(Conflict {
                id,
                loaded: raw_json(&loaded),
                current: current.map(|c| raw_json(&c)),
                place: "on the Dashboard".to_owned(),
            })),
            e => OrgError::Dashboard(e),
        }
    }
}

impl From<FilesError> for OrgError {
    fn from(e: FilesError) -> Self {
        match e {
            FilesError::Conflict {
                path,
                loaded,
                current,
            } => OrgError::Conflict(Box::new(Conflict {
                id: loaded.id().to_owned(),
                loaded: loaded.to_json_value(),
                current: current.map(|c| c.to_json_value()),
                place: path.display().to_string(),
            })),
            e => OrgError::Files(e),
        }
    }
}

/// A Dashboard (real or the embedded demo's).
#[derive(Debug, Clone)]
pub struct DashboardSource {
    pub client: Dashboard,
    pub demo: bool,
}

#[derive(Debug, Clone)]
pub enum OrgSource {
    Dashboard(DashboardSource),
    Files(Arc<OrgFiles>),
}

impl OrgSource {
    /// The source the configuration names: `[dashboard] url` first, else `[orgs] dir`. `None`:
    /// neither is set (callers then use the demo Dashboard, see [`OrgSource::demo`]).
    pub fn configured(config: &Config) -> Result<Option<OrgSource>, OrgError> {
        if let Some(url) = &config.dashboard.url {
            let secret = std::env::var(ADMIN_SECRET_ENV)
                .ok()
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| config.dashboard.admin_secret.expose().to_owned());
            if secret.is_empty() {
                return Err(OrgError::Setup(format!(
                    "[dashboard] url is set but no admin secret: set {ADMIN_SECRET_ENV} or [dashboard] admin_secret (tyk_analytics.conf \"admin_secret\")"
                )));
            }
            return OrgSource::dashboard(url, &secret, config.dashboard.timeout, false).map(Some);
        }
        Ok(config
            .orgs
            .dir
            .as_ref()
            .map(|dir| OrgSource::Files(Arc::new(OrgFiles::new(dir)))))
    }

    /// The Admin API the embedded demo serves beside its gateway.
    pub fn demo(demo: &DemoGateway) -> Result<OrgSource, OrgError> {
        OrgSource::dashboard(
            &demo.dashboard_url(),
            demo.admin_secret(),
            Duration::from_secs(10),
            true,
        )
    }

    pub fn dashboard(
        url: &str,
        admin_secret: &str,
        timeout: Duration,
        demo: bool,
    ) -> Result<OrgSource, OrgError> {
        let client = Dashboard::new(&DashboardSettings {
            url: url.to_owned(),
            admin_secret: admin_secret.to_owned(),
            timeout,
            max_body: DEFAULT_MAX_BODY,
        })?;
        Ok(OrgSource::Dashboard(DashboardSource { client, demo }))
    }

    pub fn files(dir: impl Into<std::path::PathBuf>) -> OrgSource {
        OrgSource::Files(Arc::new(OrgFiles::new(dir)))
    }

    /// For headers and messages: "Dashboard http://…", "demo Dashboard", "files in /dir".
    pub fn label(&self) -> String {
        match self {
            OrgSource::Dashboard(d) if d.demo => "demo Dashboard".to_owned(),
            OrgSource::Dashboard(d) => format!("Dashboard {}", d.client.url()),
            OrgSource::Files(f) => format!("files in {}", f.dir().display()),
        }
    }

    pub fn is_demo(&self) -> bool {
        matches!(self, OrgSource::Dashboard(d) if d.demo)
    }

    pub async fn list(&self) -> Result<OrgList, OrgError> {
        match self {
            OrgSource::Dashboard(d) => {
                let mut list = OrgList::default();
                let docs = d.client.list_organisations().await?;
                for (i, raw) in docs.iter().enumerate() {
                    let json = raw_json(raw);
                    let id = json
                        .as_object()
                        .and_then(|o| o.get("id"))
                        .and_then(Json::as_str)
                        .map_or_else(|| format!("#{}", i + 1), str::to_owned);
                    match OrgDocument::from_json(json) {
                        Ok(doc) => list.orgs.push(doc),
                        Err(e) => list
                            .warnings
                            .push(format!("organisation {id}: {e} (skipped)")),
                    }
                }
                Ok(list)
            }
            OrgSource::Files(f) => {
                let f = Arc::clone(f);
                let listing = blocking(move || f.list()).await?;
                Ok(OrgList {
                    orgs: listing.orgs,
                    warnings: listing.warnings,
                })
            }
        }
    }

    pub async fn get(&self, id: &str) -> Result<OrgDocument, OrgError> {
        match self {
            OrgSource::Dashboard(d) => {
                let raw = d.client.get_organisation(id).await?;
                OrgDocument::from_slice(raw.get().as_bytes()).map_err(|source| OrgError::Document {
                    id: id.to_owned(),
                    source,
                })
            }
            OrgSource::Files(f) => {
                let (f, id) = (Arc::clone(f), id.to_owned());
                Ok(blocking(move || f.get(&id)).await?)
            }
        }
    }

    /// Saves `edited` (which must be `original` plus edits) unless the stored document is no
    /// longer `original`: then [`OrgError::Conflict`] and nothing is written. Returns the
    /// document as stored afterwards, the base for the next edit. Without changes nothing is
    /// sent or written.
    pub async fn save(
        &self,
        original: &OrgDocument,
        edited: &OrgDocument,
    ) -> Result<OrgDocument, OrgError> {
        if edited.id() != original.id() {
            return Err(OrgError::Setup(format!(
                "the edited document's id {:?} is not the loaded one's {:?}",
                edited.id(),
                original.id()
            )));
        }
        if edited == original {
            return Ok(original.clone());
        }
        match self {
            OrgSource::Dashboard(d) => {
                let (loaded, body) = (raw_document(original)?, raw_document(edited)?);
                let stored = d
                    .client
                    .update_organisation(original.id(), &loaded, &body)
                    .await?;
                // The PUT succeeded; a strange re-read must not look like a failed save.
                Ok(OrgDocument::from_slice(stored.get().as_bytes())
                    .unwrap_or_else(|_| edited.clone()))
            }
            OrgSource::Files(f) => {
                let (f, original, edited) = (Arc::clone(f), original.clone(), edited.clone());
                Ok(blocking(move || f.save(&original, &edited)).await?)
            }
        }
    }
}

/// The Dashboard's text as an ordered document value (`Null` if it is not JSON, which the client
/// has already ruled out).
fn raw_json(raw: &RawValue) -> Json {
    Json::parse(raw.get().as_bytes()).unwrap_or(Json::Null)
}

/// A document as the exact text to send.
fn raw_document(doc: &OrgDocument) -> Result<Box<RawValue>, OrgError> {
    String::from_utf8(doc.to_json())
        .map_err(|e| e.to_string())
        .and_then(|text| RawValue::from_string(text).map_err(|e| e.to_string()))
        .map_err(|e| OrgError::Setup(format!("cannot encode the document: {e}")))
}

/// Runs blocking file I/O off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, FilesError> + Send + 'static,
) -> Result<T, OrgError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(OrgError::from),
        Err(e) => Err(OrgError::Setup(format!("file task failed: {e}"))),
    }
}
