/* NaN and infinity as Keras has them (training goes on; TerminateOnNaN
 * stops), traced to their source: the warning names the op that first made
 * a value that is not finite, by its layer and script line, on the weights
 * the step started from, and says when the batch or a weight already held
 * one; fit warns about data that holds such values before it trains. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

static const char *const backends[] = {"cpu", "interp"};

static int run_text(const char *text, const char *flags, char **out, char **err) {
  const char *path = nnc_test_write_temp("nan.lua", text);
  char args[1024];
  snprintf(args, sizeof args, "'%s' %s", path, flags);
  return nnc_test_run_cli(args, out, err);
}

static int count(const char *text, const char *what) {
  int n = 0;
  for (const char *p = strstr(text, what); p; p = strstr(p + 1, what)) n++;
  return n;
}

/* A two-layer model, each layer on its own line (2 and 3), trained in order. */
#define MODEL(activation)                                                                                   \
  "local m = nn.Sequential {\n"                                                                             \
  "  nn.Dense { 4, activation = '" activation "', input_shape = { 3 } },\n"                                 \
  "  nn.Dense { 2, activation = 'softmax' } }\n"                                                            \
  "m:compile { optimizer = nn.SGD { learning_rate = 0.01 }, loss = 'sparse_categorical_crossentropy' }\n" \
  "local y = data.tensor({ 0, 1, 0, 1 }, 'i32')\n"
#define FIT(callbacks)                                                                                      \
  "local h = m:fit(x, y, { epochs = 3, batch_size = 2, shuffle = false, verbose = 2" callbacks " })\n" \
  "print('epochs', #h.loss)\n"

/* Runs text on backend `be` (with env NNC_DEBUG=debug when not NULL) and
 * expects it to train to its end. */
static void run_ok(const char *text, const char *be, const char *debug, char **out, char **err) {
  char flags[64];
  snprintf(flags, sizeof flags, "--backend %s", be);
  if (debug) setenv("NNC_DEBUG", debug, 1);
  int rc = run_text(text, flags, out, err);
  unsetenv("NNC_DEBUG");
  ck_assert_msg(rc == 0, "%s: %s", be, *err);
}

/* The step's warning, checked to be the only one of its kind. */
static const char *step_warning(const char *err, const char *event) {
  const char *w = strstr(err, event);
  ck_assert_msg(w, "wanted '%s' in: %s", event, err);
  ck_assert_msg(count(err, "; the first value that is not finite is ") == 1, "warned more than once: %s", err);
  return w;
}

/* Huge weights put in by set_weights: the second Dense's matmul overflows
 * (line 3), from finite operands; the loss is nan at every step after, and
 * the warning comes once. */
START_TEST(overflow_named_at_its_layer) {
  char *out, *err;
  run_ok(MODEL("relu") "local w = m:get_weights()\n"
                       "w[1] = data.zeros { 3, 4 } + 1\n"
                       "w[3] = data.zeros { 4, 2 } + 1e30\n"
                       "m:set_weights(w)\n"
                       "local x = data.zeros { 4, 3 } + 1e10\n" FIT(""),
         backends[_i], NULL, &out, &err);
  const char *w = step_warning(err, "warning: the loss became nan at step 1; the first value that is not finite is "
                                    "dense_1 (Dense) at ");
  ck_assert_msg(strstr(w, "nan.lua:3 (%") && strstr(w, " = matmul in the forward pass, element 1 is inf), computed "
                                                         "from finite operands\n"),
                "%s", err);
  ck_assert_msg(strstr(out, "epochs\t3\n") && count(out, "loss: nan") == 3, "%s", out);
  free(out), free(err);
}
END_TEST

/* A huge input overflows the first Dense (line 2). */
START_TEST(huge_input_named_at_its_layer) {
  char *out, *err;
  run_ok(MODEL("relu") "local w = m:get_weights()\n"
                       "w[1] = data.zeros { 3, 4 } + 1\n"
                       "m:set_weights(w)\n"
                       "local x = data.tensor { { 1, 2, 3 }, { 1, 1, 1 }, { 3e38, 3e38, 3e38 }, { 1, 1, 1 } }\n" FIT(""),
         backends[_i], NULL, &out, &err);
  const char *w = step_warning(err, "warning: the loss became nan at step 2; the first value that is not finite is "
                                    "dense (Dense) at ");
  ck_assert_msg(strstr(w, "nan.lua:2 (%") && strstr(w, " = matmul in the forward pass, element 1 is inf), computed "
                                                         "from finite operands\n"),
                "%s", err);
  ck_assert_msg(strstr(out, "epochs\t3\n"), "%s", out);
  free(out), free(err);
}
END_TEST

/* NaN in x with ReLU: the loss stays finite while the gradient turns the
 * first kernel into nan. fit says so before training; NNC_DEBUG=nan names
 * the op that first made nan and the batch row that held it. */
START_TEST(nan_input_with_relu) {
  const char *text = MODEL("relu") "local x = data.tensor { { 1, 2, 3 }, { 0/0, 1, 1 }, { 1, 1, 1 }, { 2, 2, 2 } }\n"
      FIT("") "print('kernel', m:get_weights()[1]:abs():max())\n";
  char *out, *err;
  run_ok(text, backends[_i], NULL, &out, &err);
  ck_assert_msg(strstr(err, "warning: fit's x holds nan at [2, 1] (1-based); training goes on"), "%s", err);
  ck_assert_int_eq(count(err, "warning:"), 1);
  ck_assert_msg(strstr(out, "epochs\t3\n") && (strstr(out, "kernel\tnan") || strstr(out, "kernel\t-nan")), "%s",
                out);
  free(out), free(err);
  run_ok(text, backends[_i], "nan", &out, &err);
  const char *w = step_warning(err, "warning: NNC_DEBUG=nan saw a value that is not finite at step 1; the first value "
                                    "that is not finite is dense (Dense) at ");
  ck_assert_msg(strstr(w, "nan.lua:2 (%") && strstr(w, " = matmul in the forward pass, element 5 is nan), computed "
                                                         "from the batch's x, which already held nan at row 2, "
                                                         "element 1 (1-based, in the batch)\n"),
                "%s", err);
  ck_assert_msg(strstr(out, "epochs\t3\n"), "%s", out);
  free(out), free(err);
}
END_TEST

/* A gradient that overflows while the loss stays finite: the weights turn
 * into -inf, which ReLU then hides from the loss; NNC_DEBUG=nan names the
 * backward pass's matmul (the cpu backend fuses it with relu_grad and sees
 * only the latter; the interpreter's run names the matmul). */
START_TEST(backward_overflow_named_under_debug) {
  char *out, *err;
  run_ok(MODEL("relu") "local w = m:get_weights()\n"
                       "w[1] = data.zeros { 3, 4 } + 1\n"
                       "w[3] = data.tensor { { 3e38, -3e38 }, { 3e38, -3e38 }, { 3e38, -3e38 }, { 3e38, -3e38 } }\n"
                       "m:set_weights(w)\n"
                       "local x = data.zeros { 4, 3 } + 1e-30\n"
                       "y = data.tensor({ 1, 1, 1, 1 }, 'i32')\n"
                       "local h = m:fit(x, y, { epochs = 2, batch_size = 1, shuffle = false, verbose = 0 })\n"
                       "print('epochs', #h.loss, h.loss[2], m:get_weights()[1]:max())\n",
         backends[_i], NULL, &out, &err);
  ck_assert_msg(!strstr(err, "warning"), "%s", err);
  ck_assert_msg(strstr(out, "epochs\t2\t") && strstr(out, "\t-inf\n"), "%s", out);
  free(out), free(err);
  run_ok(MODEL("relu") "local w = m:get_weights()\n"
                       "w[1] = data.zeros { 3, 4 } + 1\n"
                       "w[3] = data.tensor { { 3e38, -3e38 }, { 3e38, -3e38 }, { 3e38, -3e38 }, { 3e38, -3e38 } }\n"
                       "m:set_weights(w)\n"
                       "local x = data.zeros { 4, 3 } + 1e-30\n"
                       "y = data.tensor({ 1, 1, 1, 1 }, 'i32')\n"
                       "local h = m:fit(x, y, { epochs = 2, batch_size = 1, shuffle = false, verbose = 0 })\n",
         backends[_i], "nan", &out, &err);
  const char *w = step_warning(err, "warning: NNC_DEBUG=nan saw a value that is not finite at step 1; the first value "
                                    "that is not finite is dense_1 (Dense) at ");
  ck_assert_msg(strstr(w, "nan.lua:3 (%") && strstr(w, " = matmul in the backward pass, element 1 is inf), computed "
                                                         "from finite operands\n"),
                "%s", err);
  free(out), free(err);
}
END_TEST

/* Without ReLU the nan reaches the loss: the step's warning says the batch
 * held it; a weight that holds nan is named as the weight. */
START_TEST(nan_held_by_the_batch_or_a_weight) {
  char *out, *err;
  run_ok(MODEL("tanh") "local x = data.tensor { { 1, 2, 3 }, { 1, 1, 1 }, { 1, 1, 1 }, { 2, 0/0, 2 } }\n" FIT(""),
         backends[_i], NULL, &out, &err);
  const char *w = step_warning(err, "warning: the loss became nan at step 2; the first value that is not finite is "
                                    "dense (Dense) at ");
  ck_assert_msg(strstr(w, "computed from the batch's x, which already held nan at row 2, element 2"), "%s", err);
  free(out), free(err);
  run_ok(MODEL("tanh") "local w = m:get_weights()\n"
                       "w[4] = data.tensor { 0, 1/0 }\n"
                       "m:set_weights(w)\n"
                       "local x = data.zeros { 4, 3 }\n" FIT(""),
         backends[_i], NULL, &out, &err);
  w = step_warning(err, "warning: the loss became nan at step 1; the first value that is not finite is dense_1 "
                        "(Dense) at ");
  ck_assert_msg(strstr(w, "nan.lua:3 (%") && strstr(w, " = bias_add in the forward pass, element 2 is inf), computed "
                                                         "from the weight 'dense_1/bias', which already held inf "
                                                         "before the step (element 2)\n"),
                "%s", err);
  free(out), free(err);
}
END_TEST

/* TerminateOnNaN still stops at the first batch whose loss is nan. */
START_TEST(terminate_on_nan_stops) {
  char *out, *err;
  run_ok(MODEL("relu") "local w = m:get_weights()\n"
                       "w[1] = data.zeros { 3, 4 } + 1\n"
                       "w[3] = data.zeros { 4, 2 } + 1e30\n"
                       "m:set_weights(w)\n"
                       "local x = data.zeros { 4, 3 } + 1e10\n" FIT(", callbacks = { nn.TerminateOnNaN() }"),
         backends[_i], NULL, &out, &err);
  step_warning(err, "warning: the loss became nan at step 1; the first value that is not finite is dense_1 ");
  ck_assert_msg(strstr(out, "Batch 0: Invalid loss, terminating training\n") && strstr(out, "epochs\t1\n"), "%s",
                out);
  free(out), free(err);
}
END_TEST

/* Validation data and float labels are checked too, each once. */
START_TEST(data_checked_once_per_fit) {
  char *out, *err;
  run_ok("local m = nn.Sequential { nn.Dense { 2, activation = 'softmax', input_shape = { 3 } } }\n"
         "m:compile { optimizer = 'sgd', loss = 'categorical_crossentropy' }\n"
         "local x = data.zeros { 4, 3 }\n"
         "local y = data.tensor { { 1, 0 }, { 0, 1 }, { 1, 1/0 }, { 0, 1 } }\n"
         "local vx = data.tensor { { 1, 2, -1/0 } }\n"
         "local h = m:fit(x, y, { epochs = 2, verbose = 0, validation_data = { vx, data.tensor { { 0, 1 } } } })\n"
         "print('epochs', #h.loss)\n",
         "cpu", NULL, &out, &err);
  ck_assert_msg(strstr(err, "warning: fit's y holds inf at [3, 2] (1-based)"), "%s", err);
  ck_assert_msg(strstr(err, "warning: fit's validation_data x holds -inf at [1, 3] (1-based)"), "%s", err);
  ck_assert_msg(count(err, "warning: fit's") == 2, "%s", err);
  ck_assert_msg(strstr(out, "epochs\t2\n"), "%s", out);
  free(out), free(err);
}
END_TEST

/* A generator's batches are checked as they come, once per fit. */
START_TEST(generator_batches_checked) {
  char *out, *err;
  run_ok("local m = nn.Sequential { nn.Flatten { input_shape = { 2, 2, 1 } }, nn.Dense { 2, activation = 'relu' } }\n"
         "m:compile { optimizer = 'sgd', loss = 'mse' }\n"
         "local t = {}\n"
         "for i = 1, 6 do t[i] = { { { 0 }, { 0 } }, { { i == 5 and 0/0 or 1 }, { 0 } } } end\n"
         "local x = data.tensor(t)\n"
         "local it = data.ImageDataGenerator {}:flow(x, data.zeros { 6, 2 }, { batch_size = 2, shuffle = false })\n"
         "local h = m:fit(it, { epochs = 2, steps_per_epoch = 3, verbose = 0 })\n"
         "print('epochs', #h.loss)\n",
         "cpu", NULL, &out, &err);
  ck_assert_msg(strstr(err, "warning: the batch of step 3 from fit's generator holds nan in x at row 1, element 3 "
                            "(1-based, in the batch)"),
                "%s", err);
  ck_assert_int_eq(count(err, "warning:"), 1);
  ck_assert_msg(strstr(out, "epochs\t2\n"), "%s", out);
  free(out), free(err);
}
END_TEST

/* cuda-emu keeps the weights on its device: the warning says why it cannot
 * name the op; NNC_DEBUG=nan keeps them on the host, names the op as the
 * cpu backend does, and trains to the same numbers as without it. */
START_TEST(device_backend_under_debug_nan) {
  const char *overflow = MODEL("relu") "local w = m:get_weights()\n"
                                       "w[1] = data.zeros { 3, 4 } + 1\n"
                                       "w[3] = data.zeros { 4, 2 } + 1e30\n"
                                       "m:set_weights(w)\n"
                                       "local x = data.zeros { 4, 3 } + 1e10\n" FIT("");
  char *out, *err;
  run_ok(overflow, "cuda-emu", NULL, &out, &err);
  step_warning(err, "warning: the loss became nan at step 1; the first value that is not finite is unknown: the "
                    "cuda-emu backend keeps the weights on its device");
  free(out), free(err);
  run_ok(overflow, "cuda-emu", "nan", &out, &err);
  const char *w = step_warning(err, "warning: the loss became nan at step 1; the first value that is not finite is "
                                    "dense_1 (Dense) at ");
  ck_assert_msg(strstr(w, "nan.lua:3 (%") && strstr(w, " = matmul in the forward pass"), "%s", err);
  free(out), free(err);
  const char *finite = MODEL("relu") "local x = data.tensor { { 1, 2, 3 }, { 3, 1, 1 }, { 1, 0, 1 }, { 2, 2, 0 } }\n"
      "local h = m:fit(x, y, { epochs = 3, batch_size = 2, shuffle = false, verbose = 0 })\n"
      "print(string.format('%a %a %a', h.loss[1], h.loss[2], h.loss[3]))\n";
  char *plain;
  run_ok(finite, "cuda-emu", NULL, &plain, &err);
  free(err);
  run_ok(finite, "cuda-emu", "nan", &out, &err);
  ck_assert_str_eq(out, plain);
  ck_assert_msg(!strstr(err, "warning"), "%s", err);
  free(out), free(err), free(plain);
}
END_TEST

TCase *tcase_nan(void) {
  TCase *tc = tcase_create("nan");
  tcase_set_timeout(tc, 300);
  int n = (int)(sizeof backends / sizeof backends[0]);
  tcase_add_loop_test(tc, overflow_named_at_its_layer, 0, n);
  tcase_add_loop_test(tc, huge_input_named_at_its_layer, 0, n);
  tcase_add_loop_test(tc, nan_input_with_relu, 0, n);
  tcase_add_loop_test(tc, nan_held_by_the_batch_or_a_weight, 0, n);
  tcase_add_loop_test(tc, backward_overflow_named_under_debug, 0, n);
  tcase_add_loop_test(tc, terminate_on_nan_stops, 0, n);
  tcase_add_test(tc, data_checked_once_per_fit);
  tcase_add_test(tc, generator_batches_checked);
  tcase_add_test(tc, device_backend_under_debug_nan);
  return tc;
}
