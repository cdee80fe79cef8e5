//! The SQLite engine: one file in the data dir, the embedded default (one instance, the
//! console). The only place that writes SQLite SQL.
//!
//! Durability: WAL with `synchronous=FULL` (an fsync per commit: an acknowledged write survives
//! power loss). A crossing and its outbox rows are written in one transaction with
//! `INSERT OR IGNORE`, so re-detecting a crossing after a crash never creates a second
//! notification. Callers batch many crossings per call (one sweep) to amortise the fsync.

mod channels;
mod claims;
mod events;
mod ledger;
mod outbox;
mod schema;

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, ErrorCode, OpenFlags, TransactionBehavior};

use super::{DB_FILE, Result, StoreError, StoreOptions, StoreSettings};
use schema::MIGRATIONS;

/// `PRAGMA application_id`: marks the file as ours ("TYKW"), so another program's SQLite file
/// at the same path is refused rather than extended.
const APPLICATION_ID: i64 = 0x5459_4B57;

impl StoreError {
    pub(super) fn from_sqlite(path: &Path, e: rusqlite::Error) -> StoreError {
        let path = path.to_path_buf();
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
                StoreError::Corrupt {
                    path,
                    detail: e.to_string(),
                }
            }
            Some(ErrorCode::DatabaseBusy) | Some(ErrorCode::DatabaseLocked) => {
                StoreError::Locked { path }
            }
            Some(ErrorCode::ReadOnly)
            | Some(ErrorCode::CannotOpen)
            | Some(ErrorCode::PermissionDenied) => StoreError::Access {
                path,
                detail: e.to_string(),
            },
            Some(ErrorCode::DiskFull) => StoreError::DiskFull { path },
            _ => StoreError::Sqlite { path, source: e },
        }
    }

    fn io(path: &Path, what: &str, e: io::Error) -> StoreError {
        StoreError::Access {
            path: path.to_path_buf(),
            detail: format!("{what}: {e}"),
        }
    }
}

pub struct Sqlite {
    conn: Connection,
    path: PathBuf,
}

impl fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sqlite").field("path", &self.path).finish()
    }
}

impl Sqlite {
    /// Opens (creating if needed) `<data_dir>/tykwatch.db`; creates the dir (0700) too.
    pub fn open_in(data_dir: impl AsRef<Path>) -> Result<Sqlite> {
        let dir = data_dir.as_ref();
        create_private_dir(dir).map_err(|e| StoreError::io(dir, "cannot create directory", e))?;
        Sqlite::open(dir.join(DB_FILE))
    }

    /// Opens (creating if needed) the database file at `path`.
    pub fn open(path: impl AsRef<Path>) -> Result<Sqlite> {
        Sqlite::open_with(path, StoreOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, opts: StoreOptions) -> Result<Sqlite> {
        let path = path.as_ref().to_path_buf();
        create_private_file(&path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags)
            .map_err(|e| StoreError::from_sqlite(&path, e))?;
        let mut store = Sqlite { conn, path };
        store.init(opts)?;
        Ok(store)
    }

    fn init(&mut self, opts: StoreOptions) -> Result<()> {
        let conn = &self.conn;
        conn.busy_timeout(opts.busy_timeout)
            .map_err(|e| self.err(e))?;
        // SQLite silently falls back to read-only when it cannot write the file.
        if conn.is_readonly("main").map_err(|e| self.err(e))? {
            return Err(StoreError::Access {
                path: self.path.clone(),
                detail: "the file can only be opened read-only".to_owned(),
            });
        }
        // The first read of the header: a file that is not SQLite fails here.
        let app_id: i64 = conn
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| self.err(e))?;
        let tables: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if app_id != APPLICATION_ID && (app_id != 0 || version != 0 || tables != 0) {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!(
                    "an SQLite file of another program (application_id {app_id}, {tables} schema objects)"
                ),
            });
        }
        let known = MIGRATIONS.len() as i64;
        if version > known {
            return Err(StoreError::TooNew {
                path: self.path.clone(),
                found: version,
                known,
            });
        }
        let mode: String = conn
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Access {
                path: self.path.clone(),
                detail: format!(
                    "write-ahead logging is not available here (journal mode stays {mode:?}; network file systems do not support it)"
                ),
            });
        }
        // A larger page cache and WAL keep a sweep's burst of crossings from spilling pages and
        // checkpointing mid-burst (random hash keys touch many index pages); about 32 MB at most.
        conn.execute_batch(
            "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON; PRAGMA cache_size=-16384;",
        )
        .map_err(|e| self.err(e))?;
        let _: i64 = conn
            .query_row("PRAGMA wal_autocheckpoint=4096", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        conn.set_prepared_statement_cache_capacity(64);
        self.migrate(version)
    }

    fn migrate(&mut self, from: i64) -> Result<()> {
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(from.max(0) as usize) {
            let tx = self
                .conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(err)?;
            // Re-read inside the write lock: another process may have migrated meanwhile.
            let now: i64 = tx
                .pragma_query_value(None, "user_version", |r| r.get(0))
                .map_err(err)?;
            if now > i as i64 {
                continue;
            }
            tx.execute_batch(sql).map_err(err)?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(err)?;
            tx.pragma_update(None, "application_id", APPLICATION_ID)
                .map_err(err)?;
            tx.commit().map_err(err)?;
        }
        Ok(())
    }

    pub(super) fn err(&self, e: rusqlite::Error) -> StoreError {
        StoreError::from_sqlite(&self.path, e)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// This connection's durability settings, for diagnostics and tests.
    pub fn settings(&self) -> Result<StoreSettings> {
        let get = |name: &str| -> Result<String> {
            self.conn
                .pragma_query_value(None, name, |r| {
                    Ok(match r.get_ref(0)? {
                        rusqlite::types::ValueRef::Text(t) => {
                            String::from_utf8_lossy(t).into_owned()
                        }
                        v => v.as_i64().map(|n| n.to_string()).unwrap_or_default(),
                    })
                })
                .map_err(|e| self.err(e))
        };
        Ok(StoreSettings {
            journal_mode: get("journal_mode")?,
            synchronous: get("synchronous")?.parse().unwrap_or(-1),
            foreign_keys: get("foreign_keys")? == "1",
            busy_timeout_ms: get("busy_timeout")?.parse().unwrap_or(-1),
        })
    }

    /// Runs `f` in one transaction; rolled back when `f` fails.
    pub fn in_transaction<T>(&self, f: impl FnOnce(&Sqlite) -> Result<T>) -> Result<T> {
        self.transaction(|| f(self))
    }

    /// Runs `f` (which reaches this connection through the facade) in one transaction (one
    /// fsync for many small updates: the dispatcher's outcomes); rolled back when `f` fails.
    pub fn transaction<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        let tx = self.conn.unchecked_transaction().map_err(|e| self.err(e))?;
        let out = f()?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    fn update(&self, sql: &str, p: impl rusqlite::Params) -> Result<bool> {
        let mut st = self.conn.prepare_cached(sql).map_err(|e| self.err(e))?;
        Ok(st.execute(p).map_err(|e| self.err(e))? > 0)
    }

    /// `PRAGMA integrity_check` and `foreign_key_check`; `Corrupt` with SQLite's findings.
    pub fn integrity_check(&self) -> Result<()> {
        let mut st = self
            .conn
            .prepare("PRAGMA integrity_check")
            .map_err(|e| self.err(e))?;
        let found: Vec<String> = st
            .query_map([], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))?;
        if found != ["ok"] {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("integrity check: {}", found.join("; ")),
            });
        }
        let orphans: i64 = self
            .conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .map_err(|e| self.err(e))?;
        if orphans > 0 {
            return Err(StoreError::Corrupt {
                path: self.path.clone(),
                detail: format!("{orphans} outbox rows without their ledger row"),
            });
        }
        Ok(())
    }
}

pub(super) fn clamp_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Creates the file with mode 0600 before SQLite does (SQLite would use 0644 minus umask);
/// the -wal and -shm files inherit the mode. An existing file is tightened to 0600.
fn create_private_file(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_private_dir(parent)
            .map_err(|e| StoreError::io(path, "cannot create its directory", e))?;
    }
    let mut o = fs::OpenOptions::new();
    o.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let file = o
        .open(path)
        .map_err(|e| StoreError::io(path, "cannot open for writing", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = file
            .metadata()
            .map_err(|e| StoreError::io(path, "cannot read metadata", e))?;
        if !meta.is_file() {
            return Err(StoreError::Access {
                path: path.to_path_buf(),
                detail: "not a regular file".to_owned(),
            });
        }
        if meta.permissions().mode() & 0o077 != 0 {
            // Best effort: a file we do not own keeps its mode, and SQLite still works.
            let _ = file.set_permissions(fs::Permissions::from_mode(0o600));
        }
    }
    drop(file);
    Ok(())
}

fn create_private_dir(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if dir.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "it exists but is not a directory",
        ));
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}
