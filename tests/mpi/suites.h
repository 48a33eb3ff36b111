/* The mpi area's test cases: data-parallel training (passes/allreduce.c,
 * runtime/collective.c, runtime/comm_mpi.c). Each file in tests/mpi/
 * defines one or more functions `TCase *tcase_<name>(void)`; list each
 * here, and main.c declares and registers it. */
#ifndef NNC_TESTS_MPI_SUITES_H
#define NNC_TESTS_MPI_SUITES_H

#include <check.h>

#define NNC_MPI_TCASES(X) \
  X(allreduce_pass)       \
  X(shard_dropout)        \
  X(ranks)

#define X(name) TCase *tcase_##name(void);
NNC_MPI_TCASES(X)
#undef X

#endif
