//! The console's state. It changes only through `apply_engine` (what the engine reports),
//! `handle_key` (what the user types), `tick` (time passing) and `resize`; rendering reads it.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::keymap::{self, Action, CommandKind, Screen, ViewKind};
use super::table::{self, Counts, Filter, Sort};
use super::terminal::ConsoleOptions;
use crate::clock::UnixMs;
use crate::engine::EngineEvent;
use crate::quota::QuotaId;
use crate::quota::board::Board;
use crate::quota::poller::SweepOutcome;
use crate::tyk::session::Hello;

/// What the state asks of the loop around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiAction {
    Quit,
    /// Ask the engine for a sweep now.
    PollNow,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    Quotas,
    /// The detail of one quota; pinned to its id so a re-sort does not swap it.
    Detail(QuotaId),
    /// Help, opened from the view it returns to.
    Help(Box<View>),
}

impl View {
    pub fn kind(&self) -> ViewKind {
        match self {
            View::Quotas => ViewKind::Quotas,
            View::Detail(_) => ViewKind::Detail,
            View::Help(_) => ViewKind::Help,
        }
    }
}

/// Whether keys go to the keymap or to an input line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// `/` typed so far.
    Filter(String),
    /// `:` typed so far.
    Command(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warn,
    Error,
}

/// A one-line message in the footer that expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub text: String,
    pub level: Level,
    pub until_ms: UnixMs,
}

/// When the last successful sweep ended and how long it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SweepStamp {
    pub finished_ms: UnixMs,
    pub duration: Duration,
}

/// The gateway could not be read; the message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outage {
    pub message: String,
    pub since_ms: UnixMs,
}

/// What the console was started with, as the views need it.
#[derive(Debug, Clone)]
pub struct Settings {
    pub gateway_label: String,
    pub demo: bool,
    pub poll_interval: Duration,
    pub retention: Duration,
    pub global_thresholds: Vec<f64>,
    pub readonly: bool,
}

const FLASH_MS: i64 = 4_000;
const MAX_INPUT: usize = 256;

pub struct AppState {
    board: Board,
    settings: Settings,
    now_ms: UnixMs,
    view: View,
    mode: Mode,
    filter: Filter,
    sort: Sort,
    /// Board indices of the table rows; valid for `order_version`.
    order: Vec<usize>,
    order_version: Option<u64>,
    /// The next order comes from a new filter or sort, not a sweep.
    reset_cursor: bool,
    counts: Counts,
    counts_version: Option<u64>,
    /// Row of the selection in `order`, and the quota it is on (what survives re-sorts).
    cursor: usize,
    selected: Option<QuotaId>,
    /// First visible row.
    offset: usize,
    size: (u16, u16),
    hello: Option<Result<Hello, String>>,
    last_ok: Option<SweepStamp>,
    outage: Option<Outage>,
    retry_at_ms: Option<UnixMs>,
    sweeping_since: Option<UnixMs>,
    item_errors: usize,
    item_error: Option<String>,
    flash: Option<Flash>,
    /// Other quotas of the key in the detail view, for `siblings_of`.
    siblings: Vec<usize>,
    siblings_of: Option<(QuotaId, u64)>,
}

impl AppState {
    pub fn new(opts: &ConsoleOptions, now_ms: UnixMs) -> AppState {
        AppState {
            board: Board::new(opts.board, now_ms),
            settings: Settings {
                gateway_label: opts.gateway_label.clone(),
                demo: opts.demo,
                poll_interval: opts.poll_interval,
                retention: opts.board.retention,
                global_thresholds: opts.global_thresholds.clone(),
                readonly: opts.readonly,
            },
            now_ms,
            view: View::Quotas,
            mode: Mode::Normal,
            filter: Filter::default(),
            sort: Sort::default(),
            order: Vec::new(),
            order_version: None,
            reset_cursor: false,
            counts: Counts::default(),
            counts_version: None,
            cursor: 0,
            selected: None,
            offset: 0,
            size: (80, 24),
            hello: None,
            last_ok: None,
            outage: None,
            retry_at_ms: None,
            sweeping_since: None,
            item_errors: 0,
            item_error: None,
            flash: None,
            siblings: Vec::new(),
            siblings_of: None,
        }
    }

    // ---- read side (render) ----

    pub fn board(&self) -> &Board {
        &self.board
    }
    pub fn settings(&self) -> &Settings {
        &self.settings
    }
    pub fn now_ms(&self) -> UnixMs {
        self.now_ms
    }
    pub fn view(&self) -> &View {
        &self.view
    }
    pub fn mode(&self) -> &Mode {
        &self.mode
    }
    pub fn filter(&self) -> &Filter {
        &self.filter
    }
    pub fn sort(&self) -> Sort {
        self.sort
    }
    /// Board indices of the table rows, filtered and sorted.
    pub fn order(&self) -> &[usize] {
        &self.order
    }
    pub fn counts(&self) -> Counts {
        self.counts
    }
    pub fn cursor(&self) -> usize {
        self.cursor
    }
    pub fn offset(&self) -> usize {
        self.offset
    }
    pub fn selected(&self) -> Option<&QuotaId> {
        self.selected.as_ref()
    }
    pub fn size(&self) -> (u16, u16) {
        self.size
    }
    pub fn hello(&self) -> Option<&Result<Hello, String>> {
        self.hello.as_ref()
    }
    pub fn last_ok(&self) -> Option<SweepStamp> {
        self.last_ok
    }
    pub fn outage(&self) -> Option<&Outage> {
        self.outage.as_ref()
    }
    /// Seconds until the engine retries after a failed sweep.
    pub fn retry_in_secs(&self) -> Option<i64> {
        self.retry_at_ms
            .map(|at| ((at - self.now_ms).max(0) + 999) / 1000)
    }
    pub fn sweeping_since(&self) -> Option<UnixMs> {
        self.sweeping_since
    }
    pub fn item_errors(&self) -> usize {
        self.item_errors
    }
    pub fn flash(&self) -> Option<&Flash> {
        self.flash.as_ref()
    }
    /// Board indices of the other quotas of the key shown in the detail view.
    pub fn siblings(&self) -> &[usize] {
        &self.siblings
    }

    // ---- write side ----

    /// Time passes: ages in the header move and flash messages expire.
    pub fn tick(&mut self, now_ms: UnixMs) {
        self.now_ms = now_ms;
        if self.flash.as_ref().is_some_and(|f| f.until_ms <= now_ms) {
            self.flash = None;
        }
    }

    /// The terminal size, for paging and keeping the selection visible.
    pub fn resize(&mut self, width: u16, height: u16) {
        self.size = (width, height);
        self.scroll_into_view();
    }

    pub fn apply_engine(&mut self, ev: EngineEvent) {
        match ev {
            EngineEvent::SweepStarted { at_ms } => self.sweeping_since = Some(at_ms),
            EngineEvent::Sweep(outcome) => self.ingest(*outcome),
            EngineEvent::Backoff { retry_in, .. } => {
                let from = self
                    .last_sweep_end()
                    .map_or(self.now_ms, |e| e.max(self.now_ms));
                let ms = i64::try_from(retry_in.as_millis()).unwrap_or(i64::MAX / 2);
                self.retry_at_ms = Some(from.saturating_add(ms));
            }
            // Shown by the Notifications view (not yet wired into the state).
            EngineEvent::Outbox(_)
            | EngineEvent::Fired(_)
            | EngineEvent::Inspected(_)
            | EngineEvent::Notice { .. } => {}
        }
        self.refresh();
    }

    fn last_sweep_end(&self) -> Option<UnixMs> {
        self.last_ok.map(|s| s.finished_ms)
    }

    fn ingest(&mut self, o: SweepOutcome) {
        self.sweeping_since = None;
        let finished_ms = o
            .started_ms
            .saturating_add(i64::try_from(o.duration.as_millis()).unwrap_or(0));
        match o.hello {
            Some(Ok(h)) => self.hello = Some(Ok(h)),
            Some(Err(e)) => self.hello = Some(Err(e.to_string())),
            None => {}
        }
        match o.error {
            Some(e) => {
                let since_ms = self.outage.as_ref().map_or(o.started_ms, |x| x.since_ms);
                self.outage = Some(Outage {
                    message: e.to_string(),
                    since_ms,
                });
            }
            None => {
                self.outage = None;
                self.retry_at_ms = None;
                self.last_ok = Some(SweepStamp {
                    finished_ms,
                    duration: o.duration,
                });
            }
        }
        self.item_errors = o.item_errors.len();
        let first = o.item_errors.first().map(|e| e.to_string());
        if first.is_some() && first != self.item_error {
            let n = self.item_errors;
            let text = format!(
                "{n} item error{} in the last sweep: {}",
                if n == 1 { "" } else { "s" },
                first.as_deref().unwrap_or_default()
            );
            self.flash_msg(Level::Warn, text);
        }
        self.item_error = first;
        self.board.begin_sweep();
        for s in o.samples {
            self.board.ingest(s);
        }
        self.board.end_sweep(o.complete);
    }

    fn flash_msg(&mut self, level: Level, text: impl Into<String>) {
        self.flash = Some(Flash {
            text: text.into(),
            level,
            until_ms: self.now_ms + FLASH_MS,
        });
    }

    /// Recomputes what depends on the board, the filter or the sort, when they changed.
    fn refresh(&mut self) {
        let v = self.board.version();
        if self.counts_version != Some(v) {
            self.counts = table::counts(&self.board, &self.settings.global_thresholds);
            self.counts_version = Some(v);
        }
        if self.order_version != Some(v) {
            self.order = table::order(&self.board, &self.filter, self.sort);
            self.order_version = Some(v);
            // Follow the selected quota to its new row; if it is gone, stay on the same row.
            let row = self
                .selected
                .as_ref()
                .and_then(|id| self.board.position(id))
                .and_then(|bi| self.order.iter().position(|&i| i == bi));
            // A new filter or sort that hides the selection starts again at the top.
            let fallback = if self.reset_cursor { 0 } else { self.cursor };
            self.reset_cursor = false;
            self.select(row.unwrap_or(fallback));
        }
        self.refresh_siblings();
    }

    fn refresh_siblings(&mut self) {
        let id = match &self.view {
            View::Detail(id) => Some(id),
            View::Help(from) => match from.as_ref() {
                View::Detail(id) => Some(id),
                _ => None,
            },
            View::Quotas => None,
        };
        let Some(id) = id.cloned() else {
            self.siblings.clear();
            self.siblings_of = None;
            return;
        };
        let stamp = (id, self.board.version());
        if self.siblings_of.as_ref() == Some(&stamp) {
            return;
        }
        let entries = self.board.entries();
        let mut sib: Vec<usize> = match stamp.0.key() {
            Some(k) => (0..entries.len())
                .filter(|&i| entries[i].id != stamp.0 && entries[i].id.key() == Some(k))
                .collect(),
            None => Vec::new(),
        };
        sib.sort_by(|&a, &b| {
            let (a, b) = (&entries[a], &entries[b]);
            (a.id.scope(), &a.meta.api_name, &a.id).cmp(&(b.id.scope(), &b.meta.api_name, &b.id))
        });
        self.siblings = sib;
        self.siblings_of = Some(stamp);
    }

    fn select(&mut self, row: usize) {
        self.cursor = row.min(self.order.len().saturating_sub(1));
        self.selected = self
            .order
            .get(self.cursor)
            .and_then(|&i| self.board.entries().get(i))
            .map(|e| e.id.clone());
        self.scroll_into_view();
    }

    fn table_rows(&self) -> usize {
        super::render::table_rows(self).max(1)
    }

    fn scroll_into_view(&mut self) {
        self.offset = table::clamp_offset(
            self.offset,
            self.cursor,
            self.table_rows(),
            self.order.len(),
        );
    }

    fn invalidate_order(&mut self) {
        self.order_version = None;
        self.reset_cursor = true;
    }

    pub fn handle_key(&mut self, key: KeyEvent) -> Option<UiAction> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        let ctrl_c =
            key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl_c {
            return Some(UiAction::Quit);
        }
        let out = match self.mode {
            Mode::Filter(_) => {
                self.filter_key(key);
                None
            }
            Mode::Command(_) => self.command_key(key),
            Mode::Normal => keymap::lookup(self.view.kind(), &key).and_then(|a| self.perform(a)),
        };
        self.refresh();
        out
    }

    /// Typed text for an input line: printable characters without Ctrl/Alt.
    fn typed(key: &KeyEvent) -> Option<char> {
        match key.code {
            KeyCode::Char(c)
                if !key
                    .modifiers
                    .intersects(KeyModifiers::CONTROL | KeyModifiers::ALT)
                    && !c.is_control() =>
            {
                Some(c)
            }
            _ => None,
        }
    }

    fn filter_key(&mut self, key: KeyEvent) {
        let Mode::Filter(text) = &mut self.mode else {
            return;
        };
        match key.code {
            KeyCode::Enter => {
                let f = Filter::parse(text);
                self.mode = Mode::Normal;
                self.set_filter(f);
            }
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                self.set_filter(Filter::default());
            }
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => text.clear(),
            _ => {
                if let Some(c) = Self::typed(&key)
                    && text.chars().count() < MAX_INPUT
                {
                    text.push(c);
                }
            }
        }
    }

    fn set_filter(&mut self, f: Filter) {
        if f != self.filter {
            self.filter = f;
            self.invalidate_order();
        }
    }

    fn command_key(&mut self, key: KeyEvent) -> Option<UiAction> {
        let Mode::Command(text) = &mut self.mode else {
            return None;
        };
        match key.code {
            KeyCode::Enter => {
                let line = std::mem::take(text);
                self.mode = Mode::Normal;
                return self.run_command(&line);
            }
            KeyCode::Esc => self.mode = Mode::Normal,
            KeyCode::Tab => *text = keymap::complete(text),
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char('u') if key.modifiers.contains(KeyModifiers::CONTROL) => text.clear(),
            _ => {
                if let Some(c) = Self::typed(&key)
                    && text.chars().count() < MAX_INPUT
                {
                    text.push(c);
                }
            }
        }
        None
    }

    fn run_command(&mut self, line: &str) -> Option<UiAction> {
        if line.trim().is_empty() {
            return None;
        }
        match keymap::command(line) {
            Some(CommandKind::Quit) => Some(UiAction::Quit),
            Some(CommandKind::Help) => self.perform(Action::Help),
            Some(CommandKind::Goto(s)) => self.perform(Action::Goto(s)),
            None => {
                let word = line.split_whitespace().next().unwrap_or_default();
                let shown = super::sanitize::fit(word, 40);
                self.flash_msg(
                    Level::Error,
                    format!("unknown command :{shown} — Tab completes, :help lists the keys"),
                );
                None
            }
        }
    }

    fn perform(&mut self, action: Action) -> Option<UiAction> {
        match action {
            Action::Quit => return Some(UiAction::Quit),
            Action::PollNow => {
                self.flash_msg(Level::Info, "polling the gateway now");
                return Some(UiAction::PollNow);
            }
            Action::Help => {
                if !matches!(self.view, View::Help(_)) {
                    let from = std::mem::replace(&mut self.view, View::Quotas);
                    self.view = View::Help(Box::new(from));
                }
            }
            Action::Back => match std::mem::replace(&mut self.view, View::Quotas) {
                View::Help(from) => self.view = *from,
                View::Detail(_) => self.view = View::Quotas,
                View::Quotas => self.set_filter(Filter::default()),
            },
            Action::Filter => self.mode = Mode::Filter(self.filter.text().to_string()),
            Action::Command => self.mode = Mode::Command(String::new()),
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.table_rows() as isize)),
            Action::PageDown => self.move_by(self.table_rows() as isize),
            Action::Top => self.move_to(0),
            Action::Bottom => self.move_to(self.order.len().saturating_sub(1)),
            Action::Open => {
                if let Some(id) = &self.selected {
                    self.view = View::Detail(id.clone());
                }
            }
            Action::Sort(k) => {
                self.sort = self.sort.toggle(k);
                self.invalidate_order();
            }
            Action::Goto(Screen::Quotas) => self.view = View::Quotas,
            Action::Goto(s) => {
                self.flash_msg(Level::Warn, format!(":{} is not available yet", s.name()));
            }
        }
        None
    }

    fn move_by(&mut self, delta: isize) {
        let row = self.cursor.saturating_add_signed(delta);
        self.move_to(row);
    }

    fn move_to(&mut self, row: usize) {
        if self.order.is_empty() {
            return;
        }
        self.select(row);
        // In the detail view the arrows step through the quotas in table order.
        if let (View::Detail(_), Some(id)) = (&self.view, &self.selected) {
            self.view = View::Detail(id.clone());
        }
    }
}

#[cfg(test)]
mod tests;
