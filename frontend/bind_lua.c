/* What every binding file uses: nnc's errors raised in Lua, the script line
 * of a call, and the run's settings. It depends on no other binding file, so
 * the bindings depend on it and not on each other; frontend/script.c opens
 * them all, in one list. */
#include <lauxlib.h>

#include "frontend/bind.h"

int nnc_lua_raise(lua_State *L, const nnc_status *st) {
  lua_pushstring(L, st->msg);
  return lua_error(L);
}

int nnc_lua_raise_here(lua_State *L, const nnc_status *st) {
  const char *file;
  int line;
  if (nnc_lua_script_where(L, &file, &line)) lua_pushfstring(L, "%s:%d: %s", file, line, st->msg);
  else lua_pushstring(L, st->msg);
  return lua_error(L);
}

static const char *const config_key = "nnc.config";

void nnc_lua_set_config(lua_State *L, const nnc_run_config *config) {
  nnc_run_config *copy = lua_newuserdatauv(L, sizeof *copy, 0);
  *copy = *config;
  lua_setfield(L, LUA_REGISTRYINDEX, config_key);
}

const nnc_run_config *nnc_lua_config(lua_State *L) {
  lua_getfield(L, LUA_REGISTRYINDEX, config_key);
  const nnc_run_config *c = lua_touserdata(L, -1);
  lua_pop(L, 1);
  return c;
}

int nnc_lua_script_where(lua_State *L, const char **file, int *line) {
  lua_Debug ar;
  for (int level = 1; lua_getstack(L, level, &ar); level++) {
    lua_getinfo(L, "Sl", &ar);
    if (ar.source[0] == '@' && ar.currentline > 0) {
      *file = ar.source + 1;
      *line = ar.currentline;
      return 1;
    }
  }
  return 0;
}
