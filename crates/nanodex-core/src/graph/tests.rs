use super::*;
use crate::extract::Lang;
use crate::extract::{ParsedFile, parse_file, resolve};
use crate::progress::NoProgress;

fn graph_of(files: &[(&str, &str)]) -> CodeGraph {
    let parsed: Vec<ParsedFile> = files
        .iter()
        .map(|(path, src)| ParsedFile {
            path: path.to_string(),
            lang: Lang::from_path(Path::new(path)).unwrap(),
            hash: blake3::hash(src.as_bytes()).to_hex().to_string(),
            size: src.len() as u64,
            invalid_utf8: false,
            stat: None,
            facts: parse_file(Lang::from_path(Path::new(path)).unwrap(), src),
        })
        .collect();
    resolve::build_graph("demo", &parsed, &[])
}

/// The embedded on-disk store's settings (the workspace is the caller's temporary folder).
fn on_disk() -> GraphConfig {
    GraphConfig {
        store: Store::Workspace,
        namespace: "nanodex".into(),
        batch_size: 1000,
        write_tasks: 0,
    }
}

/// A current-thread runtime for one test (also the lease tests').
pub(super) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn write_inspect_show_and_traverse_in_memory() {
    rt().block_on(async {
        let graph = graph_of(&[
            ("pkg/__init__.py", "from .core import load\n"),
            ("pkg/core.py", "class LoadError(ValueError):\n    pass\n\ndef parse(s):\n    raise LoadError(s)\n\ndef load(s):\n    return parse(s)\n"),
        ]);
        let mut store = GraphStore::memory().await.unwrap();
        assert!(!store.has_graph());
        let report = store.write(&graph, "/tmp/demo", false, &NoProgress).await.unwrap();
        assert_eq!(report.mode, "full");
        assert_eq!(report.inserted as usize, graph.nodes.len() + graph.edges.len());

        let inspect = store.inspect().await.unwrap();
        assert_eq!(inspect.nodes["function"], 2);
        assert_eq!(inspect.nodes["class"], 1);
        assert_eq!(inspect.nodes["module"], 2);
        assert_eq!(inspect.edges["calls"], 2, "load→parse and parse→LoadError");
        assert_eq!(inspect.edges["throws"], 1);
        assert_eq!(inspect.root, "/tmp/demo");
        assert!(inspect.resolved_call_share > 0.99);

        let shown = store.show("pkg.core.load").await.unwrap();
        assert_eq!(shown.len(), 1);
        let calls: Vec<_> = shown[0].edges.iter().filter(|e| e.kind == "calls" && e.direction == "out").collect();
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].qname, "pkg.core.parse");
        assert_eq!(calls[0].lines, vec![8]);

        // Graph traversal in SurrealQL: who raises LoadError, via the relation tables.
        let rows = store
            .query_readonly("SELECT VALUE <-throws<-function.qname FROM class WHERE name = 'LoadError'")
            .await
            .unwrap();
        assert_eq!(rows[0], serde_json::json!([["pkg.core.parse"]]));
        let rows = store.query_readonly("SELECT VALUE ->calls->function.name FROM `function` WHERE name = 'load'").await.unwrap();
        assert_eq!(rows[0], serde_json::json!([["parse"]]));
    });
}

#[test]
fn the_store_location_names_the_directory_memory_or_the_server() {
    let cfg = |store| GraphConfig {
        store,
        namespace: "team".into(),
        batch_size: 1000,
        write_tasks: 0,
    };
    let ws = Path::new("/work/ws");
    assert_eq!(
        store_location(&cfg(Store::Workspace), ws),
        Path::new("/work/ws/brain/graph.db").display().to_string()
    );
    assert_eq!(store_location(&cfg(Store::Memory), ws), "memory");
    assert_eq!(
        store_location(&cfg(Store::Remote("ws://127.0.0.1:8000".into())), ws),
        "ws://127.0.0.1:8000 (namespace team)"
    );
}

#[test]
fn read_only_queries_reject_writes() {
    assert!(check_read_only("SELECT * FROM function WHERE name = 'delete'").is_ok());
    assert!(check_read_only("SELECT `update` FROM x").is_ok());
    assert!(check_read_only("SELECT name FROM x -- delete me\n WHERE a > 1 /* update */").is_ok());
    assert!(check_read_only("SELECT math::max([1, 2]) - 1 / 2 FROM x").is_ok());
    for bad in [
        "DELETE function",
        "select 1; CREATE x",
        "UPDATE function SET a = 1",
        "INSERT INTO x {}",
        "REMOVE TABLE x",
        "RETURN http::get('x')",
        // A quote inside a comment must not open a string that hides the next statement.
        "SELECT 1; -- it's\nREMOVE TABLE class; -- '",
        "SELECT 1; // it's\nREMOVE TABLE class; // '",
        "SELECT 1; # it's\nREMOVE TABLE class; # '",
        "SELECT 1; /* it's */ REMOVE TABLE class; /* ' */",
    ] {
        assert!(
            matches!(check_read_only(bad), Err(GraphError::ReadOnly(_))),
            "{bad}"
        );
    }
}

#[test]
fn show_unknown_name_is_a_clear_error() {
    rt().block_on(async {
        let mut store = GraphStore::memory().await.unwrap();
        assert!(matches!(
            store.inspect().await,
            Err(GraphError::Empty { .. })
        ));
        store
            .write(
                &graph_of(&[("a.py", "def f():\n    pass\n")]),
                "/r",
                false,
                &NoProgress,
            )
            .await
            .unwrap();
        let err = store.show("nope").await.unwrap_err();
        assert!(err.to_string().contains("no node named `nope`"), "{err}");
    });
}

/// Boost.Asio's receiver_invocation_error.hpp: `#if` inside the class head makes tree-sitter wrap the head in an
/// ERROR node, so its base types have no enclosing class. They used to become `extends` edges from the module,
/// which the schema (extends: class -> class) refused, failing the whole write.
#[test]
fn base_types_outside_a_parsed_class_are_dropped_not_stored_from_the_module() {
    let src = "namespace execution {\n\nclass receiver_invocation_error\n  : public std::runtime_error\n\
               #if defined(HAS_NESTED)\n  , public std::nested_exception\n#endif\n{\npublic:\n  \
               receiver_invocation_error();\n};\n\n} // namespace execution\n";
    let graph = graph_of(&[("receiver_invocation_error.hpp", src)]);
    assert!(
        parse_file(Lang::Cpp, src).has_error,
        "the fixture no longer trips tree-sitter; pick another"
    );
    for e in &graph.edges {
        if matches!(e.kind, EdgeKind::Extends | EdgeKind::Implements) {
            assert_eq!(e.from.ty, NodeType::Class, "{e:?}");
        }
    }
    rt().block_on(async {
        let mut store = GraphStore::memory().await.unwrap();
        store
            .write(&graph, "/tmp/demo", false, &NoProgress)
            .await
            .unwrap();
    });
}

#[test]
fn a_change_larger_than_one_transaction_may_hold_is_written_as_a_full_build() {
    rt().block_on(async {
        let ws = tempfile::tempdir().unwrap();
        let cfg = on_disk();
        let before = graph_of(&[
            (
                "a.py",
                "def f():\n    return g()\n\ndef g():\n    return 1\n",
            ),
            ("b.py", "def h():\n    return 2\n"),
        ]);
        // A new function and call in a.py: a few changed records, within the default limit.
        let after = graph_of(&[
            (
                "a.py",
                "def f():\n    return g()\n\ndef g():\n    return k()\n\ndef k():\n    return 1\n",
            ),
            ("b.py", "def h():\n    return 2\n"),
        ]);
        let mut store = GraphStore::open(&cfg, ws.path(), true).await.unwrap();
        let reset = store.write(&before, "r", false, &NoProgress).await.unwrap();
        assert_eq!(reset.mode, "full");
        let small = store.write(&after, "r", false, &NoProgress).await.unwrap();
        assert_eq!(small.mode, "incremental");
        let touched = (small.inserted + small.updated + small.deleted) as usize;
        assert!(touched >= 2, "k and the g→k call are new: {small:?}");

        // The same change against a limit below it: one full build instead of an oversized transaction.
        store.max_incremental = touched - 1;
        let reset = store.write(&before, "r", false, &NoProgress).await.unwrap();
        assert_eq!(reset.mode, "full");
        let capped = store.write(&after, "r", false, &NoProgress).await.unwrap();
        assert_eq!(capped.mode, "full");
        assert_eq!(
            capped.inserted as usize,
            after.nodes.len() + after.edges.len()
        );
        store.close().await;
    });
}

#[test]
fn an_interrupted_rebuild_is_completed_or_discarded_on_open() {
    let tmp = tempfile::tempdir().unwrap();
    let live = tmp.path().join("graph.db");
    let (next, old, marker) = swap_paths(&live);
    let mark = |dir: &Path, what: &str| {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("which"), what).unwrap();
    };
    let which = |dir: &Path| std::fs::read_to_string(dir.join("which")).unwrap();

    // Killed while writing the new store: it is discarded, the live one stays.
    mark(&live, "live");
    mark(&next, "next");
    finish_swap(&live).unwrap();
    assert_eq!(which(&live), "live");
    assert!(!next.exists());

    // Killed after the marker, before any rename: the new store replaces the live one.
    mark(&next, "next");
    std::fs::write(&marker, "").unwrap();
    finish_swap(&live).unwrap();
    assert_eq!(which(&live), "next");
    assert!(!next.exists() && !old.exists() && !marker.exists());

    // Killed between the two renames: only the old and the new store are there.
    std::fs::rename(&live, &old).unwrap();
    mark(&next, "newer");
    std::fs::write(&marker, "").unwrap();
    finish_swap(&live).unwrap();
    assert_eq!(which(&live), "newer");
    assert!(!next.exists() && !old.exists() && !marker.exists());

    // Killed after both renames: only the cleanup is left.
    mark(&old, "stale");
    std::fs::write(&marker, "").unwrap();
    finish_swap(&live).unwrap();
    assert_eq!(which(&live), "newer");
    assert!(!old.exists() && !marker.exists());
}

#[test]
fn a_full_rebuild_replaces_the_store_directory_and_keeps_the_graph_readable() {
    rt().block_on(async {
        let ws = tempfile::tempdir().unwrap();
        let cfg = on_disk();
        let first = graph_of(&[(
            "a.py",
            "def f():\n    return g()\n\ndef g():\n    return 1\n",
        )]);
        let second = graph_of(&[("b.py", "def h():\n    return 2\n")]);
        let mut store = GraphStore::open(&cfg, ws.path(), true).await.unwrap();
        store.write(&first, "r", true, &NoProgress).await.unwrap();
        let report = store.write(&second, "r", true, &NoProgress).await.unwrap();
        assert_eq!((report.mode.as_str(), report.db.as_str()), ("full", "g2"));
        // The same handle reads the new graph, and nothing of the old one is left.
        let (nodes, _) = store.dump().await.unwrap();
        let names: Vec<&str> = nodes.iter().filter_map(|n| n["name"].as_str()).collect();
        assert!(names.contains(&"h") && !names.contains(&"f"), "{names:?}");
        store.close().await;
        let brain = brain_dir(ws.path());
        let left: Vec<String> = std::fs::read_dir(&brain)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("graph.db"))
            .collect();
        assert_eq!(left, vec!["graph.db".to_string()]);
        // Reopened, it is the new graph. After one more rebuild on this handle, an unchanged graph is an empty
        // incremental write (the fingerprints read at open no longer describe the store).
        let mut store = GraphStore::open(&cfg, ws.path(), true).await.unwrap();
        assert_eq!(store.inspect().await.unwrap().nodes["function"], 1);
        store.write(&second, "r", true, &NoProgress).await.unwrap();
        let again = store.write(&second, "r", false, &NoProgress).await.unwrap();
        assert_eq!(
            (
                again.mode.as_str(),
                again.inserted + again.updated + again.deleted
            ),
            ("incremental", 0)
        );
        store.close().await;
    });
}

/// A full build inserts as an import, which skips SurrealDB's check of relation ends; `check_edges` stands in for
/// it. A graph with an edge its kind does not allow is refused whole, on both write paths, and the graph already
/// stored stays as it was.
#[test]
fn an_edge_between_node_types_its_kind_does_not_join_is_refused_and_nothing_is_written() {
    rt().block_on(async {
        let good = graph_of(&[(
            "a.py",
            "class E(Exception):\n    pass\n\ndef f():\n    raise E()\n",
        )]);
        let mut store = GraphStore::memory().await.unwrap();
        store.write(&good, "r", false, &NoProgress).await.unwrap();
        let before = store.inspect().await.unwrap();

        let mut bad = good.clone();
        let module = bad
            .nodes
            .iter()
            .find(|n| n.id.ty == NodeType::Module)
            .unwrap()
            .id
            .clone();
        let throws = bad
            .edges
            .iter_mut()
            .find(|e| e.kind == EdgeKind::Throws)
            .unwrap();
        // `throws` may end at a class or an external, never at a module.
        throws.to = module;
        for full in [true, false] {
            let err = store.write(&bad, "r", full, &NoProgress).await.unwrap_err();
            assert!(
                matches!(err, GraphError::BadEdge { kind: "throws", .. }),
                "{err}"
            );
            let msg = err.to_string();
            assert!(
                msg.contains("to module:") && msg.contains("class | external"),
                "{msg}"
            );
            let after = store.inspect().await.unwrap();
            assert_eq!(
                (after.nodes.clone(), after.edges.clone()),
                (before.nodes.clone(), before.edges.clone())
            );
        }
    });
}

/// The schema declares each relation table's ends from `EdgeKind::ends` and each field's type, and SurrealDB
/// enforces both on an ordinary (non-import) write: every pair of node types is accepted by the store exactly
/// when `EdgeKind::accepts` says so.
#[test]
fn the_store_enforces_each_relation_s_ends_and_field_types_as_edge_kind_declares() {
    rt().block_on(async {
        let graph = graph_of(&[("a.py", "def f():\n    return 1\n")]);
        let mut store = GraphStore::memory().await.unwrap();
        store.write(&graph, "r", false, &NoProgress).await.unwrap();
        for kind in EdgeKind::ALL {
            for from in NodeType::ALL {
                for to in NodeType::ALL {
                    let res = store
                        .db()
                        .query(format!(
                            "INSERT RELATION INTO `{}` {{ in: type::record($from, 'x'), out: type::record($to, 'y'), \
                             lines: [1], confidence: 1.0 }} RETURN NONE",
                            kind.as_str()
                        ))
                        .bind(("from", from.as_str()))
                        .bind(("to", to.as_str()))
                        .await
                        .and_then(|r| r.check());
                    assert_eq!(
                        res.is_ok(),
                        kind.accepts(from, to),
                        "{} from {} to {}: {res:?}",
                        kind.as_str(),
                        from.as_str(),
                        to.as_str()
                    );
                }
            }
        }
        let wrong_type = store
            .db()
            .query("CREATE `function`:z CONTENT { name: 'z', qname: 'z', path: 'a.py', start_line: 'one', end_line: 2, signature: '', doc: '', meta: {} }")
            .await
            .and_then(|r| r.check());
        assert!(wrong_type.is_err(), "a string start_line was stored");
    });
}

/// The schema is defined in one transaction and a full build inserts as an import; the indexes on name, qname
/// and path must still exist, be used, and hold every record: an indexed lookup finds what a table scan finds.
#[test]
fn indexes_answer_lookups_exactly_as_a_table_scan_does() {
    rt().block_on(async {
        let ws = tempfile::tempdir().unwrap();
        let graph = graph_of(&[
            ("pkg/a.py", "class Base:\n    def run(self):\n        return 1\n\ndef run():\n    return Base().run()\n"),
            ("pkg/b.py", "from pkg.a import run\n\ndef run_twice():\n    return run() + run()\n"),
        ]);
        let mut store = GraphStore::open(&on_disk(), ws.path(), true).await.unwrap();
        store.write(&graph, "r", true, &NoProgress).await.unwrap();
        let mut checked = 0;
        for node in &graph.nodes {
            let table = node.id.ty.as_str();
            for (field, value) in [("name", &node.name), ("qname", &node.qname), ("path", &node.path)] {
                let count = |hint: &'static str| {
                    let sql = format!(
                        "SELECT count() FROM `{table}` {hint} WHERE {field} = {} GROUP ALL",
                        serde_json::Value::String(value.clone())
                    );
                    let store = &store;
                    async move { store.query_readonly(&sql).await.unwrap() }
                };
                let (indexed, scanned) = (count("").await, count("WITH NOINDEX").await);
                assert_eq!(indexed, scanned, "{table}.{field} = {value:?}");
                assert!(scanned[0].as_array().is_some_and(|a| !a.is_empty()), "{table}.{field} = {value:?}: {scanned:?}");
                checked += 1;
            }
        }
        assert!(checked >= 18, "{checked}");
        let plan = store
            .query_readonly("SELECT name FROM `function` WHERE name = 'run' EXPLAIN")
            .await
            .unwrap();
        assert!(plan[0].to_string().contains("function_name"), "{plan:?}");
        store.close().await;
    });
}

/// Records each event's level and target, and whether `is_echoed_store_error` drops it.
#[derive(Default)]
struct Events(std::sync::Mutex<Vec<(String, bool)>>);

impl tracing::Subscriber for Events {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let meta = event.metadata();
        self.0.lock().unwrap().push((
            format!("{} {}", meta.level(), meta.target()),
            is_echoed_store_error(meta),
        ));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// The shape of SurrealDB's datastore functions (`update_node_with_timeout` and 21 more in `kvs/ds.rs`): the
/// instrumentation logs the returned error at ERROR level, and the caller still gets it.
#[tracing::instrument(err, level = "trace", target = "surrealdb::core::kvs::ds", skip_all)]
fn instrumented_datastore_call() -> Result<(), String> {
    Err("The query was not executed due to a cancelled transaction".into())
}

#[test]
fn only_surrealdb_s_echo_of_a_returned_error_is_dropped_from_the_log() {
    let events = std::sync::Arc::new(Events::default());
    tracing::subscriber::with_default(events.clone(), || {
        assert!(instrumented_datastore_call().is_err());
        // The same target with a message (SurrealDB's own `error!` calls), another target's `error` field, and
        // a warning with an `error` field: all kept.
        tracing::error!(target: "surrealdb::core::kvs::ds", "bootstrap - All 3 attempts failed");
        tracing::error!(target: "surrealdb::core::kvs::tasks", error = %"disk full");
        tracing::warn!(target: "surrealdb::core::kvs::ds", error = %"retrying");
    });
    let got = events.0.lock().unwrap().clone();
    assert_eq!(
        got,
        vec![
            ("ERROR surrealdb::core::kvs::ds".to_string(), true),
            ("ERROR surrealdb::core::kvs::ds".to_string(), false),
            ("ERROR surrealdb::core::kvs::tasks".to_string(), false),
            ("WARN surrealdb::core::kvs::ds".to_string(), false),
        ]
    );
}

/// A full write through `bulk` leaves every key and value that SurrealQL's insert leaves for the same graph: into
/// the in-memory engine through transactions (`write_nodes`, `write_edges`), and into a workspace's new on-disk
/// store loaded straight into SurrealKV's tables (`plan`, `ingest`).
#[test]
fn bulk_writes_the_keys_and_values_of_surrealql_inserts() {
    rt().block_on(async {
        let graph = graph_of(&[
            ("pkg/__init__.py", "from .core import load\nimport json\n"),
            (
                "pkg/core.py",
                "class LoadError(ValueError):\n    pass\n\nclass Strict(LoadError):\n    pass\n\n\
                 def parse(s):\n    raise LoadError(s)\n\ndef load(s):\n    parse(s)\n    return parse(s)\n",
            ),
            (
                "src/A.java",
                "package p;\nimport java.util.List;\npublic class A extends B implements I {\n  \
                 void f() throws E { g(); }\n  void g() { throw new E(); }\n}\n",
            ),
            ("src/B.java", "package p;\npublic class B {}\n"),
            ("src/I.java", "package p;\npublic interface I {}\n"),
            ("src/E.java", "package p;\npublic class E extends Exception {}\n"),
        ]);
        let kinds: std::collections::BTreeSet<&str> = graph.edges.iter().map(|e| e.kind.as_str()).collect();
        for kind in ["calls", "defined_in", "extends", "implements", "imports", "throws"] {
            assert!(kinds.contains(kind), "the fixture has no {kind} edge: {kinds:?}");
        }
        let mut dumps = Vec::new();
        let ws = tempfile::tempdir().unwrap();
        for (bulk, disk) in [(false, false), (true, false), (true, true)] {
            let mut store = if disk {
                GraphStore::open(&on_disk(), ws.path(), true).await.unwrap()
            } else {
                GraphStore::memory().await.unwrap()
            };
            assert_eq!(store.rebuild_in_new_dir, disk, "only the workspace's store is loaded into a new one");
            // One statement at a time: SurrealDB hands out the nodes' index doc-ids in the order it writes them.
            store.write_tasks = 1;
            store.bulk = bulk;
            let report = store.write(&graph, "/tmp/demo", false, &NoProgress).await.unwrap();
            assert_eq!(report.inserted as usize, graph.nodes.len() + graph.edges.len());
            let ds = store.db().datastore().unwrap();
            let target = bulk::target(&ds, &store.ns, store.current.as_deref().unwrap()).await.unwrap();
            dumps.push(bulk::dump(&ds, target).await.unwrap());
            drop(ds);
            store.close().await;
        }
        let (sql, bulk, ingested) = (&dumps[0], &dumps[1], &dumps[2]);
        let routes: std::collections::BTreeMap<&str, usize> =
            sql.iter().fold(Default::default(), |mut m, (route, _, _)| {
                *m.entry(*route).or_default() += 1;
                m
            });
        // What SurrealDB writes for this graph: records, the edges' four graph keys, index entries and doc-ids.
        let n = graph.edges.len();
        assert_eq!(routes["/*{ns}*{db}*{tb}~{id}{dir}{foreign_table}{foreign_key}"], 2 * n, "{routes:#?}");
        assert_eq!(
            routes["/*{ns}*{db}*{tb}~{id}{dir}{foreign_table}{foreign_key}{target_table}{target_key}"],
            2 * n,
            "{routes:#?}"
        );
        let nodes = graph.nodes.len();
        assert_eq!(routes["/*{ns}*{db}*{tb}+{ix}*{fd..}\\x03{id}"], 3 * nodes, "name, qname, path: {routes:#?}");
        for mapping in ["!dj{id}", "!dd{doc_id}", "!di{id}"] {
            assert_eq!(routes[format!("/*{{ns}}*{{db}}*{{tb}}{mapping}").as_str()], nodes, "{routes:#?}");
        }
        // (and `graph_state:current`)
        assert_eq!(routes["/*{ns}*{db}*{tb}*{id}"], n + graph.nodes.len() + 1, "{routes:#?}");
        let show = |k: &[u8]| String::from_utf8_lossy(k).into_owned();
        // `graph_state:current` holds the time of its write.
        let keep = |(_, k, _): &&(&str, Vec<u8>, Vec<u8>)| !show(k).contains("graph_state");
        let sql: Vec<_> = sql.iter().filter(keep).collect();
        for (how, written) in [("transactions", bulk), ("ingest", ingested)] {
            let written: Vec<_> = written.iter().filter(keep).collect();
            for ((ra, ka, va), (_, kb, vb)) in sql.iter().zip(&written) {
                assert_eq!(show(ka), show(kb), "first differing key ({how})");
                assert_eq!(va, vb, "value of {} ({ra}, {how})", show(ka));
            }
            assert_eq!(sql.len(), written.len(), "key counts ({how})");
        }
    });
}

/// The state file's bytes for `graph`, as a write saves them ([`GraphStore::save_state`]).
fn state_bytes(graph: &CodeGraph, db: &str, generation: u64) -> Vec<u8> {
    let mut bytes = postcard::to_stdvec(&(STATE_VERSION, db, generation)).unwrap();
    bytes.extend(Keyed::of(graph).encode().unwrap());
    bytes
}

fn two_versions() -> (CodeGraph, CodeGraph) {
    let before = graph_of(&[
        (
            "a.py",
            "def f():\n    return g()\n\ndef g():\n    return 1\n\ndef gone():\n    pass\n",
        ),
        ("b.py", "def h():\n    return 2\n"),
    ]);
    // g moves down a line and calls a new k; gone is deleted; b.py is unchanged.
    let after = graph_of(&[
        (
            "a.py",
            "def f():\n    return g()\n\n\ndef g():\n    return k()\n\ndef k():\n    return 1\n",
        ),
        ("b.py", "def h():\n    return 2\n"),
    ]);
    (before, after)
}

#[test]
fn the_saved_state_reads_back_as_written_and_a_damaged_one_is_refused() {
    let (graph, _) = two_versions();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("graph.state");
    let bytes = state_bytes(&graph, "g7", 7);
    std::fs::write(&path, &bytes).unwrap();
    let state = read_state(&path).expect("a state as written reads back");
    assert_eq!((state.db.as_str(), state.generation), ("g7", 7));
    // Every record is there once, under its id, with the fingerprint of its content.
    let mut want: Vec<(String, u64)> = graph
        .nodes
        .iter()
        .map(|n| (format!("{}:{}", n.id.ty.as_str(), n.id.key), fingerprint(n)))
        .collect();
    let mut got: Vec<(String, u64)> = (0..state.nodes.len())
        .map(|j| (state.nodes.id(j).unwrap().to_string(), state.nodes.fps[j]))
        .collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    assert_eq!(state.edges.len(), graph.edges.len());
    for j in 0..state.edges.len() {
        let (table, key) = state.edges.id(j).unwrap().split_once(':').unwrap();
        assert_eq!(state.edges.hashes[j], id_hash(table, key));
    }

    let refused = |bytes: &[u8], what: &str| {
        std::fs::write(&path, bytes).unwrap();
        assert!(read_state(&path).is_none(), "{what} was accepted");
    };
    refused(&bytes[..bytes.len() - 1], "a state cut short");
    refused(&[&bytes[..], &[0]].concat(), "a state with a trailing byte");
    let mut other = postcard::to_stdvec(&(STATE_VERSION - 1, "g7", 7u64)).unwrap();
    other.extend(Keyed::of(&graph).encode().unwrap());
    refused(&other, "a state of another version");
    // The first two hashes swapped: the column is no longer sorted.
    let head = postcard::to_stdvec(&(STATE_VERSION, "g7", 7u64))
        .unwrap()
        .len()
        + 8;
    let mut swapped = bytes.clone();
    let (a, b) = swapped[head..head + 32].split_at_mut(16);
    a.swap_with_slice(b);
    refused(&swapped, "an unsorted column");
    // The first record's slot points at the second's id too.
    let n = graph.nodes.len();
    let mut twice = bytes.clone();
    let slots = head + n * (16 + 8);
    let second: [u8; 4] = twice[slots + 4..slots + 8].try_into().unwrap();
    twice[slots..slots + 4].copy_from_slice(&second);
    refused(&twice, "a column whose ids are not each named once");
    refused(&[], "an empty file");
}

#[test]
fn a_diff_against_the_saved_state_finds_what_a_comparison_of_the_records_finds() {
    let (before, after) = two_versions();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("graph.state");
    std::fs::write(&path, state_bytes(&before, "g1", 1)).unwrap();
    let saved = read_state(&path).unwrap();
    let keyed = Keyed::of(&after);
    let nodes = Diff::of(&keyed.nodes, &saved.nodes).unwrap();
    let edges = Diff::of(&keyed.edges, &saved.edges).unwrap();

    // The same, by comparing records by id.
    fn expected<T: PartialEq>(
        old: &[T],
        new: &[T],
        id: impl Fn(&T) -> String,
    ) -> (Vec<(usize, bool)>, Vec<String>) {
        let old: BTreeMap<String, &T> = old.iter().map(|r| (id(r), r)).collect();
        let ids: std::collections::BTreeSet<String> = new.iter().map(&id).collect();
        let changed = new
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match old.get(&id(r)) {
                Some(prev) if *prev == r => None,
                prev => Some((i, prev.is_some())),
            })
            .collect();
        let deleted = old.keys().filter(|k| !ids.contains(*k)).cloned().collect();
        (changed, deleted)
    }
    let deleted = |diff: &Diff, saved: &Saved| -> Vec<String> {
        let mut ids: Vec<String> = diff
            .deleted
            .iter()
            .map(|&j| saved.id(j).unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let node_id = |n: &Node| format!("{}:{}", n.id.ty.as_str(), n.id.key);
    let edge_id = |e: &Edge| format!("{}:{}", e.kind.as_str(), e.key());
    let (want_nodes, want_deleted_nodes) = expected(&before.nodes, &after.nodes, node_id);
    let (want_edges, want_deleted_edges) = expected(&before.edges, &after.edges, edge_id);
    assert_eq!(nodes.changed, want_nodes);
    assert_eq!(deleted(&nodes, &saved.nodes), want_deleted_nodes);
    assert_eq!(edges.changed, want_edges);
    assert_eq!(deleted(&edges, &saved.edges), want_deleted_edges);
    // The case is not trivial: something new, something changed, something gone, and something kept.
    let name = |i: usize| after.nodes[i].name.as_str();
    assert!(
        nodes
            .changed
            .iter()
            .any(|&(i, known)| name(i) == "k" && !known)
    );
    assert!(
        nodes
            .changed
            .iter()
            .any(|&(i, known)| name(i) == "g" && known)
    );
    assert!(!nodes.changed.iter().any(|&(i, _)| name(i) == "h"));
    assert_eq!(nodes.deleted.len(), 1);
    assert!(!edges.changed.is_empty() && !edges.deleted.is_empty());

    // Against itself, nothing changes.
    std::fs::write(&path, state_bytes(&after, "g2", 2)).unwrap();
    let same = read_state(&path).unwrap();
    assert_eq!(Diff::of(&keyed.nodes, &same.nodes), Some(Diff::default()));
    assert_eq!(Diff::of(&keyed.edges, &same.edges), Some(Diff::default()));
}
