//! The console's state. It changes only through `apply_engine` (what the engine reports),
//! `apply_ui` (what the terminal loop's own helpers report: template files changed, the browser
//! opened, the organisation task answered), `handle_key` (what the user types), `tick` (time
//! passing) and `resize`; rendering reads it. I/O is asked for, never done: `UiAction`s.

use std::path::PathBuf;
use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::keymap::{self, Action, CommandKind, Screen, ViewKind};
use super::table::{Filter, Sort, SortKey};
use super::terminal::ConsoleOptions;
use crate::clock::UnixMs;
use crate::engine::{EngineEvent, Problem};
use crate::notify::feed::NotifyRequest;
use crate::quota::QuotaId;
use crate::quota::board::Board;
use crate::quota::poller::SweepOutcome;
use crate::templates::watch::Changed;
use crate::tyk::session::Hello;

mod events;
mod notifications;
mod orgs;
mod quotas;
mod templates;
mod triggers;

pub use events::{EventsPane, MAX_EVENTS, pretty_payload};
pub use notifications::{InspectState, Notifications, resendable};
pub use orgs::{
    Confirm, ConflictView, Editor, FIELDS, Listing, OrgReply, OrgRequest, OrgsPane, SaveError,
    configured,
};
pub use quotas::QuotasPane;
pub use templates::{
    Body, Focus, Preview, REAL_SAMPLES, RawLine, SampleChoice, SampleSource, TemplatesPane,
};
pub use triggers::{KeyReply, KeyRequest, Phase as TriggerPhase, TriggerEdit};

/// What the state asks of the loop around it (which does the I/O).
#[derive(Debug, Clone, PartialEq)]
pub enum UiAction {
    Quit,
    /// Ask the engine for a sweep now.
    PollNow,
    /// Ask the notifier: sent as `Command::Notify`; a full queue comes back as
    /// `UiEvent::NotSent`.
    Notify(NotifyRequest),
    /// Write the HTML to a temporary file and open it with the system opener.
    OpenHtml {
        name: String,
        html: String,
    },
    /// For the task that owns the organisation source; it answers with `UiEvent::Org`.
    Org(OrgRequest),
    /// For the task that edits sessions at the gateway; it answers with `UiEvent::Key`.
    Key(KeyRequest),
    /// Copy template `name` into `dir` where missing, suspend the console and open it (its
    /// HTML part when `html`) in the user's editor; answered by `UiEvent::Edited`.
    EditTemplate {
        name: String,
        html: bool,
        dir: PathBuf,
    },
}

/// What the terminal loop's helpers report back.
#[derive(Debug, Clone, PartialEq)]
pub enum UiEvent {
    /// Files in the user template directory changed (from the watcher).
    TemplatesChanged(Changed),
    /// The opener ran: the file it opened, or why it could not.
    Opened(Result<PathBuf, String>),
    /// A request could not be queued for the notifier.
    NotSent {
        request: NotifyRequest,
        reason: String,
    },
    /// The organisation task answered.
    Org(OrgReply),
    /// The session editor's task answered.
    Key(KeyReply),
    /// The editor closed: the file edited, or why it could not be opened.
    Edited(Result<PathBuf, String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum View {
    Quotas,
    /// The detail of one quota; pinned to its id so a re-sort does not swap it.
    Detail(QuotaId),
    Notifications,
    /// One notification, pinned to its idempotency key.
    Notification(String),
    Templates,
    Events,
    /// One received event, pinned to its row id.
    Event(i64),
    /// The organisations, the list focused.
    Orgs,
    /// The event form of the selected organisation.
    OrgForm,
    /// Help, opened from the view it returns to.
    Help(Box<View>),
}

impl View {
    pub fn kind(&self) -> ViewKind {
        match self {
            View::Quotas => ViewKind::Quotas,
            View::Detail(_) => ViewKind::Detail,
            View::Notifications => ViewKind::Notifications,
            View::Notification(_) => ViewKind::Notification,
            View::Templates => ViewKind::Templates,
            View::Events => ViewKind::Events,
            View::Event(_) => ViewKind::Event,
            View::Orgs => ViewKind::Orgs,
            View::OrgForm => ViewKind::OrgForm,
            View::Help(_) => ViewKind::Help,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PickerKind {
    /// A channel to send a test notification to.
    TestChannel,
    /// Sample data for the selected template.
    Sample,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PickItem {
    /// What choosing it hands back.
    pub id: String,
    /// Shown instead of the id, when set.
    pub label: Option<String>,
    /// Shown after the label, muted (or in the warning colour when `warn`).
    pub note: Option<String>,
    pub warn: bool,
}

/// A small list over the current view; its keys are `ViewKind::Picker`'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Picker {
    pub kind: PickerKind,
    pub title: String,
    pub items: Vec<PickItem>,
    pub cursor: usize,
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
    /// Why `m` cannot edit trigger limits (no Gateway API, e.g. the Redis source alone).
    pub edits_unavailable: Option<String>,
}

const FLASH_MS: i64 = 4_000;
const KEYMAP_WARNING_MS: i64 = 30_000;
const MAX_INPUT: usize = 256;

pub struct AppState {
    board: Board,
    settings: Settings,
    now_ms: UnixMs,
    view: View,
    mode: Mode,
    quotas: QuotasPane,
    size: (u16, u16),
    hello: Option<Result<Hello, String>>,
    last_ok: Option<SweepStamp>,
    outage: Option<Outage>,
    retry_at_ms: Option<UnixMs>,
    sweeping_since: Option<UnixMs>,
    item_errors: usize,
    item_error: Option<String>,
    flash: Option<Flash>,
    notifications: Notifications,
    templates: TemplatesPane,
    picker: Option<Picker>,
    events: EventsPane,
    orgs: OrgsPane,
    /// The detail's trigger-limit editor (`m`).
    trigger_edit: Option<TriggerEdit>,
    /// The filter before `/` was pressed: the line filters as it is typed, Esc puts this back.
    filter_before: Filter,
}

/// Shown in the Orgs view when there is no organisation source.
pub const NO_ORG_SOURCE: &str = "no organisation source: set [dashboard] url (and admin_secret, or TYK_DB_ADMIN_SECRET) to edit organisations on a Tyk Dashboard, or [orgs] dir for offline organisation files; `tykwatch --demo` shows the demo Dashboard";

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
                edits_unavailable: opts.session_edits.as_ref().err().cloned(),
            },
            now_ms,
            view: View::Quotas,
            mode: Mode::Normal,
            quotas: QuotasPane::default(),
            size: (80, 24),
            hello: None,
            last_ok: None,
            outage: None,
            retry_at_ms: None,
            sweeping_since: None,
            item_errors: 0,
            item_error: None,
            flash: None,
            notifications: Notifications::default(),
            templates: TemplatesPane::new(
                opts.config_dir.clone(),
                opts.email_from.clone(),
                opts.email_to.clone(),
                opts.org_email
                    .as_ref()
                    .map(|e| e.backend.dashboard_hostname.clone())
                    .unwrap_or_default(),
            ),
            picker: None,
            events: EventsPane::new(now_ms),
            orgs: OrgsPane::new(
                match (&opts.orgs, &opts.orgs_error) {
                    (Some(src), _) => Ok(src.label()),
                    (None, Some(e)) => Err(e.clone()),
                    (None, None) => Err(NO_ORG_SOURCE.to_string()),
                },
                opts.intake_url.clone(),
                opts.intake_secret,
            ),
            trigger_edit: None,
            filter_before: Filter::default(),
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
    pub fn quotas(&self) -> &QuotasPane {
        &self.quotas
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
    pub fn notifications(&self) -> &Notifications {
        &self.notifications
    }
    /// The highest threshold fired in the current period of `id`.
    pub fn templates(&self) -> &TemplatesPane {
        &self.templates
    }
    pub fn picker(&self) -> Option<&Picker> {
        self.picker.as_ref()
    }
    pub fn events(&self) -> &EventsPane {
        &self.events
    }
    pub fn orgs(&self) -> &OrgsPane {
        &self.orgs
    }
    fn on_orgs(&self) -> bool {
        matches!(self.view, View::Orgs | View::OrgForm)
    }
    /// The keymap view keys are looked up in: the open dialog's, else the view's.
    pub fn key_view(&self) -> ViewKind {
        if self.picker.is_some() {
            ViewKind::Picker
        } else if self.on_orgs() && self.orgs.conflict().is_some() {
            ViewKind::Conflict
        } else if self.on_orgs() && self.orgs.confirm().is_some() {
            ViewKind::Confirm
        } else if self
            .trigger_edit()
            .is_some_and(|e| matches!(e.phase, TriggerPhase::Confirm(_)))
        {
            // The hint bar shows the question's keys; the editor itself takes them.
            ViewKind::Confirm
        } else {
            self.view.kind()
        }
    }
    /// The filter of the current view (what `/` edits).
    pub fn view_filter(&self) -> &Filter {
        match self.view.kind() {
            ViewKind::Notifications | ViewKind::Notification => self.notifications.filter(),
            ViewKind::Events | ViewKind::Event => self.events.filter(),
            ViewKind::Orgs | ViewKind::OrgForm => self.orgs.filter(),
            _ => self.quotas.filter(),
        }
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
        let rows = self.table_rows();
        self.notifications.clamp(rows);
        self.events.clamp(rows);
        self.refresh_templates();
        self.refresh_events();
        self.refresh_orgs();
    }

    /// Where the user template directory is watched, or why it is not (shown in the view).
    /// Start-up problems of `keymap.toml`: the first in the footer (longer than a flash).
    pub fn keymap_problems(&mut self, problems: &[crate::config::Problem]) {
        let Some(first) = problems.first() else {
            return;
        };
        let more = match problems.len() {
            1 => String::new(),
            n => format!(" (+{} more on exit)", n - 1),
        };
        self.flash = Some(Flash {
            text: format!("{first}{more}"),
            level: Level::Warn,
            until_ms: self.now_ms + KEYMAP_WARNING_MS,
        });
    }

    pub fn set_template_watch(&mut self, w: Result<PathBuf, String>) {
        self.templates.set_watch(w);
    }

    pub fn apply_ui(&mut self, ev: UiEvent) {
        match ev {
            UiEvent::TemplatesChanged(c) => {
                if let Some(text) = self.templates.changed(&c)
                    && self.view == View::Templates
                {
                    self.flash_msg(Level::Info, text);
                }
            }
            UiEvent::Opened(Ok(path)) => {
                let shown = super::sanitize::fit(&path.display().to_string(), 120);
                self.flash_msg(Level::Info, format!("opened {shown}"));
            }
            UiEvent::Opened(Err(e)) => self.flash_msg(Level::Error, e),
            UiEvent::NotSent { request, reason } => {
                if let NotifyRequest::Inspect(k) = &request {
                    self.notifications.inspect_failed(k, reason.clone());
                }
                self.flash_msg(Level::Warn, reason);
            }
            UiEvent::Org(reply) => self.org_reply(reply),
            UiEvent::Key(reply) => self.key_reply(reply),
            UiEvent::Edited(Ok(path)) => {
                let shown = super::sanitize::fit(&path.display().to_string(), 100);
                self.flash_msg(Level::Info, format!("edited {shown}"));
            }
            UiEvent::Edited(Err(e)) => self.flash_msg(Level::Error, e),
        }
        self.refresh();
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
            EngineEvent::Outbox(snap) => {
                let rows = self.table_rows();
                self.templates.outbox(&snap.items);
                self.notifications.ingest(*snap, rows);
            }
            // The complete set: a renewal removes a quota's mark.
            EngineEvent::Fired(marks) => {
                self.quotas.set_fired(marks);
            }
            EngineEvent::Inspected(ins) => self.notifications.inspected(*ins),
            EngineEvent::OutboxPage(items) => {
                let rows = self.table_rows();
                self.notifications.page_loaded(items, rows);
            }
            EngineEvent::Notice { text, error } => {
                let level = if error { Level::Error } else { Level::Info };
                self.flash_msg(level, text);
            }
            EngineEvent::Received(rows) => {
                let n = self.table_rows();
                self.templates.received(&rows);
                self.events.ingest(rows, n);
            }
            EngineEvent::Problem { kind, message } => {
                let text = match kind {
                    Problem::Delivery => format!("delivery: {message}"),
                    Problem::Routing | Problem::Store => message,
                };
                self.flash_msg(Level::Error, text);
            }
            // The Fired marks and the outbox snapshot that follow show these.
            // The outbox snapshot that follows shows each outcome.
            EngineEvent::Crossed(_)
            | EngineEvent::IntakeRejected { .. }
            | EngineEvent::Delivered(_)
            | EngineEvent::Purged(_) => {}
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
        self.board.ingest_sweep(o.samples, o.complete);
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
        let rows = self.table_rows();
        let thresholds = &self.settings.global_thresholds;
        self.quotas.refresh(&self.board, thresholds, rows);
        self.refresh_siblings();
        self.refresh_templates();
        self.refresh_events();
        self.refresh_orgs();
    }

    /// The template preview is rendered here, on a change, never while drawing.
    fn refresh_templates(&mut self) {
        let on_templates = match &self.view {
            View::Templates => true,
            View::Help(from) => **from == View::Templates,
            _ => false,
        };
        if on_templates {
            self.templates.ensure_loaded();
            let g = super::layout::templates_geometry(self);
            self.templates
                .refresh(g.body_width, g.list_rows, self.now_ms);
        }
    }

    fn refresh_siblings(&mut self) {
        let id = match &self.view {
            View::Detail(id) => Some(id),
            View::Help(from) => match from.as_ref() {
                View::Detail(id) => Some(id),
                _ => None,
            },
            _ => None,
        };
        self.quotas.refresh_siblings(&self.board, id);
    }

    fn table_rows(&self) -> usize {
        super::layout::table_rows(self).max(1)
    }

    fn scroll_into_view(&mut self) {
        let rows = self.table_rows();
        self.quotas.clamp(rows);
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
            // The field editor takes every key (a URL may contain `q`, `/` or digits).
            Mode::Normal if self.on_orgs() && self.orgs.editor().is_some() => self.editor_key(key),
            // So does the trigger-limit editor.
            Mode::Normal if self.trigger_edit().is_some() => self.trigger_key(key),
            Mode::Normal => {
                let view = self.key_view();
                keymap::lookup(view, &key).and_then(|a| match view {
                    ViewKind::Picker => self.picker_action(a),
                    ViewKind::Confirm => self.confirm_action(a),
                    ViewKind::Conflict => self.conflict_action(a),
                    _ => self.perform(a),
                })
            }
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

    /// The `/` line filters as it is typed (k9s); Enter keeps the filter, Esc restores the one
    /// before `/`.
    fn filter_key(&mut self, key: KeyEvent) {
        let Mode::Filter(text) = &mut self.mode else {
            return;
        };
        match key.code {
            KeyCode::Enter => {
                let f = Filter::parse(text);
                self.mode = Mode::Normal;
                self.set_filter(f);
                return;
            }
            KeyCode::Esc => {
                self.mode = Mode::Normal;
                let before = std::mem::take(&mut self.filter_before);
                self.set_filter(before);
                return;
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
        let f = Filter::parse(text);
        self.set_filter(f);
    }

    fn set_filter(&mut self, f: Filter) {
        let rows = self.table_rows();
        match self.view {
            View::Notifications | View::Notification(_) => {
                self.notifications.set_filter(f, rows);
                return;
            }
            View::Events | View::Event(_) => {
                self.events.set_filter(f, rows);
                return;
            }
            View::Orgs | View::OrgForm => {
                let g = super::layout::orgs_geometry(self);
                self.orgs.set_filter(f, g.list_rows);
                return;
            }
            _ => {}
        }
        self.quotas.set_filter(f);
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
            Some(CommandKind::Sort) => {
                self.sort_command(line);
                None
            }
            Some(CommandKind::Filter) => {
                // Everything after the word, as typed: `:filter !Orders API`.
                let arg = line.trim_start().split_once(char::is_whitespace);
                let arg = arg.map_or("", |(_, rest)| rest);
                self.set_filter(Filter::parse(arg));
                None
            }
            Some(CommandKind::Goto(s)) => {
                let out = self.perform(Action::Goto(s));
                // `:orgs acme`, `:events /key_request` (k9s): the rest filters the view.
                let rest: Vec<&str> = line.split_whitespace().skip(1).collect();
                let arg = rest.join(" ");
                let arg = arg.trim_start_matches('/');
                if !arg.is_empty() && s != Screen::Templates {
                    self.set_filter(Filter::parse(arg));
                }
                out
            }
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

    /// `:sort COLUMN [asc|desc]`: the Quotas table (shown if another view was), by a column's
    /// header; without a direction, as the column's key would (again: reversed).
    fn sort_command(&mut self, line: &str) {
        let mut words = line.split_whitespace().skip(1);
        let columns = || {
            let names: Vec<&str> = SortKey::ALL.iter().map(|k| k.name()).collect();
            names.join(", ")
        };
        let Some(word) = words.next() else {
            let msg = format!(":sort needs a column: {}", columns());
            self.flash_msg(Level::Error, msg);
            return;
        };
        let Some(key) = SortKey::parse(word) else {
            let shown = super::sanitize::fit(word, 30);
            let msg = format!("unknown column {shown} — :sort takes {}", columns());
            self.flash_msg(Level::Error, msg);
            return;
        };
        let sort = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None => self.quotas.sort().toggle(key),
            Some("asc") => Sort {
                key,
                descending: false,
            },
            Some("desc") => Sort {
                key,
                descending: true,
            },
            Some(other) => {
                let shown = super::sanitize::fit(other, 20);
                let msg = format!("unknown direction {shown} — :sort {} asc|desc", key.name());
                self.flash_msg(Level::Error, msg);
                return;
            }
        };
        if !matches!(self.view, View::Quotas | View::Detail(_)) {
            self.perform(Action::Goto(Screen::Quotas));
        }
        self.quotas.set_sort(sort);
    }

    fn perform(&mut self, action: Action) -> Option<UiAction> {
        match &self.view {
            View::Notifications | View::Notification(_) => {
                if let Some(out) = self.notifications_action(action) {
                    return out;
                }
            }
            View::Templates => {
                if let Some(out) = self.templates_action(action) {
                    return out;
                }
            }
            View::Events | View::Event(_) => {
                if let Some(out) = self.events_action(action) {
                    return out;
                }
            }
            View::Orgs | View::OrgForm => {
                if let Some(out) = self.orgs_action(action) {
                    return out;
                }
            }
            _ => {}
        }
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
                View::Detail(_) => {
                    self.trigger_edit = None;
                    self.view = View::Quotas;
                }
                View::Quotas => self.set_filter(Filter::default()),
                // Handled by their own views above.
                other @ (View::Notifications
                | View::Notification(_)
                | View::Templates
                | View::Events
                | View::Event(_)
                | View::Orgs
                | View::OrgForm) => self.view = other,
            },
            Action::Filter => {
                self.filter_before = self.view_filter().clone();
                self.mode = Mode::Filter(self.view_filter().text().to_string());
            }
            Action::Command => self.mode = Mode::Command(String::new()),
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(self.table_rows() as isize)),
            Action::PageDown => self.move_by(self.table_rows() as isize),
            Action::Top => self.move_to(0),
            Action::Bottom => self.move_to(self.quotas.order().len().saturating_sub(1)),
            Action::Open => {
                if let Some(id) = self.quotas.selected() {
                    self.view = View::Detail(id.clone());
                }
            }
            Action::Sort(k) => {
                self.quotas.set_sort(self.quotas.sort().toggle(k));
            }
            Action::EditTriggers => self.open_trigger_edit(),
            Action::Goto(Screen::Quotas) => self.view = View::Quotas,
            Action::Goto(Screen::Notifications) => self.view = View::Notifications,
            Action::Goto(Screen::Templates) => self.view = View::Templates,
            Action::Goto(Screen::Events) => self.view = View::Events,
            Action::Goto(Screen::Orgs) => {
                self.view = View::Orgs;
                // The first visit loads the list; later ones show what was loaded (r reloads).
                if self.orgs.needs_list() {
                    return self.orgs.request_list().map(UiAction::Org);
                }
            }
            // Bound only in the views and dialogs handled above.
            Action::FocusNext
            | Action::PrevSample
            | Action::NextSample
            | Action::PickSample
            | Action::TogglePart
            | Action::ToggleRaw
            | Action::OpenExternal
            | Action::Resend
            | Action::TestSend
            | Action::Left
            | Action::Right
            | Action::Edit
            | Action::Revert
            | Action::Save
            | Action::Reload
            | Action::PointIntake
            | Action::EditTemplate
            | Action::Yes => {}
        }
        None
    }

    fn picker_action(&mut self, action: Action) -> Option<UiAction> {
        let p = self.picker.as_mut()?;
        match action {
            Action::Up => p.cursor = p.cursor.saturating_sub(1),
            Action::Down => p.cursor = (p.cursor + 1).min(p.items.len().saturating_sub(1)),
            Action::Back => self.picker = None,
            Action::Open => {
                let p = self.picker.take()?;
                let id = p.items.get(p.cursor)?.id.clone();
                match p.kind {
                    PickerKind::Sample => {
                        if !self.templates.choose_sample(&id) {
                            self.flash_msg(Level::Warn, "that sample is no longer available");
                        }
                    }
                    PickerKind::TestChannel => {
                        let shown = super::sanitize::fit(&id, 60);
                        self.flash_msg(
                            Level::Info,
                            format!("test notification requested: {shown}"),
                        );
                        return match id.parse() {
                            Ok(channel) => Some(UiAction::Notify(NotifyRequest::Test(channel))),
                            Err(e) => {
                                self.flash_msg(Level::Error, e.to_string());
                                None
                            }
                        };
                    }
                }
            }
            _ => {}
        }
        None
    }

    fn move_by(&mut self, delta: isize) {
        let row = self.quotas.step(delta);
        self.move_to(row);
    }

    fn move_to(&mut self, row: usize) {
        if self.quotas.order().is_empty() {
            return;
        }
        let rows = self.table_rows();
        self.quotas.select(&self.board, row, rows);
        // In the detail view the arrows step through the quotas in table order.
        if let (View::Detail(_), Some(id)) = (&self.view, self.quotas.selected()) {
            self.view = View::Detail(id.clone());
        }
    }
}

#[cfg(test)]
mod samples_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod triggers_tests;
#[cfg(test)]
mod views_tests;
