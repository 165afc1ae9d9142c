//! Sentence embeddings with ONNX Runtime (through `ort`) and a Hugging Face `tokenizers` tokenizer.
//!
//! A model folder holds `model.onnx` (a BERT-style encoder taking `input_ids`, `attention_mask` and, when the graph
//! has it, `token_type_ids`; returning `last_hidden_state`) and `tokenizer.json`. Vectors are the attention-masked
//! mean of the last hidden state, L2-normalised, as sentence-transformers computes them for all-MiniLM-L6-v2.
//!
//! The ONNX Runtime shared library is loaded at run time (`load-dynamic`): nothing is downloaded, ever. Where the
//! library and the model live is resolved by [`ModelPaths`]: explicit paths, then `ORT_DYLIB_PATH`, then
//! `$NANODEX_MODELS` (default `~/.cache/nanodex/models`, filled by `scripts/models.sh`).

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::Tensor;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::error::EmbedError;

/// Default model folder name under `$NANODEX_MODELS`.
pub const DEFAULT_MODEL: &str = "all-MiniLM-L6-v2";

/// The folder that holds downloaded-once models and runtimes: `$NANODEX_MODELS`, else `~/.cache/nanodex/models`.
pub fn models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NANODEX_MODELS").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache/nanodex/models")
}

/// Where the runtime library and the model are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPaths {
    /// `libonnxruntime.so` (or `.dylib` / `.dll`).
    pub runtime: PathBuf,
    /// Folder with `model.onnx` and `tokenizer.json`.
    pub model_dir: PathBuf,
}

impl ModelPaths {
    /// Resolves the paths: `runtime` / `model` when given (a model name without a slash is a folder of
    /// [`models_dir`]), else `ORT_DYLIB_PATH`, else the defaults under [`models_dir`].
    pub fn resolve(runtime: Option<&Path>, model: Option<&str>) -> ModelPaths {
        let base = models_dir();
        let runtime = runtime
            .map(Path::to_path_buf)
            .or_else(|| {
                std::env::var_os("ORT_DYLIB_PATH")
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
            })
            .unwrap_or_else(|| base.join("onnxruntime").join(runtime_file_name()));
        let model = model.unwrap_or(DEFAULT_MODEL);
        let model_dir = if model.contains('/') || model.contains(std::path::MAIN_SEPARATOR) {
            PathBuf::from(model)
        } else {
            base.join(model)
        };
        ModelPaths { runtime, model_dir }
    }
}

fn runtime_file_name() -> &'static str {
    if cfg!(target_os = "macos") {
        "libonnxruntime.dylib"
    } else if cfg!(target_os = "windows") {
        "onnxruntime.dll"
    } else {
        "libonnxruntime.so"
    }
}

/// The process-wide ONNX Runtime environment (ONNX Runtime allows one), created from the first library asked for.
static ENVIRONMENT: OnceLock<Result<(PathBuf, ort::environment::Environment), String>> =
    OnceLock::new();

fn environment(runtime: &Path) -> Result<ort::environment::Environment, EmbedError> {
    let setup = ENVIRONMENT.get_or_init(|| {
        if !runtime.is_file() {
            return Err("not found".to_string());
        }
        let builder = ort::init_from(runtime).map_err(|e| e.to_string())?;
        let env = builder
            .with_name("nanodex")
            .build()
            .map_err(|e| e.to_string())?;
        Ok((runtime.to_path_buf(), env))
    });
    match setup {
        Ok((_, env)) => Ok(env.clone()),
        Err(message) => Err(EmbedError::Runtime {
            path: runtime.to_path_buf(),
            message: message.clone(),
        }),
    }
}

/// A loaded sentence-embedding model.
pub struct Embedder {
    session: Mutex<Session>,
    tokenizer: Tokenizer,
    has_token_types: bool,
    dim: usize,
    batch: usize,
    model_id: String,
}

/// Embedding options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedOptions {
    /// Sentences per ONNX Runtime call.
    pub batch: usize,
    /// Intra-op threads (0 = all cores).
    pub threads: usize,
    /// Tokens per sentence; longer sentences are truncated.
    pub max_tokens: usize,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        EmbedOptions {
            batch: 32,
            threads: 0,
            max_tokens: 256,
        }
    }
}

impl Embedder {
    /// Loads the runtime, the ONNX model and its tokenizer. Every missing piece is a [`EmbedError`] naming the path
    /// and how to get it.
    pub fn load(paths: &ModelPaths, opts: &EmbedOptions) -> Result<Embedder, EmbedError> {
        let model_path = paths.model_dir.join("model.onnx");
        let tokenizer_path = paths.model_dir.join("tokenizer.json");
        for path in [&model_path, &tokenizer_path] {
            if !path.is_file() {
                return Err(EmbedError::Missing { path: path.clone() });
            }
        }
        let env = environment(&paths.runtime)?;
        let model_err = |e: ort::Error| EmbedError::Model {
            path: model_path.clone(),
            message: e.to_string(),
        };
        let threads = if opts.threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            opts.threads
        };
        let session = Session::builder(&env)
            .map_err(model_err)?
            .with_optimization_level(GraphOptimizationLevel::Level3)
            .map_err(|e| model_err(e.into()))?
            .with_intra_threads(threads)
            .map_err(|e| model_err(e.into()))?
            .commit_from_file(&model_path)
            .map_err(model_err)?;
        let inputs: Vec<String> = session
            .inputs()
            .iter()
            .map(|i| i.name().to_string())
            .collect();
        for needed in ["input_ids", "attention_mask"] {
            if !inputs.iter().any(|n| n == needed) {
                return Err(EmbedError::Model {
                    path: model_path.clone(),
                    message: format!(
                        "the model has no `{needed}` input (inputs: {})",
                        inputs.join(", ")
                    ),
                });
            }
        }
        let has_token_types = inputs.iter().any(|n| n == "token_type_ids");
        // ONNX Runtime already uses every core; tokenizing batches on rayon threads as well only makes the two
        // fight over them (measured: 11 % more sentences/s on 2 cores with it off).
        tokenizers::utils::parallelism::set_parallelism(false);
        let mut tokenizer =
            Tokenizer::from_file(&tokenizer_path).map_err(|e| EmbedError::Model {
                path: tokenizer_path.clone(),
                message: e.to_string(),
            })?;
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: opts.max_tokens.max(8),
                ..TruncationParams::default()
            }))
            .map_err(|e| EmbedError::Model {
                path: tokenizer_path.clone(),
                message: e.to_string(),
            })?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..PaddingParams::default()
        }));
        let model_bytes = std::fs::metadata(&model_path).map(|m| m.len()).unwrap_or(0);
        let model_id = format!(
            "{}:{}:{}",
            paths
                .model_dir
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("model"),
            model_bytes,
            opts.max_tokens
        );
        let mut embedder = Embedder {
            session: Mutex::new(session),
            tokenizer,
            has_token_types,
            dim: 0,
            batch: opts.batch.max(1),
            model_id,
        };
        embedder.dim = embedder.embed(&["dimension probe"])?[0].len();
        Ok(embedder)
    }

    /// Vector length.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// An id of the model and its settings, for caches: vectors from different ids are not comparable.
    pub fn model_id(&self) -> &str {
        &self.model_id
    }

    /// Embeds sentences, in order. Sentences are batched by similar length to keep padding small.
    pub fn embed<S: AsRef<str> + Sync>(
        &self,
        sentences: &[S],
    ) -> Result<Vec<Vec<f32>>, EmbedError> {
        let mut order: Vec<usize> = (0..sentences.len()).collect();
        order.sort_by_key(|&i| sentences[i].as_ref().len());
        let mut out = vec![Vec::new(); sentences.len()];
        for chunk in order.chunks(self.batch) {
            let texts: Vec<&str> = chunk.iter().map(|&i| sentences[i].as_ref()).collect();
            let vectors = self.embed_batch(&texts)?;
            for (&i, v) in chunk.iter().zip(vectors) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let encodings = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| EmbedError::Run(e.to_string()))?;
        let rows = encodings.len();
        let seq = encodings.first().map(|e| e.len()).unwrap_or(0).max(1);
        let mut ids = Vec::with_capacity(rows * seq);
        let mut mask = Vec::with_capacity(rows * seq);
        let mut types = Vec::with_capacity(rows * seq);
        for enc in &encodings {
            ids.extend(enc.get_ids().iter().map(|&x| x as i64));
            mask.extend(enc.get_attention_mask().iter().map(|&x| x as i64));
            types.extend(enc.get_type_ids().iter().map(|&x| x as i64));
        }
        let run_err = |e: ort::Error| EmbedError::Run(e.to_string());
        let shape = [rows, seq];
        let ids_t = Tensor::from_array((shape, ids)).map_err(run_err)?;
        let mask_t = Tensor::from_array((shape, mask.clone())).map_err(run_err)?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| EmbedError::Run("session lock poisoned".into()))?;
        let outputs = if self.has_token_types {
            let types_t = Tensor::from_array((shape, types)).map_err(run_err)?;
            session.run(ort::inputs!["input_ids" => ids_t, "attention_mask" => mask_t, "token_type_ids" => types_t])
        } else {
            session.run(ort::inputs!["input_ids" => ids_t, "attention_mask" => mask_t])
        }
        .map_err(run_err)?;
        let (out_shape, data) = outputs[0].try_extract_tensor::<f32>().map_err(run_err)?;
        if out_shape.len() != 3 || out_shape[0] as usize != rows || out_shape[1] as usize != seq {
            return Err(EmbedError::Run(format!(
                "unexpected output shape {:?} for a batch of {rows}x{seq}",
                &out_shape[..]
            )));
        }
        let hidden = out_shape[2] as usize;
        Ok((0..rows)
            .map(|r| {
                mean_pool(
                    &data[r * seq * hidden..(r + 1) * seq * hidden],
                    &mask[r * seq..(r + 1) * seq],
                    hidden,
                )
            })
            .collect())
    }
}

/// Attention-masked mean over token vectors, then L2 normalisation.
pub fn mean_pool(tokens: &[f32], mask: &[i64], hidden: usize) -> Vec<f32> {
    let mut sum = vec![0f32; hidden];
    let mut count = 0f32;
    for (t, &m) in mask.iter().enumerate() {
        if m == 0 {
            continue;
        }
        count += 1.0;
        for (s, v) in sum.iter_mut().zip(&tokens[t * hidden..(t + 1) * hidden]) {
            *s += v;
        }
    }
    let count = count.max(1.0);
    sum.iter_mut().for_each(|s| *s /= count);
    normalize(&mut sum);
    sum
}

/// Scales a vector to unit length (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Cosine similarity of two unit vectors.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
