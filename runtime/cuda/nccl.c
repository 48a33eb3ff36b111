/* NCCL through dlopen (runtime/cuda/nccl.h). The declarations below are NCCL's
 * own (nccl.h, 2.12 or later for the pre-multiplied sum), written out so
 * that nnc builds without the header. */
#include "runtime/cuda/nccl.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/dl.h"
#include "runtime/backend.h"

typedef struct nccl_id {
  char internal[128];
} nccl_id;
typedef void *nccl_comm;
typedef int nccl_result;
typedef int nccl_redop;
enum { NCCL_SUCCESS = 0, NCCL_IN_PROGRESS = 7, NCCL_FLOAT32 = 7, NCCL_SCALAR_HOST_IMMEDIATE = 1 };
enum { CUDA_ERROR_NOT_READY = 600 };

typedef struct nccl_api {
  nccl_result (*get_version)(int *version);
  nccl_result (*get_unique_id)(nccl_id *id);
  nccl_result (*comm_init_rank)(nccl_comm *comm, int nranks, nccl_id id, int rank);
  nccl_result (*comm_destroy)(nccl_comm comm);
  nccl_result (*comm_abort)(nccl_comm comm);
  nccl_result (*comm_get_async_error)(nccl_comm comm, nccl_result *error);
  const char *(*get_error_string)(nccl_result r);
  nccl_result (*all_reduce)(const void *in, void *out, size_t count, int dtype, nccl_redop op, nccl_comm comm,
                            void *stream);
  nccl_result (*redop_create_premul_sum)(nccl_redop *op, void *scalar, int dtype, int residence, nccl_comm comm);
  nccl_result (*redop_destroy)(nccl_redop op, nccl_comm comm);
} nccl_api;

static const char *const entry_names[] = {
    "ncclGetVersion",       "ncclGetUniqueId", "ncclCommInitRank",         "ncclCommDestroy",
    "ncclCommAbort",        "ncclCommGetAsyncError", "ncclGetErrorString", "ncclAllReduce",
    "ncclRedOpCreatePreMulSum", "ncclRedOpDestroy",
};

static struct {
  int tried, ok;
  void *lib;
  nccl_api api;
  int (*stream_query)(void *stream); /* the driver's cuStreamQuery */
  char why[600];
} lib;

struct nnc_nccl {
  nccl_comm comm;
  int rank, ranks;
  double timeout_s;
};

static void load(const nnc_options *o) {
  if (lib.tried) return;
  lib.tried = 1;
  _Static_assert(sizeof(nccl_api) == sizeof entry_names, "one name per entry point");
  static const char *const files[] = {"libnccl.so.2", "libnccl.so"};
  char tried[400];
  lib.lib = nnc_dl_open_cuda(o, files, 2, NULL, 0, tried, sizeof tried);
  if (!lib.lib) {
    snprintf(lib.why, sizeof lib.why, "NCCL cannot be opened (no libnccl.so.2 in %s)", tried);
    return;
  }
  const char *missing = nnc_dl_fill(lib.lib, entry_names, sizeof entry_names / sizeof entry_names[0], &lib.api);
  if (missing) {
    snprintf(lib.why, sizeof lib.why, "NCCL has no %s (2.12 or later is needed)", missing);
    return;
  }
  lib.ok = 1;
}

/* NCCL's calls are enqueued on the stream; waiting for them with a deadline
 * needs the stream polled, which the driver's cuStreamQuery does. The
 * driver is loaded already when a communicator exists (the cuda backend
 * opened it), so it is looked up there, not opened again. */
static int find_stream_query(nnc_status *st) {
  if (lib.stream_query) return 0;
  void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  void *sym = cuda ? dlsym(cuda, "cuStreamQuery") : NULL;
  if (cuda) dlclose(cuda);
  if (!sym) return nnc_fail(st, "NCCL: the CUDA driver is not loaded (no cuStreamQuery)");
  memcpy(&lib.stream_query, &sym, sizeof sym);
  return 0;
}

static int nccl_fail(nccl_result r, const char *call, const char *what, nnc_status *st) {
  return nnc_fail(st, "NCCL: %s failed for %s: %s (%d)", call, what, lib.api.get_error_string(r), r);
}

/* Collective: every rank takes part in each exchange whatever happened
 * before it, since a rank that left one would make the others wait out the
 * deadline. */
static int bootstrap(const nnc_options *o, nnc_comm *c, nccl_id *id, char *done, size_t size, nnc_status *st) {
  load(o);
  double loaded = lib.ok;
  if (nnc_comm_sum_doubles(c, &loaded, 1, "checking that every rank has NCCL", st)) return -1;
  if (!lib.ok) return nnc_fail(st, "%s", lib.why);
  if (loaded < nnc_comm_size(c))
    return nnc_fail(st, "NCCL cannot be opened on %d of the %d ranks", nnc_comm_size(c) - (int)loaded,
                    nnc_comm_size(c));
  int version = 0;
  lib.api.get_version(&version);
  nccl_result r = nnc_comm_rank(c) == 0 ? lib.api.get_unique_id(id) : NCCL_SUCCESS;
  unsigned char ok = r == NCCL_SUCCESS;
  if (nnc_comm_broadcast(c, &ok, 1, "sharing NCCL's unique id", st)) return -1;
  if (!ok) return r ? nccl_fail(r, "ncclGetUniqueId", "rank 0's unique id", st)
                    : nnc_fail(st, "NCCL: rank 0 could not draw the unique id");
  if (nnc_comm_broadcast(c, id, (int)sizeof *id, "sharing NCCL's unique id", st)) return -1;
  if (version > 0)
    snprintf(done, size, "NCCL %d.%d.%d loaded, unique id shared by %d ranks", version / 10000, version / 100 % 100,
             version % 100, nnc_comm_size(c));
  else
    snprintf(done, size, "NCCL loaded, unique id shared by %d ranks", nnc_comm_size(c));
  return 0;
}

int nnc_nccl_bootstrap(nnc_comm *c, const nnc_options *o, char *done, size_t size, nnc_status *st) {
  nccl_id id;
  return bootstrap(o, c, &id, done, size, st);
}

nnc_nccl *nnc_nccl_open(const nnc_options *o, nnc_comm *c, nnc_status *st) {
  nccl_id id;
  char done[128];
  if (bootstrap(o, c, &id, done, sizeof done, st) || find_stream_query(st)) return NULL;
  nnc_nccl *n = calloc(1, sizeof *n);
  if (!n) return nnc_fail(st, "out of memory opening NCCL"), NULL;
  n->rank = nnc_comm_rank(c), n->ranks = nnc_comm_size(c), n->timeout_s = nnc_comm_timeout(c);
  nccl_result r = lib.api.comm_init_rank(&n->comm, n->ranks, id, n->rank);
  if (r != NCCL_SUCCESS) {
    free(n);
    nccl_fail(r, "ncclCommInitRank", "the communicator", st);
    return NULL;
  }
  return n;
}

void nnc_nccl_close(nnc_nccl *n) {
  if (!n) return;
  if (n->comm) lib.api.comm_destroy(n->comm);
  free(n);
}

int nnc_nccl_sum(nnc_nccl *n, const float *in, float *out, int64_t count, float share, void *stream,
                 const char *what, nnc_status *st) {
  if (!n->comm) return nnc_fail(st, "NCCL: %s after the communicator was aborted", what);
  /* Each rank's gradient is the mean over its rows: NCCL scales it by the
   * rank's share of the batch as it sums (no extra pass over the data). */
  nccl_redop op;
  nccl_result r = lib.api.redop_create_premul_sum(&op, &share, NCCL_FLOAT32, NCCL_SCALAR_HOST_IMMEDIATE, n->comm);
  if (r != NCCL_SUCCESS) return nccl_fail(r, "ncclRedOpCreatePreMulSum", what, st);
  r = lib.api.all_reduce(in, out, (size_t)count, NCCL_FLOAT32, op, n->comm, stream);
  nccl_result destroyed = lib.api.redop_destroy(op, n->comm);
  if (r != NCCL_SUCCESS) return nccl_fail(r, "ncclAllReduce", what, st);
  return destroyed != NCCL_SUCCESS ? nccl_fail(destroyed, "ncclRedOpDestroy", what, st) : 0;
}

int nnc_nccl_wait(nnc_nccl *n, void *stream, const char *what, nnc_status *st) {
  if (!n->comm) return nnc_fail(st, "NCCL: %s after the communicator was aborted", what);
  double deadline = nnc_now() + n->timeout_s;
  for (;;) {
    int q = lib.stream_query(stream);
    if (q == 0) return 0;
    if (q != CUDA_ERROR_NOT_READY) return nnc_fail(st, "CUDA: the stream failed during %s (error %d)", what, q);
    nccl_result async = NCCL_SUCCESS;
    lib.api.comm_get_async_error(n->comm, &async);
    if (async != NCCL_SUCCESS && async != NCCL_IN_PROGRESS) {
      lib.api.comm_abort(n->comm);
      n->comm = NULL;
      return nccl_fail(async, "the communicator", what, st);
    }
    if (nnc_now() > deadline) {
      lib.api.comm_abort(n->comm);
      n->comm = NULL;
      return nnc_fail(st,
                      "%s waited %g s for the other ranks: one of them died or stopped "
                      "(--collective-timeout sets the limit)",
                      what, n->timeout_s);
    }
    struct timespec nap = {0, 50000};
    nanosleep(&nap, NULL);
  }
}
