/* CUDA emitters for leaves, reshape, elementwise ops and softmax: the
 * expressions of runtime/ref_elementwise.c, written per element. */
#include <stdio.h>

#include "codegen/cuda.h"
#include "ir/op.h"

/* Leaves are bound by the backend; nothing runs for them. */
int nnc_cuda_emit_input(nnc_cuda_ctx *c, int32_t id) {
  (void)c, (void)id;
  return NNC_EMIT_NO_KERNEL;
}

int nnc_cuda_emit_param(nnc_cuda_ctx *c, int32_t id) {
  (void)c, (void)id;
  return NNC_EMIT_NO_KERNEL;
}

/* Element e of the result is element e of the operand: a copy, or nothing
 * at all inside a fused kernel. */
int nnc_cuda_emit_reshape(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_src(c, id, 0)->dtype != NNC_F32) return nnc_cuda_fail(c, id, "only f32 reshapes are generated");
  return nnc_cuda_pointwise(c, id, "%s", nnc_cuda_val(c, id, 0));
}

int nnc_cuda_emit_relu(nnc_cuda_ctx *c, int32_t id) {
  const char *a = nnc_cuda_val(c, id, 0);
  return nnc_cuda_pointwise(c, id, "%s > 0.0f ? %s : 0.0f", a, a);
}

int nnc_cuda_emit_sigmoid(nnc_cuda_ctx *c, int32_t id) {
  return nnc_cuda_pointwise(c, id, "1.0f / (1.0f + expf(-%s))", nnc_cuda_val(c, id, 0));
}

int nnc_cuda_emit_tanh(nnc_cuda_ctx *c, int32_t id) {
  return nnc_cuda_pointwise(c, id, "tanhf(%s)", nnc_cuda_val(c, id, 0));
}

int nnc_cuda_emit_add(nnc_cuda_ctx *c, int32_t id) {
  return nnc_cuda_pointwise(c, id, "%s + %s", nnc_cuda_val(c, id, 0), nnc_cuda_val(c, id, 1));
}

int nnc_cuda_emit_mul(nnc_cuda_ctx *c, int32_t id) {
  return nnc_cuda_pointwise(c, id, "%s * %s", nnc_cuda_val(c, id, 0), nnc_cuda_val(c, id, 1));
}

/* Inverted dropout: element e of step s draws Philox counter s*count + e on
 * the node's stream (nnc_dropout in the prelude), the interpreter's mask;
 * under data parallelism the counter of its row in the global batch
 * (nnc_dropout_counter), so that N ranks draw one process's masks. The
 * scale is computed here in float exactly as the reference does. */
int nnc_cuda_emit_dropout(nnc_cuda_ctx *c, int32_t id) {
  const nnc_node *n = &nnc_cuda_graph(c)->nodes[id];
  float rate = n->attrs.rate;
  const char *x = nnc_cuda_val(c, id, 0);
  if (rate == 0.0f) return nnc_cuda_pointwise(c, id, "%s", x);
  nnc_cuda_use_rng(c);
  float scale = 1.0f / (1.0f - rate);
  long long rows = n->rank > 0 && n->shape[0] > 0 ? (long long)n->shape[0] : 1;
  long long row = (long long)nnc_node_numel(n) / rows;
  return nnc_cuda_pointwise(c, id,
                            "nnc_training ? nnc_dropout(%s, nnc_seed, %uu, (nnc_global_rows ? nnc_step * nnc_global_rows + "
                            "nnc_first_row : nnc_step * %lldull) * %lldull + (nnc_u64)e, %s, %s) : %s",
                            x, (unsigned)n->attrs.stream, rows, row, nnc_cuda_float(c, rate), nnc_cuda_float(c, scale), x);
}

/* Softmax over the last axis, one row per work item: shift by the row's
 * maximum so exp cannot overflow, then normalise. */
int nnc_cuda_emit_softmax(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  const nnc_node *n = &nnc_cuda_graph(c)->nodes[id];
  long long width = (long long)n->shape[n->rank - 1];
  long long rows = width ? (long long)nnc_node_numel(n) / width : 0;
  nnc_cuda_work(c, rows);
  nnc_cuda_line(c, "const float *row = %s + w * %lldLL;", nnc_cuda_buf(c, id, 0), width);
  nnc_cuda_line(c, "float top = row[0];");
  nnc_cuda_line(c, "for (nnc_i64 j = 1; j < %lldLL; j++) top = row[j] > top ? row[j] : top;", width);
  nnc_cuda_line(c, "double sum = 0.0;");
  nnc_cuda_line(c, "for (nnc_i64 j = 0; j < %lldLL; j++) sum += expf(row[j] - top);", width);
  char index[64];
  snprintf(index, sizeof index, "w * %lldLL + j", width);
  nnc_cuda_open(c, "for (nnc_i64 j = 0; j < %lldLL; j++) {", width);
  nnc_cuda_store(c, index, "(float)(expf(row[j] - top) / sum)");
  nnc_cuda_close(c);
  return NNC_EMIT_OK;
}
