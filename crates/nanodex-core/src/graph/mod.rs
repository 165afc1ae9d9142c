//! Stage 2, the graph store: a [`CodeGraph`] in, SurrealDB records out; and the read queries over them.
//!
//! Only this module talks to SurrealDB. Layout: namespace `nanodex` (configurable), database `meta` holds the
//! pointer `state:current = {db, generation}`, and the graph lives in database `g<N>`: node tables `repository`,
//! `package`, `module`, `class`, `function`, `external` and relation tables named after [`EdgeKind`]s.
//!
//! Writes never leave a half-written graph behind:
//! - a full build goes into a fresh database `g<N+1>` and the pointer moves only when it is complete, so a killed
//!   run leaves the previous graph readable and the next run starts over (orphaned databases are removed);
//! - an incremental write applies the difference to the previous graph (deleted, changed and new records) in one
//!   transaction. The difference is computed against fingerprints saved beside the store (`graph.state`), which
//!   are trusted only when their generation matches the store's; otherwise the run falls back to a full build.
//!
//! A server's namespace takes one writer at a time ([`lease`]); the embedded store, one process (the workspace lock).
//!
//! All queries bind their values as parameters; table names come from the [`NodeType`] / [`EdgeKind`] enums.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use surrealdb::types::{Array, Object, RecordId, Value};

use crate::config::{GraphConfig, Store};
use crate::error::GraphError;
use crate::extract::{
    CodeGraph, Edge, EdgeKind, Node, NodeType, ResolveStats, free_at_end, with_scratch,
};
use crate::fsutil::{FileLock, LockError, try_lock, write_atomic, write_atomic_parts};
use crate::progress::{ProgressEvent, Sink};

mod brain;
mod bulk;
mod conn;
mod lease;
pub use brain::Hit;
use conn::Conn;

const SCHEMA: &str = include_str!("schema.surql");
/// Makes database `$db` (generation `$generation`) the current graph; run in `meta`.
const SWITCH: &str =
    "UPSERT state:current CONTENT { db: $db, generation: $generation } RETURN NONE";
// 3: ids as XXH3-128 hashes in columns sorted by hash, little-endian (2: a postcard map of id strings; 1: BLAKE3
// fingerprints); a state of another version is ignored and the next write is a full one.
const STATE_VERSION: u32 = 3;
/// Most statements in flight when `graph.write_tasks` is 0 (one per core): only 2 were measured (on 2 cores), and
/// the on-disk store commits one writer at a time, so many more would mostly queue.
const MAX_AUTO_WRITE_TASKS: usize = 4;

/// Most records (written + deleted) an incremental write applies in its one transaction; a larger change is
/// written as a full build. One transaction must fit in the embedded engine's memtable (64 MiB) and in one
/// 100 MB write-ahead-log record: 35,132 JDK records were 160,381 keys and 20 MB of keys and values, and took
/// more than a 32 MiB memtable (its skiplist adds to each entry), so 30,000 keeps about half the memtable free.
const MAX_INCREMENTAL_RECORDS: usize = 30_000;

/// Frees an owned graph off this thread, once (a borrowed one is the caller's). Dropping a JDK-sized graph takes
/// tens of milliseconds, and its memory should be gone before the store's memtable flush. `at_end`: the write
/// allocates little after this (an incremental one), so a process that exits after its run leaves the graph to
/// the exit ([`crate::extract::set_exits_after_run`]).
fn release(graph: &mut Cow<'_, CodeGraph>, at_end: bool) {
    if let Cow::Owned(done) = graph {
        let done = std::mem::take(done);
        if !done.nodes.is_empty() || !done.edges.is_empty() {
            free_at_end(done, at_end);
        }
    }
}

/// Whether a log event is SurrealDB repeating, at ERROR level, an error that its function also returns to its
/// caller: `#[instrument(err)]` on the datastore's functions logs every `Err` (an event of target
/// `surrealdb::core::kvs::ds` with an `error` field and no message), and the caller decides what the error means.
/// When the store closes, SurrealDB cancels its node heartbeat (`update_node_with_timeout`), treats the
/// cancellation as the normal end of that task, and yet the instrumentation had printed
/// `ERROR surrealdb::core::kvs::ds: error=The query was not executed due to a cancelled transaction` after a
/// successful run (about one long run in twenty). Front ends drop these events: an error that matters reaches
/// nanodex as a `GraphError` or is logged again by the task that met it.
pub fn is_echoed_store_error(meta: &tracing::Metadata<'_>) -> bool {
    meta.is_event()
        && *meta.level() == tracing::Level::ERROR
        && meta.target() == "surrealdb::core::kvs::ds"
        && meta.fields().field("message").is_none()
        && meta.fields().field("error").is_some()
}

/// Files of a workspace's graph.
pub fn brain_dir(workspace: &Path) -> PathBuf {
    workspace.join("brain")
}

/// The embedded store's directory in `workspace`.
fn embedded_store_dir(workspace: &Path) -> PathBuf {
    brain_dir(workspace).join("graph.db")
}

/// Where `cfg` keeps `workspace`'s graph, for messages: the embedded store's directory, `memory`, or the server's
/// URL and namespace.
pub fn store_location(cfg: &GraphConfig, workspace: &Path) -> String {
    match &cfg.store {
        Store::Workspace => embedded_store_dir(workspace).display().to_string(),
        Store::Memory => "memory".into(),
        Store::Remote(url) => format!("{url} (namespace {})", cfg.namespace),
    }
}

/// An open graph store.
pub struct GraphStore {
    /// The connection (`None` only while a rebuild swaps the store's directory).
    db: Option<Conn>,
    ns: String,
    batch: usize,
    /// Statements in flight during a full write (at least 1).
    write_tasks: usize,
    /// Whether a full write into the embedded datastore puts its records through [`bulk`] (the default: loaded
    /// straight into a new on-disk store, through transactions otherwise) rather than SurrealQL.
    bulk: bool,
    /// Whether a full build replaces the store's directory (the embedded on-disk store) rather than switching
    /// databases inside it.
    rebuild_in_new_dir: bool,
    /// Most records one incremental write may touch ([`MAX_INCREMENTAL_RECORDS`]; lowered in tests).
    max_incremental: usize,
    /// The graph database in use (`g<N>`), when a graph exists.
    current: Option<String>,
    state_path: Option<PathBuf>,
    /// The state file, being read in the background since a writer opened the store (read by the first write).
    state_prefetch: Option<std::thread::JoinHandle<Option<StoreState>>>,
    location: PathBuf,
    workspace: PathBuf,
    _lock: Option<FileLock>,
    /// A writer's lease on a server's namespace ([`lease`]); `None` for the embedded engine, whose workspace lock
    /// is the only way in, and for readers.
    lease: Option<lease::Lease>,
}

/// Fingerprints of the records last written, for incremental diffs.
#[derive(Debug)]
struct StoreState {
    db: String,
    generation: u64,
    nodes: Saved,
    edges: Saved,
}

/// The records of one kind (nodes or edges) as the last write left them: each record's id hash and content
/// fingerprint, sorted by id hash, and the ids themselves (`table:key`) in one buffer, in the graph's order. A
/// JDK-sized state (a quarter million records) is read without an allocation per record, a diff is a merge of two
/// sorted columns, and an id is read only for a record to delete.
#[derive(Debug)]
struct Saved {
    hashes: Vec<u128>,
    fps: Vec<u64>,
    /// Where the record of each hash has its id (an index into `ends`).
    slots: Vec<u32>,
    /// Where each id ends in `ids`.
    ends: Vec<u32>,
    ids: Vec<u8>,
}

impl Saved {
    fn len(&self) -> usize {
        self.hashes.len()
    }

    /// The id (`table:key`) of the record with the `j`-th hash.
    fn id(&self, j: usize) -> Option<&str> {
        let slot = *self.slots.get(j)? as usize;
        let start = slot
            .checked_sub(1)
            .map_or(Some(0), |p| self.ends.get(p).map(|&e| e as usize))?;
        let end = *self.ends.get(slot)? as usize;
        std::str::from_utf8(self.ids.get(start..end)?).ok()
    }

    /// Reads a column as [`Column::encode_into`] wrote it; `None` when the bytes are cut short or inconsistent.
    fn decode(bytes: &mut &[u8]) -> Option<Saved> {
        fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            let (head, rest) = bytes.split_at_checked(n)?;
            *bytes = rest;
            Some(head)
        }
        fn words<'a, const N: usize>(
            bytes: &mut &'a [u8],
            n: usize,
        ) -> Option<impl Iterator<Item = [u8; N]> + use<'a, N>> {
            let raw = take(bytes, n.checked_mul(N)?)?;
            Some(raw.chunks_exact(N).map(|c| {
                let mut word = [0; N];
                word.copy_from_slice(c);
                word
            }))
        }
        let count = |bytes: &mut &[u8]| {
            usize::try_from(u64::from_le_bytes(words::<8>(bytes, 1)?.next()?)).ok()
        };
        let n = count(bytes)?;
        let hashes: Vec<u128> = words(bytes, n)?.map(u128::from_le_bytes).collect();
        let fps = words(bytes, n)?.map(u64::from_le_bytes).collect();
        let slots: Vec<u32> = words(bytes, n)?.map(u32::from_le_bytes).collect();
        let len = count(bytes)?;
        let ids = take(bytes, len)?.to_vec();
        let ends: Vec<u32> = words(bytes, n)?.map(u32::from_le_bytes).collect();
        let sorted = hashes.windows(2).all(|w| w[0] < w[1]);
        // Each record's id once: a slot out of range or taken twice would leave a record undeleted.
        let mut seen = vec![false; n];
        let slots_fit = slots.iter().all(|&s: &u32| {
            seen.get_mut(s as usize)
                .is_some_and(|x| !std::mem::replace(x, true))
        });
        let ends_fit = ends.windows(2).all(|w| w[0] <= w[1])
            && ends.last().map_or(0, |&e| e as usize) == ids.len();
        (sorted && slots_fit && ends_fit).then_some(Saved {
            hashes,
            fps,
            slots,
            ends,
            ids,
        })
    }
}

/// What an incremental write changes in one kind of record, from a merge of the new records' ids (sorted by
/// hash) with the saved ones.
#[derive(Debug, Default, PartialEq)]
struct Diff {
    /// New or changed records (indices into the graph's nodes or edges, ascending), and whether the store has
    /// the record already (an update) or not (an insert).
    changed: Vec<(usize, bool)>,
    /// Saved records the graph no longer has (indices into [`Saved`]).
    deleted: Vec<usize>,
}

impl Diff {
    /// `None` when two new records share an id hash (never seen; the caller then rebuilds in full).
    fn of(new: &Column, prev: &Saved) -> Option<Diff> {
        if new.sorted.windows(2).any(|w| w[0].0 == w[1].0) {
            return None;
        }
        let mut diff = Diff::default();
        let (mut i, mut j) = (0, 0);
        while i < new.sorted.len() || j < prev.len() {
            match (new.sorted.get(i), prev.hashes.get(j)) {
                (Some(&(hash, fp, k)), Some(&saved)) if hash == saved => {
                    if fp != prev.fps[j] {
                        diff.changed.push((k as usize, true));
                    }
                    i += 1;
                    j += 1;
                }
                (Some(&(hash, _, k)), saved) if saved.is_none_or(|&h| hash < h) => {
                    diff.changed.push((k as usize, false));
                    i += 1;
                }
                _ => {
                    diff.deleted.push(j);
                    j += 1;
                }
            }
        }
        diff.changed.sort_unstable();
        Some(diff)
    }
}

fn read_state(path: &Path) -> Option<StoreState> {
    let bytes = std::fs::read(path).ok()?;
    let ((version, db, generation), mut rest) =
        postcard::take_from_bytes::<(u32, String, u64)>(&bytes).ok()?;
    if version != STATE_VERSION {
        return None;
    }
    let nodes = Saved::decode(&mut rest)?;
    let edges = Saved::decode(&mut rest)?;
    rest.is_empty().then_some(StoreState {
        db,
        generation,
        nodes,
        edges,
    })
}

/// What a write did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WriteReport {
    /// `full` or `incremental`.
    pub mode: String,
    /// Database written.
    pub db: String,
    /// Records inserted (nodes + edges).
    pub inserted: u64,
    /// Records updated in place.
    pub updated: u64,
    /// Records deleted.
    pub deleted: u64,
    /// Time per part of the write, in milliseconds: `fingerprint` (record ids and content hashes), `state_load`,
    /// `db` (the statements), `state_save`.
    #[serde(default)]
    pub timings_ms: BTreeMap<String, u64>,
}

/// Summary of a stored graph (`graph-inspect`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Inspect {
    /// Node counts by type.
    pub nodes: BTreeMap<String, u64>,
    /// Node counts by type and language.
    pub nodes_by_lang: BTreeMap<String, BTreeMap<String, u64>>,
    /// Edge counts by kind.
    pub edges: BTreeMap<String, u64>,
    /// Modules with the most import edges (in + out).
    pub most_connected_modules: Vec<ModuleDegree>,
    /// Files with syntax errors.
    pub parse_error_files: Vec<String>,
    /// Share of call references resolved to an in-repo function (0..1).
    pub resolved_call_share: f64,
    /// Resolution counters of the last extraction.
    pub resolve: ResolveStats,
    /// When the graph was last written (RFC 3339) and from which root.
    pub extracted_at: String,
    /// Repository root of the last extraction.
    pub root: String,
    /// Database generation.
    pub generation: u64,
}

/// A module and its import degree.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModuleDegree {
    /// Path.
    pub path: String,
    /// Modules it imports.
    pub imports: u64,
    /// Modules importing it.
    pub imported_by: u64,
}

/// One end of an edge as shown by `graph show`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Neighbor {
    /// Edge kind.
    pub kind: String,
    /// `out` (this node → other) or `in` (other → this node).
    pub direction: String,
    /// The other end's id (`function:…`).
    pub id: String,
    /// The other end's qualified name.
    pub qname: String,
    /// The other end's path (empty for externals).
    pub path: String,
    /// The other end's first line.
    pub line: u64,
    /// Lines in the source file where the relation is written.
    pub lines: Vec<u64>,
    /// Resolution confidence.
    pub confidence: f64,
}

/// A node with its edges (`graph show`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeDetail {
    /// The node as stored (id as `table:key`).
    pub node: serde_json::Value,
    /// Edges in both directions.
    pub edges: Vec<Neighbor>,
}

/// The fields of every node table and of every edge table, with their SurrealQL types: the schema defines them
/// and an incremental write overwrites them.
const NODE_FIELDS: [(&str, &str); 9] = [
    ("name", "string"),
    ("qname", "string"),
    ("path", "string"),
    ("lang", "option<string>"),
    ("start_line", "int"),
    ("end_line", "int"),
    ("signature", "string"),
    ("doc", "string"),
    ("meta", "object"),
];
const EDGE_FIELDS: [(&str, &str); 2] = [("lines", "array<int>"), ("confidence", "float")];
/// Node fields with an index (`<table>_<field>`).
const NODE_INDEXES: [&str; 3] = ["name", "qname", "path"];

fn define_fields(table: &str, fields: &[(&str, &str)]) -> String {
    fields
        .iter()
        .map(|(f, ty)| format!("DEFINE FIELD {f} ON `{table}` TYPE {ty};\n"))
        .collect()
}

fn node_fields() -> String {
    let mut out = String::new();
    for ty in NodeType::ALL {
        let t = ty.as_str();
        out += &define_fields(t, &NODE_FIELDS);
        for f in NODE_INDEXES {
            out += &format!("DEFINE INDEX {t}_{f} ON `{t}` FIELDS {f};\n");
        }
    }
    out
}

/// Refuses a graph with an edge between node types its kind does not join ([`EdgeKind::ends`]). A full build
/// inserts as an import, which skips SurrealDB's own check of a relation's ends, so this check stands in for it.
fn check_edges(graph: &CodeGraph) -> Result<(), GraphError> {
    let Some(edge) = graph
        .edges
        .iter()
        .find(|e| !e.kind.accepts(e.from.ty, e.to.ty))
    else {
        return Ok(());
    };
    let (ins, outs) = edge.kind.ends();
    Err(GraphError::BadEdge {
        kind: edge.kind.as_str(),
        from: format!("{}:{}", edge.from.ty.as_str(), edge.from.key),
        to: format!("{}:{}", edge.to.ty.as_str(), edge.to.key),
        ins: type_list(ins, ""),
        outs: type_list(outs, ""),
    })
}

/// Table names of `types` joined by ` | `, each between `quote`s.
fn type_list(types: &[NodeType], quote: &str) -> String {
    let names: Vec<String> = types
        .iter()
        .map(|t| format!("{quote}{}{quote}", t.as_str()))
        .collect();
    names.join(" | ")
}

fn edge_tables() -> String {
    EdgeKind::ALL
        .iter()
        .map(|kind| {
            let (ins, outs) = kind.ends();
            format!(
                "DEFINE TABLE `{}` TYPE RELATION IN {} OUT {} SCHEMALESS;\n{}",
                kind.as_str(),
                type_list(ins, "`"),
                type_list(outs, "`"),
                define_fields(kind.as_str(), &EDGE_FIELDS)
            )
        })
        .collect()
}

fn schema() -> String {
    SCHEMA
        .replace(
            "-- @node-fields: repeated for each node table by graph/mod.rs",
            &node_fields(),
        )
        .replace(
            "-- @edge-tables: each relation table and its fields, from EdgeKind::ends, by graph/mod.rs",
            &edge_tables(),
        )
}

/// SurrealQL assignments of `fields` from `$<var>.<field>` (`$input` in an `INSERT`'s `ON DUPLICATE KEY UPDATE`,
/// a loop's row otherwise).
fn assignments(fields: &[(&str, &str)], var: &str) -> String {
    let sets: Vec<String> = fields
        .iter()
        .map(|(f, _)| format!("{f} = ${var}.{f}"))
        .collect();
    sets.join(", ")
}

/// SurrealQL that writes table `table`'s changed rows inside an incremental transaction, binding them in
/// `params`: `fresh` rows (new records) with `insert` (`INSERT` or `INSERT RELATION`), `known` rows (records the
/// store holds) with `UPDATE ... SET fields`. An `INSERT ... ON DUPLICATE KEY UPDATE` of an existing record first
/// fails to create it and rolls back to a save point, and SurrealKV's rollback walks the transaction's whole
/// write set: 20,887 changed JDK records took 18-27 s that way, 1.3 s with `UPDATE`.
fn upsert_rows(
    insert: &str,
    table: &str,
    fields: &[(&str, &str)],
    fresh: Vec<Value>,
    known: Vec<Value>,
    params: &mut Vec<(String, Value)>,
) -> String {
    let mut sql = String::new();
    // Each statement is built only for rows that exist, from the one parameter name it binds.
    let mut add = |param: String, rows: Vec<Value>, statement: &dyn Fn(&str) -> String| {
        if !rows.is_empty() {
            sql += &statement(&param);
            params.push((param, Value::Array(Array::from(rows))));
        }
    };
    add(format!("i_{table}"), fresh, &|p| {
        format!(
            "{insert} INTO `{table}` ${p} ON DUPLICATE KEY UPDATE {} RETURN NONE;\n",
            assignments(fields, "input")
        )
    });
    add(format!("u_{table}"), known, &|p| {
        format!(
            "FOR $r IN ${p} {{ UPDATE $r.id SET {} RETURN NONE; }};\n",
            assignments(fields, "r")
        )
    });
    sql
}

fn node_value(node: &Node) -> Value {
    let mut obj = Object::new();
    obj.insert(
        "id",
        RecordId::new(node.id.ty.as_str(), node.id.key.as_str()),
    );
    obj.insert("name", node.name.clone());
    obj.insert("qname", node.qname.clone());
    obj.insert("path", node.path.clone());
    obj.insert("lang", node.lang.map(|l| l.as_str().to_string()));
    obj.insert("start_line", node.start_line as i64);
    obj.insert("end_line", node.end_line as i64);
    obj.insert("signature", node.signature.clone());
    obj.insert("doc", node.doc.clone());
    let meta: serde_json::Map<String, serde_json::Value> = node
        .meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    obj.insert("meta", serde_json::Value::Object(meta));
    Value::Object(obj)
}

fn edge_value(edge: &Edge, key: &str) -> Value {
    let mut obj = Object::new();
    obj.insert("id", RecordId::new(edge.kind.as_str(), key));
    obj.insert(
        "in",
        RecordId::new(edge.from.ty.as_str(), edge.from.key.as_str()),
    );
    obj.insert(
        "out",
        RecordId::new(edge.to.ty.as_str(), edge.to.key.as_str()),
    );
    obj.insert(
        "lines",
        edge.lines.iter().map(|l| *l as i64).collect::<Vec<i64>>(),
    );
    obj.insert("confidence", edge.confidence as f64);
    Value::Object(obj)
}

fn fingerprint<T: Serialize>(record: &T) -> u64 {
    // A change detector, not a security boundary: XXH3 over the record's postcard bytes. A changed record keeps its
    // old fingerprint with probability 2^-64.
    with_scratch(|buf| {
        let bytes = postcard::to_extend(record, std::mem::take(buf)).unwrap_or_default();
        let hash = xxhash_rust::xxh3::xxh3_64(&bytes);
        *buf = bytes;
        hash
    })
}

/// XXH3-128 of a record id, `table:key` (two ids share one with probability 2^-128).
fn id_hash(table: &str, key: &str) -> u128 {
    with_scratch(|id| {
        id.extend_from_slice(table.as_bytes());
        id.push(b':');
        id.extend_from_slice(key.as_bytes());
        xxhash_rust::xxh3::xxh3_128(id)
    })
}

/// Record ids and content fingerprints of one kind of record (a graph's nodes or its edges), index-aligned with
/// `graph.nodes` / `graph.edges`, computed once per write and in parallel. Ids are kept as (table, key), not as
/// strings (a quarter million allocations fewer per write), and not left to the graph, which a full build frees
/// before the state is encoded.
struct Column {
    tables: Vec<&'static str>,
    keys: Vec<compact_str::CompactString>,
    /// (id hash, fingerprint, record index) of each record, sorted by id hash: the order of a [`Saved`] column.
    sorted: Vec<(u128, u64, u32)>,
}

impl Column {
    fn of<T: Serialize + Sync>(
        records: &[T],
        id: impl Fn(&T) -> (&'static str, compact_str::CompactString) + Sync,
    ) -> Column {
        use rayon::prelude::*;
        let ((tables, keys), mut sorted): ((Vec<_>, Vec<_>), Vec<_>) = records
            .par_iter()
            .enumerate()
            .map(|(i, r)| {
                let (table, key) = id(r);
                let hash = id_hash(table, &key);
                ((table, key), (hash, fingerprint(r), i as u32))
            })
            .unzip();
        sorted.par_sort_unstable_by_key(|&(hash, _, _)| hash);
        Column {
            tables,
            keys,
            sorted,
        }
    }

    /// Appends the column as [`Saved::decode`] reads it (all integers little-endian): the record count; in hash
    /// order the hashes, the fingerprints and each record's index; then the ids' length and bytes and the end of
    /// each id, in the graph's order. Every part is read and written in sequence.
    fn encode_into(&self, out: &mut Vec<u8>) -> std::io::Result<()> {
        let n = self.sorted.len();
        let id_bytes: usize = (self.tables.iter().map(|t| t.len() + 1))
            .chain(self.keys.iter().map(|k| k.len()))
            .sum();
        out.reserve(8 + n * (16 + 8 + 4 + 4) + 8 + id_bytes);
        out.extend_from_slice(&(n as u64).to_le_bytes());
        out.extend(self.sorted.iter().flat_map(|s| s.0.to_le_bytes()));
        out.extend(self.sorted.iter().flat_map(|s| s.1.to_le_bytes()));
        out.extend(self.sorted.iter().flat_map(|s| s.2.to_le_bytes()));
        out.extend_from_slice(&(id_bytes as u64).to_le_bytes());
        let mut ends: Vec<u32> = Vec::with_capacity(n);
        let start = out.len();
        for (table, key) in self.tables.iter().zip(&self.keys) {
            out.extend_from_slice(table.as_bytes());
            out.push(b':');
            out.extend_from_slice(key.as_bytes());
            ends.push(u32::try_from(out.len() - start).map_err(std::io::Error::other)?);
        }
        out.extend(ends.iter().flat_map(|e| e.to_le_bytes()));
        Ok(())
    }
}

/// The [`Column`]s of a graph's nodes and edges.
struct Keyed {
    nodes: Column,
    edges: Column,
}

impl Keyed {
    fn of(graph: &CodeGraph) -> Keyed {
        let (nodes, edges) = rayon::join(
            || Column::of(&graph.nodes, |n| (n.id.ty.as_str(), n.id.key.clone())),
            || Column::of(&graph.edges, |e| (e.kind.as_str(), e.compact_key())),
        );
        Keyed { nodes, edges }
    }

    /// The record key of edge `i` (its id without the table).
    fn edge_key(&self, i: usize) -> &str {
        &self.edges.keys[i]
    }

    /// The state's columns as saved after the write ([`read_state`]).
    fn encode(&self) -> std::io::Result<Vec<u8>> {
        let mut out = Vec::new();
        self.nodes.encode_into(&mut out)?;
        self.edges.encode_into(&mut out)?;
        Ok(out)
    }
}

fn parse_record_id(id: &str) -> Option<RecordId> {
    let (table, key) = id.split_once(':')?;
    let key = key.trim_matches(|c| c == '⟨' || c == '⟩' || c == '`');
    Some(RecordId::new(table, key))
}

/// Directories and marker of a rebuild in a new store (next to `live`, the store's directory).
fn swap_paths(live: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let name = live
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("graph.db");
    let sibling = |suffix: &str| live.with_file_name(format!("{name}{suffix}"));
    (sibling(".next"), sibling(".old"), sibling(".swap"))
}

/// Completes or discards a rebuild in a new store, whichever a killed process left: with the marker, the new
/// store (`.next`) was complete and replaces the live one; without it, a `.next` is an unfinished build. Either
/// way the leftovers go. Runs under the workspace lock.
fn finish_swap(live: &Path) -> std::io::Result<()> {
    let (next, old, marker) = swap_paths(live);
    let remove_dir = |dir: &Path| match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    };
    if marker.exists() {
        if next.exists() {
            if live.exists() {
                remove_dir(&old)?;
                std::fs::rename(live, &old)?;
            }
            std::fs::rename(&next, live)?;
        }
        std::fs::remove_file(&marker)?;
    }
    remove_dir(&next)?;
    remove_dir(&old)
}

fn embedded_endpoint(dir: &Path) -> String {
    let abs = std::path::absolute(dir).unwrap_or(dir.to_path_buf());
    format!("surrealkv://{}", abs.display())
}

/// Connects to the SurrealDB server at `endpoint` and signs in as `NANODEX_DB_USER` (default `root`) with
/// `NANODEX_DB_PASS`.
async fn open_remote(endpoint: &str) -> Result<Conn, GraphError> {
    let db = conn::open_remote(endpoint)
        .await
        .map_err(GraphError::db(format!("opening {endpoint}")))?;
    let username = std::env::var("NANODEX_DB_USER").unwrap_or_else(|_| "root".into());
    let password = std::env::var("NANODEX_DB_PASS").unwrap_or_default();
    db.signin_root(username.clone(), password)
        .await
        .map_err(|err| GraphError::SignIn {
            url: endpoint.to_string(),
            user: username,
            message: err.to_string(),
        })?;
    Ok(db)
}

async fn open_local(endpoint: &str, durability: conn::Durability) -> Result<Conn, GraphError> {
    conn::open_local(endpoint, durability)
        .await
        .map_err(|message| GraphError::Db {
            context: format!("opening {endpoint}"),
            message,
        })
}

/// Defines what reads need, selects namespace `ns`, and the current graph database if there is one (returned).
async fn prepare(db: &Conn, ns: &str) -> Result<Option<String>, GraphError> {
    // SurrealDB 3 refuses reads from undefined namespaces, databases and tables: define the meta pieces first.
    // The namespace name was validated as an identifier by `config`.
    let setup = format!(
        "DEFINE NAMESPACE IF NOT EXISTS {ns}; USE NS {ns}; DEFINE DATABASE IF NOT EXISTS meta; USE NS {ns} DB meta; \
         DEFINE TABLE IF NOT EXISTS state SCHEMALESS; DEFINE TABLE IF NOT EXISTS writer SCHEMALESS;"
    );
    db.query(setup)
        .await
        .and_then(|r| r.check())
        .map_err(GraphError::db("preparing the store"))?;
    db.use_ns_db(ns, "meta")
        .await
        .map_err(GraphError::db("selecting namespace"))?;
    let mut res = db
        .query("SELECT VALUE db FROM ONLY state:current")
        .await
        .map_err(GraphError::db("reading state"))?;
    let current: Option<String> = res.take(0).map_err(GraphError::db("reading state"))?;
    if let Some(name) = &current {
        db.use_db(name)
            .await
            .map_err(GraphError::db("selecting graph database"))?;
    }
    Ok(current)
}

/// Drops `db` and, when `location` is an embedded store's directory, waits until its background shutdown has
/// released the directory (its `LOCK` file).
async fn close_and_wait(db: Conn, location: &Path) {
    let lock = location.join("LOCK");
    let embedded = location.is_dir();
    db.close();
    if !embedded {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    // A clean shutdown takes a few milliseconds (a flush of what the memtable holds, or waiting for a running
    // compaction: up to a second), so the lock is polled after 1, 2, 4, 8 and 16 ms and then every 20 ms; a
    // fixed 20 ms tick cost every run 15-20 ms.
    let mut pause = std::time::Duration::from_millis(1);
    while std::time::Instant::now() < deadline {
        let free = match std::fs::File::open(&lock) {
            Ok(file) => match file.try_lock() {
                Ok(()) => {
                    let _ = file.unlock();
                    true
                }
                Err(_) => false,
            },
            Err(_) => true,
        };
        if free {
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
    tracing::warn!(path = %location.display(), "the embedded store did not shut down within 30 s");
}

/// Takes the workspace lock, mapping a held lock to [`GraphError::Locked`].
fn take_lock(path: &Path) -> Result<FileLock, GraphError> {
    try_lock(path).map_err(|err| match err {
        LockError::Held(pid) => GraphError::Locked {
            path: path.to_path_buf(),
            pid,
        },
        LockError::Io(cause) => GraphError::Io {
            path: path.to_path_buf(),
            cause,
        },
    })
}

/// Turns a SurrealDB value into JSON (record ids become `table:key` strings).
fn to_json(value: Value) -> serde_json::Value {
    value.into_json_value()
}

impl GraphStore {
    fn db(&self) -> &Conn {
        self.db.as_ref().expect("the store is open")
    }

    /// Opens the store of `workspace`. With `write`, takes the workspace lock first (a second writer gets
    /// [`GraphError::Locked`]); readers also refuse while a writer holds it, as the embedded engine is single-process.
    pub async fn open(
        cfg: &GraphConfig,
        workspace: &Path,
        write: bool,
    ) -> Result<GraphStore, GraphError> {
        let brain = brain_dir(workspace);
        let lock_path = brain.join("graph.lock");
        let (endpoint, location, lock, state_path) = match &cfg.store {
            Store::Workspace => {
                let db_path = embedded_store_dir(workspace);
                if !write && !db_path.exists() && !swap_paths(&db_path).2.exists() {
                    return Err(GraphError::Empty {
                        path: db_path,
                        workspace: workspace.to_path_buf(),
                    });
                }
                let lock = take_lock(&lock_path)?;
                finish_swap(&db_path).map_err(|cause| GraphError::Io {
                    path: db_path.clone(),
                    cause,
                })?;
                (
                    embedded_endpoint(&db_path),
                    db_path,
                    Some(lock),
                    Some(brain.join("graph.state")),
                )
            }
            Store::Memory => ("memory".to_string(), PathBuf::from("memory"), None, None),
            Store::Remote(url) => {
                let lock = if write {
                    Some(take_lock(&lock_path)?)
                } else {
                    None
                };
                (
                    url.clone(),
                    PathBuf::from(url),
                    lock,
                    Some(brain.join("graph.state")),
                )
            }
        };
        let db = match &cfg.store {
            Store::Remote(_) => open_remote(&endpoint).await?,
            _ => open_local(&endpoint, conn::Durability::EachCommit).await?,
        };
        let current = prepare(&db, &cfg.namespace).await?;
        // A writer of a server's namespace takes its lease, over a connection of the lease's own.
        let lease = match &cfg.store {
            Store::Remote(_) if write => {
                let conn = open_remote(&endpoint).await?;
                conn.use_ns_db(&cfg.namespace, "meta")
                    .await
                    .map_err(GraphError::db("selecting namespace"))?;
                let me = lease::Claimant::this_process(workspace);
                let place = store_location(cfg, workspace);
                Some(lease::acquire(conn, me, lease::TTL, place).await?)
            }
            _ => None,
        };
        // A writer reads the fingerprints of the last write while the caller parses.
        let state_prefetch = match (&state_path, &current, write) {
            (Some(path), Some(_), true) => {
                let path = path.clone();
                Some(std::thread::spawn(move || read_state(&path)))
            }
            _ => None,
        };
        Ok(GraphStore {
            db: Some(db),
            state_prefetch,
            ns: cfg.namespace.clone(),
            batch: cfg.batch_size,
            write_tasks: match cfg.write_tasks {
                0 => std::thread::available_parallelism()
                    .map_or(2, |n| n.get().min(MAX_AUTO_WRITE_TASKS)),
                n => n,
            },
            max_incremental: MAX_INCREMENTAL_RECORDS,
            bulk: true,
            rebuild_in_new_dir: cfg.store == Store::Workspace,
            current,
            state_path,
            location,
            workspace: workspace.to_path_buf(),
            _lock: lock,
            lease,
        })
    }

    /// Opens a fresh in-memory store (tests).
    pub async fn memory() -> Result<GraphStore, GraphError> {
        let cfg = GraphConfig {
            store: Store::Memory,
            namespace: "nanodex".into(),
            batch_size: 1000,
            write_tasks: 0,
        };
        GraphStore::open(&cfg, Path::new("."), true).await
    }

    /// Whether a graph has been written.
    pub fn has_graph(&self) -> bool {
        self.current.is_some()
    }

    fn require_graph(&self) -> Result<(), GraphError> {
        if self.current.is_none() {
            return Err(GraphError::Empty {
                path: self.location.clone(),
                workspace: self.workspace.clone(),
            });
        }
        Ok(())
    }

    async fn generation(&self) -> Result<u64, GraphError> {
        let mut res = self
            .db()
            .query("SELECT VALUE generation FROM ONLY graph_state:current")
            .await
            .map_err(GraphError::db("reading generation"))?;
        let generation: Option<i64> = res.take(0).map_err(GraphError::db("reading generation"))?;
        Ok(generation.unwrap_or(0) as u64)
    }

    fn load_state(&mut self) -> Option<StoreState> {
        match self.state_prefetch.take() {
            Some(handle) => handle.join().ok().flatten(),
            None => read_state(self.state_path.as_ref()?),
        }
    }

    /// Saves the state of the write that just ended: the fields of [`StoreState`] that precede its columns, then
    /// the columns that `columns` encodes ([`Keyed::encode`]). Nothing without a state file (memory, server).
    async fn save_state(
        &self,
        db: &str,
        generation: u64,
        columns: Option<tokio::task::JoinHandle<std::io::Result<Vec<u8>>>>,
    ) -> Result<(), GraphError> {
        let (Some(path), Some(columns)) = (&self.state_path, columns) else {
            return Ok(());
        };
        let saved = async {
            let columns = columns.await.map_err(std::io::Error::other)??;
            let head = postcard::to_stdvec(&(STATE_VERSION, db, generation))
                .map_err(std::io::Error::other)?;
            write_atomic_parts(path, &[&head, &columns])
        };
        saved.await.map_err(|cause| GraphError::Io {
            path: path.clone(),
            cause,
        })
    }

    /// Writes `graph`, incrementally when the previous write's fingerprints are valid and `full` is false.
    /// `info` is stored with the graph (root, resolution stats) for `graph-inspect`.
    pub async fn write(
        &mut self,
        graph: &CodeGraph,
        root: &str,
        full: bool,
        sink: &dyn Sink,
    ) -> Result<WriteReport, GraphError> {
        self.write_cow(Cow::Borrowed(graph), root, full, sink).await
    }

    /// [`write`](Self::write) for a caller done with the graph: a full build frees it (off this thread) as soon
    /// as its records are in the store, before the store's memtable is flushed. A rebuild over an existing
    /// embedded graph flushes and swaps in its new store inside this call, the peak of its memory.
    pub async fn write_owned(
        &mut self,
        graph: CodeGraph,
        root: &str,
        full: bool,
        sink: &dyn Sink,
    ) -> Result<WriteReport, GraphError> {
        self.write_cow(Cow::Owned(graph), root, full, sink).await
    }

    async fn write_cow(
        &mut self,
        mut graph: Cow<'_, CodeGraph>,
        root: &str,
        full: bool,
        sink: &dyn Sink,
    ) -> Result<WriteReport, GraphError> {
        check_edges(&graph)?;
        let mut timings = BTreeMap::new();
        let mut clock = std::time::Instant::now();
        let mut lap = |timings: &mut BTreeMap<String, u64>, name: &str| {
            timings.insert(name.to_string(), clock.elapsed().as_millis() as u64);
            clock = std::time::Instant::now();
        };
        let keyed = Arc::new(Keyed::of(&graph));
        lap(&mut timings, "fingerprint");
        // The state saved after the write is encoded meanwhile (tens of megabytes for a JDK-sized graph), on the
        // core that the write leaves idle; only where there is a state file.
        let state_columns = self.state_path.is_some().then(|| {
            let keyed = Arc::clone(&keyed);
            tokio::task::spawn_blocking(move || keyed.encode())
        });
        let previous = match (self.current.clone(), full) {
            (Some(db), false) => {
                let generation = self.generation().await?;
                self.load_state()
                    .filter(|s| s.db == db && s.generation == generation)
            }
            _ => {
                // The state read at open describes the graph this write replaces: a later write on this handle
                // must read the file again.
                self.state_prefetch = None;
                None
            }
        };
        lap(&mut timings, "state_load");
        let info = serde_json::json!({ "root": root, "resolve": graph.stats });
        let report = match previous {
            Some(prev) => {
                let diffs =
                    Diff::of(&keyed.nodes, &prev.nodes).zip(Diff::of(&keyed.edges, &prev.edges));
                let total = graph.nodes.len() + graph.edges.len();
                let changed = diffs
                    .as_ref()
                    .map_or(total, |(n, e)| n.changed.len() + e.changed.len());
                let deleted = diffs
                    .as_ref()
                    .map_or(0, |(n, e)| n.deleted.len() + e.deleted.len());
                // A big change is cheaper as a fresh build than as one huge transaction, and a transaction must
                // fit in the engine's memtable and in one write-ahead-log record.
                match diffs {
                    Some(diffs)
                        if changed * 2 <= total.max(1)
                            && changed + deleted <= self.max_incremental =>
                    {
                        self.write_incremental(&graph, &keyed, &diffs, &prev, &info, sink)
                            .await?
                    }
                    _ => {
                        self.write_full(&mut graph, &keyed, prev.generation + 1, &info, sink)
                            .await?
                    }
                }
            }
            None => {
                let generation = match &self.current {
                    Some(_) => self.generation().await? + 1,
                    None => 1,
                };
                self.write_full(&mut graph, &keyed, generation, &info, sink)
                    .await?
            }
        };
        // An incremental write still holds an owned graph here; its drop stays out of the run.
        release(&mut graph, report.mode == "incremental");
        let generation = self.generation().await?;
        lap(&mut timings, "db");
        let db = self.current.clone().unwrap_or_default();
        self.save_state(&db, generation, state_columns).await?;
        lap(&mut timings, "state_save");
        Ok(WriteReport {
            timings_ms: timings,
            ..report
        })
    }

    /// Inserts every node and edge of `graph` into the selected (fresh) database: `batch` records per statement,
    /// up to `tasks` statements in flight. SurrealDB runs each statement on one thread, so statements in flight on
    /// several cores are the main lever on write time. Relations do not need their ends to exist yet, so node and
    /// edge batches share one queue. Statements run as an import (`OPTION IMPORT`, as SurrealDB replays its own
    /// exports): SurrealDB then skips its per-record field processing (type coercion, relation-end checks), whose
    /// work [`check_edges`] and the rows' Rust types already did; indexes and graph keys are written as usual.
    /// Into the embedded datastore, batches skip the query engine: [`bulk`] writes the keys and values those
    /// statements write (`db_name` is the fresh database). Dropping the future (cancel) aborts the embedded
    /// statements and transactions still running (a remote server finishes those already sent, into the new
    /// database that never becomes current).
    async fn insert_batches(
        &self,
        graph: &CodeGraph,
        keyed: &Keyed,
        db_name: &str,
        sink: &dyn Sink,
    ) -> Result<u64, GraphError> {
        // The embedded datastore takes the batches straight into its transactions (see `bulk`).
        let bulk = match self.db().datastore().filter(|_| self.bulk) {
            Some(ds) => {
                let target = bulk::target(&ds, &self.ns, db_name)
                    .await
                    .map_err(GraphError::engine("preparing the bulk write"))?;
                Some((ds, target))
            }
            None => None,
        };
        let total = (graph.nodes.len() + graph.edges.len()) as u64;
        // (table, node indices, edge indices) per statement.
        let mut jobs: Vec<(&str, Vec<usize>, Vec<usize>)> = Vec::new();
        for ty in NodeType::ALL {
            let rows: Vec<usize> = (0..graph.nodes.len())
                .filter(|&i| graph.nodes[i].id.ty == ty)
                .collect();
            for chunk in rows.chunks(self.batch) {
                jobs.push((ty.as_str(), chunk.to_vec(), Vec::new()));
            }
        }
        for kind in EdgeKind::ALL {
            let rows: Vec<usize> = (0..graph.edges.len())
                .filter(|&i| graph.edges[i].kind == kind)
                .collect();
            for chunk in rows.chunks(self.batch) {
                jobs.push((kind.as_str(), Vec::new(), chunk.to_vec()));
            }
        }
        let mut running: tokio::task::JoinSet<Result<(String, usize), GraphError>> =
            tokio::task::JoinSet::new();
        let mut done = 0u64;
        let mut jobs = jobs.into_iter();
        loop {
            while running.len() < self.write_tasks {
                let Some((table, nodes, edges)) = jobs.next() else {
                    break;
                };
                // Rows are converted here, one batch at a time, while earlier batches are being written.
                let (sql, what, rows): (String, &str, Vec<Value>) = if edges.is_empty() {
                    let rows = nodes.iter().map(|&i| node_value(&graph.nodes[i])).collect();
                    (
                        format!("OPTION IMPORT; INSERT INTO `{table}` $rows RETURN NONE"),
                        "nodes",
                        rows,
                    )
                } else {
                    let rows = edges
                        .iter()
                        .map(|&i| edge_value(&graph.edges[i], keyed.edge_key(i)))
                        .collect();
                    (
                        format!("OPTION IMPORT; INSERT RELATION INTO `{table}` $rows RETURN NONE"),
                        "edges",
                        rows,
                    )
                };
                let db = self.db().clone();
                let label = format!("{table} {what}");
                let bulk = bulk.clone();
                let table = table.to_string();
                running.spawn(async move {
                    let n = rows.len();
                    if let Some((ds, target)) = bulk {
                        let written = if what == "edges" {
                            bulk::write_edges(&ds, target, &table, rows).await
                        } else {
                            bulk::write_nodes(&ds, target, &table, rows).await
                        };
                        written.map_err(GraphError::engine(format!("inserting {label}")))?;
                        return Ok((label, n));
                    }
                    let res = db
                        .query(sql)
                        .bind(("rows", Value::Array(Array::from(rows))))
                        .await;
                    res.and_then(|r| r.check())
                        .map_err(GraphError::db(format!("inserting {label}")))?;
                    Ok((label, n))
                });
            }
            let Some(joined) = running.join_next().await else {
                break;
            };
            let joined = match joined {
                Ok(done) => done,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => {
                    return Err(GraphError::Io {
                        path: self.location.clone(),
                        cause: std::io::Error::other(format!("graph write task failed: {e}")),
                    });
                }
            };
            let (label, n) = joined?;
            done += n as u64;
            sink.event(ProgressEvent {
                stage: "store",
                done,
                total: Some(total),
                message: label,
            });
        }
        Ok(done)
    }

    /// Loads every node and edge of `graph` into database `db_name` of the new store of a full build
    /// ([`Self::open_next_store`]) and returns how many: SurrealDB checks the tables and draws the nodes' doc-ids
    /// ([`bulk::plan`]), closes the store, [`bulk::ingest`] puts the keys and values that SurrealDB's inserts would
    /// write straight into the storage engine's tables, and SurrealDB opens the store again. On the JDK's java.base
    /// (1.47M keys) the writes through transactions took 3.5 s plus a 0.6 s compaction of the five level-0 tables
    /// they left at the close; the whole store phase now takes 2.0 s instead of 4.5 s.
    async fn ingest_graph(
        &mut self,
        graph: &CodeGraph,
        keyed: &Keyed,
        db_name: &str,
        sink: &dyn Sink,
    ) -> Result<u64, GraphError> {
        let ds = self.db().datastore().ok_or_else(|| GraphError::Db {
            context: "loading the graph".into(),
            message: "the new store is not an embedded one".into(),
        })?;
        let target = bulk::target(&ds, &self.ns, db_name)
            .await
            .map_err(GraphError::engine("preparing the graph load"))?;
        let plan = bulk::plan(&ds, target, graph)
            .await
            .map_err(GraphError::engine("preparing the graph load"))?;
        drop(ds);
        let (next, _, _) = swap_paths(&self.location);
        close_and_wait(self.db.take().expect("open"), &next).await;
        let total = (graph.nodes.len() + graph.edges.len()) as u64;
        let mut done = 0u64;
        let loaded = bulk::ingest(&next, &plan, graph, keyed, |table, rows| {
            done += rows as u64;
            sink.event(ProgressEvent {
                stage: "store",
                done,
                total: Some(total),
                message: table.to_string(),
            });
        })
        .await;
        let fresh = open_local(&embedded_endpoint(&next), conn::Durability::AtClose).await?;
        prepare(&fresh, &self.ns).await?;
        fresh
            .use_db(db_name)
            .await
            .map_err(GraphError::db("selecting new database"))?;
        self.db = Some(fresh);
        loaded.map_err(GraphError::engine("loading the graph"))?;
        Ok(done)
    }

    /// A full build into a new graph database, which then becomes the current one. Into the workspace's embedded
    /// store (a first build too, whose commits then skip the per-commit fsync, see `conn::Durability`) that
    /// database is in a new store next to the live one, which then replaces it ([`Self::open_next_store`]).
    async fn write_full(
        &mut self,
        graph: &mut Cow<'_, CodeGraph>,
        keyed: &Keyed,
        generation: u64,
        info: &serde_json::Value,
        sink: &dyn Sink,
    ) -> Result<WriteReport, GraphError> {
        let live = if self.rebuild_in_new_dir {
            Some(self.open_next_store().await?)
        } else {
            None
        };
        // A new store is loaded straight into its storage engine (see `ingest_graph`).
        let ingest = live.is_some() && self.bulk;
        let written: Result<WriteReport, GraphError> = async {
            let name = format!("g{generation}");
            let old = self.current.clone();
            self.db()
                .use_db("meta")
                .await
                .map_err(GraphError::db("selecting meta"))?;
            // Remove leftovers of killed runs (any graph database that is not the current one).
            let mut res = self
                .db()
                .query("INFO FOR NS")
                .await
                .map_err(GraphError::db("listing databases"))?;
            let ns_info: Option<Value> = res.take(0).map_err(GraphError::db("listing databases"))?;
            let existing: Vec<String> = ns_info
                .map(to_json)
                .and_then(|j| {
                    j.get("databases")
                        .and_then(|d| d.as_object())
                        .map(|d| d.keys().cloned().collect())
                })
                .unwrap_or_default();
            for db_name in existing
                .iter()
                .filter(|d| d.starts_with('g') && Some(*d) != old.as_ref())
            {
                self.remove_db(db_name).await?;
            }
            self.db()
                .query(format!("DEFINE DATABASE {name}"))
                .await
                .and_then(|r| r.check())
                .map_err(GraphError::db("creating database"))?;
            self.db()
                .use_db(name.as_str())
                .await
                .map_err(GraphError::db("selecting new database"))?;
            // One transaction: each of the 18 `DEFINE INDEX` statements otherwise commits on its own (schema 75-100 ms
            // of a one-file build's store phase, 53-65 ms in one transaction).
            self.db()
                .query(format!(
                    "BEGIN TRANSACTION;\n{}COMMIT TRANSACTION;",
                    schema()
                ))
                .await
                .and_then(|r| r.check())
                .map_err(GraphError::db("defining schema"))?;
            tracing::info!(db = %name, "writing graph");
            let inserted = if ingest {
                self.ingest_graph(graph, keyed, &name, sink).await?
            } else {
                self.insert_batches(graph, keyed, &name, sink).await?
            };
            // The state saved after the write is built from `keyed`, so an owned graph is not needed any more.
            release(graph, false);
            self.db()
                .query("UPSERT graph_state:current CONTENT { generation: $generation, info: $info, written_at: time::now() } RETURN NONE")
                .bind(("generation", generation as i64))
                .bind(("info", info.clone()))
                .await
                .and_then(|r| r.check())
                .map_err(GraphError::db("writing graph state"))?;
            // The switch: one record update makes the new graph current.
            self.db()
                .use_db("meta")
                .await
                .map_err(GraphError::db("selecting meta"))?;
            // A server's namespace switches only while this writer holds its lease, checked in the same
            // transaction.
            let switch = match &self.lease {
                Some(lease) => self
                    .db()
                    .query(lease::guarded(SWITCH))
                    .bind(("owner", lease.owner().to_string())),
                None => self.db().query(SWITCH),
            };
            let switched = switch
                .bind(("db", name.clone()))
                .bind(("generation", generation as i64))
                .await
                .and_then(|r| r.check());
            if let (Err(_), Some(lease)) = (&switched, &self.lease) {
                // Not switched: the lease is gone, or the server failed; the lease's own check tells which.
                lease.confirm().await?;
            }
            switched.map_err(GraphError::db("switching to the new graph"))?;
            if let Some(old) = &old {
                self.remove_db(old).await?;
            }
            self.db()
                .use_db(name.as_str())
                .await
                .map_err(GraphError::db("selecting graph database"))?;
            self.current = Some(name.clone());
            Ok(WriteReport {
                mode: "full".into(),
                db: name,
                inserted,
                updated: 0,
                deleted: 0,
                timings_ms: BTreeMap::new(),
            })
        }
        .await;
        match live {
            Some(live) => self.swap_in_next_store(live, written).await,
            None => written,
        }
    }

    /// Puts a new, empty store (`graph.db.next`) in the place of the workspace's live embedded store, for a full
    /// build; [`Self::swap_in_next_store`] then makes it the live one (see [`finish_swap`]). Removing the old
    /// graph's records inside the live store instead meant one transaction holding a tombstone per key (the JDK's
    /// 1.3M keys: 700 MiB peak) and files four times the graph's size until compaction caught up, at the cost of
    /// the next runs. Returns the live store's connection and current database, set aside.
    async fn open_next_store(&mut self) -> Result<(Option<Conn>, Option<String>), GraphError> {
        let (next, _, _) = swap_paths(&self.location);
        match std::fs::remove_dir_all(&next) {
            Err(cause) if cause.kind() != std::io::ErrorKind::NotFound => {
                return Err(GraphError::Io { path: next, cause });
            }
            _ => {}
        }
        let fresh = open_local(&embedded_endpoint(&next), conn::Durability::AtClose).await?;
        prepare(&fresh, &self.ns).await?;
        Ok((self.db.replace(fresh), self.current.take()))
    }

    /// Closes the store of [`Self::open_next_store`] once `written` into, syncs it and makes it the live one; if
    /// the write or the sync failed, throws it away and puts the live store that was set aside back.
    async fn swap_in_next_store(
        &mut self,
        (live_db, live_current): (Option<Conn>, Option<String>),
        written: Result<WriteReport, GraphError>,
    ) -> Result<WriteReport, GraphError> {
        let live = self.location.clone();
        let (next, _, marker) = swap_paths(&live);
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |cause| GraphError::Io { path, cause }
        };
        // (None when a load could not open the new store again.)
        if let Some(fresh) = std::mem::replace(&mut self.db, live_db) {
            close_and_wait(fresh, &next).await;
        }
        // The new store's commits did not wait for the disk (`Durability::AtClose`): everything it wrote goes to
        // disk before the marker can point at it.
        let written = written.and_then(|report| {
            crate::fsutil::sync_tree(&next).map_err(io(&next))?;
            Ok(report)
        });
        let report = match written {
            Ok(report) => report,
            Err(e) => {
                self.current = live_current;
                let _ = std::fs::remove_dir_all(&next);
                return Err(e);
            }
        };
        // The switch. From the marker on, a killed process's next open completes it.
        close_and_wait(self.db.take().expect("open"), &live).await;
        write_atomic(&marker, b"replace graph.db with graph.db.next\n").map_err(io(&marker))?;
        finish_swap(&live).map_err(io(&live))?;
        let db = open_local(&embedded_endpoint(&live), conn::Durability::EachCommit).await?;
        self.current = prepare(&db, &self.ns).await?;
        self.db = Some(db);
        Ok(report)
    }

    async fn remove_db(&self, name: &str) -> Result<(), GraphError> {
        if !name.starts_with('g') || !name[1..].chars().all(|c| c.is_ascii_digit()) {
            return Ok(());
        }
        self.db()
            .query(format!("REMOVE DATABASE IF EXISTS {name}"))
            .await
            .and_then(|r| r.check())
            .map_err(GraphError::db("removing old graph"))?;
        Ok(())
    }

    /// Applies the changed (new or different) nodes and edges of `diffs`, and deletes the records `graph` no longer
    /// has, in one transaction.
    async fn write_incremental(
        &mut self,
        graph: &CodeGraph,
        keyed: &Keyed,
        (nodes, edges): &(Diff, Diff),
        prev: &StoreState,
        info: &serde_json::Value,
        sink: &dyn Sink,
    ) -> Result<WriteReport, GraphError> {
        let ids = |saved: &Saved, deleted: &[usize]| -> Vec<Value> {
            deleted
                .iter()
                .filter_map(|&j| parse_record_id(saved.id(j)?))
                .map(Value::RecordId)
                .collect()
        };
        let del_nodes = ids(&prev.nodes, &nodes.deleted);
        let del_edges = ids(&prev.edges, &edges.deleted);
        let mut sql = String::from("BEGIN TRANSACTION;\nDELETE $del_edges;\nDELETE $del_nodes;\n");
        let mut query_params: Vec<(String, Value)> = Vec::new();
        let (mut inserted, mut updated) = (0u64, 0u64);
        let mut count = |known: bool| {
            if known {
                updated += 1;
            } else {
                inserted += 1;
            }
        };
        for ty in NodeType::ALL {
            let (mut fresh, mut known) = (Vec::new(), Vec::new());
            for &(i, exists) in nodes
                .changed
                .iter()
                .filter(|(i, _)| graph.nodes[*i].id.ty == ty)
            {
                count(exists);
                if exists { &mut known } else { &mut fresh }.push(node_value(&graph.nodes[i]));
            }
            sql += &upsert_rows(
                "INSERT",
                ty.as_str(),
                &NODE_FIELDS,
                fresh,
                known,
                &mut query_params,
            );
        }
        for kind in EdgeKind::ALL {
            let (mut fresh, mut known) = (Vec::new(), Vec::new());
            for &(i, exists) in edges
                .changed
                .iter()
                .filter(|(i, _)| graph.edges[*i].kind == kind)
            {
                count(exists);
                if exists { &mut known } else { &mut fresh }
                    .push(edge_value(&graph.edges[i], keyed.edge_key(i)));
            }
            sql += &upsert_rows(
                "INSERT RELATION",
                kind.as_str(),
                &EDGE_FIELDS,
                fresh,
                known,
                &mut query_params,
            );
        }
        sql += "UPSERT graph_state:current CONTENT { generation: $generation, info: $info, written_at: time::now() } RETURN NONE;\nCOMMIT TRANSACTION;";
        let deleted = (del_nodes.len() + del_edges.len()) as u64;
        // Into a server's namespace only while this writer holds its lease (renewed here, just before).
        if let Some(lease) = &self.lease {
            lease.confirm().await?;
        }
        let mut query = self
            .db()
            .query(sql)
            .bind(("del_edges", Value::Array(Array::from(del_edges))))
            .bind(("del_nodes", Value::Array(Array::from(del_nodes))))
            .bind(("generation", (prev.generation + 1) as i64))
            .bind(("info", info.clone()));
        for (name, value) in query_params {
            query = query.bind((name, value));
        }
        query
            .await
            .and_then(|r| r.check())
            .map_err(GraphError::db("applying incremental update"))?;
        sink.event(ProgressEvent {
            stage: "store",
            done: inserted + updated + deleted,
            total: Some(inserted + updated + deleted),
            message: "incremental update".into(),
        });
        Ok(WriteReport {
            mode: "incremental".into(),
            db: self.current.clone().unwrap_or_default(),
            inserted,
            updated,
            deleted,
            timings_ms: BTreeMap::new(),
        })
    }

    /// Runs a query and returns the first statement's result as JSON.
    async fn query_json(
        &self,
        sql: &str,
        binds: Vec<(&'static str, Value)>,
    ) -> Result<serde_json::Value, GraphError> {
        let mut query = self.db().query(sql);
        for bind in binds {
            query = query.bind(bind);
        }
        let mut res = query.await.map_err(GraphError::db("querying"))?;
        let value: Value = res.take(0).map_err(GraphError::db("querying"))?;
        Ok(to_json(value))
    }

    /// Counts and summaries for `graph-inspect`.
    pub async fn inspect(&self) -> Result<Inspect, GraphError> {
        self.require_graph()?;
        let mut out = Inspect::default();
        for ty in NodeType::ALL {
            let t = ty.as_str();
            let rows = self
                .query_json(
                    &format!("SELECT lang, count() AS n FROM `{t}` GROUP BY lang"),
                    vec![],
                )
                .await?;
            let mut total = 0;
            for row in rows.as_array().into_iter().flatten() {
                let n = row.get("n").and_then(|n| n.as_u64()).unwrap_or(0);
                total += n;
                let lang = row
                    .get("lang")
                    .and_then(|l| l.as_str())
                    .unwrap_or("-")
                    .to_string();
                *out.nodes_by_lang
                    .entry(t.to_string())
                    .or_default()
                    .entry(lang)
                    .or_default() += n;
            }
            out.nodes.insert(t.to_string(), total);
        }
        for kind in EdgeKind::ALL {
            let t = kind.as_str();
            let rows = self
                .query_json(&format!("SELECT count() AS n FROM `{t}` GROUP ALL"), vec![])
                .await?;
            let n = rows
                .get(0)
                .and_then(|r| r.get("n"))
                .and_then(|n| n.as_u64())
                .unwrap_or(0);
            out.edges.insert(t.to_string(), n);
        }
        let rows = self
            .query_json("SELECT path, array::len(->imports) AS imports, array::len(<-imports) AS imported_by FROM module", vec![])
            .await?;
        let mut degrees: Vec<ModuleDegree> = rows
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| ModuleDegree {
                path: r
                    .get("path")
                    .and_then(|p| p.as_str())
                    .unwrap_or("")
                    .to_string(),
                imports: r.get("imports").and_then(|n| n.as_u64()).unwrap_or(0),
                imported_by: r.get("imported_by").and_then(|n| n.as_u64()).unwrap_or(0),
            })
            .collect();
        degrees.sort_by(|a, b| {
            (b.imports + b.imported_by, &a.path).cmp(&(a.imports + a.imported_by, &b.path))
        });
        degrees.truncate(10);
        out.most_connected_modules = degrees;
        let files = self
            .query_json(
                "SELECT VALUE path FROM module WHERE meta.parse_error = true ORDER BY path",
                vec![],
            )
            .await?;
        out.parse_error_files = files
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(String::from))
            .collect();
        let state = self
            .query_json("SELECT * FROM ONLY graph_state:current", vec![])
            .await?;
        if let Some(info) = state.get("info") {
            out.root = info
                .get("root")
                .and_then(|r| r.as_str())
                .unwrap_or("")
                .to_string();
            if let Some(stats) = info.get("resolve") {
                out.resolve = serde_json::from_value(stats.clone()).unwrap_or_default();
            }
        }
        out.extracted_at = state
            .get("written_at")
            .and_then(|w| w.as_str())
            .unwrap_or("")
            .to_string();
        out.generation = state
            .get("generation")
            .and_then(|g| g.as_u64())
            .unwrap_or(0);
        let calls = out.resolve.calls_resolved + out.resolve.calls_unresolved;
        out.resolved_call_share = if calls == 0 {
            0.0
        } else {
            out.resolve.calls_resolved as f64 / calls as f64
        };
        Ok(out)
    }

    /// Nodes matching an id (`function:…`), a qualified name or a simple name, each with its edges.
    pub async fn show(&self, needle: &str) -> Result<Vec<NodeDetail>, GraphError> {
        self.require_graph()?;
        let tables: Vec<String> = NodeType::ALL
            .iter()
            .map(|t| format!("`{}`", t.as_str()))
            .collect();
        let mut ids: Vec<String> = Vec::new();
        if let Some(rid) = parse_record_id(needle)
            .filter(|_| NodeType::from_name(needle.split(':').next().unwrap_or("")).is_some())
        {
            let found = self
                .query_json(
                    "SELECT VALUE id FROM $rid",
                    vec![("rid", Value::RecordId(rid))],
                )
                .await?;
            ids.extend(
                found
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(String::from)),
            );
        }
        if ids.is_empty() {
            let sql = format!(
                "SELECT VALUE id FROM {} WHERE qname = $q",
                tables.join(", ")
            );
            let found = self
                .query_json(&sql, vec![("q", Value::String(needle.to_string()))])
                .await?;
            ids.extend(
                found
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(String::from)),
            );
        }
        if ids.is_empty() {
            let sql = format!("SELECT VALUE id FROM {} WHERE name = $q", tables.join(", "));
            let found = self
                .query_json(&sql, vec![("q", Value::String(needle.to_string()))])
                .await?;
            ids.extend(
                found
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(String::from)),
            );
        }
        if ids.is_empty() {
            return Err(GraphError::NotFound(needle.to_string()));
        }
        ids.truncate(20);
        let mut out = Vec::new();
        for id in ids {
            let Some(rid) = parse_record_id(&id) else {
                continue;
            };
            let node = self
                .query_json(
                    "SELECT * FROM ONLY $rid",
                    vec![("rid", Value::RecordId(rid.clone()))],
                )
                .await?;
            let mut edges = Vec::new();
            for kind in EdgeKind::ALL {
                let t = kind.as_str();
                let sql = format!(
                    "SELECT out AS other, out.qname AS qname, out.path AS path, out.start_line AS line, lines, confidence FROM $rid->`{t}`;\n\
                     SELECT in AS other, in.qname AS qname, in.path AS path, in.start_line AS line, lines, confidence FROM $rid<-`{t}`;"
                );
                let mut res = self
                    .db()
                    .query(sql)
                    .bind(("rid", Value::RecordId(rid.clone())))
                    .await
                    .map_err(GraphError::db("reading edges"))?;
                for (idx, direction) in [(0, "out"), (1, "in")] {
                    let rows: Value = res.take(idx).map_err(GraphError::db("reading edges"))?;
                    for row in to_json(rows).as_array().into_iter().flatten() {
                        edges.push(Neighbor {
                            kind: t.to_string(),
                            direction: direction.to_string(),
                            id: row
                                .get("other")
                                .and_then(|v| v.as_str())
                                .unwrap_or("")
                                .to_string(),
                            qname: row
                                .get("qname")
                                .and_then(|v| v.as_str())
                                .unwrap_or("")
                                .to_string(),
                            path: row
                                .get("path")
                                .and_then(|v| v.as_str())
                                .unwrap_or("")
                                .to_string(),
                            line: row.get("line").and_then(|v| v.as_u64()).unwrap_or(0),
                            lines: row
                                .get("lines")
                                .and_then(|v| v.as_array())
                                .into_iter()
                                .flatten()
                                .filter_map(|l| l.as_u64())
                                .collect(),
                            confidence: row
                                .get("confidence")
                                .and_then(|v| v.as_f64())
                                .unwrap_or(0.0),
                        });
                    }
                }
            }
            edges.sort_by(|a, b| {
                (&a.direction, &a.kind, &a.qname).cmp(&(&b.direction, &b.kind, &b.qname))
            });
            out.push(NodeDetail { node, edges });
        }
        Ok(out)
    }

    /// Runs a read-only SurrealQL query; returns one JSON value per statement.
    pub async fn query_readonly(&self, sql: &str) -> Result<Vec<serde_json::Value>, GraphError> {
        self.require_graph()?;
        check_read_only(sql)?;
        let mut res = self
            .db()
            .query(sql)
            .await
            .map_err(GraphError::db("query"))?;
        let mut out = Vec::new();
        for idx in 0..res.num_statements() {
            let value: Value = res
                .take(idx)
                .map_err(GraphError::db(format!("statement {}", idx + 1)))?;
            out.push(to_json(value));
        }
        Ok(out)
    }

    /// Every node and edge as stored, sorted (for comparing two stores).
    pub async fn dump(
        &self,
    ) -> Result<(Vec<serde_json::Value>, Vec<serde_json::Value>), GraphError> {
        self.require_graph()?;
        let mut nodes = Vec::new();
        for ty in NodeType::ALL {
            let rows = self
                .query_json(
                    &format!("SELECT * FROM `{}` ORDER BY id", ty.as_str()),
                    vec![],
                )
                .await?;
            nodes.extend(rows.as_array().cloned().unwrap_or_default());
        }
        let mut edges = Vec::new();
        for kind in EdgeKind::ALL {
            let rows = self
                .query_json(
                    &format!("SELECT * FROM `{}` ORDER BY id", kind.as_str()),
                    vec![],
                )
                .await?;
            edges.extend(rows.as_array().cloned().unwrap_or_default());
        }
        Ok((nodes, edges))
    }

    /// Closes the store and, for the embedded engine, waits until its background shutdown has released the
    /// database (its `LOCK` file), so that the process can exit or reopen the store at once.
    pub async fn close(mut self) {
        if let Some(db) = self.db.take() {
            close_and_wait(db, &self.location).await;
        }
        if let Some(lease) = self.lease.take() {
            lease.release().await;
        }
    }

    /// The SurrealDB namespace in use.
    pub fn namespace(&self) -> &str {
        &self.ns
    }
}

/// Statements and functions that write or reach outside the store.
const FORBIDDEN: &[&str] = &[
    "create", "update", "upsert", "delete", "insert", "relate", "define", "remove", "alter",
    "rebuild", "kill", "live", "begin", "commit", "cancel", "use", "access", "option", "sleep",
    "http", "signin", "signup",
];

/// Rejects SurrealQL that could write: any forbidden keyword outside string literals, quoted identifiers and
/// comments. The scanner follows SurrealQL's lexer for everything that can hide text (`'…'`, `"…"`, `` `…` ``,
/// `⟨…⟩`, `--`, `//` and `#` line comments, `/* … */` block comments), so a quote inside a comment cannot start a
/// fake string that hides a statement. Whole words only: `deleted_at` is allowed, `DELETE` is not.
pub fn check_read_only(sql: &str) -> Result<(), GraphError> {
    let mut chars = sql.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String| -> Result<(), GraphError> {
        let lower = word.to_ascii_lowercase();
        word.clear();
        if FORBIDDEN.contains(&lower.as_str()) {
            Err(GraphError::ReadOnly(lower))
        } else {
            Ok(())
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' | '`' => {
                flush(&mut word)?;
                let mut escaped = false;
                for d in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' {
                        escaped = true;
                    } else if d == c {
                        break;
                    }
                }
            }
            '⟨' => {
                flush(&mut word)?;
                for d in chars.by_ref() {
                    if d == '⟩' {
                        break;
                    }
                }
            }
            '#' => {
                flush(&mut word)?;
                chars.by_ref().find(|&d| d == '\n');
            }
            '-' | '/' if chars.peek() == Some(&c) => {
                flush(&mut word)?;
                chars.by_ref().find(|&d| d == '\n');
            }
            '/' if chars.peek() == Some(&'*') => {
                flush(&mut word)?;
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
            }
            c if c.is_alphanumeric() || c == '_' => word.push(c),
            _ => flush(&mut word)?,
        }
    }
    flush(&mut word)
}

#[cfg(test)]
mod tests;
