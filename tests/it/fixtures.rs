//! Golden graphs of the fixture repositories, plus the facts each one is there to show.

use crate::{extract_repo, fixture, has_edge, render};

#[test]
fn python_fixture_graph() {
    let ex = extract_repo(&fixture("python"));
    let g = &ex.graph;
    // Cross-file extends and throws, through relative imports.
    assert!(has_edge(
        g,
        "extends",
        "shop.errors.OutOfStock",
        "shop.errors.ShopError"
    ));
    assert!(has_edge(
        g,
        "extends",
        "shop.errors.ShopError",
        "builtins.Exception"
    ));
    assert!(has_edge(
        g,
        "throws",
        "shop.inventory.Inventory.take",
        "shop.errors.OutOfStock"
    ));
    assert!(has_edge(
        g,
        "throws",
        "shop.cart.Cart.checkout",
        "shop.errors.ShopError"
    ));
    // Calls through a typed attribute (`self.inventory = Inventory()`), a module function, a constructor.
    assert!(has_edge(
        g,
        "calls",
        "shop.cart.Cart.add",
        "shop.inventory.Inventory.take"
    ));
    assert!(has_edge(
        g,
        "calls",
        "shop.cart.Cart.checkout",
        "shop.cart.total"
    ));
    assert!(has_edge(
        g,
        "calls",
        "test_cart.test_add_then_checkout",
        "shop.cart.Cart.__init__"
    ));
    assert!(has_edge(g, "imports", "shop.inventory", "requests"));
    assert!(has_edge(g, "depends_on", "python", "requests"));
    assert!(has_edge(
        g,
        "defined_in",
        "shop.cart.Cart.add",
        "shop.cart.Cart"
    ));
    insta::assert_snapshot!("python", render(g));
}

#[test]
fn java_fixture_graph() {
    let ex = extract_repo(&fixture("java"));
    let g = &ex.graph;
    assert!(has_edge(
        g,
        "extends",
        "com.acme.bank.InsufficientFundsException",
        "com.acme.bank.BankException"
    ));
    assert!(has_edge(
        g,
        "extends",
        "com.acme.bank.Checking",
        "com.acme.bank.AbstractAccount"
    ));
    assert!(has_edge(
        g,
        "implements",
        "com.acme.bank.AbstractAccount",
        "com.acme.bank.Account"
    ));
    assert!(has_edge(
        g,
        "throws",
        "com.acme.bank.Checking.withdraw",
        "com.acme.bank.InsufficientFundsException"
    ));
    assert!(has_edge(
        g,
        "throws",
        "com.acme.bank.Account.withdraw",
        "com.acme.bank.InsufficientFundsException"
    ));
    assert!(has_edge(
        g,
        "calls",
        "com.acme.bank.Checking.withdraw",
        "com.acme.bank.AbstractAccount.audit"
    ));
    assert!(has_edge(
        g,
        "calls",
        "com.acme.bank.AbstractAccount.audit",
        "com.acme.bank.util.Logger.log"
    ));
    assert!(has_edge(
        g,
        "calls",
        "com.acme.bank.Checking.withdraw",
        "com.acme.bank.InsufficientFundsException.InsufficientFundsException"
    ));
    assert!(has_edge(g, "depends_on", "java", "org.slf4j:slf4j-api"));
    assert!(has_edge(
        g,
        "imports",
        "com.acme.bank.Checking",
        "org.slf4j"
    ));
    insta::assert_snapshot!("java", render(g));
}

#[test]
fn cpp_fixture_graph() {
    let ex = extract_repo(&fixture("cpp"));
    let g = &ex.graph;
    assert!(has_edge(g, "extends", "geo::Circle", "geo::Shape"));
    // Out-of-line definitions attach to their class, across header and source.
    assert!(has_edge(
        g,
        "defined_in",
        "geo::Circle::area",
        "geo::Circle"
    ));
    assert!(has_edge(
        g,
        "throws",
        "geo::Circle::Circle",
        "std::invalid_argument"
    ));
    assert!(has_edge(g, "calls", "geo::Circle::area", "geo::square"));
    assert!(has_edge(g, "calls", "main", "geo::Circle::area"));
    assert!(has_edge(
        g,
        "imports",
        "src/main.cpp",
        "include/geo/circle.h"
    ));
    assert!(has_edge(
        g,
        "imports",
        "include/geo/circle.h",
        "include/geo/shape.h"
    ));
    assert!(has_edge(g, "depends_on", "cpp", "fmt"));
    insta::assert_snapshot!("cpp", render(g));
}

#[test]
fn mixed_fixture_graph_and_skips() {
    let ex = extract_repo(&fixture("mixed"));
    let g = &ex.graph;
    let r = &ex.report;
    assert_eq!(
        r.skipped.get("binary"),
        Some(&1),
        "{:?}",
        r.skipped_examples
    );
    assert_eq!(
        r.skipped.get("excluded"),
        Some(&1),
        "vendor/ is excluded: {:?}",
        r.skipped_examples
    );
    assert!(
        !g.nodes.iter().any(|n| n.name == "generated"),
        ".gitignore'd file was read"
    );
    assert_eq!(r.invalid_utf8_files, vec!["data/latin.py".to_string()]);
    // The lossily decoded identifier (U+FFFD) is not a valid Python name, so that file is flagged too.
    assert_eq!(
        r.parse_error_files,
        vec!["broken.py".to_string(), "data/latin.py".to_string()]
    );
    assert!(
        g.nodes
            .iter()
            .any(|n| n.path == "tools/build" && n.name == "main"),
        "shebang script parsed as Python"
    );
    assert!(has_edge(
        g,
        "extends",
        "web/api.ApiClient",
        "web/base.BaseClient"
    ));
    assert!(has_edge(
        g,
        "implements",
        "web/api.ApiClient",
        "web/api.Client"
    ));
    assert!(has_edge(
        g,
        "calls",
        "web/api.ApiClient.get",
        "web/base.BaseClient.request"
    ));
    assert!(has_edge(
        g,
        "calls",
        "web/index.main",
        "web/api.ApiClient.get"
    ));
    assert!(has_edge(g, "throws", "web/api.ApiClient.get", "Error"));
    assert!(has_edge(g, "calls", "push", "grow"));
    assert!(has_edge(g, "depends_on", "mixed", "lodash"));
    insta::assert_snapshot!("mixed", render(g));
}

#[test]
fn ids_are_stable_across_runs() {
    let a = extract_repo(&fixture("java")).graph;
    let b = extract_repo(&fixture("java")).graph;
    assert_eq!(a, b);
}
