/* Library steps: cuBLAS and cuDNN calls in place of generated kernels for
 * the nodes --lower sends to them (see codegen/cuda_lib_step.c for what each
 * step computes and why filters are transposed).
 *
 * The real libraries are opened with dlopen on first use (libcublas.so.13,
 * libcudnn.so.9, else the unversioned names, where nnc_dl_open_cuda looks:
 * the loader's path, the toolkit, NVIDIA's pip wheels); cuda-emu uses the host
 * emulation of the same entry points. Each step's descriptors and workspace
 * size are made once, at open; one scratch buffer, the largest any step
 * needs, holds the KRSC filter and then the cuDNN workspace, and cuBLAS is
 * given a workspace of its own (cublasSetWorkspace). So a step allocates
 * nothing when it runs, and its calls, made on the handles' stream, can be
 * captured in the step's CUDA graph (runtime/cuda/cuda.c).
 *
 * Each step multiplies in the precision its node's generated GEMM would
 * (nnc_cuda_kernel.tf32, from --precision): cuBLAS in
 * CUBLAS_TF32_TENSOR_OP_MATH or CUBLAS_DEFAULT_MATH (which keeps float
 * routines in float), cuDNN in CUDNN_TENSOR_OP_MATH (TF32 for float data,
 * as PyTorch asks for it; ALLOW_CONVERSION would also let cuDNN convert
 * float data to half) or CUDNN_FMA_MATH.
 *
 * cuDNN algorithms come from its heuristics (cudnnGet*Algorithm_v7: no
 * timing runs, so a run reproduces), keeping the deterministic ones whose
 * math the step allows, then the fixed ones cuDNN 9 documents for NHWC float with KRSC filters
 * (forward IMPLICIT_GEMM, backward-data and backward-filter ALGO_1) as the
 * fallbacks; an algorithm cuDNN refuses at run time passes to the next. */
#include "runtime/cuda/cuda_lib.h"

#include <dlfcn.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/dl.h"
#include "ir/op.h"
#include "runtime/cuda/cuda_lib_api.h"

/* ---- The real libraries, opened once per process --------------------------- */

typedef struct entry {
  const char *name;
  size_t offset;
  int lib; /* 0 cuBLAS, 1 cuDNN */
} entry;

#define E(name, lib)                                                                                                   \
  { #name, offsetof(nnc_cuda_lib_api, name), lib }
static const entry entries[] = {
    E(cublasCreate_v2, 0),
    E(cublasDestroy_v2, 0),
    E(cublasSetStream_v2, 0),
    E(cublasSetMathMode, 0),
    E(cublasSetWorkspace_v2, 0),
    E(cublasGetStatusString, 0),
    E(cublasSgemm_v2, 0),
    E(cublasSgeam, 0),
    E(cudnnCreate, 1),
    E(cudnnDestroy, 1),
    E(cudnnSetStream, 1),
    E(cudnnGetErrorString, 1),
    E(cudnnCreateTensorDescriptor, 1),
    E(cudnnSetTensor4dDescriptor, 1),
    E(cudnnDestroyTensorDescriptor, 1),
    E(cudnnCreateFilterDescriptor, 1),
    E(cudnnSetFilter4dDescriptor, 1),
    E(cudnnDestroyFilterDescriptor, 1),
    E(cudnnCreateConvolutionDescriptor, 1),
    E(cudnnSetConvolution2dDescriptor, 1),
    E(cudnnSetConvolutionMathType, 1),
    E(cudnnDestroyConvolutionDescriptor, 1),
    E(cudnnGetConvolutionForwardWorkspaceSize, 1),
    E(cudnnConvolutionForward, 1),
    E(cudnnGetConvolutionBackwardDataWorkspaceSize, 1),
    E(cudnnConvolutionBackwardData, 1),
    E(cudnnGetConvolutionBackwardFilterWorkspaceSize, 1),
    E(cudnnConvolutionBackwardFilter, 1),
    E(cudnnGetConvolutionForwardAlgorithm_v7, 1),
    E(cudnnGetConvolutionBackwardDataAlgorithm_v7, 1),
    E(cudnnGetConvolutionBackwardFilterAlgorithm_v7, 1),
};
#undef E
_Static_assert(sizeof entries / sizeof entries[0] == sizeof(nnc_cuda_lib_api) / sizeof(void (*)(void)),
               "one entry per member of nnc_cuda_lib_api");

static const char *const lib_files[2][2] = {{"libcublas.so.13", "libcublas.so"}, {"libcudnn.so.9", "libcudnn.so"}};
/* What each needs by soname from its own folder: cuBLAS links cublasLt;
 * cuDNN 9 opens its parts as it needs them, in this dependency order. */
static const char *const lib_companions[2][8] = {
    {"libcublasLt.so.13"},
    {"libcudnn_graph.so.9", "libcudnn_engines_precompiled.so.9", "libcudnn_engines_runtime_compiled.so.9",
     "libcudnn_heuristic.so.9", "libcudnn_ops.so.9", "libcudnn_cnn.so.9", "libcudnn_adv.so.9"}};
static const size_t lib_ncompanions[2] = {1, 7};
static const char *const lib_titles[2] = {"cuBLAS", "cuDNN"};

static struct {
  int tried[2], ok[2];
  void *handle[2];
  char why[2][1024];
  nnc_cuda_lib_api api;
} real;

static void open_real(const nnc_options *o, int lib) {
  if (real.tried[lib]) return;
  real.tried[lib] = 1;
  char tried[400];
  real.handle[lib] = nnc_dl_open_cuda(o, lib_files[lib], 2, lib_companions[lib], lib_ncompanions[lib], tried, sizeof tried);
  if (!real.handle[lib]) {
    snprintf(real.why[lib], sizeof real.why[lib], "%s cannot be opened (no %s in %s)", lib_titles[lib],
             lib_files[lib][0], tried);
    return;
  }
  for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
    if (entries[i].lib != lib) continue;
    void *sym = dlsym(real.handle[lib], entries[i].name);
    if (!sym) {
      snprintf(real.why[lib], sizeof real.why[lib], "%s has no %s (too old?)", lib_titles[lib], entries[i].name);
      return;
    }
    memcpy((char *)&real.api + entries[i].offset, &sym, sizeof sym);
  }
  real.ok[lib] = 1;
}

int nnc_cuda_lib_available(const nnc_options *o, char *why, size_t size) {
  for (int lib = 0; lib < 2; lib++) {
    open_real(o, lib);
    if (!real.ok[lib]) {
      snprintf(why, size, "%s", real.why[lib]);
      return 0;
    }
  }
  return 1;
}

/* ---- Steps -------------------------------------------------------------------- */

enum { MAX_ALGOS = 8 };

typedef struct lib_step {
  nnc_cuda_lib_call call;
  cudnn_tensor_desc x, y;
  cudnn_filter_desc w;
  cudnn_conv_desc conv;
  size_t filter_bytes, workspace_bytes;
  /* cuDNN: the algorithms to try, in order, with their workspaces; `chosen`
   * is the one in use, moved on when cuDNN refuses it at run time */
  int algos[MAX_ALGOS], nalgos, chosen;
  size_t algo_workspace[MAX_ALGOS];
} lib_step;

struct nnc_cuda_lib {
  const nnc_graph *g;
  const nnc_cuda_program *p;
  const nnc_cuda_lib_api *api;
  cublas_handle blas;
  cudnn_handle dnn;
  lib_step *steps; /* per kernel of p */
  nnc_cuda_lib_memory memory;
  void *scratch, *blas_workspace;
};

/* cuBLAS's workspace: the size its documentation asks of a workspace set
 * for graph capture on Hopper, which covers the other GPUs' (4 MiB). Without
 * one, cuBLAS may allocate its own when called, which a capture forbids. */
#define BLAS_WORKSPACE ((size_t)32 << 20)

static const float one = 1.0f, zero = 0.0f;

/* The failing call, the node and the library's own status. */
static int lib_fail(nnc_cuda_lib *l, const char *lib, int32_t id, const char *call, const char *text, int s,
                    nnc_status *st) {
  char where[256];
  return nnc_fail(st, "%s: %s failed for %s: %s (%d)", lib, call,
                  id >= 0 ? nnc_node_where(l->g, id, where, sizeof where) : "the program",
                  text ? text : "unknown status", s);
}

static int blas_fail(nnc_cuda_lib *l, int32_t id, const char *call, cublas_status s, nnc_status *st) {
  const char *text = l->api->cublasGetStatusString ? l->api->cublasGetStatusString(s) : NULL;
  return lib_fail(l, "cuBLAS", id, call, text, (int)s, st);
}

static int dnn_fail(nnc_cuda_lib *l, int32_t id, const char *call, cudnn_status s, nnc_status *st) {
  const char *text = l->api->cudnnGetErrorString ? l->api->cudnnGetErrorString(s) : NULL;
  return lib_fail(l, "cuDNN", id, call, text, (int)s, st);
}

/* Calls entry point `name` of the table; a failure names it and node id. */
#define BLAS(l, id, st, name, ...)                                                                                     \
  do {                                                                                                                 \
    cublas_status s_ = (l)->api->name(__VA_ARGS__);                                                                    \
    if (s_ != 0) return blas_fail(l, id, #name, s_, st);                                                               \
  } while (0)
#define DNN(l, id, st, name, ...)                                                                                      \
  do {                                                                                                                 \
    cudnn_status s_ = (l)->api->name(__VA_ARGS__);                                                                     \
    if (s_ != 0) return dnn_fail(l, id, #name, s_, st);                                                                \
  } while (0)

static int fits_int(const nnc_cuda_lib_call *c) {
  const nnc_window *q = &c->q;
  long long dims[] = {c->m,
                      c->n,
                      c->k,
                      c->lda,
                      c->ldb,
                      q->batch,
                      q->ih,
                      q->iw,
                      q->ic,
                      q->oh,
                      q->ow,
                      q->oc,
                      q->kh * q->kw * q->ic,
                      q->batch * q->ih * q->iw * q->ic,
                      q->batch * q->oh * q->ow * q->oc};
  for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
    if (dims[i] > INT_MAX) return 0;
  return 1;
}

/* The workspace algorithm `algo` needs for the step's pass; cuDNN's status. */
static cudnn_status workspace(nnc_cuda_lib *l, const lib_step *s, int algo, size_t *bytes) {
  if (s->call.op == NNC_OP_CONV2D)
    return l->api->cudnnGetConvolutionForwardWorkspaceSize(l->dnn, s->x, s->w, s->conv, s->y, algo, bytes);
  if (s->call.op == NNC_OP_CONV2D_GRAD_INPUT)
    return l->api->cudnnGetConvolutionBackwardDataWorkspaceSize(l->dnn, s->w, s->y, s->conv, s->x, algo, bytes);
  return l->api->cudnnGetConvolutionBackwardFilterWorkspaceSize(l->dnn, s->x, s->y, s->conv, s->w, algo, bytes);
}

/* cuDNN's heuristics' candidates for the step's pass, best first. */
static cudnn_status heuristics(nnc_cuda_lib *l, const lib_step *s, cudnn_algo_perf *perf, int *count) {
  if (s->call.op == NNC_OP_CONV2D)
    return l->api->cudnnGetConvolutionForwardAlgorithm_v7(l->dnn, s->x, s->w, s->conv, s->y, MAX_ALGOS, count, perf);
  if (s->call.op == NNC_OP_CONV2D_GRAD_INPUT)
    return l->api->cudnnGetConvolutionBackwardDataAlgorithm_v7(l->dnn, s->w, s->y, s->conv, s->x, MAX_ALGOS, count,
                                                               perf);
  return l->api->cudnnGetConvolutionBackwardFilterAlgorithm_v7(l->dnn, s->x, s->y, s->conv, s->w, MAX_ALGOS, count,
                                                               perf);
}

/* Where the heuristics give nothing usable: the algorithms cuDNN documents
 * for NHWC float with KRSC filters, deterministic (bwd ALGO_0 uses atomics). */
static const int fixed_fwd[] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM,
                                CUDNN_CONVOLUTION_FWD_ALGO_GEMM};
static const int fixed_bwd[] = {CUDNN_CONVOLUTION_BWD_DATA_ALGO_1}; /* BWD_FILTER_ALGO_1 is 1 too */

/* Adds algo to the step's chain when cuDNN gives it a workspace size (it
 * refuses what it cannot run for these descriptors) and it is new. */
static void consider(nnc_cuda_lib *l, lib_step *s, int algo) {
  for (int i = 0; i < s->nalgos; i++)
    if (s->algos[i] == algo) return;
  size_t bytes = 0;
  if (s->nalgos == MAX_ALGOS || workspace(l, s, algo, &bytes) != 0) return;
  s->algos[s->nalgos] = algo, s->algo_workspace[s->nalgos++] = bytes;
}

/* The step's algorithms: the heuristics' candidates that succeeded, are
 * deterministic (runs reproduce) and keep to the step's math (float FMA
 * unless it is TF32), best first; then the fixed ones. The first is used; the others are the
 * fallbacks, when cuDNN refuses one at run time. */
static int choose_algorithms(nnc_cuda_lib *l, int32_t id, lib_step *s, int tf32, nnc_status *st) {
  cudnn_algo_perf perf[MAX_ALGOS];
  int count = 0;
  if (heuristics(l, s, perf, &count) != 0) count = 0;
  for (int i = 0; i < count && i < MAX_ALGOS; i++)
    if (perf[i].status == 0 && perf[i].determinism == CUDNN_DETERMINISTIC &&
        (perf[i].math_type == CUDNN_FMA_MATH || perf[i].math_type == CUDNN_DEFAULT_MATH ||
         (tf32 && perf[i].math_type == CUDNN_TENSOR_OP_MATH)))
      consider(l, s, perf[i].algo);
  int conv = s->call.op == NNC_OP_CONV2D;
  for (size_t i = 0; i < (conv ? sizeof fixed_fwd / sizeof *fixed_fwd : 1); i++)
    consider(l, s, conv ? fixed_fwd[i] : fixed_bwd[i]);
  if (s->nalgos == 0) {
    char where[256];
    return nnc_fail(st, "cuDNN: no algorithm for %s (its heuristics offered %d, none usable, and the fixed ones are refused)",
                    nnc_node_where(l->g, id, where, sizeof where), count);
  }
  for (int i = 0; i < s->nalgos; i++)
    if (s->algo_workspace[i] > s->workspace_bytes) s->workspace_bytes = s->algo_workspace[i];
  return 0;
}

/* The step's cuDNN descriptors and workspace size. */
static int describe_conv(nnc_cuda_lib *l, int32_t id, lib_step *s, int tf32, nnc_status *st) {
  const nnc_window *q = &s->call.q;
  DNN(l, id, st, cudnnCreateTensorDescriptor, &s->x);
  DNN(l, id, st, cudnnCreateTensorDescriptor, &s->y);
  DNN(l, id, st, cudnnCreateFilterDescriptor, &s->w);
  DNN(l, id, st, cudnnCreateConvolutionDescriptor, &s->conv);
  DNN(l, id, st, cudnnSetTensor4dDescriptor, s->x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, (int)q->batch, (int)q->ic,
      (int)q->ih, (int)q->iw);
  DNN(l, id, st, cudnnSetTensor4dDescriptor, s->y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, (int)q->batch, (int)q->oc,
      (int)q->oh, (int)q->ow);
  DNN(l, id, st, cudnnSetFilter4dDescriptor, s->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, (int)q->oc, (int)q->ic,
      (int)q->kh, (int)q->kw);
  DNN(l, id, st, cudnnSetConvolution2dDescriptor, s->conv, (int)q->ph, (int)q->pw, (int)q->sh, (int)q->sw, 1, 1,
      CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT);
  /* Set either way: cuDNN's default math may round float inputs to TF32. */
  DNN(l, id, st, cudnnSetConvolutionMathType, s->conv, tf32 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH);
  s->filter_bytes = ((size_t)(q->oc * q->kh * q->kw * q->ic) * sizeof(float) + 255) / 256 * 256;
  return choose_algorithms(l, id, s, tf32, st);
}

static void *host_alloc(void *ctx, size_t bytes) {
  (void)ctx;
  return malloc(bytes);
}

static void host_release(void *ctx, void *p) {
  (void)ctx;
  free(p);
}

/* Which libraries p's steps use: bit 0 cuBLAS (every cuBLAS or cuDNN step:
 * the filter transposes are cublasSgeam), bit 1 cuDNN. NCCL's steps are
 * runtime/cuda/cuda.c's (they need the run's ranks). */
static int libraries_used(const nnc_cuda_program *p) {
  int used = 0;
  for (int i = 0; i < p->count; i++)
    if (p->kernels[i].lib == NNC_LOWER_CUBLAS || p->kernels[i].lib == NNC_LOWER_CUDNN)
      used |= 1 | (p->kernels[i].lib == NNC_LOWER_CUDNN ? 2 : 0);
  return used;
}

static int open_handles(const nnc_options *o, nnc_cuda_lib *l, int used, int emulated, void *stream,
                        nnc_status *st) {
  for (int lib = 0; lib < 2; lib++) {
    if (!(used & (1 << lib)) || emulated) continue;
    open_real(o, lib);
    if (!real.ok[lib]) return nnc_fail(st, "--lower needs %s: %s", lib_titles[lib], real.why[lib]);
  }
  l->api = emulated ? nnc_cuda_lib_emulation : &real.api;
  BLAS(l, -1, st, cublasCreate_v2, &l->blas);
  BLAS(l, -1, st, cublasSetStream_v2, l->blas, (cuda_stream)stream);
  if (used & 2) {
    DNN(l, -1, st, cudnnCreate, &l->dnn);
    DNN(l, -1, st, cudnnSetStream, l->dnn, (cuda_stream)stream);
  }
  return 0;
}

static int prepare_steps(nnc_cuda_lib *l, nnc_status *st) {
  size_t scratch = 0;
  for (int i = 0; i < l->p->count; i++) {
    const nnc_cuda_kernel *k = &l->p->kernels[i];
    if (k->lib == NNC_LOWER_NNC || k->lib == NNC_LOWER_NCCL) continue;
    lib_step *s = &l->steps[i];
    nnc_cuda_lib_call_of(l->g, k->nodes[0], k->lib, &s->call);
    if (!fits_int(&s->call)) {
      char where[256];
      return nnc_fail(st, "--lower: %s is too large for %s's int sizes",
                      nnc_node_where(l->g, k->nodes[0], where, sizeof where), nnc_lower_name(k->lib));
    }
    if (k->lib == NNC_LOWER_CUDNN && describe_conv(l, k->nodes[0], s, k->tf32, st)) return -1;
    if (s->filter_bytes + s->workspace_bytes > scratch) scratch = s->filter_bytes + s->workspace_bytes;
  }
  if (scratch && !(l->scratch = l->memory.alloc(l->memory.ctx, scratch)))
    return nnc_fail(st, "--lower: cannot allocate %zu bytes of library scratch", scratch);
  if (!(l->blas_workspace = l->memory.alloc(l->memory.ctx, BLAS_WORKSPACE)))
    return nnc_fail(st, "--lower: cannot allocate cuBLAS's workspace (%zu bytes)", BLAS_WORKSPACE);
  BLAS(l, -1, st, cublasSetWorkspace_v2, l->blas, l->blas_workspace, BLAS_WORKSPACE);
  return 0;
}

nnc_cuda_lib *nnc_cuda_lib_open(const nnc_options *o, const nnc_graph *g, const nnc_cuda_program *p, int emulated,
                                void *stream, const nnc_cuda_lib_memory *memory, nnc_status *st) {
  nnc_cuda_lib *l = calloc(1, sizeof *l);
  if (l) l->steps = calloc((size_t)p->count + 1, sizeof *l->steps);
  if (!l || !l->steps) {
    if (l) free(l);
    nnc_fail(st, "out of memory");
    return NULL;
  }
  l->g = g, l->p = p;
  l->memory = memory ? *memory : (nnc_cuda_lib_memory){host_alloc, host_release, NULL};
  int used = libraries_used(p);
  if (used && (open_handles(o, l, used, emulated, stream, st) || prepare_steps(l, st))) {
    nnc_cuda_lib_close(l);
    return NULL;
  }
  return l;
}

/* The [rows x cols] row-major matrix at `from` as [cols x rows] at `to`:
 * column-major, `from` is cols x rows with leading dimension cols, and
 * `to` = from^T is rows x cols with leading dimension rows. */
static int transpose(nnc_cuda_lib *l, int32_t id, const float *from, long long rows, long long cols, float *to,
                     nnc_status *st) {
  BLAS(l, id, st, cublasSgeam, l->blas, CUBLAS_OP_T, CUBLAS_OP_N, (int)rows, (int)cols, &one, from, (int)cols, &zero,
       to, (int)rows, to, (int)rows);
  return 0;
}

int nnc_cuda_lib_run(nnc_cuda_lib *l, const nnc_cuda_kernel *k, void *const *data, nnc_status *st) {
  lib_step *s = &l->steps[k - l->p->kernels];
  const nnc_cuda_lib_call *c = &s->call;
  int32_t id = k->nodes[0];
  const nnc_node *n = &l->g->nodes[id];
  float *out = data[id];
  const float *a = data[n->src[0]], *b = data[n->src[1]];
  if (k->lib == NNC_LOWER_CUBLAS) {
    /* The handle's mode, set per step as a descriptor is: a host-side
     * setting that costs nothing on the stream. */
    BLAS(l, id, st, cublasSetMathMode, l->blas, k->tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
    /* Row-major out = op(A) op(B) is column-major out^T = op(B)^T op(A)^T. */
    BLAS(l, id, st, cublasSgemm_v2, l->blas, c->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N,
         c->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, (int)c->n, (int)c->m, (int)c->k, &one, b, (int)c->ldb, a, (int)c->lda,
         &zero, out, (int)c->n);
    return 0;
  }
  const nnc_window *q = &c->q;
  long long rsc = q->kh * q->kw * q->ic;
  float *krsc = l->scratch;
  void *ws = (char *)l->scratch + s->filter_bytes;
  if (c->op != NNC_OP_CONV2D_GRAD_KERNEL && transpose(l, id, b, rsc, q->oc, krsc, st)) return -1;
  for (;;) {
    int algo = s->algos[s->chosen];
    cudnn_status r;
    if (c->op == NNC_OP_CONV2D)
      r = l->api->cudnnConvolutionForward(l->dnn, &one, s->x, a, s->w, krsc, s->conv, algo, ws, s->workspace_bytes,
                                          &zero, s->y, out);
    else if (c->op == NNC_OP_CONV2D_GRAD_INPUT)
      r = l->api->cudnnConvolutionBackwardData(l->dnn, &one, s->w, krsc, s->y, a, s->conv, algo, ws,
                                               s->workspace_bytes, &zero, s->x, out);
    else
      r = l->api->cudnnConvolutionBackwardFilter(l->dnn, &one, s->x, a, s->y, b, s->conv, algo, ws,
                                                 s->workspace_bytes, &zero, s->w, krsc);
    if (r == 0) break;
    /* Refused (an algorithm the heuristics offer need not run everywhere):
     * the next in the chain, from now on. */
    if (r == CUDNN_STATUS_NOT_SUPPORTED && s->chosen + 1 < s->nalgos) {
      s->chosen++;
      continue;
    }
    char call[96];
    snprintf(call, sizeof call, "%s (algorithm %d)",
             c->op == NNC_OP_CONV2D               ? "cudnnConvolutionForward"
             : c->op == NNC_OP_CONV2D_GRAD_INPUT ? "cudnnConvolutionBackwardData"
                                                 : "cudnnConvolutionBackwardFilter",
             algo);
    return dnn_fail(l, id, call, r, st);
  }
  if (c->op == NNC_OP_CONV2D_GRAD_KERNEL && transpose(l, id, krsc, q->oc, rsc, out, st)) return -1;
  return 0;
}

int nnc_cuda_lib_algorithm(const nnc_cuda_lib *l, int kernel) {
  const lib_step *s = &l->steps[kernel];
  return s->nalgos ? s->algos[s->chosen] : -1;
}

void nnc_cuda_lib_close(nnc_cuda_lib *l) {
  if (!l) return;
  for (int i = 0; l->api && i < l->p->count; i++) {
    lib_step *s = &l->steps[i];
    if (s->x) l->api->cudnnDestroyTensorDescriptor(s->x);
    if (s->y) l->api->cudnnDestroyTensorDescriptor(s->y);
    if (s->w) l->api->cudnnDestroyFilterDescriptor(s->w);
    if (s->conv) l->api->cudnnDestroyConvolutionDescriptor(s->conv);
  }
  if (l->scratch) l->memory.release(l->memory.ctx, l->scratch);
  if (l->blas_workspace) l->memory.release(l->memory.ctx, l->blas_workspace);
  if (l->dnn) l->api->cudnnDestroy(l->dnn);
  if (l->blas) l->api->cublasDestroy_v2(l->blas);
  free(l->steps);
  free(l);
}
