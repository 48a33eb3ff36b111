/* CUDA emitters for the layer ops: matmul, bias_add, conv2d and pooling.
 * Direct kernels, one output element per work item, with the sizes baked
 * in as constants; the sums are the reference's (runtime/ref_nn.c), taken in
 * the same order but in float. */
#include <stdio.h>

#include "codegen/cuda.h"
#include "ir/op.h"

#define NODE(c, id) (&nnc_cuda_graph(c)->nodes[id])

/* out[r, j] = sum_p A[r, p] * B[p, j], with A and B optionally transposed. */
int nnc_cuda_emit_matmul(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  const nnc_node *n = NODE(c, id), *a = nnc_cuda_src(c, id, 0), *b = nnc_cuda_src(c, id, 1);
  long long cols = n->shape[n->rank - 1];
  long long rows = cols ? nnc_node_numel(n) / cols : 0;
  long long inner = n->attrs.trans_b ? b->shape[1] : b->shape[0];
  long long a_cols = a->shape[a->rank - 1];
  const char *A = nnc_cuda_buf(c, id, 0), *B = nnc_cuda_buf(c, id, 1);
  char ia[96], ib[96];
  if (n->attrs.trans_a) snprintf(ia, sizeof ia, "p * %lldLL + r", a_cols);
  else snprintf(ia, sizeof ia, "r * %lldLL + p", inner);
  if (n->attrs.trans_b) snprintf(ib, sizeof ib, "j * %lldLL + p", inner);
  else snprintf(ib, sizeof ib, "p * %lldLL + j", cols);
  nnc_cuda_work(c, rows * cols);
  nnc_cuda_line(c, "const nnc_i64 r = w / %lldLL, j = w %% %lldLL;", cols, cols);
  nnc_cuda_line(c, "float acc = 0.0f;");
  nnc_cuda_line(c, "for (nnc_i64 p = 0; p < %lldLL; p++) acc += %s[%s] * %s[%s];", inner, A, ia, B, ib);
  nnc_cuda_store(c, "w", "acc");
  return NNC_EMIT_OK;
}

/* x + b along the last axis: pointwise in x, so it can follow an anchor. */
int nnc_cuda_emit_bias_add(nnc_cuda_ctx *c, int32_t id) {
  const nnc_node *n = NODE(c, id);
  long long width = n->shape[n->rank - 1];
  return nnc_cuda_pointwise(c, id, "%s + %s[e %% %lldLL]", nnc_cuda_val(c, id, 0), nnc_cuda_buf(c, id, 1), width);
}


nnc_cuda_geometry nnc_cuda_geometry_of(const nnc_node *in, const nnc_node *out, long long kh, long long kw,
                                       const nnc_attrs *a) {
  nnc_cuda_geometry q = {in->shape[0], in->shape[1], in->shape[2], in->shape[3], out->shape[1], out->shape[2],
                         out->shape[3], kh, kw, a->stride[0], a->stride[1], 0, 0};
  q.ph = nnc_window_pad_before(q.ih, (int)kh, a->stride[0], (nnc_pad)a->pad);
  q.pw = nnc_window_pad_before(q.iw, (int)kw, a->stride[1], (nnc_pad)a->pad);
  return q;
}

/* Splits work item w into NHWC coordinates n, y, x, ch of a [*, h, w, ch] tensor. */
static void decode_nhwc(nnc_cuda_ctx *c, long long h, long long wd, long long ch) {
  nnc_cuda_line(c, "const nnc_i64 ch = w %% %lldLL, x = (w / %lldLL) %% %lldLL, y = (w / %lldLL) %% %lldLL, n = w / %lldLL;",
                ch, ch, wd, ch * wd, h, ch * wd * h);
}

/* out[n,y,x,o] = sum_{i,j,c} in[n, y*sh+i-ph, x*sw+j-pw, c] * w[i,j,c,o];
 * taps outside the input read zero (the padding). */
int nnc_cuda_emit_conv2d(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  const nnc_node *n = NODE(c, id), *wn = nnc_cuda_src(c, id, 1);
  nnc_cuda_geometry q = nnc_cuda_geometry_of(nnc_cuda_src(c, id, 0), n, wn->shape[0], wn->shape[1], &n->attrs);
  const char *in = nnc_cuda_buf(c, id, 0), *kern = nnc_cuda_buf(c, id, 1);
  nnc_cuda_work(c, nnc_node_numel(n));
  decode_nhwc(c, q.oh, q.ow, q.oc);
  nnc_cuda_line(c, "float acc = 0.0f;");
  nnc_cuda_open(c, "for (nnc_i64 i = 0; i < %lldLL; i++) {", q.kh);
  nnc_cuda_line(c, "const nnc_i64 iy = y * %lldLL + i - %lldLL;", q.sh, q.ph);
  nnc_cuda_line(c, "if (iy < 0 || iy >= %lldLL) continue;", q.ih);
  nnc_cuda_open(c, "for (nnc_i64 j = 0; j < %lldLL; j++) {", q.kw);
  nnc_cuda_line(c, "const nnc_i64 ix = x * %lldLL + j - %lldLL;", q.sw, q.pw);
  nnc_cuda_line(c, "if (ix < 0 || ix >= %lldLL) continue;", q.iw);
  nnc_cuda_line(c, "const float *tap = %s + ((n * %lldLL + iy) * %lldLL + ix) * %lldLL;", in, q.ih, q.iw, q.ic);
  nnc_cuda_line(c, "const float *k = %s + (i * %lldLL + j) * %lldLL + ch;", kern, q.kw, q.ic * q.oc);
  nnc_cuda_line(c, "for (nnc_i64 ci = 0; ci < %lldLL; ci++) acc += tap[ci] * k[ci * %lldLL];", q.ic, q.oc);
  nnc_cuda_close(c);
  nnc_cuda_close(c);
  nnc_cuda_store(c, "w", "acc");
  return NNC_EMIT_OK;
}

/* Pooling over the taps inside the input: padding never wins a max and is
 * not counted in an average; the max starts from -inf. */
static int emit_pool(nnc_cuda_ctx *c, int32_t id, int is_max) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  const nnc_node *n = NODE(c, id);
  nnc_cuda_geometry q = nnc_cuda_geometry_of(nnc_cuda_src(c, id, 0), n, n->attrs.window[0], n->attrs.window[1], &n->attrs);
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
