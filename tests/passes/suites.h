/* The passes area's test cases. Each file in tests/passes/ defines one or
 * more functions `TCase *tcase_<name>(void)`; list each here, one line per
 * TCase, and main.c declares and registers it. */
#ifndef NNC_TESTS_PASSES_SUITES_H
#define NNC_TESTS_PASSES_SUITES_H

#include <check.h>

#define NNC_PASSES_TCASES(X) \
  X(autodiff_ops)            \
  X(autodiff_graphs)         \
  X(fuse)                    \
  X(plan_memory)

#define X(name) TCase *tcase_##name(void);
NNC_PASSES_TCASES(X)
#undef X

#endif
