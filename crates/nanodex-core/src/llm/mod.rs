//! Open decoder models in candle: configuration, loading (Hugging Face folders, GGUF, hub cache), the
//! Llama/Qwen2 forward pass with LoRA hooks, tokenizers and chat templates. Shared by [`crate::train`]
//! (fine-tuning), [`crate::infer`] (generation) and [`crate::export`] (PEFT adapters).
//!
//! Invariant: weights follow Hugging Face's layout and rotary form whatever the file format, so an adapter trained
//! here applies unchanged to the same base in transformers, PEFT or vLLM.

pub mod config;
pub mod load;
pub mod model;
pub mod ops;
pub mod tokenizer;

pub use config::{Arch, ModelConfig};
pub use load::{Base, BaseDtype, BaseSource, device, load_base, resolve_base};
pub use model::{KvCache, Model, Pass, TARGET_MODULES};
pub use tokenizer::{ChatTokenizer, Message};

use std::path::PathBuf;

/// Errors of model loading, training, generation and export.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// A model file is malformed or unsupported.
    #[error("{}: {message}", path.display())]
    Model {
        /// File.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Something needed is not there (model, file, cache entry); the message says how to get it.
    #[error("{0}")]
    NotFound(String),
    /// A dataset line is malformed; the run does not start.
    #[error("{}:{line}: {message}", path.display())]
    Dataset {
        /// Dataset file.
        path: PathBuf,
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// I/O.
    #[error("{}: {cause}", path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        cause: std::io::Error,
    },
    /// An argument or a configuration value is invalid.
    #[error("{0}")]
    Invalid(String),
    /// A tensor operation failed.
    #[error("tensor computation failed: {0}")]
    Tensor(String),
    /// The run was cancelled (after writing a checkpoint when training).
    #[error("cancelled")]
    Cancelled,
}

impl From<candle_core::Error> for LlmError {
    fn from(e: candle_core::Error) -> Self {
        LlmError::Tensor(e.to_string())
    }
}

/// Maps an I/O error on `path`.
pub(crate) fn io_err(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> LlmError + '_ {
    move |cause| LlmError::Io {
        path: path.to_path_buf(),
        cause,
    }
}
