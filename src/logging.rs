//! `tykwatch run`'s logs: `tracing` events on stderr, as text or one JSON object per line
//! (stdout stays the event stream of JSON lines). `--log-level` sets tykwatch's own level;
//! without it `RUST_LOG` (full `EnvFilter` syntax) is used, else `info`. What is logged is what
//! the stream carries — masked ids, reasons without secret values — never a raw key or a
//! configured secret (tests grep every output for them).

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "human" | "text" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            _ => Err(format!("{s:?}: human or json")),
        }
    }
}

/// The filter directives: `tykwatch=<level>` from `--log-level`, else `RUST_LOG`, else info.
pub fn directives(level: Option<&str>, rust_log: Option<String>) -> String {
    match (level, rust_log.filter(|v| !v.trim().is_empty())) {
        (Some(l), _) => format!("tykwatch={l}"),
        (None, Some(env)) => env,
        (None, None) => "tykwatch=info".to_owned(),
    }
}

/// Installs the subscriber for this process; an invalid level or `RUST_LOG` is an error that
/// says which.
pub fn init(level: Option<&str>, format: LogFormat) -> Result<(), String> {
    let rust_log = std::env::var("RUST_LOG").ok();
    let from = if level.is_some() {
        "--log-level"
    } else {
        "RUST_LOG"
    };
    let d = directives(level, rust_log);
    let filter = EnvFilter::try_new(&d).map_err(|e| format!("{from} {d:?}: {e}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false);
    let result = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    result.map_err(|e| format!("cannot install the logger: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flag_wins_then_rust_log_then_info() {
        assert_eq!(
            directives(Some("debug"), Some("trace".into())),
            "tykwatch=debug"
        );
        assert_eq!(
            directives(None, Some("tykwatch=warn,hyper=info".into())),
            "tykwatch=warn,hyper=info"
        );
        assert_eq!(directives(None, Some("  ".into())), "tykwatch=info");
        assert_eq!(directives(None, None), "tykwatch=info");
    }
}
