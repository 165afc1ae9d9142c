//! C: the same include and declarator rules as C++ (its grammar names these nodes alike).

use super::LangSpec;

pub(super) static SPEC: LangSpec = LangSpec {
    language: nanodex_grammars::c,
    query_src: include_str!("tags.scm"),
    imports: super::cpp::imports,
    def_name: super::cpp::function_name,
    scope_sep: "::",
    self_words: &[],
};
