/* A backend runs graphs whose shapes are concrete. Each is a vtable; the
 * interpreter is the reference, and every other backend must agree with it. */
#ifndef NNC_BACKEND_H
#define NNC_BACKEND_H

#include <stdio.h>

#include "ir/graph.h"
#include "passes/options.h"

typedef struct nnc_exec nnc_exec; /* a backend's prepared graph */

/* What one run of a prepared graph is asked to do. */
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

typedef struct nnc_backend {
  const char *name;
  /* Prepares g (which must outlive the exec) for repeated runs: plans
   * memory, compiles kernels. */
  nnc_exec *(*prepare)(const nnc_graph *g, const nnc_options *o, nnc_status *st);
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
  /* What it can run as one kernel and whether it honours --lower
   * (passes/schedule.h), for the fuse and schedule passes; NULL: every
   * node alone. */
  const struct nnc_backend_caps *caps;
  /* Optional, for tests: the nodes the i-th kernel of the last run computed
   * (its prologue first, then its members in node order) into nodes (room
   * for NNC_MAX_GROUP + 1); their count, or 0 when the run executed fewer
   * than i + 1 kernels. */
  int (*ran)(const nnc_exec *e, int i, int32_t *nodes);
} nnc_backend;

extern const nnc_backend nnc_backend_interp;
/* BLAS GEMMs, fused epilogues and a thread pool (runtime/cpu/): the default without a GPU. */
extern const nnc_backend nnc_backend_cpu;
/* runtime/cuda/cuda.c: the generated CUDA C on a GPU, through NVRTC and the driver API */
extern const nnc_backend nnc_backend_cuda;
/* runtime/cuda/cuda_emu.c: the same generated CUDA C, compiled and run on the host */
extern const nnc_backend nnc_backend_cuda_emu;

/* Monotonic time in seconds, for step and kernel timings. */
double nnc_now(void);
/* A run's check of leaf n's data: 0, or the error naming the leaf. */
int nnc_leaf_data(const nnc_node *n, const void *data, nnc_status *st);

/* The backend called `name`, or NULL (the message lists the valid names). */
const nnc_backend *nnc_backend_find(const char *name, nnc_status *st);

/* The backend called `name` if it can run here, which it shows by preparing
 * an empty graph with o (cuda finds its driver and GPU that way). If it cannot, one
 * line on `note` says why, and the result is cpu, or interp where cpu is not
 * registered. NULL only for an unknown name. */
const nnc_backend *nnc_backend_select(const char *name, const nnc_options *o, FILE *note, nnc_status *st);

#endif
