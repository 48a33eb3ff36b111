#include "tests/codegen/suites.h"
TCase *tcase_emu_training(void) { return tcase_create("emu_training"); }
