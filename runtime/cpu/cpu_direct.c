/* Direct convolution, NHWC: no im2col matrix and no GEMM call, for the
 * shapes where those cost more than the multiply-adds (few channels, a
 * first layer on one input channel, thin kernel gradients).
 *
 * All three ops are one correlation over a "virtual input" V, a band of
 * rows built per thread in scratch with the padding as zeros:
 *   conv2d              y[oy][ox][o] = sum_{i,j,c} V[oy*s + i][ox*s + j][c] w[i][j][c][o],
 *                       V = x shifted by the padding;
 *   conv2d_grad_input   dx = the same correlation, stride 1, of V = dy spread
 *                       out by the stride (zeros between its pixels) and
 *                       shifted by kh - 1 - ph, with w turned 180 degrees
 *                       and its channel axes swapped;
 *   conv2d_grad_kernel  dw[i][j][c][o] = sum_{oy,ox} V[oy*s + i][ox*s + j][c] dy[oy][ox][o].
 * The kernel is repacked once per call with its output channels padded to a
 * whole number of vectors, so every load is a full vector.
 *
 * Register blocking: the forward kernel keeps R output pixels x NV vectors
 * of output channels in registers (R * NV accumulators) across all
 * kh * kw * c taps: each tap loads NV kernel vectors and broadcasts R input
 * values, R * NV fused multiply-adds. The epilogue (bias, relu, relu_grad)
 * is applied to the accumulators before the one store; other members run
 * on each finished row while it is in L1. The kernel gradient keeps R rows
 * of dw (taps) x NV vectors in registers across all the pixels of a band.
 *
 * The vector width is the compiler's target's (runtime/cpu/cpu_vec.h). */
#include <string.h>

#include "ir/op.h"
#include "ir/pointwise.h"
#include "runtime/cpu/cpu.h"
#include "runtime/cpu/cpu_vec.h"


/* ---- the correlation ------------------------------------------------------------- */

/* One correlation as above. V has c channels; its band rows are pw pixels
 * wide, row y of the band being V's row y0 + y. V's pixel (vy, vx) is the
 * source's pixel ((vy - py) / step, (vx - px) / step) when both divide and
 * fall inside the source [sh, sw], else zero. */
typedef struct corr {
  int64_t batch, sh, sw, c;  /* the source */
  int64_t step, py, px;      /* how V spreads and shifts it */
  int64_t kh, kw, s;         /* taps and stride */
  int64_t oh, ow, oc, ocp;   /* the output (ocp: oc padded to vectors) */
  int64_t pw, band;          /* V's width, output rows per band */
  int64_t bands, units;      /* bands per image, units (image, band) in all */
  const float *src;
} corr;

static corr corr_of(const nnc_window *w, nnc_cpu_conv_pass pass, const float *src) {
  corr q = {w->batch, w->ih, w->iw, w->ic, 1, w->ph, w->pw, w->kh, w->kw, w->sh, w->oh, w->ow, w->oc, 0, 0, 0, 0,
            0, src};
  if (pass == NNC_CPU_CONV_GRAD_INPUT) /* V from dy; the output is dx */
    q = (corr){w->batch, w->oh, w->ow, w->oc, w->sh, w->kh - 1 - w->ph, w->kw - 1 - w->pw, w->kh, w->kw, 1, w->ih,
               w->iw, w->ic, 0, 0, 0, 0, 0, src};
  q.ocp = (q.oc + VW - 1) / VW * VW;
  q.pw = (q.ow - 1) * q.s + q.kw;
  /* Whole images per unit while there are a few per thread; bands of rows otherwise. */
  int64_t want = 4 * (int64_t)nnc_cpu_threads();
  q.band = q.batch >= want ? q.oh : (q.batch * q.oh + want - 1) / want;
  if (q.band < 1) q.band = 1;
  if (q.band > q.oh) q.band = q.oh;
  q.bands = (q.oh + q.band - 1) / q.band;
  q.units = q.batch * q.bands;
  return q;
}

/* Floats of one band of V. */
static size_t band_floats(const corr *q) { return (size_t)(((q->band - 1) * q->s + q->kh) * q->pw * q->c); }

/* V's rows [vy0, vy0 + rows) of image n into band. */
static void fill_band(const corr *q, int64_t n, int64_t vy0, int64_t rows, float *band) {
  size_t row_floats = (size_t)(q->pw * q->c);
  for (int64_t y = 0; y < rows; y++) {
    float *dst = band + (size_t)y * row_floats;
    int64_t sy = vy0 + y - q->py;
    if (sy < 0 || sy % q->step || sy / q->step >= q->sh) {
      memset(dst, 0, sizeof(float) * row_floats);
      continue;
    }
    const float *row = q->src + (n * q->sh + sy / q->step) * q->sw * q->c;
    if (q->step == 1) {
      /* pixels [px, px + sw) of the band row are the source row's, clipped to pw */
      int64_t first = q->px < q->pw ? q->px : q->pw, last = q->px + q->sw < q->pw ? q->px + q->sw : q->pw;
      memset(dst, 0, sizeof(float) * (size_t)(first * q->c));
      if (last > first) memcpy(dst + first * q->c, row, sizeof(float) * (size_t)((last - first) * q->c));
      memset(dst + (last > first ? last : first) * q->c, 0,
             sizeof(float) * (size_t)((q->pw - (last > first ? last : first)) * q->c));
    } else {
      memset(dst, 0, sizeof(float) * row_floats);
      for (int64_t sx = 0; sx < q->sw && q->px + sx * q->step < q->pw; sx++)
        memcpy(dst + (q->px + sx * q->step) * q->c, row + sx * q->c, sizeof(float) * (size_t)q->c);
    }
  }
}

/* ---- forward: R pixels x NV vectors ------------------------------------------ */

/* The epilogue members applied in registers, or all of them after each row. */
typedef struct fused {
  const nnc_cpu_epilogue *ep;
  int in_registers; /* every member is bias_add, relu or relu_grad */
} fused;

static fused fused_of(const nnc_cpu_epilogue *ep) {
  fused f = {ep && ep->count ? ep : NULL, 1};
  for (int s = 0; f.ep && s < ep->count; s++)
    if (ep->op[s] != NNC_OP_BIAS_ADD && ep->op[s] != NNC_OP_RELU && ep->op[s] != NNC_OP_RELU_GRAD) f.in_registers = 0;
  return f;
}

/* relu and relu_grad on a vector by their rows of ir/pointwise.def, lane by
 * lane through memory: GCC turns each loop back into one vector compare and
 * select, so the registers hold the accumulators throughout. */
static inline vf relu_v(vf x) {
  float v[VW];
  store(v, x);
#pragma GCC unroll 1
  for (int l = 0; l < VW; l++) v[l] = nnc_pw_relu(v[l], 0.0f);
  return load(v);
}

static inline vf relu_grad_v(vf y, vf dy) {
  float a[VW], b[VW];
  store(a, y), store(b, dy);
#pragma GCC unroll 1
  for (int l = 0; l < VW; l++) b[l] = nnc_pw_relu_grad(a[l], b[l], 0.0f);
  return load(b);
}

/* The in-register members on channels [k, k + n) of output element `at`. */
static inline vf epilogue_v(const fused *f, vf v, int64_t k, int n, int64_t at) {
  for (int s = 0; s < f->ep->count; s++) {
    switch (f->ep->op[s]) {
    case NNC_OP_BIAS_ADD:
      v += load_part(f->ep->operand[s] + k, n);
      break;
    case NNC_OP_RELU:
      v = relu_v(v);
      break;
    default: /* relu_grad: dy passes where the activation's output y is positive */
      v = relu_grad_v(load_part(f->ep->operand[s] + at, n), v);
      break;
    }
  }
  return v;
}

typedef struct block_args {
  const corr *q;
  const float *x;  /* V at the block's first pixel, band-relative */
  const float *wp; /* packed kernel at the block's first output channel */
  float *out;      /* the output at the block's first pixel and channel */
  int64_t k;       /* the block's first output channel */
  int64_t at;      /* out's element index, for an epilogue operand shaped like it */
  const fused *f;
} block_args;

typedef void block_fn(const block_args *b);

static inline __attribute__((always_inline)) void forward_block(const block_args *b, const int NV, const int R) {
  const corr *q = b->q;
  vf acc[MAX_R][MAX_NV];
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) acc[r][v] = (vf){0};
  int64_t c = q->c, ocp = q->ocp, step = q->s * c;
  for (int64_t i = 0; i < q->kh; i++)
    for (int64_t j = 0; j < q->kw; j++) {
      const float *x = b->x + (i * q->pw + j) * c, *w = b->wp + (i * q->kw + j) * c * ocp;
      for (int64_t ch = 0; ch < c; ch++) {
        vf wv[MAX_NV];
        for (int v = 0; v < NV; v++) wv[v] = load(w + ch * ocp + v * VW);
        for (int r = 0; r < R; r++) {
          vf xb = bcast(x[r * step + ch]);
          for (int v = 0; v < NV; v++) acc[r][v] = fma_v(xb, wv[v], acc[r][v]);
        }
      }
    }
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) {
      int64_t k = b->k + v * VW;
      int n = q->oc - k < VW ? (int)(q->oc - k) : VW;
      int64_t at = b->at + r * q->oc + v * VW;
      vf y = b->f->ep && b->f->in_registers ? epilogue_v(b->f, acc[r][v], k, n, at) : acc[r][v];
      store_part(b->out + r * q->oc + v * VW, y, n);
    }
}

/* The kernel gradient: R taps (rows of dw, at offsets off[] into V from a
 * pixel) x NV vectors of output channels, summed over the band's pixels
 * into sum (R rows of ocp floats). */
typedef struct grad_args {
  const corr *q;
  const float *band; /* V's band */
  const float *dy;   /* the band's dy, [pixels][ocp] */
  int64_t pixels_y;  /* output rows in the band */
  const int64_t *off;
  float *sum;
} grad_args;

typedef void grad_fn(const grad_args *g);

static inline __attribute__((always_inline)) void grad_block(const grad_args *g, const int NV, const int R) {
  const corr *q = g->q;
  vf acc[MAX_R][MAX_NV];
  int64_t off[MAX_R];
  for (int r = 0; r < R; r++) {
    off[r] = g->off[r];
    for (int v = 0; v < NV; v++) acc[r][v] = load(g->sum + r * q->ocp + v * VW);
  }
  const float *dy = g->dy;
  for (int64_t oy = 0; oy < g->pixels_y; oy++) {
    const float *x = g->band + oy * q->s * q->pw * q->c;
    for (int64_t ox = 0; ox < q->ow; ox++, x += q->s * q->c, dy += q->ocp) {
      vf d[MAX_NV];
      for (int v = 0; v < NV; v++) d[v] = load(dy + v * VW);
      for (int r = 0; r < R; r++) {
        vf xb = bcast(x[off[r]]);
        for (int v = 0; v < NV; v++) acc[r][v] = fma_v(xb, d[v], acc[r][v]);
      }
    }
  }
  for (int r = 0; r < R; r++)
    for (int v = 0; v < NV; v++) store(g->sum + r * q->ocp + v * VW, acc[r][v]);
}

/* One function per (NV, R), so the accumulators are named registers. */
#define DEFINE(NV, R)                                                                 \
  static void forward_##NV##_##R(const block_args *b) { forward_block(b, NV, R); }     \
  static void grad_##NV##_##R(const grad_args *g) { grad_block(g, NV, R); }
NV_LIST(DEFINE)
#undef DEFINE
#define ENTRY(NV, R) [NV - 1][R - 1] = forward_##NV##_##R,
static block_fn *const forward_fns[MAX_NV][MAX_R] = {NV_LIST(ENTRY)};
#undef ENTRY
#define ENTRY(NV, R) [NV - 1][R - 1] = grad_##NV##_##R,
static grad_fn *const grad_fns[MAX_NV][MAX_R] = {NV_LIST(ENTRY)};
#undef ENTRY

/* Vectors per block of output channels: as many as fit, spread evenly. */
static int nv_of(const corr *q) {
  int64_t vectors = q->ocp / VW, blocks = (vectors + MAX_NV - 1) / MAX_NV;
  return (int)((vectors + blocks - 1) / blocks);
}

/* ---- tasks ---------------------------------------------------------------------- */

typedef struct direct_task {
  corr q;
  const float *w;  /* the op's kernel */
  const float *dy; /* conv2d_grad_kernel */
  float *out, *wp, *scratch;
  size_t area; /* per thread (or part) of scratch */
  int64_t parts;
  nnc_cpu_conv_pass pass;
  fused f;
} direct_task;

/* The packed kernel [kh][kw][c][ocp] for input channels [c0, c1). */
static void pack_kernel(void *ctx, int64_t c0, int64_t c1, int thread) {
  const direct_task *t = ctx;
  const corr *q = &t->q;
  (void)thread;
  for (int64_t i = 0; i < q->kh; i++)
    for (int64_t j = 0; j < q->kw; j++)
      for (int64_t c = c0; c < c1; c++) {
        float *dst = t->wp + ((i * q->kw + j) * q->c + c) * q->ocp;
        if (t->pass == NNC_CPU_CONV_GRAD_INPUT) /* w[kh-1-i][kw-1-j][o][c], o < oc: dx's channels */
          for (int64_t o = 0; o < q->oc; o++)
            dst[o] = t->w[(((q->kh - 1 - i) * q->kw + q->kw - 1 - j) * q->oc + o) * q->c + c];
        else
          memcpy(dst, t->w + ((i * q->kw + j) * q->c + c) * q->oc, sizeof(float) * (size_t)q->oc);
        memset(dst + q->oc, 0, sizeof(float) * (size_t)(q->ocp - q->oc));
      }
}

/* The first output row of a unit, and how many. */
static void unit_rows(const corr *q, int64_t u, int64_t *n, int64_t *oy0, int64_t *rows) {
  *n = u / q->bands;
  *oy0 = u % q->bands * q->band;
  *rows = q->oh - *oy0 < q->band ? q->oh - *oy0 : q->band;
}

/* Output row oy (band row y) of image n: blocks of pixels, balanced so no
 * block is much thinner than the others. */
static void forward_row(const direct_task *t, const float *band, int64_t n, int64_t oy, int64_t y) {
  const corr *q = &t->q;
  int nv_max = nv_of(q);
  for (int64_t k = 0; k < q->oc; k += nv_max * VW) {
    int nv = (q->oc - k + VW - 1) / VW < nv_max ? (int)((q->oc - k + VW - 1) / VW) : nv_max;
    int64_t blocks = (q->ow + max_rows(nv) - 1) / max_rows(nv), ox = 0;
    for (int64_t b = 0; b < blocks; b++) {
      int r = (int)((q->ow - ox) / (blocks - b));
      int64_t at = ((n * q->oh + oy) * q->ow + ox) * q->oc + k;
      block_args a = {q, band + (y * q->s * q->pw + ox * q->s) * q->c, t->wp + k, t->out + at, k, at, &t->f};
      forward_fns[nv - 1][r - 1](&a);
      ox += r;
    }
  }
}

static void forward_units(void *ctx, int64_t u0, int64_t u1, int thread) {
  const direct_task *t = ctx;
  const corr *q = &t->q;
  float *band = t->scratch + (size_t)thread * t->area;
  for (int64_t u = u0; u < u1; u++) {
    int64_t n, oy0, rows;
    unit_rows(q, u, &n, &oy0, &rows);
    fill_band(q, n, oy0 * q->s, (rows - 1) * q->s + q->kh, band);
    for (int64_t y = 0; y < rows; y++) forward_row(t, band, n, oy0 + y, y);
    if (t->f.ep && !t->f.in_registers)
      nnc_cpu_epilogue_apply(t->f.ep, t->out, (n * q->oh + oy0) * q->ow, rows * q->ow, q->oc);
  }
}

/* ---- the kernel gradient ---------------------------------------------------------- */

/* Floats of a part's sum: dw with its output channels padded. */
static size_t sum_floats(const corr *q) { return (size_t)(q->kh * q->kw * q->c * q->ocp); }
/* dy of one band, padded, after V's band. */
static size_t dy_floats(const corr *q) { return (size_t)(q->band * q->ow * q->ocp); }

/* Part p's share of the units, the same in every run, sums into its own
 * area whichever thread runs it; the parts are added in order after. */
static void grad_parts(void *ctx, int64_t p0, int64_t p1, int thread) {
  const direct_task *t = ctx;
  const corr *q = &t->q;
  float *band = t->scratch + (size_t)thread * t->area, *dy = band + band_floats(q);
  int64_t taps = q->kh * q->kw * q->c, off[MAX_R];
  int nv_max = nv_of(q);
  for (int64_t p = p0; p < p1; p++) {
    float *sum = t->scratch + (size_t)p * t->area + band_floats(q) + dy_floats(q);
    memset(sum, 0, sizeof(float) * sum_floats(q));
    for (int64_t u = t->q.units * p / t->parts; u < t->q.units * (p + 1) / t->parts; u++) {
      int64_t n, oy0, rows;
      unit_rows(q, u, &n, &oy0, &rows);
      fill_band(q, n, oy0 * q->s, (rows - 1) * q->s + q->kh, band);
      for (int64_t pix = 0; pix < rows * q->ow; pix++) {
        float *d = dy + pix * q->ocp;
        memcpy(d, t->dy + ((n * q->oh + oy0) * q->ow + pix) * q->oc, sizeof(float) * (size_t)q->oc);
        memset(d + q->oc, 0, sizeof(float) * (size_t)(q->ocp - q->oc));
      }
      for (int64_t k = 0; k < q->oc; k += nv_max * VW) {
        int nv = (q->oc - k + VW - 1) / VW < nv_max ? (int)((q->oc - k + VW - 1) / VW) : nv_max;
        int64_t blocks = (taps + max_rows(nv) - 1) / max_rows(nv), tap = 0;
        for (int64_t b = 0; b < blocks; b++) {
          int r = (int)((taps - tap) / (blocks - b));
          for (int i = 0; i < r; i++) { /* tap (ki, kj, c) reads V at (ki, kj) from the pixel */
            int64_t c = (tap + i) % q->c, kj = (tap + i) / q->c % q->kw, ki = (tap + i) / q->c / q->kw;
            off[i] = (ki * q->pw + kj) * q->c + c;
          }
          grad_args a = {q, band, dy + k, rows, off, sum + tap * q->ocp + k};
          grad_fns[nv - 1][r - 1](&a);
          tap += r;
        }
      }
    }
  }
}

/* dw = the parts' sums in part order, for taps [r0, r1). */
static void grad_sum(void *ctx, int64_t r0, int64_t r1, int thread) {
  const direct_task *t = ctx;
  const corr *q = &t->q;
  (void)thread;
  for (int64_t r = r0; r < r1; r++) {
    float *dst = t->out + r * q->oc;
    memset(dst, 0, sizeof(float) * (size_t)q->oc);
    for (int64_t p = 0; p < t->parts; p++) {
      const float *sum = t->scratch + (size_t)p * t->area + band_floats(q) + dy_floats(q) + r * q->ocp;
      for (int64_t o = 0; o < q->oc; o++) dst[o] += sum[o];
    }
  }
}

/* ---- entry points ------------------------------------------------------------------- */

size_t nnc_cpu_direct_scratch(nnc_cpu_conv_pass pass, const nnc_window *w) {
  corr q = corr_of(w, pass, NULL);
  if (pass == NNC_CPU_CONV_GRAD_KERNEL) return band_floats(&q) + dy_floats(&q) + sum_floats(&q);
  int64_t threads = nnc_cpu_threads();
  /* The packed kernel first, spread over the threads' areas. */
  return band_floats(&q) + (sum_floats(&q) + (size_t)threads - 1) / (size_t)threads;
}

void nnc_cpu_direct_conv(nnc_cpu_conv_pass pass, const nnc_window *w, const float *a, const float *b, float *out,
                         const nnc_cpu_args *args) {
  direct_task t = {.q = corr_of(w, pass, a), .out = out, .pass = pass, .f = fused_of(args->epilogue)};
  if (pass == NNC_CPU_CONV_GRAD_KERNEL) {
    t.dy = b, t.scratch = args->scratch, t.area = args->scratch_floats;
    t.parts = nnc_cpu_threads() < t.q.units ? nnc_cpu_threads() : t.q.units;
    nnc_cpu_parallel(t.parts, 1, grad_parts, &t);
    int64_t taps = w->kh * w->kw * w->ic;
    nnc_cpu_parallel(taps, nnc_cpu_grain(taps, 2, 64), grad_sum, &t);
    return;
  }
  t.w = b, t.wp = args->scratch, t.scratch = t.wp + sum_floats(&t.q), t.area = band_floats(&t.q);
  nnc_cpu_parallel(t.q.c, nnc_cpu_grain(t.q.c, 2, 8), pack_kernel, &t);
  nnc_cpu_parallel(t.q.units, 1, forward_units, &t);
}
