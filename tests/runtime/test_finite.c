/* Values that are not finite: the scan fit and the NaN trace use, the
 * NNC_DEBUG list, and the per-node check of the interpreter and the cpu
 * backend (NNC_DEBUG=nan), which must see a value that a later op hides. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/text.h"
#include "runtime/backend.h"
#include "runtime/train/finite.h"
#include "tests/testutil.h"

/* Every position around the scan's chunks, and each kind of value. */
START_TEST(first_non_finite_at_every_place) {
  enum { N = 3000 };
  float *v = malloc(sizeof(float) * N);
  for (int i = 0; i < N; i++) v[i] = i % 2 ? FLT_MAX : -FLT_MIN / 2; /* the extremes that are finite */
  ck_assert_int_eq(nnc_first_non_finite(v, N), -1);
  ck_assert_int_eq(nnc_first_non_finite(v, 0), -1);
  const int at[] = {0, 1, 1023, 1024, 1025, 2047, 2048, N - 1};
  const float bad[] = {NAN, INFINITY, -INFINITY};
  for (size_t k = 0; k < sizeof at / sizeof at[0]; k++)
    for (size_t b = 0; b < 3; b++) {
      float keep = v[at[k]];
      v[at[k]] = bad[b];
      ck_assert_int_eq(nnc_first_non_finite(v, N), at[k]);
      ck_assert_int_eq(nnc_first_non_finite(v, at[k]), -1); /* stops at count */
      v[N - 1] = NAN;                                       /* a later one does not count */
      ck_assert_int_eq(nnc_first_non_finite(v, N), at[k]);
      v[N - 1] = FLT_MAX;
      v[at[k]] = keep;
    }
  ck_assert_str_eq(nnc_non_finite_name(NAN), "nan");
  ck_assert_str_eq(nnc_non_finite_name(-INFINITY), "-inf");
  free(v);
}
END_TEST

/* The data warning names the first bad element by its 1-based index. */
START_TEST(data_warning_names_the_index) {
  float v[2 * 3 * 4] = {0};
  int64_t shape[] = {2, 3, 4};
  char *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  ck_assert_int_eq(nnc_warn_non_finite_data(out, "fit's x", v, 3, shape), 0);
  v[1 * 12 + 0 * 4 + 1] = -INFINITY;
  v[23] = NAN;
  ck_assert_int_eq(nnc_warn_non_finite_data(out, "fit's x", v, 3, shape), 1);
  fclose(out);
  ck_assert_msg(strstr(text, "warning: fit's x holds -inf at [2, 1, 2] (1-based)") == text, "%s", text);
  ck_assert_msg(!strstr(text + 1, "warning"), "%s", text);
  free(text);
}
END_TEST

START_TEST(debug_list) {
  const struct {
    const char *value;
    int level, nan;
  } cases[] = {{"", 0, 0},     {"1", 1, 0},    {"nan", 0, 1},     {"2,nan", 2, 1},
               {"nan,4", 4, 1}, {"nanx", 0, 0}, {"1,,3", 3, 0},    {"na", 0, 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    setenv("NNC_DEBUG", cases[i].value, 1);
    ck_assert_msg(nnc_test_options()->debug == cases[i].level, "level of '%s'", cases[i].value);
    ck_assert_msg(nnc_test_options()->debug_nan == cases[i].nan, "nan in '%s'", cases[i].value);
  }
  unsetenv("NNC_DEBUG");
  ck_assert_int_eq(nnc_test_options()->debug, 0);
  ck_assert_int_eq(nnc_test_options()->debug_nan, 0);
}
END_TEST

/* matmul overflows to -inf and relu turns it into 0: the output is finite,
 * and only a check of each value as it is made finds %2. */
static void check_backend(const nnc_backend *b) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_parse("graph {\n"
                                 "  %0 = input() {name=\"x\"} : f32[2,3]\n"
                                 "  %1 = input() {name=\"w\"} : f32[3,2]\n"
                                 "  %2 = matmul(%0, %1) {trans_a=0, trans_b=0} : f32[2,2]\n"
                                 "  %3 = relu(%2) : f32[2,2]\n"
                                 "  %4 = softmax(%3) : f32[2,2]\n"
                                 "  output \"output\" = %4\n"
                                 "}\n",
                                 "in.ir", &st);
  ck_assert_msg(g, "%s", st.msg);
  float x[6] = {1, 0, 3, 4, 5, 6}, w[6] = {1, 1, 1, 1, 1, 1};
  void *leaves[5] = {x, w};
  nnc_exec *e = b->prepare(g, nnc_test_options(), &st);
  ck_assert_msg(e, "%s", st.msg);
  int32_t found = -1;
  nnc_run_opts opts = {.non_finite = &found};
  ck_assert_msg(b->run(e, leaves, &opts, &st) == 0, "%s", st.msg);
  ck_assert_msg(found == -1, "%s: %d", b->name, found);
  x[4] = -3e38f, w[3] = 3e38f; /* row 2 of x times column 2 of w */
  ck_assert_msg(b->run(e, leaves, &opts, &st) == 0, "%s", st.msg);
  ck_assert_msg(found == 2, "%s found %d", b->name, found);
  const float *out = b->value(e, 4);
  for (int i = 0; i < 4; i++) ck_assert_msg(isfinite(out[i]), "%s output %d", b->name, i);
  found = -1;
  ck_assert_msg(b->run(e, leaves, NULL, &st) == 0, "%s", st.msg); /* no opts: nothing looked at */
  ck_assert_int_eq(found, -1);
  b->release(e);
  nnc_graph_free(g);
}

START_TEST(backends_see_each_value) {
  check_backend(&nnc_backend_interp);
  check_backend(&nnc_backend_cpu);
}
END_TEST

TCase *tcase_finite(void) {
  TCase *tc = tcase_create("finite");
  tcase_add_test(tc, first_non_finite_at_every_place);
  tcase_add_test(tc, data_warning_names_the_index);
  tcase_add_test(tc, debug_list);
  tcase_add_test(tc, backends_see_each_value);
  return tc;
}
