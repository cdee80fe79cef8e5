//! Received events and 410-disabled channels on PostgreSQL (both shared by every instance).

use postgres::Row;

use super::Postgres;
use super::outbox::{col, count};
use crate::clock::UnixMs;
use crate::outbox::{ChannelId, DisabledChannel};
use crate::store::{EventRow, NewEvent, Result, StoreError, clamp_limit};

const EVENT_COLUMNS: &str =
    "id, received_at, kind, event, org_id, summary, masked_key, payload_json";

fn read_event(r: &Row) -> std::result::Result<EventRow, String> {
    Ok(EventRow {
        id: col(r, 0)?,
        received_at: col(r, 1)?,
        kind: col(r, 2)?,
        event: col(r, 3)?,
        org_id: col(r, 4)?,
        summary: col(r, 5)?,
        masked_key: col(r, 6)?,
        payload_json: col(r, 7)?,
    })
}

impl Postgres {
    pub fn mark_events_routed(&self, ids: &[i64], now: UnixMs) -> Result<()> {
        let ids = ids.to_vec();
        self.call(move |c| {
            c.exec(
                "UPDATE events SET routed_at = $2 WHERE id = ANY($1) AND routed_at IS NULL",
                &[&ids, &now],
            )
            .map(drop)
        })
    }

    pub fn unrouted_events(&self, since: UnixMs, limit: usize) -> Result<Vec<EventRow>> {
        self.call(move |c| {
            c.select(
                &format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE routed_at IS NULL \
                     AND received_at >= $1 AND kind <> 'quota_trigger' ORDER BY id LIMIT $2"
                ),
                &[&since, &clamp_limit(limit)],
                read_event,
            )
        })
    }

    pub fn insert_event(&mut self, event: &NewEvent) -> Result<i64> {
        let ids = self.insert_events(std::slice::from_ref(event))?;
        ids.first()
            .copied()
            .ok_or_else(|| StoreError::Invalid("the event insert returned no id".to_owned()))
    }

    /// One statement for the batch; ids come back in input order (`WITH ORDINALITY`).
    pub fn insert_events(&mut self, events: &[NewEvent]) -> Result<Vec<i64>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let pick = |f: fn(&NewEvent) -> String| events.iter().map(f).collect::<Vec<_>>();
        let received: Vec<i64> = events.iter().map(|e| e.received_at).collect();
        let kind = pick(|e| e.kind.clone());
        let event = pick(|e| e.event.clone());
        let org = pick(|e| e.org_id.clone());
        let summary = pick(|e| e.summary.clone());
        let masked = pick(|e| e.masked_key.clone());
        let payload = pick(|e| e.payload_json.clone());
        let n = events.len();
        let ids = self.call(move |c| {
            c.atomic(|tx| {
                let rows = tx.query(
                    "WITH v AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], \
                       $4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY \
                       AS v(received_at, kind, event, org_id, summary, masked_key, payload_json, n)) \
                     INSERT INTO events (received_at, kind, event, org_id, summary, masked_key, \
                       payload_json) \
                     SELECT received_at, kind, event, org_id, summary, masked_key, payload_json \
                     FROM v ORDER BY n RETURNING id",
                    &[&received, &kind, &event, &org, &summary, &masked, &payload],
                )?;
                rows.iter().map(|r| r.try_get::<_, i64>(0)).collect::<std::result::Result<Vec<_>, _>>()
            })
        })?;
        if ids.len() != n {
            return Err(StoreError::Invalid(format!(
                "{n} events inserted but {} ids returned",
                ids.len()
            )));
        }
        // Identity values follow insertion order, which follows `ORDER BY n`.
        let mut ids = ids;
        ids.sort_unstable();
        Ok(ids)
    }

    pub fn list_events(&self, limit: usize) -> Result<Vec<EventRow>> {
        self.call(move |c| {
            c.select(
                &format!("SELECT {EVENT_COLUMNS} FROM events ORDER BY id DESC LIMIT $1"),
                &[&clamp_limit(limit)],
                read_event,
            )
        })
    }

    pub fn count_events(&self) -> Result<u64> {
        self.call(|c| {
            c.select("SELECT count(*) FROM events", &[], |r| col::<i64>(r, 0))
                .map(|v| v.first().map_or(0, |n| u64::try_from(*n).unwrap_or(0)))
        })
    }

    pub fn purge_events(&self, before: UnixMs) -> Result<usize> {
        self.call(move |c| {
            c.exec("DELETE FROM events WHERE received_at < $1", &[&before])
                .map(count)
        })
    }

    pub fn disable_channel(
        &mut self,
        channel_id: &ChannelId,
        reason: &str,
        now: UnixMs,
    ) -> Result<usize> {
        let (channel, reason) = (channel_id.to_string(), reason.to_owned());
        self.call(move |c| {
            c.atomic(|tx| {
                tx.execute(
                    "INSERT INTO channels (channel_id, disabled_at, disabled_reason) \
                     VALUES ($1, $2, $3) ON CONFLICT (channel_id) \
                     DO UPDATE SET disabled_at = $2, disabled_reason = $3",
                    &[&channel, &now, &reason],
                )?;
                tx.execute(
                    "UPDATE outbox SET state = 'failed', last_error = $2 \
                     WHERE channel_id = $1 AND state = 'pending'",
                    &[&channel, &format!("channel disabled: {reason}")],
                )
            })
            .map(count)
        })
    }

    pub fn enable_channel(&self, channel_id: &ChannelId) -> Result<bool> {
        let channel = channel_id.to_string();
        self.call(move |c| {
            c.exec(
                "UPDATE channels SET disabled_at = NULL, disabled_reason = NULL \
                 WHERE channel_id = $1 AND disabled_at IS NOT NULL",
                &[&channel],
            )
            .map(|n| n > 0)
        })
    }

    pub fn disabled_channels(&self) -> Result<Vec<DisabledChannel>> {
        self.call(|c| {
            c.select(
                "SELECT channel_id, disabled_at, coalesce(disabled_reason, '') FROM channels \
                 WHERE disabled_at IS NOT NULL ORDER BY channel_id",
                &[],
                |r| {
                    let channel: String = col(r, 0)?;
                    Ok(DisabledChannel {
                        channel_id: channel
                            .parse()
                            .map_err(|e: crate::outbox::UnknownChannel| e.to_string())?,
                        disabled_at: col::<Option<i64>>(r, 1)?.unwrap_or(0),
                        reason: col(r, 2)?,
                    })
                },
            )
        })
    }
}
