/* The bridge between fit's callback events (runtime/train/fit.h) and Keras-style
 * callbacks written in Lua (frontend/lua/callbacks.lua), and the C state
 * machine behind nn.EarlyStopping (runtime/train/early_stopping.c). */
#include <lauxlib.h>
#include <string.h>

#include "frontend/bind.h"
#include "runtime/train/early_stopping.h"

#define NNC_EARLY_STOPPING_META "nnc.early_stopping"

static void push_logs(lua_State *L, const nnc_logs *logs) {
  lua_createtable(L, 0, logs ? logs->n : 0);
  for (int k = 0; logs && k < logs->n; k++) {
    lua_pushnumber(L, logs->values[k]);
    lua_setfield(L, -2, logs->names[k]);
  }
}

/* A Lua error in a callback ends fit with its message; fit unwinds and
 * frees before the error is raised again, so nothing leaks. */
static int lua_event(void *ctx, nnc_fit_event ev, int64_t index, const nnc_logs *logs, nnc_status *st) {
  nnc_lua_callbacks *b = ctx;
  lua_State *L = b->L;
  lua_pushvalue(L, b->dispatch);
  lua_pushstring(L, nnc_fit_event_names[ev]);
  if (index >= 0) lua_pushinteger(L, index);
  else lua_pushnil(L);
  push_logs(L, logs);
  if (lua_pcall(L, 3, 1, 0) != LUA_OK) {
    const char *msg = lua_tostring(L, -1);
    nnc_fail(st, "%s", msg ? msg : "a callback raised an error that is not a string");
    lua_pop(L, 1);
    b->failed = 1;
    return -1;
  }
  int stop = lua_toboolean(L, -1);
  lua_pop(L, 1);
  return stop;
}

nnc_callbacks nnc_lua_callbacks_of(lua_State *L, int dispatch, int wanted, nnc_lua_callbacks *bridge) {
  luaL_checktype(L, dispatch, LUA_TFUNCTION);
  luaL_checktype(L, wanted, LUA_TTABLE);
  *bridge = (nnc_lua_callbacks){L, lua_absindex(L, dispatch), 0};
  unsigned mask = 0;
  for (int ev = 0; ev < NNC_FIT_EVENTS; ev++) {
    lua_getfield(L, wanted, nnc_fit_event_names[ev]);
    if (lua_toboolean(L, -1)) mask |= 1u << ev;
    lua_pop(L, 1);
  }
  return (nnc_callbacks){bridge, mask, lua_event};
}

static double field_number(lua_State *L, int t, const char *key, double def) {
  lua_getfield(L, t, key);
  double v = luaL_optnumber(L, -1, def);
  lua_pop(L, 1);
  return v;
}

/* core.early_stopping{monitor, patience, min_delta, mode, restore_best_weights,
 * baseline, start_from_epoch} -> state; the options are checked in Lua first. */
static int l_early_stopping(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "monitor");
  lua_getfield(L, 1, "mode");
  const char *monitor = luaL_optstring(L, -2, "val_loss"), *mode = luaL_optstring(L, -1, "auto");
  lua_getfield(L, 1, "restore_best_weights");
  int restore = lua_toboolean(L, -1);
  nnc_early_stopping *es = lua_newuserdatauv(L, sizeof *es, 0);
  nnc_status st = {0};
  if (nnc_early_stopping_init(es, monitor, (int)field_number(L, 1, "patience", 0), field_number(L, 1, "min_delta", 0),
                              mode, restore, &st))
    return nnc_lua_raise_here(L, &st);
  lua_getfield(L, 1, "baseline");
  es->has_baseline = lua_isnumber(L, -1);
  es->baseline = lua_tonumber(L, -1);
  lua_pop(L, 1);
  es->start_from_epoch = (int)field_number(L, 1, "start_from_epoch", 0);
  luaL_setmetatable(L, NNC_EARLY_STOPPING_META);
  return 1;
}

/* state:reset() at on_train_begin, as Keras. */
static int l_es_reset(lua_State *L) {
  nnc_early_stopping_reset(luaL_checkudata(L, 1, NNC_EARLY_STOPPING_META));
  return 0;
}

/* state:on_epoch(epoch, value) -> stop, snapshot, restore: whether to stop,
 * to copy the weights now, to load the copy now. */
static int l_es_on_epoch(lua_State *L) {
  nnc_early_stopping *es = luaL_checkudata(L, 1, NNC_EARLY_STOPPING_META);
  int stop = nnc_early_stopping_on_epoch(es, (int)luaL_checkinteger(L, 2), luaL_checknumber(L, 3), NULL);
  lua_pushboolean(L, stop);
  lua_pushboolean(L, es->snapshot);
  lua_pushboolean(L, es->restore);
  return 3;
}

/* state:stopped_epoch(), state:best_epoch() (0-based, as Keras keeps them). */
static int l_es_stopped_epoch(lua_State *L) {
  lua_pushinteger(L, ((nnc_early_stopping *)luaL_checkudata(L, 1, NNC_EARLY_STOPPING_META))->stopped_epoch);
  return 1;
}

static int l_es_best_epoch(lua_State *L) {
  lua_pushinteger(L, ((nnc_early_stopping *)luaL_checkudata(L, 1, NNC_EARLY_STOPPING_META))->best_epoch);
  return 1;
}

void nnc_lua_open_callbacks(lua_State *L, int core_index) {
  static const luaL_Reg methods[] = {{"reset", l_es_reset},
                                     {"on_epoch", l_es_on_epoch},
                                     {"stopped_epoch", l_es_stopped_epoch},
                                     {"best_epoch", l_es_best_epoch},
                                     {NULL, NULL}};
  luaL_newmetatable(L, NNC_EARLY_STOPPING_META);
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_early_stopping);
  lua_setfield(L, core_index, "early_stopping");
}
