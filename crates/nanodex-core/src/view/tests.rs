use std::path::PathBuf;

use super::*;
use crate::extract::{self, FactsCache};
use crate::progress::{Cancel, NoProgress};

fn billing() -> (PathBuf, CodeGraph) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/brain");
    let cfg = crate::config::load(None).unwrap().extract;
    let out = extract::run(
        &cfg,
        &root,
        FactsCache::default(),
        &NoProgress,
        &Cancel::new(),
    )
    .unwrap();
    (root, out.graph)
}

fn id_of(graph: &CodeGraph, qname: &str) -> String {
    graph
        .nodes
        .iter()
        .find(|n| n.qname == qname)
        .unwrap_or_else(|| panic!("no node {qname}"))
        .id
        .to_string()
}

#[test]
fn view_folds_code_edges_into_module_edges_inside_packages() {
    let (_, graph) = billing();
    let view = build(&graph, &[]);
    let pkg = view
        .packages
        .iter()
        .find(|p| p.name == "billing")
        .expect("billing package");
    let payments = view
        .modules
        .iter()
        .find(|m| m.path == "billing/payments.py")
        .expect("payments module");
    assert_eq!(payments.package.as_deref(), Some(pkg.id.as_str()));
    assert_eq!((payments.classes, payments.functions), (1, 4));
    assert!(pkg.children >= 5, "{pkg:?}");
    let settings = id_of(&graph, "billing.settings");
    let errors = id_of(&graph, "billing.errors");
    let has = |kind: &str, s: &str, t: &str| {
        view.edges
            .iter()
            .any(|e| e.kind == kind && e.source == s && e.target == t)
    };
    // charge() calls provider_token() in settings.py; payments imports errors; charge raises CardDeclined.
    assert!(has("calls", &payments.id, &settings), "{:?}", view.edges);
    assert!(has("imports", &payments.id, &errors));
    assert!(has("throws", &payments.id, &errors));
    assert!(
        view.edges
            .iter()
            .all(|e| e.source != e.target && e.weight >= 1)
    );
    let test_module = view
        .modules
        .iter()
        .find(|m| m.path == "tests/test_payments.py")
        .unwrap();
    assert!(test_module.is_test);
    assert_eq!(view.counts["module"] as usize, view.modules.len());
}

#[test]
fn capabilities_attach_to_the_module_of_their_first_known_function() {
    let (_, graph) = billing();
    let charge = id_of(&graph, "billing.payments.charge");
    let cap = BrainNode {
        id: "capability_0123456789abcdef".into(),
        ty: BrainType::Capability,
        name: "charge a customer".into(),
        qname: "billing.payments.charge".into(),
        path: "billing/payments.py".into(),
        line: 15,
        summary: "Charges a customer's card.".into(),
        refs: vec!["function:gone".into(), charge.clone()],
        meta: Default::default(),
    };
    let orphan = BrainNode {
        id: "capability_fedcba9876543210".into(),
        refs: vec!["function:gone".into()],
        ..cap.clone()
    };
    let view = build(&graph, &[cap.clone(), orphan]);
    assert_eq!(view.capabilities.len(), 1);
    assert_eq!(
        view.capabilities[0].module,
        id_of(&graph, "billing.payments")
    );

    let index = GraphIndex::new(&graph);
    let panel = node_view(&index, std::slice::from_ref(&cap), &cap.id).unwrap();
    assert_eq!(panel.ty, "capability");
    assert_eq!(panel.relations[0].links.len(), 1);
    assert_eq!(panel.relations[0].links[0].id, charge);
}

#[test]
fn node_view_lists_callers_callees_and_raised_errors() {
    let (root, graph) = billing();
    let index = GraphIndex::new(&graph);
    let charge = id_of(&graph, "billing.payments.charge");
    let panel = node_view(&index, &[], &charge).unwrap();
    assert_eq!(panel.name, "charge");
    assert!(
        panel.signature.starts_with("def charge("),
        "{}",
        panel.signature
    );
    assert_eq!(panel.module, Some(id_of(&graph, "billing.payments")));
    let callers: Vec<&str> = panel.callers.iter().map(|l| l.name.as_str()).collect();
    assert!(callers.contains(&"try_charge"), "{callers:?}");
    let try_charge = panel
        .callers
        .iter()
        .find(|l| l.name == "try_charge")
        .unwrap();
    assert_eq!(try_charge.sites, vec![37]);
    // `Receipt(...)` resolves to its constructor; raising `CardDeclined(...)` constructs the exception too.
    let callees: Vec<&str> = panel.callees.iter().map(|l| l.qname.as_str()).collect();
    assert!(
        callees.contains(&"billing.settings.provider_token")
            && callees.contains(&"billing.payments.Receipt.__init__"),
        "{callees:?}"
    );
    let throws = panel
        .relations
        .iter()
        .find(|r| r.kind == "throws" && r.direction == "out")
        .expect("throws relation");
    assert_eq!(throws.links[0].name, "CardDeclined");
    assert!(node_view(&index, &[], "function:nope").is_none());

    let ex = read_excerpt(&root, &panel, 40).unwrap();
    assert_eq!(ex.start, 15);
    assert!(ex.text.starts_with("def charge(customer"), "{}", ex.text);
    assert!(!ex.truncated);
}

#[test]
fn excerpts_redact_secrets_stay_inside_the_repository_and_are_capped() {
    let (root, graph) = billing();
    let index = GraphIndex::new(&graph);
    let token = node_view(
        &index,
        &[],
        &id_of(&graph, "billing.settings.provider_token"),
    )
    .unwrap();
    let ex = read_excerpt(&root, &token, 40).unwrap();
    assert!(ex.text.contains("def provider_token("));
    assert!(
        !ex.text.contains("ghp_8fK2mQz7Lp3xR9tVb6Nw1Yc4Hs5Jd0Ae2Gu7"),
        "{}",
        ex.text
    );
    assert!(ex.redacted >= 1);

    let mut outside = token.clone();
    outside.path = "../brain/billing/settings.py".into();
    assert!(read_excerpt(&root, &outside, 40).is_none());

    let long: String = (1..=100).map(|i| format!("line {i}\n")).collect();
    let cut = excerpt(&long, "x.py", 10, 90, 5);
    assert_eq!(
        (cut.start, cut.text.as_str(), cut.truncated),
        (10, "line 10\nline 11\nline 12\nline 13\nline 14", true)
    );
}

#[test]
fn symbols_rank_exact_names_before_prefixes_and_substrings() {
    let (_, graph) = billing();
    let index = GraphIndex::new(&graph);
    let hits = find_symbols(&index, "Charge", 10);
    let names: Vec<&str> = hits.iter().map(|h| h.qname.as_str()).collect();
    assert_eq!(names[0], "billing.payments.charge", "{names:?}");
    let pos = |q: &str| names.iter().position(|n| *n == q).unwrap();
    assert!(pos("billing.payments.try_charge") > 0);
    assert_eq!(hits[0].module, Some(id_of(&graph, "billing.payments")));
    assert!(find_symbols(&index, "   ", 10).is_empty());
    assert!(find_symbols(&index, "zzz_no_such_symbol", 10).is_empty());
    assert_eq!(find_symbols(&index, "a", 3).len(), 3);
}
