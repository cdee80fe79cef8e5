//! Offline organisation documents: `<dir>/<org id>.json`, each exactly what
//! `GET /admin/organisations/{id}` returns (so `POST /admin/organisations/import` takes it).
//!
//! A save never leaves a half-written file: the document goes to a hidden temp file in the same
//! directory, which is fsynced, renamed over the old file (atomic on POSIX) and the directory
//! fsynced. Before writing, the file is re-read: if it no longer holds the document as loaded,
//! the save is a conflict and nothing is written.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::document::{DocumentError, OrgDocument};

#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("cannot read the org directory {dir}: {reason} — check [orgs] dir")]
    Dir { dir: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path}: {source}")]
    Invalid {
        path: PathBuf,
        source: DocumentError,
    },
    #[error("no file for organisation {id:?} in {dir} (expected {id}.json)")]
    NotFound { id: String, dir: PathBuf },
    #[error(
        "organisation id {id:?} cannot name a file (letters, digits, - and _ only); edit it through the Dashboard"
    )]
    BadId { id: String },
    #[error("cannot save {path}: {reason} — nothing was changed")]
    Write { path: PathBuf, reason: String },
    #[error(
        "{path} changed since it was loaded — nothing was saved; reload it and make the edit again"
    )]
    Conflict {
        path: PathBuf,
        loaded: Box<OrgDocument>,
        /// `None`: the file was deleted.
        current: Option<Box<OrgDocument>>,
    },
}

/// The documents of one directory, with the ids their files name.
#[derive(Debug, Default)]
pub struct DirListing {
    pub orgs: Vec<OrgDocument>,
    /// Files that could not be used, one message each (the others are still listed).
    pub warnings: Vec<String>,
}

#[derive(Debug)]
pub struct OrgFiles {
    dir: PathBuf,
    crash_before_rename: AtomicBool,
}

impl OrgFiles {
    pub fn new(dir: impl Into<PathBuf>) -> OrgFiles {
        OrgFiles {
            dir: dir.into(),
            crash_before_rename: AtomicBool::new(false),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<dir>/<id>.json`; ids that are not a plain file stem are refused (no `..`, no `/`).
    pub fn path_for(&self, id: &str) -> Result<PathBuf, FilesError> {
        if !crate::config::is_file_stem(id) {
            return Err(FilesError::BadId { id: id.to_owned() });
        }
        Ok(self.dir.join(format!("{id}.json")))
    }

    /// Every `*.json` document, sorted by file name. A broken file becomes a warning.
    pub fn list(&self) -> Result<DirListing, FilesError> {
        let dir_error = |e: io::Error| FilesError::Dir {
            dir: self.dir.clone(),
            reason: e.to_string(),
        };
        let mut paths = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(dir_error)? {
            let path = entry.map_err(dir_error)?.path();
            let hidden = path
                .file_name()
                .and_then(|n| n.to_str())
                .is_none_or(|n| n.starts_with('.'));
            if !hidden && path.extension().is_some_and(|e| e == "json") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut listing = DirListing::default();
        for path in paths {
            match read_document(&path) {
                Ok(doc) => {
                    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                    if doc.id() != stem {
                        listing.warnings.push(format!(
                            "{}: skipped: its \"id\" is {:?}; name the file {}.json",
                            path.display(),
                            doc.id(),
                            doc.id()
                        ));
                    } else {
                        listing.orgs.push(doc);
                    }
                }
                Err(e) => listing.warnings.push(format!("{e} (skipped)")),
            }
        }
        Ok(listing)
    }

    pub fn get(&self, id: &str) -> Result<OrgDocument, FilesError> {
        let path = self.path_for(id)?;
        if !path.exists() {
            return Err(FilesError::NotFound {
                id: id.to_owned(),
                dir: self.dir.clone(),
            });
        }
        read_document(&path)
    }

    /// Writes `edited` over `original`'s file, atomically, unless the file changed since
    /// `original` was read. Returns the document as now stored.
    pub fn save(
        &self,
        original: &OrgDocument,
        edited: &OrgDocument,
    ) -> Result<OrgDocument, FilesError> {
        if edited.id() != original.id() {
            return Err(FilesError::BadId {
                id: edited.id().to_owned(),
            });
        }
        let path = self.path_for(original.id())?;
        let current = if path.exists() {
            Some(read_document(&path)?)
        } else {
            None
        };
        if current.as_ref() != Some(original) {
            return Err(FilesError::Conflict {
                path,
                loaded: Box::new(original.clone()),
                current: current.map(Box::new),
            });
        }
        self.write_atomic(&path, edited.to_pretty_json().as_bytes())?;
        Ok(edited.clone())
    }

    /// Test hook: the next saves stop after the temp file is written and fsynced, as a crash
    /// there would (the temp file stays; the document is untouched).
    #[doc(hidden)]
    pub fn simulate_crash_before_rename(&self, on: bool) {
        self.crash_before_rename.store(on, Ordering::SeqCst);
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), FilesError> {
        let crash = self.crash_before_rename.load(Ordering::SeqCst);
        crate::atomic_file::replace_with(path, bytes, || match crash {
            true => Err(io::Error::other("simulated crash before rename")),
            false => Ok(()),
        })
        .map_err(|e| FilesError::Write {
            path: path.to_path_buf(),
            reason: describe_write_error(&e, &self.dir),
        })
    }
}

fn read_document(path: &Path) -> Result<OrgDocument, FilesError> {
    let bytes = fs::read(path).map_err(|e| FilesError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    OrgDocument::from_slice(&bytes).map_err(|source| FilesError::Invalid {
        path: path.to_path_buf(),
        source,
    })
}

fn describe_write_error(e: &io::Error, dir: &Path) -> String {
    match e.kind() {
        io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => format!(
            "{e} — {} is not writable; make it writable or point [orgs] dir elsewhere",
            dir.display()
        ),
        io::ErrorKind::NotFound => format!("{e} — does {} exist?", dir.display()),
        _ => e.to_string(),
    }
}
