#include "codegen/dl.h"

#include <dlfcn.h>
#include <glob.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

/* Folder patterns (glob) where CUDA libraries live, after the loader's own
 * path; "$NAME" at the start stands for that environment variable's value
 * (as read into nnc_options, see `vars`) and the pattern is skipped when it
 * is unset. */
static const char *const places[] = {
    "$CUDA_HOME/lib64",
    "$CUDA_HOME/targets/x86_64-linux/lib",
    "$CUDA_PATH/lib64",
    "/usr/local/cuda/lib64",
    "/usr/local/cuda/targets/x86_64-linux/lib",
    "$VIRTUAL_ENV/lib/python3*/site-packages/nvidia/*/lib",
    "$CONDA_PREFIX/lib/python3*/site-packages/nvidia/*/lib",
    "$CONDA_PREFIX/lib",
    "$HOME/.local/lib/python3*/site-packages/nvidia/*/lib",
    "/usr/local/lib/python3*/dist-packages/nvidia/*/lib",
    "/usr/local/lib/python3*/site-packages/nvidia/*/lib",
    "/usr/lib/python3/dist-packages/nvidia/*/lib",
    "/opt/conda/lib/python3*/site-packages/nvidia/*/lib",
};

/* The variables `places` names, and where nnc_options holds each. */
static const struct {
  const char *name;
  size_t field;
} vars[] = {
    {"CUDA_HOME", offsetof(nnc_options, cuda_home)},
    {"CUDA_PATH", offsetof(nnc_options, cuda_path)},
    {"VIRTUAL_ENV", offsetof(nnc_options, virtual_env)},
    {"CONDA_PREFIX", offsetof(nnc_options, conda_prefix)},
    {"HOME", offsetof(nnc_options, home)},
};

static const char *var_value(const nnc_options *o, const char *name, size_t len) {
  for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
    if (strlen(vars[i].name) == len && !strncmp(vars[i].name, name, len))
      return *(const char *const *)((const char *)o + vars[i].field);
  return NULL;
}

/* The pattern with its variable expanded; 0 when the variable is unset. */
static int expand(const nnc_options *o, const char *place, char *out, size_t size) {
  if (place[0] != '$') return snprintf(out, size, "%s", place) < (int)size;
  const char *slash = strchr(place, '/');
  const char *value = var_value(o, place + 1, (size_t)(slash - place - 1));
  if (!value || !*value) return 0;
  return snprintf(out, size, "%s%s", value, slash) < (int)size;
}

static void note(char *tried, size_t size, const char *what) {
  size_t len = strlen(tried);
  if (len + 1 < size) snprintf(tried + len, size - len, "%s%s", len ? ", " : "", what);
}

/* The first of files in dir, with its companions loaded first. */
static void *open_in(const char *dir, const char *const *files, size_t nfiles, const char *const *companions,
                     size_t ncompanions) {
  char path[4096];
  for (size_t i = 0; i < nfiles; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, files[i]);
    if (access(path, R_OK) != 0) continue;
    /* Loaded for good: a companion stays as long as the library needing it. */
    for (size_t c = 0; c < ncompanions; c++) {
      char other[4096];
      snprintf(other, sizeof other, "%s/%s", dir, companions[c]);
      if (access(other, R_OK) == 0) dlopen(other, RTLD_NOW | RTLD_GLOBAL);
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h) return h;
  }
  return NULL;
}

void *nnc_dl_open_cuda(const nnc_options *o, const char *const *files, size_t nfiles, const char *const *companions,
                       size_t ncompanions, char *tried, size_t size) {
  tried[0] = 0;
  for (size_t i = 0; i < nfiles; i++) {
    void *h = dlopen(files[i], RTLD_NOW | RTLD_LOCAL);
    if (h) return h;
  }
  note(tried, size, "the loader's path");
  for (size_t p = 0; p < sizeof places / sizeof places[0]; p++) {
    char pattern[2048];
    /* $CUDA_HOME is often /usr/local/cuda: each folder is looked in once. */
    if (!expand(o, places[p], pattern, sizeof pattern) || strstr(tried, pattern)) continue;
    glob_t found;
    if (glob(pattern, 0, NULL, &found) != 0) {
      note(tried, size, pattern);
      continue;
    }
    void *h = NULL;
    for (size_t d = 0; d < found.gl_pathc && !h; d++) h = open_in(found.gl_pathv[d], files, nfiles, companions, ncompanions);
    globfree(&found);
    if (h) return h;
    note(tried, size, pattern);
  }
  return NULL;
}
