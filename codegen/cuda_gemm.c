/* The one tiled GEMM loop behind every GEMM-shaped anchor (matmul in each
 * transposition, conv2d and its two gradients as implicit GEMMs): the op's
 * emitter says how A(row, k) and B(k, col) are read (codegen/cuda.h,
 * nnc_cuda_gemm) and this file writes the loop.
 *
 * Each block computes a TILE_M x TILE_N tile of the result. Its 16 x 16
 * threads each hold a MICRO x MICRO register tile, rows tr + 16*i and
 * columns tc + 16*j of the block's tile, so that neighbouring threads store
 * neighbouring columns and read neighbouring words of shared memory. K is
 * walked TILE_K at a time: the block stages A's TILE_M x TILE_K slab and
 * B's TILE_K x TILE_N slab in shared memory, waits, multiplies, and waits
 * again before the slabs are overwritten. Elements past the edges stage as
 * zero, so edge tiles run the same loop and add exact zeros; only the store
 * is bounds-checked. Every element sums its products in increasing k, as
 * the direct loops did, so results do not depend on the tile sizes.
 *
 * Split-K: a GEMM whose output has too few tiles to give every SM a block
 * would leave most of the GPU idle while each block walks all of K (a
 * kernel gradient: a few taps x channels, K = every pixel of the batch).
 * Its K is then cut into slices and each (tile, slice) is a block of its
 * own, work item w = slice * tiles + tile, so that about one block per SM
 * runs; each block writes its partial tile to slab `slice` of the program's
 * workspace, and a second kernel adds each element's partial sums in slice
 * order and hands the sum to the epilogue. The split follows from the shape
 * alone, so the result never depends on timing; it differs from the unsplit
 * sum only by the grouping of the additions. */
#include <stdio.h>

#include "codegen/cuda.h"

enum {
  TILE_M = 64,
  TILE_N = 64,
  TILE_K = 16,
  SIDE = 16, /* threads along each side of the block */
  MICRO = TILE_M / SIDE,
  THREADS = SIDE * SIDE,
  /* The shortest K slice worth a block: 16 K steps, so a block multiplies
   * 2 * 64 * 64 * 256 FLOPs for each 64 x 64 partial tile it writes and the
   * second kernel reads. */
  MIN_SLICE_K = 256,
};

_Static_assert(TILE_M == TILE_N && TILE_M % SIDE == 0, "square register tiles");
_Static_assert((TILE_M * TILE_K) % THREADS == 0 && (TILE_K * TILE_N) % THREADS == 0, "slabs load evenly");

/* Stages one K slab of both operands; A is stored k-major (As[k][m]), one
 * word of padding per row keeping its column writes off a single bank. */
static void stage_slabs(nnc_cuda_ctx *c, const nnc_cuda_gemm *g) {
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int l = (int)threadIdx.x; l < %d; l += %d) {", TILE_M * TILE_K, THREADS);
  nnc_cuda_line(c, "const nnc_i64 row = m0 + l / %d, col = k0 + l %% %d;", TILE_K, TILE_K);
  nnc_cuda_line(c, "nnc_as[l %% %d][l / %d] = row < %lldLL && col < %lldLL ? %s : 0.0f;", TILE_K, TILE_K, g->m, g->k,
                g->a);
  nnc_cuda_close(c);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int l = (int)threadIdx.x; l < %d; l += %d) {", TILE_K * TILE_N, THREADS);
  nnc_cuda_line(c, "const nnc_i64 row = k0 + l / %d, col = n0 + l %% %d;", TILE_N, TILE_N);
  nnc_cuda_line(c, "nnc_bs[l / %d][l %% %d] = row < %lldLL && col < %lldLL ? %s : 0.0f;", TILE_N, TILE_N, g->k, g->n,
                g->b);
  nnc_cuda_close(c);
}

/* acc += the staged slabs' product, k in increasing order. */
static void multiply_slabs(nnc_cuda_ctx *c) {
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int kk = 0; kk < %d; kk++) {", TILE_K);
  nnc_cuda_line(c, "float ra[%d], rb[%d];", MICRO, MICRO);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_line(c, "for (int i = 0; i < %d; i++) ra[i] = nnc_as[kk][tr + %d * i];", MICRO, SIDE);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_line(c, "for (int j = 0; j < %d; j++) rb[j] = nnc_bs[kk][tc + %d * j];", MICRO, SIDE);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int i = 0; i < %d; i++) {", MICRO);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_line(c, "for (int j = 0; j < %d; j++) acc[i][j] += ra[i] * rb[j];", MICRO);
  nnc_cuda_close(c);
  nnc_cuda_close(c);
}

/* The K each block walks: all of it, or, where the output's tiles cannot
 * fill the SMs, a slice (a whole number of K steps) that gives about one
 * block per SM without going below MIN_SLICE_K. */
static long long k_slice(const nnc_cuda_gemm *g, long long tiles) {
  long long steps = (g->k + TILE_K - 1) / TILE_K;
  long long slices = tiles > 0 ? NNC_CUDA_TARGET_SMS / tiles : 1;
  if (slices > g->k / MIN_SLICE_K) slices = g->k / MIN_SLICE_K;
  if (slices < 2) return steps * TILE_K;
  return (steps + slices - 1) / slices * TILE_K;
}

/* Result element (row, col), in scope with value `value`: to the store and
 * its epilogue, or, split, to slab z of the workspace. */
static void store_result(nnc_cuda_ctx *c, const nnc_cuda_gemm *g, int split, const char *value) {
  if (split) {
    nnc_cuda_line(c, "nnc_ws[z * %lldLL + row * %lldLL + col] = %s;", g->m * g->n, g->n, value);
    return;
  }
  char index[64];
  snprintf(index, sizeof index, "row * %lldLL + col", g->n);
  nnc_cuda_store(c, index, value);
}

int nnc_cuda_gemm_emit(nnc_cuda_ctx *c, const nnc_cuda_gemm *g) {
  long long tiles_n = (g->n + TILE_N - 1) / TILE_N, tiles_m = (g->m + TILE_M - 1) / TILE_M;
  long long tiles = tiles_m * tiles_n, slice = k_slice(g, tiles);
  long long slices = slice > 0 && g->k > slice ? (g->k + slice - 1) / slice : 1;
  int split = slices > 1;
  nnc_cuda_work_blocks(c, tiles * slices, THREADS);
  nnc_cuda_line(c, "__shared__ float nnc_as[%d][%d];", TILE_K, TILE_M + 1);
  nnc_cuda_line(c, "__shared__ float nnc_bs[%d][%d];", TILE_K, TILE_N);
  if (split) nnc_cuda_line(c, "const nnc_i64 z = w / %lldLL, tile = w %% %lldLL;", tiles, tiles);
  else nnc_cuda_line(c, "const nnc_i64 tile = w;");
  nnc_cuda_line(c, "const nnc_i64 m0 = tile / %lldLL * %d, n0 = tile %% %lldLL * %d;", tiles_n ? tiles_n : 1, TILE_M,
                tiles_n ? tiles_n : 1, TILE_N);
  nnc_cuda_line(c, "const int tr = (int)threadIdx.x / %d, tc = (int)threadIdx.x %% %d;", SIDE, SIDE);
  nnc_cuda_line(c, "float acc[%d][%d] = {{0.0f}};", MICRO, MICRO);
  if (split)
    nnc_cuda_open(c, "for (nnc_i64 k0 = z * %lldLL, k_end = k0 + %lldLL < %lldLL ? k0 + %lldLL : %lldLL; k0 < k_end; k0 += %d) {",
                  slice, slice, g->k, slice, g->k, TILE_K);
  else
    nnc_cuda_open(c, "for (nnc_i64 k0 = 0; k0 < %lldLL; k0 += %d) {", g->k, TILE_K);
  stage_slabs(c, g);
  nnc_cuda_line(c, "__syncthreads();");
  multiply_slabs(c);
  nnc_cuda_line(c, "__syncthreads();");
  nnc_cuda_close(c);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int i = 0; i < %d; i++) {", MICRO);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int j = 0; j < %d; j++) {", MICRO);
  nnc_cuda_line(c, "const nnc_i64 row = m0 + tr + %d * i, col = n0 + tc + %d * j;", SIDE, SIDE);
  nnc_cuda_line(c, "if (row >= %lldLL || col >= %lldLL) continue;", g->m, g->n);
  store_result(c, g, split, "acc[i][j]");
  nnc_cuda_close(c);
  nnc_cuda_close(c);
  if (split) nnc_cuda_split_sum(c, slices, g->m * g->n);
  return NNC_EMIT_OK;
}

void nnc_cuda_im2col_view(char *out, size_t size, const char *x, const char *pixel, const char *tap,
                          const nnc_window *q) {
  snprintf(out, size, "nnc_im2col(%s, %s, %s, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL)",
           x, pixel, tap, q->ih, q->iw, q->ic, q->oh, q->ow, q->kw, q->sh, q->sw, q->ph, q->pw);
}
