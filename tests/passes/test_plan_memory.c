/* The memory plan on real training graphs: values alive at the same time
 * never share bytes. Known answers on small graphs are IR tests
 * (tests/passes/plan-memory.ir). */
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "ir/text.h"
#include "passes/pass.h"
#include "passes/train.h"
#include "runtime/backend.h"
#include "tests/passes/suites.h"

/* The kernel that computes each node, -1 for a leaf. */
static int32_t *kernel_of(const nnc_graph *g) {
  int32_t *k = malloc(sizeof *k * (size_t)g->nnodes);
  for (int32_t id = 0; id < g->nnodes; id++) k[id] = -1;
  for (int i = 0; i < g->nkernels; i++) {
    if (g->kernels[i].prologue >= 0) k[g->kernels[i].prologue] = i;
    for (int m = 0; m < g->kernels[i].n; m++) k[g->kernels[i].members[m]] = i;
  }
  return k;
}

/* The value whose bytes node id is: itself, or for a view (a computed
 * node in no kernel) the value it views. */
static int32_t viewed(const nnc_graph *g, const int32_t *run_at, int32_t id) {
  while (run_at[id] < 0 && !(nnc_ops[g->nodes[id].op].flags & NNC_OPF_LEAF)) id = g->nodes[id].src[0];
  return id;
}

/* Values alive at the same kernel never share bytes; a view is its
 * value's bytes, and reading it keeps that value alive. Returns how many
 * views there are. */
static int check_no_overlap(const nnc_graph *g) {
  int32_t *run_at = kernel_of(g), *dies = kernel_of(g);
  int views = 0;
  for (int32_t id = 0; id < g->nnodes; id++)
    for (int i = 0; i < g->nodes[id].nsrc; i++) {
      int32_t v = viewed(g, run_at, g->nodes[id].src[i]);
      if (dies[v] < run_at[id]) dies[v] = run_at[id];
    }
  for (int i = 0; i < g->noutputs; i++) dies[viewed(g, run_at, g->outputs[i].node)] = g->nkernels;
  for (int32_t a = 0; a < g->nnodes; a++) {
    if (viewed(g, run_at, a) != a) {
      views++;
      ck_assert_msg(g->offsets[a] >= 0 && g->offsets[a] == g->offsets[viewed(g, run_at, a)],
                    "view %%%d is not at the bytes it views", (int)a);
      continue;
    }
    for (int32_t b = a + 1; b < g->nnodes; b++) {
      if (g->offsets[a] < 0 || g->offsets[b] < 0 || viewed(g, run_at, b) != b) continue;
      int64_t sa = nnc_node_numel(&g->nodes[a]) * 4, sb = nnc_node_numel(&g->nodes[b]) * 4;
      int alive_together = run_at[a] <= dies[b] && run_at[b] <= dies[a];
      int share_bytes = g->offsets[a] < g->offsets[b] + sb && g->offsets[b] < g->offsets[a] + sa;
      ck_assert_msg(!(alive_together && share_bytes), "%%%d and %%%d overlap", (int)a, (int)b);
      ck_assert_msg(g->offsets[a] + sa <= g->arena_bytes, "%%%d is past the arena", (int)a);
    }
  }
  free(run_at), free(dies);
  return views;
}

static int share_bytes(const nnc_graph *g, int32_t a, int32_t b) {
  int64_t sa = nnc_node_numel(&g->nodes[a]) * 4, sb = nnc_node_numel(&g->nodes[b]) * 4;
  return g->offsets[a] >= 0 && g->offsets[b] >= 0 && g->offsets[a] < g->offsets[b] + sb &&
         g->offsets[b] < g->offsets[a] + sa;
}

/* What lets a backend's kernels read operands while writing results: no
 * value a kernel stores shares bytes with an operand of any of its members,
 * and every value a kernel stores has its place. */
static void check_operands_apart(const nnc_graph *g) {
  for (int k = 0; k < g->nkernels; k++) {
    const nnc_kernel *kn = &g->kernels[k];
    for (int w = 0; w < kn->n; w++) {
      int32_t id = kn->members[w];
      int stored = (int)((kn->stores >> w) & 1u), placed = g->offsets[id] >= 0;
      ck_assert_msg(stored == placed, "%%%d: stored %d, placed %d", (int)id, stored, placed);
      for (int r = 0; r < kn->n; r++)
        for (int i = 0; i < g->nodes[kn->members[r]].nsrc; i++) {
          int32_t src = g->nodes[kn->members[r]].src[i];
          ck_assert_msg(!share_bytes(g, id, src) || src == id, "%%%d is written over its operand %%%d", (int)id,
                        (int)src);
        }
    }
  }
}

/* A small CNN's train step through the whole pipeline, fused and not. */
START_TEST(training_graph_plan_is_sound) {
  for (int run = 0; run < 4; run++) {
    int fused = run & 1;
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
    /* The cpu backend's schedule, then the CUDA backends'. */
    nnc_pass_ctx ctx = {.batch = 16, .train = &spec, .caps = run < 2 ? nnc_backend_cpu.caps : nnc_backend_cuda.caps};
    const nnc_pass *all[] = {&nnc_pass_loss, &nnc_pass_autodiff, &nnc_pass_optimizer, &nnc_pass_dce,
                             &nnc_pass_fuse, &nnc_pass_infer_shapes, &nnc_pass_schedule, &nnc_pass_plan_memory};
    const nnc_pass *unfused[] = {&nnc_pass_loss, &nnc_pass_autodiff, &nnc_pass_optimizer, &nnc_pass_dce,
                                 &nnc_pass_infer_shapes, &nnc_pass_schedule, &nnc_pass_plan_memory};
    int rc = fused ? nnc_pass_run(&g, all, 8, &ctx, NULL, &st) : nnc_pass_run(&g, unfused, 7, &ctx, NULL, &st);
    ck_assert_msg(rc == 0, "%s", st.msg);
    ck_assert_int_eq(g->ngroups > 0, fused);
    ck_assert(g->arena_bytes < g->intermediate_bytes);
    check_operands_apart(g);
    /* The Flatten and its gradient's reshape are views (neither is fused). */
    ck_assert_int_eq(check_no_overlap(g), 2);
    nnc_graph_free(g);
  }
}
END_TEST

TCase *tcase_plan_memory(void) {
  TCase *tc = tcase_create("plan_memory");
  tcase_add_test(tc, training_graph_plan_is_sound);
  return tc;
}
