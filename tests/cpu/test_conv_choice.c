/* The measured choice of a convolution algorithm (runtime/cpu/cpu_conv.c): a
 * shape is measured once, the choice is kept in the cache file and read
 * back by the next process, an algorithm that does not fit is never
 * chosen, and NNC_CPU_CONV overrides the measurement. Each choice is made in
 * a child process that forgets what this one chose, so it starts from the
 * file alone. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/cpu/cpu.h"
#include "tests/cpu/suites.h"
#include "tests/testutil.h"

static nnc_window window_of_size(long long ic, long long oc, long long k) {
  return (nnc_window){.batch = 4, .ih = 12, .iw = 11, .ic = ic, .oh = 12, .ow = 11, .oc = oc, .kh = k, .kw = k,
                      .sh = 1, .sw = 1, .ph = k / 2, .pw = k / 2};
}

static char cache_dir[64], cache_file[128];
/* The environment the suite runs in, put back after each test (CK_FORK=no runs them in one process). */
static char *saved_dir;

static char *saved(const char *name) { return getenv(name) ? strdup(getenv(name)) : NULL; }

static void put_back(const char *name, char *value) {
  if (value) setenv(name, value, 1);
  else unsetenv(name);
  free(value);
}

static void fresh_cache(void) {
  saved_dir = saved("NNC_CACHE_DIR");
  snprintf(cache_dir, sizeof cache_dir, "/tmp/nnc_conv_choiceXXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(cache_dir));
  snprintf(cache_file, sizeof cache_file, "%s/cpu_conv.tsv", cache_dir);
  setenv("NNC_CACHE_DIR", cache_dir, 1);
  unsetenv("NNC_CPU_CONV");
}

static void remove_cache(void) {
  unlink(cache_file);
  rmdir(cache_dir);
  unsetenv("NNC_CPU_CONV");
  put_back("NNC_CACHE_DIR", saved_dir);
}

/* The cache file's text ("" when there is none). */
static char *cache_text(void) {
  static char text[8192];
  FILE *f = fopen(cache_file, "r");
  size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
  if (f) fclose(f);
  text[len] = 0;
  return text;
}

static int lines(const char *text) {
  int count = 0;
  for (; *text; text++) count += *text == '\n';
  return count;
}

static nnc_cpu_conv_algo choose_in_child(nnc_cpu_conv_pass pass, nnc_window w) {
  pid_t pid = fork();
  if (pid == 0) {
    nnc_cpu_choice_forget(&nnc_cpu_conv_choice); /* what earlier tests chose in this process (CK_FORK=no) */
    _exit((int)nnc_cpu_conv_choose(nnc_test_options(), pass, &w));
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  return (nnc_cpu_conv_algo)WEXITSTATUS(status);
}

/* Measured once, written down with every candidate's time, read back. */
START_TEST(test_choice_measured_and_kept) {
  fresh_cache();
  nnc_window w = window_of_size(16, 16, 3);
  nnc_cpu_conv_algo first = choose_in_child(NNC_CPU_CONV_GRAD_INPUT, w);
  char *text = cache_text();
  ck_assert_int_eq(lines(text), 1);
  ck_assert_msg(strstr(text, "gemm=") && strstr(text, "winograd=") && strstr(text, "direct="), "%s", text);
  char field[32];
  snprintf(field, sizeof field, "\t%s\t", nnc_cpu_conv_algo_name(first));
  ck_assert_msg(strstr(text, field), "the choice %s is not in %s", nnc_cpu_conv_algo_name(first), text);
  /* Another algorithm written in its place is what the next process runs, without measuring again. */
  nnc_cpu_conv_algo other = first == NNC_CPU_CONV_WINOGRAD ? NNC_CPU_CONV_DIRECT : NNC_CPU_CONV_WINOGRAD;
  char forged[8192], *at = strstr(text, field);
  snprintf(forged, sizeof forged, "%.*s\t%s\t%s", (int)(at - text), text, nnc_cpu_conv_algo_name(other),
           at + strlen(field));
  FILE *f = fopen(cache_file, "w");
  fputs(forged, f);
  fclose(f);
  ck_assert_int_eq(choose_in_child(NNC_CPU_CONV_GRAD_INPUT, w), other);
  ck_assert_int_eq(lines(cache_text()), 1);
  /* Another pass of the same window is another shape. */
  choose_in_child(NNC_CPU_CONV_FORWARD, w);
  ck_assert_int_eq(lines(cache_text()), 2);
  remove_cache();
}
END_TEST

/* Winograd does not fit a 5x5 kernel: never measured, never chosen. */
START_TEST(test_choice_only_what_fits) {
  fresh_cache();
  ck_assert_int_ne(choose_in_child(NNC_CPU_CONV_FORWARD, window_of_size(3, 8, 5)), NNC_CPU_CONV_WINOGRAD);
  char *text = cache_text();
  ck_assert_msg(strstr(text, "gemm=") && strstr(text, "direct=") && !strstr(text, "winograd="), "%s", text);
  remove_cache();
}
END_TEST

/* NNC_CPU_CONV runs the algorithm it names where it fits, GEMM elsewhere,
 * and measures nothing. */
START_TEST(test_choice_overrides) {
  fresh_cache();
  setenv("NNC_CPU_CONV", "direct", 1);
  ck_assert_int_eq(choose_in_child(NNC_CPU_CONV_GRAD_KERNEL, window_of_size(16, 16, 3)), NNC_CPU_CONV_DIRECT);
  setenv("NNC_CPU_CONV", "winograd", 1);
  ck_assert_int_eq(choose_in_child(NNC_CPU_CONV_FORWARD, window_of_size(16, 16, 5)), NNC_CPU_CONV_GEMM);
  ck_assert_int_eq(choose_in_child(NNC_CPU_CONV_FORWARD, window_of_size(16, 16, 3)), NNC_CPU_CONV_WINOGRAD);
  unsetenv("NNC_CPU_CONV");
  ck_assert_str_eq(cache_text(), "");
  remove_cache();
}
END_TEST

/* Matmul's choice by the same machinery, in its own file: measured once
 * with both algorithms' times, read back, forced by NNC_CPU_MATMUL. */
static nnc_cpu_mm_algo mm_choose_in_child(int ta, int tb, int64_t m, int64_t n, int64_t k) {
  pid_t pid = fork();
  if (pid == 0) {
    nnc_cpu_choice_forget(&nnc_cpu_mm_choice);
    _exit((int)nnc_cpu_mm_choose(nnc_test_options(), ta, tb, m, n, k));
  }
  int status = 0;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status));
  return (nnc_cpu_mm_algo)WEXITSTATUS(status);
}

START_TEST(test_matmul_choice) {
  fresh_cache();
  unsetenv("NNC_CPU_MATMUL");
  char mm_file[160];
  snprintf(mm_file, sizeof mm_file, "%s/cpu_matmul.tsv", cache_dir);
  nnc_cpu_mm_algo first = mm_choose_in_child(0, 1, 8, 300, 200);
  FILE *f = fopen(mm_file, "r");
  ck_assert_ptr_nonnull(f);
  char text[1024] = "";
  size_t len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[len] = 0;
  ck_assert_int_eq(lines(text), 1);
  ck_assert_msg(strstr(text, "\tnt\t8,300,200\t") && strstr(text, "blas=") && strstr(text, "blocked="), "%s", text);
  /* The other algorithm written in its place is what the next process runs. */
  const char *name[] = {"blas", "blocked"}, *other = name[!first];
  char field[32], forged[1100], *at;
  snprintf(field, sizeof field, "\t%s\t", name[first]);
  ck_assert_ptr_nonnull(at = strstr(text, field));
  snprintf(forged, sizeof forged, "%.*s\t%s\t%s", (int)(at - text), text, other, at + strlen(field));
  f = fopen(mm_file, "w");
  fputs(forged, f);
  fclose(f);
  ck_assert_int_eq(mm_choose_in_child(0, 1, 8, 300, 200), !first);
  /* Both transposed does not fit the blocked loops: never chosen, even forced. */
  ck_assert_int_eq(mm_choose_in_child(1, 1, 8, 300, 200), NNC_CPU_MM_BLAS);
  setenv("NNC_CPU_MATMUL", "blocked", 1);
  ck_assert_int_eq(mm_choose_in_child(1, 1, 8, 301, 200), NNC_CPU_MM_BLAS);
  ck_assert_int_eq(mm_choose_in_child(1, 0, 8, 301, 200), NNC_CPU_MM_BLOCKED);
  setenv("NNC_CPU_MATMUL", "blas", 1);
  ck_assert_int_eq(mm_choose_in_child(0, 0, 8, 301, 200), NNC_CPU_MM_BLAS);
  unsetenv("NNC_CPU_MATMUL");
  f = fopen(mm_file, "r");
  len = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[len] = 0;
  ck_assert_msg(lines(text) == 2, "%s", text); /* the forced choices measured nothing */
  unlink(mm_file);
  remove_cache();
}
END_TEST

TCase *tcase_cpu_conv_choice(void) {
  TCase *tc = tcase_create("cpu_conv_choice");
  tcase_set_timeout(tc, 60); /* each test measures a few shapes */
  tcase_add_test(tc, test_choice_measured_and_kept);
  tcase_add_test(tc, test_choice_only_what_fits);
  tcase_add_test(tc, test_choice_overrides);
  tcase_add_test(tc, test_matmul_choice);
  return tc;
}
