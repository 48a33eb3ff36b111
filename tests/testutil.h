/* Helpers shared by the Check suites. */
#ifndef NNC_TESTUTIL_H
#define NNC_TESTUTIL_H

#include <check.h>

#include <stddef.h>

#include "ir/graph.h"
#include "passes/options.h"

/* Runs `nnc` with the given arguments (a shell-quoted string), from the
 * source tree, capturing stdout and stderr. Returns the exit status. The
 * captured text is malloc'd and owned by the caller. */
int nnc_test_run_cli(const char *args, char **out, char **err);
/* Writes text to a fresh temporary file and returns its path (static buffer per call slot). */
const char *nnc_test_write_temp(const char *name, const char *text);
/* Reads a whole file; NULL if it cannot. */
char *nnc_test_read_file(const char *path);
/* IR dumps (`--dump-ir`), found by the pass's name: a dump is
 * KIND.NN-PASS.ir, and NN moves whenever a pass is added before PASS. */

/* Runs `nnc ARGS --dump-ir[=PASS] --dump-dir DIR` (every pass when pass is
 * NULL) into a fresh temporary DIR, written to dir (size bytes). Returns
 * the exit status; *err is the captured stderr (malloc'd). */
int nnc_test_dump_ir(const char *args, const char *pass, char *dir, size_t size, char **err);
/* The path of dir's dump of the KIND graph after PASS (malloc'd), or NULL
 * when there is none; two such dumps fail the test. */
char *nnc_test_dump_path(const char *dir, const char *kind, const char *pass);
/* That dump parsed back (the test fails when it is missing or does not
 * parse); *text, when text is not NULL, gets the file's text (malloc'd). */
nnc_graph *nnc_test_read_dump(const char *dir, const char *kind, const char *pass, char **text);
/* Removes a folder nnc_test_dump_ir made, with everything in it. */
void nnc_test_remove_dir(const char *dir);
/* All of the above in one: the KIND graph after PASS of `nnc ARGS`, which
 * must succeed; the dumps are gone when it returns. */
nnc_graph *nnc_test_dumped_graph(const char *args, const char *kind, const char *pass);

/* The options nnc itself would run with in this environment
 * (frontend/options.c), read afresh on each call so that a test's setenv
 * counts; valid until the next call. */
const nnc_options *nnc_test_options(void);
/* Runs every suite and returns the process exit status. */
int nnc_test_main(Suite *suite);

#endif
