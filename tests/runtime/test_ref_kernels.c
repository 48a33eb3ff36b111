/* The interpreter's reference kernels against answers worked out by hand.
 *
 * Every op in ir/ops.def needs at least one row in `kats` below: a small
 * input, the op's attributes, and the expected output as a literal array with
 * the arithmetic beside it. test_every_op_has_a_known_answer walks the op
 * table, so adding an op row without a case here fails the suite.
 *
 * Convolution and pooling are also checked against a direct formula written
 * out here with explicit Keras padding (random inputs, odd sizes, strides),
 * and dropout against its statistical contract. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/interp.h"
#include "runtime/rng.h"
#include "tests/runtime/suites.h"

typedef struct tensor {
  int rank;
  int64_t shape[NNC_MAX_RANK];
  const float *data;
} tensor;

static int64_t tensor_numel(const tensor *t) {
  int64_t count = 1;
  for (int i = 0; i < t->rank; i++) count *= t->shape[i];
  return count;
}

/* Equal within 1e-6 relative; infinities and zeros must match exactly. */
static int close_to(float got, double want) {
  if (isnan(want)) return isnan(got);
  if (isinf(want)) return got == want;
  return fabs((double)got - want) <= 1e-6 * fabs(want);
}

/* Builds one input leaf per operand and a single `op` node on them, runs the
 * interpreter and returns a malloc'd copy of that node's output; its type goes
 * to *type. For a leaf op the graph is that leaf alone, bound to src[0]. */
static float *run_op(nnc_op op, const nnc_attrs *attrs, const tensor *src, int nsrc,
                     const nnc_run_opts *opts, tensor *type) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  int leaf = (nnc_ops[op].flags & NNC_OPF_LEAF) != 0;
  int nleaves = leaf ? 1 : nsrc;
  int32_t ids[NNC_MAX_SRC];
  for (int i = 0; i < nleaves; i++) {
    char name[16];
    snprintf(name, sizeof name, "x%d", i);
    nnc_node_spec spec = {.op = leaf ? op : NNC_OP_INPUT, .name = name, .dtype = NNC_F32, .rank = src[i].rank};
    memcpy(spec.shape, src[i].shape, sizeof spec.shape);
    ids[i] = nnc_graph_add(g, &spec, &st);
    ck_assert_msg(ids[i] >= 0, "%s", st.msg);
  }
  int32_t id = leaf ? ids[0] : nnc_graph_op(g, op, ids, nsrc, attrs, &st);
  ck_assert_msg(id >= 0, "%s", st.msg);
  void **values = calloc((size_t)g->nnodes, sizeof *values);
  for (int i = 0; i < nleaves; i++) values[ids[i]] = (void *)src[i].data;
  ck_assert_msg(nnc_interp_run(g, values, opts, &st) == 0, "%s", st.msg);
  const nnc_node *n = &g->nodes[id];
  size_t bytes = (size_t)nnc_node_numel(n) * sizeof(float);
  float *out = malloc(bytes ? bytes : 1);
  memcpy(out, values[id], bytes);
  *type = (tensor){.rank = n->rank};
  memcpy(type->shape, n->shape, sizeof type->shape);
  nnc_interp_free(g, values);
  free(values);
  nnc_graph_free(g);
  return out;
}

/* ---- Known answers -------------------------------------------------------- */

typedef struct kat {
  const char *what;
  nnc_op op;
  nnc_attrs attrs;
  int nsrc; /* operands; a leaf case binds src[0] to the leaf itself */
  tensor src[2];
  tensor want;
  nnc_run_opts opts;
} kat;

/* A = [[1,2,3],[4,5,6]] (2x3), B (3x4) below. */
static const float mm_a[] = {1, 2, 3, 4, 5, 6};
static const float mm_a_t[] = {1, 4, 2, 5, 3, 6}; /* A stored transposed (3x2) */
static const float mm_b[] = {1, 0, 2, -1, /**/ 0, 1, 1, 2, /**/ 3, -1, 0, 1};
static const float mm_b_t[] = {1, 0, 3, /**/ 0, 1, -1, /**/ 2, 1, 0, /**/ -1, 2, 1}; /* B^T (4x3) */
/* row 0: [1*1+2*0+3*3, 1*0+2*1+3*-1, 1*2+2*1+3*0, 1*-1+2*2+3*1] = [10, -1, 4, 6]
 * row 1: [4*1+5*0+6*3, 4*0+5*1+6*-1, 4*2+5*1+6*0, 4*-1+5*2+6*1] = [22, -1, 13, 12] */
static const float mm_ab[] = {10, -1, 4, 6, 22, -1, 13, 12};
/* Rank 3 [2,2,3]: batch 0 is A; batch 1 is rows [1,0,0] and [0,0,-1], which
 * pick row 0 of B and minus row 2 of B. The matrix acts on the last axis. */
static const float mm_a3[] = {1, 2, 3, 4, 5, 6, /**/ 1, 0, 0, 0, 0, -1};
static const float mm_a3b[] = {10, -1, 4, 6, 22, -1, 13, 12, /**/ 1, 0, 2, -1, -3, 1, 0, -1};

/* x = 1..12 as [2,2,3], b = [10,20,30] added along the last axis. */
static const float ba_x[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
static const float ba_b[] = {10, 20, 30};
static const float ba_out[] = {11, 22, 33, 14, 25, 36, 17, 28, 39, 20, 31, 42};

/* 3x3 image 1..9 (one channel):  1 2 3 / 4 5 6 / 7 8 9 */
static const float img3[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const float k22[] = {1, 2, 3, 4}; /* 2x2 kernel [[1,2],[3,4]], HWIO with I=O=1 */
/* valid: out[0,0] = 1*1+2*2+4*3+5*4 = 37, out[0,1] = 2*1+3*2+5*3+6*4 = 47,
 *        out[1,0] = 4*1+5*2+7*3+8*4 = 67, out[1,1] = 5*1+6*2+8*3+9*4 = 77 */
static const float conv_valid[] = {37, 47, 67, 77};
/* same, stride 1: out 3, pad_total = (3-1)*1+2-3 = 1, pad_before 0, so the
 * zero row and column go at the bottom/right:
 *   out[0,2] = 3*1+6*3 = 21, out[1,2] = 6*1+9*3 = 33,
 *   out[2,0] = 7*1+8*2 = 23, out[2,1] = 8*1+9*2 = 26, out[2,2] = 9*1 = 9 */
static const float conv_same[] = {37, 47, 21, 67, 77, 33, 23, 26, 9};
/* same with a 3x3 kernel of ones: pad_total 2, one zero on each side, so each
 * output is the sum of the 3x3 neighbourhood inside the image:
 *   corners 1+2+4+5 = 12, 2+3+5+6 = 16, 4+5+7+8 = 24, 5+6+8+9 = 28,
 *   edges 1+..+6 = 21, 1+2+4+5+7+8 = 27, 2+3+5+6+8+9 = 33, 4+..+9 = 39,
 *   centre 45 */
static const float ones9[] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
static const float conv_same3[] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
/* Two channels in, three out, kernel 1x2, strides (1,2), valid: out [1,2,2,3].
 * Input NHWC [1,2,4,2] as (ch0,ch1) pairs:
 *   row 0: (1,1) (2,2) (3,0) (4,5)      row 1: (5,3) (6,0) (7,4) (8,4)
 * Kernel w[0,j,c,o], so that at output (y,x) with taps t0 = x[y,2x], t1 = x[y,2x+1]:
 *   o0 = t0.ch0
 *   o1 = t1.ch0 - t0.ch0                      (= 1 everywhere)
 *   o2 = 10*(t0.ch1 + t1.ch1) + t1.ch0
 * (0,0): o0 1, o2 10*(1+2)+2 = 32    (0,1): o0 3, o2 10*(0+5)+4 = 54
 * (1,0): o0 5, o2 10*(3+0)+6 = 36    (1,1): o0 7, o2 10*(4+4)+8 = 88 */
static const float conv_mc_x[] = {1, 1, 2, 2, 3, 0, 4, 5, /**/ 5, 3, 6, 0, 7, 4, 8, 4};
static const float conv_mc_w[] = {1, -1, 0, /* j0 c0 */ 0, 0, 10, /* j0 c1 */
                                  0, 1, 1, /* j1 c0 */ 0, 0, 10 /* j1 c1 */};
static const float conv_mc_out[] = {1, 1, 32, 3, 1, 54, 5, 1, 36, 7, 1, 88};

/* 7x5 image 1..35; 2x2 pool with stride 2, valid: floor((7-2)/2)+1 = 3 rows,
 * floor((5-2)/2)+1 = 2 columns; the last row and column are dropped. Each
 * block's max is its bottom-right element in[2y+1][2x+1] = (2y+1)*5+2x+2:
 *   7 9 / 17 19 / 27 29 */
static const float img7x5[] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12,
                                 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24,
                                 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35};
static const float pool_floor[] = {7, 9, 17, 19, 27, 29};
/* -1..-9 as 3x3, max pool 2x2 stride 2 same: out 2, pad_total 1 at the
 * bottom/right; the padding never wins: max(-1,-2,-4,-5) = -1,
 * max(-3,-6) = -3, max(-7,-8) = -7, max(-9) = -9 (0 if padding counted). */
static const float neg3[] = {-1, -2, -3, -4, -5, -6, -7, -8, -9};
static const float pool_max_same[] = {-1, -3, -7, -9};
/* [1,3,2,2] (ch1 = -ch0 except a 0), window 2x1, stride 1, valid -> [1,2,2,2]:
 *   ch0 = [[1,5],[3,2],[4,0]]  -> [[max(1,3), max(5,2)], [max(3,4), max(2,0)]] = [[3,5],[4,2]]
 *   ch1 = [[-1,-5],[-3,-2],[-4,0]] -> [[-1,-2],[-3,0]] */
static const float pool_mc_x[] = {1, -1, 5, -5, 3, -3, 2, -2, 4, -4, 0, 0};
static const float pool_mc_max[] = {3, -1, 5, -2, 4, -3, 2, 0};
/* A window of -inf has max -inf (not -FLT_MAX). */
static const float neg_inf2[] = {-INFINITY, -INFINITY};
static const float neg_inf1[] = {-INFINITY};
/* avg pool 2x2 stride 2 same on 1..9: padding is not counted, so
 *   (1+2+4+5)/4 = 3, (3+6)/2 = 4.5, (7+8)/2 = 7.5, 9/1 = 9 */
static const float pool_avg_same[] = {3, 4.5f, 7.5f, 9};
/* avg pool 3x3 stride 1 same on 1..9: the box sums of conv_same3 divided by
 * the taps inside the image: 12/4, 21/6, 16/4, 27/6, 45/9, 33/6, 24/4, 39/6, 28/4 */
static const float pool_avg_same3[] = {3, 3.5f, 4, 4.5f, 5, 5.5f, 6, 6.5f, 7};
/* [1,2,3,2], ch0 = [[1,2,3],[4,5,6]], ch1 = [[0,2,4],[6,8,10]], avg 2x2 stride 1 valid:
 *   ch0 (1+2+4+5)/4 = 3, (2+3+5+6)/4 = 4; ch1 (0+2+6+8)/4 = 4, (2+4+8+10)/4 = 6 */
static const float pool_avg_x[] = {1, 0, 2, 2, 3, 4, 4, 6, 5, 8, 6, 10};
static const float pool_avg_valid[] = {3, 4, 4, 6};

/* Pointwise inputs and their images (double precision, 9 digits):
 *   sigmoid(v) = 1/(1+e^-v), e.g. sigmoid(-2) = 1/(1+7.3890561) = 0.119202922
 *   tanh(v) = (e^v-e^-v)/(e^v+e^-v), e.g. tanh(0.5) = (1.6487213-0.6065307)/2.2552519 = 0.462117157 */
static const float pw_x[] = {-20, -2, -0.5f, 0, 0.5f, 2, 20};
static const float pw_relu[] = {0, 0, 0, 0, 0.5f, 2, 20};
static const float pw_sigmoid[] = {2.06115362e-09f, 0.119202922f, 0.377540669f, 0.5f,
                                   0.622459331f,    0.880797078f, 0.999999998f};
static const float pw_tanh[] = {-1, -0.96402758f, -0.462117157f, 0, 0.462117157f, 0.96402758f, 1};

/* softmax([1,2,3]) = [e^-2, e^-1, 1] / (e^-2+e^-1+1) = [0.135335283, 0.367879441, 1] / 1.503214724
 *                  = [0.0900305732, 0.244728471, 0.665240956]
 * The same for [1000,1001,1002] and [-1002,-1001,-1000] (shift invariance;
 * e^1000 overflows and e^-1000 underflows unless the row max is subtracted),
 * and reversed for [3,2,1]. */
static const float sm_x[] = {1, 2, 3, 1000, 1001, 1002, -1002, -1001, -1000, 3, 2, 1};
static const float sm_out[] = {0.0900305732f, 0.244728471f, 0.665240956f, 0.0900305732f,
                               0.244728471f,  0.665240956f, 0.0900305732f, 0.244728471f,
                               0.665240956f,  0.665240956f, 0.244728471f,  0.0900305732f};

/* Dropout at rate 0.25, seed 42, stream 7, step 3 on x = 1..8: element i
 * draws Philox(counter 3*8+i, stream 7, key 42); u = (word0 >> 8) / 2^24:
 *   word0 = 7f6e22c9 97510207 b5203b4a 0cdf1e98 973c9c33 14d506d2 780e23fe 96aca367
 *   u     = .4978    .5911    .7075    .0503    .5908    .0814    .4690    .5886
 * u >= 0.25 keeps x/(1-0.25) = x*4/3, else 0:
 *   [4/3, 8/3, 4, 0, 20/3, 0, 28/3, 32/3] */
static const float dr_x[] = {1, 2, 3, 4, 5, 6, 7, 8};
static const float dr_train[] = {1.33333333f, 2.66666667f, 4, 0, 6.66666667f, 0, 9.33333333f, 10.6666667f};

/* [1,2,3] with [10,-20,0.5]: sums [11,-18,3.5], products [10,-40,1.5] */
static const float ew_a[] = {1, 2, 3};
static const float ew_b[] = {10, -20, 0.5f};
static const float ew_add[] = {11, -18, 3.5f};
static const float ew_mul[] = {10, -40, 1.5f};

#define NO_ATTRS {.pad = NNC_PAD_VALID}
#define VALID_S(h, w) {.stride = {h, w}, .pad = NNC_PAD_VALID}
#define SAME_S(h, w) {.stride = {h, w}, .pad = NNC_PAD_SAME}
#define POOL(wh, ww, sh, sw, p) {.window = {wh, ww}, .stride = {sh, sw}, .pad = p}
#define TRAIN(seed_, step_) {.training = 1, .seed = seed_, .step = step_}

static const kat kats[] = {
    {"input is bound, not computed", NNC_OP_INPUT, NO_ATTRS, 0, {{2, {2, 3}, mm_a}}, {2, {2, 3}, mm_a}, {0}},
    {"param is bound, not computed", NNC_OP_PARAM, NO_ATTRS, 0, {{1, {3}, ba_b}}, {1, {3}, ba_b}, {0}},

    {"matmul", NNC_OP_MATMUL, NO_ATTRS, 2, {{2, {2, 3}, mm_a}, {2, {3, 4}, mm_b}}, {2, {2, 4}, mm_ab}, {0}},
    {"matmul trans_a", NNC_OP_MATMUL, {.trans_a = 1}, 2, {{2, {3, 2}, mm_a_t}, {2, {3, 4}, mm_b}},
     {2, {2, 4}, mm_ab}, {0}},
    {"matmul trans_b", NNC_OP_MATMUL, {.trans_b = 1}, 2, {{2, {2, 3}, mm_a}, {2, {4, 3}, mm_b_t}},
     {2, {2, 4}, mm_ab}, {0}},
    {"matmul trans_a trans_b", NNC_OP_MATMUL, {.trans_a = 1, .trans_b = 1}, 2,
     {{2, {3, 2}, mm_a_t}, {2, {4, 3}, mm_b_t}}, {2, {2, 4}, mm_ab}, {0}},
    {"matmul rank 3", NNC_OP_MATMUL, NO_ATTRS, 2, {{3, {2, 2, 3}, mm_a3}, {2, {3, 4}, mm_b}},
     {3, {2, 2, 4}, mm_a3b}, {0}},
    {"matmul rank 3 trans_b", NNC_OP_MATMUL, {.trans_b = 1}, 2, {{3, {2, 2, 3}, mm_a3}, {2, {4, 3}, mm_b_t}},
     {3, {2, 2, 4}, mm_a3b}, {0}},

    {"bias_add", NNC_OP_BIAS_ADD, NO_ATTRS, 2, {{3, {2, 2, 3}, ba_x}, {1, {3}, ba_b}}, {3, {2, 2, 3}, ba_out}, {0}},

    {"conv2d valid", NNC_OP_CONV2D, VALID_S(1, 1), 2, {{4, {1, 3, 3, 1}, img3}, {4, {2, 2, 1, 1}, k22}},
     {4, {1, 2, 2, 1}, conv_valid}, {0}},
    {"conv2d same, extra pad bottom/right", NNC_OP_CONV2D, SAME_S(1, 1), 2,
     {{4, {1, 3, 3, 1}, img3}, {4, {2, 2, 1, 1}, k22}}, {4, {1, 3, 3, 1}, conv_same}, {0}},
    {"conv2d same 3x3", NNC_OP_CONV2D, SAME_S(1, 1), 2, {{4, {1, 3, 3, 1}, img3}, {4, {3, 3, 1, 1}, ones9}},
     {4, {1, 3, 3, 1}, conv_same3}, {0}},
    {"conv2d channels, stride (1,2)", NNC_OP_CONV2D, VALID_S(1, 2), 2,
     {{4, {1, 2, 4, 2}, conv_mc_x}, {4, {1, 2, 2, 3}, conv_mc_w}}, {4, {1, 2, 2, 3}, conv_mc_out}, {0}},

    {"max_pool valid floor 7x5 -> 3x2", NNC_OP_MAX_POOL, POOL(2, 2, 2, 2, NNC_PAD_VALID), 1,
     {{4, {1, 7, 5, 1}, img7x5}}, {4, {1, 3, 2, 1}, pool_floor}, {0}},
    {"max_pool same ignores padding", NNC_OP_MAX_POOL, POOL(2, 2, 2, 2, NNC_PAD_SAME), 1,
     {{4, {1, 3, 3, 1}, neg3}}, {4, {1, 2, 2, 1}, pool_max_same}, {0}},
    {"max_pool channels, window 2x1", NNC_OP_MAX_POOL, POOL(2, 1, 1, 1, NNC_PAD_VALID), 1,
     {{4, {1, 3, 2, 2}, pool_mc_x}}, {4, {1, 2, 2, 2}, pool_mc_max}, {0}},
    {"max_pool of -inf", NNC_OP_MAX_POOL, POOL(1, 2, 1, 1, NNC_PAD_VALID), 1, {{4, {1, 1, 2, 1}, neg_inf2}},
     {4, {1, 1, 1, 1}, neg_inf1}, {0}},

    {"avg_pool same excludes padding", NNC_OP_AVG_POOL, POOL(2, 2, 2, 2, NNC_PAD_SAME), 1,
     {{4, {1, 3, 3, 1}, img3}}, {4, {1, 2, 2, 1}, pool_avg_same}, {0}},
    {"avg_pool same 3x3 stride 1", NNC_OP_AVG_POOL, POOL(3, 3, 1, 1, NNC_PAD_SAME), 1,
     {{4, {1, 3, 3, 1}, img3}}, {4, {1, 3, 3, 1}, pool_avg_same3}, {0}},
    {"avg_pool valid channels", NNC_OP_AVG_POOL, POOL(2, 2, 1, 1, NNC_PAD_VALID), 1,
     {{4, {1, 2, 3, 2}, pool_avg_x}}, {4, {1, 1, 2, 2}, pool_avg_valid}, {0}},

    {"reshape keeps the data", NNC_OP_RESHAPE, {.shape_rank = 2, .shape = {3, 2}}, 1, {{2, {2, 6}, ba_x}},
     {3, {2, 3, 2}, ba_x}, {0}},

    {"relu", NNC_OP_RELU, NO_ATTRS, 1, {{2, {1, 7}, pw_x}}, {2, {1, 7}, pw_relu}, {0}},
    {"sigmoid", NNC_OP_SIGMOID, NO_ATTRS, 1, {{2, {1, 7}, pw_x}}, {2, {1, 7}, pw_sigmoid}, {0}},
    {"tanh", NNC_OP_TANH, NO_ATTRS, 1, {{2, {1, 7}, pw_x}}, {2, {1, 7}, pw_tanh}, {0}},
    {"softmax", NNC_OP_SOFTMAX, NO_ATTRS, 1, {{2, {4, 3}, sm_x}}, {2, {4, 3}, sm_out}, {0}},

    {"dropout inference is the identity", NNC_OP_DROPOUT, {.rate = 0.25f, .stream = 7}, 1,
     {{2, {2, 4}, dr_x}}, {2, {2, 4}, dr_x}, {.training = 0, .seed = 42, .step = 3}},
    {"dropout rate 0 is the identity", NNC_OP_DROPOUT, {.rate = 0, .stream = 7}, 1, {{2, {2, 4}, dr_x}},
     {2, {2, 4}, dr_x}, TRAIN(42, 3)},
    {"dropout training mask", NNC_OP_DROPOUT, {.rate = 0.25f, .stream = 7}, 1, {{2, {2, 4}, dr_x}},
     {2, {2, 4}, dr_train}, TRAIN(42, 3)},

    {"add", NNC_OP_ADD, NO_ATTRS, 2, {{1, {3}, ew_a}, {1, {3}, ew_b}}, {1, {3}, ew_add}, {0}},
    {"mul", NNC_OP_MUL, NO_ATTRS, 2, {{1, {3}, ew_a}, {1, {3}, ew_b}}, {1, {3}, ew_mul}, {0}},
};

#define NKATS ((int)(sizeof kats / sizeof kats[0]))

START_TEST(test_known_answer) {
  const kat *c = &kats[_i];
  ck_assert_msg(c->nsrc == nnc_ops[c->op].arity, "%s: case has %d operands, %s takes %d", c->what, c->nsrc,
                nnc_ops[c->op].name, nnc_ops[c->op].arity);
  tensor type;
  float *out = run_op(c->op, &c->attrs, c->src, c->nsrc, &c->opts, &type);
  ck_assert_msg(type.rank == c->want.rank, "%s: rank %d, want %d", c->what, type.rank, c->want.rank);
  for (int i = 0; i < type.rank; i++)
    ck_assert_msg(type.shape[i] == c->want.shape[i], "%s: axis %d has %lld, want %lld", c->what, i,
                  (long long)type.shape[i], (long long)c->want.shape[i]);
  for (int64_t i = 0; i < tensor_numel(&c->want); i++)
    ck_assert_msg(close_to(out[i], c->want.data[i]), "%s: element %lld is %.9g, want %.9g", c->what,
                  (long long)i, (double)out[i], (double)c->want.data[i]);
  free(out);
}
END_TEST

/* A new row in ir/ops.def must come with a known answer above. */
START_TEST(test_every_op_has_a_known_answer) {
  for (int op = 0; op < NNC_OP_COUNT; op++) {
    int cases = 0;
    for (int i = 0; i < NKATS; i++) cases += kats[i].op == (nnc_op)op;
    ck_assert_msg(cases > 0, "op '%s' has no known-answer case in tests/runtime/test_ref_kernels.c",
                  nnc_ops[op].name);
  }
}
END_TEST

/* The interpreter refuses to run with an unbound leaf. */
START_TEST(test_unbound_leaf_fails) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  nnc_node_spec spec = {.op = NNC_OP_INPUT, .name = "x", .dtype = NNC_F32, .rank = 1, .shape = {3}};
  int32_t x = nnc_graph_add(g, &spec, &st);
  ck_assert_int_ge(nnc_graph_op(g, NNC_OP_RELU, &x, 1, NULL, &st), 0);
  void *values[2] = {NULL, NULL};
  ck_assert_int_eq(nnc_interp_run(g, values, NULL, &st), -1);
  ck_assert_str_eq(st.msg, "input 'x' has no data");
  nnc_interp_free(g, values);
  nnc_graph_free(g);
}
END_TEST

/* Softmax rows sum to one and stay finite, whatever the scale of the logits. */
START_TEST(test_softmax_rows_sum_to_one) {
  enum { ROWS = 64, COLS = 10 };
  static float x[ROWS * COLS];
  const float scales[] = {1e-3f, 1, 30, 1e3f, 3e4f};
  for (int r = 0; r < ROWS; r++)
    for (int j = 0; j < COLS; j++)
      x[r * COLS + j] = scales[r % 5] * nnc_rng_normal(5, 1, (uint64_t)(r * COLS + j));
  tensor src = {2, {ROWS, COLS}, x}, type;
  float *out = run_op(NNC_OP_SOFTMAX, &(nnc_attrs)NO_ATTRS, &src, 1, NULL, &type);
  for (int r = 0; r < ROWS; r++) {
    double sum = 0;
    int top = 0;
    for (int j = 0; j < COLS; j++) {
      float p = out[r * COLS + j];
      ck_assert_msg(isfinite(p) && p >= 0 && p <= 1, "row %d column %d: %g", r, j, (double)p);
      sum += p;
      if (x[r * COLS + j] > x[r * COLS + top]) top = j;
    }
    ck_assert_msg(fabs(sum - 1) < 1e-6, "row %d sums to %.9g", r, sum);
    for (int j = 0; j < COLS; j++) ck_assert(out[r * COLS + j] <= out[r * COLS + top]);
  }
  free(out);
}
END_TEST

TCase *tcase_ref_kernels(void) {
  TCase *tc = tcase_create("ref_kernels");
  tcase_add_loop_test(tc, test_known_answer, 0, NKATS);
  tcase_add_test(tc, test_every_op_has_a_known_answer);
  tcase_add_test(tc, test_unbound_leaf_fails);
  tcase_add_test(tc, test_softmax_rows_sum_to_one);
  return tc;
}

/* ---- Convolution and pooling against the direct formula -------------------- */

typedef struct window_case {
  int64_t batch, h, w, c; /* input NHWC */
  int64_t kh, kw, o;      /* conv kernel HWIO (o unused for pooling) */
  int sh, sw;
  nnc_pad pad;
} window_case;

static const window_case conv_cases[] = {
    {2, 7, 5, 3, 3, 2, 4, 1, 1, NNC_PAD_SAME},  {2, 7, 5, 3, 3, 2, 4, 1, 1, NNC_PAD_VALID},
    {2, 7, 5, 3, 3, 2, 4, 2, 2, NNC_PAD_SAME},  {2, 7, 5, 3, 3, 2, 4, 2, 2, NNC_PAD_VALID},
    {1, 8, 6, 2, 4, 3, 5, 2, 1, NNC_PAD_SAME},  {1, 8, 6, 2, 4, 3, 5, 2, 1, NNC_PAD_VALID},
    {1, 6, 9, 4, 2, 5, 3, 1, 2, NNC_PAD_SAME},  {1, 6, 9, 4, 2, 5, 3, 1, 2, NNC_PAD_VALID},
    {1, 5, 5, 2, 5, 5, 2, 1, 1, NNC_PAD_VALID}, /* kernel the size of the input: 1x1 out */
    {1, 2, 3, 2, 4, 5, 2, 1, 1, NNC_PAD_SAME},  /* kernel larger than the input */
    {3, 9, 7, 1, 1, 1, 3, 3, 2, NNC_PAD_SAME},  {3, 9, 7, 1, 1, 1, 3, 3, 2, NNC_PAD_VALID},
};

static const window_case pool_cases[] = {
    {2, 7, 5, 3, 2, 2, 0, 2, 2, NNC_PAD_VALID}, {2, 7, 5, 3, 2, 2, 0, 2, 2, NNC_PAD_SAME},
    {1, 7, 5, 2, 3, 2, 0, 1, 1, NNC_PAD_SAME},  {1, 7, 5, 2, 3, 2, 0, 1, 1, NNC_PAD_VALID},
    {1, 6, 9, 2, 3, 3, 0, 2, 3, NNC_PAD_SAME},  {1, 6, 9, 2, 3, 3, 0, 2, 3, NNC_PAD_VALID},
    {2, 4, 4, 1, 5, 5, 0, 1, 1, NNC_PAD_SAME},  {1, 8, 8, 4, 3, 3, 0, 3, 3, NNC_PAD_SAME},
};

/* Keras's rule, spelled out independently of ir/op.c:
 *   valid: out = floor((n - k) / s) + 1, no padding
 *   same:  out = ceil(n / s), pad_total = max((out - 1) * s + k - n, 0),
 *          pad_before = pad_total / 2, the rest after (bottom/right). */
static void keras_axis(int64_t n, int64_t k, int64_t s, nnc_pad pad, int64_t *out, int64_t *before,
                       int64_t *total) {
  if (pad == NNC_PAD_VALID) {
    *out = (n - k) / s + 1;
    *before = *total = 0;
    return;
  }
  *out = (n + s - 1) / s;
  int64_t t = (*out - 1) * s + k - n;
  *total = t > 0 ? t : 0;
  *before = *total / 2;
}

static float *random_tensor(int64_t count, uint32_t stream) {
  float *t = malloc((size_t)count * sizeof *t);
  for (int64_t i = 0; i < count; i++) t[i] = nnc_rng_normal(1234, stream, (uint64_t)i);
  return t;
}

static void check_shape(const tensor *type, int64_t n, int64_t h, int64_t w, int64_t c) {
  ck_assert_int_eq(type->rank, 4);
  ck_assert_int_eq(type->shape[0], n);
  ck_assert_int_eq(type->shape[1], h);
  ck_assert_int_eq(type->shape[2], w);
  ck_assert_int_eq(type->shape[3], c);
}

START_TEST(test_conv2d_direct) {
  const window_case *c = &conv_cases[_i];
  int64_t oh, ow, ph, pw, th, tw;
  keras_axis(c->h, c->kh, c->sh, c->pad, &oh, &ph, &th);
  keras_axis(c->w, c->kw, c->sw, c->pad, &ow, &pw, &tw);
  float *x = random_tensor(c->batch * c->h * c->w * c->c, 1);
  float *k = random_tensor(c->kh * c->kw * c->c * c->o, 2);
  /* The input with its zero border written out: padded[n][y][x][ch]. */
  int64_t hp = c->h + th, wp = c->w + tw;
  float *padded = calloc((size_t)(c->batch * hp * wp * c->c), sizeof *padded);
  for (int64_t n = 0; n < c->batch; n++)
    for (int64_t y = 0; y < c->h; y++)
      for (int64_t xx = 0; xx < c->w; xx++)
        for (int64_t ch = 0; ch < c->c; ch++)
          padded[((n * hp + y + ph) * wp + xx + pw) * c->c + ch] = x[((n * c->h + y) * c->w + xx) * c->c + ch];

  nnc_attrs attrs = {.stride = {c->sh, c->sw}, .pad = c->pad};
  tensor src[2] = {{4, {c->batch, c->h, c->w, c->c}, x}, {4, {c->kh, c->kw, c->c, c->o}, k}}, type;
  float *out = run_op(NNC_OP_CONV2D, &attrs, src, 2, NULL, &type);
  check_shape(&type, c->batch, oh, ow, c->o);
  for (int64_t n = 0; n < c->batch; n++)
    for (int64_t y = 0; y < oh; y++)
      for (int64_t xx = 0; xx < ow; xx++)
        for (int64_t o = 0; o < c->o; o++) {
          double sum = 0, mag = 0;
          for (int64_t i = 0; i < c->kh; i++)
            for (int64_t j = 0; j < c->kw; j++)
              for (int64_t ch = 0; ch < c->c; ch++) {
                double term = (double)padded[((n * hp + y * c->sh + i) * wp + xx * c->sw + j) * c->c + ch] *
                              k[((i * c->kw + j) * c->c + ch) * c->o + o];
                sum += term;
                mag += fabs(term);
              }
          float got = out[((n * oh + y) * ow + xx) * c->o + o];
          ck_assert_msg(fabs(got - sum) <= 1e-6 * mag + 1e-30, "case %d at [%lld,%lld,%lld,%lld]: %.9g, want %.9g",
                        _i, (long long)n, (long long)y, (long long)xx, (long long)o, (double)got, sum);
        }
  free(out);
  free(padded);
  free(k);
  free(x);
}
END_TEST

START_TEST(test_pool_direct) {
  const window_case *c = &pool_cases[_i];
  int64_t oh, ow, ph, pw, th, tw;
  keras_axis(c->h, c->kh, c->sh, c->pad, &oh, &ph, &th);
  keras_axis(c->w, c->kw, c->sw, c->pad, &ow, &pw, &tw);
  float *x = random_tensor(c->batch * c->h * c->w * c->c, 3);
  nnc_attrs attrs = {.window = {(int32_t)c->kh, (int32_t)c->kw}, .stride = {c->sh, c->sw}, .pad = c->pad};
  tensor src = {4, {c->batch, c->h, c->w, c->c}, x}, tmax, tavg;
  float *mx = run_op(NNC_OP_MAX_POOL, &attrs, &src, 1, NULL, &tmax);
  float *av = run_op(NNC_OP_AVG_POOL, &attrs, &src, 1, NULL, &tavg);
  check_shape(&tmax, c->batch, oh, ow, c->c);
  check_shape(&tavg, c->batch, oh, ow, c->c);
  for (int64_t n = 0; n < c->batch; n++)
    for (int64_t y = 0; y < oh; y++)
      for (int64_t xx = 0; xx < ow; xx++)
        for (int64_t ch = 0; ch < c->c; ch++) {
          /* Window rows [y*s - pad_before, y*s - pad_before + k), clipped to the
           * image: Keras takes the max and the mean over the real taps only. */
          double best = -INFINITY, sum = 0, mag = 0;
          int taps = 0;
          for (int64_t i = 0; i < c->kh; i++)
            for (int64_t j = 0; j < c->kw; j++) {
              int64_t iy = y * c->sh - ph + i, ix = xx * c->sw - pw + j;
              if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) continue;
              double v = x[((n * c->h + iy) * c->w + ix) * c->c + ch];
              best = v > best ? v : best;
              sum += v;
              mag += fabs(v);
              taps++;
            }
          ck_assert_int_gt(taps, 0);
          int64_t at = ((n * oh + y) * ow + xx) * c->c + ch;
          ck_assert_msg(mx[at] == (float)best, "case %d max at %lld: %.9g, want %.9g", _i, (long long)at,
                        (double)mx[at], best);
          ck_assert_msg(fabs(av[at] - sum / taps) <= 1e-6 * mag / taps + 1e-30,
                        "case %d avg at %lld: %.9g, want %.9g", _i, (long long)at, (double)av[at], sum / taps);
        }
  free(av);
  free(mx);
  free(x);
}
END_TEST

TCase *tcase_ref_conv_pool_direct(void) {
  TCase *tc = tcase_create("ref_conv_pool_direct");
  tcase_add_loop_test(tc, test_conv2d_direct, 0, (int)(sizeof conv_cases / sizeof conv_cases[0]));
  tcase_add_loop_test(tc, test_pool_direct, 0, (int)(sizeof pool_cases / sizeof pool_cases[0]));
  return tc;
}

/* ---- Dropout's contract ---------------------------------------------------- */

enum { DROP_N = 100000 };

static float *dropout_run(const float *x, float rate, uint32_t stream, uint64_t seed, uint64_t step) {
  nnc_attrs attrs = {.rate = rate, .stream = (int32_t)stream};
  nnc_run_opts opts = {.training = 1, .seed = seed, .step = step};
  tensor src = {2, {DROP_N / 100, 100}, x}, type;
  return run_op(NNC_OP_DROPOUT, &attrs, &src, 1, &opts, &type);
}

static float *dropout_input(void) {
  float *x = malloc(DROP_N * sizeof *x);
  for (int i = 0; i < DROP_N; i++) x[i] = 1.0f + (float)(i % 97); /* never zero */
  return x;
}

static int mask_differences(const float *a, const float *b) {
  int diff = 0;
  for (int i = 0; i < DROP_N; i++) diff += (a[i] == 0) != (b[i] == 0);
  return diff;
}

/* About `rate` of the elements are zeroed; survivors are scaled by 1/(1-rate). */
START_TEST(test_dropout_rate_and_scale) {
  const float rates[] = {0.1f, 0.3f, 0.5f, 0.8f};
  float *x = dropout_input();
  for (int r = 0; r < 4; r++) {
    float *out = dropout_run(x, rates[r], 11, 2024, 0);
    int zeros = 0;
    for (int i = 0; i < DROP_N; i++) {
      if (out[i] == 0) zeros++;
      else
        ck_assert_msg(close_to(out[i], x[i] / (1.0 - rates[r])), "rate %g element %d: %.9g, want %.9g",
                      (double)rates[r], i, (double)out[i], x[i] / (1.0 - rates[r]));
    }
    /* The zeroed fraction has standard deviation sqrt(r(1-r)/N) <= 0.0016. */
    double frac = (double)zeros / DROP_N;
    ck_assert_msg(fabs(frac - rates[r]) < 0.01, "rate %g zeroed %.4f", (double)rates[r], frac);
    free(out);
  }
  free(x);
}
END_TEST

/* The mask is a pure function of (seed, stream, step): repeatable, and fresh
 * for another step, seed or stream (two independent masks at rate r differ in
 * 2r(1-r) of the positions: 42% at 0.3). */
START_TEST(test_dropout_mask_determinism) {
  float *x = dropout_input();
  float *a = dropout_run(x, 0.3f, 11, 2024, 5);
  float *same = dropout_run(x, 0.3f, 11, 2024, 5);
  float *next_step = dropout_run(x, 0.3f, 11, 2024, 6);
  float *other_seed = dropout_run(x, 0.3f, 11, 2025, 5);
  float *other_stream = dropout_run(x, 0.3f, 12, 2024, 5);
  ck_assert(memcmp(a, same, DROP_N * sizeof *a) == 0);
  int d_step = mask_differences(a, next_step);
  int d_seed = mask_differences(a, other_seed);
  int d_stream = mask_differences(a, other_stream);
  ck_assert_msg(fabs(d_step / (double)DROP_N - 0.42) < 0.02, "next step changes %d positions", d_step);
  ck_assert_msg(fabs(d_seed / (double)DROP_N - 0.42) < 0.02, "other seed changes %d positions", d_seed);
  ck_assert_msg(fabs(d_stream / (double)DROP_N - 0.42) < 0.02, "other stream changes %d positions", d_stream);
  free(other_stream);
  free(other_seed);
  free(next_step);
  free(same);
  free(a);
  free(x);
}
END_TEST

TCase *tcase_ref_dropout(void) {
  TCase *tc = tcase_create("ref_dropout");
  tcase_add_test(tc, test_dropout_rate_and_scale);
  tcase_add_test(tc, test_dropout_mask_determinism);
  return tc;
}
