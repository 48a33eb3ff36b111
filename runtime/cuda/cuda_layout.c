#include "runtime/cuda/cuda_layout.h"

#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/collective.h"

enum { WORKSPACE_ALIGN = 256 };

void nnc_cuda_layout_add_workspace(nnc_arena_layout *l, const nnc_cuda_program *p) {
  /* After every value, so that no value's bytes are overwritten by a split. */
  if (p->workspace > 0)
    l->bytes = (l->bytes + WORKSPACE_ALIGN - 1) / WORKSPACE_ALIGN * WORKSPACE_ALIGN + p->workspace * (int64_t)sizeof(float);
}

int64_t nnc_cuda_workspace_offset(const nnc_arena_layout *l, const nnc_cuda_program *p) {
  return l->bytes - p->workspace * (int64_t)sizeof(float);
}

nnc_cuda_run_consts nnc_cuda_run_consts_of(const nnc_run_opts *opts) {
  nnc_cuda_run_consts rc = {0, 0, 0, 0, 0};
  if (opts) rc.seed = opts->seed, rc.step = opts->step, rc.training = opts->training;
  const nnc_shard *s = opts ? opts->shard : NULL;
  if (s && s->ranks > 1) rc.first_row = (unsigned long long)s->first_row, rc.global_rows = (unsigned long long)s->global_rows;
  return rc;
}

void nnc_cuda_args_fill(nnc_cuda_args *a, const nnc_cuda_kernel *k, void *const *data, void *run, void *workspace) {
  for (int i = 0; i < k->nargs; i++) {
    nnc_cuda_arg_kind kind = k->args[i].kind;
    a->ptrs[i] = kind == NNC_CUDA_ARG_RUN                                   ? run
                 : kind == NNC_CUDA_ARG_WS_OUT || kind == NNC_CUDA_ARG_WS_IN ? workspace
                                                                            : data[k->args[i].node];
    a->args[i] = &a->ptrs[i];
  }
}

/* The kernel that computes node id, or -1. */
static int kernel_of(const nnc_cuda_program *p, int32_t id) {
  for (int k = 0; k < p->count; k++)
    for (int i = 0; i < p->kernels[k].nnodes; i++)
      if (p->kernels[k].nodes[i] == id) return k;
  return -1;
}

/* Element i of its result depends on element i of each operand only (an
 * optimizer update's trailing scalar aside). */
static int is_pointwise(const nnc_node *n) {
  return (nnc_ops[n->op].flags & (NNC_OPF_ELEMENTWISE | NNC_OPF_UPDATE)) != 0;
}

int nnc_cuda_update_in_place(const nnc_graph *g, const nnc_cuda_program *p, int32_t param, int32_t update) {
  int k = kernel_of(p, update);
  if (k < 0 || p->kernels[k].cooperative || p->kernels[k].lib != NNC_LOWER_NNC || !is_pointwise(&g->nodes[update]))
    return 0;
  for (int i = 0; i < p->kernels[k].nnodes; i++) {
    const nnc_node *n = &g->nodes[p->kernels[k].nodes[i]];
    for (int s = 0; s < nnc_ops[n->op].arity; s++)
      if (n->src[s] == param && !is_pointwise(n)) return 0;
  }
  for (int later = k + 1; later < p->count; later++)
    for (int a = 0; a < p->kernels[later].nargs; a++)
      if (p->kernels[later].args[a].node == param) return 0;
  return 1;
}
