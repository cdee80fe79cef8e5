//! Group commit: one OS thread owns the SQLite writes of the intake. Each request waits for
//! its row's commit (so a 2xx always means "on disk"); everything queued while a transaction
//! was committing goes into the next one, so a flood costs one fsync per batch instead of one
//! per event, and a lone event is committed at once (no artificial wait).

use std::sync::{Arc, Mutex};
use std::thread;

use tokio::sync::{mpsc, oneshot};

use crate::store::{NewEvent, Store};

/// Rows per transaction at most: bounds the time the write lock is held for other connections.
const MAX_BATCH: usize = 1024;

/// The store the intake writes to.
pub enum IntakeStore {
    /// A connection of its own (recommended: never waits for the console's or notifier's lock).
    Own(Store),
    /// A connection shared with other parts of the program; locked once per batch.
    Shared(Arc<Mutex<Store>>),
}

impl From<Store> for IntakeStore {
    fn from(s: Store) -> Self {
        IntakeStore::Own(s)
    }
}

impl From<Arc<Mutex<Store>>> for IntakeStore {
    fn from(s: Arc<Mutex<Store>>) -> Self {
        IntakeStore::Shared(s)
    }
}

impl IntakeStore {
    fn insert(&mut self, rows: &[NewEvent]) -> Result<Vec<i64>, String> {
        let res = match self {
            IntakeStore::Own(s) => s.insert_events(rows),
            IntakeStore::Shared(m) => m
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert_events(rows),
        };
        res.map_err(|e| e.to_string())
    }
}

/// One row to record; the reply carries its id or the store's error message.
pub(super) struct WriteReq {
    pub row: NewEvent,
    pub reply: oneshot::Sender<Result<i64, String>>,
}

/// Starts the writer thread. It ends when every sender is dropped, after committing what was
/// queued; `done` fires then.
pub(super) fn spawn(
    store: IntakeStore,
    rx: mpsc::Receiver<WriteReq>,
    done: oneshot::Sender<()>,
) -> std::io::Result<()> {
    thread::Builder::new()
        .name("tykwatch-intake-db".to_owned())
        .spawn(move || {
            run(store, rx);
            let _ = done.send(());
        })
        .map(drop)
}

fn run(mut store: IntakeStore, mut rx: mpsc::Receiver<WriteReq>) {
    let mut rows = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(req) = next {
            rows.push(req.row);
            replies.push(req.reply);
            next = if rows.len() < MAX_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        match store.insert(&rows) {
            Ok(ids) => {
                for (reply, id) in replies.drain(..).zip(ids) {
                    // The request may have been cancelled (client gone): the row stays recorded.
                    let _ = reply.send(Ok(id));
                }
            }
            Err(msg) => {
                for reply in replies.drain(..) {
                    let _ = reply.send(Err(msg.clone()));
                }
            }
        }
        replies.clear();
        rows.clear();
    }
}
