/* CUDA emitters for batch normalization: the reference kernels of
 * runtime/interp/ref_norm.c, term for term. The per-element ops are pointwise (and
 * so fuse into an epilogue: scale_shift after a conv2d or matmul is the
 * folded inference form); the per-channel sums run one work item per
 * channel, in double and in row order, as the reference takes them. */
#include <stdio.h>

#include "codegen/cuda.h"
#include "ir/op.h"

#define NODE(c, id) (&nnc_cuda_graph(c)->nodes[id])

static long long channels_of(const nnc_node *x) { return (long long)x->shape[x->rank - 1]; }

int nnc_cuda_emit_state(nnc_cuda_ctx *c, int32_t id) {
  (void)c, (void)id;
  return NNC_EMIT_NO_KERNEL;
}

int nnc_cuda_emit_bn_stats(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  long long ch = channels_of(nnc_cuda_src(c, id, 0)), rows = nnc_node_numel(nnc_cuda_src(c, id, 0)) / ch;
  const char *x = nnc_cuda_buf(c, id, 0);
  char index[64];
  nnc_cuda_work(c, ch);
  nnc_cuda_line(c, "double sum = 0.0, sq = 0.0;");
  nnc_cuda_line(c, "for (nnc_i64 r = 0; r < %lldLL; r++) sum += %s[r * %lldLL + w];", rows, x, ch);
  nnc_cuda_line(c, "const double mean = sum / %lld.0;", rows);
  nnc_cuda_line(c, "for (nnc_i64 r = 0; r < %lldLL; r++) sq += (%s[r * %lldLL + w] - mean) * (%s[r * %lldLL + w] - mean);",
                rows, x, ch, x, ch);
  nnc_cuda_line(c, "const double var = sq / %lld.0;", rows);
  nnc_cuda_store(c, "w", "(float)mean");
  snprintf(index, sizeof index, "%lldLL + w", ch);
  nnc_cuda_store(c, index, "(float)var");
  char bessel[96] = "(float)var";
  if (rows > 1) snprintf(bessel, sizeof bessel, "(float)(var * %lld.0 / %lld.0)", rows, rows - 1);
  snprintf(index, sizeof index, "%lldLL + w", 2 * ch);
  nnc_cuda_store(c, index, bessel);
  return NNC_EMIT_OK;
}

int nnc_cuda_emit_batch_norm_train(nnc_cuda_ctx *c, int32_t id) {
  long long ch = channels_of(NODE(c, id));
  const char *st = nnc_cuda_buf(c, id, 1), *gamma = nnc_cuda_buf(c, id, 2), *beta = nnc_cuda_buf(c, id, 3);
  return nnc_cuda_pointwise(c, id, "(%s - %s[e %% %lldLL]) * (%s[e %% %lldLL] / sqrtf(%s[%lldLL + e %% %lldLL] + %s)) + %s[e %% %lldLL]",
                            nnc_cuda_val(c, id, 0), st, ch, gamma, ch, st, ch, ch,
                            nnc_cuda_float(c, NODE(c, id)->attrs.eps), beta, ch);
}

/* Declares sum_dy and sum_dy_xhat of channel w, and rstd. */
static void emit_grad_sums(nnc_cuda_ctx *c, int32_t id, long long rows, long long ch) {
  const char *x = nnc_cuda_buf(c, id, 0), *dy = nnc_cuda_buf(c, id, 1), *st = nnc_cuda_buf(c, id, 2);
  nnc_cuda_line(c, "const double mean = (double)%s[w];", st);
  nnc_cuda_line(c, "const double rstd = 1.0 / sqrt((double)%s[%lldLL + w] + %s);", st, ch,
                nnc_cuda_float(c, NODE(c, id)->attrs.eps));
  nnc_cuda_line(c, "double sum_dy = 0.0, sum_dy_xhat = 0.0;");
  nnc_cuda_open(c, "for (nnc_i64 r = 0; r < %lldLL; r++) {", rows);
  nnc_cuda_line(c, "const double d = %s[r * %lldLL + w];", dy, ch);
  nnc_cuda_line(c, "sum_dy += d;");
  nnc_cuda_line(c, "sum_dy_xhat += d * (%s[r * %lldLL + w] - mean) * rstd;", x, ch);
  nnc_cuda_close(c);
}

int nnc_cuda_emit_batch_norm_train_grad(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  long long ch = channels_of(NODE(c, id)), rows = nnc_node_numel(NODE(c, id)) / ch;
  const char *x = nnc_cuda_buf(c, id, 0), *dy = nnc_cuda_buf(c, id, 1), *gamma = nnc_cuda_buf(c, id, 3);
  char index[64], value[256];
  nnc_cuda_work(c, ch);
  emit_grad_sums(c, id, rows, ch);
  nnc_cuda_line(c, "const double mean_dy = sum_dy / %lld.0, mean_dy_xhat = sum_dy_xhat / %lld.0;", rows, rows);
  nnc_cuda_open(c, "for (nnc_i64 r = 0; r < %lldLL; r++) {", rows);
  nnc_cuda_line(c, "const double xhat = (%s[r * %lldLL + w] - mean) * rstd;", x, ch);
  snprintf(index, sizeof index, "r * %lldLL + w", ch);
  snprintf(value, sizeof value, "(float)(%s[w] * rstd * (%s[r * %lldLL + w] - mean_dy - xhat * mean_dy_xhat))", gamma,
           dy, ch);
  nnc_cuda_store(c, index, value);
  nnc_cuda_close(c);
  return NNC_EMIT_OK;
}

int nnc_cuda_emit_bn_gamma_grad(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  const nnc_node *x = nnc_cuda_src(c, id, 0);
  long long ch = channels_of(x), rows = nnc_node_numel(x) / ch;
  nnc_cuda_work(c, ch);
  emit_grad_sums(c, id, rows, ch);
  nnc_cuda_store(c, "w", "(float)sum_dy_xhat");
  return NNC_EMIT_OK;
}

int nnc_cuda_emit_bn_moving(nnc_cuda_ctx *c, int32_t id) {
  const nnc_node *n = NODE(c, id);
  float momentum = n->attrs.alpha;
  return nnc_cuda_pointwise(c, id, "%s * %s + %s[%lldLL + e] * %s", nnc_cuda_val(c, id, 0), nnc_cuda_float(c, momentum),
                            nnc_cuda_buf(c, id, 1), (long long)n->attrs.index * (long long)n->shape[0],
                            nnc_cuda_float(c, 1.0f - momentum));
}

/* Element e < C is channel e's scale, element C + j channel j's shift. */
int nnc_cuda_emit_bn_fold(nnc_cuda_ctx *c, int32_t id) {
  long long ch = (long long)NODE(c, id)->shape[1];
  const char *mean = nnc_cuda_buf(c, id, 0), *var = nnc_cuda_buf(c, id, 1), *gamma = nnc_cuda_buf(c, id, 2),
             *beta = nnc_cuda_buf(c, id, 3), *eps = nnc_cuda_float(c, NODE(c, id)->attrs.eps);
  char scale[160];
  snprintf(scale, sizeof scale, "(%s[e %% %lldLL] / sqrtf(%s[e %% %lldLL] + %s))", gamma, ch, var, ch, eps);
  return nnc_cuda_pointwise(c, id, "e < %lldLL ? %s : %s[e %% %lldLL] - %s[e %% %lldLL] * %s", ch, scale, beta, ch,
                            mean, ch, scale);
}

int nnc_cuda_emit_scale_shift(nnc_cuda_ctx *c, int32_t id) {
  long long ch = channels_of(NODE(c, id));
  const char *st = nnc_cuda_buf(c, id, 1);
  return nnc_cuda_pointwise(c, id, "%s * %s[e %% %lldLL] + %s[%lldLL + e %% %lldLL]", nnc_cuda_val(c, id, 0), st, ch, st,
                            ch, ch);
}

int nnc_cuda_emit_scale_shift_grad(nnc_cuda_ctx *c, int32_t id) {
  long long ch = channels_of(NODE(c, id));
  return nnc_cuda_pointwise(c, id, "%s * %s[e %% %lldLL]", nnc_cuda_val(c, id, 0), nnc_cuda_buf(c, id, 1), ch);
}

int nnc_cuda_emit_fill(nnc_cuda_ctx *c, int32_t id) {
  return nnc_cuda_pointwise(c, id, "%s", nnc_cuda_float(c, NODE(c, id)->attrs.alpha));
}
