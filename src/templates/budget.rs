//! What one render may cost. A user template is code: `range(99999)` nested twice, or a string
//! doubled in a loop, would otherwise hold a thread (and the engine's delivery, health and
//! signal handling with it) for as long as it likes and take all the memory it asks for.
//!
//! Every render of both environments (e-mail and Tyk webhook bodies) runs with minijinja fuel,
//! which charges each instruction and each byte a template creates (its output, `{% set %}`
//! captures, `~` concatenations, filter results), and writes into a buffer capped at
//! [`MAX_OUTPUT_BYTES`]. Either limit fails that one render with [`ErrorKind::Limit`] at the
//! template's file:line; nothing else is affected. Async callers also render on the blocking
//! pool under [`DEADLINE`] ([`off_runtime`]), so the runtime's workers never run a template.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use minijinja::Template;
use minijinja::value::Value;

use super::{ErrorKind, TemplateError};

/// Fuel of one render (one part of an e-mail, one webhook body). One fuel is one instruction
/// or 64 bytes created; the shipped templates use under 20 000 (see the test), a render that
/// runs out takes well under a second, and the most it can allocate is about 64 MiB.
pub const FUEL: u64 = 1_000_000;

/// Largest output of one render. E-mails and webhook bodies are a few KiB.
pub const MAX_OUTPUT_BYTES: usize = 1024 * 1024;

/// How long an async caller waits for a render on the blocking pool.
pub const DEADLINE: Duration = Duration::from_secs(5);

/// Output buffer that refuses to grow past [`MAX_OUTPUT_BYTES`].
struct Capped {
    buf: Vec<u8>,
    over: bool,
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.buf.len() + data.len() > MAX_OUTPUT_BYTES {
            self.over = true;
            return Err(std::io::Error::other("output limit"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `tmpl` within the budget. `files` maps template names to the paths errors show.
pub(crate) fn render(
    tmpl: &Template<'_, '_>,
    ctx: Value,
    files: &BTreeMap<String, String>,
) -> Result<String, TemplateError> {
    let mut out = Capped {
        buf: Vec::new(),
        over: false,
    };
    let result = tmpl.render_captured_to(ctx, &mut out).map(drop);
    match result {
        Ok(()) => String::from_utf8(out.buf).map_err(|_| {
            TemplateError::new(ErrorKind::Render, "the output is not UTF-8")
                .at(display(tmpl.name(), files), None)
        }),
        Err(e) if out.over => Err(TemplateError::new(
            ErrorKind::Limit,
            format!("output over {MAX_OUTPUT_BYTES} bytes"),
        )
        .at(display(e.name().unwrap_or(tmpl.name()), files), e.line())),
        Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => {
            let mut err = TemplateError::from_minijinja(&e, files);
            err.kind = ErrorKind::Limit;
            err.message = format!(
                "ran out of fuel (a render may take {FUEL} steps; look for nested loops or \
                 values that grow)"
            );
            if err.file.is_none() {
                err = err.at(display(tmpl.name(), files), None);
            }
            Err(err)
        }
        Err(e) => Err(TemplateError::from_minijinja(&e, files)),
    }
}

fn display(name: &str, files: &BTreeMap<String, String>) -> String {
    files.get(name).cloned().unwrap_or_else(|| name.to_string())
}

/// Runs `f` (which renders) on the blocking pool and waits at most [`DEADLINE`]. The fuel bounds
/// how long a render that is given up on keeps its thread.
pub async fn off_runtime<T, F>(f: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, String> + Send + 'static,
{
    match tokio::time::timeout(DEADLINE, tokio::task::spawn_blocking(f)).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) => Err(format!("rendering failed: {join}")),
        Err(_) => Err(format!(
            "rendering took longer than {} s",
            DEADLINE.as_secs()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::templates::Templates;
    use crate::templates::go::GoTemplate;

    fn user_set(dir: &std::path::Path, text: &str) -> Templates {
        std::fs::write(dir.join("quota_threshold.text.tmpl"), text).unwrap();
        Templates::load(Some(dir)).unwrap()
    }

    #[test]
    fn nested_loops_run_out_of_fuel_at_their_line() {
        let dir = tempfile::tempdir().unwrap();
        let t = user_set(
            dir.path(),
            "hello\n{% for a in range(99999) %}{% for b in range(99999) %}x{% endfor %}{% endfor %}\n",
        );
        let started = std::time::Instant::now();
        let err = t
            .render_sample("quota_threshold", "quota_threshold")
            .unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(err.kind, ErrorKind::Limit, "{err}");
        let shown = err.to_string();
        assert!(
            shown.contains("quota_threshold.text.tmpl:2: ran out of fuel"),
            "{shown}"
        );
    }

    #[test]
    fn a_doubling_string_runs_out_before_it_takes_the_memory() {
        let dir = tempfile::tempdir().unwrap();
        let t = user_set(
            dir.path(),
            "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}\
             {% endfor %}{{ ns.s }}\n",
        );
        let err = t
            .render_sample("quota_threshold", "quota_threshold")
            .unwrap_err();
        assert_eq!(err.kind, ErrorKind::Limit, "{err}");
    }

    #[test]
    fn output_over_the_cap_is_refused() {
        // Cheap in fuel (one instruction per 64-byte chunk is not enough to stop it first): a
        // long literal printed in a loop.
        let chunk = "y".repeat(60_000);
        let src = format!("{{% for i in range(40) %}}{chunk}{{% endfor %}}\n");
        let hook = GoTemplate::new("body.json", &src).unwrap();
        let err = hook.render(&serde_json::json!({})).unwrap_err();
        assert_eq!(err.kind, ErrorKind::Limit, "{err}");
        assert!(
            err.to_string().contains("output over 1048576 bytes"),
            "{err}"
        );
    }

    #[test]
    fn shipped_templates_use_a_fiftieth_of_the_fuel() {
        let mut t = Templates::shipped();
        t.env.set_fuel(Some(FUEL / 50));
        for name in t.names() {
            for sample in t.samples_of(&name) {
                if let Err(e) = t.render_sample(&name, &sample.id) {
                    panic!("{name} with {}: {e}", sample.id);
                }
            }
        }
    }

    #[tokio::test]
    async fn off_runtime_gives_the_result_or_says_it_failed() {
        assert_eq!(off_runtime(|| Ok::<_, String>(7)).await, Ok(7));
        let panicked = off_runtime(|| -> Result<(), String> { panic!("boom") }).await;
        assert!(panicked.unwrap_err().starts_with("rendering failed"));
    }
}
