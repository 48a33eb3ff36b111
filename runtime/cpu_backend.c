/* The CPU backend: GEMM-based kernels on BLAS, fused epilogues and a thread
 * pool; nnc's default where there is no GPU.
 *
 * prepare() turns the graph into a list of steps and allocates every buffer
 * once: one per value that a step writes, reused by every run. A reshape is
 * an alias of its operand. A fused group whose anchor has a GEMM kernel and
 * whose members are epilogue ops (bias_add, relu, sigmoid, tanh, softmax,
 * each consuming the one before) runs as one step: the anchor's kernel
 * writes straight into the last member's buffer and applies the members to
 * each output tile; the members before the last have no buffer and value()
 * answers NULL for them. Any other group runs its members one by one, and
 * an op with no specialised kernel runs the interpreter's reference kernel,
 * so every graph the interpreter runs, this backend runs.
 *
 * NNC_DEBUG=1 or more: when an exec is released, print the time its steps
 * took, summed by op over every run, to stderr. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ir/op.h"
#include "runtime/cpu.h"

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
    [NNC_OP_RELU] = &nnc_cpu_relu,
    [NNC_OP_SIGMOID] = &nnc_cpu_sigmoid,
    [NNC_OP_TANH] = &nnc_cpu_tanh,
    [NNC_OP_ADD] = &nnc_cpu_add,
    [NNC_OP_MUL] = &nnc_cpu_mul,
    [NNC_OP_RELU_GRAD] = &nnc_cpu_relu_grad,
    [NNC_OP_SIGMOID_GRAD] = &nnc_cpu_sigmoid_grad,
    [NNC_OP_TANH_GRAD] = &nnc_cpu_tanh_grad,
    [NNC_OP_SOFTMAX] = &nnc_cpu_softmax,
    [NNC_OP_DROPOUT] = &nnc_cpu_dropout,
    [NNC_OP_XENT_LOGITS] = &nnc_cpu_xent_logits,
    [NNC_OP_XENT_LOGITS_GRAD] = &nnc_cpu_xent_logits_grad,
    [NNC_OP_SQUARE] = &nnc_cpu_square,
    [NNC_OP_EMA] = &nnc_cpu_ema,
    [NNC_OP_ADAM_UPDATE] = &nnc_cpu_adam_update,
    [NNC_OP_RMSPROP_UPDATE] = &nnc_cpu_rmsprop_update,
    [NNC_OP_SGD_UPDATE] = &nnc_cpu_sgd_update,
    [NNC_OP_MOMENTUM_VELOCITY] = &nnc_cpu_momentum_velocity,
    [NNC_OP_NESTEROV_UPDATE] = &nnc_cpu_nesterov_update,
};

typedef struct step {
  int32_t node;  /* whose kernel runs: the node, or a fused group's anchor */
  int32_t out;   /* whose buffer it writes: the node, or the group's last member */
  int32_t group; /* the fused group, or -1 */
  int alias;     /* a reshape: its value is its operand's */
  double seconds; /* summed over runs, when profiling */
} step;

struct nnc_exec {
  const nnc_graph *g;
  void **data;         /* each node's value during and after a run */
  void **owned;        /* the buffers this exec allocated */
  unsigned char *kept; /* value() answers for the node */
  step *steps;
  int nsteps;
  float *scratch;
  size_t scratch_floats; /* per thread */
  int threads;
  int profile;
  int64_t runs;
};

/* A group runs fused when its anchor takes an epilogue, each later member
 * is an epilogue op on the one before, and nothing outside the group reads
 * a member other than the last. */
static int fusable(const nnc_graph *g, const nnc_group *grp, const int *uses) {
  const nnc_node *anchor = &g->nodes[grp->members[0]];
  if (grp->nmembers < 2 || !kernels[anchor->op] || !kernels[anchor->op]->anchor) return 0;
  for (int i = 1; i < grp->nmembers; i++) {
    int32_t prev = grp->members[i - 1];
    const nnc_node *m = &g->nodes[grp->members[i]];
    if (grp->members[i] <= prev || m->src[0] != prev || uses[prev] != 1 || m->dtype != NNC_F32) return 0;
    if (m->op == NNC_OP_BIAS_ADD && m->src[1] == prev) return 0;
    if (m->op != NNC_OP_BIAS_ADD && m->op != NNC_OP_RELU && m->op != NNC_OP_SIGMOID && m->op != NNC_OP_TANH &&
        m->op != NNC_OP_SOFTMAX)
      return 0;
  }
  return 1;
}

static void *alloc_buffer(size_t bytes) {
  void *p = NULL;
  return posix_memalign(&p, 64, bytes ? bytes : 1) ? NULL : p;
}

static void cpu_release(nnc_exec *e);

static int plan_steps(nnc_exec *e, nnc_status *st) {
  const nnc_graph *g = e->g;
  int *uses = calloc((size_t)g->nnodes + 1, sizeof *uses);
  int *fused = calloc((size_t)g->ngroups + 1, sizeof *fused);
  if (!uses || !fused) {
    free(uses), free(fused);
    return nnc_fail(st, "out of memory preparing the cpu backend");
  }
  for (int32_t id = 0; id < g->nnodes; id++)
    for (int i = 0; i < g->nodes[id].nsrc; i++) uses[g->nodes[id].src[i]]++;
  for (int i = 0; i < g->noutputs; i++) uses[g->outputs[i].node]++;
  for (int i = 0; i < g->ngroups; i++) fused[i] = fusable(g, &g->groups[i], uses);
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    if (nnc_ops[n->op].flags & NNC_OPF_LEAF) {
      e->kept[id] = 1;
      continue;
    }
    step s = {id, id, -1, n->op == NNC_OP_RESHAPE, 0};
    if (n->group >= 0 && fused[n->group]) {
      const nnc_group *grp = &g->groups[n->group];
      if (id != grp->members[grp->nmembers - 1]) continue;
      s.node = grp->members[0], s.group = n->group;
    }
    e->kept[id] = 1;
    if (!s.alias && !(e->owned[id] = alloc_buffer((size_t)nnc_node_numel(n) * nnc_dtype_size(n->dtype)))) {
      char where[256];
      free(uses), free(fused);
      return nnc_fail(st, "out of memory for %s", nnc_node_where(g, id, where, sizeof where));
    }
    const nnc_cpu_kernel *k = kernels[g->nodes[s.node].op];
    size_t scratch = k && k->scratch ? k->scratch(g, &g->nodes[s.node]) : 0;
    if (scratch > e->scratch_floats) e->scratch_floats = scratch;
    e->steps[e->nsteps++] = s;
  }
  free(uses), free(fused);
  return 0;
}

static nnc_exec *cpu_prepare(const nnc_graph *g, nnc_status *st) {
  char where[256], type[128];
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    if (nnc_ops[n->op].flags & NNC_OPF_LEAF) continue;
    for (int i = 0; i < n->rank; i++)
      if (n->shape[i] < 0) {
        nnc_fail(st, "%s: type %s is not concrete", nnc_node_where(g, id, where, sizeof where),
                 nnc_type_str(n, type, sizeof type));
        return NULL;
      }
  }
  nnc_exec *e = calloc(1, sizeof *e);
  if (!e) {
    nnc_fail(st, "out of memory preparing the cpu backend");
    return NULL;
  }
  e->g = g;
  e->threads = nnc_cpu_pool_acquire(st);
  size_t count = (size_t)g->nnodes + 1;
  e->data = calloc(count, sizeof *e->data);
  e->owned = calloc(count, sizeof *e->owned);
  e->kept = calloc(count, 1);
  e->steps = calloc(count, sizeof *e->steps);
  const char *debug = getenv("NNC_DEBUG");
  e->profile = debug && atoi(debug) > 0;
  if (!e->data || !e->owned || !e->kept || !e->steps || plan_steps(e, st)) {
    if (!st->failed) nnc_fail(st, "out of memory preparing the cpu backend");
    cpu_release(e);
    return NULL;
  }
  if (e->scratch_floats) {
    e->scratch_floats = (e->scratch_floats + 15) & ~(size_t)15; /* each thread's area on its own cache lines */
    e->scratch = alloc_buffer(sizeof(float) * e->scratch_floats * (size_t)e->threads);
    if (!e->scratch) {
      nnc_fail(st, "out of memory for the cpu backend's scratch");
      cpu_release(e);
      return NULL;
    }
  }
  return e;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The epilogue of a fused group: its members after the anchor. */
static void epilogue_of(const nnc_exec *e, int32_t group, nnc_cpu_epilogue *ep) {
  ep->count = 0;
  if (group < 0) return;
  const nnc_group *grp = &e->g->groups[group];
  for (int i = 1; i < grp->nmembers; i++) {
    const nnc_node *m = &e->g->nodes[grp->members[i]];
    ep->op[ep->count] = m->op;
    ep->bias[ep->count++] = m->op == NNC_OP_BIAS_ADD ? e->data[m->src[1]] : NULL;
  }
}

static int cpu_run(nnc_exec *e, void *const *leaves, const nnc_run_opts *opts, nnc_status *st) {
  const nnc_graph *g = e->g;
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    if (!(nnc_ops[n->op].flags & NNC_OPF_LEAF)) continue;
    if (!leaves[id]) return nnc_fail(st, "%s '%s' has no data", nnc_ops[n->op].name, n->name ? n->name : "?");
    e->data[id] = leaves[id];
  }
  for (int i = 0; i < e->nsteps; i++) {
    step *s = &e->steps[i];
    const nnc_node *n = &g->nodes[s->node];
    if (s->alias) {
      e->data[s->out] = e->data[n->src[0]];
      continue;
    }
    int timed = e->profile || (opts && opts->node_seconds);
    double start = timed ? now() : 0;
    const void *in[NNC_MAX_SRC];
    for (int k = 0; k < n->nsrc; k++) in[k] = e->data[n->src[k]];
    e->data[s->out] = e->owned[s->out];
    nnc_cpu_epilogue ep;
    epilogue_of(e, s->group, &ep);
    nnc_cpu_args args = {{g, n, in, e->data[s->out], opts}, &ep, e->scratch, e->scratch_floats};
    const nnc_cpu_kernel *k = kernels[n->op];
    if (k) {
      k->run(&args);
    } else {
      /* The reference kernels may count on zeroed outputs, as the interpreter's are. */
      memset(args.k.out, 0, (size_t)nnc_node_numel(n) * nnc_dtype_size(n->dtype));
      nnc_ref_kernels[n->op](&args.k);
    }
    if (timed) {
      double spent = now() - start;
      s->seconds += spent;
      if (opts && opts->node_seconds) opts->node_seconds[s->out] += spent;
    }
  }
  e->runs++;
  return 0;
}

static const void *cpu_value(nnc_exec *e, int32_t id) {
  return id >= 0 && id < e->g->nnodes && e->kept[id] ? e->data[id] : NULL;
}

/* The time by op (fused groups by their rule), largest first. */
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
  fprintf(stderr, "nnc cpu: %lld runs of a %d-node graph, %.3f ms per run on %d threads\n", (long long)e->runs,
          e->g->nnodes, 1e3 * total / (double)e->runs, e->threads);
  for (int r = 0; r < nrows; r++)
    fprintf(stderr, "  %-20s %3d nodes %9.3f ms/run %5.1f%%\n", rows[r].name, rows[r].count,
            1e3 * rows[r].seconds / (double)e->runs, total > 0 ? 100 * rows[r].seconds / total : 0);
}

static void cpu_release(nnc_exec *e) {
  if (!e) return;
  if (e->profile) print_profile(e);
  if (e->owned)
    for (int32_t id = 0; id < e->g->nnodes; id++) free(e->owned[id]);
  free(e->owned);
  free(e->data);
  free(e->kept);
  free(e->steps);
  free(e->scratch);
  if (e->threads > 0) nnc_cpu_pool_release();
  free(e);
}

const nnc_backend nnc_backend_cpu = {"cpu", cpu_prepare, cpu_run, cpu_value, cpu_release};
