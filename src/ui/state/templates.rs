//! The Templates view's part of the state: the loaded template set, the selection, the sample
//! chosen per template, and the rendered preview, cached until the template, the sample, the
//! files on disk or the pane width change (rendering the screen never renders a template).
//!
//! Samples are the template's files in `samples/`, then real data from the log: the most
//! recent received events whose e-mail this template renders (as routing names it), and for
//! the quota templates the most recent quota notifications. A real sample is rendered with
//! the context the dispatcher builds for that e-mail, so the preview is what would be sent.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use minijinja::value::{Serde, Value};

use crate::clock::UnixMs;
use crate::intake::EventKind;
use crate::notify::email::EVENT_FALLBACK_TEMPLATE;
use crate::notify::feed::NotificationItem;
use crate::notify::route;
use crate::outbox::{Audience, ChannelId, EVENT_QUOTA_THRESHOLD, NotificationPayload, OutboxKind};
use crate::store::EventRow;
use crate::templates::context::EventNotice;
use crate::templates::watch::Changed;
use crate::templates::{
    Origin, Part, QuotaNotice, SampleInfo, StyledLine, Templates, html_to_terminal_text, user_dir,
};
use crate::ui::format;
use crate::ui::sanitize::wrap_keep;
use crate::ui::table::clamp_offset;

/// Real samples offered per template: the most recent events or notifications.
pub const REAL_SAMPLES: usize = 10;
/// Event templates remembered (event names come from senders: a flood of odd names must not
/// grow the index without bound). Beyond it the template whose newest event is oldest goes.
const MAX_EVENT_TEMPLATES: usize = 128;

const QUOTA_THRESHOLD: &str = "quota_threshold";
const QUOTA_THRESHOLD_DEVELOPER: &str = "quota_threshold_developer";
const QUOTA_EXHAUSTED: &str = "quota_exhausted";

/// Where a sample's data comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum SampleSource {
    /// A file of `samples/` (shipped, or the user's).
    File(Origin),
    /// A received event (masked as recorded), rendered as the dispatcher renders its e-mail.
    Event(Arc<EventRow>),
    /// A quota notification's payload (without the raw key), rendered as the dispatcher does.
    Notification(Arc<NotificationPayload>),
}

/// One sample a template can be previewed with.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleChoice {
    /// What the choice is remembered by: the sample id (`quota_threshold.key`), `event:<id>`
    /// or `notification:<idempotency key>`.
    pub id: String,
    /// How the picker and the header name it: the sample id,
    /// `event #42 key_request_event.submitted`, `notification portal-key 80%`.
    pub label: String,
    /// Shown after it, muted: the sample file, the event's summary, the notification's
    /// channel and usage.
    pub detail: String,
    /// When a real one was received or queued; `None` for files.
    pub at_ms: Option<UnixMs>,
    /// A real notification's recipients, when it is the e-mail this template renders.
    pub to: Option<Vec<String>>,
    pub source: SampleSource,
}

impl SampleChoice {
    fn file(s: SampleInfo) -> Self {
        SampleChoice {
            label: s.id.clone(),
            id: s.id,
            detail: s.display,
            at_ms: None,
            to: None,
            source: SampleSource::File(s.origin),
        }
    }

    fn event(row: &Arc<EventRow>) -> Self {
        SampleChoice {
            id: format!("event:{}", row.id),
            label: format!("event #{} {}", row.id, row.event),
            detail: row.summary.clone(),
            at_ms: Some(row.received_at),
            to: None,
            source: SampleSource::Event(row.clone()),
        }
    }

    fn notification(n: &QuotaRow, to: bool) -> Self {
        let p = &n.payload;
        let who = [&p.alias, &p.key_masked, &p.org_id]
            .into_iter()
            .find(|s| !s.is_empty())
            .map_or("", |s| s.as_str());
        SampleChoice {
            id: format!("notification:{}", p.id),
            label: format!("notification {who} {}", format::threshold(p.threshold)),
            detail: format!(
                "{} · {} used",
                p.channel_id,
                format::pct(p.usage_percentage)
            ),
            at_ms: Some(n.at_ms),
            to: (to && n.email && !p.recipients.is_empty()).then(|| p.recipients.clone()),
            source: SampleSource::Notification(p.clone()),
        }
    }

    /// From the log (an event, a notification) rather than a file.
    pub fn is_real(&self) -> bool {
        !matches!(self.source, SampleSource::File(_))
    }

    /// `3m ago` for a real sample.
    pub fn age(&self, now_ms: UnixMs) -> Option<String> {
        self.at_ms
            .map(|at| format!("{} ago", format::duration((now_ms - at).div_euclid(1000))))
    }

    /// The label with a real sample's age: `event #42 key_request_event.submitted (3m ago)`.
    pub fn title(&self, now_ms: UnixMs) -> String {
        match self.age(now_ms) {
            Some(age) => format!("{} ({age})", self.label),
            None => self.label.clone(),
        }
    }

    /// What a render error says the template was rendered with.
    fn describe(&self) -> &str {
        match self.source {
            SampleSource::File(_) => &self.detail,
            _ => &self.label,
        }
    }

    /// The template context: the sample file, or what the dispatcher would render the e-mail
    /// with (`now_ms` stands in for the delivery time).
    fn context(&self, t: &Templates, name: &str, env: &RenderEnv) -> Result<Value, String> {
        match &self.source {
            SampleSource::File(_) => {
                t.sample(&self.id)
                    .map(|v| Value::from(Serde(&v)))
                    .map_err(|e| {
                        e.context(format!("loading the sample for {name}"))
                            .to_string()
                    })
            }
            SampleSource::Event(row) => {
                event_context(row, env.to, env.dashboard_hostname).map(|v| Value::from(Serde(&v)))
            }
            SampleSource::Notification(p) => {
                let mut notice = QuotaNotice::from_payload(p, env.now_ms.div_euclid(1000))
                    .with_dashboard_hostname(env.dashboard_hostname);
                notice.notification_id = p.id.clone();
                Ok(Value::from(Serde(&notice)))
            }
        }
    }
}

/// The context `notify::email::render_event` renders a received event's e-mail with: the
/// row as routing plans it for `email:event-to`, as an `EventNotice`.
fn event_context(
    row: &EventRow,
    to: &[String],
    dashboard_hostname: &str,
) -> Result<serde_json::Value, String> {
    let ev = route::event_from_row(row).ok_or_else(|| {
        format!(
            "event #{} ({}) cannot be rendered: its recorded payload is not a routable event",
            row.id, row.event
        )
    })?;
    // What routing queues for `email:event-to`, without a round trip through the row's JSON.
    let payload =
        route::event_payload(&ev, &ChannelId::Email(Audience::EventTo), to.to_vec(), None);
    let mut notice =
        EventNotice::from_payload(&payload).with_dashboard_hostname(dashboard_hostname);
    notice.notification_id = payload.id.clone();
    notice.recipients = to.to_vec();
    Ok(notice.to_context())
}

/// One outbox row of a quota crossing, as a sample.
#[derive(Debug, Clone)]
struct QuotaRow {
    payload: Arc<NotificationPayload>,
    at_ms: UnixMs,
    /// An `email:*` row (its recipients are the e-mail's).
    email: bool,
    /// The template the dispatcher renders this row's e-mail with.
    template: &'static str,
}

/// A quota crossing: the rows of its channels that samples are taken from.
#[derive(Debug, Clone)]
struct Crossing {
    at_ms: UnixMs,
    exhausted: bool,
    /// The operators' row: `email:ops`, else `email:org`, else another channel's.
    ops: Option<(u8, QuotaRow)>,
    /// The key developer's row.
    developer: Option<QuotaRow>,
}

impl Crossing {
    /// The row previewed with `name`: the developer's for the developer template, the
    /// operators' otherwise (each falling back on the other).
    fn row(&self, name: &str) -> Option<&QuotaRow> {
        let ops = self.ops.as_ref().map(|(_, r)| r);
        if name == QUOTA_THRESHOLD_DEVELOPER {
            self.developer.as_ref().or(ops)
        } else {
            ops.or(self.developer.as_ref())
        }
    }
}

/// Preference of a row for the operators' templates (lower is better).
fn ops_rank(item: &NotificationItem) -> u8 {
    match item.row.channel_id {
        ChannelId::Email(Audience::Ops) => 0,
        ChannelId::Email(Audience::Org) => 1,
        _ if item.row.kind() == OutboxKind::Email => 2,
        _ => 3,
    }
}

/// What rendering a sample needs besides the template set.
struct RenderEnv<'a> {
    now_ms: UnixMs,
    to: &'a [String],
    dashboard_hostname: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Focus {
    List,
    Preview,
}

/// What the preview body shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// The HTML version laid out for the terminal.
    Html,
    Text,
    /// The HTML source.
    Raw,
}

/// A line of HTML source; `in_tag` says whether it starts inside `<…>` (for colouring lines
/// that a long tag was wrapped onto).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawLine {
    pub text: String,
    pub in_tag: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct CacheKey {
    name: String,
    sample: Option<String>,
    width: usize,
    generation: u64,
}

/// One rendered template. Errors are `FILE:LINE: message (context)`.
#[derive(Debug, Clone)]
pub struct Preview {
    pub name: String,
    /// The sample rendered with.
    pub sample: Option<SampleChoice>,
    /// 1-based position of the sample and how many the template has (kept current as real
    /// samples arrive).
    pub sample_pos: (usize, usize),
    /// The recipients of a real notification's e-mail; `None`: the configured ones.
    pub to: Option<Vec<String>>,
    pub files: Vec<(Part, Origin, String)>,
    pub subject: Result<String, String>,
    /// Wrapped to the pane width.
    pub text: Result<Vec<String>, String>,
    pub html: Result<Vec<StyledLine>, String>,
    pub raw: Result<Vec<RawLine>, String>,
    /// The HTML as it would be sent, for `o`.
    pub html_source: Option<String>,
    key: CacheKey,
}

impl Preview {
    /// Lines of the body `b` (an error counts as its wrapped lines, roughly one).
    pub fn body_len(&self, b: Body) -> usize {
        match b {
            Body::Html => self.html.as_ref().map_or(1, Vec::len),
            Body::Text => self.text.as_ref().map_or(1, Vec::len),
            Body::Raw => self.raw.as_ref().map_or(1, Vec::len),
        }
    }
}

pub struct TemplatesPane {
    user_dir: Option<PathBuf>,
    templates: Option<Templates>,
    /// The user directory could not be read (the shipped set is shown).
    load_error: Option<String>,
    /// Files changed on disk: reload before the next use.
    stale: bool,
    generation: u64,
    names: Vec<String>,
    /// Parallel to `names`: a user file shadows a shipped one.
    overridden: Vec<bool>,
    cursor: usize,
    offset: usize,
    /// The sample chosen per template (default: its first). A real one is kept whole so that
    /// it stays on offer after newer events push it out of the recent ones.
    chosen: BTreeMap<String, SampleChoice>,
    /// Received events by the template routing renders their e-mail with
    /// (`route::template_for`), newest first, at most [`REAL_SAMPLES`] each.
    events: BTreeMap<String, Vec<Arc<EventRow>>>,
    /// Quota crossings of the last outbox snapshot, newest first: at most [`REAL_SAMPLES`]
    /// exhausted ones and as many others.
    crossings: Vec<Crossing>,
    /// `[email_backend] dashboard_hostname` (the dispatcher's `dashboard_url`).
    dashboard_hostname: String,
    focus: Focus,
    body: Body,
    scroll: usize,
    preview: Option<Preview>,
    /// The directory watched for edits, or why it is not.
    watch: Option<Result<PathBuf, String>>,
    pub(super) from: String,
    pub(super) to: Vec<String>,
}

impl TemplatesPane {
    pub(super) fn new(
        config_dir: Option<PathBuf>,
        from: String,
        to: Vec<String>,
        dashboard_hostname: String,
    ) -> Self {
        TemplatesPane {
            user_dir: config_dir.as_deref().map(user_dir),
            templates: None,
            load_error: None,
            stale: false,
            generation: 0,
            names: Vec::new(),
            overridden: Vec::new(),
            cursor: 0,
            offset: 0,
            chosen: BTreeMap::new(),
            events: BTreeMap::new(),
            crossings: Vec::new(),
            dashboard_hostname,
            focus: Focus::List,
            body: Body::Html,
            scroll: 0,
            preview: None,
            watch: None,
            from,
            to,
        }
    }

    // ---- read side ----

    pub fn names(&self) -> &[String] {
        &self.names
    }
    pub fn overridden(&self, i: usize) -> bool {
        self.overridden.get(i).copied().unwrap_or(false)
    }
    pub fn cursor(&self) -> usize {
        self.cursor
    }
    pub fn offset(&self) -> usize {
        self.offset
    }
    pub fn selected(&self) -> Option<&str> {
        self.names.get(self.cursor).map(String::as_str)
    }
    pub fn focus(&self) -> Focus {
        self.focus
    }
    pub fn body(&self) -> Body {
        self.body
    }
    pub fn scroll(&self) -> usize {
        self.scroll
    }
    pub fn preview(&self) -> Option<&Preview> {
        self.preview.as_ref()
    }
    pub fn load_error(&self) -> Option<&str> {
        self.load_error.as_deref()
    }
    pub fn watch(&self) -> Option<&Result<PathBuf, String>> {
        self.watch.as_ref()
    }
    pub fn user_dir(&self) -> Option<&std::path::Path> {
        self.user_dir.as_deref()
    }
    pub fn from(&self) -> &str {
        &self.from
    }
    pub fn to(&self) -> &[String] {
        &self.to
    }
    /// The samples of the selected template: its files, then the recent real ones (newest
    /// first).
    pub fn samples(&self) -> Vec<SampleChoice> {
        let (Some(t), Some(name)) = (&self.templates, self.selected()) else {
            return Vec::new();
        };
        let mut out: Vec<SampleChoice> = t
            .samples_of(name)
            .into_iter()
            .map(SampleChoice::file)
            .collect();
        out.extend(self.real_samples(t, name));
        if let Some(c) = self.chosen.get(name)
            && c.is_real()
            && !out.iter().any(|s| s.id == c.id)
        {
            out.push(c.clone());
        }
        out
    }

    /// The most recent events whose e-mail `name` renders (the `event` template also renders
    /// those whose own template the set lacks, as the dispatcher does), or for the quota
    /// templates the most recent crossings that render with it.
    fn real_samples(&self, t: &Templates, name: &str) -> Vec<SampleChoice> {
        let quota = [QUOTA_THRESHOLD, QUOTA_THRESHOLD_DEVELOPER, QUOTA_EXHAUSTED];
        if quota.contains(&name) {
            let exhausted = name == QUOTA_EXHAUSTED;
            return self
                .crossings
                .iter()
                .filter(|c| c.exhausted == exhausted)
                .filter_map(|c| c.row(name))
                .take(REAL_SAMPLES)
                .map(|r| SampleChoice::notification(r, r.template == name))
                .collect();
        }
        let mut rows: Vec<&Arc<EventRow>> = self.events.get(name).into_iter().flatten().collect();
        if name == EVENT_FALLBACK_TEMPLATE {
            for (template, more) in &self.events {
                if template != name && !t.contains(template) {
                    rows.extend(more);
                }
            }
            rows.sort_by_key(|r| std::cmp::Reverse((r.received_at, r.id)));
            rows.truncate(REAL_SAMPLES);
        }
        rows.into_iter().map(SampleChoice::event).collect()
    }

    /// Position of the sample in use among `samples`: the one chosen, else the first.
    fn current(&self, samples: &[SampleChoice]) -> Option<usize> {
        let chosen = self.selected().and_then(|n| self.chosen.get(n));
        chosen
            .and_then(|c| samples.iter().position(|s| s.id == c.id))
            .or_else(|| (!samples.is_empty()).then_some(0))
    }

    /// The sample in use for the selected template.
    pub fn sample(&self) -> Option<SampleChoice> {
        let samples = self.samples();
        self.current(&samples).map(|i| samples[i].clone())
    }

    pub fn sample_id(&self) -> Option<String> {
        self.sample().map(|s| s.id)
    }

    // ---- write side ----

    pub(super) fn set_watch(&mut self, w: Result<PathBuf, String>) {
        self.watch = Some(w);
    }

    /// Received events (any order): the recorded Dashboard and Portal ones become samples of
    /// the template routing renders their e-mail with. Quota triggers are not e-mailed.
    pub(super) fn received(&mut self, rows: &[EventRow]) {
        for row in rows {
            let kind = match EventKind::parse(&row.kind) {
                Some(k @ (EventKind::Dashboard | EventKind::Portal)) => k,
                _ => continue,
            };
            if row.id <= 0 {
                continue;
            }
            let list = self
                .events
                .entry(route::template_for(&row.event, kind))
                .or_default();
            if list.iter().any(|r| r.id == row.id) {
                continue;
            }
            list.push(Arc::new(row.clone()));
            list.sort_by_key(|r| std::cmp::Reverse((r.received_at, r.id)));
            list.truncate(REAL_SAMPLES);
        }
        while self.events.len() > MAX_EVENT_TEMPLATES {
            let oldest = self
                .events
                .iter()
                .min_by_key(|(_, v)| v.first().map(|r| (r.received_at, r.id)))
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => self.events.remove(&k),
                None => break,
            };
        }
    }

    /// A new outbox snapshot: its quota notifications, one sample per crossing (the rows of a
    /// crossing's channels carry the same data; the e-mail ones are preferred).
    pub(super) fn outbox(&mut self, items: &[NotificationItem]) {
        let mut crossings: Vec<Crossing> = Vec::new();
        let mut index: HashMap<(&str, i64, u64, i64), usize> = HashMap::new();
        let (mut normal, mut exhausted) = (0, 0);
        for item in items {
            let Some(p) = item.payload.as_ref() else {
                continue;
            };
            if p.event != EVENT_QUOTA_THRESHOLD {
                continue;
            }
            let developer = p.channel_id == ChannelId::Email(Audience::Developer);
            // `exhausted` does not depend on the time, `template_name` not on anything else.
            let notice = QuotaNotice::from_payload(p, 0);
            let row = QuotaRow {
                payload: Arc::new(p.clone()),
                at_ms: item.row.created_at,
                email: item.row.kind() == OutboxKind::Email,
                template: notice.template_name(developer),
            };
            let key = (
                p.quota_key.as_str(),
                p.period,
                p.threshold.to_bits(),
                p.sequence,
            );
            let i = match index.get(&key) {
                Some(&i) => i,
                None => {
                    let count = if notice.exhausted {
                        &mut exhausted
                    } else {
                        &mut normal
                    };
                    if *count >= REAL_SAMPLES {
                        continue;
                    }
                    *count += 1;
                    crossings.push(Crossing {
                        at_ms: row.at_ms,
                        exhausted: notice.exhausted,
                        ops: None,
                        developer: None,
                    });
                    index.insert(key, crossings.len() - 1);
                    crossings.len() - 1
                }
            };
            let c = &mut crossings[i];
            c.at_ms = c.at_ms.max(row.at_ms);
            if developer && row.email {
                c.developer.get_or_insert(row);
            } else {
                let rank = ops_rank(item);
                if c.ops.as_ref().is_none_or(|(r, _)| rank < *r) {
                    c.ops = Some((rank, row));
                }
            }
        }
        crossings.sort_by_key(|c| std::cmp::Reverse(c.at_ms));
        self.crossings = crossings;
    }

    /// Files changed on disk. Returns what to flash, if the set was loaded (otherwise it is
    /// read fresh when the view is first opened).
    pub(super) fn changed(&mut self, c: &Changed) -> Option<String> {
        self.templates.as_ref()?;
        self.stale = true;
        let names: Vec<&str> = c.names.iter().map(String::as_str).collect();
        Some(if c.all || names.is_empty() {
            "templates changed on disk: reloaded".to_string()
        } else {
            format!("reloaded {} (changed on disk)", names.join(", "))
        })
    }

    /// Loads the set when first needed or after a change on disk. Called by the state, never
    /// while drawing.
    pub(super) fn ensure_loaded(&mut self) {
        if self.templates.is_none() || self.stale {
            self.reload();
        }
    }

    /// Re-renders when the template, sample, files or width changed (after `ensure_loaded`,
    /// whose names decide the layout and so the width). `now_ms` stands in for the delivery
    /// time of a real notification (its "renews in").
    pub(super) fn refresh(&mut self, width: usize, list_rows: usize, now_ms: UnixMs) {
        self.offset = clamp_offset(self.offset, self.cursor, list_rows, self.names.len());
        let Some(name) = self.selected().map(str::to_string) else {
            self.preview = None;
            return;
        };
        let samples = self.samples();
        let pos = self.current(&samples);
        let sample_pos = (pos.map_or(0, |p| p + 1), samples.len());
        let sample = pos.map(|p| samples[p].clone());
        let key = CacheKey {
            sample: sample.as_ref().map(|s| s.id.clone()),
            name,
            width,
            generation: self.generation,
        };
        if let Some(p) = self.preview.as_mut()
            && p.key == key
        {
            // Real samples came or went: only the count moved.
            p.sample_pos = sample_pos;
            return;
        }
        // Another template or sample starts at the top; an edit on disk keeps the place.
        let same = self
            .preview
            .as_ref()
            .is_some_and(|p| p.key.name == key.name && p.key.sample == key.sample);
        if !same {
            self.scroll = 0;
        }
        if let Some(t) = &self.templates {
            let env = RenderEnv {
                now_ms,
                to: &self.to,
                dashboard_hostname: &self.dashboard_hostname,
            };
            self.preview = Some(render(t, key, sample, sample_pos, &env));
        }
    }

    fn reload(&mut self) {
        let keep = self.selected().map(str::to_string);
        match Templates::load(self.user_dir.as_deref()) {
            Ok(t) => {
                self.templates = Some(t);
                self.load_error = None;
            }
            Err(e) => {
                if self.templates.is_none() {
                    self.templates = Some(Templates::shipped());
                }
                self.load_error = Some(e.to_string());
            }
        }
        self.stale = false;
        self.generation += 1;
        let t = self.templates.as_ref();
        self.names = t.map(Templates::names).unwrap_or_default();
        self.overridden = self
            .names
            .iter()
            .map(|n| {
                t.and_then(|t| t.info(n)).is_some_and(|i| {
                    i.parts.iter().any(|(_, o, _)| matches!(o, Origin::User(_)))
                        || i.samples
                            .iter()
                            .any(|s| matches!(s.origin, Origin::User(_)))
                })
            })
            .collect();
        if let Some(pos) = keep.and_then(|k| self.names.iter().position(|n| *n == k)) {
            self.cursor = pos;
        }
        self.cursor = self.cursor.min(self.names.len().saturating_sub(1));
    }

    pub(super) fn move_list(&mut self, row: usize, rows: usize) {
        if self.names.is_empty() {
            return;
        }
        self.cursor = row.min(self.names.len() - 1);
        self.offset = clamp_offset(self.offset, self.cursor, rows, self.names.len());
    }

    pub(super) fn scroll_to(&mut self, line: usize, rows: usize) {
        let len = self.preview.as_ref().map_or(0, |p| p.body_len(self.body));
        self.scroll = line.min(len.saturating_sub(rows.max(1)));
    }

    pub(super) fn toggle_focus(&mut self) {
        self.focus = match self.focus {
            Focus::List => Focus::Preview,
            Focus::Preview => Focus::List,
        };
    }

    pub(super) fn set_focus(&mut self, f: Focus) {
        self.focus = f;
    }

    pub(super) fn set_body(&mut self, b: Body) {
        if self.body != b {
            self.body = b;
            self.scroll = 0;
        }
    }

    /// Steps through the selected template's samples; false when it has at most one.
    pub(super) fn step_sample(&mut self, delta: isize) -> bool {
        let mut samples = self.samples();
        if samples.len() < 2 {
            return false;
        }
        let cur = self.current(&samples).unwrap_or(0);
        let n = samples.len() as isize;
        let next = (cur as isize + delta).rem_euclid(n) as usize;
        self.remember(samples.swap_remove(next));
        true
    }

    /// Chooses the sample `id` of the selected template; false when it has no such sample.
    pub(super) fn choose_sample(&mut self, id: &str) -> bool {
        match self.samples().into_iter().find(|s| s.id == id) {
            Some(s) => {
                self.remember(s);
                true
            }
            None => false,
        }
    }

    fn remember(&mut self, s: SampleChoice) {
        if let Some(name) = self.selected().map(str::to_string) {
            self.chosen.insert(name, s);
        }
    }
}

/// Renders the three parts separately, so a broken HTML file still shows the text version.
fn render(
    t: &Templates,
    key: CacheKey,
    sample: Option<SampleChoice>,
    sample_pos: (usize, usize),
    env: &RenderEnv,
) -> Preview {
    let name = key.name.clone();
    let files = t.info(&name).map(|i| i.parts).unwrap_or_default();
    let data: Result<Value, String> = match &sample {
        Some(s) => s.context(t, &name, env),
        None => Err(format!(
            "{name} has no sample data: add samples/{name}.json to the template directory"
        )),
    };
    let context = format!(
        "rendering {name} with {}",
        sample.as_ref().map_or("no sample", |s| s.describe())
    );
    let part = |p: Part| -> Result<String, String> {
        let ctx = data.as_ref().map_err(Clone::clone)?;
        t.render_part(&name, p, ctx)
            .map_err(|e| e.context(context.clone()).to_string())
    };
    let subject = part(Part::Subject);
    let text = part(Part::Text).map(|s| wrap_keep(&s, key.width));
    let html_source = part(Part::Html);
    let html = html_source.as_ref().map_err(Clone::clone).and_then(|h| {
        html_to_terminal_text(h, key.width)
            .map(|lines| {
                lines
                    .into_iter()
                    .flat_map(|l| wrap_styled(l, key.width))
                    .collect()
            })
            .map_err(|e| e.to_string())
    });
    let raw = html_source
        .as_ref()
        .map(|h| raw_lines(h, key.width))
        .map_err(Clone::clone);
    Preview {
        name,
        sample_pos,
        to: sample.as_ref().and_then(|s| s.to.clone()),
        sample,
        files,
        subject,
        text,
        html,
        raw,
        html_source: html_source.ok(),
        key,
    }
}

/// Splits a styled line wider than `width` (long footnote URLs) at character boundaries.
fn wrap_styled(line: StyledLine, width: usize) -> Vec<StyledLine> {
    use unicode_width::UnicodeWidthChar;
    let width = width.max(1);
    if crate::ui::sanitize::width(&line.text()) <= width {
        return vec![line];
    }
    let mut out = vec![StyledLine::default()];
    let mut w = 0;
    for span in line.spans {
        let mut piece = String::new();
        for c in span.text.chars() {
            let cw = c.width().unwrap_or(0);
            if w + cw > width && w > 0 {
                if let Some(last) = out.last_mut() {
                    last.spans.push(crate::templates::StyledSpan {
                        text: std::mem::take(&mut piece),
                        style: span.style,
                    });
                }
                out.push(StyledLine::default());
                w = 0;
            }
            piece.push(c);
            w += cw;
        }
        if let Some(last) = out.last_mut()
            && !piece.is_empty()
        {
            last.spans.push(crate::templates::StyledSpan {
                text: piece,
                style: span.style,
            });
        }
    }
    out
}

/// The HTML source wrapped to `width`, each line knowing whether it starts inside a tag.
fn raw_lines(html: &str, width: usize) -> Vec<RawLine> {
    let mut out = Vec::new();
    let mut in_tag = false;
    for line in wrap_keep(html, width) {
        let start = in_tag;
        for c in line.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                _ => {}
            }
        }
        out.push(RawLine {
            text: line,
            in_tag: start,
        });
    }
    out
}
