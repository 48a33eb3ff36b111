/* Matmul as register-blocked loops, for the shapes where BLAS is weak: few
 * rows (a batch) against a large operand, C[m,n] = A[m,k] * B[k,n] on one
 * thread's part (cpu_gemm.c splits the work and applies the epilogue).
 *
 * R rows x NV vectors of columns stay in registers: each step over k loads
 * NV vectors of B's row and broadcasts R values of A (A[m,k] or A^T's
 * column: either stride), R * NV fused multiply-adds. k is cut into slabs
 * and the columns into groups whose panel of B stays in L2 while every row
 * block passes over it, so B comes from memory once; the sums carry over
 * from slab to slab in C.
 * With B stored transposed [n,k] (an input gradient, dy * W^T) its columns
 * are not vectors: C^T = B * A^T instead, A (few rows, small) transposed
 * into scratch, B's rows broadcast, C's tiles stored transposed.
 * Every element is summed over k in the same order whatever the thread
 * count or the cut, so every run gives the same result. Both transposed
 * does not run here (the autodiff never makes it). */
#include <string.h>

#include "runtime/cpu/cpu.h"
#include "runtime/cpu/cpu_vec.h"

/* Steps of k per slab, and columns per group: B's panel of SLAB x GROUP
 * floats (256 KB) stays in L2, with room for A and C. The slabs start at
 * fixed multiples of k, so how the columns are split between threads
 * never changes an element's order of summation. */
#define SLAB 256
#define GROUP 256

/* ---- B[k,n]: rows x vectors of columns ------------------------------------------ */

typedef struct axpy_args {
  const float *a;
  int64_t a_row, a_step; /* A's element (r, step) at a[r * a_row + step * a_step] */
  const float *b;
  int64_t ldb;
  float *c;
  int64_t ldc, steps;
  int last;       /* lanes of the last vector of columns */
  int accumulate; /* add to C (a later slab of k) */
  int transposed; /* rows are C's columns (element (r, j) at c[j * ldc + r]) */
} axpy_args;

typedef void axpy_fn(const axpy_args *p);

static inline __attribute__((always_inline)) void axpy_block(const axpy_args *p, const int NV, const int R) {
  vf acc[MAX_R][MAX_NV];
  vmask tail = vmask_of(p->last);
  _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)
    _Pragma("GCC unroll 16") for (int v = 0; v < NV; v++) acc[r][v] = (vf){0};
  const float *a = p->a, *b = p->b;
  for (int64_t s = 0; s < p->steps; s++, a += p->a_step, b += p->ldb) {
    vf bv[MAX_NV];
    _Pragma("GCC unroll 16") for (int v = 0; v < NV - 1; v++) bv[v] = load(b + v * VW);
    bv[NV - 1] = load_mask(b + (NV - 1) * VW, tail);
    _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {
      vf x = bcast(a[r * p->a_row]);
      _Pragma("GCC unroll 16") for (int v = 0; v < NV; v++) acc[r][v] = fma_v(x, bv[v], acc[r][v]);
    }
  }
  /* A later slab adds its sum to the earlier ones' (the accumulators start
   * at zero: loading C first keeps GCC from holding them in registers). */
  if (p->transposed) { /* few, so scalar stores */
    _Pragma("GCC unroll 16") for (int r = 0; r < R; r++)
      _Pragma("GCC unroll 16") for (int v = 0; v < NV; v++) {
        float t[VW], *c = p->c + v * VW * p->ldc + r;
        store(t, acc[r][v]);
        for (int l = 0; l < (v < NV - 1 ? VW : p->last); l++)
          c[l * p->ldc] = p->accumulate ? c[l * p->ldc] + t[l] : t[l];
      }
    return;
  }
  _Pragma("GCC unroll 16") for (int r = 0; r < R; r++) {
    float *c = p->c + r * p->ldc;
    _Pragma("GCC unroll 16") for (int v = 0; v < NV - 1; v++)
      store(c + v * VW, p->accumulate ? acc[r][v] + load(c + v * VW) : acc[r][v]);
    vf y = acc[r][NV - 1];
    store_mask(c + (NV - 1) * VW, p->accumulate ? y + load_mask(c + (NV - 1) * VW, tail) : y, tail);
  }
}

/* One function per block size, so the accumulators are named registers. */
#define DEFINE(NV, R) \
  static void axpy_##NV##_##R(const axpy_args *p) { axpy_block(p, NV, R); }
NV_LIST(DEFINE)
#undef DEFINE
#define ENTRY(NV, R) [NV - 1][R - 1] = axpy_##NV##_##R,
static axpy_fn *const axpy_fns[MAX_NV][MAX_R] = {NV_LIST(ENTRY)};
#undef ENTRY

/* ---- drivers --------------------------------------------------------------------- */

/* Block `b` of `blocks` cutting [0, size) evenly: its first index and size. */
static void even_block(int64_t size, int64_t blocks, int64_t b, int64_t *first, int64_t *count) {
  *first = size * b / blocks;
  *count = size * (b + 1) / blocks - *first;
}

static int64_t blocks_of(int64_t size, int64_t most) { return (size + most - 1) / most; }

/* C's element (i, j) at c[i * ldc + j], or at c[j * ldc + i] when transposed. */
static void axpy_gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t a_row, int64_t a_step,
                      const float *b, int64_t ldb, float *c, int64_t ldc, int transposed) {
  int64_t vectors = blocks_of(n, VW);
  int nv = (int)blocks_of(vectors, blocks_of(vectors, MAX_NV)); /* per strip, spread evenly */
  int max_r = max_rows(nv);
  int64_t rows = blocks_of(m, max_r), group = GROUP / (nv * VW) * (nv * VW);
  for (int64_t g0 = 0; g0 < n; g0 += group) {
    int64_t g1 = n - g0 < group ? n : g0 + group;
    for (int64_t k0 = 0; k0 < k; k0 += SLAB) {
      int64_t steps = k - k0 < SLAB ? k - k0 : SLAB;
      for (int64_t rb = 0; rb < rows; rb++) {
        int64_t i0, r;
        even_block(m, rows, rb, &i0, &r);
        for (int64_t j0 = g0; j0 < g1; j0 += nv * VW) {
          int strip = blocks_of(g1 - j0, VW) < nv ? (int)blocks_of(g1 - j0, VW) : nv;
          float *at = transposed ? c + j0 * ldc + i0 : c + i0 * ldc + j0;
          axpy_args p = {a + i0 * a_row + k0 * a_step, a_row, a_step, b + k0 * ldb + j0, ldb, at, ldc,
                         steps, (int)(g1 - j0 - (strip - 1) * VW), k0 > 0, transposed};
          if (p.last > VW) p.last = VW;
          axpy_fns[strip - 1][r - 1](&p);
        }
      }
    }
  }
}

/* C = A * B^T as C^T = B * A^T: A (few rows) transposed into scratch, so
 * its rows are the vectors and B's rows are broadcast, each streamed once. */
static void transposed_gemm(int64_t m, int64_t n, int64_t k, const float *a, int64_t lda, const float *b,
                            int64_t ldb, float *c, int64_t ldc, float *at) {
  for (int64_t s = 0; s < k; s++)
    for (int64_t i = 0; i < m; i++) at[s * m + i] = a[i * lda + s];
  axpy_gemm(n, m, k, b, ldb, 1, at, m, c, ldc, 1);
}

int nnc_cpu_blocked_fits(int ta, int tb) { return !(ta && tb); }

size_t nnc_cpu_blocked_scratch(int ta, int tb, int64_t m, int64_t k) { return !ta && tb ? (size_t)(m * k) : 0; }

void nnc_cpu_blocked_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float *c, int64_t ldc, float *scratch) {
  if (m <= 0 || n <= 0) return;
  if (k <= 0) { /* an empty sum */
    for (int64_t r = 0; r < m; r++) memset(c + r * ldc, 0, sizeof(float) * (size_t)n);
    return;
  }
  if (tb) transposed_gemm(m, n, k, a, lda, b, ldb, c, ldc, scratch);
  else if (ta) axpy_gemm(m, n, k, a, 1, lda, b, ldb, c, ldc, 0);
  else axpy_gemm(m, n, k, a, lda, 1, b, ldb, c, ldc, 0);
}
