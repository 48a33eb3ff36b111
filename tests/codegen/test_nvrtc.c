/* Compiling generated code: NVRTC's failures are readable (kernel, options,
 * log, and the source in a file named after the kernel), its results are
 * cached by content and NNC_NOCACHE=1 bypasses the cache; the same for the
 * host compiler that cuda-emu uses. Each test points the cache at a fresh
 * folder and puts the environment back afterwards. NVRTC tests skip, with
 * the reason printed, when libnvrtc cannot be opened. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen/cache.h"
#include "codegen/cuda.h"
#include "codegen/host_cc.h"
#include "codegen/nvrtc.h"
#include "tests/codegen/harness.h"
#include "tests/codegen/suites.h"
#include "tests/testutil.h"

typedef struct saved_env {
  char *nocache, *dir;
  char tmp[256];
} saved_env;

static char *dup_env(const char *name) {
  const char *v = getenv(name);
  return v ? strdup(v) : NULL;
}

/* A fresh cache folder, with the cache on. */
static void env_enter(saved_env *s) {
  s->nocache = dup_env("NNC_NOCACHE");
  s->dir = dup_env("NNC_CACHE_DIR");
  snprintf(s->tmp, sizeof s->tmp, "/tmp/nnc-cache-test-XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(s->tmp));
  setenv("NNC_CACHE_DIR", s->tmp, 1);
  unsetenv("NNC_NOCACHE");
}

static void restore(const char *name, char *value) {
  if (value) setenv(name, value, 1);
  else unsetenv(name);
  free(value);
}

static void env_leave(saved_env *s) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->tmp);
  ck_assert_int_eq(system(cmd), 0);
  restore("NNC_NOCACHE", s->nocache);
  restore("NNC_CACHE_DIR", s->dir);
}

static int count_files(const char *dir, const char *suffix) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '%s$' > '%s/count.txt'", dir, suffix, dir);
  if (system(cmd) < 0) return -1;
  char path[300];
  snprintf(path, sizeof path, "%s/count.txt", dir);
  char *text = nnc_test_read_file(path);
  int n = text ? atoi(text) : -1;
  free(text);
  remove(path);
  return n;
}

static const char good_kernel[] =
    "NNC_KERNEL void nnc_test_scale(float *NNC_RESTRICT out, const float *NNC_RESTRICT in) {\n"
    "  for (nnc_i64 w = (nnc_i64)blockIdx.x * blockDim.x + threadIdx.x; w < 100LL; w += (nnc_i64)blockDim.x * gridDim.x)\n"
    "    out[w] = 2.0f * in[w] + nnc_uniform(1ull, 2u, (nnc_u64)w);\n"
    "}\n";

static char *unit_of(const char *kernel) {
  size_t size = strlen(nnc_cuda_prelude()) + strlen(kernel) + 1;
  char *s = malloc(size);
  snprintf(s, size, "%s%s", nnc_cuda_prelude(), kernel);
  return s;
}

START_TEST(test_nvrtc_failure_names_kernel_options_log_and_file) {
  if (!harness_nvrtc_ready()) return;
  saved_env env;
  env_enter(&env);
  char *src = unit_of("NNC_KERNEL void nnc_test_broken(float *out) { out[0] = undeclared_name; }\n");
  nnc_cuda_binary bin;
  nnc_status st = {0};
  ck_assert_int_eq(nnc_nvrtc_compile(nnc_test_options(), "nnc_test_broken", src, "sm_90", &bin, &st), -1);
  ck_assert_msg(strstr(st.msg, "NVRTC could not compile kernel nnc_test_broken"), "%s", st.msg);
  ck_assert_msg(strstr(st.msg, "--gpu-architecture=sm_90"), "%s", st.msg);
  ck_assert_msg(strstr(st.msg, "undeclared_name"), "the log is missing: %s", st.msg);
  char path[512];
  snprintf(path, sizeof path, "%s/nnc_test_broken.cu", env.tmp);
  ck_assert_msg(strstr(st.msg, path), "%s", st.msg);
  char *kept = nnc_test_read_file(path);
  ck_assert_msg(kept && !strcmp(kept, src), "the source was not written to %s", path);
  /* The whole source is in the file, not in the message. */
  ck_assert_msg(!strstr(st.msg, "nnc_philox_word0"), "%s", st.msg);
  free(kept);
  free(src);
  env_leave(&env);
}
END_TEST

START_TEST(test_nvrtc_cache_by_content) {
  if (!harness_nvrtc_ready()) return;
  saved_env env;
  env_enter(&env);
  char *src = unit_of(good_kernel);
  nnc_cuda_binary bin;
  nnc_status st = {0};
  ck_assert_msg(nnc_nvrtc_compile(nnc_test_options(), "nnc_test_scale", src, "sm_90", &bin, &st) == 0, "%s", st.msg);
  ck_assert(!nnc_nvrtc_last_was_cached() && bin.is_cubin && bin.size > 0);
  size_t size = bin.size;
  nnc_cuda_binary_free(&bin);
  ck_assert_int_eq(count_files(env.tmp, ".cubin"), 1);

  ck_assert_msg(nnc_nvrtc_compile(nnc_test_options(), "nnc_test_scale", src, "sm_90", &bin, &st) == 0, "%s", st.msg);
  ck_assert_msg(nnc_nvrtc_last_was_cached(), "the second compile missed the cache");
  ck_assert_uint_eq(bin.size, size);
  nnc_cuda_binary_free(&bin);

  /* Another target is another key, and compute_XX gives PTX. */
  ck_assert_msg(nnc_nvrtc_compile(nnc_test_options(), "nnc_test_scale", src, "compute_90", &bin, &st) == 0, "%s", st.msg);
  ck_assert(!nnc_nvrtc_last_was_cached() && !bin.is_cubin);
  ck_assert_msg(strstr(bin.data, ".entry nnc_test_scale"), "%s", (char *)bin.data);
  nnc_cuda_binary_free(&bin);

  /* A changed source misses. */
  src[strlen(src) - 3] = ' ';
  ck_assert_msg(nnc_nvrtc_compile(nnc_test_options(), "nnc_test_scale", src, "sm_90", &bin, &st) == 0, "%s", st.msg);
  ck_assert(!nnc_nvrtc_last_was_cached());
  nnc_cuda_binary_free(&bin);
  ck_assert_int_eq(count_files(env.tmp, ".cubin"), 2);

  /* NNC_NOCACHE=1: nothing read, nothing written. */
  setenv("NNC_NOCACHE", "1", 1);
  ck_assert_msg(nnc_nvrtc_compile(nnc_test_options(), "nnc_test_scale", src, "sm_90", &bin, &st) == 0, "%s", st.msg);
  ck_assert(!nnc_nvrtc_last_was_cached());
  nnc_cuda_binary_free(&bin);
  unsetenv("NNC_NOCACHE");
  ck_assert_int_eq(count_files(env.tmp, ".cubin"), 2);
  free(src);
  env_leave(&env);
}
END_TEST

START_TEST(test_nvrtc_rejects_a_bad_arch) {
  nnc_cuda_binary bin;
  nnc_status st = {0};
  ck_assert_int_eq(nnc_nvrtc_compile(nnc_test_options(), "k", "", "hopper", &bin, &st), -1);
  ck_assert_msg(strstr(st.msg, "'hopper' is not a CUDA target: expected sm_NN or compute_NN"), "%s", st.msg);
}
END_TEST

/* The host compiler's objects are cached the same way; without the cache
 * they are built in a private folder that cleanup removes. */
START_TEST(test_host_compile_cache) {
  saved_env env;
  env_enter(&env);
  char *src = unit_of(good_kernel);
  nnc_host_so a, b;
  nnc_status st = {0};
  ck_assert_msg(nnc_host_compile(nnc_test_options(), "unit", src, &a, &st) == 0, "%s", st.msg);
  ck_assert_msg(!strncmp(a.path, env.tmp, strlen(env.tmp)) && !a.tmpdir[0], "%s", a.path);
  struct stat first, second;
  ck_assert_int_eq(stat(a.path, &first), 0);
  ck_assert_msg(nnc_host_compile(nnc_test_options(), "unit", src, &b, &st) == 0, "%s", st.msg);
  ck_assert_str_eq(a.path, b.path);
  ck_assert_int_eq(stat(b.path, &second), 0);
  ck_assert(first.st_mtime == second.st_mtime && first.st_ino == second.st_ino);

  setenv("NNC_NOCACHE", "1", 1);
  ck_assert_msg(nnc_host_compile(nnc_test_options(), "unit", src, &b, &st) == 0, "%s", st.msg);
  ck_assert_msg(b.tmpdir[0] && access(b.path, R_OK) == 0, "%s", b.path);
  char dir[2048];
  snprintf(dir, sizeof dir, "%s", b.tmpdir);
  nnc_host_so_cleanup(&b);
  ck_assert_msg(access(dir, F_OK) != 0, "%s was left behind", dir);
  unsetenv("NNC_NOCACHE");
  free(src);
  env_leave(&env);
}
END_TEST

START_TEST(test_host_compile_failure) {
  saved_env env;
  env_enter(&env);
  char *src = unit_of("NNC_KERNEL void nnc_test_broken(float *out) { out[0] = undeclared_name; }\n");
  nnc_host_so so;
  nnc_status st = {0};
  ck_assert_int_eq(nnc_host_compile(nnc_test_options(), "nnc-graph-test", src, &so, &st), -1);
  ck_assert_msg(strstr(st.msg, "could not build nnc-graph-test for cuda-emu"), "%s", st.msg);
  ck_assert_msg(strstr(st.msg, "undeclared_name"), "%s", st.msg);
  char path[512];
  snprintf(path, sizeof path, "%s/nnc-graph-test.c", env.tmp);
  ck_assert_msg(strstr(st.msg, path) && access(path, R_OK) == 0, "%s", st.msg);
  free(src);
  env_leave(&env);
}
END_TEST

TCase *tcase_nvrtc(void) {
  TCase *tc = tcase_create("nvrtc");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, test_nvrtc_failure_names_kernel_options_log_and_file);
  tcase_add_test(tc, test_nvrtc_cache_by_content);
  tcase_add_test(tc, test_nvrtc_rejects_a_bad_arch);
  tcase_add_test(tc, test_host_compile_cache);
  tcase_add_test(tc, test_host_compile_failure);
  return tc;
}
