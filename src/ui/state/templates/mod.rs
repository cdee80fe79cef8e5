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

mod keys;
mod preview;
mod samples;

pub use preview::{Body, Focus, Preview, RawLine};
use preview::{CacheKey, RenderEnv, render};
use samples::*;
pub use samples::{REAL_SAMPLES, SampleChoice, SampleSource};

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
