//! `tykwatch key set-triggers KEY 95,80,50`: the console's trigger-limit editor for scripts —
//! the same validation, the same `PUT …?suppress_reset=1` of the whole session and the same
//! conflict check (`crate::triggers`).
//!
//! Exit status: 0 saved (also "nothing to change"), 1 a list, key or conflict to fix, 2 the
//! gateway cannot be used (none configured, down, refused secret).

use std::io::Write;
use std::process::ExitCode;

use super::Setup;
use crate::triggers::{self, EditError, Target, format_limits, parse_limits};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetTriggers {
    /// The key (or with `hashed` its hash, or with `org` an organisation id).
    pub id: String,
    pub limits: String,
    pub hashed: bool,
    pub org: bool,
    pub dry_run: bool,
}

pub async fn set_triggers(
    setup: &Setup,
    cmd: &SetTriggers,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> ExitCode {
    // A bad list is reported before the gateway is contacted.
    let limits = match parse_limits(&cmd.limits) {
        Ok(l) => l,
        Err(e) => {
            let _ = writeln!(err, "tykwatch: trigger limits {:?}: {e}", cmd.limits);
            return ExitCode::from(1);
        }
    };
    if setup.args.readonly && !cmd.dry_run {
        let _ = writeln!(
            err,
            "tykwatch: --readonly: not saving (use --dry-run to see the change)"
        );
        return ExitCode::from(1);
    }
    if let Err(e) = setup.require_gateway("key set-triggers") {
        let _ = writeln!(err, "tykwatch: {e}");
        return ExitCode::from(2);
    }
    let conn = match setup.connect().await {
        Ok(t) => t,
        Err(e) => {
            let _ = writeln!(err, "tykwatch: {e}");
            return ExitCode::from(2);
        }
    };
    let gw = match conn.edit_gateway() {
        Ok(g) => g,
        Err(e) => {
            let _ = writeln!(err, "tykwatch: {e}");
            return ExitCode::from(2);
        }
    };
    let target = if cmd.org {
        Target::Org(cmd.id.clone())
    } else {
        Target::Key {
            id: cmd.id.clone(),
            hashed: cmd.hashed,
        }
    };
    let result = async {
        let prepared = triggers::prepare(&gw, target.clone(), &limits).await?;
        let _ = writeln!(
            out,
            "{}: trigger_limits {} → {}",
            target.label(),
            format_limits(&prepared.before),
            format_limits(&prepared.after)
        );
        if prepared.unchanged() {
            let _ = writeln!(out, "nothing to change");
            return Ok(());
        }
        if cmd.dry_run {
            let _ = writeln!(
                out,
                "not saved (--dry-run); a save sends {}",
                target.put_call()
            );
            return Ok(());
        }
        triggers::save(&gw, &prepared).await?;
        let _ = writeln!(
            out,
            "saved: {} (the quota was not reset)",
            target.put_call()
        );
        Ok::<(), EditError>(())
    }
    .await;
    let _ = out.flush();
    if let Some(demo) = conn.demo {
        demo.shutdown().await;
    }
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(err, "tykwatch: {e}");
            if let EditError::Conflict { changes, .. } = &e {
                let _ = writeln!(err, "changed since it was read:");
                for c in changes {
                    let _ = writeln!(err, "  {c}");
                }
            }
            let code = match e {
                EditError::Gateway(_) => 2,
                _ => 1,
            };
            ExitCode::from(code)
        }
    }
}
