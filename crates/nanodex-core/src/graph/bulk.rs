//! Bulk writes of a fresh graph into the embedded datastore: rows become the keys and values that SurrealDB's own
//! `OPTION IMPORT; INSERT [RELATION] INTO <table> $rows` writes, without the query engine. Two ways:
//! - [`write_nodes`] and [`write_edges`] put a batch through one of the datastore's transactions (the in-memory
//!   engine, and a database added beside others);
//! - [`plan`] and [`ingest`] load a whole graph into the new on-disk store of a full build: SurrealDB closes it,
//!   and the keys go, table by table in key order, straight into SurrealKV's bottom level (`Tree::ingest`,
//!   vendored patch 8), without write-ahead log, memtable, commits or compactions.
//!
//! Why: on the JDK's java.base graph (60k nodes, 208k edges) the query engine's per-record pipeline (statement
//! futures, document processing, a read before each record's write, the index builder's admission check in a
//! transaction of its own per record and index, the transaction's record cache) was most of a `--full` rebuild's
//! store phase; with transactions that phase went from 9.2-9.9 s to 5.0-5.5 s (later 4.5 s), with the ingest to
//! 2.0 s.
//!
//! What is written (`surrealdb-core` 3.3.5: `doc/alter.rs`, `doc/store.rs`, `doc/index.rs`, `doc/edges.rs`;
//! `surrealdb-idx`: `index.rs`, `docids.rs`):
//! - per node of table `tb`: the record `tb:id`, the row as given less its NONE fields (the insert merges the
//!   row into an empty record, which drops them); a doc-id from the table's allocator with its three mappings
//!   (`!dj`, `!dd`, `!di`), when an index's entries carry doc-ids; and one entry per index;
//! - per edge `in -> tb:id -> out`: the record, with the edge marker of the current adjacency layout in its
//!   metadata; two edge-side keys, `tb:id` `<-` `in` and `tb:id` `->` `out` (empty values); two vertex-side
//!   pointer keys, `in` `->` `tb:id` (target `out`) and `out` `<-` `tb:id` (target `in`), with a live adjacency
//!   value.
//!
//! That is all SurrealDB writes for our tables under `OPTION IMPORT` (no end checks, no field processing): they
//! have no events, views, live queries, change feeds, inline-edge caches or lightweight layout, and their indexes
//! are plain one-field indexes that are online. [`check_node_table`], [`check_edge_table`] and
//! [`check_vertex_table`] refuse a table that is otherwise, so a schema change cannot make this writer silently
//! differ; the unit test `graph::tests::bulk_writes_the_keys_and_values_of_surrealql_inserts` compares every data
//! key and value it writes with what the query engine writes for the same rows.
//!
//! Records are written blind (`set`, where an `INSERT` reads first to refuse an existing id): the database is new
//! and its writer holds the workspace lock, so only a duplicate id in the graph itself could collide. Resolution
//! gives every node and edge a distinct id; [`claim`] checks that within each batch (a batch holds one table's
//! rows), but a duplicate split across two batches of the same table would overwrite where SurrealQL refused.

use std::borrow::Cow;
use std::collections::HashSet;

use anyhow::{Context, Result, bail, ensure};
use std::path::Path;

use rayon::prelude::*;
use surrealdb::types::{RecordId as PublicRecordId, Value as PublicValue};
use surrealdb_catalog::providers::{DatabaseProvider, TableProvider};
use surrealdb_catalog::{
    DatabaseId, Index, IndexId, LATEST_EDGE_VARIANT, Metadata, NamespaceId, Record, RecordType,
    Relation, TableType,
};
use surrealdb_datastore::Transaction;
use surrealdb_datastore::key::schema::{
    BuildStateKey, DocKeyKey, DocLookupIdentityKey, DocLookupKey, EntryKey, GraphKey,
    GraphPointerKey, RecordKey,
};
use surrealdb_datastore::values::entry::IndexEntryValue;
use surrealdb_datastore::values::graph::AdjacencyValue;
use surrealdb_datastore::values::ids::DocId;
use surrealdb_datastore::values::index_build::IndexBuildPhase;
use surrealdb_engine_local::Datastore;
use surrealdb_expr::expr::Part;
use surrealdb_expr::expr::dir::Dir;
use surrealdb_expr::val::{
    RecordId, RecordIdKey, RecordIdentity, TableName, Value, convert_public_value_to_internal,
};
use surrealdb_kvs::key::KVKey;
use surrealdb_kvs::value::KVValue;
use surrealdb_kvs::{Key, TransactionType};

use super::{Keyed, edge_value, node_value};
use crate::extract::{CodeGraph, EdgeKind, NodeType};

/// The datastore ids of the database that bulk writes go to.
#[derive(Clone, Copy, Debug)]
pub(super) struct Target {
    ns: NamespaceId,
    db: DatabaseId,
}

/// Looks up the ids of database `db` in namespace `ns` (both must exist).
pub(super) async fn target(ds: &Datastore, ns: &str, db: &str) -> Result<Target> {
    let tx = ds.transaction(TransactionType::Read).await?;
    let found = tx.get_db_by_name(ns, db, None).await;
    tx.cancel().await?;
    let def = found?.with_context(|| format!("database {ns}/{db} does not exist"))?;
    Ok(Target {
        ns: def.namespace_id,
        db: def.database_id,
    })
}

/// Runs `body` in a write transaction of `ds` and commits it. An error cancels the transaction, and so does
/// dropping the future (a cancelled build): the guard then cancels it on the runtime, as SurrealDB logs a
/// transaction dropped open as an error.
async fn in_write_transaction(
    ds: &Datastore,
    body: impl AsyncFnOnce(&Transaction) -> Result<()>,
) -> Result<()> {
    struct Guard(Option<Transaction>);
    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(tx) = self.0.take()
                && let Ok(rt) = tokio::runtime::Handle::try_current()
            {
                rt.spawn(async move {
                    let _ = tx.cancel().await;
                });
            }
        }
    }
    let mut guard = Guard(Some(ds.transaction(TransactionType::Write).await?));
    let written = body(guard.0.as_ref().expect("set above")).await;
    let tx = guard.0.take().expect("set above");
    match written {
        Ok(()) => tx.commit().await,
        Err(e) => {
            let _ = tx.cancel().await;
            Err(e)
        }
    }
}

/// Refuses relation table `tb` unless SurrealDB's insert writes exactly what [`write_edges`] writes for it.
async fn check_edge_table(tx: &Transaction, t: Target, tb: &TableName) -> Result<()> {
    let def = tx
        .get_tb(t.ns, t.db, tb, None)
        .await?
        .with_context(|| format!("table {tb} is not defined"))?;
    ensure!(
        matches!(
            def.table_type,
            TableType::Relation(Relation {
                lightweight: false,
                ..
            })
        ),
        "table {tb} is not a (classic) relation table"
    );
    ensure!(!def.drop, "table {tb} is a DROP table");
    ensure!(def.changefeed.is_none(), "table {tb} has a change feed");
    let (events, views, indexes, fields) = (
        tx.all_tb_events(t.ns, t.db, tb, None).await?,
        tx.all_tb_views(t.ns, t.db, tb, None).await?,
        tx.all_tb_indexes(t.ns, t.db, tb, None).await?,
        tx.all_tb_fields(t.ns, t.db, tb, None).await?,
    );
    ensure!(
        events.is_empty() && views.is_empty() && indexes.is_empty(),
        "table {tb} has events, views or indexes"
    );
    if let Some(f) = fields.iter().find(|f| f.inline) {
        bail!("table {tb} has an inline field ({:?})", f.name);
    }
    Ok(())
}

/// Refuses vertex table `tb` if an edge's write would also update a cache of its records' edges (`INLINE
/// EDGES`), or if it is a lightweight relation (which cannot be an edge's end).
async fn check_vertex_table(tx: &Transaction, t: Target, tb: &TableName) -> Result<()> {
    if let Some(def) = tx.get_tb(t.ns, t.db, tb, None).await? {
        ensure!(
            def.inline_edges_cap.unwrap_or(0) == 0,
            "table {tb} keeps an inline edge cache"
        );
        ensure!(
            !matches!(
                def.table_type,
                TableType::Relation(Relation {
                    lightweight: true,
                    ..
                })
            ),
            "table {tb} is a lightweight relation"
        );
    }
    Ok(())
}

/// `row` as SurrealDB's insert stores it: the public value in the engine's own types, merged into an empty
/// record (`Value::merge`), which drops every field that is NONE, in nested objects too (not inside arrays).
fn stored(row: PublicValue) -> Value {
    fn strip(v: &mut Value) {
        if let Value::Object(obj) = v {
            obj.0.retain(|_, v| !matches!(v, Value::None));
            obj.0.values_mut().for_each(strip);
        }
    }
    let mut v = convert_public_value_to_internal(row);
    strip(&mut v);
    v
}

/// Edge `edge`'s own graph key toward its end `end` (`dir`: `In` toward its `in`, `Out` toward its `out`).
fn inner_key<'a>(t: Target, edge: &'a RecordId, dir: Dir, end: &'a RecordId) -> GraphKey<'a> {
    GraphKey {
        ns: t.ns,
        db: t.db,
        tb: Cow::Borrowed(&edge.table),
        id: Cow::Borrowed(&edge.key),
        dir,
        foreign_table: Cow::Borrowed(&end.table),
        foreign_key: Cow::Borrowed(&end.key),
    }
}

/// The pointer key that vertex `from` holds for edge `edge`, whose far end is `to` (`dir`: `Out` on the edge's
/// `in`, `In` on its `out`).
fn pointer_key<'a>(
    t: Target,
    from: &'a RecordId,
    dir: Dir,
    edge: &'a RecordId,
    to: &'a RecordId,
) -> GraphPointerKey<'a> {
    GraphPointerKey {
        ns: t.ns,
        db: t.db,
        tb: Cow::Borrowed(&from.table),
        id: Cow::Borrowed(&from.key),
        dir,
        foreign_table: Cow::Borrowed(&edge.table),
        foreign_key: Cow::Borrowed(&edge.key),
        target_table: Cow::Borrowed(&to.table),
        target_key: Cow::Borrowed(&to.key),
    }
}

/// Adds `rid`'s key to the keys of a batch seen so far, refusing a key that is not a string (nanodex's ids are
/// strings) or one seen before.
fn claim(seen: &mut HashSet<String>, rid: &RecordId) -> Result<()> {
    let RecordIdKey::String(key) = &rid.key else {
        bail!("row {rid:?}: the key is not a string");
    };
    ensure!(
        seen.insert(key.as_str().to_owned()),
        "{rid:?} appears twice"
    );
    Ok(())
}

/// The record id in field `name` of `row`.
fn record_field<'a>(row: &'a Value, name: &str) -> Result<&'a RecordId> {
    match row {
        Value::Object(obj) => match obj.get(name) {
            Some(Value::RecordId(rid)) => Ok(rid),
            other => bail!("edge row: `{name}` is not a record id: {other:?}"),
        },
        other => bail!("edge row is not an object: {other:?}"),
    }
}

/// An encoded key and its encoded value, as a transaction hands them to the storage engine.
pub(super) type Pair = (Vec<u8>, Vec<u8>);

/// Appends `key` and `val`, encoded as [`Transaction::set_key`] encodes them, to `out`.
fn encode<K: KVKey>(key: &K, val: &K::Value, out: &mut Vec<Pair>) -> Result<()> {
    // Encoded into a buffer each thread reuses, then copied once at its length: growing a new `Vec` key by key
    // reallocated it several times per key (a fifth of a load's CPU was the allocator's).
    thread_local! {
        static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let k = BUF.with(|buf| {
        let mut buf = buf.borrow_mut();
        buf.clear();
        key.encode_buffer(&mut buf).map(|()| buf.to_vec())
    })?;
    out.push((k, val.kv_encode_value()?));
    Ok(())
}

/// Writes `pairs` into `tx`.
async fn set_all(tx: &Transaction, pairs: Vec<Pair>) -> Result<()> {
    for (k, v) in pairs {
        tx.set(Key::from(k), v).await?;
    }
    Ok(())
}

/// An edge row's record id and its ends (`in`, `out`).
fn edge_ends(data: &Value) -> Result<(RecordId, RecordId, RecordId)> {
    Ok((
        record_field(data, "id")?.clone(),
        record_field(data, "in")?.clone(),
        record_field(data, "out")?.clone(),
    ))
}

/// The keys under edge `rid`'s own table (`in -> rid -> out`, row `data` as [`stored`] returns it): its two
/// graph keys and its record.
fn edge_pairs(
    t: Target,
    (rid, l, r): &(RecordId, RecordId, RecordId),
    data: Value,
    out: &mut Vec<Pair>,
) -> Result<()> {
    encode(&inner_key(t, rid, Dir::In, l), &(), out)?;
    encode(&inner_key(t, rid, Dir::Out, r), &(), out)?;
    let key = RecordKey {
        ns: t.ns,
        db: t.db,
        tb: Cow::Borrowed(&rid.table),
        id: Cow::Borrowed(&rid.key),
    };
    let record = Record {
        metadata: Some(Metadata {
            record_type: RecordType::Edge {
                variant: LATEST_EDGE_VARIANT,
            },
            aggregation_stats: Vec::new(),
        }),
        data,
    };
    encode(&key, &record, out)
}

/// The pointer key that edge `rid` (`in -> rid -> out`) leaves on its end `end` (`Dir::Out`: its `in`,
/// `Dir::In`: its `out`), with a live adjacency value.
fn pointer_pair(
    t: Target,
    (rid, l, r): &(RecordId, RecordId, RecordId),
    end: Dir,
    out: &mut Vec<Pair>,
) -> Result<()> {
    let key = match end {
        Dir::Out => pointer_key(t, l, Dir::Out, rid, r),
        _ => pointer_key(t, r, Dir::In, rid, l),
    };
    encode(&key, &AdjacencyValue::live(), out)
}

/// Writes `rows` (objects with `id`, `in`, `out` and the edge's fields, as the SurrealQL insert binds them) into
/// relation table `table` of `t`, in one transaction.
pub(super) async fn write_edges(
    ds: &Datastore,
    t: Target,
    table: &str,
    rows: Vec<PublicValue>,
) -> Result<()> {
    let tb = TableName::new(table);
    in_write_transaction(ds, async |tx: &Transaction| {
        check_edge_table(tx, t, &tb).await?;
        let mut vertex_tables: HashSet<TableName> = HashSet::new();
        let mut seen: HashSet<String> = HashSet::with_capacity(rows.len());
        let mut pairs = Vec::with_capacity(rows.len() * 5);
        for row in rows {
            let data = stored(row);
            let ends = edge_ends(&data)?;
            for vt in [&ends.1.table, &ends.2.table] {
                if !vertex_tables.contains(vt) {
                    check_vertex_table(tx, t, vt).await?;
                    vertex_tables.insert(vt.clone());
                }
            }
            ensure!(
                ends.0.table == tb,
                "edge row {:?} is not in table {table}",
                ends.0
            );
            claim(&mut seen, &ends.0)?;
            pointer_pair(t, &ends, Dir::Out, &mut pairs)?;
            pointer_pair(t, &ends, Dir::In, &mut pairs)?;
            edge_pairs(t, &ends, data, &mut pairs)?;
        }
        set_all(tx, pairs).await
    })
    .await
}

/// SurrealDB's default `table_doc_ids_batch_size`: how many doc-ids the table's allocator reserves at a time.
/// Only the allocator's own bookkeeping depends on it, not which ids records get.
const DOC_ID_BATCH: u32 = 1000;

/// A node table's indexes, as [`write_nodes`] maintains them: the index id, the indexed field, and whether its
/// entries carry the record's doc-id.
struct NodeIndex {
    ix: IndexId,
    field: String,
    doc_ids: bool,
}

/// Refuses node table `tb` unless SurrealDB's insert writes exactly what [`write_nodes`] writes for it, and
/// returns its indexes: a normal table with no events, views, change feed or live queries, whose indexes are
/// plain (non-unique) indexes over one top-level field each, each online (no build under way).
async fn check_node_table(tx: &Transaction, t: Target, tb: &TableName) -> Result<Vec<NodeIndex>> {
    let def = tx
        .get_tb(t.ns, t.db, tb, None)
        .await?
        .with_context(|| format!("table {tb} is not defined"))?;
    ensure!(
        matches!(def.table_type, TableType::Normal | TableType::Any),
        "table {tb} is a relation table"
    );
    ensure!(!def.drop, "table {tb} is a DROP table");
    ensure!(def.changefeed.is_none(), "table {tb} has a change feed");
    let (events, views, lives) = (
        tx.all_tb_events(t.ns, t.db, tb, None).await?,
        tx.all_tb_views(t.ns, t.db, tb, None).await?,
        tx.all_tb_lives(t.ns, t.db, tb, None).await?,
    );
    ensure!(
        events.is_empty() && views.is_empty() && lives.is_empty(),
        "table {tb} has events, views or live queries"
    );
    let mut out = Vec::new();
    for ix in tx.all_tb_indexes(t.ns, t.db, tb, None).await?.iter() {
        ensure!(
            matches!(ix.index, Index::Idx) && ix.count_cond.is_none() && !ix.prepare_remove,
            "index {} on {tb} is not a plain index",
            ix.name
        );
        let field = match ix.cols.as_slice() {
            [idiom] => match idiom.0.as_slice() {
                [Part::Field(f)] => f.as_str().to_owned(),
                _ => bail!("index {} on {tb} is not over a top-level field", ix.name),
            },
            _ => bail!("index {} on {tb} has several columns", ix.name),
        };
        let state = BuildStateKey::new(t.ns, t.db, Cow::Borrowed(tb), ix.index_id);
        if let Some(state) = tx.get_key(&state, None).await? {
            ensure!(
                matches!(state.phase, IndexBuildPhase::Online),
                "index {} on {tb} is being built",
                ix.name
            );
        }
        out.push(NodeIndex {
            ix: ix.index_id,
            field,
            doc_ids: ix.has_entry_doc_ids(),
        });
    }
    Ok(out)
}

/// The keys of node row `data` (as [`stored`] returns it) of table `tb`: its record; with `doc_id` (when an index
/// carries doc-ids), the doc-id's three mappings; and one entry per index (`surrealdb-core` 3.3.5
/// `doc/index.rs`, `surrealdb-idx` `index.rs` and `docids.rs`, `TableDocIds::resolve_or_assign` on a record that
/// has none).
fn node_pairs(
    t: Target,
    tb: &TableName,
    indexes: &[NodeIndex],
    data: Value,
    doc_id: Option<DocId>,
    out: &mut Vec<Pair>,
) -> Result<()> {
    let rid = record_field(&data, "id")?.clone();
    ensure!(rid.table == *tb, "node row {rid:?} is not in table {tb}");
    let Value::Object(obj) = &data else {
        bail!("node row is not an object");
    };
    let (ns, db) = (t.ns, t.db);
    if let Some(doc_id) = doc_id {
        let dj =
            DocLookupIdentityKey::new(ns, db, Cow::Borrowed(tb), RecordIdentity(rid.key.clone()));
        encode(&dj, &doc_id, out)?;
        encode(
            &DocKeyKey::new(ns, db, Cow::Borrowed(tb), doc_id),
            &rid.key,
            out,
        )?;
        let di = DocLookupKey::new(ns, db, Cow::Borrowed(tb), Cow::Borrowed(&rid.key));
        encode(&di, &doc_id, out)?;
    }
    for ix in indexes {
        let value = obj.get(ix.field.as_str()).cloned().unwrap_or(Value::None);
        ensure!(
            !matches!(value, Value::Array(_)),
            "node {rid:?}: indexed field {} is an array",
            ix.field
        );
        let fd = [value];
        let entry = EntryKey {
            ns,
            db,
            tb: Cow::Borrowed(tb),
            ix: ix.ix,
            fd: Cow::Borrowed(&fd[..]),
            id: Cow::Borrowed(&rid.key),
        };
        let entry_value = IndexEntryValue {
            rid: rid.clone(),
            doc_id: if ix.doc_ids { doc_id } else { None },
        };
        encode(&entry, &entry_value, out)?;
    }
    let key = RecordKey {
        ns,
        db,
        tb: Cow::Borrowed(&rid.table),
        id: Cow::Borrowed(&rid.key),
    };
    encode(&key, &Record::new(data), out)
}

/// Writes `rows` (node objects with their `id`, as the SurrealQL insert binds them) into node table `table` of
/// `t`, in one transaction ([`node_pairs`]; doc-ids drawn from the table's allocator).
pub(super) async fn write_nodes(
    ds: &Datastore,
    t: Target,
    table: &str,
    rows: Vec<PublicValue>,
) -> Result<()> {
    let tb = TableName::new(table);
    in_write_transaction(ds, async |tx: &Transaction| {
        let indexes = check_node_table(tx, t, &tb).await?;
        let doc_ids = indexes.iter().any(|ix| ix.doc_ids);
        let sequences = tx.sequences();
        let mut seen: HashSet<String> = HashSet::with_capacity(rows.len());
        let mut pairs = Vec::with_capacity(rows.len() * 7);
        for row in rows {
            let data = stored(row);
            claim(&mut seen, record_field(&data, "id")?)?;
            let doc_id = if doc_ids {
                Some(
                    sequences
                        .next_table_doc_id(None, t.ns, t.db, tb.clone(), DOC_ID_BATCH)
                        .await?,
                )
            } else {
                None
            };
            node_pairs(t, &tb, &indexes, data, doc_id, &mut pairs)?;
        }
        set_all(tx, pairs).await
    })
    .await
}

/// One table of a [`Plan`] and what its keys need.
enum Planned {
    /// Node table `tb`: the graph's nodes of type `ty`, its indexes and, when an index carries doc-ids, each
    /// node's doc-id (in the order of `rows`).
    Nodes {
        ty: NodeType,
        tb: TableName,
        rows: Vec<usize>,
        indexes: Vec<NodeIndex>,
        doc_ids: Option<Vec<DocId>>,
    },
    /// Relation table `tb`: the graph's edges of kind `kind`.
    Edges { tb: TableName, rows: Vec<usize> },
}

/// A bulk load of a graph into database `t` of a fresh embedded store ([`ingest`]): its tables in the order of
/// their keys. Made while SurrealDB holds the store, which checks the tables as [`write_nodes`] and
/// [`write_edges`] do and draws the nodes' doc-ids from its allocators, as the writes would, in the same order.
pub(super) struct Plan {
    t: Target,
    tables: Vec<Planned>,
}

/// Plans the bulk load of `graph` into database `t` of `ds` (see [`Plan`]).
pub(super) async fn plan(ds: &Datastore, t: Target, graph: &CodeGraph) -> Result<Plan> {
    let mut tables = Vec::new();
    in_write_transaction(ds, async |tx: &Transaction| {
        let sequences = tx.sequences();
        for ty in NodeType::ALL {
            let tb = TableName::new(ty.as_str());
            check_vertex_table(tx, t, &tb).await?;
            let indexes = check_node_table(tx, t, &tb).await?;
            let rows: Vec<usize> = (0..graph.nodes.len())
                .filter(|&i| graph.nodes[i].id.ty == ty)
                .collect();
            let doc_ids = if indexes.iter().any(|ix| ix.doc_ids) {
                let mut ids = Vec::with_capacity(rows.len());
                for _ in &rows {
                    ids.push(
                        sequences
                            .next_table_doc_id(None, t.ns, t.db, tb.clone(), DOC_ID_BATCH)
                            .await?,
                    );
                }
                Some(ids)
            } else {
                None
            };
            tables.push(Planned::Nodes {
                ty,
                tb,
                rows,
                indexes,
                doc_ids,
            });
        }
        for kind in EdgeKind::ALL {
            let tb = TableName::new(kind.as_str());
            check_edge_table(tx, t, &tb).await?;
            let rows = (0..graph.edges.len())
                .filter(|&i| graph.edges[i].kind == kind)
                .collect();
            tables.push(Planned::Edges { tb, rows });
        }
        Ok(())
    })
    .await?;
    // Every key of a table starts with the table's prefix (`/*{ns}*{db}*{tb}`), so the tables' record keys order
    // the tables; the load refuses a key out of order, should that ever not hold.
    let mut ordered = Vec::with_capacity(tables.len());
    for planned in tables {
        let tb = match &planned {
            Planned::Nodes { tb, .. } | Planned::Edges { tb, .. } => tb,
        };
        let mut probe = Vec::new();
        RecordKey {
            ns: t.ns,
            db: t.db,
            tb: Cow::Borrowed(tb),
            id: Cow::Owned(RecordIdKey::String(String::new().into())),
        }
        .encode_buffer(&mut probe)?;
        ordered.push((probe, planned));
    }
    ordered.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Plan {
        t,
        tables: ordered.into_iter().map(|(_, planned)| planned).collect(),
    })
}

/// Record id `table:key` as SurrealDB stores the public one that [`super::edge_value`] builds.
fn record_id(table: &str, key: &str) -> Result<RecordId> {
    match convert_public_value_to_internal(PublicValue::RecordId(PublicRecordId::new(table, key))) {
        Value::RecordId(rid) => Ok(rid),
        other => bail!("{table}:{key} converted to {other:?}"),
    }
}

/// Rows (or edges) per rayon job of [`table_pairs`].
const CHUNK: usize = 2048;

/// The pairs that `each(i, item, out)` appends for every item of `items` (`i`: its index), encoded on rayon in
/// chunks of [`CHUNK`] and then put into one vector of the exact size.
fn encode_all<T: Sync>(
    items: &[T],
    each: impl Fn(usize, &T, &mut Vec<Pair>) -> Result<()> + Sync,
) -> Result<Vec<Pair>> {
    let parts = items
        .par_chunks(CHUNK)
        .enumerate()
        .map(|(c, chunk)| {
            let mut out = Vec::with_capacity(chunk.len() * 4);
            for (o, item) in chunk.iter().enumerate() {
                each(c * CHUNK + o, item, &mut out)?;
            }
            Ok(out)
        })
        .collect::<Result<Vec<Vec<Pair>>>>()?;
    let mut all = Vec::with_capacity(parts.iter().map(Vec::len).sum());
    parts.into_iter().for_each(|part| all.extend(part));
    Ok(all)
}

/// The order of `pairs` by key (indices into it). The keys of one table share a long prefix (`/*{ns}*{db}*{tb}`),
/// so each key's next 16 bytes after it are read once into an integer, and the sort compares those, then the rest
/// of two keys only where they tie; sorting the pairs themselves by whole keys (moving 48-byte pairs, comparing
/// from the first byte) was a quarter of a load's CPU.
fn key_order(pairs: &[Pair]) -> Result<Vec<u32>> {
    ensure!(
        u32::try_from(pairs.len()).is_ok(),
        "{} keys in one table",
        pairs.len()
    );
    let Some(((first, _), rest)) = pairs.split_first() else {
        return Ok(Vec::new());
    };
    let common = rest.iter().fold(first.len(), |n, (k, _)| {
        n.min(k.iter().zip(first).take_while(|(a, b)| a == b).count())
    });
    let head = |k: &[u8]| -> u128 {
        let tail = &k[common..];
        match tail.get(..16) {
            Some(h) => u128::from_be_bytes(h.try_into().expect("16 bytes")),
            None => {
                let mut b = [0u8; 16];
                b[..tail.len()].copy_from_slice(tail);
                u128::from_be_bytes(b)
            }
        }
    };
    let mut order: Vec<(u128, u32)> = pairs
        .par_iter()
        .enumerate()
        .map(|(i, (k, _))| (head(k), i as u32))
        .collect();
    order.par_sort_unstable_by(|(ha, a), (hb, b)| {
        ha.cmp(hb).then_with(|| {
            let (a, b) = (&pairs[*a as usize].0, &pairs[*b as usize].0);
            a[common..].cmp(&b[common..])
        })
    });
    Ok(order.into_iter().map(|(_, i)| i).collect())
}

/// Every key of one planned table, and their order by key ([`key_order`]): for a node table, its nodes' keys and the pointer keys its nodes hold
/// for their edges; for a relation table, its edges' records and graph keys.
fn table_pairs(
    t: Target,
    planned: &Planned,
    graph: &CodeGraph,
    keyed: &Keyed,
) -> Result<(Vec<Pair>, Vec<u32>)> {
    let pairs = match planned {
        Planned::Nodes {
            ty,
            tb,
            rows,
            indexes,
            doc_ids,
        } => {
            let mut nodes = encode_all(rows, |j, &i, out| {
                let data = stored(node_value(&graph.nodes[i]));
                let doc_id = doc_ids.as_ref().map(|ids| ids[j]);
                node_pairs(t, tb, indexes, data, doc_id, out)
            })?;
            let pointers = encode_all(&graph.edges, |i, e, out| {
                if e.from.ty != *ty && e.to.ty != *ty {
                    return Ok(());
                }
                let ends = (
                    record_id(e.kind.as_str(), keyed.edge_key(i))?,
                    record_id(e.from.ty.as_str(), &e.from.key)?,
                    record_id(e.to.ty.as_str(), &e.to.key)?,
                );
                if e.from.ty == *ty {
                    pointer_pair(t, &ends, Dir::Out, out)?;
                }
                if e.to.ty == *ty {
                    pointer_pair(t, &ends, Dir::In, out)?;
                }
                Ok(())
            })?;
            nodes.extend(pointers);
            nodes
        }
        Planned::Edges { tb, rows } => encode_all(rows, |_, &i, out| {
            let data = stored(edge_value(&graph.edges[i], keyed.edge_key(i)));
            let ends = edge_ends(&data)?;
            ensure!(
                ends.0.table == *tb,
                "edge row {:?} is not in table {tb}",
                ends.0
            );
            edge_pairs(t, &ends, data, out)
        })?,
    };
    let order = key_order(&pairs)?;
    Ok((pairs, order))
}

/// Loads `graph` as `plan` says into the store at `path`, which SurrealDB must have closed: each table's keys and
/// values, as [`write_nodes`] and [`write_edges`] would write them, go in key order straight into new tables of
/// the storage engine's bottom level (vendored SurrealKV, patch 8: `Tree::ingest`), without its write-ahead log,
/// memtable and compactions. The engine refuses a key out of order or one the store holds already (two nodes or
/// edges with one id, too). `on_table(table, rows)` follows each table.
pub(super) async fn ingest(
    path: &Path,
    plan: &Plan,
    graph: &CodeGraph,
    keyed: &Keyed,
    mut on_table: impl FnMut(&str, usize),
) -> Result<()> {
    let tree = super::conn::open_tree(path)?;
    let loaded = load(&tree, plan, graph, keyed, &mut on_table).await;
    let closed = tree.close().await;
    loaded?;
    Ok(closed?)
}

/// The load of [`ingest`] into `tree`. Each table's keys are encoded (on rayon) while the previous table's go into
/// the engine (one thread): on JDK java.base the encoding took 1.1 s and the writing 0.7 s one after the other.
/// Between two tables the load yields to the runtime, so a cancelled build (its future dropped) stops there.
async fn load(
    tree: &surrealkv::Tree,
    plan: &Plan,
    graph: &CodeGraph,
    keyed: &Keyed,
    on_table: &mut impl FnMut(&str, usize),
) -> Result<()> {
    let mut ingest = tree.ingest()?;
    let encode = |planned: Option<&Planned>| planned.map(|p| table_pairs(plan.t, p, graph, keyed));
    let mut encoded = encode(plan.tables.first()).transpose()?;
    for (i, planned) in plan.tables.iter().enumerate() {
        let (tb, rows) = match planned {
            Planned::Nodes { tb, rows, .. } | Planned::Edges { tb, rows } => (tb, rows.len()),
        };
        let (pairs, order) = encoded.take().expect("encoded before");
        let started = std::time::Instant::now();
        let (next, written) = rayon::join(
            || encode(plan.tables.get(i + 1)),
            || -> Result<()> {
                for &at in &order {
                    let (k, v) = &pairs[at as usize];
                    ingest
                        .add(k, v)
                        .with_context(|| format!("loading table {tb}"))?;
                }
                Ok(())
            },
        );
        written?;
        encoded = next.transpose()?;
        tracing::debug!(
            table = %tb,
            keys = pairs.len(),
            ms = started.elapsed().as_millis() as u64,
            "table loaded while the next one was encoded"
        );
        on_table(tb.as_str(), rows);
        tokio::task::yield_now().await;
    }
    Ok(ingest.finish()?)
}

/// Every key under database `t` that holds the database's data rather than its schema, with its value: the route of
/// its kind in SurrealDB's keyspace (e.g. `/*{ns}*{db}*{tb}*{id}`), then the key with the database's own prefix cut
/// off. Left out: the definitions (tables, fields, indexes, ...), which carry creation-time ids and timestamps,
/// the allocators' state, which names the datastore's node, and the
/// indexes' build state, which names its build (tests: a small datastore, read in one batch).
#[cfg(test)]
pub(super) async fn dump(
    ds: &Datastore,
    t: Target,
) -> Result<Vec<(&'static str, Vec<u8>, Vec<u8>)>> {
    use surrealdb_datastore::key::schema::{AnyKey, DbRoot};
    use surrealdb_kvs::key::KVSubspace;
    const SCHEMA: [&str; 15] = [
        "!tb", "!ti", "!th", "!ev", "!fd", "!ft", "!il", "!ix", "!lq", "!ih", "!is", "!dh", "!ds",
        "!bs", "!bt",
    ];
    let root = DbRoot { ns: t.ns, db: t.db };
    let prefix = root.encode_bound()?.to_vec();
    let tx = ds.transaction(TransactionType::Read).await?;
    let batch = tx
        .batch_keys_vals_raw(root.raw_range()?, 1_000_000, None)
        .await;
    tx.cancel().await?;
    let batch = batch?;
    ensure!(batch.next.is_none(), "more than a million keys");
    let mut out = Vec::new();
    for (k, v) in batch.result {
        let route = AnyKey::decode(&k)
            .with_context(|| format!("undecodable key {k:?}"))?
            .kind()
            .route();
        if !SCHEMA.iter().any(|s| route.contains(s)) {
            out.push((route, k[prefix.len()..].to_vec(), v.to_vec()));
        }
    }
    Ok(out)
}
