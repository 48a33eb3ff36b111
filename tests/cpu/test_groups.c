#include "tests/cpu/suites.h"
TCase *tcase_cpu_groups(void) { return tcase_create("cpu_groups"); }
