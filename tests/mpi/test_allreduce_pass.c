/* The allreduce pass: gradients bucketed in the order backward produces
 * them, each bucket's nodes placed right after its last gradient, the
 * optimizer reading the reduced values; nothing at all for one rank. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "ir/text.h"
#include "passes/pass.h"
#include "passes/train.h"
#include "tests/mpi/suites.h"

/* conv k (144 bytes), bias b (16), dense w (2560): backward makes w's
 * gradient first, then b's, then k's. */
static nnc_graph *small_cnn(void) {
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
  return g;
}

static nnc_graph *through_allreduce(int ranks, int64_t bucket_bytes, int keep_grads) {
  nnc_graph *g = small_cnn();
  nnc_status st = {0};
  static nnc_train_spec spec = {.loss = NNC_LOSS_SPARSE_XENT, .accuracy = 1,
                                .optimizer = {.kind = NNC_OPT_SGD, .learning_rate = 0.01}};
  nnc_pass_ctx ctx = {.batch = 16, .train = &spec, .ranks = ranks, .bucket_bytes = bucket_bytes,
                      .keep_grads = keep_grads};
  const nnc_pass *passes[] = {&nnc_pass_loss, &nnc_pass_autodiff, &nnc_pass_allreduce, &nnc_pass_optimizer,
                              &nnc_pass_infer_shapes};
  ck_assert_msg(nnc_pass_run(&g, passes, 5, &ctx, NULL, &st) == 0, "%s", st.msg);
  return g;
}

static const nnc_node *grad_of(const nnc_graph *g, const char *weight) {
  char role[64];
  snprintf(role, sizeof role, NNC_GRAD_PREFIX "%s", weight);
  int32_t id = nnc_graph_output_node(g, role);
  ck_assert_msg(id >= 0, "no output %s", role);
  return &g->nodes[id];
}

START_TEST(buckets_in_production_order) {
  nnc_graph *g = through_allreduce(2, 200, 1);
  const nnc_node *w = grad_of(g, "w"), *b = grad_of(g, "b"), *k = grad_of(g, "k");
  ck_assert_int_eq(w->op, NNC_OP_ALLREDUCE);
  ck_assert_int_eq(b->op, NNC_OP_ALLREDUCE);
  ck_assert_int_eq(k->op, NNC_OP_ALLREDUCE);
  /* w's 2560 bytes fill a bucket of 200 alone; b and k (160) share the next. */
  ck_assert_int_eq(w->attrs.bucket, 0);
  ck_assert_int_eq(b->attrs.bucket, 1);
  ck_assert_int_eq(k->attrs.bucket, 1);
  /* Bucket 0 starts right after w's gradient, before backward goes on to
   * the convolution; bucket 1's nodes follow k's gradient, one after the
   * other. */
  int32_t wid = (int32_t)(w - g->nodes), bid = (int32_t)(b - g->nodes), kid = (int32_t)(k - g->nodes);
  ck_assert_int_eq(wid, w->src[0] + 1);
  ck_assert_int_lt(wid, k->src[0]);
  int32_t last = b->src[0] > k->src[0] ? b->src[0] : k->src[0];
  ck_assert_int_eq(bid < kid ? bid : kid, last + 1);
  ck_assert_int_eq(bid > kid ? bid : kid, last + 2);
  /* The updates read the reduced gradients. */
  int32_t update = nnc_graph_output_node(g, NNC_UPDATE_PREFIX "w");
  ck_assert_int_ge(update, 0);
  int reads = 0;
  for (int i = 0; i < g->nodes[update].nsrc; i++) reads += g->nodes[update].src[i] == wid;
  ck_assert_int_eq(reads, 1);
  nnc_graph_free(g);
}
END_TEST

START_TEST(one_bucket_by_default) {
  nnc_graph *g = through_allreduce(2, 0, 1);
  ck_assert_int_eq(grad_of(g, "w")->attrs.bucket, 0);
  ck_assert_int_eq(grad_of(g, "k")->attrs.bucket, 0);
  char *text = nnc_graph_to_text(g);
  ck_assert_msg(strstr(text, "allreduce(") && strstr(text, "{bucket=0}"), "%s", text);
  free(text);
  nnc_graph_free(g);
}
END_TEST

START_TEST(one_rank_adds_nothing) {
  nnc_graph *g = through_allreduce(1, 200, 0);
  for (int32_t id = 0; id < g->nnodes; id++) ck_assert_int_ne(g->nodes[id].op, NNC_OP_ALLREDUCE);
  nnc_graph_free(g);
}
END_TEST

/* Round trip through the text IR: the printer writes the bucket, the
 * parser reads it back. */
START_TEST(bucket_round_trips_as_text) {
  nnc_status st = {0};
  const char *text =
      "graph {\n"
      "  %0 = param() {name=\"w\"} : f32[3]\n"
      "  %1 = allreduce(%0) {bucket=2} : f32[3]\n"
      "  output \"grad:w\" = %1\n"
      "}\n";
  nnc_graph *g = nnc_graph_parse(text, "ar.ir", &st);
  ck_assert_msg(g, "%s", st.msg);
  ck_assert_int_eq(g->nodes[1].attrs.bucket, 2);
  char *back = nnc_graph_to_text(g);
  ck_assert_str_eq(back, text);
  free(back);
  nnc_graph_free(g);
}
END_TEST

TCase *tcase_allreduce_pass(void) {
  TCase *tc = tcase_create("allreduce_pass");
  tcase_add_test(tc, buckets_in_production_order);
  tcase_add_test(tc, one_bucket_by_default);
  tcase_add_test(tc, one_rank_adds_nothing);
  tcase_add_test(tc, bucket_round_trips_as_text);
  return tc;
}
