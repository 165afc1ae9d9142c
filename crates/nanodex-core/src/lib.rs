//! nanodex core: the pipeline that compiles a codebase into a portable domain expert.
//!
//! One module per stage, each reading the previous stage's typed artifact and writing its own:
//! [`extract`] (repository → [`extract::CodeGraph`]) → [`graph`] (code graph → SurrealDB records) → [`brain`]
//! (graph + sources → typed nodes with summaries and [`embed`]dings, stored beside the graph) → [`search`]
//! (question → ranked brain nodes). [`secrets`] keeps credentials found in source out of everything derived.
//! [`train`] fine-tunes an open model ([`llm`]) with LoRA / QLoRA on chat JSONL, [`export`] writes the adapter in
//! PEFT's layout (what vLLM loads), and [`infer`] generates with base + adapter.
//! Front ends (the `nanodex` CLI, later the desktop app and the server) only call into this crate;
//! it never touches a terminal, HTTP or IPC.
#![deny(missing_docs)]

pub mod brain;
pub mod config;
pub mod embed;
pub mod error;
pub mod export;
pub mod extract;
pub mod fsutil;
pub mod graph;
pub mod infer;
pub mod llm;
pub mod pipeline;
pub mod progress;
pub mod search;
pub mod secrets;
pub mod train;
pub mod view;

pub use error::{Error, Result};
