/* Keras's callbacks, custom-loop calls and metric names, end to end through
 * scripts. Expected values are worked out from Keras 2's callback code: the
 * order of its events, what each built-in does on which event. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

static int run_text(const char *text, char **out, char **err) {
  const char *path = nnc_test_write_temp("callbacks.lua", text);
  char args[1024];
  snprintf(args, sizeof args, "'%s'", path);
  return nnc_test_run_cli(args, out, err);
}

/* 8 rows of 2 features, 3 classes; a Dense softmax head. */
#define SETUP(optimizer, metrics)                                                                    \
  "local m = nn.Sequential { nn.Dense { 3, activation = 'softmax', input_shape = { 2 } } }\n"      \
  "m:compile { optimizer = " optimizer ", loss = 'sparse_categorical_crossentropy'" metrics " }\n" \
  "local x = data.tensor { {1,2},{3,4},{-1,5},{2,-3},{0,1},{1,0},{2,2},{-2,1} }\n"                 \
  "local y = data.tensor({ 0, 1, 2, 1, 0, 2, 1, 0 }, 'i32')\n"

/* The largest |a - b| over two tensors of one shape, in plain Lua. */
#define MAXDIFF                                                                              \
  "local function maxdiff(a, b)\n"                                                          \
  "  local n = 1 for _, d in ipairs(a.shape) do n = n * d end\n"                            \
  "  local fa, fb, m = a:reshape { n }, b:reshape { n }, 0\n"                                \
  "  for i = 1, n do m = math.max(m, math.abs(fa[i] - fb[i])) end\n"                        \
  "  return m\n"                                                                             \
  "end\n"

static char *expect_ok(const char *text) {
  char *out, *err;
  int rc = run_text(text, &out, &err);
  ck_assert_msg(rc == 0, "%s", err);
  free(err);
  return out;
}

static void expect_error(const char *text, const char *message) {
  char *out, *err;
  int rc = run_text(text, &out, &err);
  ck_assert_msg(rc == 1, "rc %d, %s", rc, err);
  ck_assert_msg(strstr(err, message), "wanted '%s' in: %s", message, err);
  free(out), free(err);
}

/* Keras's order: train_begin, then per epoch epoch_begin, the batches,
 * validation between test_begin and test_end, epoch_end; train_end. */
START_TEST(events_in_keras_order) {
  char *out = expect_ok(SETUP("'sgd'", ", metrics = { 'accuracy' }")
      "local log = {}\n"
      "local cb = {}\n"
      "function cb:on_train_begin(logs) log[#log+1] = 'train_begin' end\n"
      "function cb:on_epoch_begin(e, logs) log[#log+1] = 'epoch_begin:' .. e end\n"
      "function cb:on_train_batch_begin(b, logs) log[#log+1] = 'batch_begin:' .. b end\n"
      "function cb:on_train_batch_end(b, logs) log[#log+1] = string.format('batch_end:%d:%s', b, logs.accuracy ~= nil) end\n"
      "function cb:on_test_begin(logs) log[#log+1] = 'test_begin' end\n"
      "function cb:on_test_end(logs) log[#log+1] = string.format('test_end:%s', logs.loss ~= nil) end\n"
      "function cb:on_epoch_end(e, logs) log[#log+1] = string.format('epoch_end:%d:%s', e, logs.val_accuracy ~= nil) end\n"
      "function cb:on_train_end(logs) log[#log+1] = 'train_end' end\n"
      "m:fit(x, y, { epochs = 2, batch_size = 4, validation_split = 0.25, verbose = 0, callbacks = { cb } })\n"
      "print(table.concat(log, ' '))\n"
      "print(cb.model == m, cb.params.epochs, cb.params.steps, table.concat(cb.params.metrics, ','))\n");
  ck_assert_msg(strstr(out, "train_begin epoch_begin:0 batch_begin:0 batch_end:0:true batch_begin:1 batch_end:1:true "
                            "test_begin test_end:true epoch_end:0:true epoch_begin:1 batch_begin:0 batch_end:0:true "
                            "batch_begin:1 batch_end:1:true test_begin test_end:true epoch_end:1:true train_end\n"),
                "%s", out);
  ck_assert_msg(strstr(out, "true\t2\t2\tloss,accuracy,val_loss,val_accuracy"), "%s", out);
  free(out);
}
END_TEST

/* stop_training after a batch ends the epoch there; on_epoch_end still runs
 * and the history keeps the partial epoch, as Keras. */
START_TEST(stop_training_from_a_batch) {
  char *out = expect_ok(SETUP("'sgd'", "")
      "local batches = 0\n"
      "local cb = { on_train_batch_end = function(self, b) batches = batches + 1\n"
      "  if b == 0 then self.model.stop_training = true end end }\n"
      "local h = m:fit(x, y, { epochs = 5, batch_size = 2, verbose = 0, callbacks = { cb } })\n"
      "print('batches', batches, 'epochs', #h.loss)\n");
  ck_assert_msg(strstr(out, "batches\t1\tepochs\t1"), "%s", out);
  free(out);
}
END_TEST

START_TEST(lambda_callback_and_history) {
  char *out = expect_ok(SETUP("'sgd'", ", metrics = { 'acc' }")
      "local seen = {}\n"
      "local h = m:fit(x, y, { epochs = 3, batch_size = 4, verbose = 0, callbacks = {\n"
      "  nn.LambdaCallback { on_epoch_end = function(epoch, logs) seen[#seen+1] = epoch .. '=' .. string.format('%.6f', logs.loss) end,\n"
      "                      on_batch_end = function(batch, logs) seen[#seen+1] = 'b' .. batch end } } })\n"
      "print(table.concat(seen, ' '))\n"
      "print(string.format('%.6f %.6f %s %s', h.loss[3], h.history.loss[3], tostring(h.accuracy), #h.acc))\n");
  /* the loss logged at epoch 2 is the one the history keeps */
  char l2[32], hist[96];
  const char *third = strstr(out, " 2=");
  ck_assert_msg(third && strstr(out, "b0 b1 0=") && strstr(out, "b0 b1 1=") && strstr(out, "b0 b1 2="), "%s", out);
  sscanf(third + 3, "%31s", l2);
  snprintf(hist, sizeof hist, "%s %s nil 3", l2, l2);
  ck_assert_msg(strstr(out, hist), "wanted '%s' in %s", hist, out);
  free(out);
}
END_TEST

/* metrics = {"acc"} logs acc and val_acc, in the bar too, as Keras does. */
START_TEST(metric_names_as_written) {
  char *out = expect_ok(SETUP("'sgd'", ", metrics = { 'acc' }")
      "local h = m:fit(x, y, { epochs = 1, batch_size = 4, validation_split = 0.25, verbose = 2 })\n"
      "print(h.acc ~= nil, h.val_acc ~= nil, h.accuracy == nil, h.val_accuracy == nil)\n");
  ck_assert_msg(strstr(out, " - acc: ") && strstr(out, " - val_acc: ") && !strstr(out, "accuracy"), "%s", out);
  ck_assert_msg(strstr(out, "true\ttrue\ttrue\ttrue"), "%s", out);
  free(out);
  expect_error(SETUP("'sgd'", ", metrics = { 'acc' }")
               "m:fit(x, y, { epochs = 1, validation_split = 0.25, verbose = 0,\n"
               "  callbacks = { nn.EarlyStopping { monitor = 'val_accuracy' } } })\n",
               "callbacks.lua:5: EarlyStopping monitors 'val_accuracy', which fit does not produce; did you mean "
               "'val_acc'?");
}
END_TEST

START_TEST(bad_callbacks) {
  expect_error(SETUP("'sgd'", "") "m:fit(x, y, { verbose = 0, callbacks = { function() end } })\n",
               "callbacks.lua:5: callbacks[1] is a function; a callback is a table with Keras's methods");
  expect_error(SETUP("'sgd'", "") "m:fit(x, y, { verbose = 0, callbacks = { { patience = 3 } } })\n",
               "callbacks[1] has none of Keras's callback methods (on_train_begin, ");
  expect_error(SETUP("'sgd'", "") "m:fit(x, y, { verbose = 0, callbacks = { { on_epoch_ends = print } } })\n",
               "callbacks[1] has an unknown method 'on_epoch_ends'; did you mean 'on_epoch_end'?");
  expect_error(SETUP("'sgd'", "") "m:fit(x, y, { verbose = 0, callbacks = { { on_predict_end = print } } })\n",
               "nnc's fit does not call on_predict_end");
  expect_error(SETUP("'sgd'", "") "m:fit(x, y, { verbose = 0, callbacks = nn.TerminateOnNaN() })\n",
               "fit: callbacks must be a list of callbacks, as callbacks = { nn.EarlyStopping {...} }");
  expect_error(SETUP("'sgd'", "") "nn.LambdaCallback { on_epoch_edn = print }\n",
               "LambdaCallback got an unknown keyword 'on_epoch_edn'; did you mean 'on_epoch_end'?");
  expect_error(SETUP("'sgd'", "") "nn.EarlyStopping { patience = 2, verbos = 1 }\n",
               "EarlyStopping got an unknown keyword 'verbos'; did you mean 'verbose'?");
  expect_error(SETUP("'sgd'", "") "nn.ReduceLROnPlateau { factor = 2 }\n",
               "ReduceLROnPlateau does not support a factor >= 1.0");
  /* An error inside a callback ends fit with the callback's own line, once. */
  char *out, *err;
  int rc = run_text(SETUP("'sgd'", "")
                    "m:fit(x, y, { epochs = 2, verbose = 0, callbacks = { { on_epoch_end = function(self, e)\n"
                    "  error('boom at ' .. e) end } } })\n",
                    &out, &err);
  ck_assert_int_eq(rc, 1);
  ck_assert_msg(strstr(err, "callbacks.lua:6: boom at 0") && !strstr(err, "callbacks.lua:5: callbacks.lua:6"), "%s",
                err);
  free(out), free(err);
}
END_TEST

/* EarlyStopping's options beyond patience, on a model that never moves
 * (rate 0), so only the first monitored epoch improves. Keras 2.12: wait
 * grows before the improvement test and an improving epoch returns early;
 * with a baseline that is never beaten, wait is not reset by it, so the
 * stop comes one epoch sooner. start_from_epoch ignores the first epochs. */
START_TEST(early_stopping_baseline_start_and_verbose) {
  char *out = expect_ok(SETUP("nn.SGD { learning_rate = 0 }", "")
      "local function run(opts, epochs)\n"
      "  opts.monitor, opts.verbose = 'loss', 1\n"
      "  return #m:fit(x, y, { epochs = epochs, verbose = 0, callbacks = { nn.EarlyStopping(opts) } }).loss\n"
      "end\n"
      "print('plain', run({ patience = 2 }, 10))\n"
      "print('baseline', run({ patience = 2, baseline = 0.0001 }, 10))\n"
      "print('start', run({ patience = 0, start_from_epoch = 4 }, 10))\n");
  ck_assert_msg(strstr(out, "Epoch 3: early stopping\nplain\t3\n"), "%s", out);
  ck_assert_msg(strstr(out, "Epoch 2: early stopping\nbaseline\t2\n"), "%s", out);
  ck_assert_msg(strstr(out, "Epoch 6: early stopping\nstart\t6\n"), "%s", out);
  free(out);
}
END_TEST

START_TEST(terminate_on_nan) {
  char *out = expect_ok(
      "local m = nn.Sequential { nn.Dense { 3, activation = 'relu', input_shape = { 2 } },\n"
      "  nn.Dense { 3, activation = 'softmax' } }\n"
      "m:compile { optimizer = nn.SGD { learning_rate = 1e30 }, loss = 'sparse_categorical_crossentropy' }\n"
      "local x = data.tensor { { 1, 2 }, { 3, 4 }, { -1, 5 }, { 2, -3 } }\n"
      "local y = data.tensor({ 0, 1, 2, 1 }, 'i32')\n"
      "local h = m:fit(x, y, { epochs = 4, batch_size = 2, verbose = 0, callbacks = { nn.TerminateOnNaN() } })\n"
      "print('epochs', #h.loss)\n");
  ck_assert_msg(strstr(out, "Batch ") && strstr(out, ": Invalid loss, terminating training\nepochs\t1\n"), "%s", out);
  free(out);
}
END_TEST

/* The rate is an input of each step: a schedule that sets it to 0 from the
 * second epoch on leaves the weights exactly as the first epoch left them. */
START_TEST(learning_rate_scheduler_changes_the_step) {
  char *out = expect_ok(SETUP("nn.SGD { learning_rate = 0.1 }", "") MAXDIFF
      "local rates = {}\n"
      "local sched = nn.LearningRateScheduler(function(epoch, lr) rates[#rates+1] = lr; return epoch == 0 and 0.1 or 0 end)\n"
      "local w = {}\n"
      "local keep = nn.LambdaCallback { on_epoch_end = function(e) w[e] = m:get_weights()[1] end }\n"
      "local h = m:fit(x, y, { epochs = 3, batch_size = 4, verbose = 0, callbacks = { sched, keep } })\n"
      "local moved0 = maxdiff(w[0], m:get_weights()[1])\n"
      "print(string.format('rates %.4g %.4g %.4g lr %s %s %s same %s', rates[1], rates[2], rates[3],\n"
      "  h.lr[1], h.lr[2], h.lr[3], tostring(maxdiff(w[1], w[2]) == 0 and moved0 == 0)))\n");
  ck_assert_msg(strstr(out, "rates 0.1 0.1 0 lr "), "%s", out);
  ck_assert_msg(strstr(out, " 0.0 0.0 same true") || strstr(out, " 0 0 same true"), "%s", out);
  free(out);
}
END_TEST

/* Keras 2: logs["lr"] is taken before the reduction, so the history shows
 * the rate each epoch ran with; min_delta = 10 makes every epoch after the
 * first a plateau; patience 1 reduces at epochs 1 and 2. */
START_TEST(reduce_lr_on_plateau) {
  char *out = expect_ok(SETUP("nn.SGD { learning_rate = 0.01 }", "")
      "local h = m:fit(x, y, { epochs = 3, batch_size = 8, verbose = 0, callbacks = {\n"
      "  nn.ReduceLROnPlateau { monitor = 'loss', factor = 0.5, patience = 1, min_delta = 10, verbose = 1 } } })\n"
      "print(string.format('lr %.9g %.9g %.9g now %.9g', h.lr[1], h.lr[2], h.lr[3], m.optimizer.learning_rate))\n");
  ck_assert_msg(strstr(out, "Epoch 2: ReduceLROnPlateau reducing learning rate to 0.00499999989."), "%s", out);
  ck_assert_msg(strstr(out, "lr 0.01 0.01 0.00499999989 now 0.00249999994"), "%s", out);
  free(out);
}
END_TEST

/* train_on_batch is fit's step: one step on all rows gives fit's weights bit
 * for bit and fit's loss; test_on_batch gives evaluate's numbers. */
START_TEST(on_batch_calls_match_fit) {
  char *out = expect_ok(MAXDIFF
      "local function make()\n"
      "  local m = nn.Sequential { nn.Dense { 4, activation = 'relu', input_shape = { 2 } },\n"
      "    nn.Dense { 3, activation = 'softmax' } }\n"
      "  m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy', metrics = { 'accuracy' } }\n"
      "  return m\n"
      "end\n"
      "local x = data.tensor { {1,2},{3,4},{-1,5},{2,-3},{0,1},{1,0},{2,2},{-2,1} }\n"
      "local y = data.tensor({ 0, 1, 2, 1, 0, 2, 1, 0 }, 'i32')\n"
      "local a, b = make(), make()\n"
      "b:set_weights(a:get_weights())\n"
      "local h = a:fit(x, y, { epochs = 2, batch_size = 8, shuffle = false, verbose = 0 })\n"
      "local l1, acc1 = b:train_on_batch(x, y)\n"
      "local l2 = b:train_on_batch(x, y)\n"
      "local same = true\n"
      "for i, w in ipairs(a:get_weights()) do same = same and maxdiff(w, b:get_weights()[i]) == 0 end\n"
      "local el, eacc = a:evaluate(x, y, { verbose = 0 })\n"
      "local tl, tacc = a:test_on_batch(x, y)\n"
      "local p = a:predict_on_batch(x)\n"
      "print(same, l1 == h.loss[1], l2 == h.loss[2], acc1 == h.accuracy[1], tl == el, tacc == eacc,\n"
      "  maxdiff(p, a:predict(x)) == 0)\n");
  ck_assert_msg(strstr(out, "true\ttrue\ttrue\ttrue\ttrue\ttrue\ttrue\n"), "%s", out);
  free(out);
}
END_TEST

/* The seed-style scripts in models/ run as written, on Fashion-MNIST here
 * (MNIST may not be on the machine): seed 004's MLP has Keras's parameter
 * count and logs acc; seed 002's loop prints its lines and stops at the
 * target. */
static int run_model(const char *args, char **out, char **err) {
  int rc = nnc_test_run_cli(args, out, err);
  if (rc != 0 && strstr(*err, "dataset-fashion-mnist")) printf("skipped: %s\n", *err);
  return rc;
}

START_TEST(seed_scripts_run) {
  char *out, *err;
  int rc = run_model("models/seed004_mlp.lua --dataset fashion_mnist --dry-run", &out, &err);
  if (rc == 0) ck_assert_msg(strstr(out, "Total params: 1,195,018\n"), "%s", out);
  else ck_assert_msg(strstr(err, "dataset-fashion-mnist"), "%s", err);
  free(out), free(err);
  rc = run_model("models/seed002_loop.lua --dataset fashion_mnist --every 10 --steps 30 --target 0.3 --batch 32",
                 &out, &err);
  if (rc == 0) {
    ck_assert_msg(strncmp(out, "Step: 10, Loss: ", 16) == 0 && strstr(out, ", Accuracy: 0."), "%s", out);
    /* the loop stops at the first evaluation that reaches the target */
    double acc = 0;
    const char *last = out, *p;
    while ((p = strstr(last + 1, "Step: "))) last = p;
    ck_assert_msg(sscanf(strstr(last, "Accuracy: ") + 10, "%lf", &acc) == 1, "%s", out);
    ck_assert_msg(acc >= 0.3 || strstr(last, "Step: 30,"), "%s", out);
  } else {
    ck_assert_msg(strstr(err, "dataset-fashion-mnist"), "%s", err);
  }
  free(out), free(err);
}
END_TEST

/* No recompilation per call: after fit at batch 4, three train_on_batch
 * calls of 4 rows run the same prepared graph (NNC_DEBUG=1 reports each
 * plan once, and the backend's runs of each graph when it is released). */
START_TEST(train_on_batch_reuses_fit_graph) {
  setenv("NNC_DEBUG", "1", 1);
  char *out, *err;
  int rc = run_text(SETUP("'sgd'", "")
                    "m:fit(x:slice(1, 4), y:slice(1, 4), { epochs = 1, batch_size = 4, verbose = 0 })\n"
                    "for i = 1, 3 do m:train_on_batch(x:slice(1, 4), y:slice(1, 4)) end\n",
                    &out, &err);
  unsetenv("NNC_DEBUG");
  ck_assert_msg(rc == 0, "%s", err);
  const char *plan = strstr(err, "plan-memory: ");
  ck_assert_msg(plan && !strstr(plan + 1, "plan-memory: "), "compiled more than once: %s", err);
  ck_assert_msg(strstr(err, "4 runs of a "), "%s", err);
  free(out), free(err);
}
END_TEST

TCase *tcase_callbacks(void) {
  TCase *tc = tcase_create("callbacks");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, events_in_keras_order);
  tcase_add_test(tc, stop_training_from_a_batch);
  tcase_add_test(tc, lambda_callback_and_history);
  tcase_add_test(tc, metric_names_as_written);
  tcase_add_test(tc, bad_callbacks);
  tcase_add_test(tc, early_stopping_baseline_start_and_verbose);
  tcase_add_test(tc, terminate_on_nan);
  tcase_add_test(tc, learning_rate_scheduler_changes_the_step);
  tcase_add_test(tc, reduce_lr_on_plateau);
  tcase_add_test(tc, on_batch_calls_match_fit);
  tcase_add_test(tc, train_on_batch_reuses_fit_graph);
  tcase_add_test(tc, seed_scripts_run);
  return tc;
}
