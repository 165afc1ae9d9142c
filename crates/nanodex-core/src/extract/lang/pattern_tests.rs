use streaming_iterator::StreamingIterator;
use tree_sitter::{Parser, Query, QueryCursor, Tree};

use super::*;
use crate::extract::lang::Lang;
use crate::extract::parse::tests::fixture_sources;

/// A match as both engines can report it: pattern index and captures (name, node position and id), sorted.
type Found = (usize, Vec<(String, usize, usize, usize)>);

fn parse(lang: Lang, src: &str) -> Tree {
    let mut parser = Parser::new();
    parser.set_language(&lang.grammar()).expect("grammar");
    parser.parse(src, None).expect("parsed")
}

fn found<'n>(pattern: usize, captures: impl Iterator<Item = (&'n str, Node<'n>)>) -> Found {
    let mut captures: Vec<_> = captures
        .map(|(name, node)| {
            (
                name.to_string(),
                node.start_byte(),
                node.end_byte(),
                node.id(),
            )
        })
        .collect();
    captures.sort();
    (pattern, captures)
}

/// Every match of `patterns` in the tree: [`Patterns::matches_at`] at every node, sorted.
fn ours(patterns: &Patterns, tree: &Tree, src: &str) -> Vec<Found> {
    let mut all = Vec::new();
    let mut matching = tree.walk();
    let mut walk = tree.walk();
    'walk: loop {
        patterns.matches_at(walk.node(), src, &mut matching, &mut |pattern, captures| {
            all.push(found(
                pattern,
                captures
                    .iter()
                    .map(|(c, n)| (patterns.capture_name(*c), *n)),
            ));
        });
        if walk.goto_first_child() {
            continue;
        }
        while !walk.goto_next_sibling() {
            if !walk.goto_parent() {
                break 'walk;
            }
        }
    }
    all.sort();
    all
}

/// Every match of tree-sitter's query cursor over the whole tree that passes `keep`, sorted.
fn theirs(
    query: &Query,
    tree: &Tree,
    src: &str,
    keep: &dyn Fn(&tree_sitter::QueryMatch<'_, '_>) -> bool,
) -> Vec<Found> {
    let names = query.capture_names();
    let mut all = Vec::new();
    let mut cursor = QueryCursor::new();
    let mut matches = cursor.matches(query, tree.root_node(), src.as_bytes());
    while let Some(m) = matches.next() {
        if keep(m) {
            all.push(found(
                m.pattern_index,
                m.captures()
                    .iter()
                    .map(|c| (names[c.index as usize], c.node)),
            ));
        }
    }
    all.sort();
    all
}

/// Both engines find the same matches of `query` in `src`; returns how many.
fn same_matches(lang: Lang, query: &str, src: &str) -> usize {
    let grammar = lang.grammar();
    let patterns = Patterns::compile(&grammar, query).unwrap_or_else(|e| panic!("{query}: {e}"));
    let reference = Query::new(&grammar, query).expect("tree-sitter compiles it");
    let tree = parse(lang, src);
    let expected = theirs(&reference, &tree, src, &|_| true);
    assert_eq!(ours(&patterns, &tree, src), expected, "{query}\non {src}");
    expected.len()
}

#[test]
fn matches_equal_tree_sitters_on_each_construct() {
    let py =
        "f(a, # note\n  'x', b, \"y\")\nos.getenv('HOME')\ng()\nh(c)(d)\nclass K(A, m.B): pass\n";
    let cases: &[(&str, usize)] = &[
        // Anchors: first named child (a comment is named, anonymous `(` `,` are not), last, adjacent.
        ("(argument_list . (identifier) @first)", 4),
        ("(argument_list . (string) @first)", 1),
        ("(argument_list (string) @last .)", 2),
        ("(argument_list (identifier) @last .)", 2),
        // `b . "y"`, not `a . 'x'`: the comment between them is a named node.
        ("(argument_list (identifier) @a . (string) @b)", 1),
        (
            "(argument_list (identifier) @a . (comment) . (string) @b)",
            1,
        ),
        ("(argument_list (string) @a . (identifier) @b)", 1),
        // Every way two unanchored steps match: (a, b) and ('x' ... ) pairs in order.
        ("(argument_list (identifier) @a (identifier) @b)", 1),
        ("(argument_list (_) @a (_) @b)", 11),
        // Ways that bind the same nodes are one match: once per call with a string, once per identifier after one.
        ("(argument_list (string))", 2),
        ("(argument_list (string) @s)", 3),
        ("(argument_list (string) (identifier) @i)", 1),
        (
            "(call function: (identifier) @f arguments: (argument_list (string)))",
            1,
        ),
        // Fields, nesting, alternations with captures on them and inside them.
        ("(call function: (identifier) @f)", 3),
        ("(call function: (call) @inner)", 1),
        (
            "(call function: [(identifier) @f (attribute attribute: (identifier) @f)] @callee arguments: (argument_list))",
            4,
        ),
        (
            "(class_definition superclasses: (argument_list [(identifier) (attribute)] @base))",
            2,
        ),
        // Predicates.
        (
            "(call function: (attribute object: (identifier) @o) (#eq? @o \"os\")) @c",
            1,
        ),
        (
            "(call function: (identifier) @f (#any-of? @f \"g\" \"h\")) @c",
            2,
        ),
        (
            "(call function: (identifier) @f (#match? @f \"^[fg]$\"))",
            2,
        ),
        ("(call function: (_) @f (#kind-of? @f \"attribute\"))", 1),
    ];
    for (query, n) in cases {
        // The reference has no `#kind-of?`: drop it and filter by kind instead.
        let plain = query.replace(" (#kind-of? @f \"attribute\")", "");
        if plain != *query {
            let grammar = Lang::Python.grammar();
            let patterns = Patterns::compile(&grammar, query).expect("compiles");
            let reference = Query::new(&grammar, &plain).expect("compiles");
            let tree = parse(Lang::Python, py);
            let expected = theirs(&reference, &tree, py, &|m| {
                m.captures().iter().all(|c| c.node.kind() == "attribute")
            });
            assert_eq!(ours(&patterns, &tree, py), expected, "{query}");
            assert_eq!(expected.len(), *n, "{query}");
        } else {
            assert_eq!(same_matches(Lang::Python, query, py), *n, "{query}");
        }
    }
    let java = "class A extends B implements C, D<E> { void m() throws X, Y { a(); o.b(); new F().g(); } }\n";
    let cases: &[(&str, usize)] = &[
        // A negated field; fields of children inside hidden nodes; several children of one list.
        ("(method_invocation !object name: (identifier) @n)", 1),
        (
            "(method_invocation object: (_) @o name: (identifier) @n)",
            2,
        ),
        (
            "(super_interfaces (type_list [(type_identifier) (generic_type)] @t))",
            2,
        ),
        ("(throws (type_identifier) @t)", 2),
        (
            "(class_declaration body: (class_body (method_declaration name: (identifier) @m)))",
            1,
        ),
        (
            "(class_declaration name: (identifier) @c superclass: (superclass (type_identifier) @s)) @d",
            1,
        ),
    ];
    for (query, n) in cases {
        assert_eq!(same_matches(Lang::Java, query, java), *n, "{query}");
    }
}

#[test]
fn compile_declines_what_it_does_not_support() {
    let grammar = Lang::Python.grammar();
    for query in [
        "(call (identifier)* @a)",
        "(call (identifier)? @a)",
        "(call \"(\" @p)",
        "((call) @c)",
        "(_) @any",
        "[(call) (attribute)] @x",
        "(call function: [(identifier) @f (attribute)] (#eq? @f \"g\"))",
        "(call function: (identifier) @f (#not-eq? @f \"g\"))",
        "(call function: (identifier) @f arguments: (argument_list (identifier) @g) (#eq? @f @g))",
        "(call function: (identifier) @f (#eq? @missing \"g\"))",
        "(no_such_kind) @x",
        "(call no_such_field: (identifier)) @x",
        "(call function: (expression)) @x",
        "(call (identifier) @a",
    ] {
        assert!(Patterns::compile(&grammar, query).is_err(), "{query}");
    }
    assert!(Patterns::compile(&grammar, "(call) @c ; a comment\n").is_ok());
}

/// The query files themselves: every one is in the subset (so extraction never falls back to tree-sitter's engine
/// without a test noticing), starts at the same node kinds as tree-sitter sees, and finds tree-sitter's matches, one
/// for one, on every fixture source and on a part of the Python standard library.
#[test]
fn query_files_match_as_tree_sitter_does() {
    let sources = fixture_sources(&["json", "email", "asyncio", "logging"]);
    let mut by_lang = std::collections::BTreeMap::<Lang, usize>::new();
    for (lang, name, src) in &sources {
        let patterns = lang
            .patterns()
            .unwrap_or_else(|| panic!("{}: the query file is outside the subset", lang.as_str()));
        let compiled = lang.query();
        assert_eq!(
            Some(&patterns.roots),
            compiled.roots.as_ref(),
            "{}",
            lang.as_str()
        );
        let tree = parse(*lang, src);
        let expected = theirs(&compiled.query, &tree, src, &|m| compiled.kinds_hold(m));
        assert_eq!(ours(patterns, &tree, src), expected, "{name}");
        *by_lang.entry(*lang).or_default() += expected.len();
    }
    assert_eq!(by_lang.len(), Lang::ALL.len(), "{by_lang:?}");
    assert!(by_lang.values().all(|n| *n > 0), "{by_lang:?}");
}
