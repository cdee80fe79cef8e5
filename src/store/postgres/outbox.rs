//! The outbox table on PostgreSQL: queueing, listing, resends, retention, counts.

use postgres::Row;
use postgres::types::ToSql;

use super::{Conn, Postgres};
use crate::clock::UnixMs;
use crate::outbox::{ChannelId, OutboxCounts, OutboxFilter, OutboxRow, OutboxState, Source};
use crate::store::{Result, StoreError, clamp_limit};

pub(super) const ROW_COLUMNS: &str = "idem_key, channel_id, kind, payload_json, state, attempts, \
     next_attempt_at, last_status, last_error, created_at, delivered_at, source, quota_key, \
     period, threshold, event_id, sequence";

pub(super) type Params<'a> = [&'a (dyn ToSql + Sync)];

impl Conn {
    /// Runs a statement outside any transaction of the caller's; returns the rows changed.
    pub(super) fn exec(&mut self, sql: &str, params: &Params<'_>) -> Result<u64> {
        let client = self.client()?;
        let r = client.execute(sql, params);
        r.map_err(|e| self.err(e))
    }

    /// Runs a query and reads each row with `read`.
    pub(super) fn select<T>(
        &mut self,
        sql: &str,
        params: &Params<'_>,
        read: impl Fn(&Row) -> std::result::Result<T, String>,
    ) -> Result<Vec<T>> {
        let client = self.client()?;
        let rows = client.query(sql, params);
        let rows = rows.map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| read(r).map_err(|e| self.unreadable(e)))
            .collect()
    }

    /// A row this build cannot read (a newer build's value, or a hand edit).
    pub(super) fn unreadable(&self, detail: String) -> StoreError {
        StoreError::Server {
            target: self.target.shown.clone(),
            detail: format!("unreadable row: {detail}"),
            hint: "a newer tykwatch may have written it; run the same version on every instance"
                .into(),
        }
    }
}

/// A column, or what is wrong with it.
pub(super) fn col<'a, T: postgres::types::FromSql<'a>>(
    r: &'a Row,
    i: usize,
) -> std::result::Result<T, String> {
    r.try_get(i).map_err(|e| format!("column {i}: {e}"))
}

/// Reads an outbox row (columns as [`ROW_COLUMNS`]).
pub(super) fn read_row(r: &Row) -> std::result::Result<OutboxRow, String> {
    let channel: String = col(r, 1)?;
    let channel_id: ChannelId = channel
        .parse()
        .map_err(|_| format!("unknown outbox channel {channel:?}"))?;
    let kind: String = col(r, 2)?;
    if kind != channel_id.kind().as_str() {
        return Err(format!("unknown outbox kind {kind:?}"));
    }
    let state: String = col(r, 4)?;
    let source: String = col(r, 11)?;
    let source = match source.as_str() {
        "crossing" => Source::Crossing {
            quota_key: col::<Option<String>>(r, 12)?.ok_or("crossing without quota_key")?,
            period: col::<Option<i64>>(r, 13)?.ok_or("crossing without period")?,
            threshold: col::<Option<f64>>(r, 14)?.ok_or("crossing without threshold")?,
        },
        "event" => Source::Event {
            event_id: col::<Option<i64>>(r, 15)?.ok_or("event row without event_id")?,
        },
        other => return Err(format!("unknown outbox source {other:?}")),
    };
    let attempts: i32 = col(r, 5)?;
    let status: Option<i32> = col(r, 7)?;
    Ok(OutboxRow {
        idem_key: col(r, 0)?,
        channel_id,
        payload_json: col(r, 3)?,
        state: OutboxState::parse(&state).ok_or_else(|| format!("unknown state {state:?}"))?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_at: col(r, 6)?,
        last_status: status.and_then(|s| u16::try_from(s).ok()),
        last_error: col(r, 8)?,
        created_at: col(r, 9)?,
        delivered_at: col(r, 10)?,
        source,
        sequence: col(r, 16)?,
    })
}

/// The values of one outbox row for [`INSERT_OUTBOX`], owned (a job runs on another thread).
pub(super) struct RowValues {
    pub idem_key: String,
    pub channel: String,
    pub kind: &'static str,
    pub payload: String,
    pub state: &'static str,
    pub next_attempt_at: i64,
    pub error: Option<String>,
    pub created_at: i64,
    pub source: &'static str,
    pub quota_key: Option<String>,
    pub period: Option<i64>,
    pub threshold: Option<f64>,
    pub event_id: Option<i64>,
    pub sequence: i64,
}

impl RowValues {
    /// `r` as queued: in `queued` state, or failed when its channel is disabled.
    pub(super) fn new(
        r: &OutboxRow,
        queued: (OutboxState, Option<String>),
        sequence: i64,
    ) -> RowValues {
        let (quota_key, period, threshold, event_id) = match &r.source {
            Source::Crossing {
                quota_key,
                period,
                threshold,
            } => (
                Some(quota_key.clone()),
                Some(*period),
                Some(*threshold),
                None,
            ),
            Source::Event { event_id } => (None, None, None, Some(*event_id)),
        };
        RowValues {
            idem_key: r.idem_key.clone(),
            channel: r.channel_id.to_string(),
            kind: r.kind().as_str(),
            payload: r.payload_json.clone(),
            state: queued.0.as_str(),
            next_attempt_at: r.next_attempt_at,
            error: queued.1,
            created_at: r.created_at,
            source: r.source.as_str(),
            quota_key,
            period,
            threshold,
            event_id,
            sequence,
        }
    }
}

/// Inserts `rows` in one statement, skipping idempotency keys that exist; rows of a channel
/// disabled by a 410 (read in the same statement) go in `failed`. Returns how many were new.
pub(super) fn insert_rows(
    tx: &mut postgres::Transaction<'_>,
    rows: &[RowValues],
) -> std::result::Result<u64, postgres::Error> {
    if rows.is_empty() {
        return Ok(0);
    }
    fn pick<T: Clone>(rows: &[RowValues], f: impl Fn(&RowValues) -> T) -> Vec<T> {
        rows.iter().map(f).collect()
    }
    tx.execute(
        "INSERT INTO outbox (idem_key, channel_id, kind, payload_json, state, attempts, \
         next_attempt_at, last_error, created_at, source, quota_key, period, threshold, \
         event_id, sequence) \
         SELECT v.idem_key, v.channel_id, v.kind, v.payload, \
           CASE WHEN c.channel_id IS NULL THEN v.state ELSE 'failed' END, 0, v.next_at, \
           CASE WHEN c.channel_id IS NULL THEN v.error \
                ELSE 'channel disabled: ' || coalesce(c.disabled_reason, '') END, \
           v.created_at, v.source, v.quota_key, v.period, v.threshold, v.event_id, v.sequence \
         FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], \
           $7::text[], $8::bigint[], $9::text[], $10::text[], $11::bigint[], $12::float8[], \
           $13::bigint[], $14::bigint[]) \
           AS v(idem_key, channel_id, kind, payload, state, next_at, error, created_at, source, \
                quota_key, period, threshold, event_id, sequence) \
         LEFT JOIN channels c ON c.channel_id = v.channel_id AND c.disabled_at IS NOT NULL \
         ORDER BY v.idem_key \
         ON CONFLICT (idem_key) DO NOTHING",
        &[
            &pick(rows, |r| r.idem_key.clone()),
            &pick(rows, |r| r.channel.clone()),
            &pick(rows, |r| r.kind),
            &pick(rows, |r| r.payload.clone()),
            &pick(rows, |r| r.state),
            &pick(rows, |r| r.next_attempt_at),
            &pick(rows, |r| r.error.clone()),
            &pick(rows, |r| r.created_at),
            &pick(rows, |r| r.source),
            &pick(rows, |r| r.quota_key.clone()),
            &pick(rows, |r| r.period),
            &pick(rows, |r| r.threshold),
            &pick(rows, |r| r.event_id),
            &pick(rows, |r| r.sequence),
        ],
    )
}

impl Postgres {
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
        let values: Vec<(Option<i64>, RowValues)> = rows
            .iter()
            .map(|r| {
                let event = match r.source {
                    Source::Event { event_id } => Some(event_id),
                    Source::Crossing { .. } => None,
                };
                (event, RowValues::new(r, (r.state, r.last_error.clone()), 0))
            })
            .collect();
        self.call(move |c| {
            c.atomic(|tx| {
                let sequence: i64 = tx
                    .query_opt("SELECT value FROM meta WHERE name = 'last_sequence'", &[])?
                    .map(|r| r.try_get(0))
                    .transpose()?
                    .unwrap_or(0);
                let (ids, ats): (Vec<i64>, Vec<i64>) = values
                    .iter()
                    .filter_map(|(event, v)| event.map(|id| (id, v.created_at)))
                    .unzip();
                tx.execute(
                    "UPDATE events SET routed_at = v.at \
                     FROM unnest($1::bigint[], $2::bigint[]) AS v(id, at) \
                     WHERE events.id = v.id AND events.routed_at IS NULL",
                    &[&ids, &ats],
                )?;
                let rows: Vec<RowValues> = values
                    .into_iter()
                    .map(|(_, mut v)| {
                        v.sequence = sequence;
                        v
                    })
                    .collect();
                Ok(count(insert_rows(tx, &rows)?))
            })
        })
    }

    pub fn due(&self, now: UnixMs, limit: usize) -> Result<Vec<OutboxRow>> {
        self.due_except(now, limit, &[])
    }

    pub fn due_except(
        &self,
        now: UnixMs,
        limit: usize,
        except: &[ChannelId],
    ) -> Result<Vec<OutboxRow>> {
        let except: Vec<String> = except.iter().map(ToString::to_string).collect();
        self.call(move |c| {
            c.select(
                &format!(
                    "SELECT {ROW_COLUMNS} FROM outbox WHERE state = 'pending' \
                     AND next_attempt_at <= $1 AND channel_id <> ALL($2) \
                     ORDER BY next_attempt_at, sequence LIMIT $3"
                ),
                &[&now, &except, &clamp_limit(limit)],
                read_row,
            )
        })
    }

    pub fn claim_due(&mut self, now: UnixMs, limit: usize) -> Result<Vec<OutboxRow>> {
        self.call(move |c| {
            let rows = c.atomic(|tx| {
                tx.query(
                    &format!(
                        "UPDATE outbox SET state = 'inflight' WHERE idem_key IN ( \
                         SELECT idem_key FROM outbox WHERE state = 'pending' \
                         AND next_attempt_at <= $1 ORDER BY next_attempt_at, sequence LIMIT $2 \
                         FOR UPDATE SKIP LOCKED) RETURNING {ROW_COLUMNS}"
                    ),
                    &[&now, &clamp_limit(limit)],
                )
            })?;
            let mut out = rows
                .iter()
                .map(|r| read_row(r).map_err(|e| c.unreadable(e)))
                .collect::<Result<Vec<_>>>()?;
            out.sort_by(|a, b| {
                (a.next_attempt_at, a.sequence).cmp(&(b.next_attempt_at, b.sequence))
            });
            Ok(out)
        })
    }

    pub fn mark_inflight(&self, idem_key: &str) -> Result<bool> {
        let key = idem_key.to_owned();
        self.call(move |c| {
            c.exec(
                "UPDATE outbox SET state = 'inflight' WHERE idem_key = $1 AND state = 'pending'",
                &[&key],
            )
            .map(|n| n > 0)
        })
    }

    pub fn recover_inflight(&self) -> Result<usize> {
        // Leased rows belong to instances that may still be running: they come back when
        // their lease passes (claim), not here.
        self.call(|c| {
            c.exec(
                "UPDATE outbox SET state = 'pending' WHERE state = 'inflight' \
                 AND claimed_until IS NULL",
                &[],
            )
            .map(count)
        })
    }

    pub fn resend(&self, idem_key: &str, now: UnixMs) -> Result<bool> {
        let key = idem_key.to_owned();
        self.call(move |c| {
            c.exec(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $2 \
                 WHERE idem_key = $1 AND state IN ('failed', 'dead')",
                &[&key, &now],
            )
            .map(|n| n > 0)
        })
    }

    pub fn resend_matching(
        &self,
        states: &[OutboxState],
        filter: &OutboxFilter,
        now: UnixMs,
    ) -> Result<usize> {
        let states: Vec<&'static str> = states
            .iter()
            .filter(|s| matches!(s, OutboxState::Failed | OutboxState::Dead))
            .map(|s| s.as_str())
            .collect();
        let channel = filter.channel_id.as_ref().map(ToString::to_string);
        let org = filter.org_id.clone();
        self.call(move |c| {
            c.exec(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $1 \
                 WHERE state = ANY($2) AND ($3::text IS NULL OR channel_id = $3) \
                 AND ($4::text IS NULL OR payload_json::jsonb ->> 'org_id' = $4)",
                &[&now, &states, &channel, &org],
            )
            .map(count)
        })
    }

    pub fn purge_state(&self, state: OutboxState, before: UnixMs) -> Result<usize> {
        if !matches!(
            state,
            OutboxState::Delivered | OutboxState::Failed | OutboxState::Dead
        ) {
            return Ok(0);
        }
        self.call(move |c| {
            c.exec(
                "DELETE FROM outbox WHERE state = $1 AND created_at < $2",
                &[&state.as_str(), &before],
            )
            .map(count)
        })
    }

    pub fn list_outbox(&self, filter: &OutboxFilter, limit: usize) -> Result<Vec<OutboxRow>> {
        let state = filter.state.map(OutboxState::as_str);
        let channel = filter.channel_id.as_ref().map(ToString::to_string);
        let quota = filter.quota_key.clone();
        let org = filter.org_id.clone();
        let (after, before) = (filter.created_after, filter.created_before);
        let (after_seq, after_key) = match &filter.after {
            Some((seq, key)) => (Some(*seq), Some(key.clone())),
            None => (None, None),
        };
        self.call(move |c| {
            c.select(
                &format!(
                    "SELECT {ROW_COLUMNS} FROM outbox WHERE ($1::text IS NULL OR state = $1) \
                     AND ($2::text IS NULL OR channel_id = $2) \
                     AND ($3::text IS NULL OR quota_key = $3) \
                     AND ($5::text IS NULL OR payload_json::jsonb ->> 'org_id' = $5) \
                     AND ($6::bigint IS NULL OR created_at >= $6) \
                     AND ($7::bigint IS NULL OR created_at < $7) \
                     AND ($8::bigint IS NULL OR sequence < $8 \
                       OR (sequence = $8 AND idem_key > $9::text)) \
                     ORDER BY sequence DESC, idem_key LIMIT $4"
                ),
                &[
                    &state,
                    &channel,
                    &quota,
                    &clamp_limit(limit),
                    &org,
                    &after,
                    &before,
                    &after_seq,
                    &after_key,
                ],
                read_row,
            )
        })
    }

    pub fn get(&self, idem_key: &str) -> Result<Option<OutboxRow>> {
        let key = idem_key.to_owned();
        self.call(move |c| {
            c.select(
                &format!("SELECT {ROW_COLUMNS} FROM outbox WHERE idem_key = $1"),
                &[&key],
                read_row,
            )
            .map(|v| v.into_iter().next())
        })
    }

    pub fn record_sent(&self, idem_key: &str, at: UnixMs, text: &str) -> Result<bool> {
        let (key, text) = (idem_key.to_owned(), text.to_owned());
        self.call(move |c| {
            c.exec(
                "UPDATE outbox SET sent_request = $2, sent_at = $3 WHERE idem_key = $1",
                &[&key, &text, &at],
            )
            .map(|n| n > 0)
        })
    }

    pub fn sent_request(&self, idem_key: &str) -> Result<Option<(UnixMs, String)>> {
        let key = idem_key.to_owned();
        self.call(move |c| {
            c.select(
                "SELECT sent_at, sent_request FROM outbox \
                 WHERE idem_key = $1 AND sent_request IS NOT NULL",
                &[&key],
                |r| Ok((col::<i64>(r, 0)?, col::<String>(r, 1)?)),
            )
            .map(|v| v.into_iter().next())
        })
    }

    pub fn scrub_keys(&self, state: OutboxState, before: UnixMs) -> Result<usize> {
        self.call(move |c| {
            c.exec(
                "UPDATE outbox SET payload_json = (payload_json::jsonb - 'key')::text \
                 WHERE kind = 'tyk_webhook' AND state = $1 AND created_at < $2 \
                 AND jsonb_exists(payload_json::jsonb, 'key')",
                &[&state.as_str(), &before],
            )
            .map(count)
        })
    }

    pub fn purge_ledger(&self, before_period: i64) -> Result<usize> {
        self.call(move |c| {
            c.exec(
                "DELETE FROM ledger l WHERE l.period < $1 AND NOT EXISTS \
                 (SELECT 1 FROM outbox o WHERE o.source = 'crossing' AND o.quota_key = l.quota_key \
                  AND o.period = l.period AND o.threshold = l.threshold)",
                &[&before_period],
            )
            .map(count)
        })
    }

    pub fn purge_delivered(&self, before: UnixMs) -> Result<usize> {
        self.call(move |c| {
            c.exec(
                "DELETE FROM outbox WHERE state = 'delivered' AND delivered_at < $1",
                &[&before],
            )
            .map(count)
        })
    }

    pub fn counts(&self) -> Result<OutboxCounts> {
        let rows = self.counts_by_channel()?;
        let mut counts = OutboxCounts::default();
        for (_, state, n) in rows {
            match state {
                OutboxState::Pending => counts.pending += n,
                OutboxState::Inflight => counts.inflight += n,
                OutboxState::Delivered => counts.delivered += n,
                OutboxState::Failed => counts.failed += n,
                OutboxState::Dead => counts.dead += n,
            }
        }
        Ok(counts)
    }

    pub fn counts_by_channel(&self) -> Result<Vec<(String, OutboxState, u64)>> {
        let rows = self.call(|c| {
            c.select(
                "SELECT channel_id, state, count(*) FROM outbox GROUP BY channel_id, state \
                 ORDER BY channel_id, state",
                &[],
                |r| {
                    Ok((
                        col::<String>(r, 0)?,
                        col::<String>(r, 1)?,
                        col::<i64>(r, 2)?,
                    ))
                },
            )
        })?;
        Ok(rows
            .into_iter()
            .filter_map(|(channel, state, n)| {
                OutboxState::parse(&state).map(|s| (channel, s, u64::try_from(n).unwrap_or(0)))
            })
            .collect())
    }

    pub fn check_writable(&self) -> Result<()> {
        // A write that changes nothing: fails on a read-only replica or a full disk.
        self.call(|c| {
            c.exec(
                "UPDATE meta SET value = value WHERE name = 'last_sequence'",
                &[],
            )
            .map(drop)
        })
    }
}

/// Rows changed, as a count.
pub(super) fn count(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}
