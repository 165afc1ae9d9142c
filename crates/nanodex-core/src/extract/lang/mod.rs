//! Languages: detection by extension and shebang, grammars, and the per-language query files.
//!
//! Each language is a folder with a `tags.scm` query file (what is a definition, a call, a throw, a base type,
//! an import) and a small `mod.rs` for what a query cannot say (import statements, names of C declarators).
//! Adding a language means adding a folder and one arm in [`Lang`]'s tables.

mod c;
mod cpp;
mod java;
mod javascript;
mod pattern;
mod python;
mod typescript;

use std::path::Path;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};

use compact_str::CompactString;
use serde::{Deserialize, Serialize};
use tree_sitter::{Language, Node, Query, QueryMatch, QueryPredicateArg};

use super::facts::Import;
pub(crate) use pattern::Patterns;

/// A supported source language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    /// Python 3.
    Python,
    /// Java.
    Java,
    /// C++.
    Cpp,
    /// C.
    C,
    /// JavaScript (also JSX).
    JavaScript,
    /// TypeScript (also TSX).
    TypeScript,
}

/// A definition's simple name and the qualifier written before it (`Foo` in `void Foo::bar()`).
pub(crate) type QualifiedName = (CompactString, Vec<CompactString>);

/// Per-language hooks that a query file cannot express.
pub(crate) struct LangSpec {
    pub language: fn() -> Language,
    pub query_src: &'static str,
    /// Turns an `@import` node into import records.
    pub imports: fn(Node<'_>, &str, &mut Vec<Import>),
    /// Name (and explicit qualifier) of a definition node whose query gave no `@name`.
    pub def_name: fn(Node<'_>, &str) -> Option<QualifiedName>,
    /// Separator of qualified names as written in this language.
    pub scope_sep: &'static str,
    /// Words that are the receiver of a method call on the current object.
    pub self_words: &'static [&'static str],
}

impl Lang {
    /// Every language, in a fixed order.
    pub const ALL: [Lang; 6] = [
        Lang::Python,
        Lang::Java,
        Lang::Cpp,
        Lang::C,
        Lang::JavaScript,
        Lang::TypeScript,
    ];

    /// Lower-case name as stored in the graph (`python`, `cpp` ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Java => "java",
            Lang::Cpp => "cpp",
            Lang::C => "c",
            Lang::JavaScript => "javascript",
            Lang::TypeScript => "typescript",
        }
    }

    /// Parses a language name as used in config files.
    pub fn from_name(name: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|lang| lang.as_str() == name)
    }

    /// Language of a file by its extension.
    pub fn from_path(path: &Path) -> Option<Lang> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "py" | "pyi" | "pyw" => Lang::Python,
            "java" => Lang::Java,
            "cc" | "cpp" | "cxx" | "c++" | "hpp" | "hh" | "hxx" | "h++" | "ipp" | "tpp" | "inl" => {
                Lang::Cpp
            }
            // `.h` is shared by C and C++; C++ is a superset for what we extract.
            "h" => Lang::Cpp,
            "c" => Lang::C,
            "js" | "jsx" | "mjs" | "cjs" => Lang::JavaScript,
            "ts" | "tsx" | "mts" | "cts" => Lang::TypeScript,
            _ => return None,
        })
    }

    /// Language of an extension-less script by its `#!` line.
    pub fn from_shebang(first_line: &[u8]) -> Option<Lang> {
        let line = std::str::from_utf8(first_line).ok()?;
        let rest = line.strip_prefix("#!")?;
        let mut words = rest.split_whitespace();
        let mut prog = words.next()?.rsplit('/').next()?;
        if prog == "env" {
            prog = words.find(|w| !w.starts_with('-'))?;
        }
        if prog.starts_with("python") {
            Some(Lang::Python)
        } else if prog == "node" || prog == "nodejs" {
            Some(Lang::JavaScript)
        } else if prog == "ts-node" || prog == "deno" || prog == "bun" {
            Some(Lang::TypeScript)
        } else {
            None
        }
    }

    pub(crate) fn spec(self) -> &'static LangSpec {
        match self {
            Lang::Python => &python::SPEC,
            Lang::Java => &java::SPEC,
            Lang::Cpp => &cpp::SPEC,
            Lang::C => &c::SPEC,
            Lang::JavaScript => &javascript::SPEC,
            Lang::TypeScript => &typescript::SPEC,
        }
    }

    /// The tree-sitter grammar.
    pub fn grammar(self) -> Language {
        (self.spec().language)()
    }

    /// The grammar the parser runs: [`Lang::grammar`] with every parse state a dense row of the parse table
    /// (`tables.c`: parsing takes 11-19% less time), made once per process; the grammar itself when the copy
    /// cannot be made. Queries are compiled against [`Lang::grammar`]: the two have the same symbols and states.
    pub(crate) fn parse_grammar(self) -> &'static Language {
        static GRAMMARS: [OnceLock<Language>; Lang::ALL.len()] =
            [const { OnceLock::new() }; Lang::ALL.len()];
        GRAMMARS[self.index()].get_or_init(|| {
            let grammar = self.grammar();
            dense_parse_table(&grammar).unwrap_or(grammar)
        })
    }

    /// The compiled query for this language; compiled once per process.
    pub(crate) fn query(self) -> &'static CompiledQuery {
        self.query_slot().get_or_init(|| {
            let spec = self.spec();
            let language = (spec.language)();
            // The query files are part of the binary and covered by tests, so a failure here is a bug in them.
            let query = Query::new(&language, spec.query_src)
                .unwrap_or_else(|err| panic!("bad query file for {}: {err}", self.as_str()));
            let kinds = kind_predicates(&language, &query)
                .unwrap_or_else(|err| panic!("bad query file for {}: {err}", self.as_str()));
            let roots = pattern_roots(&language, &query, spec.query_src);
            CompiledQuery {
                query,
                roots,
                kinds,
            }
        })
    }

    /// The language's query file compiled by nanodex's own matcher ([`pattern`]), once per process; `None` when
    /// the file uses what that matcher does not support, and tree-sitter's query engine ([`Lang::query`]) runs it.
    pub(crate) fn patterns(self) -> Option<&'static Patterns> {
        static PATTERNS: [OnceLock<Option<Patterns>>; Lang::ALL.len()] =
            [const { OnceLock::new() }; Lang::ALL.len()];
        PATTERNS[self.index()]
            .get_or_init(|| Patterns::compile(&self.grammar(), self.spec().query_src).ok())
            .as_ref()
    }

    /// The compiled query, or `None` while [`compile_queries_in_background`]'s thread is compiling it (so the
    /// caller can do other work rather than wait). Compiles it here when no thread is on it.
    pub(crate) fn query_unless_compiling(self) -> Option<&'static CompiledQuery> {
        if let Some(query) = self.query_slot().get() {
            return Some(query);
        }
        if COMPILING[self.index()].load(Ordering::Acquire) {
            None
        } else {
            Some(self.query())
        }
    }

    fn index(self) -> usize {
        Lang::ALL.iter().position(|l| *l == self).unwrap_or(0)
    }

    fn query_slot(self) -> &'static OnceLock<CompiledQuery> {
        static QUERIES: [OnceLock<CompiledQuery>; Lang::ALL.len()] =
            [const { OnceLock::new() }; Lang::ALL.len()];
        &QUERIES[self.index()]
    }
}

unsafe extern "C" {
    /// `tables.c`: a copy of `language` whose parse table has a dense row for every state, or null (no sparse
    /// state, an ABI the core does not read, a table over `max_bytes`, out of memory). Never freed.
    fn nanodex_expand_parse_table(
        language: *const tree_sitter::ffi::TSLanguage,
        max_bytes: usize,
    ) -> *const tree_sitter::ffi::TSLanguage;
}

/// The largest dense parse table made, in bytes (C++'s is 9.3 MB).
const MAX_DENSE_TABLE: usize = 64 << 20;

/// [`Lang::parse_grammar`]'s copy of `grammar`, or `None` where `tables.c` makes none.
fn dense_parse_table(grammar: &Language) -> Option<Language> {
    // SAFETY: the pointer is a live grammar (a static of the grammar crate); the copy shares its static data.
    let dense = unsafe { nanodex_expand_parse_table(grammar.clone().into_raw(), MAX_DENSE_TABLE) };
    // SAFETY: non-null, and valid for the rest of the process.
    (!dense.is_null()).then(|| unsafe { Language::from_raw(dense) })
}

/// A `(#kind-of? @capture "kind" ...)` predicate: the capture's index and the kinds it may have.
type KindOf = (u32, Vec<String>);

/// A language's compiled query and the node kinds its patterns start at.
pub(crate) struct CompiledQuery {
    pub query: Query,
    /// Indexed by node kind id: whether some pattern starts at a node of that kind. `None` when a pattern starts at
    /// something else than one visible named kind (a wildcard, an alternation, a hidden supertype, a grouping):
    /// the query then runs over the whole tree instead of at the nodes of these kinds.
    pub roots: Option<Vec<bool>>,
    /// By pattern: its `(#kind-of? @capture "kind" ...)` predicates.
    kinds: Vec<Vec<KindOf>>,
}

impl CompiledQuery {
    /// Whether the captures of `m` have the kinds its pattern's `#kind-of?` predicates allow.
    ///
    /// tree-sitter analyses every step of a pattern against the whole grammar when it compiles the query, and an
    /// alternation of kinds in a field (`type: [(type_identifier) (qualified_identifier)] @t`) costs C++ ~5 ms of
    /// that each; `type: (_) @t (#kind-of? @t "type_identifier" "qualified_identifier")` matches the same nodes, and its
    /// analysis costs a tenth.
    pub fn kinds_hold(&self, m: &QueryMatch<'_, '_>) -> bool {
        self.kinds.get(m.pattern_index).is_none_or(|preds| {
            preds.iter().all(|(capture, kinds)| {
                m.captures()
                    .iter()
                    .filter(|c| c.index == *capture)
                    .all(|c| kinds.iter().any(|kind| kind == c.node.kind()))
            })
        })
    }

    /// Whether a pattern can start at a node of kind `kind_id`; every kind when the roots are unknown.
    #[cfg(test)]
    pub fn may_start_at(&self, kind_id: u16) -> bool {
        self.roots
            .as_ref()
            .is_none_or(|r| r.get(usize::from(kind_id)).copied().unwrap_or(false))
    }
}

/// Each pattern's `#kind-of?` predicates (see [`CompiledQuery::kinds_hold`]); an error for any other predicate
/// tree-sitter leaves to its caller, or a kind the grammar does not have.
fn kind_predicates(language: &Language, query: &Query) -> Result<Vec<Vec<KindOf>>, String> {
    (0..query.pattern_count())
        .map(|pattern| {
            query
                .general_predicates(pattern)
                .iter()
                .map(|pred| {
                    let (QueryPredicateArg::Capture(capture), kinds) = (
                        pred.args.first().ok_or("a predicate without arguments")?,
                        &pred.args[1..],
                    ) else {
                        return Err(format!("#{} takes a capture first", pred.operator));
                    };
                    if &*pred.operator != "kind-of?" {
                        return Err(format!("unknown predicate #{}", pred.operator));
                    }
                    if kinds.is_empty() {
                        return Err("#kind-of? names no kind".into());
                    }
                    let kinds = kinds
                        .iter()
                        .map(|kind| match kind {
                            QueryPredicateArg::String(name) => {
                                if language.id_for_node_kind(name, true) == 0 {
                                    Err(format!("#kind-of?: no node kind {name}"))
                                } else {
                                    Ok(name.to_string())
                                }
                            }
                            QueryPredicateArg::Capture(_) => {
                                Err("#kind-of? takes kinds after its capture".into())
                            }
                        })
                        .collect::<Result<Vec<_>, String>>()?;
                    Ok((*capture, kinds))
                })
                .collect()
        })
        .collect()
}

/// The node kinds that the patterns of `query` (compiled from `src`) start at, by kind id; see
/// [`CompiledQuery::roots`].
fn pattern_roots(language: &Language, query: &Query, src: &str) -> Option<Vec<bool>> {
    let mut roots = vec![false; language.node_kind_count()];
    for pattern in 0..query.pattern_count() {
        let rest = src
            .get(query.start_byte_for_pattern(pattern)..)?
            .strip_prefix('(')?;
        let name = rest
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .next()
            .filter(|n| !n.is_empty() && *n != "_")?;
        let id = language.id_for_node_kind(name, true);
        if id == 0 || !language.node_kind_is_visible(id) || language.node_kind_is_supertype(id) {
            return None;
        }
        // Aliases give one kind name several ids (`id` among them); a pattern matches them all.
        for (other, root) in roots.iter_mut().enumerate() {
            let other = other as u16;
            *root |= language.node_kind_is_named(other)
                && language.node_kind_for_id(other) == Some(name);
        }
    }
    Some(roots)
}

/// Compiles the query files of `langs` (repeats allowed) on a thread per language, once per process, while the
/// caller goes on (opening the store, walking, hashing, parsing trees); the first file of a language that needs its
/// query then waits only for what is left. tree-sitter analyses a query against the whole grammar: C++'s takes
/// 55 ms, Python's 17 ms, Java's 10 ms, which a one-file re-extraction otherwise spends on its critical path. Only a
/// language whose query file nanodex's own matcher declines ([`Lang::patterns`]) needs tree-sitter's compiled query.
pub fn compile_queries_in_background(langs: impl IntoIterator<Item = Lang>) {
    static STARTED: [AtomicBool; Lang::ALL.len()] =
        [const { AtomicBool::new(false) }; Lang::ALL.len()];
    for lang in langs {
        let idx = lang.index();
        if lang.patterns().is_none() && !STARTED[idx].swap(true, Ordering::Relaxed) {
            COMPILING[idx].store(true, Ordering::Release);
            let spawned = std::thread::Builder::new()
                .name(format!("nanodex-query-{}", lang.as_str()))
                .spawn(move || {
                    // Cleared however the compilation ends (a bad query file panics).
                    struct Done(usize);
                    impl Drop for Done {
                        fn drop(&mut self) {
                            COMPILING[self.0].store(false, Ordering::Release);
                        }
                    }
                    let _done = Done(idx);
                    lang.query();
                });
            // A thread that cannot be started leaves the compilation to the first file that needs it.
            if spawned.is_err() {
                COMPILING[idx].store(false, Ordering::Release);
            }
        }
    }
}

/// Per language: whether [`compile_queries_in_background`]'s thread is compiling its query right now.
static COMPILING: [AtomicBool; Lang::ALL.len()] =
    [const { AtomicBool::new(false) }; Lang::ALL.len()];

/// Text of a node.
pub(crate) fn text<'s>(node: Node<'_>, src: &'s str) -> &'s str {
    src.get(node.byte_range()).unwrap_or("")
}

/// Strips quotes and angle brackets from an include / import path literal.
pub(crate) fn unquote(s: &str) -> &str {
    s.trim()
        .trim_matches(|c| c == '"' || c == '\'' || c == '`' || c == '<' || c == '>')
}

/// Definition name from the `name` field, for languages whose queries always capture it.
pub(crate) fn name_field(node: Node<'_>, src: &str) -> Option<QualifiedName> {
    node.child_by_field_name("name")
        .map(|n| (CompactString::new(text(n, src)), Vec::new()))
}

#[cfg(test)]
mod tests;
