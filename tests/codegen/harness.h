/* Helpers shared by the codegen tests: deterministic data, running a graph
 * on a backend, comparing results, and compiling a graph's kernels with
 * NVRTC when it can be opened. */
#ifndef NNC_TESTS_CODEGEN_HARNESS_H
#define NNC_TESTS_CODEGEN_HARNESS_H

#include "runtime/backend.h"

typedef enum data_kind {
  DATA_RANDOM,   /* uniform in [-1, 1) */
  DATA_POSITIVE, /* uniform in [0.01, 1.01) */
  DATA_UNIT,     /* uniform in (0, 1): probabilities, sigmoid outputs */
  DATA_TIES,     /* few distinct values, so windows have tied maxima */
  DATA_CLASSES,  /* i32 class indices below the width given */
  DATA_ONEHOT,   /* one-hot rows */
  DATA_PROBS,    /* rows that sum to 1, some entries 0 (clipped in losses) */
  DATA_BINARY,   /* 0 or 1 */
} data_kind;

/* Fills `count` values (f32, or i32 for DATA_CLASSES) whose rows are `width` wide. */
void harness_fill(void *data, int64_t count, int64_t width, data_kind kind, uint32_t seed);

/* Runs g once on backend b and copies out the values of `nodes` (each must be
 * kept by the backend); out[i] is malloc'd. */
void harness_run(const nnc_backend *b, const nnc_graph *g, void *const *leaves, const nnc_run_opts *opts,
                 const int32_t *nodes, int count, float **out);

/* max |got - want| / max(|want|, floor) over count values. */
double harness_rel_error(const float *got, const float *want, int64_t count, double floor);

/* x rounded to TF32 as cvt.rna.tf32.f32 does (11 significant bits, to
 * nearest, ties away from zero), computed otherwise than cuda-emu's prelude
 * (scaling and C's round) so that each checks the other. */
float harness_tf32(float x);

/* What a GEMM on TF32 tensor cores may differ by from the interpreter,
 * relative to the largest result, in tests not about TF32 itself (nnc
 * check's default on TF32 too, runtime/train/check.h). */
#define HARNESS_TF32_TOLERANCE 1e-2
/* GEMM precision ($NNC_PRECISION, read by nnc_test_options): "fp32",
 * "tf32", or NULL for the default (TF32 on sm_90, cuda-emu's target). */
void harness_set_precision(const char *precision);
/* A checked fixture for suites that compare cuda-emu with float
 * tolerances: GEMMs in float (--precision fp32) while each test runs. */
void harness_fp32_gemms(void);
void harness_default_precision(void);

/* NVRTC: 1 if it opens; otherwise prints why (once) and returns 0. */
int harness_nvrtc_ready(void);
/* Generates g's kernels and compiles each one alone for sm_90; fails the test on error. */
void harness_nvrtc_compile_all(const nnc_graph *g);
/* Every fused group of g is exactly one kernel of its program (or library
 * step, or a split pair), and no kernel computes nodes of two groups. */
void harness_one_kernel_per_group(const nnc_graph *g);

#endif
