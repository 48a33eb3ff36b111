/* Every op row on the CPU backend against the interpreter, driven by the op
 * table: each case builds one node on input leaves filled from a fixed
 * seed, runs it on both backends and compares the results within the op's
 * tolerance. test_every_op_has_a_case walks ops.def, so a new op row
 * without a case here fails the suite; an activation or activation gradient
 * row of ir/pointwise.def has its case made from the table (activation_case).
 *
 * The sizes are chosen to cross the backend's thresholds: elementwise ops
 * get more than two chunks of work and a tail that is not a multiple of the
 * dropout kernel's 16 lanes, matmuls are big enough to be split between
 * threads in either direction, convolutions have odd sizes, strides, both
 * paddings and a batch whose chunks end inside an image. The same cases run
 * again with 1 and 3 threads (cpu_threads). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "tests/cpu/suites.h"
#include "tests/testutil.h"

typedef struct op_case {
  const char *what;
  nnc_op op;
  nnc_attrs attrs;
  int nsrc;
  const char *src[NNC_MAX_SRC]; /* operand types; for a leaf op, its own type */
  unsigned positive;            /* operands drawn from [0.05, 1.05) (variances, probabilities) */
  int training;                 /* run with dropout active */
  unsigned ties;                /* operands rounded to halves, so window maxima tie (relu's zeros) */
} op_case;

#define NONE {.pad = NNC_PAD_VALID}
#define CONV(s, p) {.stride = {s, s}, .pad = p}
#define POOL(k, s, p) {.window = {k, k}, .stride = {s, s}, .pad = p}
#define SHAPE3(a, b, c) .shape_rank = 3, .shape = {a, b, c}
#define SHAPE2(a, b) .shape_rank = 2, .shape = {a, b}
#define BIG "f32[100003]"

static const op_case cases[] = {
    {"input", NNC_OP_INPUT, NONE, 0, {"f32[3,4]"}, 0, 0, 0},
    {"param", NNC_OP_PARAM, NONE, 0, {"f32[5]"}, 0, 0, 0},
    {"state", NNC_OP_STATE, NONE, 0, {"f32[5]"}, 0, 0, 0},

    {"matmul small", NNC_OP_MATMUL, NONE, 2, {"f32[2,3]", "f32[3,4]"}, 0, 0, 0},
    {"matmul rows split", NNC_OP_MATMUL, NONE, 2, {"f32[67,45]", "f32[45,70]"}, 0, 0, 0},
    {"matmul cols split", NNC_OP_MATMUL, NONE, 2, {"f32[20,40]", "f32[40,300]"}, 0, 0, 0},
    {"matmul trans_a", NNC_OP_MATMUL, {.trans_a = 1}, 2, {"f32[45,67]", "f32[45,70]"}, 0, 0, 0},
    {"matmul trans_b", NNC_OP_MATMUL, {.trans_b = 1}, 2, {"f32[20,40]", "f32[300,40]"}, 0, 0, 0},
    {"matmul both", NNC_OP_MATMUL, {.trans_a = 1, .trans_b = 1}, 2, {"f32[45,67]", "f32[70,45]"}, 0, 0, 0},
    {"matmul rank 3", NNC_OP_MATMUL, NONE, 2, {"f32[4,17,33]", "f32[33,20]"}, 0, 0, 0},
    /* Few rows against a large operand (a batch through a Dense layer and
     * its gradients), sizes off the vector width, k in several slabs. */
    {"matmul one row", NNC_OP_MATMUL, NONE, 2, {"f32[1,37]", "f32[37,83]"}, 0, 0, 0},
    {"matmul 33 rows, long k", NNC_OP_MATMUL, NONE, 2, {"f32[33,1001]", "f32[1001,150]"}, 0, 0, 0},
    {"matmul 5 rows, wide", NNC_OP_MATMUL, NONE, 2, {"f32[5,300]", "f32[300,1000]"}, 0, 0, 0},
    {"matmul 3 rows trans_b", NNC_OP_MATMUL, {.trans_b = 1}, 2, {"f32[3,70]", "f32[131,70]"}, 0, 0, 0},
    {"matmul 33 rows trans_b", NNC_OP_MATMUL, {.trans_b = 1}, 2, {"f32[33,163]", "f32[301,163]"}, 0, 0, 0},
    {"matmul trans_b short k", NNC_OP_MATMUL, {.trans_b = 1}, 2, {"f32[33,10]", "f32[37,10]"}, 0, 0, 0},
    {"matmul trans_a k of a batch", NNC_OP_MATMUL, {.trans_a = 1}, 2, {"f32[33,203]", "f32[33,77]"}, 0, 0, 0},
    {"matmul trans_a one row", NNC_OP_MATMUL, {.trans_a = 1}, 2, {"f32[3,1]", "f32[3,300]"}, 0, 0, 0},

    {"bias_add", NNC_OP_BIAS_ADD, NONE, 2, {"f32[6000,37]", "f32[37]"}, 0, 0, 0},
    {"bias_add rank 4", NNC_OP_BIAS_ADD, NONE, 2, {"f32[3,5,7,9]", "f32[9]"}, 0, 0, 0},

    {"conv2d same", NNC_OP_CONV2D, CONV(1, NNC_PAD_SAME), 2, {"f32[5,13,11,6]", "f32[3,3,6,9]"}, 0, 0, 0},
    {"conv2d valid stride 2", NNC_OP_CONV2D, CONV(2, NNC_PAD_VALID), 2, {"f32[5,13,11,6]", "f32[3,2,6,9]"}, 0, 0, 0},
    {"conv2d same stride 2", NNC_OP_CONV2D, CONV(2, NNC_PAD_SAME), 2, {"f32[5,13,11,6]", "f32[3,3,6,9]"}, 0, 0, 0},
    {"conv2d 1x1", NNC_OP_CONV2D, CONV(1, NNC_PAD_VALID), 2, {"f32[4,7,9,16]", "f32[1,1,16,24]"}, 0, 0, 0},
    {"conv2d 1x1 stride 2", NNC_OP_CONV2D, CONV(2, NNC_PAD_SAME), 2, {"f32[4,7,9,16]", "f32[1,1,16,24]"}, 0, 0, 0},
    {"conv2d kernel larger than input", NNC_OP_CONV2D, CONV(1, NNC_PAD_SAME), 2, {"f32[1,2,3,2]", "f32[4,5,2,6]"}, 0, 0, 0},
    {"conv2d Winograd same", NNC_OP_CONV2D, CONV(1, NNC_PAD_SAME), 2, {"f32[3,13,11,17]", "f32[3,3,17,20]"}, 0, 0, 0},
    {"conv2d Winograd valid", NNC_OP_CONV2D, CONV(1, NNC_PAD_VALID), 2, {"f32[2,14,9,16]", "f32[3,3,16,33]"}, 0, 0, 0},
    {"conv2d Winograd many chunks", NNC_OP_CONV2D, CONV(1, NNC_PAD_SAME), 2, {"f32[5,30,30,16]", "f32[3,3,16,16]"}, 0,
     0, 0},
    {"conv2d one channel", NNC_OP_CONV2D, CONV(1, NNC_PAD_SAME), 2, {"f32[9,28,28,1]", "f32[3,3,1,16]"}, 0, 0, 0},
    {"conv2d one channel 30 out", NNC_OP_CONV2D, CONV(1, NNC_PAD_SAME), 2, {"f32[3,28,27,1]", "f32[3,3,1,30]"}, 0, 0, 0},
    {"conv2d 5x5 stride 3 valid", NNC_OP_CONV2D, CONV(3, NNC_PAD_VALID), 2, {"f32[2,17,19,3]", "f32[5,5,3,7]"}, 0, 0, 0},
    {"conv2d 70 channels", NNC_OP_CONV2D, CONV(1, NNC_PAD_SAME), 2, {"f32[2,9,30,5]", "f32[3,3,5,70]"}, 0, 0, 0},
    {"conv2d one image, many bands", NNC_OP_CONV2D, CONV(2, NNC_PAD_SAME), 2, {"f32[1,23,7,4]", "f32[3,3,4,17]"}, 0,
     0, 0},

    {"max_pool 2", NNC_OP_MAX_POOL, POOL(2, 2, NNC_PAD_VALID), 1, {"f32[5,13,11,6]"}, 0, 0, 0},
    {"max_pool 3 same", NNC_OP_MAX_POOL, POOL(3, 2, NNC_PAD_SAME), 1, {"f32[5,13,11,6]"}, 0, 0, 0},
    {"max_pool overlapping", NNC_OP_MAX_POOL, POOL(3, 1, NNC_PAD_SAME), 1, {"f32[3,9,8,33]"}, 0, 0, 0},
    {"max_pool 2, 30 channels, ties", NNC_OP_MAX_POOL, POOL(2, 2, NNC_PAD_VALID), 1, {"f32[3,14,13,30]"}, 0, 0, 1},
    {"avg_pool 2", NNC_OP_AVG_POOL, POOL(2, 2, NNC_PAD_VALID), 1, {"f32[5,13,11,6]"}, 0, 0, 0},
    {"avg_pool 3 same", NNC_OP_AVG_POOL, POOL(3, 2, NNC_PAD_SAME), 1, {"f32[5,13,11,6]"}, 0, 0, 0},

    {"reshape", NNC_OP_RESHAPE, {.shape_rank = 2, .shape = {4, 5}}, 1, {"f32[6,20]"}, 0, 0, 0},
    {"reshape i32", NNC_OP_RESHAPE, {.shape_rank = 1, .shape = {-1}}, 1, {"i32[6,2,2]"}, 0, 0, 0},
    {"allreduce of one rank", NNC_OP_ALLREDUCE, {.bucket = 0}, 1, {"f32[6,20]"}, 0, 0, 0},
    {"relu", NNC_OP_RELU, NONE, 1, {BIG}, 0, 0, 0},
    {"leaky_relu", NNC_OP_LEAKY_RELU, {.alpha = 0.2f}, 1, {BIG}, 0, 0, 0},
    {"elu", NNC_OP_ELU, {.alpha = 1.0f}, 1, {BIG}, 0, 0, 0},
    {"sigmoid", NNC_OP_SIGMOID, NONE, 1, {BIG}, 0, 0, 0},
    {"tanh", NNC_OP_TANH, NONE, 1, {BIG}, 0, 0, 0},
    {"softmax", NNC_OP_SOFTMAX, NONE, 1, {"f32[300,10]"}, 0, 0, 0},
    {"softmax rank 3", NNC_OP_SOFTMAX, NONE, 1, {"f32[7,3,129]"}, 0, 0, 0},
    {"dropout training", NNC_OP_DROPOUT, {.rate = 0.3f, .stream = 5}, 1, {BIG}, 0, 1, 0},
    {"dropout small", NNC_OP_DROPOUT, {.rate = 0.5f, .stream = 9}, 1, {"f32[7,5]"}, 0, 1, 0},
    {"dropout inference", NNC_OP_DROPOUT, {.rate = 0.3f, .stream = 5}, 1, {BIG}, 0, 0, 0},
    {"dropout rate 0", NNC_OP_DROPOUT, {.rate = 0, .stream = 5}, 1, {BIG}, 0, 1, 0},
    {"add", NNC_OP_ADD, NONE, 2, {BIG, BIG}, 0, 0, 0},
    {"mul", NNC_OP_MUL, NONE, 2, {BIG, BIG}, 0, 0, 0},

    {"bias_grad", NNC_OP_BIAS_GRAD, NONE, 1, {"f32[6000,37]"}, 0, 0, 0},
    {"bias_grad rank 4", NNC_OP_BIAS_GRAD, NONE, 1, {"f32[3,5,7,9]"}, 0, 0, 0},
    {"conv2d_grad_input same", NNC_OP_CONV2D_GRAD_INPUT, {.stride = {1, 1}, .pad = NNC_PAD_SAME, SHAPE3(13, 11, 6)},
     2, {"f32[5,13,11,9]", "f32[3,3,6,9]"}, 0, 0, 0},
    {"conv2d_grad_input valid stride 2", NNC_OP_CONV2D_GRAD_INPUT,
     {.stride = {2, 2}, .pad = NNC_PAD_VALID, SHAPE3(13, 11, 6)}, 2, {"f32[5,6,5,9]", "f32[3,2,6,9]"}, 0, 0, 0},
    {"conv2d_grad_input same stride 2", NNC_OP_CONV2D_GRAD_INPUT,
     {.stride = {2, 2}, .pad = NNC_PAD_SAME, SHAPE3(13, 11, 6)}, 2, {"f32[5,7,6,9]", "f32[3,3,6,9]"}, 0, 0, 0},
    {"conv2d_grad_input Winograd same", NNC_OP_CONV2D_GRAD_INPUT,
     {.stride = {1, 1}, .pad = NNC_PAD_SAME, SHAPE3(13, 11, 17)}, 2, {"f32[3,13,11,20]", "f32[3,3,17,20]"}, 0, 0, 0},
    {"conv2d_grad_input Winograd valid", NNC_OP_CONV2D_GRAD_INPUT,
     {.stride = {1, 1}, .pad = NNC_PAD_VALID, SHAPE3(14, 9, 16)}, 2, {"f32[2,12,7,33]", "f32[3,3,16,33]"}, 0, 0, 0},
    {"conv2d_grad_input to one channel", NNC_OP_CONV2D_GRAD_INPUT,
     {.stride = {1, 1}, .pad = NNC_PAD_SAME, SHAPE3(28, 27, 1)}, 2, {"f32[3,28,27,30]", "f32[3,3,1,30]"}, 0, 0, 0},
    {"conv2d_grad_input 5x5 stride 3 valid", NNC_OP_CONV2D_GRAD_INPUT,
     {.stride = {3, 3}, .pad = NNC_PAD_VALID, SHAPE3(17, 19, 3)}, 2, {"f32[2,5,5,7]", "f32[5,5,3,7]"}, 0, 0, 0},
    {"conv2d_grad_input 1x1", NNC_OP_CONV2D_GRAD_INPUT, {.stride = {1, 1}, .pad = NNC_PAD_VALID, SHAPE3(7, 9, 16)},
     2, {"f32[4,7,9,24]", "f32[1,1,16,24]"}, 0, 0, 0},
    {"conv2d_grad_kernel same", NNC_OP_CONV2D_GRAD_KERNEL, {.stride = {1, 1}, .pad = NNC_PAD_SAME, SHAPE2(3, 3)},
     2, {"f32[5,13,11,6]", "f32[5,13,11,9]"}, 0, 0, 0},
    {"conv2d_grad_kernel valid stride 2", NNC_OP_CONV2D_GRAD_KERNEL,
     {.stride = {2, 2}, .pad = NNC_PAD_VALID, SHAPE2(3, 2)}, 2, {"f32[5,13,11,6]", "f32[5,6,5,9]"}, 0, 0, 0},
    {"conv2d_grad_kernel Winograd same", NNC_OP_CONV2D_GRAD_KERNEL, {.stride = {1, 1}, .pad = NNC_PAD_SAME, SHAPE2(3, 3)},
     2, {"f32[3,13,11,17]", "f32[3,13,11,20]"}, 0, 0, 0},
    {"conv2d_grad_kernel Winograd valid", NNC_OP_CONV2D_GRAD_KERNEL,
     {.stride = {1, 1}, .pad = NNC_PAD_VALID, SHAPE2(3, 3)}, 2, {"f32[2,14,9,16]", "f32[2,12,7,33]"}, 0, 0, 0},
    {"conv2d_grad_kernel Winograd many chunks", NNC_OP_CONV2D_GRAD_KERNEL,
     {.stride = {1, 1}, .pad = NNC_PAD_SAME, SHAPE2(3, 3)}, 2, {"f32[5,30,30,16]", "f32[5,30,30,16]"}, 0, 0, 0},
    {"conv2d_grad_kernel 1x1", NNC_OP_CONV2D_GRAD_KERNEL, {.stride = {1, 1}, .pad = NNC_PAD_VALID, SHAPE2(1, 1)},
     2, {"f32[4,7,9,16]", "f32[4,7,9,24]"}, 0, 0, 0},
    {"conv2d_grad_kernel same stride 2, 70 channels", NNC_OP_CONV2D_GRAD_KERNEL,
     {.stride = {2, 2}, .pad = NNC_PAD_SAME, SHAPE2(3, 3)}, 2, {"f32[3,13,11,5]", "f32[3,7,6,70]"}, 0, 0, 0},
    {"conv2d_grad_kernel 5x5 stride 3 valid", NNC_OP_CONV2D_GRAD_KERNEL,
     {.stride = {3, 3}, .pad = NNC_PAD_VALID, SHAPE2(5, 5)}, 2, {"f32[2,17,19,3]", "f32[2,5,5,7]"}, 0, 0, 0},
    {"conv2d_grad_kernel one image", NNC_OP_CONV2D_GRAD_KERNEL,
     {.stride = {1, 1}, .pad = NNC_PAD_SAME, SHAPE2(3, 3)}, 2, {"f32[1,28,27,30]", "f32[1,28,27,30]"}, 0, 0, 0},
    {"conv2d_grad_kernel one channel", NNC_OP_CONV2D_GRAD_KERNEL,
     {.stride = {1, 1}, .pad = NNC_PAD_SAME, SHAPE2(3, 3)}, 2, {"f32[9,28,28,1]", "f32[9,28,28,16]"}, 0, 0, 0},
    {"max_pool_grad 2", NNC_OP_MAX_POOL_GRAD, POOL(2, 2, NNC_PAD_VALID), 2, {"f32[5,13,11,6]", "f32[5,6,5,6]"}, 0, 0, 0},
    {"max_pool_grad overlapping", NNC_OP_MAX_POOL_GRAD, POOL(3, 1, NNC_PAD_SAME), 2,
     {"f32[3,9,8,33]", "f32[3,9,8,33]"}, 0, 0, 0},
    {"max_pool_grad 2, 30 channels, ties", NNC_OP_MAX_POOL_GRAD, POOL(2, 2, NNC_PAD_VALID), 2,
     {"f32[3,14,13,30]", "f32[3,7,6,30]"}, 0, 0, 1},
    {"max_pool_grad overlapping, ties", NNC_OP_MAX_POOL_GRAD, POOL(3, 2, NNC_PAD_SAME), 2,
     {"f32[2,9,8,17]", "f32[2,5,4,17]"}, 0, 0, 1},
    {"max_pool_grad stride above window", NNC_OP_MAX_POOL_GRAD, POOL(2, 3, NNC_PAD_VALID), 2,
     {"f32[3,13,11,6]", "f32[3,4,4,6]"}, 0, 0, 0},
    {"avg_pool_grad 2 same", NNC_OP_AVG_POOL_GRAD, {.window = {2, 2}, .stride = {2, 2}, .pad = NNC_PAD_SAME,
     SHAPE2(13, 11)}, 1, {"f32[5,7,6,6]"}, 0, 0, 0},
    {"avg_pool_grad 2 stride 3", NNC_OP_AVG_POOL_GRAD, {.window = {2, 2}, .stride = {3, 3}, .pad = NNC_PAD_VALID,
     SHAPE2(13, 11)}, 1, {"f32[3,4,4,6]"}, 0, 0, 0},
    {"avg_pool_grad 3 same", NNC_OP_AVG_POOL_GRAD, {.window = {3, 3}, .stride = {2, 2}, .pad = NNC_PAD_SAME,
     SHAPE2(13, 11)}, 1, {"f32[5,7,6,6]"}, 0, 0, 0},
    {"relu_grad", NNC_OP_RELU_GRAD, NONE, 2, {BIG, BIG}, 0, 0, 0},
    {"sigmoid_grad", NNC_OP_SIGMOID_GRAD, NONE, 2, {BIG, BIG}, 0, 0, 0},
    {"tanh_grad", NNC_OP_TANH_GRAD, NONE, 2, {BIG, BIG}, 0, 0, 0},
    {"leaky_relu_grad", NNC_OP_LEAKY_RELU_GRAD, {.alpha = 0.3f}, 2, {BIG, BIG}, 0, 0, 0},
    {"elu_grad", NNC_OP_ELU_GRAD, {.alpha = 0.7f}, 2, {BIG, BIG}, 0, 0, 0},
    {"softmax_grad", NNC_OP_SOFTMAX_GRAD, NONE, 2, {"f32[300,10]", "f32[300,10]"}, 0, 0, 0},

    {"xent_logits sparse", NNC_OP_XENT_LOGITS, NONE, 2, {"f32[300,10]", "i32[300]"}, 0, 0, 0},
    {"xent_logits one-hot", NNC_OP_XENT_LOGITS, NONE, 2, {"f32[300,10]", "f32[300,10]"}, 2, 0, 0},
    {"xent_logits_grad sparse", NNC_OP_XENT_LOGITS_GRAD, NONE, 2, {"f32[300,10]", "i32[300]"}, 0, 0, 0},
    {"xent_logits_grad one-hot", NNC_OP_XENT_LOGITS_GRAD, NONE, 2, {"f32[300,10]", "f32[300,10]"}, 2, 0, 0},
    {"xent_probs", NNC_OP_XENT_PROBS, NONE, 2, {"f32[300,10]", "i32[300]"}, 1, 0, 0},
    {"xent_probs_grad", NNC_OP_XENT_PROBS_GRAD, NONE, 2, {"f32[300,10]", "f32[300,10]"}, 3, 0, 0},
    {"mse", NNC_OP_MSE, NONE, 2, {"f32[300,10]", "f32[300,10]"}, 0, 0, 0},
    {"mse_grad", NNC_OP_MSE_GRAD, NONE, 2, {"f32[300,10]", "f32[300,10]"}, 0, 0, 0},
    {"correct", NNC_OP_CORRECT, NONE, 2, {"f32[300,10]", "i32[300]"}, 0, 0, 0},

    {"square", NNC_OP_SQUARE, NONE, 1, {BIG}, 0, 0, 0},
    {"ema", NNC_OP_EMA, {.alpha = 0.1f}, 2, {BIG, BIG}, 0, 0, 0},
    {"adam_update", NNC_OP_ADAM_UPDATE, {.eps = 1e-7f}, 4, {BIG, BIG, BIG, "f32[]"}, 4, 0, 0},
    {"rmsprop_update", NNC_OP_RMSPROP_UPDATE, {.eps = 1e-7f}, 4, {BIG, BIG, BIG, "f32[]"}, 4, 0, 0},
    {"sgd_update", NNC_OP_SGD_UPDATE, NONE, 3, {BIG, BIG, "f32[]"}, 0, 0, 0},
    {"momentum_velocity", NNC_OP_MOMENTUM_VELOCITY, {.alpha = 0.9f}, 3, {BIG, BIG, "f32[]"}, 0, 0, 0},
    {"nesterov_update", NNC_OP_NESTEROV_UPDATE, {.alpha = 0.9f}, 4, {BIG, BIG, BIG, "f32[]"}, 0, 0, 0},
    {"sub", NNC_OP_SUB, NONE, 2, {BIG, BIG}, 0, 0, 0},
    {"maximum", NNC_OP_MAXIMUM, NONE, 2, {BIG, BIG}, 0, 0, 0},
    {"bn_stats", NNC_OP_BN_STATS, NONE, 1, {"f32[37,9,7,24]"}, 0, 0, 0},
    {"bn_stats rank 2", NNC_OP_BN_STATS, NONE, 1, {"f32[301,13]"}, 0, 0, 0},
    {"batch_norm_train", NNC_OP_BATCH_NORM_TRAIN, {.eps = 1e-3f}, 4, {"f32[37,9,7,24]", "f32[3,24]", "f32[24]", "f32[24]"},
     2, 0, 0},
    {"batch_norm_train_grad", NNC_OP_BATCH_NORM_TRAIN_GRAD, {.eps = 1e-3f}, 4,
     {"f32[37,9,7,24]", "f32[37,9,7,24]", "f32[3,24]", "f32[24]"}, 4, 0, 0},
    {"bn_gamma_grad", NNC_OP_BN_GAMMA_GRAD, {.eps = 1e-3f}, 3, {"f32[301,13]", "f32[301,13]", "f32[3,13]"}, 4, 0, 0},
    {"bn_moving", NNC_OP_BN_MOVING, {.alpha = 0.99f, .index = 1}, 2, {"f32[13]", "f32[3,13]"}, 0, 0, 0},
    {"bn_fold", NNC_OP_BN_FOLD, {.eps = 1e-3f, .alpha = 0.99f}, 4, {"f32[13]", "f32[13]", "f32[13]", "f32[13]"}, 2, 0, 0},
    {"scale_shift", NNC_OP_SCALE_SHIFT, NONE, 2, {"f32[37,9,7,24]", "f32[2,24]"}, 0, 0, 0},
    {"scale_shift_grad", NNC_OP_SCALE_SHIFT_GRAD, NONE, 2, {"f32[301,13]", "f32[2,13]"}, 0, 0, 0},
    {"fill", NNC_OP_FILL, {.alpha = 1.0f}, 1, {"f32[13]"}, 0, 0, 0},
    {"rmsprop_momentum", NNC_OP_RMSPROP_MOMENTUM, {.alpha = 0.9f, .eps = 1e-7f}, 4, {BIG, BIG, BIG, "f32[]"}, 4, 0, 0},
};

#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* Relative tolerance by op: the GEMM-based ops and reductions add in
 * another order than the reference (and in float), the rest do the same
 * float arithmetic or differ only in the last bits of a libm call. The
 * kernel gradient sums over every position of the batch, and by Winograd
 * F(3x3, 4x4) (which the measured choice may take) it sums in the
 * transformed domain, where the terms carry the transforms' growth
 * (entries up to 5 in B^T and 4 in A'^T, on both sides of each tile): on
 * the 4500 positions of "Winograd many chunks" its error reaches 2.3e-4,
 * against about 1e-5 for the other algorithms. */
static double tolerance(nnc_op op) {
  switch (op) {
  case NNC_OP_CONV2D_GRAD_KERNEL:
    return 5e-4;
  case NNC_OP_MATMUL:
  case NNC_OP_CONV2D:
  case NNC_OP_CONV2D_GRAD_INPUT:
  case NNC_OP_BIAS_GRAD:
    return 1e-4;
  default:
    return 1e-5;
  }
}

static void check_case(const op_case *c) {
  nnc_graph *g = nnc_graph_new();
  int32_t ids[NNC_MAX_SRC], id;
  if (nnc_ops[c->op].flags & NNC_OPF_LEAF) {
    id = cputest_leaf(g, c->op, "x", c->src[0]);
  } else {
    for (int i = 0; i < c->nsrc; i++) {
      char name[16];
      snprintf(name, sizeof name, "x%d", i);
      ids[i] = cputest_leaf(g, NNC_OP_INPUT, name, c->src[i]);
    }
    id = cputest_op(g, c->op, ids, c->nsrc, &c->attrs);
  }
  void **leaves = cputest_leaves(g, c->positive, 10);
  for (int i = 0; i < c->nsrc && !(nnc_ops[c->op].flags & NNC_OPF_LEAF); i++)
    for (int64_t e = 0; c->ties >> i & 1 && e < nnc_node_numel(&g->nodes[ids[i]]); e++)
      ((float *)leaves[ids[i]])[e] = roundf(2 * ((float *)leaves[ids[i]])[e]) / 2;
  nnc_run_opts opts = {.training = c->training, .seed = 42, .step = 3};
  nnc_exec *want = cputest_run(&nnc_backend_interp, g, leaves, &opts);
  nnc_exec *got = cputest_run(&nnc_backend_cpu, g, leaves, &opts);
  const nnc_node *n = &g->nodes[id];
  const void *w = nnc_backend_interp.value(want, id), *v = nnc_backend_cpu.value(got, id);
  ck_assert_msg(v != NULL, "%s: the cpu backend kept no value", c->what);
  if (n->dtype == NNC_I32)
    ck_assert_msg(memcmp(v, w, sizeof(int32_t) * (size_t)nnc_node_numel(n)) == 0, "%s: values differ", c->what);
  else
    cputest_expect_close(c->what, v, w, nnc_node_numel(n), tolerance(c->op));
  /* A second run into the same buffers gives the same values, bit for bit. */
  size_t bytes = nnc_dtype_size(n->dtype) * (size_t)nnc_node_numel(n);
  void *first = malloc(bytes);
  memcpy(first, v, bytes);
  nnc_status st = {0};
  ck_assert_int_eq(nnc_backend_cpu.run(got, leaves, &opts, &st), 0);
  ck_assert_msg(memcmp(first, nnc_backend_cpu.value(got, id), bytes) == 0, "%s: a second run differs", c->what);
  free(first);
  nnc_backend_cpu.release(got);
  nnc_backend_interp.release(want);
  cputest_leaves_free(g, leaves);
  nnc_graph_free(g);
}

START_TEST(test_op_agrees) { check_case(&cases[_i]); }
END_TEST

/* Every activation and activation gradient row, by walking the pointwise
 * table: positive and negative x or y, and alpha 0.3 where the row reads it. */
static int activation_case(nnc_op op, op_case *c) {
  nnc_pw_kind kind = nnc_pointwise[op].kind;
  if (kind != NNC_PW_ACTIVATION && kind != NNC_PW_ACTIVATION_GRAD) return 0;
  *c = (op_case){nnc_ops[op].name, op, {.alpha = 0.3f}, nnc_ops[op].arity, {BIG, BIG}, 0, 0, 0};
  return 1;
}

START_TEST(test_activation_agrees) {
  op_case c;
  if (activation_case((nnc_op)_i, &c)) check_case(&c);
}
END_TEST

START_TEST(test_every_op_has_a_case) {
  for (int op = 0; op < NNC_OP_COUNT; op++) {
    op_case made;
    if (activation_case((nnc_op)op, &made)) continue;
    int count = 0;
    for (int i = 0; i < NCASES; i++) count += cases[i].op == (nnc_op)op;
    ck_assert_msg(count > 0, "op '%s' has no case in tests/cpu/test_ops.c", nnc_ops[op].name);
  }
}
END_TEST

/* The thread count changes how work is cut, never the result. The pool
 * restarts with NNC_CPU_THREADS when its last user releases it. */
static const int thread_counts[] = {1, 3};

START_TEST(test_ops_with_threads) {
  char *saved = getenv("NNC_CPU_THREADS") ? strdup(getenv("NNC_CPU_THREADS")) : NULL;
  char count[16];
  snprintf(count, sizeof count, "%d", thread_counts[_i]);
  setenv("NNC_CPU_THREADS", count, 1);
  for (int i = 0; i < NCASES; i++) check_case(&cases[i]);
  for (int op = 0; op < NNC_OP_COUNT; op++) {
    op_case c;
    if (activation_case((nnc_op)op, &c)) check_case(&c);
  }
  if (saved) setenv("NNC_CPU_THREADS", saved, 1);
  else unsetenv("NNC_CPU_THREADS");
  free(saved);
}
END_TEST

/* Every convolution algorithm on every convolution case that it fits
 * (the measured choice may never pick some of them on this machine), with
 * 1 and 3 threads. _i: the algorithm, then the thread count. */
static const char *const conv_algos[] = {"gemm", "winograd", "winograd4", "direct"};

static int is_conv(nnc_op op) {
  return op == NNC_OP_CONV2D || op == NNC_OP_CONV2D_GRAD_INPUT || op == NNC_OP_CONV2D_GRAD_KERNEL;
}

START_TEST(test_conv_algorithms) {
  char *saved = getenv("NNC_CPU_THREADS") ? strdup(getenv("NNC_CPU_THREADS")) : NULL;
  setenv("NNC_CPU_CONV", conv_algos[_i / 2], 1);
  setenv("NNC_CPU_THREADS", _i % 2 ? "3" : "1", 1);
  for (int i = 0; i < NCASES; i++)
    if (is_conv(cases[i].op)) check_case(&cases[i]);
  unsetenv("NNC_CPU_CONV");
  if (saved) setenv("NNC_CPU_THREADS", saved, 1);
  else unsetenv("NNC_CPU_THREADS");
  free(saved);
}
END_TEST

/* Where a forward convolution's window holds only zeros (an image's empty
 * border after relu), its output is exactly zero, as in the reference, for
 * every algorithm that runs the forward pass: the relu or max pool after it
 * compares with zero, and rounding noise there would change its mask. */
START_TEST(test_conv_zero_windows_stay_zero) {
  setenv("NNC_CPU_CONV", conv_algos[_i], 1);
  nnc_graph *g = nnc_graph_new();
  int32_t src[2] = {cputest_leaf(g, NNC_OP_INPUT, "x", "f32[2,14,13,16]"),
                    cputest_leaf(g, NNC_OP_INPUT, "w", "f32[3,3,16,20]")};
  nnc_attrs attrs = CONV(1, NNC_PAD_SAME);
  int32_t id = cputest_op(g, NNC_OP_CONV2D, src, 2, &attrs);
  void **leaves = cputest_leaves(g, 0, 10);
  float *x = leaves[src[0]];
  /* x is nonzero on rows and columns 6..8 only: F(4x4)'s tiles start at -1
   * and 3, so (4, 4) has an all-zero window in a tile that reaches them. */
  for (int64_t e = 0; e < 2 * 14 * 13 * 16; e++) {
    int64_t row = e / (13 * 16) % 14, col = e / 16 % 13;
    if (row < 6 || row > 8 || col < 6 || col > 8) x[e] = 0.0f;
  }
  nnc_run_opts opts = {.seed = 42};
  nnc_exec *want = cputest_run(&nnc_backend_interp, g, leaves, &opts);
  nnc_exec *got = cputest_run(&nnc_backend_cpu, g, leaves, &opts);
  const float *w = nnc_backend_interp.value(want, id), *v = nnc_backend_cpu.value(got, id);
  int zeros = 0;
  for (int64_t e = 0; e < nnc_node_numel(&g->nodes[id]); e++)
    if (w[e] == 0.0f) {
      zeros++;
      ck_assert_msg(v[e] == 0.0f, "%s: element %lld is %g where its window is all zero", conv_algos[_i], (long long)e,
                    (double)v[e]);
    }
  ck_assert_int_gt(zeros, 2 * 14 * 13 * 20 / 2);
  nnc_backend_cpu.release(got);
  nnc_backend_interp.release(want);
  cputest_leaves_free(g, leaves);
  nnc_graph_free(g);
  unsetenv("NNC_CPU_CONV");
}
END_TEST

/* Every matmul algorithm on every matmul case (BLAS where it does not
 * fit), with 1 and 3 threads. _i: the algorithm, then the thread count. */
static const char *const matmul_algos[] = {"blas", "blocked"};

START_TEST(test_matmul_algorithms) {
  char *saved = getenv("NNC_CPU_THREADS") ? strdup(getenv("NNC_CPU_THREADS")) : NULL;
  setenv("NNC_CPU_MATMUL", matmul_algos[_i / 2], 1);
  setenv("NNC_CPU_THREADS", _i % 2 ? "3" : "1", 1);
  for (int i = 0; i < NCASES; i++)
    if (cases[i].op == NNC_OP_MATMUL) check_case(&cases[i]);
  unsetenv("NNC_CPU_MATMUL");
  if (saved) setenv("NNC_CPU_THREADS", saved, 1);
  else unsetenv("NNC_CPU_THREADS");
  free(saved);
}
END_TEST

/* A shape left symbolic is refused before any buffer is sized, on both. */
START_TEST(test_symbolic_shape) {
  nnc_graph *g = nnc_graph_new();
  nnc_status st = {0};
  int64_t shape[2] = {NNC_DIM_ANY, 3};
  int32_t x = nnc_graph_leaf(g, NNC_OP_INPUT, "images", NNC_F32, 2, shape, &st);
  cputest_op(g, NNC_OP_RELU, &x, 1, NULL);
  ck_assert_ptr_null(nnc_backend_cpu.prepare(g, nnc_test_options(), &st));
  ck_assert_msg(strstr(st.msg, "is not concrete") && strstr(st.msg, "f32[?,3]"), "%s", st.msg);
  nnc_status ist = {0};
  nnc_exec *e = nnc_backend_interp.prepare(g, nnc_test_options(), &ist);
  void *leaves[2] = {NULL, NULL};
  ck_assert_int_eq(nnc_backend_interp.run(e, leaves, NULL, &ist), -1);
  ck_assert_str_eq(ist.msg, st.msg);
  nnc_backend_interp.release(e);
  nnc_graph_free(g);
}
END_TEST

/* A leaf without data is an error, as on the interpreter. */
START_TEST(test_missing_leaf) {
  nnc_graph *g = nnc_graph_new();
  int32_t x = cputest_leaf(g, NNC_OP_INPUT, "images", "f32[2,3]");
  cputest_op(g, NNC_OP_RELU, &x, 1, NULL);
  nnc_status st = {0};
  nnc_exec *e = nnc_backend_cpu.prepare(g, nnc_test_options(), &st);
  ck_assert_ptr_nonnull(e);
  void *leaves[2] = {NULL, NULL};
  ck_assert_int_eq(nnc_backend_cpu.run(e, leaves, NULL, &st), -1);
  ck_assert_str_eq(st.msg, "input 'images' has no data");
  nnc_backend_cpu.release(e);
  nnc_graph_free(g);
}
END_TEST

/* The backend is found by name, and an unknown name lists the valid ones. */
START_TEST(test_find_by_name) {
  nnc_status st = {0};
  ck_assert_ptr_eq(nnc_backend_find("cpu", &st), &nnc_backend_cpu);
  ck_assert_ptr_eq(nnc_backend_find("interp", &st), &nnc_backend_interp);
  ck_assert_ptr_null(nnc_backend_find("cpus", &st));
  ck_assert_str_eq(st.msg, "unknown backend 'cpus'; did you mean 'cpu'? (backends: cpu, interp, cuda, cuda-emu)");
}
END_TEST

TCase *tcase_cpu_ops(void) {
  TCase *tc = tcase_create("cpu_ops");
  tcase_set_timeout(tc, 60); /* Check's 4 s default fails single cases on a busy shared machine */
  tcase_add_loop_test(tc, test_op_agrees, 0, NCASES);
  tcase_add_loop_test(tc, test_activation_agrees, 0, NNC_OP_COUNT);
  tcase_add_test(tc, test_every_op_has_a_case);
  tcase_add_test(tc, test_missing_leaf);
  tcase_add_test(tc, test_symbolic_shape);
  tcase_add_test(tc, test_find_by_name);
  return tc;
}

TCase *tcase_cpu_threads(void) {
  TCase *tc = tcase_create("cpu_threads");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_ops_with_threads, 0, (int)(sizeof thread_counts / sizeof thread_counts[0]));
  tcase_add_loop_test(tc, test_conv_algorithms, 0, 2 * (int)(sizeof conv_algos / sizeof conv_algos[0]));
  tcase_add_loop_test(tc, test_conv_zero_windows_stay_zero, 0, (int)(sizeof conv_algos / sizeof conv_algos[0]));
  tcase_add_loop_test(tc, test_matmul_algorithms, 0, 2 * (int)(sizeof matmul_algos / sizeof matmul_algos[0]));
  return tc;
}
