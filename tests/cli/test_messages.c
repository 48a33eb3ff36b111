/* Reused layers counted once, misuse of fit's arguments and callbacks put at
 * the script line, and messages that say what was wrong: a string where a
 * number goes, the bad input size, both tensors of a load by order; a batch
 * larger than the data is all of it; --dump-dir is made as mkdir -p. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

static int run_text(const char *text, const char *extra, char **out, char **err) {
  const char *path = nnc_test_write_temp("messages.lua", text);
  char args[2048];
  snprintf(args, sizeof args, "'%s' %s", path, extra ? extra : "");
  return nnc_test_run_cli(args, out, err);
}

static char *expect_ok(const char *text, const char *extra) {
  char *out, *err;
  int rc = run_text(text, extra, &out, &err);
  ck_assert_msg(rc == 0, "exit %d: %s", rc, err);
  free(err);
  return out;
}

/* Exit 1 with `message` in the first line of stderr. */
static void expect_error(const char *text, const char *message) {
  char *out, *err;
  int rc = run_text(text, NULL, &out, &err);
  ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
  char *eol = strchr(err, '\n');
  if (eol) *eol = 0;
  ck_assert_msg(strstr(err, message), "wanted '%s' in: %s", message, err);
  free(out), free(err);
}

/* Dense {5} on 5 features: a 5x5 kernel and 5 biases, 30 in all, however
 * often the layer is added; the saved file holds the same 30 (read by the
 * safetensors header, which gives each tensor's byte range). */
START_TEST(reused_layer_counted_once) {
  const char *path = nnc_test_write_temp("shared.safetensors", "");
  char text[2048];
  snprintf(text, sizeof text,
           "local d = nn.Dense { 5, input_shape = { 5 } }\n"
           "local m = nn.Sequential { d, d }\n"
           "m:add(d)\n"
           "m:summary()\n"
           "print('count', m:count_params())\n"
           "m:compile { optimizer = 'sgd', loss = 'mse' }\n"
           "m:fit(data.zeros { 4, 5 }, data.zeros { 4, 5 }, { verbose = 0 })\n"
           "m:save_weights('%s')\n"
           "local f = io.open('%s', 'rb')\n"
           "local n = string.unpack('<I8', f:read(8))\n"
           "local bytes = 0\n"
           "for a, b in f:read(n):gmatch('\"data_offsets\":%%[(%%d+),(%%d+)%%]') do bytes = bytes + b - a end\n"
           "print('file', bytes // 4)\n"
           "local r = nn.ReLU()\n"
           "local m2 = nn.Sequential { nn.Dense { 3, input_shape = { 4 } }, r, nn.Dense { 7 }, r }\n"
           "m2:summary()\n"
           "print('count2', m2:count_params())\n"
           "local x = nn.Input { 4 }\n"
           "local s = nn.Dense { 4 }\n"
           "print('count3', nn.Model { inputs = x, outputs = s(s(x)) }:count_params())\n",
           path, path);
  char *out = expect_ok(text, NULL);
  ck_assert_msg(strstr(out, "count\t30\n") && strstr(out, "file\t30\n"), "%s", out);
  ck_assert_msg(strstr(out, "Total params: 30\n"), "%s", out);
  ck_assert_msg(strstr(out, "dense (Dense)                (None, 5)                 30        \n"
                            "=================================================================\n"
                            "Total params: 30\n"),
                "the layer is listed more than once:\n%s", out);
  /* 4*3+3 and 3*7+7; the ReLU's two calls give two shapes */
  ck_assert_msg(strstr(out, "count2\t43\n") && strstr(out, "re_lu (ReLU)                 multiple                  0"),
                "%s", out);
  ck_assert_msg(strstr(out, "count3\t20\n"), "%s", out);
  free(out);
  expect_error("local d = nn.Dense { 5 }\n"
               "local m = nn.Sequential { nn.Dense { 3, input_shape = { 4 } }, d, nn.Dense { 7 }, d }\n",
               "messages.lua:1: is called again on an input that needs kernel f32[7,5], but its "
               "first call made it f32[3,5]");
}
END_TEST

#define SETUP                                                                                  \
  "local m = nn.Sequential { nn.Dense { 3, activation = 'softmax', input_shape = { 2 } } }\n" \
  "m:compile { optimizer = 'sgd', loss = 'sparse_categorical_crossentropy' }\n"               \
  "local x = data.tensor { { 1, 2 }, { 3, 4 } }\n"                                             \
  "local y = data.tensor({ 0, 1 }, 'i32')\n"

/* Functions and numbers where fit and its callbacks take tables: each an
 * error at the script's line 5, none from inside nnc's own Lua. */
START_TEST(misuse_named_at_script_line) {
  static const char *const cases[][2] = {
      {"m:fit(x, y, function() end)", "messages.lua:5: fit takes its options as a table like { epochs = ... }, got a function"},
      {"m:fit(x, y, { verbose = 0, callbacks = function() end })", "messages.lua:5: fit: callbacks must be a list"},
      {"m:fit(x, y, { verbose = 0, callbacks = { function() end } })", "messages.lua:5: callbacks[1] is a function"},
      {"m:fit(x, y, { verbose = 0, callbacks = { { set_model = print, on_epoch_end = 1 } } })",
       "messages.lua:5: callbacks[1].on_epoch_end must be a function, got a number"},
      {"m:fit(x, y, { verbose = 0, callbacks = { { set_model = 3, on_epoch_end = print } } })",
       "messages.lua:5: callbacks[1].set_model must be a function, got 3"},
      {"m:fit(function() end, y)", "messages.lua:5: fit: x must be a tensor, got a function"},
      {"m:fit(x, 3)", "messages.lua:5: fit: y must be a tensor, got 3"},
      {"m:predict(x, 3)", "messages.lua:5: predict takes its options as a table like { batch_size = ... }, got 3"},
      {"m:evaluate(x, y, print)", "messages.lua:5: evaluate takes its options as a table"},
      {"nn.Sequential(5)", "messages.lua:5: nn.Sequential takes a list of layers"},
      {"for _ in ipairs(5) do end", "messages.lua:5: attempt to index a number value"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[2048];
    snprintf(text, sizeof text, SETUP "%s\n", cases[i][0]);
    expect_error(text, cases[i][1]);
  }
}
END_TEST

START_TEST(string_where_number_goes) {
  expect_error("nn.Dense { '32', input_shape = { 4 } }\n",
               "messages.lua:1: Dense: units must be a positive integer, got string \"32\"");
  expect_error("nn.SGD { learning_rate = '0.1' }\n", "messages.lua:1: SGD: learning_rate must be a number, got string \"0.1\"");
  expect_error(SETUP "m:fit(x, y, { epochs = '3' })\n",
               "messages.lua:5: fit: epochs must be a non-negative integer, got string \"3\"");
  expect_error("local g = data.ImageDataGenerator {}\n"
               "g:flow(data.zeros { 2, 4, 4, 1 }, { batch_size = '8' })\n",
               "messages.lua:2: flow: batch_size must be a positive integer, got string \"8\"");
  /* a number stays a number */
  expect_error("nn.Dense { 0 }\n", "messages.lua:1: Dense: units must be a positive integer, got 0");
}
END_TEST

START_TEST(bad_input_size_named) {
  expect_error("nn.Sequential { nn.Dense { 3, input_shape = { -4 } } }\n",
               "messages.lua:1: input shape {-4} has a zero, negative or non-integer size at axis 1: -4");
  expect_error("nn.Input { 28, 2.5, 1 }\n",
               "messages.lua:1: input shape {28, 2.5, 1} has a zero, negative or non-integer size at axis 2: 2.5");
}
END_TEST

/* Keras: a batch_size over the number of rows is one batch of all of
 * them. The same losses whether 4 or 10^9 is asked, --dry-run included
 * (which builds the graphs for the batch), and a flow's batches are the
 * whole data too. */
START_TEST(batch_larger_than_data) {
  const char *text =
      "local m = nn.Sequential { nn.Dense { 1000, input_shape = { 100 } }, nn.Dense { 3, activation = 'softmax' } }\n"
      "m:compile { optimizer = 'sgd', loss = 'sparse_categorical_crossentropy' }\n"
      "local w = m:get_weights()\n"
      "local x, y = data.zeros { 4, 100 } + 0.5, data.tensor({ 0, 1, 2, 1 }, 'i32')\n"
      "local function run(bs)\n"
      "  m:set_weights(w)\n"
      "  local h = m:fit(x, y, { epochs = 2, batch_size = bs, verbose = 0, shuffle = false })\n"
      "  local l = m:evaluate(x, y, { batch_size = bs, verbose = 0 })\n"
      "  local p = m:predict(x, { batch_size = bs })\n"
      "  return h.loss and h.loss[2] or 0, l, p:sum()\n"
      "end\n"
      "local a1, a2, a3 = run(4)\n"
      "local b1, b2, b3 = run(1000000000)\n"
      "print(a1 == b1, a2 == b2, a3 == b3)\n"
      "local g = data.ImageDataGenerator {}\n"
      "local it = g:flow(data.zeros { 3, 2, 2, 1 }, data.tensor({ 0, 1, 0 }, 'i32'), { batch_size = 1000000000 })\n"
      "local bx = it:next()\n"
      "print('flow', bx.shape[1], #it)\n"
      "local f = nn.Sequential { nn.Flatten { input_shape = { 2, 2, 1 } }, nn.Dense { 2, activation = 'softmax' } }\n"
      "f:compile { optimizer = 'sgd', loss = 'sparse_categorical_crossentropy' }\n"
      "f:fit(it, { epochs = 1, verbose = 0 })\n";
  char *out = expect_ok(text, NULL);
  ck_assert_msg(!strcmp(out, "true\ttrue\ttrue\nflow\t3\t1\n"), "%s", out);
  free(out);
  out = expect_ok(text, "--dry-run");
  free(out);
}
END_TEST

START_TEST(dump_dir_made) {
  char dir[512], extra[1024];
  snprintf(dir, sizeof dir, "%s.d/a/b", nnc_test_write_temp("dumps.keep", ""));
  snprintf(extra, sizeof extra, "--dry-run --dump-ir=fuse --dump-dir '%s'", dir);
  free(expect_ok(SETUP "m:fit(x, y, { verbose = 0 })\n", extra));
  char *path = nnc_test_dump_path(dir, "train-step", "fuse");
  ck_assert_msg(path != NULL, "no train-step fuse dump in %s", dir);
  /* a file in the way is one clear error naming the flag */
  char *out, *err;
  snprintf(extra, sizeof extra, "--dry-run --dump-dir '%s/x'", path);
  int rc = run_text(SETUP, extra, &out, &err);
  ck_assert_msg(rc == 1 && strstr(err, "nnc: error: --dump-dir: cannot make the folder ") && strstr(err, "Not a directory"),
                "exit %d: %s", rc, err);
  free(out), free(err), free(path);
}
END_TEST

/* A file from another model with other names is loaded by order; a shape
 * that differs names the model's weight and the file's, with both shapes.
 * set_weight says the shape the weight has. */
START_TEST(load_by_order_names_both) {
  const char *path = nnc_test_write_temp("order.safetensors", "");
  char text[2048];
  snprintf(text, sizeof text,
           "local a = nn.Sequential { nn.Dense { 4, input_shape = { 2 } }, nn.Dense { 3 } }\n"
           "a:save_weights('%s')\n"
           "local b = nn.Sequential { nn.Dense { 5, input_shape = { 2 } }, nn.Dense { 3 } }\n"
           "b:load_weights('%s')\n",
           path, path);
  char want[1024];
  snprintf(want, sizeof want,
           "messages.lua:4: %s: loading by order (the names differ): the model's weight #1 'dense_2/kernel:0' is [2,5], "
           "but the file's tensor in that place, 'dense/kernel:0', is [2,4]",
           path);
  expect_error(text, want);
  expect_error("local a = nn.Sequential { nn.Dense { 4, input_shape = { 2 } } }\n"
               "a:set_weight('dense/kernel', data.zeros { 4, 2 })\n",
               "messages.lua:2: weight 'dense/kernel' is f32[2,4] and cannot take a tensor of type f32[4,2]");
}
END_TEST

TCase *tcase_messages(void) {
  TCase *tc = tcase_create("messages");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, reused_layer_counted_once);
  tcase_add_test(tc, misuse_named_at_script_line);
  tcase_add_test(tc, string_where_number_goes);
  tcase_add_test(tc, bad_input_size_named);
  tcase_add_test(tc, batch_larger_than_data);
  tcase_add_test(tc, dump_dir_made);
  tcase_add_test(tc, load_by_order_names_both);
  return tc;
}
