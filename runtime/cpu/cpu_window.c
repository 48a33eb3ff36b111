/* Max and average pooling and their gradients, NHWC. The channel axis is
 * innermost, so every loop below runs over a pixel's channels with unit
 * stride and vectorises. Only taps inside the input count, as in the
 * reference (runtime/interp/ref_nn.c, ref_grad.c): padding never wins a max and is
 * not part of an average.
 *
 * The forward ops split output rows between threads; the gradients split
 * whole images, since neighbouring windows may add into the same input pixel. */
#include <math.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/cpu/cpu.h"
#include "runtime/cpu/cpu_vec.h"

#define SRC(g, n, i) (&(g)->nodes[(n)->src[i]])

/* The forward op's input `in` and output `out`, under a pooling window. */
static nnc_window window_of(const nnc_node *in, const nnc_node *out, const nnc_attrs *a) {
  return nnc_window_of(in, out, a->window[0], a->window[1], a);
}

/* The taps of output pixel (oy, ox) that fall inside the input: kernel rows
 * [*i0, *i1) and columns [*j0, *j1). */
static void taps_of(const nnc_window *w, int64_t oy, int64_t ox, int64_t *i0, int64_t *i1, int64_t *j0, int64_t *j1) {
  int64_t y0 = oy * w->sh - w->ph, x0 = ox * w->sw - w->pw;
  *i0 = y0 < 0 ? -y0 : 0;
  *i1 = w->ih - y0 < w->kh ? w->ih - y0 : w->kh;
  *j0 = x0 < 0 ? -x0 : 0;
  *j1 = w->iw - x0 < w->kw ? w->iw - x0 : w->kw;
}

typedef struct pool_task {
  nnc_window w;
  const float *x, *dy;
  float *out;
  int is_max;
  const nnc_cpu_args *args;
} pool_task;

/* The maximum over a window's taps inside the input, channel by channel: x
 * is the first such tap, `rows` x `cols` of them, input rows `stride`
 * floats apart. Strictly greater from -inf, as the reference, VW channels
 * at a time in registers. */
static void max_pixel(const float *x, int64_t rows, int64_t cols, int64_t stride, float *out, int64_t c) {
  for (int64_t c0 = 0; c0 < c; c0 += VW) {
    int n = c - c0 < VW ? (int)(c - c0) : VW;
    vf best = bcast(-INFINITY);
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < cols; j++) {
        best = max_v(load_part(x + i * stride + j * c + c0, n), best);
      }
    store_part(out + c0, best, n);
  }
}

/* Output rows [begin, end) of the (n, oy) rows. */
static void pool_rows(void *ctx, int64_t begin, int64_t end, int thread) {
  const pool_task *t = ctx;
  const nnc_window *w = &t->w;
  (void)thread;
  for (int64_t row = begin; row < end; row++) {
    int64_t n = row / w->oh, oy = row % w->oh;
    for (int64_t ox = 0; ox < w->ow; ox++) {
      float *o = t->out + (row * w->ow + ox) * w->ic;
      int64_t i0, i1, j0, j1;
      taps_of(w, oy, ox, &i0, &i1, &j0, &j1);
      const float *first = t->x + ((n * w->ih + oy * w->sh - w->ph + i0) * w->iw + ox * w->sw - w->pw + j0) * w->ic;
      if (t->is_max) {
        max_pixel(first, i1 - i0, j1 - j0, w->iw * w->ic, o, w->ic);
        continue;
      }
      for (int64_t ch = 0; ch < w->ic; ch++) o[ch] = 0.0f;
      for (int64_t i = 0; i < i1 - i0; i++)
        for (int64_t j = 0; j < j1 - j0; j++) {
          const float *s = first + (i * w->iw + j) * w->ic;
          for (int64_t ch = 0; ch < w->ic; ch++) o[ch] += s[ch];
        }
      float taps = (float)((i1 - i0) * (j1 - j0));
      for (int64_t ch = 0; ch < w->ic; ch++) o[ch] /= taps;
    }
  }
}

/* Whether input row (or column) i lies in some window of an axis with
 * `out` windows of `k` taps every `stride`, starting at -pad. */
static int covered(int64_t i, int64_t out, int64_t k, int64_t stride, int64_t pad) {
  int64_t from = i + pad;
  return from / stride < out && from % stride < k;
}

/* Max pooling's gradient at one output pixel: each channel's dy g goes to
 * the first maximum of its taps (strictly greater, in row-major tap order:
 * the one the forward op kept), the other taps get zero, stored or added
 * where windows overlap. x and d are the first tap inside the input and its
 * gradient; the taps are laid out as in max_pixel. The best value and its
 * tap stay in registers, VW channels at a time. */
static void max_route_pixel(const float *x, float *d, int64_t rows, int64_t cols, int64_t stride, const float *g,
                            int64_t c, int add) {
  for (int64_t c0 = 0; c0 < c; c0 += VW) {
    int n = c - c0 < VW ? (int)(c - c0) : VW;
    vf best = load_part(x + c0, n);
    vi arg = {0};
    int32_t tap = 0;
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < cols; j++, tap++) {
        vf v = load_part(x + i * stride + j * c + c0, n);
        vi better = v > best;
        best = max_v(v, best);
        arg = (arg & ~better) | (((vi){0} + tap) & better);
      }
    vf gv = load_part(g + c0, n);
    tap = 0;
    for (int64_t i = 0; i < rows; i++)
      for (int64_t j = 0; j < cols; j++, tap++) {
        float *at = d + i * stride + j * c + c0;
        vf r = (vf)((vi)gv & (arg == tap));
        store_part(at, add ? r + load_part(at, n) : r, n);
      }
  }
}

/* Elements [first, first + count) of the prologue's value, into part (so
 * the plan need not store it): its operands of its own size are read from
 * element first on, anything else (a scalar) whole. */
static const float *prologue_part(const nnc_cpu_epilogue *ep, int64_t first, int64_t count, float *part) {
  const nnc_cpu_args *p = ep->prologue;
  const void *in[NNC_MAX_SRC];
  for (int k = 0; k < p->k.n->nsrc; k++) in[k] = nnc_cpu_operand_from(p, k, nnc_node_numel(p->k.n), first);
  nnc_cpu_args a = *p;
  a.k.in = in, a.k.out = part, a.first = first;
  ep->prologue_range(&a, 0, count);
  return part;
}

/* Images [begin, end) of the gradient: max routes dy to the first maximum
 * of each window in row-major tap order (the one the forward op kept);
 * average spreads dy / taps over the window. When windows do not overlap
 * (stride >= window, the common 2x2 pool) each input pixel gets at most one
 * value, stored directly, and only pixels no window covers are zeroed;
 * otherwise the image is zeroed and the windows add into it. */
static void pool_grad_images(void *ctx, int64_t begin, int64_t end, int thread) {
  const pool_task *t = ctx;
  const nnc_window *w = &t->w;
  /* No scratch is NULL, and NULL plus even 0 is undefined. */
  float *part = t->args->scratch ? t->args->scratch + (size_t)thread * t->args->scratch_floats : NULL;
  int disjoint = w->sh >= w->kh && w->sw >= w->kw;
  size_t image = (size_t)(w->ih * w->iw * w->ic), pixel = sizeof(float) * (size_t)w->ic;
  const nnc_cpu_epilogue *ep = t->args->epilogue;
  int64_t dy_image = w->oh * w->ow * w->ic, stride = w->iw * w->ic;
  if (!disjoint) memset(t->out + (size_t)begin * image, 0, sizeof(float) * image * (size_t)(end - begin));
  for (int64_t n = begin; n < end; n++) {
    const float *dy = ep && ep->prologue ? prologue_part(ep, n * dy_image, dy_image, part) : t->dy + n * dy_image;
    for (int64_t iy = 0; iy < w->ih && disjoint; iy++)
      for (int64_t ix = 0; ix < w->iw; ix++)
        if (!covered(iy, w->oh, w->kh, w->sh, w->ph) || !covered(ix, w->ow, w->kw, w->sw, w->pw))
          memset(t->out + ((n * w->ih + iy) * w->iw + ix) * w->ic, 0, pixel);
    for (int64_t oy = 0; oy < w->oh; oy++)
      for (int64_t ox = 0; ox < w->ow; ox++) {
        const float *g = dy + (oy * w->ow + ox) * w->ic;
        int64_t i0, i1, j0, j1;
        taps_of(w, oy, ox, &i0, &i1, &j0, &j1);
        int64_t at = ((n * w->ih + oy * w->sh - w->ph + i0) * w->iw + ox * w->sw - w->pw + j0) * w->ic;
        if (t->is_max) {
          max_route_pixel(t->x + at, t->out + at, i1 - i0, j1 - j0, stride, g, w->ic, !disjoint);
          continue;
        }
        float taps = (float)((i1 - i0) * (j1 - j0));
        for (int64_t i = 0; i < i1 - i0; i++)
          for (int64_t j = 0; j < j1 - j0; j++) {
            float *d = t->out + at + i * stride + j * w->ic;
            if (disjoint)
              for (int64_t ch = 0; ch < w->ic; ch++) d[ch] = g[ch] / taps;
            else
              for (int64_t ch = 0; ch < w->ic; ch++) d[ch] += g[ch] / taps;
          }
      }
    if (ep && ep->count) nnc_cpu_epilogue_apply(ep, t->out, n * w->ih * w->iw, w->ih * w->iw, w->ic);
  }
}

static void run_pool(const nnc_cpu_args *a, int is_max) {
  const nnc_kernel_args *k = &a->k;
  pool_task t = {window_of(SRC(k->g, k->n, 0), k->n, &k->n->attrs), k->in[0], NULL, k->out, is_max, a};
  int64_t rows = t.w.batch * t.w.oh, row_work = t.w.ow * t.w.ic * t.w.kh * t.w.kw;
  nnc_cpu_parallel(rows, nnc_cpu_grain(rows, 4, (1 << 14) / (row_work ? row_work : 1) + 1), pool_rows, &t);
}

static void run_pool_grad(const nnc_cpu_args *a, const nnc_window *w, const float *x, const float *dy, int is_max) {
  pool_task t = {*w, x, dy, a->k.out, is_max, a};
  nnc_cpu_parallel(w->batch, 1, pool_grad_images, &t);
}

static void run_max_pool(const nnc_cpu_args *a) { run_pool(a, 1); }
static void run_avg_pool(const nnc_cpu_args *a) { run_pool(a, 0); }

static void run_max_pool_grad(const nnc_cpu_args *a) {
  const nnc_kernel_args *k = &a->k;
  nnc_window w = window_of(SRC(k->g, k->n, 0), SRC(k->g, k->n, 1), &k->n->attrs);
  run_pool_grad(a, &w, k->in[0], k->in[1], 1);
}

static void run_avg_pool_grad(const nnc_cpu_args *a) {
  const nnc_kernel_args *k = &a->k;
  nnc_window w = window_of(k->n, SRC(k->g, k->n, 0), &k->n->attrs);
  run_pool_grad(a, &w, NULL, k->in[0], 0);
}

/* max_pool_grad, per thread: one image of dy as a prologue computes it. */
static size_t max_pool_grad_scratch(const nnc_options *o, const nnc_graph *g, const nnc_node *n) {
  (void)o;
  const nnc_node *dy = SRC(g, n, 1);
  return (size_t)(dy->shape[1] * dy->shape[2] * dy->shape[3]);
}

const nnc_cpu_kernel nnc_cpu_max_pool = {.run = run_max_pool};
const nnc_cpu_kernel nnc_cpu_avg_pool = {.run = run_avg_pool};
/* An anchor of the pool-grad rule: the dropout gradient before it runs on
 * each image's dy, the activation gradient after it on each finished image. */
const nnc_cpu_kernel nnc_cpu_max_pool_grad = {
    .run = run_max_pool_grad, .scratch = max_pool_grad_scratch, .anchor = 1, .prologue = 1};
const nnc_cpu_kernel nnc_cpu_avg_pool_grad = {.run = run_avg_pool_grad};
