#include "runtime/cuda_layout.h"

#include <stdlib.h>
#include <string.h>

#include "ir/op.h"

#define ALIGN 64

static int64_t node_bytes(const nnc_node *n) { return nnc_node_numel(n) * (int64_t)nnc_dtype_size(n->dtype); }

int nnc_cuda_layout_init(nnc_cuda_layout *l, const nnc_graph *g, const nnc_cuda_program *p, nnc_status *st) {
  memset(l, 0, sizeof *l);
  l->offset = malloc(sizeof *l->offset * ((size_t)g->nnodes + 1));
  l->intact = calloc((size_t)g->nnodes + 1, 1);
  int *writer = malloc(sizeof *writer * ((size_t)g->nnodes + 1));
  if (!l->offset || !l->intact || !writer) {
    free(writer);
    nnc_cuda_layout_free(l);
    return nnc_fail(st, "out of memory laying out the arena");
  }
  for (int32_t id = 0; id < g->nnodes; id++) l->offset[id] = -1, writer[id] = -1;
  for (int k = 0; k < p->count; k++)
    for (int i = 0; i < p->kernels[k].nnodes; i++)
      if (p->stored[p->kernels[k].nodes[i]]) writer[p->kernels[k].nodes[i]] = k;
  /* Planned nodes first, at their offsets; any others after them. */
  if (g->offsets) l->bytes = (g->arena_bytes + ALIGN - 1) / ALIGN * ALIGN;
  for (int32_t id = 0; id < g->nnodes; id++) {
    if (writer[id] < 0 || !g->offsets || g->offsets[id] < 0) continue;
    l->offset[id] = g->offsets[id];
    if (g->offsets[id] + node_bytes(&g->nodes[id]) > l->bytes)
      l->bytes = (g->offsets[id] + node_bytes(&g->nodes[id]) + ALIGN - 1) / ALIGN * ALIGN;
  }
  for (int32_t id = 0; id < g->nnodes; id++) {
    if (writer[id] < 0 || l->offset[id] >= 0) continue;
    l->offset[id] = l->bytes;
    l->bytes += (node_bytes(&g->nodes[id]) + ALIGN - 1) / ALIGN * ALIGN;
  }
  /* A value is whole after the run unless a later kernel wrote over it. */
  for (int32_t x = 0; x < g->nnodes; x++) {
    if (writer[x] < 0) continue;
    int64_t x0 = l->offset[x], x1 = x0 + node_bytes(&g->nodes[x]);
    l->intact[x] = 1;
    for (int32_t y = 0; y < g->nnodes && l->intact[x]; y++) {
      if (writer[y] <= writer[x]) continue;
      int64_t y0 = l->offset[y], y1 = y0 + node_bytes(&g->nodes[y]);
      if (y0 < x1 && x0 < y1) l->intact[x] = 0;
    }
  }
  free(writer);
  return 0;
}

void nnc_cuda_layout_free(nnc_cuda_layout *l) {
  free(l->offset);
  free(l->intact);
  memset(l, 0, sizeof *l);
}

nnc_cuda_run_consts nnc_cuda_run_consts_of(const nnc_run_opts *opts) {
  nnc_cuda_run_consts rc = {0, 0, 0};
  if (opts) rc.seed = opts->seed, rc.step = opts->step, rc.training = opts->training;
  return rc;
}

void nnc_cuda_args_fill(nnc_cuda_args *a, const nnc_cuda_kernel *k, void *const *data, void *run) {
  for (int i = 0; i < k->nargs; i++) {
    a->ptrs[i] = k->args[i].kind == NNC_CUDA_ARG_RUN ? run : data[k->args[i].node];
    a->args[i] = &a->ptrs[i];
  }
}
