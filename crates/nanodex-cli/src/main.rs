//! `nanodex`: the command-line front end. Glue only: parse flags, call `nanodex_core`, print.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use nanodex_core::error::ExtractError;
use nanodex_core::extract::ExtractReport;
use nanodex_core::graph::{self, GraphStore, Inspect, NodeDetail};
use nanodex_core::progress::{Cancel, ProgressEvent, Sink};
use nanodex_core::{brain, config, pipeline, search};
use tracing_subscriber::prelude::*;

mod llm;

#[global_allocator]
static ALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's start-up options, read before the first allocation (`_RJEM_MALLOC_CONF` in the environment still
/// overrides them). One arena instead of one per core pair: training keeps freed pages (see `llm::keep_freed_pages`),
/// and with several arenas each allocating thread kept its own high-water mark, so LoRA's peak RSS varied between
/// 2.3 and 3.7 GB from run to run; with one arena it is 2.4-2.5 GB at the same speed. Thread caches still serve
/// the small allocations without the lock, and they are larger than the default (up to 8000 blocks of a size class
/// or 16 slabs' worth, instead of 200 or 2 slabs' worth), so blocks go back to the shared arena less often: the
/// parse threads' tree-sitter subtrees and facts are millions of small blocks, and on the JDK `extract --no-store` took 4% less CPU (6.10 against 6.37 s, medians
/// of 5 on 2 cores; py 1.19 against 1.25 s) for 3-7 MB more peak RSS, up to 20 MB on a full build. Each small size
/// class of the arena is split into 16 shards with a lock and a current slab each, threads spread over them: the
/// parse threads then no longer wait on one lock when their caches fill or empty, and the JDK's `extract
/// --no-store` ran 3% faster on 2 cores (1.96 against 2.02 s) at the same peak RSS (370-374 MiB on a full build).
/// A worker thread with an arena of its own gained about 5%, but the facts then lay among freed tree blocks that
/// the store's write could not reuse: the full build peaked 60-70 MiB higher.
#[allow(non_upper_case_globals)]
#[unsafe(export_name = "_rjem_malloc_conf")]
pub static malloc_conf: &[u8; 84] =
    b"narenas:1,lg_tcache_nslots_mul:4,tcache_nslots_small_max:8000,bin_shards:1-14336:16\0";

/// tree-sitter's C core allocates through libc's malloc unless told otherwise; its parse stacks and subtrees are
/// the parse phase's many small allocations. Routed to jemalloc, the process has one allocator whose thread caches
/// serve them without a lock.
fn tree_sitter_allocates_with_jemalloc() {
    use std::ffi::c_void;
    // tree-sitter needs non-null results for non-zero sizes; like its own default wrappers, abort on exhaustion.
    fn checked(p: *mut c_void, size: usize) -> *mut c_void {
        if p.is_null() && size != 0 {
            std::process::abort();
        }
        p
    }
    unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
        // SAFETY: jemalloc's malloc has libc's contract.
        checked(unsafe { tikv_jemalloc_sys::malloc(size) }, size)
    }
    unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
        // SAFETY: as above.
        checked(
            unsafe { tikv_jemalloc_sys::calloc(n, size) },
            n.saturating_mul(size),
        )
    }
    unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
        // SAFETY: `p` came from this family (set_allocator runs before tree-sitter allocates anything).
        checked(unsafe { tikv_jemalloc_sys::realloc(p, size) }, size)
    }
    unsafe extern "C" fn free(p: *mut c_void) {
        // SAFETY: as above.
        unsafe { tikv_jemalloc_sys::free(p) }
    }
    // SAFETY: called first thing in main, before any tree-sitter object exists, on the only thread; the four
    // functions are one allocator family with malloc's alignment.
    unsafe {
        tree_sitter::set_allocator(Some(tree_sitter::Allocator {
            malloc,
            calloc,
            realloc,
            free,
        }))
    };
}

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
    /// Build the brain from the stored graph: typed nodes with grounded summaries, exported to
    /// `<workspace>/brain/nodes/*.json`, embedded (unless `embed.enabled: false`) and indexed for search.
    Brain {
        #[command(flatten)]
        args: BrainArgs,
        /// Skip embeddings this run (search falls back to lexical until `brain-embed`).
        #[arg(long)]
        no_embed: bool,
        /// Refine summaries through this OpenAI-compatible endpoint (e.g. http://127.0.0.1:8000/v1); a rewrite is
        /// kept only when every identifier it mentions exists in the graph.
        #[arg(long)]
        llm_endpoint: Option<String>,
        /// Model name sent to --llm-endpoint.
        #[arg(long)]
        llm_model: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// (Re)compute summary embeddings of the stored brain, e.g. after changing `embed.model`.
    BrainEmbed {
        #[command(flatten)]
        args: BrainArgs,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Search the brain with a natural-language question; prints ranked nodes with score, path:line and summary.
    Search {
        /// The question, e.g. "parse JSON from a string" or "what raises JSONDecodeError".
        question: String,
        #[command(flatten)]
        args: BrainArgs,
        /// Only nodes of this type.
        #[arg(long = "type", short = 't', value_parser = ["module", "capability", "concept", "error", "recipe"])]
        ty: Option<String>,
        /// lexical (BM25), vector (embeddings) or hybrid (both, fused).
        #[arg(long, default_value = "hybrid", value_parser = ["lexical", "vector", "hybrid"])]
        mode: String,
        /// Results shown (default: search.limit of the config).
        #[arg(long, short = 'n')]
        limit: Option<usize>,
        /// Print JSON: a list of {id, type, name, qname, path, line, score, summary}.
        #[arg(long)]
        json: bool,
    },
    /// Fine-tune a LoRA / QLoRA adapter on chat JSONL; writes it in PEFT's layout (what vLLM loads) with a model
    /// card, metrics.jsonl and loss charts. Ctrl-C saves a checkpoint; --resume continues.
    Train(llm::TrainArgs),
    /// Answer a prompt with a base model and optionally an adapter (chat template applied).
    Generate(llm::GenerateArgs),
    /// Time LoRA training steps on synthetic data (for bench/lora_peer.sh); prints JSON.
    #[command(hide = true)]
    BenchTrain(llm::BenchTrainArgs),
    /// Answer a dataset's questions greedily and score them (for bench/learn.sh); prints JSON.
    #[command(hide = true)]
    BenchQa(llm::BenchQaArgs),
    /// Time the embedding model on a file of sentences, one per line (for bench/embed.sh); prints JSON.
    #[command(hide = true)]
    BenchEmbed {
        /// Sentences, one per line.
        sentences: PathBuf,
        /// Model folder (model.onnx + tokenizer.json) or a name under $NANODEX_MODELS.
        #[arg(long, default_value = "all-MiniLM-L6-v2")]
        model: String,
        /// Sentences per batch.
        #[arg(long, default_value_t = 32)]
        batch: usize,
        /// Intra-op threads (0 = all cores).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
}

#[derive(clap::Args, Clone)]
struct BrainArgs {
    /// Workspace folder that holds the graph and the brain.
    #[arg(
        long,
        short = 'w',
        env = "NANODEX_WORKSPACE",
        default_value = ".nanodex"
    )]
    workspace: PathBuf,
    /// Brain configuration overriding the embedded defaults (see config/brain.yaml).
    #[arg(long, short = 'c', env = "NANODEX_BRAIN_CONFIG")]
    config: Option<PathBuf>,
    /// Extract configuration whose `graph:` section locates the store (see config/extract.yaml).
    #[arg(long, env = "NANODEX_CONFIG")]
    graph_config: Option<PathBuf>,
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
    // candle's CPU thread pool spins 25,000 rounds after each op before it parks. Those spinning threads take the
    // cores that the matmul threads need: on 2 cores a LoRA step ran at 75 instead of 127 tokens/s. Parked
    // workers cost a wake-up per op instead, which does not show at these op sizes. An explicit setting wins.
    if std::env::var_os("CANDLE_BARRIER_POOL_SPIN_LIMIT").is_none() {
        // SAFETY: no other thread exists yet; candle reads the variable when its pool starts.
        unsafe { std::env::set_var("CANDLE_BARRIER_POOL_SPIN_LIMIT", "0") };
    }
    tree_sitter_allocates_with_jemalloc();
    let filter = tracing_subscriber::EnvFilter::try_from_env("NANODEX_LOG")
        // surrealkv warns when its tree is dropped after the runtime stops; its WAL makes that harmless.
        .unwrap_or_else(|_| "warn,surrealkv::lsm=error".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .finish()
        .with(tracing_subscriber::filter::filter_fn(|m| {
            !graph::is_echoed_store_error(m)
        }))
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
            store.close().await;
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
            store.close().await;
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
            store.close().await;
            print_json(&rows)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Brain {
            args,
            no_embed,
            llm_endpoint,
            llm_model,
            json,
        } => cmd_brain(args, true, !no_embed, (llm_endpoint, llm_model), json).await,
        Command::BrainEmbed { args, json } => {
            cmd_brain(args, false, true, (None, None), json).await
        }
        Command::Search {
            question,
            args,
            ty,
            mode,
            limit,
            json,
        } => cmd_search(question, args, ty, mode, limit, json).await,
        Command::Train(a) => llm::cmd_train(a).await,
        Command::Generate(a) => llm::cmd_generate(a).await,
        Command::BenchTrain(a) => llm::cmd_bench_train(a).await,
        Command::BenchQa(a) => llm::cmd_bench_qa(a).await,
        Command::BenchEmbed {
            sentences,
            model,
            batch,
            threads,
        } => {
            let text = std::fs::read_to_string(&sentences)
                .with_context(|| format!("{}: cannot read sentences", sentences.display()))?;
            let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
            let paths = nanodex_core::embed::ModelPaths::resolve(None, Some(&model));
            let opts = nanodex_core::embed::EmbedOptions {
                batch,
                threads,
                max_tokens: 256,
            };
            let embedder = nanodex_core::embed::Embedder::load(&paths, &opts)?;
            let t = Instant::now();
            let vectors = embedder.embed(&lines)?;
            let secs = t.elapsed().as_secs_f64();
            print_json(&serde_json::json!({
                "sentences": vectors.len(), "seconds": secs, "per_sec": vectors.len() as f64 / secs, "dim": embedder.dim(),
            }))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn progress_bar(hidden: bool) -> (ProgressBar, std::sync::Arc<BarSink>, Cancel) {
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(10));
    if hidden {
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
    (bar, sink, cancel)
}

async fn cmd_brain(
    args: BrainArgs,
    derive: bool,
    embed: bool,
    llm: (Option<String>, Option<String>),
    json: bool,
) -> Result<ExitCode> {
    let started = Instant::now();
    let gcfg = config::load(args.graph_config.as_deref())?;
    let mut bcfg = config::load_brain(args.config.as_deref())?;
    if let Some(endpoint) = llm.0 {
        anyhow::ensure!(
            endpoint.starts_with("http://") || endpoint.starts_with("https://"),
            "--llm-endpoint: expected an http:// or https:// URL, got `{endpoint}`"
        );
        bcfg.llm.endpoint = endpoint;
    }
    if let Some(model) = llm.1 {
        bcfg.llm.model = model;
    }
    let embed = embed && (bcfg.embed.enabled || !derive);
    let (bar, sink, cancel) = progress_bar(json);
    let report = brain::run(
        &gcfg.graph,
        &bcfg,
        &args.workspace,
        brain::BrainOptions { derive, embed },
        sink.as_ref(),
        &cancel,
    )
    .await?;
    bar.finish_and_clear();
    if json {
        print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let secs = started.elapsed().as_secs_f64();
    let total: u64 = report.stats.nodes.values().sum();
    if derive {
        writeln!(out, "brain of {} in {secs:.2}s", args.workspace.display())?;
        writeln!(
            out,
            "  nodes:       {total} ({})",
            join_counts(&report.stats.nodes)
        )?;
        writeln!(out, "  redacted:    {} secrets", report.stats.redactions)?;
        if let Some(r) = &report.refine {
            writeln!(
                out,
                "  refined:     {} accepted, {} rejected (unknown identifiers, secrets, too long), {} failed",
                r.accepted, r.rejected, r.failed
            )?;
        }
        writeln!(
            out,
            "  export:      {} written, {} unchanged, {} removed in {}",
            report.exported,
            report.unchanged,
            report.removed,
            brain::nodes_dir(&args.workspace).display()
        )?;
    } else {
        writeln!(
            out,
            "embedded the brain of {} in {secs:.2}s",
            args.workspace.display()
        )?;
    }
    if embed {
        writeln!(
            out,
            "  embeddings:  {} computed, {} from cache ({})",
            report.embedded, report.embed_cached, report.embed_model
        )?;
    } else {
        writeln!(
            out,
            "  embeddings:  skipped (run `nanodex brain-embed` for vector search)"
        )?;
    }
    writeln!(
        out,
        "  store:       {} inserted, {} deleted",
        report.store_inserted, report.store_deleted
    )?;
    writeln!(out, "  time (ms):   {}", join_counts(&report.timings_ms))?;
    Ok(ExitCode::SUCCESS)
}

async fn cmd_search(
    question: String,
    args: BrainArgs,
    ty: Option<String>,
    mode: String,
    limit: Option<usize>,
    json: bool,
) -> Result<ExitCode> {
    let gcfg = config::load(args.graph_config.as_deref())?;
    let mut bcfg = config::load_brain(args.config.as_deref())?;
    if let Some(n) = limit {
        bcfg.search.limit = n.max(1);
    }
    let ty = ty.as_deref().and_then(brain::BrainType::from_name);
    let mode = search::Mode::from_name(&mode).unwrap_or(search::Mode::Hybrid);
    let store = GraphStore::open(&gcfg.graph, &args.workspace, false).await?;
    let outcome = pipeline::search(&store, &bcfg, &args.workspace, &question, ty, mode).await;
    store.close().await;
    let outcome = outcome?;
    for note in &outcome.notes {
        eprintln!("note: {note}");
    }
    let hits = outcome.hits;
    if json {
        print_json(&hits)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    if hits.is_empty() {
        writeln!(out, "no match for {question:?}")?;
    }
    for (i, h) in hits.iter().enumerate() {
        let at = if h.path.is_empty() {
            String::new()
        } else {
            format!("  {}:{}", h.path, h.line)
        };
        writeln!(
            out,
            "{:>2}. [{}] {}  (score {:.4}){at}",
            i + 1,
            h.ty,
            h.name,
            h.score
        )?;
        let summary: String = h.summary.chars().take(300).collect();
        writeln!(
            out,
            "    {summary}{}",
            if h.summary.chars().count() > 300 {
                "…"
            } else {
                ""
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
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
            let unit = match ev.stage {
                "store" | "brain-store" => "records",
                "embed" => "summaries",
                "train" | "eval" => "steps",
                _ => "files",
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
    let cfg = config::load(common.config.as_deref())?;
    // This process ends with the extraction: what an incremental run is done with is left to the exit.
    nanodex_core::extract::set_exits_after_run(true);
    let (bar, sink, cancel) = progress_bar(json);
    let opts = pipeline::ExtractOptions {
        full,
        no_store,
        require_sources: false,
        keep_graph: false,
    };
    let outcome = pipeline::extract(&cfg, &repo, &common.workspace, opts, sink, &cancel)
        .await
        .map_err(|e| match e {
            nanodex_core::Error::Extract(ExtractError::Cancelled) => {
                anyhow::anyhow!("cancelled; the previous graph is unchanged")
            }
            e => e.into(),
        })?;
    bar.finish_and_clear();
    if json {
        print_json(&serde_json::json!({ "report": outcome.report, "write": outcome.write }))?;
    } else {
        print_report(
            &outcome.report,
            outcome.write.as_ref(),
            no_store,
            &graph::store_location(&cfg.graph, &common.workspace),
        )?;
    }
    Ok(ExitCode::SUCCESS)
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
    store: &str,
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
            w.mode, store, w.inserted, w.updated, w.deleted, w.db
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
