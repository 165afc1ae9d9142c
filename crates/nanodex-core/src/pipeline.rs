//! Whole stages run over a workspace, as every front end runs them: [`extract`] (repository → graph store +
//! facts cache) and [`search`] (question → ranked brain nodes, hybrid when embeddings exist). The CLI and the
//! desktop app only add their own progress display and output on top.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::brain::{self, BrainType};
use crate::config::{BrainConfig, Config, GraphConfig};
use crate::error::{BrainError, Error, ExtractError, GraphError};
use crate::extract::{self, CodeGraph, ExtractReport, FactsCache};
use crate::graph::{self, GraphStore, Hit, WriteReport};
use crate::progress::{Cancel, Sink};
use crate::search::{self, Mode};

/// How to run [`extract`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ExtractOptions {
    /// Rebuild from scratch instead of re-parsing only changed files.
    pub full: bool,
    /// Parse only; leave the workspace untouched.
    pub no_store: bool,
    /// Fail with [`ExtractError::NoSources`] when the folder holds no source file (the app's import).
    pub require_sources: bool,
    /// Return the graph in [`ExtractOutcome::graph`]. Otherwise it is freed as soon as it is written, before the
    /// embedded engine flushes its memtable (at close, or in a rebuild's swap), the run's peak of memory.
    pub keep_graph: bool,
}

/// What [`extract`] did, and the graph it wrote.
#[derive(Debug, Clone)]
pub struct ExtractOutcome {
    /// Extraction report, with `store` and `total` timings.
    pub report: ExtractReport,
    /// What the store write did (none with `no_store`).
    pub write: Option<WriteReport>,
    /// The graph as written (with [`ExtractOptions::keep_graph`]).
    pub graph: Option<CodeGraph>,
}

async fn wait_cancel(cancel: &Cancel) {
    while !cancel.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Extracts `repo` into `workspace`: takes the workspace lock first (a second writer fails at once), parses in
/// parallel off the async runtime reusing the facts cache, writes the graph (incrementally unless `full`) while
/// saving the new cache. Cancelling leaves the previous graph unchanged.
pub async fn extract(
    cfg: &Config,
    repo: &Path,
    workspace: &Path,
    opts: ExtractOptions,
    sink: Arc<dyn Sink>,
    cancel: &Cancel,
) -> Result<ExtractOutcome, Error> {
    let started = Instant::now();
    let root = extract::check_repo(repo)?;
    let cache_path = graph::brain_dir(workspace).join("facts.cache");
    // Opening the store (which takes the workspace lock) and loading the facts cache overlap.
    let load_cache = {
        let (path, skip) = (cache_path.clone(), opts.full || opts.no_store);
        tokio::task::spawn_blocking(move || {
            if skip {
                FactsCache::default()
            } else {
                let cache = FactsCache::load(&path);
                // The languages seen last time most likely need their queries again: compile them while the
                // store opens.
                extract::lang::compile_queries_in_background(cache.langs());
                cache
            }
        })
    };
    // The walk runs while the store opens and the cache loads (it waited for both before).
    let walk = {
        let (extract_cfg, root, sink) = (cfg.extract.clone(), root.clone(), sink.clone());
        tokio::task::spawn_blocking(move || {
            extract::Walked::new(&extract_cfg, &root, sink.as_ref())
        })
    };
    let t_open = Instant::now();
    let store = if opts.no_store {
        None
    } else {
        Some(GraphStore::open(&cfg.graph, workspace, true).await)
    };
    let open_ms = t_open.elapsed().as_millis() as u64;
    let previous = load_cache.await.unwrap_or_default();
    let mut store = store.transpose()?;
    let walked = walk.await.map_err(|e| ExtractError::Io {
        path: root.clone(),
        cause: std::io::Error::other(format!("walk thread failed: {e}")),
    })??;
    let result = extract_and_write(
        cfg,
        walked,
        &cache_path,
        opts,
        previous,
        store.as_mut(),
        sink,
        cancel,
    )
    .await;
    // Close the store on every path, so the embedded engine shuts down cleanly (and releases its lock) before
    // the caller reopens the workspace.
    let t_close = Instant::now();
    let had_store = store.is_some();
    if let Some(store) = store {
        store.close().await;
    }
    let (mut report, write, graph) = result?;
    if had_store {
        report.timings_ms.insert("open".into(), open_ms);
        report
            .timings_ms
            .insert("close".into(), t_close.elapsed().as_millis() as u64);
    }
    report
        .timings_ms
        .insert("total".into(), started.elapsed().as_millis() as u64);
    Ok(ExtractOutcome {
        report,
        write,
        graph,
    })
}

#[allow(clippy::too_many_arguments)]
async fn extract_and_write(
    cfg: &Config,
    walked: extract::Walked,
    cache_path: &Path,
    opts: ExtractOptions,
    previous: FactsCache,
    store: Option<&mut GraphStore>,
    sink: Arc<dyn Sink>,
    cancel: &Cancel,
) -> Result<(ExtractReport, Option<WriteReport>, Option<CodeGraph>), Error> {
    let root = walked.root().to_path_buf();
    let (extract_cfg, sink2, cancel2) = (cfg.extract.clone(), sink.clone(), cancel.clone());
    let encode_cache = store.is_some();
    let (extraction, cache_bytes) = tokio::task::spawn_blocking(move || {
        extract::run_walked(
            &extract_cfg,
            walked,
            previous,
            sink2.as_ref(),
            &cancel2,
            encode_cache,
        )
    })
    .await
    .map_err(|e| ExtractError::Io {
        path: root.clone(),
        cause: std::io::Error::other(format!("extraction thread failed: {e}")),
    })??;
    let mut report = extraction.report;
    if opts.require_sources && report.parsed + report.reused == 0 {
        return Err(ExtractError::NoSources {
            path: root.clone(),
            skipped: report.skipped.values().sum(),
        }
        .into());
    }
    if let Some(store) = store {
        let t = Instant::now();
        let root_text = root.display().to_string();
        // The facts cache is saved while the graph is written: it is keyed by file content, so a cache newer than
        // the graph (a write that fails or is cancelled) only saves parsing next time.
        // The parsed files are freed there too, off this thread, before the write grows the store's memory.
        let (path, files) = (cache_path.to_path_buf(), extraction.files);
        // A run that reused facts from the last one, unless it is forced to rebuild, is most likely an incremental
        // write (a small one), and the freeing of its files may be left to the process's exit.
        let incremental = !opts.full && report.reused > 0;
        let save_cache = tokio::task::spawn_blocking(move || {
            extract::free_at_end(files, incremental);
            let t = Instant::now();
            match cache_bytes {
                Some(bytes) => FactsCache::save_encoded(&path, &bytes),
                None => Ok(()),
            }
            .map(|()| t.elapsed().as_millis() as u64)
        });
        let written = tokio::select! {
            res = write_to_store(store, extraction.graph, opts.keep_graph, &root_text, opts.full, sink.as_ref()) => res.map_err(Error::from),
            _ = wait_cancel(cancel) => Err(ExtractError::Cancelled.into()),
        };
        report
            .timings_ms
            .insert("store".into(), t.elapsed().as_millis() as u64);
        // Awaited on every path, so no write outlives the workspace lock.
        let saved = save_cache.await.map_err(|e| ExtractError::Io {
            path: cache_path.to_path_buf(),
            cause: std::io::Error::other(format!("cache thread failed: {e}")),
        });
        let (written, graph) = written?;
        report.timings_ms.insert("cache".into(), saved??);
        return Ok((report, Some(written), graph));
    }
    // The parsed files are freed off this thread too (the JDK's are tens of megabytes of small allocations), or
    // left to the exit of a process that ends with this run: nothing follows.
    extract::free_at_end(extraction.files, true);
    Ok((
        report,
        None,
        keep_or_free(extraction.graph, opts.keep_graph),
    ))
}

/// Writes `graph` into the store. A caller that keeps the graph gets it back; otherwise the store takes it and
/// frees it as soon as its records are written, before the store's memtable is flushed (the peak of a full build).
async fn write_to_store(
    store: &mut GraphStore,
    graph: CodeGraph,
    keep: bool,
    root: &str,
    full: bool,
    sink: &dyn Sink,
) -> Result<(WriteReport, Option<CodeGraph>), GraphError> {
    if keep {
        let written = store.write(&graph, root, full, sink).await?;
        Ok((written, Some(graph)))
    } else {
        Ok((store.write_owned(graph, root, full, sink).await?, None))
    }
}

/// The graph when the caller keeps it; otherwise it is freed off this thread (or left to the exit of a process
/// that ends with this run: only a run without the store gets here, and nothing follows).
fn keep_or_free(graph: CodeGraph, keep: bool) -> Option<CodeGraph> {
    if keep {
        Some(graph)
    } else {
        extract::free_at_end(graph, true);
        None
    }
}

/// Results of [`search`], with what the caller should tell the user.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SearchOutcome {
    /// Ranked hits.
    pub hits: Vec<Hit>,
    /// The mode actually used (hybrid falls back to lexical without embeddings).
    pub mode: String,
    /// Notes for the user (stale brain, no embeddings yet).
    pub notes: Vec<String>,
}

/// Searches the brain of an open store: hybrid (or vector) when the brain has embeddings and the embedding
/// model loads, lexical otherwise (with a note saying so). Fails when no brain was built, or when vector mode
/// is asked of a brain without embeddings.
pub async fn search(
    store: &GraphStore,
    cfg: &BrainConfig,
    workspace: &Path,
    question: &str,
    ty: Option<BrainType>,
    mode: Mode,
) -> Result<SearchOutcome, Error> {
    let (state, generation) = store.brain_state().await?;
    let Some(state) = state else {
        return Err(BrainError::Empty {
            workspace: workspace.to_path_buf(),
        }
        .into());
    };
    let mut out = SearchOutcome::default();
    if state.get("generation").and_then(|g| g.as_u64()) != Some(generation) {
        out.notes.push(
            "the graph changed since the brain was built; run `nanodex brain` to refresh it".into(),
        );
    }
    let embedded = state
        .get("embedded")
        .and_then(|e| e.as_bool())
        .unwrap_or(false);
    let mut mode = mode;
    let embedder = if mode != Mode::Lexical && embedded {
        Some(brain::load_embedder(cfg)?)
    } else {
        None
    };
    if embedder.is_none() && mode != Mode::Lexical {
        if mode == Mode::Vector {
            return Err(BrainError::NoEmbeddings {
                workspace: workspace.to_path_buf(),
            }
            .into());
        }
        out.notes
            .push("no embeddings yet, lexical search only (run `nanodex brain-embed`)".into());
        mode = Mode::Lexical;
    }
    out.hits = search::search(store, embedder.as_ref(), question, ty, mode, &cfg.search).await?;
    out.mode = mode.as_str().to_string();
    Ok(out)
}

/// Opens the store of `workspace` for reading.
pub async fn open_read(cfg: &GraphConfig, workspace: &Path) -> Result<GraphStore, Error> {
    Ok(GraphStore::open(cfg, workspace, false).await?)
}
