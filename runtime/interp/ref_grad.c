/* Reference kernels for the gradient ops (definitions in ir/ops_grad.c).
 * Convolution and pooling gradients scatter from each output position
 * back over the taps the forward op read, so they mirror ref_nn.c. */
#include <float.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/interp/interp.h"

#define SRC(k, i) (&(k)->g->nodes[(k)->n->src[i]])

void nnc_ref_bias_grad(const nnc_kernel_args *k) {
  const float *dy = k->in[0];
  float *out = k->out;
  int64_t c = k->n->shape[0], count = nnc_node_numel(SRC(k, 0));
  memset(out, 0, sizeof(float) * (size_t)c);
  for (int64_t i = 0; i < count; i++) out[i % c] += dy[i];
}


/* dx[n,iy,ix,c] += dy[n,y,x,o] * w[i,j,c,o] for every tap (iy, ix) that
 * output (y, x) read through kernel position (i, j). */
void nnc_ref_conv2d_grad_input(const nnc_kernel_args *k) {
  const nnc_node *w = SRC(k, 1);
  nnc_window q = nnc_window_of(k->n, SRC(k, 0), w->shape[0], w->shape[1], &k->n->attrs);
  const float *dy = k->in[0], *kern = k->in[1];
  float *dx = k->out;
  memset(dx, 0, sizeof(float) * (size_t)nnc_node_numel(k->n));
  for (int64_t n = 0; n < q.batch; n++)
    for (int64_t y = 0; y < q.oh; y++)
      for (int64_t x = 0; x < q.ow; x++)
        for (int64_t i = 0; i < q.kh; i++)
          for (int64_t j = 0; j < q.kw; j++) {
            int64_t iy = y * q.sh + i - q.ph, ix = x * q.sw + j - q.pw;
            if (iy < 0 || iy >= q.ih || ix < 0 || ix >= q.iw) continue;
            for (int64_t c = 0; c < q.ic; c++) {
              double sum = 0;
              for (int64_t o = 0; o < q.oc; o++)
                sum += (double)dy[((n * q.oh + y) * q.ow + x) * q.oc + o] * kern[((i * q.kw + j) * q.ic + c) * q.oc + o];
              dx[((n * q.ih + iy) * q.iw + ix) * q.ic + c] += (float)sum;
            }
          }
}

/* dw[i,j,c,o] = sum over n, y, x of x[n, y*s+i-p, x*s+j-p, c] * dy[n,y,x,o]. */
void nnc_ref_conv2d_grad_kernel(const nnc_kernel_args *k) {
  const nnc_attrs *a = &k->n->attrs;
  nnc_window q = nnc_window_of(SRC(k, 0), SRC(k, 1), a->shape[0], a->shape[1], a);
  const float *x = k->in[0], *dy = k->in[1];
  float *dw = k->out;
  for (int64_t i = 0; i < q.kh; i++)
    for (int64_t j = 0; j < q.kw; j++)
      for (int64_t c = 0; c < q.ic; c++)
        for (int64_t o = 0; o < q.oc; o++) {
          double sum = 0;
          for (int64_t n = 0; n < q.batch; n++)
            for (int64_t y = 0; y < q.oh; y++)
              for (int64_t xx = 0; xx < q.ow; xx++) {
                int64_t iy = y * q.sh + i - q.ph, ix = xx * q.sw + j - q.pw;
                if (iy < 0 || iy >= q.ih || ix < 0 || ix >= q.iw) continue;
                sum += (double)x[((n * q.ih + iy) * q.iw + ix) * q.ic + c] * dy[((n * q.oh + y) * q.ow + xx) * q.oc + o];
              }
          dw[((i * q.kw + j) * q.ic + c) * q.oc + o] = (float)sum;
        }
}

/* Routes each output's gradient to the tap the forward max chose: the
 * first maximum in row-major window order, as ref_nn.c's pool picks it. */
static void pool_grad(const nnc_kernel_args *k, const float *x, const float *dy, nnc_window q, int is_max) {
  float *dx = k->out;
  memset(dx, 0, sizeof(float) * (size_t)nnc_node_numel(k->n));
  for (int64_t n = 0; n < q.batch; n++)
    for (int64_t y = 0; y < q.oh; y++)
      for (int64_t xx = 0; xx < q.ow; xx++)
        for (int64_t c = 0; c < q.ic; c++) {
          int64_t best = -1, taps = 0;
          float top = -FLT_MAX;
          for (int pass = 0; pass < 2; pass++)
            for (int64_t i = 0; i < q.kh; i++)
              for (int64_t j = 0; j < q.kw; j++) {
                int64_t iy = y * q.sh + i - q.ph, ix = xx * q.sw + j - q.pw;
                if (iy < 0 || iy >= q.ih || ix < 0 || ix >= q.iw) continue;
                int64_t at = ((n * q.ih + iy) * q.iw + ix) * q.ic + c;
                float g = dy[((n * q.oh + y) * q.ow + xx) * q.ic + c];
                if (pass == 0 && is_max && (best < 0 || x[at] > top)) best = at, top = x[at];
                if (pass == 0 && !is_max) taps++;
                if (pass == 1 && !is_max) dx[at] += g / (float)taps;
                if (pass == 1 && is_max && at == best) dx[at] += g;
              }
        }
}

void nnc_ref_max_pool_grad(const nnc_kernel_args *k) {
  const nnc_attrs *a = &k->n->attrs;
  pool_grad(k, k->in[0], k->in[1], nnc_window_of(SRC(k, 0), SRC(k, 1), a->window[0], a->window[1], a), 1);
}

void nnc_ref_avg_pool_grad(const nnc_kernel_args *k) {
  const nnc_attrs *a = &k->n->attrs;
  pool_grad(k, NULL, k->in[0], nnc_window_of(k->n, SRC(k, 0), a->window[0], a->window[1], a), 0);
}

void nnc_ref_softmax_grad(const nnc_kernel_args *k) {
  const float *y = k->in[0], *dy = k->in[1];
  float *out = k->out;
  int64_t c = k->n->shape[k->n->rank - 1], rows = nnc_node_numel(k->n) / (c ? c : 1);
  for (int64_t r = 0; r < rows; r++) {
    double dot = 0;
    for (int64_t j = 0; j < c; j++) dot += (double)dy[r * c + j] * y[r * c + j];
    for (int64_t j = 0; j < c; j++) out[r * c + j] = y[r * c + j] * (float)(dy[r * c + j] - dot);
  }
}
