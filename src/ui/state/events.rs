//! The Events view's part of the state: the events received on `[intake]` (newest first, the
//! latest [`MAX_EVENTS`] kept), the `/` filter over them, the selection (pinned to the row id so
//! new arrivals do not move it) and the detail's pretty-printed payload, wrapped once per width
//! rather than on every frame.

use std::collections::HashSet;

use crate::store::EventRow;
use crate::ui::list::ListCursor;
use crate::ui::sanitize::wrap_keep;
use crate::ui::table::Filter;

/// How many received events the console keeps in memory (the store keeps them all).
pub const MAX_EVENTS: usize = 1000;

/// The payload of the event shown in the detail, wrapped to the pane width.
#[derive(Debug, Clone)]
struct Payload {
    id: i64,
    pretty: String,
    width: usize,
    lines: Vec<String>,
}

#[derive(Debug)]
pub struct EventsPane {
    /// Newest first.
    rows: Vec<EventRow>,
    /// Lower-cased kind, event, org, summary and key, parallel to `rows`.
    haystacks: Vec<String>,
    /// Ids already held (the store's first batch and live events may overlap).
    ids: HashSet<i64>,
    /// Events received since the console started (by their time: the store's first batch of
    /// older ones may come before, after or without live ones).
    live: u64,
    started_ms: i64,
    filter: Filter,
    /// Indices into `rows` that pass the filter.
    order: Vec<usize>,
    /// The selection, by event id.
    list: ListCursor<i64>,
    scroll: usize,
    payload: Option<Payload>,
    /// The selection is on the newest row and stays there as events arrive.
    follow: bool,
}

fn haystack(r: &EventRow) -> String {
    [
        r.kind.as_str(),
        &r.event,
        &r.org_id,
        &r.summary,
        &r.masked_key,
    ]
    .join("\u{1f}")
    .to_lowercase()
}

/// The payload as indented JSON; text that is not JSON is shown as it is (both are cleaned
/// when wrapped).
pub fn pretty_payload(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_else(|_| json.to_string()),
        Err(_) => json.to_string(),
    }
}

impl EventsPane {
    /// `started_ms`: when the console started (what "since start" counts from).
    pub(super) fn new(started_ms: i64) -> Self {
        EventsPane {
            rows: Vec::new(),
            haystacks: Vec::new(),
            ids: HashSet::new(),
            live: 0,
            filter: Filter::default(),
            order: Vec::new(),
            list: ListCursor::default(),
            scroll: 0,
            payload: None,
            follow: true,
            started_ms,
        }
    }
}

impl EventsPane {
    // ---- read side ----

    /// Newest first.
    pub fn rows(&self) -> &[EventRow] {
        &self.rows
    }
    pub fn filter(&self) -> &Filter {
        &self.filter
    }
    /// Row indices shown, filtered, newest first.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
    pub fn cursor(&self) -> usize {
        self.list.cursor()
    }
    pub fn offset(&self) -> usize {
        self.list.offset()
    }
    pub fn scroll(&self) -> usize {
        self.scroll
    }
    /// Events received since the console started.
    pub fn live(&self) -> u64 {
        self.live
    }
    pub fn selected(&self) -> Option<&EventRow> {
        let id = *self.list.selected()?;
        self.row(id)
    }
    pub fn row(&self, id: i64) -> Option<&EventRow> {
        self.rows.iter().find(|r| r.id == id)
    }
    /// The wrapped payload lines of `id`, when the detail has prepared them.
    pub fn payload_lines(&self, id: i64) -> Option<&[String]> {
        self.payload
            .as_ref()
            .filter(|p| p.id == id)
            .map(|p| p.lines.as_slice())
    }

    // ---- write side ----

    /// A batch from the engine, oldest first.
    pub(super) fn ingest(&mut self, batch: Vec<EventRow>, rows: usize) {
        for r in batch {
            // Id 0 means "not recorded": never a duplicate of anything.
            if r.id != 0 && !self.ids.insert(r.id) {
                continue;
            }
            if r.received_at >= self.started_ms {
                self.live += 1;
            }
            self.haystacks.insert(0, haystack(&r));
            self.rows.insert(0, r);
        }
        if self.rows.len() > MAX_EVENTS {
            for r in self.rows.drain(MAX_EVENTS..) {
                self.ids.remove(&r.id);
            }
            self.haystacks.truncate(MAX_EVENTS);
        }
        self.recompute(false, rows);
    }

    pub(super) fn set_filter(&mut self, f: Filter, rows: usize) {
        if f != self.filter {
            self.filter = f;
            self.recompute(true, rows);
        }
    }

    /// The selection follows its event; when it is gone it stays on the same line (a new
    /// filter starts at the top). On the newest row it stays on the newest, like a tail.
    fn recompute(&mut self, reset: bool, rows: usize) {
        self.order = (0..self.rows.len())
            .filter(|&i| self.filter.matches_text(&self.haystacks[i]))
            .collect();
        let row = if self.follow || reset {
            0
        } else {
            self.list.after_change(false, |id| {
                self.order
                    .iter()
                    .position(|&i| self.rows.get(i).is_some_and(|r| r.id == *id))
            })
        };
        self.select(row, rows);
    }

    fn select(&mut self, row: usize, rows: usize) {
        let (order, events) = (&self.order, &self.rows);
        self.list.select(row, order.len(), rows, |c| {
            Some(events.get(*order.get(c)?)?.id)
        });
    }

    pub(super) fn move_to(&mut self, row: usize, rows: usize) {
        if !self.order.is_empty() {
            self.select(row, rows);
            self.follow = self.list.cursor() == 0;
        }
    }

    pub(super) fn move_by(&mut self, delta: isize, rows: usize) {
        self.move_to(self.list.step(delta), rows);
    }

    pub(super) fn clamp(&mut self, rows: usize) {
        self.list.clamp(self.order.len(), rows);
    }

    /// Prepares the detail of `id` (pretty-printing once; wrapping again only on a new width).
    pub(super) fn prepare_payload(&mut self, id: i64, width: usize) {
        let width = width.max(1);
        if let Some(p) = &mut self.payload
            && p.id == id
        {
            if p.width != width {
                p.width = width;
                p.lines = wrap_keep(&p.pretty, width);
            }
            return;
        }
        let Some(row) = self.row(id) else {
            self.payload = None;
            return;
        };
        let pretty = pretty_payload(&row.payload_json);
        let lines = wrap_keep(&pretty, width);
        self.payload = Some(Payload {
            id,
            pretty,
            width,
            lines,
        });
        self.scroll = 0;
    }

    pub(super) fn scroll_to(&mut self, line: usize, page: usize) {
        let len = self.payload.as_ref().map_or(0, |p| p.lines.len());
        self.scroll = line.min(len.saturating_sub(page.max(1)));
    }
}

// ---- keys (the Events views' part of `AppState`) ----

use super::{AppState, UiAction, View};
use crate::ui::keymap::Action;

impl AppState {
    /// Keys of the Events views: `Some(result)` when handled here.
    pub(super) fn events_action(&mut self, action: Action) -> Option<Option<UiAction>> {
        let rows = self.table_rows();
        let detail = match &self.view {
            View::Event(id) => Some(*id),
            _ => None,
        };
        let e = &mut self.events;
        match (action, detail) {
            (Action::Up, None) => e.move_by(-1, rows),
            (Action::Down, None) => e.move_by(1, rows),
            (Action::PageUp, None) => e.move_by(-(rows as isize), rows),
            (Action::PageDown, None) => e.move_by(rows as isize, rows),
            (Action::Top, None) => e.move_to(0, rows),
            (Action::Bottom, None) => e.move_to(usize::MAX, rows),
            (Action::Open, None) => {
                if let Some(id) = e.selected().map(|r| r.id) {
                    self.view = View::Event(id);
                    self.refresh_events();
                    self.events.scroll_to(0, 1);
                }
            }
            (Action::Back, None) => self.set_filter(crate::ui::table::Filter::default()),
            (Action::Back, Some(_)) => self.view = View::Events,
            (
                Action::Up
                | Action::Down
                | Action::PageUp
                | Action::PageDown
                | Action::Top
                | Action::Bottom,
                Some(_),
            ) => {
                let (page, _) = crate::ui::layout::event_payload_pane(self);
                let page = page.max(1);
                let cur = self.events.scroll();
                let line = match action {
                    Action::Up => cur.saturating_sub(1),
                    Action::Down => cur + 1,
                    Action::PageUp => cur.saturating_sub(page),
                    Action::PageDown => cur + page,
                    Action::Top => 0,
                    _ => usize::MAX,
                };
                self.events.scroll_to(line, page);
            }
            _ => return None,
        }
        Some(None)
    }

    /// The detail's payload is wrapped here, on a change, never while drawing.
    pub(super) fn refresh_events(&mut self) {
        let id = match &self.view {
            View::Event(id) => Some(*id),
            View::Help(from) => match from.as_ref() {
                View::Event(id) => Some(*id),
                _ => None,
            },
            _ => None,
        };
        if let Some(id) = id {
            let (_, width) = crate::ui::layout::event_payload_pane(self);
            self.events.prepare_payload(id, width);
        }
    }
}
