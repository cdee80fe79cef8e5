//! Claims with leases, outcomes and heartbeats on PostgreSQL (see `crate::store::claims`).

use super::Postgres;
use super::outbox::{ROW_COLUMNS, col, count, read_row};
use crate::clock::UnixMs;
use crate::outbox::OutboxState;
use crate::store::claims::random_u64;
use crate::store::{ClaimRequest, Claimed, Instance, Result, Settle, Settlement, clamp_limit};

/// `pg_advisory_xact_lock` key of claiming ("TYKW" + 2): claims run one at a time, so each
/// counts the others' live claims and per-channel caps hold across instances.
const CLAIM_LOCK: i64 = 0x5459_4B57_0002;

impl Postgres {
    /// One transaction: the claim lock, then rows whose lease passed and due pending rows
    /// (`FOR UPDATE SKIP LOCKED`), channel by channel within the cap.
    pub fn claim(&mut self, now: UnixMs, req: &ClaimRequest<'_>) -> Result<Claimed> {
        let token = (random_u64() >> 1) as i64;
        let instance = req.instance.to_owned();
        let cap = i64::try_from(req.per_channel.max(1)).unwrap_or(i64::MAX);
        let room = clamp_limit(req.room);
        let until = now.saturating_add(req.lease_ms);
        if req.room == 0 {
            return Ok(Claimed {
                token,
                rows: Vec::new(),
            });
        }
        self.call(move |c| {
            let rows = c.atomic(|tx| {
                // A claim need not survive a server crash: lost, its rows are claimable again
                // and a send made under it is at-least-once with the same idempotency key (its
                // outcome cannot land without the claim's token; the row is sent again). So
                // its commit does not wait for the WAL flush (the outcomes' commits do).
                // https://www.postgresql.org/docs/current/wal-async-commit.html
                tx.execute("SET LOCAL synchronous_commit = off", &[])?;
                tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CLAIM_LOCK])?;
                // Per channel (a loose index scan finds them), its free slots' worth of
                // candidates: the oldest due, a row whose lease passed among them; then the
                // oldest `room` of all. A channel's free slots are its cap minus every
                // instance's live claims, so one busy channel never starves the others.
                tx.query(
                    &format!(
                        "WITH RECURSIVE ch(channel_id) AS ( \
                           (SELECT channel_id FROM outbox ORDER BY channel_id LIMIT 1) \
                           UNION ALL \
                           SELECT (SELECT o.channel_id FROM outbox o \
                                   WHERE o.channel_id > ch.channel_id \
                                   ORDER BY o.channel_id LIMIT 1) \
                           FROM ch WHERE ch.channel_id IS NOT NULL), \
                         held AS ( \
                           SELECT channel_id, count(*) AS n FROM outbox \
                           WHERE state = 'inflight' AND claimed_until > $1 GROUP BY channel_id), \
                         candidates AS ( \
                           SELECT x.* FROM ch LEFT JOIN held h ON h.channel_id = ch.channel_id, \
                           LATERAL (SELECT o.idem_key, o.next_attempt_at, o.sequence FROM outbox o \
                             WHERE o.channel_id = ch.channel_id \
                             AND o.state IN ('pending', 'inflight') \
                             AND ((o.state = 'inflight' AND o.claimed_until <= $1) \
                               OR (o.state = 'pending' AND o.next_attempt_at <= $1)) \
                             ORDER BY o.next_attempt_at, o.sequence \
                             LIMIT greatest($3 - coalesce(h.n, 0), 0) \
                             FOR UPDATE SKIP LOCKED) x \
                           WHERE ch.channel_id IS NOT NULL), \
                         chosen AS ( \
                           SELECT idem_key FROM candidates \
                           ORDER BY next_attempt_at, sequence LIMIT $2) \
                         UPDATE outbox o SET state = 'inflight', claimed_by = $4, \
                           claimed_until = $5, claim_token = $6 \
                         FROM chosen WHERE o.idem_key = chosen.idem_key \
                         RETURNING {}",
                        ROW_COLUMNS
                            .split(", ")
                            .map(|c| format!("o.{c}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    &[&now, &room, &cap, &instance, &until, &token],
                )
            })?;
            let mut out = rows
                .iter()
                .map(|r| read_row(r).map_err(|e| c.unreadable(e)))
                .collect::<Result<Vec<_>>>()?;
            for r in &mut out {
                r.state = OutboxState::Inflight;
            }
            out.sort_by(|a, b| {
                (a.next_attempt_at, a.sequence).cmp(&(b.next_attempt_at, b.sequence))
            });
            Ok(Claimed { token, rows: out })
        })
    }

    /// One `UPDATE … FROM unnest(…)`: a batch costs one round trip and one commit (the
    /// dispatcher settles every finished send this way). A batch naming a key twice is settled
    /// one by one, in order, as the contract says.
    pub fn settle_all(&self, batch: &[Settlement<'_>]) -> Result<Vec<bool>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let mut seen = std::collections::HashSet::with_capacity(batch.len());
        if !batch.iter().all(|b| seen.insert(b.idem_key)) {
            return self.transaction(|| {
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
            });
        }
        let n = batch.len();
        let (mut keys, mut tokens, mut states) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut attempts, mut next_at, mut statuses, mut errors, mut delivered_at) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let int = |a: u32| Some(i32::try_from(a).unwrap_or(i32::MAX));
        for b in batch {
            keys.push(b.idem_key.to_owned());
            tokens.push(b.token);
            // (state, attempts: None = one more, next attempt, status, error, delivered at)
            let (state, a, next, status, error, at) = match b.outcome {
                Settle::Delivered { status, at } => {
                    (OutboxState::Delivered, None, None, status, None, Some(at))
                }
                Settle::Retry {
                    attempts,
                    next_at,
                    status,
                    error,
                } => (
                    OutboxState::Pending,
                    int(attempts),
                    Some(next_at),
                    status,
                    Some(error),
                    None,
                ),
                Settle::Failed {
                    attempts,
                    status,
                    reason,
                } => (
                    OutboxState::Failed,
                    int(attempts),
                    None,
                    status,
                    Some(reason),
                    None,
                ),
                Settle::Dead {
                    attempts,
                    status,
                    reason,
                } => (
                    OutboxState::Dead,
                    int(attempts),
                    None,
                    status,
                    Some(reason),
                    None,
                ),
            };
            states.push(state.as_str());
            attempts.push(a);
            next_at.push(next);
            statuses.push(status.map(i32::from));
            errors.push(error.map(str::to_owned));
            delivered_at.push(at);
        }
        let updated: std::collections::HashSet<String> = self.call(move |c| {
            c.select(
                "UPDATE outbox o SET state = v.state, \
                   attempts = coalesce(v.attempts, o.attempts + 1), \
                   next_attempt_at = coalesce(v.next_at, o.next_attempt_at), \
                   last_status = v.status, last_error = v.error, \
                   delivered_at = coalesce(v.delivered_at, o.delivered_at), \
                   payload_json = CASE WHEN v.state = 'delivered' AND o.kind = 'tyk_webhook' \
                     THEN (o.payload_json::jsonb - 'key')::text ELSE o.payload_json END, \
                   claimed_by = NULL, claimed_until = NULL, claim_token = NULL \
                 FROM unnest($1::text[], $2::bigint[], $3::text[], $4::int4[], $5::bigint[], \
                   $6::int4[], $7::text[], $8::bigint[]) \
                   AS v(idem_key, token, state, attempts, next_at, status, error, delivered_at) \
                 WHERE o.idem_key = v.idem_key AND o.state IN ('pending', 'inflight') \
                   AND (v.token IS NULL OR o.claim_token = v.token) \
                 RETURNING o.idem_key",
                &[
                    &keys,
                    &tokens,
                    &states,
                    &attempts,
                    &next_at,
                    &statuses,
                    &errors,
                    &delivered_at,
                ],
                |r| col::<String>(r, 0),
            )
            .map(|v| v.into_iter().collect())
        })?;
        // What each written attempt sent: one more statement for the batch.
        let (mut sent_keys, mut sent_at, mut sent_text) = (Vec::new(), Vec::new(), Vec::new());
        for b in batch {
            if let (true, Some((at, text))) = (updated.contains(b.idem_key), b.sent) {
                sent_keys.push(b.idem_key.to_owned());
                sent_at.push(at);
                sent_text.push(text.to_owned());
            }
        }
        if !sent_keys.is_empty() {
            self.call(move |c| {
                c.exec(
                    "UPDATE outbox o SET sent_request = v.text, sent_at = v.at \
                     FROM unnest($1::text[], $2::bigint[], $3::text[]) AS v(idem_key, at, text) \
                     WHERE o.idem_key = v.idem_key",
                    &[&sent_keys, &sent_at, &sent_text],
                )
            })?;
        }
        Ok(batch.iter().map(|b| updated.contains(b.idem_key)).collect())
    }

    pub fn settle(&self, idem_key: &str, token: Option<i64>, outcome: &Settle<'_>) -> Result<bool> {
        const HELD: &str = "claimed_by = NULL, claimed_until = NULL, claim_token = NULL \
             WHERE idem_key = $1 AND state IN ('pending', 'inflight') \
             AND ($2::bigint IS NULL OR claim_token = $2)";
        let key = idem_key.to_owned();
        let status = |s: Option<u16>| s.map(i32::from);
        let attempts = |a: u32| i32::try_from(a).unwrap_or(i32::MAX);
        let changed = match *outcome {
            Settle::Delivered { status: s, at } => {
                let s = status(s);
                self.call(move |c| {
                    c.exec(
                        &format!(
                            "UPDATE outbox SET state = 'delivered', attempts = attempts + 1, \
                             last_status = $3, last_error = NULL, delivered_at = $4, \
                             payload_json = CASE WHEN kind = 'tyk_webhook' \
                               THEN (payload_json::jsonb - 'key')::text ELSE payload_json END, \
                             {HELD}"
                        ),
                        &[&key, &token, &s, &at],
                    )
                })?
            }
            Settle::Retry {
                attempts: a,
                next_at,
                status: s,
                error,
            } => {
                let (a, s, error) = (attempts(a), status(s), error.to_owned());
                self.call(move |c| {
                    c.exec(
                        &format!(
                            "UPDATE outbox SET state = 'pending', attempts = $3, \
                             next_attempt_at = $4, last_status = $5, last_error = $6, {HELD}"
                        ),
                        &[&key, &token, &a, &next_at, &s, &error],
                    )
                })?
            }
            Settle::Failed {
                attempts: a,
                status: s,
                reason,
            }
            | Settle::Dead {
                attempts: a,
                status: s,
                reason,
            } => {
                let state = if matches!(outcome, Settle::Dead { .. }) {
                    OutboxState::Dead
                } else {
                    OutboxState::Failed
                };
                let (a, s, reason) = (attempts(a), status(s), reason.to_owned());
                self.call(move |c| {
                    c.exec(
                        &format!(
                            "UPDATE outbox SET state = $3, attempts = $4, last_status = $5, \
                             last_error = $6, {HELD}"
                        ),
                        &[&key, &token, &state.as_str(), &a, &s, &reason],
                    )
                })?
            }
        };
        Ok(changed > 0)
    }

    pub fn renew_claims(&self, instance: &str, until: UnixMs) -> Result<usize> {
        let instance = instance.to_owned();
        self.call(move |c| {
            c.exec(
                "UPDATE outbox SET claimed_until = $2 WHERE state = 'inflight' AND claimed_by = $1",
                &[&instance, &until],
            )
            .map(count)
        })
    }

    pub fn release_claims(&self, instance: &str) -> Result<usize> {
        let instance = instance.to_owned();
        self.call(move |c| {
            c.exec(
                "UPDATE outbox SET state = 'pending', claimed_by = NULL, claimed_until = NULL, \
                 claim_token = NULL WHERE state = 'inflight' AND claimed_by = $1",
                &[&instance],
            )
            .map(count)
        })
    }

    pub fn heartbeat(&self, me: &Instance) -> Result<()> {
        let me = me.clone();
        self.call(move |c| {
            c.exec(
                "INSERT INTO instances (id, host, pid, version, config_hash, started_at, seen_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (id) DO UPDATE SET seen_at = $7, config_hash = $5",
                &[
                    &me.id,
                    &me.host,
                    &i64::from(me.pid),
                    &me.version,
                    &me.config_hash,
                    &me.started_at,
                    &me.seen_at,
                ],
            )
            .map(drop)
        })
    }

    pub fn instances(&self, since: UnixMs) -> Result<Vec<Instance>> {
        self.call(move |c| {
            c.select(
                "SELECT id, host, pid, version, config_hash, started_at, seen_at FROM instances \
                 WHERE seen_at >= $1 ORDER BY started_at, id",
                &[&since],
                |r| {
                    Ok(Instance {
                        id: col(r, 0)?,
                        host: col(r, 1)?,
                        pid: u32::try_from(col::<i64>(r, 2)?).unwrap_or(0),
                        version: col(r, 3)?,
                        config_hash: col(r, 4)?,
                        started_at: col(r, 5)?,
                        seen_at: col(r, 6)?,
                    })
                },
            )
        })
    }

    pub fn leave(&self, id: &str) -> Result<()> {
        let id = id.to_owned();
        self.call(move |c| {
            c.exec("DELETE FROM instances WHERE id = $1", &[&id])
                .map(drop)
        })
    }

    /// PostgreSQL enforces the constraints SQLite's check looks for; this checks the schema
    /// answers and no outbox row lost its ledger row.
    pub fn integrity_check(&self) -> Result<()> {
        self.call(|c| {
            c.select("SELECT count(*) FROM outbox", &[], |r| col::<i64>(r, 0))
                .map(drop)
        })
    }
}
