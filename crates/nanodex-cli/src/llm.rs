//! `nanodex train`, `nanodex generate` and the hidden `bench-train`: flags → `nanodex_core::{train, infer, llm}`.

use crate::{print_json, progress_bar};
use anyhow::{Context, Result};
use nanodex_core::infer::{GenParams, Generator};
use nanodex_core::llm::{self, Message};
use nanodex_core::{config, export, train};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Chat JSONL: `{id, prompt, response, refs}` lines (nanodex's dataset) or `{"messages": [...]}` lines.
    #[arg(long)]
    dataset: PathBuf,
    /// Base model: a Hugging Face folder, a .gguf file, or a hub id found in the local Hugging Face cache.
    #[arg(long, env = "NANODEX_BASE")]
    base: String,
    /// Adapter folder to write, e.g. models/<project>-nanodex-lora.
    #[arg(long)]
    out: PathBuf,
    /// Training configuration over the embedded defaults (config/train_lora.yaml or config/train_qlora.yaml).
    #[arg(long, short = 'c')]
    config: Option<PathBuf>,
    /// Start from the QLoRA defaults (4-bit base) instead of the LoRA ones.
    #[arg(long)]
    qlora: bool,
    /// auto (CUDA when built with it and present), cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Continue the run whose checkpoint is in --out.
    #[arg(long)]
    resume: bool,
    /// Also write merged full weights into <out>/merged.
    #[arg(long)]
    merge: bool,
    /// Override train.max_steps.
    #[arg(long)]
    max_steps: Option<usize>,
    /// Project name for the model card (default: from --out).
    #[arg(long)]
    project: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Base model: a Hugging Face folder, a .gguf file, or a hub id in the local cache.
    #[arg(long, env = "NANODEX_BASE")]
    base: String,
    /// PEFT adapter folder (adapter_config.json + adapter_model.safetensors), from nanodex or PEFT.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// The question (sent as the user turn of the model's chat template).
    #[arg(long)]
    prompt: String,
    /// System message.
    #[arg(long)]
    system: Option<String>,
    /// Continue the prompt as raw text, without the chat template.
    #[arg(long)]
    raw: bool,
    /// Most new tokens.
    #[arg(long, default_value_t = 256)]
    max_tokens: usize,
    /// Sampling temperature (0 = greedy).
    #[arg(long, default_value_t = 0.0)]
    temperature: f64,
    /// Nucleus sampling mass.
    #[arg(long, default_value_t = 1.0)]
    top_p: f64,
    /// Stop sequence (repeatable).
    #[arg(long)]
    stop: Vec<String>,
    /// Sampling seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Print {text, finish, prompt_tokens, tokens, tokens_per_s} as JSON instead of streaming.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct BenchTrainArgs {
    /// Base model (as for train).
    #[arg(long, env = "NANODEX_BASE")]
    base: String,
    #[arg(long, default_value_t = 128)]
    seq_len: usize,
    #[arg(long, default_value_t = 4)]
    batch: usize,
    #[arg(long, default_value_t = 20)]
    steps: usize,
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// f32 (LoRA) or q4_0 / q4_1 / q8_0 (QLoRA).
    #[arg(long, default_value = "f32")]
    dtype: String,
    #[arg(long, default_value = "cpu")]
    device: String,
    /// LoRA dropout (default: the config's 0.05, as the peer).
    #[arg(long)]
    dropout: Option<f64>,
}

/// Training allocates and frees the same large activation buffers every step. jemalloc gives freed pages back to
/// the OS after a decay time, and at once for blocks over 8 MiB (its "oversize" arena), so each step faulted them
/// in and zeroed them again: on 2 cores a LoRA step ran at 89 instead of 127 tokens/s. For a training run, freed
/// pages stay with the process. Only for an f32 base (LoRA): QLoRA frees and allocates its per-layer dequantized
/// weights all the time, and keeping those pages cost it 0.5 GB of peak RSS even with the single arena of
/// `main::malloc_conf` (2122 against 1574 MiB, for 6% more speed); QLoRA is chosen to save memory, so it keeps the
/// default. Best effort: an arena that refuses the setting keeps its default.
fn keep_freed_pages(dtype: &str) {
    if dtype != "f32" {
        return;
    }
    use std::ffi::{CString, c_void};
    let set = |name: &str| {
        let name = CString::new(name).expect("no NUL in a mallctl name");
        let mut never: isize = -1;
        // SAFETY: a documented jemalloc control that takes an ssize_t; no old value is read.
        let rc = unsafe {
            tikv_jemalloc_sys::mallctl(
                name.as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                (&mut never as *mut isize).cast::<c_void>(),
                std::mem::size_of::<isize>(),
            )
        };
        rc == 0
    };
    // Arenas created later (the oversize arena keeps a negative default instead of purging at once) ...
    for name in ["arenas.dirty_decay_ms", "arenas.muzzy_decay_ms"] {
        if !set(name) {
            tracing::debug!("jemalloc refused {name}; freed pages keep their default decay");
        }
    }
    // ... and the ones that exist.
    let mut n: u32 = 0;
    let mut len = std::mem::size_of::<u32>();
    let name = CString::new("arenas.narenas").expect("no NUL");
    // SAFETY: reads an unsigned into a buffer of its size.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            name.as_ptr(),
            (&mut n as *mut u32).cast::<c_void>(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc == 0 {
        // Indices of arenas not created yet are refused; those get the default set above.
        let set_now = (0..n)
            .filter(|i| {
                set(&format!("arena.{i}.dirty_decay_ms"))
                    & set(&format!("arena.{i}.muzzy_decay_ms"))
            })
            .count();
        tracing::debug!("jemalloc: page decay off in {set_now} of {n} arenas");
    } else {
        tracing::debug!("jemalloc refused arenas.narenas ({rc})");
    }
}

pub async fn cmd_train(a: TrainArgs) -> Result<ExitCode> {
    let mut cfg = config::load_train(a.config.as_deref(), a.qlora)?;
    keep_freed_pages(&cfg.base.dtype);
    if let Some(n) = a.max_steps {
        anyhow::ensure!(n > 0, "--max-steps: must be > 0");
        cfg.train.max_steps = n;
    }
    let device = llm::device(&a.device)?;
    let req = train::TrainRequest {
        dataset: a.dataset,
        base: a.base,
        out: a.out,
        config: cfg,
        device,
        resume: a.resume,
        merge: a.merge,
        project: a.project,
    };
    let (bar, sink, cancel) = progress_bar(a.json);
    let report = tokio::task::spawn_blocking(move || train::train(&req, sink.as_ref(), &cancel))
        .await
        .context("training thread")??;
    bar.finish_and_clear();
    if a.json {
        print_json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut out = std::io::stdout().lock();
    let verb = if report.cancelled {
        "stopped"
    } else {
        "trained"
    };
    writeln!(
        out,
        "{verb} {} at step {}/{} in {:.1}s",
        report.out.display(),
        report.steps,
        report.total_steps,
        report.seconds
    )?;
    if report.resumed_from > 0 {
        writeln!(out, "  resumed:     from step {}", report.resumed_from)?;
    }
    writeln!(
        out,
        "  examples:    {} train, {} held out, {} skipped (no answer token within max_seq_len)",
        report.examples.0, report.examples.1, report.skipped
    )?;
    let f = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "n/a".into());
    writeln!(
        out,
        "  loss:        train {}, eval {}",
        f(report.train_loss),
        f(report.eval_loss)
    )?;
    writeln!(out, "  speed:       {:.0} tokens/s", report.tokens_per_s)?;
    writeln!(
        out,
        "  parameters:  {} trainable; base weights {:.0} MiB",
        report.trainable_params,
        report.base_bytes as f64 / 1048576.0
    )?;
    for w in &report.warnings {
        writeln!(out, "  warning:     {w}")?;
    }
    if report.cancelled {
        writeln!(
            out,
            "  checkpoint saved; continue with the same command and --resume"
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn cmd_generate(a: GenerateArgs) -> Result<ExitCode> {
    tokio::task::spawn_blocking(move || generate(a))
        .await
        .context("generation thread")?
}

fn generate(a: GenerateArgs) -> Result<ExitCode> {
    let device = llm::device(&a.device)?;
    let source = llm::resolve_base(&a.base)?;
    let mut base = llm::load_base(&source, &device, llm::BaseDtype::F32)?;
    if let Some(dir) = &a.adapter {
        let (cfg, _) = export::load_adapter(dir, &mut base.model)?;
        for w in cfg.warnings() {
            eprintln!("warning: {w}");
        }
    }
    let params = GenParams {
        max_tokens: a.max_tokens,
        temperature: a.temperature,
        top_p: a.top_p,
        stop: a.stop,
        seed: a.seed,
    };
    let g = Generator {
        model: &base.model,
        tokenizer: &base.tokenizer,
    };
    let stream = !a.json;
    let mut print = |piece: &str| {
        if stream {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(piece.as_bytes());
            let _ = o.flush();
        }
        true
    };
    let answer = if a.raw {
        let ids = base.tokenizer.encode(&a.prompt)?;
        g.complete(&ids, &params, &mut print)?
    } else {
        let mut msgs = Vec::new();
        if let Some(s) = a.system {
            msgs.push(Message::new("system", s));
        }
        msgs.push(Message::new("user", a.prompt));
        g.chat(&msgs, &params, &mut print)?
    };
    if a.json {
        print_json(&serde_json::json!({
            "text": answer.text, "finish": answer.finish, "prompt_tokens": answer.prompt_tokens,
            "tokens": answer.ids.len(), "tokens_per_s": answer.tokens_per_s,
        }))?;
    } else {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn cmd_bench_train(a: BenchTrainArgs) -> Result<ExitCode> {
    keep_freed_pages(&a.dtype);
    tokio::task::spawn_blocking(move || {
        let device = llm::device(&a.device)?;
        let source = llm::resolve_base(&a.base)?;
        let t0 = std::time::Instant::now();
        let base = llm::load_base(&source, &device, train::base_dtype(&a.dtype)?)?;
        let load_s = t0.elapsed().as_secs_f64();
        let mut cfg = config::load_train(None, false)?;
        cfg.base.dtype = a.dtype.clone();
        if let Some(p) = a.dropout {
            cfg.lora.dropout = p;
        }
        let r = train::throughput(base.model, &cfg, a.seq_len, a.batch, a.steps, a.warmup)?;
        print_json(&serde_json::json!({
            "what": "lora_train", "dtype": a.dtype, "seq_len": a.seq_len, "batch": a.batch, "steps": r.steps,
            "tokens_per_s": r.tokens_per_s, "peak_rss_mb": r.peak_rss_bytes.map(|b| b / 1048576),
            "trainable_params": r.trainable_params, "base_mb": r.base_bytes / 1048576, "final_loss": r.final_loss, "load_s": load_s,
        }))?;
        Ok(ExitCode::SUCCESS)
    })
    .await
    .context("bench thread")?
}

#[derive(clap::Args)]
pub struct BenchQaArgs {
    /// Base model.
    #[arg(long, env = "NANODEX_BASE")]
    base: String,
    /// Adapter folder.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// Questions with expected answers (chat JSONL); repeatable.
    #[arg(long, required = true)]
    dataset: Vec<PathBuf>,
    #[arg(long, default_value_t = 64)]
    max_tokens: usize,
    #[arg(long, default_value = "cpu")]
    device: String,
}

pub async fn cmd_bench_qa(a: BenchQaArgs) -> Result<ExitCode> {
    tokio::task::spawn_blocking(move || {
        let device = llm::device(&a.device)?;
        let mut base = llm::load_base(&llm::resolve_base(&a.base)?, &device, llm::BaseDtype::F32)?;
        if let Some(dir) = &a.adapter {
            export::load_adapter(dir, &mut base.model)?;
        }
        let g = Generator {
            model: &base.model,
            tokenizer: &base.tokenizer,
        };
        let mut sets = Vec::new();
        for path in &a.dataset {
            let convs = train::data::read_dataset(path)?;
            let scored = nanodex_core::infer::score_dataset(&g, &convs, a.max_tokens)?;
            let right = scored.iter().filter(|s| s.correct).count();
            sets.push(serde_json::json!({
                "dataset": path, "correct": right, "total": scored.len(),
                "accuracy": right as f64 / scored.len().max(1) as f64,
                "wrong": scored.iter().filter(|s| !s.correct).take(10).collect::<Vec<_>>(),
            }));
        }
        print_json(&sets)?;
        Ok(ExitCode::SUCCESS)
    })
    .await
    .context("bench thread")?
}
