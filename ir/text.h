/* The graph's textual form: what --dump-ir prints and what pass tests are
 * written in. One node a line, ids in order, then the outputs:
 *
 *   graph {
 *     %0 = input() {name="x"} : f32[?,28,28,1]
 *     %1 = param() {name="conv2d/kernel"} : f32[3,3,1,32]
 *     %2 = conv2d(%0, %1) {stride=[1,1], pad=same} : f32[?,28,28,32] loc("conv2d", "Conv2D", "m.lua":5)
 *     output "output" = %2
 *   }
 *
 * Attributes are exactly those in the op row's mask; leaves carry name="..."
 * and their type; `?` is NNC_DIM_ANY. loc(LAYER[, TYPE][, "FILE":LINE])
 * appears only for nodes with a layer, and a line without a file is not
 * printed. `//` starts a comment. Printing, parsing and printing again gives
 * the same text. */
#ifndef NNC_TEXT_H
#define NNC_TEXT_H

#include <stdio.h>

#include "ir/graph.h"

/* The whole graph as text, malloc'd (the caller frees it). */
char *nnc_graph_to_text(const nnc_graph *g);
/* Writes the text to f; -1 if the write fails. */
int nnc_graph_print(const nnc_graph *g, FILE *f);

/* Builds a graph from text through nnc_graph_add, so every node is
 * shape-checked and its written type must equal the inferred one. On
 * malformed input returns NULL with "FILE:LINE:COL: error: ..." in st.
 * filename only names the text in messages; NULL gives "<string>".
 * A node identical to an earlier one (same op, operands and attributes, or
 * same leaf name and type) is an error, since the graph would merge the two
 * and every later id would shift. */
nnc_graph *nnc_graph_parse(const char *text, const char *filename, nnc_status *st);

#endif
