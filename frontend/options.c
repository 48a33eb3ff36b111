#include "frontend/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda.h"

/* A variable's value, NULL when unset or empty. */
static const char *env(const char *name) {
  const char *v = getenv(name);
  return v && *v ? v : NULL;
}

/* $NNC_DEBUG: a comma-separated list of detail levels (the largest counts)
 * and named checks ("nan"), in any order: NNC_DEBUG=2,nan. */
static void read_debug(const char *s, nnc_options *o) {
  while (s && *s) {
    size_t len = strcspn(s, ",");
    if (len == 3 && !strncmp(s, "nan", 3)) o->debug_nan = 1;
    else if (len && atoi(s) > o->debug) o->debug = atoi(s);
    s += len + (s[len] == ',');
  }
}

int nnc_options_from_env(nnc_options *o, nnc_status *st) {
  memset(o, 0, sizeof *o);
  read_debug(env("NNC_DEBUG"), o);
  o->arch = env("NNC_CUDA_ARCH");
  o->dump_kernels = env("NNC_DUMP_KERNELS");
  o->precision = env("NNC_PRECISION");
  if (o->precision && nnc_cuda_check_precision(o->precision, st)) return nnc_fail_prefix(st, "$NNC_PRECISION: ");
  const char *threads = env("NNC_CPU_THREADS");
  o->cpu_threads = threads ? (int)strtol(threads, NULL, 10) : 0;
  /* An explicit 0 or less is one thread, as before; unset is one per CPU. */
  if (threads && o->cpu_threads < 1) o->cpu_threads = 1;
  o->cpu_conv = env("NNC_CPU_CONV");
  o->cpu_matmul = env("NNC_CPU_MATMUL");
  o->no_winograd = getenv("NNC_CPU_WINOGRAD") && atoi(getenv("NNC_CPU_WINOGRAD")) == 0;
  o->cpu_poison = getenv("NNC_CPU_POISON") != NULL;
  o->no_cuda_graph = getenv("NNC_CUDA_GRAPH") && !strcmp(getenv("NNC_CUDA_GRAPH"), "0");
  const char *device = getenv("NNC_CUDA_DEVICE"), *local = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
  o->cuda_device_set = device != NULL;
  o->cuda_device = device ? atoi(device) : local ? atoi(local) : 0;
  const char *emu = env("NNC_EMU_THREADS");
  o->emu_threads = emu ? atoi(emu) : 0;
  if (emu && o->emu_threads < 1) o->emu_threads = 1;
  o->nvrtc = env("NNC_NVRTC");
  o->cc = env("NNC_CC") ? env("NNC_CC") : env("CC");
  const char *nocache = getenv("NNC_NOCACHE");
  o->nocache = nocache && *nocache && strcmp(nocache, "0");
  o->cache_dir = env("NNC_CACHE_DIR");
  o->xdg_cache_home = env("XDG_CACHE_HOME");
  o->home = env("HOME");
  o->tmpdir = env("TMPDIR");
  o->data_dir = env("NNC_DATA");
  o->data_url = env("NNC_DATA_URL");
  o->cuda_home = env("CUDA_HOME");
  o->cuda_path = env("CUDA_PATH");
  o->virtual_env = env("VIRTUAL_ENV");
  o->conda_prefix = env("CONDA_PREFIX");
  const char *lower = env("NNC_LOWER");
  if (lower && nnc_lower_parse(lower, o->lower, st)) return nnc_fail_prefix(st, "$NNC_LOWER: ");
  return 0;
}
