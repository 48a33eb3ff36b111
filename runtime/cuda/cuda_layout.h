/* How the generated kernels' buffers are passed, for cuda and cuda-emu
 * alike; where they live is the arena of runtime/arena_layout.h. */
#ifndef NNC_CUDA_LAYOUT_H
#define NNC_CUDA_LAYOUT_H

#include "codegen/cuda.h"
#include "runtime/arena_layout.h"
#include "runtime/interp/interp.h"

/* Adds p's workspace (the split kernels' partial results, codegen/cuda.h)
 * after the values the memory plan placed; l->bytes then includes it. */
void nnc_cuda_layout_add_workspace(nnc_arena_layout *l, const nnc_cuda_program *p);
/* Where in the arena p's workspace starts (its last p->workspace floats). */
int64_t nnc_cuda_workspace_offset(const nnc_arena_layout *l, const nnc_cuda_program *p);

/* The kernels' nnc_run_consts (codegen/cuda_prelude.c), as the
 * device holds it: written before each run, read by the kernels that draw
 * random numbers. */
typedef struct nnc_cuda_run_consts {
  unsigned long long seed, step;
  /* Under data parallelism this rank's first row of the global batch and
   * the global batch's rows (0: one process), so dropout draws by global
   * sample as the other backends do (nnc_dropout_counter). */
  unsigned long long first_row, global_rows;
  int training;
} nnc_cuda_run_consts;

nnc_cuda_run_consts nnc_cuda_run_consts_of(const nnc_run_opts *opts);

/* Kernel k's parameter values, for cuLaunchKernel-style args: ptrs[i] is
 * the device address parameter i carries; args[i] points at it. Every
 * parameter is an address, so a recorded launch is its addresses. */
typedef struct nnc_cuda_args {
  void *ptrs[NNC_CUDA_MAX_ARGS];
  void *args[NNC_CUDA_MAX_ARGS];
} nnc_cuda_args;

/* data[id] is each node's address (leaves and stored nodes); run is the
 * device address of the run's nnc_cuda_run_consts, workspace the program's. */
void nnc_cuda_args_fill(nnc_cuda_args *a, const nnc_cuda_kernel *k, void *const *data, void *run, void *workspace);

/* Whether the step may write `update` (param's "update:" output) over
 * param instead of copying it there after the step: its kernel is pointwise
 * where it reads param (a thread reads element e and writes element e of
 * the update, and no other: a weight's optimizer update, a slot's ema) and
 * no later kernel reads param. For runs that keep their updates only: one
 * that does not must leave param as it was. */
int nnc_cuda_update_in_place(const nnc_graph *g, const nnc_cuda_program *p, int32_t param, int32_t update);

#endif
