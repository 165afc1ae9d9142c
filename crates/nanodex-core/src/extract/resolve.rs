//! Resolution: per-file facts in, one [`CodeGraph`] out.
//!
//! Names are resolved the way a reader would: the enclosing scopes first, then the file's imports, then the
//! language's implicit scopes (same Java package, enclosing C++ namespaces, included headers), and last a name that
//! is unique in the repository (lower confidence). What cannot be resolved is counted, never guessed twice.
//! Pure: no I/O. Node ids are computed last from the final qualified names, so they are stable across runs.

use std::collections::BTreeMap;

use compact_str::CompactString;

// Fx hashing: resolution hashes hundreds of thousands of short names per run, and SipHash's DoS resistance buys
// nothing for keys taken from the user's own repository.
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use smallvec::{SmallVec, smallvec};

use serde_json::{Value, json};

use super::facts::{DefKind, Local, ParsedFile, Ref, RefKind};
use super::lang::Lang;
use super::manifest::Dependency;
use super::model::{CodeGraph, Edge, EdgeKind, Meta, Node, NodeRef, NodeType, ResolveStats};
use super::{compact_key_of_pieces, free_in_background};

/// Python builtin exception and base types: unresolved bases and raises of these become `builtins.<name>`.
const PY_BUILTINS: &[&str] = &[
    "object",
    "Exception",
    "BaseException",
    "ValueError",
    "TypeError",
    "KeyError",
    "IndexError",
    "LookupError",
    "RuntimeError",
    "NotImplementedError",
    "AttributeError",
    "OSError",
    "IOError",
    "EnvironmentError",
    "FileNotFoundError",
    "FileExistsError",
    "PermissionError",
    "IsADirectoryError",
    "NotADirectoryError",
    "StopIteration",
    "StopAsyncIteration",
    "ArithmeticError",
    "ZeroDivisionError",
    "OverflowError",
    "AssertionError",
    "ImportError",
    "ModuleNotFoundError",
    "UnicodeError",
    "UnicodeDecodeError",
    "UnicodeEncodeError",
    "EOFError",
    "ConnectionError",
    "TimeoutError",
    "RecursionError",
    "MemoryError",
    "SystemExit",
    "KeyboardInterrupt",
    "GeneratorExit",
    "BufferError",
    "SyntaxError",
    "Warning",
    "UserWarning",
    "DeprecationWarning",
    "dict",
    "list",
    "tuple",
    "set",
    "int",
    "str",
    "bytes",
    "float",
    "type",
    "property",
    "BlockingIOError",
    "ChildProcessError",
    "BrokenPipeError",
    "ConnectionResetError",
    "ConnectionAbortedError",
    "ConnectionRefusedError",
    "InterruptedError",
    "ProcessLookupError",
    "ReferenceError",
    "FloatingPointError",
    "UnicodeTranslateError",
    "NameError",
    "UnboundLocalError",
    "IndentationError",
    "TabError",
    "SystemError",
];

/// The nodes a name points to: almost always one, kept inline (a lookup copies them out of the name tables once
/// per reference; the JDK's quarter of a million references allocated a vector each).
type NodeList = SmallVec<[usize; 2]>;

/// Where a name points after lookup.
#[derive(Debug, Clone)]
enum Target {
    /// In-repo nodes (several when a name is defined more than once).
    Nodes(NodeList),
    /// A module (file index).
    Module(usize),
    /// A Python package without `__init__.py`: a qualified-name prefix.
    Prefix(String),
    /// An external node.
    External(usize),
    /// An external package (its top-level name) that a reference resolved to and that does not exist yet:
    /// planning is read-only, and applying the reference creates it.
    Pending(String),
}

/// A reference resolved but not yet applied ([`Ctx::plan_ref`]).
struct Planned {
    /// The node the reference comes from.
    from: usize,
    /// What its name resolved to.
    resolved: Option<(Target, f32)>,
    /// External packages the resolution named that do not exist yet.
    pending: Vec<String>,
    /// For a call or `new`: the functions it calls (a class's constructor for a class), with their confidence.
    calls: Vec<(usize, f32)>,
}

/// One edge as resolution records it, one per occurrence: [`Ctx::finish`] merges those of one (kind, from, to)
/// into an [`Edge`] (their lines, the highest confidence). Appending to a list and sorting it once, in parallel,
/// costs less than merging each occurrence into a hash map as it comes (a quarter of a million on the JDK).
#[derive(Clone, Copy)]
struct RawEdge {
    kind: EdgeKind,
    from: u32,
    to: u32,
    /// 0 when the relation has no line of its own.
    line: u32,
    confidence: f32,
}

struct DefInfo {
    node: Option<usize>,
    qname: String,
}

struct Ctx<'a> {
    files: &'a [ParsedFile],
    nodes: Vec<Node>,
    edges: Vec<RawEdge>,
    stats: ResolveStats,
    module_node: Vec<usize>,
    module_qname: Vec<String>,
    defs: Vec<Vec<DefInfo>>,
    module_by_qname: HashMap<String, usize>,
    module_by_path: HashMap<&'a str, usize>,
    /// Per file: top-level names (including inside namespaces) → nodes.
    top: Vec<HashMap<&'a str, NodeList>>,
    /// Per class or function node: names defined directly inside it.
    scoped: HashMap<usize, HashMap<&'a str, NodeList>>,
    bases: HashMap<usize, Vec<usize>>,
    /// C++ methods defined outside their class → that class.
    out_of_line_owner: HashMap<usize, usize>,
    by_qname: HashMap<Box<str>, NodeList>,
    by_name: HashMap<(u8, &'a str), NodeList>,
    /// Per file: the first plain local of each (scope, name) → its type name (`local_type` runs once per
    /// receiver, and a long file has thousands of locals).
    local_types: Vec<HashMap<(Option<u32>, &'a str), &'a str>>,
    /// Per file: locals by name, in file order (`member_type`).
    locals_by_name: Vec<HashMap<&'a str, Vec<&'a Local>>>,
    bindings: Vec<HashMap<CompactString, Target>>,
    wildcards: Vec<Vec<usize>>,
    java_packages: HashMap<String, Vec<usize>>,
    externals: HashMap<(String, &'static str), usize>,
    packages: HashMap<(String, &'static str), usize>,
    repo_node: usize,
}

fn family(lang: Lang) -> u8 {
    match lang {
        Lang::Python => 0,
        Lang::Java => 1,
        Lang::Cpp | Lang::C => 2,
        Lang::JavaScript | Lang::TypeScript => 3,
    }
}

/// Builds the graph of a repository from its parsed files (sorted by path) and manifest dependencies.
pub fn build_graph(repo_name: &str, files: &[ParsedFile], deps: &[Dependency]) -> CodeGraph {
    use rayon::prelude::*;
    // Every definition and file is a node with a `defined_in` edge; externals, packages and the rest add a little.
    let n_defs: usize = files.iter().map(|f| f.facts.defs.len()).sum::<usize>() + files.len();
    let mut ctx = Ctx {
        files,
        nodes: Vec::with_capacity(n_defs + n_defs / 16),
        edges: Vec::with_capacity(n_defs + files.iter().map(|f| f.facts.refs.len()).sum::<usize>()),
        stats: ResolveStats::default(),
        module_node: Vec::with_capacity(files.len()),
        module_qname: Vec::with_capacity(files.len()),
        defs: Vec::with_capacity(files.len()),
        module_by_qname: HashMap::default(),
        module_by_path: HashMap::default(),
        top: vec![HashMap::default(); files.len()],
        scoped: HashMap::default(),
        bases: HashMap::default(),
        out_of_line_owner: HashMap::default(),
        by_qname: HashMap::default(),
        by_name: HashMap::default(),
        local_types: files
            .par_iter()
            .map(|file| {
                let mut map = HashMap::default();
                for l in file.facts.locals.iter().filter(|l| !l.member) {
                    map.entry((l.scope, l.name.as_str()))
                        .or_insert(l.type_name.as_str());
                }
                map
            })
            .collect(),
        locals_by_name: files
            .par_iter()
            .map(|file| {
                let mut map: HashMap<&str, Vec<&Local>> = HashMap::default();
                for l in &file.facts.locals {
                    map.entry(l.name.as_str()).or_default().push(l);
                }
                map
            })
            .collect(),
        bindings: vec![HashMap::default(); files.len()],
        wildcards: vec![Vec::new(); files.len()],
        java_packages: HashMap::default(),
        externals: HashMap::default(),
        packages: HashMap::default(),
        repo_node: 0,
    };
    ctx.repo_node = ctx.push_node(
        NodeType::Repository,
        repo_name,
        repo_name,
        "",
        None,
        meta(&[]),
    );
    let python_roots = python_package_dirs(files);
    for (f, file) in files.iter().enumerate() {
        ctx.add_module(f, file, &python_roots);
    }
    let prepared: Vec<Vec<PreparedDef>> = {
        let module_qname = &ctx.module_qname;
        files
            .par_iter()
            .zip(module_qname)
            .map(|(file, qname)| prepare_defs(file, qname))
            .collect()
    };
    for (f, prepared) in prepared.into_iter().enumerate() {
        ctx.add_defs(f, prepared);
    }
    ctx.attach_out_of_line_methods();
    for f in 0..files.len() {
        ctx.attach_config(f);
    }
    for f in 0..files.len() {
        ctx.resolve_imports(f, false);
    }
    for f in 0..files.len() {
        ctx.resolve_imports(f, true);
    }
    for f in 0..files.len() {
        ctx.resolve_refs(f, true);
    }
    // Calls and throws: planned per file in parallel (lookups only read), applied in file order.
    let plans: Vec<Vec<(usize, Planned)>> = {
        let ctx = &ctx;
        (0..files.len())
            .into_par_iter()
            .map(|f| ctx.plan_calls(f))
            .collect()
    };
    for (f, plans) in plans.into_iter().enumerate() {
        for (i, plan) in plans {
            ctx.apply_ref(f, &files[f].facts.refs[i], plan);
        }
    }
    ctx.add_dependencies(deps);
    ctx.finish()
}

/// A definition of one file, with what can be computed from the file alone ([`prepare_defs`]).
struct PreparedDef {
    /// Qualified name.
    qname: String,
    /// The node, without its id (`None` for a namespace, which becomes a shared package node).
    node: Option<Node>,
    /// The nearest enclosing definition that is not a namespace (the node's container), by index in the file.
    owner: Option<u32>,
}

/// Qualified names and nodes of a file's definitions: per-file work, run in parallel before [`Ctx::add_defs`].
fn prepare_defs(file: &ParsedFile, module_qname: &str) -> Vec<PreparedDef> {
    let lang = file.lang;
    let sep = if matches!(lang, Lang::Cpp | Lang::C) {
        "::"
    } else {
        "."
    };
    let test_file = is_test_path(&file.path);
    let defs = &file.facts.defs;
    let mut out: Vec<PreparedDef> = Vec::with_capacity(defs.len());
    for def in defs {
        let mut qname = match (lang, def.parent) {
            (_, Some(p)) => out[p as usize].qname.clone(),
            (Lang::Cpp | Lang::C, None) => String::new(),
            (Lang::Java, None) => file.facts.package.clone().unwrap_or_default(),
            (_, None) => module_qname.to_string(),
        };
        for part in def.qualifier.iter().chain(std::iter::once(&def.name)) {
            if !qname.is_empty() {
                qname.push_str(sep);
            }
            qname.push_str(part);
        }
        // Defined in the nearest enclosing class or function, else the module (namespaces are not containers).
        let mut owner = def.parent;
        while let Some(p) = owner
            && out[p as usize].node.is_none()
        {
            owner = defs[p as usize].parent;
        }
        if def.kind == DefKind::Namespace {
            out.push(PreparedDef {
                qname,
                node: None,
                owner,
            });
            continue;
        }
        let ty = if def.kind.is_type() {
            NodeType::Class
        } else {
            NodeType::Function
        };
        let mut m = Meta::with_capacity(5);
        m.insert("kind", json!(def.kind.as_str()));
        if !def.decorators.is_empty() {
            m.insert("decorators", json!(def.decorators));
        }
        if let Some(v) = &def.visibility {
            m.insert("visibility", json!(v));
        }
        if !def.modifiers.is_empty() {
            m.insert("modifiers", json!(def.modifiers));
        }
        let is_test = test_file
            || (ty == NodeType::Function
                && (def.name.starts_with("test") || def.decorators.iter().any(|d| d == "Test")));
        m.insert("is_test", json!(is_test));
        let node = Node {
            id: NodeRef {
                ty,
                key: CompactString::default(),
            },
            name: def.name.to_string(),
            qname: qname.clone(),
            path: file.path.clone(),
            lang: Some(lang),
            start_line: def.start_line,
            end_line: def.end_line,
            signature: def.signature.clone(),
            doc: def.doc.clone().unwrap_or_default(),
            meta: m,
        };
        out.push(PreparedDef {
            qname,
            node: Some(node),
            owner,
        });
    }
    out
}

fn meta(pairs: &[(&str, Value)]) -> Meta {
    pairs.iter().map(|(k, v)| (k, v.clone())).collect()
}

/// Directories that hold an `__init__.py`.
fn python_package_dirs(files: &[ParsedFile]) -> HashSet<&str> {
    files
        .iter()
        .filter(|f| f.lang == Lang::Python)
        .filter_map(|f| {
            f.path
                .strip_suffix("/__init__.py")
                .or_else(|| (f.path == "__init__.py").then_some(""))
        })
        .collect()
}

fn parent_dir(path: &str) -> &str {
    path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")
}

fn file_stem(path: &str) -> &str {
    let name = path.rsplit('/').next().unwrap_or(path);
    name.split_once('.').map(|(s, _)| s).unwrap_or(name)
}

fn is_test_path(path: &str) -> bool {
    let name = path.rsplit('/').next().unwrap_or(path).to_ascii_lowercase();
    path.split('/')
        .any(|seg| matches!(seg, "test" | "tests" | "testing" | "__tests__" | "spec"))
        || name.starts_with("test_")
        || name.contains("_test.")
        || name.contains(".test.")
        || name.contains(".spec.")
        || (name.ends_with("test.java") || name.ends_with("tests.java"))
}

impl<'a> Ctx<'a> {
    fn push_node(
        &mut self,
        ty: NodeType,
        name: &str,
        qname: &str,
        path: &str,
        lang: Option<Lang>,
        meta: Meta,
    ) -> usize {
        self.nodes.push(Node {
            id: NodeRef {
                ty,
                key: CompactString::default(),
            },
            name: name.to_string(),
            qname: qname.to_string(),
            path: path.to_string(),
            lang,
            start_line: 0,
            end_line: 0,
            signature: String::new(),
            doc: String::new(),
            meta,
        });
        self.nodes.len() - 1
    }

    fn edge(&mut self, kind: EdgeKind, from: usize, to: usize, line: u32, confidence: f32) {
        if from == to && kind != EdgeKind::Calls {
            return;
        }
        self.edges.push(RawEdge {
            kind,
            from: from as u32,
            to: to as u32,
            line,
            confidence,
        });
    }

    /// Package node for a directory, creating its ancestors; returns the node that a module there is defined in.
    fn dir_package(&mut self, dir: &str) -> usize {
        if dir.is_empty() {
            return self.repo_node;
        }
        if let Some(&idx) = self.packages.get(&(dir.to_string(), "directory")) {
            return idx;
        }
        let parent = self.dir_package(parent_dir(dir));
        let name = dir.rsplit('/').next().unwrap_or(dir);
        let idx = self.push_node(
            NodeType::Package,
            name,
            &dir.replace('/', "."),
            dir,
            None,
            meta(&[("kind", json!("directory"))]),
        );
        self.packages.insert((dir.to_string(), "directory"), idx);
        self.edge(EdgeKind::DefinedIn, idx, parent, 0, 1.0);
        idx
    }

    fn named_package(&mut self, qname: &str, kind: &'static str, lang: Lang, path: &str) -> usize {
        if let Some(&idx) = self.packages.get(&(qname.to_string(), kind)) {
            return idx;
        }
        let sep = if kind == "namespace" { "::" } else { "." };
        let (parent, name) = match qname.rsplit_once(sep) {
            Some((parent, name)) => (Some(parent), name),
            None => (None, qname),
        };
        let parent_idx = match parent {
            Some(p) if kind == "namespace" => self.named_package(p, kind, lang, path),
            _ => self.repo_node,
        };
        let idx = self.push_node(
            NodeType::Package,
            name,
            qname,
            path,
            Some(lang),
            meta(&[("kind", json!(kind))]),
        );
        self.packages.insert((qname.to_string(), kind), idx);
        self.edge(EdgeKind::DefinedIn, idx, parent_idx, 0, 1.0);
        idx
    }

    fn external(&mut self, qname: &str, kind: &'static str) -> usize {
        if let Some(&idx) = self.externals.get(&(qname.to_string(), kind)) {
            return idx;
        }
        let name = qname
            .rsplit(['.', '/', ':'])
            .next()
            .filter(|s| !s.is_empty())
            .unwrap_or(qname);
        let idx = self.push_node(
            NodeType::External,
            name,
            qname,
            "",
            None,
            meta(&[("kind", json!(kind))]),
        );
        self.externals.insert((qname.to_string(), kind), idx);
        idx
    }

    fn add_module(&mut self, f: usize, file: &'a ParsedFile, python_roots: &HashSet<&str>) {
        let path = file.path.as_str();
        let qname = match file.lang {
            Lang::Python => {
                // Walk up while the directory is a package: the first directory without `__init__.py` is a root.
                let mut parts = vec![file_stem(path).to_string()];
                let mut dir = parent_dir(path);
                while !dir.is_empty() && python_roots.contains(dir) {
                    parts.push(dir.rsplit('/').next().unwrap_or(dir).to_string());
                    dir = parent_dir(dir);
                }
                parts.reverse();
                if parts.len() > 1 && parts.last().is_some_and(|p| p == "__init__") {
                    parts.pop();
                }
                parts.join(".")
            }
            Lang::Java => match &file.facts.package {
                Some(pkg) => format!("{pkg}.{}", file_stem(path)),
                None => file_stem(path).to_string(),
            },
            // JS/TS modules are named like their import specifiers: the path without its extension.
            Lang::JavaScript | Lang::TypeScript => path
                .rsplit_once('.')
                .map_or(path, |(stem, _)| stem)
                .to_string(),
            Lang::Cpp | Lang::C => path.to_string(),
        };
        let name = path.rsplit('/').next().unwrap_or(path);
        let facts = &file.facts;
        let mut m = meta(&[
            ("is_test", json!(is_test_path(path))),
            ("parse_error", json!(facts.has_error)),
            ("size", json!(file.size)),
            ("hash", json!(file.hash)),
        ]);
        if facts.has_error {
            m.insert("error_lines", json!(facts.error_lines));
        }
        if file.invalid_utf8 {
            m.insert("invalid_utf8", json!(true));
        }
        let idx = self.push_node(NodeType::Module, name, &qname, path, Some(file.lang), m);
        let node = &mut self.nodes[idx];
        node.start_line = 1;
        node.end_line = facts.n_lines.max(1);
        node.doc = facts.doc.clone().unwrap_or_default();
        let parent = match (&file.lang, &facts.package) {
            (Lang::Java, Some(pkg)) => {
                self.named_package(pkg, "java_package", Lang::Java, parent_dir(path))
            }
            _ => self.dir_package(parent_dir(path)),
        };
        self.edge(EdgeKind::DefinedIn, idx, parent, 0, 1.0);
        if let (Lang::Java, Some(pkg)) = (&file.lang, &facts.package) {
            self.java_packages.entry(pkg.clone()).or_default().push(f);
        }
        self.module_by_qname.entry(qname.clone()).or_insert(f);
        self.module_by_path.insert(path, f);
        self.module_node.push(idx);
        self.module_qname.push(qname);
    }

    /// Adds the definitions of file `f`, prepared by [`prepare_defs`]: nodes, `defined_in` edges and the name tables,
    /// in definition order (namespaces become package nodes where they occur).
    fn add_defs(&mut self, f: usize, prepared: Vec<PreparedDef>) {
        let files: &'a [ParsedFile] = self.files;
        let file = &files[f];
        let lang = file.lang;
        let module = self.module_node[f];
        let mut infos: Vec<DefInfo> = Vec::with_capacity(prepared.len());
        for (def, prep) in file.facts.defs.iter().zip(prepared) {
            let Some(node) = prep.node else {
                let pkg = self.named_package(&prep.qname, "namespace", lang, &file.path);
                self.edge(EdgeKind::DefinedIn, pkg, self.repo_node, 0, 1.0);
                infos.push(DefInfo {
                    node: None,
                    qname: prep.qname,
                });
                continue;
            };
            let idx = self.nodes.len();
            self.nodes.push(node);
            match prep.owner.and_then(|o| infos[o as usize].node) {
                Some(o) => {
                    self.edge(EdgeKind::DefinedIn, idx, o, def.start_line, 1.0);
                    self.scoped
                        .entry(o)
                        .or_default()
                        .entry(def.name.as_str())
                        .or_default()
                        .push(idx);
                }
                None => {
                    self.edge(EdgeKind::DefinedIn, idx, module, def.start_line, 1.0);
                    if def.qualifier.is_empty() {
                        self.top[f].entry(def.name.as_str()).or_default().push(idx);
                    }
                }
            }
            self.by_qname
                .entry(prep.qname.as_str().into())
                .or_default()
                .push(idx);
            self.by_name
                .entry((family(lang), def.name.as_str()))
                .or_default()
                .push(idx);
            infos.push(DefInfo {
                node: Some(idx),
                qname: prep.qname,
            });
        }
        self.defs.push(infos);
    }

    /// Records the configuration keys a file reads on the nodes that read them (the innermost enclosing function or
    /// class, else the module) as `meta.config`: `[{kind, key, lines}]`, one entry per key, sorted.
    fn attach_config(&mut self, f: usize) {
        let files = self.files;
        let file = &files[f];
        let module = self.module_node[f];
        let mut by_node: BTreeMap<usize, BTreeMap<(&str, &str), Vec<u32>>> = BTreeMap::new();
        for read in &file.facts.config {
            let node = read
                .scope
                .and_then(|s| self.scope_node(f, s))
                .unwrap_or(module);
            by_node
                .entry(node)
                .or_default()
                .entry((read.kind.as_str(), read.key.as_str()))
                .or_default()
                .push(read.line);
        }
        for (node, keys) in by_node {
            let entries: Vec<Value> = keys
                .into_iter()
                .map(|((kind, key), lines)| json!({ "kind": kind, "key": key, "lines": lines }))
                .collect();
            self.nodes[node]
                .meta
                .insert("config", Value::Array(entries));
        }
    }

    /// C++ `void ns::Foo::bar() {}` written outside its class: move it into class `ns::Foo` when that class exists.
    fn attach_out_of_line_methods(&mut self) {
        // Their `defined_in` edges to the module, dropped after the loop.
        let mut moved: HashSet<(u32, u32)> = HashSet::default();
        for f in 0..self.files.len() {
            let file = &self.files[f];
            for (d, def) in file.facts.defs.iter().enumerate() {
                if def.qualifier.is_empty() || !def.kind.is_callable() {
                    continue;
                }
                let Some(idx) = self.defs[f][d].node else {
                    continue;
                };
                let qname = self.nodes[idx].qname.clone();
                let class_qname = qname
                    .rsplit_once("::")
                    .map(|(c, _)| c.to_string())
                    .unwrap_or_default();
                let class = self.by_qname.get(class_qname.as_str()).and_then(|c| {
                    c.iter()
                        .copied()
                        .find(|&c| self.nodes[c].id.ty == NodeType::Class)
                });
                if let Some(class) = class {
                    let module = self.module_node[f];
                    moved.insert((idx as u32, module as u32));
                    self.edge(EdgeKind::DefinedIn, idx, class, def.start_line, 1.0);
                    self.scoped
                        .entry(class)
                        .or_default()
                        .entry(def.name.as_str())
                        .or_default()
                        .push(idx);
                    self.out_of_line_owner.insert(idx, class);
                    let kind = if def.name == self.nodes[class].name {
                        "constructor"
                    } else {
                        "method"
                    };
                    self.nodes[idx].meta.insert("kind", json!(kind));
                }
            }
        }
        if !moved.is_empty() {
            self.edges
                .retain(|e| e.kind != EdgeKind::DefinedIn || !moved.contains(&(e.from, e.to)));
        }
    }

    fn resolve_imports(&mut self, f: usize, second_pass: bool) {
        let file = &self.files[f];
        let module = self.module_node[f];
        for imp in &file.facts.imports {
            match file.lang {
                Lang::Python => {
                    let Some(abs) = self.python_absolute(f, &imp.module, imp.level) else {
                        continue;
                    };
                    if imp.wildcard {
                        if let Some(&g) = self.module_by_qname.get(&abs)
                            && !second_pass
                        {
                            self.wildcards[f].push(g);
                            self.edge(
                                EdgeKind::Imports,
                                module,
                                self.module_node[g],
                                imp.line,
                                1.0,
                            );
                        }
                        continue;
                    }
                    match &imp.member {
                        None => {
                            if second_pass {
                                continue;
                            }
                            let target = self.python_module_target(&abs);
                            let bound_name = imp.alias.clone().unwrap_or_else(|| {
                                CompactString::new(abs.split('.').next().unwrap_or(&abs))
                            });
                            let bound = if imp.alias.is_some() {
                                target.clone()
                            } else {
                                self.python_module_target(&bound_name)
                            };
                            self.import_edge(module, &target, imp.line);
                            self.bindings[f].insert(bound_name, bound);
                        }
                        Some(member) => {
                            let local = imp.alias.clone().unwrap_or_else(|| member.clone());
                            if second_pass
                                && !matches!(
                                    self.bindings[f].get(&local),
                                    Some(Target::External(_)) | None
                                )
                            {
                                continue;
                            }
                            let sub = format!("{abs}.{member}");
                            let target = if let Some(&g) = self.module_by_qname.get(&sub) {
                                Target::Module(g)
                            } else if let Some(&g) = self.module_by_qname.get(&abs) {
                                match self.top[g].get(member.as_str()) {
                                    Some(nodes) => Target::Nodes(nodes.clone()),
                                    None => match self.bindings[g].get(member) {
                                        Some(t) if second_pass => t.clone(),
                                        _ => Target::Module(g),
                                    },
                                }
                            } else {
                                self.python_module_target(&abs)
                            };
                            if !second_pass {
                                let edge_target = match &target {
                                    Target::Nodes(_) => self.python_module_target(&abs),
                                    t => t.clone(),
                                };
                                self.import_edge(module, &edge_target, imp.line);
                            }
                            let binding = match target {
                                // `from m import x` where x is neither a submodule nor a definition of m.
                                Target::Module(g) if self.module_qname[g] == abs => continue,
                                t => t,
                            };
                            self.bindings[f].insert(local, binding);
                        }
                    }
                }
                Lang::Java => {
                    if second_pass {
                        continue;
                    }
                    if imp.wildcard {
                        match self.java_packages.get(imp.module.as_str()).cloned() {
                            Some(mods) => {
                                for g in mods {
                                    self.wildcards[f].push(g);
                                }
                            }
                            None => {
                                let ext = self.external(&imp.module, "package");
                                self.stats.imports_external += 1;
                                self.edge(EdgeKind::Imports, module, ext, imp.line, 1.0);
                            }
                        }
                        continue;
                    }
                    let member = imp.member.clone().unwrap_or_default();
                    let full = if imp.module.is_empty() {
                        member.to_string()
                    } else {
                        format!("{}.{member}", imp.module)
                    };
                    let class = self
                        .by_qname
                        .get(full.as_str())
                        .cloned()
                        .filter(|v| !v.is_empty());
                    match class {
                        Some(nodes) => {
                            let path = self.nodes[nodes[0]].path.clone();
                            if let Some(&g) = self.module_by_path.get(path.as_str()) {
                                self.edge(
                                    EdgeKind::Imports,
                                    module,
                                    self.module_node[g],
                                    imp.line,
                                    1.0,
                                );
                            }
                            self.bindings[f].insert(member, Target::Nodes(nodes));
                        }
                        None => {
                            // `import static a.B.m` of an in-repo class B binds m to B's member.
                            if let Some(owner) = self
                                .by_qname
                                .get(imp.module.as_str())
                                .and_then(|v| v.first().copied())
                                && let Some(found) = self.members_of(owner, &member)
                            {
                                let found = NodeList::from_slice(found);
                                self.bindings[f].insert(member, Target::Nodes(found));
                                continue;
                            }
                            let pkg: &str = if member.starts_with(char::is_uppercase) {
                                &imp.module
                            } else {
                                &full
                            };
                            let ext =
                                self.external(if pkg.is_empty() { &full } else { pkg }, "package");
                            self.stats.imports_external += 1;
                            self.edge(EdgeKind::Imports, module, ext, imp.line, 1.0);
                            let ty = self.external(&full, "type");
                            self.bindings[f].insert(member, Target::External(ty));
                        }
                    }
                }
                Lang::Cpp | Lang::C => {
                    if second_pass || imp.member.is_some() || imp.wildcard {
                        continue;
                    }
                    match self.find_header(f, &imp.module) {
                        Some(g) => {
                            self.edge(
                                EdgeKind::Imports,
                                module,
                                self.module_node[g],
                                imp.line,
                                1.0,
                            );
                            self.wildcards[f].push(g);
                        }
                        None => {
                            let ext = self.external(&imp.module, "header");
                            self.stats.imports_external += 1;
                            self.edge(EdgeKind::Imports, module, ext, imp.line, 1.0);
                        }
                    }
                }
                Lang::JavaScript | Lang::TypeScript => {
                    if second_pass {
                        continue;
                    }
                    let target = if imp.module.starts_with('.') {
                        match self.find_js_module(f, &imp.module) {
                            Some(g) => Target::Module(g),
                            None => continue,
                        }
                    } else {
                        let pkg: String = if imp.module.starts_with('@') {
                            imp.module
                                .splitn(3, '/')
                                .take(2)
                                .collect::<Vec<_>>()
                                .join("/")
                        } else {
                            imp.module
                                .split('/')
                                .next()
                                .unwrap_or(&imp.module)
                                .to_string()
                        };
                        self.stats.imports_external += 1;
                        Target::External(self.external(&pkg, "package"))
                    };
                    self.import_edge(module, &target, imp.line);
                    let local = imp.alias.clone().or_else(|| imp.member.clone());
                    let Some(local) = local else { continue };
                    let binding = match (&target, &imp.member) {
                        (Target::Module(g), Some(member)) if member != "default" => {
                            match self.top[*g].get(member.as_str()) {
                                Some(nodes) => Target::Nodes(nodes.clone()),
                                None => target.clone(),
                            }
                        }
                        _ => target.clone(),
                    };
                    self.bindings[f].insert(local, binding);
                }
            }
        }
        if second_pass {
            // Included headers see what they include, a few levels deep.
            if matches!(file.lang, Lang::Cpp | Lang::C) {
                let mut seen: HashSet<usize> = self.wildcards[f].iter().copied().collect();
                let mut queue: Vec<usize> = self.wildcards[f].clone();
                while let Some(g) = queue.pop() {
                    if seen.len() > 64 {
                        break;
                    }
                    for &h in &self.wildcards[g].clone() {
                        if seen.insert(h) {
                            queue.push(h);
                        }
                    }
                }
                seen.remove(&f);
                let mut all: Vec<usize> = seen.into_iter().collect();
                all.sort_unstable();
                self.wildcards[f] = all;
            }
        }
    }

    fn import_edge(&mut self, module: usize, target: &Target, line: u32) {
        match target {
            Target::Module(g) => {
                self.edge(EdgeKind::Imports, module, self.module_node[*g], line, 1.0)
            }
            Target::External(e) => {
                self.stats.imports_external += 1;
                self.edge(EdgeKind::Imports, module, *e, line, 1.0)
            }
            Target::Nodes(_) | Target::Prefix(_) | Target::Pending(_) => {}
        }
    }

    /// Absolute dotted module name of a Python import, resolving leading dots against the importing module.
    fn python_absolute(&self, f: usize, module: &str, level: u32) -> Option<String> {
        if level == 0 {
            return Some(module.to_string());
        }
        let own = &self.module_qname[f];
        let is_package = self.files[f].path.ends_with("__init__.py");
        let mut parts: Vec<&str> = own.split('.').collect();
        if !is_package {
            parts.pop();
        }
        for _ in 1..level {
            parts.pop()?;
        }
        if !module.is_empty() {
            parts.push(module);
        }
        Some(parts.join("."))
    }

    fn python_module_target(&mut self, abs: &str) -> Target {
        match self.python_module_target_ro(abs, &mut Vec::new()) {
            Target::Pending(top) => Target::External(self.external(&top, "package")),
            t => t,
        }
    }

    /// [`Ctx::python_module_target`] without creating the external package: it is added to `pending`.
    fn python_module_target_ro(&self, abs: &str, pending: &mut Vec<String>) -> Target {
        if let Some(&g) = self.module_by_qname.get(abs) {
            return Target::Module(g);
        }
        let prefix = format!("{abs}.");
        if self.module_qname.iter().any(|q| q.starts_with(&prefix)) {
            return Target::Prefix(abs.to_string());
        }
        let top = abs.split('.').next().unwrap_or(abs);
        match self.externals.get(&(top.to_string(), "package")) {
            Some(&e) => Target::External(e),
            None => {
                pending.push(top.to_string());
                Target::Pending(top.to_string())
            }
        }
    }

    fn find_header(&self, f: usize, include: &str) -> Option<usize> {
        let dir = parent_dir(&self.files[f].path);
        let joined = normalize(&if dir.is_empty() {
            include.to_string()
        } else {
            format!("{dir}/{include}")
        });
        if let Some(&g) = joined.as_deref().and_then(|p| self.module_by_path.get(p)) {
            return Some(g);
        }
        if let Some(&g) = self.module_by_path.get(include) {
            return Some(g);
        }
        let suffix = format!("/{include}");
        let mut found = self
            .files
            .iter()
            .enumerate()
            .filter(|(_, file)| file.path.ends_with(&suffix))
            .map(|(g, _)| g);
        let first = found.next()?;
        // Ambiguous headers (two `config.h`) stay unresolved rather than picking one at random.
        found.next().is_none().then_some(first)
    }

    fn find_js_module(&self, f: usize, spec: &str) -> Option<usize> {
        let dir = parent_dir(&self.files[f].path);
        let base = normalize(&if dir.is_empty() {
            spec.to_string()
        } else {
            format!("{dir}/{spec}")
        })?;
        let candidates = [
            "",
            ".ts",
            ".tsx",
            ".js",
            ".jsx",
            ".mjs",
            ".cjs",
            "/index.ts",
            "/index.tsx",
            "/index.js",
        ];
        candidates.iter().find_map(|ext| {
            self.module_by_path
                .get(format!("{base}{ext}").as_str())
                .copied()
        })
    }

    /// Members named `name` of a class, searching its bases (depth-first, cycle-safe, at most 32 classes).
    fn members_of(&self, class: usize, name: &str) -> Option<&[usize]> {
        let mut stack: SmallVec<[usize; 8]> = smallvec![class];
        let mut seen: SmallVec<[usize; 8]> = SmallVec::new();
        while let Some(c) = stack.pop() {
            if seen.contains(&c) || seen.len() >= 32 {
                continue;
            }
            seen.push(c);
            if let Some(found) = self.scoped.get(&c).and_then(|m| m.get(name)) {
                return Some(found);
            }
            if let Some(bases) = self.bases.get(&c) {
                stack.extend(bases.iter().rev().copied());
            }
        }
        None
    }

    fn enclosing_class(&self, f: usize, scope: Option<u32>) -> Option<usize> {
        let defs = &self.files[f].facts.defs;
        let mut s = scope;
        while let Some(d) = s {
            if let Some(n) = self.defs[f][d as usize].node {
                if self.nodes[n].id.ty == NodeType::Class {
                    return Some(n);
                }
                // Out-of-line C++ methods belong to the class they were attached to.
                if let Some(&owner) = self.out_of_line_owner.get(&n) {
                    return Some(owner);
                }
            }
            s = defs[d as usize].parent;
        }
        None
    }

    /// Looks up an unqualified name from a scope.
    fn lookup(&self, f: usize, scope: Option<u32>, name: &str) -> Option<(Target, f32)> {
        let file = &self.files[f];
        let lang = file.lang;
        let defs = &file.facts.defs;
        let mut s = scope;
        while let Some(d) = s {
            if let Some(n) = self.defs[f][d as usize].node {
                let is_class = self.nodes[n].id.ty == NodeType::Class;
                if is_class && lang != Lang::Python {
                    if let Some(found) = self.members_of(n, name) {
                        return Some((Target::Nodes(NodeList::from_slice(found)), 0.9));
                    }
                } else if !is_class
                    && let Some(found) = self.scoped.get(&n).and_then(|m| m.get(name))
                {
                    return Some((Target::Nodes(found.clone()), 1.0));
                }
            }
            s = defs[d as usize].parent;
        }
        if lang == Lang::Cpp
            && let Some(class) = self.enclosing_class(f, scope)
            && let Some(found) = self.members_of(class, name)
        {
            return Some((Target::Nodes(NodeList::from_slice(found)), 0.9));
        }
        if let Some(found) = self.top[f].get(name) {
            return Some((Target::Nodes(found.clone()), 1.0));
        }
        if let Some(t) = self.bindings[f].get(name) {
            return Some((t.clone(), 1.0));
        }
        for &g in &self.wildcards[f] {
            if let Some(found) = self.top[g].get(name) {
                return Some((Target::Nodes(found.clone()), 0.9));
            }
        }
        match lang {
            Lang::Java => {
                if let Some(pkg) = &file.facts.package
                    && let Some(found) = joined(pkg, ".", name, |q| self.by_qname.get(q))
                {
                    return Some((Target::Nodes(found.clone()), 1.0));
                }
            }
            Lang::Cpp => {
                let mut s = scope;
                while let Some(d) = s {
                    let info = &self.defs[f][d as usize];
                    if info.node.is_none()
                        && let Some(found) =
                            joined(&info.qname, "::", name, |q| self.by_qname.get(q))
                    {
                        return Some((Target::Nodes(found.clone()), 0.9));
                    }
                    s = defs[d as usize].parent;
                }
            }
            _ => {}
        }
        if let Some(found) = self.by_name.get(&(family(lang), name))
            && found.len() == 1
        {
            return Some((Target::Nodes(found.clone()), 0.5));
        }
        None
    }

    /// Resolves a receiver expression (`self`, `json`, `os.path`, `self.parser`, a typed local) to what it names.
    fn resolve_receiver(
        &self,
        f: usize,
        scope: Option<u32>,
        receiver: &str,
        pending: &mut Vec<String>,
    ) -> Option<(Target, f32)> {
        let lang = self.files[f].lang;
        let self_words = lang.spec().self_words;
        if self_words.contains(&receiver) {
            let class = self.enclosing_class(f, scope)?;
            if receiver == "super" {
                return Some((
                    Target::Nodes(NodeList::from_slice(self.bases.get(&class)?)),
                    0.9,
                ));
            }
            return Some((Target::Nodes(smallvec![class]), 0.9));
        }
        if let Some(attr) = self_words
            .iter()
            .find_map(|w| receiver.strip_prefix(w).and_then(|r| r.strip_prefix('.')))
        {
            if is_identifier(attr) {
                let class = self.enclosing_class(f, scope)?;
                let type_name = self.member_type(f, class, attr)?;
                return self
                    .resolve_type(f, scope, type_name, pending)
                    .map(|(t, c)| (t, c * 0.9));
            }
            return None;
        }
        let sep = lang.spec().scope_sep;
        let segments: Vec<&str> = receiver.split(sep).collect();
        if !segments.iter().all(|s| is_identifier(s)) {
            return None;
        }
        let first = segments[0];
        let mut current = match self.local_type(f, scope, first) {
            Some(type_name) => {
                let (t, c) = self.resolve_type(f, scope, type_name, pending)?;
                (t, c * 0.9)
            }
            None => self.lookup(f, scope, first)?,
        };
        for seg in &segments[1..] {
            current = self.member(current, seg, pending)?;
        }
        Some(current)
    }

    fn member(
        &self,
        (target, conf): (Target, f32),
        name: &str,
        pending: &mut Vec<String>,
    ) -> Option<(Target, f32)> {
        match target {
            Target::Module(g) => {
                let sub = joined(&self.module_qname[g], ".", name, |q| {
                    self.module_by_qname.get(q).copied()
                });
                if let Some(h) = sub {
                    return Some((Target::Module(h), conf));
                }
                if let Some(found) = self.top[g].get(name) {
                    return Some((Target::Nodes(found.clone()), conf));
                }
                self.bindings[g].get(name).map(|t| (t.clone(), conf * 0.9))
            }
            Target::Prefix(p) => {
                let sub = format!("{p}.{name}");
                Some((self.python_module_target_ro(&sub, pending), conf))
            }
            Target::Nodes(nodes) => {
                let class = nodes
                    .iter()
                    .copied()
                    .find(|&n| self.nodes[n].id.ty == NodeType::Class)?;
                self.members_of(class, name)
                    .map(|found| (Target::Nodes(NodeList::from_slice(found)), conf * 0.9))
            }
            Target::External(_) | Target::Pending(_) => None,
        }
    }

    fn resolve_type(
        &self,
        f: usize,
        scope: Option<u32>,
        type_name: &str,
        pending: &mut Vec<String>,
    ) -> Option<(Target, f32)> {
        let sep = self.files[f].lang.spec().scope_sep;
        if type_name.contains(sep)
            && let Some(found) = self.by_qname.get(type_name)
        {
            return Some((Target::Nodes(found.clone()), 1.0));
        }
        match type_name.rsplit_once(sep) {
            Some((receiver, name)) => {
                let base = self.resolve_receiver(f, scope, receiver, pending)?;
                self.member(base, name, pending)
            }
            None => self.lookup(f, scope, type_name),
        }
    }

    fn local_type(&self, f: usize, scope: Option<u32>, name: &str) -> Option<&'a str> {
        let facts = &self.files[f].facts;
        let mut s = scope;
        loop {
            if let Some(t) = self.local_types[f].get(&(s, name)) {
                return Some(t);
            }
            match s {
                Some(d) => s = facts.defs[d as usize].parent,
                None => break,
            }
        }
        // A field of the enclosing class used without `this.` (Java, C++).
        if self.files[f].lang != Lang::Python {
            let class = self.enclosing_class(f, scope)?;
            return self.member_type(f, class, name);
        }
        None
    }

    /// Declared type of a field of `class` (a typed field, or `self.x = T()` in a method).
    fn member_type(&self, f: usize, class: usize, name: &str) -> Option<&'a str> {
        let files: &'a [ParsedFile] = self.files;
        let facts = &files[f].facts;
        self.locals_by_name[f]
            .get(name)?
            .iter()
            .filter(|l| l.member || self.files[f].lang != Lang::Python)
            .find(|l| {
                let owner = match l.scope {
                    Some(d) if self.defs[f][d as usize].node == Some(class) => Some(class),
                    Some(d) => facts
                        .enclosing_type(d)
                        .and_then(|t| self.defs[f][t as usize].node),
                    None => None,
                };
                owner == Some(class)
            })
            .map(|l| l.type_name.as_str())
    }

    /// Resolves references: base types first (`types_only`), then calls and throws, which may need the bases.
    /// Base types (`types_only`) or calls and throws of file `f`, one reference after the other.
    fn resolve_refs(&mut self, f: usize, types_only: bool) {
        let files: &'a [ParsedFile] = self.files;
        for r in &files[f].facts.refs {
            if let Some(plan) = self.plan_ref(f, r, types_only) {
                self.apply_ref(f, r, plan);
            }
        }
    }

    /// The calls and throws of file `f` resolved (read-only, so files are planned in parallel), with the index
    /// of each reference.
    fn plan_calls(&self, f: usize) -> Vec<(usize, Planned)> {
        let refs = &self.files[f].facts.refs;
        // Room for every reference: pages that no plan fills are never touched, and the list does not grow by
        // copies.
        let mut plans = Vec::with_capacity(refs.len());
        plans.extend(
            (0..refs.len()).filter_map(|i| self.plan_ref(f, &refs[i], false).map(|p| (i, p))),
        );
        plans
    }

    /// What reference `r` of file `f` resolves to, or `None` when it is not of this pass or is dropped.
    fn plan_ref(&self, f: usize, r: &Ref, types_only: bool) -> Option<Planned> {
        let file = &self.files[f];
        let module = self.module_node[f];
        let is_base = matches!(r.kind, RefKind::Extends | RefKind::Implements);
        if is_base != types_only {
            return None;
        }
        let from = r
            .scope
            .and_then(|s| self.scope_node(f, s))
            .unwrap_or(module);
        // A base type belongs to a class; one outside any class definition comes from code tree-sitter could
        // not parse as a class (a class head split by `#if` is an ERROR node), and is dropped.
        if is_base && self.nodes[from].id.ty != NodeType::Class {
            return None;
        }
        let mut pending = Vec::new();
        let resolved = match &r.receiver {
            Some(recv) => self
                .resolve_receiver(f, r.scope, recv, &mut pending)
                .and_then(|base| self.member(base, &r.name, &mut pending)),
            None => {
                // Base classes are looked up from outside the class body.
                let scope = if is_base {
                    r.scope.and_then(|s| file.facts.defs[s as usize].parent)
                } else {
                    r.scope
                };
                self.lookup(f, scope, &r.name)
            }
        };
        // A call's edges only read the graph, so they are found here, in parallel, rather than when applied.
        let calls = match (&resolved, r.kind) {
            (Some((Target::Nodes(nodes), conf)), RefKind::Call | RefKind::New) => {
                let share = conf / nodes.len().min(4) as f32;
                nodes
                    .iter()
                    .take(4)
                    .filter_map(|&t| match self.nodes[t].id.ty {
                        NodeType::Class => Some(self.constructor_of(t).unwrap_or(t)),
                        NodeType::Function => Some(t),
                        _ => None,
                    })
                    .map(|t| (t, share))
                    .collect()
            }
            _ => Vec::new(),
        };
        Some(Planned {
            from,
            resolved,
            pending,
            calls,
        })
    }

    /// Adds what a planned reference contributes: the external packages its resolution named, then its edges.
    fn apply_ref(&mut self, f: usize, r: &Ref, plan: Planned) {
        let file = &self.files[f];
        let python = file.lang == Lang::Python;
        let is_base = matches!(r.kind, RefKind::Extends | RefKind::Implements);
        let Planned {
            from,
            mut resolved,
            pending,
            calls,
        } = plan;
        for top in &pending {
            self.external(top, "package");
        }
        if let Some((Target::Pending(top), conf)) = &resolved {
            resolved = Some((Target::External(self.external(top, "package")), *conf));
        }
        {
            match r.kind {
                RefKind::Call | RefKind::New => {
                    if calls.is_empty() {
                        self.stats.calls_unresolved += 1;
                    } else {
                        self.stats.calls_resolved += 1;
                    }
                    for (t, conf) in calls {
                        self.edge(EdgeKind::Calls, from, t, r.line, conf);
                    }
                }
                RefKind::Throw | RefKind::Extends | RefKind::Implements => {
                    let targets: Vec<(usize, f32)> = match resolved {
                        Some((Target::Nodes(nodes), conf)) => {
                            let n = nodes.len().min(4);
                            nodes
                                .into_iter()
                                .take(4)
                                .map(|t| (t, conf / n as f32))
                                .collect()
                        }
                        Some((Target::External(e), conf)) => vec![(e, conf)],
                        _ => Vec::new(),
                    };
                    let kind = match r.kind {
                        RefKind::Throw => EdgeKind::Throws,
                        RefKind::Extends => EdgeKind::Extends,
                        _ => EdgeKind::Implements,
                    };
                    let mut targets: Vec<(usize, f32)> = targets
                        .into_iter()
                        .filter(|(t, _)| {
                            matches!(self.nodes[*t].id.ty, NodeType::Class | NodeType::External)
                        })
                        .collect();
                    if targets.is_empty() {
                        // `raise err` re-raises a variable: not a type.
                        if python
                            && r.kind == RefKind::Throw
                            && r.name.starts_with(char::is_lowercase)
                        {
                            return;
                        }
                        let qname = match (
                            &r.receiver,
                            python && PY_BUILTINS.contains(&r.name.as_str()),
                        ) {
                            (None, true) => format!("builtins.{}", r.name),
                            (Some(recv), _) => {
                                format!("{recv}{}{}", file.lang.spec().scope_sep, r.name)
                            }
                            (None, false) => r.name.to_string(),
                        };
                        self.stats.types_external += 1;
                        targets.push((self.external(&qname, "type"), 1.0));
                    }
                    for (t, conf) in targets {
                        self.edge(kind, from, t, r.line, conf);
                        if is_base && self.nodes[t].id.ty == NodeType::Class {
                            let entry = self.bases.entry(from).or_default();
                            if !entry.contains(&t) {
                                entry.push(t);
                            }
                        }
                    }
                }
            }
        }
    }

    fn scope_node(&self, f: usize, scope: u32) -> Option<usize> {
        let defs = &self.files[f].facts.defs;
        let mut s = Some(scope);
        while let Some(d) = s {
            if let Some(n) = self.defs[f][d as usize].node {
                return Some(n);
            }
            s = defs[d as usize].parent;
        }
        None
    }

    fn constructor_of(&self, class: usize) -> Option<usize> {
        let members = self.scoped.get(&class)?;
        members.values().flatten().copied().find(|&m| {
            self.nodes[m].meta.get("kind").and_then(Value::as_str) == Some("constructor")
        })
    }

    fn add_dependencies(&mut self, deps: &[Dependency]) {
        for dep in deps {
            let dir = parent_dir(&dep.manifest);
            let from = if dir.is_empty() {
                self.repo_node
            } else {
                self.packages
                    .get(&(dir.to_string(), "directory"))
                    .copied()
                    .unwrap_or(self.repo_node)
            };
            let ext = self.external(&dep.name, "package");
            self.nodes[ext]
                .meta
                .insert("ecosystem", json!(dep.ecosystem));
            self.edge(EdgeKind::DependsOn, from, ext, dep.line, 1.0);
        }
    }

    /// Assigns stable ids and emits the sorted graph.
    fn finish(mut self) -> CodeGraph {
        use rayon::prelude::*;
        use std::hash::BuildHasher;
        // A node's key hashes (type, kind, path, qname, occurrence); the occurrence numbers nodes of the same
        // (type, path, kind, qname) in creation order. Those are found by sorting the nodes by a hash of that tuple
        // (then by index): only nodes whose hash repeats are compared, and most hashes are unique, so the strings
        // of most nodes are read once, in parallel. Hashing and the edge list run in parallel too.
        let occurrences: Vec<u32> = {
            fn kind_of(node: &Node) -> &str {
                node.meta.get("kind").and_then(|k| k.as_str()).unwrap_or("")
            }
            let same_key = |a: &Node, b: &Node| {
                a.id.ty == b.id.ty
                    && a.path == b.path
                    && a.qname == b.qname
                    && kind_of(a) == kind_of(b)
            };
            let hashes: Vec<u64> = self
                .nodes
                .par_iter()
                .map(|node| {
                    rustc_hash::FxBuildHasher.hash_one((
                        node.id.ty,
                        &node.path,
                        kind_of(node),
                        &node.qname,
                    ))
                })
                .collect();
            let mut by_hash: Vec<u32> = (0..self.nodes.len() as u32).collect();
            by_hash.par_sort_unstable_by_key(|&i| (hashes[i as usize], i));
            let mut occurrences = vec![0u32; self.nodes.len()];
            // Per run of one hash (in creation order): each distinct key met so far and how often.
            let mut seen: Vec<(u32, u32)> = Vec::new();
            for run in by_hash.chunk_by(|a, b| hashes[*a as usize] == hashes[*b as usize]) {
                if run.len() == 1 {
                    continue;
                }
                seen.clear();
                for &i in run {
                    let node = &self.nodes[i as usize];
                    match seen
                        .iter_mut()
                        .find(|(first, _)| same_key(&self.nodes[*first as usize], node))
                    {
                        Some((_, count)) => {
                            occurrences[i as usize] = *count;
                            *count += 1;
                        }
                        None => seen.push((i, 1)),
                    }
                }
            }
            occurrences
        };
        self.nodes
            .par_iter_mut()
            .zip(occurrences)
            .for_each(|(node, occ)| {
                let kind = node.meta.get("kind").and_then(|k| k.as_str()).unwrap_or("");
                node.id.key = compact_key_of_pieces(&[
                    &[node.id.ty.as_str()],
                    &[kind],
                    &[&node.path],
                    &[&node.qname],
                    &[itoa::Buffer::new().format(occ)],
                ]);
            });
        // Ids are unique, so sorting nodes by id once gives each node a rank, and edges sort by (kind, rank of
        // from, rank of to): the same order as comparing their ids, without a string comparison per step.
        let mut order: Vec<usize> = (0..self.nodes.len()).collect();
        order.par_sort_unstable_by(|&a, &b| self.nodes[a].id.cmp(&self.nodes[b].id));
        let mut rank = vec![0u32; order.len()];
        for (r, &i) in order.iter().enumerate() {
            rank[i] = r as u32;
        }
        // Occurrences of one edge become adjacent, then each run is merged, runs in parallel.
        let mut raw = std::mem::take(&mut self.edges);
        raw.par_sort_unstable_by_key(|e| (e.kind, rank[e.from as usize], rank[e.to as usize]));
        let same = |a: &RawEdge, b: &RawEdge| a.kind == b.kind && a.from == b.from && a.to == b.to;
        let mut runs: Vec<usize> = (0..raw.len())
            .filter(|&i| i == 0 || !same(&raw[i - 1], &raw[i]))
            .collect();
        runs.push(raw.len());
        let nodes_ref = &self.nodes;
        let raw_ref = &raw;
        let edges: Vec<Edge> = runs
            .par_windows(2)
            .map(|w| {
                let run = &raw_ref[w[0]..w[1]];
                let mut lines: Vec<u32> = run.iter().map(|e| e.line).filter(|&l| l > 0).collect();
                lines.sort_unstable();
                lines.dedup();
                let first = run[0];
                Edge {
                    kind: first.kind,
                    from: nodes_ref[first.from as usize].id.clone(),
                    to: nodes_ref[first.to as usize].id.clone(),
                    lines,
                    confidence: run.iter().fold(0.0, |c, e| c.max(e.confidence)),
                }
            })
            .collect();
        free_in_background((raw, runs));
        let mut slots: Vec<Option<Node>> = self.nodes.into_iter().map(Some).collect();
        let nodes: Vec<Node> = order
            .iter()
            .map(|&i| slots[i].take().expect("each node is placed once"))
            .collect();
        CodeGraph {
            nodes,
            edges,
            stats: self.stats,
        }
    }
}

/// `f(a + sep + b)`, the string built in a buffer of the thread's rather than allocated (lookups of a qualified
/// name run once per reference).
fn joined<R>(a: &str, sep: &str, b: &str, f: impl FnOnce(&str) -> R) -> R {
    thread_local! {
        static BUF: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    BUF.with(|buf| {
        // A nested call (none today) gets a buffer of its own rather than a panic.
        let Ok(mut buf) = buf.try_borrow_mut() else {
            return f(&format!("{a}{sep}{b}"));
        };
        buf.clear();
        buf.push_str(a);
        buf.push_str(sep);
        buf.push_str(b);
        f(&buf)
    })
}

fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

/// Normalizes `a/./b/../c` to `a/c`; `None` when it climbs out of the repository.
fn normalize(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            s => out.push(s),
        }
    }
    Some(out.join("/"))
}
