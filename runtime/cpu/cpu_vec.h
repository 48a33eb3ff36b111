/* The CPU kernels' vector type and its few operations, at the width of the
 * compiler's target: 16 lanes with AVX-512, 8 with AVX, 4 otherwise. GCC
 * vector extensions, so one source serves every target; only the fused
 * multiply-add, masked loads and stores and broadcasts use intrinsics, where
 * the target has them. */
#ifndef NNC_CPU_VEC_H
#define NNC_CPU_VEC_H

#include <stdint.h>
#include <string.h>

#if defined(__AVX512F__) || defined(__AVX__)
#include <immintrin.h>
#endif

#if defined(__AVX512F__)
#define VW 16
#elif defined(__AVX__)
#define VW 8
#else
#define VW 4
#endif

/* Accumulators a register-blocked kernel may hold: the rest of the vector
 * registers hold operand vectors and a broadcast. */
#if defined(__AVX512F__)
#define MAX_ACC 24 /* of 32 */
#else
#define MAX_ACC 12 /* of 16 */
#endif
/* A block is R rows (pixels, taps) x NV vectors of columns, R <= MAX_R and
 * NV <= MAX_NV; NV_LIST(X) calls X(NV, R) for every block size, so a kernel
 * can instantiate one function per size and keep its accumulators in named
 * registers. */
#define MAX_NV 4
#define MAX_R 12
#define R_LIST(X, NV) X(NV, 1) X(NV, 2) X(NV, 3) X(NV, 4) X(NV, 5) X(NV, 6) X(NV, 7) X(NV, 8) \
  X(NV, 9) X(NV, 10) X(NV, 11) X(NV, 12)
#define NV_LIST(X) R_LIST(X, 1) R_LIST(X, 2) R_LIST(X, 3) R_LIST(X, 4)

/* The most rows a block of nv vectors may hold. */
static inline int max_rows(int nv) { return MAX_ACC / nv < MAX_R ? MAX_ACC / nv : MAX_R; }

typedef float vf __attribute__((vector_size(VW * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(VW * sizeof(int32_t))));

static inline vf load(const float *p) {
  vf v;
  memcpy(&v, p, sizeof v);
  return v;
}

static inline void store(float *p, vf v) { memcpy(p, &v, sizeof v); }

/* The first n lanes, as a mask made once for a loop's loads and stores. */
#if defined(__AVX512F__)
typedef __mmask16 vmask;
static inline vmask vmask_of(int n) { return (__mmask16)((1u << n) - 1); }
#else
typedef int vmask;
static inline vmask vmask_of(int n) { return n; }
#endif

/* The lanes of p under m, the others zero. */
static inline vf load_mask(const float *p, vmask m) {
#if defined(__AVX512F__)
  return (vf)_mm512_maskz_loadu_ps(m, p);
#else
  if (m == VW) return load(p);
  float t[VW] = {0};
  memcpy(t, p, sizeof(float) * (size_t)m);
  return load(t);
#endif
}

static inline void store_mask(float *p, vf v, vmask m) {
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(p, m, (__m512)v);
#else
  if (m == VW) {
    store(p, v);
    return;
  }
  float t[VW];
  store(t, v);
  memcpy(p, t, sizeof(float) * (size_t)m);
#endif
}

/* The first n lanes of p, the others zero. */
static inline vf load_part(const float *p, int n) {
  if (n == VW) return load(p);
#if defined(__AVX512F__)
  return (vf)_mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
#else
  float t[VW] = {0};
  memcpy(t, p, sizeof(float) * (size_t)n);
  return load(t);
#endif
}

static inline void store_part(float *p, vf v, int n) {
  if (n == VW) {
    store(p, v);
    return;
  }
#if defined(__AVX512F__)
  _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
#else
  float t[VW];
  store(t, v);
  memcpy(p, t, sizeof(float) * (size_t)n);
#endif
}

static inline vf fma_v(vf a, vf b, vf c) {
#if defined(__AVX512F__)
  return (vf)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__FMA__) && VW == 8
  return (vf)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#else
  return a * b + c;
#endif
}

/* s in every lane ((vf){0} + s would cost an add: 0 + -0 is +0). */
static inline vf bcast(float s) {
#if defined(__AVX512F__)
  return (vf)_mm512_set1_ps(s);
#elif defined(__AVX__)
  return (vf)_mm256_set1_ps(s);
#else
  vf v;
  for (int l = 0; l < VW; l++) v[l] = s;
  return v;
#endif
}
/* a in the lanes where mask is set (all ones), b elsewhere. */
static inline vf select_v(vi mask, vf a, vf b) { return (vf)(((vi)a & mask) | ((vi)b & ~mask)); }

/* a > b ? a : b in each lane (so b where either is NaN): exactly x86's max
 * instruction, one operation where select_v would be three. */
static inline vf max_v(vf a, vf b) {
#if defined(__AVX512F__)
  return (vf)_mm512_max_ps((__m512)a, (__m512)b);
#elif defined(__AVX__)
  return (vf)_mm256_max_ps((__m256)a, (__m256)b);
#else
  return select_v(a > b, a, b);
#endif
}

#endif
