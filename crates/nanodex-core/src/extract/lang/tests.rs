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
