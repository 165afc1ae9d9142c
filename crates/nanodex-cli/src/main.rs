//! `nanodex`: the command-line front end. Glue only: parse flags, call `nanodex_core`, print.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nanodex_core::config;
use nanodex_core::extract::{self, ExtractReport, FactsCache};
use nanodex_core::graph::{self, GraphStore, Inspect, NodeDetail};
use nanodex_core::progress::{Cancel, ProgressEvent, Sink};

#[derive(Parser)]
#[command(
    name = "nanodex",
    version,
    about = "Compile a codebase into a portable domain expert",
    propagate_version = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Workspace folder that holds the graph (`<workspace>/brain/graph.db`) and caches.
    #[arg(
        long,
        short = 'w',
        env = "NANODEX_WORKSPACE",
        default_value = ".nanodex"
    )]
    workspace: PathBuf,
    /// Configuration file overriding the embedded defaults (see config/extract.yaml).
    #[arg(long, short = 'c', env = "NANODEX_CONFIG")]
    config: Option<PathBuf>,
}

#[derive(Subcommand)]
enum Command {
    /// Extract the code graph of a repository into the workspace (incremental unless --full).
    Extract {
        /// Repository root.
        repo: PathBuf,
        #[command(flatten)]
        common: Common,
        /// Rebuild the whole graph instead of applying changes.
        #[arg(long)]
        full: bool,
        /// Parse and resolve only; write nothing (for timing the stages apart).
        #[arg(long)]
        no_store: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Summarize the stored graph: counts, most connected modules, parse errors, resolved calls.
    GraphInspect {
        #[command(flatten)]
        common: Common,
        /// Print JSON: {"nodes": {...}, "edges": {...}, ...}.
        #[arg(long)]
        json: bool,
    },
    /// Read the stored graph.
    Graph {
        #[command(subcommand)]
        command: GraphCommand,
    },
}

#[derive(Subcommand)]
enum GraphCommand {
    /// Show a node (by id, qualified name or name) with its incoming and outgoing edges.
    Show {
        /// `function:<key>`, a qualified name (`json.loads`) or a simple name (`loads`).
        name: String,
        #[command(flatten)]
        common: Common,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a read-only SurrealQL query (prints JSON, one value per statement).
    Query {
        /// SurrealQL, e.g. "SELECT ->calls->function.qname FROM function WHERE name = 'loads'".
        sql: String,
        #[command(flatten)]
        common: Common,
        /// Print JSON (always on; accepted for symmetry with the other read commands).
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_env("NANODEX_LOG")
        .unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: starting runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            if err.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Extract {
            repo,
            common,
            full,
            no_store,
            json,
        } => cmd_extract(repo, common, full, no_store, json).await,
        Command::GraphInspect { common, json } => {
            let store = open_read(&common).await?;
            let inspect = store.inspect().await?;
            if json {
                print_json(&inspect)?;
            } else {
                print_inspect(&inspect)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Graph {
            command: GraphCommand::Show { name, common, json },
        } => {
            let store = open_read(&common).await?;
            let details = store.show(&name).await?;
            if json {
                print_json(&details)?;
            } else {
                print_show(&details)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Graph {
            command:
                GraphCommand::Query {
                    sql,
                    common,
                    json: _,
                },
        } => {
            let store = open_read(&common).await?;
            let rows = store.query_readonly(&sql).await?;
            print_json(&rows)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn open_read(common: &Common) -> Result<GraphStore> {
    let cfg = config::load(common.config.as_deref())?;
    Ok(GraphStore::open(&cfg.graph, &common.workspace, false).await?)
}

/// Adapts core progress events to one indicatif bar.
struct BarSink {
    bar: ProgressBar,
    stage: Mutex<&'static str>,
}

impl Sink for BarSink {
    fn event(&self, ev: ProgressEvent) {
        if let Ok(mut stage) = self.stage.lock()
            && *stage != ev.stage
        {
            *stage = ev.stage;
            self.bar.reset();
            self.bar.set_prefix(ev.stage);
            let unit = if ev.stage == "store" {
                "records"
            } else {
                "files"
            };
            let template = format!(
                "{{prefix:>8}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{per_sec}} ETA {{eta}} {{wide_msg}}"
            );
            if let Ok(style) = ProgressStyle::with_template(&template) {
                self.bar.set_style(style.progress_chars("=> "));
            }
        }
        if let Some(total) = ev.total {
            self.bar.set_length(total);
        }
        self.bar.set_position(ev.done);
        self.bar.set_message(ev.message);
    }
}

async fn cmd_extract(
    repo: PathBuf,
    common: Common,
    full: bool,
    no_store: bool,
    json: bool,
) -> Result<ExitCode> {
    let started = Instant::now();
    let cfg = config::load(common.config.as_deref())?;
    let root = extract::check_repo(&repo)?;
    let brain = graph::brain_dir(&common.workspace);
    let cache_path = brain.join("facts.cache");
    // Take the workspace (lock + store) before any work, so a second writer fails at once.
    let mut store = if no_store {
        None
    } else {
        Some(GraphStore::open(&cfg.graph, &common.workspace, true).await?)
    };
    let previous = if full || no_store {
        FactsCache::default()
    } else {
        FactsCache::load(&cache_path)
    };

    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
    if json {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.enable_steady_tick(Duration::from_millis(200));
    let sink = std::sync::Arc::new(BarSink {
        bar: bar.clone(),
        stage: Mutex::new(""),
    });
    let cancel = Cancel::new();
    let on_signal = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_signal.cancel();
        }
    });

    let (extract_cfg, root2, sink2, cancel2) = (
        cfg.extract.clone(),
        root.clone(),
        sink.clone(),
        cancel.clone(),
    );
    let extraction = tokio::task::spawn_blocking(move || {
        extract::run(&extract_cfg, &root2, &previous, sink2.as_ref(), &cancel2)
    })
    .await
    .context("extraction thread panicked")??;
    let mut report = extraction.report.clone();
    let mut write = None;
    if let Some(store) = store.as_mut() {
        let t = Instant::now();
        let root_text = root.display().to_string();
        let written = tokio::select! {
            res = store.write(&extraction.graph, &root_text, full, sink.as_ref()) => res?,
            _ = wait_cancel(&cancel) => anyhow::bail!("cancelled; the previous graph is unchanged"),
        };
        report
            .timings_ms
            .insert("store".into(), t.elapsed().as_millis() as u64);
        FactsCache::new(extraction.files).save(&cache_path)?;
        write = Some(written);
    }
    bar.finish_and_clear();
    report
        .timings_ms
        .insert("total".into(), started.elapsed().as_millis() as u64);
    if json {
        print_json(&serde_json::json!({ "report": report, "write": write }))?;
    } else {
        print_report(&report, write.as_ref(), no_store, &common.workspace)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn wait_cancel(cancel: &Cancel) {
    while !cancel.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn print_json<T: serde::Serialize>(value: &T) -> Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, value)?;
    writeln!(out)?;
    Ok(())
}

fn join_counts(map: &std::collections::BTreeMap<String, u64>) -> String {
    if map.is_empty() {
        return "none".into();
    }
    map.iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn print_report(
    report: &ExtractReport,
    write: Option<&graph::WriteReport>,
    no_store: bool,
    workspace: &Path,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    let files: u64 = report.files_by_lang.values().sum();
    let secs = report.timings_ms.get("total").copied().unwrap_or(0) as f64 / 1000.0;
    writeln!(
        out,
        "extracted {} ({files} files, {:.1} MB) in {secs:.2}s",
        report.root,
        report.bytes as f64 / 1e6
    )?;
    writeln!(out, "  files:       {}", join_counts(&report.files_by_lang))?;
    writeln!(
        out,
        "  parsed:      {} (reused from cache: {})",
        report.parsed, report.reused
    )?;
    writeln!(out, "  skipped:     {}", join_counts(&report.skipped))?;
    writeln!(out, "  nodes:       {}", join_counts(&report.nodes))?;
    writeln!(out, "  edges:       {}", join_counts(&report.edges))?;
    let r = &report.resolve;
    let calls = r.calls_resolved + r.calls_unresolved;
    let share = if calls == 0 {
        0.0
    } else {
        100.0 * r.calls_resolved as f64 / calls as f64
    };
    writeln!(
        out,
        "  calls:       {} resolved, {} unresolved ({share:.1}% resolved)",
        r.calls_resolved, r.calls_unresolved
    )?;
    writeln!(
        out,
        "  parse errors: {} files{}",
        report.parse_error_files.len(),
        examples(&report.parse_error_files)
    )?;
    if !report.invalid_utf8_files.is_empty() {
        writeln!(
            out,
            "  invalid UTF-8 (decoded lossily): {}{}",
            report.invalid_utf8_files.len(),
            examples(&report.invalid_utf8_files)
        )?;
    }
    writeln!(out, "  time (ms):   {}", join_counts(&report.timings_ms))?;
    match write {
        Some(w) => writeln!(
            out,
            "  store:       {} write to {} ({} inserted, {} updated, {} deleted) in {}",
            w.mode,
            graph::brain_dir(workspace).join("graph.db").display(),
            w.inserted,
            w.updated,
            w.deleted,
            w.db
        )?,
        None if no_store => writeln!(out, "  store:       skipped (--no-store)")?,
        None => {}
    }
    Ok(())
}

fn examples(list: &[String]) -> String {
    if list.is_empty() {
        return String::new();
    }
    let shown: Vec<&str> = list.iter().take(5).map(String::as_str).collect();
    format!(
        " ({}{})",
        shown.join(", "),
        if list.len() > 5 { ", ..." } else { "" }
    )
}

fn print_inspect(i: &Inspect) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "graph of {} (generation {}, written {})",
        i.root, i.generation, i.extracted_at
    )?;
    writeln!(out, "nodes:")?;
    for (ty, n) in &i.nodes {
        let langs = i.nodes_by_lang.get(ty).map(join_counts).unwrap_or_default();
        writeln!(out, "  {ty:<11} {n:>8}   {langs}")?;
    }
    writeln!(out, "edges:")?;
    for (kind, n) in &i.edges {
        writeln!(out, "  {kind:<11} {n:>8}")?;
    }
    writeln!(
        out,
        "resolved calls: {:.1}% ({} of {})",
        100.0 * i.resolved_call_share,
        i.resolve.calls_resolved,
        i.resolve.calls_resolved + i.resolve.calls_unresolved
    )?;
    writeln!(out, "most connected modules (imports out / in):")?;
    for m in &i.most_connected_modules {
        writeln!(
            out,
            "  {:<50} {:>4} / {:<4}",
            m.path, m.imports, m.imported_by
        )?;
    }
    writeln!(
        out,
        "parse-error files: {}{}",
        i.parse_error_files.len(),
        examples(&i.parse_error_files)
    )?;
    Ok(())
}

fn print_show(details: &[NodeDetail]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    for d in details {
        let n = &d.node;
        let s = |k: &str| n.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        let line = n.get("start_line").and_then(|v| v.as_u64()).unwrap_or(0);
        writeln!(out, "{}  {}", s("id"), s("qname"))?;
        if !s("path").is_empty() {
            writeln!(out, "  at {}:{line}", s("path"))?;
        }
        if !s("signature").is_empty() {
            writeln!(out, "  {}", s("signature"))?;
        }
        if !s("doc").is_empty() {
            writeln!(out, "  \"{}\"", s("doc"))?;
        }
        for e in &d.edges {
            let arrow = if e.direction == "out" { "->" } else { "<-" };
            // Outgoing: where the other end is defined; incoming: where the other end writes the relation.
            let line = if e.direction == "out" {
                e.line
            } else {
                e.lines.first().copied().unwrap_or(e.line)
            };
            let at = if e.path.is_empty() {
                String::new()
            } else {
                format!("  {}:{line}", e.path)
            };
            let conf = if e.confidence < 1.0 {
                format!("  (confidence {:.2})", e.confidence)
            } else {
                String::new()
            };
            writeln!(out, "  {arrow} {:<11} {}{at}{conf}", e.kind, e.qname)?;
        }
        writeln!(out)?;
    }
    Ok(())
}
