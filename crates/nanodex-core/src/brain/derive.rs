//! Deriving the typed brain from the code graph and the source text. Pure: the caller reads the files.
//!
//! Every summary is a list of [`Sentence`]s, each written from graph facts and carrying the ids of the code nodes
//! it states something about; text quoted from the source (docstrings, signatures, messages, conditions) passes
//! through the secret scanner first and is clipped.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde_json::json;

use super::text::{self, MAX_CODE_CHARS};
use super::{BrainNode, BrainStats, BrainType, Sentence};
use crate::config::SummaryConfig;
use crate::extract::{CodeGraph, EdgeKind, Node, NodeRef, NodeType, stable_key};
use crate::secrets::Scanner;

/// What derivation reads.
pub struct Inputs<'a> {
    /// The code graph.
    pub graph: &'a CodeGraph,
    /// Source text of module files, by repository-relative path.
    pub sources: &'a HashMap<String, String>,
    /// Markdown documents (path, text) mined for recipes.
    pub docs: &'a [(String, String)],
}

struct Index<'a> {
    g: &'a CodeGraph,
    by_id: HashMap<&'a NodeRef, usize>,
    out: HashMap<(usize, EdgeKind), Vec<usize>>,
    inc: HashMap<(usize, EdgeKind), Vec<usize>>,
    /// Functions and classes by simple name.
    by_name: HashMap<&'a str, Vec<usize>>,
    /// Functions per path, for line → enclosing function.
    funcs_by_path: HashMap<&'a str, Vec<usize>>,
    /// Module node per path.
    module_by_path: HashMap<&'a str, usize>,
}

impl<'a> Index<'a> {
    fn new(g: &'a CodeGraph) -> Index<'a> {
        let by_id: HashMap<&NodeRef, usize> = g
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (&n.id, i))
            .collect();
        let mut out: HashMap<(usize, EdgeKind), Vec<usize>> = HashMap::new();
        let mut inc: HashMap<(usize, EdgeKind), Vec<usize>> = HashMap::new();
        for (ei, e) in g.edges.iter().enumerate() {
            if let (Some(&f), Some(&t)) = (by_id.get(&e.from), by_id.get(&e.to)) {
                out.entry((f, e.kind)).or_default().push(ei);
                inc.entry((t, e.kind)).or_default().push(ei);
            }
        }
        let mut by_name: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut funcs_by_path: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut module_by_path = HashMap::new();
        for (i, n) in g.nodes.iter().enumerate() {
            match n.id.ty {
                NodeType::Function | NodeType::Class => {
                    by_name.entry(n.name.as_str()).or_default().push(i);
                    if n.id.ty == NodeType::Function {
                        funcs_by_path.entry(n.path.as_str()).or_default().push(i);
                    }
                }
                NodeType::Module => {
                    module_by_path.insert(n.path.as_str(), i);
                }
                _ => {}
            }
        }
        for v in funcs_by_path.values_mut() {
            v.sort_by_key(|&i| {
                (
                    g.nodes[i].start_line,
                    std::cmp::Reverse(g.nodes[i].end_line),
                )
            });
        }
        Index {
            g,
            by_id,
            out,
            inc,
            by_name,
            funcs_by_path,
            module_by_path,
        }
    }

    fn node(&self, i: usize) -> &'a Node {
        &self.g.nodes[i]
    }

    /// The other ends of `i`'s edges of `kind` in `edges` (`out` or `inc`), picked by `end`.
    fn ends(
        &self,
        edges: &HashMap<(usize, EdgeKind), Vec<usize>>,
        i: usize,
        kind: EdgeKind,
        end: fn(&'a crate::extract::Edge) -> &'a NodeRef,
    ) -> Vec<usize> {
        edges
            .get(&(i, kind))
            .map(|es| {
                es.iter()
                    .filter_map(|&e| self.by_id.get(end(&self.g.edges[e])).copied())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn targets(&self, i: usize, kind: EdgeKind) -> Vec<usize> {
        self.ends(&self.out, i, kind, |e| &e.to)
    }

    fn sources_of(&self, i: usize, kind: EdgeKind) -> Vec<usize> {
        self.ends(&self.inc, i, kind, |e| &e.from)
    }

    /// Incoming edges with their lines.
    fn incoming(&self, i: usize, kind: EdgeKind) -> Vec<(usize, &'a [u32])> {
        self.inc
            .get(&(i, kind))
            .map(|es| {
                es.iter()
                    .filter_map(|&e| {
                        let edge = &self.g.edges[e];
                        self.by_id
                            .get(&edge.from)
                            .map(|&f| (f, edge.lines.as_slice()))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn owner(&self, i: usize) -> Option<usize> {
        self.targets(i, EdgeKind::DefinedIn).into_iter().next()
    }

    fn module_of(&self, i: usize) -> Option<usize> {
        let mut cur = i;
        for _ in 0..64 {
            if self.node(cur).id.ty == NodeType::Module {
                return Some(cur);
            }
            cur = self.owner(cur)?;
        }
        None
    }

    /// Innermost function of `path` whose lines contain `line`.
    fn enclosing_function(&self, path: &str, line: u32) -> Option<usize> {
        self.funcs_by_path
            .get(path)?
            .iter()
            .copied()
            .filter(|&f| self.node(f).start_line <= line && line <= self.node(f).end_line)
            .max_by_key(|&f| self.node(f).start_line)
    }

    fn meta_str(&self, i: usize, key: &str) -> Option<&'a str> {
        self.node(i).meta.get(key).and_then(|v| v.as_str())
    }

    fn is_test(&self, i: usize) -> bool {
        self.node(i)
            .meta
            .get("is_test")
            .and_then(|v| v.as_bool())
            .unwrap_or(false)
    }

    /// Public API: visible outside its file (Python: no leading underscore in the name or the module path).
    fn is_public(&self, i: usize) -> bool {
        let n = self.node(i);
        if n.name.starts_with('_') || n.name.is_empty() || n.name.starts_with('<') {
            return false;
        }
        if n.path
            .split('/')
            .any(|seg| seg.starts_with('_') && !seg.starts_with("__init__"))
        {
            return false;
        }
        !matches!(
            self.meta_str(i, "visibility"),
            Some("private" | "protected" | "package")
        ) || self.meta_str(i, "visibility") == Some("package")
            && n.lang.is_some_and(|l| l.as_str() != "java")
    }
}

fn exceptionish(name: &str) -> bool {
    let simple = name.rsplit(['.', ':']).next().unwrap_or(name);
    [
        "Error",
        "Exception",
        "Exit",
        "Interrupt",
        "Warning",
        "Fault",
        "Failure",
    ]
    .iter()
    .any(|s| simple.ends_with(s))
        || matches!(simple, "Throwable" | "exception" | "BaseException")
        || simple.ends_with("_error")
}

/// Writes one summary within the token and code-line budgets.
struct Writer<'c> {
    cfg: &'c SummaryConfig,
    scanner: &'c Scanner,
    path: String,
    sentences: Vec<Sentence>,
    tokens: usize,
    code_lines: usize,
    redactions: usize,
    /// How much the rest of the code leans on the node (callers, importers, users, raisers and handlers).
    weight: usize,
}

/// Estimated tokens of `s`: one per word plus one per run of punctuation, plus one per 8 characters of long words.
pub fn estimate_tokens(s: &str) -> usize {
    s.split_whitespace()
        .map(|w| {
            let punct = w
                .split(|c: char| c.is_alphanumeric())
                .filter(|p| !p.is_empty())
                .count();
            1 + punct + w.len() / 8
        })
        .sum()
}

impl<'c> Writer<'c> {
    fn new(cfg: &'c SummaryConfig, scanner: &'c Scanner, path: &str) -> Writer<'c> {
        Writer {
            cfg,
            scanner,
            path: path.to_string(),
            sentences: vec![],
            tokens: 0,
            code_lines: 0,
            redactions: 0,
            weight: 0,
        }
    }

    /// Text that came from the source: secrets redacted.
    fn clean(&mut self, s: &str) -> String {
        let (out, findings) = self.scanner.redact(s, &self.path);
        self.redactions += findings.len();
        out
    }

    /// Adds a sentence when it fits the budget; returns whether it was added.
    fn say(&mut self, text: String, refs: Vec<String>) -> bool {
        let text = self.clean(&text);
        let cost = estimate_tokens(&text);
        if text.trim().is_empty() || self.tokens + cost > self.cfg.max_tokens {
            return false;
        }
        self.tokens += cost;
        self.sentences.push(Sentence { text, refs });
        true
    }

    /// Adds a sentence quoting one line of code, within `max_code_lines`.
    fn say_code(&mut self, text: String, refs: Vec<String>) -> bool {
        if self.code_lines >= self.cfg.max_code_lines {
            return false;
        }
        let added = self.say(text, refs);
        if added {
            self.code_lines += 1;
        }
        added
    }

    /// "Calls `a`, `b` and 3 more." from node indices.
    fn list(&self, ix: &Index, items: &[usize]) -> (String, Vec<String>) {
        let shown: Vec<usize> = items.iter().copied().take(self.cfg.max_list).collect();
        let mut names: Vec<String> = shown
            .iter()
            .map(|&i| format!("`{}`", ix.node(i).qname))
            .collect();
        if items.len() > shown.len() {
            names.push(format!("{} more", items.len() - shown.len()));
        }
        (
            join_and(&names),
            shown.iter().map(|&i| ix.node(i).id.to_string()).collect(),
        )
    }
}

/// Configuration keys read in one module: `(kind, key)` pairs, and the code nodes that read them.
type ModuleConfig<'g> = (BTreeSet<(&'g str, &'g str)>, BTreeSet<usize>);

/// The configuration keys a code node reads by name, from its `meta.config`: `(kind, key, first line)`.
fn config_reads(n: &Node) -> impl Iterator<Item = (&str, &str, u64)> {
    n.meta
        .get("config")
        .and_then(|c| c.as_array())
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let line = e.get("lines")?.as_array()?.first()?.as_u64().unwrap_or(0);
            Some((e.get("kind")?.as_str()?, e.get("key")?.as_str()?, line))
        })
}

/// The `(kind, key)` pairs of [`config_reads`].
fn config_keys(n: &Node) -> impl Iterator<Item = (&str, &str)> {
    config_reads(n).map(|(kind, key, _)| (kind, key))
}

/// "Reads environment variables `A` and `B`." and "Reads property `x`." for the given `(kind, key)` pairs.
fn config_sentences<'k>(w: &mut Writer, keys: &BTreeSet<(&'k str, &'k str)>, refs: Vec<String>) {
    for (kind, one, many) in [
        ("env", "environment variable", "environment variables"),
        ("property", "property", "properties"),
    ] {
        let named: Vec<String> = keys
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, key)| format!("`{key}`"))
            .collect();
        let word = if named.len() == 1 { one } else { many };
        if !named.is_empty() {
            w.say(format!("Reads {word} {}.", join_and(&named)), refs.clone());
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

fn loc(n: &Node) -> String {
    if n.path.is_empty() {
        n.qname.clone()
    } else {
        format!("{}:{}", n.path, n.start_line)
    }
}

fn kind_word(n: &Node) -> String {
    n.meta
        .get("kind")
        .and_then(|v| v.as_str())
        .unwrap_or(n.id.ty.as_str())
        .to_string()
}

/// `a class`, `an interface`.
fn article(word: &str) -> String {
    let an = word.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {word}", if an { "an" } else { "a" })
}

fn lang_word(n: &Node) -> &'static str {
    match n.lang.map(|l| l.as_str()) {
        Some("python") => "Python",
        Some("java") => "Java",
        Some("cpp") => "C++",
        Some("c") => "C",
        Some("javascript") => "JavaScript",
        Some("typescript") => "TypeScript",
        _ => "source",
    }
}

fn sorted_unique(ix: &Index, mut v: Vec<usize>) -> Vec<usize> {
    v.sort_by(|&a, &b| ix.node(a).qname.cmp(&ix.node(b).qname).then(a.cmp(&b)));
    v.dedup();
    v
}

/// Label propagation over the undirected call graph of functions: deterministic (sorted order, ties to the
/// smallest label), ten rounds. Returns a community label per node index (functions only).
fn communities(ix: &Index) -> HashMap<usize, usize> {
    let funcs: Vec<usize> = (0..ix.g.nodes.len())
        .filter(|&i| ix.node(i).id.ty == NodeType::Function)
        .collect();
    let mut adj: HashMap<usize, Vec<usize>> = HashMap::new();
    for &f in &funcs {
        for t in ix.targets(f, EdgeKind::Calls) {
            if ix.node(t).id.ty == NodeType::Function && t != f {
                adj.entry(f).or_default().push(t);
                adj.entry(t).or_default().push(f);
            }
        }
    }
    let mut label: HashMap<usize, usize> = funcs.iter().map(|&f| (f, f)).collect();
    for _ in 0..10 {
        let mut changed = false;
        for &f in &funcs {
            let Some(ns) = adj.get(&f) else { continue };
            let mut counts: BTreeMap<usize, usize> = BTreeMap::new();
            for n in ns {
                *counts.entry(label[n]).or_default() += 1;
            }
            let best = counts
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(l, _)| *l);
            if let Some(b) = best
                && b != label[&f]
            {
                label.insert(f, b);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    label
}

/// A recipe found, before its summary is written.
struct PendingRecipe {
    anchor: String,
    primary: usize,
    name: String,
    origin: String,
    steps: Vec<(usize, u32)>,
    path: String,
    line: u32,
}

/// A raise site of an error.
struct Raise {
    func: usize,
    line: u32,
    condition: Option<String>,
    message: Option<String>,
}

struct Builder<'a, 'c> {
    ix: Index<'a>,
    inp: &'a Inputs<'a>,
    cfg: &'c SummaryConfig,
    scanner: &'c Scanner,
    lines: HashMap<&'a str, Vec<&'a str>>,
    nodes: Vec<BrainNode>,
    stats: BrainStats,
}

impl<'a, 'c> Builder<'a, 'c> {
    fn emit(
        &mut self,
        ty: BrainType,
        anchor: &str,
        primary: usize,
        name: String,
        w: Writer,
        mut meta: serde_json::Map<String, serde_json::Value>,
    ) {
        let n = self.ix.node(primary);
        let summary = w
            .sentences
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let mut refs: Vec<String> = vec![n.id.to_string()];
        for s in &w.sentences {
            for r in &s.refs {
                if !refs.contains(r) {
                    refs.push(r.clone());
                }
            }
        }
        self.stats.redactions += w.redactions as u64;
        meta.insert("lang".into(), json!(n.lang.map(|l| l.as_str())));
        meta.insert(
            "sentences".into(),
            serde_json::to_value(&w.sentences).unwrap_or_default(),
        );
        meta.insert("tokens".into(), json!(w.tokens));
        meta.insert("weight".into(), json!(w.weight));
        *self.stats.nodes.entry(ty.as_str().to_string()).or_default() += 1;
        self.nodes.push(BrainNode {
            id: format!("{}_{}", ty.as_str(), stable_key(&[ty.as_str(), anchor])),
            ty,
            name,
            qname: n.qname.clone(),
            path: n.path.clone(),
            line: n.start_line,
            summary,
            refs,
            meta,
        });
    }

    fn id(&self, i: usize) -> String {
        self.ix.node(i).id.to_string()
    }

    fn doc_sentence(&self, w: &mut Writer, i: usize, refs: Vec<String>) {
        let doc = &self.ix.node(i).doc;
        if !doc.trim().is_empty() {
            w.say(text::clip(&text::plain(doc), 400), refs);
        }
    }

    fn modules(&mut self) {
        let ix = &self.ix;
        // Configuration keys read anywhere in each module (by non-test code), with the nodes that read them.
        let mut module_config: HashMap<usize, ModuleConfig<'_>> = HashMap::new();
        for j in 0..ix.g.nodes.len() {
            let n = ix.node(j);
            if ix.is_test(j) || !n.meta.contains_key("config") {
                continue;
            }
            if let Some(m) = ix.module_of(j) {
                let entry = module_config.entry(m).or_default();
                entry.0.extend(config_keys(n));
                entry.1.insert(j);
            }
        }
        let mut out = Vec::new();
        for i in 0..ix.g.nodes.len() {
            let n = ix.node(i);
            if n.id.ty != NodeType::Module && n.id.ty != NodeType::Package {
                continue;
            }
            let mut w = Writer::new(self.cfg, self.scanner, &n.path);
            let me = vec![n.id.to_string()];
            let children = sorted_unique(ix, ix.sources_of(i, EdgeKind::DefinedIn));
            if n.id.ty == NodeType::Module {
                let pkg = ix
                    .owner(i)
                    .filter(|&p| ix.node(p).id.ty == NodeType::Package);
                let mut refs = me.clone();
                let within = match pkg {
                    Some(p) => {
                        refs.push(ix.node(p).id.to_string());
                        format!(" in package `{}`", ix.node(p).qname)
                    }
                    None => String::new(),
                };
                let tests = children.iter().filter(|&&c| ix.is_test(c)).count();
                let role = if ix.is_test(i) {
                    "test module"
                } else {
                    "module"
                };
                w.say(
                    format!(
                        "`{}` is a {} {role}{within} (`{}`).",
                        n.qname,
                        lang_word(n),
                        n.path
                    ),
                    refs,
                );
                self.doc_sentence(&mut w, i, me.clone());
                let api: Vec<usize> = children
                    .iter()
                    .copied()
                    .filter(|&c| {
                        matches!(ix.node(c).id.ty, NodeType::Function | NodeType::Class)
                            && ix.is_public(c)
                            && !ix.is_test(c)
                    })
                    .collect();
                if !api.is_empty() {
                    let (names, refs) = w.list(ix, &api);
                    w.say(format!("Public API: {names}."), refs);
                }
                if tests > 0 {
                    w.say(
                        format!("Defines {tests} test functions or classes."),
                        me.clone(),
                    );
                }
                let imports = sorted_unique(ix, ix.targets(i, EdgeKind::Imports));
                if !imports.is_empty() {
                    let (names, refs) = w.list(ix, &imports);
                    w.say(format!("Imports {names}."), refs);
                }
                let importers = sorted_unique(ix, ix.sources_of(i, EdgeKind::Imports));
                if !importers.is_empty() {
                    let (names, refs) = w.list(ix, &importers);
                    w.say(format!("Imported by {names}."), refs);
                    w.weight += importers.len();
                }
                if let Some((keys, readers)) = module_config.get(&i) {
                    let readers: Vec<String> = readers.iter().map(|&r| self.id(r)).collect();
                    config_sentences(&mut w, keys, readers);
                }
            } else {
                let kind = kind_word(n);
                let modules: Vec<usize> = children
                    .iter()
                    .copied()
                    .filter(|&c| ix.node(c).id.ty == NodeType::Module)
                    .collect();
                let subpackages: Vec<usize> = children
                    .iter()
                    .copied()
                    .filter(|&c| ix.node(c).id.ty == NodeType::Package)
                    .collect();
                w.say(
                    format!(
                        "`{}` is a package ({kind}){}.",
                        n.qname,
                        if n.path.is_empty() {
                            String::new()
                        } else {
                            format!(" at `{}`", n.path)
                        }
                    ),
                    me.clone(),
                );
                if !modules.is_empty() {
                    let (names, refs) = w.list(ix, &modules);
                    let noun = if modules.len() == 1 {
                        "module"
                    } else {
                        "modules"
                    };
                    w.say(format!("It holds {} {noun}: {names}.", modules.len()), refs);
                }
                if !subpackages.is_empty() {
                    let (names, refs) = w.list(ix, &subpackages);
                    w.say(format!("Subpackages: {names}."), refs);
                }
                let deps = sorted_unique(ix, ix.targets(i, EdgeKind::DependsOn));
                if !deps.is_empty() {
                    let (names, refs) = w.list(ix, &deps);
                    w.say(format!("Declares dependencies on {names}."), refs);
                }
            }
            out.push((i, n.qname.clone(), w));
        }
        for (i, name, w) in out {
            let anchor = self.id(i);
            self.emit(
                BrainType::Module,
                &anchor,
                i,
                name,
                w,
                serde_json::Map::new(),
            );
        }
    }

    /// Marks entry points named by decorators: HTTP routes and CLI commands.
    fn entry_kind(&self, i: usize) -> Option<(&'static str, String)> {
        let decs = self.ix.node(i).meta.get("decorators")?.as_array()?;
        for d in decs.iter().filter_map(|d| d.as_str()) {
            let lower = d.to_ascii_lowercase();
            let route = [
                ".route(",
                ".get(",
                ".post(",
                ".put(",
                ".delete(",
                ".patch(",
                "getmapping",
                "postmapping",
                "requestmapping",
                "putmapping",
                "deletemapping",
            ];
            if route.iter().any(|r| lower.contains(r)) {
                return Some(("http_route", text::clip(d, 100)));
            }
            if lower.contains("command") || lower.ends_with(".cli") {
                return Some(("cli_command", text::clip(d, 100)));
            }
        }
        None
    }

    fn callees(&self, i: usize) -> Vec<usize> {
        sorted_unique(
            &self.ix,
            self.ix
                .targets(i, EdgeKind::Calls)
                .into_iter()
                .filter(|&t| self.ix.node(t).id.ty == NodeType::Function && t != i)
                .collect(),
        )
    }

    fn callers(&self, i: usize) -> Vec<usize> {
        sorted_unique(
            &self.ix,
            self.ix
                .sources_of(i, EdgeKind::Calls)
                .into_iter()
                .filter(|&t| t != i)
                .collect(),
        )
    }

    fn capabilities(&mut self, error_classes: &HashSet<usize>, concepts: &HashSet<usize>) {
        let community = communities(&self.ix);
        let ix = &self.ix;
        let mut out = Vec::new();
        for i in 0..ix.g.nodes.len() {
            let n = ix.node(i);
            let entry = self.entry_kind(i);
            let candidate = match n.id.ty {
                NodeType::Function => {
                    let kind = kind_word(n);
                    let owner = ix.owner(i);
                    let owner_ok = owner.is_none_or(|o| {
                        let on = ix.node(o);
                        on.id.ty == NodeType::Module
                            || (on.id.ty == NodeType::Class && ix.is_public(o) && !ix.is_test(o))
                    });
                    let method = owner.is_some_and(|o| ix.node(o).id.ty == NodeType::Class);
                    // Methods count when documented; free functions always (when public).
                    entry.is_some()
                        || (ix.is_public(i)
                            && !ix.is_test(i)
                            && owner_ok
                            && kind != "constructor"
                            && (!method || !n.doc.is_empty()))
                }
                NodeType::Class => {
                    ix.is_public(i)
                        && !ix.is_test(i)
                        && !error_classes.contains(&i)
                        && !concepts.contains(&i)
                }
                _ => false,
            };
            if !candidate {
                continue;
            }
            let mut w = Writer::new(self.cfg, self.scanner, &n.path);
            let me = vec![n.id.to_string()];
            let title = if n.doc.is_empty() {
                String::new()
            } else {
                text::first_sentence(&text::plain(&n.doc), 200)
            };
            let module = ix.module_of(i);
            let owner = ix.owner(i);
            if title.is_empty() {
                w.say(
                    format!(
                        "`{}` is a public {} of `{}`.",
                        n.qname,
                        kind_word(n),
                        module.map(|m| ix.node(m).qname.as_str()).unwrap_or("")
                    ),
                    me.clone(),
                );
            } else {
                w.say(format!("`{}`: {title}", n.qname), me.clone());
            }
            if let Some((kind, dec)) = &entry {
                let what = if *kind == "http_route" {
                    "an HTTP route"
                } else {
                    "a CLI command"
                };
                w.say_code(format!("It is {what} (`@{dec}`)."), me.clone());
            }
            if !n.signature.is_empty() {
                w.say_code(
                    format!("Signature: `{}`.", text::clip(&n.signature, MAX_CODE_CHARS)),
                    me.clone(),
                );
            }
            if let Some(o) = owner {
                let on = ix.node(o);
                let what = if on.id.ty == NodeType::Class {
                    "class"
                } else {
                    "module"
                };
                w.say(
                    format!("Defined in {what} `{}` at `{}`.", on.qname, loc(n)),
                    vec![n.id.to_string(), on.id.to_string()],
                );
            }
            let mut implemented = vec![i];
            if n.id.ty == NodeType::Function {
                let label = community.get(&i);
                let mut frontier = vec![i];
                for _ in 0..2 {
                    let mut next = Vec::new();
                    for f in frontier {
                        for t in self.callees(f) {
                            if community.get(&t) == label
                                && !implemented.contains(&t)
                                && implemented.len() < 12
                            {
                                implemented.push(t);
                                next.push(t);
                            }
                        }
                    }
                    frontier = next;
                }
                let callees = self.callees(i);
                if !callees.is_empty() {
                    let (names, refs) = w.list(ix, &callees);
                    w.say(format!("Calls {names}."), refs);
                }
                let callers = self.callers(i);
                if !callers.is_empty() {
                    let (names, refs) = w.list(ix, &callers);
                    w.say(format!("Called by {names}."), refs);
                    w.weight += callers.len();
                }
                let raises = sorted_unique(ix, ix.targets(i, EdgeKind::Throws));
                if !raises.is_empty() {
                    let (names, refs) = w.list(ix, &raises);
                    w.say(format!("Raises {names}."), refs);
                }
                config_sentences(&mut w, &config_keys(n).collect(), me.clone());
            } else {
                let methods: Vec<usize> = sorted_unique(ix, ix.sources_of(i, EdgeKind::DefinedIn))
                    .into_iter()
                    .filter(|&m| ix.node(m).id.ty == NodeType::Function && ix.is_public(m))
                    .collect();
                if !methods.is_empty() {
                    let (names, refs) = w.list(ix, &methods);
                    w.say(format!("Methods: {names}."), refs);
                }
                implemented.extend(methods.iter().take(11));
            }
            if implemented.len() > 1 {
                let (names, refs) = w.list(ix, &implemented[1..]);
                w.say(format!("Implemented together with {names}."), refs);
            }
            let mut meta = serde_json::Map::new();
            meta.insert("title".into(), json!(w.clean(&title)));
            meta.insert(
                "entry".into(),
                json!(
                    entry
                        .as_ref()
                        .map(|e| e.0)
                        .unwrap_or(if n.id.ty == NodeType::Class {
                            "class"
                        } else {
                            "function"
                        })
                ),
            );
            meta.insert(
                "implemented_by".into(),
                json!(
                    implemented
                        .iter()
                        .map(|&f| ix.node(f).id.to_string())
                        .collect::<Vec<_>>()
                ),
            );
            meta.insert(
                "community".into(),
                json!(community.get(&i).map(|&l| ix.node(l).id.to_string())),
            );
            meta.insert(
                "module".into(),
                json!(module.map(|m| ix.node(m).id.to_string())),
            );
            out.push((i, w, meta));
        }
        for (i, w, meta) in out {
            let anchor = self.id(i);
            let name = self.ix.node(i).qname.clone();
            self.emit(BrainType::Capability, &anchor, i, name, w, meta);
        }
    }

    /// In-repo exception classes (by name or ancestry) and every thrown type.
    fn error_classes(&self) -> HashSet<usize> {
        let ix = &self.ix;
        let mut out = HashSet::new();
        for i in 0..ix.g.nodes.len() {
            let n = ix.node(i);
            let thrown = !ix.sources_of(i, EdgeKind::Throws).is_empty();
            match n.id.ty {
                NodeType::External if thrown => {
                    out.insert(i);
                }
                NodeType::Class if !ix.is_test(i) => {
                    let mut seen = HashSet::new();
                    let mut stack = vec![i];
                    let mut is_err = thrown;
                    while let Some(c) = stack.pop() {
                        if is_err || !seen.insert(c) || seen.len() > 32 {
                            break;
                        }
                        if exceptionish(&ix.node(c).name) {
                            is_err = true;
                        }
                        stack.extend(ix.targets(c, EdgeKind::Extends));
                    }
                    if is_err {
                        out.insert(i);
                    }
                }
                _ => {}
            }
        }
        out
    }

    fn raises(&self, err: usize) -> Vec<Raise> {
        let mut out = Vec::new();
        for (f, lines) in self.ix.incoming(err, EdgeKind::Throws) {
            let fnode = self.ix.node(f);
            let src = self.lines.get(fnode.path.as_str());
            for &line in lines.iter().take(4) {
                let (condition, message) = match src {
                    Some(src) => {
                        let stmt = text::statement(src, line);
                        (
                            text::condition(src, line, fnode.start_line),
                            stmt.as_deref().and_then(text::message),
                        )
                    }
                    None => (None, None),
                };
                out.push(Raise {
                    func: f,
                    line,
                    condition,
                    message,
                });
            }
            if lines.is_empty() {
                out.push(Raise {
                    func: f,
                    line: fnode.start_line,
                    condition: None,
                    message: None,
                });
            }
        }
        out.sort_by(|a, b| {
            self.ix
                .node(a.func)
                .qname
                .cmp(&self.ix.node(b.func).qname)
                .then(a.line.cmp(&b.line))
        });
        out
    }

    fn errors(&mut self, error_classes: &HashSet<usize>) {
        // Handlers: `except X` / `catch (X e)` in every source, by simple name.
        let mut handlers: HashMap<String, Vec<(usize, u32)>> = HashMap::new();
        for (path, src) in self.inp.sources {
            let python = path.ends_with(".py") || path.ends_with(".pyi");
            for (name, line) in text::handlers(src, python) {
                if let Some(f) = self.ix.enclosing_function(path, line) {
                    handlers.entry(name).or_default().push((f, line));
                }
            }
        }
        let mut ordered: Vec<usize> = error_classes.iter().copied().collect();
        ordered.sort();
        let mut out = Vec::new();
        for i in ordered {
            let ix = &self.ix;
            let n = ix.node(i);
            let mut w = Writer::new(self.cfg, self.scanner, &n.path);
            let me = vec![n.id.to_string()];
            let bases = sorted_unique(ix, ix.targets(i, EdgeKind::Extends));
            let base_text = if bases.is_empty() {
                String::new()
            } else {
                let (names, _) = w.list(ix, &bases);
                format!(" and extends {names}")
            };
            let mut refs = me.clone();
            refs.extend(bases.iter().map(|&b| ix.node(b).id.to_string()));
            if n.id.ty == NodeType::External {
                w.say(
                    format!(
                        "`{}` is an error type from outside the repository that the code raises.",
                        n.qname
                    ),
                    me.clone(),
                );
            } else {
                w.say(
                    format!(
                        "`{}` is an error type defined at `{}`{base_text}.",
                        n.qname,
                        loc(n)
                    ),
                    refs,
                );
            }
            self.doc_sentence(&mut w, i, me.clone());
            let raises = self.raises(i);
            let mut raisers: Vec<usize> = raises.iter().map(|r| r.func).collect();
            raisers.dedup();
            if !raisers.is_empty() {
                let (names, refs) = w.list(ix, &raisers);
                w.say(format!("Raised by {names}."), refs);
                w.weight += raisers.len();
            }
            let mut conditions = 0;
            for r in raises
                .iter()
                .filter(|r| r.condition.is_some())
                .take(self.cfg.max_code_lines)
            {
                let f = ix.node(r.func);
                let cond = r.condition.clone().unwrap_or_default();
                if w.say_code(
                    format!(
                        "`{}` raises it when `{cond}` (`{}:{}`).",
                        f.qname, f.path, r.line
                    ),
                    vec![f.id.to_string()],
                ) {
                    conditions += 1;
                }
            }
            let _ = conditions;
            let mut messages: Vec<(String, usize)> = Vec::new();
            for r in &raises {
                if let Some(m) = &r.message
                    && !messages.iter().any(|(x, _)| x == m)
                {
                    messages.push((m.clone(), r.func));
                }
            }
            if !messages.is_empty() {
                let shown: Vec<&(String, usize)> =
                    messages.iter().take(self.cfg.max_list.min(5)).collect();
                let text = shown
                    .iter()
                    .map(|(m, _)| format!("\"{m}\""))
                    .collect::<Vec<_>>()
                    .join(", ");
                let refs = shown
                    .iter()
                    .map(|(_, f)| ix.node(*f).id.to_string())
                    .collect();
                w.say(format!("Messages: {text}."), refs);
            }
            let mut handled: Vec<(usize, u32)> =
                handlers.get(n.name.as_str()).cloned().unwrap_or_default();
            handled.sort_by(|a, b| {
                ix.node(a.0)
                    .qname
                    .cmp(&ix.node(b.0).qname)
                    .then(a.1.cmp(&b.1))
            });
            handled.dedup_by_key(|h| h.0);
            if !handled.is_empty() {
                let funcs: Vec<usize> = handled.iter().map(|h| h.0).collect();
                let (names, refs) = w.list(ix, &funcs);
                w.say(format!("Caught by {names}."), refs);
                w.weight += funcs.len();
            }
            let subs = sorted_unique(ix, ix.sources_of(i, EdgeKind::Extends));
            if !subs.is_empty() {
                let (names, refs) = w.list(ix, &subs);
                w.say(format!("Subclasses: {names}."), refs);
            }
            let mut meta = serde_json::Map::new();
            let raised_by: Vec<serde_json::Value> = raises
                .iter()
                .take(50)
                .map(|r| {
                    let f = ix.node(r.func);
                    json!({"id": f.id.to_string(), "qname": f.qname, "path": f.path, "line": r.line,
                           "condition": r.condition.as_deref().map(|c| w.clean(c)), "message": r.message.as_deref().map(|m| w.clean(m))})
                })
                .collect();
            meta.insert("raised_by".into(), json!(raised_by));
            meta.insert("handled_by".into(), json!(handled.iter().take(50).map(|(f, line)| {
                let fnode = ix.node(*f);
                json!({"id": fnode.id.to_string(), "qname": fnode.qname, "path": fnode.path, "line": line})
            }).collect::<Vec<_>>()));
            meta.insert(
                "messages".into(),
                json!(
                    messages
                        .iter()
                        .take(20)
                        .map(|(m, _)| w.clean(m))
                        .collect::<Vec<_>>()
                ),
            );
            meta.insert(
                "extends".into(),
                json!(
                    bases
                        .iter()
                        .map(|&b| ix.node(b).qname.clone())
                        .collect::<Vec<_>>()
                ),
            );
            meta.insert("external".into(), json!(n.id.ty == NodeType::External));
            out.push((i, w, meta));
        }
        for (i, w, meta) in out {
            let anchor = self.id(i);
            let name = self.ix.node(i).qname.clone();
            self.emit(BrainType::Error, &anchor, i, name, w, meta);
        }
    }

    /// Who uses a class: callers of it or of its constructors (`__init__`, Java / C++ constructors), implementers.
    fn class_users(&self, i: usize) -> Vec<usize> {
        let ix = &self.ix;
        let mut users = ix.sources_of(i, EdgeKind::Calls);
        users.extend(ix.sources_of(i, EdgeKind::Implements));
        for m in ix.sources_of(i, EdgeKind::DefinedIn) {
            let mn = ix.node(m);
            if mn.id.ty == NodeType::Function
                && (kind_word(mn) == "constructor" || mn.name == "__init__")
            {
                users.extend(
                    ix.sources_of(m, EdgeKind::Calls)
                        .into_iter()
                        .filter(|&u| ix.owner(u) != Some(i)),
                );
            }
        }
        sorted_unique(ix, users)
    }

    fn concept_classes(&self, error_classes: &HashSet<usize>) -> HashSet<usize> {
        let ix = &self.ix;
        (0..ix.g.nodes.len())
            .filter(|&i| {
                let n = ix.node(i);
                if n.id.ty != NodeType::Class
                    || ix.is_test(i)
                    || error_classes.contains(&i)
                    || !ix.is_public(i)
                {
                    return false;
                }
                let kind = kind_word(n);
                let used = self.class_users(i).len();
                let subclasses = ix.sources_of(i, EdgeKind::Extends).len();
                let data = n
                    .meta
                    .get("decorators")
                    .and_then(|d| d.as_array())
                    .is_some_and(|d| {
                        d.iter()
                            .filter_map(|x| x.as_str())
                            .any(|x| x.contains("dataclass"))
                    });
                used >= 2
                    || subclasses >= 1
                    || data
                    || matches!(kind.as_str(), "enum" | "struct" | "interface" | "trait")
            })
            .collect()
    }

    fn concepts(&mut self, concepts: &HashSet<usize>) {
        let mut ordered: Vec<usize> = concepts.iter().copied().collect();
        ordered.sort();
        let mut out = Vec::new();
        for i in ordered {
            let ix = &self.ix;
            let n = ix.node(i);
            let mut w = Writer::new(self.cfg, self.scanner, &n.path);
            let me = vec![n.id.to_string()];
            let module = ix.module_of(i);
            let mut refs = me.clone();
            refs.extend(module.map(|m| ix.node(m).id.to_string()));
            w.say(
                format!(
                    "`{}` is {} defined in `{}` at `{}`.",
                    n.qname,
                    article(&kind_word(n)),
                    module.map(|m| ix.node(m).qname.as_str()).unwrap_or(""),
                    loc(n)
                ),
                refs,
            );
            self.doc_sentence(&mut w, i, me.clone());
            for (kind, word) in [
                (EdgeKind::Extends, "Extends"),
                (EdgeKind::Implements, "Implements"),
            ] {
                let t = sorted_unique(ix, ix.targets(i, kind));
                if !t.is_empty() {
                    let (names, refs) = w.list(ix, &t);
                    w.say(format!("{word} {names}."), refs);
                }
            }
            let subs = sorted_unique(ix, ix.sources_of(i, EdgeKind::Extends));
            if !subs.is_empty() {
                let (names, refs) = w.list(ix, &subs);
                w.say(format!("Subclassed by {names}."), refs);
            }
            let methods: Vec<usize> = sorted_unique(ix, ix.sources_of(i, EdgeKind::DefinedIn))
                .into_iter()
                .filter(|&m| ix.node(m).id.ty == NodeType::Function && ix.is_public(m))
                .collect();
            if !methods.is_empty() {
                let (names, refs) = w.list(ix, &methods);
                w.say(format!("Methods: {names}."), refs);
            }
            let users = self.class_users(i);
            if !users.is_empty() {
                let (names, refs) = w.list(ix, &users);
                w.say(format!("Used by {names}."), refs);
                w.weight += users.len();
            }
            let mut meta = serde_json::Map::new();
            meta.insert("kind".into(), json!(kind_word(n)));
            meta.insert("used_by".into(), json!(users.len()));
            meta.insert("methods".into(), json!(methods.len()));
            out.push((i, w, meta));
        }
        for (i, w, meta) in out {
            let anchor = self.id(i);
            let name = self.ix.node(i).qname.clone();
            self.emit(BrainType::Concept, &anchor, i, name, w, meta);
        }
    }

    /// Configuration keys as concepts: one per environment variable or property that non-test code reads by a
    /// literal name (`meta.config` of the code nodes, from extraction), with its readers and where they read it.
    fn config_concepts(&mut self) {
        let ix = &self.ix;
        // (kind, key) -> (reader node, lines of the reads)
        let mut keys: BTreeMap<(&str, &str), Vec<(usize, u64)>> = BTreeMap::new();
        for i in 0..ix.g.nodes.len() {
            if ix.is_test(i) {
                continue;
            }
            for (kind, key, line) in config_reads(ix.node(i)) {
                keys.entry((kind, key)).or_default().push((i, line));
            }
        }
        let mut out = Vec::new();
        for ((kind, key), reads) in keys {
            let readers = sorted_unique(ix, reads.iter().map(|(i, _)| *i).collect());
            let line_of = |i: usize| reads.iter().find(|(r, _)| *r == i).map_or(0, |(_, l)| *l);
            let first = readers[0];
            let n = ix.node(first);
            let mut w = Writer::new(self.cfg, self.scanner, &n.path);
            let what = match kind {
                "env" => "an environment variable",
                _ => "a configuration property",
            };
            let (names, refs) = w.list(ix, &readers);
            w.say(format!("`{key}` is {what} read by {names}."), refs.clone());
            let sites: Vec<String> = readers
                .iter()
                .take(refs.len())
                .map(|&r| format!("`{}:{}`", ix.node(r).path, line_of(r)))
                .collect();
            w.say(format!("Read at {}.", join_and(&sites)), refs);
            let modules = sorted_unique(
                ix,
                readers
                    .iter()
                    .map(|&r| ix.module_of(r).unwrap_or(r))
                    .collect(),
            );
            if modules.len() > 1 {
                let (names, refs) = w.list(ix, &modules);
                w.say(format!("Used across modules {names}."), refs);
            }
            w.weight += readers.len();
            let mut meta = serde_json::Map::new();
            meta.insert("kind".into(), json!("config"));
            meta.insert("config_kind".into(), json!(kind));
            meta.insert("readers".into(), json!(readers.len()));
            out.push((
                first,
                line_of(first),
                kind.to_string(),
                key.to_string(),
                w,
                meta,
            ));
        }
        for (first, line, kind, key, w, meta) in out {
            self.emit(
                BrainType::Concept,
                &format!("config:{kind}:{key}"),
                first,
                key.clone(),
                w,
                meta,
            );
            if let Some(node) = self.nodes.last_mut() {
                node.qname = key;
                node.line = line as u32;
            }
        }
    }

    /// Resolves a call name seen in example code to an in-repo function (or class), preferring `near` (a module).
    fn resolve_name(&self, name: &str, near: Option<usize>) -> Option<usize> {
        let ix = &self.ix;
        let simple = name.rsplit('.').next().unwrap_or(name);
        let cands: Vec<usize> = ix
            .by_name
            .get(simple)
            .map(|v| v.iter().copied().filter(|&c| !ix.is_test(c)).collect())
            .unwrap_or_default();
        if cands.is_empty() {
            return None;
        }
        if name.contains('.') {
            let suffix = format!(".{name}");
            let exact: Vec<usize> = cands
                .iter()
                .copied()
                .filter(|&c| ix.node(c).qname == name || ix.node(c).qname.ends_with(&suffix))
                .collect();
            if exact.len() == 1 {
                return Some(exact[0]);
            }
        }
        if let Some(m) = near {
            let local: Vec<usize> = cands
                .iter()
                .copied()
                .filter(|&c| ix.module_of(c) == Some(m))
                .collect();
            if local.len() == 1 {
                return Some(local[0]);
            }
        }
        let public: Vec<usize> = cands.iter().copied().filter(|&c| ix.is_public(c)).collect();
        (public.len() == 1)
            .then(|| public[0])
            .or((cands.len() == 1).then(|| cands[0]))
    }

    fn recipe(&mut self, r: PendingRecipe) {
        let PendingRecipe {
            anchor,
            primary,
            name,
            origin,
            steps,
            path,
            line,
        } = r;
        let path = path.as_str();
        let ix = &self.ix;
        let mut w = Writer::new(self.cfg, self.scanner, path);
        let p = ix.node(primary);
        w.say(
            format!("Recipe {name:?}, from {origin} at `{path}:{line}`."),
            vec![p.id.to_string()],
        );
        let funcs: Vec<usize> = steps.iter().map(|s| s.0).collect();
        let shown: Vec<usize> = funcs.iter().copied().take(self.cfg.max_list).collect();
        let text = shown
            .iter()
            .enumerate()
            .map(|(k, &f)| format!("{}. `{}`", k + 1, ix.node(f).qname))
            .collect::<Vec<_>>()
            .join(" ");
        w.say(
            format!("Steps: {text}."),
            shown.iter().map(|&f| ix.node(f).id.to_string()).collect(),
        );
        for &f in shown.iter().take(3) {
            let doc = &ix.node(f).doc;
            if !doc.is_empty() {
                w.say(
                    format!(
                        "`{}`: {}",
                        ix.node(f).name,
                        text::first_sentence(&text::plain(doc), 160)
                    ),
                    vec![ix.node(f).id.to_string()],
                );
            }
        }
        let mut meta = serde_json::Map::new();
        meta.insert("origin".into(), json!(origin));
        meta.insert("source".into(), json!(format!("{path}:{line}")));
        meta.insert("steps".into(), json!(steps.iter().map(|(f, l)| json!({"id": ix.node(*f).id.to_string(), "qname": ix.node(*f).qname, "line": l})).collect::<Vec<_>>()));
        let mut node_name = name;
        node_name = w.clean(&node_name);
        self.emit(BrainType::Recipe, &anchor, primary, node_name, w, meta);
        if let Some(last) = self.nodes.last_mut() {
            last.path = path.to_string();
            last.line = line;
        }
    }

    fn recipes(&mut self) {
        let ix = &self.ix;
        let mut pending: Vec<PendingRecipe> = Vec::new();
        // Tests: the in-repo, non-test functions a test calls, in call order.
        for i in 0..ix.g.nodes.len() {
            let n = ix.node(i);
            if n.id.ty != NodeType::Function || !ix.is_test(i) {
                continue;
            }
            let mut steps: Vec<(usize, u32)> = ix
                .out
                .get(&(i, EdgeKind::Calls))
                .map(|es| {
                    es.iter()
                        .filter_map(|&e| {
                            let edge = &ix.g.edges[e];
                            let t = *ix.by_id.get(&edge.to)?;
                            (!ix.is_test(t) && ix.node(t).id.ty == NodeType::Function)
                                .then(|| (t, edge.lines.first().copied().unwrap_or(0)))
                        })
                        .collect()
                })
                .unwrap_or_default();
            steps.sort_by_key(|s| (s.1, s.0));
            if steps.len() < 2 {
                continue;
            }
            let phrase = text::words(&n.name);
            pending.push(PendingRecipe {
                anchor: n.id.to_string(),
                primary: i,
                name: format!("how to {phrase}"),
                origin: format!("test `{}`", n.qname),
                steps,
                path: n.path.clone(),
                line: n.start_line,
            });
        }
        // Docstring examples (`>>>`), attributed to the enclosing function or the module.
        let mut paths: Vec<&String> = self.inp.sources.keys().collect();
        paths.sort();
        for path in paths {
            if !(path.ends_with(".py") || path.ends_with(".pyi")) {
                continue;
            }
            let Some(&module) = ix.module_by_path.get(path.as_str()) else {
                continue;
            };
            for ex in text::doctest_blocks(&self.inp.sources[path]) {
                let owner = ix.enclosing_function(path, ex.line).unwrap_or(module);
                let steps: Vec<(usize, u32)> = ex
                    .calls
                    .iter()
                    .filter_map(|c| self.resolve_name(c, Some(module)))
                    .map(|f| (f, ex.line))
                    .fold(Vec::new(), |mut v, s| {
                        if !v.iter().any(|x: &(usize, u32)| x.0 == s.0) {
                            v.push(s);
                        }
                        v
                    });
                if steps.is_empty() {
                    continue;
                }
                let on = ix.node(owner);
                let used = steps
                    .iter()
                    .map(|s| ix.node(s.0).name.clone())
                    .collect::<Vec<_>>()
                    .join(", ");
                // An example in a module's docstring demonstrates its first call; one in a function's, the function.
                let primary = if owner == module { steps[0].0 } else { owner };
                let title = if ex.title.is_empty() {
                    used
                } else {
                    ex.title.trim_end_matches('.').to_string()
                };
                pending.push(PendingRecipe {
                    anchor: format!("{path}:{}", ex.line),
                    primary,
                    name: format!("example: {title}"),
                    origin: format!("the docstring of `{}`", on.qname),
                    steps,
                    path: path.clone(),
                    line: ex.line,
                });
            }
        }
        // Markdown code blocks.
        for (path, doc) in self.inp.docs {
            for ex in text::markdown_blocks(doc) {
                let steps: Vec<(usize, u32)> = ex
                    .calls
                    .iter()
                    .filter_map(|c| self.resolve_name(c, None))
                    .map(|f| (f, ex.line))
                    .fold(Vec::new(), |mut v, s| {
                        if !v.iter().any(|x: &(usize, u32)| x.0 == s.0) {
                            v.push(s);
                        }
                        v
                    });
                if steps.is_empty() {
                    continue;
                }
                let title = if ex.title.is_empty() {
                    format!("example in {path}")
                } else {
                    ex.title.to_lowercase()
                };
                pending.push(PendingRecipe {
                    anchor: format!("{path}:{}", ex.line),
                    primary: steps[0].0,
                    name: title,
                    origin: format!("the code block in `{path}`"),
                    steps,
                    path: path.clone(),
                    line: ex.line,
                });
            }
        }
        for r in pending {
            self.recipe(r);
        }
    }
}

/// Derives the typed brain nodes, sorted by id.
pub fn derive(
    inp: &Inputs,
    cfg: &SummaryConfig,
    scanner: &Scanner,
) -> (Vec<BrainNode>, BrainStats) {
    let ix = Index::new(inp.graph);
    let lines = inp
        .sources
        .iter()
        .map(|(p, s)| (p.as_str(), s.lines().collect()))
        .collect();
    let mut b = Builder {
        ix,
        inp,
        cfg,
        scanner,
        lines,
        nodes: Vec::new(),
        stats: BrainStats::default(),
    };
    let errors = b.error_classes();
    let concepts = b.concept_classes(&errors);
    b.modules();
    b.capabilities(&errors, &concepts);
    b.concepts(&concepts);
    b.config_concepts();
    b.errors(&errors);
    b.recipes();
    let mut nodes = b.nodes;
    let mut stats = b.stats;
    nodes.sort_by(|a, b| a.id.cmp(&b.id));
    let before = nodes.len();
    nodes.dedup_by(|a, b| a.id == b.id);
    stats.duplicates = (before - nodes.len()) as u64;
    let known: BTreeSet<String> = inp.graph.nodes.iter().map(|n| n.id.to_string()).collect();
    debug_assert!(
        nodes
            .iter()
            .all(|n| n.refs.iter().all(|r| known.contains(r)))
    );
    (nodes, stats)
}
