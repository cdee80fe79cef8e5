//! The PostgreSQL engine: `[store] url`, one ledger and outbox shared by several instances.
//!
//! - One connection per [`Postgres`], owned by a thread of its own that runs the jobs sent to
//!   it in order. The blocking `postgres` client drives a runtime of its own, which must not
//!   run on a Tokio worker; with the thread, callers may call from anywhere, as with SQLite.
//! - A lost connection is opened again on the next call (not inside a transaction: that fails,
//!   and the caller's next round starts afresh), so a restarted server costs one failed round.
//! - Exactly-once across instances: the ledger's primary key; a crossing's outbox rows are
//!   inserted only when its ledger row is (`ON CONFLICT DO NOTHING RETURNING`), in the same
//!   transaction. Claims take `FOR UPDATE SKIP LOCKED` rows under a transaction-scoped advisory
//!   lock, so per-channel caps count every instance's claims exactly.
//! - Migrations run under a session advisory lock, so instances starting together migrate once.
//!
//! TLS follows the URL's `sslmode` (libpq's names): `disable`; `allow`/`prefer` (TLS when the
//! server offers it); `require`, `verify-ca`, `verify-full` (TLS or no connection). With TLS
//! the certificate chain and host name are always verified — against the platform's roots, or
//! `sslrootcert` (a PEM file) when given: unlike libpq's `require`, no mode skips verification.

mod claims;
mod events;
mod ledger;
mod load;
mod outbox;
mod schema;
mod target;

use std::fmt;
use std::sync::mpsc;
use std::time::Duration;

use postgres::Client;

use super::{Result, StoreError};
use crate::config::StoreConfig;
use target::Target;

/// `url` with its password masked, for messages.
pub fn mask_url(url: &str) -> String {
    target::mask(url)
}

/// One job for the connection's thread.
type Job = Box<dyn FnOnce(&mut Conn) + Send>;

/// A connection to PostgreSQL, used through its thread.
pub struct Postgres {
    jobs: mpsc::Sender<Job>,
    target: String,
}

impl fmt::Debug for Postgres {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Postgres")
            .field("target", &self.target)
            .finish()
    }
}

/// What the connection's thread owns.
pub(super) struct Conn {
    client: Option<Client>,
    target: Target,
    /// Inside a transaction begun by [`Postgres::transaction`].
    in_tx: bool,
    /// The connection was lost inside that transaction: every call fails until it ends.
    tx_lost: bool,
}

impl Postgres {
    /// Connects (failing with what to fix when the server cannot be reached or refuses), then
    /// migrates the schema.
    pub fn connect(config: &StoreConfig) -> Result<Postgres> {
        let target = Target::from_config(config)?;
        let shown = target.shown.clone();
        let mut conn = Conn {
            client: None,
            target,
            in_tx: false,
            tx_lost: false,
        };
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("store-postgres".into())
            .spawn(move || {
                // Ends when the `Postgres` (the only sender) is dropped.
                while let Ok(job) = rx.recv() {
                    job(&mut conn);
                }
            })
            .map_err(|e| StoreError::Server {
                target: shown.clone(),
                detail: format!("cannot start the connection's thread: {e}"),
                hint: "the machine is out of threads or memory".into(),
            })?;
        let pg = Postgres {
            jobs,
            target: shown,
        };
        // Connecting runs on the connection's thread too: the client blocks on a runtime of
        // its own, which cannot start on a thread that drives Tokio tasks.
        pg.call(|c| {
            c.client()?;
            schema::migrate(c)
        })?;
        Ok(pg)
    }

    /// The URL with its password masked.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Runs `f` on the connection's thread and waits for it.
    pub(super) fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |c| {
            let _ = tx.send(f(c));
        });
        let gone = || StoreError::Server {
            target: self.target.clone(),
            detail: "the connection's thread has stopped".into(),
            hint: "restart tykwatch".into(),
        };
        self.jobs.send(job).map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }

    /// Runs `f` (whose calls reach this connection through the facade) in one transaction;
    /// rolled back when `f` fails. Not nested.
    pub fn transaction<T>(&self, f: impl FnOnce() -> Result<T>) -> Result<T> {
        self.call(|c| {
            if c.in_tx {
                return Err(StoreError::Invalid("nested transaction".into()));
            }
            c.client()?.batch_execute("BEGIN").map_err(|e| c.err(e))?;
            c.in_tx = true;
            c.tx_lost = false;
            Ok(())
        })?;
        let out = f();
        let end = if out.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = self.call(move |c| {
            let lost = c.tx_lost;
            c.in_tx = false;
            c.tx_lost = false;
            if lost {
                return Err(c.lost_in_tx());
            }
            c.client()?.batch_execute(end).map_err(|e| c.err(e))
        });
        match out {
            Ok(v) => ended.map(|()| v),
            // The first failure is the one to report; the rollback's own is secondary.
            Err(e) => Err(e),
        }
    }
}

impl Conn {
    /// The open client, connecting first when there is none or the server closed it.
    pub(super) fn client(&mut self) -> Result<&mut Client> {
        if self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
            if self.in_tx {
                self.tx_lost = true;
            }
        }
        if self.tx_lost {
            return Err(self.lost_in_tx());
        }
        if self.client.is_none() {
            self.client = Some(self.target.connect()?);
        }
        self.client.as_mut().ok_or_else(|| StoreError::Server {
            target: self.target.shown.clone(),
            detail: "no connection".into(),
            hint: String::new(),
        })
    }

    fn lost_in_tx(&self) -> StoreError {
        StoreError::Server {
            target: self.target.shown.clone(),
            detail: "the connection was lost inside a transaction (nothing of it was committed)"
                .into(),
            hint: "it is tried again on the next round".into(),
        }
    }

    /// A driver error as a [`StoreError`]; a closed connection is dropped, so the next call
    /// connects again.
    pub(super) fn err(&mut self, e: postgres::Error) -> StoreError {
        if e.is_closed() || self.client.as_ref().is_some_and(Client::is_closed) {
            self.client = None;
            if self.in_tx {
                self.tx_lost = true;
            }
        }
        target::describe(&self.target.shown, &e)
    }

    /// Runs `f` in a transaction of its own (a method's several statements); committed when
    /// `f` succeeds. Inside [`Postgres::transaction`] the statements join that one instead.
    pub(super) fn atomic<T>(
        &mut self,
        f: impl FnOnce(&mut postgres::Transaction<'_>) -> std::result::Result<T, postgres::Error>,
    ) -> Result<T> {
        if self.in_tx {
            return Err(StoreError::Invalid(
                "a multi-statement store call inside Store::in_transaction".into(),
            ));
        }
        let client = self.client()?;
        let result = (|| {
            let mut tx = client.transaction()?;
            let out = f(&mut tx)?;
            tx.commit()?;
            Ok(out)
        })();
        result.map_err(|e| self.err(e))
    }
}

/// Statement timeout: a claim waiting on another instance's lock, or a server that stopped
/// answering, fails the call instead of holding the dispatcher for ever.
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);
