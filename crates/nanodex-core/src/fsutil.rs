//! Small file-system helpers shared by stages: atomic writes and the workspace lock.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, then rename.
/// A crash leaves either the old file or the new one, never a torn one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    write_atomic_parts(path, &[bytes])
}

/// [`write_atomic`] of the concatenation of `parts` (not built in memory).
pub fn write_atomic_parts(path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id()
    ));
    {
        let mut file = File::create(&tmp)?;
        for part in parts {
            file.write_all(part)?;
        }
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Flushes every file and directory under `dir` (and `dir` itself) to disk. Symlinks are not followed. A store
/// written without a sync per commit is made durable this way before anything points at it.
pub fn sync_tree(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            sync_tree(&entry.path())?;
        } else if kind.is_file() {
            File::open(entry.path())?.sync_all()?;
        }
    }
    File::open(dir)?.sync_all()
}

/// An exclusive advisory lock on a file, held until dropped (released by the OS if the process dies).
#[derive(Debug)]
pub struct FileLock {
    _file: File,
    /// The lock file.
    pub path: PathBuf,
}

/// Why a lock could not be taken.
#[derive(Debug)]
pub enum LockError {
    /// Another process holds it; its pid as written in the file.
    Held(String),
    /// The lock file could not be opened.
    Io(std::io::Error),
}

/// Takes the lock at `path` without waiting, writing our pid into the file.
pub fn try_lock(path: &Path) -> Result<FileLock, LockError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(LockError::Io)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(LockError::Io)?;
    match file.try_lock() {
        Ok(()) => {
            let _ = file.set_len(0);
            let _ = writeln!(file, "{}", std::process::id());
            Ok(FileLock {
                _file: file,
                path: path.to_path_buf(),
            })
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let pid = std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            Err(LockError::Held(if pid.is_empty() {
                "?".into()
            } else {
                pid
            }))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(LockError::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_tree_visits_nested_folders_without_following_links_and_reports_what_it_cannot_open() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("store");
        std::fs::create_dir_all(root.join("wal/deeper")).unwrap();
        std::fs::write(root.join("wal/deeper/00001.wal"), b"log").unwrap();
        std::fs::write(root.join("manifest"), b"m").unwrap();
        // A link back to the root would loop if it were followed.
        std::os::unix::fs::symlink(&root, root.join("wal/loop")).unwrap();
        sync_tree(&root).unwrap();
        // An unreadable file inside is an error, not skipped (root ignores permissions, so only when not root).
        let locked = root.join("wal/deeper/locked");
        std::fs::write(&locked, b"x").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        if File::open(&locked).is_err() {
            assert!(sync_tree(&root).is_err());
        }
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            sync_tree(&tmp.path().join("missing")).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }
}
