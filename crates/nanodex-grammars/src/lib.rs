//! The tree-sitter grammars nanodex parses with. `build.rs` compiles each grammar crate's generated C again with a
//! faster lexer header; where it could not, the grammar crate's own build is used. Either way the grammar is the
//! same: same symbols, states and trees.

use tree_sitter::Language;

/// One grammar, as nanodex parses with it and as its crate builds it.
pub struct Grammar {
    /// Its name here (the function that returns it).
    pub name: &'static str,
    /// The grammar nanodex parses with.
    pub ours: fn() -> Language,
    /// The grammar crate's own build, for comparing the two (tests).
    pub upstream: fn() -> Language,
    /// Whether `build.rs` compiled it with the faster header (else `ours` is `upstream`; a build warning says why).
    pub compiled_here: bool,
}

/// Declares the functions that return the grammars (each the copy `build.rs` compiled, cfg `$sym` and also its C
/// symbol, else the grammar crate's) and [`ALL`].
macro_rules! grammars {
    ($($(#[$doc:meta])* $name:ident: $sym:ident else $upstream:expr;)*) => {
        $(
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
                    Language::from($upstream)
                }
            }
        )*

        /// Every grammar.
        pub const ALL: &[Grammar] = &[$(Grammar {
            name: stringify!($name),
            ours: $name,
            upstream: || Language::from($upstream),
            compiled_here: cfg!($sym),
        }),*];
    };
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

/// The grammar crate's own build of `language` (one of [`ALL`]'s `ours`), found by identity; `None` for another.
pub fn upstream_of(language: &Language) -> Option<Language> {
    let ptr = language.clone().into_raw();
    ALL.iter()
        .find(|g| (g.ours)().into_raw() == ptr)
        .map(|g| (g.upstream)())
}

#[cfg(test)]
mod tests {
    /// In a build from crates.io sources (CI's), every grammar is compiled here, as a separate object from the
    /// crate's build with the same kinds and states; a build warning of nanodex-grammars says why one is not.
    #[test]
    fn every_grammar_is_compiled_here() {
        for g in super::ALL {
            assert!(g.compiled_here, "{}: see the build warnings", g.name);
            let (ours, upstream) = ((g.ours)(), (g.upstream)());
            assert_ne!(
                ours.clone().into_raw(),
                upstream.clone().into_raw(),
                "{}",
                g.name
            );
            assert_eq!(
                ours.node_kind_count(),
                upstream.node_kind_count(),
                "{}",
                g.name
            );
            assert_eq!(
                ours.parse_state_count(),
                upstream.parse_state_count(),
                "{}",
                g.name
            );
        }
        assert_eq!(super::ALL.len(), 6);
    }
}
