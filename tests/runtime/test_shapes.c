/* Shape inference through nnc_graph_add: the output type of every op, and the
 * exact message for each kind of bad input. Types are written as the printer
 * writes them ("f32[?,28,28,1]"), so a case reads like the IR.
 *
 * Every op row needs at least one case in `typed` (checked by walking the op
 * table). A leaf case gives the leaf's own type; other cases give operand
 * types, built as inputs named x0, x1. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "tests/runtime/suites.h"

/* Parses "f32[?,28,28,1]" into a leaf spec ("?" is the unknown batch). */
static void parse_type(const char *text, nnc_node_spec *spec) {
  spec->dtype = strncmp(text, "i32", 3) == 0 ? NNC_I32 : NNC_F32;
  const char *p = strchr(text, '[');
  ck_assert_msg(p != NULL, "bad type '%s'", text);
  spec->rank = 0;
  for (p++; *p && *p != ']';) {
    ck_assert_int_lt(spec->rank, NNC_MAX_RANK);
    char *end;
    if (*p == '?') spec->shape[spec->rank++] = NNC_DIM_ANY, end = (char *)p + 1;
    else spec->shape[spec->rank++] = strtoll(p, &end, 10);
    ck_assert_msg(end != p, "bad type '%s'", text);
    p = *end == ',' ? end + 1 : end;
  }
}

typedef struct shape_case {
  const char *what;
  nnc_op op;
  nnc_attrs attrs;
  int nsrc;
  const char *src[NNC_MAX_SRC]; /* operand types; for a leaf op, the leaf's own type */
  const char *want;   /* the output type, or the whole error message */
} shape_case;

/* Adds the case's node (after its operands) to g; returns its id or -1. */
static int32_t add_case(nnc_graph *g, const shape_case *c, nnc_status *st) {
  nnc_node_spec spec = {.op = c->op, .nsrc = c->nsrc, .attrs = c->attrs};
  if (nnc_ops[c->op].flags & NNC_OPF_LEAF) {
    parse_type(c->src[0], &spec);
    spec.nsrc = 0;
    spec.name = "x";
    return nnc_graph_add(g, &spec, st);
  }
  for (int i = 0; i < c->nsrc; i++) {
    static const char *const names[NNC_MAX_SRC] = {"x0", "x1", "x2", "x3"};
    nnc_node_spec leaf = {.op = NNC_OP_INPUT, .name = names[i]};
    parse_type(c->src[i], &leaf);
    spec.src[i] = nnc_graph_add(g, &leaf, st);
    ck_assert_msg(spec.src[i] >= 0, "%s: operand %d: %s", c->what, i, st->msg);
  }
  return nnc_graph_add(g, &spec, st);
}

#define NO_ATTRS {.pad = NNC_PAD_VALID}
#define VALID_S(h, w) {.stride = {h, w}, .pad = NNC_PAD_VALID}
#define SAME_S(h, w) {.stride = {h, w}, .pad = NNC_PAD_SAME}
#define POOL(wh, ww, sh, sw, p) {.window = {wh, ww}, .stride = {sh, sw}, .pad = p}
#define RESHAPE1(a) {.shape_rank = 1, .shape = {a}}
#define RESHAPE2(a, b) {.shape_rank = 2, .shape = {a, b}}
/* A window gradient's attributes: strides, padding and the forward input's
 * [H,W,C] (conv2d_grad_input) or kernel's [kh,kw] (conv2d_grad_kernel). */
#define GRAD_S(sh, sw, p, rank, a, b, c) {.stride = {sh, sw}, .pad = p, .shape_rank = rank, .shape = {a, b, c}}
#define POOL_GRAD(wh, ww, sh, sw, p, h, w) \
  {.window = {wh, ww}, .stride = {sh, sw}, .pad = p, .shape_rank = 2, .shape = {h, w}}

static const shape_case typed[] = {
    {"input", NNC_OP_INPUT, NO_ATTRS, 0, {"f32[?,28,28,1]"}, "f32[?,28,28,1]"},
    {"input scalar", NNC_OP_INPUT, NO_ATTRS, 0, {"f32[]"}, "f32[]"},
    {"input i32 labels", NNC_OP_INPUT, NO_ATTRS, 0, {"i32[?]"}, "i32[?]"},
    {"param", NNC_OP_PARAM, NO_ATTRS, 0, {"f32[3,3,1,32]"}, "f32[3,3,1,32]"},
    {"state", NNC_OP_STATE, NO_ATTRS, 0, {"f32[32]"}, "f32[32]"},

    {"matmul", NNC_OP_MATMUL, NO_ATTRS, 2, {"f32[?,784]", "f32[784,10]"}, "f32[?,10]"},
    {"matmul trans_a", NNC_OP_MATMUL, {.trans_a = 1}, 2, {"f32[3,2]", "f32[3,4]"}, "f32[2,4]"},
    {"matmul trans_b", NNC_OP_MATMUL, {.trans_b = 1}, 2, {"f32[2,3]", "f32[4,3]"}, "f32[2,4]"},
    {"matmul both", NNC_OP_MATMUL, {.trans_a = 1, .trans_b = 1}, 2, {"f32[3,2]", "f32[4,3]"}, "f32[2,4]"},
    {"matmul rank 3", NNC_OP_MATMUL, NO_ATTRS, 2, {"f32[?,5,3]", "f32[3,4]"}, "f32[?,5,4]"},

    {"bias_add", NNC_OP_BIAS_ADD, NO_ATTRS, 2, {"f32[?,10]", "f32[10]"}, "f32[?,10]"},
    {"bias_add rank 4", NNC_OP_BIAS_ADD, NO_ATTRS, 2, {"f32[?,26,26,32]", "f32[32]"}, "f32[?,26,26,32]"},

    {"conv2d valid", NNC_OP_CONV2D, VALID_S(1, 1), 2, {"f32[?,28,28,1]", "f32[3,3,1,32]"}, "f32[?,26,26,32]"},
    {"conv2d same", NNC_OP_CONV2D, SAME_S(1, 1), 2, {"f32[?,28,28,1]", "f32[3,3,1,32]"}, "f32[?,28,28,32]"},
    {"conv2d same stride 2", NNC_OP_CONV2D, SAME_S(2, 2), 2, {"f32[?,28,28,1]", "f32[3,3,1,32]"},
     "f32[?,14,14,32]"},
    /* 7x5, kernel 3x2: valid stride 1 gives 5x4; stride 2 gives floor(4/2)+1 = 3
     * by floor(3/2)+1 = 2; same stride 2 gives ceil(7/2) = 4 by ceil(5/2) = 3. */
    {"conv2d 7x5 valid", NNC_OP_CONV2D, VALID_S(1, 1), 2, {"f32[2,7,5,3]", "f32[3,2,3,8]"}, "f32[2,5,4,8]"},
    {"conv2d 7x5 valid stride 2", NNC_OP_CONV2D, VALID_S(2, 2), 2, {"f32[2,7,5,3]", "f32[3,2,3,8]"},
     "f32[2,3,2,8]"},
    {"conv2d 7x5 same stride 2", NNC_OP_CONV2D, SAME_S(2, 2), 2, {"f32[2,7,5,3]", "f32[3,2,3,8]"},
     "f32[2,4,3,8]"},
    {"conv2d kernel larger than input, same", NNC_OP_CONV2D, SAME_S(1, 1), 2, {"f32[1,2,3,2]", "f32[4,5,2,6]"},
     "f32[1,2,3,6]"},

    /* Pooling: 7 -> 3 and 5 -> 2 for pool 2 stride 2 valid; same gives ceil(n/s). */
    {"max_pool valid floor", NNC_OP_MAX_POOL, POOL(2, 2, 2, 2, NNC_PAD_VALID), 1, {"f32[?,7,5,4]"},
     "f32[?,3,2,4]"},
    {"max_pool same ceil", NNC_OP_MAX_POOL, POOL(2, 2, 2, 2, NNC_PAD_SAME), 1, {"f32[?,7,5,4]"}, "f32[?,4,3,4]"},
    {"max_pool stride 1", NNC_OP_MAX_POOL, POOL(2, 2, 1, 1, NNC_PAD_VALID), 1, {"f32[?,7,5,4]"},
     "f32[?,6,4,4]"},
    {"max_pool 3 stride 2", NNC_OP_MAX_POOL, POOL(3, 3, 2, 2, NNC_PAD_VALID), 1, {"f32[?,7,5,4]"},
     "f32[?,3,2,4]"},
    {"avg_pool valid floor", NNC_OP_AVG_POOL, POOL(2, 2, 2, 2, NNC_PAD_VALID), 1, {"f32[?,5,5,1]"},
     "f32[?,2,2,1]"},
    {"avg_pool same", NNC_OP_AVG_POOL, POOL(3, 2, 3, 2, NNC_PAD_SAME), 1, {"f32[?,7,5,1]"}, "f32[?,3,3,1]"},

    {"reshape flatten", NNC_OP_RESHAPE, RESHAPE1(3136), 1, {"f32[?,7,7,64]"}, "f32[?,3136]"},
    {"reshape inferred", NNC_OP_RESHAPE, RESHAPE1(-1), 1, {"f32[?,7,7,64]"}, "f32[?,3136]"},
    {"reshape inferred first", NNC_OP_RESHAPE, RESHAPE2(-1, 4), 1, {"f32[2,12]"}, "f32[2,3,4]"},
    {"reshape inferred last", NNC_OP_RESHAPE, RESHAPE2(3, -1), 1, {"f32[2,12]"}, "f32[2,3,4]"},
    {"reshape to one value per sample", NNC_OP_RESHAPE, {.shape_rank = 0}, 1, {"f32[5,1]"}, "f32[5]"},
    {"reshape keeps i32", NNC_OP_RESHAPE, RESHAPE2(2, 3), 1, {"i32[?,6]"}, "i32[?,2,3]"},
    {"allreduce keeps the type", NNC_OP_ALLREDUCE, {.bucket = 3}, 1, {"f32[3,3,1,4]"}, "f32[3,3,1,4]"},

    {"relu", NNC_OP_RELU, NO_ATTRS, 1, {"f32[?,26,26,32]"}, "f32[?,26,26,32]"},
    {"leaky_relu", NNC_OP_LEAKY_RELU, {.alpha = 0.3f}, 1, {"f32[?,26,26,32]"}, "f32[?,26,26,32]"},
    {"elu", NNC_OP_ELU, {.alpha = 1.0f}, 1, {"f32[?,26,26,32]"}, "f32[?,26,26,32]"},
    {"sigmoid", NNC_OP_SIGMOID, NO_ATTRS, 1, {"f32[?,1]"}, "f32[?,1]"},
    {"tanh", NNC_OP_TANH, NO_ATTRS, 1, {"f32[?,5,3]"}, "f32[?,5,3]"},
    {"softmax", NNC_OP_SOFTMAX, NO_ATTRS, 1, {"f32[?,10]"}, "f32[?,10]"},
    {"dropout", NNC_OP_DROPOUT, {.rate = 0.5f, .stream = 3}, 1, {"f32[?,128]"}, "f32[?,128]"},
    {"dropout rate 0", NNC_OP_DROPOUT, {.rate = 0}, 1, {"f32[?,128]"}, "f32[?,128]"},
    {"add", NNC_OP_ADD, NO_ATTRS, 2, {"f32[?,10]", "f32[?,10]"}, "f32[?,10]"},
    {"mul", NNC_OP_MUL, NO_ATTRS, 2, {"f32[4,3]", "f32[4,3]"}, "f32[4,3]"},

    /* Gradients have the type of the forward operand they belong to. */
    {"bias_grad", NNC_OP_BIAS_GRAD, NO_ATTRS, 1, {"f32[?,10]"}, "f32[10]"},
    {"bias_grad rank 4", NNC_OP_BIAS_GRAD, NO_ATTRS, 1, {"f32[?,26,26,32]"}, "f32[32]"},
    {"conv2d_grad_input valid", NNC_OP_CONV2D_GRAD_INPUT, GRAD_S(1, 1, NNC_PAD_VALID, 3, 28, 28, 1), 2,
     {"f32[?,26,26,32]", "f32[3,3,1,32]"}, "f32[?,28,28,1]"},
    {"conv2d_grad_input same stride 2", NNC_OP_CONV2D_GRAD_INPUT, GRAD_S(2, 2, NNC_PAD_SAME, 3, 28, 28, 1), 2,
     {"f32[?,14,14,32]", "f32[3,3,1,32]"}, "f32[?,28,28,1]"},
    /* 7x5 and 8x6 both give 4x3 with same padding, stride 2: the shape attribute decides. */
    {"conv2d_grad_input 7x5 same stride 2", NNC_OP_CONV2D_GRAD_INPUT, GRAD_S(2, 2, NNC_PAD_SAME, 3, 7, 5, 3), 2,
     {"f32[2,4,3,8]", "f32[3,2,3,8]"}, "f32[2,7,5,3]"},
    {"conv2d_grad_input 8x6 same stride 2", NNC_OP_CONV2D_GRAD_INPUT, GRAD_S(2, 2, NNC_PAD_SAME, 3, 8, 6, 3), 2,
     {"f32[2,4,3,8]", "f32[3,2,3,8]"}, "f32[2,8,6,3]"},
    {"conv2d_grad_kernel valid", NNC_OP_CONV2D_GRAD_KERNEL, GRAD_S(1, 1, NNC_PAD_VALID, 2, 3, 3, 0), 2,
     {"f32[?,28,28,1]", "f32[?,26,26,32]"}, "f32[3,3,1,32]"},
    {"conv2d_grad_kernel 7x5 valid stride 2", NNC_OP_CONV2D_GRAD_KERNEL, GRAD_S(2, 2, NNC_PAD_VALID, 2, 3, 2, 0), 2,
     {"f32[2,7,5,3]", "f32[2,3,2,8]"}, "f32[3,2,3,8]"},
    {"max_pool_grad valid", NNC_OP_MAX_POOL_GRAD, POOL(2, 2, 2, 2, NNC_PAD_VALID), 2,
     {"f32[?,7,5,4]", "f32[?,3,2,4]"}, "f32[?,7,5,4]"},
    {"max_pool_grad same", NNC_OP_MAX_POOL_GRAD, POOL(2, 2, 2, 2, NNC_PAD_SAME), 2,
     {"f32[?,7,5,4]", "f32[?,4,3,4]"}, "f32[?,7,5,4]"},
    {"avg_pool_grad same", NNC_OP_AVG_POOL_GRAD, POOL_GRAD(3, 2, 3, 2, NNC_PAD_SAME, 7, 5), 1, {"f32[?,3,3,1]"},
     "f32[?,7,5,1]"},
    {"avg_pool_grad valid", NNC_OP_AVG_POOL_GRAD, POOL_GRAD(2, 2, 2, 2, NNC_PAD_VALID, 7, 5), 1, {"f32[?,3,2,4]"},
     "f32[?,7,5,4]"},
    {"relu_grad", NNC_OP_RELU_GRAD, NO_ATTRS, 2, {"f32[?,26,26,32]", "f32[?,26,26,32]"}, "f32[?,26,26,32]"},
    {"leaky_relu_grad", NNC_OP_LEAKY_RELU_GRAD, {.alpha = 0.3f}, 2, {"f32[?,26,26,32]", "f32[?,26,26,32]"},
     "f32[?,26,26,32]"},
    {"elu_grad", NNC_OP_ELU_GRAD, {.alpha = 1.0f}, 2, {"f32[?,26,26,32]", "f32[?,26,26,32]"}, "f32[?,26,26,32]"},
    {"sigmoid_grad", NNC_OP_SIGMOID_GRAD, NO_ATTRS, 2, {"f32[?,1]", "f32[?,1]"}, "f32[?,1]"},
    {"tanh_grad", NNC_OP_TANH_GRAD, NO_ATTRS, 2, {"f32[?,5,3]", "f32[?,5,3]"}, "f32[?,5,3]"},
    {"softmax_grad", NNC_OP_SOFTMAX_GRAD, NO_ATTRS, 2, {"f32[?,10]", "f32[?,10]"}, "f32[?,10]"},

    /* Losses and the metric are scalars; labels are i32[batch] or the predictions' shape. */
    {"xent_logits sparse", NNC_OP_XENT_LOGITS, NO_ATTRS, 2, {"f32[?,10]", "i32[?]"}, "f32[]"},
    {"xent_logits one-hot", NNC_OP_XENT_LOGITS, NO_ATTRS, 2, {"f32[?,10]", "f32[?,10]"}, "f32[]"},
    {"xent_logits_grad sparse", NNC_OP_XENT_LOGITS_GRAD, NO_ATTRS, 2, {"f32[32,10]", "i32[32]"}, "f32[32,10]"},
    {"xent_logits_grad one-hot", NNC_OP_XENT_LOGITS_GRAD, NO_ATTRS, 2, {"f32[?,10]", "f32[?,10]"}, "f32[?,10]"},
    {"xent_probs sparse", NNC_OP_XENT_PROBS, NO_ATTRS, 2, {"f32[?,10]", "i32[?]"}, "f32[]"},
    {"xent_probs one-hot", NNC_OP_XENT_PROBS, NO_ATTRS, 2, {"f32[?,10]", "f32[?,10]"}, "f32[]"},
    {"xent_probs_grad sparse", NNC_OP_XENT_PROBS_GRAD, NO_ATTRS, 2, {"f32[?,10]", "i32[?]"}, "f32[?,10]"},
    {"xent_probs_grad one-hot", NNC_OP_XENT_PROBS_GRAD, NO_ATTRS, 2, {"f32[?,10]", "f32[?,10]"}, "f32[?,10]"},
    {"mse", NNC_OP_MSE, NO_ATTRS, 2, {"f32[?,1]", "f32[?,1]"}, "f32[]"},
    {"mse rank 3", NNC_OP_MSE, NO_ATTRS, 2, {"f32[?,5,3]", "f32[?,5,3]"}, "f32[]"},
    {"mse_grad", NNC_OP_MSE_GRAD, NO_ATTRS, 2, {"f32[?,5,3]", "f32[?,5,3]"}, "f32[?,5,3]"},
    {"correct sparse", NNC_OP_CORRECT, NO_ATTRS, 2, {"f32[?,10]", "i32[?]"}, "f32[]"},
    {"correct one-hot", NNC_OP_CORRECT, NO_ATTRS, 2, {"f32[?,10]", "f32[?,10]"}, "f32[]"},
    {"correct one column", NNC_OP_CORRECT, NO_ATTRS, 2, {"f32[?,1]", "f32[?,1]"}, "f32[]"},

    /* Updates have their first operand's type; learning rates are f32[]. */
    {"square", NNC_OP_SQUARE, NO_ATTRS, 1, {"f32[3,3,1,32]"}, "f32[3,3,1,32]"},
    {"ema", NNC_OP_EMA, {.alpha = 0.1f}, 2, {"f32[784,10]", "f32[784,10]"}, "f32[784,10]"},
    {"adam_update", NNC_OP_ADAM_UPDATE, {.eps = 1e-7f}, 4, {"f32[784,10]", "f32[784,10]", "f32[784,10]", "f32[]"},
     "f32[784,10]"},
    {"rmsprop_update", NNC_OP_RMSPROP_UPDATE, {.eps = 1e-7f}, 4, {"f32[10]", "f32[10]", "f32[10]", "f32[]"},
     "f32[10]"},
    {"sgd_update", NNC_OP_SGD_UPDATE, NO_ATTRS, 3, {"f32[3,3,1,32]", "f32[3,3,1,32]", "f32[]"}, "f32[3,3,1,32]"},
    {"momentum_velocity", NNC_OP_MOMENTUM_VELOCITY, {.alpha = 0.9f}, 3, {"f32[10]", "f32[10]", "f32[]"}, "f32[10]"},
    {"nesterov_update", NNC_OP_NESTEROV_UPDATE, {.alpha = 0.9f}, 4, {"f32[10]", "f32[10]", "f32[10]", "f32[]"},
     "f32[10]"},
    {"sub", NNC_OP_SUB, NO_ATTRS, 2, {"f32[3,3,1,32]", "f32[3,3,1,32]"}, "f32[3,3,1,32]"},
    {"maximum", NNC_OP_MAXIMUM, NO_ATTRS, 2, {"f32[784,10]", "f32[784,10]"}, "f32[784,10]"},
    {"rmsprop_momentum", NNC_OP_RMSPROP_MOMENTUM, {.alpha = 0.9f, .eps = 1e-7f}, 4,
     {"f32[10]", "f32[10]", "f32[10]", "f32[]"}, "f32[10]"},
    {"bn_stats", NNC_OP_BN_STATS, NO_ATTRS, 1, {"f32[?,28,28,32]"}, "f32[3,32]"},
    {"batch_norm_train", NNC_OP_BATCH_NORM_TRAIN, {.eps = 1e-3f}, 4, {"f32[?,7,7,64]", "f32[3,64]", "f32[64]", "f32[64]"},
     "f32[?,7,7,64]"},
    {"batch_norm_train_grad", NNC_OP_BATCH_NORM_TRAIN_GRAD, {.eps = 1e-3f}, 4,
     {"f32[?,64]", "f32[?,64]", "f32[3,64]", "f32[64]"}, "f32[?,64]"},
    {"bn_gamma_grad", NNC_OP_BN_GAMMA_GRAD, {.eps = 1e-3f}, 3, {"f32[?,5,5,8]", "f32[?,5,5,8]", "f32[3,8]"}, "f32[8]"},
    {"bn_moving", NNC_OP_BN_MOVING, {.alpha = 0.99f, .index = 2}, 2, {"f32[8]", "f32[3,8]"}, "f32[8]"},
    {"bn_fold", NNC_OP_BN_FOLD, {.eps = 1e-3f, .alpha = 0.99f}, 4, {"f32[8]", "f32[8]", "f32[8]", "f32[8]"}, "f32[2,8]"},
    {"scale_shift", NNC_OP_SCALE_SHIFT, NO_ATTRS, 2, {"f32[?,14,14,8]", "f32[2,8]"}, "f32[?,14,14,8]"},
    {"scale_shift_grad", NNC_OP_SCALE_SHIFT_GRAD, NO_ATTRS, 2, {"f32[?,8]", "f32[2,8]"}, "f32[?,8]"},
    {"fill", NNC_OP_FILL, {.alpha = 1.0f}, 1, {"f32[8]"}, "f32[8]"},
};

static const shape_case errors[] = {
    {"conv2d rank 2", NNC_OP_CONV2D, VALID_S(1, 1), 2, {"f32[32,784]", "f32[3,3,1,32]"},
     "conv2d: expects rank-4 input [N,H,W,C], got f32[32,784]"},
    {"conv2d kernel larger", NNC_OP_CONV2D, VALID_S(1, 1), 2, {"f32[1,3,3,1]", "f32[5,5,1,4]"},
     "conv2d: kernel 5x5 is larger than its input f32[1,3,3,1] with valid padding"},
    {"conv2d kernel wider", NNC_OP_CONV2D, VALID_S(1, 1), 2, {"f32[?,7,2,1]", "f32[3,3,1,4]"},
     "conv2d: kernel 3x3 is larger than its input f32[?,7,2,1] with valid padding"},
    {"conv2d channels", NNC_OP_CONV2D, VALID_S(1, 1), 2, {"f32[1,7,7,1]", "f32[3,3,2,8]"},
     "conv2d: kernel f32[3,3,2,8] (HWIO) does not fit input f32[1,7,7,1]: its I must equal the input's C"},
    {"conv2d kernel rank", NNC_OP_CONV2D, VALID_S(1, 1), 2, {"f32[1,7,7,1]", "f32[3,3,1]"},
     "conv2d: kernel f32[3,3,1] (HWIO) does not fit input f32[1,7,7,1]: its I must equal the input's C"},
    {"conv2d stride 0", NNC_OP_CONV2D, VALID_S(0, 1), 2, {"f32[1,7,7,1]", "f32[3,3,1,8]"},
     "conv2d: kernel 3x3 with strides 0x1: sizes must be positive"},
    {"conv2d i32", NNC_OP_CONV2D, VALID_S(1, 1), 2, {"i32[1,7,7,1]", "f32[3,3,1,8]"},
     "conv2d: operand 0 must be f32, got i32[1,7,7,1]"},

    {"max_pool larger", NNC_OP_MAX_POOL, POOL(3, 3, 1, 1, NNC_PAD_VALID), 1, {"f32[?,2,5,1]"},
     "max_pool: pool 3x3 is larger than its input f32[?,2,5,1] with valid padding"},
    {"avg_pool larger", NNC_OP_AVG_POOL, POOL(2, 6, 2, 2, NNC_PAD_VALID), 1, {"f32[?,5,5,1]"},
     "avg_pool: pool 2x6 is larger than its input f32[?,5,5,1] with valid padding"},
    {"avg_pool window 0", NNC_OP_AVG_POOL, POOL(0, 2, 1, 1, NNC_PAD_VALID), 1, {"f32[?,5,5,1]"},
     "avg_pool: pool 0x2 with strides 1x1: sizes must be positive"},
    {"max_pool stride -1", NNC_OP_MAX_POOL, POOL(2, 2, 2, -1, NNC_PAD_SAME), 1, {"f32[?,5,5,1]"},
     "max_pool: pool 2x2 with strides 2x-1: sizes must be positive"},
    {"max_pool rank 3", NNC_OP_MAX_POOL, POOL(2, 2, 2, 2, NNC_PAD_VALID), 1, {"f32[?,28,28]"},
     "max_pool: expects rank-4 input [N,H,W,C], got f32[?,28,28]"},

    {"input zero size", NNC_OP_INPUT, NO_ATTRS, 0, {"f32[?,0,3]"}, "input: 'x' has a zero or negative size in f32[?,0,3]"},
    {"input negative size", NNC_OP_INPUT, NO_ATTRS, 0, {"f32[?,-3]"},
     "input: 'x' has a zero or negative size in f32[?,-3]"},
    {"input unknown non-batch", NNC_OP_INPUT, NO_ATTRS, 0, {"f32[2,?]"},
     "input: 'x' has a zero or negative size in f32[2,?]"},
    {"input zero batch", NNC_OP_INPUT, NO_ATTRS, 0, {"f32[0,3]"}, "input: 'x' has a zero or negative size in f32[0,3]"},
    {"param zero size", NNC_OP_PARAM, NO_ATTRS, 0, {"f32[3,0]"}, "param: 'x' has a zero or negative size in f32[3,0]"},
    {"param unknown batch", NNC_OP_PARAM, NO_ATTRS, 0, {"f32[?,3]"}, "param: 'x' has a zero or negative size in f32[?,3]"},
    {"param i32", NNC_OP_PARAM, NO_ATTRS, 0, {"i32[3]"}, "param: parameters are f32"},

    {"matmul inner", NNC_OP_MATMUL, NO_ATTRS, 2, {"f32[2,3]", "f32[4,5]"},
     "matmul: inner dimensions differ: f32[2,3] has 3, f32[4,5] has 4"},
    {"matmul inner trans_b", NNC_OP_MATMUL, {.trans_b = 1}, 2, {"f32[2,3]", "f32[4,5]"},
     "matmul: inner dimensions differ: f32[2,3] has 3, f32[4,5] has 5"},
    {"matmul inner trans_a", NNC_OP_MATMUL, {.trans_a = 1}, 2, {"f32[2,3]", "f32[3,5]"},
     "matmul: inner dimensions differ: f32[2,3] has 2, f32[3,5] has 3"},
    {"matmul vector", NNC_OP_MATMUL, NO_ATTRS, 2, {"f32[2,3]", "f32[3]"},
     "matmul: matmul needs a matrix (or batch of rows) and a matrix, got f32[2,3] and f32[3]"},
    {"matmul trans_a rank 3", NNC_OP_MATMUL, {.trans_a = 1}, 2, {"f32[2,3,4]", "f32[3,5]"},
     "matmul: matmul needs a matrix (or batch of rows) and a matrix, got f32[2,3,4] and f32[3,5]"},

    {"bias_add mismatch", NNC_OP_BIAS_ADD, NO_ATTRS, 2, {"f32[?,3]", "f32[4]"},
     "bias_add: bias f32[4] does not match the last axis of f32[?,3]"},
    {"bias_add rank 2 bias", NNC_OP_BIAS_ADD, NO_ATTRS, 2, {"f32[?,3]", "f32[1,3]"},
     "bias_add: bias f32[1,3] does not match the last axis of f32[?,3]"},

    {"reshape count", NNC_OP_RESHAPE, RESHAPE1(4), 1, {"f32[2,6]"},
     "reshape: cannot reshape f32[2,6] (6 values per sample) to f32[2,4]"},
    {"reshape inferred does not divide", NNC_OP_RESHAPE, RESHAPE2(-1, 4), 1, {"f32[2,6]"},
     "reshape: cannot reshape f32[2,6] (6 values per sample) to f32[2,?,4]"},
    {"reshape two inferred", NNC_OP_RESHAPE, RESHAPE2(-1, -1), 1, {"f32[2,6]"},
     "reshape: target size -1 at axis 2 must be positive"},
    {"reshape zero", NNC_OP_RESHAPE, RESHAPE2(0, 6), 1, {"f32[2,6]"},
     "reshape: target size 0 at axis 1 must be positive"},
    {"reshape scalar", NNC_OP_RESHAPE, RESHAPE1(1), 1, {"f32[]"}, "reshape: cannot reshape a scalar"},

    {"dropout rate 1", NNC_OP_DROPOUT, {.rate = 1.0f}, 1, {"f32[?,8]"}, "dropout: dropout rate 1 must be in [0, 1)"},
    {"allreduce of labels", NNC_OP_ALLREDUCE, {.bucket = 0}, 1, {"i32[4]"}, "allreduce: expects f32, got i32[4]"},
    {"dropout rate above 1", NNC_OP_DROPOUT, {.rate = 1.5f}, 1, {"f32[?,8]"},
     "dropout: dropout rate 1.5 must be in [0, 1)"},
    {"dropout negative rate", NNC_OP_DROPOUT, {.rate = -0.25f}, 1, {"f32[?,8]"},
     "dropout: dropout rate -0.25 must be in [0, 1)"},
    {"dropout nan rate", NNC_OP_DROPOUT, {.rate = NAN}, 1, {"f32[?,8]"},
     "dropout: dropout rate nan must be in [0, 1)"},

    {"add mismatch", NNC_OP_ADD, NO_ATTRS, 2, {"f32[?,10]", "f32[?,11]"},
     "add: operand 1 is f32[?,11], expected f32[?,10]"},
    {"mul rank mismatch", NNC_OP_MUL, NO_ATTRS, 2, {"f32[4,3]", "f32[12]"},
     "mul: operand 1 is f32[12], expected f32[4,3]"},
    {"add dtype mismatch", NNC_OP_ADD, NO_ATTRS, 2, {"f32[3]", "i32[3]"}, "add: operand 1 is i32[3], expected f32[3]"},
    {"add i32", NNC_OP_ADD, NO_ATTRS, 2, {"i32[3]", "i32[3]"}, "add: operand 0 must be f32, got i32[3]"},
    {"add arity", NNC_OP_ADD, NO_ATTRS, 1, {"f32[3]"}, "add: add takes 2 operand(s), got 1"},
    {"relu i32", NNC_OP_RELU, NO_ATTRS, 1, {"i32[?,3]"}, "relu: expects f32, got i32[?,3]"},
    {"elu negative alpha", NNC_OP_ELU, {.alpha = -1.0f}, 1, {"f32[3]"}, "elu: alpha -1 must be >= 0"},
    {"leaky_relu negative alpha", NNC_OP_LEAKY_RELU, {.alpha = -0.5f}, 1, {"f32[3]"}, "leaky_relu: alpha -0.5 must be >= 0"},
    {"softmax scalar", NNC_OP_SOFTMAX, NO_ATTRS, 1, {"f32[]"}, "softmax: softmax needs at least one axis"},

    {"bias_grad scalar", NNC_OP_BIAS_GRAD, NO_ATTRS, 1, {"f32[]"}, "bias_grad: bias_grad needs at least one axis"},
    {"bias_grad i32", NNC_OP_BIAS_GRAD, NO_ATTRS, 1, {"i32[?,3]"}, "bias_grad: operand 0 must be f32, got i32[?,3]"},
    {"conv2d_grad_input dy not the window output", NNC_OP_CONV2D_GRAD_INPUT,
     GRAD_S(1, 1, NNC_PAD_VALID, 3, 28, 28, 1), 2, {"f32[?,25,26,32]", "f32[3,3,1,32]"},
     "conv2d_grad_input: gradient f32[?,25,26,32] does not match a 28x28 input's window output 26x26"},
    {"conv2d_grad_input output channels", NNC_OP_CONV2D_GRAD_INPUT, GRAD_S(1, 1, NNC_PAD_VALID, 3, 28, 28, 1), 2,
     {"f32[?,26,26,16]", "f32[3,3,1,32]"}, "conv2d_grad_input: operands disagree: f32[?,26,26,16] and f32[3,3,1,32]"},
    {"conv2d_grad_input input channels", NNC_OP_CONV2D_GRAD_INPUT, GRAD_S(1, 1, NNC_PAD_VALID, 3, 28, 28, 3), 2,
     {"f32[?,26,26,32]", "f32[3,3,1,32]"}, "conv2d_grad_input: operands disagree: f32[?,26,26,32] and f32[3,3,1,32]"},
    {"conv2d_grad_input without the input's shape", NNC_OP_CONV2D_GRAD_INPUT, VALID_S(1, 1), 2,
     {"f32[?,26,26,32]", "f32[3,3,1,32]"}, "conv2d_grad_input: operands disagree: f32[?,26,26,32] and f32[3,3,1,32]"},
    {"conv2d_grad_input stride 0", NNC_OP_CONV2D_GRAD_INPUT, GRAD_S(0, 1, NNC_PAD_SAME, 3, 28, 28, 1), 2,
     {"f32[?,28,28,32]", "f32[3,3,1,32]"}, "conv2d_grad_input: kernel 3x3 with strides 0x1: sizes must be positive"},
    {"conv2d_grad_input i32 kernel", NNC_OP_CONV2D_GRAD_INPUT, GRAD_S(1, 1, NNC_PAD_VALID, 3, 28, 28, 1), 2,
     {"f32[?,26,26,32]", "i32[3,3,1,32]"}, "conv2d_grad_input: operand 1 must be f32, got i32[3,3,1,32]"},
    {"conv2d_grad_kernel dy not the window output", NNC_OP_CONV2D_GRAD_KERNEL,
     GRAD_S(1, 1, NNC_PAD_VALID, 2, 3, 3, 0), 2, {"f32[?,28,28,1]", "f32[?,27,26,32]"},
     "conv2d_grad_kernel: gradient f32[?,27,26,32] does not match a 28x28 input's window output 26x26"},
    {"conv2d_grad_kernel kernel 0", NNC_OP_CONV2D_GRAD_KERNEL, GRAD_S(1, 1, NNC_PAD_VALID, 2, 0, 3, 0), 2,
     {"f32[?,28,28,1]", "f32[?,26,26,32]"}, "conv2d_grad_kernel: kernel 0x3 with strides 1x1: sizes must be positive"},
    {"conv2d_grad_kernel rank 2 input", NNC_OP_CONV2D_GRAD_KERNEL, GRAD_S(1, 1, NNC_PAD_VALID, 2, 3, 3, 0), 2,
     {"f32[?,784]", "f32[?,26,26,32]"}, "conv2d_grad_kernel: operands disagree: f32[?,784] and f32[?,26,26,32]"},
    {"conv2d_grad_kernel i32 input", NNC_OP_CONV2D_GRAD_KERNEL, GRAD_S(1, 1, NNC_PAD_VALID, 2, 3, 3, 0), 2,
     {"i32[?,28,28,1]", "f32[?,26,26,32]"}, "conv2d_grad_kernel: operand 0 must be f32, got i32[?,28,28,1]"},
    {"max_pool_grad dy not the pool output", NNC_OP_MAX_POOL_GRAD, POOL(2, 2, 2, 2, NNC_PAD_VALID), 2,
     {"f32[?,7,5,4]", "f32[?,3,3,4]"}, "max_pool_grad: operands disagree: f32[?,7,5,4] and f32[?,3,3,4]"},
    {"max_pool_grad rank 3", NNC_OP_MAX_POOL_GRAD, POOL(2, 2, 2, 2, NNC_PAD_VALID), 2, {"f32[?,7,5]", "f32[?,3,2]"},
     "max_pool_grad: operands disagree: f32[?,7,5] and f32[?,3,2]"},
    {"max_pool_grad i32 dy", NNC_OP_MAX_POOL_GRAD, POOL(2, 2, 2, 2, NNC_PAD_VALID), 2,
     {"f32[1,4,4,1]", "i32[1,2,2,1]"}, "max_pool_grad: operand 1 must be f32, got i32[1,2,2,1]"},
    {"avg_pool_grad without the input's shape", NNC_OP_AVG_POOL_GRAD, POOL(2, 2, 2, 2, NNC_PAD_VALID), 1,
     {"f32[?,3,2,4]"}, "avg_pool_grad: avg_pool_grad needs the input's [H,W] as shape"},
    {"avg_pool_grad dy not the pool output", NNC_OP_AVG_POOL_GRAD, POOL_GRAD(2, 2, 2, 2, NNC_PAD_VALID, 7, 5), 1,
     {"f32[?,4,2,4]"}, "avg_pool_grad: gradient f32[?,4,2,4] does not match a 7x5 input's window output 3x2"},
    {"avg_pool_grad stride 0", NNC_OP_AVG_POOL_GRAD, POOL_GRAD(2, 2, 0, 2, NNC_PAD_SAME, 7, 5), 1, {"f32[?,4,3,4]"},
     "avg_pool_grad: pool 2x2 with strides 0x2: sizes must be positive"},
    {"relu_grad mismatch", NNC_OP_RELU_GRAD, NO_ATTRS, 2, {"f32[?,10]", "f32[?,11]"},
     "relu_grad: operands disagree: f32[?,10] and f32[?,11]"},
    {"softmax_grad i32", NNC_OP_SOFTMAX_GRAD, NO_ATTRS, 2, {"f32[4]", "i32[4]"},
     "softmax_grad: operands disagree: f32[4] and i32[4]"},

    {"xent_logits sparse labels of rank 2", NNC_OP_XENT_LOGITS, NO_ATTRS, 2, {"f32[?,10]", "i32[?,10]"},
     "xent_logits: labels i32[?,10] do not fit predictions f32[?,10] (sparse labels are i32[batch], one-hot labels "
     "have the predictions' shape)"},
    {"xent_logits one-hot width", NNC_OP_XENT_LOGITS, NO_ATTRS, 2, {"f32[4,10]", "f32[4,9]"},
     "xent_logits: labels f32[4,9] do not fit predictions f32[4,10] (sparse labels are i32[batch], one-hot labels "
     "have the predictions' shape)"},
    {"xent_probs sparse batch", NNC_OP_XENT_PROBS, NO_ATTRS, 2, {"f32[4,10]", "i32[3]"},
     "xent_probs: labels i32[3] do not fit predictions f32[4,10] (sparse labels are i32[batch], one-hot labels "
     "have the predictions' shape)"},
    {"xent_probs_grad sparse on rank 3", NNC_OP_XENT_PROBS_GRAD, NO_ATTRS, 2, {"f32[4,5,10]", "i32[4]"},
     "xent_probs_grad: labels i32[4] do not fit predictions f32[4,5,10] (sparse labels are i32[batch], one-hot "
     "labels have the predictions' shape)"},
    {"xent_logits scalar predictions", NNC_OP_XENT_LOGITS, NO_ATTRS, 2, {"f32[]", "f32[]"},
     "xent_logits: predictions f32[] need a batch axis"},
    {"xent_logits_grad i32 predictions", NNC_OP_XENT_LOGITS_GRAD, NO_ATTRS, 2, {"i32[4,10]", "i32[4]"},
     "xent_logits_grad: predictions must be f32, got i32[4,10]"},
    {"mse i32 targets", NNC_OP_MSE, NO_ATTRS, 2, {"f32[4,1]", "i32[4]"}, "mse: mse needs f32 targets"},
    {"mse shapes", NNC_OP_MSE, NO_ATTRS, 2, {"f32[4,2]", "f32[4,3]"},
     "mse: labels f32[4,3] do not fit predictions f32[4,2] (sparse labels are i32[batch], one-hot labels have the "
     "predictions' shape)"},
    {"mse_grad i32 targets", NNC_OP_MSE_GRAD, NO_ATTRS, 2, {"f32[4,1]", "i32[4]"}, "mse_grad: mse needs f32 targets"},
    {"correct labels", NNC_OP_CORRECT, NO_ATTRS, 2, {"f32[4,10]", "f32[10]"},
     "correct: labels f32[10] do not fit predictions f32[4,10] (sparse labels are i32[batch], one-hot labels have "
     "the predictions' shape)"},

    {"square i32", NNC_OP_SQUARE, NO_ATTRS, 1, {"i32[3]"}, "square: operand 0 must be f32, got i32[3]"},
    {"ema mismatch", NNC_OP_EMA, {.alpha = 0.1f}, 2, {"f32[3]", "f32[3,1]"}, "ema: operand 1 is f32[3,1], expected f32[3]"},
    {"adam_update moment shape", NNC_OP_ADAM_UPDATE, {.eps = 1e-7f}, 4, {"f32[3]", "f32[4]", "f32[3]", "f32[]"},
     "adam_update: operand 1 is f32[4], expected f32[3]"},
    {"rmsprop_update i32 weights", NNC_OP_RMSPROP_UPDATE, {.eps = 1e-7f}, 4, {"i32[3]", "i32[3]", "i32[3]", "f32[]"},
     "rmsprop_update: operand 0 must be f32, got i32[3]"},
    {"sgd_update learning rate not a scalar", NNC_OP_SGD_UPDATE, NO_ATTRS, 3, {"f32[3]", "f32[3]", "f32[1]"},
     "sgd_update: the last operand must be an f32[] scalar, got f32[1]"},
    {"momentum_velocity i32 learning rate", NNC_OP_MOMENTUM_VELOCITY, {.alpha = 0.9f}, 3, {"f32[3]", "f32[3]", "i32[]"},
     "momentum_velocity: the last operand must be an f32[] scalar, got i32[]"},
    {"nesterov_update arity", NNC_OP_NESTEROV_UPDATE, {.alpha = 0.9f}, 3, {"f32[3]", "f32[3]", "f32[]"},
     "nesterov_update: nesterov_update takes 4 operand(s), got 3"},
    {"bn_stats needs a channel axis", NNC_OP_BN_STATS, NO_ATTRS, 1, {"f32[5]"},
     "bn_stats: expects an f32 input with a batch axis and a channel axis, got f32[5]"},
    {"batch_norm_train gamma of another width", NNC_OP_BATCH_NORM_TRAIN, {.eps = 1e-3f}, 4,
     {"f32[?,7,7,64]", "f32[3,64]", "f32[32]", "f32[64]"},
     "batch_norm_train: operand 2 is f32[32], expected f32[64] (one value per channel of the last axis)"},
    {"scale_shift table of one row", NNC_OP_SCALE_SHIFT, NO_ATTRS, 2, {"f32[?,8]", "f32[8]"},
     "scale_shift: operand 1 is f32[8], expected f32[2,8] (one value per channel of the last axis)"},
    {"fill like i32", NNC_OP_FILL, {.alpha = 1.0f}, 1, {"i32[8]"}, "fill: operand 0 is i32[8], expected f32"},
    {"bn_moving row out of range", NNC_OP_BN_MOVING, {.alpha = 0.99f, .index = 3}, 2, {"f32[8]", "f32[3,8]"},
     "bn_moving: index 3 names no row of the statistics (0 to 2)"},
};

#define NTYPED ((int)(sizeof typed / sizeof typed[0]))
#define NERRORS ((int)(sizeof errors / sizeof errors[0]))

START_TEST(test_output_type) {
  const shape_case *c = &typed[_i];
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  int32_t id = add_case(g, c, &st);
  ck_assert_msg(id >= 0, "%s: %s", c->what, st.msg);
  char type[128];
  ck_assert_msg(strcmp(nnc_type_str(&g->nodes[id], type, sizeof type), c->want) == 0, "%s: got %s, want %s",
                c->what, type, c->want);
  ck_assert_msg(nnc_graph_verify(g, &st) == 0, "%s: %s", c->what, st.msg);
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_error_message) {
  const shape_case *c = &errors[_i];
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  int nodes_before_op = nnc_ops[c->op].flags & NNC_OPF_LEAF ? 0 : c->nsrc;
  ck_assert_msg(add_case(g, c, &st) == -1, "%s: accepted", c->what);
  ck_assert_int_eq(st.failed, 1);
  ck_assert_str_eq(st.msg, c->want);
  ck_assert_int_eq(g->nnodes, nodes_before_op); /* a rejected node is not added */
  nnc_graph_free(g);
}
END_TEST

/* Every row of ir/pointwise.def, by walking the table: its operands read
 * element for element have one type, which the result takes; an update's
 * scalar is f32[]. */
static int pointwise_case(nnc_op op, shape_case *c) {
  const nnc_pw_row *r = &nnc_pointwise[op];
  if (r->kind == NNC_PW_NONE) return 0;
  *c = (shape_case){nnc_ops[op].name, op, {.alpha = 0.3f, .rate = 0.5f, .eps = 1e-7f}, nnc_ops[op].arity, {0},
                    "f32[?,26,26,32]"};
  for (int i = 0; i < c->nsrc; i++) c->src[i] = i < r->operands ? "f32[?,26,26,32]" : "f32[]";
  return 1;
}

START_TEST(test_pointwise_output_type) {
  shape_case c;
  if (!pointwise_case((nnc_op)_i, &c)) return;
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  int32_t id = add_case(g, &c, &st);
  ck_assert_msg(id >= 0, "%s: %s", c.what, st.msg);
  char type[128];
  ck_assert_str_eq(nnc_type_str(&g->nodes[id], type, sizeof type), c.want);
  nnc_graph_free(g);
}
END_TEST

/* A new row in ir/ops.def must come with an output-type case above. */
START_TEST(test_every_op_has_a_shape_case) {
  for (int op = 0; op < NNC_OP_COUNT; op++) {
    shape_case made;
    int cases = pointwise_case((nnc_op)op, &made);
    for (int i = 0; i < NTYPED; i++) cases += typed[i].op == (nnc_op)op;
    ck_assert_msg(cases > 0, "op '%s' has no shape case in tests/runtime/test_shapes.c", nnc_ops[op].name);
  }
}
END_TEST

static int32_t leaf(nnc_graph *g, nnc_op op, const char *name, const char *type) {
  nnc_status st = {0};
  nnc_node_spec spec = {.op = op, .name = name};
  parse_type(type, &spec);
  int32_t id = nnc_graph_add(g, &spec, &st);
  ck_assert_msg(id >= 0, "%s", st.msg);
  return id;
}

static int32_t input(nnc_graph *g, const char *name, const char *type) {
  return leaf(g, NNC_OP_INPUT, name, type);
}

static int32_t param(nnc_graph *g, const char *name, const char *type) {
  return leaf(g, NNC_OP_PARAM, name, type);
}

/* Errors name the layer and script line set with nnc_graph_set_loc. */
START_TEST(test_error_cites_layer_and_line) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  int32_t x = input(g, "x", "f32[32,784]");
  int32_t src[2] = {x, param(g, "k", "f32[3,3,1,32]")};
  nnc_graph_set_loc(g, "conv2d_3", "Conv2D", "models/x.lua", 14);
  nnc_attrs attrs = {.stride = {1, 1}};
  ck_assert_int_eq(nnc_graph_op(g, NNC_OP_CONV2D, src, 2, &attrs, &st), -1);
  ck_assert_str_eq(st.msg, "conv2d_3 (Conv2D) at models/x.lua:14: expects rank-4 input [N,H,W,C], got f32[32,784]");

  /* A layer without a script place. */
  src[1] = param(g, "w", "f32[100,10]");
  nnc_graph_set_loc(g, "dense_1", "Dense", NULL, 0);
  ck_assert_int_eq(nnc_graph_op(g, NNC_OP_MATMUL, src, 2, NULL, &st), -1);
  ck_assert_str_eq(st.msg, "dense_1 (Dense): inner dimensions differ: f32[32,784] has 784, f32[100,10] has 100");

  /* Leaves carry the place too. */
  nnc_graph_set_loc(g, "input_1", "InputLayer", "models/x.lua", 3);
  nnc_node_spec bad = {.op = NNC_OP_INPUT, .name = "images"};
  parse_type("f32[?,0,28,1]", &bad);
  ck_assert_int_eq(nnc_graph_add(g, &bad, &st), -1);
  ck_assert_str_eq(st.msg, "input_1 (InputLayer) at models/x.lua:3: 'images' has a zero or negative size in f32[?,0,28,1]");
  nnc_graph_free(g);
}
END_TEST

/* A node that was built keeps its place, so a later check still cites it. */
START_TEST(test_node_keeps_its_place) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  int32_t src[2] = {input(g, "x", "f32[?,28,28,1]"), param(g, "k", "f32[3,3,1,32]")};
  nnc_graph_set_loc(g, "conv2d_3", "Conv2D", "models/x.lua", 14);
  nnc_attrs attrs = {.stride = {1, 1}};
  int32_t conv = nnc_graph_op(g, NNC_OP_CONV2D, src, 2, &attrs, &st);
  ck_assert_int_ge(conv, 0);
  char where[256];
  ck_assert_str_eq(nnc_node_where(g, conv, where, sizeof where), "conv2d_3 (Conv2D) at models/x.lua:14");
  ck_assert_str_eq(nnc_node_where(g, src[0], where, sizeof where), "%0 = input");
  ck_assert_int_eq(nnc_graph_verify(g, &st), 0);
  /* Corrupt the stored type: the verifier re-runs inference and cites the layer. */
  g->nodes[conv].shape[1] = 27;
  ck_assert_int_eq(nnc_graph_verify(g, &st), -1);
  ck_assert_str_eq(st.msg, "conv2d_3 (Conv2D) at models/x.lua:14: stored type f32[?,27,26,32], but its "
                           "operands give f32[?,26,26,32]");
  nnc_graph_free(g);
}
END_TEST

/* Fixing the batch re-infers every shape in a small network. */
START_TEST(test_with_batch_reinfers) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  int32_t x = input(g, "x", "f32[?,28,28,1]");
  int32_t conv_src[2] = {x, param(g, "k", "f32[3,3,1,8]")};
  nnc_attrs same = {.stride = {1, 1}, .pad = NNC_PAD_SAME};
  int32_t h = nnc_graph_op(g, NNC_OP_CONV2D, conv_src, 2, &same, &st);
  nnc_attrs pool = {.window = {2, 2}, .stride = {2, 2}};
  h = nnc_graph_op(g, NNC_OP_MAX_POOL, &h, 1, &pool, &st);
  nnc_attrs flat = {.shape_rank = 1, .shape = {-1}};
  h = nnc_graph_op(g, NNC_OP_RESHAPE, &h, 1, &flat, &st);
  int32_t mm_src[2] = {h, param(g, "w", "f32[1568,10]")};
  h = nnc_graph_op(g, NNC_OP_MATMUL, mm_src, 2, NULL, &st);
  h = nnc_graph_op(g, NNC_OP_SOFTMAX, &h, 1, NULL, &st);
  ck_assert_msg(h >= 0, "%s", st.msg);
  ck_assert_int_eq(nnc_graph_add_output(g, "output", h, &st), 0);
  nnc_graph *b = nnc_graph_with_batch(g, 32, &st);
  ck_assert_msg(b != NULL, "%s", st.msg);
  static const char *const want[] = {"f32[32,28,28,1]", "f32[3,3,1,8]", "f32[32,28,28,8]", "f32[32,14,14,8]",
                                     "f32[32,1568]",    "f32[1568,10]", "f32[32,10]",      "f32[32,10]"};
  ck_assert_int_eq(b->nnodes, 8);
  for (int i = 0; i < b->nnodes; i++) {
    char type[128];
    ck_assert_str_eq(nnc_type_str(&b->nodes[i], type, sizeof type), want[i]);
  }
  ck_assert_int_eq(nnc_graph_verify(b, &st), 0);
  nnc_graph_free(b);
  nnc_graph_free(g);
}
END_TEST

TCase *tcase_shapes(void) {
  TCase *tc = tcase_create("shapes");
  tcase_add_loop_test(tc, test_output_type, 0, NTYPED);
  tcase_add_loop_test(tc, test_pointwise_output_type, 0, NNC_OP_COUNT);
  tcase_add_loop_test(tc, test_error_message, 0, NERRORS);
  tcase_add_test(tc, test_every_op_has_a_shape_case);
  tcase_add_test(tc, test_error_cites_layer_and_line);
  tcase_add_test(tc, test_node_keeps_its_place);
  tcase_add_test(tc, test_with_batch_reinfers);
  return tc;
}
