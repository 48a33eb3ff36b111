/* data.ImageDataGenerator and its flow() iterator, as Keras 2 spells them:
 *
 *   local gen = data.ImageDataGenerator { rotation_range = 10, zoom_range = 0.1, horizontal_flip = true }
 *   local it = gen:flow(x, y, { batch_size = 32, shuffle = true, seed = 1 })
 *   local xb, yb = it:next()
 *
 * Options are checked here (a Keras option nnc does not implement is an
 * error, never ignored); the transform and the batches are
 * runtime/train/augment.c's. An iterator keeps its x and y tensors alive as user
 * values and walks epochs as Keras's Iterator does: batch after batch,
 * reshuffled at each epoch's start. */
#include "frontend/bind_augment.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/bind.h"
#include "frontend/tensor.h"
#include "runtime/train/augment_source.h"

#define IMAGEGEN_META "nnc.ImageDataGenerator"
#define ITERATOR_META "nnc.NumpyArrayIterator"

typedef struct imagegen {
  nnc_augment_opts opts;
} imagegen;

/* ---- the generator ---- */

static const char *const gen_options[] = {
    "rotation_range", "width_shift_range", "height_shift_range", "shear_range", "zoom_range", "fill_mode", "cval",
    "horizontal_flip", "vertical_flip", "rescale",
    /* Keras options accepted only at their defaults (nnc does not implement the rest). */
    "featurewise_center", "samplewise_center", "featurewise_std_normalization", "samplewise_std_normalization",
    "zca_whitening", "zca_epsilon", "brightness_range", "channel_shift_range", "preprocessing_function",
    "data_format", "validation_split", "interpolation_order", "dtype", NULL};

static int is_default(lua_State *L, int idx, const char *key) {
  int t = lua_type(L, idx);
  if (t == LUA_TNIL || (t == LUA_TBOOLEAN && !lua_toboolean(L, idx))) return 1;
  if (t == LUA_TNUMBER) {
    double v = lua_tonumber(L, idx);
    if (!strcmp(key, "zca_epsilon")) return v == 1e-6;
    if (!strcmp(key, "interpolation_order")) return v == 1;
    return v == 0;
  }
  if (t == LUA_TSTRING) {
    const char *s = lua_tostring(L, idx);
    return (!strcmp(key, "data_format") && !strcmp(s, "channels_last")) || (!strcmp(key, "dtype") && !strcmp(s, "float32"));
  }
  return 0;
}

/* A range option: a number >= 0 (0 when absent). */
static double range_option(lua_State *L, int opts, const char *key) {
  lua_getfield(L, opts, key);
  double v = 0;
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TNUMBER)
      nnc_lua_errorf(L, "ImageDataGenerator: %s must be a number, got %s%s", key, luaL_typename(L, -1),
                     lua_istable(L, -1) ? " (a list of values is not supported)" : "");
    v = lua_tonumber(L, -1);
    if (!(v >= 0)) nnc_lua_errorf(L, "ImageDataGenerator: %s is %g; ranges are >= 0", key, v);
    if (isinf(v)) nnc_lua_errorf(L, "ImageDataGenerator: %s is inf; ranges are finite", key);
  }
  lua_pop(L, 1);
  return v;
}

static nnc_shift_range shift_option(lua_State *L, int opts, const char *key) {
  nnc_shift_range s = {range_option(L, opts, key), 0};
  lua_getfield(L, opts, key);
  s.whole = lua_isinteger(L, -1);
  lua_pop(L, 1);
  return s;
}

/* zoom_range: z gives [1-z, 1+z], a pair {lo, hi} is used as given. */
static void zoom_option(lua_State *L, int opts, nnc_augment_opts *o) {
  lua_getfield(L, opts, "zoom_range");
  o->zoom_lo = o->zoom_hi = 1;
  if (lua_istable(L, -1)) {
    lua_rawgeti(L, -1, 1);
    lua_rawgeti(L, -2, 2);
    if (lua_rawlen(L, -3) != 2 || lua_type(L, -2) != LUA_TNUMBER || lua_type(L, -1) != LUA_TNUMBER)
      nnc_lua_errorf(L, "ImageDataGenerator: zoom_range must be a number or a pair {lower, upper}");
    o->zoom_lo = lua_tonumber(L, -2);
    o->zoom_hi = lua_tonumber(L, -1);
    lua_pop(L, 2);
  } else if (!lua_isnil(L, -1)) {
    double z = range_option(L, opts, "zoom_range");
    o->zoom_lo = 1 - z;
    o->zoom_hi = 1 + z;
  }
  lua_pop(L, 1);
  if (!(o->zoom_lo > 0 && o->zoom_lo <= o->zoom_hi))
    nnc_lua_errorf(L, "ImageDataGenerator: zoom_range gives zoom factors %g..%g; they must be positive, lower <= upper",
                   o->zoom_lo, o->zoom_hi);
}

static nnc_fill_mode fill_option(lua_State *L, int opts) {
  static const char *const modes[] = {"nearest", "constant", "reflect", "wrap", NULL};
  static const nnc_fill_mode values[] = {NNC_FILL_NEAREST, NNC_FILL_CONSTANT, NNC_FILL_REFLECT, NNC_FILL_WRAP};
  lua_getfield(L, opts, "fill_mode");
  const char *s = lua_isnil(L, -1) ? "nearest" : luaL_checkstring(L, -1);
  lua_pop(L, 1);
  for (int i = 0; modes[i]; i++)
    if (!strcmp(s, modes[i])) return values[i];
  const char *near = nnc_closest_name(s, modes);
  nnc_lua_errorf(L, "ImageDataGenerator: unknown fill_mode '%s'%s%s%s (valid: nearest, constant, reflect, wrap)", s,
                 near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
}

static void check_gen_keys(lua_State *L, int opts) {
  lua_pushnil(L);
  while (lua_next(L, opts)) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
    int known = -1;
    for (int i = 0; key && gen_options[i]; i++)
      if (!strcmp(key, gen_options[i])) known = i;
    if (known < 0) {
      const char *near = key ? nnc_closest_name(key, gen_options) : NULL;
      nnc_lua_errorf(L, "ImageDataGenerator got an unknown option '%s'%s%s%s", key ? key : luaL_tolstring(L, -2, NULL),
                     near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    }
    if (known >= 10 && !is_default(L, -1, key))
      nnc_lua_errorf(L, "ImageDataGenerator: %s = %s is not supported by nnc (it implements rotation, shifts, shear, "
                        "zoom, flips, fill_mode, cval and rescale)",
                     key, luaL_tolstring(L, -1, NULL));
    lua_pop(L, 1);
  }
}

/* data.ImageDataGenerator { ... } */
static int l_image_data_generator(lua_State *L) {
  if (lua_isnoneornil(L, 1)) lua_newtable(L);
  luaL_checktype(L, 1, LUA_TTABLE);
  check_gen_keys(L, 1);
  nnc_augment_opts o = {0};
  o.rotation_range = range_option(L, 1, "rotation_range");
  o.width_shift = shift_option(L, 1, "width_shift_range");
  o.height_shift = shift_option(L, 1, "height_shift_range");
  o.shear_range = range_option(L, 1, "shear_range");
  zoom_option(L, 1, &o);
  o.fill_mode = fill_option(L, 1);
  lua_getfield(L, 1, "cval");
  o.cval = luaL_optnumber(L, -1, 0);
  lua_getfield(L, 1, "horizontal_flip");
  o.horizontal_flip = lua_toboolean(L, -1);
  lua_getfield(L, 1, "vertical_flip");
  o.vertical_flip = lua_toboolean(L, -1);
  lua_getfield(L, 1, "rescale");
  o.rescale = luaL_optnumber(L, -1, 0);
  lua_pop(L, 4);
  imagegen *g = lua_newuserdatauv(L, sizeof *g, 0);
  g->opts = o;
  luaL_setmetatable(L, IMAGEGEN_META);
  return 1;
}

/* ---- the iterator ---- */

typedef struct iterator {
  nnc_augment_opts opts;
  nnc_image_source src;
  int64_t epoch, batch; /* the next batch to give */
  int64_t *order;       /* the order of epoch order_epoch */
  int64_t order_epoch;
  float *scratch;
} iterator;

static int iterator_gc(lua_State *L) {
  iterator *it = luaL_checkudata(L, 1, ITERATOR_META);
  free(it->order);
  free(it->scratch);
  it->order = NULL;
  it->scratch = NULL;
  return 0;
}

/* The seed when flow() is given none: the run's --seed and how many flows
 * came before, so two flows differ and a run repeats. */
static uint64_t default_seed(lua_State *L) {
  const nnc_run_config *c = nnc_lua_config(L);
  lua_getfield(L, LUA_REGISTRYINDEX, "nnc.flow_count");
  uint64_t k = (uint64_t)lua_tointeger(L, -1);
  lua_pop(L, 1);
  lua_pushinteger(L, (lua_Integer)(k + 1));
  lua_setfield(L, LUA_REGISTRYINDEX, "nnc.flow_count");
  return (c ? c->seed : 0) * 0x9E3779B97F4A7C15ull + k;
}

static void flow_options(lua_State *L, int opts, iterator *it) {
  static const char *const valid[] = {"batch_size", "shuffle", "seed", "sample_weight", "save_to_dir", "save_prefix",
                                      "save_format", "subset", NULL};
  it->src.batch_size = 32;
  it->src.shuffle = 1;
  it->src.seed = default_seed(L);
  if (lua_isnoneornil(L, opts)) return;
  luaL_checktype(L, opts, LUA_TTABLE);
  lua_pushnil(L);
  while (lua_next(L, opts)) {
    const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
    int known = -1;
    for (int i = 0; valid[i]; i++)
      if (!strcmp(key, valid[i])) known = i;
    if (known < 0) {
      const char *near = nnc_closest_name(key, valid);
      nnc_lua_errorf(L, "flow got an unknown option '%s'%s%s%s (valid: batch_size, shuffle, seed)", key,
                     near ? " (did you mean '" : "", near ? near : "", near ? "'?)" : "");
    }
    if (known >= 3) nnc_lua_errorf(L, "flow: %s is not supported by nnc", key);
    lua_pop(L, 1);
  }
  lua_getfield(L, opts, "batch_size");
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 1)
      nnc_lua_errorf(L, "flow: batch_size must be a positive integer, got %s", nnc_lua_show(L, -1));
    it->src.batch_size = lua_tointeger(L, -1);
  }
  lua_getfield(L, opts, "shuffle");
  if (!lua_isnil(L, -1)) it->src.shuffle = lua_toboolean(L, -1);
  lua_getfield(L, opts, "seed");
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1)) nnc_lua_errorf(L, "flow: seed must be an integer, got %s", nnc_lua_show(L, -1));
    it->src.seed = (uint64_t)lua_tointeger(L, -1);
  }
  lua_pop(L, 3);
}

static void set_images(lua_State *L, iterator *it, const nnc_tensor *x) {
  char type[NNC_TENSOR_TYPE_MAX];
  nnc_tensor_type_str(x, type, sizeof type);
  if (x->rank != 4 || (x->dtype != NNC_F32 && x->dtype != NNC_U8))
    nnc_lua_errorf(L, "flow: x must be images f32 or u8 [N,rows,cols,channels], got %s%s", type,
                   x->rank == 3 ? " (add the channel axis: x:reshape(-1, rows, cols, 1))" : "");
  it->src.x = nnc_tensor_bytes(x);
  it->src.x_dtype = x->dtype;
  it->src.count = x->shape[0];
  it->src.rows = x->shape[1];
  it->src.cols = x->shape[2];
  it->src.channels = x->shape[3];
}

static void set_labels(lua_State *L, iterator *it, const nnc_tensor *x, const nnc_tensor *y) {
  char tx[NNC_TENSOR_TYPE_MAX], ty[NNC_TENSOR_TYPE_MAX];
  if (y->shape[0] != x->shape[0] || y->dtype == NNC_U8)
    nnc_lua_errorf(L, "flow: x %s and y %s must have the same number of rows, y as i32 or f32",
                   nnc_tensor_type_str(x, tx, sizeof tx), nnc_tensor_type_str(y, ty, sizeof ty));
  it->src.y = nnc_tensor_bytes(y);
  it->src.y_dtype = y->dtype;
  it->src.y_row = nnc_tensor_row_size(y);
}

/* gen:flow(x [, y] [, { batch_size, shuffle, seed }]) */
static int l_flow(lua_State *L) {
  imagegen *g = luaL_checkudata(L, 1, IMAGEGEN_META);
  nnc_tensor *x = nnc_lua_checktensor(L, 2);
  int has_y = nnc_lua_totensor(L, 3) || (lua_istable(L, 3) && lua_rawlen(L, 3) > 0);
  if (has_y) nnc_lua_checktensorlike(L, 3, NNC_I32);
  int opts = has_y ? 4 : 3;
  lua_settop(L, 4);
  iterator *it = lua_newuserdatauv(L, sizeof *it, 2);
  memset(it, 0, sizeof *it);
  luaL_setmetatable(L, ITERATOR_META);
  it->opts = g->opts;
  it->src.opts = &it->opts;
  it->order_epoch = -1;
  set_images(L, it, x);
  if (has_y) set_labels(L, it, x, nnc_lua_totensor(L, 3));
  flow_options(L, opts, it);
  /* A batch larger than the data is all of it, as Keras's iterators have it. */
  if (it->src.batch_size > it->src.count && it->src.count > 0) it->src.batch_size = it->src.count;
  size_t image = (size_t)(it->src.rows * it->src.cols * it->src.channels);
  it->order = malloc(sizeof *it->order * (size_t)(it->src.count ? it->src.count : 1));
  it->scratch = malloc(sizeof *it->scratch * (image ? image : 1));
  if (!it->order || !it->scratch) nnc_lua_errorf(L, "flow: out of memory");
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  if (has_y) {
    lua_pushvalue(L, 3);
    lua_setiuservalue(L, -2, 2);
  }
  return 1;
}

static iterator *check_iterator(lua_State *L, int idx) {
  iterator *it = luaL_checkudata(L, idx, ITERATOR_META);
  if (!it->order) luaL_argerror(L, idx, "iterator used after it was finalized");
  return it;
}

/* it:next(): the next batch's x, and its y when the flow has labels. */
static int l_next(lua_State *L) {
  iterator *it = check_iterator(L, 1);
  const nnc_image_source *s = &it->src;
  if (s->count == 0) nnc_lua_errorf(L, "next: the iterator has no images");
  if (it->order_epoch != it->epoch) {
    nnc_image_source_order(s, it->epoch, it->order);
    it->order_epoch = it->epoch;
  }
  int64_t first = it->batch * s->batch_size;
  int64_t count = s->count - first < s->batch_size ? s->count - first : s->batch_size;
  int64_t shape[NNC_MAX_RANK] = {count, s->rows, s->cols, s->channels};
  nnc_tensor *x = nnc_lua_newtensor(L, NNC_F32, 4, shape);
  void *y = NULL;
  if (s->y) {
    lua_getiuservalue(L, 1, 2);
    nnc_tensor *labels = nnc_lua_totensor(L, -1);
    lua_pop(L, 1);
    memcpy(shape, labels->shape, sizeof shape);
    shape[0] = count;
    y = nnc_tensor_bytes(nnc_lua_newtensor(L, labels->dtype, labels->rank, shape));
  }
  nnc_image_source_batch(s, it->order, it->epoch, it->batch, nnc_tensor_f32(x), y, it->scratch);
  if (++it->batch == nnc_image_source_batches(s)) {
    it->batch = 0;
    it->epoch++;
  }
  return s->y ? 2 : 1;
}

/* it:reset(): back to the first batch of the first epoch. */
static int l_reset(lua_State *L) {
  iterator *it = check_iterator(L, 1);
  it->batch = it->epoch = 0;
  return 0;
}

static int l_iterator_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)nnc_image_source_batches(&check_iterator(L, 1)->src));
  return 1;
}

static int l_iterator_index(lua_State *L) {
  iterator *it = check_iterator(L, 1);
  const char *key = luaL_checkstring(L, 2);
  if (!strcmp(key, "batch_size")) lua_pushinteger(L, (lua_Integer)it->src.batch_size);
  else if (!strcmp(key, "n")) lua_pushinteger(L, (lua_Integer)it->src.count);
  else if (!strcmp(key, "next")) lua_pushcfunction(L, l_next);
  else if (!strcmp(key, "reset")) lua_pushcfunction(L, l_reset);
  else {
    static const char *const names[] = {"next", "reset", "batch_size", "n", NULL};
    const char *near = nnc_closest_name(key, names);
    nnc_lua_errorf(L, "iterator has no field '%s'%s%s%s", key, near ? " (did you mean '" : "", near ? near : "",
                   near ? "'?)" : "");
  }
  return 1;
}

/* ---- fit on a flow ---- */

/* core.is_flow(v): whether v is a flow() iterator. */
static int l_is_flow(lua_State *L) {
  iterator *it = luaL_testudata(L, 1, ITERATOR_META);
  lua_pushboolean(L, it && it->order);
  return 1;
}

/* The flow's batches must fit the model: its images the input, its labels
 * the loss. The arrays stand for the batches (made f32 whatever x is). */
static void check_flow(lua_State *L, const nnc_graph *g, nnc_model *m, int it_idx) {
  lua_getiuservalue(L, it_idx, 1);
  lua_getiuservalue(L, it_idx, 2);
  nnc_tensor x = *nnc_lua_totensor(L, -2), *y = nnc_lua_totensor(L, -1);
  if (!y) nnc_lua_errorf(L, "fit: the iterator has no labels; make it with gen:flow(x, y, {...})");
  x.dtype = NNC_F32;
  nnc_lua_check_x(L, "fit (the iterator's batches)", g, &x);
  nnc_lua_check_y(L, "fit (the iterator's labels)", m, g, &x, y);
  lua_pop(L, 2);
}

static int64_t int_field(lua_State *L, int t, const char *key) {
  lua_getfield(L, t, key);
  int64_t v = lua_tointeger(L, -1);
  lua_pop(L, 1);
  return v;
}

/* core.fit_flow(graph, model, iterator, {epochs, steps_per_epoch, workers,
 *   max_queue_size, verbose, validation_x, validation_y}, dispatch, wanted) */
static int l_fit_flow(lua_State *L) {
  const nnc_graph *g = nnc_lua_checkgraph(L, 1);
  nnc_model *m = luaL_checkudata(L, 2, NNC_STORE_META);
  iterator *it = check_iterator(L, 3);
  luaL_checktype(L, 4, LUA_TTABLE);
  check_flow(L, g, m, 3);
  nnc_fit_opts o;
  nnc_dataset val;
  nnc_lua_fit_opts(L, 4, g, m, &o, &val);
  int64_t per_epoch = nnc_image_source_batches(&it->src);
  int64_t first = it->epoch * per_epoch + it->batch;
  nnc_status st = {0};
  nnc_flow_source *src = nnc_flow_source_new(&it->src, first, int_field(L, 4, "steps_per_epoch"), o.epochs,
                                             (int)int_field(L, 4, "workers"), (int)int_field(L, 4, "max_queue_size"), &st);
  if (!src) return nnc_lua_raise_here(L, &st);
  nnc_lua_callbacks bridge;
  nnc_callbacks callbacks = nnc_lua_callbacks_of(L, 5, 6, &bridge);
  o.callbacks = &callbacks;
  int rc = nnc_fit(m, g, nnc_flow_source_base(src), &o, &st);
  /* The iterator moves on by what fit took, as Keras's does. */
  int64_t at = first + nnc_flow_source_taken(src);
  it->epoch = at / per_epoch;
  it->batch = at % per_epoch;
  nnc_flow_source_free(src);
  if (rc) return bridge.failed ? nnc_lua_raise(L, &st) : nnc_lua_raise_here(L, &st);
  return 0;
}

void nnc_lua_open_flow_fit(lua_State *L, int core_index) {
  static const luaL_Reg functions[] = {{"is_flow", l_is_flow}, {"fit_flow", l_fit_flow}, {NULL, NULL}};
  lua_pushvalue(L, core_index);
  luaL_setfuncs(L, functions, 0);
  lua_pop(L, 1);
}

void nnc_lua_open_augment(lua_State *L, int data_idx) {
  if (luaL_newmetatable(L, IMAGEGEN_META)) {
    lua_newtable(L);
    lua_pushcfunction(L, l_flow);
    lua_setfield(L, -2, "flow");
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  if (luaL_newmetatable(L, ITERATOR_META)) {
    lua_pushcfunction(L, iterator_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_iterator_len);
    lua_setfield(L, -2, "__len");
    lua_pushcfunction(L, l_iterator_index);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_image_data_generator);
  lua_setfield(L, data_idx, "ImageDataGenerator");
}
