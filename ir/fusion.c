#include "ir/fusion.h"

#define E NNC_ROLE_EPILOGUE
#define EP (NNC_ROLE_EPILOGUE | NNC_ROLE_PROLOGUE)
#define R NNC_ROLE_REDUCTION
#define L NNC_ROLE_LIBRARY
#define A NNC_ROLE_ANCHOR

enum {
#define X(ENUM, name, arity, attrs, flags) ARITY_##ENUM = (arity), FLAGS_##ENUM = (flags),
#include "ir/ops.def"
#undef X
};

/* The rows of ir/pointwise.def are epilogues by their kind: an activation
 * gradient carries dy (operand 1), an update reads its step's scalar (its
 * operands after the `operands` it reads element by element) by index, and
 * an elementwise one can be a prologue. Every other row is listed below,
 * so that a new op is given its roles here, or by its pointwise row. */
#define ACTIVATION(ENUM, name, GRAD, flops, expr) [NNC_OP_##ENUM] = {EP, 0, 0, 0},
#define ACTIVATION_GRAD(ENUM, name, flops, expr) [NNC_OP_##ENUM] = {EP, 0, 1, 0},
#define RANDOM(ENUM, name, flops, expr) [NNC_OP_##ENUM] = {EP, 0, 0, 0},
#define POINTWISE(ENUM, name, operands, flops, expr)                                                     \
  [NNC_OP_##ENUM] = {(FLAGS_##ENUM & NNC_OPF_ELEMENTWISE) ? EP : E,                              \
                     ((1u << ARITY_##ENUM) - 1u) & ~((1u << (operands)) - 1u), 0, 0},
#define ROW(op, r, ind, ch, pro) [NNC_OP_##op] = {(r), (ind), (ch), (pro)},
const nnc_op_fusion nnc_op_fusions[NNC_OP_COUNT] = {
#include "ir/pointwise.def"
    ROW(INPUT, 0, 0, 0, 0)
    ROW(PARAM, 0, 0, 0, 0)
    ROW(STATE, 0, 0, 0, 0)
    ROW(MATMUL, A | L, 0, 0, 0)
    ROW(BIAS_ADD, E, 1u << 1, 0, 0)
    ROW(CONV2D, A | L, 0, 0, 0)
    ROW(MAX_POOL, 0, 0, 0, 0)
    ROW(AVG_POOL, 0, 0, 0, 0)
    ROW(RESHAPE, E, 0, 0, 0)
    ROW(SOFTMAX, R, 0, 0, 0)
    ROW(BIAS_GRAD, R, 0, 0, 0)
    ROW(CONV2D_GRAD_INPUT, A | L, 0, 0, 0)
    ROW(CONV2D_GRAD_KERNEL, L, 0, 0, 0)
    ROW(MAX_POOL_GRAD, A, 0, 0, 1u << 1)
    ROW(AVG_POOL_GRAD, 0, 0, 0, 0)
    ROW(SOFTMAX_GRAD, R, 0, 0, 0)
    ROW(XENT_LOGITS, R, 0, 0, 0)
    ROW(XENT_LOGITS_GRAD, R, 0, 0, 0)
    ROW(XENT_PROBS, R, 0, 0, 0)
    ROW(XENT_PROBS_GRAD, R, 0, 0, 0)
    ROW(MSE, R, 0, 0, 0)
    ROW(MSE_GRAD, E, 0, 0, 0)
    ROW(CORRECT, R, 0, 0, 0)
    ROW(BN_STATS, R, 0, 0, 0)
    ROW(BATCH_NORM_TRAIN, E, 0xeu, 0, 0)
    ROW(BATCH_NORM_TRAIN_GRAD, R, 0, 0, 0)
    ROW(BN_GAMMA_GRAD, R, 0, 0, 0)
    ROW(BN_MOVING, E, 1u << 1, 0, 0)
    ROW(BN_FOLD, E, 0xfu, 0, 0)
    ROW(SCALE_SHIFT, E, 1u << 1, 0, 0)
    ROW(SCALE_SHIFT_GRAD, E, 1u << 1, 0, 0)
    ROW(FILL, E, 0, 0, 0)
    ROW(ALLREDUCE, L, 0, 0, 0)
};
