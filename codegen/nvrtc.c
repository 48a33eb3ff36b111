/* NVRTC through dlopen (codegen/nvrtc.h). The few types and entry points
 * nnc needs are declared here, from NVRTC's documented C API, so that no
 * CUDA header is needed to build. */
#include "codegen/nvrtc.h"

#include <ctype.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cache.h"
#include "codegen/dl.h"
#include "ir/strbuf.h"

typedef int nvrtc_result; /* nvrtcResult: NVRTC_SUCCESS is 0 */
typedef struct nvrtc_program_s *nvrtc_program;

typedef struct nvrtc_api {
  nvrtc_result (*version)(int *major, int *minor);
  const char *(*error_string)(nvrtc_result r);
  nvrtc_result (*create)(nvrtc_program *p, const char *src, const char *name, int nheaders,
                         const char *const *headers, const char *const *include_names);
  nvrtc_result (*destroy)(nvrtc_program *p);
  nvrtc_result (*compile)(nvrtc_program p, int nopts, const char *const *opts);
  nvrtc_result (*ptx_size)(nvrtc_program p, size_t *size);
  nvrtc_result (*ptx)(nvrtc_program p, char *out);
  nvrtc_result (*cubin_size)(nvrtc_program p, size_t *size);
  nvrtc_result (*cubin)(nvrtc_program p, char *out);
  nvrtc_result (*log_size)(nvrtc_program p, size_t *size);
  nvrtc_result (*log)(nvrtc_program p, char *out);
} nvrtc_api;

/* Entry points by name, in the order of nvrtc_api's members. */
static const char *const entry_names[] = {
    "nvrtcVersion",     "nvrtcGetErrorString", "nvrtcCreateProgram", "nvrtcDestroyProgram",
    "nvrtcCompileProgram", "nvrtcGetPTXSize",  "nvrtcGetPTX",        "nvrtcGetCUBINSize",
    "nvrtcGetCUBIN",    "nvrtcGetProgramLogSize", "nvrtcGetProgramLog",
};

static struct {
  int tried, ok;
  void *handle;
  nvrtc_api api;
  int major, minor;
  char why[1024];
} nvrtc;

static int last_cached;

int nnc_nvrtc_last_was_cached(void) { return last_cached; }

static void load(const nnc_options *o) {
  nvrtc.tried = 1;
  const char *env = o->nvrtc;
  if (env && *env) {
    nvrtc.handle = dlopen(env, RTLD_NOW | RTLD_LOCAL);
    if (!nvrtc.handle) {
      snprintf(nvrtc.why, sizeof nvrtc.why, "NVRTC is not available ($NNC_NVRTC=%s cannot be opened)", env);
      return;
    }
  } else {
    /* NVRTC loads its builtins library by soname when it compiles. */
    static const char *const files[] = {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so"};
    static const char *const companions[] = {"libnvrtc-builtins.so.13", "libnvrtc-builtins.so.12"};
    char tried[800];
    nvrtc.handle = nnc_dl_open_cuda(o, files, 3, companions, 2, tried, sizeof tried);
    if (!nvrtc.handle) {
      snprintf(nvrtc.why, sizeof nvrtc.why, "NVRTC is not available (no libnvrtc.so.13 in %s)", tried);
      return;
    }
  }
  /* nvrtc_api is a row of function pointers, filled in entry_names' order. */
  _Static_assert(sizeof(nvrtc_api) == sizeof entry_names, "one name per entry point");
  const char *missing = nnc_dl_fill(nvrtc.handle, entry_names, sizeof entry_names / sizeof entry_names[0], &nvrtc.api);
  if (missing) {
    snprintf(nvrtc.why, sizeof nvrtc.why, "the NVRTC library found has no %s", missing);
    return;
  }
  if (nvrtc.api.version(&nvrtc.major, &nvrtc.minor) != 0) {
    snprintf(nvrtc.why, sizeof nvrtc.why, "nvrtcVersion failed");
    return;
  }
  nvrtc.ok = 1;
}

int nnc_nvrtc_open(const nnc_options *o, int *major, int *minor, nnc_status *st) {
  if (!nvrtc.tried) load(o);
  if (!nvrtc.ok) return nnc_fail(st, "%s", nvrtc.why);
  if (major) *major = nvrtc.major;
  if (minor) *minor = nvrtc.minor;
  return 0;
}

void nnc_cuda_binary_free(nnc_cuda_binary *b) {
  free(b->data);
  b->data = NULL;
  b->size = 0;
}

/* sm_NN[a] or compute_NN[a]. */
int nnc_nvrtc_valid_arch(const char *arch) {
  const char *p = !strncmp(arch, "sm_", 3) ? arch + 3 : !strncmp(arch, "compute_", 8) ? arch + 8 : NULL;
  if (!p || !isdigit((unsigned char)*p)) return 0;
  while (isdigit((unsigned char)*p)) p++;
  return !*p || (p[0] == 'a' && !p[1]);
}

/* The last `max` bytes' worth of whole lines are less useful than the first
 * errors: show the head of the log. */
static void log_excerpt(const char *log, char *out, size_t max) {
  size_t len = strlen(log);
  while (len && (log[len - 1] == '\n' || log[len - 1] == ' ')) len--;
  if (len < max) snprintf(out, max, "%.*s", (int)len, log);
  else snprintf(out, max, "%.*s\n...", (int)(max - 8), log);
}

static int compile_failure(const nnc_options *o, const char *name, const char *source, const char *opts_text, const char *what,
                           const char *log, nnc_status *st) {
  char dir[2048], path[2400], excerpt[800];
  snprintf(path, sizeof path, "%s/%s.cu", nnc_scratch_dir(o, dir, sizeof dir), name);
  int kept = nnc_write_file_atomic(path, source, strlen(source)) == 0;
  log_excerpt(log && *log ? log : "(NVRTC gave no log)", excerpt, sizeof excerpt);
  return nnc_fail(st, "NVRTC could not compile kernel %s (%s; options: %s):\n%s\n%s%s", name, what, opts_text, excerpt,
                  kept ? "the source is in " : "the source could not be saved to ", path);
}

int nnc_nvrtc_compile(const nnc_options *o, const char *name, const char *source, const char *arch,
                      nnc_cuda_binary *out, nnc_status *st) {
  memset(out, 0, sizeof *out);
  last_cached = 0;
  if (!nnc_nvrtc_valid_arch(arch))
    return nnc_fail(st, "'%s' is not a CUDA target: expected sm_NN or compute_NN (e.g. %s)", arch,
                    NNC_CUDA_DEFAULT_ARCH);
  if (nnc_nvrtc_open(o, NULL, NULL, st)) return -1;
  char arch_opt[64];
  snprintf(arch_opt, sizeof arch_opt, "--gpu-architecture=%s", arch);
  const char *opts[] = {arch_opt};
  int nopts = (int)(sizeof opts / sizeof opts[0]);
  int cubin = !strncmp(arch, "sm_", 3);

  nnc_hasher h;
  char key[33], file[600];
  char version[32];
  snprintf(version, sizeof version, "%d.%d", nvrtc.major, nvrtc.minor);
  nnc_hasher_init(&h);
  nnc_hasher_str(&h, "nvrtc kernel, v1");
  nnc_hasher_str(&h, version);
  nnc_hasher_str(&h, arch);
  for (int i = 0; i < nopts; i++) nnc_hasher_str(&h, opts[i]);
  nnc_hasher_str(&h, source);
  nnc_hasher_hex(&h, key);
  snprintf(file, sizeof file, "%.400s-%s.%s", name, key, cubin ? "cubin" : "ptx");
  out->data = nnc_cache_read(o, file, &out->size);
  if (out->data) {
    out->is_cubin = cubin;
    last_cached = 1;
    return 0;
  }

  nvrtc_program prog = NULL;
  char unit[512];
  snprintf(unit, sizeof unit, "%.400s.cu", name);
  nvrtc_result r = nvrtc.api.create(&prog, source, unit, 0, NULL, NULL);
  if (r != 0) return nnc_fail(st, "NVRTC could not create a program for kernel %s: %s", name, nvrtc.api.error_string(r));
  r = nvrtc.api.compile(prog, nopts, opts);
  size_t log_size = 0;
  char *log = NULL;
  if (nvrtc.api.log_size(prog, &log_size) == 0 && log_size > 0 && (log = malloc(log_size + 1)) != NULL) {
    if (nvrtc.api.log(prog, log) != 0) log[0] = 0;
    log[log_size] = 0;
  }
  int rc = 0;
  if (r != 0) {
    rc = compile_failure(o, name, source, arch_opt, nvrtc.api.error_string(r), log, st);
  } else {
    size_t size = 0;
    r = cubin ? nvrtc.api.cubin_size(prog, &size) : nvrtc.api.ptx_size(prog, &size);
    out->data = r == 0 ? malloc(size + 1) : NULL;
    if (out->data) r = cubin ? nvrtc.api.cubin(prog, out->data) : nvrtc.api.ptx(prog, out->data);
    if (r != 0 || !out->data) {
      rc = nnc_fail(st, "NVRTC compiled kernel %s but gave no %s: %s", name, cubin ? "CUBIN" : "PTX",
                    nvrtc.api.error_string(r));
      nnc_cuda_binary_free(out);
    } else {
      ((char *)out->data)[size] = 0;
      out->size = size;
      out->is_cubin = cubin;
      nnc_cache_write(o, file, out->data, out->size);
    }
  }
  free(log);
  nvrtc.api.destroy(&prog);
  return rc;
}

/* The number just before `unit` in text, or 0. */
static int number_before(const char *text, const char *unit) {
  const char *at = strstr(text, unit);
  if (!at) return 0;
  while (at > text && isdigit((unsigned char)at[-1])) at--;
  return atoi(at);
}

/* ptxas -v's lines for the unit's one kernel: "Used 40 registers, used 1
 * barriers, 8448 bytes smem" and "0 bytes stack frame, 0 bytes spill
 * stores, 0 bytes spill loads". */
static void parse_report(const char *log, nnc_ptxas_report *r) {
  memset(r, 0, sizeof *r);
  const char *used = strstr(log, "Used ");
  if (used) {
    r->registers = atoi(used + 5);
    r->shared_bytes = number_before(used, " bytes smem");
  }
  r->stack_bytes = number_before(log, " bytes stack frame");
  r->spill_bytes = number_before(log, " bytes spill stores") + number_before(log, " bytes spill loads");
}

int nnc_nvrtc_report(const nnc_options *o, const char *name, const char *source, const char *arch,
                     nnc_ptxas_report *r, nnc_status *st) {
  memset(r, 0, sizeof *r);
  if (strncmp(arch, "sm_", 3) || !nnc_nvrtc_valid_arch(arch))
    return nnc_fail(st, "ptxas reports need an sm_NN target, not '%s'", arch);
  if (nnc_nvrtc_open(o, NULL, NULL, st)) return -1;
  char arch_opt[64], version[32], key[33], file[600];
  snprintf(arch_opt, sizeof arch_opt, "--gpu-architecture=%s", arch);
  const char *opts[] = {arch_opt, "--ptxas-options=-v"};
  snprintf(version, sizeof version, "%d.%d", nvrtc.major, nvrtc.minor);
  nnc_hasher h;
  nnc_hasher_init(&h);
  nnc_hasher_str(&h, "ptxas report, v1");
  nnc_hasher_str(&h, version);
  for (int i = 0; i < 2; i++) nnc_hasher_str(&h, opts[i]);
  nnc_hasher_str(&h, source);
  nnc_hasher_hex(&h, key);
  snprintf(file, sizeof file, "%.400s-%s.ptxas.txt", name, key);
  size_t size = 0;
  char *log = nnc_cache_read(o, file, &size);
  if (!log) {
    nvrtc_program prog = NULL;
    nvrtc_result res = nvrtc.api.create(&prog, source, "report.cu", 0, NULL, NULL);
    if (res != 0) return nnc_fail(st, "NVRTC could not create a program for kernel %s: %s", name, nvrtc.api.error_string(res));
    res = nvrtc.api.compile(prog, 2, opts);
    if (nvrtc.api.log_size(prog, &size) == 0 && (log = malloc(size + 1)) != NULL) {
      if (nvrtc.api.log(prog, log) != 0) size = 0;
      log[size] = 0;
    }
    nvrtc.api.destroy(&prog);
    if (res != 0) {
      int rc = compile_failure(o, name, source, "--ptxas-options=-v", nvrtc.api.error_string(res), log, st);
      free(log);
      return rc;
    }
    if (log) nnc_cache_write(o, file, log, strlen(log));
  }
  if (!log || !strstr(log, "Used ")) {
    free(log);
    return nnc_fail(st, "NVRTC gave no ptxas report for kernel %s", name);
  }
  parse_report(log, r);
  free(log);
  return 0;
}
