//! The one keymap: key handling looks actions up here and the `?` help and the hint bar are
//! generated from it, so they cannot drift apart.

use std::path::Path;
use std::sync::OnceLock;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::table::SortKey;
use crate::config::Problem;

/// Which screen a binding applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViewKind {
    Quotas,
    Detail,
    Notifications,
    /// One notification with its exact request.
    Notification,
    Templates,
    /// Events received on `[intake]`.
    Events,
    /// One received event with its payload.
    Event,
    /// The organisations (list focused).
    Orgs,
    /// The event form of the selected organisation.
    OrgForm,
    /// A small list over the view (test channel, sample data).
    Picker,
    /// A yes/no question over the Orgs view (save, reload).
    Confirm,
    /// A save refused because the document changed at the source.
    Conflict,
    Help,
}

impl ViewKind {
    pub const ALL: [ViewKind; 13] = [
        ViewKind::Quotas,
        ViewKind::Detail,
        ViewKind::Notifications,
        ViewKind::Notification,
        ViewKind::Templates,
        ViewKind::Events,
        ViewKind::Event,
        ViewKind::Orgs,
        ViewKind::OrgForm,
        ViewKind::Picker,
        ViewKind::Confirm,
        ViewKind::Conflict,
        ViewKind::Help,
    ];
}

/// The console's views, reached by `1`–`5` and `:name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Screen {
    Quotas,
    Notifications,
    Events,
    Orgs,
    Templates,
}

impl Screen {
    pub fn name(self) -> &'static str {
        match self {
            Screen::Quotas => "quotas",
            Screen::Notifications => "notifications",
            Screen::Events => "events",
            Screen::Orgs => "orgs",
            Screen::Templates => "templates",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    Quit,
    PollNow,
    Help,
    Back,
    Filter,
    Command,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Sort(SortKey),
    Goto(Screen),
    /// Templates: list ↔ preview.
    FocusNext,
    PrevSample,
    NextSample,
    PickSample,
    /// Templates: the text or the HTML version.
    TogglePart,
    /// Templates: the HTML source instead of its terminal rendering.
    ToggleRaw,
    /// Templates: the HTML in the system's browser.
    OpenExternal,
    /// Notifications: a failed or dead row back to pending.
    Resend,
    /// Notifications: the channel picker for a test notification; Orgs: a test of the event.
    TestSend,
    /// Orgs form: the previous / next field of the event.
    Left,
    Right,
    /// Orgs form: edit the field (the redis flag toggles).
    Edit,
    /// Orgs form: the field back to its loaded value.
    Revert,
    /// Orgs: review the pending changes, then save.
    Save,
    /// Orgs: load the organisations again (pending changes are dropped, after a question).
    Reload,
    /// Orgs form: the event's webhook to this tykwatch's intake.
    PointIntake,
    /// Answers yes to the question shown.
    Yes,
    /// Quota detail: edit the key's (or org's) `monitor.trigger_limits` at the gateway.
    EditTriggers,
    /// Templates: the selected template in `$VISUAL`/`$EDITOR` (copied to the user dir first).
    EditTemplate,
}

/// Sections of the help screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    General,
    Navigation,
    Actions,
    Sort,
    Views,
}

impl Group {
    pub const ALL: [Group; 5] = [
        Group::General,
        Group::Navigation,
        Group::Actions,
        Group::Sort,
        Group::Views,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Group::General => "General",
            Group::Navigation => "Navigation",
            Group::Actions => "Actions",
            Group::Sort => "Sort (again: reverse)",
            Group::Views => "Views",
        }
    }
}

/// One key: a code, optionally with Ctrl. Letters are case-sensitive (`U` is Shift-U).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
}

const fn ch(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: false,
    }
}

const fn ctrl(c: char) -> Key {
    Key {
        code: KeyCode::Char(c),
        ctrl: true,
    }
}

const fn code(code: KeyCode) -> Key {
    Key { code, ctrl: false }
}

impl Key {
    pub fn matches(&self, ev: &KeyEvent) -> bool {
        if ev.modifiers.contains(KeyModifiers::ALT) {
            return false;
        }
        if ev.modifiers.contains(KeyModifiers::CONTROL) != self.ctrl {
            return false;
        }
        match (self.code, ev.code) {
            // Terminals differ on whether Shift-u arrives as 'U' or as 'u' + SHIFT.
            (KeyCode::Char(want), KeyCode::Char(got)) => {
                let got = if ev.modifiers.contains(KeyModifiers::SHIFT) {
                    got.to_ascii_uppercase()
                } else {
                    got
                };
                if self.ctrl {
                    want.eq_ignore_ascii_case(&got)
                } else {
                    want == got
                }
            }
            (KeyCode::BackTab, KeyCode::BackTab) => true,
            (want, got) => want == got,
        }
    }

    /// How the help writes the key: "q", "Shift-U", "Ctrl-R", "↑", "PgDn".
    pub fn label(&self) -> String {
        match self.code {
            KeyCode::Char(c) if self.ctrl => format!("Ctrl-{}", c.to_ascii_uppercase()),
            KeyCode::Char(c) if c.is_ascii_uppercase() => format!("Shift-{c}"),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::Home => "Home".into(),
            KeyCode::End => "End".into(),
            KeyCode::Enter => "Enter".into(),
            KeyCode::Esc => "Esc".into(),
            KeyCode::Tab => "Tab".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            other => format!("{other:?}"),
        }
    }
}

pub struct Binding {
    pub keys: &'static [Key],
    pub action: Action,
    pub description: &'static str,
    /// Shown in the hint bar of these views, with this short text.
    pub hint: Option<&'static str>,
    pub views: &'static [ViewKind],
    pub group: Group,
}

impl Binding {
    pub fn applies_to(&self, view: ViewKind) -> bool {
        self.views.contains(&view)
    }

    pub fn keys_label(&self) -> String {
        keys_label(self.keys)
    }
}

/// "j ↓", as the help lists a binding's keys.
pub fn keys_label(keys: &[Key]) -> String {
    keys.iter().map(Key::label).collect::<Vec<_>>().join(" ")
}

use ViewKind as V;

/// Every view but the dialogs (picker, question, conflict), whose keys are their own.
const ALL: &[ViewKind] = &[
    V::Quotas,
    V::Detail,
    V::Notifications,
    V::Notification,
    V::Templates,
    V::Events,
    V::Event,
    V::Orgs,
    V::OrgForm,
    V::Help,
];
const BROWSE: &[ViewKind] = &[
    V::Quotas,
    V::Detail,
    V::Notifications,
    V::Notification,
    V::Templates,
    V::Events,
    V::Event,
    V::Orgs,
    V::OrgForm,
];
const QUOTAS: &[ViewKind] = &[V::Quotas];
const TABLES: &[ViewKind] = &[V::Quotas, V::Notifications, V::Events, V::Orgs];
const NOTIFY: &[ViewKind] = &[V::Notifications, V::Notification];
const TEMPLATES: &[ViewKind] = &[V::Templates];
const ORGS: &[ViewKind] = &[V::Orgs, V::OrgForm];
const FORM: &[ViewKind] = &[V::OrgForm];
const PICKER: &[ViewKind] = &[V::Picker];
const CONFIRM: &[ViewKind] = &[V::Confirm];
const CONFLICT: &[ViewKind] = &[V::Conflict];
const BACK: &[ViewKind] = &[V::Detail, V::Notification, V::Event, V::OrgForm, V::Help];
/// Lists and scrolled panes: the Quotas detail steps through quotas instead.
const PAGED: &[ViewKind] = &[
    V::Quotas,
    V::Notifications,
    V::Notification,
    V::Templates,
    V::Events,
    V::Event,
    V::Orgs,
    V::OrgForm,
];

macro_rules! bind {
    ($group:ident, [$($key:expr),+], $action:expr, $views:expr, $desc:literal $(, hint $hint:literal)?) => {
        Binding {
            keys: &[$($key),+],
            action: $action,
            description: $desc,
            hint: bind!(@hint $($hint)?),
            views: $views,
            group: Group::$group,
        }
    };
    (@hint $h:literal) => { Some($h) };
    (@hint) => { None };
}

pub static KEYMAP: &[Binding] = &[
    bind!(General, [ch('?')], Action::Help, BROWSE, "help", hint "help"),
    bind!(General, [ch('/')], Action::Filter, TABLES, "filter (/!text inverts)", hint "filter"),
    bind!(General, [ch(':')], Action::Command, ALL, "command (Tab completes)", hint "cmd"),
    bind!(General, [code(KeyCode::Enter)], Action::Open, QUOTAS, "quota detail", hint "detail"),
    bind!(
        General,
        [code(KeyCode::Enter)],
        Action::Open,
        &[V::Notifications],
        "detail (exact request)",
        hint "detail"
    ),
    bind!(
        General,
        [code(KeyCode::Enter)],
        Action::Open,
        &[V::Events],
        "detail (payload)",
        hint "detail"
    ),
    bind!(
        General,
        [code(KeyCode::Enter)],
        Action::Open,
        &[V::Orgs],
        "edit event settings",
        hint "edit"
    ),
    bind!(General, [code(KeyCode::Enter)], Action::Open, PICKER, "choose", hint "choose"),
    bind!(
        General,
        [code(KeyCode::Esc)],
        Action::Back,
        TABLES,
        "clear the filter"
    ),
    bind!(
        General,
        [code(KeyCode::Esc)],
        Action::Back,
        TEMPLATES,
        "back to the list"
    ),
    bind!(General, [code(KeyCode::Esc)], Action::Back, BACK, "back", hint "back"),
    bind!(General, [code(KeyCode::Esc)], Action::Back, PICKER, "close", hint "close"),
    bind!(General, [ch('y')], Action::Yes, CONFIRM, "yes", hint "yes"),
    bind!(General, [ch('n'), code(KeyCode::Esc)], Action::Back, CONFIRM, "no", hint "no"),
    bind!(
        General,
        [ch('r')],
        Action::Reload,
        CONFLICT,
        "reload (drops your changes)",
        hint "reload"
    ),
    bind!(
        General,
        [code(KeyCode::Esc)],
        Action::Back,
        CONFLICT,
        "cancel (keeps your changes, unsaved)",
        hint "cancel"
    ),
    bind!(
        General,
        [ch('r'), ctrl('r')],
        Action::PollNow,
        &[V::Quotas, V::Detail],
        "poll now",
        hint "poll"
    ),
    // `r` resends in the Notifications views and reloads in the Orgs views.
    bind!(
        General,
        [ctrl('r')],
        Action::PollNow,
        &[
            V::Notifications,
            V::Notification,
            V::Templates,
            V::Events,
            V::Event
        ],
        "poll now"
    ),
    bind!(General, [ch('q'), ctrl('c')], Action::Quit, ALL, "quit", hint "quit"),
    bind!(
        Actions,
        [ch('m')],
        Action::EditTriggers,
        &[V::Detail],
        "edit the monitor's trigger limits (at the gateway, quota kept)",
        hint "monitor"
    ),
    bind!(
        Navigation,
        [ch('k'), code(KeyCode::Up)],
        Action::Up,
        &[V::Quotas, V::Detail],
        "up (detail: previous)"
    ),
    bind!(
        Navigation,
        [ch('j'), code(KeyCode::Down)],
        Action::Down,
        &[V::Quotas, V::Detail],
        "down (detail: next)"
    ),
    bind!(
        Navigation,
        [ch('k'), code(KeyCode::Up)],
        Action::Up,
        &[V::Notifications, V::Events, V::Orgs, V::Picker],
        "up"
    ),
    bind!(
        Navigation,
        [ch('j'), code(KeyCode::Down)],
        Action::Down,
        &[V::Notifications, V::Events, V::Orgs, V::Picker],
        "down"
    ),
    bind!(
        Navigation,
        [ch('k'), code(KeyCode::Up)],
        Action::Up,
        &[V::Notification, V::Event],
        "scroll up"
    ),
    bind!(
        Navigation,
        [ch('j'), code(KeyCode::Down)],
        Action::Down,
        &[V::Notification, V::Event],
        "scroll down"
    ),
    bind!(
        Navigation,
        [ch('k'), code(KeyCode::Up)],
        Action::Up,
        FORM,
        "previous event"
    ),
    bind!(
        Navigation,
        [ch('j'), code(KeyCode::Down)],
        Action::Down,
        FORM,
        "next event"
    ),
    bind!(
        Navigation,
        [ch('h'), code(KeyCode::Left)],
        Action::Left,
        FORM,
        "previous field"
    ),
    bind!(
        Navigation,
        [ch('l'), code(KeyCode::Right)],
        Action::Right,
        FORM,
        "next field"
    ),
    bind!(
        Navigation,
        [ch('k'), code(KeyCode::Up)],
        Action::Up,
        TEMPLATES,
        "up (preview: scroll)"
    ),
    bind!(
        Navigation,
        [ch('j'), code(KeyCode::Down)],
        Action::Down,
        TEMPLATES,
        "down (preview: scroll)"
    ),
    bind!(
        Navigation,
        [code(KeyCode::PageUp), ctrl('b')],
        Action::PageUp,
        PAGED,
        "page up"
    ),
    bind!(
        Navigation,
        [code(KeyCode::PageDown), ctrl('f')],
        Action::PageDown,
        PAGED,
        "page down"
    ),
    bind!(
        Navigation,
        [ch('g'), code(KeyCode::Home)],
        Action::Top,
        PAGED,
        "first row"
    ),
    bind!(
        Navigation,
        [ch('G'), code(KeyCode::End)],
        Action::Bottom,
        PAGED,
        "last row"
    ),
    bind!(
        Navigation,
        [code(KeyCode::Tab), code(KeyCode::BackTab)],
        Action::FocusNext,
        TEMPLATES,
        "focus: list ↔ preview",
        hint "focus"
    ),
    bind!(
        Navigation,
        [code(KeyCode::Tab), code(KeyCode::BackTab)],
        Action::FocusNext,
        ORGS,
        "focus: orgs ↔ form",
        hint "focus"
    ),
    bind!(
        Actions,
        [ch('r')],
        Action::Resend,
        NOTIFY,
        "resend (failed or dead)",
        hint "resend"
    ),
    bind!(
        Actions,
        [ch('t')],
        Action::TestSend,
        &[V::Notifications],
        "send a test notification",
        hint "test"
    ),
    bind!(
        Actions,
        [code(KeyCode::Enter)],
        Action::Edit,
        FORM,
        "edit (redis: toggle)",
        hint "edit"
    ),
    bind!(
        Actions,
        [ch('s')],
        Action::Save,
        ORGS,
        "review changes, save",
        hint "save"
    ),
    bind!(
        Actions,
        [ch('u')],
        Action::Revert,
        FORM,
        "undo the field's edit"
    ),
    bind!(
        Actions,
        [ch('t')],
        Action::TestSend,
        FORM,
        "test: sample event+mail",
        hint "test"
    ),
    bind!(
        Actions,
        [ch('w')],
        Action::PointIntake,
        FORM,
        "webhook → our intake",
        hint "intake"
    ),
    bind!(
        Actions,
        [ch('r'), ctrl('r')],
        Action::Reload,
        ORGS,
        "reload from the source",
        hint "reload"
    ),
    bind!(
        Actions,
        [ch('s')],
        Action::PickSample,
        TEMPLATES,
        "choose the sample data",
        hint "sample"
    ),
    bind!(
        Actions,
        [ch(']')],
        Action::NextSample,
        TEMPLATES,
        "next sample"
    ),
    bind!(
        Actions,
        [ch('[')],
        Action::PrevSample,
        TEMPLATES,
        "previous sample"
    ),
    bind!(
        Actions,
        [ch('p')],
        Action::TogglePart,
        TEMPLATES,
        "HTML ↔ text version",
        hint "html/text"
    ),
    bind!(
        Actions,
        [ch('v')],
        Action::ToggleRaw,
        TEMPLATES,
        "raw HTML source",
        hint "raw"
    ),
    bind!(
        Actions,
        [ch('o')],
        Action::OpenExternal,
        TEMPLATES,
        "open the HTML in the browser",
        hint "open"
    ),
    bind!(
        Actions,
        [ch('e')],
        Action::EditTemplate,
        TEMPLATES,
        "edit in $VISUAL / $EDITOR (the shipped one is copied to your templates first)",
        hint "edit"
    ),
    bind!(Sort, [ch('U')], Action::Sort(SortKey::Used), QUOTAS, "% used (default)", hint "sort"),
    bind!(Sort, [ch('N')], Action::Sort(SortKey::Name), QUOTAS, "name"),
    bind!(Sort, [ch('O')], Action::Sort(SortKey::Org), QUOTAS, "org"),
    bind!(
        Sort,
        [ch('R')],
        Action::Sort(SortKey::Remaining),
        QUOTAS,
        "remaining"
    ),
    bind!(
        Sort,
        [ch('T')],
        Action::Sort(SortKey::Eta),
        QUOTAS,
        "time to exhaustion"
    ),
    bind!(
        Sort,
        [ch('W')],
        Action::Sort(SortKey::Renews),
        QUOTAS,
        "renews in"
    ),
    bind!(
        Sort,
        [ch('S')],
        Action::Sort(SortKey::Scope),
        QUOTAS,
        "scope"
    ),
    bind!(
        Sort,
        [ch('A')],
        Action::Sort(SortKey::Rate),
        QUOTAS,
        "rate (req/min)"
    ),
    bind!(
        Views,
        [ch('1')],
        Action::Goto(Screen::Quotas),
        ALL,
        "quotas"
    ),
    bind!(
        Views,
        [ch('2')],
        Action::Goto(Screen::Notifications),
        ALL,
        "notifications"
    ),
    bind!(
        Views,
        [ch('3')],
        Action::Goto(Screen::Events),
        ALL,
        "events"
    ),
    bind!(
        Views,
        [ch('4')],
        Action::Goto(Screen::Orgs),
        ALL,
        "orgs (event settings)"
    ),
    bind!(
        Views,
        [ch('5')],
        Action::Goto(Screen::Templates),
        ALL,
        "templates (preview)"
    ),
];

/// The action of `ev` in `view`, if any, in the keymap in use.
pub fn lookup(view: ViewKind, ev: &KeyEvent) -> Option<Action> {
    active().lookup(view, ev)
}

/// `KEYMAP` with a user's `keymap.toml` applied: the keys of each binding, by position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    keys: Vec<Vec<Key>>,
}

impl Default for Keymap {
    fn default() -> Self {
        Keymap {
            keys: KEYMAP.iter().map(|b| b.keys.to_vec()).collect(),
        }
    }
}

static ACTIVE: OnceLock<Keymap> = OnceLock::new();

/// The keymap the console uses: the one `install`ed at start-up, else the builtin one.
pub fn active() -> &'static Keymap {
    ACTIVE.get_or_init(Keymap::default)
}

/// Makes `k` the keymap of this process (once, before the console starts).
pub fn install(k: Keymap) {
    let _ = ACTIVE.set(k);
}

/// The name `keymap.toml` gives an action: its variant in snake case, with the argument
/// (`poll_now`, `sort_name`, `goto_orgs`). Derived, so a new `Action` needs no entry here.
pub fn action_name(a: Action) -> String {
    let mut out = String::new();
    for c in format!("{a:?}").chars() {
        match c {
            '(' => out.push('_'),
            ')' => {}
            c if c.is_ascii_uppercase() => {
                if !out.is_empty() && !out.ends_with('_') {
                    out.push('_');
                }
                out.push(c.to_ascii_lowercase());
            }
            c => out.push(c),
        }
    }
    out
}

/// A key as `keymap.toml` writes it: one character (`q`, `U`, `?`), `ctrl-r`, or a name
/// (`enter`, `esc`, `tab`, `backtab`, `up`, `down`, `left`, `right`, `pgup`, `pgdn`, `home`,
/// `end`, `space`).
pub fn parse_key(text: &str) -> Option<Key> {
    let t = text.trim();
    let mut chars = t.chars();
    if let (Some(c), None) = (chars.next(), chars.next()) {
        return (!c.is_control()).then_some(ch(c));
    }
    let lower = t.to_ascii_lowercase();
    if let Some(rest) = lower
        .strip_prefix("ctrl-")
        .or_else(|| lower.strip_prefix("ctrl+"))
    {
        let mut cs = rest.chars();
        return match (cs.next(), cs.next()) {
            (Some(c), None) if c.is_ascii_alphabetic() => Some(ctrl(c)),
            _ => None,
        };
    }
    if let Some(rest) = lower.strip_prefix("shift-") {
        let mut cs = rest.chars();
        return match (cs.next(), cs.next()) {
            (Some(c), None) if c.is_ascii_alphabetic() => Some(ch(c.to_ascii_uppercase())),
            _ if rest == "tab" => Some(code(KeyCode::BackTab)),
            _ => None,
        };
    }
    let k = match lower.as_str() {
        "enter" | "return" => KeyCode::Enter,
        "esc" | "escape" => KeyCode::Esc,
        "tab" => KeyCode::Tab,
        "backtab" => KeyCode::BackTab,
        "up" => KeyCode::Up,
        "down" => KeyCode::Down,
        "left" => KeyCode::Left,
        "right" => KeyCode::Right,
        "pgup" | "pageup" => KeyCode::PageUp,
        "pgdn" | "pagedown" => KeyCode::PageDown,
        "home" => KeyCode::Home,
        "end" => KeyCode::End,
        "space" => KeyCode::Char(' '),
        _ => return None,
    };
    Some(code(k))
}

impl Keymap {
    /// Each binding with its keys, in `KEYMAP` order.
    pub fn bindings(&self) -> impl Iterator<Item = (&'static Binding, &[Key])> + Clone + '_ {
        KEYMAP.iter().zip(self.keys.iter().map(Vec::as_slice))
    }

    pub fn lookup(&self, view: ViewKind, ev: &KeyEvent) -> Option<Action> {
        self.bindings()
            .find(|(b, keys)| b.applies_to(view) && keys.iter().any(|k| k.matches(ev)))
            .map(|(b, _)| b.action)
    }

    /// `<config_dir>/keymap.toml` if it exists, else the builtin keymap. The console always
    /// starts: an entry that cannot be used (unknown action or key, a key two actions of one
    /// view would share) keeps that action's builtin keys and is reported.
    pub fn load(config_dir: Option<&Path>) -> (Keymap, Vec<Problem>) {
        let Some(path) = config_dir.map(|d| d.join("keymap.toml")) else {
            return (Keymap::default(), Vec::new());
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Keymap::parse(&text, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (Keymap::default(), Vec::new()),
            Err(e) => {
                let problem = Problem {
                    origin: path.display().to_string(),
                    line_col: None,
                    key: None,
                    message: format!("cannot read the keymap, using the builtin keys: {e}"),
                };
                (Keymap::default(), vec![problem])
            }
        }
    }

    /// `action = "key"` or `action = ["key", …]`, at the top level or under `[keys]`.
    pub fn parse(text: &str, origin: &str) -> (Keymap, Vec<Problem>) {
        use toml::de::{DeTable, DeValue};
        let at = |offset: usize, key: Option<&str>, message: String| Problem {
            origin: origin.to_owned(),
            line_col: Some(crate::config::line_col(text, offset)),
            key: key.map(str::to_owned),
            message,
        };
        let mut problems = Vec::new();
        let doc = match DeTable::parse(text) {
            Ok(d) => d,
            Err(e) => {
                let offset = e.span().map_or(0, |s| s.start);
                let msg = format!("invalid TOML, using the builtin keys: {}", e.message());
                return (Keymap::default(), vec![at(offset, None, msg)]);
            }
        };
        let mut entries: Vec<(String, usize, &DeValue)> = Vec::new();
        for (k, v) in doc.get_ref().iter() {
            match v.get_ref() {
                DeValue::Table(t) if k.get_ref() == "keys" => {
                    for (k2, v2) in t.iter() {
                        entries.push((k2.get_ref().to_string(), k2.span().start, v2.get_ref()));
                    }
                }
                value => entries.push((k.get_ref().to_string(), k.span().start, value)),
            }
        }
        entries.sort_by_key(|e| e.1);
        let names: Vec<(String, Action)> = {
            let mut seen: Vec<(String, Action)> = Vec::new();
            for b in KEYMAP {
                if !seen.iter().any(|(_, a)| *a == b.action) {
                    seen.push((action_name(b.action), b.action));
                }
            }
            seen
        };
        let mut km = Keymap::default();
        // (action, keys, offset): applied together, so two actions may swap keys.
        let mut wanted: Vec<(Action, Vec<Key>, usize)> = Vec::new();
        for (name, offset, value) in entries {
            let Some(action) = names.iter().find(|(n, _)| *n == name).map(|(_, a)| *a) else {
                let known: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
                let msg = format!("unknown action (one of {})", known.join(", "));
                problems.push(at(offset, Some(&name), msg));
                continue;
            };
            let texts: Vec<&str> = match value {
                DeValue::String(s) => vec![s.as_ref()],
                DeValue::Array(a) => a
                    .iter()
                    .filter_map(|v| match v.get_ref() {
                        DeValue::String(s) => Some(s.as_ref()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            if texts.is_empty() {
                let msg = "expected a key such as \"n\" or \"ctrl-r\", or a list of them";
                problems.push(at(offset, Some(&name), msg.to_owned()));
                continue;
            }
            let mut keys = Vec::new();
            let mut bad = None;
            for t in texts {
                match parse_key(t) {
                    Some(k) => keys.push(k),
                    None => bad = Some(t.to_owned()),
                }
            }
            if let Some(t) = bad {
                let msg = format!(
                    "unknown key {t:?} (one character, ctrl-X, or enter, esc, tab, backtab, up, down, left, right, pgup, pgdn, home, end, space)"
                );
                problems.push(at(offset, Some(&name), msg));
                continue;
            }
            wanted.push((action, keys, offset));
        }
        let apply = |km: &mut Keymap, wanted: &[(Action, Vec<Key>, usize)]| {
            *km = Keymap::default();
            for (action, keys, _) in wanted {
                for (i, b) in KEYMAP.iter().enumerate() {
                    if b.action == *action {
                        km.keys[i] = keys.clone();
                    }
                }
            }
        };
        // A conflict drops the entries involved (their actions keep the builtin keys), until
        // none is left: the builtin keymap has none.
        loop {
            apply(&mut km, &wanted);
            let Some((view, key, actions)) = km.conflict() else {
                break;
            };
            let involved: Vec<usize> = (0..wanted.len())
                .filter(|&w| actions.contains(&wanted[w].0))
                .collect();
            if involved.is_empty() {
                break; // cannot happen: the builtin keymap has no conflict (tested)
            }
            let names: Vec<String> = actions.iter().map(|a| action_name(*a)).collect();
            for &w in involved.iter().rev() {
                let (action, _, offset) = wanted.remove(w);
                let msg = format!(
                    "{key} would do both {} in the {view:?} view; {} keeps its builtin keys",
                    names.join(" and "),
                    action_name(action)
                );
                problems.push(at(offset, Some(&action_name(action)), msg));
            }
        }
        problems.sort_by_key(|p| p.line_col);
        (km, problems)
    }

    /// A key bound to two different actions in one view.
    fn conflict(&self) -> Option<(ViewKind, String, Vec<Action>)> {
        for view in ViewKind::ALL {
            let mut seen: Vec<(String, Action)> = Vec::new();
            for (b, keys) in self.bindings().filter(|(b, _)| b.applies_to(view)) {
                for k in keys {
                    let label = k.label();
                    if let Some((_, other)) = seen.iter().find(|(l, _)| *l == label) {
                        let actions = if *other == b.action {
                            continue;
                        } else {
                            vec![*other, b.action]
                        };
                        return Some((view, label, actions));
                    }
                    seen.push((label, b.action));
                }
            }
        }
        None
    }
}

/// What `:` understands; completion offers these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandKind {
    Goto(Screen),
    Help,
    Quit,
    /// `:sort COLUMN [asc|desc]` (the Quotas table).
    Sort,
    /// `:filter TEXT` (the current view's `/` filter; no text clears it).
    Filter,
}

pub static COMMANDS: &[(&str, CommandKind, &str)] = &[
    (
        "quotas",
        CommandKind::Goto(Screen::Quotas),
        "quota consumption (default view)",
    ),
    (
        "notifications",
        CommandKind::Goto(Screen::Notifications),
        "notifications sent",
    ),
    (
        "events",
        CommandKind::Goto(Screen::Events),
        "events received",
    ),
    (
        "orgs",
        CommandKind::Goto(Screen::Orgs),
        "organisation event settings",
    ),
    (
        "templates",
        CommandKind::Goto(Screen::Templates),
        "e-mail template preview",
    ),
    (
        "sort",
        CommandKind::Sort,
        "sort the quotas: :sort COLUMN [asc|desc]",
    ),
    (
        "filter",
        CommandKind::Filter,
        "filter the view: :filter TEXT (!TEXT inverts)",
    ),
    ("help", CommandKind::Help, "this help"),
    ("quit", CommandKind::Quit, "quit"),
    ("q", CommandKind::Quit, "quit"),
];

/// The command a line names, by its first word.
pub fn command(line: &str) -> Option<CommandKind> {
    let word = line.split_whitespace().next()?.trim_end_matches('!');
    let word = word.to_ascii_lowercase();
    COMMANDS
        .iter()
        .find(|(name, ..)| *name == word)
        .map(|(_, c, _)| *c)
}

/// Names starting with `prefix`, in table order (single-letter aliases only on exact match).
pub fn completions(prefix: &str) -> Vec<&'static str> {
    let p = prefix.trim_start().to_ascii_lowercase();
    COMMANDS
        .iter()
        .map(|(name, ..)| *name)
        .filter(|name| name.starts_with(&p) && (name.len() > 1 || *name == p))
        .collect()
}

/// What Tab turns `input` into: the only completion, else the longest common prefix.
pub fn complete(input: &str) -> String {
    let c = completions(input);
    match c.as_slice() {
        [] => input.to_string(),
        [one] => (*one).to_string(),
        [first, rest @ ..] => {
            let mut n = first.len();
            for r in rest {
                n = n.min(
                    first
                        .bytes()
                        .zip(r.bytes())
                        .take_while(|(a, b)| a == b)
                        .count(),
                );
            }
            let lcp = &first[..n];
            if lcp.len() > input.trim().len() {
                lcp.to_string()
            } else {
                input.to_string()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use crossterm::event::KeyEventKind;

    use super::*;

    fn key(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        let mut k = KeyEvent::new(code, m);
        k.kind = KeyEventKind::Press;
        k
    }

    #[test]
    fn no_key_is_bound_twice_in_one_view() {
        for view in ViewKind::ALL {
            let mut seen = HashSet::new();
            for b in KEYMAP.iter().filter(|b| b.applies_to(view)) {
                for k in b.keys {
                    assert!(seen.insert(k.label()), "{} twice in {view:?}", k.label());
                }
            }
        }
    }

    #[test]
    fn shift_letters_and_ctrl() {
        let v = ViewKind::Quotas;
        let u = lookup(v, &key(KeyCode::Char('U'), KeyModifiers::SHIFT));
        assert_eq!(u, Some(Action::Sort(SortKey::Used)));
        let u2 = lookup(v, &key(KeyCode::Char('u'), KeyModifiers::SHIFT));
        assert_eq!(u2, Some(Action::Sort(SortKey::Used)));
        assert_eq!(
            lookup(v, &key(KeyCode::Char('u'), KeyModifiers::NONE)),
            None
        );
        let c = lookup(v, &key(KeyCode::Char('c'), KeyModifiers::CONTROL));
        assert_eq!(c, Some(Action::Quit));
        assert_eq!(
            lookup(v, &key(KeyCode::Char('c'), KeyModifiers::NONE)),
            None
        );
        let r = lookup(v, &key(KeyCode::Char('r'), KeyModifiers::CONTROL));
        assert_eq!(r, Some(Action::PollNow));
        assert_eq!(
            lookup(v, &key(KeyCode::Char('R'), KeyModifiers::SHIFT)),
            Some(Action::Sort(SortKey::Remaining))
        );
        assert_eq!(
            lookup(ViewKind::Help, &key(KeyCode::Char('/'), KeyModifiers::NONE)),
            None
        );
    }

    #[test]
    fn user_keymap_rebinds_swaps_and_reports() {
        let v = ViewKind::Quotas;
        let ev = |c: char| key(KeyCode::Char(c), KeyModifiers::NONE);
        assert_eq!(action_name(Action::PollNow), "poll_now");
        assert_eq!(action_name(Action::Sort(SortKey::Name)), "sort_name");
        assert_eq!(action_name(Action::Goto(Screen::Orgs)), "goto_orgs");
        assert_eq!(parse_key("ctrl-r"), Some(ctrl('r')));
        assert_eq!(parse_key("Shift-u"), Some(ch('U')));
        assert_eq!(parse_key("pgdn"), Some(code(KeyCode::PageDown)));
        assert_eq!(parse_key("ctrl-"), None);

        // A rebinding, and two actions swapping keys (applied together: no conflict).
        let (km, problems) = Keymap::parse(
            "sort_name = \"n\"\n[keys]\npoll_now = [\"x\", \"ctrl-r\"]\nsort_org = \"r\"\n",
            "keymap.toml",
        );
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(km.lookup(v, &ev('n')), Some(Action::Sort(SortKey::Name)));
        assert_eq!(km.lookup(v, &ev('N')), None);
        assert_eq!(km.lookup(v, &ev('x')), Some(Action::PollNow));
        assert_eq!(km.lookup(v, &ev('r')), Some(Action::Sort(SortKey::Org)));

        // Unknown action, unknown key, a conflict: reported with the line; defaults kept.
        let text = "up = \"k\"\nfly = \"f\"\nquit = \"ctrl-\"\nsort_name = \"r\"\n";
        let (km, problems) = Keymap::parse(text, "/cfg/keymap.toml");
        let shown: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(shown.len(), 3, "{shown:?}");
        assert!(
            shown[0].starts_with("/cfg/keymap.toml:2:1: fly: unknown action"),
            "{shown:?}"
        );
        assert!(
            shown[1].starts_with("/cfg/keymap.toml:3:1: quit: unknown key \"ctrl-\""),
            "{shown:?}"
        );
        assert!(
            shown[2].starts_with("/cfg/keymap.toml:4:1: sort_name: r would do both"),
            "{shown:?}"
        );
        assert_eq!(km.lookup(v, &ev('r')), Some(Action::PollNow));
        assert_eq!(
            km.lookup(v, &key(KeyCode::Char('N'), KeyModifiers::SHIFT)),
            Some(Action::Sort(SortKey::Name))
        );
        assert_eq!(km.lookup(v, &ev('q')), Some(Action::Quit));
        // `up = "k"` replaced k and ↑ by k alone.
        assert_eq!(km.lookup(v, &key(KeyCode::Up, KeyModifiers::NONE)), None);
        assert_eq!(Keymap::parse("", "x").0, Keymap::default());
        let (_, bad) = Keymap::parse("quit = [", "keymap.toml");
        assert!(bad[0].to_string().contains("invalid TOML"), "{bad:?}");
        assert_eq!(Keymap::load(None), (Keymap::default(), Vec::new()));
    }

    #[test]
    fn command_completion() {
        assert_eq!(complete("quo"), "quotas");
        assert_eq!(complete("q"), "q");
        assert_eq!(completions("q"), ["quotas", "quit", "q"]);
        assert_eq!(complete("qu"), "qu");
        assert_eq!(complete("n"), "notifications");
        assert_eq!(complete("zzz"), "zzz");
        assert_eq!(command(" Quit "), Some(CommandKind::Quit));
        assert_eq!(command("q!"), Some(CommandKind::Quit));
        assert_eq!(command("orgs acme"), Some(CommandKind::Goto(Screen::Orgs)));
        assert_eq!(command("nope"), None);
        assert_eq!(complete("so"), "sort");
        assert_eq!(complete("fi"), "filter");
        assert_eq!(command("sort name desc"), Some(CommandKind::Sort));
        assert_eq!(command("filter !acme"), Some(CommandKind::Filter));
    }
}
