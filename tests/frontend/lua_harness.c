#include "tests/frontend/lua_harness.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>

#include "frontend/bind.h"
#include "frontend/datasets.h"
#include "frontend/tensor.h"
#include "tests/testutil.h"

/* Results live in rotating slots so a test can compare two of them. */
static const char *keep(const char *s) {
  static char slots[4][8192];
  static int next;
  char *slot = slots[next++ % 4];
  snprintf(slot, sizeof slots[0], "%s", s);
  return slot;
}

/* The run's settings as nnc would read them now, so that a test's setenv
 * reaches the data set loader as the command line's environment would. */
static void read_environment(lua_State *L) {
  nnc_run_config config = {.opts = *nnc_test_options()};
  nnc_lua_set_config(L, &config);
}

lua_State *nnc_test_lua_new(void) {
  lua_State *L = luaL_newstate();
  luaL_openlibs(L);
  nnc_lua_open_tensor(L);
  nnc_lua_open_data(L);
  lua_setglobal(L, "data");
  nnc_lua_open_datasets(L);
  lua_setglobal(L, "datasets");
  return L;
}

const char *nnc_test_lua_run(lua_State *L, const char *code) {
  read_environment(L);
  if (luaL_loadstring(L, code) == LUA_OK && lua_pcall(L, 0, 0, 0) == LUA_OK) return NULL;
  const char *msg = keep(lua_tostring(L, -1) ? lua_tostring(L, -1) : "(error object is not a string)");
  lua_pop(L, 1);
  return msg;
}

/* Leaves the expression's value (or the error message) on the stack. */
static int eval(lua_State *L, const char *expr) {
  read_environment(L);
  lua_pushfstring(L, "return %s", expr);
  int rc = luaL_loadstring(L, lua_tostring(L, -1));
  lua_remove(L, -2);
  if (rc == LUA_OK) rc = lua_pcall(L, 0, 1, 0);
  return rc;
}

const char *nnc_test_lua_str(lua_State *L, const char *expr) {
  int rc = eval(L, expr);
  const char *s =
      rc == LUA_OK ? luaL_tolstring(L, -1, NULL) : lua_pushfstring(L, "error: %s", lua_tostring(L, -1));
  const char *kept = keep(s);
  lua_pop(L, 2);
  return kept;
}

double nnc_test_lua_num(lua_State *L, const char *expr) {
  int rc = eval(L, expr);
  ck_assert_msg(rc == LUA_OK, "%s: %s", expr, lua_tostring(L, -1));
  ck_assert_msg(lua_type(L, -1) == LUA_TNUMBER, "%s is a %s, not a number", expr, luaL_typename(L, -1));
  double v = lua_tonumber(L, -1);
  lua_pop(L, 1);
  return v;
}
