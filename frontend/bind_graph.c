/* Lua bindings for building graphs: the graph userdata and its methods. */
#include <float.h>
#include <lauxlib.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/bind.h"
#include "ir/op.h"
#include "ir/text.h"
#include "runtime/comm.h"
#include "runtime/rng.h"

typedef struct graph_ud {
  nnc_graph *g;
} graph_ud;

nnc_graph *nnc_lua_checkgraph(lua_State *L, int idx) {
  graph_ud *ud = luaL_checkudata(L, idx, NNC_GRAPH_META);
  return ud->g;
}

static int l_where(lua_State *L) {
  const char *file;
  int line;
  if (!nnc_lua_script_where(L, &file, &line)) return 0;
  lua_pushstring(L, file);
  lua_pushinteger(L, line);
  return 2;
}

/* core.closest(name, {choices}) -> the nearest valid name, or nil */
static int l_closest(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  int n = (int)luaL_len(L, 2);
  const char **choices = lua_newuserdatauv(L, sizeof *choices * (size_t)(n + 1), 0);
  for (int i = 0; i < n; i++) {
    lua_geti(L, 2, i + 1);
    choices[i] = lua_tostring(L, -1);
    lua_pop(L, 1); /* the strings stay alive in the table */
    if (!choices[i]) return luaL_error(L, "choices must be strings");
  }
  choices[n] = NULL;
  const char *best = nnc_closest_name(name, choices);
  if (best) lua_pushstring(L, best);
  else lua_pushnil(L);
  return 1;
}

/* core.stream_of(name) -> the random stream a layer draws from */
static int l_stream_of(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)(nnc_rng_stream_of(luaL_checkstring(L, 1)) & 0x7fffffff));
  return 1;
}

static int l_graph_new(lua_State *L) {
  graph_ud *ud = lua_newuserdatauv(L, sizeof *ud, 0);
  ud->g = NULL;
  luaL_setmetatable(L, NNC_GRAPH_META);
  ud->g = nnc_graph_new();
  return 1;
}

static int l_graph_gc(lua_State *L) {
  graph_ud *ud = luaL_checkudata(L, 1, NNC_GRAPH_META);
  nnc_graph_free(ud->g);
  ud->g = NULL;
  return 0;
}

/* Reads a Lua array of integers into dims; returns the count. */
static int read_dims(lua_State *L, int idx, int64_t *dims, int max, const char *what) {
  luaL_checktype(L, idx, LUA_TTABLE);
  int n = (int)luaL_len(L, idx);
  if (n > max) luaL_error(L, "%s has %d axes; at most %d are supported", what, n, max);
  for (int i = 0; i < n; i++) {
    lua_geti(L, idx, i + 1);
    int ok;
    dims[i] = lua_tointegerx(L, -1, &ok);
    if (!ok) luaL_error(L, "%s: axis %d is not an integer", what, i + 1);
    lua_pop(L, 1);
  }
  return n;
}

static int push_id(lua_State *L, int32_t id, const nnc_status *st) {
  if (id < 0) return nnc_lua_raise(L, st);
  lua_pushinteger(L, id);
  return 1;
}

/* g:leaf("input"|"param"|"state", name, {dims}, dtype?) -> id */
static int l_graph_leaf(lua_State *L) {
  nnc_graph *g = nnc_lua_checkgraph(L, 1);
  const char *kind = luaL_checkstring(L, 2);
  nnc_node_spec spec;
  memset(&spec, 0, sizeof spec);
  spec.op = !strcmp(kind, "param") ? NNC_OP_PARAM : !strcmp(kind, "state") ? NNC_OP_STATE : NNC_OP_INPUT;
  spec.name = luaL_checkstring(L, 3);
  spec.rank = read_dims(L, 4, spec.shape, NNC_MAX_RANK, spec.name);
  spec.dtype = strcmp(luaL_optstring(L, 5, "f32"), "i32") == 0 ? NNC_I32 : NNC_F32;
  nnc_status st = {0};
  return push_id(L, nnc_graph_add(g, &spec, &st), &st);
}

/* Where an attribute read for the op about to be built is reported: the
 * graph's current layer and script line, as shape errors are. */
typedef struct attr_ctx {
  lua_State *L;
  nnc_graph *g;
  nnc_op op;
  int idx;
} attr_ctx;

static _Noreturn void attr_fail(const attr_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static _Noreturn void attr_fail(const attr_ctx *c, const char *fmt, ...) {
  char what[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  nnc_node n;
  memset(&n, 0, sizeof n);
  n.op = c->op;
  n.loc = c->g->loc;
  nnc_status st = {0};
  nnc_infer_fail(c->g, &n, &st, "%s", what);
  nnc_lua_raise(c->L, &st);
  abort(); /* lua_error does not return */
}

/* An integer attribute, range-checked: the attribute struct holds int32, and
 * a kernel of 2^32 cut to 0 would be reported as something it is not. */
static int32_t attr_int32(const attr_ctx *c, const char *key) {
  int whole;
  lua_Integer v = lua_tointegerx(c->L, -1, &whole);
  if (!whole) attr_fail(c, "%s must be an integer, got %s", key, luaL_tolstring(c->L, -1, NULL));
  if (v < INT32_MIN || v > INT32_MAX)
    attr_fail(c, "%s %lld is out of range (at most %d)", key, (long long)v, INT32_MAX);
  return (int32_t)v;
}

static void read_pair(const attr_ctx *c, const char *key, int32_t out[2]) {
  lua_State *L = c->L;
  lua_getfield(L, c->idx, key);
  if (lua_istable(L, -1)) {
    for (int i = 0; i < 2; i++) {
      lua_geti(L, -1, i + 1);
      out[i] = attr_int32(c, key);
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    out[0] = out[1] = attr_int32(c, key);
  }
  lua_pop(L, 1);
}

static int32_t read_int(const attr_ctx *c, const char *key) {
  lua_getfield(c->L, c->idx, key);
  int32_t v = lua_isnil(c->L, -1) ? 0 : attr_int32(c, key);
  lua_pop(c->L, 1);
  return v;
}

/* A float attribute: a double beyond FLT_MAX does not convert to float
 * (undefined behaviour; in practice inf, which the text form cannot hold). */
static float read_float(const attr_ctx *c, const char *key) {
  lua_getfield(c->L, c->idx, key);
  double v = lua_isnil(c->L, -1) ? 0 : luaL_checknumber(c->L, -1);
  lua_pop(c->L, 1);
  if (!(fabs(v) <= FLT_MAX)) attr_fail(c, "%s is %g, outside the range of a 32-bit float", key, v);
  return (float)v;
}

static void read_attrs(const attr_ctx *c, nnc_attrs *a) {
  lua_State *L = c->L;
  int idx = c->idx;
  memset(a, 0, sizeof *a);
  if (lua_isnoneornil(L, idx)) return;
  luaL_checktype(L, idx, LUA_TTABLE);
  read_pair(c, "stride", a->stride);
  read_pair(c, "window", a->window);
  lua_getfield(L, idx, "pad");
  a->pad = lua_isstring(L, -1) && strcmp(lua_tostring(L, -1), "same") == 0 ? NNC_PAD_SAME : NNC_PAD_VALID;
  lua_pop(L, 1);
  a->trans_a = read_int(c, "trans_a");
  a->trans_b = read_int(c, "trans_b");
  a->stream = read_int(c, "stream");
  a->rate = read_float(c, "rate");
  a->alpha = read_float(c, "alpha");
  a->eps = read_float(c, "eps");
  a->index = read_int(c, "index");
  lua_getfield(L, idx, "shape");
  if (lua_istable(L, -1))
    a->shape_rank = read_dims(L, lua_gettop(L), a->shape, NNC_MAX_RANK - 1, "reshape target");
  lua_pop(L, 1);
}

/* g:op(name, {src ids}, {attrs}) -> id */
static int l_graph_op(lua_State *L) {
  nnc_graph *g = nnc_lua_checkgraph(L, 1);
  const char *name = luaL_checkstring(L, 2);
  nnc_op op = nnc_op_by_name(name);
  if (op == NNC_OP_COUNT) return luaL_error(L, "unknown op '%s'", name);
  luaL_checktype(L, 3, LUA_TTABLE);
  int32_t src[NNC_MAX_SRC];
  int nsrc = (int)luaL_len(L, 3);
  if (nsrc > NNC_MAX_SRC) return luaL_error(L, "too many operands for %s", name);
  for (int i = 0; i < nsrc; i++) {
    lua_geti(L, 3, i + 1);
    src[i] = (int32_t)luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  nnc_attrs attrs;
  attr_ctx ctx = {L, g, op, 4};
  read_attrs(&ctx, &attrs);
  nnc_status st = {0};
  return push_id(L, nnc_graph_op(g, op, src, nsrc, &attrs, &st), &st);
}

/* g:set_loc(layer, layer_type, file, line) */
static int l_graph_set_loc(lua_State *L) {
  nnc_graph *g = nnc_lua_checkgraph(L, 1);
  nnc_graph_set_loc(g, luaL_optstring(L, 2, NULL), luaL_optstring(L, 3, NULL), luaL_optstring(L, 4, NULL),
                    (int)luaL_optinteger(L, 5, 0));
  return 0;
}

static nnc_node *check_node(lua_State *L, nnc_graph *g, int idx) {
  lua_Integer id = luaL_checkinteger(L, idx);
  luaL_argcheck(L, id >= 0 && id < g->nnodes, idx, "no such node");
  return &g->nodes[id];
}

/* g:type(id) -> dtype, {dims} (the batch axis is -1 while symbolic) */
static int l_graph_type(lua_State *L) {
  nnc_graph *g = nnc_lua_checkgraph(L, 1);
  const nnc_node *n = check_node(L, g, 2);
  lua_pushstring(L, nnc_dtype_name(n->dtype));
  lua_createtable(L, n->rank, 0);
  for (int i = 0; i < n->rank; i++) {
    lua_pushinteger(L, n->shape[i]);
    lua_rawseti(L, -2, i + 1);
  }
  return 2;
}

/* g:freeze(id): the param leaf id becomes a state, a weight that does not train. */
static int l_graph_freeze(lua_State *L) {
  nnc_graph *g = nnc_lua_checkgraph(L, 1);
  nnc_status st = {0};
  if (nnc_graph_freeze(g, (int32_t)luaL_checkinteger(L, 2), &st)) return nnc_lua_raise(L, &st);
  return 0;
}

static int l_graph_output(lua_State *L) {
  nnc_graph *g = nnc_lua_checkgraph(L, 1);
  nnc_status st = {0};
  if (nnc_graph_add_output(g, luaL_checkstring(L, 2), (int32_t)luaL_checkinteger(L, 3), &st))
    return nnc_lua_raise(L, &st);
  return 0;
}

static int l_graph_text(lua_State *L) {
  char *text = nnc_graph_to_text(nnc_lua_checkgraph(L, 1));
  lua_pushstring(L, text);
  free(text);
  return 1;
}

/* g:compile(label) runs the front-end pipeline with the --dump-ir settings. */
static int l_graph_compile(lua_State *L) {
  graph_ud *ud = luaL_checkudata(L, 1, NNC_GRAPH_META);
  const nnc_options *opts = &nnc_lua_config(L)->opts;
  nnc_dump_opts dump = opts->dump;
  dump.label = luaL_optstring(L, 2, "forward");
  const nnc_pass *passes[] = {&nnc_pass_verify, &nnc_pass_infer_shapes};
  nnc_pass_ctx ctx = {.opts = opts, .batch = NNC_DIM_ANY};
  nnc_status st = {0};
  if (nnc_pass_run(&ud->g, passes, 2, &ctx, &dump, &st)) return nnc_lua_raise(L, &st);
  return 0;
}

void nnc_lua_open_graph(lua_State *L, const nnc_run_config *config) {
  static const luaL_Reg graph_methods[] = {
      {"leaf", l_graph_leaf},     {"op", l_graph_op},         {"set_loc", l_graph_set_loc},
      {"type", l_graph_type},     {"output", l_graph_output}, {"freeze", l_graph_freeze}, {"text", l_graph_text},
      {"compile", l_graph_compile}, {NULL, NULL}};
  luaL_newmetatable(L, NNC_GRAPH_META);
  lua_pushcfunction(L, l_graph_gc);
  lua_setfield(L, -2, "__gc");
  luaL_newlib(L, graph_methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);

  static const luaL_Reg core[] = {{"graph", l_graph_new},
                                  {"where", l_where},
                                  {"closest", l_closest},
                                  {"stream_of", l_stream_of},
                                  {NULL, NULL}};
  luaL_newlib(L, core);
  lua_pushinteger(L, (lua_Integer)config->seed);
  lua_setfield(L, -2, "seed");
  lua_pushboolean(L, config->dry_run);
  lua_setfield(L, -2, "dry_run");
  lua_pushboolean(L, config->bench.enabled);
  lua_setfield(L, -2, "bench_mode");
  lua_pushboolean(L, config->check.enabled);
  lua_setfield(L, -2, "check_mode");
  lua_pushinteger(L, config->comm ? nnc_comm_rank(config->comm) : 0);
  lua_setfield(L, -2, "rank");
}
