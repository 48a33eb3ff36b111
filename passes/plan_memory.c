/* The plan-memory pass: every stored value gets a byte offset in one arena,
 * reused once the value is dead (values internal to a fused group are not
 * stored; their offset is -1, as a leaf's). A value is born when the backend runs its
 * node (a fused group runs at its last member) and dies after its last
 * reader runs; outputs live to the end. Offsets are placed first-fit in
 * order of birth, 64-byte aligned. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "ir/size.h"
#include "passes/pass.h"

#define ALIGN 64

typedef struct interval {
  int32_t node;
  int32_t born, dies;
  int64_t offset, size;
} interval;

static int32_t run_position(const nnc_graph *g, int32_t id) {
  int grp = g->nodes[id].group;
  return grp < 0 ? id : g->groups[grp].members[g->groups[grp].nmembers - 1];
}

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

/* A group member that nothing outside its group reads is never stored: the
 * group's kernel keeps it in registers (nnc_group in ir/graph.h). */
static char *exported_members(const nnc_graph *g, nnc_status *st) {
  char *exported = nnc_size_calloc("plan-memory", (int64_t)g->nnodes + 1, 1, st);
  if (!exported) return NULL;
  for (int32_t id = 0; id < g->nnodes; id++)
    for (int i = 0; i < g->nodes[id].nsrc; i++) {
      int32_t s = g->nodes[id].src[i];
      if (g->nodes[s].group < 0 || g->nodes[s].group != g->nodes[id].group) exported[s] = 1;
    }
  for (int i = 0; i < g->noutputs; i++) exported[g->outputs[i].node] = 1;
  return exported;
}

static int run_plan_memory(nnc_graph **gp, const nnc_pass_ctx *ctx, nnc_status *st) {
  nnc_graph *g = *gp;
  int64_t n = (int64_t)g->nnodes + 1;
  free(g->offsets);
  interval *v = nnc_size_calloc("plan-memory", n, sizeof *v, st);
  int32_t *slot = v ? nnc_size_alloc("plan-memory", n, sizeof *slot, st) : NULL;
  g->offsets = slot ? nnc_size_alloc("plan-memory", n, sizeof *g->offsets, st) : NULL;
  char *exported = g->offsets ? exported_members(g, st) : NULL;
  if (!exported) {
    free(v), free(slot), free(g->offsets);
    g->offsets = NULL;
    return -1;
  }
  int count = 0;
  g->intermediate_bytes = 0;
  for (int32_t id = 0; id < g->nnodes; id++) {
    g->offsets[id] = -1;
    slot[id] = -1;
    if (nnc_ops[g->nodes[id].op].flags & NNC_OPF_LEAF) continue;
    /* The sum counts every intermediate, as an unfused, unplanned run stores them. */
    /* Every arena offset is below this sum, so checking it covers them. */
    if (nnc_size_add(g->intermediate_bytes, aligned_size(&g->nodes[id]), &g->intermediate_bytes)) {
      free(v), free(slot), free(exported), free(g->offsets);
      g->offsets = NULL;
      return nnc_fail(st, "plan-memory: the graph's intermediate values total more than 2^63 bytes");
    }
    if (g->nodes[id].group >= 0 && !exported[id]) continue;
    interval it = {id, run_position(g, id), run_position(g, id), 0, aligned_size(&g->nodes[id])};
    slot[id] = count;
    v[count++] = it;
  }
  free(exported);
  for (int32_t id = 0; id < g->nnodes; id++)
    for (int i = 0; i < g->nodes[id].nsrc; i++) {
      int32_t s = slot[g->nodes[id].src[i]];
      if (s >= 0 && v[s].dies < run_position(g, id)) v[s].dies = run_position(g, id);
    }
  for (int i = 0; i < g->noutputs; i++)
    if (slot[g->outputs[i].node] >= 0) v[slot[g->outputs[i].node]].dies = g->nnodes;
  g->arena_bytes = 0;
  for (int i = 0; i < count; i++) {
    v[i].offset = first_fit(v, i, &v[i]);
    g->offsets[v[i].node] = v[i].offset;
    if (v[i].offset + v[i].size > g->arena_bytes) g->arena_bytes = v[i].offset + v[i].size;
  }
  if (nnc_pass_options(ctx)->debug >= 1)
    fprintf(stderr, "plan-memory: arena %lld bytes for %lld bytes of intermediates (%.1f%%)\n",
            (long long)g->arena_bytes, (long long)g->intermediate_bytes,
            g->intermediate_bytes ? 100.0 * (double)g->arena_bytes / (double)g->intermediate_bytes : 0.0);
  free(v);
  free(slot);
  return 0;
}

const nnc_pass nnc_pass_plan_memory = {"plan-memory", run_plan_memory};
