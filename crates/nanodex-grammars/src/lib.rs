//! The tree-sitter grammars nanodex parses with. `build.rs` compiles each grammar crate's generated C again with a
//! faster lexer header; where it could not, the grammar crate's own build is used. Either way the grammar is the
//! same: same symbols, states and trees.

use tree_sitter::Language;

/// Declares the function that returns a grammar: the copy `build.rs` compiled (cfg `$cfg`, C symbol `$sym`), else
/// the grammar crate's.
macro_rules! grammar {
    ($(#[$doc:meta])* $name:ident, $cfg:ident, $sym:ident, $fallback:expr) => {
        $(#[$doc])*
        pub fn $name() -> Language {
            #[cfg($cfg)]
            {
                unsafe extern "C" {
                    fn $sym() -> *const tree_sitter::ffi::TSLanguage;
                }
                // SAFETY: the generated function returns a pointer to its static, immutable language.
                unsafe { Language::from_raw($sym()) }
            }
            #[cfg(not($cfg))]
            {
                Language::from($fallback)
            }
        }
    };
}

grammar!(
    /// Python (tree-sitter-python).
    python, nanodex_grammar_python, nanodex_grammar_python, tree_sitter_python::LANGUAGE
);
grammar!(
    /// Java (tree-sitter-java).
    java, nanodex_grammar_java, nanodex_grammar_java, tree_sitter_java::LANGUAGE
);
grammar!(
    /// C++ (tree-sitter-cpp).
    cpp, nanodex_grammar_cpp, nanodex_grammar_cpp, tree_sitter_cpp::LANGUAGE
);
grammar!(
    /// C (tree-sitter-c).
    c, nanodex_grammar_c, nanodex_grammar_c, tree_sitter_c::LANGUAGE
);
grammar!(
    /// JavaScript and JSX (tree-sitter-javascript).
    javascript, nanodex_grammar_javascript, nanodex_grammar_javascript, tree_sitter_javascript::LANGUAGE
);
grammar!(
    /// TypeScript and TSX (tree-sitter-typescript's TSX grammar, a superset).
    tsx, nanodex_grammar_tsx, nanodex_grammar_tsx, tree_sitter_typescript::LANGUAGE_TSX
);

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
