//! Tokenizer and chat template of a model: `tokenizer.json` + `tokenizer_config.json` of a Hugging Face folder, or
//! the `tokenizer.ggml.*` metadata of a GGUF file (byte-level BPE, as transformers' GGUF converter builds it).
//! Chat templates are the model's own Jinja templates, rendered with minijinja (Python string methods enabled).

use super::LlmError;
use candle_core::quantized::gguf_file;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One chat turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// `system`, `user` or `assistant`.
    pub role: String,
    /// Text.
    pub content: String,
}

impl Message {
    /// A turn with the given role.
    pub fn new(role: &str, content: impl Into<String>) -> Self {
        Self {
            role: role.to_string(),
            content: content.into(),
        }
    }
}

/// ChatML, used when a model ships no template.
const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// Token ids with the byte range of the text each covers.
pub type Encoded = (Vec<u32>, Vec<(usize, usize)>);

/// A tokenizer with its chat template and the tokens that end a turn.
#[derive(Clone)]
pub struct ChatTokenizer {
    tok: tokenizers::Tokenizer,
    template: String,
    bos: String,
    eos: String,
    /// Token ids that end generation: the template's end-of-turn token and the model's EOS.
    pub stop_ids: Vec<u32>,
}

impl std::fmt::Debug for ChatTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatTokenizer")
            .field("vocab", &self.tok.get_vocab_size(true))
            .field("stop_ids", &self.stop_ids)
            .finish()
    }
}

fn token_string(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) => o.get("content")?.as_str().map(str::to_string),
        _ => None,
    }
}

impl ChatTokenizer {
    /// Loads `tokenizer.json` and `tokenizer_config.json` from a Hugging Face model folder.
    pub fn from_hf_dir(dir: &Path) -> Result<Self, LlmError> {
        let path = dir.join("tokenizer.json");
        if !path.is_file() {
            return Err(LlmError::NotFound(format!(
                "{}: missing; a Hugging Face model folder needs its tokenizer.json",
                path.display()
            )));
        }
        let tok = tokenizers::Tokenizer::from_file(&path).map_err(|e| LlmError::Model {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let cfg_path = dir.join("tokenizer_config.json");
        let cfg: serde_json::Value = match std::fs::read_to_string(&cfg_path) {
            Ok(text) => serde_json::from_str(&text).map_err(|e| LlmError::Model {
                path: cfg_path.clone(),
                message: e.to_string(),
            })?,
            Err(_) => serde_json::Value::Null,
        };
        let template = match cfg.get("chat_template") {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Array(list)) => list
                .iter()
                .find(|t| t.get("name").and_then(|n| n.as_str()) == Some("default"))
                .or(list.first())
                .and_then(|t| t.get("template")?.as_str().map(str::to_string)),
            _ => None,
        }
        .or_else(|| std::fs::read_to_string(dir.join("chat_template.jinja")).ok());
        Self::assemble(
            tok,
            template,
            token_string(cfg.get("bos_token")),
            token_string(cfg.get("eos_token")),
        )
    }

    /// Builds the byte-level BPE tokenizer described by GGUF metadata.
    pub fn from_gguf(content: &gguf_file::Content, path: &Path) -> Result<Self, LlmError> {
        let bad = |message: String| LlmError::Model {
            path: path.to_path_buf(),
            message,
        };
        let md = &content.metadata;
        let model = md
            .get("tokenizer.ggml.model")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if model != "gpt2" {
            return Err(bad(format!(
                "GGUF tokenizer `{model}` is not supported (byte-level BPE `gpt2` only); use the model's Hugging Face folder instead"
            )));
        }
        let strings = |key: &str| -> Result<Vec<String>, LlmError> {
            md.get(key)
                .and_then(|v| v.to_vec().ok())
                .ok_or_else(|| bad(format!("GGUF metadata lacks `{key}`")))?
                .iter()
                .map(|v| v.to_string().cloned().map_err(|e| bad(e.to_string())))
                .collect()
        };
        let tokens = strings("tokenizer.ggml.tokens")?;
        let merges = strings("tokenizer.ggml.merges")?;
        let types: Vec<i32> = md
            .get("tokenizer.ggml.token_type")
            .and_then(|v| v.to_vec().ok())
            .map(|v| v.iter().map(|t| t.to_i32().unwrap_or(1)).collect())
            .unwrap_or_default();
        let vocab: serde_json::Map<String, serde_json::Value> = tokens
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), serde_json::Value::from(i)))
            .collect();
        let added: Vec<serde_json::Value> = tokens
            .iter()
            .enumerate()
            .filter(|(i, _)| matches!(types.get(*i), Some(3 | 4)))
            .map(|(i, t)| {
                serde_json::json!({"id": i, "content": t, "single_word": false, "lstrip": false,
                    "rstrip": false, "normalized": false, "special": types.get(i) == Some(&3)})
            })
            .collect();
        let byte_level = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false,
            "trim_offsets": false, "use_regex": true});
        let spec = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
            "normalizer": null, "pre_tokenizer": byte_level, "post_processor": byte_level,
            "decoder": byte_level,
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                "vocab": vocab, "merges": merges},
        });
        let tok: tokenizers::Tokenizer = spec
            .to_string()
            .parse()
            .map_err(|e: tokenizers::Error| bad(e.to_string()))?;
        let id_token = |key: &str| {
            md.get(key)
                .and_then(|v| v.to_u32().ok())
                .and_then(|i| tokens.get(i as usize).cloned())
        };
        let template = md
            .get("tokenizer.chat_template")
            .and_then(|v| v.to_string().ok())
            .cloned();
        Self::assemble(
            tok,
            template,
            id_token("tokenizer.ggml.bos_token_id"),
            id_token("tokenizer.ggml.eos_token_id"),
        )
    }

    fn assemble(
        tok: tokenizers::Tokenizer,
        template: Option<String>,
        bos: Option<String>,
        eos: Option<String>,
    ) -> Result<Self, LlmError> {
        let mut this = Self {
            tok,
            template: template.unwrap_or_else(|| CHATML.to_string()),
            bos: bos.unwrap_or_default(),
            eos: eos.unwrap_or_default(),
            stop_ids: Vec::new(),
        };
        let mut stops = Vec::new();
        if let Some(end) = this.end_of_turn()? {
            stops.push(end);
        }
        if let Some(id) = this.tok.token_to_id(&this.eos) {
            stops.push(id);
        }
        stops.dedup();
        this.stop_ids = stops;
        Ok(this)
    }

    /// The token the template writes right after an assistant message (`<|im_end|>` for ChatML, `<|eot_id|>` for
    /// Llama 3), found by rendering a marker message: this is what training must teach and generation must stop on.
    fn end_of_turn(&self) -> Result<Option<u32>, LlmError> {
        const MARK: &str = "NANODEXMARK";
        let text = self.render(
            &[Message::new("user", "q"), Message::new("assistant", MARK)],
            false,
        )?;
        let Some(at) = text.rfind(MARK) else {
            return Ok(None);
        };
        let tail = text[at + MARK.len()..].trim_start_matches([' ']);
        let ids = self.encode(tail)?;
        Ok(ids
            .first()
            .copied()
            .filter(|id| self.is_special(*id))
            .or_else(|| self.tok.token_to_id(&self.eos)))
    }

    fn is_special(&self, id: u32) -> bool {
        self.tok
            .get_added_tokens_decoder()
            .get(&id)
            .is_some_and(|t| t.special)
    }

    /// Renders messages with the model's chat template.
    pub fn render(
        &self,
        messages: &[Message],
        add_generation_prompt: bool,
    ) -> Result<String, LlmError> {
        let mut env = minijinja::Environment::new();
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |msg: String| -> Result<String, minijinja::Error> {
                Err(minijinja::Error::new(
                    minijinja::ErrorKind::InvalidOperation,
                    msg,
                ))
            },
        );
        env.add_function("strftime_now", |_fmt: String| "2026-01-01".to_string());
        let msgs: Vec<minijinja::Value> = messages
            .iter()
            .map(|m| {
                minijinja::Value::from_pairs([
                    ("role", minijinja::Value::from(m.role.as_str())),
                    ("content", minijinja::Value::from(m.content.as_str())),
                ])
            })
            .collect();
        env.render_str(
            &self.template,
            minijinja::context! {
                messages => msgs,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos.as_str(),
                eos_token => self.eos.as_str(),
            },
        )
        .map_err(|e| LlmError::Invalid(format!("chat template: {e:#}")))
    }

    /// Token ids of `text`, special tokens recognised, nothing added.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, LlmError> {
        self.tok
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .map_err(|e| LlmError::Invalid(format!("tokenizer: {e}")))
    }

    /// Token ids of `text` with the byte offsets each token covers.
    pub fn encode_with_offsets(&self, text: &str) -> Result<Encoded, LlmError> {
        let enc = self
            .tok
            .encode(text, false)
            .map_err(|e| LlmError::Invalid(format!("tokenizer: {e}")))?;
        Ok((enc.get_ids().to_vec(), enc.get_offsets().to_vec()))
    }

    /// Id used to pad batches (EOS, else 0); padded positions never enter the loss.
    pub fn pad_id(&self) -> u32 {
        self.tok.token_to_id(&self.eos).unwrap_or(0)
    }

    /// Writes `tokenizer.json` and a `tokenizer_config.json` with the chat template into `dir` (for merged models).
    pub fn save(&self, dir: &Path) -> Result<(), LlmError> {
        let path = dir.join("tokenizer.json");
        self.tok
            .save(&path, false)
            .map_err(|e| LlmError::Invalid(format!("{}: {e}", path.display())))?;
        let cfg = serde_json::json!({"chat_template": self.template, "bos_token": self.bos, "eos_token": self.eos});
        let path = dir.join("tokenizer_config.json");
        crate::fsutil::write_atomic(&path, cfg.to_string().as_bytes()).map_err(super::io_err(&path))
    }

    /// Text of `ids`, special tokens left out.
    pub fn decode(&self, ids: &[u32]) -> Result<String, LlmError> {
        self.tok
            .decode(ids, true)
            .map_err(|e| LlmError::Invalid(format!("tokenizer: {e}")))
    }

    /// Vocabulary size including added tokens.
    pub fn vocab_size(&self) -> usize {
        self.tok.get_vocab_size(true)
    }
}
