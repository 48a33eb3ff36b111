#include "ir/text.h"
#include <stdlib.h>
#include <string.h>
char *nnc_graph_to_text(const nnc_graph *g) { (void)g; return strdup("graph {}\n"); }
