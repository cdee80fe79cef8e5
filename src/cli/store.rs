//! `tykwatch store migrate --from <data dir> --to postgres://…`: one instance's SQLite ledger,
//! outbox and events copied into an empty PostgreSQL database, all or nothing.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use crate::config::{Secret, StoreConfig};
use crate::store::{DB_FILE, Store};

use super::Setup;

pub fn migrate(
    setup: &Setup,
    from: &Path,
    to: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> ExitCode {
    match copy(setup, from, to) {
        Ok(summary) => {
            let _ = writeln!(out, "{summary}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(err, "tykwatch: store migrate: {e}");
            ExitCode::from(2)
        }
    }
}

fn copy(setup: &Setup, from: &Path, to: &str) -> Result<String, String> {
    let db = from.join(DB_FILE);
    if !db.is_file() {
        return Err(format!(
            "no database at {}: --from names the data dir of the instance to copy",
            db.display()
        ));
    }
    // The instance that owns the dir must be stopped: rows it writes after the copy would be
    // lost to the shared store.
    let lock_path = from.join("tykwatch.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("cannot open {}: {e}", lock_path.display()))?;
    if let Err(e) = lock.try_lock() {
        return Err(match e {
            std::fs::TryLockError::WouldBlock => format!(
                "a tykwatch is running on {}: stop it first (its rows would change under the copy)",
                from.display()
            ),
            std::fs::TryLockError::Error(e) => format!("cannot lock {}: {e}", lock_path.display()),
        });
    }
    let source = Store::open(&db).map_err(|e| e.to_string())?;
    let dump = source.dump().map_err(|e| e.to_string())?;
    let config = StoreConfig {
        url: Secret::new(to),
        password: setup.config.store.password.clone(),
        ..StoreConfig::default()
    };
    let mut target = Store::connect(&config).map_err(|e| e.to_string())?;
    let copied = dump.summary();
    let (ledger, outbox, events) = (dump.ledger.len(), dump.outbox.len(), dump.events.len());
    target.load(dump).map_err(|e| e.to_string())?;
    // Read back: what arrived is what was sent.
    let check = target.dump().map_err(|e| e.to_string())?;
    if (check.ledger.len(), check.outbox.len(), check.events.len()) != (ledger, outbox, events) {
        return Err(format!(
            "{}: the copy reads back as {} after sending {copied}",
            target.describe(),
            check.summary()
        ));
    }
    Ok(format!(
        "copied {copied} from {} to {}; point every instance's [store] url at it",
        db.display(),
        target.describe()
    ))
}
