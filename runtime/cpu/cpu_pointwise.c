/* The memory-bound ops: elementwise math, bias, dropout, softmax, the
 * logits cross-entropy and the optimizer updates, plus the epilogue that
 * fused groups apply to a GEMM's output tile.
 *
 * Elementwise kernels are one loop each, written as an expression over
 * operands a, b, c (and the step's scalar s), split between threads in
 * chunks big enough to amortise a wake-up. Reductions (bias_grad, the loss)
 * give each thread a fixed range and add the partial sums in a fixed
 * order, so a run is deterministic for a given thread count. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "ir/pointwise.h"
#include "runtime/cpu/cpu.h"
#include "runtime/rng.h"

#define SRC(g, n, i) (&(g)->nodes[(n)->src[i]])

/* Elements per chunk: below about 2 x this an op runs on one thread. */
#define GRAIN (1 << 15)

typedef nnc_cpu_range_fn range_fn;

typedef struct map_task {
  const nnc_cpu_args *args;
  range_fn *range;
} map_task;

static void map_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
  const map_task *t = ctx;
  (void)thread;
  t->range(t->args, begin, end);
}

/* Runs range over [0, count) split between the threads. */
static void run_map(const nnc_cpu_args *x, int64_t count, range_fn *range) {
  map_task t = {x, range};
  nnc_cpu_parallel(count, nnc_cpu_grain(count, 2, GRAIN), map_chunk, &t);
}

/* The rows of ir/pointwise.def: out[i] from element i of each operand,
 * the scalar operand s (the last; only the update ops have one) and the
 * node's alpha and eps. */
#define RANGE_KERNEL(name, ...)                                                                \
  static void name##_range(const nnc_cpu_args *x, int64_t begin, int64_t end) {               \
    const nnc_node *n = x->k.n;                                                                \
    const float *restrict a = x->k.in[0];                                                      \
    const float *restrict b = n->nsrc > 1 ? x->k.in[1] : NULL;                                 \
    const float *restrict c = n->nsrc > 2 ? x->k.in[2] : NULL;                                 \
    const float alpha = n->attrs.alpha, eps = n->attrs.eps;                                    \
    float *restrict out = x->k.out;                                                            \
    (void)b, (void)c, (void)eps;                                                               \
    __VA_ARGS__                                                                                \
  }                                                                                            \
  static void run_##name(const nnc_cpu_args *x) { run_map(x, nnc_node_numel(x->k.n), name##_range); } \
  const nnc_cpu_kernel nnc_cpu_##name = {.run = run_##name, .range = name##_range};

#define ACTIVATION(ENUM, name, GRAD, flops, ...) \
  RANGE_KERNEL(name, for (int64_t i = begin; i < end; i++) out[i] = nnc_pw_##name(a[i], alpha);)
#define ACTIVATION_GRAD(ENUM, name, flops, ...) \
  RANGE_KERNEL(name, for (int64_t i = begin; i < end; i++) out[i] = nnc_pw_##name(a[i], b[i], alpha);)
#define POINTWISE(ENUM, name, operands, flops, ...)                                                      \
  RANGE_KERNEL(name, const float s = n->nsrc > operands ? *(const float *)x->k.in[n->nsrc - 1] : 0.0f; \
               for (int64_t i = begin; i < end; i++) out[i] =                                      \
                   nnc_pw_##name(a[i], operands > 1 ? b[i] : 0.0f, operands > 2 ? c[i] : 0.0f, s, alpha, eps);)
#define RANDOM(ENUM, name, ...) /* dropout, below: its draws come in blocks of lanes */
#include "ir/pointwise.def"
#undef ACTIVATION
#undef ACTIVATION_GRAD
#undef POINTWISE
#undef RANDOM

/* A reshape is a copy: the memory plan gives it bytes of its own, and may
 * reuse its operand's once it has run. */
static void run_reshape(const nnc_cpu_args *x) {
  memcpy(x->k.out, x->k.in[0], (size_t)nnc_node_numel(x->k.n) * nnc_dtype_size(x->k.n->dtype));
}

const nnc_cpu_kernel nnc_cpu_reshape = {.run = run_reshape};

/* ---- bias ------------------------------------------------------------------ */

static void bias_add_range(const nnc_cpu_args *x, int64_t begin, int64_t end) {
  int64_t c = x->k.n->shape[x->k.n->rank - 1];
  const float *in = x->k.in[0], *bias = x->k.in[1];
  float *out = x->k.out;
  for (int64_t r = begin; r < end; r++)
    for (int64_t j = 0; j < c; j++) out[r * c + j] = in[r * c + j] + bias[j];
}

static void run_bias_add(const nnc_cpu_args *x) {
  int64_t c = x->k.n->shape[x->k.n->rank - 1];
  int64_t rows = nnc_node_numel(x->k.n) / c;
  map_task t = {x, bias_add_range};
  nnc_cpu_parallel(rows, nnc_cpu_grain(rows, 2, GRAIN / c + 1), map_chunk, &t);
}

const nnc_cpu_kernel nnc_cpu_bias_add = {.run = run_bias_add};

/* bias_grad: thread-sized parts of the rows each sum into their own
 * partial (part p's lives in thread p's scratch), added in part order. */
typedef struct bias_grad_task {
  const nnc_cpu_args *args;
  int64_t rows, c, parts;
} bias_grad_task;

static void bias_grad_part(void *ctx, int64_t p0, int64_t p1, int thread) {
  const bias_grad_task *t = ctx;
  const float *dy = t->args->k.in[0];
  (void)thread;
  for (int64_t p = p0; p < p1; p++) {
    float *sum = t->args->scratch + (size_t)p * t->args->scratch_floats;
    memset(sum, 0, sizeof(float) * (size_t)t->c);
    for (int64_t r = t->rows * p / t->parts; r < t->rows * (p + 1) / t->parts; r++)
      for (int64_t j = 0; j < t->c; j++) sum[j] += dy[r * t->c + j];
  }
}

static void run_bias_grad(const nnc_cpu_args *x) {
  bias_grad_task t = {x, 0, x->k.n->shape[0], nnc_cpu_threads()};
  t.rows = nnc_node_numel(SRC(x->k.g, x->k.n, 0)) / t.c;
  if (t.rows * t.c < 2 * GRAIN) t.parts = 1;
  nnc_cpu_parallel(t.parts, 1, bias_grad_part, &t);
  float *out = x->k.out;
  memcpy(out, x->scratch, sizeof(float) * (size_t)t.c);
  for (int64_t p = 1; p < t.parts; p++) {
    const float *sum = x->scratch + (size_t)p * x->scratch_floats;
    for (int64_t j = 0; j < t.c; j++) out[j] += sum[j];
  }
}

static size_t bias_grad_scratch(const nnc_options *o, const nnc_graph *g, const nnc_node *n) {
  (void)o;
  (void)g;
  return (size_t)n->shape[0];
}

const nnc_cpu_kernel nnc_cpu_bias_grad = {.run = run_bias_grad, .scratch = bias_grad_scratch};

/* ---- dropout ----------------------------------------------------------------- */

/* Philox-4x32-10 on LANES consecutive counters at once, keeping word 0 of
 * each block: the same numbers as nnc_philox (runtime/rng.c). Element i
 * draws nnc_dropout_counter + i on the node's stream, as the reference
 * does, so the masks agree. The rounds run on vectors of 16 words (GCC
 * vector extensions: AVX-512 or AVX2 where compiled for them, plain code
 * otherwise); a 32x32 -> 64-bit product is a 64-bit lane multiply of the
 * even and the odd words. */
#define LANES 16
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u
#define LOW32 UINT64_C(0xffffffff)

typedef uint32_t u32v __attribute__((vector_size(4 * LANES)));
typedef uint64_t u64v __attribute__((vector_size(4 * LANES)));

/* hi and lo words of each lane's x * m (little-endian lanes). */
#define MULHILO(x, m, hi, lo)                                                   \
  do {                                                                          \
    u64v w_ = (u64v)(x), m_ = (u64v){0} + (uint64_t)(m);                        \
    u64v even_ = (w_ & LOW32) * m_, odd_ = (w_ >> 32) * m_;                     \
    (lo) = (u32v)((even_ & LOW32) | (odd_ << 32));                              \
    (hi) = (u32v)((even_ >> 32) | (odd_ & ~LOW32));                             \
  } while (0)

static void philox_lanes(uint64_t seed, uint32_t stream, uint64_t counter, u32v *word0) {
  _Static_assert(LANES == 16, "iota below has 16 lanes");
  const u32v iota = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  uint32_t lo = (uint32_t)counter, hi = (uint32_t)(counter >> 32);
  u32v c0 = lo + iota, c2 = (u32v){0} + stream, c3 = (u32v){0};
  u32v c1 = hi - (u32v)(c0 < lo); /* carry into the high word where the low one wrapped */
  uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
  for (int round = 0; round < 10; round++) {
    u32v hi0, lo0, hi1, lo1;
    MULHILO(c0, PHILOX_M0, hi0, lo0);
    MULHILO(c2, PHILOX_M1, hi1, lo1);
    c0 = hi1 ^ c1 ^ k0, c2 = hi0 ^ c3 ^ k1;
    c1 = lo1, c3 = lo0;
    k0 += PHILOX_W0, k1 += PHILOX_W1;
  }
  *word0 = c0;
}

/* Inverted dropout: kept values are scaled by 1 / (1 - rate); outside
 * training (or at rate 0) a copy. u = (r >> 8) / 2^24 is exact in float,
 * so the comparison with the rate is the reference's. The draws of a chunk
 * are made first, LANES at a time, and the row's expression then runs as
 * one plain loop, which the compiler vectorises (a select per vector). */
enum { DRAW_CHUNK = 16 * LANES };

static void dropout_range(const nnc_cpu_args *x, int64_t begin, int64_t end) {
  const float *in = x->k.in[0];
  float *out = x->k.out;
  float rate = x->k.n->attrs.rate, scale = 1.0f / (1.0f - rate);
  if (!x->k.opts || !x->k.opts->training || rate == 0.0f) {
    memcpy(out + begin, in + begin, sizeof(float) * (size_t)(end - begin));
    return;
  }
  typedef float f32v __attribute__((vector_size(4 * LANES)));
  typedef int32_t i32v __attribute__((vector_size(4 * LANES)));
  uint64_t base = nnc_dropout_counter(x->k.opts, x->k.n) + (uint64_t)x->first;
  uint32_t stream = (uint32_t)x->k.n->attrs.stream;
  float draw[DRAW_CHUNK];
  for (int64_t i0 = begin; i0 < end; i0 += DRAW_CHUNK) {
    int64_t n = end - i0 < DRAW_CHUNK ? end - i0 : DRAW_CHUNK;
    for (int64_t i = 0; i < n; i += LANES) {
      u32v r;
      philox_lanes(x->k.opts->seed, stream, base + (uint64_t)(i0 + i), &r);
      f32v u = __builtin_convertvector((i32v)(r >> 8), f32v) * (1.0f / 16777216.0f);
      memcpy(draw + i, &u, sizeof u);
    }
    const float *restrict src = in + i0;
    float *restrict dst = out + i0;
    for (int64_t i = 0; i < n; i++) dst[i] = nnc_pw_dropout(src[i], draw[i], rate, scale);
  }
}

/* Philox is compute-bound: finer chunks than the memory-bound ops, whole blocks of lanes. */
static void run_dropout(const nnc_cpu_args *x) {
  int64_t count = nnc_node_numel(x->k.n);
  map_task t = {x, dropout_range};
  nnc_cpu_parallel(count, (nnc_cpu_grain(count, 2, GRAIN / 8) + LANES - 1) / LANES * LANES, map_chunk, &t);
}

const nnc_cpu_kernel nnc_cpu_dropout = {.run = run_dropout, .range = dropout_range};

/* ---- softmax and the logits cross-entropy --------------------------------------- */

/* Shifted by the row maximum so exp cannot overflow; the sum in double as
 * in the reference. */
void nnc_cpu_softmax_rows(const float *x, float *y, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    float *yr = y + r * cols, top = xr[0];
    for (int64_t j = 1; j < cols; j++) top = xr[j] > top ? xr[j] : top;
    double sum = 0;
    for (int64_t j = 0; j < cols; j++) sum += (yr[j] = expf(xr[j] - top));
    float inv = (float)(1.0 / sum);
    for (int64_t j = 0; j < cols; j++) yr[j] *= inv;
  }
}

static int64_t last_axis(const nnc_node *n) { return n->shape[n->rank - 1]; }

static void softmax_range(const nnc_cpu_args *x, int64_t begin, int64_t end) {
  int64_t c = last_axis(x->k.n);
  nnc_cpu_softmax_rows((const float *)x->k.in[0] + begin * c, (float *)x->k.out + begin * c, end - begin, c);
}

static void run_softmax(const nnc_cpu_args *x) {
  int64_t c = last_axis(x->k.n), rows = nnc_node_numel(x->k.n) / c;
  map_task t = {x, softmax_range};
  nnc_cpu_parallel(rows, nnc_cpu_grain(rows, 2, GRAIN / 8 / c + 1), map_chunk, &t);
}

const nnc_cpu_kernel nnc_cpu_softmax = {.run = run_softmax};

/* Row b's log-sum-exp after the shift by its maximum (returned in *top),
 * and the weight of its labels: 1 for a class index, the row sum for
 * one-hot or soft labels. */
static double row_lse(const nnc_cpu_args *x, int64_t b, int64_t width, float *top, double *label_sum) {
  const float *z = (const float *)x->k.in[0] + b * width;
  *top = z[0];
  for (int64_t j = 1; j < width; j++) *top = z[j] > *top ? z[j] : *top;
  double sum = 0;
  for (int64_t j = 0; j < width; j++) sum += exp((double)z[j] - *top);
  if (SRC(x->k.g, x->k.n, 1)->dtype == NNC_I32) {
    int32_t label = ((const int32_t *)x->k.in[1])[b];
    *label_sum = label >= 0 && label < width;
  } else {
    const float *y = (const float *)x->k.in[1] + b * width;
    *label_sum = 0;
    for (int64_t j = 0; j < width; j++) *label_sum += y[j];
  }
  return log(sum);
}

/* -log softmax(z)[label] summed over the batch, divided by it. */
static void run_xent_logits(const nnc_cpu_args *x) {
  const nnc_node *z = SRC(x->k.g, x->k.n, 0);
  int sparse = SRC(x->k.g, x->k.n, 1)->dtype == NNC_I32;
  int64_t width = last_axis(z), rows = z->shape[0];
  double total = 0;
  for (int64_t b = 0; b < rows; b++) {
    float top;
    double ysum, lse = row_lse(x, b, width, &top, &ysum);
    const float *zr = (const float *)x->k.in[0] + b * width;
    if (sparse) {
      int32_t label = ((const int32_t *)x->k.in[1])[b];
      if (label >= 0 && label < width) total -= (double)zr[label] - top - lse;
    } else {
      const float *y = (const float *)x->k.in[1] + b * width;
      for (int64_t j = 0; j < width; j++)
        if (y[j] != 0) total -= y[j] * ((double)zr[j] - top - lse);
    }
  }
  *(float *)x->k.out = (float)(total / (double)rows);
}

const nnc_cpu_kernel nnc_cpu_xent_logits = {.run = run_xent_logits};

/* (softmax(z) * sum(y) - y) / batch, row by row. */
static void xent_logits_grad_range(const nnc_cpu_args *x, int64_t begin, int64_t end) {
  const nnc_node *z = SRC(x->k.g, x->k.n, 0);
  int sparse = SRC(x->k.g, x->k.n, 1)->dtype == NNC_I32;
  int64_t width = last_axis(z), rows = z->shape[0];
  for (int64_t b = begin; b < end; b++) {
    float top;
    double ysum, lse = row_lse(x, b, width, &top, &ysum);
    const float *zr = (const float *)x->k.in[0] + b * width;
    float *out = (float *)x->k.out + b * width;
    for (int64_t j = 0; j < width; j++) {
      double p = exp((double)zr[j] - top - lse);
      double y = sparse ? ((const int32_t *)x->k.in[1])[b] == j : ((const float *)x->k.in[1])[b * width + j];
      out[j] = (float)((p * ysum - y) / (double)rows);
    }
  }
}

static void run_xent_logits_grad(const nnc_cpu_args *x) {
  int64_t width = last_axis(x->k.n), rows = nnc_node_numel(x->k.n) / width;
  map_task t = {x, xent_logits_grad_range};
  nnc_cpu_parallel(rows, nnc_cpu_grain(rows, 2, GRAIN / 8 / width + 1), map_chunk, &t);
}

const nnc_cpu_kernel nnc_cpu_xent_logits_grad = {.run = run_xent_logits_grad};

/* ---- the fused epilogue ------------------------------------------------------------ */

int nnc_cpu_epilogue_op(nnc_op op) {
  return op == NNC_OP_BIAS_ADD || op == NNC_OP_SCALE_SHIFT || op == NNC_OP_SOFTMAX ||
         nnc_pointwise[op].kind == NNC_PW_ACTIVATION || nnc_pointwise[op].kind == NNC_PW_ACTIVATION_GRAD;
}

/* prepare() builds epilogues of nnc_cpu_epilogue_op's ops only. */
static void nnc_cpu_epilogue_unknown(nnc_op op) {
  fprintf(stderr, "nnc cpu: %s has no epilogue form\n", nnc_ops[op].name);
  abort();
}

/* Row by row, every step on a row before the next row, so the row stays in
 * L1. The activation gradients read the anchor's result as dy. */
const void *nnc_cpu_operand_from(const nnc_cpu_args *a, int k, int64_t elements, int64_t first) {
  const nnc_node *operand = &a->k.g->nodes[a->k.n->src[k]];
  return nnc_node_numel(operand) == elements ? (const void *)((const float *)a->k.in[k] + first) : a->k.in[k];
}

void nnc_cpu_epilogue_apply(const nnc_cpu_epilogue *e, float *out, int64_t row0, int64_t rows, int64_t cols) {
  for (int64_t r = row0; r < row0 + rows; r++) {
    float *restrict v = out + r * cols;
    for (int s = 0; s < e->count; s++) {
      const float *restrict b = e->operand[s], *restrict y = b ? b + r * cols : NULL;
      const float alpha = e->alpha[s];
      switch (e->op[s]) {
      case NNC_OP_BIAS_ADD:
        for (int64_t j = 0; j < cols; j++) v[j] += b[j];
        break;
      case NNC_OP_SCALE_SHIFT: /* the folded inference form of batch normalization */
        for (int64_t j = 0; j < cols; j++) v[j] = v[j] * b[j] + b[cols + j];
        break;
      case NNC_OP_SOFTMAX:
        nnc_cpu_softmax_rows(v, v, 1, cols);
        break;
#define ACTIVATION(ENUM, name, GRAD, flops, ...)                               \
  case NNC_OP_##ENUM:                                                          \
    for (int64_t j = 0; j < cols; j++) v[j] = nnc_pw_##name(v[j], alpha);       \
    break;
#define ACTIVATION_GRAD(ENUM, name, flops, ...)                                             \
  case NNC_OP_##ENUM:                                                                \
    for (int64_t j = 0; j < cols; j++) v[j] = nnc_pw_##name(y[j], v[j], alpha);       \
    break;
#define POINTWISE(ENUM, name, operands, flops, ...) /* not epilogue members (nnc_cpu_epilogue_op) */
#define RANDOM(ENUM, name, ...)
#include "ir/pointwise.def"
#undef ACTIVATION
#undef ACTIVATION_GRAD
#undef POINTWISE
#undef RANDOM
      default:
        nnc_cpu_epilogue_unknown(e->op[s]);
      }
    }
  }
}
