/* JSON for the Lua side (Keras's model_config and training_config) through
 * jansson. In Lua a JSON object is a table, an array is a table whose
 * metatable is core.json_array (so an empty array stays an array), and null
 * is core.json_null. Objects are written with sorted keys, so the same model
 * always gives the same text. */
#include <jansson.h>
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/bind.h"
#include "ir/status.h"

#define JSON_ARRAY_META "nnc.json_array"
/* Deeper nesting than any model config, and a bound on recursion for hostile files. */
#define MAX_DEPTH 64

static void push_json(lua_State *L, const json_t *v, int depth) {
  luaL_checkstack(L, 4, "JSON nesting");
  switch (json_typeof(v)) {
  case JSON_OBJECT: {
    const char *key;
    json_t *item;
    lua_createtable(L, 0, (int)json_object_size(v));
    json_object_foreach((json_t *)v, key, item) {
      push_json(L, item, depth + 1);
      lua_setfield(L, -2, key);
    }
    return;
  }
  case JSON_ARRAY: {
    lua_createtable(L, (int)json_array_size(v), 0);
    for (size_t i = 0; i < json_array_size(v); i++) {
      push_json(L, json_array_get(v, i), depth + 1);
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    luaL_setmetatable(L, JSON_ARRAY_META);
    return;
  }
  case JSON_STRING: lua_pushlstring(L, json_string_value(v), json_string_length(v)); return;
  case JSON_INTEGER: lua_pushinteger(L, (lua_Integer)json_integer_value(v)); return;
  case JSON_REAL: lua_pushnumber(L, json_real_value(v)); return;
  case JSON_TRUE: lua_pushboolean(L, 1); return;
  case JSON_FALSE: lua_pushboolean(L, 0); return;
  case JSON_NULL: lua_pushlightuserdata(L, NULL); return;
  }
}

/* core.json_decode(text) -> value, or nil and the parser's message */
static int l_json_decode(lua_State *L) {
  size_t len;
  const char *text = luaL_checklstring(L, 1, &len);
  json_error_t error;
  json_t *v = json_loadb(text, len, JSON_DECODE_ANY, &error);
  if (!v) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s at line %d, column %d", error.text, error.line, error.column);
    return 2;
  }
  push_json(L, v, 0);
  json_decref(v);
  return 1;
}

static int is_array(lua_State *L, int idx) {
  if (lua_getmetatable(L, idx)) {
    luaL_getmetatable(L, JSON_ARRAY_META);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (same) return 1;
  }
  return lua_rawlen(L, idx) > 0;
}

static int by_string(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* NULL with *why set on what JSON cannot hold (a function, a key that is not a string). */
static json_t *to_json(lua_State *L, int idx, int depth, const char **why);

static json_t *object_of(lua_State *L, int idx, int depth, const char **why) {
  int n = 0;
  for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      lua_pop(L, 2);
      *why = "JSON object keys must be strings";
      return NULL;
    }
    n++;
  }
  const char **keys = malloc(sizeof *keys * (size_t)(n ? n : 1));
  if (!keys) nnc_out_of_memory("reading a model JSON");
  n = 0;
  for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) keys[n++] = lua_tostring(L, -2);
  qsort(keys, (size_t)n, sizeof *keys, by_string);
  json_t *obj = json_object();
  for (int i = 0; i < n; i++) {
    lua_getfield(L, idx, keys[i]);
    json_t *item = to_json(L, lua_gettop(L), depth + 1, why);
    lua_pop(L, 1);
    if (!item) {
      json_decref(obj);
      obj = NULL;
      break;
    }
    json_object_set_new(obj, keys[i], item);
  }
  free(keys);
  return obj;
}

static json_t *to_json(lua_State *L, int idx, int depth, const char **why) {
  if (depth > MAX_DEPTH) return *why = "JSON nested too deeply", NULL;
  luaL_checkstack(L, 4, "JSON nesting");
  switch (lua_type(L, idx)) {
  case LUA_TNIL: return json_null();
  case LUA_TLIGHTUSERDATA: return json_null();
  case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
  case LUA_TNUMBER:
    if (lua_isinteger(L, idx)) return json_integer((json_int_t)lua_tointeger(L, idx));
    if (!isfinite(lua_tonumber(L, idx))) return *why = "JSON cannot hold inf or nan", NULL;
    return json_real(lua_tonumber(L, idx));
  case LUA_TSTRING: {
    size_t len;
    const char *s = lua_tolstring(L, idx, &len);
    return json_stringn(s, len);
  }
  case LUA_TTABLE:
    if (is_array(L, idx)) {
      json_t *arr = json_array();
      for (lua_Integer i = 1; i <= (lua_Integer)lua_rawlen(L, idx); i++) {
        lua_rawgeti(L, idx, i);
        json_t *item = to_json(L, lua_gettop(L), depth + 1, why);
        lua_pop(L, 1);
        if (!item) return json_decref(arr), NULL;
        json_array_append_new(arr, item);
      }
      return arr;
    }
    return object_of(L, idx, depth, why);
  default: return *why = "JSON cannot hold a function or userdata", NULL;
  }
}

/* core.json_encode(value) -> text */
static int l_json_encode(lua_State *L) {
  lua_settop(L, 1);
  const char *why = NULL;
  json_t *v = to_json(L, 1, 0, &why);
  if (!v) return luaL_error(L, "%s", why);
  char *text = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_REAL_PRECISION(17));
  json_decref(v);
  if (!text) return luaL_error(L, "cannot encode JSON");
  lua_pushstring(L, text);
  free(text);
  return 1;
}

void nnc_lua_open_json(lua_State *L, int core_index) {
  static const luaL_Reg functions[] = {{"json_decode", l_json_decode}, {"json_encode", l_json_encode}, {NULL, NULL}};
  lua_pushvalue(L, core_index);
  luaL_setfuncs(L, functions, 0);
  luaL_newmetatable(L, JSON_ARRAY_META);
  lua_setfield(L, -2, "json_array");
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "json_null");
  lua_pop(L, 1);
}
