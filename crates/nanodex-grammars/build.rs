//! Compiles the grammars' generated C (`parser.c`, `scanner.c`) again, from the grammar crates' own sources, with
//! their `tree_sitter/parser.h` changed in two places that decide how fast the generated lexer runs:
//!
//! - `set_contains` (is a character in a sorted list of ranges?) answers an ASCII character by scanning the first
//!   ranges instead of a binary search over all of them: Java's identifier characters are a list of 778 ranges,
//!   searched for every character of every identifier, ten unpredictable branches each time.
//! - `ADVANCE_MAP` (the lexer's table of next states by character) asks GCC to unroll its scan of the constant
//!   table, so each lookup is a chain of compares of constants rather than a loop over loads.
//!
//! The scanners allocate through tree-sitter's allocator, and the Python scanner keeps its stacks' memory from one
//! token to the next ([`SCANNER_CHANGES`]).
//!
//! Parsing JDK java.base alone on one core took 14% less time, Python 4%, C++ ~3%; the trees are the same
//! (`nanodex_core`'s `dense_tables_parse_the_same_trees` parses with both and compares them node for node). The
//! symbols are renamed (`nanodex_grammar_<name>`, its scanner's likewise), so the grammar crates' own objects can
//! be linked beside them. A grammar whose sources are not found beside tree-sitter's (a vendored or patched build),
//! or whose header lacks the two places, is used as its crate built it: the cfg `nanodex_grammar_<name>` is set only
//! for the ones compiled here, with a build warning for the others.

use std::path::{Path, PathBuf};

/// (crate, folder of `parser.c` in the crate, the grammar's C name).
const GRAMMARS: [(&str, &str, &str); 6] = [
    ("tree-sitter-python", "src", "python"),
    ("tree-sitter-java", "src", "java"),
    ("tree-sitter-cpp", "src", "cpp"),
    ("tree-sitter-c", "src", "c"),
    ("tree-sitter-javascript", "src", "javascript"),
    ("tree-sitter-typescript", "tsx/src", "tsx"),
];

/// Changes to one grammar's `scanner.c`: (grammar, text, replacement). The Python scanner's `deserialize`, which
/// tree-sitter calls before every token the scanner may lex, freed its two stacks and allocated one again each
/// time; cleared, they keep their memory (same contents after the call, so the same tokens).
const SCANNER_CHANGES: [(&str, &str, &str); 1] = [(
    "python",
    "    array_delete(&scanner->delimiters);\n    array_delete(&scanner->indents);\n    array_push(&scanner->indents, 0);\n",
    "    array_clear(&scanner->delimiters);\n    array_clear(&scanner->indents);\n    array_push(&scanner->indents, 0);\n",
)];

/// The external scanner's entry points, renamed with the grammar.
const SCANNER_FNS: [&str; 5] = ["create", "destroy", "scan", "serialize", "deserialize"];

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../Cargo.lock");
    for (_, _, name) in GRAMMARS {
        println!("cargo::rustc-check-cfg=cfg(nanodex_grammar_{name})");
    }
    let include = PathBuf::from(
        std::env::var("DEP_TREE_SITTER_INCLUDE")
            .expect("the tree-sitter crate announces its include folder (DEP_TREE_SITTER_INCLUDE)"),
    );
    let lock = std::fs::read_to_string(
        Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"))
            .join("../../Cargo.lock"),
    )
    .unwrap_or_default();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    // The crates of one registry (or vendor folder) are siblings: `<registry>/tree-sitter-<version>/include`.
    let registry = include.parent().and_then(Path::parent);
    for (krate, src, name) in GRAMMARS {
        let found = registry.and_then(|registry| crate_dir(registry, krate, &lock));
        let Some(dir) = found else {
            println!(
                "cargo:warning={krate}: sources not found beside tree-sitter's; using the crate's build"
            );
            continue;
        };
        match build(&dir, src, name, &out.join(krate)) {
            Ok(()) => println!("cargo:rustc-cfg=nanodex_grammar_{name}"),
            Err(why) => println!("cargo:warning={krate}: {why}; using the crate's build"),
        }
    }
}

/// The version of `krate` that Cargo.lock pins.
fn locked_version<'a>(lock: &'a str, krate: &str) -> Option<&'a str> {
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line == format!("name = \"{krate}\"") {
            return lines
                .next()?
                .strip_prefix("version = \"")?
                .strip_suffix('"');
        }
    }
    None
}

/// The source folder of `krate` at its locked version: `<registry>/<krate>-<version>` (crates.io) or
/// `<registry>/<krate>` (`cargo vendor`), checked against its manifest.
fn crate_dir(registry: &Path, krate: &str, lock: &str) -> Option<PathBuf> {
    let version = locked_version(lock, krate)?;
    [
        registry.join(format!("{krate}-{version}")),
        registry.join(krate),
    ]
    .into_iter()
    .find(|dir| {
        std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|manifest| {
            manifest.contains(&format!("name = \"{krate}\""))
                && manifest.contains(&format!("version = \"{version}\""))
        })
    })
}

/// Copies the grammar's C sources and headers (and a `common` folder of shared scanner code, as the TypeScript
/// crate has) to `to`, changes its `parser.h`, and compiles `parser.c` and `scanner.c` with renamed symbols.
fn build(dir: &Path, src: &str, name: &str, to: &Path) -> Result<(), String> {
    copy_sources(&dir.join(src), &to.join(src)).map_err(|e| format!("copying the sources: {e}"))?;
    let common = dir.join("common");
    if common.is_dir() {
        copy_sources(&common, &to.join("common"))
            .map_err(|e| format!("copying the sources: {e}"))?;
    }
    let header = to.join(src).join("tree_sitter/parser.h");
    let text = std::fs::read_to_string(&header).map_err(|e| format!("reading parser.h: {e}"))?;
    std::fs::write(&header, faster_header(&text)?).map_err(|e| format!("writing parser.h: {e}"))?;
    let scanner = to.join(src).join("scanner.c");
    for (grammar, from, with) in SCANNER_CHANGES {
        if grammar != name {
            continue;
        }
        let text =
            std::fs::read_to_string(&scanner).map_err(|e| format!("reading scanner.c: {e}"))?;
        if text.contains(from) {
            std::fs::write(&scanner, text.replacen(from, with, 1))
                .map_err(|e| format!("writing scanner.c: {e}"))?;
        } else {
            println!("cargo:warning={name}: scanner.c has changed; compiled without its change");
        }
    }
    let mut build = cc::Build::new();
    build
        .std("c11")
        .include(to.join(src))
        .warnings(false)
        .cargo_warnings(false);
    // The scanners allocate through tree-sitter's allocator (`ts_current_malloc`, which the CLI sets to its own),
    // not the C library's malloc.
    build.define("TREE_SITTER_REUSE_ALLOCATOR", None);
    build.define(
        &format!("tree_sitter_{name}"),
        Some(format!("nanodex_grammar_{name}").as_str()),
    );
    for f in SCANNER_FNS {
        build.define(
            &format!("tree_sitter_{name}_external_scanner_{f}"),
            Some(format!("nanodex_grammar_{name}_external_scanner_{f}").as_str()),
        );
    }
    build.file(to.join(src).join("parser.c"));
    if scanner.exists() {
        build.file(scanner);
    }
    build
        .try_compile(&format!("nanodex-grammar-{name}"))
        .map_err(|e| format!("compiling: {e}"))
}

/// `from`'s `.c` and `.h` files, subfolders included, copied to `to`.
fn copy_sources(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_sources(&path, &target)?;
        } else if path.extension().is_some_and(|e| e == "c" || e == "h") {
            println!("cargo:rerun-if-changed={}", path.display());
            std::fs::copy(&path, &target)?;
        }
    }
    Ok(())
}

/// `parser.h` with the ASCII scan in `set_contains` and the unrolled `ADVANCE_MAP`.
fn faster_header(text: &str) -> Result<String, String> {
    let set_contains = "static inline bool set_contains(";
    let start = text
        .find(set_contains)
        .ok_or("parser.h has no set_contains")?;
    let body = start + text[start..].find('{').ok_or("set_contains has no body")? + 1;
    let scan = "
  // nanodex: the ranges are sorted and disjoint; an ASCII character is among the first few.
  if (lookahead < 128) {
    for (uint32_t i = 0; i < len && ranges[i].start <= lookahead; i++) {
      if (lookahead <= ranges[i].end) return true;
    }
    return false;
  }";
    let mut out = format!("{}{scan}{}", &text[..body], &text[body..]);
    let map_loop = "    for (uint32_t i = 0; i < sizeof(map) / sizeof(map[0]); i += 2) {  \\\n";
    if !out.contains(map_loop) {
        return Err("parser.h has no ADVANCE_MAP loop".into());
    }
    out = out.replacen(
        map_loop,
        &format!(
            "    _Pragma(\"GCC unroll 256\")                                         \\\n{map_loop}"
        ),
        1,
    );
    Ok(out)
}
