//! The position in a list view — the cursor row, the first visible row and the key of the
//! selected item — shared by every list (notifications, events, organisations, templates), the
//! way bottom shares one table state. The key is what survives new data and re-sorts: after a
//! change the cursor goes back to the row of the item it was on.

use crate::ui::table::clamp_offset;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor<K> {
    cursor: usize,
    offset: usize,
    selected: Option<K>,
}

impl<K> Default for ListCursor<K> {
    fn default() -> Self {
        ListCursor {
            cursor: 0,
            offset: 0,
            selected: None,
        }
    }
}

impl<K: PartialEq> ListCursor<K> {
    /// Row of the cursor in the (filtered) list.
    pub fn cursor(&self) -> usize {
        self.cursor
    }

    /// First visible row.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// The key of the item under the cursor, as of the last [`ListCursor::select`].
    pub fn selected(&self) -> Option<&K> {
        self.selected.as_ref()
    }

    /// Puts the cursor on `row` of a list of `len` rows (clamped to the last one), remembers
    /// the key of the item there (`key_at(row)`), and scrolls so it is among the `rows` visible.
    /// Returns whether another item is now selected.
    pub fn select(
        &mut self,
        row: usize,
        len: usize,
        rows: usize,
        key_at: impl FnOnce(usize) -> Option<K>,
    ) -> bool {
        self.cursor = row.min(len.saturating_sub(1));
        let key = key_at(self.cursor);
        let changed = key != self.selected;
        self.selected = key;
        self.offset = clamp_offset(self.offset, self.cursor, rows, len);
        changed
    }

    /// The row `delta` rows away from the cursor (never above the first).
    pub fn step(&self, delta: isize) -> usize {
        self.cursor.saturating_add_signed(delta)
    }

    /// Keeps the cursor visible in `rows` rows of a list of `len` (after a resize).
    pub fn clamp(&mut self, len: usize, rows: usize) {
        self.offset = clamp_offset(self.offset, self.cursor, rows, len);
    }

    /// Where the cursor goes after the list changed: the row `find` gives for the selected
    /// item; when it is gone, the top after a new filter or sort (`reset`), else the same line.
    pub fn after_change(&self, reset: bool, find: impl FnOnce(&K) -> Option<usize>) -> usize {
        match self.selected.as_ref().and_then(find) {
            Some(row) => row,
            None if reset => 0,
            None => self.cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_follows_its_key_and_stays_visible() {
        let items = ["a", "b", "c", "d", "e"];
        let key = |i: usize| items.get(i).map(|s| s.to_string());
        let mut l = ListCursor::default();
        assert!(l.select(3, items.len(), 2, key));
        assert_eq!(
            (l.cursor(), l.offset(), l.selected().map(String::as_str)),
            (3, 2, Some("d"))
        );
        assert!(!l.select(3, items.len(), 2, key), "same item: not a change");
        // The list changes: "d" moved to row 1.
        let moved = ["x", "d", "y"];
        let row = l.after_change(false, |k| moved.iter().position(|m| m == k));
        assert_eq!(row, 1);
        // Gone: the same line, or the top after a new filter.
        let gone = ["x", "y", "z", "w", "v"];
        assert_eq!(
            l.after_change(false, |k| gone.iter().position(|m| m == k)),
            3
        );
        assert_eq!(
            l.after_change(true, |k| gone.iter().position(|m| m == k)),
            0
        );
        // Past the end is clamped; an empty list keeps row 0 and no key.
        l.select(99, 2, 2, |_| None);
        assert_eq!((l.cursor(), l.selected()), (1, None));
        l.select(0, 0, 2, |_| None);
        assert_eq!((l.cursor(), l.offset()), (0, 0));
        assert_eq!(l.step(-1), 0);
    }
}
