/* Lua bindings for fit / evaluate / predict: the data checks a Keras user
 * relies on (shapes, label kinds, label range), then runtime/train/fit.c. */
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/bind.h"
#include "frontend/bind_augment.h"
#include "frontend/tensor.h"
#include "ir/op.h"
#include "runtime/train/bench.h"
#include "runtime/train/check.h"
#include "runtime/train/finite.h"
#include "runtime/train/fit.h"
#include "runtime/store/safetensors.h"

static int32_t model_input(const nnc_graph *g) {
  for (int32_t id = 0; id < g->nnodes; id++)
    if (g->nodes[id].op == NNC_OP_INPUT) return id;
  return -1;
}

static const nnc_node *model_output(lua_State *L, const nnc_graph *g) {
  int32_t out = nnc_graph_output_node(g, "output");
  if (out < 0) nnc_lua_errorf(L, "the model has no output");
  return &g->nodes[out];
}

void nnc_lua_check_x(lua_State *L, const char *what, const nnc_graph *g, const nnc_tensor *x) {
  const nnc_node *in = &g->nodes[model_input(g)];
  char have[NNC_TENSOR_TYPE_MAX], want[128];
  int fits = x->dtype == NNC_F32 && x->rank == in->rank;
  for (int i = 1; fits && i < in->rank; i++) fits = x->shape[i] == in->shape[i];
  if (!fits)
    nnc_lua_errorf(L, "%s: the model takes x of type %s, got %s%s", what, nnc_type_str(in, want, sizeof want),
                   nnc_tensor_type_str(x, have, sizeof have),
                   x->dtype == NNC_F32 ? "" : " (x / 255.0 or x:astype(\"float32\") gives f32)");
}

/* Labels must suit the loss: class indices for the sparse loss, rows shaped
 * like the output otherwise; indices must name an output class. */
void nnc_lua_check_y(lua_State *L, const char *what, const nnc_model *m, const nnc_graph *g, const nnc_tensor *x,
                    const nnc_tensor *y) {
  const nnc_node *out = model_output(L, g);
  char have[NNC_TENSOR_TYPE_MAX], want[128];
  int64_t classes = out->shape[out->rank - 1];
  if (y->shape[0] != x->shape[0])
    nnc_lua_errorf(L, "%s: x has %lld rows but y has %lld", what, (long long)x->shape[0], (long long)y->shape[0]);
  nnc_type_str(out, want, sizeof want);
  nnc_tensor_type_str(y, have, sizeof have);
  if (m->spec.loss == NNC_LOSS_SPARSE_XENT) {
    if (y->dtype != NNC_I32 || y->rank != 1)
      nnc_lua_errorf(L, "%s: sparse_categorical_crossentropy takes class indices i32[N], got %s%s", what, have,
                     y->rank == 2 ? " (one-hot labels need loss = \"categorical_crossentropy\")" : "");
    const int32_t *labels = nnc_tensor_i32(y);
    for (int64_t i = 0; i < y->shape[0]; i++)
      if (labels[i] < 0 || labels[i] >= classes)
        nnc_lua_errorf(L, "%s: label %d at row %lld is outside 0..%lld for a model with %lld outputs", what,
                       (int)labels[i], (long long)i + 1, (long long)classes - 1, (long long)classes);
    return;
  }
  int fits = y->dtype == NNC_F32 && y->rank == out->rank;
  for (int i = 1; fits && i < out->rank; i++) fits = y->shape[i] == out->shape[i];
  if (!fits)
    nnc_lua_errorf(L, "%s: %s takes targets shaped like the output %s, got %s%s", what,
                   m->spec.loss == NNC_LOSS_XENT ? "categorical_crossentropy" : "mse", want, have,
                   y->dtype == NNC_I32 ? " (class indices need loss = \"sparse_categorical_crossentropy\", "
                                         "or data.to_categorical(y))"
                                       : "");
}

static nnc_dataset dataset_of(const nnc_tensor *x, const nnc_tensor *y) {
  nnc_dataset d = {nnc_tensor_f32(x), x->shape[0], nnc_tensor_row_size(x), NULL, NNC_F32, 1};
  if (y) {
    d.y = y->dtype == NNC_I32 ? (const void *)nnc_tensor_i32(y) : (const void *)nnc_tensor_f32(y);
    d.y_dtype = y->dtype;
    d.y_row = nnc_tensor_row_size(y);
  }
  return d;
}

/* Fit's arrays, once per fit (Keras does not look): a value that is not
 * finite would turn the loss or the weights into nan. Under mpirun every
 * rank holds the same arrays and rank 0 speaks for them. */
static void warn_data(const nnc_model *m, const char *what, const nnc_tensor *x, const nnc_tensor *y) {
  if (m->shard && m->shard->rank != 0) return;
  char name[64];
  snprintf(name, sizeof name, "%s x", what);
  nnc_warn_non_finite_data(stderr, name, nnc_tensor_f32(x), x->rank, x->shape);
  snprintf(name, sizeof name, "%s y", what);
  if (y->dtype == NNC_F32) nnc_warn_non_finite_data(stderr, name, nnc_tensor_f32(y), y->rank, y->shape);
}

static nnc_model *check_model(lua_State *L, int idx) { return luaL_checkudata(L, idx, NNC_STORE_META); }

/* core.predict(graph, model, x, batch_size) -> tensor */
static int l_predict(lua_State *L) {
  const nnc_graph *g = nnc_lua_checkgraph(L, 1);
  nnc_model *m = check_model(L, 2);
  nnc_tensor *x = nnc_lua_checktensor(L, 3);
  int64_t batch = luaL_optinteger(L, 4, 32);
  nnc_lua_check_x(L, "predict", g, x);
  const nnc_node *out = model_output(L, g);
  int64_t shape[NNC_MAX_RANK];
  memcpy(shape, out->shape, sizeof shape);
  shape[0] = x->shape[0];
  nnc_tensor *y = nnc_lua_newtensor(L, NNC_F32, out->rank, shape);
  nnc_status st = {0};
  if (x->shape[0] > 0 &&
      nnc_predict(m, g, nnc_tensor_f32(x), x->shape[0], nnc_tensor_row_size(x), batch, nnc_tensor_f32(y), &st))
    return nnc_lua_raise_here(L, &st);
  return 1;
}

/* core.evaluate(graph, model, x, y, batch_size, verbose) -> loss, accuracy */
static int l_evaluate(lua_State *L) {
  const nnc_graph *g = nnc_lua_checkgraph(L, 1);
  nnc_model *m = check_model(L, 2);
  nnc_tensor *x = nnc_lua_checktensor(L, 3), *y = nnc_lua_checktensor(L, 4);
  int64_t batch = luaL_optinteger(L, 5, 32);
  int verbose = (int)luaL_optinteger(L, 6, 1);
  nnc_lua_check_x(L, "evaluate", g, x);
  nnc_lua_check_y(L, "evaluate", m, g, x, y);
  nnc_dataset d = dataset_of(x, y);
  double loss, accuracy;
  nnc_status st = {0};
  if (nnc_evaluate(m, g, &d, batch, verbose, stdout, &loss, &accuracy, &st)) return nnc_lua_raise_here(L, &st);
  lua_pushnumber(L, loss);
  if (m->spec.accuracy) lua_pushnumber(L, accuracy);
  else lua_pushnil(L);
  return 2;
}

static int64_t opt_integer(lua_State *L, int opts, const char *key, int64_t def) {
  lua_getfield(L, opts, key);
  int64_t v = luaL_optinteger(L, -1, def);
  lua_pop(L, 1);
  return v;
}

/* Reads fit's options (epochs, batch_size, verbose, validation_x/_y) into o;
 * the validation arrays into *val. */
void nnc_lua_fit_opts(lua_State *L, int opts, const nnc_graph *g, nnc_model *m, nnc_fit_opts *o, nnc_dataset *val) {
  luaL_checktype(L, opts, LUA_TTABLE);
  memset(o, 0, sizeof *o);
  o->epochs = (int)opt_integer(L, opts, "epochs", 1);
  o->batch_size = opt_integer(L, opts, "batch_size", 32);
  o->verbose = (int)opt_integer(L, opts, "verbose", 1);
  o->out = stdout;
  lua_getfield(L, opts, "validation_x");
  lua_getfield(L, opts, "validation_y");
  if (!lua_isnil(L, -2)) {
    nnc_tensor *vx = nnc_lua_checktensor(L, -2), *vy = nnc_lua_checktensor(L, -1);
    nnc_lua_check_x(L, "fit validation_data", g, vx);
    nnc_lua_check_y(L, "fit validation_data", m, g, vx, vy);
    warn_data(m, "fit's validation_data", vx, vy);
    *val = dataset_of(vx, vy);
    o->validation = val;
  }
  lua_pop(L, 2); /* the tensors stay referenced by the options table */
}

/* core.fit(graph, model, x, y, {epochs, batch_size, validation_split,
 *          validation_x, validation_y, shuffle, verbose}, dispatch, wanted):
 * dispatch(event, index, logs) runs the callbacks (see bind_callbacks.c). */
static int l_fit(lua_State *L) {
  const nnc_graph *g = nnc_lua_checkgraph(L, 1);
  nnc_model *m = check_model(L, 2);
  nnc_tensor *x = nnc_lua_checktensor(L, 3), *y = nnc_lua_checktensor(L, 4);
  nnc_lua_check_x(L, "fit", g, x);
  nnc_lua_check_y(L, "fit", m, g, x, y);
  warn_data(m, "fit's", x, y);
  nnc_fit_opts o;
  nnc_dataset all = dataset_of(x, y), train, val;
  nnc_lua_fit_opts(L, 5, g, m, &o, &val);
  lua_getfield(L, 5, "validation_split");
  double split = luaL_optnumber(L, -1, 0);
  lua_getfield(L, 5, "shuffle");
  int shuffle = lua_isnil(L, -1) || lua_toboolean(L, -1);
  lua_pop(L, 2);
  nnc_lua_callbacks bridge;
  nnc_callbacks callbacks = nnc_lua_callbacks_of(L, 6, 7, &bridge);
  o.callbacks = &callbacks;
  nnc_status st = {0};
  nnc_dataset split_val;
  if (nnc_split_validation(&all, split, &train, &split_val, &st)) return nnc_lua_raise_here(L, &st);
  if (!o.validation && split_val.rows > 0) o.validation = &split_val;
  nnc_array_source src;
  if (nnc_array_source_init(&src, &train, o.batch_size, shuffle, m->seed, &st)) return nnc_lua_raise_here(L, &st);
  src.base.checked = 1;
  int rc = nnc_fit(m, g, &src.base, &o, &st);
  nnc_array_source_free(&src);
  if (rc) return bridge.failed ? nnc_lua_raise(L, &st) : nnc_lua_raise_here(L, &st);
  return 0;
}

/* The batch of x and y for the *_on_batch calls. */
static nnc_batch batch_of(lua_State *L, const char *what, const nnc_graph *g, nnc_model *m, nnc_dataset *d) {
  nnc_tensor *x = nnc_lua_checktensor(L, 3), *y = nnc_lua_checktensor(L, 4);
  nnc_lua_check_x(L, what, g, x);
  nnc_lua_check_y(L, what, m, g, x, y);
  *d = dataset_of(x, y);
  return (nnc_batch){d->x, d->y, d->rows};
}

typedef int on_batch_fn(nnc_model *m, const nnc_graph *forward, const nnc_batch *b, double *loss,
                        double *accuracy, nnc_status *st);

/* core.train_on_batch / core.test_on_batch(graph, model, x, y) -> loss[, metric] */
static int one_batch(lua_State *L, const char *what, on_batch_fn *run) {
  const nnc_graph *g = nnc_lua_checkgraph(L, 1);
  nnc_model *m = check_model(L, 2);
  nnc_dataset d;
  nnc_batch b = batch_of(L, what, g, m, &d);
  double loss, accuracy;
  nnc_status st = {0};
  if (run(m, g, &b, &loss, &accuracy, &st)) return nnc_lua_raise_here(L, &st);
  lua_pushnumber(L, loss);
  if (!m->spec.accuracy) return 1;
  lua_pushnumber(L, accuracy);
  return 2;
}

static int l_train_on_batch(lua_State *L) { return one_batch(L, "train_on_batch", nnc_train_on_batch); }
static int l_test_on_batch(lua_State *L) { return one_batch(L, "test_on_batch", nnc_test_on_batch); }

/* The model's weights (its forward graph's params and states, not optimizer
 * slots), in the graph's order: a layer's as Keras orders them (BatchNormalization:
 * gamma, beta, moving_mean, moving_variance),
 * under Keras's variable names: "conv2d/kernel:0". */
static nnc_named_tensor *model_tensors(lua_State *L, const nnc_graph *g, nnc_model *m, int *count) {
  int n = 0;
  for (int32_t id = 0; id < g->nnodes; id++) n += nnc_op_is_weight(g->nodes[id].op);
  nnc_named_tensor *t = lua_newuserdatauv(L, sizeof *t * (size_t)(n ? n : 1), 0);
  lua_newtable(L); /* keeps the name strings alive */
  *count = 0;
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *p = &g->nodes[id];
    if (!nnc_op_is_weight(p->op)) continue;
    nnc_weight *w = nnc_weights_find(nnc_model_weights(m), p->name);
    if (!w) nnc_lua_errorf(L, "the model has no value for weight '%s'", p->name);
    lua_pushfstring(L, "%s:0", p->name);
    t[*count].name = lua_tostring(L, -1);
    lua_rawseti(L, -2, *count + 1);
    t[*count].rank = w->rank;
    memcpy(t[*count].shape, w->shape, sizeof w->shape);
    t[*count].data = w->data;
    (*count)++;
  }
  return t;
}

/* core.save_weights(graph, model, path) */
static int l_save_weights(lua_State *L) {
  const nnc_graph *g = nnc_lua_checkgraph(L, 1);
  nnc_model *m = check_model(L, 2);
  const char *path = luaL_checkstring(L, 3);
  int count;
  nnc_named_tensor *t = model_tensors(L, g, m, &count);
  nnc_status st = {0};
  if (nnc_safetensors_save(path, t, count, &st)) return nnc_lua_raise_here(L, &st);
  return 0;
}

static int by_offset(const void *a, const void *b) {
  const nnc_safetensors_entry *x = a, *y = b;
  return (x->begin > y->begin) - (x->begin < y->begin);
}

/* Keras's load_weights matches a file written by another model with the
 * same layers (other names, e.g. dense_1 for dense) by order: when the
 * names differ but the counts agree, take the file's names in file order. */
static int match_by_order(lua_State *L, const char *path, nnc_named_tensor *t, int count, nnc_status *st) {
  nnc_safetensors_index index;
  if (nnc_safetensors_read_index(path, &index, st)) return -1;
  int all_named = 1;
  for (int i = 0; i < count && all_named; i++) {
    int found = 0;
    for (int j = 0; j < index.count && !found; j++) found = !strcmp(index.entries[j].name, t[i].name);
    all_named = found;
  }
  int rc = 0;
  if (!all_named && index.count == count) {
    qsort(index.entries, (size_t)index.count, sizeof *index.entries, by_offset);
    lua_newtable(L);
    for (int i = 0; i < count && !rc; i++) {
      const nnc_safetensors_entry *e = &index.entries[i];
      if (e->rank != t[i].rank || memcmp(e->shape, t[i].shape, sizeof *e->shape * (size_t)e->rank)) {
        char have[256], need[256];
        rc = nnc_fail(st, "%s: loading by order (the names differ): the model's weight #%d '%s' is %s, but the file's tensor in that place, '%s', is %s",
                      path, i + 1, t[i].name, nnc_safetensors_shape_str(t[i].rank, t[i].shape, need, sizeof need),
                      e->name, nnc_safetensors_shape_str(e->rank, e->shape, have, sizeof have));
      }
      lua_pushstring(L, index.entries[i].name);
      t[i].name = lua_tostring(L, -1);
      lua_rawseti(L, -2, i + 1);
    }
  }
  nnc_safetensors_index_free(&index);
  return rc;
}

/* core.load_weights(graph, model, path): all or nothing. */
static int l_load_weights(lua_State *L) {
  const nnc_graph *g = nnc_lua_checkgraph(L, 1);
  nnc_model *m = check_model(L, 2);
  const char *path = luaL_checkstring(L, 3);
  int count;
  nnc_named_tensor *t = model_tensors(L, g, m, &count);
  nnc_status st = {0};
  if (match_by_order(L, path, t, count, &st)) return nnc_lua_raise_here(L, &st);
  int rc = nnc_safetensors_load(path, t, count, &st);
  nnc_model_weights_changed(m); /* all or nothing, but say so either way */
  if (rc) return nnc_lua_raise_here(L, &st);
  return 0;
}

/* core.compile_graphs(graph, model, batch): builds the train-step and eval
 * graphs without running them, so --dry-run checks and dumps every pass. */
static int l_compile_graphs(lua_State *L) {
  const nnc_graph *g = nnc_lua_checkgraph(L, 1);
  nnc_model *m = check_model(L, 2);
  int64_t batch = luaL_optinteger(L, 3, 32);
  nnc_status st = {0};
  if (!nnc_model_compiled(m, g, NNC_KIND_TRAIN, batch, &st) || !nnc_model_compiled(m, g, NNC_KIND_EVAL, batch, &st))
    return nnc_lua_raise_here(L, &st);
  return 0;
}

/* core.bench(graph, model): nnc bench's measurements, on stdout. */
static int l_bench(lua_State *L) {
  const nnc_graph *g = nnc_lua_checkgraph(L, 1);
  nnc_model *m = check_model(L, 2);
  const nnc_run_config *c = nnc_lua_config(L);
  nnc_bench_opts o = {c->bench.batch, c->bench.infer_batch, c->bench.steps, c->bench.top, c->bench.predict, stdout};
  nnc_status st = {0};
  if (nnc_bench(m, g, &o, &st)) return nnc_lua_raise(L, &st);
  return 0;
}

/* core.check(graph, model): nnc check's report on stdout; an error past the tolerance. */
static int l_check(lua_State *L) {
  const nnc_graph *g = nnc_lua_checkgraph(L, 1);
  nnc_model *m = check_model(L, 2);
  const nnc_run_config *c = nnc_lua_config(L);
  nnc_status st = {0};
  fflush(stdout);
  const nnc_backend *b = nnc_backend_select(c->check.backend, &c->opts, stderr, &st);
  if (!b) return nnc_lua_raise(L, &st);
  nnc_check_opts o = {b, c->check.steps, c->check.batch, c->check.tolerance, c->check.grad_tolerance, stdout, NULL};
  nnc_tensor *x = nnc_lua_totensor(L, 3), *y = nnc_lua_totensor(L, 4);
  nnc_dataset data;
  if (x && y) {
    nnc_lua_check_x(L, "check", g, x);
    nnc_lua_check_y(L, "check", m, g, x, y);
    data = dataset_of(x, y);
    o.data = &data;
  }
  nnc_check_result r;
  if (nnc_check(m, g, &o, &r, &st)) return nnc_lua_raise(L, &st);
  return 0;
}

void nnc_lua_open_model_data(lua_State *L, int core_index) {
  static const luaL_Reg functions[] = {{"bench", l_bench},
                                       {"check", l_check},
                                       {"compile_graphs", l_compile_graphs},
                                       {"save_weights", l_save_weights},
                                       {"load_weights", l_load_weights},
                                       {"predict", l_predict},
                                       {"evaluate", l_evaluate},
                                       {"fit", l_fit},
                                       {"train_on_batch", l_train_on_batch},
                                       {"test_on_batch", l_test_on_batch},
                                       {NULL, NULL}};
  lua_pushvalue(L, core_index);
  luaL_setfuncs(L, functions, 0);
  lua_pop(L, 1);
}
