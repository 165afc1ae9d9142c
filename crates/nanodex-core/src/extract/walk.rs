//! Walking a repository: which files to read, and why the others were skipped.
//!
//! Uses ripgrep's `ignore` walker (so `.gitignore` is honoured), the exclude globs of the config, and never leaves
//! the repository: symlinks are followed only when their target stays inside the root, and loops are detected.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};

use super::lang::Lang;
use super::manifest::is_manifest;
use crate::config::ExtractConfig;

/// A file to parse.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Path relative to the root, `/`-separated.
    pub rel: String,
    /// Absolute path.
    pub abs: PathBuf,
    /// Language.
    pub lang: Lang,
    /// Size in bytes when walked (orders the parse: largest first).
    pub size: u64,
    /// What `stat` said of the file when walked (`None` where it could not be read, and off Unix).
    pub stat: Option<FileStat>,
}

/// What `stat` says of a file: size, modification and status-change times, inode and device. A file whose stat
/// is the one its cached facts were made from is not read again (as git's index does it). Any write to a file, and
/// any rename onto it, changes its status-change time, which tools cannot set back (`touch -d`, `cp -p` and
/// `rsync -a` set the modification time only), so a rewrite is seen even when it keeps the size and the
/// modification time. A stat is only trusted once settled ([`FileStat::settled_before`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    /// Size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub mtime_ns: i64,
    /// Status-change time, nanoseconds since the Unix epoch.
    pub ctime_ns: i64,
    /// Inode number.
    pub ino: u64,
    /// Device number.
    pub dev: u64,
}

impl FileStat {
    /// The stat of `meta`; `None` off Unix, where there is no status-change time to rely on.
    pub fn of(meta: &std::fs::Metadata) -> Option<FileStat> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let ns =
                |secs: i64, nanos: i64| secs.saturating_mul(1_000_000_000).saturating_add(nanos);
            Some(FileStat {
                size: meta.len(),
                mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
                ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
                ino: meta.ino(),
                dev: meta.dev(),
            })
        }
        #[cfg(not(unix))]
        {
            let _ = meta;
            None
        }
    }

    /// Whether both times are before `cutoff_ns`. A file's times come from a clock that ticks in milliseconds, so a
    /// file written again in the same tick as the write its stat saw can keep the same stat: only a stat older than
    /// the run that reads the file, by a margin, tells that no such write can follow unseen (git's "racily clean"
    /// entries; the run keeps the stat of a file written in the margin for nothing, and reads it again next time).
    pub fn settled_before(&self, cutoff_ns: i64) -> bool {
        self.mtime_ns < cutoff_ns && self.ctime_ns < cutoff_ns
    }
}

/// Result of a walk.
#[derive(Debug, Default)]
pub struct Walk {
    /// Source files, sorted by `rel`.
    pub files: Vec<Candidate>,
    /// Dependency manifests (relative, absolute).
    pub manifests: Vec<(String, PathBuf)>,
    /// Skipped entries by reason.
    pub skipped: BTreeMap<String, u64>,
    /// A few example paths per skip reason.
    pub skipped_examples: BTreeMap<String, Vec<String>>,
}

impl Walk {
    /// Counts a skipped path under `reason`.
    pub fn skip(&mut self, reason: &str, rel: &str) {
        *self.skipped.entry(reason.to_string()).or_default() += 1;
        let examples = self.skipped_examples.entry(reason.to_string()).or_default();
        if examples.len() < 5 {
            examples.push(rel.to_string());
        }
    }
}

/// Exclude globs: (patterns for any entry, bare names that match directories only).
fn exclude_set(globs: &[String]) -> (GlobSet, GlobSet) {
    let (mut any, mut dirs) = (GlobSetBuilder::new(), GlobSetBuilder::new());
    for glob in globs {
        // A bare name (`build`) matches a directory of that name at any depth, not a file such as `tools/build`.
        let bare = !glob.contains(['/', '*', '?', '[', '{']);
        let (builder, patterns) = if bare {
            (&mut dirs, vec![glob.clone(), format!("**/{glob}")])
        } else if glob.contains('/') {
            (&mut any, vec![glob.clone()])
        } else {
            (&mut any, vec![glob.clone(), format!("**/{glob}")])
        };
        for p in patterns {
            // Validated in `config`; an invalid glob cannot reach here.
            if let Ok(g) = Glob::new(&p) {
                builder.add(g);
            }
        }
    }
    (
        any.build().unwrap_or_else(|_| GlobSet::empty()),
        dirs.build().unwrap_or_else(|_| GlobSet::empty()),
    )
}

fn relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let mut out = String::new();
    for (n, comp) in rel.components().enumerate() {
        if n > 0 {
            out.push('/');
        }
        out.push_str(&comp.as_os_str().to_string_lossy());
    }
    out
}

/// Walks `root` (an existing directory, canonicalized by the caller).
pub fn walk(cfg: &ExtractConfig, root: &Path) -> Walk {
    let (excludes, dir_excludes) = exclude_set(&cfg.exclude);
    let outside: Arc<Mutex<Vec<String>>> = Arc::default();
    let excluded: Arc<Mutex<Vec<String>>> = Arc::default();
    let (outside_in, excluded_in) = (outside.clone(), excluded.clone());
    let root_buf = root.to_path_buf();
    let mut builder = ignore::WalkBuilder::new(root);
    builder
        .follow_links(true)
        .hidden(!cfg.include_hidden)
        .git_ignore(cfg.respect_gitignore)
        .git_exclude(cfg.respect_gitignore)
        .ignore(cfg.respect_gitignore)
        .git_global(false)
        .parents(false)
        .require_git(false)
        .sort_by_file_name(|a, b| a.cmp(b));
    builder.filter_entry(move |entry| {
        let rel = relative(&root_buf, entry.path());
        if rel.is_empty() {
            return true;
        }
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        if excludes.is_match(&rel) || (is_dir && dir_excludes.is_match(&rel)) {
            if let Ok(mut e) = excluded_in.lock() {
                e.push(rel);
            }
            return false;
        }
        if entry.path_is_symlink() {
            let inside = std::fs::canonicalize(entry.path())
                .map(|t| t.starts_with(&root_buf))
                .unwrap_or(true);
            if !inside {
                if let Ok(mut o) = outside_in.lock() {
                    o.push(rel);
                }
                return false;
            }
        }
        true
    });
    let mut walk = Walk::default();
    let allowed = |lang: Lang| cfg.languages.contains(&lang);
    for result in builder.build() {
        let entry = match result {
            Ok(entry) => entry,
            Err(err) => {
                let reason = if err.is_io()
                    && err
                        .io_error()
                        .is_some_and(|e| e.kind() == std::io::ErrorKind::NotFound)
                {
                    "vanished"
                } else if format!("{err}").contains("loop") {
                    "symlink_loop"
                } else if err
                    .io_error()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
                {
                    "unreadable"
                } else {
                    "walk_error"
                };
                let path = error_path(&err)
                    .map(|p| relative(root, &p))
                    .unwrap_or_else(|| err.to_string());
                walk.skip(reason, &path);
                continue;
            }
        };
        let Some(file_type) = entry.file_type() else {
            continue;
        };
        if !file_type.is_file() {
            continue;
        }
        let rel = relative(root, entry.path());
        let file_name = entry.file_name().to_string_lossy();
        if is_manifest(&file_name) {
            walk.manifests
                .push((rel.clone(), entry.path().to_path_buf()));
        }
        let lang = match Lang::from_path(entry.path()) {
            Some(lang) => Some(lang),
            None if entry.path().extension().is_none() => shebang_lang(entry.path()),
            None => None,
        };
        let Some(lang) = lang else {
            *walk.skipped.entry("unsupported".into()).or_default() += 1;
            continue;
        };
        if !allowed(lang) {
            walk.skip("language_disabled", &rel);
            continue;
        }
        let meta = entry.metadata().ok();
        let size = meta.as_ref().map_or(0, |m| m.len());
        if size > cfg.max_file_size {
            walk.skip("too_large", &rel);
            continue;
        }
        walk.files.push(Candidate {
            rel,
            abs: entry.path().to_path_buf(),
            lang,
            size,
            stat: meta.as_ref().and_then(FileStat::of),
        });
    }
    let mut outside = std::mem::take(&mut *outside.lock().unwrap_or_else(|e| e.into_inner()));
    outside.sort();
    for rel in outside {
        walk.skip("symlink_outside_repo", &rel);
    }
    let mut excluded = std::mem::take(&mut *excluded.lock().unwrap_or_else(|e| e.into_inner()));
    excluded.sort();
    for rel in excluded {
        walk.skip("excluded", &rel);
    }
    walk.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    walk.files.dedup_by(|a, b| a.rel == b.rel);
    walk
}

fn error_path(err: &ignore::Error) -> Option<PathBuf> {
    match err {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_path(err)
        }
        ignore::Error::Loop { child, .. } => Some(child.clone()),
        ignore::Error::Partial(errs) => errs.first().and_then(error_path),
        _ => None,
    }
}

fn shebang_lang(path: &Path) -> Option<Lang> {
    let mut head = [0u8; 128];
    let mut file = std::fs::File::open(path).ok()?;
    let n = file.read(&mut head).ok()?;
    let line = head[..n].split(|b| *b == b'\n').next()?;
    Lang::from_shebang(line)
}
