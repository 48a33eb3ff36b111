/* Library steps on a stream: the cuBLAS/cuDNN calls that a program's
 * lowered nodes (codegen/cuda_lib_step.c) make, for the cuda backend with the
 * real libraries (opened with dlopen) and for cuda-emu with their host
 * emulation (runtime/cuda/cuda_lib_emu.c). The same code below the entry-point
 * table serves both. */
#ifndef NNC_RUNTIME_CUDA_LIB_H
#define NNC_RUNTIME_CUDA_LIB_H

#include "codegen/cuda.h"

typedef struct nnc_cuda_lib nnc_cuda_lib;

/* Device memory for the steps' scratch (transposed filters, workspaces):
 * the backend's allocator. NULL: the host heap (cuda-emu). */
typedef struct nnc_cuda_lib_memory {
  void *(*alloc)(void *ctx, size_t bytes); /* NULL on failure */
  void (*release)(void *ctx, void *p);
  void *ctx;
} nnc_cuda_lib_memory;

/* Prepares p's library steps (p and g must outlive it): opens the
 * libraries they need (emulated, or the real ones, found as o says), creates handles bound
 * to `stream`, describes each step and allocates the largest scratch any
 * step needs. A program without library steps opens nothing. NULL on
 * failure, with the message naming the library or the node. */
nnc_cuda_lib *nnc_cuda_lib_open(const nnc_options *o, const nnc_graph *g, const nnc_cuda_program *p, int emulated,
                                void *stream, const nnc_cuda_lib_memory *memory, nnc_status *st);
/* Runs library step k (a kernel of p with k->lib set) on the buffers at
 * data[id], device addresses as kernels take them. */
int nnc_cuda_lib_run(nnc_cuda_lib *l, const nnc_cuda_kernel *k, void *const *data, nnc_status *st);
void nnc_cuda_lib_close(nnc_cuda_lib *l);
/* The cuDNN algorithm kernel `kernel` of the program uses now; -1 for a
 * step that is not a convolution. */
int nnc_cuda_lib_algorithm(const nnc_cuda_lib *l, int kernel);

/* Whether the real libraries open here; when not, why (for skipping tests). */
int nnc_cuda_lib_available(const nnc_options *o, char *why, size_t size);

#endif
