/* The list of backends, in the order --backend names them. */
#include <stdio.h>
#include <string.h>

#include "runtime/backend.h"

static const nnc_backend *const backends[] = {&nnc_backend_cpu, &nnc_backend_interp, &nnc_backend_cuda_emu};

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
