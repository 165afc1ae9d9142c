use super::*;

#[test]
fn every_query_file_compiles() {
    for lang in Lang::ALL {
        let compiled = lang.query();
        assert!(compiled.query.pattern_count() > 0, "{}", lang.as_str());
    }
}

/// Every query file's patterns start at named node kinds, so extraction runs each query only at those nodes
/// (`parse::facts_with`); a pattern starting elsewhere would silently fall back to the slower whole-tree run.
#[test]
fn every_query_runs_at_its_pattern_roots() {
    for lang in Lang::ALL {
        let compiled = lang.query();
        let roots = compiled.roots.as_ref().unwrap_or_else(|| {
            panic!(
                "{}: a pattern does not start at a named kind",
                lang.as_str()
            )
        });
        assert!(roots.contains(&true), "{}", lang.as_str());
        let grammar = lang.grammar();
        // An identifier starts no pattern in any language: the whole point is to skip most nodes.
        assert!(
            !compiled.may_start_at(grammar.id_for_node_kind("identifier", true)),
            "{}",
            lang.as_str()
        );
        assert!(!compiled.may_start_at(u16::MAX), "{}: ERROR", lang.as_str());
    }
    let python = Lang::Python.query();
    let grammar = Lang::Python.grammar();
    for kind in [
        "class_definition",
        "call",
        "raise_statement",
        "import_from_statement",
    ] {
        assert!(
            python.may_start_at(grammar.id_for_node_kind(kind, true)),
            "{kind}"
        );
    }
    for kind in ["module", "block", "argument_list", "attribute"] {
        assert!(
            !python.may_start_at(grammar.id_for_node_kind(kind, true)),
            "{kind}"
        );
    }
}

#[test]
fn detects_by_extension_and_shebang() {
    assert_eq!(Lang::from_path(Path::new("a/b.py")), Some(Lang::Python));
    assert_eq!(Lang::from_path(Path::new("A.java")), Some(Lang::Java));
    assert_eq!(Lang::from_path(Path::new("x.HPP")), Some(Lang::Cpp));
    assert_eq!(Lang::from_path(Path::new("x.c")), Some(Lang::C));
    assert_eq!(Lang::from_path(Path::new("x.tsx")), Some(Lang::TypeScript));
    assert_eq!(Lang::from_path(Path::new("Makefile")), None);
    assert_eq!(
        Lang::from_shebang(b"#!/usr/bin/env python3"),
        Some(Lang::Python)
    );
    assert_eq!(
        Lang::from_shebang(b"#!/usr/bin/python3.11 -u"),
        Some(Lang::Python)
    );
    assert_eq!(
        Lang::from_shebang(b"#!/usr/bin/env -S node --x"),
        Some(Lang::JavaScript)
    );
    assert_eq!(Lang::from_shebang(b"#!/bin/sh"), None);
    assert_eq!(Lang::from_shebang(b"print(1)"), None);
}

/// `#kind-of?` keeps the matches whose capture has one of the kinds named, and a query file naming an unknown
/// predicate or kind is an error rather than a filter silently ignored.
#[test]
fn kind_of_predicates_filter_captures_by_kind() {
    let grammar = Lang::Python.grammar();
    let query = Query::new(
        &grammar,
        r#"(call function: (_) @name (#kind-of? @name "identifier")) @ref.call"#,
    )
    .expect("query compiles");
    let compiled = CompiledQuery {
        kinds: kind_predicates(&grammar, &query).expect("known predicate"),
        roots: None,
        query,
    };
    let src = "f()\na.b()\ng(x)\n";
    let mut parser = tree_sitter::Parser::new();
    parser.set_language(&grammar).expect("grammar loads");
    let tree = parser.parse(src, None).expect("parses");
    let mut cursor = tree_sitter::QueryCursor::new();
    let name = compiled
        .query
        .capture_index_for_name("name")
        .expect("@name");
    let mut matches = cursor.matches(&compiled.query, tree.root_node(), src.as_bytes());
    let (mut kept, mut all) = (Vec::new(), 0);
    while let Some(m) = streaming_iterator::StreamingIterator::next(&mut matches) {
        all += 1;
        if compiled.kinds_hold(m) {
            let node = m
                .nodes_for_capture_index(name)
                .next()
                .expect("@name captured");
            kept.push(node.utf8_text(src.as_bytes()).expect("UTF-8").to_string());
        }
    }
    assert_eq!(all, 3);
    assert_eq!(kept, ["f", "g"]);

    for (bad, why) in [
        (
            r#"(call function: (_) @n (#kind-of? @n "no_such_kind"))"#,
            "no node kind",
        ),
        (
            r#"(call function: (_) @n (#kinds? @n "identifier"))"#,
            "unknown predicate",
        ),
        (r#"(call function: (_) @n (#kind-of? @n))"#, "names no kind"),
        (
            r#"(call function: (_) @n (#kind-of? "identifier" @n))"#,
            "capture first",
        ),
    ] {
        let query = Query::new(&grammar, bad).expect("tree-sitter leaves the predicate to us");
        let err = kind_predicates(&grammar, &query).expect_err(bad);
        assert!(err.contains(why), "{bad}: {err}");
    }
}
