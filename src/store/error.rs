//! What the store can fail with; every message names the file or server and says what to do.

use std::path::PathBuf;

/// What can go wrong; every message names the file and says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{}: not a usable tykwatch database ({detail}). Move the file aside (e.g. `mv {0} {0}.bad`, together with any -wal/-shm files next to it) to start with an empty one, or restore a backup",
        .path.display()
    )]
    Corrupt { path: PathBuf, detail: String },
    #[error(
        "{}: the database is locked by another process (is another tykwatch running on this data dir?); stop it, or give this one its own --data-dir",
        .path.display()
    )]
    Locked { path: PathBuf },
    #[error(
        "{}: {detail}; check the permissions of the file, its -wal/-shm files and its directory, or choose another data dir (--data-dir / TYKWATCH_DATA_DIR)",
        .path.display()
    )]
    Access { path: PathBuf, detail: String },
    #[error(
        "{}: written by a newer tykwatch (schema version {found}; this build knows up to {known}); upgrade tykwatch or use another --data-dir",
        .path.display()
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },
    #[error("{}: the disk is full; free some space (notifications cannot be queued until then)", .path.display())]
    DiskFull { path: PathBuf },
    #[error("{}: {source}", .path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    /// PostgreSQL refused or lost the connection, or a statement failed. `target` is the
    /// URL with its password masked; `hint` says what to do.
    #[error("{target}: {detail}; {hint}")]
    Server {
        target: String,
        detail: String,
        hint: String,
    },
    #[error(
        "{target}: written by a newer tykwatch (schema version {found}; this build knows up to {known}); upgrade this instance (every instance on one database needs a build that knows its schema)"
    )]
    ServerTooNew {
        target: String,
        found: i64,
        known: i64,
    },
    #[error("invalid store input: {0}")]
    Invalid(String),
}

impl StoreError {
    /// Whether the failure may pass by itself (a lock, a lost connection): callers retry on
    /// their next round instead of giving up.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Locked { .. } | StoreError::Server { .. })
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
