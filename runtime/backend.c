/* The list of backends, in the order --backend names them. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ir/op.h"
#include "runtime/backend.h"

static const nnc_backend *const backends[] = {&nnc_backend_cpu, &nnc_backend_interp, &nnc_backend_cuda,
                                              &nnc_backend_cuda_emu};

const nnc_backend *nnc_backend_find(const char *name, nnc_status *st) {
  const char *names[sizeof backends / sizeof backends[0] + 1];
  size_t count = sizeof backends / sizeof backends[0];
  for (size_t i = 0; i < count; i++) {
    if (!strcmp(backends[i]->name, name)) return backends[i];
    names[i] = backends[i]->name;
  }
  names[count] = NULL;
  char valid[256] = "";
  for (size_t i = 0, used = 0; i < count && used < sizeof valid; i++)
    used += (size_t)snprintf(valid + used, sizeof valid - used, "%s%s", i ? ", " : "", names[i]);
  const char *near = nnc_closest_name(name, names);
  nnc_fail(st, "unknown backend '%s'%s%s%s (backends: %s)", name, near ? "; did you mean '" : "", near ? near : "",
           near ? "'?" : "", valid);
  return NULL;
}

const nnc_backend *nnc_backend_select(const char *name, const nnc_options *o, FILE *note, nnc_status *st) {
  const nnc_backend *b = nnc_backend_find(name, st);
  if (!b) return NULL;
  nnc_graph *empty = nnc_graph_new();
  nnc_status why = {0};
  nnc_exec *e = b->prepare(empty, o, &why);
  if (e) b->release(e);
  nnc_graph_free(empty);
  if (e) return b;
  nnc_status ignore = {0};
  const nnc_backend *fallback = nnc_backend_find("cpu", &ignore);
  if (!fallback) fallback = &nnc_backend_interp;
  char *nl = strchr(why.msg, '\n');
  if (nl) *nl = 0; /* one line */
  if (note) fprintf(note, "nnc: %s cannot run here: %s; using %s\n", b->name, why.msg, fallback->name);
  return fallback;
}

double nnc_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int nnc_leaf_data(const nnc_node *n, const void *data, nnc_status *st) {
  return data ? 0 : nnc_fail(st, "%s '%s' has no data", nnc_ops[n->op].name, n->name ? n->name : "?");
}
