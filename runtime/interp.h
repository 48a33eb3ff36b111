/* The interpreter: walks the graph in order and runs each node's reference
 * kernel. Plain loops, no threads, no tricks: it is the specification every
 * other backend is compared with. */
#ifndef NNC_INTERP_H
#define NNC_INTERP_H

#include "ir/graph.h"

typedef struct nnc_run_opts {
  int training;  /* dropout active */
  uint64_t seed; /* the run's seed */
  uint64_t step; /* the step number, part of every dropout counter */
  /* Optional: per-node seconds, added to by backends that can time their
   * work (a fused group's time goes to its last member). For nnc bench. */
  double *node_seconds;
  /* Nonzero: the PARAM leaves hold this version of the model's weights. A
   * backend with memory of its own copies a param in only when its version
   * or its host address changed since the last copy. */
  uint64_t params_version;
  /* Backends with keeps_updates: after the run, each "update:W" output
   * replaces W in the backend's own memory, so that the next run (same
   * params_version) starts from the updated weights without a copy. */
  int keep_updates;
  /* This rank's part of a data-parallel run (runtime/collective.h), or
   * NULL for one process: where its rows sit in the global batch (dropout
   * draws by the global sample) and the all-reduce's communicator. */
  struct nnc_shard *shard;
  /* Optional (NNC_DEBUG=nan): the caller sets it to -1; a backend that can
   * look at its values as they are made sets it to the first node, in run
   * order, whose value is not finite. */
  int32_t *non_finite;
} nnc_run_opts;

/* The generator counter of element 0 of dropout node n: element e of row r
 * of the global batch at step s draws s * global_rows * row + r * row + e,
 * so N ranks at global batch B draw one process's masks at batch B. */
uint64_t nnc_dropout_counter(const nnc_run_opts *opts, const nnc_node *n);

/* What a reference kernel sees. Shapes come from the node and its operands. */
typedef struct nnc_kernel_args {
  const nnc_graph *g;
  const nnc_node *n;
  const void *const *in; /* operand data, in operand order */
  void *out;
  const nnc_run_opts *opts;
} nnc_kernel_args;

typedef void nnc_ref_fn(const nnc_kernel_args *k);

#define X(ENUM, name, arity, attrs, flags) nnc_ref_fn nnc_ref_##name;
#include "ir/ops.def"
#undef X

extern nnc_ref_fn *const nnc_ref_kernels[NNC_OP_COUNT];

/* Runs every node. values[id] must point at the data of each leaf (input and
 * param); the others are allocated here and owned by the caller afterwards
 * (free them with nnc_interp_free). Every shape must be concrete. */
int nnc_interp_run(const nnc_graph *g, void **values, const nnc_run_opts *opts, nnc_status *st);
void nnc_interp_free(const nnc_graph *g, void **values);

#endif
