/* Shape inference and cost for the layer ops: matmul, bias_add, conv2d and
 * pooling. Each function is the op's single shape check, used when a node is
 * built, by the verifier after every pass, and for gradients alike. */
#include <inttypes.h>
#include <string.h>

#include "ir/op.h"

#define SRC(g, n, i) (&(g)->nodes[(n)->src[i]])

static int dims_equal(int64_t a, int64_t b) { return a == b || a == NNC_DIM_ANY || b == NNC_DIM_ANY; }

static int expect_f32(const nnc_graph *g, nnc_node *n, nnc_status *st, int i) {
  const nnc_node *s = SRC(g, n, i);
  char t[128];
  if (s->dtype != NNC_F32)
    return nnc_infer_fail(g, n, st, "operand %d must be f32, got %s", i, nnc_type_str(s, t, sizeof t));
  return 0;
}

int nnc_infer_matmul(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *a = SRC(g, n, 0), *b = SRC(g, n, 1);
  char ta[128], tb[128];
  if (expect_f32(g, n, st, 0) || expect_f32(g, n, st, 1)) return -1;
  if (a->rank < 2 || b->rank != 2 || (n->attrs.trans_a && a->rank != 2))
    return nnc_infer_fail(g, n, st, "matmul needs a matrix (or batch of rows) and a matrix, got %s and %s",
                          nnc_type_str(a, ta, sizeof ta), nnc_type_str(b, tb, sizeof tb));
  int64_t ka = n->attrs.trans_a ? a->shape[0] : a->shape[a->rank - 1];
  int64_t kb = n->attrs.trans_b ? b->shape[1] : b->shape[0];
  if (!dims_equal(ka, kb))
    return nnc_infer_fail(g, n, st, "inner dimensions differ: %s has %" PRId64 ", %s has %" PRId64,
                          nnc_type_str(a, ta, sizeof ta), ka, nnc_type_str(b, tb, sizeof tb), kb);
  n->dtype = NNC_F32;
  n->rank = a->rank;
  memcpy(n->shape, a->shape, sizeof n->shape);
  if (n->attrs.trans_a) n->shape[0] = a->shape[1];
  n->shape[n->rank - 1] = n->attrs.trans_b ? b->shape[0] : b->shape[1];
  return 0;
}

void nnc_cost_matmul(const nnc_graph *g, const nnc_node *n, nnc_cost *c) {
  const nnc_node *b = SRC(g, n, 1);
  int64_t k = n->attrs.trans_b ? b->shape[1] : b->shape[0];
  c->flops = 2.0 * (double)nnc_node_numel(n) * (double)k;
  c->bytes = 4.0 * (double)(nnc_node_numel(SRC(g, n, 0)) + nnc_node_numel(b) + nnc_node_numel(n));
}

int nnc_infer_bias_add(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *x = SRC(g, n, 0), *b = SRC(g, n, 1);
  char tx[128], tb[128];
  if (expect_f32(g, n, st, 0) || expect_f32(g, n, st, 1)) return -1;
  if (x->rank < 1 || b->rank != 1 || !dims_equal(x->shape[x->rank - 1], b->shape[0]))
    return nnc_infer_fail(g, n, st, "bias %s does not match the last axis of %s",
                          nnc_type_str(b, tb, sizeof tb), nnc_type_str(x, tx, sizeof tx));
  n->dtype = NNC_F32;
  n->rank = x->rank;
  memcpy(n->shape, x->shape, sizeof n->shape);
  return 0;
}

void nnc_cost_bias_add(const nnc_graph *g, const nnc_node *n, nnc_cost *c) {
  (void)g;
  c->flops = (double)nnc_node_numel(n);
  c->bytes = 8.0 * (double)nnc_node_numel(n);
}

/* Output size of a window op, failing when the window does not fit. */
static int window_dims(const nnc_graph *g, nnc_node *n, nnc_status *st, const nnc_node *x, int64_t kh,
                       int64_t kw, const char *what) {
  const nnc_attrs *a = &n->attrs;
  char tx[128];
  if (kh < 1 || kw < 1 || a->stride[0] < 1 || a->stride[1] < 1)
    return nnc_infer_fail(g, n, st, "%s %" PRId64 "x%" PRId64 " with strides %dx%d: sizes must be positive", what, kh, kw,
                          a->stride[0], a->stride[1]);
  int64_t oh = nnc_window_out(x->shape[1], kh, a->stride[0], (nnc_pad)a->pad);
  int64_t ow = nnc_window_out(x->shape[2], kw, a->stride[1], (nnc_pad)a->pad);
  if (oh == 0 || ow == 0)
    return nnc_infer_fail(g, n, st, "%s %" PRId64 "x%" PRId64 " is larger than its input %s with valid padding", what,
                          kh, kw, nnc_type_str(x, tx, sizeof tx));
  n->dtype = NNC_F32;
  n->rank = 4;
  n->shape[0] = x->shape[0];
  n->shape[1] = oh;
  n->shape[2] = ow;
  return 0;
}

static int expect_nhwc(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *x = SRC(g, n, 0);
  char tx[128];
  if (expect_f32(g, n, st, 0)) return -1;
  if (x->rank != 4)
    return nnc_infer_fail(g, n, st, "expects rank-4 input [N,H,W,C], got %s", nnc_type_str(x, tx, sizeof tx));
  return 0;
}

int nnc_infer_conv2d(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *x = SRC(g, n, 0), *w = SRC(g, n, 1);
  char tx[128], tw[128];
  if (expect_nhwc(g, n, st) || expect_f32(g, n, st, 1)) return -1;
  if (w->rank != 4 || !dims_equal(w->shape[2], x->shape[3]))
    return nnc_infer_fail(g, n, st, "kernel %s (HWIO) does not fit input %s: its I must equal the input's C",
                          nnc_type_str(w, tw, sizeof tw), nnc_type_str(x, tx, sizeof tx));
  if (window_dims(g, n, st, x, w->shape[0], w->shape[1], "kernel")) return -1;
  n->shape[3] = w->shape[3];
  return 0;
}

void nnc_cost_conv2d(const nnc_graph *g, const nnc_node *n, nnc_cost *c) {
  const nnc_node *w = SRC(g, n, 1);
  c->flops = 2.0 * (double)nnc_node_numel(n) * (double)(w->shape[0] * w->shape[1] * w->shape[2]);
  c->bytes = 4.0 * (double)(nnc_node_numel(SRC(g, n, 0)) + nnc_node_numel(w) + nnc_node_numel(n));
}

static int infer_pool(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *x = SRC(g, n, 0);
  if (expect_nhwc(g, n, st)) return -1;
  if (window_dims(g, n, st, x, n->attrs.window[0], n->attrs.window[1], "pool")) return -1;
  n->shape[3] = x->shape[3];
  return 0;
}

static void cost_pool(const nnc_graph *g, const nnc_node *n, nnc_cost *c) {
  double in = (double)nnc_node_numel(SRC(g, n, 0));
  c->flops = (double)nnc_node_numel(n) * n->attrs.window[0] * n->attrs.window[1];
  c->bytes = 4.0 * (in + (double)nnc_node_numel(n));
}

int nnc_infer_max_pool(const nnc_graph *g, nnc_node *n, nnc_status *st) { return infer_pool(g, n, st); }
int nnc_infer_avg_pool(const nnc_graph *g, nnc_node *n, nnc_status *st) { return infer_pool(g, n, st); }
void nnc_cost_max_pool(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_pool(g, n, c); }
void nnc_cost_avg_pool(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_pool(g, n, c); }
