/* The CPU backend's arena: laid out by the memory plan, the size the plan
 * says for real models' graphs, and sound: a train step whose plan reuses
 * dead values' bytes, run with the arena full of NaN before every run (the
 * suite sets NNC_CPU_POISON), agrees with the interpreter on every value
 * it keeps. The plan is the one made for the cpu's schedule. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "ir/text.h"
#include "passes/schedule.h"
#include "runtime/model.h"
#include "runtime/rng.h"
#include "tests/cpu/suites.h"
#include "tests/testutil.h"

/* Whether two stored values of g were given overlapping bytes. */
static int plan_reuses_bytes(const nnc_graph *g) {
  for (int32_t a = 0; a < g->nnodes; a++)
    for (int32_t b = a + 1; b < g->nnodes; b++) {
      if (g->offsets[a] < 0 || g->offsets[b] < 0) continue;
      int64_t sa = nnc_node_numel(&g->nodes[a]) * 4, sb = nnc_node_numel(&g->nodes[b]) * 4;
      if (g->offsets[a] < g->offsets[b] + sb && g->offsets[b] < g->offsets[a] + sa) return 1;
    }
  return 0;
}

/* The graphs a model script compiles, as the plan-memory pass left them
 * (dumped as IR, parsed back and planned again: the text has no offsets). */
static const char *const real_graphs[][2] = {
    {"models/vgg_fashion.lua", "train-step"},
    {"models/vgg_fashion.lua", "eval"},
    {"models/cnn.lua", "train-step"},
    {"models/mlp.lua", "train-step"},
};

START_TEST(test_real_model_arena_is_the_plan) {
  const char *script = real_graphs[_i][0], *kind = real_graphs[_i][1];
  char args[1024];
  snprintf(args, sizeof args, "%s --dry-run", script);
  nnc_graph *g = nnc_test_dumped_graph(args, kind, "plan-memory");
  nnc_status st = {0};
  ck_assert_int_gt(g->ngroups, 0);
  nnc_pass_ctx ctx = {.batch = NNC_DIM_ANY};
  ck_assert_msg(nnc_pass_plan_memory.run(&g, &ctx, &st) == 0, "%s", st.msg);
  ck_assert(plan_reuses_bytes(g));
  nnc_exec *e = nnc_backend_cpu.prepare(g, nnc_test_options(), &st);
  ck_assert_msg(e != NULL, "%s", st.msg);
  ck_assert_msg(nnc_backend_cpu.arena_bytes(e) == g->arena_bytes, "%s %s: arena %lld bytes, the plan's %lld", script,
                kind, (long long)nnc_backend_cpu.arena_bytes(e), (long long)g->arena_bytes);
  nnc_backend_cpu.release(e);
  nnc_graph_free(g);
}
END_TEST

/* Two convolutions and two dense layers, with pooling, dropout and a
 * flatten: enough values that the plan reuses bytes several times. */
static const char *const cnn_text =
    "graph {\n"
    "  %0 = input() {name=\"x\"} : f32[?,10,10,2]\n"
    "  %1 = param() {name=\"c1/kernel\"} : f32[3,3,2,6]\n"
    "  %2 = param() {name=\"c1/bias\"} : f32[6]\n"
    "  %3 = conv2d(%0, %1) {stride=[1,1], pad=same} : f32[?,10,10,6]\n"
    "  %4 = bias_add(%3, %2) : f32[?,10,10,6]\n"
    "  %5 = relu(%4) : f32[?,10,10,6]\n"
    "  %6 = param() {name=\"c2/kernel\"} : f32[3,3,6,6]\n"
    "  %7 = param() {name=\"c2/bias\"} : f32[6]\n"
    "  %8 = conv2d(%5, %6) {stride=[1,1], pad=same} : f32[?,10,10,6]\n"
    "  %9 = bias_add(%8, %7) : f32[?,10,10,6]\n"
    "  %10 = tanh(%9) : f32[?,10,10,6]\n"
    "  %11 = max_pool(%10) {window=[2,2], stride=[2,2], pad=valid} : f32[?,5,5,6]\n"
    "  %12 = dropout(%11) {rate=0.25, stream=5} : f32[?,5,5,6]\n"
    "  %13 = reshape(%12) {shape=[-1]} : f32[?,150]\n"
    "  %14 = param() {name=\"d1/kernel\"} : f32[150,16]\n"
    "  %15 = param() {name=\"d1/bias\"} : f32[16]\n"
    "  %16 = matmul(%13, %14) {trans_a=0, trans_b=0} : f32[?,16]\n"
    "  %17 = bias_add(%16, %15) : f32[?,16]\n"
    "  %18 = sigmoid(%17) : f32[?,16]\n"
    "  %19 = param() {name=\"d2/kernel\"} : f32[16,5]\n"
    "  %20 = param() {name=\"d2/bias\"} : f32[5]\n"
    "  %21 = matmul(%18, %19) {trans_a=0, trans_b=0} : f32[?,5]\n"
    "  %22 = bias_add(%21, %20) : f32[?,5]\n"
    "  %23 = softmax(%22) : f32[?,5]\n"
    "  output \"output\" = %23\n"
    "}\n";

enum { BATCH = 7, CLASSES = 5, STEPS = 3 };

static const nnc_optimizer adam = {NNC_OPT_ADAM, 0.01, 0.9, 0.999, 0, 0, 0, 1e-7, 0, 0};

/* Every value the cpu backend keeps after a run against the interpreter's,
 * every output among them; returns how many values were compared. */
static int compare_kept(const nnc_compiled *want, const nnc_compiled *got, int step) {
  const nnc_graph *g = got->g;
  ck_assert_uint_eq(nnc_graph_hash(g), nnc_graph_hash(want->g));
  int compared = 0;
  for (int32_t id = 0; id < g->nnodes; id++) {
    const nnc_node *n = &g->nodes[id];
    const void *v = nnc_backend_cpu.value(got->exec, id), *w = nnc_backend_interp.value(want->exec, id);
    if (!v || (nnc_ops[n->op].flags & NNC_OPF_LEAF)) continue;
    char what[96];
    snprintf(what, sizeof what, "step %d: %%%d = %s", step, (int)id, nnc_ops[n->op].name);
    if (n->dtype == NNC_F32) cputest_expect_close(what, v, w, nnc_node_numel(n), 1e-4);
    else ck_assert_msg(memcmp(v, w, (size_t)nnc_node_numel(n) * 4) == 0, "%s differs", what);
    compared++;
  }
  for (int i = 0; i < g->noutputs; i++)
    ck_assert_msg(nnc_backend_cpu.value(got->exec, g->outputs[i].node) != NULL, "output %s has no value",
                  g->outputs[i].name);
  return compared;
}

START_TEST(test_train_step_in_a_reused_arena) {
  nnc_status st = {0};
  nnc_graph *forward = nnc_graph_parse(cnn_text, "arena-cnn.ir", &st);
  ck_assert_msg(forward != NULL, "%s", st.msg);
  nnc_model want, got;
  cputest_start_model(&want, &nnc_backend_interp, forward, &adam, 3, 21, 0.4f);
  cputest_start_model(&got, &nnc_backend_cpu, forward, &adam, 3, 21, 0.4f);
  float x[BATCH * 10 * 10 * 2];
  int32_t y[BATCH];
  for (int s = 0; s < STEPS; s++) {
    for (int i = 0; i < BATCH * 10 * 10 * 2; i++) x[i] = 2 * nnc_rng_uniform(22, (uint32_t)s, (uint64_t)i) - 1;
    for (int i = 0; i < BATCH; i++) y[i] = (int32_t)(nnc_rng_uniform(23, (uint32_t)s, (uint64_t)i) * CLASSES);
    nnc_compiled *cw = nnc_model_compiled(&want, forward, NNC_KIND_TRAIN, BATCH, &st);
    nnc_compiled *cg = nnc_model_compiled(&got, forward, NNC_KIND_TRAIN, BATCH, &st);
    ck_assert_msg(cw && cg, "%s", st.msg);
    ck_assert(cg->g->offsets && plan_reuses_bytes(cg->g));
    ck_assert_int_eq(nnc_backend_cpu.arena_bytes(cg->exec), cg->g->arena_bytes);
    ck_assert_msg(nnc_model_run(&want, cw, x, y, &st) == 0, "%s", st.msg);
    ck_assert_msg(nnc_model_run(&got, cg, x, y, &st) == 0, "%s", st.msg);
    ck_assert_int_gt(compare_kept(cw, cg, s), cg->g->noutputs);
  }
  nnc_model_free(&got);
  nnc_model_free(&want);
  nnc_graph_free(forward);
}
END_TEST

/* x -> relu -> tanh -> sigmoid -> add(tanh, sigmoid), scheduled and
 * planned for the cpu: the backend takes the graph's plan as it is. Planned
 * on another schedule (every node alone, as for the interpreter), the graph
 * is scheduled and planned again for the cpu by the same two passes' code,
 * and the answer is the interpreter's either way. */
START_TEST(test_plan_is_followed_or_made_for_the_cpu) {
  for (int own = 0; own <= 1; own++) {
    nnc_status st = {0};
    nnc_graph *g = nnc_graph_parse("graph {\n"
                                   "  %0 = input() {name=\"x\"} : f32[300]\n"
                                   "  %1 = relu(%0) : f32[300]\n"
                                   "  %2 = tanh(%1) : f32[300]\n"
                                   "  %3 = sigmoid(%2) : f32[300]\n"
                                   "  %4 = add(%2, %3) : f32[300]\n"
                                   "  output \"y\" = %4\n"
                                   "}\n",
                                   "plan.ir", &st);
    ck_assert_msg(g != NULL, "%s", st.msg);
    nnc_pass_ctx ctx = {.batch = NNC_DIM_ANY, .caps = own ? nnc_backend_cpu.caps : NULL};
    const nnc_pass *passes[] = {&nnc_pass_fuse, &nnc_pass_schedule, &nnc_pass_plan_memory};
    ck_assert_msg(nnc_pass_run(&g, passes, 3, &ctx, NULL, &st) == 0, "%s", st.msg);
    int cpu_kernels = 0;
    nnc_kernel *k = nnc_schedule_build(nnc_test_options(), g, nnc_backend_cpu.caps, &cpu_kernels);
    int64_t *offsets = malloc(sizeof *offsets * (size_t)g->nnodes);
    int64_t cpu_bytes = nnc_plan_memory(g, k, cpu_kernels, offsets, &st);
    ck_assert_int_eq(g->nkernels, own ? cpu_kernels : 4);
    void **leaves = cputest_leaves(g, 0, 1);
    nnc_exec *want = cputest_run(&nnc_backend_interp, g, leaves, NULL);
    nnc_exec *got = cputest_run(&nnc_backend_cpu, g, leaves, NULL);
    ck_assert_int_eq(nnc_backend_cpu.arena_bytes(got), (cpu_bytes + 63) / 64 * 64);
    if (own) ck_assert_int_eq(g->arena_bytes, cpu_bytes);
    else ck_assert_int_gt(g->arena_bytes, cpu_bytes);
    cputest_expect_close("plan", nnc_backend_cpu.value(got, 4), nnc_backend_interp.value(want, 4), 300, 1e-6);
    nnc_backend_cpu.release(got);
    nnc_backend_interp.release(want);
    cputest_leaves_free(g, leaves);
    free(k), free(offsets);
    nnc_graph_free(g);
  }
}
END_TEST

TCase *tcase_cpu_arena(void) {
  TCase *tc = tcase_create("cpu_arena");
  tcase_set_timeout(tc, 300);
  tcase_add_loop_test(tc, test_real_model_arena_is_the_plan, 0, (int)(sizeof real_graphs / sizeof real_graphs[0]));
  tcase_add_test(tc, test_train_step_in_a_reused_arena);
  tcase_add_test(tc, test_plan_is_followed_or_made_for_the_cpu);
  return tc;
}
