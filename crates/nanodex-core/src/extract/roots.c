// The nodes of a tree-sitter tree at which a query's patterns can start, in document order (pre-order), found by
// one pass over tree-sitter's own subtree arrays (its internal headers, at the version Cargo.lock pins; build.rs).
//
// The same nodes, in the same order and with the same positions and aliases, as walking the tree with a
// TSTreeCursor (goto_first_child / goto_next_sibling) and keeping the visible nodes whose kind is a root; the
// test `extract::parse::tests::root_walk_matches_the_tree_cursor` checks this over the fixtures and the Python
// standard library. The cursor sets up a child iterator (two alias-table lookups) and re-reads its stack at every
// step; this pass keeps one frame per open node and reads each child once (a one-core JDK run: ~10% of the CPU
// with the cursor, ~3.4% with this pass).

#include <stdlib.h>

#include "language.h"
#include "length.h"
#include "subtree.h"
#include "tree.h"

typedef void (*nanodex_root_visit)(void *ctx, TSNode node);

typedef struct {
  const Subtree *parent;
  const TSSymbol *alias_sequence;
  uint32_t child_count;
  uint32_t child_index;
  uint32_t structural_child_index;
  Length position;  // where the next child starts (after its padding)
} Frame;

// The frame of a node with `child_count` > 0 children, its first child starting at `position`.
static inline Frame frame_of(const TSLanguage *language, const Subtree *node, uint32_t child_count, Length position) {
  return (Frame){
    .parent = node,
    .alias_sequence = ts_language_alias_sequence(language, node->ptr->production_id),
    .child_count = child_count,
    .child_index = 0,
    .structural_child_index = 0,
    .position = position,
  };
}

// Calls `visit` with every visible node of the tree under `root` (itself included) whose public kind id `k` has
// `roots[k]` set (`roots` has `roots_len` entries). Returns 0, or -1 when the frame stack could not be allocated,
// in which case the walk stopped early.
int nanodex_walk_roots(
  TSNode root,
  const bool *roots,
  uint32_t roots_len,
  nanodex_root_visit visit,
  void *ctx
) {
  const TSTree *tree = root.tree;
  const TSLanguage *language = tree->language;
  const Subtree *root_subtree = (const Subtree *)root.id;
  TSSymbol root_symbol = ts_node_symbol(root);
  if (root_symbol < roots_len && roots[root_symbol]) visit(ctx, root);
  uint32_t root_children = ts_subtree_child_count(*root_subtree);
  if (root_children == 0) return 0;

  uint32_t capacity = 64, size = 0;
  Frame *stack = malloc(capacity * sizeof(Frame));
  if (!stack) return -1;
  Length root_position = {root.context[0], {root.context[1], root.context[2]}};
  stack[size++] = frame_of(language, root_subtree, root_children, root_position);
  while (size > 0) {
    Frame *frame = &stack[size - 1];
    if (frame->child_index == frame->child_count) {
      size--;
      continue;
    }
    const Subtree *children = ts_subtree_children(*frame->parent);
    const Subtree *child = &children[frame->child_index];
    Length position = frame->position;
    TSSymbol alias = 0;
    bool visible = ts_subtree_visible(*child);
    if (!ts_subtree_extra(*child)) {
      if (frame->alias_sequence) {
        alias = frame->alias_sequence[frame->structural_child_index];
        visible |= alias != 0;
      }
      frame->structural_child_index++;
    }
    frame->position = length_add(position, ts_subtree_size(*child));
    frame->child_index++;
    if (frame->child_index < frame->child_count) {
      frame->position = length_add(frame->position, ts_subtree_padding(children[frame->child_index]));
    }
    if (visible) {
      TSSymbol kind = ts_language_public_symbol(language, alias ? alias : ts_subtree_symbol(*child));
      if (kind < roots_len && roots[kind]) visit(ctx, ts_node_new(tree, child, position, alias));
    }
    uint32_t grandchildren = ts_subtree_child_count(*child);
    if (grandchildren > 0) {
      if (size == capacity) {
        Frame *grown = realloc(stack, 2 * capacity * sizeof(Frame));
        if (!grown) {
          free(stack);
          return -1;
        }
        stack = grown;
        capacity *= 2;
      }
      stack[size++] = frame_of(language, child, grandchildren, position);
    }
  }
  free(stack);
  return 0;
}
