/* The pointwise ops (every row of ir/pointwise.def) and softmax: the
 * output has operand 0's type. A pointwise row's shape rule and cost
 * follow from its kind and its flops column, so a new row brings no
 * function of its own here. */
#include <string.h>

#include "ir/op.h"

#define SRC(g, n, i) (&(g)->nodes[(n)->src[i]])

static int same_type_as_src(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *x = SRC(g, n, 0);
  char t[128];
  if (x->dtype != NNC_F32)
    return nnc_infer_fail(g, n, st, "expects f32, got %s", nnc_type_str(x, t, sizeof t));
  n->dtype = x->dtype;
  n->rank = x->rank;
  memcpy(n->shape, x->shape, sizeof n->shape);
  return 0;
}

static int same_shapes(const nnc_node *a, const nnc_node *b) {
  return a->rank == b->rank && memcmp(a->shape, b->shape, sizeof a->shape[0] * (size_t)a->rank) == 0;
}

int nnc_infer_y_dy(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *y = SRC(g, n, 0), *dy = SRC(g, n, 1);
  char ty[128], tdy[128];
  if (!same_shapes(y, dy) || y->dtype != NNC_F32 || dy->dtype != NNC_F32)
    return nnc_infer_fail(g, n, st, "operands disagree: %s and %s", nnc_type_str(y, ty, sizeof ty),
                          nnc_type_str(dy, tdy, sizeof tdy));
  return same_type_as_src(g, n, st);
}

/* Operand 0 sets the type; the others read element for element match it;
 * the operands after those (an update's step scalar) are f32[]. */
static int infer_elementwise_operands(const nnc_graph *g, nnc_node *n, nnc_status *st, int tensors) {
  const nnc_node *w = SRC(g, n, 0);
  char ta[128], tb[128];
  if (w->dtype != NNC_F32)
    return nnc_infer_fail(g, n, st, "operand 0 must be f32, got %s", nnc_type_str(w, ta, sizeof ta));
  for (int i = 1; i < tensors; i++) {
    const nnc_node *o = SRC(g, n, i);
    if (o->dtype != NNC_F32 || !same_shapes(o, w))
      return nnc_infer_fail(g, n, st, "operand %d is %s, expected %s", i, nnc_type_str(o, ta, sizeof ta),
                            nnc_type_str(w, tb, sizeof tb));
  }
  for (int i = tensors; i < n->nsrc; i++)
    if (SRC(g, n, i)->rank != 0 || SRC(g, n, i)->dtype != NNC_F32)
      return nnc_infer_fail(g, n, st, "the last operand must be an f32[] scalar, got %s",
                            nnc_type_str(SRC(g, n, i), ta, sizeof ta));
  return same_type_as_src(g, n, st);
}

int nnc_infer_pointwise(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_pw_row *row = &nnc_pointwise[n->op];
  const nnc_attrs *a = &n->attrs;
  switch (row->kind) {
  case NNC_PW_ACTIVATION:
    /* The gradient reads the sign of x from y, which a negative alpha would flip. */
    if ((nnc_ops[n->op].attrs & NNC_A_ALPHA) && !(a->alpha >= 0.0f))
      return nnc_infer_fail(g, n, st, "alpha %g must be >= 0", (double)a->alpha);
    return same_type_as_src(g, n, st);
  case NNC_PW_ACTIVATION_GRAD: return nnc_infer_y_dy(g, n, st);
  case NNC_PW_POINTWISE: return infer_elementwise_operands(g, n, st, row->operands);
  case NNC_PW_RANDOM:
    if (!(a->rate >= 0.0f && a->rate < 1.0f))
      return nnc_infer_fail(g, n, st, "%s rate %g must be in [0, 1)", nnc_ops[n->op].name, (double)a->rate);
    return same_type_as_src(g, n, st);
  case NNC_PW_NONE: break;
  }
  return nnc_infer_fail(g, n, st, "no row in ir/pointwise.def");
}

static void cost_per_element(const nnc_node *n, nnc_cost *c, double flops_each) {
  double count = (double)nnc_node_numel(n);
  c->flops = flops_each * count;
  c->bytes = 4.0 * count * (1 + n->nsrc);
}

void nnc_cost_pointwise(const nnc_graph *g, const nnc_node *n, nnc_cost *c) {
  (void)g;
  cost_per_element(n, c, nnc_pointwise[n->op].flops);
}

#define PW_ROW(name)                                                                                   \
  int nnc_infer_##name(const nnc_graph *g, nnc_node *n, nnc_status *st) { return nnc_infer_pointwise(g, n, st); } \
  void nnc_cost_##name(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { nnc_cost_pointwise(g, n, c); }
#define ACTIVATION(ENUM, name, ...) PW_ROW(name)
#define ACTIVATION_GRAD(ENUM, name, ...) PW_ROW(name)
#define POINTWISE(ENUM, name, ...) PW_ROW(name)
#define RANDOM(ENUM, name, ...) PW_ROW(name)
#include "ir/pointwise.def"
#undef ACTIVATION
#undef ACTIVATION_GRAD
#undef POINTWISE
#undef RANDOM
#undef PW_ROW

int nnc_infer_softmax(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  if (SRC(g, n, 0)->rank < 1) return nnc_infer_fail(g, n, st, "softmax needs at least one axis");
  return same_type_as_src(g, n, st);
}

void nnc_cost_softmax(const nnc_graph *g, const nnc_node *n, nnc_cost *c) {
  (void)g;
  cost_per_element(n, c, 5);
}
