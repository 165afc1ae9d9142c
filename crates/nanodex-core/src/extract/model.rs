//! The code graph: the typed artifact that extraction hands to the graph store.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::lang::Lang;

/// Type of a graph node; each is its own SurrealDB table so traversals read `->calls->function`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeType {
    /// The repository root.
    Repository,
    /// A directory, Java package or C++ namespace.
    Package,
    /// A source file.
    Module,
    /// A class, interface, struct, enum or trait.
    Class,
    /// A function, method or constructor.
    Function,
    /// Something outside the repository: an imported package, a header, a builtin type.
    External,
}

impl NodeType {
    /// All node types, in table order.
    pub const ALL: [NodeType; 6] = [
        NodeType::Repository,
        NodeType::Package,
        NodeType::Module,
        NodeType::Class,
        NodeType::Function,
        NodeType::External,
    ];

    /// Table name.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeType::Repository => "repository",
            NodeType::Package => "package",
            NodeType::Module => "module",
            NodeType::Class => "class",
            NodeType::Function => "function",
            NodeType::External => "external",
        }
    }

    /// Parses a table name.
    pub fn from_name(name: &str) -> Option<NodeType> {
        NodeType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// Kind of a graph edge; each is a SurrealDB relation table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeKind {
    /// Symbol → enclosing class / module; module → package; package → package / repository.
    DefinedIn,
    /// Module → module or external.
    Imports,
    /// Function (or module / class body) → function or class.
    Calls,
    /// Class → base class.
    Extends,
    /// Class → implemented interface.
    Implements,
    /// Function → exception class.
    Throws,
    /// Repository / package → external dependency declared in a manifest.
    DependsOn,
}

impl EdgeKind {
    /// All edge kinds, in table order.
    pub const ALL: [EdgeKind; 7] = [
        EdgeKind::DefinedIn,
        EdgeKind::Imports,
        EdgeKind::Calls,
        EdgeKind::Extends,
        EdgeKind::Implements,
        EdgeKind::Throws,
        EdgeKind::DependsOn,
    ];

    /// Table name.
    pub fn as_str(self) -> &'static str {
        match self {
            EdgeKind::DefinedIn => "defined_in",
            EdgeKind::Imports => "imports",
            EdgeKind::Calls => "calls",
            EdgeKind::Extends => "extends",
            EdgeKind::Implements => "implements",
            EdgeKind::Throws => "throws",
            EdgeKind::DependsOn => "depends_on",
        }
    }

    /// The node types an edge of this kind may start at and end at. The store's schema declares them (its
    /// relation tables' `IN` and `OUT`), and [`EdgeKind::accepts`] checks a graph against them before a bulk
    /// write that skips the store's own checks.
    pub fn ends(self) -> (&'static [NodeType], &'static [NodeType]) {
        use NodeType::*;
        match self {
            EdgeKind::DefinedIn => (
                &[Class, Function, Module, Package],
                &[Class, Function, Module, Package, Repository],
            ),
            EdgeKind::Imports => (&[Module], &[Module, External]),
            EdgeKind::Calls => (&[Function, Class, Module], &[Function, Class]),
            EdgeKind::Extends | EdgeKind::Implements => (&[Class], &[Class, External]),
            EdgeKind::Throws => (&[Function, Class, Module], &[Class, External]),
            EdgeKind::DependsOn => (&[Repository, Package], &[External]),
        }
    }

    /// Whether an edge of this kind may go from a `from` node to a `to` node ([`EdgeKind::ends`]).
    pub fn accepts(self, from: NodeType, to: NodeType) -> bool {
        let (ins, outs) = self.ends();
        ins.contains(&from) && outs.contains(&to)
    }
}

/// Reference to a node: its table and key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeRef {
    /// Table.
    pub ty: NodeType,
    /// Key within the table (stable hash, 16 hex digits: stored inline, so cloning a reference allocates nothing).
    pub key: CompactString,
}

impl std::fmt::Display for NodeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.ty.as_str(), self.key)
    }
}

/// One node of the code graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Table and stable key.
    pub id: NodeRef,
    /// Simple name.
    pub name: String,
    /// Qualified name (`json.decoder.JSONDecoder.decode`, `geo::Circle::area`).
    pub qname: String,
    /// Path relative to the repository root (`/`-separated); empty for repository and externals.
    pub path: String,
    /// Language, when the node comes from a source file.
    pub lang: Option<Lang>,
    /// First line, 1-based (0 when not applicable).
    pub start_line: u32,
    /// Last line, 1-based.
    pub end_line: u32,
    /// Header text (`def loads(s, *, cls=None, ...)`).
    pub signature: String,
    /// First paragraph of the docstring or comment.
    pub doc: String,
    /// Everything else: kind, decorators, visibility, is_test, parse_error ... (sorted keys).
    pub meta: Meta,
}

/// A node's `meta`: a map with sorted keys, held as one vector of (key, value) pairs with inline keys. Nodes have
/// two to six entries; a `BTreeMap` gave each node a 600-byte leaf and a heap string per key, a fifth of a JDK
/// run's memory faults. Serialized exactly as a map with sorted keys (the same bytes as the `BTreeMap` it
/// replaces).
#[derive(Clone, Default, PartialEq)]
pub struct Meta(Vec<(CompactString, serde_json::Value)>);

impl Meta {
    /// An empty map with room for `n` entries.
    pub fn with_capacity(n: usize) -> Self {
        Self(Vec::with_capacity(n))
    }

    fn position(&self, key: &str) -> Result<usize, usize> {
        self.0.binary_search_by(|(k, _)| k.as_str().cmp(key))
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&serde_json::Value> {
        self.position(key).ok().map(|i| &self.0[i].1)
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.position(key).is_ok()
    }

    /// Sets `key` to `value`; returns the value it replaced.
    pub fn insert(
        &mut self,
        key: impl AsRef<str>,
        value: serde_json::Value,
    ) -> Option<serde_json::Value> {
        let key = key.as_ref();
        match self.position(key) {
            Ok(i) => Some(std::mem::replace(&mut self.0[i].1, value)),
            Err(i) => {
                self.0.insert(i, (CompactString::new(key), value));
                None
            }
        }
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<serde_json::Value> {
        self.position(key).ok().map(|i| self.0.remove(i).1)
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &serde_json::Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: AsRef<str>> FromIterator<(K, serde_json::Value)> for Meta {
    fn from_iter<I: IntoIterator<Item = (K, serde_json::Value)>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut meta = Self::with_capacity(iter.size_hint().0);
        for (k, v) in iter {
            meta.insert(k, v);
        }
        meta
    }
}

impl std::fmt::Debug for Meta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Meta {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k.as_str(), v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Meta {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = Meta;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut access: A,
            ) -> Result<Meta, A::Error> {
                let mut meta = Meta::with_capacity(access.size_hint().unwrap_or(0));
                while let Some((k, v)) = access.next_entry::<CompactString, serde_json::Value>()? {
                    // A repeated key keeps its last value, as a map's would.
                    meta.insert(k, v);
                }
                Ok(meta)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// One edge of the code graph, deduplicated per (kind, from, to).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edge {
    /// Relation table.
    pub kind: EdgeKind,
    /// Source node.
    pub from: NodeRef,
    /// Target node.
    pub to: NodeRef,
    /// Lines (1-based, in the source node's file) where the relation is written; sorted, deduplicated.
    pub lines: Vec<u32>,
    /// How sure resolution is that `to` is the right target (1.0 for structural edges).
    pub confidence: f32,
}

impl Edge {
    /// Stable key of the edge record.
    pub fn key(&self) -> String {
        self.compact_key().into()
    }

    /// [`Edge::key`] as an inline string (no allocation).
    pub(crate) fn compact_key(&self) -> compact_str::CompactString {
        // The stable key of (kind, `from` as `table:key`, `to` as `table:key`).
        super::compact_key_of_pieces(&[
            &[self.kind.as_str()],
            &[self.from.ty.as_str(), ":", &self.from.key],
            &[self.to.ty.as_str(), ":", &self.to.key],
        ])
    }
}

/// Counts of what resolution could not resolve, per reference kind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ResolveStats {
    /// Call / instantiation references resolved to an in-repo node.
    pub calls_resolved: u64,
    /// Call / instantiation references left unresolved (library calls, dynamic dispatch ...).
    pub calls_unresolved: u64,
    /// Type references (extends, implements, throws) that became `external` nodes.
    pub types_external: u64,
    /// Import statements that point outside the repository.
    pub imports_external: u64,
}

/// The whole graph of one repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CodeGraph {
    /// Nodes, sorted by id.
    pub nodes: Vec<Node>,
    /// Edges, sorted by (kind, from, to).
    pub edges: Vec<Edge>,
    /// Resolution counters.
    pub stats: ResolveStats,
}
