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
#include "runtime/interp/interp.h"
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
 * to *type. For a leaf op the graph is that leaf alone, bound to src[0].
 * With `labels`, operand 1 is i32 with that data and src[1]'s shape. */
static float *run_op_labels(nnc_op op, const nnc_attrs *attrs, const tensor *src, int nsrc,
                            const int32_t *labels, const nnc_run_opts *opts, tensor *type) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  int leaf = (nnc_ops[op].flags & NNC_OPF_LEAF) != 0;
  int nleaves = leaf ? 1 : nsrc;
  int32_t ids[NNC_MAX_SRC];
  for (int i = 0; i < nleaves; i++) {
    char name[16];
    snprintf(name, sizeof name, "x%d", i);
    int ints = labels && i == 1;
    nnc_node_spec spec = {.op = leaf ? op : NNC_OP_INPUT, .name = name, .dtype = ints ? NNC_I32 : NNC_F32,
                          .rank = src[i].rank};
    memcpy(spec.shape, src[i].shape, sizeof spec.shape);
    ids[i] = nnc_graph_add(g, &spec, &st);
    ck_assert_msg(ids[i] >= 0, "%s", st.msg);
  }
  int32_t id = leaf ? ids[0] : nnc_graph_op(g, op, ids, nsrc, attrs, &st);
  ck_assert_msg(id >= 0, "%s", st.msg);
  void **values = calloc((size_t)g->nnodes, sizeof *values);
  for (int i = 0; i < nleaves; i++) values[ids[i]] = labels && i == 1 ? (void *)labels : (void *)src[i].data;
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

static float *run_op(nnc_op op, const nnc_attrs *attrs, const tensor *src, int nsrc,
                     const nnc_run_opts *opts, tensor *type) {
  return run_op_labels(op, attrs, src, nsrc, NULL, opts, type);
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
static const float pw_leaky_relu[] = {-5, -0.5f, -0.125f, 0, 0.5f, 2, 20}; /* alpha 0.25 */
/* elu, alpha 1: e^v - 1 below zero, e.g. e^-2 - 1 = 0.135335283 - 1 */
static const float pw_elu[] = {-0.999999998f, -0.864664717f, -0.393469340f, 0, 0.5f, 2, 20};
/* selu: scale * x above zero, scale * alpha * (e^v - 1) below, with Keras's
 * alpha = 1.6732632423543772 and scale = 1.0507009873554805, e.g.
 * selu(-2) = 1.7580993408 * (0.135335283 - 1) = -1.52016647 */
static const float pw_selu[] = {-1.75809934f, -1.52016647f, -0.691758188f, 0, 0.525350494f, 2.10140197f, 21.0140197f};
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
    {"state is bound, not computed", NNC_OP_STATE, NO_ATTRS, 0, {{1, {3}, ba_b}}, {1, {3}, ba_b}, {0}},

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
    /* One process: the sum over the one rank, with all of the batch. */
    {"allreduce of one rank", NNC_OP_ALLREDUCE, {.bucket = 0}, 1, {{2, {2, 6}, ba_x}}, {2, {2, 6}, ba_x}, {0}},

    {"relu", NNC_OP_RELU, NO_ATTRS, 1, {{2, {1, 7}, pw_x}}, {2, {1, 7}, pw_relu}, {0}},
    {"leaky_relu", NNC_OP_LEAKY_RELU, {.alpha = 0.25f}, 1, {{2, {1, 7}, pw_x}}, {2, {1, 7}, pw_leaky_relu}, {0}},
    {"elu", NNC_OP_ELU, {.alpha = 1.0f}, 1, {{2, {1, 7}, pw_x}}, {2, {1, 7}, pw_elu}, {0}},
    {"selu", NNC_OP_SELU, NO_ATTRS, 1, {{2, {1, 7}, pw_x}}, {2, {1, 7}, pw_selu}, {0}},
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

/* ---- Known answers for the training ops -------------------------------------
 *
 * Gradients, losses, the accuracy metric and optimizer updates take up to four
 * operands and sometimes i32 labels, so their cases have a table of their own
 * (designated initializers; `labels` makes operand 1 i32). */

typedef struct train_kat {
  const char *what;
  nnc_op op;
  nnc_attrs attrs;
  int nsrc;
  tensor src[NNC_MAX_SRC];
  const int32_t *labels; /* sparse labels: operand 1 is i32 with src[1]'s shape and these values */
  tensor want;
} train_kat;

/* bias_grad sums dy over every axis but the last: x = 1..12 as [2,2,3] gives
 * channel sums 1+4+7+10 = 22, 2+5+8+11 = 26, 3+6+9+12 = 30. */
static const float bg_out[] = {22, 26, 30};

/* conv2d_grad_input with dy = [[1,2],[3,4]] and w = k22 = [[1,2],[3,4]] (valid,
 * 3x3 input): dx[r,c] = sum of dy[y,x] * w[r-y, c-x] over the taps in range
 * (the full convolution):
 *   dx00 = 1*1 = 1            dx01 = 1*2+2*1 = 4            dx02 = 2*2 = 4
 *   dx10 = 1*3+3*1 = 6        dx11 = 1*4+2*3+3*2+4*1 = 20   dx12 = 2*4+4*2 = 16
 *   dx20 = 3*3 = 9            dx21 = 3*4+4*3 = 24           dx22 = 4*4 = 16 */
static const float cgi_valid[] = {1, 4, 4, 6, 20, 16, 9, 24, 16};
/* The same dy and w, same padding, stride 2: out 2x2, pad_total (2-1)*2+2-3 = 1,
 * all after, so output (y,x) reads rows 2y..2y+1 and columns 2x..2x+1:
 *   (0,0) puts 1*w = 1,2,3,4 on (0,0),(0,1),(1,0),(1,1)
 *   (0,1) puts 2*w00 = 2 on (0,2) and 2*w10 = 6 on (1,2) (column 3 is padding)
 *   (1,0) puts 3*w00 = 3 on (2,0) and 3*w01 = 6 on (2,1) (row 3 is padding)
 *   (1,1) puts 4*w00 = 4 on (2,2) */
static const float cgi_same_s2[] = {1, 2, 2, 3, 4, 6, 3, 6, 4};
/* Same padding with a 3x3 kernel of ones pads one row/column on each side, so
 * the padding comes before too. Input (r,c) feeds the outputs whose window
 * covers it, the 3x3 neighbourhood of (r,c) inside the image; with dy = img3,
 * dx[r,c] is that neighbourhood's sum of dy, as in conv_same3:
 *   12 21 16 / 27 45 33 / 24 39 28
 * and conv2d_grad_kernel of x = img3 with dy = ones gives, for tap (i,j), the
 * sum of x over the rows/columns shifted by i-1, j-1 and clipped to the image:
 *   dw00 = x[0..1][0..1] = 1+2+4+5 = 12, dw11 = all = 45, dw22 = x[1..2][1..2] = 28, ...
 * the same table. */
/* conv_mc's kernel, strides (1,2), dy[y,x,o] = o+1 everywhere: input column
 * 2x+j, channel c gets sum_o (o+1) * w[0,j,c,o]:
 *   j0 c0: 1*1 + 2*-1 + 3*0 = -1     j0 c1: 3*10 = 30
 *   j1 c0: 1*0 + 2*1 + 3*1 = 5       j1 c1: 3*10 = 30 */
static const float dy_o123[] = {1, 2, 3, 1, 2, 3, 1, 2, 3, 1, 2, 3};
static const float cgi_mc[] = {-1, 30, 5, 30, -1, 30, 5, 30, /**/ -1, 30, 5, 30, -1, 30, 5, 30};

/* conv2d_grad_kernel: dw[i,j] = sum over outputs of x[y*s+i-p, x*s+j-p] * dy[y,x].
 * img3 (x[r,c] = 3r+c+1) with dy = [[1,2],[3,4]], valid:
 *   dw00 = 1*1+2*2+4*3+5*4 = 37    dw01 = 2*1+3*2+5*3+6*4 = 47
 *   dw10 = 4*1+5*2+7*3+8*4 = 67    dw11 = 5*1+6*2+8*3+9*4 = 77
 * same, stride 2 (taps at rows/columns 2y+i, 2x+j; 3 is padding):
 *   dw00 = x00*1+x02*2+x20*3+x22*4 = 1+6+21+36 = 64
 *   dw01 = x01*1+x21*3 = 2+24 = 26     dw10 = x10*1+x12*2 = 4+12 = 16
 *   dw11 = x11*1 = 5 */
static const float cgk_valid[] = {37, 47, 67, 77};
static const float cgk_same_s2[] = {64, 26, 16, 5};
/* conv_mc_x with dy[y,x,o] = o+1, strides (1,2): dw[0,j,c,o] = (o+1) * sum
 * of channel c over columns 2x+j of both rows:
 *   j0: columns 0,2: c0 1+3+5+7 = 16, c1 1+0+3+4 = 8
 *   j1: columns 1,3: c0 2+4+6+8 = 20, c1 2+5+0+4 = 11 */
static const float cgk_mc[] = {16, 32, 48, 8, 16, 24, 20, 40, 60, 11, 22, 33};

/* max_pool_grad routes dy to the tap the forward max chose. On img7x5 (2x2,
 * stride 2, valid) the maxima are the blocks' bottom-right elements, at flat
 * index (2y+1)*5 + 2x+1: 6, 8, 16, 18, 26, 28 receive dy = 1..6. */
static const float dy_1to6[] = {1, 2, 3, 4, 5, 6};
static const float mpg_floor[] = {0, 0, 0, 0, 0, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0,
                                  4, 0, 0, 0, 0, 0, 0, 0, 5, 0, 6, 0, 0, 0, 0, 0, 0};
/* On neg3 with same padding (see pool_max_same) the maxima are -1, -3, -7,
 * -9 at (0,0), (0,2), (2,0), (2,2): never the padding. */
static const float mpg_same[] = {1, 0, 2, 0, 0, 0, 3, 0, 4};
/* x = [3,3,1,3,2], window 1x2 stride 1: windows (3,3) (3,1) (1,3) (3,2) pick
 * indices 0 (a tie: the first), 1, 3, 3, so dy = [10,20,40,80] gives
 * [10, 20, 0, 40+80, 0]. */
static const float mpg_tie_x[] = {3, 3, 1, 3, 2};
static const float mpg_tie_dy[] = {10, 20, 40, 80};
static const float mpg_tie[] = {10, 20, 0, 120, 0};

/* avg_pool_grad spreads dy over the taps inside the input. 2x2 stride 2 same
 * on 3x3 with dy = [4,6,8,5]: 4/4 = 1 on the top-left block, 6/2 = 3 on (0,2)
 * and (1,2), 8/2 = 4 on (2,0) and (2,1), 5/1 on (2,2). */
static const float apg_same_dy[] = {4, 6, 8, 5};
static const float apg_same[] = {1, 1, 3, 1, 1, 3, 4, 4, 5};
/* 2x2 stride 1 valid on 3x3 with dy = [4,8,12,16]: each window adds dy/4 =
 * 1,2,3,4 to its four taps; (r,c) sums the windows covering it:
 *   1, 1+2, 2 / 1+3, 1+2+3+4, 2+4 / 3, 3+4, 4 */
static const float apg_valid_dy[] = {4, 8, 12, 16};
static const float apg_valid[] = {1, 3, 2, 4, 10, 6, 3, 7, 4};
/* Two channels, one 2x2 window: dy = (4, 8) gives (1, 2) at each tap. */
static const float apg_mc_dy[] = {4, 8};
static const float apg_mc[] = {1, 2, 1, 2, 1, 2, 1, 2};

/* Activation gradients from the output y:
 *   relu:    dy where y > 0:           y [0,0.5,0,2], dy [1,-2,3,-4] -> [0,-2,0,-4]
 *   sigmoid: dy*y*(1-y):               4*.5*.5 = 1, 2*.25*.75 = .375, 10*.9*.1 = .9
 *   tanh:    dy*(1-y^2):               3*1 = 3, 4*.75 = 3, 2*.75 = 1.5, 7*0 = 0
 *   leaky_relu, alpha .25: dy where y > 0, else .25*dy:
 *                                      y [0,0.5,-0.5,2], dy [1,-2,3,-4] -> [.25,-2,.75,-4]
 *   elu, alpha 1: dy where y > 0, else dy*(y+1):
 *                                      y [0.5,-0.5,-0.75,2], dy [1,-2,3,-4] -> [1,-1,.75,-4]
 *   selu: scale*dy where y > 0, else dy*(y + scale*alpha), scale*alpha = 1.75809934:
 *                                      y [0.5,-0.5,-0.75,2], dy [1,-2,3,-4]
 *                                      -> [1.05070099,-2.51619868,3.02429802,-4.20280395]
 *   softmax: y*(dy - sum(dy*y)) per row:
 *     y [.2,.3,.5], dy [1,2,3]: sum .2+.6+1.5 = 2.3 -> [.2*-1.3, .3*-.3, .5*.7] = [-.26,-.09,.35]
 *     y [.5,.5,0],  dy [1,0,5]: sum .5           -> [.5*.5, .5*-.5, 0] = [.25,-.25,0] */
static const float rg_y[] = {0, 0.5f, 0, 2}, rg_dy[] = {1, -2, 3, -4}, rg_out[] = {0, -2, 0, -4};
static const float sg_y[] = {0.5f, 0.25f, 0.9f}, sg_dy[] = {4, 2, 10}, sg_out[] = {1, 0.375f, 0.9f};
static const float eg_y[] = {0.5f, -0.5f, -0.75f, 2}, eg_out[] = {1, -1, 0.75f, -4};
static const float seg_out[] = {1.05070099f, -2.51619868f, 3.02429802f, -4.20280395f};
static const float lg_y[] = {0, 0.5f, -0.5f, 2}, lg_out[] = {0.25f, -2, 0.75f, -4};
static const float tg_y[] = {0, 0.5f, -0.5f, 1}, tg_dy[] = {3, 4, 2, 7}, tg_out[] = {3, 3, 1.5f, 0};
static const float smg_y[] = {0.2f, 0.3f, 0.5f, 0.5f, 0.5f, 0};
static const float smg_dy[] = {1, 2, 3, 1, 0, 5};
static const float smg_out[] = {-0.26f, -0.09f, 0.35f, 0.25f, -0.25f, 0};

/* Cross-entropy on logits. lse([1,2,3]) = 3 + log(1 + e^-1 + e^-2)
 * = 3 + log(1.503214724) = 3.407605964, softmax = [0.0900305732, 0.244728471,
 * 0.665240956]; [1000,1001,1002] has the same softmax (shifted by the max).
 * Sparse, labels [2, 0]: (-(3 - 3.407605964) - (1 - 3.407605964)) / 2
 *   = (0.407605964 + 2.407605964) / 2 = 1.407605964
 * One-hot, z = [[1,2,3],[3,2,1]], y = [[0,1,0],[0,0,1]]:
 *   (1.407605964 + 2.407605964) / 2 = 1.907605964 */
static const int32_t xl_labels[] = {2, 0};
static const float xl_z[] = {1, 2, 3, 1000, 1001, 1002};
static const float xl_z2[] = {1, 2, 3, 3, 2, 1};
static const float xl_onehot[] = {0, 1, 0, 0, 0, 1};
static const float xl_sparse_loss[] = {1.407605964f};
static const float xl_onehot_loss[] = {1.907605964f};
/* The gradient (softmax * sum(y) - y) / B, B = 2:
 *   sparse: [.0900305732, .244728471, .665240956 - 1] / 2, [.0900305732 - 1, .244728471, .665240956] / 2
 *   one-hot: [.0900305732, .244728471 - 1, .665240956] / 2, [.665240956, .244728471, .0900305732 - 1] / 2
 * Label weights summing to 2 (y = [1,0,1], B = 1) scale the softmax by 2:
 *   [2*.0900305732 - 1, 2*.244728471, 2*.665240956 - 1] */
static const float xlg_sparse[] = {0.0450152866f, 0.122364236f, -0.167379522f,
                                   -0.454984713f, 0.122364236f, 0.332620478f};
static const float xlg_onehot[] = {0.0450152866f, -0.377635764f, 0.332620478f,
                                   0.332620478f,  0.122364236f,  -0.454984713f};
static const float xlg_w2_y[] = {1, 0, 1};
static const float xlg_w2[] = {-0.819938854f, 0.489456942f, 0.330481912f};

/* Cross-entropy on probabilities, as Keras 2 computes it.
 * Sparse: clip to [1e-7, 1-1e-7], then log-softmax (Keras feeds log(p) to
 * sparse_softmax_cross_entropy_with_logits), i.e. -log(c_y / sum_j c_j):
 *   [.2,.7,.1], label 1: -log(.7 / 1) = 0.356674944
 *   [0,1,0],    label 0: -log(1e-7 / (1e-7 + (1-1e-7) + 1e-7)) = 16.1180957 (0 is clipped)
 *   [.1,.2,.1], label 1: -log(.2 / .4) = log 2 = 0.693147181 (rows need not sum to 1)
 *   mean (0.356674944 + 16.1180957 + 0.693147181) / 3 = 5.72263929
 * Categorical: divide by the row sum first, then clip:
 *   [1,2,1],    y [0,1,0]: -log(2/4) = 0.693147181
 *   [.5,0,.5],  y [0,1,0]: -log(clip(0)) = -log(1e-7) = 16.1180957
 *   mean 8.40562142 */
static const float xp_sparse_p[] = {0.2f, 0.7f, 0.1f, 0, 1, 0, 0.1f, 0.2f, 0.1f};
static const int32_t xp_sparse_labels[] = {1, 0, 1};
static const float xp_sparse_loss[] = {5.72263929f};
static const float xp_cat_p[] = {1, 2, 1, 0.5f, 0, 0.5f};
static const float xp_cat_y[] = {0, 1, 0, 0, 1, 0};
static const float xp_cat_loss[] = {8.40562142f};
/* The gradients, B = 2; a clipped entry passes none (tf.clip_by_value).
 * Sparse, L = -log c_y + log C, C = sum_j c_j: dL/dp_k = 1/C - [k = y]/c_y
 * where p_k is not clipped:
 *   [.2,.5,.3], label 1, C = 1:      [1, 1 - 1/.5, 1] / 2 = [.5, -.5, .5]
 *   [0,.6,.4],  label 2, C = 1+1e-7: [0, 1/C, 1/C - 1/.4] / 2 = [0, .49999995, -.75000005]
 * Categorical, L = -log(p_y / S): dL/dp_k = (1 - [k = y] S/p_y) / S (labels sum to 1):
 *   [1,2,1], y [0,1,0], S = 4:       [1/4, 1/4 - 1/2, 1/4] / 2 = [.125, -.125, .125]
 *   [.5,0,.5], y [0,1,0]: p_y/S = 0 is clipped, so the loss is flat: [0, 0, 0] */
static const float xpg_sparse_p[] = {0.2f, 0.5f, 0.3f, 0, 0.6f, 0.4f};
static const int32_t xpg_sparse_labels[] = {1, 2};
static const float xpg_sparse[] = {0.5f, -0.5f, 0.5f, 0, 0.49999995f, -0.75000005f};
static const float xpg_cat[] = {0.125f, -0.125f, 0.125f, 0, 0, 0};

/* mse: p [1,2,3,4], y [0,2,5,3.5]: differences 1, 0, -2, .5; squares 1, 0, 4,
 * .25; mean 5.25/4 = 1.3125. Gradient 2*diff/4 = [.5, 0, -1, .25]. */
static const float mse_p[] = {1, 2, 3, 4}, mse_y[] = {0, 2, 5, 3.5f};
static const float mse_loss[] = {1.3125f}, mse_g[] = {0.5f, 0, -1, 0.25f};

/* correct counts the rows predicted right.
 * Sparse, labels [1,0,1,0]: argmaxes 1; 0 (tie .5/.5, the first); 1 (tie
 *   .4/.4, the first); 2 -> hits, hits, hits, miss = 3 (ties taking the last would give 1).
 * One-hot: argmax 1 vs 1; 0 (tie) vs 0; 0 vs 2 -> 2.
 * One column, thresholded at 0.5 (Keras's binary accuracy): p [.9,.2,.5,.7]
 *   predicts 1, 0, 0 (.5 is not above), 1; f32 labels [1,0,1,0] -> 2 hits;
 *   i32 labels [1,0,0,1] -> 4 hits (an argmax over one column would give 2). */
static const float cor_sparse_p[] = {0.1f, 0.7f, 0.2f, 0.5f, 0.5f, 0, 0.2f, 0.4f, 0.4f, 0.3f, 0.3f, 0.4f};
static const int32_t cor_sparse_labels[] = {1, 0, 1, 0};
static const float cor_onehot_p[] = {0.2f, 0.5f, 0.3f, 0.4f, 0.4f, 0.2f, 0.6f, 0.3f, 0.1f};
static const float cor_onehot_y[] = {0, 1, 0, 1, 0, 0, 0, 0, 1};
static const float cor_col_p[] = {0.9f, 0.2f, 0.5f, 0.7f};
static const float cor_col_y[] = {1, 0, 1, 0};
static const int32_t cor_col_labels[] = {1, 0, 0, 1};
static const float two[] = {2}, three[] = {3}, four[] = {4};

/* Updates. square: [1,-2,.5] -> [1,4,.25].
 * ema(a, b) = a + (b - a)*alpha, Keras's m += (g - m)(1 - beta1) with alpha = .1:
 *   a [0,1,2,0], b [1,1,-2,4] -> [.1, 1, 2 - .4 = 1.6, .4] */
static const float sq_x[] = {1, -2, 0.5f}, sq_out[] = {1, 4, 0.25f};
static const float ema_a[] = {0, 1, 2, 0}, ema_b[] = {1, 1, -2, 4}, ema_out[] = {0.1f, 1, 1.6f, 0.4f};
/* adam_update(w, m, v, lr_t) = w - lr_t*m/(sqrt(v) + eps), eps 1e-7, with
 * Keras's first step: lr_t = 1e-3*sqrt(1 - .999)/(1 - .9) = 3.16227766e-4.
 *   g = 2:  m = .1*2 = .2, v = .001*4 = .004: w = 1 - lr_t*.2/(.0632455532 + 1e-7)
 *           = 1 - 1e-3*(1 - 1.58e-6) = 0.999000002
 *   m = 1e-7, v = 1e-14: m/(1e-7 + 1e-7) = .5 (eps counts): 1 - .5*lr_t = 0.999841886
 *   m = v = 0: the eps keeps 0/0 away: w stays 2
 *   g = -1: m = -.1, v = .001: 1 + lr_t*.1/(.0316227766 + 1e-7) = 1.000999997 */
static const float adam_w[] = {1, 1, 2, 1}, adam_m[] = {0.2f, 1e-7f, 0, -0.1f};
static const float adam_v[] = {0.004f, 1e-14f, 0, 0.001f}, adam_lr[] = {3.16227766e-4f};
static const float adam_out[] = {0.999000002f, 0.999841886f, 2, 1.000999997f};
/* rmsprop_update(w, g, v, lr) = w - lr*g/sqrt(v + eps), eps inside the root, lr .01:
 *   w 1,  g 2,    v .4 (Keras's first step, (1 - .9)*4): 1 - .01*2/sqrt(.4000001) = 0.968377227
 *   w 0,  g 1e-3, v 0: -.01*1e-3/sqrt(1e-7) = -.0316227766 (eps outside would give -100)
 *   w -1, g -.5,  v .25: -1 + .01*.5/sqrt(.2500001) = -0.990000002 */
static const float rms_w[] = {1, 0, -1}, rms_g[] = {2, 1e-3f, -0.5f}, rms_v[] = {0.4f, 0, 0.25f};
static const float lr_01[] = {0.01f};
static const float rms_out[] = {0.968377227f, -0.0316227766f, -0.990000002f};
/* sgd_update(w, g, lr) = w - lr*g, lr .01: [1 - .005, -2 + .01, .5 - .04] */
static const float sgd_w[] = {1, -2, 0.5f}, sgd_g[] = {0.5f, -1, 4}, sgd_out[] = {0.995f, -1.99f, 0.46f};
/* Keras SGD with momentum .9, lr .01: v = .9*v - lr*g, then w += v, or with
 * Nesterov w += .9*v_new - lr*g.
 *   momentum_velocity: v [0,1,-2], g [1,2,.5] -> [-.01, .9 - .02, -1.8 - .005] = [-.01, .88, -1.805]
 *   nesterov_update: w [1,1,1] with that v: [1 - .009 - .01, 1 + .792 - .02, 1 - 1.6245 - .005]
 *                                          = [.981, 1.772, -.6295] */
static const float mom_v[] = {0, 1, -2}, mom_g[] = {1, 2, 0.5f}, mom_out[] = {-0.01f, 0.88f, -1.805f};
static const float nest_w[] = {1, 1, 1}, nest_out[] = {0.981f, 1.772f, -0.6295f};
/* sub(a, b) = a - b; maximum(a, b): [1 - .5, -2 + 1, .5 - 4], [1, -1, 4] */
static const float sub_out[] = {0.5f, -1, -3.5f}, max_out[] = {1, -1, 4};
/* rmsprop_momentum(m, g, d, lr) = .9*m + lr*g/sqrt(d + 1e-7), lr .01:
 *   [.09 + .02/sqrt(.4000001), 0 + .01/sqrt(1.0000001), -.9 - .005/sqrt(.2500001)]
 *   = [.121622773, .0099999995, -.909999998] */
static const float rmom_m[] = {0.1f, 0, -1}, rmom_g[] = {2, 1, -0.5f}, rmom_d[] = {0.4f, 1, 0.25f};
static const float rmom_out[] = {0.121622773f, 0.0099999995f, -0.909999998f};

#define SCALAR(p) {0, {0}, p}

/* Batch normalization on x = [[1, 2], [3, 6]] (two rows, C = 2, n = 2),
 * eps 1e-3, gamma [1, .5], beta [0, 1]:
 *   bn_stats: mean [2, 4], biased var [1, 4], times n/(n-1) = 2: [2, 8]
 *   batch_norm_train: (x - mean) * gamma / sqrt(var + eps) + beta
 *     = [[-1/sqrt(1.001), -2*.5/sqrt(4.001) + 1], [1/sqrt(1.001), 2*.5/sqrt(4.001) + 1]]
 *   with dy = [[1, 0], [0, 1]], xhat = [[-.9995, -.99988], [.9995, .99988]]:
 *     bn_gamma_grad = sum dy * xhat = [-.999500375, .999875023]
 *     batch_norm_train_grad = gamma rstd (dy - mean(dy) - xhat mean(dy xhat))
 *   bn_moving, momentum .99, row 2 (Bessel): [.5*.99 + 2*.01, 1*.99 + 8*.01] = [.515, 1.07]
 *   bn_fold with beta [0, .5]: scale = gamma / sqrt(var + eps), shift = beta - mean * scale
 *   scale_shift with the table [[2, .5], [1, -1]]: [[1*2 + 1, 2*.5 - 1], [3*2 + 1, 6*.5 - 1]]
 *   scale_shift_grad, dy = x: [[2, 1], [6, 3]]
 *   fill {alpha 1} of the beta [0, 1]: [1, 1], its values unread */
static const float bn_x[] = {1, 2, 3, 6}, bn_dy[] = {1, 0, 0, 1}, bn_stats_out[] = {2, 4, 1, 4, 2, 8};
static const float bn_gamma[] = {1, 0.5f}, bn_beta[] = {0, 1}, bn_beta_fold[] = {0, 0.5f};
static const float bn_train_out[] = {-0.999500375f, 0.500062488f, 0.999500375f, 1.49993751f};
static const float bn_dx[] = {0.000499250936f, -3.12382849e-05f, -0.000499250936f, 3.12382849e-05f};
static const float bn_dgamma[] = {-0.999500375f, 0.999875023f};
static const float bn_moving_in[] = {0.5f, 1}, bn_moving_out[] = {0.515f, 1.07f};
static const float bn_mean[] = {2, 4}, bn_var[] = {1, 4};
static const float bn_fold_out[] = {0.999500375f, 0.249968756f, -1.99900075f, -0.499875023f};
static const float bn_table[] = {2, 0.5f, 1, -1}, bn_ss_out[] = {3, 0, 7, 2}, bn_ssg_out[] = {2, 1, 6, 3};
static const float bn_ones[] = {1, 1};

static const train_kat train_kats[] = {
    {.what = "bias_grad", .op = NNC_OP_BIAS_GRAD, .nsrc = 1, .src = {{3, {2, 2, 3}, ba_x}},
     .want = {1, {3}, bg_out}},

    {.what = "conv2d_grad_input valid", .op = NNC_OP_CONV2D_GRAD_INPUT,
     .attrs = {.stride = {1, 1}, .pad = NNC_PAD_VALID, .shape_rank = 3, .shape = {3, 3, 1}}, .nsrc = 2,
     .src = {{4, {1, 2, 2, 1}, k22}, {4, {2, 2, 1, 1}, k22}}, .want = {4, {1, 3, 3, 1}, cgi_valid}},
    {.what = "conv2d_grad_input same stride 2", .op = NNC_OP_CONV2D_GRAD_INPUT,
     .attrs = {.stride = {2, 2}, .pad = NNC_PAD_SAME, .shape_rank = 3, .shape = {3, 3, 1}}, .nsrc = 2,
     .src = {{4, {1, 2, 2, 1}, k22}, {4, {2, 2, 1, 1}, k22}}, .want = {4, {1, 3, 3, 1}, cgi_same_s2}},
    {.what = "conv2d_grad_input same 3x3, padding on both sides", .op = NNC_OP_CONV2D_GRAD_INPUT,
     .attrs = {.stride = {1, 1}, .pad = NNC_PAD_SAME, .shape_rank = 3, .shape = {3, 3, 1}}, .nsrc = 2,
     .src = {{4, {1, 3, 3, 1}, img3}, {4, {3, 3, 1, 1}, ones9}}, .want = {4, {1, 3, 3, 1}, conv_same3}},
    {.what = "conv2d_grad_input channels, stride (1,2)", .op = NNC_OP_CONV2D_GRAD_INPUT,
     .attrs = {.stride = {1, 2}, .pad = NNC_PAD_VALID, .shape_rank = 3, .shape = {2, 4, 2}}, .nsrc = 2,
     .src = {{4, {1, 2, 2, 3}, dy_o123}, {4, {1, 2, 2, 3}, conv_mc_w}}, .want = {4, {1, 2, 4, 2}, cgi_mc}},

    {.what = "conv2d_grad_kernel valid", .op = NNC_OP_CONV2D_GRAD_KERNEL,
     .attrs = {.stride = {1, 1}, .pad = NNC_PAD_VALID, .shape_rank = 2, .shape = {2, 2}}, .nsrc = 2,
     .src = {{4, {1, 3, 3, 1}, img3}, {4, {1, 2, 2, 1}, k22}}, .want = {4, {2, 2, 1, 1}, cgk_valid}},
    {.what = "conv2d_grad_kernel same stride 2", .op = NNC_OP_CONV2D_GRAD_KERNEL,
     .attrs = {.stride = {2, 2}, .pad = NNC_PAD_SAME, .shape_rank = 2, .shape = {2, 2}}, .nsrc = 2,
     .src = {{4, {1, 3, 3, 1}, img3}, {4, {1, 2, 2, 1}, k22}}, .want = {4, {2, 2, 1, 1}, cgk_same_s2}},
    {.what = "conv2d_grad_kernel same 3x3, padding on both sides", .op = NNC_OP_CONV2D_GRAD_KERNEL,
     .attrs = {.stride = {1, 1}, .pad = NNC_PAD_SAME, .shape_rank = 2, .shape = {3, 3}}, .nsrc = 2,
     .src = {{4, {1, 3, 3, 1}, img3}, {4, {1, 3, 3, 1}, ones9}}, .want = {4, {3, 3, 1, 1}, conv_same3}},
    {.what = "conv2d_grad_kernel channels, stride (1,2)", .op = NNC_OP_CONV2D_GRAD_KERNEL,
     .attrs = {.stride = {1, 2}, .pad = NNC_PAD_VALID, .shape_rank = 2, .shape = {1, 2}}, .nsrc = 2,
     .src = {{4, {1, 2, 4, 2}, conv_mc_x}, {4, {1, 2, 2, 3}, dy_o123}}, .want = {4, {1, 2, 2, 3}, cgk_mc}},

    {.what = "max_pool_grad valid floor", .op = NNC_OP_MAX_POOL_GRAD, .attrs = POOL(2, 2, 2, 2, NNC_PAD_VALID),
     .nsrc = 2, .src = {{4, {1, 7, 5, 1}, img7x5}, {4, {1, 3, 2, 1}, dy_1to6}}, .want = {4, {1, 7, 5, 1}, mpg_floor}},
    {.what = "max_pool_grad same never picks padding", .op = NNC_OP_MAX_POOL_GRAD,
     .attrs = POOL(2, 2, 2, 2, NNC_PAD_SAME), .nsrc = 2, .src = {{4, {1, 3, 3, 1}, neg3}, {4, {1, 2, 2, 1}, k22}},
     .want = {4, {1, 3, 3, 1}, mpg_same}},
    {.what = "max_pool_grad ties take the first, overlaps add", .op = NNC_OP_MAX_POOL_GRAD,
     .attrs = POOL(1, 2, 1, 1, NNC_PAD_VALID), .nsrc = 2,
     .src = {{4, {1, 1, 5, 1}, mpg_tie_x}, {4, {1, 1, 4, 1}, mpg_tie_dy}}, .want = {4, {1, 1, 5, 1}, mpg_tie}},

    {.what = "avg_pool_grad same stride 2", .op = NNC_OP_AVG_POOL_GRAD,
     .attrs = {.window = {2, 2}, .stride = {2, 2}, .pad = NNC_PAD_SAME, .shape_rank = 2, .shape = {3, 3}},
     .nsrc = 1, .src = {{4, {1, 2, 2, 1}, apg_same_dy}}, .want = {4, {1, 3, 3, 1}, apg_same}},
    {.what = "avg_pool_grad overlapping windows", .op = NNC_OP_AVG_POOL_GRAD,
     .attrs = {.window = {2, 2}, .stride = {1, 1}, .pad = NNC_PAD_VALID, .shape_rank = 2, .shape = {3, 3}},
     .nsrc = 1, .src = {{4, {1, 2, 2, 1}, apg_valid_dy}}, .want = {4, {1, 3, 3, 1}, apg_valid}},
    {.what = "avg_pool_grad channels", .op = NNC_OP_AVG_POOL_GRAD,
     .attrs = {.window = {2, 2}, .stride = {1, 1}, .pad = NNC_PAD_VALID, .shape_rank = 2, .shape = {2, 2}},
     .nsrc = 1, .src = {{4, {1, 1, 1, 2}, apg_mc_dy}}, .want = {4, {1, 2, 2, 2}, apg_mc}},

    {.what = "relu_grad", .op = NNC_OP_RELU_GRAD, .nsrc = 2, .src = {{2, {2, 2}, rg_y}, {2, {2, 2}, rg_dy}},
     .want = {2, {2, 2}, rg_out}},
    {.what = "sigmoid_grad", .op = NNC_OP_SIGMOID_GRAD, .nsrc = 2, .src = {{1, {3}, sg_y}, {1, {3}, sg_dy}},
     .want = {1, {3}, sg_out}},
    {.what = "leaky_relu_grad", .op = NNC_OP_LEAKY_RELU_GRAD, .attrs = {.alpha = 0.25f}, .nsrc = 2,
     .src = {{2, {2, 2}, lg_y}, {2, {2, 2}, rg_dy}}, .want = {2, {2, 2}, lg_out}},
    {.what = "elu_grad", .op = NNC_OP_ELU_GRAD, .attrs = {.alpha = 1.0f}, .nsrc = 2,
     .src = {{2, {2, 2}, eg_y}, {2, {2, 2}, rg_dy}}, .want = {2, {2, 2}, eg_out}},
    {.what = "selu_grad", .op = NNC_OP_SELU_GRAD, .nsrc = 2, .src = {{2, {2, 2}, eg_y}, {2, {2, 2}, rg_dy}},
     .want = {2, {2, 2}, seg_out}},
    {.what = "tanh_grad", .op = NNC_OP_TANH_GRAD, .nsrc = 2, .src = {{1, {4}, tg_y}, {1, {4}, tg_dy}},
     .want = {1, {4}, tg_out}},
    {.what = "softmax_grad", .op = NNC_OP_SOFTMAX_GRAD, .nsrc = 2, .src = {{2, {2, 3}, smg_y}, {2, {2, 3}, smg_dy}},
     .want = {2, {2, 3}, smg_out}},

    {.what = "xent_logits sparse labels", .op = NNC_OP_XENT_LOGITS, .nsrc = 2,
     .src = {{2, {2, 3}, xl_z}, {1, {2}, NULL}}, .labels = xl_labels, .want = SCALAR(xl_sparse_loss)},
    {.what = "xent_logits one-hot labels", .op = NNC_OP_XENT_LOGITS, .nsrc = 2,
     .src = {{2, {2, 3}, xl_z2}, {2, {2, 3}, xl_onehot}}, .want = SCALAR(xl_onehot_loss)},
    {.what = "xent_logits_grad sparse labels", .op = NNC_OP_XENT_LOGITS_GRAD, .nsrc = 2,
     .src = {{2, {2, 3}, xl_z}, {1, {2}, NULL}}, .labels = xl_labels, .want = {2, {2, 3}, xlg_sparse}},
    {.what = "xent_logits_grad one-hot labels", .op = NNC_OP_XENT_LOGITS_GRAD, .nsrc = 2,
     .src = {{2, {2, 3}, xl_z2}, {2, {2, 3}, xl_onehot}}, .want = {2, {2, 3}, xlg_onehot}},
    {.what = "xent_logits_grad label weights summing to 2", .op = NNC_OP_XENT_LOGITS_GRAD, .nsrc = 2,
     .src = {{2, {1, 3}, xl_z}, {2, {1, 3}, xlg_w2_y}}, .want = {2, {1, 3}, xlg_w2}},

    {.what = "xent_probs sparse clips and renormalizes", .op = NNC_OP_XENT_PROBS, .nsrc = 2,
     .src = {{2, {3, 3}, xp_sparse_p}, {1, {3}, NULL}}, .labels = xp_sparse_labels, .want = SCALAR(xp_sparse_loss)},
    {.what = "xent_probs categorical renormalizes, then clips", .op = NNC_OP_XENT_PROBS, .nsrc = 2,
     .src = {{2, {2, 3}, xp_cat_p}, {2, {2, 3}, xp_cat_y}}, .want = SCALAR(xp_cat_loss)},
    {.what = "xent_probs_grad sparse", .op = NNC_OP_XENT_PROBS_GRAD, .nsrc = 2,
     .src = {{2, {2, 3}, xpg_sparse_p}, {1, {2}, NULL}}, .labels = xpg_sparse_labels, .want = {2, {2, 3}, xpg_sparse}},
    {.what = "xent_probs_grad categorical", .op = NNC_OP_XENT_PROBS_GRAD, .nsrc = 2,
     .src = {{2, {2, 3}, xp_cat_p}, {2, {2, 3}, xp_cat_y}}, .want = {2, {2, 3}, xpg_cat}},

    {.what = "mse", .op = NNC_OP_MSE, .nsrc = 2, .src = {{2, {2, 2}, mse_p}, {2, {2, 2}, mse_y}},
     .want = SCALAR(mse_loss)},
    {.what = "mse_grad", .op = NNC_OP_MSE_GRAD, .nsrc = 2, .src = {{2, {2, 2}, mse_p}, {2, {2, 2}, mse_y}},
     .want = {2, {2, 2}, mse_g}},

    {.what = "correct sparse, ties take the first", .op = NNC_OP_CORRECT, .nsrc = 2,
     .src = {{2, {4, 3}, cor_sparse_p}, {1, {4}, NULL}}, .labels = cor_sparse_labels, .want = SCALAR(three)},
    {.what = "correct one-hot", .op = NNC_OP_CORRECT, .nsrc = 2,
     .src = {{2, {3, 3}, cor_onehot_p}, {2, {3, 3}, cor_onehot_y}}, .want = SCALAR(two)},
    {.what = "correct one column, f32 labels", .op = NNC_OP_CORRECT, .nsrc = 2,
     .src = {{2, {4, 1}, cor_col_p}, {2, {4, 1}, cor_col_y}}, .want = SCALAR(two)},
    {.what = "correct one column, i32 labels", .op = NNC_OP_CORRECT, .nsrc = 2,
     .src = {{2, {4, 1}, cor_col_p}, {1, {4}, NULL}}, .labels = cor_col_labels, .want = SCALAR(four)},

    {.what = "square", .op = NNC_OP_SQUARE, .nsrc = 1, .src = {{1, {3}, sq_x}}, .want = {1, {3}, sq_out}},
    {.what = "ema", .op = NNC_OP_EMA, .attrs = {.alpha = 0.1f}, .nsrc = 2, .src = {{1, {4}, ema_a}, {1, {4}, ema_b}},
     .want = {1, {4}, ema_out}},
    {.what = "adam_update", .op = NNC_OP_ADAM_UPDATE, .attrs = {.eps = 1e-7f}, .nsrc = 4,
     .src = {{1, {4}, adam_w}, {1, {4}, adam_m}, {1, {4}, adam_v}, SCALAR(adam_lr)}, .want = {1, {4}, adam_out}},
    {.what = "rmsprop_update", .op = NNC_OP_RMSPROP_UPDATE, .attrs = {.eps = 1e-7f}, .nsrc = 4,
     .src = {{1, {3}, rms_w}, {1, {3}, rms_g}, {1, {3}, rms_v}, SCALAR(lr_01)}, .want = {1, {3}, rms_out}},
    {.what = "sgd_update", .op = NNC_OP_SGD_UPDATE, .nsrc = 3,
     .src = {{1, {3}, sgd_w}, {1, {3}, sgd_g}, SCALAR(lr_01)}, .want = {1, {3}, sgd_out}},
    {.what = "momentum_velocity", .op = NNC_OP_MOMENTUM_VELOCITY, .attrs = {.alpha = 0.9f}, .nsrc = 3,
     .src = {{1, {3}, mom_v}, {1, {3}, mom_g}, SCALAR(lr_01)}, .want = {1, {3}, mom_out}},
    {.what = "nesterov_update", .op = NNC_OP_NESTEROV_UPDATE, .attrs = {.alpha = 0.9f}, .nsrc = 4,
     .src = {{1, {3}, nest_w}, {1, {3}, mom_out}, {1, {3}, mom_g}, SCALAR(lr_01)}, .want = {1, {3}, nest_out}},
    {.what = "sub", .op = NNC_OP_SUB, .nsrc = 2, .src = {{1, {3}, sgd_w}, {1, {3}, sgd_g}}, .want = {1, {3}, sub_out}},
    {.what = "maximum", .op = NNC_OP_MAXIMUM, .nsrc = 2, .src = {{1, {3}, sgd_w}, {1, {3}, sgd_g}},
     .want = {1, {3}, max_out}},
    {.what = "bn_stats", .op = NNC_OP_BN_STATS, .nsrc = 1, .src = {{2, {2, 2}, bn_x}}, .want = {2, {3, 2}, bn_stats_out}},
    {.what = "batch_norm_train", .op = NNC_OP_BATCH_NORM_TRAIN, .attrs = {.eps = 1e-3f}, .nsrc = 4,
     .src = {{2, {2, 2}, bn_x}, {2, {3, 2}, bn_stats_out}, {1, {2}, bn_gamma}, {1, {2}, bn_beta}},
     .want = {2, {2, 2}, bn_train_out}},
    {.what = "batch_norm_train_grad", .op = NNC_OP_BATCH_NORM_TRAIN_GRAD, .attrs = {.eps = 1e-3f}, .nsrc = 4,
     .src = {{2, {2, 2}, bn_x}, {2, {2, 2}, bn_dy}, {2, {3, 2}, bn_stats_out}, {1, {2}, bn_gamma}},
     .want = {2, {2, 2}, bn_dx}},
    {.what = "bn_gamma_grad", .op = NNC_OP_BN_GAMMA_GRAD, .attrs = {.eps = 1e-3f}, .nsrc = 3,
     .src = {{2, {2, 2}, bn_x}, {2, {2, 2}, bn_dy}, {2, {3, 2}, bn_stats_out}}, .want = {1, {2}, bn_dgamma}},
    {.what = "bn_moving", .op = NNC_OP_BN_MOVING, .attrs = {.alpha = 0.99f, .index = 2}, .nsrc = 2,
     .src = {{1, {2}, bn_moving_in}, {2, {3, 2}, bn_stats_out}}, .want = {1, {2}, bn_moving_out}},
    {.what = "bn_fold", .op = NNC_OP_BN_FOLD, .attrs = {.eps = 1e-3f, .alpha = 0.99f}, .nsrc = 4,
     .src = {{1, {2}, bn_mean}, {1, {2}, bn_var}, {1, {2}, bn_gamma}, {1, {2}, bn_beta_fold}},
     .want = {2, {2, 2}, bn_fold_out}},
    {.what = "scale_shift", .op = NNC_OP_SCALE_SHIFT, .nsrc = 2, .src = {{2, {2, 2}, bn_x}, {2, {2, 2}, bn_table}},
     .want = {2, {2, 2}, bn_ss_out}},
    {.what = "scale_shift_grad", .op = NNC_OP_SCALE_SHIFT_GRAD, .nsrc = 2,
     .src = {{2, {2, 2}, bn_x}, {2, {2, 2}, bn_table}}, .want = {2, {2, 2}, bn_ssg_out}},
    {.what = "fill", .op = NNC_OP_FILL, .attrs = {.alpha = 1.0f}, .nsrc = 1, .src = {{1, {2}, bn_beta}},
     .want = {1, {2}, bn_ones}},
    {.what = "rmsprop_momentum", .op = NNC_OP_RMSPROP_MOMENTUM, .attrs = {.alpha = 0.9f, .eps = 1e-7f}, .nsrc = 4,
     .src = {{1, {3}, rmom_m}, {1, {3}, rmom_g}, {1, {3}, rmom_d}, SCALAR(lr_01)}, .want = {1, {3}, rmom_out}},
};

#define NTRAIN_KATS ((int)(sizeof train_kats / sizeof train_kats[0]))

/* Runs one case and compares its type and every element with the answer. */
static void check_answer(const char *what, nnc_op op, const nnc_attrs *attrs, int nsrc, const tensor *src,
                         const int32_t *labels, const tensor *want, const nnc_run_opts *opts) {
  ck_assert_msg(nsrc == nnc_ops[op].arity, "%s: case has %d operands, %s takes %d", what, nsrc, nnc_ops[op].name,
                nnc_ops[op].arity);
  tensor type;
  float *out = run_op_labels(op, attrs, src, nsrc, labels, opts, &type);
  ck_assert_msg(type.rank == want->rank, "%s: rank %d, want %d", what, type.rank, want->rank);
  for (int i = 0; i < type.rank; i++)
    ck_assert_msg(type.shape[i] == want->shape[i], "%s: axis %d has %lld, want %lld", what, i,
                  (long long)type.shape[i], (long long)want->shape[i]);
  for (int64_t i = 0; i < tensor_numel(want); i++)
    ck_assert_msg(close_to(out[i], want->data[i]), "%s: element %lld is %.9g, want %.9g", what, (long long)i,
                  (double)out[i], (double)want->data[i]);
  free(out);
}

START_TEST(test_known_answer) {
  const kat *c = &kats[_i];
  check_answer(c->what, c->op, &c->attrs, c->nsrc, c->src, NULL, &c->want, &c->opts);
}
END_TEST

START_TEST(test_train_known_answer) {
  const train_kat *c = &train_kats[_i];
  check_answer(c->what, c->op, &c->attrs, c->nsrc, c->src, c->labels, &c->want, NULL);
}
END_TEST

/* A new row in ir/ops.def must come with a known answer above. */
START_TEST(test_every_op_has_a_known_answer) {
  for (int op = 0; op < NNC_OP_COUNT; op++) {
    int cases = 0;
    for (int i = 0; i < NKATS; i++) cases += kats[i].op == (nnc_op)op;
    for (int i = 0; i < NTRAIN_KATS; i++) cases += train_kats[i].op == (nnc_op)op;
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
  tcase_add_loop_test(tc, test_train_known_answer, 0, NTRAIN_KATS);
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
