/* The fuse pass as text: IR in, IR out, one case per rule and per reason a
 * rule must not fire. Expected texts are written out whole. */
#include <stdlib.h>
#include <string.h>

#include "ir/text.h"
#include "passes/lower.h"
#include "passes/pass.h"
#include "tests/passes/suites.h"

/* Parses `in`, runs fuse (and the verifier) for a backend that honours
 * --lower or not, and compares the printed result. */
static void expect_fused_for(const char *in, const char *want, int lower) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_parse(in, "in.ir", &st);
  ck_assert_msg(g, "%s", st.msg);
  nnc_pass_ctx ctx = {.batch = NNC_DIM_ANY, .gpu = lower};
  const nnc_pass *passes[] = {&nnc_pass_fuse};
  ck_assert_msg(nnc_pass_run(&g, passes, 1, &ctx, NULL, &st) == 0, "%s", st.msg);
  char *text = nnc_graph_to_text(g);
  ck_assert_msg(strcmp(text, want) == 0, "got:\n%s\nwanted:\n%s", text, want);
  /* The fused text reads back into the same graph. */
  nnc_graph *again = nnc_graph_parse(text, "out.ir", &st);
  ck_assert_msg(again, "%s", st.msg);
  char *text2 = nnc_graph_to_text(again);
  ck_assert_str_eq(text, text2);
  free(text), free(text2);
  nnc_graph_free(g), nnc_graph_free(again);
}

static void expect_fused(const char *in, const char *want) { expect_fused_for(in, want, 0); }

START_TEST(conv_bias_relu) {
  expect_fused("graph {\n"
               "  %0 = input() {name=\"x\"} : f32[?,6,6,1]\n"
               "  %1 = param() {name=\"k\"} : f32[3,3,1,4]\n"
               "  %2 = conv2d(%0, %1) {stride=[1,1], pad=same} : f32[?,6,6,4]\n"
               "  %3 = param() {name=\"b\"} : f32[4]\n"
               "  %4 = bias_add(%2, %3) : f32[?,6,6,4]\n"
               "  %5 = relu(%4) : f32[?,6,6,4]\n"
               "  output \"output\" = %5\n"
               "}\n",
               "graph {\n"
               "  %0 = input() {name=\"x\"} : f32[?,6,6,1]\n"
               "  %1 = param() {name=\"k\"} : f32[3,3,1,4]\n"
               "  %2 = param() {name=\"b\"} : f32[4]\n"
               "  fused \"conv2d+bias+act\" {\n"
               "    %3 = conv2d(%0, %1) {stride=[1,1], pad=same} : f32[?,6,6,4]\n"
               "    %4 = bias_add(%3, %2) : f32[?,6,6,4]\n"
               "    %5 = relu(%4) : f32[?,6,6,4]\n"
               "  }\n"
               "  output \"output\" = %5\n"
               "}\n");
}
END_TEST

START_TEST(dense_softmax_head) {
  expect_fused("graph {\n"
               "  %0 = input() {name=\"x\"} : f32[?,8]\n"
               "  %1 = param() {name=\"w\"} : f32[8,3]\n"
               "  %2 = param() {name=\"b\"} : f32[3]\n"
               "  %3 = matmul(%0, %1) {trans_a=0, trans_b=0} : f32[?,3]\n"
               "  %4 = bias_add(%3, %2) : f32[?,3]\n"
               "  %5 = softmax(%4) : f32[?,3]\n"
               "  output \"output\" = %5\n"
               "}\n",
               "graph {\n"
               "  %0 = input() {name=\"x\"} : f32[?,8]\n"
               "  %1 = param() {name=\"w\"} : f32[8,3]\n"
               "  %2 = param() {name=\"b\"} : f32[3]\n"
               "  fused \"matmul+bias+act\" {\n"
               "    %3 = matmul(%0, %1) {trans_a=0, trans_b=0} : f32[?,3]\n"
               "    %4 = bias_add(%3, %2) : f32[?,3]\n"
               "    %5 = softmax(%4) : f32[?,3]\n"
               "  }\n"
               "  output \"output\" = %5\n"
               "}\n");
  /* A GPU kernel's GEMM tile does not hold a whole row, so on cuda the
   * softmax is a kernel of its own and not a member of the group. */
  expect_fused_for("graph {\n"
                   "  %0 = input() {name=\"x\"} : f32[?,8]\n"
                   "  %1 = param() {name=\"w\"} : f32[8,3]\n"
                   "  %2 = param() {name=\"b\"} : f32[3]\n"
                   "  %3 = matmul(%0, %1) {trans_a=0, trans_b=0} : f32[?,3]\n"
                   "  %4 = bias_add(%3, %2) : f32[?,3]\n"
                   "  %5 = softmax(%4) : f32[?,3]\n"
                   "  output \"output\" = %5\n"
                   "}\n",
                   "graph {\n"
                   "  %0 = input() {name=\"x\"} : f32[?,8]\n"
                   "  %1 = param() {name=\"w\"} : f32[8,3]\n"
                   "  %2 = param() {name=\"b\"} : f32[3]\n"
                   "  fused \"matmul+bias+act\" {\n"
                   "    %3 = matmul(%0, %1) {trans_a=0, trans_b=0} : f32[?,3]\n"
                   "    %4 = bias_add(%3, %2) : f32[?,3]\n"
                   "  }\n"
                   "  %5 = softmax(%4) : f32[?,3]\n"
                   "  output \"output\" = %5\n"
                   "}\n",
                   1);
}
END_TEST

/* The pre-activation is read by another node (here an output), so only
 * conv+bias fuse and the relu stays on its own. */
START_TEST(shared_intermediate_stops_the_epilogue) {
  expect_fused("graph {\n"
               "  %0 = input() {name=\"x\"} : f32[?,6,6,1]\n"
               "  %1 = param() {name=\"k\"} : f32[3,3,1,4]\n"
               "  %2 = param() {name=\"b\"} : f32[4]\n"
               "  %3 = conv2d(%0, %1) {stride=[1,1], pad=valid} : f32[?,4,4,4]\n"
               "  %4 = bias_add(%3, %2) : f32[?,4,4,4]\n"
               "  %5 = relu(%4) : f32[?,4,4,4]\n"
               "  output \"pre\" = %4\n"
               "  output \"output\" = %5\n"
               "}\n",
               "graph {\n"
               "  %0 = input() {name=\"x\"} : f32[?,6,6,1]\n"
               "  %1 = param() {name=\"k\"} : f32[3,3,1,4]\n"
               "  %2 = param() {name=\"b\"} : f32[4]\n"
               "  fused \"conv2d+bias+act\" {\n"
               "    %3 = conv2d(%0, %1) {stride=[1,1], pad=valid} : f32[?,4,4,4]\n"
               "    %4 = bias_add(%3, %2) : f32[?,4,4,4]\n"
               "  }\n"
               "  %5 = relu(%4) : f32[?,4,4,4]\n"
               "  output \"pre\" = %4\n"
               "  output \"output\" = %5\n"
               "}\n");
}
END_TEST

START_TEST(gradient_and_activation_gradient) {
  expect_fused("graph {\n"
               "  %0 = input() {name=\"dy\"} : f32[?,4,4,4]\n"
               "  %1 = param() {name=\"k\"} : f32[3,3,2,4]\n"
               "  %2 = input() {name=\"y\"} : f32[?,6,6,2]\n"
               "  %3 = conv2d_grad_input(%0, %1) {stride=[1,1], pad=valid, shape=[6,6,2]} : f32[?,6,6,2]\n"
               "  %4 = relu_grad(%2, %3) : f32[?,6,6,2]\n"
               "  output \"dx\" = %4\n"
               "}\n",
               "graph {\n"
               "  %0 = input() {name=\"dy\"} : f32[?,4,4,4]\n"
               "  %1 = param() {name=\"k\"} : f32[3,3,2,4]\n"
               "  %2 = input() {name=\"y\"} : f32[?,6,6,2]\n"
               "  fused \"conv2d-grad+act-grad\" {\n"
               "    %3 = conv2d_grad_input(%0, %1) {stride=[1,1], pad=valid, shape=[6,6,2]} : f32[?,6,6,2]\n"
               "    %4 = relu_grad(%2, %3) : f32[?,6,6,2]\n"
               "  }\n"
               "  output \"dx\" = %4\n"
               "}\n");
}
END_TEST

/* The backward of relu -> max_pool -> dropout: the dropout gradient, the
 * pool gradient and the activation gradient form one group; the bias
 * gradient after it stays on its own (the rule leaves it out). */
START_TEST(pool_gradient_chain) {
  expect_fused("graph {\n"
               "  %0 = input() {name=\"y\"} : f32[?,4,4,3]\n"
               "  %1 = input() {name=\"dy\"} : f32[?,2,2,3]\n"
               "  %2 = dropout(%1) {rate=0.5, stream=7} : f32[?,2,2,3]\n"
               "  %3 = max_pool_grad(%0, %2) {window=[2,2], stride=[2,2], pad=valid} : f32[?,4,4,3]\n"
               "  %4 = relu_grad(%0, %3) : f32[?,4,4,3]\n"
               "  %5 = bias_grad(%4) : f32[3]\n"
               "  output \"dx\" = %4\n"
               "  output \"db\" = %5\n"
               "}\n",
               "graph {\n"
               "  %0 = input() {name=\"y\"} : f32[?,4,4,3]\n"
               "  %1 = input() {name=\"dy\"} : f32[?,2,2,3]\n"
               "  fused \"pool-grad\" {\n"
               "    %2 = dropout(%1) {rate=0.5, stream=7} : f32[?,2,2,3]\n"
               "    %3 = max_pool_grad(%0, %2) {window=[2,2], stride=[2,2], pad=valid} : f32[?,4,4,3]\n"
               "    %4 = relu_grad(%0, %3) : f32[?,4,4,3]\n"
               "  }\n"
               "  %5 = bias_grad(%4) : f32[3]\n"
               "  output \"dx\" = %4\n"
               "  output \"db\" = %5\n"
               "}\n");
}
END_TEST

/* The masked dy is also read elsewhere (an output here), so the dropout
 * stays out and the pool and activation gradients still fuse; without
 * dropout the pair fuses alone. */
START_TEST(pool_gradient_shared_dropout) {
  expect_fused("graph {\n"
               "  %0 = input() {name=\"y\"} : f32[?,4,4,3]\n"
               "  %1 = input() {name=\"dy\"} : f32[?,2,2,3]\n"
               "  %2 = dropout(%1) {rate=0.5, stream=7} : f32[?,2,2,3]\n"
               "  %3 = max_pool_grad(%0, %2) {window=[2,2], stride=[2,2], pad=valid} : f32[?,4,4,3]\n"
               "  %4 = tanh_grad(%0, %3) : f32[?,4,4,3]\n"
               "  output \"dx\" = %4\n"
               "  output \"masked\" = %2\n"
               "}\n",
               "graph {\n"
               "  %0 = input() {name=\"y\"} : f32[?,4,4,3]\n"
               "  %1 = input() {name=\"dy\"} : f32[?,2,2,3]\n"
               "  %2 = dropout(%1) {rate=0.5, stream=7} : f32[?,2,2,3]\n"
               "  fused \"pool-grad\" {\n"
               "    %3 = max_pool_grad(%0, %2) {window=[2,2], stride=[2,2], pad=valid} : f32[?,4,4,3]\n"
               "    %4 = tanh_grad(%0, %3) : f32[?,4,4,3]\n"
               "  }\n"
               "  output \"dx\" = %4\n"
               "  output \"masked\" = %2\n"
               "}\n");
}
END_TEST

/* The pool gradient read twice (here also as an output) is stored, so no
 * activation gradient joins it; a dropout before it still does. */
START_TEST(pool_gradient_read_twice) {
  expect_fused("graph {\n"
               "  %0 = input() {name=\"y\"} : f32[?,4,4,3]\n"
               "  %1 = input() {name=\"dy\"} : f32[?,2,2,3]\n"
               "  %2 = dropout(%1) {rate=0.5, stream=7} : f32[?,2,2,3]\n"
               "  %3 = max_pool_grad(%0, %2) {window=[2,2], stride=[2,2], pad=valid} : f32[?,4,4,3]\n"
               "  %4 = relu_grad(%0, %3) : f32[?,4,4,3]\n"
               "  output \"dx\" = %4\n"
               "  output \"routed\" = %3\n"
               "}\n",
               "graph {\n"
               "  %0 = input() {name=\"y\"} : f32[?,4,4,3]\n"
               "  %1 = input() {name=\"dy\"} : f32[?,2,2,3]\n"
               "  fused \"pool-grad\" {\n"
               "    %2 = dropout(%1) {rate=0.5, stream=7} : f32[?,2,2,3]\n"
               "    %3 = max_pool_grad(%0, %2) {window=[2,2], stride=[2,2], pad=valid} : f32[?,4,4,3]\n"
               "  }\n"
               "  %4 = relu_grad(%0, %3) : f32[?,4,4,3]\n"
               "  output \"dx\" = %4\n"
               "  output \"routed\" = %3\n"
               "}\n");
}
END_TEST

/* An Adam update: square, both emas and the update become one loop, and
 * the slots it exports (m, v) stay outputs. */
START_TEST(optimizer_update_is_one_group) {
  expect_fused("graph {\n"
               "  %0 = param() {name=\"w\"} : f32[5]\n"
               "  %1 = input() {name=\"g\"} : f32[5]\n"
               "  %2 = param() {name=\"w/m\"} : f32[5]\n"
               "  %3 = param() {name=\"w/v\"} : f32[5]\n"
               "  %4 = input() {name=\"lr\"} : f32[]\n"
               "  %5 = ema(%2, %1) {alpha=0.100000001} : f32[5]\n"
               "  %6 = square(%1) : f32[5]\n"
               "  %7 = ema(%3, %6) {alpha=0.00100000005} : f32[5]\n"
               "  %8 = adam_update(%0, %5, %7, %4) {eps=1.00000001e-07} : f32[5]\n"
               "  output \"update:w\" = %8\n"
               "  output \"update:w/m\" = %5\n"
               "  output \"update:w/v\" = %7\n"
               "}\n",
               "graph {\n"
               "  %0 = param() {name=\"w\"} : f32[5]\n"
               "  %1 = input() {name=\"g\"} : f32[5]\n"
               "  %2 = param() {name=\"w/m\"} : f32[5]\n"
               "  %3 = param() {name=\"w/v\"} : f32[5]\n"
               "  %4 = input() {name=\"lr\"} : f32[]\n"
               "  fused \"pointwise\" {\n"
               "    %5 = ema(%2, %1) {alpha=0.100000001} : f32[5]\n"
               "    %6 = square(%1) : f32[5]\n"
               "    %7 = ema(%3, %6) {alpha=0.00100000005} : f32[5]\n"
               "    %8 = adam_update(%0, %5, %7, %4) {eps=1.00000001e-07} : f32[5]\n"
               "  }\n"
               "  output \"update:w\" = %8\n"
               "  output \"update:w/m\" = %5\n"
               "  output \"update:w/v\" = %7\n"
               "}\n");
}
END_TEST

/* A chain is cut where a non-pointwise op reads a member mid-chain, and
 * ops of another size never join. */
START_TEST(pointwise_chain_cut_by_an_outside_reader) {
  expect_fused("graph {\n"
               "  %0 = input() {name=\"x\"} : f32[2,3]\n"
               "  %1 = relu(%0) : f32[2,3]\n"
               "  %2 = tanh(%1) : f32[2,3]\n"
               "  %3 = softmax(%2) : f32[2,3]\n"
               "  %4 = mul(%2, %3) : f32[2,3]\n"
               "  %5 = bias_grad(%4) : f32[3]\n"
               "  %6 = sigmoid(%5) : f32[3]\n"
               "  output \"a\" = %4\n"
               "  output \"b\" = %6\n"
               "}\n",
               "graph {\n"
               "  %0 = input() {name=\"x\"} : f32[2,3]\n"
               "  fused \"pointwise\" {\n"
               "    %1 = relu(%0) : f32[2,3]\n"
               "    %2 = tanh(%1) : f32[2,3]\n"
               "  }\n"
               "  %3 = softmax(%2) : f32[2,3]\n"
               "  %4 = mul(%2, %3) : f32[2,3]\n"
               "  %5 = bias_grad(%4) : f32[3]\n"
               "  %6 = sigmoid(%5) : f32[3]\n"
               "  output \"a\" = %4\n"
               "  output \"b\" = %6\n"
               "}\n");
}
END_TEST

START_TEST(malformed_group_is_an_error) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_parse("graph {\n"
                                 "  %0 = input() {name=\"x\"} : f32[2]\n"
                                 "  fused \"pointwise\" {\n"
                                 "    %1 = relu(%0) : f32[2]\n"
                                 "  output \"y\" = %1\n",
                                 "bad.ir", &st);
  ck_assert_ptr_null(g);
  ck_assert_msg(strstr(st.msg, "bad.ir:5:3: ") && strstr(st.msg, "in a fused group"), "%s", st.msg);
}
END_TEST

/* --lower: a convolution that cuDNN runs writes the plain result, so it
 * anchors nothing; its bias_add and relu form a pointwise group. The same
 * graph for a backend without lowerings keeps the epilogue. */
static const char lowered_conv_in[] = "graph {\n"
                                      "  %0 = input() {name=\"x\"} : f32[?,6,6,1]\n"
                                      "  %1 = param() {name=\"k\"} : f32[3,3,1,4]\n"
                                      "  %2 = conv2d(%0, %1) {stride=[1,1], pad=same} : f32[?,6,6,4]\n"
                                      "  %3 = param() {name=\"b\"} : f32[4]\n"
                                      "  %4 = bias_add(%2, %3) : f32[?,6,6,4]\n"
                                      "  %5 = relu(%4) : f32[?,6,6,4]\n"
                                      "  output \"output\" = %5\n"
                                      "}\n";

START_TEST(lowered_conv_anchors_nothing) {
  ck_assert_int_eq(nnc_lower_set("conv=cudnn", &(nnc_status){0}), 0);
  expect_fused_for(lowered_conv_in,
                   "graph {\n"
                   "  %0 = input() {name=\"x\"} : f32[?,6,6,1]\n"
                   "  %1 = param() {name=\"k\"} : f32[3,3,1,4]\n"
                   "  %2 = conv2d(%0, %1) {stride=[1,1], pad=same} : f32[?,6,6,4]\n"
                   "  %3 = param() {name=\"b\"} : f32[4]\n"
                   "  fused \"pointwise\" {\n"
                   "    %4 = bias_add(%2, %3) : f32[?,6,6,4]\n"
                   "    %5 = relu(%4) : f32[?,6,6,4]\n"
                   "  }\n"
                   "  output \"output\" = %5\n"
                   "}\n",
                   1);
  /* cpu and interp fuse as always. */
  expect_fused_for(lowered_conv_in,
                   "graph {\n"
                   "  %0 = input() {name=\"x\"} : f32[?,6,6,1]\n"
                   "  %1 = param() {name=\"k\"} : f32[3,3,1,4]\n"
                   "  %2 = param() {name=\"b\"} : f32[4]\n"
                   "  fused \"conv2d+bias+act\" {\n"
                   "    %3 = conv2d(%0, %1) {stride=[1,1], pad=same} : f32[?,6,6,4]\n"
                   "    %4 = bias_add(%3, %2) : f32[?,6,6,4]\n"
                   "    %5 = relu(%4) : f32[?,6,6,4]\n"
                   "  }\n"
                   "  output \"output\" = %5\n"
                   "}\n",
                   0);
  nnc_lower_reset();
}
END_TEST

/* A "same" convolution with lopsided padding (stride 2 over an even size)
 * is one cuDNN cannot compute, so it keeps nnc's kernel and its epilogue. */
START_TEST(lowered_conv_with_lopsided_padding_keeps_its_epilogue) {
  ck_assert_int_eq(nnc_lower_set("conv=cudnn", &(nnc_status){0}), 0);
  expect_fused_for("graph {\n"
                   "  %0 = input() {name=\"x\"} : f32[?,6,6,1]\n"
                   "  %1 = param() {name=\"k\"} : f32[3,3,1,4]\n"
                   "  %2 = conv2d(%0, %1) {stride=[2,2], pad=same} : f32[?,3,3,4]\n"
                   "  %3 = param() {name=\"b\"} : f32[4]\n"
                   "  %4 = bias_add(%2, %3) : f32[?,3,3,4]\n"
                   "  output \"output\" = %4\n"
                   "}\n",
                   "graph {\n"
                   "  %0 = input() {name=\"x\"} : f32[?,6,6,1]\n"
                   "  %1 = param() {name=\"k\"} : f32[3,3,1,4]\n"
                   "  %2 = param() {name=\"b\"} : f32[4]\n"
                   "  fused \"conv2d+bias+act\" {\n"
                   "    %3 = conv2d(%0, %1) {stride=[2,2], pad=same} : f32[?,3,3,4]\n"
                   "    %4 = bias_add(%3, %2) : f32[?,3,3,4]\n"
                   "  }\n"
                   "  output \"output\" = %4\n"
                   "}\n",
                   1);
  nnc_lower_reset();
}
END_TEST

/* matmul=cublas: the backward dy @ w^T anchors no grad-act group either;
 * the activation gradient joins the pointwise ops after it. Convolutions
 * are untouched by a matmul-only setting. */
START_TEST(lowered_matmul_anchors_no_grad_act) {
  ck_assert_int_eq(nnc_lower_set("matmul=cublas", &(nnc_status){0}), 0);
  expect_fused_for("graph {\n"
                   "  %0 = input() {name=\"dy\"} : f32[?,3]\n"
                   "  %1 = param() {name=\"w\"} : f32[8,3]\n"
                   "  %2 = input() {name=\"y\"} : f32[?,8]\n"
                   "  %3 = matmul(%0, %1) {trans_a=0, trans_b=1} : f32[?,8]\n"
                   "  %4 = relu_grad(%2, %3) : f32[?,8]\n"
                   "  %5 = mul(%4, %4) : f32[?,8]\n"
                   "  output \"dx\" = %5\n"
                   "}\n",
                   "graph {\n"
                   "  %0 = input() {name=\"dy\"} : f32[?,3]\n"
                   "  %1 = param() {name=\"w\"} : f32[8,3]\n"
                   "  %2 = input() {name=\"y\"} : f32[?,8]\n"
                   "  %3 = matmul(%0, %1) {trans_a=0, trans_b=1} : f32[?,8]\n"
                   "  fused \"pointwise\" {\n"
                   "    %4 = relu_grad(%2, %3) : f32[?,8]\n"
                   "    %5 = mul(%4, %4) : f32[?,8]\n"
                   "  }\n"
                   "  output \"dx\" = %5\n"
                   "}\n",
                   1);
  expect_fused_for(lowered_conv_in,
                   "graph {\n"
                   "  %0 = input() {name=\"x\"} : f32[?,6,6,1]\n"
                   "  %1 = param() {name=\"k\"} : f32[3,3,1,4]\n"
                   "  %2 = param() {name=\"b\"} : f32[4]\n"
                   "  fused \"conv2d+bias+act\" {\n"
                   "    %3 = conv2d(%0, %1) {stride=[1,1], pad=same} : f32[?,6,6,4]\n"
                   "    %4 = bias_add(%3, %2) : f32[?,6,6,4]\n"
                   "    %5 = relu(%4) : f32[?,6,6,4]\n"
                   "  }\n"
                   "  output \"output\" = %5\n"
                   "}\n",
                   1);
  nnc_lower_reset();
}
END_TEST

/* The --lower spec: parts, defaults, and errors that name what is wrong. */
START_TEST(lower_spec_parsing) {
  nnc_status st = {0};
  ck_assert_int_eq(nnc_lower_set("conv=cudnn,matmul=cublas", &st), 0);
  ck_assert_int_eq(nnc_lower_for_op(NNC_OP_CONV2D_GRAD_KERNEL), NNC_LOWER_CUDNN);
  ck_assert_int_eq(nnc_lower_for_op(NNC_OP_MATMUL), NNC_LOWER_CUBLAS);
  ck_assert_int_eq(nnc_lower_for_op(NNC_OP_BIAS_ADD), NNC_LOWER_NNC);
  ck_assert_int_eq(nnc_lower_set("matmul=nnc", &st), 0);
  ck_assert_int_eq(nnc_lower_for_op(NNC_OP_MATMUL), NNC_LOWER_NNC);
  ck_assert_int_eq(nnc_lower_for_op(NNC_OP_CONV2D), NNC_LOWER_CUDNN);
  ck_assert_int_eq(nnc_lower_set("pool=cudnn", &st), -1);
  ck_assert_msg(strstr(st.msg, "unknown op kind 'pool'"), "%s", st.msg);
  ck_assert_int_eq(nnc_lower_set("conv=cublas", &st), -1);
  ck_assert_msg(strstr(st.msg, "conv cannot be lowered to cublas"), "%s", st.msg);
  ck_assert_int_eq(nnc_lower_set("matmul=mkl", &st), -1);
  ck_assert_msg(strstr(st.msg, "unknown library 'mkl'"), "%s", st.msg);
  ck_assert_int_eq(nnc_lower_set("conv", &st), -1);
  ck_assert_int_eq(nnc_lower_set("", &st), -1);
  /* A failed spec leaves the setting as it was. */
  ck_assert_int_eq(nnc_lower_for_op(NNC_OP_CONV2D), NNC_LOWER_CUDNN);
  nnc_lower_reset();
  ck_assert_int_eq(nnc_lower_for_op(NNC_OP_CONV2D), NNC_LOWER_NNC);
}
END_TEST

TCase *tcase_fuse(void) {
  TCase *tc = tcase_create("fuse");
  tcase_add_test(tc, conv_bias_relu);
  tcase_add_test(tc, dense_softmax_head);
  tcase_add_test(tc, shared_intermediate_stops_the_epilogue);
  tcase_add_test(tc, gradient_and_activation_gradient);
  tcase_add_test(tc, pool_gradient_chain);
  tcase_add_test(tc, pool_gradient_shared_dropout);
  tcase_add_test(tc, pool_gradient_read_twice);
  tcase_add_test(tc, optimizer_update_is_one_group);
  tcase_add_test(tc, pointwise_chain_cut_by_an_outside_reader);
  tcase_add_test(tc, malformed_group_is_an_error);
  tcase_add_test(tc, lowered_conv_anchors_nothing);
  tcase_add_test(tc, lowered_conv_with_lopsided_padding_keeps_its_epilogue);
  tcase_add_test(tc, lowered_matmul_anchors_no_grad_act);
  tcase_add_test(tc, lower_spec_parsing);
  return tc;
}
