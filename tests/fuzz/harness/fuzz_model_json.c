/* The model JSON nn.load_model reads (frontend/bind_json.c, then
 * frontend/lua/saving.lua's builder): the input is model_config, and after a
 * NUL byte, if there is one, training_config. Only the JSON is fuzzed: the
 * file's HDF5 side has its own harness (fuzz_h5.c), so core.h5_config hands
 * the input over and the state's --dry-run keeps the weights unread.
 *
 * Loading may fail, but only with nnc's own message, which names the
 * script line (here fuzz.lua:1): an error from inside nnc's Lua ("attempt
 * to index a nil value") means a part of the file was used unchecked. */
#include <lauxlib.h>
#include <string.h>

#include "common.h"

/* Finds nn.load_model's `core` upvalue and makes its h5_config return the
 * globals FUZZ_MODEL and FUZZ_TRAINING; then defines the script line. */
static const char setup[] =
    "local i = 1\n"
    "while true do\n"
    "  local name, value = debug.getupvalue(nn.load_model, i)\n"
    "  if not name then error('nn.load_model does not use core') end\n"
    "  if name == 'core' then\n"
    "    value.h5_config = function() return FUZZ_MODEL, FUZZ_TRAINING end\n"
    "    break\n"
    "  end\n"
    "  i = i + 1\n"
    "end\n";

/* A chunk named as a script file is, so messages name its line (not a
 * tail call, which would leave no frame to name). */
static const char script[] = "local model = nn.load_model(...)\nreturn model";

static lua_State *state(void) {
  static lua_State *L;
  if (L) return L;
  L = fuzz_lua();
  if (luaL_dostring(L, setup) || luaL_loadbuffer(L, script, sizeof script - 1, "@fuzz.lua"))
    fuzz_fail("%s", lua_tostring(L, -1));
  lua_setglobal(L, "FUZZ_SCRIPT");
  return L;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = state();
  const uint8_t *nul = memchr(data, 0, size);
  size_t model_len = nul ? (size_t)(nul - data) : size;
  lua_pushlstring(L, (const char *)data, model_len);
  lua_setglobal(L, "FUZZ_MODEL");
  if (nul)
    lua_pushlstring(L, (const char *)nul + 1, size - model_len - 1);
  else
    lua_pushnil(L);
  lua_setglobal(L, "FUZZ_TRAINING");
  lua_getglobal(L, "FUZZ_SCRIPT");
  lua_pushstring(L, "fuzz.h5");
  int rc = lua_pcall(L, 1, 1, 0);
  const char *msg = lua_tostring(L, -1);
  if (rc != LUA_OK && (!msg || !strstr(msg, "fuzz.lua:1")))
    fuzz_fail("load_model failed without naming the script line: %s", msg ? msg : "(not a string)");
  fuzz_lua_outcome(L, rc);
  lua_settop(L, 0);
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}
