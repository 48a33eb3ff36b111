/* Whole models in Keras 2's .h5: model:save and nn.load_model. The layout
 * and JSON are checked with h5py against Keras's save_model_to_hdf5; a
 * loaded model evaluates identically and trains on exactly as the original
 * would have; a model h5py wrote in Keras's spelling loads and predicts
 * what numpy computes; bad files are clear errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/files/suites.h"

static const char *data_setup =
    "local rows = {}\n"
    "for i = 1, 8 do\n"
    "  local img = {}\n"
    "  for r = 1, 6 do img[r] = {} for c = 1, 6 do img[r][c] = { ((i * 7 + r * 3 + c) % 11) / 11 } end end\n"
    "  rows[i] = img\n"
    "end\n"
    "local x = data.tensor(rows)\n"
    "local y = data.tensor({ 0, 1, 2, 3, 0, 1, 2, 3 }, 'i32')\n";

/* Trains two epochs, saves, then trains two more: the loaded model must
 * give the same loss bit for bit (Adam's moments, its step count and every
 * dropout mask carry over) and evaluate the same before and after training
 * (BatchNormalization's moving statistics carry over and move alike).
 * bn_axes lists the axis Keras writes for each BatchNormalization. */
static void trains_on(const char *build, const char *kind, const char *bn_axes) {
  char text[8192];
  snprintf(text, sizeof text,
           "%s%s"
           "m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy', metrics = { 'accuracy' } }\n"
           "m:fit(x, y, { epochs = 2, batch_size = 4, verbose = 0 })\n"
           "m:save('m.h5')\nm:save_weights('w.h5')\n"
           "local e1 = m:evaluate(x, y, { verbose = 0 })\n"
           "local h1 = m:fit(x, y, { epochs = 2, batch_size = 4, verbose = 0 })\n"
           "local l = nn.load_model('m.h5')\n"
           "local e2 = l:evaluate(x, y, { verbose = 0 })\n"
           "local h2 = l:fit(x, y, { epochs = 2, batch_size = 4, verbose = 0 })\n"
           "print(string.format('%%a %%a %%a', e1, h1.loss[2], m:evaluate(x, y, { verbose = 0 })))\n"
           "print(string.format('%%a %%a %%a', e2, h2.loss[2], l:evaluate(x, y, { verbose = 0 })))\n",
           data_setup, build);
  char *out = files_nnc_ok(text);
  char *second = strchr(out, '\n');
  ck_assert_ptr_nonnull(second);
  ck_assert_msg(!strncmp(out, second + 1, (size_t)(second - out)), "original then loaded:\n%s", out);
  free(out);
  char args[128];
  snprintf(args, sizeof args, "model-check m.h5 %s w.h5 4 %s", kind, bn_axes);
  free(files_py_ok(args));
}

START_TEST(sequential_round_trip_trains_on) {
  trains_on("local m = nn.Sequential { nn.Conv2D { 3, 3, activation = 'relu', input_shape = { 6, 6, 1 } },\n"
            "  nn.MaxPool2D { 2 }, nn.Dropout(0.3), nn.Flatten(), nn.Dense { 4, activation = 'softmax' } }\n",
            "Sequential", "");
}
END_TEST

/* models/bn_cnn.lua's pattern (conv, BatchNormalization, relu; dense,
 * BatchNormalization), one layer without beta. */
START_TEST(sequential_batch_norm_round_trip_trains_on) {
  trains_on("local m = nn.Sequential { nn.Conv2D { 3, 3, input_shape = { 6, 6, 1 } }, nn.BatchNormalization(),\n"
            "  nn.Activation('relu'), nn.MaxPool2D { 2 }, nn.Dropout(0.3), nn.Flatten(), nn.Dense { 5 },\n"
            "  nn.BatchNormalization { center = false, momentum = 0.9 }, nn.Activation('relu'),\n"
            "  nn.Dense { 4, activation = 'softmax' } }\n",
            "Sequential", "3,1");
}
END_TEST

START_TEST(functional_batch_norm_round_trip_trains_on) {
  trains_on("local inputs = nn.Input { 6, 6, 1 }\n"
            "local h = nn.Conv2D { 2, 3, padding = 'same' }(inputs)\n"
            "h = nn.Activation('relu')(nn.BatchNormalization { scale = false, epsilon = 0.01 }(h))\n"
            "h = nn.BatchNormalization()(nn.Dense { 5 }(nn.Flatten()(nn.AvgPool2D { 2 }(h))))\n"
            "local m = nn.Model { inputs = inputs, outputs = nn.Dense { 4, activation = 'softmax' }(h) }\n",
            "Functional", "3,1");
}
END_TEST

START_TEST(functional_round_trip_trains_on) {
  trains_on("local inputs = nn.Input { 6, 6, 1 }\n"
            "local h = nn.Conv2D { 2, 3, padding = 'same', activation = 'relu' }(inputs)\n"
            "h = nn.Dropout(0.2)(nn.Flatten()(nn.AvgPool2D { 2 }(h)))\n"
            "local m = nn.Model { inputs = inputs, outputs = nn.Dense { 4, activation = 'softmax' }(h) }\n",
            "Functional", "");
}
END_TEST

/* LeakyReLU and ELU layers and the leaky_relu and elu activations: the
 * saved model_config holds the alphas under Keras 2's key, a loaded model
 * predicts the same numbers bit for bit, trains on as the original and
 * saves the same config again; a Keras 3 file, which names LeakyReLU's
 * slope negative_slope, loads with that slope. */
#define ACTIVATIONS_MODEL                                                                                     \
  "local m = nn.Sequential { nn.Conv2D { 3, 3, activation = 'leaky_relu', input_shape = { 6, 6, 1 } },\n"   \
  "  nn.LeakyReLU { alpha = 0.125 }, nn.MaxPool2D { 2 }, nn.Flatten(), nn.Dense { 5, activation = 'elu' },\n" \
  "  nn.ELU { alpha = 0.5 }, nn.Dense { 4, activation = 'softmax' } }\n"

START_TEST(leaky_relu_and_elu_round_trip) {
  trains_on(ACTIVATIONS_MODEL, "Sequential", "");
  char text[4096];
  snprintf(text, sizeof text,
           "%s" ACTIVATIONS_MODEL
           "m:compile { optimizer = 'adam', loss = 'sparse_categorical_crossentropy' }\n"
           "m:fit(x, y, { epochs = 1, batch_size = 4, verbose = 0 })\n"
           "m:save('act.h5')\n"
           "local l = nn.load_model('act.h5')\n"
           "l:save('again.h5')\n"
           "local p, q = m:predict(x), l:predict(x)\n"
           "local same = true\n"
           "for i = 1, 8 do for j = 1, 4 do same = same and p[i][j] == q[i][j] end end\n"
           "print(same and 'same' or 'differ', string.format('%%a', q[3][2]))\n",
           data_setup);
  char *out = files_nnc_ok(text);
  ck_assert_msg(!strncmp(out, "same\t", 5), "%s", out);
  const char *want = "InputLayer\n"
                     "Conv2D activation='leaky_relu'\n"
                     "LeakyReLU alpha=0.125\n"
                     "MaxPooling2D\n"
                     "Flatten\n"
                     "Dense activation='elu'\n"
                     "ELU alpha=0.5\n"
                     "Dense activation='softmax'\n";
  char *saved = files_py_ok("layer-configs act.h5"), *again = files_py_ok("layer-configs again.h5");
  ck_assert_str_eq(saved, want);
  ck_assert_str_eq(again, want);
  free(saved), free(again);
  /* Keras 3's spelling of the same file. */
  free(files_py_ok("config-edit act.h5 '\"alpha\":0.125' '\"negative_slope\":0.125'"));
  char *keras3 = files_nnc_ok("nn.load_model('act.h5'):save('keras2.h5')\n");
  char *from3 = files_py_ok("layer-configs keras2.h5");
  ck_assert_str_eq(from3, want);
  free(keras3), free(from3), free(out);
}
END_TEST

/* Keras's own spelling, written by h5py: nnc builds the model from the
 * JSON, compiles it from training_config and predicts x @ W + b. */
START_TEST(loads_a_model_keras_wrote) {
  char *expected = files_py_ok("model-write keras_model.h5");
  char *out = files_nnc_ok("local m = nn.load_model('keras_model.h5')\n"
                           "local p = m:predict(data.tensor { { 1, 2, 3 }, { -1, 0.5, 2 } })\n"
                           "for i = 1, 2 do print(string.format('%.6f %.6f', p[i][1], p[i][2])) end\n"
                           "m:fit(data.tensor { { 1, 2, 3 } }, data.tensor { { 0, 0 } }, { verbose = 0 })\n");
  ck_assert_str_eq(out, expected);
  free(out), free(expected);
}
END_TEST

static void expect_failure(const char *text, const char *const *fragments) {
  char *out, *err;
  int rc = files_nnc(text, &out, &err);
  ck_assert_msg(rc == 1, "exit %d: %s", rc, err);
  for (; *fragments; fragments++) ck_assert_msg(strstr(err, *fragments), "expected '%s' in: %s", *fragments, err);
  free(out), free(err);
}

START_TEST(bad_model_files) {
  const char *weights_only[] = {"script.lua:2:", "load_model: w.h5", "weights only", NULL};
  expect_failure("nn.Sequential { nn.Dense { 2, input_shape = { 3 } } }:save_weights('w.h5')\n"
                 "nn.load_model('w.h5')\n",
                 weights_only);
  free(files_py_ok("model-write regularized.h5 --regularized"));
  const char *option[] = {"load_model: regularized.h5", "layer 'out' (Dense)", "kernel_regularizer", NULL};
  expect_failure("nn.load_model('regularized.h5')\n", option);
  const char *cut[] = {"script.lua:5:", "cut.h5", "not a readable HDF5 file", NULL};
  expect_failure("local m = nn.Sequential { nn.Dense { 2, input_shape = { 3 } } }\nm:save('whole.h5')\n"
                 "local f = io.open('whole.h5', 'rb'); local s = f:read('a'); f:close()\n"
                 "f = io.open('cut.h5', 'wb'); f:write(s:sub(1, #s - 100)); f:close()\n"
                 "nn.load_model('cut.h5')\n",
                 cut);
  free(files_nnc_ok("local m = nn.Sequential { nn.Dense { 2, input_shape = { 3 } }, nn.BatchNormalization() }\n"
                    "m:save('bn.h5')\nm:save('axes.h5')\n"));
  free(files_py_ok("config-edit bn.h5 '\"center\":true' '\"renorm\":true,\"center\":true'"));
  const char *renorm[] = {"load_model: bn.h5", "layer 'batch_normalization' (BatchNormalization)", "renorm", NULL};
  expect_failure("nn.load_model('bn.h5')\n", renorm);
  free(files_py_ok("config-edit axes.h5 '\"axis\":[1]' '\"axis\":[0,1]'"));
  const char *axes[] = {"layer 'batch_normalization' (BatchNormalization)", "axis = [0,1]", NULL};
  expect_failure("nn.load_model('axes.h5')\n", axes);
  const char *ext[] = {"script.lua:2:", "save", "m.keras", ".h5", NULL};
  expect_failure("local m = nn.Sequential { nn.Dense { 2, input_shape = { 3 } } }\nm:save('m.keras')\n", ext);
}
END_TEST

/* A model script is a program, but a model file is data: Lua code in the
 * JSON's names, class or loss is never run. Run, it would leave the file
 * `pwned` or exit with status 3. */
START_TEST(model_file_code_is_not_run) {
  char marker[600];
  snprintf(marker, sizeof marker, "%s/pwned", files_dir());
  unlink(marker);
  free(files_py_ok("model-write payload.h5 --payload-names"));
  char *out = files_nnc_ok("local m = nn.load_model('payload.h5')\n"
                           "print(m.name)\n"
                           "for _, l in ipairs(m.layers) do print(l.name) end\n"
                           "local p = m:predict(data.tensor { { 1, 2, 3 } })\n"
                           "print(string.format('%.6f %.6f', p[1][1], p[1][2]))\n");
  ck_assert_str_eq(out, "\"); os.execute('touch pwned') --\n"
                        "x'); os.execute('touch pwned'); --[[\n"
                        "]] .. os.exit(3) .. [[ %s%n\n"
                        "-1.150000 7.300000\n");
  free(out);
  free(files_py_ok("model-write class.h5 --payload-class"));
  const char *class[] = {"script.lua:1:", "load_model: class.h5", "nnc has no layer Dense'); os.execute", NULL};
  expect_failure("nn.load_model('class.h5')\n", class);
  free(files_py_ok("model-write loss.h5 --payload-loss"));
  const char *loss[] = {"script.lua:1:", "unknown loss 'os.execute('touch pwned')'", NULL};
  expect_failure("nn.load_model('loss.h5')\n", loss);
  ck_assert_msg(access(marker, F_OK) != 0, "%s exists: the file's code ran", marker);
}
END_TEST

TCase *tcase_h5_model(void) {
  TCase *tc = tcase_create("h5_model");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, sequential_round_trip_trains_on);
  tcase_add_test(tc, functional_round_trip_trains_on);
  tcase_add_test(tc, sequential_batch_norm_round_trip_trains_on);
  tcase_add_test(tc, functional_batch_norm_round_trip_trains_on);
  tcase_add_test(tc, leaky_relu_and_elu_round_trip);
  tcase_add_test(tc, loads_a_model_keras_wrote);
  tcase_add_test(tc, bad_model_files);
  tcase_add_test(tc, model_file_code_is_not_run);
  return tc;
}
