/* The CUDA driver as an nnc_cuda_device: libcuda opened with dlopen
 * (libcuda.so.1), one device's primary context, kernels compiled by NVRTC
 * for the device's architecture (or --arch) and loaded one module each.
 *
 * The few driver types and entry points used are declared here from the
 * driver API's documentation; no CUDA header is included. */
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/dl.h"
#include "codegen/nvrtc.h"
#include "runtime/cuda/cuda_device.h"

typedef int cu_result; /* CUresult: CUDA_SUCCESS is 0 */
typedef int cu_device;
typedef struct cu_context_s *cu_context;
typedef struct cu_module_s *cu_module;
typedef struct cu_function_s *cu_function;
typedef struct cu_stream_s *cu_stream;
typedef struct cu_graph_s *cu_graph;
typedef struct cu_graph_exec_s *cu_graph_exec;

enum { CU_ATTR_CC_MAJOR = 75, CU_ATTR_CC_MINOR = 76 }; /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_* */
enum { CU_CAPTURE_THREAD_LOCAL = 1 };                 /* CU_STREAM_CAPTURE_MODE_THREAD_LOCAL */

typedef struct cu_api {
  cu_result (*init)(unsigned flags);
  cu_result (*error_string)(cu_result r, const char **s);
  cu_result (*device_count)(int *n);
  cu_result (*device_get)(cu_device *d, int ordinal);
  cu_result (*device_attribute)(int *v, int attr, cu_device d);
  cu_result (*device_name)(char *name, int len, cu_device d);
  cu_result (*primary_retain)(cu_context *c, cu_device d);
  cu_result (*ctx_set_current)(cu_context c);
  cu_result (*module_load_data)(cu_module *m, const void *image);
  cu_result (*module_unload)(cu_module m);
  cu_result (*module_function)(cu_function *f, cu_module m, const char *name);
  cu_result (*mem_alloc)(nnc_devptr *p, size_t bytes);
  cu_result (*mem_free)(nnc_devptr p);
  cu_result (*copy_to_device)(nnc_devptr dst, const void *src, size_t bytes, cu_stream s);
  cu_result (*copy_to_host)(void *dst, nnc_devptr src, size_t bytes, cu_stream s);
  cu_result (*copy_on_device)(nnc_devptr dst, nnc_devptr src, size_t bytes, cu_stream s);
  cu_result (*stream_create)(cu_stream *s, unsigned flags);
  cu_result (*stream_destroy)(cu_stream s);
  cu_result (*stream_sync)(cu_stream s);
  cu_result (*launch)(cu_function f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                      unsigned shared, cu_stream s, void **params, void **extra);
  cu_result (*begin_capture)(cu_stream s, int mode);
  cu_result (*end_capture)(cu_stream s, cu_graph *g);
  cu_result (*instantiate)(cu_graph_exec *x, cu_graph g, unsigned long long flags);
  cu_result (*graph_launch)(cu_graph_exec x, cu_stream s);
  cu_result (*graph_exec_destroy)(cu_graph_exec x);
  cu_result (*graph_destroy)(cu_graph g);
} cu_api;

/* Entry points in the order of cu_api's members (the _v2 names are what the
 * driver's header maps the plain names to). */
static const char *const entry_names[] = {
    "cuInit",           "cuGetErrorString",     "cuDeviceGetCount",       "cuDeviceGet",
    "cuDeviceGetAttribute", "cuDeviceGetName",  "cuDevicePrimaryCtxRetain", "cuCtxSetCurrent",
    "cuModuleLoadData", "cuModuleUnload",       "cuModuleGetFunction",    "cuMemAlloc_v2",
    "cuMemFree_v2",     "cuMemcpyHtoDAsync_v2", "cuMemcpyDtoHAsync_v2",   "cuMemcpyDtoDAsync_v2",
    "cuStreamCreate",   "cuStreamDestroy_v2",   "cuStreamSynchronize",    "cuLaunchKernel",
    "cuStreamBeginCapture_v2", "cuStreamEndCapture", "cuGraphInstantiateWithFlags", "cuGraphLaunch",
    "cuGraphExecDestroy", "cuGraphDestroy",
};

/* The driver and one device's primary context, opened once per process. */
static struct {
  int tried, ok;
  void *lib;
  cu_api api;
  cu_device device;
  cu_context context;
  char arch[32];
  char name[192];
  char why[1024];
} drv;

static const char *cu_error(cu_result r) {
  const char *s = NULL;
  if (drv.api.error_string && drv.api.error_string(r, &s) == 0 && s) return s;
  return "unknown CUDA error";
}

/* Calls entry point `member` of the driver table; a failure names the
 * driver function (entry_names, in the members' order) and its error
 * (STYLE.md 16). */
#define CU(st, member, ...)                                                                                  \
  do {                                                                                                       \
    cu_result r_ = drv.api.member(__VA_ARGS__);                                                              \
    if (r_ != 0)                                                                                             \
      return nnc_fail(st, "CUDA: %s failed: %s (%d)", entry_names[offsetof(cu_api, member) / sizeof(void *)], \
                      cu_error(r_), r_);                                                                     \
  } while (0)

static int find_entry_points(void) {
  _Static_assert(sizeof(cu_api) == sizeof entry_names, "one name per entry point");
  const char *missing = nnc_dl_fill(drv.lib, entry_names, sizeof entry_names / sizeof entry_names[0], &drv.api);
  if (missing) {
    snprintf(drv.why, sizeof drv.why, "the CUDA driver has no %s (too old?)", missing);
    return -1;
  }
  return 0;
}

static void open_driver(const nnc_options *o) {
  drv.tried = 1;
  static const char *const files[] = {"libcuda.so.1", "libcuda.so"};
  char tried[400];
  drv.lib = nnc_dl_open_cuda(o, files, 2, NULL, 0, tried, sizeof tried);
  if (!drv.lib) {
    snprintf(drv.why, sizeof drv.why, "no CUDA driver (no libcuda.so.1 in %s)", tried);
    return;
  }
  if (find_entry_points()) return;
  int count = 0, major = 0, minor = 0;
  cu_result r = drv.api.init(0);
  if (r == 0) r = drv.api.device_count(&count);
  if (r != 0 || count == 0) {
    snprintf(drv.why, sizeof drv.why, "no usable GPU (%s)", r ? cu_error(r) : "the driver sees no device");
    return;
  }
  /* Under mpirun each rank of a machine takes its own GPU, by its rank on
   * that machine; NNC_CUDA_DEVICE chooses one by hand (o->cuda_device). */
  int device = o->cuda_device;
  if (device < 0 || device >= count) {
    snprintf(drv.why, sizeof drv.why, "GPU %d is asked for (%s) but the driver sees %d", device,
             o->cuda_device_set ? "NNC_CUDA_DEVICE" : "one per rank of this machine", count);
    return;
  }
  char model[128] = "";
  r = drv.api.device_get(&drv.device, device);
  if (r == 0) r = drv.api.device_attribute(&major, CU_ATTR_CC_MAJOR, drv.device);
  if (r == 0) r = drv.api.device_attribute(&minor, CU_ATTR_CC_MINOR, drv.device);
  if (r == 0) r = drv.api.device_name(model, (int)sizeof model, drv.device);
  if (r == 0) r = drv.api.primary_retain(&drv.context, drv.device);
  if (r != 0) {
    snprintf(drv.why, sizeof drv.why, "the GPU cannot be used (%s)", cu_error(r));
    return;
  }
  snprintf(drv.arch, sizeof drv.arch, "sm_%d%d", major, minor);
  snprintf(drv.name, sizeof drv.name, "%s (%s)", model, drv.arch);
  /* Every kernel goes through NVRTC: without it the backend cannot run, and
   * it is better said when the backend is chosen than at the first graph. */
  nnc_status st = {0};
  if (nnc_nvrtc_open(o, NULL, NULL, &st)) {
    snprintf(drv.why, sizeof drv.why, "%.1000s", st.msg);
    return;
  }
  drv.ok = 1;
}

static int drv_open(const nnc_options *o, char *why, size_t size) {
  if (!drv.tried) open_driver(o);
  if (!drv.ok) snprintf(why, size, "%s", drv.why);
  return drv.ok ? 0 : -1;
}

static const char *drv_name(void) { return drv.name; }

static const char *drv_target(const nnc_options *o) { return o->arch ? o->arch : drv.arch; }

/* Every call below runs on the calling thread; the context must be its own. */
static int current(nnc_status *st) {
  CU(st, ctx_set_current, drv.context);
  return 0;
}

struct nnc_cuda_module {
  int count;
  cu_module modules[]; /* one per kernel; NULL for library steps */
};

static void drv_unload(nnc_cuda_module *m) {
  if (!m) return;
  if (drv.ok && drv.api.ctx_set_current(drv.context) == 0)
    for (int i = 0; i < m->count; i++)
      if (m->modules[i]) drv.api.module_unload(m->modules[i]);
  free(m);
}

static int load_kernel(const nnc_options *o, const nnc_cuda_kernel *k, const char *arch, cu_module *mod, void **fn, nnc_status *st) {
  nnc_strbuf unit;
  nnc_strbuf_init(&unit);
  nnc_cuda_render_unit(&k, 1, &unit);
  nnc_cuda_binary bin;
  int rc = nnc_nvrtc_compile(o, k->name, nnc_strbuf_str(&unit), arch, &bin, st);
  nnc_strbuf_free(&unit);
  if (rc) return -1;
  cu_result r = drv.api.module_load_data(mod, bin.data);
  nnc_cuda_binary_free(&bin);
  if (r != 0)
    return nnc_fail(st, "CUDA: cannot load kernel %s compiled for %s on %s: %s", k->name, arch, drv.name,
                    cu_error(r));
  cu_function f = NULL;
  CU(st, module_function, &f, *mod, k->name);
  *fn = f;
  return 0;
}

static int drv_load(const nnc_options *o, const nnc_cuda_program *p, nnc_cuda_module **out, void **fns,
                    nnc_status *st) {
  const char *arch = drv_target(o);
  nnc_cuda_module *m = calloc(1, sizeof *m + sizeof(cu_module) * ((size_t)p->count + 1));
  if (!m) return nnc_fail(st, "out of memory");
  m->count = p->count;
  *out = m;
  if (current(st)) return -1;
  for (int i = 0; i < p->count; i++)
    if (p->kernels[i].source && load_kernel(o, &p->kernels[i], arch, &m->modules[i], &fns[i], st)) return -1;
  return 0;
}

static int drv_alloc(nnc_devptr *p, size_t bytes, nnc_status *st) {
  if (current(st)) return -1;
  CU(st, mem_alloc, p, bytes ? bytes : 256);
  return 0;
}

static void drv_free(nnc_devptr p) {
  if (p && drv.api.ctx_set_current(drv.context) == 0) drv.api.mem_free(p);
}

static int drv_stream_create(const nnc_options *o, nnc_cuda_stream **s, nnc_status *st) {
  (void)o;
  cu_stream cs = NULL;
  if (current(st)) return -1;
  CU(st, stream_create, &cs, 0);
  *s = (nnc_cuda_stream *)cs;
  return 0;
}

static void drv_stream_destroy(nnc_cuda_stream *s) {
  if (s && drv.api.ctx_set_current(drv.context) == 0) drv.api.stream_sync((cu_stream)s), drv.api.stream_destroy((cu_stream)s);
}

static void *drv_raw_stream(nnc_cuda_stream *s) { return s; }

static int drv_sync(nnc_cuda_stream *s, nnc_status *st) {
  CU(st, stream_sync, (cu_stream)s);
  return 0;
}

static int drv_to_device(nnc_devptr dst, const void *src, size_t bytes, nnc_cuda_stream *s, nnc_status *st) {
  CU(st, copy_to_device, dst, src, bytes, (cu_stream)s);
  return 0;
}

static int drv_to_host(void *dst, nnc_devptr src, size_t bytes, nnc_cuda_stream *s, nnc_status *st) {
  CU(st, copy_to_host, dst, src, bytes, (cu_stream)s);
  return 0;
}

static int drv_copy(nnc_devptr dst, nnc_devptr src, size_t bytes, nnc_cuda_stream *s, nnc_status *st) {
  CU(st, copy_on_device, dst, src, bytes, (cu_stream)s);
  return 0;
}

static int drv_launch(void *fn, const nnc_cuda_kernel *k, void **args, nnc_cuda_stream *s, nnc_status *st) {
  CU(st, launch, (cu_function)fn, k->grid, 1, 1, k->block, 1, 1, 0, (cu_stream)s, args, NULL);
  return 0;
}

/* Thread-local capture mode: another thread's unrelated CUDA calls (none in
 * nnc today) cannot invalidate the capture. */
static int drv_begin_capture(nnc_cuda_stream *s, nnc_status *st) {
  (void)st;
  return drv.api.begin_capture((cu_stream)s, CU_CAPTURE_THREAD_LOCAL) == 0 ? 0 : 1;
}

struct nnc_cuda_capture {
  cu_graph graph;
  cu_graph_exec exec;
};

static void drv_graph_destroy(nnc_cuda_capture *g) {
  if (!g) return;
  if (drv.api.ctx_set_current(drv.context) == 0) {
    if (g->exec) drv.api.graph_exec_destroy(g->exec);
    if (g->graph) drv.api.graph_destroy(g->graph);
  }
  free(g);
}

static int drv_end_capture(nnc_cuda_stream *s, nnc_cuda_capture **out, nnc_status *st) {
  nnc_cuda_capture *g = calloc(1, sizeof *g);
  if (!g) return nnc_fail(st, "out of memory");
  cu_result r = drv.api.end_capture((cu_stream)s, &g->graph);
  if (r == 0) r = drv.api.instantiate(&g->exec, g->graph, 0);
  if (r != 0) {
    drv_graph_destroy(g);
    return nnc_fail(st, "CUDA: capturing the step as a graph failed: %s (%d)", cu_error(r), r);
  }
  *out = g;
  return 0;
}

static int drv_replay(nnc_cuda_capture *g, nnc_cuda_stream *s, nnc_status *st) {
  CU(st, graph_launch, g->exec, (cu_stream)s);
  return 0;
}

const nnc_cuda_device nnc_cuda_driver_device = {
    .backend = "cuda",
    .emulated = 0,
    .open = drv_open,
    .name = drv_name,
    .target = drv_target,
    .load = drv_load,
    .unload = drv_unload,
    .alloc = drv_alloc,
    .free = drv_free,
    .stream_create = drv_stream_create,
    .stream_destroy = drv_stream_destroy,
    .raw_stream = drv_raw_stream,
    .sync = drv_sync,
    .to_device = drv_to_device,
    .to_host = drv_to_host,
    .copy = drv_copy,
    .launch = drv_launch,
    .begin_capture = drv_begin_capture,
    .end_capture = drv_end_capture,
    .replay = drv_replay,
    .graph_destroy = drv_graph_destroy,
};
