/* A backend runs graphs whose shapes are concrete. Each is a vtable; the
 * interpreter is the reference, and every other backend must agree with it. */
#ifndef NNC_BACKEND_H
#define NNC_BACKEND_H

#include <stdio.h>

#include "ir/graph.h"
#include "runtime/interp.h"

typedef struct nnc_exec nnc_exec; /* a backend's prepared graph */

typedef struct nnc_backend {
  const char *name;
  /* Prepares g (which must outlive the exec) for repeated runs: plans
   * memory, compiles kernels. */
  nnc_exec *(*prepare)(const nnc_graph *g, nnc_status *st);
  /* Runs every node once. leaves[id] points at the data of each input and
   * param leaf; other entries are ignored. */
  int (*run)(nnc_exec *e, void *const *leaves, const nnc_run_opts *opts, nnc_status *st);
  /* The data of node id after the last run: every output, and any other
   * node the backend kept (NULL when it did not, e.g. inside a fused group). */
  const void *(*value)(nnc_exec *e, int32_t id);
  /* Bytes the backend holds for the values it computes (its arena), or -1
   * where it keeps no arena. */
  int64_t (*arena_bytes)(nnc_exec *e);
  void (*release)(nnc_exec *e);
  /* 1 when the backend honours nnc_run_opts.keep_updates. */
  int keeps_updates;
  /* Optional: the kernels (and library calls) one run of e launches. */
  int (*launches)(const nnc_exec *e);
} nnc_backend;

extern const nnc_backend nnc_backend_interp;
/* BLAS GEMMs, fused epilogues and a thread pool (runtime/cpu_*.c): the default without a GPU. */
extern const nnc_backend nnc_backend_cpu;
/* runtime/cuda.c: the generated CUDA C on a GPU, through NVRTC and the driver API */
extern const nnc_backend nnc_backend_cuda;
/* runtime/cuda_emu.c: the same generated CUDA C, compiled and run on the host */
extern const nnc_backend nnc_backend_cuda_emu;

/* Monotonic time in seconds, for step and kernel timings. */
double nnc_now(void);
/* A run's check of leaf n's data: 0, or the error naming the leaf. */
int nnc_leaf_data(const nnc_node *n, const void *data, nnc_status *st);

/* The backend called `name`, or NULL (the message lists the valid names). */
const nnc_backend *nnc_backend_find(const char *name, nnc_status *st);

/* The backend called `name` if it can run here, which it shows by preparing
 * an empty graph (cuda finds its driver and GPU that way). If it cannot, one
 * line on `note` says why, and the result is cpu, or interp where cpu is not
 * registered. NULL only for an unknown name. */
const nnc_backend *nnc_backend_select(const char *name, FILE *note, nnc_status *st);

#endif
