/* Leaves (input, param, state) and reshape: ops that only describe or relabel data. */
#include <inttypes.h>
#include <string.h>

#include "ir/op.h"
#include "ir/size.h"

static int infer_leaf(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  char t[128];
  for (int i = 0; i < n->rank; i++) {
    int batch_ok = n->op == NNC_OP_INPUT && i == 0 && n->shape[i] == NNC_DIM_ANY;
    if (n->shape[i] < 1 && !batch_ok)
      return nnc_infer_fail(g, n, st, "'%s' has a zero or negative size in %s", n->name ? n->name : "?",
                            nnc_type_str(n, t, sizeof t));
  }
  return 0;
}

int nnc_infer_input(const nnc_graph *g, nnc_node *n, nnc_status *st) { return infer_leaf(g, n, st); }
int nnc_infer_param(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  if (n->dtype != NNC_F32) return nnc_infer_fail(g, n, st, "parameters are f32");
  return infer_leaf(g, n, st);
}
int nnc_infer_state(const nnc_graph *g, nnc_node *n, nnc_status *st) { return nnc_infer_param(g, n, st); }

static void cost_none(const nnc_graph *g, const nnc_node *n, nnc_cost *c) {
  (void)g, (void)n;
  c->flops = 0;
  c->bytes = 0;
}

void nnc_cost_input(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_none(g, n, c); }
void nnc_cost_param(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_none(g, n, c); }
void nnc_cost_state(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_none(g, n, c); }
void nnc_cost_reshape(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_none(g, n, c); }

/* reshape keeps the leading (batch) axis and relabels the rest, as Keras's
 * Reshape and Flatten do; one entry of the target may be -1 (inferred). */
int nnc_infer_reshape(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *x = &g->nodes[n->src[0]];
  const nnc_attrs *a = &n->attrs;
  char tx[128];
  if (x->rank < 1) return nnc_infer_fail(g, n, st, "cannot reshape a scalar");
  if (a->shape_rank < 0 || a->shape_rank + 1 > NNC_MAX_RANK)
    return nnc_infer_fail(g, n, st, "target rank %d is out of range", a->shape_rank);
  int64_t have = 1, want = 1;
  int infer_at = -1;
  for (int i = 1; i < x->rank; i++) have *= x->shape[i];
  for (int i = 0; i < a->shape_rank; i++) {
    if (a->shape[i] == -1 && infer_at < 0) infer_at = i;
    else if (a->shape[i] < 1)
      return nnc_infer_fail(g, n, st, "target size %" PRId64 " at axis %d must be positive", a->shape[i], i + 1);
    else if (nnc_size_mul(want, a->shape[i], &want))
      return nnc_infer_fail(g, n, st, "target shape of %d axes overflows a 64-bit size at axis %d", a->shape_rank,
                            i + 1);
  }
  n->dtype = x->dtype;
  n->rank = a->shape_rank + 1;
  n->shape[0] = x->shape[0];
  for (int i = 0; i < a->shape_rank; i++) n->shape[i + 1] = a->shape[i];
  if (infer_at >= 0 && want > 0 && have % want == 0) n->shape[infer_at + 1] = have / want, want = have;
  if (want != have) {
    char tn[128];
    return nnc_infer_fail(g, n, st, "cannot reshape %s (%" PRId64 " values per sample) to %s",
                          nnc_type_str(x, tx, sizeof tx), have, nnc_type_str(n, tn, sizeof tn));
  }
  return 0;
}
