/* The cpu suite: every op, fused groups and training on the CPU backend,
 * each compared with the interpreter. */
#include "tests/cpu/suites.h"
#include "tests/testutil.h"

int main(void) {
  Suite *suite = suite_create("cpu");
#define X(name) suite_add_tcase(suite, tcase_##name());
  NNC_CPU_TCASES(X)
#undef X
  return nnc_test_main(suite);
}
