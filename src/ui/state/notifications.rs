//! The Notifications view's part of the state: the last outbox snapshot the notifier sent, the
//! `/` filter over it, the selection (pinned to an idempotency key, so a new snapshot does not
//! move it) and the inspection shown in the detail.

use crate::notify::feed::{Inspection, NotificationItem, OutboxSnapshot};
use crate::outbox::{ChannelId, DisabledChannel, OutboxCounts, OutboxState};
use crate::ui::list::ListCursor;
use crate::ui::table::Filter;

/// The detail's request pane: asked for, arrived, or could not be asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InspectState {
    Loading,
    Ready(Inspection),
    Failed(String),
}

#[derive(Debug, Default)]
pub struct Notifications {
    snapshot: Option<OutboxSnapshot>,
    /// Lower-cased alias, key, org, API, channel, state, error and event per item.
    haystacks: Vec<String>,
    filter: Filter,
    /// Indices into the snapshot's items (newest first) that pass the filter.
    order: Vec<usize>,
    /// The selection, by idempotency key.
    list: ListCursor<String>,
    /// First line of the detail's request pane.
    scroll: usize,
    /// The inspection of one row, by idempotency key.
    inspection: Option<(String, InspectState)>,
    /// Rows older than the snapshot's window, paged in as the cursor reaches the end (as they
    /// were when loaded), newest first. The snapshot's items are followed by these.
    older: Vec<NotificationItem>,
    /// How many of the items are the snapshot's own.
    window: usize,
    /// A page was asked for and has not arrived.
    paging: bool,
}

/// Whether `r` may resend a row in this state.
pub fn resendable(state: OutboxState) -> bool {
    matches!(state, OutboxState::Failed | OutboxState::Dead)
}

fn haystack(it: &NotificationItem) -> String {
    let r = &it.row;
    let channel = r.channel_id.to_string();
    [
        it.alias.as_str(),
        &it.key_masked,
        &it.org_id,
        &it.api_id,
        &it.scope,
        &it.event,
        &channel,
        r.state.as_str(),
        r.last_error.as_deref().unwrap_or_default(),
    ]
    .join("\u{1f}")
    .to_lowercase()
}

impl Notifications {
    // ---- read side ----

    pub fn snapshot(&self) -> Option<&OutboxSnapshot> {
        self.snapshot.as_ref()
    }
    pub fn items(&self) -> &[NotificationItem] {
        self.snapshot.as_ref().map_or(&[], |s| s.items.as_slice())
    }
    pub fn counts(&self) -> Option<OutboxCounts> {
        self.snapshot.as_ref().map(|s| s.counts)
    }
    pub fn filter(&self) -> &Filter {
        &self.filter
    }
    /// Item indices of the rows, filtered, newest first.
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
    pub fn selected(&self) -> Option<&NotificationItem> {
        let id = self.list.selected()?;
        self.item(id)
    }
    pub fn item(&self, idem_key: &str) -> Option<&NotificationItem> {
        self.items().iter().find(|i| i.row.idem_key == idem_key)
    }
    /// The channel's 410 record, when a receiver switched it off.
    pub fn disabled(&self, channel_id: &ChannelId) -> Option<&DisabledChannel> {
        self.snapshot
            .as_ref()?
            .disabled
            .iter()
            .find(|d| d.channel_id == *channel_id)
    }
    /// The inspection of `idem_key`, if it was asked for.
    pub fn inspection(&self, idem_key: &str) -> Option<&InspectState> {
        match &self.inspection {
            Some((k, st)) if k == idem_key => Some(st),
            _ => None,
        }
    }

    // ---- write side ----

    pub(super) fn ingest(&mut self, mut snap: OutboxSnapshot, rows: usize) {
        // A page lost on the way (the store failed) is asked for again on the next move.
        self.paging = false;
        self.window = snap.items.len();
        // Paged-in rows follow the window; those the window now holds again are its.
        let shown: std::collections::HashSet<&str> =
            snap.items.iter().map(|i| i.row.idem_key.as_str()).collect();
        let older: Vec<NotificationItem> = self
            .older
            .iter()
            .filter(|i| !shown.contains(i.row.idem_key.as_str()))
            .cloned()
            .collect();
        snap.items.extend(older);
        self.haystacks = snap.items.iter().map(haystack).collect();
        self.snapshot = Some(snap);
        self.recompute(false, rows);
    }

    /// A page of older rows arrived.
    pub(super) fn page_loaded(&mut self, items: Vec<NotificationItem>, rows: usize) {
        let known: std::collections::HashSet<String> = self
            .items()
            .iter()
            .map(|i| i.row.idem_key.clone())
            .collect();
        self.older.extend(
            items
                .into_iter()
                .filter(|i| !known.contains(&i.row.idem_key)),
        );
        if let Some(mut snap) = self.snapshot.take() {
            snap.items.truncate(self.window);
            self.ingest(snap, rows);
        }
    }

    /// Rows in the outbox, every state.
    pub fn total(&self) -> u64 {
        self.counts().map_or(0, |c| {
            c.pending + c.inflight + c.delivered + c.failed + c.dead
        })
    }

    /// The page to ask for when the cursor is within a screen of the end of what is loaded
    /// and the outbox holds more: the last loaded row's place in the list.
    pub(super) fn next_page(&mut self, rows: usize) -> Option<(i64, String)> {
        let loaded = self.items().len();
        let near_end = self.cursor() + rows.max(1) >= self.order.len();
        if self.paging || !near_end || (loaded as u64) >= self.total() {
            return None;
        }
        let last = self.items().last()?;
        let at = (last.row.sequence, last.row.idem_key.clone());
        self.paging = true;
        Some(at)
    }

    pub(super) fn set_filter(&mut self, f: Filter, rows: usize) {
        if f != self.filter {
            self.filter = f;
            self.recompute(true, rows);
        }
    }

    /// Rebuilds the order; the selection follows its row, or stays on the same line when the
    /// row is gone (a new filter starts at the top).
    fn recompute(&mut self, reset: bool, rows: usize) {
        let f = &self.filter;
        self.order = (0..self.haystacks.len())
            .filter(|&i| f.matches_text(&self.haystacks[i]))
            .collect();
        let items = self.items();
        let row = self.list.after_change(reset, |id| {
            self.order
                .iter()
                .position(|&i| items.get(i).is_some_and(|it| it.row.idem_key == *id))
        });
        self.select(row, rows);
    }

    fn select(&mut self, row: usize, rows: usize) {
        let (order, snapshot) = (&self.order, &self.snapshot);
        self.list.select(row, order.len(), rows, |c| {
            let items = snapshot.as_ref().map_or(&[][..], |s| s.items.as_slice());
            let it = items.get(*order.get(c)?)?;
            Some(it.row.idem_key.clone())
        });
    }

    pub(super) fn move_by(&mut self, delta: isize, rows: usize) {
        self.move_to(self.list.step(delta), rows);
    }

    pub(super) fn move_to(&mut self, row: usize, rows: usize) {
        if !self.order.is_empty() {
            self.select(row, rows);
        }
    }

    /// Keeps the selection visible after a resize.
    pub(super) fn clamp(&mut self, rows: usize) {
        self.list.clamp(self.order.len(), rows);
    }

    pub(super) fn open(&mut self, idem_key: &str) {
        self.scroll = 0;
        self.inspection = Some((idem_key.to_string(), InspectState::Loading));
    }

    pub(super) fn inspected(&mut self, ins: Inspection) {
        // An answer for a row no longer shown is dropped; the next Enter asks again.
        if let Some((k, st)) = &mut self.inspection
            && *k == ins.idem_key
        {
            *st = InspectState::Ready(ins);
        }
    }

    pub(super) fn inspect_failed(&mut self, idem_key: &str, reason: String) {
        if let Some((k, st)) = &mut self.inspection
            && k == idem_key
        {
            *st = InspectState::Failed(reason);
        }
    }

    pub(super) fn scroll_to(&mut self, line: usize, max: usize) {
        self.scroll = line.min(max);
    }
}

use super::{AppState, Level, PickItem, Picker, PickerKind, UiAction, View};
use crate::notify::feed::NotifyRequest;
use crate::ui::keymap::Action;

impl AppState {
    /// Keys of the Notifications views: `Some(result)` when handled here.
    pub(super) fn notifications_action(&mut self, action: Action) -> Option<Option<UiAction>> {
        let rows = self.table_rows();
        let detail = match &self.view {
            View::Notification(k) => Some(k.clone()),
            _ => None,
        };
        let out = match (action, detail) {
            (Action::Up, None) => {
                self.notifications.move_by(-1, rows);
                None
            }
            (Action::Down, None) => {
                self.notifications.move_by(1, rows);
                self.page_request(rows)
            }
            (Action::PageUp, None) => {
                self.notifications.move_by(-(rows as isize), rows);
                None
            }
            (Action::PageDown, None) => {
                self.notifications.move_by(rows as isize, rows);
                self.page_request(rows)
            }
            (Action::Top, None) => {
                self.notifications.move_to(0, rows);
                None
            }
            (Action::Bottom, None) => {
                self.notifications.move_to(usize::MAX, rows);
                self.page_request(rows)
            }
            (Action::Open, None) => {
                let key = self
                    .notifications
                    .selected()
                    .map(|i| i.row.idem_key.clone());
                key.map(|key| {
                    // The detail shows "loading…" until the notifier answers.
                    self.notifications.open(&key);
                    self.view = View::Notification(key.clone());
                    UiAction::Notify(NotifyRequest::Inspect(key))
                })
            }
            (Action::Back, None) => {
                self.set_filter(Filter::default());
                None
            }
            (Action::Back, Some(_)) => {
                self.view = View::Notifications;
                None
            }
            (Action::Up | Action::Down | Action::PageUp | Action::PageDown, Some(k)) => {
                let (page, max) = self.request_scroll_bounds(&k);
                let cur = self.notifications.scroll() as isize;
                let delta = match action {
                    Action::Up => -1,
                    Action::Down => 1,
                    Action::PageUp => -(page as isize),
                    _ => page as isize,
                };
                let line = cur.saturating_add(delta).max(0) as usize;
                self.notifications.scroll_to(line, max);
                None
            }
            (Action::Top, Some(_)) => {
                self.notifications.scroll_to(0, 0);
                None
            }
            (Action::Bottom, Some(k)) => {
                let (_, max) = self.request_scroll_bounds(&k);
                self.notifications.scroll_to(max, max);
                None
            }
            (Action::Resend, detail) => {
                let item = match &detail {
                    Some(k) => self.notifications.item(k),
                    None => self.notifications.selected(),
                };
                let Some(item) = item else {
                    self.flash_msg(Level::Warn, "no notification selected");
                    return Some(None);
                };
                let (key, state) = (item.row.idem_key.clone(), item.row.state);
                if self.settings.readonly {
                    self.flash_msg(Level::Warn, "read-only: resending is disabled (--readonly)");
                    None
                } else if !resendable(state) {
                    self.flash_msg(
                        Level::Warn,
                        format!(
                            "only failed or dead notifications can be resent (this one is {state})"
                        ),
                    );
                    None
                } else {
                    self.flash_msg(Level::Info, "resend requested");
                    Some(UiAction::Notify(NotifyRequest::Resend(key)))
                }
            }
            (Action::TestSend, _) => {
                self.open_test_picker();
                None
            }
            _ => return None,
        };
        Some(out)
    }

    /// The next page of older rows, when the cursor nears the end of what is loaded.
    fn page_request(&mut self, rows: usize) -> Option<UiAction> {
        let (sequence, idem_key) = self.notifications.next_page(rows)?;
        Some(UiAction::Notify(NotifyRequest::Page { sequence, idem_key }))
    }

    /// (page, last first line) of the detail's request pane.
    pub(super) fn request_scroll_bounds(&self, idem_key: &str) -> (usize, usize) {
        let (rows, width) = crate::ui::layout::request_pane(self);
        let len = self.notifications.inspection(idem_key).map_or(0, |st| {
            crate::ui::notifications::request_lines(st, width).len()
        });
        (rows.max(1), len.saturating_sub(rows.max(1)))
    }

    pub(super) fn open_test_picker(&mut self) {
        if self.settings.readonly {
            self.flash_msg(
                Level::Warn,
                "read-only: test notifications are disabled (--readonly)",
            );
            return;
        }
        let Some(snap) = self.notifications.snapshot() else {
            self.flash_msg(Level::Warn, "the notifier has not reported yet");
            return;
        };
        if snap.channels.is_empty() {
            self.flash_msg(Level::Warn, "no notification channels are configured");
            return;
        }
        let items = snap
            .channels
            .iter()
            .map(|c| match self.notifications.disabled(c) {
                Some(d) => PickItem {
                    id: c.to_string(),
                    label: None,
                    note: Some(format!("disabled (410): {}", d.reason)),
                    warn: true,
                },
                None => PickItem {
                    id: c.to_string(),
                    label: None,
                    note: None,
                    warn: false,
                },
            })
            .collect();
        self.picker = Some(Picker {
            kind: PickerKind::TestChannel,
            title: "send a test notification to".into(),
            items,
            cursor: 0,
        });
    }
}
