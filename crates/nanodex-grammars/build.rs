//! Compiles the grammars' generated C (`parser.c`, `scanner.c`) again, from the grammar crates' own sources, with
//! their `tree_sitter/parser.h` changed in the places that decide how fast the generated lexer runs:
//!
//! - `set_contains` (is a character in a sorted list of ranges?) answers an ASCII character by scanning the first
//!   ranges instead of a binary search over all of them: Java's identifier characters are a list of 778 ranges,
//!   searched for every character of every identifier, ten unpredictable branches each time.
//! - `ADVANCE_MAP` (the lexer's table of next states by character) asks GCC to unroll its scan of the constant
//!   table, so each lookup is a chain of compares of constants rather than a loop over loads.
//! - The lexers and the scanners step to the next character through tree-sitter's `ts_lexer__advance`, a call
//!   through a function pointer for every character (12% of a Python run's CPU). The header gets an inline copy of
//!   its fast path (an ASCII character inside the current chunk) and of `mark_end`'s common case, which fall back to
//!   the call for everything else. They read tree-sitter's private `Lexer` struct through a mirror of it
//!   ([`LEXER_MIRROR`]); `build.rs` first compiles static assertions that the mirror has the layout of the `Lexer`
//!   of the tree-sitter being built (its own `src/lexer.h`), and leaves the calls as they are when it does not.
//!   The step writes positions field by field from registers (a whole-struct copy of what was just stored in
//!   pieces cannot be forwarded by the CPU: a stall per character).
//!
//! The scanners allocate through tree-sitter's allocator, and the Python scanner keeps its stacks' memory from one
//! token to the next and skips indentation and comment lines a run at a time ([`SCANNER_CHANGES`]).
//!
//! With the first two, parsing JDK java.base alone on one core took 14% less time, Python 4%, C++ ~3%; the trees
//! are the same (`nanodex_core`'s `dense_tables_parse_the_same_trees` parses with both and compares them node for
//! node, positions included). The symbols are renamed (`nanodex_grammar_<name>`, its scanner's likewise), so the
//! grammar crates' own objects can be linked beside them. A grammar whose sources are not found beside
//! tree-sitter's (a vendored or patched build), or whose header lacks the places changed, is used as its crate
//! built it: the cfg `nanodex_grammar_<name>` is set only for the ones compiled here, with a build warning for the
//! others.

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

/// Changes to one grammar's `scanner.c`: (grammar, text, replacement, whether it needs the inline lexer).
///
/// - The Python scanner's `deserialize`, which tree-sitter calls before every token the scanner may lex, freed its
///   two stacks and allocated one again each time; cleared, they keep their memory (same contents after the call,
///   so the same tokens).
/// - The Python scanner skips indentation and comment lines one character at a time, before every token that may
///   start a line (and again when the parser asks again), 5% of a Python run; `nanodex_skip_while` skips the same
///   characters a run at a time.
const SCANNER_CHANGES: [(&str, &str, &str, bool); 3] = [
    (
        "python",
        "    array_delete(&scanner->delimiters);\n    array_delete(&scanner->indents);\n    array_push(&scanner->indents, 0);\n",
        "    array_clear(&scanner->delimiters);\n    array_clear(&scanner->indents);\n    array_push(&scanner->indents, 0);\n",
        false,
    ),
    (
        "python",
        "        } else if (lexer->lookahead == ' ') {\n            indent_length++;\n            skip(lexer);\n",
        "        } else if (lexer->lookahead == ' ') {\n            indent_length += nanodex_skip_while(lexer, ' ');\n",
        true,
    ),
    (
        "python",
        "            while (lexer->lookahead && lexer->lookahead != '\\n') {\n                skip(lexer);\n            }\n",
        "            nanodex_skip_while(lexer, 0);\n",
        true,
    ),
];

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
    let inline_lexer = match lexer_layout_matches(&include, &out) {
        Ok(()) => true,
        Err(why) => {
            println!(
                "cargo:warning=tree-sitter's lexer: {why}; the grammars call it through its function pointers"
            );
            false
        }
    };
    for (krate, src, name) in GRAMMARS {
        let found = registry.and_then(|registry| crate_dir(registry, krate, &lock));
        let Some(dir) = found else {
            println!(
                "cargo:warning={krate}: sources not found beside tree-sitter's; using the crate's build"
            );
            continue;
        };
        match build(&dir, src, name, &out.join(krate), inline_lexer) {
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
/// crate has) to `to`, changes its `parser.h` (and, with `inline_lexer`, its scanner's calls of the lexer), and
/// compiles `parser.c` and `scanner.c` with renamed symbols.
fn build(dir: &Path, src: &str, name: &str, to: &Path, inline_lexer: bool) -> Result<(), String> {
    copy_sources(&dir.join(src), &to.join(src)).map_err(|e| format!("copying the sources: {e}"))?;
    let common = dir.join("common");
    if common.is_dir() {
        copy_sources(&common, &to.join("common"))
            .map_err(|e| format!("copying the sources: {e}"))?;
    }
    let header = to.join(src).join("tree_sitter/parser.h");
    let text = std::fs::read_to_string(&header).map_err(|e| format!("reading parser.h: {e}"))?;
    std::fs::write(&header, faster_header(&text, inline_lexer)?)
        .map_err(|e| format!("writing parser.h: {e}"))?;
    let scanner = to.join(src).join("scanner.c");
    if inline_lexer {
        // The scanner's own calls (TypeScript's scanner lives in `common/scanner.h`).
        for file in [scanner.clone(), to.join("common/scanner.h")] {
            if let Ok(text) = std::fs::read_to_string(&file) {
                let changed = text
                    .replace("lexer->advance(lexer, ", "nanodex_advance(lexer, ")
                    .replace("lexer->mark_end(lexer)", "nanodex_mark_end(lexer)");
                std::fs::write(&file, changed)
                    .map_err(|e| format!("writing {}: {e}", file.display()))?;
            }
        }
    }
    for (grammar, from, with, needs_inline_lexer) in SCANNER_CHANGES {
        if grammar != name || (needs_inline_lexer && !inline_lexer) {
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
        .cargo_warnings(false)
        // cc keeps frame pointers whenever the profile has debug info (the release profile keeps line tables):
        // a register and a push/pop per call in the lexers and scanners, which never need them.
        .force_frame_pointer(false);
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

/// `parser.h` with the ASCII scan in `set_contains`, the unrolled `ADVANCE_MAP`, and with `inline_lexer` the
/// generated lexer's `advance` and `mark_end` calls through [`LEXER_INLINE`].
fn faster_header(text: &str, inline_lexer: bool) -> Result<String, String> {
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
    if inline_lexer {
        let calls = [
            (
                "  lexer->advance(lexer, skip);  \\\n",
                "  nanodex_advance(lexer, skip); \\\n",
            ),
            (
                "  lexer->mark_end(lexer);\n",
                "  nanodex_mark_end(lexer);\n",
            ),
        ];
        for (from, to) in calls {
            if !out.contains(from) {
                return Err(format!(
                    "parser.h has no `{}`",
                    from.trim().trim_end_matches('\\').trim()
                ));
            }
            out = out.replacen(from, to, 1);
        }
        // After the definition of `TSLexer`, before the lexer macros.
        let at = out
            .find("/*\n *  Lexer Macros")
            .ok_or("parser.h has no lexer macros")?;
        out.insert_str(at, &format!("{LEXER_MIRROR}{LEXER_INLINE}"));
    }
    Ok(out)
}

/// A mirror of tree-sitter's private `Lexer` (its `src/lexer.h`), under names of its own so that it compiles
/// beside either header. [`lexer_layout_matches`] checks it against the real one, field by field.
const LEXER_MIRROR: &str = r#"
/* nanodex: a mirror of tree-sitter's private `Lexer` (src/lexer.h), checked against it when built. */
typedef struct { uint32_t row; uint32_t column; } NanodexPoint;
typedef struct { uint32_t bytes; NanodexPoint extent; } NanodexLength;
typedef struct { NanodexPoint start_point; NanodexPoint end_point; uint32_t start_byte; uint32_t end_byte; } NanodexRange;
typedef struct {
  int32_t lookahead;
  uint16_t result_symbol;
  void (*advance)(void *, bool);
  void (*mark_end)(void *);
  uint32_t (*get_column)(void *);
  bool (*is_at_included_range_start)(const void *);
  bool (*eof)(const void *);
  void (*log)(const void *, const char *, ...);
} NanodexTSLexer;
typedef struct {
  NanodexTSLexer data;
  NanodexLength current_position;
  NanodexLength token_start_position;
  NanodexLength token_end_position;
  NanodexRange *included_ranges;
  const char *chunk;
  struct { void *payload; void *read; int encoding; void *decode; } input;
  struct { void *payload; void *log; } logger;
  uint32_t included_range_count;
  uint32_t current_included_range_index;
  uint32_t chunk_start;
  uint32_t chunk_size;
  uint32_t lookahead_size;
  bool did_get_column;
  struct { uint32_t value; bool valid; } column_data;
} NanodexLexer;
"#;

/// `nanodex_advance` and `nanodex_mark_end`: tree-sitter's `ts_lexer__advance` fast path and `ts_lexer__mark_end`
/// for a lexer at its first included range, inline; every other case calls tree-sitter as before. The lookahead
/// is read and written as the grammar's `TSLexer` (as the generated code does), the rest only through the mirror.
const LEXER_INLINE: &str = r#"
/* nanodex: tree-sitter's lexer.c, ts_lexer__advance's fast path and ts_lexer__mark_end's common case. */
static inline void nanodex_advance(TSLexer *lexer, bool skip) {
  NanodexLexer *self = (NanodexLexer *)lexer;
  uint32_t next_position = self->current_position.bytes + 1;
  if (
    self->chunk &&
    !self->logger.log &&
    self->input.encoding == 0 &&
    self->lookahead_size == 1 &&
    lexer->lookahead != '\n' &&
    next_position < self->included_ranges[self->current_included_range_index].end_byte &&
    next_position < self->chunk_start + self->chunk_size
  ) {
    uint8_t next_byte = (uint8_t)self->chunk[next_position - self->chunk_start];
    if (next_byte < 0x80) {
      if (self->column_data.valid) self->column_data.value++;
      uint32_t column = self->current_position.extent.column + 1;
      self->current_position.bytes = next_position;
      self->current_position.extent.column = column;
      /* Field by field, from registers: a copy of the whole position would load what was just stored in
         pieces, which the CPU cannot forward from the stores (a stall of a dozen cycles per character). */
      if (skip) {
        self->token_start_position.bytes = next_position;
        self->token_start_position.extent.row = self->current_position.extent.row;
        self->token_start_position.extent.column = column;
      }
      lexer->lookahead = next_byte;
      return;
    }
  }
  lexer->advance(lexer, skip);
}

/* Skips while the lookahead is `c` (`c` = 0: until a '\n' or NUL), as a `nanodex_advance(lexer, true)` per character
   would, and returns how many characters it skipped: ASCII runs inside the current chunk in one step, with the
   position kept in registers, anything else one character at a time. */
static inline uint32_t nanodex_skip_while(TSLexer *lexer, int32_t c) {
  NanodexLexer *self = (NanodexLexer *)lexer;
  uint32_t count = 0;
  for (;;) {
    int32_t lookahead = lexer->lookahead;
    if (c ? lookahead != c : (lookahead == 0 || lookahead == '\n')) return count;
    if (self->chunk && !self->logger.log && self->input.encoding == 0 && self->lookahead_size == 1) {
      uint32_t start = self->current_position.bytes, end = self->chunk_start + self->chunk_size;
      uint32_t range_end = self->included_ranges[self->current_included_range_index].end_byte;
      if (range_end < end) end = range_end;
      /* Each step goes from an ASCII character other than '\n' to the next byte, which must be ASCII too; the run
         stops on the first character that is not skipped. */
      uint32_t at = start;
      while (at + 1 < end) {
        uint8_t next = (uint8_t)self->chunk[at + 1 - self->chunk_start];
        if (next >= 0x80) break;
        at++;
        if (c ? next != c : (next == 0 || next == '\n')) break;
      }
      if (at > start) {
        uint32_t n = at - start, column = self->current_position.extent.column + n;
        if (self->column_data.valid) self->column_data.value += n;
        self->current_position.bytes = at;
        self->current_position.extent.column = column;
        self->token_start_position.bytes = at;
        self->token_start_position.extent.row = self->current_position.extent.row;
        self->token_start_position.extent.column = column;
        lexer->lookahead = (uint8_t)self->chunk[at - self->chunk_start];
        count += n;
        continue;
      }
    }
    nanodex_advance(lexer, true);
    count++;
  }
}

static inline void nanodex_mark_end(TSLexer *lexer) {
  NanodexLexer *self = (NanodexLexer *)lexer;
  if (self->current_included_range_index == 0) {
    self->token_end_position.bytes = self->current_position.bytes;
    self->token_end_position.extent.row = self->current_position.extent.row;
    self->token_end_position.extent.column = self->current_position.extent.column;
  } else {
    lexer->mark_end(lexer);
  }
}

"#;

/// Compiles static assertions that [`LEXER_MIRROR`] has the layout of the `Lexer` in the `src/lexer.h` of the
/// tree-sitter whose `include` folder this is (the one being linked), and that UTF-8 is encoding 0.
fn lexer_layout_matches(include: &Path, out: &Path) -> Result<(), String> {
    let src = include
        .parent()
        .map(|dir| dir.join("src"))
        .filter(|src| src.join("lexer.h").is_file())
        .ok_or("its src/lexer.h is not beside its include folder")?;
    // Same size, except `Lexer`, whose mirror leaves out what follows `column_data` (a debug buffer).
    let same = |mirror: &str, real: &str, fields: &[&str]| {
        let mut text = if real == "Lexer" {
            String::new()
        } else {
            format!("_Static_assert(sizeof({mirror}) == sizeof({real}), \"size of {real}\");\n")
        };
        for f in fields {
            text += &format!(
                "_Static_assert(offsetof({mirror}, {f}) == offsetof({real}, {f}) && \
                 sizeof((({mirror} *)0)->{f}) == sizeof((({real} *)0)->{f}), \"{real}.{f}\");\n"
            );
        }
        text
    };
    let mut check = format!(
        "#include <stddef.h>\n#include <stdbool.h>\n#include <stdint.h>\n#include \"lexer.h\"\n{LEXER_MIRROR}\n"
    );
    check += &same("NanodexPoint", "TSPoint", &["row", "column"]);
    check += &same(
        "NanodexLength",
        "Length",
        &["bytes", "extent", "extent.column"],
    );
    check += &same("NanodexRange", "TSRange", &["start_byte", "end_byte"]);
    check += &same(
        "NanodexTSLexer",
        "TSLexer",
        &["lookahead", "advance", "mark_end"],
    );
    check += &same(
        "NanodexLexer",
        "Lexer",
        &[
            "data",
            "current_position",
            "token_start_position",
            "token_end_position",
            "included_ranges",
            "chunk",
            "input",
            "input.encoding",
            "logger",
            "logger.log",
            "included_range_count",
            "current_included_range_index",
            "chunk_start",
            "chunk_size",
            "lookahead_size",
            "column_data",
            "column_data.value",
            "column_data.valid",
        ],
    );
    check += "_Static_assert(TSInputEncodingUTF8 == 0, \"UTF-8 is encoding 0\");\n";
    let file = out.join("lexer_layout_check.c");
    std::fs::write(&file, check).map_err(|e| format!("writing {}: {e}", file.display()))?;
    cc::Build::new()
        .std("c11")
        .include(&src)
        .include(include)
        .warnings(false)
        .cargo_warnings(false)
        .file(&file)
        .try_compile_intermediates()
        .map(drop)
        .map_err(|e| format!("its Lexer is not the one nanodex mirrors ({e})"))
}
