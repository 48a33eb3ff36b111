/* CUDA emitters for the gradient ops (definitions in ir/ops_grad.c).
 *
 * The reference kernels (runtime/interp/ref_grad.c) scatter from each output
 * position over the taps the forward op read; here each element of the
 * result gathers instead, so no two threads write one element and no
 * atomics are needed. The convolution gradients are GEMMs over views of
 * their operands (codegen/cuda_gemm.c). The bias gradient is a column sum
 * by blocks; the pooling gradients stay direct, one element per work item:
 * a window of a few taps reads nothing another thread could share. Where the
 * reference adds terms into an element one by one, the gather visits them
 * in the same order, so the float sums agree exactly. */
#include <stdio.h>

#include "codegen/cuda.h"
#include "ir/op.h"

#define NODE(c, id) (&nnc_cuda_graph(c)->nodes[id])


/* Work item w is input element (n, y, x, ch) of the forward op. */
static void decode_input(nnc_cuda_ctx *c, const nnc_window *q) {
  nnc_cuda_line(c, "const nnc_i64 ch = w %% %lldLL, x = (w / %lldLL) %% %lldLL, y = (w / %lldLL) %% %lldLL, n = w / %lldLL;",
                q->ic, q->ic, q->iw, q->ic * q->iw, q->ih, q->ic * q->iw * q->ih);
}

/* Opens loops over the forward outputs (oy, ox) whose window holds input
 * (y, x), in increasing oy then ox: tap i of window oy reads row
 * oy*sh + i - ph, so oy rises as i falls. Two blocks to close. */
static void open_windows_of_input(nnc_cuda_ctx *c, const nnc_window *q) {
  nnc_cuda_open(c, "for (nnc_i64 i = %lldLL; i >= 0; i--) {", q->kh - 1);
  nnc_cuda_line(c, "const nnc_i64 ty = y + %lldLL - i;", q->ph);
  nnc_cuda_line(c, "if (ty < 0 || ty %% %lldLL != 0 || ty / %lldLL >= %lldLL) continue;", q->sh, q->sh, q->oh);
  nnc_cuda_line(c, "const nnc_i64 oy = ty / %lldLL;", q->sh);
  nnc_cuda_open(c, "for (nnc_i64 j = %lldLL; j >= 0; j--) {", q->kw - 1);
  nnc_cuda_line(c, "const nnc_i64 tx = x + %lldLL - j;", q->pw);
  nnc_cuda_line(c, "if (tx < 0 || tx %% %lldLL != 0 || tx / %lldLL >= %lldLL) continue;", q->sw, q->sw, q->ow);
  nnc_cuda_line(c, "const nnc_i64 ox = tx / %lldLL;", q->sw);
}

/* The sum of dy over every axis but the last. A block reduces
 * BIAS_CHANNELS adjacent channels over a slice of the rows: thread t sums
 * channel t % BIAS_CHANNELS over rows lane, lane + BIAS_LANES, ... of the
 * slice (lane = t / BIAS_CHANNELS), so each warp reads 32-byte runs of a
 * row, and the BIAS_LANES partial sums of a channel are then added pairwise
 * in shared memory (nnc_cuda_block_sum). A few channels over many rows (a
 * first convolution's 32 channels over 25,088 pixels) would leave the GPU
 * idle with one block per channel group, so the rows are cut into slices,
 * at most about two blocks per SM in all and at least BIAS_SLICE_ROWS rows
 * each, and a second kernel adds each channel's slices in order
 * (nnc_cuda_split_sum). Every order is fixed by the shape: the result does
 * not depend on the hardware's timing. */
enum { BIAS_CHANNELS = 8, BIAS_THREADS = 512, BIAS_LANES = BIAS_THREADS / BIAS_CHANNELS, BIAS_SLICE_ROWS = 8 * BIAS_LANES };
_Static_assert((BIAS_LANES & (BIAS_LANES - 1)) == 0, "the tree halves the lanes");

static long long bias_slices(long long rows, long long groups) {
  long long slices = groups > 0 ? 2 * NNC_CUDA_TARGET_SMS / groups : 1;
  if (slices > rows / BIAS_SLICE_ROWS) slices = rows / BIAS_SLICE_ROWS;
  return slices < 2 ? 1 : slices;
}

int nnc_cuda_emit_bias_grad(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  const nnc_node *n = NODE(c, id), *dy = nnc_cuda_src(c, id, 0);
  long long width = n->shape[0], rows = width ? nnc_node_numel(dy) / width : 0;
  long long groups = (width + BIAS_CHANNELS - 1) / BIAS_CHANNELS, slices = bias_slices(rows, groups);
  long long per = slices > 1 ? (rows + slices - 1) / slices : rows;
  nnc_cuda_work_blocks(c, groups * slices, BIAS_THREADS);
  nnc_cuda_line(c, "const int lane = (int)threadIdx.x / %d;", BIAS_CHANNELS);
  nnc_cuda_line(c, "const nnc_i64 z = w / %lldLL, col = w %% %lldLL * %d + (nnc_i64)threadIdx.x %% %d;", groups ? groups : 1,
                groups ? groups : 1, BIAS_CHANNELS, BIAS_CHANNELS);
  nnc_cuda_line(c, "const nnc_i64 end = z * %lldLL + %lldLL < %lldLL ? z * %lldLL + %lldLL : %lldLL;", per, per, rows, per,
                per, rows);
  nnc_cuda_line(c, "float acc = 0.0f;");
  nnc_cuda_open(c, "if (col < %lldLL) {", width);
  nnc_cuda_line(c, "for (nnc_i64 r = z * %lldLL + lane; r < end; r += %d) acc += %s[r * %lldLL + col];", per, BIAS_LANES,
                nnc_cuda_buf(c, id, 0), width);
  nnc_cuda_close(c);
  nnc_cuda_block_sum(c, "float", "acc", BIAS_THREADS, BIAS_CHANNELS);
  nnc_cuda_open(c, "if (lane == 0 && col < %lldLL) {", width);
  if (slices > 1) nnc_cuda_line(c, "nnc_ws[z * %lldLL + col] = nnc_sum[threadIdx.x];", width);
  else nnc_cuda_store(c, "col", "nnc_sum[threadIdx.x]");
  nnc_cuda_close(c);
  if (slices > 1) nnc_cuda_split_sum(c, slices, width);
  return NNC_EMIT_OK;
}

/* dx[n,y,x,c] = sum over the outputs (oy, ox) that read it through kernel
 * tap (i, j) of sum_o dy[n,oy,ox,o] * w[i,j,c,o]: an implicit GEMM over
 * rows = input pixels and k = (tap, o), taps in decreasing order as the
 * gather visits them (nnc_im2col_grad, nnc_kernel_flipped in the prelude). */
int nnc_cuda_emit_conv2d_grad_input(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  const nnc_node *n = NODE(c, id), *wn = nnc_cuda_src(c, id, 1);
  nnc_window q = nnc_window_of(n, nnc_cuda_src(c, id, 0), wn->shape[0], wn->shape[1], &n->attrs);
  const char *dy = nnc_cuda_buf(c, id, 0), *kern = nnc_cuda_buf(c, id, 1);
  char ea[320], eb[192];
  snprintf(ea, sizeof ea,
           "nnc_im2col_grad%%s(%s, row, col, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, "
           "%lldLL)",
           dy, q.ih, q.iw, q.oh, q.ow, q.oc, q.kh, q.kw, q.sh, q.sw, q.ph, q.pw);
  snprintf(eb, sizeof eb, "nnc_kernel_flipped%%s(%s, row, col, %lldLL, %lldLL, %lldLL, %lldLL)", kern, q.kh, q.kw, q.ic,
           q.oc);
  nnc_cuda_gemm gemm = {q.batch * q.ih * q.iw, q.ic, q.kh * q.kw * q.oc,
                        {.view = ea, .view_numel = nnc_node_numel(nnc_cuda_src(c, id, 0))},
                        {.view = eb, .view_numel = nnc_node_numel(wn)}};
  return nnc_cuda_gemm_emit(c, &gemm);
}

/* dw[i,j,c,o] = sum over n, oy, ox of x[n, oy*sh+i-ph, ox*sw+j-pw, c] * dy[n,oy,ox,o]:
 * the transposed im2col view of x (rows: taps, k: output pixels) times dy
 * as a pixels x oc matrix. */
int nnc_cuda_emit_conv2d_grad_kernel(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  const nnc_node *n = NODE(c, id);
  nnc_window q = nnc_window_of(nnc_cuda_src(c, id, 0), nnc_cuda_src(c, id, 1), n->shape[0], n->shape[1], &n->attrs);
  const char *x = nnc_cuda_buf(c, id, 0), *dy = nnc_cuda_buf(c, id, 1);
  char ea[256];
  nnc_cuda_im2col_view(ea, sizeof ea, x, "col", "row", &q); /* transposed: A's row is the tap, col the pixel */
  nnc_cuda_gemm gemm = {q.kh * q.kw * q.ic, q.oc, q.batch * q.oh * q.ow,
                        {.view = ea, .view_numel = nnc_node_numel(nnc_cuda_src(c, id, 0))}, {.buf = dy, .ld = q.oc}};
  return nnc_cuda_gemm_emit(c, &gemm);
}

/* dy goes to the first maximum of each window, in row-major window order
 * (the tap the forward max picked, as runtime/interp/ref_grad.c chooses it): each
 * input element sums dy over the windows that chose it. */
int nnc_cuda_emit_max_pool_grad(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  const nnc_node *n = NODE(c, id);
  nnc_window q = nnc_window_of(nnc_cuda_src(c, id, 0), nnc_cuda_src(c, id, 1), n->attrs.window[0], n->attrs.window[1],
                           &n->attrs);
  const char *x = nnc_cuda_buf(c, id, 0);
  nnc_cuda_work(c, nnc_node_numel(n));
  decode_input(c, &q);
  nnc_cuda_line(c, "float acc = 0.0f;");
  open_windows_of_input(c, &q);
  nnc_cuda_line(c, "nnc_i64 best = -1;");
  nnc_cuda_line(c, "float top = 0.0f;");
  nnc_cuda_open(c, "for (nnc_i64 wi = 0; wi < %lldLL; wi++) {", q.kh);
  nnc_cuda_line(c, "const nnc_i64 iy = oy * %lldLL + wi - %lldLL;", q.sh, q.ph);
  nnc_cuda_line(c, "if (iy < 0 || iy >= %lldLL) continue;", q.ih);
  nnc_cuda_open(c, "for (nnc_i64 wj = 0; wj < %lldLL; wj++) {", q.kw);
  nnc_cuda_line(c, "const nnc_i64 ix = ox * %lldLL + wj - %lldLL;", q.sw, q.pw);
  nnc_cuda_line(c, "if (ix < 0 || ix >= %lldLL) continue;", q.iw);
  nnc_cuda_line(c, "const nnc_i64 at = ((n * %lldLL + iy) * %lldLL + ix) * %lldLL + ch;", q.ih, q.iw, q.ic);
  nnc_cuda_line(c, "if (best < 0 || %s[at] > top) best = at, top = %s[at];", x, x);
  nnc_cuda_close(c);
  nnc_cuda_close(c);
  /* dy through nnc_cuda_load: pool-grad's dropout is drawn only for the windows this element won. */
  nnc_cuda_open(c, "if (best == w) {");
  nnc_cuda_line(c, "const nnc_i64 at_dy = ((n * %lldLL + oy) * %lldLL + ox) * %lldLL + ch;", q.oh, q.ow, q.ic);
  nnc_cuda_line(c, "acc += %s;", nnc_cuda_load(c, id, 1, "at_dy"));
  nnc_cuda_close(c);
  nnc_cuda_close(c);
  nnc_cuda_close(c);
  nnc_cuda_store(c, "w", "acc");
  return NNC_EMIT_OK;
}

/* dy spread evenly over each window's taps inside the input. */
int nnc_cuda_emit_avg_pool_grad(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  const nnc_node *n = NODE(c, id);
  nnc_window q = nnc_window_of(n, nnc_cuda_src(c, id, 0), n->attrs.window[0], n->attrs.window[1], &n->attrs);
  const char *dy = nnc_cuda_buf(c, id, 0);
  nnc_cuda_work(c, nnc_node_numel(n));
  decode_input(c, &q);
  nnc_cuda_line(c, "float acc = 0.0f;");
  open_windows_of_input(c, &q);
  nnc_cuda_line(c, "int rows = 0, cols = 0;");
  nnc_cuda_line(c, "for (nnc_i64 wi = 0; wi < %lldLL; wi++) rows += oy * %lldLL + wi - %lldLL >= 0 && oy * %lldLL + wi - %lldLL < %lldLL;",
                q.kh, q.sh, q.ph, q.sh, q.ph, q.ih);
  nnc_cuda_line(c, "for (nnc_i64 wj = 0; wj < %lldLL; wj++) cols += ox * %lldLL + wj - %lldLL >= 0 && ox * %lldLL + wj - %lldLL < %lldLL;",
                q.kw, q.sw, q.pw, q.sw, q.pw, q.iw);
  nnc_cuda_line(c, "acc += %s[((n * %lldLL + oy) * %lldLL + ox) * %lldLL + ch] / (float)(rows * cols);", dy, q.oh, q.ow,
                q.ic);
  nnc_cuda_close(c);
  nnc_cuda_close(c);
  nnc_cuda_store(c, "w", "acc");
  return NNC_EMIT_OK;
}

/* y * (dy - sum(dy * y)) along the last axis, one row per work item. */
int nnc_cuda_emit_softmax_grad(nnc_cuda_ctx *c, int32_t id) {
  if (nnc_cuda_is_epilogue(c)) return NNC_EMIT_NOT_POINTWISE;
  const nnc_node *n = NODE(c, id);
  long long width = n->shape[n->rank - 1], rows = width ? nnc_node_numel(n) / width : 0;
  nnc_cuda_work(c, rows);
  nnc_cuda_line(c, "const float *yr = %s + w * %lldLL, *gr = %s + w * %lldLL;", nnc_cuda_buf(c, id, 0), width,
                nnc_cuda_buf(c, id, 1), width);
  nnc_cuda_line(c, "double dot = 0.0;");
  nnc_cuda_line(c, "for (nnc_i64 j = 0; j < %lldLL; j++) dot += (double)gr[j] * yr[j];", width);
  char index[64];
  snprintf(index, sizeof index, "w * %lldLL + j", width);
  nnc_cuda_open(c, "for (nnc_i64 j = 0; j < %lldLL; j++) {", width);
  nnc_cuda_store(c, index, "yr[j] * (float)(gr[j] - dot)");
  nnc_cuda_close(c);
  return NNC_EMIT_OK;
}
