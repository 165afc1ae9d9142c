//! Integration tests: real tree-sitter grammars, real SurrealDB (in memory and on disk), real source trees.

#[global_allocator]
static ALLOC: CountingJemalloc = CountingJemalloc;

/// Bytes currently allocated through the global allocator (all threads). A test that reads it runs alone in a
/// child process ([`in_child_process`]), as the tests of one process run in parallel.
pub static ALLOCATED: std::sync::atomic::AtomicIsize = std::sync::atomic::AtomicIsize::new(0);

/// jemalloc, as the CLI uses, counting the bytes it holds for the program in [`ALLOCATED`].
pub struct CountingJemalloc;

// SAFETY: every call is forwarded to jemalloc unchanged; only a counter is updated on the side.
unsafe impl std::alloc::GlobalAlloc for CountingJemalloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { tikv_jemallocator::Jemalloc.alloc(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        let p = unsafe { tikv_jemallocator::Jemalloc.alloc_zeroed(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        unsafe { tikv_jemallocator::Jemalloc.dealloc(ptr, layout) };
        ALLOCATED.fetch_sub(layout.size() as isize, std::sync::atomic::Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { tikv_jemallocator::Jemalloc.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            ALLOCATED.fetch_add(
                new_size as isize - layout.size() as isize,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        p
    }
}

/// Environment variable that marks the child process of [`in_child_process`].
const CHILD_TEST: &str = "NANODEX_TEST_CHILD";

/// Runs `body` in a child process that runs only the test `name` (its full path, e.g. `store_engine::x`), so
/// that process-wide measurements such as [`ALLOCATED`] see no other test. In the parent, waits for the child
/// and fails with its output if it failed; in the child, runs `body`.
pub fn in_child_process(name: &str, body: impl FnOnce()) {
    if std::env::var_os(CHILD_TEST).is_some_and(|v| v == name) {
        body();
        return;
    }
    let out = std::process::Command::new(std::env::current_exe().expect("test binary path"))
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .env(CHILD_TEST, name)
        .output()
        .expect("the test binary runs as a child process");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("1 passed"),
        "child process running {name} failed ({}):\n{text}",
        out.status
    );
}

mod bad_input;
mod brain;
mod brain_stdlib;
mod fixtures;
mod incremental;
mod llm;
mod stdlib;
mod store_cache;
mod store_engine;
mod train;

use std::fmt::Write;
use std::path::{Path, PathBuf};

use nanodex_core::config::{self, Config, Store};
use nanodex_core::extract::{self, CodeGraph, Extraction, FactsCache};
use nanodex_core::graph::GraphStore;
use nanodex_core::progress::{Cancel, NoProgress};

/// Path of a fixture repository.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Default configuration.
pub fn default_config() -> Config {
    config::load(None).expect("embedded config parses")
}

/// Extracts `root` with the default configuration and no cache.
pub fn extract_repo(root: &Path) -> Extraction {
    extract_with(&default_config(), root, FactsCache::default())
}

/// Extracts `root` with `cfg` and a cache.
pub fn extract_with(cfg: &Config, root: &Path, cache: FactsCache) -> Extraction {
    extract::run(&cfg.extract, root, cache, &NoProgress, &Cancel::new())
        .expect("extraction succeeds")
}

/// A tokio runtime for store calls.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Opens the on-disk store of `workspace` for writing.
pub async fn open_disk(workspace: &Path) -> GraphStore {
    let mut cfg = default_config();
    cfg.graph.store = Store::Workspace;
    GraphStore::open(&cfg.graph, workspace, true)
        .await
        .expect("store opens")
}

/// Renders a graph as stable text: nodes by (type, qname), then edges with qualified names, no ids.
pub fn render(graph: &CodeGraph) -> String {
    let qname = |r: &extract::NodeRef| {
        let node = graph
            .nodes
            .iter()
            .find(|n| &n.id == r)
            .expect("edge end exists");
        format!("{}:{}", node.id.ty.as_str(), node.qname)
    };
    let mut nodes: Vec<String> = graph
        .nodes
        .iter()
        .map(|n| {
            let kind = n.meta.get("kind").and_then(|k| k.as_str()).unwrap_or("");
            let mut flags = Vec::new();
            for key in ["parse_error", "is_test", "invalid_utf8"] {
                if n.meta.get(key).and_then(|v| v.as_bool()) == Some(true) {
                    flags.push(key);
                }
            }
            let lang = n.lang.map(|l| l.as_str()).unwrap_or("-");
            let loc = if n.path.is_empty() {
                String::new()
            } else {
                format!(" {}:{}-{}", n.path, n.start_line, n.end_line)
            };
            let doc = if n.doc.is_empty() {
                String::new()
            } else {
                format!(" \"{}\"", n.doc)
            };
            format!(
                "{} {} [{kind}] {lang}{loc}{} {}{doc}",
                n.id.ty.as_str(),
                n.qname,
                if flags.is_empty() {
                    String::new()
                } else {
                    format!(" {{{}}}", flags.join(","))
                },
                n.signature
            )
            .trim_end()
            .to_string()
        })
        .collect();
    nodes.sort();
    let mut edges: Vec<String> = graph
        .edges
        .iter()
        .map(|e| {
            format!(
                "{} {} -> {} lines={:?} conf={:.2}",
                e.kind.as_str(),
                qname(&e.from),
                qname(&e.to),
                e.lines,
                e.confidence
            )
        })
        .collect();
    edges.sort();
    let mut out = String::new();
    for n in nodes {
        let _ = writeln!(out, "{n}");
    }
    out.push('\n');
    for e in edges {
        let _ = writeln!(out, "{e}");
    }
    out
}

/// Whether the graph has an edge of `kind` between the nodes with these qualified names.
pub fn has_edge(graph: &CodeGraph, kind: &str, from: &str, to: &str) -> bool {
    let find = |q: &str| {
        graph
            .nodes
            .iter()
            .filter(move |n| n.qname == q)
            .map(|n| n.id.clone())
            .collect::<Vec<_>>()
    };
    let (froms, tos) = (find(from), find(to));
    graph
        .edges
        .iter()
        .any(|e| e.kind.as_str() == kind && froms.contains(&e.from) && tos.contains(&e.to))
}
