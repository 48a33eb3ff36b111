/* Where the generated kernels' buffers live, for cuda and cuda-emu alike:
 * the arena of runtime/arena_layout.h, one step per kernel. */
#ifndef NNC_CUDA_LAYOUT_H
#define NNC_CUDA_LAYOUT_H

#include "codegen/cuda.h"
#include "runtime/arena_layout.h"
#include "runtime/interp.h"

typedef nnc_arena_layout nnc_cuda_layout;

int nnc_cuda_layout_init(nnc_cuda_layout *l, const nnc_graph *g, const nnc_cuda_program *p, nnc_status *st);
void nnc_cuda_layout_free(nnc_cuda_layout *l);

/* Kernel k's parameter values, for cuLaunchKernel-style args: ptrs[i] is
 * the device (or host) address of buffer i; args[i] points at the value. */
typedef struct nnc_cuda_args {
  void *ptrs[NNC_CUDA_MAX_ARGS];
  unsigned long long seed, step;
  int training;
  void *args[NNC_CUDA_MAX_ARGS];
} nnc_cuda_args;

/* data[id] is each node's address (leaves and stored nodes). */
void nnc_cuda_args_fill(nnc_cuda_args *a, const nnc_cuda_kernel *k, void *const *data, const nnc_run_opts *opts);

#endif
