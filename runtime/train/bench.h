/* nnc bench: throughput of a model's train step and inference on a backend,
 * with FLOP rate, memory plan and where the time goes per fused group. */
#ifndef NNC_BENCH_H
#define NNC_BENCH_H

#include <stdio.h>

#include "runtime/model.h"

typedef struct nnc_bench_opts {
  int64_t batch;       /* train step batch */
  int64_t infer_batch; /* inference batch */
  int steps;           /* timed steps of each */
  int top;             /* kernels listed in the profile */
  const char *predict; /* a GPU ("h100"): each kernel's predicted time on it, and an epoch's */
  FILE *out;
} nnc_bench_opts;

int nnc_bench(nnc_model *m, const nnc_graph *forward, const nnc_bench_opts *o, nnc_status *st);

#endif
