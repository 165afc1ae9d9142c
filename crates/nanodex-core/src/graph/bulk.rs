//! Bulk writes of a fresh graph into the embedded datastore: each batch of rows becomes the keys and values that
//! SurrealDB's own `OPTION IMPORT; INSERT [RELATION] INTO <table> $rows` writes, put through one of the
//! datastore's transactions without the query engine.
//!
//! Why: on the JDK's java.base graph (60k nodes, 208k edges) the query engine's per-record pipeline (statement
//! futures, document processing, a read before each record's write, the index builder's admission check in a
//! transaction of its own per record and index, the transaction's record cache) was most of a `--full` rebuild's
//! store phase; with this module that phase went from 9.2-9.9 s to 5.0-5.5 s.
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
use surrealdb::types::Value as PublicValue;
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
use surrealdb_datastore::values::index_build::IndexBuildPhase;
use surrealdb_engine_local::Datastore;
use surrealdb_expr::expr::Part;
use surrealdb_expr::expr::dir::Dir;
use surrealdb_expr::val::{
    RecordId, RecordIdKey, RecordIdentity, TableName, Value, convert_public_value_to_internal,
};
use surrealdb_kvs::TransactionType;

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
        for row in rows {
            let data = stored(row);
            let (rid, l, r) = (
                record_field(&data, "id")?.clone(),
                record_field(&data, "in")?.clone(),
                record_field(&data, "out")?.clone(),
            );
            for vt in [&l.table, &r.table] {
                if !vertex_tables.contains(vt) {
                    check_vertex_table(tx, t, vt).await?;
                    vertex_tables.insert(vt.clone());
                }
            }
            ensure!(rid.table == tb, "edge row {rid:?} is not in table {table}");
            claim(&mut seen, &rid)?;
            let (ns, db) = (t.ns, t.db);
            let (etl, etr) = (
                inner_key(t, &rid, Dir::In, &l),
                inner_key(t, &rid, Dir::Out, &r),
            );
            let (ltr, rtl) = (
                pointer_key(t, &l, Dir::Out, &rid, &r),
                pointer_key(t, &r, Dir::In, &rid, &l),
            );
            let live = AdjacencyValue::live();
            tx.set_key(&ltr, &live).await?;
            tx.set_key(&etl, &()).await?;
            tx.set_key(&etr, &()).await?;
            tx.set_key(&rtl, &live).await?;
            let key = RecordKey {
                ns,
                db,
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
            tx.set_key(&key, &record).await?;
        }
        Ok(())
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

/// Writes `rows` (node objects with their `id`, as the SurrealQL insert binds them) into node table `table` of
/// `t`, in one transaction: per node, its record; when an index carries doc-ids, the record's doc-id (drawn from
/// the table's allocator) and its three mappings; and one entry per index (`surrealdb-core` 3.3.5
/// `doc/index.rs`, `surrealdb-idx` `index.rs` and `docids.rs`, `TableDocIds::resolve_or_assign` on a record that
/// has none).
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
        let (ns, db) = (t.ns, t.db);
        let mut seen: HashSet<String> = HashSet::with_capacity(rows.len());
        for row in rows {
            let data = stored(row);
            let rid = record_field(&data, "id")?.clone();
            ensure!(rid.table == tb, "node row {rid:?} is not in table {table}");
            claim(&mut seen, &rid)?;
            let Value::Object(obj) = &data else {
                bail!("node row is not an object");
            };
            let doc_id = if doc_ids {
                let doc_id = sequences
                    .next_table_doc_id(None, ns, db, tb.clone(), DOC_ID_BATCH)
                    .await?;
                let dj = DocLookupIdentityKey::new(
                    ns,
                    db,
                    Cow::Borrowed(&tb),
                    RecordIdentity(rid.key.clone()),
                );
                tx.set_key(&dj, &doc_id).await?;
                let dd = DocKeyKey::new(ns, db, Cow::Borrowed(&tb), doc_id);
                tx.set_key(&dd, &rid.key).await?;
                let di = DocLookupKey::new(ns, db, Cow::Borrowed(&tb), Cow::Borrowed(&rid.key));
                tx.set_key(&di, &doc_id).await?;
                Some(doc_id)
            } else {
                None
            };
            for ix in &indexes {
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
                    tb: Cow::Borrowed(&tb),
                    ix: ix.ix,
                    fd: Cow::Borrowed(&fd[..]),
                    id: Cow::Borrowed(&rid.key),
                };
                let entry_value = IndexEntryValue {
                    rid: rid.clone(),
                    doc_id: if ix.doc_ids { doc_id } else { None },
                };
                tx.set_key(&entry, &entry_value).await?;
            }
            let key = RecordKey {
                ns,
                db,
                tb: Cow::Borrowed(&rid.table),
                id: Cow::Borrowed(&rid.key),
            };
            tx.set_key(&key, &Record::new(data)).await?;
        }
        Ok(())
    })
    .await
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
