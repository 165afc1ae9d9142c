//! SurrealDB's per-transaction catalog cache must find what it stored. Every record a statement writes looks up
//! its table's definition (and a relation its two ends' tables) through this cache.
//!
//! The cache stores a `Key` and is searched with a `Lookup`; both derive `Hash`, which hashes the variant's
//! index. In surrealdb-datastore 3.3.5 the two enums list `Tb`/`TbByName` and `Sqs`/`Tbs`/`DbReferenceTargets`
//! in different orders, so those lookups always missed and went to the storage engine: on the JDK corpus
//! about a fifth of the graph write's CPU. nanodex builds a patched copy (`vendor/surrealdb-datastore`, see its
//! `PATCHES.md`); this test fails against the released crate.

use std::sync::Arc;

use surrealdb_datastore::cache::tx::{Entry, Lookup, TransactionCache};
use surrealdb_datastore::catalog::{DatabaseId, NamespaceId};

/// Makes one lookup (a cache entry is stored under one and searched with another).
type MakeLookup = fn() -> Lookup<'static>;

#[test]
fn catalog_lookups_hit_what_the_transaction_cached() {
    const NS: NamespaceId = NamespaceId(1);
    const DB: DatabaseId = DatabaseId(2);
    // Each lookup is made twice: once to store its entry (as the cache's `Key`), once to search for it.
    let lookups: [(&str, MakeLookup); 7] = [
        ("table by id", || Lookup::Tb(NS, DB, "function")),
        ("table by name", || {
            Lookup::TbByName("nanodex", "g1", "function")
        }),
        ("tables of a database", || Lookup::Tbs(NS, DB)),
        ("sequences of a database", || Lookup::Sqs(NS, DB)),
        ("reference targets", || Lookup::DbReferenceTargets(NS, DB)),
        // Variants whose order always matched, as a control.
        ("index", || Lookup::Ix(NS, DB, "function", "function_name")),
        ("fields of a table", || Lookup::Fds(NS, DB, "function")),
    ];
    let missed: Vec<&str> = lookups
        .into_iter()
        .enumerate()
        .filter_map(|(i, (what, lookup))| {
            let cache = TransactionCache::new(512);
            cache.insert(lookup(), Entry::Any(Arc::new(i)));
            let found = cache
                .get(&lookup())
                .and_then(|e| e.try_into_type::<usize>().ok());
            (found.as_deref() != Some(&i)).then_some(what)
        })
        .collect();
    assert!(missed.is_empty(), "cached but not found: {missed:?}");
}
