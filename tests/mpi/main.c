/* The mpi suite: the allreduce pass, sharded dropout, and whole runs under
 * `mpirun -np 2` against one process. */
#include "tests/mpi/suites.h"
#include "tests/testutil.h"

int main(void) {
  Suite *suite = suite_create("mpi");
#define X(name) suite_add_tcase(suite, tcase_##name());
  NNC_MPI_TCASES(X)
#undef X
  return nnc_test_main(suite);
}
