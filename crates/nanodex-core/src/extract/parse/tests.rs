use super::*;

/// Renders facts as stable text: one line per definition, reference and import.
fn render(facts: &FileFacts) -> String {
    let mut out = String::new();
    for d in &facts.defs {
        let parent = d
            .parent
            .map(|p| facts.defs[p as usize].name.clone())
            .unwrap_or_default();
        let qual = if d.qualifier.is_empty() {
            String::new()
        } else {
            format!("{}::", d.qualifier.join("::"))
        };
        out += &format!(
            "def {} {qual}{} {}-{} in={parent}\n",
            d.kind.as_str(),
            d.name,
            d.start_line,
            d.end_line
        );
    }
    for r in &facts.refs {
        let scope = r
            .scope
            .map(|s| facts.defs[s as usize].name.clone())
            .unwrap_or_default();
        out += &format!(
            "ref {:?} {}{} @{} in={scope}\n",
            r.kind,
            r.receiver
                .as_deref()
                .map(|r| format!("{r}."))
                .unwrap_or_default(),
            r.name,
            r.line
        );
    }
    for i in &facts.imports {
        out += &format!(
            "import {} {:?} {:?} level={} wild={}\n",
            i.module, i.member, i.alias, i.level, i.wildcard
        );
    }
    out
}

#[test]
fn collapse_compact_is_collapse() {
    for (s, max) in [
        ("plain", 120),
        ("", 120),
        ("a  b\tc\nd", 120),
        ("vertical\x0btab", 120),
        ("no\u{a0}break", 120),
        ("ideographic\u{3000}space", 120),
        ("only\u{1c}control", 120),
        ("exactly", 7),
        ("truncated", 4),
        ("crème brûlée", 6),
    ] {
        assert_eq!(collapse_compact(s, max), collapse(s, max), "{s:?} at {max}");
    }
}

#[test]
fn python_defs_refs_imports() {
    let src = r#""""Module doc.

More."""
import os.path as osp
from ..pkg import a, b as c
from . import *

class Err(ValueError):
    """An error."""

class K(base.Base):
    def __init__(self):
        self.x = Helper()

    @staticmethod
    def run(v):
        if not v:
            raise Err("bad")
        return osp.join(v)
"#;
    let facts = parse_file(Lang::Python, src);
    assert_eq!(facts.doc.as_deref(), Some("Module doc."));
    assert!(!facts.has_error);
    let defs = &facts.defs;
    assert_eq!(defs[0].doc.as_deref(), Some("An error."));
    assert_eq!(defs[3].decorators, vec!["staticmethod".to_string()]);
    assert_eq!(defs[3].signature, "def run(v)");
    assert_eq!(facts.locals.len(), 1);
    assert!(facts.locals[0].member);
    let expected = "\
def class Err 8-9 in=
def class K 11-19 in=
def constructor __init__ 12-13 in=K
def method run 16-19 in=K
ref Extends ValueError @8 in=Err
ref Extends base.Base @11 in=K
ref Call Helper @13 in=__init__
ref Call Err @18 in=run
ref Throw Err @18 in=run
ref Call osp.join @19 in=run
import os.path None Some(\"osp\") level=0 wild=false
import pkg Some(\"a\") None level=2 wild=false
import pkg Some(\"b\") Some(\"c\") level=2 wild=false
import  None None level=1 wild=true
";
    assert_eq!(render(&facts), expected);
}

#[test]
fn java_defs_refs_imports() {
    let src = "package a.b;\nimport java.util.List;\nimport a.c.*;\n\n/** Says hi.\n * @author x */\npublic class Hi extends Base implements Runnable, java.io.Closeable {\n  private Worker w;\n  @Override public void run() throws IOException {\n    w.work(); helper();\n    throw new IllegalStateException(\"x\");\n  }\n  Hi() { super(); }\n}\n";
    let facts = parse_file(Lang::Java, src);
    assert_eq!(facts.package.as_deref(), Some("a.b"));
    assert_eq!(facts.defs[0].doc.as_deref(), Some("Says hi."));
    assert_eq!(facts.defs[0].visibility.as_deref(), Some("public"));
    assert_eq!(facts.defs[1].decorators, vec!["Override".to_string()]);
    let expected = "\
def class Hi 7-14 in=
def method run 9-12 in=Hi
def constructor Hi 13-13 in=Hi
ref Extends Base @7 in=Hi
ref Implements java.io.Closeable @7 in=Hi
ref Implements Runnable @7 in=Hi
ref Throw IOException @9 in=run
ref Call helper @10 in=run
ref Call w.work @10 in=run
ref New IllegalStateException @11 in=run
ref Throw IllegalStateException @11 in=run
import java.util Some(\"List\") None level=0 wild=false
import a.c None None level=0 wild=true
";
    assert_eq!(render(&facts), expected);
}

#[test]
fn cpp_out_of_line_methods_and_namespaces() {
    let src = "#include \"shape.h\"\n#include <vector>\nnamespace geo {\nclass Circle : public Shape {\n public:\n  double area() const override { return pi() * r * r; }\n};\n}\ndouble geo::Circle::grow(double f) {\n  if (f < 0) throw std::invalid_argument(\"f\");\n  return area();\n}\n";
    let facts = parse_file(Lang::Cpp, src);
    let expected = "\
def namespace geo 3-8 in=
def class Circle 4-7 in=geo
def method area 6-6 in=Circle
def method geo::Circle::grow 9-12 in=
ref Extends Shape @4 in=Circle
ref Call pi @6 in=area
ref Call std.invalid_argument @10 in=grow
ref Throw std.invalid_argument @10 in=grow
ref Call area @11 in=grow
import shape.h None None level=0 wild=false
import vector None None level=0 wild=false
";
    assert_eq!(
        render(&facts).replace("std::invalid", "std.invalid"),
        expected
    );
    assert_eq!(facts.defs[2].visibility.as_deref(), Some("public"));
}

#[test]
fn syntax_errors_are_flagged_not_fatal() {
    let facts = parse_file(
        Lang::Python,
        "def ok():\n    pass\n\ndef broken(:\n    return 1\n",
    );
    assert!(facts.has_error);
    assert!(!facts.error_lines.is_empty());
    assert!(facts.defs.iter().any(|d| d.name == "ok"));
}

#[test]
fn a_deferred_parse_without_a_tree_is_one_error() {
    let facts = finish_deferred(Lang::Python, None, "x = 1\ny = 2\n");
    assert!(facts.has_error);
    assert_eq!(facts.error_lines, vec![1]);
    assert_eq!(facts.n_lines, 2);
    assert!(facts.defs.is_empty() && facts.refs.is_empty());
}

#[test]
fn deep_nesting_does_not_overflow() {
    let depth = 50_000;
    let src = format!("x = {}1{}\n", "(".repeat(depth), ")".repeat(depth));
    let facts = parse_file(Lang::Python, &src);
    assert_eq!(facts.n_lines, 1);
    let src = format!(
        "int f() {{ return {}1{}; }}\n",
        "(".repeat(depth),
        ")".repeat(depth)
    );
    let facts = parse_file(Lang::Cpp, &src);
    assert_eq!(facts.defs.len(), 1);
}

#[test]
fn typescript_and_javascript() {
    let src = "import { a as b } from './x';\nimport * as ns from 'lib';\nexport class C extends Base implements I { constructor() { super(); } m() { b(); ns.f(); throw new Oops(); } }\ninterface I extends J {}\nconst g = () => 1;\n";
    let facts = parse_file(Lang::TypeScript, src);
    let out = render(&facts);
    assert!(out.contains("def class C 3-3"), "{out}");
    assert!(
        out.contains("def constructor constructor 3-3 in=C"),
        "{out}"
    );
    assert!(out.contains("def interface I 4-4"), "{out}");
    assert!(out.contains("def function g 5-5"), "{out}");
    assert!(out.contains("ref Implements I @3 in=C"), "{out}");
    assert!(out.contains("ref Extends J @4 in=I"), "{out}");
    assert!(out.contains("ref Throw Oops @3 in=m"), "{out}");
    assert!(out.contains("import ./x Some(\"a\") Some(\"b\")"), "{out}");
    let js = parse_file(
        Lang::JavaScript,
        "const fs = require('fs');\nclass A extends B { run() { fs.readFileSync('x'); } }\n",
    );
    let out = render(&js);
    assert!(out.contains("import fs None Some(\"fs\")"), "{out}");
    assert!(out.contains("ref Call fs.readFileSync @2 in=run"), "{out}");
}

/// Renders the configuration reads of `src` as `kind key @line in=scope` lines.
fn config_reads(lang: Lang, src: &str) -> Vec<String> {
    let facts = parse_file(lang, src);
    facts
        .config
        .iter()
        .map(|c| {
            let scope = c
                .scope
                .map(|s| facts.defs[s as usize].name.clone())
                .unwrap_or_default();
            format!("{} {} @{} in={scope}", c.kind.as_str(), c.key, c.line)
        })
        .collect()
}

#[test]
fn configuration_keys_read_by_literal_name() {
    let py = r#"import os
from os import environ
DEBUG = os.environ.get("APP_DEBUG")
def home():
    a = os.environ["HOME"]
    b = os.getenv('TMPDIR', "/tmp")
    c = os.environ.setdefault("LANG", "C")
    d = "NO_COLOR" in os.environ
    e = os.environ.get(f"APP_{a}")
    f = os.environ.get(name)
    g = settings.get("not_env")
    h = request.environ["HTTP_HOST"] + environ["PATH_INFO"]
    os.environ.pop("SET_ONLY")
    return os.environ.get("")
"#;
    assert_eq!(
        config_reads(Lang::Python, py),
        [
            "env APP_DEBUG @3 in=",
            "env HOME @5 in=home",
            "env TMPDIR @6 in=home",
            "env LANG @7 in=home",
            "env NO_COLOR @8 in=home",
        ]
    );
    let java = r#"class Conf {
    static String tmp() { return System.getProperty("java.io.tmpdir"); }
    String home() { return System.getenv("HOME"); }
    int size(java.util.Properties p) { return Integer.getInteger("conf.size", 4) + p.getProperty("conf.name").length(); }
    String other(Map m) { System.setProperty("set.only", "1"); return m.get("not.a.property") + System.getProperty(key); }
}
"#;
    assert_eq!(
        config_reads(Lang::Java, java),
        [
            "property java.io.tmpdir @2 in=tmp",
            "env HOME @3 in=home",
            "property conf.name @4 in=size",
            "property conf.size @4 in=size",
        ]
    );
    let cpp = "#include <cstdlib>\nconst char* home() { return std::getenv(\"HOME\"); }\nint n() { return atoi(getenv(\"N\")) + atoi(\"5\"); }\n";
    assert_eq!(
        config_reads(Lang::Cpp, cpp),
        ["env HOME @2 in=home", "env N @3 in=n"]
    );
    let c = "const char* home(void) { setenv(\"SET_ONLY\", \"1\", 1); return getenv(\"HOME\"); }\n";
    assert_eq!(config_reads(Lang::C, c), ["env HOME @1 in=home"]);
    let js = "function port() { return process.env.PORT || process.env['HOST'] || env.OTHER; }\n";
    for lang in [Lang::JavaScript, Lang::TypeScript] {
        assert_eq!(
            config_reads(lang, js),
            ["env HOST @1 in=port", "env PORT @1 in=port"]
        );
    }
}

/// Every source file under `dir`, recursively, that has a language, with its path, decoded lossily.
pub(crate) fn sources_under(dir: &std::path::Path, out: &mut Vec<(Lang, String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            sources_under(&path, out);
        } else if let (Some(lang), Ok(bytes)) = (Lang::from_path(&path), std::fs::read(&path)) {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            out.push((lang, path.display().to_string(), text));
        }
    }
}

/// The fixture sources (all six languages), then those of the named packages of the Python standard library.
pub(crate) fn fixture_sources(stdlib_packages: &[&str]) -> Vec<(Lang, String, String)> {
    let mut sources = Vec::new();
    let fixtures =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures");
    sources_under(&fixtures, &mut sources);
    if !stdlib_packages.is_empty() {
        let stdlib = nanodex_tests::python_stdlib();
        for package in stdlib_packages {
            sources_under(&stdlib.join(package), &mut sources);
        }
    }
    sources
}

/// Running the query only at its pattern roots gives exactly the facts of running it over the whole tree: on every
/// fixture source (all six languages, a file with syntax errors, Latin-1 text) and on shapes where matches nest
/// (calls in calls, raises of calls, classes in functions, deep nesting, recovered errors).
#[test]
fn query_at_pattern_roots_equals_whole_tree() {
    let mut sources = fixture_sources(&[]);
    let langs: std::collections::BTreeSet<Lang> = sources.iter().map(|(l, _, _)| *l).collect();
    assert_eq!(
        langs.len(),
        Lang::ALL.len(),
        "fixtures lack a language: {langs:?}"
    );
    let nested = [
        (
            Lang::Python,
            "def f():\n    class C(a.B, D):\n        def g(self):\n            raise E(h(i(j.k(1))))\n    x = Foo(Bar())\n    self.y = Baz()\n    os.environ.get('A', os.getenv('B'))\nraise\nraise x.Y\n",
        ),
        (
            Lang::Python,
            "def broken(:\n    f(g(\nclass X(Y):\n    def m(self): return self.n(o.p())\n",
        ),
        (
            Lang::Java,
            "package a.b;\nclass A extends B implements C, D { A() throws E { super(); new F(g(h.i())).j(); throw new K(l()); } }\n",
        ),
        (
            Lang::Cpp,
            "namespace n { struct S : B { void f() { g(h(i::j())); throw E(k()); } }; }\nvoid n::S::f2() { auto p = new T(u()); }\n",
        ),
        (
            Lang::TypeScript,
            "class C extends D implements I { m() { a(b(c.d())); throw new E(f()); } }\n",
        ),
    ];
    for (lang, src) in nested {
        sources.push((lang, "inline".into(), src.into()));
    }
    let depth = 3_000;
    let calls: String = (0..depth).map(|i| format!("c{i}(")).collect();
    sources.push((
        Lang::Python,
        "deep".into(),
        format!("x = {calls}1{}\n", ")".repeat(depth)),
    ));
    for (lang, name, src) in &sources {
        let tree = parse_tree(*lang, src).expect("parsed");
        let at_roots = facts_with(*lang, &tree, src, Engine::QueryAtRoots);
        let whole = facts_with(*lang, &tree, src, Engine::QueryWholeTree);
        assert_eq!(at_roots, whole, "{name}");
        assert_eq!(
            facts_with(*lang, &tree, src, Engine::Fastest),
            at_roots,
            "{name}"
        );
        // A parse deferred while the query compiled ends with the same facts.
        assert_eq!(
            finish_deferred(*lang, Some(tree.clone()), src),
            at_roots,
            "{name}"
        );
    }
    // The comparison is not vacuous: the deep source alone has one (distinct) call per level.
    let deep = sources
        .last()
        .map(|(l, _, s)| parse_file(*l, s))
        .unwrap_or_default();
    assert_eq!(deep.refs.len(), depth);
}

/// The same on a real codebase: the installed Python standard library, whose files chain calls on one line
/// (`s.replace(a, b).replace(c, d)`), which the query reports in another order when it runs at the roots.
#[test]
fn query_at_pattern_roots_equals_whole_tree_on_the_standard_library() {
    let stdlib = nanodex_tests::python_stdlib();
    let mut sources = Vec::new();
    for package in [
        "json", "email", "asyncio", "xml", "http", "logging", "unittest",
    ] {
        sources_under(&stdlib.join(package), &mut sources);
    }
    assert!(
        sources.len() > 100,
        "too few sources under {}",
        stdlib.display()
    );
    let mut chained = 0;
    for (lang, name, src) in &sources {
        let tree = parse_tree(*lang, src).expect("parsed");
        let at_roots = facts_with(*lang, &tree, src, Engine::QueryAtRoots);
        assert_eq!(
            at_roots,
            facts_with(*lang, &tree, src, Engine::QueryWholeTree),
            "{name}"
        );
        assert_eq!(
            facts_with(*lang, &tree, src, Engine::Fastest),
            at_roots,
            "{name}"
        );
        chained += at_roots
            .refs
            .windows(2)
            .filter(|w| {
                (w[0].line, &w[0].name) == (w[1].line, &w[1].name) && w[0].receiver != w[1].receiver
            })
            .count();
    }
    assert!(
        chained > 0,
        "no chained calls: the order of matches was never tested"
    );
}

/// The walk over tree-sitter's subtree arrays (`roots.c`) finds the same nodes, in the same order and with the same
/// kinds, positions and identities, as tree-sitter's own tree cursor: for each language's query roots and for every
/// kind (then each visible node, aliased and extra ones included), over the fixtures, a part of the standard library,
/// deep nesting and a file with syntax errors.
#[test]
fn root_walk_matches_the_tree_cursor() {
    let mut sources = fixture_sources(&["json", "email", "asyncio"]);
    let depth = 5_000;
    sources.push((
        Lang::Cpp,
        "deep".into(),
        format!("int x = {}1{};\n", "(".repeat(depth), ")".repeat(depth)),
    ));
    sources.push((
        Lang::Java,
        "broken".into(),
        "class A { void f() { g(; } /* c */ int @ x; }\n".into(),
    ));
    let describe = |nodes: &[Node<'_>]| -> Vec<(
        usize,
        u16,
        usize,
        usize,
        tree_sitter::Point,
        tree_sitter::Point,
    )> {
        nodes
            .iter()
            .map(|n| {
                (
                    n.id(),
                    n.kind_id(),
                    n.start_byte(),
                    n.end_byte(),
                    n.start_position(),
                    n.end_position(),
                )
            })
            .collect()
    };
    let mut langs = std::collections::BTreeSet::new();
    let mut visited = 0;
    for (lang, name, src) in &sources {
        langs.insert(lang.as_str());
        let tree = parse_tree(*lang, src).expect("parsed");
        let every = vec![true; lang.grammar().node_kind_count()];
        let query_roots = lang.query().roots.clone().expect("query roots known");
        for roots in [&every, &query_roots] {
            let fast = root_nodes(tree.root_node(), roots);
            assert_eq!(
                describe(&fast),
                describe(&root_nodes_by_cursor(tree.root_node(), roots)),
                "{name}"
            );
            visited += fast.len();
        }
    }
    assert!(langs.len() >= 6, "fixtures lack a language: {langs:?}");
    assert!(visited > 100_000, "only {visited} nodes compared");
}

/// The quick check before reading the comments above a definition never skips one: over every node of every
/// fixture source (and shapes that put comments at a row's end, continue them with a backslash, or use HTML-like
/// comments in JavaScript), a node it rules out has no comment above it.
#[test]
fn the_comment_check_never_skips_a_comment_above() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut sources = Vec::new();
    sources_under(&root.join("tests/fixtures"), &mut sources);
    let shapes = [
        (Lang::Cpp, "int x; // trailing\nvoid f() {}\n"),
        (Lang::Cpp, "// one \\\n continued\nvoid g() {}\n"),
        (
            Lang::Cpp,
            "/* a */ /* b */ void h() {}\nclass C {\n  // c\n  /** d\n   */\n  void m();\n};\n",
        ),
        (
            Lang::C,
            "/* block\n spanning */\nint k(void) { return 0; }\n",
        ),
        (
            Lang::Java,
            "class A {\n  /** doc */\n  void f() {}\n  // line\n  @Deprecated void g() {}\n}\n",
        ),
        (
            Lang::JavaScript,
            "<!-- old\nfunction f() {}\n--> older\nfunction g() {}\n",
        ),
        (Lang::TypeScript, "// c\nexport class E {}\n"),
    ];
    for (lang, src) in shapes {
        sources.push((lang, "shape".into(), src.into()));
    }
    // The desktop app's own TypeScript.
    sources_under(&root.join("ui/src"), &mut sources);
    // Every layout of a comment (none, line, block on one row, block over two rows, trailing a statement) at every
    // distance (same row, the row above, blank rows between) before each kind of member.
    let comments = [
        "",
        "// c",
        "/* c */",
        "/* c\n   c */",
        "int z; // c",
        "/** c */ /* d */",
    ];
    let gaps = ["", "\n", "\n\n", "\n  \n"];
    for (i, comment) in comments.iter().enumerate() {
        for (j, gap) in gaps.iter().enumerate() {
            sources.push((
                Lang::Java,
                format!("java-{i}-{j}"),
                format!("class A{i}{j} {{\n  int a;\n  {comment}{gap} void f() {{}}\n  {comment}{gap} @X int g;\n}}\n"),
            ));
            sources.push((
                Lang::Cpp,
                format!("cpp-{i}-{j}"),
                format!("class B{i}{j} {{\n public:\n  {comment}{gap} void f();\n  {comment}{gap} int g;\n}};\n{comment}{gap}template <class T> void h() {{}}\n"),
            ));
            sources.push((
                Lang::TypeScript,
                format!("ts-{i}-{j}"),
                format!(
                    "let y = 1;\n{}{gap} export function f() {{}}\n",
                    comment.replace("int z;", "let z;")
                ),
            ));
        }
    }
    let (mut checked, mut with_comment) = (0, 0);
    for (lang, name, src) in sources.iter().filter(|(l, ..)| *l != Lang::Python) {
        let tree = parse_tree(*lang, src).expect("parsed");
        let every = vec![true; lang.grammar().node_kind_count()];
        for node in root_nodes(tree.root_node(), &every) {
            let found = comment_lines_above(node, src);
            with_comment += usize::from(found.is_some());
            if !may_have_comment_above(node, src) {
                assert_eq!(
                    found,
                    None,
                    "{name}: {} at {}",
                    node.kind(),
                    node.start_byte()
                );
            }
            checked += 1;
        }
    }
    assert!(
        checked > 10_000 && with_comment > 100,
        "{checked} nodes, {with_comment} with a comment above"
    );
}

unsafe extern "C" {
    /// `tables.c`: how many (state, symbol) pairs two languages give different parse-table values for.
    fn nanodex_tables_differ(
        a: *const tree_sitter::ffi::TSLanguage,
        b: *const tree_sitter::ffi::TSLanguage,
    ) -> usize;
}

/// Each node of `tree` in pre-order: kind, byte range, row and column of both ends, and its error, missing
/// and extra flags.
type TreeNode = (
    u16,
    usize,
    usize,
    tree_sitter::Point,
    tree_sitter::Point,
    bool,
    bool,
    bool,
);

/// The [`TreeNode`]s of `tree`.
fn tree_nodes(tree: &Tree) -> Vec<TreeNode> {
    let every = vec![true; tree.language().node_kind_count()];
    root_nodes_by_cursor(tree.root_node(), &every)
        .into_iter()
        .map(|n| {
            (
                n.kind_id(),
                n.start_byte(),
                n.end_byte(),
                n.start_position(),
                n.end_position(),
                n.is_error(),
                n.is_missing(),
                n.is_extra(),
            )
        })
        .collect()
}

/// The grammars the parser runs (built by `nanodex-grammars` with a faster lexer header, then copied by `tables.c`
/// with every parse state a dense row) are the grammar crates' own builds: each gives the
/// same table value for every (state, symbol) pair and lists the same lookahead symbols in every state, and parses
/// the same trees, node for node, from the fixtures, the UI's TypeScript, a part of the standard library, and each
/// of them broken (cut off at a quarter, half and three quarters, and with every fifth bracket removed), so error
/// recovery, the one place that reads the table's layout, is covered too.
#[test]
fn dense_tables_parse_the_same_trees() {
    // The grammars as their crates build them: the tables and trees are compared against these.
    let upstream = |lang: Lang| {
        nanodex_grammars::upstream_of(&lang.grammar()).expect("a nanodex-grammars grammar")
    };
    for lang in Lang::ALL {
        let (grammar, dense) = (&upstream(lang), lang.parse_grammar());
        let (a, b) = (grammar.clone().into_raw(), dense.clone().into_raw());
        assert_ne!(a, b, "{}: no dense copy was made", lang.as_str());
        // SAFETY: both are live languages for the whole process.
        assert_eq!(
            unsafe { nanodex_tables_differ(a, b) },
            0,
            "{}",
            lang.as_str()
        );
        for state in 0..grammar.parse_state_count() as u16 {
            let symbols = |l: &tree_sitter::Language| {
                let mut s: Vec<u16> = l.lookahead_iterator(state).expect("valid state").collect();
                s.sort_unstable();
                s
            };
            assert_eq!(
                symbols(grammar),
                symbols(dense),
                "{} state {state}",
                lang.as_str()
            );
        }
    }

    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut whole = Vec::new();
    sources_under(&root.join("tests/fixtures"), &mut whole);
    sources_under(&root.join("ui/src"), &mut whole);
    let stdlib = nanodex_tests::python_stdlib();
    for package in ["json", "email", "asyncio"] {
        sources_under(&stdlib.join(package), &mut whole);
    }
    let mut sources = Vec::new();
    for (lang, name, src) in &whole {
        for quarter in 1..4 {
            let mut cut = src.len() * quarter / 4;
            while !src.is_char_boundary(cut) {
                cut -= 1;
            }
            sources.push((
                *lang,
                format!("{name} cut {quarter}/4"),
                src[..cut].to_string(),
            ));
        }
        let mut brackets = 0;
        let unbalanced: String = src
            .chars()
            .filter(|c| {
                !"(){}[]".contains(*c) || {
                    brackets += 1;
                    brackets % 5 != 0
                }
            })
            .collect();
        sources.push((*lang, format!("{name} unbalanced"), unbalanced));
    }
    sources.extend(whole);
    let (mut nodes, mut broken) = (0, 0);
    for (lang, name, src) in &sources {
        let parse = |language: &tree_sitter::Language| {
            let mut parser = Parser::new();
            parser.set_language(language).expect("compatible grammar");
            parser.parse(src, None).expect("parsed")
        };
        let (expected, got) = (parse(&upstream(*lang)), parse(lang.parse_grammar()));
        let nodes_of = tree_nodes(&got);
        assert!(
            nodes_of == tree_nodes(&expected),
            "{name}: the trees differ"
        );
        nodes += nodes_of.len();
        broken += usize::from(got.root_node().has_error());
    }
    assert!(nodes > 500_000, "only {nodes} nodes compared");
    assert!(broken > 250, "only {broken} sources with syntax errors");
}
