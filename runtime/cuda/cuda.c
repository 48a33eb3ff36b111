/* The cuda and cuda-emu backends: one implementation over a device table
 * (runtime/cuda/cuda_device.h), the CUDA driver for `cuda` and the host for
 * `cuda-emu`, so that what runs on a GPU is what the tests run here.
 *
 * A prepared graph owns one device arena for every stored value, laid out
 * by the memory plan (runtime/arena_layout.h), a second for the leaves
 * (inputs, weights, optimizer slots) and a small buffer for the run's
 * constants. A run copies in the inputs, and the weights only when the
 * model says they changed (nnc_run_opts.params_version); with keep_updates
 * the step's "update:W" outputs replace W on the device, so weights stay
 * there from step to step and the model fetches them only when it needs
 * them on the host. A pointwise update kernel after which nothing reads W
 * writes W in place (find_in_place); any other update is copied over W after
 * the step.
 *
 * From the second run on, the kernels of a run (and the update copies) are
 * captured once as a CUDA graph and replayed as one launch; NNC_CUDA_GRAPH=0
 * turns that off, and a run that times each kernel (nnc bench's profile)
 * launches them one by one. cuBLAS and cuDNN steps are captured with the
 * rest: their handles are bound to the stream and their scratch allocated
 * when the program is prepared (runtime/cuda/cuda_lib.c), and the emulated
 * libraries put their work on cuda-emu's stream. A program with all-reduce
 * steps launches one by one: a bucket's wait, with the ranks' deadline, is
 * made on the host between launches.
 *
 * Library steps (cuBLAS, cuDNN) run through runtime/cuda/cuda_lib.c, on the real
 * libraries for cuda and on their host emulation for cuda-emu. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "passes/train.h"
#include "runtime/backend.h"
#include "runtime/collective.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/cuda/cuda_layout.h"
#include "runtime/cuda/cuda_lib.h"
#include "runtime/cuda/nccl.h"

struct nnc_exec {
  const nnc_cuda_device *dev;
  nnc_options opts; /* as prepared: the debug level, capture, where libraries are */
  const nnc_graph *g;
  nnc_cuda_program prog;
  nnc_arena_layout layout;
  nnc_cuda_module *module;
  void **fns; /* per kernel: the device's handle */
  nnc_cuda_stream *stream;
  nnc_cuda_lib *lib; /* the program's library steps (--lower) */
  nnc_devptr arena, leaf_arena, run_consts;
  nnc_devptr workspace; /* in the arena, after the values: the split kernels' partial results */
  int64_t *leaf_offset;     /* per node: offset in leaf_arena, or -1 */
  int32_t *update_of;       /* per param leaf: the "update:" output that replaces it, or -1 */
  void **data;              /* per node: device address, as kernel arguments take it */
  void **data_keep;         /* the same for a run that keeps its updates: an in-place update writes its param */
  unsigned char *in_place;  /* per param leaf: its update kernel writes it, so no copy follows the step */
  int last_keep;            /* whether the last run kept its updates (which addresses hold its values) */
  const void **host_leaf;   /* per leaf: the host data last copied in */
  uint64_t *leaf_version;   /* per param leaf: params_version of that copy (0: none) */
  unsigned char *kept;      /* per param leaf: the device holds a newer value than host_leaf */
  float **mirror;           /* per node: host copy of a value, made on request */
  unsigned long long *mirror_run;
  unsigned long long runs;
  nnc_cuda_capture *graph; /* the captured run */
  int graph_keeps;       /* whether it includes the update copies */
  int no_graph;          /* capture is off, or failed once */
  int last_launched;     /* the kernel launched last, for a failure found at the next wait; -1 after a replay */
};

static int64_t node_bytes(const nnc_node *n) { return nnc_node_numel(n) * (int64_t)nnc_dtype_size(n->dtype); }

static int is_leaf(const nnc_node *n) { return (nnc_ops[n->op].flags & NNC_OPF_LEAF) != 0; }

static void release(nnc_exec *e) {
  if (!e) return;
  const nnc_cuda_device *d = e->dev;
  if (e->stream) d->sync(e->stream, &(nnc_status){0});
  nnc_cuda_lib_close(e->lib);
  if (e->stream) d->stream_destroy(e->stream);
  d->graph_destroy(e->graph);
  d->unload(e->module);
  d->free(e->arena), d->free(e->leaf_arena), d->free(e->run_consts);
  for (int32_t id = 0; e->mirror && id < e->g->nnodes; id++) free(e->mirror[id]);
  nnc_cuda_program_free(&e->prog);
  nnc_arena_layout_free(&e->layout);
  free(e->fns), free(e->leaf_offset), free(e->update_of), free(e->data), free(e->host_leaf), free(e->leaf_version);
  free(e->kept), free(e->mirror), free(e->mirror_run), free(e->data_keep), free(e->in_place);
  free(e);
}

/* Each param W whose "update:W" output the train step computes. */
static void find_updates(nnc_exec *e) {
  const nnc_graph *g = e->g;
  for (int32_t id = 0; id < g->nnodes; id++) e->update_of[id] = -1;
  for (int i = 0; i < g->noutputs; i++) {
    const char *weight = nnc_output_weight(g->outputs[i].name, NNC_UPDATE_PREFIX);
    int32_t param = weight ? nnc_graph_find_leaf(g, NNC_OP_PARAM, weight) : -1;
    if (weight && param < 0) param = nnc_graph_find_leaf(g, NNC_OP_STATE, weight);
    if (param >= 0) e->update_of[param] = g->outputs[i].node;
  }
}

/* Each update that its kernel writes over its param (nnc_cuda_update_in_place). */
static void find_in_place(nnc_exec *e) {
  memcpy(e->data_keep, e->data, sizeof *e->data * (size_t)e->g->nnodes);
  for (int32_t id = 0; id < e->g->nnodes; id++) {
    int32_t u = e->update_of[id];
    if (u < 0 || !nnc_cuda_update_in_place(e->g, &e->prog, id, u)) continue;
    e->in_place[id] = 1;
    e->data_keep[u] = e->data[id];
  }
}

static int allocate(nnc_exec *e, nnc_status *st) {
  const nnc_graph *g = e->g;
  size_t n = (size_t)g->nnodes + 1;
  e->leaf_offset = malloc(sizeof *e->leaf_offset * n);
  e->update_of = malloc(sizeof *e->update_of * n);
  e->data = calloc(n, sizeof *e->data);
  e->host_leaf = calloc(n, sizeof *e->host_leaf);
  e->leaf_version = calloc(n, sizeof *e->leaf_version);
  e->kept = calloc(n, 1);
  e->mirror = calloc(n, sizeof *e->mirror);
  e->mirror_run = calloc(n, sizeof *e->mirror_run);
  e->data_keep = calloc(n, sizeof *e->data_keep);
  e->in_place = calloc(n, 1);
  if (!e->leaf_offset || !e->update_of || !e->data || !e->host_leaf || !e->leaf_version || !e->kept || !e->mirror ||
      !e->mirror_run || !e->data_keep || !e->in_place)
    return nnc_fail(st, "out of memory");
  find_updates(e);
  int64_t leaf_bytes = 0;
  for (int32_t id = 0; id < g->nnodes; id++) {
    e->leaf_offset[id] = -1;
    if (!is_leaf(&g->nodes[id])) continue;
    e->leaf_offset[id] = leaf_bytes;
    leaf_bytes += (node_bytes(&g->nodes[id]) + 255) / 256 * 256;
  }
  const nnc_cuda_device *d = e->dev;
  if (d->alloc(&e->arena, (size_t)e->layout.bytes, st) || d->alloc(&e->leaf_arena, (size_t)leaf_bytes, st) ||
      d->alloc(&e->run_consts, sizeof(nnc_cuda_run_consts), st))
    return -1;
  for (int32_t id = 0; id < g->nnodes; id++) {
    nnc_devptr p = 0;
    if (e->leaf_offset[id] >= 0) p = e->leaf_arena + (nnc_devptr)e->leaf_offset[id];
    else if (e->layout.offset[id] >= 0) p = e->arena + (nnc_devptr)e->layout.offset[id];
    e->data[id] = (void *)(uintptr_t)p;
  }
  e->workspace = e->arena + (nnc_devptr)nnc_cuda_workspace_offset(&e->layout, &e->prog);
  find_in_place(e);
  return 0;
}

/* Library scratch (transposed filters, workspaces) in device memory. */
static void *lib_alloc(void *ctx, size_t bytes) {
  const nnc_cuda_device *d = ctx;
  nnc_devptr p = 0;
  nnc_status st = {0};
  return d->alloc(&p, bytes, &st) == 0 ? (void *)(uintptr_t)p : NULL;
}

static void lib_release(void *ctx, void *p) { ((const nnc_cuda_device *)ctx)->free((nnc_devptr)(uintptr_t)p); }

static int open_lib(nnc_exec *e, nnc_status *st) {
  nnc_cuda_lib_memory memory = {lib_alloc, lib_release, (void *)e->dev};
  e->lib = nnc_cuda_lib_open(&e->opts, e->g, &e->prog, e->dev->emulated, e->dev->raw_stream(e->stream),
                             e->dev->emulated ? NULL : &memory, st);
  for (int k = 0; k < e->prog.count; k++)
    if (e->prog.kernels[k].lib == NNC_LOWER_NCCL) e->no_graph = 1;
  return e->lib ? 0 : -1;
}

static nnc_exec *prepare(const nnc_cuda_device *d, const nnc_graph *g, const nnc_options *o, nnc_status *st) {
  char why[512];
  if (d->open(o, why, sizeof why)) {
    nnc_fail(st, "%s", why);
    return NULL;
  }
  nnc_exec *e = calloc(1, sizeof *e);
  if (!e) {
    nnc_fail(st, "out of memory preparing %s", d->backend);
    return NULL;
  }
  e->dev = d, e->g = g, e->opts = *o;
  e->no_graph = o->no_cuda_graph;
  if (nnc_arena_layout_init(&e->layout, o, g, &nnc_cuda_caps, st) ||
      nnc_cuda_generate_kernels(o, d->target(o), g, e->layout.kernels, e->layout.nkernels, &e->prog, st) ||
      nnc_cuda_dump_program(o, &e->prog, g, st) || (nnc_cuda_layout_add_workspace(&e->layout, &e->prog), 0) ||
      !(e->fns = calloc((size_t)e->prog.count + 1, sizeof *e->fns)) ||
      d->load(o, &e->prog, &e->module, e->fns, st) || allocate(e, st) || d->stream_create(o, &e->stream, st) ||
      open_lib(e, st)) {
    if (!st->failed) nnc_fail(st, "out of memory preparing %s", d->backend);
    release(e);
    return NULL;
  }
  return e;
}

/* Copies in the inputs, and each param whose device copy is not the
 * version the model has (or came from other host memory). */
static int copy_leaves(nnc_exec *e, void *const *leaves, const nnc_run_opts *opts, nnc_status *st) {
  const nnc_graph *g = e->g;
  uint64_t version = opts ? opts->params_version : 0;
  for (int32_t id = 0; id < g->nnodes; id++) {
    if (e->leaf_offset[id] < 0) continue;
    const nnc_node *n = &g->nodes[id];
    if (nnc_leaf_data(n, leaves[id], st)) return -1;
    int param = nnc_op_is_weight(n->op);
    if (param && version && e->leaf_version[id] == version && e->host_leaf[id] == leaves[id]) continue;
    if (e->dev->to_device((nnc_devptr)(uintptr_t)e->data[id], leaves[id], (size_t)node_bytes(n), e->stream, st))
      return -1;
    e->host_leaf[id] = leaves[id];
    e->leaf_version[id] = param ? version : 0;
    e->kept[id] = 0;
  }
  nnc_cuda_run_consts rc = nnc_cuda_run_consts_of(opts);
  return e->dev->to_device(e->run_consts, &rc, sizeof rc, e->stream, st);
}

/* A failure of kernel k's launch or of what it ran (found at a wait),
 * naming the kernel, its launch and the node it ends with. */
static int kernel_failed(nnc_exec *e, int k, const char *what, nnc_status *st) {
  const nnc_cuda_kernel *kn = &e->prog.kernels[k];
  char where[256];
  return nnc_fail_prefix(st, "%s: %s %s <<<%u, %u>>> (for %s) failed: ", e->dev->backend, what, kn->name, kn->grid,
                         kn->block, nnc_node_where(e->g, kn->nodes[kn->nnodes - 1], where, sizeof where));
}

/* Kernel k, an allreduce between ranks. On a GPU it is NCCL on the stream,
 * waited for (with the ranks' deadline) after the last member of its run of
 * allreduces, which is its bucket (passes/allreduce.c places a bucket's
 * members together). On the host device, whose addresses are host memory,
 * it is the ranks' MPI sum that the interpreter runs (runtime/collective.h):
 * the same program and the same numbers, with MPI standing in for NCCL. */
static int run_allreduce(nnc_exec *e, int k, void **data, const nnc_run_opts *opts, nnc_status *st) {
  const nnc_cuda_kernel *kn = &e->prog.kernels[k];
  int32_t id = kn->nodes[0];
  const nnc_node *n = &e->g->nodes[id];
  void *in = data[n->src[0]], *out = data[id];
  nnc_shard *s = opts ? opts->shard : NULL;
  if (!s || s->ranks < 2)
    return e->dev->copy((nnc_devptr)(uintptr_t)out, (nnc_devptr)(uintptr_t)in, (size_t)node_bytes(n), e->stream, st);
  if (e->dev->emulated) {
    nnc_collective_member(s, e->g, n, in, out);
    nnc_collective_finish(s);
    return 0;
  }
  if (!s->nccl && !(s->nccl = nnc_nccl_open(&e->opts, s->comm, st))) return -1;
  char what[160];
  snprintf(what, sizeof what, "the all-reduce of %s", n->name ? n->name : "a gradient");
  void *stream = e->dev->raw_stream(e->stream);
  if (nnc_nccl_sum(s->nccl, in, out, nnc_node_numel(n), nnc_shard_share(s), stream, what, st)) return -1;
  s->reduce_bytes += (int64_t)node_bytes(n);
  if (k + 1 < e->prog.count && e->prog.kernels[k + 1].lib == NNC_LOWER_NCCL) return 0;
  /* The stream runs in order: the wait covers the bucket's sums and the
   * backward kernels before them, so none of it counts as overlapped. */
  double t0 = nnc_now();
  int rc = nnc_nccl_wait(s->nccl, stream, what, st);
  double waited = nnc_now() - t0;
  s->reduce_seconds += waited, s->waited_seconds += waited;
  return rc;
}

/* Kernel k; when timing, waits for it and adds its time to its last node. */
static int launch(nnc_exec *e, int k, const nnc_run_opts *opts, int keep, nnc_status *st) {
  const nnc_cuda_kernel *kn = &e->prog.kernels[k];
  void **data = keep ? e->data_keep : e->data;
  nnc_cuda_args a;
  nnc_cuda_args_fill(&a, kn, data, (void *)(uintptr_t)e->run_consts, (void *)(uintptr_t)e->workspace);
  if (e->opts.debug >= 4)
    fprintf(stderr, "%s: launch %s <<<%u, %u>>> over %lld items\n", e->dev->backend, kn->name, kn->grid, kn->block,
            (long long)kn->work);
  double *timing = opts ? opts->node_seconds : NULL;
  double t0 = timing ? nnc_now() : 0;
  if (kn->lib == NNC_LOWER_NCCL         ? run_allreduce(e, k, data, opts, st)
      : kn->lib != NNC_LOWER_NNC ? nnc_cuda_lib_run(e->lib, kn, data, st)
                                 : e->dev->launch(e->fns[k], kn, a.args, e->stream, st))
    return kernel_failed(e, k, kn->lib != NNC_LOWER_NNC ? "library step" : "launching kernel", st);
  e->last_launched = k;
  if (timing) {
    if (e->dev->sync(e->stream, st)) return kernel_failed(e, k, "kernel", st);
    timing[kn->nodes[kn->nnodes - 1]] += nnc_now() - t0;
  }
  return 0;
}

/* The step's work on the stream: every kernel, then (keep) each update
 * over its param. */
static int enqueue(nnc_exec *e, const nnc_run_opts *opts, int keep, nnc_status *st) {
  for (int k = 0; k < e->prog.count; k++)
    if (launch(e, k, opts, keep, st)) return -1;
  for (int32_t id = 0; keep && id < e->g->nnodes; id++) {
    int32_t u = e->update_of[id];
    if (u >= 0 && !e->in_place[id] && e->dev->copy((nnc_devptr)(uintptr_t)e->data[id], (nnc_devptr)(uintptr_t)e->data[u],
                               (size_t)node_bytes(&e->g->nodes[id]), e->stream, st))
      return -1;
  }
  return 0;
}

/* Captures the step as a graph; nonzero when the device cannot (st set when
 * it tried and failed, clear when it has no capture at all). */
static int capture(nnc_exec *e, int keep, nnc_status *st) {
  e->dev->graph_destroy(e->graph);
  e->graph = NULL;
  int rc = e->dev->begin_capture(e->stream, st);
  if (rc) return rc;
  nnc_cuda_capture *graph = NULL;
  rc = enqueue(e, NULL, keep, st);
  /* The capture must end even when a call failed, or the stream stays in it. */
  nnc_status end = {0};
  if (e->dev->end_capture(e->stream, &graph, &end) && !rc) rc = nnc_fail(st, "%s", end.msg);
  if (rc) {
    e->dev->graph_destroy(graph);
    return -1;
  }
  e->graph = graph, e->graph_keeps = keep;
  if (e->opts.debug >= 1)
    fprintf(stderr, "%s: captured %d kernels as one graph\n", e->dev->backend, e->prog.count);
  return 0;
}

static int run(nnc_exec *e, void *const *leaves, const nnc_run_opts *opts, nnc_status *st) {
  int keep = opts && opts->keep_updates;
  if (copy_leaves(e, leaves, opts, st)) return -1;
  int replay = !e->no_graph && !(opts && opts->node_seconds) && e->runs >= 1;
  if (replay && (!e->graph || e->graph_keeps != keep) && capture(e, keep, st)) {
    /* Replay only saves launch time: a step that cannot be captured (a
     * driver or library that refuses) runs launch by launch instead. */
    if (st->failed) fprintf(stderr, "nnc: %s: the step cannot be captured as a CUDA graph (%s); launching its %d kernels one by one\n",
                            e->dev->backend, st->msg, e->prog.count);
    st->failed = 0, st->msg[0] = 0;
    replay = 0, e->no_graph = 1;
  }
  e->last_launched = -1;
  if (replay) {
    if (e->dev->replay(e->graph, e->stream, st) || e->dev->sync(e->stream, st))
      return nnc_fail_prefix(st, "%s: replaying the step's %d kernels as a CUDA graph failed "
                                 "(NNC_CUDA_GRAPH=0 CUDA_LAUNCH_BLOCKING=1 names the kernel): ",
                             e->dev->backend, e->prog.count);
  } else if (enqueue(e, opts, keep, st)) {
    return -1;
  } else if (e->dev->sync(e->stream, st)) {
    return e->last_launched >= 0 ? kernel_failed(e, e->last_launched, "the step, last kernel", st) : -1;
  }
  for (int32_t id = 0; keep && id < e->g->nnodes; id++)
    if (e->update_of[id] >= 0) e->kept[id] = 1;
  e->last_keep = keep;
  e->runs++;
  return 0;
}

/* A host copy of the value at device address p, refreshed once per run. */
static const void *mirror(nnc_exec *e, int32_t id, nnc_devptr p) {
  if (e->mirror[id] && e->mirror_run[id] == e->runs) return e->mirror[id];
  size_t bytes = (size_t)node_bytes(&e->g->nodes[id]);
  if (!e->mirror[id] && !(e->mirror[id] = malloc(bytes ? bytes : 1))) return NULL;
  nnc_status st = {0};
  if (e->dev->to_host(e->mirror[id], p, bytes, e->stream, &st) || e->dev->sync(e->stream, &st)) {
    fprintf(stderr, "nnc: %s: reading a value back failed: %s\n", e->dev->backend, st.msg);
    return NULL;
  }
  e->mirror_run[id] = e->runs;
  return e->mirror[id];
}

static const void *value(nnc_exec *e, int32_t id) {
  if (id < 0 || id >= e->g->nnodes) return NULL;
  nnc_devptr p = (nnc_devptr)(uintptr_t)(e->last_keep ? e->data_keep : e->data)[id];
  if (e->leaf_offset[id] >= 0) return e->kept[id] ? mirror(e, id, p) : e->host_leaf[id];
  return e->layout.intact[id] ? mirror(e, id, p) : NULL;
}

static int launches(const nnc_exec *e) { return nnc_cuda_program_launches(&e->prog); }

/* Kernels launched one by one (not replayed) are known by their order; a
 * split sum's first kernel computes part of the schedule kernel that its
 * second one reports. */
static int ran(const nnc_exec *e, int i, int32_t *nodes) {
  for (int k = 0; k <= e->last_launched && k < e->prog.count; k++) {
    if (e->prog.kernels[k].split == 1 || i-- > 0) continue;
    memcpy(nodes, e->prog.kernels[k].nodes, sizeof *nodes * (size_t)e->prog.kernels[k].nnodes);
    return e->prog.kernels[k].nnodes;
  }
  return 0;
}

static nnc_exec *cuda_prepare(const nnc_graph *g, const nnc_options *o, nnc_status *st) {
  return prepare(&nnc_cuda_driver_device, g, o, st);
}
const nnc_cuda_device *nnc_cuda_emu_device = &nnc_cuda_host_device;

static nnc_exec *emu_prepare(const nnc_graph *g, const nnc_options *o, nnc_status *st) {
  return prepare(nnc_cuda_emu_device, g, o, st);
}

static int64_t arena_bytes(nnc_exec *e) { return e->layout.bytes; }

int nnc_cuda_backend_tf32(const nnc_backend *b, const nnc_options *o) {
  const nnc_cuda_device *d = b == &nnc_backend_cuda ? &nnc_cuda_driver_device
                             : b == &nnc_backend_cuda_emu ? nnc_cuda_emu_device
                                                          : NULL;
  char why[512];
  nnc_status st = {0};
  int tf32 = 0;
  if (!d || d->open(o, why, sizeof why)) return 0;
  return nnc_cuda_tf32_for(o, d->target(o), &tf32, &st) == 0 && tf32;
}

const nnc_backend nnc_backend_cuda = {
    .name = "cuda",
    .prepare = cuda_prepare,
    .run = run,
    .value = value,
    .arena_bytes = arena_bytes,
    .release = release,
    .keeps_updates = 1,
    .launches = launches,
    .caps = &nnc_cuda_caps,
    .ran = ran,
};

const nnc_backend nnc_backend_cuda_emu = {
    .name = "cuda-emu",
    .prepare = emu_prepare,
    .run = run,
    .value = value,
    .arena_bytes = arena_bytes,
    .release = release,
    .keeps_updates = 1,
    .launches = launches,
    .caps = &nnc_cuda_caps,
    .ran = ran,
};
