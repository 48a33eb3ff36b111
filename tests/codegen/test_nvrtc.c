#include "tests/codegen/suites.h"
TCase *tcase_nvrtc(void) { return tcase_create("nvrtc"); }
