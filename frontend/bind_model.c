/* Lua bindings for a model's run-time side: weights and initializers,
 * compile settings, and fit / evaluate / predict. The userdata wraps an
 * nnc_model (runtime/model.h); the forward graph is passed in per call. */
#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/bind.h"
#include "frontend/tensor.h"
#include "ir/op.h"
#include "runtime/train/fit.h"
#include "runtime/model.h"
#include "runtime/store/safetensors.h"

static nnc_model *check_model(lua_State *L, int idx) { return luaL_checkudata(L, idx, NNC_STORE_META); }

static int l_model_new(lua_State *L) {
  const nnc_run_config *config = nnc_lua_config(L);
  const nnc_backend *backend = NULL;
  nnc_status st = {0};
  if (config->opts.backend && !(backend = nnc_backend_find(config->opts.backend, &st)))
    return nnc_lua_raise_here(L, &st);
  nnc_model *m = lua_newuserdatauv(L, sizeof *m, 0);
  nnc_model_init(m, config->seed);
  m->opts = config->opts;
  if (backend) m->backend = backend;
  m->bucket_bytes = config->bucket_bytes;
  luaL_setmetatable(L, NNC_STORE_META);
  if (config->comm) {
    if (!(m->shard = calloc(1, sizeof *m->shard))) return luaL_error(L, "out of memory");
    m->shard->comm = config->comm;
    m->shard->rank = nnc_comm_rank(config->comm);
    m->shard->ranks = nnc_comm_size(config->comm);
  }
  return 1;
}

static int l_model_gc(lua_State *L) {
  nnc_model_free(check_model(L, 1));
  return 0;
}

static double field_number(lua_State *L, int idx, const char *key, double fallback) {
  lua_getfield(L, idx, key);
  double v = luaL_optnumber(L, -1, fallback);
  lua_pop(L, 1);
  return v;
}

static const char *field_string(lua_State *L, int idx, const char *key, const char *fallback) {
  lua_getfield(L, idx, key);
  const char *v = luaL_optstring(L, -1, fallback);
  lua_pop(L, 1);
  return v; /* the table keeps the string alive */
}

static int read_dims(lua_State *L, int idx, int64_t *dims) {
  int rank = (int)luaL_len(L, idx);
  luaL_argcheck(L, rank <= NNC_MAX_RANK, idx, "too many axes");
  for (int i = 0; i < rank; i++) {
    lua_geti(L, idx, i + 1);
    dims[i] = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
  }
  return rank;
}

/* model:init(name, {dims}, {kind=..., fan_in=..., ...}) */
static int l_model_init(lua_State *L) {
  nnc_model *m = check_model(L, 1);
  const char *name = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  luaL_checktype(L, 4, LUA_TTABLE);
  int64_t dims[NNC_MAX_RANK];
  int rank = read_dims(L, 3, dims);
  if (nnc_weights_find(&m->weights, name)) return 0; /* a shared layer initialises once */
  nnc_init init = {field_string(L, 4, "kind", "zeros"), field_number(L, 4, "fan_in", 1),
                   field_number(L, 4, "fan_out", 1), field_number(L, 4, "mean", 0),
                   field_number(L, 4, "stddev", 0.05), field_number(L, 4, "minval", -0.05),
                   field_number(L, 4, "maxval", 0.05), field_number(L, 4, "value", 0)};
  nnc_status st = {0};
  nnc_weight *w = nnc_weights_add(&m->weights, name, rank, dims, &st);
  if (!w || nnc_weight_init(w, &init, m->seed, &st)) return nnc_lua_raise_here(L, &st);
  nnc_model_weights_changed(m);
  return 0;
}

static nnc_weight *check_weight(lua_State *L, nnc_model *m, int idx) {
  const char *name = luaL_checkstring(L, idx);
  nnc_weight *w = nnc_weights_find(nnc_model_weights(m), name);
  if (!w) nnc_lua_errorf(L, "the model has no weight named '%s'", name);
  return w;
}

/* model:get(name) -> a copy of the weight as a tensor */
static int l_model_get(lua_State *L) {
  nnc_weight *w = check_weight(L, check_model(L, 1), 2);
  nnc_tensor *t = nnc_lua_newtensor(L, NNC_F32, w->rank, w->shape);
  memcpy(nnc_tensor_f32(t), w->data, sizeof(float) * (size_t)nnc_weight_numel(w));
  return 1;
}

/* model:set(name, tensor) */
static int l_model_set(lua_State *L) {
  nnc_model *m = check_model(L, 1);
  nnc_weight *w = check_weight(L, m, 2);
  nnc_tensor *t = nnc_lua_checktensor(L, 3);
  char have[NNC_TENSOR_TYPE_MAX], need[256];
  if (t->dtype != NNC_F32 || t->rank != w->rank || memcmp(t->shape, w->shape, sizeof(int64_t) * (size_t)w->rank))
    nnc_lua_errorf(L, "weight '%s' is f32%s and cannot take a tensor of type %s", w->name,
                   nnc_safetensors_shape_str(w->rank, w->shape, need, sizeof need),
                   nnc_tensor_type_str(t, have, sizeof have));
  memcpy(w->data, nnc_tensor_f32(t), sizeof(float) * (size_t)nnc_weight_numel(w));
  nnc_model_weights_changed(m);
  return 0;
}

/* model:set_spec{loss=..., accuracy=bool, optimizer={kind=..., learning_rate=...}} */
static int l_model_set_spec(lua_State *L) {
  nnc_model *m = check_model(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  const char *loss = field_string(L, 2, "loss", "mse");
  m->spec.loss = !strcmp(loss, "sparse_categorical_crossentropy") ? NNC_LOSS_SPARSE_XENT
                 : !strcmp(loss, "categorical_crossentropy")      ? NNC_LOSS_XENT
                                                                  : NNC_LOSS_MSE;
  lua_getfield(L, 2, "accuracy");
  m->spec.accuracy = lua_toboolean(L, -1);
  lua_pop(L, 1);
  const char *metric = field_string(L, 2, "metric", "accuracy");
  if (strlen(metric) >= sizeof m->metric) return luaL_error(L, "metric name '%s' is too long", metric);
  strcpy(m->metric, metric);
  lua_getfield(L, 2, "optimizer");
  int o = lua_gettop(L);
  const char *kind = field_string(L, o, "kind", "sgd");
  nnc_optimizer *opt = &m->spec.optimizer;
  opt->kind = !strcmp(kind, "adam") ? NNC_OPT_ADAM : !strcmp(kind, "rmsprop") ? NNC_OPT_RMSPROP : NNC_OPT_SGD;
  opt->learning_rate = field_number(L, o, "learning_rate", 0.01);
  opt->beta_1 = field_number(L, o, "beta_1", 0.9);
  opt->beta_2 = field_number(L, o, "beta_2", 0.999);
  opt->rho = field_number(L, o, "rho", 0.9);
  opt->momentum = field_number(L, o, "momentum", 0);
  opt->epsilon = field_number(L, o, "epsilon", 1e-7);
  lua_getfield(L, o, "nesterov");
  opt->nesterov = lua_toboolean(L, -1);
  lua_getfield(L, o, "amsgrad");
  opt->amsgrad = lua_toboolean(L, -1);
  lua_getfield(L, o, "centered");
  opt->centered = lua_toboolean(L, -1);
  m->has_spec = 1;
  return 0;
}

/* model:learning_rate([new]) -> the rate the next step uses. It is fed to
 * each step as an input, so a schedule changes it without recompiling. */
static int l_model_learning_rate(lua_State *L) {
  nnc_model *m = check_model(L, 1);
  if (!lua_isnoneornil(L, 2)) {
    double lr = luaL_checknumber(L, 2);
    if (!(lr >= 0) || lr > 1e30) return luaL_error(L, "the learning rate must be a finite number >= 0, got %f", lr);
    m->spec.optimizer.learning_rate = lr;
  }
  lua_pushnumber(L, m->spec.optimizer.learning_rate);
  return 1;
}

static int l_model_steps(lua_State *L) {
  lua_pushinteger(L, check_model(L, 1)->steps);
  return 1;
}


void nnc_lua_open_weights(lua_State *L, int core_index) {
  static const luaL_Reg methods[] = {{"init", l_model_init},         {"get", l_model_get},
                                     {"set", l_model_set},           {"set_spec", l_model_set_spec},
                                     {"steps", l_model_steps},       {"learning_rate", l_model_learning_rate},
                                     {NULL, NULL}};
  luaL_newmetatable(L, NNC_STORE_META);
  lua_pushcfunction(L, l_model_gc);
  lua_setfield(L, -2, "__gc");
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "__index");
  lua_pop(L, 1);
  lua_pushcfunction(L, l_model_new);
  lua_setfield(L, core_index, "store");
}
