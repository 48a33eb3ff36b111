#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "tests/files/suites.h"
#include "tests/testutil.h"

const char *files_dir(void) {
  static char dir[512];
  if (!dir[0]) {
    const char *probe = nnc_test_write_temp("probe", "");
    snprintf(dir, sizeof dir, "%.*s", (int)(strrchr(probe, '/') - probe), probe);
  }
  return dir;
}

static int run(const char *cmd, char **out, char **err) {
  char full[8192], out_path[600], err_path[600];
  snprintf(out_path, sizeof out_path, "%s/run.out", files_dir());
  snprintf(err_path, sizeof err_path, "%s/run.err", files_dir());
  snprintf(full, sizeof full, "cd '%s' && %s >'%s' 2>'%s' </dev/null", files_dir(), cmd, out_path, err_path);
  int status = system(full);
  *out = nnc_test_read_file(out_path);
  *err = nnc_test_read_file(err_path);
  if (!*out) *out = calloc(1, 1);
  if (!*err) *err = calloc(1, 1);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int files_nnc(const char *text, char **out, char **err) {
  nnc_test_write_temp("script.lua", text);
  return run("'" NNC_BINARY "' script.lua", out, err);
}

int files_sh(const char *cmd, char **out, char **err) {
  char full[8192];
  snprintf(full, sizeof full, "NNC='%s' PY='%s %s/tests/files/check.py' sh -c '%s'", NNC_BINARY, NNC_PYTHON,
           NNC_SOURCE_DIR, cmd);
  return run(full, out, err);
}

int files_py(const char *args, char **out, char **err) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, "'%s' '%s/tests/files/check.py' %s", NNC_PYTHON, NNC_SOURCE_DIR, args);
  return run(cmd, out, err);
}

static char *expect_ok(int status, const char *what, char *out, char *err) {
  ck_assert_msg(status == 0, "%s exited %d\nstdout: %s\nstderr: %s", what, status, out, err);
  free(err);
  return out;
}

char *files_nnc_ok(const char *text) {
  char *out, *err;
  int rc = files_nnc(text, &out, &err);
  return expect_ok(rc, "nnc", out, err);
}

char *files_py_ok(const char *args) {
  char *out, *err;
  int rc = files_py(args, &out, &err);
  return expect_ok(rc, args, out, err);
}

int main(void) {
  Suite *suite = suite_create("files");
#define X(name) suite_add_tcase(suite, tcase_##name());
  NNC_FILES_TCASES(X)
#undef X
  return nnc_test_main(suite);
}
