//! `tykwatch org list | get ID | set ID EVENT.FIELD=VALUE…`: the org editor for scripts, with the
//! console's validation, atomic saves and conflict check.
//!
//! Exit status: 0 done (also "nothing to change"), 1 a value, event, org id or conflict to fix,
//! 2 the source cannot be used (down, garbage, refused secret, unwritable directory).

use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use super::Setup;
use crate::orgs::diff::pending_changes;
use crate::orgs::document::{FieldEdit, OrgDocument};
use crate::orgs::json::Json;
use crate::orgs::source::{OrgError, OrgSource};
use crate::tyk::demo::{DemoGateway, DemoOptions};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrgCommand {
    /// Every organisation with the events it has set up; `json`: one JSON object per line.
    List { json: bool },
    /// The whole document, pretty-printed.
    Get { id: String },
    /// Applies `EVENT.FIELD=VALUE` assignments and saves; `dry_run` prints the diff only.
    Set {
        id: String,
        assignments: Vec<String>,
        dry_run: bool,
    },
}

/// Runs one `org` command, writing results to `out` and messages to `err`.
pub async fn run(
    setup: &Setup,
    command: &OrgCommand,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> ExitCode {
    // Bad assignments are reported before any source is contacted.
    let edits = match command {
        OrgCommand::Set { assignments, .. } => match parse_edits(assignments, err) {
            Some(edits) => edits,
            None => return ExitCode::from(1),
        },
        _ => Vec::new(),
    };
    if setup.args.readonly && matches!(command, OrgCommand::Set { dry_run: false, .. }) {
        let _ = writeln!(
            err,
            "tykwatch: --readonly: not saving (use --dry-run to see the changes)"
        );
        return ExitCode::from(1);
    }
    let (source, demo) = match open_source(setup).await {
        Ok(pair) => pair,
        Err(e) => {
            let _ = writeln!(err, "tykwatch: {e}");
            return ExitCode::from(e.exit_code());
        }
    };
    let result = match command {
        OrgCommand::List { json } => list(&source, *json, out, err).await,
        OrgCommand::Get { id } => source.get(id).await.map(|doc| {
            let _ = out.write_all(doc.to_pretty_json().as_bytes());
        }),
        OrgCommand::Set { id, dry_run, .. } => set(&source, id, &edits, *dry_run, out).await,
    };
    let _ = out.flush();
    if let Some(demo) = demo {
        demo.shutdown().await;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(err, "tykwatch: {e}");
            if let Some(conflict) = e.conflict() {
                let changes = conflict.changes();
                if !changes.is_empty() {
                    let _ = writeln!(err, "changed since it was loaded:");
                    for c in changes {
                        let _ = writeln!(err, "  {c}");
                    }
                }
            }
            ExitCode::from(e.exit_code())
        }
    }
}

fn parse_edits(assignments: &[String], err: &mut dyn Write) -> Option<Vec<FieldEdit>> {
    if assignments.is_empty() {
        let _ = writeln!(
            err,
            "tykwatch: nothing to set: give EVENT.FIELD=VALUE, e.g. key_event.webhook=https://hooks.example.com/tyk key_event.redis=true"
        );
        return None;
    }
    let mut edits = Vec::new();
    let mut ok = true;
    for a in assignments {
        match FieldEdit::parse(a) {
            Ok(e) => edits.push(e),
            Err(e) => {
                let _ = writeln!(err, "tykwatch: {e}");
                ok = false;
            }
        }
    }
    ok.then_some(edits)
}

/// `[dashboard] url` or `[orgs] dir`; the embedded demo Dashboard only with `--demo` (a script
/// must never read, or "save" to, made-up organisations because a config was not found).
async fn open_source(setup: &Setup) -> Result<(OrgSource, Option<DemoGateway>), OrgError> {
    if !setup.args.demo {
        return match OrgSource::configured(&setup.config)? {
            Some(source) => Ok((source, None)),
            None => Err(OrgError::Setup(format!(
                "no organisation source: set [dashboard] url (and its admin secret) or [orgs] dir \
                 in {}, or pass --demo to use the embedded demo Dashboard",
                setup.paths.config_file.display()
            ))),
        };
    }
    let demo = DemoGateway::start(DemoOptions {
        simulate: false,
        ..DemoOptions::default()
    })
    .await
    .map_err(|e| OrgError::Setup(format!("cannot start the demo Dashboard: {e}")))?;
    let source = OrgSource::demo(&demo)?;
    Ok((source, Some(demo)))
}

async fn list(
    source: &OrgSource,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), OrgError> {
    let listing = source.list().await?;
    for w in &listing.warnings {
        let _ = writeln!(err, "tykwatch: warning: {}", plain(w));
    }
    if json {
        for doc in &listing.orgs {
            let line = ListLine {
                id: doc.id(),
                owner_name: doc.name(),
                event_options: doc.as_object().get("event_options"),
            };
            let _ = writeln!(out, "{}", serde_json::to_string(&line).unwrap_or_default());
        }
        return Ok(());
    }
    let id_width = listing
        .orgs
        .iter()
        .map(|d| d.id().chars().count())
        .max()
        .unwrap_or(2)
        .max(2);
    let name_width = listing
        .orgs
        .iter()
        .map(|d| d.name().chars().count().min(32))
        .max()
        .unwrap_or(4)
        .max(4);
    let _ = writeln!(out, "{:<id_width$}  {:<name_width$}  EVENTS", "ID", "NAME");
    for doc in &listing.orgs {
        let _ = writeln!(
            out,
            "{:<id_width$}  {:<name_width$}  {}",
            plain(doc.id()),
            clip(&plain(doc.name()), 32),
            plain(&summary(doc))
        );
    }
    Ok(())
}

/// One line of `org list --json`; `event_options` in document order.
#[derive(Serialize)]
struct ListLine<'a> {
    id: &'a str,
    owner_name: &'a str,
    event_options: Option<&'a Json>,
}

/// `api_event(webhook,email) key_event(redis)`: the events that do something.
fn summary(doc: &OrgDocument) -> String {
    let parts: Vec<String> = doc
        .events()
        .into_iter()
        .filter_map(|e| {
            let c = &e.config;
            let on: Vec<&str> = [
                (!c.webhook.is_empty()).then_some("webhook"),
                (!c.email.is_empty()).then_some("email"),
                c.redis.then_some("redis"),
            ]
            .into_iter()
            .flatten()
            .collect();
            (!on.is_empty()).then(|| format!("{}({})", e.name, on.join(",")))
        })
        .collect();
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(" ")
    }
}

async fn set(
    source: &OrgSource,
    id: &str,
    edits: &[FieldEdit],
    dry_run: bool,
    out: &mut dyn Write,
) -> Result<(), OrgError> {
    let original = source.get(id).await?;
    let mut edited = original.clone();
    edited.apply_all(edits)?;
    let changes = pending_changes(&original, &edited);
    if changes.is_empty() {
        let _ = writeln!(
            out,
            "organisation {id}: no change (the values are already set)"
        );
        return Ok(());
    }
    for c in &changes {
        let _ = writeln!(out, "{c}");
    }
    if dry_run {
        let _ = writeln!(out, "dry run: not saved");
        return Ok(());
    }
    source.save(&original, &edited).await?;
    let note = if source.is_demo() {
        " (the demo Dashboard forgets it when this command exits)"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "saved organisation {id} to the {}{note}",
        source.label()
    );
    Ok(())
}

/// Control characters never reach a terminal.
fn plain(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}
