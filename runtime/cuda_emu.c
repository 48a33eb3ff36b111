/* The cuda-emu backend: the kernels the cuda backend would launch, generated
 * by codegen/ as the same CUDA C text, compiled by the host C compiler with
 * the prelude's host definitions into one shared object per graph, loaded
 * with dlopen and run over their launch grids on the CPU. It proves the
 * generated kernels right where no GPU exists.
 *
 * Each kernel's blocks are shared out among host threads (NNC_EMU_THREADS,
 * default: the processors, at most 8), each running one block at a time, so
 * a host thread's __shared__ arrays are its block's. The threads of a block
 * run one after another, which is faithful for kernels without barriers;
 * those of a cooperative kernel each run on a stack of their own and hand
 * over at __syncthreads (the prelude's host support, codegen/cuda_prelude.c). */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codegen/cuda.h"
#include "codegen/host_cc.h"
#include "ir/op.h"
#include "runtime/backend.h"
#include "runtime/cuda_layout.h"

typedef void emu_launch_fn(void *const *args, unsigned grid, unsigned block, unsigned first, unsigned last);

struct nnc_exec {
  const nnc_graph *g;
  nnc_cuda_program prog;
  nnc_cuda_layout layout;
  void *so;
  emu_launch_fn **launch; /* per kernel */
  char *arena;
  void **data; /* per node: its address, leaves included */
  int threads;
  int debug;
};

static void emu_release(nnc_exec *e) {
  if (!e) return;
  if (e->so) dlclose(e->so);
  nnc_cuda_program_free(&e->prog);
  nnc_cuda_layout_free(&e->layout);
  free(e->launch);
  free(e->arena);
  free(e->data);
  free(e);
}

static int env_int(const char *name, int fallback) {
  const char *v = getenv(name);
  return v && *v ? atoi(v) : fallback;
}

/* Compiles every kernel of the program into one object and finds each launcher. */
static int load_kernels(nnc_exec *e, nnc_status *st) {
  const nnc_cuda_program *p = &e->prog;
  const nnc_cuda_kernel **ks = malloc(sizeof *ks * ((size_t)p->count + 1));
  if (!ks) return nnc_fail(st, "out of memory");
  for (int i = 0; i < p->count; i++) ks[i] = &p->kernels[i];
  nnc_strbuf src;
  nnc_strbuf_init(&src);
  nnc_cuda_render_unit(ks, p->count, &src);
  for (int i = 0; i < p->count; i++) nnc_cuda_render_host_launcher(ks[i], &src);
  free(ks);
  char what[64];
  snprintf(what, sizeof what, "nnc-graph-%016llx", (unsigned long long)p->graph_hash);
  nnc_host_so so;
  int rc = nnc_host_compile(what, nnc_strbuf_str(&src), &so, st);
  nnc_strbuf_free(&src);
  if (rc) return -1;
  e->so = dlopen(so.path, RTLD_NOW | RTLD_LOCAL);
  const char *why = e->so ? NULL : dlerror();
  if (!e->so) {
    nnc_fail(st, "cuda-emu cannot load %s: %s", so.path, why ? why : "unknown error");
    nnc_host_so_cleanup(&so);
    return -1;
  }
  nnc_host_so_cleanup(&so);
  e->launch = calloc((size_t)p->count + 1, sizeof *e->launch);
  if (!e->launch) return nnc_fail(st, "out of memory");
  for (int i = 0; i < p->count; i++) {
    char sym[512];
    snprintf(sym, sizeof sym, "%s_emu", p->kernels[i].name);
    *(void **)&e->launch[i] = dlsym(e->so, sym);
    if (!e->launch[i]) return nnc_fail(st, "cuda-emu: the compiled object has no %s", sym);
  }
  return 0;
}

static nnc_exec *emu_prepare(const nnc_graph *g, nnc_status *st) {
  nnc_exec *e = calloc(1, sizeof *e);
  if (!e) {
    nnc_fail(st, "out of memory preparing cuda-emu");
    return NULL;
  }
  e->g = g;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  e->threads = env_int("NNC_EMU_THREADS", cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus);
  if (e->threads < 1) e->threads = 1;
  e->debug = env_int("NNC_DEBUG", 0);
  if (nnc_cuda_generate(g, &e->prog, st) || nnc_cuda_dump_program(&e->prog, g, st) ||
      nnc_cuda_layout_init(&e->layout, g, &e->prog, st) ||
      load_kernels(e, st)) {
    emu_release(e);
    return NULL;
  }
  size_t bytes = (size_t)(e->layout.bytes ? e->layout.bytes : 64);
  e->arena = aligned_alloc(64, (bytes + 63) / 64 * 64);
  e->data = calloc((size_t)g->nnodes + 1, sizeof *e->data);
  if (!e->arena || !e->data) {
    nnc_fail(st, "out of memory for the cuda-emu arena (%zu bytes)", bytes);
    emu_release(e);
    return NULL;
  }
  memset(e->arena, 0, bytes);
  for (int32_t id = 0; id < g->nnodes; id++)
    if (e->layout.offset[id] >= 0) e->data[id] = e->arena + e->layout.offset[id];
  return e;
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
static void launch(nnc_exec *e, int k, void *const *args) {
  const nnc_cuda_kernel *kn = &e->prog.kernels[k];
  unsigned parts = (unsigned)e->threads;
  if (parts > kn->grid) parts = kn->grid;
  if (parts > 64) parts = 64;
  int64_t threads = kn->cooperative ? kn->work * kn->block : kn->work;
  if (threads < 4096) parts = 1; /* not worth a host thread */
  slice slices[64];
  pthread_t tids[64];
  int started[64] = {0};
  for (unsigned i = 0; i < parts; i++) {
    slice s = {e->launch[k], args, kn->grid, kn->block, (unsigned)((uint64_t)kn->grid * i / parts),
               (unsigned)((uint64_t)kn->grid * (i + 1) / parts)};
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

static int emu_run(nnc_exec *e, void *const *leaves, const nnc_run_opts *opts, nnc_status *st) {
  const nnc_graph *g = e->g;
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    if (!(nnc_ops[n->op].flags & NNC_OPF_LEAF)) continue;
    if (!leaves[id]) return nnc_fail(st, "%s '%s' has no data", nnc_ops[n->op].name, n->name ? n->name : "?");
    e->data[id] = leaves[id];
  }
  for (int k = 0; k < e->prog.count; k++) {
    const nnc_cuda_kernel *kn = &e->prog.kernels[k];
    nnc_cuda_args a;
    nnc_cuda_args_fill(&a, kn, e->data, opts);
    if (e->debug >= 4)
      fprintf(stderr, "cuda-emu: launch %s <<<%u, %u>>> over %lld items\n", kn->name, kn->grid, kn->block,
              (long long)kn->work);
    struct timespec t0, t1;
    if (opts && opts->node_seconds) clock_gettime(CLOCK_MONOTONIC, &t0);
    launch(e, k, a.args);
    if (opts && opts->node_seconds) {
      /* A kernel's time goes to the last node it computes, as for a fused group. */
      clock_gettime(CLOCK_MONOTONIC, &t1);
      opts->node_seconds[kn->nodes[kn->nnodes - 1]] +=
          (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    }
  }
  return 0;
}

static const void *emu_value(nnc_exec *e, int32_t id) {
  if (id < 0 || id >= e->g->nnodes) return NULL;
  if (nnc_ops[e->g->nodes[id].op].flags & NNC_OPF_LEAF) return e->data[id];
  return e->layout.intact[id] ? e->data[id] : NULL;
}

const nnc_backend nnc_backend_cuda_emu = {"cuda-emu", emu_prepare, emu_run, emu_value, emu_release};
