/* Training through runtime/model.c on the CPU backend against the
 * interpreter: a small convolutional network (conv, bias, relu, pooling,
 * dropout, flatten, dense, softmax) trained for a few steps from the same
 * weights on the same batches. The losses of every step and every weight
 * and optimizer slot at the end must agree; evaluation and prediction too. */
#include <math.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/model.h"
#include "runtime/rng.h"
#include "tests/cpu/suites.h"

enum { BATCH = 6, STEPS = 4, CLASSES = 5 };

/* x[?,8,8,2] -> conv 3x3x4 same + bias + relu -> max_pool 2 -> dropout ->
 * flatten -> dense 5 + bias -> softmax. */
static nnc_graph *small_cnn(void) {
  nnc_graph *g = nnc_graph_new();
  int32_t x = cputest_leaf(g, NNC_OP_INPUT, "x", "f32[-1,8,8,2]");
  int32_t src[2] = {x, cputest_leaf(g, NNC_OP_PARAM, "conv2d/kernel", "f32[3,3,2,4]")};
  nnc_attrs same = {.stride = {1, 1}, .pad = NNC_PAD_SAME};
  int32_t h = cputest_op(g, NNC_OP_CONV2D, src, 2, &same);
  src[0] = h, src[1] = cputest_leaf(g, NNC_OP_PARAM, "conv2d/bias", "f32[4]");
  h = cputest_op(g, NNC_OP_BIAS_ADD, src, 2, NULL);
  h = cputest_op(g, NNC_OP_RELU, &h, 1, NULL);
  nnc_attrs pool = {.window = {2, 2}, .stride = {2, 2}};
  h = cputest_op(g, NNC_OP_MAX_POOL, &h, 1, &pool);
  nnc_attrs drop = {.rate = 0.25f, .stream = 77};
  h = cputest_op(g, NNC_OP_DROPOUT, &h, 1, &drop);
  nnc_attrs flat = {.shape_rank = 1, .shape = {-1}};
  h = cputest_op(g, NNC_OP_RESHAPE, &h, 1, &flat);
  src[0] = h, src[1] = cputest_leaf(g, NNC_OP_PARAM, "dense/kernel", "f32[64,5]");
  h = cputest_op(g, NNC_OP_MATMUL, src, 2, NULL);
  src[0] = h, src[1] = cputest_leaf(g, NNC_OP_PARAM, "dense/bias", "f32[5]");
  h = cputest_op(g, NNC_OP_BIAS_ADD, src, 2, NULL);
  h = cputest_op(g, NNC_OP_SOFTMAX, &h, 1, NULL);
  nnc_status st = {0};
  ck_assert_int_eq(nnc_graph_add_output(g, "output", h, &st), 0);
  return g;
}

/* Batch s: inputs in [-1, 1) and labels below CLASSES. */
static void batch_of(int s, float *x, int32_t *y) {
  for (int i = 0; i < BATCH * 8 * 8 * 2; i++) x[i] = 2 * nnc_rng_uniform(11, (uint32_t)s, (uint64_t)i) - 1;
  for (int i = 0; i < BATCH; i++) y[i] = (int32_t)(nnc_rng_uniform(12, (uint32_t)s, (uint64_t)i) * CLASSES);
}

static const nnc_optimizer optimizers[] = {
    {NNC_OPT_ADAM, 0.001, 0.9, 0.999, 0, 0, 0, 1e-7, 0, 0},
    {NNC_OPT_RMSPROP, 0.001, 0, 0, 0.9, 0, 0, 1e-7, 0, 0},
    {NNC_OPT_SGD, 0.05, 0, 0, 0, 0.9, 1, 0, 0, 0},
    {NNC_OPT_SGD, 0.05, 0, 0, 0, 0, 0, 0, 0, 0},
    {NNC_OPT_ADAM, 0.001, 0.9, 0.999, 0, 0, 0, 1e-7, 1, 0},
    {NNC_OPT_RMSPROP, 0.001, 0, 0, 0.9, 0.9, 0, 1e-7, 0, 1},
};

START_TEST(test_training_agrees) {
  nnc_graph *g = small_cnn();
  nnc_model want, got;
  cputest_start_model(&want, &nnc_backend_interp, g, &optimizers[_i], 5, 9, 0.5f);
  cputest_start_model(&got, &nnc_backend_cpu, g, &optimizers[_i], 5, 9, 0.5f);
  nnc_status st = {0};
  float x[BATCH * 8 * 8 * 2];
  int32_t y[BATCH];
  for (int s = 0; s < STEPS; s++) {
    batch_of(s, x, y);
    double loss[2];
    nnc_model *ms[2] = {&want, &got};
    for (int k = 0; k < 2; k++) {
      nnc_compiled *c = nnc_model_compiled(ms[k], g, NNC_KIND_TRAIN, BATCH, &st);
      ck_assert_msg(c != NULL, "%s", st.msg);
      ck_assert_msg(nnc_model_run(ms[k], c, x, y, &st) == 0, "%s", st.msg);
      loss[k] = nnc_model_scalar(ms[k], c, c->loss);
    }
    ck_assert_msg(fabs(loss[1] - loss[0]) <= 1e-5 * (1 + fabs(loss[0])), "step %d: loss %.9g, the interpreter's %.9g", s,
                  loss[1], loss[0]);
  }
  ck_assert_int_eq(got.weights.count, want.weights.count);
  for (int i = 0; i < want.weights.count; i++) {
    const nnc_weight *w = &want.weights.items[i];
    const nnc_weight *v = nnc_weights_find(&got.weights, w->name);
    ck_assert_msg(v != NULL, "no weight %s", w->name);
    cputest_expect_close(w->name, v->data, w->data, nnc_weight_numel(w), 1e-4);
  }
  /* Evaluation (dropout off) and prediction of the trained weights. */
  nnc_graph_kind kinds[2] = {NNC_KIND_EVAL, NNC_KIND_PREDICT};
  for (int k = 0; k < 2; k++) {
    nnc_compiled *cw = nnc_model_compiled(&want, g, kinds[k], BATCH, &st);
    nnc_compiled *cg = nnc_model_compiled(&got, g, kinds[k], BATCH, &st);
    ck_assert_msg(cw && cg, "%s", st.msg);
    ck_assert_int_eq(nnc_model_run(&want, cw, x, kinds[k] == NNC_KIND_EVAL ? y : NULL, &st), 0);
    ck_assert_int_eq(nnc_model_run(&got, cg, x, kinds[k] == NNC_KIND_EVAL ? y : NULL, &st), 0);
    cputest_expect_close("prediction", got.backend->value(cg->exec, cg->output), want.backend->value(cw->exec, cw->output),
                         BATCH * CLASSES, 1e-5);
    if (kinds[k] == NNC_KIND_EVAL)
      ck_assert_double_eq(nnc_model_scalar(&got, cg, cg->correct), nnc_model_scalar(&want, cw, cw->correct));
  }
  nnc_model_free(&got);
  nnc_model_free(&want);
  nnc_graph_free(g);
}
END_TEST

/* Same seed, same weights: two CPU runs agree bit for bit. */
START_TEST(test_training_is_deterministic) {
  nnc_graph *g = small_cnn();
  nnc_model a, b;
  cputest_start_model(&a, &nnc_backend_cpu, g, &optimizers[0], 5, 9, 0.5f);
  cputest_start_model(&b, &nnc_backend_cpu, g, &optimizers[0], 5, 9, 0.5f);
  nnc_status st = {0};
  float x[BATCH * 8 * 8 * 2];
  int32_t y[BATCH];
  for (int s = 0; s < STEPS; s++) {
    batch_of(s, x, y);
    nnc_model *ms[2] = {&a, &b};
    for (int k = 0; k < 2; k++) {
      nnc_compiled *c = nnc_model_compiled(ms[k], g, NNC_KIND_TRAIN, BATCH, &st);
      ck_assert_msg(c && nnc_model_run(ms[k], c, x, y, &st) == 0, "%s", st.msg);
    }
  }
  for (int i = 0; i < a.weights.count; i++)
    ck_assert_msg(memcmp(a.weights.items[i].data, nnc_weights_find(&b.weights, a.weights.items[i].name)->data,
                         sizeof(float) * (size_t)nnc_weight_numel(&a.weights.items[i])) == 0,
                  "%s differs between two runs", a.weights.items[i].name);
  nnc_model_free(&a);
  nnc_model_free(&b);
  nnc_graph_free(g);
}
END_TEST

TCase *tcase_cpu_train(void) {
  TCase *tc = tcase_create("cpu_train");
  tcase_add_loop_test(tc, test_training_agrees, 0, (int)(sizeof optimizers / sizeof optimizers[0]));
  tcase_add_test(tc, test_training_is_deterministic);
  return tc;
}
