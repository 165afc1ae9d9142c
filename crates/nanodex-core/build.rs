//! Compiles `src/extract/roots.c`, the walk to a query's pattern roots, against tree-sitter's internal headers: the
//! `src` folder beside the `include` folder that the tree-sitter crate announces (`links = "tree-sitter"`).

use std::path::PathBuf;

fn main() {
    let include = PathBuf::from(
        std::env::var("DEP_TREE_SITTER_INCLUDE")
            .expect("the tree-sitter crate announces its include folder (DEP_TREE_SITTER_INCLUDE)"),
    );
    let internal = include.join("../src");
    let source = "src/extract/roots.c";
    println!("cargo:rerun-if-changed={source}");
    cc::Build::new()
        .std("c11")
        .include(&include)
        .include(&internal)
        // As tree-sitter's own build: the headers assume these.
        .define("_POSIX_C_SOURCE", "200112L")
        .define("_DEFAULT_SOURCE", None)
        .warnings(true)
        .file(source)
        .compile("nanodex-roots");
}
