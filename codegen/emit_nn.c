/* CUDA emitters for the layer ops: matmul, bias_add, conv2d and pooling.
 * matmul and conv2d are GEMMs (codegen/cuda_gemm.c); pooling is a direct
 * kernel, one output element per work item, as a window of a few taps has
 * nothing to share between threads. Sizes are baked in as constants; the
 * sums are the reference's (runtime/interp/ref_nn.c), taken in the same order but
 * in float. */
#include <stdio.h>

#include "codegen/cuda.h"
#include "ir/op.h"

#define NODE(c, id) (&nnc_cuda_graph(c)->nodes[id])

/* out[r, j] = sum_p A[r, p] * B[p, j], with A and B optionally transposed:
 * a transposed operand is the same GEMM operand read with its strides
 * swapped. */
int nnc_cuda_emit_matmul(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  const nnc_node *n = NODE(c, id), *a = nnc_cuda_src(c, id, 0), *b = nnc_cuda_src(c, id, 1);
  long long cols = n->shape[n->rank - 1];
  long long rows = cols ? nnc_node_numel(n) / cols : 0;
  long long inner = n->attrs.trans_b ? b->shape[1] : b->shape[0];
  long long a_cols = a->shape[a->rank - 1];
  nnc_cuda_gemm gemm = {rows, cols, inner, {.buf = nnc_cuda_buf(c, id, 0), .ld = n->attrs.trans_a ? a_cols : inner, .trans = n->attrs.trans_a},
                        {.buf = nnc_cuda_buf(c, id, 1), .ld = n->attrs.trans_b ? inner : cols, .trans = n->attrs.trans_b}};
  return nnc_cuda_gemm_emit(c, &gemm);
}

/* x + b along the last axis: pointwise in x, so it can follow an anchor. */
int nnc_cuda_emit_bias_add(nnc_cuda_ctx *c, int32_t id) {
  const nnc_node *n = NODE(c, id);
  long long width = n->shape[n->rank - 1];
  return nnc_cuda_pointwise(c, id, "%s + %s[e %% %lldLL]", nnc_cuda_val(c, id, 0), nnc_cuda_buf(c, id, 1), width);
}


/* Splits work item w into NHWC coordinates n, y, x, ch of a [*, h, w, ch] tensor. */
static void decode_nhwc(nnc_cuda_ctx *c, long long h, long long wd, long long ch) {
  nnc_cuda_line(c, "const nnc_i64 ch = w %% %lldLL, x = (w / %lldLL) %% %lldLL, y = (w / %lldLL) %% %lldLL, n = w / %lldLL;",
                ch, ch, wd, ch * wd, h, ch * wd * h);
}

/* out[n,y,x,o] = sum_{i,j,c} in[n, y*sh+i-ph, x*sw+j-pw, c] * w[i,j,c,o]:
 * an implicit GEMM of the input's im2col view (rows: output pixels,
 * columns: taps, read in place) and the kernel as a (kh*kw*ic) x oc matrix. */
int nnc_cuda_emit_conv2d(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  const nnc_node *n = NODE(c, id), *wn = nnc_cuda_src(c, id, 1);
  nnc_window q = nnc_window_of(nnc_cuda_src(c, id, 0), n, wn->shape[0], wn->shape[1], &n->attrs);
  const char *in = nnc_cuda_buf(c, id, 0), *kern = nnc_cuda_buf(c, id, 1);
  char ea[256];
  nnc_cuda_im2col_view(ea, sizeof ea, in, "row", "col", &q);
  nnc_cuda_gemm gemm = {q.batch * q.oh * q.ow, q.oc, q.kh * q.kw * q.ic,
                        {.view = ea, .view_numel = nnc_node_numel(nnc_cuda_src(c, id, 0))}, {.buf = kern, .ld = q.oc}};
  return nnc_cuda_gemm_emit(c, &gemm);
}

/* Pooling over the taps inside the input: padding never wins a max and is
 * not counted in an average; the max starts from -inf. */
static int emit_pool(nnc_cuda_ctx *c, int32_t id, int is_max) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  const nnc_node *n = NODE(c, id);
  nnc_window q = nnc_window_of(nnc_cuda_src(c, id, 0), n, n->attrs.window[0], n->attrs.window[1], &n->attrs);
  const char *in = nnc_cuda_buf(c, id, 0);
  nnc_cuda_work(c, nnc_node_numel(n));
  decode_nhwc(c, q.oh, q.ow, q.ic);
  nnc_cuda_line(c, "float acc = %s;", is_max ? "-NNC_INF" : "0.0f");
  nnc_cuda_line(c, "int taps = 0;");
  nnc_cuda_open(c, "for (nnc_i64 i = 0; i < %lldLL; i++) {", q.kh);
  nnc_cuda_line(c, "const nnc_i64 iy = y * %lldLL + i - %lldLL;", q.sh, q.ph);
  nnc_cuda_line(c, "if (iy < 0 || iy >= %lldLL) continue;", q.ih);
  nnc_cuda_open(c, "for (nnc_i64 j = 0; j < %lldLL; j++) {", q.kw);
  nnc_cuda_line(c, "const nnc_i64 ix = x * %lldLL + j - %lldLL;", q.sw, q.pw);
  nnc_cuda_line(c, "if (ix < 0 || ix >= %lldLL) continue;", q.iw);
  nnc_cuda_line(c, "const float v = %s[((n * %lldLL + iy) * %lldLL + ix) * %lldLL + ch];", in, q.ih, q.iw, q.ic);
  nnc_cuda_line(c, is_max ? "acc = v > acc ? v : acc;" : "acc += v;");
  nnc_cuda_line(c, "taps++;");
  nnc_cuda_close(c);
  nnc_cuda_close(c);
  nnc_cuda_line(c, "(void)taps;");
  nnc_cuda_store(c, "w", is_max ? "acc" : "acc / (float)taps");
  return NNC_EMIT_OK;
}

int nnc_cuda_emit_max_pool(nnc_cuda_ctx *c, int32_t id) { return emit_pool(c, id, 1); }
int nnc_cuda_emit_avg_pool(nnc_cuda_ctx *c, int32_t id) { return emit_pool(c, id, 0); }
