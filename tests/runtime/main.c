/* The runtime suite: reference kernels, random numbers and shape inference.
 * Test cases register themselves through the list in suites.h. */
#include "tests/runtime/suites.h"
#include "tests/testutil.h"

int main(void) {
  Suite *suite = suite_create("runtime");
#define X(name) suite_add_tcase(suite, tcase_##name());
  NNC_RUNTIME_TCASES(X)
#undef X
  return nnc_test_main(suite);
}
