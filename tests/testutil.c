#include "tests/testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "frontend/options.h"
#include "ir/text.h"

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

int nnc_test_dump_ir(const char *args, const char *pass, char *dir, size_t size, char **err) {
  char cmd[4096], *out;
  snprintf(dir, size, "%s", "/tmp/nnc-dump-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(cmd, sizeof cmd, "%s --dump-ir%s%s --dump-dir '%s'", args, pass ? "=" : "", pass ? pass : "", dir);
  int rc = nnc_test_run_cli(cmd, &out, err);
  free(out);
  return rc;
}

/* Whether name is KIND.NN-PASS.ir, NN any number. */
static int is_dump_of(const char *name, const char *kind, const char *pass) {
  size_t k = strlen(kind), p = strlen(pass);
  if (strncmp(name, kind, k) || name[k] != '.') return 0;
  const char *num = name + k + 1, *dash = num + strspn(num, "0123456789");
  return dash > num && *dash == '-' && !strncmp(dash + 1, pass, p) && !strcmp(dash + 1 + p, ".ir");
}

char *nnc_test_dump_path(const char *dir, const char *kind, const char *pass) {
  DIR *d = opendir(dir);
  ck_assert_msg(d != NULL, "cannot read %s", dir);
  char *path = NULL;
  for (struct dirent *e; (e = readdir(d)) != NULL;) {
    if (!is_dump_of(e->d_name, kind, pass)) continue;
    ck_assert_msg(!path, "two dumps of %s after %s in %s", kind, pass, dir);
    path = malloc(strlen(dir) + strlen(e->d_name) + 2);
    sprintf(path, "%s/%s", dir, e->d_name);
  }
  closedir(d);
  return path;
}

nnc_graph *nnc_test_read_dump(const char *dir, const char *kind, const char *pass, char **text) {
  char *path = nnc_test_dump_path(dir, kind, pass);
  ck_assert_msg(path != NULL, "no dump of %s after pass %s in %s", kind, pass, dir);
  char *body = nnc_test_read_file(path);
  ck_assert_msg(body != NULL, "cannot read %s", path);
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_parse(body, path, &st);
  ck_assert_msg(g != NULL, "%s", st.msg);
  free(path);
  if (text) *text = body;
  else free(body);
  return g;
}

void nnc_test_remove_dir(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}

nnc_graph *nnc_test_dumped_graph(const char *args, const char *kind, const char *pass) {
  char dir[64], *err;
  int rc = nnc_test_dump_ir(args, pass, dir, sizeof dir, &err);
  ck_assert_msg(rc == 0, "nnc %s: exit %d: %s", args, rc, err);
  free(err);
  nnc_graph *g = nnc_test_read_dump(dir, kind, pass, NULL);
  nnc_test_remove_dir(dir);
  return g;
}
