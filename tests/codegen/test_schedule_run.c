/* The schedule is what runs: models/vgg_fashion.lua's train step, dumped
 * after the schedule pass for each backend (`--dump-ir=schedule`), read
 * back, and run once by that backend; the kernels the backend reports
 * having run, in order, are the printed schedule's, node for node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "ir/text.h"
#include "runtime/backend.h"
#include "tests/codegen/suites.h"
#include "tests/testutil.h"

static const nnc_backend *const backends[] = {&nnc_backend_cpu, &nnc_backend_cuda_emu};

/* Zeros for every leaf: valid labels, and finite through an Adam step. */
static void **zero_leaves(const nnc_graph *g) {
  void **leaves = calloc((size_t)g->nnodes, sizeof *leaves);
  for (int32_t id = 0; id < g->nnodes; id++)
    if (nnc_ops[g->nodes[id].op].flags & NNC_OPF_LEAF)
      leaves[id] = calloc((size_t)nnc_node_numel(&g->nodes[id]) + 1, 4);
  return leaves;
}

START_TEST(test_backend_runs_the_printed_schedule) {
  const nnc_backend *b = backends[_i];
  char args[256];
  snprintf(args, sizeof args, "models/vgg_fashion.lua --dry-run --backend %s", b->name);
  nnc_graph *g = nnc_test_dumped_graph(args, "train-step", "schedule");
  nnc_status st = {0};
  ck_assert_int_gt(g->nkernels, 0);
  int fused = 0;
  for (int k = 0; k < g->nkernels; k++) fused += g->kernels[k].kind == NNC_KERNEL_FUSED;
  ck_assert_int_gt(fused, 0);
  void **leaves = zero_leaves(g);
  nnc_run_opts opts = {.training = 1, .seed = 1};
  nnc_exec *e = b->prepare(g, nnc_test_options(), &st);
  ck_assert_msg(e != NULL, "%s", st.msg);
  ck_assert_msg(b->run(e, leaves, &opts, &st) == 0, "%s", st.msg);
  int32_t nodes[NNC_MAX_GROUP + 1];
  for (int k = 0; k < g->nkernels; k++) {
    const nnc_kernel *kn = &g->kernels[k];
    int32_t want[NNC_MAX_GROUP + 1];
    int count = 0;
    if (kn->prologue >= 0) want[count++] = kn->prologue;
    for (int m = 0; m < kn->n; m++) want[count++] = kn->members[m];
    ck_assert_int_eq(b->ran(e, k, nodes), count);
    for (int m = 0; m < count; m++)
      ck_assert_msg(nodes[m] == want[m], "%s: kernel %d runs %%%d, the schedule says %%%d", b->name, k, (int)nodes[m],
                    (int)want[m]);
  }
  ck_assert_int_eq(b->ran(e, g->nkernels, nodes), 0);
  b->release(e);
  for (int32_t id = 0; id < g->nnodes; id++) free(leaves[id]);
  free(leaves);
  nnc_graph_free(g);
}
END_TEST

TCase *tcase_schedule_run(void) {
  TCase *tc = tcase_create("schedule_run");
  tcase_set_timeout(tc, 600);
  tcase_add_loop_test(tc, test_backend_runs_the_printed_schedule, 0, (int)(sizeof backends / sizeof backends[0]));
  return tc;
}
