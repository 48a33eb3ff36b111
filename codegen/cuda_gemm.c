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
 * sum only by the grouping of the additions.
 *
 * TF32 (nnc_cuda_tf32): operands are rounded to TF32 as they are staged
 * (cvt.rna, once per element) and multiplied by the tensor cores, one
 * m16n8k8 mma.sync per 16 x 8 piece of the tile and 8 of K. The 8 warps
 * split the tile 2 x 4, 32 rows by 16 columns each: 2 x 2 mma tiles,
 * whose fragments a lane reads from shared memory (codegen/cuda_prelude.c
 * gives the fragment layout). A is staged row-major here, rows padded to
 * TILE_K + 4 words and B's to TILE_N + 8, so that the 32 lanes' fragment
 * reads fall in 32 different banks. */
#include <stdio.h>

#include "codegen/cuda.h"

enum {
  TILE_M = 64,
  TILE_N = 64,
  TILE_K = 16,
  THREADS = 256,
  SIDE = 16, /* FP32: threads along each side of the block */
  MICRO = TILE_M / SIDE,
  WARP = 32,
  MMA_M = 16, /* TF32: one mma.sync's tile, m16n8k8 */
  MMA_N = 8,
  MMA_K = 8,
  WARPS_N = 4, /* the warps' grid over the tile */
  WARP_M = TILE_M / (THREADS / WARP / WARPS_N),
  WARP_N = TILE_N / WARPS_N,
  A_PAD = 4, /* TF32 staging: row padding, in words, that spreads fragment reads over the banks */
  B_PAD = 8,
  /* The shortest K slice worth a block: 16 K steps, so a block multiplies
   * 2 * 64 * 64 * 256 FLOPs for each 64 x 64 partial tile it writes and the
   * second kernel reads. */
  MIN_SLICE_K = 256,
};

_Static_assert(SIDE * SIDE == THREADS && TILE_M == TILE_N && TILE_M % SIDE == 0, "square register tiles");
_Static_assert((TILE_M * TILE_K) % THREADS == 0 && (TILE_K * TILE_N) % THREADS == 0, "slabs load evenly");
_Static_assert(WARP_M % MMA_M == 0 && WARP_N % MMA_N == 0 && TILE_K % MMA_K == 0, "warp tiles of whole mma tiles");

/* Stages one K slab of both operands. FP32 stores A k-major (nnc_as[k][m]),
 * one word of padding per row keeping its column writes off a single bank;
 * TF32 row-major (nnc_as[m][k]), each value rounded to TF32. */
static void stage_slabs(nnc_cuda_ctx *c, const nnc_cuda_gemm *g, int tf32) {
  const char *round = tf32 ? "nnc_tf32" : "";
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int l = (int)threadIdx.x; l < %d; l += %d) {", TILE_M * TILE_K, THREADS);
  nnc_cuda_line(c, "const nnc_i64 row = m0 + l / %d, col = k0 + l %% %d;", TILE_K, TILE_K);
  if (tf32)
    nnc_cuda_line(c, "nnc_as[l / %d][l %% %d] = row < %lldLL && col < %lldLL ? %s(%s) : 0.0f;", TILE_K, TILE_K, g->m,
                  g->k, round, g->a);
  else
    nnc_cuda_line(c, "nnc_as[l %% %d][l / %d] = row < %lldLL && col < %lldLL ? %s : 0.0f;", TILE_K, TILE_K, g->m, g->k,
                  g->a);
  nnc_cuda_close(c);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int l = (int)threadIdx.x; l < %d; l += %d) {", TILE_K * TILE_N, THREADS);
  nnc_cuda_line(c, "const nnc_i64 row = k0 + l / %d, col = n0 + l %% %d;", TILE_N, TILE_N);
  nnc_cuda_line(c, "nnc_bs[l / %d][l %% %d] = row < %lldLL && col < %lldLL ? %s(%s) : 0.0f;", TILE_N, TILE_N, g->k,
                g->n, round, g->b);
  nnc_cuda_close(c);
}

/* FP32: acc += the staged slabs' product, k in increasing order. */
static void multiply_fp32(nnc_cuda_ctx *c) {
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

/* TF32: acc[i][j] (mma tile i down, j across the warp's piece) += the
 * staged slabs' product, one mma.sync per tile and 8 of K. */
static void multiply_tf32(nnc_cuda_ctx *c) {
  enum { TM = WARP_M / MMA_M, TN = WARP_N / MMA_N };
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int kk = 0; kk < %d; kk += %d) {", TILE_K, MMA_K);
  nnc_cuda_line(c, "float fa[%d][4], fb[%d][2];", TM, TN);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int i = 0; i < %d; i++) {", TM);
  nnc_cuda_line(c, "const int r = wm + %d * i + lg;", MMA_M);
  nnc_cuda_line(c, "fa[i][0] = nnc_as[r][kk + lt], fa[i][1] = nnc_as[r + 8][kk + lt];");
  nnc_cuda_line(c, "fa[i][2] = nnc_as[r][kk + lt + 4], fa[i][3] = nnc_as[r + 8][kk + lt + 4];");
  nnc_cuda_close(c);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_line(c, "for (int j = 0; j < %d; j++) fb[j][0] = nnc_bs[kk + lt][wn + %d * j + lg], "
                   "fb[j][1] = nnc_bs[kk + lt + 4][wn + %d * j + lg];",
                TN, MMA_N, MMA_N);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int i = 0; i < %d; i++) {", TM);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_line(c, "for (int j = 0; j < %d; j++) nnc_mma_tf32(acc[i][j], fa[i], fb[j]);", TN);
  nnc_cuda_close(c);
  nnc_cuda_close(c);
}

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

/* Each result element the thread holds, bounds-checked, to store_result. */
static void store_tile(nnc_cuda_ctx *c, const nnc_cuda_gemm *g, int split, int tf32) {
  enum { TM = WARP_M / MMA_M, TN = WARP_N / MMA_N };
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int i = 0; i < %d; i++) {", tf32 ? TM : MICRO);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int j = 0; j < %d; j++) {", tf32 ? TN : MICRO);
  if (tf32) {
    nnc_cuda_line(c, "NNC_UNROLL");
    nnc_cuda_open(c, "for (int q = 0; q < 4; q++) {");
    nnc_cuda_line(c, "const nnc_i64 row = m0 + wm + %d * i + lg + 8 * (q / 2), col = n0 + wn + %d * j + 2 * lt + q %% 2;",
                  MMA_M, MMA_N);
  } else {
    nnc_cuda_line(c, "const nnc_i64 row = m0 + tr + %d * i, col = n0 + tc + %d * j;", SIDE, SIDE);
  }
  nnc_cuda_line(c, "if (row >= %lldLL || col >= %lldLL) continue;", g->m, g->n);
  store_result(c, g, split, tf32 ? "acc[i][j][q]" : "acc[i][j]");
  if (tf32) nnc_cuda_close(c);
  nnc_cuda_close(c);
  nnc_cuda_close(c);
}

/* The shared slabs, the thread's place in the tile and its accumulators. */
static void declare(nnc_cuda_ctx *c, int tf32) {
  if (tf32) {
    nnc_cuda_line(c, "__shared__ float nnc_as[%d][%d];", TILE_M, TILE_K + A_PAD);
    nnc_cuda_line(c, "__shared__ float nnc_bs[%d][%d];", TILE_K, TILE_N + B_PAD);
    nnc_cuda_line(c, "const int warp = (int)threadIdx.x / %d, lane = (int)threadIdx.x %% %d;", WARP, WARP);
    nnc_cuda_line(c, "const int wm = warp / %d * %d, wn = warp %% %d * %d, lg = lane / 4, lt = lane %% 4;", WARPS_N,
                  WARP_M, WARPS_N, WARP_N);
    nnc_cuda_line(c, "float acc[%d][%d][4] = {{{0.0f}}};", WARP_M / MMA_M, WARP_N / MMA_N);
  } else {
    nnc_cuda_line(c, "__shared__ float nnc_as[%d][%d];", TILE_K, TILE_M + 1);
    nnc_cuda_line(c, "__shared__ float nnc_bs[%d][%d];", TILE_K, TILE_N);
    nnc_cuda_line(c, "const int tr = (int)threadIdx.x / %d, tc = (int)threadIdx.x %% %d;", SIDE, SIDE);
    nnc_cuda_line(c, "float acc[%d][%d] = {{0.0f}};", MICRO, MICRO);
  }
}

int nnc_cuda_gemm_emit(nnc_cuda_ctx *c, const nnc_cuda_gemm *g) {
  long long tiles_n = (g->n + TILE_N - 1) / TILE_N, tiles_m = (g->m + TILE_M - 1) / TILE_M;
  long long tiles = tiles_m * tiles_n, slice = k_slice(g, tiles);
  long long slices = slice > 0 && g->k > slice ? (g->k + slice - 1) / slice : 1;
  int split = slices > 1;
  int tf32 = nnc_cuda_tf32(c);
  nnc_cuda_work_blocks(c, tiles * slices, THREADS);
  declare(c, tf32);
  if (split) nnc_cuda_line(c, "const nnc_i64 z = w / %lldLL, tile = w %% %lldLL;", tiles, tiles);
  else nnc_cuda_line(c, "const nnc_i64 tile = w;");
  nnc_cuda_line(c, "const nnc_i64 m0 = tile / %lldLL * %d, n0 = tile %% %lldLL * %d;", tiles_n ? tiles_n : 1, TILE_M,
                tiles_n ? tiles_n : 1, TILE_N);
  if (split)
    nnc_cuda_open(c, "for (nnc_i64 k0 = z * %lldLL, k_end = k0 + %lldLL < %lldLL ? k0 + %lldLL : %lldLL; k0 < k_end; k0 += %d) {",
                  slice, slice, g->k, slice, g->k, TILE_K);
  else
    nnc_cuda_open(c, "for (nnc_i64 k0 = 0; k0 < %lldLL; k0 += %d) {", g->k, TILE_K);
  stage_slabs(c, g, tf32);
  nnc_cuda_line(c, "__syncthreads();");
  if (tf32) multiply_tf32(c);
  else multiply_fp32(c);
  nnc_cuda_line(c, "__syncthreads();");
  nnc_cuda_close(c);
  store_tile(c, g, split, tf32);
  if (split) nnc_cuda_split_sum(c, slices, g->m * g->n);
  return NNC_EMIT_OK;
}

void nnc_cuda_im2col_view(char *out, size_t size, const char *x, const char *pixel, const char *tap,
                          const nnc_window *q) {
  snprintf(out, size, "nnc_im2col(%s, %s, %s, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL)",
           x, pixel, tap, q->ih, q->iw, q->ic, q->oh, q->ow, q->kw, q->sh, q->sw, q->ph, q->pw);
}
