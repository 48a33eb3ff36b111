/* Reference kernels for losses and the accuracy metric (definitions in
 * ir/ops_loss.c; the optimizer updates are rows of ir/pointwise.def).
 * Keras 2's numerics throughout. */
#include <math.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/interp/interp.h"

#define SRC(k, i) (&(k)->g->nodes[(k)->n->src[i]])

/* Keras clips probabilities to [eps, 1 - eps] before the log. */
#define KERAS_EPSILON 1e-7f

typedef struct rows {
  int64_t count, width;
  int sparse; /* labels are class indices */
} rows;

static rows rows_of(const nnc_kernel_args *k) {
  const nnc_node *p = SRC(k, 0);
  rows r = {p->shape[0], nnc_node_numel(p) / (p->shape[0] ? p->shape[0] : 1), SRC(k, 1)->dtype == NNC_I32};
  return r;
}

/* The label weight of class j in row b: one-hot from an index, or as given. */
static float label_at(const nnc_kernel_args *k, rows r, int64_t b, int64_t j) {
  if (r.sparse) return ((const int32_t *)k->in[1])[b] == j ? 1.0f : 0.0f;
  return ((const float *)k->in[1])[b * r.width + j];
}

/* log softmax(z)_j = z_j - max - log(sum exp(z - max)): exact, no clipping. */
static double log_sum_exp(const float *z, int64_t width, float *top_out) {
  float top = z[0];
  for (int64_t j = 1; j < width; j++) top = z[j] > top ? z[j] : top;
  double sum = 0;
  for (int64_t j = 0; j < width; j++) sum += exp((double)z[j] - top);
  *top_out = top;
  return log(sum);
}

void nnc_ref_xent_logits(const nnc_kernel_args *k) {
  rows r = rows_of(k);
  const float *z = k->in[0];
  double total = 0;
  for (int64_t b = 0; b < r.count; b++) {
    float top;
    double lse = log_sum_exp(z + b * r.width, r.width, &top);
    for (int64_t j = 0; j < r.width; j++) {
      float y = label_at(k, r, b, j);
      if (y != 0) total -= y * ((double)z[b * r.width + j] - top - lse);
    }
  }
  *(float *)k->out = (float)(total / (double)r.count);
}

void nnc_ref_xent_logits_grad(const nnc_kernel_args *k) {
  rows r = rows_of(k);
  const float *z = k->in[0];
  float *out = k->out;
  for (int64_t b = 0; b < r.count; b++) {
    float top;
    double lse = log_sum_exp(z + b * r.width, r.width, &top), ysum = 0;
    for (int64_t j = 0; j < r.width; j++) ysum += label_at(k, r, b, j);
    for (int64_t j = 0; j < r.width; j++) {
      double p = exp((double)z[b * r.width + j] - top - lse);
      out[b * r.width + j] = (float)((p * ysum - label_at(k, r, b, j)) / (double)r.count);
    }
  }
}

/* Keras 2's probability cross-entropy takes two routes to the log. The
 * categorical form divides by the row sum S first and then clips:
 *   q_j = clip(p_j / S).
 * The sparse form clips and then hands log(clip(p)) to a log-softmax
 * (sparse_softmax_cross_entropy_with_logits), which renormalizes:
 *   q_j = c_j / C, c_j = clip(p_j), C = sum_j c_j.
 * For rows of probabilities that sum to one both are clip(p). */
static float clipped(float q) { return q < KERAS_EPSILON ? KERAS_EPSILON : q > 1 - KERAS_EPSILON ? 1 - KERAS_EPSILON : q; }

/* S for the categorical form, C for the sparse one. */
static double row_sum(const float *p, int64_t width, int sparse) {
  double s = 0;
  for (int64_t j = 0; j < width; j++) s += sparse ? clipped(p[j]) : p[j];
  return s;
}

void nnc_ref_xent_probs(const nnc_kernel_args *k) {
  rows r = rows_of(k);
  const float *p = k->in[0];
  double total = 0;
  for (int64_t b = 0; b < r.count; b++) {
    const float *row = p + b * r.width;
    double s = row_sum(row, r.width, r.sparse);
    for (int64_t j = 0; j < r.width; j++) {
      float y = label_at(k, r, b, j);
      double q = r.sparse ? clipped(row[j]) / s : clipped((float)(row[j] / s));
      if (y != 0) total -= y * log(q);
    }
  }
  *(float *)k->out = (float)(total / (double)r.count);
}

/* The gradient wrt p_k; a clipped value passes no gradient through the clip,
 * as tf.clip_by_value does.
 * Categorical, L = -sum_j y_j log clip(p_j / S):
 *   (Y - [q_k unclipped] y_k / q_k) / S, Y = sum of y_j over the unclipped q_j
 *   (every p_k still reaches the loss through S).
 * Sparse, L = -sum_j y_j (log c_j - log C):
 *   [p_k unclipped] (Y / C - y_k / p_k), Y = sum_j y_j = 1. */
void nnc_ref_xent_probs_grad(const nnc_kernel_args *k) {
  rows r = rows_of(k);
  const float *p = k->in[0];
  float *out = k->out;
  for (int64_t b = 0; b < r.count; b++) {
    const float *row = p + b * r.width;
    double s = row_sum(row, r.width, r.sparse), weight = 0;
    for (int64_t j = 0; j < r.width; j++) {
      float q = r.sparse ? row[j] : (float)(row[j] / s);
      if (r.sparse || q == clipped(q)) weight += label_at(k, r, b, j);
    }
    for (int64_t j = 0; j < r.width; j++) {
      float q = r.sparse ? row[j] : (float)(row[j] / s);
      int inside = q == clipped(q);
      double y = label_at(k, r, b, j), g;
      if (r.sparse) g = inside ? weight / s - y / q : 0;
      else g = (weight - (inside ? y / q : 0)) / s;
      out[b * r.width + j] = (float)(g / (double)r.count);
    }
  }
}

void nnc_ref_mse(const nnc_kernel_args *k) {
  const float *p = k->in[0], *y = k->in[1];
  int64_t count = nnc_node_numel(SRC(k, 0));
  double total = 0;
  for (int64_t i = 0; i < count; i++) total += ((double)p[i] - y[i]) * ((double)p[i] - y[i]);
  *(float *)k->out = (float)(total / (double)count);
}

void nnc_ref_mse_grad(const nnc_kernel_args *k) {
  const float *p = k->in[0], *y = k->in[1];
  float *out = k->out;
  int64_t count = nnc_node_numel(k->n);
  for (int64_t i = 0; i < count; i++) out[i] = (float)(2.0 * ((double)p[i] - y[i]) / (double)count);
}

static int64_t argmax(const float *row, int64_t width) {
  int64_t best = 0;
  for (int64_t j = 1; j < width; j++)
    if (row[j] > row[best]) best = j;
  return best;
}

/* Keras's "accuracy" follows the shapes: a single output column is
 * thresholded at 0.5 whatever the labels' type (binary accuracy), indices
 * compare with the argmax, and one-hot rows compare argmaxes. */
void nnc_ref_correct(const nnc_kernel_args *k) {
  rows r = rows_of(k);
  const float *p = k->in[0];
  double hits = 0;
  for (int64_t b = 0; b < r.count; b++) {
    const float *row = p + b * r.width;
    if (r.width == 1 && r.sparse)
      hits += (row[0] > 0.5f ? 1 : 0) == ((const int32_t *)k->in[1])[b];
    else if (r.width == 1)
      hits += (row[0] > 0.5f) == (((const float *)k->in[1])[b] > 0.5f);
    else if (r.sparse)
      hits += argmax(row, r.width) == ((const int32_t *)k->in[1])[b];
    else
      hits += argmax(row, r.width) == argmax((const float *)k->in[1] + b * r.width, r.width);
  }
  *(float *)k->out = (float)hits;
}
