//! C++: `#include` lines and the names of function definitions, which sit inside declarators.

use compact_str::CompactString;
use tree_sitter::Node;

use super::{LangSpec, QualifiedName, text, unquote};
use crate::extract::facts::Import;

pub(super) static SPEC: LangSpec = LangSpec {
    language: nanodex_grammars::cpp,
    query_src: include_str!("tags.scm"),
    imports,
    def_name: function_name,
    scope_sep: "::",
    self_words: &["this"],
};

/// Reads `#include "x.h"` / `#include <x>` (and C++ `using a::b;` as a binding of `b`).
pub(super) fn imports(node: Node<'_>, src: &str, out: &mut Vec<Import>) {
    let line = node.start_position().row as u32 + 1;
    match node.kind() {
        "preproc_include" => {
            let Some(path) = node.child_by_field_name("path") else {
                return;
            };
            let system = path.kind() == "system_lib_string";
            let module = unquote(text(path, src)).to_string();
            if !module.is_empty() {
                out.push(Import {
                    module: module.into(),
                    member: None,
                    alias: None,
                    level: 0,
                    wildcard: false,
                    system,
                    line,
                });
            }
        }
        "using_declaration" => {
            let mut cursor = node.walk();
            let is_namespace = node.children(&mut cursor).any(|c| c.kind() == "namespace");
            let Some(target) = node.named_child(node.named_child_count().saturating_sub(1) as u32)
            else {
                return;
            };
            let path = text(target, src);
            match (is_namespace, path.rsplit_once("::")) {
                (true, _) => out.push(Import {
                    module: path.into(),
                    member: None,
                    alias: None,
                    level: 0,
                    wildcard: true,
                    system: true,
                    line,
                }),
                (false, Some((module, member))) => out.push(Import {
                    module: module.into(),
                    member: Some(member.into()),
                    alias: None,
                    level: 0,
                    wildcard: false,
                    system: true,
                    line,
                }),
                (false, None) => {}
            }
        }
        _ => {}
    }
}

/// Name and explicit qualifier of a `function_definition` (`void ns::Foo::bar() {}` → `bar`, `[ns, Foo]`).
pub(super) fn function_name(node: Node<'_>, src: &str) -> Option<QualifiedName> {
    let mut decl = node.child_by_field_name("declarator")?;
    // Walk through pointer / reference / parenthesized declarators down to the function declarator.
    for _ in 0..16 {
        if decl.kind() == "function_declarator" {
            let name = decl.child_by_field_name("declarator")?;
            let full = text(name, src);
            let full = full.split('<').next().unwrap_or(full);
            let mut parts: Vec<CompactString> = full
                .split("::")
                .map(|p| CompactString::new(p.trim()))
                .collect();
            let last = parts.pop()?;
            if last.is_empty() {
                return None;
            }
            return Some((last, parts));
        }
        decl = decl
            .child_by_field_name("declarator")
            .or_else(|| decl.named_child(0))?;
    }
    None
}
