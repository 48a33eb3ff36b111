/* The embedded Lua state: standard libraries, then nnc's modules, then the
 * user's script under a message handler. */
#include "frontend/script.h"

#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <string.h>

#include "frontend/bind.h"
#include "frontend/bind_augment.h"
#include "frontend/datasets.h"
#include "frontend/lua_sources.h"
#include "frontend/tensor.h"
#include "runtime/backend.h"

/* nnc.option(name, default): `--name value` from the command line, converted
 * to the default's type so `--epochs 1` arrives as a number. */
static int l_option(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_getfield(L, LUA_REGISTRYINDEX, "nnc.options");
  lua_getfield(L, -1, name);
  if (lua_isnil(L, -1)) {
    lua_settop(L, 2);
    return 1;
  }
  const char *given = lua_tostring(L, -1);
  int kind = lua_type(L, 2);
  if (kind == LUA_TNUMBER) {
    if (!lua_stringtonumber(L, given))
      return luaL_error(L, "option --%s expects a number, got '%s'", name, given);
  } else if (kind == LUA_TBOOLEAN) {
    int on = !strcmp(given, "true") || !strcmp(given, "1") || !strcmp(given, "yes");
    if (!on && strcmp(given, "false") && strcmp(given, "0") && strcmp(given, "no"))
      return luaL_error(L, "option --%s expects true or false, got '%s'", name, given);
    lua_pushboolean(L, on);
  }
  return 1;
}

/* nnc.clock(): seconds on a monotonic wall clock, for timing steps
 * (os.clock is processor time, which counts every thread). */
static int l_clock(lua_State *L) {
  lua_pushnumber(L, (lua_Number)nnc_now());
  return 1;
}

static int set_options(lua_State *L, const nnc_script_args *args, nnc_status *st) {
  lua_newtable(L);
  for (int i = 0; i < args->nopts; i += 2) {
    const char *flag = args->opts[i];
    if (strncmp(flag, "--", 2) != 0 || !flag[2])
      return nnc_fail(st, "expected an option like --epochs 1 after the script, got '%s'", flag);
    if (i + 1 >= args->nopts) return nnc_fail(st, "option %s needs a value", flag);
    lua_pushstring(L, args->opts[i + 1]);
    lua_setfield(L, -2, flag + 2);
  }
  lua_setfield(L, LUA_REGISTRYINDEX, "nnc.options");
  return 0;
}

/* Loads frontend/lua/<name>.lua, calls it with `core`, and sets the result
 * as global `name`. Chunk names start with '=' so that node locations skip
 * these frames and cite the user's script. */
static int load_module(lua_State *L, const char *name, int core, nnc_status *st) {
  for (const nnc_lua_source *src = nnc_lua_sources; src->name; src++) {
    if (strcmp(src->name, name)) continue;
    char chunk[128];
    snprintf(chunk, sizeof chunk, "=[nnc]/%s.lua", name);
    if (luaL_loadbuffer(L, src->text, src->size, chunk) != LUA_OK ||
        (lua_pushvalue(L, core), lua_pcall(L, 1, 1, 0)) != LUA_OK) {
      nnc_fail(st, "internal error loading %s.lua: %s", name, lua_tostring(L, -1));
      lua_pop(L, 1);
      return -1;
    }
    lua_setglobal(L, name);
    return 0;
  }
  return nnc_fail(st, "internal error: no embedded module %s", name);
}

/* core.require(name): the embedded module frontend/lua/<name>.lua, called
 * with core, for modules that nn.lua builds on. */
static int l_require(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  for (const nnc_lua_source *src = nnc_lua_sources; src->name; src++) {
    if (strcmp(src->name, name)) continue;
    char chunk[128];
    snprintf(chunk, sizeof chunk, "=[nnc]/%s.lua", name);
    if (luaL_loadbuffer(L, src->text, src->size, chunk) != LUA_OK) return lua_error(L);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_call(L, 1, 1);
    return 1;
  }
  return luaL_error(L, "internal error: no embedded module %s", name);
}

lua_State *nnc_script_state(const nnc_script_args *args, nnc_status *st) {
  lua_State *L = luaL_newstate();
  if (!L) {
    nnc_fail(st, "cannot create a Lua state");
    return NULL;
  }
  luaL_openlibs(L);
  nnc_lua_open_tensor(L);
  nnc_lua_open_data(L);
  lua_setglobal(L, "data");
  nnc_lua_open_datasets(L);
  lua_setglobal(L, "datasets");
  nnc_lua_set_config(L, &args->config);
  nnc_lua_open_graph(L, &args->config);
  int core = lua_gettop(L);
  nnc_lua_open_weights(L, core);
  nnc_lua_open_model_data(L, core);
  nnc_lua_open_callbacks(L, core);
  nnc_lua_open_flow_fit(L, core);
  nnc_lua_open_files(L, core);
  nnc_lua_open_json(L, core);
  nnc_lua_open_tensorboard(L, core);
  lua_pushvalue(L, core);
  lua_pushcclosure(L, l_require, 1);
  lua_setfield(L, core, "require");
  lua_createtable(L, 0, 4);
  lua_pushcfunction(L, l_option);
  lua_setfield(L, -2, "option");
  lua_pushcfunction(L, l_clock);
  lua_setfield(L, -2, "clock");
  lua_pushstring(L, NNC_VERSION);
  lua_setfield(L, -2, "version");
  lua_setglobal(L, "nnc");
  if (set_options(L, args, st) || load_module(L, "nn", core, st)) {
    lua_close(L);
    return NULL;
  }
  lua_settop(L, 0);
  return L;
}

/* Every message names the script line. One raised inside nnc's own Lua (a
 * misuse no check caught, citing [nnc]/nn.lua) or with no place at all (a
 * Lua library function's) is put at the script line that led there:
 * "model.lua:5: <message> (in [nnc]/nn.lua:719)". */
static const char *at_script_line(lua_State *L, const char *msg) {
  const char *file, *rest = strstr(msg, ": ");
  int line;
  if (!nnc_lua_script_where(L, &file, &line)) return msg;
  if (!strncmp(msg, "[nnc]/", 6) && rest)
    return lua_pushfstring(L, "%s:%d: %s (in %s)", file, line, rest + 2,
                           lua_pushlstring(L, msg, (size_t)(rest - msg)));
  if (strstr(msg, file)) return msg;
  return lua_pushfstring(L, "%s:%d: %s", file, line, msg);
}

/* Keeps nnc's own messages as they are; adds a traceback for the user's
 * errors only when NNC_DEBUG asks for it. */
static int message_handler(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) msg = luaL_tolstring(L, 1, NULL);
  msg = at_script_line(L, msg);
  if (nnc_lua_config(L)->opts.debug > 0) luaL_traceback(L, L, msg, 1);
  else lua_pushstring(L, msg);
  return 1;
}

int nnc_script_run(const nnc_script_args *args, nnc_status *st) {
  lua_State *L = nnc_script_state(args, st);
  if (!L) return -1;
  if (args->config.bench.enabled || args->config.check.enabled) {
    /* The report is the output: the script's own prints would bury it. */
    luaL_dostring(L, "print = function() end");
  }
  lua_pushcfunction(L, message_handler);
  int rc = luaL_loadfile(L, args->path);
  if (rc == LUA_ERRFILE) {
    nnc_fail(st, "cannot open script %s", args->path);
  } else if (rc != LUA_OK) {
    nnc_fail(st, "%s", lua_tostring(L, -1));
  } else if (lua_pcall(L, 0, 0, 1) != LUA_OK) {
    nnc_fail(st, "%s", lua_tostring(L, -1));
    rc = -1;
  } else if (args->config.bench.enabled || args->config.check.enabled) {
    lua_getglobal(L, "nn");
    lua_getfield(L, -1, args->config.bench.enabled ? "_bench" : "_check");
    if (lua_pcall(L, 0, 0, 1) != LUA_OK) {
      nnc_fail(st, "%s", lua_tostring(L, -1));
      rc = -1;
    }
  }
  lua_close(L);
  return rc == LUA_OK ? 0 : -1;
}
