/* runtime/comm.h on MPI, opened with dlopen.
 *
 * nnc links no MPI: a rank started by mpirun finds Open MPI's libmpi the
 * launcher itself uses, so nnc builds without libopenmpi-dev, the portable
 * binary stays free of shared libraries, and a machine without MPI runs
 * one process as before. The few entry points are declared here with Open
 * MPI's ABI, which has been stable since 1.x (soname libmpi.so.40 from 3.0
 * to 5.x): every handle is a pointer, and the predefined ones
 * (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, ...) are the addresses of exported
 * objects, found here with dlsym.
 *
 * Waits poll MPI_Test until a deadline, since a blocking MPI call never
 * returns when a peer dies; the poll is also what advances a nonblocking
 * all-reduce while backward runs (Open MPI progresses inside MPI calls). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/backend.h"
#include "runtime/comm.h"

typedef void *mpi_handle; /* MPI_Comm, MPI_Datatype, MPI_Op, MPI_Request, MPI_Errhandler */

typedef struct mpi_api {
  void *lib;
  int (*Init)(int *, char ***);
  int (*Initialized)(int *);
  int (*Finalize)(void);
  int (*Comm_rank)(mpi_handle, int *);
  int (*Comm_size)(mpi_handle, int *);
  int (*Comm_set_errhandler)(mpi_handle, mpi_handle);
  int (*Iallreduce)(const void *, void *, int, mpi_handle, mpi_handle, mpi_handle, mpi_handle *);
  int (*Ibcast)(void *, int, mpi_handle, int, mpi_handle, mpi_handle *);
  int (*Test)(mpi_handle *, int *, void *);
  int (*Abort)(mpi_handle, int);
  int (*Error_string)(int, char *, int *);
  mpi_handle comm_world, t_float, t_double, t_byte, op_sum, errors_return;
} mpi_api;

struct nnc_comm {
  mpi_api mpi;
  int rank, size;
  double timeout_s;
};

struct nnc_comm_request {
  nnc_comm *c;
  mpi_handle request;
  int done;
};

/* Where Open MPI's library is: the launcher's own (mpirun puts its prefix
 * in OPAL_PREFIX only when relocated, so the soname search comes first). */
static void *open_libmpi(nnc_status *st) {
  static const char *const names[] = {"libmpi.so.40", "libmpi.so"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    /* GLOBAL: Open MPI's components, dlopened by libmpi, resolve its symbols. */
    void *lib = dlopen(names[i], RTLD_NOW | RTLD_GLOBAL);
    if (lib) return lib;
  }
  nnc_fail(st, "started by mpirun, but Open MPI's libmpi.so.40 cannot be opened (%s); install openmpi-bin", dlerror());
  return NULL;
}

static int load_api(mpi_api *m, nnc_status *st) {
  memset(m, 0, sizeof *m);
  if (!(m->lib = open_libmpi(st))) return -1;
  struct {
    const char *name;
    void *slot;
    int object; /* a predefined handle: the symbol's address is the handle */
  } syms[] = {
      {"MPI_Init", &m->Init, 0},
      {"MPI_Initialized", &m->Initialized, 0},
      {"MPI_Finalize", &m->Finalize, 0},
      {"MPI_Comm_rank", &m->Comm_rank, 0},
      {"MPI_Comm_size", &m->Comm_size, 0},
      {"MPI_Comm_set_errhandler", &m->Comm_set_errhandler, 0},
      {"MPI_Iallreduce", &m->Iallreduce, 0},
      {"MPI_Ibcast", &m->Ibcast, 0},
      {"MPI_Test", &m->Test, 0},
      {"MPI_Abort", &m->Abort, 0},
      {"MPI_Error_string", &m->Error_string, 0},
      {"ompi_mpi_comm_world", &m->comm_world, 1},
      {"ompi_mpi_float", &m->t_float, 1},
      {"ompi_mpi_double", &m->t_double, 1},
      {"ompi_mpi_byte", &m->t_byte, 1},
      {"ompi_mpi_op_sum", &m->op_sum, 1},
      {"ompi_mpi_errors_return", &m->errors_return, 1},
  };
  for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
    void *p = dlsym(m->lib, syms[i].name);
    if (!p) {
      dlclose(m->lib);
      return nnc_fail(st, "the MPI library has no %s: nnc speaks Open MPI's ABI (libmpi.so.40)", syms[i].name);
    }
    memcpy(syms[i].slot, &p, sizeof p);
  }
  return 0;
}

static int mpi_fail(nnc_comm *c, int code, const char *call, const char *what, nnc_status *st) {
  char text[256] = "";
  int len = 0;
  c->mpi.Error_string(code, text, &len);
  return nnc_fail(st, "%s (%s) failed: %s", what, call, text);
}

nnc_comm *nnc_comm_open(int size, double timeout_s, nnc_status *st) {
  nnc_comm *c = calloc(1, sizeof *c);
  if (!c) return nnc_fail(st, "out of memory"), NULL;
  c->timeout_s = timeout_s;
  if (load_api(&c->mpi, st)) {
    free(c);
    return NULL;
  }
  int inited = 0, rc = c->mpi.Initialized(&inited);
  if (rc == 0 && !inited) rc = c->mpi.Init(NULL, NULL);
  if (rc == 0) rc = c->mpi.Comm_set_errhandler(c->mpi.comm_world, c->mpi.errors_return);
  if (rc == 0) rc = c->mpi.Comm_rank(c->mpi.comm_world, &c->rank);
  if (rc == 0) rc = c->mpi.Comm_size(c->mpi.comm_world, &c->size);
  if (rc == 0 && c->size != size)
    nnc_fail(st, "mpirun started %d ranks but MPI's world has %d", size, c->size), rc = -1;
  else if (rc) mpi_fail(c, rc, "MPI_Init", "starting MPI", st);
  if (rc) {
    free(c); /* libmpi stays loaded: unloading a half-started MPI is unsafe */
    return NULL;
  }
  return c;
}

void nnc_comm_close(nnc_comm *c) {
  if (!c) return;
  c->mpi.Finalize();
  free(c);
}

int nnc_comm_rank(const nnc_comm *c) { return c ? c->rank : 0; }
int nnc_comm_size(const nnc_comm *c) { return c ? c->size : 1; }

double nnc_comm_timeout(const nnc_comm *c) { return c->timeout_s; }

static nnc_comm_request *request_new(nnc_comm *c, nnc_status *st) {
  nnc_comm_request *r = calloc(1, sizeof *r);
  if (!r) nnc_fail(st, "out of memory");
  else r->c = c;
  return r;
}

nnc_comm_request *nnc_comm_sum_start(nnc_comm *c, float *data, int64_t count, nnc_status *st) {
  nnc_comm_request *r = request_new(c, st);
  if (!r) return NULL;
  if (count > 0x7fffffff) {
    free(r);
    return nnc_fail(st, "an all-reduce of %lld floats is more than MPI's int count", (long long)count), NULL;
  }
  int rc = c->mpi.Iallreduce((void *)1 /* MPI_IN_PLACE */, data, (int)count, c->mpi.t_float, c->mpi.op_sum,
                             c->mpi.comm_world, &r->request);
  if (rc) {
    free(r);
    mpi_fail(c, rc, "MPI_Iallreduce", "the gradient all-reduce", st);
    return NULL;
  }
  return r;
}

int nnc_comm_test(nnc_comm_request *r) {
  if (!r->done) r->c->mpi.Test(&r->request, &r->done, NULL);
  return r->done;
}

/* Polls until done or the deadline; frees r either way. */
int nnc_comm_wait(nnc_comm_request *r, const char *what, nnc_status *st) {
  nnc_comm *c = r->c;
  double deadline = nnc_now() + c->timeout_s;
  int rc = 0;
  while (!r->done && rc == 0) {
    rc = c->mpi.Test(&r->request, &r->done, NULL);
    if (r->done || rc) break;
    if (nnc_now() > deadline) {
      free(r);
      return nnc_fail(st,
                      "%s waited %g s for the other ranks: one of them died or stopped "
                      "(--collective-timeout sets the limit)",
                      what, c->timeout_s);
    }
    struct timespec nap = {0, 50000}; /* 50 us: yield the core to the ranks it shares */
    nanosleep(&nap, NULL);
  }
  free(r);
  return rc ? mpi_fail(c, rc, "MPI_Test", what, st) : 0;
}

int nnc_comm_sum_doubles(nnc_comm *c, double *data, int count, const char *what, nnc_status *st) {
  nnc_comm_request *r = request_new(c, st);
  if (!r) return -1;
  int rc = c->mpi.Iallreduce((void *)1, data, count, c->mpi.t_double, c->mpi.op_sum, c->mpi.comm_world, &r->request);
  if (rc) {
    free(r);
    return mpi_fail(c, rc, "MPI_Iallreduce", what, st);
  }
  return nnc_comm_wait(r, what, st);
}

int nnc_comm_broadcast(nnc_comm *c, void *data, int bytes, const char *what, nnc_status *st) {
  nnc_comm_request *r = request_new(c, st);
  if (!r) return -1;
  int rc = c->mpi.Ibcast(data, bytes, c->mpi.t_byte, 0, c->mpi.comm_world, &r->request);
  if (rc) {
    free(r);
    return mpi_fail(c, rc, "MPI_Ibcast", what, st);
  }
  return nnc_comm_wait(r, what, st);
}

void nnc_comm_abort(nnc_comm *c, int code) {
  fflush(NULL);
  c->mpi.Abort(c->mpi.comm_world, code);
}
