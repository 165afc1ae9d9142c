//! Per-file facts: what one source file says, before any cross-file resolution.
//!
//! `FileFacts` is the pure output of `parse::parse_file` and is cached by content hash, so an
//! incremental run re-parses only changed files and still resolves the whole repository again.

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use super::lang::Lang;
use super::walk::FileStat;

/// Everything extracted from one file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FileFacts {
    /// Definitions in source order; `Def::parent` indexes into this list.
    pub defs: Vec<Def>,
    /// References (calls, throws, base types) in source order.
    pub refs: Vec<Ref>,
    /// Import / include statements.
    pub imports: Vec<Import>,
    /// Variables whose type is visible in the code (`x = Foo()`, `Foo x = ...`).
    pub locals: Vec<Local>,
    /// Configuration keys read by a literal name (`os.environ["HOME"]`, `System.getProperty("a.b")`).
    pub config: Vec<ConfigRead>,
    /// Declared package (`package a.b;` in Java).
    pub package: Option<String>,
    /// First paragraph of the module docstring or header comment.
    pub doc: Option<String>,
    /// Lines (1-based) where tree-sitter reported ERROR or MISSING nodes; empty when the parse was clean.
    pub error_lines: Vec<u32>,
    /// Whether the tree has any error at all (`error_lines` is capped).
    pub has_error: bool,
    /// Number of lines in the file.
    pub n_lines: u32,
}

/// Kind of a definition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum DefKind {
    /// A class.
    Class,
    /// An interface (Java, TypeScript).
    Interface,
    /// A struct or union (C, C++).
    Struct,
    /// An enum.
    Enum,
    /// A trait-like type (Java annotation type, TS abstract class).
    Trait,
    /// A free function.
    Function,
    /// A function defined inside a class.
    Method,
    /// A constructor.
    Constructor,
    /// A namespace (C++); becomes a `package` node.
    Namespace,
}

impl DefKind {
    /// Whether this definition becomes a `class` node.
    pub fn is_type(self) -> bool {
        matches!(
            self,
            Self::Class | Self::Interface | Self::Struct | Self::Enum | Self::Trait
        )
    }
    /// Whether this definition becomes a `function` node.
    pub fn is_callable(self) -> bool {
        matches!(self, Self::Function | Self::Method | Self::Constructor)
    }
    /// Snake-case label, as stored in `meta.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Class => "class",
            Self::Interface => "interface",
            Self::Struct => "struct",
            Self::Enum => "enum",
            Self::Trait => "trait",
            Self::Function => "function",
            Self::Method => "method",
            Self::Constructor => "constructor",
            Self::Namespace => "namespace",
        }
    }
}

/// One definition (class, function, namespace ...).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Def {
    /// What it is.
    pub kind: DefKind,
    /// Simple name.
    pub name: CompactString,
    /// Explicit qualifier written in the name (`Foo` in C++ `void Foo::bar()`), split into segments.
    pub qualifier: Vec<CompactString>,
    /// Enclosing definition (index into `FileFacts::defs`).
    pub parent: Option<u32>,
    /// First line, 1-based.
    pub start_line: u32,
    /// Last line, 1-based.
    pub end_line: u32,
    /// Header text up to the body, whitespace collapsed.
    pub signature: String,
    /// First paragraph of the docstring or leading comment.
    pub doc: Option<String>,
    /// Decorators / annotations, as written (without `@`).
    pub decorators: Vec<CompactString>,
    /// `public`, `private`, `protected` or `package`, when the language says.
    pub visibility: Option<CompactString>,
    /// Whether the definition carries `static` / `@staticmethod` / `abstract` etc.
    pub modifiers: Vec<CompactString>,
}

/// Kind of a reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    /// A call `f()` / `x.f()`.
    Call,
    /// An instantiation `new X()`.
    New,
    /// `raise X` / `throw new X()` / `throws X`.
    Throw,
    /// A base class.
    Extends,
    /// An implemented interface.
    Implements,
}

/// One reference from inside a definition (or the module body) to a name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ref {
    /// What kind of use.
    pub kind: RefKind,
    /// The referenced simple name (`loads` in `json.loads()`).
    pub name: CompactString,
    /// Receiver / qualifier text before the name (`json` in `json.loads()`), if any.
    pub receiver: Option<CompactString>,
    /// Innermost enclosing definition (index into `FileFacts::defs`); `None` at module level.
    pub scope: Option<u32>,
    /// Line of the use, 1-based.
    pub line: u32,
}

/// What kind of configuration key a [`ConfigRead`] names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum ConfigKind {
    /// An environment variable (`os.environ`, `getenv`, `System.getenv`, `process.env`).
    Env,
    /// A Java system or `Properties` property (`System.getProperty`, `props.getProperty`, `Integer.getInteger`).
    Property,
}

impl ConfigKind {
    /// Snake-case label, as stored in `meta.config`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Env => "env",
            Self::Property => "property",
        }
    }
}

/// A configuration key the code reads (or sets) by a literal name.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct ConfigRead {
    /// Environment variable or property.
    pub kind: ConfigKind,
    /// The key as written, without quotes (`HOME`, `java.io.tmpdir`).
    pub key: CompactString,
    /// Innermost enclosing definition (index into `FileFacts::defs`); `None` at module level.
    pub scope: Option<u32>,
    /// Line of the read, 1-based.
    pub line: u32,
}

/// One imported name or module.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Import {
    /// Module path as written: dotted (`a.b`), a file path (`"foo.h"`, `./x`), or a package (`<vector>`).
    pub module: CompactString,
    /// Imported member (`loads` in `from json import loads`); `None` imports the module itself.
    pub member: Option<CompactString>,
    /// Local alias the import binds (`np` in `import numpy as np`); `None` binds the natural name.
    pub alias: Option<CompactString>,
    /// Python relative level (number of leading dots).
    pub level: u32,
    /// `from x import *`, `import a.b.*;`.
    pub wildcard: bool,
    /// `#include <...>`: search the system path, not the including file's directory.
    pub system: bool,
    /// Line, 1-based.
    pub line: u32,
}

/// A variable with a type that is visible in the code.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Local {
    /// Variable name (for `self.x = Foo()` this is `x`, with `member` set).
    pub name: CompactString,
    /// Type name as written (`Foo`, `pkg.Foo`, `ns::Foo`).
    pub type_name: CompactString,
    /// Scope that declares it (index into `FileFacts::defs`); `None` at module level.
    pub scope: Option<u32>,
    /// An attribute of the enclosing class (`self.x`, a Java field) rather than a plain local.
    pub member: bool,
}

impl FileFacts {
    /// Nearest enclosing type definition of `def_idx` (itself excluded).
    pub fn enclosing_type(&self, mut def_idx: u32) -> Option<u32> {
        while let Some(parent) = self.defs[def_idx as usize].parent {
            if self.defs[parent as usize].kind.is_type() {
                return Some(parent);
            }
            def_idx = parent;
        }
        None
    }
}

/// The language a file was parsed as, plus the file's facts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParsedFile {
    /// Path relative to the repository root, `/`-separated.
    pub path: String,
    /// Language.
    pub lang: Lang,
    /// Content hash (blake3, hex).
    pub hash: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether the bytes were not valid UTF-8 and were decoded lossily.
    pub invalid_utf8: bool,
    /// The file's stat when it was walked, if it was settled then (see [`FileStat`]): while the file keeps this
    /// stat, the next run reuses these facts without reading it.
    pub stat: Option<FileStat>,
    /// The facts.
    pub facts: FileFacts,
}
