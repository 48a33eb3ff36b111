/* The schedule's storage and invariants (ir/graph.h); passes/schedule.c
 * decides it, ir/text*.c print and parse it. */
#include <stdlib.h>
#include <string.h>

#include "ir/graph.h"
#include "ir/op.h"

const char *const nnc_kernel_kind_names[NNC_KERNEL_KINDS] = {"single", "fused", "blocked", "serial", "library"};
const char *const nnc_kernel_lib_names[NNC_LIB_COUNT] = {"nnc", "cublas", "cudnn", "nccl"};

void nnc_graph_set_schedule(nnc_graph *g, const nnc_kernel *kernels, int count) {
  free(g->kernels);
  free(g->offsets); /* a memory plan is for one schedule */
  g->offsets = NULL;
  g->kernels = malloc(sizeof *kernels * (size_t)(count ? count : 1));
  if (!g->kernels) nnc_out_of_memory("the schedule");
  if (count) memcpy(g->kernels, kernels, sizeof *kernels * (size_t)count); /* an empty schedule block has no array */
  g->nkernels = count;
  g->scheduled_for = NULL;
}

int nnc_node_is_view(const nnc_graph *g, int32_t id) {
  const nnc_node *n = &g->nodes[id];
  return n->op == NNC_OP_RESHAPE && n->group < 0 && !(nnc_ops[g->nodes[n->src[0]].op].flags & NNC_OPF_LEAF);
}

static int fail_kernel(nnc_status *st, int k, const char *what, int32_t id) {
  return nnc_fail(st, "schedule: kernel %d: %%%d %s", k, (int)id, what);
}

/* Each kernel alone: its shape by kind, members in order and in its group. */
static int verify_kernel(const nnc_graph *g, int k, int32_t *kernel_of, nnc_status *st) {
  const nnc_kernel *kn = &g->kernels[k];
  int one = kn->kind == NNC_KERNEL_SINGLE || kn->kind == NNC_KERNEL_LIBRARY;
  if ((unsigned)kn->kind >= NNC_KERNEL_KINDS || (unsigned)kn->lib >= NNC_LIB_COUNT || kn->n < 1 ||
      kn->n > NNC_MAX_GROUP || (one && kn->n != 1) || (kn->lib != NNC_LIB_OWN) != (kn->kind == NNC_KERNEL_LIBRARY) ||
      (kn->prologue >= 0 && kn->kind != NNC_KERNEL_FUSED) || kn->stores >> kn->n)
    return nnc_fail(st, "schedule: kernel %d is malformed (%s with %d members)", k,
                    (unsigned)kn->kind < NNC_KERNEL_KINDS ? nnc_kernel_kind_names[kn->kind] : "?", kn->n);
  for (int m = -1; m < kn->n; m++) {
    int32_t id = m < 0 ? kn->prologue : kn->members[m];
    if (m < 0 && id < 0) continue;
    if (id < 0 || id >= g->nnodes) return nnc_fail(st, "schedule: kernel %d names a missing node", k);
    if (nnc_ops[g->nodes[id].op].flags & NNC_OPF_LEAF) return fail_kernel(st, k, "is a leaf, which no kernel computes", id);
    if (kernel_of[id] >= 0) return fail_kernel(st, k, "is already in another kernel", id);
    if (m > 0 && id <= kn->members[m - 1]) return fail_kernel(st, k, "is out of node order", id);
    if (m < 0 && id >= kn->members[0]) return fail_kernel(st, k, "is a prologue after its anchor", id);
    if (kn->group >= 0 ? g->nodes[id].group != kn->group : kn->n > 1 || kn->prologue >= 0)
      return fail_kernel(st, k, "is not in the kernel's fused group", id);
    kernel_of[id] = k;
  }
  return 0;
}

static int is_output(const nnc_graph *g, int32_t id) {
  for (int i = 0; i < g->noutputs; i++)
    if (g->outputs[i].node == id) return 1;
  return 0;
}

static int stored(const nnc_graph *g, int32_t id, const int32_t *kernel_of) {
  const nnc_kernel *kn = &g->kernels[kernel_of[id]];
  for (int m = 0; m < kn->n; m++)
    if (kn->members[m] == id) return (kn->stores >> m) & 1;
  return 0; /* the prologue */
}

int nnc_graph_verify_schedule(const nnc_graph *g, nnc_status *st) {
  if (!g->kernels) return 0;
  int32_t *kernel_of = malloc(sizeof *kernel_of * ((size_t)g->nnodes + 1));
  if (!kernel_of) nnc_out_of_memory("the schedule");
  for (int32_t id = 0; id < g->nnodes; id++) kernel_of[id] = -1;
  int rc = 0;
  for (int k = 0; k < g->nkernels && !rc; k++) rc = verify_kernel(g, k, kernel_of, st);
  for (int32_t id = 0; id < g->nnodes && !rc; id++) {
    const nnc_node *n = &g->nodes[id];
    if (nnc_ops[n->op].flags & NNC_OPF_LEAF) continue;
    int k = kernel_of[id];
    if (k < 0 && nnc_node_is_view(g, id)) {
      /* Its bytes are its operand's, which must be stored (or a view). */
      int32_t s = n->src[0];
      if (kernel_of[s] >= 0 && !stored(g, s, kernel_of))
        rc = fail_kernel(st, kernel_of[s], "is viewed but not stored", s);
      continue;
    }
    if (k < 0) {
      rc = nnc_fail(st, "schedule: %%%d is in no kernel", (int)id);
      break;
    }
    for (int i = 0; i < n->nsrc && !rc; i++) {
      int32_t s = n->src[i];
      int ks = kernel_of[s];
      if (ks < 0) continue; /* a leaf */
      if (ks > k) rc = fail_kernel(st, k, "reads a value a later kernel computes", id);
      else if (ks < k && !stored(g, s, kernel_of)) rc = fail_kernel(st, ks, "is read by a later kernel but not stored", s);
      else if (s == g->kernels[ks].prologue && id != g->kernels[ks].members[0])
        rc = fail_kernel(st, ks, "is a prologue that a node other than its anchor reads", s);
    }
    if (!rc && is_output(g, id) && !stored(g, id, kernel_of)) rc = fail_kernel(st, k, "is an output but not stored", id);
  }
  free(kernel_of);
  return rc;
}
