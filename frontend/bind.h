/* The thin C side of the Lua front end: functions check their arguments and
 * call into ir/, passes/ and runtime/. Layer sugar lives in frontend/lua. */
#ifndef NNC_BIND_H
#define NNC_BIND_H

#include <lua.h>

#include "frontend/tensor.h"
#include "ir/graph.h"
#include "passes/pass.h"
#include "runtime/train/fit.h"

#define NNC_GRAPH_META "nnc.graph"
#define NNC_STORE_META "nnc.store"

/* Settings from the command line that the script's run reads. */
typedef struct nnc_run_config {
  nnc_options opts; /* what every model compiles and runs with; opts.backend NULL keeps runtime/model.c's default */
  unsigned long long seed;
  int dry_run; /* build and check models, but train and run nothing */
  struct {
    int enabled;               /* nnc bench: run the script dry, then time its last compiled model */
    long long batch, infer_batch;
    int steps;
    int top; /* kernels listed in the profile */
    const char *predict; /* --predict GPU: each kernel's predicted time on it (runtime/cuda/cuda_predict.h) */
  } bench;
  const char *backend_asked; /* --backend as written: cuda stays asked for where it runs as cpu */
  struct nnc_comm *comm; /* under mpirun with more than one rank: the ranks' communicator, else NULL */
  long long bucket_bytes; /* --bucket-mb: the all-reduce's bucket size (0: NNC_BUCKET_BYTES) */
  struct {
    int enabled;         /* nnc check: run the script dry, then check its last compiled model */
    const char *backend; /* the backend checked against interp */
    long long batch;
    int steps;
    double tolerance;      /* --tol: losses and updates */
    double grad_tolerance; /* --grad-tol: gradients */
  } check;
} nnc_run_config;

/* ---- frontend/bind_lua.c: what every binding uses ---------------------- */

/* Raises a Lua error carrying an nnc message, unchanged (no position added). */
int nnc_lua_raise(lua_State *L, const nnc_status *st);
/* Raises an nnc message prefixed with the user's script line, for errors
 * that are about the call rather than a layer (those carry their own place). */
int nnc_lua_raise_here(lua_State *L, const nnc_status *st);
/* Keeps a copy of config for nnc_lua_config (before any binding runs). */
void nnc_lua_set_config(lua_State *L, const nnc_run_config *config);
const nnc_run_config *nnc_lua_config(lua_State *L);
/* The first user-script frame's file and line, for node locations. */
int nnc_lua_script_where(lua_State *L, const char **file, int *line);

/* ---- The parts of the `core` table, opened in turn by frontend/script.c -- */

/* Pushes the `core` table with the graph functions and the run's settings
 * (frontend/bind_graph.c). */
void nnc_lua_open_graph(lua_State *L, const nnc_run_config *config);
/* The graph userdata at idx (a Lua error otherwise). */
nnc_graph *nnc_lua_checkgraph(lua_State *L, int idx);
/* core.store, the model's run-time side (frontend/bind_model.c). */
void nnc_lua_open_weights(lua_State *L, int core_index);
/* fit, evaluate, predict and the batch calls (frontend/bind_fit.c). */
void nnc_lua_open_model_data(lua_State *L, int core_index);
/* Weight and model files, Keras JSON, TensorBoard (bind_files.c, bind_json.c, bind_tensorboard.c). */
void nnc_lua_open_files(lua_State *L, int core_index);
void nnc_lua_open_json(lua_State *L, int core_index);
void nnc_lua_open_tensorboard(lua_State *L, int core_index);

/* fit's callbacks as Lua sees them (frontend/bind_callbacks.c): one Lua
 * function dispatch(event, index, logs) -> stop, which runs every callback's
 * method for the event, and the list of event names some callback handles. */
typedef struct nnc_lua_callbacks {
  lua_State *L;
  int dispatch;   /* stack index of the dispatch function */
  int failed;     /* a callback raised an error: its message, with its place, is in the status */
} nnc_lua_callbacks;
nnc_callbacks nnc_lua_callbacks_of(lua_State *L, int dispatch, int wanted, nnc_lua_callbacks *bridge);
/* Registers core.early_stopping. */
void nnc_lua_open_callbacks(lua_State *L, int core_index);
/* fit's checks of the data (frontend/bind_fit.c): x must have the model's
 * per-row shape; y must suit the loss (class indices for the sparse loss,
 * rows shaped like the output otherwise) and name output classes. Errors
 * start with `what` ("fit") and carry the script line. */
void nnc_lua_check_x(lua_State *L, const char *what, const nnc_graph *g, const nnc_tensor *x);
void nnc_lua_check_y(lua_State *L, const char *what, const nnc_model *m, const nnc_graph *g, const nnc_tensor *x,
                     const nnc_tensor *y);
/* Reads fit's options (epochs, batch_size, verbose, validation_x/_y) from
 * the table at opts into o, the validation arrays into *val (frontend/bind_fit.c). */
void nnc_lua_fit_opts(lua_State *L, int opts, const nnc_graph *g, nnc_model *m, nnc_fit_opts *o,
                      nnc_dataset *val);

#endif
