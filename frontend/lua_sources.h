/* The front end's Lua files, compiled into the binary by the build. */
#ifndef NNC_LUA_SOURCES_H
#define NNC_LUA_SOURCES_H

#include <stddef.h>

typedef struct nnc_lua_source {
  const char *name; /* module name: "nn" for frontend/lua/nn.lua */
  const char *path;
  const char *text;
  size_t size;
} nnc_lua_source;

extern const nnc_lua_source nnc_lua_sources[]; /* ends with a NULL name */

#endif
