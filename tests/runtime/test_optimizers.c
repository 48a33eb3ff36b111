/* One training step of each optimizer on a small softmax regression, against
 * the same step worked out from Keras's formulas (MODEL_SCRIPTS.md) in
 * double precision: a known answer for the loss, autodiff, optimizer and
 * model passes together. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/train/check_update.h"
#include "runtime/model.h"
#include "tests/runtime/suites.h"

enum { B = 2, IN = 3, OUT = 2 };

static const float x[B * IN] = {0.5f, -1.0f, 2.0f, 1.5f, 0.25f, -0.75f};
static const int32_t labels[B] = {1, 0};
static const float w0[IN * OUT] = {0.1f, -0.2f, 0.3f, 0.05f, -0.4f, 0.2f};
static const float b0[OUT] = {0.01f, -0.02f};

/* x @ w + b, softmax: the model's forward graph. */
static nnc_graph *softmax_regression(void) {
  nnc_graph *g = nnc_graph_new();
  nnc_status st = {0};
  nnc_node_spec in = {.op = NNC_OP_INPUT, .name = "x", .dtype = NNC_F32, .rank = 2, .shape = {NNC_DIM_ANY, IN}};
  nnc_node_spec w = {.op = NNC_OP_PARAM, .name = "dense/kernel", .dtype = NNC_F32, .rank = 2, .shape = {IN, OUT}};
  nnc_node_spec b = {.op = NNC_OP_PARAM, .name = "dense/bias", .dtype = NNC_F32, .rank = 1, .shape = {OUT}};
  int32_t ids[2] = {nnc_graph_add(g, &in, &st), nnc_graph_add(g, &w, &st)};
  int32_t y = nnc_graph_op(g, NNC_OP_MATMUL, ids, 2, NULL, &st);
  int32_t yb[2] = {y, nnc_graph_add(g, &b, &st)};
  y = nnc_graph_op(g, NNC_OP_BIAS_ADD, yb, 2, NULL, &st);
  y = nnc_graph_op(g, NNC_OP_SOFTMAX, &y, 1, NULL, &st);
  ck_assert_msg(y >= 0, "%s", st.msg);
  nnc_graph_add_output(g, "output", y, &st);
  return g;
}

/* The gradient of the mean sparse cross-entropy: (softmax - onehot) / B. */
static void expected_grads(double gw[IN * OUT], double gb[OUT]) {
  memset(gw, 0, sizeof(double) * IN * OUT);
  memset(gb, 0, sizeof(double) * OUT);
  for (int r = 0; r < B; r++) {
    double z[OUT], sum = 0;
    for (int j = 0; j < OUT; j++) {
      z[j] = b0[j];
      for (int i = 0; i < IN; i++) z[j] += (double)x[r * IN + i] * w0[i * OUT + j];
    }
    for (int j = 0; j < OUT; j++) sum += exp(z[j]);
    for (int j = 0; j < OUT; j++) {
      double g = (exp(z[j]) / sum - (labels[r] == j)) / B;
      gb[j] += g;
      for (int i = 0; i < IN; i++) gw[i * OUT + j] += (double)x[r * IN + i] * g;
    }
  }
}

static void start_model(nnc_model *m, const nnc_optimizer *opt) {
  nnc_status st = {0};
  nnc_model_init(m, 1);
  m->spec.loss = NNC_LOSS_SPARSE_XENT;
  m->spec.optimizer = *opt;
  m->has_spec = 1;
  int64_t ws[2] = {IN, OUT}, bs[1] = {OUT};
  memcpy(nnc_weights_add(&m->weights, "dense/kernel", 2, ws, &st)->data, w0, sizeof w0);
  memcpy(nnc_weights_add(&m->weights, "dense/bias", 1, bs, &st)->data, b0, sizeof b0);
}

static nnc_compiled *train_step(nnc_model *m, const nnc_graph *g) {
  nnc_status st = {0};
  nnc_compiled *c = nnc_model_compiled(m, g, NNC_KIND_TRAIN, B, &st);
  ck_assert_msg(c, "%s", st.msg);
  ck_assert_msg(nnc_model_run(m, c, x, labels, &st) == 0, "%s", st.msg);
  return c;
}

/* Runs `steps` training steps and returns the model (caller frees). */
static void train(nnc_model *m, const nnc_optimizer *opt, int steps) {
  nnc_graph *g = softmax_regression();
  start_model(m, opt);
  for (int s = 0; s < steps; s++) train_step(m, g);
  nnc_graph_free(g);
}

static void expect_weights(nnc_model *m, const double w[IN * OUT], const double b[OUT]) {
  const float *got_w = nnc_weights_find(&m->weights, "dense/kernel")->data;
  const float *got_b = nnc_weights_find(&m->weights, "dense/bias")->data;
  for (int i = 0; i < IN * OUT; i++)
    ck_assert_msg(fabs(got_w[i] - w[i]) <= 1e-6 * (1 + fabs(w[i])), "kernel[%d] = %.9g, expected %.9g", i, got_w[i], w[i]);
  for (int j = 0; j < OUT; j++)
    ck_assert_msg(fabs(got_b[j] - b[j]) <= 1e-6 * (1 + fabs(b[j])), "bias[%d] = %.9g, expected %.9g", j, got_b[j], b[j]);
}

START_TEST(sgd_step) {
  nnc_optimizer opt = {NNC_OPT_SGD, 0.1, 0, 0, 0, 0, 0, 0, 0, 0};
  double gw[IN * OUT], gb[OUT], w[IN * OUT], b[OUT];
  expected_grads(gw, gb);
  for (int i = 0; i < IN * OUT; i++) w[i] = w0[i] - 0.1 * gw[i];
  for (int j = 0; j < OUT; j++) b[j] = b0[j] - 0.1 * gb[j];
  nnc_model m;
  train(&m, &opt, 1);
  expect_weights(&m, w, b);
  nnc_model_free(&m);
}
END_TEST

/* Two steps so the velocity carries over: v1 = -lr g, v2 = m v1 - lr g
 * (the gradient at the moved weights is recomputed, so step 2 uses the
 * library's own gradient only through step 1; here we check step 1 and the
 * velocity slot). */
START_TEST(sgd_momentum_and_nesterov_step) {
  for (int nesterov = 0; nesterov <= 1; nesterov++) {
    nnc_optimizer opt = {NNC_OPT_SGD, 0.1, 0, 0, 0, 0.9, nesterov, 0, 0, 0};
    double gw[IN * OUT], gb[OUT], w[IN * OUT], b[OUT];
    expected_grads(gw, gb);
    for (int i = 0; i < IN * OUT; i++) {
      double v = -0.1 * gw[i];
      w[i] = nesterov ? w0[i] + 0.9 * v - 0.1 * gw[i] : w0[i] + v;
    }
    for (int j = 0; j < OUT; j++) {
      double v = -0.1 * gb[j];
      b[j] = nesterov ? b0[j] + 0.9 * v - 0.1 * gb[j] : b0[j] + v;
    }
    nnc_model m;
    train(&m, &opt, 1);
    expect_weights(&m, w, b);
    const float *vel = nnc_weights_find(&m.weights, "dense/kernel/momentum")->data;
    ck_assert_msg(fabs(vel[0] + 0.1 * gw[0]) < 1e-7, "velocity %g", vel[0]);
    nnc_model_free(&m);
  }
}
END_TEST

/* Adam at t = 1: m = (1-b1) g, v = (1-b2) g^2, lr_t = lr sqrt(1-b2)/(1-b1),
 * w -= lr_t m / (sqrt(v) + eps). */
START_TEST(adam_step) {
  nnc_optimizer opt = {NNC_OPT_ADAM, 0.001, 0.9, 0.999, 0, 0, 0, 1e-7, 0, 0};
  double gw[IN * OUT], gb[OUT], w[IN * OUT], b[OUT];
  expected_grads(gw, gb);
  double lr_t = 0.001 * sqrt(1 - 0.999) / (1 - 0.9);
  for (int i = 0; i < IN * OUT; i++) {
    double mm = 0.1 * gw[i], vv = 0.001 * gw[i] * gw[i];
    w[i] = w0[i] - lr_t * mm / (sqrt(vv) + 1e-7);
  }
  for (int j = 0; j < OUT; j++) {
    double mm = 0.1 * gb[j], vv = 0.001 * gb[j] * gb[j];
    b[j] = b0[j] - lr_t * mm / (sqrt(vv) + 1e-7);
  }
  nnc_model m;
  train(&m, &opt, 1);
  expect_weights(&m, w, b);
  ck_assert_int_eq(m.steps, 1);
  nnc_model_free(&m);
}
END_TEST

/* RMSprop: v = rho v + (1-rho) g^2 from v = 0; w -= lr g / sqrt(v + eps). */
START_TEST(rmsprop_step) {
  nnc_optimizer opt = {NNC_OPT_RMSPROP, 0.001, 0, 0, 0.9, 0, 0, 1e-7, 0, 0};
  double gw[IN * OUT], gb[OUT], w[IN * OUT], b[OUT];
  expected_grads(gw, gb);
  for (int i = 0; i < IN * OUT; i++) w[i] = w0[i] - 0.001 * gw[i] / sqrt(0.1 * gw[i] * gw[i] + 1e-7);
  for (int j = 0; j < OUT; j++) b[j] = b0[j] - 0.001 * gb[j] / sqrt(0.1 * gb[j] * gb[j] + 1e-7);
  nnc_model m;
  train(&m, &opt, 1);
  expect_weights(&m, w, b);
  nnc_model_free(&m);
}
END_TEST

/* Sets every element of slot `name` of the model's weights to `value`
 * before the first step, as if earlier steps had left it there. */
static void preset_slot(nnc_model *m, const char *name, const int64_t *shape, int rank, float value) {
  nnc_status st = {0};
  nnc_weight *w = nnc_weights_add(&m->weights, name, rank, shape, &st);
  ck_assert_msg(w, "%s", st.msg);
  for (int64_t i = 0; i < nnc_weight_numel(w); i++) w->data[i] = value;
}

static void train_preset(nnc_model *m, const nnc_optimizer *opt, const char *slot, float value) {
  nnc_graph *g = softmax_regression();
  start_model(m, opt);
  char name[64];
  int64_t ws[2] = {IN, OUT}, bs[1] = {OUT};
  snprintf(name, sizeof name, "dense/kernel/%s", slot);
  preset_slot(m, name, ws, 2, value);
  snprintf(name, sizeof name, "dense/bias/%s", slot);
  preset_slot(m, name, bs, 1, value);
  train_step(m, g);
  nnc_graph_free(g);
}

/* Adam with amsgrad (Keras 2): vhat = max(vhat, v), w -= lr_t m / (sqrt(vhat) + eps).
 * vhat starts at 0.5, above this step's v, so it divides instead of v: a
 * run that ignored amsgrad would move the weights about 20 times further. */
START_TEST(adam_amsgrad_step) {
  nnc_optimizer opt = {NNC_OPT_ADAM, 0.001, 0.9, 0.999, 0, 0, 0, 1e-7, 1, 0};
  double gw[IN * OUT], gb[OUT], w[IN * OUT], b[OUT];
  expected_grads(gw, gb);
  double lr_t = 0.001 * sqrt(1 - 0.999) / (1 - 0.9);
  for (int i = 0; i < IN * OUT; i++) {
    double vv = 0.001 * gw[i] * gw[i];
    w[i] = w0[i] - lr_t * 0.1 * gw[i] / (sqrt(vv > 0.5 ? vv : 0.5) + 1e-7);
  }
  for (int j = 0; j < OUT; j++) {
    double vv = 0.001 * gb[j] * gb[j];
    b[j] = b0[j] - lr_t * 0.1 * gb[j] / (sqrt(vv > 0.5 ? vv : 0.5) + 1e-7);
  }
  nnc_model m;
  train_preset(&m, &opt, "vhat", 0.5f);
  expect_weights(&m, w, b);
  ck_assert_float_eq(nnc_weights_find(&m.weights, "dense/kernel/vhat")->data[0], 0.5f);
  nnc_model_free(&m);
}
END_TEST

/* Centered RMSprop from zero slots: rms = 0.1 g^2, mg = 0.1 g, so
 * w -= lr g / sqrt(0.1 g^2 - 0.01 g^2 + eps). */
START_TEST(rmsprop_centered_step) {
  nnc_optimizer opt = {NNC_OPT_RMSPROP, 0.001, 0, 0, 0.9, 0, 0, 1e-7, 0, 1};
  double gw[IN * OUT], gb[OUT], w[IN * OUT], b[OUT];
  expected_grads(gw, gb);
  for (int i = 0; i < IN * OUT; i++) w[i] = w0[i] - 0.001 * gw[i] / sqrt(0.09 * gw[i] * gw[i] + 1e-7);
  for (int j = 0; j < OUT; j++) b[j] = b0[j] - 0.001 * gb[j] / sqrt(0.09 * gb[j] * gb[j] + 1e-7);
  nnc_model m;
  train(&m, &opt, 1);
  expect_weights(&m, w, b);
  const float *mg = nnc_weights_find(&m.weights, "dense/kernel/mg")->data;
  ck_assert_msg(fabs(mg[0] - 0.1 * gw[0]) < 1e-8, "mg %g", mg[0]);
  nnc_model_free(&m);
}
END_TEST

/* RMSprop with momentum 0.9, plain and centered, the momentum slot at 0.01:
 * mom = 0.9 * 0.01 + lr g / sqrt(d + eps), w -= mom (TF's ApplyRMSProp and
 * ApplyCenteredRMSProp). */
START_TEST(rmsprop_momentum_step) {
  for (int centered = 0; centered <= 1; centered++) {
    nnc_optimizer opt = {NNC_OPT_RMSPROP, 0.001, 0, 0, 0.9, 0.9, 0, 1e-7, 0, centered};
    double gw[IN * OUT], gb[OUT], w[IN * OUT], b[OUT], share = centered ? 0.09 : 0.1;
    expected_grads(gw, gb);
    for (int i = 0; i < IN * OUT; i++) w[i] = w0[i] - (0.009 + 0.001 * gw[i] / sqrt(share * gw[i] * gw[i] + 1e-7));
    for (int j = 0; j < OUT; j++) b[j] = b0[j] - (0.009 + 0.001 * gb[j] / sqrt(share * gb[j] * gb[j] + 1e-7));
    nnc_model m;
    train_preset(&m, &opt, "momentum", 0.01f);
    expect_weights(&m, w, b);
    const float *mom = nnc_weights_find(&m.weights, "dense/kernel/momentum")->data;
    ck_assert_msg(fabs(mom[0] - (w0[0] - w[0])) < 1e-7, "momentum %g", mom[0]);
    nnc_model_free(&m);
  }
}
END_TEST

/* nnc check's reference update (runtime/train/check_update.c): the optimizer
 * pass on a step's kept gradients, from the weights and slots before it,
 * gives the weights and slots training left. Step 2, so slots and Adam's
 * lr_t are past their first values. */
START_TEST(check_reference_update_matches_training) {
  const nnc_optimizer opts[] = {
      {NNC_OPT_SGD, 0.1, 0, 0, 0, 0, 0, 0, 0, 0},        {NNC_OPT_SGD, 0.1, 0, 0, 0, 0.9, 0, 0, 0, 0},
      {NNC_OPT_SGD, 0.1, 0, 0, 0, 0.9, 1, 0, 0, 0},      {NNC_OPT_ADAM, 0.001, 0.9, 0.999, 0, 0, 0, 1e-7, 0, 0},
      {NNC_OPT_RMSPROP, 0.001, 0, 0, 0.9, 0, 0, 1e-7, 0, 0},  {NNC_OPT_ADAM, 0.001, 0.9, 0.999, 0, 0, 0, 1e-7, 1, 0},
      {NNC_OPT_RMSPROP, 0.001, 0, 0, 0.9, 0.9, 0, 1e-7, 0, 1},
  };
  for (size_t k = 0; k < sizeof opts / sizeof opts[0]; k++) {
    nnc_graph *g = softmax_regression();
    nnc_model m;
    nnc_status st = {0};
    start_model(&m, &opts[k]);
    m.backend = &nnc_backend_interp;
    m.keep_grads = 1;
    train_step(&m, g);
    nnc_weights before = {0}, after = {0};
    ck_assert_int_eq(nnc_weights_copy(&before, &m.weights, &st), 0);
    nnc_compiled *c = train_step(&m, g);
    nnc_check_step s = {c->g, m.backend, c->exec, &m.spec, 2, &before};
    ck_assert_msg(nnc_check_reference_update(&s, &after, &st) == 0, "%s", st.msg);
    ck_assert_int_eq(after.count, m.weights.count);
    for (int i = 0; i < after.count; i++) {
      const nnc_weight *want = &m.weights.items[i], *got = nnc_weights_find(&after, want->name);
      ck_assert_msg(got != NULL, "optimizer %zu: no %s", k, want->name);
      for (int64_t j = 0; j < nnc_weight_numel(want); j++)
        ck_assert_msg(fabsf(got->data[j] - want->data[j]) <= 1e-7f * (1 + fabsf(want->data[j])),
                      "optimizer %zu: %s[%lld] = %.9g, training left %.9g", k, want->name, (long long)j,
                      got->data[j], want->data[j]);
    }
    nnc_weights_free(&before);
    nnc_weights_free(&after);
    nnc_model_free(&m);
    nnc_graph_free(g);
  }
}
END_TEST

TCase *tcase_optimizers(void) {
  TCase *tc = tcase_create("optimizers");
  tcase_add_test(tc, sgd_step);
  tcase_add_test(tc, sgd_momentum_and_nesterov_step);
  tcase_add_test(tc, adam_step);
  tcase_add_test(tc, rmsprop_step);
  tcase_add_test(tc, adam_amsgrad_step);
  tcase_add_test(tc, rmsprop_centered_step);
  tcase_add_test(tc, rmsprop_momentum_step);
  tcase_add_test(tc, check_reference_update_matches_training);
  return tc;
}
