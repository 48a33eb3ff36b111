/* The interpreter as a backend: every node gets its own buffer, kept until
 * the next run so any node's value can be inspected (NaN hunting, tests). */
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/backend.h"
#include "runtime/interp/interp.h"

struct nnc_exec {
  const nnc_graph *g;
  void **values;
};

static nnc_exec *interp_prepare(const nnc_graph *g, const nnc_options *o, nnc_status *st) {
  (void)o; /* the reference has no settings */
  nnc_exec *e = calloc(1, sizeof *e);
  if (e) e->values = calloc((size_t)g->nnodes + 1, sizeof *e->values);
  if (!e || !e->values) {
    free(e);
    nnc_fail(st, "out of memory preparing the interpreter");
    return NULL;
  }
  e->g = g;
  return e;
}

static int interp_run(nnc_exec *e, void *const *leaves, const nnc_run_opts *opts, nnc_status *st) {
  nnc_interp_free(e->g, e->values);
  for (int32_t id = 0; id < e->g->nnodes; id++)
    if (nnc_ops[e->g->nodes[id].op].flags & NNC_OPF_LEAF) e->values[id] = leaves[id];
  return nnc_interp_run(e->g, e->values, opts, st);
}

static const void *interp_value(nnc_exec *e, int32_t id) { return e->values[id]; }

/* One buffer per value, no arena. */
static int64_t interp_arena_bytes(nnc_exec *e) {
  (void)e;
  return -1;
}

static void interp_release(nnc_exec *e) {
  if (!e) return;
  nnc_interp_free(e->g, e->values);
  free(e->values);
  free(e);
}

const nnc_backend nnc_backend_interp = {
    .name = "interp",
    .prepare = interp_prepare,
    .run = interp_run,
    .value = interp_value,
    .arena_bytes = interp_arena_bytes,
    .release = interp_release,
};
