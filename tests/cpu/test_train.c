#include "tests/cpu/suites.h"
TCase *tcase_cpu_train(void) { return tcase_create("cpu_train"); }
