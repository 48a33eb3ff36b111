/* The convolution ops (conv2d and both gradients) and the choice, per shape,
 * of the algorithm that runs each: im2col + GEMM (cpu_gemm.c), Winograd
 * (cpu_winograd.c, stride-1 3x3 with 16 or more channels) or direct loops
 * (cpu_direct.c). Which one is fastest depends on the channel counts, the
 * image size, the stride and the machine, in ways no threshold captures
 * (a first layer on one channel, a 30-channel layer whose GEMMs are too
 * thin for BLAS's blocking, a 256-channel one where Winograd's 16 GEMMs
 * win), so the choice is measured:
 *
 * The first time a process meets a shape (pass, window with the batch cut
 * to two images per thread, thread count) it runs every algorithm that
 * fits on it, on made-up data at that size, in four rounds of each in turn
 * (the first to warm up), and keeps the one with the best time. Choices are kept in memory, and in
 * cpu_conv.tsv in the cache directory (NNC_CACHE_DIR, else
 * $XDG_CACHE_HOME/nnc or ~/.cache/nnc) with the CPU's model and the vector
 * width the kernels were built for, so a machine measures a shape once
 * (NNC_NOCACHE, which is about compiled kernels, leaves it on: measuring in
 * every process would cost more than it could save). The measuring
 * happens when a graph is prepared (the scratch hook asks first), never
 * inside a step. NNC_CPU_CONV=gemm|winograd|direct runs that algorithm
 * wherever it fits (GEMM elsewhere), to test or compare one. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cache.h"
#include "ir/op.h"
#include "runtime/cpu/cpu.h"

#define SRC(g, n, i) (&(g)->nodes[(n)->src[i]])

/* Images per thread a measurement runs on. */
#define CALIBRATION_IMAGES 2
#define CACHE_FILE "cpu_conv.tsv"
#define MAX_CHOICES 512

static const char *const algo_names[NNC_CPU_CONV_ALGOS] = {"gemm", "winograd", "direct"};

const char *nnc_cpu_conv_algo_name(nnc_cpu_conv_algo algo) { return algo_names[algo]; }

static int fits(const nnc_options *o, nnc_cpu_conv_algo algo, const nnc_window *w) {
  return algo != NNC_CPU_CONV_WINOGRAD || (!o->no_winograd && nnc_cpu_winograd_fits(w));
}

static size_t scratch_of(nnc_cpu_conv_algo algo, nnc_cpu_conv_pass pass, const nnc_window *w) {
  switch (algo) {
  case NNC_CPU_CONV_WINOGRAD:
    return pass == NNC_CPU_CONV_GRAD_KERNEL ? nnc_cpu_winograd_grad_kernel_scratch(w)
                                            : nnc_cpu_winograd_scratch(w, pass == NNC_CPU_CONV_GRAD_INPUT);
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
    if (pass == NNC_CPU_CONV_GRAD_KERNEL) nnc_cpu_winograd_grad_kernel(w, a, b, out, args);
    else nnc_cpu_winograd(w, pass == NNC_CPU_CONV_GRAD_INPUT, a, b, out, args);
    break;
  case NNC_CPU_CONV_DIRECT:
    nnc_cpu_direct_conv(pass, w, a, b, out, args);
    break;
  default:
    nnc_cpu_gemm_conv(pass, w, a, b, out, args);
    break;
  }
}

/* ---- measured choices --------------------------------------------------------- */

/* A shape as measured and as the cache file keys it. */
typedef struct shape_key {
  char text[640];
} shape_key;

typedef struct choice {
  shape_key key;
  nnc_cpu_conv_algo algo;
} choice;

static pthread_mutex_t choices_lock = PTHREAD_MUTEX_INITIALIZER;
static choice choices[MAX_CHOICES];
static int nchoices, file_read;

/* The window a measurement runs: the batch cut to a few images per thread. */
static nnc_window measured_window(const nnc_window *w) {
  nnc_window m = *w;
  long long most = CALIBRATION_IMAGES * (long long)nnc_cpu_threads();
  if (m.batch > most) m.batch = most;
  return m;
}

/* The CPU's model name, spaces and tabs made '_', and the kernels' vector width. */
static void machine_name(char *buf, size_t size) {
  char line[256], model[128] = "unknown";
  FILE *f = fopen("/proc/cpuinfo", "r");
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
      snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
      model[strcspn(model, "\n")] = 0;
      break;
    }
  if (f) fclose(f);
  for (char *c = model; *c; c++)
    if (*c == ' ' || *c == '\t') *c = '_';
#if defined(__AVX512F__)
  const char *isa = "avx512";
#elif defined(__AVX2__)
  const char *isa = "avx2";
#else
  const char *isa = "generic";
#endif
  snprintf(buf, size, "%s/%s", model, isa);
}

static shape_key key_of(nnc_cpu_conv_pass pass, const nnc_window *w) {
  static char machine[160];
  if (!machine[0]) machine_name(machine, sizeof machine);
  nnc_window m = measured_window(w);
  shape_key k;
  snprintf(k.text, sizeof k.text, "%s\t%d\t%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld\t%d",
           machine, (int)pass, m.batch, m.ih, m.iw, m.ic, m.oh, m.ow, m.oc, m.kh, m.kw, m.sh, m.sw, m.ph, m.pw,
           nnc_cpu_threads());
  return k;
}

static const choice *find(const shape_key *k) {
  for (int i = 0; i < nchoices; i++)
    if (!strcmp(choices[i].key.text, k->text)) return &choices[i];
  return NULL;
}

static void remember(const shape_key *k, nnc_cpu_conv_algo algo) {
  if (nchoices < MAX_CHOICES) choices[nchoices++] = (choice){*k, algo};
}

/* The cache file's path, or NULL when there is no cache directory. */
static const char *file_path(const nnc_options *o, char *path, size_t size) {
  char dir[2048];
  if (!nnc_cache_dir(o, dir, sizeof dir)) return NULL;
  snprintf(path, size, "%s/%s", dir, CACHE_FILE);
  return path;
}

/* The cache file's lines: the key's three tab-separated fields and the
 * thread count, then the algorithm's name and the measured times. */
static void read_file(const nnc_options *o) {
  char path[4096], line[1024];
  FILE *f = file_path(o, path, sizeof path) ? fopen(path, "r") : NULL;
  while (f && fgets(line, sizeof line, f)) {
    line[strcspn(line, "\n")] = 0;
    char *field = line;
    for (int tabs = 0; field && tabs < 4; tabs++) field = strchr(field + 1, '\t');
    if (!field) continue;
    *field++ = 0;
    shape_key k;
    if (strlen(line) >= sizeof k.text) continue;
    memcpy(k.text, line, strlen(line) + 1);
    for (int a = 0; a < NNC_CPU_CONV_ALGOS; a++)
      if (!strncmp(field, algo_names[a], strlen(algo_names[a])) && !find(&k)) remember(&k, (nnc_cpu_conv_algo)a);
  }
  if (f) fclose(f);
}

/* Appends one line, so processes measuring other shapes at once keep theirs. */
static void append_file(const nnc_options *o, const shape_key *k, nnc_cpu_conv_algo algo, const double *seconds) {
  char path[4096];
  FILE *f = file_path(o, path, sizeof path) ? fopen(path, "a") : NULL;
  if (!f) return;
  char line[1024];
  int len = snprintf(line, sizeof line, "%s\t%s", k->text, algo_names[algo]);
  for (int a = 0; a < NNC_CPU_CONV_ALGOS && len < (int)sizeof line; a++)
    if (seconds[a] > 0)
      len += snprintf(line + len, sizeof line - (size_t)len, "\t%s=%.0fus", algo_names[a], 1e6 * seconds[a]);
  fprintf(f, "%s\n", line);
  fclose(f);
}

static void fill(float *p, size_t count) {
  uint32_t s = 12345;
  for (size_t i = 0; i < count; i++) {
    s = s * 1664525u + 1013904223u;
    p[i] = (float)(s >> 8) / (float)(1u << 24) - 0.5f;
  }
}

/* Seconds per run of each algorithm that fits (0 for the others); returns the fastest. */
static nnc_cpu_conv_algo measure(const nnc_options *o, nnc_cpu_conv_pass pass, const nnc_window *full,
                                 double *seconds) {
  nnc_window w = measured_window(full);
  size_t xs = (size_t)(w.batch * w.ih * w.iw * w.ic), ws = (size_t)(w.kh * w.kw * w.ic * w.oc);
  size_t ys = (size_t)(w.batch * w.oh * w.ow * w.oc), scratch = 0;
  for (int a = 0; a < NNC_CPU_CONV_ALGOS; a++)
    if (fits(o, (nnc_cpu_conv_algo)a, &w) && scratch_of((nnc_cpu_conv_algo)a, pass, &w) > scratch)
      scratch = scratch_of((nnc_cpu_conv_algo)a, pass, &w);
  scratch = (scratch + 15) & ~(size_t)15;
  float *x = malloc(sizeof(float) * xs), *k = malloc(sizeof(float) * ws), *y = malloc(sizeof(float) * ys);
  float *out = malloc(sizeof(float) * (xs > ys ? (xs > ws ? xs : ws) : (ys > ws ? ys : ws)));
  float *area = malloc(sizeof(float) * (scratch * (size_t)nnc_cpu_threads() + 1));
  nnc_cpu_conv_algo best = NNC_CPU_CONV_GEMM;
  memset(seconds, 0, sizeof(double) * NNC_CPU_CONV_ALGOS);
  if (x && k && y && out && area) {
    fill(x, xs), fill(k, ws), fill(y, ys);
    nnc_cpu_args args = {.scratch = area, .scratch_floats = scratch};
    const float *a = pass == NNC_CPU_CONV_GRAD_INPUT ? y : x, *b = pass == NNC_CPU_CONV_GRAD_KERNEL ? y : k;
    /* Rounds of every candidate in turn, so a burst of other work on the
     * machine slows all of them alike; round 0 warms the caches. */
    for (int al = 0; al < NNC_CPU_CONV_ALGOS; al++) seconds[al] = fits(o, (nnc_cpu_conv_algo)al, &w) ? 1e30 : 0;
    for (int round = 0; round < 4; round++)
      for (int al = 0; al < NNC_CPU_CONV_ALGOS; al++) {
        if (!fits(o, (nnc_cpu_conv_algo)al, &w)) continue;
        double start = nnc_now();
        run_algo((nnc_cpu_conv_algo)al, pass, &w, a, b, out, &args);
        double spent = nnc_now() - start;
        if (round > 0 && spent < seconds[al]) seconds[al] = spent;
      }
    for (int al = 0; al < NNC_CPU_CONV_ALGOS; al++)
      if (seconds[al] > 0 && seconds[al] < seconds[best]) best = (nnc_cpu_conv_algo)al;
  }
  free(x), free(k), free(y), free(out), free(area);
  return best;
}

static int forced(const nnc_options *o, const nnc_window *w, nnc_cpu_conv_algo *algo) {
  const char *name = o->cpu_conv;
  if (!name || !*name) return 0;
  for (int a = 0; a < NNC_CPU_CONV_ALGOS; a++)
    if (!strcmp(name, algo_names[a])) {
      *algo = fits(o, (nnc_cpu_conv_algo)a, w) ? (nnc_cpu_conv_algo)a : NNC_CPU_CONV_GEMM;
      return 1;
    }
  return 0;
}

void nnc_cpu_conv_forget(void) {
  pthread_mutex_lock(&choices_lock);
  nchoices = 0, file_read = 0;
  pthread_mutex_unlock(&choices_lock);
}

nnc_cpu_conv_algo nnc_cpu_conv_choose(const nnc_options *o, nnc_cpu_conv_pass pass, const nnc_window *w) {
  nnc_cpu_conv_algo algo;
  if (forced(o, w, &algo)) return algo;
  shape_key k = key_of(pass, w);
  pthread_mutex_lock(&choices_lock);
  if (!file_read) read_file(o);
  file_read = 1;
  const choice *c = find(&k);
  if (c) {
    algo = c->algo;
  } else {
    double seconds[NNC_CPU_CONV_ALGOS];
    algo = measure(o, pass, w, seconds);
    remember(&k, algo);
    append_file(o, &k, algo, seconds);
  }
  pthread_mutex_unlock(&choices_lock);
  return fits(o, algo, w) ? algo : NNC_CPU_CONV_GEMM;
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
