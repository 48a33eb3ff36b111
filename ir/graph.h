/* The graph: an append-only array of interned nodes in topological order.
 * A node's id is its index; operands always have smaller ids. Nodes are
 * interned by (op, operands, attributes, and for leaves name and type), so
 * building the same expression twice yields one node. */
#ifndef NNC_GRAPH_H
#define NNC_GRAPH_H

#include <stdint.h>
#include <stdio.h>

#include "ir/status.h"
#include "ir/types.h"

/* Where a node came from: the layer and the script line that created it,
 * so an error found in a later pass still cites the user's code. */
typedef struct nnc_loc {
  const char *layer;      /* "conv2d_3", or NULL */
  const char *layer_type; /* "Conv2D", or NULL */
  const char *file;       /* "models/x.lua", or NULL */
  int line;
} nnc_loc;

typedef struct nnc_node {
  nnc_op op;
  nnc_dtype dtype;
  int rank;
  int64_t shape[NNC_MAX_RANK];
  int nsrc;
  int32_t src[NNC_MAX_SRC];
  nnc_attrs attrs;
  const char *name; /* leaves: unique name ("conv2d/kernel"); NULL otherwise */
  nnc_loc loc;
  uint64_t hash;
  int32_t group; /* the fused group it belongs to, or -1; not part of its identity */
} nnc_node;

/* A fused group (passes/fuse.c): nodes a backend runs as one kernel, when it
 * reaches the last member. members are in node order. In an epilogue group
 * members[0] is the anchor (a conv2d, matmul or gradient) and each later
 * member consumes the one before; a "pointwise" group is a set of
 * same-sized pointwise ops that feed each other (one loop). A member
 * whose value is used outside the group (or is an output) must be stored;
 * the others may live only in registers. No node outside the group that
 * lies between the first and last member reads a member. */
#define NNC_MAX_GROUP 8
typedef struct nnc_group {
  const char *rule; /* the fusion rule that formed it (pooled) */
  int nmembers;
  int32_t members[NNC_MAX_GROUP];
} nnc_group;

/* The schedule (passes/schedule.c): what a backend runs as one kernel, in
 * run order. Every non-leaf node is in exactly one kernel, but a view
 * (nnc_node_is_view), which may be in none; a kernel's operands from
 * outside it are computed by earlier kernels. */
typedef enum nnc_kernel_kind {
  NNC_KERNEL_SINGLE,  /* one node */
  NNC_KERNEL_FUSED,   /* an anchor, its prologue, and epilogue members applied before each store */
  NNC_KERNEL_BLOCKED, /* pointwise members, all applied to one block of elements before the next */
  NNC_KERNEL_SERIAL,  /* members run one after another as one step */
  NNC_KERNEL_LIBRARY, /* one node computed by a library call (cuBLAS, cuDNN, NCCL) */
  NNC_KERNEL_KINDS
} nnc_kernel_kind;

/* Who computes a kernel: nnc's own code or a library (the values of
 * nnc_lower_lib, passes/lower.h). */
typedef enum nnc_kernel_lib { NNC_LIB_OWN, NNC_LIB_CUBLAS, NNC_LIB_CUDNN, NNC_LIB_NCCL, NNC_LIB_COUNT } nnc_kernel_lib;

typedef struct nnc_kernel {
  nnc_kernel_kind kind;
  nnc_kernel_lib lib;
  int32_t group;    /* the fused group it runs all or part of, or -1 */
  int32_t prologue; /* FUSED: the member computed where the anchor reads it, never stored; else -1 */
  int n;
  /* In node order; FUSED: members[0] is the anchor, the rest its epilogue. */
  int32_t members[NNC_MAX_GROUP];
  /* Bit k: members[k] is written to memory; the others live in registers
   * (FUSED) or in a thread's scratch (BLOCKED) only. */
  unsigned stores;
} nnc_kernel;

extern const char *const nnc_kernel_kind_names[NNC_KERNEL_KINDS];
extern const char *const nnc_kernel_lib_names[NNC_LIB_COUNT];

/* What nnc_graph_add takes. dtype/rank/shape and name are read for leaves
 * only; every other node's type comes from shape inference. */
typedef struct nnc_node_spec {
  nnc_op op;
  int nsrc;
  int32_t src[NNC_MAX_SRC];
  nnc_attrs attrs;
  const char *name;
  nnc_dtype dtype;
  int rank;
  int64_t shape[NNC_MAX_RANK];
} nnc_node_spec;

typedef struct nnc_graph_output {
  const char *name; /* role: "output", "loss", ... (pooled) */
  int32_t node;
} nnc_graph_output;

typedef struct nnc_graph {
  nnc_node *nodes;
  int nnodes, cap;
  int32_t *table; /* open-addressed intern table of node ids, -1 empty */
  int table_cap;
  char **strings; /* pooled strings, owned */
  int nstrings, strings_cap;
  nnc_graph_output *outputs;
  int noutputs, outputs_cap;
  nnc_loc loc; /* stamped on nodes added from now on */
  nnc_group *groups;
  int ngroups, groups_cap;
  /* The memory plan (passes/plan_memory.c), NULL until planned: each
   * stored node's byte offset in one arena (-1 for leaves and for values
   * internal to a fused group). */
  int64_t *offsets;
  int64_t arena_bytes;        /* the arena's size: the peak of live intermediates */
  int64_t intermediate_bytes; /* the sum of all intermediates, unplanned */
  /* The schedule, NULL until the schedule pass (or a parsed `schedule`
   * block) sets it. */
  nnc_kernel *kernels;
  int nkernels;
  /* Whose schedule it is (passes/schedule.h): a backend whose caps these
   * are runs it; NULL for one read from text. */
  const struct nnc_backend_caps *scheduled_for;
} nnc_graph;

nnc_graph *nnc_graph_new(void);
void nnc_graph_free(nnc_graph *g);

/* Adds (or finds) a node; checks arity and shapes. Returns its id, or -1 with
 * a message that names the node's layer, script line and shapes. */
int32_t nnc_graph_add(nnc_graph *g, const nnc_node_spec *spec, nnc_status *st);

/* Convenience for the common case of an op on operands with attributes. */
int32_t nnc_graph_op(nnc_graph *g, nnc_op op, const int32_t *src, int nsrc, const nnc_attrs *attrs,
                     nnc_status *st);
/* Fails, naming the node, unless every shape is concrete (no NNC_DIM_ANY):
 * what a backend needs before it sizes buffers. */
int nnc_graph_check_concrete(const nnc_graph *g, nnc_status *st);
/* And for a leaf (input or param) of the given type. */
int32_t nnc_graph_leaf(nnc_graph *g, nnc_op op, const char *name, nnc_dtype dtype, int rank, const int64_t *shape,
                       nnc_status *st);

/* Sets the location stamped on nodes added after this call. Strings are copied. */
void nnc_graph_set_loc(nnc_graph *g, const char *layer, const char *layer_type, const char *file,
                       int line);

/* Returns a pooled copy of s owned by the graph (NULL stays NULL). */
const char *nnc_graph_str(nnc_graph *g, const char *s);

/* Records a fused group over existing nodes; returns its index or -1. */
int nnc_graph_add_group(nnc_graph *g, const char *rule, const int32_t *members, int nmembers, nnc_status *st);
/* Replaces the schedule with a copy of kernels[0, count), dropping the memory plan made for the old one. */
void nnc_graph_set_schedule(nnc_graph *g, const nnc_kernel *kernels, int count);
/* Whether node id can be a view of its operand's bytes, computing nothing:
 * a reshape of a computed value, outside any fused group. The schedule
 * pass gives it no kernel on a backend (the interpreter's schedule still
 * does), and the memory plan then places it where its operand is. */
int nnc_node_is_view(const nnc_graph *g, int32_t id);
/* The schedule's invariants: every non-leaf node but a view in one kernel, members in
 * order, each operand computed by an earlier kernel or earlier in the
 * same one, a FUSED kernel's prologue read by its anchor alone, every
 * value read outside its kernel (or an output) stored. */
int nnc_graph_verify_schedule(const nnc_graph *g, nnc_status *st);

int nnc_graph_add_output(nnc_graph *g, const char *role, int32_t node, nnc_status *st);
/* The node id of an output role, or -1. */
int32_t nnc_graph_output_node(const nnc_graph *g, const char *role);
/* The leaf with this name, or -1. */
int32_t nnc_graph_find_leaf(const nnc_graph *g, nnc_op op, const char *name);

/* Turns param leaf id into a state leaf (trainable=false): no gradient is
 * taken for it and no optimizer updates it. A state stays a state. */
int nnc_graph_freeze(nnc_graph *g, int32_t id, nnc_status *st);

/* Checks every invariant: operand order, arity, leaf names unique, and that
 * shape inference reproduces every stored type. */
int nnc_graph_verify(const nnc_graph *g, nnc_status *st);

/* Copies g with the leading (batch) dimension of every input set to `batch`,
 * re-inferring all shapes. */
nnc_graph *nnc_graph_with_batch(const nnc_graph *g, int64_t batch, nnc_status *st);

int64_t nnc_node_numel(const nnc_node *n);
/* "f32[?,28,28,1]" */
const char *nnc_type_str(const nnc_node *n, char *buf, size_t size);
/* "conv2d_3 (Conv2D) at models/x.lua:14" or "%7 = conv2d" when no layer is known. */
const char *nnc_node_where(const nnc_graph *g, int32_t id, char *buf, size_t size);
/* A stable hash of the whole graph, for cache keys and generated-file headers. */
uint64_t nnc_graph_hash(const nnc_graph *g);

#endif
