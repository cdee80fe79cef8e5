//! The Quotas view's part of the state: the `/` filter and the sort over the board, the order
//! they give (recomputed only when the board, the filter or the sort changed), the header's
//! counts, the selection (pinned to the quota so a sweep that reorders rows does not move it),
//! the siblings the detail lists, and the fired marks the `FIRED` column shows.
//!
//! The board itself stays in `AppState`: it is the engine's data, which the Templates view
//! also reads for its sample quotas.

use std::collections::HashMap;

use crate::notify::feed::FiredMark;
use crate::quota::QuotaId;
use crate::quota::board::Board;
use crate::ui::list::ListCursor;
use crate::ui::table::{self, Counts, Filter, Orderer, Sort};

#[derive(Debug, Default)]
pub struct QuotasPane {
    filter: Filter,
    sort: Sort,
    /// Board indices in table order, and the keys that made it (re-sorted where they left
    /// off when only the board's values changed).
    orderer: Orderer,
    order_version: Option<u64>,
    /// A new filter or sort starts again at the top.
    reset_cursor: bool,
    counts: Counts,
    counts_version: Option<u64>,
    list: ListCursor<QuotaId>,
    /// Board indices of the detail's quota's siblings (same key, other scopes).
    siblings: Vec<usize>,
    siblings_of: Option<(QuotaId, u64)>,
    /// The complete set the engine last reported: a renewal removes a quota's mark.
    fired: HashMap<QuotaId, FiredMark>,
}

impl QuotasPane {
    pub fn filter(&self) -> &Filter {
        &self.filter
    }
    pub fn sort(&self) -> Sort {
        self.sort
    }
    /// Board indices of the rows shown, in order.
    pub fn order(&self) -> &[usize] {
        self.orderer.current()
    }
    pub fn counts(&self) -> Counts {
        self.counts
    }
    pub fn cursor(&self) -> usize {
        self.list.cursor()
    }
    pub fn offset(&self) -> usize {
        self.list.offset()
    }
    pub fn selected(&self) -> Option<&QuotaId> {
        self.list.selected()
    }
    pub fn siblings(&self) -> &[usize] {
        &self.siblings
    }
    pub fn fired(&self, id: &QuotaId) -> Option<&FiredMark> {
        self.fired.get(id)
    }
    pub fn any_fired(&self) -> bool {
        !self.fired.is_empty()
    }

    pub(super) fn set_fired(&mut self, marks: Vec<FiredMark>) {
        self.fired = marks.into_iter().map(|m| (m.quota.clone(), m)).collect();
    }

    /// A changed filter re-orders from the top; the same filter changes nothing.
    pub(super) fn set_filter(&mut self, f: Filter) {
        if f != self.filter {
            self.filter = f;
            self.invalidate_order();
        }
    }

    pub(super) fn set_sort(&mut self, sort: Sort) {
        self.sort = sort;
        self.invalidate_order();
    }

    fn invalidate_order(&mut self) {
        self.order_version = None;
        self.reset_cursor = true;
    }

    /// Recomputes the counts and the order when the board changed (or the filter or sort did).
    pub(super) fn refresh(&mut self, board: &Board, thresholds: &[f64], rows: usize) {
        let v = board.version();
        if self.counts_version != Some(v) {
            self.counts = table::counts(board, thresholds);
            self.counts_version = Some(v);
        }
        if self.order_version != Some(v) {
            self.orderer.order(board, &self.filter, self.sort);
            self.order_version = Some(v);
            // Follow the selected quota to its new row; if it is gone, stay on the same row
            // (a new filter or sort that hides the selection starts again at the top).
            let order = self.orderer.current();
            let row = self.list.after_change(self.reset_cursor, |id| {
                let bi = board.position(id)?;
                order.iter().position(|&i| i == bi)
            });
            self.reset_cursor = false;
            self.select(board, row, rows);
        }
    }

    /// The quota of table row `row` becomes the selection.
    pub(super) fn select(&mut self, board: &Board, row: usize, rows: usize) {
        let order = self.orderer.current();
        self.list.select(row, order.len(), rows, |c| {
            Some(board.entries().get(*order.get(c)?)?.id.clone())
        });
    }

    /// The row `delta` rows from the cursor (clamped by `select`).
    pub(super) fn step(&self, delta: isize) -> usize {
        self.list.step(delta)
    }

    pub(super) fn clamp(&mut self, rows: usize) {
        self.list.clamp(self.orderer.current().len(), rows);
    }

    /// The detail's siblings: the other quotas of the same key, by scope then API name.
    pub(super) fn refresh_siblings(&mut self, board: &Board, detail: Option<&QuotaId>) {
        let Some(id) = detail.cloned() else {
            self.siblings.clear();
            self.siblings_of = None;
            return;
        };
        let stamp = (id, board.version());
        if self.siblings_of.as_ref() == Some(&stamp) {
            return;
        }
        let entries = board.entries();
        let mut sib: Vec<usize> = match stamp.0.key() {
            Some(k) => (0..entries.len())
                .filter(|&i| entries[i].id != stamp.0 && entries[i].id.key() == Some(k))
                .collect(),
            None => Vec::new(),
        };
        sib.sort_by(|&a, &b| {
            let (a, b) = (&entries[a], &entries[b]);
            (a.id.scope(), &a.meta.api_name(), &a.id).cmp(&(
                b.id.scope(),
                &b.meta.api_name(),
                &b.id,
            ))
        });
        self.siblings = sib;
        self.siblings_of = Some(stamp);
    }
}
