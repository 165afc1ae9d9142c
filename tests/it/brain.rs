//! The brain on fixture repositories: typed nodes, grounded summaries, secrets, export, embeddings and search, with
//! the real grammars, the real on-disk SurrealDB and the real ONNX model.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use nanodex_core::brain::{self, BrainNode, BrainOptions, BrainType, derive};
use nanodex_core::config;
use nanodex_core::extract::CodeGraph;
use nanodex_core::graph::GraphStore;
use nanodex_core::progress::{Cancel, NoProgress};
use nanodex_core::search::{self, Mode};
use nanodex_core::secrets::Scanner;

use crate::{default_config, extract_repo, fixture, open_disk, rt};

/// Derives the brain of a fixture in memory (pure path: extract, read sources, derive).
pub fn derive_fixture(name: &str) -> (CodeGraph, Vec<BrainNode>) {
    let root = fixture(name);
    let ex = extract_repo(&root);
    let mut sources = HashMap::new();
    for n in &ex.graph.nodes {
        if n.id.ty == nanodex_core::extract::NodeType::Module {
            sources.insert(
                n.path.clone(),
                std::fs::read_to_string(root.join(&n.path)).unwrap_or_default(),
            );
        }
    }
    let readme = root.join("README.md");
    let docs: Vec<(String, String)> = std::fs::read_to_string(&readme)
        .map(|t| vec![("README.md".to_string(), t)])
        .unwrap_or_default();
    let cfg = config::load_brain(None).unwrap();
    let inputs = derive::Inputs {
        graph: &ex.graph,
        sources: &sources,
        docs: &docs,
    };
    let (nodes, _) = derive::derive(&inputs, &cfg.summary, Scanner::default_rules());
    (ex.graph, nodes)
}

fn find<'a>(nodes: &'a [BrainNode], ty: BrainType, qname: &str) -> &'a BrainNode {
    nodes
        .iter()
        .find(|n| n.ty == ty && n.qname == qname)
        .unwrap_or_else(|| {
            panic!(
                "no {} node {qname}; have {:?}",
                ty.as_str(),
                nodes.iter().map(|n| (n.ty, &n.qname)).collect::<Vec<_>>()
            )
        })
}

fn render(nodes: &[BrainNode]) -> String {
    let mut lines: Vec<String> = nodes
        .iter()
        .map(|n| {
            format!(
                "{} {} @{}:{}\n  {}",
                n.ty.as_str(),
                n.name,
                n.path,
                n.line,
                n.summary
            )
        })
        .collect();
    lines.sort();
    lines.join("\n") + "\n"
}

#[test]
fn golden_brains_of_the_fixtures() {
    for name in ["python", "java", "cpp", "brain"] {
        let (_, nodes) = derive_fixture(name);
        insta::assert_snapshot!(format!("brain_{name}"), render(&nodes));
    }
}

#[test]
fn every_sentence_is_grounded_in_existing_nodes_and_within_budget() {
    let cfg = config::load_brain(None).unwrap();
    for name in ["python", "java", "cpp", "brain", "mixed"] {
        let (graph, nodes) = derive_fixture(name);
        let known: BTreeSet<String> = graph.nodes.iter().map(|n| n.id.to_string()).collect();
        assert!(!nodes.is_empty(), "{name}: no brain nodes");
        for n in &nodes {
            let sentences = n.meta["sentences"].as_array().expect("sentences");
            assert!(!sentences.is_empty(), "{name}: {} has no sentence", n.id);
            for s in sentences {
                let refs = s["refs"].as_array().unwrap();
                assert!(
                    !refs.is_empty(),
                    "{name}: ungrounded sentence in {}: {}",
                    n.id,
                    s["text"]
                );
                for r in refs {
                    assert!(
                        known.contains(r.as_str().unwrap()),
                        "{name}: {} refers to unknown {r}",
                        n.id
                    );
                }
            }
            assert!(
                derive::estimate_tokens(&n.summary) <= cfg.summary.max_tokens,
                "{name}: {} over budget",
                n.id
            );
            assert!(n.refs.iter().all(|r| known.contains(r)), "{name}: {}", n.id);
        }
    }
}

#[test]
fn error_nodes_know_raisers_conditions_messages_and_handlers() {
    let (_, nodes) = derive_fixture("brain");
    let declined = find(&nodes, BrainType::Error, "billing.errors.CardDeclined");
    let raised: Vec<&str> = declined.meta["raised_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["qname"].as_str().unwrap())
        .collect();
    assert_eq!(raised, ["billing.payments.charge"]);
    assert_eq!(
        declined.meta["raised_by"][0]["condition"],
        "if amount > customer.limit"
    );
    assert_eq!(declined.meta["raised_by"][0]["line"], 23);
    assert_eq!(
        declined.meta["messages"][0],
        "amount {amount} exceeds the card limit"
    );
    let handled: Vec<&str> = declined.meta["handled_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["qname"].as_str().unwrap())
        .collect();
    assert_eq!(handled, ["billing.payments.try_charge"]);
    assert!(
        declined
            .summary
            .contains("extends `billing.errors.BillingError`"),
        "{}",
        declined.summary
    );
    assert!(
        declined
            .summary
            .contains("when `if amount > customer.limit`"),
        "{}",
        declined.summary
    );

    let (_, shop) = derive_fixture("python");
    let oos = find(&shop, BrainType::Error, "shop.errors.OutOfStock");
    assert_eq!(
        oos.meta["raised_by"][0]["qname"],
        "shop.inventory.Inventory.take"
    );
    assert_eq!(
        oos.meta["raised_by"][0]["condition"],
        "if self.items.get(sku, 0) < n"
    );
    let base = find(&shop, BrainType::Error, "shop.errors.ShopError");
    assert!(
        base.summary
            .contains("Subclasses: `shop.errors.OutOfStock`"),
        "{}",
        base.summary
    );

    let (_, bank) = derive_fixture("java");
    let insufficient = bank
        .iter()
        .find(|n| n.ty == BrainType::Error && n.qname.ends_with("InsufficientFundsException"))
        .expect("java error node");
    assert!(
        !insufficient.meta["raised_by"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{:?}",
        insufficient.meta
    );
}

#[test]
fn recipes_come_from_tests_docstrings_and_readme() {
    let (_, nodes) = derive_fixture("brain");
    let recipes: Vec<&BrainNode> = nodes.iter().filter(|n| n.ty == BrainType::Recipe).collect();
    let steps = |r: &BrainNode| -> Vec<String> {
        r.meta["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["qname"].as_str().unwrap().to_string())
            .collect()
    };
    let from_test = recipes
        .iter()
        .find(|r| r.meta["origin"].as_str().unwrap().starts_with("test"))
        .expect("test recipe");
    assert_eq!(from_test.name, "how to charge then refund");
    assert_eq!(
        steps(from_test),
        ["billing.payments.charge", "billing.payments.refund"]
    );
    let doctest = recipes
        .iter()
        .find(|r| r.meta["origin"].as_str().unwrap().contains("docstring"))
        .expect("doctest recipe");
    assert_eq!(
        steps(doctest),
        ["billing.payments.charge", "billing.payments.refund"]
    );
    let mut readme: Vec<&&BrainNode> = recipes.iter().filter(|r| r.path == "README.md").collect();
    readme.sort_by_key(|r| r.line);
    assert_eq!(readme.len(), 2, "{readme:?}");
    assert_eq!(readme[0].name, "charge a customer");
    assert_eq!(steps(readme[0]), ["billing.payments.charge"]);
    assert_eq!(steps(readme[1]), ["billing.payments.refund"]);

    let (_, shop) = derive_fixture("python");
    let r = shop
        .iter()
        .find(|n| n.ty == BrainType::Recipe)
        .expect("shop recipe");
    assert_eq!(r.name, "how to add then checkout");
    let s = steps(r);
    assert!(
        s.contains(&"shop.cart.Cart.add".to_string())
            && s.contains(&"shop.cart.Cart.checkout".to_string()),
        "{s:?}"
    );
}

#[test]
fn capabilities_concepts_and_modules() {
    let (_, nodes) = derive_fixture("brain");
    let charge = find(&nodes, BrainType::Capability, "billing.payments.charge");
    assert!(
        charge.summary.starts_with(
            "`billing.payments.charge`: Charge a customer's card and return a Receipt."
        ),
        "{}",
        charge.summary
    );
    assert!(
        charge
            .summary
            .contains("Raises `billing.errors.CardDeclined`"),
        "{}",
        charge.summary
    );
    assert!(charge.summary.contains("Called by"), "{}", charge.summary);
    let implemented: Vec<&str> = charge.meta["implemented_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(implemented.len() >= 2, "{implemented:?}");
    // Private helpers and tests are not capabilities.
    assert!(
        !nodes
            .iter()
            .any(|n| n.ty == BrainType::Capability && n.qname.contains("test_"))
    );
    let receipt = find(&nodes, BrainType::Concept, "billing.payments.Receipt");
    assert!(receipt.summary.contains("Used by"), "{}", receipt.summary);
    // Configuration keys are concepts, linked to the functions that read them.
    let url = find(&nodes, BrainType::Concept, "BILLING_PROVIDER_URL");
    assert_eq!(url.meta["kind"], "config");
    assert_eq!(url.path, "billing/settings.py");
    assert!(
        url.summary.starts_with(
            "`BILLING_PROVIDER_URL` is an environment variable read by `billing.settings.provider_url`."
        ),
        "{}",
        url.summary
    );
    assert!(
        url.summary
            .contains(&format!("`billing/settings.py:{}`", url.line)),
        "{}",
        url.summary
    );
    let reader = nodes
        .iter()
        .find(|n| n.ty == BrainType::Capability && n.qname == "billing.settings.provider_url")
        .map(|n| n.refs[0].clone())
        .unwrap();
    assert!(url.refs.contains(&reader), "{:?} lacks {reader}", url.refs);
    find(&nodes, BrainType::Concept, "BILLING_TIMEOUT");
    let payments = find(&nodes, BrainType::Module, "billing.payments");
    assert!(
        payments.summary.contains("Public API:"),
        "{}",
        payments.summary
    );
    assert!(
        payments.summary.contains("Imported by `billing.invoices`"),
        "{}",
        payments.summary
    );
}

#[test]
fn secrets_never_reach_summaries_or_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let (_, nodes) = derive_fixture("brain");
    let all: String = nodes
        .iter()
        .map(|n| serde_json::to_string(&n.export_json()).unwrap())
        .collect();
    for secret in [
        "AKIAZ7QW3R5T2LKPMXVB",
        "ghp_8fK2mQz7Lp3xR9tVb6Nw1Yc4Hs5Jd0Ae2Gu7",
    ] {
        assert!(!all.contains(secret), "{secret} leaked");
    }
    assert!(
        all.contains("[REDACTED]"),
        "the secrets were in docstrings and signatures, so something was redacted"
    );
    // And through the whole stage, on disk.
    let ws = tmp.path().join("ws");
    build_workspace(&fixture("brain"), &ws, false);
    for entry in std::fs::read_dir(brain::nodes_dir(&ws)).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        assert!(
            !text.contains("AKIAZ7QW3R5T2LKPMXVB") && !text.contains("ghp_8fK2"),
            "{text}"
        );
    }
}

/// Runs the brain stage on workspace `ws` with the default configurations, or `bcfg`.
pub fn run_brain(
    ws: &Path,
    bcfg: Option<&config::BrainConfig>,
    embed: bool,
) -> Result<brain::BrainReport, String> {
    let cfg = default_config();
    let defaults = config::load_brain(None).unwrap();
    let opts = BrainOptions {
        derive: true,
        embed,
    };
    rt().block_on(brain::run(
        &cfg.graph,
        bcfg.unwrap_or(&defaults),
        ws,
        opts,
        &NoProgress,
        &Cancel::new(),
    ))
    .map_err(|e| e.to_string())
}

/// Extracts `repo` with `cfg` into `ws` and builds its brain (with embeddings when `embed`).
pub fn build_workspace_with(
    cfg: &nanodex_core::config::Config,
    repo: &Path,
    ws: &Path,
    embed: bool,
) -> brain::BrainReport {
    let ex = crate::extract_with(cfg, repo, Default::default());
    rt().block_on(async {
        let mut store = open_disk(ws).await;
        store
            .write(&ex.graph, &ex.report.root, true, &NoProgress)
            .await
            .unwrap();
        store.close().await;
    });
    run_brain(ws, None, embed).unwrap()
}

/// Extracts `repo` into `ws` with the default configuration and builds its brain.
pub fn build_workspace(repo: &Path, ws: &Path, embed: bool) -> brain::BrainReport {
    build_workspace_with(&default_config(), repo, ws, embed)
}

#[test]
fn second_run_is_incremental_and_search_finds_nodes() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    let first = build_workspace(&fixture("brain"), &ws, true);
    assert!(
        first.exported > 10
            && first.embedded == first.exported
            && first.store_inserted == first.exported,
        "{first:?}"
    );
    let files = std::fs::read_dir(brain::nodes_dir(&ws)).unwrap().count() as u64;
    assert_eq!(files, first.exported);
    let cfg = default_config();
    let bcfg = config::load_brain(None).unwrap();
    let rt = rt();
    let second = run_brain(&ws, Some(&bcfg), true).unwrap();
    assert_eq!(
        (
            second.exported,
            second.removed,
            second.embedded,
            second.store_inserted,
            second.store_deleted
        ),
        (0, 0, 0, 0, 0),
        "{second:?}"
    );
    assert_eq!(second.unchanged, first.exported);
    assert_eq!(second.embed_cached, first.exported);

    let embedder = brain::load_embedder(&bcfg).unwrap();
    rt.block_on(async {
        let store = GraphStore::open(&cfg.graph, &ws, false).await.unwrap();
        for mode in [Mode::Lexical, Mode::Vector, Mode::Hybrid] {
            let hits = search::search(
                &store,
                Some(&embedder),
                "card declined by the payment provider",
                None,
                mode,
                &bcfg.search,
            )
            .await
            .unwrap();
            assert!(
                hits.iter()
                    .take(3)
                    .any(|h| h.qname == "billing.errors.CardDeclined"),
                "{mode:?}: {:?}",
                hits.iter()
                    .map(|h| (&h.ty, &h.qname, h.score))
                    .collect::<Vec<_>>()
            );
        }
        let errors = search::search(
            &store,
            Some(&embedder),
            "refund after the window",
            Some(BrainType::Error),
            Mode::Hybrid,
            &bcfg.search,
        )
        .await
        .unwrap();
        assert!(
            !errors.is_empty() && errors.iter().all(|h| h.ty == "error"),
            "{errors:?}"
        );
        assert_eq!(errors[0].qname, "billing.errors.RefundTooLate");
        store.close().await;
    });
}

#[test]
fn brain_without_a_graph_says_what_to_run() {
    let tmp = tempfile::tempdir().unwrap();
    let bcfg = config::load_brain(None).unwrap();
    let err = run_brain(tmp.path(), Some(&bcfg), false).unwrap_err();
    assert!(err.contains("nanodex extract"), "{err}");
}

/// A stand-in for an OpenAI-compatible server (the external service, not our code): answers every chat request,
/// with a faithful rewrite for the `CardDeclined` node and a rewrite that invents an identifier for the others.
async fn stand_in_llm() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let n = sock.read(&mut chunk).await.unwrap_or(0);
                if n == 0 {
                    break String::new();
                }
                buf.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buf).to_string();
                if let Some(end) = text.find("\r\n\r\n") {
                    let len: usize = text[..end]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() >= end + 4 + len {
                        break text[end + 4..].to_string();
                    }
                }
            };
            let content = if body.contains("the error `billing.errors.CardDeclined`") {
                "`billing.errors.CardDeclined` is raised by `billing.payments.charge` when the amount is over the card limit; `billing.payments.try_charge` catches it."
            } else {
                "This is handled by `billing.fraud_check` before anything else."
            };
            let reply = serde_json::json!({"choices": [{"message": {"role": "assistant", "content": content}}]}).to_string();
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                reply.len()
            );
            let _ = sock.write_all(head.as_bytes()).await;
            let _ = sock.write_all(reply.as_bytes()).await;
        }
    });
    (url, task)
}

#[test]
fn llm_rewrites_are_kept_only_when_every_identifier_exists() {
    let tmp = tempfile::tempdir().unwrap();
    let ws = tmp.path().join("ws");
    build_workspace(&fixture("brain"), &ws, false);
    let mut bcfg = config::load_brain(None).unwrap();
    let rt = rt();
    let (url, server) = rt.block_on(stand_in_llm());
    bcfg.llm.endpoint = url;
    bcfg.llm.model = "test".into();
    let report = run_brain(&ws, Some(&bcfg), false).unwrap();
    server.abort();
    let refine = report.refine.expect("refinement ran");
    assert_eq!(refine.accepted, 1, "{refine:?}");
    assert!(refine.rejected > 10, "{refine:?}");
    let nodes: Vec<serde_json::Value> = std::fs::read_dir(brain::nodes_dir(&ws))
        .unwrap()
        .map(|e| {
            serde_json::from_str(&std::fs::read_to_string(e.unwrap().path()).unwrap()).unwrap()
        })
        .collect();
    let declined = nodes
        .iter()
        .find(|n| n["type"] == "error" && n["name"] == "billing.errors.CardDeclined")
        .unwrap();
    assert_eq!(declined["meta"]["refined"], true);
    assert!(
        declined["summary"]
            .as_str()
            .unwrap()
            .starts_with("`billing.errors.CardDeclined` is raised by")
    );
    assert!(
        declined["meta"]["deterministic_summary"]
            .as_str()
            .unwrap()
            .contains("is an error type defined at")
    );
    assert!(
        nodes
            .iter()
            .all(|n| !n["summary"].as_str().unwrap().contains("fraud_check"))
    );
}
