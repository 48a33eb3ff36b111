/* Philox-4x32-10 against the published test vectors (Random123's
 * kat_vectors), how nnc_philox places (seed, stream, counter) in the block's
 * counter and key, and the distributions drawn from it. */
#include <math.h>
#include <stdint.h>

#include "runtime/rng.h"
#include "tests/runtime/suites.h"

static void expect_words(const uint32_t got[4], const uint32_t want[4], const char *what) {
  for (int i = 0; i < 4; i++)
    ck_assert_msg(got[i] == want[i], "%s: word %d is 0x%08x, want 0x%08x", what, i, (unsigned)got[i],
                  (unsigned)want[i]);
}

START_TEST(test_philox_published_vectors) {
  static const struct {
    uint32_t counter[4], key[2], want[4];
  } vectors[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (int v = 0; v < 3; v++) {
    uint32_t out[4];
    nnc_philox4x32_10(vectors[v].counter, vectors[v].key, out);
    expect_words(out, vectors[v].want, "block");
  }
}
END_TEST

/* nnc_philox(seed, stream, counter) is the block on counter words
 * {counter lo, counter hi, stream, 0} and key {seed lo, seed hi}. */
START_TEST(test_philox_argument_mapping) {
  uint32_t out[4], block[4];
  static const uint32_t zero[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
  nnc_philox(0, 0, 0, out);
  expect_words(out, zero, "nnc_philox(0, 0, 0)");

  const uint32_t c[4] = {0x76543210, 0xfedcba98, 0xdeadbeef, 0};
  const uint32_t k[2] = {0x89abcdef, 0x01234567};
  nnc_philox4x32_10(c, k, block);
  nnc_philox(0x0123456789abcdefull, 0xdeadbeef, 0xfedcba9876543210ull, out);
  expect_words(out, block, "mapping");
  /* The same words worked out by an independent implementation of the rounds. */
  static const uint32_t want[4] = {0x9d9b188f, 0x68dad48c, 0x067d0bfb, 0x2d7c42fe};
  expect_words(out, want, "nnc_philox(0x0123456789abcdef, 0xdeadbeef, 0xfedcba9876543210)");
}
END_TEST

enum { DRAWS = 100000 };

/* Uniform: in [0, 1), multiples of 2^-24, mean 1/2 and variance 1/12 (the
 * standard error of the mean is 0.29/sqrt(N) = 0.0009). */
START_TEST(test_uniform) {
  double sum = 0, sum2 = 0;
  float lo = 1, hi = 0;
  for (int i = 0; i < DRAWS; i++) {
    float u = nnc_rng_uniform(77, 3, (uint64_t)i);
    ck_assert_msg(u >= 0.0f && u < 1.0f, "draw %d is %.9g", i, (double)u);
    ck_assert_msg(ldexpf(u, 24) == floorf(ldexpf(u, 24)), "draw %d is not a multiple of 2^-24", i);
    lo = u < lo ? u : lo;
    hi = u > hi ? u : hi;
    sum += u;
    sum2 += (double)u * u;
  }
  double mean = sum / DRAWS, var = sum2 / DRAWS - mean * mean;
  ck_assert_msg(fabs(mean - 0.5) < 0.005, "mean %.5f", mean);
  ck_assert_msg(fabs(var - 1.0 / 12) < 0.002, "variance %.5f", var);
  ck_assert(lo < 0.001f && hi > 0.999f);
}
END_TEST

/* Normal: mean 0 (standard error 0.0032) and variance 1 (standard error
 * sqrt(2/N) = 0.0045), and about 68.3% within one sigma. */
START_TEST(test_normal) {
  double sum = 0, sum2 = 0;
  int inside = 0;
  for (int i = 0; i < DRAWS; i++) {
    float z = nnc_rng_normal(77, 4, (uint64_t)i);
    ck_assert(isfinite(z));
    sum += z;
    sum2 += (double)z * z;
    inside += fabsf(z) < 1.0f;
  }
  double mean = sum / DRAWS, var = sum2 / DRAWS - mean * mean;
  ck_assert_msg(fabs(mean) < 0.02, "mean %.5f", mean);
  ck_assert_msg(fabs(var - 1) < 0.025, "variance %.5f", var);
  ck_assert_msg(fabs(inside / (double)DRAWS - 0.6827) < 0.01, "within one sigma %.4f", inside / (double)DRAWS);
}
END_TEST

/* A value is a pure function of its arguments, and each argument matters. */
START_TEST(test_draws_depend_on_every_argument) {
  float u = nnc_rng_uniform(1, 2, 3);
  ck_assert(u == nnc_rng_uniform(1, 2, 3));
  ck_assert(u != nnc_rng_uniform(2, 2, 3));
  ck_assert(u != nnc_rng_uniform(1, 3, 3));
  ck_assert(u != nnc_rng_uniform(1, 2, 4));
  ck_assert(u != nnc_rng_uniform(1, 2, 3 + (1ull << 32)));
  ck_assert(u != nnc_rng_uniform(1 + (1ull << 32), 2, 3));
  ck_assert_uint_ne(nnc_rng_stream_of("conv2d/kernel"), nnc_rng_stream_of("conv2d/bias"));
  ck_assert_uint_eq(nnc_rng_stream_of("dense/kernel"), nnc_rng_stream_of("dense/kernel"));
}
END_TEST

TCase *tcase_philox(void) {
  TCase *tc = tcase_create("philox");
  tcase_add_test(tc, test_philox_published_vectors);
  tcase_add_test(tc, test_philox_argument_mapping);
  tcase_add_test(tc, test_uniform);
  tcase_add_test(tc, test_normal);
  tcase_add_test(tc, test_draws_depend_on_every_argument);
  return tc;
}
