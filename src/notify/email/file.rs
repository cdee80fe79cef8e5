//! `file`: one `.eml` per notification in a directory (`<data dir>/mail` by default), the
//! demo's backend. The name comes from the notification id ([`super::file_name`]), so a retry
//! or a resend overwrites the earlier file instead of adding one. Writes are atomic: a temp
//! file in the same directory, fsync, rename, fsync of the directory. Readers never see half a
//! message.

use std::fs;
use std::path::{Path, PathBuf};

use super::OutgoingEmail;
use crate::notify::retry::AttemptResult;

#[derive(Debug, Clone)]
pub struct FileSender {
    dir: PathBuf,
}

impl FileSender {
    pub fn new(dir: &Path) -> FileSender {
        FileSender {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the message with notification id `id` goes.
    pub fn path_for(&self, id: &str) -> Result<PathBuf, String> {
        super::file_name(id)
            .map(|n| self.dir.join(n))
            .ok_or_else(|| format!("notification id {id:?} cannot name a file"))
    }

    /// Writes `m` (blocking I/O on a blocking thread). A failed write retries on the
    /// schedule: a full disk or a permission fix are transient from here.
    pub async fn send(&self, m: &OutgoingEmail) -> AttemptResult {
        let path = match self.path_for(&m.id) {
            Ok(p) => p,
            Err(e) => return AttemptResult::Permanent(e),
        };
        let bytes = m.eml();
        let dir = self.dir.clone();
        let target = path.clone();
        let res = tokio::task::spawn_blocking(move || write_atomic(&dir, &target, &bytes)).await;
        match res {
            Ok(Ok(())) => AttemptResult::Accepted,
            Ok(Err(e)) => AttemptResult::Refused {
                status: None,
                transient: true,
                reason: format!("cannot write {}: {e}", path.display()),
                retry_after_ms: None,
            },
            Err(e) => AttemptResult::Refused {
                status: None,
                transient: true,
                reason: format!("the file writer failed: {e}"),
                retry_after_ms: None,
            },
        }
    }
}

/// Writes `target` in `dir` atomically (`crate::atomic_file`). The directory is created
/// owner-only (messages name people and quotas).
pub fn write_atomic(dir: &Path, target: &Path, bytes: &[u8]) -> std::io::Result<()> {
    create_private_dir(dir)?;
    crate::atomic_file::replace(target, bytes)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let mail = dir.path().join("mail");
        let target = mail.join("a.eml");
        write_atomic(&mail, &target, b"one").unwrap();
        write_atomic(&mail, &target, b"two").unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(&mail)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["a.eml"]);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&mail).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
    }
}
