//! Copies of the shipped templates for editing: `tykwatch templates export NAME [--to DIR]
//! [--force]` and [`ensure_user_copy`], what the console's "edit this template" uses. The
//! binary embeds the shipped set (`shipped.rs`), so these are the only way a user without the
//! source tree gets a starting point.
//!
//! Files are written as `atomic_file` writes them (temp file, fsync, rename), and a file that
//! exists is never replaced unless `--force` says so: refusing happens before anything is
//! written, naming every file in the way.

use std::collections::BTreeSet;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::{ErrorKind, FileRole, LAYOUT, Part, TemplateError, classify, shipped};
use crate::atomic_file;

/// The shipped files of `name` (its subject, text and HTML parts, its samples), as
/// (path relative to the template directory, contents); `layout` is the HTML layout alone.
pub fn shipped_files(name: &str) -> Vec<(&'static str, &'static str)> {
    shipped::FILES
        .iter()
        .filter(|(rel, _)| match classify(Path::new(rel)) {
            Some(FileRole::Template { name: n, .. }) | Some(FileRole::Sample { name: n, .. }) => {
                n == name
            }
            None => false,
        })
        .copied()
        .collect()
}

/// What `export` takes: every shipped template name and `layout`, sorted.
pub fn exportable_names() -> Vec<String> {
    let names: BTreeSet<String> = shipped::FILES
        .iter()
        .filter_map(|(rel, _)| match classify(Path::new(rel)) {
            Some(FileRole::Template { name, .. }) => Some(name),
            _ => None,
        })
        .collect();
    names.into_iter().collect()
}

fn unknown(name: &str) -> TemplateError {
    TemplateError::new(
        ErrorKind::NotFound,
        format!(
            "no shipped template named {name:?} (shipped: {})",
            exportable_names().join(", ")
        ),
    )
}

fn write_error(path: &Path, e: &io::Error) -> TemplateError {
    TemplateError::new(ErrorKind::Io, format!("cannot write: {e}"))
        .at(path.display().to_string(), None)
}

fn create_dirs(dir: &Path) -> Result<(), TemplateError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        TemplateError::new(ErrorKind::Io, format!("cannot create the directory: {e}"))
            .at(dir.display().to_string(), None)
    })
}

/// `tykwatch templates export NAME [--to DIR] [--force]`: writes the shipped files of `name`
/// into `dir` (created when missing; `samples/` for the samples), one `wrote PATH` line each.
/// Without `force`, when any of them exists nothing is written and the error names them all.
/// Returns the paths written.
pub fn export(
    name: &str,
    dir: &Path,
    force: bool,
    out: &mut dyn Write,
) -> Result<Vec<PathBuf>, TemplateError> {
    let files = shipped_files(name);
    if files.is_empty() {
        return Err(unknown(name));
    }
    let targets: Vec<(PathBuf, &str)> = files
        .iter()
        .map(|(rel, text)| (dir.join(rel), *text))
        .collect();
    if !force {
        // `symlink_metadata`: a dangling link is in the way too.
        let existing: Vec<String> = targets
            .iter()
            .filter(|(p, _)| p.symlink_metadata().is_ok())
            .map(|(p, _)| p.display().to_string())
            .collect();
        if !existing.is_empty() {
            return Err(TemplateError::new(
                ErrorKind::Exists,
                format!(
                    "not exporting {name}: {} file(s) exist and would be replaced (pass --force to replace them): {}",
                    existing.len(),
                    existing.join(", ")
                ),
            ));
        }
    }
    let mut written = Vec::new();
    for (path, text) in targets {
        if let Some(parent) = path.parent() {
            create_dirs(parent)?;
        }
        let result = if force {
            atomic_file::replace(&path, text.as_bytes())
        } else {
            // A file that appeared since the check is still not replaced.
            atomic_file::create(&path, text.as_bytes())
        };
        result.map_err(|e| write_error(&path, &e))?;
        writeln!(out, "wrote {}", path.display())
            .map_err(|e| TemplateError::new(ErrorKind::Io, format!("cannot write output: {e}")))?;
        written.push(path);
    }
    Ok(written)
}

/// Makes `name` editable in `user_dir` and returns the file to open in an editor.
///
/// Copies the shipped parts of `name` (`NAME.subject`, `NAME.text.tmpl`, `NAME.html.tmpl`, or
/// `layout.html.tmpl` for `layout`) that `user_dir` does not have, creating the directory;
/// a file the user already has is never replaced (not even one written meanwhile). Samples are
/// not copied: the shipped ones keep applying until the user adds their own.
///
/// Returns `user_dir/NAME.text.tmpl` when it exists afterwards, else the HTML part, else the
/// subject. A template only the user has (no shipped files) is fine as long as one of its
/// parts exists in `user_dir`; an unknown name is a `NotFound` error listing the shipped names,
/// a directory or file that cannot be written an `Io` error naming it.
pub fn ensure_user_copy(name: &str, user_dir: &Path) -> Result<PathBuf, TemplateError> {
    let parts: Vec<(&str, &str)> = shipped_files(name)
        .into_iter()
        .filter(|(rel, _)| matches!(classify(Path::new(rel)), Some(FileRole::Template { .. })))
        .collect();
    if !parts.is_empty() {
        create_dirs(user_dir)?;
    }
    for (rel, text) in parts {
        let path = user_dir.join(rel);
        if path.symlink_metadata().is_ok() {
            continue;
        }
        match atomic_file::create(&path, text.as_bytes()) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(write_error(&path, &e)),
        }
    }
    let candidates: Vec<String> = if name == "layout" {
        vec![LAYOUT.to_string()]
    } else {
        [Part::Text, Part::Html, Part::Subject]
            .into_iter()
            .map(|p| p.file_name(name))
            .collect()
    };
    candidates
        .into_iter()
        .map(|f| user_dir.join(f))
        .find(|p| p.is_file())
        .ok_or_else(|| unknown(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_a_template_and_of_the_layout() {
        let rels: Vec<&str> = shipped_files("quota_threshold")
            .iter()
            .map(|(r, _)| *r)
            .collect();
        assert_eq!(
            rels,
            [
                "quota_threshold.html.tmpl",
                "quota_threshold.subject",
                "quota_threshold.text.tmpl",
                "samples/quota_threshold.json",
                "samples/quota_threshold.key.json",
                "samples/quota_threshold.org.json",
            ]
        );
        // `quota_threshold_developer` is a name of its own, not a variant.
        let layout: Vec<&str> = shipped_files("layout").iter().map(|(r, _)| *r).collect();
        assert_eq!(layout, ["layout.html.tmpl"]);
        assert!(shipped_files("nope").is_empty());
        assert!(exportable_names().contains(&"layout".to_string()));
    }
}
