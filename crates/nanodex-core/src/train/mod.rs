//! Fine-tuning: chat JSONL + a base model → a LoRA adapter in PEFT's layout (see [`crate::export`]).
//!
//! Frozen base (f32 for LoRA, 4-bit GGUF blocks dequantized per layer for QLoRA); trainable `A`/`B` on the
//! configured projections, `B` zero so the untrained adapter is the identity. Loss on assistant tokens only
//! (the template's end-of-turn token included, so the model learns to stop), averaged over the trained tokens of
//! the whole effective batch; AdamW, warm-up + cosine, global-norm clipping, gradient accumulation, length-bucketed
//! micro-batches, held-out eval loss, all seeded. Checkpoints (weights + optimizer moments + step) every
//! `save_every` steps and on cancel; data order and dropout masks are functions of (seed, step), so `resume`
//! reproduces the loss curve of an uninterrupted run.
//!
//! Output folder: `adapter_model.safetensors`, `adapter_config.json`, `README.md` (card), `metrics.jsonl`,
//! `loss.png`, `loss.svg`, `checkpoint.json` + `checkpoint-<step>/`.

pub mod data;
pub mod optim;
pub mod plot;

use crate::config::TrainConfig;
use crate::export::{self, AdapterConfig, CardFacts};
use crate::fsutil::write_atomic;
use crate::llm::{BaseDtype, LlmError, Model, Pass, io_err, load_base, resolve_base};
use crate::progress::{Cancel, ProgressEvent, Sink};
use candle_core::quantized::GgmlDType;
use candle_core::{DType, Device, Tensor, Var};
use data::Example;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// What to train.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// Chat JSONL.
    pub dataset: PathBuf,
    /// `--base`: local folder, GGUF file or hub id.
    pub base: String,
    /// Adapter folder.
    pub out: PathBuf,
    /// Hyper-parameters.
    pub config: TrainConfig,
    /// Compute device.
    pub device: Device,
    /// Continue from the folder's checkpoint.
    pub resume: bool,
    /// Also write merged full weights into `<out>/merged`.
    pub merge: bool,
    /// Project name for the model card (default: the folder name).
    pub project: Option<String>,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    /// Adapter folder.
    pub out: PathBuf,
    /// Last step completed.
    pub steps: usize,
    /// Steps planned.
    pub total_steps: usize,
    /// Step the run resumed from (0 when fresh).
    pub resumed_from: usize,
    /// Training / held-out examples.
    pub examples: (usize, usize),
    /// Examples dropped because truncation left no answer token.
    pub skipped: usize,
    /// Loss of the last step.
    pub train_loss: Option<f64>,
    /// Last eval loss.
    pub eval_loss: Option<f64>,
    /// Non-padding tokens processed per second (forward + backward).
    pub tokens_per_s: f64,
    /// Wall time of this run.
    pub seconds: f64,
    /// Bytes of frozen base weights held (QLoRA shrinks this).
    pub base_bytes: usize,
    /// Trainable parameters.
    pub trainable_params: usize,
    /// Whether the run stopped on cancel (a checkpoint was written).
    pub cancelled: bool,
    /// Warnings (vLLM rank limit, charts not drawn, ...).
    pub warnings: Vec<String>,
}

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Metric {
    /// An optimizer step.
    Train {
        /// 1-based step.
        step: usize,
        /// Mean loss over the step's trained tokens.
        loss: f64,
        /// Learning rate used.
        lr: f64,
        /// Gradient norm before clipping.
        grad_norm: f64,
        /// Non-padding tokens in the step.
        tokens: usize,
        /// Throughput of the step.
        tokens_per_s: f64,
    },
    /// An evaluation.
    Eval {
        /// Step it followed.
        step: usize,
        /// Mean loss over held-out trained tokens.
        eval_loss: f64,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct CheckpointMeta {
    step: usize,
    dir: String,
    fingerprint: String,
}

/// Peak resident memory of this process in bytes (`VmHWM`; Linux), for benchmarks and reports.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The GGUF block type (or f32) a `base.dtype` names.
pub fn base_dtype(name: &str) -> Result<BaseDtype, LlmError> {
    Ok(match name {
        "f32" => BaseDtype::F32,
        "q4_0" => BaseDtype::Quant(GgmlDType::Q4_0),
        "q4_1" => BaseDtype::Quant(GgmlDType::Q4_1),
        "q8_0" => BaseDtype::Quant(GgmlDType::Q8_0),
        other => {
            return Err(LlmError::Invalid(format!(
                "base.dtype `{other}`: expected f32, q4_0, q4_1 or q8_0"
            )));
        }
    })
}

/// A batch ready for the model.
struct Batch {
    input: Tensor,
    positions: Tensor,
    targets: Tensor,
    trained: usize,
    tokens: usize,
}

fn make_batch(examples: &[&Example], pad: u32, device: &Device) -> candle_core::Result<Batch> {
    let t = examples
        .iter()
        .map(|e| e.ids.len() - 1)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut input = Vec::with_capacity(examples.len() * t);
    let mut positions = Vec::new();
    let mut targets = Vec::new();
    let mut tokens = 0;
    for (row, ex) in examples.iter().enumerate() {
        let n = ex.ids.len() - 1;
        tokens += n;
        for j in 0..t {
            input.push(if j < n { ex.ids[j] } else { pad });
            if j < n && ex.trained[j + 1] {
                positions.push((row * t + j) as u32);
                targets.push(ex.ids[j + 1]);
            }
        }
    }
    let trained = targets.len();
    Ok(Batch {
        input: Tensor::from_vec(input, (examples.len(), t), device)?,
        positions: Tensor::new(positions.as_slice(), device)?,
        targets: Tensor::new(targets.as_slice(), device)?,
        trained,
        tokens,
    })
}

/// Summed negative log-likelihood of the batch's trained tokens.
fn nll_sum(model: &Model, b: &Batch, pass: &Pass) -> candle_core::Result<Tensor> {
    let (rows, t) = b.input.dims2()?;
    let hidden = model
        .hidden(&b.input, None, pass)?
        .reshape((rows * t, model.cfg.hidden_size))?;
    let picked = hidden.index_select(&b.positions, 0)?;
    let logits = model.project(&picked, pass)?;
    crate::llm::ops::cross_entropy_rows(&logits, &b.targets)?.sum_all()
}

/// Mean loss over `set` (no gradients).
fn eval_loss(
    model: &Model,
    examples: &[Example],
    set: &[usize],
    micro: usize,
    pad: u32,
) -> Result<Option<f64>, LlmError> {
    if set.is_empty() {
        return Ok(None);
    }
    let (mut sum, mut n) = (0.0f64, 0usize);
    let pass = Pass::infer();
    for chunk in set.chunks(micro) {
        let refs: Vec<&Example> = chunk.iter().map(|&i| &examples[i]).collect();
        let b = make_batch(&refs, pad, model.device())?;
        sum += nll_sum(model, &b, &pass)?
            .to_dtype(DType::F64)?
            .to_scalar::<f64>()?;
        n += b.trained;
    }
    Ok(Some(sum / n.max(1) as f64))
}

fn fingerprint(cfg: &TrainConfig, base: &str, dataset: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    let mut c = cfg.clone();
    // Extending a run (more steps, other eval/save cadence) keeps its checkpoint valid.
    c.train.max_steps = 0;
    c.train.epochs = 0;
    c.train.eval_interval = 0;
    c.train.save_every = 0;
    h.update(serde_json::to_string(&c).unwrap_or_default().as_bytes());
    h.update(base.as_bytes());
    h.update(dataset);
    h.finalize().to_hex()[..16].to_string()
}

struct Trainer<'a> {
    model: Model,
    names: Vec<String>,
    vars: Vec<Var>,
    opt: optim::AdamW,
    examples: Vec<Example>,
    train_set: Vec<usize>,
    eval_set: Vec<usize>,
    lengths: Vec<usize>,
    cfg: &'a TrainConfig,
    pad: u32,
    epoch_cache: Option<(usize, Vec<Vec<usize>>)>,
}

impl<'a> Trainer<'a> {
    /// Attaches fresh LoRA weights per `cfg` and sets up the optimizer.
    fn new(
        mut model: Model,
        cfg: &'a TrainConfig,
        examples: Vec<Example>,
        (train_set, eval_set): (Vec<usize>, Vec<usize>),
        pad: u32,
    ) -> Result<Self, LlmError> {
        let t = &cfg.train;
        let named = model.attach_lora(
            cfg.lora.r,
            cfg.lora.alpha,
            cfg.lora.dropout,
            &cfg.lora.target_modules,
            t.seed,
        )?;
        let (names, vars): (Vec<String>, Vec<Var>) = named.into_iter().unzip();
        let opt = optim::AdamW::new(&vars, (t.betas[0], t.betas[1]), t.eps, t.weight_decay)?;
        let lengths = examples.iter().map(|e| e.ids.len()).collect();
        Ok(Self {
            model,
            names,
            vars,
            opt,
            examples,
            train_set,
            eval_set,
            lengths,
            cfg,
            pad,
            epoch_cache: None,
        })
    }

    fn trainable_params(&self) -> usize {
        self.vars.iter().map(|v| v.elem_count()).sum()
    }

    fn micro_batches(&mut self, step: usize) -> Vec<Vec<usize>> {
        let t = &self.cfg.train;
        let accum = t.batch_size / t.micro_batch_size;
        let per_epoch = self.train_set.len().div_ceil(t.micro_batch_size).max(1);
        (0..accum)
            .map(|j| {
                let pos = step * accum + j;
                let (epoch, idx) = (pos / per_epoch, pos % per_epoch);
                if self.epoch_cache.as_ref().map(|c| c.0) != Some(epoch) {
                    let b = data::epoch_batches(
                        &self.lengths,
                        &self.train_set,
                        t.micro_batch_size,
                        t.seed,
                        epoch,
                    );
                    self.epoch_cache = Some((epoch, b));
                }
                self.epoch_cache
                    .as_ref()
                    .map(|c| c.1[idx].clone())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// One optimizer step; returns (loss, grad norm, tokens). On the CPU it runs inside candle's own thread pool
    /// (`Device::with_context`), so this thread is one of the matmul workers instead of a waiter that the pool
    /// wakes up after every op.
    fn step(&mut self, step: usize, lr: f64) -> Result<(f64, f64, usize), LlmError> {
        let device = self.model.device().clone();
        device.with_context(|| self.step_in_pool(step, lr))
    }

    fn step_in_pool(&mut self, step: usize, lr: f64) -> Result<(f64, f64, usize), LlmError> {
        let micro = self.micro_batches(step);
        let device = self.model.device().clone();
        let batches: Vec<Batch> = micro
            .iter()
            .map(|ids| {
                let refs: Vec<&Example> = ids.iter().map(|&i| &self.examples[i]).collect();
                make_batch(&refs, self.pad, &device)
            })
            .collect::<candle_core::Result<_>>()?;
        let total: usize = batches.iter().map(|b| b.trained).sum::<usize>().max(1);
        let mut grads: Vec<Option<Tensor>> = vec![None; self.vars.len()];
        let (mut loss_sum, mut tokens) = (0.0f64, 0usize);
        for (j, b) in batches.iter().enumerate() {
            let seed = self.cfg.train.seed ^ ((step as u64) << 20) ^ j as u64;
            let pass = Pass::train(seed, &device)?;
            let nll = nll_sum(&self.model, b, &pass)?;
            loss_sum += nll.to_dtype(DType::F64)?.to_scalar::<f64>()?;
            tokens += b.tokens;
            let store = (nll / total as f64)?.backward()?;
            for (k, var) in self.vars.iter().enumerate() {
                if let Some(g) = store.get(var.as_tensor()) {
                    grads[k] = Some(match grads[k].take() {
                        Some(acc) => (acc + g)?,
                        None => g.clone(),
                    });
                }
            }
        }
        let mut grads: Vec<Tensor> = grads
            .into_iter()
            .zip(&self.vars)
            .map(|(g, v)| g.map(Ok).unwrap_or_else(|| v.as_tensor().zeros_like()))
            .collect::<candle_core::Result<_>>()?;
        let norm = optim::clip_grad_norm(&mut grads, self.cfg.train.grad_clip)?;
        self.opt.step(&self.vars, &grads, lr)?;
        Ok((loss_sum / total as f64, norm, tokens))
    }

    fn save_checkpoint(&self, out: &Path, step: usize, fp: &str) -> Result<(), LlmError> {
        let name = format!("checkpoint-{step}");
        let dir = out.join(&name);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut map = HashMap::new();
        for (i, n) in self.names.iter().enumerate() {
            map.insert(format!("param/{n}"), self.vars[i].as_tensor().detach());
            map.insert(format!("m/{n}"), self.opt.m[i].clone());
            map.insert(format!("v/{n}"), self.opt.v[i].clone());
        }
        export::save_safetensors(&dir.join("state.safetensors"), &map)?;
        let meta = CheckpointMeta {
            step,
            dir: name.clone(),
            fingerprint: fp.to_string(),
        };
        let path = out.join("checkpoint.json");
        write_atomic(&path, &serde_json::to_vec_pretty(&meta).unwrap_or_default())
            .map_err(io_err(&path))?;
        // Older checkpoints go only after the pointer names the new one.
        if let Ok(entries) = std::fs::read_dir(out) {
            for e in entries.flatten() {
                let n = e.file_name().to_string_lossy().to_string();
                if n.starts_with("checkpoint-") && n != name {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        Ok(())
    }

    fn load_checkpoint(&mut self, out: &Path, fp: &str) -> Result<usize, LlmError> {
        let path = out.join("checkpoint.json");
        let text = std::fs::read_to_string(&path).map_err(|_| {
            LlmError::NotFound(format!(
                "{}: no checkpoint to resume from; run without --resume",
                path.display()
            ))
        })?;
        let meta: CheckpointMeta = serde_json::from_str(&text).map_err(|e| LlmError::Model {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if meta.fingerprint != fp {
            return Err(LlmError::Invalid(format!(
                "{}: the checkpoint was made with another dataset, base model or configuration; start a new run with another --out, or without --resume after deleting this folder",
                out.display()
            )));
        }
        let state = out.join(&meta.dir).join("state.safetensors");
        let mut t = candle_core::safetensors::load(&state, self.model.device())?;
        for (i, n) in self.names.iter().enumerate() {
            let mut take = |k: String| {
                t.remove(&k).ok_or_else(|| LlmError::Model {
                    path: state.clone(),
                    message: format!("`{k}` missing"),
                })
            };
            self.vars[i].set(&take(format!("param/{n}"))?)?;
            self.opt.m[i] = take(format!("m/{n}"))?;
            self.opt.v[i] = take(format!("v/{n}"))?;
        }
        self.opt.t = meta.step;
        Ok(meta.step)
    }
}

/// Trains an adapter. Progress goes to `sink` (stage `train`, done/total steps, message with loss and tokens/s);
/// `cancel` stops after the current step with a checkpoint.
pub fn train(
    req: &TrainRequest,
    sink: &dyn Sink,
    cancel: &Cancel,
) -> Result<TrainReport, LlmError> {
    let started = Instant::now();
    let cfg = &req.config;
    let t = &cfg.train;
    let raw = std::fs::read(&req.dataset).map_err(io_err(&req.dataset))?;
    let fp = fingerprint(cfg, &req.base, &raw);
    let convs = data::parse_dataset(&req.dataset, raw)?;
    let has_checkpoint = req.out.join("checkpoint.json").is_file();
    if has_checkpoint && !req.resume {
        return Err(LlmError::Invalid(format!(
            "{}: holds an earlier run's checkpoint; pass --resume to continue it, or choose another --out",
            req.out.display()
        )));
    }
    let source = resolve_base(&req.base)?;
    sink.event(ProgressEvent {
        stage: "load",
        done: 0,
        total: None,
        message: source.path().display().to_string(),
    });
    let base = load_base(&source, &req.device, base_dtype(&cfg.base.dtype)?)?;
    let tok = base.tokenizer;
    let model = base.model;
    let mut examples = Vec::with_capacity(convs.len());
    let mut skipped = 0;
    for c in &convs {
        match data::tokenize(c, &tok, t.max_seq_len)? {
            Some(e) => examples.push(e),
            None => skipped += 1,
        }
    }
    if examples.is_empty() {
        return Err(LlmError::Invalid(format!(
            "{}: no example keeps an answer token within max_seq_len {}",
            req.dataset.display(),
            t.max_seq_len
        )));
    }
    let split = data::split(examples.len(), t.eval_split, t.seed);
    let pad = tok.pad_id();
    let base_bytes = model.frozen_bytes();
    let mut tr = Trainer::new(model, cfg, examples, split, pad)?;
    let trainable_params = tr.trainable_params();
    let total_steps = if t.epochs > 0 {
        t.max_steps.min(
            (t.epochs * tr.train_set.len())
                .div_ceil(t.batch_size)
                .max(1),
        )
    } else {
        t.max_steps
    };
    std::fs::create_dir_all(&req.out).map_err(io_err(&req.out))?;
    let metrics_path = req.out.join("metrics.jsonl");
    let mut history: Vec<Metric> = Vec::new();
    let start = if req.resume && has_checkpoint {
        let s = tr.load_checkpoint(&req.out, &fp)?;
        if let Ok(text) = std::fs::read_to_string(&metrics_path) {
            history = text
                .lines()
                .filter_map(|l| serde_json::from_str::<Metric>(l).ok())
                .filter(|m| match m {
                    Metric::Train { step, .. } | Metric::Eval { step, .. } => *step <= s,
                })
                .collect();
        }
        s
    } else {
        0
    };
    let mut body = String::new();
    for m in &history {
        body.push_str(&serde_json::to_string(m).unwrap_or_default());
        body.push('\n');
    }
    write_atomic(&metrics_path, body.as_bytes()).map_err(io_err(&metrics_path))?;
    let mut metrics_file = std::fs::OpenOptions::new()
        .append(true)
        .open(&metrics_path)
        .map_err(io_err(&metrics_path))?;
    let mut log = |m: Metric, history: &mut Vec<Metric>| -> Result<(), LlmError> {
        let line = serde_json::to_string(&m).unwrap_or_default();
        writeln!(metrics_file, "{line}").map_err(io_err(&metrics_path))?;
        history.push(m);
        Ok(())
    };
    let (mut run_tokens, mut run_secs) = (0usize, 0.0f64);
    let mut last_loss = None;
    let mut cancelled = false;
    let mut step = start;
    while step < total_steps {
        let lr = optim::lr_at(step, t.lr, t.warmup_steps, total_steps);
        let s0 = Instant::now();
        let (loss, grad_norm, tokens) = tr.step(step, lr)?;
        let secs = s0.elapsed().as_secs_f64();
        step += 1;
        run_tokens += tokens;
        run_secs += secs;
        last_loss = Some(loss);
        let tps = tokens as f64 / secs.max(1e-9);
        log(
            Metric::Train {
                step,
                loss,
                lr,
                grad_norm,
                tokens,
                tokens_per_s: tps,
            },
            &mut history,
        )?;
        sink.event(ProgressEvent {
            stage: "train",
            done: step as u64,
            total: Some(total_steps as u64),
            message: format!("loss {loss:.4} · {tps:.0} tok/s"),
        });
        if (step % t.eval_interval == 0 || step == total_steps)
            && let Some(el) = eval_loss(
                &tr.model,
                &tr.examples,
                &tr.eval_set,
                t.micro_batch_size,
                pad,
            )?
        {
            log(
                Metric::Eval {
                    step,
                    eval_loss: el,
                },
                &mut history,
            )?;
            sink.event(ProgressEvent {
                stage: "eval",
                done: step as u64,
                total: Some(total_steps as u64),
                message: format!("eval loss {el:.4}"),
            });
        }
        if cancel.is_cancelled() {
            tr.save_checkpoint(&req.out, step, &fp)?;
            cancelled = true;
            break;
        }
        if step % t.save_every == 0 || step == total_steps {
            tr.save_checkpoint(&req.out, step, &fp)?;
        }
    }
    let train_pts: Vec<(usize, f64)> = history
        .iter()
        .filter_map(|m| match m {
            Metric::Train { step, loss, .. } => Some((*step, *loss)),
            _ => None,
        })
        .collect();
    let eval_pts: Vec<(usize, f64)> = history
        .iter()
        .filter_map(|m| match m {
            Metric::Eval { step, eval_loss } => Some((*step, *eval_loss)),
            _ => None,
        })
        .collect();
    let eval_last = eval_pts.last().map(|p| p.1);
    let adapter_cfg = AdapterConfig::new(
        cfg.lora.r,
        cfg.lora.alpha,
        cfg.lora.dropout,
        &cfg.lora.target_modules,
        &req.base,
    );
    let mut warnings = adapter_cfg.warnings();
    export::save_adapter(&req.out, &tr.model, &adapter_cfg)?;
    let project = req.project.clone().unwrap_or_else(|| {
        req.out
            .file_name()
            .map(|n| {
                n.to_string_lossy()
                    .trim_end_matches("-nanodex-lora")
                    .to_string()
            })
            .unwrap_or_else(|| "project".into())
    });
    let facts = CardFacts {
        project: project.clone(),
        base: req.base.clone(),
        dataset: req.dataset.display().to_string(),
        examples: (tr.train_set.len(), tr.eval_set.len()),
        steps: step,
        eval_loss: eval_last,
        train_loss: last_loss.or(train_pts.last().map(|p| p.1)),
        method: match cfg.base.dtype.as_str() {
            "f32" => "LoRA".into(),
            q => format!("QLoRA (base held as {q})"),
        },
    };
    let card = req.out.join("README.md");
    write_atomic(&card, export::model_card(&adapter_cfg, &facts).as_bytes())
        .map_err(io_err(&card))?;
    if let Err(e) = plot::write_loss_charts(
        &req.out,
        &train_pts,
        &eval_pts,
        &format!("{project}: LoRA loss"),
    ) {
        warnings.push(format!("loss chart not drawn: {e}"));
    }
    if req.merge && !cancelled {
        let dir = req.out.join("merged");
        export::save_merged(&dir, &tr.model)?;
        tok.save(&dir)?;
    }
    Ok(TrainReport {
        out: req.out.clone(),
        steps: step,
        total_steps,
        resumed_from: start,
        examples: (tr.train_set.len(), tr.eval_set.len()),
        skipped,
        train_loss: facts.train_loss,
        eval_loss: eval_last,
        tokens_per_s: run_tokens as f64 / run_secs.max(1e-9),
        seconds: started.elapsed().as_secs_f64(),
        base_bytes,
        trainable_params,
        cancelled,
        warnings,
    })
}

/// A throughput measurement on synthetic data (for `bench/lora_peer.sh`): the same shapes the PyTorch + PEFT
/// peer uses (random token ids in [100, 40000), every position trained).
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Tokens per optimizer step.
    pub tokens_per_step: usize,
    /// Timed steps.
    pub steps: usize,
    /// Training tokens per second over the timed steps.
    pub tokens_per_s: f64,
    /// Loss of the last step.
    pub final_loss: f64,
    /// Trainable parameters.
    pub trainable_params: usize,
    /// Frozen base bytes.
    pub base_bytes: usize,
    /// Peak RSS of the process.
    pub peak_rss_bytes: Option<u64>,
}

/// Runs `warmup + steps` optimizer steps of batch `batch` × `seq_len` on `model` (LoRA attached per `cfg`).
pub fn throughput(
    model: Model,
    cfg: &TrainConfig,
    seq_len: usize,
    batch: usize,
    steps: usize,
    warmup: usize,
) -> Result<Throughput, LlmError> {
    use rand::{Rng, SeedableRng};
    let t = &cfg.train;
    let mut rng = rand::rngs::StdRng::seed_from_u64(t.seed);
    let hi = (model.cfg.vocab_size as u32).min(40_000);
    let examples: Vec<Example> = (0..batch)
        .map(|_| Example {
            ids: (0..=seq_len)
                .map(|_| rng.random_range(100.min(hi - 1)..hi))
                .collect(),
            trained: vec![true; seq_len + 1],
        })
        .collect();
    let base_bytes = model.frozen_bytes();
    let mut bench_cfg = cfg.clone();
    bench_cfg.train.batch_size = batch;
    bench_cfg.train.micro_batch_size = batch;
    let mut tr = Trainer::new(
        model,
        &bench_cfg,
        examples,
        ((0..batch).collect(), Vec::new()),
        0,
    )?;
    let trainable_params = tr.trainable_params();
    let mut timed = 0.0;
    let mut loss = 0.0;
    for step in 0..warmup + steps {
        let s0 = Instant::now();
        loss = tr.step(step, t.lr)?.0;
        if step >= warmup {
            timed += s0.elapsed().as_secs_f64();
        }
    }
    let tokens_per_step = batch * seq_len;
    Ok(Throughput {
        tokens_per_step,
        steps,
        tokens_per_s: (tokens_per_step * steps) as f64 / timed.max(1e-9),
        final_loss: loss,
        trainable_params,
        base_bytes,
        peak_rss_bytes: peak_rss_bytes(),
    })
}
