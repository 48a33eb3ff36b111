/* Fused groups built by hand: each must become the kernels the group
 * promises (one, unless a member cannot be an epilogue), keep only what
 * leaves the group in memory, and agree with the interpreter on every value
 * that leaves it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda.h"
#include "ir/op.h"
#include "tests/codegen/harness.h"
#include "tests/codegen/suites.h"
#include "tests/testutil.h"

typedef struct builder {
  nnc_graph *g;
  void *data[64];
  nnc_status st;
} builder;

static int32_t leaf(builder *b, nnc_op op, const char *name, nnc_dtype dtype, int rank, const int64_t *shape,
                    data_kind kind) {
  nnc_node_spec spec = {.op = op, .name = name, .dtype = dtype, .rank = rank};
  memcpy(spec.shape, shape, sizeof(int64_t) * (size_t)rank);
  int32_t id = nnc_graph_add(b->g, &spec, &b->st);
  ck_assert_msg(id >= 0, "%s", b->st.msg);
  int64_t count = nnc_node_numel(&b->g->nodes[id]);
  b->data[id] = malloc((size_t)(count ? count : 1) * 4);
  harness_fill(b->data[id], count, rank ? shape[rank - 1] : 1, kind, (uint32_t)id + 7);
  return id;
}

static int32_t op(builder *b, nnc_op o, int32_t x, int32_t y, const nnc_attrs *attrs) {
  int32_t src[2] = {x, y};
  int32_t id = nnc_graph_op(b->g, o, src, nnc_ops[o].arity, attrs, &b->st);
  ck_assert_msg(id >= 0, "%s", b->st.msg);
  return id;
}

static int32_t op4(builder *b, nnc_op o, const int32_t *src, const nnc_attrs *attrs) {
  int32_t id = nnc_graph_op(b->g, o, src, nnc_ops[o].arity, attrs, &b->st);
  ck_assert_msg(id >= 0, "%s", b->st.msg);
  return id;
}

static void group(builder *b, const char *rule, const int32_t *members, int n) {
  ck_assert_msg(nnc_graph_add_group(b->g, rule, members, n, &b->st) >= 0, "%s", b->st.msg);
}

static void output(builder *b, const char *role, int32_t id) {
  ck_assert_msg(nnc_graph_add_output(b->g, role, id, &b->st) == 0, "%s", b->st.msg);
}

/* Runs both backends and compares every output; expects `kernels` kernels
 * and that `register_only` (or -1) is not kept in memory. */
static void check(builder *b, int kernels, int32_t register_only, double tol) {
  nnc_cuda_program p;
  ck_assert_msg(nnc_cuda_generate(nnc_test_options(), b->g, &p, &b->st) == 0, "%s", b->st.msg);
  if (p.count != kernels)
    for (int i = 0; i < p.count; i++) fprintf(stderr, "%s\n", p.kernels[i].source);
  ck_assert_int_eq(p.count, kernels);
  if (register_only >= 0) ck_assert_int_eq(p.stored[register_only], 0);
  nnc_cuda_program_free(&p);

  int32_t outs[8];
  int n = b->g->noutputs;
  for (int i = 0; i < n; i++) outs[i] = b->g->outputs[i].node;
  float *want[8], *got[8];
  nnc_run_opts opts = {.training = 1, .seed = 2024, .step = 3};
  harness_run(&nnc_backend_interp, b->g, b->data, &opts, outs, n, want);
  /* tol is for float GEMMs; on TF32 tensor cores (the default) a GEMM's
   * result may be off by HARNESS_TF32_TOLERANCE of the largest. */
  for (int tf32 = 0; tf32 < 2; tf32++) {
    harness_set_precision(tf32 ? NULL : "fp32");
    harness_run(&nnc_backend_cuda_emu, b->g, b->data, &opts, outs, n, got);
    for (int i = 0; i < n; i++) {
      double err = harness_rel_error(got[i], want[i], nnc_node_numel(&b->g->nodes[outs[i]]), 1e-30);
      double bound = tf32 && tol < HARNESS_TF32_TOLERANCE ? HARNESS_TF32_TOLERANCE : tol;
      ck_assert_msg(err <= bound, "output '%s' (%%%d) differs by %.3g%s", b->g->outputs[i].name, (int)outs[i], err,
                    tf32 ? " on TF32" : "");
      free(got[i]);
    }
  }
  harness_set_precision(NULL);
  for (int i = 0; i < n; i++) free(want[i]);
  if (register_only >= 0) {
    nnc_status st = {0};
    nnc_exec *e = nnc_backend_cuda_emu.prepare(b->g, nnc_test_options(), &st);
    ck_assert_msg(e, "%s", st.msg);
    ck_assert_msg(nnc_backend_cuda_emu.run(e, b->data, &opts, &st) == 0, "%s", st.msg);
    ck_assert_ptr_null(nnc_backend_cuda_emu.value(e, register_only));
    nnc_backend_cuda_emu.release(e);
  }
  harness_nvrtc_compile_all(b->g);
  for (int i = 0; i < 64; i++) free(b->data[i]);
  nnc_graph_free(b->g);
}

static void start(builder *b) {
  memset(b, 0, sizeof *b);
  b->g = nnc_graph_new();
}

/* conv2d -> bias_add -> relu: one kernel; the convolution and the biased
 * value never reach memory. Padding and stride 2, and a result of several
 * GEMM tiles with edges, so the epilogue runs on partial tiles. */
START_TEST(test_conv_bias_relu) {
  builder b;
  start(&b);
  int64_t xs[4] = {3, 13, 11, 5}, ws[4] = {3, 3, 5, 70}, bs[1] = {70};
  int32_t x = leaf(&b, NNC_OP_INPUT, "x", NNC_F32, 4, xs, DATA_RANDOM);
  int32_t w = leaf(&b, NNC_OP_PARAM, "w", NNC_F32, 4, ws, DATA_RANDOM);
  int32_t bias = leaf(&b, NNC_OP_PARAM, "b", NNC_F32, 1, bs, DATA_RANDOM);
  nnc_attrs a = {.stride = {2, 2}, .pad = NNC_PAD_SAME};
  int32_t c = op(&b, NNC_OP_CONV2D, x, w, &a);
  int32_t cb = op(&b, NNC_OP_BIAS_ADD, c, bias, NULL);
  int32_t r = op(&b, NNC_OP_RELU, cb, -1, NULL);
  int32_t m[3] = {c, cb, r};
  group(&b, "conv2d+bias+act", m, 3);
  output(&b, "output", r);
  check(&b, 1, cb, 2e-6);
}
END_TEST

/* A Dense layer's forward pass over a long K (the first Dense after a
 * convolution stack): 8 tiles cannot fill the GPU, so K is split, and the
 * bias and relu must apply once, to the sum of the slices, in the second
 * kernel (applied per slice they would add the bias several times and clip
 * partial sums). Neither the product nor the biased value reaches memory:
 * the partial results live in the workspace. */
START_TEST(test_split_k_matmul_bias_relu) {
  builder b;
  start(&b);
  int64_t xs[2] = {32, 1100}, ws[2] = {1100, 500}, bs[1] = {500};
  int32_t x = leaf(&b, NNC_OP_INPUT, "x", NNC_F32, 2, xs, DATA_RANDOM);
  int32_t w = leaf(&b, NNC_OP_PARAM, "w", NNC_F32, 2, ws, DATA_RANDOM);
  int32_t bias = leaf(&b, NNC_OP_PARAM, "b", NNC_F32, 1, bs, DATA_RANDOM);
  int32_t mm = op(&b, NNC_OP_MATMUL, x, w, NULL);
  int32_t z = op(&b, NNC_OP_BIAS_ADD, mm, bias, NULL);
  int32_t r = op(&b, NNC_OP_RELU, z, -1, NULL);
  int32_t m[3] = {mm, z, r};
  group(&b, "matmul+bias+act", m, 3);
  output(&b, "output", r);
  nnc_cuda_program p;
  ck_assert_msg(nnc_cuda_generate(nnc_test_options(), b.g, &p, &b.st) == 0, "%s", b.st.msg);
  ck_assert_int_eq(p.count, 2);
  ck_assert_int_eq(p.kernels[0].split, 1);
  ck_assert_int_eq(p.kernels[1].split, 2);
  ck_assert_int_eq(p.kernels[0].grid, 8 * (p.workspace / (32 * 500))); /* tiles x slices */
  ck_assert_int_eq(p.stored[mm], 0);
  nnc_cuda_program_free(&p);
  harness_one_kernel_per_group(b.g);
  check(&b, 2, z, 4e-6);
}
END_TEST

/* matmul -> bias_add -> softmax: softmax needs whole rows, so it becomes the
 * group's second kernel and the biased logits are stored for it. */
START_TEST(test_matmul_bias_softmax_splits) {
  builder b;
  start(&b);
  int64_t xs[2] = {6, 20}, ws[2] = {20, 10}, bs[1] = {10};
  int32_t x = leaf(&b, NNC_OP_INPUT, "x", NNC_F32, 2, xs, DATA_RANDOM);
  int32_t w = leaf(&b, NNC_OP_PARAM, "w", NNC_F32, 2, ws, DATA_RANDOM);
  int32_t bias = leaf(&b, NNC_OP_PARAM, "b", NNC_F32, 1, bs, DATA_RANDOM);
  int32_t mm = op(&b, NNC_OP_MATMUL, x, w, NULL);
  int32_t z = op(&b, NNC_OP_BIAS_ADD, mm, bias, NULL);
  int32_t s = op(&b, NNC_OP_SOFTMAX, z, -1, NULL);
  int32_t m[3] = {mm, z, s};
  group(&b, "matmul+bias+act", m, 3);
  output(&b, "output", s);
  check(&b, 2, mm, 1e-6);
}
END_TEST

/* dy @ w^T -> relu_grad(y, .): the backward twin, reading the anchor as dy;
 * 33 x 17 with K = 7, smaller than a tile in every dimension. */
START_TEST(test_matmul_grad_relu_grad) {
  builder b;
  start(&b);
  int64_t ds[2] = {33, 7}, ws[2] = {17, 7}, ys[2] = {33, 17};
  int32_t dy = leaf(&b, NNC_OP_INPUT, "dy", NNC_F32, 2, ds, DATA_RANDOM);
  int32_t w = leaf(&b, NNC_OP_PARAM, "w", NNC_F32, 2, ws, DATA_RANDOM);
  int32_t y = leaf(&b, NNC_OP_INPUT, "y", NNC_F32, 2, ys, DATA_RANDOM);
  nnc_attrs tb = {.trans_b = 1};
  int32_t dx = op(&b, NNC_OP_MATMUL, dy, w, &tb);
  int32_t g = op(&b, NNC_OP_RELU_GRAD, y, dx, NULL);
  int32_t m[2] = {dx, g};
  group(&b, "matmul-grad+act-grad", m, 2);
  output(&b, "grad", g);
  check(&b, 1, dx, 1e-6);
}
END_TEST

/* conv2d_grad_input -> tanh_grad, over several tiles with edges. */
START_TEST(test_conv_grad_tanh_grad) {
  builder b;
  start(&b);
  int64_t ds[4] = {3, 6, 5, 9}, ws[4] = {3, 3, 70, 9}, ys[4] = {3, 13, 11, 70};
  int32_t dy = leaf(&b, NNC_OP_INPUT, "dy", NNC_F32, 4, ds, DATA_RANDOM);
  int32_t w = leaf(&b, NNC_OP_PARAM, "w", NNC_F32, 4, ws, DATA_RANDOM);
  int32_t y = leaf(&b, NNC_OP_INPUT, "y", NNC_F32, 4, ys, DATA_RANDOM);
  nnc_attrs a = {.stride = {2, 2}, .pad = NNC_PAD_VALID, .shape_rank = 3, .shape = {13, 11, 70}};
  int32_t dx = op(&b, NNC_OP_CONV2D_GRAD_INPUT, dy, w, &a);
  int32_t g = op(&b, NNC_OP_TANH_GRAD, y, dx, NULL);
  int32_t m[2] = {dx, g};
  group(&b, "conv2d-grad+act-grad", m, 2);
  output(&b, "grad", g);
  check(&b, 1, dx, 1e-6);
}
END_TEST

/* A whole Adam update as one pointwise group: m' and v' are outputs as well
 * as operands of the update, so they are stored; g^2 is not. */
START_TEST(test_adam_pointwise_group) {
  builder b;
  start(&b);
  int64_t s[2] = {7, 30};
  int32_t w = leaf(&b, NNC_OP_PARAM, "w", NNC_F32, 2, s, DATA_RANDOM);
  int32_t mslot = leaf(&b, NNC_OP_PARAM, "w/m", NNC_F32, 2, s, DATA_RANDOM);
  int32_t vslot = leaf(&b, NNC_OP_PARAM, "w/v", NNC_F32, 2, s, DATA_POSITIVE);
  int32_t g = leaf(&b, NNC_OP_INPUT, "g", NNC_F32, 2, s, DATA_RANDOM);
  int32_t lr = leaf(&b, NNC_OP_INPUT, "lr", NNC_F32, 0, s, DATA_POSITIVE);
  nnc_attrs a1 = {.alpha = 0.1f}, a2 = {.alpha = 0.001f}, eps = {.eps = 1e-7f};
  int32_t m1 = op(&b, NNC_OP_EMA, mslot, g, &a1);
  int32_t g2 = op(&b, NNC_OP_SQUARE, g, -1, NULL);
  int32_t v1 = op(&b, NNC_OP_EMA, vslot, g2, &a2);
  int32_t src[4] = {w, m1, v1, lr};
  int32_t w1 = op4(&b, NNC_OP_ADAM_UPDATE, src, &eps);
  int32_t m[4] = {m1, g2, v1, w1};
  group(&b, "pointwise", m, 4);
  output(&b, "update:w/m", m1);
  output(&b, "update:w/v", v1);
  output(&b, "update:w", w1);
  check(&b, 1, g2, 0);
}
END_TEST

/* A pointwise chain with dropout inside: the fused kernel draws the
 * interpreter's mask exactly. */
START_TEST(test_pointwise_chain_with_dropout) {
  builder b;
  start(&b);
  int64_t s[2] = {16, 75};
  int32_t x = leaf(&b, NNC_OP_INPUT, "x", NNC_F32, 2, s, DATA_RANDOM);
  int32_t y = leaf(&b, NNC_OP_INPUT, "y", NNC_F32, 2, s, DATA_RANDOM);
  nnc_attrs d = {.rate = 0.4f, .stream = 12345};
  int32_t r = op(&b, NNC_OP_RELU, x, -1, NULL);
  int32_t dr = op(&b, NNC_OP_DROPOUT, r, -1, &d);
  int32_t p = op(&b, NNC_OP_MUL, dr, y, NULL);
  int32_t q = op(&b, NNC_OP_ADD, p, r, NULL);
  int32_t m[4] = {r, dr, p, q};
  group(&b, "pointwise", m, 4);
  output(&b, "output", q);
  check(&b, 1, dr, 0);
}
END_TEST

/* dropout -> max_pool_grad -> relu_grad (pool-grad): one kernel; the mask
 * is drawn where the gradient is routed, so the masked dy is never stored. x doubles as the activation's output y, as in
 * a conv block (relu -> max_pool). */
START_TEST(test_pool_grad_with_dropout) {
  builder b;
  start(&b);
  int64_t xs[4] = {3, 8, 6, 5}, ds[4] = {3, 4, 3, 5};
  int32_t x = leaf(&b, NNC_OP_INPUT, "x", NNC_F32, 4, xs, DATA_RANDOM);
  int32_t g = leaf(&b, NNC_OP_INPUT, "g", NNC_F32, 4, ds, DATA_RANDOM);
  nnc_attrs d = {.rate = 0.5f, .stream = 777};
  nnc_attrs p = {.window = {2, 2}, .stride = {2, 2}, .pad = NNC_PAD_VALID};
  int32_t dy = op(&b, NNC_OP_DROPOUT, g, -1, &d);
  int32_t dx = op(&b, NNC_OP_MAX_POOL_GRAD, x, dy, &p);
  int32_t r = op(&b, NNC_OP_RELU_GRAD, x, dx, NULL);
  int32_t m[3] = {dy, dx, r};
  group(&b, "pool-grad", m, 3);
  output(&b, "grad", r);
  check(&b, 1, dy, 0);
}
END_TEST

/* Overlapping, padded windows (3x3, stride 2, same) and another
 * activation: each element sums dy over the windows it won; the routed
 * gradient stays in a register. */
START_TEST(test_pool_grad_overlapping_windows) {
  builder b;
  start(&b);
  int64_t xs[4] = {2, 7, 9, 3}, ds[4] = {2, 4, 5, 3};
  int32_t x = leaf(&b, NNC_OP_INPUT, "x", NNC_F32, 4, xs, DATA_RANDOM);
  int32_t y = leaf(&b, NNC_OP_INPUT, "y", NNC_F32, 4, xs, DATA_RANDOM);
  int32_t g = leaf(&b, NNC_OP_INPUT, "g", NNC_F32, 4, ds, DATA_RANDOM);
  nnc_attrs d = {.rate = 0.25f, .stream = 99};
  nnc_attrs p = {.window = {3, 3}, .stride = {2, 2}, .pad = NNC_PAD_SAME};
  int32_t dy = op(&b, NNC_OP_DROPOUT, g, -1, &d);
  int32_t dx = op(&b, NNC_OP_MAX_POOL_GRAD, x, dy, &p);
  int32_t s = op(&b, NNC_OP_SIGMOID_GRAD, y, dx, NULL);
  int32_t m[3] = {dy, dx, s};
  group(&b, "pool-grad", m, 3);
  output(&b, "grad", s);
  check(&b, 1, dx, 1e-6);
}
END_TEST

/* Dense head at inference: matmul -> bias -> sigmoid, then reshape read by
 * a later, separate op: stored values flow between kernels. */
START_TEST(test_group_feeding_a_kernel) {
  builder b;
  start(&b);
  int64_t xs[2] = {4, 12}, ws[2] = {12, 6}, bs[1] = {6};
  int32_t x = leaf(&b, NNC_OP_INPUT, "x", NNC_F32, 2, xs, DATA_RANDOM);
  int32_t w = leaf(&b, NNC_OP_PARAM, "w", NNC_F32, 2, ws, DATA_RANDOM);
  int32_t bias = leaf(&b, NNC_OP_PARAM, "b", NNC_F32, 1, bs, DATA_RANDOM);
  int32_t mm = op(&b, NNC_OP_MATMUL, x, w, NULL);
  int32_t z = op(&b, NNC_OP_BIAS_ADD, mm, bias, NULL);
  int32_t s = op(&b, NNC_OP_SIGMOID, z, -1, NULL);
  int32_t m[3] = {mm, z, s};
  group(&b, "matmul+bias+act", m, 3);
  int32_t sm = op(&b, NNC_OP_SOFTMAX, s, -1, NULL);
  output(&b, "output", sm);
  check(&b, 2, z, 1e-6);
}
END_TEST

/* _i: the op. Every activation row of ir/pointwise.def joins a conv2d's
 * epilogue (one kernel, the biased value in registers), and every
 * activation gradient row a transposed matmul's, reading it as dy. */
START_TEST(test_every_activation_fuses) {
  nnc_pw_kind kind = nnc_pointwise[_i].kind;
  if (kind != NNC_PW_ACTIVATION && kind != NNC_PW_ACTIVATION_GRAD) return;
  builder b;
  start(&b);
  nnc_attrs alpha = {.alpha = 0.2f};
  if (kind == NNC_PW_ACTIVATION) {
    int64_t xs[4] = {3, 13, 11, 5}, ws[4] = {3, 3, 5, 70}, bs[1] = {70};
    int32_t x = leaf(&b, NNC_OP_INPUT, "x", NNC_F32, 4, xs, DATA_RANDOM);
    int32_t w = leaf(&b, NNC_OP_PARAM, "w", NNC_F32, 4, ws, DATA_RANDOM);
    int32_t bias = leaf(&b, NNC_OP_PARAM, "b", NNC_F32, 1, bs, DATA_RANDOM);
    nnc_attrs a = {.stride = {2, 2}, .pad = NNC_PAD_SAME};
    int32_t c = op(&b, NNC_OP_CONV2D, x, w, &a);
    int32_t cb = op(&b, NNC_OP_BIAS_ADD, c, bias, NULL);
    int32_t r = op(&b, (nnc_op)_i, cb, -1, &alpha);
    int32_t m[3] = {c, cb, r};
    group(&b, "conv2d+bias+act", m, 3);
    output(&b, "output", r);
    check(&b, 1, cb, 2e-6);
  } else {
    int64_t ds[2] = {33, 7}, ws[2] = {17, 7}, ys[2] = {33, 17};
    int32_t dy = leaf(&b, NNC_OP_INPUT, "dy", NNC_F32, 2, ds, DATA_RANDOM);
    int32_t w = leaf(&b, NNC_OP_PARAM, "w", NNC_F32, 2, ws, DATA_RANDOM);
    int32_t y = leaf(&b, NNC_OP_INPUT, "y", NNC_F32, 2, ys, DATA_RANDOM);
    nnc_attrs tb = {.trans_b = 1};
    int32_t dx = op(&b, NNC_OP_MATMUL, dy, w, &tb);
    int32_t g = op(&b, (nnc_op)_i, y, dx, &alpha);
    int32_t m[2] = {dx, g};
    group(&b, "matmul-grad+act-grad", m, 2);
    output(&b, "grad", g);
    check(&b, 1, dx, 1e-6);
  }
}
END_TEST

TCase *tcase_fused_kernels(void) {
  TCase *tc = tcase_create("fused_kernels");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_conv_bias_relu);
  tcase_add_test(tc, test_matmul_bias_softmax_splits);
  tcase_add_test(tc, test_split_k_matmul_bias_relu);
  tcase_add_test(tc, test_matmul_grad_relu_grad);
  tcase_add_loop_test(tc, test_every_activation_fuses, 0, NNC_OP_COUNT);
  tcase_add_test(tc, test_conv_grad_tanh_grad);
  tcase_add_test(tc, test_adam_pointwise_group);
  tcase_add_test(tc, test_pointwise_chain_with_dropout);
  tcase_add_test(tc, test_group_feeding_a_kernel);
  tcase_add_test(tc, test_pool_grad_with_dropout);
  tcase_add_test(tc, test_pool_grad_overlapping_windows);
  return tc;
}
