use super::*;

#[test]
fn every_query_file_compiles() {
    for lang in Lang::ALL {
        let query = lang.query();
        assert!(query.pattern_count() > 0, "{}", lang.as_str());
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
