/* The gradient rule of every op row (see passes/autodiff.h). A rule builds
 * its operands' gradients from ordinary ops; ops that are never
 * differentiated (leaves, gradients, updates, metrics) say so. */
#include <string.h>

#include "ir/op.h"
#include "passes/autodiff.h"

static int32_t op1(nnc_graph *g, nnc_op op, int32_t a, const nnc_attrs *attrs, nnc_status *st) {
  return nnc_graph_op(g, op, &a, 1, attrs, st);
}

static int32_t op2(nnc_graph *g, nnc_op op, int32_t a, int32_t b, const nnc_attrs *attrs, nnc_status *st) {
  int32_t src[2] = {a, b};
  return nnc_graph_op(g, op, src, 2, attrs, st);
}

/* Each rule sets dsrc and returns -1 if any node could not be built. */
static int built(const int32_t *dsrc, int count) {
  for (int i = 0; i < count; i++)
    if (dsrc[i] == -2) return -1;
  return 0;
}
#define OR_FAIL(x) ((x) < 0 ? -2 : (x))

#define NO_GRADIENT(name)                                                                            \
  int nnc_grad_##name(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC], \
                      nnc_status *st) {                                                              \
    (void)g, (void)n, (void)id, (void)dy, (void)dsrc, (void)st;                                      \
    return 0;                                                                                        \
  }

NO_GRADIENT(input)
NO_GRADIENT(param)
NO_GRADIENT(state)
NO_GRADIENT(bn_stats)
NO_GRADIENT(batch_norm_train_grad)
NO_GRADIENT(bn_gamma_grad)
NO_GRADIENT(bn_moving)
NO_GRADIENT(bn_fold)
NO_GRADIENT(scale_shift_grad)
NO_GRADIENT(fill)
NO_GRADIENT(correct)
NO_GRADIENT(allreduce)
NO_GRADIENT(bias_grad)
NO_GRADIENT(conv2d_grad_input)
NO_GRADIENT(conv2d_grad_kernel)
NO_GRADIENT(max_pool_grad)
NO_GRADIENT(avg_pool_grad)
NO_GRADIENT(softmax_grad)
NO_GRADIENT(xent_logits_grad)
NO_GRADIENT(xent_probs_grad)
NO_GRADIENT(mse_grad)
NO_GRADIENT(square)
NO_GRADIENT(ema)
NO_GRADIENT(adam_update)
NO_GRADIENT(rmsprop_update)
NO_GRADIENT(sgd_update)
NO_GRADIENT(momentum_velocity)
NO_GRADIENT(nesterov_update)
NO_GRADIENT(sub)
NO_GRADIENT(maximum)
NO_GRADIENT(rmsprop_momentum)

/* y = a @ w: da = dy @ w^T, dw = a^T @ dy (a as rows of features). */
int nnc_grad_matmul(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC], nnc_status *st) {
  (void)id;
  char where[256];
  if (n->attrs.trans_a || n->attrs.trans_b || g->nodes[n->src[0]].rank != 2)
    return nnc_fail(st, "%s: training supports matmul of a matrix by an untransposed matrix only",
                    nnc_node_where(g, id, where, sizeof where));
  nnc_attrs tb = {0}, ta = {0};
  tb.trans_b = 1;
  ta.trans_a = 1;
  dsrc[0] = OR_FAIL(op2(g, NNC_OP_MATMUL, dy, n->src[1], &tb, st));
  dsrc[1] = OR_FAIL(op2(g, NNC_OP_MATMUL, n->src[0], dy, &ta, st));
  return built(dsrc, 2);
}

int nnc_grad_bias_add(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC], nnc_status *st) {
  (void)n, (void)id;
  dsrc[0] = dy;
  dsrc[1] = OR_FAIL(op1(g, NNC_OP_BIAS_GRAD, dy, NULL, st));
  return built(dsrc, 2);
}

int nnc_grad_conv2d(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC], nnc_status *st) {
  (void)id;
  const nnc_node *x = &g->nodes[n->src[0]], *w = &g->nodes[n->src[1]];
  nnc_attrs to_input = n->attrs, to_kernel = n->attrs;
  to_input.shape_rank = 3;
  for (int i = 0; i < 3; i++) to_input.shape[i] = x->shape[i + 1];
  to_kernel.shape_rank = 2;
  to_kernel.shape[0] = w->shape[0];
  to_kernel.shape[1] = w->shape[1];
  dsrc[0] = OR_FAIL(op2(g, NNC_OP_CONV2D_GRAD_INPUT, dy, n->src[1], &to_input, st));
  dsrc[1] = OR_FAIL(op2(g, NNC_OP_CONV2D_GRAD_KERNEL, n->src[0], dy, &to_kernel, st));
  return built(dsrc, 2);
}

int nnc_grad_max_pool(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC], nnc_status *st) {
  (void)id;
  dsrc[0] = OR_FAIL(op2(g, NNC_OP_MAX_POOL_GRAD, n->src[0], dy, &n->attrs, st));
  return built(dsrc, 1);
}

int nnc_grad_avg_pool(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC], nnc_status *st) {
  (void)id;
  nnc_attrs a = n->attrs;
  a.shape_rank = 2;
  a.shape[0] = g->nodes[n->src[0]].shape[1];
  a.shape[1] = g->nodes[n->src[0]].shape[2];
  dsrc[0] = OR_FAIL(op1(g, NNC_OP_AVG_POOL_GRAD, dy, &a, st));
  return built(dsrc, 1);
}

int nnc_grad_reshape(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC], nnc_status *st) {
  (void)id;
  const nnc_node *x = &g->nodes[n->src[0]];
  nnc_attrs a = {0};
  a.shape_rank = x->rank - 1;
  memcpy(a.shape, x->shape + 1, sizeof a.shape[0] * (size_t)a.shape_rank);
  dsrc[0] = OR_FAIL(op1(g, NNC_OP_RESHAPE, dy, &a, st));
  return built(dsrc, 1);
}

/* Softmax, and the activations below, differentiate through their output y = node id. */
static int grad_from_output(nnc_graph *g, nnc_op op, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC], nnc_status *st) {
  dsrc[0] = OR_FAIL(op2(g, op, id, dy, NULL, st));
  return built(dsrc, 1);
}

/* The activations of ir/pointwise.def differentiate through their output
 * y = node id, by their GRAD op (with the node's alpha); the gradients
 * themselves are not differentiated. */
#define ACTIVATION(ENUM, name, GRAD, ...)                                                                  \
  int nnc_grad_##name(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC],  \
                      nnc_status *st) {                                                                    \
    nnc_attrs a = {.alpha = n->attrs.alpha}; /* n may move as the graph grows */                          \
    dsrc[0] = OR_FAIL(op2(g, NNC_OP_##GRAD, id, dy, &a, st));                                             \
    return built(dsrc, 1);                                                                                 \
  }
#define ACTIVATION_GRAD(ENUM, name, ...) NO_GRADIENT(name)
#define POINTWISE(ENUM, name, ...)
#define RANDOM(ENUM, name, ...)
#include "ir/pointwise.def"
#undef ACTIVATION
#undef ACTIVATION_GRAD
#undef POINTWISE
#undef RANDOM

int nnc_grad_softmax(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC], nnc_status *st) {
  (void)n;
  return grad_from_output(g, NNC_OP_SOFTMAX_GRAD, id, dy, dsrc, st);
}

/* The same rate and stream on a tensor of the same size draws the same
 * mask, so dropout of dy zeroes exactly what the forward zeroed. */
int nnc_grad_dropout(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC], nnc_status *st) {
  (void)id;
  dsrc[0] = OR_FAIL(op1(g, NNC_OP_DROPOUT, dy, &n->attrs, st));
  return built(dsrc, 1);
}

int nnc_grad_add(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC], nnc_status *st) {
  (void)g, (void)n, (void)id, (void)st;
  dsrc[0] = dsrc[1] = dy;
  return 0;
}

int nnc_grad_mul(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC], nnc_status *st) {
  (void)id;
  dsrc[0] = OR_FAIL(op2(g, NNC_OP_MUL, dy, n->src[1], NULL, st));
  dsrc[1] = OR_FAIL(op2(g, NNC_OP_MUL, dy, n->src[0], NULL, st));
  return built(dsrc, 2);
}

/* Losses are differentiated only as the root of the backward pass. */
static int grad_of_loss(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, nnc_op grad_op, int32_t dsrc[NNC_MAX_SRC],
                        nnc_status *st) {
  char where[256];
  if (dy >= 0) return nnc_fail(st, "%s: a loss can only be the final output", nnc_node_where(g, id, where, sizeof where));
  dsrc[0] = OR_FAIL(op2(g, grad_op, n->src[0], n->src[1], NULL, st));
  return built(dsrc, 1);
}

int nnc_grad_xent_logits(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC], nnc_status *st) {
  return grad_of_loss(g, n, id, dy, NNC_OP_XENT_LOGITS_GRAD, dsrc, st);
}

int nnc_grad_xent_probs(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC], nnc_status *st) {
  return grad_of_loss(g, n, id, dy, NNC_OP_XENT_PROBS_GRAD, dsrc, st);
}

int nnc_grad_mse(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC], nnc_status *st) {
  return grad_of_loss(g, n, id, dy, NNC_OP_MSE_GRAD, dsrc, st);
}

/* The training form's statistics are functions of x, so dx comes through
 * them too (batch_norm_train_grad); stats itself takes no gradient. */
int nnc_grad_batch_norm_train(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC],
                              nnc_status *st) {
  (void)id;
  nnc_attrs a = {0};
  a.eps = n->attrs.eps;
  int32_t dx_src[4] = {n->src[0], dy, n->src[1], n->src[2]};
  int32_t dgamma_src[3] = {n->src[0], dy, n->src[1]};
  dsrc[0] = OR_FAIL(nnc_graph_op(g, NNC_OP_BATCH_NORM_TRAIN_GRAD, dx_src, 4, &a, st));
  dsrc[2] = OR_FAIL(nnc_graph_op(g, NNC_OP_BN_GAMMA_GRAD, dgamma_src, 3, &a, st));
  dsrc[3] = OR_FAIL(op1(g, NNC_OP_BIAS_GRAD, dy, NULL, st));
  return built(dsrc, 4);
}

/* The inference form, in a train step only for a layer with trainable=false:
 * its table is made of weights that take no gradient. */
int nnc_grad_scale_shift(nnc_graph *g, const nnc_node *n, int32_t id, int32_t dy, int32_t dsrc[NNC_MAX_SRC],
                         nnc_status *st) {
  (void)id;
  dsrc[0] = OR_FAIL(op2(g, NNC_OP_SCALE_SHIFT_GRAD, dy, n->src[1], NULL, st));
  return built(dsrc, 1);
}
