/* Batch normalization on the CPU backend (ir/ops_norm.c says what each op
 * computes). Per-channel sums split the rows into PARTS fixed parts, summed
 * in double by whichever thread takes them and added in part order, so the
 * result does not depend on the thread count; the per-element passes split
 * rows between threads. bn_moving and bn_fold, a few values per channel,
 * run the reference kernels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/cpu/cpu.h"
#include "ir/status.h"

#define SRC(a, i) (&(a)->k.g->nodes[(a)->k.n->src[i]])
#define PARTS 16

static int64_t channels_of(const nnc_node *x) { return x->shape[x->rank - 1]; }

/* ---- elementwise with a per-channel table --------------------------------- */

/* Element first + i is channel (first + i) % C: a pointwise group may run a
 * block that starts mid-row. */
static void scale_shift_range(const nnc_cpu_args *a, int64_t begin, int64_t end) {
  const float *x = a->k.in[0], *st = a->k.in[1];
  float *out = a->k.out;
  int64_t c = channels_of(a->k.n);
  for (int64_t i = begin; i < end; i++) {
    int64_t j = (a->first + i) % c;
    out[i] = x[i] * st[j] + st[c + j];
  }
}

static void scale_shift_grad_range(const nnc_cpu_args *a, int64_t begin, int64_t end) {
  const float *dy = a->k.in[0], *st = a->k.in[1];
  float *out = a->k.out;
  int64_t c = channels_of(a->k.n);
  for (int64_t i = begin; i < end; i++) out[i] = dy[i] * st[(a->first + i) % c];
}

typedef struct range_task {
  const nnc_cpu_args *args;
  nnc_cpu_range_fn *range;
} range_task;

static void range_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
  const range_task *t = ctx;
  (void)thread;
  t->range(t->args, begin, end);
}

static void run_range(const nnc_cpu_args *a, nnc_cpu_range_fn *range) {
  int64_t count = nnc_node_numel(a->k.n);
  range_task t = {a, range};
  nnc_cpu_parallel(count, nnc_cpu_grain(count, 2, 1 << 15), range_chunk, &t);
}

static void run_scale_shift(const nnc_cpu_args *a) { run_range(a, scale_shift_range); }
static void run_scale_shift_grad(const nnc_cpu_args *a) { run_range(a, scale_shift_grad_range); }

const nnc_cpu_kernel nnc_cpu_scale_shift = {.run = run_scale_shift, .range = scale_shift_range};
const nnc_cpu_kernel nnc_cpu_scale_shift_grad = {.run = run_scale_shift_grad, .range = scale_shift_grad_range};

/* ---- per-channel sums ------------------------------------------------------ */

/* What a part sums for channel j over its rows: x (mean), (x - mean)^2
 * (variance), or dy and dy * xhat (the gradients). */
typedef enum sum_kind { SUM_X, SUM_SQ_DEV, SUM_GRAD } sum_kind;

typedef struct sum_task {
  sum_kind kind;
  const float *x, *dy;
  const double *mean, *rstd;
  int64_t rows, c;
  double *partial; /* PARTS x 2C: part p's sums at p * 2C (second half: dy * xhat) */
} sum_task;

static void sum_parts(void *ctx, int64_t p0, int64_t p1, int thread) {
  const sum_task *t = ctx;
  (void)thread;
  for (int64_t p = p0; p < p1; p++) {
    double *s = t->partial + p * 2 * t->c, *s2 = s + t->c;
    memset(s, 0, sizeof(double) * 2 * (size_t)t->c);
    for (int64_t r = t->rows * p / PARTS; r < t->rows * (p + 1) / PARTS; r++) {
      const float *x = t->x + r * t->c;
      if (t->kind == SUM_X) {
        for (int64_t j = 0; j < t->c; j++) s[j] += x[j];
      } else if (t->kind == SUM_SQ_DEV) {
        for (int64_t j = 0; j < t->c; j++) s[j] += (x[j] - t->mean[j]) * (x[j] - t->mean[j]);
      } else {
        const float *dy = t->dy + r * t->c;
        for (int64_t j = 0; j < t->c; j++) {
          s[j] += dy[j];
          s2[j] += dy[j] * (x[j] - t->mean[j]) * t->rstd[j];
        }
      }
    }
  }
}

/* Sums over the rows into out[0..C) (and out[C..2C) for SUM_GRAD). */
static void channel_sums(sum_task *t, double *out) {
  t->partial = malloc(sizeof(double) * 2 * PARTS * (size_t)t->c);
  if (!t->partial) nnc_out_of_memory("batch-normalization scratch");
  nnc_cpu_parallel(PARTS, 1, sum_parts, t);
  memset(out, 0, sizeof(double) * 2 * (size_t)t->c);
  for (int p = 0; p < PARTS; p++)
    for (int64_t j = 0; j < 2 * t->c; j++) out[j] += t->partial[p * 2 * t->c + j];
  free(t->partial);
}

static void run_bn_stats(const nnc_cpu_args *a) {
  const nnc_node *xn = SRC(a, 0);
  int64_t c = channels_of(xn), rows = nnc_node_numel(xn) / c;
  double *sums = malloc(sizeof(double) * 4 * (size_t)c);
  if (!sums) nnc_out_of_memory("batch-normalization scratch");
  double *mean = sums + 2 * c;
  float *out = a->k.out;
  sum_task t = {SUM_X, a->k.in[0], NULL, NULL, NULL, rows, c, NULL};
  channel_sums(&t, sums);
  for (int64_t j = 0; j < c; j++) mean[j] = sums[j] / (double)rows;
  t.kind = SUM_SQ_DEV, t.mean = mean;
  channel_sums(&t, sums);
  for (int64_t j = 0; j < c; j++) {
    double var = sums[j] / (double)rows;
    out[j] = (float)mean[j];
    out[c + j] = (float)var;
    out[2 * c + j] = (float)(rows > 1 ? var * (double)rows / (double)(rows - 1) : var);
  }
  free(sums);
}

const nnc_cpu_kernel nnc_cpu_bn_stats = {.run = run_bn_stats};

/* ---- the training form and its gradients ----------------------------------- */

typedef struct apply_task {
  const nnc_cpu_args *args;
  const float *scale, *shift; /* forward: per channel */
  const double *mean, *rstd, *mean_dy, *mean_dy_xhat; /* gradient */
  int64_t c;
} apply_task;

static void forward_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
  const apply_task *t = ctx;
  const float *x = t->args->k.in[0], *mean = t->args->k.in[1];
  float *out = t->args->k.out;
  (void)thread;
  for (int64_t r = r0; r < r1; r++)
    for (int64_t j = 0; j < t->c; j++) out[r * t->c + j] = (x[r * t->c + j] - mean[j]) * t->scale[j] + t->shift[j];
}

static void run_batch_norm_train(const nnc_cpu_args *a) {
  const float *stats = a->k.in[1], *gamma = a->k.in[2], *beta = a->k.in[3];
  int64_t c = channels_of(a->k.n), rows = nnc_node_numel(a->k.n) / c;
  float *scale = malloc(sizeof(float) * (size_t)c);
  if (!scale) nnc_out_of_memory("batch-normalization scratch");
  for (int64_t j = 0; j < c; j++) scale[j] = gamma[j] / sqrtf(stats[c + j] + a->k.n->attrs.eps);
  apply_task t = {a, scale, beta, NULL, NULL, NULL, NULL, c};
  nnc_cpu_parallel(rows, nnc_cpu_grain(rows, 2, (1 << 15) / c + 1), forward_rows, &t);
  free(scale);
}

const nnc_cpu_kernel nnc_cpu_batch_norm_train = {.run = run_batch_norm_train};

/* mean and 1 / sqrt(var + eps) per channel, in double, from stats. */
static double *channel_moments(const float *stats, float eps, int64_t c) {
  double *m = malloc(sizeof(double) * 6 * (size_t)c);
  if (!m) nnc_out_of_memory("batch-normalization scratch");
  for (int64_t j = 0; j < c; j++) m[j] = stats[j], m[c + j] = 1.0 / sqrt((double)stats[c + j] + eps);
  return m;
}

static void grad_rows(void *ctx, int64_t r0, int64_t r1, int thread) {
  const apply_task *t = ctx;
  const float *x = t->args->k.in[0], *dy = t->args->k.in[1], *gamma = t->args->k.in[3];
  float *dx = t->args->k.out;
  (void)thread;
  for (int64_t r = r0; r < r1; r++)
    for (int64_t j = 0; j < t->c; j++) {
      int64_t i = r * t->c + j;
      double xhat = (x[i] - t->mean[j]) * t->rstd[j];
      dx[i] = (float)(gamma[j] * t->rstd[j] * (dy[i] - t->mean_dy[j] - xhat * t->mean_dy_xhat[j]));
    }
}

static void run_batch_norm_train_grad(const nnc_cpu_args *a) {
  int64_t c = channels_of(a->k.n), rows = nnc_node_numel(a->k.n) / c;
  double *m = channel_moments(a->k.in[2], a->k.n->attrs.eps, c), *sums = m + 2 * c, *means = m + 4 * c;
  sum_task t = {SUM_GRAD, a->k.in[0], a->k.in[1], m, m + c, rows, c, NULL};
  channel_sums(&t, sums);
  for (int64_t j = 0; j < 2 * c; j++) means[j] = sums[j] / (double)rows;
  apply_task at = {a, NULL, NULL, m, m + c, means, means + c, c};
  nnc_cpu_parallel(rows, nnc_cpu_grain(rows, 2, (1 << 15) / c + 1), grad_rows, &at);
  free(m);
}

const nnc_cpu_kernel nnc_cpu_batch_norm_train_grad = {.run = run_batch_norm_train_grad};

static void run_bn_gamma_grad(const nnc_cpu_args *a) {
  const nnc_node *xn = SRC(a, 0);
  int64_t c = channels_of(xn), rows = nnc_node_numel(xn) / c;
  double *m = channel_moments(a->k.in[2], a->k.n->attrs.eps, c), *sums = m + 2 * c;
  sum_task t = {SUM_GRAD, a->k.in[0], a->k.in[1], m, m + c, rows, c, NULL};
  channel_sums(&t, sums);
  float *out = a->k.out;
  for (int64_t j = 0; j < c; j++) out[j] = (float)sums[c + j];
  free(m);
}

const nnc_cpu_kernel nnc_cpu_bn_gamma_grad = {.run = run_bn_gamma_grad};
