//! The ledger of fired thresholds: exactly-once generation of crossings and their outbox rows.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::outbox::{INSERT_OUTBOX, disabled_in, insert_outbox};
use super::{Result, Sqlite, StoreError};
use crate::outbox::{Crossing, LedgerEntry, LedgerState, OutboxRow, OutboxState};

impl Sqlite {
    /// The ledger rows of `crossings` and, for those new, their rows (`groups`, one list per
    /// crossing) in ONE transaction; which were new. The facade checked the batch.
    pub fn record_crossings(
        &mut self,
        crossings: &[Crossing],
        groups: &[Vec<&OutboxRow>],
    ) -> Result<Vec<bool>> {
        let path = self.path.clone();
        let err = |e| StoreError::from_sqlite(&path, e);
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let disabled = disabled_in(&tx).map_err(err)?;
        let mut new_ones = vec![false; crossings.len()];
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
            let mut order: Vec<(usize, &Crossing)> = crossings.iter().enumerate().collect();
            order.sort_by(|(_, a), (_, b)| {
                (&*a.quota_key, a.period)
                    .cmp(&(&*b.quota_key, b.period))
                    .then(a.threshold.total_cmp(&b.threshold))
            });
            let mut fresh: Vec<&OutboxRow> = Vec::new();
            for (i, c) in order {
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
                new_ones[i] = true;
                fresh.extend(groups.get(i).into_iter().flatten());
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
        Ok(new_ones)
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
