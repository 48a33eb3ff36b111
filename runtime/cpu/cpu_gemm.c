/* Matmul and convolution on BLAS: the ops where nearly all the FLOPs are.
 *
 * Convolution (one of the algorithms cpu_conv.c chooses from) is a GEMM on the im2col matrix: row r holds the kh x kw x ic
 * patch under output pixel r (zeros over the padding), in the order of the
 * HWIO kernel's rows, so with M = batch * oh * ow pixels, K = kh * kw * ic
 * and N = oc:
 *   conv2d              y[M,N]  = col(x)[M,K] * w[K,N]
 *   conv2d_grad_kernel  dw[K,N] = col(x)^T * dy[M,N]
 *   conv2d_grad_input   dx      = col2im(dy[M,N] * w^T), the transpose of im2col
 * NHWC makes a patch row a few contiguous runs of the input (one per kernel
 * row), copied with memcpy. A 1x1 stride-1 unpadded convolution needs no
 * im2col: the input is its own.
 *
 * The M rows are cut into chunks (a multiple of the thread count, each
 * im2col tile at most COL_BUDGET floats) and each thread takes a chunk at a
 * time: im2col, one single-threaded sgemm, then the fused epilogue while
 * the output tile is still in cache (conv2d_grad_input's epilogue is the
 * previous layer's activation gradient). conv2d_grad_input's chunks are whole
 * images, since col2im of neighbouring rows adds into the same input
 * pixels; conv2d_grad_kernel gives each thread a fixed share of the chunks
 * and adds the partial kernels in a fixed order, so every run gives the
 * same sums. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/cpu/cpu.h"

#define SRC(g, n, i) (&(g)->nodes[(n)->src[i]])

/* Largest im2col tile per thread, in floats (4 MB). */
#define COL_BUDGET (1 << 20)
/* Below this many multiply-adds a matmul runs on the calling thread. */
#define SMALL_GEMM (1 << 16)

static void sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                  int64_t ldb, float beta, float *c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (blasint)m, (blasint)n,
              (blasint)k, 1.0f, a, (blasint)lda, b, (blasint)ldb, beta, c, (blasint)ldc);
}

/* For a few taps (a first layer on 1 or 3 channels: K = 9 or 27) plain
 * loops beat BLAS, whose packing and setup then cost more than the
 * multiply-adds. C[m,n] = A[m,k] * B[k,n]: */
#define SMALL_K 32

static void small_nn(int64_t m, int64_t n, int64_t k, const float *a, const float *b, float *c) {
  for (int64_t r = 0; r < m; r++) {
    const float *ar = a + r * k;
    int64_t j0 = 0;
    for (; j0 + 16 <= n; j0 += 16) { /* 16 sums held in registers across the k taps */
      float acc[16] = {0};
      for (int64_t p = 0; p < k; p++)
        for (int j = 0; j < 16; j++) acc[j] += ar[p] * b[p * n + j0 + j];
      memcpy(c + r * n + j0, acc, sizeof acc);
    }
    for (int64_t j = j0; j < n; j++) {
      float sum = 0;
      for (int64_t p = 0; p < k; p++) sum += ar[p] * b[p * n + j];
      c[r * n + j] = sum;
    }
  }
}

/* C[k,n] = beta * C + A^T * B for A[m,k], B[m,n] (beta 0 or 1). */
static void small_tn(int64_t k, int64_t n, int64_t m, const float *a, const float *b, float beta, float *c) {
  if (beta == 0.0f) memset(c, 0, sizeof(float) * (size_t)(k * n));
  for (int64_t r = 0; r < m; r++)
    for (int64_t p = 0; p < k; p++) {
      const float av = a[r * k + p], *restrict br = b + r * n;
      float *restrict cp = c + p * n;
      for (int64_t j = 0; j < n; j++) cp[j] += av * br[j];
    }
}

/* ---- matmul ---------------------------------------------------------------- */

/* out[rows, cols] = A[rows, inner] * B[inner, cols], with the reference's
 * conventions: a rank > 2 A is a stack of rows; trans_a means A is stored
 * [inner, rows], trans_b that B is stored [cols, inner]. The larger of rows
 * and cols is split between the threads, each part one single-threaded
 * GEMM by the algorithm chosen for the shape (BLAS, or cpu_blocked.c's
 * loops where they measured faster: few rows against a large operand). */
typedef struct mm_task {
  const float *a, *b;
  float *c;
  int ta, tb, split_rows;
  int64_t m, n, k, parts;
  const nnc_cpu_epilogue *ep;
  nnc_cpu_mm_algo algo;
  float *scratch; /* per thread, scratch_floats each */
  size_t scratch_floats;
} mm_task;

/* Part p of [0, size), cut at multiples of 16 so every part but the last
 * is whole vectors. */
static void part_range(int64_t size, int64_t parts, int64_t p, int64_t *begin, int64_t *end) {
  *begin = p == 0 ? 0 : (size * p / parts) & ~(int64_t)15;
  *end = p == parts - 1 ? size : (size * (p + 1) / parts) & ~(int64_t)15;
}

static void part_gemm(const mm_task *t, int thread, int64_t m, int64_t n, const float *a, const float *b, float *c) {
  int64_t lda = t->ta ? t->m : t->k, ldb = t->tb ? t->k : t->n;
  if (t->algo == NNC_CPU_MM_BLOCKED && (t->scratch || !nnc_cpu_blocked_scratch(t->ta, t->tb, m, t->k)))
    nnc_cpu_blocked_gemm(t->ta, t->tb, m, n, t->k, a, lda, b, ldb, c, t->n,
                         t->scratch ? t->scratch + (size_t)thread * t->scratch_floats : NULL);
  else sgemm(t->ta, t->tb, m, n, t->k, a, lda, b, ldb, 0.0f, c, t->n);
}

static void mm_part(void *ctx, int64_t first, int64_t last, int thread) {
  const mm_task *t = ctx;
  for (int64_t p = first; p < last; p++) {
    int64_t b, e;
    if (t->split_rows) {
      part_range(t->m, t->parts, p, &b, &e);
      if (e <= b) continue;
      part_gemm(t, thread, e - b, t->n, t->ta ? t->a + b : t->a + b * t->k, t->b, t->c + b * t->n);
      if (t->ep && t->ep->count) nnc_cpu_epilogue_apply(t->ep, t->c, b, e - b, t->n);
    } else {
      part_range(t->n, t->parts, p, &b, &e);
      if (e <= b) continue;
      part_gemm(t, thread, t->m, e - b, t->a, t->tb ? t->b + b * t->k : t->b + b, t->c + b);
    }
  }
}

static void mm_epilogue_rows(void *ctx, int64_t begin, int64_t end, int thread) {
  const mm_task *t = ctx;
  (void)thread;
  nnc_cpu_epilogue_apply(t->ep, t->c, begin, end - begin, t->n);
}

static void mm_run(mm_task *t) {
  int threads = nnc_cpu_threads();
  t->split_rows = 1, t->parts = 1;
  if (threads > 1 && t->m * t->n * t->k >= SMALL_GEMM) {
    t->split_rows = t->m >= t->n;
    int64_t split = t->split_rows ? t->m : t->n;
    t->parts = split >= 16 * threads ? threads : split >= 32 ? split / 16 : 1;
  }
  nnc_cpu_parallel(t->parts, 1, mm_part, t);
  /* Split by columns, the epilogue needs whole rows: after, on the rows
   * (few of them where columns are split). */
  if (!t->split_rows && t->ep && t->ep->count) nnc_cpu_parallel(t->m, nnc_cpu_grain(t->m, 1, 64), mm_epilogue_rows, t);
}

static mm_task mm_task_of(const nnc_graph *g, const nnc_node *n) {
  const nnc_node *b = SRC(g, n, 1);
  mm_task t = {.ta = n->attrs.trans_a, .tb = n->attrs.trans_b};
  t.n = n->shape[n->rank - 1];
  t.m = nnc_node_numel(n) / t.n;
  t.k = t.tb ? b->shape[1] : b->shape[0];
  return t;
}

/* The matmul's measured choice: the whole shape, on made-up operands. */
typedef struct mm_shape {
  int ta, tb;
  int64_t m, n, k;
} mm_shape;

static const char *const mm_names[NNC_CPU_MM_ALGOS] = {"blas", "blocked"};

static int mm_fits(const nnc_options *o, int algo, const void *shape) {
  const mm_shape *s = shape;
  (void)o;
  return algo != NNC_CPU_MM_BLOCKED || nnc_cpu_blocked_fits(s->ta, s->tb);
}

static void mm_release(void *data) {
  mm_task *t = data;
  free((void *)t->a), free((void *)t->b), free(t->c), free(t->scratch), free(t);
}

static void *mm_setup(const nnc_options *o, const void *shape) {
  const mm_shape *s = shape;
  mm_task *t = calloc(1, sizeof *t);
  (void)o;
  if (!t) return NULL;
  *t = (mm_task){.ta = s->ta, .tb = s->tb, .m = s->m, .n = s->n, .k = s->k};
  float *a = malloc(sizeof(float) * (size_t)(s->m * s->k)), *b = malloc(sizeof(float) * (size_t)(s->k * s->n));
  t->a = a, t->b = b, t->c = malloc(sizeof(float) * (size_t)(s->m * s->n));
  t->scratch_floats = nnc_cpu_blocked_scratch(s->ta, s->tb, s->m, s->k);
  t->scratch = malloc(sizeof(float) * (t->scratch_floats * (size_t)nnc_cpu_threads() + 1));
  if (!a || !b || !t->c || !t->scratch) {
    mm_release(t);
    return NULL;
  }
  nnc_cpu_choice_fill(a, (size_t)(s->m * s->k)), nnc_cpu_choice_fill(b, (size_t)(s->k * s->n));
  return t;
}

static void mm_measured_run(void *data, int algo) {
  mm_task *t = data;
  t->algo = (nnc_cpu_mm_algo)algo;
  mm_run(t);
}

static nnc_cpu_choices mm_memory;

const nnc_cpu_choice_kind nnc_cpu_mm_choice = {"cpu_matmul.tsv", NNC_CPU_MM_ALGOS, mm_names,    mm_fits,
                                               mm_setup,         mm_measured_run,  mm_release, &mm_memory};

nnc_cpu_mm_algo nnc_cpu_mm_choose(const nnc_options *o, int ta, int tb, int64_t m, int64_t n, int64_t k) {
  mm_shape s = {ta, tb, m, n, k};
  char text[96];
  snprintf(text, sizeof text, "%c%c\t%lld,%lld,%lld", ta ? 't' : 'n', tb ? 't' : 'n', (long long)m, (long long)n,
           (long long)k);
  return (nnc_cpu_mm_algo)nnc_cpu_choose(&nnc_cpu_mm_choice, o, o->cpu_matmul, text, &s);
}

/* Asked when the graph is prepared, so the choice is measured then. */
static size_t mm_scratch(const nnc_options *o, const nnc_graph *g, const nnc_node *n) {
  mm_task t = mm_task_of(g, n);
  nnc_cpu_mm_algo algo = nnc_cpu_mm_choose(o, t.ta, t.tb, t.m, t.n, t.k);
  return algo == NNC_CPU_MM_BLOCKED ? nnc_cpu_blocked_scratch(t.ta, t.tb, t.m, t.k) : 0;
}

static void run_matmul(const nnc_cpu_args *args) {
  const nnc_kernel_args *k = &args->k;
  mm_task t = mm_task_of(k->g, k->n);
  t.a = k->in[0], t.b = k->in[1], t.c = k->out, t.ep = args->epilogue;
  t.scratch = args->scratch, t.scratch_floats = args->scratch_floats;
  t.algo = nnc_cpu_mm_choose(args->opts, t.ta, t.tb, t.m, t.n, t.k);
  mm_run(&t);
}

const nnc_cpu_kernel nnc_cpu_matmul = {.run = run_matmul, .scratch = mm_scratch, .anchor = 1};

/* ---- convolution ------------------------------------------------------------ */

typedef struct conv_geom {
  nnc_window w;
  int64_t k;      /* kh * kw * ic: one im2col row */
  int64_t pixels; /* oh * ow: output rows per image */
  int direct;     /* 1x1, stride 1, unpadded: the input is its own im2col */
} conv_geom;

static conv_geom geometry(const nnc_window *win) {
  nnc_window w = *win;
  conv_geom q = {w, w.kh * w.kw * w.ic, w.oh * w.ow, 0};
  q.direct = w.kh == 1 && w.kw == 1 && w.sh == 1 && w.sw == 1 && w.ph == 0 && w.pw == 0 && w.oh == w.ih &&
             w.ow == w.iw;
  return q;
}

/* How a convolution's M rows are cut: `units` of `unit_rows` rows each
 * (1, or whole images for col2im), in `chunks` chunks. */
typedef struct conv_plan {
  conv_geom q;
  int64_t units, unit_rows, chunks;
  size_t col_floats;   /* im2col tile per thread */
  size_t extra_floats; /* a partial kernel per thread (conv2d_grad_kernel) */
} conv_plan;

static conv_plan plan_of(conv_geom q, int whole_images, int partial_kernel) {
  conv_plan p = {q, 0, whole_images ? q.pixels : 1, 0, 0, 0};
  p.units = q.w.batch * q.pixels / p.unit_rows;
  int64_t unit_floats = p.unit_rows * q.k, threads = nnc_cpu_threads();
  int64_t per_chunk = COL_BUDGET / unit_floats > 0 ? COL_BUDGET / unit_floats : 1;
  p.chunks = (p.units + per_chunk - 1) / per_chunk;
  p.chunks = (p.chunks + threads - 1) / threads * threads;
  if (p.chunks > p.units) p.chunks = p.units;
  p.col_floats = q.direct ? 0 : (size_t)((p.units + p.chunks - 1) / p.chunks * unit_floats);
  p.extra_floats = partial_kernel ? (size_t)(q.k * q.w.oc) : 0;
  return p;
}

/* Rows [r0, r1) of chunk c. */
static void chunk_rows(const conv_plan *p, int64_t c, int64_t *r0, int64_t *r1) {
  *r0 = p->units * c / p->chunks * p->unit_rows;
  *r1 = p->units * (c + 1) / p->chunks * p->unit_rows;
}

/* Walks rows [r0, r1) of the im2col matrix, calling `copy` for each kernel
 * row's run of taps that lands inside the input: `taps` taps starting at
 * tap j0 of kernel row i, whose input pixels are contiguous from `at`
 * (taps are consecutive input pixels whatever the stride). Runs over the
 * padding are left to the caller: im2col zeroes them, col2im skips them. */
#define FOR_EACH_RUN(q, r0, r1, BODY)                                                  \
  do {                                                                                 \
    int64_t n_ = (r0) / (q)->pixels, y_ = (r0) % (q)->pixels / (q)->w.ow;                \
    int64_t x_ = (r0) % (q)->w.ow;                                                       \
    for (int64_t r = (r0); r < (r1); r++) {                                            \
      int64_t ix0 = x_ * (q)->w.sw - (q)->w.pw;                                            \
      int64_t j0 = ix0 < 0 ? -ix0 : 0;                                                 \
      int64_t j1 = (q)->w.iw - ix0 < (q)->w.kw ? (q)->w.iw - ix0 : (q)->w.kw;                  \
      for (int64_t i = 0; i < (q)->w.kh; i++) {                                          \
        int64_t iy = y_ * (q)->w.sh + i - (q)->w.ph;                                       \
        int inside = iy >= 0 && iy < (q)->w.ih && j1 > j0;                               \
        int64_t at = inside ? ((n_ * (q)->w.ih + iy) * (q)->w.iw + ix0 + j0) * (q)->w.ic : 0; \
        BODY                                                                           \
      }                                                                                \
      if (++x_ == (q)->w.ow) {                                                           \
        x_ = 0;                                                                        \
        if (++y_ == (q)->w.oh) y_ = 0, n_++;                                             \
      }                                                                                \
    }                                                                                  \
  } while (0)

/* Runs are a few floats for a layer on few channels: a call to memcpy or
 * memset would cost more than the copy. */
static void copy_floats(float *restrict dst, const float *restrict src, int64_t count) {
  if (count >= 32) memcpy(dst, src, sizeof(float) * (size_t)count);
  else
    for (int64_t i = 0; i < count; i++) dst[i] = src[i];
}

static void zero_floats(float *dst, int64_t count) {
  if (count >= 32) memset(dst, 0, sizeof(float) * (size_t)count);
  else
    for (int64_t i = 0; i < count; i++) dst[i] = 0.0f;
}

static void im2col(const conv_geom *q, const float *x, int64_t r0, int64_t r1, float *col) {
  int64_t run = q->w.kw * q->w.ic;
  FOR_EACH_RUN(q, r0, r1, {
    float *dst = col + (r - r0) * q->k + i * run;
    if (!inside) {
      zero_floats(dst, run);
    } else {
      zero_floats(dst, j0 * q->w.ic);
      copy_floats(dst + j0 * q->w.ic, x + at, (j1 - j0) * q->w.ic);
      zero_floats(dst + j1 * q->w.ic, (q->w.kw - j1) * q->w.ic);
    }
  });
}

static void col2im(const conv_geom *q, const float *col, int64_t r0, int64_t r1, float *dx) {
  int64_t run = q->w.kw * q->w.ic;
  FOR_EACH_RUN(q, r0, r1, {
    if (inside) {
      const float *s = col + (r - r0) * q->k + i * run + j0 * q->w.ic;
      float *d = dx + at;
      int64_t count = (j1 - j0) * q->w.ic;
      for (int64_t t = 0; t < count; t++) d[t] += s[t];
    }
  });
}

typedef struct conv_task {
  conv_plan p;
  const float *x, *w, *dy;
  float *out;
  const nnc_cpu_args *args;
  int touched[NNC_CPU_MAX_THREADS]; /* conv2d_grad_kernel: which parts hold a partial sum */
} conv_task;

static float *thread_col(const conv_task *t, int thread) {
  return t->args->scratch + (size_t)thread * t->args->scratch_floats;
}

static void conv_forward_chunk(void *ctx, int64_t c0, int64_t c1, int thread) {
  const conv_task *t = ctx;
  const conv_geom *q = &t->p.q;
  for (int64_t c = c0; c < c1; c++) {
    int64_t r0, r1;
    chunk_rows(&t->p, c, &r0, &r1);
    const float *a = q->direct ? t->x + r0 * q->k : thread_col(t, thread);
    if (!q->direct) im2col(q, t->x, r0, r1, thread_col(t, thread));
    if (q->k <= SMALL_K) small_nn(r1 - r0, q->w.oc, q->k, a, t->w, t->out + r0 * q->w.oc);
    else sgemm(0, 0, r1 - r0, q->w.oc, q->k, a, q->k, t->w, q->w.oc, 0.0f, t->out + r0 * q->w.oc, q->w.oc);
    if (t->args->epilogue && t->args->epilogue->count)
      nnc_cpu_epilogue_apply(t->args->epilogue, t->out, r0, r1 - r0, q->w.oc);
  }
}

static void conv_grad_input_chunk(void *ctx, int64_t c0, int64_t c1, int thread) {
  const conv_task *t = ctx;
  const conv_geom *q = &t->p.q;
  for (int64_t c = c0; c < c1; c++) {
    int64_t r0, r1;
    chunk_rows(&t->p, c, &r0, &r1);
    int64_t n0 = r0 / q->pixels, n1 = r1 / q->pixels, image = q->w.ih * q->w.iw;
    if (q->direct) {
      sgemm(0, 1, r1 - r0, q->k, q->w.oc, t->dy + r0 * q->w.oc, q->w.oc, t->w, q->w.oc, 0.0f, t->out + r0 * q->k, q->k);
    } else {
      float *col = thread_col(t, thread);
      sgemm(0, 1, r1 - r0, q->k, q->w.oc, t->dy + r0 * q->w.oc, q->w.oc, t->w, q->w.oc, 0.0f, col, q->k);
      memset(t->out + n0 * image * q->w.ic, 0, sizeof(float) * (size_t)((n1 - n0) * image * q->w.ic));
      col2im(q, col, r0, r1, t->out);
    }
    if (t->args->epilogue && t->args->epilogue->count)
      nnc_cpu_epilogue_apply(t->args->epilogue, t->out, n0 * image, (n1 - n0) * image, q->w.ic);
  }
}

/* Part p of the threads' fixed share of the chunks sums into partial p
 * (kept after the im2col tile in thread p's scratch), whichever thread runs
 * it, so the sum is the same in every run. */
static void conv_grad_kernel_part(void *ctx, int64_t p0, int64_t p1, int thread) {
  conv_task *t = ctx;
  const conv_geom *q = &t->p.q;
  float *col = thread_col(t, thread);
  int64_t parts = nnc_cpu_threads();
  for (int64_t p = p0; p < p1; p++) {
    float *partial = thread_col(t, (int)p) + t->p.col_floats;
    for (int64_t c = t->p.chunks * p / parts; c < t->p.chunks * (p + 1) / parts; c++) {
      int64_t r0, r1;
      chunk_rows(&t->p, c, &r0, &r1);
      const float *a = q->direct ? t->x + r0 * q->k : col;
      if (!q->direct) im2col(q, t->x, r0, r1, col);
      float beta = t->touched[p] ? 1.0f : 0.0f;
      if (q->k <= SMALL_K) small_tn(q->k, q->w.oc, r1 - r0, a, t->dy + r0 * q->w.oc, beta, partial);
      else sgemm(1, 0, q->k, q->w.oc, r1 - r0, a, q->k, t->dy + r0 * q->w.oc, q->w.oc, beta, partial, q->w.oc);
      t->touched[p] = 1;
    }
  }
}

/* dw = the sum of the partial kernels of the threads that took a chunk. */
static void conv_sum_partials(void *ctx, int64_t begin, int64_t end, int thread) {
  const conv_task *t = ctx;
  (void)thread;
  memset(t->out + begin, 0, sizeof(float) * (size_t)(end - begin));
  for (int s = 0; s < nnc_cpu_threads(); s++) {
    if (!t->touched[s]) continue; /* the part had no chunk */
    const float *partial = thread_col(t, s) + t->p.col_floats;
    for (int64_t i = begin; i < end; i++) t->out[i] += partial[i];
  }
}

static conv_plan plan_for(nnc_cpu_conv_pass pass, const nnc_window *w) {
  return plan_of(geometry(w), pass == NNC_CPU_CONV_GRAD_INPUT, pass == NNC_CPU_CONV_GRAD_KERNEL);
}

size_t nnc_cpu_gemm_conv_scratch(nnc_cpu_conv_pass pass, const nnc_window *w) {
  conv_plan p = plan_for(pass, w);
  return p.col_floats + p.extra_floats;
}

void nnc_cpu_gemm_conv(nnc_cpu_conv_pass pass, const nnc_window *w, const float *a, const float *b, float *out,
                       const nnc_cpu_args *args) {
  conv_task t = {.p = plan_for(pass, w), .out = out, .args = args};
  switch (pass) {
  case NNC_CPU_CONV_FORWARD:
    t.x = a, t.w = b;
    nnc_cpu_parallel(t.p.chunks, 1, conv_forward_chunk, &t);
    break;
  case NNC_CPU_CONV_GRAD_INPUT:
    t.dy = a, t.w = b;
    nnc_cpu_parallel(t.p.chunks, 1, conv_grad_input_chunk, &t);
    break;
  case NNC_CPU_CONV_GRAD_KERNEL: {
    t.x = a, t.dy = b;
    nnc_cpu_parallel(nnc_cpu_threads(), 1, conv_grad_kernel_part, &t);
    int64_t count = t.p.q.k * t.p.q.w.oc;
    nnc_cpu_parallel(count, nnc_cpu_grain(count, 1, 4096), conv_sum_partials, &t);
    break;
  }
  }
}
