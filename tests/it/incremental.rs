//! Incremental runs: after editing, adding and deleting files, the stored graph equals a full rebuild.

use std::path::Path;

use nanodex_core::extract::FactsCache;
use nanodex_core::graph::{GraphStore, WriteReport};
use nanodex_core::progress::NoProgress;

use crate::{default_config, extract_with, fixture, open_disk, rt};

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Extracts `repo` into `workspace` the way the CLI does (facts cache + store), returning what the write did and
/// how many files were parsed.
async fn extract_into(
    repo: &Path,
    store: &mut GraphStore,
    workspace: &Path,
    full: bool,
) -> (WriteReport, u64) {
    let cfg = default_config();
    let cache_path = workspace.join("brain/facts.cache");
    let cache = if full {
        FactsCache::default()
    } else {
        FactsCache::load(&cache_path)
    };
    let ex = extract_with(&cfg, repo, cache);
    let report = store
        .write(&ex.graph, "repo", full, &NoProgress)
        .await
        .unwrap();
    FactsCache::new(ex.files).save(&cache_path).unwrap();
    (report, ex.report.parsed)
}

#[test]
fn incremental_equals_full_rebuild() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_dir(&fixture("python"), &repo);
    let ws = tmp.path().join("ws");
    rt().block_on(async {
        // One store per workspace for the whole test: the embedded engine releases its files asynchronously.
        let mut store = open_disk(&ws).await;
        let (write, parsed) = extract_into(&repo, &mut store, &ws, false).await;
        assert_eq!((write.mode.as_str(), parsed), ("full", 5));

        // Unchanged: nothing re-parsed, nothing written.
        let (write, parsed) = extract_into(&repo, &mut store, &ws, false).await;
        assert_eq!((write.mode.as_str(), parsed), ("incremental", 0));

        // Edit one file (a new function calling an existing one, lines shift), add one, delete one.
        let cart = repo.join("shop/cart.py");
        let text = std::fs::read_to_string(&cart).unwrap();
        std::fs::write(
            &cart,
            format!(
                "import json\n\n\ndef dumps_cart(cart):\n    return total(cart.lines)\n\n{text}"
            ),
        )
        .unwrap();
        std::fs::write(
            repo.join("shop/coupon.py"),
            "from .errors import ShopError\n\n\nclass BadCoupon(ShopError):\n    pass\n",
        )
        .unwrap();
        std::fs::remove_file(repo.join("tests/test_cart.py")).unwrap();
        let (write, parsed) = extract_into(&repo, &mut store, &ws, false).await;
        assert_eq!(write.mode, "incremental");
        assert_eq!(parsed, 2, "only the edited and the added file are parsed");
        // Records the store held are updated in place (the edited file's lines shifted), new ones inserted
        // (the added file, the new function), gone ones deleted (the removed file).
        assert!(
            write.updated > 0 && write.inserted > 0 && write.deleted > 0,
            "{write:?}"
        );
        let incremental = store.dump().await.unwrap();

        let ws_full = tmp.path().join("ws_full");
        let mut store_full = open_disk(&ws_full).await;
        let (write, _) = extract_into(&repo, &mut store_full, &ws_full, true).await;
        assert_eq!(write.mode, "full");
        let full = store_full.dump().await.unwrap();
        assert_eq!(incremental.0.len(), full.0.len());
        assert_eq!(incremental.1.len(), full.1.len());
        assert_eq!(incremental, full);
        assert!(
            incremental
                .0
                .iter()
                .any(|n| n["qname"] == "shop.coupon.BadCoupon")
        );
        assert!(
            !incremental
                .0
                .iter()
                .any(|n| n["path"] == "tests/test_cart.py")
        );
    });
}

#[test]
fn stale_state_falls_back_to_a_full_build() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    rt().block_on(async {
        let mut store = open_disk(&ws).await;
        extract_into(&fixture("java"), &mut store, &ws, false).await;
        // A state file that does not match the store (as after a crash between commit and save) is not trusted.
        std::fs::write(ws.join("brain/graph.state"), b"garbage").unwrap();
        let (write, _) = extract_into(&fixture("java"), &mut store, &ws, false).await;
        assert_eq!(write.mode, "full");
        let inspect = store.inspect().await.unwrap();
        assert_eq!(inspect.generation, 2);
        assert!(inspect.nodes["class"] >= 6);
    });
}

#[test]
fn the_pipeline_returns_the_graph_only_when_asked_and_writes_it_either_way() {
    use nanodex_core::config::Store;
    use nanodex_core::pipeline::{self, ExtractOptions};
    use nanodex_core::progress::Cancel;
    use std::sync::Arc;

    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("repo");
    copy_dir(&fixture("python"), &repo);
    let workspace = tmp.path().join("ws");
    let mut cfg = default_config();
    cfg.graph.store = Store::Workspace;
    let run = |keep_graph: bool, full: bool| {
        let opts = ExtractOptions {
            keep_graph,
            full,
            ..ExtractOptions::default()
        };
        rt().block_on(pipeline::extract(
            &cfg,
            &repo,
            &workspace,
            opts,
            Arc::new(NoProgress),
            &Cancel::new(),
        ))
        .unwrap()
    };
    let kept = run(true, true);
    let graph = kept.graph.expect("kept on request");
    assert_eq!(
        kept.report.nodes.values().sum::<u64>(),
        graph.nodes.len() as u64
    );
    // Without the graph, the same store is written: a rebuild writes as many records, and the report counts the
    // same graph.
    let freed = run(false, true);
    assert!(freed.graph.is_none());
    assert_eq!(freed.report.nodes, kept.report.nodes);
    assert_eq!(freed.report.edges, kept.report.edges);
    let write = freed.write.expect("written");
    assert_eq!(
        (write.mode.as_str(), write.inserted),
        ("full", (graph.nodes.len() + graph.edges.len()) as u64),
        "{write:?}"
    );
    let stored = rt().block_on(async {
        let store = open_disk(&workspace).await;
        let (stored, _) = store.load_graph().await.unwrap();
        store.close().await;
        stored
    });
    assert_eq!(stored.nodes.len(), graph.nodes.len());
    assert_eq!(stored.edges.len(), graph.edges.len());
}
