#include "codegen/dl.h"

#include <dlfcn.h>
#include <string.h>

const char *nnc_dl_fill(void *handle, const char *const *names, size_t count, void *table) {
  for (size_t i = 0; i < count; i++) {
    void *sym = dlsym(handle, names[i]);
    if (!sym) return names[i];
    /* A data pointer into a function-pointer slot: POSIX guarantees they
     * convert; memcpy keeps the compiler from objecting. */
    memcpy((char *)table + i * sizeof sym, &sym, sizeof sym);
  }
  return NULL;
}
