//! TypeScript (and TSX): the JavaScript import rules on the TypeScript grammar.

use super::{LangSpec, name_field};

pub(super) static SPEC: LangSpec = LangSpec {
    language: nanodex_grammars::tsx,
    query_src: include_str!("tags.scm"),
    imports: super::javascript::imports,
    def_name: name_field,
    scope_sep: ".",
    self_words: &["this", "super"],
};
