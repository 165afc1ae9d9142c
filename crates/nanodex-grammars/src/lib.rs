//! The tree-sitter grammars nanodex parses with. `build.rs` compiles each grammar crate's generated C again with a
//! faster lexer header; where it could not, the grammar crate's own build is used. Either way the grammar is the
//! same: same symbols, states and trees.

use tree_sitter::Language;

/// Declares the functions that return the grammars: each the copy `build.rs` compiled (cfg `$sym`, also its C
/// symbol), else the grammar crate's.
macro_rules! grammars {
    ($($(#[$doc:meta])* $name:ident: $sym:ident else $fallback:expr;)*) => {$(
        $(#[$doc])*
        pub fn $name() -> Language {
            #[cfg($sym)]
            {
                unsafe extern "C" {
                    fn $sym() -> *const tree_sitter::ffi::TSLanguage;
                }
                // SAFETY: the generated function returns a pointer to its static, immutable language.
                unsafe { Language::from_raw($sym()) }
            }
            #[cfg(not($sym))]
            {
                Language::from($fallback)
            }
        }
    )*};
}

grammars! {
    /// Python (tree-sitter-python).
    python: nanodex_grammar_python else tree_sitter_python::LANGUAGE;
    /// Java (tree-sitter-java).
    java: nanodex_grammar_java else tree_sitter_java::LANGUAGE;
    /// C++ (tree-sitter-cpp).
    cpp: nanodex_grammar_cpp else tree_sitter_cpp::LANGUAGE;
    /// C (tree-sitter-c).
    c: nanodex_grammar_c else tree_sitter_c::LANGUAGE;
    /// JavaScript and JSX (tree-sitter-javascript).
    javascript: nanodex_grammar_javascript else tree_sitter_javascript::LANGUAGE;
    /// TypeScript and TSX (tree-sitter-typescript's TSX grammar, a superset).
    tsx: nanodex_grammar_tsx else tree_sitter_typescript::LANGUAGE_TSX;
}

/// The grammar crates' own builds, for comparing the two (tests).
pub mod upstream {
    use tree_sitter::Language;

    /// The grammar crates' languages, in the order python, java, cpp, c, javascript, tsx.
    pub fn all() -> [Language; 6] {
        [
            tree_sitter_python::LANGUAGE.into(),
            tree_sitter_java::LANGUAGE.into(),
            tree_sitter_cpp::LANGUAGE.into(),
            tree_sitter_c::LANGUAGE.into(),
            tree_sitter_javascript::LANGUAGE.into(),
            tree_sitter_typescript::LANGUAGE_TSX.into(),
        ]
    }
}

/// Which grammars `build.rs` compiled with the faster header, in [`upstream::all`]'s order.
pub const COMPILED_HERE: [bool; 6] = [
    cfg!(nanodex_grammar_python),
    cfg!(nanodex_grammar_java),
    cfg!(nanodex_grammar_cpp),
    cfg!(nanodex_grammar_c),
    cfg!(nanodex_grammar_javascript),
    cfg!(nanodex_grammar_tsx),
];

#[cfg(test)]
mod tests {
    /// In a build from crates.io sources (CI's), every grammar is compiled here; a build warning says why not.
    #[test]
    fn every_grammar_is_compiled_here() {
        assert_eq!(
            super::COMPILED_HERE,
            [true; 6],
            "see the build warnings of nanodex-grammars"
        );
        let ours = [
            super::python(),
            super::java(),
            super::cpp(),
            super::c(),
            super::javascript(),
            super::tsx(),
        ];
        for (ours, upstream) in ours.into_iter().zip(super::upstream::all()) {
            assert_ne!(ours.clone().into_raw(), upstream.clone().into_raw());
            assert_eq!(ours.node_kind_count(), upstream.node_kind_count());
            assert_eq!(ours.parse_state_count(), upstream.parse_state_count());
        }
    }
}
