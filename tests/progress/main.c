/* The progress suite: the Keras-style progress bar of fit/evaluate and the
 * EarlyStopping state machine. Test cases register through suites.h. */
#include "tests/progress/suites.h"
#include "tests/testutil.h"

int main(void) {
  Suite *suite = suite_create("progress");
#define X(name) suite_add_tcase(suite, tcase_##name());
  NNC_PROGRESS_TCASES(X)
#undef X
  return nnc_test_main(suite);
}
