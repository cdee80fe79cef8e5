//! The ledger of fired thresholds: exactly-once generation of crossings and their outbox rows.

use std::collections::HashMap;

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::outbox::{INSERT_OUTBOX, disabled_in, insert_outbox};
use super::{Result, Sqlite, StoreError};
use crate::outbox::{Crossing, LedgerEntry, LedgerState, OutboxRow, OutboxState, Source};

impl Sqlite {
    /// Records crossings and their outbox rows in ONE transaction (one fsync for the batch).
    ///
    /// Exactly-once generation: a crossing whose `fired` ledger row already exists inserts
    /// nothing — neither its covered rows matter nor its outbox rows are added. Rows for a
    /// channel disabled by a 410 are inserted as `failed` (visible, resendable). Every row must
    /// belong to a crossing of the batch. Returns the number of crossings newly recorded.
    /// On error nothing is written.
    pub fn record_crossings(
        &mut self,
        crossings: &[Crossing],
        rows: &[OutboxRow],
    ) -> Result<usize> {
        if crossings.is_empty() && rows.is_empty() {
            return Ok(0); // a quiet sweep costs no fsync
        }
        let mut by_crossing: HashMap<(&str, i64, u64), Vec<&OutboxRow>> = HashMap::new();
        for c in crossings {
            if !c.threshold.is_finite() || c.covered.iter().any(|t| !t.is_finite()) {
                return Err(StoreError::Invalid(format!(
                    "crossing {} has a non-finite threshold",
                    c.quota_key
                )));
            }
            by_crossing
                .entry((&c.quota_key, c.period, c.threshold.to_bits()))
                .or_default();
        }
        for r in rows {
            let crossing = match &r.source {
                Source::Crossing {
                    quota_key,
                    period,
                    threshold,
                } => by_crossing.get_mut(&(quota_key.as_str(), *period, threshold.to_bits())),
                Source::Event { .. } => None,
            };
            match crossing {
                Some(v) => v.push(r),
                None => {
                    return Err(StoreError::Invalid(format!(
                        "outbox row {} belongs to no crossing of the batch",
                        r.idem_key
                    )));
                }
            }
        }
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let disabled = disabled_in(&tx).map_err(err)?;
        let mut recorded = 0;
        let mut max_seq = i64::MIN;
        {
            let mut ledger = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO ledger (quota_key, period, threshold, state, usage_pct, fired_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                )
                .map_err(err)?;
            let mut outbox = tx.prepare_cached(INSERT_OUTBOX).map_err(err)?;
            // Insert in key order: quota keys are hashes, so arrival order would touch B-tree
            // pages at random and write each of them to the WAL again and again.
            let mut order: Vec<&Crossing> = crossings.iter().collect();
            order.sort_by(|a, b| {
                (&*a.quota_key, a.period)
                    .cmp(&(&*b.quota_key, b.period))
                    .then(a.threshold.total_cmp(&b.threshold))
            });
            let mut fresh: Vec<&OutboxRow> = Vec::with_capacity(rows.len());
            for c in order {
                max_seq = max_seq.max(c.sequence);
                let new = ledger
                    .execute(params![
                        &*c.quota_key,
                        c.period,
                        c.threshold,
                        LedgerState::Fired.as_str(),
                        c.usage_pct,
                        c.at_ms
                    ])
                    .map_err(err)?;
                for t in &c.covered {
                    ledger
                        .execute(params![
                            &*c.quota_key,
                            c.period,
                            t,
                            LedgerState::Covered.as_str(),
                            c.usage_pct,
                            c.at_ms
                        ])
                        .map_err(err)?;
                }
                if new == 0 {
                    continue;
                }
                recorded += 1;
                let key = (&*c.quota_key, c.period, c.threshold.to_bits());
                fresh.extend(by_crossing.get(&key).into_iter().flatten());
            }
            fresh.sort_by(|a, b| a.idem_key.cmp(&b.idem_key));
            for r in fresh {
                insert_outbox(
                    &mut outbox,
                    r,
                    (OutboxState::Pending, None),
                    &disabled,
                    r.sequence,
                )
                .map_err(err)?;
            }
        }
        if max_seq > i64::MIN {
            tx.execute(
                "UPDATE meta SET value = max(value, ?1) WHERE name = 'last_sequence'",
                [max_seq],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(recorded)
    }

    /// Thresholds recorded (fired or covered) for one quota and period, ascending.
    pub fn fired_thresholds(&self, quota_key: &str, period: i64) -> Result<Vec<f64>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT threshold FROM ledger WHERE quota_key = ?1 AND period = ?2 ORDER BY threshold",
            )
            .map_err(|e| self.err(e))?;
        st.query_map(params![quota_key, period], |r| r.get(0))
            .map_err(|e| self.err(e))?
            .collect::<rusqlite::Result<_>>()
            .map_err(|e| self.err(e))
    }

    /// Ledger rows of periods that end at or after `min_period` (Unix seconds): pass the
    /// current time to warm the monitor, since ended periods can never fire again.
    pub fn load_ledger_since(&self, min_period: i64) -> Result<Vec<LedgerEntry>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT quota_key, period, threshold, state, usage_pct, fired_at FROM ledger \
                 WHERE period >= ?1 ORDER BY quota_key, period, threshold",
            )
            .map_err(|e| self.err(e))?;
        st.query_map([min_period], |r| {
            let state: String = r.get(3)?;
            Ok(LedgerEntry {
                quota_key: r.get(0)?,
                period: r.get(1)?,
                threshold: r.get(2)?,
                state: if state == "covered" {
                    LedgerState::Covered
                } else {
                    LedgerState::Fired
                },
                usage_pct: r.get(4)?,
                fired_at: r.get(5)?,
            })
        })
        .map_err(|e| self.err(e))?
        .collect::<rusqlite::Result<_>>()
        .map_err(|e| self.err(e))
    }

    /// The highest sequence ever recorded (0 on a new database): seed for the monitor.
    pub fn last_sequence(&self) -> Result<i64> {
        self.conn
            .query_row(
                "SELECT value FROM meta WHERE name = 'last_sequence'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map(|v| v.unwrap_or(0))
            .map_err(|e| self.err(e))
    }
}
