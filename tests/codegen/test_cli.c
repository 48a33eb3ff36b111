/* The CUDA paths through the command line: nnc check against interp,
 * --dump-kernels, --arch, --precision, and the one-line fallback when the cuda backend
 * has no driver or GPU (on a machine with a GPU, cuda itself is checked). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/codegen/suites.h"
#include "tests/testutil.h"

/* A small conv net with dropout; nnc check trains it on synthetic batches,
 * so the fit below never runs. */
static const char *model =
    "local m = nn.Sequential {\n"
    "  nn.Conv2D { 4, 3, padding = 'same', activation = 'relu', input_shape = { 8, 8, 1 } },\n"
    "  nn.MaxPool2D { 2 }, nn.Flatten(), nn.Dense { 12, activation = 'tanh' }, nn.Dropout(0.3),\n"
    "  nn.Dense { 5, activation = 'softmax' } }\n"
    "m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy', metrics = { 'accuracy' } }\n"
    "m:fit(data.zeros { 64, 8, 8, 1 }, data.zeros({ 64 }, 'i32'), { epochs = 1 })\n";

static int run_check(const char *extra, char **out, char **err) {
  const char *path = nnc_test_write_temp("check.lua", model);
  char args[1024];
  snprintf(args, sizeof args, "check '%s' %s", path, extra);
  return nnc_test_run_cli(args, out, err);
}

/* The last line of text, in a static buffer. */
static const char *last_line(const char *text) {
  static char line[512];
  size_t len = strlen(text);
  while (len && text[len - 1] == '\n') len--;
  size_t start = len;
  while (start && text[start - 1] != '\n') start--;
  snprintf(line, sizeof line, "%.*s", (int)(len - start), text + start);
  return line;
}

/* nnc check on cuda-emu with float GEMMs (--precision fp32) agrees with
 * interp to float rounding; by default cuda-emu runs the sm_90 kernels,
 * GEMMs on TF32 tensor cores, which differ by what TF32 allows and pass
 * under the TF32 tolerances that nnc check then takes by default. */
START_TEST(test_check_cuda_emu) {
  char *out, *err;
  int rc = run_check("--backend cuda-emu --steps 3 --batch 8 --precision fp32", &out, &err);
  ck_assert_msg(rc == 0, "%s%s", out, err);
  char backend[64];
  int steps;
  double loss, grads, update;
  ck_assert_msg(sscanf(last_line(out), "CHECK %63s %d %lf %lf %lf", backend, &steps, &loss, &grads, &update) == 5,
                "%s", out);
  ck_assert_str_eq(backend, "cuda-emu");
  ck_assert_int_eq(steps, 3);
  ck_assert_msg(loss <= 1e-5 && grads <= 1e-5 && update <= 1e-5, "%s", out);
  ck_assert_msg(strstr(out, "step 3: loss "), "%s", out);
  ck_assert_msg(!strstr(out, "TF32"), "%s", out);
  free(out), free(err);

  rc = run_check("--backend cuda-emu --steps 3 --batch 8", &out, &err);
  ck_assert_msg(rc == 0, "%s%s", out, err);
  ck_assert_msg(strstr(out, ", GEMMs on TF32 tensor cores\n"), "%s", out);
  ck_assert_msg(sscanf(last_line(out), "CHECK cuda-emu 3 %lf %lf %lf", &loss, &grads, &update) == 3, "%s", out);
  ck_assert_msg(loss <= 1e-2 && grads <= 1e-2 && update <= 1e-2, "%s", out);
  ck_assert_msg(grads > 1e-6, "TF32 gradients equal float's to %g:\n%s", grads, out);
  free(out), free(err);
}
END_TEST

/* --precision takes fp32 or tf32, and tf32 only where the target has
 * tensor cores (sm_75 has none). */
START_TEST(test_bad_precision) {
  char *out, *err;
  ck_assert_int_eq(run_check("--backend cuda-emu --precision fp16 --steps 1", &out, &err), 1);
  ck_assert_msg(strstr(err, "--precision expects fp32 or tf32, got 'fp16'"), "%s", err);
  free(out), free(err);
  ck_assert_int_eq(run_check("--backend cuda-emu --arch sm_75 --precision tf32 --steps 1", &out, &err), 1);
  ck_assert_msg(strstr(err, "--precision tf32 needs TF32 tensor cores (sm_80 or newer); the target is sm_75"), "%s",
                err);
  free(out), free(err);
  ck_assert_msg(run_check("--backend cuda-emu --arch sm_75 --steps 1 --batch 8", &out, &err) == 0, "%s%s", out, err);
  ck_assert_msg(!strstr(out, "TF32"), "%s", out);
  free(out), free(err);
}
END_TEST

/* From the second step on, the train step runs as one captured graph; the
 * run's seed and step come from device memory, so the replayed dropout
 * masks still change every step and match interp's. NNC_CUDA_GRAPH=0
 * launches kernel by kernel and must give the same numbers. */
START_TEST(test_check_cuda_emu_graph_capture) {
  char *out, *err, *plain_out, *plain_err;
  setenv("NNC_DEBUG", "1", 1);
  int rc = run_check("--backend cuda-emu --steps 3 --batch 8", &out, &err);
  setenv("NNC_CUDA_GRAPH", "0", 1);
  int plain_rc = run_check("--backend cuda-emu --steps 3 --batch 8", &plain_out, &plain_err);
  unsetenv("NNC_CUDA_GRAPH");
  unsetenv("NNC_DEBUG");
  ck_assert_msg(rc == 0 && plain_rc == 0, "%s%s%s%s", out, err, plain_out, plain_err);
  ck_assert_msg(strstr(err, "cuda-emu: captured") != NULL, "no graph was captured:\n%s", err);
  ck_assert_msg(strstr(plain_err, "captured") == NULL, "NNC_CUDA_GRAPH=0 still captured:\n%s", plain_err);
  ck_assert_str_eq(last_line(out), last_line(plain_out));
  free(out), free(err), free(plain_out), free(plain_err);
}
END_TEST

/* Library steps are captured with the kernels: a train step with every
 * convolution on (emulated) cuDNN and every matmul on cuBLAS, in TF32 (the
 * default), replayed from the second step on, agrees with the interpreter
 * and gives the numbers launching step by step gives, to the last digit. */
START_TEST(test_check_lowered_graph_capture) {
  char *out, *err, *plain_out, *plain_err;
  const char *extra = "--backend cuda-emu --steps 3 --batch 8 --lower conv=cudnn,matmul=cublas";
  setenv("NNC_DEBUG", "1", 1);
  int rc = run_check(extra, &out, &err);
  setenv("NNC_CUDA_GRAPH", "0", 1);
  int plain_rc = run_check(extra, &plain_out, &plain_err);
  unsetenv("NNC_CUDA_GRAPH");
  unsetenv("NNC_DEBUG");
  ck_assert_msg(rc == 0 && plain_rc == 0, "%s%s%s%s", out, err, plain_out, plain_err);
  ck_assert_msg(strstr(err, "cuda-emu: captured") != NULL, "no graph was captured:\n%s", err);
  ck_assert_msg(strstr(err, "cannot be captured") == NULL, "%s", err);
  ck_assert_msg(strstr(plain_err, "captured") == NULL, "NNC_CUDA_GRAPH=0 still captured:\n%s", plain_err);
  ck_assert_msg(strstr(out, "\nCHECK cuda-emu 3 "), "%s", out);
  ck_assert_str_eq(last_line(out), last_line(plain_out));
  free(out), free(err), free(plain_out), free(plain_err);
}
END_TEST

/* Past the tolerance the report is still printed, and nnc exits 1. */
START_TEST(test_check_fails_past_tolerance) {
  char *out, *err;
  int rc = run_check("--backend cuda-emu --steps 2 --batch 8 --tol 0 --grad-tol 0 --no-fuse", &out, &err);
  if (strstr(out, "CHECK cuda-emu 2 0 0 0")) { /* bit for bit: nothing to exceed */
    ck_assert_int_eq(rc, 0);
  } else {
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(!strncmp(last_line(out), "CHECK cuda-emu 2 ", 17), "%s", out);
    ck_assert_msg(strstr(err, "cuda-emu differs from interp: loss by "), "%s", err);
  }
  free(out), free(err);
}
END_TEST

/* Gradients have a tolerance of their own; past it nnc check says so. */
START_TEST(test_check_gradient_tolerance) {
  char *out, *err;
  int rc = run_check("--backend cpu --steps 1 --batch 8 --tol 1 --grad-tol 0", &out, &err);
  double loss, grads, update;
  ck_assert_msg(sscanf(last_line(out), "CHECK cpu 1 %lf %lf %lf", &loss, &grads, &update) == 3, "%s", out);
  if (grads == 0) {
    ck_assert_int_eq(rc, 0);
  } else {
    ck_assert_int_eq(rc, 1);
    ck_assert_msg(strstr(err, "against the tolerance 1; gradients by ") && strstr(err, "(most in ") &&
                      strstr(err, ") against 0"),
                  "%s", err);
  }
  free(out), free(err);
  ck_assert_int_eq(run_check("--backend cpu --grad-tol -1", &out, &err), 1);
  ck_assert_msg(strstr(err, "--grad-tol expects a non-negative number, got '-1'"), "%s", err);
  free(out), free(err);
}
END_TEST

/* Without a driver or GPU: one line on stderr, then the check runs on the fallback. */
START_TEST(test_check_cuda_or_fallback) {
  char *out, *err;
  int rc = run_check("--backend cuda --steps 1 --batch 4", &out, &err);
  ck_assert_msg(rc == 0, "%s%s", out, err);
  if (strstr(err, "cannot run here")) {
    ck_assert_msg(!strncmp(err, "nnc: cuda cannot run here: ", 27), "%s", err);
    ck_assert_msg(strchr(err, '\n') == err + strlen(err) - 1, "more than one line: %s", err);
    ck_assert_msg(strstr(err, "; using "), "%s", err);
    ck_assert_msg(!strncmp(last_line(out), "CHECK interp 1 ", 15) || !strncmp(last_line(out), "CHECK cpu 1 ", 12),
                  "%s", out);
    printf("codegen: no GPU here, so nnc check ran on the fallback: %s", err);
  } else {
    ck_assert_msg(!strncmp(last_line(out), "CHECK cuda 1 ", 13), "%s%s", out, err);
  }
  free(out), free(err);
}
END_TEST

START_TEST(test_dump_kernels) {
  char dir[] = "/tmp/nnc-dump-test-XXXXXX", extra[256], *out, *err;
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(extra, sizeof extra, "--backend cuda-emu --steps 1 --batch 4 --dump-kernels '%s/k'", dir);
  ck_assert_msg(run_check(extra, &out, &err) == 0, "%s%s", out, err);
  char cmd[1024], list[300];
  snprintf(list, sizeof list, "%s/list.txt", dir);
  snprintf(cmd, sizeof cmd, "cd '%s/k' && ls */*.cu > '%s'", dir, list);
  ck_assert_int_eq(system(cmd), 0);
  char *files = nnc_test_read_file(list);
  ck_assert_msg(files && strstr(files, "_conv2d_bias_add_relu.cu") && strstr(files, "_xent_logits_grad.cu"), "%s",
                files);
  /* Each file holds the prelude, its launch and the kernel, and compiles alone. */
  char first[256], path[600];
  sscanf(files, "%255s", first);
  snprintf(path, sizeof path, "%s/k/%s", dir, first);
  char *text = nnc_test_read_file(path);
  ck_assert_msg(text && !strncmp(text, "/* generated by nnc", 19) && strstr(text, "/* launch: nnc_") &&
                    strstr(text, "NNC_KERNEL void nnc_"),
                "%s", text);
  snprintf(cmd, sizeof cmd, "cc -x c -std=c11 -fsyntax-only -w '%s'", path);
  ck_assert_int_eq(system(cmd), 0);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
  free(text), free(files), free(out), free(err);
}
END_TEST

START_TEST(test_bad_arch_and_backend) {
  char *out, *err;
  ck_assert_int_eq(run_check("--arch volta --steps 1", &out, &err), 1);
  ck_assert_msg(strstr(err, "--arch expects a CUDA target such as sm_90 or compute_90, got 'volta'"), "%s", err);
  free(out), free(err);
  ck_assert_int_eq(run_check("--backend cuda_emu", &out, &err), 1);
  ck_assert_msg(strstr(err, "unknown backend 'cuda_emu'; did you mean 'cuda-emu'?"), "%s", err);
  free(out), free(err);
}
END_TEST

/* A script's fit, evaluate and predict on cuda-emu with float GEMMs print
 * what interp prints (to the digits shown), and --backend cuda without a
 * GPU falls back with one line. */
static const char *fit_script =
    "local x = data.tensor((function() local t = {} for i = 1, 48 * 16 do t[i] = (i * 37 % 101) / 101 end return t end)())\n"
    "x = x:reshape { 48, 4, 4, 1 }\n"
    "local y = data.tensor((function() local t = {} for i = 1, 48 do t[i] = i % 3 end return t end)(), 'i32')\n"
    "local m = nn.Sequential { nn.Conv2D { 3, 2, activation = 'relu', input_shape = { 4, 4, 1 } }, nn.Flatten(),\n"
    "  nn.Dropout(0.2), nn.Dense { 3, activation = 'softmax' } }\n"
    "m:compile { optimizer = 'rmsprop', loss = 'sparse_categorical_crossentropy', metrics = { 'accuracy' } }\n"
    "local h = m:fit(x, y, { epochs = 2, batch_size = 16, verbose = 0 })\n"
    "local loss, acc = m:evaluate(x, y, { verbose = 0 })\n"
    "print(string.format('%.5f %.5f %.5f %.4f', h.loss[1], h.loss[2], loss, acc))\n";

START_TEST(test_fit_on_cuda_emu_and_fallback) {
  const char *path = nnc_test_write_temp("fit.lua", fit_script);
  char args[1024], *ref, *emu, *gpu, *err;
  snprintf(args, sizeof args, "'%s' --backend interp", path);
  ck_assert_msg(nnc_test_run_cli(args, &ref, &err) == 0, "%s", err);
  free(err);
  snprintf(args, sizeof args, "'%s' --backend cuda-emu --precision fp32", path);
  ck_assert_msg(nnc_test_run_cli(args, &emu, &err) == 0, "%s", err);
  free(err);
  ck_assert_str_eq(emu, ref);
  snprintf(args, sizeof args, "'%s' --backend cuda --precision fp32", path);
  ck_assert_msg(nnc_test_run_cli(args, &gpu, &err) == 0, "%s", err);
  if (strstr(err, "cannot run here"))
    ck_assert_msg(!strncmp(err, "nnc: cuda cannot run here: ", 27) && strchr(err, '\n') == err + strlen(err) - 1,
                  "%s", err);
  ck_assert_msg(strlen(gpu) == strlen(ref), "%s vs %s", gpu, ref);
  free(ref), free(emu), free(gpu), free(err);
}
END_TEST

/* --lower on the shipped CNN: convolutions on (emulated) cuDNN, matmuls on
 * (emulated) cuBLAS, trained against the interpreter. */
START_TEST(test_check_cnn_lowered) {
  char *out, *err;
  int rc = nnc_test_run_cli("check models/cnn.lua --backend cuda-emu --steps 2 --lower conv=cudnn,matmul=cublas", &out,
                            &err);
  if (rc != 0 && strstr(err, "dataset-fashion-mnist")) {
    printf("skipped: Fashion-MNIST is not installed\n");
  } else {
    ck_assert_msg(rc == 0, "%s%s", out, err);
    ck_assert_msg(strstr(out, "\nCHECK cuda-emu 2 "), "%s", out);
  }
  free(out), free(err);
}
END_TEST

/* Library steps are dumped as text describing their calls, and bench counts
 * their calls as launches: each lowered convolution adds its filter
 * transpose, and its bias and activation become a kernel of their own. */
START_TEST(test_lower_dump_and_bench) {
  char dir[] = "/tmp/nnc-lower-test-XXXXXX", extra[256], *out, *err;
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(extra, sizeof extra, "--backend cuda-emu --steps 1 --batch 4 --lower conv=cudnn,matmul=cublas --dump-kernels '%s/k'",
           dir);
  ck_assert_msg(run_check(extra, &out, &err) == 0, "%s%s", out, err);
  free(out), free(err);
  char cmd[1024], list[300];
  snprintf(list, sizeof list, "%s/list.txt", dir);
  snprintf(cmd, sizeof cmd, "cd '%s/k' && ls */* > '%s'", dir, list);
  ck_assert_int_eq(system(cmd), 0);
  char *files = nnc_test_read_file(list);
  ck_assert_msg(files && strstr(files, "_conv2d_cudnn.txt") && strstr(files, "_conv2d_grad_kernel_cudnn.txt") &&
                    strstr(files, "_matmul_cublas.txt") && strstr(files, "_bias_add_relu.cu") &&
                    !strstr(files, "_conv2d_bias_add_relu.cu"),
                "%s", files);
  const char *name = strstr(files, "_conv2d_cudnn.txt");
  while (name > files && name[-1] != '\n') name--;
  char first[256], path[600];
  sscanf(name, "%255s", first);
  snprintf(path, sizeof path, "%s/k/%s", dir, first);
  char *text = nnc_test_read_file(path);
  ck_assert_msg(text && !strncmp(text, "/* generated by nnc", 19) && strstr(text, "cudnnConvolutionForward") &&
                    strstr(text, "cublasSgeam: kernel b"),
                "%s", text);
  free(text), free(files);
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);

  const char *path_lua = nnc_test_write_temp("bench.lua", model);
  int counts[2];
  for (int lowered = 0; lowered < 2; lowered++) {
    char args[1024];
    snprintf(args, sizeof args, "bench '%s' --backend cuda-emu --batch 4 --infer-batch 4 --steps 1 %s", path_lua,
             lowered ? "--lower conv=cudnn" : "");
    ck_assert_msg(nnc_test_run_cli(args, &out, &err) == 0, "%s%s", out, err);
    const char *k = strstr(out, "kernels/step");
    ck_assert_msg(k, "%s", out);
    while (k > out && k[-1] == ' ') k--;
    while (k > out && k[-1] >= '0' && k[-1] <= '9') k--;
    counts[lowered] = atoi(k);
    free(out), free(err);
  }
  /* One convolution: forward and kernel gradient (the input has none) each
   * add a transpose; the forward's epilogue becomes its own kernel. */
  ck_assert_msg(counts[1] == counts[0] + 3, "kernels/step: %d unlowered, %d with conv=cudnn", counts[0], counts[1]);
}
END_TEST

/* A bad spec, on the command line or in $NNC_LOWER, is a usage error: exit 2. */
START_TEST(test_bad_lower) {
  char *out, *err;
  ck_assert_int_eq(run_check("--lower pool=cudnn --steps 1", &out, &err), 2);
  ck_assert_msg(strstr(err, "--lower: unknown op kind 'pool'"), "%s", err);
  free(out), free(err);
  ck_assert_int_eq(run_check("--lower conv=cublas --steps 1", &out, &err), 2);
  ck_assert_msg(strstr(err, "conv cannot be lowered to cublas (choose cudnn or nnc)"), "%s", err);
  free(out), free(err);
  ck_assert_int_eq(run_check("--steps 1 --lower", &out, &err), 2);
  free(out), free(err);
  setenv("NNC_LOWER", "matmul=blas", 1);
  ck_assert_int_eq(run_check("--backend cuda-emu --steps 1 --batch 4", &out, &err), 2);
  ck_assert_msg(strstr(err, "$NNC_LOWER: --lower: unknown library 'blas' for matmul"), "%s", err);
  free(out), free(err);
  setenv("NNC_LOWER", "matmul=cublas", 1);
  ck_assert_int_eq(run_check("--backend cuda-emu --steps 1 --batch 4", &out, &err), 0);
  free(out), free(err);
  unsetenv("NNC_LOWER");
}
END_TEST

TCase *tcase_cli(void) {
  TCase *tc = tcase_create("cli");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, test_check_cuda_emu);
  tcase_add_test(tc, test_check_cuda_emu_graph_capture);
  tcase_add_test(tc, test_check_lowered_graph_capture);
  tcase_add_test(tc, test_check_fails_past_tolerance);
  tcase_add_test(tc, test_check_gradient_tolerance);
  tcase_add_test(tc, test_check_cuda_or_fallback);
  tcase_add_test(tc, test_dump_kernels);
  tcase_add_test(tc, test_bad_arch_and_backend);
  tcase_add_test(tc, test_bad_precision);
  tcase_add_test(tc, test_fit_on_cuda_emu_and_fallback);
  tcase_add_test(tc, test_check_cnn_lowered);
  tcase_add_test(tc, test_lower_dump_and_bench);
  tcase_add_test(tc, test_bad_lower);
  return tc;
}
