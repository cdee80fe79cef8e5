//! Claims, outcomes and heartbeats on SQLite (see `crate::store::claims`). One instance owns a
//! file (the data-dir lock), so the lease only matters to a console reading beside it; the
//! same rules hold as on PostgreSQL so both engines pass the same tests.

use std::collections::HashMap;

use rusqlite::{TransactionBehavior, params};

use super::outbox::{ROW_COLUMNS, read_row};
use super::{Result, Sqlite, StoreError, clamp_limit};
use crate::clock::UnixMs;
use crate::outbox::OutboxState;
use crate::store::claims::random_u64;
use crate::store::{ClaimRequest, Claimed, Instance, Settle, Settlement};

impl Sqlite {
    pub fn claim(&mut self, now: UnixMs, req: &ClaimRequest<'_>) -> Result<Claimed> {
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let token = (random_u64() >> 1) as i64;
        let cap = req.per_channel.max(1);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let mut rows = Vec::new();
        {
            let mut held: HashMap<String, usize> = HashMap::new();
            let mut st = tx
                .prepare_cached(
                    "SELECT channel_id, count(*) FROM outbox WHERE state = 'inflight' \
                     AND claimed_until > ?1 GROUP BY channel_id",
                )
                .map_err(err)?;
            let counts = st
                .query_map([now], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(err)?;
            for c in counts {
                let (channel, n) = c.map_err(err)?;
                held.insert(channel, usize::try_from(n).unwrap_or(0));
            }
            let until = now.saturating_add(req.lease_ms);
            let mut up = tx
                .prepare_cached(
                    "UPDATE outbox SET state = 'inflight', claimed_by = ?2, claimed_until = ?3, \
                     claim_token = ?4 WHERE idem_key = ?1",
                )
                .map_err(err)?;
            // Rows whose holder's lease passed come first: they have waited longest. Each
            // round leaves out the channels at their cap, so a busy channel's backlog is never
            // scanned; claimed rows are marked at once, so the next round reads past them.
            for state in ["claimed_until <= ?", "next_attempt_at <= ?"] {
                let from = if state.starts_with("claimed") {
                    "state = 'inflight'"
                } else {
                    "state = 'pending'"
                };
                for _ in 0..8 {
                    let want = req.room.saturating_sub(rows.len());
                    if want == 0 {
                        break;
                    }
                    let full: Vec<&String> = held
                        .iter()
                        .filter(|(_, n)| **n >= cap)
                        .map(|(c, _)| c)
                        .collect();
                    let marks = vec!["?"; full.len()].join(", ");
                    let sql = format!(
                        "SELECT {ROW_COLUMNS} FROM outbox WHERE {from} AND {state} \
                         AND channel_id NOT IN ({marks}) ORDER BY next_attempt_at, sequence LIMIT ?"
                    );
                    let mut values: Vec<rusqlite::types::Value> = vec![now.into()];
                    values.extend(full.iter().map(|c| (*c).clone().into()));
                    values.push(clamp_limit(want).into());
                    let mut st = tx.prepare(&sql).map_err(err)?;
                    let found = st
                        .query_and_then(rusqlite::params_from_iter(values), read_row)
                        .map_err(err)?
                        .collect::<rusqlite::Result<Vec<_>>>()
                        .map_err(err)?;
                    let exhausted = found.len() < want;
                    let mut skipped = false;
                    for mut r in found {
                        let n = held.entry(r.channel_id.to_string()).or_insert(0);
                        if *n >= cap {
                            skipped = true;
                            continue;
                        }
                        *n += 1;
                        up.execute(params![r.idem_key, req.instance, until, token])
                            .map_err(err)?;
                        r.state = OutboxState::Inflight;
                        rows.push(r);
                    }
                    if exhausted || !skipped {
                        break;
                    }
                }
            }
        }
        tx.commit().map_err(err)?;
        Ok(Claimed { token, rows })
    }

    pub fn settle_all(&self, batch: &[Settlement<'_>]) -> Result<Vec<bool>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        self.transaction(|| {
            batch
                .iter()
                .map(|b| {
                    let written = self.settle(b.idem_key, b.token, &b.outcome)?;
                    if let (true, Some((at, text))) = (written, b.sent) {
                        self.record_sent(b.idem_key, at, text)?;
                    }
                    Ok(written)
                })
                .collect()
        })
    }

    pub fn settle(&self, idem_key: &str, token: Option<i64>, outcome: &Settle<'_>) -> Result<bool> {
        const HELD: &str = "claimed_by = NULL, claimed_until = NULL, claim_token = NULL \
             WHERE idem_key = ?1 AND state IN ('pending', 'inflight') \
             AND (?2 IS NULL OR claim_token = ?2)";
        // A delivered `tyk` row never needs its raw key again.
        const SCRUB: &str = "payload_json = CASE WHEN kind = 'tyk_webhook' \
             THEN json_remove(payload_json, '$.key') ELSE payload_json END";
        match *outcome {
            Settle::Delivered { status, at } => self.update(
                &format!(
                    "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, \
                     last_status = ?3, last_error = NULL, delivered_at = ?4, {SCRUB}, {HELD}"
                ),
                params![idem_key, token, status, at],
            ),
            Settle::Retry {
                attempts,
                next_at,
                status,
                error,
            } => self.update(
                &format!(
                    "UPDATE outbox SET state = 'pending', attempts = ?3, next_attempt_at = ?4, \
                     last_status = ?5, last_error = ?6, {HELD}"
                ),
                params![idem_key, token, attempts, next_at, status, error],
            ),
            Settle::Failed {
                attempts,
                status,
                reason,
            } => self.finish(
                idem_key,
                token,
                OutboxState::Failed,
                attempts,
                status,
                reason,
            ),
            Settle::Dead {
                attempts,
                status,
                reason,
            } => self.finish(idem_key, token, OutboxState::Dead, attempts, status, reason),
        }
    }

    fn finish(
        &self,
        idem_key: &str,
        token: Option<i64>,
        state: OutboxState,
        attempts: u32,
        status: Option<u16>,
        reason: &str,
    ) -> Result<bool> {
        self.update(
            "UPDATE outbox SET state = ?3, attempts = ?4, last_status = ?5, last_error = ?6, \
             claimed_by = NULL, claimed_until = NULL, claim_token = NULL \
             WHERE idem_key = ?1 AND state IN ('pending', 'inflight') \
             AND (?2 IS NULL OR claim_token = ?2)",
            params![idem_key, token, state.as_str(), attempts, status, reason],
        )
    }

    pub fn renew_claims(&self, instance: &str, until: UnixMs) -> Result<usize> {
        let mut st = self
            .conn
            .prepare_cached(
                "UPDATE outbox SET claimed_until = ?2 WHERE state = 'inflight' AND claimed_by = ?1",
            )
            .map_err(|e| self.err(e))?;
        st.execute(params![instance, until])
            .map_err(|e| self.err(e))
    }

    pub fn release_claims(&self, instance: &str) -> Result<usize> {
        let mut st = self
            .conn
            .prepare_cached(
                "UPDATE outbox SET state = 'pending', claimed_by = NULL, claimed_until = NULL, \
                 claim_token = NULL WHERE state = 'inflight' AND claimed_by = ?1",
            )
            .map_err(|e| self.err(e))?;
        st.execute([instance]).map_err(|e| self.err(e))
    }

    pub fn heartbeat(&self, me: &Instance) -> Result<()> {
        self.update(
            "INSERT INTO instances (id, host, pid, version, config_hash, started_at, seen_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (id) DO UPDATE SET seen_at = ?7, config_hash = ?5",
            params![
                me.id,
                me.host,
                me.pid,
                me.version,
                me.config_hash,
                me.started_at,
                me.seen_at
            ],
        )
        .map(drop)
    }

    pub fn instances(&self, since: UnixMs) -> Result<Vec<Instance>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT id, host, pid, version, config_hash, started_at, seen_at FROM instances \
                 WHERE seen_at >= ?1 ORDER BY started_at, id",
            )
            .map_err(|e| self.err(e))?;
        st.query_map([since], |r| {
            Ok(Instance {
                id: r.get(0)?,
                host: r.get(1)?,
                pid: r.get(2)?,
                version: r.get(3)?,
                config_hash: r.get(4)?,
                started_at: r.get(5)?,
                seen_at: r.get(6)?,
            })
        })
        .map_err(|e| self.err(e))?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| self.err(e))
    }

    pub fn leave(&self, id: &str) -> Result<()> {
        self.update("DELETE FROM instances WHERE id = ?1", [id])
            .map(drop)
    }
}
