/* The progress area's test cases: the Keras progress bar and EarlyStopping.
 * Each file in tests/progress/ defines functions `TCase *tcase_<name>(void)`;
 * list each here, one line per TCase, and main.c declares and registers it. */
#ifndef NNC_TESTS_PROGRESS_SUITES_H
#define NNC_TESTS_PROGRESS_SUITES_H

#include <check.h>

#define NNC_PROGRESS_TCASES(X) \
  X(progbar_verbose1)          \
  X(progbar_formats)           \
  X(progbar_other_modes)       \
  X(early_stopping)

#define X(name) TCase *tcase_##name(void);
NNC_PROGRESS_TCASES(X)
#undef X

#endif
