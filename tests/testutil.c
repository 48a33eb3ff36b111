#include "tests/testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frontend/options.h"

char *nnc_test_read_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, len = 0;
  char *buf = malloc(cap);
  size_t got;
  while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
    len += got;
    if (cap - len < 2) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  buf[len] = 0;
  return buf;
}

static char temp_dir[256];

static const char *test_dir(void) {
  if (!temp_dir[0]) {
    snprintf(temp_dir, sizeof temp_dir, "/tmp/nnc-test-XXXXXX");
    if (!mkdtemp(temp_dir)) abort();
  }
  return temp_dir;
}

const char *nnc_test_write_temp(const char *name, const char *text) {
  static char paths[8][512];
  static int slot;
  char *path = paths[slot++ % 8];
  snprintf(path, 512, "%s/%s", test_dir(), name);
  FILE *f = fopen(path, "wb");
  if (!f) abort();
  fputs(text, f);
  fclose(f);
  return path;
}

int nnc_test_run_cli(const char *args, char **out, char **err) {
  char cmd[4096], out_path[512], err_path[512];
  snprintf(out_path, sizeof out_path, "%s/cli.out", test_dir());
  snprintf(err_path, sizeof err_path, "%s/cli.err", test_dir());
  snprintf(cmd, sizeof cmd, "cd '%s' && '%s' %s >'%s' 2>'%s' </dev/null", NNC_SOURCE_DIR, NNC_BINARY, args,
           out_path, err_path);
  int status = system(cmd);
  *out = nnc_test_read_file(out_path);
  *err = nnc_test_read_file(err_path);
  if (!*out) *out = calloc(1, 1);
  if (!*err) *err = calloc(1, 1);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

int nnc_test_main(Suite *suite) {
  SRunner *runner = srunner_create(suite);
  srunner_run_all(runner, CK_NORMAL);
  int failed = srunner_ntests_failed(runner);
  srunner_free(runner);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

const nnc_options *nnc_test_options(void) {
  static nnc_options o;
  nnc_status st = {0};
  ck_assert_msg(nnc_options_from_env(&o, &st) == 0, "%s", st.msg);
  return &o;
}
