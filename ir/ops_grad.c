/* Shape inference and cost for the gradient ops. Each takes the upstream
 * gradient dy and what it needs of the forward pass, and yields the
 * gradient of one forward operand:
 *   bias_grad(dy)                 sum of dy over every axis but the last
 *   conv2d_grad_input(dy, w)      d conv2d / d input; shape = input's [H,W,C]
 *   conv2d_grad_kernel(x, dy)     d conv2d / d kernel; shape = kernel's [kh,kw]
 *   max_pool_grad(x, dy)          dy routed to the first maximum of each window
 *   avg_pool_grad(dy)             dy spread evenly over each window; shape = [H,W]
 *   softmax_grad(y, dy)           y * (dy - sum(dy * y)) along the last axis
 * The activations' gradients are rows of ir/pointwise.def (ir/ops_elementwise.c). */
#include <inttypes.h>
#include <string.h>

#include "ir/op.h"

#define SRC(g, n, i) (&(g)->nodes[(n)->src[i]])

static void copy_type(nnc_node *n, const nnc_node *from) {
  n->dtype = from->dtype;
  n->rank = from->rank;
  memcpy(n->shape, from->shape, sizeof n->shape);
}

static int same_shapes(const nnc_node *a, const nnc_node *b) {
  return a->rank == b->rank && memcmp(a->shape, b->shape, sizeof a->shape[0] * (size_t)a->rank) == 0;
}

static int mismatch(const nnc_graph *g, nnc_node *n, nnc_status *st, const nnc_node *a, const nnc_node *b) {
  char ta[128], tb[128];
  return nnc_infer_fail(g, n, st, "operands disagree: %s and %s", nnc_type_str(a, ta, sizeof ta),
                        nnc_type_str(b, tb, sizeof tb));
}

/* Every operand of the window and bias gradients is f32. */
static int expect_f32(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  char t[128];
  for (int i = 0; i < n->nsrc; i++)
    if (SRC(g, n, i)->dtype != NNC_F32)
      return nnc_infer_fail(g, n, st, "operand %d must be f32, got %s", i, nnc_type_str(SRC(g, n, i), t, sizeof t));
  return 0;
}

int nnc_infer_softmax_grad(const nnc_graph *g, nnc_node *n, nnc_status *st) { return nnc_infer_y_dy(g, n, st); }
int nnc_infer_max_pool_grad(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *x = SRC(g, n, 0), *dy = SRC(g, n, 1);
  nnc_node fwd = *n;
  fwd.nsrc = 1;
  if (expect_f32(g, n, st)) return -1;
  if (x->rank != 4 || nnc_infer_max_pool(g, &fwd, st)) return mismatch(g, n, st, x, dy);
  if (!same_shapes(&fwd, dy)) return mismatch(g, n, st, x, dy);
  copy_type(n, x);
  return 0;
}

int nnc_infer_bias_grad(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *dy = SRC(g, n, 0);
  if (dy->rank < 1) return nnc_infer_fail(g, n, st, "bias_grad needs at least one axis");
  if (expect_f32(g, n, st)) return -1;
  n->dtype = NNC_F32;
  n->rank = 1;
  n->shape[0] = dy->shape[dy->rank - 1];
  return 0;
}

/* The forward window's output size must equal dy's: one check for both
 * directions. Sizes are checked first, as the forward ops check them: a zero
 * stride would divide by zero. */
static int check_window_grad(const nnc_graph *g, nnc_node *n, nnc_status *st, const nnc_node *dy, int64_t h,
                             int64_t w, int kh, int kw, const char *what) {
  const nnc_attrs *a = &n->attrs;
  if (kh < 1 || kw < 1 || a->stride[0] < 1 || a->stride[1] < 1)
    return nnc_infer_fail(g, n, st, "%s %dx%d with strides %dx%d: sizes must be positive", what, kh, kw,
                          a->stride[0], a->stride[1]);
  int64_t oh = nnc_window_out(h, kh, a->stride[0], (nnc_pad)a->pad);
  int64_t ow = nnc_window_out(w, kw, a->stride[1], (nnc_pad)a->pad);
  char t[128];
  if (dy->rank != 4 || dy->shape[1] != oh || dy->shape[2] != ow)
    return nnc_infer_fail(g, n, st, "gradient %s does not match a %" PRId64 "x%" PRId64 " input's window output %" PRId64
                          "x%" PRId64, nnc_type_str(dy, t, sizeof t), h, w, oh, ow);
  return 0;
}

int nnc_infer_conv2d_grad_input(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *dy = SRC(g, n, 0), *w = SRC(g, n, 1);
  const nnc_attrs *a = &n->attrs;
  if (expect_f32(g, n, st)) return -1;
  if (a->shape_rank != 3 || w->rank != 4 || w->shape[2] != a->shape[2]) return mismatch(g, n, st, dy, w);
  if (check_window_grad(g, n, st, dy, a->shape[0], a->shape[1], (int)w->shape[0], (int)w->shape[1], "kernel"))
    return -1;
  if (dy->shape[3] != w->shape[3]) return mismatch(g, n, st, dy, w);
  n->dtype = NNC_F32;
  n->rank = 4;
  n->shape[0] = dy->shape[0];
  for (int i = 0; i < 3; i++) n->shape[i + 1] = a->shape[i];
  return 0;
}

int nnc_infer_conv2d_grad_kernel(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *x = SRC(g, n, 0), *dy = SRC(g, n, 1);
  const nnc_attrs *a = &n->attrs;
  if (expect_f32(g, n, st)) return -1;
  if (a->shape_rank != 2 || x->rank != 4) return mismatch(g, n, st, x, dy);
  if (check_window_grad(g, n, st, dy, x->shape[1], x->shape[2], (int)a->shape[0], (int)a->shape[1], "kernel"))
    return -1;
  n->dtype = NNC_F32;
  n->rank = 4;
  n->shape[0] = a->shape[0];
  n->shape[1] = a->shape[1];
  n->shape[2] = x->shape[3];
  n->shape[3] = dy->shape[3];
  return 0;
}

int nnc_infer_avg_pool_grad(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *dy = SRC(g, n, 0);
  const nnc_attrs *a = &n->attrs;
  if (expect_f32(g, n, st)) return -1;
  if (a->shape_rank != 2) return nnc_infer_fail(g, n, st, "avg_pool_grad needs the input's [H,W] as shape");
  if (check_window_grad(g, n, st, dy, a->shape[0], a->shape[1], a->window[0], a->window[1], "pool")) return -1;
  n->dtype = NNC_F32;
  n->rank = 4;
  n->shape[0] = dy->shape[0];
  n->shape[1] = a->shape[0];
  n->shape[2] = a->shape[1];
  n->shape[3] = dy->shape[3];
  return 0;
}

static void cost_pointwise(const nnc_graph *g, const nnc_node *n, nnc_cost *c) {
  (void)g;
  c->flops = 3.0 * (double)nnc_node_numel(n);
  c->bytes = 12.0 * (double)nnc_node_numel(n);
}

void nnc_cost_softmax_grad(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_pointwise(g, n, c); }
void nnc_cost_max_pool_grad(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_pointwise(g, n, c); }
void nnc_cost_avg_pool_grad(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_pointwise(g, n, c); }

void nnc_cost_bias_grad(const nnc_graph *g, const nnc_node *n, nnc_cost *c) {
  double in = (double)nnc_node_numel(SRC(g, n, 0));
  c->flops = in;
  c->bytes = 4.0 * in;
}

/* Both convolution gradients do the forward's multiply-adds once more. */
static void cost_conv_grad(const nnc_graph *g, const nnc_node *n, const nnc_node *dy, int64_t taps_per_out,
                           nnc_cost *c) {
  c->flops = 2.0 * (double)nnc_node_numel(dy) * (double)taps_per_out;
  c->bytes = 4.0 * (double)(nnc_node_numel(SRC(g, n, 0)) + nnc_node_numel(SRC(g, n, 1)) + nnc_node_numel(n));
}

void nnc_cost_conv2d_grad_input(const nnc_graph *g, const nnc_node *n, nnc_cost *c) {
  const nnc_node *w = SRC(g, n, 1);
  cost_conv_grad(g, n, SRC(g, n, 0), w->shape[0] * w->shape[1] * w->shape[2], c);
}

void nnc_cost_conv2d_grad_kernel(const nnc_graph *g, const nnc_node *n, nnc_cost *c) {
  cost_conv_grad(g, n, SRC(g, n, 1), n->shape[0] * n->shape[1] * n->shape[2], c);
}
