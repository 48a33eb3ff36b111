/* The front end's Check suite: every TCase listed in suites.h. */
#include "tests/frontend/suites.h"
#include "tests/testutil.h"

int main(void) {
  Suite *suite = suite_create("frontend");
#define NNC_TCASE(fn) suite_add_tcase(suite, fn());
#include "tests/frontend/suites.h"
  return nnc_test_main(suite);
}
