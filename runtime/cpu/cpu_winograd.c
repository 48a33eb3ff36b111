/* Winograd F(2x2, 3x3) and F(4x4, 3x3) for the stride-1 3x3 convolutions
 * that dominate a VGG step: conv2d and conv2d_grad_input, which is the
 * same correlation of dy with the kernel turned 180 degrees, its channel
 * axes swapped, and padding kh - 1 - ph. Each 2x2 block of output is
 *   Y = A^T [(G g G^T) . (B^T d B)] A
 * over the 4x4 input tile d, so a tile costs 16 multiply-adds per channel
 * pair instead of 36: the 16 products, summed over input channels, are 16
 * GEMMs of (tiles x ic) by (ic x oc), with
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * (Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks").
 * F(4x4, 3x3) does the same on 6x6 tiles: 36 GEMMs make each 4x4 block of
 * output, 2.25 multiply-adds per output and channel pair (F(2x2): 4), with
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0;
 *          0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6;
 *          1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * whose larger entries cost some accuracy (the caller measures whether it
 * wins, and the tests bound its error).
 * conv2d_grad_kernel is F(3x3, 2x2): dw's 3x3 taps are the correlation of
 * each 4x4 input tile with the 2x2 block of dy it produced,
 *   dw += A'^T [(G' dy G'^T) . (B^T d B)] A'   summed over tiles, with
 *   G'  = [1 0; 1/2 1/2; 1/2 -1/2; 0 1]
 *   A'^T = [1 1 1 0; 0 1 -1 0; 0 1 1 -1]
 * and the same B: the 16 sums over tiles are 16 GEMMs of (ic x tiles) by
 * (tiles x oc). With F(4x4, 3x3)'s B, F(3x3, 4x4) does the same from
 * 6x6 tiles and 4x4 blocks of dy, with
 *   G'  = [1/4 0 0 0; -1/6 -1/6 -1/6 -1/6; -1/6 1/6 -1/6 1/6;
 *          1/24 1/12 1/6 1/3; 1/24 -1/12 1/6 -1/3; 0 0 0 1]
 *   A'^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 1]
 *
 * Work is cut into whole rows of tiles, so each chunk's output is a run of
 * whole output rows and the fused epilogue applies to it while it is in
 * cache. The transformed kernel U (P x ic x oc, P = 16 or 36 points of a
 * tile) is made once per call and shared; each thread transforms its tiles
 * into V (tiles x P x ic), runs the P GEMMs into M (tiles x P x oc) and
 * transforms M back. A tile's P rows are adjacent, so the transforms read
 * and write contiguous memory and the GEMMs take the P-row stride instead. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/cpu/cpu.h"

/* About this many tile points (tiles x 16 or 36) per chunk: V and M of a
 * chunk stay within a few MB. */
#define CHUNK_POINTS 2560
/* The largest tile side: F(4x4, 3x3)'s 6x6. */
#define MAX_TILE 6
/* Below this many channels on either side the GEMMs are too thin to pay for the transforms. */
#define MIN_CHANNELS 16

/* The correlation to compute: x [batch, ih, iw, ic] into out [batch, oh,
 * ow, oc], x padded by (ph, pw) zeros before its first row and column. */
typedef struct wino_geom {
  int64_t batch, ih, iw, ic, oh, ow, oc, ph, pw;
  int flip; /* conv2d_grad_input: kernel turned and its channel axes swapped */
  int m, side, points; /* output tile side (2 or 4), input tile side (m + 2), points (side^2) */
  int64_t tiles_y, tiles_x, units, units_per_chunk, chunks;
} wino_geom;

static wino_geom geom_of(const nnc_window *w, int grad_input, int m) {
  wino_geom q = {.batch = w->batch, .ih = w->ih, .iw = w->iw, .ic = w->ic, .oh = w->oh, .ow = w->ow, .oc = w->oc,
                 .ph = w->ph, .pw = w->pw, .m = m, .side = m + 2, .points = (m + 2) * (m + 2)};
  if (grad_input) {
    q.ih = w->oh, q.iw = w->ow, q.ic = w->oc, q.oh = w->ih, q.ow = w->iw, q.oc = w->ic;
    q.ph = w->kh - 1 - w->ph, q.pw = w->kw - 1 - w->pw, q.flip = 1;
  }
  q.tiles_y = (q.oh + m - 1) / m, q.tiles_x = (q.ow + m - 1) / m;
  q.units = q.batch * q.tiles_y;
  /* Chunks of equal size, a multiple of the threads in number while there
   * are rows to share, so every thread gets the same share: a small batch
   * in one chunk ran on one thread (and was measured so). */
  int64_t tiles = CHUNK_POINTS / q.points, threads = nnc_cpu_threads();
  int64_t most = tiles / q.tiles_x > 0 ? tiles / q.tiles_x : 1;
  q.chunks = ((q.units + most - 1) / most + threads - 1) / threads * threads;
  if (q.chunks > q.units) q.chunks = q.units;
  q.units_per_chunk = (q.units + q.chunks - 1) / q.chunks;
  q.chunks = (q.units + q.units_per_chunk - 1) / q.units_per_chunk;
  return q;
}

int nnc_cpu_winograd_fits(const nnc_window *w) {
  return w->kh == 3 && w->kw == 3 && w->sh == 1 && w->sw == 1 && w->ic >= MIN_CHANNELS &&
         w->oc >= MIN_CHANNELS && w->oh > 0 && w->ow > 0;
}

/* Floats of U, then per thread: V, M, a row of zeros for the padding and
 * a tile's output for the rows and columns past the edge. */
static size_t u_floats(const wino_geom *q) { return (size_t)(q->points * q->ic * q->oc); }
static size_t thread_floats(const wino_geom *q) {
  size_t tiles = (size_t)(q->units_per_chunk * q->tiles_x);
  return tiles * (size_t)q->points * (size_t)(q->ic + q->oc) + (size_t)q->ic + (size_t)(q->m * q->m * q->oc);
}

size_t nnc_cpu_winograd_scratch(const nnc_window *w, int grad_input, int m) {
  wino_geom q = geom_of(w, grad_input, m);
  int64_t threads = nnc_cpu_threads();
  return thread_floats(&q) + (u_floats(&q) + (size_t)threads - 1) / (size_t)threads;
}

typedef struct wino_task {
  wino_geom q;
  const float *x, *w, *x2; /* x2: dy, for conv2d_grad_kernel */
  float *out, *u, *scratch;
  int64_t parts; /* conv2d_grad_kernel: sums kept apart, added in order */
  const nnc_cpu_epilogue *ep;
} wino_task;

/* The transforms work on VL channels at a time in local arrays, which the
 * compiler can vectorise: through the tile's 16 row pointers it could not
 * tell that the output does not alias the input. */
#define VL 16

/* n lanes of src into dst: a full block as one fixed-size copy the compiler
 * turns into vector moves, not a call. */
static inline void copy_lanes(float *restrict dst, const float *restrict src, int n) {
  if (n == VL) memcpy(dst, src, sizeof(float) * VL);
  else
    for (int l = 0; l < n; l++) dst[l] = src[l];
}

/* The 1-D transforms, each on VL lanes: `in` holds the input's rows (3 for
 * G, 2 for G', the tile's side for the others), `out` receives the
 * product's rows. */
typedef void rows_fn(const float in[MAX_TILE][VL], float out[MAX_TILE][VL]);

static void g_rows(const float in[MAX_TILE][VL], float out[MAX_TILE][VL]) { /* G, 3 -> 4 */
  for (int l = 0; l < VL; l++) {
    out[0][l] = in[0][l];
    out[1][l] = 0.5f * (in[0][l] + in[1][l] + in[2][l]);
    out[2][l] = 0.5f * (in[0][l] - in[1][l] + in[2][l]);
    out[3][l] = in[2][l];
  }
}

static void bt_rows(const float in[MAX_TILE][VL], float out[MAX_TILE][VL]) { /* B^T, 4 -> 4 */
  for (int l = 0; l < VL; l++) {
    out[0][l] = in[0][l] - in[2][l];
    out[1][l] = in[1][l] + in[2][l];
    out[2][l] = in[2][l] - in[1][l];
    out[3][l] = in[1][l] - in[3][l];
  }
}

static void at_rows(const float in[MAX_TILE][VL], float out[MAX_TILE][VL]) { /* A^T, 4 -> 2 */
  for (int l = 0; l < VL; l++) {
    out[0][l] = in[0][l] + in[1][l] + in[2][l];
    out[1][l] = in[1][l] - in[2][l] - in[3][l];
  }
}

static void g2_rows(const float in[MAX_TILE][VL], float out[MAX_TILE][VL]) { /* G', 2 -> 4 */
  for (int l = 0; l < VL; l++) {
    out[0][l] = in[0][l];
    out[1][l] = 0.5f * (in[0][l] + in[1][l]);
    out[2][l] = 0.5f * (in[0][l] - in[1][l]);
    out[3][l] = in[1][l];
  }
}

static void g4_rows(const float in[MAX_TILE][VL], float out[MAX_TILE][VL]) { /* G' of F(3x3, 4x4), 4 -> 6 */
  for (int l = 0; l < VL; l++) {
    float a = in[0][l], b = in[1][l], c = in[2][l], d = in[3][l];
    out[0][l] = 0.25f * a;
    out[1][l] = (-1.0f / 6) * (a + b + c + d);
    out[2][l] = (-1.0f / 6) * (a - b + c - d);
    out[3][l] = (1.0f / 24) * a + (1.0f / 12) * b + (1.0f / 6) * c + (1.0f / 3) * d;
    out[4][l] = (1.0f / 24) * a - (1.0f / 12) * b + (1.0f / 6) * c - (1.0f / 3) * d;
    out[5][l] = d;
  }
}

static void a4t_rows(const float in[MAX_TILE][VL], float out[MAX_TILE][VL]) { /* A'^T of F(3x3, 4x4), 6 -> 3 */
  for (int l = 0; l < VL; l++) {
    float s1 = in[1][l] + in[2][l], s2 = in[3][l] + in[4][l];
    out[0][l] = in[0][l] + s1 + s2;
    out[1][l] = in[1][l] - in[2][l] + 2 * (in[3][l] - in[4][l]);
    out[2][l] = s1 + 4 * s2 + in[5][l];
  }
}

static void a2t_rows(const float in[MAX_TILE][VL], float out[MAX_TILE][VL]) { /* A'^T, 4 -> 3 */
  for (int l = 0; l < VL; l++) {
    out[0][l] = in[0][l] + in[1][l] + in[2][l];
    out[1][l] = in[1][l] - in[2][l];
    out[2][l] = in[1][l] + in[2][l] - in[3][l];
  }
}

static void g6_rows(const float in[MAX_TILE][VL], float out[MAX_TILE][VL]) { /* G, 3 -> 6 */
  for (int l = 0; l < VL; l++) {
    float a = in[0][l], b = in[1][l], c = in[2][l];
    out[0][l] = 0.25f * a;
    out[1][l] = (-1.0f / 6) * (a + b + c);
    out[2][l] = (-1.0f / 6) * (a - b + c);
    out[3][l] = (1.0f / 24) * a + (1.0f / 12) * b + (1.0f / 6) * c;
    out[4][l] = (1.0f / 24) * a - (1.0f / 12) * b + (1.0f / 6) * c;
    out[5][l] = c;
  }
}

static void bt6_rows(const float in[MAX_TILE][VL], float out[MAX_TILE][VL]) { /* B^T, 6 -> 6 */
  for (int l = 0; l < VL; l++) {
    float d0 = in[0][l], d1 = in[1][l], d2 = in[2][l], d3 = in[3][l], d4 = in[4][l], d5 = in[5][l];
    out[0][l] = 4 * d0 - 5 * d2 + d4;
    out[1][l] = d3 + d4 - 4 * (d1 + d2);
    out[2][l] = d4 - d3 + 4 * (d1 - d2);
    out[3][l] = d4 - d2 + 2 * (d3 - d1);
    out[4][l] = d4 - d2 + 2 * (d1 - d3);
    out[5][l] = 4 * d1 - 5 * d3 + d5;
  }
}

static void at6_rows(const float in[MAX_TILE][VL], float out[MAX_TILE][VL]) { /* A^T, 6 -> 4 */
  for (int l = 0; l < VL; l++) {
    float s1 = in[1][l] + in[2][l], d1 = in[1][l] - in[2][l];
    float s2 = in[3][l] + in[4][l], d2 = in[3][l] - in[4][l];
    out[0][l] = in[0][l] + s1 + s2;
    out[1][l] = d1 + 2 * d2;
    out[2][l] = s1 + 4 * s2;
    out[3][l] = d1 + 8 * d2 + in[5][l];
  }
}

/* out = T in T^T for the rows x rows block `in` (rows_out x rows_out out),
 * T applied by f: down each column, then along each row. Inlined, so f is
 * known at each call and inlined too. */
static inline __attribute__((always_inline)) void sandwich(rows_fn *f, int rows, int rows_out,
                                                           const float in[MAX_TILE][MAX_TILE][VL],
                                                           float out[MAX_TILE][MAX_TILE][VL]) {
  float mid[MAX_TILE][MAX_TILE][VL], col[MAX_TILE][VL], res[MAX_TILE][VL];
  for (int j = 0; j < rows; j++) {
    for (int i = 0; i < rows; i++) memcpy(col[i], in[i][j], sizeof col[i]);
    f(col, res);
    for (int i = 0; i < rows_out; i++) memcpy(mid[i][j], res[i], sizeof res[i]);
  }
  for (int i = 0; i < rows_out; i++) f(mid[i], out[i]);
}

/* The transforms below are templates on the output tile side m (2 or 4),
 * each inlined into one function per side, so the row transforms are known
 * and inlined too. */
#define TEMPLATE static inline __attribute__((always_inline))

/* U[xi][c][k] = (G g G^T)[xi] for input channel c and output channels k0.. k0+n. */
TEMPLATE void kernel_block(const wino_task *t, int64_t c, int64_t k0, int n, int m) {
  const wino_geom *q = &t->q;
  const int s = m + 2;
  float g[MAX_TILE][MAX_TILE][VL] = {{{0}}}, u[MAX_TILE][MAX_TILE][VL];
  for (int i = 0; i < 3; i++)
    for (int j = 0; j < 3; j++)
      for (int l = 0; l < n; l++)
        g[i][j][l] = q->flip ? t->w[(((2 - i) * 3 + 2 - j) * q->oc + k0 + l) * q->ic + c]
                             : t->w[((i * 3 + j) * q->ic + c) * q->oc + k0 + l];
  sandwich(m == 2 ? g_rows : g6_rows, 3, s, g, u);
  for (int xi = 0; xi < s * s; xi++) copy_lanes(t->u + ((int64_t)xi * q->ic + c) * q->oc + k0, u[xi / s][xi % s], n);
}

TEMPLATE void kernel_transform_m(void *ctx, int64_t c0, int64_t c1, int m) {
  const wino_task *t = ctx;
  for (int64_t c = c0; c < c1; c++)
    for (int64_t k0 = 0; k0 < t->q.oc; k0 += VL)
      kernel_block(t, c, k0, t->q.oc - k0 < VL ? (int)(t->q.oc - k0) : VL, m);
}

static void kernel_transform(void *ctx, int64_t c0, int64_t c1, int thread) {
  (void)thread;
  if (((const wino_task *)ctx)->q.m == 2) kernel_transform_m(ctx, c0, c1, 2);
  else kernel_transform_m(ctx, c0, c1, 4);
}

/* V[xi][tile][c] = (B^T d B)[xi] for the tile whose top-left output is (n, oy, ox). */
TEMPLATE void input_tile_m(const wino_task *t, const float *zeros, int64_t n, int64_t oy, int64_t ox, float *v,
                           int64_t stride, int m) {
  const wino_geom *q = &t->q;
  const int s = m + 2;
  const float *p[MAX_TILE][MAX_TILE];
  for (int i = 0; i < s; i++)
    for (int j = 0; j < s; j++) {
      int64_t iy = oy + i - q->ph, ix = ox + j - q->pw;
      int inside = iy >= 0 && iy < q->ih && ix >= 0 && ix < q->iw;
      p[i][j] = inside ? t->x + ((n * q->ih + iy) * q->iw + ix) * q->ic : zeros;
    }
  for (int64_t c0 = 0; c0 < q->ic; c0 += VL) {
    int n = q->ic - c0 < VL ? (int)(q->ic - c0) : VL;
    float d[MAX_TILE][MAX_TILE][VL], out[MAX_TILE][MAX_TILE][VL];
    if (n < VL) memset(d, 0, sizeof d); /* the lanes past the last channel */
    for (int i = 0; i < s; i++)
      for (int j = 0; j < s; j++) copy_lanes(d[i][j], p[i][j] + c0, n);
    sandwich(m == 2 ? bt_rows : bt6_rows, s, s, d, out);
    for (int xi = 0; xi < s * s; xi++) copy_lanes(v + xi * stride + c0, out[xi / s][xi % s], n);
  }
}

typedef void input_fn(const wino_task *t, const float *zeros, int64_t n, int64_t oy, int64_t ox, float *v,
                      int64_t stride);
static void input_tile2(const wino_task *t, const float *zeros, int64_t n, int64_t oy, int64_t ox, float *v,
                        int64_t stride) {
  input_tile_m(t, zeros, n, oy, ox, v, stride, 2);
}
static void input_tile4(const wino_task *t, const float *zeros, int64_t n, int64_t oy, int64_t ox, float *v,
                        int64_t stride) {
  input_tile_m(t, zeros, n, oy, ox, v, stride, 4);
}

/* out's m x m block at (n, oy, ox) = A^T M A; a row or column past the
 * edge of the output goes to `sink`. */
TEMPLATE void output_tile_m(const wino_task *t, const float *mt, int64_t stride, int64_t n, int64_t oy, int64_t ox,
                            float *sink, int m) {
  const wino_geom *q = &t->q;
  const int s = m + 2;
  float *o[MAX_TILE][MAX_TILE];
  for (int a = 0; a < m; a++)
    for (int b = 0; b < m; b++)
      o[a][b] = oy + a < q->oh && ox + b < q->ow ? t->out + ((n * q->oh + oy + a) * q->ow + ox + b) * q->oc
                                                  : sink + (a * m + b) * q->oc;
  for (int64_t k0 = 0; k0 < q->oc; k0 += VL) {
    int n = q->oc - k0 < VL ? (int)(q->oc - k0) : VL;
    float mm[MAX_TILE][MAX_TILE][VL], y[MAX_TILE][MAX_TILE][VL];
    if (n < VL) memset(mm, 0, sizeof mm);
    for (int xi = 0; xi < s * s; xi++) copy_lanes(mm[xi / s][xi % s], mt + xi * stride + k0, n);
    sandwich(m == 2 ? at_rows : at6_rows, s, m, mm, y);
    for (int a = 0; a < m; a++)
      for (int b = 0; b < m; b++) copy_lanes(o[a][b] + k0, y[a][b], n);
  }
}

typedef void output_fn(const wino_task *t, const float *mt, int64_t stride, int64_t n, int64_t oy, int64_t ox,
                       float *sink);
static void output_tile2(const wino_task *t, const float *mt, int64_t stride, int64_t n, int64_t oy, int64_t ox,
                         float *sink) {
  output_tile_m(t, mt, stride, n, oy, ox, sink, 2);
}
static void output_tile4(const wino_task *t, const float *mt, int64_t stride, int64_t n, int64_t oy, int64_t ox,
                         float *sink) {
  output_tile_m(t, mt, stride, n, oy, ox, sink, 4);
}

/* Chunk c's units (whole rows of tiles) [*u0, *u1). */
static void chunk_units(const wino_geom *q, int64_t c, int64_t *u0, int64_t *u1) {
  *u0 = c * q->units_per_chunk;
  *u1 = *u0 + q->units_per_chunk < q->units ? *u0 + q->units_per_chunk : q->units;
}

/* The first output row of unit u, counting rows across images; for u =
 * units, the end of the output. */
static int64_t unit_row(const wino_geom *q, int64_t u) { return u / q->tiles_y * q->oh + q->m * (u % q->tiles_y); }

static void run_chunk(void *ctx, int64_t c0, int64_t c1, int thread) {
  const wino_task *t = ctx;
  const wino_geom *q = &t->q;
  float *v = t->scratch + (size_t)thread * thread_floats(q);
  int64_t most = q->units_per_chunk * q->tiles_x, p = q->points;
  float *m = v + p * most * q->ic, *zeros = m + p * most * q->oc, *sink = zeros + q->ic;
  input_fn *input_tile = q->m == 2 ? input_tile2 : input_tile4;
  output_fn *output_tile = q->m == 2 ? output_tile2 : output_tile4;
  memset(zeros, 0, sizeof(float) * (size_t)q->ic);
  for (int64_t c = c0; c < c1; c++) {
    int64_t u0, u1;
    chunk_units(q, c, &u0, &u1);
    int64_t tiles = (u1 - u0) * q->tiles_x;
    for (int64_t u = u0; u < u1; u++)
      for (int64_t tx = 0; tx < q->tiles_x; tx++)
        input_tile(t, zeros, u / q->tiles_y, q->m * (u % q->tiles_y), q->m * tx,
                   v + ((u - u0) * q->tiles_x + tx) * p * q->ic, q->ic);
    for (int xi = 0; xi < p; xi++)
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)tiles, (blasint)q->oc, (blasint)q->ic, 1.0f,
                  v + xi * q->ic, (blasint)(p * q->ic), t->u + xi * q->ic * q->oc, (blasint)q->oc, 0.0f,
                  m + xi * q->oc, (blasint)(p * q->oc));
    for (int64_t u = u0; u < u1; u++)
      for (int64_t tx = 0; tx < q->tiles_x; tx++)
        output_tile(t, m + ((u - u0) * q->tiles_x + tx) * p * q->oc, q->oc, u / q->tiles_y, q->m * (u % q->tiles_y),
                    q->m * tx, sink);
    if (t->ep && t->ep->count) {
      /* Units are whole tile rows, so the chunk's output rows are contiguous. */
      int64_t r0 = unit_row(q, u0), r1 = unit_row(q, u1);
      nnc_cpu_epilogue_apply(t->ep, t->out, r0 * q->ow, (r1 - r0) * q->ow, q->oc);
    }
  }
}

/* ---- conv2d_grad_kernel --------------------------------------------------- */

/* W[xi][k] = (G' e G'^T)[xi] for dy's m x m block at (n, oy, ox), zero past its edge. */
TEMPLATE void dy_tile_m(const wino_task *t, const float *zeros, int64_t n, int64_t oy, int64_t ox, float *w, int m) {
  const wino_geom *q = &t->q;
  const int s = m + 2;
  const float *p[MAX_TILE][MAX_TILE];
  for (int a = 0; a < m; a++)
    for (int b = 0; b < m; b++)
      p[a][b] = oy + a < q->oh && ox + b < q->ow ? t->x2 + ((n * q->oh + oy + a) * q->ow + ox + b) * q->oc : zeros;
  for (int64_t k0 = 0; k0 < q->oc; k0 += VL) {
    int n = q->oc - k0 < VL ? (int)(q->oc - k0) : VL;
    float e[MAX_TILE][MAX_TILE][VL], out[MAX_TILE][MAX_TILE][VL];
    if (n < VL) memset(e, 0, sizeof e);
    for (int a = 0; a < m; a++)
      for (int b = 0; b < m; b++) copy_lanes(e[a][b], p[a][b] + k0, n);
    sandwich(m == 2 ? g2_rows : g4_rows, m, s, e, out);
    for (int xi = 0; xi < s * s; xi++) copy_lanes(w + xi * q->oc + k0, out[xi / s][xi % s], n);
  }
}

typedef void dy_fn(const wino_task *t, const float *zeros, int64_t n, int64_t oy, int64_t ox, float *w);
static void dy_tile2(const wino_task *t, const float *zeros, int64_t n, int64_t oy, int64_t ox, float *w) {
  dy_tile_m(t, zeros, n, oy, ox, w, 2);
}
static void dy_tile4(const wino_task *t, const float *zeros, int64_t n, int64_t oy, int64_t ox, float *w) {
  dy_tile_m(t, zeros, n, oy, ox, w, 4);
}

/* Floats of one part's sum, P x ic x oc, kept after the thread area. */
static size_t sum_floats(const wino_geom *q) { return u_floats(q); }

/* Part p of the chunks sums into its own P x ic x oc, whichever thread
 * runs it, so every run adds in the same order. */
static void grad_kernel_part(void *ctx, int64_t p0, int64_t p1, int thread) {
  const wino_task *t = ctx;
  const wino_geom *q = &t->q;
  size_t area = thread_floats(q) + sum_floats(q);
  float *v = t->scratch + (size_t)thread * area;
  int64_t most = q->units_per_chunk * q->tiles_x, parts = t->parts, pts = q->points;
  float *dw = v + pts * most * q->ic, *zeros = dw + pts * most * q->oc;
  input_fn *input_tile = q->m == 2 ? input_tile2 : input_tile4;
  dy_fn *dy_tile = q->m == 2 ? dy_tile2 : dy_tile4;
  memset(zeros, 0, sizeof(float) * (size_t)(q->ic > q->oc ? q->ic : q->oc));
  for (int64_t p = p0; p < p1; p++) {
    float *sum = t->scratch + (size_t)p * area + thread_floats(q);
    for (int64_t c = q->chunks * p / parts; c < q->chunks * (p + 1) / parts; c++) {
      int64_t u0, u1;
      chunk_units(q, c, &u0, &u1);
      int64_t tiles = (u1 - u0) * q->tiles_x;
      for (int64_t u = u0; u < u1; u++)
        for (int64_t tx = 0; tx < q->tiles_x; tx++) {
          int64_t n = u / q->tiles_y, oy = q->m * (u % q->tiles_y), at = (u - u0) * q->tiles_x + tx;
          input_tile(t, zeros, n, oy, q->m * tx, v + at * pts * q->ic, q->ic);
          dy_tile(t, zeros, n, oy, q->m * tx, dw + at * pts * q->oc);
        }
      float beta = c == q->chunks * p / parts ? 0.0f : 1.0f;
      for (int xi = 0; xi < pts; xi++)
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (blasint)q->ic, (blasint)q->oc, (blasint)tiles, 1.0f,
                    v + xi * q->ic, (blasint)(pts * q->ic), dw + xi * q->oc, (blasint)(pts * q->oc), beta,
                    sum + xi * q->ic * q->oc, (blasint)q->oc);
    }
  }
}

/* dw[i][j][c][k] = (A'^T M A')[i][j] for input channels [c0, c1), M the
 * parts' sums added in part order. */
TEMPLATE void grad_kernel_out_m(const wino_task *t, int64_t c0, int64_t c1, int m) {
  const wino_geom *q = &t->q;
  const int s = m + 2;
  size_t area = thread_floats(q) + sum_floats(q);
  for (int64_t c = c0; c < c1; c++)
    for (int64_t k0 = 0; k0 < q->oc; k0 += VL) {
      int n = q->oc - k0 < VL ? (int)(q->oc - k0) : VL;
      float mm[MAX_TILE][MAX_TILE][VL] = {{{0}}}, y[MAX_TILE][MAX_TILE][VL];
      for (int64_t p = 0; p < t->parts; p++) {
        const float *sum = t->scratch + (size_t)p * area + thread_floats(q) + c * q->oc + k0;
        for (int xi = 0; xi < s * s; xi++)
          for (int l = 0; l < n; l++) mm[xi / s][xi % s][l] += sum[xi * q->ic * q->oc + l];
      }
      sandwich(m == 2 ? a2t_rows : a4t_rows, s, 3, mm, y);
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) copy_lanes(t->out + ((i * 3 + j) * q->ic + c) * q->oc + k0, y[i][j], n);
    }
}

static void grad_kernel_out(void *ctx, int64_t c0, int64_t c1, int thread) {
  (void)thread;
  if (((const wino_task *)ctx)->q.m == 2) grad_kernel_out_m(ctx, c0, c1, 2);
  else grad_kernel_out_m(ctx, c0, c1, 4);
}

size_t nnc_cpu_winograd_grad_kernel_scratch(const nnc_window *w, int m) {
  wino_geom q = geom_of(w, 0, m);
  return thread_floats(&q) + sum_floats(&q);
}

void nnc_cpu_winograd_grad_kernel(const nnc_window *w, int m, const float *x, const float *dy, float *dw,
                                  const nnc_cpu_args *a) {
  wino_task t = {.q = geom_of(w, 0, m), .x = x, .x2 = dy, .out = dw, .scratch = a->scratch};
  t.parts = nnc_cpu_threads() < t.q.chunks ? nnc_cpu_threads() : t.q.chunks;
  nnc_cpu_parallel(t.parts, 1, grad_kernel_part, &t);
  nnc_cpu_parallel(t.q.ic, nnc_cpu_grain(t.q.ic, 2, 1), grad_kernel_out, &t);
}

void nnc_cpu_winograd(const nnc_window *w, int grad_input, int m, const float *x, const float *kernel, float *out,
                      const nnc_cpu_args *a) {
  /* U first, then the threads' areas: the kernel's own layout of the whole scratch. */
  wino_task t = {.q = geom_of(w, grad_input, m), .x = x, .w = kernel, .out = out, .u = a->scratch, .ep = a->epilogue};
  t.scratch = t.u + u_floats(&t.q);
  nnc_cpu_parallel(t.q.ic, nnc_cpu_grain(t.q.ic, 2, 1), kernel_transform, &t);
  nnc_cpu_parallel(t.q.chunks, 1, run_chunk, &t);
}
