//! The brain of the installed Python standard library: search quality on 30 questions with gold answers
//! (`tests/fixtures/stdlib_questions.json`), for the lexical, vector and hybrid modes, and facts about the
//! `json` package's error node.

use nanodex_core::brain::{self, BrainType};
use nanodex_core::config;
use nanodex_core::graph::{GraphStore, Hit};
use nanodex_core::search::{self, Mode};

use crate::stdlib::stdlib_dir;
use crate::{default_config, rt};

#[derive(serde::Deserialize)]
struct Questions {
    questions: Vec<Question>,
}

#[derive(serde::Deserialize)]
struct Question {
    q: String,
    gold: Vec<String>,
    #[serde(rename = "type")]
    ty: Option<String>,
}

fn rank(hits: &[Hit], q: &Question) -> Option<usize> {
    hits.iter()
        .position(|h| q.gold.contains(&h.qname) && q.ty.as_ref().is_none_or(|t| &h.ty == t))
}

#[test]
fn stdlib_search_recall_lexical_vector_hybrid() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let mut cfg = default_config();
    cfg.extract
        .exclude
        .extend(["site-packages", "test", "tests", "idle_test", "__pycache__"].map(String::from));
    let report = crate::brain::build_workspace_with(&cfg, &stdlib_dir(), &ws, true);
    let rt = rt();
    let bcfg = config::load_brain(None).unwrap();
    eprintln!(
        "stdlib brain: {:?} in {:?} ms",
        report.stats.nodes, report.timings_ms
    );
    for ty in BrainType::ALL {
        assert!(
            report.stats.nodes.get(ty.as_str()).copied().unwrap_or(0) > 10,
            "{:?}",
            report.stats.nodes
        );
    }

    let questions: Questions =
        serde_json::from_str(include_str!("../fixtures/stdlib_questions.json")).unwrap();
    assert_eq!(questions.questions.len(), 30);
    let embedder = brain::load_embedder(&bcfg).unwrap();
    let mut search_cfg = bcfg.search.clone();
    search_cfg.limit = 10;
    let recall = rt.block_on(async {
        let store = GraphStore::open(&cfg.graph, &ws, false).await.unwrap();
        let mut recall = Vec::new();
        for mode in [Mode::Lexical, Mode::Vector, Mode::Hybrid] {
            let (mut at1, mut at5) = (0, 0);
            for q in &questions.questions {
                let hits = search::search(&store, Some(&embedder), &q.q, None, mode, &search_cfg)
                    .await
                    .unwrap();
                let r = rank(&hits, q);
                if r == Some(0) {
                    at1 += 1;
                }
                if r.is_some_and(|r| r < 5) {
                    at5 += 1;
                }
                if mode == Mode::Hybrid && r.is_none_or(|r| r >= 5) {
                    eprintln!(
                        "  hybrid miss: {:?} -> {:?}",
                        q.q,
                        hits.iter().take(5).map(|h| &h.qname).collect::<Vec<_>>()
                    );
                }
            }
            let n = questions.questions.len() as f64;
            eprintln!(
                "{mode:?}: Recall@1 {:.3}  Recall@5 {:.3}",
                at1 as f64 / n,
                at5 as f64 / n
            );
            recall.push((at1, at5));
        }
        // The two questions the issue names. `json.loads` is found, but below `JSONDecoder.decode` and friends,
        // whose summaries say "decode a JSON string" in so many words (see the closing note of issue 5).
        let hits = search::search(
            &store,
            Some(&embedder),
            "parse JSON from a string",
            None,
            Mode::Hybrid,
            &search_cfg,
        )
        .await
        .unwrap();
        let rank = hits.iter().position(|h| h.qname == "json.loads");
        eprintln!("json.loads rank for \"parse JSON from a string\": {rank:?}");
        assert!(
            rank.is_some_and(|r| r < 10),
            "{:?}",
            hits.iter().map(|h| &h.qname).collect::<Vec<_>>()
        );
        let hits = search::search(
            &store,
            Some(&embedder),
            "what raises JSONDecodeError",
            Some(BrainType::Error),
            Mode::Hybrid,
            &search_cfg,
        )
        .await
        .unwrap();
        assert_eq!(hits[0].qname, "json.decoder.JSONDecodeError");
        store.close().await;
        recall
    });
    let (lex, vec, hyb) = (recall[0], recall[1], recall[2]);
    println!(
        "stdlib search recall (30 questions): lexical R@1 {}/30 R@5 {}/30; vector R@1 {}/30 R@5 {}/30; hybrid R@1 {}/30 R@5 {}/30",
        lex.0, lex.1, vec.0, vec.1, hyb.0, hyb.1
    );
    assert!(
        hyb.1 > lex.1 && hyb.1 > vec.1,
        "hybrid Recall@5 must beat both: {recall:?}"
    );
    assert!(
        hyb.0 >= lex.0 && hyb.0 >= vec.0,
        "hybrid Recall@1 must not lose to either: {recall:?}"
    );

    // The error node of JSONDecodeError knows who raises it, with messages from the source.
    let node: serde_json::Value = std::fs::read_dir(brain::nodes_dir(&ws))
        .unwrap()
        .filter_map(|e| {
            serde_json::from_str::<serde_json::Value>(
                &std::fs::read_to_string(e.unwrap().path()).unwrap(),
            )
            .ok()
        })
        .find(|n| n["type"] == "error" && n["name"] == "json.decoder.JSONDecodeError")
        .expect("error node of JSONDecodeError");
    let raisers: Vec<&str> = node["meta"]["raised_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["qname"].as_str().unwrap())
        .collect();
    for f in [
        "json.decoder.JSONDecoder.raw_decode",
        "json.decoder.py_scanstring",
    ] {
        assert!(raisers.contains(&f), "{raisers:?}");
    }
    let messages: Vec<&str> = node["meta"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(messages.contains(&"Expecting value"), "{messages:?}");
}
