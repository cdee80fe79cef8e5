//! The intake's log of received events, and whether each has been routed.

use rusqlite::{TransactionBehavior, params};

use super::{Result, Sqlite, StoreError, clamp_limit};
use crate::clock::UnixMs;
use crate::store::{EventRow, NewEvent};

impl Sqlite {
    /// Marks received events as routed although they planned no rows (no route matched, the
    /// org has no address): [`Sqlite::unrouted_events`] then stops offering them.
    pub fn mark_events_routed(&self, ids: &[i64], now: UnixMs) -> Result<()> {
        self.in_transaction(|s| {
            let mut st = s
                .conn
                .prepare_cached(
                    "UPDATE events SET routed_at = ?2 WHERE id = ?1 AND routed_at IS NULL",
                )
                .map_err(|e| s.err(e))?;
            for id in ids {
                st.execute(params![id, now]).map_err(|e| s.err(e))?;
            }
            Ok(())
        })
    }

    /// Received events not routed yet (no `routed_at`: [`Sqlite::enqueue`] and
    /// [`Sqlite::mark_events_routed`] set it), received at or after `since`, oldest first.
    /// Quota triggers are left out (they are not routed). For catching up on events the engine
    /// did not see live: a crash between the intake's commit and the enqueue, or events
    /// counted in the intake's `dropped`.
    pub fn unrouted_events(&self, since: UnixMs, limit: usize) -> Result<Vec<EventRow>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, received_at, kind, event, org_id, summary, masked_key, payload_json \
                 FROM events WHERE routed_at IS NULL AND received_at >= ?1 \
                 AND kind != 'quota_trigger' ORDER BY id LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        st.query_map(params![since, clamp_limit(limit)], read_event)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Records one received event; returns its id. See [`Sqlite::insert_events`].
    pub fn insert_event(&mut self, event: &NewEvent) -> Result<i64> {
        let ids = self.insert_events(std::slice::from_ref(event))?;
        ids.first()
            .copied()
            .ok_or_else(|| StoreError::Invalid("the event insert returned no id".to_owned()))
    }

    /// Records received events in ONE transaction (group commit: one fsync for the batch) and
    /// returns their ids in input order. On error nothing is written.
    pub fn insert_events(&mut self, events: &[NewEvent]) -> Result<Vec<i64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut ids = Vec::with_capacity(events.len());
        {
            let mut st = tx
                .prepare_cached(
                    "INSERT INTO events (received_at, kind, event, org_id, summary, masked_key, payload_json) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )
                .map_err(err)?;
            for e in events {
                st.execute(params![
                    e.received_at,
                    e.kind,
                    e.event,
                    e.org_id,
                    e.summary,
                    e.masked_key,
                    e.payload_json
                ])
                .map_err(err)?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit().map_err(err)?;
        Ok(ids)
    }

    /// The newest `limit` received events, newest first.
    pub fn list_events(&self, limit: usize) -> Result<Vec<EventRow>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, received_at, kind, event, org_id, summary, masked_key, payload_json \
                 FROM events ORDER BY id DESC LIMIT ?1",
            )
            .map_err(|e| self.err(e))?;
        st.query_map([clamp_limit(limit)], read_event)
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    pub fn count_events(&self) -> Result<u64> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
            .map_err(|e| self.err(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Deletes events received before `before` (retention). Returns how many were deleted.
    pub fn purge_events(&self, before: UnixMs) -> Result<usize> {
        let mut st = self
            .conn
            .prepare_cached("DELETE FROM events WHERE received_at < ?1")
            .map_err(|e| self.err(e))?;
        st.execute([before]).map_err(|e| self.err(e))
    }
}

fn read_event(r: &rusqlite::Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get(0)?,
        received_at: r.get(1)?,
        kind: r.get(2)?,
        event: r.get(3)?,
        org_id: r.get(4)?,
        summary: r.get(5)?,
        masked_key: r.get(6)?,
        payload_json: r.get(7)?,
    })
}
