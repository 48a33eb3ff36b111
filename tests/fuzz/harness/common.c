#include "common.h"

#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "frontend/script.h"

static char file_path[4096];

static void remove_file(void) { unlink(file_path); }

const char *fuzz_file(const uint8_t *data, size_t size) {
  if (!file_path[0]) {
    const char *dir = getenv("TMPDIR");
    snprintf(file_path, sizeof file_path, "%s/nnc-fuzz-XXXXXX", dir && *dir ? dir : "/tmp");
    int fd = mkstemp(file_path);
    if (fd < 0) fuzz_fail("cannot make a temporary file in %s", dir && *dir ? dir : "/tmp");
    close(fd);
    atexit(remove_file);
  }
  FILE *f = fopen(file_path, "wb");
  if (!f || fwrite(data, 1, size, f) != size || fclose(f)) fuzz_fail("cannot write %s", file_path);
  return file_path;
}

char *fuzz_string(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) fuzz_fail("out of memory");
  memcpy(s, data, size);
  s[size] = 0;
  return s;
}

static struct lua_State *state;

static void close_lua(void) { lua_close(state); }

struct lua_State *fuzz_lua(void) {
  if (state) return state;
  nnc_script_args args = {.path = "fuzz"};
  args.config.dry_run = 1;
  nnc_status st = {0};
  state = nnc_script_state(&args, &st);
  if (!state) fuzz_fail("cannot make the Lua state: %s", st.msg);
  atexit(close_lua);
  return state;
}

void fuzz_outcome(const char *err) {
  static int expect = -1;
  if (expect < 0) {
    const char *e = getenv("NNC_FUZZ_EXPECT");
    expect = e && !strcmp(e, "accept");
  }
  if (err && expect) fuzz_fail("a seed input was refused: %s", err);
}

void fuzz_lua_outcome(struct lua_State *L, int rc) {
  const char *msg = lua_tostring(L, -1);
  fuzz_outcome(rc == LUA_OK ? NULL : msg ? msg : "an error that is not a string");
}

void fuzz_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("fuzz: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}
