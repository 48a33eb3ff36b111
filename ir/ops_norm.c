/* Shape inference and cost for batch normalization over the last axis
 * (Keras's BatchNormalization, axis=-1). C is the size of that axis; the
 * statistics of a channel are taken over every other axis.
 *   bn_stats(x)                            f32[3,C]: the batch's mean, its biased
 *                                          variance, and that variance times
 *                                          n/(n-1) (n values per channel; n = 1
 *                                          keeps it biased)
 *   batch_norm_train(x, stats, gamma, beta) {eps}
 *                                          gamma (x - mean) / sqrt(var + eps) + beta,
 *                                          mean and biased var from stats
 *   batch_norm_train_grad(x, dy, stats, gamma) {eps}
 *                                          its gradient wrt x, through the batch
 *                                          statistics too: gamma / sqrt(var + eps) *
 *                                          (dy - mean(dy) - xhat * mean(dy * xhat))
 *   bn_gamma_grad(x, dy, stats) {eps}      f32[C]: sum of dy * xhat per channel
 *   bn_moving(moving, stats) {alpha, index}
 *                                          moving * alpha + stats[index] * (1 - alpha):
 *                                          alpha is the layer's momentum
 *   bn_fold(mean, var, gamma, beta) {eps, alpha}
 *                                          f32[2,C]: scale = gamma / sqrt(var + eps),
 *                                          shift = beta - mean * scale (alpha, the
 *                                          momentum, rides along for the train step)
 *   scale_shift(x, st)                     x * st[0,c] + st[1,c]
 *   scale_shift_grad(dy, st)               dy * st[0,c]
 *   fill(like) {alpha}                     like's type, every value alpha; like's
 *                                          values are not read (gamma = 1 when
 *                                          scale=false, beta = 0 when center=false) */
#include <stdio.h>
#include <string.h>

#include "ir/op.h"

#define SRC(g, n, i) (&(g)->nodes[(n)->src[i]])

static int64_t channels(const nnc_node *x) { return x->rank ? x->shape[x->rank - 1] : 0; }

/* Operand i must be f32 with `rows` rows of C values (rows 0: f32[C]). */
static int check_channel_operand(const nnc_graph *g, nnc_node *n, nnc_status *st, int i, int64_t c, int rows) {
  const nnc_node *o = SRC(g, n, i);
  int ok = o->dtype == NNC_F32 && (rows ? o->rank == 2 && o->shape[0] == rows && o->shape[1] == c
                                        : o->rank == 1 && o->shape[0] == c);
  if (ok) return 0;
  char want[64], t[128];
  if (rows) snprintf(want, sizeof want, "f32[%d,%lld]", rows, (long long)c);
  else snprintf(want, sizeof want, "f32[%lld]", (long long)c);
  return nnc_infer_fail(g, n, st, "operand %d is %s, expected %s (one value per channel of the last axis)", i,
                        nnc_type_str(o, t, sizeof t), want);
}

/* Operand i is the normalized tensor: f32 with a batch axis and channels. */
static int check_data(const nnc_graph *g, nnc_node *n, nnc_status *st, int i) {
  const nnc_node *x = SRC(g, n, i);
  char t[128];
  if (x->dtype != NNC_F32 || x->rank < 2)
    return nnc_infer_fail(g, n, st, "expects an f32 input with a batch axis and a channel axis, got %s",
                          nnc_type_str(x, t, sizeof t));
  return 0;
}

static void set_type(nnc_node *n, const nnc_node *like) {
  n->dtype = NNC_F32;
  n->rank = like->rank;
  memcpy(n->shape, like->shape, sizeof n->shape);
}

static void set_rows(nnc_node *n, int rows, int64_t c) {
  n->dtype = NNC_F32;
  n->rank = rows ? 2 : 1;
  n->shape[0] = rows ? rows : c;
  n->shape[1] = c;
}

/* dy (operand i) has x's (operand 0's) type. */
static int check_like_x(const nnc_graph *g, nnc_node *n, nnc_status *st, int i) {
  const nnc_node *x = SRC(g, n, 0), *d = SRC(g, n, i);
  char tx[128], td[128];
  if (d->dtype == NNC_F32 && d->rank == x->rank && !memcmp(d->shape, x->shape, sizeof x->shape[0] * (size_t)x->rank))
    return 0;
  return nnc_infer_fail(g, n, st, "operand %d is %s, expected the input's type %s", i, nnc_type_str(d, td, sizeof td),
                        nnc_type_str(x, tx, sizeof tx));
}

int nnc_infer_bn_stats(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  if (check_data(g, n, st, 0)) return -1;
  set_rows(n, 3, channels(SRC(g, n, 0)));
  return 0;
}

int nnc_infer_batch_norm_train(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  if (check_data(g, n, st, 0)) return -1;
  int64_t c = channels(SRC(g, n, 0));
  if (check_channel_operand(g, n, st, 1, c, 3) || check_channel_operand(g, n, st, 2, c, 0) ||
      check_channel_operand(g, n, st, 3, c, 0))
    return -1;
  set_type(n, SRC(g, n, 0));
  return 0;
}

int nnc_infer_batch_norm_train_grad(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  if (check_data(g, n, st, 0) || check_like_x(g, n, st, 1)) return -1;
  int64_t c = channels(SRC(g, n, 0));
  if (check_channel_operand(g, n, st, 2, c, 3) || check_channel_operand(g, n, st, 3, c, 0)) return -1;
  set_type(n, SRC(g, n, 0));
  return 0;
}

int nnc_infer_bn_gamma_grad(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  if (check_data(g, n, st, 0) || check_like_x(g, n, st, 1)) return -1;
  int64_t c = channels(SRC(g, n, 0));
  if (check_channel_operand(g, n, st, 2, c, 3)) return -1;
  set_rows(n, 0, c);
  return 0;
}

int nnc_infer_bn_moving(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *m = SRC(g, n, 0);
  char t[128];
  if (m->dtype != NNC_F32 || m->rank != 1)
    return nnc_infer_fail(g, n, st, "operand 0 is %s, expected f32[C]", nnc_type_str(m, t, sizeof t));
  if (check_channel_operand(g, n, st, 1, m->shape[0], 3)) return -1;
  if (n->attrs.index < 0 || n->attrs.index > 2)
    return nnc_infer_fail(g, n, st, "index %d names no row of the statistics (0 to 2)", n->attrs.index);
  set_rows(n, 0, m->shape[0]);
  return 0;
}

int nnc_infer_bn_fold(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *m = SRC(g, n, 0);
  char t[128];
  if (m->dtype != NNC_F32 || m->rank != 1)
    return nnc_infer_fail(g, n, st, "operand 0 is %s, expected f32[C]", nnc_type_str(m, t, sizeof t));
  for (int i = 1; i < 4; i++)
    if (check_channel_operand(g, n, st, i, m->shape[0], 0)) return -1;
  set_rows(n, 2, m->shape[0]);
  return 0;
}

static int infer_scale_shift(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  if (check_data(g, n, st, 0) || check_channel_operand(g, n, st, 1, channels(SRC(g, n, 0)), 2)) return -1;
  set_type(n, SRC(g, n, 0));
  return 0;
}

int nnc_infer_scale_shift(const nnc_graph *g, nnc_node *n, nnc_status *st) { return infer_scale_shift(g, n, st); }
int nnc_infer_scale_shift_grad(const nnc_graph *g, nnc_node *n, nnc_status *st) { return infer_scale_shift(g, n, st); }

int nnc_infer_fill(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *like = SRC(g, n, 0);
  char t[128];
  if (like->dtype != NNC_F32)
    return nnc_infer_fail(g, n, st, "operand 0 is %s, expected f32", nnc_type_str(like, t, sizeof t));
  set_type(n, like);
  return 0;
}

/* flops per element of the big operand, and how many times it is read. */
static void cost_norm(const nnc_graph *g, const nnc_node *n, nnc_cost *c, double flops_each, double passes) {
  double count = (double)nnc_node_numel(SRC(g, n, 0));
  c->flops = flops_each * count;
  c->bytes = 4.0 * count * passes + 4.0 * (double)nnc_node_numel(n);
}

void nnc_cost_bn_stats(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_norm(g, n, c, 3, 2); }
void nnc_cost_batch_norm_train(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_norm(g, n, c, 4, 1); }
void nnc_cost_batch_norm_train_grad(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_norm(g, n, c, 10, 4); }
void nnc_cost_bn_gamma_grad(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_norm(g, n, c, 4, 2); }
void nnc_cost_bn_moving(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_norm(g, n, c, 3, 2); }
void nnc_cost_bn_fold(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_norm(g, n, c, 6, 4); }
void nnc_cost_scale_shift(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_norm(g, n, c, 2, 1); }
void nnc_cost_scale_shift_grad(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_norm(g, n, c, 1, 1); }
void nnc_cost_fill(const nnc_graph *g, const nnc_node *n, nnc_cost *c) {
  (void)g;
  c->flops = 0;
  c->bytes = 4.0 * (double)nnc_node_numel(n);
}
