/* The graph as a picture: Graphviz DOT text, for --dump-graph. Each node
 * shows its id, op (or leaf name), type and the script line that made it;
 * each fused group is a cluster labelled with its fusion rule; outputs are
 * boxes named by their role. */
#ifndef NNC_DOT_H
#define NNC_DOT_H

#include "ir/graph.h"

/* A malloc'd DOT digraph titled `title`; the caller frees it. */
char *nnc_graph_to_dot(const nnc_graph *g, const char *title);

/* Writes BASE.dot and, where Graphviz's `dot` is on PATH, BASE.svg drawn
 * from it; both atomically. No `dot` is not an error. */
int nnc_dot_write(const char *base, const char *dot_text, nnc_status *st);

#endif
