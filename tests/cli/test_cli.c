/* The command line end to end: golden summaries of the shipped models, and
 * every kind of bad input giving a clear message and exit status 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ir/text.h"
#include "passes/pass.h"
#include "tests/testutil.h"

/* Runs nnc on a script written from `text`; returns the exit status. */
static int run_script(const char *text, const char *extra, char **out, char **err) {
  const char *path = nnc_test_write_temp("model.lua", text);
  char args[1024];
  snprintf(args, sizeof args, "'%s' %s", path, extra ? extra : "");
  return nnc_test_run_cli(args, out, err);
}

/* Asserts that a script fails with status 1 and every fragment in its message. */
static void expect_error(const char *text, const char *const *fragments) {
  char *out, *err;
  int rc = run_script(text, NULL, &out, &err);
  ck_assert_msg(rc == 1, "exit status %d, stderr: %s", rc, err);
  for (; *fragments; fragments++)
    ck_assert_msg(strstr(err, *fragments), "expected '%s' in: %s", *fragments, err);
  ck_assert_msg(!strstr(err, "stack traceback"), "traceback in: %s", err);
  free(out), free(err);
}

static void check_golden_summary(const char *model) {
  char args[512], golden_path[512];
  snprintf(args, sizeof args, "models/%s.lua --dry-run", model);
  snprintf(golden_path, sizeof golden_path, "%s/tests/cli/golden/%s.summary", NNC_SOURCE_DIR, model);
  char *out, *err, *golden = nnc_test_read_file(golden_path);
  ck_assert_ptr_nonnull(golden);
  int rc = nnc_test_run_cli(args, &out, &err);
  if (rc != 0 && strstr(err, "dataset-fashion-mnist")) {
    printf("skipped %s summary: Fashion-MNIST is not installed (%s)\n", model, err);
  } else {
    ck_assert_msg(rc == 0, "%s: exit %d: %s", model, rc, err);
    ck_assert_msg(strncmp(out, golden, strlen(golden)) == 0, "%s summary differs:\n%s\nwanted:\n%s", model,
                  out, golden);
  }
  free(out), free(err), free(golden);
}

START_TEST(summary_vgg) { check_golden_summary("vgg_fashion"); }
END_TEST
START_TEST(summary_mlp) { check_golden_summary("mlp"); }
END_TEST
START_TEST(summary_cnn) { check_golden_summary("cnn"); }
END_TEST

START_TEST(summary_functional) {
  char *out, *err;
  int rc = run_script("local inputs = nn.Input { 28, 28, 1 }\n"
                      "local x = nn.Conv2D { 32, 3, padding = 'same', activation = 'relu' }(inputs)\n"
                      "x = nn.MaxPool2D { 2 }(x)\n"
                      "local outputs = nn.Dense { 10, activation = 'softmax' }(nn.Flatten()(x))\n"
                      "nn.Model { inputs = inputs, outputs = outputs }:summary()\n",
                      NULL, &out, &err);
  ck_assert_msg(rc == 0, "%s", err);
  const char *want =
      "Model: \"model\"\n"
      "_________________________________________________________________\n"
      "Layer (type)                 Output Shape              Param #   \n"
      "=================================================================\n"
      "input_1 (InputLayer)         [(None, 28, 28, 1)]       0         \n"
      "_________________________________________________________________\n"
      "conv2d (Conv2D)              (None, 28, 28, 32)        320       \n"
      "_________________________________________________________________\n"
      "max_pooling2d (MaxPooling2D) (None, 14, 14, 32)        0         \n"
      "_________________________________________________________________\n"
      "flatten (Flatten)            (None, 6272)              0         \n"
      "_________________________________________________________________\n"
      "dense (Dense)                (None, 10)                62730     \n"
      "=================================================================\n"
      "Total params: 63,050\n"
      "Trainable params: 63,050\n"
      "Non-trainable params: 0\n"
      "_________________________________________________________________\n";
  ck_assert_str_eq(out, want);
  free(out), free(err);
}
END_TEST

/* models/bn_cnn.lua: Conv2D(32)+BN+Conv2D(64)+BN+Dense(64)+BN+Dense(10) on
 * 28x28x1; Keras counts each BatchNormalization's moving statistics (2 x
 * channels) as non-trainable: 2 x (32 + 64 + 64) = 320. */
START_TEST(summary_batch_norm_cnn) {
  char *out, *err;
  ck_assert_int_eq(nnc_test_run_cli("models/bn_cnn.lua --dry-run", &out, &err), 0);
  ck_assert_msg(strstr(out, "Total params: 220,874\nTrainable params: 220,554\nNon-trainable params: 320\n"), "%s", out);
  ck_assert_msg(strstr(out, "batch_normalization_1 (Batch (None, 14, 14, 64)        256"), "%s", out);
  free(out), free(err);
}
END_TEST

/* Keras spellings: keywords for positional entries, :add, aliases, pairs. */
START_TEST(keras_spellings) {
  char *out, *err;
  int rc = run_script("local m = nn.Sequential()\n"
                      "m:add(nn.Conv2D { filters = 8, kernel_size = { 3, 2 }, strides = { 2, 1 }, input_shape = { 9, 7, 3 } })\n"
                      "m:add(nn.AveragePooling2D { pool_size = 2, padding = 'same' })\n"
                      "m:add(nn.Reshape { { -1, 8 } })\n"
                      "m:add(nn.Dense { units = 4, name = 'head' })\n"
                      "m:add(nn.Dropout { rate = 0.25 })\n"
                      "m:add(nn.Activation('tanh'))\n"
                      "print(m:count_params())\n",
                      NULL, &out, &err);
  ck_assert_msg(rc == 0, "%s", err);
  /* conv: 3*2*3*8 + 8 = 152; dense: 8*4 + 4 = 36 */
  ck_assert_str_eq(out, "188\n");
  free(out), free(err);
}
END_TEST

START_TEST(conv_on_rank2_input) {
  expect_error("local m = nn.Sequential {\n"
               "  nn.Dense { 32, input_shape = { 784 } },\n"
               "  nn.Conv2D { 8, 3 },\n"
               "}\n",
               (const char *[]){"conv2d (Conv2D) at ", "model.lua:3: ", "expects rank-4 input [N,H,W,C], got f32[?,32]",
                                NULL});
}
END_TEST

START_TEST(unknown_layer) {
  expect_error("local m = nn.Sequential {\n  nn.Conv3D { 8, 3 },\n}\n",
               (const char *[]){"model.lua:2: ", "unknown layer or function nn.Conv3D", "did you mean 'Conv2D'", NULL});
}
END_TEST

START_TEST(unknown_activation) {
  expect_error("local d = nn.Dense { 8, activation = 'relo' }\n",
               (const char *[]){"model.lua:1: ", "unknown activation 'relo'", "did you mean 'relu'", NULL});
}
END_TEST

START_TEST(unknown_keyword) {
  expect_error("local d = nn.Dense { 8, activaton = 'relu' }\n",
               (const char *[]){"model.lua:1: ", "unknown keyword 'activaton'", "did you mean 'activation'", NULL});
}
END_TEST

/* Every constructor family and call that takes options names an unknown one,
 * the closest valid name and the valid ones (an option is never dropped). */
static const struct {
  const char *script;
  const char *fragments[4];
} unknown_options[] = {
    {"nn.Conv2D { 8, 3, stride = 2 }\n", {"Conv2D got an unknown keyword 'stride'", "did you mean 'strides'", "(valid: activation, "}},
    {"nn.MaxPool2D { 2, pading = 'same' }\n", {"MaxPooling2D got an unknown keyword 'pading'", "(valid: input_shape, name, padding, "}},
    {"nn.Dropout { 0.5, noise_shape = 1 }\n", {"Dropout got an unknown keyword 'noise_shape'", "(valid: input_shape, name, rate, seed, trainable)"}},
    {"nn.Flatten { data_format = 'x' }\n", {"Flatten got an unknown keyword 'data_format'", "(valid: input_shape, name, trainable)"}},
    {"nn.Adam { learning_rate = 0.1, amsgard = true }\n", {"Adam got an unknown keyword 'amsgard'", "did you mean 'amsgrad'", "(valid: amsgrad, beta_1, beta_2, epsilon, learning_rate, lr)"}},
    {"nn.RMSprop { centred = true }\n", {"RMSprop got an unknown keyword 'centred'", "did you mean 'centered'", "(valid: centered, epsilon, learning_rate, lr, momentum, rho)"}},
    {"nn.SGD { nesterof = true }\n", {"SGD got an unknown keyword 'nesterof'", "did you mean 'nesterov'", "(valid: learning_rate, lr, momentum, nesterov)"}},
    {"nn.EarlyStopping { patiense = 3 }\n", {"EarlyStopping got an unknown keyword 'patiense'", "did you mean 'patience'", "(valid: "}},
    {"nn.LambdaCallback { on_epoch_ends = print }\n", {"LambdaCallback got an unknown keyword 'on_epoch_ends'", "did you mean 'on_epoch_end'", "(valid: on_"}},
    {"nn.ReduceLROnPlateau { patince = 2 }\n", {"ReduceLROnPlateau got an unknown keyword 'patince'", "(valid: "}},
    {"nn.BatchNormalization { momentom = 0.9 }\n", {"BatchNormalization got an unknown keyword 'momentom'", "did you mean 'momentum'", "(valid: axis, beta_initializer, center, "}},
};

START_TEST(unknown_option_in_each_constructor) {
  const char *fragments[6] = {"model.lua:1: "};
  for (int i = 0; i < 4 && unknown_options[_i].fragments[i]; i++) fragments[i + 1] = unknown_options[_i].fragments[i];
  expect_error(unknown_options[_i].script, fragments);
}
END_TEST

/* Keras's positional learning rate: Adam(0.001), SGD(0.1), RMSprop(0.01). */
START_TEST(positional_learning_rate) {
  char *out, *err;
  int rc = run_script("print(nn.Adam(0.005).learning_rate, nn.SGD(0.1).learning_rate, nn.RMSprop(0.01).learning_rate,\n"
                      "  nn.Adam().learning_rate, nn.Adam { lr = 0.002 }.learning_rate)\n",
                      NULL, &out, &err);
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_str_eq(out, "0.005\t0.1\t0.01\t0.001\t0.002\n");
  free(out), free(err);
}
END_TEST

static const char *small_model =
    "local m = nn.Sequential { nn.Flatten { input_shape = { 4, 4, 1 } }, nn.Dense { 2, activation = 'softmax' } }\n";

START_TEST(unknown_optimizer) {
  char text[1024];
  snprintf(text, sizeof text, "%sm:compile { optimizer = 'adma', loss = 'mse' }\n", small_model);
  expect_error(text, (const char *[]){"model.lua:2: ", "unknown optimizer 'adma'", "did you mean 'adam'", NULL});
}
END_TEST

START_TEST(unknown_loss) {
  char text[1024];
  snprintf(text, sizeof text, "%sm:compile { optimizer = 'sgd', loss = 'sparse_categorical_crossentropi' }\n",
           small_model);
  expect_error(text, (const char *[]){"model.lua:2: ", "unknown loss 'sparse_categorical_crossentropi'",
                                      "did you mean 'sparse_categorical_crossentropy'", NULL});
}
END_TEST

START_TEST(pool_larger_than_input) {
  expect_error("local m = nn.Sequential {\n"
               "  nn.Conv2D { 4, 3, input_shape = { 5, 5, 1 } },\n"
               "  nn.MaxPool2D { 4 },\n}\n",
               (const char *[]){"max_pooling2d (MaxPooling2D) at ", "model.lua:3: ",
                                "pool 4x4 is larger than its input f32[?,3,3,4] with valid padding", NULL});
}
END_TEST

START_TEST(kernel_larger_than_input) {
  expect_error("local m = nn.Sequential {\n"
               "  nn.Conv2D { 4, 7, input_shape = { 5, 5, 1 } },\n}\n",
               (const char *[]){"conv2d (Conv2D) at ", "model.lua:2: ",
                                "kernel 7x7 is larger than its input f32[?,5,5,1] with valid padding", NULL});
}
END_TEST

START_TEST(zero_and_negative_sizes) {
  expect_error("local d = nn.Dense { 0 }\n", (const char *[]){"model.lua:1: ", "units must be a positive integer, got 0", NULL});
  expect_error("local c = nn.Conv2D { 8, -3 }\n",
               (const char *[]){"model.lua:1: ", "kernel_size must be positive, got -3", NULL});
  expect_error("local m = nn.Sequential {\n  nn.Dense { 4, input_shape = { 0, 3 } },\n}\n",
               (const char *[]){"model.lua:2: ", "zero, negative or non-integer size at axis 1", NULL});
  expect_error("local p = nn.MaxPool2D { 2, strides = 0 }\n",
               (const char *[]){"model.lua:1: ", "strides must be positive, got 0", NULL});
}
END_TEST

START_TEST(no_input_shape) {
  expect_error("local m = nn.Sequential {\n  nn.Dense { 4 },\n}\nm:summary()\n",
               (const char *[]){"sequential (Sequential) at ", "model.lua:1: ", "no input shape", "input_shape", NULL});
}
END_TEST

START_TEST(lua_syntax_error) {
  expect_error("local m = nn.Sequential {\n  nn.Dense { 4 }\n  nn.Flatten()\n}\n",
               (const char *[]){"model.lua:3: ", "'}' expected (to close '{' at line 1)", NULL});
}
END_TEST

START_TEST(error_in_script) {
  expect_error("local x = 1\nerror('my own failure')\n", (const char *[]){"model.lua:2: my own failure", NULL});
}
END_TEST

START_TEST(missing_script) {
  char *out, *err;
  int rc = nnc_test_run_cli("/nonexistent/model.lua", &out, &err);
  ck_assert_int_eq(rc, 1);
  ck_assert_msg(strstr(err, "cannot open script /nonexistent/model.lua"), "%s", err);
  free(out), free(err);
}
END_TEST

START_TEST(help_and_version) {
  char *out, *err;
  ck_assert_int_eq(nnc_test_run_cli("--help", &out, &err), 0);
  ck_assert_msg(strstr(out, "usage: nnc SCRIPT"), "%s", out);
  free(out), free(err);
  ck_assert_int_eq(nnc_test_run_cli("--version", &out, &err), 0);
  ck_assert_msg(strncmp(out, "nnc ", 4) == 0, "%s", out);
  free(out), free(err);
  ck_assert_int_eq(nnc_test_run_cli("--bogus", &out, &err), 1);
  ck_assert_msg(strstr(err, "unknown option '--bogus'"), "%s", err);
  free(out), free(err);
}
END_TEST

START_TEST(script_options) {
  char *out, *err;
  int rc = run_script("print(nnc.option('epochs', 2) + 1, nnc.option('name', 'x'), nnc.option('missing', 7))\n",
                      "--epochs 4 --name abc", &out, &err);
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_str_eq(out, "5\tabc\t7\n");
  free(out), free(err);
  rc = run_script("print(nnc.option('epochs', 2))\n", "--epochs many", &out, &err);
  ck_assert_int_eq(rc, 1);
  ck_assert_msg(strstr(err, "option --epochs expects a number, got 'many'"), "%s", err);
  free(out), free(err);
}
END_TEST

/* Every dumped graph of every model reads back and prints identically. */
static void check_dumps_round_trip(const char *model) {
  char dir[64], args[512], *err;
  snprintf(args, sizeof args, "models/%s.lua --dry-run", model);
  int rc = nnc_test_dump_ir(args, NULL, dir, sizeof dir, &err);
  if (rc != 0 && strstr(err, "dataset-fashion-mnist")) {
    printf("skipped %s dumps: Fashion-MNIST is not installed\n", model);
    free(err);
    nnc_test_remove_dir(dir);
    return;
  }
  ck_assert_msg(rc == 0, "%s", err);
  free(err);
  static const char *const dumps[][2] = {{"forward", "infer-shapes"}, {"train-step", "autodiff"},
                                         {"train-step", "fuse"},      {"train-step", "schedule"},
                                         {"train-step", "plan-memory"}, {"eval", "plan-memory"}};
  for (size_t i = 0; i < sizeof dumps / sizeof dumps[0]; i++) {
    const char *kind = dumps[i][0], *pass = dumps[i][1];
    char *text;
    nnc_graph *g = nnc_test_read_dump(dir, kind, pass, &text);
    ck_assert_msg(strncmp(text, "// generated by nnc", 19) == 0, "%s after %s: %.60s", kind, pass, text);
    /* The plan prints as comments, which read back as nothing: planning the
     * parsed graph again must give the same plan. */
    if (!strcmp(pass, "plan-memory")) {
      nnc_status st = {0};
      nnc_pass_ctx ctx = {.batch = NNC_DIM_ANY};
      const nnc_pass *plan[] = {&nnc_pass_plan_memory};
      ck_assert_msg(nnc_pass_run(&g, plan, 1, &ctx, NULL, &st) == 0, "%s", st.msg);
    }
    char *again = nnc_graph_to_text(g);
    const char *body = strchr(text, '\n') + 1;
    ck_assert_msg(strcmp(again, body) == 0, "%s of %s after %s does not round-trip", model, kind, pass);
    free(again), free(text);
    nnc_graph_free(g);
  }
  nnc_test_remove_dir(dir);
}

START_TEST(dumps_round_trip) {
  check_dumps_round_trip("mlp");
  check_dumps_round_trip("cnn");
  check_dumps_round_trip("vgg_fashion");
}
END_TEST

START_TEST(dump_one_pass_to_stdout) {
  char *out, *err;
  ck_assert_int_eq(nnc_test_run_cli("models/mlp.lua --dry-run --dump-ir=fuse", &out, &err), 0);
  ck_assert_msg(strstr(out, "// generated by nnc: the train-step graph after pass fuse"), "%s", out);
  ck_assert_msg(strstr(out, "  fused \"matmul+bias+act\" {\n    %"), "%s", out);
  ck_assert_msg(!strstr(out, "after pass autodiff"), "%s", out);
  free(out), free(err);
  ck_assert_int_eq(nnc_test_run_cli("models/mlp.lua --dump-ir=fusion", &out, &err), 1);
  ck_assert_msg(strstr(err, "--dump-ir: no pass is named 'fusion'"), "%s", err);
  free(out), free(err);
}
END_TEST

START_TEST(missing_and_corrupt_data) {
  char *out, *err;
  const char *script = nnc_test_write_temp("data.lua", "local train, test = data.mnist()\n");
  char args[600], cache[600];
  snprintf(args, sizeof args, "'%s'", script);
  /* No download: the cache is empty and the address a refused port. */
  snprintf(cache, sizeof cache, "%s", nnc_test_write_temp("cache", ""));
  unlink(cache);
  setenv("XDG_CACHE_HOME", cache, 1);
  setenv("NNC_DATA_URL", "http://127.0.0.1:1/", 1);
  int rc = nnc_test_run_cli(args, &out, &err);
  unsetenv("NNC_DATA_URL");
  unsetenv("XDG_CACHE_HOME");
  ck_assert_int_eq(rc, 1);
  ck_assert_msg(strstr(err, "data.lua:1: ") && strstr(err, "NNC_DATA"), "%s", err);
  ck_assert_msg(strstr(err, "Downloading http://127.0.0.1:1/mnist.npz failed"), "%s", err);
  free(out), free(err);
  const char *idx = nnc_test_write_temp("short.idx", "\x01\x02");
  char text[600];
  snprintf(text, sizeof text, "local t = data.idx('%s')\n", idx);
  script = nnc_test_write_temp("data2.lua", text);
  snprintf(args, sizeof args, "'%s'", script);
  rc = nnc_test_run_cli(args, &out, &err);
  ck_assert_int_eq(rc, 1);
  ck_assert_msg(strstr(err, "data2.lua:1: ") && strstr(err, "short.idx"), "%s", err);
  free(out), free(err);
}
END_TEST

Suite *cli_suite(void) {
  Suite *s = suite_create("cli");
  TCase *tc = tcase_create("cli");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, summary_vgg);
  tcase_add_test(tc, summary_mlp);
  tcase_add_test(tc, summary_cnn);
  tcase_add_test(tc, summary_functional);
  tcase_add_test(tc, keras_spellings);
  tcase_add_test(tc, summary_batch_norm_cnn);
  tcase_add_test(tc, conv_on_rank2_input);
  tcase_add_test(tc, unknown_layer);
  tcase_add_test(tc, unknown_activation);
  tcase_add_test(tc, unknown_keyword);
  tcase_add_test(tc, unknown_optimizer);
  tcase_add_loop_test(tc, unknown_option_in_each_constructor, 0,
                      (int)(sizeof unknown_options / sizeof unknown_options[0]));
  tcase_add_test(tc, positional_learning_rate);
  tcase_add_test(tc, unknown_loss);
  tcase_add_test(tc, pool_larger_than_input);
  tcase_add_test(tc, kernel_larger_than_input);
  tcase_add_test(tc, zero_and_negative_sizes);
  tcase_add_test(tc, no_input_shape);
  tcase_add_test(tc, lua_syntax_error);
  tcase_add_test(tc, error_in_script);
  tcase_add_test(tc, missing_script);
  tcase_add_test(tc, help_and_version);
  tcase_add_test(tc, script_options);
  tcase_add_test(tc, dumps_round_trip);
  tcase_add_test(tc, dump_one_pass_to_stdout);
  tcase_add_test(tc, missing_and_corrupt_data);
  suite_add_tcase(s, tc);
  return s;
}

TCase *tcase_train(void);
TCase *tcase_bench(void);
TCase *tcase_callbacks(void);
TCase *tcase_fit_flow(void);
TCase *tcase_nan(void);
TCase *tcase_sizes(void);
TCase *tcase_bad_scripts(void);
TCase *tcase_messages(void);

int main(void) {
  Suite *s = cli_suite();
  suite_add_tcase(s, tcase_train());
  suite_add_tcase(s, tcase_bench());
  suite_add_tcase(s, tcase_callbacks());
  suite_add_tcase(s, tcase_fit_flow());
  suite_add_tcase(s, tcase_nan());
  suite_add_tcase(s, tcase_sizes());
  suite_add_tcase(s, tcase_bad_scripts());
  suite_add_tcase(s, tcase_messages());
  return nnc_test_main(s);
}
