/* fit on a flow() iterator, end to end through scripts: the same training
 * as a loop of train_on_batch on the iterator's own batches (the oracle),
 * the same batches whatever the number of workers, threads or backend, the
 * iterator moved on by what fit took, and errors with the script line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

static int run_text(const char *text, const char *flags, char **out, char **err) {
  const char *path = nnc_test_write_temp("flow.lua", text);
  char args[1024];
  snprintf(args, sizeof args, "'%s' %s", path, flags);
  return nnc_test_run_cli(args, out, err);
}

/* 24 images of 6x5x1 with labels 0..2; a flow that augments them. */
#define SETUP(batch)                                                                                           \
  "local t, l = {}, {}\n"                                                                                      \
  "for i = 1, 24 do t[i] = {} l[i] = i % 3 for r = 1, 6 do t[i][r] = {} for c = 1, 5 do\n"                   \
  "  t[i][r][c] = { ((i * 7 + r * 3 + c * (i % 3)) % 11) / 10 } end end end\n"                                 \
  "local x, y = data.tensor(t), data.tensor(l, 'i32')\n"                                                       \
  "local gen = data.ImageDataGenerator { rotation_range = 20, zoom_range = 0.2, horizontal_flip = true }\n"   \
  "local function flow() return gen:flow(x, y, { batch_size = " batch ", seed = 5 }) end\n"                    \
  "local function model()\n"                                                                                   \
  "  local m = nn.Sequential { nn.Flatten { input_shape = { 6, 5, 1 } }, nn.Dense { 8, activation = 'relu' },\n" \
  "    nn.Dense { 3, activation = 'softmax' } }\n"                                                             \
  "  m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy', metrics = { 'accuracy' } }\n"   \
  "  return m\n"                                                                                               \
  "end\n"

static char *expect_ok(const char *text, const char *flags) {
  char *out, *err;
  int rc = run_text(text, flags, &out, &err);
  ck_assert_msg(rc == 0, "%s", err);
  free(err);
  return out;
}

static void expect_error(const char *text, const char *message) {
  char *out, *err;
  int rc = run_text(text, "", &out, &err);
  ck_assert_msg(rc == 1, "rc %d, %s", rc, err);
  ck_assert_msg(strstr(err, message), "wanted '%s' in: %s", message, err);
  free(out), free(err);
}

/* fit(it) trains exactly as train_on_batch does on it:next()'s batches,
 * including the partial last batch of each flow epoch (24 = 10 + 10 + 4). */
START_TEST(fit_equals_train_on_batch) {
  char *out = expect_ok(SETUP("10")
      "local a, b = model(), model()\n"
      "b:set_weights(a:get_weights())\n"
      "a:fit(flow(), { epochs = 2, steps_per_epoch = 4, workers = 2, verbose = 0 })\n"
      "local it = flow()\n"
      "for step = 1, 8 do local xb, yb = it:next() b:train_on_batch(xb, yb) end\n"
      "local wa, wb, worst = a:get_weights(), b:get_weights(), -1\n"
      "for k = 1, #wa do worst = math.max(worst, (wa[k] - wb[k]):abs():max()) end\n"
      "print('worst ' .. worst)\n",
      "");
  ck_assert_msg(strstr(out, "worst 0.0\n"), "%s", out);
  free(out);
}
END_TEST

/* The batches depend on the seed alone: workers, threads and backends give
 * the same losses on one backend and the same images on all. */
START_TEST(same_batches_any_workers) {
  const char *script = SETUP("7")
      "local m, it = model(), flow()\n"
      "local h = m:fit(it, { epochs = 2, workers = nnc.option('workers', 1), verbose = 0 })\n"
      "local xb = it:next()\n"
      "print(string.format('images %.17g', (xb * xb):sum()))\n"
      "print(string.format('loss %.17g %.17g', h.history.loss[1], h.history.loss[2]))\n";
  char *base = expect_ok(script, "--backend cpu --workers 0");
  const char *images = strstr(base, "images ");
  ck_assert_ptr_nonnull(images);
  static const char *const runs[] = {"--backend cpu --workers 1", "--backend cpu --workers 3",
                                     "--backend interp --workers 2"};
  for (int i = 0; i < 3; i++) {
    for (int threads = 1; threads <= 2; threads++) {
      setenv("NNC_CPU_THREADS", threads == 1 ? "1" : "2", 1);
      char *out = expect_ok(script, runs[i]);
      unsetenv("NNC_CPU_THREADS");
      const char *got = strstr(out, "images ");
      ck_assert_ptr_nonnull(got);
      ck_assert_msg(strncmp(got, images, strcspn(images, "\n")) == 0, "%s: %s vs %s", runs[i], got, images);
      if (strstr(runs[i], "cpu") && threads == 2)
        ck_assert_msg(strcmp(strstr(out, "loss "), strstr(base, "loss ")) == 0, "%s: %s vs %s", runs[i], out, base);
      free(out);
    }
  }
  free(base);
}
END_TEST

/* fit takes its batches from where the iterator stands and moves it on. */
START_TEST(iterator_moves_on) {
  char *out = expect_ok(SETUP("10")
      "local it, fresh = flow(), flow()\n"
      "it:next()\n"
      "model():fit(it, { epochs = 2, steps_per_epoch = 2, verbose = 0 })\n"
      "local xa, ya = it:next()\n"
      "local xb, yb\n"
      "for k = 1, 6 do xb, yb = fresh:next() end\n"
      "print('same ' .. tostring((xa - xb):abs():max() == 0 and (ya - yb):abs():max() == 0))\n",
      "");
  ck_assert_msg(strstr(out, "same true\n"), "%s", out);
  free(out);
}
END_TEST

START_TEST(flow_errors) {
  expect_error(SETUP("4")
      "local m = nn.Sequential { nn.Flatten { input_shape = { 28, 28, 1 } }, nn.Dense { 3, activation = 'softmax' } }\n"
      "m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy' }\n"
      "m:fit(flow(), { epochs = 1 })\n",
      "flow.lua:15: fit (the iterator's batches): the model takes x of type f32[?,28,28,1], got f32[24,6,5,1]");
  expect_error(SETUP("4") "model():fit(gen:flow(x), { epochs = 1 })\n",
               "flow.lua:13: fit: the iterator has no labels; make it with gen:flow(x, y, {...})");
  expect_error(SETUP("4") "model():fit(flow(), { epochs = 1, batch_size = 8 })\n",
               "fit: batch_size cannot be used with an iterator; set it in gen:flow(x, y, {...})");
  expect_error(SETUP("4") "model():fit(flow(), { epochs = 1, steps_per_epoh = 8 })\n",
               "fit got an unknown keyword 'steps_per_epoh'; did you mean 'steps_per_epoch'?");
  expect_error(SETUP("4")
      "local m = model() m:compile { optimizer = 'adam', loss = 'categorical_crossentropy' }\n"
      "m:fit(flow(), { epochs = 1 })\n",
      "fit (the iterator's labels): categorical_crossentropy takes targets shaped like the output");
}
END_TEST

TCase *tcase_fit_flow(void) {
  TCase *tc = tcase_create("fit_flow");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, fit_equals_train_on_batch);
  tcase_add_test(tc, same_batches_any_workers);
  tcase_add_test(tc, iterator_moves_on);
  tcase_add_test(tc, flow_errors);
  return tc;
}
