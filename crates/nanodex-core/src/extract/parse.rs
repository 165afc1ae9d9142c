//! Parsing one file: source text in, [`FileFacts`] out. No I/O, no cross-file knowledge.
//!
//! The language's query file (`lang/<name>/tags.scm`) says what is a definition or a reference; this module turns the
//! query matches into facts, nests definitions, and attaches each reference to its innermost enclosing definition.
//! Parsing never fails: a file with syntax errors yields what tree-sitter recovered plus the error lines.

use std::cell::RefCell;

use compact_str::CompactString;
use streaming_iterator::StreamingIterator;
use tree_sitter::{Node, Parser, QueryCursor, QueryMatch, Tree};

use super::facts::{ConfigKind, ConfigRead, Def, DefKind, FileFacts, Local, Ref, RefKind};
use super::lang::{Lang, LangSpec, QualifiedName, text};

/// Longest signature kept, in characters.
const MAX_SIGNATURE: usize = 300;
/// Longest doc paragraph kept, in characters.
const MAX_DOC: usize = 600;
/// Most error lines recorded per file (`has_error` tells the rest).
const MAX_ERROR_LINES: usize = 50;

thread_local! {
    static PARSERS: RefCell<Vec<(Lang, Parser)>> = const { RefCell::new(Vec::new()) };
}

/// Parses `src` as `lang` and extracts its facts.
pub fn parse_file(lang: Lang, src: &str) -> FileFacts {
    match parse_or_defer(lang, src) {
        Parsed::Facts(facts) => facts,
        Parsed::Deferred(tree) => finish_deferred(lang, tree, src),
    }
}

/// What [`parse_or_defer`] got done.
pub(crate) enum Parsed {
    /// The file's facts.
    Facts(FileFacts),
    /// The tree (`None` when tree-sitter gave up), waiting for the language's query, which another thread is still
    /// compiling: [`finish_deferred`] extracts the facts.
    Deferred(Option<Tree>),
}

/// Parses `src` as `lang`, and extracts its facts unless the language's query is still being compiled (the C++
/// query takes about 0.1 s): the caller can then parse other files meanwhile instead of waiting.
pub(crate) fn parse_or_defer(lang: Lang, src: &str) -> Parsed {
    let tree = parse_tree(lang, src);
    if lang.patterns().is_some() || lang.query_unless_compiling().is_some() {
        Parsed::Facts(finish_deferred(lang, tree, src))
    } else {
        Parsed::Deferred(tree)
    }
}

/// The facts of a file parsed by [`parse_or_defer`] (waits for the language's query if need be).
pub(crate) fn finish_deferred(lang: Lang, tree: Option<Tree>, src: &str) -> FileFacts {
    let Some(tree) = tree else {
        // tree-sitter only gives up when cancelled or out of memory; report the whole file as an error.
        return FileFacts {
            has_error: true,
            error_lines: vec![1],
            n_lines: count_lines(src),
            ..FileFacts::default()
        };
    };
    facts_with(lang, &tree, src, Engine::Fastest)
}

fn parse_tree(lang: Lang, src: &str) -> Option<Tree> {
    PARSERS.with(|cell| {
        let mut parsers = cell.borrow_mut();
        let idx = match parsers.iter().position(|(l, _)| *l == lang) {
            Some(idx) => idx,
            None => {
                let mut parser = Parser::new();
                // The grammars are compiled into the binary with a supported ABI; tested in `lang::tests`.
                parser.set_language(lang.parse_grammar()).ok()?;
                parsers.push((lang, parser));
                parsers.len() - 1
            }
        };
        parsers[idx].1.parse(src, None)
    })
}

fn count_lines(src: &str) -> u32 {
    (src.bytes().filter(|b| *b == b'\n').count()
        + usize::from(!src.is_empty() && !src.ends_with('\n'))) as u32
}

/// One raw definition before nesting.
struct RawDef<'t> {
    node: Node<'t>,
    kind: DefKind,
    name: CompactString,
    qualifier: Vec<CompactString>,
}

/// What the query matches of one file collect, before nesting and scoping.
#[derive(Default)]
struct RawFacts<'t> {
    defs: Vec<RawDef<'t>>,
    refs: Vec<(RefKind, Node<'t>, CompactString, Option<CompactString>)>,
    locals: Vec<(Node<'t>, CompactString, CompactString, bool)>,
    config: Vec<(ConfigKind, Node<'t>, CompactString)>,
}

/// Which engine runs a language's query file over a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    /// nanodex's matcher ([`super::lang::Patterns`]) where it supports the query file, otherwise `QueryAtRoots`.
    Fastest,
    /// tree-sitter's query cursor, at the nodes the query's patterns can start at (found by one walk of the tree):
    /// the same matches as running it over the whole tree, for a quarter to a third less of the matching work
    /// (measured on the three bench corpora: the query cursor's own traversal updates its state at every node).
    /// Over the whole tree when the query's pattern roots are unknown.
    #[cfg_attr(not(test), allow(dead_code))]
    QueryAtRoots,
    /// tree-sitter's query cursor over the whole tree.
    #[cfg_attr(not(test), allow(dead_code))]
    QueryWholeTree,
}

/// The facts of a parsed file, the query file run by `engine`.
fn facts_with<'t>(lang: Lang, tree: &'t Tree, src: &str, engine: Engine) -> FileFacts {
    let spec = lang.spec();
    let root = tree.root_node();
    let mut facts = FileFacts {
        n_lines: count_lines(src),
        has_error: root.has_error(),
        ..FileFacts::default()
    };

    let mut raw = RawFacts::default();
    match (engine, lang.patterns()) {
        (Engine::Fastest, Some(patterns)) => {
            let mut cursor = root.walk();
            for node in root_nodes(root, &patterns.roots) {
                patterns.matches_at(node, src, &mut cursor, &mut |_, captures| {
                    let captures = captures
                        .iter()
                        .map(|(capture, node)| (patterns.capture_name(*capture), *node));
                    collect_match(captures, spec, src, &mut raw, &mut facts);
                });
            }
        }
        _ => {
            let compiled = lang.query();
            let query = &compiled.query;
            let names = query.capture_names();
            let mut collect = |m: &QueryMatch<'_, 't>| {
                if compiled.kinds_hold(m) {
                    let captures = m
                        .captures()
                        .iter()
                        .map(|c| (names[c.index as usize], c.node));
                    collect_match(captures, spec, src, &mut raw, &mut facts);
                }
            };
            let mut cursor = QueryCursor::new();
            match (engine, compiled.roots.as_deref()) {
                (Engine::QueryWholeTree, _) | (_, None) => {
                    let mut matches = cursor.matches(query, root, src.as_bytes());
                    while let Some(m) = matches.next() {
                        collect(m);
                    }
                }
                (_, Some(roots)) => {
                    // Matches start at the node itself; the query still descends as far as its patterns reach.
                    cursor.set_max_start_depth(Some(0));
                    for node in root_nodes(root, roots) {
                        let mut matches = cursor.matches(query, node, src.as_bytes());
                        while let Some(m) = matches.next() {
                            collect(m);
                        }
                    }
                }
            }
        }
    }
    let RawFacts {
        defs: mut raw_defs,
        refs: raw_refs,
        locals: mut raw_locals,
        config: raw_config,
    } = raw;

    // Nest definitions: sort by start (outer first on ties), then a stack of open ranges gives each its parent.
    raw_defs.sort_by_key(|d| (d.node.start_byte(), std::cmp::Reverse(d.node.end_byte())));
    raw_defs.dedup_by(|b, a| a.node.id() == b.node.id());
    let mut stack: Vec<usize> = Vec::new();
    for (idx, raw) in raw_defs.iter().enumerate() {
        while let Some(&top) = stack.last() {
            if raw_defs[top].node.end_byte() >= raw.node.end_byte()
                && raw_defs[top].node.start_byte() <= raw.node.start_byte()
            {
                break;
            }
            stack.pop();
        }
        let parent = stack.last().map(|p| *p as u32);
        let kind = refine_kind(lang, raw, parent.map(|p| &raw_defs[p as usize]));
        // Found once per definition: tree-sitter finds a node's parent by descending from the root.
        let node_parent = raw.node.parent();
        let (decorators, visibility, modifiers) = def_modifiers(lang, raw.node, node_parent, src);
        facts.defs.push(Def {
            kind,
            name: raw.name.clone(),
            qualifier: raw.qualifier.clone(),
            parent,
            start_line: raw.node.start_position().row as u32 + 1,
            end_line: raw.node.end_position().row as u32 + 1,
            signature: signature(raw.node, src),
            doc: def_doc(lang, raw.node, node_parent, src),
            decorators,
            visibility,
            modifiers,
        });
        stack.push(idx);
    }

    let starts: Vec<usize> = raw_defs.iter().map(|d| d.node.start_byte()).collect();
    let scope_of = |byte: usize| -> Option<u32> {
        let mut idx = starts.partition_point(|s| *s <= byte).checked_sub(1)?;
        loop {
            if raw_defs[idx].node.end_byte() > byte {
                return Some(idx as u32);
            }
            idx = facts.defs[idx].parent? as usize;
        }
    };
    let mut refs: Vec<Ref> = raw_refs
        .into_iter()
        .map(|(kind, node, name, receiver)| Ref {
            kind,
            name,
            receiver,
            scope: scope_of(node.start_byte()),
            line: node.start_position().row as u32 + 1,
        })
        .collect();
    // A total order, so that the facts do not depend on the order the query reports its matches in (chained calls
    // on one line, `a.f().f()`, differ only in their receivers).
    refs.sort_by(|a, b| {
        (a.line, a.kind, &a.name, &a.receiver, a.scope).cmp(&(
            b.line,
            b.kind,
            &b.name,
            &b.receiver,
            b.scope,
        ))
    });
    refs.dedup();
    facts.refs = refs;
    // In file order (the first of a name wins in `resolve`), whatever order the matches came in.
    raw_locals.sort_by_key(|(node, ..)| node.start_byte());
    facts.locals = raw_locals
        .into_iter()
        .map(|(node, name, type_name, member)| Local {
            name,
            type_name,
            scope: scope_of(node.start_byte()),
            member,
        })
        .collect();
    let mut config: Vec<ConfigRead> = raw_config
        .into_iter()
        .map(|(kind, node, key)| ConfigRead {
            kind,
            key,
            scope: scope_of(node.start_byte()),
            line: node.start_position().row as u32 + 1,
        })
        .collect();
    config.sort_by(|a, b| (a.line, a.kind, &a.key).cmp(&(b.line, b.kind, &b.key)));
    config.dedup();
    facts.config = config;
    facts.doc = module_doc(lang, root, src);
    if facts.has_error {
        facts.error_lines = error_lines(root);
    }
    facts
}

unsafe extern "C" {
    /// `roots.c`: calls `visit(ctx, node)` for each visible node under `root` (itself included) whose kind id `k`
    /// has `roots[k]` set, in document order; 0, or -1 when it ran out of memory and stopped.
    fn nanodex_walk_roots(
        root: tree_sitter::ffi::TSNode,
        roots: *const bool,
        roots_len: u32,
        visit: extern "C" fn(*mut std::ffi::c_void, tree_sitter::ffi::TSNode),
        ctx: *mut std::ffi::c_void,
    ) -> std::ffi::c_int;
}

/// The nodes under `root` (itself included) whose kind id `k` has `roots[k]` set, in document order: the nodes a
/// query's patterns can start at ([`super::lang::CompiledQuery::roots`]). One pass over tree-sitter's subtree
/// arrays (`roots.c`); the same nodes as [`root_nodes_by_cursor`], which it falls back to when out of memory.
fn root_nodes<'t>(root: Node<'t>, roots: &[bool]) -> Vec<Node<'t>> {
    extern "C" fn push(ctx: *mut std::ffi::c_void, node: tree_sitter::ffi::TSNode) {
        // SAFETY: `ctx` is the `Vec` below, borrowed mutably for the call and not otherwise touched meanwhile.
        unsafe { &mut *ctx.cast::<Vec<tree_sitter::ffi::TSNode>>() }.push(node);
    }
    let mut raw: Vec<tree_sitter::ffi::TSNode> = Vec::new();
    // SAFETY: `root` is a node of a live tree (borrowed for 't), `roots` outlives the call, and `push` only
    // appends to `raw`.
    let status = unsafe {
        nanodex_walk_roots(
            root.into_raw(),
            roots.as_ptr(),
            // Never more than the slice holds (kind ids are 16-bit anyway).
            roots.len().min(u32::MAX as usize) as u32,
            push,
            (&raw mut raw).cast(),
        )
    };
    if status != 0 {
        return root_nodes_by_cursor(root, roots);
    }
    raw.into_iter()
        // SAFETY: each is a node of `root`'s tree, which lives for 't.
        .map(|node| unsafe { Node::from_raw(node) })
        .collect()
}

/// [`root_nodes`] by tree-sitter's own tree cursor.
fn root_nodes_by_cursor<'t>(root: Node<'t>, roots: &[bool]) -> Vec<Node<'t>> {
    let mut found = Vec::new();
    let mut walk = root.walk();
    'walk: loop {
        let node = walk.node();
        if roots
            .get(usize::from(node.kind_id()))
            .copied()
            .unwrap_or(false)
        {
            found.push(node);
        }
        if walk.goto_first_child() {
            continue;
        }
        while !walk.goto_next_sibling() {
            if !walk.goto_parent() {
                break 'walk;
            }
        }
    }
    found
}

/// Adds one query match, given as its captures' names and nodes, to the raw facts (imports and the package go
/// straight to `facts`).
fn collect_match<'n, 't>(
    captures: impl Iterator<Item = (&'n str, Node<'t>)>,
    spec: &LangSpec,
    src: &str,
    raw: &mut RawFacts<'t>,
    facts: &mut FileFacts,
) {
    let mut main: Option<(&str, Node<'t>)> = None;
    let mut name_node = None;
    let mut receiver = None;
    let mut local_name = None;
    let mut local_type = None;
    let mut config_key = None;
    for (cap_name, cap_node) in captures {
        match cap_name {
            "name" => name_node = Some(cap_node),
            "receiver" => receiver = Some(cap_node),
            "local.name" => local_name = Some(cap_node),
            "local.type" => local_type = Some(cap_node),
            "config.key" => config_key = Some(cap_node),
            _ if cap_name.starts_with('_') => {}
            _ => main = Some((cap_name, cap_node)),
        }
    }
    let Some((main_name, node)) = main else {
        return;
    };
    if let Some(kind) = main_name.strip_prefix("def.") {
        let kind = match kind {
            "class" => DefKind::Class,
            "interface" => DefKind::Interface,
            "struct" => DefKind::Struct,
            "enum" => DefKind::Enum,
            "trait" => DefKind::Trait,
            "constructor" => DefKind::Constructor,
            "namespace" => DefKind::Namespace,
            _ => DefKind::Function,
        };
        let named = match name_node {
            Some(n) => split_qualified(text(n, src), spec.scope_sep),
            None => (spec.def_name)(node, src),
        };
        if let Some((name, qualifier)) = named.filter(|(name, _)| !name.is_empty()) {
            raw.defs.push(RawDef {
                node,
                kind,
                name,
                qualifier,
            });
        }
    } else if let Some(kind) = main_name.strip_prefix("ref.") {
        let kind = match kind {
            "call" => RefKind::Call,
            "new" => RefKind::New,
            "throw" => RefKind::Throw,
            "extends" => RefKind::Extends,
            _ => RefKind::Implements,
        };
        let Some(name_node) = name_node else { return };
        let (name, qualifier) =
            split_qualified(text(name_node, src), spec.scope_sep).unwrap_or_default();
        if name.is_empty() {
            return;
        }
        let receiver = match receiver {
            Some(r) => Some(collapse_compact(text(r, src), 120)),
            None if !qualifier.is_empty() => {
                Some(CompactString::from(qualifier.join(spec.scope_sep)))
            }
            None => None,
        };
        raw.refs.push((kind, name_node, name, receiver));
    } else if let Some(kind) = main_name.strip_prefix("config.") {
        let kind = match kind {
            "env" => ConfigKind::Env,
            "property" => ConfigKind::Property,
            _ => return,
        };
        if let Some(key) = config_key.and_then(|k| literal_key(text(k, src))) {
            raw.config.push((kind, node, key.into()));
        }
    } else if main_name == "import" {
        (spec.imports)(node, src, &mut facts.imports);
    } else if main_name == "package" {
        facts.package = Some(collapse(text(node, src), 200));
    } else if (main_name == "local" || main_name == "local.member")
        && let (Some(n), Some(t)) = (local_name, local_type)
    {
        raw.locals.push((
            n,
            CompactString::new(text(n, src)),
            CompactString::new(text(t, src)),
            main_name == "local.member",
        ));
    }
}

/// Longest configuration key kept, in characters.
const MAX_CONFIG_KEY: usize = 100;

/// The key named by a string literal (`"HOME"`, `'a.b'`, `L"X"`, `r'X'`) or a bare property name
/// (`process.env.HOME`), or `None` when it is not a plain name: empty, too long, or holding other characters than
/// letters, digits, `_`, `.` and `-` (so interpolated f-strings and template strings are dropped).
fn literal_key(raw: &str) -> Option<String> {
    let body = match raw.find(['"', '\'', '`']) {
        Some(quote) => {
            let prefix = &raw[..quote];
            // String prefixes (`r`, `b`, `L`, `u8` ...); interpolation is caught by the character check below.
            if !prefix.chars().all(|c| c.is_ascii_alphanumeric()) {
                return None;
            }
            raw[quote..].trim_matches(|c| c == '"' || c == '\'' || c == '`')
        }
        None => raw,
    };
    let plain = !body.is_empty()
        && body.len() <= MAX_CONFIG_KEY
        && body.chars().any(|c| c.is_ascii_alphabetic())
        && body
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    plain.then(|| body.to_string())
}

/// Splits `a.b.C` / `ns::C` into `C` and `[a, b]`; C++ template arguments are dropped.
fn split_qualified(raw: &str, sep: &str) -> Option<QualifiedName> {
    let raw = raw.split('<').next().unwrap_or(raw).trim();
    // Most names are plain identifiers: no parts to split, nothing to collect.
    if !raw.contains(sep) {
        return (!raw.is_empty()).then(|| (CompactString::new(raw), Vec::new()));
    }
    let mut parts: Vec<CompactString> = raw
        .split(sep)
        .map(|p| CompactString::new(p.trim()))
        .filter(|p| !p.is_empty())
        .collect();
    let name = parts.pop()?;
    Some((name, parts))
}

fn refine_kind(lang: Lang, raw: &RawDef<'_>, parent: Option<&RawDef<'_>>) -> DefKind {
    if raw.kind != DefKind::Function {
        return raw.kind;
    }
    let owner_type = parent
        .filter(|p| p.kind.is_type())
        .map(|p| p.name.as_str())
        .or(raw.qualifier.last().map(|s| s.as_str()));
    let in_type = parent.is_some_and(|p| p.kind.is_type())
        || (matches!(lang, Lang::Cpp) && !raw.qualifier.is_empty());
    let is_ctor = match lang {
        Lang::Python => raw.name == "__init__",
        Lang::JavaScript | Lang::TypeScript => raw.name == "constructor",
        Lang::Cpp => owner_type == Some(raw.name.as_str()),
        _ => false,
    };
    if is_ctor && in_type {
        DefKind::Constructor
    } else if in_type {
        DefKind::Method
    } else {
        DefKind::Function
    }
}

/// Header text up to the body, whitespace collapsed.
fn signature(node: Node<'_>, src: &str) -> String {
    let end = node
        .child_by_field_name("body")
        .map(|b| b.start_byte())
        .unwrap_or_else(|| node.end_byte());
    let end = end.min(node.start_byte() + 4 * MAX_SIGNATURE);
    let head = src.get(node.start_byte()..end).unwrap_or("");
    let head = head.trim_end().trim_end_matches([':', '{']).trim_end();
    collapse(head, MAX_SIGNATURE)
}

/// Collapses runs of whitespace and truncates to `max` characters on a char boundary.
/// [`collapse`] as an inline string: text that is already collapsed (ASCII without whitespace, within `max`) is
/// copied once. Whitespace is what `split_whitespace` splits on, vertical tab included; any non-ASCII byte takes
/// the general path, which also knows Unicode's spaces.
fn collapse_compact(s: &str, max: usize) -> CompactString {
    if s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii() && !char::from(b).is_whitespace())
    {
        CompactString::new(s)
    } else {
        collapse(s, max).into()
    }
}

pub(crate) fn collapse(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max + 4));
    for (n, word) in s.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.push_str(word);
        if out.len() > max {
            let mut cut = max;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
            out.push('…');
            break;
        }
    }
    out
}

/// Decorators / annotations, visibility and modifier keywords of a definition.
fn def_modifiers<'t>(
    lang: Lang,
    node: Node<'t>,
    parent: Option<Node<'t>>,
    src: &str,
) -> (
    Vec<CompactString>,
    Option<CompactString>,
    Vec<CompactString>,
) {
    let mut decorators = Vec::new();
    let mut visibility = None;
    let mut modifiers = Vec::new();
    match lang {
        Lang::Python => {
            if let Some(parent) = parent.filter(|p| p.kind() == "decorated_definition") {
                let mut cursor = parent.walk();
                for dec in parent
                    .children(&mut cursor)
                    .filter(|c| c.kind() == "decorator")
                {
                    let t = text(dec, src).trim_start_matches('@');
                    decorators.push(collapse_compact(t, 120));
                }
            }
            let name = node
                .child_by_field_name("name")
                .map(|n| text(n, src))
                .unwrap_or("");
            visibility = Some(CompactString::const_new(
                if name.starts_with("__") && !name.ends_with("__") {
                    "private"
                } else if name.starts_with('_') && !name.ends_with("__") {
                    "protected"
                } else {
                    "public"
                },
            ));
            for d in &decorators {
                if matches!(
                    d.as_str(),
                    "staticmethod"
                        | "classmethod"
                        | "property"
                        | "abstractmethod"
                        | "abc.abstractmethod"
                ) {
                    modifiers.push(d.clone());
                }
            }
            let mut cursor = node.walk();
            if node.children(&mut cursor).any(|c| c.kind() == "async") {
                modifiers.push("async".into());
            }
        }
        Lang::Java => {
            let mut cursor = node.walk();
            if let Some(mods) = node.children(&mut cursor).find(|c| c.kind() == "modifiers") {
                let mut walk = mods.walk();
                for m in mods.children(&mut walk) {
                    let t = text(m, src);
                    match m.kind() {
                        "marker_annotation" | "annotation" => {
                            decorators.push(collapse_compact(t.trim_start_matches('@'), 120))
                        }
                        "public" | "private" | "protected" => {
                            visibility = Some(CompactString::new(t))
                        }
                        _ if !t.trim().is_empty() && !m.is_named() => {
                            modifiers.push(CompactString::new(t))
                        }
                        _ => {}
                    }
                }
            }
            if visibility.is_none() {
                visibility = Some("package".into());
            }
        }
        Lang::Cpp | Lang::C => {
            let mut cursor = node.walk();
            for child in node.children(&mut cursor) {
                match child.kind() {
                    "storage_class_specifier" | "virtual" | "type_qualifier" => {
                        modifiers.push(CompactString::new(text(child, src)))
                    }
                    _ => {}
                }
            }
            visibility = cpp_access(node, parent, src);
        }
        Lang::JavaScript | Lang::TypeScript => {
            let mut cursor = node.walk();
            for child in node.children(&mut cursor) {
                match child.kind() {
                    "static" | "async" | "abstract" | "readonly" | "get" | "set" => {
                        modifiers.push(CompactString::new(text(child, src)))
                    }
                    "accessibility_modifier" => {
                        visibility = Some(CompactString::new(text(child, src)))
                    }
                    "decorator" => decorators.push(collapse_compact(
                        text(child, src).trim_start_matches('@'),
                        120,
                    )),
                    _ => {}
                }
            }
            let exported = parent.is_some_and(|p| p.kind() == "export_statement")
                || parent
                    .and_then(|p| p.parent())
                    .is_some_and(|p| p.kind() == "export_statement");
            if exported {
                modifiers.push("export".into());
            }
        }
    }
    (decorators, visibility, modifiers)
}

/// Access of a C++ member: the nearest `public:` / `private:` label above it in the class body, found in one pass
/// over the body (stepping back by `Node::prev_sibling`, which finds the parent again from the root at every call,
/// was quadratic in a large class).
fn cpp_access<'t>(node: Node<'t>, parent: Option<Node<'t>>, src: &str) -> Option<CompactString> {
    let body = parent.filter(|p| p.kind() == "field_declaration_list")?;
    let mut cursor = body.walk();
    let label = body
        .children(&mut cursor)
        .take_while(|child| child.id() != node.id())
        .filter(|child| child.kind() == "access_specifier")
        .last();
    if let Some(label) = label {
        return Some(CompactString::new(
            text(label, src).trim_end_matches(':').trim(),
        ));
    }
    let class_kind = body.parent().map(|c| c.kind());
    Some(CompactString::const_new(
        if class_kind == Some("class_specifier") {
            "private"
        } else {
            "public"
        },
    ))
}

/// First paragraph of a definition's docstring (Python) or the comment block right above it.
fn def_doc<'t>(lang: Lang, node: Node<'t>, parent: Option<Node<'t>>, src: &str) -> Option<String> {
    if lang == Lang::Python {
        let body = node.child_by_field_name("body")?;
        return python_docstring(body, src);
    }
    // Comments sit before the outermost wrapper that starts on the definition's line.
    let (mut anchor, mut anchor_parent) = (node, parent);
    while let Some(parent) = anchor_parent {
        let wraps = matches!(
            parent.kind(),
            "template_declaration"
                | "export_statement"
                | "lexical_declaration"
                | "variable_declaration"
                | "declaration"
        );
        if !wraps {
            break;
        }
        anchor = parent;
        anchor_parent = parent.parent();
    }
    comment_above(anchor, src)
}

fn python_docstring(block: Node<'_>, src: &str) -> Option<String> {
    let first = block.named_child(0)?;
    if first.kind() != "expression_statement" {
        return None;
    }
    let string = first.named_child(0).filter(|s| s.kind() == "string")?;
    let raw = text(string, src);
    let body = raw.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let body = body.trim_matches(|c| c == '"' || c == '\'');
    first_paragraph(body)
}

fn comment_above(node: Node<'_>, src: &str) -> Option<String> {
    if !may_have_comment_above(node, src) {
        return None;
    }
    comment_lines_above(node, src)
}

/// Whether a comment sibling may end on `node`'s row or the row above (the comments [`comment_above`] reads): it
/// would end inside the text from the start of the row above up to the node, leaving its end (`*/`, `-->`) or the
/// whole of a line comment (`//`, `<!--`) there. Checked first because `Node::prev_sibling` finds the parent again
/// from the root, which costs about as long as the member's index in its class body.
fn may_have_comment_above(node: Node<'_>, src: &str) -> bool {
    let Some(before) = src.get(..node.start_byte()) else {
        return true;
    };
    let row_above = before
        .rfind('\n')
        .and_then(|end| before[..end].rfind('\n').map(|i| i + 1))
        .unwrap_or(0);
    // A C/C++ line comment continued by a backslash starts on an earlier row.
    before[..row_above]
        .trim_end_matches(['\n', '\r'])
        .ends_with('\\')
        || ["*/", "//", "-->", "<!--"]
            .iter()
            .any(|m| before[row_above..].contains(m))
}

/// The comment siblings right above `node` (each ending on the row above the next), as [`comment_above`]'s text.
fn comment_lines_above(node: Node<'_>, src: &str) -> Option<String> {
    let mut lines: Vec<&str> = Vec::new();
    let mut expected_end_row = node.start_position().row;
    let mut sibling = node.prev_sibling();
    while let Some(s) = sibling {
        if !s.kind().ends_with("comment") || s.end_position().row + 1 < expected_end_row {
            break;
        }
        lines.push(text(s, src));
        expected_end_row = s.start_position().row;
        sibling = s.prev_sibling();
    }
    if lines.is_empty() {
        return None;
    }
    lines.reverse();
    let joined: String = lines
        .iter()
        .flat_map(|c| c.lines())
        .map(|l| {
            l.trim()
                .trim_start_matches("/**")
                .trim_start_matches("/*")
                .trim_end_matches("*/")
                .trim_start_matches("///")
                .trim_start_matches("//")
                .trim_start_matches('*')
                .trim()
        })
        .collect::<Vec<_>>()
        .join("\n");
    first_paragraph(&joined)
}

/// The first non-empty paragraph, whitespace collapsed; Javadoc tags end it.
fn first_paragraph(s: &str) -> Option<String> {
    let mut para: Vec<&str> = Vec::new();
    for line in s.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('@') {
            if para.is_empty() && line.is_empty() {
                continue;
            }
            break;
        }
        para.push(line);
    }
    let out = collapse(&para.join(" "), MAX_DOC);
    (!out.is_empty()).then_some(out)
}

fn module_doc(lang: Lang, root: Node<'_>, src: &str) -> Option<String> {
    if lang == Lang::Python {
        return python_docstring(root, src);
    }
    let first = root
        .named_child(0)
        .filter(|c| c.kind().ends_with("comment"))?;
    let mut cursor = root.walk();
    let mut parts = Vec::new();
    let mut row = first.start_position().row;
    for child in root.named_children(&mut cursor) {
        if !child.kind().ends_with("comment") || child.start_position().row > row + 1 {
            break;
        }
        parts.push(text(child, src));
        row = child.end_position().row;
    }
    let joined = parts.join("\n");
    let cleaned: Vec<&str> = joined
        .lines()
        .map(|l| {
            l.trim()
                .trim_start_matches("/*")
                .trim_end_matches("*/")
                .trim_start_matches("//")
                .trim_start_matches('*')
                .trim()
        })
        .collect();
    first_paragraph(&cleaned.join("\n"))
}

/// Lines of ERROR and MISSING nodes, walking only subtrees that contain errors (no recursion: sources nest deeply).
fn error_lines(root: Node<'_>) -> Vec<u32> {
    let mut lines = Vec::new();
    let mut cursor = root.walk();
    'walk: loop {
        let node = cursor.node();
        if node.is_error() || node.is_missing() {
            let line = node.start_position().row as u32 + 1;
            if lines.last() != Some(&line) {
                lines.push(line);
            }
            if lines.len() >= MAX_ERROR_LINES {
                break;
            }
        } else if node.has_error() && cursor.goto_first_child() {
            continue;
        }
        while !cursor.goto_next_sibling() {
            if !cursor.goto_parent() {
                break 'walk;
            }
        }
    }
    lines.sort_unstable();
    lines.dedup();
    lines
}

#[cfg(test)]
pub(crate) mod tests;
