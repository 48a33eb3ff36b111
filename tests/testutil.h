/* Helpers shared by the Check suites. */
#ifndef NNC_TESTUTIL_H
#define NNC_TESTUTIL_H

#include <check.h>

#include "passes/options.h"

/* Runs `nnc` with the given arguments (a shell-quoted string), from the
 * source tree, capturing stdout and stderr. Returns the exit status. The
 * captured text is malloc'd and owned by the caller. */
int nnc_test_run_cli(const char *args, char **out, char **err);
/* Writes text to a fresh temporary file and returns its path (static buffer per call slot). */
const char *nnc_test_write_temp(const char *name, const char *text);
/* Reads a whole file; NULL if it cannot. */
char *nnc_test_read_file(const char *path);
/* The options nnc itself would run with in this environment
 * (frontend/options.c), read afresh on each call so that a test's setenv
 * counts; valid until the next call. */
const nnc_options *nnc_test_options(void);
/* Runs every suite and returns the process exit status. */
int nnc_test_main(Suite *suite);

#endif
