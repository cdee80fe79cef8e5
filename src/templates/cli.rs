//! The `preview`, `templates list|check|import-go` subcommands as plain functions: output goes
//! to the writer given, errors come back as located [`TemplateError`]s (print with `{}`, exit
//! non-zero).

use std::io::Write;
use std::path::Path;

use lettre::message::Mailbox;

use super::{
    ErrorKind, Origin, Part, RenderedEmail, TemplateError, Templates, from_mailbox, go_import,
    go_vars, html_to_terminal_text, parse_json, read_text, to_eml,
};
use crate::config::Config;

/// Largest `--data` file read.
pub const MAX_DATA_BYTES: u64 = 16 * 1024 * 1024;

/// `--format` of `preview`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PreviewFormat {
    /// `Subject:` line, blank line, the plain-text part.
    #[default]
    Text,
    /// The HTML part as sent.
    Html,
    /// The full RFC 5322 message (multipart/alternative).
    Eml,
}

/// Sender and recipients for `--format eml` (and for `check`, which builds every message).
#[derive(Debug, Clone)]
pub struct MailOptions {
    pub from: Mailbox,
    pub to: Vec<String>,
}

impl MailOptions {
    /// `email_backend.default_from_*` and `notify.email_to` (a placeholder recipient when empty).
    pub fn from_config(cfg: &Config) -> Result<MailOptions, TemplateError> {
        let to = if cfg.notify.email_to.is_empty() {
            vec!["recipient@example.com".to_string()]
        } else {
            cfg.notify.email_to.clone()
        };
        Ok(MailOptions {
            from: from_mailbox(&cfg.email_backend)?,
            to,
        })
    }
}

fn io_err(e: std::io::Error) -> TemplateError {
    TemplateError::new(ErrorKind::Io, format!("cannot write output: {e}"))
}

/// `tykwatch preview NAME [--data FILE] [--format text|html|eml]`: renders `name` with the
/// data file, else with its sample.
pub fn preview(
    templates: &Templates,
    name: &str,
    data: Option<&Path>,
    format: PreviewFormat,
    mail: &MailOptions,
    out: &mut dyn Write,
) -> Result<(), TemplateError> {
    let email = render_for_preview(templates, name, data)?;
    match format {
        PreviewFormat::Text => {
            // For a terminal: data with ESC or other control characters cannot move the
            // cursor, retitle the window or clear the screen.
            let text = printable(&email.text.replace("\r\n", "\n"));
            write!(out, "Subject: {}\n\n{text}", printable(&email.subject)).map_err(io_err)?;
            if !text.ends_with('\n') {
                writeln!(out).map_err(io_err)?;
            }
        }
        PreviewFormat::Html => out.write_all(email.html.as_bytes()).map_err(io_err)?,
        PreviewFormat::Eml => {
            let eml = to_eml(
                &email,
                &mail.from,
                &mail.to,
                &format!("preview.{name}@tykwatch"),
            )?;
            out.write_all(eml.as_bytes()).map_err(io_err)?;
        }
    }
    Ok(())
}

/// `s` without control characters other than newline and tab (each shown as `?`).
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// Renders `name` with `data` (a JSON file) or its default sample.
pub fn render_for_preview(
    templates: &Templates,
    name: &str,
    data: Option<&Path>,
) -> Result<RenderedEmail, TemplateError> {
    match data {
        Some(path) => {
            let display = path.display().to_string();
            let text = read_text(path, MAX_DATA_BYTES)?;
            let value = parse_json(&text, &display)?;
            templates
                .render(name, &value)
                .map_err(|e| e.context(format!("rendering {name} with {display}")))
        }
        None => {
            if !templates.contains(name) {
                return Err(templates.unknown(name));
            }
            if templates.samples_of(name).iter().all(|s| s.id != name) {
                return Err(TemplateError::new(
                    ErrorKind::NotFound,
                    format!("{name} has no sample (samples/{name}.json); pass --data FILE"),
                ));
            }
            templates.render_sample(name, name)
        }
    }
}

/// `tykwatch templates list`: each template, where its files come from, its samples.
pub fn list(templates: &Templates, out: &mut dyn Write) -> Result<(), TemplateError> {
    match templates.user_dir() {
        Some(dir) if dir.is_dir() => writeln!(out, "# user templates: {}", dir.display()),
        Some(dir) => writeln!(out, "# user templates: {} (not present)", dir.display()),
        None => writeln!(out, "# user templates: none"),
    }
    .map_err(io_err)?;
    let names = templates.names();
    let width = names.iter().map(String::len).max().unwrap_or(4).max(4);
    writeln!(out, "{:width$}  {:<24}  SAMPLES", "NAME", "SOURCE").map_err(io_err)?;
    for name in names {
        let Some(info) = templates.info(&name) else {
            continue;
        };
        let user: Vec<&str> = info
            .parts
            .iter()
            .filter(|(_, o, _)| matches!(o, Origin::User(_)))
            .map(|(p, _, _)| part_word(*p))
            .collect();
        let missing: Vec<&str> = Part::ALL
            .into_iter()
            .filter(|p| !info.parts.iter().any(|(q, _, _)| q == p))
            .map(part_word)
            .collect();
        let mut source = match user.len() {
            0 => "shipped".to_string(),
            n if n == info.parts.len() => "user".to_string(),
            _ => format!("user: {}", user.join(",")),
        };
        if !missing.is_empty() {
            source.push_str(&format!(" (no {})", missing.join(",")));
        }
        let samples: Vec<&str> = info.samples.iter().map(|s| s.id.as_str()).collect();
        let samples = if samples.is_empty() {
            "-".to_string()
        } else {
            samples.join(" ")
        };
        writeln!(out, "{name:width$}  {source:<24}  {samples}").map_err(io_err)?;
    }
    Ok(())
}

fn part_word(p: Part) -> &'static str {
    match p {
        Part::Subject => "subject",
        Part::Text => "text",
        Part::Html => "html",
    }
}

/// `tykwatch templates check`: renders every template with every sample (subject, text, HTML,
/// the assembled e-mail and the terminal layout of the HTML); prints one line per render and
/// fails if any failed or a template has no sample.
pub fn check(
    templates: &Templates,
    mail: &MailOptions,
    out: &mut dyn Write,
) -> Result<(), TemplateError> {
    let mut total = 0;
    let mut failed = 0;
    for name in templates.names() {
        let samples = templates.samples_of(&name);
        if samples.is_empty() {
            failed += 1;
            writeln!(
                out,
                "FAIL {name}: no sample to render with (add samples/{name}.json)"
            )
            .map_err(io_err)?;
            continue;
        }
        for sample in samples {
            total += 1;
            let result = templates
                .render_sample(&name, &sample.id)
                .and_then(|email| {
                    to_eml(&email, &mail.from, &mail.to, "check@tykwatch")?;
                    html_to_terminal_text(&email.html, 80)
                        .map_err(|e| e.at(sample.display.clone(), None))?;
                    Ok(())
                });
            match result {
                Ok(()) => writeln!(out, "ok   {name} ({})", sample.display),
                Err(e) => {
                    failed += 1;
                    writeln!(out, "FAIL {e}")
                }
            }
            .map_err(io_err)?;
        }
    }
    // A sample whose template is gone is most likely a rename gone wrong.
    for (id, loaded) in &templates.samples {
        let name = id.split('.').next().unwrap_or(id);
        if !templates.contains(name) {
            failed += 1;
            writeln!(
                out,
                "FAIL {}: no template named {name:?} for this sample",
                loaded.display
            )
            .map_err(io_err)?;
        }
    }
    writeln!(out, "{total} renders, {failed} failed").map_err(io_err)?;
    if failed > 0 {
        return Err(TemplateError::new(
            ErrorKind::Check,
            format!("templates check: {failed} failed"),
        ));
    }
    Ok(())
}

/// What `templates import-go` checks the result as.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions<'a> {
    /// `--as NAME`: the template the file becomes. Default: inferred from the file name — a
    /// Tyk Portal mailer (`welcome_dev`, `reset_password`/`reset`, `approve`, `reject`,
    /// `submitted`) or a template name of the set (`key_event.text.tmpl`).
    pub target: Option<&'a str>,
    /// `--sample ID`: check against this sample only. Default: every sample of the target.
    pub sample: Option<&'a str>,
}

/// The part a file is by its name (`.html.tmpl`/`.html` → HTML, `.subject`, else text) and
/// its name without the suffix.
fn part_of(file: &Path) -> (String, Part) {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for (suffix, part) in [
        (".html.tmpl", Part::Html),
        (".text.tmpl", Part::Text),
        (".subject", Part::Subject),
        (".html", Part::Html),
        (".txt", Part::Text),
        (".tmpl", Part::Text),
    ] {
        if let Some(stem) = name.strip_suffix(suffix) {
            return (stem.to_string(), part);
        }
    }
    (name, Part::Text)
}

/// `tykwatch templates import-go FILE [--as NAME] [--sample ID]`: the converted template to
/// `out`, one `FILE:LINE: cannot convert …` line per unconverted construct to `diag`, and an
/// error when there were any (the output is still complete, with them as `{# go: … #}`
/// comments). The Tyk Portal's mail variables are mapped to the target's context
/// (`go_vars`); then the result is rendered as the target's part (by the file's suffix) with
/// the target's samples, as `templates check` would, and a failure is an error at the Go
/// file's line. Without a target (a webhook body) the conversion is not checked, and `diag`
/// says so.
pub fn import_go(
    templates: &Templates,
    file: &Path,
    opts: ImportOptions<'_>,
    out: &mut dyn Write,
    diag: &mut dyn Write,
) -> Result<(), TemplateError> {
    let display = file.display().to_string();
    let src = read_text(file, super::MAX_FILE_BYTES)?;
    let (stem, part) = part_of(file);
    let target: Option<String> = match opts.target {
        Some(t) if super::valid_name(t) && super::is_template_name(t) => Some(t.to_string()),
        Some(t) => {
            return Err(TemplateError::new(
                ErrorKind::NotFound,
                format!("--as {t:?}: not a template name (letters, digits, `_`, `-`)"),
            ));
        }
        None => go_vars::target_from_stem(&stem)
            .map(str::to_string)
            .or_else(|| templates.contains(&stem).then(|| stem.clone())),
    };
    let conv = go_import::convert_for(&src, target.as_deref());
    out.write_all(conv.output.as_bytes()).map_err(io_err)?;
    for issue in &conv.issues {
        writeln!(diag, "{display}:{}: {issue}", issue.line).map_err(io_err)?;
    }
    if !conv.issues.is_empty() {
        return Err(TemplateError::new(
            ErrorKind::Convert,
            format!(
                "{} construct(s) not converted; they are left as {{# go: … #}} comments",
                conv.issues.len()
            ),
        )
        .at(display, None));
    }
    let Some(target) = target else {
        writeln!(
            diag,
            "{display}: converted, not checked: no e-mail template to check it as (pass --as NAME)"
        )
        .map_err(io_err)?;
        return Ok(());
    };
    let file_name = part.file_name(&target);
    let set = templates.with_file(&file_name, &display, conv.output.clone());
    let samples: Vec<String> = match opts.sample {
        Some(id) => vec![id.to_string()],
        None => set.samples_of(&target).into_iter().map(|s| s.id).collect(),
    };
    if samples.is_empty() {
        return Err(TemplateError::new(
            ErrorKind::NotFound,
            format!(
                "converted as {file_name}, but {target} has no sample to check it with (add samples/{target}.json or pass --sample ID)"
            ),
        )
        .at(display, None));
    }
    for id in samples {
        let shown = set
            .samples
            .get(&id)
            .map_or_else(|| id.clone(), |s| s.display.clone());
        let context = format!("checking it as {file_name} with {shown}");
        let data = set.sample(&id).map_err(|e| e.context(context.clone()))?;
        let ctx = minijinja::value::Value::from(minijinja::value::Serde(&data));
        set.render_part(&target, part, &ctx).map_err(|mut e| {
            // Lines of the converted text are lines of the Go file (the converter keeps them).
            if e.file.as_deref() == Some(display.as_str()) {
                e.line = e.line.map(|l| conv.source_line(l));
            }
            e.context(context.clone())
        })?;
        writeln!(diag, "ok   {file_name} ({shown})").map_err(io_err)?;
    }
    Ok(())
}
