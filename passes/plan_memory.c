/* The plan-memory pass: every value a kernel of the schedule stores
 * (passes/schedule.c) gets a byte offset in one arena, reused once the value
 * is dead; a value a kernel keeps in registers or scratch gets none (-1, as
 * a leaf). A value is born at the kernel that computes it and dies after
 * the last kernel that reads it, both included, so a kernel's operands
 * never share bytes with what it writes; outputs live to the end. A view,
 * which the schedule computes in no kernel (nnc_node_is_view), is its
 * operand's bytes: it gets the operand's offset, and what reads it keeps
 * the operand alive. Offsets
 * are placed first-fit in node order, 64-byte aligned. Backends take the
 * offsets as they are: there is no other plan. A graph without a schedule
 * gets the one the schedule pass would give it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "ir/size.h"
#include "passes/pass.h"
#include "passes/schedule.h"

#define ALIGN 64

typedef struct interval {
  int32_t node;
  int32_t born, dies;
  int64_t offset, size;
} interval;

static int64_t aligned_size(const nnc_node *n) {
  int64_t bytes = nnc_node_numel(n) * (int64_t)nnc_dtype_size(n->dtype);
  return (bytes + ALIGN - 1) / ALIGN * ALIGN;
}

/* The lowest offset where `size` bytes fit beside every interval alive during [born, dies]. */
static int64_t first_fit(const interval *placed, int count, const interval *v) {
  int64_t offset = 0;
  for (int moved = 1; moved;) {
    moved = 0;
    for (int i = 0; i < count; i++) {
      const interval *p = &placed[i];
      int overlap_time = p->born <= v->dies && v->born <= p->dies;
      int overlap_space = p->offset < offset + v->size && offset < p->offset + p->size;
      if (overlap_time && overlap_space) offset = p->offset + p->size, moved = 1;
    }
  }
  return offset;
}

/* kernel_of[id] for each computed node, and -1 for leaves; slot[id] the
 * interval of each stored one, else -1. */
static int stored_intervals(const nnc_graph *g, const nnc_kernel *kernels, int count, int32_t *kernel_of,
                            int32_t *slot, interval *v) {
  for (int32_t id = 0; id < g->nnodes; id++) kernel_of[id] = slot[id] = -1;
  unsigned char *stored = calloc((size_t)g->nnodes + 1, 1);
  if (!stored) nnc_out_of_memory("plan-memory");
  for (int k = 0; k < count; k++) {
    if (kernels[k].prologue >= 0) kernel_of[kernels[k].prologue] = k;
    for (int m = 0; m < kernels[k].n; m++) {
      kernel_of[kernels[k].members[m]] = k;
      stored[kernels[k].members[m]] = (kernels[k].stores >> m) & 1;
    }
  }
  int n = 0;
  for (int32_t id = 0; id < g->nnodes; id++)
    if (stored[id]) {
      slot[id] = n;
      v[n++] = (interval){id, kernel_of[id], kernel_of[id], 0, aligned_size(&g->nodes[id])};
    }
  free(stored);
  return n;
}

/* The value whose bytes node id is: itself, or for a view (a computed node
 * in no kernel) the value it views. */
static int32_t bytes_of(const nnc_graph *g, const int32_t *kernel_of, int32_t id) {
  while (kernel_of[id] < 0 && !(nnc_ops[g->nodes[id].op].flags & NNC_OPF_LEAF)) id = g->nodes[id].src[0];
  return id;
}

int64_t nnc_plan_memory(const nnc_graph *g, const nnc_kernel *kernels, int count, int64_t *offsets, nnc_status *st) {
  int64_t n = (int64_t)g->nnodes + 1;
  interval *v = nnc_size_calloc("plan-memory", n, sizeof *v, st);
  int32_t *slot = v ? nnc_size_alloc("plan-memory", n, sizeof *slot, st) : NULL;
  int32_t *kernel_of = slot ? nnc_size_alloc("plan-memory", n, sizeof *kernel_of, st) : NULL;
  if (!kernel_of) {
    free(v), free(slot);
    return -1;
  }
  int values = stored_intervals(g, kernels, count, kernel_of, slot, v);
  for (int32_t id = 0; id < g->nnodes; id++)
    for (int i = 0; i < g->nodes[id].nsrc; i++) {
      int32_t s = slot[bytes_of(g, kernel_of, g->nodes[id].src[i])];
      if (s >= 0 && v[s].dies < kernel_of[id]) v[s].dies = kernel_of[id];
    }
  for (int i = 0; i < g->noutputs; i++) {
    int32_t s = slot[bytes_of(g, kernel_of, g->outputs[i].node)];
    if (s >= 0) v[s].dies = count;
  }
  int64_t bytes = 0;
  for (int32_t id = 0; id < g->nnodes; id++) offsets[id] = -1;
  for (int i = 0; i < values; i++) {
    v[i].offset = first_fit(v, i, &v[i]);
    offsets[v[i].node] = v[i].offset;
    if (v[i].offset + v[i].size > bytes) bytes = v[i].offset + v[i].size;
  }
  for (int32_t id = 0; id < g->nnodes; id++)
    if (bytes_of(g, kernel_of, id) != id) offsets[id] = offsets[bytes_of(g, kernel_of, id)];
  free(v), free(slot), free(kernel_of);
  return bytes;
}

static int run_plan_memory(nnc_graph **gp, const nnc_pass_ctx *ctx, nnc_status *st) {
  nnc_graph *g = *gp;
  if (!g->kernels && nnc_pass_schedule.run(gp, ctx, st)) return -1;
  free(g->offsets);
  g->offsets = nnc_size_alloc("plan-memory", (int64_t)g->nnodes + 1, sizeof *g->offsets, st);
  if (!g->offsets) return -1;
  /* The sum counts every intermediate, as an unfused, unplanned run stores
   * them; every offset is below it, so checking it covers them. */
  g->intermediate_bytes = 0;
  for (int32_t id = 0; id < g->nnodes; id++)
    if (!(nnc_ops[g->nodes[id].op].flags & NNC_OPF_LEAF) &&
        nnc_size_add(g->intermediate_bytes, aligned_size(&g->nodes[id]), &g->intermediate_bytes)) {
      free(g->offsets);
      g->offsets = NULL;
      return nnc_fail(st, "plan-memory: the graph's intermediate values total more than 2^63 bytes");
    }
  g->arena_bytes = nnc_plan_memory(g, g->kernels, g->nkernels, g->offsets, st);
  if (g->arena_bytes < 0) {
    free(g->offsets);
    g->offsets = NULL;
    return -1;
  }
  if (nnc_pass_options(ctx)->debug >= 1)
    fprintf(stderr, "plan-memory: arena %lld bytes for %lld bytes of intermediates (%.1f%%)\n",
            (long long)g->arena_bytes, (long long)g->intermediate_bytes,
            g->intermediate_bytes ? 100.0 * (double)g->arena_bytes / (double)g->intermediate_bytes : 0.0);
  return 0;
}

const nnc_pass nnc_pass_plan_memory = {"plan-memory", run_plan_memory};
