/* Checked size arithmetic (ir/size.h) and the size and attribute checks the
 * graph makes with it, through the C API and the text form. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ir/graph.h"
#include "ir/size.h"
#include "ir/text.h"
#include "tests/ir/suites.h"

START_TEST(mul_and_add_detect_overflow) {
  int64_t r = 7;
  ck_assert_int_eq(nnc_size_mul(INT64_C(1) << 31, INT64_C(1) << 31, &r), 0);
  ck_assert_int_eq(r, INT64_C(1) << 62);
  ck_assert_int_eq(nnc_size_mul(INT64_C(1) << 32, INT64_C(1) << 31, &r), -1);
  ck_assert_int_eq(r, INT64_C(1) << 62); /* untouched on failure */
  ck_assert_int_eq(nnc_size_mul(INT64_MAX, 1, &r), 0);
  ck_assert_int_eq(nnc_size_mul(-1, 2, &r), -1);
  ck_assert_int_eq(nnc_size_add(INT64_MAX - 1, 1, &r), 0);
  ck_assert_int_eq(r, INT64_MAX);
  ck_assert_int_eq(nnc_size_add(INT64_MAX, 1, &r), -1);
}
END_TEST

START_TEST(shape_cap_names_the_tensor) {
  nnc_status st = {0};
  int64_t n = -5;
  const int64_t ok[] = {NNC_DIM_ANY, 1024, 1024, 256};
  ck_assert_int_eq(nnc_size_shape("w", 4, ok, 4, &n, &st), 0);
  ck_assert_int_eq(n, INT64_C(1) << 28);
  /* exactly the cap is allowed, one element more is not */
  const int64_t at_cap[] = {INT64_C(1) << 38};
  ck_assert_int_eq(nnc_size_shape("w", 1, at_cap, 4, &n, &st), 0);
  const int64_t over_cap[] = {(INT64_C(1) << 38) + 1};
  ck_assert_int_eq(nnc_size_shape("w", 1, over_cap, 4, &n, &st), -1);
  const int64_t wraps[] = {INT64_C(9223372036854775807), 2};
  ck_assert_int_eq(nnc_size_shape("input 'x'", 2, wraps, 4, &n, &st), -1);
  ck_assert_str_eq(st.msg, "input 'x': shape [9223372036854775807,2] needs 64.0 EiB, more than nnc's limit of "
                           "1.0 TiB per tensor");
  /* Empty, but its rows would still be 2^62 elements apart. */
  const int64_t empty[] = {0, INT64_C(1) << 62};
  ck_assert_int_eq(nnc_size_shape("t", 2, empty, 1, &n, &st), -1);
  const int64_t small_empty[] = {1000000000, 0};
  ck_assert_int_eq(nnc_size_shape("t", 2, small_empty, 4, &n, &st), 0);
  ck_assert_int_eq(n, 0);
  const int64_t negative[] = {3, -2};
  ck_assert_int_eq(nnc_size_shape("t", 2, negative, 4, &n, &st), -1);
  ck_assert_str_eq(st.msg, "t: shape [3,-2] has a negative size -2 at axis 1");
}
END_TEST

START_TEST(whole_rejects_what_does_not_convert) {
  int64_t v = 0;
  ck_assert_int_eq(nnc_size_whole(3.0, &v), 0);
  ck_assert_int_eq(v, 3);
  ck_assert_int_eq(nnc_size_whole(-9223372036854775808.0, &v), 0);
  ck_assert_int_eq(v, INT64_MIN);
  ck_assert_int_eq(nnc_size_whole(9223372036854775808.0, &v), -1);
  ck_assert_int_eq(nnc_size_whole(1e30, &v), -1);
  ck_assert_int_eq(nnc_size_whole(NAN, &v), -1);
  ck_assert_int_eq(nnc_size_whole(INFINITY, &v), -1);
  ck_assert_int_eq(nnc_size_whole(2.5, &v), -1);
}
END_TEST

START_TEST(allocation_failure_is_a_status) {
  nnc_status st = {0};
  /* More than any machine's memory: refused with a message, not abort(). */
  void *p = nnc_size_alloc("weight 'big'", INT64_C(1) << 62, 1, &st);
  ck_assert_ptr_null(p);
  ck_assert_msg(strstr(st.msg, "weight 'big' needs 4.0 EiB"), "%s", st.msg);
  p = nnc_size_calloc("x", INT64_C(1) << 62, 4, &st);
  ck_assert_ptr_null(p);
  ck_assert_msg(strstr(st.msg, "overflow"), "%s", st.msg);
  void *q = nnc_size_alloc("x", 4, 4, &st);
  ck_assert_ptr_nonnull(q);
  ck_assert_int_eq(nnc_size_realloc(&q, "x", INT64_C(1) << 61, 2, &st), -1);
  ck_assert_ptr_nonnull(q); /* still the old block */
  free(q);
}
END_TEST

/* The parser reads f32[9223372036854775807,2] as numbers; the graph refuses
 * it as a tensor, before anything sizes a buffer from it. */
START_TEST(graph_refuses_oversized_nodes) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_parse("graph {\n  %0 = input() {name=\"x\"} : f32[9223372036854775807,2]\n}\n", "t.ir", &st);
  ck_assert_ptr_null(g);
  ck_assert_str_eq(st.msg, "t.ir:2:8: error: input: input 'x': shape [9223372036854775807,2] needs 64.0 EiB, more "
                           "than nnc's limit of 1.0 TiB per tensor");
  /* A matmul of two legal operands whose product is not. */
  g = nnc_graph_new();
  nnc_graph_set_loc(g, "dense", "Dense", "m.lua", 3);
  const int64_t xs[] = {1 << 20, 1}, ws[] = {1, 1 << 20};
  int32_t src[2] = {nnc_graph_leaf(g, NNC_OP_INPUT, "x", NNC_F32, 2, xs, &st),
                    nnc_graph_leaf(g, NNC_OP_PARAM, "w", NNC_F32, 2, ws, &st)};
  ck_assert_int_ge(src[1], 0);
  ck_assert_int_eq(nnc_graph_op(g, NNC_OP_MATMUL, src, 2, NULL, &st), -1);
  ck_assert_str_eq(st.msg, "dense (Dense) at m.lua:3: matmul: shape [1048576,1048576] needs 4.0 TiB, more than "
                           "nnc's limit of 1.0 TiB per tensor");
  nnc_graph_free(g);
}
END_TEST

/* Every float attribute the graph holds prints as a number that parses back:
 * inf cannot get in, 1e40 in the text is refused, and the extremes
 * (FLT_MAX, the smallest subnormal) round-trip. */
START_TEST(float_attributes_print_and_parse_back) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  const int64_t v[] = {4};
  int32_t src[4];
  for (int i = 0; i < 4; i++) {
    char name[8] = {'p', (char)('0' + i), 0};
    src[i] = nnc_graph_leaf(g, NNC_OP_PARAM, name, NNC_F32, 1, v, &st);
  }
  nnc_attrs a;
  memset(&a, 0, sizeof a);
  a.eps = INFINITY;
  ck_assert_int_eq(nnc_graph_op(g, NNC_OP_BN_FOLD, src, 4, &a, &st), -1);
  ck_assert_str_eq(st.msg, "bn_fold: attribute eps is inf; it must be a finite number");
  a.eps = NAN;
  ck_assert_int_eq(nnc_graph_op(g, NNC_OP_BN_FOLD, src, 4, &a, &st), -1);
  a.eps = FLT_MAX, a.alpha = 1e-45f;
  int32_t id = nnc_graph_op(g, NNC_OP_BN_FOLD, src, 4, &a, &st);
  ck_assert_int_ge(id, 0);
  ck_assert_int_eq(nnc_graph_add_output(g, "out", id, &st), 0);
  char *text = nnc_graph_to_text(g);
  nnc_graph *back = nnc_graph_parse(text, "t.ir", &st);
  ck_assert_msg(back != NULL, "%s\n%s", st.msg, text);
  ck_assert_float_eq(back->nodes[id].attrs.eps, FLT_MAX);
  ck_assert_float_eq(back->nodes[id].attrs.alpha, 1e-45f);
  char *again = nnc_graph_to_text(back);
  ck_assert_str_eq(text, again);
  free(again);
  /* The same text with a number past FLT_MAX: an error, not inf. */
  char *big = strstr(text, "eps=");
  ck_assert_ptr_nonnull(big);
  char *end = big + 4;
  while (*end && *end != '}' && *end != ',') end++;
  char bad[4096];
  snprintf(bad, sizeof bad, "%.*seps=1e40%s", (int)(big - text), text, end);
  nnc_graph *none = nnc_graph_parse(bad, "t.ir", &st);
  ck_assert_ptr_null(none);
  ck_assert_msg(strstr(st.msg, "eps is out of range for a 32-bit float"), "%s", st.msg);
  free(text);
  nnc_graph_free(back);
  nnc_graph_free(g);
}
END_TEST

TCase *nnc_tcase_size(void) {
  TCase *tc = tcase_create("size");
  tcase_add_test(tc, mul_and_add_detect_overflow);
  tcase_add_test(tc, shape_cap_names_the_tensor);
  tcase_add_test(tc, whole_rejects_what_does_not_convert);
  tcase_add_test(tc, allocation_failure_is_a_status);
  tcase_add_test(tc, graph_refuses_oversized_nodes);
  tcase_add_test(tc, float_attributes_print_and_parse_back);
  return tc;
}
