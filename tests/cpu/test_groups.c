/* Fused groups on the CPU backend against the same nodes run one by one on
 * the interpreter (which ignores groups). The fuse pass is not needed:
 * each case builds its nodes and records the group by hand with
 * nnc_graph_add_group, as the pass would.
 *
 * A group whose anchor is a GEMM and whose members are epilogue ops runs
 * as one kernel: only the last member has a value. A group of elementwise
 * ops runs block by block and keeps the members read outside it; any other
 * group runs its members in order and keeps every one. Each case runs
 * without a schedule (the backend makes the cpu's) and again scheduled and
 * planned for the cpu: then the arena is the plan's, and every member of a
 * serial group has its place in it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "passes/pass.h"
#include "passes/schedule.h"
#include "tests/cpu/suites.h"
#include "tests/testutil.h"

/* Builds a case's nodes; returns the group's members through m. */
typedef int build_fn(nnc_graph *g, int32_t *m);

static int32_t conv_anchor_of(nnc_graph *g, const char *x, const char *w, int stride, nnc_pad pad) {
  int32_t src[2] = {cputest_leaf(g, NNC_OP_INPUT, "x", x), cputest_leaf(g, NNC_OP_PARAM, "w", w)};
  nnc_attrs a = {.stride = {stride, stride}, .pad = pad};
  return cputest_op(g, NNC_OP_CONV2D, src, 2, &a);
}

static int32_t conv_anchor(nnc_graph *g, int stride, nnc_pad pad) {
  return conv_anchor_of(g, "f32[5,13,11,6]", "f32[3,3,6,9]", stride, pad);
}

static int32_t matmul_anchor(nnc_graph *g, const char *x, const char *w) {
  int32_t src[2] = {cputest_leaf(g, NNC_OP_INPUT, "x", x), cputest_leaf(g, NNC_OP_PARAM, "w", w)};
  return cputest_op(g, NNC_OP_MATMUL, src, 2, NULL);
}

static int32_t then(nnc_graph *g, nnc_op op, int32_t prev, const char *bias) {
  int32_t src[2] = {prev, bias ? cputest_leaf(g, NNC_OP_PARAM, "b", bias) : -1};
  return cputest_op(g, op, src, bias ? 2 : 1, NULL);
}

/* BatchNormalization's folded inference form: scale_shift with a [2, C]
 * table of scales and shifts, applied in the anchor's epilogue. */
static int32_t then_scale_shift(nnc_graph *g, int32_t prev, const char *table) {
  int32_t src[2] = {prev, cputest_leaf(g, NNC_OP_PARAM, "bn_table", table)};
  return cputest_op(g, NNC_OP_SCALE_SHIFT, src, 2, NULL);
}

static int conv_bias_relu(nnc_graph *g, int32_t *m) {
  m[0] = conv_anchor(g, 1, NNC_PAD_SAME);
  m[1] = then(g, NNC_OP_BIAS_ADD, m[0], "f32[9]");
  m[2] = then(g, NNC_OP_RELU, m[1], NULL);
  return 3;
}

static int conv_bias_stride2(nnc_graph *g, int32_t *m) {
  m[0] = conv_anchor(g, 2, NNC_PAD_VALID);
  m[1] = then(g, NNC_OP_BIAS_ADD, m[0], "f32[9]");
  return 2;
}

static int conv_bias_tanh_relu(nnc_graph *g, int32_t *m) {
  m[0] = conv_anchor(g, 1, NNC_PAD_VALID);
  m[1] = then(g, NNC_OP_BIAS_ADD, m[0], "f32[9]");
  m[2] = then(g, NNC_OP_TANH, m[1], NULL);
  m[3] = then(g, NNC_OP_RELU, m[2], NULL);
  return 4;
}

/* 16 channels or more on both sides: Winograd, whose chunks of tile rows
 * end inside images (5 images of 15 tile rows, 10 rows a chunk). */
static int winograd_bias_relu(nnc_graph *g, int32_t *m) {
  m[0] = conv_anchor_of(g, "f32[5,30,30,16]", "f32[3,3,16,20]", 1, NNC_PAD_SAME);
  m[1] = then(g, NNC_OP_BIAS_ADD, m[0], "f32[20]");
  m[2] = then(g, NNC_OP_RELU, m[1], NULL);
  return 3;
}

static int conv_bias_bn_relu(nnc_graph *g, int32_t *m) {
  m[0] = conv_anchor(g, 1, NNC_PAD_SAME);
  m[1] = then(g, NNC_OP_BIAS_ADD, m[0], "f32[9]");
  m[2] = then_scale_shift(g, m[1], "f32[2,9]");
  m[3] = then(g, NNC_OP_RELU, m[2], NULL);
  return 4;
}

static int winograd_bias_bn_relu(nnc_graph *g, int32_t *m) {
  m[0] = conv_anchor_of(g, "f32[5,30,30,16]", "f32[3,3,16,20]", 1, NNC_PAD_SAME);
  m[1] = then(g, NNC_OP_BIAS_ADD, m[0], "f32[20]");
  m[2] = then_scale_shift(g, m[1], "f32[2,20]");
  m[3] = then(g, NNC_OP_RELU, m[2], NULL);
  return 4;
}

static int matmul_bn_tanh(nnc_graph *g, int32_t *m) {
  m[0] = matmul_anchor(g, "f32[67,45]", "f32[45,70]");
  m[1] = then_scale_shift(g, m[0], "f32[2,70]");
  m[2] = then(g, NNC_OP_TANH, m[1], NULL);
  return 3;
}

/* An odd output (11 x 9): the last tile row and column are half outside. */
static int winograd_valid_bias_tanh(nnc_graph *g, int32_t *m) {
  m[0] = conv_anchor_of(g, "f32[3,13,11,17]", "f32[3,3,17,16]", 1, NNC_PAD_VALID);
  m[1] = then(g, NNC_OP_BIAS_ADD, m[0], "f32[16]");
  m[2] = then(g, NNC_OP_TANH, m[1], NULL);
  return 3;
}

/* Split by rows: the epilogue runs inside each thread's part. */
static int matmul_bias_softmax(nnc_graph *g, int32_t *m) {
  m[0] = matmul_anchor(g, "f32[67,45]", "f32[45,70]");
  m[1] = then(g, NNC_OP_BIAS_ADD, m[0], "f32[70]");
  m[2] = then(g, NNC_OP_SOFTMAX, m[1], NULL);
  return 3;
}

/* Split by columns: the epilogue needs whole rows, so it runs after. */
static int matmul_bias_sigmoid(nnc_graph *g, int32_t *m) {
  m[0] = matmul_anchor(g, "f32[20,40]", "f32[40,300]");
  m[1] = then(g, NNC_OP_BIAS_ADD, m[0], "f32[300]");
  m[2] = then(g, NNC_OP_SIGMOID, m[1], NULL);
  return 3;
}

static int matmul_bias_softmax_cols(nnc_graph *g, int32_t *m) {
  m[0] = matmul_anchor(g, "f32[20,40]", "f32[40,300]");
  m[1] = then(g, NNC_OP_BIAS_ADD, m[0], "f32[300]");
  m[2] = then(g, NNC_OP_SOFTMAX, m[1], NULL);
  return 3;
}

/* A batch of 3 through a layer of 83: columns split, vectors off the width. */
static int matmul_few_rows_bias_relu(nnc_graph *g, int32_t *m) {
  m[0] = matmul_anchor(g, "f32[3,300]", "f32[300,83]");
  m[1] = then(g, NNC_OP_BIAS_ADD, m[0], "f32[83]");
  m[2] = then(g, NNC_OP_RELU, m[1], NULL);
  return 3;
}

static int matmul_rank3_tanh(nnc_graph *g, int32_t *m) {
  m[0] = matmul_anchor(g, "f32[4,17,33]", "f32[33,20]");
  m[1] = then(g, NNC_OP_TANH, m[0], NULL);
  return 2;
}

/* The bias_add is also an output: the group cannot skip its value. */
static int intermediate_used_outside(nnc_graph *g, int32_t *m) {
  int n = conv_bias_relu(g, m);
  nnc_status st = {0};
  ck_assert_int_eq(nnc_graph_add_output(g, "pre-activation", m[1], &st), 0);
  return n;
}

/* A chain of elementwise ops: no GEMM anchor, so the members run in order. */
static int elementwise_chain(nnc_graph *g, int32_t *m) {
  int32_t src[2] = {cputest_leaf(g, NNC_OP_INPUT, "a", "f32[1000,7]"), cputest_leaf(g, NNC_OP_INPUT, "b", "f32[1000,7]")};
  m[0] = cputest_op(g, NNC_OP_ADD, src, 2, NULL);
  src[0] = m[0];
  m[1] = cputest_op(g, NNC_OP_MUL, src, 2, NULL);
  m[2] = then(g, NNC_OP_RELU, m[1], NULL);
  return 3;
}

/* A backward pair: relu_grad feeding a matmul (the gradient of a dense layer's input). */
static int relu_grad_into_matmul(nnc_graph *g, int32_t *m) {
  int32_t src[2] = {cputest_leaf(g, NNC_OP_INPUT, "y", "f32[32,64]"), cputest_leaf(g, NNC_OP_INPUT, "dy", "f32[32,64]")};
  m[0] = cputest_op(g, NNC_OP_RELU_GRAD, src, 2, NULL);
  src[0] = m[0], src[1] = cputest_leaf(g, NNC_OP_PARAM, "w", "f32[100,64]");
  nnc_attrs t = {.trans_b = 1};
  m[1] = cputest_op(g, NNC_OP_MATMUL, src, 2, &t);
  return 2;
}

/* conv2d_grad_input then relu_grad reading it as dy: the backward epilogue. */
static int conv_grad_input_relu_grad(nnc_graph *g, int32_t *m) {
  int32_t src[2] = {cputest_leaf(g, NNC_OP_INPUT, "dy", "f32[5,13,11,9]"), cputest_leaf(g, NNC_OP_PARAM, "w", "f32[3,3,6,9]")};
  nnc_attrs a = {.stride = {1, 1}, .pad = NNC_PAD_SAME, .shape_rank = 3, .shape = {13, 11, 6}};
  m[0] = cputest_op(g, NNC_OP_CONV2D_GRAD_INPUT, src, 2, &a);
  src[0] = cputest_leaf(g, NNC_OP_INPUT, "y", "f32[5,13,11,6]"), src[1] = m[0];
  m[1] = cputest_op(g, NNC_OP_RELU_GRAD, src, 2, NULL);
  return 2;
}

/* The same by Winograd: the kernel turned, channels swapped, odd sizes. */
static int winograd_grad_input_relu_grad(nnc_graph *g, int32_t *m) {
  int32_t src[2] = {cputest_leaf(g, NNC_OP_INPUT, "dy", "f32[3,13,11,20]"),
                    cputest_leaf(g, NNC_OP_PARAM, "w", "f32[3,3,17,20]")};
  nnc_attrs a = {.stride = {1, 1}, .pad = NNC_PAD_SAME, .shape_rank = 3, .shape = {13, 11, 17}};
  m[0] = cputest_op(g, NNC_OP_CONV2D_GRAD_INPUT, src, 2, &a);
  src[0] = cputest_leaf(g, NNC_OP_INPUT, "y", "f32[3,13,11,17]"), src[1] = m[0];
  m[1] = cputest_op(g, NNC_OP_RELU_GRAD, src, 2, NULL);
  return 2;
}

/* dy @ w^T then tanh_grad: a dense layer's input gradient. */
static int matmul_tanh_grad(nnc_graph *g, int32_t *m) {
  nnc_attrs t = {.trans_b = 1};
  int32_t src[2] = {cputest_leaf(g, NNC_OP_INPUT, "dy", "f32[30,40]"), cputest_leaf(g, NNC_OP_PARAM, "w", "f32[300,40]")};
  m[0] = cputest_op(g, NNC_OP_MATMUL, src, 2, &t);
  src[0] = cputest_leaf(g, NNC_OP_INPUT, "y", "f32[30,300]"), src[1] = m[0];
  m[1] = cputest_op(g, NNC_OP_TANH_GRAD, src, 2, NULL);
  m[2] = then(g, NNC_OP_SIGMOID, m[1], NULL);
  return 3;
}

/* An Adam update: square, two emas and adam_update, read by each other out
 * of order (m[1] does not read m[0]) and all exported. */
static int adam_update(nnc_graph *g, int32_t *m) {
  const char *big = "f32[70001]";
  int32_t grad = cputest_leaf(g, NNC_OP_INPUT, "g", big), w = cputest_leaf(g, NNC_OP_PARAM, "w", big);
  int32_t mom = cputest_leaf(g, NNC_OP_PARAM, "m", big), var = cputest_leaf(g, NNC_OP_PARAM, "v", big);
  int32_t lr = cputest_leaf(g, NNC_OP_INPUT, "lr", "f32[]");
  m[0] = cputest_op(g, NNC_OP_SQUARE, &grad, 1, NULL);
  nnc_attrs b1 = {.alpha = 0.1f}, b2 = {.alpha = 0.001f}, eps = {.eps = 1e-7f};
  int32_t src[4] = {mom, grad};
  m[1] = cputest_op(g, NNC_OP_EMA, src, 2, &b1);
  src[0] = var, src[1] = m[0];
  m[2] = cputest_op(g, NNC_OP_EMA, src, 2, &b2);
  int32_t upd[4] = {w, m[1], m[2], lr};
  m[3] = cputest_op(g, NNC_OP_ADAM_UPDATE, upd, 4, &eps);
  nnc_status st = {0};
  ck_assert_int_eq(nnc_graph_add_output(g, "update:m", m[1], &st), 0);
  ck_assert_int_eq(nnc_graph_add_output(g, "update:v", m[2], &st), 0);
  return 4;
}

/* relu_grad, then dropout of it: a backward elementwise chain with a mask. */
static int relu_grad_dropout(nnc_graph *g, int32_t *m) {
  int32_t src[2] = {cputest_leaf(g, NNC_OP_INPUT, "y", "f32[9,1001]"), cputest_leaf(g, NNC_OP_INPUT, "dy", "f32[9,1001]")};
  m[0] = cputest_op(g, NNC_OP_RELU_GRAD, src, 2, NULL);
  nnc_attrs d = {.rate = 0.5f, .stream = 3};
  m[1] = cputest_op(g, NNC_OP_DROPOUT, &m[0], 1, &d);
  return 2;
}

/* A node outside the group reads its first member before the last member
 * exists: the group cannot wait for its last member, so it runs in order. */
static int pointwise_read_early(nnc_graph *g, int32_t *m) {
  int32_t a = cputest_leaf(g, NNC_OP_INPUT, "a", "f32[50000]");
  m[0] = cputest_op(g, NNC_OP_SQUARE, &a, 1, NULL);
  int32_t early = cputest_op(g, NNC_OP_RELU, &m[0], 1, NULL);
  int32_t src[2] = {m[0], early};
  m[1] = cputest_op(g, NNC_OP_MUL, src, 2, NULL);
  return 2;
}

/* The pool-grad rule: dropout of dy, max_pool_grad, then an activation
 * gradient. The windows leave the last row and column of x uncovered. */
static int32_t pool_grad(nnc_graph *g, int32_t *m, int with_dropout, int window, int stride, nnc_pad pad) {
  int32_t x = cputest_leaf(g, NNC_OP_INPUT, "x", "f32[5,9,7,6]");
  int32_t dy = cputest_leaf(g, NNC_OP_INPUT, "dy", window == 2 ? "f32[5,4,3,6]" : "f32[5,5,4,6]");
  int n = 0;
  if (with_dropout) {
    nnc_attrs d = {.rate = 0.5f, .stream = 11};
    dy = m[n++] = cputest_op(g, NNC_OP_DROPOUT, &dy, 1, &d);
  }
  nnc_attrs a = {.window = {window, window}, .stride = {stride, stride}, .pad = pad};
  int32_t src[2] = {x, dy};
  m[n++] = cputest_op(g, NNC_OP_MAX_POOL_GRAD, src, 2, &a);
  return n;
}

static int dropout_pool_grad_relu_grad(nnc_graph *g, int32_t *m) {
  int n = pool_grad(g, m, 1, 2, 2, NNC_PAD_VALID);
  int32_t src[2] = {g->nodes[m[n - 1]].src[0], m[n - 1]};
  m[n] = cputest_op(g, NNC_OP_RELU_GRAD, src, 2, NULL);
  return n + 1;
}

static int dropout_pool_grad(nnc_graph *g, int32_t *m) { return pool_grad(g, m, 1, 2, 2, NNC_PAD_VALID); }

/* Overlapping windows: the gradient adds into pixels before the epilogue. */
static int pool_grad_overlapping_sigmoid_grad(nnc_graph *g, int32_t *m) {
  int n = pool_grad(g, m, 0, 3, 2, NNC_PAD_SAME);
  int32_t src[2] = {cputest_leaf(g, NNC_OP_INPUT, "y", "f32[5,9,7,6]"), m[n - 1]};
  m[n] = cputest_op(g, NNC_OP_SIGMOID_GRAD, src, 2, NULL);
  return n + 1;
}

/* The row of ir/pointwise.def that the two cases below fuse, with alpha 0.2. */
static nnc_op table_op;

/* matmul+bias_add+<activation>: every activation row is an epilogue. */
static int matmul_bias_activation(nnc_graph *g, int32_t *m) {
  m[0] = matmul_anchor(g, "f32[67,45]", "f32[45,70]");
  m[1] = then(g, NNC_OP_BIAS_ADD, m[0], "f32[70]");
  nnc_attrs a = {.alpha = 0.2f};
  m[2] = cputest_op(g, table_op, &m[1], 1, &a);
  return 3;
}

/* dy @ w^T then <activation gradient>(y, .): every gradient row reads the anchor as dy. */
static int matmul_activation_grad(nnc_graph *g, int32_t *m) {
  nnc_attrs t = {.trans_b = 1}, a = {.alpha = 0.2f};
  int32_t src[2] = {cputest_leaf(g, NNC_OP_INPUT, "dy", "f32[30,40]"), cputest_leaf(g, NNC_OP_PARAM, "w", "f32[300,40]")};
  m[0] = cputest_op(g, NNC_OP_MATMUL, src, 2, &t);
  src[0] = cputest_leaf(g, NNC_OP_INPUT, "y", "f32[30,300]"), src[1] = m[0];
  m[1] = cputest_op(g, table_op, src, 2, &a);
  return 2;
}

typedef struct group_case {
  const char *what;
  build_fn *build;
  int fused;
  int serial; /* members run one by one, each stored */
} group_case;

static const group_case cases[] = {
    {"conv2d+bias_add+relu", conv_bias_relu, 1, 0},
    {"conv2d+bias_add stride 2", conv_bias_stride2, 1, 0},
    {"conv2d+bias_add+tanh+relu", conv_bias_tanh_relu, 1, 0},
    {"Winograd conv2d+bias_add+relu", winograd_bias_relu, 1, 0},
    {"Winograd conv2d valid+bias_add+tanh", winograd_valid_bias_tanh, 1, 0},
    {"matmul+bias_add+softmax by rows", matmul_bias_softmax, 1, 0},
    {"matmul+bias_add+sigmoid by columns", matmul_bias_sigmoid, 1, 0},
    {"matmul+bias_add+softmax by columns", matmul_bias_softmax_cols, 1, 0},
    {"matmul rank 3+tanh", matmul_rank3_tanh, 1, 0},
    {"matmul+bias_add+relu, 3 rows", matmul_few_rows_bias_relu, 1, 0},
    {"conv2d+bias_add+scale_shift+relu", conv_bias_bn_relu, 1, 0},
    {"Winograd conv2d+bias_add+scale_shift+relu", winograd_bias_bn_relu, 1, 0},
    {"matmul+scale_shift+tanh", matmul_bn_tanh, 1, 0},
    {"an intermediate used outside", intermediate_used_outside, 0, 1},
    {"elementwise chain", elementwise_chain, 0, 0},
    {"relu_grad into matmul", relu_grad_into_matmul, 0, 1},
    {"conv2d_grad_input+relu_grad", conv_grad_input_relu_grad, 1, 0},
    {"Winograd conv2d_grad_input+relu_grad", winograd_grad_input_relu_grad, 1, 0},
    {"matmul+tanh_grad+sigmoid", matmul_tanh_grad, 1, 0},
    {"adam update", adam_update, 0, 0},
    {"relu_grad+dropout", relu_grad_dropout, 0, 0},
    {"pointwise read early", pointwise_read_early, 0, 0},
    {"dropout+max_pool_grad+relu_grad", dropout_pool_grad_relu_grad, 1, 0},
    {"dropout+max_pool_grad", dropout_pool_grad, 1, 0},
    {"max_pool_grad 3x3/2+sigmoid_grad", pool_grad_overlapping_sigmoid_grad, 1, 0},
};

#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* The pass alone, without the verifier, which rejects the read-early case:
 * the backend must still get it right. */
static void plan(nnc_graph *g) {
  nnc_status st = {0};
  nnc_pass_ctx ctx = {.batch = NNC_DIM_ANY, .caps = nnc_backend_cpu.caps};
  ck_assert_msg(nnc_pass_plan_memory.run(&g, &ctx, &st) == 0, "%s", st.msg);
}

/* Whether the cpu's schedule of g stores id: what value() answers for. */
static int cpu_stores(const nnc_graph *g, int32_t id) {
  int count = 0, stored = 0;
  nnc_kernel *k = nnc_schedule_build(nnc_test_options(), g, nnc_backend_cpu.caps, &count);
  for (int i = 0; i < count; i++)
    for (int m = 0; m < k[i].n; m++)
      if (k[i].members[m] == id) stored = (k[i].stores >> m) & 1;
  free(k);
  return stored;
}

static void check_group(const group_case *c, int planned) {
  nnc_graph *g = nnc_graph_new();
  int32_t m[NNC_MAX_GROUP];
  int count = c->build(g, m);
  nnc_status st = {0};
  ck_assert_int_ge(nnc_graph_add_group(g, "test", m, count, &st), 0);
  ck_assert_int_eq(nnc_graph_add_output(g, "output", m[count - 1], &st), 0);
  if (planned) plan(g);
  void **leaves = cputest_leaves(g, 0, 10);
  nnc_run_opts opts = {.training = 1, .seed = 8, .step = 2};
  nnc_exec *want = cputest_run(&nnc_backend_interp, g, leaves, &opts);
  nnc_exec *got = cputest_run(&nnc_backend_cpu, g, leaves, &opts);
  int32_t last = m[count - 1];
  const float *v = nnc_backend_cpu.value(got, last);
  ck_assert_msg(v != NULL, "%s: no value for the group's result", c->what);
  cputest_expect_close(c->what, v, nnc_backend_interp.value(want, last), nnc_node_numel(&g->nodes[last]), 1e-4);
  for (int i = 0; i < count - 1; i++) {
    const float *inner = nnc_backend_cpu.value(got, m[i]);
    /* The plan is the schedule's: a serial kernel's members all have a place. */
    if (planned && c->serial) ck_assert_msg(g->offsets[m[i]] >= 0, "%s: member %d has no place", c->what, i);
    if (c->fused) {
      ck_assert_msg(inner == NULL, "%s: fused member %d kept a value", c->what, i);
    } else if (!cpu_stores(g, m[i])) {
      ck_assert_msg(inner == NULL, "%s: member %d is stored, the schedule does not store it", c->what, i);
    } else {
      ck_assert_msg(inner != NULL, "%s: member %d has no value", c->what, i);
      cputest_expect_close(c->what, inner, nnc_backend_interp.value(want, m[i]), nnc_node_numel(&g->nodes[m[i]]), 1e-4);
    }
  }
  if (planned) ck_assert_int_eq(nnc_backend_cpu.arena_bytes(got), g->arena_bytes);
  nnc_backend_cpu.release(got);
  nnc_backend_interp.release(want);
  cputest_leaves_free(g, leaves);
  nnc_graph_free(g);
}

/* _i: the case, and whether it is planned. */
START_TEST(test_group_agrees) { check_group(&cases[_i / 2], _i % 2); }
END_TEST

/* _i: the op. Every activation row and every activation gradient row of
 * ir/pointwise.def runs as a fused epilogue, planned and not. */
START_TEST(test_every_activation_fuses) {
  table_op = (nnc_op)_i;
  char what[96];
  snprintf(what, sizeof what, "matmul+%s epilogue", nnc_ops[_i].name);
  group_case c = {what, matmul_bias_activation, 1, 0};
  if (nnc_pointwise[_i].kind == NNC_PW_ACTIVATION_GRAD) c.build = matmul_activation_grad;
  else if (nnc_pointwise[_i].kind != NNC_PW_ACTIVATION) return;
  check_group(&c, 0);
  check_group(&c, 1);
}
END_TEST

/* The convolution groups with each algorithm: each applies the epilogue
 * its own way (in registers, on each finished row, on each tile). */
static const char *const conv_algos[] = {"gemm", "winograd", "direct"};

/* _i: the algorithm, then the case (those without a convolution pass). */
START_TEST(test_conv_groups_by_algorithm) {
  const group_case *c = &cases[_i % NCASES];
  if (!strstr(c->what, "conv2d")) return;
  setenv("NNC_CPU_CONV", conv_algos[_i / NCASES], 1);
  check_group(c, 1);
  unsetenv("NNC_CPU_CONV");
}
END_TEST

/* The matmul groups with each matmul algorithm, split by rows and by
 * columns (the epilogue inside each part, or after on whole rows), with
 * few rows against a large operand. */
static const char *const matmul_algos[] = {"blas", "blocked"};

START_TEST(test_matmul_groups_by_algorithm) {
  const group_case *c = &cases[_i % NCASES];
  if (!strstr(c->what, "matmul")) return;
  setenv("NNC_CPU_MATMUL", matmul_algos[_i / NCASES], 1);
  check_group(c, 1);
  unsetenv("NNC_CPU_MATMUL");
}
END_TEST

/* Two fused groups in a row, and re-batching keeps them (the model's path). */
START_TEST(test_groups_survive_rebatching) {
  nnc_graph *g = nnc_graph_new();
  int32_t x = cputest_leaf(g, NNC_OP_INPUT, "x", "f32[-1,9,9,3]");
  int32_t src[2] = {x, cputest_leaf(g, NNC_OP_PARAM, "k", "f32[3,3,3,8]")};
  nnc_attrs same = {.stride = {1, 1}, .pad = NNC_PAD_SAME};
  int32_t m1[3];
  m1[0] = cputest_op(g, NNC_OP_CONV2D, src, 2, &same);
  m1[1] = then(g, NNC_OP_BIAS_ADD, m1[0], "f32[8]");
  m1[2] = then(g, NNC_OP_RELU, m1[1], NULL);
  nnc_attrs flat = {.shape_rank = 1, .shape = {-1}};
  int32_t h = cputest_op(g, NNC_OP_RESHAPE, &m1[2], 1, &flat);
  int32_t mm[2] = {h, cputest_leaf(g, NNC_OP_PARAM, "w", "f32[648,10]")};
  int32_t m2[3];
  m2[0] = cputest_op(g, NNC_OP_MATMUL, mm, 2, NULL);
  int32_t bias[2] = {m2[0], cputest_leaf(g, NNC_OP_PARAM, "b2", "f32[10]")};
  m2[1] = cputest_op(g, NNC_OP_BIAS_ADD, bias, 2, NULL);
  m2[2] = then(g, NNC_OP_SOFTMAX, m2[1], NULL);
  nnc_status st = {0};
  ck_assert_int_ge(nnc_graph_add_group(g, "conv2d+bias+relu", m1, 3, &st), 0);
  ck_assert_int_ge(nnc_graph_add_group(g, "matmul+bias+softmax", m2, 3, &st), 0);
  ck_assert_int_eq(nnc_graph_add_output(g, "output", m2[2], &st), 0);
  nnc_graph *b = nnc_graph_with_batch(g, 7, &st);
  ck_assert_msg(b != NULL, "%s", st.msg);
  ck_assert_int_eq(b->ngroups, 2);
  void **leaves = cputest_leaves(b, 0, 10);
  nnc_exec *want = cputest_run(&nnc_backend_interp, b, leaves, NULL);
  nnc_exec *got = cputest_run(&nnc_backend_cpu, b, leaves, NULL);
  int32_t out = nnc_graph_output_node(b, "output");
  cputest_expect_close("two groups", nnc_backend_cpu.value(got, out), nnc_backend_interp.value(want, out), 70, 1e-4);
  ck_assert_ptr_null(nnc_backend_cpu.value(got, b->groups[0].members[0]));
  nnc_backend_cpu.release(got);
  nnc_backend_interp.release(want);
  cputest_leaves_free(b, leaves);
  nnc_graph_free(b);
  nnc_graph_free(g);
}
END_TEST

TCase *tcase_cpu_groups(void) {
  TCase *tc = tcase_create("cpu_groups");
  tcase_set_timeout(tc, 60); /* Check's 4 s default fails single cases on a busy shared machine */
  tcase_add_loop_test(tc, test_group_agrees, 0, 2 * NCASES);
  tcase_add_loop_test(tc, test_conv_groups_by_algorithm, 0, (int)(sizeof conv_algos / sizeof conv_algos[0]) * NCASES);
  tcase_add_loop_test(tc, test_matmul_groups_by_algorithm, 0,
                      (int)(sizeof matmul_algos / sizeof matmul_algos[0]) * NCASES);
  tcase_add_test(tc, test_groups_survive_rebatching);
  tcase_add_loop_test(tc, test_every_activation_fuses, 0, NNC_OP_COUNT);
  return tc;
}
