/* The fuse pass's unit tests that are not IR in, IR out: the --lower spec.
 * The pass itself is tested as text in tests/passes/fuse*.ir (FileCheck). */
#include <string.h>

#include "ir/op.h"
#include "passes/lower.h"
#include "passes/options.h"
#include "tests/passes/suites.h"

/* The --lower spec: parts, defaults, and errors that name what is wrong. */
START_TEST(lower_spec_parsing) {
  nnc_status st = {0};
  nnc_options o = {0};
  ck_assert_int_eq(nnc_lower_parse("conv=cudnn,matmul=cublas", o.lower, &st), 0);
  ck_assert_int_eq(nnc_lower_for_op(&o, NNC_OP_CONV2D_GRAD_KERNEL), NNC_LOWER_CUDNN);
  ck_assert_int_eq(nnc_lower_for_op(&o, NNC_OP_MATMUL), NNC_LOWER_CUBLAS);
  ck_assert_int_eq(nnc_lower_for_op(&o, NNC_OP_BIAS_ADD), NNC_LOWER_NNC);
  ck_assert_int_eq(nnc_lower_parse("matmul=nnc", o.lower, &st), 0);
  ck_assert_int_eq(nnc_lower_for_op(&o, NNC_OP_MATMUL), NNC_LOWER_NNC);
  ck_assert_int_eq(nnc_lower_for_op(&o, NNC_OP_CONV2D), NNC_LOWER_CUDNN);
  ck_assert_int_eq(nnc_lower_parse("pool=cudnn", o.lower, &st), -1);
  ck_assert_msg(strstr(st.msg, "unknown op kind 'pool'"), "%s", st.msg);
  ck_assert_int_eq(nnc_lower_parse("conv=cublas", o.lower, &st), -1);
  ck_assert_msg(strstr(st.msg, "conv cannot be lowered to cublas"), "%s", st.msg);
  ck_assert_int_eq(nnc_lower_parse("matmul=mkl", o.lower, &st), -1);
  ck_assert_msg(strstr(st.msg, "unknown library 'mkl'"), "%s", st.msg);
  ck_assert_int_eq(nnc_lower_parse("conv", o.lower, &st), -1);
  ck_assert_int_eq(nnc_lower_parse("", o.lower, &st), -1);
  /* A failed spec leaves the setting as it was. */
  ck_assert_int_eq(nnc_lower_for_op(&o, NNC_OP_CONV2D), NNC_LOWER_CUDNN);
  nnc_options defaults = {0};
  ck_assert_int_eq(nnc_lower_for_op(&defaults, NNC_OP_CONV2D), NNC_LOWER_NNC);
}
END_TEST

TCase *tcase_fuse(void) {
  TCase *tc = tcase_create("fuse");
  tcase_add_test(tc, lower_spec_parsing);
  return tc;
}
