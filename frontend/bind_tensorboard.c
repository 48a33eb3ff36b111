/* Lua bindings for TensorBoard's event writers (runtime/store/tensorboard.c):
 * core.tb_open(dir) returns a writer with scalar, histogram, images, graph,
 * flush and path; nn.TensorBoard (frontend/lua/tensorboard.lua) drives them. */
#include <lauxlib.h>
#include <string.h>

#include "frontend/bind.h"
#include "runtime/model.h"
#include "runtime/store/tensorboard.h"

#define NNC_TB_META "nnc.tb_writer"

static nnc_tb_writer **check_writer(lua_State *L) {
  nnc_tb_writer **w = luaL_checkudata(L, 1, NNC_TB_META);
  if (!*w) luaL_error(L, "the TensorBoard writer is closed");
  return w;
}

static int l_open(lua_State *L) {
  const char *dir = luaL_checkstring(L, 1);
  nnc_tb_writer **w = lua_newuserdatauv(L, sizeof *w, 0);
  *w = NULL;
  luaL_setmetatable(L, NNC_TB_META);
  nnc_status st = {0};
  if (!(*w = nnc_tb_open(dir, &st))) return nnc_lua_raise_here(L, &st);
  return 1;
}

static int l_gc(lua_State *L) {
  nnc_tb_writer **w = luaL_checkudata(L, 1, NNC_TB_META);
  nnc_tb_close(*w);
  *w = NULL;
  return 0;
}

/* w:scalar(tag, step, value) */
static int l_scalar(lua_State *L) {
  nnc_tb_writer **w = check_writer(L);
  nnc_tb_scalar(*w, luaL_checkstring(L, 2), luaL_checkinteger(L, 3), luaL_checknumber(L, 4));
  return 0;
}

/* w:histogram(tag, step, store, weight name) */
static int l_histogram(lua_State *L) {
  nnc_tb_writer **w = check_writer(L);
  nnc_model *m = luaL_checkudata(L, 4, NNC_STORE_META);
  const char *name = luaL_checkstring(L, 5);
  const nnc_weight *v = nnc_weights_find(nnc_model_weights(m), name);
  if (!v) return luaL_error(L, "the model has no weight named '%s'", name);
  nnc_tb_histogram(*w, luaL_checkstring(L, 2), luaL_checkinteger(L, 3), v->data, nnc_weight_numel(v));
  return 0;
}

/* w:images(tag, step, store, weight name) */
static int l_images(lua_State *L) {
  nnc_tb_writer **w = check_writer(L);
  nnc_model *m = luaL_checkudata(L, 4, NNC_STORE_META);
  const char *name = luaL_checkstring(L, 5);
  const nnc_weight *v = nnc_weights_find(nnc_model_weights(m), name);
  if (!v) return luaL_error(L, "the model has no weight named '%s'", name);
  nnc_status st = {0};
  if (nnc_tb_weight_images(*w, luaL_checkstring(L, 2), luaL_checkinteger(L, 3), v->rank, v->shape, v->data, &st))
    return nnc_lua_raise_here(L, &st);
  return 0;
}

/* w:graph(graph, store, batch): the train-step graph after fusion. */
static int l_graph(lua_State *L) {
  nnc_tb_writer **w = check_writer(L);
  const nnc_graph *g = nnc_lua_checkgraph(L, 2);
  nnc_model *m = luaL_checkudata(L, 3, NNC_STORE_META);
  nnc_status st = {0};
  nnc_compiled *c = nnc_model_compiled(m, g, NNC_KIND_TRAIN, luaL_checkinteger(L, 4), &st);
  if (!c) return nnc_lua_raise_here(L, &st);
  nnc_tb_graph(*w, c->g);
  return 0;
}

static int l_flush(lua_State *L) {
  nnc_tb_writer **w = check_writer(L);
  nnc_status st = {0};
  if (nnc_tb_flush(*w, &st)) return nnc_lua_raise_here(L, &st);
  return 0;
}

static int l_path(lua_State *L) {
  lua_pushstring(L, nnc_tb_path(*check_writer(L)));
  return 1;
}

void nnc_lua_open_tensorboard(lua_State *L, int core_index) {
  static const luaL_Reg methods[] = {{"scalar", l_scalar}, {"histogram", l_histogram}, {"graph", l_graph},
                                     {"images", l_images}, {"flush", l_flush},   {"path", l_path},           {NULL, NULL}};
  luaL_newmetatable(L, NNC_TB_META);
  lua_pushcfunction(L, l_gc);
  lua_setfield(L, -2, "__gc");
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_open);
  lua_setfield(L, core_index, "tb_open");
}
