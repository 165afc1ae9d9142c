//! Errors of the core library: one enum per stage, wrapped by [`Error`].

use std::path::PathBuf;

/// Any error of the core library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Extraction.
    #[error(transparent)]
    Extract(#[from] ExtractError),
    /// Graph store.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// Embeddings.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// Brain.
    #[error(transparent)]
    Brain(#[from] BrainError),
    /// Models, training, generation, export.
    #[error(transparent)]
    Llm(#[from] crate::llm::LlmError),
}

/// Result alias of the core library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Configuration errors.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{}: cannot read config: {cause}", path.display())]
    Read {
        /// File.
        path: PathBuf,
        /// Cause (in the message, not a `source()`, so `{:#}` chains print it once).
        cause: std::io::Error,
    },
    /// The YAML is malformed or has an unknown key.
    #[error("{}: {message}", path.display())]
    Parse {
        /// File.
        path: PathBuf,
        /// The parser's message (names the key and line).
        message: String,
    },
    /// Values are out of range; every problem names its YAML path.
    #[error("{}invalid configuration: {}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default(), problems.join("; "))]
    Invalid {
        /// File, when one was given.
        path: Option<PathBuf>,
        /// `key: problem` lines.
        problems: Vec<String>,
    },
}

/// Extraction errors (bad files are not errors: they are skipped and counted).
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The repository path does not exist.
    #[error("{}: no such directory; pass the path of a repository checkout", path.display())]
    RepoMissing {
        /// Path given.
        path: PathBuf,
    },
    /// The repository path is not a directory.
    #[error("{}: not a directory; pass the repository's root folder, not a file", path.display())]
    NotADirectory {
        /// Path given.
        path: PathBuf,
    },
    /// The repository folder cannot be listed (permissions).
    #[error("{}: cannot read this folder ({cause}); check its permissions", path.display())]
    Unreadable {
        /// Path given.
        path: PathBuf,
        /// Cause.
        cause: std::io::Error,
    },
    /// Nothing in the folder is a source file nanodex reads.
    #[error("{}: no source files to extract (nanodex reads Python, Java, C++, C, JavaScript and TypeScript){}", path.display(), if skipped > &0 { format!("; {skipped} files were skipped (binary, too large, excluded or unreadable)") } else { String::new() })]
    NoSources {
        /// Path given.
        path: PathBuf,
        /// Files seen and skipped.
        skipped: u64,
    },
    /// I/O on the workspace (cache files).
    #[error("{}: {cause}", path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// Cause (in the message, not a `source()`, so `{:#}` chains print it once).
        cause: std::io::Error,
    },
    /// The run was cancelled.
    #[error("cancelled")]
    Cancelled,
}

/// Graph store errors.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Another process holds the workspace.
    #[error("{}: workspace is locked by another nanodex process (pid {pid}); wait for it to finish or use another --workspace", path.display())]
    Locked {
        /// Lock file.
        path: PathBuf,
        /// Holder's pid, as written in the lock file (`?` when unknown).
        pid: String,
    },
    /// Another writer holds the lease on the server namespace (see `graph::lease`).
    #[error(
        "graph store: {place} is being written by pid {pid} on {host} (workspace {workspace}; lease renewed {age_secs} s ago); \
         wait for that run to finish, or set another graph.namespace; a lease not renewed for {ttl_secs} s is taken over"
    )]
    LeaseHeld {
        /// Server and namespace.
        place: String,
        /// Holder's host.
        host: String,
        /// Holder's pid.
        pid: u32,
        /// Holder's workspace.
        workspace: String,
        /// Seconds since the holder last renewed the lease.
        age_secs: u64,
        /// Seconds after which a lease not renewed is taken over.
        ttl_secs: u64,
    },
    /// This writer's lease on the server namespace went to another writer (not renewed for too long): the write
    /// stopped before making anything current.
    #[error(
        "graph store: lost the writer lease of {place} to another writer (a lease is taken over when not renewed \
         for {ttl_secs} s); this run's graph was not made current; run extract again"
    )]
    LeaseLost {
        /// Server and namespace.
        place: String,
        /// Seconds after which a lease not renewed is taken over.
        ttl_secs: u64,
    },
    /// No graph has been written yet.
    #[error("{}: no code graph yet; run `nanodex extract <REPO> --workspace {}` first", path.display(), workspace.display())]
    Empty {
        /// Store location.
        path: PathBuf,
        /// Workspace.
        workspace: PathBuf,
    },
    /// A SurrealDB server refused the sign-in.
    #[error(
        "graph store: {url} refused the sign-in as `{user}`: {message}; set NANODEX_DB_USER and NANODEX_DB_PASS to an account of that server"
    )]
    SignIn {
        /// The server.
        url: String,
        /// The user name tried.
        user: String,
        /// The server's message.
        message: String,
    },
    /// A SurrealDB call failed.
    #[error("graph store: {context}: {message}")]
    Db {
        /// What was being done.
        context: String,
        /// SurrealDB's message.
        message: String,
    },
    /// Workspace file I/O.
    #[error("{}: {cause}", path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// Cause (in the message, not a `source()`, so `{:#}` chains print it once).
        cause: std::io::Error,
    },
    /// `graph query` was given a statement that writes.
    #[error("graph query is read-only: `{0}` is not allowed")]
    ReadOnly(String),
    /// No node matched.
    #[error(
        "no node named `{0}`; try `nanodex graph query \"SELECT qname FROM function WHERE name ~ '{0}'\"`"
    )]
    NotFound(String),
    /// The graph holds an edge between node types its kind does not join (a bug in extraction): nothing written.
    #[error(
        "graph store: refusing the graph: a `{kind}` edge from {from} to {to}, but {kind} joins {ins} to {outs} \
         (a bug in nanodex's extraction; nothing was written)"
    )]
    BadEdge {
        /// Edge kind.
        kind: &'static str,
        /// Source node (`table:key`).
        from: String,
        /// Target node (`table:key`).
        to: String,
        /// Node tables the kind may start at.
        ins: String,
        /// Node tables the kind may end at.
        outs: String,
    },
}

impl GraphError {
    pub(crate) fn db(context: impl Into<String>) -> impl FnOnce(surrealdb::Error) -> GraphError {
        let context = context.into();
        move |err| GraphError::Db {
            context,
            message: err.to_string(),
        }
    }

    /// Like [`GraphError::db`], for an error of the datastore's own layers (`graph::bulk`), with its causes.
    pub(crate) fn engine(context: impl Into<String>) -> impl FnOnce(anyhow::Error) -> GraphError {
        let context = context.into();
        move |err| GraphError::Db {
            context,
            message: format!("{err:#}"),
        }
    }
}

/// Embedding model errors.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// A model file is missing.
    #[error("{}: missing embedding model file; run `bash scripts/models.sh` (or set NANODEX_MODELS / `embed.model` in config/brain.yaml)", path.display())]
    Missing {
        /// File.
        path: PathBuf,
    },
    /// The ONNX Runtime library could not be loaded.
    #[error("{}: cannot load the ONNX Runtime library ({message}); run `bash scripts/models.sh` or set ORT_DYLIB_PATH", path.display())]
    Runtime {
        /// Library path.
        path: PathBuf,
        /// Loader message.
        message: String,
    },
    /// The model or tokenizer could not be loaded.
    #[error("{}: {message}", path.display())]
    Model {
        /// File.
        path: PathBuf,
        /// Message.
        message: String,
    },
    /// Inference failed.
    #[error("embedding failed: {0}")]
    Run(String),
}

/// Brain stage errors.
#[derive(Debug, thiserror::Error)]
pub enum BrainError {
    /// The secret rules do not compile.
    #[error("secret rules: {0}")]
    Rules(String),
    /// Workspace file I/O.
    #[error("{}: {cause}", path.display())]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        cause: std::io::Error,
    },
    /// No brain has been built yet.
    #[error("no brain in {}; run `nanodex brain --workspace {}` first", workspace.display(), workspace.display())]
    Empty {
        /// Workspace.
        workspace: PathBuf,
    },
    /// The brain was built without embeddings, and vector search was asked for.
    #[error("the brain in {} has no embeddings; run `nanodex brain-embed --workspace {}`", workspace.display(), workspace.display())]
    NoEmbeddings {
        /// Workspace.
        workspace: PathBuf,
    },
    /// An LLM endpoint failed.
    #[error("LLM endpoint {endpoint}: {message}")]
    Llm {
        /// Endpoint URL.
        endpoint: String,
        /// Message.
        message: String,
    },
    /// The operation was cancelled.
    #[error("cancelled")]
    Cancelled,
}
