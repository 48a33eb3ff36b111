/* Whole train steps on cuda-emu against the interpreter: a small conv net
 * (conv, pool, dense, dropout, softmax head) through runtime/model.c, from
 * one seed and the same initial weights, so the dropout masks agree too.
 * After a few Adam steps the losses, accuracy counts and every weight and
 * optimizer slot must agree closely; the run is made with the fuse pass on
 * and off. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/model.h"
#include "tests/codegen/harness.h"
#include "tests/codegen/suites.h"
#include "tests/testutil.h"

enum { BATCH = 8, SIDE = 8, CLASSES = 10, STEPS = 4 };

typedef struct net {
  nnc_graph *g;
  nnc_status st;
} net;

static int32_t param(net *n, const char *name, int rank, int64_t a, int64_t b, int64_t c, int64_t d) {
  nnc_node_spec s = {.op = NNC_OP_PARAM, .name = name, .dtype = NNC_F32, .rank = rank, .shape = {a, b, c, d}};
  int32_t id = nnc_graph_add(n->g, &s, &n->st);
  ck_assert_msg(id >= 0, "%s", n->st.msg);
  return id;
}

static int32_t apply(net *n, nnc_op op, int32_t x, int32_t y, const nnc_attrs *a) {
  int32_t src[2] = {x, y};
  int32_t id = nnc_graph_op(n->g, op, src, nnc_ops[op].arity, a, &n->st);
  ck_assert_msg(id >= 0, "%s", n->st.msg);
  return id;
}

/* Conv2D(4, 3, same, relu) -> MaxPool(2) -> Dropout(0.5) -> Conv2D(6, 3, valid, tanh) ->
 * Flatten -> Dense(16, relu) -> Dropout(0.25) -> Dense(10, softmax). */
static nnc_graph *conv_net(void) {
  net n = {nnc_graph_new(), {0}};
  nnc_node_spec in = {.op = NNC_OP_INPUT, .name = "x", .dtype = NNC_F32, .rank = 4,
                      .shape = {NNC_DIM_ANY, SIDE, SIDE, 1}};
  int32_t x = nnc_graph_add(n.g, &in, &n.st);
  nnc_attrs same = {.stride = {1, 1}, .pad = NNC_PAD_SAME}, valid = {.stride = {1, 1}, .pad = NNC_PAD_VALID};
  nnc_attrs pool = {.window = {2, 2}, .stride = {2, 2}, .pad = NNC_PAD_VALID};
  nnc_attrs flat = {.shape_rank = 1, .shape = {-1}}, drop = {.rate = 0.25f, .stream = 4242};
  nnc_attrs pool_drop = {.rate = 0.5f, .stream = 4343};
  x = apply(&n, NNC_OP_CONV2D, x, param(&n, "conv2d/kernel", 4, 3, 3, 1, 4), &same);
  x = apply(&n, NNC_OP_BIAS_ADD, x, param(&n, "conv2d/bias", 1, 4, 0, 0, 0), NULL);
  x = apply(&n, NNC_OP_RELU, x, -1, NULL);
  x = apply(&n, NNC_OP_MAX_POOL, x, -1, &pool);
  x = apply(&n, NNC_OP_DROPOUT, x, -1, &pool_drop); /* its gradient joins the pool-grad group */
  x = apply(&n, NNC_OP_CONV2D, x, param(&n, "conv2d_1/kernel", 4, 3, 3, 4, 6), &valid);
  x = apply(&n, NNC_OP_BIAS_ADD, x, param(&n, "conv2d_1/bias", 1, 6, 0, 0, 0), NULL);
  x = apply(&n, NNC_OP_TANH, x, -1, NULL);
  x = apply(&n, NNC_OP_RESHAPE, x, -1, &flat);
  x = apply(&n, NNC_OP_MATMUL, x, param(&n, "dense/kernel", 2, 24, 16, 0, 0), NULL);
  x = apply(&n, NNC_OP_BIAS_ADD, x, param(&n, "dense/bias", 1, 16, 0, 0, 0), NULL);
  x = apply(&n, NNC_OP_RELU, x, -1, NULL);
  x = apply(&n, NNC_OP_DROPOUT, x, -1, &drop);
  x = apply(&n, NNC_OP_MATMUL, x, param(&n, "dense_1/kernel", 2, 16, CLASSES, 0, 0), NULL);
  x = apply(&n, NNC_OP_BIAS_ADD, x, param(&n, "dense_1/bias", 1, CLASSES, 0, 0, 0), NULL);
  x = apply(&n, NNC_OP_SOFTMAX, x, -1, NULL);
  ck_assert_int_eq(nnc_graph_add_output(n.g, "output", x, &n.st), 0);
  return n.g;
}

/* Glorot-uniform kernels and small random biases, from the model's seed. */
static void init_weights(nnc_model *m, const nnc_graph *g) {
  nnc_status st = {0};
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    if (n->op != NNC_OP_PARAM) continue;
    nnc_weight *w = nnc_weights_add(&m->weights, n->name, n->rank, n->shape, &st);
    ck_assert_msg(w, "%s", st.msg);
    double receptive = n->rank == 4 ? (double)(n->shape[0] * n->shape[1]) : 1;
    nnc_init init = {.kind = n->rank == 1 ? "random_uniform" : "glorot_uniform",
                     .fan_in = receptive * (double)n->shape[n->rank - 2 < 0 ? 0 : n->rank - 2],
                     .fan_out = receptive * (double)n->shape[n->rank - 1], .minval = -0.1, .maxval = 0.1};
    ck_assert_msg(nnc_weight_init(w, &init, m->seed, &st) == 0, "%s", st.msg);
  }
}

typedef struct history {
  double loss[STEPS], correct[STEPS];
} history;

/* A model of g on b, trained with Adam on sparse cross-entropy, from seed. */
static void start_model(nnc_model *m, const nnc_backend *b, uint64_t seed, const nnc_graph *g) {
  nnc_model_init(m, seed);
  m->opts = *nnc_test_options();
  m->backend = b;
  m->spec.loss = NNC_LOSS_SPARSE_XENT;
  m->spec.accuracy = 1;
  m->spec.optimizer = (nnc_optimizer){NNC_OPT_ADAM, 0.01, 0.9, 0.999, 0, 0, 0, 1e-7, 0, 0};
  m->has_spec = 1;
  init_weights(m, g);
}

static void train(nnc_model *m, const nnc_backend *b, int no_fuse, const nnc_graph *g, history *h) {
  nnc_status st = {0};
  start_model(m, b, 31, g);
  m->opts.no_fuse = no_fuse;
  static float x[BATCH * SIDE * SIDE];
  static int32_t y[BATCH];
  for (int s = 0; s < STEPS; s++) {
    harness_fill(x, BATCH * SIDE * SIDE, SIDE, DATA_RANDOM, (uint32_t)(500 + s));
    harness_fill(y, BATCH, CLASSES, DATA_CLASSES, (uint32_t)(600 + s));
    nnc_compiled *c = nnc_model_compiled(m, g, NNC_KIND_TRAIN, BATCH, &st);
    ck_assert_msg(c, "%s: %s", b->name, st.msg);
    ck_assert_msg(nnc_model_run(m, c, x, y, &st) == 0, "%s: %s", b->name, st.msg);
    h->loss[s] = nnc_model_scalar(m, c, c->loss);
    h->correct[s] = nnc_model_scalar(m, c, c->correct);
  }
}

static void compare(nnc_model *ref, const history *href, nnc_model *got, const history *hgot, const char *what) {
  for (int s = 0; s < STEPS; s++) {
    double rel = fabs(hgot->loss[s] - href->loss[s]) / fabs(href->loss[s]);
    ck_assert_msg(rel < 1e-5, "%s: step %d loss %.9g, interp %.9g", what, s, hgot->loss[s], href->loss[s]);
    ck_assert_msg(hgot->correct[s] == href->correct[s], "%s: step %d correct %g, interp %g", what, s,
                  hgot->correct[s], href->correct[s]);
  }
  ck_assert_int_eq(got->weights.count, ref->weights.count);
  for (int i = 0; i < ref->weights.count; i++) {
    const nnc_weight *w = &ref->weights.items[i], *v = nnc_weights_find(nnc_model_weights(got), w->name);
    ck_assert_msg(v, "%s: no weight %s", what, w->name);
    double worst = 0;
    for (int64_t k = 0; k < nnc_weight_numel(w); k++) {
      double d = fabs((double)v->data[k] - w->data[k]) / (1e-3 + fabs(w->data[k]));
      if (d > worst) worst = d;
    }
    ck_assert_msg(worst < 1e-4, "%s: weight %s differs by %.3g (relative)", what, w->name, worst);
  }
}

START_TEST(test_conv_net_train_steps_agree) {
  nnc_graph *g = conv_net();
  nnc_model ref, emu, emu_unfused;
  history href, hemu, hunfused;
  train(&ref, &nnc_backend_interp, 0, g, &href);
  train(&emu, &nnc_backend_cuda_emu, 0, g, &hemu);
  train(&emu_unfused, &nnc_backend_cuda_emu, 1, g, &hunfused);
  /* The weights moved, so the comparison means something. */
  ck_assert_msg(href.loss[STEPS - 1] != href.loss[0], "training did not change the loss");
  compare(&ref, &href, &emu, &hemu, "cuda-emu");
  compare(&ref, &href, &emu_unfused, &hunfused, "cuda-emu --no-fuse");
  /* The fused train step really has groups, and runs fewer kernels. */
  nnc_status st = {0};
  nnc_compiled *c = nnc_model_compiled(&emu, g, NNC_KIND_TRAIN, BATCH, &st);
  nnc_compiled *u = nnc_model_compiled(&emu_unfused, g, NNC_KIND_TRAIN, BATCH, &st);
  ck_assert(c && u && c->g->ngroups > 0 && u->g->ngroups == 0);
  /* Every kernel of the real, fused train step compiles for the GPU, and
   * each fused group is one kernel. */
  harness_nvrtc_compile_all(c->g);
  harness_one_kernel_per_group(c->g);
  nnc_model_free(&ref);
  nnc_model_free(&emu);
  nnc_model_free(&emu_unfused);
  nnc_graph_free(g);
}
END_TEST

static int device_copies;

static int counted_copy(nnc_devptr dst, nnc_devptr src, size_t bytes, nnc_cuda_stream *s, nnc_status *st) {
  device_copies++;
  return nnc_cuda_host_device.copy(dst, src, bytes, s, st);
}

/* Adam's updates are pointwise and the last readers of their weights, so
 * each is written over its weight: a step makes no device-to-device copy,
 * and the weights still agree with interp's after the steps. */
START_TEST(test_updates_written_in_place) {
  nnc_graph *g = conv_net();
  nnc_model ref, emu;
  history href, hemu;
  train(&ref, &nnc_backend_interp, 0, g, &href);
  nnc_cuda_device counting = nnc_cuda_host_device;
  counting.copy = counted_copy;
  nnc_cuda_emu_device = &counting;
  device_copies = 0;
  train(&emu, &nnc_backend_cuda_emu, 0, g, &hemu);
  nnc_cuda_emu_device = &nnc_cuda_host_device;
  ck_assert_int_eq(device_copies, 0);
  compare(&ref, &href, &emu, &hemu, "cuda-emu, updates in place");
  nnc_model_free(&ref);
  nnc_model_free(&emu);
  nnc_graph_free(g);
}
END_TEST

/* Evaluation and prediction graphs (dropout off) agree as well. */
START_TEST(test_conv_net_predict_agrees) {
  nnc_graph *g = conv_net();
  nnc_model ref, emu;
  nnc_status st = {0};
  nnc_model_init(&ref, 5);
  nnc_model_init(&emu, 5);
  emu.backend = &nnc_backend_cuda_emu;
  emu.opts = *nnc_test_options();
  init_weights(&ref, g);
  init_weights(&emu, g);
  static float x[3 * SIDE * SIDE];
  harness_fill(x, 3 * SIDE * SIDE, SIDE, DATA_RANDOM, 77);
  nnc_compiled *a = nnc_model_compiled(&ref, g, NNC_KIND_PREDICT, 3, &st);
  nnc_compiled *b = nnc_model_compiled(&emu, g, NNC_KIND_PREDICT, 3, &st);
  ck_assert_msg(a && b, "%s", st.msg);
  ck_assert_msg(nnc_model_run(&ref, a, x, NULL, &st) == 0 && nnc_model_run(&emu, b, x, NULL, &st) == 0, "%s", st.msg);
  harness_one_kernel_per_group(b->g); /* the Dense-softmax head included */
  const float *pa = ref.backend->value(a->exec, a->output), *pb = emu.backend->value(b->exec, b->output);
  ck_assert_ptr_nonnull(pb);
  ck_assert_msg(harness_rel_error(pb, pa, 3 * CLASSES, 1e-30) < 1e-5, "predictions differ");
  nnc_model_free(&ref);
  nnc_model_free(&emu);
  nnc_graph_free(g);
}
END_TEST

/* Weights stay on the device between train steps (keep_updates) and are
 * handed back when anything else needs them: an evaluation graph, a read on
 * the host, a write on the host. Interleaving all three with train steps
 * must give what the interpreter gives, which keeps its weights on the host. */
static void interleaved(nnc_model *m, const nnc_backend *b, const nnc_graph *g, double *out) {
  nnc_status st = {0};
  start_model(m, b, 17, g);
  static float x[BATCH * SIDE * SIDE];
  static int32_t y[BATCH];
  int k = 0;
  for (int s = 0; s < 6; s++) {
    harness_fill(x, BATCH * SIDE * SIDE, SIDE, DATA_RANDOM, (uint32_t)(700 + s));
    harness_fill(y, BATCH, CLASSES, DATA_CLASSES, (uint32_t)(800 + s));
    nnc_compiled *t = nnc_model_compiled(m, g, NNC_KIND_TRAIN, BATCH, &st);
    ck_assert_msg(t && nnc_model_run(m, t, x, y, &st) == 0, "%s: %s", b->name, st.msg);
    out[k++] = nnc_model_scalar(m, t, t->loss);
    if (s == 2) { /* evaluate: another graph reads the trained weights */
      nnc_compiled *e = nnc_model_compiled(m, g, NNC_KIND_EVAL, BATCH, &st);
      ck_assert_msg(e && nnc_model_run(m, e, x, y, &st) == 0, "%s: %s", b->name, st.msg);
      out[k++] = nnc_model_scalar(m, e, e->loss);
    }
    if (s == 3) { /* change a weight on the host, as model:set does */
      nnc_weight *w = nnc_weights_find(nnc_model_weights(m), "dense/bias");
      ck_assert_ptr_nonnull(w);
      for (int64_t i = 0; i < nnc_weight_numel(w); i++) w->data[i] *= 0.5f;
      nnc_model_weights_changed(m);
    }
  }
}

START_TEST(test_weights_stay_on_device_correctly) {
  nnc_graph *g = conv_net();
  nnc_model ref, emu;
  double lref[7], lemu[7];
  interleaved(&ref, &nnc_backend_interp, g, lref);
  interleaved(&emu, &nnc_backend_cuda_emu, g, lemu);
  ck_assert_msg(emu.holder != NULL, "the last train step's weights should still be on the device");
  for (int i = 0; i < 7; i++)
    ck_assert_msg(fabs(lemu[i] - lref[i]) <= 1e-5 * fabs(lref[i]), "run %d: loss %.9g, interp %.9g", i, lemu[i],
                  lref[i]);
  nnc_weights *we = nnc_model_weights(&emu);
  ck_assert_ptr_null(emu.holder);
  for (int i = 0; i < ref.weights.count; i++) {
    const nnc_weight *w = &ref.weights.items[i], *v = nnc_weights_find(we, w->name);
    ck_assert_ptr_nonnull(v);
    ck_assert_msg(harness_rel_error(v->data, w->data, nnc_weight_numel(w), 1e-3) < 1e-4, "weight %s differs",
                  w->name);
  }
  nnc_model_free(&ref);
  nnc_model_free(&emu);
  nnc_graph_free(g);
}
END_TEST

TCase *tcase_emu_training(void) {
  TCase *tc = tcase_create("emu_training");
  /* The subject is the backend's plumbing, against float tolerances: TF32
   * GEMMs are tested in tests/codegen/test_ops.c and test_fused.c. */
  tcase_add_checked_fixture(tc, harness_fp32_gemms, harness_default_precision);
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_updates_written_in_place);
  tcase_add_test(tc, test_conv_net_train_steps_agree);
  tcase_add_test(tc, test_conv_net_predict_agrees);
  tcase_add_test(tc, test_weights_stay_on_device_correctly);
  return tc;
}
