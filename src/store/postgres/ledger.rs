//! The ledger on PostgreSQL: exactly-once generation across instances.

use std::collections::HashMap;

use super::Postgres;
use super::outbox::{RowValues, col, insert_rows};
use crate::outbox::{Crossing, LedgerEntry, LedgerState, OutboxRow, OutboxState};
use crate::store::Result;

impl Postgres {
    /// One transaction: the ledger rows in one `INSERT … ON CONFLICT DO NOTHING RETURNING`
    /// (what comes back is what this call recorded first, whichever instance raced it), then
    /// the outbox rows of those crossings only. Keys go in sorted, so two instances inserting
    /// overlapping batches take their row locks in the same order (no deadlock).
    pub fn record_crossings(
        &mut self,
        crossings: &[Crossing],
        groups: &[Vec<&OutboxRow>],
    ) -> Result<Vec<bool>> {
        let mut by_crossing: HashMap<(String, i64, u64), (usize, Vec<RowValues>)> =
            HashMap::with_capacity(crossings.len());
        for (i, c) in crossings.iter().enumerate() {
            let rows = groups.get(i).into_iter().flatten();
            let values = rows
                .map(|r| RowValues::new(r, (OutboxState::Pending, None), r.sequence))
                .collect();
            by_crossing
                .entry((c.quota_key.to_string(), c.period, c.threshold.to_bits()))
                .or_insert((i, values));
        }
        let n = crossings.len();
        let mut ledger: Vec<(String, i64, f64, &'static str, f64, i64)> = Vec::new();
        for c in crossings {
            ledger.push((
                c.quota_key.to_string(),
                c.period,
                c.threshold,
                LedgerState::Fired.as_str(),
                c.usage_pct,
                c.at_ms,
            ));
            for t in &c.covered {
                ledger.push((
                    c.quota_key.to_string(),
                    c.period,
                    *t,
                    LedgerState::Covered.as_str(),
                    c.usage_pct,
                    c.at_ms,
                ));
            }
        }
        ledger.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)).then(a.2.total_cmp(&b.2)));
        let max_seq = crossings.iter().map(|c| c.sequence).max();
        self.call(move |c| {
            c.atomic(|tx| {
                let fresh = tx.query(
                    "INSERT INTO ledger (quota_key, period, threshold, state, usage_pct, fired_at) \
                     SELECT * FROM unnest($1::text[], $2::bigint[], $3::float8[], $4::text[], \
                       $5::float8[], $6::bigint[]) \
                     ON CONFLICT DO NOTHING \
                     RETURNING quota_key, period, threshold, state",
                    &[
                        &ledger.iter().map(|l| l.0.as_str()).collect::<Vec<_>>(),
                        &ledger.iter().map(|l| l.1).collect::<Vec<_>>(),
                        &ledger.iter().map(|l| l.2).collect::<Vec<_>>(),
                        &ledger.iter().map(|l| l.3).collect::<Vec<_>>(),
                        &ledger.iter().map(|l| l.4).collect::<Vec<_>>(),
                        &ledger.iter().map(|l| l.5).collect::<Vec<_>>(),
                    ],
                )?;
                let mut new_ones = vec![false; n];
                let mut out: Vec<RowValues> = Vec::new();
                for r in &fresh {
                    let state: String = r.try_get(3)?;
                    if state != LedgerState::Fired.as_str() {
                        continue;
                    }
                    let key: String = r.try_get(0)?;
                    let period: i64 = r.try_get(1)?;
                    let threshold: f64 = r.try_get(2)?;
                    if let Some((i, v)) = by_crossing.remove(&(key, period, threshold.to_bits())) {
                        new_ones[i] = true;
                        out.extend(v);
                    }
                }
                out.sort_by(|a, b| a.idem_key.cmp(&b.idem_key));
                insert_rows(tx, &out)?;
                if let Some(seq) = max_seq {
                    tx.execute(
                        "UPDATE meta SET value = GREATEST(value, $1) WHERE name = 'last_sequence'",
                        &[&seq],
                    )?;
                }
                Ok(new_ones)
            })
        })
    }

    pub fn fired_thresholds(&self, quota_key: &str, period: i64) -> Result<Vec<f64>> {
        let key = quota_key.to_owned();
        self.call(move |c| {
            c.select(
                "SELECT threshold FROM ledger WHERE quota_key = $1 AND period = $2 \
                 ORDER BY threshold",
                &[&key, &period],
                |r| col(r, 0),
            )
        })
    }

    pub fn load_ledger_since(&self, min_period: i64) -> Result<Vec<LedgerEntry>> {
        self.call(move |c| {
            c.select(
                "SELECT quota_key, period, threshold, state, usage_pct, fired_at FROM ledger \
                 WHERE period >= $1 ORDER BY quota_key, period, threshold",
                &[&min_period],
                |r| {
                    let state: String = col(r, 3)?;
                    Ok(LedgerEntry {
                        quota_key: col(r, 0)?,
                        period: col(r, 1)?,
                        threshold: col(r, 2)?,
                        state: if state == "covered" {
                            LedgerState::Covered
                        } else {
                            LedgerState::Fired
                        },
                        usage_pct: col(r, 4)?,
                        fired_at: col(r, 5)?,
                    })
                },
            )
        })
    }

    pub fn last_sequence(&self) -> Result<i64> {
        self.call(|c| {
            c.select(
                "SELECT value FROM meta WHERE name = 'last_sequence'",
                &[],
                |r| col::<i64>(r, 0),
            )
            .map(|v| v.first().copied().unwrap_or(0))
        })
    }
}
