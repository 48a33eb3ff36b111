/* CUDA emitters for losses and the accuracy metric (definitions in
 * ir/ops_loss.c, reference in runtime/interp/ref_loss.c; the optimizer updates
 * are rows of ir/pointwise.def, emitted by emit_elementwise.c).
 *
 * A loss or metric is one number for the batch: one block sums it, in
 * double as the reference does, each thread over rows t, t + threads, ...,
 * then the threads' sums pairwise (nnc_cuda_block_sum), an order fixed by
 * the shape. Gradients of the losses take one row per work item. Whether the
 * labels are class indices (i32) or one-hot rows (f32) is known when the
 * kernel is generated, so each kernel reads them one way only.
 *
 * Math on doubles is written with explicit (double) operands: in CUDA C++,
 * exp or log of a float would pick the float overload. */
#include <stdio.h>

#include "codegen/cuda.h"
#include "ir/op.h"

#define NODE(c, id) (&nnc_cuda_graph(c)->nodes[id])

/* Keras clips probabilities to [eps, 1 - eps] before the log. */
#define KERAS_EPSILON "1e-07f"

typedef struct rows {
  long long count, width;
  int sparse;
  const char *p, *y; /* buffer names of the predictions and labels */
} rows;

static rows rows_of(nnc_cuda_ctx *c, int32_t id) {
  const nnc_node *p = nnc_cuda_src(c, id, 0);
  rows r = {p->shape[0], p->shape[0] ? nnc_node_numel(p) / p->shape[0] : 0, nnc_cuda_src(c, id, 1)->dtype == NNC_I32,
            nnc_cuda_buf(c, id, 0), nnc_cuda_buf(c, id, 1)};
  return r;
}

/* The label weight of class `j` in row `b`, as a float expression. */
static const char *label_at(const rows *r, const char *b, const char *j, char *buf, size_t size) {
  if (r->sparse) snprintf(buf, size, "(%s[%s] == %s ? 1.0f : 0.0f)", r->y, b, j);
  else snprintf(buf, size, "%s[%s * %lldLL + %s]", r->y, b, r->width, j);
  return buf;
}

/* A batch-sized sum: the threads of its one block, a power of two, about
 * one per row, at least a warp. */
enum { SUM_MIN_THREADS = 32, SUM_MAX_THREADS = 256 };

static unsigned sum_threads(long long rows) {
  unsigned t = SUM_MIN_THREADS;
  while (t < SUM_MAX_THREADS && t < rows) t *= 2;
  return t;
}

/* Opens the loop of a batch sum over `count` items (nnc_i64 `name`), each
 * thread adding into its `double total`. */
static unsigned open_batch_sum(nnc_cuda_ctx *c, const char *name, long long count) {
  unsigned threads = sum_threads(count);
  nnc_cuda_work_blocks(c, 1, threads);
  nnc_cuda_line(c, "double total = 0.0;");
  nnc_cuda_open(c, "for (nnc_i64 %s = threadIdx.x; %s < %lldLL; %s += %u) {", name, name, count, name, threads);
  return threads;
}

/* Closes it: thread 0 stores the block's total over `divisor` (none: 0). */
static void close_batch_sum(nnc_cuda_ctx *c, unsigned threads, long long divisor) {
  char value[96];
  nnc_cuda_close(c);
  nnc_cuda_block_sum(c, "double", "total", threads, 1);
  if (divisor) snprintf(value, sizeof value, "(float)(nnc_sum[0] / %lld.0)", divisor);
  else snprintf(value, sizeof value, "(float)nnc_sum[0]");
  nnc_cuda_open(c, "if (threadIdx.x == 0) {");
  nnc_cuda_store(c, "0", value);
  nnc_cuda_close(c);
}

/* Declares `top` and `lse` for row pointer `zr`: log softmax(z)_j = z_j - top - lse. */
static void emit_log_sum_exp(nnc_cuda_ctx *c, const rows *r) {
  nnc_cuda_line(c, "float top = zr[0];");
  nnc_cuda_line(c, "for (nnc_i64 j = 1; j < %lldLL; j++) top = zr[j] > top ? zr[j] : top;", r->width);
  nnc_cuda_line(c, "double sum = 0.0;");
  nnc_cuda_line(c, "for (nnc_i64 j = 0; j < %lldLL; j++) sum += exp((double)zr[j] - top);", r->width);
  nnc_cuda_line(c, "const double lse = log(sum);");
}

int nnc_cuda_emit_xent_logits(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  rows r = rows_of(c, id);
  char label[160];
  unsigned threads = open_batch_sum(c, "row", r.count);
  nnc_cuda_line(c, "const float *zr = %s + row * %lldLL;", r.p, r.width);
  emit_log_sum_exp(c, &r);
  nnc_cuda_open(c, "for (nnc_i64 j = 0; j < %lldLL; j++) {", r.width);
  nnc_cuda_line(c, "const float yl = %s;", label_at(&r, "row", "j", label, sizeof label));
  nnc_cuda_line(c, "if (yl != 0.0f) total -= yl * ((double)zr[j] - top - lse);");
  nnc_cuda_close(c);
  close_batch_sum(c, threads, r.count);
  return NNC_EMIT_OK;
}

/* (softmax(z) * sum(y) - y) / B, one row per work item. */
int nnc_cuda_emit_xent_logits_grad(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  rows r = rows_of(c, id);
  char label[160], index[64], value[256];
  nnc_cuda_work(c, r.count);
  nnc_cuda_line(c, "const float *zr = %s + w * %lldLL;", r.p, r.width);
  emit_log_sum_exp(c, &r);
  nnc_cuda_line(c, "double ysum = 0.0;");
  nnc_cuda_line(c, "for (nnc_i64 j = 0; j < %lldLL; j++) ysum += %s;", r.width, label_at(&r, "w", "j", label, sizeof label));
  nnc_cuda_open(c, "for (nnc_i64 j = 0; j < %lldLL; j++) {", r.width);
  nnc_cuda_line(c, "const double p = exp((double)zr[j] - top - lse);");
  snprintf(index, sizeof index, "w * %lldLL + j", r.width);
  snprintf(value, sizeof value, "(float)((p * ysum - %s) / %lld.0)", label_at(&r, "w", "j", label, sizeof label), r.count);
  nnc_cuda_store(c, index, value);
  nnc_cuda_close(c);
  return NNC_EMIT_OK;
}

/* Keras 2's probability cross-entropy takes two routes to the log
 * (runtime/interp/ref_loss.c): the categorical form divides by the row sum S and
 * then clips, q_j = clip(p_j / S); the sparse form clips and renormalises,
 * q_j = clip(p_j) / C with C the sum of the clipped row. */
#define CLIP(x) "(" x " < " KERAS_EPSILON " ? " KERAS_EPSILON " : " x " > 1.0f - " KERAS_EPSILON " ? 1.0f - " KERAS_EPSILON " : " x ")"

/* Declares `s`, S or C of row pointer `pr`. */
static void emit_row_sum(nnc_cuda_ctx *c, const rows *r) {
  nnc_cuda_line(c, "double s = 0.0;");
  nnc_cuda_line(c, "for (nnc_i64 j = 0; j < %lldLL; j++) s += %s;", r->width, r->sparse ? CLIP("pr[j]") : "pr[j]");
}

int nnc_cuda_emit_xent_probs(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  rows r = rows_of(c, id);
  char label[160];
  unsigned threads = open_batch_sum(c, "row", r.count);
  nnc_cuda_line(c, "const float *pr = %s + row * %lldLL;", r.p, r.width);
  emit_row_sum(c, &r);
  nnc_cuda_open(c, "for (nnc_i64 j = 0; j < %lldLL; j++) {", r.width);
  nnc_cuda_line(c, "const float yl = %s;", label_at(&r, "row", "j", label, sizeof label));
  if (r.sparse) nnc_cuda_line(c, "const double q = " CLIP("pr[j]") " / s;");
  else nnc_cuda_line(c, "const float ps = (float)(pr[j] / s);"), nnc_cuda_line(c, "const double q = " CLIP("ps") ";");
  nnc_cuda_line(c, "if (yl != 0.0f) total -= yl * log(q);");
  nnc_cuda_close(c);
  close_batch_sum(c, threads, r.count);
  return NNC_EMIT_OK;
}

/* The gradient wrt p_k; a clipped value passes no gradient through the clip.
 *   categorical: (Y - [q_k unclipped] y_k / q_k) / S, Y = sum of y over the unclipped q
 *   sparse:      [p_k unclipped] (Y / C - y_k / p_k), Y = sum of y */
int nnc_cuda_emit_xent_probs_grad(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  rows r = rows_of(c, id);
  char label[160], index[64], value[96];
  const char *q = r.sparse ? "const float q = pr[j];" : "const float q = (float)(pr[j] / s);";
  nnc_cuda_work(c, r.count);
  nnc_cuda_line(c, "const float *pr = %s + w * %lldLL;", r.p, r.width);
  emit_row_sum(c, &r);
  nnc_cuda_line(c, "double weight = 0.0;");
  nnc_cuda_open(c, "for (nnc_i64 j = 0; j < %lldLL; j++) {", r.width);
  if (r.sparse) {
    nnc_cuda_line(c, "weight += %s;", label_at(&r, "w", "j", label, sizeof label));
  } else {
    nnc_cuda_line(c, "%s", q);
    nnc_cuda_line(c, "if (q == " CLIP("q") ") weight += %s;", label_at(&r, "w", "j", label, sizeof label));
  }
  nnc_cuda_close(c);
  nnc_cuda_open(c, "for (nnc_i64 j = 0; j < %lldLL; j++) {", r.width);
  nnc_cuda_line(c, "%s", q);
  nnc_cuda_line(c, "const int inside = q == " CLIP("q") ";");
  nnc_cuda_line(c, "const double yl = %s;", label_at(&r, "w", "j", label, sizeof label));
  if (r.sparse) nnc_cuda_line(c, "const double gr = inside ? weight / s - yl / q : 0.0;");
  else nnc_cuda_line(c, "const double gr = (weight - (inside ? yl / q : 0.0)) / s;");
  snprintf(index, sizeof index, "w * %lldLL + j", r.width);
  snprintf(value, sizeof value, "(float)(gr / %lld.0)", r.count);
  nnc_cuda_store(c, index, value);
  nnc_cuda_close(c);
  return NNC_EMIT_OK;
}

int nnc_cuda_emit_mse(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  long long count = nnc_node_numel(nnc_cuda_src(c, id, 0));
  const char *p = nnc_cuda_buf(c, id, 0), *y = nnc_cuda_buf(c, id, 1);
  unsigned threads = open_batch_sum(c, "i", count);
  nnc_cuda_line(c, "const double d = (double)%s[i] - %s[i];", p, y);
  nnc_cuda_line(c, "total += d * d;");
  close_batch_sum(c, threads, count);
  return NNC_EMIT_OK;
}

int nnc_cuda_emit_mse_grad(nnc_cuda_ctx *c, int32_t id) {
  long long count = nnc_node_numel(NODE(c, id));
  return nnc_cuda_pointwise(c, id, "(float)(2.0 * ((double)%s - %s) / %lld.0)", nnc_cuda_val(c, id, 0),
                            nnc_cuda_val(c, id, 1), count);
}

/* Declares `name`, the first index of the largest of `width` values at `row`. */
static void emit_argmax(nnc_cuda_ctx *c, const char *name, const char *row, long long width) {
  nnc_cuda_line(c, "nnc_i64 %s = 0;", name);
  nnc_cuda_line(c, "for (nnc_i64 j = 1; j < %lldLL; j++) if (%s[j] > %s[%s]) %s = j;", width, row, row, name, name);
}

/* Rows predicted right, following the labels as Keras's "accuracy" does:
 * indices against the argmax, one-hot rows by argmaxes, a single output
 * thresholded at 0.5. */
int nnc_cuda_emit_correct(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  rows r = rows_of(c, id);
  unsigned threads = open_batch_sum(c, "row", r.count);
  nnc_cuda_line(c, "const float *pr = %s + row * %lldLL;", r.p, r.width);
  if (r.sparse) {
    emit_argmax(c, "best", "pr", r.width);
    nnc_cuda_line(c, "total += best == %s[row];", r.y);
  } else if (r.width == 1) {
    nnc_cuda_line(c, "total += (pr[0] > 0.5f) == (%s[row] > 0.5f);", r.y);
  } else {
    nnc_cuda_line(c, "const float *yr = %s + row * %lldLL;", r.y, r.width);
    emit_argmax(c, "best", "pr", r.width);
    emit_argmax(c, "want", "yr", r.width);
    nnc_cuda_line(c, "total += best == want;");
  }
  close_batch_sum(c, threads, 0); /* a count of rows: exact in any order */
  return NNC_EMIT_OK;
}
