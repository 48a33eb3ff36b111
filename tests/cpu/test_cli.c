#include "tests/cpu/suites.h"
TCase *tcase_cpu_cli(void) { return tcase_create("cpu_cli"); }
