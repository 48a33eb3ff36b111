/* The cpu backend's allreduce: the bucket's sum is started at its last
 * member and not waited for; cpu_run polls it between steps (so MPI moves
 * it along while backward runs) and finishes it before the first step
 * that reads a reduced gradient (runtime/collective.h). */
#include "runtime/collective.h"
#include "runtime/cpu/cpu.h"

static void run_allreduce(const nnc_cpu_args *a) {
  nnc_shard *s = a->k.opts ? a->k.opts->shard : NULL;
  if (!s || s->ranks < 2) {
    nnc_ref_allreduce(&a->k); /* one process: the identity */
    return;
  }
  nnc_collective_member(s, a->k.g, a->k.n, a->k.in[0], a->k.out);
}

const nnc_cpu_kernel nnc_cpu_allreduce = {.run = run_allreduce};
