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
            },
        })
    }
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
