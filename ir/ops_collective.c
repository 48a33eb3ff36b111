/* Collective ops: data exchanged between the ranks of a data-parallel run.
 * allreduce(x) is, on every rank r, sum over ranks q of w_q * x_q, where
 * w_q is rank q's share of the global batch (its rows over the batch's):
 * each rank's gradient is the mean over its own rows, so the weighted sum
 * is the gradient of the mean over the whole global batch, partial last
 * batches included. One process alone has w = 1: the identity. */
#include <string.h>

#include "ir/op.h"

int nnc_infer_allreduce(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *x = &g->nodes[n->src[0]];
  char t[128];
  if (x->dtype != NNC_F32) return nnc_infer_fail(g, n, st, "expects f32, got %s", nnc_type_str(x, t, sizeof t));
  if (n->attrs.bucket < 0) return nnc_infer_fail(g, n, st, "bucket %d must not be negative", (int)n->attrs.bucket);
  n->dtype = x->dtype;
  n->rank = x->rank;
  memcpy(n->shape, x->shape, sizeof n->shape);
  return 0;
}

/* No FLOPs worth counting; the bytes a ring all-reduce moves per rank are
 * twice the message (reduce-scatter then all-gather), counted in
 * docs/scaling.md, not here: this is the local traffic, read and write. */
void nnc_cost_allreduce(const nnc_graph *g, const nnc_node *n, nnc_cost *c) {
  (void)g;
  c->flops = (double)nnc_node_numel(n);
  c->bytes = 8.0 * (double)nnc_node_numel(n);
}
