/* The memory plan on real training graphs: values alive at the same time
 * never share bytes. Known answers on small graphs are IR tests
 * (tests/passes/plan-memory.ir). */
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "ir/text.h"
#include "passes/pass.h"
#include "passes/train.h"
#include "tests/passes/suites.h"

/* When a value is born and when it dies, as the planner defines them. */
static int32_t run_at(const nnc_graph *g, int32_t id) {
  int grp = g->nodes[id].group;
  return grp < 0 ? id : g->groups[grp].members[g->groups[grp].nmembers - 1];
}

static void check_no_overlap(const nnc_graph *g) {
  int32_t *dies = malloc(sizeof *dies * (size_t)g->nnodes);
  for (int32_t id = 0; id < g->nnodes; id++) dies[id] = run_at(g, id);
  for (int32_t id = 0; id < g->nnodes; id++)
    for (int i = 0; i < g->nodes[id].nsrc; i++)
      if (dies[g->nodes[id].src[i]] < run_at(g, id)) dies[g->nodes[id].src[i]] = run_at(g, id);
  for (int i = 0; i < g->noutputs; i++) dies[g->outputs[i].node] = g->nnodes;
  for (int32_t a = 0; a < g->nnodes; a++)
    for (int32_t b = a + 1; b < g->nnodes; b++) {
      if (g->offsets[a] < 0 || g->offsets[b] < 0) continue;
      int64_t sa = nnc_node_numel(&g->nodes[a]) * 4, sb = nnc_node_numel(&g->nodes[b]) * 4;
      int alive_together = run_at(g, a) <= dies[b] && run_at(g, b) <= dies[a];
      int share_bytes = g->offsets[a] < g->offsets[b] + sb && g->offsets[b] < g->offsets[a] + sa;
      ck_assert_msg(!(alive_together && share_bytes), "%%%d and %%%d overlap", (int)a, (int)b);
      ck_assert_msg(g->offsets[a] + sa <= g->arena_bytes, "%%%d is past the arena", (int)a);
    }
  free(dies);
}

static int share_bytes(const nnc_graph *g, int32_t a, int32_t b) {
  int64_t sa = nnc_node_numel(&g->nodes[a]) * 4, sb = nnc_node_numel(&g->nodes[b]) * 4;
  return g->offsets[a] >= 0 && g->offsets[b] >= 0 && g->offsets[a] < g->offsets[b] + sb &&
         g->offsets[b] < g->offsets[a] + sa;
}

/* What lets a backend's kernels read operands while writing results: no
 * stored result of a node (of its whole group, which runs as one kernel)
 * shares bytes with any operand of the node (of any member). */
static void check_operands_apart(const nnc_graph *g) {
  for (int32_t id = 0; id < g->nnodes; id++) {
    int grp = g->nodes[id].group, count = grp < 0 ? 1 : g->groups[grp].nmembers;
    for (int r = 0; r < count; r++) {
      int32_t reader = grp < 0 ? id : g->groups[grp].members[r];
      for (int i = 0; i < g->nodes[reader].nsrc; i++)
        ck_assert_msg(!share_bytes(g, id, g->nodes[reader].src[i]) || g->nodes[reader].src[i] == id,
                      "%%%d is written over its operand %%%d", (int)id, (int)g->nodes[reader].src[i]);
    }
  }
}

/* A small CNN's train step through the whole pipeline, fused and not. */
START_TEST(training_graph_plan_is_sound) {
  for (int fused = 0; fused <= 1; fused++) {
    nnc_status st = {0};
    nnc_graph *g = nnc_graph_parse(
        "graph {\n"
        "  %0 = input() {name=\"x\"} : f32[?,8,8,1]\n"
        "  %1 = param() {name=\"k\"} : f32[3,3,1,4]\n"
        "  %2 = param() {name=\"b\"} : f32[4]\n"
        "  %3 = conv2d(%0, %1) {stride=[1,1], pad=same} : f32[?,8,8,4]\n"
        "  %4 = bias_add(%3, %2) : f32[?,8,8,4]\n"
        "  %5 = relu(%4) : f32[?,8,8,4]\n"
        "  %6 = max_pool(%5) {window=[2,2], stride=[2,2], pad=valid} : f32[?,4,4,4]\n"
        "  %7 = reshape(%6) {shape=[-1]} : f32[?,64]\n"
        "  %8 = param() {name=\"w\"} : f32[64,10]\n"
        "  %9 = matmul(%7, %8) {trans_a=0, trans_b=0} : f32[?,10]\n"
        "  %10 = softmax(%9) : f32[?,10]\n"
        "  output \"output\" = %10\n"
        "}\n",
        "cnn.ir", &st);
    ck_assert_msg(g, "%s", st.msg);
    nnc_train_spec spec = {NNC_LOSS_SPARSE_XENT, 1, {NNC_OPT_ADAM, 0.001, 0.9, 0.999, 0.9, 0, 0, 1e-7, 0, 0}};
    nnc_pass_ctx ctx = {.batch = 16, .train = &spec};
    const nnc_pass *all[] = {&nnc_pass_loss, &nnc_pass_autodiff, &nnc_pass_optimizer, &nnc_pass_dce,
                             &nnc_pass_fuse, &nnc_pass_infer_shapes, &nnc_pass_plan_memory};
    const nnc_pass *unfused[] = {&nnc_pass_loss, &nnc_pass_autodiff, &nnc_pass_optimizer, &nnc_pass_dce,
                                 &nnc_pass_infer_shapes, &nnc_pass_plan_memory};
    int rc = fused ? nnc_pass_run(&g, all, 7, &ctx, NULL, &st) : nnc_pass_run(&g, unfused, 6, &ctx, NULL, &st);
    ck_assert_msg(rc == 0, "%s", st.msg);
    ck_assert_int_eq(g->ngroups > 0, fused);
    ck_assert(g->arena_bytes < g->intermediate_bytes);
    check_operands_apart(g);
    check_no_overlap(g);
    nnc_graph_free(g);
  }
}
END_TEST

TCase *tcase_plan_memory(void) {
  TCase *tc = tcase_create("plan_memory");
  tcase_add_test(tc, training_graph_plan_is_sound);
  return tc;
}
