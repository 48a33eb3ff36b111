/* Autodiff against finite differences, driven by the op table.
 *
 * Every row of ir/ops.def is either differentiable, with one or more example
 * instances in `instances` below, or listed in `not_differentiable`;
 * test_every_op_is_covered walks the op table, so a new row cannot slip
 * through. For each instance the check builds a graph with one input leaf per
 * operand, applies the op, reduces the result to a scalar loss (the op itself
 * when it is a loss, otherwise mse against a random target of the output's
 * shape), asks nnc_autodiff for the gradients of the float operands (labels
 * and targets take none), runs the graph with the interpreter and compares
 * every gradient element with a central difference of the loss, evaluated by
 * the interpreter too:
 *
 *   dL/dx_i ~ (L(x + h e_i) - L(x - h e_i)) / (x_i+ - x_i-),  h = 1e-2 * max(1, |x_i|)
 *
 * where x_i+ and x_i- are the perturbed values as stored in float32, so the
 * quotient uses the step actually taken. Error budget: the truncation term is
 * h^2 f'''/6, about 2e-5 for the O(1) curvatures here; the loss is a float32
 * with relative rounding 6e-8, which the quotient turns into 6e-8 * |L| / h,
 * about 1e-5 for |L| ~ 2. Gradient elements must agree within 1e-2 relative
 * to the larger of the two, plus an absolute 1e-4 * max(1, |L|) for elements
 * near zero: a wrong rule is off by O(1), a sign or a factor.
 *
 * relu and max_pool have kinks, where a central difference straddling the kink
 * measures neither side. Instances choose data away from them (relu inputs at
 * least 0.2 from zero, max_pool inputs on a grid 0.1 apart, both wider than 2h),
 * and must then see no kink crossed. Composite graphs cannot choose their
 * intermediate values, so for every perturbation the check also compares the
 * forward pass's kink pattern (which relu outputs are positive, which tap each
 * max_pool picked) with the unperturbed one and skips the elements whose
 * difference crosses a kink; at most 5% may be skipped. They also take a
 * smaller step, h = 3e-3 * max(1, |x_i|): one conv kernel weight moves every
 * pre-activation of its channel, so at 1e-2 about 7% of the conv net's
 * differences straddle a kink, at 3e-3 under 1%; the rounding term grows to
 * 6e-8 * |L| / h ~ 5e-5, still under the absolute floor.
 *
 * To cover a new differentiable op, add an instance; otherwise list it in
 * `not_differentiable`. NNC_FD_STATS=1 prints each check's worst
 * error-to-tolerance ratio and its skipped count, for tuning. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "passes/autodiff.h"
#include "runtime/interp/interp.h"
#include "runtime/rng.h"
#include "tests/passes/suites.h"

#define H_REL 1e-2
#define H_REL_COMPOSITE 3e-3
#define RTOL 1e-2
#define ATOL 1e-4

/* ---- Leaves with data ------------------------------------------------------ */

typedef enum fill {
  FILL_NORMAL,         /* N(0, 1) */
  FILL_SMALL,          /* N(0, 0.1^2): weights that keep a softmax away from saturation */
  FILL_AWAY_FROM_ZERO, /* N(0, 1) pushed out to |x| >= 0.2 (relu) */
  FILL_DISTINCT,       /* a random permutation of a grid 0.1 apart (max_pool: no ties) */
  FILL_PROBS,          /* U(0.1, 0.9): inside the clip range, rows not summing to one */
  FILL_LABELS,         /* i32 class indices, or f32 one-hot rows; no gradient */
  FILL_TARGET,         /* N(0, 1), no gradient (mse's target) */
} fill;

enum { MAX_LEAVES = 8 };

typedef struct leaf_data {
  int32_t id;
  int64_t count;
  void *data;
  int wrt; /* its gradient is checked */
} leaf_data;

/* A graph under test, its bound leaves and its loss. */
typedef struct net {
  nnc_graph *g;
  uint64_t seed;
  int nleaves;
  leaf_data leaf[MAX_LEAVES];
  int32_t loss;
  nnc_run_opts opts;
} net;

/* Parses "f32[2,5,4,3]" into a leaf spec. */
static void parse_type(const char *text, nnc_node_spec *spec) {
  spec->dtype = strncmp(text, "i32", 3) == 0 ? NNC_I32 : NNC_F32;
  const char *p = strchr(text, '[');
  ck_assert_msg(p != NULL, "bad type '%s'", text);
  spec->rank = 0;
  for (p++; *p && *p != ']';) {
    ck_assert_int_lt(spec->rank, NNC_MAX_RANK);
    char *end;
    spec->shape[spec->rank++] = strtoll(p, &end, 10);
    ck_assert_msg(end != p, "bad type '%s'", text);
    p = *end == ',' ? end + 1 : end;
  }
}

static void fill_values(float *x, int64_t count, fill f, uint64_t seed, uint32_t stream) {
  for (int64_t i = 0; i < count; i++) {
    float v = nnc_rng_normal(seed, stream, (uint64_t)i);
    if (f == FILL_SMALL) v *= 0.1f;
    if (f == FILL_AWAY_FROM_ZERO) v = v < 0 ? v - 0.2f : v + 0.2f;
    if (f == FILL_PROBS) v = 0.1f + 0.8f * nnc_rng_uniform(seed, stream, (uint64_t)i);
    x[i] = v;
  }
  if (f != FILL_DISTINCT) return;
  /* Fisher-Yates over the grid k/10 - count/20. */
  for (int64_t i = 0; i < count; i++) x[i] = 0.1f * (float)i - 0.05f * (float)count;
  for (int64_t i = count - 1; i > 0; i--) {
    int64_t j = (int64_t)(nnc_rng_uniform(seed, stream + 1000, (uint64_t)i) * (float)(i + 1));
    if (j > i) j = i;
    float t = x[i];
    x[i] = x[j];
    x[j] = t;
  }
}

/* Adds a leaf of the given type and fills it. Labels need the number of
 * classes: i32 labels draw indices below it, f32 labels are one-hot rows. */
static int32_t net_leaf(net *n, nnc_op op, const char *name, const char *type, fill f, int64_t classes) {
  nnc_status st = {0};
  nnc_node_spec spec = {.op = op, .name = name};
  parse_type(type, &spec);
  int32_t id = nnc_graph_add(n->g, &spec, &st);
  ck_assert_msg(id >= 0, "%s", st.msg);
  ck_assert_int_lt(n->nleaves, MAX_LEAVES);
  leaf_data *l = &n->leaf[n->nleaves];
  uint32_t stream = (uint32_t)n->nleaves++;
  l->id = id;
  l->count = nnc_node_numel(&n->g->nodes[id]);
  l->data = calloc((size_t)l->count, 4);
  l->wrt = spec.dtype == NNC_F32 && f != FILL_LABELS && f != FILL_TARGET;
  if (f == FILL_LABELS) {
    ck_assert_int_gt(classes, 0);
    int64_t rows = spec.dtype == NNC_I32 ? l->count : l->count / classes;
    for (int64_t r = 0; r < rows; r++) {
      int32_t k = (int32_t)(nnc_rng_uniform(n->seed, stream, (uint64_t)r) * (float)classes);
      if (k >= classes) k = (int32_t)classes - 1;
      if (spec.dtype == NNC_I32) ((int32_t *)l->data)[r] = k;
      else ((float *)l->data)[r * classes + k] = 1;
    }
  } else {
    ck_assert_int_eq(spec.dtype, NNC_F32);
    fill_values(l->data, l->count, f, n->seed, stream);
  }
  return id;
}

static int32_t net_op(net *n, nnc_op op, const int32_t *src, int nsrc, const nnc_attrs *attrs) {
  nnc_status st = {0};
  int32_t id = nnc_graph_op(n->g, op, src, nsrc, attrs, &st);
  ck_assert_msg(id >= 0, "%s", st.msg);
  return id;
}

static int32_t net_op1(net *n, nnc_op op, int32_t a, const nnc_attrs *attrs) { return net_op(n, op, &a, 1, attrs); }

static int32_t net_op2(net *n, nnc_op op, int32_t a, int32_t b, const nnc_attrs *attrs) {
  int32_t src[2] = {a, b};
  return net_op(n, op, src, 2, attrs);
}

static int64_t last_dim(const net *n, int32_t id) { return n->g->nodes[id].shape[n->g->nodes[id].rank - 1]; }

/* mse against a random target of y's type. */
static int32_t mse_loss(net *n, int32_t y) {
  char type[128];
  nnc_type_str(&n->g->nodes[y], type, sizeof type);
  return net_op2(n, NNC_OP_MSE, y, net_leaf(n, NNC_OP_INPUT, "target", type, FILL_TARGET, 0), NULL);
}

static void net_free(net *n) {
  for (int i = 0; i < n->nleaves; i++) free(n->leaf[i].data);
  nnc_graph_free(n->g);
}

/* ---- The check ---------------------------------------------------------------- */

/* Appends to *pattern the forward pass's kinks: for each relu, which outputs
 * are positive; for each max_pool, the tap each output took (the first
 * maximum, as the kernels pick it). */
static int64_t kink_pattern(const nnc_graph *g, int32_t upto, void **values, int32_t **pattern) {
  int64_t len = 0, cap = 64;
  int32_t *p = malloc(sizeof *p * (size_t)cap);
  for (int32_t id = 0; id <= upto; id++) {
    const nnc_node *n = &g->nodes[id];
    if (n->op != NNC_OP_RELU && n->op != NNC_OP_MAX_POOL) continue;
    int64_t count = nnc_node_numel(n);
    if (len + count > cap) {
      while (len + count > cap) cap *= 2;
      p = realloc(p, sizeof *p * (size_t)cap);
    }
    const float *out = values[id];
    if (n->op == NNC_OP_RELU) {
      for (int64_t i = 0; i < count; i++) p[len++] = out[i] > 0;
      continue;
    }
    const nnc_node *x = &g->nodes[n->src[0]];
    const float *in = values[n->src[0]];
    const nnc_attrs *a = &n->attrs;
    int64_t ph = nnc_window_pad_before(x->shape[1], a->window[0], a->stride[0], (nnc_pad)a->pad);
    int64_t pw = nnc_window_pad_before(x->shape[2], a->window[1], a->stride[1], (nnc_pad)a->pad);
    for (int64_t b = 0; b < n->shape[0]; b++)
      for (int64_t y = 0; y < n->shape[1]; y++)
        for (int64_t xx = 0; xx < n->shape[2]; xx++)
          for (int64_t c = 0; c < n->shape[3]; c++) {
            int64_t best = -1;
            for (int64_t i = 0; i < a->window[0]; i++)
              for (int64_t j = 0; j < a->window[1]; j++) {
                int64_t iy = y * a->stride[0] + i - ph, ix = xx * a->stride[1] + j - pw;
                if (iy < 0 || iy >= x->shape[1] || ix < 0 || ix >= x->shape[2]) continue;
                int64_t at = ((b * x->shape[1] + iy) * x->shape[2] + ix) * x->shape[3] + c;
                if (best < 0 || in[at] > in[best]) best = at;
              }
            p[len++] = (int32_t)best;
          }
  }
  *pattern = p;
  return len;
}

/* Runs the graph; returns the loss and, if asked, the kink pattern. */
static double run_loss(const net *n, void **values, int32_t **pattern, int64_t *pattern_len) {
  nnc_status st = {0};
  for (int i = 0; i < n->nleaves; i++) values[n->leaf[i].id] = n->leaf[i].data;
  ck_assert_msg(nnc_interp_run(n->g, values, &n->opts, &st) == 0, "%s", st.msg);
  double loss = *(const float *)values[n->loss];
  if (pattern) *pattern_len = kink_pattern(n->g, n->loss, values, pattern);
  nnc_interp_free(n->g, values);
  return loss;
}

typedef void build_fn(net *n, const void *arg);

/* Builds the net, differentiates its loss with respect to every float leaf
 * that is not a label or target, and checks each gradient element against a
 * central difference. At most max_skipped of the elements may be skipped for
 * crossing a kink. */
static void check_gradients(const char *what, build_fn *build, const void *arg, const nnc_run_opts *opts,
                            double h_rel, double max_skipped) {
  nnc_status st = {0};
  net n = {.g = nnc_graph_new(), .seed = 20240611, .loss = -1};
  if (opts) n.opts = *opts;
  build(&n, arg);
  ck_assert_msg(n.loss >= 0, "%s: no loss", what);
  int32_t forward_nodes = n.g->nnodes;

  int32_t wrt[MAX_LEAVES], grads[MAX_LEAVES];
  int nwrt = 0;
  for (int i = 0; i < n.nleaves; i++)
    if (n.leaf[i].wrt) wrt[nwrt++] = n.leaf[i].id;
  ck_assert_msg(nwrt > 0, "%s: nothing to differentiate", what);
  ck_assert_msg(nnc_autodiff(n.g, n.loss, wrt, nwrt, grads, &st) == 0, "%s: %s", what, st.msg);
  ck_assert_msg(nnc_graph_verify(n.g, &st) == 0, "%s: after autodiff: %s", what, st.msg);

  /* Each gradient is a new node with its source's type. */
  for (int i = 0; i < nwrt; i++) {
    const nnc_node *s = &n.g->nodes[wrt[i]], *d = &n.g->nodes[grads[i]];
    char ts[128], td[128];
    nnc_type_str(s, ts, sizeof ts);
    nnc_type_str(d, td, sizeof td);
    ck_assert_msg(strcmp(ts, td) == 0, "%s: the gradient of %s has type %s", what, ts, td);
    ck_assert_msg(grads[i] >= forward_nodes, "%s: the gradient of %s is forward node %%%d", what, s->name,
                  (int)grads[i]);
  }

  /* The analytic gradients, copied out of one run. */
  void **values = calloc((size_t)n.g->nnodes, sizeof *values);
  for (int i = 0; i < n.nleaves; i++) values[n.leaf[i].id] = n.leaf[i].data;
  ck_assert_msg(nnc_interp_run(n.g, values, &n.opts, &st) == 0, "%s: %s", what, st.msg);
  double loss = *(const float *)values[n.loss];
  float *analytic[MAX_LEAVES];
  for (int i = 0; i < nwrt; i++) {
    int64_t count = nnc_node_numel(&n.g->nodes[grads[i]]);
    analytic[i] = malloc(sizeof(float) * (size_t)count);
    memcpy(analytic[i], values[grads[i]], sizeof(float) * (size_t)count);
  }
  nnc_interp_free(n.g, values);
  ck_assert_msg(isfinite(loss), "%s: loss %g", what, loss);

  int32_t *base, *moved;
  int64_t base_len, moved_len;
  double again = run_loss(&n, values, &base, &base_len);
  ck_assert_msg(again == loss, "%s: the loss is not repeatable: %.9g then %.9g", what, loss, again);
  double atol = ATOL * fmax(1.0, fabs(loss));
  int64_t checked = 0, skipped = 0;
  double worst = 0;
  for (int w = 0; w < nwrt; w++) {
    leaf_data *l = NULL;
    for (int i = 0; i < n.nleaves; i++)
      if (n.leaf[i].id == wrt[w]) l = &n.leaf[i];
    float *x = l->data;
    for (int64_t e = 0; e < l->count; e++) {
      float orig = x[e];
      double h = h_rel * fmax(1.0, fabs(orig));
      float up = (float)(orig + h), down = (float)(orig - h);
      int crossed = 0;
      x[e] = up;
      double lup = run_loss(&n, values, &moved, &moved_len);
      crossed |= moved_len != base_len || memcmp(moved, base, sizeof *base * (size_t)base_len) != 0;
      free(moved);
      x[e] = down;
      double ldown = run_loss(&n, values, &moved, &moved_len);
      crossed |= moved_len != base_len || memcmp(moved, base, sizeof *base * (size_t)base_len) != 0;
      free(moved);
      x[e] = orig;
      if (crossed) {
        skipped++;
        continue;
      }
      double numeric = (lup - ldown) / ((double)up - (double)down), got = analytic[w][e];
      double err = fabs(got - numeric), tol = RTOL * fmax(fabs(got), fabs(numeric)) + atol;
      worst = fmax(worst, err / tol);
      ck_assert_msg(err <= tol,
                    "%s: d loss / d %s[%lld]: autodiff %.7g, central difference %.7g (error %.3g > %.3g)", what,
                    n.g->nodes[wrt[w]].name, (long long)e, got, numeric, err, tol);
      checked++;
    }
  }
  if (getenv("NNC_FD_STATS"))
    fprintf(stderr, "%-50s loss %8.4f worst err/tol %.3f skipped %lld/%lld\n", what, loss, worst, (long long)skipped,
            (long long)(checked + skipped));
  ck_assert_msg((double)skipped <= max_skipped * (double)(checked + skipped),
                "%s: %lld of %lld differences crossed a kink", what, (long long)skipped,
                (long long)(checked + skipped));
  free(base);
  for (int i = 0; i < nwrt; i++) free(analytic[i]);
  free(values);
  net_free(&n);
}

/* ---- One op at a time ------------------------------------------------------- */

typedef struct instance {
  const char *what;
  nnc_op op;
  nnc_attrs attrs;
  int nsrc;
  const char *src[NNC_MAX_SRC]; /* operand types */
  fill fill[NNC_MAX_SRC];
  int training; /* run dropout in training mode */
} instance;

#define NORMAL2 {FILL_NORMAL, FILL_NORMAL}
#define NO_ATTRS {.pad = NNC_PAD_VALID}
#define VALID_S(h, w) {.stride = {h, w}, .pad = NNC_PAD_VALID}
#define SAME_S(h, w) {.stride = {h, w}, .pad = NNC_PAD_SAME}
#define POOL(wh, ww, sh, sw, p) {.window = {wh, ww}, .stride = {sh, sw}, .pad = p}

static const instance instances[] = {
    {"matmul", NNC_OP_MATMUL, NO_ATTRS, 2, {"f32[3,4]", "f32[4,5]"}, NORMAL2, 0},
    {"bias_add", NNC_OP_BIAS_ADD, NO_ATTRS, 2, {"f32[3,4]", "f32[4]"}, NORMAL2, 0},
    {"bias_add rank 4", NNC_OP_BIAS_ADD, NO_ATTRS, 2, {"f32[2,3,2,4]", "f32[4]"}, NORMAL2, 0},

    {"conv2d valid", NNC_OP_CONV2D, VALID_S(1, 1), 2, {"f32[2,5,4,3]", "f32[3,2,3,2]"}, NORMAL2, 0},
    {"conv2d same stride 2", NNC_OP_CONV2D, SAME_S(2, 2), 2, {"f32[1,5,5,2]", "f32[3,3,2,3]"}, NORMAL2, 0},
    {"conv2d same strides (1,2), padding after only", NNC_OP_CONV2D, SAME_S(1, 2), 2,
     {"f32[1,4,5,1]", "f32[2,2,1,2]"}, NORMAL2, 0},
    {"conv2d valid stride 2 drops the last row", NNC_OP_CONV2D, VALID_S(2, 2), 2, {"f32[1,6,5,2]", "f32[3,3,2,2]"},
     NORMAL2, 0},

    {"max_pool valid floor", NNC_OP_MAX_POOL, POOL(2, 2, 2, 2, NNC_PAD_VALID), 1, {"f32[1,5,5,2]"},
     {FILL_DISTINCT}, 0},
    {"max_pool same 3x3 stride 2", NNC_OP_MAX_POOL, POOL(3, 3, 2, 2, NNC_PAD_SAME), 1, {"f32[2,5,4,1]"},
     {FILL_DISTINCT}, 0},
    {"max_pool overlapping windows", NNC_OP_MAX_POOL, POOL(3, 2, 1, 1, NNC_PAD_VALID), 1, {"f32[1,4,4,2]"},
     {FILL_DISTINCT}, 0},
    {"avg_pool same stride 2", NNC_OP_AVG_POOL, POOL(2, 2, 2, 2, NNC_PAD_SAME), 1, {"f32[1,5,5,2]"},
     {FILL_NORMAL}, 0},
    {"avg_pool overlapping windows", NNC_OP_AVG_POOL, POOL(3, 3, 1, 1, NNC_PAD_VALID), 1, {"f32[2,4,5,1]"},
     {FILL_NORMAL}, 0},
    {"avg_pool same 3x3 stride 1", NNC_OP_AVG_POOL, POOL(3, 3, 1, 1, NNC_PAD_SAME), 1, {"f32[1,4,3,2]"},
     {FILL_NORMAL}, 0},

    {"reshape flatten", NNC_OP_RESHAPE, {.shape_rank = 1, .shape = {12}}, 1, {"f32[2,3,4]"}, {FILL_NORMAL}, 0},
    {"reshape unflatten", NNC_OP_RESHAPE, {.shape_rank = 2, .shape = {3, 4}}, 1, {"f32[2,12]"}, {FILL_NORMAL}, 0},

    {"relu", NNC_OP_RELU, NO_ATTRS, 1, {"f32[4,5]"}, {FILL_AWAY_FROM_ZERO}, 0},
    {"sigmoid", NNC_OP_SIGMOID, NO_ATTRS, 1, {"f32[4,5]"}, {FILL_NORMAL}, 0},
    {"tanh", NNC_OP_TANH, NO_ATTRS, 1, {"f32[4,5]"}, {FILL_NORMAL}, 0},
    {"leaky_relu", NNC_OP_LEAKY_RELU, {.alpha = 0.2f}, 1, {"f32[4,5]"}, {FILL_AWAY_FROM_ZERO}, 0},
    {"elu", NNC_OP_ELU, {.alpha = 0.7f}, 1, {"f32[4,5]"}, {FILL_AWAY_FROM_ZERO}, 0},
    {"softmax", NNC_OP_SOFTMAX, NO_ATTRS, 1, {"f32[3,5]"}, {FILL_NORMAL}, 0},
    {"dropout training", NNC_OP_DROPOUT, {.rate = 0.3f, .stream = 5}, 1, {"f32[4,6]"}, {FILL_NORMAL}, 1},
    {"dropout inference", NNC_OP_DROPOUT, {.rate = 0.3f, .stream = 5}, 1, {"f32[4,6]"}, {FILL_NORMAL}, 0},
    {"add", NNC_OP_ADD, NO_ATTRS, 2, {"f32[3,4]", "f32[3,4]"}, NORMAL2, 0},
    {"mul", NNC_OP_MUL, NO_ATTRS, 2, {"f32[3,4]", "f32[3,4]"}, NORMAL2, 0},

    {"xent_logits sparse", NNC_OP_XENT_LOGITS, NO_ATTRS, 2, {"f32[4,5]", "i32[4]"}, {FILL_NORMAL, FILL_LABELS}, 0},
    {"xent_logits one-hot", NNC_OP_XENT_LOGITS, NO_ATTRS, 2, {"f32[4,5]", "f32[4,5]"}, {FILL_NORMAL, FILL_LABELS}, 0},
    {"xent_probs sparse", NNC_OP_XENT_PROBS, NO_ATTRS, 2, {"f32[4,5]", "i32[4]"}, {FILL_PROBS, FILL_LABELS}, 0},
    {"xent_probs one-hot", NNC_OP_XENT_PROBS, NO_ATTRS, 2, {"f32[4,5]", "f32[4,5]"}, {FILL_PROBS, FILL_LABELS}, 0},
    {"mse", NNC_OP_MSE, NO_ATTRS, 2, {"f32[4,3]", "f32[4,3]"}, {FILL_NORMAL, FILL_TARGET}, 0},
};

#define NINSTANCES ((int)(sizeof instances / sizeof instances[0]))

/* Rows without a gradient rule of their own: leaves, the gradient ops
 * themselves, the metric and the optimizer updates. */
static const nnc_op not_differentiable[] = {
    NNC_OP_INPUT,          NNC_OP_PARAM,         NNC_OP_BIAS_GRAD,          NNC_OP_CONV2D_GRAD_INPUT,
    NNC_OP_CONV2D_GRAD_KERNEL, NNC_OP_MAX_POOL_GRAD, NNC_OP_AVG_POOL_GRAD,  NNC_OP_RELU_GRAD,
    NNC_OP_SIGMOID_GRAD,   NNC_OP_TANH_GRAD,     NNC_OP_SOFTMAX_GRAD,       NNC_OP_XENT_LOGITS_GRAD,
    NNC_OP_XENT_PROBS_GRAD, NNC_OP_MSE_GRAD,     NNC_OP_CORRECT,            NNC_OP_SQUARE,
    NNC_OP_EMA,            NNC_OP_ADAM_UPDATE,   NNC_OP_RMSPROP_UPDATE,     NNC_OP_SGD_UPDATE,
    NNC_OP_MOMENTUM_VELOCITY, NNC_OP_NESTEROV_UPDATE, NNC_OP_SUB,         NNC_OP_MAXIMUM,
    NNC_OP_RMSPROP_MOMENTUM, NNC_OP_STATE,       NNC_OP_BN_STATS,          NNC_OP_BATCH_NORM_TRAIN_GRAD,
    NNC_OP_BN_GAMMA_GRAD,    NNC_OP_BN_MOVING,   NNC_OP_BN_FOLD,           NNC_OP_SCALE_SHIFT_GRAD,
    NNC_OP_ALLREDUCE,        NNC_OP_FILL,        NNC_OP_LEAKY_RELU_GRAD,
    NNC_OP_ELU_GRAD,
};

/* Rows checked by the composite networks below instead of an instance:
 * batch_norm_train's statistics operand is a function of x, and
 * scale_shift's table is made of weights that take no gradient. */
static const nnc_op in_networks[] = {NNC_OP_BATCH_NORM_TRAIN, NNC_OP_SCALE_SHIFT};

#define NNOT_DIFFERENTIABLE ((int)(sizeof not_differentiable / sizeof not_differentiable[0]))

static void build_instance(net *n, const void *arg) {
  const instance *c = arg;
  int32_t src[NNC_MAX_SRC];
  for (int i = 0; i < c->nsrc; i++) {
    char name[16];
    snprintf(name, sizeof name, "x%d", i);
    /* Labels count the classes of operand 0. */
    int64_t classes = i > 0 ? last_dim(n, src[0]) : 0;
    src[i] = net_leaf(n, NNC_OP_INPUT, name, c->src[i], c->fill[i], classes);
  }
  int32_t y = net_op(n, c->op, src, c->nsrc, &c->attrs);
  n->loss = n->g->nodes[y].rank == 0 ? y : mse_loss(n, y);
}

START_TEST(test_instance) {
  const instance *c = &instances[_i];
  nnc_run_opts opts = {.training = c->training, .seed = 99, .step = 4};
  check_gradients(c->what, build_instance, c, &opts, H_REL, 0);
}
END_TEST

/* Every activation row of ir/pointwise.def, by walking the table, with
 * alpha 0.3 where it reads one and x away from the kink at zero; its
 * gradient row is what autodiff builds, so the gradient rows themselves
 * need no instance. */
static int activation_instance(nnc_op op, instance *c) {
  if (nnc_pointwise[op].kind != NNC_PW_ACTIVATION) return 0;
  *c = (instance){nnc_ops[op].name, op, {.alpha = 0.3f}, 1, {"f32[4,5]"}, {FILL_AWAY_FROM_ZERO}, 0};
  return 1;
}

START_TEST(test_activation_instance) {
  instance c;
  nnc_run_opts opts = {.seed = 99, .step = 4};
  if (activation_instance((nnc_op)_i, &c)) check_gradients(c.what, build_instance, &c, &opts, H_REL, 0);
}
END_TEST

/* A new row in ir/ops.def needs an instance above or a place in
 * not_differentiable (an activation gradient row has its place by its
 * kind), and not both. */
START_TEST(test_every_op_is_covered) {
  for (int op = 0; op < NNC_OP_COUNT; op++) {
    instance made;
    int cases = activation_instance((nnc_op)op, &made), declared = nnc_pointwise[op].kind == NNC_PW_ACTIVATION_GRAD;
    for (int i = 0; i < NINSTANCES; i++) cases += instances[i].op == (nnc_op)op;
    for (int i = 0; i < NNOT_DIFFERENTIABLE; i++) declared += not_differentiable[i] == (nnc_op)op;
    for (size_t i = 0; i < sizeof in_networks / sizeof in_networks[0]; i++) cases += in_networks[i] == (nnc_op)op;
    ck_assert_msg(cases > 0 || declared, "op '%s' has no gradient-check instance in tests/passes/test_autodiff.c "
                  "and is not declared non-differentiable there", nnc_ops[op].name);
    ck_assert_msg(!(cases > 0 && declared), "op '%s' is declared non-differentiable but has instances",
                  nnc_ops[op].name);
  }
}
END_TEST

TCase *tcase_autodiff_ops(void) {
  TCase *tc = tcase_create("autodiff_ops");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_every_op_is_covered);
  tcase_add_loop_test(tc, test_instance, 0, NINSTANCES);
  tcase_add_loop_test(tc, test_activation_instance, 0, NNC_OP_COUNT);
  return tc;
}

/* ---- Composite graphs --------------------------------------------------------- */

enum ending { END_XENT_PROBS, END_XENT_LOGITS };

typedef struct conv_net {
  enum ending ending;
  const char *labels; /* "i32[2]" or "f32[2,5]" */
} conv_net;

/* conv2d -> bias_add -> relu -> max_pool -> reshape -> matmul -> then either
 * softmax -> xent_probs, or xent_logits on the logits. Weights are params. */
static void build_conv_net(net *n, const void *arg) {
  const conv_net *c = arg;
  int32_t x = net_leaf(n, NNC_OP_INPUT, "images", "f32[2,6,6,2]", FILL_NORMAL, 0);
  int32_t k = net_leaf(n, NNC_OP_PARAM, "conv2d/kernel", "f32[3,3,2,4]", FILL_SMALL, 0);
  int32_t b = net_leaf(n, NNC_OP_PARAM, "conv2d/bias", "f32[4]", FILL_NORMAL, 0);
  int32_t w = net_leaf(n, NNC_OP_PARAM, "dense/kernel", "f32[36,5]", FILL_SMALL, 0);
  int32_t y = net_leaf(n, NNC_OP_INPUT, "labels", c->labels, FILL_LABELS, 5);
  nnc_attrs same = SAME_S(1, 1), pool = POOL(2, 2, 2, 2, NNC_PAD_VALID), flat = {.shape_rank = 1, .shape = {-1}};
  int32_t h = net_op2(n, NNC_OP_CONV2D, x, k, &same);
  h = net_op2(n, NNC_OP_BIAS_ADD, h, b, NULL);
  h = net_op1(n, NNC_OP_RELU, h, NULL);
  h = net_op1(n, NNC_OP_MAX_POOL, h, &pool);
  h = net_op1(n, NNC_OP_RESHAPE, h, &flat);
  int32_t logits = net_op2(n, NNC_OP_MATMUL, h, w, NULL);
  if (c->ending == END_XENT_LOGITS) {
    n->loss = net_op2(n, NNC_OP_XENT_LOGITS, logits, y, NULL);
  } else {
    int32_t p = net_op1(n, NNC_OP_SOFTMAX, logits, NULL);
    n->loss = net_op2(n, NNC_OP_XENT_PROBS, p, y, NULL);
  }
}

/* images -> conv2d (valid, stride 2) -> sigmoid -> avg_pool (same) -> reshape
 * -> matmul -> tanh -> mse. */
static void build_smooth_conv_net(net *n, const void *arg) {
  (void)arg;
  int32_t x = net_leaf(n, NNC_OP_INPUT, "images", "f32[2,7,6,1]", FILL_NORMAL, 0);
  int32_t k = net_leaf(n, NNC_OP_PARAM, "conv2d/kernel", "f32[3,2,1,3]", FILL_NORMAL, 0);
  int32_t w = net_leaf(n, NNC_OP_PARAM, "dense/kernel", "f32[12,4]", FILL_NORMAL, 0);
  nnc_attrs conv = VALID_S(2, 2), pool = POOL(2, 2, 2, 2, NNC_PAD_SAME), flat = {.shape_rank = 1, .shape = {-1}};
  int32_t h = net_op2(n, NNC_OP_CONV2D, x, k, &conv); /* [2,3,3,3] */
  h = net_op1(n, NNC_OP_SIGMOID, h, NULL);
  h = net_op1(n, NNC_OP_AVG_POOL, h, &pool); /* [2,2,2,3] */
  h = net_op1(n, NNC_OP_RESHAPE, h, &flat);
  h = net_op2(n, NNC_OP_MATMUL, h, w, NULL);
  n->loss = mse_loss(n, net_op1(n, NNC_OP_TANH, h, NULL));
}

/* A dense net with dropout between the layers, run in training mode: both
 * evaluations of a difference use the same seed and step, so the mask is
 * the same and the loss is smooth in the weights. */
static void build_dropout_net(net *n, const void *arg) {
  (void)arg;
  int32_t x = net_leaf(n, NNC_OP_INPUT, "x", "f32[4,6]", FILL_NORMAL, 0);
  int32_t w1 = net_leaf(n, NNC_OP_PARAM, "dense/kernel", "f32[6,8]", FILL_NORMAL, 0);
  int32_t b1 = net_leaf(n, NNC_OP_PARAM, "dense/bias", "f32[8]", FILL_NORMAL, 0);
  int32_t w2 = net_leaf(n, NNC_OP_PARAM, "dense_1/kernel", "f32[8,3]", FILL_NORMAL, 0);
  int32_t y = net_leaf(n, NNC_OP_INPUT, "labels", "i32[4]", FILL_LABELS, 3);
  nnc_attrs drop = {.rate = 0.4f, .stream = 11};
  int32_t h = net_op2(n, NNC_OP_MATMUL, x, w1, NULL);
  h = net_op2(n, NNC_OP_BIAS_ADD, h, b1, NULL);
  h = net_op1(n, NNC_OP_TANH, h, NULL);
  h = net_op1(n, NNC_OP_DROPOUT, h, &drop);
  h = net_op2(n, NNC_OP_MATMUL, h, w2, NULL);
  n->loss = net_op2(n, NNC_OP_XENT_LOGITS, h, y, NULL);
}

/* Nodes used more than once: t = tanh(x) feeds mul(t, t) (both operands),
 * mul(t, w) and, through them, the add; x itself feeds the final add. Each
 * use contributes a gradient, summed by add nodes. */
static void build_shared_net(net *n, const void *arg) {
  (void)arg;
  int32_t x = net_leaf(n, NNC_OP_INPUT, "x", "f32[3,4]", FILL_NORMAL, 0);
  int32_t w = net_leaf(n, NNC_OP_PARAM, "w", "f32[3,4]", FILL_NORMAL, 0);
  int32_t t = net_op1(n, NNC_OP_TANH, x, NULL);
  int32_t sq = net_op2(n, NNC_OP_MUL, t, t, NULL);
  int32_t tw = net_op2(n, NNC_OP_MUL, t, w, NULL);
  int32_t s = net_op2(n, NNC_OP_ADD, sq, tw, NULL);
  n->loss = mse_loss(n, net_op2(n, NNC_OP_ADD, s, x, NULL));
}

/* The training form of batch normalization, x -> bn_stats -> batch_norm_train
 * -> tanh -> mse: the statistics are functions of x, so the difference of
 * the loss in x goes through them, which batch_norm_train's rule must
 * include (an instance with stats as an independent input could not see
 * that). x is rank 4 (a conv layer's) or rank 2 (a dense one's); without
 * scale or center, gamma or beta is a fill constant, as the frontend makes
 * it, and takes no gradient. */
typedef struct bn_net {
  const char *x;
  int center, scale;
} bn_net;

static void build_batch_norm_net(net *n, const void *arg) {
  const bn_net *b = arg;
  int rank4 = !strcmp(b->x, "f32[3,2,2,3]");
  const char *channels = rank4 ? "f32[3]" : "f32[4]";
  int32_t x = net_leaf(n, NNC_OP_INPUT, "x", b->x, FILL_NORMAL, 0);
  int32_t gamma = b->scale ? net_leaf(n, NNC_OP_PARAM, "bn/gamma", channels, FILL_NORMAL, 0) : -1;
  int32_t beta = b->center ? net_leaf(n, NNC_OP_PARAM, "bn/beta", channels, FILL_NORMAL, 0) : -1;
  nnc_attrs one = {.alpha = 1.0f}, zero = {.alpha = 0.0f};
  int32_t like = -1;
  if (gamma < 0 || beta < 0) {
    like = net_leaf(n, NNC_OP_STATE, "bn/moving_mean", channels, FILL_NORMAL, 0);
    n->leaf[n->nleaves - 1].wrt = 0;
  }
  if (gamma < 0) gamma = net_op1(n, NNC_OP_FILL, like, &one);
  if (beta < 0) beta = net_op1(n, NNC_OP_FILL, like, &zero);
  int32_t stats = net_op1(n, NNC_OP_BN_STATS, x, NULL);
  nnc_attrs eps = {.eps = 1e-3f};
  int32_t src[4] = {x, stats, gamma, beta};
  int32_t y = net_op(n, NNC_OP_BATCH_NORM_TRAIN, src, 4, &eps);
  n->loss = mse_loss(n, net_op1(n, NNC_OP_TANH, y, NULL));
}

/* The inference form with its weights frozen (states, as trainable=false
 * leaves them): x -> scale_shift(x, bn_fold(mean, var, gamma, beta)) -> mse,
 * differentiated in x only. */
static void build_frozen_batch_norm_net(net *n, const void *arg) {
  (void)arg;
  int32_t x = net_leaf(n, NNC_OP_INPUT, "x", "f32[5,4]", FILL_NORMAL, 0);
  int32_t w[4];
  static const char *const names[4] = {"bn/moving_mean", "bn/moving_variance", "bn/gamma", "bn/beta"};
  for (int i = 0; i < 4; i++) {
    w[i] = net_leaf(n, NNC_OP_STATE, names[i], "f32[4]", i == 1 ? FILL_PROBS : FILL_NORMAL, 0);
    n->leaf[n->nleaves - 1].wrt = 0;
  }
  nnc_attrs fold = {.eps = 1e-3f, .alpha = 0.99f};
  int32_t table = net_op(n, NNC_OP_BN_FOLD, w, 4, &fold);
  n->loss = mse_loss(n, net_op2(n, NNC_OP_SCALE_SHIFT, x, table, NULL));
}

typedef struct composite {
  const char *what;
  build_fn *build;
  const void *arg;
  int training;
} composite;

static const conv_net probs_sparse = {END_XENT_PROBS, "i32[2]"}, probs_onehot = {END_XENT_PROBS, "f32[2,5]"};
static const conv_net logits_sparse = {END_XENT_LOGITS, "i32[2]"}, logits_onehot = {END_XENT_LOGITS, "f32[2,5]"};

static const composite composites[] = {
    {"conv net, softmax, xent_probs, sparse labels", build_conv_net, &probs_sparse, 0},
    {"conv net, softmax, xent_probs, one-hot labels", build_conv_net, &probs_onehot, 0},
    {"conv net, xent_logits, sparse labels", build_conv_net, &logits_sparse, 0},
    {"conv net, xent_logits, one-hot labels", build_conv_net, &logits_onehot, 0},
    {"conv net, sigmoid, avg_pool, tanh, mse", build_smooth_conv_net, NULL, 0},
    {"dense net with dropout in training mode", build_dropout_net, NULL, 1},
    {"nodes used more than once", build_shared_net, NULL, 0},
    {"batch norm training form, rank 4", build_batch_norm_net, &(bn_net){"f32[3,2,2,3]", 1, 1}, 0},
    {"batch norm training form, rank 2", build_batch_norm_net, &(bn_net){"f32[5,4]", 1, 1}, 0},
    {"batch norm training form, scale=false", build_batch_norm_net, &(bn_net){"f32[3,2,2,3]", 1, 0}, 0},
    {"batch norm training form, center=false", build_batch_norm_net, &(bn_net){"f32[5,4]", 0, 1}, 0},
    {"batch norm training form, neither", build_batch_norm_net, &(bn_net){"f32[3,2,2,3]", 0, 0}, 0},
    {"batch norm inference form, frozen", build_frozen_batch_norm_net, NULL, 0},
};

#define NCOMPOSITES ((int)(sizeof composites / sizeof composites[0]))

START_TEST(test_composite) {
  const composite *c = &composites[_i];
  nnc_run_opts opts = {.training = c->training, .seed = 1234, .step = 7};
  check_gradients(c->what, c->build, c->arg, &opts, H_REL_COMPOSITE, 0.05);
}
END_TEST

/* The dropout net's mask really drops something, so the check above is not
 * of an identity: training and inference losses differ. */
START_TEST(test_dropout_net_is_masked) {
  double loss[2];
  for (int training = 0; training < 2; training++) {
    net n = {.g = nnc_graph_new(), .seed = 20240611, .opts = {.training = training, .seed = 1234, .step = 7}};
    build_dropout_net(&n, NULL);
    void **values = calloc((size_t)n.g->nnodes, sizeof *values);
    loss[training] = run_loss(&n, values, NULL, NULL);
    free(values);
    net_free(&n);
  }
  ck_assert_msg(loss[0] != loss[1], "dropout changed nothing: loss %.9g", loss[0]);
}
END_TEST

/* ---- Errors ----------------------------------------------------------------- */

static int32_t leaf(nnc_graph *g, nnc_op op, const char *name, const char *type) {
  nnc_status st = {0};
  nnc_node_spec spec = {.op = op, .name = name};
  parse_type(type, &spec);
  int32_t id = nnc_graph_add(g, &spec, &st);
  ck_assert_msg(id >= 0, "%s", st.msg);
  return id;
}

static int32_t op2(nnc_graph *g, nnc_op op, int32_t a, int32_t b, const nnc_attrs *attrs) {
  nnc_status st = {0};
  int32_t src[2] = {a, b};
  int32_t id = nnc_graph_op(g, op, src, 2, attrs, &st);
  ck_assert_msg(id >= 0, "%s", st.msg);
  return id;
}

/* loss = mse(tanh(x), t), with an unused input u and an unused param. */
START_TEST(test_unused_leaf_has_no_gradient) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  int32_t x = leaf(g, NNC_OP_INPUT, "x", "f32[3,4]");
  int32_t u = leaf(g, NNC_OP_INPUT, "u", "f32[3,4]");
  nnc_graph_set_loc(g, "dense_1", "Dense", "models/m.lua", 7);
  int32_t k = leaf(g, NNC_OP_PARAM, "dense_1/kernel", "f32[4,4]");
  nnc_graph_set_loc(g, NULL, NULL, NULL, 0);
  int32_t t = leaf(g, NNC_OP_INPUT, "t", "f32[3,4]");
  int32_t h = nnc_graph_op(g, NNC_OP_TANH, &x, 1, NULL, &st);
  int32_t loss = op2(g, NNC_OP_MSE, h, t, NULL);
  int32_t grads[2] = {-1, -1};

  int32_t wrt_u[2] = {x, u};
  ck_assert_int_eq(nnc_autodiff(g, loss, wrt_u, 2, grads, &st), -1);
  ck_assert_str_eq(st.msg, "input 'u' does not affect the loss, so it has no gradient");

  int32_t wrt_k[1] = {k};
  ck_assert_int_eq(nnc_autodiff(g, loss, wrt_k, 1, grads, &st), -1);
  ck_assert_str_eq(st.msg, "dense_1 (Dense) at models/m.lua:7: param 'dense_1/kernel' does not affect the loss, so "
                           "it has no gradient");

  /* The target reaches the loss, but mse gives its labels no gradient. */
  int32_t wrt_t[1] = {t};
  ck_assert_int_eq(nnc_autodiff(g, loss, wrt_t, 1, grads, &st), -1);
  ck_assert_str_eq(st.msg, "input 't' reaches the loss only through operands that take no gradient (labels, "
                           "targets), so it has no gradient");

  /* A node added after the loss cannot affect it. */
  int32_t later = op2(g, NNC_OP_ADD, x, u, NULL);
  int32_t wrt_later[1] = {later};
  ck_assert_int_eq(nnc_autodiff(g, loss, wrt_later, 1, grads, &st), -1);
  char want[128];
  snprintf(want, sizeof want, "%%%d = add does not affect the loss, so it has no gradient", (int)later);
  ck_assert_str_eq(st.msg, want);

  /* The used leaf alone is fine, and the graph stays valid. */
  int32_t wrt_x[1] = {x};
  ck_assert_msg(nnc_autodiff(g, loss, wrt_x, 1, grads, &st) == 0, "%s", st.msg);
  ck_assert_int_eq(nnc_graph_verify(g, &st), 0);
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_loss_must_be_a_scalar) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  int32_t x = leaf(g, NNC_OP_INPUT, "x", "f32[3,4]");
  int32_t h = nnc_graph_op(g, NNC_OP_TANH, &x, 1, NULL, &st);
  int32_t grad = -1;
  ck_assert_int_eq(nnc_autodiff(g, h, &x, 1, &grad, &st), -1);
  ck_assert_str_eq(st.msg, "%1 = tanh: the loss must be an f32[] scalar, got f32[3,4]");
  ck_assert_int_eq(nnc_autodiff(g, 9, &x, 1, &grad, &st), -1);
  ck_assert_str_eq(st.msg, "autodiff: the loss %9 does not exist");
  int32_t t = leaf(g, NNC_OP_INPUT, "t", "f32[3,4]");
  int32_t loss = op2(g, NNC_OP_MSE, h, t, NULL), bad = -3;
  ck_assert_int_eq(nnc_autodiff(g, loss, &bad, 1, &grad, &st), -1);
  ck_assert_str_eq(st.msg, "autodiff: gradient source %-3 does not exist");
  nnc_graph_free(g);
}
END_TEST

/* Training supports plain matmul only; a transposed one fails with its place. */
START_TEST(test_transposed_matmul_is_refused) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  int32_t x = leaf(g, NNC_OP_INPUT, "x", "f32[3,4]");
  int32_t w = leaf(g, NNC_OP_PARAM, "w", "f32[5,4]");
  int32_t t = leaf(g, NNC_OP_INPUT, "t", "f32[3,5]");
  nnc_graph_set_loc(g, "dense", "Dense", "models/m.lua", 3);
  nnc_attrs tb = {.trans_b = 1};
  int32_t y = op2(g, NNC_OP_MATMUL, x, w, &tb);
  nnc_graph_set_loc(g, NULL, NULL, NULL, 0);
  int32_t loss = op2(g, NNC_OP_MSE, y, t, NULL);
  int32_t grad = -1;
  ck_assert_int_eq(nnc_autodiff(g, loss, &w, 1, &grad, &st), -1);
  ck_assert_str_eq(st.msg, "dense (Dense) at models/m.lua:3: training supports matmul of a matrix by an "
                           "untransposed matrix only");
  nnc_graph_free(g);
}
END_TEST

TCase *tcase_autodiff_graphs(void) {
  TCase *tc = tcase_create("autodiff_graphs");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_composite, 0, NCOMPOSITES);
  tcase_add_test(tc, test_dropout_net_is_masked);
  tcase_add_test(tc, test_unused_leaf_has_no_gradient);
  tcase_add_test(tc, test_loss_must_be_a_scalar);
  tcase_add_test(tc, test_transposed_matmul_is_refused);
  return tc;
}
