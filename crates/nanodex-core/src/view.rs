//! The read model front ends draw: the code graph condensed to packages, modules, capabilities and module-level
//! edges ([`GraphView`]), one node's details for a side panel ([`NodeView`]), and symbol lookup by name
//! ([`find_symbols`]). Pure functions of a [`CodeGraph`] and the brain's nodes; no I/O except
//! [`read_excerpt`], which reads a source excerpt inside the repository and redacts secrets.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::brain::{BrainNode, BrainType, inside};
use crate::extract::{CodeGraph, EdgeKind, Meta, Node, NodeType};
use crate::secrets::Scanner;

/// A package (directory, Java package, C++ namespace): a compound node holding modules and packages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewPackage {
    /// Code node id (`package:…`).
    pub id: String,
    /// Short name.
    pub name: String,
    /// Qualified name.
    pub qname: String,
    /// Enclosing package, if any (top-level packages have none).
    pub parent: Option<String>,
    /// Modules and packages directly inside, in all.
    pub children: u32,
}

/// A module (one source file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewModule {
    /// Code node id (`module:…`).
    pub id: String,
    /// File name.
    pub name: String,
    /// Qualified name.
    pub qname: String,
    /// Repository-relative path.
    pub path: String,
    /// Language.
    pub lang: String,
    /// Enclosing package, if any.
    pub package: Option<String>,
    /// Classes defined in the file.
    pub classes: u32,
    /// Functions and methods defined in the file.
    pub functions: u32,
    /// Whether the file is a test.
    pub is_test: bool,
    /// Whether tree-sitter reported syntax errors in it.
    pub parse_error: bool,
}

/// A capability of the brain, attached to the module of the first function implementing it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewCapability {
    /// Brain node id (`capability_…`).
    pub id: String,
    /// Name.
    pub name: String,
    /// Module it lives in.
    pub module: String,
    /// Code nodes implementing it.
    pub refs: Vec<String>,
}

/// An imported or declared package outside the repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewExternal {
    /// Code node id (`external:…`).
    pub id: String,
    /// Name.
    pub name: String,
}

/// Code edges of one kind between two view nodes (modules, packages or externals), counted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewEdge {
    /// Source view node.
    pub source: String,
    /// Target view node.
    pub target: String,
    /// Edge kind (`imports`, `calls`, `extends`, `implements`, `throws`, `depends_on`).
    pub kind: String,
    /// Number of code edges folded into this one.
    pub weight: u32,
}

/// The whole graph as a front end shows it; the front end folds modules into collapsed packages itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GraphView {
    /// Packages, sorted by qualified name.
    pub packages: Vec<ViewPackage>,
    /// Modules, sorted by path.
    pub modules: Vec<ViewModule>,
    /// Capabilities, sorted by name.
    pub capabilities: Vec<ViewCapability>,
    /// External packages, sorted by name.
    pub externals: Vec<ViewExternal>,
    /// Module-level edges, sorted by (kind, source, target); self-loops dropped.
    pub edges: Vec<ViewEdge>,
    /// Code nodes by type, in all.
    pub counts: BTreeMap<String, u64>,
}

/// A neighbour in a [`NodeView`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Link {
    /// Code node id.
    pub id: String,
    /// Node type.
    #[serde(rename = "type")]
    pub ty: String,
    /// Name.
    pub name: String,
    /// Qualified name.
    pub qname: String,
    /// File.
    pub path: String,
    /// First line of the neighbour.
    pub line: u32,
    /// Lines (in the source node's file) where the relation is written.
    pub sites: Vec<u32>,
}

/// Neighbours related by one edge kind in one direction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Relation {
    /// Edge kind.
    pub kind: String,
    /// `out` (this node → them) or `in` (them → this node).
    pub direction: String,
    /// The neighbours, sorted by qualified name.
    pub links: Vec<Link>,
}

/// Everything a side panel shows about one node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    /// Code node id, or brain node id for a capability.
    pub id: String,
    /// Type (`function`, `class`, `module`, `package`, `external`, `capability`, ...).
    #[serde(rename = "type")]
    pub ty: String,
    /// Name.
    pub name: String,
    /// Qualified name.
    pub qname: String,
    /// File.
    pub path: String,
    /// First line.
    pub line: u32,
    /// Last line.
    pub end_line: u32,
    /// Language.
    pub lang: String,
    /// Signature.
    pub signature: String,
    /// First paragraph of the docstring.
    pub doc: String,
    /// The brain's summary, when there is one.
    pub summary: Option<String>,
    /// The module holding the node (what the graph focuses).
    pub module: Option<String>,
    /// Functions calling this node.
    pub callers: Vec<Link>,
    /// Functions and classes this node calls.
    pub callees: Vec<Link>,
    /// All other relations (imports, extends, throws, members ...).
    pub relations: Vec<Relation>,
    /// Decorators, visibility, is_test ...
    pub meta: Meta,
}

/// A symbol found by name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SymbolHit {
    /// Code node id.
    pub id: String,
    /// Type.
    #[serde(rename = "type")]
    pub ty: String,
    /// Name.
    pub name: String,
    /// Qualified name.
    pub qname: String,
    /// File.
    pub path: String,
    /// Line.
    pub line: u32,
    /// Module holding it.
    pub module: Option<String>,
}

/// Source lines of a node, secrets redacted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Excerpt {
    /// First line shown (1-based).
    pub start: u32,
    /// The lines, joined with `\n`.
    pub text: String,
    /// Whether the node continues past the last line shown.
    pub truncated: bool,
    /// Secrets replaced by a placeholder.
    pub redacted: usize,
}

/// Indexes over a code graph that the view functions share.
pub struct GraphIndex<'a> {
    graph: &'a CodeGraph,
    by_id: HashMap<String, usize>,
    module_of_path: HashMap<&'a str, usize>,
    parent: HashMap<String, String>,
}

impl<'a> GraphIndex<'a> {
    /// Indexes `graph`.
    pub fn new(graph: &'a CodeGraph) -> GraphIndex<'a> {
        let by_id = graph
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.id.to_string(), i))
            .collect();
        let module_of_path = graph
            .nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.id.ty == NodeType::Module)
            .map(|(i, n)| (n.path.as_str(), i))
            .collect();
        let parent = graph
            .edges
            .iter()
            .filter(|e| e.kind == EdgeKind::DefinedIn)
            .map(|e| (e.from.to_string(), e.to.to_string()))
            .collect();
        GraphIndex {
            graph,
            by_id,
            module_of_path,
            parent,
        }
    }

    /// The node with this id.
    pub fn node(&self, id: &str) -> Option<&'a Node> {
        self.by_id.get(id).map(|&i| &self.graph.nodes[i])
    }

    /// The module node holding a node (itself for a module); none for packages, externals, the repository.
    pub fn module_of(&self, node: &Node) -> Option<&'a Node> {
        match node.id.ty {
            NodeType::Module => self.node(&node.id.to_string()),
            NodeType::Class | NodeType::Function => self
                .module_of_path
                .get(node.path.as_str())
                .map(|&i| &self.graph.nodes[i]),
            _ => None,
        }
    }

    /// The view node an edge end folds into: its module, or the package / external itself.
    fn view_end(&self, id: &str) -> Option<String> {
        let node = self.node(id)?;
        match node.id.ty {
            NodeType::Package | NodeType::External => Some(id.to_string()),
            NodeType::Repository => None,
            _ => self.module_of(node).map(|m| m.id.to_string()),
        }
    }

    /// The enclosing package of a module or package, if it has one.
    fn package_of(&self, id: &str) -> Option<String> {
        let p = self.parent.get(id)?;
        p.starts_with("package:").then(|| p.clone())
    }
}

fn bool_meta(node: &Node, key: &str) -> bool {
    node.meta
        .get(key)
        .and_then(|v| v.as_bool())
        .unwrap_or(false)
}

fn link(node: &Node, sites: &[u32]) -> Link {
    Link {
        id: node.id.to_string(),
        ty: node.id.ty.as_str().to_string(),
        name: node.name.clone(),
        qname: node.qname.clone(),
        path: node.path.clone(),
        line: node.start_line,
        sites: sites.to_vec(),
    }
}

/// Condenses `graph` (and the brain's capabilities, when built) into the view front ends draw.
pub fn build(graph: &CodeGraph, brain: &[BrainNode]) -> GraphView {
    let index = GraphIndex::new(graph);
    let mut view = GraphView::default();
    let mut children: HashMap<String, u32> = HashMap::new();
    let mut members: HashMap<&str, (u32, u32)> = HashMap::new();
    for node in &graph.nodes {
        *view
            .counts
            .entry(node.id.ty.as_str().to_string())
            .or_default() += 1;
        match node.id.ty {
            NodeType::Class | NodeType::Function => {
                let entry = members.entry(node.path.as_str()).or_default();
                if node.id.ty == NodeType::Class {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                }
            }
            NodeType::Module | NodeType::Package => {
                if let Some(p) = index.package_of(&node.id.to_string()) {
                    *children.entry(p).or_default() += 1;
                }
            }
            _ => {}
        }
    }
    for node in &graph.nodes {
        let id = node.id.to_string();
        match node.id.ty {
            NodeType::Package => view.packages.push(ViewPackage {
                parent: index.package_of(&id),
                children: children.get(&id).copied().unwrap_or(0),
                id,
                name: node.name.clone(),
                qname: node.qname.clone(),
            }),
            NodeType::Module => {
                let (classes, functions) =
                    members.get(node.path.as_str()).copied().unwrap_or_default();
                view.modules.push(ViewModule {
                    package: index.package_of(&id),
                    id,
                    name: node.name.clone(),
                    qname: node.qname.clone(),
                    path: node.path.clone(),
                    lang: node
                        .lang
                        .map(|l| l.as_str().to_string())
                        .unwrap_or_default(),
                    classes,
                    functions,
                    is_test: bool_meta(node, "is_test"),
                    parse_error: bool_meta(node, "parse_error"),
                })
            }
            NodeType::External => view.externals.push(ViewExternal {
                id,
                name: node.name.clone(),
            }),
            _ => {}
        }
    }
    let mut folded: BTreeMap<(&'static str, String, String), u32> = BTreeMap::new();
    for edge in &graph.edges {
        if edge.kind == EdgeKind::DefinedIn {
            continue;
        }
        let (Some(s), Some(t)) = (
            index.view_end(&edge.from.to_string()),
            index.view_end(&edge.to.to_string()),
        ) else {
            continue;
        };
        if s != t {
            *folded.entry((edge.kind.as_str(), s, t)).or_default() += 1;
        }
    }
    view.edges = folded
        .into_iter()
        .map(|((kind, source, target), weight)| ViewEdge {
            source,
            target,
            kind: kind.to_string(),
            weight,
        })
        .collect();
    view.capabilities = brain
        .iter()
        .filter(|b| b.ty == BrainType::Capability)
        .filter_map(|b| {
            let module = b
                .refs
                .iter()
                .filter_map(|r| index.node(r))
                .find_map(|n| index.module_of(n))?;
            Some(ViewCapability {
                id: b.id.clone(),
                name: b.name.clone(),
                module: module.id.to_string(),
                refs: b.refs.clone(),
            })
        })
        .collect();
    view.packages.sort_by(|a, b| a.qname.cmp(&b.qname));
    view.modules.sort_by(|a, b| a.path.cmp(&b.path));
    view.capabilities
        .sort_by(|a, b| (&a.name, &a.id).cmp(&(&b.name, &b.id)));
    view.externals.sort_by(|a, b| a.name.cmp(&b.name));
    view
}

/// The side-panel view of node `id`: a code node id, or a brain node id (a capability, an error ...).
pub fn node_view(index: &GraphIndex, brain: &[BrainNode], id: &str) -> Option<NodeView> {
    if let Some(b) = brain.iter().find(|b| b.id == id) {
        return Some(brain_node_view(index, b));
    }
    let node = index.node(id)?;
    let summary = brain
        .iter()
        .find(|b| b.refs.first().map(String::as_str) == Some(id))
        .map(|b| b.summary.clone());
    let mut view = NodeView {
        id: id.to_string(),
        ty: node.id.ty.as_str().to_string(),
        name: node.name.clone(),
        qname: node.qname.clone(),
        path: node.path.clone(),
        line: node.start_line,
        end_line: node.end_line,
        lang: node
            .lang
            .map(|l| l.as_str().to_string())
            .unwrap_or_default(),
        signature: node.signature.clone(),
        doc: node.doc.clone(),
        summary,
        module: index.module_of(node).map(|m| m.id.to_string()),
        callers: vec![],
        callees: vec![],
        relations: vec![],
        meta: node.meta.clone(),
    };
    let mut groups: BTreeMap<(&'static str, &'static str), Vec<Link>> = BTreeMap::new();
    for edge in &index.graph.edges {
        let (other, direction) = if edge.from == node.id {
            (&edge.to, "out")
        } else if edge.to == node.id {
            (&edge.from, "in")
        } else {
            continue;
        };
        let Some(other) = index.node(&other.to_string()) else {
            continue;
        };
        let l = link(other, &edge.lines);
        match (edge.kind, direction) {
            (EdgeKind::Calls, "in") => view.callers.push(l),
            (EdgeKind::Calls, _) => view.callees.push(l),
            (kind, dir) => groups.entry((kind.as_str(), dir)).or_default().push(l),
        }
    }
    view.callers.sort_by(|a, b| a.qname.cmp(&b.qname));
    view.callees.sort_by(|a, b| a.qname.cmp(&b.qname));
    view.relations = groups
        .into_iter()
        .map(|((kind, direction), mut links)| {
            links.sort_by(|a, b| a.qname.cmp(&b.qname));
            Relation {
                kind: kind.to_string(),
                direction: direction.to_string(),
                links,
            }
        })
        .collect();
    Some(view)
}

fn brain_node_view(index: &GraphIndex, b: &BrainNode) -> NodeView {
    let links: Vec<Link> = b
        .refs
        .iter()
        .filter_map(|r| index.node(r))
        .map(|n| link(n, &[]))
        .collect();
    let primary = b.refs.first().and_then(|r| index.node(r));
    NodeView {
        id: b.id.clone(),
        ty: b.ty.as_str().to_string(),
        name: b.name.clone(),
        qname: b.qname.clone(),
        path: b.path.clone(),
        line: b.line,
        end_line: primary.map(|n| n.end_line).unwrap_or(b.line),
        lang: primary
            .and_then(|n| n.lang)
            .map(|l| l.as_str().to_string())
            .unwrap_or_default(),
        signature: primary.map(|n| n.signature.clone()).unwrap_or_default(),
        doc: String::new(),
        summary: Some(b.summary.clone()),
        module: primary
            .and_then(|n| index.module_of(n))
            .map(|m| m.id.to_string()),
        callers: vec![],
        callees: vec![],
        relations: vec![Relation {
            kind: "refs".into(),
            direction: "out".into(),
            links,
        }],
        meta: Meta::default(),
    }
}

/// Symbols whose name matches `query`: exact name first, then name prefix, then qualified-name substring;
/// functions and classes before modules and packages; at most `limit`.
pub fn find_symbols(index: &GraphIndex, query: &str, limit: usize) -> Vec<SymbolHit> {
    let q = query.trim().to_lowercase();
    if q.is_empty() {
        return vec![];
    }
    let mut ranked: Vec<(u8, u8, &Node)> = index
        .graph
        .nodes
        .iter()
        .filter(|n| n.id.ty != NodeType::Repository)
        .filter_map(|n| {
            let name = n.name.to_lowercase();
            let rank = if name == q || n.qname.to_lowercase() == q {
                0
            } else if name.starts_with(&q) {
                1
            } else if n.qname.to_lowercase().contains(&q) {
                2
            } else {
                return None;
            };
            let ty = match n.id.ty {
                NodeType::Function | NodeType::Class => 0,
                NodeType::Module => 1,
                _ => 2,
            };
            Some((rank, ty, n))
        })
        .collect();
    ranked.sort_by(|a, b| {
        (a.0, a.1, a.2.qname.len(), &a.2.qname).cmp(&(b.0, b.1, b.2.qname.len(), &b.2.qname))
    });
    ranked
        .into_iter()
        .take(limit)
        .map(|(_, _, n)| SymbolHit {
            id: n.id.to_string(),
            ty: n.id.ty.as_str().to_string(),
            name: n.name.clone(),
            qname: n.qname.clone(),
            path: n.path.clone(),
            line: n.start_line,
            module: index.module_of(n).map(|m| m.id.to_string()),
        })
        .collect()
}

/// Cuts lines `start..=end` (1-based) out of `source`, at most `max_lines`, and redacts secrets.
pub fn excerpt(source: &str, path: &str, start: u32, end: u32, max_lines: u32) -> Excerpt {
    let start = start.max(1);
    let end = end.max(start);
    let last = end.min(start + max_lines.max(1) - 1);
    let text: Vec<&str> = source
        .lines()
        .skip(start as usize - 1)
        .take((last - start + 1) as usize)
        .collect();
    let (text, findings) = Scanner::default_rules().redact(&text.join("\n"), path);
    Excerpt {
        start,
        text,
        truncated: last < end,
        redacted: findings.len(),
    }
}

/// Reads the excerpt of a node from the repository at `root`; none when the path would leave the repository,
/// or the file is gone or unreadable.
pub fn read_excerpt(root: &Path, node: &NodeView, max_lines: u32) -> Option<Excerpt> {
    let full = inside(root, &node.path)?;
    let canon_root = std::fs::canonicalize(root).ok()?;
    let canon = std::fs::canonicalize(&full).ok()?;
    if !canon.starts_with(&canon_root) {
        return None;
    }
    let bytes = std::fs::read(&canon).ok()?;
    let source = String::from_utf8_lossy(&bytes);
    let (start, end) = if node.ty == "module" {
        (1, max_lines)
    } else {
        (node.line, node.end_line)
    };
    Some(excerpt(&source, &node.path, start, end, max_lines))
}

#[cfg(test)]
mod tests;
