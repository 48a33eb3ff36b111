/* NVRTC, CUDA's run-time compiler, opened with dlopen so that nnc builds and
 * runs without CUDA: o->nvrtc ($NNC_NVRTC, a file), else libnvrtc.so.13 (or .12) where
 * nnc_dl_open_cuda looks (the loader's path, the toolkit, pip wheels).
 *
 * Compiled kernels are cached on disk (codegen/cache.h) under a key of the
 * source, the options, the target architecture and NVRTC's version. */
#ifndef NNC_CODEGEN_NVRTC_H
#define NNC_CODEGEN_NVRTC_H

#include <stddef.h>

#include "ir/status.h"
#include "passes/options.h"

/* The default target: Hopper (H100). */
#define NNC_CUDA_DEFAULT_ARCH "sm_90"

typedef struct nnc_cuda_binary {
  void *data;
  size_t size;
  int is_cubin; /* 1: CUBIN (an sm_XX target); 0: NUL-terminated PTX (compute_XX) */
} nnc_cuda_binary;

/* Opens NVRTC once per process. 0 with its version, or -1 with a one-line
 * reason naming what was tried. */
int nnc_nvrtc_open(const nnc_options *o, int *major, int *minor, nnc_status *st);

/* Compiles `source`, a translation unit that defines kernel `name`, for
 * `arch` ("sm_90": CUBIN; "compute_90": PTX). A failure names the kernel and
 * the options, shows NVRTC's log and writes the source to <name>.cu in the
 * cache folder (or the temporary folder), whose path it gives. */
int nnc_nvrtc_compile(const nnc_options *o, const char *name, const char *source, const char *arch,
                      nnc_cuda_binary *out, nnc_status *st);
void nnc_cuda_binary_free(nnc_cuda_binary *b);

/* What ptxas says of a kernel compiled for an sm_NN target: what limits its
 * occupancy, and whether it spills. */
typedef struct nnc_ptxas_report {
  int registers;    /* per thread */
  int shared_bytes; /* static shared memory per block */
  int spill_bytes;  /* spill stores plus spill loads */
  int stack_bytes;  /* the stack frame */
} nnc_ptxas_report;

/* Compiles `source` for `arch` (sm_NN) with ptxas's report
 * (--ptxas-options=-v) and reads kernel `name`'s figures from it; the report
 * is cached as the binaries are. */
int nnc_nvrtc_report(const nnc_options *o, const char *name, const char *source, const char *arch,
                     nnc_ptxas_report *r, nnc_status *st);

/* 1 for a target NVRTC can be asked for: sm_NN or compute_NN (an "a" suffix allowed). */
int nnc_nvrtc_valid_arch(const char *arch);

/* Whether the last nnc_nvrtc_compile was answered from the cache (tests). */
int nnc_nvrtc_last_was_cached(void);

#endif
