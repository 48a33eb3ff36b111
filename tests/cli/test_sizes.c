/* Sizes a script asks for that no machine holds, or that do not fit the
 * integers and floats they are stored in: each is an error naming the
 * layer, the script line and the shape, with exit status 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

static void expect_error(const char *text, const char *const *fragments) {
  const char *path = nnc_test_write_temp("sizes.lua", text);
  char args[1024], *out, *err;
  snprintf(args, sizeof args, "'%s'", path);
  int rc = nnc_test_run_cli(args, &out, &err);
  ck_assert_msg(rc == 1, "exit status %d, stderr: %s", rc, err);
  for (; *fragments; fragments++)
    ck_assert_msg(strstr(err, *fragments), "expected '%s' in: %s", *fragments, err);
  free(out), free(err);
}

/* 10^12 weights: refused by size before any allocation is tried. */
START_TEST(dense_too_big) {
  const char *want[] = {"dense (Dense) at ", "sizes.lua:1: ", "param 'dense/kernel'", "shape [1000000,1000000]",
                        "needs 3.6 TiB, more than nnc's limit of 1.0 TiB per tensor", NULL};
  expect_error("local m = nn.Sequential{nn.Dense{1000000, input_shape={1000000}}}\nm:summary()\n", want);
}
END_TEST

/* The kernel's element count overflows int64; it used to reach the CPU
 * backend and divide by zero there. */
START_TEST(conv_kernel_count_overflows) {
  const char *want[] = {"conv2d (Conv2D) at ", "sizes.lua:2: ", "shape [1073741824,1073741824,16,4]",
                        "needs 256.0 EiB", NULL};
  expect_error("local k = 1 << 30\n"
               "local m = nn.Sequential{nn.Conv2D{4, {k, k}, padding='same', input_shape={8,8,16}}}\n"
               "m:summary()\n",
               want);
}
END_TEST

/* A kernel of 2^32 is reported as itself, not cut to 32 bits ("0x1"). */
START_TEST(kernel_not_truncated) {
  const char *want[] = {"conv2d (Conv2D) at ", "kernel 4294967296x1 is larger than its input f32[?,8,8,1]", NULL};
  expect_error("local m = nn.Sequential{nn.Conv2D{1, {1 << 32, 1}, input_shape={8,8,1}}}\n", want);
}
END_TEST

START_TEST(int_attribute_out_of_range) {
  const char *want[] = {"max_pooling2d (MaxPooling2D) at ", "sizes.lua:1: ",
                        "4294967296 is out of range (at most 2147483647)", NULL};
  expect_error("local m = nn.Sequential{nn.MaxPooling2D{pool_size=1 << 32, padding='same', input_shape={8,8,1}}}\n",
               want);
}
END_TEST

/* A double past FLT_MAX would become inf in the float attribute, which the
 * text IR then printed and could not read back. */
START_TEST(float_attribute_out_of_range) {
  const char *want[] = {"batch_normalization (BatchNormalization) at ", "sizes.lua:1: ",
                        "eps is 1e+40, outside the range of a 32-bit float", NULL};
  expect_error("local m = nn.Sequential{nn.Dense{4, input_shape={3}}, nn.BatchNormalization{epsilon=1e40}}\n"
               "m:summary()\n",
               want);
}
END_TEST

START_TEST(reshape_target_overflows) {
  const char *want[] = {"reshape (Reshape) at ", "sizes.lua:1: ", "target shape of 3 axes overflows", NULL};
  expect_error("local m = nn.Sequential{nn.Dense{3, input_shape={4}}, nn.Reshape{{1<<40, 1<<40, 1<<40}}}\n", want);
}
END_TEST

TCase *tcase_sizes(void) {
  TCase *tc = tcase_create("sizes");
  tcase_add_test(tc, dense_too_big);
  tcase_add_test(tc, conv_kernel_count_overflows);
  tcase_add_test(tc, kernel_not_truncated);
  tcase_add_test(tc, int_attribute_out_of_range);
  tcase_add_test(tc, float_attribute_out_of_range);
  tcase_add_test(tc, reshape_target_overflows);
  return tc;
}
