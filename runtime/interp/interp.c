#include "runtime/interp/interp.h"

#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/backend.h"
#include "runtime/train/finite.h"

nnc_ref_fn *const nnc_ref_kernels[NNC_OP_COUNT] = {
#define X(ENUM, name, arity, attrs, flags) [NNC_OP_##ENUM] = nnc_ref_##name,
#include "ir/ops.def"
#undef X
};

int nnc_interp_run(const nnc_graph *g, void **values, const nnc_run_opts *opts, nnc_status *st) {
  if (nnc_graph_check_concrete(g, st)) return -1;
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    char where[256];
    if (nnc_ops[n->op].flags & NNC_OPF_LEAF) {
      if (nnc_leaf_data(n, values[id], st)) return -1;
      continue;
    }
    int64_t count = nnc_node_numel(n);
    values[id] = calloc((size_t)(count ? count : 1), nnc_dtype_size(n->dtype));
    if (!values[id]) return nnc_fail(st, "out of memory for %s", nnc_node_where(g, id, where, sizeof where));
    const void *in[NNC_MAX_SRC];
    for (int i = 0; i < n->nsrc; i++) in[i] = values[n->src[i]];
    nnc_kernel_args k = {g, n, in, values[id], opts};
    double t0 = opts && opts->node_seconds ? nnc_now() : 0;
    nnc_ref_kernels[n->op](&k);
    if (opts && opts->node_seconds) opts->node_seconds[id] += nnc_now() - t0;
    if (opts && opts->non_finite && *opts->non_finite < 0 && nnc_value_non_finite(n, values[id]) >= 0)
      *opts->non_finite = id;
  }
  return 0;
}

void nnc_interp_free(const nnc_graph *g, void **values) {
  for (int32_t id = 0; id < g->nnodes; id++)
    if (!(nnc_ops[g->nodes[id].op].flags & NNC_OPF_LEAF)) {
      free(values[id]);
      values[id] = NULL;
    }
}
