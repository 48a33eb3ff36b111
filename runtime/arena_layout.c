#include "runtime/arena_layout.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ALIGN 64

static int64_t aligned(int64_t bytes) { return (bytes + ALIGN - 1) / ALIGN * ALIGN; }
static int64_t node_bytes(const nnc_node *n) { return nnc_node_numel(n) * (int64_t)nnc_dtype_size(n->dtype); }

typedef struct live {
  int32_t born, dies; /* steps, both included */
} live;

static void liveness(const nnc_graph *g, const int32_t *step, live *v) {
  for (int32_t id = 0; id < g->nnodes; id++) v[id] = (live){step[id], step[id]};
  for (int32_t id = 0; id < g->nnodes; id++)
    for (int i = 0; i < g->nodes[id].nsrc; i++)
      if (step[id] > v[g->nodes[id].src[i]].dies) v[g->nodes[id].src[i]].dies = step[id];
  for (int i = 0; i < g->noutputs; i++) v[g->outputs[i].node].dies = INT32_MAX;
}

/* The plan's values at its offsets; after them the values only their own
 * step reads, sharing one area; then the rest, one slot each. Returns the
 * arena's size. */
static int64_t place(const nnc_graph *g, const int32_t *step, const unsigned char *stored, const live *v, int use_plan,
                     int64_t *offset, int64_t *used) {
  int64_t end = use_plan ? aligned(g->arena_bytes) : 0, local = 0;
  for (int32_t id = 0; id < g->nnodes; id++) {
    offset[id] = -1;
    used[id] = 0;
    if (!stored[id] || !use_plan || g->offsets[id] < 0) continue;
    offset[id] = g->offsets[id];
    if (aligned(offset[id] + node_bytes(&g->nodes[id])) > end) end = aligned(offset[id] + node_bytes(&g->nodes[id]));
  }
  for (int32_t id = 0; id < g->nnodes && use_plan; id++) {
    if (!stored[id] || offset[id] >= 0 || v[id].dies != v[id].born) continue;
    offset[id] = end + used[step[id]];
    used[step[id]] += aligned(node_bytes(&g->nodes[id]));
    if (used[step[id]] > local) local = used[step[id]];
  }
  end += local;
  for (int32_t id = 0; id < g->nnodes; id++) {
    if (!stored[id] || offset[id] >= 0) continue;
    offset[id] = end;
    end += aligned(node_bytes(&g->nodes[id]));
  }
  return end;
}

static int share_bytes(const nnc_graph *g, const int64_t *offset, int32_t x, int32_t y) {
  int64_t x1 = offset[x] + node_bytes(&g->nodes[x]), y1 = offset[y] + node_bytes(&g->nodes[y]);
  return offset[x] < x1 && offset[y] < y1 && offset[y] < x1 && offset[x] < y1;
}

/* Whether two values live at the same step share bytes. */
static int collides(const nnc_graph *g, const unsigned char *stored, const live *v, const int64_t *offset) {
  for (int32_t x = 0; x < g->nnodes; x++)
    for (int32_t y = x + 1; y < g->nnodes && stored[x]; y++)
      if (stored[y] && v[x].born <= v[y].dies && v[y].born <= v[x].dies && share_bytes(g, offset, x, y)) return 1;
  return 0;
}

int nnc_arena_layout_init(nnc_arena_layout *l, const nnc_graph *g, const int32_t *step, const unsigned char *stored,
                          nnc_status *st) {
  memset(l, 0, sizeof *l);
  size_t count = (size_t)g->nnodes + 1;
  l->offset = malloc(sizeof *l->offset * count);
  l->intact = calloc(count, 1);
  live *v = malloc(sizeof *v * count);
  int64_t *used = malloc(sizeof *used * count);
  if (!l->offset || !l->intact || !v || !used) {
    free(v), free(used);
    nnc_arena_layout_free(l);
    return nnc_fail(st, "out of memory laying out the arena");
  }
  liveness(g, step, v);
  int use_plan = g->offsets != NULL;
  l->bytes = place(g, step, stored, v, use_plan, l->offset, used);
  if (use_plan && collides(g, stored, v, l->offset)) {
    l->plan_unfit = 1, use_plan = 0;
    l->bytes = place(g, step, stored, v, 0, l->offset, used);
  }
  l->planned = use_plan ? aligned(g->arena_bytes) : 0;
  /* A value is whole after the run unless a later step wrote over it. */
  for (int32_t x = 0; x < g->nnodes; x++) {
    l->intact[x] = stored[x];
    for (int32_t y = 0; y < g->nnodes && l->intact[x]; y++)
      if (stored[y] && step[y] > step[x] && share_bytes(g, l->offset, x, y)) l->intact[x] = 0;
  }
  free(v), free(used);
  return 0;
}

void nnc_arena_layout_free(nnc_arena_layout *l) {
  free(l->offset);
  free(l->intact);
  memset(l, 0, sizeof *l);
}
