/* Reference kernels for the layer ops, written as the definitions read:
 * one output element at a time, no blocking, no threads. */
#include <math.h>

#include "ir/op.h"
#include "runtime/interp/interp.h"

#define SRC(k, i) (&(k)->g->nodes[(k)->n->src[i]])

/* out[r, j] = sum_p A[r, p] * B[p, j], with A and B optionally transposed. */
void nnc_ref_matmul(const nnc_kernel_args *k) {
  const nnc_node *a = SRC(k, 0), *b = SRC(k, 1);
  const float *A = k->in[0], *B = k->in[1];
  float *out = k->out;
  int64_t cols = k->n->shape[k->n->rank - 1];
  int64_t rows = nnc_node_numel(k->n) / (cols ? cols : 1);
  int64_t inner = k->n->attrs.trans_b ? b->shape[1] : b->shape[0];
  int64_t a_cols = a->shape[a->rank - 1];
  for (int64_t r = 0; r < rows; r++)
    for (int64_t j = 0; j < cols; j++) {
      double sum = 0;
      for (int64_t p = 0; p < inner; p++) {
        float av = k->n->attrs.trans_a ? A[p * a_cols + r] : A[r * inner + p];
        float bv = k->n->attrs.trans_b ? B[j * inner + p] : B[p * cols + j];
        sum += (double)av * bv;
      }
      out[r * cols + j] = (float)sum;
    }
}

void nnc_ref_bias_add(const nnc_kernel_args *k) {
  const float *x = k->in[0], *b = k->in[1];
  float *out = k->out;
  int64_t c = k->n->shape[k->n->rank - 1], count = nnc_node_numel(k->n);
  for (int64_t i = 0; i < count; i++) out[i] = x[i] + b[i % c];
}

static nnc_window window_of(const nnc_kernel_args *k, int64_t kh, int64_t kw) {
  return nnc_window_of(SRC(k, 0), k->n, kh, kw, &k->n->attrs);
}

/* out[n,y,x,o] = sum_{i,j,c} in[n, y*sh+i-ph, x*sw+j-pw, c] * w[i,j,c,o],
 * where taps outside the input read zero (the padding). */
void nnc_ref_conv2d(const nnc_kernel_args *k) {
  const nnc_node *wn = SRC(k, 1);
  nnc_window w = window_of(k, wn->shape[0], wn->shape[1]);
  int64_t oc = wn->shape[3];
  const float *in = k->in[0], *kern = k->in[1];
  float *out = k->out;
  for (int64_t n = 0; n < w.batch; n++)
    for (int64_t y = 0; y < w.oh; y++)
      for (int64_t x = 0; x < w.ow; x++)
        for (int64_t o = 0; o < oc; o++) {
          double sum = 0;
          for (int64_t i = 0; i < w.kh; i++)
            for (int64_t j = 0; j < w.kw; j++) {
              int64_t iy = y * w.sh + i - w.ph, ix = x * w.sw + j - w.pw;
              if (iy < 0 || iy >= w.ih || ix < 0 || ix >= w.iw) continue;
              for (int64_t c = 0; c < w.ic; c++)
                sum += (double)in[((n * w.ih + iy) * w.iw + ix) * w.ic + c] *
                       kern[((i * w.kw + j) * w.ic + c) * oc + o];
            }
          out[((n * w.oh + y) * w.ow + x) * oc + o] = (float)sum;
        }
}

/* Pooling over the taps that fall inside the input: padding never wins a max
 * and is not counted in an average, as in Keras. The max starts from -inf,
 * so a window of -inf pools to -inf as in TensorFlow. */
static void pool(const nnc_kernel_args *k, int is_max) {
  nnc_window w = window_of(k, k->n->attrs.window[0], k->n->attrs.window[1]);
  const float *in = k->in[0];
  float *out = k->out;
  for (int64_t n = 0; n < w.batch; n++)
    for (int64_t y = 0; y < w.oh; y++)
      for (int64_t x = 0; x < w.ow; x++)
        for (int64_t c = 0; c < w.ic; c++) {
          double acc = is_max ? -INFINITY : 0;
          int64_t taps = 0;
          for (int64_t i = 0; i < w.kh; i++)
            for (int64_t j = 0; j < w.kw; j++) {
              int64_t iy = y * w.sh + i - w.ph, ix = x * w.sw + j - w.pw;
              if (iy < 0 || iy >= w.ih || ix < 0 || ix >= w.iw) continue;
              float v = in[((n * w.ih + iy) * w.iw + ix) * w.ic + c];
              if (is_max) acc = v > acc ? v : acc;
              else acc += v;
              taps++;
            }
          out[((n * w.oh + y) * w.ow + x) * w.ic + c] = (float)(is_max ? acc : acc / (double)taps);
        }
}

void nnc_ref_max_pool(const nnc_kernel_args *k) { pool(k, 1); }
void nnc_ref_avg_pool(const nnc_kernel_args *k) { pool(k, 0); }
