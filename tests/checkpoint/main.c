/* The checkpoint suite: weights on disk (safetensors) and, as they come,
 * training-state checkpoints. Test cases register through suites.h. */
#include "tests/checkpoint/suites.h"
#include "tests/testutil.h"

int main(void) {
  Suite *suite = suite_create("checkpoint");
#define X(name) suite_add_tcase(suite, tcase_##name());
  NNC_CHECKPOINT_TCASES(X)
#undef X
  return nnc_test_main(suite);
}
