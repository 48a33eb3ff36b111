/* What a backend runs and where its values live: the schedule
 * (passes/schedule.c) and the memory plan on it (passes/plan_memory.c).
 * A backend whose caps the graph was scheduled for takes both from the
 * graph; for any other graph (one scheduled for another backend, or never
 * scheduled) the same two functions make them for this backend. Either way
 * the plan is followed as it is: every value a kernel stores has its
 * offset, and nothing else is placed. Shared by the cpu, cuda and cuda-emu
 * backends. */
#ifndef NNC_ARENA_LAYOUT_H
#define NNC_ARENA_LAYOUT_H

#include "ir/graph.h"
#include "passes/schedule.h"

typedef struct nnc_arena_layout {
  const nnc_kernel *kernels; /* in run order */
  int nkernels;
  int32_t *kernel_of;    /* per node: the kernel that computes it, -1 for a leaf */
  const int64_t *offset; /* per node: byte offset of a stored value, or -1 */
  int64_t bytes;         /* the arena's size */
  unsigned char *intact; /* per node: its bytes still hold its value after a run */
  nnc_kernel *own_kernels; /* when the graph's schedule is not this backend's */
  int64_t *own_offsets;
} nnc_arena_layout;

/* o: the lowering a schedule made here follows. */
int nnc_arena_layout_init(nnc_arena_layout *l, const nnc_options *o, const nnc_graph *g, const nnc_backend_caps *caps,
                          nnc_status *st);
/* Whether kernel k stores node id (a member of it). */
int nnc_arena_layout_stores(const nnc_arena_layout *l, int32_t id);
void nnc_arena_layout_free(nnc_arena_layout *l);

#endif
