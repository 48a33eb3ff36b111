/* The CPU backend: GEMM-based kernels on BLAS, fused epilogues and a thread
 * pool; nnc's default where there is no GPU.
 *
 * prepare() turns the graph into a list of steps and allocates one arena,
 * reused by every run: each value a step stores sits at the offset the
 * memory plan (passes/plan_memory.c) gives it, through runtime/arena_layout.c,
 * which also checks the plan against the steps. The plan counts on a group
 * running at its last member and on values inside a group not being
 * stored, so every group runs as one step at its last member. A reshape
 * copies its operand (whose bytes the plan may give away). Fused groups
 * (ir/graph.h) run as:
 *  - an anchor with a GEMM kernel (conv2d, matmul, conv2d_grad_input) whose
 *    later members are epilogue ops, each reading the one before (bias_add,
 *    relu, sigmoid, tanh, softmax, and the activation gradients): the
 *    anchor's kernel writes straight into the last member's bytes and
 *    applies the members to each output tile; the members before the last
 *    are not stored and value() answers NULL for them; nor is a member
 *    before the anchor (pool-grad's dropout), its prologue, which the
 *    anchor's kernel runs on each part of the operand it reads, into scratch;
 *  - elementwise ops of one size (an optimizer update, dropout and relu_grad
 *    chains): every member on one block of elements before the next block;
 *    a member the plan does not store lives one block at a time in the
 *    thread's scratch;
 *  - any other group runs its members one by one; those the plan does not
 *    store get room after the plan's part of the arena, shared by all such
 *    groups, since only their own step reads them.
 * value() answers for a value until a later step reuses its bytes. An op
 * with no specialised kernel runs the interpreter's reference kernel, so
 * every graph the interpreter runs, this backend runs.
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
#include "runtime/cpu.h"
#include "runtime/finite.h"
#include "passes/schedule.h"

/* Elements per block of a pointwise group (STEP_BLOCKED). */
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

/* How a step runs. */
typedef enum step_kind {
  STEP_NODE,    /* one node's kernel (or the reference kernel) */
  STEP_FUSED,   /* a group's anchor kernel with the other members as its epilogue */
  STEP_BLOCKED, /* a group of elementwise ops, all members on one block of elements at a time */
  STEP_SERIAL,  /* any other group: its members' kernels one after another */
} step_kind;

typedef struct step {
  step_kind kind;
  int32_t node;   /* whose kernel runs: the node, or the group's anchor (first member) */
  int32_t out;    /* whose value it writes last: the node, or the group's last member */
  int32_t group;  /* grouped kinds: the group */
  double seconds; /* summed over runs, when profiling */
} step;

struct nnc_exec {
  const nnc_graph *g;
  void **data;            /* each node's value: leaves during a run, stored nodes in the arena */
  nnc_arena_layout layout;
  unsigned char *arena;
  signed char *block_slot; /* STEP_BLOCKED members not stored: their block in a thread's scratch, else -1 */
  step *steps;
  int nsteps;
  float *scratch;
  size_t scratch_floats; /* per thread */
  int threads;
  nnc_options opts; /* as prepared: profile (debug level), poison, the convolution choice */
  int64_t runs;
};

/* Whether member m reads the member before it (prev) the way an epilogue
 * step does: bias_add, scale_shift and the activations as operand 0, the activation
 * gradients as dy (operand 1), with y from outside the group. */
static int reads_as_epilogue(const nnc_node *m, int32_t prev) {
  if (!nnc_cpu_epilogue_op(m->op)) return 0;
  if (nnc_pointwise[m->op].kind == NNC_PW_ACTIVATION_GRAD)
    return m->src[1] == prev && m->src[0] != prev;
  return m->src[0] == prev && (m->op != NNC_OP_BIAS_ADD || m->src[1] != prev);
}

/* 1 when members[0] is a prologue of the anchor members[1]: an elementwise
 * op with a range kernel whose one reader is the anchor, as operand 1. */
static int prologue_count(const nnc_graph *g, const nnc_group *grp, const int *uses) {
  if (grp->nmembers < 2) return 0;
  const nnc_node *p = &g->nodes[grp->members[0]], *a = &g->nodes[grp->members[1]];
  return kernels[p->op] && kernels[p->op]->range && p->dtype == NNC_F32 && kernels[a->op] && kernels[a->op]->prologue &&
         a->src[1] == grp->members[0] && a->src[0] != grp->members[0] && uses[grp->members[0]] == 1;
}

/* STEP_FUSED when the anchor (after its prologue, if any) takes an
 * epilogue and every later member is an epilogue op on the one before,
 * which nothing else reads; STEP_BLOCKED when every member is elementwise
 * over one element count; otherwise STEP_SERIAL. All three run at the
 * group's last member, as the memory plan assumes. A group that something
 * outside reads before its last member (which the fuse pass never forms)
 * cannot wait for it: its members run one by one where they are (STEP_NODE). */
static step_kind group_kind(const nnc_graph *g, const nnc_group *grp, const int *uses, int read_early) {
  int first = prologue_count(g, grp, uses);
  const nnc_node *anchor = &g->nodes[grp->members[first]];
  int fused = grp->nmembers > 1 && kernels[anchor->op] && kernels[anchor->op]->anchor, blocked = grp->nmembers > 1;
  if (read_early) return STEP_NODE;
  for (int i = 0; i < grp->nmembers; i++) {
    const nnc_node *m = &g->nodes[grp->members[i]];
    if (i > 0 && grp->members[i] <= grp->members[i - 1]) return STEP_NODE;
    if (m->dtype != NNC_F32 || nnc_node_numel(m) != nnc_node_numel(anchor)) blocked = 0, fused &= i < first;
    if (!kernels[m->op] || !kernels[m->op]->range) blocked = 0;
    if (i > first && (uses[grp->members[i - 1]] != 1 || !reads_as_epilogue(m, grp->members[i - 1]))) fused = 0;
  }
  return fused ? STEP_FUSED : blocked ? STEP_BLOCKED : STEP_SERIAL;
}

static void *alloc_buffer(size_t bytes) {
  void *p = NULL;
  return posix_memalign(&p, 64, bytes ? bytes : 1) ? NULL : p;
}

/* Which of its group's members a step writes to memory. A fused group:
 * only the last, the anchor's kernel keeps the others in its tile. A
 * blocked group: the ones the plan stores (all without a plan); the others
 * live one block at a time in a thread's scratch. */
static int writes_whole(const nnc_graph *g, step_kind kind, const nnc_group *grp, int32_t id) {
  if (kind == STEP_FUSED) return id == grp->members[grp->nmembers - 1];
  if (kind == STEP_BLOCKED) return !g->offsets || g->offsets[id] >= 0;
  return 1;
}

/* The steps in node order, a group's at its last member (a read-early
 * group's members each at their own); for each node, its step and whether
 * the step stores it. */
static int plan_steps(nnc_exec *e, int32_t *step_of, unsigned char *stored, nnc_status *st) {
  const nnc_graph *g = e->g;
  int *uses = calloc((size_t)g->nnodes + 1, sizeof *uses);
  int *read_early = calloc((size_t)g->ngroups + 1, sizeof *read_early);
  step_kind *kind = calloc((size_t)g->ngroups + 1, sizeof *kind);
  if (!uses || !read_early || !kind) {
    free(uses), free(read_early), free(kind);
    return nnc_fail(st, "out of memory preparing the cpu backend");
  }
  for (int32_t id = 0; id < g->nnodes; id++)
    for (int i = 0; i < g->nodes[id].nsrc; i++) {
      int32_t src = g->nodes[id].src[i], grp = g->nodes[src].group;
      uses[src]++;
      if (grp >= 0 && g->nodes[id].group != grp && id < g->groups[grp].members[g->groups[grp].nmembers - 1])
        read_early[grp] = 1;
    }
  for (int i = 0; i < g->noutputs; i++) uses[g->outputs[i].node]++;
  for (int i = 0; i < g->ngroups; i++) kind[i] = group_kind(g, &g->groups[i], uses, read_early[i]);
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    step_of[id] = -1, stored[id] = 0, e->block_slot[id] = -1;
    if (nnc_ops[n->op].flags & NNC_OPF_LEAF) continue;
    step s = {STEP_NODE, id, id, -1, 0};
    step_kind gk = n->group >= 0 ? kind[n->group] : STEP_NODE;
    const nnc_group *grp = gk != STEP_NODE ? &g->groups[n->group] : NULL;
    int first = gk == STEP_FUSED ? prologue_count(g, grp, uses) : 0;
    if (grp) s = (step){gk, grp->members[first], grp->members[grp->nmembers - 1], n->group, 0};
    stored[id] = (unsigned char)writes_whole(g, gk, grp, id);
    const nnc_cpu_kernel *k = kernels[n->op];
    size_t scratch = k && k->scratch ? k->scratch(&e->opts, g, n) : 0;
    if (scratch > e->scratch_floats) e->scratch_floats = scratch;
    if (grp && id != s.out) continue;
    step_of[id] = e->nsteps;
    e->steps[e->nsteps++] = s;
  }
  /* A group's members run at its step; a blocked group's unstored ones get BLOCK floats each of scratch. */
  for (int i = 0; i < e->nsteps; i++) {
    const step *s = &e->steps[i];
    if (s->group < 0) continue;
    const nnc_group *grp = &g->groups[s->group];
    int slots = 0;
    for (int m = 0; m < grp->nmembers; m++) {
      step_of[grp->members[m]] = i;
      if (!stored[grp->members[m]]) e->block_slot[grp->members[m]] = (signed char)(s->kind == STEP_BLOCKED ? slots++ : -1);
    }
    if ((size_t)slots * BLOCK > e->scratch_floats) e->scratch_floats = (size_t)slots * BLOCK;
  }
  free(uses), free(read_early), free(kind);
  return 0;
}

/* The arena: every stored value where the layout puts it. */
static int place_values(nnc_exec *e, const int32_t *step_of, const unsigned char *stored, nnc_status *st) {
  const nnc_graph *g = e->g;
  if (nnc_arena_layout_init(&e->layout, g, step_of, stored, st)) return -1;
  if (!(e->arena = alloc_buffer((size_t)e->layout.bytes)))
    return nnc_fail(st, "out of memory for the cpu backend's %.1f MB arena", (double)e->layout.bytes / 1e6);
  for (int32_t id = 0; id < g->nnodes; id++)
    if (e->layout.offset[id] >= 0) e->data[id] = e->arena + e->layout.offset[id];
  if (e->opts.debug && e->layout.plan_unfit)
    fprintf(stderr, "nnc cpu: the memory plan does not fit this graph's schedule; one slot per value instead\n");
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
  int32_t *step_of = calloc(count, sizeof *step_of);
  unsigned char *stored = calloc(count, 1);
  int rc = !e->data || !e->block_slot || !e->steps || !step_of || !stored || plan_steps(e, step_of, stored, st) ||
           place_values(e, step_of, stored, st);
  free(step_of), free(stored);
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

/* What a fused step's anchor applies around itself: its prologue (bound
 * into *prologue) and the members after it. */
static void epilogue_of(nnc_exec *e, const step *s, const nnc_run_opts *opts, nnc_cpu_epilogue *ep, bound *prologue) {
  const nnc_group *grp = &e->g->groups[s->group];
  int first = 0;
  while (grp->members[first] != s->node) first++;
  if (first) {
    bind_node(e, grp->members[0], grp->members[0], opts, NULL, prologue);
    ep->prologue = &prologue->args;
    ep->prologue_range = kernels[e->g->nodes[grp->members[0]].op]->range;
  }
  ep->count = 0;
  for (int i = first + 1; i < grp->nmembers; i++) {
    const nnc_node *m = &e->g->nodes[grp->members[i]];
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

/* STEP_BLOCKED: every member on a block of elements before the next block,
 * so what one member writes the next reads from cache. Each block runs on
 * views of its elements: a stored value's slice, or for a member the plan
 * does not store, its block in the thread's scratch. */
typedef struct blocked_task {
  const nnc_exec *e;
  const nnc_group *grp;
  int64_t elements;
  bound members[NNC_MAX_GROUP];
} blocked_task;

static void run_block(const blocked_task *t, int64_t b, int64_t len, int thread) {
  const nnc_group *grp = t->grp;
  /* No scratch is NULL, and NULL plus even 0 is undefined. */
  float *scratch = t->e->scratch ? t->e->scratch + (size_t)thread * t->e->scratch_floats : NULL;
  void *view[NNC_MAX_GROUP];
  for (int m = 0; m < grp->nmembers; m++) {
    int slot = t->e->block_slot[grp->members[m]];
    view[m] = slot >= 0 ? (void *)(scratch + (size_t)slot * BLOCK) : (void *)((float *)t->members[m].args.k.out + b);
  }
  for (int m = 0; m < grp->nmembers; m++) {
    const nnc_node *n = t->members[m].args.k.n;
    const void *in[NNC_MAX_SRC];
    for (int k = 0; k < n->nsrc; k++) {
      int j = 0;
      while (j < m && grp->members[j] != n->src[k]) j++;
      in[k] = j < m ? view[j] : nnc_cpu_operand_from(&t->members[m].args, k, t->elements, b);
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
  const nnc_group *grp = &e->g->groups[s->group];
  blocked_task t = {.e = e, .grp = grp, .elements = nnc_node_numel(&e->g->nodes[s->out])};
  for (int m = 0; m < grp->nmembers; m++) bind_node(e, grp->members[m], grp->members[m], opts, NULL, &t.members[m]);
  nnc_cpu_parallel(t.elements, (nnc_cpu_grain(t.elements, 2, 8 * BLOCK) + BLOCK - 1) / BLOCK * BLOCK, blocked_chunk, &t);
}

/* Whether step s reads an allreduce's result, which the sum must have
 * reached first. */
static int reads_collective(const nnc_graph *g, const step *s) {
  int count = s->group >= 0 ? g->groups[s->group].nmembers : 1;
  for (int m = 0; m < count; m++) {
    const nnc_node *n = &g->nodes[s->group >= 0 ? g->groups[s->group].members[m] : s->node];
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
  if (s->kind != STEP_SERIAL && s->kind != STEP_BLOCKED)
    return nnc_value_non_finite(&g->nodes[s->out], e->data[s->out]) >= 0 ? s->out : -1;
  const nnc_group *grp = &g->groups[s->group];
  for (int k = 0; k < grp->nmembers; k++) {
    int32_t id = grp->members[k];
    int stored = s->kind == STEP_SERIAL || e->block_slot[id] < 0;
    if (stored && nnc_value_non_finite(&g->nodes[id], e->data[id]) >= 0) return id;
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
  for (int i = 0; i < e->nsteps; i++) {
    step *s = &e->steps[i];
    int timed = e->opts.debug || (opts && opts->node_seconds);
    double start = timed ? nnc_now() : 0;
    nnc_cpu_epilogue ep = {0};
    bound prologue;
    collective_point(g, s, opts);
    switch (s->kind) {
    case STEP_BLOCKED:
      run_blocked(e, s, opts);
      break;
    case STEP_SERIAL:
      for (int m = 0; m < g->groups[s->group].nmembers; m++)
        run_node(e, g->groups[s->group].members[m], g->groups[s->group].members[m], opts, &ep);
      break;
    case STEP_FUSED:
      epilogue_of(e, s, opts, &ep, &prologue);
      /* fall through */
    case STEP_NODE:
      run_node(e, s->node, s->out, opts, &ep);
      break;
    }
    if (opts && opts->non_finite && *opts->non_finite < 0) *opts->non_finite = step_non_finite(e, s);
    if (timed) {
      double spent = nnc_now() - start;
      s->seconds += spent;
      if (opts && opts->node_seconds) opts->node_seconds[s->out] += spent;
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
    const char *name = s->group >= 0 ? e->g->groups[s->group].rule : nnc_ops[e->g->nodes[s->node].op].name;
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
          "  arena %.1f MB (%.1f MB as planned, %.1f MB %s), scratch %.1f MB\n",
          (long long)e->runs, e->g->nnodes, 1e3 * total / (double)e->runs, e->threads, openblas_get_corename(),
          (double)l->bytes / 1e6, (double)l->planned / 1e6, (double)(l->bytes - l->planned) / 1e6,
          l->planned ? "for values the plan keeps inside groups" : "unplanned",
          (double)(sizeof(float) * e->scratch_floats * (size_t)e->threads) / 1e6);
  for (int r = 0; r < nrows; r++)
    fprintf(stderr, "  %-20s %3d nodes %9.3f ms/run %5.1f%%\n", rows[r].name, rows[r].count,
            1e3 * rows[r].seconds / (double)e->runs, total > 0 ? 100 * rows[r].seconds / total : 0);
  if (e->opts.debug < 2) return;
  for (int i = 0; i < e->nsteps; i++) {
    const step *s = &e->steps[i];
    const nnc_node *n = &e->g->nodes[s->out];
    char type[128];
    fprintf(stderr, "  %%%-5d %-20s %-24s %9.3f ms/run\n", (int)s->out,
              s->group >= 0 ? e->g->groups[s->group].rule : nnc_ops[n->op].name, nnc_type_str(n, type, sizeof type),
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
};
