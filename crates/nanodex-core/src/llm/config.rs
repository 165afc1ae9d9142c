//! Decoder hyper-parameters, read from a Hugging Face `config.json` or from GGUF metadata.

use super::LlmError;
use candle_core::quantized::gguf_file;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Model family. Both are pre-norm decoders with RMSNorm, rotary positions (rotate-half form), grouped-query
/// attention and a SwiGLU MLP; Qwen2 adds biases to the q/k/v projections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Llama, SmolLM2, Mistral-style dense models.
    Llama,
    /// Qwen2 / Qwen2.5 (including Qwen2.5-Coder).
    Qwen2,
}

/// The shape of a decoder model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// Family.
    pub arch: Arch,
    /// Vocabulary size (rows of the embedding).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Decoder blocks.
    pub num_hidden_layers: usize,
    /// Query heads.
    pub num_attention_heads: usize,
    /// Key/value heads (grouped-query attention when fewer than query heads).
    pub num_key_value_heads: usize,
    /// Width of one head.
    pub head_dim: usize,
    /// RMSNorm epsilon.
    pub rms_norm_eps: f64,
    /// Rotary base frequency.
    pub rope_theta: f64,
    /// Whether the output projection reuses the embedding matrix.
    pub tie_word_embeddings: bool,
    /// Biases on q/k/v projections (Qwen2).
    pub qkv_bias: bool,
    /// Longest context the model was trained for.
    pub max_position_embeddings: usize,
}

#[derive(Deserialize)]
struct HfConfig {
    model_type: String,
    vocab_size: usize,
    hidden_size: usize,
    intermediate_size: usize,
    num_hidden_layers: usize,
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rms_norm_eps: f64,
    #[serde(default = "default_theta")]
    rope_theta: f64,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    attention_bias: Option<bool>,
    #[serde(default = "default_ctx")]
    max_position_embeddings: usize,
    #[serde(default)]
    rope_scaling: Option<serde_json::Value>,
    #[serde(default)]
    hidden_act: Option<String>,
}

fn default_theta() -> f64 {
    10_000.0
}
fn default_ctx() -> usize {
    2048
}

impl ModelConfig {
    /// Reads a Hugging Face `config.json`.
    pub fn from_hf_json(path: &Path) -> Result<Self, LlmError> {
        let text = std::fs::read_to_string(path).map_err(|cause| LlmError::Io {
            path: path.to_path_buf(),
            cause,
        })?;
        let bad = |message: String| LlmError::Model {
            path: path.to_path_buf(),
            message,
        };
        let hf: HfConfig = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let arch = match hf.model_type.as_str() {
            "llama" | "mistral" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            other => {
                return Err(bad(format!(
                    "model_type `{other}` is not supported; nanodex trains llama-family and qwen2 models"
                )));
            }
        };
        if let Some(scaling) = hf.rope_scaling.as_ref().filter(|v| !v.is_null()) {
            return Err(bad(format!(
                "rope_scaling {scaling} is not supported yet; use a model without rope scaling"
            )));
        }
        if let Some(act) = hf.hidden_act.as_deref().filter(|a| *a != "silu") {
            return Err(bad(format!(
                "hidden_act `{act}` is not supported (silu only)"
            )));
        }
        let cfg = Self {
            arch,
            vocab_size: hf.vocab_size,
            hidden_size: hf.hidden_size,
            intermediate_size: hf.intermediate_size,
            num_hidden_layers: hf.num_hidden_layers,
            num_attention_heads: hf.num_attention_heads,
            num_key_value_heads: hf.num_key_value_heads.unwrap_or(hf.num_attention_heads),
            head_dim: hf
                .head_dim
                .unwrap_or(hf.hidden_size / hf.num_attention_heads),
            rms_norm_eps: hf.rms_norm_eps,
            rope_theta: hf.rope_theta,
            tie_word_embeddings: hf.tie_word_embeddings,
            qkv_bias: hf.attention_bias.unwrap_or(arch == Arch::Qwen2),
            max_position_embeddings: hf.max_position_embeddings,
        };
        cfg.validate().map_err(bad)?;
        Ok(cfg)
    }

    /// Reads the `<arch>.*` keys of GGUF metadata.
    pub fn from_gguf(content: &gguf_file::Content, path: &Path) -> Result<Self, LlmError> {
        let bad = |message: String| LlmError::Model {
            path: path.to_path_buf(),
            message,
        };
        let md = &content.metadata;
        let arch_name = md
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        let arch = match arch_name.as_str() {
            "llama" => Arch::Llama,
            "qwen2" => Arch::Qwen2,
            other => {
                return Err(bad(format!(
                    "GGUF architecture `{other}` is not supported; nanodex trains llama and qwen2 models"
                )));
            }
        };
        let get = |key: &str| md.get(&format!("{arch_name}.{key}"));
        let req = |key: &str| -> Result<usize, LlmError> {
            get(key)
                .and_then(|v| v.to_u32().ok())
                .map(|v| v as usize)
                .ok_or_else(|| bad(format!("GGUF metadata lacks `{arch_name}.{key}`")))
        };
        let hidden_size = req("embedding_length")?;
        let num_attention_heads = req("attention.head_count")?;
        let vocab_size = match md
            .get("tokenizer.ggml.tokens")
            .and_then(|v| v.to_vec().ok())
        {
            Some(tokens) => tokens.len(),
            None => content
                .tensor_infos
                .get("token_embd.weight")
                .map(|t| t.shape.dims()[0])
                .ok_or_else(|| bad("GGUF has neither tokens nor token_embd.weight".into()))?,
        };
        let cfg = Self {
            arch,
            vocab_size,
            hidden_size,
            intermediate_size: req("feed_forward_length")?,
            num_hidden_layers: req("block_count")?,
            num_attention_heads,
            num_key_value_heads: req("attention.head_count_kv").unwrap_or(num_attention_heads),
            head_dim: req("rope.dimension_count").unwrap_or(hidden_size / num_attention_heads),
            rms_norm_eps: get("attention.layer_norm_rms_epsilon")
                .and_then(|v| v.to_f32().ok())
                .map(f64::from)
                .unwrap_or(1e-5),
            rope_theta: get("rope.freq_base")
                .and_then(|v| v.to_f32().ok())
                .map(f64::from)
                .unwrap_or(10_000.0),
            tie_word_embeddings: !content.tensor_infos.contains_key("output.weight"),
            qkv_bias: content.tensor_infos.contains_key("blk.0.attn_q.bias"),
            max_position_embeddings: req("context_length").unwrap_or(2048),
        };
        cfg.validate().map_err(bad)?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), String> {
        if self.num_attention_heads == 0
            || self.num_key_value_heads == 0
            || !self
                .num_attention_heads
                .is_multiple_of(self.num_key_value_heads)
        {
            return Err(format!(
                "{} attention heads are not a multiple of {} key/value heads",
                self.num_attention_heads, self.num_key_value_heads
            ));
        }
        if !self.head_dim.is_multiple_of(2) {
            return Err(format!(
                "head_dim {} must be even for rotary positions",
                self.head_dim
            ));
        }
        Ok(())
    }

    /// The Hugging Face `config.json` for this shape (written next to merged weights).
    pub fn to_hf_json(&self) -> serde_json::Value {
        let (model_type, archs) = match self.arch {
            Arch::Llama => ("llama", "LlamaForCausalLM"),
            Arch::Qwen2 => ("qwen2", "Qwen2ForCausalLM"),
        };
        serde_json::json!({
            "architectures": [archs],
            "model_type": model_type,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_hidden_layers,
            "num_attention_heads": self.num_attention_heads,
            "num_key_value_heads": self.num_key_value_heads,
            "head_dim": self.head_dim,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "tie_word_embeddings": self.tie_word_embeddings,
            "max_position_embeddings": self.max_position_embeddings,
            "hidden_act": "silu",
            "torch_dtype": "float32",
        })
    }
}
