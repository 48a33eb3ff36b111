/* Elementwise ops and softmax: the output has the input's type. */
#include <string.h>

#include "ir/op.h"

static int same_type_as_src(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *x = &g->nodes[n->src[0]];
  char t[128];
  if (x->dtype != NNC_F32)
    return nnc_infer_fail(g, n, st, "expects f32, got %s", nnc_type_str(x, t, sizeof t));
  n->dtype = x->dtype;
  n->rank = x->rank;
  memcpy(n->shape, x->shape, sizeof n->shape);
  return 0;
}

static int infer_binary(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *a = &g->nodes[n->src[0]], *b = &g->nodes[n->src[1]];
  char ta[128], tb[128];
  int same = a->dtype == b->dtype && a->rank == b->rank &&
             memcmp(a->shape, b->shape, sizeof a->shape[0] * (size_t)a->rank) == 0;
  if (!same)
    return nnc_infer_fail(g, n, st, "operands must have one type, got %s and %s",
                          nnc_type_str(a, ta, sizeof ta), nnc_type_str(b, tb, sizeof tb));
  return same_type_as_src(g, n, st);
}

static void cost_pointwise(const nnc_graph *g, const nnc_node *n, nnc_cost *c, double flops_each) {
  double count = (double)nnc_node_numel(n);
  c->flops = flops_each * count;
  c->bytes = 4.0 * count * (1 + n->nsrc);
  (void)g;
}

int nnc_infer_dropout(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  if (!(n->attrs.rate >= 0.0f && n->attrs.rate < 1.0f))
    return nnc_infer_fail(g, n, st, "dropout rate %g must be in [0, 1)", (double)n->attrs.rate);
  return same_type_as_src(g, n, st);
}

int nnc_infer_softmax(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  if (g->nodes[n->src[0]].rank < 1) return nnc_infer_fail(g, n, st, "softmax needs at least one axis");
  return same_type_as_src(g, n, st);
}

int nnc_infer_relu(const nnc_graph *g, nnc_node *n, nnc_status *st) { return same_type_as_src(g, n, st); }
int nnc_infer_sigmoid(const nnc_graph *g, nnc_node *n, nnc_status *st) { return same_type_as_src(g, n, st); }
int nnc_infer_tanh(const nnc_graph *g, nnc_node *n, nnc_status *st) { return same_type_as_src(g, n, st); }
/* Its gradient reads the sign of x from y, which a negative slope would flip. */
int nnc_infer_leaky_relu(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  if (!(n->attrs.alpha >= 0.0f)) return nnc_infer_fail(g, n, st, "alpha %g must be >= 0", (double)n->attrs.alpha);
  return same_type_as_src(g, n, st);
}
/* Its gradient, alpha * e^x = y + alpha, reads the sign of x from y. */
int nnc_infer_elu(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  if (!(n->attrs.alpha >= 0.0f)) return nnc_infer_fail(g, n, st, "alpha %g must be >= 0", (double)n->attrs.alpha);
  return same_type_as_src(g, n, st);
}
int nnc_infer_add(const nnc_graph *g, nnc_node *n, nnc_status *st) { return infer_binary(g, n, st); }
int nnc_infer_mul(const nnc_graph *g, nnc_node *n, nnc_status *st) { return infer_binary(g, n, st); }

void nnc_cost_relu(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_pointwise(g, n, c, 1); }
void nnc_cost_sigmoid(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_pointwise(g, n, c, 4); }
void nnc_cost_tanh(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_pointwise(g, n, c, 4); }
void nnc_cost_leaky_relu(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_pointwise(g, n, c, 2); }
void nnc_cost_elu(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_pointwise(g, n, c, 4); }
void nnc_cost_softmax(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_pointwise(g, n, c, 5); }
void nnc_cost_dropout(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_pointwise(g, n, c, 2); }
void nnc_cost_add(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_pointwise(g, n, c, 1); }
void nnc_cost_mul(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_pointwise(g, n, c, 1); }
