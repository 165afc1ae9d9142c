//! Configuration: YAML files in `config/`, read in two phases (`Raw*` mirrors the file, `validate` resolves it).
//!
//! The defaults are `config/extract.yaml`, embedded in the binary; a user file overrides any subset of its keys.
//! Unknown keys are errors, and every invalid value is reported with its YAML path.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::ConfigError;
use crate::extract::Lang;

/// The embedded default configuration.
pub const DEFAULT_EXTRACT_YAML: &str = include_str!("../../../config/extract.yaml");

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    extract: Option<RawExtract>,
    graph: Option<RawGraph>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtract {
    exclude: Option<Vec<String>>,
    max_file_size: Option<u64>,
    languages: Option<Vec<String>>,
    respect_gitignore: Option<bool>,
    include_hidden: Option<bool>,
    threads: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGraph {
    store: Option<String>,
    namespace: Option<String>,
    batch_size: Option<usize>,
    write_tasks: Option<usize>,
}

/// What to read from a repository.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractConfig {
    /// Exclude globs.
    pub exclude: Vec<String>,
    /// Size limit in bytes.
    pub max_file_size: u64,
    /// Languages to parse.
    pub languages: Vec<Lang>,
    /// Honour ignore files.
    pub respect_gitignore: bool,
    /// Read hidden files.
    pub include_hidden: bool,
    /// Parser threads (0 = all cores).
    pub threads: usize,
}

/// Where the graph is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Store {
    /// `<workspace>/brain/graph.db`, embedded SurrealKV.
    Workspace,
    /// In-memory (tests, `--no-store` comparisons).
    Memory,
    /// A SurrealDB server endpoint (`ws://`, `wss://`).
    Remote(String),
}

/// Graph store settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphConfig {
    /// Location.
    pub store: Store,
    /// SurrealDB namespace.
    pub namespace: String,
    /// Records per INSERT statement.
    pub batch_size: usize,
    /// INSERT statements in flight at once during a full write (0 = one per core).
    pub write_tasks: usize,
}

/// The resolved configuration of the extract stage.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `extract:` section.
    pub extract: ExtractConfig,
    /// `graph:` section.
    pub graph: GraphConfig,
}

/// Loads the defaults, overlays `path` when given, and validates.
pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
    let defaults = parse(
        DEFAULT_EXTRACT_YAML,
        Path::new("<embedded config/extract.yaml>"),
    )?;
    let user = match path {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|cause| ConfigError::Read {
                path: path.to_path_buf(),
                cause,
            })?;
            parse(&text, path)?
        }
        None => RawFile::default(),
    };
    merge(defaults, user).validate(path.map(Path::to_path_buf))
}

/// Parses YAML text (for tests and callers that hold the text).
pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
    let defaults = parse(
        DEFAULT_EXTRACT_YAML,
        Path::new("<embedded config/extract.yaml>"),
    )?;
    merge(defaults, parse(text, Path::new("<yaml>"))?).validate(None)
}

fn parse(text: &str, path: &Path) -> Result<RawFile, ConfigError> {
    if text.trim().is_empty() {
        return Ok(RawFile::default());
    }
    serde_yaml_ng::from_str(text).map_err(|err| ConfigError::Parse {
        path: path.to_path_buf(),
        message: err.to_string(),
    })
}

fn merge(base: RawFile, over: RawFile) -> RawFile {
    let (be, oe) = (
        base.extract.unwrap_or_default(),
        over.extract.unwrap_or_default(),
    );
    let (bg, og) = (
        base.graph.unwrap_or_default(),
        over.graph.unwrap_or_default(),
    );
    RawFile {
        extract: Some(RawExtract {
            exclude: oe.exclude.or(be.exclude),
            max_file_size: oe.max_file_size.or(be.max_file_size),
            languages: oe.languages.or(be.languages),
            respect_gitignore: oe.respect_gitignore.or(be.respect_gitignore),
            include_hidden: oe.include_hidden.or(be.include_hidden),
            threads: oe.threads.or(be.threads),
        }),
        graph: Some(RawGraph {
            store: og.store.or(bg.store),
            namespace: og.namespace.or(bg.namespace),
            batch_size: og.batch_size.or(bg.batch_size),
            write_tasks: og.write_tasks.or(bg.write_tasks),
        }),
    }
}

impl RawFile {
    fn validate(self, path: Option<PathBuf>) -> Result<Config, ConfigError> {
        let mut problems: Vec<String> = Vec::new();
        let extract = self.extract.unwrap_or_default();
        let graph = self.graph.unwrap_or_default();
        let mut require = |key: &str, present: bool| {
            if !present {
                problems.push(format!("{key}: missing"));
            }
        };
        require("extract.exclude", extract.exclude.is_some());
        require("extract.max_file_size", extract.max_file_size.is_some());
        require("extract.languages", extract.languages.is_some());
        require("graph.namespace", graph.namespace.is_some());
        require("graph.batch_size", graph.batch_size.is_some());
        require("graph.write_tasks", graph.write_tasks.is_some());

        let mut languages = Vec::new();
        for name in extract.languages.clone().unwrap_or_default() {
            match Lang::from_name(&name) {
                Some(lang) => languages.push(lang),
                None => problems.push(format!(
                    "extract.languages: unknown language `{name}`, expected one of {}",
                    Lang::ALL.map(|l| l.as_str()).join(", ")
                )),
            }
        }
        for glob in extract.exclude.iter().flatten() {
            if let Err(err) = globset::Glob::new(glob) {
                problems.push(format!("extract.exclude: invalid glob `{glob}`: {err}"));
            }
        }
        if extract.max_file_size == Some(0) {
            problems.push("extract.max_file_size: must be > 0, got 0".into());
        }
        if let Some(ns) = &graph.namespace
            && (ns.is_empty() || !ns.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            problems.push(format!(
                "graph.namespace: must be letters, digits or `_`, got `{ns}`"
            ));
        }
        if graph.batch_size == Some(0) {
            problems.push("graph.batch_size: must be > 0, got 0".into());
        }
        let store = match graph.store.as_deref().unwrap_or("").trim() {
            "" => Store::Workspace,
            "memory" | "mem://" => Store::Memory,
            url if url.starts_with("ws://") || url.starts_with("wss://") => {
                Store::Remote(url.to_string())
            }
            other => {
                problems.push(format!(
                    "graph.store: expected \"\", \"memory\" or a ws:// / wss:// URL, got `{other}`"
                ));
                Store::Workspace
            }
        };
        if !problems.is_empty() {
            return Err(ConfigError::Invalid { path, problems });
        }
        Ok(Config {
            extract: ExtractConfig {
                exclude: extract.exclude.unwrap_or_default(),
                max_file_size: extract.max_file_size.unwrap_or(1),
                languages,
                respect_gitignore: extract.respect_gitignore.unwrap_or(true),
                include_hidden: extract.include_hidden.unwrap_or(false),
                threads: extract.threads.unwrap_or(0),
            },
            graph: GraphConfig {
                store,
                namespace: graph.namespace.unwrap_or_default(),
                batch_size: graph.batch_size.unwrap_or(1),
                write_tasks: graph.write_tasks.unwrap_or(0),
            },
        })
    }
}

/// The embedded default brain configuration.
pub const DEFAULT_BRAIN_YAML: &str = include_str!("../../../config/brain.yaml");

/// The brain stage's configuration (`config/brain.yaml`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrainConfig {
    /// Summary writing.
    pub summary: SummaryConfig,
    /// Embeddings.
    pub embed: EmbedConfig,
    /// Search.
    pub search: SearchConfig,
    /// Optional LLM refinement.
    pub llm: LlmConfig,
}

/// `summary:` section.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SummaryConfig {
    /// Budget per summary in estimated tokens.
    pub max_tokens: usize,
    /// Verbatim source lines per summary.
    pub max_code_lines: usize,
    /// Names listed per sentence.
    pub max_list: usize,
    /// Markdown globs mined for recipes.
    pub docs: Vec<String>,
}

/// `embed:` section.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedConfig {
    /// Embed during `brain`.
    pub enabled: bool,
    /// Model folder name or path.
    pub model: String,
    /// ONNX Runtime library path ("" = default).
    pub runtime: String,
    /// Sentences per batch.
    pub batch: usize,
    /// Threads (0 = all cores).
    pub threads: usize,
    /// Tokens per sentence.
    pub max_tokens: usize,
}

/// `search:` section.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchConfig {
    /// Results shown.
    pub limit: usize,
    /// Candidates per index.
    pub candidates: usize,
    /// RRF constant.
    pub rrf_k: f64,
    /// Weight of the usage prior in fusion (0 = off).
    pub prior_weight: f64,
}

/// `llm:` section.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// Endpoint base URL ("" = off).
    pub endpoint: String,
    /// Model name sent to the endpoint.
    pub model: String,
}

fn merge_yaml(base: &mut serde_yaml_ng::Value, over: serde_yaml_ng::Value) {
    match (base, over) {
        (serde_yaml_ng::Value::Mapping(b), serde_yaml_ng::Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge_yaml(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

/// Loads the brain defaults, overlays `path` when given (any subset of keys), and validates.
pub fn load_brain(path: Option<&Path>) -> Result<BrainConfig, ConfigError> {
    let text = read_user(path)?;
    brain_from(text.as_ref().map(|(t, p)| (t.as_str(), p.as_path())))
}

/// Parses brain YAML text over the defaults (tests and callers that hold the text).
pub fn brain_from_yaml(text: &str) -> Result<BrainConfig, ConfigError> {
    brain_from(Some((text, Path::new("<yaml>"))))
}

fn brain_from(user: Option<(&str, &Path)>) -> Result<BrainConfig, ConfigError> {
    let cfg: BrainConfig = layered(DEFAULT_BRAIN_YAML, "<embedded config/brain.yaml>", user)?;
    let mut problems = Vec::new();
    if cfg.summary.max_tokens < 16 {
        problems.push(format!(
            "summary.max_tokens: must be >= 16, got {}",
            cfg.summary.max_tokens
        ));
    }
    if cfg.summary.max_list == 0 {
        problems.push("summary.max_list: must be > 0, got 0".to_string());
    }
    for glob in &cfg.summary.docs {
        if let Err(err) = globset::Glob::new(glob) {
            problems.push(format!("summary.docs: invalid glob `{glob}`: {err}"));
        }
    }
    if cfg.embed.batch == 0 {
        problems.push("embed.batch: must be > 0, got 0".to_string());
    }
    if cfg.search.limit == 0 || cfg.search.candidates == 0 {
        problems.push("search.limit and search.candidates: must be > 0".to_string());
    }
    if !cfg.llm.endpoint.is_empty()
        && !cfg.llm.endpoint.starts_with("http://")
        && !cfg.llm.endpoint.starts_with("https://")
    {
        problems.push(format!(
            "llm.endpoint: expected an http:// or https:// URL, got `{}`",
            cfg.llm.endpoint
        ));
    }
    if !problems.is_empty() {
        return Err(ConfigError::Invalid {
            path: user.map(|(_, p)| p.to_path_buf()),
            problems,
        });
    }
    Ok(cfg)
}

/// The embedded default LoRA training configuration.
pub const DEFAULT_TRAIN_LORA_YAML: &str = include_str!("../../../config/train_lora.yaml");
/// The embedded default QLoRA training configuration.
pub const DEFAULT_TRAIN_QLORA_YAML: &str = include_str!("../../../config/train_qlora.yaml");

/// The train stage's configuration (`config/train_lora.yaml`, `config/train_qlora.yaml`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Adapter shape.
    pub lora: LoraSection,
    /// Optimisation.
    pub train: TrainSection,
    /// Base weights.
    pub base: BaseSection,
}

/// `lora:` section.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoraSection {
    /// Rank.
    pub r: usize,
    /// Scale numerator.
    pub alpha: f64,
    /// Dropout on the LoRA input.
    pub dropout: f64,
    /// Adapted projections.
    pub target_modules: Vec<String>,
}

/// `train:` section.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainSection {
    /// Peak learning rate.
    pub lr: f64,
    /// Optimizer steps.
    pub max_steps: usize,
    /// Passes over the data (0 = unbounded).
    pub epochs: usize,
    /// Examples per optimizer step.
    pub batch_size: usize,
    /// Examples per forward/backward.
    pub micro_batch_size: usize,
    /// Tokens per example.
    pub max_seq_len: usize,
    /// Linear warm-up steps.
    pub warmup_steps: usize,
    /// Decoupled weight decay.
    pub weight_decay: f64,
    /// Gradient-norm clip (0 = off).
    pub grad_clip: f64,
    /// Steps between eval losses.
    pub eval_interval: usize,
    /// Held-out share.
    pub eval_split: f64,
    /// Steps between checkpoints.
    pub save_every: usize,
    /// Seed of data order, initialisation and dropout.
    pub seed: u64,
    /// AdamW betas.
    pub betas: [f64; 2],
    /// AdamW epsilon.
    pub eps: f64,
}

/// `base:` section.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BaseSection {
    /// `f32`, or a GGUF block type for QLoRA (`q4_0`, `q4_1`, `q8_0`).
    pub dtype: String,
}

/// Loads the LoRA training defaults (or QLoRA ones with `qlora`), overlays `path` when given, and validates.
pub fn load_train(path: Option<&Path>, qlora: bool) -> Result<TrainConfig, ConfigError> {
    let defaults = if qlora {
        DEFAULT_TRAIN_QLORA_YAML
    } else {
        DEFAULT_TRAIN_LORA_YAML
    };
    let text = read_user(path)?;
    let cfg: TrainConfig = layered(
        defaults,
        "<embedded config/train_lora.yaml>",
        text.as_ref().map(|(t, p)| (t.as_str(), p.as_path())),
    )?;
    validate_train(&cfg).map_err(|problems| ConfigError::Invalid {
        path: path.map(Path::to_path_buf),
        problems,
    })?;
    Ok(cfg)
}

/// Parses training YAML text over the LoRA defaults.
pub fn train_from_yaml(text: &str) -> Result<TrainConfig, ConfigError> {
    let cfg: TrainConfig = layered(
        DEFAULT_TRAIN_LORA_YAML,
        "<embedded>",
        Some((text, Path::new("<yaml>"))),
    )?;
    validate_train(&cfg).map_err(|problems| ConfigError::Invalid {
        path: None,
        problems,
    })?;
    Ok(cfg)
}

fn validate_train(cfg: &TrainConfig) -> Result<(), Vec<String>> {
    let mut p = Vec::new();
    let t = &cfg.train;
    if cfg.lora.r == 0 {
        p.push("lora.r: must be > 0".to_string());
    }
    if !(0.0..1.0).contains(&cfg.lora.dropout) {
        p.push(format!(
            "lora.dropout: must be in [0, 1), got {}",
            cfg.lora.dropout
        ));
    }
    for m in &cfg.lora.target_modules {
        if !crate::llm::TARGET_MODULES.contains(&m.as_str()) {
            p.push(format!(
                "lora.target_modules: `{m}` is not one of {}",
                crate::llm::TARGET_MODULES.join(", ")
            ));
        }
    }
    if cfg.lora.target_modules.is_empty() {
        p.push("lora.target_modules: name at least one projection".to_string());
    }
    if t.micro_batch_size == 0
        || t.batch_size == 0
        || !t.batch_size.is_multiple_of(t.micro_batch_size)
    {
        p.push(format!(
            "train.batch_size: must be a positive multiple of train.micro_batch_size ({}), got {}",
            t.micro_batch_size, t.batch_size
        ));
    }
    if t.max_steps == 0 {
        p.push("train.max_steps: must be > 0".to_string());
    }
    if t.max_seq_len < 8 {
        p.push(format!(
            "train.max_seq_len: must be >= 8, got {}",
            t.max_seq_len
        ));
    }
    if t.lr.is_nan() || t.lr <= 0.0 {
        p.push(format!("train.lr: must be > 0, got {}", t.lr));
    }
    if !(0.0..0.5).contains(&t.eval_split) {
        p.push(format!(
            "train.eval_split: must be in [0, 0.5), got {}",
            t.eval_split
        ));
    }
    if t.eval_interval == 0 || t.save_every == 0 {
        p.push("train.eval_interval and train.save_every: must be > 0".to_string());
    }
    if !["f32", "q4_0", "q4_1", "q8_0"].contains(&cfg.base.dtype.as_str()) {
        p.push(format!(
            "base.dtype: expected f32, q4_0, q4_1 or q8_0, got `{}`",
            cfg.base.dtype
        ));
    }
    if p.is_empty() { Ok(()) } else { Err(p) }
}

/// The text of the user's config file, when one was given.
fn read_user(path: Option<&Path>) -> Result<Option<(String, PathBuf)>, ConfigError> {
    path.map(|path| {
        std::fs::read_to_string(path)
            .map(|t| (t, path.to_path_buf()))
            .map_err(|cause| ConfigError::Read {
                path: path.to_path_buf(),
                cause,
            })
    })
    .transpose()
}

/// Deep-merges optional user YAML over embedded defaults and deserialises the result.
fn layered<T: serde::de::DeserializeOwned>(
    defaults: &str,
    embedded_name: &str,
    user: Option<(&str, &Path)>,
) -> Result<T, ConfigError> {
    let parse_err = |path: &Path| {
        let path = path.to_path_buf();
        move |err: serde_yaml_ng::Error| ConfigError::Parse {
            path,
            message: err.to_string(),
        }
    };
    let embedded = Path::new(embedded_name);
    let mut value: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(defaults).map_err(parse_err(embedded))?;
    let mut file = embedded.to_path_buf();
    if let Some((text, path)) = user
        && !text.trim().is_empty()
    {
        let over: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(parse_err(path))?;
        merge_yaml(&mut value, over);
        file = path.to_path_buf();
    }
    serde_yaml_ng::from_value(value).map_err(parse_err(&file))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let cfg = load(None).unwrap();
        assert_eq!(cfg.extract.max_file_size, 1 << 20);
        assert!(cfg.extract.exclude.contains(&"node_modules".to_string()));
        assert_eq!(cfg.extract.languages.len(), 6);
        assert_eq!(cfg.graph.store, Store::Workspace);
    }

    #[test]
    fn override_merges_and_errors_name_the_key() {
        let cfg = from_yaml("extract:\n  max_file_size: 10\ngraph:\n  store: memory\n").unwrap();
        assert_eq!(cfg.extract.max_file_size, 10);
        assert_eq!(cfg.extract.languages.len(), 6);
        assert_eq!(cfg.graph.store, Store::Memory);

        let err = from_yaml("extract:\n  exclud: [x]\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `exclud`"), "{err}");
        let err = from_yaml("extract:\n  languages: [cobol]\n  max_file_size: 0\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("extract.languages: unknown language `cobol`"),
            "{err}"
        );
        assert!(
            err.contains("extract.max_file_size: must be > 0, got 0"),
            "{err}"
        );
        let err = from_yaml("graph:\n  store: http://x\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("graph.store"), "{err}");
    }

    #[test]
    fn brain_defaults_and_overrides() {
        let cfg = load_brain(None).unwrap();
        assert_eq!(cfg.summary.max_tokens, 200);
        assert_eq!(cfg.embed.model, "all-MiniLM-L6-v2");
        let cfg = brain_from_yaml("summary:\n  max_tokens: 64\n").unwrap();
        assert_eq!(cfg.summary.max_tokens, 64);
        assert_eq!(cfg.summary.max_code_lines, 3);
        let err = brain_from_yaml("summary:\n  max_tokns: 64\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_tokns"), "{err}");
        let err = brain_from_yaml("embed:\n  batch: 0\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("embed.batch"), "{err}");
    }

    #[test]
    fn unreadable_config_names_the_file_and_its_cause_once() {
        let err = load(Some(Path::new("/nonexistent/nanodex.yaml"))).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("/nonexistent/nanodex.yaml: cannot read config: "),
            "{text}"
        );
        // The cause is in the message and not also a `source()`, so `{:#}` chains print it once.
        assert!(std::error::Error::source(&err).is_none(), "{text}");
    }
}
