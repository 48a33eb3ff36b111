/* The one tiled GEMM loop behind every GEMM-shaped anchor (matmul in each
 * transposition, conv2d and its two gradients as implicit GEMMs): the op's
 * emitter says how A(row, k) and B(k, col) are read (codegen/cuda.h,
 * nnc_cuda_gemm) and this file writes the loop.
 *
 * Each block computes a tile_m x tile_n tile of the result (64 or 128
 * each way: the largest that still gives every SM a block, as a larger
 * tile reads each operand fewer times and does more FMAs per shared-memory
 * load). Its 16 x 16 threads each hold a micro_m x micro_n register tile
 * (4 or 8 each way), in groups of 4 rows and 4 columns 64 apart, rows
 * 4*tr + 64*h + (0..3): a thread reads each group as one 16-byte vector of
 * shared memory, and a warp's reads fall in as few 128-byte wavefronts as
 * they can. K is walked TILE_K at a time through two shared-memory slabs
 * of each operand (A's tile_m x TILE_K, B's TILE_K x tile_n, both stored
 * k-major): while the block multiplies one, the next is loaded into the
 * other, so one barrier per K step suffices and the loads' latency hides
 * behind the FMAs. On sm_80 and newer a plain operand is copied by
 * cp.async, straight to shared memory (16 bytes at a time where its rows
 * run along the slab's rows and are 16-byte aligned, else 4); a view (an
 * im2col read) and older targets go through registers, loaded before the
 * multiply and stored after it. Elements past the edges stage as zero
 * (cp.async's zero fill), so edge tiles run the same loop and add exact
 * zeros; only the store is bounds-checked. Every element sums its products
 * in increasing k, as the direct loops did, so results do not depend on
 * the tile sizes. Index math is 32-bit where every index of the GEMM fits.
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
 * TF32 (nnc_cuda_tf32): 64 x 64 tiles; operands are rounded to TF32 as
 * they are staged (cvt.rna, once per element, so always through
 * registers, double-buffered the same way) and multiplied by the tensor cores, one
 * m16n8k8 mma.sync per 16 x 8 piece of the tile and 8 of K. The 8 warps
 * split the tile 2 x 4, 32 rows by 16 columns each: 2 x 2 mma tiles,
 * whose fragments a lane reads from shared memory (codegen/cuda_prelude.c
 * gives the fragment layout). A is staged row-major here, rows padded to
 * TILE_K + 4 words and B's to TILE_N + 8, so that the 32 lanes' fragment
 * reads fall in 32 different banks. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "codegen/cuda.h"

enum {
  THREADS = 256,
  SIDE = 16,    /* FP32: threads along each side of the block */
  GROUP = 4,    /* FP32: a thread's rows (and columns) come in groups of 4, 64 apart */
  TILE_K = 16,
  STAGES = 2,   /* K slabs in shared memory */
  VEC = 4,      /* floats in a 16-byte copy */
  FP32_PAD = 4, /* FP32 staging: row padding, in words, that keeps rows 16-byte aligned */
  WARP = 32,
  WARPS = THREADS / WARP,
  TF32_TILE = 64,
  MMA_M = 16, /* TF32: one mma.sync's tile, m16n8k8 */
  MMA_N = 8,
  MMA_K = 8,
  WARPS_N = 4, /* the warps' grid over the tile */
  WARP_M = TF32_TILE / (WARPS / WARPS_N),
  WARP_N = TF32_TILE / WARPS_N,
  A_PAD = 4, /* TF32 staging: row padding, in words, that spreads fragment reads over the banks */
  B_PAD = 8,
  /* The shortest K slice worth a block: 16 K steps, so a block multiplies
   * 2 * 64 * 64 * 256 FLOPs for each 64 x 64 partial tile it writes and the
   * second kernel reads. */
  MIN_SLICE_K = 256,
};

_Static_assert(SIDE * SIDE == THREADS && SIDE * GROUP == 64, "a 64 x 64 tile per group of 4 x 4");
_Static_assert((64 * TILE_K) % (THREADS * VEC) == 0, "slabs load evenly");
_Static_assert(WARP_M % MMA_M == 0 && WARP_N % MMA_N == 0 && TILE_K % MMA_K == 0, "warp tiles of whole mma tiles");

/* What the kernel is, decided from the shapes and the target. */
typedef struct plan {
  int tf32, micro_m, micro_n, tile_m, tile_n;
  const char *ix; /* the index type: int where every index fits, else nnc_i64 */
} plan;

/* How one operand's K slab is staged. Slab element (kk, x): k = k0 + kk,
 * and x the row of A (m) or the column of B (n) within the tile. */
typedef struct slab {
  char name; /* 'a' or 'b' */
  const nnc_cuda_operand *op;
  char buf[64]; /* op->buf, copied: the emitter's names are short-lived */
  long long rows, cols; /* the operand's, m x k or k x n */
  int extent;           /* tile_m or tile_n */
  int along_k;          /* consecutive threads take consecutive kk (else consecutive x) */
  int vec;              /* floats per copy: VEC (one 16-byte cp.async) or 1 */
  int async;            /* by cp.async, else through registers */
  int per_thread;       /* copies per thread per slab */
} slab;

/* A plain operand's storage runs along k. */
static int contiguous_along_k(const slab *s) { return s->op->buf && (s->name == 'a') != (s->op->trans != 0); }

static void plan_slab(slab *s, char name, const nnc_cuda_operand *op, long long rows, long long cols, int extent,
                      int async) {
  memset(s, 0, sizeof *s);
  s->name = name, s->op = op, s->rows = rows, s->cols = cols, s->extent = extent;
  if (op->buf) snprintf(s->buf, sizeof s->buf, "%s", op->buf);
  /* Views read best along k for A (an im2col row's taps are channels) and along n for B. */
  s->along_k = op->buf ? contiguous_along_k(s) : name == 'a';
  s->async = async && op->buf;
  /* 16 bytes at a time where the storage runs along the slab's rows (x)
   * in whole, aligned vectors: the buffers are 64-byte aligned
   * (passes/plan_memory.c), so a row start is whenever ld is a multiple of 4. */
  long long run = name == 'a' ? rows : cols;
  s->vec = s->async && !s->along_k && op->ld % VEC == 0 && run % VEC == 0 ? VEC : 1;
  s->per_thread = extent * TILE_K / s->vec / THREADS;
}

/* Slab element (kk, x) of buffer `stage` in shared memory. */
static const char *smem(char *out, size_t size, const plan *p, const slab *s, const char *stage, const char *kk,
                        const char *x) {
  if (p->tf32 && s->name == 'a') snprintf(out, size, "nnc_as[%s][%s][%s]", stage, x, kk);
  else snprintf(out, size, "nnc_%cs[%s][%s][%s]", s->name, stage, kk, x);
  return out;
}

/* Declares kk and x of copy i of this thread (a loop variable), and, with
 * coordinates, r and c in the operand for the slab starting at k0. */
static void copy_place(nnc_cuda_ctx *c, const plan *p, const slab *s, const char *k0, int coordinates) {
  nnc_cuda_line(c, "const int g = (int)threadIdx.x + %d * i;", THREADS);
  if (s->along_k)
    nnc_cuda_line(c, "const int kk = g %% %d * %d, x = g / %d;", TILE_K / s->vec, s->vec, TILE_K / s->vec);
  else
    nnc_cuda_line(c, "const int x = g %% %d * %d, kk = g / %d;", s->extent / s->vec, s->vec, s->extent / s->vec);
  if (!coordinates) return;
  if (s->name == 'a') nnc_cuda_line(c, "const %s r = m0 + x, c = %s + kk;", p->ix, k0);
  else nnc_cuda_line(c, "const %s r = %s + kk, c = n0 + x;", p->ix, k0);
}

/* The index of a plain operand's element (r, c) in its buffer. */
static const char *plain_index(char *out, size_t size, const plan *p, const slab *s) {
  const char *suffix = strcmp(p->ix, "int") ? "LL" : "";
  if (s->op->trans) snprintf(out, size, "c * %lld%s + r", s->op->ld, suffix);
  else snprintf(out, size, "r * %lld%s + c", s->op->ld, suffix);
  return out;
}

/* Starts the load of the slab at k0 into buffer `stage`: cp.async's
 * copies, or reads into the thread's registers nnc_p<name>. */
static void load_slab(nnc_cuda_ctx *c, const plan *p, const slab *s, const char *stage, const char *k0) {
  char dst[96], index[96];
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int i = 0; i < %d; i++) {", s->per_thread);
  copy_place(c, p, s, k0, 1);
  nnc_cuda_line(c, "const int ok = r < %lld && c < %lld;", s->rows, s->cols);
  if (s->async) {
    nnc_cuda_line(c, "nnc_cp_async%d(&%s, %s + (ok ? %s : 0), ok ? %d : 0);", 4 * s->vec,
                  smem(dst, sizeof dst, p, s, stage, "kk", "x"), s->buf, plain_index(index, sizeof index, p, s),
                  4 * s->vec);
  } else if (s->op->buf) {
    nnc_cuda_line(c, "nnc_p%c[i] = ok ? %s[%s] : 0.0f;", s->name, s->buf, plain_index(index, sizeof index, p, s));
  } else {
    char view[512];
    snprintf(view, sizeof view, s->op->view, strcmp(p->ix, "int") ? "" : "_i32");
    nnc_cuda_line(c, "const %s row = r, col = c;", p->ix);
    nnc_cuda_line(c, "nnc_p%c[i] = ok ? %s : 0.0f;", s->name, view);
  }
  nnc_cuda_close(c);
}

/* Registers nnc_p<name> to buffer `stage`, rounded to TF32 where the
 * tensor cores multiply. */
static void store_slab(nnc_cuda_ctx *c, const plan *p, const slab *s, const char *stage) {
  if (s->async) return;
  char dst[96];
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int i = 0; i < %d; i++) {", s->per_thread);
  copy_place(c, p, s, NULL, 0);
  nnc_cuda_line(c, "%s = %s(nnc_p%c[i]);", smem(dst, sizeof dst, p, s, stage, "kk", "x"), p->tf32 ? "nnc_tf32" : "",
                s->name);
  nnc_cuda_close(c);
}

/* FP32: acc += slab `s`'s product, k in increasing order. */
static void multiply_fp32(nnc_cuda_ctx *c, const plan *p) {
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int kk = 0; kk < %d; kk++) {", TILE_K);
  nnc_cuda_line(c, "float ra[%d], rb[%d];", p->micro_m, p->micro_n);
  const char *names[2] = {"ra", "rb"}, *places[2] = {"tr", "tc"};
  const int micro[2] = {p->micro_m, p->micro_n};
  for (int o = 0; o < 2; o++) {
    nnc_cuda_line(c, "NNC_UNROLL");
    nnc_cuda_open(c, "for (int h = 0; h < %d; h++) {", micro[o] / GROUP);
    nnc_cuda_line(c, "const nnc_f4 v = *(const nnc_f4 *)&nnc_%cs[s][kk][%d * h + %d * %s];", "ab"[o], SIDE * GROUP,
                  GROUP, places[o]);
    nnc_cuda_line(c, "%s[4 * h] = v.x, %s[4 * h + 1] = v.y, %s[4 * h + 2] = v.z, %s[4 * h + 3] = v.w;", names[o],
                  names[o], names[o], names[o]);
    nnc_cuda_close(c);
  }
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int i = 0; i < %d; i++) {", p->micro_m);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_line(c, "for (int j = 0; j < %d; j++) acc[i][j] += ra[i] * rb[j];", p->micro_n);
  nnc_cuda_close(c);
  nnc_cuda_close(c);
}

/* TF32: acc[i][j] (mma tile i down, j across the warp's piece) += slab
 * `s`'s product, one mma.sync per tile and 8 of K. */
static void multiply_tf32(nnc_cuda_ctx *c) {
  enum { TM = WARP_M / MMA_M, TN = WARP_N / MMA_N };
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int kk = 0; kk < %d; kk += %d) {", TILE_K, MMA_K);
  nnc_cuda_line(c, "float fa[%d][4], fb[%d][2];", TM, TN);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int i = 0; i < %d; i++) {", TM);
  nnc_cuda_line(c, "const int r = wm + %d * i + lg;", MMA_M);
  nnc_cuda_line(c, "fa[i][0] = nnc_as[s][r][kk + lt], fa[i][1] = nnc_as[s][r + 8][kk + lt];");
  nnc_cuda_line(c, "fa[i][2] = nnc_as[s][r][kk + lt + 4], fa[i][3] = nnc_as[s][r + 8][kk + lt + 4];");
  nnc_cuda_close(c);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_line(c, "for (int j = 0; j < %d; j++) fb[j][0] = nnc_bs[s][kk + lt][wn + %d * j + lg], "
                   "fb[j][1] = nnc_bs[s][kk + lt + 4][wn + %d * j + lg];",
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

static long long tiles_of(const nnc_cuda_gemm *g, int tile_m, int tile_n) {
  return ((g->m + tile_m - 1) / tile_m) * ((g->n + tile_n - 1) / tile_n);
}

/* 128 along a side wastes no more than 64 does. */
static int fills_128(long long size) { return (size + 127) / 128 * 128 == (size + 63) / 64 * 64; }

/* FP32 register tiles: the largest whose tiles still give every SM a
 * block and waste no more FMAs on the edges than 64 x 64 tiles (8 x 8,
 * then 8 x 4 or 4 x 8 along the longer side, then 4 x 4, which split-K
 * then fills in if it has too few tiles). */
static void choose_tiles(const nnc_cuda_gemm *g, plan *p) {
  static const int shapes[][2] = {{8, 8}, {8, 4}, {4, 8}, {4, 4}};
  int first = g->n > g->m ? 1 : 0;
  for (int i = 0; i < 4; i++) {
    int at = i == 1 || i == 2 ? 1 + (i - 1 + first) % 2 : i;
    p->micro_m = shapes[at][0], p->micro_n = shapes[at][1];
    if ((p->micro_m == 4 || fills_128(g->m)) && (p->micro_n == 4 || fills_128(g->n)) &&
        tiles_of(g, SIDE * p->micro_m, SIDE * p->micro_n) >= NNC_CUDA_TARGET_SMS)
      break;
  }
  p->tile_m = SIDE * p->micro_m, p->tile_n = SIDE * p->micro_n;
}

/* The largest index is below 2^31: the operands' storage (a plain one's
 * indexed here, a view's by the view), the result and the split
 * workspace, with a tile of overhang. */
static int fits_int(const nnc_cuda_gemm *g, const slab *a, const slab *b, long long slices) {
  const long long limit = INT32_MAX - 256;
  long long dims = g->m > g->n ? g->m : g->n;
  if ((g->k > dims ? g->k : dims) > limit) return 0;
  const slab *ops[2] = {a, b};
  for (int i = 0; i < 2; i++) {
    const slab *s = ops[i];
    long long outer = (s->op->trans ? s->cols : s->rows) + 1;
    if (s->op->buf && s->op->ld > 0 && outer > limit / s->op->ld) return 0;
    if (!s->op->buf && s->op->view_numel > limit) return 0;
  }
  return g->n == 0 || (g->m + 1) <= limit / g->n / slices;
}

/* Result element (row, col), in scope with value `value`: to the store and
 * its epilogue, or, split, to slab z of the workspace. */
static void store_result(nnc_cuda_ctx *c, const nnc_cuda_gemm *g, const plan *p, int split, const char *value) {
  const char *suffix = strcmp(p->ix, "int") ? "LL" : "";
  if (split) {
    nnc_cuda_line(c, "nnc_ws[z * %lld%s + row * %lld%s + col] = %s;", g->m * g->n, suffix, g->n, suffix, value);
    return;
  }
  char index[64];
  snprintf(index, sizeof index, "row * %lld%s + col", g->n, suffix);
  nnc_cuda_store(c, index, value);
}

/* Each result element the thread holds, bounds-checked, to store_result. */
static void store_tile(nnc_cuda_ctx *c, const nnc_cuda_gemm *g, const plan *p, int split) {
  enum { TM = WARP_M / MMA_M, TN = WARP_N / MMA_N };
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int i = 0; i < %d; i++) {", p->tf32 ? TM : p->micro_m);
  nnc_cuda_line(c, "NNC_UNROLL");
  nnc_cuda_open(c, "for (int j = 0; j < %d; j++) {", p->tf32 ? TN : p->micro_n);
  if (p->tf32) {
    nnc_cuda_line(c, "NNC_UNROLL");
    nnc_cuda_open(c, "for (int q = 0; q < 4; q++) {");
    nnc_cuda_line(c, "const %s row = m0 + wm + %d * i + lg + 8 * (q / 2), col = n0 + wn + %d * j + 2 * lt + q %% 2;",
                  p->ix, MMA_M, MMA_N);
  } else {
    nnc_cuda_line(c, "const %s row = m0 + %d * (i / %d) + %d * tr + i %% %d, col = n0 + %d * (j / %d) + %d * tc + j %% %d;",
                  p->ix, SIDE * GROUP, GROUP, GROUP, GROUP, SIDE * GROUP, GROUP, GROUP, GROUP);
  }
  nnc_cuda_line(c, "if (row >= %lld || col >= %lld) continue;", g->m, g->n);
  store_result(c, g, p, split, p->tf32 ? "acc[i][j][q]" : "acc[i][j]");
  if (p->tf32) nnc_cuda_close(c);
  nnc_cuda_close(c);
  nnc_cuda_close(c);
}

/* The shared slabs, the staging registers, the thread's place in the tile
 * and its accumulators. */
static void declare(nnc_cuda_ctx *c, const plan *p, const slab *a, const slab *b) {
  if (p->tf32) {
    nnc_cuda_line(c, "__shared__ float nnc_as[%d][%d][%d];", STAGES, TF32_TILE, TILE_K + A_PAD);
    nnc_cuda_line(c, "__shared__ float nnc_bs[%d][%d][%d];", STAGES, TILE_K, TF32_TILE + B_PAD);
    nnc_cuda_line(c, "const int warp = (int)threadIdx.x / %d, lane = (int)threadIdx.x %% %d;", WARP, WARP);
    nnc_cuda_line(c, "const int wm = warp / %d * %d, wn = warp %% %d * %d, lg = lane / 4, lt = lane %% 4;", WARPS_N,
                  WARP_M, WARPS_N, WARP_N);
    nnc_cuda_line(c, "float acc[%d][%d][4] = {{{0.0f}}};", WARP_M / MMA_M, WARP_N / MMA_N);
  } else {
    nnc_cuda_line(c, "__shared__ NNC_ALIGN16 float nnc_as[%d][%d][%d];", STAGES, TILE_K, p->tile_m + FP32_PAD);
    nnc_cuda_line(c, "__shared__ NNC_ALIGN16 float nnc_bs[%d][%d][%d];", STAGES, TILE_K, p->tile_n + FP32_PAD);
    nnc_cuda_line(c, "const int tr = (int)threadIdx.x / %d, tc = (int)threadIdx.x %% %d;", SIDE, SIDE);
    nnc_cuda_line(c, "float acc[%d][%d] = {{0.0f}};", p->micro_m, p->micro_n);
  }
  if (!a->async) nnc_cuda_line(c, "float nnc_pa[%d];", a->per_thread);
  if (!b->async) nnc_cuda_line(c, "float nnc_pb[%d];", b->per_thread);
}

/* The loop's figures for the predictor (nnc_cuda_gemm_loop), per thread
 * and K step: FMAs; 16-byte shared loads (a warp's A rows fall in one
 * wavefront, its 16 B columns in two); and the staging: one instruction a
 * cp.async, two (load, store) through registers, and the slabs' bytes
 * written to shared memory; and the view elements it stages. TF32's mma
 * tiles are modelled apart. */
static nnc_cuda_gemm_loop loop_figures(const plan *p, const slab *a, const slab *b) {
  nnc_cuda_gemm_loop l = {0};
  l.stages = STAGES;
  l.index_bits = strcmp(p->ix, "int") ? 64 : 32;
  if (p->tf32) {
    l.fmas = (double)TF32_TILE * TF32_TILE / THREADS;
    return l;
  }
  l.fmas = p->micro_m * p->micro_n;
  double staging = (a->per_thread * (a->async ? 1 : 2) + b->per_thread * (b->async ? 1 : 2)) / (double)TILE_K;
  l.issues = p->micro_m / GROUP + p->micro_n / GROUP + staging;
  l.wavefronts = p->micro_m / GROUP + 2.0 * p->micro_n / GROUP + 4.0 * (p->tile_m + p->tile_n) / WARPS / 128;
  l.views = ((a->op->buf ? 0 : a->per_thread) + (b->op->buf ? 0 : b->per_thread)) / (double)TILE_K;
  return l;
}

int nnc_cuda_gemm_emit(nnc_cuda_ctx *c, const nnc_cuda_gemm *g) {
  plan p = {.tf32 = nnc_cuda_tf32(c)};
  if (p.tf32) p.tile_m = p.tile_n = TF32_TILE;
  else choose_tiles(g, &p);
  long long tiles_n = (g->n + p.tile_n - 1) / p.tile_n, tiles = tiles_of(g, p.tile_m, p.tile_n);
  long long slice = k_slice(g, tiles);
  long long slices = slice > 0 && g->k > slice ? (g->k + slice - 1) / slice : 1;
  int split = slices > 1, async = !p.tf32 && nnc_cuda_async_copy(c);
  slab a, b;
  plan_slab(&a, 'a', &g->a, g->m, g->k, p.tile_m, async);
  plan_slab(&b, 'b', &g->b, g->k, g->n, p.tile_n, async);
  p.ix = fits_int(g, &a, &b, slices) ? "int" : "nnc_i64";
  const char *suffix = strcmp(p.ix, "int") ? "LL" : "";
  nnc_cuda_work_blocks(c, tiles * slices, THREADS);
  nnc_cuda_gemm_loop figures = loop_figures(&p, &a, &b);
  nnc_cuda_set_gemm_loop(c, &figures);
  declare(c, &p, &a, &b);
  if (split) nnc_cuda_line(c, "const %s z = (%s)(w / %lldLL), tile = (%s)(w %% %lldLL);", p.ix, p.ix, tiles, p.ix, tiles);
  else nnc_cuda_line(c, "const %s tile = (%s)w;", p.ix, p.ix);
  nnc_cuda_line(c, "const %s m0 = tile / %lld%s * %d, n0 = tile %% %lld%s * %d;", p.ix, tiles_n ? tiles_n : 1, suffix,
                p.tile_m, tiles_n ? tiles_n : 1, suffix, p.tile_n);
  if (split)
    nnc_cuda_line(c, "const %s k_begin = z * %lld%s, k_end = k_begin + %lld%s < %lld%s ? k_begin + %lld%s : %lld%s;", p.ix,
                  slice, suffix, slice, suffix, g->k, suffix, slice, suffix, g->k, suffix);
  else nnc_cuda_line(c, "const %s k_begin = 0, k_end = %lld%s;", p.ix, g->k, suffix);
  /* The first slab, then each step: wait for this slab, start the next
   * into the other buffer, multiply this one, and store the next where it
   * went through registers. The barrier also tells that every thread is
   * done with the other buffer, last step's. */
  load_slab(c, &p, &a, "0", "k_begin");
  load_slab(c, &p, &b, "0", "k_begin");
  if (async) nnc_cuda_line(c, "nnc_cp_async_commit();");
  store_slab(c, &p, &a, "0");
  store_slab(c, &p, &b, "0");
  nnc_cuda_line(c, "int s = 0;");
  nnc_cuda_open(c, "for (%s k0 = k_begin; k0 < k_end; k0 += %d, s ^= 1) {", p.ix, TILE_K);
  if (async) nnc_cuda_line(c, "nnc_cp_async_wait(0);");
  nnc_cuda_line(c, "__syncthreads();");
  nnc_cuda_line(c, "const int more = k0 + %d < k_end;", TILE_K);
  nnc_cuda_open(c, "if (more) {");
  nnc_cuda_line(c, "const %s k1 = k0 + %d;", p.ix, TILE_K);
  load_slab(c, &p, &a, "s ^ 1", "k1");
  load_slab(c, &p, &b, "s ^ 1", "k1");
  nnc_cuda_close(c);
  if (async) nnc_cuda_line(c, "nnc_cp_async_commit();");
  if (p.tf32) multiply_tf32(c);
  else multiply_fp32(c, &p);
  if (!a.async || !b.async) {
    nnc_cuda_open(c, "if (more) {");
    store_slab(c, &p, &a, "s ^ 1");
    store_slab(c, &p, &b, "s ^ 1");
    nnc_cuda_close(c);
  }
  nnc_cuda_close(c);
  /* A block with another tile to do loads its first slab next. */
  nnc_cuda_line(c, "__syncthreads();");
  store_tile(c, g, &p, split);
  if (split) nnc_cuda_split_sum(c, slices, g->m * g->n);
  return NNC_EMIT_OK;
}

void nnc_cuda_im2col_view(char *out, size_t size, const char *x, const char *pixel, const char *tap,
                          const nnc_window *q) {
  snprintf(out, size, "nnc_im2col%%s(%s, %s, %s, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL, %lldLL)",
           x, pixel, tap, q->ih, q->iw, q->ic, q->oh, q->ow, q->kw, q->sh, q->sw, q->ph, q->pw);
}
