/* The cuda backends on a real machine's rough edges, shown on the host:
 * CUDA libraries found where installs put them (the toolkit, NVIDIA's pip
 * wheels) with the libraries they need beside them; the compiler probed when
 * the backend is chosen; and, through a copy of cuda-emu's device table with
 * a failure put in, a step that cannot be captured as a graph running launch
 * by launch with the same results, and a failing launch or wait named with
 * its kernel. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/cuda.h"
#include "codegen/dl.h"
#include "ir/text.h"
#include "passes/lower.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/cuda/cuda_lib.h"
#include "runtime/cuda/cuda_lib_api.h"
#include "tests/codegen/harness.h"
#include "tests/codegen/suites.h"
#include "tests/testutil.h"

/* ---- Finding libraries -------------------------------------------------------- */

static void sh(const char *fmt, const char *a, const char *b) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd, fmt, a, b, a, b);
  ck_assert_msg(system(cmd) == 0, "%s", cmd);
}

/* In dir: libnncdepN.so.1, and libnncfakeN.so.1, which needs it by soname
 * and has no run path to find it: only loading the companion first lets it
 * load, as with cuBLAS and cublasLt in the toolkit's lib64. Each test has
 * its own N: a companion, once loaded, stays in the process. */
static void make_fake_libraries(const char *dir, int n) {
  char cmd[4096];
  snprintf(cmd, sizeof cmd,
           "mkdir -p %s && cd %s && printf 'int nnc_dep(void) { return 40; }\\n' > dep.c && "
           "printf 'int nnc_dep(void); int nnc_fake_answer(void) { return nnc_dep() + 2; }\\n' > fake.c && "
           "cc -shared -fPIC -o libnncdep%d.so.1 -Wl,-soname,libnncdep%d.so.1 dep.c && "
           "cc -shared -fPIC -o libnncfake%d.so.1 fake.c -L. -l:libnncdep%d.so.1 && rm dep.c fake.c",
           dir, dir, n, n, n, n);
  ck_assert_msg(system(cmd) == 0, "%s", cmd);
}

static char *make_root(void) {
  char *root = strdup("/tmp/nnc-dl-test-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(root));
  return root;
}

static void remove_root(char *root) {
  sh("rm -rf %s%.0s", root, "");
  free(root);
}

static const char *const fake[] = {"libnncfake1.so.1"}, *const dep[] = {"libnncdep1.so.1"};
static const char *const fake2[] = {"libnncfake2.so.1"}, *const dep2[] = {"libnncdep2.so.1"};

static void assert_answers(void *h) {
  ck_assert_ptr_nonnull(h);
  int (*answer)(void);
  void *sym = dlsym(h, "nnc_fake_answer");
  ck_assert_ptr_nonnull(sym);
  memcpy(&answer, &sym, sizeof sym);
  ck_assert_int_eq(answer(), 42);
  dlclose(h);
}

START_TEST(test_library_in_a_pip_wheel_folder) {
  char *root = make_root(), dir[512], tried[2048];
  snprintf(dir, sizeof dir, "%s/lib/python3.11/site-packages/nvidia/fake/lib", root);
  unsetenv("VIRTUAL_ENV");
  ck_assert_ptr_null(nnc_dl_open_cuda(nnc_test_options(), fake, 1, dep, 1, tried, sizeof tried));
  make_fake_libraries(dir, 1);
  ck_assert_ptr_null(nnc_dl_open_cuda(nnc_test_options(), fake, 1, dep, 1, tried, sizeof tried));
  ck_assert_msg(strstr(tried, "the loader's path") && strstr(tried, "/usr/local/cuda/lib64"), "%s", tried);
  setenv("VIRTUAL_ENV", root, 1);
  assert_answers(nnc_dl_open_cuda(nnc_test_options(), fake, 1, dep, 1, tried, sizeof tried));
  unsetenv("VIRTUAL_ENV");
  remove_root(root);
}
END_TEST

START_TEST(test_library_in_cuda_home_needs_its_companion) {
  char *root = make_root(), dir[512], tried[2048];
  snprintf(dir, sizeof dir, "%s/lib64", root);
  make_fake_libraries(dir, 2);
  setenv("CUDA_HOME", root, 1);
  /* Without the companion the loader cannot resolve libnncdep2.so.1. */
  ck_assert_ptr_null(nnc_dl_open_cuda(nnc_test_options(), fake2, 1, NULL, 0, tried, sizeof tried));
  ck_assert_msg(strstr(tried, dir), "%s does not say it looked in %s", tried, dir);
  assert_answers(nnc_dl_open_cuda(nnc_test_options(), fake2, 1, dep2, 1, tried, sizeof tried));
  unsetenv("CUDA_HOME");
  remove_root(root);
}
END_TEST

/* ---- Chosen, or refused at once ------------------------------------------------ */

START_TEST(test_emu_without_a_compiler_is_refused_when_chosen) {
  const char *old = getenv("NNC_CC");
  char *saved = old ? strdup(old) : NULL;
  setenv("NNC_CC", "/nonexistent/cc", 1);
  char *text = NULL;
  size_t size = 0;
  FILE *note = open_memstream(&text, &size);
  nnc_status st = {0};
  const nnc_backend *b = nnc_backend_select("cuda-emu", nnc_test_options(), note, &st);
  fclose(note);
  if (saved) setenv("NNC_CC", saved, 1);
  else unsetenv("NNC_CC");
  free(saved);
  ck_assert_ptr_nonnull(b);
  ck_assert_str_ne(b->name, "cuda-emu");
  ck_assert_msg(strstr(text, "cuda-emu cannot run here") && strstr(text, "/nonexistent/cc"), "%s", text);
  free(text);
  ck_assert_str_eq(nnc_backend_select("cuda-emu", nnc_test_options(), NULL, &st)->name, "cuda-emu");
}
END_TEST

/* ---- Failures put into the device table ----------------------------------------- */

static nnc_cuda_device faulty;
static int captures_refused, launches, fail_at_launch, fail_sync;

static int refuse_capture(nnc_cuda_stream *s, nnc_cuda_capture **g, nnc_status *st) {
  nnc_status ignore = {0};
  nnc_cuda_capture *partial = NULL;
  nnc_cuda_host_device.end_capture(s, &partial, &ignore); /* leave the stream as the driver would */
  nnc_cuda_host_device.graph_destroy(partial);
  *g = NULL;
  captures_refused++;
  return nnc_fail(st, "CUDA: cuStreamEndCapture failed: operation not permitted when stream is capturing (900)");
}

static int counted_launch(void *fn, const nnc_cuda_kernel *k, void **args, nnc_cuda_stream *s, nnc_status *st) {
  if (++launches == fail_at_launch) return nnc_fail(st, "CUDA: cuLaunchKernel failed: too many resources requested for launch (701)");
  return nnc_cuda_host_device.launch(fn, k, args, s, st);
}

static int failing_sync(nnc_cuda_stream *s, nnc_status *st) {
  if (fail_sync) return nnc_fail(st, "CUDA: cuStreamSynchronize failed: an illegal memory access was encountered (700)");
  return nnc_cuda_host_device.sync(s, st);
}

static void use_faulty_device(void) {
  faulty = nnc_cuda_host_device;
  faulty.end_capture = refuse_capture;
  faulty.launch = counted_launch;
  faulty.sync = failing_sync;
  captures_refused = launches = fail_at_launch = fail_sync = 0;
  nnc_cuda_emu_device = &faulty;
}

static nnc_graph *small_graph(void **data) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_parse("graph {\n"
                                 "  %0 = input() {name=\"x\"} : f32[5,6]\n"
                                 "  %1 = input() {name=\"w\"} : f32[6,3]\n"
                                 "  %2 = matmul(%0, %1) {trans_a=0, trans_b=0} : f32[5,3]\n"
                                 "  %3 = relu(%2) : f32[5,3]\n"
                                 "  %4 = softmax(%3) : f32[5,3]\n"
                                 "  output \"output\" = %4\n"
                                 "}\n",
                                 "in.ir", &st);
  ck_assert_msg(g, "%s", st.msg);
  for (int32_t id = 0; id < 2; id++) {
    data[id] = malloc((size_t)nnc_node_numel(&g->nodes[id]) * sizeof(float));
    harness_fill(data[id], nnc_node_numel(&g->nodes[id]), g->nodes[id].shape[1], DATA_RANDOM, (uint32_t)(60 + id));
  }
  return g;
}

START_TEST(test_refused_capture_runs_launch_by_launch) {
  void *data[2];
  nnc_graph *g = small_graph(data);
  int32_t out = g->outputs[0].node;
  float *want;
  harness_run(&nnc_backend_interp, g, data, NULL, &out, 1, &want);
  use_faulty_device();
  nnc_status st = {0};
  nnc_exec *e = nnc_backend_cuda_emu.prepare(g, nnc_test_options(), &st);
  ck_assert_msg(e, "%s", st.msg);
  for (int run = 0; run < 3; run++) {
    ck_assert_msg(nnc_backend_cuda_emu.run(e, data, NULL, &st) == 0, "run %d: %s", run, st.msg);
    const float *got = nnc_backend_cuda_emu.value(e, out);
    ck_assert_ptr_nonnull(got);
    ck_assert_double_le(harness_rel_error(got, want, nnc_node_numel(&g->nodes[out]), 1e-30), 1e-6);
  }
  ck_assert_int_eq(captures_refused, 1); /* tried once, at the second run, then not again */
  /* Three direct runs, and the capture's launches, recorded and dropped. */
  ck_assert_int_eq(launches, 4 * nnc_backend_cuda_emu.launches(e));
  nnc_backend_cuda_emu.release(e);
  nnc_cuda_emu_device = &nnc_cuda_host_device;
  free(want), free(data[0]), free(data[1]), nnc_graph_free(g);
}
END_TEST

/* The message names the failing kernel (its name, launch and node), and the
 * driver's own words. */
static void assert_names_kernel(int fail_launch, int sync, const char *words) {
  void *data[2];
  nnc_graph *g = small_graph(data);
  nnc_cuda_program p;
  nnc_status st = {0};
  ck_assert_msg(nnc_cuda_generate(nnc_test_options(), g, &p, &st) == 0, "%s", st.msg);
  ck_assert_int_ge(p.count, 2);
  const char *expect = p.kernels[sync ? p.count - 1 : fail_launch - 1].name;
  use_faulty_device();
  fail_at_launch = fail_launch, fail_sync = sync;
  nnc_exec *e = nnc_backend_cuda_emu.prepare(g, nnc_test_options(), &st);
  ck_assert_msg(e, "%s", st.msg);
  ck_assert_int_eq(nnc_backend_cuda_emu.run(e, data, NULL, &st), -1);
  ck_assert_msg(strstr(st.msg, expect) && strstr(st.msg, words) && strstr(st.msg, "<<<"),
                "'%s' does not name kernel %s and say '%s'", st.msg, expect, words);
  fail_sync = 0;
  nnc_backend_cuda_emu.release(e);
  nnc_cuda_emu_device = &nnc_cuda_host_device;
  nnc_cuda_program_free(&p);
  free(data[0]), free(data[1]), nnc_graph_free(g);
}

START_TEST(test_failed_launch_names_its_kernel) { assert_names_kernel(2, 0, "too many resources"); }
END_TEST

START_TEST(test_failed_wait_names_the_last_kernel) { assert_names_kernel(0, 1, "illegal memory access"); }
END_TEST

/* ---- cuDNN's algorithms: heuristics, then fallbacks --------------------------------- */

static nnc_graph *conv_graph(void **data) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_parse(
      "graph {\n"
      "  %0 = input() {name=\"x\"} : f32[2,7,7,3]\n"
      "  %1 = input() {name=\"k\"} : f32[3,3,3,4]\n"
      "  %2 = input() {name=\"dy\"} : f32[2,5,5,4]\n"
      "  %3 = conv2d(%0, %1) {stride=[1,1], pad=valid} : f32[2,5,5,4]\n"
      "  %4 = conv2d_grad_input(%2, %1) {stride=[1,1], pad=valid, shape=[7,7,3]} : f32[2,7,7,3]\n"
      "  %5 = conv2d_grad_kernel(%0, %2) {stride=[1,1], pad=valid, shape=[3,3]} : f32[3,3,3,4]\n"
      "  output \"y\" = %3\n"
      "  output \"dx\" = %4\n"
      "  output \"dk\" = %5\n"
      "}\n",
      "in.ir", &st);
  ck_assert_msg(g, "%s", st.msg);
  for (int32_t id = 0; id < 3; id++) {
    int64_t count = nnc_node_numel(&g->nodes[id]);
    data[id] = malloc((size_t)count * sizeof(float));
    harness_fill(data[id], count, g->nodes[id].shape[3], DATA_RANDOM, (uint32_t)(70 + id));
  }
  setenv("NNC_LOWER", "conv=cudnn,matmul=cublas", 1); /* read by nnc_test_options() */
  return g;
}

/* The algorithm each convolution step uses, by op. */
static void algorithms(const nnc_graph *g, int *fwd, int *data, int *filter) {
  nnc_cuda_program p;
  nnc_status st = {0};
  ck_assert_msg(nnc_cuda_generate(nnc_test_options(), g, &p, &st) == 0, "%s", st.msg);
  nnc_cuda_lib *l = nnc_cuda_lib_open(nnc_test_options(), g, &p, 1, NULL, NULL, &st);
  ck_assert_msg(l, "%s", st.msg);
  for (int k = 0; k < p.count; k++) {
    if (p.kernels[k].lib != NNC_LOWER_CUDNN) continue;
    nnc_op op = g->nodes[p.kernels[k].nodes[0]].op;
    int *into = op == NNC_OP_CONV2D ? fwd : op == NNC_OP_CONV2D_GRAD_INPUT ? data : filter;
    *into = nnc_cuda_lib_algorithm(l, k);
  }
  nnc_cuda_lib_close(l);
  nnc_cuda_program_free(&p);
}

static nnc_cuda_lib_api faulty_lib;
static int refusals;

static cudnn_status no_heuristics(cudnn_handle h, const cudnn_tensor_desc x, const cudnn_filter_desc w,
                                  const cudnn_conv_desc c, const cudnn_tensor_desc y, int requested, int *returned,
                                  cudnn_algo_perf *perf) {
  (void)h, (void)x, (void)w, (void)c, (void)y, (void)requested, (void)perf;
  *returned = 0;
  return CUDNN_STATUS_NOT_SUPPORTED;
}

/* Offers PRECOMP_GEMM (workspace and all) and refuses to run it, as cuDNN
 * may on a GPU its heuristics misjudge. */
static cudnn_status refuse_precomp(cudnn_handle h, const void *alpha, const cudnn_tensor_desc xd, const void *x,
                                   const cudnn_filter_desc wd, const void *w, const cudnn_conv_desc cd, int algo,
                                   void *ws, size_t ws_bytes, const void *beta, const cudnn_tensor_desc yd, void *y) {
  if (algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM) return refusals++, CUDNN_STATUS_NOT_SUPPORTED;
  return nnc_cuda_lib_emulated.cudnnConvolutionForward(h, alpha, xd, x, wd, w, cd, algo, ws, ws_bytes, beta, yd, y);
}

START_TEST(test_cudnn_algorithms_from_heuristics_then_fixed) {
  void *data[3];
  nnc_graph *g = conv_graph(data);
  int fwd = -1, bwd = -1, filter = -1;
  /* The heuristics' first deterministic FMA candidate: forward PRECOMP_GEMM
   * (the fixed chain starts at IMPLICIT_GEMM); backward ALGO_1, the
   * non-deterministic ALGO_0 (and filter ALGO_3) passed over. */
  algorithms(g, &fwd, &bwd, &filter);
  ck_assert_int_eq(fwd, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM);
  ck_assert_int_eq(bwd, CUDNN_CONVOLUTION_BWD_DATA_ALGO_1);
  ck_assert_int_eq(filter, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1);
  faulty_lib = nnc_cuda_lib_emulated;
  faulty_lib.cudnnGetConvolutionForwardAlgorithm_v7 = no_heuristics;
  nnc_cuda_lib_emulation = &faulty_lib;
  algorithms(g, &fwd, &bwd, &filter);
  nnc_cuda_lib_emulation = &nnc_cuda_lib_emulated;
  ck_assert_int_eq(fwd, CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM);
  unsetenv("NNC_LOWER");
  for (int i = 0; i < 3; i++) free(data[i]);
  nnc_graph_free(g);
}
END_TEST

START_TEST(test_cudnn_refusal_at_run_time_moves_to_the_next_algorithm) {
  void *data[3];
  nnc_graph *g = conv_graph(data);
  int32_t outs[3] = {g->outputs[0].node, g->outputs[1].node, g->outputs[2].node};
  float *want[3];
  unsetenv("NNC_LOWER");
  harness_run(&nnc_backend_interp, g, data, NULL, outs, 3, want);
  setenv("NNC_LOWER", "conv=cudnn,matmul=cublas", 1); /* read by nnc_test_options() */
  faulty_lib = nnc_cuda_lib_emulated;
  faulty_lib.cudnnConvolutionForward = refuse_precomp;
  nnc_cuda_lib_emulation = &faulty_lib;
  refusals = 0;
  nnc_status st = {0};
  nnc_exec *e = nnc_backend_cuda_emu.prepare(g, nnc_test_options(), &st);
  ck_assert_msg(e, "%s", st.msg);
  for (int run = 0; run < 2; run++) {
    ck_assert_msg(nnc_backend_cuda_emu.run(e, data, NULL, &st) == 0, "run %d: %s", run, st.msg);
    for (int i = 0; i < 3; i++) {
      const float *v = nnc_backend_cuda_emu.value(e, outs[i]);
      ck_assert_ptr_nonnull(v);
      double err = harness_rel_error(v, want[i], nnc_node_numel(&g->nodes[outs[i]]), 1e-30);
      ck_assert_msg(err <= 1e-5, "run %d, output %d differs from interp by %g", run, i, err);
    }
  }
  ck_assert_int_eq(refusals, 1); /* refused once, then the next algorithm for good */
  nnc_backend_cuda_emu.release(e);
  nnc_cuda_lib_emulation = &nnc_cuda_lib_emulated;
  unsetenv("NNC_LOWER");
  for (int i = 0; i < 3; i++) free(data[i]), free(want[i]);
  nnc_graph_free(g);
}
END_TEST

TCase *tcase_robustness(void) {
  TCase *tc = tcase_create("robustness");
  /* The subject is the backend's plumbing, against float tolerances: TF32
   * GEMMs are tested in tests/codegen/test_ops.c and test_fused.c. */
  tcase_add_checked_fixture(tc, harness_fp32_gemms, harness_default_precision);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_library_in_a_pip_wheel_folder);
  tcase_add_test(tc, test_library_in_cuda_home_needs_its_companion);
  tcase_add_test(tc, test_emu_without_a_compiler_is_refused_when_chosen);
  tcase_add_test(tc, test_refused_capture_runs_launch_by_launch);
  tcase_add_test(tc, test_failed_launch_names_its_kernel);
  tcase_add_test(tc, test_failed_wait_names_the_last_kernel);
  tcase_add_test(tc, test_cudnn_algorithms_from_heuristics_then_fixed);
  tcase_add_test(tc, test_cudnn_refusal_at_run_time_moves_to_the_next_algorithm);
  return tc;
}
