/* Reference kernels for batch normalization (ir/ops_norm.c says what each
 * op computes). Channel c of an NHWC (or [batch, features]) tensor is every
 * C-th value; sums over a channel are taken in double, in row order. */
#include <math.h>

#include "ir/op.h"
#include "runtime/interp/interp.h"

#define SRC(k, i) (&(k)->g->nodes[(k)->n->src[i]])

static int64_t channels_of(const nnc_node *x) { return x->shape[x->rank - 1]; }

/* Two passes per channel, so the variance is not the difference of two
 * large sums. Row 2 is what Keras 2's fused path (4-D input,
 * tf.compat.v1.nn.fused_batch_norm) feeds the moving variance: TF's
 * FusedBatchNorm kernel scales the batch variance by n/(n-1). */
void nnc_ref_bn_stats(const nnc_kernel_args *k) {
  const nnc_node *xn = SRC(k, 0);
  const float *x = k->in[0];
  float *out = k->out;
  int64_t c = channels_of(xn), rows = nnc_node_numel(xn) / c;
  for (int64_t j = 0; j < c; j++) {
    double sum = 0, sq = 0;
    for (int64_t r = 0; r < rows; r++) sum += x[r * c + j];
    double mean = sum / (double)rows;
    for (int64_t r = 0; r < rows; r++) sq += (x[r * c + j] - mean) * (x[r * c + j] - mean);
    double var = sq / (double)rows;
    out[j] = (float)mean;
    out[c + j] = (float)var;
    out[2 * c + j] = (float)(rows > 1 ? var * (double)rows / (double)(rows - 1) : var);
  }
}

void nnc_ref_batch_norm_train(const nnc_kernel_args *k) {
  const float *x = k->in[0], *stats = k->in[1], *gamma = k->in[2], *beta = k->in[3];
  float *out = k->out;
  int64_t c = channels_of(k->n), count = nnc_node_numel(k->n);
  for (int64_t i = 0; i < count; i++) {
    int64_t j = i % c;
    float scale = gamma[j] / sqrtf(stats[c + j] + k->n->attrs.eps);
    out[i] = (x[i] - stats[j]) * scale + beta[j];
  }
}

/* Per channel: sum(dy) and sum(dy * xhat), xhat = (x - mean) / sqrt(var + eps). */
static void grad_sums(const float *x, const float *dy, const float *stats, float eps, int64_t rows, int64_t c,
                      int64_t j, double *sum_dy, double *sum_dy_xhat) {
  double rstd = 1.0 / sqrt((double)stats[c + j] + eps);
  *sum_dy = 0, *sum_dy_xhat = 0;
  for (int64_t r = 0; r < rows; r++) {
    double d = dy[r * c + j];
    *sum_dy += d;
    *sum_dy_xhat += d * (x[r * c + j] - (double)stats[j]) * rstd;
  }
}

void nnc_ref_batch_norm_train_grad(const nnc_kernel_args *k) {
  const float *x = k->in[0], *dy = k->in[1], *stats = k->in[2], *gamma = k->in[3];
  float *dx = k->out;
  float eps = k->n->attrs.eps;
  int64_t c = channels_of(k->n), rows = nnc_node_numel(k->n) / c;
  for (int64_t j = 0; j < c; j++) {
    double sum_dy, sum_dy_xhat, rstd = 1.0 / sqrt((double)stats[c + j] + eps);
    grad_sums(x, dy, stats, eps, rows, c, j, &sum_dy, &sum_dy_xhat);
    double mean_dy = sum_dy / (double)rows, mean_dy_xhat = sum_dy_xhat / (double)rows;
    for (int64_t r = 0; r < rows; r++) {
      double xhat = (x[r * c + j] - (double)stats[j]) * rstd;
      dx[r * c + j] = (float)(gamma[j] * rstd * (dy[r * c + j] - mean_dy - xhat * mean_dy_xhat));
    }
  }
}

void nnc_ref_bn_gamma_grad(const nnc_kernel_args *k) {
  const nnc_node *xn = SRC(k, 0);
  int64_t c = channels_of(xn), rows = nnc_node_numel(xn) / c;
  float *out = k->out;
  for (int64_t j = 0; j < c; j++) {
    double sum_dy, sum_dy_xhat;
    grad_sums(k->in[0], k->in[1], k->in[2], k->n->attrs.eps, rows, c, j, &sum_dy, &sum_dy_xhat);
    out[j] = (float)sum_dy_xhat;
  }
}

void nnc_ref_bn_moving(const nnc_kernel_args *k) {
  const float *moving = k->in[0], *stat = (const float *)k->in[1] + k->n->attrs.index * k->n->shape[0];
  float *out = k->out;
  float momentum = k->n->attrs.alpha;
  for (int64_t j = 0; j < k->n->shape[0]; j++) out[j] = moving[j] * momentum + stat[j] * (1.0f - momentum);
}

void nnc_ref_bn_fold(const nnc_kernel_args *k) {
  const float *mean = k->in[0], *var = k->in[1], *gamma = k->in[2], *beta = k->in[3];
  float *out = k->out;
  int64_t c = k->n->shape[1];
  for (int64_t j = 0; j < c; j++) {
    float scale = gamma[j] / sqrtf(var[j] + k->n->attrs.eps);
    out[j] = scale;
    out[c + j] = beta[j] - mean[j] * scale;
  }
}

void nnc_ref_scale_shift(const nnc_kernel_args *k) {
  const float *x = k->in[0], *st = k->in[1];
  float *out = k->out;
  int64_t c = channels_of(k->n), count = nnc_node_numel(k->n);
  for (int64_t i = 0; i < count; i++) out[i] = x[i] * st[i % c] + st[c + i % c];
}

void nnc_ref_scale_shift_grad(const nnc_kernel_args *k) {
  const float *dy = k->in[0], *st = k->in[1];
  float *out = k->out;
  int64_t c = channels_of(k->n), count = nnc_node_numel(k->n);
  for (int64_t i = 0; i < count; i++) out[i] = dy[i] * st[i % c];
}

void nnc_ref_fill(const nnc_kernel_args *k) {
  float *out = k->out;
  for (int64_t i = 0, count = nnc_node_numel(k->n); i < count; i++) out[i] = k->n->attrs.alpha;
}
