/* The codegen suite: CUDA C generation, NVRTC and the cuda-emu backend.
 * Test cases register themselves through the list in suites.h. */
#include "tests/codegen/suites.h"
#include "tests/testutil.h"

int main(void) {
  Suite *suite = suite_create("codegen");
#define X(name) suite_add_tcase(suite, tcase_##name());
  NNC_CODEGEN_TCASES(X)
#undef X
  return nnc_test_main(suite);
}
