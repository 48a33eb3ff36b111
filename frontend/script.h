/* Running a model script: the Lua state with nn, data and nnc loaded. */
#ifndef NNC_SCRIPT_H
#define NNC_SCRIPT_H

#include "frontend/bind.h"
#include "ir/status.h"

typedef struct nnc_script_args {
  const char *path;
  int nopts;
  const char *const *opts; /* "--name", "value", ... as given after the script */
  nnc_run_config config;
} nnc_script_args;

/* Runs the script; returns 0, or -1 with the error (file, line, layer) in st. */
int nnc_script_run(const nnc_script_args *args, nnc_status *st);

/* A Lua state with every nnc module loaded, for tests and tools. */
struct lua_State *nnc_script_state(const nnc_script_args *args, nnc_status *st);

#endif
