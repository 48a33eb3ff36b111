#ifndef NNC_TEXT_H
#define NNC_TEXT_H
#include <stdio.h>
#include "ir/graph.h"
char *nnc_graph_to_text(const nnc_graph *g);
int nnc_graph_print(const nnc_graph *g, FILE *f);
nnc_graph *nnc_graph_parse(const char *text, const char *filename, nnc_status *st);
#endif
