//! Adapters in PEFT's layout, the format vLLM (`--enable-lora`), transformers and PEFT load:
//! `adapter_model.safetensors` with tensors `base_model.model.model.layers.<i>.<self_attn|mlp>.<proj>.lora_A.weight`
//! `[r, in]` and `lora_B.weight` `[out, r]`, and `adapter_config.json` (`peft_type: LORA`, `task_type: CAUSAL_LM`,
//! `r`, `lora_alpha`, `target_modules`, `base_model_name_or_path`, ...), plus a README model card.
//! Also reads such adapters (written by nanodex or by PEFT) into a [`Model`], and merges them into full weights.
//!
//! Invariants: no `lm_head` / `embed_tokens` tensors (vLLM rejects them); files are written to a temporary name
//! and renamed, so a killed export never leaves a half-written adapter.

use crate::fsutil::write_atomic;
use crate::llm::model::Lora;
use crate::llm::{LlmError, Model, io_err};
use candle_core::{DType, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// vLLM's default `--max-lora-rank`.
pub const VLLM_MAX_LORA_RANK: usize = 16;

/// `adapter_config.json`: the keys PEFT writes that loaders read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterConfig {
    /// Always `LORA`.
    pub peft_type: String,
    /// Always `CAUSAL_LM`.
    pub task_type: String,
    /// Rank.
    pub r: usize,
    /// Scale numerator (`alpha / r` multiplies the update).
    pub lora_alpha: f64,
    /// Dropout used in training.
    #[serde(default)]
    pub lora_dropout: f64,
    /// Adapted module names (`q_proj`, ...).
    pub target_modules: Vec<String>,
    /// Base model path or hub id.
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
    /// `none`: no bias training.
    #[serde(default = "default_bias")]
    pub bias: String,
    /// Weights stored `[out, in]` (PEFT's default for Linear).
    #[serde(default)]
    pub fan_in_fan_out: bool,
    /// Saved for inference.
    #[serde(default = "yes")]
    pub inference_mode: bool,
    /// rsLoRA scaling `alpha / sqrt(r)`.
    #[serde(default)]
    pub use_rslora: bool,
    /// DoRA (not supported: refused on load).
    #[serde(default)]
    pub use_dora: bool,
    /// Extra fully-trained modules (not supported by vLLM: refused on load).
    #[serde(default)]
    pub modules_to_save: Option<Vec<String>>,
    /// Per-module ranks (not supported: refused on load when non-empty).
    #[serde(default)]
    pub rank_pattern: HashMap<String, serde_json::Value>,
    /// Per-module alphas (not supported: refused on load when non-empty).
    #[serde(default)]
    pub alpha_pattern: HashMap<String, serde_json::Value>,
    /// PEFT version that wrote it (none for nanodex: it is not PEFT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peft_version: Option<String>,
}

fn default_bias() -> String {
    "none".into()
}
fn yes() -> bool {
    true
}

impl AdapterConfig {
    /// A LoRA config in PEFT's terms.
    pub fn new(r: usize, alpha: f64, dropout: f64, targets: &[String], base: &str) -> Self {
        let mut target_modules = targets.to_vec();
        target_modules.sort();
        Self {
            peft_type: "LORA".into(),
            task_type: "CAUSAL_LM".into(),
            r,
            lora_alpha: alpha,
            lora_dropout: dropout,
            target_modules,
            base_model_name_or_path: Some(base.to_string()),
            bias: default_bias(),
            fan_in_fan_out: false,
            inference_mode: true,
            use_rslora: false,
            use_dora: false,
            modules_to_save: None,
            rank_pattern: HashMap::new(),
            alpha_pattern: HashMap::new(),
            peft_version: None,
        }
    }

    /// The factor applied to `B·A`.
    pub fn scale(&self) -> f64 {
        if self.use_rslora {
            self.lora_alpha / (self.r as f64).sqrt()
        } else {
            self.lora_alpha / self.r as f64
        }
    }

    /// Warnings for loaders: vLLM refuses ranks above its `--max-lora-rank` (16 by default).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.r > VLLM_MAX_LORA_RANK {
            w.push(format!(
                "rank r={} is above vLLM's default --max-lora-rank {VLLM_MAX_LORA_RANK}: start vLLM with --max-lora-rank {} (or train with r <= 16)",
                self.r,
                self.r.next_power_of_two().max(32)
            ));
        }
        w
    }
}

/// The LoRA tensors of `model` by PEFT name (`A` `[r, in]`, `B` `[out, r]`), f32, contiguous.
pub fn adapter_tensors(model: &Model) -> Result<Vec<(String, Tensor)>, LlmError> {
    let mut out = Vec::new();
    for (i, layer) in model.layers.iter().enumerate() {
        for (path, lin) in layer.linears() {
            if let Some(l) = &lin.lora {
                let name = format!("base_model.model.model.layers.{i}.{path}");
                out.push((
                    format!("{name}.lora_A.weight"),
                    l.a.detach().to_dtype(DType::F32)?.contiguous()?,
                ));
                out.push((
                    format!("{name}.lora_B.weight"),
                    l.b.detach().to_dtype(DType::F32)?.contiguous()?,
                ));
            }
        }
    }
    Ok(out)
}

/// Writes `adapter_model.safetensors` and `adapter_config.json` into `dir` (created), atomically per file.
pub fn save_adapter(dir: &Path, model: &Model, cfg: &AdapterConfig) -> Result<(), LlmError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let tensors = adapter_tensors(model)?;
    if tensors.is_empty() {
        return Err(LlmError::Invalid(
            "the model has no LoRA weights to save".into(),
        ));
    }
    let map: HashMap<String, Tensor> = tensors.into_iter().collect();
    save_safetensors(&dir.join("adapter_model.safetensors"), &map)?;
    let json = serde_json::to_vec_pretty(cfg).map_err(|e| LlmError::Invalid(e.to_string()))?;
    let path = dir.join("adapter_config.json");
    write_atomic(&path, &json).map_err(io_err(&path))
}

/// `candle_core::safetensors::save` through a temporary file and a rename.
pub fn save_safetensors(path: &Path, tensors: &HashMap<String, Tensor>) -> Result<(), LlmError> {
    let tmp = path.with_extension("safetensors.tmp");
    candle_core::safetensors::save(tensors, &tmp)?;
    std::fs::rename(&tmp, path).map_err(io_err(path))
}

/// Reads an adapter folder's config.
pub fn read_adapter_config(dir: &Path) -> Result<AdapterConfig, LlmError> {
    let path = dir.join("adapter_config.json");
    let text = std::fs::read_to_string(&path).map_err(|cause| {
        if cause.kind() == std::io::ErrorKind::NotFound {
            LlmError::NotFound(format!(
                "{}: missing; an adapter folder holds adapter_config.json and adapter_model.safetensors",
                path.display()
            ))
        } else {
            LlmError::Io { path: path.clone(), cause }
        }
    })?;
    let cfg: AdapterConfig = serde_json::from_str(&text).map_err(|e| LlmError::Model {
        path: path.clone(),
        message: e.to_string(),
    })?;
    let bad = |m: &str| LlmError::Model {
        path: path.clone(),
        message: m.to_string(),
    };
    if cfg.peft_type != "LORA" {
        return Err(bad(&format!(
            "peft_type {} is not supported (LORA only)",
            cfg.peft_type
        )));
    }
    if cfg.use_dora {
        return Err(bad("DoRA adapters are not supported"));
    }
    if cfg.modules_to_save.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(bad(
            "modules_to_save is not supported (vLLM does not load it either)",
        ));
    }
    if !cfg.rank_pattern.is_empty() || !cfg.alpha_pattern.is_empty() {
        return Err(bad("rank_pattern / alpha_pattern are not supported"));
    }
    Ok(cfg)
}

/// Loads a PEFT adapter into `model` (replacing any LoRA it had); returns the config and the number of adapted
/// projections. Names, shapes and targets are checked against the model.
pub fn load_adapter(dir: &Path, model: &mut Model) -> Result<(AdapterConfig, usize), LlmError> {
    let cfg = read_adapter_config(dir)?;
    let path = dir.join("adapter_model.safetensors");
    if !path.is_file() {
        return Err(LlmError::NotFound(format!("{}: missing", path.display())));
    }
    let device = model.device().clone();
    let mut tensors = candle_core::safetensors::load(&path, &device)?;
    let bad = |message: String| LlmError::Model {
        path: path.clone(),
        message,
    };
    let scale = cfg.scale();
    let mut adapted = 0;
    for (i, layer) in model.layers.iter_mut().enumerate() {
        for (p, lin) in layer.linears_mut() {
            let name = format!("base_model.model.model.layers.{i}.{p}");
            let a = tensors.remove(&format!("{name}.lora_A.weight"));
            let b = tensors.remove(&format!("{name}.lora_B.weight"));
            lin.lora = match (a, b) {
                (Some(a), Some(b)) => {
                    let (a, b) = (a.to_dtype(DType::F32)?, b.to_dtype(DType::F32)?);
                    let (out_f, in_f) = (lin.weight.out_features(), lin.weight.in_features());
                    if a.dims() != [cfg.r, in_f] || b.dims() != [out_f, cfg.r] {
                        return Err(bad(format!(
                            "{name}: lora_A {:?} / lora_B {:?} do not fit a [{out_f}, {in_f}] projection with r={}",
                            a.dims(),
                            b.dims(),
                            cfg.r
                        )));
                    }
                    adapted += 1;
                    Some(Lora {
                        a,
                        b,
                        scale,
                        dropout: 0.0,
                    })
                }
                (None, None) => None,
                _ => return Err(bad(format!("{name}: has only one of lora_A / lora_B"))),
            };
        }
    }
    if let Some(extra) = tensors.keys().min() {
        return Err(bad(format!(
            "tensor `{extra}` does not belong to this model's projections (wrong base model, or lm_head/embed_tokens, which nanodex does not load)"
        )));
    }
    if adapted == 0 {
        return Err(bad("no LoRA tensors found".into()));
    }
    Ok((cfg, adapted))
}

/// Facts for the model card.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CardFacts {
    /// Project name.
    pub project: String,
    /// Base model path or id.
    pub base: String,
    /// Dataset path.
    pub dataset: String,
    /// Training examples / held-out examples.
    pub examples: (usize, usize),
    /// Optimizer steps run.
    pub steps: usize,
    /// Last eval loss.
    pub eval_loss: Option<f64>,
    /// Last training loss.
    pub train_loss: Option<f64>,
    /// `lora` or `qlora (<type>)`.
    pub method: String,
}

/// The README model card written next to the adapter.
pub fn model_card(cfg: &AdapterConfig, facts: &CardFacts) -> String {
    let eval = facts
        .eval_loss
        .map(|l| format!("{l:.4}"))
        .unwrap_or_else(|| "n/a".into());
    let train = facts
        .train_loss
        .map(|l| format!("{l:.4}"))
        .unwrap_or_else(|| "n/a".into());
    let warnings = cfg.warnings();
    format!(
        "---\nlibrary_name: peft\nbase_model: {base}\ntags: [nanodex, lora]\n---\n\n# {project} nanodex adapter\n\n\
A LoRA adapter that makes `{base}` answer questions about the **{project}** codebase, trained by nanodex.\n\n\
| | |\n|---|---|\n| base model | `{base}` |\n| method | {method} |\n| data | `{dataset}` ({train_n} training / {eval_n} held-out examples) |\n\
| steps | {steps} |\n| train loss | {train} |\n| eval loss | {eval} |\n| rank / alpha | {r} / {alpha} |\n| target modules | {targets} |\n\n\
## Use it\n\nvLLM: `vllm serve {base} --enable-lora --lora-modules {project}={{this folder}}`{vllm_note}\n\n\
PEFT: `PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(\"{base}\"), \"{{this folder}}\")`\n\n\
nanodex: `nanodex generate --base {base} --adapter {{this folder}} --prompt \"...\"`\n{warn}",
        base = facts.base,
        project = facts.project,
        method = facts.method,
        dataset = facts.dataset,
        train_n = facts.examples.0,
        eval_n = facts.examples.1,
        steps = facts.steps,
        r = cfg.r,
        alpha = cfg.lora_alpha,
        targets = cfg.target_modules.join(", "),
        vllm_note = if cfg.r > VLLM_MAX_LORA_RANK {
            format!(" --max-lora-rank {}", cfg.r.next_power_of_two().max(32))
        } else {
            String::new()
        },
        warn = warnings
            .iter()
            .map(|w| format!("\n> warning: {w}\n"))
            .collect::<String>(),
    )
}

/// Writes the merged full weights (`W + scale·B·A`) in Hugging Face naming as `model.safetensors` plus
/// `config.json`, into `dir`.
pub fn save_merged(dir: &Path, model: &Model) -> Result<(), LlmError> {
    std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    let mut map = HashMap::new();
    map.insert("model.embed_tokens.weight".to_string(), model.embed.clone());
    map.insert("model.norm.weight".to_string(), model.norm.clone());
    if !model.cfg.tie_word_embeddings {
        map.insert("lm_head.weight".to_string(), model.lm_head.dense()?);
    }
    for (i, layer) in model.layers.iter().enumerate() {
        let p = format!("model.layers.{i}");
        map.insert(
            format!("{p}.input_layernorm.weight"),
            layer.input_norm.clone(),
        );
        map.insert(
            format!("{p}.post_attention_layernorm.weight"),
            layer.post_norm.clone(),
        );
        for (path, lin) in layer.linears() {
            map.insert(
                format!("{p}.{path}.weight"),
                lin.merged_weight()?.contiguous()?,
            );
            if let Some(b) = &lin.bias {
                map.insert(format!("{p}.{path}.bias"), b.clone());
            }
        }
    }
    save_safetensors(&dir.join("model.safetensors"), &map)?;
    let cfg = serde_json::to_vec_pretty(&model.cfg.to_hf_json())
        .map_err(|e| LlmError::Invalid(e.to_string()))?;
    let path = dir.join("config.json");
    write_atomic(&path, &cfg).map_err(io_err(&path))
}
