/* The IDX reader (frontend/data.c) as scripts reach it: data.idx(path) on a
 * plain or gzip'd file. Any outcome but a Lua error or a tensor is a bug. */
#include <lauxlib.h>

#include "common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_lua();
  const char *path = fuzz_file(data, size);
  lua_getglobal(L, "data");
  lua_getfield(L, -1, "idx");
  lua_pushstring(L, path);
  int rc = lua_pcall(L, 1, 1, 0);
  fuzz_lua_outcome(L, rc);
  lua_settop(L, 0);
  /* The tensor's memory goes back now rather than when Lua gets round to it,
   * so large claims that do load cannot pile up. */
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
