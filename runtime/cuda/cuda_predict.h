/* A prediction of each generated kernel's time on a given GPU, from the
 * program alone (nnc bench --predict h100|h200), so that kernel work can be
 * judged where no GPU is, and calibrated where one is (nnc bench on cuda
 * prints the measured time beside it).
 *
 * The model, per kernel (runtime/cuda/cuda_predict.c has the constants):
 *   resident blocks per SM = the fewest of: the SM's block limit, its thread
 *     limit / block, its registers / the block's (ptxas's count per thread,
 *     allocated per warp in units of 256), its shared memory / the block's;
 *   compute: a GEMM kernel runs at the FP32 peak per SM times a ceiling set
 *     by its inner loop (nnc_cuda_kernel.gemm): per warp and K step, its F
 *     FMAs take F / 4 cycles of the SM's four FMA pipes, but the SM issues
 *     only four warp instructions a cycle, FMAs and the I others (shared
 *     loads, staging, 32 for each element of an im2col view staged, 16
 *     with 32-bit indices) alike,
 *     and its shared memory serves one 128-byte
 *     wavefront a cycle, W of them: F/4 / max((F + I)/4, W); or, on TF32
 *     tensor cores (nnc_cuda_kernel.tf32), at the TF32 peak times 0.5 (four
 *     shared-memory accesses per mma.sync, which the tensor cores finish in
 *     two cycles), halved where the K slabs are not double-buffered (the
 *     staging's global loads then stall the block); times min(1, resident
 *     warps / 8) for latency, on the SMs its grid fills, in whole waves;
 *     other kernels at half the FP32 peak;
 *   memory: its buffers' bytes (each operand read once, each result written
 *     once, a split pair's workspace written by the first kernel and read
 *     by the second) at the lesser of 85% of HBM bandwidth and what its resident
 *     warps keep in flight (512 bytes each over a 700 ns round trip);
 *   serial: a thread that runs its work items' loops alone (a bias gradient
 *     summing 25,088 rows) spends 8 cycles per step (an FP32 add's latency
 *     plus the issue of its load), GEMMs aside;
 *   a split pair's second kernel counts one add per partial result beyond
 *     the first, and its epilogue, not the anchor's FLOPs again;
 *   time = the largest of the three, plus the cost of a node of a CUDA graph;
 *   library steps (cuBLAS, cuDNN) as a GEMM at 70% of the FP32 peak;
 *   a step adds the replay of its graph, its input copy and the read-backs
 *   of its loss and metric, and a device copy per update not written in
 *   place (nnc_cuda_update_in_place). */
#ifndef NNC_RUNTIME_CUDA_PREDICT_H
#define NNC_RUNTIME_CUDA_PREDICT_H

#include <stdio.h>

#include "codegen/cuda.h"

typedef struct nnc_gpu_spec {
  const char *name, *title;
  int sms;
  double clock_ghz;
  double fp32_tflops, tf32_tflops; /* dense peaks */
  double hbm_tbs;
  int regs_per_sm, smem_per_sm, threads_per_sm, blocks_per_sm;
  double graph_node_us;   /* a kernel's cost as a node of a replayed graph, beyond its work */
  double graph_launch_us; /* launching the step's graph */
  double copy_in_us;      /* the step's inputs, host to device, from pageable memory */
  double read_back_us;    /* one synchronous read-back of a scalar (loss, metric) */
} nnc_gpu_spec;

/* "h100" or "h200"; NULL with the valid names in st otherwise. */
const nnc_gpu_spec *nnc_gpu_spec_find(const char *name, nnc_status *st);

typedef struct nnc_kernel_prediction {
  int kernel;          /* index in the program */
  double flops, bytes; /* its nodes' FLOPs; its buffers' bytes */
  int registers, shared_bytes, spill_bytes; /* ptxas's report; -1 when there is none */
  int blocks_per_sm;
  double occupancy; /* resident warps per SM / the SM's most */
  const char *bound;  /* "compute", "memory", "serial", "launch", "library" */
  double seconds;
} nnc_kernel_prediction;

typedef struct nnc_step_prediction {
  nnc_cuda_program program;
  nnc_kernel_prediction *kernels; /* per kernel of the program, in launch order */
  int update_copies;              /* device copies after the optimizer (updates not written in place) */
  double kernel_seconds, copy_seconds, overhead_seconds, seconds;
  int reported; /* kernels with a ptxas report */
} nnc_step_prediction;

/* Predicts one run of g (a step), generated as o says, on gpu; reads are
 * the step's scalar read-backs (2 for a train or evaluation step: loss and
 * metric). */
int nnc_cuda_predict(const nnc_options *o, const nnc_graph *g, const nnc_gpu_spec *gpu, int reads,
                     nnc_step_prediction *p, nnc_status *st);
void nnc_cuda_prediction_free(nnc_step_prediction *p);

/* The `top` slowest kernels as a table, with each one's measured time
 * beside it where `measured` (seconds per node of g, over `steps` runs, as
 * nnc bench's profile) is given. */
void nnc_cuda_prediction_print(FILE *out, const nnc_graph *g, const nnc_step_prediction *p, const double *measured,
                               int steps, int top);

#endif
