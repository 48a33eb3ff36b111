/* The cuda backend: the generated kernels (codegen/) compiled by NVRTC and
 * launched through the CUDA driver API, which is opened with dlopen
 * (libcuda.so.1) so that nnc needs no CUDA to build or to run elsewhere.
 *
 * One device arena holds every stored value, laid out by the memory plan;
 * a second holds the leaves (inputs, weights, optimizer slots), copied in
 * before each run since the model keeps its weights on the host. Kernels run
 * in order on one stream; a value is copied back when it is asked for.
 *
 * The few driver types and entry points used are declared here from the
 * driver API's documentation; no CUDA header is included. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda.h"
#include "codegen/nvrtc.h"
#include "ir/op.h"
#include "runtime/backend.h"
#include "runtime/cuda_layout.h"

typedef int cu_result; /* CUresult: CUDA_SUCCESS is 0 */
typedef int cu_device;
typedef struct cu_context_s *cu_context;
typedef struct cu_module_s *cu_module;
typedef struct cu_function_s *cu_function;
typedef struct cu_stream_s *cu_stream;
typedef unsigned long long cu_deviceptr;

enum { CU_ATTR_CC_MAJOR = 75, CU_ATTR_CC_MINOR = 76 }; /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_* */

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
  cu_result (*mem_alloc)(cu_deviceptr *p, size_t bytes);
  cu_result (*mem_free)(cu_deviceptr p);
  cu_result (*copy_to_device)(cu_deviceptr dst, const void *src, size_t bytes, cu_stream s);
  cu_result (*copy_to_host)(void *dst, cu_deviceptr src, size_t bytes, cu_stream s);
  cu_result (*stream_create)(cu_stream *s, unsigned flags);
  cu_result (*stream_destroy)(cu_stream s);
  cu_result (*stream_sync)(cu_stream s);
  cu_result (*launch)(cu_function f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                      unsigned shared, cu_stream s, void **params, void **extra);
} cu_api;

/* Entry points in the order of cu_api's members (the _v2 names are what the
 * driver's header maps the plain names to). */
static const char *const entry_names[] = {
    "cuInit",           "cuGetErrorString",         "cuDeviceGetCount",       "cuDeviceGet",
    "cuDeviceGetAttribute", "cuDeviceGetName",      "cuDevicePrimaryCtxRetain", "cuCtxSetCurrent",
    "cuModuleLoadData", "cuModuleUnload",           "cuModuleGetFunction",    "cuMemAlloc_v2",
    "cuMemFree_v2",     "cuMemcpyHtoDAsync_v2",     "cuMemcpyDtoHAsync_v2",   "cuStreamCreate",
    "cuStreamDestroy_v2", "cuStreamSynchronize",    "cuLaunchKernel",
};

/* The driver and one device's primary context, opened once per process. */
static struct {
  int tried, ok;
  void *lib;
  cu_api api;
  cu_device device;
  cu_context context;
  char arch[32];
  char name[128];
  char why[512];
} drv;

static const char *cu_error(cu_result r) {
  const char *s = NULL;
  if (drv.api.error_string && drv.api.error_string(r, &s) == 0 && s) return s;
  return "unknown CUDA error";
}

/* Checks a driver call, naming the call and the place (STYLE.md 16). */
#define CU(call, st)                                                                                \
  do {                                                                                              \
    cu_result r_ = (call);                                                                          \
    if (r_ != 0) return nnc_fail(st, "CUDA: %s failed at %s:%d: %s (%d)", #call, __FILE__, __LINE__, \
                                 cu_error(r_), r_);                                                 \
  } while (0)

static void open_driver(void) {
  drv.tried = 1;
  drv.lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!drv.lib) drv.lib = dlopen("libcuda.so", RTLD_NOW | RTLD_LOCAL);
  if (!drv.lib) {
    snprintf(drv.why, sizeof drv.why, "no CUDA driver (libcuda.so.1 cannot be opened)");
    return;
  }
  _Static_assert(sizeof(cu_api) == sizeof entry_names, "one name per entry point");
  for (size_t i = 0; i < sizeof entry_names / sizeof entry_names[0]; i++) {
    void *sym = dlsym(drv.lib, entry_names[i]);
    memcpy((char *)&drv.api + i * sizeof sym, &sym, sizeof sym);
    if (!sym) {
      snprintf(drv.why, sizeof drv.why, "the CUDA driver has no %s (too old?)", entry_names[i]);
      return;
    }
  }
  int count = 0, major = 0, minor = 0;
  cu_result r = drv.api.init(0);
  if (r == 0) r = drv.api.device_count(&count);
  if (r != 0 || count == 0) {
    snprintf(drv.why, sizeof drv.why, "no usable GPU (%s)", r ? cu_error(r) : "the driver sees no device");
    return;
  }
  const char *ordinal = getenv("NNC_CUDA_DEVICE");
  r = drv.api.device_get(&drv.device, ordinal ? atoi(ordinal) : 0);
  if (r == 0) r = drv.api.device_attribute(&major, CU_ATTR_CC_MAJOR, drv.device);
  if (r == 0) r = drv.api.device_attribute(&minor, CU_ATTR_CC_MINOR, drv.device);
  if (r == 0) r = drv.api.device_name(drv.name, (int)sizeof drv.name, drv.device);
  if (r == 0) r = drv.api.primary_retain(&drv.context, drv.device);
  if (r != 0) {
    snprintf(drv.why, sizeof drv.why, "the GPU cannot be used (%s)", cu_error(r));
    return;
  }
  snprintf(drv.arch, sizeof drv.arch, "sm_%d%d", major, minor);
  drv.ok = 1;
}

struct nnc_exec {
  const nnc_graph *g;
  nnc_cuda_program prog;
  nnc_cuda_layout layout;
  cu_module *modules;
  cu_function *functions;
  cu_stream stream;
  cu_deviceptr arena, leaf_arena;
  int64_t *leaf_offset; /* per node: offset in leaf_arena, or -1 */
  void **data;          /* per node: device address, as kernel arguments take it */
  const void **host_leaf; /* per node: the leaf data of the last run */
  float **mirror;         /* per node: host copy of a value, made on request */
  unsigned long long *mirror_run;
  unsigned long long runs;
  int debug; /* NNC_DEBUG */
};

static void cuda_release(nnc_exec *e) {
  if (!e) return;
  if (drv.ok) {
    drv.api.ctx_set_current(drv.context);
    if (e->stream) drv.api.stream_sync(e->stream), drv.api.stream_destroy(e->stream);
    for (int i = 0; e->modules && i < e->prog.count; i++)
      if (e->modules[i]) drv.api.module_unload(e->modules[i]);
    if (e->arena) drv.api.mem_free(e->arena);
    if (e->leaf_arena) drv.api.mem_free(e->leaf_arena);
  }
  for (int32_t id = 0; e->mirror && id < e->g->nnodes; id++) free(e->mirror[id]);
  nnc_cuda_program_free(&e->prog);
  nnc_cuda_layout_free(&e->layout);
  free(e->modules), free(e->functions), free(e->leaf_offset), free(e->data), free(e->host_leaf), free(e->mirror),
      free(e->mirror_run);
  free(e);
}

static int64_t node_bytes(const nnc_node *n) { return nnc_node_numel(n) * (int64_t)nnc_dtype_size(n->dtype); }

/* NVRTC for the device's architecture (or --arch), then one module per kernel. */
static int load_kernels(nnc_exec *e, nnc_status *st) {
  const char *arch = nnc_cuda_arch() ? nnc_cuda_arch() : drv.arch;
  e->modules = calloc((size_t)e->prog.count + 1, sizeof *e->modules);
  e->functions = calloc((size_t)e->prog.count + 1, sizeof *e->functions);
  if (!e->modules || !e->functions) return nnc_fail(st, "out of memory");
  for (int i = 0; i < e->prog.count; i++) {
    const nnc_cuda_kernel *k = &e->prog.kernels[i];
    nnc_strbuf unit;
    nnc_strbuf_init(&unit);
    nnc_cuda_render_unit(&k, 1, &unit);
    nnc_cuda_binary bin;
    int rc = nnc_nvrtc_compile(k->name, nnc_strbuf_str(&unit), arch, &bin, st);
    nnc_strbuf_free(&unit);
    if (rc) return -1;
    cu_result r = drv.api.module_load_data(&e->modules[i], bin.data);
    nnc_cuda_binary_free(&bin);
    if (r != 0)
      return nnc_fail(st, "CUDA: cannot load kernel %s compiled for %s on %s (%s): %s", k->name, arch, drv.name,
                      drv.arch, cu_error(r));
    CU(drv.api.module_function(&e->functions[i], e->modules[i], k->name), st);
  }
  return 0;
}

static int allocate(nnc_exec *e, nnc_status *st) {
  const nnc_graph *g = e->g;
  int64_t leaf_bytes = 0;
  e->leaf_offset = malloc(sizeof *e->leaf_offset * ((size_t)g->nnodes + 1));
  e->data = calloc((size_t)g->nnodes + 1, sizeof *e->data);
  e->host_leaf = calloc((size_t)g->nnodes + 1, sizeof *e->host_leaf);
  e->mirror = calloc((size_t)g->nnodes + 1, sizeof *e->mirror);
  e->mirror_run = calloc((size_t)g->nnodes + 1, sizeof *e->mirror_run);
  if (!e->leaf_offset || !e->data || !e->host_leaf || !e->mirror || !e->mirror_run) return nnc_fail(st, "out of memory");
  for (int32_t id = 0; id < g->nnodes; id++) {
    e->leaf_offset[id] = -1;
    if (!(nnc_ops[g->nodes[id].op].flags & NNC_OPF_LEAF)) continue;
    e->leaf_offset[id] = leaf_bytes;
    leaf_bytes += (node_bytes(&g->nodes[id]) + 255) / 256 * 256;
  }
  CU(drv.api.mem_alloc(&e->arena, (size_t)(e->layout.bytes ? e->layout.bytes : 256)), st);
  CU(drv.api.mem_alloc(&e->leaf_arena, (size_t)(leaf_bytes ? leaf_bytes : 256)), st);
  for (int32_t id = 0; id < g->nnodes; id++) {
    cu_deviceptr p = 0;
    if (e->leaf_offset[id] >= 0) p = e->leaf_arena + (cu_deviceptr)e->leaf_offset[id];
    else if (e->layout.offset[id] >= 0) p = e->arena + (cu_deviceptr)e->layout.offset[id];
    e->data[id] = (void *)(uintptr_t)p;
  }
  return 0;
}

static int prepare_on_device(nnc_exec *e, nnc_status *st) {
  CU(drv.api.ctx_set_current(drv.context), st);
  if (nnc_cuda_generate(e->g, &e->prog, st) || nnc_cuda_dump_program(&e->prog, e->g, st) ||
      nnc_cuda_layout_init(&e->layout, e->g, &e->prog, st) || load_kernels(e, st) || allocate(e, st))
    return -1;
  CU(drv.api.stream_create(&e->stream, 0), st);
  return 0;
}

static nnc_exec *cuda_prepare(const nnc_graph *g, nnc_status *st) {
  if (!drv.tried) open_driver();
  if (!drv.ok) {
    nnc_fail(st, "%s", drv.why);
    return NULL;
  }
  nnc_exec *e = calloc(1, sizeof *e);
  if (!e) {
    nnc_fail(st, "out of memory preparing cuda");
    return NULL;
  }
  e->g = g;
  e->debug = getenv("NNC_DEBUG") ? atoi(getenv("NNC_DEBUG")) : 0;
  if (prepare_on_device(e, st)) {
    cuda_release(e);
    return NULL;
  }
  return e;
}

static int cuda_run(nnc_exec *e, void *const *leaves, const nnc_run_opts *opts, nnc_status *st) {
  const nnc_graph *g = e->g;
  CU(drv.api.ctx_set_current(drv.context), st);
  for (int32_t id = 0; id < g->nnodes; id++) {
    if (e->leaf_offset[id] < 0) continue;
    const nnc_node *n = &g->nodes[id];
    if (!leaves[id]) return nnc_fail(st, "%s '%s' has no data", nnc_ops[n->op].name, n->name ? n->name : "?");
    e->host_leaf[id] = leaves[id];
    CU(drv.api.copy_to_device((cu_deviceptr)(uintptr_t)e->data[id], leaves[id], (size_t)node_bytes(n), e->stream), st);
  }
  for (int k = 0; k < e->prog.count; k++) {
    const nnc_cuda_kernel *kn = &e->prog.kernels[k];
    nnc_cuda_args a;
    nnc_cuda_args_fill(&a, kn, e->data, opts);
    if (e->debug >= 4)
      fprintf(stderr, "cuda: launch %s <<<%u, %u>>> over %lld items\n", kn->name, kn->grid, kn->block,
              (long long)kn->work);
    CU(drv.api.launch(e->functions[k], kn->grid, 1, 1, kn->block, 1, 1, 0, e->stream, a.args, NULL), st);
  }
  CU(drv.api.stream_sync(e->stream), st);
  e->runs++;
  return 0;
}

static int64_t cuda_arena_bytes(nnc_exec *e) { return e->layout.bytes; }

static const void *cuda_value(nnc_exec *e, int32_t id) {
  if (id < 0 || id >= e->g->nnodes) return NULL;
  if (e->leaf_offset[id] >= 0) return e->host_leaf[id];
  if (!e->layout.intact[id]) return NULL;
  if (e->mirror[id] && e->mirror_run[id] == e->runs) return e->mirror[id];
  size_t bytes = (size_t)node_bytes(&e->g->nodes[id]);
  if (!e->mirror[id] && !(e->mirror[id] = malloc(bytes ? bytes : 1))) return NULL;
  if (drv.api.ctx_set_current(drv.context) != 0 ||
      drv.api.copy_to_host(e->mirror[id], (cu_deviceptr)(uintptr_t)e->data[id], bytes, e->stream) != 0 ||
      drv.api.stream_sync(e->stream) != 0)
    return NULL;
  e->mirror_run[id] = e->runs;
  return e->mirror[id];
}

const nnc_backend nnc_backend_cuda = {"cuda", cuda_prepare, cuda_run, cuda_value, cuda_arena_bytes, cuda_release};
