/* The passes suite: autodiff and the other graph-to-graph passes.
 * Test cases register themselves through the list in suites.h. */
#include "tests/passes/suites.h"
#include "tests/testutil.h"

int main(void) {
  Suite *suite = suite_create("passes");
#define X(name) suite_add_tcase(suite, tcase_##name());
  NNC_PASSES_TCASES(X)
#undef X
  return nnc_test_main(suite);
}
