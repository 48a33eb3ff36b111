/* cuBLAS and cuDNN emulated on the host, for cuda-emu: each entry point that
 * library steps use, with the real signature and the documented semantics,
 * computed with plain loops (sums in double). It checks what the real
 * libraries check and that matters to nnc (formats, data types, that a
 * convolution's output descriptor has the size its geometry gives), so a
 * lowering that cuda-emu accepts makes the same calls on a GPU.
 *
 * In TF32 math (CUBLAS_TF32_TENSOR_OP_MATH; cuDNN's tensor-op math for
 * float data) the inputs of a product are rounded to TF32 first, as the
 * generated TF32 GEMMs round theirs (nnc_tf32, the same definition), and the
 * products of the rounded inputs, exact in double, are summed as before.
 *
 * cuBLAS here is column-major: element (i, j) of an m x n matrix with leading
 * dimension ld is at [i + j * ld]. cuDNN tensors are NHWC (cStride = 1),
 * filters in NHWC format are KRSC, and "convolution" is cross-correlation. */
#include <stdlib.h>
#include <string.h>

#include "codegen/prelude/tf32.c"
#include "runtime/cuda/cuda_lib_api.h"

/* ---- cuBLAS ------------------------------------------------------------------ */

struct cublas_context {
  cuda_stream stream;
  int math;
};

static cublas_status emu_cublas_create(cublas_handle *h) {
  *h = calloc(1, sizeof **h);
  return *h ? 0 : CUBLAS_STATUS_ALLOC_FAILED;
}

static cublas_status emu_cublas_destroy(cublas_handle h) {
  free(h);
  return 0;
}

static cublas_status emu_cublas_set_stream(cublas_handle h, cuda_stream s) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  h->stream = s;
  return 0;
}

static cublas_status emu_cublas_set_math(cublas_handle h, int mode) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (mode != CUBLAS_DEFAULT_MATH && mode != CUBLAS_TF32_TENSOR_OP_MATH) return CUBLAS_STATUS_INVALID_VALUE;
  h->math = mode;
  return 0;
}

/* x as a product's input under the math mode: rounded to TF32, or as it is. */
static double operand(float x, int tf32) { return tf32 ? nnc_tf32(x) : x; }

static const char *emu_cublas_string(cublas_status s) {
  return s == 0                               ? "CUBLAS_STATUS_SUCCESS"
         : s == CUBLAS_STATUS_NOT_INITIALIZED ? "CUBLAS_STATUS_NOT_INITIALIZED"
         : s == CUBLAS_STATUS_ALLOC_FAILED    ? "CUBLAS_STATUS_ALLOC_FAILED"
         : s == CUBLAS_STATUS_INVALID_VALUE   ? "CUBLAS_STATUS_INVALID_VALUE"
                                              : "CUBLAS_STATUS_UNKNOWN";
}

/* Element (i, j) of op(X), X column-major with leading dimension ld. */
static float at(const float *x, int trans, int ld, int i, int j) {
  return trans ? x[j + (size_t)i * ld] : x[i + (size_t)j * ld];
}

static int bad_op(int op) { return op != CUBLAS_OP_N && op != CUBLAS_OP_T; }

/* A cuBLAS call as its handle's stream runs it: checked at the call, its
 * work done then or at each replay of a capture. alpha and beta are read
 * at the call, as CUBLAS_POINTER_MODE_HOST has it, and so is the math mode. */
typedef struct blas_work {
  int ta, tb, m, n, k, lda, ldb, ldc, tf32;
  float alpha, beta;
  const float *A, *B;
  float *C;
} blas_work;

static cublas_status on_stream(cublas_handle h, nnc_emu_work *fn, const blas_work *w) {
  return nnc_cuda_emu_stream_work(h->stream, fn, w, sizeof *w) < 0 ? CUBLAS_STATUS_ALLOC_FAILED : 0;
}

static int gemm_work(const void *args) {
  const blas_work *w = args;
  for (int j = 0; j < w->n; j++)
    for (int i = 0; i < w->m; i++) {
      double acc = 0;
      for (int p = 0; p < w->k; p++)
        acc += operand(at(w->A, w->ta, w->lda, i, p), w->tf32) * operand(at(w->B, w->tb, w->ldb, p, j), w->tf32);
      float *c = &w->C[i + (size_t)j * w->ldc];
      *c = (float)(w->alpha * acc + (w->beta != 0.0f ? (double)w->beta * *c : 0.0));
    }
  return 0;
}

/* C = alpha op(A) op(B) + beta C, op(A) m x k, op(B) k x n. With beta 0, C is
 * not read (it may hold NaNs), as cuBLAS documents. */
static cublas_status emu_sgemm(cublas_handle h, int ta, int tb, int m, int n, int k, const float *alpha, const float *A,
                               int lda, const float *B, int ldb, const float *beta, float *C, int ldc) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bad_op(ta) || bad_op(tb) || m < 0 || n < 0 || k < 0 || lda < (ta ? (k > 1 ? k : 1) : (m > 1 ? m : 1)) ||
      ldb < (tb ? (n > 1 ? n : 1) : (k > 1 ? k : 1)) || ldc < (m > 1 ? m : 1))
    return CUBLAS_STATUS_INVALID_VALUE;
  blas_work w = {ta, tb, m, n, k, lda, ldb, ldc, h->math == CUBLAS_TF32_TENSOR_OP_MATH, *alpha, *beta, A, B, C};
  return on_stream(h, gemm_work, &w);
}

static int geam_work(const void *args) {
  const blas_work *w = args;
  for (int j = 0; j < w->n; j++)
    for (int i = 0; i < w->m; i++) {
      float b = w->beta != 0.0f ? w->beta * at(w->B, w->tb, w->ldb, i, j) : 0.0f;
      w->C[i + (size_t)j * w->ldc] = w->alpha * at(w->A, w->ta, w->lda, i, j) + b;
    }
  return 0;
}

/* C = alpha op(A) + beta op(B), all m x n; in place when C is B (transb N). */
static cublas_status emu_sgeam(cublas_handle h, int ta, int tb, int m, int n, const float *alpha, const float *A,
                               int lda, const float *beta, const float *B, int ldb, float *C, int ldc) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bad_op(ta) || bad_op(tb) || m < 0 || n < 0 || lda < (ta ? n : m) || ldb < (tb ? n : m) || ldc < m)
    return CUBLAS_STATUS_INVALID_VALUE;
  if (A == C && ta == CUBLAS_OP_T) return CUBLAS_STATUS_INVALID_VALUE; /* not an in-place form cuBLAS supports */
  blas_work w = {ta, tb, m, n, 0, lda, ldb, ldc, 0, *alpha, *beta, A, B, C};
  return on_stream(h, geam_work, &w);
}

/* cuBLAS's own workspace: the emulation needs none, and checks the call. */
static cublas_status emu_set_workspace(cublas_handle h, void *workspace, size_t bytes) {
  if (!h) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (bytes && !workspace) return CUBLAS_STATUS_INVALID_VALUE;
  return 0;
}

/* ---- cuDNN ------------------------------------------------------------------- */

struct cudnn_context {
  cuda_stream stream;
};
struct cudnn_tensor_struct {
  int set, n, c, h, w;
};
struct cudnn_filter_struct {
  int set, k, c, h, w;
};
struct cudnn_conv_struct {
  int set, pad_h, pad_w, u, v, math;
};

static cudnn_status emu_cudnn_create(cudnn_handle *h) {
  *h = calloc(1, sizeof **h);
  return *h ? 0 : CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
}

static cudnn_status emu_cudnn_destroy(cudnn_handle h) {
  free(h);
  return 0;
}

static cudnn_status emu_cudnn_set_stream(cudnn_handle h, cuda_stream s) {
  if (!h) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  h->stream = s;
  return 0;
}

static const char *emu_cudnn_string(cudnn_status s) {
  return s == 0                                     ? "CUDNN_STATUS_SUCCESS"
         : s == CUDNN_STATUS_BAD_PARAM              ? "CUDNN_STATUS_BAD_PARAM"
         : s == CUDNN_STATUS_BAD_PARAM_NULL_POINTER ? "CUDNN_STATUS_BAD_PARAM_NULL_POINTER"
         : s == CUDNN_STATUS_NOT_SUPPORTED          ? "CUDNN_STATUS_NOT_SUPPORTED"
         : s == CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED
             ? "CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED"
             : "CUDNN_STATUS_INTERNAL_ERROR";
}

/* One create/destroy pair per descriptor kind. */
#define DESCRIPTOR(kind, type)                                                                                         \
  static cudnn_status emu_create_##kind(type *d) {                                                                     \
    *d = calloc(1, sizeof **d);                                                                                        \
    return *d ? 0 : CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;                                                \
  }                                                                                                                    \
  static cudnn_status emu_destroy_##kind(type d) {                                                                     \
    free(d);                                                                                                           \
    return 0;                                                                                                          \
  }
DESCRIPTOR(tensor, cudnn_tensor_desc)
DESCRIPTOR(filter, cudnn_filter_desc)
DESCRIPTOR(conv, cudnn_conv_desc)
#undef DESCRIPTOR

/* The emulation knows NHWC float only, which is all nnc asks for. */
static cudnn_status emu_set_tensor(cudnn_tensor_desc d, int format, int type, int n, int c, int h, int w) {
  if (!d) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
  if (format != CUDNN_TENSOR_NHWC || type != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  *d = (struct cudnn_tensor_struct){1, n, c, h, w};
  return 0;
}

static cudnn_status emu_set_filter(cudnn_filter_desc d, int type, int format, int k, int c, int h, int w) {
  if (!d) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  if (k <= 0 || c <= 0 || h <= 0 || w <= 0) return CUDNN_STATUS_BAD_PARAM;
  if (format != CUDNN_TENSOR_NHWC || type != CUDNN_DATA_FLOAT) return CUDNN_STATUS_NOT_SUPPORTED;
  *d = (struct cudnn_filter_struct){1, k, c, h, w};
  return 0;
}

static cudnn_status emu_set_conv(cudnn_conv_desc d, int pad_h, int pad_w, int u, int v, int dil_h, int dil_w, int mode,
                                 int compute) {
  if (!d) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dil_h <= 0 || dil_w <= 0) return CUDNN_STATUS_BAD_PARAM;
  if (dil_h != 1 || dil_w != 1 || mode != CUDNN_CROSS_CORRELATION || compute != CUDNN_DATA_FLOAT)
    return CUDNN_STATUS_NOT_SUPPORTED;
  *d = (struct cudnn_conv_struct){1, pad_h, pad_w, u, v, 0};
  return 0;
}

/* FMA math computes in float with double sums; the others (tensor cores
 * allowed) round float inputs to TF32, as cuDNN does on sm_80 and newer, the
 * emulated target. */
static cudnn_status emu_set_math(cudnn_conv_desc d, int math) {
  if (!d) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  if (math < 0 || math > CUDNN_FMA_MATH) return CUDNN_STATUS_BAD_PARAM;
  d->math = math;
  return 0;
}

enum { FWD, BWD_DATA, BWD_FILTER };

/* The algorithms each pass runs here (the same loops whichever), and the
 * candidates its heuristics offer, best first, as cuDNN's do: some refused
 * (FFT for these shapes), some not deterministic (bwd ALGO_0, filter ALGO_3). */
static const unsigned supported[3] = {1u << 0 | 1u << 1 | 1u << 2, 1u << 0 | 1u << 1, 1u << 0 | 1u << 1};
static const cudnn_algo_perf offered[3][4] = {
    {{1, 0, 0.1f, 0, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH, {0}},
     {0, 0, 0.2f, 0, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH, {0}},
     {2, 0, 0.3f, 0, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH, {0}},
     {4, CUDNN_STATUS_NOT_SUPPORTED, -1, 0, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH, {0}}},
    {{0, 0, 0.1f, 0, CUDNN_NON_DETERMINISTIC, CUDNN_FMA_MATH, {0}},
     {1, 0, 0.2f, 0, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH, {0}}},
    {{0, 0, 0.1f, 0, CUDNN_NON_DETERMINISTIC, CUDNN_FMA_MATH, {0}},
     {3, 0, 0.2f, 0, CUDNN_NON_DETERMINISTIC, CUDNN_FMA_MATH, {0}},
     {1, 0, 0.3f, 0, CUDNN_DETERMINISTIC, CUDNN_FMA_MATH, {0}}},
};
static const int noffered[3] = {4, 2, 3};

/* The descriptors of one convolution agree: channels, batch, and the output
 * size that cudnnGetConvolution2dForwardOutputDim would give; algo < 0 is
 * not checked (heuristics). */
static cudnn_status check_conv(cudnn_handle h, const struct cudnn_tensor_struct *x, const struct cudnn_filter_struct *w,
                               const struct cudnn_conv_struct *c, const struct cudnn_tensor_struct *y, int algo,
                               int pass) {
  if (!h || !x || !w || !c || !y) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  if (!x->set || !w->set || !c->set || !y->set) return CUDNN_STATUS_BAD_PARAM;
  if (algo >= 0 && (algo > 31 || !(supported[pass] >> algo & 1))) return CUDNN_STATUS_NOT_SUPPORTED;
  int oh = (x->h + 2 * c->pad_h - w->h) / c->u + 1, ow = (x->w + 2 * c->pad_w - w->w) / c->v + 1;
  if (x->c != w->c || y->c != w->k || x->n != y->n || y->h != oh || y->w != ow) return CUDNN_STATUS_BAD_PARAM;
  return 0;
}

static cudnn_status ws_zero(size_t *bytes) {
  if (!bytes) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  *bytes = 0;
  return 0;
}

static cudnn_status emu_fwd_ws(cudnn_handle h, const cudnn_tensor_desc x, const cudnn_filter_desc w,
                               const cudnn_conv_desc c, const cudnn_tensor_desc y, int algo, size_t *bytes) {
  cudnn_status s = check_conv(h, x, w, c, y, algo, FWD);
  return s ? s : ws_zero(bytes);
}

static cudnn_status emu_bwd_data_ws(cudnn_handle h, const cudnn_filter_desc w, const cudnn_tensor_desc dy,
                                    const cudnn_conv_desc c, const cudnn_tensor_desc dx, int algo, size_t *bytes) {
  cudnn_status s = check_conv(h, dx, w, c, dy, algo, BWD_DATA);
  return s ? s : ws_zero(bytes);
}

static cudnn_status emu_bwd_filter_ws(cudnn_handle h, const cudnn_tensor_desc x, const cudnn_tensor_desc dy,
                                      const cudnn_conv_desc c, const cudnn_filter_desc dw, int algo, size_t *bytes) {
  cudnn_status s = check_conv(h, x, dw, c, dy, algo, BWD_FILTER);
  return s ? s : ws_zero(bytes);
}

/* Under a math that allows tensor cores, cuDNN's candidates say they use
 * them (and the caller must accept that math to run them). */
static cudnn_status offer(const struct cudnn_conv_struct *c, int pass, int requested, int *returned,
                          cudnn_algo_perf *perf) {
  if (!returned || !perf) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  if (requested < 1) return CUDNN_STATUS_BAD_PARAM;
  int n = requested < noffered[pass] ? requested : noffered[pass];
  memcpy(perf, offered[pass], sizeof *perf * (size_t)n);
  for (int i = 0; i < n && c->math != CUDNN_FMA_MATH; i++) perf[i].math_type = CUDNN_TENSOR_OP_MATH;
  *returned = n;
  return 0;
}

static cudnn_status emu_fwd_algos(cudnn_handle h, const cudnn_tensor_desc x, const cudnn_filter_desc w,
                                  const cudnn_conv_desc c, const cudnn_tensor_desc y, int requested, int *returned,
                                  cudnn_algo_perf *perf) {
  cudnn_status s = check_conv(h, x, w, c, y, -1, FWD);
  return s ? s : offer(c, FWD, requested, returned, perf);
}

static cudnn_status emu_bwd_data_algos(cudnn_handle h, const cudnn_filter_desc w, const cudnn_tensor_desc dy,
                                       const cudnn_conv_desc c, const cudnn_tensor_desc dx, int requested,
                                       int *returned, cudnn_algo_perf *perf) {
  cudnn_status s = check_conv(h, dx, w, c, dy, -1, BWD_DATA);
  return s ? s : offer(c, BWD_DATA, requested, returned, perf);
}

static cudnn_status emu_bwd_filter_algos(cudnn_handle h, const cudnn_tensor_desc x, const cudnn_tensor_desc dy,
                                         const cudnn_conv_desc c, const cudnn_filter_desc dw, int requested,
                                         int *returned, cudnn_algo_perf *perf) {
  cudnn_status s = check_conv(h, x, dw, c, dy, -1, BWD_FILTER);
  return s ? s : offer(c, BWD_FILTER, requested, returned, perf);
}

/* One convolution's descriptors: x, y and w are the forward pass's input,
 * output and filter, whichever of them a pass reads or writes. */
typedef struct conv_walk {
  const struct cudnn_tensor_struct *x, *y;
  const struct cudnn_filter_struct *w;
  const struct cudnn_conv_struct *c;
} conv_walk;

/* A convolution pass as the handle's stream runs it: the descriptors'
 * values, alpha and beta as they were at the call. */
typedef struct conv_work {
  struct cudnn_tensor_struct x, y;
  struct cudnn_filter_struct w;
  struct cudnn_conv_struct c;
  int pass;
  const float *xd, *wd, *yd; /* the pass's inputs; NULL for its output's */
  float *out;
  size_t count;
  float alpha, beta;
} conv_work;

/* out[i] = alpha acc[i] + beta out[i] (out not read when beta is 0). */
static void blend(float *out, const double *acc, size_t count, float a, float b) {
  for (size_t i = 0; i < count; i++) out[i] = (float)(a * acc[i] + (b != 0.0f ? (double)b * out[i] : 0.0));
}

/* The three passes over one loop nest, every (output position, filter tap)
 * pair whose input tap lies inside x (padding reads zero): forward
 * accumulates y from x and w, backward-data scatters dy into dx through w,
 * backward-filter gathers x * dy into dw. */
static void conv_pass(const conv_walk *q, int pass, const float *x, const float *w, const float *y, double *acc) {
  const int C = q->x->c, K = q->w->k, R = q->w->h, S = q->w->w;
  for (int n = 0; n < q->y->n; n++)
    for (int oy = 0; oy < q->y->h; oy++)
      for (int ox = 0; ox < q->y->w; ox++)
        for (int r = 0; r < R; r++) {
          int iy = oy * q->c->u - q->c->pad_h + r;
          if (iy < 0 || iy >= q->x->h) continue;
          for (int s = 0; s < S; s++) {
            int ix = ox * q->c->v - q->c->pad_w + s;
            if (ix < 0 || ix >= q->x->w) continue;
            size_t xi = (((size_t)n * q->x->h + iy) * q->x->w + ix) * C;
            size_t yi = (((size_t)n * q->y->h + oy) * q->y->w + ox) * K;
            for (int k = 0; k < K; k++) {
              size_t wi = (((size_t)k * R + r) * S + s) * C;
              for (int c = 0; c < C; c++) {
                if (pass == FWD)
                  acc[yi + k] += (double)x[xi + c] * w[wi + c];
                else if (pass == BWD_DATA)
                  acc[xi + c] += (double)y[yi + k] * w[wi + c];
                else
                  acc[wi + c] += (double)x[xi + c] * y[yi + k];
              }
            }
          }
        }
}

static size_t tensor_count(const struct cudnn_tensor_struct *t) { return (size_t)t->n * t->c * t->h * t->w; }

/* A pass's input as its products take it: x itself, or (TF32 math) a
 * copy rounded to TF32 in *copy, which the caller frees. */
static const float *as_operand(const conv_walk *q, const float *x, size_t count, float **copy) {
  *copy = NULL;
  if (!x || q->c->math == CUDNN_FMA_MATH) return x;
  if (!(*copy = malloc((count ? count : 1) * sizeof **copy))) return NULL;
  for (size_t i = 0; i < count; i++) (*copy)[i] = nnc_tf32(x[i]);
  return *copy;
}

static int pass_work(const void *args) {
  const conv_work *p = args;
  const conv_walk walk = {&p->x, &p->y, &p->w, &p->c}, *q = &walk;
  double *acc = calloc(p->count ? p->count : 1, sizeof *acc);
  float *copies[3];
  const float *rx = as_operand(q, p->xd, tensor_count(q->x), &copies[0]);
  const float *rw = as_operand(q, p->wd, (size_t)q->w->k * q->w->c * q->w->h * q->w->w, &copies[1]);
  const float *ry = as_operand(q, p->yd, tensor_count(q->y), &copies[2]);
  cudnn_status s = CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED;
  if (acc && !(p->xd && !rx) && !(p->wd && !rw) && !(p->yd && !ry)) {
    conv_pass(q, p->pass, rx, rw, ry, acc);
    blend(p->out, acc, p->count, p->alpha, p->beta);
    s = 0;
  }
  free(acc);
  for (int i = 0; i < 3; i++) free(copies[i]);
  return s;
}

static cudnn_status run_pass(cudnn_handle h, const conv_walk *q, int pass, const float *x, const float *w,
                             const float *y, float *out, size_t count, const void *alpha, const void *beta) {
  if (!alpha || !beta || !out) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  conv_work p = {*q->x, *q->y, *q->w, *q->c, pass, x, w, y, out, count, *(const float *)alpha, *(const float *)beta};
  int rc = nnc_cuda_emu_stream_work(h->stream, pass_work, &p, sizeof p);
  return rc < 0 ? CUDNN_STATUS_INTERNAL_ERROR_HOST_ALLOCATION_FAILED : rc;
}

static cudnn_status emu_fwd(cudnn_handle h, const void *alpha, const cudnn_tensor_desc xd, const void *x,
                            const cudnn_filter_desc wd, const void *w, const cudnn_conv_desc cd, int algo, void *ws,
                            size_t ws_bytes, const void *beta, const cudnn_tensor_desc yd, void *y) {
  (void)ws, (void)ws_bytes;
  cudnn_status s = check_conv(h, xd, wd, cd, yd, algo, FWD);
  if (s) return s;
  if (!x || !w) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  conv_walk q = {xd, yd, wd, cd};
  return run_pass(h, &q, FWD, x, w, NULL, y, tensor_count(yd), alpha, beta);
}

static cudnn_status emu_bwd_data(cudnn_handle h, const void *alpha, const cudnn_filter_desc wd, const void *w,
                                 const cudnn_tensor_desc dyd, const void *dy, const cudnn_conv_desc cd, int algo,
                                 void *ws, size_t ws_bytes, const void *beta, const cudnn_tensor_desc dxd, void *dx) {
  (void)ws, (void)ws_bytes;
  cudnn_status s = check_conv(h, dxd, wd, cd, dyd, algo, BWD_DATA);
  if (s) return s;
  if (!w || !dy) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  conv_walk q = {dxd, dyd, wd, cd};
  return run_pass(h, &q, BWD_DATA, NULL, w, dy, dx, tensor_count(dxd), alpha, beta);
}

static cudnn_status emu_bwd_filter(cudnn_handle h, const void *alpha, const cudnn_tensor_desc xd, const void *x,
                                   const cudnn_tensor_desc dyd, const void *dy, const cudnn_conv_desc cd, int algo,
                                   void *ws, size_t ws_bytes, const void *beta, const cudnn_filter_desc dwd, void *dw) {
  (void)ws, (void)ws_bytes;
  cudnn_status s = check_conv(h, xd, dwd, cd, dyd, algo, BWD_FILTER);
  if (s) return s;
  if (!x || !dy) return CUDNN_STATUS_BAD_PARAM_NULL_POINTER;
  conv_walk q = {xd, dyd, dwd, cd};
  return run_pass(h, &q, BWD_FILTER, x, NULL, dy, dw, (size_t)dwd->k * dwd->c * dwd->h * dwd->w, alpha, beta);
}

const nnc_cuda_lib_api nnc_cuda_lib_emulated = {
    .cublasCreate_v2 = emu_cublas_create,
    .cublasDestroy_v2 = emu_cublas_destroy,
    .cublasSetStream_v2 = emu_cublas_set_stream,
    .cublasSetMathMode = emu_cublas_set_math,
    .cublasSetWorkspace_v2 = emu_set_workspace,
    .cublasGetStatusString = emu_cublas_string,
    .cublasSgemm_v2 = emu_sgemm,
    .cublasSgeam = emu_sgeam,
    .cudnnCreate = emu_cudnn_create,
    .cudnnDestroy = emu_cudnn_destroy,
    .cudnnSetStream = emu_cudnn_set_stream,
    .cudnnGetErrorString = emu_cudnn_string,
    .cudnnCreateTensorDescriptor = emu_create_tensor,
    .cudnnSetTensor4dDescriptor = emu_set_tensor,
    .cudnnDestroyTensorDescriptor = emu_destroy_tensor,
    .cudnnCreateFilterDescriptor = emu_create_filter,
    .cudnnSetFilter4dDescriptor = emu_set_filter,
    .cudnnDestroyFilterDescriptor = emu_destroy_filter,
    .cudnnCreateConvolutionDescriptor = emu_create_conv,
    .cudnnSetConvolution2dDescriptor = emu_set_conv,
    .cudnnSetConvolutionMathType = emu_set_math,
    .cudnnDestroyConvolutionDescriptor = emu_destroy_conv,
    .cudnnGetConvolutionForwardWorkspaceSize = emu_fwd_ws,
    .cudnnConvolutionForward = emu_fwd,
    .cudnnGetConvolutionBackwardDataWorkspaceSize = emu_bwd_data_ws,
    .cudnnConvolutionBackwardData = emu_bwd_data,
    .cudnnGetConvolutionBackwardFilterWorkspaceSize = emu_bwd_filter_ws,
    .cudnnConvolutionBackwardFilter = emu_bwd_filter,
    .cudnnGetConvolutionForwardAlgorithm_v7 = emu_fwd_algos,
    .cudnnGetConvolutionBackwardDataAlgorithm_v7 = emu_bwd_data_algos,
    .cudnnGetConvolutionBackwardFilterAlgorithm_v7 = emu_bwd_filter_algos,
};

const nnc_cuda_lib_api *nnc_cuda_lib_emulation = &nnc_cuda_lib_emulated;
