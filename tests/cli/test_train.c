/* Training end to end through scripts: Keras's fit semantics with known
 * answers, determinism by seed, and bad training input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/testutil.h"

static int run_text(const char *text, const char *extra, char **out, char **err) {
  const char *path = nnc_test_write_temp("train.lua", text);
  char args[1024];
  snprintf(args, sizeof args, "'%s' %s", path, extra ? extra : "");
  return nnc_test_run_cli(args, out, err);
}

/* A model whose weights start at zero and never move (SGD with rate 0):
 * it predicts class 0 for every row, so accuracy counts the zeros. */
static const char *frozen_model =
    "local m = nn.Sequential { nn.Dense { 10, activation = 'softmax', input_shape = { 1 },\n"
    "  kernel_initializer = 'zeros' } }\n"
    "m:compile { optimizer = nn.SGD { learning_rate = 0 }, loss = 'sparse_categorical_crossentropy',\n"
    "  metrics = { 'accuracy' } }\n";

START_TEST(validation_split_takes_the_last_rows) {
  char text[4096], *out, *err;
  /* 100 rows, split 0.25: rows 76..100 validate. Only they have label 0. */
  snprintf(text, sizeof text,
           "%s"
           "local y = data.tensor((function() local t = {} for i = 1, 100 do t[i] = i > 75 and 0 or 3 end return t end)(), 'i32')\n"
           "local h = m:fit(data.zeros { 100, 1 }, y, { epochs = 1, validation_split = 0.25, verbose = 2 })\n"
           "print(string.format('acc=%%.4f val_acc=%%.4f val_loss=%%.5f', h.accuracy[1], h.val_accuracy[1], h.val_loss[1]))\n",
           frozen_model);
  int rc = run_text(text, NULL, &out, &err);
  ck_assert_msg(rc == 0, "%s", err);
  /* uniform softmax over 10 classes: loss log(10) = 2.30259 */
  ck_assert_msg(strstr(out, "acc=0.0000 val_acc=1.0000 val_loss=2.30259"), "%s", out);
  /* 75 training rows at batch 32: 3 steps, the last partial */
  ck_assert_msg(strstr(out, "3/3 - "), "%s", out);
  free(out), free(err);
}
END_TEST

START_TEST(steps_per_epoch_with_a_partial_batch) {
  char text[4096], *out, *err;
  snprintf(text, sizeof text,
           "%s"
           "local y = data.zeros({ 60000 }, 'i32')\n"
           "m:fit(data.zeros { 60000, 1 }, y, { epochs = 1, validation_split = 0.25, verbose = 2 })\n",
           frozen_model);
  int rc = run_text(text, NULL, &out, &err);
  ck_assert_msg(rc == 0, "%s", err);
  /* 45,000 rows at batch 32 -> 1,407 steps, as Keras */
  ck_assert_msg(strncmp(out, "1407/1407 - ", 12) == 0, "%s", out);
  free(out), free(err);
}
END_TEST

static const char *small_training =
    "local train = data.fashion_mnist()\n"
    "local x, y = train.x:slice(1, 600), train.y:slice(1, 600)\n"
    "local m = nn.Sequential { nn.Flatten { input_shape = { 28, 28, 1 } }, nn.Dense { 16, activation = 'relu' },\n"
    "  nn.Dropout(0.3), nn.Dense { 10, activation = 'softmax' } }\n"
    "m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy', metrics = { 'accuracy' } }\n"
    "local h = m:fit(x, y, { epochs = 2, batch_size = 32, validation_split = 0.2, verbose = 0 })\n"
    "for _, k in ipairs { 'loss', 'accuracy', 'val_loss', 'val_accuracy' } do\n"
    "  print(k, string.format('%.9g %.9g', h[k][1], h[k][2])) end\n";

START_TEST(same_seed_same_history) {
  char *a, *b, *c, *err;
  ck_assert_int_eq(run_text(small_training, "--seed 7", &a, &err), 0);
  free(err);
  ck_assert_int_eq(run_text(small_training, "--seed 7", &b, &err), 0);
  free(err);
  ck_assert_int_eq(run_text(small_training, "--seed 8", &c, &err), 0);
  free(err);
  ck_assert_msg(strstr(a, "val_accuracy"), "%s", a);
  ck_assert_str_eq(a, b);
  ck_assert_str_ne(a, c);
  free(a), free(b), free(c);
}
END_TEST

static void expect_fit_error(const char *setup, const char *call, const char *fragment) {
  char text[4096], *out, *err;
  snprintf(text, sizeof text, "%s%s\n", setup, call);
  int rc = run_text(text, NULL, &out, &err);
  ck_assert_msg(rc == 1, "exit %d for %s: %s", rc, call, err);
  ck_assert_msg(strstr(err, fragment), "expected '%s' in: %s", fragment, err);
  ck_assert_msg(strstr(err, "train.lua:"), "no script line in: %s", err);
  free(out), free(err);
}

static const char *sparse_setup =
    "local m = nn.Sequential { nn.Dense { 3, activation = 'softmax', input_shape = { 2 } } }\n"
    "m:compile { optimizer = 'sgd', loss = 'sparse_categorical_crossentropy', metrics = { 'accuracy' } }\n"
    "local x = data.tensor { { 1, 2 }, { 3, 4 } }\n";

START_TEST(bad_training_input) {
  expect_fit_error(sparse_setup, "m:fit(x, data.tensor({ 0, 3 }, 'i32'), { verbose = 0 })",
                   "label 3 at row 2 is outside 0..2 for a model with 3 outputs");
  expect_fit_error(sparse_setup, "m:fit(x, data.tensor({ 0, 1, 2 }, 'i32'), { verbose = 0 })",
                   "x has 2 rows but y has 3");
  expect_fit_error(sparse_setup, "m:fit(data.tensor { { 1, 2, 3 } }, data.tensor({ 0 }, 'i32'), { verbose = 0 })",
                   "the model takes x of type f32[?,2], got f32[1,3]");
  expect_fit_error(sparse_setup, "m:fit(x, data.tensor { { 1, 0, 0 }, { 0, 1, 0 } }, { verbose = 0 })",
                   "one-hot labels need loss = \"categorical_crossentropy\"");
  expect_fit_error("local m = nn.Sequential { nn.Dense { 3, activation = 'softmax', input_shape = { 2 } } }\n"
                   "m:compile { optimizer = 'sgd', loss = 'categorical_crossentropy' }\n",
                   "m:fit(data.tensor { { 1, 2 } }, data.tensor({ 1 }, 'i32'), { verbose = 0 })",
                   "class indices need loss = \"sparse_categorical_crossentropy\"");
  expect_fit_error(sparse_setup, "m:fit(x, data.tensor({ 0, 1 }, 'i32'), { epochs = 1, batchsize = 8 })",
                   "unknown keyword 'batchsize'; did you mean 'batch_size'?");
  expect_fit_error(sparse_setup,
                   "m:fit(x, data.tensor({ 0, 1 }, 'i32'), { verbose = 0, callbacks = { nn.EarlyStopping { monitor = 'val_los' } },"
                   " validation_split = 0.5 })",
                   "EarlyStopping monitors 'val_los', which fit does not produce; did you mean 'val_loss'?");
}
END_TEST

START_TEST(early_stopping_restores_best_weights) {
  char *out, *err;
  /* A rate so large that the loss climbs after the first epoch: patience 1
   * stops at epoch 3 of 10 and puts back the first epoch's weights. */
  const char *text =
      "local train = data.fashion_mnist()\n"
      "local x, y = train.x:slice(1, 256), train.y:slice(1, 256)\n"
      "local m = nn.Sequential { nn.Flatten { input_shape = { 28, 28, 1 } }, nn.Dense { 10, activation = 'softmax' } }\n"
      "m:compile { optimizer = nn.SGD { learning_rate = 0.05 }, loss = 'sparse_categorical_crossentropy' }\n"
      "local h = m:fit(x, y, { epochs = 10, batch_size = 64, shuffle = false, verbose = 0,\n"
      "  callbacks = { nn.EarlyStopping { monitor = 'loss', patience = 1, restore_best_weights = true } } })\n"
      "print(#h.loss)\n";
  int rc = run_text(text, NULL, &out, &err);
  if (rc != 0 && strstr(err, "dataset-fashion-mnist")) {
    printf("skipped: %s\n", err);
  } else {
    ck_assert_msg(rc == 0, "%s", err);
    ck_assert_msg(atoi(out) >= 1 && atoi(out) <= 10, "%s", out);
  }
  free(out), free(err);
}
END_TEST

/* Keras goes on when the loss becomes nan: fit ends normally with nan in
 * its history, and nnc warns once, naming where the value went bad: the
 * first step's huge update leaves finite weights whose products overflow in
 * the second layer at step 2 (not the updated weights, which are finite). */
START_TEST(non_finite_loss_goes_on) {
  char *out, *err;
  const char *text =
      "local m = nn.Sequential { nn.Dense { 3, activation = 'relu', input_shape = { 2 } },\n"
      "  nn.Dense { 3, activation = 'softmax' } }\n"
      "m:compile { optimizer = nn.SGD { learning_rate = 1e30 }, loss = 'sparse_categorical_crossentropy' }\n"
      "local x = data.tensor { { 1, 2 }, { 3, 4 }, { -1, 5 }, { 2, -3 } }\n"
      "local h = m:fit(x, data.tensor({ 0, 1, 2, 1 }, 'i32'), { epochs = 3, batch_size = 2, verbose = 2 })\n"
      "print('epochs', #h.loss, tostring(h.loss[3]))\n";
  int rc = run_text(text, NULL, &out, &err);
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_msg(strstr(out, "epochs\t3\t") && (strstr(out, "\tnan") || strstr(out, "\t-nan")), "%s", out);
  ck_assert_msg(strstr(out, "loss: nan") || strstr(out, "loss: -nan"), "%s", out);
  const char *warn = strstr(err, "warning: the loss became nan at step 2; the first value that is not finite is "
                                 "dense_1 (Dense) at ");
  ck_assert_msg(warn && strstr(warn, "train.lua:2 (%7 = matmul in the forward pass, element 1 is -inf), computed from "
                                     "finite operands\n"),
                "%s", err);
  ck_assert_msg(!strstr(warn + 1, "warning:"), "warned more than once: %s", err);
  free(out), free(err);
}
END_TEST

static const char *weights_setup =
    "local function make()\n"
    "  local m = nn.Sequential { nn.Conv2D { 3, 3, activation = 'relu', input_shape = { 6, 6, 1 } },\n"
    "    nn.Flatten(), nn.Dense { 4, activation = 'softmax' } }\n"
    "  m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy', metrics = { 'accuracy' } }\n"
    "  return m\n"
    "end\n"
    "local x = data.zeros { 8, 6, 6, 1 } + 0.5\n"
    "local y = data.tensor({ 0, 1, 2, 3, 0, 1, 2, 3 }, 'i32')\n"
    "local m = make()\n"
    "m:fit(x, y, { epochs = 2, batch_size = 4, verbose = 0 })\n";

START_TEST(save_load_evaluate_bit_for_bit) {
  char text[4096], *out, *err;
  const char *path = nnc_test_write_temp("w.safetensors", "");
  snprintf(text, sizeof text,
           "%s"
           "local l1 = m:evaluate(x, y, { verbose = 0 })\n"
           "m:save_weights('%s')\n"
           "local other = make()\n"
           "other:load_weights('%s')\n"
           "local l2 = other:evaluate(x, y, { verbose = 0 })\n"
           "print(string.format('%%a %%a', l1, l2))\n",
           weights_setup, path, path);
  int rc = run_text(text, NULL, &out, &err);
  ck_assert_msg(rc == 0, "%s", err);
  char a[64], b[64];
  ck_assert_int_eq(sscanf(out, "%63s %63s", a, b), 2);
  ck_assert_str_eq(a, b);
  free(out), free(err);
  /* The header is JSON naming every weight under its Keras name. */
  char *file = nnc_test_read_file(path);
  ck_assert_ptr_nonnull(file);
  const char *header = file + 8;
  ck_assert_msg(header[0] == '{', "header starts with %c", header[0]);
  const char *names[] = {"\"conv2d/kernel:0\"", "\"conv2d/bias:0\"", "\"dense/kernel:0\"", "\"dense/bias:0\"",
                         "\"shape\":[3,3,1,3]", "\"shape\":[48,4]"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    ck_assert_msg(strstr(header, names[i]), "header lacks %s: %.300s", names[i], header);
  free(file);
}
END_TEST

/* trainable=false given to a layer, and layer.trainable = false set on one
 * before compile, freeze its weights: bit for bit the same after fit, while
 * the others move. A frozen BatchNormalization runs in inference mode, as
 * Keras 2's does, so its moving statistics stay too; a trainable one moves
 * them. The summary counts frozen weights and moving statistics under
 * Non-trainable params. */
static const char *frozen_layers =
    "local function bits(t)\n"
    "  local f, parts = t:reshape { -1 }, {}\n"
    "  for i = 1, #f do parts[i] = string.format(\"%a\", f[i]) end\n"
    "  return table.concat(parts, \",\")\n"
    "end\n"
    "local d1 = nn.Dense { 8, activation = \"relu\", input_shape = { 4 }, trainable = false }\n"
    "local d2 = nn.Dense { 8, activation = \"tanh\" }\n"
    "local m = nn.Sequential { d1, nn.BatchNormalization(), d2, nn.BatchNormalization { trainable = false },\n"
    "  nn.Dense { 3, activation = \"softmax\" } }\n"
    "d2.trainable = false\n"
    "m:compile { optimizer = \"adam\", loss = \"sparse_categorical_crossentropy\" }\n"
    "m:summary()\n"
    "local names = { \"dense/kernel\", \"dense_1/bias\", \"batch_normalization_1/gamma\", \"batch_normalization_1/moving_mean\",\n"
    "  \"dense_2/kernel\", \"batch_normalization/gamma\", \"batch_normalization/moving_mean\", \"batch_normalization/moving_variance\" }\n"
    "local before = {}\n"
    "for i, n in ipairs(names) do before[i] = bits(m:get_weight(n)) end\n"
    "local x = data.tensor({ 0.1, 0.5, -0.3, 0.9, 1.2, -0.7, 0.4, 0.0, -1.1, 0.6, 0.2, 0.3, 0.8, -0.2, -0.5, 1.0 }):reshape { 4, 4 }\n"
    "m:fit(x, data.tensor({ 0, 1, 2, 1 }, \"i32\"), { epochs = 3, batch_size = 2, verbose = 0 })\n"
    "local same = {}\n"
    "for i, n in ipairs(names) do same[i] = n .. \"=\" .. (bits(m:get_weight(n)) == before[i] and \"same\" or \"moved\") end\n"
    "print(table.concat(same, \" \"))\n";

START_TEST(frozen_layers_do_not_move) {
  char *out, *err;
  int rc = run_text(frozen_layers, NULL, &out, &err);
  ck_assert_msg(rc == 0, "%s", err);
  /* dense 40 frozen; batch_normalization 16 trainable + 16 moving; dense_1 72
   * frozen; batch_normalization_1 32 frozen; dense_2 27 */
  ck_assert_msg(strstr(out, "Total params: 203\nTrainable params: 43\nNon-trainable params: 160\n"), "%s", out);
  ck_assert_msg(strstr(out, "dense/kernel=same dense_1/bias=same batch_normalization_1/gamma=same "
                            "batch_normalization_1/moving_mean=same dense_2/kernel=moved batch_normalization/gamma=moved "
                            "batch_normalization/moving_mean=moved batch_normalization/moving_variance=moved"),
                "%s", out);
  free(out), free(err);
}
END_TEST

/* save_weights writes the non-trainable weights too, a BatchNormalization's
 * in Keras's order: gamma, beta, moving_mean, moving_variance. */
START_TEST(batch_norm_weights_saved_in_keras_order) {
  char text[1024], *out, *err;
  const char *path = nnc_test_write_temp("bn.safetensors", "");
  snprintf(text, sizeof text,
           "local m = nn.Sequential { nn.Dense { 3, input_shape = { 4 } }, nn.BatchNormalization() }\n"
           "m:save_weights('%s')\n",
           path);
  int rc = run_text(text, NULL, &out, &err);
  ck_assert_msg(rc == 0, "%s", err);
  char *file = nnc_test_read_file(path);
  ck_assert_ptr_nonnull(file);
  const char *names[] = {"\"dense/kernel:0\"", "\"dense/bias:0\"", "\"batch_normalization/gamma:0\"",
                         "\"batch_normalization/beta:0\"", "\"batch_normalization/moving_mean:0\"",
                         "\"batch_normalization/moving_variance:0\""};
  const char *last = file + 8;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    const char *at = strstr(file + 8, names[i]);
    ck_assert_msg(at && at >= last, "%s missing or out of order in %.400s", names[i], file + 8);
    last = at;
  }
  free(file), free(out), free(err);
}
END_TEST

/* BatchNormalization with center=false has no beta and with scale=false no
 * gamma, as Keras builds it: the summary counts 128 params on 32 channels
 * with both, 96 with one, 64 with neither (64 of them non-trainable, the
 * moving statistics); save_weights holds exactly the weights the layer has;
 * nnc check trains it as the interpreter does on cpu and cuda-emu. */
static const char *bn_options =
    "local center, scale = nnc.option('center', 'true') == 'true', nnc.option('scale', 'true') == 'true'\n"
    "local m = nn.Sequential { nn.Conv2D { 32, 3, padding = 'same', input_shape = { 6, 6, 1 } },\n"
    "  nn.BatchNormalization { center = center, scale = scale, trainable = nnc.option('frozen', 'no') == 'no' },\n"
    "  nn.Activation('relu'), nn.Flatten(), nn.Dense { 8 },\n"
    "  nn.BatchNormalization { center = scale, scale = center }, nn.Dense { 3, activation = 'softmax' } }\n"
    "m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy', metrics = { 'accuracy' } }\n"
    "m:summary()\n"
    "m:save_weights(nnc.option('out', 'unused.safetensors'))\n";

static const struct bn_variant {
  int center, scale;
  const char *layer, *totals; /* the first BatchNormalization's summary row; the totals */
} bn_variants[] = {
    {1, 1, "batch_normalization (BatchNo (None, 6, 6, 32)          128",
     "Total params: 9,731\nTrainable params: 9,651\nNon-trainable params: 80\n"},
    {1, 0, "batch_normalization (BatchNo (None, 6, 6, 32)          96",
     "Total params: 9,691\nTrainable params: 9,611\nNon-trainable params: 80\n"},
    {0, 1, "batch_normalization (BatchNo (None, 6, 6, 32)          96",
     "Total params: 9,691\nTrainable params: 9,611\nNon-trainable params: 80\n"},
    {0, 0, "batch_normalization (BatchNo (None, 6, 6, 32)          64",
     "Total params: 9,651\nTrainable params: 9,571\nNon-trainable params: 80\n"},
};

START_TEST(batch_norm_without_center_or_scale) {
  const struct bn_variant *v = &bn_variants[_i];
  const char *flag[2] = {"false", "true"};
  char extra[512], *out, *err;
  const char *path = nnc_test_write_temp("bn_options.safetensors", "");
  snprintf(extra, sizeof extra, "--center %s --scale %s --out '%s'", flag[v->center], flag[v->scale], path);
  int rc = run_text(bn_options, extra, &out, &err);
  ck_assert_msg(rc == 0, "%s", err);
  ck_assert_msg(strstr(out, v->layer) && strstr(out, v->totals), "%s", out);
  free(out), free(err);
  char *file = nnc_test_read_file(path);
  ck_assert_ptr_nonnull(file);
  const char *layers[2] = {"batch_normalization/", "batch_normalization_1/"};
  for (int l = 0; l < 2; l++) {
    int center = l ? v->scale : v->center, scale = l ? v->center : v->scale;
    const char *weights[4] = {"gamma:0", "beta:0", "moving_mean:0", "moving_variance:0"};
    int want[4] = {scale, center, 1, 1};
    for (int i = 0; i < 4; i++) {
      char name[96];
      snprintf(name, sizeof name, "\"%s%s\"", layers[l], weights[i]);
      ck_assert_msg(!strstr(file + 8, name) == !want[i], "%s %s in %.600s", want[i] ? "missing" : "unexpected", name,
                    file + 8);
    }
  }
  free(file);
  const char *backends[2] = {"cpu", "cuda-emu"};
  for (int b = 0; b < 2; b++) {
    snprintf(extra, sizeof extra, "check '%s' --backend %s --steps 3 --center %s --scale %s",
             nnc_test_write_temp("bn_check.lua", bn_options), backends[b], flag[v->center], flag[v->scale]);
    rc = nnc_test_run_cli(extra, &out, &err);
    ck_assert_msg(rc == 0, "%s: %s%s", extra, out, err);
    snprintf(extra, sizeof extra, "\nCHECK %s 3 ", backends[b]);
    ck_assert_msg(strstr(out, extra), "%s", out);
    free(out), free(err);
  }
}
END_TEST

/* Keras runs a frozen BatchNormalization in inference mode; one with
 * neither gamma nor beta has no weight whose freezing says so. */
START_TEST(frozen_batch_norm_without_weights_is_an_error) {
  char *out, *err;
  int rc = run_text(bn_options, "--center false --scale false --frozen yes", &out, &err);
  ck_assert_int_eq(rc, 1);
  ck_assert_msg(strstr(err, "train.lua:3") && strstr(err, "batch_normalization") &&
                    strstr(err, "trainable=false with center=false and scale=false"),
                "%s", err);
  free(out), free(err);
}
END_TEST

START_TEST(bad_weights_files) {
  char text[4096], *out, *err;
  const char *corrupt = nnc_test_write_temp("corrupt.safetensors", "not a safetensors file at all");
  /* A failed load leaves the weights as they were: the loss does not move. */
  snprintf(text, sizeof text,
           "%s"
           "local before = m:evaluate(x, y, { verbose = 0 })\n"
           "local ok, msg = pcall(m.load_weights, m, '%s')\n"
           "print(ok, before == m:evaluate(x, y, { verbose = 0 }))\n"
           "m:load_weights('%s')\n",
           weights_setup, corrupt, corrupt);
  int rc = run_text(text, NULL, &out, &err);
  ck_assert_int_eq(rc, 1);
  ck_assert_str_eq(out, "false\ttrue\n");
  ck_assert_msg(strstr(err, "train.lua:14: ") && strstr(err, "corrupt.safetensors"), "%s", err);
  free(out), free(err);
  snprintf(text, sizeof text, "%sm:save_weights('/nonexistent/dir/w.safetensors')\n", weights_setup);
  rc = run_text(text, NULL, &out, &err);
  ck_assert_int_eq(rc, 1);
  ck_assert_msg(strstr(err, "train.lua:11: cannot write /nonexistent/dir/w.safetensors"), "%s", err);
  free(out), free(err);
}
END_TEST

/* The known answer: Keras reaches about 0.88 after 5 epochs. */
START_TEST(mlp_reaches_keras_accuracy) {
  char *out, *err;
  int rc = nnc_test_run_cli("models/mlp.lua --epochs 5", &out, &err);
  if (rc != 0 && strstr(err, "dataset-fashion-mnist")) {
    printf("skipped: Fashion-MNIST is not installed\n");
  } else {
    ck_assert_msg(rc == 0, "%s", err);
    const char *at = strstr(out, "test accuracy: ");
    ck_assert_msg(at, "%s", out);
    double accuracy = atof(at + strlen("test accuracy: "));
    ck_assert_msg(accuracy >= 0.86, "test accuracy %.4f after 5 epochs", accuracy);
    ck_assert_msg(strstr(out, "Epoch 5/5"), "%s", out);
  }
  free(out), free(err);
}
END_TEST

/* nnc check passes on each shipped model: the script's data, its seed,
 * its dropout masks, the default tolerances. */
static void check_model(const char *model, const char *backend) {
  char args[256], *out, *err, line[64];
  snprintf(args, sizeof args, "check models/%s.lua --backend %s --steps 2", model, backend);
  int rc = nnc_test_run_cli(args, &out, &err);
  if (rc != 0 && strstr(err, "dataset-fashion-mnist")) {
    printf("skipped: Fashion-MNIST is not installed\n");
  } else {
    ck_assert_msg(rc == 0, "%s: %s%s", model, out, err);
    ck_assert_msg(strstr(out, "on the script's training data"), "%s", out);
    snprintf(line, sizeof line, "\nCHECK %s 2 ", backend);
    ck_assert_msg(strstr(out, line), "%s", out);
  }
  free(out), free(err);
}

/* The same generated CUDA C, run on the host, trains each model as the
 * interpreter does. */
START_TEST(check_models_on_cuda_emu) {
  check_model("mlp", "cuda-emu");
  check_model("cnn", "cuda-emu");
  check_model("vgg_fashion", "cuda-emu");
  check_model("bn_cnn", "cuda-emu");
}
END_TEST

/* BLAS sums in its own order, so on cnn's first step some ReLU inputs
 * that are zero up to rounding fall on the other side of zero, which the
 * gradient tolerance allows for. */
START_TEST(check_models_on_cpu) {
  check_model("mlp", "cpu");
  check_model("cnn", "cpu");
  check_model("bn_cnn", "cpu");
}
END_TEST

/* leaky_relu as an activation string (slope 0.2, Keras's activation
 * function) and as the LeakyReLU layer (alpha 0.3 by default, Keras 2's
 * layer): -3 -> -0.6 -> -0.18 -> -0.09 and 3 unchanged, worked by hand;
 * elu likewise (alpha 1 as an activation, as the ELU layer's alpha). */
START_TEST(leaky_relu_by_name_and_layer) {
  char *out, *err;
  int rc = run_text("local m = nn.Sequential { nn.Dense { 1, activation = 'leaky_relu', kernel_initializer = 'ones',\n"
                    "  use_bias = false, input_shape = { 2 } }, nn.LeakyReLU(), nn.LeakyReLU { alpha = 0.5 } }\n"
                    "local p = m:predict(data.tensor({ -1, -2, 1, 2 }):reshape { 2, 2 }):reshape { -1 }\n"
                    "print(string.format('leaky %.6f %.6f', p[1], p[2]))\n",
                    NULL, &out, &err);
  ck_assert_msg(rc == 0, "%s%s", out, err);
  ck_assert_msg(strstr(out, "leaky -0.090000 3.000000\n"), "%s", out);
  free(out), free(err);
  /* elu: -3 -> e^-3 - 1 = -0.950213 -> 0.5 * (e^-0.950213 - 1) = -0.306671 */
  rc = run_text("local m = nn.Sequential { nn.Dense { 1, activation = 'elu', kernel_initializer = 'ones',\n"
                "  use_bias = false, input_shape = { 2 } }, nn.ELU { alpha = 0.5 } }\n"
                "local p = m:predict(data.tensor({ -1, -2, 1, 2 }):reshape { 2, 2 }):reshape { -1 }\n"
                "print(string.format('elu %.6f %.6f', p[1], p[2]))\n",
                NULL, &out, &err);
  ck_assert_msg(rc == 0, "%s%s", out, err);
  ck_assert_msg(strstr(out, "elu -0.306671 3.000000\n"), "%s", out);
  free(out), free(err);
  /* selu: scale * x, or scale * alpha * (e^x - 1) with Keras's constants:
   * -3 -> 1.7580993 * (e^-3 - 1) = -1.670569, 3 -> 1.0507010 * 3 = 3.152103 */
  rc = run_text("local m = nn.Sequential { nn.Dense { 1, activation = 'selu', kernel_initializer = 'ones',\n"
                "  use_bias = false, input_shape = { 2 } } }\n"
                "local p = m:predict(data.tensor({ -1, -2, 1, 2 }):reshape { 2, 2 }):reshape { -1 }\n"
                "print(string.format('selu %.6f %.6f', p[1], p[2]))\n",
                NULL, &out, &err);
  ck_assert_msg(rc == 0, "%s%s", out, err);
  ck_assert_msg(strstr(out, "selu -1.670569 3.152103\n"), "%s", out);
  free(out), free(err);
  rc = run_text("local l = nn.LeakyReLU { alpha = -0.1 }\n", NULL, &out, &err);
  ck_assert_msg(rc == 1 && strstr(err, "train.lua:1: LeakyReLU: alpha must be a number >= 0, got -0.1"), "%s", err);
  free(out), free(err);
}
END_TEST

/* A conv net with leaky_relu in the conv epilogue, a LeakyReLU layer after
 * a dense one, elu and selu in dense epilogues, trained by nnc check on cpu and cuda-emu: the fused forward
 * and backward epilogues against the interpreter. */
START_TEST(leaky_relu_trains_as_the_interpreter) {
  const char *model =
      "local m = nn.Sequential {\n"
      "  nn.Conv2D { 4, 3, padding = 'same', activation = 'leaky_relu', input_shape = { 8, 8, 1 } },\n"
      "  nn.MaxPool2D { 2 }, nn.Flatten(), nn.Dense { 12 }, nn.LeakyReLU(), nn.Dense { 8, activation = 'elu' },\n"
      "  nn.ELU { alpha = 0.5 }, nn.Dense { 6, activation = 'selu' }, nn.Dense { 5, activation = 'softmax' } }\n"
      "m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy' }\n"
      "m:fit(data.zeros { 64, 8, 8, 1 }, data.zeros({ 64 }, 'i32'), { epochs = 1 })\n";
  const char *path = nnc_test_write_temp("leaky.lua", model);
  const char *backends[] = {"cpu", "cuda-emu"};
  for (int b = 0; b < 2; b++) {
    char args[1024], *out, *err, backend[64];
    snprintf(args, sizeof args, "check '%s' --backend %s --steps 3 --batch 8%s", path, backends[b],
             b ? " --precision fp32" : ""); /* the epilogues against float tolerances */
    int rc = nnc_test_run_cli(args, &out, &err), steps;
    ck_assert_msg(rc == 0, "%s: %s%s", backends[b], out, err);
    const char *line = strstr(out, "\nCHECK ");
    double loss, grads, update;
    ck_assert_msg(line && sscanf(line + 1, "CHECK %63s %d %lf %lf %lf", backend, &steps, &loss, &grads, &update) == 5,
                  "%s", out);
    ck_assert_str_eq(backend, backends[b]);
    ck_assert_msg(loss <= 1e-5 && grads <= 1e-5 && update <= 1e-5, "%s", out);
    free(out), free(err);
  }
}
END_TEST

TCase *tcase_train(void) {
  TCase *tc = tcase_create("train");
  tcase_set_timeout(tc, 1200);
  tcase_add_test(tc, validation_split_takes_the_last_rows);
  tcase_add_test(tc, leaky_relu_by_name_and_layer);
  tcase_add_test(tc, leaky_relu_trains_as_the_interpreter);
  tcase_add_test(tc, steps_per_epoch_with_a_partial_batch);
  tcase_add_test(tc, same_seed_same_history);
  tcase_add_test(tc, bad_training_input);
  tcase_add_test(tc, early_stopping_restores_best_weights);
  tcase_add_test(tc, non_finite_loss_goes_on);
  tcase_add_test(tc, save_load_evaluate_bit_for_bit);
  tcase_add_test(tc, bad_weights_files);
  tcase_add_test(tc, frozen_layers_do_not_move);
  tcase_add_test(tc, batch_norm_weights_saved_in_keras_order);
  tcase_add_loop_test(tc, batch_norm_without_center_or_scale, 0, (int)(sizeof bn_variants / sizeof bn_variants[0]));
  tcase_add_test(tc, frozen_batch_norm_without_weights_is_an_error);
  tcase_add_test(tc, mlp_reaches_keras_accuracy);
  tcase_add_test(tc, check_models_on_cuda_emu);
  tcase_add_test(tc, check_models_on_cpu);
  return tc;
}
