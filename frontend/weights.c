/* The weight store (parameter values by name, Keras initializers) and
 * model:predict through the interpreter. */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/bind.h"
#include "frontend/tensor.h"
#include "ir/op.h"
#include "runtime/interp.h"
#include "runtime/rng.h"

typedef struct weight {
  char *name;
  int rank;
  int64_t shape[NNC_MAX_RANK];
  float *data;
} weight;

typedef struct store {
  weight *w;
  int count, cap;
} store;

static store *check_store(lua_State *L, int idx) { return luaL_checkudata(L, idx, NNC_STORE_META); }

static weight *find_weight(store *s, const char *name) {
  for (int i = 0; i < s->count; i++)
    if (strcmp(s->w[i].name, name) == 0) return &s->w[i];
  return NULL;
}

static int64_t weight_numel(const weight *w) {
  int64_t n = 1;
  for (int i = 0; i < w->rank; i++) n *= w->shape[i];
  return n;
}

static int l_store_new(lua_State *L) {
  store *s = lua_newuserdatauv(L, sizeof *s, 0);
  memset(s, 0, sizeof *s);
  luaL_setmetatable(L, NNC_STORE_META);
  return 1;
}

static int l_store_gc(lua_State *L) {
  store *s = check_store(L, 1);
  for (int i = 0; i < s->count; i++) free(s->w[i].name), free(s->w[i].data);
  free(s->w);
  memset(s, 0, sizeof *s);
  return 0;
}

static double opt_field(lua_State *L, int idx, const char *key, double fallback) {
  lua_getfield(L, idx, key);
  double v = luaL_optnumber(L, -1, fallback);
  lua_pop(L, 1);
  return v;
}

/* Keras's truncated normal: values beyond two standard deviations are drawn
 * again. The stddev passed in is already divided by 0.8796..., the stddev of
 * a unit normal truncated at ±2, as VarianceScaling does. */
static float truncated_normal(uint64_t seed, uint32_t stream, uint64_t i, float stddev) {
  for (uint64_t attempt = 0;; attempt++) {
    float z = nnc_rng_normal(seed, stream, (attempt << 40) | i);
    if (fabsf(z) <= 2.0f) return z * stddev;
  }
}

/* Fills w from the initializer table {kind=..., fan_in, fan_out, ...}. */
static int fill(lua_State *L, weight *w, int init, uint64_t seed) {
  lua_getfield(L, init, "kind");
  const char *kind = luaL_checkstring(L, -1);
  lua_pop(L, 1);
  double fan_in = opt_field(L, init, "fan_in", 1), fan_out = opt_field(L, init, "fan_out", 1);
  const double trunc = 0.87962566103423978;
  uint32_t stream = nnc_rng_stream_of(w->name);
  int64_t n = weight_numel(w);
  for (int64_t i = 0; i < n; i++) {
    float u = 0, *v = &w->data[i];
    if (!strcmp(kind, "glorot_uniform") || !strcmp(kind, "he_uniform") || !strcmp(kind, "random_uniform")) {
      double lo, hi;
      if (kind[0] == 'g') hi = sqrt(6.0 / (fan_in + fan_out)), lo = -hi;
      else if (kind[0] == 'h') hi = sqrt(6.0 / fan_in), lo = -hi;
      else lo = opt_field(L, init, "minval", -0.05), hi = opt_field(L, init, "maxval", 0.05);
      u = nnc_rng_uniform(seed, stream, (uint64_t)i);
      *v = (float)(lo + (hi - lo) * u);
    } else if (!strcmp(kind, "glorot_normal")) {
      *v = truncated_normal(seed, stream, (uint64_t)i, (float)(sqrt(2.0 / (fan_in + fan_out)) / trunc));
    } else if (!strcmp(kind, "he_normal")) {
      *v = truncated_normal(seed, stream, (uint64_t)i, (float)(sqrt(2.0 / fan_in) / trunc));
    } else if (!strcmp(kind, "lecun_normal")) {
      *v = truncated_normal(seed, stream, (uint64_t)i, (float)(sqrt(1.0 / fan_in) / trunc));
    } else if (!strcmp(kind, "random_normal")) {
      *v = (float)(opt_field(L, init, "mean", 0) +
                   opt_field(L, init, "stddev", 0.05) * nnc_rng_normal(seed, stream, (uint64_t)i));
    } else if (!strcmp(kind, "zeros")) {
      *v = 0;
    } else if (!strcmp(kind, "ones")) {
      *v = 1;
    } else if (!strcmp(kind, "constant")) {
      *v = (float)opt_field(L, init, "value", 0);
    } else {
      return luaL_error(L, "unknown initializer '%s'", kind);
    }
  }
  return 0;
}

/* store:init(name, {dims}, {kind=..., fan_in=..., fan_out=...}, seed) */
static int l_store_init(lua_State *L) {
  store *s = check_store(L, 1);
  const char *name = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  uint64_t seed = (uint64_t)luaL_checkinteger(L, 5);
  if (find_weight(s, name)) return 0; /* a shared layer initialises once */
  weight w = {0};
  w.rank = (int)luaL_len(L, 3);
  luaL_argcheck(L, w.rank <= NNC_MAX_RANK, 3, "too many axes");
  for (int i = 0; i < w.rank; i++) {
    lua_geti(L, 3, i + 1);
    w.shape[i] = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  if (s->count == s->cap) {
    int cap = s->cap ? 2 * s->cap : 16;
    weight *grown = realloc(s->w, sizeof *grown * (size_t)cap);
    if (!grown) return luaL_error(L, "out of memory");
    s->w = grown, s->cap = cap;
  }
  int64_t n = weight_numel(&w);
  w.data = calloc((size_t)(n ? n : 1), sizeof(float));
  w.name = strdup(name);
  if (!w.data || !w.name) {
    free(w.data), free(w.name);
    return luaL_error(L, "out of memory for weight %s", name);
  }
  s->w[s->count++] = w;
  return fill(L, &s->w[s->count - 1], 4, seed);
}

static weight *check_weight(lua_State *L, store *s, int idx) {
  const char *name = luaL_checkstring(L, idx);
  weight *w = find_weight(s, name);
  if (!w) luaL_error(L, "the model has no weight named '%s'", name);
  return w;
}

/* store:get(name) -> a copy of the weight as a tensor */
static int l_store_get(lua_State *L) {
  weight *w = check_weight(L, check_store(L, 1), 2);
  nnc_tensor *t = nnc_lua_newtensor(L, NNC_F32, w->rank, w->shape);
  memcpy(nnc_tensor_f32(t), w->data, sizeof(float) * (size_t)weight_numel(w));
  return 1;
}

/* store:set(name, tensor) */
static int l_store_set(lua_State *L) {
  weight *w = check_weight(L, check_store(L, 1), 2);
  nnc_tensor *t = nnc_lua_checktensor(L, 3);
  char have[128];
  if (t->dtype != NNC_F32 || nnc_tensor_numel(t) != weight_numel(w) || t->rank != w->rank ||
      memcmp(t->shape, w->shape, sizeof(int64_t) * (size_t)w->rank))
    return luaL_error(L, "weight '%s' cannot take a tensor of type %s", w->name,
                      nnc_tensor_type_str(t, have, sizeof have));
  memcpy(w->data, nnc_tensor_f32(t), sizeof(float) * (size_t)weight_numel(w));
  return 0;
}

static int l_store_names(lua_State *L) {
  store *s = check_store(L, 1);
  lua_createtable(L, s->count, 0);
  for (int i = 0; i < s->count; i++) {
    lua_pushstring(L, s->w[i].name);
    lua_rawseti(L, -2, i + 1);
  }
  return 1;
}

/* Binds leaves: the "input" leaf to rows of x, params to the store. */
static int bind_leaves(const nnc_graph *g, store *s, void **values, const float *rows, nnc_status *st) {
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    if (n->op == NNC_OP_INPUT) {
      values[id] = (void *)rows;
    } else if (n->op == NNC_OP_PARAM) {
      weight *w = find_weight(s, n->name);
      if (!w) return nnc_fail(st, "the model has no value for weight '%s'", n->name);
      values[id] = w->data;
    }
  }
  return 0;
}

/* Runs one batch of rows through a graph specialised to that batch size. */
static int predict_batch(lua_State *L, const nnc_graph *model, store *s, const float *rows, int64_t batch,
                         float *out, int64_t out_row) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_with_batch(model, batch, &st);
  if (!g) return nnc_lua_raise(L, &st);
  void **values = calloc((size_t)g->nnodes, sizeof *values);
  int32_t result = nnc_graph_output_node(g, "output");
  int rc = values && result >= 0 ? 0 : -1;
  if (rc == 0) rc = bind_leaves(g, s, values, rows, &st);
  nnc_run_opts opts = {0, nnc_lua_config(L)->seed, 0};
  if (rc == 0) rc = nnc_interp_run(g, values, &opts, &st);
  if (rc == 0) memcpy(out, values[result], sizeof(float) * (size_t)(batch * out_row));
  if (values) nnc_interp_free(g, values);
  free(values);
  nnc_graph_free(g);
  if (rc) {
    if (!st.failed) nnc_fail(&st, "the model has no output to predict");
    return nnc_lua_raise(L, &st);
  }
  return 0;
}

/* core.predict(graph, store, x, batch_size) -> tensor of outputs */
static int l_predict(lua_State *L) {
  const nnc_graph *g = nnc_lua_checkgraph(L, 1);
  store *s = check_store(L, 2);
  nnc_tensor *x = nnc_lua_checktensor(L, 3);
  int64_t batch = luaL_optinteger(L, 4, 32);
  int32_t in = -1, out = nnc_graph_output_node(g, "output");
  for (int32_t id = 0; id < g->nnodes && in < 0; id++)
    if (g->nodes[id].op == NNC_OP_INPUT) in = id;
  if (in < 0 || out < 0) return luaL_error(L, "the model has no input or output");
  const nnc_node *want = &g->nodes[in];
  char have[128], need[128];
  int fits = x->dtype == NNC_F32 && x->rank == want->rank;
  for (int i = 1; fits && i < want->rank; i++) fits = x->shape[i] == want->shape[i];
  if (!fits)
    return luaL_error(L, "the model takes input %s, got %s", nnc_type_str(want, need, sizeof need),
                      nnc_tensor_type_str(x, have, sizeof have));
  const nnc_node *on = &g->nodes[out];
  int64_t rows = x->shape[0], out_row = 1;
  for (int i = 1; i < on->rank; i++) out_row *= on->shape[i];
  int64_t shape[NNC_MAX_RANK];
  memcpy(shape, on->shape, sizeof shape);
  shape[0] = rows;
  nnc_tensor *y = nnc_lua_newtensor(L, NNC_F32, on->rank, shape);
  int64_t row_size = nnc_tensor_row_size(x);
  for (int64_t first = 0; first < rows; first += batch) {
    int64_t count = rows - first < batch ? rows - first : batch;
    predict_batch(L, g, s, nnc_tensor_f32(x) + first * row_size, count,
                  nnc_tensor_f32(y) + first * out_row, out_row);
  }
  return 1;
}

void nnc_lua_open_weights(lua_State *L, int core_index) {
  static const luaL_Reg methods[] = {{"init", l_store_init}, {"get", l_store_get}, {"set", l_store_set},
                                     {"names", l_store_names}, {NULL, NULL}};
  luaL_newmetatable(L, NNC_STORE_META);
  lua_pushcfunction(L, l_store_gc);
  lua_setfield(L, -2, "__gc");
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_store_new);
  lua_setfield(L, core_index, "store");
  lua_pushcfunction(L, l_predict);
  lua_setfield(L, core_index, "predict");
}
