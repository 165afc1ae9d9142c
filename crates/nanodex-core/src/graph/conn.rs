//! The connection under [`GraphStore`](super::GraphStore): an embedded datastore that this module builds itself
//! (SurrealKV on disk, or the in-memory engine), or a remote SurrealDB server. Both run the same SurrealQL.
//!
//! The embedded datastore is built here rather than through the SDK's `connect("surrealkv://…")` because the
//! SDK gives the storage engine no settings, and SurrealKV then sizes its memtable from the machine's memory
//! (1 GiB at 16–64 GiB, 4 GiB above) and its block cache to half of it. Our defaults ([`STORAGE_DEFAULTS`]) are
//! overridden by `SURREAL_*` environment variables, the names the SurrealDB server reads (e.g.
//! `SURREAL_SURREALKV_MAX_MEMTABLE_SIZE=134217728` for 128 MiB).

use std::future::IntoFuture;
use std::sync::{Arc, Weak};

use surrealdb::Surreal;
use surrealdb::engine::any::Any;
use surrealdb::engine::local::Db;
use surrealdb::types::{Object, SurrealValue, Value};
use surrealdb::{IndexedResults, Result};
use surrealdb_cnf::ConfigMap;
use surrealdb_engine_local::Datastore;

/// Storage settings of the embedded engine, before `SURREAL_*` overrides. SurrealKV's own defaults grow with
/// the machine: a memtable of 1 GiB at 16–64 GiB of memory (4 GiB above) and a block cache of half the memory
/// less 1 GiB, which a long-running `serve` on a large graph would fill. Here both are fixed:
/// - memtable 64 MiB: a full build of JDK java.base (270k records) peaks at 378-392 MiB, against 450-468 MiB with
///   128 MiB and 537-550 MiB with 256 MiB (which holds the whole graph), at the same speed (three paired fresh
///   builds: 9.1-10.4 s, 9.3-10.9 s, 9.6-10.9 s). Smaller memtables used to cost time (64 MiB was 40% slower
///   than 256 MiB) only because SurrealDB's transaction cache missed every table definition, which a flushed
///   catalog then served from disk; the vendored `surrealdb-datastore` fixes that. A larger repository flushes
///   as it goes instead of holding gigabytes. One transaction must fit in the memtable: an incremental write
///   of 35,132 records (160,381 keys, 20 MB) failed with 32 MiB, so `MAX_INCREMENTAL_RECORDS` is 30,000. The
///   more flushes a smaller memtable brings used to make a SurrealKV 0.21.4 deadlock between range scans and
///   compaction commits likelier; the vendored, patched copy (`vendor/surrealkv/PATCHES.md`) takes those locks
///   in one order;
/// - block cache 64 MiB: reads are index lookups and short traversals.
pub(super) const STORAGE_DEFAULTS: [(&str, &str); 2] = [
    ("surrealkv_max_memtable_size", "67108864"),
    ("surrealkv_block_cache_capacity", "67108864"),
];

/// A connection to the graph's SurrealDB.
#[derive(Clone)]
pub(super) enum Conn {
    /// Embedded engine of this process. The SDK's engine holds the only strong datastore handle and shuts it
    /// down on its runtime once the last connection is dropped (a handle of ours dropped off the runtime, as the
    /// desktop app does, would make SurrealKV close without one). The weak handle reaches the datastore's own
    /// transactions for [`bulk`](super::bulk) writes, upgraded only for the length of one.
    Local(Surreal<Db>, Weak<Datastore>),
    /// A SurrealDB server.
    Remote(Surreal<Any>),
}

/// How an embedded store makes its commits durable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Durability {
    /// SurrealDB's default: a commit returns once its write-ahead log is on disk (commits waiting at the same
    /// time share one fsync).
    EachCommit,
    /// Commits leave the log to the OS; the caller makes the store durable after closing it (`fsutil::sync_tree`)
    /// before anything points at it. For a store that is thrown away unless it is finished: the `.next` store of a
    /// full rebuild. On JDK java.base the store phase took 5114-5226 ms against 5280-5474 ms (4 pairs): 787 fsyncs
    /// fewer, and no writer waiting on the commit coordinator's thread for one. Its memtable rotations do not
    /// fsync the log segment they close either (vendored SurrealKV, patch 7: the writers waited 84-89 ms for each
    /// of a JDK build's four).
    AtClose,
}

/// Opens the embedded datastore at `path` (`memory` or `surrealkv://<absolute path>`).
pub(super) async fn open_local(
    path: &str,
    durability: Durability,
) -> std::result::Result<Conn, String> {
    let sync = match durability {
        Durability::EachCommit => None,
        Durability::AtClose => Some(("datastore_sync", "never")),
    };
    let config = storage_config(sync);
    // As the SDK's own connect does: maintenance tasks start only after the version check and bootstrap, so a
    // fresh datastore is never written before its version key.
    let ds = Datastore::builder()
        .with_config(config)
        .without_maintenance_tasks()
        .build_with_path(path)
        .await
        .map_err(|e| format!("{e:#}"))?;
    ds.check_version().await.map_err(|e| format!("{e:#}"))?;
    ds.bootstrap().await.map_err(|e| format!("{e:#}"))?;
    ds.start_maintenance_tasks();
    let weak = Arc::downgrade(&ds);
    let db = Surreal::<Db>::unstable_from_datastore(ds, None)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Conn::Local(db, weak))
}

/// The embedded engine's settings: [`STORAGE_DEFAULTS`] and `extra`, under the `SURREAL_*` environment variables.
fn storage_config(extra: Option<(&str, &str)>) -> ConfigMap {
    STORAGE_DEFAULTS
        .iter()
        .chain(&extra)
        .fold(ConfigMap::empty(), |map, (k, v)| map.with_key_value(*k, *v))
        .join(ConfigMap::from_env())
}

/// Opens the SurrealKV tree of the embedded store at `path` itself, with the settings SurrealDB's datastore gives
/// it (`surrealdb-kvs-surrealkv` 3.3.5, `Datastore::new`), for a bulk load while SurrealDB has it closed.
pub(super) fn open_tree(path: &std::path::Path) -> anyhow::Result<surrealkv::Tree> {
    use surrealdb_cnf::Config as _;
    let mut cfg = surrealdb_kvs_surrealkv::SurrealKvConfig::default();
    cfg.parse(&storage_config(None));
    let retention = cfg.retention.as_nanos().try_into().unwrap_or(u64::MAX);
    let tree = surrealkv::TreeBuilder::new()
        .with_enable_vlog(cfg.enable_vlog)
        .with_vlog_max_file_size(cfg.vlog_max_file_size)
        .with_vlog_value_threshold(cfg.vlog_threshold)
        .with_versioning(cfg.versioned, retention)
        .with_versioned_index(cfg.versioned && cfg.versioned_index)
        .with_max_memtable_size(cfg.max_memtable_size)
        .with_block_cache_capacity(cfg.block_cache_capacity)
        .with_block_size(cfg.block_size)
        .with_path(path.to_path_buf())
        .build()?;
    Ok(tree)
}

/// Largest reply read from a server (the SDK's default is 64 MiB): whole tables are read at once (`load_graph`,
/// `graph query`), and the Python standard library's `function` table alone is larger than that; the server
/// sends replies of any size (its own limit, 128 MiB by default, is on requests).
pub(super) const MAX_REPLY_BYTES: usize = 4 << 30;

/// Connects to a SurrealDB server.
pub(super) async fn open_remote(url: &str) -> Result<Conn> {
    let websocket = surrealdb::opt::WebsocketConfig::new().max_message_size(MAX_REPLY_BYTES);
    let config = surrealdb::opt::Config::new().websocket(websocket)?;
    Ok(Conn::Remote(
        surrealdb::engine::any::connect((url, config)).await?,
    ))
}

impl Conn {
    /// A query; bind its parameters with [`Query::bind`] and await it.
    pub(super) fn query(&self, sql: impl Into<String>) -> Query<'_> {
        Query {
            conn: self,
            sql: sql.into(),
            vars: Object::new(),
        }
    }

    /// Selects namespace `ns` and database `db`.
    pub(super) async fn use_ns_db(&self, ns: &str, db: &str) -> Result<()> {
        match self {
            Conn::Local(c, _) => c.use_ns(ns).use_db(db).await.map(|_| ()),
            Conn::Remote(c) => c.use_ns(ns).use_db(db).await.map(|_| ()),
        }
    }

    /// Selects database `db` in the current namespace.
    pub(super) async fn use_db(&self, db: &str) -> Result<()> {
        match self {
            Conn::Local(c, _) => c.use_db(db).await.map(|_| ()),
            Conn::Remote(c) => c.use_db(db).await.map(|_| ()),
        }
    }

    /// The embedded datastore, while the connection holds it (`None` for a server).
    pub(super) fn datastore(&self) -> Option<Arc<Datastore>> {
        match self {
            Conn::Local(_, ds) => ds.upgrade(),
            Conn::Remote(_) => None,
        }
    }

    /// Signs in as a root user (servers only; the embedded engine runs without authentication).
    pub(super) async fn signin_root(&self, username: String, password: String) -> Result<()> {
        if let Conn::Remote(c) = self {
            c.signin(surrealdb::opt::auth::Root { username, password })
                .await?;
        }
        Ok(())
    }

    /// Drops the connection. The embedded datastore shuts down (flushes, releases its lock) in the background
    /// once its last handle is gone; [`GraphStore::close`](super::GraphStore::close) waits for that.
    pub(super) fn close(self) {
        match self {
            Conn::Local(db, _) => drop(db),
            Conn::Remote(db) => drop(db),
        }
    }
}

/// A query being built: SurrealQL and its bound parameters.
pub(super) struct Query<'a> {
    conn: &'a Conn,
    sql: String,
    vars: Object,
}

impl Query<'_> {
    /// Binds parameter `$name`. (Collected into one object, which the SDK takes without copying; it copies
    /// each value bound as a pair.)
    pub(super) fn bind(mut self, (name, value): (impl Into<String>, impl SurrealValue)) -> Self {
        self.vars.insert(name.into(), value.into_value());
        self
    }
}

impl<'a> IntoFuture for Query<'a> {
    type Output = Result<IndexedResults>;
    type IntoFuture = std::pin::Pin<Box<dyn Future<Output = Self::Output> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        let Query { conn, sql, vars } = self;
        match conn {
            Conn::Local(c, _) => c.query(sql).bind(Value::Object(vars)).into_future(),
            Conn::Remote(c) => c.query(sql).bind(Value::Object(vars)).into_future(),
        }
    }
}
