/* The schedule pass: turns the fused graph into the list of kernels a
 * backend runs, in run order (nnc_kernel in ir/graph.h), from the op
 * table's fusion roles (ir/fusion.h) and what the backend declares it can
 * do (nnc_pass_ctx.caps, passes/schedule.h). Backends run this list; none
 * decides again what a kernel is.
 *
 * A node outside any group is a kernel of its own (a library kernel where
 * --lower sends it to cuBLAS or cuDNN), but a view (nnc_node_is_view),
 * which is none: it reads its operand's stored bytes under its own shape.
 * A fused group runs where its last member stands:
 *  - with a prologue: its first member, when it is elementwise, the anchor
 *    after it computes it as its prologue operand, and nothing else reads it;
 *  - fused: an anchor and the members that join it as its epilogue, each
 *    pointwise over as many f32 elements as the anchor, reading a value of
 *    the kernel only element by element (and, on a backend that applies a
 *    chain, only the member before it, through its chain operand);
 *  - on a backend that splits (NNC_CAPS_SPLIT), a member that cannot join
 *    starts the group's next kernel; elsewhere a group that is not one
 *    fused kernel is blocked (every member pointwise over one size, run a
 *    block of elements at a time) or else serial.
 * A kernel stores each member read outside it or output, and a fused
 * kernel its last; a serial kernel stores every member. Without caps (the
 * interpreter) every node is a kernel of its own, as is every member of a
 * group that something outside reads before the group's last member. */
#include <stdlib.h>
#include <string.h>

#include "ir/fusion.h"
#include "ir/op.h"
#include "passes/lower.h"
#include "passes/pass.h"
#include "passes/schedule.h"

_Static_assert((int)NNC_LIB_CUBLAS == (int)NNC_LOWER_CUBLAS && (int)NNC_LIB_CUDNN == (int)NNC_LOWER_CUDNN &&
                   (int)NNC_LIB_NCCL == (int)NNC_LOWER_NCCL,
               "nnc_kernel_lib follows nnc_lower_lib");

typedef struct sched {
  const nnc_graph *g;
  const nnc_backend_caps *caps;
  const nnc_options *o; /* its lowering (--lower) */
  int *uses;        /* readers of each node, an output counting as one */
  int32_t *kernel_of;
  nnc_kernel *kernels;
  int count;
} sched;

static unsigned can(const sched *s, int32_t id) { return s->caps->op(s->g->nodes[id].op); }

nnc_kernel_lib nnc_schedule_lib(const nnc_options *o, const nnc_graph *g, int32_t id, const nnc_backend_caps *caps) {
  return caps && (caps->flags & NNC_CAPS_LIBRARY) ? (nnc_kernel_lib)nnc_lower_node(o, g, id) : NNC_LIB_OWN;
}

static int in_kernel(const nnc_kernel *k, int32_t id) {
  for (int m = 0; m < k->n; m++)
    if (k->members[m] == id) return 1;
  return 0;
}

/* Whether p, the first member of a group, is the prologue of a, the next. */
static int takes_prologue(const sched *s, int32_t p, int32_t a) {
  const nnc_node *pn = &s->g->nodes[p], *an = &s->g->nodes[a];
  unsigned at = nnc_op_fusions[an->op].prologue_at;
  if (!(can(s, p) & NNC_CAN_PROLOGUE) || !(can(s, a) & NNC_CAN_TAKE_PROLOGUE) || pn->dtype != NNC_F32 ||
      s->uses[p] != 1)
    return 0;
  int reads = 0;
  for (int i = 0; i < an->nsrc; i++)
    if (an->src[i] == p) reads += (at >> i) & 1 ? 1 : 2;
  return reads == 1;
}

/* Whether member id can join kernel k as its epilogue's next member. */
static int joins(const sched *s, const nnc_kernel *k, int32_t id) {
  const nnc_node *n = &s->g->nodes[id];
  const nnc_op_fusion *f = &nnc_op_fusions[n->op];
  if (!(can(s, id) & NNC_CAN_EPILOGUE) || n->dtype != NNC_F32 ||
      nnc_node_numel(n) != nnc_node_numel(&s->g->nodes[k->members[0]]))
    return 0;
  int32_t prev = k->members[k->n - 1];
  int chain = (s->caps->flags & NNC_CAPS_CHAIN) != 0;
  if (chain && (s->uses[prev] != 1 || n->src[f->chain] != prev)) return 0;
  for (int i = 0; i < n->nsrc; i++) {
    int32_t src = n->src[i];
    if (src == k->prologue) return 0;
    if (!in_kernel(k, src)) continue;
    if (((f->indexed >> i) & 1) || (chain && i != f->chain)) return 0;
  }
  return 1;
}

static nnc_kernel *add_kernel(sched *s, nnc_kernel_kind kind, nnc_kernel_lib lib, int32_t group) {
  nnc_kernel *k = &s->kernels[s->count++];
  *k = (nnc_kernel){.kind = kind, .lib = lib, .group = group, .prologue = -1};
  return k;
}

/* Splitting backends: each member joins the kernel before it, or starts one. */
static void split_group(sched *s, const nnc_group *grp, int32_t index) {
  int first = grp->nmembers > 1 && nnc_schedule_lib(s->o, s->g, grp->members[1], s->caps) == NNC_LIB_OWN &&
              takes_prologue(s, grp->members[0], grp->members[1]);
  nnc_kernel *cur = NULL;
  for (int m = first; m < grp->nmembers; m++) {
    int32_t id = grp->members[m];
    nnc_kernel_lib lib = nnc_schedule_lib(s->o, s->g, id, s->caps);
    if (!cur || lib != NNC_LIB_OWN || cur->lib != NNC_LIB_OWN || !joins(s, cur, id)) {
      cur = add_kernel(s, lib != NNC_LIB_OWN ? NNC_KERNEL_LIBRARY : NNC_KERNEL_SINGLE, lib, index);
      if (m == first && first) cur->prologue = grp->members[0];
    }
    cur->members[cur->n++] = id;
    if (cur->n > 1 || cur->prologue >= 0) cur->kind = NNC_KERNEL_FUSED;
  }
}

/* Other backends: the whole group is one kernel. */
static void whole_group(sched *s, const nnc_group *grp, int32_t index) {
  int first = grp->nmembers > 1 && takes_prologue(s, grp->members[0], grp->members[1]);
  nnc_kernel fused = {.kind = NNC_KERNEL_FUSED, .group = index, .prologue = first ? grp->members[0] : -1};
  int32_t anchor = grp->members[first];
  int is_fused = grp->nmembers > 1 && (can(s, anchor) & NNC_CAN_ANCHOR), blocked = 1;
  for (int m = 0; m < grp->nmembers; m++) {
    int32_t id = grp->members[m];
    const nnc_node *n = &s->g->nodes[id];
    if (n->dtype != NNC_F32 || nnc_node_numel(n) != nnc_node_numel(&s->g->nodes[anchor]) || !(can(s, id) & NNC_CAN_BLOCK))
      blocked = 0;
    if (m < first) continue;
    if (m > first && is_fused && !joins(s, &fused, id)) is_fused = 0;
    fused.members[fused.n++] = id;
  }
  if (is_fused) {
    s->kernels[s->count++] = fused;
    return;
  }
  nnc_kernel *k = add_kernel(s, blocked ? NNC_KERNEL_BLOCKED : NNC_KERNEL_SERIAL, NNC_LIB_OWN, index);
  k->n = grp->nmembers;
  memcpy(k->members, grp->members, sizeof k->members[0] * (size_t)grp->nmembers);
}

/* Which members each kernel writes to memory. */
static void mark_stores(sched *s) {
  const nnc_graph *g = s->g;
  for (int k = 0; k < s->count; k++) {
    const nnc_kernel *kn = &s->kernels[k];
    if (kn->prologue >= 0) s->kernel_of[kn->prologue] = k;
    for (int m = 0; m < kn->n; m++) s->kernel_of[kn->members[m]] = k;
  }
  unsigned char *outside = calloc((size_t)g->nnodes + 1, 1);
  if (!outside) nnc_out_of_memory("the schedule pass");
  for (int32_t id = 0; id < g->nnodes; id++)
    for (int i = 0; i < g->nodes[id].nsrc; i++)
      if (s->kernel_of[g->nodes[id].src[i]] != s->kernel_of[id]) outside[g->nodes[id].src[i]] = 1;
  for (int i = 0; i < g->noutputs; i++) outside[g->outputs[i].node] = 1;
  for (int k = 0; k < s->count; k++) {
    nnc_kernel *kn = &s->kernels[k];
    for (int m = 0; m < kn->n; m++) {
      int all = kn->kind != NNC_KERNEL_FUSED && kn->kind != NNC_KERNEL_BLOCKED;
      int last = kn->kind == NNC_KERNEL_FUSED && m == kn->n - 1;
      if (all || last || outside[kn->members[m]]) kn->stores |= 1u << m;
    }
  }
  free(outside);
}

/* Groups that cannot wait for their last member, since a node outside reads
 * a member before it, or whose members are out of order (neither of which
 * the fuse pass forms, and the verifier refuses): their members run alone,
 * each where it stands. One entry past the groups, for nodes in none. */
static unsigned char *groups_run_alone(const nnc_graph *g) {
  unsigned char *alone = calloc((size_t)g->ngroups + 1, 1);
  if (!alone) nnc_out_of_memory("the schedule pass");
  for (int i = 0; i < g->ngroups; i++)
    for (int m = 1; m < g->groups[i].nmembers; m++)
      if (g->groups[i].members[m] <= g->groups[i].members[m - 1]) alone[i] = 1;
  for (int32_t id = 0; id < g->nnodes; id++)
    for (int i = 0; i < g->nodes[id].nsrc; i++) {
      int grp = g->nodes[g->nodes[id].src[i]].group;
      if (grp >= 0 && g->nodes[id].group != grp && id < g->groups[grp].members[g->groups[grp].nmembers - 1])
        alone[grp] = 1;
    }
  return alone;
}

nnc_kernel *nnc_schedule_build(const nnc_options *o, const nnc_graph *g, const nnc_backend_caps *caps, int *nkernels) {
  size_t count = (size_t)g->nnodes + 1;
  sched s = {g, caps, o, calloc(count, sizeof(int)), malloc(count * sizeof(int32_t)),
             calloc(count, sizeof(nnc_kernel)), 0};
  if (!s.uses || !s.kernel_of || !s.kernels) nnc_out_of_memory("the schedule pass");
  for (int32_t id = 0; id < g->nnodes; id++) {
    s.kernel_of[id] = -1;
    for (int i = 0; i < g->nodes[id].nsrc; i++) s.uses[g->nodes[id].src[i]]++;
  }
  for (int i = 0; i < g->noutputs; i++) s.uses[g->outputs[i].node]++;
  unsigned char *alone = groups_run_alone(g);
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    if ((nnc_ops[n->op].flags & NNC_OPF_LEAF) || (s.caps && nnc_node_is_view(g, id))) continue;
    if (n->group < 0 || !s.caps || alone[n->group]) {
      nnc_kernel_lib lib = nnc_schedule_lib(s.o, g, id, s.caps);
      nnc_kernel *k = add_kernel(&s, lib != NNC_LIB_OWN ? NNC_KERNEL_LIBRARY : NNC_KERNEL_SINGLE, lib,
                                 s.caps && !alone[n->group < 0 ? g->ngroups : n->group] ? n->group : -1);
      k->members[k->n++] = id;
      continue;
    }
    const nnc_group *grp = &g->groups[n->group];
    if (grp->members[grp->nmembers - 1] != id) continue; /* a group runs at its last member */
    if (s.caps->flags & NNC_CAPS_SPLIT) split_group(&s, grp, n->group);
    else whole_group(&s, grp, n->group);
  }
  mark_stores(&s);
  free(s.uses), free(s.kernel_of), free(alone);
  *nkernels = s.count;
  return s.kernels;
}

static int run_schedule(nnc_graph **gp, const nnc_pass_ctx *ctx, nnc_status *st) {
  (void)st;
  int count = 0;
  nnc_kernel *kernels = nnc_schedule_build(nnc_pass_options(ctx), *gp, ctx->caps, &count);
  nnc_graph_set_schedule(*gp, kernels, count);
  (*gp)->scheduled_for = ctx->caps;
  free(kernels);
  return 0;
}

const nnc_pass nnc_pass_schedule = {"schedule", run_schedule};
