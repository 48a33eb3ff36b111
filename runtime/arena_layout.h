/* Where a backend's stored values live: one arena, laid out by the memory
 * plan (passes/plan_memory.c) when the graph has one. Shared by the cpu,
 * cuda and cuda-emu backends.
 *
 * A backend describes its schedule: step[id] is the step (kernel) that
 * computes node id, in run order, or -1 for a leaf; stored[id] says whether
 * that step writes id's whole value to memory. A value is live from its
 * step to the last step that reads it (outputs to the end), both included,
 * so a step's operands never share bytes with what it writes.
 *
 * The plan's values sit at the plan's offsets, [0, planned). Values the
 * plan does not store (inside a fused group) but the backend does come
 * after: those that only their own step reads share one area, sized for the
 * step that needs most; any other (a group the backend splits into several
 * kernels) gets a slot of its own. If the plan does not fit the schedule
 * (two values live at once would share bytes) it is not used: every value
 * gets its own slot, as it does when there is no plan. */
#ifndef NNC_ARENA_LAYOUT_H
#define NNC_ARENA_LAYOUT_H

#include "ir/graph.h"

typedef struct nnc_arena_layout {
  int64_t bytes;         /* the arena's size */
  int64_t planned;       /* the plan's part, [0, planned); 0 when the plan is not followed */
  int plan_unfit;        /* the graph had a plan that this schedule could not follow */
  int64_t *offset;       /* per node: byte offset of a stored node, or -1 */
  unsigned char *intact; /* per node: its bytes still hold its value after a run */
} nnc_arena_layout;

int nnc_arena_layout_init(nnc_arena_layout *l, const nnc_graph *g, const int32_t *step, const unsigned char *stored,
                          nnc_status *st);
void nnc_arena_layout_free(nnc_arena_layout *l);

#endif
