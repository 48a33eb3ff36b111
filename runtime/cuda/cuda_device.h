/* The device under the cuda backends, as a table of the operations
 * runtime/cuda/cuda.c needs: the CUDA driver on a GPU (runtime/cuda/cuda_driver.c,
 * opened with dlopen), or the host pretending to be one (runtime/cuda/cuda_emu.c).
 * Both backends run the same host code over it, so everything cuda.c does
 * (the arena, copies, launches, weights kept on the device, graph capture)
 * is exercised by cuda-emu where no GPU exists.
 *
 * Device addresses are integers, as the driver's CUdeviceptr; on the host
 * device they are plain pointers. Every call returns 0 or fails `st` with a
 * message naming the call. */
#ifndef NNC_CUDA_DEVICE_H
#define NNC_CUDA_DEVICE_H

#include <stddef.h>

#include "codegen/cuda.h"
#include "runtime/backend.h"

typedef unsigned long long nnc_devptr;
typedef struct nnc_cuda_stream nnc_cuda_stream; /* opaque to cuda.c */
typedef struct nnc_cuda_capture nnc_cuda_capture;   /* a captured run, replayed whole */
typedef struct nnc_cuda_module nnc_cuda_module; /* a program's loaded kernels */

typedef struct nnc_cuda_device {
  const char *backend; /* "cuda", "cuda-emu": for messages */
  int emulated;        /* the host: library steps use the emulated cuBLAS/cuDNN */
  /* Opens the device once per process (o: which GPU, where its libraries
   * are, the host compiler); on failure `why` says, in a line, why. */
  int (*open)(const nnc_options *o, char *why, size_t size);
  const char *(*name)(void); /* "NVIDIA H100 80GB HBM3 (sm_90)" */
  /* What kernels are generated and compiled for, once open: o->arch, else
   * the device's own (the GPU's; sm_90 for the host, so that cuda-emu runs
   * the kernels an H100 would). */
  const char *(*target)(const nnc_options *o);
  /* Compiles and loads every generated kernel of p for o->arch (else the
   * device's); fns[k] is kernel k's handle (library steps have none). */
  int (*load)(const nnc_options *o, const nnc_cuda_program *p, nnc_cuda_module **m, void **fns, nnc_status *st);
  void (*unload)(nnc_cuda_module *m);
  int (*alloc)(nnc_devptr *p, size_t bytes, nnc_status *st);
  void (*free)(nnc_devptr p);
  /* A stream whose launches run as o says (cuda-emu: its host threads). */
  int (*stream_create)(const nnc_options *o, nnc_cuda_stream **s, nnc_status *st);
  void (*stream_destroy)(nnc_cuda_stream *s);
  void *(*raw_stream)(nnc_cuda_stream *s); /* the driver's CUstream, for cuBLAS/cuDNN */
  int (*sync)(nnc_cuda_stream *s, nnc_status *st);
  int (*to_device)(nnc_devptr dst, const void *src, size_t bytes, nnc_cuda_stream *s, nnc_status *st);
  int (*to_host)(void *dst, nnc_devptr src, size_t bytes, nnc_cuda_stream *s, nnc_status *st);
  int (*copy)(nnc_devptr dst, nnc_devptr src, size_t bytes, nnc_cuda_stream *s, nnc_status *st);
  /* args as for cuLaunchKernel: a pointer to each parameter's value. */
  int (*launch)(void *fn, const nnc_cuda_kernel *k, void **args, nnc_cuda_stream *s, nnc_status *st);
  /* Capture: the launches and copies between begin and end become one
   * graph that replay runs again with the same parameters. A device that
   * cannot capture returns 1 from begin, and cuda.c launches as before. */
  int (*begin_capture)(nnc_cuda_stream *s, nnc_status *st);
  int (*end_capture)(nnc_cuda_stream *s, nnc_cuda_capture **g, nnc_status *st);
  int (*replay)(nnc_cuda_capture *g, nnc_cuda_stream *s, nnc_status *st);
  void (*graph_destroy)(nnc_cuda_capture *g);
} nnc_cuda_device;

/* 1 when backend b runs GEMMs on TF32 tensor cores under o: cuda or
 * cuda-emu on a target that has them (runtime/cuda/cuda.c). */
int nnc_cuda_backend_tf32(const nnc_backend *b, const nnc_options *o);

extern const nnc_cuda_device nnc_cuda_driver_device; /* runtime/cuda/cuda_driver.c */
extern const nnc_cuda_device nnc_cuda_host_device;   /* runtime/cuda/cuda_emu.c */
/* The device under the cuda-emu backend: the host's, or, in tests, a copy
 * of it with failures put in (capture refused, a launch failing). */
extern const nnc_cuda_device *nnc_cuda_emu_device;

#endif
