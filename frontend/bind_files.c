/* Lua bindings for the files a Keras user keeps: HDF5 weights and whole
 * models (runtime/store/h5.c). Lua describes the model as Keras lists it, layer
 * by layer with each layer's weights by name; C reads and writes the values
 * straight from and into the model's weights. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/bind.h"
#include "frontend/tensor.h"
#include "ir/atomic_file.h"
#include "runtime/store/h5.h"
#include "runtime/model.h"
#include "runtime/store/plot.h"

static nnc_model *check_model(lua_State *L, int idx) { return luaL_checkudata(L, idx, NNC_STORE_META); }

/* A userdata of n zeroed elements, kept alive on the stack by the caller. */
static void *stack_array(lua_State *L, size_t size, int n) {
  void *p = lua_newuserdatauv(L, size * (size_t)(n ? n : 1), 0);
  memset(p, 0, size * (size_t)(n ? n : 1));
  return p;
}

static void point_at(nnc_named_tensor *t, const char *name, const nnc_weight *w) {
  t->name = name, t->rank = w->rank, t->data = w->data;
  memcpy(t->shape, w->shape, sizeof w->shape);
}

static nnc_weight *weight_named(lua_State *L, nnc_model *m, const char *name) {
  nnc_weight *w = nnc_weights_find(nnc_model_weights(m), name);
  if (!w) nnc_lua_errorf(L, "the model has no value for weight '%s'", name);
  return w;
}

/* spec.layers = {{name=, weights={"dense/kernel", ...}}, ...} -> layers whose
 * tensors are the model's weights under Keras's names ("dense/kernel:0"). */
static nnc_h5_layer *model_layers(lua_State *L, nnc_model *m, int spec, int *n) {
  lua_getfield(L, spec, "layers");
  int layers = lua_gettop(L);
  *n = (int)luaL_len(L, layers);
  nnc_h5_layer *out = stack_array(L, sizeof *out, *n);
  lua_newtable(L); /* keeps the Keras names alive */
  int names = lua_gettop(L), kept = 0;
  for (int i = 0; i < *n; i++) {
    lua_geti(L, layers, i + 1);
    lua_getfield(L, -1, "name");
    out[i].name = luaL_checkstring(L, -1);
    lua_rawseti(L, names, ++kept);
    lua_getfield(L, -1, "weights");
    out[i].count = (int)luaL_len(L, -1);
    out[i].weights = stack_array(L, sizeof *out[i].weights, out[i].count);
    lua_rawseti(L, names, ++kept);
    for (int k = 0; k < out[i].count; k++) {
      lua_geti(L, -1, k + 1);
      const char *store_name = luaL_checkstring(L, -1);
      const nnc_weight *w = weight_named(L, m, store_name);
      lua_pushfstring(L, "%s:0", store_name);
      point_at(&out[i].weights[k], lua_tostring(L, -1), w);
      lua_rawseti(L, names, ++kept);
      lua_pop(L, 1);
    }
    lua_pop(L, 2);
  }
  return out;
}

/* The optimizer's slots in Keras's order: each kind of slot for every
 * trainable weight in turn ("Adam/dense/kernel/m:0", ... then ".../v:0"),
 * and the step count's name. A weight without slots does not train (moving
 * statistics, a frozen layer's weights), as Keras keeps slots for trainable
 * weights only. NULL when the model has not trained yet, so has no slots. */
static nnc_named_tensor *optimizer_slots(lua_State *L, nnc_model *m, int spec, int weights, int *n,
                                         const char **iter_name) {
  lua_getfield(L, spec, "optimizer");
  int opt = lua_gettop(L);
  if (lua_isnil(L, opt)) return NULL;
  lua_getfield(L, opt, "class");
  const char *cls = luaL_checkstring(L, -1);
  lua_getfield(L, opt, "slots");
  int kinds = opt + 2, nkinds = (int)luaL_len(L, kinds);
  lua_getfield(L, spec, "layers");
  int layers = opt + 3, nlayers = (int)luaL_len(L, layers);
  lua_newtable(L); /* keeps the names alive */
  int names = opt + 4, kept = 0;
  nnc_named_tensor *out = stack_array(L, sizeof *out, nkinds * weights);
  lua_rawseti(L, names, ++kept);
  *n = 0;
  for (int k = 1; k <= nkinds; k++)
    for (int i = 1; i <= nlayers; i++) {
      lua_geti(L, layers, i);
      lua_getfield(L, -1, "weights");
      for (int j = 1; j <= (int)luaL_len(L, -1); j++) {
        lua_geti(L, -1, j);
        lua_geti(L, kinds, k);
        lua_pushfstring(L, "%s/%s", lua_tostring(L, -2), lua_tostring(L, -1));
        nnc_weight *w = nnc_weights_find(nnc_model_weights(m), lua_tostring(L, -1));
        if (!w) {
          lua_pop(L, 3);
          continue;
        }
        lua_pushfstring(L, "%s/%s:0", cls, lua_tostring(L, -1));
        point_at(&out[(*n)++], lua_tostring(L, -1), w);
        lua_rawseti(L, names, ++kept);
        lua_pop(L, 3);
      }
      lua_pop(L, 2);
    }
  if (nkinds > 0 && *n == 0) return NULL;
  *iter_name = lua_pushfstring(L, "%s/iter:0", cls);
  lua_rawseti(L, names, ++kept);
  return out;
}

static const char *opt_string(lua_State *L, int t, const char *key) {
  lua_getfield(L, t, key);
  const char *s = lua_tostring(L, -1);
  lua_pop(L, 1); /* the table keeps it */
  return s;
}

/* core.save_h5(store, path, {layers=..., model_config=, training_config=,
 * optimizer={class="Adam", slots={"m", "v"}}}) */
static int l_save_h5(lua_State *L) {
  nnc_model *m = check_model(L, 1);
  const char *path = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  nnc_h5_file f = {0};
  f.layers = model_layers(L, m, 3, &f.nlayers);
  f.model_config = opt_string(L, 3, "model_config");
  f.training_config = opt_string(L, 3, "training_config");
  if (f.model_config) {
    int weights = 0;
    for (int i = 0; i < f.nlayers; i++) weights += f.layers[i].count;
    const char *iter_name = NULL;
    f.slots = optimizer_slots(L, m, 3, weights, &f.nslots, &iter_name);
    if (f.slots) f.iter_name = iter_name, f.iterations = m->steps;
    else f.nslots = 0;
  }
  nnc_status st = {0};
  if (nnc_h5_save(path, &f, &st)) return nnc_lua_raise_here(L, &st);
  return 0;
}

typedef struct h5_box {
  nnc_h5_file f;
  int loaded;
} h5_box;

static int box_gc(lua_State *L) {
  h5_box *b = lua_touserdata(L, 1);
  if (b->loaded) nnc_h5_file_free(&b->f);
  b->loaded = 0;
  return 0;
}

/* The file read whole into a userdata that frees it when collected. */
static nnc_h5_file *read_boxed(lua_State *L, const char *path) {
  h5_box *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->loaded = 0;
  lua_newtable(L);
  lua_pushcfunction(L, box_gc);
  lua_setfield(L, -2, "__gc");
  lua_setmetatable(L, -2);
  nnc_status st = {0};
  if (nnc_h5_read(path, &b->f, &st)) nnc_lua_raise_here(L, &st);
  b->loaded = 1;
  return &b->f;
}

/* Splits "Adam/dense/kernel/m:0" into the store's "dense/kernel/m". */
static int slot_store_name(const char *keras, char *out, size_t size) {
  const char *slash = strchr(keras, '/');
  size_t len = slash ? strlen(slash + 1) : 0;
  if (!slash || len < 3 || strcmp(slash + 1 + len - 2, ":0") || len - 2 >= size) return -1;
  memcpy(out, slash + 1, len - 2);
  out[len - 2] = 0;
  return 0;
}

/* Checks every saved slot against a model weight before anything is set. */
static int check_slots(const char *path, nnc_model *m, const nnc_h5_file *f, nnc_status *st) {
  for (int i = 0; i < f->nslots; i++) {
    char name[512], weight[512];
    const nnc_named_tensor *t = &f->slots[i];
    const char *cut = slot_store_name(t->name, name, sizeof name) ? NULL : strrchr(name, '/');
    if (cut) memcpy(weight, name, (size_t)(cut - name)), weight[cut - name] = 0;
    const nnc_weight *w = cut ? nnc_weights_find(&m->weights, weight) : NULL;
    if (!w || w->rank != t->rank || memcmp(w->shape, t->shape, sizeof(int64_t) * (size_t)w->rank))
      return nnc_fail(st, "%s: the optimizer's '%s' matches no weight of the model", path, t->name);
  }
  return 0;
}

static void set_slots(nnc_model *m, const nnc_h5_file *f) {
  nnc_status ignored = {0};
  for (int i = 0; i < f->nslots; i++) {
    char name[512];
    const nnc_named_tensor *t = &f->slots[i];
    slot_store_name(t->name, name, sizeof name);
    nnc_weight *w = nnc_weights_add(&m->weights, name, t->rank, t->shape, &ignored);
    if (w) memcpy(w->data, t->data, sizeof(float) * (size_t)nnc_weight_numel(w));
  }
  m->steps = f->iterations;
}

/* core.load_h5(store, path, {layers=...}, with_optimizer): Keras's
 * load_weights, and for a whole model its optimizer state; all or nothing. */
static int l_load_h5(lua_State *L) {
  nnc_model *m = check_model(L, 1);
  const char *path = luaL_checkstring(L, 2);
  luaL_checktype(L, 3, LUA_TTABLE);
  int with_optimizer = lua_toboolean(L, 4);
  int n;
  nnc_h5_layer *layers = model_layers(L, m, 3, &n);
  const nnc_h5_file *f = read_boxed(L, path);
  nnc_status st = {0};
  nnc_model_weights(m);
  if (with_optimizer && check_slots(path, m, f, &st)) return nnc_lua_raise_here(L, &st);
  int rc = nnc_h5_assign(path, f, layers, n, &st);
  if (!rc && with_optimizer && f->iter_name) set_slots(m, f);
  nnc_model_weights_changed(m);
  if (rc) return nnc_lua_raise_here(L, &st);
  return 0;
}

/* core.h5_config(path) -> model_config, training_config (JSON text or nil) */
static int l_h5_config(lua_State *L) {
  const nnc_h5_file *f = read_boxed(L, luaL_checkstring(L, 1));
  lua_pushstring(L, f->model_config);
  lua_pushstring(L, f->training_config);
  return 2;
}

/* core.plot_curves(path, title, {{title=, xlabel=, ylabel=, series={{name=, y={...}}, ...}}, ...}) */
static int l_plot_curves(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *title = luaL_optstring(L, 2, NULL);
  luaL_checktype(L, 3, LUA_TTABLE);
  int n = (int)luaL_len(L, 3);
  luaL_argcheck(L, n >= 1 && n <= 4, 3, "one to four panels");
  nnc_plot_panel panels[4];
  memset(panels, 0, sizeof panels);
  for (int i = 0; i < n; i++) {
    lua_geti(L, 3, i + 1);
    int p = lua_gettop(L);
    panels[i].title = opt_string(L, p, "title");
    panels[i].xlabel = opt_string(L, p, "xlabel");
    panels[i].ylabel = opt_string(L, p, "ylabel");
    lua_getfield(L, p, "series");
    panels[i].nseries = (int)luaL_len(L, -1);
    luaL_argcheck(L, panels[i].nseries <= NNC_PLOT_MAX_SERIES, 3, "too many curves in a panel");
    for (int s = 0; s < panels[i].nseries; s++) {
      lua_geti(L, -1, s + 1);
      nnc_plot_series *c = &panels[i].series[s];
      c->name = opt_string(L, -1, "name");
      lua_getfield(L, -1, "y");
      c->n = (int)luaL_len(L, -1);
      double *y = stack_array(L, sizeof *y, c->n);
      lua_rawseti(L, -3, 0); /* kept in the series table */
      for (int k = 0; k < c->n; k++) {
        lua_geti(L, -1, k + 1);
        y[k] = luaL_checknumber(L, -1);
        lua_pop(L, 1);
      }
      c->y = y;
      lua_pop(L, 2);
    }
    lua_pop(L, 1); /* the panel table stays referenced by argument 3 */
    if (!panels[i].title) panels[i].title = "";
    if (!panels[i].xlabel) panels[i].xlabel = "";
    if (!panels[i].ylabel) panels[i].ylabel = "";
    for (int s = 0; s < panels[i].nseries; s++)
      if (!panels[i].series[s].name) panels[i].series[s].name = "";
    lua_pop(L, 1);
  }
  nnc_status st = {0};
  if (nnc_plot_curves(path, title, panels, n, &st)) return nnc_lua_raise_here(L, &st);
  return 0;
}

/* core.plot_images(path, x f32[N,H,W(,C)], captions or nil, wrong or nil, cols) */
static int l_plot_images(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  nnc_tensor *x = nnc_lua_checktensor(L, 2);
  nnc_image_grid g = {0};
  g.cols = (int)luaL_checkinteger(L, 5);
  g.n = (int)x->shape[0], g.h = (int)x->shape[1], g.w = (int)x->shape[2];
  g.channels = x->rank == 4 ? (int)x->shape[3] : 1;
  g.pixels = nnc_tensor_f32(x);
  const char **captions = NULL;
  int *wrong = NULL;
  if (lua_istable(L, 3)) {
    captions = stack_array(L, sizeof *captions, g.n);
    wrong = stack_array(L, sizeof *wrong, g.n);
    for (int i = 0; i < g.n; i++) {
      lua_geti(L, 3, i + 1);
      captions[i] = lua_tostring(L, -1);
      lua_pop(L, 1); /* the table keeps it */
      lua_geti(L, 4, i + 1);
      wrong[i] = lua_toboolean(L, -1);
      lua_pop(L, 1);
    }
  }
  g.captions = captions, g.wrong = wrong;
  nnc_status st = {0};
  if (nnc_plot_images(path, &g, &st)) return nnc_lua_raise_here(L, &st);
  return 0;
}

/* core.write_file(path, bytes): the whole file, atomically. */
static int l_write_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t len;
  const char *bytes = luaL_checklstring(L, 2, &len);
  nnc_status st = {0};
  if (nnc_write_bytes_file(path, bytes, len, &st)) return nnc_lua_raise_here(L, &st);
  return 0;
}

void nnc_lua_open_files(lua_State *L, int core_index) {
  static const luaL_Reg functions[] = {{"save_h5", l_save_h5},         {"load_h5", l_load_h5},
                                       {"h5_config", l_h5_config},     {"plot_curves", l_plot_curves},
                                       {"plot_images", l_plot_images}, {"write_file", l_write_file},
                                       {NULL, NULL}};
  lua_pushvalue(L, core_index);
  luaL_setfuncs(L, functions, 0);
  lua_pop(L, 1);
}
