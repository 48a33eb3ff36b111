#include "runtime/arena_layout.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"

#define ALIGN 64

static int64_t node_bytes(const nnc_node *n) { return nnc_node_numel(n) * (int64_t)nnc_dtype_size(n->dtype); }

static int share_bytes(const nnc_graph *g, const int64_t *offset, int32_t x, int32_t y) {
  int64_t x1 = offset[x] + node_bytes(&g->nodes[x]), y1 = offset[y] + node_bytes(&g->nodes[y]);
  return offset[x] < x1 && offset[y] < y1 && offset[y] < x1 && offset[x] < y1;
}

int nnc_arena_layout_stores(const nnc_arena_layout *l, int32_t id) {
  int k = l->kernel_of[id];
  if (k < 0) return 0;
  for (int m = 0; m < l->kernels[k].n; m++)
    if (l->kernels[k].members[m] == id) return (l->kernels[k].stores >> m) & 1;
  return 0;
}

/* The graph's schedule and plan when they are this backend's, else its own. */
static int take_plan(nnc_arena_layout *l, const nnc_options *o, const nnc_graph *g, const nnc_backend_caps *caps,
                     nnc_status *st) {
  if (g->kernels && g->offsets && g->scheduled_for == caps) {
    l->kernels = g->kernels, l->nkernels = g->nkernels, l->offset = g->offsets, l->bytes = g->arena_bytes;
    return 0;
  }
  l->own_kernels = nnc_schedule_build(o, g, caps, &l->nkernels);
  l->own_offsets = malloc(sizeof *l->own_offsets * ((size_t)g->nnodes + 1));
  if (!l->own_offsets) return nnc_fail(st, "out of memory laying out the arena");
  l->kernels = l->own_kernels, l->offset = l->own_offsets;
  l->bytes = nnc_plan_memory(g, l->kernels, l->nkernels, l->own_offsets, st);
  return l->bytes < 0 ? -1 : 0;
}

int nnc_arena_layout_init(nnc_arena_layout *l, const nnc_options *o, const nnc_graph *g, const nnc_backend_caps *caps,
                          nnc_status *st) {
  memset(l, 0, sizeof *l);
  size_t count = (size_t)g->nnodes + 1;
  l->intact = calloc(count, 1);
  l->kernel_of = malloc(sizeof *l->kernel_of * count);
  if (!l->intact || !l->kernel_of) {
    nnc_arena_layout_free(l);
    return nnc_fail(st, "out of memory laying out the arena");
  }
  if (take_plan(l, o, g, caps, st)) {
    nnc_arena_layout_free(l);
    return -1;
  }
  l->bytes = (l->bytes + ALIGN - 1) / ALIGN * ALIGN;
  for (int32_t id = 0; id < g->nnodes; id++) l->kernel_of[id] = -1;
  for (int k = 0; k < l->nkernels; k++) {
    if (l->kernels[k].prologue >= 0) l->kernel_of[l->kernels[k].prologue] = k;
    for (int m = 0; m < l->kernels[k].n; m++) l->kernel_of[l->kernels[k].members[m]] = k;
  }
  /* A value is whole after the run unless a later kernel wrote over it. */
  for (int32_t x = 0; x < g->nnodes; x++) {
    l->intact[x] = (unsigned char)nnc_arena_layout_stores(l, x);
    if (l->intact[x] && l->offset[x] < 0) {
      nnc_arena_layout_free(l);
      return nnc_fail(st, "internal error: the memory plan gives %%%d no place, but its kernel stores it", (int)x);
    }
    for (int32_t y = 0; y < g->nnodes && l->intact[x]; y++)
      if (l->kernel_of[y] > l->kernel_of[x] && nnc_arena_layout_stores(l, y) && share_bytes(g, l->offset, x, y))
        l->intact[x] = 0;
  }
  /* A view (in no kernel) holds its value while the bytes it views do. */
  for (int32_t x = 0; x < g->nnodes; x++)
    if (l->kernel_of[x] < 0 && !(nnc_ops[g->nodes[x].op].flags & NNC_OPF_LEAF)) l->intact[x] = l->intact[g->nodes[x].src[0]];
  return 0;
}

void nnc_arena_layout_free(nnc_arena_layout *l) {
  free(l->intact);
  free(l->kernel_of);
  free(l->own_kernels);
  free(l->own_offsets);
  memset(l, 0, sizeof *l);
}
