/* The runtime area's test cases. Each file in tests/runtime/ defines one or
 * more functions `TCase *tcase_<name>(void)`; list each here, one line per
 * TCase, and main.c declares and registers it. */
#ifndef NNC_TESTS_RUNTIME_SUITES_H
#define NNC_TESTS_RUNTIME_SUITES_H

#include <check.h>

#define NNC_RUNTIME_TCASES(X) \
  X(ref_kernels)              \
  X(ref_conv_pool_direct)     \
  X(ref_dropout)              \
  X(philox)                   \
  X(shapes)                   \
  X(optimizers)               \
  X(batch_norm)               \
  X(augment)                  \
  X(finite)

#define X(name) TCase *tcase_##name(void);
NNC_RUNTIME_TCASES(X)
#undef X

#endif
