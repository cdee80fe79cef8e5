//! One error type for everything template-related, displayed as `FILE:LINE: message` so an
//! editor, a terminal or CI log points straight at the cause.

use std::collections::BTreeMap;
use std::fmt;

/// What went wrong, for callers that branch on it (the preview pane, exit codes, tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// No such template, template part or sample.
    NotFound,
    /// The template does not parse.
    Syntax,
    /// The template parsed but rendering failed (undefined value, bad filter argument, …).
    Render,
    /// A file or directory could not be read.
    Io,
    /// A file is binary / not UTF-8.
    NotText,
    /// A file is larger than [`super::MAX_FILE_BYTES`].
    TooLarge,
    /// Sample or `--data` JSON is malformed, or data does not serialize.
    Data,
    /// The e-mail could not be assembled (bad address, bad Message-ID).
    Message,
    /// `import-go` found constructs it could not convert.
    Convert,
    /// `templates check` found failures (each already printed).
    Check,
    /// `templates export` would replace files that exist (without `--force`).
    Exists,
    /// A render ran out of fuel or wrote more than [`super::budget::MAX_OUTPUT_BYTES`].
    Limit,
}

/// A located template error. `Display`: `FILE:LINE: message (context)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub kind: ErrorKind,
    /// The file as the user knows it: `email_templates/NAME.html.tmpl` for shipped ones, the full
    /// path for files of the user directory.
    pub file: Option<String>,
    pub line: Option<usize>,
    pub message: String,
    /// What was being done, e.g. `rendering quota_threshold with email_templates/samples/…`.
    pub context: Option<String>,
}

impl TemplateError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        TemplateError {
            kind,
            file: None,
            line: None,
            message: message.into(),
            context: None,
        }
    }

    pub fn at(mut self, file: impl Into<String>, line: Option<usize>) -> Self {
        self.file = Some(file.into());
        self.line = line;
        self
    }

    /// Adds what was being done; an existing context is kept (the innermost one is the most
    /// precise).
    pub fn context(mut self, context: impl Into<String>) -> Self {
        if self.context.is_none() {
            self.context = Some(context.into());
        }
        self
    }

    /// Converts a minijinja error, mapping its template name to the file it came from.
    pub(crate) fn from_minijinja(err: &minijinja::Error, files: &BTreeMap<String, String>) -> Self {
        use minijinja::ErrorKind as K;
        let kind = match err.kind() {
            K::SyntaxError | K::BadEscape | K::InvalidDelimiter => ErrorKind::Syntax,
            K::TemplateNotFound => ErrorKind::NotFound,
            _ => ErrorKind::Render,
        };
        let mut message = match err.detail() {
            Some(detail) => format!("{}: {detail}", err.kind()),
            None => err.kind().to_string(),
        };
        // Loader and include errors carry the real cause as a source.
        let mut source = std::error::Error::source(err);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        let mut out = TemplateError::new(kind, message);
        if let Some(name) = err.name() {
            let file = files.get(name).cloned().unwrap_or_else(|| name.to_string());
            out = out.at(file, err.line());
        }
        out
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line) {
            (Some(file), Some(line)) => write!(f, "{file}:{line}: ")?,
            (Some(file), None) => write!(f, "{file}: ")?,
            _ => {}
        }
        f.write_str(&self.message)?;
        if let Some(context) = &self.context {
            write!(f, " ({context})")?;
        }
        Ok(())
    }
}

impl std::error::Error for TemplateError {}
