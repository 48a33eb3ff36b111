/* The interpreter: walks the graph in order and runs each node's reference
 * kernel. Plain loops, no threads, no tricks: it is the specification every
 * other backend is compared with. */
#ifndef NNC_INTERP_H
#define NNC_INTERP_H

#include "ir/graph.h"
#include "runtime/backend.h"

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
