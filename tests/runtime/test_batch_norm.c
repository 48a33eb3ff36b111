/* BatchNormalization through the model passes, against the layer worked out
 * by plain loops here in double precision: a train step normalizes with the
 * batch's mean and biased variance and moves the moving statistics by
 * moving * 0.99 + batch * 0.01; inference uses the moving statistics. The
 * variance averaged into moving_variance is Keras 2's: with Bessel's
 * correction n/(n-1) on a 4-D input (its fused path, TF's FusedBatchNorm),
 * biased on a 2-D input (its plain path, nn.moments). A wrong choice moves
 * moving_variance by 0.01 * var / (n - 1), which the tests below see.
 * scale=false (no gamma) and center=false (no beta) normalize with gamma 1
 * and beta 0, and still train on the batch's statistics. */
#include <math.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/model.h"
#include "tests/runtime/suites.h"

enum { C = 2, MAX_VALUES = 64 };

static const float gamma0[C] = {1.5f, 0.5f}, beta0[C] = {0.1f, -0.2f};
static const float mean0[C] = {0.2f, -0.1f}, var0[C] = {1.2f, 0.8f};

typedef struct bn_case {
  int rank;
  int64_t shape[4]; /* the batch's, batch first */
  int center, scale;
} bn_case;

static const bn_case bn_cases[] = {{4, {2, 2, 3, C}, 1, 1}, {2, {5, C}, 1, 1}, {4, {2, 2, 3, C}, 0, 1},
                                   {2, {5, C}, 1, 0},       {4, {2, 2, 3, C}, 0, 0}};

static const char *const weight_names[4] = {"bn/moving_mean", "bn/moving_variance", "bn/gamma", "bn/beta"};

/* Whether the case's layer has weight i (0 to 3, in weight_names' order). */
static int has_weight(const bn_case *c, int i) { return i < 2 || (i == 2 ? c->scale : c->center); }

/* The gamma and beta the layer normalizes with. */
static double gamma_of(const bn_case *c, int j) { return c->scale ? gamma0[j] : 1; }
static double beta_of(const bn_case *c, int j) { return c->center ? beta0[j] : 0; }

static int64_t count_of(const bn_case *c) {
  int64_t n = 1;
  for (int i = 0; i < c->rank; i++) n *= c->shape[i];
  return n;
}

static int32_t add_leaf(nnc_graph *g, nnc_op op, const char *name, int rank, const int64_t *shape) {
  nnc_status st = {0};
  int32_t id = nnc_graph_leaf(g, op, name, NNC_F32, rank, shape, &st);
  ck_assert_msg(id >= 0, "%s", st.msg);
  return id;
}

/* x -> BatchNormalization (its inference form, as the frontend builds it:
 * a missing gamma or beta is fill(moving_mean) {1 or 0}). */
static nnc_graph *bn_model(const bn_case *c) {
  nnc_graph *g = nnc_graph_new();
  nnc_status st = {0};
  int64_t in[4], ch[1] = {C};
  memcpy(in, c->shape, sizeof in);
  in[0] = NNC_DIM_ANY;
  int32_t x = add_leaf(g, NNC_OP_INPUT, "x", c->rank, in);
  int32_t w[4];
  for (int i = 0; i < 4; i++) {
    nnc_attrs constant = {.alpha = i == 2 ? 1.0f : 0.0f};
    w[i] = has_weight(c, i) ? add_leaf(g, i < 2 ? NNC_OP_STATE : NNC_OP_PARAM, weight_names[i], 1, ch)
                            : nnc_graph_op(g, NNC_OP_FILL, &w[0], 1, &constant, &st);
    ck_assert_msg(w[i] >= 0, "%s", st.msg);
  }
  nnc_attrs fold = {.eps = 1e-3f, .alpha = 0.99f};
  int32_t table = nnc_graph_op(g, NNC_OP_BN_FOLD, w, 4, &fold, &st);
  int32_t src[2] = {x, table};
  int32_t y = table < 0 ? -1 : nnc_graph_op(g, NNC_OP_SCALE_SHIFT, src, 2, NULL, &st);
  ck_assert_msg(y >= 0 && nnc_graph_add_output(g, "output", y, &st) == 0, "%s", st.msg);
  return g;
}

static void start(nnc_model *m, const bn_case *c) {
  nnc_status st = {0};
  nnc_model_init(m, 1);
  m->spec.loss = NNC_LOSS_MSE;
  m->spec.optimizer = (nnc_optimizer){NNC_OPT_SGD, 0.1, 0, 0, 0, 0, 0, 0, 0, 0};
  m->has_spec = 1;
  int64_t ch[1] = {C};
  const float *values[4] = {mean0, var0, gamma0, beta0};
  for (int i = 0; i < 4; i++)
    if (has_weight(c, i)) memcpy(nnc_weights_add(&m->weights, weight_names[i], 1, ch, &st)->data, values[i], sizeof gamma0);
}

static void batch(const bn_case *c, float *x, float *y) {
  for (int64_t i = 0; i < count_of(c); i++) {
    x[i] = (float)sin(1.7 * (double)i) * 2 + (float)(i % C);
    y[i] = (float)cos(0.9 * (double)i);
  }
}

/* Per channel over the batch: mean and biased variance. */
static void moments(const bn_case *c, const float *x, double mean[C], double var[C]) {
  int64_t n = count_of(c) / C;
  for (int j = 0; j < C; j++) {
    double s = 0, q = 0;
    for (int64_t r = 0; r < n; r++) s += x[r * C + j];
    mean[j] = s / (double)n;
    for (int64_t r = 0; r < n; r++) q += (x[r * C + j] - mean[j]) * (x[r * C + j] - mean[j]);
    var[j] = q / (double)n;
  }
}

static void expect_close(const char *what, int j, double got, double want, double tol) {
  ck_assert_msg(fabs(got - want) <= tol * (1 + fabs(want)), "%s[%d] = %.9g, expected %.9g", what, j, got, want);
}

START_TEST(train_step_moves_the_moving_statistics) {
  const bn_case *c = &bn_cases[_i];
  nnc_graph *g = bn_model(c);
  nnc_model m;
  nnc_status st = {0};
  start(&m, c);
  float x[MAX_VALUES], y[MAX_VALUES];
  batch(c, x, y);
  nnc_compiled *cp = nnc_model_compiled(&m, g, NNC_KIND_TRAIN, c->shape[0], &st);
  ck_assert_msg(cp, "%s", st.msg);
  ck_assert_msg(nnc_model_run(&m, cp, x, y, &st) == 0, "%s", st.msg);
  double mean[C], var[C], loss = 0;
  moments(c, x, mean, var);
  int64_t n = count_of(c) / C;
  /* The training form: the batch's statistics, biased variance. */
  for (int64_t i = 0; i < count_of(c); i++) {
    int j = (int)(i % C);
    double out = (x[i] - mean[j]) / sqrt(var[j] + 1e-3) * gamma_of(c, j) + beta_of(c, j);
    loss += (out - y[i]) * (out - y[i]) / (double)count_of(c);
  }
  expect_close("loss", 0, nnc_model_scalar(&m, cp, cp->loss), loss, 1e-6);
  const float *mm = nnc_weights_find(&m.weights, "bn/moving_mean")->data;
  const float *mv = nnc_weights_find(&m.weights, "bn/moving_variance")->data;
  for (int j = 0; j < C; j++) {
    double fed = c->rank == 4 ? var[j] * (double)n / (double)(n - 1) : var[j];
    expect_close("moving_mean", j, mm[j], mean0[j] * 0.99 + mean[j] * 0.01, 1e-6);
    expect_close("moving_variance", j, mv[j], var0[j] * 0.99 + fed * 0.01, 1e-6);
  }
  /* gamma and beta train; the moving statistics have no optimizer slots,
   * and a missing gamma or beta none either. */
  if (c->scale) ck_assert(nnc_weights_find(&m.weights, "bn/gamma")->data[0] != gamma0[0]);
  if (c->center) ck_assert(nnc_weights_find(&m.weights, "bn/beta")->data[0] != beta0[0]);
  ck_assert_ptr_null(nnc_weights_find(&m.weights, "bn/moving_mean/momentum"));
  ck_assert_int_eq(m.weights.count, 2 + c->scale + c->center);
  nnc_model_free(&m);
  nnc_graph_free(g);
}
END_TEST

/* Inference: (x - moving_mean) / sqrt(moving_variance + eps) * gamma + beta,
 * on the interpreter and the cpu backend, fused and not. */
START_TEST(inference_uses_the_moving_statistics) {
  const bn_case *c = &bn_cases[_i];
  nnc_graph *g = bn_model(c);
  float x[MAX_VALUES], y[MAX_VALUES];
  batch(c, x, y);
  const nnc_backend *backends[3] = {&nnc_backend_interp, &nnc_backend_cpu, &nnc_backend_cpu};
  for (int b = 0; b < 3; b++) {
    nnc_model m;
    nnc_status st = {0};
    start(&m, c);
    m.backend = backends[b];
    m.opts.no_fuse = b == 2;
    nnc_compiled *cp = nnc_model_compiled(&m, g, NNC_KIND_PREDICT, c->shape[0], &st);
    ck_assert_msg(cp, "%s", st.msg);
    ck_assert_msg(nnc_model_run(&m, cp, x, NULL, &st) == 0, "%s", st.msg);
    const float *out = m.backend->value(cp->exec, cp->output);
    for (int64_t i = 0; i < count_of(c); i++) {
      int j = (int)(i % C);
      expect_close("output", (int)i, out[i], (x[i] - mean0[j]) / sqrt(var0[j] + 1e-3) * gamma_of(c, j) + beta_of(c, j),
                   1e-6);
    }
    nnc_model_free(&m);
  }
  nnc_graph_free(g);
}
END_TEST

TCase *tcase_batch_norm(void) {
  TCase *tc = tcase_create("batch_norm");
  tcase_add_loop_test(tc, train_step_moves_the_moving_statistics, 0, (int)(sizeof bn_cases / sizeof bn_cases[0]));
  tcase_add_loop_test(tc, inference_uses_the_moving_statistics, 0, (int)(sizeof bn_cases / sizeof bn_cases[0]));
  return tc;
}
