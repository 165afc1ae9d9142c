//! Stage 1, extraction: a repository on disk in, a [`CodeGraph`] (plus per-file [`ParsedFile`] facts) out.
//!
//! `run` walks the repository ([`walk`]; [`Walked`] when the caller walks it ahead, as the pipeline does), reads
//! and parses files in parallel on a rayon pool ([`parse`], pure), and resolves names across files ([`resolve`],
//! pure). Files whose content hash matches the previous run's facts are not parsed again, and files that kept the
//! stat seen with those facts are not even read ([`walk::FileStat`]); resolution always runs over the whole
//! repository, so an incremental run yields exactly the graph of a full one. Bad files are skipped and counted by
//! reason; extraction itself fails only on a missing repository or cancellation.

pub mod facts;
pub mod lang;
pub mod manifest;
pub mod model;
pub mod parse;
pub mod resolve;
pub mod walk;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use facts::{FileFacts, ParsedFile};
pub use lang::Lang;
pub use model::{CodeGraph, Edge, EdgeKind, Meta, Node, NodeRef, NodeType, ResolveStats};
pub use parse::parse_file;

use crate::config::ExtractConfig;
use crate::error::ExtractError;
use crate::progress::{Cancel, ProgressEvent, Sink};

/// Version of the facts format and of the parsing rules; a cache written by another version is ignored.
/// Bumped whenever `FileFacts` changes shape or order (2: configuration reads; 3: references and locals in a total
/// order, as the query runs at its pattern roots; 4: each file's stat).
const FACTS_VERSION: u32 = 4;
/// How long before a run a file must have been written for its stat to be trusted by the next run
/// ([`walk::FileStat::settled_before`]): file times tick in milliseconds, and a network file system's clock may be a
/// little off ours.
const STAT_SETTLE: std::time::Duration = std::time::Duration::from_secs(2);
/// Bytes inspected for NUL when deciding that a file is binary (as git does).
const BINARY_SNIFF: usize = 8000;

/// Stable 16-hex-digit key from parts (blake3 of the parts joined by NUL).
pub fn stable_key(parts: &[&str]) -> String {
    let parts: Vec<&[&str]> = parts.iter().map(std::slice::from_ref).collect();
    compact_key_of_pieces(&parts).into()
}

/// `f` on a byte buffer of this thread's, emptied first: hashes that run a quarter of a million times per run (record
/// keys, fingerprints, id hashes) build their input there instead of allocating it. A nested call gets an empty
/// buffer of its own.
pub(crate) fn with_scratch<R>(f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    BUF.with(|buf| {
        let mut bytes = buf.take();
        bytes.clear();
        let out = f(&mut bytes);
        buf.replace(bytes);
        out
    })
}

/// [`stable_key`] of parts that are each given as pieces, hashed as if joined (no joined string is built), as an
/// inline string (no allocation).
pub(crate) fn compact_key_of_pieces(parts: &[&[&str]]) -> compact_str::CompactString {
    // The input is laid out in a buffer of the thread's and hashed in one call: keys are short, and blake3's
    // incremental hasher spent more on its per-call bookkeeping (and on the 64-digit hex of the whole hash) than on
    // hashing (a quarter of a million node and edge keys per JDK run).
    let hash = with_scratch(|bytes| {
        for part in parts {
            for piece in *part {
                bytes.extend_from_slice(piece.as_bytes());
            }
            bytes.push(0);
        }
        blake3::hash(bytes)
    });
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 16];
    for (i, b) in hash.as_bytes()[..8].iter().enumerate() {
        hex[2 * i] = HEX[usize::from(b >> 4)];
        hex[2 * i + 1] = HEX[usize::from(b & 15)];
    }
    compact_str::CompactString::from_utf8(hex).expect("hex digits are ASCII")
}

/// Set by a front end whose process ends with its run ([`set_exits_after_run`]).
static EXITS_AFTER_RUN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Says that this process exits as soon as its run is done (the CLI; never the app or a server, which live on).
/// An incremental run (or one without the store) then leaves the parsed files and the graph it is done with to the
/// exit instead of freeing them allocation by allocation: on a one-file re-run of JDK java.base that freeing was
/// about 5% of the run's CPU, on a thread competing with the store's write. A full build still frees them early,
/// which lowers its peak.
pub fn set_exits_after_run(yes: bool) {
    EXITS_AFTER_RUN.store(yes, Ordering::Relaxed);
}

/// Frees `value` off this thread, or, when `at_end` (nothing the run does after this allocates much) in a process
/// that exits after its run, leaves it to the exit.
pub(crate) fn free_at_end<T: Send + 'static>(value: T, at_end: bool) {
    if at_end && EXITS_AFTER_RUN.load(Ordering::Relaxed) {
        std::mem::forget(value);
    } else {
        free_in_background(value);
    }
}

/// Drops `value` on a thread of its own: freeing a large graph's or cache's allocations one by one takes tens of
/// milliseconds (about 45 ms for the JDK's graph), which then overlap the caller's next step.
pub(crate) fn free_in_background<T: Send + 'static>(value: T) {
    // A thread that cannot be started drops its closure, and the value with it, right here.
    let _ = std::thread::Builder::new()
        .name("nanodex-free".into())
        .spawn(move || drop(value));
}

/// What one extraction did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtractReport {
    /// Repository root.
    pub root: String,
    /// Parsed files by language.
    pub files_by_lang: BTreeMap<String, u64>,
    /// Bytes of source read.
    pub bytes: u64,
    /// Files parsed this run.
    pub parsed: u64,
    /// Files whose facts were reused from the previous run (unchanged content).
    pub reused: u64,
    /// Skipped entries by reason (`binary`, `too_large`, `unreadable`, `excluded`, `symlink_loop` ...).
    pub skipped: BTreeMap<String, u64>,
    /// Up to five example paths per skip reason.
    pub skipped_examples: BTreeMap<String, Vec<String>>,
    /// Files with syntax errors (still extracted, flagged).
    pub parse_error_files: Vec<String>,
    /// Files that were not valid UTF-8 (decoded lossily, flagged).
    pub invalid_utf8_files: Vec<String>,
    /// Nodes by type.
    pub nodes: BTreeMap<String, u64>,
    /// Edges by kind.
    pub edges: BTreeMap<String, u64>,
    /// Resolution counters.
    pub resolve: ResolveStats,
    /// Milliseconds per phase (`walk`, `parse`, `resolve`, and `store` when the graph was written).
    pub timings_ms: BTreeMap<String, u64>,
}

/// Output of [`run`].
#[derive(Debug, Clone)]
pub struct Extraction {
    /// The graph.
    pub graph: CodeGraph,
    /// Per-file facts (the cache for the next run).
    pub files: Vec<ParsedFile>,
    /// Report.
    pub report: ExtractReport,
}

/// Facts of a previous run, by path, used to skip re-parsing unchanged files.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct FactsCache {
    version: u32,
    files: Vec<ParsedFile>,
    /// Bytes of the file it was loaded from: the next encoding reserves about as much, and its buffer does not
    /// grow by copies (each copy of a JDK-sized cache touches megabytes of fresh pages).
    #[serde(skip)]
    encoded_len: usize,
}

impl FactsCache {
    /// Wraps parsed files as a cache.
    pub fn new(files: Vec<ParsedFile>) -> Self {
        FactsCache {
            version: FACTS_VERSION,
            files,
            encoded_len: 0,
        }
    }

    /// The bytes [`FactsCache::save`] would write for `files`, without taking ownership of them, in a buffer that
    /// starts with room for `size_hint` bytes.
    pub fn encode(files: &[ParsedFile], size_hint: usize) -> Result<Vec<u8>, postcard::Error> {
        // The same postcard layout as `FactsCache` (a slice and a Vec encode alike).
        #[derive(Serialize)]
        struct Borrowed<'a> {
            version: u32,
            files: &'a [ParsedFile],
        }
        postcard::to_extend(
            &Borrowed {
                version: FACTS_VERSION,
                files,
            },
            Vec::with_capacity(size_hint),
        )
    }

    /// Writes bytes from [`FactsCache::encode`] to `path`, atomically.
    pub fn save_encoded(path: &Path, bytes: &[u8]) -> Result<(), ExtractError> {
        crate::fsutil::write_atomic(path, bytes).map_err(|cause| ExtractError::Io {
            path: path.to_path_buf(),
            cause,
        })
    }

    /// Loads a cache file; a missing, corrupt or outdated cache is an empty one.
    pub fn load(path: &Path) -> FactsCache {
        let Ok(bytes) = std::fs::read(path) else {
            return FactsCache::default();
        };
        match postcard::from_bytes::<FactsCache>(&bytes) {
            Ok(cache) if cache.version == FACTS_VERSION => FactsCache {
                encoded_len: bytes.len(),
                ..cache
            },
            _ => {
                tracing::warn!(path = %path.display(), "ignoring unreadable or outdated facts cache");
                FactsCache::default()
            }
        }
    }

    /// Writes the cache atomically (temporary file, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), ExtractError> {
        let bytes =
            FactsCache::encode(&self.files, self.encoded_len).map_err(|e| ExtractError::Io {
                path: path.to_path_buf(),
                cause: std::io::Error::other(e),
            })?;
        FactsCache::save_encoded(path, &bytes)
    }

    /// The language of each cached file.
    pub fn langs(&self) -> impl Iterator<Item = Lang> + '_ {
        self.files.iter().map(|f| f.lang)
    }

    /// Number of cached files.
    pub fn len(&self) -> usize {
        self.files.len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

enum FileOutcome {
    // Boxed: facts are large and most outcomes are parsed files anyway.
    Parsed(Box<ParsedFile>, bool),
    /// Parsed into a tree while the language's query was still compiling: the facts are extracted after the
    /// other files are parsed (`facts` empty until then).
    Deferred(Box<(ParsedFile, String, Option<tree_sitter::Tree>)>),
    Skipped(&'static str, String),
}

/// Checks that `root` is an existing directory and returns its canonical path.
pub fn check_repo(root: &Path) -> Result<PathBuf, ExtractError> {
    match std::fs::metadata(root) {
        Err(cause) if cause.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(ExtractError::Unreadable {
                path: root.to_path_buf(),
                cause,
            })
        }
        Err(_) => Err(ExtractError::RepoMissing {
            path: root.to_path_buf(),
        }),
        Ok(m) if !m.is_dir() => Err(ExtractError::NotADirectory {
            path: root.to_path_buf(),
        }),
        Ok(_) => {
            std::fs::read_dir(root).map_err(|cause| ExtractError::Unreadable {
                path: root.to_path_buf(),
                cause,
            })?;
            std::fs::canonicalize(root).map_err(|cause| ExtractError::Io {
                path: root.to_path_buf(),
                cause,
            })
        }
    }
}

/// A repository checked ([`check_repo`]) and walked ahead of its run, so that the walk can overlap other start-up
/// work: the pipeline walks while it opens the store and loads the facts cache.
#[derive(Debug)]
pub struct Walked {
    root: PathBuf,
    walk: walk::Walk,
    ms: u64,
    /// Stats whose times are both before this (nanoseconds since the epoch) are kept with the facts: the walk's
    /// start less [`STAT_SETTLE`].
    settled_ns: i64,
}

impl Walked {
    /// Checks that `root` is a readable directory and walks it, saying so to `sink`. The query of each language
    /// found starts compiling in the background.
    pub fn new(cfg: &ExtractConfig, root: &Path, sink: &dyn Sink) -> Result<Walked, ExtractError> {
        let root = check_repo(root)?;
        sink.event(ProgressEvent {
            stage: "walk",
            done: 0,
            total: None,
            message: root.display().to_string(),
        });
        let t0 = Instant::now();
        let settled_ns = std::time::SystemTime::now()
            .checked_sub(STAT_SETTLE)
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(i64::MIN, |d| {
                i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
            });
        let walk = walk::walk(cfg, &root);
        // Queries compile while files are read, hashed and parsed into trees (started earlier for the languages of
        // the facts cache, if the caller loaded one).
        lang::compile_queries_in_background(walk.files.iter().map(|c| c.lang));
        Ok(Walked {
            root,
            walk,
            ms: t0.elapsed().as_millis() as u64,
            settled_ns,
        })
    }

    /// The repository's canonical path.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Extracts the code graph of the repository at `root`. The facts of files unchanged since `previous` are moved
/// out of it, not parsed again.
pub fn run(
    cfg: &ExtractConfig,
    root: &Path,
    previous: FactsCache,
    sink: &dyn Sink,
    cancel: &Cancel,
) -> Result<Extraction, ExtractError> {
    let walked = Walked::new(cfg, root, sink)?;
    run_walked(cfg, walked, previous, sink, cancel, false).map(|(extraction, _)| extraction)
}

/// [`run`] on a repository walked already. With `encode_cache`, the new facts cache ([`FactsCache::encode`]) is
/// encoded on a second thread while names are resolved (mostly one thread), so the cache costs no extra time;
/// `None` when it could not be encoded (logged): the cache only saves parsing, so the run goes on without one.
pub fn run_walked(
    cfg: &ExtractConfig,
    walked: Walked,
    previous: FactsCache,
    sink: &dyn Sink,
    cancel: &Cancel,
    encode_cache: bool,
) -> Result<(Extraction, Option<Vec<u8>>), ExtractError> {
    let Walked {
        root,
        walk: mut walked,
        ms: walk_ms,
        settled_ns,
    } = walked;
    let mut report = ExtractReport {
        root: root.display().to_string(),
        ..ExtractReport::default()
    };
    report.timings_ms.insert("walk".into(), walk_ms);
    if cancel.is_cancelled() {
        return Err(ExtractError::Cancelled);
    }
    // A little more than last time: the cache grows with the repository.
    let size_hint = previous.encoded_len + previous.encoded_len / 16;

    let t1 = Instant::now();
    // Each walked file is paired with its previous facts, moved out of the cache (a JDK-sized cache is a
    // hundred megabytes of small allocations: cloning and then freeing it cost more than parsing one file).
    let mut previous: HashMap<String, ParsedFile> = previous
        .files
        .into_iter()
        .map(|f| (f.path.clone(), f))
        .collect();
    // Largest files first, each thread taking the next one from a shared queue (longest-processing-time-first
    // list scheduling): the last files to finish are the smallest, so no thread idles at the end while another
    // parses one large file (on Boost.Asio + fmt, a large header parsed last left one of two cores idle ~0.1 s).
    let mut work: Vec<(usize, &walk::Candidate, Option<ParsedFile>)> = walked
        .files
        .iter()
        .enumerate()
        .map(|(idx, cand)| (idx, cand, previous.remove(&cand.rel)))
        .collect();
    work.sort_by_key(|(_, cand, _)| std::cmp::Reverse(cand.size));
    let queue = Mutex::new(work.into_iter());
    // Facts of files that are gone are freed off this thread.
    if !previous.is_empty() {
        free_in_background(previous);
    }
    let total = walked.files.len() as u64;
    let done = AtomicU64::new(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cfg.threads)
        .thread_name(|i| format!("nanodex-parse-{i}"))
        .build()
        .map_err(|e| ExtractError::Io {
            path: root.clone(),
            cause: std::io::Error::other(e),
        })?;
    let parse_next = || {
        let mut mine = Vec::new();
        loop {
            let Some((idx, cand, prev)) = queue.lock().unwrap_or_else(|e| e.into_inner()).next()
            else {
                return mine;
            };
            let outcome = if cancel.is_cancelled() {
                FileOutcome::Skipped("cancelled", cand.rel.clone())
            } else {
                read_and_parse(cand, cfg.max_file_size, prev, settled_ns)
            };
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(64) || n == total {
                sink.event(ProgressEvent {
                    stage: "parse",
                    done: n,
                    total: Some(total),
                    message: cand.rel.clone(),
                });
            }
            mine.push((idx, outcome));
        }
    };
    let mut indexed: Vec<(usize, FileOutcome)> = pool
        .broadcast(|_| parse_next())
        .into_iter()
        .flatten()
        .collect();
    // Back in walk order (by path), which resolution and the report depend on.
    indexed.sort_unstable_by_key(|(idx, _)| *idx);
    let mut outcomes: Vec<FileOutcome> = indexed.into_iter().map(|(_, o)| o).collect();
    // Files parsed while a query was compiling (the first few of each thread): their facts, now.
    // Done in place, and only when there are any.
    if outcomes
        .iter()
        .any(|o| matches!(o, FileOutcome::Deferred(_)))
    {
        pool.install(|| outcomes.par_iter_mut().for_each(finish_in_place));
    }
    if cancel.is_cancelled() {
        return Err(ExtractError::Cancelled);
    }
    let mut files = Vec::with_capacity(outcomes.len());
    for outcome in outcomes {
        let (file, reused) = match outcome {
            FileOutcome::Parsed(file, reused) => (file, reused),
            // Finished by the pass above already.
            FileOutcome::Deferred(deferred) => (finish_deferred_file(deferred), false),
            FileOutcome::Skipped(reason, rel) => {
                walked.skip(reason, &rel);
                continue;
            }
        };
        if reused {
            report.reused += 1;
        } else {
            report.parsed += 1;
        }
        *report
            .files_by_lang
            .entry(file.lang.as_str().to_string())
            .or_default() += 1;
        report.bytes += file.size;
        if file.facts.has_error {
            report.parse_error_files.push(file.path.clone());
        }
        if file.invalid_utf8 {
            report.invalid_utf8_files.push(file.path.clone());
        }
        files.push(*file);
    }
    report
        .timings_ms
        .insert("parse".into(), t1.elapsed().as_millis() as u64);

    let t2 = Instant::now();
    sink.event(ProgressEvent {
        stage: "resolve",
        done: 0,
        total: Some(files.len() as u64),
        message: "resolving names".into(),
    });
    let mut deps = Vec::new();
    for (rel, abs) in std::mem::take(&mut walked.manifests) {
        match std::fs::read_to_string(&abs) {
            Ok(text) => deps.extend(manifest::parse_manifest(&rel, &text)),
            Err(_) => walked.skip("unreadable", &rel),
        }
    }
    let repo_name = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "repository".into());
    let (graph, cache) = std::thread::scope(|scope| {
        let cache = encode_cache.then(|| scope.spawn(|| FactsCache::encode(&files, size_hint)));
        // On the parse threads: the configured thread count, and threads whose allocator caches are warm.
        let graph = pool.install(|| resolve::build_graph(&repo_name, &files, &deps));
        let cache =
            cache.and_then(
                |h| match h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)) {
                    Ok(bytes) => Some(bytes),
                    Err(e) => {
                        tracing::warn!("facts cache not saved: {e}");
                        None
                    }
                },
            );
        (graph, cache)
    });
    report
        .timings_ms
        .insert("resolve".into(), t2.elapsed().as_millis() as u64);
    // Counted by name as a borrowed `&'static str` first: one String per type or kind, not per node and edge.
    let mut nodes: BTreeMap<&'static str, u64> = BTreeMap::new();
    for node in &graph.nodes {
        *nodes.entry(node.id.ty.as_str()).or_default() += 1;
    }
    let mut edges: BTreeMap<&'static str, u64> = BTreeMap::new();
    for edge in &graph.edges {
        *edges.entry(edge.kind.as_str()).or_default() += 1;
    }
    report.nodes = nodes.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
    report.edges = edges.into_iter().map(|(k, n)| (k.to_string(), n)).collect();
    report.resolve = graph.stats.clone();
    report.skipped = walked.skipped;
    report.skipped_examples = walked.skipped_examples;
    Ok((
        Extraction {
            graph,
            files,
            report,
        },
        cache,
    ))
}

/// Turns a [`FileOutcome::Deferred`] into [`FileOutcome::Parsed`] with its facts; other outcomes stay as they are.
fn finish_in_place(outcome: &mut FileOutcome) {
    let taken = std::mem::replace(outcome, FileOutcome::Skipped("cancelled", String::new()));
    *outcome = match taken {
        FileOutcome::Deferred(deferred) => {
            FileOutcome::Parsed(finish_deferred_file(deferred), false)
        }
        other => other,
    };
}

/// The facts of a file whose parse was deferred ([`FileOutcome::Deferred`]).
fn finish_deferred_file(
    deferred: Box<(ParsedFile, String, Option<tree_sitter::Tree>)>,
) -> Box<ParsedFile> {
    let (mut file, text, tree) = *deferred;
    file.facts = parse::finish_deferred(file.lang, tree, &text);
    Box::new(file)
}

/// Reads and parses one walked file, or reuses `previous` (its facts from the last run): without reading the
/// file when its stat is the one kept with them, after reading it when its content hash is theirs. The stat of a
/// file whose times are before `settled_ns` is kept with its facts for the next run.
fn read_and_parse(
    cand: &walk::Candidate,
    max_size: u64,
    previous: Option<ParsedFile>,
    settled_ns: i64,
) -> FileOutcome {
    let previous = match previous.filter(|prev| prev.lang == cand.lang) {
        Some(prev) if prev.stat.is_some() && prev.stat == cand.stat => {
            return FileOutcome::Parsed(Box::new(prev), true);
        }
        other => other,
    };
    let stat = cand.stat.filter(|s| s.settled_before(settled_ns));
    let skip = |reason| FileOutcome::Skipped(reason, cand.rel.clone());
    let mut file = match std::fs::File::open(&cand.abs) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return skip("vanished"),
        Err(_) => return skip("unreadable"),
    };
    // Read at most one byte past the limit: a file that grew since the walk is still caught. The buffer is sized
    // from the open file, so the read does not grow it step by step (each step a copy: 5% of the JDK's parse
    // phase went to reallocating and copying these buffers).
    let expected = file.metadata().map_or(0, |m| m.len()).min(max_size) as usize;
    let mut bytes = Vec::with_capacity(expected + 1);
    if let Err(e) = (&mut file).take(max_size + 1).read_to_end(&mut bytes) {
        return skip(if e.kind() == std::io::ErrorKind::NotFound {
            "vanished"
        } else {
            "unreadable"
        });
    }
    if bytes.len() as u64 > max_size {
        return skip("too_large");
    }
    if bytes[..bytes.len().min(BINARY_SNIFF)].contains(&0) {
        return skip("binary");
    }
    let hash = blake3::hash(&bytes).to_hex().to_string();
    if let Some(mut prev) = previous
        && prev.hash == hash
    {
        prev.stat = stat;
        return FileOutcome::Parsed(Box::new(prev), true);
    }
    let size = bytes.len() as u64;
    let (text, invalid_utf8) = match String::from_utf8(bytes) {
        Ok(text) => (text, false),
        Err(err) => (String::from_utf8_lossy(err.as_bytes()).into_owned(), true),
    };
    let parsed = parse::parse_or_defer(cand.lang, &text);
    let mut file = ParsedFile {
        path: cand.rel.clone(),
        lang: cand.lang,
        hash,
        size,
        invalid_utf8,
        stat,
        facts: FileFacts::default(),
    };
    match parsed {
        parse::Parsed::Facts(facts) => {
            file.facts = facts;
            FileOutcome::Parsed(Box::new(file), false)
        }
        parse::Parsed::Deferred(tree) => FileOutcome::Deferred(Box::new((file, text, tree))),
    }
}

#[cfg(test)]
mod tests;
