/* The host as an nnc_cuda_device, for the cuda-emu backend: the kernels the
 * cuda backend would launch, as the same CUDA C text, compiled by the host C
 * compiler with the prelude's host definitions into one shared object per
 * program, loaded with dlopen and run over their launch grids on the CPU.
 * Device memory is host memory; the stream runs each call as it is made;
 * a capture records the calls and a replay makes them again, with the
 * parameter values of the capture, as a CUDA graph does. The emulated
 * cuBLAS and cuDNN put their work on the same stream
 * (nnc_cuda_emu_stream_work), so library steps are captured as well.
 *
 * Each kernel's blocks are shared out among host threads (NNC_EMU_THREADS,
 * default: the processors, at most 8), each running one block at a time, so
 * a host thread's __shared__ arrays are its block's. The threads of a block
 * run one after another, which is faithful for kernels without barriers;
 * those of a cooperative kernel each run on a stack of their own and hand
 * over at __syncthreads (the prelude's host support, codegen/cuda_prelude.c). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/host_cc.h"
#include "codegen/nvrtc.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/cuda/cuda_lib_api.h"

typedef void emu_launch_fn(void *const *args, unsigned grid, unsigned block, unsigned first, unsigned last);

/* o->emu_threads, else one per CPU up to 8; at most 64. */
static int threads(const nnc_options *o) {
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  int want = o->emu_threads ? o->emu_threads : cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
  return want < 1 ? 1 : want > 64 ? 64 : want;
}

static int host_open(const nnc_options *o, char *why, size_t size) {
  nnc_status st = {0};
  if (nnc_host_cc_probe(o, &st) == 0) return 0;
  snprintf(why, size, "%s", st.msg);
  return -1;
}

static const char *host_name(void) { return "the host (cuda-emu)"; }

static const char *host_target(const nnc_options *o) { return o->arch ? o->arch : NNC_CUDA_DEFAULT_ARCH; }

struct nnc_cuda_module {
  void *so;
};

static void host_unload(nnc_cuda_module *m) {
  if (!m) return;
  if (m->so) dlclose(m->so);
  free(m);
}

static int compile_program(const nnc_options *o, const nnc_cuda_program *p, nnc_host_so *so, nnc_status *st) {
  const nnc_cuda_kernel **ks = malloc(sizeof *ks * ((size_t)p->count + 1));
  if (!ks) return nnc_fail(st, "out of memory");
  int n = 0;
  for (int i = 0; i < p->count; i++)
    if (p->kernels[i].source) ks[n++] = &p->kernels[i];
  nnc_strbuf src;
  nnc_strbuf_init(&src);
  nnc_cuda_render_unit(ks, n, &src);
  for (int i = 0; i < n; i++) nnc_cuda_render_host_launcher(ks[i], &src);
  free(ks);
  char what[64];
  snprintf(what, sizeof what, "nnc-graph-%016llx", (unsigned long long)p->graph_hash);
  int rc = nnc_host_compile(o, what, nnc_strbuf_str(&src), so, st);
  nnc_strbuf_free(&src);
  return rc;
}

/* One object for the whole program, then each kernel's launcher. */
static int host_load(const nnc_options *o, const nnc_cuda_program *p, nnc_cuda_module **out, void **fns,
                     nnc_status *st) {
  nnc_cuda_module *m = calloc(1, sizeof *m);
  if (!m) return nnc_fail(st, "out of memory");
  *out = m;
  nnc_host_so so;
  if (compile_program(o, p, &so, st)) return -1;
  m->so = dlopen(so.path, RTLD_NOW | RTLD_LOCAL);
  const char *why = m->so ? NULL : dlerror();
  if (!m->so) nnc_fail(st, "cuda-emu cannot load %s: %s", so.path, why ? why : "unknown error");
  nnc_host_so_cleanup(&so);
  if (!m->so) return -1;
  for (int i = 0; i < p->count; i++) {
    if (!p->kernels[i].source) continue;
    char sym[512];
    snprintf(sym, sizeof sym, "%s_emu", p->kernels[i].name);
    fns[i] = dlsym(m->so, sym);
    if (!fns[i]) return nnc_fail(st, "cuda-emu: the compiled object has no %s", sym);
  }
  return 0;
}

static int host_alloc(nnc_devptr *p, size_t bytes, nnc_status *st) {
  size_t size = (bytes + 63) / 64 * 64;
  void *q = aligned_alloc(64, size ? size : 64);
  if (!q) return nnc_fail(st, "cuda-emu: out of memory for %zu bytes of device memory", bytes);
  /* Fresh device memory holds garbage; NaN makes a read before a write show. */
  memset(q, 0xff, size ? size : 64);
  *p = (nnc_devptr)(uintptr_t)q;
  return 0;
}

static void host_free(nnc_devptr p) { free((void *)(uintptr_t)p); }

/* A recorded call: a launch (fn set), an emulated library's work (work
 * set, on its own copy of the arguments) or a copy between device
 * addresses. Copies from the host are not recorded: cuda.c makes them
 * outside capture. */
typedef struct call {
  void *fn;
  nnc_emu_work *work;
  void *work_args;
  const nnc_cuda_kernel *k;
  int nargs;
  void *values[NNC_CUDA_MAX_ARGS]; /* every parameter is an address (runtime/cuda/cuda_layout.h) */
  nnc_devptr dst, src;
  size_t bytes;
} call;

struct nnc_cuda_capture {
  call *calls;
  int count, cap;
};

struct nnc_cuda_stream {
  nnc_cuda_capture *capture; /* non-NULL while capturing */
  int threads;               /* host threads a launch is shared out among */
};

static int host_stream_create(const nnc_options *o, nnc_cuda_stream **s, nnc_status *st) {
  *s = calloc(1, sizeof **s);
  if (!*s) return nnc_fail(st, "out of memory");
  (*s)->threads = threads(o);
  return 0;
}

static void host_graph_destroy(nnc_cuda_capture *g) {
  if (!g) return;
  for (int i = 0; i < g->count; i++) free(g->calls[i].work_args);
  free(g->calls), free(g);
}

static void host_stream_destroy(nnc_cuda_stream *s) {
  if (s) host_graph_destroy(s->capture), free(s);
}

/* What the emulated libraries' handles are bound to: the stream itself. */
static void *host_raw_stream(nnc_cuda_stream *s) { return s; }

static int host_sync(nnc_cuda_stream *s, nnc_status *st) {
  (void)s, (void)st;
  return 0;
}

static int record(nnc_cuda_capture *g, const call *c, nnc_status *st) {
  if (g->count == g->cap) {
    int cap = g->cap ? 2 * g->cap : 64;
    call *calls = realloc(g->calls, sizeof *calls * (size_t)cap);
    if (!calls) return nnc_fail(st, "out of memory");
    g->calls = calls, g->cap = cap;
  }
  g->calls[g->count++] = *c;
  return 0;
}

int nnc_cuda_emu_stream_work(cuda_stream stream, nnc_emu_work *fn, const void *args, size_t bytes) {
  nnc_cuda_stream *s = (nnc_cuda_stream *)(void *)stream;
  if (!s || !s->capture) return fn(args);
  call c = {.work = fn, .work_args = malloc(bytes ? bytes : 1)};
  nnc_status st = {0};
  if (!c.work_args) return -1;
  memcpy(c.work_args, args, bytes);
  if (record(s->capture, &c, &st) == 0) return 0;
  free(c.work_args);
  return -1;
}

static int host_to_device(nnc_devptr dst, const void *src, size_t bytes, nnc_cuda_stream *s, nnc_status *st) {
  if (s->capture) return nnc_fail(st, "cuda-emu: a copy from the host cannot be captured");
  memcpy((void *)(uintptr_t)dst, src, bytes);
  return 0;
}

static int host_to_host(void *dst, nnc_devptr src, size_t bytes, nnc_cuda_stream *s, nnc_status *st) {
  if (s->capture) return nnc_fail(st, "cuda-emu: a copy to the host cannot be captured");
  memcpy(dst, (const void *)(uintptr_t)src, bytes);
  return 0;
}

static int host_copy(nnc_devptr dst, nnc_devptr src, size_t bytes, nnc_cuda_stream *s, nnc_status *st) {
  if (s->capture) {
    call c = {.dst = dst, .src = src, .bytes = bytes};
    return record(s->capture, &c, st);
  }
  memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, bytes);
  return 0;
}

typedef struct slice {
  emu_launch_fn *fn;
  void *const *args;
  unsigned grid, block, first, last;
} slice;

static void *run_slice(void *arg) {
  const slice *s = arg;
  s->fn(s->args, s->grid, s->block, s->first, s->last);
  return NULL;
}

/* Runs the blocks of one launch, shared out among host threads. */
static void run_blocks(const nnc_cuda_stream *s, emu_launch_fn *fn, const nnc_cuda_kernel *k, void *const *args) {
  unsigned parts = (unsigned)s->threads;
  if (parts > k->grid) parts = k->grid;
  int64_t items = k->cooperative ? k->work * k->block : k->work;
  if (items < 4096) parts = 1; /* not worth a host thread */
  slice slices[64];
  pthread_t tids[64];
  int started[64] = {0};
  for (unsigned i = 0; i < parts; i++) {
    slice s = {fn, args, k->grid, k->block, (unsigned)((uint64_t)k->grid * i / parts),
               (unsigned)((uint64_t)k->grid * (i + 1) / parts)};
    slices[i] = s;
  }
  for (unsigned i = 1; i < parts; i++) {
    started[i] = pthread_create(&tids[i], NULL, run_slice, &slices[i]) == 0;
    if (!started[i]) run_slice(&slices[i]);
  }
  run_slice(&slices[0]);
  for (unsigned i = 1; i < parts; i++)
    if (started[i]) pthread_join(tids[i], NULL);
}

static void replay_launch(const nnc_cuda_stream *s, const call *c) {
  void *args[NNC_CUDA_MAX_ARGS];
  for (int i = 0; i < c->nargs; i++) args[i] = (void *)&c->values[i];
  run_blocks(s, (emu_launch_fn *)c->fn, c->k, args);
}

static int host_launch(void *fn, const nnc_cuda_kernel *k, void **args, nnc_cuda_stream *s, nnc_status *st) {
  if (s->capture) {
    call c = {.fn = fn, .k = k, .nargs = k->nargs};
    for (int i = 0; i < k->nargs; i++) memcpy(&c.values[i], args[i], sizeof c.values[i]);
    return record(s->capture, &c, st);
  }
  run_blocks(s, (emu_launch_fn *)fn, k, args);
  return 0;
}

static int host_begin_capture(nnc_cuda_stream *s, nnc_status *st) {
  if (s->capture) return nnc_fail(st, "cuda-emu: the stream is already capturing");
  s->capture = calloc(1, sizeof *s->capture);
  return s->capture ? 0 : nnc_fail(st, "out of memory");
}

static int host_end_capture(nnc_cuda_stream *s, nnc_cuda_capture **g, nnc_status *st) {
  if (!s->capture) return nnc_fail(st, "cuda-emu: the stream is not capturing");
  *g = s->capture;
  s->capture = NULL;
  return 0;
}

static int host_replay(nnc_cuda_capture *g, nnc_cuda_stream *s, nnc_status *st) {
  if (s->capture) return nnc_fail(st, "cuda-emu: a graph cannot be replayed into a capture");
  for (int i = 0; i < g->count; i++) {
    const call *c = &g->calls[i];
    int rc = 0;
    if (c->fn) replay_launch(s, c);
    else if (c->work) rc = c->work(c->work_args);
    else memmove((void *)(uintptr_t)c->dst, (const void *)(uintptr_t)c->src, c->bytes);
    if (rc) return nnc_fail(st, "cuda-emu: a captured library call failed at replay (status %d)", rc);
  }
  return 0;
}

const nnc_cuda_device nnc_cuda_host_device = {
    .backend = "cuda-emu",
    .emulated = 1,
    .open = host_open,
    .name = host_name,
    .target = host_target,
    .load = host_load,
    .unload = host_unload,
    .alloc = host_alloc,
    .free = host_free,
    .stream_create = host_stream_create,
    .stream_destroy = host_stream_destroy,
    .raw_stream = host_raw_stream,
    .sync = host_sync,
    .to_device = host_to_device,
    .to_host = host_to_host,
    .copy = host_copy,
    .launch = host_launch,
    .begin_capture = host_begin_capture,
    .end_capture = host_end_capture,
    .replay = host_replay,
    .graph_destroy = host_graph_destroy,
};
