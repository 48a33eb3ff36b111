/* Dropout draws by the global sample: rank r's rows of a global batch get
 * exactly the mask one process draws for those rows of the whole batch,
 * on the interpreter and on cpu, for even and uneven splits. */
#include <stdlib.h>
#include <string.h>

#include "ir/op.h"
#include "runtime/backend.h"
#include "runtime/collective.h"
#include "tests/mpi/suites.h"
#include "tests/testutil.h"

#define COLS 37 /* not a multiple of cpu's 16 lanes, so a row starts mid-block */

static nnc_graph *dropout_graph(int64_t rows) {
  nnc_status st = {0};
  nnc_graph *g = nnc_graph_new();
  int64_t shape[2] = {rows, COLS};
  int32_t x = nnc_graph_leaf(g, NNC_OP_INPUT, "x", NNC_F32, 2, shape, &st);
  nnc_attrs a;
  memset(&a, 0, sizeof a);
  a.rate = 0.4f, a.stream = 11;
  int32_t d = nnc_graph_op(g, NNC_OP_DROPOUT, &x, 1, &a, &st);
  ck_assert_msg(d >= 0 && nnc_graph_add_output(g, "output", d, &st) == 0, "%s", st.msg);
  return g;
}

/* The dropout of rows [first, first + rows) of a global batch of `global`
 * ones, as one rank of `ranks` runs it (ranks 0: one process). */
static float *run_rows(const nnc_backend *b, int64_t first, int64_t rows, int64_t global, int ranks) {
  nnc_graph *g = dropout_graph(rows);
  float *x = malloc(sizeof(float) * (size_t)(rows * COLS)), *out = malloc(sizeof(float) * (size_t)(rows * COLS));
  for (int64_t i = 0; i < rows * COLS; i++) x[i] = 1.0f;
  void *leaves[2] = {x, NULL};
  nnc_shard shard = {.rank = 1, .ranks = ranks, .first_row = first, .rows = rows, .global_rows = global};
  nnc_run_opts opts = {.training = 1, .seed = 5, .step = 3, .shard = ranks ? &shard : NULL};
  nnc_status st = {0};
  nnc_exec *e = b->prepare(g, nnc_test_options(), &st);
  ck_assert_msg(e && b->run(e, leaves, &opts, &st) == 0, "%s: %s", b->name, st.msg);
  memcpy(out, b->value(e, 1), sizeof(float) * (size_t)(rows * COLS));
  b->release(e);
  nnc_graph_free(g);
  free(x);
  return out;
}

static void check_split(const nnc_backend *b, const int64_t *firsts, int parts, int64_t global) {
  float *whole = run_rows(b, 0, global, global, 0);
  int dropped = 0;
  for (int64_t i = 0; i < global * COLS; i++) dropped += whole[i] == 0.0f;
  ck_assert_msg(dropped > 0 && dropped < global * COLS, "%s: a mask that drops %d", b->name, dropped);
  for (int p = 0; p < parts; p++) {
    int64_t end = p + 1 < parts ? firsts[p + 1] : global;
    float *part = run_rows(b, firsts[p], end - firsts[p], global, parts);
    ck_assert_msg(memcmp(part, whole + firsts[p] * COLS, sizeof(float) * (size_t)((end - firsts[p]) * COLS)) == 0,
                  "%s: rows %lld..%lld of %d parts draw another mask", b->name, (long long)firsts[p],
                  (long long)end - 1, parts);
    free(part);
  }
  free(whole);
}

START_TEST(two_ranks_draw_one_process_masks) {
  const nnc_backend *backends[] = {&nnc_backend_interp, &nnc_backend_cpu};
  const int64_t halves[] = {0, 16}, thirds[] = {0, 10, 21};
  for (int i = 0; i < 2; i++) {
    check_split(backends[i], halves, 2, 32);
    check_split(backends[i], thirds, 3, 32); /* 10, 11, 11 rows, as fit splits 32 over 3 */
  }
}
END_TEST

TCase *tcase_shard_dropout(void) {
  TCase *tc = tcase_create("shard_dropout");
  tcase_add_test(tc, two_ranks_draw_one_process_masks);
  return tc;
}
