//! Everything a store holds, read out for `tykwatch store migrate` (SQLite → PostgreSQL).

use super::{EventRow, Result, Store};
use crate::outbox::{DisabledChannel, LedgerEntry, OutboxRow, OutboxState};

/// A store's rows. In memory: a migration is a one-off of a single instance's data dir.
#[derive(Debug, Clone, Default)]
pub struct Dump {
    pub ledger: Vec<LedgerEntry>,
    pub outbox: Vec<OutboxRow>,
    pub events: Vec<EventRow>,
    /// Events not routed yet (they stay so after the copy; the others are marked routed).
    pub unrouted: Vec<i64>,
    pub disabled: Vec<DisabledChannel>,
    pub last_sequence: i64,
}

impl Dump {
    /// `ledger 10, outbox 30 (pending 20, delivered 10), events 2, disabled channels 0`.
    pub fn summary(&self) -> String {
        let mut states: Vec<(OutboxState, usize)> = Vec::new();
        for r in &self.outbox {
            match states.iter_mut().find(|(s, _)| *s == r.state) {
                Some((_, n)) => *n += 1,
                None => states.push((r.state, 1)),
            }
        }
        let by_state: Vec<String> = states.iter().map(|(s, n)| format!("{s} {n}")).collect();
        format!(
            "ledger {}, outbox {}{}, events {}, disabled channels {}",
            self.ledger.len(),
            self.outbox.len(),
            if by_state.is_empty() {
                String::new()
            } else {
                format!(" ({})", by_state.join(", "))
            },
            self.events.len(),
            self.disabled.len()
        )
    }
}

impl Store {
    /// Every row, through the ordinary reads (both engines).
    pub fn dump(&self) -> Result<Dump> {
        Ok(Dump {
            ledger: self.load_ledger_since(i64::MIN)?,
            outbox: self.list_outbox(&Default::default(), usize::MAX)?,
            events: self.list_events(usize::MAX)?,
            unrouted: self
                .unrouted_events(i64::MIN, usize::MAX)?
                .into_iter()
                .map(|e| e.id)
                .collect(),
            disabled: self.disabled_channels()?,
            last_sequence: self.last_sequence()?,
        })
    }
}
