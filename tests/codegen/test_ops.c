/* Every op row's generated kernel, driven by the op table: each row needs at
 * least one case in `cases` below (test_every_op_has_a_case walks ir/ops.def,
 * so a new row without one fails the suite). A case is the op, its
 * attributes and its operands' types and data; the test builds the one-op
 * graph, runs it on the interpreter and on cuda-emu, and compares within
 * the case's tolerance, relative to the largest expected magnitude. Then
 * each kernel must compile under NVRTC for sm_90 (skipped, with the reason
 * printed, when libnvrtc cannot be opened).
 *
 * Tolerances: 0 where the kernel computes exactly what the reference does
 * (elementwise ops, dropout, sums taken in the same order); about 1e-6 where
 * the reference sums in double and the kernel in float. These are for
 * --precision fp32; contractions are run on TF32 tensor cores too
 * (check_tf32 says against what). */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda.h"
#include "ir/op.h"
#include "ir/text.h"
#include "tests/codegen/harness.h"
#include "tests/codegen/suites.h"
#include "tests/testutil.h"

typedef struct operand {
  nnc_dtype dtype;
  int rank;
  int64_t shape[4];
  data_kind data;
  int64_t width; /* DATA_CLASSES: how many classes */
} operand;

typedef struct op_case {
  const char *what;
  nnc_op op;
  nnc_attrs attrs;
  operand src[4]; /* a leaf op's case describes the leaf in src[0] */
  double tol;
  int training;
} op_case;

/* A case whose name says "split" must run as a split pair (codegen/cuda.h,
 * nnc_cuda_split_sum), so that it tests what it is named for. */
static int expects_split(const op_case *c) { return strstr(c->what, "split") != NULL; }

#define F(r, kind, ...) {NNC_F32, r, {__VA_ARGS__}, kind, 0}
#define CLASSES(n, w) {NNC_I32, 1, {n}, DATA_CLASSES, w}
#define SCALAR {NNC_F32, 0, {0}, DATA_POSITIVE, 0}
#define R DATA_RANDOM
#define P DATA_POSITIVE

static const op_case cases[] = {
    {"input leaf", NNC_OP_INPUT, {.pad = 0}, {F(2, R, 3, 4)}, 0, 0},
    {"param leaf", NNC_OP_PARAM, {.pad = 0}, {F(1, R, 7)}, 0, 0},
    {"state leaf", NNC_OP_STATE, {.pad = 0}, {F(1, R, 7)}, 0, 0},
    {"matmul", NNC_OP_MATMUL, {.pad = 0}, {F(2, R, 33, 70), F(2, R, 70, 130)}, 2e-6, 0},
    {"matmul trans_a", NNC_OP_MATMUL, {.trans_a = 1}, {F(2, R, 7, 5), F(2, R, 7, 6)}, 1e-6, 0},
    {"matmul trans_b", NNC_OP_MATMUL, {.trans_b = 1}, {F(2, R, 5, 7), F(2, R, 6, 7)}, 1e-6, 0},
    {"matmul rank 3", NNC_OP_MATMUL, {.pad = 0}, {F(3, R, 2, 3, 7), F(2, R, 7, 4)}, 1e-6, 0},
    /* GEMM tiles are 64 x 64 with K steps of 16: edges in every dimension,
     * several tiles each way, and K shorter than a step. */
    {"matmul 33x17, K=7", NNC_OP_MATMUL, {.pad = 0}, {F(2, R, 33, 7), F(2, R, 7, 17)}, 1e-6, 0},
    {"matmul trans_a 130x70, K=33", NNC_OP_MATMUL, {.trans_a = 1}, {F(2, R, 33, 130), F(2, R, 33, 70)}, 2e-6, 0},
    {"matmul trans_b 70x130, K=33", NNC_OP_MATMUL, {.trans_b = 1}, {F(2, R, 70, 33), F(2, R, 130, 33)}, 2e-6, 0},
    {"matmul trans_a trans_b 65x66, K=17", NNC_OP_MATMUL, {.trans_a = 1, .trans_b = 1},
     {F(2, R, 17, 65), F(2, R, 66, 17)}, 2e-6, 0},
    /* Split-K: too few tiles for the SMs and K long enough to cut. The
     * partial sums are added in slice order, a grouping the interpreter's
     * single running sum does not share: a few float roundings more. K
     * ends inside a K step and inside the last slice. */
    {"matmul split-K 33x17, K=1031", NNC_OP_MATMUL, {.pad = 0}, {F(2, R, 33, 1031), F(2, R, 1031, 17)}, 4e-6, 0},
    {"matmul trans_a split-K 70x9, K=777", NNC_OP_MATMUL, {.trans_a = 1}, {F(2, R, 777, 70), F(2, R, 777, 9)}, 4e-6, 0},
    {"matmul trans_b split-K 5x130, K=600", NNC_OP_MATMUL, {.trans_b = 1}, {F(2, R, 5, 600), F(2, R, 130, 600)}, 4e-6, 0},
    /* FP32 tiles of 128 where the output still has a block for every SM:
     * 128 x 128, 128 x 64 with A read 16 bytes at a time, 64 x 128 with B
     * read along k, and 128 x 64 under an im2col view; K short, as the
     * outputs are large and the suite runs under sanitizers too. */
    {"matmul 128x128 tiles 1536x1536, K=3", NNC_OP_MATMUL, {.pad = 0}, {F(2, R, 1536, 3), F(2, R, 3, 1536)}, 2e-6, 0},
    {"matmul trans_a 128x64 tiles 8448x128, K=2", NNC_OP_MATMUL, {.trans_a = 1}, {F(2, R, 2, 8448), F(2, R, 2, 128)},
     2e-6, 0},
    {"matmul trans_b 64x128 tiles 128x8448, K=4", NNC_OP_MATMUL, {.trans_b = 1}, {F(2, R, 128, 4), F(2, R, 8448, 4)},
     2e-6, 0},
    {"bias_add", NNC_OP_BIAS_ADD, {.pad = 0}, {F(2, R, 4, 6), F(1, R, 6)}, 0, 0},
    {"bias_add NHWC", NNC_OP_BIAS_ADD, {.pad = 0}, {F(4, R, 2, 3, 3, 5), F(1, R, 5)}, 0, 0},
    {"conv2d same", NNC_OP_CONV2D, {.stride = {1, 1}, .pad = NNC_PAD_SAME},
     {F(4, R, 2, 9, 9, 3), F(4, R, 3, 3, 3, 5)}, 1e-6, 0},
    {"conv2d valid stride 2", NNC_OP_CONV2D, {.stride = {2, 2}, .pad = NNC_PAD_VALID},
     {F(4, R, 2, 9, 8, 2), F(4, R, 3, 2, 2, 4)}, 1e-6, 0},
    {"conv2d same stride 2, even kernel", NNC_OP_CONV2D, {.stride = {2, 2}, .pad = NNC_PAD_SAME},
     {F(4, R, 1, 7, 6, 2), F(4, R, 4, 4, 2, 3)}, 1e-6, 0},
    {"conv2d same stride 2, several tiles", NNC_OP_CONV2D, {.stride = {2, 2}, .pad = NNC_PAD_SAME},
     {F(4, R, 3, 13, 11, 5), F(4, R, 3, 3, 5, 70)}, 2e-6, 0},
    {"conv2d same, 128x64 tiles", NNC_OP_CONV2D, {.stride = {1, 1}, .pad = NNC_PAD_SAME},
     {F(4, R, 3, 64, 64, 1), F(4, R, 3, 3, 1, 128)}, 2e-6, 0},
    {"conv2d split-K, 2x2 pixels of 130 channels", NNC_OP_CONV2D, {.stride = {1, 1}, .pad = NNC_PAD_SAME},
     {F(4, R, 1, 2, 2, 130), F(4, R, 3, 3, 130, 7)}, 4e-6, 0},
    {"max_pool valid", NNC_OP_MAX_POOL, {.window = {2, 2}, .stride = {2, 2}}, {F(4, R, 2, 7, 7, 3)}, 0, 0},
    {"max_pool same 3x3/2", NNC_OP_MAX_POOL, {.window = {3, 3}, .stride = {2, 2}, .pad = NNC_PAD_SAME},
     {F(4, R, 2, 7, 7, 3)}, 0, 0},
    {"avg_pool valid", NNC_OP_AVG_POOL, {.window = {2, 2}, .stride = {2, 2}}, {F(4, R, 2, 7, 7, 3)}, 1e-7, 0},
    {"avg_pool same 3x3/2", NNC_OP_AVG_POOL, {.window = {3, 3}, .stride = {2, 2}, .pad = NNC_PAD_SAME},
     {F(4, R, 2, 7, 7, 3)}, 1e-7, 0},
    {"reshape", NNC_OP_RESHAPE, {.shape_rank = 1, .shape = {12}}, {F(3, R, 2, 3, 4)}, 0, 0},
    {"allreduce of one rank", NNC_OP_ALLREDUCE, {.bucket = 0}, {F(2, R, 3, 40)}, 0, 0},
    {"relu", NNC_OP_RELU, {.pad = 0}, {F(2, R, 3, 50)}, 0, 0},
    {"leaky_relu", NNC_OP_LEAKY_RELU, {.alpha = 0.2f}, {F(2, R, 3, 50)}, 0, 0},
    {"elu", NNC_OP_ELU, {.alpha = 1.0f}, {F(2, R, 3, 50)}, 0, 0},
    {"sigmoid", NNC_OP_SIGMOID, {.pad = 0}, {F(2, R, 3, 50)}, 0, 0},
    {"tanh", NNC_OP_TANH, {.pad = 0}, {F(2, R, 3, 50)}, 0, 0},
    {"softmax", NNC_OP_SOFTMAX, {.pad = 0}, {F(2, R, 6, 10)}, 0, 0},
    {"dropout, training", NNC_OP_DROPOUT, {.rate = 0.3f, .stream = 99}, {F(2, R, 40, 300)}, 0, 1},
    {"dropout, inference", NNC_OP_DROPOUT, {.rate = 0.3f, .stream = 99}, {F(2, R, 4, 30)}, 0, 0},
    {"add", NNC_OP_ADD, {.pad = 0}, {F(2, R, 3, 40), F(2, R, 3, 40)}, 0, 0},
    {"mul", NNC_OP_MUL, {.pad = 0}, {F(2, R, 3, 40), F(2, R, 3, 40)}, 0, 0},
    /* The tree adds partial sums in another order than interp's row loop:
     * 1e-6. The second case: three blocks of 8 channels, the last part-filled,
     * and rows past the 64 lanes. */
    {"bias_grad", NNC_OP_BIAS_GRAD, {.pad = 0}, {F(4, R, 2, 3, 4, 5)}, 1e-6, 0},
    {"bias_grad, rows past the lanes", NNC_OP_BIAS_GRAD, {.pad = 0}, {F(2, R, 150, 19)}, 1e-6, 0},
    /* Enough rows to split: slices of 600 rows, summed in slice order by a
     * second kernel; and one channel group over 7 slices, the last short. */
    {"bias_grad split over rows", NNC_OP_BIAS_GRAD, {.pad = 0}, {F(2, R, 3000, 19)}, 2e-6, 0},
    {"bias_grad split over rows, 3 channels", NNC_OP_BIAS_GRAD, {.pad = 0}, {F(4, R, 4, 30, 30, 3)}, 2e-6, 0},
    {"conv2d_grad_input same", NNC_OP_CONV2D_GRAD_INPUT,
     {.stride = {1, 1}, .pad = NNC_PAD_SAME, .shape_rank = 3, .shape = {9, 9, 3}},
     {F(4, R, 2, 9, 9, 5), F(4, R, 3, 3, 3, 5)}, 1e-6, 0},
    {"conv2d_grad_input valid stride 2", NNC_OP_CONV2D_GRAD_INPUT,
     {.stride = {2, 2}, .pad = NNC_PAD_VALID, .shape_rank = 3, .shape = {9, 8, 2}},
     {F(4, R, 2, 4, 4, 4), F(4, R, 3, 2, 2, 4)}, 1e-6, 0},
    {"conv2d_grad_input same stride 2, even kernel", NNC_OP_CONV2D_GRAD_INPUT,
     {.stride = {2, 2}, .pad = NNC_PAD_SAME, .shape_rank = 3, .shape = {7, 6, 2}},
     {F(4, R, 1, 4, 3, 3), F(4, R, 4, 4, 2, 3)}, 1e-6, 0},
    {"conv2d_grad_input same stride 2, several tiles", NNC_OP_CONV2D_GRAD_INPUT,
     {.stride = {2, 2}, .pad = NNC_PAD_SAME, .shape_rank = 3, .shape = {13, 11, 70}},
     {F(4, R, 3, 7, 6, 9), F(4, R, 3, 3, 70, 9)}, 2e-6, 0},
    {"conv2d_grad_input split-K, 3x3 pixels from 100 channels", NNC_OP_CONV2D_GRAD_INPUT,
     {.stride = {1, 1}, .pad = NNC_PAD_SAME, .shape_rank = 3, .shape = {3, 3, 5}},
     {F(4, R, 1, 3, 3, 100), F(4, R, 3, 3, 5, 100)}, 4e-6, 0},
    {"conv2d_grad_kernel same", NNC_OP_CONV2D_GRAD_KERNEL,
     {.stride = {1, 1}, .pad = NNC_PAD_SAME, .shape_rank = 2, .shape = {3, 3}},
     {F(4, R, 2, 9, 9, 3), F(4, R, 2, 9, 9, 5)}, 1e-6, 0},
    {"conv2d_grad_kernel valid stride 2", NNC_OP_CONV2D_GRAD_KERNEL,
     {.stride = {2, 2}, .pad = NNC_PAD_VALID, .shape_rank = 2, .shape = {3, 2}},
     {F(4, R, 2, 9, 8, 2), F(4, R, 2, 4, 4, 4)}, 1e-6, 0},
    {"conv2d_grad_kernel same stride 2, several tiles", NNC_OP_CONV2D_GRAD_KERNEL,
     {.stride = {2, 2}, .pad = NNC_PAD_SAME, .shape_rank = 2, .shape = {3, 3}},
     {F(4, R, 3, 13, 11, 30), F(4, R, 3, 7, 6, 70)}, 2e-6, 0},
    /* A first layer's kernel gradient: 9 taps x 6 channels over 3 x 23 x 21
     * pixels, so K = 1449 in 5 slices, the last short. */
    {"conv2d_grad_kernel split-K, one input channel", NNC_OP_CONV2D_GRAD_KERNEL,
     {.stride = {1, 1}, .pad = NNC_PAD_SAME, .shape_rank = 2, .shape = {3, 3}},
     {F(4, R, 3, 23, 21, 1), F(4, R, 3, 23, 21, 6)}, 4e-6, 0},
    {"max_pool_grad valid", NNC_OP_MAX_POOL_GRAD, {.window = {2, 2}, .stride = {2, 2}},
     {F(4, R, 2, 7, 7, 3), F(4, R, 2, 3, 3, 3)}, 0, 0},
    {"max_pool_grad same 3x3/2, tied maxima", NNC_OP_MAX_POOL_GRAD,
     {.window = {3, 3}, .stride = {2, 2}, .pad = NNC_PAD_SAME},
     {F(4, DATA_TIES, 2, 7, 7, 3), F(4, R, 2, 4, 4, 3)}, 0, 0},
    {"avg_pool_grad valid", NNC_OP_AVG_POOL_GRAD, {.window = {2, 2}, .stride = {2, 2}, .shape_rank = 2, .shape = {7, 7}},
     {F(4, R, 2, 3, 3, 3)}, 0, 0},
    {"avg_pool_grad same 3x3/2", NNC_OP_AVG_POOL_GRAD,
     {.window = {3, 3}, .stride = {2, 2}, .pad = NNC_PAD_SAME, .shape_rank = 2, .shape = {7, 7}},
     {F(4, R, 2, 4, 4, 3)}, 0, 0},
    {"relu_grad", NNC_OP_RELU_GRAD, {.pad = 0}, {F(2, R, 3, 40), F(2, R, 3, 40)}, 0, 0},
    {"sigmoid_grad", NNC_OP_SIGMOID_GRAD, {.pad = 0}, {F(2, DATA_UNIT, 3, 40), F(2, R, 3, 40)}, 0, 0},
    {"tanh_grad", NNC_OP_TANH_GRAD, {.pad = 0}, {F(2, R, 3, 40), F(2, R, 3, 40)}, 0, 0},
    {"leaky_relu_grad", NNC_OP_LEAKY_RELU_GRAD, {.alpha = 0.3f}, {F(2, R, 3, 40), F(2, R, 3, 40)}, 0, 0},
    {"elu_grad", NNC_OP_ELU_GRAD, {.alpha = 0.7f}, {F(2, R, 3, 40), F(2, R, 3, 40)}, 0, 0},
    {"softmax_grad", NNC_OP_SOFTMAX_GRAD, {.pad = 0}, {F(2, DATA_PROBS, 6, 10), F(2, R, 6, 10)}, 0, 0},
    {"xent_logits sparse", NNC_OP_XENT_LOGITS, {.pad = 0}, {F(2, R, 5, 7), CLASSES(5, 7)}, 0, 0},
    {"xent_logits one-hot", NNC_OP_XENT_LOGITS, {.pad = 0}, {F(2, R, 5, 7), F(2, DATA_ONEHOT, 5, 7)}, 0, 0},
    {"xent_logits soft labels", NNC_OP_XENT_LOGITS, {.pad = 0}, {F(2, R, 5, 7), F(2, DATA_PROBS, 5, 7)}, 0, 0},
    /* More rows than the block's 256 threads: a thread sums several rows,
     * and the threads' sums meet in a tree, another order than the
     * reference's row loop (in double; at most a float rounding apart). */
    {"xent_logits sparse, 601 rows", NNC_OP_XENT_LOGITS, {.pad = 0}, {F(2, R, 601, 7), CLASSES(601, 7)}, 1.2e-7, 0},
    {"xent_logits_grad sparse", NNC_OP_XENT_LOGITS_GRAD, {.pad = 0}, {F(2, R, 5, 7), CLASSES(5, 7)}, 0, 0},
    {"xent_logits_grad soft labels", NNC_OP_XENT_LOGITS_GRAD, {.pad = 0}, {F(2, R, 5, 7), F(2, DATA_PROBS, 5, 7)}, 0, 0},
    {"xent_probs sparse", NNC_OP_XENT_PROBS, {.pad = 0}, {F(2, DATA_PROBS, 5, 7), CLASSES(5, 7)}, 0, 0},
    {"xent_probs one-hot", NNC_OP_XENT_PROBS, {.pad = 0}, {F(2, DATA_PROBS, 5, 7), F(2, DATA_ONEHOT, 5, 7)}, 0, 0},
    {"xent_probs sparse, 300 rows", NNC_OP_XENT_PROBS, {.pad = 0}, {F(2, DATA_PROBS, 300, 7), CLASSES(300, 7)}, 1.2e-7,
     0},
    {"xent_probs_grad sparse", NNC_OP_XENT_PROBS_GRAD, {.pad = 0}, {F(2, DATA_PROBS, 5, 7), CLASSES(5, 7)}, 0, 0},
    {"xent_probs_grad one-hot, unnormalised", NNC_OP_XENT_PROBS_GRAD, {.pad = 0},
     {F(2, DATA_POSITIVE, 5, 7), F(2, DATA_ONEHOT, 5, 7)}, 0, 0},
    {"mse", NNC_OP_MSE, {.pad = 0}, {F(2, R, 4, 6), F(2, R, 4, 6)}, 0, 0},
    {"mse, 1001 elements", NNC_OP_MSE, {.pad = 0}, {F(2, R, 77, 13), F(2, R, 77, 13)}, 1.2e-7, 0},
    {"mse_grad", NNC_OP_MSE_GRAD, {.pad = 0}, {F(2, R, 4, 6), F(2, R, 4, 6)}, 0, 0},
    {"correct sparse", NNC_OP_CORRECT, {.pad = 0}, {F(2, R, 60, 5), CLASSES(60, 5)}, 0, 0},
    {"correct one-hot", NNC_OP_CORRECT, {.pad = 0}, {F(2, R, 60, 5), F(2, DATA_ONEHOT, 60, 5)}, 0, 0},
    {"correct single output", NNC_OP_CORRECT, {.pad = 0}, {F(2, DATA_UNIT, 60, 1), F(2, DATA_BINARY, 60, 1)}, 0, 0},
    /* A count: exact whatever the order. */
    {"correct sparse, 700 rows", NNC_OP_CORRECT, {.pad = 0}, {F(2, R, 700, 5), CLASSES(700, 5)}, 0, 0},
    {"square", NNC_OP_SQUARE, {.pad = 0}, {F(2, R, 3, 40)}, 0, 0},
    {"ema", NNC_OP_EMA, {.alpha = 0.1f}, {F(2, R, 3, 40), F(2, R, 3, 40)}, 0, 0},
    {"adam_update", NNC_OP_ADAM_UPDATE, {.eps = 1e-7f}, {F(2, R, 3, 40), F(2, R, 3, 40), F(2, P, 3, 40), SCALAR}, 0, 0},
    {"rmsprop_update", NNC_OP_RMSPROP_UPDATE, {.eps = 1e-7f},
     {F(2, R, 3, 40), F(2, R, 3, 40), F(2, P, 3, 40), SCALAR}, 0, 0},
    {"sgd_update", NNC_OP_SGD_UPDATE, {.pad = 0}, {F(2, R, 3, 40), F(2, R, 3, 40), SCALAR}, 0, 0},
    {"momentum_velocity", NNC_OP_MOMENTUM_VELOCITY, {.alpha = 0.9f}, {F(2, R, 3, 40), F(2, R, 3, 40), SCALAR}, 0, 0},
    {"nesterov_update", NNC_OP_NESTEROV_UPDATE, {.alpha = 0.9f},
     {F(2, R, 3, 40), F(2, R, 3, 40), F(2, R, 3, 40), SCALAR}, 0, 0},
    {"sub", NNC_OP_SUB, {.pad = 0}, {F(2, R, 3, 40), F(2, R, 3, 40)}, 0, 0},
    {"maximum", NNC_OP_MAXIMUM, {.pad = 0}, {F(2, R, 3, 40), F(2, R, 3, 40)}, 0, 0},
    {"bn_stats", NNC_OP_BN_STATS, {.pad = 0}, {F(4, R, 5, 3, 3, 6)}, 0, 0},
    {"batch_norm_train", NNC_OP_BATCH_NORM_TRAIN, {.eps = 1e-3f}, {F(4, R, 5, 3, 3, 6), F(2, P, 3, 6), F(1, R, 6), F(1, R, 6)},
     0, 0},
    {"batch_norm_train_grad", NNC_OP_BATCH_NORM_TRAIN_GRAD, {.eps = 1e-3f},
     {F(2, R, 40, 6), F(2, R, 40, 6), F(2, P, 3, 6), F(1, R, 6)}, 0, 0},
    {"bn_gamma_grad", NNC_OP_BN_GAMMA_GRAD, {.eps = 1e-3f}, {F(2, R, 40, 6), F(2, R, 40, 6), F(2, P, 3, 6)}, 0, 0},
    {"bn_moving", NNC_OP_BN_MOVING, {.alpha = 0.99f, .index = 2}, {F(1, R, 6), F(2, P, 3, 6)}, 0, 0},
    {"bn_fold", NNC_OP_BN_FOLD, {.eps = 1e-3f, .alpha = 0.99f}, {F(1, R, 6), F(1, P, 6), F(1, R, 6), F(1, R, 6)}, 0, 0},
    {"scale_shift", NNC_OP_SCALE_SHIFT, {.pad = 0}, {F(4, R, 5, 3, 3, 6), F(2, R, 2, 6)}, 0, 0},
    {"scale_shift_grad", NNC_OP_SCALE_SHIFT_GRAD, {.pad = 0}, {F(2, R, 40, 6), F(2, R, 2, 6)}, 0, 0},
    {"fill", NNC_OP_FILL, {.alpha = 1.0f}, {F(1, R, 6)}, 0, 0},
    {"rmsprop_momentum", NNC_OP_RMSPROP_MOMENTUM, {.alpha = 0.9f, .eps = 1e-7f},
     {F(2, R, 3, 40), F(2, R, 3, 40), F(2, P, 3, 40), SCALAR}, 0, 0},
};

#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* Every activation and activation gradient row, by walking the pointwise
 * table: positive and negative x or y, and alpha 0.3 where the row reads it. */
static int activation_case(nnc_op op, op_case *c) {
  nnc_pw_kind kind = nnc_pointwise[op].kind;
  if (kind != NNC_PW_ACTIVATION && kind != NNC_PW_ACTIVATION_GRAD) return 0;
  *c = (op_case){nnc_ops[op].name, op, {.alpha = 0.3f}, {F(2, R, 3, 50), F(2, R, 3, 50)}, 0, 0};
  return 1;
}

START_TEST(test_every_op_has_a_case) {
  char missing[1024] = "";
  for (int op = 0; op < NNC_OP_COUNT; op++) {
    op_case made;
    if (activation_case((nnc_op)op, &made)) continue;
    int found = 0;
    for (int i = 0; i < NCASES; i++) found |= cases[i].op == (nnc_op)op;
    if (!found) snprintf(missing + strlen(missing), sizeof missing - strlen(missing), " %s", nnc_ops[op].name);
  }
  ck_assert_msg(!missing[0], "ops with no case in tests/codegen/test_ops.c:%s", missing);
}
END_TEST

/* Every elementwise or update row of the op table has an expression in
 * ir/pointwise.def, with as many operands as the row reads element for
 * element, and the CUDA renderer takes it: every name it uses is bound or
 * a math function, none is left in the rendered text. The C backends
 * compile the same rows (a missing one is a link error) and test_op_kernel
 * runs each. A name left unbound is refused, not emitted. */
START_TEST(test_every_pointwise_row_renders) {
  int rows = 0;
  for (int op = 0; op < NNC_OP_COUNT; op++) {
    const nnc_pw_row *r = &nnc_pointwise[op];
    unsigned flags = nnc_ops[op].flags;
    int pointwise = (flags & (NNC_OPF_ELEMENTWISE | NNC_OPF_UPDATE)) != 0;
    ck_assert_msg(pointwise == (r->kind != NNC_PW_NONE), "%s: %s", nnc_ops[op].name,
                  pointwise ? "elementwise, but no row in ir/pointwise.def" : "a row in ir/pointwise.def, but not elementwise");
    if (!pointwise) continue;
    rows++;
    int scalar = (flags & NNC_OPF_UPDATE) != 0;
    ck_assert_msg(r->operands + scalar == nnc_ops[op].arity, "%s: %d operands element for element, arity %d", nnc_ops[op].name,
                  r->operands, nnc_ops[op].arity);
    if (r->kind == NNC_PW_ACTIVATION)
      ck_assert_msg(nnc_pointwise[r->grad].kind == NNC_PW_ACTIVATION_GRAD, "%s: its gradient is not a gradient row",
                    nnc_ops[op].name);
    const char *const *names = nnc_pw_names(r->kind);
    const char *values[8] = {0};
    char value[8][16];
    for (int i = 0; names[i]; i++) snprintf(value[i], sizeof value[i], "V%d_", i), values[i] = value[i];
    nnc_strbuf text;
    nnc_strbuf_init(&text);
    ck_assert_msg(nnc_cuda_render_pointwise((nnc_op)op, values, &text) == 0, "%s: '%s' does not render",
                  nnc_ops[op].name, r->expr);
    const char *out = nnc_strbuf_str(&text);
    ck_assert_msg(strstr(out, "V0_") != NULL, "%s: '%s' does not read its first operand", nnc_ops[op].name, out);
    for (const char *p = out; *p;) {
      size_t len = 0;
      if (isdigit((unsigned char)*p) || *p == '.') {
        while (isalnum((unsigned char)p[len]) || p[len] == '.') len++;
      } else if (isalpha((unsigned char)*p) || *p == '_') {
        while (isalnum((unsigned char)p[len]) || p[len] == '_') len++;
        int known = *p == 'V' && p[len - 1] == '_';
        for (int i = 0; nnc_pw_functions[i] && !known; i++)
          known = strlen(nnc_pw_functions[i]) == len && strncmp(p, nnc_pw_functions[i], len) == 0;
        ck_assert_msg(known, "%s: '%.*s' is left in '%s'", nnc_ops[op].name, (int)len, p, out);
      } else {
        len = 1;
      }
      p += len;
    }
    nnc_strbuf_free(&text);
    const char *none[8] = {0};
    nnc_strbuf_init(&text);
    ck_assert_msg(nnc_cuda_render_pointwise((nnc_op)op, none, &text) == -1, "%s: rendered with no operands",
                  nnc_ops[op].name);
    nnc_strbuf_free(&text);
  }
  ck_assert_int_ge(rows, 19);
}
END_TEST

/* The case's graph: one input per operand (or the leaf itself), the op, an output. */
static nnc_graph *case_graph(const op_case *c, void **data, int32_t *result) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  int leaf = (nnc_ops[c->op].flags & NNC_OPF_LEAF) != 0;
  int n = leaf ? 1 : nnc_ops[c->op].arity;
  int32_t ids[NNC_MAX_SRC];
  for (int i = 0; i < n; i++) {
    const operand *o = &c->src[i];
    char name[16];
    snprintf(name, sizeof name, "x%d", i);
    nnc_node_spec spec = {.op = leaf ? c->op : NNC_OP_INPUT, .name = name, .dtype = o->dtype, .rank = o->rank};
    memcpy(spec.shape, o->shape, sizeof o->shape);
    ids[i] = nnc_graph_add(g, &spec, &st);
    ck_assert_msg(ids[i] >= 0, "%s: %s", c->what, st.msg);
    int64_t count = nnc_node_numel(&g->nodes[ids[i]]);
    int64_t width = o->dtype == NNC_I32 ? o->width : o->rank ? o->shape[o->rank - 1] : 1;
    data[ids[i]] = malloc((size_t)(count ? count : 1) * 4);
    harness_fill(data[ids[i]], count, width, o->data, (uint32_t)(100 + i));
  }
  *result = leaf ? ids[0] : nnc_graph_op(g, c->op, ids, n, &c->attrs, &st);
  ck_assert_msg(*result >= 0, "%s: %s", c->what, st.msg);
  ck_assert_int_eq(nnc_graph_add_output(g, "output", *result, &st), 0);
  return g;
}

/* The operands of a contraction rounded to TF32: on them the interpreter
 * computes what the tensor cores do, up to the order of the float sums. */
static void **rounded_operands(const nnc_graph *g, void *const *data) {
  void **out = calloc(8, sizeof *out);
  for (int32_t id = 0; id < g->nnodes && id < 8; id++) {
    if (!data[id]) continue;
    int64_t count = nnc_node_numel(&g->nodes[id]);
    float *r = malloc((size_t)(count ? count : 1) * 4);
    for (int64_t i = 0; i < count; i++) r[i] = harness_tf32(((const float *)data[id])[i]);
    out[id] = r;
  }
  return out;
}

/* Generates g under a precision ("fp32", or NULL: the default, TF32 on
 * sm_90) and says whether its one kernel is a TF32 GEMM. */
static int generated_tf32(const nnc_graph *g, const char *precision) {
  nnc_status st = {0};
  harness_set_precision(precision);
  nnc_cuda_program p;
  ck_assert_msg(nnc_cuda_generate(nnc_test_options(), g, &p, &st) == 0, "%s", st.msg);
  int tf32 = p.count >= 1 && p.kernels[0].tf32; /* a split GEMM: its first kernel */
  if (tf32) ck_assert_msg(strstr(p.kernels[0].source, "nnc_mma_tf32"), "%s", p.kernels[0].source);
  nnc_cuda_program_free(&p);
  return tf32;
}

/* cuda-emu's result under a precision, against the interpreter's on `data`. */
static double emu_error(const op_case *c, const nnc_graph *g, void *const *run_data, void *const *ref_data,
                        int32_t result, const char *precision, float **got_out) {
  nnc_run_opts opts = {.training = c->training, .seed = 77, .step = 5};
  float *want, *got;
  harness_run(&nnc_backend_interp, g, ref_data, &opts, &result, 1, &want);
  harness_set_precision(precision);
  harness_run(&nnc_backend_cuda_emu, g, run_data, &opts, &result, 1, &got);
  harness_set_precision(NULL);
  double err = harness_rel_error(got, want, nnc_node_numel(&g->nodes[result]), 1e-30);
  free(want);
  if (got_out) *got_out = got;
  else free(got);
  return err;
}

static void show_kernel(const nnc_graph *g) {
  nnc_status st = {0};
  nnc_cuda_program p;
  if (nnc_cuda_generate(nnc_test_options(), g, &p, &st) == 0)
    for (int k = 0; k < p.count; k++) fprintf(stderr, "%s\n", p.kernels[k].source ? p.kernels[k].source : p.kernels[k].call);
  nnc_cuda_program_free(&p);
}

/* A contraction on TF32 tensor cores (the default on sm_90): exactly the
 * interpreter's result on operands rounded to TF32, to the case's float
 * tolerance (a rounding by truncation, or a fragment read from the wrong
 * lane, is far outside it); and within what TF32 allows of the float
 * result: an operand keeps 11 significant bits, so a product is off by at
 * most 2^-10 of itself, and K products of random signs by about sqrt(K)
 * times that, relative to the largest result. K is the op's FLOPs over
 * twice its outputs. */
static void check_tf32(const op_case *c, const nnc_graph *g, void *const *data, int32_t result) {
  ck_assert_msg(generated_tf32(g, NULL), "%s: no TF32 kernel by default on sm_90", c->what);
  nnc_cost cost = {0, 0};
  nnc_ops[c->op].cost(g, &g->nodes[result], &cost);
  double k = cost.flops / (2.0 * (double)nnc_node_numel(&g->nodes[result])), tol = 0x1p-10 * sqrt(k);
  void **rounded = rounded_operands(g, data);
  float *got;
  double exact = emu_error(c, g, data, rounded, result, NULL, &got);
  if (!(exact <= c->tol)) show_kernel(g);
  ck_assert_msg(exact <= c->tol, "%s: TF32 cuda-emu differs from interp on TF32 operands by %.3g, tolerance %.3g",
                c->what, exact, c->tol);
  double err = emu_error(c, g, data, data, result, NULL, NULL);
  ck_assert_msg(err <= tol, "%s: TF32 cuda-emu differs from interp by %.3g, tolerance %.3g (K=%.0f)", c->what, err, tol,
                k);
  printf("%s: TF32 differs from interp by %.3g (tolerance %.3g, K=%.0f)\n", c->what, err, tol, k);
  free(got);
  for (int i = 0; i < 8; i++) free(rounded[i]);
  free(rounded);
}

static void check_kernel(const op_case *c) {
  void *data[8] = {0};
  int32_t result;
  nnc_graph *g = case_graph(c, data, &result);
  int contraction = (nnc_ops[c->op].flags & NNC_OPF_CONTRACTION) != 0;
  /* FP32 everywhere (--precision fp32): the case's tolerance. */
  double err = emu_error(c, g, data, data, result, "fp32", NULL);
  nnc_status st = {0};
  if (!(err <= c->tol)) {
    harness_set_precision("fp32");
    show_kernel(g);
    harness_set_precision(NULL);
  }
  ck_assert_msg(err <= c->tol, "%s: cuda-emu differs from interp by %.3g (relative), tolerance %.3g", c->what, err,
                c->tol);
  ck_assert_int_eq(generated_tf32(g, "fp32"), 0);
  if (contraction) check_tf32(c, g, data, result);
  else ck_assert_int_eq(generated_tf32(g, NULL), 0);
  if (c->op == NNC_OP_MATMUL) {
    /* Before sm_80 (no cp.async, no tensor cores) plain operands are staged
     * through registers too, as views always are; matmul's are all plain. */
    const char *arch = getenv("NNC_CUDA_ARCH");
    char *saved = arch ? strdup(arch) : NULL;
    setenv("NNC_CUDA_ARCH", "sm_75", 1);
    double staged = emu_error(c, g, data, data, result, NULL, NULL);
    if (saved) setenv("NNC_CUDA_ARCH", saved, 1);
    else unsetenv("NNC_CUDA_ARCH");
    free(saved);
    ck_assert_msg(staged <= c->tol, "%s: on sm_75 cuda-emu differs from interp by %.3g, tolerance %.3g", c->what,
                  staged, c->tol);
  }
  /* Leaves run no kernel; everything else runs exactly one, or a split
   * pair: partial results, then their sum through the epilogue. */
  nnc_cuda_program p;
  ck_assert_msg(nnc_cuda_generate(nnc_test_options(), g, &p, &st) == 0, "%s", st.msg);
  ck_assert_msg(p.count == ((nnc_ops[c->op].flags & NNC_OPF_LEAF) ? 0 : expects_split(c) ? 2 : 1), "%s: %d kernels", c->what,
                p.count);
  if (expects_split(c)) {
    ck_assert_int_eq(p.kernels[0].split, 1);
    ck_assert_int_eq(p.kernels[1].split, 2);
    ck_assert_int_eq(p.kernels[0].workspace, p.workspace);
    ck_assert_int_eq(p.workspace % nnc_node_numel(&g->nodes[result]), 0);
    ck_assert_int_gt(p.workspace / nnc_node_numel(&g->nodes[result]), 1); /* slices */
    ck_assert_int_eq(p.kernels[1].work, nnc_node_numel(&g->nodes[result]));
  }
  /* The all-reduce is NCCL's, on the GPU's stream: a library step. */
  if (c->op == NNC_OP_ALLREDUCE) ck_assert_int_eq(p.kernels[0].lib, NNC_LOWER_NCCL);
  /* cuda-emu runs a kernel's threads as fibers exactly when it may wait. */
  for (int k = 0; k < p.count; k++)
    if (p.kernels[k].lib == NNC_LOWER_NNC)
      ck_assert_msg(p.kernels[k].cooperative == (strstr(p.kernels[k].source, "__syncthreads") != NULL),
                    "%s: %s is %scooperative", c->what, p.kernels[k].name, p.kernels[k].cooperative ? "" : "not ");
  nnc_cuda_program_free(&p);
  /* Both forms of a contraction compile, with no spills. */
  harness_nvrtc_compile_all(g);
  if (contraction) {
    harness_set_precision("fp32");
    harness_nvrtc_compile_all(g);
    harness_set_precision(NULL);
  }
  for (int i = 0; i < 8; i++) free(data[i]);
  nnc_graph_free(g);
}

START_TEST(test_op_kernel) { check_kernel(&cases[_i]); }
END_TEST

START_TEST(test_activation_kernel) {
  op_case c;
  if (activation_case((nnc_op)_i, &c)) check_kernel(&c);
}
END_TEST

/* A conv2d's view reads with 32-bit indices (nnc_im2col_i32) while they
 * fit, with 64-bit ones past 2^31 elements of input (batch 4096 of
 * 512 x 512 x 3, only generated and compiled, never run), where NVRTC
 * compiles the kernel with no spills too. */
static void conv_kernels(long long batch, long long side, nnc_cuda_program *p, nnc_graph **g) {
  char text[512];
  snprintf(text, sizeof text,
           "graph {\n  %%0 = input() {name=\"x\"} : f32[%lld,%lld,%lld,3]\n  %%1 = param() {name=\"w\"} : f32[3,3,3,8]\n"
           "  %%2 = conv2d(%%0, %%1) {stride=[1,1], pad=same} : f32[%lld,%lld,%lld,8]\n  output \"out\" = %%2\n}\n",
           batch, side, side, batch, side, side);
  nnc_status st = {0};
  *g = nnc_graph_parse(text, "in.ir", &st);
  ck_assert_msg(*g, "%s", st.msg);
  ck_assert_msg(nnc_cuda_generate(nnc_test_options(), *g, p, &st) == 0, "%s", st.msg);
}

START_TEST(test_conv_view_index_width) {
  nnc_cuda_program p;
  nnc_graph *g;
  conv_kernels(2, 9, &p, &g);
  ck_assert_ptr_nonnull(strstr(p.kernels[0].source, "nnc_im2col_i32("));
  ck_assert_int_eq(p.kernels[0].gemm.index_bits, 32);
  nnc_cuda_program_free(&p);
  nnc_graph_free(g);
  conv_kernels(4096, 512, &p, &g);
  ck_assert_ptr_null(strstr(p.kernels[0].source, "nnc_im2col_i32("));
  ck_assert_ptr_nonnull(strstr(p.kernels[0].source, "nnc_im2col("));
  ck_assert_int_eq(p.kernels[0].gemm.index_bits, 64);
  nnc_cuda_program_free(&p);
  harness_nvrtc_compile_all(g);
  nnc_graph_free(g);
}
END_TEST

/* The FP32 GEMM's choices, read from its text: the register tile from the
 * output's size, cp.async 16 bytes at a time only where a plain operand's
 * rows run along the slab's and are 16-byte aligned, registers before
 * sm_80, and 64-bit indices only where an index can pass 2^31. */
static char *gemm_source(long long m, long long k, long long n, int trans_a, const char *arch, nnc_cuda_gemm_loop *loop) {
  char text[512];
  snprintf(text, sizeof text,
           "graph {\n  %%0 = input() {name=\"a\"} : f32[%lld,%lld]\n  %%1 = input() {name=\"b\"} : f32[%lld,%lld]\n"
           "  %%2 = matmul(%%0, %%1) {trans_a=%d, trans_b=0} : f32[%lld,%lld]\n  output \"out\" = %%2\n}\n",
           trans_a ? k : m, trans_a ? m : k, k, n, trans_a, m, n);
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_parse(text, "in.ir", &st);
  ck_assert_msg(g, "%s", st.msg);
  harness_set_precision("fp32");
  nnc_cuda_program p;
  ck_assert_msg(nnc_cuda_generate_for(nnc_test_options(), arch, g, &p, &st) == 0, "%s", st.msg);
  harness_set_precision(NULL);
  char *src = strdup(p.kernels[0].source);
  *loop = p.kernels[0].gemm;
  nnc_cuda_program_free(&p);
  nnc_graph_free(g);
  return src;
}

START_TEST(test_gemm_staging_choices) {
  nnc_cuda_gemm_loop loop;
  char *s = gemm_source(33, 70, 130, 0, "sm_90", &loop); /* A runs along k, B's rows are 130 wide */
  ck_assert_ptr_nonnull(strstr(s, "nnc_cp_async4("));
  ck_assert_ptr_null(strstr(s, "nnc_cp_async16("));
  ck_assert_ptr_nonnull(strstr(s, "float acc[4][4]"));
  ck_assert_ptr_nonnull(strstr(s, "const int r = "));
  ck_assert_ptr_null(strstr(s, "nnc_i64 r"));
  ck_assert(loop.fmas == 16 && loop.stages == 2);
  free(s);
  s = gemm_source(1536, 20, 1536, 0, "sm_90", &loop);
  ck_assert_ptr_nonnull(strstr(s, "float acc[8][8]"));
  ck_assert_ptr_nonnull(strstr(s, "nnc_cp_async16(&nnc_bs"));
  ck_assert_ptr_nonnull(strstr(s, "nnc_cp_async4(&nnc_as"));
  ck_assert(loop.fmas == 64);
  free(s);
  s = gemm_source(8448, 9, 128, 1, "sm_90", &loop);
  ck_assert_ptr_nonnull(strstr(s, "float acc[8][4]"));
  ck_assert_ptr_nonnull(strstr(s, "nnc_cp_async16(&nnc_as"));
  free(s);
  s = gemm_source(1536, 20, 1536, 0, "sm_75", &loop);
  ck_assert_ptr_null(strstr(s, "cp_async"));
  ck_assert_ptr_nonnull(strstr(s, "nnc_pa[i] = "));
  ck_assert_ptr_nonnull(strstr(s, "nnc_pb[i] = "));
  free(s);
  s = gemm_source(70000, 40000, 64, 0, "sm_90", &loop); /* A has 2.8e9 elements */
  ck_assert_ptr_nonnull(strstr(s, "const nnc_i64 r = "));
  ck_assert_ptr_nonnull(strstr(s, "r * 40000LL + c"));
  free(s);
}
END_TEST

/* A dropout mask drawn by cuda-emu is the interpreter's, element for
 * element, across steps (already exact above); here also that it changes
 * with the step and keeps about 1 - rate of the values. */
START_TEST(test_dropout_mask_follows_the_step) {
  const op_case *c = NULL;
  for (int i = 0; i < NCASES; i++)
    if (cases[i].op == NNC_OP_DROPOUT && cases[i].training) c = &cases[i];
  void *data[2] = {0};
  int32_t result;
  nnc_graph *g = case_graph(c, data, &result);
  float *a, *b;
  nnc_run_opts s1 = {.training = 1, .seed = 77, .step = 1}, s2 = {.training = 1, .seed = 77, .step = 2};
  harness_run(&nnc_backend_cuda_emu, g, data, &s1, &result, 1, &a);
  harness_run(&nnc_backend_cuda_emu, g, data, &s2, &result, 1, &b);
  int64_t count = nnc_node_numel(&g->nodes[result]), kept = 0, same = 0;
  for (int64_t i = 0; i < count; i++) kept += a[i] != 0, same += (a[i] != 0) == (b[i] != 0);
  ck_assert_msg(fabs((double)kept / (double)count - 0.7) < 0.03, "kept %lld of %lld", (long long)kept, (long long)count);
  ck_assert_msg(same < count, "the mask did not change with the step");
  free(a), free(b), free(data[0]);
  nnc_graph_free(g);
}
END_TEST

/* Every kernel text starts with the header STYLE.md asks for. */
START_TEST(test_kernel_header) {
  void *data[4] = {0};
  int32_t result;
  int matmul = 0;
  while (cases[matmul].op != NNC_OP_MATMUL) matmul++;
  nnc_graph *g = case_graph(&cases[matmul], data, &result);
  nnc_status st = {0};
  nnc_cuda_program p;
  ck_assert_msg(nnc_cuda_generate(nnc_test_options(), g, &p, &st) == 0, "%s", st.msg);
  char hash[32];
  snprintf(hash, sizeof hash, "graph %016llx", (unsigned long long)nnc_graph_hash(g));
  const char *src = p.kernels[0].source;
  ck_assert_msg(!strncmp(src, "/* generated by nnc", 19), "%s", src);
  ck_assert_msg(strstr(src, hash), "%s", src);
  ck_assert_msg(strstr(src, "%2 = matmul(%0, %1) : f32[33,130]"), "%s", src);
  ck_assert_msg(strstr(src, "NNC_KERNEL void nnc_2_matmul(float *NNC_RESTRICT b2, const float *NNC_RESTRICT b0"), "%s", src);
  nnc_cuda_program_free(&p);
  for (int i = 0; i < 4; i++) free(data[i]);
  nnc_graph_free(g);
}
END_TEST

TCase *tcase_op_kernels(void) {
  TCase *tc = tcase_create("op_kernels");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_every_op_has_a_case);
  tcase_add_test(tc, test_every_pointwise_row_renders);
  tcase_add_loop_test(tc, test_op_kernel, 0, NCASES);
  tcase_add_loop_test(tc, test_activation_kernel, 0, NNC_OP_COUNT);
  tcase_add_test(tc, test_dropout_mask_follows_the_step);
  tcase_add_test(tc, test_gemm_staging_choices);
  tcase_add_test(tc, test_conv_view_index_width);
  tcase_add_test(tc, test_kernel_header);
  return tc;
}
