// A copy of a tree-sitter language whose parse table answers every lookup by indexing (tree-sitter's internal
// headers, at the version Cargo.lock pins; build.rs).
//
// A generated grammar stores its first `large_state_count` parse states as rows of a dense table, indexed by
// symbol, and the rest ("small" states, most of them: 2,601 of Python's 2,786, 6,315 of C++'s 8,637) as lists of
// (value, symbols...) groups that every lookup scans (`ts_language_lookup` in language.h). The parser looks up
// the table for every token it shifts and every reduction: in a one-core Python run, the two functions that scan
// (`ts_language_table_entry`, `ts_language_next_state`) were ~15% of the parse. The copy
// made here has every state as a dense row, built from those lists: the same value for every (state, symbol)
// (`nanodex_tables_differ` checks it), at the cost of state_count * symbol_count * 2 bytes (Python 1.5 MB, Java
// 0.9 MB, C++ 9.3 MB). Parsing the bench corpora on one core: Python and Java ~11% faster, C++ ~19%.
//
// The only code that reads the layout (large or small) rather than the values is the lookahead iterator, which
// lists a small state's symbols group by group and a large state's in symbol order; tree-sitter sorts what the
// parser collects from it (`ts_parser__do_all_potential_reductions`), and `dense_tables_parse_the_same_trees`
// compares the trees of broken sources too.

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "language.h"

// The TSLanguage fields a grammar of `abi` (13 to 15) fills: the struct grew at its end.
static size_t language_size(uint32_t abi) {
  if (abi >= LANGUAGE_VERSION_WITH_RESERVED_WORDS) return sizeof(TSLanguage);
  if (abi >= LANGUAGE_VERSION_WITH_PRIMARY_STATES) return offsetof(TSLanguage, name);
  return offsetof(TSLanguage, primary_state_ids);
}

// A heap copy of `in` whose parse table has a dense row for every state, or NULL when `in` has no small state,
// has an ABI this core does not read, or the table would exceed `max_bytes` or cannot be allocated. The copy
// shares everything else with `in` and is never freed (a language lives as long as the process).
const TSLanguage *nanodex_expand_parse_table(const TSLanguage *in, size_t max_bytes) {
  if (!in || in->abi_version < TREE_SITTER_MIN_COMPATIBLE_LANGUAGE_VERSION ||
      in->abi_version > TREE_SITTER_LANGUAGE_VERSION || in->large_state_count >= in->state_count) {
    return NULL;
  }
  size_t cells = (size_t)in->state_count * in->symbol_count;
  if (cells > max_bytes / sizeof(uint16_t)) return NULL;
  TSLanguage *out = calloc(1, sizeof(TSLanguage));
  uint16_t *table = calloc(cells, sizeof(uint16_t));
  if (!out || !table) {
    free(out);
    free(table);
    return NULL;
  }
  memcpy(out, in, language_size(in->abi_version));
  memcpy(table, in->parse_table, (size_t)in->large_state_count * in->symbol_count * sizeof(uint16_t));
  for (uint32_t state = in->large_state_count; state < in->state_count; state++) {
    uint16_t *row = &table[(size_t)state * in->symbol_count];
    const uint16_t *data = &in->small_parse_table[in->small_parse_table_map[state - in->large_state_count]];
    uint16_t group_count = *data++;
    for (unsigned g = 0; g < group_count; g++) {
      uint16_t value = *data++;
      uint16_t symbol_count = *data++;
      for (unsigned j = 0; j < symbol_count; j++) {
        uint16_t symbol = *data++;
        // The scan returns the first group that lists the symbol.
        if (symbol < in->symbol_count && row[symbol] == 0) row[symbol] = value;
      }
    }
  }
  out->parse_table = table;
  out->large_state_count = in->state_count;
  return out;
}

// How many (state, symbol) pairs `a` and `b` give different table values for (tests: a language and its copy).
size_t nanodex_tables_differ(const TSLanguage *a, const TSLanguage *b) {
  if (a->state_count != b->state_count || a->symbol_count != b->symbol_count) return SIZE_MAX;
  size_t differ = 0;
  for (uint32_t state = 0; state < a->state_count; state++) {
    for (uint32_t symbol = 0; symbol < a->symbol_count; symbol++) {
      differ += ts_language_lookup(a, (TSStateId)state, (TSSymbol)symbol) !=
                ts_language_lookup(b, (TSStateId)state, (TSSymbol)symbol);
    }
  }
  return differ;
}
