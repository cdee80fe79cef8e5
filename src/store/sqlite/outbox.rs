//! The outbox table: queueing, claiming, outcomes, listing.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, Row, TransactionBehavior, params};

use super::{Result, Sqlite, StoreError, clamp_limit};
use crate::clock::UnixMs;
use crate::outbox::{ChannelId, OutboxCounts, OutboxFilter, OutboxRow, OutboxState, Source};

pub(super) const ROW_COLUMNS: &str = "idem_key, channel_id, kind, payload_json, state, attempts, \
     next_attempt_at, last_status, last_error, created_at, delivered_at, source, quota_key, \
     period, threshold, event_id, sequence";

/// One outbox row; `last_error` is ?7. Shared by crossings and routed events.
pub(super) const INSERT_OUTBOX: &str = "INSERT OR IGNORE INTO outbox (idem_key, channel_id, kind, \
     payload_json, state, attempts, next_attempt_at, last_error, created_at, source, quota_key, \
     period, threshold, event_id, sequence) \
     VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// Channels a 410 disabled, with the reason.
pub(super) fn disabled_in(
    tx: &rusqlite::Transaction<'_>,
) -> rusqlite::Result<HashMap<String, String>> {
    let mut st = tx.prepare_cached(
        "SELECT channel_id, coalesce(disabled_reason, '') FROM channels WHERE disabled_at IS NOT NULL",
    )?;
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
}

/// Inserts `r` in the state it is queued in (`queued`), or failed when its channel is disabled.
pub(super) fn insert_outbox(
    st: &mut rusqlite::CachedStatement<'_>,
    r: &OutboxRow,
    queued: (OutboxState, Option<String>),
    disabled: &HashMap<String, String>,
    sequence: i64,
) -> rusqlite::Result<usize> {
    let channel = r.channel_id.to_string();
    let (state, error) = match disabled.get(&channel) {
        Some(reason) => (
            OutboxState::Failed,
            Some(format!("channel disabled: {reason}")),
        ),
        None => queued,
    };
    let (quota_key, period, threshold, event_id) = match &r.source {
        Source::Crossing {
            quota_key,
            period,
            threshold,
        } => (
            Some(quota_key.as_str()),
            Some(*period),
            Some(*threshold),
            None,
        ),
        Source::Event { event_id } => (None, None, None, Some(*event_id)),
    };
    st.execute(params![
        r.idem_key,
        channel,
        r.kind().as_str(),
        r.payload_json,
        state.as_str(),
        r.next_attempt_at,
        error,
        r.created_at,
        r.source.as_str(),
        quota_key,
        period,
        threshold,
        event_id,
        sequence
    ])
}

impl Sqlite {
    /// Queues the outbox rows of received events (`crate::notify::route`) in ONE transaction
    /// and marks those events routed; returns how many rows are new.
    ///
    /// `INSERT OR IGNORE` on the idempotency key: replaying an event (same id, same channels)
    /// adds nothing. Every row's source must be [`Source::Event`]; threshold notifications go
    /// through [`Sqlite::record_crossings`] (they need their ledger row). `sequence` is ignored:
    /// the row takes the highest sequence recorded so far (without advancing it: the monitor
    /// owns that counter), so the Notifications view lists it among the crossings of the same
    /// moment. `state`/`last_error` are kept as planned (`pending`, or `failed` with the
    /// reason when planning could not complete, e.g. an org that could not be read); a channel
    /// disabled by a 410 makes the row `failed` like [`Sqlite::record_crossings`] does.
    ///
    /// On error nothing is written.
    pub fn enqueue(&mut self, rows: &[OutboxRow]) -> Result<usize> {
        if rows.is_empty() {
            return Ok(0);
        }
        for r in rows {
            if !r.source.is_event() {
                return Err(StoreError::Invalid(format!(
                    "outbox row {} is not an event row; threshold notifications go through \
                     record_crossings",
                    r.idem_key
                )));
            }
            if !matches!(r.state, OutboxState::Pending | OutboxState::Failed) {
                return Err(StoreError::Invalid(format!(
                    "outbox row {} must be queued pending or failed, not {}",
                    r.idem_key, r.state
                )));
            }
        }
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let disabled = disabled_in(&tx).map_err(err)?;
        let sequence: i64 = tx
            .query_row(
                "SELECT value FROM meta WHERE name = 'last_sequence'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?
            .unwrap_or(0);
        let mut inserted = 0;
        {
            let mut routed = tx
                .prepare_cached(
                    "UPDATE events SET routed_at = ?2 WHERE id = ?1 AND routed_at IS NULL",
                )
                .map_err(err)?;
            let mut outbox = tx.prepare_cached(INSERT_OUTBOX).map_err(err)?;
            for r in rows {
                if let Source::Event { event_id } = r.source {
                    routed
                        .execute(params![event_id, r.created_at])
                        .map_err(err)?;
                }
                let queued = (r.state, r.last_error.clone());
                inserted +=
                    insert_outbox(&mut outbox, r, queued, &disabled, sequence).map_err(err)?;
            }
        }
        tx.commit().map_err(err)?;
        Ok(inserted)
    }

    /// Pending rows whose time has come, oldest first.
    pub fn due(&self, now: UnixMs, limit: usize) -> Result<Vec<OutboxRow>> {
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?1 \
             ORDER BY next_attempt_at, sequence LIMIT ?2"
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_and_then(params![now, clamp_limit(limit)], read_row)
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }

    /// [`Sqlite::due`] without the rows of `except` (channels that already hold as many rows as
    /// they may): the dispatcher reaches other channels' rows behind a busy channel's.
    pub fn due_except(
        &self,
        now: UnixMs,
        limit: usize,
        except: &[ChannelId],
    ) -> Result<Vec<OutboxRow>> {
        if except.is_empty() {
            return self.due(now, limit);
        }
        let marks = vec!["?"; except.len()].join(", ");
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM outbox WHERE state = 'pending' AND next_attempt_at <= ? \
             AND channel_id NOT IN ({marks}) ORDER BY next_attempt_at, sequence LIMIT ?"
        );
        let mut st = self.conn.prepare(&sql).map_err(|e| self.err(e))?;
        let mut values: Vec<rusqlite::types::Value> = vec![now.into()];
        values.extend(except.iter().map(|c| c.to_string().into()));
        values.push(clamp_limit(limit).into());
        let rows = st
            .query_and_then(rusqlite::params_from_iter(values), read_row)
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }

    /// [`Sqlite::due`] and [`Sqlite::mark_inflight`] in one transaction: the rows returned are
    /// this caller's alone, even with several processes on one database.
    pub fn claim_due(&mut self, now: UnixMs, limit: usize) -> Result<Vec<OutboxRow>> {
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut rows = Vec::new();
        {
            let sql = format!(
                "SELECT {ROW_COLUMNS} FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?1 \
                 ORDER BY next_attempt_at, sequence LIMIT ?2"
            );
            let mut st = tx.prepare_cached(&sql).map_err(err)?;
            let found = st
                .query_and_then(params![now, clamp_limit(limit)], read_row)
                .map_err(err)?;
            for r in found {
                rows.push(r.map_err(err)?);
            }
            let mut up = tx
                .prepare_cached("UPDATE outbox SET state = 'inflight' WHERE idem_key = ?1")
                .map_err(err)?;
            for r in &mut rows {
                up.execute([&r.idem_key]).map_err(err)?;
                r.state = OutboxState::Inflight;
            }
        }
        tx.commit().map_err(err)?;
        Ok(rows)
    }

    /// `pending → inflight` just before a send; false when the row was not pending (someone
    /// else claimed it, or it was failed meanwhile).
    pub fn mark_inflight(&self, idem_key: &str) -> Result<bool> {
        self.update(
            "UPDATE outbox SET state = 'inflight' WHERE idem_key = ?1 AND state = 'pending'",
            [idem_key],
        )
    }

    /// Start-up: sends interrupted by a crash go out again (same idempotency key). Returns how
    /// many rows were recovered.
    pub fn recover_inflight(&self) -> Result<usize> {
        let mut st = self
            .conn
            .prepare_cached(
                "UPDATE outbox SET state = 'pending', claimed_by = NULL, claimed_until = NULL, \
                 claim_token = NULL WHERE state = 'inflight'",
            )
            .map_err(|e| self.err(e))?;
        st.execute([]).map_err(|e| self.err(e))
    }

    /// Manual resend of a `failed` or `dead` row: `pending` now, attempts reset. The last
    /// status and error stay visible until the next attempt.
    pub fn resend(&self, idem_key: &str, now: UnixMs) -> Result<bool> {
        self.update(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?2 \
             WHERE idem_key = ?1 AND state IN ('failed', 'dead')",
            params![idem_key, now],
        )
    }

    /// `tykwatch outbox retry-failed`: every row in one of `states` (only `failed` and `dead`
    /// qualify) that `filter`'s channel and org select goes back to `pending` now, attempts
    /// reset. Returns how many.
    pub fn resend_matching(
        &self,
        states: &[OutboxState],
        filter: &OutboxFilter,
        now: UnixMs,
    ) -> Result<usize> {
        let mut n = 0;
        for state in states {
            if !matches!(state, OutboxState::Failed | OutboxState::Dead) {
                continue;
            }
            let mut st = self
                .conn
                .prepare_cached(
                    "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?1 \
                     WHERE state = ?2 AND (?3 IS NULL OR channel_id = ?3) \
                     AND (?4 IS NULL OR json_extract(payload_json, '$.org_id') = ?4)",
                )
                .map_err(|e| self.err(e))?;
            n += st
                .execute(params![
                    now,
                    state.as_str(),
                    filter.channel_id.as_ref().map(ToString::to_string),
                    filter.org_id,
                ])
                .map_err(|e| self.err(e))?;
        }
        Ok(n)
    }

    /// Deletes rows in `state` (`delivered`, `failed` or `dead`; never one still to be sent)
    /// created before `before`. The ledger stays: it is what prevents re-firing.
    pub fn purge_state(&self, state: OutboxState, before: UnixMs) -> Result<usize> {
        if !matches!(
            state,
            OutboxState::Delivered | OutboxState::Failed | OutboxState::Dead
        ) {
            return Ok(0);
        }
        let mut st = self
            .conn
            .prepare_cached("DELETE FROM outbox WHERE state = ?1 AND created_at < ?2")
            .map_err(|e| self.err(e))?;
        st.execute(params![state.as_str(), before])
            .map_err(|e| self.err(e))
    }

    /// Rows for the Notifications view, newest first.
    pub fn list_outbox(&self, filter: &OutboxFilter, limit: usize) -> Result<Vec<OutboxRow>> {
        // Fixed SQL per filter shape (NULL = any), so the statement cache works.
        let sql = format!(
            "SELECT {ROW_COLUMNS} FROM outbox WHERE (?1 IS NULL OR state = ?1) \
             AND (?2 IS NULL OR channel_id = ?2) AND (?3 IS NULL OR quota_key = ?3) \
             AND (?5 IS NULL OR json_extract(payload_json, '$.org_id') = ?5) \
             AND (?6 IS NULL OR created_at >= ?6) AND (?7 IS NULL OR created_at < ?7) \
             AND (?8 IS NULL OR sequence < ?8 OR (sequence = ?8 AND idem_key > ?9)) \
             ORDER BY sequence DESC, idem_key LIMIT ?4"
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = st
            .query_and_then(
                params![
                    filter.state.map(OutboxState::as_str),
                    filter.channel_id.as_ref().map(ToString::to_string),
                    filter.quota_key,
                    clamp_limit(limit),
                    filter.org_id,
                    filter.created_after,
                    filter.created_before,
                    filter.after.as_ref().map(|a| a.0),
                    filter.after.as_ref().map(|a| a.1.as_str()),
                ],
                read_row,
            )
            .map_err(|e| self.err(e))?;
        rows.map(|r| r.map_err(|e| self.err(e))).collect()
    }

    /// One row by its idempotency key.
    pub fn get(&self, idem_key: &str) -> Result<Option<OutboxRow>> {
        let sql = format!("SELECT {ROW_COLUMNS} FROM outbox WHERE idem_key = ?1");
        let mut st = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let mut rows = st
            .query_and_then([idem_key], read_row)
            .map_err(|e| self.err(e))?;
        rows.next().transpose().map_err(|e| self.err(e))
    }

    pub fn record_sent(&self, idem_key: &str, at: UnixMs, text: &str) -> Result<bool> {
        self.update(
            "UPDATE outbox SET sent_request = ?2, sent_at = ?3 WHERE idem_key = ?1",
            params![idem_key, text, at],
        )
    }

    pub fn sent_request(&self, idem_key: &str) -> Result<Option<(UnixMs, String)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT sent_at, sent_request FROM outbox \
                 WHERE idem_key = ?1 AND sent_request IS NOT NULL",
            )
            .map_err(|e| self.err(e))?;
        let mut rows = st
            .query_map([idem_key], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(|e| self.err(e))?;
        rows.next().transpose().map_err(|e| self.err(e))
    }

    pub fn scrub_keys(&self, state: OutboxState, before: UnixMs) -> Result<usize> {
        let mut st = self
            .conn
            .prepare_cached(
                "UPDATE outbox SET payload_json = json_remove(payload_json, '$.key') \
                 WHERE kind = 'tyk_webhook' AND state = ?1 AND created_at < ?2 \
                 AND json_extract(payload_json, '$.key') IS NOT NULL",
            )
            .map_err(|e| self.err(e))?;
        st.execute(params![state.as_str(), before])
            .map_err(|e| self.err(e))
    }

    pub fn purge_ledger(&self, before_period: i64) -> Result<usize> {
        let mut st = self
            .conn
            .prepare_cached(
                "DELETE FROM ledger WHERE period < ?1 AND (quota_key, period, threshold) NOT IN \
                 (SELECT quota_key, period, threshold FROM outbox \
                  WHERE source = 'crossing' AND period < ?1)",
            )
            .map_err(|e| self.err(e))?;
        st.execute([before_period]).map_err(|e| self.err(e))
    }

    /// Deletes delivered rows delivered before `before` (retention of the "what was sent"
    /// view). The ledger stays: it is what prevents re-firing.
    pub fn purge_delivered(&self, before: UnixMs) -> Result<usize> {
        let mut st = self
            .conn
            .prepare_cached("DELETE FROM outbox WHERE state = 'delivered' AND delivered_at < ?1")
            .map_err(|e| self.err(e))?;
        st.execute([before]).map_err(|e| self.err(e))
    }

    pub fn counts(&self) -> Result<OutboxCounts> {
        let mut st = self
            .conn
            .prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")
            .map_err(|e| self.err(e))?;
        let mut counts = OutboxCounts::default();
        let rows = st
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .map_err(|e| self.err(e))?;
        for row in rows {
            let (state, n) = row.map_err(|e| self.err(e))?;
            let n = u64::try_from(n).unwrap_or(0);
            match OutboxState::parse(&state) {
                Some(OutboxState::Pending) => counts.pending = n,
                Some(OutboxState::Inflight) => counts.inflight = n,
                Some(OutboxState::Delivered) => counts.delivered = n,
                Some(OutboxState::Failed) => counts.failed = n,
                Some(OutboxState::Dead) => counts.dead = n,
                None => {}
            }
        }
        Ok(counts)
    }

    /// Rows by channel and state (what `/metrics` shows as the outbox depth). Delivered rows
    /// are counted too: retention bounds them.
    pub fn counts_by_channel(&self) -> Result<Vec<(String, OutboxState, u64)>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT channel_id, state, count(*) FROM outbox GROUP BY channel_id, state \
                 ORDER BY channel_id, state",
            )
            .map_err(|e| self.err(e))?;
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (channel, state, n) = row.map_err(|e| self.err(e))?;
            if let Some(state) = OutboxState::parse(&state) {
                out.push((channel, state, u64::try_from(n).unwrap_or(0)));
            }
        }
        Ok(out)
    }

    /// Whether a write transaction can be started now (within the busy timeout): what
    /// `/readyz` means by the store being writable. Nothing is written.
    pub fn check_writable(&self) -> Result<()> {
        self.conn
            .execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
            .map_err(|e| self.err(e))
    }
}

/// Reads an outbox row; a channel, kind, state or source this build does not know is a
/// corrupt file.
pub(super) fn read_row(r: &Row<'_>) -> rusqlite::Result<OutboxRow> {
    let bad = |col: usize, what: &str, v: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            col,
            rusqlite::types::Type::Text,
            format!("unknown outbox {what} {v:?}").into(),
        )
    };
    let channel: String = r.get(1)?;
    let channel_id: ChannelId = channel.parse().map_err(|_| bad(1, "channel", &channel))?;
    let kind: String = r.get(2)?;
    if kind != channel_id.kind().as_str() {
        return Err(bad(2, "kind", &kind));
    }
    let state: String = r.get(4)?;
    let source: String = r.get(11)?;
    let source = match source.as_str() {
        "crossing" => Source::Crossing {
            quota_key: r.get(12)?,
            period: r.get(13)?,
            threshold: r.get(14)?,
        },
        "event" => Source::Event {
            event_id: r.get(15)?,
        },
        other => return Err(bad(11, "source", other)),
    };
    Ok(OutboxRow {
        idem_key: r.get(0)?,
        channel_id,
        payload_json: r.get(3)?,
        state: OutboxState::parse(&state).ok_or_else(|| bad(4, "state", &state))?,
        attempts: r.get(5)?,
        next_attempt_at: r.get(6)?,
        last_status: r.get(7)?,
        last_error: r.get(8)?,
        created_at: r.get(9)?,
        delivered_at: r.get(10)?,
        source,
        sequence: r.get(16)?,
    })
}
