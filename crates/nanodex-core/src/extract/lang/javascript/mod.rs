//! JavaScript: ES module imports and CommonJS `require`.

use tree_sitter::Node;

use super::{LangSpec, name_field, text, unquote};
use crate::extract::facts::Import;

pub(super) static SPEC: LangSpec = LangSpec {
    language: nanodex_grammars::javascript,
    query_src: include_str!("tags.scm"),
    imports,
    def_name: name_field,
    scope_sep: ".",
    self_words: &["this", "super"],
};

/// `import d, {a as b} from "m"`, `import * as ns from "m"`, `const x = require("m")` (shared with TypeScript).
pub(super) fn imports(node: Node<'_>, src: &str, out: &mut Vec<Import>) {
    let line = node.start_position().row as u32 + 1;
    let import = |module: &str, member: Option<String>, alias: Option<String>| Import {
        module: module.into(),
        member: member.map(Into::into),
        alias: alias.map(Into::into),
        level: 0,
        wildcard: false,
        system: false,
        line,
    };
    if node.kind() == "variable_declarator" {
        let module = node
            .child_by_field_name("value")
            .and_then(|call| call.child_by_field_name("arguments"))
            .and_then(|args| args.named_child(0))
            .map(|s| unquote(text(s, src)).to_string());
        let alias = node
            .child_by_field_name("name")
            .filter(|n| n.kind() == "identifier");
        if let Some(module) = module {
            out.push(import(
                &module,
                None,
                alias.map(|n| text(n, src).to_string()),
            ));
        }
        return;
    }
    let Some(source) = node.child_by_field_name("source") else {
        return;
    };
    let module = unquote(text(source, src)).to_string();
    let mut cursor = node.walk();
    let clause = node
        .children(&mut cursor)
        .find(|c| c.kind() == "import_clause");
    let Some(clause) = clause else {
        out.push(import(&module, None, None)); // `import "side-effect";`
        return;
    };
    let mut walk = clause.walk();
    for part in clause.named_children(&mut walk) {
        match part.kind() {
            "identifier" => out.push(import(
                &module,
                Some("default".into()),
                Some(text(part, src).to_string()),
            )),
            "namespace_import" => {
                let alias = part.named_child(0).map(|n| text(n, src).to_string());
                out.push(import(&module, None, alias));
            }
            "named_imports" => {
                let mut specs = part.walk();
                for spec in part
                    .named_children(&mut specs)
                    .filter(|s| s.kind() == "import_specifier")
                {
                    let name = spec
                        .child_by_field_name("name")
                        .map(|n| unquote(text(n, src)).to_string());
                    let alias = spec
                        .child_by_field_name("alias")
                        .map(|n| text(n, src).to_string());
                    if let Some(name) = name {
                        out.push(import(&module, Some(name), alias));
                    }
                }
            }
            _ => {}
        }
    }
}
