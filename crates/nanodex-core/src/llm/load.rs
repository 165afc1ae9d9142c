//! Finding and loading a base model: a local Hugging Face folder (config.json, sharded or single safetensors,
//! tokenizer files), a GGUF file (weights dequantized, tokenizer and chat template from its metadata), or a hub id
//! resolved through the local Hugging Face cache (and downloaded with the `hub-download` feature).
//!
//! GGUF stores Llama's q/k projections with rows permuted for llama.cpp's interleaved RoPE; they are permuted back
//! here so weights, rotary form and LoRA tensor layout are exactly Hugging Face's (what PEFT and vLLM expect).

use super::LlmError;
use super::config::{Arch, ModelConfig};
use super::model::{Block, Linear, Model};
use super::ops::Frozen;
use super::tokenizer::ChatTokenizer;
use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
use candle_core::{DType, Device, Tensor};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where a base model's files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSource {
    /// A Hugging Face model folder.
    HfDir(PathBuf),
    /// A GGUF file.
    Gguf(PathBuf),
}

impl BaseSource {
    /// The path, for messages and model cards.
    pub fn path(&self) -> &Path {
        match self {
            BaseSource::HfDir(p) | BaseSource::Gguf(p) => p,
        }
    }
}

/// Resolves `--base`: a local folder or GGUF file, else a hub id (`org/name`) looked up in the Hugging Face cache
/// (`$HF_HOME`, default `~/.cache/huggingface`).
pub fn resolve_base(spec: &str) -> Result<BaseSource, LlmError> {
    let path = Path::new(spec);
    if path.exists() {
        return local_source(path);
    }
    let looks_like_id =
        spec.split('/').count() == 2 && !spec.starts_with('.') && !spec.contains('\\');
    if !looks_like_id {
        return Err(LlmError::NotFound(format!(
            "{spec}: no such file or folder; pass a Hugging Face model folder, a .gguf file or a hub id such as Qwen/Qwen2.5-Coder-0.5B-Instruct"
        )));
    }
    let cache = hf_hub::Cache::from_env();
    let repo = cache.model(spec.to_string());
    if let Some(config) = repo.get("config.json")
        && let Some(dir) = config.parent()
        && (dir.join("model.safetensors").exists()
            || dir.join("model.safetensors.index.json").exists())
    {
        return Ok(BaseSource::HfDir(dir.to_path_buf()));
    }
    download(spec, cache.path())
}

#[cfg(feature = "hub-download")]
fn download(id: &str, _cache: &Path) -> Result<BaseSource, LlmError> {
    let api =
        hf_hub::api::sync::Api::new().map_err(|e| LlmError::NotFound(format!("{id}: {e}")))?;
    let repo = api.model(id.to_string());
    let fetch = |f: &str| {
        repo.get(f)
            .map_err(|e| LlmError::NotFound(format!("{id}: {f}: {e}")))
    };
    let config = fetch("config.json")?;
    fetch("tokenizer.json")?;
    let _ = fetch("tokenizer_config.json");
    if let Ok(index) = fetch("model.safetensors.index.json") {
        let text = std::fs::read_to_string(&index).map_err(|cause| LlmError::Io {
            path: index.clone(),
            cause,
        })?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| LlmError::Model {
            path: index,
            message: e.to_string(),
        })?;
        let mut shards: Vec<&str> = v["weight_map"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, f)| f.as_str())
            .collect();
        shards.sort();
        shards.dedup();
        for s in shards {
            fetch(s)?;
        }
    } else {
        fetch("model.safetensors")?;
    }
    Ok(BaseSource::HfDir(
        config.parent().unwrap_or(Path::new(".")).to_path_buf(),
    ))
}

#[cfg(not(feature = "hub-download"))]
fn download(id: &str, cache: &Path) -> Result<BaseSource, LlmError> {
    Err(LlmError::NotFound(format!(
        "{id}: not in the Hugging Face cache at {}; download it there first (`huggingface-cli download {id}`), pass a local folder or .gguf file, or build nanodex with `--features hub-download` to fetch it",
        cache.display()
    )))
}

fn local_source(path: &Path) -> Result<BaseSource, LlmError> {
    if path.is_file() {
        return if path.extension().is_some_and(|e| e == "gguf") {
            Ok(BaseSource::Gguf(path.to_path_buf()))
        } else {
            Err(LlmError::NotFound(format!(
                "{}: not a .gguf file; pass a GGUF file or a Hugging Face model folder",
                path.display()
            )))
        };
    }
    if path.join("config.json").is_file() {
        return Ok(BaseSource::HfDir(path.to_path_buf()));
    }
    let mut ggufs: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|cause| LlmError::Io {
            path: path.to_path_buf(),
            cause,
        })?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "gguf"))
        .collect();
    ggufs.sort();
    match ggufs.len() {
        1 => Ok(BaseSource::Gguf(ggufs.remove(0))),
        0 => Err(LlmError::NotFound(format!(
            "{}: holds neither config.json (a Hugging Face model) nor a .gguf file",
            path.display()
        ))),
        _ => Err(LlmError::NotFound(format!(
            "{}: holds several .gguf files; pass one of them",
            path.display()
        ))),
    }
}

/// How frozen projection weights are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseDtype {
    /// f32 (LoRA).
    F32,
    /// 4-bit blocks (QLoRA), dequantized layer by layer in forward and backward.
    Quant(GgmlDType),
}

/// A loaded base: model, tokenizer, and where it came from.
#[derive(Debug, Clone)]
pub struct Base {
    /// The decoder.
    pub model: Model,
    /// Tokenizer and chat template.
    pub tokenizer: ChatTokenizer,
    /// Source.
    pub source: BaseSource,
}

trait Weights {
    fn tensor(&mut self, name: &str) -> Result<Option<Tensor>, LlmError>;
}

struct Safetensors {
    st: candle_core::safetensors::MmapedSafetensors,
    names: std::collections::HashSet<String>,
    device: Device,
}

impl Weights for Safetensors {
    fn tensor(&mut self, name: &str) -> Result<Option<Tensor>, LlmError> {
        if !self.names.contains(name) {
            return Ok(None);
        }
        Ok(Some(
            self.st.load(name, &self.device)?.to_dtype(DType::F32)?,
        ))
    }
}

struct Gguf {
    content: gguf_file::Content,
    file: std::fs::File,
    device: Device,
    arch: Arch,
    heads: usize,
    kv_heads: usize,
}

fn gguf_name(hf: &str) -> Option<String> {
    let rest = hf.strip_prefix("model.");
    match hf {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = rest?.strip_prefix("layers.")?;
    let (layer, tail) = rest.split_once('.')?;
    let mapped = match tail {
        "input_layernorm.weight" => "attn_norm.weight",
        "post_attention_layernorm.weight" => "ffn_norm.weight",
        "self_attn.q_proj.weight" => "attn_q.weight",
        "self_attn.k_proj.weight" => "attn_k.weight",
        "self_attn.v_proj.weight" => "attn_v.weight",
        "self_attn.o_proj.weight" => "attn_output.weight",
        "self_attn.q_proj.bias" => "attn_q.bias",
        "self_attn.k_proj.bias" => "attn_k.bias",
        "self_attn.v_proj.bias" => "attn_v.bias",
        "mlp.gate_proj.weight" => "ffn_gate.weight",
        "mlp.up_proj.weight" => "ffn_up.weight",
        "mlp.down_proj.weight" => "ffn_down.weight",
        _ => return None,
    };
    Some(format!("blk.{layer}.{mapped}"))
}

/// Undoes llama.cpp's `permute` of q/k rows: `[heads, d/2, 2, in]` → `[heads, 2, d/2, in]`.
fn unpermute(w: &Tensor, heads: usize) -> candle_core::Result<Tensor> {
    let (out, inp) = w.dims2()?;
    w.reshape((heads, out / heads / 2, 2, inp))?
        .transpose(1, 2)?
        .contiguous()?
        .reshape((out, inp))
}

impl Weights for Gguf {
    fn tensor(&mut self, name: &str) -> Result<Option<Tensor>, LlmError> {
        let Some(gname) = gguf_name(name) else {
            return Ok(None);
        };
        if !self.content.tensor_infos.contains_key(&gname) {
            return Ok(None);
        }
        let q = self.content.tensor(&mut self.file, &gname, &self.device)?;
        let mut t = q.dequantize(&self.device)?;
        if self.arch == Arch::Llama {
            if name.ends_with("q_proj.weight") {
                t = unpermute(&t, self.heads)?;
            } else if name.ends_with("k_proj.weight") {
                t = unpermute(&t, self.kv_heads)?;
            }
        }
        Ok(Some(t))
    }
}

/// Loads model and tokenizer onto `device`, holding projection weights as `dtype`.
pub fn load_base(source: &BaseSource, device: &Device, dtype: BaseDtype) -> Result<Base, LlmError> {
    let (cfg, tokenizer, mut weights): (ModelConfig, ChatTokenizer, Box<dyn Weights>) = match source
    {
        BaseSource::HfDir(dir) => {
            let cfg = ModelConfig::from_hf_json(&dir.join("config.json"))?;
            let tokenizer = ChatTokenizer::from_hf_dir(dir)?;
            let files = safetensor_files(dir)?;
            // SAFETY: the files are memory-mapped read-only; nanodex never writes into a base model folder.
            let st = unsafe { candle_core::safetensors::MmapedSafetensors::multi(&files)? };
            let names = st.tensors().into_iter().map(|(n, _)| n).collect();
            (
                cfg,
                tokenizer,
                Box::new(Safetensors {
                    st,
                    names,
                    device: device.clone(),
                }),
            )
        }
        BaseSource::Gguf(path) => {
            let mut file = std::fs::File::open(path).map_err(|cause| LlmError::Io {
                path: path.clone(),
                cause,
            })?;
            let content = gguf_file::Content::read(&mut file).map_err(|e| LlmError::Model {
                path: path.clone(),
                message: format!("not a readable GGUF file: {e}"),
            })?;
            let cfg = ModelConfig::from_gguf(&content, path)?;
            let tokenizer = ChatTokenizer::from_gguf(&content, path)?;
            let g = Gguf {
                content,
                file,
                device: device.clone(),
                arch: cfg.arch,
                heads: cfg.num_attention_heads,
                kv_heads: cfg.num_key_value_heads,
            };
            (cfg, tokenizer, Box::new(g))
        }
    };
    let path = source.path().to_path_buf();
    let mut req = |name: &str| -> Result<Tensor, LlmError> {
        weights.tensor(name)?.ok_or_else(|| LlmError::Model {
            path: path.clone(),
            message: format!("weight `{name}` is missing"),
        })
    };
    let frozen = |t: Tensor| -> Result<Frozen, LlmError> {
        Ok(match dtype {
            BaseDtype::F32 => Frozen::Dense(t),
            BaseDtype::Quant(q) => Frozen::Quant(Arc::new(QTensor::quantize(&t, q)?)),
        })
    };
    let embed = req("model.embed_tokens.weight")?;
    let mut layers = Vec::with_capacity(cfg.num_hidden_layers);
    for i in 0..cfg.num_hidden_layers {
        let p = format!("model.layers.{i}");
        let mut lin = |name: &str, bias: bool| -> Result<Linear, LlmError> {
            let weight = frozen(req(&format!("{p}.{name}.weight"))?)?;
            let bias = if bias {
                Some(req(&format!("{p}.{name}.bias"))?)
            } else {
                None
            };
            Ok(Linear {
                weight,
                bias,
                lora: None,
            })
        };
        let qkv_bias = cfg.qkv_bias;
        let block = Block {
            q_proj: lin("self_attn.q_proj", qkv_bias)?,
            k_proj: lin("self_attn.k_proj", qkv_bias)?,
            v_proj: lin("self_attn.v_proj", qkv_bias)?,
            o_proj: lin("self_attn.o_proj", false)?,
            gate_proj: lin("mlp.gate_proj", false)?,
            up_proj: lin("mlp.up_proj", false)?,
            down_proj: lin("mlp.down_proj", false)?,
            input_norm: req(&format!("{p}.input_layernorm.weight"))?,
            post_norm: req(&format!("{p}.post_attention_layernorm.weight"))?,
        };
        layers.push(block);
    }
    let norm = req("model.norm.weight")?;
    let lm_head = if cfg.tie_word_embeddings {
        Frozen::Dense(embed.clone())
    } else {
        frozen(req("lm_head.weight")?)?
    };
    let model = Model::new(cfg, embed, layers, norm, lm_head)?;
    Ok(Base {
        model,
        tokenizer,
        source: source.clone(),
    })
}

fn safetensor_files(dir: &Path) -> Result<Vec<PathBuf>, LlmError> {
    let index = dir.join("model.safetensors.index.json");
    if index.is_file() {
        let text = std::fs::read_to_string(&index).map_err(|cause| LlmError::Io {
            path: index.clone(),
            cause,
        })?;
        let v: serde_json::Value = serde_json::from_str(&text).map_err(|e| LlmError::Model {
            path: index.clone(),
            message: e.to_string(),
        })?;
        let mut files: Vec<PathBuf> = v["weight_map"]
            .as_object()
            .into_iter()
            .flatten()
            .filter_map(|(_, f)| f.as_str().map(|f| dir.join(f)))
            .collect();
        files.sort();
        files.dedup();
        if let Some(missing) = files.iter().find(|f| !f.is_file()) {
            return Err(LlmError::NotFound(format!(
                "{}: shard listed in model.safetensors.index.json is missing",
                missing.display()
            )));
        }
        return Ok(files);
    }
    let single = dir.join("model.safetensors");
    if single.is_file() {
        return Ok(vec![single]);
    }
    Err(LlmError::NotFound(format!(
        "{}: no model.safetensors or model.safetensors.index.json",
        dir.display()
    )))
}

/// Picks the compute device: `auto` (CUDA 0 when built with `cuda` and a GPU is present, else CPU), `cpu`,
/// `cuda` or `cuda:N`.
pub fn device(spec: &str) -> Result<Device, LlmError> {
    match spec {
        "auto" => Ok(Device::cuda_if_available(0).unwrap_or(Device::Cpu)),
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let n = s.strip_prefix("cuda:").unwrap_or("0");
            let n: usize = n
                .parse()
                .map_err(|_| LlmError::Invalid(format!("--device {s}: expected cuda:N")))?;
            if !candle_core::utils::cuda_is_available() {
                return Err(LlmError::Invalid(format!(
                    "--device {s}: this nanodex was built without CUDA; rebuild with `--features cuda` or use --device cpu"
                )));
            }
            Device::new_cuda(n).map_err(|e| LlmError::Invalid(format!("--device {s}: {e}")))
        }
        other => Err(LlmError::Invalid(format!(
            "--device {other}: expected auto, cpu, cuda or cuda:N"
        ))),
    }
}
