//! `tykwatch outbox list|show|resend|retry-failed|purge`: the outbox of a data dir, for
//! scripts and for operators without the console (in the style of `amtool`).
//!
//! It works while `tykwatch run` holds the data dir: SQLite in WAL mode lets this connection
//! read and write beside the running one, every change is one conditional statement (a resend
//! only moves a `failed`/`dead` row, which the dispatcher never touches, to `pending`), and the
//! running dispatcher picks pending rows up within its poll interval. Nothing printed carries a
//! raw key: rows are shown through the console's masking (`notifier::item`), payloads without
//! the `tyk` channel's raw key.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use super::Setup;
use crate::clock::{Clock, UnixMs};
use crate::notifier::item;
use crate::notify::feed::NotificationItem;
use crate::outbox::{ChannelId, OutboxFilter, OutboxRow, OutboxState, Payload, Source};
use crate::store::{DB_FILE, Store};
use crate::timefmt::format_utc;
use crate::ui::format::duration;

/// Most rows `list` prints unless `--limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;

/// Which rows `list` and `retry-failed` select.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Selection {
    pub state: Option<OutboxState>,
    pub channel: Option<ChannelId>,
    pub org: Option<String>,
    /// Rows created at least this long ago.
    pub older_than: Option<Duration>,
    /// Rows created at most this long ago.
    pub newer_than: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum OutboxCommand {
    List {
        select: Selection,
        limit: usize,
        json: bool,
    },
    Show {
        id: String,
        json: bool,
    },
    /// Failed or dead rows by id back to pending.
    Resend {
        ids: Vec<String>,
    },
    /// Every failed row (and with `dead`, every dead one) of the selection back to pending.
    RetryFailed {
        select: Selection,
        dead: bool,
        dry_run: bool,
    },
    /// Rows in `state` (delivered unless told) created more than `older_than` ago.
    Purge {
        older_than: Duration,
        state: OutboxState,
        dry_run: bool,
    },
}

/// The data dir whose outbox the commands use: the configured one, or the demo's with `--demo`.
pub fn data_dir(setup: &Setup) -> PathBuf {
    if setup.args.demo {
        setup.paths.data_dir.join("demo")
    } else {
        setup.paths.data_dir.clone()
    }
}

/// Runs one command; exit 0 on success, 1 when a row asked for is missing or cannot be
/// resent, 2 when the outbox cannot be used at all.
pub fn run(
    setup: &Setup,
    cmd: &OutboxCommand,
    clock: &dyn Clock,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> ExitCode {
    let writes = !matches!(cmd, OutboxCommand::List { .. } | OutboxCommand::Show { .. });
    let dry = matches!(
        cmd,
        OutboxCommand::RetryFailed { dry_run: true, .. }
            | OutboxCommand::Purge { dry_run: true, .. }
    );
    if writes && !dry && setup.args.readonly {
        let _ = writeln!(err, "tykwatch: --readonly: the outbox is not changed");
        return ExitCode::from(2);
    }
    let shared = !setup.args.demo && setup.config.store.is_shared();
    let opened = if shared {
        Store::connect(&setup.config.store).map_err(|e| e.to_string())
    } else {
        open(&data_dir(setup))
    };
    let store = match opened {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(err, "tykwatch: {e}");
            return ExitCode::from(2);
        }
    };
    let now = clock.now_ms();
    let result = match cmd {
        OutboxCommand::List {
            select,
            limit,
            json,
        } => list(&store, select, *limit, *json, now, out),
        OutboxCommand::Show { id, json } => show(&store, id, *json, now, out, err),
        OutboxCommand::Resend { ids } => resend(&store, ids, now, out, err),
        OutboxCommand::RetryFailed {
            select,
            dead,
            dry_run,
        } => retry_failed(&store, select, *dead, *dry_run, now, out),
        OutboxCommand::Purge {
            older_than,
            state,
            dry_run,
        } => purge(&store, *older_than, *state, *dry_run, now, out),
    };
    let _ = out.flush();
    match result {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "tykwatch: {e}");
            ExitCode::from(2)
        }
    }
}

/// The data dir's SQLite store (`[store] url` unset); a dir where tykwatch never ran is an error, not a new empty outbox.
fn open(dir: &Path) -> Result<Store, String> {
    let path = dir.join(DB_FILE);
    if !path.is_file() {
        return Err(format!(
            "no outbox at {}: tykwatch has not run with this data dir (pick another with \
             --data-dir or TYKWATCH_DATA_DIR; --demo for the demo's)",
            path.display()
        ));
    }
    Store::open(&path).map_err(|e| e.to_string())
}

fn ms_ago(now: UnixMs, d: Duration) -> UnixMs {
    now.saturating_sub(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn filter(select: &Selection, now: UnixMs) -> OutboxFilter {
    OutboxFilter {
        state: select.state,
        channel_id: select.channel.clone(),
        quota_key: None,
        org_id: select.org.clone(),
        created_after: select.newer_than.map(|d| ms_ago(now, d)),
        created_before: select.older_than.map(|d| ms_ago(now, d)),
        after: None,
    }
}

fn age(now: UnixMs, at: UnixMs) -> String {
    format!("{} ago", duration((now - at) / 1000))
}

fn utc(ms: UnixMs) -> String {
    format_utc(ms.div_euclid(1000), ' ')
}

/// What a row notifies, in one cell: `alias key 80%` or the event's name and summary.
fn subject(it: &NotificationItem) -> String {
    match &it.row.source {
        Source::Crossing { threshold, .. } if it.scope == "org" => {
            format!("org {} {threshold}%", it.org_id)
        }
        Source::Crossing { threshold, .. } => {
            let who = [
                it.alias.as_str(),
                it.key_masked.as_str(),
                it.api_id.as_str(),
            ]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
            format!("{who} {threshold}%")
        }
        Source::Event { event_id } => format!("event {event_id} {} {}", it.event, it.alias),
    }
}

fn last(row: &OutboxRow) -> String {
    match (row.last_status, &row.last_error) {
        (Some(s), Some(e)) => format!("{s} {e}"),
        (Some(s), None) => s.to_string(),
        (None, Some(e)) => e.clone(),
        (None, None) => String::new(),
    }
}

/// One cell: no control characters (a receiver's error text is external input), at most
/// `max` characters.
fn cell(s: &str, max: usize) -> String {
    let clean: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if clean.chars().count() <= max {
        clean
    } else {
        let mut t: String = clean.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn row_json(it: &NotificationItem, now: UnixMs) -> Value {
    let r = &it.row;
    let mut v = json!({
        "id": r.idem_key,
        "channel": r.channel_id.to_string(),
        "kind": r.kind().as_str(),
        "state": r.state.as_str(),
        "attempts": r.attempts,
        "next_attempt_at_ms": r.next_attempt_at,
        "last_status": r.last_status,
        "last_error": r.last_error,
        "created_at_ms": r.created_at,
        "delivered_at_ms": r.delivered_at,
        "age_s": (now - r.created_at) / 1000,
        "source": r.source.as_str(),
        "org_id": it.org_id,
        "alias": it.alias,
        "key": it.key_masked,
        "api_id": it.api_id,
        "event": it.event,
    });
    match &r.source {
        Source::Crossing {
            quota_key,
            period,
            threshold,
        } => {
            // `quota_id` is the id every output uses; `quota_key` names the column.
            v["quota_id"] = json!(quota_key);
            v["quota_key"] = json!(quota_key);
            v["period"] = json!(period);
            v["threshold"] = json!(threshold);
        }
        Source::Event { event_id } => v["event_id"] = json!(event_id),
    }
    v
}

fn list(
    store: &Store,
    select: &Selection,
    limit: usize,
    as_json: bool,
    now: UnixMs,
    out: &mut dyn Write,
) -> Result<ExitCode, String> {
    let rows = store
        .list_outbox(&filter(select, now), limit)
        .map_err(|e| e.to_string())?;
    let items: Vec<NotificationItem> = rows.into_iter().map(item).collect();
    if as_json {
        for it in &items {
            let _ = writeln!(out, "{}", row_json(it, now));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let _ = writeln!(
        out,
        "{:<9} {:<22} {:>3} {:>12} {:<40} {:<40} ID",
        "STATE", "CHANNEL", "ATT", "CREATED", "WHAT", "LAST"
    );
    for it in &items {
        let r = &it.row;
        let _ = writeln!(
            out,
            "{:<9} {:<22} {:>3} {:>12} {:<40} {:<40} {}",
            r.state.as_str(),
            cell(&r.channel_id.to_string(), 22),
            r.attempts,
            age(now, r.created_at),
            cell(&subject(it), 40),
            cell(&last(r), 40),
            r.idem_key
        );
    }
    if items.is_empty() {
        let _ = writeln!(out, "(no rows)");
    }
    Ok(ExitCode::SUCCESS)
}

/// The payload as `show` prints it: the crossing's without its raw key; an event's is the
/// intake's masked copy already.
fn payload_json(row: &OutboxRow) -> Value {
    match Payload::of(row) {
        Ok(Payload::Crossing(mut p)) => {
            p.key = None;
            serde_json::to_value(&p).unwrap_or(Value::Null)
        }
        Ok(Payload::Event(p)) => serde_json::to_value(&p).unwrap_or(Value::Null),
        Ok(Payload::Test(_)) => Value::Null,
        Err(e) => json!({ "unreadable": e }),
    }
}

fn show(
    store: &Store,
    id: &str,
    as_json: bool,
    now: UnixMs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitCode, String> {
    let Some(row) = store.get(id).map_err(|e| e.to_string())? else {
        let _ = writeln!(
            err,
            "tykwatch: no outbox row {id:?} (see `tykwatch outbox list`)"
        );
        return Ok(ExitCode::from(1));
    };
    let payload = payload_json(&row);
    // The request or e-mail as last sent (masked), stored at send time.
    let sent = store.sent_request(id).map_err(|e| e.to_string())?;
    let it = item(row);
    if as_json {
        let mut v = row_json(&it, now);
        v["payload"] = payload;
        if let Some((at, text)) = &sent {
            v["sent_at_ms"] = (*at).into();
            v["sent_request"] = text
                .split_once('\n')
                .map_or(text.as_str(), |(_, t)| t)
                .into();
        }
        let _ = writeln!(out, "{v}");
        return Ok(ExitCode::SUCCESS);
    }
    let r = &it.row;
    let field = |out: &mut dyn Write, name: &str, value: &str| {
        let _ = writeln!(out, "{:<12} {}", format!("{name}:"), cell(value, 400));
    };
    field(out, "id", &r.idem_key);
    field(
        out,
        "channel",
        &format!("{} ({})", r.channel_id, r.kind().as_str()),
    );
    field(out, "state", r.state.as_str());
    field(out, "attempts", &r.attempts.to_string());
    if matches!(r.state, OutboxState::Pending | OutboxState::Inflight) {
        let when = if r.next_attempt_at <= now {
            "now".to_owned()
        } else {
            format!("in {}", duration((r.next_attempt_at - now) / 1000))
        };
        field(out, "next", &format!("{} ({when})", utc(r.next_attempt_at)));
    }
    field(out, "last", &last(r));
    field(
        out,
        "created",
        &format!("{} ({})", utc(r.created_at), age(now, r.created_at)),
    );
    if let Some(d) = r.delivered_at {
        field(out, "delivered", &utc(d));
    }
    field(out, "what", &subject(&it));
    field(out, "org", &it.org_id);
    match &r.source {
        Source::Crossing {
            quota_key, period, ..
        } => field(out, "quota", &format!("{quota_key} (period {period})")),
        Source::Event { event_id } => field(out, "event", &event_id.to_string()),
    }
    let pretty = serde_json::to_string_pretty(&payload).unwrap_or_default();
    let _ = writeln!(out, "payload:\n{pretty}");
    if let Some((at, text)) = &sent {
        let (summary, request) = text.split_once('\n').unwrap_or(("", text.as_str()));
        let _ = writeln!(out, "sent {} ({summary}):", utc(*at));
        // Receivers' and templates' text: control characters are not written to a terminal.
        for line in request.lines() {
            let _ = writeln!(out, "  {}", cell(line, 4000));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn resend(
    store: &Store,
    ids: &[String],
    now: UnixMs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<ExitCode, String> {
    let mut code = ExitCode::SUCCESS;
    for id in ids {
        if store.resend(id, now).map_err(|e| e.to_string())? {
            let _ = writeln!(out, "queued {id}");
            continue;
        }
        code = ExitCode::from(1);
        match store.get(id).map_err(|e| e.to_string())? {
            None => {
                let _ = writeln!(err, "tykwatch: no outbox row {id:?}");
            }
            Some(row) => {
                let _ = writeln!(
                    err,
                    "tykwatch: {id} is {}: only failed or dead rows are resent",
                    row.state
                );
            }
        }
    }
    Ok(code)
}

fn retry_failed(
    store: &Store,
    select: &Selection,
    dead: bool,
    dry_run: bool,
    now: UnixMs,
    out: &mut dyn Write,
) -> Result<ExitCode, String> {
    let states: &[OutboxState] = if dead {
        &[OutboxState::Failed, OutboxState::Dead]
    } else {
        &[OutboxState::Failed]
    };
    let f = filter(select, now);
    if dry_run || f.created_after.is_some() || f.created_before.is_some() {
        // Age bounds select rows one by one (the bulk update has none); so does a dry run.
        let mut n = 0;
        for state in states {
            let rows = store
                .list_outbox(
                    &OutboxFilter {
                        state: Some(*state),
                        ..f.clone()
                    },
                    usize::MAX,
                )
                .map_err(|e| e.to_string())?;
            for r in rows {
                if dry_run || store.resend(&r.idem_key, now).map_err(|e| e.to_string())? {
                    let _ = writeln!(
                        out,
                        "{} {}",
                        if dry_run { "would queue" } else { "queued" },
                        r.idem_key
                    );
                    n += 1;
                }
            }
        }
        let _ = writeln!(
            out,
            "{n} rows {}",
            if dry_run { "would be queued" } else { "queued" }
        );
        return Ok(ExitCode::SUCCESS);
    }
    let n = store
        .resend_matching(states, &f, now)
        .map_err(|e| e.to_string())?;
    let _ = writeln!(out, "{n} rows queued");
    Ok(ExitCode::SUCCESS)
}

fn purge(
    store: &Store,
    older_than: Duration,
    state: OutboxState,
    dry_run: bool,
    now: UnixMs,
    out: &mut dyn Write,
) -> Result<ExitCode, String> {
    if !matches!(
        state,
        OutboxState::Delivered | OutboxState::Failed | OutboxState::Dead
    ) {
        return Err(format!(
            "outbox purge --state {state}: only delivered, failed or dead rows are purged \
             (a {state} row is still to be sent)"
        ));
    }
    let before = ms_ago(now, older_than);
    if dry_run {
        let n = store
            .list_outbox(
                &OutboxFilter {
                    state: Some(state),
                    created_before: Some(before),
                    ..OutboxFilter::default()
                },
                usize::MAX,
            )
            .map_err(|e| e.to_string())?
            .len();
        let _ = writeln!(
            out,
            "{n} {state} rows older than {} would be deleted",
            duration(older_than.as_secs() as i64)
        );
        return Ok(ExitCode::SUCCESS);
    }
    let n = store
        .purge_state(state, before)
        .map_err(|e| e.to_string())?;
    let _ = writeln!(
        out,
        "deleted {n} {state} rows older than {} (the ledger keeps their crossings: nothing fires again)",
        duration(older_than.as_secs() as i64)
    );
    Ok(ExitCode::SUCCESS)
}
