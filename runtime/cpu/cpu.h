/* The CPU backend's insides, shared by its files:
 *   cpu_backend.c     the vtable: the arena, the schedule, fused groups, dispatch
 *   cpu_pool.c        the thread pool every kernel splits its work over
 *   cpu_choice.c      algorithms chosen per shape by measuring them, kept in a cache file
 *   cpu_conv.c        the convolution ops: which algorithm runs each shape, measured
 *   cpu_gemm.c        matmul (BLAS or cpu_blocked.c, measured), and convolution as im2col + BLAS GEMM
 *   cpu_blocked.c     matmul with few rows as register-blocked loops
 *   cpu_winograd.c    stride-1 3x3 convolution (forward and both gradients) by Winograd
 *   cpu_direct.c      convolution (forward and both gradients) as register-blocked direct loops
 *   cpu_window.c      max/avg pooling and their gradients
 *   cpu_pointwise.c   elementwise ops, bias, dropout, softmax, losses, updates
 *   cpu_norm.c        batch normalization
 *
 * Adding a specialised kernel: write an nnc_cpu_fn in the file of its family,
 * declare it below and name it in the op table of cpu_backend.c. An op
 * without an entry runs the interpreter's reference kernel, so every op works
 * and a kernel can be added one at a time. Results must agree with the
 * reference kernels (tests/cpu checks every op row). */
#ifndef NNC_CPU_H
#define NNC_CPU_H

#include "ir/op.h"
#include "runtime/backend.h"
#include "runtime/interp/interp.h"

/* ---- Thread pool (cpu_pool.c) -------------------------------------------- */

/* The most threads a pool runs. */
#define NNC_CPU_MAX_THREADS 64

/* Work on items [begin, end) as pool thread `thread` (0 is the caller). */
typedef void nnc_cpu_task(void *ctx, int64_t begin, int64_t end, int thread);

/* Starts the shared pool on first use (o->cpu_threads threads, else one
 * per online CPU) and counts a user; returns the thread count or -1. */
int nnc_cpu_pool_acquire(const nnc_options *o, nnc_status *st);
/* Drops a user; the last one stops the threads. */
void nnc_cpu_pool_release(void);
/* Threads in the pool, the caller included (1 when no pool is running). */
int nnc_cpu_threads(void);
/* Runs task over [0, n) in chunks of `grain` items, handed out in order to
 * whichever thread is free, the caller included; returns when all are done.
 * Work of one chunk or less runs on the caller alone. Tasks must not nest. */
void nnc_cpu_parallel(int64_t n, int64_t grain, nnc_cpu_task *task, void *ctx);
/* A grain that gives each thread about `per_thread` chunks of [0, n). */
int64_t nnc_cpu_grain(int64_t n, int per_thread, int64_t min_grain);

/* ---- Kernels --------------------------------------------------------------- */

/* The members of a fused group after its anchor, applied in order to each
 * finished tile of the anchor's output: whole rows of `cols` values (the
 * output's last axis), so bias and row softmax see complete rows. */
#define NNC_CPU_MAX_EPILOGUE (NNC_MAX_GROUP - 1)
typedef struct nnc_cpu_epilogue {
  int count;
  nnc_op op[NNC_CPU_MAX_EPILOGUE];
  /* bias_add: the bias vector; scale_shift: its [2, cols] table of scales
   * and shifts; an activation gradient (relu_grad, ...): the
   * activation's output y, shaped like the anchor's output, whose gradient
   * the anchor computed; otherwise NULL. */
  const float *operand[NNC_CPU_MAX_EPILOGUE];
  float alpha[NNC_CPU_MAX_EPILOGUE]; /* each member's attribute alpha (leaky_relu's slope, ...) */
  /* A member before the anchor (the dropout gradient of the pool-grad rule),
   * or NULL: an elementwise op whose result is the anchor's operand 1. The
   * anchor runs it on each part of that operand just before reading it,
   * into its own scratch, so the part is in cache and never stored. */
  const struct nnc_cpu_args *prologue;
  void (*prologue_range)(const struct nnc_cpu_args *a, int64_t begin, int64_t end);
} nnc_cpu_epilogue;

typedef struct nnc_cpu_args {
  nnc_kernel_args k;                /* the node, its operands and its output, as the reference sees them */
  const nnc_cpu_epilogue *epilogue; /* anchors only: applied to the output (count 0 for none) */
  float *scratch;                   /* nnc_cpu_threads() areas of scratch_floats each */
  size_t scratch_floats;
  /* Range kernels: element 0 of in and out is element `first` of the node's
   * value (a pointwise group runs on one block at a time); only an op whose
   * result depends on the position, dropout's mask, needs it. */
  int64_t first;
  const nnc_options *opts; /* the exec's: which convolution algorithms may run */
} nnc_cpu_args;

typedef void nnc_cpu_fn(const nnc_cpu_args *a);
/* An elementwise kernel on elements [begin, end) only. */
typedef void nnc_cpu_range_fn(const nnc_cpu_args *a, int64_t begin, int64_t end);
/* Floats of per-thread scratch a kernel needs for node n, under o. */
typedef size_t nnc_cpu_scratch_fn(const nnc_options *o, const nnc_graph *g, const nnc_node *n);

typedef struct nnc_cpu_kernel {
  nnc_cpu_fn *run;
  nnc_cpu_scratch_fn *scratch; /* optional */
  int anchor;                  /* applies a fused epilogue (conv2d, matmul, conv2d_grad_input, max_pool_grad) */
  int prologue;                /* also runs a prologue (max_pool_grad) */
  nnc_cpu_range_fn *range;     /* elementwise ops: lets a pointwise group run block by block */
} nnc_cpu_kernel;

/* Operand k of a range kernel's args, seen from element `first` on: an
 * operand of `elements` elements (the node's own count) is offset, a smaller
 * one (a scalar) is whole. */
const void *nnc_cpu_operand_from(const nnc_cpu_args *a, int k, int64_t elements, int64_t first);

/* Applies e to rows [row0, row0 + rows) of out (row stride cols), in place. */
void nnc_cpu_epilogue_apply(const nnc_cpu_epilogue *e, float *out, int64_t row0, int64_t rows, int64_t cols);
/* Whether op can be an epilogue member: how it reads the member before it. */
int nnc_cpu_epilogue_op(nnc_op op);
/* Softmax of each row of x into y (y may be x). */
void nnc_cpu_softmax_rows(const float *x, float *y, int64_t rows, int64_t cols);

/* ---- Measured choices (cpu_choice.c) ------------------------------------------ */

#define NNC_CPU_MAX_CHOICES 512
#define NNC_CPU_MAX_ALGOS 4

/* The choices one kind of op made or read in this process. */
typedef struct nnc_cpu_choices {
  int count, file_read;
  char key[NNC_CPU_MAX_CHOICES][640];
  int algo[NNC_CPU_MAX_CHOICES];
} nnc_cpu_choices;

/* A kind of op whose algorithm is measured per shape. Algorithm 0 fits
 * every shape: it runs where the chosen one does not fit. */
typedef struct nnc_cpu_choice_kind {
  const char *file; /* in the cache directory */
  int count;        /* algorithms, at most NNC_CPU_MAX_ALGOS */
  const char *const *names;
  int (*fits)(const nnc_options *o, int algo, const void *shape);
  /* Made-up operands for shape (NULL when out of memory), one run of an
   * algorithm on them, and their release. */
  void *(*setup)(const nnc_options *o, const void *shape);
  void (*run)(void *data, int algo);
  void (*release)(void *data);
  nnc_cpu_choices *memory;
} nnc_cpu_choice_kind;

/* The algorithm for shape (shape_text: two tab-separated fields naming it
 * in the cache file): the one `forced` names where it fits (algorithm 0
 * elsewhere), else the one measured fastest on this machine. */
int nnc_cpu_choose(const nnc_cpu_choice_kind *kind, const nnc_options *o, const char *forced, const char *shape_text,
                   const void *shape);
/* Forgets the choices this process made or read, so the next are read from
 * the cache file again or measured (tests). */
void nnc_cpu_choice_forget(const nnc_cpu_choice_kind *kind);
/* Made-up operand values, the same in every run. */
void nnc_cpu_choice_fill(float *p, size_t count);

/* ---- Matmul (cpu_gemm.c, cpu_blocked.c) ---------------------------------------- */

typedef enum nnc_cpu_mm_algo {
  NNC_CPU_MM_BLAS,    /* a single-threaded BLAS sgemm per thread's part: every shape */
  NNC_CPU_MM_BLOCKED, /* cpu_blocked.c: where nnc_cpu_blocked_fits */
  NNC_CPU_MM_ALGOS
} nnc_cpu_mm_algo;

/* Which matmul algorithms measured; NNC_CPU_MATMUL (o->cpu_matmul) names one. */
extern const nnc_cpu_choice_kind nnc_cpu_mm_choice;
/* The algorithm for out[m,n] = op(A)[m,k] * op(B)[k,n] under o. */
nnc_cpu_mm_algo nnc_cpu_mm_choose(const nnc_options *o, int ta, int tb, int64_t m, int64_t n, int64_t k);

/* C[m,n] = op(A) * op(B) on the calling thread, the arguments as sgemm's
 * (row-major, beta 0); any shape but both transposed. */
int nnc_cpu_blocked_fits(int ta, int tb);
void nnc_cpu_blocked_gemm(int ta, int tb, int64_t m, int64_t n, int64_t k, const float *a, int64_t lda,
                          const float *b, int64_t ldb, float *c, int64_t ldc, float *scratch);
/* Floats of the scratch it needs for rows [0, m). */
size_t nnc_cpu_blocked_scratch(int ta, int tb, int64_t m, int64_t k);

/* ---- Convolution algorithms ------------------------------------------------ */

/* The three convolution ops, each described by the forward op's window. */
typedef enum nnc_cpu_conv_pass {
  NNC_CPU_CONV_FORWARD,     /* conv2d(x, w) */
  NNC_CPU_CONV_GRAD_INPUT,  /* conv2d_grad_input(dy, w) */
  NNC_CPU_CONV_GRAD_KERNEL, /* conv2d_grad_kernel(x, dy) */
} nnc_cpu_conv_pass;

typedef enum nnc_cpu_conv_algo {
  NNC_CPU_CONV_GEMM,     /* im2col + GEMM (cpu_gemm.c): every shape */
  NNC_CPU_CONV_WINOGRAD, /* cpu_winograd.c, F(2x2, 3x3): where nnc_cpu_winograd_fits */
  NNC_CPU_CONV_WINOGRAD4, /* cpu_winograd.c, F(4x4, 3x3): the same */
  NNC_CPU_CONV_DIRECT,   /* cpu_direct.c: every shape */
  NNC_CPU_CONV_ALGOS
} nnc_cpu_conv_algo;

/* The algorithm that runs `pass` on window w: the fastest measured on this
 * machine (cpu_conv.c says how; measurements are kept in o's cache folder),
 * or the one o->cpu_conv ($NNC_CPU_CONV) names; never Winograd under
 * o->no_winograd. */
nnc_cpu_conv_algo nnc_cpu_conv_choose(const nnc_options *o, nnc_cpu_conv_pass pass, const nnc_window *w);
/* Which convolution algorithms measured. */
extern const nnc_cpu_choice_kind nnc_cpu_conv_choice;
/* Its name, as NNC_CPU_CONV spells it. */
const char *nnc_cpu_conv_algo_name(nnc_cpu_conv_algo algo);

/* Each algorithm: floats of per-thread scratch, and the op on its operands
 * in the op's order (x, w / dy, w / x, dy) into out, with a's epilogue (not
 * for the kernel gradient) and scratch. */
size_t nnc_cpu_gemm_conv_scratch(nnc_cpu_conv_pass pass, const nnc_window *w);
void nnc_cpu_gemm_conv(nnc_cpu_conv_pass pass, const nnc_window *w, const float *a, const float *b, float *out,
                       const nnc_cpu_args *args);
size_t nnc_cpu_direct_scratch(nnc_cpu_conv_pass pass, const nnc_window *w);
void nnc_cpu_direct_conv(nnc_cpu_conv_pass pass, const nnc_window *w, const float *a, const float *b, float *out,
                         const nnc_cpu_args *args);

/* ---- Winograd F(2x2, 3x3) and F(4x4, 3x3) (cpu_winograd.c) ------------------- */

/* Whether conv2d or conv2d_grad_input on window w runs by Winograd. */
int nnc_cpu_winograd_fits(const nnc_window *w);
/* Floats of per-thread scratch it needs, with m x m output tiles (2 or 4). */
size_t nnc_cpu_winograd_scratch(const nnc_window *w, int grad_input, int m);
/* conv2d (x the input) or conv2d_grad_input (x = dy) into out by F(m x m,
 * 3x3), with a's epilogue and scratch. */
void nnc_cpu_winograd(const nnc_window *w, int grad_input, int m, const float *x, const float *kernel, float *out,
                      const nnc_cpu_args *a);
/* conv2d_grad_kernel by F(3x3, m x m), m 2 or 4: dw from x and dy, with a's scratch. */
size_t nnc_cpu_winograd_grad_kernel_scratch(const nnc_window *w, int m);
void nnc_cpu_winograd_grad_kernel(const nnc_window *w, int m, const float *x, const float *dy, float *dw,
                                  const nnc_cpu_args *a);

/* The kernels of the rows of ir/pointwise.def are declared by expanding it
 * below (cpu_pointwise.c defines them); these are the others. */
#define NNC_CPU_KERNELS(X)                                                              \
  X(matmul) X(conv2d) X(conv2d_grad_input) X(conv2d_grad_kernel)                        \
  X(max_pool) X(avg_pool) X(max_pool_grad) X(avg_pool_grad)                             \
  X(bias_add) X(bias_grad) X(softmax) X(xent_logits) X(xent_logits_grad) X(reshape)     \
  X(bn_stats) X(batch_norm_train) X(batch_norm_train_grad) X(bn_gamma_grad)             \
  X(scale_shift) X(scale_shift_grad) X(allreduce)

#define X(name) extern const nnc_cpu_kernel nnc_cpu_##name;
NNC_CPU_KERNELS(X)
#undef X
#define ACTIVATION(ENUM, name, ...) extern const nnc_cpu_kernel nnc_cpu_##name;
#define ACTIVATION_GRAD(ENUM, name, ...) extern const nnc_cpu_kernel nnc_cpu_##name;
#define POINTWISE(ENUM, name, ...) extern const nnc_cpu_kernel nnc_cpu_##name;
#define RANDOM(ENUM, name, ...) extern const nnc_cpu_kernel nnc_cpu_##name;
#include "ir/pointwise.def"
#undef ACTIVATION
#undef ACTIVATION_GRAD
#undef POINTWISE
#undef RANDOM

#endif
