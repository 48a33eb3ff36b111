/* nnc bench on the cpu backend: the figures it prints agree with each other.
 * The profile's rows are the oracle for the GEMM line above them: its GEMM
 * time is the sum of the rows anchored by a convolution or matmul, its total
 * the sum of every row, and its bound their ratio. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

static const char *conv_model =
    "local m = nn.Sequential {\n"
    "  nn.Conv2D { 8, 3, padding = 'same', activation = 'relu', input_shape = { 12, 12, 2 } },\n"
    "  nn.MaxPool2D { 2 },\n"
    "  nn.Dropout(0.25),\n"
    "  nn.Flatten(),\n"
    "  nn.Dense { 16, activation = 'relu' },\n"
    "  nn.Dense { 4, activation = 'softmax' },\n"
    "}\n"
    "m:compile { optimizer = nn.Adam(), loss = 'sparse_categorical_crossentropy', metrics = { 'accuracy' } }\n";

/* One section of the output: the train step's or inference's. */
typedef struct section {
  int kernels, rows;
  double arena, plan, intermediates;
  double gemm, total, bound; /* the GEMM line */
  double row_sum, row_gemm;  /* the same, summed from the rows */
} section;

static int is_gemm_row(const char *what) { return !strncmp(what, "conv2d", 6) || !strncmp(what, "matmul", 6); }

/* Parses the section that starts at the line beginning with `head`. */
static section parse_section(const char *out, const char *head) {
  section s = {0};
  const char *p = strstr(out, head);
  ck_assert_msg(p, "no '%s' line in:\n%s", head, out);
  const char *k = strstr(p, "kernels/step");
  ck_assert_msg(k, "%s", p);
  while (k > p && k[-1] == ' ') k--;
  while (k > p && k[-1] >= '0' && k[-1] <= '9') k--;
  s.kernels = atoi(k);
  ck_assert_msg(sscanf(strstr(p, "arena "), "arena %lf MB (plan %lf MB, intermediates %lf MB)", &s.arena, &s.plan,
                       &s.intermediates) == 3,
                "%s", p);
  const char *line = strstr(p, "  GEMM kernels ");
  ck_assert_msg(line, "no GEMM line in:\n%s", p);
  ck_assert_msg(sscanf(line,
                       "  GEMM kernels %lf ms of %lf ms profiled (%*f%%): "
                       "removing all other work would give at most %lfx",
                       &s.gemm, &s.total, &s.bound) == 3,
                "%s", line);
  for (line = strchr(line, '\n') + 1; *line == ' '; line = strchr(line, '\n') + 1) {
    double pct, ms;
    char what[64];
    ck_assert_msg(sscanf(line, "%lf%% %lf ms %63s", &pct, &ms, what) == 3, "%s", line);
    s.rows++;
    s.row_sum += ms;
    if (is_gemm_row(what)) s.row_gemm += ms;
  }
  return s;
}

static char *bench(const char *flags) {
  const char *path = nnc_test_write_temp("bench.lua", conv_model);
  char args[1024], *out, *err;
  snprintf(args, sizeof args, "bench '%s' --batch 8 --infer-batch 8 --steps 2 %s", path, flags);
  int rc = nnc_test_run_cli(args, &out, &err);
  ck_assert_msg(rc == 0, "nnc %s: exit %d: %s", args, rc, err);
  free(err);
  return out;
}

static void check_sums(const section *s, const char *what) {
  /* Each row is rounded to a microsecond. */
  double slack = 1e-3 * (s->rows + 1);
  ck_assert_msg(s->gemm > 0 && s->row_gemm > 0, "%s: no GEMM time", what);
  ck_assert_msg(s->total - s->row_sum < slack && s->row_sum - s->total < slack, "%s: total %.3f, rows sum to %.3f",
                what, s->total, s->row_sum);
  ck_assert_msg(s->gemm - s->row_gemm < slack && s->row_gemm - s->gemm < slack, "%s: GEMM %.3f, GEMM rows %.3f", what,
                s->gemm, s->row_gemm);
  /* The bound from the printed figures, each within half a microsecond. */
  double low = (s->total - 5e-4) / (s->gemm + 5e-4) - 0.005, high = (s->total + 5e-4) / (s->gemm - 5e-4) + 0.005;
  ck_assert_msg(s->bound >= low && s->bound <= high, "%s: bound %.2f, total/GEMM in [%.3f, %.3f]", what, s->bound,
                low, high);
  ck_assert_msg(s->arena == s->plan && s->plan <= s->intermediates, "%s: arena %.1f, plan %.1f, intermediates %.1f",
                what, s->arena, s->plan, s->intermediates);
}

START_TEST(bench_profile_adds_up) {
  section fused[2], unfused[2];
  const char *heads[2] = {"train ", "inference "};
  char *out = bench("--top 1000"), *plain = bench("--top 1000 --no-fuse");
  for (int i = 0; i < 2; i++) {
    fused[i] = parse_section(out, heads[i]);
    unfused[i] = parse_section(plain, heads[i]);
    check_sums(&fused[i], heads[i]);
    check_sums(&unfused[i], heads[i]);
    ck_assert_msg(fused[i].kernels < unfused[i].kernels, "%skernels: %d fused, %d unfused", heads[i],
                  fused[i].kernels, unfused[i].kernels);
    /* Every kernel is listed under a --top larger than their count. */
    ck_assert_int_eq(unfused[i].rows, unfused[i].kernels);
  }
  free(out), free(plain);
  out = bench("--top 2");
  ck_assert_int_eq(parse_section(out, "train ").rows, 2);
  free(out);
}
END_TEST

START_TEST(bench_bad_top) {
  const char *path = nnc_test_write_temp("bench.lua", conv_model);
  char args[1024], *out, *err;
  snprintf(args, sizeof args, "bench '%s' --top 0", path);
  ck_assert_int_eq(nnc_test_run_cli(args, &out, &err), 1);
  ck_assert_msg(strstr(err, "--top expects a positive integer, got '0'"), "%s", err);
  free(out), free(err);
}
END_TEST

TCase *tcase_bench(void) {
  TCase *tc = tcase_create("bench");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, bench_profile_adds_up);
  tcase_add_test(tc, bench_bad_top);
  return tc;
}
