/* The convolution ops (conv2d and both gradients) and the choice, per shape,
 * of the algorithm that runs each: im2col + GEMM (cpu_gemm.c), Winograd
 * (cpu_winograd.c, F(2x2, 3x3) or F(4x4, 3x3), stride-1 3x3 with 16 or
 * more channels) or direct loops
 * (cpu_direct.c). Which one is fastest depends on the channel counts, the
 * image size, the stride and the machine, in ways no threshold captures
 * (a first layer on one channel, a 30-channel layer whose GEMMs are too
 * thin for BLAS's blocking, a 256-channel one where Winograd's 16 GEMMs
 * win), so the choice is measured:
 *
 * The first time a process meets a shape (pass, window with the batch cut
 * to four images per thread, thread count) it measures every algorithm
 * that fits on it at that size and keeps the fastest (cpu_choice.c says
 * how), in cpu_conv.tsv in the cache directory. The measuring happens when
 * a graph is prepared (the scratch hook asks first), never
 * inside a step. NNC_CPU_CONV=gemm|winograd|winograd4|direct runs that algorithm
 * wherever it fits (GEMM elsewhere), to test or compare one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/cpu/cpu.h"

#define SRC(g, n, i) (&(g)->nodes[(n)->src[i]])

/* Images per thread a measurement runs on: at two, the costs of a call
 * that do not grow with the batch (Winograd's kernel transforms and the
 * kernel gradient's sums of 16 x ic x oc) weighed enough to hide where
 * Winograd wins at a training batch. */
#define CALIBRATION_IMAGES 4
#define CACHE_FILE "cpu_conv.tsv"

static const char *const algo_names[NNC_CPU_CONV_ALGOS] = {"gemm", "winograd", "winograd4", "direct"};

const char *nnc_cpu_conv_algo_name(nnc_cpu_conv_algo algo) { return algo_names[algo]; }

/* F(4x4)'s transforms mix each output with inputs outside its window, so
 * where a window's inputs are all zero (an image's empty border after relu)
 * it leaves rounding noise of either sign, not the exact zero every other
 * algorithm gives; a relu or max pool after a forward convolution would
 * turn that noise into a different mask from the reference's. The
 * gradients' outputs are compared with nothing, so F(4x4) runs those. */
static int fits(const nnc_options *o, nnc_cpu_conv_algo algo, nnc_cpu_conv_pass pass, const nnc_window *w) {
  if (algo == NNC_CPU_CONV_WINOGRAD4 && pass == NNC_CPU_CONV_FORWARD) return 0;
  return (algo != NNC_CPU_CONV_WINOGRAD && algo != NNC_CPU_CONV_WINOGRAD4) ||
         (!o->no_winograd && nnc_cpu_winograd_fits(w));
}

static size_t scratch_of(nnc_cpu_conv_algo algo, nnc_cpu_conv_pass pass, const nnc_window *w) {
  switch (algo) {
  case NNC_CPU_CONV_WINOGRAD:
  case NNC_CPU_CONV_WINOGRAD4: {
    int m = algo == NNC_CPU_CONV_WINOGRAD ? 2 : 4;
    return pass == NNC_CPU_CONV_GRAD_KERNEL ? nnc_cpu_winograd_grad_kernel_scratch(w, m)
                                            : nnc_cpu_winograd_scratch(w, pass == NNC_CPU_CONV_GRAD_INPUT, m);
  }
  case NNC_CPU_CONV_DIRECT:
    return nnc_cpu_direct_scratch(pass, w);
  default:
    return nnc_cpu_gemm_conv_scratch(pass, w);
  }
}

static void run_algo(nnc_cpu_conv_algo algo, nnc_cpu_conv_pass pass, const nnc_window *w, const float *a,
                     const float *b, float *out, const nnc_cpu_args *args) {
  switch (algo) {
  case NNC_CPU_CONV_WINOGRAD:
  case NNC_CPU_CONV_WINOGRAD4: {
    int m = algo == NNC_CPU_CONV_WINOGRAD ? 2 : 4;
    if (pass == NNC_CPU_CONV_GRAD_KERNEL) nnc_cpu_winograd_grad_kernel(w, m, a, b, out, args);
    else nnc_cpu_winograd(w, pass == NNC_CPU_CONV_GRAD_INPUT, m, a, b, out, args);
    break;
  }
  case NNC_CPU_CONV_DIRECT:
    nnc_cpu_direct_conv(pass, w, a, b, out, args);
    break;
  default:
    nnc_cpu_gemm_conv(pass, w, a, b, out, args);
    break;
  }
}

/* ---- measured choices (cpu_choice.c) ------------------------------------------------- */

/* A shape as measured: the batch cut to a few images per thread. */
typedef struct conv_shape {
  nnc_cpu_conv_pass pass;
  nnc_window w;
} conv_shape;

static conv_shape measured_shape(nnc_cpu_conv_pass pass, const nnc_window *w) {
  conv_shape s = {pass, *w};
  long long most = CALIBRATION_IMAGES * (long long)nnc_cpu_threads();
  if (s.w.batch > most) s.w.batch = most;
  return s;
}

static int shape_fits(const nnc_options *o, int algo, const void *shape) {
  const conv_shape *s = shape;
  return fits(o, (nnc_cpu_conv_algo)algo, s->pass, &s->w);
}

/* Made-up operands, an output and scratch for every algorithm that fits. */
typedef struct conv_data {
  conv_shape s;
  float *x, *k, *y, *out, *area;
  nnc_cpu_args args;
} conv_data;

static void conv_release(void *data) {
  conv_data *d = data;
  free(d->x), free(d->k), free(d->y), free(d->out), free(d->area), free(d);
}

static void *conv_setup(const nnc_options *o, const void *shape) {
  conv_data *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->s = *(const conv_shape *)shape;
  const nnc_window *w = &d->s.w;
  size_t xs = (size_t)(w->batch * w->ih * w->iw * w->ic), ws = (size_t)(w->kh * w->kw * w->ic * w->oc);
  size_t ys = (size_t)(w->batch * w->oh * w->ow * w->oc), scratch = 0;
  for (int a = 0; a < NNC_CPU_CONV_ALGOS; a++)
    if (fits(o, (nnc_cpu_conv_algo)a, d->s.pass, w) && scratch_of((nnc_cpu_conv_algo)a, d->s.pass, w) > scratch)
      scratch = scratch_of((nnc_cpu_conv_algo)a, d->s.pass, w);
  scratch = (scratch + 15) & ~(size_t)15;
  d->x = malloc(sizeof(float) * xs), d->k = malloc(sizeof(float) * ws), d->y = malloc(sizeof(float) * ys);
  d->out = malloc(sizeof(float) * (xs > ys ? (xs > ws ? xs : ws) : (ys > ws ? ys : ws)));
  d->area = malloc(sizeof(float) * (scratch * (size_t)nnc_cpu_threads() + 1));
  if (!d->x || !d->k || !d->y || !d->out || !d->area) {
    conv_release(d);
    return NULL;
  }
  nnc_cpu_choice_fill(d->x, xs), nnc_cpu_choice_fill(d->k, ws), nnc_cpu_choice_fill(d->y, ys);
  d->args = (nnc_cpu_args){.scratch = d->area, .scratch_floats = scratch};
  return d;
}

static void conv_measured_run(void *data, int algo) {
  conv_data *d = data;
  nnc_cpu_conv_pass pass = d->s.pass;
  const float *a = pass == NNC_CPU_CONV_GRAD_INPUT ? d->y : d->x, *b = pass == NNC_CPU_CONV_GRAD_KERNEL ? d->y : d->k;
  run_algo((nnc_cpu_conv_algo)algo, pass, &d->s.w, a, b, d->out, &d->args);
}

static nnc_cpu_choices conv_memory;

const nnc_cpu_choice_kind nnc_cpu_conv_choice = {
    CACHE_FILE, NNC_CPU_CONV_ALGOS, algo_names, shape_fits, conv_setup, conv_measured_run, conv_release, &conv_memory};

nnc_cpu_conv_algo nnc_cpu_conv_choose(const nnc_options *o, nnc_cpu_conv_pass pass, const nnc_window *w) {
  conv_shape s = measured_shape(pass, w);
  char text[320];
  snprintf(text, sizeof text, "%d\t%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld", (int)pass,
           s.w.batch, s.w.ih, s.w.iw, s.w.ic, s.w.oh, s.w.ow, s.w.oc, s.w.kh, s.w.kw, s.w.sh, s.w.sw, s.w.ph, s.w.pw);
  /* A forced algorithm that does not fit the whole batch does not fit. */
  nnc_cpu_conv_algo algo = (nnc_cpu_conv_algo)nnc_cpu_choose(&nnc_cpu_conv_choice, o, o->cpu_conv, text, &s);
  return fits(o, algo, pass, w) ? algo : NNC_CPU_CONV_GEMM;
}

/* ---- the ops ------------------------------------------------------------------------ */

/* A convolution node as its forward window and its two operands. */
typedef struct conv_op {
  nnc_cpu_conv_pass pass;
  nnc_window w;
} conv_op;

static conv_op conv_op_of(const nnc_graph *g, const nnc_node *n) {
  const nnc_node *a = SRC(g, n, 0), *b = SRC(g, n, 1);
  switch (n->op) {
  case NNC_OP_CONV2D_GRAD_INPUT:
    return (conv_op){NNC_CPU_CONV_GRAD_INPUT, nnc_window_of(n, a, b->shape[0], b->shape[1], &n->attrs)};
  case NNC_OP_CONV2D_GRAD_KERNEL:
    return (conv_op){NNC_CPU_CONV_GRAD_KERNEL, nnc_window_of(a, b, n->attrs.shape[0], n->attrs.shape[1], &n->attrs)};
  default:
    return (conv_op){NNC_CPU_CONV_FORWARD, nnc_window_of(a, n, b->shape[0], b->shape[1], &n->attrs)};
  }
}

static size_t conv_scratch(const nnc_options *o, const nnc_graph *g, const nnc_node *n) {
  conv_op c = conv_op_of(g, n);
  return scratch_of(nnc_cpu_conv_choose(o, c.pass, &c.w), c.pass, &c.w);
}

static void run_conv(const nnc_cpu_args *args) {
  conv_op c = conv_op_of(args->k.g, args->k.n);
  run_algo(nnc_cpu_conv_choose(args->opts, c.pass, &c.w), c.pass, &c.w, args->k.in[0], args->k.in[1], args->k.out, args);
}

const nnc_cpu_kernel nnc_cpu_conv2d = {.run = run_conv, .scratch = conv_scratch, .anchor = 1};
const nnc_cpu_kernel nnc_cpu_conv2d_grad_input = {.run = run_conv, .scratch = conv_scratch, .anchor = 1};
const nnc_cpu_kernel nnc_cpu_conv2d_grad_kernel = {.run = run_conv, .scratch = conv_scratch};
