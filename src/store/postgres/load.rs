//! `tykwatch store migrate`: a [`Dump`] copied into an empty PostgreSQL store.

use super::Postgres;
use crate::outbox::{OutboxState, Source};
use crate::store::{Dump, Result, StoreError};

impl Postgres {
    pub fn load(&mut self, dump: Dump) -> Result<()> {
        let target = self.target().to_owned();
        self.call(move |c| {
            let outcome = c.atomic(|tx| {
                let held: i64 = tx
                    .query_one(
                        "SELECT (SELECT count(*) FROM ledger) + (SELECT count(*) FROM outbox) \
                         + (SELECT count(*) FROM events) \
                         + (SELECT count(*) FROM channels WHERE disabled_at IS NOT NULL)",
                        &[],
                    )?
                    .try_get(0)?;
                if held > 0 {
                    return Ok(Err(held));
                }
                let l = &dump.ledger;
                tx.execute(
                    "INSERT INTO ledger (quota_key, period, threshold, state, usage_pct, fired_at) \
                     SELECT * FROM unnest($1::text[], $2::bigint[], $3::float8[], $4::text[], \
                       $5::float8[], $6::bigint[])",
                    &[
                        &l.iter().map(|e| e.quota_key.as_str()).collect::<Vec<_>>(),
                        &l.iter().map(|e| e.period).collect::<Vec<_>>(),
                        &l.iter().map(|e| e.threshold).collect::<Vec<_>>(),
                        &l.iter().map(|e| e.state.as_str()).collect::<Vec<_>>(),
                        &l.iter().map(|e| e.usage_pct).collect::<Vec<_>>(),
                        &l.iter().map(|e| e.fired_at).collect::<Vec<_>>(),
                    ],
                )?;
                let e = &dump.events;
                tx.execute(
                    "INSERT INTO events (id, received_at, kind, event, org_id, summary, \
                       masked_key, payload_json, routed_at) OVERRIDING SYSTEM VALUE \
                     SELECT v.id, v.received_at, v.kind, v.event, v.org_id, v.summary, \
                       v.masked_key, v.payload_json, \
                       CASE WHEN v.id = ANY($9) THEN NULL ELSE v.received_at END \
                     FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], \
                       $6::text[], $7::text[], $8::text[]) \
                       AS v(id, received_at, kind, event, org_id, summary, masked_key, payload_json)",
                    &[
                        &e.iter().map(|r| r.id).collect::<Vec<_>>(),
                        &e.iter().map(|r| r.received_at).collect::<Vec<_>>(),
                        &e.iter().map(|r| r.kind.as_str()).collect::<Vec<_>>(),
                        &e.iter().map(|r| r.event.as_str()).collect::<Vec<_>>(),
                        &e.iter().map(|r| r.org_id.as_str()).collect::<Vec<_>>(),
                        &e.iter().map(|r| r.summary.as_str()).collect::<Vec<_>>(),
                        &e.iter().map(|r| r.masked_key.as_str()).collect::<Vec<_>>(),
                        &e.iter().map(|r| r.payload_json.as_str()).collect::<Vec<_>>(),
                        &dump.unrouted,
                    ],
                )?;
                // New ids continue after the copied ones (never reused).
                tx.execute(
                    "SELECT setval(pg_get_serial_sequence('events', 'id'), \
                       greatest((SELECT max(id) FROM events), 1))",
                    &[],
                )?;
                let o = &dump.outbox;
                fn crossing(
                    r: &crate::outbox::OutboxRow,
                ) -> (Option<&str>, Option<i64>, Option<f64>, Option<i64>) {
                    match &r.source {
                        Source::Crossing {
                            quota_key,
                            period,
                            threshold,
                        } => (Some(quota_key.as_str()), Some(*period), Some(*threshold), None),
                        Source::Event { event_id } => (None, None, None, Some(*event_id)),
                    }
                }
                // A send in flight when the source stopped goes out again (same key).
                let state = |s: OutboxState| match s {
                    OutboxState::Inflight => OutboxState::Pending.as_str(),
                    s => s.as_str(),
                };
                tx.execute(
                    "INSERT INTO outbox (idem_key, channel_id, kind, payload_json, state, \
                       attempts, next_attempt_at, last_status, last_error, created_at, \
                       delivered_at, source, quota_key, period, threshold, event_id, sequence) \
                     SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], \
                       $5::text[], $6::int[], $7::bigint[], $8::int[], $9::text[], $10::bigint[], \
                       $11::bigint[], $12::text[], $13::text[], $14::bigint[], $15::float8[], \
                       $16::bigint[], $17::bigint[])",
                    &[
                        &o.iter().map(|r| r.idem_key.as_str()).collect::<Vec<_>>(),
                        &o.iter().map(|r| r.channel_id.to_string()).collect::<Vec<_>>(),
                        &o.iter().map(|r| r.kind().as_str()).collect::<Vec<_>>(),
                        &o.iter().map(|r| r.payload_json.as_str()).collect::<Vec<_>>(),
                        &o.iter().map(|r| state(r.state)).collect::<Vec<_>>(),
                        &o.iter()
                            .map(|r| i32::try_from(r.attempts).unwrap_or(i32::MAX))
                            .collect::<Vec<_>>(),
                        &o.iter().map(|r| r.next_attempt_at).collect::<Vec<_>>(),
                        &o.iter()
                            .map(|r| r.last_status.map(i32::from))
                            .collect::<Vec<_>>(),
                        &o.iter().map(|r| r.last_error.as_deref()).collect::<Vec<_>>(),
                        &o.iter().map(|r| r.created_at).collect::<Vec<_>>(),
                        &o.iter().map(|r| r.delivered_at).collect::<Vec<_>>(),
                        &o.iter().map(|r| r.source.as_str()).collect::<Vec<_>>(),
                        &o.iter().map(|r| crossing(r).0).collect::<Vec<_>>(),
                        &o.iter().map(|r| crossing(r).1).collect::<Vec<_>>(),
                        &o.iter().map(|r| crossing(r).2).collect::<Vec<_>>(),
                        &o.iter().map(|r| crossing(r).3).collect::<Vec<_>>(),
                        &o.iter().map(|r| r.sequence).collect::<Vec<_>>(),
                    ],
                )?;
                for d in &dump.disabled {
                    tx.execute(
                        "INSERT INTO channels (channel_id, disabled_at, disabled_reason) \
                         VALUES ($1, $2, $3)",
                        &[&d.channel_id.to_string(), &d.disabled_at, &d.reason],
                    )?;
                }
                tx.execute(
                    "UPDATE meta SET value = $1 WHERE name = 'last_sequence'",
                    &[&dump.last_sequence],
                )?;
                Ok(Ok(()))
            })?;
            outcome.map_err(|held| StoreError::Server {
                target: target.clone(),
                detail: format!("the database is not empty ({held} rows in ledger, outbox, events and channels)"),
                hint: "migrate into a new, empty database: rows already there would be duplicated or lost".into(),
            })
        })
    }
}
