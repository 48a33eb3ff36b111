/* What a backend can run, declared by the backend (its vtable's caps, like
 * ggml's supports_op) and read by the schedule pass, which decides from it
 * and from the op table's fusion roles (ir/fusion.h) what runs as one
 * kernel, so that no backend works it out again. */
#ifndef NNC_PASSES_SCHEDULE_H
#define NNC_PASSES_SCHEDULE_H

#include "ir/graph.h"
#include "passes/options.h"

/* What a backend does with an op (nnc_backend_caps.op). */
enum {
  NNC_CAN_ANCHOR = 1 << 0,        /* its kernel applies epilogue members before each store */
  NNC_CAN_EPILOGUE = 1 << 1,      /* it can be applied to an anchor's value before the store */
  NNC_CAN_PROLOGUE = 1 << 2,      /* it can be computed where an anchor reads it */
  NNC_CAN_TAKE_PROLOGUE = 1 << 3, /* as an anchor, it computes its prologue operand (ir/fusion.h) itself */
  NNC_CAN_BLOCK = 1 << 4,         /* it runs on any range of elements, for a blocked kernel */
};

/* How a backend runs a fused group (nnc_backend_caps.flags). */
enum {
  /* Epilogue members form a chain: each transforms the one before it
   * through its chain operand (ir/fusion.h), which nothing else reads; the
   * cpu backend's tile loop. Otherwise a member may read any earlier
   * member of the kernel element by element (generated CUDA). */
  NNC_CAPS_CHAIN = 1 << 0,
  /* A group that does not run as one kernel is split into segments, each an
   * anchor with the members that join it as its epilogue. Otherwise it runs
   * as one blocked or serial step. */
  NNC_CAPS_SPLIT = 1 << 1,
  /* Honours --lower: a node nnc_lower_node lowers becomes a library kernel. */
  NNC_CAPS_LIBRARY = 1 << 2,
};

typedef struct nnc_backend_caps {
  const char *name;
  unsigned flags;            /* NNC_CAPS_* */
  unsigned (*op)(nnc_op op); /* NNC_CAN_* */
} nnc_backend_caps;

/* How a backend with these caps runs node id: as the library o's lowering
 * (--lower) names where the backend honours it (NNC_CAPS_LIBRARY), else
 * as its own kernel, as every node runs without caps (the interpreter).
 * The fuse pass (a library node anchors no group) and the schedule ask here. */
nnc_kernel_lib nnc_schedule_lib(const nnc_options *o, const nnc_graph *g, int32_t id, const nnc_backend_caps *caps);

/* The schedule of g on a backend with these caps (NULL: every node alone)
 * and o's lowering (--lower), malloc'd, *count kernels: what the schedule
 * pass sets on the graph. */
nnc_kernel *nnc_schedule_build(const nnc_options *o, const nnc_graph *g, const nnc_backend_caps *caps, int *count);

/* The memory plan of g run as kernels[0, count) (passes/plan_memory.c):
 * offsets[id] for every value a kernel stores, -1 for the rest; returns
 * the arena's size, or -1 with a message. */
int64_t nnc_plan_memory(const nnc_graph *g, const nnc_kernel *kernels, int count, int64_t *offsets, nnc_status *st);

#endif
