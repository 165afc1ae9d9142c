//! Python: imports (`import a.b as c`, `from ..x import y`).

use tree_sitter::Node;

use super::{LangSpec, name_field, text};
use crate::extract::facts::Import;

pub(super) static SPEC: LangSpec = LangSpec {
    language: nanodex_grammars::python,
    query_src: include_str!("tags.scm"),
    imports,
    def_name: name_field,
    scope_sep: ".",
    self_words: &["self", "cls"],
};

fn imports(node: Node<'_>, src: &str, out: &mut Vec<Import>) {
    let line = node.start_position().row as u32 + 1;
    let mut cursor = node.walk();
    match node.kind() {
        "import_statement" => {
            for name in node.children_by_field_name("name", &mut cursor) {
                let (module, alias) = dotted_and_alias(name, src);
                out.push(Import {
                    module: module.into(),
                    member: None,
                    alias: alias.map(Into::into),
                    level: 0,
                    wildcard: false,
                    system: false,
                    line,
                });
            }
        }
        "import_from_statement" => {
            let Some(module_node) = node.child_by_field_name("module_name") else {
                return;
            };
            let (module, level) = if module_node.kind() == "relative_import" {
                let raw = text(module_node, src);
                let level = raw.chars().take_while(|c| *c == '.').count() as u32;
                (raw[level as usize..].trim().to_string(), level)
            } else {
                (text(module_node, src).to_string(), 0)
            };
            let mut any = false;
            for name in node.children_by_field_name("name", &mut cursor) {
                let (member, alias) = dotted_and_alias(name, src);
                any = true;
                out.push(Import {
                    module: module.as_str().into(),
                    member: Some(member.into()),
                    alias: alias.map(Into::into),
                    level,
                    wildcard: false,
                    system: false,
                    line,
                });
            }
            if !any {
                let mut walk = node.walk();
                if node
                    .children(&mut walk)
                    .any(|c| c.kind() == "wildcard_import")
                {
                    out.push(Import {
                        module: module.into(),
                        member: None,
                        alias: None,
                        level,
                        wildcard: true,
                        system: false,
                        line,
                    });
                }
            }
        }
        _ => {}
    }
}

fn dotted_and_alias(node: Node<'_>, src: &str) -> (String, Option<String>) {
    if node.kind() == "aliased_import" {
        let name = node
            .child_by_field_name("name")
            .map(|n| text(n, src))
            .unwrap_or("");
        let alias = node
            .child_by_field_name("alias")
            .map(|n| text(n, src).to_string());
        (name.to_string(), alias)
    } else {
        (text(node, src).to_string(), None)
    }
}
