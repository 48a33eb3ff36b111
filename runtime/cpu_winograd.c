/* Winograd F(2x2, 3x3) for the stride-1 3x3 convolutions that dominate a
 * VGG step: conv2d and conv2d_grad_input, which is the same correlation of
 * dy with the kernel turned 180 degrees, its channel axes swapped, and
 * padding kh - 1 - ph. Each 2x2 block of output is
 *   Y = A^T [(G g G^T) . (B^T d B)] A
 * over the 4x4 input tile d, so a tile costs 16 multiply-adds per channel
 * pair instead of 36: the 16 products, summed over input channels, are 16
 * GEMMs of (tiles x ic) by (ic x oc), with
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks").
 *
 * Work is cut into whole rows of tiles, so each chunk's output is a run of
 * whole output rows and the fused epilogue applies to it while it is in
 * cache. The transformed kernel U (16 x ic x oc) is made once per call and
 * shared; each thread transforms its tiles into V (16 x tiles x ic), runs
 * the 16 GEMMs into M (16 x tiles x oc) and transforms M back. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/cpu.h"

/* About this many tiles per chunk: V and M of a chunk stay within a few MB. */
#define CHUNK_TILES 160
/* Below this many channels on either side the GEMMs are too thin to pay for the transforms. */
#define MIN_CHANNELS 16

/* The correlation to compute: x [batch, ih, iw, ic] into out [batch, oh,
 * ow, oc], x padded by (ph, pw) zeros before its first row and column. */
typedef struct wino_geom {
  int64_t batch, ih, iw, ic, oh, ow, oc, ph, pw;
  int flip; /* conv2d_grad_input: kernel turned and its channel axes swapped */
  int64_t tiles_y, tiles_x, units, units_per_chunk, chunks;
} wino_geom;

static wino_geom geom_of(const nnc_window *w, int grad_input) {
  wino_geom q = {w->batch, w->ih, w->iw, w->ic, w->oh, w->ow, w->oc, w->ph, w->pw, 0, 0, 0, 0, 0, 0};
  if (grad_input)
    q = (wino_geom){w->batch, w->oh, w->ow, w->oc, w->ih, w->iw, w->ic, w->kh - 1 - w->ph, w->kw - 1 - w->pw, 1,
                    0, 0, 0, 0, 0};
  q.tiles_y = (q.oh + 1) / 2, q.tiles_x = (q.ow + 1) / 2;
  q.units = q.batch * q.tiles_y;
  q.units_per_chunk = CHUNK_TILES / q.tiles_x > 0 ? CHUNK_TILES / q.tiles_x : 1;
  q.chunks = (q.units + q.units_per_chunk - 1) / q.units_per_chunk;
  return q;
}

static int enabled(void) {
  static int state = -1; /* NNC_CPU_WINOGRAD=0 turns it off, to compare with im2col */
  if (state < 0) state = !getenv("NNC_CPU_WINOGRAD") || atoi(getenv("NNC_CPU_WINOGRAD")) != 0;
  return state;
}

int nnc_cpu_winograd_fits(const nnc_window *w) {
  return enabled() && w->kh == 3 && w->kw == 3 && w->sh == 1 && w->sw == 1 && w->ic >= MIN_CHANNELS &&
         w->oc >= MIN_CHANNELS && w->oh > 0 && w->ow > 0;
}

/* Floats of U, then per thread: V, M, and a row of zeros for the padding. */
static size_t u_floats(const wino_geom *q) { return (size_t)(16 * q->ic * q->oc); }
static size_t thread_floats(const wino_geom *q) {
  size_t tiles = (size_t)(q->units_per_chunk * q->tiles_x);
  return tiles * 16 * (size_t)(q->ic + q->oc) + (size_t)q->ic + 4 * (size_t)q->oc;
}

size_t nnc_cpu_winograd_scratch(const nnc_window *w, int grad_input) {
  wino_geom q = geom_of(w, grad_input);
  int64_t threads = nnc_cpu_threads();
  return thread_floats(&q) + (u_floats(&q) + (size_t)threads - 1) / (size_t)threads;
}

typedef struct wino_task {
  wino_geom q;
  const float *x, *w;
  float *out, *u, *scratch;
  const nnc_cpu_epilogue *ep;
} wino_task;

/* U[xi][c][k] = (G g G^T)[xi] for input channel c and output channel k. */
static void kernel_transform(void *ctx, int64_t c0, int64_t c1, int thread) {
  const wino_task *t = ctx;
  const wino_geom *q = &t->q;
  (void)thread;
  for (int64_t c = c0; c < c1; c++)
    for (int64_t k = 0; k < q->oc; k++) {
      float g[3][3], gg[4][3];
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++)
          g[i][j] = q->flip ? t->w[(((2 - i) * 3 + 2 - j) * q->oc + k) * q->ic + c] : t->w[((i * 3 + j) * q->ic + c) * q->oc + k];
      for (int j = 0; j < 3; j++) {
        gg[0][j] = g[0][j];
        gg[1][j] = 0.5f * (g[0][j] + g[1][j] + g[2][j]);
        gg[2][j] = 0.5f * (g[0][j] - g[1][j] + g[2][j]);
        gg[3][j] = g[2][j];
      }
      for (int i = 0; i < 4; i++) {
        float row[4] = {gg[i][0], 0.5f * (gg[i][0] + gg[i][1] + gg[i][2]), 0.5f * (gg[i][0] - gg[i][1] + gg[i][2]),
                        gg[i][2]};
        for (int j = 0; j < 4; j++) t->u[((int64_t)(i * 4 + j) * q->ic + c) * q->oc + k] = row[j];
      }
    }
}

/* V[xi][tile][c] = (B^T d B)[xi] for the tile whose top-left output is (n, oy, ox). */
static void input_tile(const wino_task *t, const float *zeros, int64_t n, int64_t oy, int64_t ox, float *v,
                       int64_t stride) {
  const wino_geom *q = &t->q;
  const float *p[4][4];
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      int64_t iy = oy + i - q->ph, ix = ox + j - q->pw;
      int inside = iy >= 0 && iy < q->ih && ix >= 0 && ix < q->iw;
      p[i][j] = inside ? t->x + ((n * q->ih + iy) * q->iw + ix) * q->ic : zeros;
    }
  for (int64_t c = 0; c < q->ic; c++) {
    float d[4][4], r[4][4];
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 4; j++) d[i][j] = p[i][j][c];
    for (int j = 0; j < 4; j++) {
      r[0][j] = d[0][j] - d[2][j];
      r[1][j] = d[1][j] + d[2][j];
      r[2][j] = d[2][j] - d[1][j];
      r[3][j] = d[1][j] - d[3][j];
    }
    for (int i = 0; i < 4; i++) {
      v[(i * 4 + 0) * stride + c] = r[i][0] - r[i][2];
      v[(i * 4 + 1) * stride + c] = r[i][1] + r[i][2];
      v[(i * 4 + 2) * stride + c] = r[i][2] - r[i][1];
      v[(i * 4 + 3) * stride + c] = r[i][1] - r[i][3];
    }
  }
}

/* out's 2x2 block at (n, oy, ox) = A^T M A; a row or column past the edge
 * of an odd-sized output goes to `sink`. */
static void output_tile(const wino_task *t, const float *m, int64_t stride, int64_t n, int64_t oy, int64_t ox,
                        float *sink) {
  const wino_geom *q = &t->q;
  float *o[2][2];
  for (int a = 0; a < 2; a++)
    for (int b = 0; b < 2; b++)
      o[a][b] = oy + a < q->oh && ox + b < q->ow ? t->out + ((n * q->oh + oy + a) * q->ow + ox + b) * q->oc
                                                  : sink + (a * 2 + b) * q->oc;
  for (int64_t k = 0; k < q->oc; k++) {
    float s[4][2];
    for (int i = 0; i < 4; i++) {
      const float *row = m + (int64_t)(i * 4) * stride + k;
      s[i][0] = row[0] + row[stride] + row[2 * stride];
      s[i][1] = row[stride] - row[2 * stride] - row[3 * stride];
    }
    for (int b = 0; b < 2; b++) {
      o[0][b][k] = s[0][b] + s[1][b] + s[2][b];
      o[1][b][k] = s[1][b] - s[2][b] - s[3][b];
    }
  }
}

static void run_chunk(void *ctx, int64_t c0, int64_t c1, int thread) {
  const wino_task *t = ctx;
  const wino_geom *q = &t->q;
  float *v = t->scratch + (size_t)thread * thread_floats(q);
  int64_t most = q->units_per_chunk * q->tiles_x;
  float *m = v + 16 * most * q->ic, *zeros = m + 16 * most * q->oc, *sink = zeros + q->ic;
  memset(zeros, 0, sizeof(float) * (size_t)q->ic);
  for (int64_t c = c0; c < c1; c++) {
    int64_t u0 = c * q->units_per_chunk, u1 = u0 + q->units_per_chunk < q->units ? u0 + q->units_per_chunk : q->units;
    int64_t tiles = (u1 - u0) * q->tiles_x;
    for (int64_t u = u0; u < u1; u++)
      for (int64_t tx = 0; tx < q->tiles_x; tx++)
        input_tile(t, zeros, u / q->tiles_y, 2 * (u % q->tiles_y), 2 * tx, v + ((u - u0) * q->tiles_x + tx) * q->ic,
                   tiles * q->ic);
    for (int xi = 0; xi < 16; xi++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)tiles, (blasint)q->oc, (blasint)q->ic, 1.0f,
                  v + xi * tiles * q->ic, (blasint)q->ic, t->u + xi * q->ic * q->oc, (blasint)q->oc, 0.0f,
                  m + xi * tiles * q->oc, (blasint)q->oc);
    for (int64_t u = u0; u < u1; u++)
      for (int64_t tx = 0; tx < q->tiles_x; tx++)
        output_tile(t, m + ((u - u0) * q->tiles_x + tx) * q->oc, tiles * q->oc, u / q->tiles_y,
                    2 * (u % q->tiles_y), 2 * tx, sink);
    if (t->ep && t->ep->count) {
      /* Units are whole tile rows, so the chunk's output rows are contiguous. */
      int64_t r0 = u0 / q->tiles_y * q->oh + 2 * (u0 % q->tiles_y);
      int64_t r1 = (u1 - 1) / q->tiles_y * q->oh + 2 * ((u1 - 1) % q->tiles_y) + 2;
      if (r1 > ((u1 - 1) / q->tiles_y + 1) * q->oh) r1 = ((u1 - 1) / q->tiles_y + 1) * q->oh;
      nnc_cpu_epilogue_apply(t->ep, t->out, r0 * q->ow, (r1 - r0) * q->ow, q->oc);
    }
  }
}

void nnc_cpu_winograd(const nnc_window *w, int grad_input, const float *x, const float *kernel, float *out,
                      const nnc_cpu_args *a) {
  wino_task t = {geom_of(w, grad_input), x, kernel, out, a->scratch, NULL, a->epilogue};
  /* U first, then the threads' areas: the kernel's own layout of the whole scratch. */
  t.scratch = t.u + u_floats(&t.q);
  nnc_cpu_parallel(t.q.ic, nnc_cpu_grain(t.q.ic, 2, 1), kernel_transform, &t);
  nnc_cpu_parallel(t.q.chunks, 1, run_chunk, &t);
}
