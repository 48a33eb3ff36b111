/* The CPU backend: GEMM-based kernels on BLAS, fused epilogues and a thread
 * pool; nnc's default where there is no GPU.
 *
 * prepare() takes the schedule and the memory plan (runtime/arena_layout.h)
 * and allocates one arena, reused by every run: each value a kernel stores
 * sits at the plan's offset. The schedule's kernels (ir/graph.h) run as:
 *  - single: the node's kernel (or the reference kernel);
 *  - fused: the anchor's kernel (conv2d, matmul, conv2d_grad_input,
 *    max_pool_grad), which writes straight into the last member's bytes and
 *    applies the epilogue members, each to the one before, to each output
 *    tile; the members it keeps are not stored and value() answers NULL for
 *    them; a prologue (pool-grad's dropout) the anchor runs on each part of
 *    the operand it reads, into scratch;
 *  - blocked: every member on one block of elements before the next block;
 *    a member kept lives one block at a time in the thread's scratch;
 *  - serial: its members' kernels one after another.
 * What runs as one kernel is decided by the schedule pass from cpu_caps
 * below; nothing here decides it again. value() answers for a value until a
 * later kernel reuses its bytes. An op with no specialised kernel runs the
 * interpreter's reference kernel, so every graph the interpreter runs, this
 * backend runs.
 *
 * NNC_DEBUG=1 or more: when an exec is released, print the arena and the
 * time its steps took, summed by op over every run, to stderr (2 or more:
 * and each step's). NNC_CPU_POISON=1 fills the arena and scratch with NaN
 * before every run, so a kernel that leaves part of its output unwritten,
 * or reads a value whose bytes were reused, shows in the tests. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/arena_layout.h"
#include "runtime/collective.h"
#include "runtime/cpu/cpu.h"
#include "runtime/train/finite.h"
#include "passes/schedule.h"

/* Elements per block of a blocked kernel. */
#define BLOCK 4096

static const nnc_cpu_kernel *const kernels[NNC_OP_COUNT] = {
    [NNC_OP_MATMUL] = &nnc_cpu_matmul,
    [NNC_OP_CONV2D] = &nnc_cpu_conv2d,
    [NNC_OP_CONV2D_GRAD_INPUT] = &nnc_cpu_conv2d_grad_input,
    [NNC_OP_CONV2D_GRAD_KERNEL] = &nnc_cpu_conv2d_grad_kernel,
    [NNC_OP_MAX_POOL] = &nnc_cpu_max_pool,
    [NNC_OP_AVG_POOL] = &nnc_cpu_avg_pool,
    [NNC_OP_MAX_POOL_GRAD] = &nnc_cpu_max_pool_grad,
    [NNC_OP_AVG_POOL_GRAD] = &nnc_cpu_avg_pool_grad,
    [NNC_OP_BIAS_ADD] = &nnc_cpu_bias_add,
    [NNC_OP_BIAS_GRAD] = &nnc_cpu_bias_grad,
    [NNC_OP_SOFTMAX] = &nnc_cpu_softmax,
    [NNC_OP_XENT_LOGITS] = &nnc_cpu_xent_logits,
    [NNC_OP_XENT_LOGITS_GRAD] = &nnc_cpu_xent_logits_grad,
    [NNC_OP_RESHAPE] = &nnc_cpu_reshape,
    [NNC_OP_BN_STATS] = &nnc_cpu_bn_stats,
    [NNC_OP_BATCH_NORM_TRAIN] = &nnc_cpu_batch_norm_train,
    [NNC_OP_BATCH_NORM_TRAIN_GRAD] = &nnc_cpu_batch_norm_train_grad,
    [NNC_OP_BN_GAMMA_GRAD] = &nnc_cpu_bn_gamma_grad,
    [NNC_OP_SCALE_SHIFT] = &nnc_cpu_scale_shift,
    [NNC_OP_SCALE_SHIFT_GRAD] = &nnc_cpu_scale_shift_grad,
    [NNC_OP_ALLREDUCE] = &nnc_cpu_allreduce,
#define ACTIVATION(ENUM, name, ...) [NNC_OP_##ENUM] = &nnc_cpu_##name,
#define ACTIVATION_GRAD(ENUM, name, ...) [NNC_OP_##ENUM] = &nnc_cpu_##name,
#define POINTWISE(ENUM, name, ...) [NNC_OP_##ENUM] = &nnc_cpu_##name,
#define RANDOM(ENUM, name, ...) [NNC_OP_##ENUM] = &nnc_cpu_##name,
#include "ir/pointwise.def"
#undef ACTIVATION
#undef ACTIVATION_GRAD
#undef POINTWISE
#undef RANDOM
};

/* What the kernels above can do in a fused kernel: the schedule pass
 * (passes/schedule.c) decides from this which groups run fused, blocked or
 * serial. Epilogues apply as a chain on each finished tile. */
static unsigned cpu_op_caps(nnc_op op) {
  const nnc_cpu_kernel *k = kernels[op];
  return (k && k->anchor ? NNC_CAN_ANCHOR : 0u) | (nnc_cpu_epilogue_op(op) ? NNC_CAN_EPILOGUE : 0u) |
         (k && k->range ? NNC_CAN_PROLOGUE | NNC_CAN_BLOCK : 0u) | (k && k->prologue ? NNC_CAN_TAKE_PROLOGUE : 0u);
}

static const nnc_backend_caps cpu_caps = {"cpu", NNC_CAPS_CHAIN, cpu_op_caps};

/* One kernel of the schedule, and its time summed over runs when profiling. */
typedef struct step {
  const nnc_kernel *k;
  double seconds;
} step;

static int32_t step_anchor(const step *s) { return s->k->members[0]; }
static int32_t step_out(const step *s) { return s->k->members[s->k->n - 1]; }

struct nnc_exec {
  const nnc_graph *g;
  void **data;            /* each node's value: leaves during a run, stored nodes in the arena */
  nnc_arena_layout layout;
  unsigned char *arena;
  signed char *block_slot; /* members a blocked kernel keeps: their block in a thread's scratch, else -1 */
  step *steps;
  int nsteps;
  int ran_steps; /* in the last run */
  float *scratch;
  size_t scratch_floats; /* per thread */
  int threads;
  nnc_options opts; /* as prepared: profile (debug level), poison, the convolution choice */
  int64_t runs;
};

static void *alloc_buffer(size_t bytes) {
  void *p = NULL;
  return posix_memalign(&p, 64, bytes ? bytes : 1) ? NULL : p;
}

/* A step per kernel; the scratch the kernels ask for, and for a blocked
 * kernel BLOCK floats for each member it keeps. */
static void plan_steps(nnc_exec *e) {
  const nnc_graph *g = e->g;
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_cpu_kernel *k = kernels[g->nodes[id].op];
    size_t scratch = k && k->scratch ? k->scratch(&e->opts, g, &g->nodes[id]) : 0;
    if (scratch > e->scratch_floats) e->scratch_floats = scratch;
    e->block_slot[id] = -1;
  }
  e->nsteps = e->layout.nkernels;
  for (int i = 0; i < e->nsteps; i++) {
    const nnc_kernel *k = e->steps[i].k = &e->layout.kernels[i];
    int slots = 0;
    for (int m = 0; m < k->n && k->kind == NNC_KERNEL_BLOCKED; m++)
      if (!((k->stores >> m) & 1)) e->block_slot[k->members[m]] = (signed char)slots++;
    if ((size_t)slots * BLOCK > e->scratch_floats) e->scratch_floats = (size_t)slots * BLOCK;
  }
}

/* The arena: every stored value where the plan puts it. */
static int place_values(nnc_exec *e, nnc_status *st) {
  const nnc_graph *g = e->g;
  if (nnc_arena_layout_init(&e->layout, &e->opts, g, &cpu_caps, st)) return -1;
  if (!(e->arena = alloc_buffer((size_t)e->layout.bytes)))
    return nnc_fail(st, "out of memory for the cpu backend's %.1f MB arena", (double)e->layout.bytes / 1e6);
  for (int32_t id = 0; id < g->nnodes; id++)
    if (e->layout.offset[id] >= 0) e->data[id] = e->arena + e->layout.offset[id];
  return 0;
}

static void cpu_release(nnc_exec *e);

static nnc_exec *cpu_prepare(const nnc_graph *g, const nnc_options *o, nnc_status *st) {
  if (nnc_graph_check_concrete(g, st)) return NULL;
  nnc_exec *e = calloc(1, sizeof *e);
  if (!e) {
    nnc_fail(st, "out of memory preparing the cpu backend");
    return NULL;
  }
  e->g = g, e->opts = *o;
  e->threads = nnc_cpu_pool_acquire(o, st);
  size_t count = (size_t)g->nnodes + 1;
  e->data = calloc(count, sizeof *e->data);
  e->block_slot = calloc(count, 1);
  e->steps = calloc(count, sizeof *e->steps);
  int rc = !e->data || !e->block_slot || !e->steps || place_values(e, st);
  if (rc == 0) plan_steps(e);
  if (rc == 0 && e->scratch_floats) {
    e->scratch_floats = (e->scratch_floats + 15) & ~(size_t)15; /* each thread's area on its own cache lines */
    e->scratch = alloc_buffer(sizeof(float) * e->scratch_floats * (size_t)e->threads);
    if (!e->scratch) rc = nnc_fail(st, "out of memory for the cpu backend's scratch");
  }
  if (rc) {
    if (!st->failed) nnc_fail(st, "out of memory preparing the cpu backend");
    cpu_release(e);
    return NULL;
  }
  return e;
}

/* A node's kernel arguments, its operands and output taken from e->data. */
typedef struct bound {
  const void *in[NNC_MAX_SRC];
  nnc_cpu_args args;
} bound;

static void bind_node(nnc_exec *e, int32_t id, int32_t out, const nnc_run_opts *opts, const nnc_cpu_epilogue *ep,
                      bound *b) {
  const nnc_node *n = &e->g->nodes[id];
  for (int k = 0; k < n->nsrc; k++) b->in[k] = e->data[n->src[k]];
  b->args = (nnc_cpu_args){{e->g, n, b->in, e->data[out], opts}, ep, e->scratch, e->scratch_floats, 0, &e->opts};
}

/* What a fused kernel's anchor applies around itself: its prologue (bound
 * into *prologue) and the members after it. */
static void epilogue_of(nnc_exec *e, const nnc_kernel *k, const nnc_run_opts *opts, nnc_cpu_epilogue *ep, bound *prologue) {
  if (k->prologue >= 0) {
    bind_node(e, k->prologue, k->prologue, opts, NULL, prologue);
    ep->prologue = &prologue->args;
    ep->prologue_range = kernels[e->g->nodes[k->prologue].op]->range;
  }
  ep->count = 0;
  for (int i = 1; i < k->n; i++) {
    const nnc_node *m = &e->g->nodes[k->members[i]];
    ep->op[ep->count] = m->op;
    ep->alpha[ep->count] = m->attrs.alpha;
    ep->operand[ep->count++] = m->op == NNC_OP_BIAS_ADD || m->op == NNC_OP_SCALE_SHIFT ? e->data[m->src[1]]
                               : m->nsrc > 1            ? e->data[m->src[0]]
                                                        : NULL;
  }
}

/* Node id's kernel, writing the value of out (id itself, or the last member of its fused group). */
static void run_node(nnc_exec *e, int32_t id, int32_t out, const nnc_run_opts *opts, const nnc_cpu_epilogue *ep) {
  const nnc_node *n = &e->g->nodes[id];
  bound b;
  bind_node(e, id, out, opts, ep, &b);
  if (kernels[n->op]) {
    kernels[n->op]->run(&b.args);
  } else {
    /* The reference kernels may count on zeroed outputs, as the interpreter's are. */
    memset(b.args.k.out, 0, (size_t)nnc_node_numel(n) * nnc_dtype_size(n->dtype));
    nnc_ref_kernels[n->op](&b.args.k);
  }
}

/* A blocked kernel: every member on a block of elements before the next block,
 * so what one member writes the next reads from cache. Each block runs on
 * views of its elements: a stored value's slice, or for a member the plan
 * does not store, its block in the thread's scratch. */
typedef struct blocked_task {
  const nnc_exec *e;
  const nnc_kernel *k;
  int64_t elements;
  bound members[NNC_MAX_GROUP];
} blocked_task;

static void run_block(const blocked_task *t, int64_t b, int64_t len, int thread) {
  const nnc_kernel *k = t->k;
  /* No scratch is NULL, and NULL plus even 0 is undefined. */
  float *scratch = t->e->scratch ? t->e->scratch + (size_t)thread * t->e->scratch_floats : NULL;
  void *view[NNC_MAX_GROUP];
  for (int m = 0; m < k->n; m++) {
    int slot = t->e->block_slot[k->members[m]];
    view[m] = slot >= 0 ? (void *)(scratch + (size_t)slot * BLOCK) : (void *)((float *)t->members[m].args.k.out + b);
  }
  for (int m = 0; m < k->n; m++) {
    const nnc_node *n = t->members[m].args.k.n;
    const void *in[NNC_MAX_SRC];
    for (int i = 0; i < n->nsrc; i++) {
      int j = 0;
      while (j < m && k->members[j] != n->src[i]) j++;
      in[i] = j < m ? view[j] : nnc_cpu_operand_from(&t->members[m].args, i, t->elements, b);
    }
    nnc_cpu_args a = t->members[m].args;
    a.k.in = in, a.k.out = view[m], a.first = b;
    kernels[n->op]->range(&a, 0, len);
  }
}

static void blocked_chunk(void *ctx, int64_t begin, int64_t end, int thread) {
  const blocked_task *t = ctx;
  for (int64_t b = begin; b < end; b += BLOCK) run_block(t, b, b + BLOCK < end ? BLOCK : end - b, thread);
}

static void run_blocked(nnc_exec *e, const step *s, const nnc_run_opts *opts) {
  const nnc_kernel *k = s->k;
  blocked_task t = {.e = e, .k = k, .elements = nnc_node_numel(&e->g->nodes[step_out(s)])};
  for (int m = 0; m < k->n; m++) bind_node(e, k->members[m], k->members[m], opts, NULL, &t.members[m]);
  nnc_cpu_parallel(t.elements, (nnc_cpu_grain(t.elements, 2, 8 * BLOCK) + BLOCK - 1) / BLOCK * BLOCK, blocked_chunk, &t);
}

/* Whether step s reads an allreduce's result, which the sum must have
 * reached first. */
static int reads_collective(const nnc_graph *g, const step *s) {
  for (int m = -1; m < s->k->n; m++) {
    if (m < 0 && s->k->prologue < 0) continue;
    const nnc_node *n = &g->nodes[m < 0 ? s->k->prologue : s->k->members[m]];
    for (int k = 0; k < n->nsrc; k++)
      if (nnc_ops[g->nodes[n->src[k]].op].flags & NNC_OPF_COLLECTIVE) return 1;
  }
  return 0;
}

/* Between steps of a data-parallel run: the buckets in flight advance, and
 * a step that reads one waits for it (runtime/collective.h). */
static void collective_point(const nnc_graph *g, const step *s, const nnc_run_opts *opts) {
  nnc_shard *shard = opts ? opts->shard : NULL;
  if (!shard || shard->ranks < 2) return;
  if (reads_collective(g, s)) nnc_collective_finish(shard);
  else nnc_collective_progress(shard);
}

/* NNC_DEBUG=nan: the first value step s stored that is not finite, or -1.
 * Group members that live only in registers or scratch are seen through
 * the members that read them. */
static int32_t step_non_finite(const nnc_exec *e, const step *s) {
  const nnc_graph *g = e->g;
  for (int m = 0; m < s->k->n; m++) {
    int32_t id = s->k->members[m];
    if (((s->k->stores >> m) & 1) && nnc_value_non_finite(&g->nodes[id], e->data[id]) >= 0) return id;
  }
  return -1;
}

static int cpu_run(nnc_exec *e, void *const *leaves, const nnc_run_opts *opts, nnc_status *st) {
  const nnc_graph *g = e->g;
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    if (!(nnc_ops[n->op].flags & NNC_OPF_LEAF)) continue;
    if (nnc_leaf_data(n, leaves[id], st)) return -1;
    e->data[id] = leaves[id];
  }
  if (e->opts.cpu_poison) {
    memset(e->arena, 0xff, (size_t)e->layout.bytes);
    if (e->scratch) memset(e->scratch, 0xff, sizeof(float) * e->scratch_floats * (size_t)e->threads);
  }
  e->ran_steps = 0;
  for (int i = 0; i < e->nsteps; i++) {
    step *s = &e->steps[i];
    int timed = e->opts.debug || (opts && opts->node_seconds);
    double start = timed ? nnc_now() : 0;
    nnc_cpu_epilogue ep = {0};
    bound prologue;
    collective_point(g, s, opts);
    switch (s->k->kind) {
    case NNC_KERNEL_BLOCKED:
      run_blocked(e, s, opts);
      break;
    case NNC_KERNEL_SERIAL:
      for (int m = 0; m < s->k->n; m++) run_node(e, s->k->members[m], s->k->members[m], opts, &ep);
      break;
    case NNC_KERNEL_FUSED:
      epilogue_of(e, s->k, opts, &ep, &prologue);
      /* fall through */
    default: /* single; the cpu declares no library */
      run_node(e, step_anchor(s), step_out(s), opts, &ep);
      break;
    }
    e->ran_steps++;
    if (opts && opts->non_finite && *opts->non_finite < 0) *opts->non_finite = step_non_finite(e, s);
    if (timed) {
      double spent = nnc_now() - start;
      s->seconds += spent;
      if (opts && opts->node_seconds) opts->node_seconds[step_out(s)] += spent;
    }
  }
  e->runs++;
  return 0;
}

static const void *cpu_value(nnc_exec *e, int32_t id) {
  if (id < 0 || id >= e->g->nnodes) return NULL;
  return (nnc_ops[e->g->nodes[id].op].flags & NNC_OPF_LEAF) || e->layout.intact[id] ? e->data[id] : NULL;
}

static int64_t cpu_arena_bytes(nnc_exec *e) { return e->layout.bytes; }

static int cpu_ran(const nnc_exec *e, int i, int32_t *nodes) {
  if (i < 0 || i >= e->ran_steps) return 0;
  const nnc_kernel *k = e->steps[i].k;
  int n = 0;
  if (k->prologue >= 0) nodes[n++] = k->prologue;
  for (int m = 0; m < k->n; m++) nodes[n++] = k->members[m];
  return n;
}

/* The fusion rule of a kernel that runs a group, else its op. */
static const char *step_name(const nnc_exec *e, const step *s) {
  return s->k->group >= 0 && s->k->kind != NNC_KERNEL_SINGLE ? e->g->groups[s->k->group].rule
                                                             : nnc_ops[e->g->nodes[step_anchor(s)].op].name;
}

static void print_profile(const nnc_exec *e) {
  if (!e->runs) return;
  struct row {
    const char *name;
    double seconds;
    int count;
  } rows[NNC_OP_COUNT + 64];
  int nrows = 0;
  double total = 0;
  for (int i = 0; i < e->nsteps; i++) {
    const step *s = &e->steps[i];
    const char *name = step_name(e, s);
    int r = 0;
    while (r < nrows && strcmp(rows[r].name, name)) r++;
    if (r == nrows) {
      if (nrows == (int)(sizeof rows / sizeof rows[0])) continue;
      rows[nrows++] = (struct row){name, 0, 0};
    }
    rows[r].seconds += s->seconds, rows[r].count++, total += s->seconds;
  }
  for (int a = 0; a < nrows; a++)
    for (int b = a + 1; b < nrows; b++)
      if (rows[b].seconds > rows[a].seconds) {
        struct row t = rows[a];
        rows[a] = rows[b], rows[b] = t;
      }
  const nnc_arena_layout *l = &e->layout;
  fprintf(stderr,
          "nnc cpu: %lld runs of a %d-node graph, %.3f ms per run on %d threads, OpenBLAS %s kernels\n"
          "  arena %.1f MB, scratch %.1f MB\n",
          (long long)e->runs, e->g->nnodes, 1e3 * total / (double)e->runs, e->threads, openblas_get_corename(),
          (double)l->bytes / 1e6,
          (double)(sizeof(float) * e->scratch_floats * (size_t)e->threads) / 1e6);
  for (int r = 0; r < nrows; r++)
    fprintf(stderr, "  %-20s %3d nodes %9.3f ms/run %5.1f%%\n", rows[r].name, rows[r].count,
            1e3 * rows[r].seconds / (double)e->runs, total > 0 ? 100 * rows[r].seconds / total : 0);
  if (e->opts.debug < 2) return;
  for (int i = 0; i < e->nsteps; i++) {
    const step *s = &e->steps[i];
    const nnc_node *n = &e->g->nodes[step_out(s)];
    char type[128];
    fprintf(stderr, "  %%%-5d %-20s %-24s %9.3f ms/run\n", (int)step_out(s), step_name(e, s),
            nnc_type_str(n, type, sizeof type),
              1e3 * s->seconds / (double)e->runs);
  }
}

static void cpu_release(nnc_exec *e) {
  if (!e) return;
  if (e->opts.debug) print_profile(e);
  nnc_arena_layout_free(&e->layout);
  free(e->arena);
  free(e->data);
  free(e->block_slot);
  free(e->steps);
  free(e->scratch);
  if (e->threads > 0) nnc_cpu_pool_release();
  free(e);
}

const nnc_backend nnc_backend_cpu = {
    .name = "cpu",
    .prepare = cpu_prepare,
    .run = cpu_run,
    .value = cpu_value,
    .arena_bytes = cpu_arena_bytes,
    .release = cpu_release,
    .caps = &cpu_caps,
    .ran = cpu_ran,
};
