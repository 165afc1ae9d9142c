//! The nanodex desktop app: Tauri commands that call the core pipeline (through [`project`]) and events that
//! report long jobs to the UI. No pipeline logic lives here.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod project;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use nanodex_core::config::{BrainConfig, Config};
use nanodex_core::graph::GraphStore;
use nanodex_core::progress::{Cancel, ProgressEvent, Sink};
use nanodex_core::search::Mode;
use nanodex_core::view::{Excerpt, GraphView, NodeView, SymbolHit};
use project::{ImportObserver, Layout, Loaded, ProjectEntry, Registry};
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, State};
use tracing_subscriber::prelude::*;

/// Everything the commands share.
struct AppState {
    data_dir: PathBuf,
    cfg: Config,
    bcfg: BrainConfig,
    registry: Mutex<Registry>,
    current: RwLock<Option<Arc<Loaded>>>,
    job: Mutex<Option<(u64, Cancel)>>,
    next_job: AtomicU64,
    started: Instant,
}

/// Errors reach the UI as their full, readable chain.
type CmdResult<T> = Result<T, String>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

fn anyhow_err(e: anyhow::Error) -> String {
    format!("{e:#}")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Serialize, Clone)]
struct AppInfo {
    version: &'static str,
    data_dir: PathBuf,
    /// Milliseconds from process start to this call (the UI calls it once it has drawn).
    uptime_ms: u64,
}

#[derive(Serialize, Clone)]
struct ProjectPayload {
    entry: ProjectEntry,
    view: Arc<GraphView>,
    layout: Layout,
}

#[derive(Serialize, Clone)]
struct ProgressPayload {
    job: u64,
    stage: &'static str,
    done: u64,
    total: Option<u64>,
    /// Units per second in the current stage.
    rate: f64,
    message: String,
    elapsed_ms: u64,
}

#[derive(Serialize, Clone)]
struct FinishedPayload {
    job: u64,
    repo: String,
    ok: bool,
    cancelled: bool,
    error: Option<String>,
    elapsed_ms: u64,
}

#[derive(Serialize, Clone)]
struct LogPayload {
    level: &'static str,
    message: String,
    time_ms: u64,
}

#[derive(Serialize)]
struct DetailPayload {
    node: NodeView,
    excerpt: Option<Excerpt>,
}

#[derive(Serialize)]
struct BrainHitPayload {
    id: String,
    #[serde(rename = "type")]
    ty: String,
    name: String,
    path: String,
    line: u64,
    summary: String,
    score: f64,
    /// The code node the hit is about (what the graph focuses).
    target: Option<String>,
    module: Option<String>,
}

#[derive(Serialize)]
struct SearchPayload {
    symbols: Vec<SymbolHit>,
    brain: Vec<BrainHitPayload>,
    notes: Vec<String>,
}

fn log(app: &AppHandle, level: &'static str, message: String) {
    tracing::info!(level, "{message}");
    let _ = app.emit(
        "log",
        LogPayload {
            level,
            message,
            time_ms: now_ms(),
        },
    );
}

/// Forwards core progress to the UI as `progress` events (at most ~20 a second, plus every stage change).
struct Observer {
    app: AppHandle,
    job: u64,
    started: Instant,
    last: Mutex<(&'static str, Instant, Instant)>,
}

impl Sink for Observer {
    fn event(&self, ev: ProgressEvent) {
        let now = Instant::now();
        let Ok(mut last) = self.last.lock() else {
            return;
        };
        let stage_changed = last.0 != ev.stage;
        if stage_changed {
            *last = (ev.stage, now, now);
        } else if now.duration_since(last.2).as_millis() < 50 && Some(ev.done) != ev.total {
            return;
        }
        last.2 = now;
        let secs = now.duration_since(last.1).as_secs_f64();
        let payload = ProgressPayload {
            job: self.job,
            stage: ev.stage,
            done: ev.done,
            total: ev.total,
            rate: if secs > 0.0 {
                ev.done as f64 / secs
            } else {
                0.0
            },
            message: ev.message,
            elapsed_ms: self.started.elapsed().as_millis() as u64,
        };
        drop(last);
        let _ = self.app.emit("progress", payload);
    }
}

impl ImportObserver for Observer {
    fn graph_ready(&self, loaded: Arc<Loaded>) {
        let state = self.app.state::<AppState>();
        if let Ok(mut cur) = state.current.write() {
            *cur = Some(loaded.clone());
        }
        let _ = self
            .app
            .emit("graph-ready", loaded.entry.repo.display().to_string());
    }
    fn warn(&self, message: String) {
        log(&self.app, "warn", message);
    }
}

#[tauri::command]
fn app_info(state: State<'_, AppState>) -> AppInfo {
    AppInfo {
        version: env!("CARGO_PKG_VERSION"),
        data_dir: state.data_dir.clone(),
        uptime_ms: state.started.elapsed().as_millis() as u64,
    }
}

#[tauri::command]
fn list_projects(state: State<'_, AppState>) -> Vec<ProjectEntry> {
    state
        .registry
        .lock()
        .map(|r| r.projects.clone())
        .unwrap_or_default()
}

#[tauri::command]
fn forget_project(state: State<'_, AppState>, repo: String) -> CmdResult<()> {
    let mut reg = state.registry.lock().map_err(err)?;
    reg.forget(Path::new(&repo)).map_err(anyhow_err)
}

/// Validates a dropped or picked path; returns its canonical form.
#[tauri::command]
fn check_path(path: String) -> CmdResult<String> {
    project::check_import_path(Path::new(&path))
        .map(|p| p.display().to_string())
        .map_err(anyhow_err)
}

/// Starts importing a repository in the background; returns the job id. Progress arrives as `progress`
/// events, the graph as `graph-ready` (before the brain is built), the end as `job-finished`.
#[tauri::command]
fn start_import(app: AppHandle, state: State<'_, AppState>, path: String) -> CmdResult<u64> {
    let repo = project::check_import_path(Path::new(&path)).map_err(anyhow_err)?;
    let mut job = state.job.lock().map_err(err)?;
    if job.is_some() {
        return Err("an import is already running; wait for it or cancel it first".into());
    }
    let id = state.next_job.fetch_add(1, Ordering::Relaxed) + 1;
    let cancel = Cancel::new();
    *job = Some((id, cancel.clone()));
    drop(job);
    let started = Instant::now();
    let observer = Arc::new(Observer {
        app: app.clone(),
        job: id,
        started,
        last: Mutex::new(("", started, started)),
    });
    tauri::async_runtime::spawn(async move {
        let state = app.state::<AppState>();
        let result = project::import(
            &state.cfg,
            &state.bcfg,
            &state.data_dir,
            &repo,
            observer,
            &cancel,
        )
        .await;
        let cancelled = cancel.is_cancelled();
        let error = match result {
            Ok(loaded) => {
                let loaded = Arc::new(loaded);
                if let Ok(mut reg) = state.registry.lock()
                    && let Err(e) = reg.touch(loaded.entry.clone())
                {
                    log(&app, "warn", format!("{e:#}"));
                }
                if let Ok(mut cur) = state.current.write() {
                    *cur = Some(loaded);
                }
                None
            }
            Err(e) => {
                let message = format!("{e:#}");
                log(
                    &app,
                    if cancelled { "info" } else { "error" },
                    message.clone(),
                );
                Some(message)
            }
        };
        if let Ok(mut job) = state.job.lock() {
            *job = None;
        }
        let _ = app.emit(
            "job-finished",
            FinishedPayload {
                job: id,
                repo: repo.display().to_string(),
                ok: error.is_none(),
                cancelled,
                error,
                elapsed_ms: started.elapsed().as_millis() as u64,
            },
        );
    });
    Ok(id)
}

#[tauri::command]
fn cancel_import(state: State<'_, AppState>) -> bool {
    match state.job.lock().ok().and_then(|j| j.clone()) {
        Some((_, cancel)) => {
            cancel.cancel();
            true
        }
        None => false,
    }
}

fn payload(loaded: &Loaded) -> ProjectPayload {
    ProjectPayload {
        entry: loaded.entry.clone(),
        view: loaded.view.clone(),
        layout: project::load_layout(&loaded.entry.workspace),
    }
}

fn current(state: &AppState) -> CmdResult<Arc<Loaded>> {
    state
        .current
        .read()
        .map_err(err)?
        .clone()
        .ok_or_else(|| "no project is open; drop a repository folder on the window".into())
}

/// The project on screen (after `graph-ready` or `job-finished`).
#[tauri::command]
fn current_project(state: State<'_, AppState>) -> Option<ProjectPayload> {
    current(&state).ok().map(|l| payload(&l))
}

/// Opens a recent project from its workspace (no extraction).
#[tauri::command]
async fn open_project(state: State<'_, AppState>, repo: String) -> CmdResult<ProjectPayload> {
    if state.job.lock().map_err(err)?.is_some() {
        return Err("an import is running; wait for it or cancel it first".into());
    }
    let entry = state
        .registry
        .lock()
        .map_err(err)?
        .get(Path::new(&repo))
        .cloned()
        .ok_or_else(|| format!("{repo} is not a known project; import it first"))?;
    let loaded = Arc::new(project::open(&state.cfg, entry).await.map_err(anyhow_err)?);
    *state.current.write().map_err(err)? = Some(loaded.clone());
    Ok(payload(&loaded))
}

#[tauri::command]
fn node_detail(state: State<'_, AppState>, id: String) -> CmdResult<DetailPayload> {
    let loaded = current(&state)?;
    let (node, excerpt) = loaded
        .detail(&id)
        .ok_or_else(|| format!("no node {id} in this project"))?;
    Ok(DetailPayload { node, excerpt })
}

/// Symbols by name, and (when the brain exists and no import holds the store) the brain's hybrid search.
#[tauri::command]
async fn search(
    state: State<'_, AppState>,
    query: String,
    limit: Option<usize>,
) -> CmdResult<SearchPayload> {
    let loaded = current(&state)?;
    let limit = limit.unwrap_or(12).clamp(1, 50);
    let symbols = loaded.symbols(&query, limit);
    let mut out = SearchPayload {
        symbols,
        brain: vec![],
        notes: vec![],
    };
    if !loaded.entry.has_brain || query.split_whitespace().count() < 2 {
        return Ok(out);
    }
    if state.job.lock().map_err(err)?.is_some() {
        out.notes
            .push("searching summaries is possible once the import has finished".into());
        return Ok(out);
    }
    let mut bcfg = state.bcfg.clone();
    bcfg.search.limit = limit;
    let store = GraphStore::open(&state.cfg.graph, &loaded.entry.workspace, false)
        .await
        .map_err(err)?;
    let found = nanodex_core::pipeline::search(
        &store,
        &bcfg,
        &loaded.entry.workspace,
        &query,
        None,
        Mode::Hybrid,
    )
    .await;
    store.close().await;
    let found = found.map_err(err)?;
    out.notes = found.notes;
    out.brain = found
        .hits
        .into_iter()
        .map(|h| {
            let primary = loaded
                .brain
                .iter()
                .find(|b| b.id == h.id)
                .and_then(|b| b.refs.first().cloned());
            let module = primary.as_deref().and_then(|p| loaded.module_of(p));
            BrainHitPayload {
                id: h.id,
                ty: h.ty,
                name: h.name,
                path: h.path,
                line: h.line,
                summary: h.summary,
                score: h.score,
                target: primary,
                module,
            }
        })
        .collect();
    Ok(out)
}

#[tauri::command]
fn save_layout(state: State<'_, AppState>, layout: Layout) -> CmdResult<()> {
    let loaded = current(&state)?;
    project::save_layout(&loaded.entry.workspace, &layout).map_err(anyhow_err)
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // As in the CLI: surrealkv warns when its tree is dropped off the runtime after the datastore's
                // shutdown has already flushed and closed it.
                .unwrap_or_else(|_| "nanodex_app=info,warn,surrealkv::lsm=error".into()),
        )
        .with_writer(std::io::stderr)
        .finish()
        .with(tracing_subscriber::filter::filter_fn(|m| {
            !nanodex_core::graph::is_echoed_store_error(m)
        }))
        .init();
    let started = Instant::now();
    let (cfg, bcfg) = match project::load_configs() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("nanodex: {e:#}");
            std::process::exit(2);
        }
    };
    tauri::Builder::default()
        .plugin(tauri_plugin_dialog::init())
        .setup(move |app| {
            let data_dir = match std::env::var_os("NANODEX_APP_DATA") {
                Some(d) => PathBuf::from(d),
                None => app.path().app_data_dir()?,
            };
            std::fs::create_dir_all(&data_dir)?;
            let registry = Registry::load(&data_dir);
            app.manage(AppState {
                data_dir,
                cfg,
                bcfg,
                registry: Mutex::new(registry),
                current: RwLock::new(None),
                job: Mutex::new(None),
                next_job: AtomicU64::new(0),
                started,
            });
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            app_info,
            list_projects,
            forget_project,
            check_path,
            start_import,
            cancel_import,
            current_project,
            open_project,
            node_detail,
            search,
            save_layout,
        ])
        .run(tauri::generate_context!())
        .expect("error while running nanodex");
}
