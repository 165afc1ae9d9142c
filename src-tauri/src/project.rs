//! The app's own bookkeeping around the core pipeline: where each imported repository's workspace lives, the
//! list of recent projects, and a per-workspace session cache (graph + brain nodes) that makes reopening a
//! project instant. Everything here runs without a window, so it is tested as plain Rust.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use nanodex_core::brain::{self, BrainNode, BrainOptions};
use nanodex_core::config::{self, BrainConfig, Config};
use nanodex_core::extract::CodeGraph;
use nanodex_core::fsutil::write_atomic;
use nanodex_core::graph::{self, GraphStore};
use nanodex_core::pipeline::{self, ExtractOptions};
use nanodex_core::progress::{Cancel, ProgressEvent, Sink};
use nanodex_core::view::{self, GraphIndex, GraphView};
use serde::{Deserialize, Serialize};

/// How many projects the recent list keeps.
pub const RECENT_MAX: usize = 20;
const SESSION_FORMAT: u32 = 1;

/// One project in the recent list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectEntry {
    /// Display name (the repository folder's name).
    pub name: String,
    /// Canonical repository path.
    pub repo: PathBuf,
    /// Its workspace (graph store, brain, app caches).
    pub workspace: PathBuf,
    /// Last successful extraction, milliseconds since the Unix epoch.
    pub extracted_at_ms: u64,
    /// Code nodes by type at that time.
    pub counts: BTreeMap<String, u64>,
    /// Whether a brain was built.
    pub has_brain: bool,
}

/// The recent-projects list, newest first, stored as `recent.json` in the app's data folder.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Registry {
    /// Entries, newest first.
    pub projects: Vec<ProjectEntry>,
    #[serde(skip)]
    path: PathBuf,
}

impl Registry {
    /// Loads the list from `data_dir`; a missing or unreadable file gives an empty list (the file is rewritten
    /// on the next import), never an error that would keep the app from starting.
    pub fn load(data_dir: &Path) -> Registry {
        let path = data_dir.join("recent.json");
        let mut reg: Registry = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        reg.path = path;
        reg
    }

    /// Moves `entry` to the front (replacing the entry for the same repository) and saves atomically.
    pub fn touch(&mut self, entry: ProjectEntry) -> Result<()> {
        self.projects.retain(|p| p.repo != entry.repo);
        self.projects.insert(0, entry);
        self.projects.truncate(RECENT_MAX);
        self.save()
    }

    /// Removes a repository from the list (its workspace stays on disk).
    pub fn forget(&mut self, repo: &Path) -> Result<()> {
        self.projects.retain(|p| p.repo != repo);
        self.save()
    }

    /// The entry of a repository.
    pub fn get(&self, repo: &Path) -> Option<&ProjectEntry> {
        self.projects.iter().find(|p| p.repo == repo)
    }

    fn save(&self) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(self)?;
        write_atomic(&self.path, &bytes).with_context(|| format!("saving {}", self.path.display()))
    }
}

/// The workspace of a repository: `<data>/projects/<name>-<hash of the canonical path>`, so two checkouts
/// with the same folder name never share one, and the same checkout always gets the same one.
pub fn workspace_for(data_dir: &Path, repo: &Path) -> PathBuf {
    let name: String = repo
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let hash = nanodex_core::extract::stable_key(&[&repo.to_string_lossy()]);
    data_dir
        .join("projects")
        .join(format!("{name}-{}", &hash[..hash.len().min(12)]))
}

/// Checks a dropped or picked path before anything runs: it must be a readable folder. Returns its canonical
/// path. (An empty folder is caught by the extraction itself.)
pub fn check_import_path(path: &Path) -> Result<PathBuf> {
    Ok(nanodex_core::extract::check_repo(path)?)
}

/// A project loaded into memory: what the graph view, the side panel and symbol search read.
pub struct Loaded {
    /// Its entry.
    pub entry: ProjectEntry,
    /// The code graph.
    pub graph: Arc<CodeGraph>,
    /// The brain's nodes (empty before the brain is built).
    pub brain: Arc<Vec<BrainNode>>,
    /// The condensed view.
    pub view: Arc<GraphView>,
}

impl Loaded {
    fn new(entry: ProjectEntry, graph: Arc<CodeGraph>, brain: Vec<BrainNode>) -> Loaded {
        let view = view::build(&graph, &brain);
        Loaded {
            entry,
            graph,
            brain: Arc::new(brain),
            view: Arc::new(view),
        }
    }

    /// Side-panel details of a node, with its source excerpt.
    pub fn detail(&self, id: &str) -> Option<(view::NodeView, Option<view::Excerpt>)> {
        let index = GraphIndex::new(&self.graph);
        let node = view::node_view(&index, &self.brain, id)?;
        let excerpt = view::read_excerpt(&self.entry.repo, &node, 60);
        Some((node, excerpt))
    }

    /// The module holding code node `id` (what the graph focuses for it).
    pub fn module_of(&self, id: &str) -> Option<String> {
        let index = GraphIndex::new(&self.graph);
        index
            .node(id)
            .and_then(|n| index.module_of(n))
            .map(|m| m.id.to_string())
    }

    /// Symbols by name.
    pub fn symbols(&self, query: &str, limit: usize) -> Vec<view::SymbolHit> {
        view::find_symbols(&GraphIndex::new(&self.graph), query, limit)
    }
}

/// Cache of a workspace's graph and brain, valid while the store files it was read from are unchanged.
#[derive(Serialize, Deserialize)]
struct Session {
    format: u32,
    stamp: String,
    graph: CodeGraph,
    brain: Vec<BrainNode>,
}

fn mtime_ns(path: &Path) -> u128 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// What the session cache is checked against: the store's fingerprint file (rewritten on every graph write)
/// and the brain export folder (its entries change on every brain build that changes something).
fn stamp(workspace: &Path) -> String {
    let dir = graph::brain_dir(workspace);
    format!(
        "{}:{}",
        mtime_ns(&dir.join("graph.state")),
        mtime_ns(&brain::nodes_dir(workspace))
    )
}

fn session_path(workspace: &Path) -> PathBuf {
    workspace.join("app").join("session.json")
}

fn save_session(workspace: &Path, graph: &CodeGraph, brain: &[BrainNode]) -> Result<()> {
    #[derive(Serialize)]
    struct SessionRef<'a> {
        format: u32,
        stamp: String,
        graph: &'a CodeGraph,
        brain: &'a [BrainNode],
    }
    let bytes = serde_json::to_vec(&SessionRef {
        format: SESSION_FORMAT,
        stamp: stamp(workspace),
        graph,
        brain,
    })?;
    let path = session_path(workspace);
    write_atomic(&path, &bytes).with_context(|| format!("saving {}", path.display()))
}

fn load_session(workspace: &Path) -> Option<(CodeGraph, Vec<BrainNode>)> {
    let bytes = std::fs::read(session_path(workspace)).ok()?;
    let s: Session = serde_json::from_slice(&bytes).ok()?;
    (s.format == SESSION_FORMAT && s.stamp == stamp(workspace)).then_some((s.graph, s.brain))
}

/// Reads graph and brain from the store of `workspace`.
async fn read_store(cfg: &Config, workspace: &Path) -> Result<(CodeGraph, Vec<BrainNode>)> {
    let store = GraphStore::open(&cfg.graph, workspace, false).await?;
    let graph = store.load_graph().await;
    let brain = match store.brain_state().await {
        Ok((Some(_), _)) => store.brain_nodes().await.unwrap_or_default(),
        _ => vec![],
    };
    store.close().await;
    Ok((graph?.0, brain))
}

/// Opens an imported project: from the session cache when it is current, else from the store (and refreshes
/// the cache).
pub async fn open(cfg: &Config, entry: ProjectEntry) -> Result<Loaded> {
    if let Some((graph, brain)) = load_session(&entry.workspace) {
        return Ok(Loaded::new(entry, Arc::new(graph), brain));
    }
    let (graph, brain) = read_store(cfg, &entry.workspace)
        .await
        .with_context(|| format!("opening the graph of {}", entry.repo.display()))?;
    save_session(&entry.workspace, &graph, &brain)?;
    Ok(Loaded::new(entry, Arc::new(graph), brain))
}

/// Stages of an import the caller hears about besides progress events.
pub trait ImportObserver: Sink {
    /// The graph is extracted and stored: the view can be drawn while the brain is built.
    fn graph_ready(&self, loaded: Arc<Loaded>);
    /// A non-fatal problem (the brain could not be built, embeddings unavailable ...).
    fn warn(&self, message: String);
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Imports (or re-imports, incrementally) a repository: extract into its workspace, report the graph, then
/// build the brain (summaries always; embeddings when the embedding model is installed). A brain failure, or a
/// cancel once the graph is stored, is a warning: the graph stays usable. Cancelling before that is an error
/// and leaves the previous graph unchanged.
pub async fn import(
    cfg: &Config,
    bcfg: &BrainConfig,
    data_dir: &Path,
    repo: &Path,
    observer: Arc<dyn ImportObserver>,
    cancel: &Cancel,
) -> Result<Loaded> {
    let repo = check_import_path(repo)?;
    let workspace = workspace_for(data_dir, &repo);
    let opts = ExtractOptions {
        require_sources: true,
        keep_graph: true,
        ..ExtractOptions::default()
    };
    let sink: Arc<dyn Sink> = observer.clone();
    let outcome = pipeline::extract(cfg, &repo, &workspace, opts, sink, cancel).await?;
    let mut entry = ProjectEntry {
        name: repo
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| repo.display().to_string()),
        repo: repo.clone(),
        workspace: workspace.clone(),
        extracted_at_ms: now_ms(),
        counts: outcome.report.nodes.clone(),
        has_brain: false,
    };
    let graph = Arc::new(outcome.graph.unwrap_or_default());
    observer.graph_ready(Arc::new(Loaded::new(entry.clone(), graph.clone(), vec![])));
    // Checked on disk; `brain::run` loads the model itself (and reports a broken one as an error).
    let embed = bcfg.embed.enabled && brain::embedder_installed(bcfg);
    if bcfg.embed.enabled && !embed {
        observer.warn(
            "embedding model not installed (run scripts/models.sh): natural-language search is lexical only"
                .into(),
        );
    }
    let built = brain::run(
        &cfg.graph,
        bcfg,
        &workspace,
        BrainOptions {
            derive: true,
            embed,
        },
        observer.as_ref(),
        cancel,
    )
    .await;
    let brain_nodes = match built {
        Ok(_) => {
            let store = GraphStore::open(&cfg.graph, &workspace, false).await?;
            let nodes = store.brain_nodes().await;
            store.close().await;
            nodes?
        }
        Err(_) if cancel.is_cancelled() => {
            // The graph is stored and usable; only the brain was stopped.
            observer.warn(
                "brain build cancelled; the graph is saved (re-import to build the brain)".into(),
            );
            vec![]
        }
        Err(e) => {
            observer.warn(format!("brain not built: {e}"));
            vec![]
        }
    };
    entry.has_brain = !brain_nodes.is_empty();
    save_session(&workspace, &graph, &brain_nodes)?;
    observer.event(ProgressEvent {
        stage: "done",
        done: 1,
        total: Some(1),
        message: format!("{} brain nodes", brain_nodes.len()),
    });
    Ok(Loaded::new(entry, graph, brain_nodes))
}

/// Loads the pipeline configuration the app runs with: `config/extract.yaml` and `config/brain.yaml` from
/// `NANODEX_CONFIG_DIR` when set, else the embedded defaults.
pub fn load_configs() -> Result<(Config, BrainConfig)> {
    let dir = std::env::var_os("NANODEX_CONFIG_DIR").map(PathBuf::from);
    let pick = |name: &str| dir.as_ref().map(|d| d.join(name)).filter(|p| p.exists());
    let cfg = config::load(pick("extract.yaml").as_deref())?;
    let bcfg = config::load_brain(pick("brain.yaml").as_deref())?;
    Ok((cfg, bcfg))
}

/// Saved graph layout of a project: node positions and expanded packages, so the view is the same next time.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    /// Positions by view node id.
    pub positions: BTreeMap<String, [f64; 2]>,
    /// Expanded packages.
    pub expanded: Vec<String>,
}

fn layout_path(workspace: &Path) -> PathBuf {
    workspace.join("app").join("layout.json")
}

/// The saved layout of a workspace (empty when none).
pub fn load_layout(workspace: &Path) -> Layout {
    std::fs::read(layout_path(workspace))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Saves a workspace's layout atomically.
pub fn save_layout(workspace: &Path, layout: &Layout) -> Result<()> {
    let path = layout_path(workspace);
    write_atomic(&path, &serde_json::to_vec(layout)?)
        .with_context(|| format!("saving {}", path.display()))
}

#[cfg(test)]
mod tests;
