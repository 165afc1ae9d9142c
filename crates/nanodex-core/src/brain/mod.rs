//! Stage 3, the brain: the code graph in, typed nodes (module, capability, concept, error, recipe) with grounded
//! summaries and embeddings out, stored beside the graph in SurrealDB and exported as `brain/nodes/<id>.json`.
//!
//! [`derive`] is pure (graph + source text → nodes); [`run`] does the I/O around it: it reads the graph and the
//! sources, writes the JSON files (only those that changed; stale ones are removed), embeds summaries whose text
//! changed (a content-addressed cache in `brain/embeddings.bin`), and hands the records to the store, which
//! applies only the difference.

pub mod derive;
pub mod refine;
pub mod text;

use std::collections::{BTreeMap, HashMap};
use std::path::{Component, Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::config::{BrainConfig, GraphConfig};
use crate::embed::{EmbedOptions, Embedder, ModelPaths};
use crate::error::{BrainError, Error};
use crate::fsutil::write_atomic;
use crate::graph::{GraphStore, brain_dir};
use crate::progress::{Cancel, ProgressEvent, Sink};
use crate::secrets::Scanner;

/// Version of the stored record layout and of the derived texts; bumping it rewrites every stored record.
const FORMAT_VERSION: u32 = 3;

/// Type of a brain node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BrainType {
    /// A file or package: its role, public API, imports and importers.
    Module,
    /// Something the code lets a user do, from a public entry point.
    Capability,
    /// A domain noun: a central class or data type.
    Concept,
    /// An exception / error type: where it is raised, when, with which message, and who catches it.
    Error,
    /// A how-to sequence of calls mined from tests, docstring examples and Markdown code blocks.
    Recipe,
}

impl BrainType {
    /// All types.
    pub const ALL: [BrainType; 5] = [
        BrainType::Module,
        BrainType::Capability,
        BrainType::Concept,
        BrainType::Error,
        BrainType::Recipe,
    ];

    /// Name as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            BrainType::Module => "module",
            BrainType::Capability => "capability",
            BrainType::Concept => "concept",
            BrainType::Error => "error",
            BrainType::Recipe => "recipe",
        }
    }

    /// Parses a name.
    pub fn from_name(name: &str) -> Option<BrainType> {
        BrainType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// One sentence of a summary and the code nodes it is about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sentence {
    /// The sentence.
    pub text: String,
    /// Code node ids (`function:…`) it states facts about.
    pub refs: Vec<String>,
}

/// A typed brain node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BrainNode {
    /// Stable id (`capability_<16 hex>`), also the export file name.
    pub id: String,
    /// Type.
    #[serde(rename = "type")]
    pub ty: BrainType,
    /// Display name (qualified name, or a recipe's title).
    pub name: String,
    /// Qualified name of the primary code node.
    pub qname: String,
    /// File (repository-relative).
    pub path: String,
    /// First line.
    pub line: u32,
    /// The summary: its sentences joined.
    pub summary: String,
    /// Code node ids the summary is grounded in; the first is the primary one.
    pub refs: Vec<String>,
    /// Type-specific facts (`sentences` with their refs, `raised_by`, `steps`, `implemented_by` ...).
    pub meta: serde_json::Map<String, serde_json::Value>,
}

impl BrainNode {
    /// The exported form: `{id, type, name, summary, refs, meta}` (qname, path and line go into meta).
    pub fn export_json(&self) -> serde_json::Value {
        let mut meta = self.meta.clone();
        meta.insert("qname".into(), self.qname.clone().into());
        meta.insert("path".into(), self.path.clone().into());
        meta.insert("line".into(), self.line.into());
        serde_json::json!({
            "id": self.id, "type": self.ty, "name": self.name, "summary": self.summary,
            "refs": self.refs, "meta": meta,
        })
    }

    /// The text indexed for lexical search: the name, its words, and the first two sentences of the summary
    /// (what the node is; the later sentences list related names, which would make every neighbour match).
    /// Signature sentences are left out: their parameter names (`parse_float`, `object_hook` ...) match question
    /// words by accident and lengthen the text, which BM25 penalises.
    pub fn search_text(&self) -> String {
        let lead: Vec<&str> = self
            .meta
            .get("sentences")
            .and_then(|s| s.as_array())
            .map(|s| {
                s.iter()
                    .filter_map(|x| x["text"].as_str())
                    .filter(|t| !t.starts_with("Signature: "))
                    .take(2)
                    .collect()
            })
            .unwrap_or_default();
        format!(
            "{} {} {}",
            self.name,
            text::words(&self.name),
            lead.join(" ")
        )
    }

    /// The text that is embedded: type, name words and the summary without code quotes, most telling first
    /// (the model reads the first `embed.max_tokens` tokens).
    pub fn embed_text(&self) -> String {
        let short: Vec<&str> = self
            .name
            .rsplit(['.', ':'])
            .filter(|p| !p.is_empty())
            .take(2)
            .collect();
        let short: Vec<&str> = short.into_iter().rev().collect();
        format!(
            "{} {}: {}",
            self.ty.as_str(),
            text::words(&short.join(".")),
            self.summary.replace('`', "")
        )
    }

    /// Content hash of the node (what the store and the export compare).
    pub fn content_hash(&self) -> String {
        let mut bytes = FORMAT_VERSION.to_le_bytes().to_vec();
        bytes.extend(serde_json::to_vec(self).unwrap_or_default());
        blake3::hash(&bytes).to_hex()[..16].to_string()
    }
}

/// Counters of a brain build.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BrainStats {
    /// Nodes by type.
    pub nodes: BTreeMap<String, u64>,
    /// Secrets redacted from quoted source text.
    pub redactions: u64,
    /// Nodes dropped because another node had the same id.
    pub duplicates: u64,
}

/// What `run` did.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BrainReport {
    /// Derivation counters (empty for an embed-only run).
    pub stats: BrainStats,
    /// Export files written (new or changed) and removed (stale).
    pub exported: u64,
    /// Stale export files removed.
    pub removed: u64,
    /// Export files left as they were.
    pub unchanged: u64,
    /// Summaries embedded this run.
    pub embedded: u64,
    /// Vectors reused from the cache.
    pub embed_cached: u64,
    /// Embedding model id, when embedding ran.
    pub embed_model: String,
    /// Store records inserted / deleted.
    pub store_inserted: u64,
    /// Store records deleted.
    pub store_deleted: u64,
    /// LLM refinement, when an endpoint is configured.
    pub refine: Option<refine::RefineStats>,
    /// Milliseconds per phase.
    pub timings_ms: BTreeMap<String, u64>,
}

/// Which parts of the brain to (re)build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrainOptions {
    /// Derive nodes from the graph (else reuse the stored ones).
    pub derive: bool,
    /// Embed summaries.
    pub embed: bool,
}

/// Path of the export folder.
pub fn nodes_dir(workspace: &Path) -> PathBuf {
    brain_dir(workspace).join("nodes")
}

/// Joins a graph path (repository-relative, `/`-separated) onto `root`, refusing anything that could leave it.
pub fn inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let rel_path = Path::new(rel);
    if rel.is_empty()
        || rel_path
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
    {
        return None;
    }
    Some(root.join(rel_path))
}

fn read_sources(root: &Path, paths: &[String], max: u64) -> HashMap<String, String> {
    let canon_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    paths
        .par_iter()
        .filter_map(|p| {
            let full = inside(root, p)?;
            // A symlink may point outside: read only what resolves inside the repository.
            let canon = std::fs::canonicalize(&full).ok()?;
            if !canon.starts_with(&canon_root) || std::fs::metadata(&canon).ok()?.len() > max {
                return None;
            }
            let bytes = std::fs::read(&canon).ok()?;
            Some((p.clone(), String::from_utf8_lossy(&bytes).into_owned()))
        })
        .collect()
}

fn read_docs(root: &Path, globs: &[String]) -> Vec<(String, String)> {
    let mut set = globset::GlobSetBuilder::new();
    for g in globs {
        if let Ok(glob) = globset::Glob::new(g) {
            set.add(glob);
        }
    }
    let Ok(set) = set.build() else { return vec![] };
    let mut out = Vec::new();
    for entry in ignore::WalkBuilder::new(root)
        .follow_links(false)
        .max_depth(Some(6))
        .build()
        .flatten()
    {
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Ok(rel) = entry.path().strip_prefix(root) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        if !(rel.ends_with(".md") || rel.ends_with(".markdown") || rel.starts_with("README"))
            || !set.is_match(&rel)
        {
            continue;
        }
        if entry.metadata().map(|m| m.len()).unwrap_or(u64::MAX) > 1 << 20 {
            continue;
        }
        if let Ok(bytes) = std::fs::read(entry.path()) {
            out.push((rel, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    out.sort();
    out
}

/// Writes changed export files and removes stale ones. Returns (written, removed, unchanged).
fn export(dir: &Path, nodes: &[BrainNode]) -> Result<(u64, u64, u64), BrainError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |cause| BrainError::Io { path, cause }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let results: Vec<Result<bool, BrainError>> = nodes
        .par_iter()
        .map(|n| {
            let path = dir.join(format!("{}.json", n.id));
            let mut bytes = serde_json::to_vec_pretty(&n.export_json()).unwrap_or_default();
            bytes.push(b'\n');
            if std::fs::read(&path).ok().as_deref() == Some(bytes.as_slice()) {
                return Ok(false);
            }
            // Temp file + rename: a killed run leaves each file old or new, never partial. (No fsync per
            // file: thousands of them would dominate the run; the graph store is the durable record.)
            let tmp = path.with_extension(format!("json.tmp{}", std::process::id()));
            std::fs::write(&tmp, &bytes).map_err(io(&tmp))?;
            std::fs::rename(&tmp, &path).map_err(io(&path))?;
            Ok(true)
        })
        .collect();
    let mut written = 0;
    let mut unchanged = 0;
    for r in results {
        if r? {
            written += 1;
        } else {
            unchanged += 1;
        }
    }
    let keep: std::collections::HashSet<String> =
        nodes.iter().map(|n| format!("{}.json", n.id)).collect();
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).map_err(io(dir))?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if (name.ends_with(".json") || name.contains(".tmp")) && !keep.contains(&name) {
            std::fs::remove_file(entry.path()).map_err(io(&entry.path()))?;
            removed += 1;
        }
    }
    Ok((written, removed, unchanged))
}

/// Vectors by content hash of (model id, text), kept beside the store.
#[derive(Debug, Default, Serialize, Deserialize)]
struct EmbedCache {
    model: String,
    vectors: HashMap<String, Vec<f32>>,
}

fn cache_key(model: &str, text: &str) -> String {
    let mut h = blake3::Hasher::new();
    h.update(model.as_bytes());
    h.update(&[0]);
    h.update(text.as_bytes());
    h.finalize().to_hex()[..32].to_string()
}

/// Embeds each node's search text, reusing cached vectors; returns (vectors in node order, embedded, cached).
pub fn embed_nodes(
    embedder: &Embedder,
    nodes: &[BrainNode],
    cache_path: &Path,
    sink: &dyn Sink,
    cancel: &Cancel,
) -> Result<(Vec<Vec<f32>>, u64, u64), Error> {
    let mut cache: EmbedCache = std::fs::read(cache_path)
        .ok()
        .and_then(|b| postcard::from_bytes(&b).ok())
        .filter(|c: &EmbedCache| c.model == embedder.model_id())
        .unwrap_or_default();
    cache.model = embedder.model_id().to_string();
    let keys: Vec<String> = nodes
        .iter()
        .map(|n| cache_key(&cache.model, &n.embed_text()))
        .collect();
    let missing: Vec<usize> = (0..nodes.len())
        .filter(|&i| !cache.vectors.contains_key(&keys[i]))
        .collect();
    let total = missing.len() as u64;
    let mut done = 0u64;
    for chunk in missing.chunks(256) {
        if cancel.is_cancelled() {
            return Err(BrainError::Cancelled.into());
        }
        let texts: Vec<String> = chunk.iter().map(|&i| nodes[i].embed_text()).collect();
        let vectors = embedder.embed(&texts)?;
        for (&i, v) in chunk.iter().zip(vectors) {
            cache.vectors.insert(keys[i].clone(), v);
        }
        done += chunk.len() as u64;
        sink.event(ProgressEvent {
            stage: "embed",
            done,
            total: Some(total),
            message: String::new(),
        });
    }
    let vectors: Vec<Vec<f32>> = keys
        .iter()
        .map(|k| cache.vectors.get(k).cloned().unwrap_or_default())
        .collect();
    // Keep only what is in use, so the cache does not grow without bound.
    let used: std::collections::HashSet<&String> = keys.iter().collect();
    cache.vectors.retain(|k, _| used.contains(k));
    let bytes = postcard::to_stdvec(&cache).map_err(|e| BrainError::Io {
        path: cache_path.to_path_buf(),
        cause: std::io::Error::other(e),
    })?;
    write_atomic(cache_path, &bytes).map_err(|cause| BrainError::Io {
        path: cache_path.to_path_buf(),
        cause,
    })?;
    Ok((vectors, total, nodes.len() as u64 - total))
}

/// Loads the embedding model configured in `cfg`.
pub fn load_embedder(cfg: &BrainConfig) -> Result<Embedder, Error> {
    let paths = embed_paths(cfg);
    let opts = EmbedOptions {
        batch: cfg.embed.batch,
        threads: cfg.embed.threads,
        max_tokens: cfg.embed.max_tokens,
    };
    Ok(Embedder::load(&paths, &opts)?)
}

fn embed_paths(cfg: &BrainConfig) -> ModelPaths {
    let runtime = (!cfg.embed.runtime.is_empty()).then(|| PathBuf::from(&cfg.embed.runtime));
    ModelPaths::resolve(runtime.as_deref(), Some(&cfg.embed.model))
}

/// Whether the ONNX Runtime library and the embedding model of `cfg` are on disk (without loading them), so a
/// front end can decide to embed or say why it does not.
pub fn embedder_installed(cfg: &BrainConfig) -> bool {
    let paths = embed_paths(cfg);
    paths.runtime.is_file()
        && paths.model_dir.join("model.onnx").is_file()
        && paths.model_dir.join("tokenizer.json").is_file()
}

/// Builds (or re-embeds) the brain of `workspace`'s graph.
pub async fn run(
    graph_cfg: &GraphConfig,
    cfg: &BrainConfig,
    workspace: &Path,
    opts: BrainOptions,
    sink: &dyn Sink,
    cancel: &Cancel,
) -> Result<BrainReport, Error> {
    let mut report = BrainReport::default();
    let mut store = GraphStore::open(graph_cfg, workspace, true).await?;
    let t = Instant::now();
    let nodes = if opts.derive {
        let (graph, root) = store.load_graph().await?;
        report
            .timings_ms
            .insert("load".into(), t.elapsed().as_millis() as u64);
        let t = Instant::now();
        let root = PathBuf::from(root);
        let mut paths: Vec<String> = graph
            .nodes
            .iter()
            .filter(|n| n.id.ty == crate::extract::NodeType::Module)
            .map(|n| n.path.clone())
            .collect();
        paths.sort();
        paths.dedup();
        let sources = read_sources(&root, &paths, 8 << 20);
        let docs = read_docs(&root, &cfg.summary.docs);
        report
            .timings_ms
            .insert("read".into(), t.elapsed().as_millis() as u64);
        if cancel.is_cancelled() {
            return Err(BrainError::Cancelled.into());
        }
        let t = Instant::now();
        sink.event(ProgressEvent {
            stage: "brain",
            done: 0,
            total: None,
            message: format!("{} files", sources.len()),
        });
        let inputs = derive::Inputs {
            graph: &graph,
            sources: &sources,
            docs: &docs,
        };
        let (mut nodes, stats) = derive::derive(&inputs, &cfg.summary, Scanner::default_rules());
        report.stats = stats;
        report
            .timings_ms
            .insert("derive".into(), t.elapsed().as_millis() as u64);
        if !cfg.llm.endpoint.is_empty() {
            let t = Instant::now();
            // Code names, and the configuration keys that concepts name.
            let config_keys = nodes
                .iter()
                .filter(|n| n.meta.get("kind").and_then(|k| k.as_str()) == Some("config"))
                .map(|n| n.name.as_str());
            let known = refine::known_names(
                graph
                    .nodes
                    .iter()
                    .flat_map(|n| [n.name.as_str(), n.qname.as_str()])
                    .chain(config_keys),
            );
            let stats = refine::refine(
                &mut nodes,
                &known,
                &cfg.llm,
                &cfg.summary,
                Scanner::default_rules(),
                sink,
                cancel,
            )
            .await?;
            report.refine = Some(stats);
            report
                .timings_ms
                .insert("refine".into(), t.elapsed().as_millis() as u64);
        }
        let t = Instant::now();
        let (written, removed, unchanged) = export(&nodes_dir(workspace), &nodes)?;
        report.exported = written;
        report.removed = removed;
        report.unchanged = unchanged;
        report
            .timings_ms
            .insert("export".into(), t.elapsed().as_millis() as u64);
        nodes
    } else {
        let nodes = store.brain_nodes().await?;
        if nodes.is_empty() {
            return Err(BrainError::Empty {
                workspace: workspace.to_path_buf(),
            }
            .into());
        }
        nodes
    };
    if cancel.is_cancelled() {
        return Err(BrainError::Cancelled.into());
    }
    let vectors = if opts.embed {
        let t = Instant::now();
        let embedder = load_embedder(cfg)?;
        let (vectors, embedded, cached) = embed_nodes(
            &embedder,
            &nodes,
            &brain_dir(workspace).join("embeddings.bin"),
            sink,
            cancel,
        )?;
        report.embedded = embedded;
        report.embed_cached = cached;
        report.embed_model = embedder.model_id().to_string();
        report
            .timings_ms
            .insert("embed".into(), t.elapsed().as_millis() as u64);
        Some(vectors)
    } else {
        // Without embedding, the store keeps the vectors of unchanged nodes.
        None
    };
    let t = Instant::now();
    let (inserted, deleted) = store.write_brain(&nodes, vectors.as_deref(), sink).await?;
    report.store_inserted = inserted;
    report.store_deleted = deleted;
    report
        .timings_ms
        .insert("store".into(), t.elapsed().as_millis() as u64);
    store.close().await;
    Ok(report)
}
