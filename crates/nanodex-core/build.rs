//! Compiles the C that reads tree-sitter's internals, against its internal headers: the `src` folder beside the
//! `include` folder that the tree-sitter crate announces (`links = "tree-sitter"`). `src/extract/roots.c` walks a
//! tree to a query's pattern roots; `src/extract/tables.c` copies a grammar with a dense parse table.

use std::path::PathBuf;

fn main() {
    let include = PathBuf::from(
        std::env::var("DEP_TREE_SITTER_INCLUDE")
            .expect("the tree-sitter crate announces its include folder (DEP_TREE_SITTER_INCLUDE)"),
    );
    let internal = include.join("../src");
    let sources = ["src/extract/roots.c", "src/extract/tables.c"];
    for source in sources {
        println!("cargo:rerun-if-changed={source}");
    }
    cc::Build::new()
        .std("c11")
        .include(&include)
        .include(&internal)
        // As tree-sitter's own build: the headers assume these.
        .define("_POSIX_C_SOURCE", "200112L")
        .define("_DEFAULT_SOURCE", None)
        .warnings(true)
        // No frame pointers, although the profile has debug info (see nanodex-grammars' build.rs).
        .force_frame_pointer(false)
        .files(sources)
        .compile("nanodex-ts");
}
