/* The cpu suite: every op, fused groups and training on the CPU backend,
 * each compared with the interpreter. */
#include <stdlib.h>

#include "tests/cpu/suites.h"
#include "tests/testutil.h"

int main(void) {
  /* Buffers start as NaN, so output a kernel forgets to write fails a comparison. */
  setenv("NNC_CPU_POISON", "1", 1);
  Suite *suite = suite_create("cpu");
#define X(name) suite_add_tcase(suite, tcase_##name());
  NNC_CPU_TCASES(X)
#undef X
  return nnc_test_main(suite);
}
