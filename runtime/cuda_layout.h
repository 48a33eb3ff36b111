/* Where the generated kernels' buffers live, for cuda and cuda-emu alike:
 * one arena, laid out by the memory plan (passes/plan_memory.c) when the
 * graph has one, else one slot per stored node. Also which values are still
 * whole after a run, since a planned arena reuses dead values' space. */
#ifndef NNC_CUDA_LAYOUT_H
#define NNC_CUDA_LAYOUT_H

#include "codegen/cuda.h"
#include "runtime/interp.h"

typedef struct nnc_cuda_layout {
  int64_t bytes;         /* the arena's size */
  int64_t *offset;       /* per node: byte offset of a stored node, or -1 */
  unsigned char *intact; /* per node: its buffer still holds its value after a run */
} nnc_cuda_layout;

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
