/* Shape inference and cost for losses and the accuracy metric. Losses take
 * (prediction, labels) and give the batch mean as f32[]; labels are i32[B] (sparse) or f32 with the prediction's shape (one-hot).
 *   xent_logits(z, y)         cross-entropy of softmax(z), by exact log-softmax
 *   xent_logits_grad(z, y)    its gradient wrt z: (softmax(z) * sum(y) - y) / B
 *   xent_probs(p, y)          cross-entropy of probabilities, clipped as Keras does
 *                             (one-hot: divide by the row sum, then clip; sparse:
 *                             clip, then divide by the clipped row's sum)
 *   mse(p, y), and *_grad     gradients of the mean loss wrt the prediction
 *   correct(p, y)             how many rows are predicted right, as f32[]: a single
 *                             column is thresholded at 0.5, wider rows use the argmax
 * The optimizer updates are rows of ir/pointwise.def (ir/ops_elementwise.c). */
#include <string.h>

#include "ir/op.h"

#define SRC(g, n, i) (&(g)->nodes[(n)->src[i]])

static int labels_fit(const nnc_node *p, const nnc_node *y) {
  if (y->dtype == NNC_I32) return p->rank == 2 && y->rank == 1 && (y->shape[0] == p->shape[0]);
  return y->rank == p->rank && memcmp(y->shape, p->shape, sizeof y->shape[0] * (size_t)y->rank) == 0;
}

static int check_labels(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  const nnc_node *p = SRC(g, n, 0), *y = SRC(g, n, 1);
  char tp[128], ty[128];
  if (p->dtype != NNC_F32)
    return nnc_infer_fail(g, n, st, "predictions must be f32, got %s", nnc_type_str(p, tp, sizeof tp));
  if (p->rank < 1) return nnc_infer_fail(g, n, st, "predictions %s need a batch axis", nnc_type_str(p, tp, sizeof tp));
  if (!labels_fit(p, y))
    return nnc_infer_fail(g, n, st, "labels %s do not fit predictions %s (sparse labels are i32[batch], one-hot labels "
                          "have the predictions' shape)", nnc_type_str(y, ty, sizeof ty), nnc_type_str(p, tp, sizeof tp));
  return 0;
}

static int infer_scalar_of_labels(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  if (check_labels(g, n, st)) return -1;
  n->dtype = NNC_F32;
  n->rank = 0;
  return 0;
}

static int infer_grad_of_labels(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  if (check_labels(g, n, st)) return -1;
  const nnc_node *p = SRC(g, n, 0);
  n->dtype = NNC_F32;
  n->rank = p->rank;
  memcpy(n->shape, p->shape, sizeof n->shape);
  return 0;
}

int nnc_infer_xent_logits(const nnc_graph *g, nnc_node *n, nnc_status *st) { return infer_scalar_of_labels(g, n, st); }
int nnc_infer_xent_probs(const nnc_graph *g, nnc_node *n, nnc_status *st) { return infer_scalar_of_labels(g, n, st); }
int nnc_infer_correct(const nnc_graph *g, nnc_node *n, nnc_status *st) { return infer_scalar_of_labels(g, n, st); }
int nnc_infer_xent_logits_grad(const nnc_graph *g, nnc_node *n, nnc_status *st) { return infer_grad_of_labels(g, n, st); }
int nnc_infer_xent_probs_grad(const nnc_graph *g, nnc_node *n, nnc_status *st) { return infer_grad_of_labels(g, n, st); }

int nnc_infer_mse(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  if (SRC(g, n, 1)->dtype != NNC_F32) return check_labels(g, n, st) ? -1 : nnc_infer_fail(g, n, st, "mse needs f32 targets");
  return infer_scalar_of_labels(g, n, st);
}

int nnc_infer_mse_grad(const nnc_graph *g, nnc_node *n, nnc_status *st) {
  if (SRC(g, n, 1)->dtype != NNC_F32) return nnc_infer_fail(g, n, st, "mse needs f32 targets");
  return infer_grad_of_labels(g, n, st);
}

static void cost_loss(const nnc_graph *g, const nnc_node *n, nnc_cost *c) {
  double count = (double)nnc_node_numel(SRC(g, n, 0));
  c->flops = 5.0 * count;
  c->bytes = 8.0 * count;
}

void nnc_cost_xent_logits(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_loss(g, n, c); }
void nnc_cost_xent_logits_grad(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_loss(g, n, c); }
void nnc_cost_xent_probs(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_loss(g, n, c); }
void nnc_cost_xent_probs_grad(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_loss(g, n, c); }
void nnc_cost_mse(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_loss(g, n, c); }
void nnc_cost_mse_grad(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_loss(g, n, c); }
void nnc_cost_correct(const nnc_graph *g, const nnc_node *n, nnc_cost *c) { cost_loss(g, n, c); }
