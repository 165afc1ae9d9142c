//! Java: `import a.b.C;`, `import a.b.*;`, `import static a.b.C.m;`.

use tree_sitter::Node;

use super::{LangSpec, name_field, text};
use crate::extract::facts::Import;

pub(super) static SPEC: LangSpec = LangSpec {
    language: nanodex_grammars::java,
    query_src: include_str!("tags.scm"),
    imports,
    def_name: name_field,
    scope_sep: ".",
    self_words: &["this", "super"],
};

fn imports(node: Node<'_>, src: &str, out: &mut Vec<Import>) {
    let line = node.start_position().row as u32 + 1;
    let mut cursor = node.walk();
    let mut path = None;
    let mut wildcard = false;
    for child in node.children(&mut cursor) {
        match child.kind() {
            "scoped_identifier" | "identifier" => path = Some(text(child, src).to_string()),
            "asterisk" => wildcard = true,
            _ => {}
        }
    }
    let Some(path) = path else { return };
    if wildcard {
        out.push(Import {
            module: path.into(),
            member: None,
            alias: None,
            level: 0,
            wildcard: true,
            system: false,
            line,
        });
        return;
    }
    // `import a.b.C;` binds `C`; `import static a.b.C.m;` binds `m` from class `a.b.C`.
    let (module, member) = match path.rsplit_once('.') {
        Some((module, member)) => (module.to_string(), member.to_string()),
        None => (String::new(), path.clone()),
    };
    out.push(Import {
        module: module.into(),
        member: Some(member.into()),
        alias: None,
        level: 0,
        wildcard: false,
        system: false,
        line,
    });
}
