//! The one way tykwatch replaces a file (organisation documents, `.eml` files): a temp file
//! beside the target (hidden: `.<name>.<random>.tmp`) → write → fsync → rename over the target
//! → fsync the directory. A reader sees the old file or the new one, never half of one; a crash
//! leaves at most a hidden temp file, which listings skip.
//!
//! The new file keeps the mode of the file it replaces (a 0600 file never becomes 0644); a new
//! file is 0600 (tempfile's default): these files name people, keys and organisations.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// The directory of `path` and a new hidden temp file in it (`.<name>.<random>.tmp`).
fn temp_beside(path: &Path) -> io::Result<(&Path, tempfile::NamedTempFile)> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    Ok((dir, tmp))
}

/// Replaces (or creates) `path` with `bytes`.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<()> {
    replace_with(path, bytes, || Ok(()))
}

/// [`replace`], with `before_rename` run once the temp file is written and fsynced: when it
/// fails, the temp file is left where it is and the target untouched, as a crash at that point
/// would (tests simulate that crash with it).
pub fn replace_with(
    path: &Path,
    bytes: &[u8],
    before_rename: impl FnOnce() -> io::Result<()>,
) -> io::Result<()> {
    let (dir, mut tmp) = temp_beside(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = fs::metadata(path) {
            let mode = meta.permissions().mode() & 0o7777;
            tmp.as_file()
                .set_permissions(fs::Permissions::from_mode(mode))?;
        }
    }
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    if let Err(e) = before_rename() {
        // Kept, as after a crash; `keep` only fails on platforms without the file's path.
        let _ = tmp.keep();
        return Err(e);
    }
    tmp.persist(path).map_err(|e| e.error)?;
    // Makes the rename itself durable. The data is already safe and the rename done, so a
    // directory that cannot be fsynced (some file systems refuse) is not a failed write.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Creates `path` with `bytes` the same way (temp file, fsync, rename), but never replaces a
/// file: `AlreadyExists` when `path` exists, also when it appeared meanwhile (the last step is
/// a no-clobber rename). For copies that must not overwrite what a person wrote.
pub fn create(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (dir, mut tmp) = temp_beside(path)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist_noclobber(path).map_err(|e| e.error)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_keeps_the_mode_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        replace(&path, b"one").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o600, "a new file is private");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
            replace(&path, b"two").unwrap();
            assert_eq!(mode(&path), 0o640, "a replaced file keeps its mode");
        }
        #[cfg(not(unix))]
        replace(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(names(dir.path()), ["a.json"]);
    }

    #[test]
    fn create_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.tmpl");
        create(&path, b"one").unwrap();
        let err = create(&path, b"two").unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(fs::read(&path).unwrap(), b"one");
        assert_eq!(names(dir.path()), ["a.tmpl"]);
    }

    #[test]
    fn a_crash_before_the_rename_leaves_the_target_and_a_complete_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        replace(&path, b"old").unwrap();
        let err = replace_with(&path, b"new", || Err(io::Error::other("crash"))).unwrap_err();
        assert_eq!(err.to_string(), "crash");
        assert_eq!(fs::read(&path).unwrap(), b"old");
        let left = names(dir.path());
        assert_eq!(left.len(), 2, "{left:?}");
        let temp = left.iter().find(|n| n.starts_with(".a.json.")).unwrap();
        assert!(temp.ends_with(".tmp"));
        assert_eq!(fs::read(dir.path().join(temp)).unwrap(), b"new");
    }
}
