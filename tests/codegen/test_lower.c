/* --lower: library steps in place of generated kernels. Every op that some
 * op kind lowers (passes/lower.c's table) needs cases below
 * (test_every_lowered_op_has_a_case walks ir/ops.def). Each case builds the
 * one-op graph, runs it on the interpreter and on cuda-emu, whose library
 * steps call the emulated cuBLAS/cuDNN (runtime/cuda/cuda_lib_emu.c) through the
 * same lowering code as the GPU, and compares. Shapes are odd on purpose;
 * the convolutions cover same and valid padding and stride 2, and the
 * matmuls every transposition the train graph uses.
 *
 * A case marked `kept` has padding cuDNN cannot express (lopsided "same"):
 * it must stay a generated kernel, and agree all the same.
 *
 * With a GPU, the same cases run on the cuda backend with the real
 * libraries; without one that test says why it skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda.h"
#include "ir/op.h"
#include "ir/text.h"
#include "passes/lower.h"
#include "passes/pass.h"
#include "runtime/cuda/cuda_lib.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/cuda/cuda_lib_api.h"
#include "tests/codegen/harness.h"
#include "tests/codegen/suites.h"
#include "tests/testutil.h"

typedef struct lower_case {
  const char *what;
  nnc_op op;
  nnc_attrs attrs;
  int rank[2];
  int64_t shape[2][4];
  int kept; /* stays nnc's kernel */
} lower_case;

#define S(...)                                                                                                         \
  { __VA_ARGS__ }
static const lower_case cases[] = {
    {"matmul", NNC_OP_MATMUL, {.pad = 0}, {2, 2}, {S(33, 70), S(70, 131)}, 0},
    {"matmul trans_a (dW = x^T dy)", NNC_OP_MATMUL, {.trans_a = 1}, {2, 2}, {S(9, 5), S(9, 7)}, 0},
    {"matmul trans_b (dx = dy w^T)", NNC_OP_MATMUL, {.trans_b = 1}, {2, 2}, {S(5, 13), S(6, 13)}, 0},
    {"matmul trans_a trans_b", NNC_OP_MATMUL, {.trans_a = 1, .trans_b = 1}, {2, 2}, {S(7, 3), S(5, 7)}, 0},
    {"matmul rank 3", NNC_OP_MATMUL, {.pad = 0}, {3, 2}, {S(2, 3, 7), S(7, 4)}, 0},
    {"conv2d same 3x3",
     NNC_OP_CONV2D,
     {.stride = {1, 1}, .pad = NNC_PAD_SAME},
     {4, 4},
     {S(2, 9, 7, 3), S(3, 3, 3, 5)},
     0},
    {"conv2d valid stride 2, 3x2 kernel",
     NNC_OP_CONV2D,
     {.stride = {2, 2}, .pad = NNC_PAD_VALID},
     {4, 4},
     {S(2, 9, 8, 2), S(3, 2, 2, 4)},
     0},
    {"conv2d same stride 2, odd input",
     NNC_OP_CONV2D,
     {.stride = {2, 2}, .pad = NNC_PAD_SAME},
     {4, 4},
     {S(3, 7, 9, 2), S(3, 3, 2, 3)},
     0},
    {"conv2d same stride 2, even kernel (lopsided)",
     NNC_OP_CONV2D,
     {.stride = {2, 2}, .pad = NNC_PAD_SAME},
     {4, 4},
     {S(1, 7, 6, 2), S(4, 4, 2, 3)},
     1},
    {"conv2d_grad_input same 3x3",
     NNC_OP_CONV2D_GRAD_INPUT,
     {.stride = {1, 1}, .pad = NNC_PAD_SAME, .shape_rank = 3, .shape = {9, 7, 3}},
     {4, 4},
     {S(2, 9, 7, 5), S(3, 3, 3, 5)},
     0},
    {"conv2d_grad_input valid stride 2",
     NNC_OP_CONV2D_GRAD_INPUT,
     {.stride = {2, 2}, .pad = NNC_PAD_VALID, .shape_rank = 3, .shape = {9, 8, 2}},
     {4, 4},
     {S(2, 4, 4, 4), S(3, 2, 2, 4)},
     0},
    {"conv2d_grad_input same stride 2, odd input",
     NNC_OP_CONV2D_GRAD_INPUT,
     {.stride = {2, 2}, .pad = NNC_PAD_SAME, .shape_rank = 3, .shape = {7, 9, 2}},
     {4, 4},
     {S(3, 4, 5, 3), S(3, 3, 2, 3)},
     0},
    {"conv2d_grad_input same stride 2, even kernel (lopsided)",
     NNC_OP_CONV2D_GRAD_INPUT,
     {.stride = {2, 2}, .pad = NNC_PAD_SAME, .shape_rank = 3, .shape = {7, 6, 2}},
     {4, 4},
     {S(1, 4, 3, 3), S(4, 4, 2, 3)},
     1},
    {"conv2d_grad_kernel same 3x3",
     NNC_OP_CONV2D_GRAD_KERNEL,
     {.stride = {1, 1}, .pad = NNC_PAD_SAME, .shape_rank = 2, .shape = {3, 3}},
     {4, 4},
     {S(2, 9, 7, 3), S(2, 9, 7, 5)},
     0},
    {"conv2d_grad_kernel valid stride 2, 3x2 kernel",
     NNC_OP_CONV2D_GRAD_KERNEL,
     {.stride = {2, 2}, .pad = NNC_PAD_VALID, .shape_rank = 2, .shape = {3, 2}},
     {4, 4},
     {S(2, 9, 8, 2), S(2, 4, 4, 4)},
     0},
    {"conv2d_grad_kernel same stride 2, odd input",
     NNC_OP_CONV2D_GRAD_KERNEL,
     {.stride = {2, 2}, .pad = NNC_PAD_SAME, .shape_rank = 2, .shape = {3, 3}},
     {4, 4},
     {S(3, 7, 9, 2), S(3, 4, 5, 3)},
     0},
};
#undef S
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* Library results are sums taken in another order than the reference's. */
#define TOL 1e-5

/* Every kind lowered, as $NNC_LOWER says it to nnc_test_options(). */
static void lower_all(void) { setenv("NNC_LOWER", "conv=cudnn,matmul=cublas", 1); }

START_TEST(test_every_lowered_op_has_a_case) {
  lower_all();
  char missing[512] = "";
  for (int op = 0; op < NNC_OP_COUNT; op++) {
    if (nnc_lower_for_op(nnc_test_options(), (nnc_op)op) == NNC_LOWER_NNC) continue;
    int found = 0;
    for (int i = 0; i < NCASES; i++) found |= cases[i].op == (nnc_op)op && !cases[i].kept;
    if (!found) snprintf(missing + strlen(missing), sizeof missing - strlen(missing), " %s", nnc_ops[op].name);
  }
  unsetenv("NNC_LOWER");
  ck_assert_msg(!missing[0], "lowered ops with no case in tests/codegen/test_lower.c:%s", missing);
}
END_TEST

/* The case's graph: an input per operand, the op, an output. */
static nnc_graph *case_graph(const lower_case *c, void **data, int32_t *result) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  int32_t ids[2];
  for (int i = 0; i < 2; i++) {
    nnc_node_spec spec = {.op = NNC_OP_INPUT, .name = i ? "b" : "a", .dtype = NNC_F32, .rank = c->rank[i]};
    memcpy(spec.shape, c->shape[i], sizeof c->shape[i]);
    ids[i] = nnc_graph_add(g, &spec, &st);
    ck_assert_msg(ids[i] >= 0, "%s: %s", c->what, st.msg);
    int64_t count = nnc_node_numel(&g->nodes[ids[i]]);
    data[ids[i]] = malloc((size_t)count * sizeof(float));
    harness_fill(data[ids[i]], count, c->shape[i][c->rank[i] - 1], DATA_RANDOM, (uint32_t)(300 + i));
  }
  *result = nnc_graph_op(g, c->op, ids, 2, &c->attrs, &st);
  ck_assert_msg(*result >= 0, "%s: %s", c->what, st.msg);
  ck_assert_int_eq(nnc_graph_add_output(g, "output", *result, &st), 0);
  return g;
}

/* Runs case i on backend b (lowered, GEMMs in `precision`) and on interp,
 * on the operands or (rounded) on the operands rounded to TF32; returns the
 * error. */
static double case_error(const lower_case *c, const nnc_backend *b, const char *precision, int rounded) {
  void *data[4] = {0}, *ref[4] = {0};
  int32_t result;
  nnc_graph *g = case_graph(c, data, &result);
  for (int32_t id = 0; id < 4; id++) {
    if (!data[id] || !rounded) continue;
    int64_t count = nnc_node_numel(&g->nodes[id]);
    float *r = malloc((size_t)count * sizeof *r);
    for (int64_t i = 0; i < count; i++) r[i] = harness_tf32(((const float *)data[id])[i]);
    ref[id] = r;
  }
  nnc_run_opts opts = {.seed = 77, .step = 1};
  float *want, *got;
  harness_run(&nnc_backend_interp, g, rounded ? ref : data, &opts, &result, 1, &want);
  lower_all();
  harness_set_precision(precision);
  /* One step, a library step unless the case keeps nnc's kernel. */
  nnc_status st = {0};
  nnc_cuda_program p;
  ck_assert_msg(nnc_cuda_generate(nnc_test_options(), g, &p, &st) == 0, "%s", st.msg);
  ck_assert_int_eq(p.count, 1);
  ck_assert_msg(p.kernels[0].lib == (c->kept ? NNC_LOWER_NNC : nnc_lower_for_op(nnc_test_options(), c->op)), "%s: step %s", c->what,
                p.kernels[0].name);
  ck_assert_msg(c->kept ? p.kernels[0].source != NULL : p.kernels[0].source == NULL && p.kernels[0].call != NULL, "%s",
                c->what);
  /* A library step multiplies as the generated GEMM would, and says so. */
  int tf32 = !strcmp(precision, "tf32");
  if (!c->kept) {
    ck_assert_msg(p.kernels[0].tf32 == tf32, "%s: %s step under --precision %s", c->what,
                  p.kernels[0].tf32 ? "a TF32" : "an FP32", precision);
    ck_assert_msg(strstr(p.kernels[0].call, tf32 ? "TENSOR_OP_MATH (TF32" : "_MATH (float)"), "%s", p.kernels[0].call);
  }
  nnc_cuda_program_free(&p);
  harness_run(b, g, data, &opts, &result, 1, &got);
  unsetenv("NNC_LOWER");
  harness_set_precision("fp32");
  double err = harness_rel_error(got, want, nnc_node_numel(&g->nodes[result]), 1e-30);
  free(want), free(got);
  for (int i = 0; i < 4; i++) free(data[i]), free(ref[i]);
  nnc_graph_free(g);
  return err;
}

START_TEST(test_lowered_op_on_cuda_emu) {
  const lower_case *c = &cases[_i];
  double err = case_error(c, &nnc_backend_cuda_emu, "fp32", 0);
  ck_assert_msg(err <= TOL, "%s: cuda-emu with --lower differs from interp by %.3g (relative), tolerance %g", c->what,
                err, TOL);
}
END_TEST

/* --precision tf32 through the libraries: the emulated cuBLAS/cuDNN round
 * their inputs to TF32 as the generated TF32 GEMMs do, so the result is the
 * interpreter's on rounded operands (to float tolerance), and it is not
 * the float result: it differs from it by more than the float tolerance,
 * within what TF32 allows. */
START_TEST(test_lowered_op_tf32_on_cuda_emu) {
  const lower_case *c = &cases[_i];
  if (c->kept) return; /* nnc's own kernel: tests/codegen/test_ops.c */
  double exact = case_error(c, &nnc_backend_cuda_emu, "tf32", 1);
  ck_assert_msg(exact <= TOL, "%s: TF32 library step differs from interp on TF32 operands by %.3g, tolerance %g",
                c->what, exact, TOL);
  double err = case_error(c, &nnc_backend_cuda_emu, "tf32", 0);
  ck_assert_msg(err > TOL && err <= HARNESS_TF32_TOLERANCE,
                "%s: TF32 library step differs from interp by %.3g: not in (%g, %g]", c->what, err, TOL,
                HARNESS_TF32_TOLERANCE);
}
END_TEST

/* A graph fused for a backend without lowerings still generates with them:
 * the lowered anchor becomes a library step and its epilogue members a
 * kernel of their own, reading the library's result. */
START_TEST(test_lowered_anchor_inside_a_fused_group) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_parse("graph {\n"
                                 "  %0 = input() {name=\"x\"} : f32[2,7,7,3]\n"
                                 "  %1 = input() {name=\"k\"} : f32[3,3,3,4]\n"
                                 "  %2 = conv2d(%0, %1) {stride=[1,1], pad=same} : f32[2,7,7,4]\n"
                                 "  %3 = input() {name=\"b\"} : f32[4]\n"
                                 "  %4 = bias_add(%2, %3) : f32[2,7,7,4]\n"
                                 "  %5 = relu(%4) : f32[2,7,7,4]\n"
                                 "  output \"output\" = %5\n"
                                 "}\n",
                                 "in.ir", &st);
  ck_assert_msg(g, "%s", st.msg);
  nnc_pass_ctx ctx = {.batch = NNC_DIM_ANY};
  const nnc_pass *passes[] = {&nnc_pass_fuse};
  ck_assert_msg(nnc_pass_run(&g, passes, 1, &ctx, NULL, &st) == 0, "%s", st.msg);
  ck_assert_int_eq(g->ngroups, 1);
  void *data[8] = {0};
  for (int32_t id = 0; id < g->nnodes; id++) {
    if (g->nodes[id].op != NNC_OP_INPUT) continue;
    int64_t count = nnc_node_numel(&g->nodes[id]);
    data[id] = malloc((size_t)count * sizeof(float));
    harness_fill(data[id], count, g->nodes[id].shape[g->nodes[id].rank - 1], DATA_RANDOM, (uint32_t)(400 + id));
  }
  int32_t out = g->outputs[0].node;
  float *want, *got;
  harness_run(&nnc_backend_interp, g, data, NULL, &out, 1, &want);
  lower_all();
  nnc_cuda_program p;
  ck_assert_msg(nnc_cuda_generate(nnc_test_options(), g, &p, &st) == 0, "%s", st.msg);
  ck_assert_int_eq(p.count, 2);
  ck_assert_int_eq(p.kernels[0].lib, NNC_LOWER_CUDNN);
  ck_assert_msg(strstr(p.kernels[1].name, "_bias_add_relu"), "%s", p.kernels[1].name);
  ck_assert_int_eq(nnc_cuda_program_launches(&p), 3); /* filter transpose, convolution, epilogue */
  nnc_cuda_program_free(&p);
  harness_run(&nnc_backend_cuda_emu, g, data, NULL, &out, 1, &got);
  unsetenv("NNC_LOWER");
  double err = harness_rel_error(got, want, nnc_node_numel(&g->nodes[out]), 1e-30);
  ck_assert_msg(err <= TOL, "differs from interp by %.3g", err);
  free(want), free(got);
  for (int i = 0; i < 8; i++) free(data[i]);
  nnc_graph_free(g);
}
END_TEST

/* The emulation keeps the libraries' conventions: column-major with leading
 * dimensions, alpha and beta, and the checks that make a bad call fail. */
START_TEST(test_emulated_library_conventions) {
  const nnc_cuda_lib_api *api = &nnc_cuda_lib_emulated;
  cublas_handle h;
  ck_assert_int_eq(api->cublasCreate_v2(&h), 0);
  /* Column-major A (2x3, ld 3: a padding row), B (3x2): C = 2 A B + 0.5 C. */
  const float A[] = {1, 2, -9, 3, 4, -9, 5, 6, -9}, B[] = {1, 0, 1, 2, 1, 0};
  float C[] = {10, 20, 30, 40};
  const float alpha = 2, beta = 0.5f;
  ck_assert_int_eq(api->cublasSgemm_v2(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &alpha, A, 3, B, 3, &beta, C, 2), 0);
  /* A = [[1, 3, 5], [2, 4, 6]], B = [[1, 2], [0, 1], [1, 0]]: A B = [[6, 5], [8, 8]], by columns 6, 8, 5, 8. */
  const float want[] = {2 * 6 + 5, 2 * 8 + 10, 2 * 5 + 15, 2 * 8 + 20};
  for (int i = 0; i < 4; i++) ck_assert_float_eq(C[i], want[i]);
  ck_assert_int_eq(api->cublasSgemm_v2(h, CUBLAS_OP_N, CUBLAS_OP_N, 2, 2, 3, &alpha, A, 1, B, 3, &beta, C, 2),
                   CUBLAS_STATUS_INVALID_VALUE);
  ck_assert_str_eq(api->cublasGetStatusString(CUBLAS_STATUS_INVALID_VALUE), "CUBLAS_STATUS_INVALID_VALUE");
  api->cublasDestroy_v2(h);
  /* An output descriptor of the wrong size is refused, as cuDNN refuses it. */
  cudnn_handle d;
  cudnn_tensor_desc x, y;
  cudnn_filter_desc w;
  cudnn_conv_desc conv;
  ck_assert_int_eq(api->cudnnCreate(&d), 0);
  api->cudnnCreateTensorDescriptor(&x), api->cudnnCreateTensorDescriptor(&y);
  api->cudnnCreateFilterDescriptor(&w), api->cudnnCreateConvolutionDescriptor(&conv);
  ck_assert_int_eq(api->cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 2, 5, 5), 0);
  ck_assert_int_eq(api->cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 3, 4, 4), 0);
  ck_assert_int_eq(api->cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NHWC, 3, 2, 3, 3), 0);
  ck_assert_int_eq(
      api->cudnnSetConvolution2dDescriptor(conv, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT), 0);
  size_t bytes;
  ck_assert_int_eq(
      api->cudnnGetConvolutionForwardWorkspaceSize(d, x, w, conv, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, &bytes),
      CUDNN_STATUS_BAD_PARAM); /* valid 3x3 over 5x5 gives 3x3, not 4x4 */
  ck_assert_int_eq(api->cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NHWC, CUDNN_DATA_FLOAT, 1, 3, 3, 3), 0);
  ck_assert_int_eq(
      api->cudnnGetConvolutionForwardWorkspaceSize(d, x, w, conv, y, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM, &bytes),
      0);
  ck_assert_int_eq(api->cudnnSetTensor4dDescriptor(y, 0 /* NCHW */, CUDNN_DATA_FLOAT, 1, 3, 3, 3),
                   CUDNN_STATUS_NOT_SUPPORTED);
  api->cudnnDestroyTensorDescriptor(x), api->cudnnDestroyTensorDescriptor(y);
  api->cudnnDestroyFilterDescriptor(w), api->cudnnDestroyConvolutionDescriptor(conv);
  api->cudnnDestroy(d);
}
END_TEST

/* The real cuBLAS and cuDNN on the cuda backend, where a GPU is. */
START_TEST(test_real_libraries_on_gpu) {
  nnc_graph *empty = nnc_graph_new();
  nnc_status why = {0};
  nnc_exec *e = nnc_backend_cuda.prepare(empty, nnc_test_options(), &why);
  if (e) nnc_backend_cuda.release(e);
  nnc_graph_free(empty);
  char reason[512];
  if (!e) {
    printf("codegen: skipping the real cuBLAS/cuDNN test: %s\n", why.msg);
    return;
  }
  if (!nnc_cuda_lib_available(nnc_test_options(), reason, sizeof reason)) {
    printf("codegen: skipping the real cuBLAS/cuDNN test: %s\n", reason);
    return;
  }
  harness_set_precision(NULL);
  int tf32_gpu = nnc_cuda_backend_tf32(&nnc_backend_cuda, nnc_test_options());
  harness_set_precision("fp32");
  for (int i = 0; i < NCASES; i++) {
    double err = case_error(&cases[i], &nnc_backend_cuda, "fp32", 0);
    ck_assert_msg(err <= 1e-4, "%s: cuda with --lower differs from interp by %.3g (relative)", cases[i].what, err);
    /* cuBLAS and cuDNN may round to TF32 otherwise than cvt.rna: only within what TF32 allows. */
    if (!tf32_gpu) continue;
    err = case_error(&cases[i], &nnc_backend_cuda, "tf32", 0);
    ck_assert_msg(err <= HARNESS_TF32_TOLERANCE, "%s: cuda with --lower, TF32, differs from interp by %.3g (relative)",
                  cases[i].what, err);
  }
}
END_TEST

TCase *tcase_lowering(void) {
  TCase *tc = tcase_create("lowering");
  /* The subject is the backend's plumbing, against float tolerances: TF32
   * GEMMs are tested in tests/codegen/test_ops.c and test_fused.c. */
  tcase_add_checked_fixture(tc, harness_fp32_gemms, harness_default_precision);
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_every_lowered_op_has_a_case);
  tcase_add_loop_test(tc, test_lowered_op_on_cuda_emu, 0, NCASES);
  tcase_add_loop_test(tc, test_lowered_op_tf32_on_cuda_emu, 0, NCASES);
  tcase_add_test(tc, test_lowered_anchor_inside_a_fused_group);
  tcase_add_test(tc, test_emulated_library_conventions);
  tcase_add_test(tc, test_real_libraries_on_gpu);
  return tc;
}
