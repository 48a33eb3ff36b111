/* Runs Lua snippets against the front end's C modules from Check tests. */
#ifndef NNC_TEST_LUA_HARNESS_H
#define NNC_TEST_LUA_HARNESS_H

#include <check.h>
#include <lua.h>
#include <string.h>

/* A state with the standard libraries, the tensor metatable and the global
 * `data`, as scripts see them. */
lua_State *nnc_test_lua_new(void);
/* Runs a chunk; NULL when it succeeds, else the error message (kept until
 * a few calls later). This and the two below first read the environment
 * into the run's settings, as nnc does when it starts (frontend/options.c). */
const char *nnc_test_lua_run(lua_State *L, const char *code);
/* tostring() of an expression's value, or "error: <message>". */
const char *nnc_test_lua_str(lua_State *L, const char *expr);
/* An expression's value as a number; fails the test if it is not one. */
double nnc_test_lua_num(lua_State *L, const char *expr);

#define NNC_LUA_OK(L, code)                                \
  do {                                                     \
    const char *err_ = nnc_test_lua_run(L, code);          \
    ck_assert_msg(!err_, "%s\n  running: %s", err_, code); \
  } while (0)

/* The chunk must fail with a message containing `needle`. */
#define NNC_LUA_FAILS(L, code, needle)                                             \
  do {                                                                             \
    const char *err_ = nnc_test_lua_run(L, code);                                  \
    ck_assert_msg(err_, "expected an error from: %s", code);                       \
    ck_assert_msg(strstr(err_, needle), "error\n  %s\nlacks\n  %s", err_, needle); \
  } while (0)

#endif
