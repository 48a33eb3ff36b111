/* The codegen area's test cases: generated CUDA C per op row and per fused
 * group, cuda-emu's barriers, NVRTC compilation and its cache, and training
 * on cuda-emu. Each file defines `TCase *tcase_<name>(void)`; list each
 * here once. */
#ifndef NNC_TESTS_CODEGEN_SUITES_H
#define NNC_TESTS_CODEGEN_SUITES_H

#include <check.h>

#define NNC_CODEGEN_TCASES(X) \
  X(op_kernels)               \
  X(fused_kernels)            \
  X(emu_barriers)             \
  X(nvrtc)                    \
  X(emu_training)             \
  X(lowering)                 \
  X(robustness)               \
  X(prediction)               \
  X(schedule_run)             \
  X(cli)

#define X(name) TCase *tcase_##name(void);
NNC_CODEGEN_TCASES(X)
#undef X

#endif
