/* nnc bench --predict: the figures a prediction rests on, taken from the
 * program (FLOPs, bytes, grid) and from ptxas (registers, shared memory),
 * the model's direction (the same FLOPs spread over more blocks go
 * faster, which split-K relies on), and the command line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/nvrtc.h"
#include "ir/text.h"
#include "runtime/cuda/cuda_predict.h"
#include "tests/codegen/harness.h"
#include "tests/codegen/suites.h"
#include "tests/testutil.h"

/* One matmul [m x k] x [k x n], predicted on h100: `kernels` kernels (2 when split). */
static nnc_graph *matmul(long long m, long long k, long long n, int kernels, nnc_step_prediction *p) {
  char text[512];
  snprintf(text, sizeof text,
           "graph {\n"
           "  %%0 = input() {name=\"a\"} : f32[%lld,%lld]\n"
           "  %%1 = input() {name=\"b\"} : f32[%lld,%lld]\n"
           "  %%2 = matmul(%%0, %%1) {trans_a=0, trans_b=0} : f32[%lld,%lld]\n"
           "  output \"output\" = %%2\n"
           "}\n",
           m, k, k, n, m, n);
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_parse(text, "in.ir", &st);
  ck_assert_msg(g, "%s", st.msg);
  const nnc_gpu_spec *gpu = nnc_gpu_spec_find("h100", &st);
  ck_assert_ptr_nonnull(gpu);
  ck_assert_msg(nnc_cuda_predict(nnc_test_options(), g, gpu, 0, p, &st) == 0, "%s", st.msg);
  ck_assert_int_eq(p->program.count, kernels);
  return g;
}

START_TEST(test_prediction_figures_of_a_gemm) {
  nnc_step_prediction p;
  nnc_graph *g = matmul(64, 96, 128, 1, &p);
  const nnc_kernel_prediction *kp = &p.kernels[0];
  const nnc_cuda_kernel *k = &p.program.kernels[0];
  ck_assert_double_eq(kp->flops, 2.0 * 64 * 96 * 128);
  ck_assert_double_eq(kp->bytes, 4.0 * (64 * 96 + 96 * 128 + 64 * 128));
  ck_assert_uint_eq(k->grid, 2); /* two 64 x 64 tiles */
  if (harness_nvrtc_ready()) {
    ck_assert_int_gt(kp->registers, 16);
    ck_assert_int_ge(kp->shared_bytes, 4 * (16 * 65 + 16 * 64)); /* the two staged slabs */
    ck_assert_int_eq(kp->spill_bytes, 0);
    ck_assert_int_eq(p.reported, 1);
  }
  ck_assert_int_ge(kp->blocks_per_sm, 1);
  const nnc_gpu_spec *gpu = nnc_gpu_spec_find("h100", &(nnc_status){0});
  ck_assert_double_ge(kp->seconds, gpu->graph_node_us * 1e-6);
  ck_assert_double_eq_tol(p.seconds, p.kernel_seconds + p.overhead_seconds, 1e-12);
  nnc_cuda_prediction_free(&p);
  nnc_graph_free(g);
}
END_TEST

/* The same 4.2 MFLOP as one 64 x 64 tile over K = 512 (too short to
 * split), and as 64 tiles over K = 8: the first leaves 131 of 132 SMs idle. */
START_TEST(test_prediction_rewards_parallel_blocks) {
  nnc_step_prediction one, many;
  nnc_graph *g1 = matmul(64, 500, 64, 1, &one), *g2 = matmul(512, 8, 500, 1, &many);
  ck_assert_double_eq(one.kernels[0].flops, many.kernels[0].flops);
  ck_assert_msg(one.kernels[0].seconds > 4 * many.kernels[0].seconds, "one block %g s, 64 blocks %g s",
                one.kernels[0].seconds, many.kernels[0].seconds);
  nnc_cuda_prediction_free(&one), nnc_cuda_prediction_free(&many);
  nnc_graph_free(g1), nnc_graph_free(g2);
}
END_TEST

/* One 64 x 64 tile over K = 4096 is split 16 ways: the first kernel does
 * the product's FLOPs on 16 blocks and writes 16 partial tiles, the second
 * adds them (15 adds an element) and reads them back. Unsplit, one block
 * would do 8 times the FLOPs and bytes of one tile over K = 500, which is
 * not split: the pair must be predicted at least 4 times faster than that. */
START_TEST(test_prediction_of_split_k) {
  nnc_step_prediction split, one;
  nnc_graph *g1 = matmul(64, 4096, 64, 2, &split), *g2 = matmul(64, 500, 64, 1, &one);
  const nnc_cuda_kernel *first = &split.program.kernels[0], *second = &split.program.kernels[1];
  ck_assert_uint_eq(first->grid, 16);
  ck_assert_int_eq(split.program.workspace, 16 * 64 * 64);
  ck_assert_double_eq(split.kernels[0].flops, 2.0 * 64 * 4096 * 64);
  ck_assert_double_eq(split.kernels[0].bytes, 4.0 * (64 * 4096 + 4096 * 64 + 16 * 64 * 64));
  ck_assert_double_eq(split.kernels[1].flops, 15.0 * 64 * 64);
  ck_assert_double_eq(split.kernels[1].bytes, 4.0 * (64 * 64 + 16 * 64 * 64));
  ck_assert_int_eq(second->work, 64 * 64);
  ck_assert_msg(4 * split.kernel_seconds < 8 * one.kernel_seconds, "split %g s, one block over K = 500 %g s",
                split.kernel_seconds, one.kernel_seconds);
  nnc_cuda_prediction_free(&split), nnc_cuda_prediction_free(&one);
  nnc_graph_free(g1), nnc_graph_free(g2);
}
END_TEST

START_TEST(test_bench_predict_on_the_command_line) {
  static const char *model =
      "local m = nn.Sequential { nn.Flatten { input_shape = { 6, 6, 1 } }, nn.Dense { 16, activation = 'relu' },\n"
      "  nn.Dense { 4, activation = 'softmax' } }\n"
      "m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy', metrics = { 'accuracy' } }\n"
      "m:fit(data.zeros { 64, 6, 6, 1 }, data.zeros({ 64 }, 'i32'), { epochs = 1 })\n";
  const char *path = nnc_test_write_temp("predict.lua", model);
  char args[1024], *out, *err;
  snprintf(args, sizeof args, "bench '%s' --backend cuda-emu --predict h200 --top 3", path);
  int rc = nnc_test_run_cli(args, &out, &err);
  ck_assert_msg(rc == 0, "%s%s", out, err);
  ck_assert_msg(strstr(out, "predicted on H200 SXM") && strstr(out, "nnc_") && strstr(out, " us") &&
                    strstr(out, "predicted epoch on H200 SXM: ") && strstr(out, "1407 train steps"),
                "%s", out);
  free(out), free(err);
  snprintf(args, sizeof args, "bench '%s' --backend cuda-emu --predict a100", path);
  rc = nnc_test_run_cli(args, &out, &err);
  ck_assert_int_ne(rc, 0);
  ck_assert_msg(strstr(err, "unknown GPU 'a100' (choose h100 or h200)"), "%s", err);
  free(out), free(err);
}
END_TEST

TCase *tcase_prediction(void) {
  TCase *tc = tcase_create("prediction");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_prediction_figures_of_a_gemm);
  tcase_add_test(tc, test_prediction_rewards_parallel_blocks);
  tcase_add_test(tc, test_prediction_of_split_k);
  tcase_add_test(tc, test_bench_predict_on_the_command_line);
  return tc;
}
